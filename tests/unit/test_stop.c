/* test_stop.c — the streaming stop-string matcher and the finish check:
 * a stop spanning token boundaries, hold-back, earliest stop wins, a stop at
 * the first byte, multibyte UTF-8 stops, and a randomized comparison with a
 * naive reference over random texts split at random places (the result must
 * not depend on the split; safe never decreases and never passes the cut).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "engine/stop.h"

static tm_stop *make(int n, const char *const *strs)
{
    size_t lens[TM_STOP_MAX];
    for (int i = 0; i < n; i++) lens[i] = strlen(strs[i]);
    tm_stop *s = NULL;
    tm_err err;
    assert_int_equal(tm_stop_create(strs, lens, n, &s, &err), TM_OK);
    return s;
}

static int feeds(tm_stop *s, const char *str, tm_stop_result *r)
{
    return tm_stop_feed(s, str, strlen(str), r);
}

static void test_across_tokens(void **state)
{
    (void)state;
    const char *stops[] = {"lo W"};
    tm_stop *s = make(1, stops);
    tm_stop_result r;
    assert_int_equal(feeds(s, "Hel", &r), 0);
    assert_int_equal(r.total, 3);
    assert_int_equal(r.hold, 1); /* "l" may start "lo W" */
    assert_int_equal(r.safe, 2);
    assert_int_equal(feeds(s, "lo Wor", &r), 1);
    assert_int_equal(r.matched, 1);
    assert_int_equal(r.which, 0);
    assert_int_equal(r.cut, 3); /* output "Hel" */
    assert_int_equal(r.safe, 3);
    /* further pieces are ignored */
    assert_int_equal(feeds(s, "ld", &r), 1);
    assert_int_equal(r.cut, 3);
    tm_stop_destroy(s);
}

static void test_hold_back(void **state)
{
    (void)state;
    const char *stops[] = {"</s>", "END"};
    tm_stop *s = make(2, stops);
    tm_stop_result r;
    feeds(s, "abc<", &r);
    assert_int_equal(r.hold, 1);
    assert_int_equal(r.safe, 3);
    feeds(s, "/", &r);
    assert_int_equal(r.hold, 2);
    assert_int_equal(r.safe, 3);
    feeds(s, "x", &r); /* "</x" cannot start a stop any more */
    assert_int_equal(r.hold, 0);
    assert_int_equal(r.safe, 6);
    feeds(s, "EN", &r);
    assert_int_equal(r.hold, 2);
    assert_int_equal(r.safe, 6);
    assert_int_equal(feeds(s, "", &r), 0); /* empty piece changes nothing */
    assert_int_equal(r.safe, 6);
    assert_int_equal(feeds(s, "D!", &r), 1);
    assert_int_equal(r.which, 1);
    assert_int_equal(r.cut, 6);
    /* reset forgets the text, keeps the strings */
    tm_stop_reset(s);
    tm_stop_state(s, &r);
    assert_int_equal(r.total, 0);
    assert_int_equal(r.matched, 0);
    assert_int_equal(feeds(s, "</s>", &r), 1);
    assert_int_equal(r.cut, 0);
    assert_int_equal(r.which, 0);
    tm_stop_destroy(s);
}

static void test_earliest_wins(void **state)
{
    (void)state;
    /* "o W" completes first (byte 7) although "World" is listed first */
    const char *a[] = {"World", "o W"};
    tm_stop *s = make(2, a);
    tm_stop_result r;
    assert_int_equal(feeds(s, "Hello World", &r), 1);
    assert_int_equal(r.which, 1);
    assert_int_equal(r.cut, 4);
    assert_int_equal(r.total, 7); /* scanning stopped at the match */
    tm_stop_destroy(s);
    /* both complete on the same byte: the one starting earlier wins */
    const char *b[] = {"bc", "abc"};
    s = make(2, b);
    assert_int_equal(feeds(s, "xabcd", &r), 1);
    assert_int_equal(r.which, 1);
    assert_int_equal(r.cut, 1);
    tm_stop_destroy(s);
}

static void test_first_byte(void **state)
{
    (void)state;
    const char *a[] = {"H"};
    tm_stop *s = make(1, a);
    tm_stop_result r;
    assert_int_equal(feeds(s, "Hello", &r), 1);
    assert_int_equal(r.cut, 0);
    assert_int_equal(r.safe, 0);
    tm_stop_destroy(s);
}

static void test_utf8(void **state)
{
    (void)state;
    const char *a[] = {"世界", "é!"};
    tm_stop *s = make(2, a);
    tm_stop_result r;
    const char *text = "你好世界!"; /* 3+3+3+3+1 bytes */
    /* fed one byte at a time, so characters are split across pieces */
    int m = 0;
    uint64_t last_safe = 0;
    for (size_t i = 0; i < strlen(text) && !m; i++) {
        m = tm_stop_feed(s, text + i, 1, &r);
        assert_true(r.safe >= last_safe);
        last_safe = r.safe;
    }
    assert_int_equal(m, 1);
    assert_int_equal(r.which, 0);
    assert_int_equal(r.cut, 6);
    tm_stop_destroy(s);
    /* the lead byte alone is held, a different continuation releases it */
    s = make(2, a);
    feeds(s, "caf\xc3", &r);
    assert_int_equal(r.hold, 1);
    feeds(s, "\xa9", &r); /* "é" */
    assert_int_equal(r.hold, 2);
    assert_int_equal(feeds(s, "!", &r), 1);
    assert_int_equal(r.which, 1);
    assert_int_equal(r.cut, 3);
    tm_stop_destroy(s);
}

static void test_no_stops_and_errors(void **state)
{
    (void)state;
    tm_stop *s = NULL;
    tm_err err;
    tm_stop_result r;
    assert_int_equal(tm_stop_create(NULL, NULL, 0, &s, &err), TM_OK);
    assert_int_equal(feeds(s, "anything at all", &r), 0);
    assert_int_equal(r.safe, 15);
    assert_int_equal(r.hold, 0);
    tm_stop_destroy(s);
    tm_stop_destroy(NULL);

    const char *e[] = {""};
    size_t l0 = 0;
    assert_int_equal(tm_stop_create(e, &l0, 1, &s, &err), TM_ERR_INPUT);
    assert_null(s);
    assert_non_null(strstr(err.msg, "stop[0]"));
    char big[TM_STOP_MAX_BYTES + 1];
    memset(big, 'a', sizeof big);
    const char *b[] = {big};
    size_t lb = sizeof big;
    assert_int_equal(tm_stop_create(b, &lb, 1, &s, &err), TM_ERR_INPUT);
    lb = TM_STOP_MAX_BYTES; /* exactly the limit is fine */
    assert_int_equal(tm_stop_create(b, &lb, 1, &s, &err), TM_OK);
    tm_stop_destroy(s);
    const char *five[] = {"a", "b", "c", "d", "e"};
    size_t l5[] = {1, 1, 1, 1, 1};
    assert_int_equal(tm_stop_create(five, l5, 5, &s, &err), TM_ERR_INPUT);

    /* from sampling params */
    tm_sampling_params p;
    tm_sampling_params_default(&p);
    assert_int_equal(tm_sampling_params_add_stop(&p, "\n\n", 2, &err), TM_OK);
    assert_int_equal(tm_sampling_params_add_stop(&p, "x\0y", 3, &err), TM_OK); /* NUL inside */
    assert_int_equal(tm_stop_create_from_params(&p, &s, &err), TM_OK);
    assert_int_equal(tm_stop_feed(s, "ax\0yz", 5, &r), 1);
    assert_int_equal(r.which, 1);
    assert_int_equal(r.cut, 1);
    tm_stop_destroy(s);
}

/* naive reference: first end offset where some stop ends; earliest start */
static void reference(const char *t, size_t n, const char *const *st, int ns, int *matched,
                      uint64_t *cut, int *which)
{
    *matched = 0;
    for (size_t e = 1; e <= n; e++) {
        int best = -1;
        for (int i = 0; i < ns; i++) {
            size_t l = strlen(st[i]);
            if (l <= e && memcmp(t + e - l, st[i], l) == 0)
                if (best < 0 || l > strlen(st[best])) best = i;
        }
        if (best >= 0) {
            *matched = 1;
            *which = best;
            *cut = e - strlen(st[best]);
            return;
        }
    }
}

/* longest suffix of t[0..n) that is a proper prefix of some stop */
static size_t ref_hold(const char *t, size_t n, const char *const *st, int ns)
{
    size_t h = 0;
    for (int i = 0; i < ns; i++) {
        size_t l = strlen(st[i]);
        for (size_t k = l - 1; k > h; k--)
            if (k <= n && memcmp(t + n - k, st[i], k) == 0) {
                h = k;
                break;
            }
    }
    return h;
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void test_random_vs_reference(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    char stops[TM_STOP_MAX][8];
    const char *sp[TM_STOP_MAX];
    char text[200];
    int n_matched = 0;
    for (int iter = 0; iter < 3000; iter++) {
        int ns = 1 + (int)(rng_next(&x) % TM_STOP_MAX);
        for (int i = 0; i < ns; i++) {
            int l = 1 + (int)(rng_next(&x) % 6);
            for (int j = 0; j < l; j++) stops[i][j] = (char)('a' + rng_next(&x) % 3);
            stops[i][l] = 0;
            sp[i] = stops[i];
        }
        size_t n = 1 + rng_next(&x) % 60;
        for (size_t j = 0; j < n; j++) text[j] = (char)('a' + rng_next(&x) % 3);
        int rm = 0, rw = -1;
        uint64_t rc = 0;
        reference(text, n, sp, ns, &rm, &rc, &rw);

        tm_stop *s = make(ns, sp);
        tm_stop_result r;
        size_t off = 0;
        uint64_t last_safe = 0;
        int m = 0;
        while (off < n && !m) {
            size_t piece = 1 + rng_next(&x) % 7;
            if (piece > n - off) piece = n - off;
            m = tm_stop_feed(s, text + off, piece, &r);
            off += piece;
            assert_true(r.safe >= last_safe);
            last_safe = r.safe;
            if (!m) {
                assert_int_equal(r.total, off);
                assert_int_equal(r.hold, ref_hold(text, off, sp, ns));
                /* what was declared safe never turns out to be a stop */
                if (rm) assert_true(r.safe <= rc);
            }
        }
        assert_int_equal(m, rm);
        if (rm) {
            n_matched++;
            assert_int_equal(r.cut, rc);
            assert_int_equal(r.which, rw);
            assert_int_equal(r.safe, rc);
        } else {
            assert_int_equal(r.total, n);
        }
        tm_stop_destroy(s);
    }
    assert_true(n_matched > 100); /* the test exercised matches */
}

static void test_check_token(void **state)
{
    (void)state;
    tm_sampling_params p;
    tm_sampling_params_default(&p);
    const int32_t eos[] = {2, 7};
    assert_int_equal(tm_stop_check_token(&p, eos, 2, 7, 1), TM_FINISH_STOP);
    assert_int_equal(tm_stop_check_token(&p, eos, 2, 5, 1000000), TM_FINISH_NONE); /* no limit */
    p.max_tokens = 3;
    assert_int_equal(tm_stop_check_token(&p, eos, 2, 5, 2), TM_FINISH_NONE);
    assert_int_equal(tm_stop_check_token(&p, eos, 2, 5, 3), TM_FINISH_LENGTH);
    assert_int_equal(tm_stop_check_token(&p, eos, 2, 2, 3), TM_FINISH_STOP); /* stop wins */
    p.ignore_eos = 1;
    assert_int_equal(tm_stop_check_token(&p, eos, 2, 2, 1), TM_FINISH_NONE);
    p.stop_ids[0] = 9;
    p.n_stop_ids = 1;
    assert_int_equal(tm_stop_check_token(&p, eos, 2, 9, 1), TM_FINISH_STOP);
    assert_int_equal(tm_stop_check_token(&p, NULL, 0, 8, 1), TM_FINISH_NONE);
    assert_string_equal(tm_finish_reason_str(TM_FINISH_STOP), "stop");
    assert_string_equal(tm_finish_reason_str(TM_FINISH_LENGTH), "length");
    assert_null(tm_finish_reason_str(TM_FINISH_NONE));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_across_tokens),
        cmocka_unit_test(test_hold_back),
        cmocka_unit_test(test_earliest_wins),
        cmocka_unit_test(test_first_byte),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_no_stops_and_errors),
        cmocka_unit_test(test_random_vs_reference),
        cmocka_unit_test(test_check_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
