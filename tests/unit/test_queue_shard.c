/* test_queue_shard.c — unit tests of shard and merge (src/queue/queue_shard.c,
 * queue_merge.c) without a model: shard files' contents and balance, the
 * origin's marks, refusals (existing files, job states, wrong origin, not a
 * shard), and merges of finished / unfinished shards, idempotent, with the
 * shard's work simulated by SQL on the shard file.
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
#include "queue/queue_shard.h"

typedef struct fx {
    char dir[64];
    char path[128];
    tm_queue *q;
    char job[TM_QUEUE_ID_MAX];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tm_test_shard_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/q.db", f->dir);
    tm_err err = {{0}};
    if (tm_queue_open(f->path, &f->q, &err)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    tm_queue_close(f->q);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) return -1;
    free(f);
    return 0;
}

/* n requests c0..; request i has max_tokens mt[i] (or 10 + i) */
static void submit(tm_queue *q, int n, const int64_t *mt, char id[TM_QUEUE_ID_MAX])
{
    tm_err err = {{0}};
    tm_queue_job_opts o = {.name = "s", .model = "m", .completion_window = 86400};
    assert_int_equal(tm_queue_submit_begin(q, &o, id, &err), TM_OK);
    for (int i = 0; i < n; i++) {
        char cid[32];
        snprintf(cid, sizeof cid, "c%d", i);
        tm_queue_new_request r = {.custom_id = cid, .source = "a.jsonl", .line = i + 1, .url = "/v1/completions",
                                  .body_json = "{\"prompt\":[1,2,3]}", .max_tokens = mt ? mt[i] : 10 + i, .n = 1};
        assert_int_equal(tm_queue_submit_add(q, &r, &err), TM_OK);
    }
    assert_int_equal(tm_queue_submit_commit(q, &err), TM_OK);
}

static int64_t q1(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void exec(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

/* a worker's work in a shard, simulated: its requests done, one result each */
static void finish_shard(const char *path)
{
    exec(path, "INSERT INTO workers(id, started_at) VALUES('w-' || hex(randomblob(4)), 1700000000);"
               "INSERT INTO runs(id, worker_id, started_at, requests_done) "
               "SELECT 'run-' || id, id, 1700000001, (SELECT count(*) FROM requests WHERE state='pending') FROM workers;"
               "INSERT INTO results(request_id, response_zstd, response_size, created_at) "
               "SELECT id, x'0102', 2, 1700000002 FROM requests WHERE state='pending';"
               "UPDATE requests SET state='done', finished_at=1700000002, completion_tokens=max_tokens, "
               "run_id=(SELECT id FROM runs) WHERE state='pending';"
               "UPDATE jobs SET state='completed', in_progress_at=1700000001, completed_at=1700000002");
}

static void test_shard_balanced_and_marked(void **state)
{
    fx *f = *state;
    int64_t mt[9] = {100, 90, 80, 10, 10, 10, 10, 5, 5};
    submit(f->q, 9, mt, f->job);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/sh", f->dir);
    tm_queue_shard_out out[3];
    tm_err err = {{0}};
    assert_int_equal(tm_queue_shard(f->q, f->job, 3, dir, out, &err), TM_OK);
    /* body {"prompt":[1,2,3]} is 18 bytes: 4 tokens. Works 104 94 84 14 14 14 14 9 9,
     * heaviest first to the lightest shard: 104+14 | 94+14+9 | 84+14+14+9 */
    int64_t total = 0, lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 3; i++) {
        char want[160];
        snprintf(want, sizeof want, "%s/shard-%03d.db", dir, i);
        assert_string_equal(out[i].path, want);
        assert_int_equal(q1(out[i].path, "SELECT count(*) FROM requests WHERE state='pending'"), out[i].requests);
        assert_int_equal(q1(out[i].path, "SELECT shard_count FROM shard_origin"), 3);
        assert_int_equal(q1(out[i].path, "SELECT shard_index FROM shard_origin"), i);
        total += out[i].requests;
        lo = out[i].work < lo ? out[i].work : lo;
        hi = out[i].work > hi ? out[i].work : hi;
    }
    assert_int_equal(total, 9);
    assert_int_equal(out[0].work, 118);
    assert_int_equal(out[1].work, 117);
    assert_int_equal(out[2].work, 121);
    assert_int_equal(out[0].requests, 2);
    assert_int_equal(out[1].requests, 3);
    assert_int_equal(out[2].requests, 4);
    assert_true(hi - lo == 4);
    assert_int_equal(q1(f->path, "SELECT count(*) FROM requests WHERE state='running' AND lease_owner LIKE 'shard:%'"), 9);
    assert_int_equal(q1(f->path, "SELECT count(*) FROM shards WHERE state='out'"), 3);
    /* existing shard files: refused before anything is written */
    assert_int_equal(tm_queue_shard(f->q, f->job, 3, dir, out, &err), TM_ERR_USAGE);
    assert_non_null(strstr(err.msg, "exists"));
    assert_int_equal(q1(f->path, "SELECT count(*) FROM shards"), 3);
}

static void test_shard_refusals(void **state)
{
    fx *f = *state;
    submit(f->q, 2, NULL, f->job);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/sh", f->dir);
    tm_queue_shard_out out[2];
    tm_err err = {{0}};
    assert_int_equal(tm_queue_shard(f->q, "job_nope", 2, dir, out, &err), TM_ERR_NOTFOUND);
    assert_int_equal(tm_queue_shard(f->q, f->job, 0, dir, out, &err), TM_ERR_USAGE);
    char st[16];
    assert_int_equal(tm_queue_cancel(f->q, f->job, st, &err), TM_OK);
    assert_int_equal(tm_queue_shard(f->q, f->job, 2, dir, out, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "cancelled"));
    /* itself, and not a shard */
    tm_queue_merge_out m;
    assert_int_equal(tm_queue_merge(f->q, f->path, &m, &err), TM_ERR_USAGE);
    char other[128];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    tm_queue *o;
    assert_int_equal(tm_queue_open(other, &o, &err), TM_OK);
    tm_queue_close(o);
    assert_int_equal(tm_queue_merge(f->q, other, &m, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "not a shard database"));
}

static void test_merge_partial_then_rest_idempotent(void **state)
{
    fx *f = *state;
    submit(f->q, 6, NULL, f->job);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/sh", f->dir);
    tm_queue_shard_out out[2];
    tm_err err = {{0}};
    assert_int_equal(tm_queue_shard(f->q, f->job, 2, dir, out, &err), TM_OK);
    finish_shard(out[0].path);
    tm_queue_merge_out m;
    assert_int_equal(tm_queue_merge(f->q, out[0].path, &m, &err), TM_OK);
    assert_int_equal(m.taken, out[0].requests);
    assert_int_equal(m.returned, 0);
    assert_int_equal(m.runs, 1);
    /* shard 1 not run: its requests come back to pending here */
    assert_int_equal(tm_queue_merge(f->q, out[1].path, &m, &err), TM_OK);
    assert_int_equal(m.taken, 0);
    assert_int_equal(m.returned, out[1].requests);
    assert_int_equal(q1(f->path, "SELECT count(*) FROM requests WHERE state='pending' AND lease_owner IS NULL"),
                     out[1].requests);
    assert_int_equal(q1(f->path, "SELECT count(*) FROM results"), out[0].requests);
    assert_int_equal(q1(f->path, "SELECT count(*) FROM runs"), 1);
    /* again: nothing changes */
    assert_int_equal(tm_queue_merge(f->q, out[0].path, &m, &err), TM_OK);
    assert_int_equal(m.taken + m.returned, 0);
    assert_int_equal(tm_queue_merge(f->q, out[1].path, &m, &err), TM_OK);
    assert_int_equal(m.taken + m.returned, 0);
    assert_int_equal(q1(f->path, "SELECT count(*) FROM shards WHERE state='partial'"), 1);
    /* shard 1 runs later after all: its results are taken (nobody ran them here) */
    finish_shard(out[1].path);
    assert_int_equal(tm_queue_merge(f->q, out[1].path, &m, &err), TM_OK);
    assert_int_equal(m.taken, out[1].requests);
    assert_int_equal(q1(f->path, "SELECT count(*) FROM requests WHERE state='done'"), 6);
    assert_int_equal(q1(f->path, "SELECT count(*) FROM results"), 6);
    assert_int_equal(q1(f->path, "SELECT count(*) FROM runs"), 2);
    assert_int_equal(q1(f->path, "SELECT count(*) FROM shards WHERE state='merged'"), 2);
    assert_int_equal(q1(f->path, "SELECT state='completed' AND in_progress_at=1700000001 FROM jobs"), 1);
    /* the per-worker view has both shards' workers */
    assert_int_equal(q1(f->path, "SELECT count(*) FROM worker_costs"), 2);
}

static void test_merge_wrong_origin(void **state)
{
    fx *f = *state;
    submit(f->q, 4, NULL, f->job);
    char dir[128], other[128], copy[128];
    snprintf(dir, sizeof dir, "%s/sh", f->dir);
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    snprintf(copy, sizeof copy, "%s/copy.db", f->dir);
    tm_err err = {{0}};
    /* a copy of the origin taken before sharding */
    char sql[200];
    snprintf(sql, sizeof sql, "VACUUM INTO '%s'", copy);
    exec(f->path, sql);
    tm_queue_shard_out out[1];
    assert_int_equal(tm_queue_shard(f->q, f->job, 1, dir, out, &err), TM_OK);
    char uuid[TM_QUEUE_ID_MAX];
    assert_int_equal(tm_queue_db_uuid(f->q, uuid, &err), TM_OK);
    assert_true(strncmp(uuid, "db_", 3) == 0 && strlen(uuid) == 35);
    /* another queue: refused, naming both */
    tm_queue *o;
    assert_int_equal(tm_queue_open(other, &o, &err), TM_OK);
    char ojob[TM_QUEUE_ID_MAX];
    submit(o, 1, NULL, ojob);
    tm_queue_shard_out oo[1];
    char odir[128];
    snprintf(odir, sizeof odir, "%s/osh", f->dir);
    assert_int_equal(tm_queue_shard(o, ojob, 1, odir, oo, &err), TM_OK);
    char ouuid[TM_QUEUE_ID_MAX];
    assert_int_equal(tm_queue_db_uuid(o, ouuid, &err), TM_OK);
    tm_queue_merge_out m;
    assert_int_equal(tm_queue_merge(o, out[0].path, &m, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, uuid));
    assert_non_null(strstr(err.msg, ouuid));
    tm_queue_close(o);
    /* the pre-shard copy: the same uuid? no: it has none (made at the first shard) */
    tm_queue *c;
    assert_int_equal(tm_queue_open(copy, &c, &err), TM_OK);
    assert_int_equal(tm_queue_merge(c, out[0].path, &m, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "never sharded"));
    tm_queue_close(c);
    /* a copy taken after the uuid existed but before this shard: the uuid matches, the record does not */
    exec(f->path, "DELETE FROM shards"); /* stands for such a copy */
    assert_int_equal(tm_queue_merge(f->q, out[0].path, &m, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "no record of shard"));
    assert_int_equal(q1(f->path, "SELECT count(*) FROM requests WHERE state='running'"), 4); /* untouched */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shard_balanced_and_marked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shard_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_partial_then_rest_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_wrong_origin, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
