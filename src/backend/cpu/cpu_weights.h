/* cpu_weights.h — how the CPU backend stores a model's weights.
 *
 * A matrix [n][k] (projection, embedding, lm_head) becomes gemm.h's packed
 * panels: bf16 checkpoints stay bf16 (half the bytes per token; widened in
 * registers), fp16 / fp32 become float32 panels, quantized (int4 / fp8)
 * weights are dequantized once to float32 panels. With TM_BACKEND_BLAS_GEMM
 * a matrix is instead a row-major float32 copy for cblas_sgemm. Vectors
 * (norms, biases) are float32. Buffers are sized by the caller up front.
 */
#ifndef TM_CPU_WEIGHTS_H
#define TM_CPU_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/gemm.h"
#include "model/model.h"
#include "util/status.h"

typedef struct tm_cpu_mat {
    tm_gemm_w g;    /* g.n, g.k always set; g.data NULL in BLAS mode */
    const float *f; /* row-major float32 (BLAS mode only) */
} tm_cpu_mat;

/* Where tm_cpu_conv_* write next; tmp / tmp16 hold one row of the widest k. */
typedef struct tm_cpu_conv {
    float *next;     /* float32 buffer */
    char *pnext;     /* packed buffer (advanced in 64-byte steps) */
    int blas;        /* matrices as row-major float32 */
    float *tmp;
    uint16_t *tmp16;
} tm_cpu_conv;

/* Packed bytes of matrix t [n][k] rounded up to 64 (0: n or k out of range). */
size_t tm_cpu_mat_bytes(const tm_tensor *t, size_t n, size_t k);
/* A vector (or, in BLAS mode, a matrix) of n elements as float32; NULL when
 * t has no data (an optional tensor). */
const float *tm_cpu_conv_vec(tm_cpu_conv *cs, const tm_tensor *t, size_t n);
/* Matrix t [n][k] into out (checked against a quantized tensor's own shape). */
tm_status tm_cpu_conv_mat(tm_cpu_conv *cs, const tm_tensor *t, int32_t n, int32_t k, tm_cpu_mat *out,
                          tm_err *err);

#endif
