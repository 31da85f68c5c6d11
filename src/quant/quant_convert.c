/* quant_convert.c — checkpoint converters into quant.h's canonical INT4 /
 * FP8 descriptor: GPTQ (v1 and v2 zero points, act-order g_idx), AWQ and
 * FP8 (per-tensor or per-channel scales). Everything (shapes, group indices,
 * zero points, codes, scales) is validated before the descriptor is
 * allocated, so a hostile checkpoint gives an error that names the tensor.
 */
#include "quant/quant.h"
#include "quant/quant_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t k_awq_reverse[8] = {0, 4, 1, 5, 2, 6, 3, 7}; /* column j lives in nibble [j] */

static uint32_t nib(int32_t word, int i) { return ((uint32_t)word >> (4 * i)) & 15u; }

static tm_status check_scales(const float *s, size_t n_scales, int32_t n, const char *what, int *f16_exact,
                              tm_err *err)
{
    *f16_exact = 1;
    for (size_t i = 0; i < n_scales; i++) {
        if (!isfinite(s[i]))
            return tm_errf(err, TM_ERR_INPUT, "%s: scales[%zu][%zu] is not finite", what, i / (size_t)n,
                           i % (size_t)n);
        if (tm_f16_to_f32(tm_f32_to_f16(s[i])) != s[i]) *f16_exact = 0;
    }
    return TM_OK;
}

/* Common shape checks for GPTQ / AWQ: n, k multiples of 8; group resolves. */
static tm_status check_packed_shape(const char *fmt, int32_t n, int32_t k, int32_t group, const char *what,
                                    int32_t *G, tm_err *err)
{
    tm_status s = tm_quant_check_nk(n, k, what, err);
    if (s) return s;
    if (n % 8)
        return tm_errf(err, TM_ERR_INPUT, "%s: out_features %d is not a multiple of 8 (%s packs 8 per int32)",
                       what, n, fmt);
    if (k % 8)
        return tm_errf(err, TM_ERR_INPUT, "%s: in_features %d is not a multiple of 8 (%s packs 8 per int32)",
                       what, k, fmt);
    int32_t g = group == -1 ? k : group;
    if (g < 8 || g % 8 || k % g)
        return tm_errf(err, TM_ERR_INPUT,
                       "%s: group_size %d must be -1 or a multiple of 8 that divides in_features %d", what, group,
                       k);
    *G = g;
    return TM_OK;
}

/* GPTQ act-order: a stable counting sort of input rows by g_idx into *perm
 * (malloc'd; NULL without g_idx); every group must hold G rows. *identity
 * when g_idx is absent or the plain i / G order. */
static tm_status gptq_perm(const tm_gptq_src *src, int32_t G, int32_t ng, const char *what, int32_t **perm_out,
                           int *identity, tm_err *err)
{
    int32_t k = src->k;
    *perm_out = NULL;
    *identity = 1;
    if (!src->g_idx) return TM_OK;
    int32_t *count = calloc((size_t)ng + 1, sizeof *count);
    int32_t *perm = malloc((size_t)k * sizeof *perm);
    if (!count || !perm) {
        free(count);
        free(perm);
        return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", what);
    }
    for (int32_t i = 0; i < k; i++) {
        int32_t gi = src->g_idx[i];
        if (gi < 0 || gi >= ng) {
            free(count);
            free(perm);
            return tm_errf(err, TM_ERR_INPUT, "%s: g_idx[%d] = %d is not a group in [0, %d)", what, i, gi, ng);
        }
        count[gi + 1]++;
        if (gi != i / G) *identity = 0;
    }
    for (int32_t g = 0; g < ng; g++) {
        if (count[g + 1] != G) {
            int32_t c = count[g + 1];
            free(count);
            free(perm);
            return tm_errf(err, TM_ERR_INPUT,
                           "%s: g_idx puts %d input rows in group %d, expected group_size %d", what, c, g, G);
        }
        count[g + 1] += count[g];
    }
    for (int32_t i = 0; i < k; i++) perm[count[src->g_idx[i]]++] = i;
    free(count);
    *perm_out = perm;
    return TM_OK;
}

/* Whether every GPTQ zero point is 8 (a symmetric checkpoint). */
static int gptq_all_zeros_8(const tm_gptq_src *src, int32_t ng)
{
    int32_t n = src->n;
    size_t N = (size_t)n;
    int all8 = 1;
    for (int32_t g = 0; g < ng && all8; g++)
        for (int32_t c = 0; c < n && all8; c++) {
            uint32_t z = nib(src->qzeros[(size_t)g * (N / 8) + (size_t)c / 8], c % 8);
            if (!src->v2) z = (z + 1) & 15u;
            all8 = z == 8;
        }
    return all8;
}

/* Repack GPTQ's [k/8, n] column-packed words, scales and zeros into q's rows. */
static void gptq_repack(const tm_gptq_src *src, int32_t ng, tm_qweight *q)
{
    int32_t n = src->n, k = src->k;
    size_t N = (size_t)n, words = (size_t)k / 8;
    for (int32_t c = 0; c < n; c++) {
        uint32_t *row = q->qweight + (size_t)c * words;
        for (int32_t j = 0; j < k; j++) {
            int32_t i = q->perm ? q->perm[j] : j; /* input row of packed column j */
            uint32_t v = nib(src->qweight[(size_t)(i / 8) * N + (size_t)c], i % 8);
            row[j / 8] |= v << (4 * (j % 8));
        }
        for (int32_t g = 0; g < ng; g++) {
            q->scales[(size_t)c * ng + g] = src->scales[(size_t)g * N + (size_t)c];
            if (q->zeros) {
                uint32_t z = nib(src->qzeros[(size_t)g * (N / 8) + (size_t)c / 8], c % 8);
                q->zeros[(size_t)c * ng + g] = (uint8_t)(src->v2 ? z : (z + 1) & 15u);
            }
        }
    }
}

tm_status tm_qweight_from_gptq(const tm_gptq_src *src, const char *what, tm_qweight **out, tm_err *err)
{
    *out = NULL;
    if (!what) what = "gptq";
    int32_t n = src->n, k = src->k, G;
    tm_status s = check_packed_shape("gptq", n, k, src->group, what, &G, err);
    if (s) return s;
    if (!src->qweight || !src->qzeros || !src->scales)
        return tm_errf(err, TM_ERR_INPUT, "%s: qweight, qzeros and scales are all required", what);
    int32_t ng = k / G;
    int f16;
    if ((s = check_scales(src->scales, (size_t)ng * (size_t)n, n, what, &f16, err))) return s;
    int32_t *perm;
    int identity;
    if ((s = gptq_perm(src, G, ng, what, &perm, &identity, err))) return s;
    int all8 = gptq_all_zeros_8(src, ng);
    tm_qweight *q;
    if ((s = tm_qweight_new_int4(n, k, G, !all8, !identity, 0, what, &q, err))) {
        free(perm);
        return s;
    }
    q->scales_f16 = f16;
    if (!identity) memcpy(q->perm, perm, (size_t)k * sizeof *perm);
    free(perm);
    gptq_repack(src, ng, q);
    *out = q;
    return TM_OK;
}

tm_status tm_qweight_from_awq(const tm_awq_src *src, const char *what, tm_qweight **out, tm_err *err)
{
    *out = NULL;
    if (!what) what = "awq";
    int32_t n = src->n, k = src->k, G;
    tm_status s = check_packed_shape("awq", n, k, src->group, what, &G, err);
    if (s) return s;
    if (!src->qweight || !src->qzeros || !src->scales)
        return tm_errf(err, TM_ERR_INPUT, "%s: qweight, qzeros and scales are all required", what);
    int32_t ng = k / G;
    size_t N = (size_t)n, W = N / 8;
    int f16;
    if ((s = check_scales(src->scales, (size_t)ng * N, n, what, &f16, err))) return s;
    int all8 = 1;
    for (size_t i = 0; i < (size_t)ng * W && all8; i++) all8 = (uint32_t)src->qzeros[i] == 0x88888888u;
    tm_qweight *q;
    if ((s = tm_qweight_new_int4(n, k, G, !all8, 0, 0, what, &q, err))) return s;
    q->scales_f16 = f16;
    size_t words = (size_t)k / 8;
    for (int32_t c = 0; c < n; c++) {
        int sh = k_awq_reverse[c % 8];
        uint32_t *row = q->qweight + (size_t)c * words;
        for (int32_t r = 0; r < k; r++) {
            uint32_t v = nib(src->qweight[(size_t)r * W + (size_t)c / 8], sh);
            row[r / 8] |= v << (4 * (r % 8));
        }
        for (int32_t g = 0; g < ng; g++) {
            q->scales[(size_t)c * ng + g] = src->scales[(size_t)g * N + (size_t)c];
            if (q->zeros) q->zeros[(size_t)c * ng + g] = (uint8_t)nib(src->qzeros[(size_t)g * W + (size_t)c / 8], sh);
        }
    }
    *out = q;
    return TM_OK;
}

tm_status tm_qweight_from_fp8(int32_t n, int32_t k, const uint8_t *w8, const float *scale, int32_t n_scale,
                              int act_fp8, const char *what, tm_qweight **out, tm_err *err)
{
    *out = NULL;
    if (!what) what = "fp8";
    tm_status s = tm_quant_check_nk(n, k, what, err);
    if (s) return s;
    if (!w8 || !scale) return tm_errf(err, TM_ERR_INPUT, "%s: weight and weight_scale are both required", what);
    if (n_scale != 1 && n_scale != n)
        return tm_errf(err, TM_ERR_INPUT,
                       "%s: weight_scale has %d values; expected 1 (per tensor) or %d (per output channel)", what,
                       n_scale, n);
    for (int32_t i = 0; i < n_scale; i++)
        if (!isfinite(scale[i]) || scale[i] < 0)
            return tm_errf(err, TM_ERR_INPUT, "%s: weight_scale[%d] = %g is not a finite non-negative number",
                           what, i, (double)scale[i]);
    size_t total = (size_t)n * (size_t)k;
    for (size_t i = 0; i < total; i++)
        if ((w8[i] & 0x7f) == 0x7f)
            return tm_errf(err, TM_ERR_INPUT, "%s: weight[%zu][%zu] is a NaN code (0x%02x)", what, i / (size_t)k,
                           i % (size_t)k, w8[i]);
    tm_qweight *q;
    if ((s = tm_qweight_new_fp8(n, k, w8, act_fp8, 0, what, &q, err))) return s;
    for (int32_t r = 0; r < n; r++) q->w8_scale[r] = scale[n_scale == 1 ? 0 : r];
    *out = q;
    return TM_OK;
}
