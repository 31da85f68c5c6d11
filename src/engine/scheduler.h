/* scheduler.h — continuous batching under a per-step token budget.
 *
 * Each step: running sequences first (decodes need 1 token; a sequence whose
 * prefill was chunked continues), then waiting sequences are admitted in
 * order (priority, then prompt prefix so that requests sharing a prefix run
 * together, then arrival) while the token budget (max_batch_tokens), the
 * sequence cap (max_seqs) and free KV blocks allow; a prompt longer than the
 * remaining budget is prefilled in chunks. Admission reuses prefix-cached
 * blocks and skips their prefill. When a running sequence needs a block and
 * none is left, the lowest-priority, latest-admitted running sequence is
 * preempted by recompute (blocks freed, back to waiting) — no request ever
 * fails for lack of cache unless it alone cannot fit in the whole pool.
 *
 * The output is a plain list of (sequence, tokens this step) that the engine
 * turns into a backend batch. After the forward pass the engine calls
 * tm_sched_advance for each item, then appends sampled tokens.
 */
#ifndef TM_SCHEDULER_H
#define TM_SCHEDULER_H

#include <stdint.h>
#include "engine/kv_cache.h"
#include "engine/sequence.h"
#include "util/status.h"

typedef struct tm_sched_config {
    int32_t max_batch_tokens; /* tokens computed per step (prefill + decode) */
    int32_t max_seqs;         /* sequences per step */
    int32_t max_waiting;      /* capacity of the waiting queue */
} tm_sched_config;

typedef struct tm_sched_item {
    tm_seq *seq;
    int32_t start;            /* first token index computed this step (= seq->n_computed) */
    int32_t n_new;            /* tokens computed this step */
    int need_logits;          /* the step completes the sequence's known tokens: sample */
} tm_sched_item;

typedef struct tm_sched_out {
    tm_sched_item *items;     /* owned by the scheduler, valid until the next step */
    int32_t n_items;
    int32_t n_tokens;         /* sum of n_new */
    int32_t n_prefill_tokens;
    int32_t n_decode_tokens;
    int32_t n_preempted;      /* preemptions during this step */
    int32_t n_cached_tokens;  /* prompt tokens skipped via the prefix cache this step */
} tm_sched_out;

typedef struct tm_sched tm_sched;

tm_status tm_sched_create(const tm_sched_config *cfg, tm_kv_cache *kv, tm_sched **out, tm_err *err);
void tm_sched_destroy(tm_sched *s);

/* Queue a sequence (state WAITING, no blocks). TM_ERR_BUSY when the waiting
 * queue is full; TM_ERR_INPUT when it could never fit the KV pool. */
tm_status tm_sched_add(tm_sched *s, tm_seq *seq, tm_err *err);

/* Plan one step. An empty plan (n_items 0) with sequences left means they
 * cannot be scheduled (should not happen: add() rejects what cannot fit). */
tm_status tm_sched_step(tm_sched *s, tm_sched_out *out, tm_err *err);

/* After the forward pass: item's tokens are now in the cache; full blocks
 * are registered in the prefix cache. */
void tm_sched_advance(tm_sched *s, const tm_sched_item *item);

/* Remove a sequence (finished, cancelled or failed) and release its blocks. */
void tm_sched_remove(tm_sched *s, tm_seq *seq);

int32_t tm_sched_n_running(const tm_sched *s);
int32_t tm_sched_n_waiting(const tm_sched *s);

#endif
