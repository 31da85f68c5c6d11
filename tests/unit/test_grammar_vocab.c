/* test_grammar_vocab.c — src/grammar on the real tokenizers of the test data:
 * tm_tokenizer_token_bytes (byte-level BPE, SentencePiece, byte fallback,
 * special tokens), and masks equal to a brute-force check of all 128,256
 * (llama3) / 32,000 (mistral) tokens along short random walks. Skips (77)
 * without TOKENMILL_TESTDATA.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "grammar/grammar.h"

static tm_tokenizer *load(const char *fam)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/%s", getenv("TOKENMILL_TESTDATA"), fam);
    tm_tokenizer *t = NULL;
    tm_err err;
    if (tm_tokenizer_load(path, &t, &err) != TM_OK) fail_msg("%s: %s", path, err.msg);
    return t;
}

static void expect_bytes(const tm_tokenizer *t, const char *tok, const char *want, int want_len)
{
    int32_t id = tm_tokenizer_token_id(t, tok);
    assert_true(id >= 0);
    uint8_t buf[64];
    int n = tm_tokenizer_token_bytes(t, id, buf, sizeof buf);
    assert_int_equal(n, want_len);
    if (n > 0) assert_memory_equal(buf, want, (size_t)n);
}

static void test_token_bytes(void **state)
{
    (void)state;
    tm_tokenizer *l = load("llama3"), *m = load("mistral");
    expect_bytes(l, "\xc4\xa0the", " the", 4);              /* Ġthe */
    expect_bytes(l, "{\"", "{\"", 2);
    expect_bytes(l, "<|end_of_text|>", "", -1);             /* special */
    expect_bytes(m, "\xe2\x96\x81the", " the", 4);          /* ▁the */
    expect_bytes(m, "<0x41>", "A", 1);                      /* byte fallback */
    expect_bytes(m, "</s>", "", -1);
    assert_int_equal(tm_tokenizer_token_bytes(m, -1, NULL, 0), -1);
    assert_int_equal(tm_tokenizer_token_bytes(m, 1 << 30, NULL, 0), -1);
    /* the llama3 vocab: every non-special token has bytes, the same as its decode */
    int32_t n = tm_tokenizer_vocab_size(l), with = 0;
    for (int32_t id = 0; id < n; id += 97) {
        uint8_t buf[512];
        int k = tm_tokenizer_token_bytes(l, id, buf, sizeof buf);
        if (tm_tokenizer_is_special(l, id)) { assert_int_equal(k, -1); continue; }
        char *text;
        size_t len;
        tm_err err;
        assert_int_equal(tm_tokenizer_decode(l, &id, 1, 0, &text, &len, &err), TM_OK);
        assert_true(k > 0);
        /* a token that is not valid UTF-8 alone decodes lossy: compare only valid ones */
        if (len == (size_t)k) assert_memory_equal(text, buf, len);
        free(text);
        with++;
    }
    assert_true(with > 1000);
    tm_tokenizer_destroy(l);
    tm_tokenizer_destroy(m);
}

static void brute(const char *fam, const char *schema, int steps, uint64_t seed)
{
    tm_tokenizer *t = load(fam);
    tm_grammar_vocab *v;
    tm_grammar *g;
    tm_matcher *m, *c;
    tm_err err;
    assert_int_equal(tm_grammar_vocab_create(t, &v, &err), TM_OK);
    assert_int_equal(tm_grammar_compile_schema(schema, strlen(schema), &g, &err), TM_OK);
    assert_int_equal(tm_matcher_create(g, v, &m, &err), TM_OK);
    assert_int_equal(tm_matcher_create(g, v, &c, &err), TM_OK);
    int32_t n = tm_grammar_vocab_size(v);
    uint32_t *mask = calloc(tm_grammar_vocab_mask_words(v), sizeof *mask);
    int32_t *allowed = malloc((size_t)n * sizeof *allowed);
    for (int st = 0; st < steps; st++) {
        assert_int_equal(tm_matcher_fill_mask(m, mask, &err), TM_OK);
        int32_t na = 0;
        for (int32_t id = 0; id < n; id++) {
            int bit = mask[id >> 5] >> (id & 31) & 1;
            tm_matcher_copy(c, m);
            int ok = tm_matcher_accept(c, id) == TM_OK;
            if (bit != ok) fail_msg("%s: token %d: mask %d, matcher %d at step %d", fam, (int)id, bit, ok, st);
            if (ok) allowed[na++] = id;
        }
        if (!na) break;
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        assert_int_equal(tm_matcher_accept(m, allowed[(seed >> 33) % (uint64_t)na]), TM_OK);
        if (tm_matcher_terminated(m)) break;
    }
    free(mask);
    free(allowed);
    tm_matcher_destroy(m);
    tm_matcher_destroy(c);
    tm_grammar_destroy(g);
    tm_grammar_vocab_destroy(v);
    tm_tokenizer_destroy(t);
}

static const char *const schema =
    "{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":12},\"kids\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/$defs/n\"}},\"at\":{\"type\":\"string\",\"format\":\"date\"},\"k\":{\"enum\":[\"x\",2,null]}},"
    "\"required\":[\"name\",\"kids\"]}},\"$ref\":\"#/$defs/n\"}";

static void test_brute_llama3(void **state)
{
    (void)state;
    brute("llama3", schema, 12, 3);
    brute("llama3", "{\"type\":\"object\"}", 8, 5);
}

static void test_brute_mistral(void **state)
{
    (void)state;
    brute("mistral", schema, 16, 11);
    brute("mistral", "{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":-30,\"maximum\":4000}}", 12, 13);
}

int main(void)
{
    if (!getenv("TOKENMILL_TESTDATA")) { printf("SKIP: TOKENMILL_TESTDATA is not set\n"); return 77; }
    char p[4096];
    snprintf(p, sizeof p, "%s/tokenizers/llama3/tokenizer.json", getenv("TOKENMILL_TESTDATA"));
    FILE *f = fopen(p, "r");
    if (!f) { printf("SKIP: no %s\n", p); return 77; }
    fclose(f);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_bytes),
        cmocka_unit_test(test_brute_llama3),
        cmocka_unit_test(test_brute_mistral),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
