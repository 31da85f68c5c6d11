/* test_queue_claimfilter.c — the claim filter by request kind and retry
 * (src/queue/queue_claimfilter.c, queue_retry.c).
 *
 * A handle set to claim only token-id prompts leaves chat and text-prompt
 * requests pending with attempts 0; a body that is not JSON (written behind
 * the queue's back) is claimable by any worker and does not break the
 * claim; pending counts by kind; retry requeues failed requests (all or by
 * code), reopens a completed job, and refuses a cancelled or unknown job.
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

typedef struct fx {
    char dir[64];
    char path[128];
    tm_queue *q;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tm_test_qcf_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/q.db", f->dir);
    tm_err err = {{0}};
    if (tm_queue_open(f->path, &f->q, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
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

/* chat c0, text t0, ids i0, chat c1, text t1, ids i1 */
static void submit_mixed(fx *f, char id[TM_QUEUE_ID_MAX])
{
    tm_err err = {{0}};
    tm_queue_job_opts o = {.name = "mixed", .mixed_endpoints = 1};
    assert_int_equal(tm_queue_submit_begin(f->q, &o, id, &err), TM_OK);
    for (int i = 0; i < 2; i++) {
        char c[8], t[8], d[8];
        snprintf(c, sizeof c, "c%d", i);
        snprintf(t, sizeof t, "t%d", i);
        snprintf(d, sizeof d, "i%d", i);
        tm_queue_new_request rs[3] = {
            {.custom_id = c, .source = "a", .line = 1, .url = "/v1/chat/completions",
             .body_json = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", .max_tokens = -1, .n = 1},
            {.custom_id = t, .source = "a", .line = 2, .url = "/v1/completions",
             .body_json = "{\"prompt\":\"hello\"}", .max_tokens = -1, .n = 1},
            {.custom_id = d, .source = "a", .line = 3, .url = "/v1/completions",
             .body_json = "{\"prompt\":[1,2,3]}", .max_tokens = -1, .n = 1},
        };
        for (int k = 0; k < 3; k++) assert_int_equal(tm_queue_submit_add(f->q, &rs[k], &err), TM_OK);
    }
    assert_int_equal(tm_queue_submit_commit(f->q, &err), TM_OK);
}

static int64_t scalar(fx *f, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int rc = sqlite3_step(st);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void exec(fx *f, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_claim_only_ids(void **state)
{
    fx *f = *state;
    char job[TM_QUEUE_ID_MAX];
    submit_mixed(f, job);
    tm_err err = {{0}};
    int64_t c[4];
    assert_int_equal(tm_queue_pending_kinds(f->q, c, &err), TM_OK);
    assert_int_equal(c[0], 2);
    assert_int_equal(c[1], 2);
    assert_int_equal(c[2], 2);
    assert_int_equal(c[3], 0);

    tm_queue_set_claim_kinds(f->q, TM_QUEUE_KIND_IDS);
    tm_queue_claimed out[8];
    int n = 0;
    assert_int_equal(tm_queue_claim(f->q, "w1", 8, 60, out, &n, &err), TM_OK);
    assert_int_equal(n, 2);
    for (int i = 0; i < n; i++) {
        assert_int_equal(out[i].custom_id[0], 'i');
        tm_queue_claimed_clear(&out[i]);
    }
    assert_int_equal(scalar(f, "SELECT count(*) FROM requests WHERE state='pending' AND attempts=0"), 4);

    /* chat + text (a worker with a tokenizer but no chat template) */
    tm_queue_set_claim_kinds(f->q, TM_QUEUE_KIND_TEXT | TM_QUEUE_KIND_IDS);
    assert_int_equal(tm_queue_claim(f->q, "w1", 8, 60, out, &n, &err), TM_OK);
    assert_int_equal(n, 2);
    for (int i = 0; i < n; i++) {
        assert_int_equal(out[i].custom_id[0], 't');
        tm_queue_claimed_clear(&out[i]);
    }
    /* every kind again */
    tm_queue_set_claim_kinds(f->q, TM_QUEUE_KIND_ALL);
    assert_int_equal(tm_queue_claim(f->q, "w1", 8, 60, out, &n, &err), TM_OK);
    assert_int_equal(n, 2);
    for (int i = 0; i < n; i++) {
        assert_int_equal(out[i].custom_id[0], 'c');
        tm_queue_claimed_clear(&out[i]);
    }
}

/* A body that is not JSON is nobody's to leave: any worker claims it (and
 * fails it as the request's fault), and the claim does not break on it. */
static void test_malformed_body_claimable(void **state)
{
    fx *f = *state;
    char job[TM_QUEUE_ID_MAX];
    submit_mixed(f, job);
    exec(f, "UPDATE requests SET body='{not json' WHERE custom_id='t0'");
    exec(f, "UPDATE requests SET url='/v1/embeddings' WHERE custom_id='c0'");
    tm_err err = {{0}};
    int64_t c[4];
    assert_int_equal(tm_queue_pending_kinds(f->q, c, &err), TM_OK);
    assert_int_equal(c[0], 1);
    assert_int_equal(c[1], 1);
    assert_int_equal(c[3], 2);
    tm_queue_set_claim_kinds(f->q, TM_QUEUE_KIND_IDS);
    tm_queue_claimed out[8];
    int n = 0;
    assert_int_equal(tm_queue_claim(f->q, "w1", 8, 60, out, &n, &err), TM_OK);
    assert_int_equal(n, 4); /* c0 (unknown url), t0 (not JSON), i0, i1 */
    int other = 0;
    for (int i = 0; i < n; i++) {
        other += !strcmp(out[i].custom_id, "c0") || !strcmp(out[i].custom_id, "t0");
        tm_queue_claimed_clear(&out[i]);
    }
    assert_int_equal(other, 2);
}

static void test_retry(void **state)
{
    fx *f = *state;
    char job[TM_QUEUE_ID_MAX];
    submit_mixed(f, job);
    tm_err err = {{0}};
    tm_queue_claimed out[8];
    int n = 0;
    assert_int_equal(tm_queue_claim(f->q, "w1", 8, 60, out, &n, &err), TM_OK);
    assert_int_equal(n, 6);
    for (int i = 0; i < n; i++) {
        if (out[i].custom_id[0] == 'c')
            assert_int_equal(tm_queue_fail(f->q, "w1", out[i].request_id, "server_error", "x", &err), TM_OK);
        else if (out[i].custom_id[0] == 't')
            assert_int_equal(tm_queue_fail(f->q, "w1", out[i].request_id, "invalid_request", "y", &err), TM_OK);
        else
            assert_int_equal(tm_queue_complete(f->q, "w1", out[i].request_id, "{}", 2, NULL, &err), TM_OK);
        tm_queue_claimed_clear(&out[i]);
    }
    tm_queue_job j;
    assert_int_equal(tm_queue_job_get(f->q, job, &j, &err), TM_OK);
    assert_string_equal(j.state, "completed");
    tm_queue_job_clear(&j);

    int64_t k = -1;
    assert_int_equal(tm_queue_retry(f->q, job, "no_such", &k, &err), TM_OK);
    assert_int_equal(k, 0);
    assert_int_equal(tm_queue_job_get(f->q, job, &j, &err), TM_OK);
    assert_string_equal(j.state, "completed"); /* nothing requeued: left as it was */
    tm_queue_job_clear(&j);
    assert_int_equal(tm_queue_retry(f->q, job, "server_error", &k, &err), TM_OK);
    assert_int_equal(k, 2);
    assert_int_equal(tm_queue_job_get(f->q, job, &j, &err), TM_OK);
    assert_string_equal(j.state, "in_progress");
    assert_int_equal(j.pending, 2);
    assert_int_equal(j.failed, 2);
    assert_int_equal(j.completed_at, 0);
    tm_queue_job_clear(&j);
    assert_int_equal(scalar(f, "SELECT count(*) FROM requests WHERE custom_id LIKE 'c%' AND state='pending' "
                               "AND error IS NULL AND finished_at IS NULL"), 2);
    assert_int_equal(tm_queue_retry(f->q, job, NULL, &k, &err), TM_OK);
    assert_int_equal(k, 2);

    assert_int_equal(tm_queue_retry(f->q, "job_nope", NULL, &k, &err), TM_ERR_NOTFOUND);
    char st[16];
    assert_int_equal(tm_queue_cancel(f->q, job, st, &err), TM_OK);
    assert_int_equal(tm_queue_retry(f->q, job, NULL, &k, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "cancelled"));
}

/* Served models: a worker serving {alpha, a2} claims requests naming alpha or
 * a2 and those naming none, never beta's (left pending, attempts not
 * charged); the names are recorded on the worker and its run. */
static void test_claim_by_model(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    char job[TM_QUEUE_ID_MAX], run[TM_QUEUE_ID_MAX];
    tm_queue_job_opts o = {.name = "models"};
    assert_int_equal(tm_queue_submit_begin(f->q, &o, job, &err), TM_OK);
    const char *models[5] = {"alpha", "beta", NULL, "a2", "beta"};
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "r%d", i);
        tm_queue_new_request r = {.custom_id = id, .source = "a", .line = i + 1, .url = "/v1/completions",
                                  .model = models[i], .body_json = "{\"prompt\":[1]}", .max_tokens = -1, .n = 1};
        assert_int_equal(tm_queue_submit_add(f->q, &r, &err), TM_OK);
    }
    assert_int_equal(tm_queue_submit_commit(f->q, &err), TM_OK);
    assert_int_equal(tm_queue_worker_start(f->q, "w1", "cpu", 60, 0, NULL, run, &err), TM_OK);
    const char *names[2] = {"alpha", "a2"};
    assert_int_equal(tm_queue_set_served_models(f->q, "w1", run, names, 2, &err), TM_OK);
    int64_t c[4];
    assert_int_equal(tm_queue_pending_kinds(f->q, c, &err), TM_OK);
    assert_int_equal(c[2], 3); /* token-id prompts of alpha, none, a2 */
    tm_queue_claimed out[8];
    int n = 0;
    assert_int_equal(tm_queue_claim(f->q, "w1", 8, 60, out, &n, &err), TM_OK);
    assert_int_equal(n, 3);
    for (int i = 0; i < n; i++) {
        assert_true(!out[i].model || strcmp(out[i].model, "beta"));
        tm_queue_claimed_clear(&out[i]);
    }
    assert_int_equal(scalar(f, "SELECT count(*) FROM requests WHERE state='pending' AND model='beta' AND attempts=0"), 2);
    assert_int_equal(scalar(f, "SELECT count(*) FROM workers WHERE id='w1' AND models='[\"alpha\",\"a2\"]'"), 1);
    assert_int_equal(scalar(f, "SELECT count(*) FROM runs WHERE served_model='alpha'"), 1);
    /* bad names are refused, the filter is kept */
    const char *bad[1] = {""};
    assert_int_equal(tm_queue_set_served_models(f->q, "w1", run, bad, 1, &err), TM_ERR_USAGE);
    /* no names: no filter */
    assert_int_equal(tm_queue_set_served_models(f->q, "w1", run, NULL, 0, &err), TM_OK);
    assert_int_equal(tm_queue_claim(f->q, "w1", 8, 60, out, &n, &err), TM_OK);
    assert_int_equal(n, 2);
    for (int i = 0; i < n; i++) tm_queue_claimed_clear(&out[i]);
}

static tm_status count_unserved(void *ctx, const char *model, int64_t n, tm_err *err)
{
    (void)err;
    if (!strcmp(model, "beta")) ((int64_t *)ctx)[0] += n;
    else ((int64_t *)ctx)[1] += n;
    return TM_OK;
}

/* A job is one endpoint unless mixed_endpoints; the refusal names the first line. */
static void test_mixed_endpoints_refused(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    char job[TM_QUEUE_ID_MAX];
    tm_queue_job_opts o = {.name = "one"};
    assert_int_equal(tm_queue_submit_begin(f->q, &o, job, &err), TM_OK);
    tm_queue_new_request a = {.custom_id = "a", .source = "f.jsonl", .line = 3, .url = "/v1/chat/completions",
                              .body_json = "{}", .max_tokens = -1, .n = 1};
    tm_queue_new_request b = {.custom_id = "b", .source = "f.jsonl", .line = 4, .url = "/v1/completions",
                              .model = "beta", .body_json = "{\"prompt\":[1]}", .max_tokens = -1, .n = 1};
    assert_int_equal(tm_queue_submit_add(f->q, &a, &err), TM_OK);
    assert_int_equal(tm_queue_submit_add(f->q, &b, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "url: /v1/completions"));
    assert_non_null(strstr(err.msg, "f.jsonl:3"));
    b.custom_id = "b2";
    b.url = "/v1/chat/completions";
    assert_int_equal(tm_queue_submit_add(f->q, &b, &err), TM_OK);
    assert_int_equal(tm_queue_submit_commit(f->q, &err), TM_OK);
    /* no live worker serves beta */
    int64_t got[2] = {0, 0};
    assert_int_equal(tm_queue_unserved_models(f->q, count_unserved, got, &err), TM_OK);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_claim_only_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_body_claimable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_by_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mixed_endpoints_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
