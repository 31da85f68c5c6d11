/* queue_int.h — private to src/queue: the tm_queue handle and the helpers the
 * queue's section files share (queue.c: open + migrations + SQL helpers;
 * queue_submit.c; queue_lease.c: claims, leases, checkpoints, finishing;
 * queue_jobs.c: job states, status, cancel, results; queue_batch.c: a job's
 * OpenAI Batch fields, job pages, error rows; queue_runs.c: workers and
 * runs; queue_cost.c: prices, run cost, report queries).
 *
 * One handle, one connection, one mapping of SQLite errors to tm_status
 * (tm_queue_sql_fail). Helpers named *_locked run inside a write transaction
 * the caller opened with tm_queue_begin_write.
 */
#ifndef TM_QUEUE_INT_H
#define TM_QUEUE_INT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/queue.h"

#define TM_QUEUE_MAX_RESPONSE (256u << 20) /* refuse to inflate a stored response past this */

/* Slots of tm_queue.cached. */
enum {
    TM_QUEUE_STMT_DONE,          /* complete: the guarded UPDATE to done */
    TM_QUEUE_STMT_RESULT,        /* complete: INSERT OR REPLACE the result */
    TM_QUEUE_STMT_CKDEL,         /* complete / fail: DELETE the checkpoint */
    TM_QUEUE_STMT_JOBCOUNT,      /* refresh: the job's state and counters */
    TM_QUEUE_STMT_JOBSTATE,      /* tm_queue_job_state */
    TM_QUEUE_STMT_COUNT
};

struct tm_queue {
    sqlite3 *db;
    double (*clock)(void *ctx);
    void *clock_ctx;
    unsigned char rnd[4096];
    size_t rnd_pos;
    /* the open submission, if any */
    int in_submit;
    char sub_job[TM_QUEUE_ID_MAX];
    char *sub_default_model;
    char *sub_endpoint;
    long sub_valid;
    long sub_total;
    unsigned char sub_prefix[8]; /* request ids: req_ + random prefix + counter */
    uint64_t sub_counter;
    char sub_owner[192];         /* jobs.submitter: host:pid:random */
    int sub_txn;                 /* a chunk's write transaction is open */
    int sub_committed;           /* some chunk (and the job row) is committed */
    uint64_t sub_txn_start_ns;   /* monotonic start of the open chunk */
    uint64_t sub_beat_ns;        /* last heartbeat written */
    long sub_chunk_rows;
    sqlite3_stmt *ins_req;
    sqlite3_stmt *ins_failed;
    sqlite3_stmt *find_dup;
    unsigned claim_kinds;        /* tm_queue_set_claim_kinds (queue_claimfilter.c); 0: every kind */
    int busy_ms;                 /* busy handler: give up after this long (tm_queue_set_busy_timeout) */
    uint64_t busy_start_ns;      /* monotonic time the current wait began */
    /* statements of the hot paths, prepared once for the connection's life
     * (tm_queue_cached), and the completion path's zstd context + buffer */
    sqlite3_stmt *cached[TM_QUEUE_STMT_COUNT];
    struct ZSTD_CCtx_s *zc;
    void *zbuf;
    size_t zcap;
    char *claim_models;          /* JSON array of served names (tm_queue_set_served_models); NULL: any */
    char *sub_endpoint_at;       /* "file:line" of the open submission's first request */
    int sub_mixed_ok, sub_mixed; /* mixed endpoints accepted / seen */
};

/* ---- queue_submit.c: chunked submissions --------------------------------- */

/* Remove the rows of the 'validating' job job_id in short transactions
 * (TM_QUEUE_SUBMIT_CHUNK_ROWS each), then the job. A job in any other state
 * is left alone. */
tm_status tm_queue_submission_purge(tm_queue *q, const char *job_id, tm_err *err);
/* Purge the 'validating' jobs whose submitter is gone (same host, pid not
 * running) or silent for TM_QUEUE_SUBMIT_STALE_S. Best effort: called by
 * open; an error leaves them for the next command. */
void tm_queue_reap_submissions(tm_queue *q);

/* ---- queue.c: SQL helpers ------------------------------------------------- */

double tm_queue_now(tm_queue *q);
/* The one SQLite error -> tm_status mapping: busy/locked -> BUSY, I/O, full,
 * can't open, read-only, permission -> IO, not a DB / corrupt -> INPUT,
 * nomem -> NOMEM, anything else INTERNAL. Message "queue: what: sqlite's". */
tm_status tm_queue_sql_fail(tm_queue *q, tm_err *err, const char *what);
tm_status tm_queue_prep(tm_queue *q, const char *sql, sqlite3_stmt **st, tm_err *err);
tm_status tm_queue_exec(tm_queue *q, const char *sql, tm_err *err);
tm_status tm_queue_begin_write(tm_queue *q, tm_err *err); /* BEGIN IMMEDIATE */
/* BEGIN IMMEDIATE for a lease holder's write (finish, renew, release,
 * checkpoint): still busy after the busy timeout (a long write elsewhere),
 * it is tried again TM_QUEUE_BUSY_RETRIES times rather than failing the worker. */
#define TM_QUEUE_BUSY_RETRIES 4
tm_status tm_queue_begin_write_retry(tm_queue *q, tm_err *err);
/* The statement in slot, prepared on first use and kept until close; reset
 * with its bindings cleared. */
tm_status tm_queue_cached(tm_queue *q, int slot, const char *sql, sqlite3_stmt **st, tm_err *err);
tm_status tm_queue_begin_read(tm_queue *q, tm_err *err);  /* BEGIN (a consistent snapshot) */
void tm_queue_rollback(tm_queue *q);                        /* no-op outside a transaction */
tm_status tm_queue_commit(tm_queue *q, tm_err *err);        /* rolls back on failure */
/* Run a statement that returns no rows; *changes (may be NULL) gets the count. */
tm_status tm_queue_step_done(tm_queue *q, sqlite3_stmt *st, const char *what, int *changes, tm_err *err);
void tm_queue_bind_text_or_null(sqlite3_stmt *st, int i, const char *s);
char *tm_queue_col_dup(sqlite3_stmt *st, int i);                          /* malloc'd or NULL */
void tm_queue_col_copy(sqlite3_stmt *st, int i, char *out, size_t outsz); /* "" for NULL */
int64_t tm_queue_col_i64(sqlite3_stmt *st, int i);                        /* 0 for NULL */
tm_status tm_queue_rand(tm_queue *q, unsigned char *out, size_t n, tm_err *err);
/* prefix + 32 lowercase hex digits */
tm_status tm_queue_new_id(tm_queue *q, const char *prefix, char out[TM_QUEUE_ID_MAX], tm_err *err);

/* ---- queue_jobs.c: job state (inside a write transaction) -------------------- */

/* The stored error of a request that did not finish, requests.error: the
 * SQL expression for {"code":?C,"message":?M} (SQLite's json_object, so the
 * queue's C code never builds JSON). Used as "... error=" TM_QUEUE_ERROR_SQL("?2","?3") */
#define TM_QUEUE_ERROR_SQL(C, M) "json_object('code', " C ", 'message', " M ")"
#define TM_QUEUE_CANCELLED_MSG "the job was cancelled before this request ran"
#define TM_QUEUE_EXPIRED_MSG "this request could not be executed before the job's completion window expired"

/* ids of jobs, a growable array */
typedef struct tm_queue_ids {
    char (*ids)[TM_QUEUE_ID_MAX];
    size_t n, cap;
} tm_queue_ids;
void tm_queue_ids_free(tm_queue_ids *l);
tm_status tm_queue_ids_push(tm_queue_ids *l, const char *id, tm_err *err);
/* ids from a query whose optional ?1 is now */
tm_status tm_queue_ids_collect(tm_queue *q, const char *sql, int64_t now, tm_queue_ids *out, tm_err *err);

/* Set a job's state and the matching *_at column (kept if already set). */
tm_status tm_queue_set_job_state_locked(tm_queue *q, const char *job_id, const char *state, int64_t now,
                                        tm_err *err);
/* Move a job forward once its requests allow it. */
tm_status tm_queue_refresh_job_locked(tm_queue *q, const char *job_id, int64_t now, tm_err *err);
/* One job with its counts and sums (tm_queue_job_get) inside the caller's
 * transaction; out is cleared by the caller. */
tm_status tm_queue_job_get_locked(tm_queue *q, const char *job_id, tm_queue_job *out, tm_err *err);
/* Pending requests of cancelling jobs -> cancelled, those jobs refreshed. */
tm_status tm_queue_settle_cancelling_locked(tm_queue *q, int64_t now, tm_err *err);

/* ---- queue_lease.c / queue_runs.c: shared by claims and worker start ------- */

tm_status tm_queue_reclaim_locked(tm_queue *q, double now, int *n, tm_err *err);
tm_status tm_queue_expire_locked(tm_queue *q, int64_t now, int *n, tm_err *err);
/* Workers that stopped heartbeating (older than twice their lease) -> 'lost';
 * their open runs end with end_reason 'lost' at the last heartbeat. */
tm_status tm_queue_mark_lost_locked(tm_queue *q, double now, tm_err *err);

/* ---- queue_claimfilter.c: the kind of a request row r (TM_QUEUE_KIND_*) -- */

/* SQL for the kind of the request row aliased r: chat, text prompt, token-id
 * prompt, or TM_QUEUE_KIND_OTHER (a body no worker can serve: claimed by
 * any worker and failed as the request's own fault). json_type is only
 * evaluated on valid JSON. */
#define TM_QUEUE_KIND_OTHER 8u
/* SQL: the request row r may be claimed by a worker serving the JSON array
 * of names bound at parameter P (NULL: any model). */
#define TM_QUEUE_MODEL_SQL(P) \
    "(" P " IS NULL OR r.model IS NULL OR r.model IN (SELECT value FROM json_each(" P ")))"

#define TM_QUEUE_KIND_SQL                                                                            \
    "(CASE WHEN r.url='/v1/chat/completions' THEN 1 "                                                \
    "WHEN r.url='/v1/completions' AND json_valid(r.body) THEN "                                       \
    "(CASE json_type(r.body,'$.prompt') WHEN 'text' THEN 2 WHEN 'array' THEN 4 ELSE 8 END) ELSE 8 END)"

#endif
