/* test_quant.c — the quantized formats of quant.h, against hand-built tensors.
 *
 * float8_e4m3fn: all 256 codes round-trip, round-to-nearest-even at every
 * midpoint, saturation; fp16 likewise (all 65536 codes). INT4 RTN: the
 * |w - dq(q(w))| <= scale/2 bound (symmetric and asymmetric), fp16-exact
 * scales. GPTQ (v1 / v2 zeros, act-order g_idx) and AWQ (interleaved order)
 * unpacking against small int tensors written by hand, where the expected
 * matrix is obvious; hostile shapes and indices rejected. FP8 weights and KV.
 * GEMM level: the reference GEMMs computed from the packed formats equal the
 * CPU backend's fp32 matmul of the dequantized weights, random shapes, odd M.
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
#include "quant/quant.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() & 0xffffff) / 16777216.0f; }

/* ---- e4m3 ------------------------------------------------------------------ */

static void test_e4m3_all_codes(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        float f = tm_e4m3_to_f32((uint8_t)c);
        if ((c & 0x7f) == 0x7f) { /* S.1111.111 is NaN */
            assert_true(isnan(f));
            assert_int_equal(tm_f32_to_e4m3(f) & 0x7f, 0x7f);
            continue;
        }
        assert_false(isnan(f));
        assert_false(isinf(f));
        assert_int_equal(tm_f32_to_e4m3(f), c); /* -0 included: 0x80 */
    }
    for (int c = 0; c < 126; c++) /* positive codes increase strictly */
        assert_true(tm_e4m3_to_f32((uint8_t)c) < tm_e4m3_to_f32((uint8_t)(c + 1)));
    assert_true(tm_e4m3_to_f32(0x38) == 1.0f);
    assert_true(tm_e4m3_to_f32(0x30) == 0.5f);
    assert_true(tm_e4m3_to_f32(0xc0) == -2.0f);
    assert_true(tm_e4m3_to_f32(0x7e) == 448.0f);
    assert_true(tm_e4m3_to_f32(0x08) == ldexpf(1, -6)); /* smallest normal */
    assert_true(tm_e4m3_to_f32(0x01) == ldexpf(1, -9)); /* smallest subnormal */
    assert_true(tm_e4m3_to_f32(0x07) == 7 * ldexpf(1, -9));
    assert_true(signbit(tm_e4m3_to_f32(0x80)));
}

static void test_e4m3_rne_and_saturation(void **state)
{
    (void)state;
    int ties = 0;
    for (int c = 0; c < 126; c++) {
        for (int sgn = 0; sgn < 2; sgn++) {
            float a = tm_e4m3_to_f32((uint8_t)c), b = tm_e4m3_to_f32((uint8_t)(c + 1));
            float mid = (a + b) / 2; /* exact: both have few mantissa bits */
            assert_true(mid > a && mid < b);
            uint8_t even = (c & 1) ? (uint8_t)(c + 1) : (uint8_t)c, s = sgn ? 0x80 : 0;
            float m = sgn ? -mid : mid;
            assert_int_equal(tm_f32_to_e4m3(m), even | s);
            assert_int_equal(tm_f32_to_e4m3(nextafterf(m, sgn ? -INFINITY : INFINITY)), (c + 1) | s);
            assert_int_equal(tm_f32_to_e4m3(nextafterf(m, 0)), c | s);
            ties++;
        }
    }
    assert_int_equal(ties, 252);
    /* saturation (satfinite) */
    assert_int_equal(tm_f32_to_e4m3(448.0f), 0x7e);
    assert_int_equal(tm_f32_to_e4m3(449.0f), 0x7e);
    assert_int_equal(tm_f32_to_e4m3(464.0f), 0x7e);
    assert_int_equal(tm_f32_to_e4m3(1e9f), 0x7e);
    assert_int_equal(tm_f32_to_e4m3(INFINITY), 0x7e);
    assert_int_equal(tm_f32_to_e4m3(-INFINITY), 0xfe);
    assert_int_equal(tm_f32_to_e4m3(-500.0f), 0xfe);
    assert_int_equal(tm_f32_to_e4m3(NAN), 0x7f);
    /* below the smallest subnormal: 2^-10 is the tie between 0 and 2^-9, even = 0 */
    assert_int_equal(tm_f32_to_e4m3(ldexpf(1, -10)), 0x00);
    assert_int_equal(tm_f32_to_e4m3(nextafterf(ldexpf(1, -10), 1)), 0x01);
    assert_int_equal(tm_f32_to_e4m3(3 * ldexpf(1, -10)), 0x02); /* tie 1.5 units -> 2 */
    assert_int_equal(tm_f32_to_e4m3(1e-30f), 0x00);
    assert_int_equal(tm_f32_to_e4m3(-1e-30f), 0x80);
    assert_int_equal(tm_f32_to_e4m3(1e-45f), 0x00); /* an fp32 subnormal */
    /* rounding that carries into the exponent */
    assert_int_equal(tm_f32_to_e4m3(15.5f), 0x58); /* 15 = 1.875*8 (0x57); 15.5 ties to 16 (0x58, even) */
    assert_int_equal(tm_f32_to_e4m3(1.0625f), 0x38); /* tie between 1 and 1.125 -> 1 */
    assert_int_equal(tm_f32_to_e4m3(1.1875f), 0x3a); /* tie between 1.125 and 1.25 -> 1.25 */
}

/* ---- fp16 ------------------------------------------------------------------ */

static void test_f16(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = tm_f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            assert_true((tm_f32_to_f16(f) & 0x7c00) == 0x7c00 && (tm_f32_to_f16(f) & 0x3ff));
            continue;
        }
        assert_int_equal(tm_f32_to_f16(f), h);
    }
    /* ties to even: 1 + 2^-11 is between 1 and 1 + 2^-10 */
    assert_int_equal(tm_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);
    assert_int_equal(tm_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);
    assert_int_equal(tm_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(tm_f32_to_f16(65519.0f), 0x7bff);
    assert_int_equal(tm_f32_to_f16(65520.0f), 0x7c00); /* the tie rounds to even: inf */
    assert_int_equal(tm_f32_to_f16(ldexpf(1, -25)), 0x0000);
    assert_int_equal(tm_f32_to_f16(nextafterf(ldexpf(1, -25), 1)), 0x0001);
    assert_int_equal(tm_f32_to_f16(ldexpf(1, -24)), 0x0001);
    /* ceil */
    assert_true(tm_f16_ceil(1.0f) == 1.0f);
    assert_true(tm_f16_ceil(nextafterf(1.0f, 2)) == 1.0f + ldexpf(1, -10));
    assert_true(tm_f16_ceil(1.0f + ldexpf(1, -11)) == 1.0f + ldexpf(1, -10));
    assert_true(tm_f16_ceil(1e-9f) == ldexpf(1, -24));
    assert_true(isinf(tm_f16_ceil(65505.0f)));
    for (int i = 0; i < 10000; i++) {
        float x = ldexpf(frand(1, 2), (int)(rnd() % 40) - 24);
        float c = tm_f16_ceil(x);
        assert_true(c >= x);
        assert_true(tm_f16_to_f32(tm_f32_to_f16(c)) == c);
        assert_true(tm_f16_to_f32((uint16_t)(tm_f32_to_f16(c) - 1)) < x);
    }
}

/* ---- int4 RTN ----------------------------------------------------------------- */

static void fill_row(float *w, int32_t k, int kind)
{
    for (int32_t j = 0; j < k; j++) {
        switch (kind) {
        case 0: w[j] = frand(-1, 1); break;
        case 1: w[j] = 0; break;                       /* all zero */
        case 2: w[j] = 0.25f; break;                   /* constant */
        case 3: w[j] = j == 5 ? 40.0f : frand(-0.01f, 0.01f); break; /* one outlier */
        case 4: w[j] = frand(0.5f, 2.0f); break;       /* all positive */
        case 5: w[j] = -frand(1e-5f, 3e-5f); break;    /* small, negative */
        default: w[j] = frand(-100, 100) * frand(0, 1) * frand(0, 1); break;
        }
    }
}

static void check_int4_bound(int asym, int32_t n, int32_t k, int32_t group)
{
    tm_qweight *q;
    tm_err err;
    assert_int_equal(tm_qweight_new_int4(n, k, group, asym, 0, 0, "t", &q, &err), TM_OK);
    float *w = malloc(sizeof(float) * (size_t)k), *d = malloc(sizeof(float) * (size_t)k);
    double worst = 0;
    for (int32_t r = 0; r < n; r++) {
        fill_row(w, k, r % 7);
        assert_int_equal(tm_qweight_quantize_row(q, r, w, &err), TM_OK);
        tm_qweight_dequantize_row(q, r, d);
        int32_t ng = k / group;
        for (int32_t j = 0; j < k; j++) {
            float s = q->scales[(size_t)r * ng + j / group];
            assert_true(s > 0);
            assert_true(tm_f16_to_f32(tm_f32_to_f16(s)) == s); /* fp16-exact */
            double e = fabs((double)w[j] - d[j]);
            assert_true(e <= s / 2 * (1 + 1e-6) + 1e-30);
            if (e / s > worst) worst = e / s;
        }
        if (!asym) assert_null(q->zeros);
    }
    printf("[ info ] int4 %s %dx%d g%d: max |w - dq| = %.6f scale (bound 0.5)\n", asym ? "asym" : "sym", n, k,
           group, worst);
    assert_true(worst > 0.3); /* the bound is tight, not vacuous */
    free(w);
    free(d);
    tm_qweight_free(q);
}

static void test_int4_rtn_bound(void **state)
{
    (void)state;
    check_int4_bound(0, 21, 256, 128);
    check_int4_bound(1, 21, 256, 128);
    check_int4_bound(0, 14, 352, 32);
    check_int4_bound(1, 14, 96, 8);
    /* all-zero and constant rows come back exactly */
    tm_qweight *q;
    assert_int_equal(tm_qweight_new_int4(2, 16, 16, 1, 0, 0, "t", &q, NULL), TM_OK);
    float w[16], d[16];
    fill_row(w, 16, 1);
    assert_int_equal(tm_qweight_quantize_row(q, 0, w, NULL), TM_OK);
    tm_qweight_dequantize_row(q, 0, d);
    for (int j = 0; j < 16; j++) assert_true(d[j] == 0.0f);
    fill_row(w, 16, 2);
    assert_int_equal(tm_qweight_quantize_row(q, 1, w, NULL), TM_OK);
    tm_qweight_dequantize_row(q, 1, d);
    for (int j = 0; j < 16; j++) assert_true(fabsf(d[j] - 0.25f) <= q->scales[1] / 2);
    /* hostile input */
    tm_err err;
    w[3] = NAN;
    assert_int_equal(tm_qweight_quantize_row(q, 0, w, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "[0][3] is not finite"));
    fill_row(w, 16, 0);
    w[0] = 1e30f; /* scale beyond fp16 */
    assert_int_equal(tm_qweight_quantize_row(q, 0, w, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "outside fp16's range"));
    tm_qweight_free(q);
    assert_int_equal(tm_qweight_new_int4(2, 12, 8, 0, 0, 0, "proj", &q, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "proj: in_features 12 is not a multiple of 8"));
    assert_int_equal(tm_qweight_new_int4(2, 48, 32, 0, 0, 0, "proj", &q, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "group size 32"));
    assert_int_equal(tm_qweight_new_int4(0, 48, 16, 0, 0, 0, "proj", &q, &err), TM_ERR_INPUT);
}

static void test_pick_group_and_names(void **state)
{
    (void)state;
    assert_int_equal(tm_q4_pick_group(4096, 128), 128);
    assert_int_equal(tm_q4_pick_group(14336, 128), 128);
    assert_int_equal(tm_q4_pick_group(352, 128), 32);
    assert_int_equal(tm_q4_pick_group(192, 128), 64);
    assert_int_equal(tm_q4_pick_group(160, 128), 32);
    assert_int_equal(tm_q4_pick_group(64, 128), 64);
    assert_int_equal(tm_q4_pick_group(104, 128), 8);
    assert_int_equal(tm_q4_pick_group(12, 128), 0);
    tm_quant_scheme s;
    tm_err err;
    assert_int_equal(tm_quant_scheme_parse("int4-asym", &s, &err), TM_OK);
    assert_int_equal(s, TM_QS_INT4_ASYM);
    assert_string_equal(tm_quant_scheme_name(TM_QS_FP8), "fp8");
    assert_int_equal(tm_quant_scheme_parse("int8", &s, &err), TM_ERR_USAGE);
    assert_string_equal(err.msg, "quantization 'int8' is not known (known: none, int4, int4-asym, fp8)");
    tm_kv_dtype kd;
    assert_int_equal(tm_kv_dtype_parse("fp8", &kd, &err), TM_OK);
    assert_int_equal(kd, TM_KV_FP8);
    assert_int_equal(tm_kv_dtype_parse("fp16", &kd, &err), TM_ERR_USAGE);
    assert_string_equal(tm_kv_dtype_name(TM_KV_BF16), "bf16");
    char d[128];
    tm_quant_config qc = {.method = TM_QM_GPTQ, .bits = 4, .group_size = 128, .sym = 1, .desc_act = 1};
    tm_quant_config_describe(&qc, d, sizeof d);
    assert_string_equal(d, "gptq int4 g128 sym act-order (gptq v1)");
}

/* ---- GPTQ, hand-built ----------------------------------------------------------- */

/* qweight [k/8][n] words from codes qv(i, c) (input row i, output column c),
 * packed along the input dim: nibble j of word [i/8][c] = row 8*(i/8)+j. */
static void gptq_pack(int32_t n, int32_t k, int (*qv)(int i, int c), int32_t *qw)
{
    for (int32_t w = 0; w < k / 8; w++)
        for (int32_t c = 0; c < n; c++) {
            uint32_t word = 0;
            for (int j = 0; j < 8; j++) word |= (uint32_t)qv(8 * w + j, c) << (4 * j);
            memcpy(&qw[(size_t)w * n + c], &word, 4);
        }
}

static int q_diag(int i, int c) { return (i + c) & 15; }
static int q_mix(int i, int c) { return (3 * i + c) & 15; }

static void test_gptq_hand_built(void **state)
{
    (void)state;
    tm_err err;
    /* 8 x 8, one group. Word for column 0 holds rows 0..7 = codes 0..7: 0x76543210. */
    int32_t qw[8];
    gptq_pack(8, 8, q_diag, qw);
    assert_int_equal((uint32_t)qw[0], 0x76543210u);
    assert_int_equal((uint32_t)qw[1], 0x87654321u);
    float sc[8];
    for (int c = 0; c < 8; c++) sc[c] = 0.25f * (float)(c + 1);
    int32_t qz_v1 = 0x77777777; /* v1 stores zero - 1: every zero is 8 */
    tm_gptq_src src = {.n = 8, .k = 8, .group = -1, .qweight = qw, .qzeros = &qz_v1, .scales = sc};
    tm_qweight *q;
    assert_int_equal(tm_qweight_from_gptq(&src, "t", &q, &err), TM_OK);
    assert_null(q->zeros); /* all 8: symmetric */
    assert_null(q->perm);
    assert_int_equal(q->group, 8);
    assert_true(q->scales_f16);
    float d[16];
    for (int c = 0; c < 8; c++) {
        tm_qweight_dequantize_row(q, c, d);
        for (int i = 0; i < 8; i++) assert_true(d[i] == (float)(((i + c) & 15) - 8) * sc[c]);
    }
    /* row 0 of the canonical layout: column 0's codes 0..7 packed along in: the same word */
    assert_int_equal(q->qweight[0], 0x76543210u);
    tm_qweight_free(q);

    /* v2 stores the zero itself: 0x88888888 is the same matrix */
    int32_t qz = (int32_t)0x88888888u;
    src.qzeros = &qz;
    src.v2 = 1;
    assert_int_equal(tm_qweight_from_gptq(&src, "t", &q, &err), TM_OK);
    assert_null(q->zeros);
    tm_qweight_dequantize_row(q, 3, d);
    for (int i = 0; i < 8; i++) assert_true(d[i] == (float)(((i + 3) & 15) - 8) * sc[3]);
    tm_qweight_free(q);
    /* ... and the same word read as v1 means zero 9 everywhere: asymmetric */
    src.v2 = 0;
    assert_int_equal(tm_qweight_from_gptq(&src, "t", &q, &err), TM_OK);
    assert_non_null(q->zeros);
    tm_qweight_dequantize_row(q, 3, d);
    for (int i = 0; i < 8; i++) assert_true(d[i] == (float)(((i + 3) & 15) - 9) * sc[3]);
    tm_qweight_free(q);

    /* v1 asymmetric: stored zero of column c is c (zero c + 1); column 7 stores
     * 15, the -1 v1 wrote for a true zero of 0 */
    qz = (int32_t)0xf6543210u;
    assert_int_equal(tm_qweight_from_gptq(&src, "t", &q, &err), TM_OK);
    assert_non_null(q->zeros);
    for (int c = 0; c < 8; c++) {
        int zero = c == 7 ? 0 : c + 1;
        assert_int_equal(q->zeros[c], zero);
        tm_qweight_dequantize_row(q, c, d);
        for (int i = 0; i < 8; i++) assert_true(d[i] == (float)(((i + c) & 15) - zero) * sc[c]);
    }
    tm_qweight_free(q);

    /* act-order: k 16, two groups of 8; even input rows in group 1, odd rows in group 0 */
    int32_t qw2[2 * 8], g_idx[16], qz2[2];
    float sc2[2 * 8];
    gptq_pack(8, 16, q_mix, qw2);
    for (int i = 0; i < 16; i++) g_idx[i] = i % 2 ? 0 : 1;
    qz2[0] = 0x77777777;                 /* group 0: zero 8 */
    qz2[1] = (int32_t)0x66666666u;       /* group 1: zero 7 */
    for (int c = 0; c < 8; c++) sc2[c] = 1.0f, sc2[8 + c] = 2.0f + (float)c;
    tm_gptq_src s2 = {.n = 8, .k = 16, .group = 8, .qweight = qw2, .qzeros = qz2, .scales = sc2, .g_idx = g_idx};
    assert_int_equal(tm_qweight_from_gptq(&s2, "t", &q, &err), TM_OK);
    assert_non_null(q->perm);
    for (int j = 0; j < 8; j++) {
        assert_int_equal(q->perm[j], 2 * j + 1); /* group 0 = odd rows, in order */
        assert_int_equal(q->perm[8 + j], 2 * j);
    }
    float W[8][16];
    for (int c = 0; c < 8; c++) {
        tm_qweight_dequantize_row(q, c, d);
        for (int i = 0; i < 16; i++) {
            int g = g_idx[i];
            W[c][i] = (float)(q_mix(i, c) - (g ? 7 : 8)) * sc2[g * 8 + c];
            assert_true(d[i] == W[c][i]);
        }
    }
    /* the packed GEMM (permuting the activation) equals x . W^T */
    float x[3 * 16], y[3 * 8];
    for (int i = 0; i < 48; i++) x[i] = frand(-1, 1);
    tm_qweight_gemm_ref_int4(q, x, 3, y);
    for (int t = 0; t < 3; t++)
        for (int c = 0; c < 8; c++) {
            double ref = 0;
            for (int i = 0; i < 16; i++) ref += (double)x[t * 16 + i] * W[c][i];
            assert_true(fabs(ref - y[t * 8 + c]) < 1e-4);
        }
    tm_qweight_free(q);

    /* hostile */
    g_idx[3] = 2;
    assert_int_equal(tm_qweight_from_gptq(&s2, "L0.q_proj", &q, &err), TM_ERR_INPUT);
    assert_string_equal(err.msg, "L0.q_proj: g_idx[3] = 2 is not a group in [0, 2)");
    for (int i = 0; i < 16; i++) g_idx[i] = 0;
    assert_int_equal(tm_qweight_from_gptq(&s2, "L0.q_proj", &q, &err), TM_ERR_INPUT);
    assert_string_equal(err.msg, "L0.q_proj: g_idx puts 16 input rows in group 0, expected group_size 8");
    s2.g_idx = NULL;
    sc2[2] = NAN;
    assert_int_equal(tm_qweight_from_gptq(&s2, "L0.q_proj", &q, &err), TM_ERR_INPUT);
    assert_string_equal(err.msg, "L0.q_proj: scales[0][2] is not finite");
    sc2[2] = 1;
    s2.n = 12;
    assert_int_equal(tm_qweight_from_gptq(&s2, "L0.q_proj", &q, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "out_features 12 is not a multiple of 8"));
    s2.n = 8, s2.group = 24;
    assert_int_equal(tm_qweight_from_gptq(&s2, "L0.q_proj", &q, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "group_size 24 must be -1 or a multiple of 8 that divides in_features 16"));
    s2.group = 8, s2.qzeros = NULL;
    assert_int_equal(tm_qweight_from_gptq(&s2, "L0.q_proj", &q, &err), TM_ERR_INPUT);
}

/* ---- AWQ, hand-built --------------------------------------------------------------- */

/* AutoAWQ's packer: nibble i of word w holds output column 8w + order[i]. */
static void awq_pack(int32_t rows, int32_t n, int (*qv)(int r, int c), int32_t *out)
{
    static const int order[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    for (int32_t r = 0; r < rows; r++)
        for (int32_t w = 0; w < n / 8; w++) {
            uint32_t word = 0;
            for (int i = 0; i < 8; i++) word |= (uint32_t)qv(r, 8 * w + order[i]) << (4 * i);
            memcpy(&out[(size_t)r * (n / 8) + w], &word, 4);
        }
}

static int q_col(int r, int c) { (void)r; return c & 15; }
static int q_awq(int r, int c) { return (r + 2 * c) & 15; }
static int z_awq(int g, int c) { return (c + g) % 4 + 6; }

static void test_awq_hand_built(void **state)
{
    (void)state;
    tm_err err;
    /* codes 0..15 by output column: words 0x75316420 (columns 0..7) and 0xfdb9eca8 (8..15) */
    int32_t qw[8 * 2], qz[2];
    awq_pack(8, 16, q_col, qw);
    assert_int_equal((uint32_t)qw[0], 0x75316420u);
    assert_int_equal((uint32_t)qw[1], 0xfdb9eca8u);
    qz[0] = qz[1] = 0; /* zero 0 */
    float sc[16];
    for (int c = 0; c < 16; c++) sc[c] = 1.0f;
    tm_awq_src src = {.n = 16, .k = 8, .group = 8, .qweight = qw, .qzeros = qz, .scales = sc};
    tm_qweight *q;
    assert_int_equal(tm_qweight_from_awq(&src, "t", &q, &err), TM_OK);
    assert_non_null(q->zeros);
    float d[64];
    for (int c = 0; c < 16; c++) {
        tm_qweight_dequantize_row(q, c, d);
        for (int r = 0; r < 8; r++) assert_true(d[r] == (float)c); /* W[c][r] = code c - zero 0 */
    }
    tm_qweight_free(q);
    /* zeros all 8 (0x88888888): symmetric */
    qz[0] = qz[1] = (int32_t)0x88888888u;
    assert_int_equal(tm_qweight_from_awq(&src, "t", &q, &err), TM_OK);
    assert_null(q->zeros);
    tm_qweight_dequantize_row(q, 11, d);
    for (int r = 0; r < 8; r++) assert_true(d[r] == 3.0f);
    tm_qweight_free(q);

    /* two groups, per-column zeros and scales, both packed in the AWQ order */
    int32_t qw2[32 * 2], qz2[2 * 2];
    float sc2[2 * 16];
    awq_pack(32, 16, q_awq, qw2);
    awq_pack(2, 16, z_awq, qz2);
    for (int i = 0; i < 32; i++) sc2[i] = 0.125f * (float)(1 + i % 5);
    tm_awq_src s2 = {.n = 16, .k = 32, .group = 16, .qweight = qw2, .qzeros = qz2, .scales = sc2};
    assert_int_equal(tm_qweight_from_awq(&s2, "t", &q, &err), TM_OK);
    float W[16][32];
    for (int c = 0; c < 16; c++) {
        tm_qweight_dequantize_row(q, c, d);
        for (int r = 0; r < 32; r++) {
            int g = r / 16;
            W[c][r] = (float)(q_awq(r, c) - z_awq(g, c)) * sc2[g * 16 + c];
            assert_true(d[r] == W[c][r]);
        }
    }
    float x[5 * 32], y[5 * 16];
    for (int i = 0; i < 5 * 32; i++) x[i] = frand(-2, 2);
    tm_qweight_gemm_ref_int4(q, x, 5, y);
    for (int t = 0; t < 5; t++)
        for (int c = 0; c < 16; c++) {
            double ref = 0;
            for (int r = 0; r < 32; r++) ref += (double)x[t * 32 + r] * W[c][r];
            assert_true(fabs(ref - y[t * 16 + c]) < 1e-4);
        }
    tm_qweight_free(q);
    s2.k = 24;
    assert_int_equal(tm_qweight_from_awq(&s2, "L1.up_proj", &q, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "L1.up_proj: group_size 16"));
}

/* ---- FP8 ---------------------------------------------------------------------------------- */

static void test_fp8_weights(void **state)
{
    (void)state;
    tm_err err;
    /* RTN: scale amax/448, error within e4m3's precision */
    tm_qweight *q;
    int32_t n = 9, k = 100;
    assert_int_equal(tm_qweight_new_fp8(n, k, NULL, 1, 0, "t", &q, &err), TM_OK);
    float w[100], d[100];
    for (int32_t r = 0; r < n; r++) {
        fill_row(w, k, r % 7);
        assert_int_equal(tm_qweight_quantize_row(q, r, w, &err), TM_OK);
        float amax = 0;
        for (int j = 0; j < k; j++) amax = fmaxf(amax, fabsf(w[j]));
        assert_true(q->w8_scale[r] == (amax > 0 ? amax / 448.0f : 1.0f));
        tm_qweight_dequantize_row(q, r, d);
        for (int j = 0; j < k; j++) {
            float s = q->w8_scale[r];
            assert_true(fabsf(w[j] - d[j]) <= fmaxf(fabsf(w[j]) * 0.0625f, s * ldexpf(1, -10)) * 1.0001f);
        }
    }
    tm_qweight_free(q);
    /* from a checkpoint: per-tensor scale broadcast, per-channel scales */
    uint8_t codes[2 * 3] = {0x38, 0xc0, 0x00, 0x7e, 0x01, 0x80};
    float one = 0.5f, two[2] = {2.0f, 0.25f};
    assert_int_equal(tm_qweight_from_fp8(2, 3, codes, &one, 1, 1, "t", &q, &err), TM_OK);
    assert_true(q->w8 == codes && q->w8_borrowed && q->act_fp8);
    tm_qweight_dequantize_row(q, 1, d);
    assert_true(d[0] == 224.0f && d[1] == ldexpf(1, -10) && d[2] == 0.0f);
    tm_qweight_free(q);
    assert_int_equal(tm_qweight_from_fp8(2, 3, codes, two, 2, 0, "t", &q, &err), TM_OK);
    tm_qweight_dequantize_row(q, 0, d);
    assert_true(d[0] == 2.0f && d[1] == -4.0f && d[2] == 0.0f);
    tm_qweight_free(q);
    assert_int_equal(tm_qweight_from_fp8(2, 3, codes, two, 3, 0, "L2.o_proj", &q, &err), TM_ERR_INPUT);
    assert_string_equal(err.msg,
                        "L2.o_proj: weight_scale has 3 values; expected 1 (per tensor) or 2 (per output channel)");
    two[1] = -1;
    assert_int_equal(tm_qweight_from_fp8(2, 3, codes, two, 2, 0, "L2.o_proj", &q, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "weight_scale[1] = -1"));
    codes[4] = 0xff;
    assert_int_equal(tm_qweight_from_fp8(2, 3, codes, &one, 1, 0, "L2.o_proj", &q, &err), TM_ERR_INPUT);
    assert_string_equal(err.msg, "L2.o_proj: weight[1][1] is a NaN code (0xff)");
}

static void test_fp8_activation_and_kv(void **state)
{
    (void)state;
    float x[3 * 64], y[3 * 64];
    uint8_t c[3 * 64];
    float sc[3];
    for (int i = 0; i < 3 * 64; i++) x[i] = frand(-3, 3) * (i % 7 == 0 ? 20 : 1);
    for (int i = 0; i < 64; i++) x[128 + i] = 0; /* an all-zero head */
    tm_kv_fp8_quantize(x, 3, 64, c, sc);
    tm_kv_fp8_dequantize(c, sc, 3, 64, y);
    for (int h = 0; h < 3; h++) {
        float amax = 0;
        for (int d = 0; d < 64; d++) amax = fmaxf(amax, fabsf(x[h * 64 + d]));
        assert_true(sc[h] == (amax > 0 ? amax / 448.0f : 1.0f));
        for (int d = 0; d < 64; d++) {
            float e = fabsf(x[h * 64 + d] - y[h * 64 + d]);
            assert_true(e <= fmaxf(fabsf(x[h * 64 + d]) * 0.0625f, sc[h] * ldexpf(1, -10)) * 1.0001f);
        }
    }
    for (int d = 0; d < 64; d++) assert_true(c[128 + d] == 0 && y[128 + d] == 0);
    /* the activation round trip equals quantize + dequantize with the row's scale */
    memcpy(y, x, sizeof(float) * 64);
    tm_fp8_fake_quant_row(y, 64);
    float s = tm_fp8_quantize_row(x, 64, c);
    for (int d = 0; d < 64; d++) assert_true(y[d] == tm_e4m3_to_f32(c[d]) * s);
    /* the row's largest magnitude maps to +-448 */
    int saw448 = 0;
    for (int d = 0; d < 64; d++) saw448 |= (c[d] & 0x7f) == 0x7e;
    assert_true(saw448);
}

/* ---- GEMM level: packed reference GEMM vs the CPU matmul of dequantized W ------- */

static void gemm_case(tm_qweight *q, int32_t T)
{
    int32_t n = q->n, k = q->k;
    float *x = malloc(sizeof(float) * (size_t)T * k), *xin = malloc(sizeof(float) * (size_t)T * k);
    float *W = malloc(sizeof(float) * (size_t)n * k), *y_ref = malloc(sizeof(float) * (size_t)T * n);
    float *y_cpu = malloc(sizeof(float) * (size_t)T * n);
    for (size_t i = 0; i < (size_t)T * k; i++) x[i] = frand(-2, 2) * (i % 11 == 0 ? 8 : 1);
    for (int32_t r = 0; r < n; r++) tm_qweight_dequantize_row(q, r, W + (size_t)r * k);
    memcpy(xin, x, sizeof(float) * (size_t)T * k);
    if (q->fmt == TM_QFMT_FP8 && q->act_fp8)
        for (int32_t t = 0; t < T; t++) tm_fp8_fake_quant_row(xin + (size_t)t * k, k);
    if (q->fmt == TM_QFMT_INT4) tm_qweight_gemm_ref_int4(q, x, T, y_ref);
    else tm_qweight_gemm_ref_fp8(q, x, T, y_ref);
    tm_cpu_matmul(NULL, xin, T, k, W, n, NULL, y_cpu);
    double worst = 0;
    for (int32_t t = 0; t < T; t++)
        for (int32_t c = 0; c < n; c++) {
            double mag = 0;
            for (int32_t j = 0; j < k; j++) mag += fabs((double)xin[(size_t)t * k + j] * W[(size_t)c * k + j]);
            double e = fabs((double)y_ref[(size_t)t * n + c] - y_cpu[(size_t)t * n + c]);
            assert_true(e <= 2e-6 * mag + 1e-6);
            if (mag > 0 && e / mag > worst) worst = e / mag;
        }
    free(x), free(xin), free(W), free(y_ref), free(y_cpu);
}

static void test_gemm_level(void **state)
{
    (void)state;
    static const int32_t Ts[] = {1, 3, 5, 17};
    static const int32_t shapes[][3] = {{8, 16, 8}, {24, 64, 32}, {40, 128, 128}, {16, 352, 32}, {56, 96, 16}};
    tm_err err;
    int cases = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int32_t n = shapes[si][0], k = shapes[si][1], g = shapes[si][2];
        float *w = malloc(sizeof(float) * (size_t)k);
        for (int kind = 0; kind < 5; kind++) {
            tm_qweight *q = NULL;
            if (kind <= 1) { /* int4 sym / asym RTN */
                assert_int_equal(tm_qweight_new_int4(n, k, g, kind, 0, 0, "t", &q, &err), TM_OK);
            } else if (kind == 2) { /* act-order GPTQ: random codes, zeros, a random group assignment */
                int32_t ng = k / g, *qw = malloc(sizeof(int32_t) * (size_t)k / 8 * n);
                int32_t *qz = malloc(sizeof(int32_t) * (size_t)ng * n / 8), *gi = malloc(sizeof(int32_t) * (size_t)k);
                float *sc = malloc(sizeof(float) * (size_t)ng * n);
                for (size_t i = 0; i < (size_t)k / 8 * n; i++) qw[i] = (int32_t)rnd();
                for (size_t i = 0; i < (size_t)ng * n / 8; i++) qz[i] = (int32_t)rnd();
                for (size_t i = 0; i < (size_t)ng * n; i++) sc[i] = tm_f16_to_f32(tm_f32_to_f16(frand(0.01f, 0.1f)));
                for (int32_t i = 0; i < k; i++) gi[i] = i / g;
                for (int32_t i = k - 1; i > 0; i--) { /* shuffle */
                    int32_t j = (int32_t)(rnd() % (uint32_t)(i + 1)), tmp = gi[i];
                    gi[i] = gi[j], gi[j] = tmp;
                }
                tm_gptq_src src = {.n = n, .k = k, .group = g, .qweight = qw, .qzeros = qz, .scales = sc, .g_idx = gi};
                assert_int_equal(tm_qweight_from_gptq(&src, "t", &q, &err), TM_OK);
                if (ng > 1) assert_non_null(q->perm);
                free(qw), free(qz), free(gi), free(sc);
            } else { /* fp8, W8A8 and weight-only */
                assert_int_equal(tm_qweight_new_fp8(n, k, NULL, kind == 3, 0, "t", &q, &err), TM_OK);
            }
            if (kind != 2)
                for (int32_t r = 0; r < n; r++) {
                    for (int32_t j = 0; j < k; j++) w[j] = frand(-1, 1) * (j % 13 == 0 ? 5 : 1);
                    assert_int_equal(tm_qweight_quantize_row(q, r, w, &err), TM_OK);
                }
            for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++, cases++) gemm_case(q, Ts[ti]);
            tm_qweight_free(q);
        }
        free(w);
    }
    printf("[ info ] %d GEMM cases (int4 sym/asym/act-order, fp8 W8A8/W8A16; M = 1, 3, 5, 17): packed reference "
           "== fp32 matmul of the dequantized weights within 2e-6 relative\n", cases);
}

/* ---- the CPU's fp8 attention reads the cache format exactly ----------------------- */

static void test_cpu_attention_fp8(void **state)
{
    (void)state;
    enum { BS = 4, NB = 6, NKV = 2, HD = 24, CTX = 19 };
    static uint8_t k8[NB * BS * NKV * HD], v8[NB * BS * NKV * HD];
    static float ks[NB * BS * NKV], vs[NB * BS * NKV], kf[NB * BS * NKV * HD], vf[NB * BS * NKV * HD];
    float lut[256], tmp[HD], scores[CTX], q[HD], o1[HD], o2[HD];
    for (int i = 0; i < 256; i++) lut[i] = tm_e4m3_to_f32((uint8_t)i);
    for (int slot = 0; slot < NB * BS; slot++) {
        float kk[NKV * HD], vv[NKV * HD];
        for (int i = 0; i < NKV * HD; i++) kk[i] = frand(-4, 4), vv[i] = frand(-1, 1);
        tm_kv_fp8_quantize(kk, NKV, HD, k8 + slot * NKV * HD, ks + slot * NKV);
        tm_kv_fp8_quantize(vv, NKV, HD, v8 + slot * NKV * HD, vs + slot * NKV);
        tm_kv_fp8_dequantize(k8 + slot * NKV * HD, ks + slot * NKV, NKV, HD, kf + slot * NKV * HD);
        tm_kv_fp8_dequantize(v8 + slot * NKV * HD, vs + slot * NKV, NKV, HD, vf + slot * NKV * HD);
    }
    int32_t table[NB] = {4, 1, 5, 0, 3, 2};
    for (int i = 0; i < HD; i++) q[i] = frand(-1, 1);
    tm_cpu_kv_view fv = {.k = kf, .v = vf, .block_table = table, .block_size = BS, .n_kv_heads = NKV, .head_dim = HD};
    tm_cpu_kv8_view qv = {.k = k8, .v = v8, .k_scale = ks, .v_scale = vs, .lut = lut, .block_table = table,
                          .block_size = BS, .n_kv_heads = NKV, .head_dim = HD};
    for (int h = 0; h < NKV; h++) {
        tm_cpu_attention_head(q, h, CTX, &fv, 0.2f, scores, o1);
        tm_cpu_attention_head_fp8(q, h, CTX, &qv, 0.2f, scores, tmp, o2);
        assert_memory_equal(o1, o2, sizeof o1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e4m3_all_codes),
        cmocka_unit_test(test_e4m3_rne_and_saturation),
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_int4_rtn_bound),
        cmocka_unit_test(test_pick_group_and_names),
        cmocka_unit_test(test_gptq_hand_built),
        cmocka_unit_test(test_awq_hand_built),
        cmocka_unit_test(test_fp8_weights),
        cmocka_unit_test(test_fp8_activation_and_kv),
        cmocka_unit_test(test_gemm_level),
        cmocka_unit_test(test_cpu_attention_fp8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
