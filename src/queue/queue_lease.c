/* queue_lease.c — claims and leases: claim, renew, release, reclaim and
 * expire, checkpoints of leased requests. queue.h "workers: claim, lease,
 * finish" and "checkpoints"; finishing (complete / fail) is queue_complete.c.
 */
#include "queue/queue_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

tm_status tm_queue_reclaim_locked(tm_queue *q, double now, int *n, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "UPDATE requests SET state='pending', lease_owner=NULL, lease_expires=NULL "
                          "WHERE state='running' AND lease_expires < ?1", &st, err);
    if (s) return s;
    sqlite3_bind_double(st, 1, now);
    int changes = 0;
    s = tm_queue_step_done(q, st, "reclaim", &changes, err);
    sqlite3_finalize(st);
    if (n) *n = changes;
    if (!s && changes) s = tm_queue_settle_cancelling_locked(q, (int64_t)now, err);
    return s;
}

tm_status tm_queue_expire_locked(tm_queue *q, int64_t now, int *n, tm_err *err)
{
    tm_queue_ids l = {0};
    int total = 0;
    tm_status s = tm_queue_ids_collect(q, "SELECT id FROM jobs WHERE state IN ('queued','in_progress') "
                                 "AND expires_at IS NOT NULL AND expires_at <= ?1", now, &l, err);
    for (size_t i = 0; !s && i < l.n; i++) {
        sqlite3_stmt *st;
        if ((s = tm_queue_prep(q, "UPDATE requests SET state='expired', error="
                                  TM_QUEUE_ERROR_SQL("'batch_expired'", "?2") ", finished_at=?3 "
                                  "WHERE job_id=?1 AND state='pending'", &st, err)))
            break;
        sqlite3_bind_text(st, 1, l.ids[i], -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, TM_QUEUE_EXPIRED_MSG, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        int c = 0;
        s = tm_queue_step_done(q, st, "expire", &c, err);
        sqlite3_finalize(st);
        total += c;
        if (!s) s = tm_queue_refresh_job_locked(q, l.ids[i], now, err);
    }
    tm_queue_ids_free(&l);
    if (n) *n = total;
    return s;
}

tm_status tm_queue_reclaim_expired(tm_queue *q, int *reclaimed, tm_err *err)
{
    tm_status s = tm_queue_begin_write(q, err);
    if (s) return s;
    s = tm_queue_reclaim_locked(q, tm_queue_now(q), reclaimed, err);
    if (s) { tm_queue_rollback(q); return s; }
    return tm_queue_commit(q, err);
}

tm_status tm_queue_expire(tm_queue *q, int *expired, tm_err *err)
{
    /* a read first: status must not wait for the write lock (held for the
     * whole of a big submission) when there is nothing to expire */
    if (expired) *expired = 0;
    tm_queue_ids l = {0};
    tm_status s = tm_queue_ids_collect(q, "SELECT id FROM jobs WHERE state IN ('queued','in_progress') "
                                 "AND expires_at IS NOT NULL AND expires_at <= ?1 LIMIT 1",
                             (int64_t)tm_queue_now(q), &l, err);
    size_t found = l.n;
    tm_queue_ids_free(&l);
    if (s || !found) return s;
    s = tm_queue_begin_write(q, err);
    if (s) return s;
    s = tm_queue_expire_locked(q, (int64_t)tm_queue_now(q), expired, err);
    if (s) { tm_queue_rollback(q); return s; }
    return tm_queue_commit(q, err);
}

/* ---- claims and leases -------------------------------------------------- */

/* Decompress one zstd frame of at most cap bytes (hostile: the frame header's
 * size is checked before allocating). TM_ERR_INPUT for a bad frame. */
static tm_status unzstd(const void *z, size_t zlen, size_t cap, void **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    unsigned long long sz = ZSTD_getFrameContentSize(z, zlen);
    if (sz == ZSTD_CONTENTSIZE_ERROR || sz == ZSTD_CONTENTSIZE_UNKNOWN || sz > cap) return TM_ERR_INPUT;
    void *b = malloc(sz ? (size_t)sz : 1);
    if (!b) return TM_ERR_NOMEM;
    size_t n = ZSTD_decompress(b, (size_t)sz, z, zlen);
    if (ZSTD_isError(n) || n != sz) { free(b); return TM_ERR_INPUT; }
    *out = b;
    *out_len = n;
    return TM_OK;
}

/* Workers that stopped heartbeating (older than twice their lease) are
 * 'lost'; their open runs end with end_reason 'lost' at the last heartbeat. */
tm_status tm_queue_mark_lost_locked(tm_queue *q, double now, tm_err *err)
{
    static const char *sql[] = {
        "UPDATE runs SET end_reason='lost', ended_at=(SELECT heartbeat_at FROM workers w WHERE w.id=runs.worker_id) "
        "WHERE ended_at IS NULL AND worker_id IN (SELECT id FROM workers WHERE state IN ('starting','running','draining') "
        "AND heartbeat_at < ?1 - 2 * COALESCE(lease_seconds, 60))",
        "UPDATE workers SET state='lost', in_flight=0 WHERE state IN ('starting','running','draining') "
        "AND heartbeat_at < ?1 - 2 * COALESCE(lease_seconds, 60)"};
    for (size_t i = 0; i < 2; i++) {
        sqlite3_stmt *st;
        tm_status s = tm_queue_prep(q, sql[i], &st, err);
        if (s) return s;
        sqlite3_bind_double(st, 1, now);
        s = tm_queue_step_done(q, st, "mark lost workers", NULL, err);
        sqlite3_finalize(st);
        if (s) return s;
    }
    return TM_OK;
}

void tm_queue_claimed_clear(tm_queue_claimed *c)
{
    if (!c) return;
    free(c->custom_id);
    free(c->url);
    free(c->model);
    free(c->body_json);
    free(c->checkpoint);
    memset(c, 0, sizeof *c);
}

/* One selected pending row (the claim's SELECT) into c, strings malloc'd;
 * on failure c is still safe to clear. */
static tm_status read_claimed(sqlite3_stmt *sel, const char *job_id, double expires, tm_queue_claimed *c,
                              tm_err *err)
{
    memset(c, 0, sizeof *c);
    tm_queue_col_copy(sel, 0, c->request_id, sizeof c->request_id);
    snprintf(c->job_id, sizeof c->job_id, "%s", job_id);
    c->custom_id = tm_queue_col_dup(sel, 1);
    c->url = tm_queue_col_dup(sel, 2);
    c->model = tm_queue_col_dup(sel, 3);
    c->body_json = tm_queue_col_dup(sel, 4);
    c->max_tokens = sqlite3_column_type(sel, 5) == SQLITE_NULL ? -1 : sqlite3_column_int64(sel, 5);
    c->n = sqlite3_column_int64(sel, 6);
    c->attempts = sqlite3_column_int64(sel, 7) + 1;
    c->priority = sqlite3_column_int64(sel, 8);
    c->lease_expires = expires;
    if (sqlite3_column_type(sel, 9) == SQLITE_BLOB) {
        c->checkpoint_tokens = sqlite3_column_int64(sel, 10);
        tm_status cs = unzstd(sqlite3_column_blob(sel, 9), (size_t)sqlite3_column_bytes(sel, 9),
                              TM_QUEUE_MAX_CHECKPOINT, &c->checkpoint, &c->checkpoint_len);
        if (cs == TM_ERR_NOMEM) return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
        if (cs) c->checkpoint_bad = 1;
    }
    if ((sqlite3_column_type(sel, 1) != SQLITE_NULL && !c->custom_id) ||
        (sqlite3_column_type(sel, 4) != SQLITE_NULL && !c->body_json))
        return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
    return TM_OK;
}

/* One tm_queue_claim: its prepared statements and times. */
typedef struct claim_ctx {
    tm_queue *q;
    sqlite3_stmt *sel, *upd;
    const char *owner;
    double now, expires;
} claim_ctx;

/* Lease up to max - *n pending requests of job_id into out[*n..] (*n grows). */
static tm_status claim_job(claim_ctx *cc, const char *job_id, tm_queue_claimed *out, int max, int *n, tm_err *err)
{
    int first = *n;
    tm_status s = TM_OK;
    sqlite3_reset(cc->sel);
    sqlite3_bind_text(cc->sel, 1, job_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(cc->sel, 2, max - *n);
    sqlite3_bind_int64(cc->sel, 3, cc->q->claim_kinds ? (int64_t)(cc->q->claim_kinds | TM_QUEUE_KIND_OTHER) : 0);
    tm_queue_bind_text_or_null(cc->sel, 4, cc->q->claim_models);
    int rc = SQLITE_DONE;
    while (*n < max && (rc = sqlite3_step(cc->sel)) == SQLITE_ROW)
        if ((s = read_claimed(cc->sel, job_id, cc->expires, &out[(*n)++], err))) break;
    if (!s && *n < max && rc != SQLITE_DONE) s = tm_queue_sql_fail(cc->q, err, "select pending");
    sqlite3_reset(cc->sel);
    for (int k = first; !s && k < *n; k++) {
        sqlite3_reset(cc->upd);
        sqlite3_bind_text(cc->upd, 1, out[k].request_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(cc->upd, 2, cc->owner, -1, SQLITE_STATIC);
        sqlite3_bind_double(cc->upd, 3, cc->expires);
        sqlite3_bind_int64(cc->upd, 4, (int64_t)cc->now);
        int ch = 0;
        s = tm_queue_step_done(cc->q, cc->upd, "lease request", &ch, err);
        if (!s && ch != 1) s = tm_errf(err, TM_ERR_INTERNAL, "queue: claim of %s changed %d rows",
                                       out[k].request_id, ch);
    }
    return s;
}

/* Jobs that had requests claimed: queued -> in_progress. */
static tm_status mark_in_progress(tm_queue *q, const tm_queue_ids *ids, int64_t now, tm_err *err)
{
    tm_status s = TM_OK;
    for (size_t j = 0; !s && j < ids->n; j++) {
        sqlite3_stmt *st;
        if ((s = tm_queue_prep(q, "UPDATE jobs SET state='in_progress', in_progress_at=COALESCE(in_progress_at,?2) "
                                  "WHERE id=?1 AND state='queued'", &st, err)))
            break;
        sqlite3_bind_text(st, 1, ids->ids[j], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        s = tm_queue_step_done(q, st, "job in_progress", NULL, err);
        sqlite3_finalize(st);
    }
    return s;
}

tm_status tm_queue_claim(tm_queue *q, const char *owner, int max, double lease_s, tm_queue_claimed *out,
                         int *n_out, tm_err *err)
{
    *n_out = 0;
    if (!owner || !*owner) return tm_errf(err, TM_ERR_USAGE, "queue: claim without an owner");
    if (max <= 0) return TM_OK;
    if (!(lease_s > 0)) return tm_errf(err, TM_ERR_USAGE, "queue: lease must be positive");
    double now = tm_queue_now(q);
    claim_ctx cc = {.q = q, .owner = owner, .now = now, .expires = now + lease_s};
    int n = 0;
    tm_queue_ids jobs = {0}, claimed_jobs = {0};
    tm_status s = tm_queue_begin_write(q, err);
    if (s) return s;
    if (!s) s = tm_queue_reclaim_locked(q, now, NULL, err);
    if (!s) s = tm_queue_expire_locked(q, (int64_t)now, NULL, err);
    if (!s) s = tm_queue_ids_collect(q, "SELECT id FROM jobs WHERE state IN ('queued','in_progress') "
                                        "ORDER BY priority DESC, seq", 0, &jobs, err);
    if (!s) s = tm_queue_mark_lost_locked(q, now, err);
    if (!s) s = tm_queue_prep(q, "SELECT r.id, r.custom_id, r.url, r.model, r.body, r.max_tokens, r.n, r.attempts, "
                                 "(SELECT priority FROM jobs WHERE jobs.id=?1), c.state_zstd, c.tokens_done "
                                 "FROM requests r LEFT JOIN checkpoints c ON c.request_id = r.id "
                                 "WHERE r.job_id=?1 AND r.state='pending' AND (?3=0 OR (" TM_QUEUE_KIND_SQL " & ?3)!=0) "
                                 "AND " TM_QUEUE_MODEL_SQL("?4") " ORDER BY r.seq LIMIT ?2", &cc.sel, err);
    if (!s) s = tm_queue_prep(q, "UPDATE requests SET state='running', lease_owner=?2, lease_expires=?3, "
                                 "attempts=attempts+1, started_at=COALESCE(started_at,?4) "
                                 "WHERE id=?1 AND state='pending'", &cc.upd, err);
    for (size_t j = 0; !s && j < jobs.n && n < max; j++) {
        int before = n;
        s = claim_job(&cc, jobs.ids[j], out, max, &n, err);
        if (!s && n > before) s = tm_queue_ids_push(&claimed_jobs, jobs.ids[j], err);
    }
    sqlite3_finalize(cc.sel);
    sqlite3_finalize(cc.upd);
    if (!s) s = mark_in_progress(q, &claimed_jobs, (int64_t)now, err);
    tm_queue_ids_free(&jobs);
    tm_queue_ids_free(&claimed_jobs);
    if (!s) s = tm_queue_commit(q, err);
    else tm_queue_rollback(q);
    if (s) {
        for (int k = 0; k < n; k++) tm_queue_claimed_clear(&out[k]);
        return s;
    }
    *n_out = n;
    return TM_OK;
}

tm_status tm_queue_renew(tm_queue *q, const char *owner, double lease_s, int *renewed, tm_err *err)
{
    if (!(lease_s > 0)) return tm_errf(err, TM_ERR_USAGE, "queue: lease must be positive");
    sqlite3_stmt *st;
    tm_status s = tm_queue_begin_write_retry(q, err);
    if (s) return s;
    if ((s = tm_queue_prep(q, "UPDATE requests SET lease_expires=?2 WHERE state='running' AND lease_owner=?1", &st, err))) {
        tm_queue_rollback(q);
        return s;
    }
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, tm_queue_now(q) + lease_s);
    int ch = 0;
    s = tm_queue_step_done(q, st, "renew", &ch, err);
    sqlite3_finalize(st);
    if (s) { tm_queue_rollback(q); return s; }
    if (renewed) *renewed = ch;
    return tm_queue_commit(q, err);
}

tm_status tm_queue_leases_held(tm_queue *q, const char *owner, const char *const *ids, int n, int *held,
                               tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT 1 FROM requests WHERE id=?1 AND state='running' AND lease_owner=?2", &st, err);
    if (s) return s;
    for (int i = 0; i < n && !s; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) held[i] = 1;
        else if (rc == SQLITE_DONE) held[i] = 0;
        else s = tm_queue_sql_fail(q, err, "check lease");
    }
    sqlite3_finalize(st);
    return s;
}

tm_status tm_queue_checkpoint_save(tm_queue *q, const char *owner, const char *run_id,
                                   const tm_queue_checkpoint *cks, int n, int *saved, tm_err *err)
{
    if (saved) *saved = 0;
    if (n <= 0) return TM_OK;
    size_t cap = 0;
    for (int i = 0; i < n; i++) {
        if (cks[i].len > TM_QUEUE_MAX_CHECKPOINT)
            return tm_errf(err, TM_ERR_INPUT, "queue: %s: checkpoint of %zu bytes is too large", cks[i].request_id,
                           cks[i].len);
        size_t b = ZSTD_compressBound(cks[i].len);
        if (b > cap) cap = b;
    }
    void *z = malloc(cap ? cap : 1);
    if (!z) return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
    int64_t now = (int64_t)tm_queue_now(q);
    sqlite3_stmt *st = NULL;
    tm_status s = tm_queue_begin_write_retry(q, err);
    if (s) { free(z); return s; }
    s = tm_queue_prep(q, "INSERT OR REPLACE INTO checkpoints(request_id, worker_id, tokens_done, state_zstd, created_at, "
                "run_id, gpu_seconds, cost_usd) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM requests "
                "WHERE id=?1 AND state='running' AND lease_owner=?2", &st, err);
    int ok = 0;
    for (int i = 0; i < n && !s; i++) {
        size_t zlen = ZSTD_compress(z, cap, cks[i].state, cks[i].len, 1);
        if (ZSTD_isError(zlen)) { s = tm_errf(err, TM_ERR_INTERNAL, "queue: zstd: %s", ZSTD_getErrorName(zlen)); break; }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        sqlite3_bind_text(st, 1, cks[i].request_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, cks[i].tokens_done);
        sqlite3_bind_blob(st, 4, z, (int)zlen, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, now);
        tm_queue_bind_text_or_null(st, 6, run_id);
        if (cks[i].gpu_seconds >= 0) sqlite3_bind_double(st, 7, cks[i].gpu_seconds);
        if (cks[i].cost_usd >= 0) sqlite3_bind_double(st, 8, cks[i].cost_usd);
        int ch = 0;
        s = tm_queue_step_done(q, st, "save checkpoint", &ch, err);
        ok += ch;
    }
    sqlite3_finalize(st);
    free(z);
    if (s) { tm_queue_rollback(q); return s; }
    if ((s = tm_queue_commit(q, err))) return s;
    if (saved) *saved = ok;
    return TM_OK;
}

tm_status tm_queue_checkpoint_stats(tm_queue *q, int64_t *requests, int64_t *tokens, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT COUNT(*), COALESCE(SUM(c.tokens_done), 0) FROM checkpoints c "
                          "JOIN requests r ON r.id = c.request_id WHERE r.state IN ('pending','running')", &st, err);
    if (s) return s;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *requests = sqlite3_column_int64(st, 0);
        *tokens = sqlite3_column_int64(st, 1);
    } else {
        s = tm_queue_sql_fail(q, err, "checkpoint stats");
    }
    sqlite3_finalize(st);
    return s;
}

tm_status tm_queue_release(tm_queue *q, const char *owner, const char *request_id, int *released, tm_err *err)
{
    tm_status s = tm_queue_begin_write_retry(q, err);
    if (s) return s;
    sqlite3_stmt *st;
    const char *sql = request_id
        ? "UPDATE requests SET state='pending', lease_owner=NULL, lease_expires=NULL "
          "WHERE state='running' AND lease_owner=?1 AND id=?2"
        : "UPDATE requests SET state='pending', lease_owner=NULL, lease_expires=NULL "
          "WHERE state='running' AND lease_owner=?1";
    if ((s = tm_queue_prep(q, sql, &st, err))) { tm_queue_rollback(q); return s; }
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    if (request_id) sqlite3_bind_text(st, 2, request_id, -1, SQLITE_STATIC);
    int ch = 0;
    s = tm_queue_step_done(q, st, "release", &ch, err);
    sqlite3_finalize(st);
    if (!s && ch) s = tm_queue_settle_cancelling_locked(q, (int64_t)tm_queue_now(q), err);
    if (s) { tm_queue_rollback(q); return s; }
    if (released) *released = ch;
    return tm_queue_commit(q, err);
}

