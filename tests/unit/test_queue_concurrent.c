/* test_queue_concurrent.c — several processes claiming from one DB at once.
 *
 * The parent submits 2000 requests, then forks 4 children that each open the
 * DB and loop { claim up to 7 with a lease; complete them } until nothing is
 * left, writing every request id they were handed to their own file. The
 * parent checks every request was handed out exactly once (no request given
 * to two live leases), every completion succeeded, and the job completed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "queue/queue.h"

#define NREQ 2000
#define NPROC 4

static int child(const char *db, const char *out)
{
    tm_queue *q;
    tm_err err = {{0}};
    if (tm_queue_open(db, &q, &err)) { fprintf(stderr, "child: %s\n", err.msg); return 2; }
    char owner[256];
    if (tm_queue_make_owner(q, owner, sizeof owner, &err)) return 3;
    FILE *f = fopen(out, "w");
    if (!f) return 4;
    int rc = 0;
    for (;;) {
        tm_queue_claimed c[7];
        int n = 0;
        if (tm_queue_claim(q, owner, 7, 60, c, &n, &err)) { fprintf(stderr, "claim: %s\n", err.msg); rc = 5; break; }
        if (n == 0) break;
        for (int i = 0; i < n; i++) {
            fprintf(f, "%s %s\n", c[i].request_id, c[i].custom_id);
            char resp[64];
            int len = snprintf(resp, sizeof resp, "{\"pid\":%ld}", (long)getpid());
            tm_queue_usage u = {1, 2, 0, -1, -1, -1, -1, -1, NULL};
            if (tm_queue_complete(q, owner, c[i].request_id, resp, (size_t)len, &u, &err)) {
                fprintf(stderr, "complete: %s\n", err.msg);
                rc = 6;
            }
            tm_queue_claimed_clear(&c[i]);
        }
        if (rc) break;
    }
    fclose(f);
    tm_queue_close(q);
    return rc;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_four_processes(void **state)
{
    (void)state;
    char dir[] = "/tmp/tm_test_conc_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[128];
    snprintf(db, sizeof db, "%s/q.db", dir);
    tm_queue *q;
    tm_err err = {{0}};
    assert_int_equal(tm_queue_open(db, &q, &err), TM_OK);
    char id[TM_QUEUE_ID_MAX];
    tm_queue_job_opts o = {.model = "m"};
    assert_int_equal(tm_queue_submit_begin(q, &o, id, &err), TM_OK);
    for (int i = 0; i < NREQ; i++) {
        char cid[32];
        snprintf(cid, sizeof cid, "r%d", i);
        tm_queue_new_request r = {.custom_id = cid, .source = "x.jsonl", .line = i + 1,
                                  .url = "/v1/completions", .body_json = "{}", .max_tokens = -1, .n = 1};
        assert_int_equal(tm_queue_submit_add(q, &r, &err), TM_OK);
    }
    assert_int_equal(tm_queue_submit_commit(q, &err), TM_OK);
    tm_queue_close(q);

    fflush(NULL);
    pid_t pids[NPROC];
    char outs[NPROC][160];
    for (int p = 0; p < NPROC; p++) {
        snprintf(outs[p], sizeof outs[p], "%s/claims.%d", dir, p);
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) _exit(child(db, outs[p]));
    }
    int per[NPROC];
    for (int p = 0; p < NPROC; p++) {
        int st = 0;
        assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    char **ids = calloc(NREQ + 1000, sizeof *ids);
    int n = 0;
    for (int p = 0; p < NPROC; p++) {
        FILE *f = fopen(outs[p], "r");
        assert_non_null(f);
        char line[256];
        per[p] = 0;
        while (fgets(line, sizeof line, f)) {
            assert_true(n < NREQ + 1000);
            ids[n++] = strdup(line);
            per[p]++;
        }
        fclose(f);
        unlink(outs[p]);
    }
    fprintf(stderr, "claims per process: %d %d %d %d\n", per[0], per[1], per[2], per[3]);
    assert_int_equal(n, NREQ);
    qsort(ids, (size_t)n, sizeof *ids, cmp);
    for (int i = 1; i < n; i++) assert_string_not_equal(ids[i - 1], ids[i]);
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);

    assert_int_equal(tm_queue_open(db, &q, &err), TM_OK);
    tm_queue_job j;
    assert_int_equal(tm_queue_job_get(q, id, &j, &err), TM_OK);
    assert_string_equal(j.state, "completed");
    assert_int_equal(j.done, NREQ);
    assert_int_equal(j.prompt_tokens, NREQ);
    assert_int_equal(j.completion_tokens, 2 * NREQ);
    tm_queue_job_clear(&j);
    tm_queue_close(q);
    char p[200];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", db, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_four_processes)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
