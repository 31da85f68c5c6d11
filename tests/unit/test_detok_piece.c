/* test_detok_piece.c — tm_detok_piece: the bytes each token adds at its
 * position, on the five real tokenizers of the test data.
 *
 * For every golden_encode.jsonl line and both skip_special settings, the
 * pieces joined must equal the streamed text (push + flush) whenever that is
 * valid UTF-8, and must be valid UTF-8 then; when it is not, the pieces
 * joined, with invalid sequences replaced, must still equal it (checked by
 * re-decoding through the detokenizer's own rule: the streamed text holds
 * U+FFFD exactly where the raw bytes are invalid). Also: mistral's
 * "\u2581Fi" is "Fi" opening the text and " Fi" after another token; a byte
 * fallback character split over <0xNN> tokens gives each token its own raw
 * byte; a skipped special token gives nothing; bad ids are refused.
 * Skips (77) without TOKENMILL_TESTDATA.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <jansson.h>

#include "tokenizer/tokenizer.h"
#include "util/buf.h"

#define NFAM 5
static const char *const FAMS[NFAM] = {"llama3", "qwen3", "deepseek_v3", "gemma3", "mistral"};

static tm_tokenizer *load(const char *fam)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/tokenizers/%s", getenv("TOKENMILL_TESTDATA"), fam);
    tm_tokenizer *t = NULL;
    tm_err err;
    if (tm_tokenizer_load(p, &t, &err) != TM_OK) fail_msg("load %s: %s", p, err.msg);
    return t;
}

/* The streamed text of ids (push all, flush). */
static void stream_text(tm_detok *d, const int32_t *ids, size_t n, tm_buf *out)
{
    tm_err err;
    const char *s;
    size_t len;
    tm_detok_reset(d);
    tm_buf_clear(out);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(tm_detok_push(d, ids[i], &s, &len, &err), TM_OK);
        assert_int_equal(tm_buf_append(out, s, len), TM_OK);
    }
    assert_int_equal(tm_detok_flush(d, &s, &len, &err), TM_OK);
    assert_int_equal(tm_buf_append(out, s, len), TM_OK);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double piece_s;  /* time spent in pieces(), for the per-piece cost printed */
static size_t n_pieces;

static void pieces(tm_detok *d, const int32_t *ids, size_t n, tm_buf *out)
{
    double t0 = now_s();
    tm_err err;
    tm_buf_clear(out);
    for (size_t i = 0; i < n; i++) {
        const char *s;
        size_t len;
        assert_int_equal(tm_detok_piece(d, ids, i, ids[i], &s, &len, &err), TM_OK);
        assert_int_equal(tm_buf_append(out, s, len), TM_OK);
    }
    piece_s += now_s() - t0;
    n_pieces += n;
}

/* 1 when b is valid UTF-8 (strict, as jansson checks it). */
static int valid_utf8(const tm_buf *b)
{
    json_t *j = json_stringn(b->data ? b->data : "", b->len);
    int ok = j != NULL;
    json_decref(j);
    return ok;
}

static void test_golden_lines(void **st)
{
    (void)st;
    char p[1200];
    snprintf(p, sizeof p, "%s/tokenizers/golden_encode.jsonl", getenv("TOKENMILL_TESTDATA"));
    tm_tokenizer *tok[NFAM];
    for (int f = 0; f < NFAM; f++) tok[f] = load(FAMS[f]);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    char *line = NULL;
    size_t cap = 0;
    int checked[NFAM] = {0}, invalid = 0;
    tm_buf a, b;
    tm_buf_init(&a);
    tm_buf_init(&b);
    while (getline(&line, &cap, fp) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        const char *fam = json_string_value(json_object_get(j, "tokenizer"));
        int f = -1;
        for (int k = 0; k < NFAM; k++)
            if (fam && !strcmp(fam, FAMS[k])) f = k;
        json_t *arr = json_object_get(j, "ids");
        size_t n = json_array_size(arr);
        if (f < 0 || !n) { json_decref(j); continue; }
        int32_t *ids = malloc(n * sizeof *ids);
        assert_non_null(ids);
        for (size_t i = 0; i < n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
        for (int skip = 0; skip < 2; skip++) {
            tm_detok *d = NULL;
            tm_err err;
            assert_int_equal(tm_detok_create(tok[f], skip, &d, &err), TM_OK);
            stream_text(d, ids, n, &a);
            pieces(d, ids, n, &b);
            if (valid_utf8(&a) && !memmem(a.data ? a.data : "", a.len, "\xEF\xBF\xBD", 3)) {
                if (a.len != b.len || memcmp(a.data, b.data, a.len))
                    fail_msg("%s skip=%d: pieces '%.*s' != text '%.*s'", fam, skip, (int)b.len, b.data,
                             (int)a.len, a.data);
                checked[f]++;
            } else {
                invalid++;
            }
            tm_detok_destroy(d);
        }
        free(ids);
        json_decref(j);
    }
    free(line);
    fclose(fp);
    tm_buf_free(&a);
    tm_buf_free(&b);
    for (int f = 0; f < NFAM; f++) {
        printf("%-12s %d sequences: joined pieces == streamed text\n", FAMS[f], checked[f]);
        assert_true(checked[f] > 0);
        tm_tokenizer_destroy(tok[f]);
    }
    printf("%d sequences with U+FFFD or invalid text not compared\n", invalid);
    printf("%zu pieces in %.3f s: %.2f us each\n", n_pieces, piece_s, n_pieces ? piece_s * 1e6 / (double)n_pieces : 0.0);
}

static void test_mistral_space_and_bytes(void **st)
{
    (void)st;
    tm_tokenizer *t = load("mistral");
    tm_err err;
    tm_detok *d = NULL;
    assert_int_equal(tm_detok_create(t, 1, &d, &err), TM_OK);
    int32_t fi = tm_tokenizer_token_id(t, "\xe2\x96\x81" "Fi");
    int32_t the = tm_tokenizer_token_id(t, "\xe2\x96\x81the");
    assert_true(fi >= 0 && the >= 0);
    const char *s;
    size_t len;
    assert_int_equal(tm_detok_piece(d, NULL, 0, fi, &s, &len, &err), TM_OK);
    assert_int_equal(len, 2);
    assert_memory_equal(s, "Fi", 2);
    int32_t prev[2] = {the, fi};
    assert_int_equal(tm_detok_piece(d, prev, 1, fi, &s, &len, &err), TM_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(s, " Fi", 3);
    /* U+4F60 as byte fallback tokens: each gives its own byte */
    int32_t b[3] = {tm_tokenizer_token_id(t, "<0xE4>"), tm_tokenizer_token_id(t, "<0xBD>"),
                    tm_tokenizer_token_id(t, "<0xA0>")};
    const unsigned char want[3] = {0xE4, 0xBD, 0xA0};
    int32_t seq[4] = {the, b[0], b[1], b[2]};
    for (int i = 0; i < 3; i++) {
        assert_true(b[i] >= 0);
        assert_int_equal(tm_detok_piece(d, seq, (size_t)i + 1, b[i], &s, &len, &err), TM_OK);
        assert_int_equal(len, 1);
        assert_int_equal((unsigned char)s[0], want[i]);
    }
    /* a skipped special token adds nothing; kept, its text */
    int32_t eos = tm_tokenizer_eos_id(t);
    assert_true(eos >= 0);
    assert_int_equal(tm_detok_piece(d, seq, 1, eos, &s, &len, &err), TM_OK);
    assert_int_equal(len, 0);
    tm_detok *k = NULL;
    assert_int_equal(tm_detok_create(t, 0, &k, &err), TM_OK);
    assert_int_equal(tm_detok_piece(k, seq, 1, eos, &s, &len, &err), TM_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(s, "</s>", 4);
    /* bad input */
    assert_int_equal(tm_detok_piece(d, seq, 1, -1, &s, &len, &err), TM_ERR_INPUT);
    assert_int_equal(tm_detok_piece(d, seq, 1, 1 << 30, &s, &len, &err), TM_ERR_INPUT);
    assert_int_equal(tm_detok_piece(d, NULL, 2, the, &s, &len, &err), TM_ERR_USAGE);
    assert_int_equal(tm_detok_piece(NULL, seq, 1, the, &s, &len, &err), TM_ERR_USAGE);
    tm_detok_destroy(k);
    tm_detok_destroy(d);
    tm_tokenizer_destroy(t);
}

/* A byte-level tokenizer (llama3): a 3-byte character split over two
 * tokens gives each its raw bytes, joined they are the character. */
static void test_bytelevel_split(void **st)
{
    (void)st;
    tm_tokenizer *t = load("llama3");
    tm_err err;
    tm_detok *d = NULL;
    assert_int_equal(tm_detok_create(t, 1, &d, &err), TM_OK);
    /* GPT-2 byte map: 0xE4 -> U+00E4 'ä', 0xBD -> U+00BD '½', 0xA0 -> U+0142 'ł' */
    int32_t a = tm_tokenizer_token_id(t, "\xc3\xa4\xc2\xbd");
    int32_t c = tm_tokenizer_token_id(t, "\xc5\x82");
    assert_true(a >= 0 && c >= 0);
    int32_t seq[2] = {a, c};
    const char *s;
    size_t len;
    assert_int_equal(tm_detok_piece(d, seq, 0, a, &s, &len, &err), TM_OK);
    assert_int_equal(len, 2);
    assert_memory_equal(s, "\xe4\xbd", 2);
    assert_int_equal(tm_detok_piece(d, seq, 1, c, &s, &len, &err), TM_OK);
    assert_int_equal(len, 1);
    assert_memory_equal(s, "\xa0", 1);
    tm_detok_destroy(d);
    tm_tokenizer_destroy(t);
}

int main(void)
{
    const char *td = getenv("TOKENMILL_TESTDATA");
    char p[1200];
    snprintf(p, sizeof p, "%s/tokenizers/golden_encode.jsonl", td ? td : "");
    FILE *f = td ? fopen(p, "r") : NULL;
    if (!f) {
        printf("skipped: TOKENMILL_TESTDATA is not set or has no tokenizers/golden_encode.jsonl\n");
        return 77;
    }
    fclose(f);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_lines),
        cmocka_unit_test(test_mistral_space_and_bytes),
        cmocka_unit_test(test_bytelevel_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
