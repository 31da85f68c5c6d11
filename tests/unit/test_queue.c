/* test_queue.c — unit tests of the SQLite queue (src/queue/queue.c).
 *
 * Migration of a real v1 DB to the latest schema, submission (one transaction,
 * duplicates via the unique index, rollback), claim order, leases (renew,
 * reclaim, completion guarded by the lease), fail/release, job state
 * transitions, cancel, expiry and the cost views. A fake clock (per handle)
 * makes lease and expiry times exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/queue.h"
#include "util/buf.h"
#include "util/embedded.h"

typedef struct fx {
    char dir[64];
    char path[128];
    double now;
    tm_queue *q;
} fx;

static double fake_clock(void *ctx) { return ((fx *)ctx)->now; }

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tm_test_queue_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/q.db", f->dir);
    f->now = 1700000000.0;
    tm_err err = {{0}};
    if (tm_queue_open(f->path, &f->q, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    tm_queue_set_clock(f->q, fake_clock, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    tm_queue_close(f->q);
    char p[160];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Submit n requests "c0".."c{n-1}"; returns the job id in id. */
static void submit_n(fx *f, int n, int64_t priority, int64_t window, char id[TM_QUEUE_ID_MAX])
{
    tm_err err = {{0}};
    tm_queue_job_opts o = {.name = "t", .model = "m", .priority = priority, .completion_window = window};
    assert_int_equal(tm_queue_submit_begin(f->q, &o, id, &err), TM_OK);
    for (int i = 0; i < n; i++) {
        char cid[32];
        snprintf(cid, sizeof cid, "c%d", i);
        tm_queue_new_request r = {.custom_id = cid, .source = "a.jsonl", .line = i + 1,
                                  .url = "/v1/chat/completions", .body_json = "{\"messages\":[]}",
                                  .max_tokens = 16, .n = 1};
        assert_int_equal(tm_queue_submit_add(f->q, &r, &err), TM_OK);
    }
    assert_int_equal(tm_queue_submit_commit(f->q, &err), TM_OK);
}

static void job(fx *f, const char *id, tm_queue_job *j)
{
    tm_err err = {{0}};
    assert_int_equal(tm_queue_job_get(f->q, id, j, &err), TM_OK);
}

static void claim(fx *f, const char *owner, int max, double lease, tm_queue_claimed *out, int *n)
{
    tm_err err = {{0}};
    assert_int_equal(tm_queue_claim(f->q, owner, max, lease, out, n, &err), TM_OK);
}

static void test_migrate_from_v1(void **state)
{
    (void)state;
    char dir[] = "/tmp/tm_test_mig_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/old.db", dir);
    assert_true(tm_migrations_count >= 2);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, tm_migrations[0].data, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=1;"
                                      "INSERT INTO jobs(id,name,state,created_at,expires_at) "
                                      "VALUES('job_old','old','queued',1,99999999999);"
                                      "INSERT INTO requests(id,job_id,custom_id,source,line,url,body,created_at,"
                                      "prompt_tokens,state) VALUES('req_1','job_old','a','f.jsonl',1,'/v1/completions',"
                                      "'{}',1,7,'done'),('req_2','job_old','b','f.jsonl',2,'/v1/completions','{}',1,5,"
                                      "'pending');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    /* no views yet in v1 */
    assert_int_not_equal(sqlite3_exec(db, "SELECT * FROM job_costs", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    tm_queue *q;
    tm_err err = {{0}};
    assert_int_equal(tm_queue_open(path, &q, &err), TM_OK);
    assert_int_equal(tm_queue_schema_version(q), tm_queue_schema_latest());
    tm_queue_job j;
    assert_int_equal(tm_queue_job_get(q, "job_old", &j, &err), TM_OK);
    assert_int_equal(j.total, 2);
    assert_int_equal(j.pending, 1);
    assert_int_equal(j.done, 1);
    assert_int_equal(j.prompt_tokens, 7); /* sums cover done/failed requests */
    assert_string_equal(j.name, "old");
    tm_queue_job_clear(&j);
    tm_queue_close(q);

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT requests, prompt_tokens, cost_usd, usd_per_1m_input "
                                            "FROM job_costs WHERE job_id='job_old'", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 2);
    assert_int_equal(sqlite3_column_int(st, 1), 12);
    assert_true(sqlite3_column_double(st, 2) == 0.0);
    assert_int_equal(sqlite3_column_type(st, 3), SQLITE_NULL);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), (int)tm_migrations_count);
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* reopening an up-to-date DB changes nothing */
    assert_int_equal(tm_queue_open(path, &q, &err), TM_OK);
    assert_int_equal(tm_queue_schema_version(q), tm_queue_schema_latest());
    tm_queue_close(q);
    char p[160];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void test_newer_schema_refused(void **state)
{
    fx *f = *state;
    tm_queue_close(f->q);
    f->q = NULL;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    tm_err err = {{0}};
    assert_int_equal(tm_queue_open(f->path, &f->q, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "newer"));
    assert_null(f->q);
}

static void test_foreign_db_refused(void **state)
{
    (void)state;
    char dir[] = "/tmp/tm_test_foreign_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/other.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE notes(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    tm_queue *q = NULL;
    tm_err err = {{0}};
    assert_int_equal(tm_queue_open_existing(path, &q, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "not a tokenmill queue"));
    assert_null(q);
    /* and a missing file is NOTFOUND for open_existing, without creating it */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing.db", dir);
    assert_int_equal(tm_queue_open_existing(missing, &q, &err), TM_ERR_NOTFOUND);
    assert_int_not_equal(access(missing, F_OK), 0);
    unlink(path);
    rmdir(dir);
}

static void test_submit_duplicate_and_rollback(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    char id[TM_QUEUE_ID_MAX];
    tm_queue_job_opts o = {0};
    assert_int_equal(tm_queue_submit_begin(f->q, &o, id, &err), TM_OK);
    assert_memory_equal(id, "job_", 4);
    assert_int_equal(strlen(id), 4 + 32);
    tm_queue_new_request r = {.custom_id = "x", .source = "a.jsonl", .line = 3, .url = "/v1/completions",
                              .body_json = "{}", .max_tokens = -1, .n = 1};
    assert_int_equal(tm_queue_submit_add(f->q, &r, &err), TM_OK);
    r.source = "b.jsonl";
    r.line = 7;
    assert_int_equal(tm_queue_submit_add(f->q, &r, &err), TM_ERR_INPUT);
    assert_string_equal(err.msg, "custom_id: duplicate \"x\" (first at a.jsonl:3)");
    /* the transaction is still usable after the constraint error */
    r.custom_id = "y";
    assert_int_equal(tm_queue_submit_add(f->q, &r, &err), TM_OK);
    tm_queue_submit_rollback(f->q);
    tm_queue_job j;
    assert_int_equal(tm_queue_job_get(f->q, id, &j, &err), TM_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "no such job"));

    /* the same custom_id in another job is fine */
    char a[TM_QUEUE_ID_MAX], b[TM_QUEUE_ID_MAX];
    submit_n(f, 2, 0, 0, a);
    submit_n(f, 2, 0, 0, b);
    job(f, a, &j);
    assert_string_equal(j.state, "queued");
    assert_int_equal(j.total, 2);
    assert_string_equal(j.endpoint, "/v1/chat/completions");
    assert_int_equal(j.expires_at - j.created_at, 86400);
    tm_queue_job_clear(&j);
}

static void test_skip_invalid_only_fails_job(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    char id[TM_QUEUE_ID_MAX];
    tm_queue_job_opts o = {.skip_invalid = 1};
    assert_int_equal(tm_queue_submit_begin(f->q, &o, id, &err), TM_OK);
    tm_queue_new_request r = {.custom_id = "bad", .source = "a.jsonl", .line = 1, .max_tokens = -1};
    assert_int_equal(tm_queue_submit_add_failed(f->q, &r, "a.jsonl:1: body: missing", &err), TM_OK);
    assert_int_equal(tm_queue_submit_commit(f->q, &err), TM_OK);
    tm_queue_job j;
    job(f, id, &j);
    assert_string_equal(j.state, "failed");
    assert_int_equal(j.failed, 1);
    assert_int_equal(j.failed_at, (int64_t)f->now);
    tm_queue_job_clear(&j);
}

typedef struct seen {
    int n;
    char custom[8][32];
    char state[8][16];
    char error[8][256];
} seen;

static tm_status on_err(void *ctx, const char *rid, const char *cid, const char *state, const char *code,
                        const char *message, tm_err *err)
{
    seen *s = ctx;
    (void)rid; (void)err;
    if (s->n < 8) {
        snprintf(s->custom[s->n], 32, "%s", cid ? cid : "(null)");
        snprintf(s->state[s->n], 16, "%s", state);
        snprintf(s->error[s->n], 256, "%s|%s", code ? code : "(null)", message ? message : "(null)");
    }
    s->n++;
    return TM_OK;
}

static tm_status on_res(void *ctx, const char *rid, const char *cid, const char *resp, size_t len, tm_err *err)
{
    seen *s = ctx;
    (void)rid; (void)err;
    if (s->n < 8) {
        snprintf(s->custom[s->n], 32, "%s", cid);
        snprintf(s->error[s->n], 256, "%.*s", (int)len, resp);
    }
    s->n++;
    return TM_OK;
}

static void test_claim_complete_states(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    char id[TM_QUEUE_ID_MAX];
    submit_n(f, 3, 0, 0, id);
    tm_queue_claimed c[4];
    int n;
    claim(f, "A", 2, 30, c, &n);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].custom_id, "c0");
    assert_string_equal(c[1].custom_id, "c1");
    assert_string_equal(c[0].job_id, id);
    assert_string_equal(c[0].url, "/v1/chat/completions");
    assert_string_equal(c[0].model, "m"); /* the job's default model */
    assert_string_equal(c[0].body_json, "{\"messages\":[]}");
    assert_int_equal(c[0].max_tokens, 16);
    assert_int_equal(c[0].attempts, 1);
    assert_true(c[0].lease_expires == f->now + 30);
    tm_queue_job j;
    job(f, id, &j);
    assert_string_equal(j.state, "in_progress");
    assert_int_equal(j.in_progress_at, (int64_t)f->now);
    assert_int_equal(j.running, 2);
    assert_int_equal(j.pending, 1);
    tm_queue_job_clear(&j);

    const char *resp = "{\"object\":\"chat.completion\",\"usage\":{\"prompt_tokens\":5}}";
    tm_queue_usage u = {5, 7, 2, -1, -1, -1, -1, -1, NULL};
    assert_int_equal(tm_queue_complete(f->q, "A", c[0].request_id, resp, strlen(resp), &u, &err), TM_OK);
    /* twice: the lease is gone */
    assert_int_equal(tm_queue_complete(f->q, "A", c[0].request_id, resp, strlen(resp), &u, &err), TM_ERR_NOTFOUND);
    assert_int_equal(tm_queue_fail(f->q, "A", c[1].request_id, "server_error", "boom", &err), TM_OK);
    int m;
    claim(f, "A", 4, 30, c + 2, &m);
    assert_int_equal(m, 1);
    assert_string_equal(c[2].custom_id, "c2");
    job(f, id, &j);
    assert_string_equal(j.state, "in_progress");
    tm_queue_job_clear(&j);
    f->now += 10;
    assert_int_equal(tm_queue_complete(f->q, "A", c[2].request_id, "{}", 2, NULL, &err), TM_OK);
    job(f, id, &j);
    assert_string_equal(j.state, "completed");
    assert_int_equal(j.completed_at, (int64_t)f->now);
    assert_int_equal(j.finalizing_at, (int64_t)f->now);
    assert_int_equal(j.done, 2);
    assert_int_equal(j.failed, 1);
    assert_int_equal(j.prompt_tokens, 5);
    assert_int_equal(j.completion_tokens, 7);
    assert_int_equal(j.cached_tokens, 2);
    tm_queue_job_clear(&j);

    seen r = {0}, e = {0};
    assert_int_equal(tm_queue_foreach_result(f->q, id, on_res, &r, &err), TM_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.custom[0], "c0");
    assert_string_equal(r.error[0], resp); /* round trip through zstd */
    assert_string_equal(r.error[1], "{}");
    assert_int_equal(tm_queue_foreach_error(f->q, id, on_err, &e, &err), TM_OK);
    assert_int_equal(e.n, 1);
    assert_string_equal(e.custom[0], "c1");
    assert_string_equal(e.state[0], "failed");
    assert_string_equal(e.error[0], "server_error|boom");
    for (int i = 0; i < 3; i++) tm_queue_claimed_clear(&c[i]);
    /* nothing left */
    claim(f, "A", 4, 30, c, &n);
    assert_int_equal(n, 0);
    assert_int_equal(tm_queue_foreach_result(f->q, "job_nope", on_res, &r, &err), TM_ERR_NOTFOUND);
}

static void test_lease_guard_renew_reclaim(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    char id[TM_QUEUE_ID_MAX];
    submit_n(f, 2, 0, 0, id);
    tm_queue_claimed a[2], b[2];
    int n;
    claim(f, "A", 1, 10, a, &n);
    assert_int_equal(n, 1);
    /* renew keeps it: at +8 renew to +18; at +15 it is still A's */
    f->now += 8;
    int renewed = 0;
    assert_int_equal(tm_queue_renew(f->q, "A", 10, &renewed, &err), TM_OK);
    assert_int_equal(renewed, 1);
    f->now += 7;
    claim(f, "B", 2, 10, b, &n);
    assert_int_equal(n, 1);
    assert_string_equal(b[0].custom_id, "c1"); /* not A's c0 */
    tm_queue_claimed_clear(&b[0]);
    /* A's lease expires; a reclaim hands c0 to B */
    f->now += 11;
    int reclaimed = 0;
    assert_int_equal(tm_queue_reclaim_expired(f->q, &reclaimed, &err), TM_OK);
    assert_int_equal(reclaimed, 2); /* A's c0 and B's c1 (both expired) */
    claim(f, "B", 1, 10, b, &n);
    assert_int_equal(n, 1);
    assert_string_equal(b[0].request_id, a[0].request_id);
    assert_int_equal(b[0].attempts, 2);
    /* A cannot write: its lease was re-claimed */
    assert_int_equal(tm_queue_complete(f->q, "A", a[0].request_id, "{\"x\":1}", 7, NULL, &err), TM_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "lease not held"));
    assert_int_equal(tm_queue_fail(f->q, "A", a[0].request_id, "x", "y", &err), TM_ERR_NOTFOUND);
    assert_int_equal(tm_queue_renew(f->q, "A", 10, &renewed, &err), TM_OK);
    assert_int_equal(renewed, 0);
    assert_int_equal(tm_queue_complete(f->q, "B", b[0].request_id, "{\"x\":2}", 7, NULL, &err), TM_OK);
    seen r = {0};
    assert_int_equal(tm_queue_foreach_result(f->q, id, on_res, &r, &err), TM_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.error[0], "{\"x\":2}");
    /* release: back to pending, claimable again */
    claim(f, "B", 1, 10, b + 1, &n);
    assert_int_equal(n, 1);
    int released = 0;
    assert_int_equal(tm_queue_release(f->q, "B", NULL, &released, &err), TM_OK);
    assert_int_equal(released, 1);
    tm_queue_job j;
    job(f, id, &j);
    assert_int_equal(j.pending, 1);
    assert_int_equal(j.running, 0);
    tm_queue_job_clear(&j);
    tm_queue_claimed_clear(&a[0]);
    tm_queue_claimed_clear(&b[0]);
    tm_queue_claimed_clear(&b[1]);
}

static void test_priority_order(void **state)
{
    fx *f = *state;
    char lo[TM_QUEUE_ID_MAX], hi[TM_QUEUE_ID_MAX], lo2[TM_QUEUE_ID_MAX];
    submit_n(f, 2, 0, 0, lo);
    submit_n(f, 2, 5, 0, hi);
    submit_n(f, 2, 0, 0, lo2);
    tm_queue_claimed c[6];
    int n;
    claim(f, "A", 6, 10, c, &n);
    assert_int_equal(n, 6);
    assert_string_equal(c[0].job_id, hi);
    assert_string_equal(c[1].job_id, hi);
    assert_string_equal(c[2].job_id, lo);
    assert_string_equal(c[3].job_id, lo);
    assert_string_equal(c[4].job_id, lo2);
    assert_string_equal(c[2].custom_id, "c0");
    assert_string_equal(c[3].custom_id, "c1");
    /* the job's priority travels with the claim (the scheduler orders by it) */
    assert_int_equal(c[0].priority, 5);
    assert_int_equal(c[2].priority, 0);
    for (int i = 0; i < n; i++) tm_queue_claimed_clear(&c[i]);
}

static void test_cancel(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    char id[TM_QUEUE_ID_MAX], id2[TM_QUEUE_ID_MAX];
    submit_n(f, 3, 0, 0, id);
    tm_queue_claimed c[1];
    int n;
    claim(f, "A", 1, 10, c, &n);
    char st[16];
    assert_int_equal(tm_queue_cancel(f->q, id, st, &err), TM_OK);
    assert_string_equal(st, "cancelling"); /* one still runs */
    tm_queue_job j;
    job(f, id, &j);
    assert_int_equal(j.cancelled, 2);
    assert_int_equal(j.running, 1);
    assert_int_equal(j.cancelling_at, (int64_t)f->now);
    tm_queue_job_clear(&j);
    /* no new claims from a cancelling job */
    tm_queue_claimed d[1];
    claim(f, "B", 1, 10, d, &n);
    assert_int_equal(n, 0);
    /* the running one finishes: its result stays, the job becomes cancelled */
    assert_int_equal(tm_queue_complete(f->q, "A", c[0].request_id, "{}", 2, NULL, &err), TM_OK);
    job(f, id, &j);
    assert_string_equal(j.state, "cancelled");
    assert_int_equal(j.done, 1);
    assert_int_equal(j.cancelled_at, (int64_t)f->now);
    tm_queue_job_clear(&j);
    seen e = {0};
    assert_int_equal(tm_queue_foreach_error(f->q, id, on_err, &e, &err), TM_OK);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.state[0], "cancelled");
    assert_string_equal(e.error[0], "batch_cancelled|the job was cancelled before this request ran");
    tm_queue_claimed_clear(&c[0]);

    /* nothing running: cancelled at once; cancelling again keeps it */
    submit_n(f, 2, 0, 0, id2);
    assert_int_equal(tm_queue_cancel(f->q, id2, st, &err), TM_OK);
    assert_string_equal(st, "cancelled");
    assert_int_equal(tm_queue_cancel(f->q, id2, st, &err), TM_OK);
    assert_string_equal(st, "cancelled");
    assert_int_equal(tm_queue_cancel(f->q, "job_unknown", st, &err), TM_ERR_NOTFOUND);

    /* a lease released in a cancelling job: the request is cancelled, not requeued */
    char id3[TM_QUEUE_ID_MAX];
    submit_n(f, 2, 0, 0, id3);
    claim(f, "A", 1, 10, c, &n);
    assert_int_equal(n, 1);
    assert_int_equal(tm_queue_cancel(f->q, id3, st, &err), TM_OK);
    assert_string_equal(st, "cancelling");
    assert_int_equal(tm_queue_release(f->q, "A", c[0].request_id, NULL, &err), TM_OK);
    job(f, id3, &j);
    assert_string_equal(j.state, "cancelled");
    assert_int_equal(j.cancelled, 2);
    tm_queue_job_clear(&j);
    tm_queue_claimed_clear(&c[0]);
}

static void test_expiry(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    char id[TM_QUEUE_ID_MAX], keep[TM_QUEUE_ID_MAX];
    submit_n(f, 3, 0, 60, id);
    submit_n(f, 1, 0, 3600, keep);
    tm_queue_claimed c[1];
    int n;
    claim(f, "A", 1, 600, c, &n);
    f->now += 30;
    int expired = -1;
    assert_int_equal(tm_queue_expire(f->q, &expired, &err), TM_OK);
    assert_int_equal(expired, 0);
    f->now += 31;
    assert_int_equal(tm_queue_expire(f->q, &expired, &err), TM_OK);
    assert_int_equal(expired, 2);
    tm_queue_job j;
    job(f, id, &j);
    assert_string_equal(j.state, "in_progress"); /* c0 still runs */
    assert_int_equal(j.expired, 2);
    tm_queue_job_clear(&j);
    assert_int_equal(tm_queue_complete(f->q, "A", c[0].request_id, "{}", 2, NULL, &err), TM_OK);
    job(f, id, &j);
    assert_string_equal(j.state, "expired");
    assert_int_equal(j.expired_at, (int64_t)f->now);
    tm_queue_job_clear(&j);
    job(f, keep, &j);
    assert_string_equal(j.state, "queued");
    assert_int_equal(j.pending, 1);
    tm_queue_job_clear(&j);
    seen e = {0};
    assert_int_equal(tm_queue_foreach_error(f->q, id, on_err, &e, &err), TM_OK);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.state[1], "expired");
    assert_string_equal(e.error[1], "batch_expired|this request could not be executed before the job's completion window expired");
    tm_queue_claimed_clear(&c[0]);
    /* an expired job with nothing running expires at once (through claim too) */
    char id2[TM_QUEUE_ID_MAX];
    submit_n(f, 2, 0, 5, id2);
    f->now += 6;
    claim(f, "A", 1, 10, c, &n);
    assert_int_equal(n, 1); /* from `keep`, not from id2 */
    assert_string_equal(c[0].job_id, keep);
    tm_queue_claimed_clear(&c[0]);
    job(f, id2, &j);
    assert_string_equal(j.state, "expired");
    assert_int_equal(j.expired, 2);
    tm_queue_job_clear(&j);
}

static void test_cost_views(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    char id[TM_QUEUE_ID_MAX], empty[TM_QUEUE_ID_MAX];
    submit_n(f, 2, 0, 0, id);
    tm_queue_claimed c[2];
    int n;
    claim(f, "A", 2, 10, c, &n);
    tm_queue_usage u = {1000, 3000, 0, 2.0, 7200.0, 0.002, -1, -1, NULL};
    assert_int_equal(tm_queue_complete(f->q, "A", c[0].request_id, "{}", 2, &u, &err), TM_OK);
    assert_int_equal(tm_queue_complete(f->q, "A", c[1].request_id, "{}", 2, &u, &err), TM_OK);
    tm_queue_claimed_clear(&c[0]);
    tm_queue_claimed_clear(&c[1]);
    tm_queue_job_opts o = {.skip_invalid = 1};
    assert_int_equal(tm_queue_submit_begin(f->q, &o, empty, &err), TM_OK);
    assert_int_equal(tm_queue_submit_commit(f->q, &err), TM_OK);

    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT requests, prompt_tokens, completion_tokens, gpu_seconds, kwh, "
                                            "cost_usd, usd_per_1m_input, usd_per_1m_output, usd_per_1m_total, "
                                            "tokens_per_usd FROM job_costs WHERE job_id=?", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 2);
    assert_int_equal(sqlite3_column_int(st, 1), 2000);
    assert_int_equal(sqlite3_column_int(st, 2), 6000);
    assert_true(sqlite3_column_double(st, 3) == 4.0);
    assert_true(sqlite3_column_double(st, 4) > 0.003999 && sqlite3_column_double(st, 4) < 0.004001);
    assert_true(sqlite3_column_double(st, 5) > 0.003999 && sqlite3_column_double(st, 5) < 0.004001);
    assert_true(sqlite3_column_double(st, 6) > 1.999 && sqlite3_column_double(st, 6) < 2.001);
    assert_true(sqlite3_column_double(st, 7) > 0.666 && sqlite3_column_double(st, 7) < 0.667);
    assert_true(sqlite3_column_double(st, 8) > 0.4999 && sqlite3_column_double(st, 8) < 0.5001);
    assert_true(sqlite3_column_double(st, 9) > 1.999e6 && sqlite3_column_double(st, 9) < 2.001e6);
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, empty, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    assert_int_equal(sqlite3_column_int(st, 1), 0);
    assert_true(sqlite3_column_double(st, 5) == 0.0);
    assert_int_equal(sqlite3_column_type(st, 6), SQLITE_NULL);
    assert_int_equal(sqlite3_column_type(st, 9), SQLITE_NULL);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT request_id, job_id, custom_id, prompt_tokens, completion_tokens, "
                                            "cached_tokens, gpu_seconds, energy_joules, cost_usd FROM request_costs "
                                            "WHERE job_id=? ORDER BY custom_id", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 2), "c0");
    assert_true(sqlite3_column_double(st, 7) == 7200.0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    tm_queue_job j;
    job(f, id, &j);
    assert_true(j.has_cost);
    assert_true(j.cost_usd > 0.003999 && j.cost_usd < 0.004001);
    tm_queue_job_clear(&j);
}

/* schemas/queue.sql (for humans) describes exactly what the migrations build:
 * same tables/indexes/views, same columns in the same order. */
static void schema_signature(sqlite3 *db, tm_buf *out)
{
    sqlite3_stmt *st, *cols;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                                            "ORDER BY name", -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(st, 0), *name = (const char *)sqlite3_column_text(st, 1);
        tm_buf_printf(out, "%s %s:", type, name);
        if (strcmp(type, "index")) {
            assert_int_equal(sqlite3_prepare_v2(db, "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)",
                                                -1, &cols, NULL), SQLITE_OK);
            sqlite3_bind_text(cols, 1, name, -1, SQLITE_TRANSIENT);
            while (sqlite3_step(cols) == SQLITE_ROW)
                tm_buf_printf(out, " %s/%s/%d/%d", sqlite3_column_text(cols, 0), sqlite3_column_text(cols, 1),
                              sqlite3_column_int(cols, 2), sqlite3_column_int(cols, 3));
            sqlite3_finalize(cols);
        }
        tm_buf_puts(out, "\n");
    }
    sqlite3_finalize(st);
}

/* The schema version is the number of applied migrations, so the files must
 * be numbered 0001..N with no gap: a new migration always takes N+1. */
static void test_migrations_numbered_contiguously(void **state)
{
    (void)state;
    for (size_t i = 0; i < tm_migrations_count; i++) {
        char want[32];
        snprintf(want, sizeof want, "%04zu_", i + 1);
        if (strncmp(tm_migrations[i].name, want, 5) != 0)
            fail_msg("migration %zu is %s; expected a name starting %s", i, tm_migrations[i].name, want);
    }
}

static void test_queue_sql_matches_migrations(void **state)
{
    (void)state;
    const char *src = getenv("TOKENMILL_SRC");
    if (!src) {
        print_message("TOKENMILL_SRC not set: cannot find schemas/queue.sql; not compared\n");
        skip();
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/schemas/queue.sql", src);
    tm_buf sql, a, b;
    tm_buf_init(&sql);
    tm_buf_init(&a);
    tm_buf_init(&b);
    tm_err err = {{0}};
    assert_int_equal(tm_read_file(path, 1 << 20, &sql, &err), TM_OK);
    sqlite3 *doc, *mig;
    assert_int_equal(sqlite3_open(":memory:", &doc), SQLITE_OK);
    assert_int_equal(sqlite3_exec(doc, sql.data, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_open(":memory:", &mig), SQLITE_OK);
    for (size_t i = 0; i < tm_migrations_count; i++)
        assert_int_equal(sqlite3_exec(mig, tm_migrations[i].data, NULL, NULL, NULL), SQLITE_OK);
    schema_signature(doc, &a);
    schema_signature(mig, &b);
    assert_true(a.len > 100);
    assert_string_equal(a.data, b.data);
    sqlite3_close(doc);
    sqlite3_close(mig);
    tm_buf_free(&sql);
    tm_buf_free(&a);
    tm_buf_free(&b);
}

/* Checkpoints: saved only under a held lease (one transaction for several),
 * returned (decompressed) by the next claim after a release or a lease
 * expiry, counted by checkpoint_stats, and deleted with the result. */
static void test_checkpoints(void **state)
{
    fx *f = *state;
    char id[TM_QUEUE_ID_MAX];
    submit_n(f, 3, 0, 0, id);
    tm_queue_claimed c[3];
    int n = 0;
    claim(f, "w1", 3, 60, c, &n);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) assert_null(c[i].checkpoint);
    tm_err err = {{0}};
    tm_queue_checkpoint ck[3] = {
        {.request_id = c[0].request_id, .tokens_done = 5, .state = "state-zero", .len = 10, .gpu_seconds = 1.5, .cost_usd = 0.5},
        {.request_id = c[1].request_id, .tokens_done = 7, .state = "state-one", .len = 9, .gpu_seconds = -1, .cost_usd = -1},
        {.request_id = c[2].request_id, .tokens_done = 1, .state = "x", .len = 1, .gpu_seconds = 0, .cost_usd = 0}};
    int saved = 0;
    /* a worker without the leases writes nothing */
    assert_int_equal(tm_queue_checkpoint_save(f->q, "w2", "run_x", ck, 3, &saved, &err), TM_OK);
    assert_int_equal(saved, 0);
    assert_int_equal(tm_queue_checkpoint_save(f->q, "w1", "run_1", ck, 3, &saved, &err), TM_OK);
    assert_int_equal(saved, 3);
    int64_t nreq = 0, ntok = 0;
    assert_int_equal(tm_queue_checkpoint_stats(f->q, &nreq, &ntok, &err), TM_OK);
    assert_int_equal(nreq, 3);
    assert_int_equal(ntok, 13);
    /* request 2 completes: its checkpoint goes in the same transaction */
    tm_queue_usage u = {1, 1, 0, 2.0, -1, 0.75, 0.5, 0.125, "run_1"};
    assert_int_equal(tm_queue_complete(f->q, "w1", c[2].request_id, "{}", 2, &u, &err), TM_OK);
    assert_int_equal(tm_queue_checkpoint_stats(f->q, &nreq, &ntok, &err), TM_OK);
    assert_int_equal(nreq, 2);
    /* request 0 released, request 1 left to expire */
    assert_int_equal(tm_queue_release(f->q, "w1", c[0].request_id, NULL, &err), TM_OK);
    char r0[TM_QUEUE_ID_MAX], r1[TM_QUEUE_ID_MAX], r2[TM_QUEUE_ID_MAX];
    memcpy(r0, c[0].request_id, sizeof r0);
    memcpy(r1, c[1].request_id, sizeof r1);
    memcpy(r2, c[2].request_id, sizeof r2);
    for (int i = 0; i < 3; i++) tm_queue_claimed_clear(&c[i]);
    f->now += 61;
    claim(f, "w2", 3, 60, c, &n);
    assert_int_equal(n, 2);
    for (int i = 0; i < 2; i++) {
        assert_non_null(c[i].checkpoint);
        assert_false(c[i].checkpoint_bad);
        if (!strcmp(c[i].request_id, r0)) {
            assert_int_equal(c[i].checkpoint_len, 10);
            assert_memory_equal(c[i].checkpoint, "state-zero", 10);
            assert_int_equal(c[i].checkpoint_tokens, 5);
        } else {
            assert_string_equal(c[i].request_id, r1);
            assert_memory_equal(c[i].checkpoint, "state-one", 9);
            assert_int_equal(c[i].attempts, 2);
        }
    }
    /* the first worker, back from the dead, cannot overwrite them */
    ck[0].state = "stale";
    ck[0].len = 5;
    assert_int_equal(tm_queue_checkpoint_save(f->q, "w1", "run_1", ck, 1, &saved, &err), TM_OK);
    assert_int_equal(saved, 0);
    /* a corrupt frame is reported, not fatal */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE checkpoints SET state_zstd=x'28b52ffd00' WHERE request_id='%s'", r0);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    snprintf(sql, sizeof sql, "SELECT wasted_seconds, wasted_usd, run_id FROM requests WHERE id='%s'", r2);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_true(sqlite3_column_double(st, 0) == 0.5);
    assert_true(sqlite3_column_double(st, 1) == 0.125);
    assert_string_equal((const char *)sqlite3_column_text(st, 2), "run_1");
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_int_equal(tm_queue_release(f->q, "w2", NULL, NULL, &err), TM_OK);
    for (int i = 0; i < 2; i++) tm_queue_claimed_clear(&c[i]);
    claim(f, "w3", 3, 60, c, &n);
    assert_int_equal(n, 2);
    for (int i = 0; i < 2; i++) {
        if (!strcmp(c[i].request_id, r0)) {
            assert_true(c[i].checkpoint_bad);
            assert_null(c[i].checkpoint);
        }
        tm_queue_claimed_clear(&c[i]);
    }
}

static tm_status count_workers(void *ctx, const tm_queue_worker *w, tm_err *err)
{
    (void)err;
    int *k = ctx;
    k[0]++;
    if (w->alive) k[1]++;
    if (!strcmp(w->state, "lost")) k[2]++;
    return TM_OK;
}

/* Worker rows: --exclusive refuses while another worker heartbeats; a worker
 * silent for twice its lease is 'lost' and its run ends with end_reason lost. */
static void test_workers_exclusive_lost(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    char run1[TM_QUEUE_ID_MAX], run2[TM_QUEUE_ID_MAX];
    int other = 0;
    assert_int_equal(tm_queue_worker_start(f->q, "h:1:a", "cpu", 30, 1, &other, run1, &err), TM_OK);
    assert_int_equal(other, 0);
    f->now += 20;
    assert_int_equal(tm_queue_worker_start(f->q, "h:2:b", "cpu", 30, 1, &other, run2, &err), TM_ERR_BUSY);
    assert_int_equal(other, 1);
    assert_non_null(strstr(err.msg, "h:1:a"));
    int k[3] = {0};
    assert_int_equal(tm_queue_worker_list(f->q, 0, count_workers, k, &err), TM_OK);
    assert_int_equal(k[0], 1); /* the refused one left no row */
    assert_int_equal(k[1], 1);
    /* a heartbeat keeps it alive; then silence past its lease */
    tm_queue_run_stats rs = {.in_flight = 3, .state = "running"};
    assert_int_equal(tm_queue_worker_heartbeat(f->q, "h:1:a", run1, &rs, &err), TM_OK);
    f->now += 31;
    assert_int_equal(tm_queue_worker_start(f->q, "h:2:b", "cpu", 30, 1, &other, run2, &err), TM_OK);
    memset(k, 0, sizeof k);
    assert_int_equal(tm_queue_worker_list(f->q, 0, count_workers, k, &err), TM_OK);
    assert_int_equal(k[0], 2);
    assert_int_equal(k[1], 1);
    assert_int_equal(k[2], 0); /* dead but not yet 2 x lease: not marked */
    f->now += 40;
    tm_queue_claimed c[1];
    int n;
    claim(f, "h:2:b", 1, 60, c, &n); /* claim marks the silent one lost */
    memset(k, 0, sizeof k);
    assert_int_equal(tm_queue_worker_list(f->q, 0, count_workers, k, &err), TM_OK);
    assert_int_equal(k[2], 1);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT end_reason, ended_at FROM runs WHERE id=?1", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, run1, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "lost");
    assert_int_equal(sqlite3_column_int64(st, 1), 1700000020);
    sqlite3_finalize(st);
    /* a clean stop records its reason */
    tm_queue_run_stats stop = {.end_reason = "signal:SIGUSR1", .requests_checkpointed = 4};
    assert_int_equal(tm_queue_worker_stop(f->q, "h:2:b", run2, &stop, 75, &err), TM_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT end_reason, requests_checkpointed, exit_code FROM runs WHERE id=?1",
                                        -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, run2, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "signal:SIGUSR1");
    assert_int_equal(sqlite3_column_int(st, 1), 4);
    assert_int_equal(sqlite3_column_int(st, 2), 75);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_from_v1),
        cmocka_unit_test(test_queue_sql_matches_migrations),
        cmocka_unit_test(test_migrations_numbered_contiguously),
        cmocka_unit_test_setup_teardown(test_checkpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workers_exclusive_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test(test_foreign_db_refused),
        cmocka_unit_test_setup_teardown(test_submit_duplicate_and_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skip_invalid_only_fails_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_complete_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_guard_renew_reclaim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cost_views, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
