/* queue_runs.c — workers and runs: registration, heartbeats, stop, lease
 * holders and the worker list (queue.h "workers and runs").
 */
#include "queue/queue_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- workers and runs ------------------------------------------------------ */

tm_status tm_queue_worker_start(tm_queue *q, const char *owner, const char *device, double lease_s,
                                int exclusive, int *other_alive, char run_id[TM_QUEUE_ID_MAX], tm_err *err)
{
    if (other_alive) *other_alive = 0;
    char host[128] = "";
    long pid = 0;
    const char *c1 = strchr(owner, ':');
    if (c1) {
        size_t hl = (size_t)(c1 - owner) < sizeof host - 1 ? (size_t)(c1 - owner) : sizeof host - 1;
        memcpy(host, owner, hl);
        host[hl] = 0;
        pid = strtol(c1 + 1, NULL, 10);
    }
    tm_status s = tm_queue_new_id(q, "run_", run_id, err);
    if (s) return s;
    double nowf = tm_queue_now(q);
    int64_t now = (int64_t)nowf;
    if ((s = tm_queue_begin_write(q, err))) return s;
    sqlite3_stmt *st;
    s = tm_queue_mark_lost_locked(q, nowf, err);
    if (!s && exclusive && !(s = tm_queue_prep(q, "SELECT id, ?2 - heartbeat_at FROM workers WHERE id != ?1 AND "
                                         "state IN ('starting','running','draining') AND "
                                         "heartbeat_at >= ?2 - COALESCE(lease_seconds, 60) "
                                         "ORDER BY heartbeat_at DESC LIMIT 1", &st, err))) {
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            s = tm_errf(err, TM_ERR_BUSY, "another worker is alive: %s (heartbeat %llds ago)",
                        (const char *)sqlite3_column_text(st, 0), (long long)sqlite3_column_int64(st, 1));
            if (other_alive) *other_alive = 1;
        } else if (rc != SQLITE_DONE) {
            s = tm_queue_sql_fail(q, err, "look for live workers");
        }
        sqlite3_finalize(st);
    }
    if (!s && !(s = tm_queue_prep(q, "INSERT INTO workers(id, host, pid, device, state, started_at, heartbeat_at, lease_seconds) "
                            "VALUES (?1, ?2, ?3, ?4, 'starting', ?5, ?5, ?6) ON CONFLICT(id) DO UPDATE SET "
                            "state='starting', heartbeat_at=?5, device=?4, lease_seconds=?6, in_flight=0", &st, err))) {
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, pid);
        tm_queue_bind_text_or_null(st, 4, device);
        sqlite3_bind_int64(st, 5, now);
        sqlite3_bind_double(st, 6, lease_s > 0 ? lease_s : 60.0);
        s = tm_queue_step_done(q, st, "register worker", NULL, err);
        sqlite3_finalize(st);
    }
    if (!s && !(s = tm_queue_prep(q, "INSERT INTO runs(id, worker_id, started_at, device) VALUES (?1, ?2, ?3, ?4)", &st,
                         err))) {
        sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        tm_queue_bind_text_or_null(st, 4, device);
        s = tm_queue_step_done(q, st, "open run", NULL, err);
        sqlite3_finalize(st);
    }
    if (s) { tm_queue_rollback(q); return s; }
    return tm_queue_commit(q, err);
}

static tm_status run_update(tm_queue *q, const char *owner, const char *run_id, const tm_queue_run_stats *rs,
                            int stop, int exit_code, tm_err *err)
{
    int64_t now = (int64_t)tm_queue_now(q);
    tm_status s = tm_queue_begin_write(q, err);
    if (s) return s;
    sqlite3_stmt *st;
    const char *state = rs && rs->state ? rs->state : stop ? "stopped" : "running";
    if (!(s = tm_queue_prep(q, "UPDATE workers SET state=?3, heartbeat_at=?2, in_flight=?4 WHERE id=?1", &st, err))) {
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, stop ? 0 : rs ? rs->in_flight : 0);
        s = tm_queue_step_done(q, st, "worker heartbeat", NULL, err);
        sqlite3_finalize(st);
    }
    if (!s && !(s = tm_queue_prep(q, stop ? "UPDATE runs SET requests_done=?2, prompt_tokens=?3, completion_tokens=?4, "
                                   "ended_at=?5, exit_code=?6, end_reason=?7, requests_checkpointed=?8 WHERE id=?1"
                                 : "UPDATE runs SET requests_done=?2, prompt_tokens=?3, completion_tokens=?4 "
                                   "WHERE id=?1", &st, err))) {
        sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, rs ? rs->requests_done : 0);
        sqlite3_bind_int64(st, 3, rs ? rs->prompt_tokens : 0);
        sqlite3_bind_int64(st, 4, rs ? rs->completion_tokens : 0);
        if (stop) {
            sqlite3_bind_int64(st, 5, now);
            sqlite3_bind_int64(st, 6, exit_code);
            tm_queue_bind_text_or_null(st, 7, rs ? rs->end_reason : NULL);
            sqlite3_bind_int64(st, 8, rs ? rs->requests_checkpointed : 0);
        }
        s = tm_queue_step_done(q, st, "update run", NULL, err);
        sqlite3_finalize(st);
    }
    if (s) { tm_queue_rollback(q); return s; }
    return tm_queue_commit(q, err);
}

tm_status tm_queue_worker_heartbeat(tm_queue *q, const char *owner, const char *run_id,
                                    const tm_queue_run_stats *st, tm_err *err)
{
    return run_update(q, owner, run_id, st, 0, 0, err);
}

tm_status tm_queue_worker_stop(tm_queue *q, const char *owner, const char *run_id,
                               const tm_queue_run_stats *st, int exit_code, tm_err *err)
{
    return run_update(q, owner, run_id, st, 1, exit_code, err);
}

tm_status tm_queue_worker_list(tm_queue *q, double since_s,
                               tm_status (*cb)(void *ctx, const tm_queue_worker *w, tm_err *err), void *ctx,
                               tm_err *err)
{
    double now = tm_queue_now(q);
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT w.id, w.host, w.pid, w.device, w.state, w.started_at, w.heartbeat_at, "
                          "w.lease_seconds, w.in_flight, "
                          "(SELECT r.id FROM runs r WHERE r.worker_id = w.id ORDER BY r.started_at DESC, r.rowid DESC LIMIT 1) "
                          "FROM workers w WHERE ?1 <= 0 OR w.heartbeat_at >= ?2 - ?1 OR "
                          "w.state IN ('starting','running','draining') ORDER BY w.heartbeat_at DESC, w.id", &st, err);
    if (s) return s;
    sqlite3_bind_double(st, 1, since_s);
    sqlite3_bind_double(st, 2, now);
    int rc = SQLITE_DONE;
    while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        tm_queue_worker w;
        memset(&w, 0, sizeof w);
        tm_queue_col_copy(st, 0, w.id, sizeof w.id);
        tm_queue_col_copy(st, 1, w.host, sizeof w.host);
        w.pid = sqlite3_column_int64(st, 2);
        tm_queue_col_copy(st, 3, w.device, sizeof w.device);
        tm_queue_col_copy(st, 4, w.state, sizeof w.state);
        w.started_at = sqlite3_column_int64(st, 5);
        w.heartbeat_at = sqlite3_column_int64(st, 6);
        w.lease_s = sqlite3_column_double(st, 7);
        w.in_flight = sqlite3_column_int64(st, 8);
        tm_queue_col_copy(st, 9, w.run_id, sizeof w.run_id);
        double lease = w.lease_s > 0 ? w.lease_s : 60.0;
        w.alive = (!strcmp(w.state, "starting") || !strcmp(w.state, "running") || !strcmp(w.state, "draining")) &&
                  (double)w.heartbeat_at >= now - lease;
        s = cb(ctx, &w, err);
    }
    if (!s && rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "list workers");
    sqlite3_finalize(st);
    return s;
}

tm_status tm_queue_other_holders(tm_queue *q, const char *owner, tm_queue_holder *out, int max, int *n,
                                 tm_err *err)
{
    *n = 0;
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT r.lease_owner, COALESCE(MAX(w.heartbeat_at), 0), COUNT(*), MAX(r.lease_expires) "
                          "FROM requests r LEFT JOIN workers w ON w.id = r.lease_owner "
                          "WHERE r.state='running' AND r.lease_owner IS NOT ?1 "
                          "AND r.lease_owner NOT LIKE 'shard:%' " /* out on a shard (queue_shard.h): not waited for */
                          "GROUP BY r.lease_owner "
                          "ORDER BY r.lease_owner LIMIT ?2", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, max);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
        tm_queue_holder *h = &out[(*n)++];
        tm_queue_col_copy(st, 0, h->owner, sizeof h->owner);
        h->heartbeat_at = sqlite3_column_int64(st, 1);
        h->requests = sqlite3_column_int64(st, 2);
        h->lease_expires = sqlite3_column_double(st, 3);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) s = tm_queue_sql_fail(q, err, "list lease holders");
    sqlite3_finalize(st);
    return s;
}
