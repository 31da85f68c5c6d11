/* test_queue_counters.c — the jobs rows' counters (migration 0007) and the
 * per-step completion path (tm_queue_complete_batch).
 *
 * After every kind of request state change (submit with invalid lines,
 * claim, batch completion with a lost lease inside, fail, release, reclaim
 * of an expired lease, cancel, retry, expiry) tm_queue_job_get (the
 * counters) equals tm_queue_job_recount (a GROUP BY) and
 * tm_queue_check_counters finds nothing off; a v6 database is backfilled by
 * the migration. A fake clock makes lease and expiry times exact.
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
    snprintf(f->dir, sizeof f->dir, "/tmp/tm_test_counters_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/q.db", f->dir);
    f->now = 1700000000.0;
    tm_err err = {{0}};
    if (tm_queue_open(f->path, &f->q, &err)) return -1;
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

/* n requests (and n_bad invalid lines recorded as failed) in one job. */
static void submit(fx *f, int n, int n_bad, int64_t window, char id[TM_QUEUE_ID_MAX])
{
    tm_err err = {{0}};
    tm_queue_job_opts o = {.name = "t", .model = "m", .completion_window = window, .skip_invalid = n_bad > 0};
    assert_int_equal(tm_queue_submit_begin(f->q, &o, id, &err), TM_OK);
    for (int i = 0; i < n + n_bad; i++) {
        char cid[32];
        snprintf(cid, sizeof cid, "c%d", i);
        tm_queue_new_request r = {.custom_id = cid, .source = "a.jsonl", .line = i + 1,
                                  .url = "/v1/completions", .body_json = "{\"prompt\":[1]}", .max_tokens = 8, .n = 1};
        if (i < n) assert_int_equal(tm_queue_submit_add(f->q, &r, &err), TM_OK);
        else assert_int_equal(tm_queue_submit_add_failed(f->q, &r, "bad line", &err), TM_OK);
    }
    assert_int_equal(tm_queue_submit_commit(f->q, &err), TM_OK);
}

/* Every job's counters equal the recount (exact integers, sums to 1e-9). */
static void agree(fx *f, const char *const *ids, int n_ids)
{
    tm_err err = {{0}};
    int64_t checked = 0, off = -1;
    assert_int_equal(tm_queue_check_counters(f->q, &checked, &off, &err), TM_OK);
    assert_int_equal(off, 0);
    assert_true(checked >= n_ids);
    for (int i = 0; i < n_ids; i++) {
        tm_queue_job a, b;
        assert_int_equal(tm_queue_job_get(f->q, ids[i], &a, &err), TM_OK);
        assert_int_equal(tm_queue_job_recount(f->q, ids[i], &b, &err), TM_OK);
        assert_string_equal(a.state, b.state);
        int64_t x[] = {a.total, a.pending, a.running, a.done, a.failed, a.cancelled, a.expired,
                       a.prompt_tokens, a.completion_tokens, a.cached_tokens, a.has_cost, a.has_energy};
        int64_t y[] = {b.total, b.pending, b.running, b.done, b.failed, b.cancelled, b.expired,
                       b.prompt_tokens, b.completion_tokens, b.cached_tokens, b.has_cost, b.has_energy};
        for (size_t k = 0; k < sizeof x / sizeof x[0]; k++) assert_int_equal(x[k], y[k]);
        assert_true(a.cost_usd - b.cost_usd < 1e-9 && b.cost_usd - a.cost_usd < 1e-9);
        assert_true(a.gpu_seconds - b.gpu_seconds < 1e-9 && b.gpu_seconds - a.gpu_seconds < 1e-9);
        tm_queue_job_clear(&a);
        tm_queue_job_clear(&b);
    }
}

static void claim(fx *f, const char *owner, int max, double lease, tm_queue_claimed *out, int *n)
{
    tm_err err = {{0}};
    assert_int_equal(tm_queue_claim(f->q, owner, max, lease, out, n, &err), TM_OK);
}

static void test_counters_mixed(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    char a[TM_QUEUE_ID_MAX], b[TM_QUEUE_ID_MAX], c[TM_QUEUE_ID_MAX];
    submit(f, 10, 2, 0, a);
    submit(f, 6, 0, 0, b);
    submit(f, 3, 0, 100, c); /* expires after 100 s */
    const char *ids[] = {a, b, c};
    agree(f, ids, 3);
    tm_queue_job j;
    assert_int_equal(tm_queue_job_get(f->q, a, &j, &err), TM_OK);
    assert_int_equal(j.total, 12);
    assert_int_equal(j.pending, 10);
    assert_int_equal(j.failed, 2);
    tm_queue_job_clear(&j);

    tm_queue_claimed k[16];
    int n = 0;
    claim(f, "w1", 6, 60, k, &n); /* 6 of job a */
    assert_int_equal(n, 6);
    agree(f, ids, 3);
    /* one step's completions: 3 held, one of them twice (the second is not held any more) */
    tm_queue_usage u = {.prompt_tokens = 5, .completion_tokens = 7, .cached_tokens = 1, .gpu_seconds = 0.25,
                        .energy_joules = -1, .cost_usd = 0.001, .wasted_seconds = 0.05, .wasted_usd = 0.0002};
    tm_queue_completion done[4] = {
        {.request_id = k[0].request_id, .response_json = "{\"a\":1}", .len = 7, .usage = &u},
        {.request_id = k[1].request_id, .response_json = "{\"a\":2}", .len = 7, .usage = &u},
        {.request_id = k[0].request_id, .response_json = "{\"a\":3}", .len = 7, .usage = &u},
        {.request_id = k[2].request_id, .response_json = "{}", .len = 2, .usage = NULL}};
    int stored = 0;
    assert_int_equal(tm_queue_complete_batch(f->q, "w1", done, 4, &stored, &err), TM_OK);
    assert_int_equal(stored, 3);
    assert_int_equal(done[0].stored, 1);
    assert_int_equal(done[2].stored, 0);
    assert_int_equal(done[3].stored, 1);
    agree(f, ids, 3);
    assert_int_equal(tm_queue_job_get(f->q, a, &j, &err), TM_OK);
    assert_int_equal(j.done, 3);
    assert_int_equal(j.completion_tokens, 14);
    assert_true(j.has_cost && !j.has_energy);
    tm_queue_job_clear(&j);
    /* another owner stores nothing */
    tm_queue_completion other = {.request_id = k[3].request_id, .response_json = "{}", .len = 2};
    assert_int_equal(tm_queue_complete_batch(f->q, "w2", &other, 1, &stored, &err), TM_OK);
    assert_int_equal(stored, 0);
    assert_int_equal(tm_queue_fail(f->q, "w1", k[3].request_id, "server_error", "boom", &err), TM_OK);
    assert_int_equal(tm_queue_release(f->q, "w1", k[4].request_id, NULL, &err), TM_OK);
    agree(f, ids, 3);
    /* k[5] stays leased by w1, which dies: w2 claims after the lease expired */
    for (int i = 0; i < n; i++) tm_queue_claimed_clear(&k[i]);
    f->now += 101;
    claim(f, "w2", 16, 60, k, &n); /* reclaims; c expired first (its window passed) */
    assert_int_equal(n, 12);
    agree(f, ids, 3);
    assert_int_equal(tm_queue_job_get(f->q, c, &j, &err), TM_OK);
    assert_string_equal(j.state, "expired");
    assert_int_equal(j.expired, 3);
    tm_queue_job_clear(&j);
    char st[16];
    assert_int_equal(tm_queue_cancel(f->q, b, st, &err), TM_OK); /* b's requests are running: cancelling */
    assert_string_equal(st, "cancelling");
    agree(f, ids, 3);
    assert_int_equal(tm_queue_release(f->q, "w2", NULL, NULL, &err), TM_OK); /* b -> cancelled */
    assert_int_equal(tm_queue_job_state(f->q, b, st, &err), TM_OK);
    assert_string_equal(st, "cancelled");
    agree(f, ids, 3);
    int64_t requeued = 0;
    assert_int_equal(tm_queue_retry(f->q, a, NULL, &requeued, &err), TM_OK);
    assert_int_equal(requeued, 1); /* the worker's failure; the invalid lines stay failed */
    agree(f, ids, 3);
    int64_t pending = -1, running = -1;
    assert_int_equal(tm_queue_left(f->q, &pending, &running, &err), TM_OK);
    assert_int_equal(pending, 7); /* a: 10 - 3 done */
    assert_int_equal(running, 0);
    for (int i = 0; i < n; i++) tm_queue_claimed_clear(&k[i]);
    /* the rest done in one batch: the job completes */
    claim(f, "w3", 16, 60, k, &n);
    assert_int_equal(n, 7);
    tm_queue_completion all[7];
    for (int i = 0; i < n; i++)
        all[i] = (tm_queue_completion){.request_id = k[i].request_id, .response_json = "{}", .len = 2, .usage = &u};
    assert_int_equal(tm_queue_complete_batch(f->q, "w3", all, n, &stored, &err), TM_OK);
    assert_int_equal(stored, 7);
    for (int i = 0; i < n; i++) tm_queue_claimed_clear(&k[i]);
    assert_int_equal(tm_queue_job_state(f->q, a, st, &err), TM_OK);
    assert_string_equal(st, "completed");
    agree(f, ids, 3);
    assert_int_equal(tm_queue_job_state(f->q, "job_nope", st, &err), TM_ERR_NOTFOUND);
}

/* A database at schema 6 with work in every state: the migration fills the counters. */
static void test_counters_backfill(void **state)
{
    (void)state;
    char dir[] = "/tmp/tm_test_backfill_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/v6.db", dir);
    assert_true(tm_migrations_count >= 7);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    for (size_t i = 0; i < 6; i++) assert_int_equal(sqlite3_exec(db, tm_migrations[i].data, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=6; PRAGMA application_id=1414353201;"
                                      "INSERT INTO jobs(id,name,state,created_at) VALUES('job_a','a','in_progress',1),"
                                      "('job_b','b','queued',1);"
                                      "INSERT INTO requests(id,job_id,custom_id,source,line,created_at,state,prompt_tokens,"
                                      "completion_tokens,cost_usd) VALUES"
                                      "('r1','job_a','1','f',1,1,'done',3,4,0.5),('r2','job_a','2','f',2,1,'failed',2,0,NULL),"
                                      "('r3','job_a','3','f',3,1,'running',9,9,9),('r4','job_a','4','f',4,1,'pending',0,0,NULL),"
                                      "('r5','job_b','1','f',1,1,'cancelled',0,0,NULL);",
                                  NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    tm_queue *q;
    tm_err err = {{0}};
    assert_int_equal(tm_queue_open(path, &q, &err), TM_OK);
    int64_t checked = 0, off = -1;
    assert_int_equal(tm_queue_check_counters(q, &checked, &off, &err), TM_OK);
    assert_int_equal(checked, 2);
    assert_int_equal(off, 0);
    tm_queue_job j;
    assert_int_equal(tm_queue_job_get(q, "job_a", &j, &err), TM_OK);
    assert_int_equal(j.total, 4);
    assert_int_equal(j.done, 1);
    assert_int_equal(j.failed, 1);
    assert_int_equal(j.running, 1);
    assert_int_equal(j.pending, 1);
    assert_int_equal(j.prompt_tokens, 5);     /* done + failed only */
    assert_int_equal(j.completion_tokens, 4);
    assert_true(j.cost_usd == 0.5 && j.has_cost);
    tm_queue_job_clear(&j);
    /* a counter put off by hand is found */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE jobs SET n_done = n_done + 1 WHERE id='job_b'", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(tm_queue_check_counters(q, &checked, &off, &err), TM_OK);
    assert_int_equal(off, 1);
    tm_queue_close(q);
    char p[160];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counters_mixed, setup, teardown),
        cmocka_unit_test(test_counters_backfill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
