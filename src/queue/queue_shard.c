/* queue_shard.c — `tokenmill shard`: a job's pending requests split into N
 * shard databases balanced by estimated work (queue_shard.h has the
 * protocol), and the SQL helpers queue_merge.c shares (queue_shard_int.h). */
#include "queue/queue_shard_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* the estimated work of request row r (queue_shard.h) */
#define TM_SHARD_STR_(x) #x
#define TM_SHARD_STR(x) TM_SHARD_STR_(x)
#define TM_SHARD_WORK_SQL \
    "(length(CAST(body AS BLOB)) / 4 + COALESCE(max_tokens, " TM_SHARD_STR(TM_QUEUE_SHARD_DEFAULT_MAX_TOKENS) ") * n)"

/* ---- helpers shared with queue_merge.c ------------------------------------ */

static int skipped(const char *const *skip, const char *name)
{
    for (; skip && *skip; skip++)
        if (!strcmp(*skip, name)) return 1;
    return 0;
}

tm_status tm_shard_cols(tm_queue *q, const char *table, int mode, const char *const *skip, tm_buf *b, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT name FROM pragma_table_info(?1, 'main') ORDER BY cid", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_TRANSIENT);
    tm_buf_clear(b);
    int rc = SQLITE_DONE;
    while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!name || skipped(skip, name)) continue;
        if (strchr(name, '"')) { s = tm_errf(err, TM_ERR_INTERNAL, "queue: odd column name in %s", table); break; }
        if (b->len && tm_buf_puts(b, ", ")) s = TM_ERR_NOMEM;
        else if (mode == 0 ? tm_buf_printf(b, "\"%s\"", name) : tm_buf_printf(b, "\"%s\"=excluded.\"%s\"", name, name))
            s = TM_ERR_NOMEM;
        if (s) tm_errf(err, s, "queue: out of memory");
    }
    if (!s && rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "read table columns");
    sqlite3_finalize(st);
    if (!s && !b->len) s = tm_errf(err, TM_ERR_INTERNAL, "queue: table %s has no columns", table);
    return s;
}

static tm_status prep_args(tm_queue *q, const char *sql, const char *const *args, int n, sqlite3_stmt **st,
                           tm_err *err)
{
    tm_status s = tm_queue_prep(q, sql, st, err);
    for (int i = 0; !s && i < n; i++) tm_queue_bind_text_or_null(*st, i + 1, args[i]);
    return s;
}

tm_status tm_shard_run(tm_queue *q, const char *sql, const char *const *args, int n, int *changes, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = prep_args(q, sql, args, n, &st, err);
    if (!s) s = tm_queue_step_done(q, st, "shard copy", changes, err);
    sqlite3_finalize(st);
    return s;
}

tm_status tm_shard_int(tm_queue *q, const char *sql, const char *const *args, int n, int64_t *out, tm_err *err)
{
    sqlite3_stmt *st;
    *out = 0;
    tm_status s = prep_args(q, sql, args, n, &st, err);
    if (s) return s;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = tm_queue_col_i64(st, 0);
    else if (rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "shard query");
    sqlite3_finalize(st);
    return s;
}

tm_status tm_shard_attach(tm_queue *q, const char *path, tm_err *err)
{
    const char *a[] = {path};
    return tm_shard_run(q, "ATTACH DATABASE ?1 AS shard", a, 1, NULL, err);
}

void tm_shard_detach(tm_queue *q)
{
    tm_queue_rollback(q);
    sqlite3_exec(q->db, "DETACH DATABASE shard", NULL, NULL, NULL);
}

tm_status tm_shard_uuid_of(tm_queue *q, const char *schema, char out[TM_QUEUE_ID_MAX], tm_err *err)
{
    sqlite3_stmt *st;
    out[0] = 0;
    tm_status s = tm_queue_prep(q, !strcmp(schema, "shard") ? "SELECT value FROM shard.meta WHERE key='db_uuid'"
                                                            : "SELECT value FROM main.meta WHERE key='db_uuid'",
                                &st, err);
    if (s) return s;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) tm_queue_col_copy(st, 0, out, TM_QUEUE_ID_MAX);
    else if (rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "read db_uuid");
    sqlite3_finalize(st);
    return s;
}

tm_status tm_queue_db_uuid(tm_queue *q, char out[TM_QUEUE_ID_MAX], tm_err *err)
{
    return tm_shard_uuid_of(q, "main", out, err);
}

/* The origin's db_uuid, made (random) if it has none. */
static tm_status ensure_uuid(tm_queue *q, char out[TM_QUEUE_ID_MAX], tm_err *err)
{
    char fresh[TM_QUEUE_ID_MAX];
    tm_status s = tm_queue_new_id(q, "db_", fresh, err);
    if (!s) s = tm_queue_begin_write(q, err);
    const char *a[] = {fresh};
    if (!s) s = tm_shard_run(q, "INSERT OR IGNORE INTO main.meta(key, value) VALUES('db_uuid', ?1)", a, 1, NULL, err);
    if (!s) s = tm_queue_commit(q, err);
    tm_queue_rollback(q);
    if (!s) s = tm_queue_db_uuid(q, out, err);
    return s;
}

/* ---- the split -------------------------------------------------------------- */

typedef struct {
    int64_t seq, work;
    int bin;
} pick;

static int by_work(const void *pa, const void *pb)
{
    const pick *a = pa, *b = pb;
    if (a->work != b->work) return a->work > b->work ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/* the job's pending requests with their estimated work */
static tm_status load_pending(tm_queue *q, const char *job_id, pick **out, size_t *count, tm_err *err)
{
    sqlite3_stmt *st;
    *out = NULL;
    *count = 0;
    tm_status s = tm_queue_prep(q, "SELECT seq, " TM_SHARD_WORK_SQL " FROM requests "
                                   "WHERE job_id=?1 AND state='pending' ORDER BY seq", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*count == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            pick *p = realloc(*out, nc * sizeof *p);
            if (!p) { s = tm_errf(err, TM_ERR_NOMEM, "queue: out of memory"); break; }
            *out = p;
            cap = nc;
        }
        int64_t w = tm_queue_col_i64(st, 1);
        (*out)[(*count)++] = (pick){sqlite3_column_int64(st, 0), w < 0 ? 0 : w, 0};
    }
    if (!s && rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "read pending requests");
    sqlite3_finalize(st);
    return s;
}

/* heap of shard indexes, lightest load first (ties: lower index) */
static int lighter(const int64_t *load, int a, int b) { return load[a] < load[b] || (load[a] == load[b] && a < b); }

static void sift_down(int *h, int n, const int64_t *load, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && lighter(load, h[l], h[m])) m = l;
        if (r < n && lighter(load, h[r], h[m])) m = r;
        if (m == i) return;
        int t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

/* Longest processing time first: heaviest request to the lightest shard. */
static tm_status pack(pick *p, size_t count, int bins, tm_err *err)
{
    int64_t *load = calloc((size_t)bins, sizeof *load);
    int *heap = malloc((size_t)bins * sizeof *heap);
    if (!load || !heap) { free(load); free(heap); return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory"); }
    for (int i = 0; i < bins; i++) heap[i] = i; /* all 0: already a heap */
    qsort(p, count, sizeof *p, by_work);
    for (size_t i = 0; i < count; i++) {
        int b = heap[0];
        p[i].bin = b;
        load[b] += p[i].work;
        sift_down(heap, bins, load, 0);
    }
    free(load);
    free(heap);
    return TM_OK;
}

/* The assignment into temp.shard_pick(seq, bin) for the copies to read. */
static tm_status store_picks(tm_queue *q, const pick *p, size_t count, tm_err *err)
{
    tm_status s = tm_queue_exec(q, "CREATE TEMP TABLE IF NOT EXISTS shard_pick "
                                   "(seq INTEGER PRIMARY KEY, bin INTEGER NOT NULL)", err);
    if (!s) s = tm_queue_exec(q, "BEGIN", err);
    if (!s) s = tm_queue_exec(q, "DELETE FROM temp.shard_pick", err);
    sqlite3_stmt *st = NULL;
    if (!s) s = tm_queue_prep(q, "INSERT INTO temp.shard_pick(seq, bin) VALUES(?1, ?2)", &st, err);
    for (size_t i = 0; !s && i < count; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, p[i].seq);
        sqlite3_bind_int(st, 2, p[i].bin);
        s = tm_queue_step_done(q, st, "store shard picks", NULL, err);
    }
    sqlite3_finalize(st);
    if (!s) s = tm_queue_commit(q, err);
    tm_queue_rollback(q);
    return s;
}

/* ---- one shard file ----------------------------------------------------------- */

typedef struct {
    tm_queue *q;
    const char *job_id, *origin_uuid;
    int index, count;
    tm_queue_shard_out *out;
    tm_buf cols, sql;
} shard_ctx;

/* INSERT INTO dst.table(cols) SELECT cols FROM src.table <tail> */
static tm_status copy_rows(shard_ctx *c, const char *verb, const char *dst, const char *src, const char *table,
                           const char *tail, const char *const *args, int n, int *changes, tm_err *err)
{
    tm_status s = tm_shard_cols(c->q, table, 0, NULL, &c->cols, err);
    if (s) return s;
    tm_buf_clear(&c->sql);
    if (tm_buf_printf(&c->sql, "%s INTO %s.%s(%s) SELECT %s FROM %s.%s %s", verb, dst, table, c->cols.data,
                      c->cols.data, src, table, tail))
        return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
    return tm_shard_run(c->q, c->sql.data, args, n, changes, err);
}

static tm_status fill_shard(shard_ctx *c, tm_err *err)
{
    char sid_uuid[TM_QUEUE_ID_MAX], idx[16], cnt[16], now[32], owner[TM_QUEUE_ID_MAX + 8], lease[32];
    tm_queue *q = c->q;
    tm_status s = tm_queue_new_id(q, "db_", sid_uuid, err);
    if (!s) s = tm_queue_new_id(q, "shard_", c->out->id, err);
    if (s) return s;
    snprintf(idx, sizeof idx, "%d", c->index);
    snprintf(cnt, sizeof cnt, "%d", c->count);
    snprintf(now, sizeof now, "%lld", (long long)tm_queue_now(q));
    snprintf(owner, sizeof owner, TM_SHARD_OWNER_PREFIX "%s", c->out->id);
    snprintf(lease, sizeof lease, "%.1f", TM_SHARD_LEASE_FOREVER);
    const char *meta[] = {sid_uuid};
    const char *orig[] = {c->out->id, c->origin_uuid, c->job_id, idx, cnt, now};
    const char *job[] = {c->job_id, idx};
    const char *mark[] = {owner, lease};
    int moved = 0;
    if (!s) s = tm_shard_run(q, "INSERT INTO shard.meta(key, value) VALUES('db_uuid', ?1)", meta, 1, NULL, err);
    if (!s) s = tm_shard_run(q, "INSERT INTO shard.shard_origin(shard_id, origin_db_uuid, origin_job_id, "
                                "shard_index, shard_count, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6)", orig, 6, NULL, err);
    if (!s) s = copy_rows(c, "INSERT OR REPLACE", "shard", "main", "prices", "", NULL, 0, NULL, err);
    if (!s) s = copy_rows(c, "INSERT", "shard", "main", "jobs", "WHERE id=?1", job, 1, NULL, err);
    if (!s) s = tm_shard_run(q, "UPDATE shard.jobs SET state='queued', in_progress_at=NULL, finalizing_at=NULL, "
                                "completed_at=NULL, failed_at=NULL, expired_at=NULL, cancelling_at=NULL, "
                                "cancelled_at=NULL WHERE id=?1", job, 1, NULL, err);
    if (!s) s = copy_rows(c, "INSERT", "shard", "main", "requests", "WHERE job_id=?1 AND state='pending' AND seq IN "
                          "(SELECT seq FROM temp.shard_pick WHERE bin=?2)", job, 2, &moved, err);
    if (!s) s = copy_rows(c, "INSERT", "shard", "main", "checkpoints",
                          "WHERE request_id IN (SELECT id FROM shard.requests)", NULL, 0, NULL, err);
    if (!s) s = tm_shard_run(q, "UPDATE main.requests SET state='running', lease_owner=?1, lease_expires=?2 "
                                "WHERE id IN (SELECT id FROM shard.requests)", mark, 2, NULL, err);
    if (!s) s = tm_shard_int(q, "SELECT COALESCE(SUM" TM_SHARD_WORK_SQL ", 0) FROM shard.requests", NULL, 0,
                             &c->out->work, err);
    c->out->requests = moved;
    const char *row[] = {c->out->id, c->job_id, idx, cnt, c->out->path, now};
    if (!s) s = tm_shard_run(q, "INSERT INTO main.shards(id, job_id, shard_index, shard_count, path, requests, work, "
                                "created_at) VALUES(?1, ?2, ?3, ?4, ?5, (SELECT count(*) FROM shard.requests), "
                                "(SELECT COALESCE(SUM" TM_SHARD_WORK_SQL ", 0) FROM shard.requests), ?6)",
                             row, 6, NULL, err);
    return s;
}

static void remove_db_files(const char *path)
{
    char p[TM_QUEUE_SHARD_PATH_MAX + 8];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static tm_status write_shard(shard_ctx *c, tm_err *err)
{
    tm_queue *fresh;
    tm_status s = tm_queue_open(c->out->path, &fresh, err); /* a new file with the whole schema */
    tm_queue_close(fresh);
    if (s) { remove_db_files(c->out->path); return s; }
    if ((s = tm_shard_attach(c->q, c->out->path, err))) { remove_db_files(c->out->path); return s; }
    s = tm_queue_begin_write(c->q, err);
    if (!s) s = fill_shard(c, err);
    if (!s) s = tm_queue_commit(c->q, err);
    tm_shard_detach(c->q);
    if (s) {
        remove_db_files(c->out->path);
        tm_err_prefix(err, s, "shard %d (%s)", c->index, c->out->path);
    }
    return s;
}

/* ---- tm_queue_shard ------------------------------------------------------------ */

static tm_status check_job(tm_queue *q, const char *job_id, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT state FROM jobs WHERE id=?1", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
    char state[32] = "";
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) tm_queue_col_copy(st, 0, state, sizeof state);
    else if (rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "read job");
    sqlite3_finalize(st);
    if (s) return s;
    if (!state[0]) return tm_errf(err, TM_ERR_NOTFOUND, "no job %s", job_id);
    if (strcmp(state, "queued") && strcmp(state, "in_progress"))
        return tm_errf(err, TM_ERR_INPUT, "job %s is %s: only a queued or in_progress job can be sharded", job_id,
                       state);
    return TM_OK;
}

static tm_status plan_paths(const char *dir, int n, tm_queue_shard_out *out, tm_err *err)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return tm_errf(err, TM_ERR_IO, "%s: cannot create the directory: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return tm_errf(err, TM_ERR_USAGE, "%s: not a directory", dir);
    for (int i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        int w = snprintf(out[i].path, sizeof out[i].path, "%s/shard-%03d.db", dir, i);
        if (w < 0 || (size_t)w >= sizeof out[i].path) return tm_errf(err, TM_ERR_USAGE, "%s: path too long", dir);
        char wal[TM_QUEUE_SHARD_PATH_MAX + 8];
        snprintf(wal, sizeof wal, "%s-wal", out[i].path);
        if (access(out[i].path, F_OK) == 0 || access(wal, F_OK) == 0)
            return tm_errf(err, TM_ERR_USAGE, "%s exists: shard into an empty directory (nothing was written)",
                           out[i].path);
    }
    return TM_OK;
}

tm_status tm_queue_shard(tm_queue *q, const char *job_id, int n, const char *dir, tm_queue_shard_out *out,
                         tm_err *err)
{
    if (n < 1 || n > TM_QUEUE_SHARD_MAX)
        return tm_errf(err, TM_ERR_USAGE, "shard: --into must be 1..%d", TM_QUEUE_SHARD_MAX);
    tm_status s = check_job(q, job_id, err);
    if (!s) s = plan_paths(dir, n, out, err);
    pick *p = NULL;
    size_t count = 0;
    char uuid[TM_QUEUE_ID_MAX];
    if (!s) s = load_pending(q, job_id, &p, &count, err);
    if (!s) s = pack(p, count, n, err);
    if (!s) s = store_picks(q, p, count, err);
    free(p);
    if (!s) s = ensure_uuid(q, uuid, err);
    shard_ctx c = {.q = q, .job_id = job_id, .origin_uuid = uuid, .count = n};
    tm_buf_init(&c.cols);
    tm_buf_init(&c.sql);
    for (int i = 0; !s && i < n; i++) {
        c.index = i;
        c.out = &out[i];
        s = write_shard(&c, err);
    }
    tm_buf_free(&c.cols);
    tm_buf_free(&c.sql);
    tm_queue_exec(q, "DROP TABLE IF EXISTS temp.shard_pick", NULL);
    return s;
}
