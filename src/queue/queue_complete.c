/* queue_complete.c — finishing leased requests: complete (one request, or a
 * whole step's finished requests in one transaction) and fail. queue.h
 * "workers: claim, lease, finish".
 *
 * The completion path runs once per step with many requests, so its
 * statements are prepared once per connection (tm_queue_cached) and one zstd
 * context and output buffer are kept on the handle: a step's commit
 * allocates nothing once the buffer has grown to the largest response.
 */
#include "queue/queue_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define SQL_DONE                                                                                             \
    "UPDATE requests SET state='done', lease_owner=NULL, lease_expires=NULL, error=NULL, "                   \
    "finished_at=?2, prompt_tokens=?3, completion_tokens=?4, cached_tokens=?5, "                            \
    "gpu_seconds=COALESCE(?6,gpu_seconds), energy_joules=COALESCE(?7,energy_joules), "                      \
    "cost_usd=COALESCE(?8,cost_usd), wasted_seconds=COALESCE(?9,wasted_seconds), "                          \
    "wasted_usd=COALESCE(?10,wasted_usd), run_id=COALESCE(?11,run_id) "                                     \
    "WHERE id=?1 AND state='running' AND lease_owner=?12 RETURNING job_id"

static tm_status delete_checkpoint(tm_queue *q, const char *request_id, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_cached(q, TM_QUEUE_STMT_CKDEL, "DELETE FROM checkpoints WHERE request_id=?1", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
    s = tm_queue_step_done(q, st, "delete checkpoint", NULL, err);
    sqlite3_reset(st);
    return s;
}

/* Compress c's response into q->zbuf (grown as needed); *zlen out. */
static tm_status compress(tm_queue *q, const tm_queue_completion *c, size_t *zlen, tm_err *err)
{
    if (c->len > TM_QUEUE_MAX_RESPONSE)
        return tm_errf(err, TM_ERR_INPUT, "queue: %s: response of %zu bytes is too large", c->request_id, c->len);
    size_t bound = ZSTD_compressBound(c->len);
    if (bound > q->zcap) {
        void *p = realloc(q->zbuf, bound);
        if (!p) return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
        q->zbuf = p;
        q->zcap = bound;
    }
    if (!q->zc && !(q->zc = ZSTD_createCCtx())) return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
    *zlen = ZSTD_compressCCtx(q->zc, q->zbuf, q->zcap, c->response_json, c->len, 3);
    if (ZSTD_isError(*zlen)) return tm_errf(err, TM_ERR_INTERNAL, "queue: zstd: %s", ZSTD_getErrorName(*zlen));
    return TM_OK;
}

/* Mark c done under owner's lease (c->stored = 1 and job_id out), then its
 * result and the checkpoint's deletion; a lease not held leaves it alone. */
static tm_status complete_one(tm_queue *q, const char *owner, int64_t now, tm_queue_completion *c,
                              char job_id[TM_QUEUE_ID_MAX], tm_err *err)
{
    size_t zlen = 0;
    tm_status s = compress(q, c, &zlen, err);
    sqlite3_stmt *st;
    if (!s) s = tm_queue_cached(q, TM_QUEUE_STMT_DONE, SQL_DONE, &st, err);
    if (s) return s;
    tm_queue_usage u = {0, 0, 0, -1, -1, -1, -1, -1, NULL};
    if (c->usage) u = *c->usage;
    sqlite3_bind_text(st, 1, c->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, u.prompt_tokens);
    sqlite3_bind_int64(st, 4, u.completion_tokens);
    sqlite3_bind_int64(st, 5, u.cached_tokens);
    if (u.gpu_seconds >= 0) sqlite3_bind_double(st, 6, u.gpu_seconds);
    if (u.energy_joules >= 0) sqlite3_bind_double(st, 7, u.energy_joules);
    if (u.cost_usd >= 0) sqlite3_bind_double(st, 8, u.cost_usd);
    if (u.gpu_seconds >= 0 && u.wasted_seconds >= 0) sqlite3_bind_double(st, 9, u.wasted_seconds);
    if (u.cost_usd >= 0 && u.wasted_usd >= 0) sqlite3_bind_double(st, 10, u.wasted_usd);
    tm_queue_bind_text_or_null(st, 11, u.run_id);
    sqlite3_bind_text(st, 12, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    c->stored = rc == SQLITE_ROW;
    if (c->stored) tm_queue_col_copy(st, 0, job_id, TM_QUEUE_ID_MAX);
    if (rc == SQLITE_ROW) rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return tm_queue_sql_fail(q, err, "mark done");
    if (!c->stored) return TM_OK;
    if ((s = tm_queue_cached(q, TM_QUEUE_STMT_RESULT, "INSERT OR REPLACE INTO results(request_id, response_zstd, "
                                                      "response_size, created_at) VALUES (?1,?2,?3,?4)", &st, err)))
        return s;
    sqlite3_bind_text(st, 1, c->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, q->zbuf, (int)zlen, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)c->len);
    sqlite3_bind_int64(st, 4, now);
    s = tm_queue_step_done(q, st, "insert result", NULL, err);
    sqlite3_reset(st);
    if (!s) s = delete_checkpoint(q, c->request_id, err);
    return s;
}

tm_status tm_queue_complete_batch(tm_queue *q, const char *owner, tm_queue_completion *c, int n, int *stored,
                                  tm_err *err)
{
    if (stored) *stored = 0;
    for (int i = 0; i < n; i++) c[i].stored = 0;
    if (n <= 0) return TM_OK;
    tm_status s = tm_queue_begin_write_retry(q, err);
    if (s) return s;
    int64_t now = (int64_t)tm_queue_now(q);
    char job[TM_QUEUE_ID_MAX] = "", last[TM_QUEUE_ID_MAX] = "";
    int ok = 0;
    for (int i = 0; i < n && !s; i++) {
        s = complete_one(q, owner, now, &c[i], job, err);
        if (s || !c[i].stored) continue;
        ok++;
        /* a step's requests are mostly of one job: refresh each run of it once */
        if (last[0] && strcmp(last, job)) s = tm_queue_refresh_job_locked(q, last, now, err);
        memcpy(last, job, sizeof last);
    }
    if (!s && last[0]) s = tm_queue_refresh_job_locked(q, last, now, err);
    if (s) {
        tm_queue_rollback(q);
        for (int i = 0; i < n; i++) c[i].stored = 0;
        return s;
    }
    if ((s = tm_queue_commit(q, err))) {
        for (int i = 0; i < n; i++) c[i].stored = 0;
        return s;
    }
    if (stored) *stored = ok;
    return TM_OK;
}

tm_status tm_queue_complete(tm_queue *q, const char *owner, const char *request_id, const char *response_json,
                            size_t len, const tm_queue_usage *usage, tm_err *err)
{
    if (len > TM_QUEUE_MAX_RESPONSE)
        return tm_errf(err, TM_ERR_INPUT, "queue: %s: response of %zu bytes is too large", request_id, len);
    tm_queue_completion c = {.request_id = request_id, .response_json = response_json, .len = len, .usage = usage};
    tm_status s = tm_queue_complete_batch(q, owner, &c, 1, NULL, err);
    if (!s && !c.stored)
        s = tm_errf(err, TM_ERR_NOTFOUND, "queue: %s: lease not held by %s (expired and re-claimed, "
                                          "released, or finished)", request_id, owner);
    return s;
}

/* Begin a write and check that owner holds request_id's lease; job_id out. */
static tm_status begin_leased(tm_queue *q, const char *owner, const char *request_id,
                              char job_id[TM_QUEUE_ID_MAX], tm_err *err)
{
    tm_status s = tm_queue_begin_write_retry(q, err);
    if (s) return s;
    sqlite3_stmt *st;
    if ((s = tm_queue_prep(q, "SELECT job_id FROM requests WHERE id=?1 AND state='running' AND lease_owner=?2",
                  &st, err))) {
        tm_queue_rollback(q);
        return s;
    }
    sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) tm_queue_col_copy(st, 0, job_id, TM_QUEUE_ID_MAX);
    else if (rc == SQLITE_DONE)
        s = tm_errf(err, TM_ERR_NOTFOUND, "queue: %s: lease not held by %s (expired and re-claimed, "
                                          "released, or finished)", request_id, owner);
    else s = tm_queue_sql_fail(q, err, "check lease");
    sqlite3_finalize(st);
    if (s) tm_queue_rollback(q);
    return s;
}

tm_status tm_queue_fail(tm_queue *q, const char *owner, const char *request_id, const char *code,
                        const char *message, tm_err *err)
{
    char job_id[TM_QUEUE_ID_MAX];
    tm_status s = begin_leased(q, owner, request_id, job_id, err);
    if (s) return s;
    int64_t now = (int64_t)tm_queue_now(q);
    sqlite3_stmt *st;
    if (!(s = tm_queue_prep(q, "UPDATE requests SET state='failed', lease_owner=NULL, lease_expires=NULL, "
                            "error=" TM_QUEUE_ERROR_SQL("?2", "?4") ", finished_at=?3 WHERE id=?1", &st, err))) {
        sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, code ? code : "error", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, message ? message : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, now);
        s = tm_queue_step_done(q, st, "mark failed", NULL, err);
        sqlite3_finalize(st);
    }
    if (!s) s = delete_checkpoint(q, request_id, err);
    if (!s) s = tm_queue_refresh_job_locked(q, job_id, now, err);
    if (s) { tm_queue_rollback(q); return s; }
    return tm_queue_commit(q, err);
}
