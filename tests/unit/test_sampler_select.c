/* test_sampler_select.c — the fast sampler's selection and draw against a
 * straightforward reference kept here (full sort by (z desc, id asc), top_k
 * prefix, top_p cumulative mass in rank order, min_p, then the documented
 * block-sum draw of sampler.h step 4), on edge cases: ties across a cut,
 * all -inf but one, top_p = 1, top_k > vocab / = vocab / = vocab - 1,
 * NaN logits (they count as -inf; all NaN is refused), min_p = 1; vocab
 * sizes around the 8-lane and 1024-id block edges. Also: tm_sampler_exp
 * within 2 ulp of exp over its domain, and the AVX2 and portable paths
 * giving the same bits (tokens, logprobs, kept sets) on random rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/philox.h"
#include "engine/sampler.h"

static uint64_t rng(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static float frand(uint64_t *x) { return (float)(rng(x) >> 40) / (float)(1 << 24); }

typedef struct ref_item {
    float z;
    int32_t id;
} ref_item;

static int cmp_rank(const void *a, const void *b)
{
    const ref_item *x = a, *y = b;
    if (x->z != y->z) return x->z > y->z ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The reference kept set (ascending ids) and the weights w[vocab]. Returns
 * its size; -1 when every logit is -inf / NaN. Greedy params: the argmax. */
static int32_t ref_kept(const float *l, int32_t V, const tm_sampling_params *p, int32_t *ids, float *w)
{
    ref_item *a = malloc((size_t)V * sizeof *a);
    float zmax = -INFINITY;
    int32_t imax = -1;
    int greedy = p->temperature < TM_SAMPLER_GREEDY_EPS || p->top_k == 1;
    float invT = greedy ? 1.0f : 1.0f / p->temperature;
    for (int32_t i = 0; i < V; i++) {
        float v = l[i] != l[i] ? -INFINITY : l[i];
        a[i] = (ref_item){v * invT, i};
        if (a[i].z > zmax) {
            zmax = a[i].z;
            imax = i;
        }
    }
    if (imax < 0) {
        free(a);
        return -1;
    }
    if (greedy || isinf(zmax)) {
        ids[0] = imax;
        free(a);
        return 1;
    }
    for (int32_t i = 0; i < V; i++) w[i] = tm_sampler_exp(a[i].z - zmax);
    qsort(a, (size_t)V, sizeof *a, cmp_rank);
    int32_t n = V;
    if (p->top_k > 1 && p->top_k < V) n = p->top_k;
    if (p->top_p < 1.0f) {
        double Z = 0.0;
        for (int32_t i = 0; i < n; i++) Z += w[a[i].id];
        double need = (double)p->top_p * Z, cum = 0.0;
        for (int32_t i = 0; i < n; i++) {
            cum += w[a[i].id];
            if (cum >= need) {
                n = i + 1;
                break;
            }
        }
    }
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++)
        if (w[a[i].id] > 0.0f && w[a[i].id] >= p->min_p) ids[m++] = a[i].id;
    qsort(ids, (size_t)m, sizeof *ids, cmp_i32);
    free(a);
    return m;
}

/* sampler.h step 4, written out for a kept set. */
static int32_t ref_draw(const int32_t *ids, int32_t n, const float *w, int32_t V, double u)
{
    enum { B = 1024 };
    int32_t nb = (V + B - 1) / B, v8 = V & ~7;
    double *bs = calloc((size_t)nb, sizeof *bs);
    for (int32_t b = 0; b < nb; b++) {
        double l[8] = {0}, tail = 0.0;
        int tails = 0;
        for (int32_t j = 0; j < n; j++) {
            int32_t id = ids[j];
            if (id / B != b) continue;
            if (id < v8) {
                l[id & 7] += w[id];
            } else {
                if (!tails) tail = ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
                tails = 1;
                tail += w[id];
            }
        }
        bs[b] = tails ? tail : ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
    }
    double total = 0.0;
    for (int32_t b = 0; b < nb; b++) total += bs[b];
    double target = u * total, pre = 0.0;
    int32_t tok = n > 0 ? ids[n - 1] : -1;
    for (int32_t b = 0; b < nb; b++) {
        if (pre + bs[b] > target) {
            double cum = pre;
            for (int32_t j = 0; j < n; j++) {
                if (ids[j] / B != b) continue;
                cum += w[ids[j]];
                tok = ids[j];
                if (cum > target) break;
            }
            break;
        }
        pre += bs[b];
    }
    free(bs);
    return tok;
}

/* kept set and 40 draws of s against the reference, on both paths */
static void check_row(tm_sampler *s, const float *l, int32_t V, const tm_sampling_params *p)
{
    int32_t *want = malloc((size_t)V * sizeof *want), *got = malloc((size_t)V * sizeof *got);
    float *w = malloc((size_t)V * sizeof *w);
    int32_t m = ref_kept(l, V, p, want, w);
    for (int portable = 0; portable < 2; portable++) {
        tm_sampler_set_portable(s, portable);
        tm_err err;
        int32_t n = -1;
        tm_status st = tm_sampler_kept_set(s, l, p, NULL, 0, 0, got, &n, &err);
        if (m < 0) {
            assert_int_equal(st, TM_ERR_INPUT);
            continue;
        }
        assert_int_equal(st, TM_OK);
        assert_int_equal(n, m);
        assert_memory_equal(got, want, (size_t)n * sizeof *got);
        for (uint64_t i = 0; i < 40; i++) {
            tm_sample_result r;
            assert_int_equal(tm_sampler_sample(s, l, p, 3, i, NULL, 0, 0, &r, &err), TM_OK);
            int32_t t = m == 1 ? want[0] : ref_draw(want, m, w, V, tm_philox_uniform(p->seed, 3, i));
            assert_int_equal(r.token, t);
        }
    }
    tm_sampler_set_portable(s, 0);
    free(want);
    free(got);
    free(w);
}

static tm_sampling_params params(float t, int32_t k, float top_p, float min_p)
{
    tm_sampling_params p;
    tm_sampling_params_default(&p);
    p.temperature = t;
    p.top_k = k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.seed = 99;
    return p;
}

static void test_exp(void **state)
{
    (void)state;
    assert_true(tm_sampler_exp(0.0f) == 1.0f);
    assert_true(tm_sampler_exp(-0.0f) == 1.0f);
    assert_true(tm_sampler_exp(-INFINITY) == 0.0f);
    assert_true(tm_sampler_exp(NAN) == 0.0f);
    assert_true(tm_sampler_exp(-87.5f) == 0.0f);
    assert_true(tm_sampler_exp(-87.0f) > 0.0f);
    int maxulp = 0;
    for (float x = -87.0f; x <= 0.0f; x += 0.00037f) {
        float a = tm_sampler_exp(x), b = (float)exp((double)x);
        int32_t ia, ib;
        memcpy(&ia, &a, 4);
        memcpy(&ib, &b, 4);
        int d = abs(ia - ib);
        if (d > maxulp) maxulp = d;
    }
    assert_true(maxulp <= 2);
}

static void test_edges(void **state)
{
    (void)state;
    const int32_t vocabs[] = {1, 7, 8, 9, 1023, 1024, 1031, 3000};
    uint64_t x = 77;
    for (size_t vi = 0; vi < sizeof vocabs / sizeof vocabs[0]; vi++) {
        int32_t V = vocabs[vi];
        tm_sampler *s = NULL;
        tm_err err;
        assert_int_equal(tm_sampler_create(V, &s, &err), TM_OK);
        float *l = malloc((size_t)V * sizeof *l);
        for (int shape = 0; shape < 6; shape++) {
            for (int32_t i = 0; i < V; i++) {
                switch (shape) {
                case 0: l[i] = 4.0f * frand(&x); break;                 /* random */
                case 1: l[i] = 1.5f; break;                            /* all tied */
                case 2: l[i] = (float)(int)(4.0f * frand(&x)); break;  /* tie groups */
                case 3: l[i] = i == V / 2 ? 0.5f : -INFINITY; break;   /* one finite */
                case 4: l[i] = i % 3 == 0 ? NAN : 3.0f * frand(&x); break;
                default: l[i] = NAN; break;                            /* all NaN: refused */
                }
            }
            const tm_sampling_params ps[] = {
                params(1.0f, 0, 1.0f, 0.0f),   params(0.7f, 0, 0.5f, 0.0f),  params(1.0f, 0, 1.0f, 1.0f),
                params(1.0f, 3, 1.0f, 0.0f),   params(1.0f, V, 1.0f, 0.0f),  params(1.0f, V + 5, 1.0f, 0.0f),
                params(1.0f, V > 1 ? V - 1 : 0, 0.9f, 0.0f),             params(1.3f, 200, 0.8f, 0.05f),
                params(0.0f, 0, 1.0f, 0.0f),   params(2.0f, 0, 0.999f, 0.0f), params(0.5f, -1, 0.3f, 0.2f),
            };
            for (size_t pi = 0; pi < sizeof ps / sizeof ps[0]; pi++) check_row(s, l, V, &ps[pi]);
        }
        free(l);
        tm_sampler_destroy(s);
    }
}

/* Realistic shapes on a large vocabulary: AVX2 and portable agree bit for
 * bit (tokens, logprobs, top_logprobs) and both match the reference. */
static void test_paths_agree(void **state)
{
    (void)state;
    enum { V = 20011 };
    tm_sampler *s = NULL;
    tm_err err;
    assert_int_equal(tm_sampler_create(V, &s, &err), TM_OK);
    float *l = malloc(V * sizeof *l);
    int32_t prev[64];
    uint64_t x = 4242;
    for (int32_t i = 0; i < 64; i++) prev[i] = (int32_t)(rng(&x) % V);
    for (int row = 0; row < 12; row++) {
        for (int32_t i = 0; i < V; i++) l[i] = 2.5f * (frand(&x) + frand(&x) + frand(&x) - 1.5f);
        if (row % 2) l[rng(&x) % V] = 14.0f, l[rng(&x) % V] = 12.5f;
        if (row % 5 == 0) l[rng(&x) % V] = NAN;
        const tm_sampling_params ps[] = {params(1.0f, 0, 1.0f, 0.0f), params(0.8f, 0, 0.9f, 0.0f),
                                         params(0.8f, 50, 1.0f, 0.0f), params(1.0f, 50, 0.95f, 0.0f),
                                         params(1.0f, 0, 1.0f, 0.05f), params(0.9f, 500, 0.97f, 0.0f),
                                         params(0.0f, 0, 1.0f, 0.0f)};
        for (size_t pi = 0; pi < sizeof ps / sizeof ps[0]; pi++) {
            check_row(s, l, V, &ps[pi]);
            tm_sampling_params p = ps[pi];
            p.logprobs = 1;
            p.top_logprobs = 5;
            p.repetition_penalty = row % 3 == 0 ? 1.2f : 1.0f;
            p.presence_penalty = row % 3 == 1 ? -0.5f : 0.0f;
            tm_sample_result a, b;
            tm_sampler_set_portable(s, 0);
            assert_int_equal(tm_sampler_sample(s, l, &p, 1, (uint64_t)row, prev, 64, 32, &a, &err), TM_OK);
            tm_sampler_set_portable(s, 1);
            assert_int_equal(tm_sampler_sample(s, l, &p, 1, (uint64_t)row, prev, 64, 32, &b, &err), TM_OK);
            tm_sampler_set_portable(s, 0);
            assert_int_equal(a.token, b.token);
            assert_memory_equal(&a.logprob, &b.logprob, sizeof a.logprob);
            assert_int_equal(a.n_top, 5);
            assert_int_equal(b.n_top, 5);
            assert_memory_equal(a.top, b.top, 5 * sizeof a.top[0]);
        }
    }
    free(l);
    tm_sampler_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_paths_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
