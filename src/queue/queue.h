/* queue.h — the SQLite job queue: the only code in tokenmill that speaks SQL.
 *
 * One DB file (WAL, foreign_keys=ON, busy_timeout 10 s) holds jobs, requests,
 * results (zstd-compressed response JSON), checkpoints, workers, runs, prices
 * and the cost views; schemas/queue.sql documents every column. Opening a DB
 * applies the embedded migrations newer than its PRAGMA user_version.
 * Several processes may share one DB: claims run in BEGIN IMMEDIATE, so no
 * request is ever held by two live leases, and completing/failing a request is
 * guarded by its lease. Every statement is prepared with bound parameters.
 *
 * One handle type, one connection: this header holds submission, claims and
 * leases, jobs and runs; queue_cost.h holds the cost section (prices, run
 * cost, report queries) on the same handle. The queue returns plain records
 * and strings, never JSON it built: output/ and cli/ build JSON.
 */
#ifndef TM_QUEUE_H
#define TM_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include "util/status.h"

typedef struct tm_queue tm_queue;

#define TM_QUEUE_ID_MAX 48           /* "job_"/"req_" + 32 hex + NUL fits */
#define TM_QUEUE_NAME_MAX 256        /* --name, --model (bytes) */
#define TM_QUEUE_METADATA_MAX_KEYS 16
#define TM_QUEUE_METADATA_KEY_MAX 64
#define TM_QUEUE_METADATA_VALUE_MAX 512
#define TM_QUEUE_BUSY_TIMEOUT_MS 10000
/* PRAGMA application_id of a tokenmill queue ("TMQ1"): a file is identified
 * by it (or, for queues made before it was set, by its schema) before
 * anything is written to it. */
#define TM_QUEUE_APPLICATION_ID 0x544d5131

/* Open (creating if absent) and migrate. */
tm_status tm_queue_open(const char *path, tm_queue **out, tm_err *err);
/* Open an existing DB only (status, cancel, results, export): a missing file
 * is TM_ERR_NOTFOUND, and nothing is created. */
tm_status tm_queue_open_existing(const char *path, tm_queue **out, tm_err *err);
void tm_queue_close(tm_queue *q); /* NULL is a no-op; rolls back an open submission */

/* PRAGMA user_version of the open DB, and the number of embedded migrations. */
int tm_queue_schema_version(tm_queue *q);
int tm_queue_schema_latest(void);

/* How long to wait for another process's write lock (default
 * TM_QUEUE_BUSY_TIMEOUT_MS) before TM_ERR_BUSY. The wait polls in 1-5 ms
 * sleeps (not SQLite's default busy timeout, whose sleeps grow to 100 ms),
 * so a waiter gets the lock within milliseconds of it being free. */
void tm_queue_set_busy_timeout(tm_queue *q, int ms);

/* Test hook: the clock used for leases, expiry and timestamps (unix seconds).
 * NULL restores the real clock. Per handle, not global. */
void tm_queue_set_clock(tm_queue *q, double (*now)(void *ctx), void *ctx);

/* A unique lease owner string for this process: "host:pid:randomhex". */
tm_status tm_queue_make_owner(tm_queue *q, char *out, size_t outsz, tm_err *err);

/* ---- submission: one transaction per job ---------------------------------- */

typedef struct tm_queue_job_opts {
    const char *name;           /* may be NULL */
    const char *model;          /* default model; may be NULL */
    int64_t priority;           /* higher is claimed first */
    const char *metadata_json;  /* JSON object text, or NULL for {} */
    int64_t completion_window;  /* seconds; <= 0 means 24 h */
    int skip_invalid;           /* 1: --on-invalid skip */
    const char *input_filename; /* the submitted file name(s) as given; may be NULL */
    const char *input_sha256;   /* hex SHA-256 of the input bytes, or NULL (stdin) */
    int mixed_endpoints;        /* 1: accept chat and completions lines in one job (endpoint 'mixed') */
} tm_queue_job_opts;

typedef struct tm_queue_new_request {
    const char *custom_id;      /* required for add; may be NULL for add_failed */
    const char *source;         /* display name of the file */
    long line;                  /* 1-based */
    const char *url;            /* endpoint; may be NULL for add_failed */
    const char *model;          /* NULL: the job's default model */
    const char *body_json;      /* may be NULL for add_failed */
    int64_t max_tokens;         /* < 0: absent */
    int64_t n;                  /* choices (<= 0 taken as 1) */
    const char *param;          /* add_failed: the field at fault (error "param"), or NULL */
} tm_queue_new_request;

/* Submissions are inserted in chunks: each write transaction holds at most
 * TM_QUEUE_SUBMIT_CHUNK_ROWS rows or TM_QUEUE_SUBMIT_CHUNK_MS of wall time
 * (validation between inserts included), then pauses TM_QUEUE_SUBMIT_YIELD_MS,
 * so workers and status keep access.
 * Until commit the job is 'validating': not claimed, not listed. A rejected
 * or failed submission's committed chunks are deleted by rollback; a killed
 * one's by the next open of the queue (the job's submitter pid is gone on
 * this host, or it wrote no chunk for TM_QUEUE_SUBMIT_STALE_S). A submission
 * shorter than one chunk stays one transaction (a rejection writes nothing). */
#define TM_QUEUE_SUBMIT_CHUNK_ROWS 8000
#define TM_QUEUE_SUBMIT_CHUNK_MS 80
/* after each chunk the submission pauses this long: other SQLite clients
 * (sqlite3, Python) poll every 100 ms once they have waited a while, so
 * shorter pauses let them starve. (Measured: 6 ms pauses made a 1M-line
 * submit 236 -> 191 s but a Python writer beside a worker waited 2.3 s for
 * the lock instead of 0.5 s; tokenmill's own handles poll every <= 5 ms.) */
#define TM_QUEUE_SUBMIT_YIELD_MS 100
#define TM_QUEUE_SUBMIT_STALE_S 600

/* BEGIN IMMEDIATE and insert the job in state 'validating'. job_id receives
 * the new id. Only one submission may be open per handle. */
tm_status tm_queue_submit_begin(tm_queue *q, const tm_queue_job_opts *opts,
                                char job_id[TM_QUEUE_ID_MAX], tm_err *err);
/* Add a valid request. A custom_id already used in this job gives
 * TM_ERR_INPUT with err = 'custom_id: duplicate "x" (first at a.jsonl:3)'
 * (found through the DB's unique index; the transaction stays usable). A job
 * is one endpoint, as OpenAI's: a url other than the job's first request's
 * gives TM_ERR_INPUT 'url: ... in a job of ... requests (from a.jsonl:1) ...'
 * unless opts.mixed_endpoints (then the job's endpoint is 'mixed').
 * Either way err starts with the field at fault and ": ". */
tm_status tm_queue_submit_add(tm_queue *q, const tm_queue_new_request *r, tm_err *err);
/* Record an invalid line as a failed request (error code "invalid_request"). */
tm_status tm_queue_submit_add_failed(tm_queue *q, const tm_queue_new_request *r,
                                     const char *message, tm_err *err);
/* Commit the open chunk when it is over its time (call once per input line,
 * so a run of lines that insert nothing does not hold the lock either). */
tm_status tm_queue_submit_tick(tm_queue *q, tm_err *err);
/* Job -> queued (or failed when it has no valid request) and COMMIT. */
tm_status tm_queue_submit_commit(tm_queue *q, tm_err *err);
/* ROLLBACK and delete the chunks already committed: no job is left (the
 * queue's other contents are untouched). Safe to call when nothing is open. */
void tm_queue_submit_rollback(tm_queue *q);

/* ---- workers: claim, lease, finish ----------------------------------------- */

typedef struct tm_queue_claimed {
    char request_id[TM_QUEUE_ID_MAX];
    char job_id[TM_QUEUE_ID_MAX];
    char *custom_id;   /* malloc'd strings; tm_queue_claimed_clear frees them */
    char *url;
    char *model;
    char *body_json;
    int64_t max_tokens; /* -1: absent */
    int64_t n;
    int64_t attempts;   /* including this claim */
    int64_t priority;   /* the job's priority (higher first) */
    double lease_expires;
    /* The request's checkpoint from an earlier attempt (decompressed state,
     * see src/worker/checkpoint.h), or NULL. checkpoint_bad: a row exists but
     * its zstd frame is unreadable (the request starts over). */
    void *checkpoint;
    size_t checkpoint_len;
    int64_t checkpoint_tokens;
    int checkpoint_bad;
} tm_queue_claimed;

void tm_queue_claimed_clear(tm_queue_claimed *c);

/* In one BEGIN IMMEDIATE transaction: reclaim expired leases, expire jobs past
 * their window, then take up to max pending requests of queued/in_progress jobs
 * (job priority desc, then submission order), leased to owner for lease_s
 * seconds; their jobs go queued -> in_progress. out[0..*n_out) are filled. */
tm_status tm_queue_claim(tm_queue *q, const char *owner, int max, double lease_s,
                         tm_queue_claimed *out, int *n_out, tm_err *err);

/* Extend every lease held by owner to now + lease_s. *renewed may be NULL. */
tm_status tm_queue_renew(tm_queue *q, const char *owner, double lease_s, int *renewed, tm_err *err);
/* held[i] = 1 when owner still holds the lease of ids[i] (a frozen worker
 * finds out which requests another worker reclaimed). */
tm_status tm_queue_leases_held(tm_queue *q, const char *owner, const char *const *ids, int n, int *held,
                               tm_err *err);

/* ---- checkpoints: generated tokens of in-flight requests ------------------- */

#define TM_QUEUE_MAX_CHECKPOINT (64u << 20) /* decompressed state size cap */

typedef struct tm_queue_checkpoint {
    const char *request_id;
    int64_t tokens_done;        /* tokens generated so far, all choices */
    const void *state;          /* opaque state (src/worker/checkpoint.h), compressed here */
    size_t len;
    double gpu_seconds, cost_usd; /* charged so far over all attempts; < 0: NULL */
} tm_queue_checkpoint;

/* Write (replace) the checkpoints of requests owner holds, in ONE transaction;
 * a request whose lease owner no longer holds is skipped (counted out of
 * *saved, which may be NULL). run_id may be NULL. */
tm_status tm_queue_checkpoint_save(tm_queue *q, const char *owner, const char *run_id,
                                   const tm_queue_checkpoint *cks, int n, int *saved, tm_err *err);

/* Checkpointed requests still pending or running, and their tokens. */
tm_status tm_queue_checkpoint_stats(tm_queue *q, int64_t *requests, int64_t *tokens, tm_err *err);

typedef struct tm_queue_usage {
    int64_t prompt_tokens, completion_tokens, cached_tokens;
    double gpu_seconds, energy_joules, cost_usd; /* < 0: leave NULL */
    double wasted_seconds, wasted_usd;           /* recompute share of the above; < 0: NULL */
    const char *run_id;                          /* the run storing the result; may be NULL */
} tm_queue_usage;

/* Store the response body JSON (zstd-compressed), mark the request done, add
 * the token counts, delete its checkpoint, update the job state: one
 * transaction. Only the current lease holder may: otherwise TM_ERR_NOTFOUND
 * ("lease not held") and nothing is written. usage may be NULL. */
tm_status tm_queue_complete(tm_queue *q, const char *owner, const char *request_id,
                            const char *response_json, size_t len,
                            const tm_queue_usage *usage, tm_err *err);
/* One finished request of a step for tm_queue_complete_batch. */
typedef struct tm_queue_completion {
    const char *request_id;
    const char *response_json;  /* the response body JSON, len bytes */
    size_t len;
    const tm_queue_usage *usage; /* may be NULL */
    int stored;                 /* out: 1 stored; 0 the lease is not held (nothing written for it) */
} tm_queue_completion;

/* tm_queue_complete for a step's finished requests in ONE transaction (each
 * still guarded by its own lease: c[i].stored says which were stored). On
 * an error nothing is stored (every stored = 0). A database busy past the
 * busy timeout is tried again (TM_QUEUE_BUSY_RETRIES) before TM_ERR_BUSY.
 * *stored (may be NULL) gets the count. */
tm_status tm_queue_complete_batch(tm_queue *q, const char *owner, tm_queue_completion *c, int n, int *stored,
                                  tm_err *err);
/* Mark a leased request failed with an error code and message (stored in
 * requests.error as {"code":..,"message":..}, schemas/queue.sql). */
tm_status tm_queue_fail(tm_queue *q, const char *owner, const char *request_id,
                        const char *code, const char *message, tm_err *err);
/* Give leases back (request -> pending). request_id NULL: all of owner's. */
tm_status tm_queue_release(tm_queue *q, const char *owner, const char *request_id,
                           int *released, tm_err *err);
/* Running requests whose lease has expired -> pending. */
tm_status tm_queue_reclaim_expired(tm_queue *q, int *reclaimed, tm_err *err);
/* Pending requests of jobs past expires_at -> expired; such jobs -> expired
 * once nothing of theirs is running. */
tm_status tm_queue_expire(tm_queue *q, int *expired, tm_err *err);

/* ---- jobs: status, cancel ------------------------------------------------ */

typedef struct tm_queue_job {
    char id[TM_QUEUE_ID_MAX];
    char state[16];
    char *name, *model, *endpoint, *metadata_json; /* malloc'd; NULL when absent */
    int64_t priority, completion_window;
    int64_t created_at, in_progress_at, finalizing_at, completed_at, failed_at,
            expired_at, cancelling_at, cancelled_at, expires_at; /* 0 = not set */
    int64_t total, pending, running, done, failed, cancelled, expired;
    /* sums over done and failed requests (the only ones that carry them) */
    int64_t prompt_tokens, completion_tokens, cached_tokens;
    double gpu_seconds, energy_joules, cost_usd;
    double wasted_seconds, wasted_usd; /* recompute share of gpu_seconds / cost_usd (0 when none recorded) */
    int has_cost; /* some request has a cost recorded */
    int has_energy; /* some request has energy measured (NVML); else energy is unknown, not 0 */
} tm_queue_job;

void tm_queue_job_clear(tm_queue_job *j);

/* The OpenAI Batch fields of a job that tm_queue_job lacks (queue_jobs.c):
 * the input file's id and name(s), the one model its requests name (NULL
 * when they name none or several), and the errors of the invalid lines
 * recorded by --on-invalid skip (code, input line, message, param). */
typedef struct tm_queue_line_error {
    char *code, *message, *param; /* malloc'd; param NULL when unknown */
    int64_t line;
} tm_queue_line_error;
#define TM_QUEUE_LINE_ERRORS_MAX 1000 /* at most this many errors are read */
typedef struct tm_queue_job_batch {
    char *input_file_id, *input_filename, *input_sha256, *model; /* malloc'd or NULL */
    tm_queue_line_error *errors; /* [n_errors] in line order */
    int n_errors;
    int64_t invalid;             /* all invalid lines (n_errors is capped) */
} tm_queue_job_batch;
void tm_queue_job_batch_clear(tm_queue_job_batch *b);
/* (may be called from a tm_queue_job_page callback: it reads in the page's snapshot) */
tm_status tm_queue_job_batch_get(tm_queue *q, const char *job_id, tm_queue_job_batch *out, tm_err *err);

/* A page of jobs, newest first (OpenAI's list order): those submitted
 * before job after (NULL: from the newest), in state state (NULL: any but
 * validating), at most limit; *more gets how many more match past the page. */
tm_status tm_queue_job_page(tm_queue *q, const char *after, const char *state, int limit,
                            tm_status (*cb)(void *ctx, const tm_queue_job *job, tm_err *err), void *ctx,
                            int64_t *more, tm_err *err);
/* The newest job (not failed, cancelled nor expired) whose input_sha256 is
 * sha: job_id gets its id, or "" when none. */
tm_status tm_queue_job_find_input(tm_queue *q, const char *sha, char job_id[TM_QUEUE_ID_MAX], tm_err *err);

/* One job with its request counts and token/cost sums. TM_ERR_NOTFOUND if
 * unknown. The counts and sums are the jobs row's counters (migration 0007:
 * kept exact by triggers in every transaction that changes a request), so
 * this reads one row whatever the job's size. */
tm_status tm_queue_job_get(tm_queue *q, const char *job_id, tm_queue_job *out, tm_err *err);
/* The same job with its counts and sums counted again from its requests
 * (GROUP BY over the job: O(job)); for checks. */
tm_status tm_queue_job_recount(tm_queue *q, const char *job_id, tm_queue_job *out, tm_err *err);
/* Every job's counters against a recount, in one read transaction:
 * *mismatched jobs disagree (sums of REAL columns compared to 1e-9 relative). */
tm_status tm_queue_check_counters(tm_queue *q, int64_t *jobs_checked, int64_t *mismatched, tm_err *err);
/* A job's state only (state: 16 bytes). TM_ERR_NOTFOUND if unknown. */
tm_status tm_queue_job_state(tm_queue *q, const char *job_id, char state[16], tm_err *err);
/* Pending and running requests over every listed job (O(jobs), from the counters). */
tm_status tm_queue_left(tm_queue *q, int64_t *pending, int64_t *running, tm_err *err);
/* Done requests of a job with finished_at in [from, to): *n, and their
 * earliest / latest finished_at (first, last may be NULL). A scan of the
 * job's requests: for benchmarks, not the step path. */
tm_status tm_queue_done_span(tm_queue *q, const char *job_id, int64_t from, int64_t to, int64_t *n, int64_t *first,
                             int64_t *last, tm_err *err);
/* Every job in submission order; the job passed to cb is cleared after cb. */
tm_status tm_queue_job_list(tm_queue *q,
                            tm_status (*cb)(void *ctx, const tm_queue_job *job, tm_err *err),
                            void *ctx, tm_err *err);
/* Pending -> cancelled at once; job -> cancelling, -> cancelled when nothing
 * runs. A finished job is left as it is. state_out (16 bytes) may be NULL. */
tm_status tm_queue_cancel(tm_queue *q, const char *job_id, char state_out[16], tm_err *err);

/* ---- reading results -------------------------------------------------------- */

/* Done requests of a job in submission order, with the decompressed response. */
typedef tm_status (*tm_queue_result_cb)(void *ctx, const char *request_id, const char *custom_id,
                                        const char *response_json, size_t len, tm_err *err);
tm_status tm_queue_foreach_result(tm_queue *q, const char *job_id, tm_queue_result_cb cb,
                                  void *ctx, tm_err *err);
/* Failed / cancelled / expired requests with their recorded error's code and
 * message (each NULL when none was recorded), as plain strings. */
typedef tm_status (*tm_queue_error_cb)(void *ctx, const char *request_id, const char *custom_id,
                                       const char *state, const char *code, const char *message,
                                       tm_err *err);
tm_status tm_queue_foreach_error(tm_queue *q, const char *job_id, tm_queue_error_cb cb,
                                 void *ctx, tm_err *err);
/* The same rows with the request's input line and the recorded param (the
 * field at fault of an invalid line; NULL when none). */
typedef struct tm_queue_error_row {
    const char *request_id, *custom_id, *state, *code, *message, *param;
    int64_t line;
} tm_queue_error_row;
tm_status tm_queue_foreach_error_row(tm_queue *q, const char *job_id,
                                     tm_status (*cb)(void *ctx, const tm_queue_error_row *row, tm_err *err),
                                     void *ctx, tm_err *err);

/* ---- workers and runs ------------------------------------------------------ */

/* A worker is alive while its state is starting/running/draining and its
 * heartbeat is younger than its lease_seconds; one whose heartbeat is older
 * than twice that is marked 'lost' (and its open run ended with end_reason
 * 'lost') by the next claim or worker start. */

/* Register a worker (workers row id = owner, host and pid from the owner
 * string's parts, state 'starting') and open a runs row; run_id receives its
 * id. exclusive: in the same transaction, refuse when another worker is
 * alive: TM_ERR_BUSY with *other_alive = 1 and err naming it (other_alive
 * may be NULL). */
tm_status tm_queue_worker_start(tm_queue *q, const char *owner, const char *device, double lease_s,
                                int exclusive, int *other_alive, char run_id[TM_QUEUE_ID_MAX], tm_err *err);

typedef struct tm_queue_run_stats {
    int64_t requests_done, prompt_tokens, completion_tokens;
    int64_t in_flight;            /* requests held now */
    const char *state;            /* workers.state to set; NULL: 'running' (heartbeat) / 'stopped' (stop) */
    int64_t requests_checkpointed;/* stop: checkpointed and released at the end */
    const char *end_reason;       /* stop: runs.end_reason (schemas/queue.sql) */
} tm_queue_run_stats;

/* Heartbeat: workers.heartbeat_at = now, state, in_flight, and the run's counters. */
tm_status tm_queue_worker_heartbeat(tm_queue *q, const char *owner, const char *run_id,
                                    const tm_queue_run_stats *st, tm_err *err);
/* The worker stops: workers.state = 'stopped', runs.ended_at / exit_code / end_reason. */
tm_status tm_queue_worker_stop(tm_queue *q, const char *owner, const char *run_id,
                               const tm_queue_run_stats *st, int exit_code, tm_err *err);

/* Running requests leased to owners other than owner, per owner, with that
 * owner's last heartbeat (0 when it has no workers row). A worker about to
 * exit with nothing to claim uses it to wait for leases of dead workers
 * (their heartbeat stops advancing) and not for live ones. Requests out on
 * a shard database (owner 'shard:...', queue_shard.h) are not listed: they
 * come back by `tokenmill merge`, not by a lease. */
typedef struct tm_queue_holder {
    char owner[128];
    int64_t heartbeat_at;
    int64_t requests;
    double lease_expires;      /* the latest of its leases */
} tm_queue_holder;
tm_status tm_queue_other_holders(tm_queue *q, const char *owner, tm_queue_holder *out, int max, int *n,
                                 tm_err *err);

typedef struct tm_queue_worker {
    char id[128];
    char host[128];
    int64_t pid;
    char device[64];
    char state[16];            /* as stored; alive says whether it really is */
    int64_t started_at, heartbeat_at;
    double lease_s;            /* 0 when unknown (older rows) */
    int64_t in_flight;
    int alive;
    char run_id[TM_QUEUE_ID_MAX]; /* its latest run */
} tm_queue_worker;

/* Workers, most recent first: alive ones, and those seen in the last
 * since_s seconds (<= 0: all). */
tm_status tm_queue_worker_list(tm_queue *q, double since_s,
                               tm_status (*cb)(void *ctx, const tm_queue_worker *w, tm_err *err), void *ctx,
                               tm_err *err);

/* ---- claim filter (queue_claimfilter.c) ----------------------------------- */

/* The kinds of request a worker can serve with its own set-up: a worker
 * without a tokenizer serves only token-id prompts, one without a chat
 * template no chat. Requests of other kinds are left pending (not claimed,
 * attempts not charged) for a worker that can. A request no worker can
 * serve (an unknown endpoint, a body that is not JSON) is always claimable:
 * it fails as its own fault. */
#define TM_QUEUE_KIND_CHAT 1u   /* /v1/chat/completions: tokenizer + chat template */
#define TM_QUEUE_KIND_TEXT 2u   /* /v1/completions, prompt a string: tokenizer */
#define TM_QUEUE_KIND_IDS 4u    /* /v1/completions, prompt token ids */
#define TM_QUEUE_KIND_ALL 7u

/* Later claims on this handle take only requests of these kinds
 * (TM_QUEUE_KIND_ALL or 0: every kind). */
void tm_queue_set_claim_kinds(tm_queue *q, unsigned kinds);

/* The model names this worker serves (run --served-model-name; names[0] is
 * the one its responses carry): later claims on this handle take only
 * requests whose model (requests.model: body.model, else the job's --model)
 * is one of them, or that name no model. Recorded on the worker (workers.
 * models, what `status` checks queued work against) and on its run
 * (runs.served_model, what the cost views group by). n = 0: no filter. */
#define TM_QUEUE_SERVED_MAX 16
tm_status tm_queue_set_served_models(tm_queue *q, const char *owner, const char *run_id,
                                     const char *const *names, int n, tm_err *err);

/* Queued work no live worker can serve: pending requests of claimable jobs
 * whose model is served by no worker alive now (its heartbeat younger than
 * its lease), per model, most requests first; cb gets each model and count. */
tm_status tm_queue_unserved_models(tm_queue *q,
                                   tm_status (*cb)(void *ctx, const char *model, int64_t n, tm_err *err),
                                   void *ctx, tm_err *err);

/* Pending requests of claimable jobs (queued / in_progress) by kind:
 * counts[0] chat, [1] text prompt, [2] token-id prompt, [3] other. */
tm_status tm_queue_pending_kinds(tm_queue *q, int64_t counts[4], tm_err *err);
/* (those of the served models only, once tm_queue_set_served_models set them) */

/* ---- retry (queue_retry.c) ------------------------------------------------- */

/* Failed requests of job_id back to pending (error cleared; invalid lines
 * recorded at submit are not requests and stay), all of them or those whose
 * error code is code (NULL: all), in one transaction; a finished job goes
 * back to queued / in_progress. *requeued gets the count. A cancelling,
 * cancelled, expired or still-validating job is refused (TM_ERR_INPUT); an
 * unknown one is TM_ERR_NOTFOUND. */
tm_status tm_queue_retry(tm_queue *q, const char *job_id, const char *code, int64_t *requeued, tm_err *err);

#endif
