/* queue_jobs.c — job state transitions, job status and cancel, and reading a
 * job's results and errors back (queue.h "jobs" and "reading results").
 */
#include "queue/queue_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* ---- job state ---------------------------------------------------------- */

static int is_terminal(const char *state)
{
    return !strcmp(state, "completed") || !strcmp(state, "failed") || !strcmp(state, "cancelled") ||
           !strcmp(state, "expired");
}

/* Set a job's state and the matching *_at column (kept if already set). */
tm_status tm_queue_set_job_state_locked(tm_queue *q, const char *job_id, const char *state, int64_t now, tm_err *err)
{
    static const struct { const char *state; const char *sql; } t[] = {
        {"queued", "UPDATE jobs SET state='queued' WHERE id=?1"},
        {"in_progress", "UPDATE jobs SET state='in_progress', in_progress_at=COALESCE(in_progress_at,?2) WHERE id=?1"},
        {"completed", "UPDATE jobs SET state='completed', finalizing_at=COALESCE(finalizing_at,?2), completed_at=?2 WHERE id=?1"},
        {"failed", "UPDATE jobs SET state='failed', failed_at=?2 WHERE id=?1"},
        {"cancelling", "UPDATE jobs SET state='cancelling', cancelling_at=COALESCE(cancelling_at,?2) WHERE id=?1"},
        {"cancelled", "UPDATE jobs SET state='cancelled', cancelled_at=?2 WHERE id=?1"},
        {"expired", "UPDATE jobs SET state='expired', expired_at=?2 WHERE id=?1"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (strcmp(t[i].state, state)) continue;
        sqlite3_stmt *st;
        tm_status s = tm_queue_prep(q, t[i].sql, &st, err);
        if (s) return s;
        sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
        if (sqlite3_bind_parameter_count(st) >= 2) sqlite3_bind_int64(st, 2, now);
        s = tm_queue_step_done(q, st, "set job state", NULL, err);
        sqlite3_finalize(st);
        return s;
    }
    return tm_errf(err, TM_ERR_INTERNAL, "queue: unknown job state %s", state);
}

/* Move a job forward once its requests allow it (inside a write
 * transaction): its state and counters (0007) are one row. */
tm_status tm_queue_refresh_job_locked(tm_queue *q, const char *job_id, int64_t now, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_cached(q, TM_QUEUE_STMT_JOBCOUNT, "SELECT state, n_running, n_pending, n_expired "
                                                           "FROM jobs WHERE id=?1", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
    char state[16] = "";
    int64_t running = 0, pending = 0, expired = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        tm_queue_col_copy(st, 0, state, sizeof state);
        running = tm_queue_col_i64(st, 1);
        pending = tm_queue_col_i64(st, 2);
        expired = tm_queue_col_i64(st, 3);
    } else if (rc != SQLITE_DONE) {
        s = tm_queue_sql_fail(q, err, "read job state");
    }
    sqlite3_reset(st);
    if (s || !state[0] || is_terminal(state) || !strcmp(state, "validating")) return s;
    if (running) return TM_OK;
    if (!strcmp(state, "cancelling")) return tm_queue_set_job_state_locked(q, job_id, "cancelled", now, err);
    if (pending) return TM_OK;
    return tm_queue_set_job_state_locked(q, job_id, expired ? "expired" : "completed", now, err);
}

void tm_queue_ids_free(tm_queue_ids *l) { free(l->ids); l->ids = NULL; l->n = l->cap = 0; }

tm_status tm_queue_ids_push(tm_queue_ids *l, const char *id, tm_err *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->ids, cap * sizeof *l->ids);
        if (!p) return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
        l->ids = p;
        l->cap = cap;
    }
    snprintf(l->ids[l->n++], TM_QUEUE_ID_MAX, "%s", id);
    return TM_OK;
}

tm_status tm_queue_ids_collect(tm_queue *q, const char *sql, int64_t now, tm_queue_ids *out, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, sql, &st, err);
    if (s) return s;
    if (sqlite3_bind_parameter_count(st) >= 1) sqlite3_bind_int64(st, 1, now);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && !s) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (t) s = tm_queue_ids_push(out, (const char *)t, err);
    }
    if (!s && rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "list jobs");
    sqlite3_finalize(st);
    return s;
}

/* Pending requests of job -> cancelled (error batch_cancelled). */
static tm_status cancel_pending_locked(tm_queue *q, const char *job_id, int64_t now, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "UPDATE requests SET state='cancelled', error="
                                   TM_QUEUE_ERROR_SQL("'batch_cancelled'", "?2") ", finished_at=?3 "
                                   "WHERE job_id=?1 AND state='pending'", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, TM_QUEUE_CANCELLED_MSG, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    s = tm_queue_step_done(q, st, "cancel pending", NULL, err);
    sqlite3_finalize(st);
    return s;
}

/* Pending requests of cancelling jobs -> cancelled, and those jobs refreshed
 * (after a release or reclaim put requests back to pending). */
tm_status tm_queue_settle_cancelling_locked(tm_queue *q, int64_t now, tm_err *err)
{
    tm_queue_ids l = {0};
    tm_status s = tm_queue_ids_collect(q, "SELECT id FROM jobs WHERE state='cancelling'", now, &l, err);
    for (size_t i = 0; !s && i < l.n; i++) {
        s = cancel_pending_locked(q, l.ids[i], now, err);
        if (!s) s = tm_queue_refresh_job_locked(q, l.ids[i], now, err);
    }
    tm_queue_ids_free(&l);
    return s;
}

/* ---- status and cancel ---------------------------------------------------- */

void tm_queue_job_clear(tm_queue_job *j)
{
    if (!j) return;
    free(j->name);
    free(j->model);
    free(j->endpoint);
    free(j->metadata_json);
    memset(j, 0, sizeof *j);
}

#define JOB_COLS "id, state, name, model, endpoint, metadata, priority, completion_window, created_at, " \
    "in_progress_at, finalizing_at, completed_at, failed_at, expired_at, cancelling_at, cancelled_at, expires_at"

/* The jobs row (JOB_COLS, then the 0007 counters) into j. */
static tm_status job_row_locked(tm_queue *q, const char *job_id, tm_queue_job *j, tm_err *err)
{
    memset(j, 0, sizeof *j);
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT " JOB_COLS ", n_pending, n_running, n_done, n_failed, n_cancelled, "
                                   "n_expired, sum_prompt_tokens, sum_completion_tokens, sum_cached_tokens, "
                                   "sum_gpu_seconds, sum_energy_joules, sum_cost_usd, sum_wasted_seconds, "
                                   "sum_wasted_usd, n_cost, n_energy FROM jobs WHERE id=?1", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        tm_queue_col_copy(st, 0, j->id, sizeof j->id);
        tm_queue_col_copy(st, 1, j->state, sizeof j->state);
        j->name = tm_queue_col_dup(st, 2);
        j->model = tm_queue_col_dup(st, 3);
        j->endpoint = tm_queue_col_dup(st, 4);
        j->metadata_json = tm_queue_col_dup(st, 5);
        j->priority = tm_queue_col_i64(st, 6);
        j->completion_window = tm_queue_col_i64(st, 7);
        int64_t *ts[] = {&j->created_at, &j->in_progress_at, &j->finalizing_at, &j->completed_at,
                         &j->failed_at, &j->expired_at, &j->cancelling_at, &j->cancelled_at, &j->expires_at,
                         &j->pending, &j->running, &j->done, &j->failed, &j->cancelled, &j->expired,
                         &j->prompt_tokens, &j->completion_tokens, &j->cached_tokens};
        for (int i = 0; i < 18; i++) *ts[i] = tm_queue_col_i64(st, 8 + i);
        j->total = j->pending + j->running + j->done + j->failed + j->cancelled + j->expired;
        j->gpu_seconds = sqlite3_column_double(st, 26);
        j->energy_joules = sqlite3_column_double(st, 27);
        j->cost_usd = sqlite3_column_double(st, 28);
        j->wasted_seconds = sqlite3_column_double(st, 29);
        j->wasted_usd = sqlite3_column_double(st, 30);
        j->has_cost = tm_queue_col_i64(st, 31) > 0;
        j->has_energy = tm_queue_col_i64(st, 32) > 0;
    } else if (rc == SQLITE_DONE) {
        s = tm_errf(err, TM_ERR_NOTFOUND, "no such job: %.100s", job_id);
    } else {
        s = tm_queue_sql_fail(q, err, "read job");
    }
    sqlite3_finalize(st);
    return s;
}

/* j's counters and sums counted again from its requests (GROUP BY: O(job)). */
static tm_status job_recount_locked(tm_queue *q, const char *job_id, tm_queue_job *j, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s;
    int rc;
    j->total = j->pending = j->running = j->done = j->failed = j->cancelled = j->expired = 0;
    if ((s = tm_queue_prep(q, "SELECT state, COUNT(*) FROM requests WHERE job_id=?1 GROUP BY state", &st, err))) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *state = (const char *)sqlite3_column_text(st, 0);
        int64_t c = sqlite3_column_int64(st, 1);
        if (!state) continue;
        j->total += c;
        if (!strcmp(state, "pending")) j->pending = c;
        else if (!strcmp(state, "running")) j->running = c;
        else if (!strcmp(state, "done")) j->done = c;
        else if (!strcmp(state, "failed")) j->failed = c;
        else if (!strcmp(state, "cancelled")) j->cancelled = c;
        else if (!strcmp(state, "expired")) j->expired = c;
    }
    if (rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "count requests");
    sqlite3_finalize(st);
    if (s) return s;

    if ((s = tm_queue_prep(q, "SELECT SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens), SUM(gpu_seconds), "
                     "SUM(energy_joules), SUM(cost_usd), COUNT(cost_usd), SUM(wasted_seconds), SUM(wasted_usd), "
                     "COUNT(energy_joules) FROM requests "
                     "WHERE job_id=?1 AND state IN ('done','failed')",
                  &st, err)))
        return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        j->prompt_tokens = tm_queue_col_i64(st, 0);
        j->completion_tokens = tm_queue_col_i64(st, 1);
        j->cached_tokens = tm_queue_col_i64(st, 2);
        j->gpu_seconds = sqlite3_column_double(st, 3);
        j->energy_joules = sqlite3_column_double(st, 4);
        j->cost_usd = sqlite3_column_double(st, 5);
        j->has_cost = sqlite3_column_int64(st, 6) > 0;
        j->wasted_seconds = sqlite3_column_double(st, 7);
        j->wasted_usd = sqlite3_column_double(st, 8);
        j->has_energy = sqlite3_column_int64(st, 9) > 0;
    } else {
        s = tm_queue_sql_fail(q, err, "sum tokens");
    }
    sqlite3_finalize(st);
    return s;
}

static tm_status job_get_locked(tm_queue *q, const char *job_id, tm_queue_job *j, tm_err *err)
{
    return job_row_locked(q, job_id, j, err);
}

tm_status tm_queue_job_recount(tm_queue *q, const char *job_id, tm_queue_job *out, tm_err *err)
{
    tm_status s = tm_queue_begin_read(q, err);
    if (s) return s;
    s = job_row_locked(q, job_id, out, err);
    if (!s) s = job_recount_locked(q, job_id, out, err);
    tm_queue_rollback(q);
    if (s) tm_queue_job_clear(out);
    return s;
}

/* Whether two sums of the same doubles (added in another order) agree. */
static int sum_close(double a, double b) { double d = a - b; if (d < 0) d = -d; return d <= 1e-9 * (1 + (a < 0 ? -a : a)); }

tm_status tm_queue_check_counters(tm_queue *q, int64_t *jobs_checked, int64_t *mismatched, tm_err *err)
{
    *jobs_checked = *mismatched = 0;
    tm_queue_ids l = {0};
    tm_status s = tm_queue_begin_read(q, err);
    if (s) return s;
    s = tm_queue_ids_collect(q, "SELECT id FROM jobs ORDER BY seq", 0, &l, err);
    for (size_t i = 0; !s && i < l.n; i++) {
        tm_queue_job a, b;
        s = job_row_locked(q, l.ids[i], &a, err);
        if (!s) {
            b = a;
            b.name = b.model = b.endpoint = b.metadata_json = NULL;
            s = job_recount_locked(q, l.ids[i], &b, err);
        }
        if (!s) {
            ++*jobs_checked;
            if (a.total != b.total || a.pending != b.pending || a.running != b.running || a.done != b.done ||
                a.failed != b.failed || a.cancelled != b.cancelled || a.expired != b.expired ||
                a.prompt_tokens != b.prompt_tokens || a.completion_tokens != b.completion_tokens ||
                a.cached_tokens != b.cached_tokens || a.has_cost != b.has_cost || a.has_energy != b.has_energy ||
                !sum_close(a.gpu_seconds, b.gpu_seconds) || !sum_close(a.energy_joules, b.energy_joules) ||
                !sum_close(a.cost_usd, b.cost_usd) || !sum_close(a.wasted_seconds, b.wasted_seconds) ||
                !sum_close(a.wasted_usd, b.wasted_usd))
                ++*mismatched;
        }
        tm_queue_job_clear(&a);
    }
    tm_queue_rollback(q);
    tm_queue_ids_free(&l);
    return s;
}

tm_status tm_queue_job_state(tm_queue *q, const char *job_id, char state[16], tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_cached(q, TM_QUEUE_STMT_JOBSTATE, "SELECT state FROM jobs WHERE id=?1", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) tm_queue_col_copy(st, 0, state, 16);
    else if (rc == SQLITE_DONE) s = tm_errf(err, TM_ERR_NOTFOUND, "no such job: %.100s", job_id);
    else s = tm_queue_sql_fail(q, err, "read job state");
    sqlite3_reset(st);
    return s;
}

tm_status tm_queue_left(tm_queue *q, int64_t *pending, int64_t *running, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT COALESCE(SUM(n_pending), 0), COALESCE(SUM(n_running), 0) FROM jobs "
                                   "WHERE state <> 'validating'", &st, err);
    if (s) return s;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *pending = sqlite3_column_int64(st, 0);
        *running = sqlite3_column_int64(st, 1);
    } else {
        s = tm_queue_sql_fail(q, err, "count requests left");
    }
    sqlite3_finalize(st);
    return s;
}

tm_status tm_queue_job_get(tm_queue *q, const char *job_id, tm_queue_job *out, tm_err *err)
{
    tm_status s = tm_queue_begin_read(q, err);
    if (s) return s;
    s = job_get_locked(q, job_id, out, err);
    tm_queue_rollback(q); /* read-only transaction: just end it */
    if (s) tm_queue_job_clear(out);
    return s;
}

tm_status tm_queue_job_list(tm_queue *q, tm_status (*cb)(void *ctx, const tm_queue_job *job, tm_err *err),
                            void *ctx, tm_err *err)
{
    tm_queue_ids l = {0};
    tm_status s = tm_queue_begin_read(q, err);
    if (s) return s;
    s = tm_queue_ids_collect(q, "SELECT id FROM jobs WHERE state <> 'validating' ORDER BY seq", 0, &l, err);
    for (size_t i = 0; !s && i < l.n; i++) {
        tm_queue_job j;
        s = job_get_locked(q, l.ids[i], &j, err);
        if (!s) s = cb(ctx, &j, err);
        tm_queue_job_clear(&j);
    }
    tm_queue_rollback(q);
    tm_queue_ids_free(&l);
    return s;
}

tm_status tm_queue_cancel(tm_queue *q, const char *job_id, char state_out[16], tm_err *err)
{
    tm_status s = tm_queue_begin_write(q, err);
    if (s) return s;
    int64_t now = (int64_t)tm_queue_now(q);
    char state[16] = "";
    sqlite3_stmt *st;
    if ((s = tm_queue_prep(q, "SELECT state FROM jobs WHERE id=?1", &st, err))) { tm_queue_rollback(q); return s; }
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) tm_queue_col_copy(st, 0, state, sizeof state);
    else if (rc == SQLITE_DONE) s = tm_errf(err, TM_ERR_NOTFOUND, "no such job: %.100s", job_id);
    else s = tm_queue_sql_fail(q, err, "read job");
    sqlite3_finalize(st);
    if (!s && !is_terminal(state)) {
        s = cancel_pending_locked(q, job_id, now, err);
        if (!s) s = tm_queue_set_job_state_locked(q, job_id, "cancelling", now, err);
        if (!s) s = tm_queue_refresh_job_locked(q, job_id, now, err);
        if (!s && (s = tm_queue_prep(q, "SELECT state FROM jobs WHERE id=?1", &st, err)) == TM_OK) {
            sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) tm_queue_col_copy(st, 0, state, sizeof state);
            sqlite3_finalize(st);
        }
    }
    if (s) { tm_queue_rollback(q); return s; }
    if ((s = tm_queue_commit(q, err))) return s;
    if (state_out) snprintf(state_out, 16, "%s", state);
    return TM_OK;
}

/* ---- reading results ------------------------------------------------------ */

static tm_status job_exists(tm_queue *q, const char *job_id, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT 1 FROM jobs WHERE id=?1", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) s = tm_errf(err, TM_ERR_NOTFOUND, "no such job: %.100s", job_id);
    else if (rc != SQLITE_ROW) s = tm_queue_sql_fail(q, err, "read job");
    sqlite3_finalize(st);
    return s;
}

tm_status tm_queue_foreach_result(tm_queue *q, const char *job_id, tm_queue_result_cb cb, void *ctx, tm_err *err)
{
    tm_status s = tm_queue_begin_read(q, err);
    if (s) return s;
    sqlite3_stmt *st = NULL;
    char *buf = NULL;
    size_t cap = 0;
    if (!(s = job_exists(q, job_id, err)))
        s = tm_queue_prep(q, "SELECT r.id, r.custom_id, x.response_zstd, x.response_size FROM requests r "
                    "JOIN results x ON x.request_id = r.id WHERE r.job_id=?1 AND r.state='done' ORDER BY r.seq",
                 &st, err);
    if (!s) {
        sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
        int rc = SQLITE_DONE;
        while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *rid = (const char *)sqlite3_column_text(st, 0);
            const char *cid = (const char *)sqlite3_column_text(st, 1);
            const void *z = sqlite3_column_blob(st, 2);
            size_t zlen = (size_t)sqlite3_column_bytes(st, 2);
            int64_t size = sqlite3_column_int64(st, 3);
            unsigned long long fsz = z ? ZSTD_getFrameContentSize(z, zlen) : ZSTD_CONTENTSIZE_ERROR;
            if (size < 0 || (uint64_t)size > TM_QUEUE_MAX_RESPONSE || fsz != (unsigned long long)size) {
                s = tm_errf(err, TM_ERR_INPUT, "queue: %s: stored result is corrupt (size %lld)",
                            rid ? rid : "?", (long long)size);
                break;
            }
            if ((size_t)size + 1 > cap) {
                char *p = realloc(buf, (size_t)size + 1);
                if (!p) { s = tm_errf(err, TM_ERR_NOMEM, "queue: out of memory"); break; }
                buf = p;
                cap = (size_t)size + 1;
            }
            size_t got = ZSTD_decompress(buf, cap, z, zlen);
            if (ZSTD_isError(got) || got != (size_t)size) {
                s = tm_errf(err, TM_ERR_INPUT, "queue: %s: stored result does not decompress", rid ? rid : "?");
                break;
            }
            buf[got] = 0;
            s = cb(ctx, rid ? rid : "", cid, buf, got, err);
        }
        if (!s && rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "read results");
    }
    sqlite3_finalize(st);
    free(buf);
    tm_queue_rollback(q);
    return s;
}

tm_status tm_queue_foreach_error(tm_queue *q, const char *job_id, tm_queue_error_cb cb, void *ctx, tm_err *err)
{
    tm_status s = tm_queue_begin_read(q, err);
    if (s) return s;
    sqlite3_stmt *st = NULL;
    if (!(s = job_exists(q, job_id, err)))
        s = tm_queue_prep(q, "SELECT id, custom_id, state, "
                             "CASE WHEN json_valid(error) THEN json_extract(error, '$.code') END, "
                             "CASE WHEN json_valid(error) THEN json_extract(error, '$.message') END "
                             "FROM requests WHERE job_id=?1 "
                             "AND state IN ('failed','cancelled','expired') ORDER BY seq", &st, err);
    if (!s) {
        sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
        int rc = SQLITE_DONE;
        while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW)
            s = cb(ctx, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
                   (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
                   (const char *)sqlite3_column_text(st, 4), err);
        if (!s && rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "read errors");
    }
    sqlite3_finalize(st);
    tm_queue_rollback(q);
    return s;
}


tm_status tm_queue_done_span(tm_queue *q, const char *job_id, int64_t from, int64_t to, int64_t *n, int64_t *first,
                             int64_t *last, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT COUNT(*), MIN(finished_at), MAX(finished_at) FROM requests "
                                   "WHERE job_id=?1 AND state='done' AND finished_at >= ?2 AND finished_at < ?3", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *n = sqlite3_column_int64(st, 0);
        if (first) *first = tm_queue_col_i64(st, 1);
        if (last) *last = tm_queue_col_i64(st, 2);
    } else {
        s = tm_queue_sql_fail(q, err, "done span");
    }
    sqlite3_finalize(st);
    return s;
}

/* for queue_batch.c: one job inside the caller's read transaction */
tm_status tm_queue_job_get_locked(tm_queue *q, const char *job_id, tm_queue_job *out, tm_err *err)
{
    return job_get_locked(q, job_id, out, err);
}
