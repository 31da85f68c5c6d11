/* test_sampler_perf.c — times one tm_sampler_sample() on a 152k vocabulary
 * (Qwen2/3 size, 151936) for greedy, top_p, top_k, min_p, penalties and
 * logprobs, on "peaked" logits (a few tokens far ahead, like a trained
 * model) and "flat" ones (std 2.5 noise, like a random-weight model), and
 * prints the medians. It asserts only behaviour (every draw is in the kept
 * set, top_k=1 == greedy), never a time: machines differ. Run with
 *   ctest -R test_sampler_perf -V
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/sampler.h"
#include "util/timeutil.h"

enum { V = 151936, REPS = 41 };

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static float gauss(uint64_t *x) /* Irwin-Hall(12) - 6: mean 0, std 1 */
{
    float s = 0.0f;
    for (int i = 0; i < 12; i++) s += (float)(rng_next(x) >> 40) / (float)(1 << 24);
    return s - 6.0f;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    const char *name;
    float temperature, top_p, min_p, rep, freq;
    int32_t top_k, top_logprobs;
} pcase;

static void run(tm_sampler *s, const float *l, const char *lname, const pcase *c,
                const int32_t *prev, size_t n_prev, int32_t *kept_ids)
{
    tm_sampling_params p;
    tm_sampling_params_default(&p);
    p.temperature = c->temperature;
    p.top_p = c->top_p;
    p.min_p = c->min_p;
    p.top_k = c->top_k;
    p.repetition_penalty = c->rep;
    p.frequency_penalty = c->freq;
    p.top_logprobs = c->top_logprobs;
    p.logprobs = c->top_logprobs > 0;
    p.seed = 42;
    size_t np = c->rep != 1.0f || c->freq != 0.0f ? n_prev : 0;
    uint64_t ns[REPS];
    tm_sample_result r;
    tm_err err;
    int32_t n_kept = 0;
    assert_int_equal(tm_sampler_kept_set(s, l, &p, prev, np, np / 2, kept_ids, &n_kept, &err), TM_OK);
    assert_true(n_kept >= 1);
    for (int i = 0; i < REPS; i++) {
        uint64_t t0 = tm_now_mono_ns();
        assert_int_equal(tm_sampler_sample(s, l, &p, 0, (uint64_t)i, prev, np, np / 2, &r, &err),
                         TM_OK);
        ns[i] = tm_now_mono_ns() - t0;
        /* the draw is one of the kept ids */
        int ok = 0;
        for (int32_t j = 0; j < n_kept && !ok; j++) ok = kept_ids[j] == r.token;
        assert_true(ok);
    }
    qsort(ns, REPS, sizeof ns[0], cmp_u64);
    printf("sampler %-6s %-34s kept %6d  median %8.1f us  min %8.1f us\n", lname, c->name,
           (int)n_kept, ns[REPS / 2] / 1e3, ns[0] / 1e3);
}

static void test_perf(void **state)
{
    (void)state;
    float *peaked = malloc(V * sizeof *peaked), *flat = malloc(V * sizeof *flat);
    int32_t *ids = malloc(V * sizeof *ids);
    int32_t prev[4096];
    uint64_t x = 0x5eed;
    for (int i = 0; i < V; i++) {
        flat[i] = 2.5f * gauss(&x);
        peaked[i] = flat[i];
    }
    for (int i = 0; i < 8; i++) peaked[rng_next(&x) % V] = 22.0f + (float)i; /* a few leaders */
    for (int i = 0; i < 4096; i++) prev[i] = (int32_t)(rng_next(&x) % V);
    tm_sampler *s = NULL;
    tm_err err;
    assert_int_equal(tm_sampler_create(V, &s, &err), TM_OK);
    const pcase cases[] = {
        {"greedy", 0.0f, 1.0f, 0.0f, 1.0f, 0.0f, 0, 0},
        {"greedy+penalties(4096 prev)", 0.0f, 1.0f, 0.0f, 1.1f, 0.5f, 0, 0},
        {"T=1 (no filter)", 1.0f, 1.0f, 0.0f, 1.0f, 0.0f, 0, 0},
        {"T=0.7 top_p=0.9", 0.7f, 0.9f, 0.0f, 1.0f, 0.0f, 0, 0},
        {"T=1 top_p=0.9", 1.0f, 0.9f, 0.0f, 1.0f, 0.0f, 0, 0},
        {"T=1 top_k=50", 1.0f, 1.0f, 0.0f, 1.0f, 0.0f, 50, 0},
        {"T=1 top_k=50 top_p=0.95", 1.0f, 0.95f, 0.0f, 1.0f, 0.0f, 50, 0},
        {"T=1 min_p=0.05", 1.0f, 1.0f, 0.05f, 1.0f, 0.0f, 0, 0},
        {"T=0.7 top_p=0.9 +top_logprobs=20", 0.7f, 0.9f, 0.0f, 1.0f, 0.0f, 0, 20},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        run(s, peaked, "peaked", &cases[c], prev, 4096, ids);
        run(s, flat, "flat", &cases[c], prev, 4096, ids);
    }
    tm_sampler_destroy(s);
    free(peaked);
    free(flat);
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_perf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
