/* worker.h — `tokenmill run`: the loop where queue, engine, output and cost
 * meet (the only module that touches all of them).
 *
 * Claims requests with leases (keeping a window of claimed work ahead of the
 * engine), prepares them (chat template, tokenizer, sampling params), feeds
 * the engine, detokenizes and applies stop strings per choice, and for each
 * finished request writes the OpenAI response body (zstd-compressed by the
 * queue) and marks the request done in one transaction. A request that
 * cannot run (template cannot render, prompt longer than the context, bad
 * parameters) fails alone with a clear error. Cancelled jobs are dropped
 * within one step. Leases are renewed while work is in flight.
 */
#ifndef TM_WORKER_H
#define TM_WORKER_H

#include <stdint.h>
#include "util/status.h"

typedef struct tm_worker_opts {
    const char *db_path;
    const char *model_dir;
    const char *device;          /* "auto" | "cpu" | "cuda" */
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
    double progress_every_s;     /* plain log line period when stderr is not a TTY */
    const char *price;           /* prices.name or $/GPU-hour; NULL: "cpu" or "h100-ondemand" by device */
    const char *nvml_path;       /* NULL: libnvidia-ml.so.1 (energy); tests point it elsewhere */
    int quiet;
} tm_worker_opts;

typedef struct tm_worker_summary {
    int64_t done, failed, cancelled;
    int64_t prompt_tokens, completion_tokens, cached_tokens;
    int64_t steps;
    double seconds;
    double forward_seconds;
    int stopped_with_work;       /* time limit hit with work left */
} tm_worker_summary;

void tm_worker_opts_default(tm_worker_opts *o);

/* TM_OK when nothing is left, TM_ERR_STOPPED when the time limit stopped it
 * with work left (leases released: safe to rerun), other codes on failure. */
tm_status tm_worker_run(const tm_worker_opts *o, tm_worker_summary *sum, tm_err *err);

#endif
