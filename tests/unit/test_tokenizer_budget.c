/* test_tokenizer_budget.c — pre-tokenizer regex work is bounded per request
 * (issue 19 item 8): a pattern that is quadratic without backtracking
 * ("a+b|a": each one-byte match scans the rest of the run) fails the request
 * with a clear error instead of taking minutes, while linear patterns on long
 * text, matches longer than the first window and windows without a match
 * give the same pieces as before. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "tokenizer/tokenizer.h"

static tm_tokenizer *load_split(const char *regex)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]},"
             "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"%s\"},\"behavior\":\"Isolated\"}}",
             regex);
    tm_tokenizer *t = NULL;
    tm_err err;
    tm_status st = tm_tokenizer_load_json(json, strlen(json), NULL, 0, &t, &err);
    if (st) fprintf(stderr, "load: %s\n", err.msg);
    assert_int_equal(st, TM_OK);
    return t;
}

static char *repeat(const char *unit, size_t times, size_t *len)
{
    size_t u = strlen(unit);
    char *s = malloc(u * times + 2);
    assert_non_null(s);
    for (size_t i = 0; i < times; i++) memcpy(s + i * u, unit, u);
    *len = u * times;
    s[*len] = 0;
    return s;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_quadratic_refused(void **state)
{
    (void)state;
    tm_tokenizer *t = load_split("a+b|a");
    size_t len;
    char *text = repeat("a", 128 * 1024, &len);
    int32_t *ids = NULL;
    size_t n = 0;
    tm_err err;
    double t0 = now_s();
    assert_int_equal(tm_tokenizer_encode(t, text, len, 0, &ids, &n, &err), TM_ERR_INPUT);
    printf("quadratic pattern, %zu bytes: refused after %.2f s: %s\n", len, now_s() - t0, err.msg);
    assert_non_null(strstr(err.msg, "too slow"));
    assert_null(ids);
    /* the same pattern on text where it is linear is fine: one "ab" per piece */
    free(text);
    text = repeat("ab", 128 * 1024, &len);
    assert_int_equal(tm_tokenizer_encode(t, text, len, 0, &ids, &n, &err), TM_OK);
    assert_int_equal(n, 128 * 1024);
    for (size_t i = 0; i < n; i++) assert_int_equal(ids[i], 2);
    free(ids);
    free(text);
    tm_tokenizer_destroy(t);
}

static void test_windows_exact(void **state)
{
    (void)state;
    tm_err err;
    int32_t *ids = NULL;
    size_t n = 0, len;
    /* one match far longer than the first window: one piece */
    tm_tokenizer *t = load_split("a+");
    char *text = repeat("a", 100000, &len);
    text[len++] = 'b';
    text[len] = 0;
    assert_int_equal(tm_tokenizer_encode(t, text, len, 0, &ids, &n, &err), TM_OK);
    assert_int_equal(n, 100001); /* no "a a" merge: one id per 'a', then the gap "b" */
    assert_int_equal(ids[99999], 0);
    assert_int_equal(ids[100000], 1);
    free(ids);
    tm_tokenizer_destroy(t);
    /* no match in many windows, then one: the gap and the match */
    t = load_split("b");
    assert_int_equal(tm_tokenizer_encode(t, text, len, 0, &ids, &n, &err), TM_OK);
    assert_int_equal(n, 100001);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[100000], 1);
    free(ids);
    tm_tokenizer_destroy(t);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quadratic_refused),
        cmocka_unit_test(test_windows_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
