/* queue_claimfilter.c — what a worker claims: the kinds of request its
 * set-up can serve (a worker without a tokenizer or chat template leaves
 * what it cannot serve pending) and the model names it serves (a request
 * naming another model waits for a worker that serves it); how much pending
 * work there is of each kind, and which queued models no live worker serves.
 * The claim itself (queue_lease.c) applies the filters with
 * TM_QUEUE_KIND_SQL and TM_QUEUE_MODEL_SQL. */
#include "queue/queue_int.h"

#include <stdlib.h>
#include <string.h>

void tm_queue_set_claim_kinds(tm_queue *q, unsigned kinds)
{
    kinds &= TM_QUEUE_KIND_ALL;
    q->claim_kinds = kinds == TM_QUEUE_KIND_ALL ? 0 : kinds;
}

/* names as a JSON array built by SQLite (the queue builds no JSON itself) */
static tm_status names_json(tm_queue *q, const char *const *names, int n, char **out, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT json_insert(?1, '$[#]', ?2)", &st, err);
    if (s) return s;
    char *cur = strdup("[]");
    for (int i = 0; cur && !s && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, cur, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, names[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW) { s = tm_queue_sql_fail(q, err, "served model names"); break; }
        free(cur);
        cur = tm_queue_col_dup(st, 0);
    }
    sqlite3_finalize(st);
    if (!s && !cur) s = tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
    if (s) { free(cur); return s; }
    *out = cur;
    return TM_OK;
}

tm_status tm_queue_set_served_models(tm_queue *q, const char *owner, const char *run_id,
                                     const char *const *names, int n, tm_err *err)
{
    free(q->claim_models);
    q->claim_models = NULL;
    if (n <= 0) return TM_OK;
    if (n > TM_QUEUE_SERVED_MAX) return tm_errf(err, TM_ERR_USAGE, "at most %d served model names", TM_QUEUE_SERVED_MAX);
    for (int i = 0; i < n; i++)
        if (!names[i] || !*names[i] || strlen(names[i]) > TM_QUEUE_NAME_MAX)
            return tm_errf(err, TM_ERR_USAGE, "served model name %d: empty or longer than %d bytes", i + 1,
                           TM_QUEUE_NAME_MAX);
    char *js = NULL;
    tm_status s = names_json(q, names, n, &js, err);
    if (s) return s;
    sqlite3_stmt *w = NULL, *r = NULL;
    if (!(s = tm_queue_begin_write(q, err))) {
        if (!(s = tm_queue_prep(q, "UPDATE workers SET models=?2 WHERE id=?1", &w, err))) {
            tm_queue_bind_text_or_null(w, 1, owner);
            sqlite3_bind_text(w, 2, js, -1, SQLITE_STATIC);
            s = tm_queue_step_done(q, w, "worker models", NULL, err);
        }
        if (!s && !(s = tm_queue_prep(q, "UPDATE runs SET served_model=?2 WHERE id=?1", &r, err))) {
            tm_queue_bind_text_or_null(r, 1, run_id);
            sqlite3_bind_text(r, 2, names[0], -1, SQLITE_STATIC);
            s = tm_queue_step_done(q, r, "run model", NULL, err);
        }
        sqlite3_finalize(w);
        sqlite3_finalize(r);
        if (s) tm_queue_rollback(q);
        else s = tm_queue_commit(q, err);
    }
    if (s) { free(js); return s; }
    q->claim_models = js;
    return TM_OK;
}

tm_status tm_queue_unserved_models(tm_queue *q,
                                   tm_status (*cb)(void *ctx, const char *model, int64_t n, tm_err *err),
                                   void *ctx, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(
        q, "SELECT m, n FROM (SELECT r.model AS m, count(*) AS n FROM requests r JOIN jobs j ON j.id = r.job_id "
           "WHERE r.state='pending' AND j.state IN ('queued','in_progress') AND r.model IS NOT NULL "
           "GROUP BY r.model) WHERE NOT EXISTS (SELECT 1 FROM workers w, json_each(CASE WHEN json_valid(w.models) "
           "THEN w.models ELSE '[]' END) e WHERE w.state IN ('starting','running','draining') "
           "AND w.heartbeat_at >= ?1 - COALESCE(w.lease_seconds, 60) AND e.value = m) ORDER BY n DESC, m",
        &st, err);
    if (s) return s;
    sqlite3_bind_int64(st, 1, (int64_t)tm_queue_now(q));
    int rc;
    while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(st, 0);
        s = cb(ctx, m ? m : "", sqlite3_column_int64(st, 1), err);
    }
    if (!s && rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "unserved models");
    sqlite3_finalize(st);
    return s;
}

tm_status tm_queue_pending_kinds(tm_queue *q, int64_t counts[4], tm_err *err)
{
    for (int i = 0; i < 4; i++) counts[i] = 0;
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT " TM_QUEUE_KIND_SQL " AS k, count(*) FROM requests r "
                                   "JOIN jobs j ON j.id = r.job_id "
                                   "WHERE r.state='pending' AND j.state IN ('queued','in_progress') "
                                   "AND " TM_QUEUE_MODEL_SQL("?1") " GROUP BY k",
                                &st, err);
    if (s) return s;
    tm_queue_bind_text_or_null(st, 1, q->claim_models);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t k = sqlite3_column_int64(st, 0), n = sqlite3_column_int64(st, 1);
        int slot = k == TM_QUEUE_KIND_CHAT ? 0 : k == TM_QUEUE_KIND_TEXT ? 1 : k == TM_QUEUE_KIND_IDS ? 2 : 3;
        counts[slot] += n;
    }
    if (rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "count pending requests");
    sqlite3_finalize(st);
    return s;
}
