/* test_cpu_ops.c — the CPU backend's ops against naive double-precision
 * references, plus batch invariance of the matmul.
 *
 * Each op (matmul, RMSNorm, RoPE incl. llama3 scaling, paged attention with
 * GQA, SwiGLU, the thread pool) is compared with a straightforward double
 * implementation written here. The matmul must give bit-identical rows
 * whatever the number of rows, the row's index and the thread count, on
 * the test models' projection shapes; cblas_sgemm is measured on the same
 * shapes and its (machine-dependent) result is printed, not asserted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"
#include "model/rope.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
static float *rand_vec(size_t n)
{
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) v[i] = frand();
    return v;
}

static void pool_mark(void *ctx, int64_t b, int64_t e, int thread)
{
    int *h = ctx;
    assert_true(thread >= 0 && thread < 5);
    for (int64_t i = b; i < e; i++) __atomic_fetch_add(&h[i], 1, __ATOMIC_RELAXED);
}

static void test_pool_covers_every_item(void **state)
{
    (void)state;
    for (int nt = 1; nt <= 5; nt++) {
        tm_cpu_pool *p = NULL;
        assert_int_equal(tm_cpu_pool_create(nt, &p, NULL), TM_OK);
        assert_int_equal(tm_cpu_pool_threads(p), nt);
        for (int64_t n = 1; n < 40; n += 3) {
            int hits[40] = {0};
            tm_cpu_pool_run(p, n, pool_mark, hits);
            for (int64_t i = 0; i < n; i++) assert_int_equal(hits[i], 1);
        }
        tm_cpu_pool_destroy(p);
    }
    tm_cpu_pool_destroy(NULL);
}

static void ref_matmul(const float *x, int T, int K, const float *w, int N, const float *bias, double *y)
{
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++) {
            double s = bias ? bias[n] : 0.0;
            for (int k = 0; k < K; k++) s += (double)x[(size_t)t * K + k] * w[(size_t)n * K + k];
            y[(size_t)t * N + n] = s;
        }
}

static void test_matmul_matches_reference(void **state)
{
    (void)state;
    int shapes[][3] = {{1, 128, 128}, {7, 128, 352}, {13, 352, 128}, {5, 61, 33}, {9, 3, 5}, {4, 48, 192}};
    tm_cpu_pool *p = NULL;
    assert_int_equal(tm_cpu_pool_create(3, &p, NULL), TM_OK);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int T = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
        float *x = rand_vec((size_t)T * K), *w = rand_vec((size_t)N * K), *b = rand_vec(N);
        float *y = malloc(sizeof(float) * T * N), *y2 = malloc(sizeof(float) * T * N);
        double *r = malloc(sizeof(double) * T * N);
        ref_matmul(x, T, K, w, N, b, r);
        tm_cpu_matmul(p, x, T, K, w, N, b, y);
        tm_cpu_matmul_blas(x, T, K, w, N, b, y2);
        for (int i = 0; i < T * N; i++) {
            assert_true(fabs(y[i] - r[i]) <= 1e-5 * (1 + fabs(r[i])) * sqrt(K));
            assert_true(fabs(y2[i] - r[i]) <= 1e-5 * (1 + fabs(r[i])) * sqrt(K));
        }
        free(x), free(w), free(b), free(y), free(y2), free(r);
    }
    tm_cpu_pool_destroy(p);
}

/* Rows of an M-row product vs the same row alone (M = 1), bitwise. */
static int rows_differing(int use_blas, tm_cpu_pool *p, const float *x, int M, int K, const float *w, int N,
                          float *y, float *y1)
{
    if (use_blas) tm_cpu_matmul_blas(x, M, K, w, N, NULL, y);
    else tm_cpu_matmul(p, x, M, K, w, N, NULL, y);
    int bad = 0;
    for (int r = 0; r < M; r++) {
        if (use_blas) tm_cpu_matmul_blas(x + (size_t)r * K, 1, K, w, N, NULL, y1);
        else tm_cpu_matmul(p, x + (size_t)r * K, 1, K, w, N, NULL, y1);
        if (memcmp(y1, y + (size_t)r * N, sizeof(float) * N)) bad++;
    }
    return bad;
}

static void test_matmul_batch_invariant(void **state)
{
    (void)state;
    /* {K, N}: projection shapes of the test models (hidden 128/64, inter 352/160, qwen3 4x48) */
    int shapes[][2] = {{128, 128}, {128, 64}, {128, 352}, {352, 128}, {128, 512},
                       {128, 192}, {192, 128}, {64, 160}, {160, 64}, {64, 2000}};
    int Ms[] = {2, 3, 5, 8, 16, 17, 33, 64, 100};
    tm_cpu_pool *pools[3] = {NULL, NULL, NULL};
    assert_int_equal(tm_cpu_pool_create(1, &pools[0], NULL), TM_OK);
    assert_int_equal(tm_cpu_pool_create(2, &pools[1], NULL), TM_OK);
    assert_int_equal(tm_cpu_pool_create(7, &pools[2], NULL), TM_OK);
    int blas_bad_total = 0, blas_rows = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int K = shapes[s][0], N = shapes[s][1];
        float *w = rand_vec((size_t)N * K), *x = rand_vec((size_t)100 * K);
        float *y = malloc(sizeof(float) * 100 * N), *y1 = malloc(sizeof(float) * N);
        float *ref = malloc(sizeof(float) * 100 * N);
        tm_cpu_matmul(pools[0], x, 100, K, w, N, NULL, ref);
        for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
            int M = Ms[mi];
            for (int pi = 0; pi < 3; pi++) {
                assert_int_equal(rows_differing(0, pools[pi], x, M, K, w, N, y, y1), 0);
                /* and equal to the single-thread 100-row product */
                assert_memory_equal(y, ref, sizeof(float) * M * N);
            }
            /* a row's result does not depend on its index in the batch */
            int Ms3 = M + 3 <= 100 ? M : 97;
            tm_cpu_matmul(pools[1], x + (size_t)3 * K, Ms3, K, w, N, NULL, y);
            assert_memory_equal(y, ref + (size_t)3 * N, sizeof(float) * Ms3 * N);
            blas_bad_total += rows_differing(1, NULL, x, M, K, w, N, y, y1);
            blas_rows += M;
        }
        free(w), free(x), free(y), free(y1), free(ref);
    }
    printf("[ info ] cblas_sgemm on the same shapes: %d of %d rows differ (bitwise) from the row computed alone%s\n",
           blas_bad_total, blas_rows, blas_bad_total ? " -> not batch invariant" : "");
    for (int i = 0; i < 3; i++) tm_cpu_pool_destroy(pools[i]);
}

static void test_rmsnorm(void **state)
{
    (void)state;
    for (int n = 1; n < 300; n += 37) {
        float *x = rand_vec(n), *w = rand_vec(n), *o = malloc(sizeof(float) * n);
        tm_cpu_rmsnorm(o, x, w, n, 1e-5f);
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
        double r = 1.0 / sqrt(ss / n + 1e-5);
        for (int i = 0; i < n; i++) assert_true(fabs(o[i] - x[i] * r * w[i]) < 1e-6 * (1 + fabs(x[i] * r * w[i])));
        tm_cpu_rmsnorm(x, x, NULL, n, 1e-5f); /* in place, no weight */
        for (int i = 0; i < n; i++) assert_true(fabs(x[i] * w[i] - o[i]) < 1e-5);
        free(x), free(w), free(o);
    }
}

static void test_rope_inv_freq_llama3(void **state)
{
    (void)state;
    tm_model_config c;
    memset(&c, 0, sizeof c);
    c.head_dim = 32;
    c.rope_theta = 500000.0f;
    c.rope_scaling = TM_ROPE_LLAMA3;
    c.rope_factor = 8;
    c.rope_low_freq_factor = 1;
    c.rope_high_freq_factor = 4;
    c.rope_original_max_pos = 8192;
    double plain[16], scaled[16];
    tm_rope_inv_freq(&c, 0, plain);
    tm_rope_inv_freq(&c, 1, scaled);
    int n_hi = 0, n_lo = 0, n_mid = 0;
    for (int i = 0; i < 16; i++) {
        double f = pow(500000.0, -(2.0 * i) / 32);
        assert_true(fabs(plain[i] - f) <= 1e-15 * f);
        double wl = 2 * M_PI / f;
        if (wl < 8192.0 / 4) { /* high frequency: kept */
            assert_true(scaled[i] == plain[i]);
            n_hi++;
        } else if (wl > 8192.0) { /* low frequency: divided by factor */
            assert_true(fabs(scaled[i] - f / 8) <= 1e-15 * f);
            n_lo++;
        } else { /* medium: linear blend of f/8 and f by 8192/wl */
            double sm = (8192.0 / wl - 1) / (4 - 1);
            assert_true(fabs(scaled[i] - ((1 - sm) * f / 8 + sm * f)) <= 1e-15 * f);
            assert_true(scaled[i] < f && scaled[i] > f / 8);
            n_mid++;
        }
    }
    assert_true(n_hi > 0 && n_lo > 0 && n_mid > 0); /* all three branches exercised */
    c.rope_scaling = TM_ROPE_NONE;
    tm_rope_inv_freq(&c, 1, scaled);
    assert_memory_equal(scaled, plain, sizeof plain);
}

static void test_rope_rotate_half(void **state)
{
    (void)state;
    int hd = 48, nh = 3, half = hd / 2;
    tm_model_config c;
    memset(&c, 0, sizeof c);
    c.head_dim = hd;
    c.rope_theta = 10000.0f;
    double inv[24];
    tm_rope_inv_freq(&c, 1, inv);
    float cs[24], sn[24];
    int pos = 37;
    tm_cpu_rope_cos_sin(inv, half, pos, cs, sn);
    float *v = rand_vec((size_t)nh * hd), *orig = malloc(sizeof(float) * nh * hd);
    memcpy(orig, v, sizeof(float) * nh * hd);
    tm_cpu_rope(v, nh, hd, cs, sn, 0);
    for (int h = 0; h < nh; h++)
        for (int i = 0; i < hd; i++) {
            /* HF: q*cos + rotate_half(q)*sin, rotate_half = cat(-q2, q1), cos/sin duplicated */
            int j = i % half;
            double a = pos * inv[j];
            double rot = i < half ? -orig[h * hd + i + half] : orig[h * hd + i - half];
            double want = orig[h * hd + i] * cos(a) + rot * sin(a);
            assert_true(fabs(v[h * hd + i] - want) < 1e-5);
        }
    free(v), free(orig);
}

static void test_attention_paged_gqa(void **state)
{
    (void)state;
    int hd = 16, nkv = 2, nh = 4, bs = 4, n_blocks = 8, n_ctx = 19;
    int32_t table[5] = {6, 1, 7, 3, 0}; /* non-contiguous */
    float *kpool = rand_vec((size_t)n_blocks * bs * nkv * hd), *vpool = rand_vec((size_t)n_blocks * bs * nkv * hd);
    float *q = rand_vec((size_t)nh * hd), scores[64], out[16];
    tm_cpu_kv_view kv = {.k = kpool, .v = vpool, .block_table = table, .block_size = bs, .n_kv_heads = nkv,
                         .head_dim = hd};
    float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < nh; h++) {
        int kvh = h / (nh / nkv);
        tm_cpu_attention_head(q + h * hd, kvh, n_ctx, &kv, scale, scores, out);
        double s[64], m = -1e300, sum = 0, want[16] = {0};
        for (int p = 0; p < n_ctx; p++) {
            const float *k = kpool + (((size_t)table[p / bs] * bs + p % bs) * nkv + kvh) * hd;
            s[p] = 0;
            for (int d = 0; d < hd; d++) s[p] += (double)q[h * hd + d] * k[d];
            s[p] *= 1.0 / sqrt(hd);
            if (s[p] > m) m = s[p];
        }
        for (int p = 0; p < n_ctx; p++) sum += exp(s[p] - m);
        for (int p = 0; p < n_ctx; p++) {
            const float *v = vpool + (((size_t)table[p / bs] * bs + p % bs) * nkv + kvh) * hd;
            for (int d = 0; d < hd; d++) want[d] += exp(s[p] - m) / sum * v[d];
        }
        for (int d = 0; d < hd; d++) assert_true(fabs(out[d] - want[d]) < 1e-5);
    }
    /* one position: the output is that position's V exactly */
    tm_cpu_attention_head(q, 1, 1, &kv, scale, scores, out);
    for (int d = 0; d < hd; d++) assert_true(fabs(out[d] - vpool[((size_t)6 * bs * nkv + 1) * hd + d]) < 1e-6);
    free(kpool), free(vpool), free(q);
}

static void test_swiglu(void **state)
{
    (void)state;
    float *g = rand_vec(100), *u = rand_vec(100), g0[100];
    for (int i = 0; i < 100; i++) g[i] *= 8, g0[i] = g[i];
    tm_cpu_swiglu(g, u, 100);
    for (int i = 0; i < 100; i++) {
        double want = g0[i] / (1 + exp(-(double)g0[i])) * u[i];
        assert_true(fabs(g[i] - want) < 1e-5 * (1 + fabs(want)));
    }
    free(g), free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_covers_every_item),
        cmocka_unit_test(test_matmul_matches_reference),
        cmocka_unit_test(test_matmul_batch_invariant),
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_rope_inv_freq_llama3),
        cmocka_unit_test(test_rope_rotate_half),
        cmocka_unit_test(test_attention_paged_gqa),
        cmocka_unit_test(test_swiglu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
