/* test_output_lines.c — output/'s record writers without a queue: logprobs
 * from plain records (chat and completion shapes), the
 * response body's unsigned seed, result lines that embed the stored body as
 * text (the bytes jansson's ASCII re-encoding gives, integers of any size
 * kept), error lines from plain code/message strings, and bad bodies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output/output.h"
#include "output/response.h"
#include "util/buf.h"
#include "util/version.h"

/* Everything written to a tm_out over a tmpfile, NUL-terminated. */
static void capture_begin(FILE **fp, tm_out **o)
{
    tm_err err = {{0}};
    *fp = tmpfile();
    assert_non_null(*fp);
    assert_int_equal(tm_out_open_file(*fp, 0, o, &err), TM_OK);
}

static char *capture_end(FILE *fp, tm_out *o)
{
    tm_err err = {{0}};
    assert_int_equal(tm_out_finish(o, NULL, NULL, &err), TM_OK);
    long n = ftell(fp);
    assert_true(n >= 0);
    char *b = calloc(1, (size_t)n + 1);
    assert_non_null(b);
    rewind(fp);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    return b;
}

static void test_response_seed_unsigned(void **state)
{
    (void)state;
    tm_err err = {{0}};
    tm_response_choice ch = {.text = "ok", .text_len = 2, .finish_reason = "length"};
    int32_t prompt[2] = {5, 6};
    tm_response r = {.kind = TM_RESPONSE_COMPLETION, .id = "cmpl-x", .model = "m", .created = 1,
                     .choices = &ch, .n_choices = 1, .prompt_tokens = 2, .completion_tokens = 1,
                     .prompt_ids = prompt, .n_prompt = 2, .return_token_ids = 1,
                     .seed = UINT64_C(18446744073709551615)};
    tm_buf b;
    tm_buf_init(&b);
    assert_int_equal(tm_response_build(&r, &b, &err), TM_OK);
    const char *tail = ",\"system_fingerprint\":\"tokenmill-" TM_VERSION "\",\"seed\":18446744073709551615,"
                       "\"prompt_token_ids\":[5,6]}";
    assert_true(b.len > strlen(tail));
    assert_string_equal(b.data + b.len - strlen(tail), tail);
    assert_null(strchr(b.data, '\n'));
    /* the body is valid JSON with the seed exact (as a real, within 2^64's precision) */
    json_t *v = json_loadb(b.data, b.len, JSON_DECODE_INT_AS_REAL, NULL);
    assert_non_null(v);
    assert_true(json_real_value(json_object_get(v, "seed")) == 18446744073709551615.0);
    json_decref(v);
    /* a seed below 2^63, no token ids: seed is the last key */
    r.seed = 42;
    r.return_token_ids = 0;
    assert_int_equal(tm_response_build(&r, &b, &err), TM_OK);
    assert_string_equal(b.data + b.len - strlen(",\"seed\":42}"), ",\"seed\":42}");
    v = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(v, "seed")), 42);
    assert_null(json_object_get(v, "prompt_token_ids"));
    json_decref(v);
    tm_buf_free(&b);
}

/* The line the old reader wrote: body parsed and the whole line dumped ASCII-escaped. */
static char *jansson_line(const char *rid, const char *cid, const char *body)
{
    json_t *b = json_loads(body, 0, NULL);
    assert_non_null(b);
    char id[96];
    snprintf(id, sizeof id, "batch_req_%s", rid + 4);
    json_t *line = json_pack("{s:s, s:s, s:{s:i, s:s, s:o}, s:n}", "id", id, "custom_id", cid, "response",
                             "status_code", 200, "request_id", rid, "body", b, "error");
    char *s = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(line);
    size_t n = strlen(s);
    char *out = malloc(n + 2);
    memcpy(out, s, n);
    out[n] = '\n';
    out[n + 1] = 0;
    free(s);
    return out;
}

/* Logprobs from plain records, both shapes: a whole token, a partial UTF-8
 * sequence (one U+FFFD per byte in the string, the raw bytes in "bytes",
 * text_offset counting the string's UTF-8 bytes), a token without text
 * ("token_id:<id>", no bytes) and -inf (-9999.0). */
static void test_response_logprobs(void **state)
{
    (void)state;
    tm_err err = {{0}};
    const tm_response_token alts[2] = {{.id = 104, .bytes = "h", .len = 1, .logprob = -0.5f},
                                       {.id = 7, .logprob = -1.5f}};
    const tm_response_logprob lp[3] = {
        {.tok = {.id = 104, .bytes = "h", .len = 1, .logprob = -0.5f}, .top = alts, .n_top = 2},
        {.tok = {.id = 300, .bytes = "\xe2\x9c", .len = 2, .logprob = -0.25f}},
        {.tok = {.id = 7, .logprob = -INFINITY}},
    };
    const int32_t ids[3] = {104, 300, 7};
    tm_response_choice ch = {.text = "h", .text_len = 1, .finish_reason = "stop", .token_ids = ids, .n_tokens = 3,
                             .logprobs = lp};
    tm_response r = {.kind = TM_RESPONSE_CHAT, .id = "chatcmpl-x", .model = "m", .created = 1, .choices = &ch,
                     .n_choices = 1, .prompt_tokens = 1, .completion_tokens = 3};
    tm_buf b;
    tm_buf_init(&b);
    assert_int_equal(tm_response_build(&r, &b, &err), TM_OK);
    const char *chat =
        "\"logprobs\":{\"content\":[{\"token\":\"h\",\"logprob\":-0.5,\"bytes\":[104],\"top_logprobs\":["
        "{\"token\":\"h\",\"logprob\":-0.5,\"bytes\":[104]},{\"token\":\"token_id:7\",\"logprob\":-1.5,\"bytes\":[]}]},"
        "{\"token\":\"\xef\xbf\xbd\xef\xbf\xbd\",\"logprob\":-0.25,\"bytes\":[226,156],\"top_logprobs\":[]},"
        "{\"token\":\"token_id:7\",\"logprob\":-9999.0,\"bytes\":[],\"top_logprobs\":[]}],\"refusal\":null},"
        "\"finish_reason\":\"stop\"";
    assert_non_null(strstr(b.data, chat));
    r.kind = TM_RESPONSE_COMPLETION;
    assert_int_equal(tm_response_build(&r, &b, &err), TM_OK);
    const char *cmpl =
        "\"text\":\"h\",\"logprobs\":{\"tokens\":[\"h\",\"\xef\xbf\xbd\xef\xbf\xbd\",\"token_id:7\"],"
        "\"token_logprobs\":[-0.5,-0.25,-9999.0],\"top_logprobs\":[{\"h\":-0.5,\"token_id:7\":-1.5},{},{}],"
        "\"text_offset\":[0,1,7]},\"finish_reason\":\"stop\"";
    assert_non_null(strstr(b.data, cmpl));
    assert_non_null(strstr(b.data, "\"object\":\"text_completion\""));
    /* no records: "logprobs": null */
    ch.logprobs = NULL;
    assert_int_equal(tm_response_build(&r, &b, &err), TM_OK);
    assert_non_null(strstr(b.data, "\"logprobs\":null,\"finish_reason\":\"stop\""));
    tm_buf_free(&b);
}

static void test_result_line_bytes(void **state)
{
    (void)state;
    /* a body as the worker stores it (jansson compact, UTF-8 not escaped),
     * with 2-, 3- and 4-byte characters, escapes and control characters */
    json_t *body = json_pack("{s:s, s:[{s:s, s:f}], s:i, s:n, s:b}", "object", "chat.completion", "choices",
                             "text", "h\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 \"q\" \\ \n\t\x01/", "lp", -0.1,
                             "n", 3, "x", "ok", 1);
    char *txt = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    FILE *fp;
    tm_out *o;
    tm_err err = {{0}};
    capture_begin(&fp, &o);
    assert_int_equal(tm_output_result_line(o, "req_00ab", "c\xc3\xa9", txt, strlen(txt), &err), TM_OK);
    char *got = capture_end(fp, o);
    char *want = jansson_line("req_00ab", "c\xc3\xa9", txt);
    assert_string_equal(got, want);
    free(got);
    free(want);
    free(txt);

    /* a seed above 2^63 and insignificant whitespace: kept exactly, compacted */
    const char *big = "{ \"seed\" : 18446744073709551615,\n \"a\" : [1, 2] }";
    capture_begin(&fp, &o);
    assert_int_equal(tm_output_result_line(o, "req_01", NULL, big, strlen(big), &err), TM_OK);
    got = capture_end(fp, o);
    assert_string_equal(got, "{\"id\":\"batch_req_01\",\"custom_id\":null,\"response\":{\"status_code\":200,"
                             "\"request_id\":\"req_01\",\"body\":{\"seed\":18446744073709551615,\"a\":[1,2]}},"
                             "\"error\":null}\n");
    free(got);

    /* not JSON, or not UTF-8: refused, nothing written */
    const char *bad[] = {"{\"a\":", "not json", "{\"a\":\"\xff\"}", "[1] [2]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        capture_begin(&fp, &o);
        assert_int_equal(tm_output_result_line(o, "req_02", "c", bad[i], strlen(bad[i]), &err), TM_ERR_INPUT);
        assert_non_null(strstr(err.msg, "req_02"));
        got = capture_end(fp, o);
        assert_string_equal(got, "");
        free(got);
    }
}

static void test_error_line(void **state)
{
    (void)state;
    FILE *fp;
    tm_out *o;
    tm_err err = {{0}};
    capture_begin(&fp, &o);
    assert_int_equal(tm_output_error_line(o, "req_0a", "x", "failed", "server_error", "b\xc3\xb6om", &err), TM_OK);
    assert_int_equal(tm_output_error_line(o, "req_0b", NULL, "expired", NULL, NULL, &err), TM_OK);
    char *got = capture_end(fp, o);
    assert_string_equal(got, "{\"id\":\"batch_req_0a\",\"custom_id\":\"x\",\"response\":null,\"error\":"
                             "{\"code\":\"server_error\",\"message\":\"b\\u00F6om\"}}\n"
                             "{\"id\":\"batch_req_0b\",\"custom_id\":null,\"response\":null,\"error\":"
                             "{\"code\":\"expired\",\"message\":\"no error recorded\"}}\n");
    free(got);
    /* a code that is not UTF-8 (an edited DB): as if none was recorded */
    capture_begin(&fp, &o);
    assert_int_equal(tm_output_error_line(o, "req_0c", "x", "failed", "\xff", "m", &err), TM_OK);
    got = capture_end(fp, o);
    assert_non_null(strstr(got, "\"error\":{\"code\":\"failed\",\"message\":\"no error recorded\"}}\n"));
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_response_seed_unsigned),
        cmocka_unit_test(test_response_logprobs),
        cmocka_unit_test(test_result_line_bytes),
        cmocka_unit_test(test_error_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
