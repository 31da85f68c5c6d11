/* queue_retry.c — `tokenmill retry`: failed requests of a job back to the
 * queue (a worker that failed them for its own reasons, or a transient
 * fault), in one transaction. */
#include <string.h>

#include "queue/queue_int.h"

/* The job's state (NOTFOUND when unknown), inside the transaction. */
static tm_status job_state(tm_queue *q, const char *job_id, char state[16], tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT state FROM jobs WHERE id=?1", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) tm_queue_col_copy(st, 0, state, 16);
    else if (rc == SQLITE_DONE) s = tm_errf(err, TM_ERR_NOTFOUND, "%s: no such job", job_id);
    else s = tm_queue_sql_fail(q, err, "read job state");
    sqlite3_finalize(st);
    return s;
}

static tm_status requeue(tm_queue *q, const char *job_id, const char *code, int *changes, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "UPDATE requests SET state='pending', error=NULL, finished_at=NULL, "
                                   "lease_owner=NULL, lease_expires=NULL "
                                   "WHERE job_id=?1 AND state='failed' AND invalid=0 AND (?2 IS NULL OR "
                                   "(CASE WHEN json_valid(error) THEN json_extract(error,'$.code') END)=?2)",
                                &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    tm_queue_bind_text_or_null(st, 2, code);
    s = tm_queue_step_done(q, st, "requeue failed requests", changes, err);
    sqlite3_finalize(st);
    return s;
}

/* A finished job with requests pending again goes back to work. */
static tm_status reopen_job(tm_queue *q, const char *job_id, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "UPDATE jobs SET state=CASE WHEN in_progress_at IS NULL THEN 'queued' "
                                   "ELSE 'in_progress' END, finalizing_at=NULL, completed_at=NULL, failed_at=NULL "
                                   "WHERE id=?1 AND state IN ('finalizing','completed','failed')",
                                &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    s = tm_queue_step_done(q, st, "reopen job", NULL, err);
    sqlite3_finalize(st);
    return s;
}

tm_status tm_queue_retry(tm_queue *q, const char *job_id, const char *code, int64_t *requeued, tm_err *err)
{
    *requeued = 0;
    tm_status s = tm_queue_begin_write(q, err);
    if (s) return s;
    char state[16] = "";
    int changes = 0;
    s = job_state(q, job_id, state, err);
    if (!s && (!strcmp(state, "cancelling") || !strcmp(state, "cancelled") || !strcmp(state, "expired") ||
               !strcmp(state, "validating")))
        s = tm_errf(err, TM_ERR_INPUT, "%s: the job is %s; its failed requests are not retried", job_id, state);
    if (!s) s = requeue(q, job_id, code, &changes, err);
    if (!s && changes > 0) s = reopen_job(q, job_id, err);
    if (s) { tm_queue_rollback(q); return s; }
    if ((s = tm_queue_commit(q, err))) return s;
    *requeued = changes;
    return TM_OK;
}
