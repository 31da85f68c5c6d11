/* test_queue_submit.c — unit tests of chunked submissions (queue_submit.c):
 * a submission larger than a chunk commits chunks under a 'validating' job
 * that other handles neither list nor claim from; rollback deletes the
 * committed chunks; a dead submission (its pid gone on this host, or silent
 * for TM_QUEUE_SUBMIT_STALE_S) is removed by the next open, a live one is
 * not, and the live submitter's commit then fails instead of queueing a
 * partial job.
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
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tm_test_qsub_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/q.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
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

static long count(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void exec_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Begin a submission of n requests (more than a chunk), left open. */
static void submit_open(tm_queue *q, int n, char id[TM_QUEUE_ID_MAX])
{
    tm_err err = {{0}};
    tm_queue_job_opts o = {.name = "big", .model = "m"};
    assert_int_equal(tm_queue_submit_begin(q, &o, id, &err), TM_OK);
    for (int i = 0; i < n; i++) {
        char cid[32];
        snprintf(cid, sizeof cid, "c%d", i);
        tm_queue_new_request r = {.custom_id = cid, .source = "a.jsonl", .line = i + 1,
                                  .url = "/v1/completions", .body_json = "{\"prompt\":[1]}",
                                  .max_tokens = 1, .n = 1};
        assert_int_equal(tm_queue_submit_add(q, &r, &err), TM_OK);
    }
    /* let the open chunk run over its time, then commit it: no lock held */
    usleep((TM_QUEUE_SUBMIT_CHUNK_MS + 20) * 1000);
    assert_int_equal(tm_queue_submit_tick(q, &err), TM_OK);
}

static tm_status count_jobs(void *ctx, const tm_queue_job *j, tm_err *err)
{
    (void)j;
    (void)err;
    (*(int *)ctx)++;
    return TM_OK;
}

static void test_chunks_invisible_then_rolled_back(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    tm_queue *q = NULL, *other = NULL;
    assert_int_equal(tm_queue_open(f->path, &q, &err), TM_OK);
    char id[TM_QUEUE_ID_MAX];
    const int n = TM_QUEUE_SUBMIT_CHUNK_ROWS * 2 + 10;
    submit_open(q, n, id);
    /* at least two chunks are committed: a reader sees the rows... */
    assert_true(count(f->path, "SELECT count(*) FROM requests") >= 2 * TM_QUEUE_SUBMIT_CHUNK_ROWS);
    /* ...but another handle neither lists nor claims them (and does not reap a live submission) */
    assert_int_equal(tm_queue_open(f->path, &other, &err), TM_OK);
    int jobs = 0;
    assert_int_equal(tm_queue_job_list(other, count_jobs, &jobs, &err), TM_OK);
    assert_int_equal(jobs, 0);
    tm_queue_claimed c[4];
    int got = -1;
    assert_int_equal(tm_queue_claim(other, "w", 4, 60, c, &got, &err), TM_OK);
    assert_int_equal(got, 0);
    tm_queue_close(other);
    /* rollback removes the committed chunks and the job */
    tm_queue_submit_rollback(q);
    assert_int_equal(count(f->path, "SELECT count(*) FROM requests"), 0);
    assert_int_equal(count(f->path, "SELECT count(*) FROM jobs"), 0);
    /* a full submission of the same size is queued whole */
    submit_open(q, n, id);
    assert_int_equal(tm_queue_submit_commit(q, &err), TM_OK);
    tm_queue_job j;
    assert_int_equal(tm_queue_job_get(q, id, &j, &err), TM_OK);
    assert_string_equal(j.state, "queued");
    assert_int_equal(j.total, n);
    tm_queue_job_clear(&j);
    assert_int_equal(count(f->path, "SELECT count(*) FROM jobs WHERE submitter IS NOT NULL"), 0);
    tm_queue_close(q);
}

static void test_dead_submission_reaped(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    tm_queue *q = NULL, *other = NULL;
    assert_int_equal(tm_queue_open(f->path, &q, &err), TM_OK);
    char id[TM_QUEUE_ID_MAX];
    submit_open(q, TM_QUEUE_SUBMIT_CHUNK_ROWS + 5, id);
    long rows = count(f->path, "SELECT count(*) FROM requests");
    assert_true(rows >= TM_QUEUE_SUBMIT_CHUNK_ROWS);
    /* another host's submission with a fresh heartbeat: kept */
    exec_sql(f->path, "UPDATE jobs SET submitter='no-such-host.invalid:1:aa'");
    assert_int_equal(tm_queue_open(f->path, &other, &err), TM_OK);
    tm_queue_close(other);
    assert_int_equal(count(f->path, "SELECT count(*) FROM requests"), rows);
    /* this host, a pid that does not exist: removed by the next open */
    char host[128], sql[400];
    assert_int_equal(gethostname(host, sizeof host), 0);
    host[sizeof host - 1] = 0;
    snprintf(sql, sizeof sql, "UPDATE jobs SET submitter='%s:2147483646:dead'", host);
    exec_sql(f->path, sql);
    assert_int_equal(tm_queue_open(f->path, &other, &err), TM_OK);
    tm_queue_close(other);
    assert_int_equal(count(f->path, "SELECT count(*) FROM requests"), 0);
    assert_int_equal(count(f->path, "SELECT count(*) FROM jobs"), 0);
    /* the (still running) submitter cannot queue what is left */
    assert_int_not_equal(tm_queue_submit_commit(q, &err), TM_OK);
    assert_int_equal(count(f->path, "SELECT count(*) FROM jobs"), 0);
    /* a silent submission (no heartbeat for longer than the limit) is removed too */
    submit_open(q, TM_QUEUE_SUBMIT_CHUNK_ROWS + 5, id);
    exec_sql(f->path, "UPDATE jobs SET submitter='no-such-host.invalid:1:aa', submit_heartbeat_at=1000");
    assert_int_equal(tm_queue_open(f->path, &other, &err), TM_OK);
    tm_queue_close(other);
    assert_int_equal(count(f->path, "SELECT count(*) FROM requests"), 0);
    tm_queue_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chunks_invisible_then_rolled_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_submission_reaped, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
