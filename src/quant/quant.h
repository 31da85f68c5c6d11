/* quant.h — quantized weight and KV formats: INT4 (W4A16), FP8 E4M3 (W8A8, KV).
 *
 * What lives here: the scalar codecs (fp16, float8_e4m3fn), the canonical
 * in-memory layouts every backend reads (one tm_qweight per projection),
 * round-to-nearest quantizers (`--quant int4|int4-asym|fp8`), converters from
 * the GPTQ / AWQ / FP8 checkpoint layouts into the canonical one, the dynamic
 * per-token activation and per-head KV fp8 helpers, and reference GEMMs that
 * compute straight from the packed formats (the spec a GPU kernel is tested
 * against). Pure functions over caller memory, no model knowledge; model.c
 * finds the tensors, backends consume tm_qweight. Every converter treats its
 * input as hostile (shapes, indices, NaN codes, non-finite scales).
 *
 * ---- Canonical INT4 (tm_qweight.fmt == TM_QFMT_INT4), W[n][k], n = out, k = in
 *   qweight  uint32 [n][k/8]   nibble i (bits 4i..4i+3) of word w holds the
 *                              unsigned code q (0..15) of column 8w+i
 *   scales   float  [n][k/g]   one per group of g consecutive columns; when
 *                              scales_f16 (RTN, fp16 checkpoints: always in
 *                              practice) each is exactly an fp16 value, so a
 *                              kernel may store them as fp16 without loss
 *   zeros    uint8  [n][k/g]   0..15; NULL = symmetric, zero point 8
 *   perm     int32  [k] | NULL act-order: the columns above are in PERMUTED
 *                              order, column j of the packed matrix is input
 *                              feature perm[j] (GPTQ desc_act; Marlin style)
 *   value:   W[n][perm[j]] = (q[n][j] - zero[n][j/g]) * scale[n][j/g]
 *   y[t][n] = sum_j x[t][perm[j]] * Wp[n][j]: a kernel permutes the activation
 *   columns once (x[:, perm]) and then runs plain grouped dequantization.
 *   tm_qweight_dequantize_row() undoes perm: it returns rows in ORIGINAL
 *   input order (what the CPU backend multiplies). Constraints: k % 8 == 0,
 *   g % 8 == 0, g divides k (a packed word never straddles two groups).
 *
 * ---- Canonical FP8 (TM_QFMT_FP8): float8_e4m3fn codes w8 uint8 [n][k] with a
 *   per-output-channel float scale[n]: W[n][k] = e4m3(w8[n][k]) * scale[n].
 *   act_fp8 != 0 (W8A8): before the GEMM each activation row t is quantized
 *   with its own dynamic scale s_t = amax_k |x[t][k]| / 448 (1 when the row is
 *   all zeros), xq = e4m3_rne_sat(x / s_t) (a division in fp32, not a
 *   multiplication by 448/amax: the codes must match), and
 *   y[t][n] = (sum_k e4m3(xq) * e4m3(w8)) * s_t * scale[n].
 *
 * ---- float8_e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no
 *   infinities; S.1111.111 is NaN; max finite 448 (S.1111.110); subnormals
 *   m * 2^-9. tm_f32_to_e4m3 rounds to nearest even and SATURATES (|x| >= 448
 *   and +-inf -> +-448, like cuda's __NV_SATFINITE); NaN -> 0x7F | sign.
 *
 * ---- FP8 KV cache (--kv-dtype fp8), per-head scales: each cached K (and V)
 *   vector of one token and one kv head (head_dim values) is stored as e4m3
 *   codes plus one float scale = amax/448 of that vector (1 for all zeros).
 *   Dynamic per (token, head) rather than one calibrated scale per head:
 *   there is no calibration data at load, a static scale would need one, and
 *   a scale that depends only on the vector itself keeps the cache
 *   deterministic and batch invariant (4 bytes per 128-byte head: 3%).
 *
 * ---- Checkpoint layouts converted here (int32 words read little-endian):
 *   GPTQ (AutoGPTQ / GPTQModel, quant_method "gptq", bits 4):
 *     qweight int32 [k/8][n]   packed along the INPUT dim: nibble j of word
 *                              [i][c] is the code of input row 8i+j, column c
 *     qzeros  int32 [k/g][n/8] packed along the OUTPUT dim: nibble j of word
 *                              [g][w] is the zero of output column 8w+j
 *     scales  fp16  [k/g][n]
 *     g_idx   int32 [k]        optional: group of input row i (act-order:
 *                              not in row order; every group must hold exactly
 *                              g rows)
 *     checkpoint_format "gptq" (v1) stores zero-1: zero = (nibble + 1) & 15
 *     (a stored 15 is the -1 that v1 wrote for a true zero of 0; AutoGPTQ's
 *     own kernels read it as 16, the quantizer meant 0 — we take 0).
 *     "gptq_v2" stores the zero itself. A matrix whose zeros are all 8 is
 *     kept symmetric (zeros NULL) whatever the sym flag says.
 *   AWQ (AutoAWQ "gemm" version, quant_method "awq", bits 4, zero_point):
 *     qweight int32 [k][n/8]   packed along the OUTPUT dim in the AWQ order:
 *                              nibble i of word [r][w] holds output column
 *                              8w + {0,2,4,6,1,3,5,7}[i] (so column 8w+j is
 *                              nibble {0,4,1,5,2,6,3,7}[j])
 *     qzeros  int32 [k/g][n/8] same packing and order, zeros stored as is
 *     scales  fp16  [k/g][n]
 *   FP8 (quant_method "fp8", or "compressed-tensors" float-quantized):
 *     weight  float8_e4m3fn [n][k], weight_scale [] / [1] (per tensor) or
 *     [n] / [n][1] (per channel): converted to the per-channel canonical.
 */
#ifndef TM_QUANT_H
#define TM_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include "util/status.h"

/* ---- scalar codecs ------------------------------------------------------ */
#define TM_E4M3_MAX 448.0f

float tm_f16_to_f32(uint16_t h);
uint16_t tm_f32_to_f16(float f);       /* round to nearest even; overflow -> inf */
float tm_e4m3_to_f32(uint8_t c);
uint8_t tm_f32_to_e4m3(float f);       /* round to nearest even, saturating (see above) */
/* The smallest fp16 value >= x (x >= 0, finite; returns inf past 65504). */
float tm_f16_ceil(float x);

/* ---- what --quant and --kv-dtype select -------------------------------- */
typedef enum tm_quant_scheme {
    TM_QS_NONE = 0,
    TM_QS_INT4,        /* "int4": symmetric int4, group 128 (see tm_q4_pick_group) */
    TM_QS_INT4_ASYM,   /* "int4-asym": int4 with a zero point per group */
    TM_QS_FP8,         /* "fp8": e4m3 weights per output channel, W8A8 */
} tm_quant_scheme;

/* "none" | "int4" | "int4-asym" | "fp8" -> scheme; anything else TM_ERR_USAGE. */
tm_status tm_quant_scheme_parse(const char *s, tm_quant_scheme *out, tm_err *err);
const char *tm_quant_scheme_name(tm_quant_scheme s);
#define TM_QUANT_SCHEME_NAMES "none, int4, int4-asym, fp8"

/* KV cache element type (tm_backend_opts.kv_dtype). AUTO: the backend's own
 * (CPU fp32, CUDA bf16). BF16 on the CPU rounds K/V to bf16 on write (stored
 * as fp32), so it matches a bf16 cache. FP8: e4m3 + per-(token, head) scales. */
typedef enum tm_kv_dtype { TM_KV_AUTO = 0, TM_KV_BF16 = 1, TM_KV_FP8 = 2 } tm_kv_dtype;
/* "auto" | "bf16" | "fp8" -> dtype; anything else TM_ERR_USAGE. */
tm_status tm_kv_dtype_parse(const char *s, tm_kv_dtype *out, tm_err *err);
const char *tm_kv_dtype_name(tm_kv_dtype d);
#define TM_KV_DTYPE_NAMES "auto, bf16, fp8"

/* ---- checkpoint quantization (config.json quantization_config) --------- */
typedef enum tm_quant_method {
    TM_QM_NONE = 0,
    TM_QM_GPTQ,        /* gptq, bits 4 */
    TM_QM_AWQ,         /* awq gemm, bits 4, zero_point */
    TM_QM_FP8,         /* fp8 (AutoFP8 / vLLM Fp8Config), per-tensor or per-channel */
    TM_QM_CT_FP8,      /* compressed-tensors, float-quantized 8-bit weights */
    TM_QM_RTN,         /* not from a checkpoint: quantized at load (tm_model_quantize) */
} tm_quant_method;

typedef struct tm_quant_config {
    tm_quant_method method;
    tm_quant_scheme scheme;   /* TM_QM_RTN: what was applied */
    int32_t bits;             /* 4 or 8 */
    int32_t group_size;       /* gptq/awq: > 0, or -1 = one group per row */
    int sym;                  /* gptq: sym flag (zeros are still read) */
    int desc_act;             /* gptq: act-order (g_idx) */
    int gptq_v2;              /* gptq: checkpoint_format "gptq_v2" */
    int act_fp8;              /* fp8: activations quantized too (W8A8) */
} tm_quant_config;

/* "gptq int4 g128 act-order (v1)" etc. into out (always NUL-terminated). */
void tm_quant_config_describe(const tm_quant_config *qc, char *out, size_t outsz);

/* ---- the canonical weight descriptor ------------------------------------ */
typedef enum tm_qformat { TM_QFMT_INT4 = 1, TM_QFMT_FP8 = 2 } tm_qformat;

typedef struct tm_qweight {
    tm_qformat fmt;
    int32_t n, k;             /* out_features, in_features */
    /* INT4 */
    int32_t group;            /* g */
    uint32_t *qweight;        /* [n][k/8] */
    float *scales;            /* [n][k/g] */
    int asym;                 /* zeros present (or, synthetic, would be) */
    uint8_t *zeros;           /* [n][k/g] or NULL (symmetric, 8) */
    int32_t *perm;            /* [k] or NULL */
    int scales_f16;           /* every scale is exactly an fp16 value (RTN, fp16 checkpoints) */
    /* FP8 */
    const uint8_t *w8;        /* [n][k] e4m3 codes (may point into a mapped checkpoint) */
    float *w8_scale;          /* [n] */
    int act_fp8;              /* W8A8: quantize activations per token before the GEMM */
    int w8_borrowed;          /* w8 belongs to someone else (read-only) */
    /* Synthetic models: the descriptor of a shape only, every pointer NULL. */
    int synthetic;
} tm_qweight;

/* Bytes the quantized weight occupies in the canonical layout. */
size_t tm_qweight_bytes(const tm_qweight *q);

/* Largest power of two <= want (want >= 8) that divides k and is >= 8; 0 when
 * k % 8 != 0 (int4 impossible). int4 "group 128" uses this for matrices whose
 * in_features 128 does not divide (e.g. 352 -> 32). */
int32_t tm_q4_pick_group(int32_t k, int32_t want);

/* One allocation holding the descriptor and its arrays; free with
 * tm_qweight_free. INT4: asym allocates zeros, with_perm allocates perm.
 * FP8: w8_external != NULL borrows the codes (they must outlive q), else
 * codes are allocated. synthetic: no arrays at all. Shapes are checked
 * (TM_ERR_INPUT naming `what`). */
tm_status tm_qweight_new_int4(int32_t n, int32_t k, int32_t group, int asym, int with_perm, int synthetic,
                              const char *what, tm_qweight **out, tm_err *err);
tm_status tm_qweight_new_fp8(int32_t n, int32_t k, const uint8_t *w8_external, int act_fp8, int synthetic,
                             const char *what, tm_qweight **out, tm_err *err);
void tm_qweight_free(tm_qweight *q);

/* Round-to-nearest quantization of row r from w[k] (float, original order;
 * INT4 needs perm == NULL). INT4 symmetric: scale = fp16_ceil(2*amax/15),
 * q = clamp(rne(w/scale) + 8, 0, 15) (GPTQ's symmetric grid); asymmetric:
 * range [min(w,0), max(w,0)], scale = fp16_ceil(range/15),
 * zero = clamp(rne(-min/scale), 0, 15), q = clamp(rne(w/scale) + zero, 0, 15).
 * Either way |w - dequant| <= scale/2. FP8: scale = amax/448 (1 if the row is
 * zero), code = e4m3(w/scale). A non-finite w, or a scale past fp16's range,
 * is TM_ERR_INPUT. */
tm_status tm_qweight_quantize_row(tm_qweight *q, int32_t r, const float *w, tm_err *err);

/* Row r of the dequantized matrix, ORIGINAL input order, into out[k]. */
void tm_qweight_dequantize_row(const tm_qweight *q, int32_t r, float *out);

/* ---- checkpoint converters (allocate *out; TM_ERR_INPUT naming `what`) -- */
typedef struct tm_gptq_src {
    int32_t n, k;
    int32_t group;            /* group_size; -1 = k */
    const int32_t *qweight;   /* [k/8][n] */
    const int32_t *qzeros;    /* [k/g][n/8] */
    const float *scales;      /* [k/g][n] (converted from fp16 by the caller) */
    const int32_t *g_idx;     /* [k] or NULL (row i in group i/g) */
    int v2;                   /* checkpoint_format gptq_v2 */
} tm_gptq_src;
tm_status tm_qweight_from_gptq(const tm_gptq_src *s, const char *what, tm_qweight **out, tm_err *err);

typedef struct tm_awq_src {
    int32_t n, k;
    int32_t group;            /* -1 = k */
    const int32_t *qweight;   /* [k][n/8], AWQ order */
    const int32_t *qzeros;    /* [k/g][n/8], AWQ order */
    const float *scales;      /* [k/g][n] */
} tm_awq_src;
tm_status tm_qweight_from_awq(const tm_awq_src *s, const char *what, tm_qweight **out, tm_err *err);

/* w8 [n][k] e4m3 codes (borrowed), scale[n_scale] with n_scale 1 (per tensor)
 * or n (per channel). NaN codes or non-finite / negative scales: TM_ERR_INPUT. */
tm_status tm_qweight_from_fp8(int32_t n, int32_t k, const uint8_t *w8, const float *scale, int32_t n_scale,
                              int act_fp8, const char *what, tm_qweight **out, tm_err *err);

/* The AWQ nibble order: nibble i of a word holds column tm_awq_order[i]. */
extern const uint8_t tm_awq_order[8];

/* ---- activations and KV -------------------------------------------------- */
/* Dynamic fp8 scale of n values: amax/448, or 1 when amax is 0 (or not finite). */
float tm_fp8_scale_of(const float *x, int32_t n);
/* codes[i] = e4m3(x[i] / scale) with scale = tm_fp8_scale_of(x, n); returns scale. */
float tm_fp8_quantize_row(const float *x, int32_t n, uint8_t *codes);
/* x[i] = e4m3(codes) * scale, in place round trip (the CPU's W8A8 activation path). */
void tm_fp8_fake_quant_row(float *x, int32_t n);
/* One token's K or V: n_heads vectors of head_dim, a scale per head. */
void tm_kv_fp8_quantize(const float *x, int32_t n_heads, int32_t head_dim, uint8_t *codes, float *scales);
void tm_kv_fp8_dequantize(const uint8_t *codes, const float *scales, int32_t n_heads, int32_t head_dim,
                          float *x);

/* ---- reference GEMMs from the packed formats (y[T][n] = x[T][k] . W^T) --- */
/* INT4: permutes x by perm, and per group accumulates sum (q - zero) * x then
 * scales — the order a W4A16 kernel uses (float accumulation). */
void tm_qweight_gemm_ref_int4(const tm_qweight *q, const float *x, int32_t T, float *y);
/* FP8: act_fp8 -> each row of x quantized per token, integer-exact products
 * summed in float, then * s_t * scale[n] (the cuBLASLt epilogue); else
 * x . dequant(W). */
void tm_qweight_gemm_ref_fp8(const tm_qweight *q, const float *x, int32_t T, float *y);

#endif
