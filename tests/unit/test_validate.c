/* test_validate.c — unit tests of the request-line validator (validate.h).
 *
 * A table of bad lines, each with the field and message fragment it must
 * produce; good lines whose stored fields are checked; multi-problem lines;
 * and a replay of the hostile fuzz corpus (tests/fuzz/corpus/validate) that
 * asserts a clean TM_OK/TM_ERR_INPUT and printable UTF-8 messages for each.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <utf8proc.h>

#include "queue/validate.h"
#include "util/buf.h"

#define CHAT "\"custom_id\":\"r1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\""
#define COMP "\"custom_id\":\"r1\",\"method\":\"POST\",\"url\":\"/v1/completions\""
#define MSGS "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"
/* a valid chat line with extra body fields B */
#define CB(B) "{" CHAT ",\"body\":{" MSGS "," B "}}"
/* a valid completions line with extra body fields B */
#define PB(B) "{" COMP ",\"body\":{\"prompt\":\"hi\"," B "}}"

typedef struct bad_case {
    const char *line;
    size_t len;        /* 0: strlen(line) */
    const char *field; /* expected problem field */
    const char *what;  /* expected fragment of its message */
} bad_case;

static const bad_case BAD[] = {
    /* the line itself */
    {"", 0, "line", "invalid JSON at column"},
    {"{\"custom_id\":", 0, "line", "invalid JSON at column"},
    {"{\"custom_id\":\"a\"} trailing", 0, "line", "invalid JSON"},
    {"[1,2]", 0, "line", "must be a JSON object, got array"},
    {"\"str\"", 0, "line", "must be a JSON object, got string"},
    {"{\"custom_id\":\"a\xff\"}", 0, "line", "not valid UTF-8 at byte 16"},
    {"{\"custom_id\":\"a\xc0\xaf\"}", 0, "line", "not valid UTF-8 at byte 16"},  /* overlong '/' */
    {"{\"custom_id\":\"\xed\xa0\x80\"}", 0, "line", "not valid UTF-8 at byte 15"}, /* surrogate */
    {"{\"custom_id\":\"a\0b\"}", 19, "line", "NUL byte at byte 16"},
    {"{\"custom_id\":\"a\",\"custom_id\":\"b\"}", 0, "line", "duplicate key"},
    {CB("\"seed\":123456789012345678901234567890"), 0, "line", "64 bits"},
    /* top level */
    {"{\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\"}}", 0, "custom_id", "is required"},
    {"{\"custom_id\":7,\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\"}}", 0, "custom_id",
     "must be a string, got number"},
    {"{\"custom_id\":\"\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\"}}", 0,
     "custom_id", "must not be empty"},
    {"{" CHAT ",\"body\":{" MSGS "},\"metadata\":{}}", 0, "metadata", "unknown field"},
    {"{\"custom_id\":\"r\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\"}}", 0, "method", "is required"},
    {"{\"custom_id\":\"r\",\"method\":\"GET\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\"}}", 0, "method",
     "must be \"POST\", got \"GET\""},
    {"{\"custom_id\":\"r\",\"method\":1,\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\"}}", 0, "method",
     "must be a string, got number"},
    {"{\"custom_id\":\"r\",\"method\":\"POST\",\"body\":{\"prompt\":\"x\"}}", 0, "url", "is required"},
    {"{\"custom_id\":\"r\",\"method\":\"POST\",\"url\":\"/v1/embeddings\",\"body\":{}}", 0, "url",
     "supported: /v1/chat/completions, /v1/completions"},
    {"{\"custom_id\":\"r\",\"method\":\"POST\",\"url\":[],\"body\":{}}", 0, "url", "must be a string, got array"},
    {"{" CHAT "}", 0, "body", "is required"},
    {"{" CHAT ",\"body\":\"x\"}", 0, "body", "must be an object, got string"},
    /* chat messages */
    {"{" CHAT ",\"body\":{}}", 0, "body.messages", "is required"},
    {"{" CHAT ",\"body\":{\"messages\":[]}}", 0, "body.messages", "must not be empty"},
    {"{" CHAT ",\"body\":{\"messages\":{}}}", 0, "body.messages", "must be an array"},
    {"{" CHAT ",\"body\":{\"messages\":[3]}}", 0, "body.messages[0]", "must be an object, got number"},
    {"{" CHAT ",\"body\":{\"messages\":[{\"content\":\"x\"}]}}", 0, "body.messages[0].role", "is required"},
    {"{" CHAT ",\"body\":{\"messages\":[{\"role\":\"bot\",\"content\":\"x\"}]}}", 0, "body.messages[0].role",
     "must be one of system, developer, user, assistant, tool"},
    {"{" CHAT ",\"body\":{\"messages\":[{\"role\":\"user\"}]}}", 0, "body.messages[0].content", "is required"},
    {"{" CHAT ",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":null}]}}", 0, "body.messages[0].content",
     "got null"},
    {"{" CHAT ",\"body\":{\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":null}]}}", 0,
     "body.messages[0].content", "got null"},
    {"{" CHAT ",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":5}]}}", 0, "body.messages[0].content",
     "must be a string or an array of content parts, got number"},
    {"{" CHAT ",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}]}}",
     0, "body.messages[0].content[0].type", "not supported (only text content is supported"},
    {"{" CHAT ",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}}", 0,
     "body.messages[0].content[0].text", "is required"},
    {"{" CHAT ",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":1}]}]}}", 0,
     "body.messages[0].content[0].text", "must be a string, got number"},
    {"{" CHAT ",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":[\"hi\"]}]}}", 0,
     "body.messages[0].content[0]", "must be an object"},
    /* completions prompt */
    {"{" COMP ",\"body\":{}}", 0, "body.prompt", "is required"},
    {"{" COMP ",\"body\":{\"prompt\":[]}}", 0, "body.prompt", "must not be empty"},
    {"{" COMP ",\"body\":{\"prompt\":[\"a\",\"b\"]}}", 0, "body.prompt", "a list of prompts is not supported"},
    {"{" COMP ",\"body\":{\"prompt\":[[1,2]]}}", 0, "body.prompt", "list of token-id lists is not supported"},
    {"{" COMP ",\"body\":{\"prompt\":[1,-2]}}", 0, "body.prompt[1]", "got -2"},
    {"{" COMP ",\"body\":{\"prompt\":[1,2147483648]}}", 0, "body.prompt[1]", "token id"},
    {"{" COMP ",\"body\":{\"prompt\":[1,2.5]}}", 0, "body.prompt[1]", "token id"},
    {"{" COMP ",\"body\":{\"prompt\":{}}}", 0, "body.prompt", "must be a string or an array of token ids, got object"},
    /* sampling and limits */
    {CB("\"model\":3"), 0, "body.model", "must be a string, got number"},
    {CB("\"model\":\"\""), 0, "body.model", "must not be empty"},
    {CB("\"max_tokens\":0"), 0, "body.max_tokens", "must be an integer >= 1, got 0"},
    {CB("\"max_tokens\":\"5\""), 0, "body.max_tokens", "must be an integer, got string"},
    {CB("\"max_tokens\":5.0"), 0, "body.max_tokens", "must be an integer, got 5"},
    {CB("\"max_completion_tokens\":-1"), 0, "body.max_completion_tokens", "must be an integer >= 1"},
    {CB("\"max_tokens\":5,\"max_completion_tokens\":6"), 0, "body.max_tokens", "must equal max_completion_tokens"},
    {CB("\"temperature\":2.5"), 0, "body.temperature", "must be a number in [0, 2], got 2.5"},
    {CB("\"temperature\":-0.1"), 0, "body.temperature", "[0, 2]"},
    {CB("\"temperature\":\"hot\""), 0, "body.temperature", "must be a number, got string"},
    {CB("\"top_p\":0"), 0, "body.top_p", "must be a number in (0, 1], got 0"},
    {CB("\"top_p\":1.5"), 0, "body.top_p", "(0, 1]"},
    {CB("\"top_k\":-2"), 0, "body.top_k", "must be an integer >= -1, got -2"},
    {CB("\"top_k\":1.5"), 0, "body.top_k", "must be an integer"},
    {CB("\"min_p\":1.01"), 0, "body.min_p", "[0, 1]"},
    {CB("\"seed\":1.5"), 0, "body.seed", "must be an integer"},
    {CB("\"seed\":\"42\""), 0, "body.seed", "must be an integer, got string"},
    {CB("\"stop\":5"), 0, "body.stop", "must be a string or an array of strings, got number"},
    {CB("\"stop\":\"\""), 0, "body.stop", "must not be an empty string"},
    {CB("\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]"), 0, "body.stop", "at most 4"},
    {CB("\"stop\":[\"a\",\"\"]"), 0, "body.stop[1]", "must not be an empty string"},
    {CB("\"stop\":[\"a\",1]"), 0, "body.stop[1]", "must be a string, got number"},
    {CB("\"stop\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""), 0, "body.stop", "must be at most 128 bytes, got 129"},
    {CB("\"stop\":[\"a\",\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]"), 0, "body.stop[1]", "must be at most 128 bytes, got 129"},
    {CB("\"stop_token_ids\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]"), 0, "body.stop_token_ids", "at most 16 token ids, got 17"},
    {CB("\"stop_token_ids\":[1,-1]"), 0, "body.stop_token_ids[1]", "must be a token id"},
    {CB("\"stop_token_ids\":[1.5]"), 0, "body.stop_token_ids[0]", "must be a token id"},
    {CB("\"stop_token_ids\":7"), 0, "body.stop_token_ids", "must be an array of token ids, got number"},
    {CB("\"n\":0"), 0, "body.n", "between 1 and 128"},
    {CB("\"n\":129"), 0, "body.n", "between 1 and 128, got 129"},
    {CB("\"presence_penalty\":2.1"), 0, "body.presence_penalty", "[-2, 2]"},
    {CB("\"frequency_penalty\":-3"), 0, "body.frequency_penalty", "[-2, 2], got -3"},
    {CB("\"repetition_penalty\":0"), 0, "body.repetition_penalty", "(0, 2]"},
    {CB("\"repetition_penalty\":2.5"), 0, "body.repetition_penalty", "(0, 2]"},
    {CB("\"logprobs\":1"), 0, "body.logprobs", "must be a boolean, got number"},
    {PB("\"logprobs\":true"), 0, "body.logprobs", "must be an integer, got boolean"},
    {PB("\"logprobs\":21"), 0, "body.logprobs", "between 0 and 20"},
    {CB("\"logprobs\":true,\"top_logprobs\":21"), 0, "body.top_logprobs", "between 0 and 20"},
    {CB("\"top_logprobs\":2"), 0, "body.top_logprobs", "requires logprobs to be true"},
    {CB("\"logprobs\":false,\"top_logprobs\":2"), 0, "body.top_logprobs", "requires logprobs to be true"},
    {CB("\"return_token_ids\":1"), 0, "body.return_token_ids", "must be a boolean, got number"},
    {CB("\"stream\":true"), 0, "body.stream", "not supported (batch jobs do not stream)"},
    {CB("\"stream\":\"no\""), 0, "body.stream", "must be a boolean, got string"},
    {PB("\"echo\":true"), 0, "body.echo", "not supported (echoing the prompt)"},
};

/* Every problem text must be printable, valid UTF-8 (it goes into JSON/SQL). */
static void assert_clean_text(const char *s)
{
    size_t n = strlen(s), i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        assert_true(k > 0);
        assert_true(cp >= 0x20 && cp != 0x7f);
        i += (size_t)k;
    }
}

static void test_bad_lines(void **state)
{
    (void)state;
    size_t nbad = sizeof BAD / sizeof BAD[0];
    assert_true(nbad >= 40);
    for (size_t i = 0; i < nbad; i++) {
        const bad_case *c = &BAD[i];
        size_t len = c->len ? c->len : strlen(c->line);
        tm_validated v;
        tm_problems p;
        tm_status st = tm_validate_line(c->line, len, &v, &p);
        int found = 0;
        for (int k = 0; k < p.kept; k++) {
            assert_clean_text(p.items[k].field);
            assert_clean_text(p.items[k].what);
            if (strcmp(p.items[k].field, c->field) == 0 && strstr(p.items[k].what, c->what)) found = 1;
        }
        if (st != TM_ERR_INPUT || !found) {
            fprintf(stderr, "case %zu: %s\n  want %s: ...%s...\n  got status %s, %d problems:\n", i, c->line,
                    c->field, c->what, tm_status_str(st), p.total);
            for (int k = 0; k < p.kept; k++) fprintf(stderr, "    %s: %s\n", p.items[k].field, p.items[k].what);
        }
        assert_int_equal(st, TM_ERR_INPUT);
        assert_true(found);
        assert_true(p.total >= 1 && p.kept >= 1);
        assert_null(v.body_json);
        assert_null(v.model);
        tm_validated_clear(&v);
    }
}

static void expect_ok(const char *line, tm_validated *v)
{
    tm_problems p;
    tm_status st = tm_validate_line(line, strlen(line), v, &p);
    for (int k = 0; k < p.kept; k++) fprintf(stderr, "unexpected: %s: %s\n", p.items[k].field, p.items[k].what);
    assert_int_equal(st, TM_OK);
    assert_int_equal(p.total, 0);
    assert_non_null(v->custom_id);
    assert_non_null(v->body_json);
}

static void test_good_minimal(void **state)
{
    (void)state;
    tm_validated v;
    expect_ok("{\"custom_id\":\"req-1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\","
              "\"body\":{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}}", &v);
    assert_string_equal(v.custom_id, "req-1");
    assert_int_equal(v.endpoint, TM_ENDPOINT_CHAT);
    assert_null(v.model);
    assert_int_equal(v.max_tokens, -1);
    assert_int_equal(v.n, 1);
    assert_string_equal(v.body_json, "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}");
    tm_validated_clear(&v);

    /* spaced-out input is re-serialised compactly, key order kept */
    expect_ok("{ \"custom_id\" : \"c\" , \"method\":\"POST\", \"url\":\"/v1/completions\","
              " \"body\": { \"prompt\" : \"Once upon\", \"model\": \"m\" } }", &v);
    assert_int_equal(v.endpoint, TM_ENDPOINT_COMPLETIONS);
    assert_string_equal(v.model, "m");
    assert_string_equal(v.body_json, "{\"prompt\":\"Once upon\",\"model\":\"m\"}");
    tm_validated_clear(&v);

    expect_ok("{\"custom_id\":\"ids\",\"method\":\"POST\",\"url\":\"/v1/completions\","
              "\"body\":{\"prompt\":[0,1,2147483647]}}", &v);
    assert_string_equal(v.body_json, "{\"prompt\":[0,1,2147483647]}");
    tm_validated_clear(&v);

    /* not NUL-terminated: only len bytes count */
    const char *s = "{\"custom_id\":\"x\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"a\"}}GARBAGE";
    tm_problems p;
    assert_int_equal(tm_validate_line(s, strlen(s) - 7, &v, &p), TM_OK);
    tm_validated_clear(&v);
}

static void test_good_all_fields(void **state)
{
    (void)state;
    tm_validated v;
    expect_ok("{\"custom_id\":\"all\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{"
              "\"model\":\"qwen3\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
              "{\"role\":\"developer\",\"content\":\"d\"},"
              "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]},"
              "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"t\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
              "{\"role\":\"tool\",\"content\":\"42\",\"tool_call_id\":\"t\"}],"
              "\"max_tokens\":64,\"max_completion_tokens\":64,\"temperature\":0.7,\"top_p\":1,\"top_k\":-1,"
              "\"min_p\":0.05,\"seed\":-9223372036854775808,\"stop\":[\"\\n\\n\",\"END\",\"x\",\"y\"],\"n\":128,"
              "\"presence_penalty\":-2,\"frequency_penalty\":2,\"repetition_penalty\":1.1,\"logprobs\":true,"
              "\"top_logprobs\":20,\"return_token_ids\":true,\"stream\":false,\"echo\":false,"
              "\"user\":\"ignored\",\"response_format\":{\"type\":\"text\"},\"temperature_extra\":null}}",
              &v);
    assert_string_equal(v.custom_id, "all");
    assert_string_equal(v.model, "qwen3");
    assert_int_equal(v.max_tokens, 64);
    assert_int_equal(v.n, 128);
    assert_non_null(strstr(v.body_json, "\"seed\":-9223372036854775808"));
    tm_validated_clear(&v);

    expect_ok("{\"custom_id\":\"c\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"p\","
              "\"max_completion_tokens\":7,\"logprobs\":5,\"stop\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"stop_token_ids\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15],\"seed\":9223372036854775807,"
              "\"top_k\":0,\"temperature\":null,\"echo\":null}}", &v);
    assert_int_equal(v.max_tokens, 7);
    tm_validated_clear(&v);
}

static void test_every_problem_reported(void **state)
{
    (void)state;
    tm_validated v;
    tm_problems p;
    const char *line = "{\"custom_id\":\"keep-me\",\"method\":\"GET\",\"url\":\"/v1/completions\",\"body\":{"
                       "\"prompt\":[-1,-2,-3,-4,-5,-6,-7,-8,-9,-10,-11,-12,-13,-14,-15,-16,-17,-18,-19,-20],"
                       "\"temperature\":9}}";
    assert_int_equal(tm_validate_line(line, strlen(line), &v, &p), TM_ERR_INPUT);
    assert_int_equal(p.total, 22); /* method + temperature + 20 ids */
    assert_int_equal(p.kept, TM_PROBLEMS_KEPT);
    /* the id of a bad line is still available, so it can be recorded */
    assert_string_equal(v.custom_id, "keep-me");
    assert_int_equal(v.endpoint, TM_ENDPOINT_COMPLETIONS);
    tm_validated_clear(&v);
    tm_validated_clear(&v); /* idempotent */
    tm_validated_clear(NULL);

    /* invalid UTF-8 elsewhere: the id is still recovered, other fields still checked */
    const char *l2 = "{\"custom_id\":\"u1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\","
                     "\"body\":{\"messages\":[{\"role\":\"user\",\"content\":\"caf\xe9\"}],\"n\":0}}";
    assert_int_equal(tm_validate_line(l2, strlen(l2), &v, &p), TM_ERR_INPUT);
    assert_string_equal(v.custom_id, "u1");
    assert_int_equal(p.total, 2);
    assert_string_equal(p.items[0].field, "line");
    assert_string_equal(p.items[1].field, "body.n");
    tm_validated_clear(&v);

    /* custom_id too long */
    char big[TM_MAX_CUSTOM_ID + 200];
    int n = snprintf(big, sizeof big, "{\"custom_id\":\"%0*d\"}", TM_MAX_CUSTOM_ID + 1, 0);
    assert_int_equal(tm_validate_line(big, (size_t)n, &v, &p), TM_ERR_INPUT);
    assert_null(v.custom_id);
    assert_string_equal(p.items[0].field, "custom_id");
    assert_non_null(strstr(p.items[0].what, "limit of 512"));
    tm_validated_clear(&v);

    /* NULL out/problems are allowed */
    assert_int_equal(tm_validate_line("{}", 2, NULL, NULL), TM_ERR_INPUT);
}

static void test_hostile_shapes(void **state)
{
    (void)state;
    tm_validated v;
    tm_problems p;
    /* deep nesting: jansson's depth limit, no stack overflow */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    assert_non_null(deep);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    assert_int_equal(tm_validate_line(deep, 2 * depth, &v, &p), TM_ERR_INPUT);
    assert_string_equal(p.items[0].field, "line");
    tm_validated_clear(&v);
    free(deep);

    /* a 300-byte unknown key: field is cut to fit and stays valid UTF-8 */
    char key[1200];
    size_t o = 0;
    o += (size_t)snprintf(key + o, sizeof key - o, "{\"custom_id\":\"k\",\"");
    for (int i = 0; i < 150; i++) o += (size_t)snprintf(key + o, sizeof key - o, "\xc3\xa9"); /* é */
    o += (size_t)snprintf(key + o, sizeof key - o, "\":1}");
    assert_int_equal(tm_validate_line(key, o, &v, &p), TM_ERR_INPUT);
    int seen = 0;
    for (int k = 0; k < p.kept; k++) {
        assert_clean_text(p.items[k].field);
        if (strstr(p.items[k].what, "unknown field")) seen = 1;
    }
    assert_true(seen);
    tm_validated_clear(&v);

    /* huge numbers in floats are fine (inf is not produced) */
    const char *l = "{\"custom_id\":\"h\",\"method\":\"POST\",\"url\":\"/v1/completions\","
                    "\"body\":{\"prompt\":\"x\",\"temperature\":1e308,\"top_p\":1e-400}}";
    assert_int_equal(tm_validate_line(l, strlen(l), &v, &p), TM_ERR_INPUT);
    assert_string_equal(p.items[0].field, "body.temperature");
    tm_validated_clear(&v);
}

static void test_corpus_replay(void **state)
{
    (void)state;
    const char *src = getenv("TOKENMILL_SRC");
    if (!src) {
        fprintf(stderr, "TOKENMILL_SRC not set: corpus replay skipped\n");
        skip();
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/validate", src);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        tm_buf b;
        tm_buf_init(&b);
        assert_int_equal(tm_read_file(path, 64u << 20, &b, NULL), TM_OK);
        tm_validated v;
        tm_problems p;
        tm_status st = tm_validate_line(b.data ? b.data : "", b.len, &v, &p);
        assert_true(st == TM_OK || st == TM_ERR_INPUT);
        if (st == TM_OK) {
            assert_non_null(v.custom_id);
            assert_non_null(v.body_json);
        } else {
            assert_true(p.total >= 1);
        }
        for (int k = 0; k < p.kept; k++) {
            assert_clean_text(p.items[k].field);
            assert_clean_text(p.items[k].what);
        }
        tm_validated_clear(&v);
        tm_buf_free(&b);
        files++;
    }
    closedir(d);
    assert_true(files >= 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_good_minimal),
        cmocka_unit_test(test_good_all_fields),
        cmocka_unit_test(test_every_problem_reported),
        cmocka_unit_test(test_hostile_shapes),
        cmocka_unit_test(test_corpus_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
