/* test_grammar.c — src/grammar: every schema feature accepts what it should
 * and nothing else (through tm_matcher_accept_bytes), every refusal names its
 * keyword and JSON pointer, masks equal a brute-force check of every token
 * (the adaptive cache against the plain matcher) on a small synthetic
 * vocabulary, EOS only at the end, copy/reset, mask_apply, the cache.
 * Needs no test data (test_grammar_vocab.c uses the real tokenizers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <jansson.h>
#include <cmocka.h>

#include "grammar/grammar.h"

static tm_grammar *compile(tm_grammar_kind k, const char *text)
{
    tm_grammar *g = NULL;
    tm_err err = {{0}};
    tm_status s = tm_grammar_compile(k, text, strlen(text), &g, &err);
    if (s != TM_OK) fprintf(stderr, "compile failed: %s\n  for %s\n", err.msg, text);
    assert_int_equal(s, TM_OK);
    return g;
}

/* A small vocabulary: every printable ASCII byte, some multi-byte tokens,
 * a UTF-8 word, and the special </s> (EOS). */
static const char *const multi[] = {"{\"", "\":", "\",\"", "\"}", "\"]", "true", "false", "null", "12", "123", "},",
                                    "}]", "[{", "ab", "abc", "\\n", "\\u00e9", "-1", ".5", "e+", "\xc3\xa9t\xc3\xa9", "\":[", "\":{", NULL};

static tm_tokenizer *small_tok(void)
{
    json_t *vocab = json_object();
    int id = 0;
    char s[2] = {0, 0};
    for (int c = 0x20; c < 0x7f; c++) { s[0] = (char)c; json_object_set_new(vocab, s, json_integer(id++)); }
    for (int i = 0; multi[i]; i++) json_object_set_new(vocab, multi[i], json_integer(id++));
    json_t *root = json_pack("{s:{s:s,s:o,s:[]},s:[{s:i,s:s,s:b}]}", "model", "type", "BPE", "vocab", vocab,
                             "merges", "added_tokens", "id", id, "content", "</s>", "special", 1);
    char *txt = json_dumps(root, 0);
    const char *cfg = "{\"eos_token\":\"</s>\"}";
    tm_tokenizer *t = NULL;
    tm_err err;
    tm_status st = tm_tokenizer_load_json(txt, strlen(txt), cfg, strlen(cfg), &t, &err);
    if (st != TM_OK) fprintf(stderr, "tokenizer: %s\n", err.msg);
    assert_int_equal(st, TM_OK);
    free(txt);
    json_decref(root);
    return t;
}

typedef struct fx {
    tm_tokenizer *t;
    tm_grammar_vocab *v;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->t = small_tok();
    tm_err err;
    assert_int_equal(tm_grammar_vocab_create(f->t, &f->v, &err), TM_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    tm_grammar_vocab_destroy(f->v);
    tm_tokenizer_destroy(f->t);
    free(f);
    return 0;
}

static int matches(tm_grammar *g, const tm_grammar_vocab *v, const char *s)
{
    tm_matcher *m;
    tm_err err;
    assert_int_equal(tm_matcher_create(g, v, &m, &err), TM_OK);
    int ok = tm_matcher_accept_bytes(m, (const uint8_t *)s, strlen(s)) == TM_OK && tm_matcher_done(m);
    tm_matcher_destroy(m);
    return ok;
}

typedef struct lang_case {
    tm_grammar_kind kind;
    const char *text;
    const char *yes[8];
    const char *no[8];
} lang_case;

static const lang_case cases[] = {
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"string\"}", {"\"\"", "\"abc\"", "\"a\\\"b\"", "\"\\u00e9\xc3\xa9\"", "\"\\n\""},
     {"\"", "abc", "\"a\"b\"", "\" \x01\"", "\"\\ud800\"", "\"\xc3\"", "\"x\" "}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}", {"\"ab\"", "\"\xc3\xa9\xc3\xa9\xc3\xa9\"", "\"\\n\\t\""},
     {"\"a\"", "\"abcd\"", "\"\""}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"integer\"}", {"0", "-12", "123456789"}, {"01", "-0", "1.5", "-", "+1"}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"integer\",\"minimum\":0}", {"0", "7", "10"}, {"-1", "-0"}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"integer\",\"minimum\":-5,\"maximum\":120}", {"-5", "-1", "0", "99", "100", "120"},
     {"-6", "121", "200", "999", "-10"}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"integer\",\"exclusiveMinimum\":17,\"exclusiveMaximum\":1000}", {"18", "99", "999"},
     {"17", "1000", "5"}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"integer\",\"maximum\":-20}", {"-20", "-21", "-1000"}, {"-19", "0", "-2"}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"number\"}", {"0", "-1.5", "2e10", "3.25E-2"}, {"1.", ".5", "01", "1e"}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"number\",\"minimum\":0}", {"0.5", "3"}, {"-1"}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":[\"boolean\",\"null\"]}", {"true", "false", "null"}, {"True", "nul", "0"}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"enum\":[\"a\",1,null,{\"k\":[1,2]}]}", {"\"a\"", "1", "null", "{\"k\":[1,2]}"}, {"\"b\"", "2", "{\"k\":[1]}"}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"const\":\"x\\\"y\"}", {"\"x\\\"y\""}, {"\"xy\""}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"string\"},\"c\":{\"type\":\"boolean\"}},\"required\":[\"b\"],\"additionalProperties\":false}",
     {"{\"b\":\"x\"}", "{\"a\":1,\"b\":\"\"}", "{\"a\":1,\"b\":\"\",\"c\":true}", "{\"b\":\"\",\"c\":false}"},
     {"{}", "{\"a\":1}", "{\"b\":\"x\",\"a\":1}", "{ \"b\":\"x\"}", "{\"b\":\"x\",}", "{\"b\":\"x\",\"d\":1}"}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"null\"}},\"additionalProperties\":false}",
     {"{}", "{\"a\":null}"}, {"{,\"a\":null}", "{\"a\":null,}"}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":1,\"maxItems\":3}",
     {"[1]", "[1,2,3]"}, {"[]", "[1,2,3,4]", "[1,]", "[ 1]"}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"array\"}", {"[]", "[1,\"a\",{\"b\":[null]}]"}, {"[", "[1,]"}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"string\",\"maxLength\":1}]}", {"5", "\"q\""}, {"\"qq\"", "true"}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/n\"}}},\"required\":[\"v\",\"kids\"]}},\"$ref\":\"#/$defs/n\"}",
     {"{\"v\":1,\"kids\":[]}", "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[{\"v\":3,\"kids\":[]}]},{\"v\":4,\"kids\":[]}]}"},
     {"{\"v\":1}", "{\"v\":1,\"kids\":[{}]}"}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"string\"},\"t\":{\"$ref\":\"#\"}}}",
     {"{}", "{\"n\":\"a\",\"t\":{\"t\":{}}}"}, {"{\"t\":1}"}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}-\\\\d{3}(x|yz)?$\"}", {"\"AB-123\"", "\"QQ-000yz\""},
     {"\"AB-12\"", "\"ab-123\"", "\"AB-123y\""}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"string\",\"pattern\":\"a\\\"b\\\\\\\\c[^a-z]+.\"}", {"\"a\\\"b\\\\cX\xc3\xa9\"", "\"a\\\"b\\\\c1\\\"\""},
     {"\"a\"b\\\\cX1\"", "\"a\\\"b\\\\cx1\""}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"string\",\"format\":\"date\"}", {"\"2024-02-28\"", "\"1999-12-31\""},
     {"\"2024-02-30\"", "\"2024-13-01\"", "\"2024-04-31\"", "\"24-01-01\""}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"string\",\"format\":\"date-time\"}", {"\"2024-02-28T12:00:59Z\"", "\"2024-01-01T00:00:00.123+05:30\""},
     {"\"2024-02-28 12:00:00Z\"", "\"2024-02-28T24:00:00Z\""}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"string\",\"format\":\"uuid\"}", {"\"123e4567-e89b-12d3-a456-426614174000\""}, {"\"123e4567e89b12d3a456426614174000\""}},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"string\",\"format\":\"email\"}", {"\"a.b+c@ex-ample.co.uk\""}, {"\"a@b\"", "\"@b.c\"", "\"a@-b.c\""}},
    {TM_GRAMMAR_JSON_SCHEMA, "true", {"1", "{\"a\":[true,{}]}", "\"s\""}, {"{", "[1 ]"}},
    {TM_GRAMMAR_JSON_OBJECT, "", {"{}", "{\"a\":{\"b\":[1,2,{\"c\":null}]}}"}, {"[]", "1", "{\"a\"}", "{'a':1}"}},
    {TM_GRAMMAR_REGEX, "(ab|cd)*[0-9]{2,3}", {"12", "abcd123", "ab99"}, {"1", "abc12", "1234"}},
    {TM_GRAMMAR_REGEX, "a.c\\.d\\s?", {"abc.d", "a\"c.d ", "a\xc3\xa9" "c.d\n"}, {"ac.d", "abcxd"}},
    {TM_GRAMMAR_CHOICE, "[\"yes\",\"no\",\"n/a\"]", {"yes", "no", "n/a"}, {"ye", "nope", "\"yes\""}},
};

static void test_languages(void **state)
{
    fx *f = *state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tm_grammar *g = compile(cases[i].kind, cases[i].text);
        for (int k = 0; k < 8 && cases[i].yes[k]; k++) {
            if (!matches(g, f->v, cases[i].yes[k])) fail_msg("%s should accept %s", cases[i].text, cases[i].yes[k]);
        }
        for (int k = 0; k < 8 && cases[i].no[k]; k++) {
            if (matches(g, f->v, cases[i].no[k])) fail_msg("%s should reject %s", cases[i].text, cases[i].no[k]);
        }
        tm_grammar_destroy(g);
    }
}

static const struct { tm_grammar_kind kind; const char *text, *msg; } refusals[] = {
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"object\",\"properties\":{\"a\":{\"oneOf\":[{}]}}}", "keyword 'oneOf' at /properties/a/oneOf not supported"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"string\",\"format\":\"hostname\"}", "format 'hostname' at /format not supported"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"number\",\"maximum\":3}", "maximum on a number at /maximum"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"array\",\"items\":{\"type\":\"string\",\"pattern\":\"(?=a)\"}}", "pattern at /items/pattern: regex: group flag"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"string\",\"pattern\":\"a{1,5000}\"}", "repetition count above the limit"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"string\",\"pattern\":\"(a\"}", "unbalanced '('"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"string\",\"pattern\":\"\\\\1\"}", "escape"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"$ref\":\"http://x/y\"}", "only local references"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"$ref\":\"#/$defs/missing\"}", "does not resolve"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"object\",\"properties\":{\"a\":{}},\"required\":[\"b\"]}", "required[0] at /required"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}", "additionalProperties with a schema"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"array\",\"maxItems\":100000}", "maxItems at /maxItems must be an integer"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"string\",\"maxLength\":2,\"minLength\":3}", "maxLength < minLength"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", "no integer between"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"uint8\"}", "type 'uint8' at /type not supported"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"enum\":[1],\"pattern\":\"a\"}", "'pattern' together with enum/const"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":", "schema is not JSON"},
    {TM_GRAMMAR_JSON_SCHEMA, "false", "allows nothing"},
    {TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"array\",\"uniqueItems\":true}", "uniqueItems at /uniqueItems"},
    {TM_GRAMMAR_CHOICE, "[]", "guided_choice must be"},
    {TM_GRAMMAR_CHOICE, "[\"a\",3]", "guided_choice[1]"},
    {TM_GRAMMAR_REGEX, "a\\bc", "escape"},
    {TM_GRAMMAR_REGEX, "a^b", "'^' not at the start"},
    {TM_GRAMMAR_REGEX, "[b-a]", "reversed range"},
    {TM_GRAMMAR_REGEX, "(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((a)))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))", "too deep"},
    {TM_GRAMMAR_REGEX, "(a{1000}){20}", "grammar too large"},
};

static void test_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        tm_grammar *g = NULL;
        tm_err err = {{0}};
        tm_status s = tm_grammar_compile(refusals[i].kind, refusals[i].text, strlen(refusals[i].text), &g, &err);
        if (s == TM_OK || !strstr(err.msg, refusals[i].msg))
            fail_msg("%s: got status %d message '%s', want '%s'", refusals[i].text, (int)s, err.msg, refusals[i].msg);
        assert_null(g);
    }
}

/* Mask == brute force (accept each token on a copy), along random walks. */
static void check_walks(tm_grammar *g, const tm_grammar_vocab *v, int walks, int steps, uint64_t seed)
{
    tm_matcher *m, *c;
    tm_err err;
    assert_int_equal(tm_matcher_create(g, v, &m, &err), TM_OK);
    assert_int_equal(tm_matcher_create(g, v, &c, &err), TM_OK);
    size_t words = tm_grammar_vocab_mask_words(v);
    int32_t n = tm_grammar_vocab_size(v);
    uint32_t *mask = calloc(words, sizeof *mask);
    int32_t *allowed = malloc((size_t)n * sizeof *allowed);
    for (int w = 0; w < walks; w++) {
        tm_matcher_reset(m);
        for (int st = 0; st < steps; st++) {
            assert_int_equal(tm_matcher_fill_mask(m, mask, &err), TM_OK);
            int32_t na = 0;
            for (int32_t id = 0; id < n; id++) {
                int bit = mask[id >> 5] >> (id & 31) & 1;
                assert_int_equal(tm_matcher_copy(c, m), TM_OK);
                int ok = tm_matcher_accept(c, id) == TM_OK;
                if (bit != ok) fail_msg("token %d: mask says %d, matcher says %d (step %d)", (int)id, bit, ok, st);
                if (ok) allowed[na++] = id;
            }
            if (!na) { assert_true(tm_matcher_terminated(m)); break; }
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            int32_t pick = allowed[(seed >> 33) % (uint64_t)na];
            /* after a while, end as soon as possible */
            if (st > steps / 2 && tm_matcher_done(m)) pick = -1;
            if (pick < 0) {
                for (int32_t k = 0; k < na; k++)
                    if (tm_grammar_vocab_is_eos(v, allowed[k])) pick = allowed[k];
            }
            assert_int_equal(tm_matcher_accept(m, pick), TM_OK);
            if (tm_matcher_terminated(m)) break;
        }
    }
    free(mask);
    free(allowed);
    tm_matcher_destroy(c);
    tm_matcher_destroy(m);
}

static void test_masks_brute_force(void **state)
{
    fx *f = *state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tm_grammar *g = compile(cases[i].kind, cases[i].text);
        check_walks(g, f->v, 6, 40, 1234 + i);
        tm_grammar_destroy(g);
    }
}

static void test_eos_copy_reset(void **state)
{
    fx *f = *state;
    tm_grammar *g = compile(TM_GRAMMAR_JSON_SCHEMA, "{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}");
    tm_matcher *m, *c;
    tm_err err;
    assert_int_equal(tm_matcher_create(g, f->v, &m, &err), TM_OK);
    assert_int_equal(tm_matcher_create(g, f->v, &c, &err), TM_OK);
    int32_t eos = tm_tokenizer_eos_id(f->t);
    assert_true(eos >= 0 && tm_grammar_vocab_is_eos(f->v, eos));
    assert_int_equal(tm_matcher_accept(m, eos), TM_ERR_INPUT);   /* nothing yet */
    assert_int_equal(tm_matcher_accept_bytes(m, (const uint8_t *)"[1", 2), TM_OK);
    assert_false(tm_matcher_done(m));
    assert_int_equal(tm_matcher_bytes_to_end(m), 1);
    assert_int_equal(tm_matcher_copy(c, m), TM_OK);
    assert_int_equal(tm_matcher_accept_bytes(m, (const uint8_t *)"x", 1), TM_ERR_INPUT); /* state unchanged */
    assert_int_equal(tm_matcher_accept_bytes(m, (const uint8_t *)"]", 1), TM_OK);
    assert_true(tm_matcher_done(m));
    assert_int_equal(tm_matcher_bytes_to_end(m), 0);
    assert_int_equal(tm_matcher_accept(m, eos), TM_OK);
    assert_true(tm_matcher_terminated(m));
    assert_int_equal(tm_matcher_accept_bytes(m, (const uint8_t *)"]", 1), TM_ERR_INPUT);
    /* the copy still continues */
    assert_int_equal(tm_matcher_accept_bytes(c, (const uint8_t *)"2,3]", 4), TM_OK);
    assert_true(tm_matcher_done(c));
    tm_matcher_reset(c);
    assert_false(tm_matcher_done(c));
    assert_int_equal(tm_matcher_bytes_to_end(c), 2);
    tm_matcher_destroy(m);
    tm_matcher_destroy(c);
    tm_matcher_destroy(NULL);
    tm_grammar_destroy(g);
    tm_grammar_destroy(NULL);
    tm_grammar_vocab_destroy(NULL);
    tm_grammar_cache_destroy(NULL);
}

static void test_mask_apply(void **state)
{
    (void)state;
    float l[70];
    for (int i = 0; i < 70; i++) l[i] = (float)i;
    uint32_t mask[2] = {0x5u, 0x80000000u}; /* ids 0, 2, 63 */
    tm_grammar_mask_apply(l, 70, mask, 2);
    for (int i = 0; i < 70; i++) {
        if (i == 0 || i == 2 || i == 63) assert_true(l[i] == (float)i);
        else assert_true(isinf(l[i]) && l[i] < 0);
    }
}

static void test_cache(void **state)
{
    fx *f = *state;
    tm_grammar_cache *c;
    tm_err err;
    assert_int_equal(tm_grammar_cache_create(f->v, &c, &err), TM_OK);
    const char *s1 = "{\"type\":\"integer\"}", *s2 = "{\"type\":\"string\"}";
    tm_grammar *a, *b, *d;
    assert_int_equal(tm_grammar_cache_get(c, TM_GRAMMAR_JSON_SCHEMA, s1, strlen(s1), &a, &err), TM_OK);
    assert_int_equal(tm_grammar_cache_get(c, TM_GRAMMAR_JSON_SCHEMA, s1, strlen(s1), &b, &err), TM_OK);
    assert_ptr_equal(a, b);
    assert_int_equal(tm_grammar_cache_get(c, TM_GRAMMAR_JSON_SCHEMA, s2, strlen(s2), &d, &err), TM_OK);
    assert_ptr_not_equal(a, d);
    assert_int_equal(tm_grammar_cache_get(c, TM_GRAMMAR_REGEX, s1, strlen(s1), &d, &err), TM_ERR_INPUT);
    assert_int_equal(tm_grammar_cache_count(c), 2);
    assert_true(matches(a, f->v, "42"));
    tm_grammar_cache_destroy(c);
}

static void test_precompute(void **state)
{
    fx *f = *state;
    tm_grammar *g = compile(TM_GRAMMAR_JSON_OBJECT, "");
    tm_err err;
    assert_int_equal(tm_grammar_precompute(g, f->v, &err), TM_OK);
    assert_true(tm_grammar_n_states(g) > 5);
    assert_int_equal(tm_grammar_n_rules(g), 3);
    check_walks(g, f->v, 4, 30, 99);
    tm_grammar_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_languages, setup, teardown),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test_setup_teardown(test_masks_brute_force, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eos_copy_reset, setup, teardown),
        cmocka_unit_test(test_mask_apply),
        cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precompute, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
