/* gemm.h — the CPU backend's batch-invariant GEMM over packed weights.
 *
 * y[T, N] = x[T, K] * W[N, K]^T (+ bias[N]) with W packed once at load into
 * column panels of TM_GEMM_NR output rows: element (n, k) of panel
 * p = n / NR lives at panel p, row k, slot j = n % NR:
 *   F32:  ((float *)data)[(p * K + k) * NR + j]
 *   BF16: ((uint16_t *)data)[(p * K + k) * NR + s(j)], s(j) = 2j for j < 8,
 *         2(j - 8) + 1 otherwise (so one 32-byte load widens to columns
 *         0..7 with a shift and 8..15 with a mask; no shuffle).
 * The last panel is zero-padded to NR rows. bf16 weights stay bf16 in memory
 * and are widened in registers; activations stay float32 (never rounded to
 * bf16: vdpbf16ps is deliberately not used, see below).
 *
 * Reduction order (the batch-invariance contract): every y[t][n] is
 *   s = 0; for k = 0 .. K-1: s = fma(x[t][k], W[n][k], s);  y = s (+ bias[n])
 * with one fused multiply-add per k, in ascending k, whatever T, the row's
 * place in the batch, the tile shape or the thread count (threads split the
 * panels over N). Every ISA path (AVX-512F, AVX2+FMA, portable C with
 * fmaf) follows that order exactly, so they agree bit for bit with each other
 * and with a plain fmaf loop: results do not even depend on the machine. A
 * bf16 dot-product instruction (vdpbf16ps) would round activations to bf16
 * and sum pairs of k first, breaking both properties for ~2x compute on
 * CPUs that have it; the decode path is memory-bound, where it buys nothing.
 */
#ifndef TM_CPU_GEMM_H
#define TM_CPU_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/cpu_ops.h"

#define TM_GEMM_NR 16

typedef enum tm_gemm_dtype { TM_GEMM_F32 = 0, TM_GEMM_BF16 = 1 } tm_gemm_dtype;

/* Kernel families. AUTO = the best the running CPU supports. */
typedef enum tm_gemm_isa {
    TM_GEMM_ISA_AUTO = 0,
    TM_GEMM_ISA_PORTABLE,
    TM_GEMM_ISA_AVX2,   /* AVX2 + FMA */
    TM_GEMM_ISA_AVX512, /* AVX-512F */
    TM_GEMM_ISA_COUNT
} tm_gemm_isa;

/* A packed weight matrix; data is owned by the caller (64-byte aligned is
 * best, any 4-byte alignment works). */
typedef struct tm_gemm_w {
    void *data;
    int32_t n, k;
    tm_gemm_dtype dtype;
} tm_gemm_w;

/* Bytes of the packed form of an [n, k] matrix (n rounded up to NR); 0 when
 * n or k is not positive or the size overflows. */
size_t tm_gemm_packed_bytes(int32_t n, int32_t k, tm_gemm_dtype dt);

/* Point w at data (tm_gemm_packed_bytes of it) and zero the padding rows. */
void tm_gemm_w_init(tm_gemm_w *w, void *data, int32_t n, int32_t k, tm_gemm_dtype dt);
/* Store row `row` (< n) from k floats (BF16: rounded to nearest even). */
void tm_gemm_pack_row_f32(const tm_gemm_w *w, int32_t row, const float *src);
/* Store row `row` from k bf16 bit patterns (BF16 exactly; F32 widened). */
void tm_gemm_pack_row_bf16(const tm_gemm_w *w, int32_t row, const uint16_t *src);
/* Read row `row` back as k floats (an embedding lookup of a tied lm_head). */
void tm_gemm_unpack_row(const tm_gemm_w *w, int32_t row, float *dst);

/* Whether this CPU (and OS) runs isa's kernels; AUTO and PORTABLE always. */
int tm_gemm_isa_supported(tm_gemm_isa isa);
/* The fastest supported family (never AUTO). */
tm_gemm_isa tm_gemm_isa_best(void);
const char *tm_gemm_isa_name(tm_gemm_isa isa);

/* y[T, w->n] = x[T, w->k] * W^T (+ bias) on pool p (NULL: the caller's
 * thread), with isa's kernels (AUTO: the best; an unsupported one falls back
 * to the best). Allocates nothing. */
void tm_gemm(tm_cpu_pool *p, tm_gemm_isa isa, const float *x, int32_t T, const tm_gemm_w *w, const float *bias,
             float *y);

#endif
