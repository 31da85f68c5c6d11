/* test_sampler_bias.c — logit_bias and min_tokens in the CPU sampler
 * (sampler.h step 0) and the stop checks (stop.h).
 *
 * +100 forces a token (greedy and sampled), -100 bans the argmax; bias is
 * added before the repetition penalty (vLLM's order); min_tokens bans eos
 * and stop ids while fewer tokens are generated, then lets them through;
 * tm_stop_check_token does not stop before min_tokens, stop strings do not
 * match before it (a string that starts earlier and ends later does);
 * params without the new fields give the same bits as before (an empty
 * bias list changes nothing); bad values are refused by the range check.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "engine/sampler.h"
#include "engine/stop.h"

#define V 1000

static void fill(float *l, uint32_t seed)
{
    for (int i = 0; i < V; i++) {
        seed = seed * 1664525u + 1013904223u;
        l[i] = (float)((seed >> 8) % 10000) / 1000.0f - 5.0f; /* [-5, 5) */
    }
}

static int32_t draw(tm_sampler *s, const float *l, const tm_sampling_params *p, uint64_t i, const int32_t *prev,
                    size_t n_prev, size_t n_prompt)
{
    tm_sample_result r;
    tm_err err;
    assert_int_equal(tm_sampler_sample(s, l, p, 0, i, prev, n_prev, n_prompt, &r, &err), TM_OK);
    return r.token;
}

static void test_bias_forces_and_bans(void **st)
{
    (void)st;
    static float l[V];
    fill(l, 7);
    l[5] = 9.0f; /* the argmax */
    tm_sampler *s = NULL;
    tm_err err;
    assert_int_equal(tm_sampler_create(V, &s, &err), TM_OK);
    tm_sampling_params p;
    tm_sampling_params_default(&p);
    p.seed = 42;
    p.temperature = 0.0f;
    assert_int_equal(draw(s, l, &p, 0, NULL, 0, 0), 5);
    p.n_bias = 1;
    p.bias_id[0] = 123;
    p.bias[0] = 100.0f;
    assert_int_equal(draw(s, l, &p, 0, NULL, 0, 0), 123);
    p.temperature = 1.0f;
    for (uint64_t i = 0; i < 2000; i++) assert_int_equal(draw(s, l, &p, i, NULL, 0, 0), 123);
    /* -100 on the argmax: never drawn, greedy or sampled */
    p.bias_id[0] = 5;
    p.bias[0] = -100.0f;
    p.temperature = 0.0f;
    assert_int_not_equal(draw(s, l, &p, 0, NULL, 0, 0), 5);
    p.temperature = 1.5f;
    int hits = 0;
    for (uint64_t i = 0; i < 2000; i++) hits += draw(s, l, &p, i, NULL, 0, 0) == 5;
    assert_int_equal(hits, 0);
    /* without the bias the argmax is drawn often at this temperature */
    p.n_bias = 0;
    for (uint64_t i = 0; i < 2000; i++) hits += draw(s, l, &p, i, NULL, 0, 0) == 5;
    assert_true(hits > 20);
    tm_sampler_destroy(s);
}

static void test_bias_before_penalty(void **st)
{
    (void)st;
    static float l[V], out[V];
    fill(l, 3);
    l[10] = 2.0f;
    l[11] = -2.0f;
    tm_sampler *s = NULL;
    tm_err err;
    assert_int_equal(tm_sampler_create(V, &s, &err), TM_OK);
    tm_sampling_params p;
    tm_sampling_params_default(&p);
    p.repetition_penalty = 1.5f;
    p.n_bias = 3;
    p.bias_id[0] = 10, p.bias[0] = 1.0f;
    p.bias_id[1] = 11, p.bias[1] = 0.5f;
    p.bias_id[2] = 12, p.bias[2] = -3.0f; /* not in prev: bias only */
    int32_t prev[] = {10, 11, 10};
    assert_int_equal(tm_sampler_penalize(s, l, &p, prev, 3, 1, out, &err), TM_OK);
    assert_true(out[10] == (2.0f + 1.0f) / 1.5f);
    assert_true(out[11] == (-2.0f + 0.5f) * 1.5f);
    assert_true(out[12] == l[12] - 3.0f);
    for (int i = 13; i < V; i++) assert_true(out[i] == l[i]);
    tm_sampler_destroy(s);
}

static void test_min_tokens_ban(void **st)
{
    (void)st;
    static float l[V];
    fill(l, 11);
    l[2] = 20.0f; /* eos: the argmax */
    l[3] = 19.0f; /* a stop id: second */
    tm_sampler *s = NULL;
    tm_err err;
    assert_int_equal(tm_sampler_create(V, &s, &err), TM_OK);
    tm_sampling_params p;
    tm_sampling_params_default(&p);
    p.seed = 9;
    p.min_tokens = 3;
    p.n_eos_ids = 1;
    p.eos_ids[0] = 2;
    p.n_stop_ids = 1;
    p.stop_ids[0] = 3;
    int32_t prev[8] = {100, 101, 7, 7, 7, 7, 7, 7}; /* 2 prompt tokens, then generated ones */
    for (int temp = 0; temp < 2; temp++) {
        p.temperature = temp ? 1.0f : 0.0f;
        for (size_t gen = 0; gen < 3; gen++)
            for (uint64_t i = 0; i < (temp ? 500u : 1u); i++) {
                int32_t t = draw(s, l, &p, i, prev, 2 + gen, 2);
                assert_true(t != 2 && t != 3);
            }
        /* the 4th token may be eos again */
        int32_t t4 = draw(s, l, &p, 0, prev, 2 + 3, 2);
        assert_true(temp ? (t4 == 2 || t4 == 3) : t4 == 2);
    }
    /* ignore_eos does not lift the ban (vLLM bans all stop ids) */
    p.temperature = 0.0f;
    p.ignore_eos = 1;
    assert_int_not_equal(draw(s, l, &p, 0, prev, 2, 2), 2);
    tm_sampler_destroy(s);
}

static void test_unchanged_without_fields(void **st)
{
    (void)st;
    static float l[V];
    fill(l, 5);
    tm_sampler *s = NULL;
    tm_err err;
    assert_int_equal(tm_sampler_create(V, &s, &err), TM_OK);
    tm_sampling_params a, b;
    tm_sampling_params_default(&a);
    a.temperature = 0.8f;
    a.top_p = 0.9f;
    a.presence_penalty = 0.5f;
    a.seed = 77;
    a.logprobs = 1;
    a.top_logprobs = 5;
    b = a;
    b.min_tokens = 2; /* no eos / stop ids: nothing to ban */
    int32_t prev[] = {1, 2, 3, 4};
    for (uint64_t i = 0; i < 200; i++) {
        tm_sample_result ra, rb;
        assert_int_equal(tm_sampler_sample(s, l, &a, 0, i, prev, 4, 2, &ra, &err), TM_OK);
        assert_int_equal(tm_sampler_sample(s, l, &b, 0, i, prev, 4, 2, &rb, &err), TM_OK);
        assert_int_equal(ra.token, rb.token);
        assert_memory_equal(&ra.logprob, &rb.logprob, sizeof ra.logprob);
    }
    tm_sampler_destroy(s);
}

static void test_params_check(void **st)
{
    (void)st;
    tm_sampling_params p;
    tm_err err;
    tm_sampling_params_default(&p);
    p.n_bias = 1;
    p.bias_id[0] = V;
    p.bias[0] = 1.0f;
    assert_int_equal(tm_sampling_params_check(&p, V, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "not in the vocabulary"));
    p.bias_id[0] = V - 1;
    assert_int_equal(tm_sampling_params_check(&p, V, &err), TM_OK);
    p.bias[0] = 100.5f;
    assert_int_equal(tm_sampling_params_check(&p, V, &err), TM_ERR_INPUT);
    p.bias[0] = NAN;
    assert_int_equal(tm_sampling_params_check(&p, V, &err), TM_ERR_INPUT);
    p.n_bias = 0;
    p.min_tokens = -1;
    assert_int_equal(tm_sampling_params_check(&p, V, &err), TM_ERR_INPUT);
    p.min_tokens = 5;
    p.max_tokens = 4;
    assert_int_equal(tm_sampling_params_check(&p, V, &err), TM_ERR_INPUT);
    assert_int_equal(tm_sampler_bias_key("0"), 0);
    assert_int_equal(tm_sampler_bias_key("2147483647"), 2147483647);
    assert_int_equal(tm_sampler_bias_key("2147483648"), -1);
    assert_int_equal(tm_sampler_bias_key("01"), -1);
    assert_int_equal(tm_sampler_bias_key("-1"), -1);
    assert_int_equal(tm_sampler_bias_key(" 1"), -1);
    assert_int_equal(tm_sampler_bias_key(""), -1);
}

static void test_stop_before_min_tokens(void **st)
{
    (void)st;
    tm_sampling_params p;
    tm_sampling_params_default(&p);
    p.min_tokens = 2;
    p.max_tokens = 5;
    p.n_stop_ids = 1;
    p.stop_ids[0] = 9;
    int32_t eos = 2;
    assert_int_equal(tm_stop_check_token(&p, &eos, 1, 2, 1), TM_FINISH_NONE);
    assert_int_equal(tm_stop_check_token(&p, &eos, 1, 9, 2), TM_FINISH_NONE);
    assert_int_equal(tm_stop_check_token(&p, &eos, 1, 9, 3), TM_FINISH_STOP);
    assert_int_equal(tm_stop_check_token(&p, &eos, 1, 2, 3), TM_FINISH_STOP);
    /* stop strings: tokens "ab" "c" "ab" with min_tokens 2: the first "ab" is
     * inside the first 2 tokens, so only the second one stops */
    memcpy(p.stop[0], "ab", 2);
    p.stop_len[0] = 2;
    p.n_stop = 1;
    tm_stop *s = NULL;
    tm_err err;
    tm_stop_result r;
    assert_int_equal(tm_stop_create_from_params(&p, &s, &err), TM_OK);
    const char *pieces[] = {"ab", "c", "ab"};
    int hit = 0;
    for (int i = 0; i < 3 && !hit; i++) {
        tm_stop_note_token(s);
        hit = tm_stop_feed(s, pieces[i], strlen(pieces[i]), &r);
        assert_int_equal(hit, i == 2);
    }
    assert_int_equal(r.cut, 3);
    /* a stop string that starts in the first min_tokens and ends after them matches */
    tm_stop_reset(s);
    tm_stop_note_token(s);
    assert_int_equal(tm_stop_feed(s, "xa", 2, NULL), 0);
    tm_stop_note_token(s);
    assert_int_equal(tm_stop_feed(s, "y", 1, NULL), 0);
    tm_stop_note_token(s);
    assert_int_equal(tm_stop_feed(s, "a", 1, NULL), 0);
    tm_stop_note_token(s);
    assert_int_equal(tm_stop_feed(s, "b", 1, &r), 1);
    assert_int_equal(r.cut, 3);
    tm_stop_reset(s);
    tm_stop_note_token(s);
    assert_int_equal(tm_stop_feed(s, "a", 1, NULL), 0);
    tm_stop_note_token(s);
    assert_int_equal(tm_stop_feed(s, "x", 1, NULL), 0);
    tm_stop_note_token(s);
    tm_stop_destroy(s);
    /* without min_tokens nothing changes (no token notes needed) */
    p.min_tokens = 0;
    assert_int_equal(tm_stop_create_from_params(&p, &s, &err), TM_OK);
    assert_int_equal(tm_stop_feed(s, "xab", 3, &r), 1);
    assert_int_equal(r.cut, 1);
    tm_stop_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bias_forces_and_bans),
        cmocka_unit_test(test_bias_before_penalty),
        cmocka_unit_test(test_min_tokens_ban),
        cmocka_unit_test(test_unchanged_without_fields),
        cmocka_unit_test(test_params_check),
        cmocka_unit_test(test_stop_before_min_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
