/* engine.h — the engine step loop: requests in (token ids + sampling
 * params), token ids out.
 *
 * One tm_engine_step(): the scheduler plans the step (decodes, chunked
 * prefills, admissions with prefix reuse, preemption by recompute), the plan
 * becomes one tm_batch for backend->forward (all sequences in one call), the
 * rows that need logits are sampled (sampler.h), tokens are appended and the
 * id-level stop conditions are checked (eos / stop token ids / max_tokens /
 * context length). The engine knows nothing of text: a caller that checks
 * stop strings on detokenized output ends a sequence with tm_engine_finish.
 *
 * n > 1: the n choices of a request are n sequences. Choice 0 is scheduled
 * first; the others are queued once choice 0's prompt is in the cache, so
 * they reuse its full prompt blocks through the prefix cache.
 *
 * All buffers (sequences, batch arrays, logits, events) are allocated at
 * create() or at add(); tm_engine_step allocates nothing.
 */
#ifndef TM_ENGINE_H
#define TM_ENGINE_H

#include <stdint.h>
#include "backend/backend.h"
#include "engine/kv_cache.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "engine/stop.h"
#include "model/model.h"
#include "util/status.h"

typedef struct tm_engine_config {
    int32_t block_size;        /* tokens per KV block (16) */
    int32_t n_blocks;          /* KV pool size */
    int32_t max_batch_tokens;  /* per step */
    int32_t max_seqs;          /* per step */
    int32_t max_requests;      /* requests alive at once (claimed window) */
    int32_t max_context;       /* prompt + output cap (<= max_position_embeddings) */
    int n_threads;             /* backend threads (0 = all cores) */
    tm_kv_dtype kv_dtype;      /* KV cache element type (quant.h; 0 = backend's own) */
    unsigned backend_flags;    /* tm_backend_opts.flags (TM_BACKEND_*; 0 = the normal path) */
} tm_engine_config;

/* A request as the engine sees it. */
typedef struct tm_engine_request {
    int64_t id;                /* caller's id, reported back */
    const int32_t *prompt;
    int32_t n_prompt;
    int32_t priority;
    int32_t n;                 /* choices, >= 1 */
    tm_sampling_params params; /* max_tokens <= 0: up to the context length */
    uint64_t seed;             /* effective seed (request's, or derived by the caller) */
    void *user;
    /* Resume from a checkpoint (NULL: a fresh request). Choice c continues
     * after the n_resume[c] tokens resume[c] it generated before: they are
     * prefilled with the prompt (the prefix cache makes that cheap) and
     * sampling continues at index n_resume[c] of the (seed, choice, index)
     * draws, so the tokens that follow are those of an uninterrupted run.
     * resume_finished[c] != TM_FINISH_NONE: that choice had ended; it is
     * never scheduled and reports no events (may be NULL: none had). */
    const int32_t *const *resume;
    const int32_t *n_resume;
    const tm_finish_reason *resume_finished;
    /* out, may be NULL: [n] the sequences created, one per choice */
    struct tm_engine_seq **seqs_out;
} tm_engine_request;

typedef struct tm_engine_seq tm_engine_seq; /* one choice of one request */

/* What happened to one sequence in a step. */
typedef struct tm_engine_event {
    tm_engine_seq *seq;
    int64_t request_id;
    int32_t choice;
    void *user;
    int32_t token;             /* the token appended this step */
    tm_sample_result sample;   /* logprob / top_logprobs when asked */
    const float *logits;       /* [vocab] the row sampled from; valid until the next step */
    tm_finish_reason finished; /* NONE while running (stop.h) */
    int aborted;               /* the sequence was dropped (sampler error) */
} tm_engine_event;

/* What one sequence computed in a step (for cost attribution). */
typedef struct tm_engine_work {
    void *user;                /* the request's user pointer */
    int32_t choice;
    int32_t start;             /* first position computed */
    int32_t n_new;             /* tokens computed */
    int32_t prefill;           /* n_new tokens of the prompt (or a recompute) */
    int32_t n_recompute;       /* of n_new, positions computed once before (a resume
                                  after a preemption, KV preemption by recompute) */
} tm_engine_work;

typedef struct tm_engine_step_out {
    tm_engine_event *events;   /* owned by the engine; valid until the next step */
    int32_t n_events;
    tm_engine_work *work;      /* [n_seqs], owned by the engine */
    int32_t n_tokens, n_prefill_tokens, n_decode_tokens, n_seqs;
    int32_t n_preempted, n_cached_tokens;
    uint64_t forward_ns;       /* backend time of this step */
} tm_engine_step_out;

typedef struct tm_engine tm_engine;

tm_status tm_engine_create(const tm_backend_ops *ops, const tm_model *m, const tm_engine_config *cfg,
                           tm_engine **out, tm_err *err);
void tm_engine_destroy(tm_engine *e);

/* Queue a request. TM_ERR_INPUT (the request alone fails) when its prompt
 * does not fit the context or the KV pool, or its params are invalid;
 * TM_ERR_BUSY when max_requests are alive. */
tm_status tm_engine_add(tm_engine *e, const tm_engine_request *r, tm_err *err);

/* Run one step. n_events 0 and tm_engine_has_work() false: nothing to do. */
tm_status tm_engine_step(tm_engine *e, tm_engine_step_out *out, tm_err *err);
int tm_engine_has_work(const tm_engine *e);

/* Sequence accessors (valid until the sequence is released). */
const int32_t *tm_engine_seq_tokens(const tm_engine_seq *s, int32_t *n_prompt, int32_t *n_total);
int32_t tm_engine_seq_cached(const tm_engine_seq *s);   /* prompt tokens from the prefix cache */
int32_t tm_engine_seq_preemptions(const tm_engine_seq *s);

/* End a running sequence now (stop string matched: TM_FINISH_STOP; cancel:
 * TM_FINISH_NONE, i.e. aborted). Its blocks are freed; it is reported no
 * further. */
void tm_engine_finish(tm_engine *e, tm_engine_seq *s, tm_finish_reason why);

/* Release a finished sequence's memory (after the caller consumed it). */
void tm_engine_release(tm_engine *e, tm_engine_seq *s);

/* Abort every choice of a request (cancel). */
void tm_engine_abort_request(tm_engine *e, int64_t request_id);

void tm_engine_kv_stats(const tm_engine *e, tm_kv_cache_stats *st);

#endif
