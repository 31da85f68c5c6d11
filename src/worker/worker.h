/* worker.h — `tokenmill run`: the loop where queue, engine, output and cost
 * meet (the only module that touches all of them).
 *
 * Claims requests with leases (keeping a window of claimed work ahead of the
 * engine), prepares them (chat template, tokenizer, sampling params), feeds
 * the engine, detokenizes and applies stop strings per choice, and for each
 * finished request writes the OpenAI response body (zstd-compressed by the
 * queue) and marks the request done in one transaction. A request that
 * cannot run (template cannot render, prompt longer than the context, bad
 * parameters) fails alone with a clear error. A request the worker's own
 * set-up cannot serve (no tokenizer: chat and text prompts; no chat
 * template: chat) is never claimed nor failed: it stays queued for another
 * worker, the worker says so once, and it exits 69 (TM_ERR_UNAVAILABLE,
 * runs.end_reason 'unservable') at start when it can serve none of the
 * pending work, or at the end when such work is left; weights with NaN/Inf
 * are refused at load (69). Cancelled jobs are dropped within one step.
 * Leases are renewed while work is in flight.
 *
 * Preemption safety (issue 7). Every checkpoint_every_s seconds, and when
 * the run stops, the generated tokens of each in-flight request go to the
 * checkpoints table (worker/checkpoint.h) in one transaction guarded by the
 * leases. A claimed request that has a checkpoint resumes from it, and its
 * output is the uninterrupted run's (bit for bit on the CPU backend).
 * One drain path serves signals (signal_fd), a preemption notice and the
 * time limit: stop claiming; keep decoding the requests whose remaining
 * tokens fit before the deadline minus drain_margin_s at the measured step
 * time; checkpoint and release the others at once; at the deadline minus
 * the margin (or at a second signal) checkpoint and release everything left;
 * record runs.end_reason; return TM_ERR_STOPPED (exit 75) when work is left.
 *
 * Options arrive typed (device, quantization, KV type: parsed once at the
 * command line, cli/engine_opts.h). Every list the loop fills is sized from
 * the options at set-up (window up to 65,536). The code: worker_int.h
 * (private state) and run.c, request.c, drain.c, setup.c.
 */
#ifndef TM_WORKER_H
#define TM_WORKER_H

#include <stdint.h>
#include "backend/backend.h"
#include "quant/quant.h"
#include "util/status.h"

/* The price applied when --price is not given: "cpu" on the CPU backend,
 * this prices profile on a GPU (schemas/migrations seed both). */
#define TM_WORKER_PRICE_CPU "cpu"
#define TM_WORKER_PRICE_GPU "h100-ondemand"

/* run --served-model-name: at most this many names (over all its values). */
#define TM_WORKER_SERVED_MAX 16

typedef struct tm_worker_opts {
    const char *db_path;
    const char *model_dir;
    tm_device device;            /* TM_DEVICE_AUTO: CUDA when built in and visible, else CPU */
    const char *chat_template;   /* override, or NULL */
    int watch;                   /* 1: keep polling for new work; 0: exit when empty */
    int64_t time_limit_s;        /* 0: none */
    int32_t max_batch_tokens;    /* default 2048 */
    int32_t max_seqs;            /* default 64 */
    int32_t window;              /* claimed requests ahead (default 2 x max_seqs) */
    int32_t max_model_len;       /* 0: the model's max_position_embeddings */
    int64_t kv_memory;           /* bytes; 0: automatic */
    double lease_s;              /* default 60 */
    int n_threads;               /* 0: all cores */
    double progress_every_s;     /* plain log line period when stderr is not a TTY; <= 0: no progress line */
    const char *price;           /* prices.name or $/GPU-hour; NULL: TM_WORKER_PRICE_CPU / _GPU by device */
    const char *nvml_path;       /* NULL: libnvidia-ml.so.1 (energy); tests point it elsewhere */
    int quiet;
    double checkpoint_every_s;   /* default 30; 0: only when the run stops */
    double drain_grace_s;        /* deadline after a signal (default 30) */
    double drain_margin_s;       /* stop this long before a deadline (default 5) */
    const char *preemption_notice; /* notice/notice.h spec, or NULL */
    int signal_fd;               /* read end of a pipe of signal numbers (non-blocking), or -1 */
    int exclusive;               /* do nothing when another worker of the DB is alive */
    tm_quant_scheme quant;       /* quantize the weights at load (quant/quant.h); TM_QS_NONE: as stored */
    tm_kv_dtype kv_dtype;        /* TM_KV_AUTO: the backend's own */
    unsigned backend_flags;      /* TM_BACKEND_* (backend.h), e.g. TM_BACKEND_CUDA_FAST */
    const tm_backend_ops *backend; /* benchmarks only (bench host's instant backend): this table instead of
                                      device's; NULL for every user-facing run */
    /* --served-model-name values as given (each one name or a comma list).
     * None: the model directory's base name, plus config.json's
     * _name_or_path when it has one. The worker claims only requests whose
     * model (body.model, else the job's --model) is one of the names, or
     * that name none; its responses' "model" is the first name. */
    const char *served_names[TM_WORKER_SERVED_MAX];
    int n_served_names;
} tm_worker_opts;

typedef struct tm_worker_summary {
    int64_t done, failed, cancelled;
    int64_t prompt_tokens, completion_tokens, cached_tokens;
    int64_t steps;
    double seconds;
    double forward_seconds;
    int stopped_with_work;       /* drained with work left (checkpointed / released / pending) */
    int64_t checkpointed;        /* requests checkpointed and released at the stop */
    int64_t resumed;             /* requests resumed from a checkpoint */
    int64_t checkpoints_saved;   /* checkpoint rows written over the run */
    int64_t leases_lost;         /* requests dropped because another worker took them */
    int other_alive;             /* exclusive: another worker is alive, nothing done */
    char end_reason[48];         /* runs.end_reason */
} tm_worker_summary;

void tm_worker_opts_default(tm_worker_opts *o);

/* TM_OK when nothing is left (or, exclusive, another worker is alive:
 * sum->other_alive), TM_ERR_STOPPED when a drain stopped it with work left
 * (checkpointed, leases released: safe to rerun), other codes on failure. */
tm_status tm_worker_run(const tm_worker_opts *o, tm_worker_summary *sum, tm_err *err);

#endif
