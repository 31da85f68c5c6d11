/* test_cpu_gemm.c — the packed-panel GEMM (src/backend/cpu/gemm.h).
 *
 * Every kernel family this CPU supports (portable, AVX2+FMA, AVX-512F),
 * forced in turn, must equal bit for bit a plain fmaf loop in ascending k
 * (gemm.h's reduction contract) on odd shapes: M = 1..17, N and K not
 * multiples of the panel width, fp32 and bf16 panels, with and without bias,
 * on 1, 2 and 3 threads. Also: pack/unpack round trips, bf16 rounding of
 * fp32 rows, and a row's result not depending on the rows around it.
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

#include "backend/cpu/gemm.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static uint16_t bf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static float bf16_val(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

typedef struct mat {
    tm_gemm_w w;
    void *buf;
    float *ref; /* [n][k] the values the packed matrix holds */
} mat;

static void mat_make(mat *m, int32_t n, int32_t k, tm_gemm_dtype dt)
{
    size_t bytes = tm_gemm_packed_bytes(n, k, dt);
    assert_true(bytes > 0);
    m->buf = malloc(bytes);
    m->ref = malloc((size_t)n * k * sizeof(float));
    assert_non_null(m->buf);
    assert_non_null(m->ref);
    memset(m->buf, 0xff, bytes); /* init must zero the padding */
    tm_gemm_w_init(&m->w, m->buf, n, k, dt);
    float *row = malloc((size_t)k * sizeof(float));
    uint16_t *hrow = malloc((size_t)k * sizeof(uint16_t));
    for (int32_t r = 0; r < n; r++) {
        for (int32_t c = 0; c < k; c++) row[c] = frand();
        if (dt == TM_GEMM_BF16 && r % 2) { /* both entry points */
            for (int32_t c = 0; c < k; c++) hrow[c] = bf16_bits(row[c]);
            tm_gemm_pack_row_bf16(&m->w, r, hrow);
        } else {
            tm_gemm_pack_row_f32(&m->w, r, row);
        }
        for (int32_t c = 0; c < k; c++) m->ref[(size_t)r * k + c] = dt == TM_GEMM_BF16 ? bf16_val(bf16_bits(row[c])) : row[c];
    }
    free(row);
    free(hrow);
}

static void mat_free(mat *m)
{
    free(m->buf);
    free(m->ref);
}

/* The contract: s = fma(x, w, s) over ascending k, then + bias. */
static void reference(const float *x, int32_t T, const mat *m, const float *bias, float *y)
{
    int32_t N = m->w.n, K = m->w.k;
    for (int32_t t = 0; t < T; t++)
        for (int32_t n = 0; n < N; n++) {
            float s = 0.0f;
            for (int32_t k = 0; k < K; k++) s = fmaf(x[(size_t)t * K + k], m->ref[(size_t)n * K + k], s);
            y[(size_t)t * N + n] = bias ? s + bias[n] : s;
        }
}

static void test_pack_roundtrip(void **state)
{
    (void)state;
    for (int dt = 0; dt < 2; dt++) {
        mat m;
        mat_make(&m, 37, 19, (tm_gemm_dtype)dt);
        float row[19];
        for (int32_t r = 0; r < 37; r++) {
            tm_gemm_unpack_row(&m.w, r, row);
            assert_memory_equal(row, m.ref + (size_t)r * 19, sizeof row);
        }
        /* padding rows 37..47 are zero */
        size_t es = dt ? 2 : 4, bytes = tm_gemm_packed_bytes(37, 19, (tm_gemm_dtype)dt);
        assert_int_equal(bytes, 48 * 19 * es);
        const unsigned char *b = m.buf;
        for (int32_t k = 0; k < 19; k++)
            for (int j = 5; j < 16; j++) {
                int slot = dt ? (j < 8 ? 2 * j : 2 * (j - 8) + 1) : j;
                size_t off = ((size_t)(2 * 19 + k) * 16 + (size_t)slot) * es;
                for (size_t e = 0; e < es; e++) assert_int_equal(b[off + e], 0);
            }
        mat_free(&m);
    }
    assert_int_equal(tm_gemm_packed_bytes(0, 5, TM_GEMM_F32), 0);
    assert_int_equal(tm_gemm_packed_bytes(5, -1, TM_GEMM_F32), 0);
    assert_int_equal(tm_gemm_packed_bytes(INT32_MAX, INT32_MAX, TM_GEMM_F32) == 0 || sizeof(size_t) > 4, 1);
}

/* Every supported ISA, forced, equals the reference bit for bit on odd shapes. */
static void test_kernels_match_reference(void **state)
{
    (void)state;
    tm_cpu_pool *pools[3];
    for (int i = 0; i < 3; i++) assert_int_equal(tm_cpu_pool_create(i + 1, &pools[i], NULL), TM_OK);
    static const int32_t shapes[][2] = {{1, 1}, {5, 3}, {16, 8}, {17, 33}, {45, 67}, {100, 129}, {33, 300}};
    int tested = 0;
    for (int isa = TM_GEMM_ISA_PORTABLE; isa < TM_GEMM_ISA_COUNT; isa++) {
        if (!tm_gemm_isa_supported((tm_gemm_isa)isa)) {
            printf("[ info ] isa %s not supported by this CPU: skipped\n", tm_gemm_isa_name((tm_gemm_isa)isa));
            continue;
        }
        tested++;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int dt = 0; dt < 2; dt++) {
                int32_t N = shapes[s][0], K = shapes[s][1];
                mat m;
                mat_make(&m, N, K, (tm_gemm_dtype)dt);
                float *x = malloc(17 * (size_t)K * sizeof(float)), *bias = malloc((size_t)N * sizeof(float));
                float *y = malloc(17 * (size_t)N * sizeof(float)), *want = malloc(17 * (size_t)N * sizeof(float));
                for (size_t i = 0; i < 17 * (size_t)K; i++) x[i] = frand() * 4.0f;
                for (int32_t i = 0; i < N; i++) bias[i] = frand();
                for (int32_t M = 1; M <= 17; M++) {
                    const float *bb = M % 2 ? bias : NULL;
                    reference(x, M, &m, bb, want);
                    for (int th = 0; th < 3; th++) {
                        memset(y, 0xcd, (size_t)M * N * sizeof(float));
                        tm_gemm(pools[th], (tm_gemm_isa)isa, x, M, &m.w, bb, y);
                        if (memcmp(y, want, (size_t)M * N * sizeof(float)))
                            fail_msg("isa %s dtype %d N %d K %d M %d threads %d: differs from the fmaf reference",
                                     tm_gemm_isa_name((tm_gemm_isa)isa), dt, N, K, M, th + 1);
                    }
                }
                free(x), free(bias), free(y), free(want);
                mat_free(&m);
            }
        printf("[ info ] isa %s: bit-identical to the fmaf reference (M 1..17, 7 N x K shapes, fp32 + bf16, 1-3 threads)\n",
               tm_gemm_isa_name((tm_gemm_isa)isa));
    }
    assert_true(tested >= 1);
    for (int i = 0; i < 3; i++) tm_cpu_pool_destroy(pools[i]);
}

/* A row's output does not depend on the other rows of the batch. */
static void test_row_independent_of_batch(void **state)
{
    (void)state;
    tm_cpu_pool *p;
    assert_int_equal(tm_cpu_pool_create(2, &p, NULL), TM_OK);
    int32_t N = 200, K = 130, T = 40;
    mat m;
    mat_make(&m, N, K, TM_GEMM_BF16);
    float *x = malloc((size_t)T * K * sizeof(float)), *y = malloc((size_t)T * N * sizeof(float));
    float *y1 = malloc((size_t)N * sizeof(float));
    for (size_t i = 0; i < (size_t)T * K; i++) x[i] = frand();
    tm_gemm(p, TM_GEMM_ISA_AUTO, x, T, &m.w, NULL, y);
    for (int32_t r = 0; r < T; r++) {
        tm_gemm(NULL, TM_GEMM_ISA_AUTO, x + (size_t)r * K, 1, &m.w, NULL, y1);
        assert_memory_equal(y1, y + (size_t)r * N, (size_t)N * sizeof(float));
    }
    free(x), free(y), free(y1);
    mat_free(&m);
    tm_cpu_pool_destroy(p);
}

static void test_isa_names(void **state)
{
    (void)state;
    tm_gemm_isa best = tm_gemm_isa_best();
    assert_true(best != TM_GEMM_ISA_AUTO && tm_gemm_isa_supported(best));
    assert_true(tm_gemm_isa_supported(TM_GEMM_ISA_PORTABLE));
    assert_string_equal(tm_gemm_isa_name(TM_GEMM_ISA_AVX2), "avx2");
    assert_string_equal(tm_gemm_isa_name((tm_gemm_isa)99), "?");
    printf("[ info ] best gemm isa on this CPU: %s\n", tm_gemm_isa_name(best));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_roundtrip),
        cmocka_unit_test(test_kernels_match_reference),
        cmocka_unit_test(test_row_independent_of_batch),
        cmocka_unit_test(test_isa_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
