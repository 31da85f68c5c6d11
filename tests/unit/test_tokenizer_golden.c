/* test_tokenizer_golden.c — the tokenizer against Hugging Face `tokenizers`.
 *
 * Every line of testdata/tokenizers/golden_encode.jsonl must encode to exactly
 * its ids and decode (keeping special tokens) to its "decoded" text; the
 * streaming detokenizer must reproduce the full decode on every line (with
 * and without skip_special); every golden_chat.jsonl text must encode to its
 * ids. Per-family pass counts are printed. Also: tokenizer_config accessors,
 * invalid UTF-8, out-of-range ids, and 4 threads sharing one tokenizer.
 * Skips (77) without TOKENMILL_TESTDATA.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>
#include <jansson.h>

#include "tokenizer/tokenizer.h"

#define NFAM 5
static const char *const FAMS[NFAM] = { "llama3", "qwen3", "deepseek_v3", "gemma3", "mistral" };

typedef struct state {
    char dir[1024];
    tm_tokenizer *tok[NFAM];
} state;

static int fam_index(const char *name)
{
    for (int i = 0; i < NFAM; i++)
        if (!strcmp(FAMS[i], name)) return i;
    return -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int setup(void **st)
{
    state *s = calloc(1, sizeof *s);
    if (!s) return -1;
    *st = s;
    snprintf(s->dir, sizeof s->dir, "%s/tokenizers", getenv("TOKENMILL_TESTDATA"));
    for (int i = 0; i < NFAM; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", s->dir, FAMS[i]);
        tm_err err;
        double t0 = now_s();
        tm_status rc = tm_tokenizer_load(p, &s->tok[i], &err);
        if (rc != TM_OK) {
            fprintf(stderr, "load %s: %s\n", p, err.msg);
            return -1;
        }
        printf("loaded %-12s vocab %6d in %.3f s\n", FAMS[i], tm_tokenizer_vocab_size(s->tok[i]), now_s() - t0);
    }
    return 0;
}

static int teardown(void **st)
{
    state *s = *st;
    if (!s) return 0;
    for (int i = 0; i < NFAM; i++) tm_tokenizer_destroy(s->tok[i]);
    free(s);
    return 0;
}

/* Streamed text (push every id, then flush) must equal the full decode. */
static int stream_matches(const tm_tokenizer *t, const int32_t *ids, size_t n, int skip, const char *full, size_t full_len)
{
    tm_detok *d = NULL;
    tm_err err;
    if (tm_detok_create(t, skip, &d, &err) != TM_OK) return 0;
    char *acc = malloc(full_len * 2 + 64);
    size_t al = 0, cap = full_len * 2 + 64;
    int ok = 1;
    for (size_t i = 0; i <= n && ok; i++) {
        const char *o;
        size_t ol;
        tm_status rc = i < n ? tm_detok_push(d, ids[i], &o, &ol, &err) : tm_detok_flush(d, &o, &ol, &err);
        if (rc != TM_OK || al + ol > cap) { ok = 0; break; }
        memcpy(acc + al, o, ol);
        al += ol;
    }
    if (ok) ok = al == full_len && memcmp(acc, full, al) == 0;
    free(acc);
    tm_detok_destroy(d);
    return ok;
}

static int read_ids(json_t *arr, int32_t **out, size_t *n)
{
    *n = json_array_size(arr);
    *out = malloc((*n + 1) * sizeof **out);
    for (size_t i = 0; i < *n; i++) (*out)[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return 0;
}

static void print_ids(const char *what, const int32_t *ids, size_t n)
{
    printf("    %s:", what);
    for (size_t i = 0; i < n && i < 40; i++) printf(" %d", ids[i]);
    printf(n > 40 ? " ...\n" : "\n");
}

static void run_file(state *s, const char *file, int chat)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", s->dir, file);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t ll;
    int pass[NFAM] = { 0 }, total[NFAM] = { 0 }, shown = 0, fails = 0;
    while ((ll = getline(&line, &lcap, f)) > 0) {
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)ll, JSON_ALLOW_NUL, &je);
        assert_non_null(o);
        int fi = fam_index(json_string_value(json_object_get(o, "tokenizer")));
        assert_true(fi >= 0);
        const tm_tokenizer *t = s->tok[fi];
        json_t *jt = json_object_get(o, "text");
        const char *text = json_string_value(jt);
        size_t tl = json_string_length(jt);
        int32_t *want, *got = NULL;
        size_t nw, ng = 0;
        read_ids(json_object_get(o, "ids"), &want, &nw);
        tm_err err;
        total[fi]++;
        int ok = tm_tokenizer_encode(t, text, tl, 0, &got, &ng, &err) == TM_OK && ng == nw &&
                 memcmp(got, want, nw * sizeof *want) == 0;
        const char *why = "encode";
        char *dec = NULL;
        size_t dl = 0;
        if (ok && !chat) {
            json_t *jd = json_object_get(o, "decoded");
            ok = tm_tokenizer_decode(t, want, nw, 0, &dec, &dl, &err) == TM_OK && dl == json_string_length(jd) &&
                 memcmp(dec, json_string_value(jd), dl) == 0;
            why = "decode";
            if (ok) { ok = stream_matches(t, want, nw, 0, dec, dl); why = "stream"; }
            if (ok) {
                char *d2 = NULL;
                size_t l2 = 0;
                ok = tm_tokenizer_decode(t, want, nw, 1, &d2, &l2, &err) == TM_OK && stream_matches(t, want, nw, 1, d2, l2);
                why = "stream(skip_special)";
                free(d2);
            }
        }
        if (ok) pass[fi]++;
        else if (fails++, shown++ < 8) {
            printf("MISMATCH (%s) %s text=%.*s\n", why, FAMS[fi], (int)(tl > 200 ? 200 : tl), text);
            print_ids("want", want, nw);
            print_ids("got ", got, ng);
            if (dec) printf("    decoded=%.*s\n", (int)(dl > 200 ? 200 : dl), dec);
        }
        free(dec);
        free(want);
        free(got);
        json_decref(o);
    }
    free(line);
    fclose(f);
    for (int i = 0; i < NFAM; i++)
        if (total[i]) printf("%s %-12s %d/%d pass\n", file, FAMS[i], pass[i], total[i]);
    assert_int_equal(fails, 0);
}

static void test_golden_encode(void **st) { run_file(*st, "golden_encode.jsonl", 0); }
static void test_golden_chat(void **st) { run_file(*st, "golden_chat.jsonl", 1); }

static void test_config(void **st)
{
    state *s = *st;
    const tm_tokenizer *l3 = s->tok[0], *qw = s->tok[1], *ds = s->tok[2], *gm = s->tok[3], *mi = s->tok[4];
    assert_string_equal(tm_tokenizer_bos_token(l3), "<|begin_of_text|>");
    assert_int_equal(tm_tokenizer_bos_id(l3), 128000);
    assert_int_equal(tm_tokenizer_eos_id(l3), 128001);
    assert_true(tm_tokenizer_add_bos(l3));
    assert_null(tm_tokenizer_bos_token(qw));
    assert_int_equal(tm_tokenizer_bos_id(qw), -1);
    assert_int_equal(tm_tokenizer_eos_id(qw), 151645);
    assert_false(tm_tokenizer_add_bos(qw));
    assert_string_equal(tm_tokenizer_bos_token(ds), "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
    assert_int_equal(tm_tokenizer_bos_id(ds), 0);
    assert_true(tm_tokenizer_add_bos(ds));
    assert_int_equal(tm_tokenizer_bos_id(gm), 2);
    assert_int_equal(tm_tokenizer_eos_id(gm), 106);
    assert_int_equal(tm_tokenizer_vocab_size(gm), 262145); /* 262144 + <image_soft_token> */
    assert_int_equal(tm_tokenizer_bos_id(mi), 1);
    assert_int_equal(tm_tokenizer_eos_id(mi), 2);
    assert_null(tm_tokenizer_chat_template(mi));
    for (int i = 0; i < 4; i++) assert_non_null(strstr(tm_tokenizer_chat_template(s->tok[i]), "message"));
    assert_int_equal(tm_tokenizer_token_id(mi, "\xe2\x96\x81the"), 272);
    assert_string_equal(tm_tokenizer_token_str(mi, 272), "\xe2\x96\x81the");
    assert_int_equal(tm_tokenizer_token_id(qw, "<|im_start|>"), 151644);
    assert_true(tm_tokenizer_is_special(qw, 151644));
    assert_false(tm_tokenizer_is_special(qw, 100));
    assert_int_equal(tm_tokenizer_token_id(qw, "no such token at all"), -1);
    assert_null(tm_tokenizer_token_str(qw, -1));
    assert_null(tm_tokenizer_token_str(qw, 1 << 30));

    /* add_bos prepends the BOS id */
    int32_t *ids = NULL;
    size_t n = 0;
    tm_err err;
    assert_int_equal(tm_tokenizer_encode(mi, "Hello", 5, 1, &ids, &n, &err), TM_OK);
    assert_true(n >= 2);
    assert_int_equal(ids[0], 1);
    free(ids);
}

static void test_bad_inputs(void **st)
{
    state *s = *st;
    tm_err err;
    int32_t *ids = (int32_t *)1;
    size_t n = 7;
    for (int i = 0; i < NFAM; i++) {
        err.msg[0] = 0;
        assert_int_equal(tm_tokenizer_encode(s->tok[i], "ab\xff" "cd", 5, 0, &ids, &n, &err), TM_ERR_INPUT);
        assert_null(ids);
        assert_int_equal(n, 0);
        assert_non_null(strstr(err.msg, "UTF-8"));
        assert_int_equal(tm_tokenizer_encode(s->tok[i], "\xe2\x82", 2, 0, &ids, &n, &err), TM_ERR_INPUT);
        assert_int_equal(tm_tokenizer_encode(s->tok[i], "\xed\xa0\x80", 3, 0, &ids, &n, &err), TM_ERR_INPUT); /* surrogate */
        int32_t bad[2] = { 5, tm_tokenizer_vocab_size(s->tok[i]) };
        char *txt = (char *)1;
        assert_int_equal(tm_tokenizer_decode(s->tok[i], bad, 2, 0, &txt, NULL, &err), TM_ERR_INPUT);
        assert_null(txt);
        int32_t neg = -3;
        assert_int_equal(tm_tokenizer_decode(s->tok[i], &neg, 1, 0, &txt, NULL, &err), TM_ERR_INPUT);
        tm_detok *d = NULL;
        assert_int_equal(tm_detok_create(s->tok[i], 0, &d, &err), TM_OK);
        const char *o;
        size_t ol;
        assert_int_equal(tm_detok_push(d, -1, &o, &ol, &err), TM_ERR_INPUT);
        tm_detok_destroy(d);
    }
    /* embedded NUL is valid UTF-8 and must not truncate */
    assert_int_equal(tm_tokenizer_encode(s->tok[0], "a\0b", 3, 0, &ids, &n, &err), TM_OK);
    char *txt = NULL;
    size_t tl = 0;
    assert_int_equal(tm_tokenizer_decode(s->tok[0], ids, n, 0, &txt, &tl, &err), TM_OK);
    assert_int_equal(tl, 3);
    assert_memory_equal(txt, "a\0b", 3);
    free(txt);
    free(ids);
    tm_tokenizer_destroy(NULL);
    tm_detok_destroy(NULL);
}

/* Byte-fallback pieces split across pushes come out as whole characters. */
static void test_stream_utf8(void **st)
{
    state *s = *st;
    const char *text = "\xf0\x9f\xa6\x99 emoji \xe2\x82\xac";
    for (int i = 0; i < NFAM; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        tm_err err;
        assert_int_equal(tm_tokenizer_encode(s->tok[i], text, strlen(text), 0, &ids, &n, &err), TM_OK);
        tm_detok *d = NULL;
        assert_int_equal(tm_detok_create(s->tok[i], 0, &d, &err), TM_OK);
        char acc[256];
        size_t al = 0;
        for (size_t k = 0; k <= n; k++) {
            const char *o;
            size_t ol;
            assert_int_equal(k < n ? tm_detok_push(d, ids[k], &o, &ol, &err) : tm_detok_flush(d, &o, &ol, &err), TM_OK);
            /* every emitted piece is complete UTF-8 on its own */
            for (size_t j = 0; j < ol; j++) assert_true(j > 0 || ((uint8_t)o[0] & 0xC0) != 0x80);
            assert_true(al + ol < sizeof acc);
            memcpy(acc + al, o, ol);
            al += ol;
        }
        acc[al] = 0;
        printf("%s: %zu ids, streamed \"%s\"\n", FAMS[i], n, acc);
        assert_non_null(strstr(acc, "\xf0\x9f\xa6\x99"));
        assert_non_null(strstr(acc, "\xe2\x82\xac"));
        tm_detok_destroy(d);
        free(ids);
    }
}

/* models/mistral-tok-mini: prompt_ids = encode(prompt) with the BOS that
 * add_bos_token asks for (how a completions request is tokenized). */
static void test_model_dir(void **st)
{
    (void)st;
    char dir[1200], p[1300];
    snprintf(dir, sizeof dir, "%s/models/mistral-tok-mini", getenv("TOKENMILL_TESTDATA"));
    snprintf(p, sizeof p, "%s/golden.jsonl", dir);
    FILE *f = fopen(p, "r");
    if (!f) { printf("no %s: skipping this check\n", p); return; }
    tm_tokenizer *t = NULL;
    tm_err err;
    assert_int_equal(tm_tokenizer_load(dir, &t, &err), TM_OK);
    assert_true(tm_tokenizer_add_bos(t));
    char *line = NULL;
    size_t lcap = 0, lines = 0;
    ssize_t ll;
    while ((ll = getline(&line, &lcap, f)) > 0) {
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)ll, JSON_ALLOW_NUL, &je), *pr = json_object_get(o, "prompt");
        assert_non_null(o);
        if (json_is_string(pr)) {
            int32_t *want, *got = NULL;
            size_t nw, ng = 0;
            read_ids(json_object_get(o, "prompt_ids"), &want, &nw);
            assert_int_equal(tm_tokenizer_encode(t, json_string_value(pr), json_string_length(pr), tm_tokenizer_add_bos(t), &got, &ng, &err), TM_OK);
            assert_int_equal(ng, nw);
            assert_memory_equal(got, want, nw * sizeof *want);
            free(want);
            free(got);
            lines++;
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    printf("mistral-tok-mini: %zu prompts match prompt_ids\n", lines);
    assert_true(lines > 0);
    tm_tokenizer_destroy(t);
}

/* One tm_tokenizer shared by threads: every golden line, concurrently. */
typedef struct job {
    state *s;
    json_t **lines;
    size_t n;
    int mismatches;
} job;

static void *encode_all(void *arg)
{
    job *j = arg;
    for (size_t i = 0; i < j->n; i++) {
        json_t *o = j->lines[i], *jt = json_object_get(o, "text"), *want = json_object_get(o, "ids");
        const tm_tokenizer *t = j->s->tok[fam_index(json_string_value(json_object_get(o, "tokenizer")))];
        int32_t *ids = NULL;
        size_t n = 0;
        tm_err err;
        int ok = tm_tokenizer_encode(t, json_string_value(jt), json_string_length(jt), 0, &ids, &n, &err) == TM_OK &&
                 n == json_array_size(want);
        for (size_t k = 0; ok && k < n; k++) ok = ids[k] == (int32_t)json_integer_value(json_array_get(want, k));
        j->mismatches += !ok;
        free(ids);
    }
    return NULL;
}

static void test_threads(void **st)
{
    state *s = *st;
    char p[1200];
    snprintf(p, sizeof p, "%s/golden_encode.jsonl", s->dir);
    json_error_t je;
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    json_t **lines = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t ll;
    while ((ll = getline(&line, &lcap, f)) > 0) {
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            lines = realloc(lines, cap * sizeof *lines);
            assert_non_null(lines);
        }
        lines[n] = json_loadb(line, (size_t)ll, JSON_ALLOW_NUL, &je);
        assert_non_null(lines[n]);
        n++;
    }
    free(line);
    fclose(f);
    enum { NT = 4 };
    pthread_t th[NT];
    job jobs[NT];
    for (int i = 0; i < NT; i++) {
        jobs[i] = (job){ s, lines, n, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, encode_all, &jobs[i]), 0);
    }
    int bad = 0;
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        bad += jobs[i].mismatches;
    }
    printf("threads: %d x %zu lines, %d mismatches\n", NT, n, bad);
    for (size_t i = 0; i < n; i++) json_decref(lines[i]);
    free(lines);
    assert_int_equal(bad, 0);
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
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_stream_utf8),
        cmocka_unit_test(test_golden_encode),
        cmocka_unit_test(test_golden_chat),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_model_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
