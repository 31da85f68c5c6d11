/* queue_merge.c — `tokenmill merge`: a shard database's work back into its
 * origin (queue_shard.h has the protocol): identity checked, then one
 * transaction with the shard ATTACHed and rows copied as stored. */
#include "queue/queue_shard_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FINISHED "('done','failed','cancelled','expired')"

typedef struct {
    tm_queue *q;
    tm_queue_merge_out *out;
    char owner[TM_QUEUE_ID_MAX + 8]; /* 'shard:' + shard id */
    tm_buf cols, set, sql;
} merge_ctx;

/* ---- identity ------------------------------------------------------------------ */

static tm_status read_origin(merge_ctx *c, const char *path, char origin_uuid[TM_QUEUE_ID_MAX], tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(c->q, "SELECT shard_id, origin_db_uuid, origin_job_id, shard_index, shard_count, "
                                      "(SELECT count(*) FROM shard.shard_origin) FROM shard.shard_origin", &st, err);
    if (s) return s;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_int64(st, 5) == 1) {
        tm_queue_col_copy(st, 0, c->out->shard_id, sizeof c->out->shard_id);
        tm_queue_col_copy(st, 1, origin_uuid, TM_QUEUE_ID_MAX);
        tm_queue_col_copy(st, 2, c->out->job_id, sizeof c->out->job_id);
        c->out->shard_index = sqlite3_column_int(st, 3);
        c->out->shard_count = sqlite3_column_int(st, 4);
    } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        s = tm_errf(err, TM_ERR_INPUT, "%s is not a shard database (no single shard_origin row): only files "
                                       "written by `tokenmill shard` can be merged", path);
    } else {
        s = tm_queue_sql_fail(c->q, err, "read shard_origin");
    }
    sqlite3_finalize(st);
    if (!s && (!c->out->shard_id[0] || !c->out->job_id[0]))
        s = tm_errf(err, TM_ERR_INPUT, "%s: its shard_origin row is incomplete", path);
    snprintf(c->owner, sizeof c->owner, TM_SHARD_OWNER_PREFIX "%s", c->out->shard_id);
    return s;
}

/* The shard must come from this database (db_uuid) and this database must
 * have recorded it (a copy taken before sharding has the uuid only). */
static tm_status check_identity(merge_ctx *c, const char *path, tm_err *err)
{
    char origin[TM_QUEUE_ID_MAX], here[TM_QUEUE_ID_MAX];
    tm_status s = read_origin(c, path, origin, err);
    if (!s) s = tm_shard_uuid_of(c->q, "main", here, err);
    if (s) return s;
    const tm_queue_merge_out *o = c->out;
    if (strcmp(origin, here))
        return tm_errf(err, TM_ERR_INPUT,
                       "refusing to merge %s: shard %s (job %s, shard %d of %d) comes from database %s; this "
                       "database is %s: merge it into its origin (--db)",
                       path, o->shard_id, o->job_id, o->shard_index, o->shard_count, origin,
                       here[0] ? here : "(none: never sharded)");
    int64_t known = 0;
    const char *a[] = {o->shard_id, o->job_id};
    s = tm_shard_int(c->q, "SELECT count(*) FROM main.shards WHERE id=?1 AND job_id=?2", a, 2, &known, err);
    if (!s && !known)
        s = tm_errf(err, TM_ERR_INPUT,
                    "refusing to merge %s: this database (%s) has no record of shard %s (job %s, shard %d of %d): "
                    "it is a copy of the origin taken before that shard was written, or the record was removed",
                    path, here, o->shard_id, o->job_id, o->shard_index, o->shard_count);
    return s;
}

/* ---- the copy ------------------------------------------------------------------ */

/* INSERT INTO main.table(cols) SELECT cols FROM shard.table <where>
 * ON CONFLICT(key) DO UPDATE SET every column (an identical row: no change) */
static tm_status upsert(merge_ctx *c, const char *table, const char *key, const char *where, tm_err *err)
{
    tm_status s = tm_shard_cols(c->q, table, 0, NULL, &c->cols, err);
    if (!s) s = tm_shard_cols(c->q, table, 1, NULL, &c->set, err);
    if (s) return s;
    tm_buf_clear(&c->sql);
    if (tm_buf_printf(&c->sql, "INSERT INTO main.%s(%s) SELECT %s FROM shard.%s %s ON CONFLICT(%s) DO UPDATE SET %s",
                      table, c->cols.data, c->cols.data, table, where, key, c->set.data))
        return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
    return tm_shard_run(c->q, c->sql.data, NULL, 0, NULL, err);
}

/* The origin rows of the taken requests become the shard's (all but seq, id). */
static tm_status take_requests(merge_ctx *c, tm_err *err)
{
    static const char *const skip[] = {"seq", "id", NULL};
    tm_status s = tm_shard_cols(c->q, "requests", 0, skip, &c->cols, err);
    if (s) return s;
    tm_buf_clear(&c->sql);
    if (tm_buf_printf(&c->sql, "UPDATE main.requests SET (%s) = (SELECT %s FROM shard.requests s WHERE s.id = "
                               "requests.id) WHERE id IN (SELECT id FROM temp.merge_take)",
                      c->cols.data, c->cols.data))
        return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
    return tm_shard_run(c->q, c->sql.data, NULL, 0, NULL, err);
}

/* Which shard requests come back finished, which origin requests go back to
 * pending; temp.merge_take / temp.merge_back. */
static tm_status choose(merge_ctx *c, tm_err *err)
{
    const char *a[] = {c->out->job_id, c->owner};
    int taken = 0, back = 0;
    tm_status s = tm_queue_exec(c->q, "CREATE TEMP TABLE IF NOT EXISTS merge_take (id TEXT PRIMARY KEY)", err);
    if (!s) s = tm_queue_exec(c->q, "CREATE TEMP TABLE IF NOT EXISTS merge_back (id TEXT PRIMARY KEY)", err);
    if (!s) s = tm_queue_exec(c->q, "DELETE FROM temp.merge_take", err);
    if (!s) s = tm_queue_exec(c->q, "DELETE FROM temp.merge_back", err);
    if (!s) s = tm_shard_run(c->q, "INSERT INTO temp.merge_take SELECT s.id FROM shard.requests s "
                                   "JOIN main.requests m ON m.id = s.id WHERE s.job_id=?1 AND m.job_id=?1 "
                                   "AND s.state IN " FINISHED " AND ((m.state='running' AND m.lease_owner=?2) "
                                   "OR m.state='pending')", a, 2, &taken, err);
    if (!s) s = tm_shard_run(c->q, "INSERT INTO temp.merge_back SELECT id FROM main.requests WHERE job_id=?1 "
                                   "AND state='running' AND lease_owner=?2 AND id NOT IN (SELECT id FROM temp.merge_take)",
                             a, 2, &back, err);
    c->out->taken = taken;
    c->out->returned = back;
    if (!s) s = tm_shard_int(c->q, "SELECT count(*) FROM shard.requests WHERE state NOT IN " FINISHED, NULL, 0,
                             &c->out->unfinished, err);
    if (!s) s = tm_shard_int(c->q, "SELECT count(*) FROM shard.runs", NULL, 0, &c->out->runs, err);
    return s;
}

static tm_status copy_back(merge_ctx *c, tm_err *err)
{
    tm_status s = upsert(c, "workers", "id", "WHERE true", err);
    if (!s) s = upsert(c, "runs", "id", "WHERE true", err);
    if (!s) s = upsert(c, "results", "request_id", "WHERE request_id IN (SELECT id FROM temp.merge_take)", err);
    if (!s) s = take_requests(c, err);
    if (!s) s = tm_queue_exec(c->q, "DELETE FROM main.checkpoints WHERE request_id IN (SELECT id FROM temp.merge_take)",
                              err);
    /* the unfinished rest: pending here, with the shard's progress */
    if (!s) s = upsert(c, "checkpoints", "request_id", "WHERE request_id IN (SELECT id FROM temp.merge_back)", err);
    if (!s) s = tm_queue_exec(c->q, "UPDATE main.requests SET state='pending', lease_owner=NULL, lease_expires=NULL, "
                                    "attempts=max(attempts, COALESCE((SELECT s.attempts FROM shard.requests s "
                                    "WHERE s.id = requests.id), 0)), started_at=COALESCE(started_at, (SELECT "
                                    "s.started_at FROM shard.requests s WHERE s.id = requests.id)) "
                                    "WHERE id IN (SELECT id FROM temp.merge_back)", err);
    return s;
}

/* The shard's row and the job, once something changed. */
static tm_status settle(merge_ctx *c, tm_err *err)
{
    if (!c->out->taken && !c->out->returned) return TM_OK; /* a repeated merge changes nothing */
    int64_t now = (int64_t)tm_queue_now(c->q);
    char taken[32], when[32], left[32];
    snprintf(taken, sizeof taken, "%lld", (long long)c->out->taken);
    snprintf(when, sizeof when, "%lld", (long long)now);
    snprintf(left, sizeof left, "%lld", (long long)c->out->unfinished);
    const char *row[] = {c->out->shard_id, taken, when, left};
    const char *job[] = {c->out->job_id};
    int64_t queued = 0;
    tm_status s = tm_shard_run(c->q, "UPDATE main.shards SET merged_requests=merged_requests + CAST(?2 AS INTEGER), merged_at=CAST(?3 AS INTEGER), "
                                     "state=CASE WHEN CAST(?4 AS INTEGER) = 0 THEN 'merged' ELSE 'partial' END WHERE id=?1",
                               row, 4, NULL, err);
    if (!s) s = tm_shard_int(c->q, "SELECT count(*) FROM main.jobs WHERE id=?1 AND state='queued'", job, 1, &queued,
                             err);
    if (!s && queued && c->out->taken) s = tm_queue_set_job_state_locked(c->q, c->out->job_id, "in_progress", now, err);
    /* the job started when its first part did, wherever that ran */
    if (!s) s = tm_shard_run(c->q, "UPDATE main.jobs SET in_progress_at = (SELECT CASE WHEN s.in_progress_at IS NULL "
                                   "THEN jobs.in_progress_at WHEN jobs.in_progress_at IS NULL THEN s.in_progress_at "
                                   "ELSE min(jobs.in_progress_at, s.in_progress_at) END FROM shard.jobs s "
                                   "WHERE s.id = jobs.id) WHERE id=?1 AND EXISTS (SELECT 1 FROM shard.jobs s "
                                   "WHERE s.id=?1)", job, 1, NULL, err);
    if (!s) s = tm_queue_settle_cancelling_locked(c->q, now, err);
    if (!s) s = tm_queue_refresh_job_locked(c->q, c->out->job_id, now, err);
    return s;
}

/* path names this queue's own file (attaching it would wait on our own lock) */
static int is_self(tm_queue *q, const char *path)
{
    const char *mine = sqlite3_db_filename(q->db, "main");
    char a[PATH_MAX], b[PATH_MAX];
    return mine && *mine && realpath(path, a) && realpath(mine, b) && !strcmp(a, b);
}

tm_status tm_queue_merge(tm_queue *q, const char *path, tm_queue_merge_out *out, tm_err *err)
{
    memset(out, 0, sizeof *out);
    if (is_self(q, path)) return tm_errf(err, TM_ERR_USAGE, "%s is this database itself, not a shard of it", path);
    /* a tokenmill queue (not any SQLite file), its schema brought up to ours */
    tm_queue *sq;
    tm_status s = tm_queue_open_existing(path, &sq, err);
    tm_queue_close(sq);
    if (s) return s;
    if ((s = tm_shard_attach(q, path, err))) return s;
    merge_ctx c = {.q = q, .out = out};
    tm_buf_init(&c.cols);
    tm_buf_init(&c.set);
    tm_buf_init(&c.sql);
    s = tm_queue_begin_write(q, err);
    if (!s) s = check_identity(&c, path, err);
    if (!s) s = choose(&c, err);
    if (!s) s = copy_back(&c, err);
    if (!s) s = settle(&c, err);
    if (!s) s = tm_queue_commit(q, err);
    tm_shard_detach(q);
    tm_buf_free(&c.cols);
    tm_buf_free(&c.set);
    tm_buf_free(&c.sql);
    return s;
}
