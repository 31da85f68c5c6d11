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
 * sequence (one U+FFFD per maximal invalid subpart in the string, the raw
 * bytes in "bytes", text_offset counting characters), a token without text
 * ("token_id:<id>", no bytes) and -inf (-9999.0); completions' top_logprobs
 * always hold the sampled token (logprobs 0: it alone). */
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
        "{\"token\":\"\xef\xbf\xbd\",\"logprob\":-0.25,\"bytes\":[226,156],\"top_logprobs\":[]},"
        "{\"token\":\"token_id:7\",\"logprob\":-9999.0,\"bytes\":[],\"top_logprobs\":[]}],\"refusal\":null},"
        "\"finish_reason\":\"stop\",\"stop_reason\":null";
    assert_non_null(strstr(b.data, chat));
    r.kind = TM_RESPONSE_COMPLETION;
    assert_int_equal(tm_response_build(&r, &b, &err), TM_OK);
    const char *cmpl =
        "\"text\":\"h\",\"logprobs\":{\"tokens\":[\"h\",\"\xef\xbf\xbd\",\"token_id:7\"],"
        "\"token_logprobs\":[-0.5,-0.25,-9999.0],\"top_logprobs\":[{\"h\":-0.5,\"token_id:7\":-1.5},"
        "{\"\xef\xbf\xbd\":-0.25},{\"token_id:7\":-9999.0}],"
        "\"text_offset\":[0,1,2]},\"finish_reason\":\"stop\",\"stop_reason\":null";
    assert_non_null(strstr(b.data, cmpl));
    assert_non_null(strstr(b.data, "\"object\":\"text_completion\""));
    /* no records: "logprobs": null */
    ch.logprobs = NULL;
    assert_int_equal(tm_response_build(&r, &b, &err), TM_OK);
    assert_non_null(strstr(b.data, "\"logprobs\":null,\"finish_reason\":\"stop\""));
    tm_buf_free(&b);
}

static json_t *build_json(const tm_response *r)
{
    tm_err err = {{0}};
    tm_buf b;
    tm_buf_init(&b);
    assert_int_equal(tm_response_build(r, &b, &err), TM_OK);
    json_t *j = json_loads(b.data, 0, NULL);
    assert_non_null(j);
    tm_buf_free(&b);
    return j;
}

/* Completions: two tokens with the same text both kept (the second by id);
 * the sampled token outside the top k makes k+1 entries; a special token
 * shows its string with no bytes and no characters; text_offset counts
 * characters of a 3-byte character split over two tokens once. Chat: the
 * sampled special token's "bytes" are []. */
static void test_logprobs_collide_special(void **state)
{
    (void)state;
    const tm_response_token alts[2] = {{.id = 10, .bytes = " a", .len = 2, .logprob = -0.1f},
                                       {.id = 11, .bytes = " a", .len = 2, .logprob = -0.2f}};
    const tm_response_logprob lp[4] = {
        {.tok = {.id = 12, .bytes = " b", .len = 2, .logprob = -3.0f}, .top = alts, .n_top = 2},
        {.tok = {.id = 20, .bytes = "\xe4\xbd", .len = 2, .logprob = -1.0f}},
        {.tok = {.id = 21, .bytes = "\xa0", .len = 1, .logprob = -1.0f}},
        {.tok = {.id = 2, .bytes = "", .len = 0, .special = "</s>", .logprob = -0.5f}},
    };
    const int32_t ids[4] = {12, 20, 21, 2};
    tm_response_choice ch = {.text = " b\xe4\xbd\xa0", .text_len = 5, .finish_reason = "stop", .token_ids = ids,
                             .n_tokens = 4, .logprobs = lp};
    tm_response r = {.kind = TM_RESPONSE_COMPLETION, .id = "cmpl-x", .model = "m", .created = 1, .choices = &ch,
                     .n_choices = 1, .prompt_tokens = 1, .completion_tokens = 4};
    json_t *j = build_json(&r);
    json_t *l = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "logprobs");
    json_t *top0 = json_array_get(json_object_get(l, "top_logprobs"), 0);
    assert_int_equal(json_object_size(top0), 3);
    assert_true(json_real_value(json_object_get(top0, " b")) == (double)-3.0f);
    assert_true(json_real_value(json_object_get(top0, " a")) == (double)-0.1f);
    assert_true(json_real_value(json_object_get(top0, "token_id:11")) == (double)-0.2f);
    json_t *off = json_object_get(l, "text_offset");
    assert_int_equal(json_integer_value(json_array_get(off, 1)), 2);
    assert_int_equal(json_integer_value(json_array_get(off, 2)), 3);
    assert_int_equal(json_integer_value(json_array_get(off, 3)), 3);
    assert_string_equal(json_string_value(json_array_get(json_object_get(l, "tokens"), 3)), "</s>");
    json_decref(j);
    r.kind = TM_RESPONSE_CHAT;
    j = build_json(&r);
    json_t *c = json_object_get(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "logprobs"), "content");
    assert_int_equal(json_array_size(json_object_get(json_array_get(c, 3), "bytes")), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 3), "token")), "</s>");
    json_t *b1 = json_object_get(json_array_get(c, 1), "bytes");
    assert_int_equal(json_array_size(b1), 2);
    assert_int_equal(json_integer_value(json_array_get(b1, 0)), 0xe4);
    json_decref(j);
}

/* stop_reason: the string (invalid UTF-8 as U+FFFD), a token id, null. */
static void test_stop_reason(void **state)
{
    (void)state;
    tm_response_choice ch[3] = {
        {.text = "x", .text_len = 1, .finish_reason = "stop", .stop_kind = TM_RESPONSE_STOP_STRING,
         .stop_str = "END\xff", .stop_len = 4},
        {.text = "y", .text_len = 1, .finish_reason = "stop", .stop_kind = TM_RESPONSE_STOP_TOKEN, .stop_token = 128009},
        {.text = "z", .text_len = 1, .finish_reason = "length"},
    };
    tm_response r = {.kind = TM_RESPONSE_CHAT, .id = "chatcmpl-x", .model = "m", .created = 1, .choices = ch,
                     .n_choices = 3, .reasoning_tokens = 5};
    json_t *j = build_json(&r);
    json_t *cs = json_object_get(j, "choices");
    assert_string_equal(json_string_value(json_object_get(json_array_get(cs, 0), "stop_reason")), "END\xef\xbf\xbd");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(cs, 1), "stop_reason")), 128009);
    assert_true(json_is_null(json_object_get(json_array_get(cs, 2), "stop_reason")));
    json_t *msg = json_object_get(json_array_get(cs, 0), "message");
    assert_true(json_is_null(json_object_get(msg, "reasoning_content")));
    json_t *u = json_object_get(json_object_get(j, "usage"), "completion_tokens_details");
    assert_int_equal(json_integer_value(json_object_get(u, "reasoning_tokens")), 5);
    json_decref(j);
}

static void split(tm_reasoning_parser p, const char *text, const char *want_r, const char *want_c)
{
    const char *r, *c;
    size_t rl, cl;
    tm_response_split_reasoning(p, text, strlen(text), &r, &rl, &c, &cl);
    if (!want_r) assert_null(r);
    else { assert_non_null(r); assert_int_equal(rl, strlen(want_r)); assert_memory_equal(r, want_r, rl); }
    if (!want_c) assert_null(c);
    else { assert_non_null(c); assert_int_equal(cl, strlen(want_c)); assert_memory_equal(c, want_c, cl); }
}

/* vLLM's deepseek_r1 and qwen3 reasoning parsers' splits; a chat body with
 * reasoning_content and content null. */
static void test_reasoning_split(void **state)
{
    (void)state;
    split(TM_REASONING_NONE, "<think>a</think>b", NULL, "<think>a</think>b");
    split(TM_REASONING_DEEPSEEK_R1, "think hard\n</think>\n\nok", "think hard\n", "\n\nok");
    split(TM_REASONING_DEEPSEEK_R1, "<think>x</think>y", "x", "y");
    split(TM_REASONING_DEEPSEEK_R1, "still thinking", "still thinking", NULL);
    split(TM_REASONING_DEEPSEEK_R1, "done</think>", "done", NULL);
    split(TM_REASONING_QWEN3, "<think>\nr\n</think>\n\nanswer", "\nr\n", "\n\nanswer");
    split(TM_REASONING_QWEN3, "no tags at all", NULL, "no tags at all");
    split(TM_REASONING_QWEN3, "only</think>end", NULL, "only</think>end");
    split(TM_REASONING_QWEN3, "</think>x<think>y", NULL, "</think>x<think>y");
    split(TM_REASONING_QWEN3, "", NULL, "");
    tm_response_choice ch = {.text = "c", .text_len = 1, .text_null = 1, .reasoning = "why", .reasoning_len = 3,
                             .finish_reason = "length"};
    tm_response r = {.kind = TM_RESPONSE_CHAT, .id = "chatcmpl-x", .model = "m", .created = 1, .choices = &ch,
                     .n_choices = 1};
    json_t *j = build_json(&r);
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    assert_true(json_is_null(json_object_get(msg, "content")));
    assert_string_equal(json_string_value(json_object_get(msg, "reasoning_content")), "why");
    json_decref(j);
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
        cmocka_unit_test(test_logprobs_collide_special),
        cmocka_unit_test(test_stop_reason),
        cmocka_unit_test(test_reasoning_split),
        cmocka_unit_test(test_result_line_bytes),
        cmocka_unit_test(test_error_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
