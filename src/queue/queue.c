/* queue.c — the SQLite queue: open + migrations, submission, claims/leases,
 * request completion, job state transitions, status and result reading.
 *
 * See queue.h for the contract and schemas/queue.sql for the tables. All SQL
 * text here is constant; values are always bound. Every write runs in a
 * BEGIN IMMEDIATE transaction (the busy timeout makes other processes wait),
 * so the read-check-write steps below are atomic across processes.
 */
#include "queue/queue.h"

#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <zstd.h>

#include "util/embedded.h"
#include "util/timeutil.h"

#define TM_QUEUE_MAX_RESPONSE (256u << 20) /* refuse to inflate a stored response past this */

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
    sqlite3_stmt *ins_req;
    sqlite3_stmt *ins_failed;
    sqlite3_stmt *find_dup;
};

/* ---- small helpers ------------------------------------------------------ */

static double real_clock(void *ctx) { (void)ctx; return tm_now_unix_f(); }

static double now_of(tm_queue *q) { return q->clock(q->clock_ctx); }

static tm_status sql_fail(tm_queue *q, tm_err *err, const char *what)
{
    int rc = sqlite3_extended_errcode(q->db);
    int prim = rc & 0xff;
    tm_status s = TM_ERR_INTERNAL;
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED) s = TM_ERR_BUSY;
    else if (prim == SQLITE_IOERR || prim == SQLITE_FULL || prim == SQLITE_CANTOPEN ||
             prim == SQLITE_READONLY || prim == SQLITE_PERM)
        s = TM_ERR_IO;
    else if (prim == SQLITE_NOTADB || prim == SQLITE_CORRUPT)
        s = TM_ERR_INPUT;
    else if (prim == SQLITE_NOMEM)
        s = TM_ERR_NOMEM;
    return tm_errf(err, s, "queue: %s: %s", what, sqlite3_errmsg(q->db));
}

static tm_status prep(tm_queue *q, const char *sql, sqlite3_stmt **st, tm_err *err)
{
    if (sqlite3_prepare_v2(q->db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return sql_fail(q, err, "prepare");
    }
    return TM_OK;
}

static tm_status exec_sql(tm_queue *q, const char *sql, tm_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(q->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        tm_status s = sql_fail(q, err, sql);
        sqlite3_free(msg);
        return s;
    }
    return TM_OK;
}

static tm_status begin_write(tm_queue *q, tm_err *err) { return exec_sql(q, "BEGIN IMMEDIATE", err); }

static void rollback(tm_queue *q)
{
    if (!sqlite3_get_autocommit(q->db)) sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
}

static tm_status commit(tm_queue *q, tm_err *err)
{
    tm_status s = exec_sql(q, "COMMIT", err);
    if (s) rollback(q);
    return s;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

static char *dup_col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

static void copy_col(sqlite3_stmt *st, int i, char *out, size_t outsz)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, outsz, "%s", t ? (const char *)t : "");
}

/* Run a statement that returns no rows; *changes (may be NULL) gets the count. */
static tm_status step_done(tm_queue *q, sqlite3_stmt *st, const char *what, int *changes, tm_err *err)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return sql_fail(q, err, what);
    if (changes) *changes = sqlite3_changes(q->db);
    return TM_OK;
}

static tm_status rand_bytes(tm_queue *q, unsigned char *out, size_t n, tm_err *err)
{
    while (n) {
        if (q->rnd_pos >= sizeof q->rnd) {
            size_t got = 0;
            while (got < sizeof q->rnd) {
                ssize_t r = getrandom(q->rnd + got, sizeof q->rnd - got, 0);
                if (r < 0) {
                    if (errno == EINTR) continue;
                    return tm_errf(err, TM_ERR_INTERNAL, "queue: getrandom: %s", strerror(errno));
                }
                got += (size_t)r;
            }
            q->rnd_pos = 0;
        }
        size_t take = sizeof q->rnd - q->rnd_pos;
        if (take > n) take = n;
        memcpy(out, q->rnd + q->rnd_pos, take);
        q->rnd_pos += take;
        out += take;
        n -= take;
    }
    return TM_OK;
}

/* prefix + 32 lowercase hex digits */
static tm_status new_id(tm_queue *q, const char *prefix, char out[TM_QUEUE_ID_MAX], tm_err *err)
{
    unsigned char b[16];
    tm_status s = rand_bytes(q, b, sizeof b, err);
    if (s) return s;
    size_t p = (size_t)snprintf(out, TM_QUEUE_ID_MAX, "%s", prefix);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof b && p + 2 < TM_QUEUE_ID_MAX; i++) {
        out[p++] = hex[b[i] >> 4];
        out[p++] = hex[b[i] & 15];
    }
    out[p] = 0;
    return TM_OK;
}

/* A request id of the open submission: "req_" + 16 hex of a per-submission
 * random prefix + 16 hex of a counter. Sequential within a job, so inserts
 * into the id index stay local (a big job's random ids made every insert a
 * random B-tree page); unique across jobs by the random prefix (and the
 * UNIQUE constraint would refuse a collision). */
static void sub_request_id(tm_queue *q, char out[TM_QUEUE_ID_MAX])
{
    static const char hex[] = "0123456789abcdef";
    size_t p = 0;
    memcpy(out, "req_", 4);
    p = 4;
    for (int i = 0; i < 8; i++) {
        out[p++] = hex[q->sub_prefix[i] >> 4];
        out[p++] = hex[q->sub_prefix[i] & 15];
    }
    uint64_t c = q->sub_counter++;
    for (int i = 15; i >= 0; i--) out[p + (size_t)(15 - i)] = hex[(c >> (4 * i)) & 15];
    out[p + 16] = 0;
}

/* {"code":code,"message":message} as a malloc'd compact JSON string */
static char *error_json(const char *code, const char *message)
{
    json_t *o = json_pack("{s:s, s:s}", "code", code ? code : "error", "message", message ? message : "");
    if (!o) return NULL;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* ---- open / migrations -------------------------------------------------- */

static int read_user_version(tm_queue *q, int *v, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = prep(q, "PRAGMA user_version", &st, err);
    if (s) return s;
    if (sqlite3_step(st) != SQLITE_ROW) {
        s = sql_fail(q, err, "read user_version");
    } else {
        *v = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    return s;
}

static tm_status migrate(tm_queue *q, tm_err *err)
{
    int latest = (int)tm_migrations_count;
    for (;;) {
        int v = 0;
        tm_status s = read_user_version(q, &v, err);
        if (s) return s;
        if (v > latest)
            return tm_errf(err, TM_ERR_INPUT,
                           "queue: database schema version %d is newer than this tokenmill knows (%d)",
                           v, latest);
        if (v == latest) return TM_OK;
        if ((s = begin_write(q, err))) return s;
        /* another process may have migrated while we waited for the lock */
        if ((s = read_user_version(q, &v, err))) { rollback(q); return s; }
        if (v == 0) {
            /* a fresh DB: refuse to put our schema into someone else's DB */
            int other = 0;
            sqlite3_stmt *st;
            if ((s = prep(q, "SELECT 1 FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' LIMIT 1", &st, err))) {
                rollback(q);
                return s;
            }
            other = sqlite3_step(st) == SQLITE_ROW;
            sqlite3_finalize(st);
            if (other) {
                rollback(q);
                return tm_errf(err, TM_ERR_INPUT, "not a tokenmill queue (it has tables but no schema version)");
            }
        }
        if (v < latest) {
            const tm_embedded_file *m = &tm_migrations[v];
            char *msg = NULL;
            if (sqlite3_exec(q->db, m->data, NULL, NULL, &msg) != SQLITE_OK) {
                s = tm_errf(err, TM_ERR_INTERNAL, "queue: migration %s failed: %s", m->name,
                            msg ? msg : sqlite3_errmsg(q->db));
                sqlite3_free(msg);
                rollback(q);
                return s;
            }
            /* PRAGMA takes no bound parameters; the value is our own integer. */
            char pragma[64];
            snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
            if ((s = exec_sql(q, pragma, err))) { rollback(q); return s; }
        }
        if ((s = commit(q, err))) return s;
    }
}

static tm_status open_db(const char *path, int create, tm_queue **out, tm_err *err)
{
    *out = NULL;
    if (!path || !*path) return tm_errf(err, TM_ERR_USAGE, "queue: empty database path");
    tm_queue *q = calloc(1, sizeof *q);
    if (!q) return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
    q->clock = real_clock;
    q->rnd_pos = sizeof q->rnd;
    int rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0), NULL);
    if (rc != SQLITE_OK) {
        tm_status s = !create && (rc & 0xff) == SQLITE_CANTOPEN && access(path, F_OK) != 0
            ? tm_errf(err, TM_ERR_NOTFOUND, "%s: no queue database here (submit a job first, or pass --db)", path)
            : tm_errf(err, TM_ERR_IO, "%s: cannot open database: %s", path,
                              q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
        tm_queue_close(q);
        return s;
    }
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, TM_QUEUE_BUSY_TIMEOUT_MS);
    tm_status s = exec_sql(q, "PRAGMA journal_mode=WAL", err);
    if (!s) s = exec_sql(q, "PRAGMA foreign_keys=ON", err);
    if (!s) s = exec_sql(q, "PRAGMA synchronous=NORMAL", err);
    /* a big submission is one transaction: a 32 MiB page cache (a fixed
     * bound) keeps its index pages in memory instead of spilling to the WAL */
    if (!s) s = exec_sql(q, "PRAGMA cache_size=-32768", err);
    if (!s) s = migrate(q, err);
    if (s) {
        tm_err_prefix(err, s, "%s", path);
        tm_queue_close(q);
        return s;
    }
    *out = q;
    return TM_OK;
}

tm_status tm_queue_open(const char *path, tm_queue **out, tm_err *err) { return open_db(path, 1, out, err); }

tm_status tm_queue_open_existing(const char *path, tm_queue **out, tm_err *err)
{
    return open_db(path, 0, out, err);
}

void tm_queue_close(tm_queue *q)
{
    if (!q) return;
    if (q->in_submit) tm_queue_submit_rollback(q);
    sqlite3_finalize(q->ins_req);
    sqlite3_finalize(q->ins_failed);
    sqlite3_finalize(q->find_dup);
    free(q->sub_default_model);
    free(q->sub_endpoint);
    if (q->db) sqlite3_close_v2(q->db);
    free(q);
}

int tm_queue_schema_version(tm_queue *q)
{
    int v = -1;
    if (read_user_version(q, &v, NULL)) return -1;
    return v;
}

int tm_queue_schema_latest(void) { return (int)tm_migrations_count; }

void tm_queue_set_busy_timeout(tm_queue *q, int ms)
{
    sqlite3_busy_timeout(q->db, ms > 0 ? ms : 0);
}

void tm_queue_set_clock(tm_queue *q, double (*now)(void *ctx), void *ctx)
{
    q->clock = now ? now : real_clock;
    q->clock_ctx = now ? ctx : NULL;
}

tm_status tm_queue_make_owner(tm_queue *q, char *out, size_t outsz, tm_err *err)
{
    char host[128];
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "host");
    host[sizeof host - 1] = 0;
    unsigned char b[6];
    tm_status s = rand_bytes(q, b, sizeof b, err);
    if (s) return s;
    int n = snprintf(out, outsz, "%s:%ld:%02x%02x%02x%02x%02x%02x", host, (long)getpid(), b[0], b[1],
                     b[2], b[3], b[4], b[5]);
    if (n < 0 || (size_t)n >= outsz) return tm_errf(err, TM_ERR_INTERNAL, "queue: owner buffer too small");
    return TM_OK;
}

/* ---- job state ---------------------------------------------------------- */

static int is_terminal(const char *state)
{
    return !strcmp(state, "completed") || !strcmp(state, "failed") || !strcmp(state, "cancelled") ||
           !strcmp(state, "expired");
}

/* Set a job's state and the matching *_at column (kept if already set). */
static tm_status set_job_state(tm_queue *q, const char *job_id, const char *state, int64_t now, tm_err *err)
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
        tm_status s = prep(q, t[i].sql, &st, err);
        if (s) return s;
        sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
        if (sqlite3_bind_parameter_count(st) >= 2) sqlite3_bind_int64(st, 2, now);
        s = step_done(q, st, "set job state", NULL, err);
        sqlite3_finalize(st);
        return s;
    }
    return tm_errf(err, TM_ERR_INTERNAL, "queue: unknown job state %s", state);
}

/* Whether job has a request in one of the states of sql's IN list. */
static tm_status job_has(tm_queue *q, const char *sql, const char *job_id, int *yes, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = prep(q, sql, &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *yes = 1;
    else if (rc == SQLITE_DONE) *yes = 0;
    else s = sql_fail(q, err, "job request query");
    sqlite3_finalize(st);
    return s;
}

/* Move a job forward once its requests allow it (inside a write transaction). */
static tm_status refresh_job(tm_queue *q, const char *job_id, int64_t now, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = prep(q, "SELECT state FROM jobs WHERE id=?", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
    char state[16] = "";
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) copy_col(st, 0, state, sizeof state);
    else if (rc != SQLITE_DONE) s = sql_fail(q, err, "read job state");
    sqlite3_finalize(st);
    if (s || !state[0] || is_terminal(state) || !strcmp(state, "validating")) return s;

    int running = 0, pending = 0, expired = 0;
    if ((s = job_has(q, "SELECT 1 FROM requests WHERE job_id=? AND state='running' LIMIT 1", job_id,
                     &running, err)))
        return s;
    if (running) return TM_OK;
    if (!strcmp(state, "cancelling")) return set_job_state(q, job_id, "cancelled", now, err);
    if ((s = job_has(q, "SELECT 1 FROM requests WHERE job_id=? AND state='pending' LIMIT 1", job_id,
                     &pending, err)))
        return s;
    if (pending) return TM_OK;
    if ((s = job_has(q, "SELECT 1 FROM requests WHERE job_id=? AND state='expired' LIMIT 1", job_id,
                     &expired, err)))
        return s;
    return set_job_state(q, job_id, expired ? "expired" : "completed", now, err);
}

/* ids of jobs matching a one-parameter (?1 = now) query, as a NULL-free array */
typedef struct id_list {
    char (*ids)[TM_QUEUE_ID_MAX];
    size_t n, cap;
} id_list;

static void id_list_free(id_list *l) { free(l->ids); l->ids = NULL; l->n = l->cap = 0; }

static tm_status id_list_push(id_list *l, const char *id, tm_err *err)
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

static tm_status collect_ids(tm_queue *q, const char *sql, int64_t now, id_list *out, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = prep(q, sql, &st, err);
    if (s) return s;
    if (sqlite3_bind_parameter_count(st) >= 1) sqlite3_bind_int64(st, 1, now);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && !s) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (t) s = id_list_push(out, (const char *)t, err);
    }
    if (!s && rc != SQLITE_DONE) s = sql_fail(q, err, "list jobs");
    sqlite3_finalize(st);
    return s;
}

/* Pending requests of cancelling jobs -> cancelled, and those jobs refreshed
 * (after a release or reclaim put requests back to pending). */
static tm_status settle_cancelling(tm_queue *q, int64_t now, tm_err *err)
{
    id_list l = {0};
    tm_status s = collect_ids(q, "SELECT id FROM jobs WHERE state='cancelling'", now, &l, err);
    char *ej = error_json("batch_cancelled", "the job was cancelled before this request ran");
    if (!s && !ej) s = tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
    for (size_t i = 0; !s && i < l.n; i++) {
        sqlite3_stmt *st;
        if ((s = prep(q, "UPDATE requests SET state='cancelled', error=?2, finished_at=?3 "
                         "WHERE job_id=?1 AND state='pending'", &st, err)))
            break;
        sqlite3_bind_text(st, 1, l.ids[i], -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, ej, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, now);
        s = step_done(q, st, "cancel pending", NULL, err);
        sqlite3_finalize(st);
        if (!s) s = refresh_job(q, l.ids[i], now, err);
    }
    free(ej);
    id_list_free(&l);
    return s;
}

static tm_status reclaim_locked(tm_queue *q, double now, int *n, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = prep(q, "UPDATE requests SET state='pending', lease_owner=NULL, lease_expires=NULL "
                          "WHERE state='running' AND lease_expires < ?1", &st, err);
    if (s) return s;
    sqlite3_bind_double(st, 1, now);
    int changes = 0;
    s = step_done(q, st, "reclaim", &changes, err);
    sqlite3_finalize(st);
    if (n) *n = changes;
    if (!s && changes) s = settle_cancelling(q, (int64_t)now, err);
    return s;
}

static tm_status expire_locked(tm_queue *q, int64_t now, int *n, tm_err *err)
{
    id_list l = {0};
    int total = 0;
    tm_status s = collect_ids(q, "SELECT id FROM jobs WHERE state IN ('queued','in_progress') "
                                 "AND expires_at IS NOT NULL AND expires_at <= ?1", now, &l, err);
    char *ej = error_json("batch_expired",
                          "this request could not be executed before the job's completion window expired");
    if (!s && !ej) s = tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
    for (size_t i = 0; !s && i < l.n; i++) {
        sqlite3_stmt *st;
        if ((s = prep(q, "UPDATE requests SET state='expired', error=?2, finished_at=?3 "
                         "WHERE job_id=?1 AND state='pending'", &st, err)))
            break;
        sqlite3_bind_text(st, 1, l.ids[i], -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, ej, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, now);
        int c = 0;
        s = step_done(q, st, "expire", &c, err);
        sqlite3_finalize(st);
        total += c;
        if (!s) s = refresh_job(q, l.ids[i], now, err);
    }
    free(ej);
    id_list_free(&l);
    if (n) *n = total;
    return s;
}

tm_status tm_queue_reclaim_expired(tm_queue *q, int *reclaimed, tm_err *err)
{
    tm_status s = begin_write(q, err);
    if (s) return s;
    s = reclaim_locked(q, now_of(q), reclaimed, err);
    if (s) { rollback(q); return s; }
    return commit(q, err);
}

tm_status tm_queue_expire(tm_queue *q, int *expired, tm_err *err)
{
    /* a read first: status must not wait for the write lock (held for the
     * whole of a big submission) when there is nothing to expire */
    if (expired) *expired = 0;
    id_list l = {0};
    tm_status s = collect_ids(q, "SELECT id FROM jobs WHERE state IN ('queued','in_progress') "
                                 "AND expires_at IS NOT NULL AND expires_at <= ?1 LIMIT 1",
                             (int64_t)now_of(q), &l, err);
    size_t found = l.n;
    id_list_free(&l);
    if (s || !found) return s;
    s = begin_write(q, err);
    if (s) return s;
    s = expire_locked(q, (int64_t)now_of(q), expired, err);
    if (s) { rollback(q); return s; }
    return commit(q, err);
}

/* ---- submission --------------------------------------------------------- */

tm_status tm_queue_submit_begin(tm_queue *q, const tm_queue_job_opts *o, char job_id[TM_QUEUE_ID_MAX],
                                tm_err *err)
{
    if (q->in_submit) return tm_errf(err, TM_ERR_INTERNAL, "queue: a submission is already open");
    if (o->name && strlen(o->name) > TM_QUEUE_NAME_MAX)
        return tm_errf(err, TM_ERR_USAGE, "--name: longer than %d bytes", TM_QUEUE_NAME_MAX);
    if (o->model && strlen(o->model) > TM_QUEUE_NAME_MAX)
        return tm_errf(err, TM_ERR_USAGE, "--model: longer than %d bytes", TM_QUEUE_NAME_MAX);
    int64_t window = o->completion_window > 0 ? o->completion_window : 86400;
    double now = now_of(q);
    tm_status s = new_id(q, "job_", job_id, err);
    if (!s) s = rand_bytes(q, q->sub_prefix, sizeof q->sub_prefix, err);
    if (s) return s;
    q->sub_counter = 0;
    if (!q->ins_req &&
        (s = prep(q, "INSERT INTO requests(id, job_id, custom_id, invalid, source, line, url, model, body, "
                     "max_tokens, n, state, created_at) VALUES (?1,?2,?3,0,?4,?5,?6,?7,?8,?9,?10,'pending',?11)",
                  &q->ins_req, err)))
        return s;
    if (!q->ins_failed &&
        (s = prep(q, "INSERT INTO requests(id, job_id, custom_id, invalid, source, line, url, model, body, "
                     "max_tokens, n, state, error, created_at, finished_at) "
                     "VALUES (?1,?2,?3,1,?4,?5,?6,?7,?8,?9,?10,'failed',?11,?12,?12)",
                  &q->ins_failed, err)))
        return s;
    if (!q->find_dup &&
        (s = prep(q, "SELECT source, line FROM requests WHERE job_id=?1 AND custom_id=?2 AND invalid=0",
                  &q->find_dup, err)))
        return s;
    if ((s = begin_write(q, err))) return s;
    sqlite3_stmt *st;
    if ((s = prep(q, "INSERT INTO jobs(id, name, model, state, priority, metadata, on_invalid, "
                     "completion_window, created_at, expires_at) VALUES (?1,?2,?3,'validating',?4,?5,?6,?7,?8,?9)",
                  &st, err))) {
        rollback(q);
        return s;
    }
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
    bind_text_or_null(st, 2, o->name);
    bind_text_or_null(st, 3, o->model);
    sqlite3_bind_int64(st, 4, o->priority);
    sqlite3_bind_text(st, 5, o->metadata_json ? o->metadata_json : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, o->skip_invalid ? "skip" : "reject", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, window);
    sqlite3_bind_int64(st, 8, (int64_t)now);
    sqlite3_bind_int64(st, 9, (int64_t)now + window);
    s = step_done(q, st, "insert job", NULL, err);
    sqlite3_finalize(st);
    if (s) { rollback(q); return s; }
    q->in_submit = 1;
    snprintf(q->sub_job, sizeof q->sub_job, "%s", job_id);
    free(q->sub_default_model);
    free(q->sub_endpoint);
    q->sub_default_model = o->model ? strdup(o->model) : NULL;
    q->sub_endpoint = NULL;
    q->sub_valid = q->sub_total = 0;
    return TM_OK;
}

tm_status tm_queue_submit_add(tm_queue *q, const tm_queue_new_request *r, tm_err *err)
{
    if (!q->in_submit) return tm_errf(err, TM_ERR_INTERNAL, "queue: no submission open");
    if (!r->custom_id || !r->source)
        return tm_errf(err, TM_ERR_INTERNAL, "queue: request without custom_id/source");
    char rid[TM_QUEUE_ID_MAX];
    tm_status s;
    sub_request_id(q, rid);
    const char *model = r->model ? r->model : q->sub_default_model;
    sqlite3_stmt *st = q->ins_req;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_bind_text(st, 1, rid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, q->sub_job, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->custom_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, r->line);
    bind_text_or_null(st, 6, r->url);
    bind_text_or_null(st, 7, model);
    bind_text_or_null(st, 8, r->body_json);
    if (r->max_tokens >= 0) sqlite3_bind_int64(st, 9, r->max_tokens);
    sqlite3_bind_int64(st, 10, r->n > 0 ? r->n : 1);
    sqlite3_bind_int64(st, 11, (int64_t)now_of(q));
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
        sqlite3_stmt *d = q->find_dup;
        sqlite3_reset(d);
        sqlite3_bind_text(d, 1, q->sub_job, -1, SQLITE_STATIC);
        sqlite3_bind_text(d, 2, r->custom_id, -1, SQLITE_STATIC);
        if (sqlite3_step(d) == SQLITE_ROW) {
            const unsigned char *src = sqlite3_column_text(d, 0);
            s = tm_errf(err, TM_ERR_INPUT, "custom_id: duplicate \"%.200s\" (first at %s:%lld)", r->custom_id,
                        src ? (const char *)src : "?", (long long)sqlite3_column_int64(d, 1));
        } else {
            s = sql_fail(q, err, "insert request");
        }
        sqlite3_reset(d);
        return s;
    }
    if (rc != SQLITE_DONE) return sql_fail(q, err, "insert request");
    q->sub_valid++;
    q->sub_total++;
    if (!q->sub_endpoint && r->url && !(q->sub_endpoint = strdup(r->url)))
        return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
    return TM_OK;
}

tm_status tm_queue_submit_add_failed(tm_queue *q, const tm_queue_new_request *r, const char *message,
                                     tm_err *err)
{
    if (!q->in_submit) return tm_errf(err, TM_ERR_INTERNAL, "queue: no submission open");
    char rid[TM_QUEUE_ID_MAX];
    sub_request_id(q, rid);
    char *ej = error_json("invalid_request", message);
    if (!ej) return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
    sqlite3_stmt *st = q->ins_failed;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_bind_text(st, 1, rid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, q->sub_job, -1, SQLITE_STATIC);
    bind_text_or_null(st, 3, r->custom_id);
    sqlite3_bind_text(st, 4, r->source ? r->source : "?", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, r->line);
    bind_text_or_null(st, 6, r->url);
    bind_text_or_null(st, 7, r->model ? r->model : q->sub_default_model);
    bind_text_or_null(st, 8, r->body_json);
    if (r->max_tokens >= 0) sqlite3_bind_int64(st, 9, r->max_tokens);
    sqlite3_bind_int64(st, 10, r->n > 0 ? r->n : 1);
    sqlite3_bind_text(st, 11, ej, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 12, (int64_t)now_of(q));
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    free(ej);
    if (rc != SQLITE_DONE) return sql_fail(q, err, "insert failed request");
    q->sub_total++;
    return TM_OK;
}

tm_status tm_queue_submit_commit(tm_queue *q, tm_err *err)
{
    if (!q->in_submit) return tm_errf(err, TM_ERR_INTERNAL, "queue: no submission open");
    int64_t now = (int64_t)now_of(q);
    sqlite3_stmt *st;
    tm_status s = prep(q, "UPDATE jobs SET endpoint=?2 WHERE id=?1", &st, err);
    if (!s) {
        sqlite3_bind_text(st, 1, q->sub_job, -1, SQLITE_STATIC);
        bind_text_or_null(st, 2, q->sub_endpoint);
        s = step_done(q, st, "job endpoint", NULL, err);
        sqlite3_finalize(st);
    }
    if (!s) s = set_job_state(q, q->sub_job, q->sub_valid > 0 ? "queued" : "failed", now, err);
    if (!s) s = commit(q, err);
    if (s) {
        tm_queue_submit_rollback(q);
        return s;
    }
    q->in_submit = 0;
    return TM_OK;
}

void tm_queue_submit_rollback(tm_queue *q)
{
    if (!q) return;
    if (q->ins_req) sqlite3_reset(q->ins_req);
    if (q->ins_failed) sqlite3_reset(q->ins_failed);
    if (q->find_dup) sqlite3_reset(q->find_dup);
    rollback(q);
    q->in_submit = 0;
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
static tm_status mark_lost_locked(tm_queue *q, double now, tm_err *err)
{
    static const char *sql[] = {
        "UPDATE runs SET end_reason='lost', ended_at=(SELECT heartbeat_at FROM workers w WHERE w.id=runs.worker_id) "
        "WHERE ended_at IS NULL AND worker_id IN (SELECT id FROM workers WHERE state IN ('starting','running','draining') "
        "AND heartbeat_at < ?1 - 2 * COALESCE(lease_seconds, 60))",
        "UPDATE workers SET state='lost', in_flight=0 WHERE state IN ('starting','running','draining') "
        "AND heartbeat_at < ?1 - 2 * COALESCE(lease_seconds, 60)"};
    for (size_t i = 0; i < 2; i++) {
        sqlite3_stmt *st;
        tm_status s = prep(q, sql[i], &st, err);
        if (s) return s;
        sqlite3_bind_double(st, 1, now);
        s = step_done(q, st, "mark lost workers", NULL, err);
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

tm_status tm_queue_claim(tm_queue *q, const char *owner, int max, double lease_s, tm_queue_claimed *out,
                         int *n_out, tm_err *err)
{
    *n_out = 0;
    if (!owner || !*owner) return tm_errf(err, TM_ERR_USAGE, "queue: claim without an owner");
    if (max <= 0) return TM_OK;
    if (!(lease_s > 0)) return tm_errf(err, TM_ERR_USAGE, "queue: lease must be positive");
    double now = now_of(q);
    double expires = now + lease_s;
    int n = 0;
    id_list jobs = {0}, claimed_jobs = {0};
    sqlite3_stmt *sel = NULL, *upd = NULL;
    tm_status s = begin_write(q, err);
    if (s) return s;
    if (!s) s = reclaim_locked(q, now, NULL, err);
    if (!s) s = expire_locked(q, (int64_t)now, NULL, err);
    if (!s) s = collect_ids(q, "SELECT id FROM jobs WHERE state IN ('queued','in_progress') "
                               "ORDER BY priority DESC, seq", 0, &jobs, err);
    if (!s) s = mark_lost_locked(q, now, err);
    if (!s) s = prep(q, "SELECT r.id, r.custom_id, r.url, r.model, r.body, r.max_tokens, r.n, r.attempts, "
                        "(SELECT priority FROM jobs WHERE jobs.id=?1), c.state_zstd, c.tokens_done FROM requests r "
                        "LEFT JOIN checkpoints c ON c.request_id = r.id "
                        "WHERE r.job_id=?1 AND r.state='pending' ORDER BY r.seq LIMIT ?2", &sel, err);
    if (!s) s = prep(q, "UPDATE requests SET state='running', lease_owner=?2, lease_expires=?3, "
                        "attempts=attempts+1, started_at=COALESCE(started_at,?4) "
                        "WHERE id=?1 AND state='pending'", &upd, err);
    for (size_t j = 0; !s && j < jobs.n && n < max; j++) {
        int first = n;
        sqlite3_reset(sel);
        sqlite3_bind_text(sel, 1, jobs.ids[j], -1, SQLITE_STATIC);
        sqlite3_bind_int(sel, 2, max - n);
        int rc = SQLITE_DONE;
        while (n < max && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
            tm_queue_claimed *c = &out[n];
            memset(c, 0, sizeof *c);
            copy_col(sel, 0, c->request_id, sizeof c->request_id);
            snprintf(c->job_id, sizeof c->job_id, "%s", jobs.ids[j]);
            c->custom_id = dup_col(sel, 1);
            c->url = dup_col(sel, 2);
            c->model = dup_col(sel, 3);
            c->body_json = dup_col(sel, 4);
            c->max_tokens = sqlite3_column_type(sel, 5) == SQLITE_NULL ? -1 : sqlite3_column_int64(sel, 5);
            c->n = sqlite3_column_int64(sel, 6);
            c->attempts = sqlite3_column_int64(sel, 7) + 1;
            c->priority = sqlite3_column_int64(sel, 8);
            c->lease_expires = expires;
            n++;
            if (sqlite3_column_type(sel, 9) == SQLITE_BLOB) {
                c->checkpoint_tokens = sqlite3_column_int64(sel, 10);
                tm_status cs = unzstd(sqlite3_column_blob(sel, 9), (size_t)sqlite3_column_bytes(sel, 9),
                                      TM_QUEUE_MAX_CHECKPOINT, &c->checkpoint, &c->checkpoint_len);
                if (cs == TM_ERR_NOMEM) { s = tm_errf(err, TM_ERR_NOMEM, "queue: out of memory"); break; }
                if (cs) c->checkpoint_bad = 1;
            }
            if ((sqlite3_column_type(sel, 1) != SQLITE_NULL && !c->custom_id) ||
                (sqlite3_column_type(sel, 4) != SQLITE_NULL && !c->body_json)) {
                s = tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
                break;
            }
        }
        if (!s && n < max && rc != SQLITE_DONE) s = sql_fail(q, err, "select pending");
        sqlite3_reset(sel);
        for (int k = first; !s && k < n; k++) {
            sqlite3_reset(upd);
            sqlite3_bind_text(upd, 1, out[k].request_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(upd, 2, owner, -1, SQLITE_STATIC);
            sqlite3_bind_double(upd, 3, expires);
            sqlite3_bind_int64(upd, 4, (int64_t)now);
            int ch = 0;
            s = step_done(q, upd, "lease request", &ch, err);
            if (!s && ch != 1) s = tm_errf(err, TM_ERR_INTERNAL, "queue: claim of %s changed %d rows",
                                           out[k].request_id, ch);
        }
        if (!s && n > first) s = id_list_push(&claimed_jobs, jobs.ids[j], err);
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    for (size_t j = 0; !s && j < claimed_jobs.n; j++) {
        sqlite3_stmt *st;
        if ((s = prep(q, "UPDATE jobs SET state='in_progress', in_progress_at=COALESCE(in_progress_at,?2) "
                         "WHERE id=?1 AND state='queued'", &st, err)))
            break;
        sqlite3_bind_text(st, 1, claimed_jobs.ids[j], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)now);
        s = step_done(q, st, "job in_progress", NULL, err);
        sqlite3_finalize(st);
    }
    id_list_free(&jobs);
    id_list_free(&claimed_jobs);
    if (!s) s = commit(q, err);
    else rollback(q);
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
    tm_status s = begin_write(q, err);
    if (s) return s;
    if ((s = prep(q, "UPDATE requests SET lease_expires=?2 WHERE state='running' AND lease_owner=?1", &st, err))) {
        rollback(q);
        return s;
    }
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, now_of(q) + lease_s);
    int ch = 0;
    s = step_done(q, st, "renew", &ch, err);
    sqlite3_finalize(st);
    if (s) { rollback(q); return s; }
    if (renewed) *renewed = ch;
    return commit(q, err);
}

tm_status tm_queue_leases_held(tm_queue *q, const char *owner, const char *const *ids, int n, int *held,
                               tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = prep(q, "SELECT 1 FROM requests WHERE id=?1 AND state='running' AND lease_owner=?2", &st, err);
    if (s) return s;
    for (int i = 0; i < n && !s; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) held[i] = 1;
        else if (rc == SQLITE_DONE) held[i] = 0;
        else s = sql_fail(q, err, "check lease");
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
    int64_t now = (int64_t)now_of(q);
    sqlite3_stmt *st = NULL;
    tm_status s = begin_write(q, err);
    if (s) { free(z); return s; }
    s = prep(q, "INSERT OR REPLACE INTO checkpoints(request_id, worker_id, tokens_done, state_zstd, created_at, "
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
        bind_text_or_null(st, 6, run_id);
        if (cks[i].gpu_seconds >= 0) sqlite3_bind_double(st, 7, cks[i].gpu_seconds);
        if (cks[i].cost_usd >= 0) sqlite3_bind_double(st, 8, cks[i].cost_usd);
        int ch = 0;
        s = step_done(q, st, "save checkpoint", &ch, err);
        ok += ch;
    }
    sqlite3_finalize(st);
    free(z);
    if (s) { rollback(q); return s; }
    if ((s = commit(q, err))) return s;
    if (saved) *saved = ok;
    return TM_OK;
}

tm_status tm_queue_checkpoint_stats(tm_queue *q, int64_t *requests, int64_t *tokens, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = prep(q, "SELECT COUNT(*), COALESCE(SUM(c.tokens_done), 0) FROM checkpoints c "
                          "JOIN requests r ON r.id = c.request_id WHERE r.state IN ('pending','running')", &st, err);
    if (s) return s;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *requests = sqlite3_column_int64(st, 0);
        *tokens = sqlite3_column_int64(st, 1);
    } else {
        s = sql_fail(q, err, "checkpoint stats");
    }
    sqlite3_finalize(st);
    return s;
}

static tm_status delete_checkpoint(tm_queue *q, const char *request_id, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = prep(q, "DELETE FROM checkpoints WHERE request_id=?1", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
    s = step_done(q, st, "delete checkpoint", NULL, err);
    sqlite3_finalize(st);
    return s;
}

/* Begin a write and check that owner holds request_id's lease; job_id out. */
static tm_status begin_leased(tm_queue *q, const char *owner, const char *request_id,
                              char job_id[TM_QUEUE_ID_MAX], tm_err *err)
{
    tm_status s = begin_write(q, err);
    if (s) return s;
    sqlite3_stmt *st;
    if ((s = prep(q, "SELECT job_id FROM requests WHERE id=?1 AND state='running' AND lease_owner=?2",
                  &st, err))) {
        rollback(q);
        return s;
    }
    sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) copy_col(st, 0, job_id, TM_QUEUE_ID_MAX);
    else if (rc == SQLITE_DONE)
        s = tm_errf(err, TM_ERR_NOTFOUND, "queue: %s: lease not held by %s (expired and re-claimed, "
                                          "released, or finished)", request_id, owner);
    else s = sql_fail(q, err, "check lease");
    sqlite3_finalize(st);
    if (s) rollback(q);
    return s;
}

tm_status tm_queue_complete(tm_queue *q, const char *owner, const char *request_id, const char *response_json,
                            size_t len, const tm_queue_usage *usage, tm_err *err)
{
    if (len > TM_QUEUE_MAX_RESPONSE)
        return tm_errf(err, TM_ERR_INPUT, "queue: %s: response of %zu bytes is too large", request_id, len);
    size_t bound = ZSTD_compressBound(len);
    void *z = malloc(bound ? bound : 1);
    if (!z) return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
    size_t zlen = ZSTD_compress(z, bound, response_json, len, 3);
    if (ZSTD_isError(zlen)) {
        free(z);
        return tm_errf(err, TM_ERR_INTERNAL, "queue: zstd: %s", ZSTD_getErrorName(zlen));
    }
    char job_id[TM_QUEUE_ID_MAX];
    tm_status s = begin_leased(q, owner, request_id, job_id, err);
    if (s) { free(z); return s; }
    int64_t now = (int64_t)now_of(q);
    sqlite3_stmt *st = NULL;
    if (!(s = prep(q, "INSERT OR REPLACE INTO results(request_id, response_zstd, response_size, created_at) "
                      "VALUES (?1,?2,?3,?4)", &st, err))) {
        sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, z, (int)zlen, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (int64_t)len);
        sqlite3_bind_int64(st, 4, now);
        s = step_done(q, st, "insert result", NULL, err);
        sqlite3_finalize(st);
    }
    if (!s && !(s = prep(q, "UPDATE requests SET state='done', lease_owner=NULL, lease_expires=NULL, error=NULL, "
                            "finished_at=?2, prompt_tokens=?3, completion_tokens=?4, cached_tokens=?5, "
                            "gpu_seconds=COALESCE(?6,gpu_seconds), energy_joules=COALESCE(?7,energy_joules), "
                            "cost_usd=COALESCE(?8,cost_usd), wasted_seconds=COALESCE(?9,wasted_seconds), "
                            "wasted_usd=COALESCE(?10,wasted_usd), run_id=COALESCE(?11,run_id) WHERE id=?1", &st, err))) {
        tm_queue_usage u = {0, 0, 0, -1, -1, -1, -1, -1, NULL};
        if (usage) u = *usage;
        sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int64(st, 3, u.prompt_tokens);
        sqlite3_bind_int64(st, 4, u.completion_tokens);
        sqlite3_bind_int64(st, 5, u.cached_tokens);
        if (u.gpu_seconds >= 0) sqlite3_bind_double(st, 6, u.gpu_seconds);
        if (u.energy_joules >= 0) sqlite3_bind_double(st, 7, u.energy_joules);
        if (u.cost_usd >= 0) sqlite3_bind_double(st, 8, u.cost_usd);
        if (u.gpu_seconds >= 0 && u.wasted_seconds >= 0) sqlite3_bind_double(st, 9, u.wasted_seconds);
        if (u.cost_usd >= 0 && u.wasted_usd >= 0) sqlite3_bind_double(st, 10, u.wasted_usd);
        bind_text_or_null(st, 11, u.run_id);
        s = step_done(q, st, "mark done", NULL, err);
        sqlite3_finalize(st);
    }
    free(z);
    if (!s) s = delete_checkpoint(q, request_id, err);
    if (!s) s = refresh_job(q, job_id, now, err);
    if (s) { rollback(q); return s; }
    return commit(q, err);
}

tm_status tm_queue_fail(tm_queue *q, const char *owner, const char *request_id, const char *code,
                        const char *message, tm_err *err)
{
    char *ej = error_json(code, message);
    if (!ej) return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
    char job_id[TM_QUEUE_ID_MAX];
    tm_status s = begin_leased(q, owner, request_id, job_id, err);
    if (s) { free(ej); return s; }
    int64_t now = (int64_t)now_of(q);
    sqlite3_stmt *st;
    if (!(s = prep(q, "UPDATE requests SET state='failed', lease_owner=NULL, lease_expires=NULL, error=?2, "
                      "finished_at=?3 WHERE id=?1", &st, err))) {
        sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ej, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        s = step_done(q, st, "mark failed", NULL, err);
        sqlite3_finalize(st);
    }
    free(ej);
    if (!s) s = delete_checkpoint(q, request_id, err);
    if (!s) s = refresh_job(q, job_id, now, err);
    if (s) { rollback(q); return s; }
    return commit(q, err);
}

tm_status tm_queue_release(tm_queue *q, const char *owner, const char *request_id, int *released, tm_err *err)
{
    tm_status s = begin_write(q, err);
    if (s) return s;
    sqlite3_stmt *st;
    const char *sql = request_id
        ? "UPDATE requests SET state='pending', lease_owner=NULL, lease_expires=NULL "
          "WHERE state='running' AND lease_owner=?1 AND id=?2"
        : "UPDATE requests SET state='pending', lease_owner=NULL, lease_expires=NULL "
          "WHERE state='running' AND lease_owner=?1";
    if ((s = prep(q, sql, &st, err))) { rollback(q); return s; }
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    if (request_id) sqlite3_bind_text(st, 2, request_id, -1, SQLITE_STATIC);
    int ch = 0;
    s = step_done(q, st, "release", &ch, err);
    sqlite3_finalize(st);
    if (!s && ch) s = settle_cancelling(q, (int64_t)now_of(q), err);
    if (s) { rollback(q); return s; }
    if (released) *released = ch;
    return commit(q, err);
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

static int64_t col_i64(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, i);
}

static tm_status job_get_locked(tm_queue *q, const char *job_id, tm_queue_job *j, tm_err *err)
{
    memset(j, 0, sizeof *j);
    sqlite3_stmt *st;
    tm_status s = prep(q, "SELECT id, state, name, model, endpoint, metadata, priority, completion_window, "
                          "created_at, in_progress_at, finalizing_at, completed_at, failed_at, expired_at, "
                          "cancelling_at, cancelled_at, expires_at FROM jobs WHERE id=?1", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        copy_col(st, 0, j->id, sizeof j->id);
        copy_col(st, 1, j->state, sizeof j->state);
        j->name = dup_col(st, 2);
        j->model = dup_col(st, 3);
        j->endpoint = dup_col(st, 4);
        j->metadata_json = dup_col(st, 5);
        j->priority = col_i64(st, 6);
        j->completion_window = col_i64(st, 7);
        int64_t *ts[] = {&j->created_at, &j->in_progress_at, &j->finalizing_at, &j->completed_at,
                         &j->failed_at, &j->expired_at, &j->cancelling_at, &j->cancelled_at, &j->expires_at};
        for (int i = 0; i < 9; i++) *ts[i] = col_i64(st, 8 + i);
    } else if (rc == SQLITE_DONE) {
        s = tm_errf(err, TM_ERR_NOTFOUND, "no such job: %.100s", job_id);
    } else {
        s = sql_fail(q, err, "read job");
    }
    sqlite3_finalize(st);
    if (s) return s;

    if ((s = prep(q, "SELECT state, COUNT(*) FROM requests WHERE job_id=?1 GROUP BY state", &st, err))) return s;
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
    if (rc != SQLITE_DONE) s = sql_fail(q, err, "count requests");
    sqlite3_finalize(st);
    if (s) return s;

    if ((s = prep(q, "SELECT SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens), SUM(gpu_seconds), "
                     "SUM(energy_joules), SUM(cost_usd), COUNT(cost_usd), SUM(wasted_seconds), SUM(wasted_usd), "
                     "COUNT(energy_joules) FROM requests "
                     "WHERE job_id=?1 AND state IN ('done','failed')",
                  &st, err)))
        return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        j->prompt_tokens = col_i64(st, 0);
        j->completion_tokens = col_i64(st, 1);
        j->cached_tokens = col_i64(st, 2);
        j->gpu_seconds = sqlite3_column_double(st, 3);
        j->energy_joules = sqlite3_column_double(st, 4);
        j->cost_usd = sqlite3_column_double(st, 5);
        j->has_cost = sqlite3_column_int64(st, 6) > 0;
        j->wasted_seconds = sqlite3_column_double(st, 7);
        j->wasted_usd = sqlite3_column_double(st, 8);
        j->has_energy = sqlite3_column_int64(st, 9) > 0;
    } else {
        s = sql_fail(q, err, "sum tokens");
    }
    sqlite3_finalize(st);
    return s;
}

tm_status tm_queue_job_get(tm_queue *q, const char *job_id, tm_queue_job *out, tm_err *err)
{
    tm_status s = exec_sql(q, "BEGIN", err);
    if (s) return s;
    s = job_get_locked(q, job_id, out, err);
    rollback(q); /* read-only transaction: just end it */
    if (s) tm_queue_job_clear(out);
    return s;
}

tm_status tm_queue_job_list(tm_queue *q, tm_status (*cb)(void *ctx, const tm_queue_job *job, tm_err *err),
                            void *ctx, tm_err *err)
{
    id_list l = {0};
    tm_status s = exec_sql(q, "BEGIN", err);
    if (s) return s;
    s = collect_ids(q, "SELECT id FROM jobs ORDER BY seq", 0, &l, err);
    for (size_t i = 0; !s && i < l.n; i++) {
        tm_queue_job j;
        s = job_get_locked(q, l.ids[i], &j, err);
        if (!s) s = cb(ctx, &j, err);
        tm_queue_job_clear(&j);
    }
    rollback(q);
    id_list_free(&l);
    return s;
}

tm_status tm_queue_cancel(tm_queue *q, const char *job_id, char state_out[16], tm_err *err)
{
    tm_status s = begin_write(q, err);
    if (s) return s;
    int64_t now = (int64_t)now_of(q);
    char state[16] = "";
    sqlite3_stmt *st;
    if ((s = prep(q, "SELECT state FROM jobs WHERE id=?1", &st, err))) { rollback(q); return s; }
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) copy_col(st, 0, state, sizeof state);
    else if (rc == SQLITE_DONE) s = tm_errf(err, TM_ERR_NOTFOUND, "no such job: %.100s", job_id);
    else s = sql_fail(q, err, "read job");
    sqlite3_finalize(st);
    if (!s && !is_terminal(state)) {
        char *ej = error_json("batch_cancelled", "the job was cancelled before this request ran");
        if (!ej) s = tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
        if (!s && !(s = prep(q, "UPDATE requests SET state='cancelled', error=?2, finished_at=?3 "
                                "WHERE job_id=?1 AND state='pending'", &st, err))) {
            sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, ej, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, now);
            s = step_done(q, st, "cancel requests", NULL, err);
            sqlite3_finalize(st);
        }
        free(ej);
        if (!s) s = set_job_state(q, job_id, "cancelling", now, err);
        if (!s) s = refresh_job(q, job_id, now, err);
        if (!s && (s = prep(q, "SELECT state FROM jobs WHERE id=?1", &st, err)) == TM_OK) {
            sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) copy_col(st, 0, state, sizeof state);
            sqlite3_finalize(st);
        }
    }
    if (s) { rollback(q); return s; }
    if ((s = commit(q, err))) return s;
    if (state_out) snprintf(state_out, 16, "%s", state);
    return TM_OK;
}

/* ---- reading results ------------------------------------------------------ */

static tm_status job_exists(tm_queue *q, const char *job_id, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = prep(q, "SELECT 1 FROM jobs WHERE id=?1", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) s = tm_errf(err, TM_ERR_NOTFOUND, "no such job: %.100s", job_id);
    else if (rc != SQLITE_ROW) s = sql_fail(q, err, "read job");
    sqlite3_finalize(st);
    return s;
}

tm_status tm_queue_foreach_result(tm_queue *q, const char *job_id, tm_queue_result_cb cb, void *ctx, tm_err *err)
{
    tm_status s = exec_sql(q, "BEGIN", err);
    if (s) return s;
    sqlite3_stmt *st = NULL;
    char *buf = NULL;
    size_t cap = 0;
    if (!(s = job_exists(q, job_id, err)))
        s = prep(q, "SELECT r.id, r.custom_id, x.response_zstd, x.response_size FROM requests r "
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
        if (!s && rc != SQLITE_DONE) s = sql_fail(q, err, "read results");
    }
    sqlite3_finalize(st);
    free(buf);
    rollback(q);
    return s;
}

tm_status tm_queue_foreach_error(tm_queue *q, const char *job_id, tm_queue_error_cb cb, void *ctx, tm_err *err)
{
    tm_status s = exec_sql(q, "BEGIN", err);
    if (s) return s;
    sqlite3_stmt *st = NULL;
    if (!(s = job_exists(q, job_id, err)))
        s = prep(q, "SELECT id, custom_id, state, error FROM requests WHERE job_id=?1 "
                    "AND state IN ('failed','cancelled','expired') ORDER BY seq", &st, err);
    if (!s) {
        sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
        int rc = SQLITE_DONE;
        while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW)
            s = cb(ctx, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
                   (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3), err);
        if (!s && rc != SQLITE_DONE) s = sql_fail(q, err, "read errors");
    }
    sqlite3_finalize(st);
    rollback(q);
    return s;
}

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
    tm_status s = new_id(q, "run_", run_id, err);
    if (s) return s;
    double nowf = now_of(q);
    int64_t now = (int64_t)nowf;
    if ((s = begin_write(q, err))) return s;
    sqlite3_stmt *st;
    s = mark_lost_locked(q, nowf, err);
    if (!s && exclusive && !(s = prep(q, "SELECT id, ?2 - heartbeat_at FROM workers WHERE id != ?1 AND "
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
            s = sql_fail(q, err, "look for live workers");
        }
        sqlite3_finalize(st);
    }
    if (!s && !(s = prep(q, "INSERT INTO workers(id, host, pid, device, state, started_at, heartbeat_at, lease_seconds) "
                            "VALUES (?1, ?2, ?3, ?4, 'starting', ?5, ?5, ?6) ON CONFLICT(id) DO UPDATE SET "
                            "state='starting', heartbeat_at=?5, device=?4, lease_seconds=?6, in_flight=0", &st, err))) {
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, pid);
        bind_text_or_null(st, 4, device);
        sqlite3_bind_int64(st, 5, now);
        sqlite3_bind_double(st, 6, lease_s > 0 ? lease_s : 60.0);
        s = step_done(q, st, "register worker", NULL, err);
        sqlite3_finalize(st);
    }
    if (!s && !(s = prep(q, "INSERT INTO runs(id, worker_id, started_at, device) VALUES (?1, ?2, ?3, ?4)", &st,
                         err))) {
        sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        bind_text_or_null(st, 4, device);
        s = step_done(q, st, "open run", NULL, err);
        sqlite3_finalize(st);
    }
    if (s) { rollback(q); return s; }
    return commit(q, err);
}

static tm_status run_update(tm_queue *q, const char *owner, const char *run_id, const tm_queue_run_stats *rs,
                            int stop, int exit_code, tm_err *err)
{
    int64_t now = (int64_t)now_of(q);
    tm_status s = begin_write(q, err);
    if (s) return s;
    sqlite3_stmt *st;
    const char *state = rs && rs->state ? rs->state : stop ? "stopped" : "running";
    if (!(s = prep(q, "UPDATE workers SET state=?3, heartbeat_at=?2, in_flight=?4 WHERE id=?1", &st, err))) {
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, stop ? 0 : rs ? rs->in_flight : 0);
        s = step_done(q, st, "worker heartbeat", NULL, err);
        sqlite3_finalize(st);
    }
    if (!s && !(s = prep(q, stop ? "UPDATE runs SET requests_done=?2, prompt_tokens=?3, completion_tokens=?4, "
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
            bind_text_or_null(st, 7, rs ? rs->end_reason : NULL);
            sqlite3_bind_int64(st, 8, rs ? rs->requests_checkpointed : 0);
        }
        s = step_done(q, st, "update run", NULL, err);
        sqlite3_finalize(st);
    }
    if (s) { rollback(q); return s; }
    return commit(q, err);
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
    double now = now_of(q);
    sqlite3_stmt *st;
    tm_status s = prep(q, "SELECT w.id, w.host, w.pid, w.device, w.state, w.started_at, w.heartbeat_at, "
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
        copy_col(st, 0, w.id, sizeof w.id);
        copy_col(st, 1, w.host, sizeof w.host);
        w.pid = sqlite3_column_int64(st, 2);
        copy_col(st, 3, w.device, sizeof w.device);
        copy_col(st, 4, w.state, sizeof w.state);
        w.started_at = sqlite3_column_int64(st, 5);
        w.heartbeat_at = sqlite3_column_int64(st, 6);
        w.lease_s = sqlite3_column_double(st, 7);
        w.in_flight = sqlite3_column_int64(st, 8);
        copy_col(st, 9, w.run_id, sizeof w.run_id);
        double lease = w.lease_s > 0 ? w.lease_s : 60.0;
        w.alive = (!strcmp(w.state, "starting") || !strcmp(w.state, "running") || !strcmp(w.state, "draining")) &&
                  (double)w.heartbeat_at >= now - lease;
        s = cb(ctx, &w, err);
    }
    if (!s && rc != SQLITE_DONE) s = sql_fail(q, err, "list workers");
    sqlite3_finalize(st);
    return s;
}

tm_status tm_queue_other_holders(tm_queue *q, const char *owner, tm_queue_holder *out, int max, int *n,
                                 tm_err *err)
{
    *n = 0;
    sqlite3_stmt *st;
    tm_status s = prep(q, "SELECT r.lease_owner, COALESCE(MAX(w.heartbeat_at), 0), COUNT(*), MAX(r.lease_expires) "
                          "FROM requests r LEFT JOIN workers w ON w.id = r.lease_owner "
                          "WHERE r.state='running' AND r.lease_owner IS NOT ?1 GROUP BY r.lease_owner "
                          "ORDER BY r.lease_owner LIMIT ?2", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, max);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
        tm_queue_holder *h = &out[(*n)++];
        copy_col(st, 0, h->owner, sizeof h->owner);
        h->heartbeat_at = sqlite3_column_int64(st, 1);
        h->requests = sqlite3_column_int64(st, 2);
        h->lease_expires = sqlite3_column_double(st, 3);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) s = sql_fail(q, err, "list lease holders");
    sqlite3_finalize(st);
    return s;
}
