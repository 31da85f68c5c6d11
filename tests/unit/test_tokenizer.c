/* test_tokenizer.c — the tokenizer on small synthetic tokenizer.json files:
 * hostile files fail with TM_ERR_INPUT naming the file and the JSON path
 * (both from memory and from a temp directory through tm_tokenizer_load),
 * BPE merge order by rank, ignore_merges, byte fallback + unk fusing, the
 * Split behaviors, Metaspace/Digits pre-tokenizers, added-token flags and the
 * decoder chain. Needs no test data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "tokenizer/tokenizer.h"

static tm_tokenizer *load(const char *json, const char *cfg)
{
    tm_tokenizer *t = NULL;
    tm_err err;
    tm_status st = tm_tokenizer_load_json(json, strlen(json), cfg, cfg ? strlen(cfg) : 0, &t, &err);
    if (st != TM_OK) fprintf(stderr, "unexpected load error: %s\n", err.msg);
    assert_int_equal(st, TM_OK);
    return t;
}

/* Encode text and compare with the expected ids (terminated by -1). */
static void expect_ids(const tm_tokenizer *t, const char *text, const int32_t *want)
{
    int32_t *ids = NULL;
    size_t n = 0, nw = 0;
    tm_err err;
    assert_int_equal(tm_tokenizer_encode(t, text, strlen(text), 0, &ids, &n, &err), TM_OK);
    while (want[nw] >= 0) nw++;
    if (n != nw || memcmp(ids, want, n * sizeof *ids)) {
        fprintf(stderr, "text \"%s\": got", text);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    assert_int_equal(n, nw);
    assert_memory_equal(ids, want, n * sizeof *ids);
    free(ids);
}

static void expect_decode(const tm_tokenizer *t, const int32_t *ids, size_t n, int skip, const char *want)
{
    char *txt = NULL;
    size_t len = 0;
    tm_err err;
    assert_int_equal(tm_tokenizer_decode(t, ids, n, skip, &txt, &len, &err), TM_OK);
    assert_string_equal(txt, want);
    assert_int_equal(len, strlen(want));
    free(txt);
}

typedef struct bad { const char *json, *cfg, *want; } bad;

static const bad BAD[] = {
    { "", NULL, "invalid JSON" },
    { "[]", NULL, "expected a JSON object" },
    { "{}", NULL, "model: missing" },
    { "{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", NULL, "model.type: \"Unigram\" is not supported" },
    { "{\"model\":{\"type\":7,\"vocab\":{}}}", NULL, "model.type: expected a string" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":[1,2],\"merges\":[]}}", NULL, "model.vocab: missing or not an object" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}}", NULL, "model.vocab[\"a\"]: id -1 out of range" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"x\"},\"merges\":[]}}", NULL, "model.vocab[\"a\"]: expected an integer" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}}", NULL, "already used by" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":100000},\"merges\":[]}}", NULL, "model.vocab: id 100000 out of range" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a c\"]}}", NULL, "model.merges[0]: token \"c\" is not in model.vocab" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}", NULL, "model.merges[0]: token \"ab\" is not in model.vocab" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[[\"a\"]]}}", NULL, "model.merges[0]: expected" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"ab\"]}}", NULL, "model.merges[0]: expected \"left right\"" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":{}}}", NULL, "model.merges: expected an array" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"id\":5}]}", NULL, "added_tokens[0].content" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"id\":\"5\",\"content\":\"x\"}]}", NULL, "added_tokens[0].id: expected an integer" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"id\":1,\"content\":\"x\"},{\"id\":1,\"content\":\"y\"}]}", NULL, "id 1 used by two added tokens" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"id\":1,\"content\":\"x\",\"special\":\"yes\"}]}", NULL, "added_tokens[0].special: expected a boolean" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\"}}", NULL, "pre_tokenizer.pattern: bad regex" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},\"behavior\":\"Sideways\"}}", NULL, "pre_tokenizer.behavior: unknown value" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Whitespace\"}]}}", NULL, "pre_tokenizer.pretokenizers[0].type: pre-tokenizer \"Whitespace\" is not supported" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"decoder\":{\"type\":\"Strip\",\"content\":\" \",\"start\":-1,\"stop\":0}}", NULL, "decoder.start/stop" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"normalizer\":{\"type\":5}}", NULL, "normalizer.type: expected a string" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"}}}", NULL, "normalizer.content: missing" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"normalizer\":"
      "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Sequence\",\"normalizers\":["
      "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Sequence\",\"normalizers\":["
      "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Sequence\",\"normalizers\":[]}]}]}]}]}]}]}]}]}]}}", NULL, "nested too deeply" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}", "{\"bos_token\":5}", "tokenizer_config.json: bos_token: expected a string" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}", "{\"bos_token\":", "tokenizer_config.json:1: invalid JSON" },
    { "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}", "{\"chat_template\":[{\"name\":\"default\"}]}", "chat_template[0]" },
};

static void test_hostile_memory(void **s)
{
    (void)s;
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        tm_tokenizer *t = (tm_tokenizer *)1;
        tm_err err;
        err.msg[0] = 0;
        tm_status st = tm_tokenizer_load_json(BAD[i].json, strlen(BAD[i].json), BAD[i].cfg, BAD[i].cfg ? strlen(BAD[i].cfg) : 0, &t, &err);
        if (st != TM_ERR_INPUT || !strstr(err.msg, BAD[i].want))
            fprintf(stderr, "case %zu: status %d, message \"%s\", want \"%s\"\n", i, (int)st, err.msg, BAD[i].want);
        assert_int_equal(st, TM_ERR_INPUT);
        assert_non_null(strstr(err.msg, BAD[i].want));
        assert_null(t);
        if (!BAD[i].cfg) assert_non_null(strstr(err.msg, "tokenizer.json"));
    }
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_hostile_files(void **s)
{
    (void)s;
    char dir[] = "/tmp/tm_tok_test_XXXXXX";
    assert_non_null(mkdtemp(dir));
    tm_tokenizer *t = NULL;
    tm_err err;
    /* missing tokenizer.json: an I/O error naming the path */
    assert_int_equal(tm_tokenizer_load(dir, &t, &err), TM_ERR_IO);
    assert_non_null(strstr(err.msg, "tokenizer.json"));
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        char cfgp[600];
        snprintf(cfgp, sizeof cfgp, "%s/tokenizer_config.json", dir);
        unlink(cfgp);
        write_file(dir, "tokenizer.json", BAD[i].json);
        if (BAD[i].cfg) write_file(dir, "tokenizer_config.json", BAD[i].cfg);
        err.msg[0] = 0;
        assert_int_equal(tm_tokenizer_load(dir, &t, &err), TM_ERR_INPUT);
        assert_null(t);
        assert_non_null(strstr(err.msg, dir)); /* the full path of the file */
        assert_non_null(strstr(err.msg, BAD[i].want));
    }
    /* a good pair loads, with the config's tokens */
    write_file(dir, "tokenizer.json", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[]},"
                                      "\"added_tokens\":[{\"id\":2,\"content\":\"<s>\",\"special\":true}]}");
    write_file(dir, "tokenizer_config.json", "{\"bos_token\":{\"content\":\"<s>\"},\"eos_token\":null,\"model_max_length\":1e30,"
                                             "\"chat_template\":[{\"name\":\"tool_use\",\"template\":\"T\"},{\"name\":\"default\",\"template\":\"D\"}]}");
    assert_int_equal(tm_tokenizer_load(dir, &t, &err), TM_OK);
    assert_int_equal(tm_tokenizer_bos_id(t), 2);
    assert_int_equal(tm_tokenizer_eos_id(t), -1);
    assert_true(tm_tokenizer_add_bos(t));
    assert_string_equal(tm_tokenizer_chat_template(t), "D");
    assert_int_equal(tm_tokenizer_vocab_size(t), 3);
    tm_tokenizer_destroy(t);
    char p[600];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    unlink(p);
    rmdir(dir);
}

static void test_bpe_rank_order(void **s)
{
    (void)s;
    /* "b c" has the better rank, so "abc" -> a + bc even though "ab c" exists */
    tm_tokenizer *t = load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"abc\":4,\"bc\":5},"
                           "\"merges\":[\"b c\",\"a b\",\"ab c\"]}}", NULL);
    expect_ids(t, "abc", (const int32_t[]){ 0, 5, -1 });
    expect_ids(t, "ab", (const int32_t[]){ 3, -1 });
    expect_ids(t, "abab", (const int32_t[]){ 3, 3, -1 });
    expect_ids(t, "xab", (const int32_t[]){ 3, -1 }); /* no unk token: unknown chars dropped */
    expect_decode(t, (const int32_t[]){ 0, 5 }, 2, 0, "a bc"); /* no decoder: joined with spaces */
    tm_tokenizer_destroy(t);
    /* pair-list merges and ignore_merges: a whole word in the vocab wins */
    t = load("{\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"abc\":4,\"bc\":5},"
             "\"merges\":[[\"b\",\"c\"],[\"a\",\"b\"],[\"ab\",\"c\"]]}}", NULL);
    expect_ids(t, "abc", (const int32_t[]){ 4, -1 });
    tm_tokenizer_destroy(t);
}

static void test_byte_fallback(void **s)
{
    (void)s;
    tm_tokenizer *t = load("{\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"fuse_unk\":true,\"unk_token\":\"<unk>\","
                           "\"vocab\":{\"<unk>\":0,\"a\":1,\"<0xC3>\":2,\"<0xA9>\":3},\"merges\":[]},"
                           "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]}}", NULL);
    expect_ids(t, "a\xc3\xa9", (const int32_t[]){ 1, 2, 3, -1 });          /* é -> <0xC3><0xA9> */
    expect_ids(t, "a\xe2\x82\xac\xe2\x82\xac", (const int32_t[]){ 1, 0, -1 }); /* €€: no byte tokens -> one fused unk */
    expect_decode(t, (const int32_t[]){ 1, 2, 3 }, 3, 0, "a\xc3\xa9");
    expect_decode(t, (const int32_t[]){ 2, 1 }, 2, 0, "\xef\xbf\xbd" "a"); /* lone 0xC3 -> U+FFFD */
    /* streaming holds the first byte until the character is complete */
    tm_detok *d = NULL;
    tm_err err;
    const char *o;
    size_t ol;
    assert_int_equal(tm_detok_create(t, 0, &d, &err), TM_OK);
    assert_int_equal(tm_detok_push(d, 1, &o, &ol, &err), TM_OK);
    assert_int_equal(ol, 1);
    assert_int_equal(tm_detok_push(d, 2, &o, &ol, &err), TM_OK);
    assert_int_equal(ol, 0);
    assert_int_equal(tm_detok_push(d, 3, &o, &ol, &err), TM_OK);
    assert_int_equal(ol, 0); /* still a byte token: may continue */
    assert_int_equal(tm_detok_flush(d, &o, &ol, &err), TM_OK);
    assert_int_equal(ol, 2);
    assert_memory_equal(o, "\xc3\xa9", 2);
    tm_detok_destroy(d);
    tm_tokenizer_destroy(t);
}

static const char *split_json(const char *behavior, char *buf, size_t cap)
{
    snprintf(buf, cap, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"-\":2,\"a-\":3,\"-b\":4},\"merges\":[\"a -\",\"- b\"]},"
                       "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"%s\",\"invert\":false}}", behavior);
    return buf;
}

static void test_split_behaviors(void **s)
{
    (void)s;
    char j[1024];
    tm_tokenizer *t = load(split_json("Isolated", j, sizeof j), NULL);
    expect_ids(t, "a-b", (const int32_t[]){ 0, 2, 1, -1 });
    tm_tokenizer_destroy(t);
    t = load(split_json("MergedWithPrevious", j, sizeof j), NULL);
    expect_ids(t, "a-b", (const int32_t[]){ 3, 1, -1 });
    tm_tokenizer_destroy(t);
    t = load(split_json("MergedWithNext", j, sizeof j), NULL);
    expect_ids(t, "a-b", (const int32_t[]){ 0, 4, -1 });
    tm_tokenizer_destroy(t);
    t = load(split_json("Removed", j, sizeof j), NULL);
    expect_ids(t, "a-b", (const int32_t[]){ 0, 1, -1 });
    tm_tokenizer_destroy(t);
    t = load(split_json("Contiguous", j, sizeof j), NULL);
    expect_ids(t, "a--b", (const int32_t[]){ 0, 2, 2, 1, -1 }); /* "--" one piece, no "--" merge */
    tm_tokenizer_destroy(t);
}

static void test_metaspace_digits(void **s)
{
    (void)s;
    tm_tokenizer *t = load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"\xe2\x96\x81\":0,\"a\":1,\"b\":2,\"\xe2\x96\x81" "a\":3,\"\xe2\x96\x81" "b\":4,\"1\":5,\"2\":6,\"12\":7},"
                           "\"merges\":[\"\xe2\x96\x81 a\",\"\xe2\x96\x81 b\",\"1 2\"]},"
                           "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\",\"individual_digits\":true},"
                           "{\"type\":\"Metaspace\",\"replacement\":\"\xe2\x96\x81\",\"prepend_scheme\":\"first\",\"split\":true}]},"
                           "\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"\xe2\x96\x81\",\"prepend_scheme\":\"first\",\"split\":true}}", NULL);
    expect_ids(t, "a b", (const int32_t[]){ 3, 4, -1 });
    expect_ids(t, "12", (const int32_t[]){ 0, 5, 6, -1 }); /* digits split, ▁ prepended before the first */
    expect_decode(t, (const int32_t[]){ 3, 4 }, 2, 0, "a b");
    tm_tokenizer_destroy(t);
}

static void test_added_tokens(void **s)
{
    (void)s;
    tm_tokenizer *t = load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\" \":2},\"merges\":[]},"
                           "\"added_tokens\":[{\"id\":3,\"content\":\"<x>\",\"special\":true},"
                           "{\"id\":4,\"content\":\"<x>y\",\"special\":false,\"normalized\":false},"
                           "{\"id\":5,\"content\":\"<r>\",\"special\":true,\"rstrip\":true,\"lstrip\":true}]}", NULL);
    expect_ids(t, "a<x>b", (const int32_t[]){ 0, 3, 1, -1 });
    expect_ids(t, "a<x>yb", (const int32_t[]){ 0, 4, 1, -1 }); /* longest match */
    expect_ids(t, "a  <r>  b", (const int32_t[]){ 0, 5, 1, -1 }); /* whitespace eaten on both sides */
    expect_decode(t, (const int32_t[]){ 0, 3, 4, 1 }, 4, 0, "a <x> <x>y b");
    expect_decode(t, (const int32_t[]){ 0, 3, 4, 1 }, 4, 1, "a <x>y b"); /* skip_special */
    assert_true(tm_tokenizer_is_special(t, 3));
    assert_false(tm_tokenizer_is_special(t, 4));
    assert_int_equal(tm_tokenizer_token_id(t, "<x>y"), 4);
    tm_tokenizer_destroy(t);
}

static void test_normalizers_decoders(void **s)
{
    (void)s;
    /* NFC + Prepend + Replace (mistral-style) with the matching decoders */
    tm_tokenizer *t = load("{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"Prepend\",\"prepend\":\"_\"},"
                           "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" +\"},\"content\":\"_\"}]},"
                           "\"model\":{\"type\":\"BPE\",\"vocab\":{\"_\":0,\"a\":1,\"\xc3\xa9\":2,\"_a\":3},\"merges\":[\"_ a\"]},"
                           "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"_\"},\"content\":\" \"},"
                           "{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}}", NULL);
    expect_ids(t, "a   e\xcc\x81", (const int32_t[]){ 3, 0, 2, -1 }); /* e + combining acute -> é by NFC */
    expect_decode(t, (const int32_t[]){ 3, 0, 2 }, 3, 0, "a \xc3\xa9");
    tm_tokenizer_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_memory),
        cmocka_unit_test(test_hostile_files),
        cmocka_unit_test(test_bpe_rank_order),
        cmocka_unit_test(test_byte_fallback),
        cmocka_unit_test(test_split_behaviors),
        cmocka_unit_test(test_metaspace_digits),
        cmocka_unit_test(test_added_tokens),
        cmocka_unit_test(test_normalizers_decoders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
