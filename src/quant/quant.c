/* quant.c — INT4 / FP8 formats: codecs, RTN quantizers, GPTQ / AWQ / FP8
 * activation and KV fp8 helpers, reference GEMMs (the checkpoint converters
 * are in quant_convert.c).
 *
 * The layouts and rounding rules are documented in quant.h; this file is
 * their one implementation. Converters validate everything (shapes, group
 * indices, zero points, codes, scales) before allocating the canonical
 * descriptor, so a hostile checkpoint gives an error that names the tensor.
 */
#include "quant/quant.h"
#include "quant/quant_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- scalar codecs ------------------------------------------------------- */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float tm_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalize into an f32 normal */
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while (!(man & 0x400));
            man &= 0x3ff;
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13);
        }
    } else if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13); /* inf or nan (payload kept) */
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    return bits_f32(u);
}

/* Round the integer m * 2^-shift to nearest, ties to even (shift in 1..31). */
static uint32_t shift_rne(uint32_t m, int shift)
{
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return q;
}

uint16_t tm_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00;        /* NaN */
    if (a >= 0x477ff000u) return sign | 0x7c00;       /* >= 65520 (or inf): rounds to inf */
    if (a < 0x38800000u) {                            /* below 2^-14: fp16 subnormal or zero */
        if (a <= 0x33000000u) return sign;            /* <= 2^-25 rounds to 0 (the tie is even) */
        uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
        return (uint16_t)(sign | shift_rne(m, (int)(126 - e))); /* m * 2^(e-150) in units of 2^-24 */
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u);       /* round to 10 mantissa bits, ties even */
    r -= (uint32_t)(127 - 15) << 23;
    return (uint16_t)(sign | (r >> 13));
}

float tm_f16_ceil(float x)
{
    uint16_t h = tm_f32_to_f16(x);
    if (tm_f16_to_f32(h) < x) h++; /* positive: the next code is the next value (0x7bff + 1 = inf) */
    return tm_f16_to_f32(h);
}

float tm_e4m3_to_f32(uint8_t c)
{
    int e = (c >> 3) & 0xf, m = c & 7;
    float v;
    if (e == 15 && m == 7) return (c & 0x80) ? -NAN : NAN;
    if (e == 0) v = ldexpf((float)m, -9);
    else v = ldexpf((float)(8 + m), e - 10);
    return (c & 0x80) ? -v : v;
}

uint8_t tm_f32_to_e4m3(float f)
{
    uint32_t u = f32_bits(f);
    uint8_t sign = (uint8_t)((u >> 24) & 0x80);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7f;          /* NaN */
    if (a >= 0x43e00000u) return sign | 0x7e;         /* >= 448 and inf saturate */
    if (a < 0x3c800000u) {                            /* below 2^-6: subnormal */
        uint32_t e = a >> 23;
        if (e < 141 - 31) return sign;                /* far below 2^-10 */
        uint32_t m = (a & 0x7fffffu) | (e ? 0x800000u : 0);
        int shift = (int)(141 - e);                   /* value in units of 2^-9 */
        if (shift > 31) return sign;
        return (uint8_t)(sign | shift_rne(m, shift)); /* 8 becomes 0x08 = 2^-6, correctly */
    }
    uint32_t r = a + 0x7ffffu + ((a >> 20) & 1u);     /* round to 3 mantissa bits, ties even */
    int e = (int)(r >> 23) - 127;                     /* -6 .. 8 */
    uint32_t m = (r >> 20) & 7u;
    if (e > 8 || (e == 8 && m == 7)) return sign | 0x7e;
    return (uint8_t)(sign | (uint8_t)((e + 7) << 3) | (uint8_t)m);
}

/* ---- option names ---------------------------------------------------------- */

static const char *const k_scheme_names[] = {"none", "int4", "int4-asym", "fp8"};

tm_status tm_quant_scheme_parse(const char *s, tm_quant_scheme *out, tm_err *err)
{
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, k_scheme_names[i])) {
            *out = (tm_quant_scheme)i;
            return TM_OK;
        }
    return tm_errf(err, TM_ERR_USAGE, "quantization '%.64s' is not known (known: %s)", s ? s : "(null)",
                   TM_QUANT_SCHEME_NAMES);
}

const char *tm_quant_scheme_name(tm_quant_scheme s)
{
    return (unsigned)s < 4 ? k_scheme_names[s] : "?";
}

static const char *const k_kv_names[] = {"auto", "bf16", "fp8"};

tm_status tm_kv_dtype_parse(const char *s, tm_kv_dtype *out, tm_err *err)
{
    for (int i = 0; s && i < 3; i++)
        if (!strcmp(s, k_kv_names[i])) {
            *out = (tm_kv_dtype)i;
            return TM_OK;
        }
    return tm_errf(err, TM_ERR_USAGE, "KV dtype '%.64s' is not known (known: %s)", s ? s : "(null)",
                   TM_KV_DTYPE_NAMES);
}

const char *tm_kv_dtype_name(tm_kv_dtype d) { return (unsigned)d < 3 ? k_kv_names[d] : "?"; }

void tm_quant_config_describe(const tm_quant_config *qc, char *out, size_t outsz)
{
    if (!outsz) return;
    char g[32] = "";
    if (qc->group_size > 0) snprintf(g, sizeof g, " g%d", qc->group_size);
    else if (qc->group_size == -1) snprintf(g, sizeof g, " per-row");
    switch (qc->method) {
    case TM_QM_NONE: snprintf(out, outsz, "none"); break;
    case TM_QM_GPTQ:
        snprintf(out, outsz, "gptq int%d%s%s%s (%s)", qc->bits, g, qc->sym ? " sym" : " asym",
                 qc->desc_act ? " act-order" : "", qc->gptq_v2 ? "gptq_v2" : "gptq v1");
        break;
    case TM_QM_AWQ: snprintf(out, outsz, "awq int%d%s zero-point (gemm)", qc->bits, g); break;
    case TM_QM_FP8: snprintf(out, outsz, "fp8 e4m3 %s", qc->act_fp8 ? "W8A8" : "W8A16"); break;
    case TM_QM_CT_FP8:
        snprintf(out, outsz, "compressed-tensors fp8 e4m3 %s", qc->act_fp8 ? "W8A8" : "W8A16");
        break;
    case TM_QM_RTN:
        snprintf(out, outsz, "%s (round-to-nearest at load%s)", tm_quant_scheme_name(qc->scheme),
                 qc->scheme == TM_QS_FP8 ? ", per-channel, W8A8" : ", groups of <= 128");
        break;
    default: snprintf(out, outsz, "?"); break;
    }
}

/* ---- the descriptor ------------------------------------------------------- */

const uint8_t tm_awq_order[8] = {0, 2, 4, 6, 1, 3, 5, 7};

int32_t tm_q4_pick_group(int32_t k, int32_t want)
{
    if (k <= 0 || k % 8 || want < 8) return 0;
    int32_t g = 8;
    while ((int64_t)g * 2 <= want) g *= 2;
    while (g > 8 && k % g) g /= 2;
    return k % g ? 0 : g;
}

size_t tm_qweight_bytes(const tm_qweight *q)
{
    size_t n = (size_t)q->n, k = (size_t)q->k;
    if (q->fmt == TM_QFMT_FP8) return n * k + n * sizeof(float);
    size_t ng = q->group > 0 ? k / (size_t)q->group : 0;
    size_t b = n * k / 2 + n * ng * sizeof(float);
    if (q->asym) b += n * ng;
    if (q->perm) b += k * sizeof(int32_t);
    return b;
}

#define ALIGN64(x) (((x) + 63) & ~(size_t)63)

tm_status tm_quant_check_nk(int32_t n, int32_t k, const char *what, tm_err *err)
{
    if (n < 1 || k < 1)
        return tm_errf(err, TM_ERR_INPUT, "%s: shape [%d, %d] is empty or negative", what, n, k);
    return TM_OK;
}

tm_status tm_qweight_new_int4(int32_t n, int32_t k, int32_t group, int asym, int with_perm, int synthetic,
                              const char *what, tm_qweight **out, tm_err *err)
{
    *out = NULL;
    if (!what) what = "int4 weight";
    tm_status s = tm_quant_check_nk(n, k, what, err);
    if (s) return s;
    if (k % 8)
        return tm_errf(err, TM_ERR_INPUT, "%s: in_features %d is not a multiple of 8 (int4 packs 8 per word)",
                       what, k);
    if (group < 8 || group % 8 || k % group)
        return tm_errf(err, TM_ERR_INPUT,
                       "%s: group size %d must be a multiple of 8 that divides in_features %d", what, group, k);
    size_t N = (size_t)n, K = (size_t)k, ng = K / (size_t)group;
    size_t o_q = ALIGN64(sizeof(tm_qweight)), o_s = o_q, o_z = o_q, o_p = o_q, total = o_q;
    if (!synthetic) {
        o_s = o_q + ALIGN64(N * (K / 8) * sizeof(uint32_t));
        o_z = o_s + ALIGN64(N * ng * sizeof(float));
        o_p = o_z + (asym ? ALIGN64(N * ng) : 0);
        total = o_p + (with_perm ? ALIGN64(K * sizeof(int32_t)) : 0);
    }
    char *mem = calloc(1, total);
    if (!mem) return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory for %zu bytes of int4 weights", what, total);
    tm_qweight *q = (tm_qweight *)mem;
    q->fmt = TM_QFMT_INT4;
    q->n = n;
    q->k = k;
    q->group = group;
    q->asym = asym;
    q->synthetic = synthetic;
    q->scales_f16 = 1;
    if (!synthetic) {
        q->qweight = (uint32_t *)(mem + o_q);
        q->scales = (float *)(mem + o_s);
        q->zeros = asym ? (uint8_t *)(mem + o_z) : NULL;
        q->perm = with_perm ? (int32_t *)(mem + o_p) : NULL;
    }
    *out = q;
    return TM_OK;
}

tm_status tm_qweight_new_fp8(int32_t n, int32_t k, const uint8_t *w8_external, int act_fp8, int synthetic,
                             const char *what, tm_qweight **out, tm_err *err)
{
    *out = NULL;
    if (!what) what = "fp8 weight";
    tm_status s = tm_quant_check_nk(n, k, what, err);
    if (s) return s;
    size_t N = (size_t)n, K = (size_t)k;
    size_t o_s = ALIGN64(sizeof(tm_qweight)), o_w = o_s + (synthetic ? 0 : ALIGN64(N * sizeof(float)));
    size_t total = o_w + (synthetic || w8_external ? 0 : ALIGN64(N * K));
    char *mem = calloc(1, total);
    if (!mem) return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory for %zu bytes of fp8 weights", what, total);
    tm_qweight *q = (tm_qweight *)mem;
    q->fmt = TM_QFMT_FP8;
    q->n = n;
    q->k = k;
    q->act_fp8 = act_fp8;
    q->synthetic = synthetic;
    if (!synthetic) {
        q->w8_scale = (float *)(mem + o_s);
        q->w8 = w8_external ? w8_external : (const uint8_t *)(mem + o_w);
        q->w8_borrowed = w8_external != NULL;
    }
    *out = q;
    return TM_OK;
}

void tm_qweight_free(tm_qweight *q) { free(q); }

/* ---- RTN quantization and dequantization ------------------------------------ */

static int32_t clamp_q(float v, int32_t lo, int32_t hi)
{
    if (!(v >= (float)lo)) return lo; /* also NaN */
    if (v > (float)hi) return hi;
    return (int32_t)v;
}

tm_status tm_qweight_quantize_row(tm_qweight *q, int32_t r, const float *w, tm_err *err)
{
    if (!q || q->synthetic || r < 0 || r >= q->n)
        return tm_errf(err, TM_ERR_USAGE, "quantize: row %d of a %s weight is not writable", r,
                       q && q->synthetic ? "synthetic" : "missing");
    int32_t k = q->k;
    for (int32_t c = 0; c < k; c++)
        if (!isfinite(w[c]))
            return tm_errf(err, TM_ERR_INPUT, "quantize: weight [%d][%d] is not finite (%g)", r, c, (double)w[c]);
    if (q->fmt == TM_QFMT_FP8) {
        if (q->w8_borrowed) return tm_errf(err, TM_ERR_USAGE, "quantize: fp8 codes are read-only");
        q->w8_scale[r] = tm_fp8_quantize_row(w, k, (uint8_t *)q->w8 + (size_t)r * (size_t)k);
        return TM_OK;
    }
    if (q->perm) return tm_errf(err, TM_ERR_USAGE, "quantize: an act-order (permuted) int4 weight cannot be requantized");
    int32_t G = q->group, ng = k / G;
    uint32_t *qw = q->qweight + (size_t)r * (size_t)(k / 8);
    memset(qw, 0, (size_t)(k / 8) * sizeof *qw);
    for (int32_t g = 0; g < ng; g++) {
        const float *wg = w + (size_t)g * G;
        float s, mn = 0, mx = 0;
        if (!q->zeros) {
            float amax = 0;
            for (int32_t j = 0; j < G; j++) amax = fmaxf(amax, fabsf(wg[j]));
            s = 2.0f * amax / 15.0f;
        } else {
            for (int32_t j = 0; j < G; j++) {
                mn = fminf(mn, wg[j]);
                mx = fmaxf(mx, wg[j]);
            }
            s = (mx - mn) / 15.0f;
        }
        if (s == 0) s = 1.0f; /* an all-zero group */
        float sh = tm_f16_ceil(s);
        if (!isfinite(sh) || !(sh > 0))
            return tm_errf(err, TM_ERR_INPUT, "quantize: row %d group %d: scale %g is outside fp16's range", r, g,
                           (double)s);
        float z = q->zeros ? (float)clamp_q(nearbyintf(-mn / sh), 0, 15) : 8.0f;
        q->scales[(size_t)r * ng + g] = sh;
        if (q->zeros) q->zeros[(size_t)r * ng + g] = (uint8_t)z;
        for (int32_t j = 0; j < G; j++) {
            int32_t c = g * G + j;
            uint32_t v = (uint32_t)clamp_q(nearbyintf(wg[j] / sh) + z, 0, 15);
            qw[c / 8] |= v << (4 * (c % 8));
        }
    }
    return TM_OK;
}

void tm_qweight_dequantize_row(const tm_qweight *q, int32_t r, float *out)
{
    int32_t k = q->k;
    if (q->fmt == TM_QFMT_FP8) {
        const uint8_t *c = q->w8 + (size_t)r * (size_t)k;
        float s = q->w8_scale[r];
        for (int32_t j = 0; j < k; j++) out[j] = tm_e4m3_to_f32(c[j]) * s;
        return;
    }
    int32_t G = q->group, ng = k / G;
    const uint32_t *qw = q->qweight + (size_t)r * (size_t)(k / 8);
    const float *sc = q->scales + (size_t)r * ng;
    const uint8_t *zr = q->zeros ? q->zeros + (size_t)r * ng : NULL;
    for (int32_t j = 0; j < k; j++) {
        int32_t g = j / G;
        int32_t v = (int32_t)((qw[j / 8] >> (4 * (j % 8))) & 15u);
        int32_t z = zr ? zr[g] : 8;
        out[q->perm ? q->perm[j] : j] = (float)(v - z) * sc[g];
    }
}

/* ---- activations and KV ------------------------------------------------------- */

float tm_fp8_scale_of(const float *x, int32_t n)
{
    float amax = 0;
    for (int32_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    float s = amax / TM_E4M3_MAX;
    return s > 0 && isfinite(s) ? s : 1.0f;
}

float tm_fp8_quantize_row(const float *x, int32_t n, uint8_t *codes)
{
    float s = tm_fp8_scale_of(x, n);
    for (int32_t i = 0; i < n; i++) codes[i] = tm_f32_to_e4m3(x[i] / s);
    return s;
}

void tm_fp8_fake_quant_row(float *x, int32_t n)
{
    float s = tm_fp8_scale_of(x, n);
    for (int32_t i = 0; i < n; i++) x[i] = tm_e4m3_to_f32(tm_f32_to_e4m3(x[i] / s)) * s;
}

void tm_kv_fp8_quantize(const float *x, int32_t n_heads, int32_t head_dim, uint8_t *codes, float *scales)
{
    for (int32_t h = 0; h < n_heads; h++)
        scales[h] = tm_fp8_quantize_row(x + (size_t)h * head_dim, head_dim, codes + (size_t)h * head_dim);
}

void tm_kv_fp8_dequantize(const uint8_t *codes, const float *scales, int32_t n_heads, int32_t head_dim, float *x)
{
    for (int32_t h = 0; h < n_heads; h++)
        for (int32_t d = 0; d < head_dim; d++) {
            size_t i = (size_t)h * head_dim + d;
            x[i] = tm_e4m3_to_f32(codes[i]) * scales[h];
        }
}

/* ---- reference GEMMs -------------------------------------------------------------- */

void tm_qweight_gemm_ref_int4(const tm_qweight *q, const float *x, int32_t T, float *y)
{
    int32_t n = q->n, k = q->k, G = q->group, ng = k / G;
    for (int32_t t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * k;
        for (int32_t c = 0; c < n; c++) {
            const uint32_t *row = q->qweight + (size_t)c * (size_t)(k / 8);
            float acc = 0;
            for (int32_t g = 0; g < ng; g++) {
                int32_t z = q->zeros ? q->zeros[(size_t)c * ng + g] : 8;
                float gs = 0;
                for (int32_t j = g * G; j < (g + 1) * G; j++) {
                    int32_t v = (int32_t)((row[j / 8] >> (4 * (j % 8))) & 15u);
                    gs += (float)(v - z) * xr[q->perm ? q->perm[j] : j];
                }
                acc += gs * q->scales[(size_t)c * ng + g];
            }
            y[(size_t)t * n + c] = acc;
        }
    }
}

void tm_qweight_gemm_ref_fp8(const tm_qweight *q, const float *x, int32_t T, float *y)
{
    int32_t n = q->n, k = q->k;
    for (int32_t t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * k;
        float st = q->act_fp8 ? tm_fp8_scale_of(xr, k) : 1.0f;
        for (int32_t c = 0; c < n; c++) {
            const uint8_t *wr = q->w8 + (size_t)c * k;
            float acc = 0;
            if (q->act_fp8) {
                for (int32_t j = 0; j < k; j++)
                    acc += tm_e4m3_to_f32(tm_f32_to_e4m3(xr[j] / st)) * tm_e4m3_to_f32(wr[j]);
                y[(size_t)t * n + c] = acc * st * q->w8_scale[c];
            } else {
                for (int32_t j = 0; j < k; j++) acc += xr[j] * (tm_e4m3_to_f32(wr[j]) * q->w8_scale[c]);
                y[(size_t)t * n + c] = acc;
            }
        }
    }
}
