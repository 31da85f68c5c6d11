/* queue.c — the queue handle: open + migrations, the clock, random ids, and
 * the SQL helpers every section file uses (queue_int.h).
 *
 * See queue.h for the contract and schemas/queue.sql for the tables. All SQL
 * text in src/queue is constant; values are always bound. Every write runs in
 * a BEGIN IMMEDIATE transaction (the busy timeout makes other processes wait),
 * so the read-check-write steps of the section files are atomic across
 * processes.
 */
#include "queue/queue_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <zstd.h>

#include "util/embedded.h"
#include "util/timeutil.h"

/* ---- SQL helpers ---------------------------------------------------------- */

static double real_clock(void *ctx) { (void)ctx; return tm_now_unix_f(); }

double tm_queue_now(tm_queue *q) { return q->clock(q->clock_ctx); }

tm_status tm_queue_sql_fail(tm_queue *q, tm_err *err, const char *what)
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

tm_status tm_queue_prep(tm_queue *q, const char *sql, sqlite3_stmt **st, tm_err *err)
{
    if (sqlite3_prepare_v2(q->db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return tm_queue_sql_fail(q, err, "prepare");
    }
    return TM_OK;
}

tm_status tm_queue_exec(tm_queue *q, const char *sql, tm_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(q->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        tm_status s = tm_queue_sql_fail(q, err, sql);
        sqlite3_free(msg);
        return s;
    }
    return TM_OK;
}

tm_status tm_queue_begin_write(tm_queue *q, tm_err *err) { return tm_queue_exec(q, "BEGIN IMMEDIATE", err); }

tm_status tm_queue_begin_read(tm_queue *q, tm_err *err) { return tm_queue_exec(q, "BEGIN", err); }

tm_status tm_queue_begin_write_retry(tm_queue *q, tm_err *err)
{
    tm_status s = tm_queue_begin_write(q, err);
    for (int i = 0; s == TM_ERR_BUSY && i < TM_QUEUE_BUSY_RETRIES; i++) s = tm_queue_begin_write(q, err);
    return s;
}

tm_status tm_queue_cached(tm_queue *q, int slot, const char *sql, sqlite3_stmt **st, tm_err *err)
{
    if (slot < 0 || slot >= TM_QUEUE_STMT_COUNT) return tm_errf(err, TM_ERR_INTERNAL, "queue: statement slot %d", slot);
    if (!q->cached[slot]) {
        tm_status s = tm_queue_prep(q, sql, &q->cached[slot], err);
        if (s) return s;
    } else {
        sqlite3_reset(q->cached[slot]);
        sqlite3_clear_bindings(q->cached[slot]);
    }
    *st = q->cached[slot];
    return TM_OK;
}

/* The busy handler: poll for the lock in short sleeps (1 ms, growing to 5 ms)
 * until busy_ms have passed since this wait began. SQLite's own timeout
 * sleeps up to 100 ms per try once a wait is long, so a writer that holds
 * the lock in short bursts (a chunked submission) can starve its waiters. */
static int busy_poll(void *ctx, int count)
{
    tm_queue *q = ctx;
    uint64_t now = tm_now_mono_ns();
    if (count == 0) q->busy_start_ns = now;
    if (now - q->busy_start_ns >= (uint64_t)q->busy_ms * 1000000u) return 0;
    int ms = 1 + count / 8;
    sqlite3_sleep(ms > 5 ? 5 : ms);
    return 1;
}

void tm_queue_rollback(tm_queue *q)
{
    if (!sqlite3_get_autocommit(q->db)) sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
}

tm_status tm_queue_commit(tm_queue *q, tm_err *err)
{
    tm_status s = tm_queue_exec(q, "COMMIT", err);
    if (s) tm_queue_rollback(q);
    return s;
}

void tm_queue_bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

char *tm_queue_col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

void tm_queue_col_copy(sqlite3_stmt *st, int i, char *out, size_t outsz)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, outsz, "%s", t ? (const char *)t : "");
}

int64_t tm_queue_col_i64(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, i);
}

tm_status tm_queue_step_done(tm_queue *q, sqlite3_stmt *st, const char *what, int *changes, tm_err *err)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return tm_queue_sql_fail(q, err, what);
    if (changes) *changes = sqlite3_changes(q->db);
    return TM_OK;
}

tm_status tm_queue_rand(tm_queue *q, unsigned char *out, size_t n, tm_err *err)
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

tm_status tm_queue_new_id(tm_queue *q, const char *prefix, char out[TM_QUEUE_ID_MAX], tm_err *err)
{
    unsigned char b[16];
    tm_status s = tm_queue_rand(q, b, sizeof b, err);
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

/* ---- open / migrations -------------------------------------------------- */

static int read_user_version(tm_queue *q, int *v, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "PRAGMA user_version", &st, err);
    if (s) return s;
    if (sqlite3_step(st) != SQLITE_ROW) {
        s = tm_queue_sql_fail(q, err, "read user_version");
    } else {
        *v = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    return s;
}

static tm_status pragma_int(tm_queue *q, const char *sql, int *v, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, sql, &st, err);
    if (s) return s;
    if (sqlite3_step(st) != SQLITE_ROW) s = tm_queue_sql_fail(q, err, sql);
    else *v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return s;
}

/* Whether the file is a tokenmill queue (or empty), decided before anything
 * is written to it (journal mode, migrations): our application_id; or none
 * and either no tables at all (a new file) or a schema version we wrote and
 * our tables (a queue made before the id was set: *mark = 1 to set it). */
static tm_status identify(tm_queue *q, int *mark, tm_err *err)
{
    int app = 0, v = 0, tables = 0, ours = 0;
    tm_status s;
    *mark = 0;
    if ((s = pragma_int(q, "PRAGMA application_id", &app, err)) || (s = pragma_int(q, "PRAGMA user_version", &v, err)) ||
        (s = pragma_int(q, "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'", &tables, err)) ||
        (s = pragma_int(q, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                           "('jobs', 'requests', 'results')", &ours, err)))
        return s;
    int latest = (int)tm_migrations_count;
    if (app == TM_QUEUE_APPLICATION_ID) {
        if (v < 0) return tm_errf(err, TM_ERR_INPUT, "corrupt tokenmill queue: schema version %d", v);
        return TM_OK;
    }
    if (app != 0)
        return tm_errf(err, TM_ERR_INPUT, "not a tokenmill queue (SQLite application_id 0x%08x)", (unsigned)app);
    if (v == 0 && tables == 0) return TM_OK; /* a new, empty file */
    if (v >= 1 && v <= latest && ours == 3) {
        *mark = 1;
        return TM_OK;
    }
    if (v > latest && ours == 3) return TM_OK; /* a newer tokenmill's queue: migrate() says so */
    return tm_errf(err, TM_ERR_INPUT, "not a tokenmill queue (schema version %d, %d tables, no tokenmill tables)", v,
                   tables);
}

/* Set our application_id on a queue that has none yet (one small write). */
static tm_status mark_ours(tm_queue *q, tm_err *err)
{
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA application_id = %d", (int)TM_QUEUE_APPLICATION_ID);
    tm_status s = tm_queue_begin_write(q, err);
    if (!s) s = tm_queue_exec(q, pragma, err);
    if (s) { tm_queue_rollback(q); return s; }
    return tm_queue_commit(q, err);
}

static tm_status migrate(tm_queue *q, tm_err *err)
{
    int latest = (int)tm_migrations_count;
    for (;;) {
        int v = 0;
        tm_status s = read_user_version(q, &v, err);
        if (s) return s;
        if (v < 0 || v > latest)
            return tm_errf(err, TM_ERR_INPUT,
                           "queue: database schema version %d is newer than this tokenmill knows (%d)",
                           v, latest);
        if (v == latest) return TM_OK;
        if ((s = tm_queue_begin_write(q, err))) return s;
        /* another process may have migrated while we waited for the lock */
        if ((s = read_user_version(q, &v, err))) { tm_queue_rollback(q); return s; }
        if (v == 0) {
            /* a fresh DB: refuse to put our schema into someone else's DB */
            int other = 0;
            sqlite3_stmt *st;
            if ((s = tm_queue_prep(q, "SELECT 1 FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' LIMIT 1", &st, err))) {
                tm_queue_rollback(q);
                return s;
            }
            other = sqlite3_step(st) == SQLITE_ROW;
            sqlite3_finalize(st);
            if (other) {
                tm_queue_rollback(q);
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
                tm_queue_rollback(q);
                return s;
            }
            /* PRAGMA takes no bound parameters; the value is our own integer. */
            char pragma[96];
            snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
            if ((s = tm_queue_exec(q, pragma, err))) { tm_queue_rollback(q); return s; }
            snprintf(pragma, sizeof pragma, "PRAGMA application_id = %d", (int)TM_QUEUE_APPLICATION_ID);
            if ((s = tm_queue_exec(q, pragma, err))) { tm_queue_rollback(q); return s; }
        }
        if ((s = tm_queue_commit(q, err))) return s;
    }
}

/* Switch to WAL. Two processes opening a new file at once can meet a lock
 * that SQLite reports as busy without waiting in its busy handler (a lock
 * upgrade that could deadlock): retry for as long as the busy timeout. */
static tm_status set_wal(tm_queue *q, tm_err *err)
{
    for (int waited_ms = 0;; waited_ms += 20) {
        int rc = sqlite3_exec(q->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        if (rc == SQLITE_OK) return TM_OK;
        if (((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) || waited_ms >= TM_QUEUE_BUSY_TIMEOUT_MS)
            return tm_queue_sql_fail(q, err, "PRAGMA journal_mode=WAL");
        sqlite3_sleep(20);
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
    q->busy_ms = TM_QUEUE_BUSY_TIMEOUT_MS;
    sqlite3_busy_handler(q->db, busy_poll, q);
    int mark = 0;
    tm_status s = identify(q, &mark, err);
    if (!s) s = set_wal(q, err);
    if (!s) s = tm_queue_exec(q, "PRAGMA foreign_keys=ON", err);
    if (!s) s = tm_queue_exec(q, "PRAGMA synchronous=NORMAL", err);
    /* a big submission is one transaction: a 32 MiB page cache (a fixed
     * bound) keeps its index pages in memory instead of spilling to the WAL */
    if (!s) s = tm_queue_exec(q, "PRAGMA cache_size=-32768", err);
    if (!s) s = migrate(q, err);
    if (!s && mark) s = mark_ours(q, err);
    if (!s) tm_queue_reap_submissions(q); /* rows of submissions whose process died */
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
    for (int i = 0; i < TM_QUEUE_STMT_COUNT; i++) sqlite3_finalize(q->cached[i]);
    ZSTD_freeCCtx(q->zc);
    free(q->zbuf);
    free(q->sub_default_model);
    free(q->sub_endpoint_at);
    free(q->claim_models);
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

void tm_queue_set_busy_timeout(tm_queue *q, int ms) { q->busy_ms = ms > 0 ? ms : 0; }

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
    tm_status s = tm_queue_rand(q, b, sizeof b, err);
    if (s) return s;
    int n = snprintf(out, outsz, "%s:%ld:%02x%02x%02x%02x%02x%02x", host, (long)getpid(), b[0], b[1],
                     b[2], b[3], b[4], b[5]);
    if (n < 0 || (size_t)n >= outsz) return tm_errf(err, TM_ERR_INTERNAL, "queue: owner buffer too small");
    return TM_OK;
}

