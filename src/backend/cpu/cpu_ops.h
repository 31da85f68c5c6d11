/* cpu_ops.h — the float32 building blocks of the CPU backend's forward pass.
 *
 * A small pthread pool (created once, reused every step) and the per-row ops:
 * a deterministic matmul (y = x W^T), RMSNorm, RoPE (HF rotate-half layout,
 * frequencies from model/rope.h), paged causal attention with GQA, SwiGLU.
 * Every op reduces each output element in an order fixed by the shapes of the
 * model alone, never by the batch or the thread split: a row of the batch
 * gets bit-identical results whatever else is in the batch (batch
 * invariance). Nothing here allocates except the pool's create().
 */
#ifndef TM_CPU_OPS_H
#define TM_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>
#include "model/model.h"
#include "util/status.h"

/* ---- thread pool -------------------------------------------------------- */
typedef struct tm_cpu_pool tm_cpu_pool;

/* Work callback: process items [begin, end) on thread `thread` (0 = the
 * caller; < tm_cpu_pool_threads), e.g. to pick per-thread scratch. */
typedef void (*tm_cpu_task)(void *ctx, int64_t begin, int64_t end, int thread);

/* n_threads total including the caller (0 = online cores, capped at 256). */
tm_status tm_cpu_pool_create(int n_threads, tm_cpu_pool **out, tm_err *err);
void tm_cpu_pool_destroy(tm_cpu_pool *p);
int tm_cpu_pool_threads(const tm_cpu_pool *p);
/* The thread count a pool of n_threads gets (0 = online cores, capped at 256). */
int tm_cpu_threads_for(int n_threads);
/* Split [0, n_items) into one contiguous range per thread, run fn on each
 * (the caller runs range 0) and return when all are done. p may be NULL
 * (then the caller runs everything). */
void tm_cpu_pool_run(tm_cpu_pool *p, int64_t n_items, tm_cpu_task fn, void *ctx);

/* ---- matmul ------------------------------------------------------------- */
/* The forward pass projects through gemm.h (packed weights, faster); this
 * row-major float32 matmul stays as a second, independent batch-invariant
 * implementation for the tests (its summation order differs from gemm.h's).
 * y[T, N] = x[T, K] * W[N, K]^T (+ bias[N] when bias != NULL), threaded over
 * N. Each y[t][n] is reduced in one fixed order (8 interleaved partial sums
 * over K, combined pairwise, then the K % 8 tail), so a row's result does
 * not depend on T, on the row's index or on the thread count. */
void tm_cpu_matmul(tm_cpu_pool *p, const float *x, int32_t T, int32_t K, const float *w, int32_t N,
                   const float *bias, float *y);
/* The same through cblas_sgemm: faster for large T but NOT batch invariant
 * on OpenBLAS 0.3.21 (rows differ in the last bits with M, see the tests). */
void tm_cpu_matmul_blas(const float *x, int32_t T, int32_t K, const float *w, int32_t N,
                        const float *bias, float *y);

/* ---- per-row ops -------------------------------------------------------- */
/* out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i] (w NULL: no weight). out may be x. */
void tm_cpu_rmsnorm(float *out, const float *x, const float *w, int32_t n, float eps);

/* cos/sin[i] of pos * inv_freq[i] (model/rope.h) for i < half. */
void tm_cpu_rope_cos_sin(const double *inv_freq, int32_t half, int32_t pos, float *cos_out,
                         float *sin_out);
/* Rotate n_heads vectors of head_dim in place, HF rotate-half pairs
 * (i, i + hd/2): x' = x*cos - y*sin, y' = y*cos + x*sin. interleaved != 0
 * rotates pairs (2i, 2i+1) instead (GPT-J layout; a debug knob only). */
void tm_cpu_rope(float *v, int32_t n_heads, int32_t head_dim, const float *cos_v, const float *sin_v,
                 int interleaved);

/* Paged K/V layout: for one layer, K (and V) of token position p of a
 * sequence live at base + ((block * block_size + p % block_size) * n_kv_heads
 * + kv_head) * head_dim, block = block_table[p / block_size]. */
typedef struct tm_cpu_kv_view {
    const float *k, *v;          /* this layer's pools */
    const int32_t *block_table;  /* the sequence's row */
    int32_t block_size, n_kv_heads, head_dim;
} tm_cpu_kv_view;

/* Causal attention of one query head vector q[head_dim] (kv head kvh) over
 * positions [0, n_ctx): softmax(q.k * scale) . v into out[head_dim].
 * scores: scratch of n_ctx floats. */
void tm_cpu_attention_head(const float *q, int32_t kvh, int32_t n_ctx, const tm_cpu_kv_view *kv,
                           float scale, float *scores, float *out);

/* The same paged layout holding float8_e4m3fn codes (--kv-dtype fp8), with
 * one float scale per (slot, kv head): k_scale[(block * block_size + p %
 * block_size) * n_kv_heads + kv_head] (quant.h: dynamic per-token per-head). */
typedef struct tm_cpu_kv8_view {
    const uint8_t *k, *v;
    const float *k_scale, *v_scale;
    const float *lut;            /* [256]: tm_e4m3_to_f32 of every code */
    const int32_t *block_table;
    int32_t block_size, n_kv_heads, head_dim;
} tm_cpu_kv8_view;

/* tm_cpu_attention_head over an fp8 cache: each K/V head vector is decoded
 * (lut[code] * scale) into tmp[head_dim] and then used exactly as the fp32
 * path uses it, so the result is bit-identical to tm_cpu_attention_head over
 * a float cache holding the decoded values. */
void tm_cpu_attention_head_fp8(const float *q, int32_t kvh, int32_t n_ctx, const tm_cpu_kv8_view *kv,
                               float scale, float *scores, float *tmp, float *out);

/* gate[i] = silu(gate[i]) * up[i]. */
void tm_cpu_swiglu(float *gate, const float *up, size_t n);

#endif
