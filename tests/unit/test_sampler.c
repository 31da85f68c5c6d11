/* test_sampler.c — the CPU reference sampler on hand-made logits:
 * greedy (ties -> lowest id, NaN ignored), top_k=1 == greedy, fixed-seed
 * determinism, a chi-square test of 100k draws against the softmax (with and
 * without temperature), top_p / min_p / top_k kept sets (exact hand-made
 * cases, and against a brute-force full sort on a 50k vocabulary for both the
 * heap/quickselect and the short-list/vocabulary-walk paths), penalty
 * arithmetic, raw logprobs and sorted top_logprobs, seed derivation and
 * parameter checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/sampler.h"

static tm_sampler *mk(int32_t v)
{
    tm_sampler *s = NULL;
    tm_err err;
    assert_int_equal(tm_sampler_create(v, &s, &err), TM_OK);
    assert_int_equal(tm_sampler_vocab(s), v);
    return s;
}

static int32_t sample1(tm_sampler *s, const float *l, const tm_sampling_params *p, uint64_t rk,
                       uint64_t i)
{
    tm_sample_result r;
    tm_err err;
    assert_int_equal(tm_sampler_sample(s, l, p, rk, i, NULL, 0, 0, &r, &err), TM_OK);
    return r.token;
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static float rng_float(uint64_t *x) /* [0,1) */
{
    return (float)(rng_next(x) >> 40) / (float)(1 << 24);
}

static void test_greedy(void **state)
{
    (void)state;
    tm_sampler *s = mk(6);
    tm_sampling_params p;
    tm_sampling_params_default(&p);
    p.temperature = 0.0f;
    const float l[6] = {1.0f, 3.0f, 0.5f, 3.0f, -INFINITY, 2.0f};
    assert_int_equal(sample1(s, l, &p, 0, 0), 1); /* tie 1 vs 3 -> lowest id */
    const float n[6] = {NAN, 0.0f, NAN, 0.25f, 0.25f, NAN};
    assert_int_equal(sample1(s, n, &p, 0, 0), 3);
    tm_sampling_params p0 = p;
    p.temperature = 1e-6f; /* below the epsilon: still greedy */
    assert_int_equal(sample1(s, l, &p, 9, 9), 1);
    /* all -inf / NaN is an input error, not a crash */
    const float bad[6] = {-INFINITY, NAN, -INFINITY, NAN, -INFINITY, -INFINITY};
    tm_sample_result r;
    tm_err err;
    assert_int_equal(tm_sampler_sample(s, bad, &p, 0, 0, NULL, 0, 0, &r, &err), TM_ERR_INPUT);
    p.temperature = 1.0f;
    assert_int_equal(tm_sampler_sample(s, bad, &p, 0, 0, NULL, 0, 0, &r, &err), TM_ERR_INPUT);
    /* larger vocabularies (the multi-lane argmax and its tail) */
    tm_sampler *b = mk(103);
    float big[103];
    for (int i = 0; i < 103; i++) big[i] = (float)(i % 7) * 0.1f;
    assert_int_equal(sample1(b, big, &p0, 0, 0), 6);   /* 0.6 first at id 6 */
    big[101] = 9.0f;                                   /* in the tail */
    assert_int_equal(sample1(b, big, &p0, 0, 0), 101);
    big[37] = 9.0f;                                    /* tie: lower id */
    big[13] = 9.0f;
    assert_int_equal(sample1(b, big, &p0, 0, 0), 13);
    big[13] = NAN;
    assert_int_equal(sample1(b, big, &p0, 0, 0), 37);
    big[102] = INFINITY;
    assert_int_equal(sample1(b, big, &p0, 0, 0), 102);
    /* penalties in the lanes: 37 repeated is pushed below 101 */
    tm_sampling_params pp = p0;
    pp.frequency_penalty = 1.0f;
    big[102] = 0.0f;
    tm_sample_result rb;
    assert_int_equal(tm_sampler_sample(b, big, &pp, 0, 0, (const int32_t[]){37}, 1, 0, &rb, &err),
                     TM_OK);
    assert_int_equal(rb.token, 101);
    tm_sampler_destroy(b);
    /* +inf wins outright when sampling */
    const float inf[6] = {0.0f, INFINITY, 5.0f, INFINITY, 0.0f, 0.0f};
    assert_int_equal(sample1(s, inf, &p, 0, 0), 1);
    tm_sampler_destroy(s);
    tm_sampler_destroy(NULL);
}

static void test_topk1_is_greedy(void **state)
{
    (void)state;
    enum { V = 5000 };
    tm_sampler *s = mk(V);
    float *l = malloc(V * sizeof *l);
    uint64_t x = 77;
    tm_sampling_params g, k1;
    tm_sampling_params_default(&g);
    g.temperature = 0.0f;
    tm_sampling_params_default(&k1);
    k1.top_k = 1;
    k1.temperature = 1.7f;
    k1.seed = 5;
    for (int trial = 0; trial < 20; trial++) {
        for (int i = 0; i < V; i++) l[i] = rng_float(&x) * 10.0f - 5.0f;
        assert_int_equal(sample1(s, l, &k1, 0, (uint64_t)trial), sample1(s, l, &g, 0, 0));
    }
    free(l);
    tm_sampler_destroy(s);
}

static void test_determinism(void **state)
{
    (void)state;
    enum { V = 8 };
    tm_sampler *s = mk(V);
    float l[V] = {0};
    tm_sampling_params p;
    tm_sampling_params_default(&p);
    p.seed = 1234;
    int seen[V] = {0};
    int32_t a[256];
    for (int i = 0; i < 256; i++) {
        a[i] = sample1(s, l, &p, 3, (uint64_t)i);
        seen[a[i]]++;
    }
    for (int t = 0; t < V; t++) assert_true(seen[t] > 0); /* draws vary with i */
    /* same (seed, key, i) -> same token, whatever happened in between */
    for (int i = 255; i >= 0; i--) assert_int_equal(sample1(s, l, &p, 3, (uint64_t)i), a[i]);
    /* another request key or seed gives another sequence */
    int diff_key = 0, diff_seed = 0;
    for (int i = 0; i < 256; i++) {
        diff_key += sample1(s, l, &p, 4, (uint64_t)i) != a[i];
        p.seed = 1235;
        diff_seed += sample1(s, l, &p, 3, (uint64_t)i) != a[i];
        p.seed = 1234;
    }
    assert_true(diff_key > 150); /* ~7/8 of 256 expected */
    assert_true(diff_seed > 150);
    /* a second sampler instance agrees */
    tm_sampler *s2 = mk(V);
    for (int i = 0; i < 256; i++) assert_int_equal(sample1(s2, l, &p, 3, (uint64_t)i), a[i]);
    tm_sampler_destroy(s2);
    tm_sampler_destroy(s);
}

/* chi-square of N draws against probabilities q[0..n); 4 dof at 0.001: 18.47 */
static double chi_square(tm_sampler *s, const float *l, const tm_sampling_params *p,
                         const double *q, int n, int N)
{
    int cnt[16] = {0};
    for (int i = 0; i < N; i++) {
        int32_t t = sample1(s, l, p, 11, (uint64_t)i);
        assert_true(t >= 0 && t < n);
        cnt[t]++;
    }
    double chi = 0.0;
    for (int t = 0; t < n; t++) {
        double e = q[t] * N;
        if (e == 0.0) {
            assert_int_equal(cnt[t], 0);
            continue;
        }
        chi += (cnt[t] - e) * (cnt[t] - e) / e;
    }
    return chi;
}

static void test_histogram(void **state)
{
    (void)state;
    tm_sampler *s = mk(5);
    const double q[5] = {0.5, 0.2, 0.15, 0.1, 0.05};
    float l[5];
    for (int i = 0; i < 5; i++) l[i] = (float)log(q[i]) + 3.0f; /* shift is irrelevant */
    tm_sampling_params p;
    tm_sampling_params_default(&p);
    p.seed = 99;
    assert_true(chi_square(s, l, &p, q, 5, 100000) < 18.47);
    /* temperature 2: p ~ q^(1/2) */
    p.temperature = 2.0f;
    double q2[5], z = 0.0;
    for (int i = 0; i < 5; i++) z += (q2[i] = sqrt(q[i]));
    for (int i = 0; i < 5; i++) q2[i] /= z;
    assert_true(chi_square(s, l, &p, q2, 5, 100000) < 18.47);
    /* and the temperature-1 distribution is clearly rejected for it */
    assert_true(chi_square(s, l, &p, q, 5, 100000) > 100.0);
    tm_sampler_destroy(s);
}

static void kept(tm_sampler *s, const float *l, const tm_sampling_params *p, const int32_t *want,
                 int32_t nwant)
{
    int32_t ids[64], n = -1;
    tm_err err;
    assert_int_equal(tm_sampler_kept_set(s, l, p, NULL, 0, 0, ids, &n, &err), TM_OK);
    assert_int_equal(n, nwant);
    for (int32_t i = 0; i < n; i++) assert_int_equal(ids[i], want[i]);
}

static void test_top_p_min_p_small(void **state)
{
    (void)state;
    tm_sampler *s = mk(4);
    /* id: 0 -> 0.3, 1 -> 0.1, 2 -> 0.4, 3 -> 0.2 */
    const double q[4] = {0.3, 0.1, 0.4, 0.2};
    float l[4];
    for (int i = 0; i < 4; i++) l[i] = (float)log(q[i]);
    tm_sampling_params p;
    tm_sampling_params_default(&p);
    p.seed = 7;
    kept(s, l, &p, (int32_t[]){0, 1, 2, 3}, 4);
    p.top_p = 0.65f; /* 0.4 + 0.3 >= 0.65 */
    kept(s, l, &p, (int32_t[]){0, 2}, 2);
    /* sampling only ever yields the kept ids, in the renormalised ratio */
    double qp[4] = {0.3 / 0.7, 0.0, 0.4 / 0.7, 0.0};
    assert_true(chi_square(s, l, &p, qp, 4, 50000) < 18.47);
    p.top_p = 0.75f;
    kept(s, l, &p, (int32_t[]){0, 2, 3}, 3);
    p.top_p = 0.3f; /* at least the top token */
    kept(s, l, &p, (int32_t[]){2}, 1);
    p.top_p = 1e-6f;
    kept(s, l, &p, (int32_t[]){2}, 1);
    /* min_p: keep p >= min_p * 0.4 */
    p.top_p = 1.0f;
    p.min_p = 0.6f; /* >= 0.24 */
    kept(s, l, &p, (int32_t[]){0, 2}, 2);
    assert_true(chi_square(s, l, &p, qp, 4, 50000) < 18.47);
    p.min_p = 0.4f; /* >= 0.16 */
    kept(s, l, &p, (int32_t[]){0, 2, 3}, 3);
    p.min_p = 1.0f;
    kept(s, l, &p, (int32_t[]){2}, 1);
    /* top_k then top_p (renormalised within k) then min_p */
    p.min_p = 0.0f;
    p.top_k = 2;
    p.top_p = 0.6f; /* within {0.4, 0.3}: 0.571 < 0.6 -> both */
    kept(s, l, &p, (int32_t[]){0, 2}, 2);
    p.top_k = 3;
    p.top_p = 0.6f; /* within {.4,.3,.2}/.9: .444, .778 -> two */
    kept(s, l, &p, (int32_t[]){0, 2}, 2);
    p.top_p = 0.8f; /* needs all three */
    kept(s, l, &p, (int32_t[]){0, 2, 3}, 3);
    p.min_p = 0.6f;
    kept(s, l, &p, (int32_t[]){0, 2}, 2);
    /* ties at the boundary: lower id is ranked first */
    const float t[4] = {1.0f, 2.0f, 1.0f, 1.0f};
    tm_sampling_params_default(&p);
    p.top_k = 2;
    kept(s, t, &p, (int32_t[]){0, 1}, 2);
    p.top_k = 3;
    kept(s, t, &p, (int32_t[]){0, 1, 2}, 3);
    tm_sampler_destroy(s);
}

/* Brute force: sort everything by (z desc, id asc), apply the filters. */
typedef struct {
    float z;
    int32_t id;
} zc;
static int cmp_zc(const void *a, const void *b)
{
    const zc *x = a, *y = b;
    if (x->z != y->z) return x->z > y->z ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}
static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int32_t reference_kept(const float *l, int32_t V, const tm_sampling_params *p, int32_t *ids)
{
    zc *a = malloc((size_t)V * sizeof *a);
    float *w = malloc((size_t)V * sizeof *w);
    float invT = 1.0f / p->temperature, zmax = -INFINITY;
    for (int32_t i = 0; i < V; i++) {
        a[i].z = l[i] * invT;
        a[i].id = i;
        if (a[i].z > zmax) zmax = a[i].z;
    }
    double Z = 0.0;
    for (int32_t i = 0; i < V; i++) Z += (w[i] = tm_sampler_exp(a[i].z - zmax)); /* the sampler's exp */
    qsort(a, (size_t)V, sizeof *a, cmp_zc);
    int32_t n = V;
    if (p->top_k > 0 && p->top_k < V) {
        n = p->top_k;
        /* the sampler sums the top-k mass in its own order; in double the
         * order of ~thousands of floats changes nothing at test precision */
        Z = 0.0;
        for (int32_t i = 0; i < n; i++) Z += w[a[i].id];
    }
    if (p->top_p < 1.0f) {
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
    free(w);
    return m;
}

static void test_large_vocab_vs_reference(void **state)
{
    (void)state;
    enum { V = 50000 };
    tm_sampler *s = mk(V);
    float *l = malloc(V * sizeof *l);
    int32_t *got = malloc(V * sizeof *got), *want = malloc(V * sizeof *want);
    uint64_t x = 2024;
    struct {
        float spread, temp, top_p, min_p;
        int32_t top_k;
        float outlier; /* one token this far above the rest (0 = none) */
    } cases[] = {
        {20.0f, 1.0f, 0.9f, 0.0f, 0, 0.0f},     /* peaked: few candidates */
        {2.0f, 1.0f, 0.9f, 0.0f, 0, 0.0f},      /* flat: threshold must widen */
        {0.01f, 1.0f, 0.5f, 0.0f, 0, 0.0f},     /* nearly uniform: ~half the vocab */
        {8.0f, 0.7f, 0.95f, 0.0f, 40, 0.0f},    /* heap top-k, then top-p */
        {8.0f, 1.3f, 1.0f, 0.0f, 40, 0.0f},     /* heap top-k alone (short list) */
        {3.0f, 1.0f, 1.0f, 0.0f, 1000, 0.0f},   /* quickselect, short list */
        {3.0f, 1.0f, 1.0f, 0.0f, 20000, 0.0f},  /* quickselect, vocabulary walk */
        {3.0f, 1.0f, 0.99f, 0.0f, 20000, 0.0f}, /* quickselect + top_p */
        {6.0f, 1.0f, 1.0f, 0.05f, 0, 0.0f},     /* min_p alone */
        {6.0f, 0.8f, 0.9f, 0.1f, 500, 0.0f},    /* everything */
        {1.0f, 1.0f, 0.9f, 0.0f, 0, 7.0f},   /* mass far below the max: widen */
        {1.0f, 1.0f, 0.5f, 0.0f, 3000, 9.0f}, /* the same inside top-k */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int i = 0; i < V; i++) l[i] = rng_float(&x) * cases[c].spread;
        l[rng_next(&x) % V] = l[rng_next(&x) % V]; /* a tie somewhere */
        if (cases[c].outlier > 0.0f) l[rng_next(&x) % V] = cases[c].spread + cases[c].outlier;
        tm_sampling_params p;
        tm_sampling_params_default(&p);
        p.temperature = cases[c].temp;
        p.top_p = cases[c].top_p;
        p.min_p = cases[c].min_p;
        p.top_k = cases[c].top_k;
        p.seed = c;
        int32_t n = -1;
        tm_err err;
        assert_int_equal(tm_sampler_kept_set(s, l, &p, NULL, 0, 0, got, &n, &err), TM_OK);
        int32_t m = reference_kept(l, V, &p, want);
        assert_int_equal(n, m);
        assert_memory_equal(got, want, (size_t)n * sizeof *got);
        /* draws land in the kept set */
        for (uint64_t i = 0; i < 50; i++) {
            int32_t t = sample1(s, l, &p, 1, i);
            assert_non_null(bsearch(&t, want, (size_t)m, sizeof *want, cmp_i32));
        }
    }
    free(l);
    free(got);
    free(want);
    tm_sampler_destroy(s);
}

/* The same kept set reached by different code paths (no filter, top_k as a
 * short id list, top_k as a vocabulary cut, min_p, top_p) draws the same
 * token for every index: the draw does not depend on the path. */
static void test_path_independence(void **state)
{
    (void)state;
    enum { V = 1000 };
    tm_sampler *s = mk(V);
    float l[V];
    uint64_t x = 555;
    const int ms[] = {40, 100}; /* 40*16 <= V: list; 100*16 > V: cut */
    for (int mi = 0; mi < 2; mi++) {
        int m = ms[mi];
        for (int i = 0; i < V; i++) l[i] = -INFINITY;
        for (int j = 0; j < m;) {
            int id = (int)(rng_next(&x) % V);
            if (l[id] != -INFINITY) continue;
            l[id] = 1.0f + rng_float(&x); /* all within 1 nat: min_p 0.3 keeps all */
            j++;
        }
        tm_sampling_params base, pk, pm, pp;
        tm_sampling_params_default(&base);
        base.seed = 77;
        pk = pm = pp = base;
        pk.top_k = m;
        pm.min_p = 0.3f;
        pp.top_p = 0.9999999f; /* float 1 - 1e-7: needs every finite token */
        int32_t a[V], b[V], na, nb;
        tm_err err;
        assert_int_equal(tm_sampler_kept_set(s, l, &base, NULL, 0, 0, a, &na, &err), TM_OK);
        assert_int_equal(na, m);
        const tm_sampling_params *alt[] = {&pk, &pm, &pp};
        for (int k = 0; k < 3; k++) {
            assert_int_equal(tm_sampler_kept_set(s, l, alt[k], NULL, 0, 0, b, &nb, &err), TM_OK);
            assert_int_equal(nb, na);
            assert_memory_equal(a, b, (size_t)na * sizeof *a);
        }
        for (uint64_t i = 0; i < 300; i++) {
            int32_t t = sample1(s, l, &base, 2, i);
            assert_int_equal(sample1(s, l, &pk, 2, i), t);
            assert_int_equal(sample1(s, l, &pm, 2, i), t);
            assert_int_equal(sample1(s, l, &pp, 2, i), t);
        }
    }
    tm_sampler_destroy(s);
}

static void test_penalties(void **state)
{
    (void)state;
    tm_sampler *s = mk(6);
    const float l[6] = {2.0f, -2.0f, 1.0f, 0.5f, 3.0f, -1.0f};
    /* prompt {0, 1, 0}, generated {2, 2, 1, 99(bad), -5(bad)} */
    const int32_t prev[] = {0, 1, 0, 2, 2, 1, 99, -5};
    tm_sampling_params p;
    tm_sampling_params_default(&p);
    p.repetition_penalty = 2.0f;
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    float out[6];
    tm_err err;
    assert_int_equal(tm_sampler_penalize(s, l, &p, prev, 8, 3, out, &err), TM_OK);
    assert_float_equal(out[0], 1.0f, 1e-6);           /* prompt only: 2 / 2 */
    assert_float_equal(out[1], -4.0f - 0.5f - 0.25f, 1e-6); /* -2 * 2, then once generated */
    assert_float_equal(out[2], 0.5f - 1.0f - 0.25f, 1e-6);  /* 1 / 2, twice generated */
    assert_float_equal(out[3], 0.5f, 0.0);            /* untouched */
    assert_float_equal(out[4], 3.0f, 0.0);
    assert_float_equal(out[5], -1.0f, 0.0);
    /* presence/frequency alone ignore the prompt */
    p.repetition_penalty = 1.0f;
    assert_int_equal(tm_sampler_penalize(s, l, &p, prev, 8, 3, out, &err), TM_OK);
    assert_float_equal(out[0], 2.0f, 0.0);
    assert_float_equal(out[1], -2.0f - 0.75f, 1e-6);
    assert_float_equal(out[2], 1.0f - 1.25f, 1e-6);
    /* negative penalties encourage */
    p.frequency_penalty = -1.0f;
    p.presence_penalty = 0.0f;
    assert_int_equal(tm_sampler_penalize(s, l, &p, prev, 8, 3, out, &err), TM_OK);
    assert_float_equal(out[2], 3.0f, 1e-6);
    /* scratch is clean afterwards: no penalties -> the logits unchanged */
    tm_sampling_params d;
    tm_sampling_params_default(&d);
    assert_int_equal(tm_sampler_penalize(s, l, &d, prev, 8, 3, out, &err), TM_OK);
    assert_memory_equal(out, l, sizeof l);

    /* penalties steer greedy: 4 (3.0) repeated twice with frequency 1 -> 1.0 */
    p.frequency_penalty = 1.0f;
    p.presence_penalty = 0.0f;
    p.temperature = 0.0f;
    const int32_t gen[] = {4, 4};
    tm_sample_result r;
    assert_int_equal(tm_sampler_sample(s, l, &p, 0, 0, gen, 2, 0, &r, &err), TM_OK);
    assert_int_equal(r.token, 0);
    assert_int_equal(tm_sampler_sample(s, l, &p, 0, 0, gen, 2, 2, &r, &err), TM_OK);
    assert_int_equal(r.token, 4); /* the same tokens as prompt: no effect */
    /* repetition penalty via the kept set path (sampling) */
    tm_sampling_params_default(&p);
    p.repetition_penalty = 100.0f;
    p.top_k = 2;
    int32_t ids[6], n;
    assert_int_equal(tm_sampler_kept_set(s, l, &p, (const int32_t[]){4}, 1, 1, ids, &n, &err), TM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 2);
    /* bad arguments */
    assert_int_equal(tm_sampler_sample(s, l, &p, 0, 0, gen, 1, 2, &r, &err), TM_ERR_INPUT);
    assert_int_equal(tm_sampler_sample(s, l, &p, 0, 0, NULL, 1, 0, &r, &err), TM_ERR_INPUT);
    tm_sampler_destroy(s);
}

static void test_logprobs(void **state)
{
    (void)state;
    enum { V = 1000 };
    tm_sampler *s = mk(V);
    float *l = malloc(V * sizeof *l);
    uint64_t x = 31337;
    for (int i = 0; i < V; i++) l[i] = rng_float(&x) * 12.0f - 6.0f;
    l[10] = l[500] = 6.5f; /* a tie at the top */
    double m = -INFINITY, sum = 0.0;
    for (int i = 0; i < V; i++) m = fmax(m, l[i]);
    for (int i = 0; i < V; i++) sum += exp((double)l[i] - m);
    double lse = m + log(sum);

    tm_sampling_params p;
    tm_sampling_params_default(&p);
    p.logprobs = 1;
    p.top_logprobs = 20;
    p.seed = 3;
    /* processing must not change logprobs: they are raw */
    p.temperature = 0.5f;
    p.repetition_penalty = 3.0f;
    p.top_k = 7;
    const int32_t prev[] = {10, 500, 3};
    tm_sample_result r;
    tm_err err;
    for (uint64_t i = 0; i < 20; i++) {
        assert_int_equal(tm_sampler_sample(s, l, &p, 0, i, prev, 3, 1, &r, &err), TM_OK);
        assert_float_equal(r.logprob, (double)l[r.token] - lse, 1e-5);
        assert_int_equal(r.n_top, 20);
        assert_int_equal(r.top[0].id, 10); /* tie -> lower id first */
        assert_int_equal(r.top[1].id, 500);
        for (int j = 0; j < 20; j++) {
            assert_float_equal(r.top[j].logprob, (double)l[r.top[j].id] - lse, 1e-5);
            if (j) assert_true(r.top[j].logprob <= r.top[j - 1].logprob);
        }
    }
    /* the 20 are the true top 20 */
    float sorted[V];
    memcpy(sorted, l, sizeof sorted);
    for (int a = 0; a < 20; a++)
        for (int b = a + 1; b < V; b++)
            if (sorted[b] > sorted[a]) {
                float t = sorted[a];
                sorted[a] = sorted[b];
                sorted[b] = t;
            }
    for (int j = 0; j < 20; j++) assert_float_equal(l[r.top[j].id], sorted[j], 0.0);
    free(l);
    tm_sampler_destroy(s);

    /* small vocab: all top logprobs sum to 1 in probability space */
    s = mk(5);
    const float q[5] = {0.1f, -3.0f, 2.0f, NAN, 0.7f};
    p.top_logprobs = 20; /* more than the vocab */
    p.repetition_penalty = 1.0f;
    p.top_k = 0;
    assert_int_equal(tm_sampler_sample(s, q, &p, 0, 0, NULL, 0, 0, &r, &err), TM_OK);
    assert_int_equal(r.n_top, 5);
    double ps = 0.0;
    for (int j = 0; j < 5; j++) ps += exp(r.top[j].logprob);
    assert_float_equal(ps, 1.0, 1e-6);
    assert_int_equal(r.top[4].id, 3); /* NaN counts as -inf, ranked last */
    assert_true(isinf(r.top[4].logprob) && r.top[4].logprob < 0);
    assert_int_not_equal(r.token, 3);
    /* no logprobs requested: none computed */
    p.logprobs = 0;
    p.top_logprobs = 0;
    assert_int_equal(tm_sampler_sample(s, q, &p, 0, 0, NULL, 0, 0, &r, &err), TM_OK);
    assert_int_equal(r.n_top, 0);
    tm_sampler_destroy(s);
}

static void test_seed_and_params(void **state)
{
    (void)state;
    uint64_t a = tm_sampler_seed_from("job-1", "req-1");
    assert_true(a == tm_sampler_seed_from("job-1", "req-1"));
    assert_true(a != tm_sampler_seed_from("job-1", "req-2"));
    assert_true(a != tm_sampler_seed_from("job-2", "req-1"));
    assert_true(tm_sampler_seed_from("ab", "c") != tm_sampler_seed_from("a", "bc"));
    assert_true(tm_sampler_seed_from(NULL, NULL) == tm_sampler_seed_from("", ""));

    tm_sampling_params p;
    tm_err err;
    tm_sampling_params_default(&p);
    assert_int_equal(tm_sampling_params_check(&p, 100, &err), TM_OK);
#define BAD(field, value, word)                                                 \
    do {                                                                        \
        tm_sampling_params_default(&p);                                         \
        p.field = value;                                                        \
        assert_int_equal(tm_sampling_params_check(&p, 100, &err), TM_ERR_INPUT); \
        assert_non_null(strstr(err.msg, word));                                 \
    } while (0)
    BAD(temperature, -0.5f, "temperature");
    BAD(temperature, NAN, "temperature");
    BAD(temperature, INFINITY, "temperature");
    BAD(top_p, 0.0f, "top_p");
    BAD(top_p, 1.5f, "top_p");
    BAD(top_p, NAN, "top_p");
    BAD(top_k, -2, "top_k");
    BAD(min_p, 1.1f, "min_p");
    BAD(presence_penalty, 2.5f, "presence_penalty");
    BAD(frequency_penalty, -3.0f, "frequency_penalty");
    BAD(repetition_penalty, 0.0f, "repetition_penalty");
    BAD(top_logprobs, 21, "top_logprobs");
    BAD(n_stop_ids, 17, "stop_token_ids");
    BAD(n_stop, 5, "stop");
#undef BAD
    tm_sampling_params_default(&p);
    p.n_stop_ids = 1;
    p.stop_ids[0] = 100; /* out of the vocab */
    assert_int_equal(tm_sampling_params_check(&p, 100, &err), TM_ERR_INPUT);
    p.stop_ids[0] = 99;
    assert_int_equal(tm_sampling_params_check(&p, 100, &err), TM_OK);
    /* the sampler refuses bad params */
    tm_sampler *s = mk(4);
    const float l[4] = {0};
    tm_sample_result r;
    p.top_p = 2.0f;
    assert_int_equal(tm_sampler_sample(s, l, &p, 0, 0, NULL, 0, 0, &r, &err), TM_ERR_INPUT);
    tm_sampler_destroy(s);
    assert_int_equal(tm_sampler_create(0, &s, &err), TM_ERR_INPUT);
    assert_null(s);
    /* stop strings */
    tm_sampling_params_default(&p);
    for (int i = 0; i < TM_STOP_MAX; i++)
        assert_int_equal(tm_sampling_params_add_stop(&p, "x", 1, &err), TM_OK);
    assert_int_equal(tm_sampling_params_add_stop(&p, "x", 1, &err), TM_ERR_INPUT);
    tm_sampling_params_default(&p);
    assert_int_equal(tm_sampling_params_add_stop(&p, "", 0, &err), TM_ERR_INPUT);
    char big[TM_STOP_MAX_BYTES + 1] = {0};
    assert_int_equal(tm_sampling_params_add_stop(&p, big, sizeof big, &err), TM_ERR_INPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_topk1_is_greedy),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_top_p_min_p_small),
        cmocka_unit_test(test_large_vocab_vs_reference),
        cmocka_unit_test(test_path_independence),
        cmocka_unit_test(test_penalties),
        cmocka_unit_test(test_logprobs),
        cmocka_unit_test(test_seed_and_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
