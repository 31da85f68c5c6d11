/* test_queue_output.c — results/error JSONL and export bundles (src/output/)
 * over a queue filled and completed through the queue API.
 *
 * Checks every field of output and error lines, zstd output round trip, and
 * reads an exported bundle back with libarchive: member names, manifest
 * sizes and SHA-256s against the members' bytes, job.json and cost.json.
 * Also a fake worker for the CLI tests (there is no worker yet):
 *   test_queue_output --complete DB   completes every pending request of DB
 * (custom_ids starting with "fail" are failed instead) and prints the count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "cli/job_view.h"
#include "queue/queue.h"
#include "util/sha256.h"

/* ---- fake worker -------------------------------------------------------- */

static int complete_all(const char *db)
{
    tm_queue *q;
    tm_err err = {{0}};
    if (tm_queue_open_existing(db, &q, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    char owner[256];
    if (tm_queue_make_owner(q, owner, sizeof owner, &err)) return 1;
    long done = 0, failed = 0;
    for (;;) {
        tm_queue_claimed c[16];
        int n = 0;
        if (tm_queue_claim(q, owner, 16, 60, c, &n, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
        if (!n) break;
        for (int i = 0; i < n; i++) {
            tm_status s;
            if (c[i].custom_id && !strncmp(c[i].custom_id, "fail", 4)) {
                s = tm_queue_fail(q, owner, c[i].request_id, "server_error", "fake worker failed it", &err);
                failed++;
            } else {
                json_t *resp = json_pack("{s:s, s:s, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:{s:i, s:i, s:i}}",
                                         "id", "chatcmpl-fake", "object", "chat.completion", "model",
                                         c[i].model ? c[i].model : "none", "choices", "index", 0, "message",
                                         "role", "assistant", "content", c[i].custom_id ? c[i].custom_id : "",
                                         "finish_reason", "stop", "usage", "prompt_tokens", 10,
                                         "completion_tokens", 3, "total_tokens", 13);
                char *txt = json_dumps(resp, JSON_COMPACT);
                json_decref(resp);
                tm_queue_usage u = {10, 3, 0, 0.5, 100.0, 0.001, -1, -1, NULL};
                s = tm_queue_complete(q, owner, c[i].request_id, txt, strlen(txt), &u, &err);
                free(txt);
                done++;
            }
            tm_queue_claimed_clear(&c[i]);
            if (s) { fprintf(stderr, "%s\n", err.msg); return 1; }
        }
    }
    tm_queue_close(q);
    printf("completed %ld failed %ld\n", done, failed);
    return 0;
}

/* ---- fixture ------------------------------------------------------------ */

typedef struct fx {
    char dir[64];
    char path[128];
    tm_queue *q;
    char job[TM_QUEUE_ID_MAX];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tm_test_output_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/q.db", f->dir);
    tm_err err = {{0}};
    if (tm_queue_open(f->path, &f->q, &err)) return -1;
    tm_queue_job_opts o = {.name = "out", .model = "m1", .metadata_json = "{\"k\":\"v\"}"};
    if (tm_queue_submit_begin(f->q, &o, f->job, &err)) return -1;
    const char *ids[] = {"a\"quote", "b", "fail-c", "d"};
    for (int i = 0; i < 4; i++) {
        tm_queue_new_request r = {.custom_id = ids[i], .source = "s.jsonl", .line = i + 1,
                                  .url = "/v1/chat/completions", .body_json = "{}", .max_tokens = -1, .n = 1};
        if (tm_queue_submit_add(f->q, &r, &err)) return -1;
    }
    if (tm_queue_submit_commit(f->q, &err)) return -1;
    /* complete a, b; fail fail-c; d stays pending, then cancel it */
    char owner[] = "w1";
    tm_queue_claimed c[3];
    int n;
    if (tm_queue_claim(f->q, owner, 3, 60, c, &n, &err) || n != 3) return -1;
    tm_queue_usage u = {10, 3, 1, 0.5, 3600.0, 0.25, -1, -1, NULL};
    const char *resp[] = {"{\"object\":\"chat.completion\",\"choices\":[{\"message\":{\"content\":\"h\\u00e9\\n\"}}]}",
                          "{\"object\":\"chat.completion\",\"n\":2}"};
    for (int i = 0; i < 2; i++)
        if (tm_queue_complete(f->q, owner, c[i].request_id, resp[i], strlen(resp[i]), &u, &err)) return -1;
    if (tm_queue_fail(f->q, owner, c[2].request_id, "server_error", "boom", &err)) return -1;
    for (int i = 0; i < 3; i++) tm_queue_claimed_clear(&c[i]);
    if (tm_queue_cancel(f->q, f->job, NULL, &err)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    tm_queue_close(f->q);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) return -1;
    free(f);
    return 0;
}

/* Read a whole FILE* into a NUL-terminated malloc'd string. */
static char *slurp(FILE *fp, size_t *len)
{
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

static json_t *parse_line(char **cursor)
{
    char *nl = strchr(*cursor, '\n');
    assert_non_null(nl);
    json_error_t je;
    json_t *v = json_loadb(*cursor, (size_t)(nl - *cursor), 0, &je);
    assert_non_null(v);
    *cursor = nl + 1;
    return v;
}

static void test_results_lines(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    FILE *fp = tmpfile();
    tm_out *o;
    int64_t lines = 0;
    assert_int_equal(tm_out_open_file(fp, 0, &o, &err), TM_OK);
    assert_int_equal(tm_cli_job_lines(f->q, f->job, 0, o, &lines, &err), TM_OK);
    uint64_t bytes;
    char sha[65];
    assert_int_equal(tm_out_finish(o, &bytes, sha, &err), TM_OK);
    assert_int_equal(lines, 2);
    size_t len;
    char *txt = slurp(fp, &len);
    assert_int_equal(bytes, len);
    uint8_t d[32];
    char want[65];
    tm_sha256(txt, len, d);
    tm_sha256_hex(d, want);
    assert_string_equal(sha, want);
    char *cur = txt;
    json_t *l1 = parse_line(&cur);
    const char *id = json_string_value(json_object_get(l1, "id"));
    assert_non_null(id);
    assert_memory_equal(id, "batch_req_", 10);
    assert_string_equal(json_string_value(json_object_get(l1, "custom_id")), "a\"quote");
    json_t *resp = json_object_get(l1, "response");
    assert_int_equal(json_integer_value(json_object_get(resp, "status_code")), 200);
    const char *rid = json_string_value(json_object_get(resp, "request_id"));
    assert_memory_equal(rid, "req_", 4);
    assert_string_equal(rid + 4, id + 10); /* the same hex */
    json_t *body = json_object_get(resp, "body");
    assert_string_equal(json_string_value(json_object_get(body, "object")), "chat.completion");
    json_t *content = json_object_get(json_object_get(json_array_get(json_object_get(body, "choices"), 0), "message"),
                                      "content");
    assert_string_equal(json_string_value(content), "h\xc3\xa9\n");
    assert_true(json_is_null(json_object_get(l1, "error")));
    json_t *l2 = parse_line(&cur);
    assert_string_equal(json_string_value(json_object_get(l2, "custom_id")), "b");
    assert_string_equal(cur, "");
    json_decref(l1);
    json_decref(l2);
    free(txt);
    fclose(fp);

    /* errors: the failed one and the cancelled one */
    fp = tmpfile();
    assert_int_equal(tm_out_open_file(fp, 0, &o, &err), TM_OK);
    assert_int_equal(tm_cli_job_lines(f->q, f->job, 1, o, &lines, &err), TM_OK);
    assert_int_equal(tm_out_finish(o, NULL, NULL, &err), TM_OK);
    assert_int_equal(lines, 2);
    txt = slurp(fp, &len);
    cur = txt;
    json_t *e1 = parse_line(&cur), *e2 = parse_line(&cur);
    assert_string_equal(json_string_value(json_object_get(e1, "custom_id")), "fail-c");
    assert_true(json_is_null(json_object_get(e1, "response")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(e1, "error"), "code")), "server_error");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e1, "error"), "message")), "boom");
    assert_string_equal(json_string_value(json_object_get(e2, "custom_id")), "d");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e2, "error"), "code")), "batch_cancelled");
    json_decref(e1);
    json_decref(e2);
    free(txt);
    fclose(fp);

    /* unknown job */
    fp = tmpfile();
    assert_int_equal(tm_out_open_file(fp, 0, &o, &err), TM_OK);
    assert_int_equal(tm_cli_job_lines(f->q, "job_nope", 0, o, &lines, &err), TM_ERR_NOTFOUND);
    tm_out_abort(o);
    fclose(fp);
}

static void test_zstd_output_file(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    char path[200];
    snprintf(path, sizeof path, "%s/out.jsonl.zst", f->dir);
    tm_out *o;
    assert_int_equal(tm_out_open(path, 1, &o, &err), TM_OK);
    assert_int_equal(tm_cli_job_lines(f->q, f->job, 0, o, NULL, &err), TM_OK);
    assert_int_equal(tm_out_finish(o, NULL, NULL, &err), TM_OK);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t zlen;
    char *z = slurp(fp, &zlen);
    fclose(fp);
    unsigned long long n = ZSTD_getFrameContentSize(z, zlen);
    /* streamed: size unknown in the header; decompress with a generous buffer */
    size_t cap = n == ZSTD_CONTENTSIZE_UNKNOWN ? 1 << 20 : (size_t)n;
    char *plain = malloc(cap + 1);
    ZSTD_DStream *ds = ZSTD_createDStream();
    ZSTD_inBuffer in = {z, zlen, 0};
    ZSTD_outBuffer ob = {plain, cap, 0};
    size_t r = ZSTD_decompressStream(ds, &ob, &in);
    assert_false(ZSTD_isError(r));
    assert_int_equal(r, 0); /* frame complete */
    ZSTD_freeDStream(ds);
    plain[ob.pos] = 0;
    int nl = 0;
    for (size_t i = 0; i < ob.pos; i++) nl += plain[i] == '\n';
    assert_int_equal(nl, 2);
    assert_non_null(strstr(plain, "\"custom_id\":\"b\""));
    char partial[220];
    snprintf(partial, sizeof partial, "%s.partial", path);
    assert_int_not_equal(access(partial, F_OK), 0);
    free(plain);
    free(z);
}

static void test_export_bundle(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    char path[200];
    snprintf(path, sizeof path, "%s/b.tar.zst", f->dir);
    assert_int_equal(tm_cli_job_export(f->q, f->job, path, &err), TM_OK);
    assert_int_equal(tm_cli_job_export(f->q, "job_nope", path, &err), TM_ERR_NOTFOUND);

    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    assert_int_equal(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
    assert_int_equal(archive_filter_code(a, 0), ARCHIVE_FILTER_ZSTD);
    const char *want[] = {"output.jsonl.zst", "errors.jsonl.zst", "job.json", "cost.json", "manifest.json"};
    char *data[5] = {0};
    size_t size[5] = {0};
    struct archive_entry *e;
    int i = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        assert_true(i < 5);
        assert_string_equal(archive_entry_pathname(e), want[i]);
        size[i] = (size_t)archive_entry_size(e);
        data[i] = malloc(size[i] + 1);
        assert_int_equal(archive_read_data(a, data[i], size[i]), (la_ssize_t)size[i]);
        data[i][size[i]] = 0;
        i++;
    }
    assert_int_equal(i, 5);
    archive_read_free(a);

    json_t *man = json_loads(data[4], 0, NULL);
    assert_non_null(man);
    assert_string_equal(json_string_value(json_object_get(man, "job_id")), f->job);
    json_t *members = json_object_get(man, "members");
    assert_int_equal(json_array_size(members), 4);
    for (int k = 0; k < 4; k++) {
        json_t *m = json_array_get(members, (size_t)k);
        assert_string_equal(json_string_value(json_object_get(m, "name")), want[k]);
        assert_int_equal(json_integer_value(json_object_get(m, "size")), size[k]);
        uint8_t d[32];
        char hex[65];
        tm_sha256(data[k], size[k], d);
        tm_sha256_hex(d, hex);
        assert_string_equal(json_string_value(json_object_get(m, "sha256")), hex);
    }
    json_t *rc = json_object_get(man, "request_counts");
    assert_int_equal(json_integer_value(json_object_get(rc, "total")), 4);
    assert_int_equal(json_integer_value(json_object_get(rc, "completed")), 2);
    assert_int_equal(json_integer_value(json_object_get(rc, "failed")), 1);
    assert_int_equal(json_integer_value(json_object_get(rc, "cancelled")), 1);
    json_decref(man);

    json_t *job = json_loads(data[2], 0, NULL);
    assert_string_equal(json_string_value(json_object_get(job, "object")), "batch");
    assert_string_equal(json_string_value(json_object_get(job, "status")), "cancelled");
    assert_string_equal(json_string_value(json_object_get(json_object_get(job, "metadata"), "k")), "v");
    json_decref(job);
    json_t *cost = json_loads(data[3], 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(cost, "prompt_tokens")), 20);
    assert_int_equal(json_integer_value(json_object_get(cost, "completion_tokens")), 6);
    assert_true(json_real_value(json_object_get(cost, "cost_usd")) == 0.5);
    assert_true(json_real_value(json_object_get(cost, "kwh")) > 0.00199 &&
                json_real_value(json_object_get(cost, "kwh")) < 0.00201);
    /* 0.5 USD / 20 input tokens = 25000 USD per 1M */
    assert_true(json_real_value(json_object_get(cost, "usd_per_1m_input")) == 25000.0);
    json_decref(cost);

    /* the output member decompresses to the 2 result lines */
    size_t cap = 1 << 16;
    char *plain = malloc(cap);
    ZSTD_DStream *ds = ZSTD_createDStream();
    ZSTD_inBuffer in = {data[0], size[0], 0};
    ZSTD_outBuffer ob = {plain, cap - 1, 0};
    assert_int_equal(ZSTD_decompressStream(ds, &ob, &in), 0);
    ZSTD_freeDStream(ds);
    plain[ob.pos] = 0;
    assert_non_null(strstr(plain, "\"custom_id\":\"a\\\"quote\""));
    free(plain);
    for (int k = 0; k < 5; k++) free(data[k]);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--complete")) return complete_all(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_results_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zstd_output_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_bundle, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
