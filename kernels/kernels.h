/* kernels.h — C launchers for the CUDA kernels of the CUDA backend.
 *
 * Device code lives in kernels/<op>.cu (one file per op family); host C code in
 * src/backend/cuda launches it only through these functions. Every launcher
 * returns an int cudaError_t code (0 = cudaSuccess, from cudaGetLastError
 * after the launch); the caller turns it into a tm_status with
 * cudaGetErrorString. bf16 tensors are passed as uint16_t pointers (raw
 * bfloat16 bits), all pointers are device pointers, `stream` is a
 * cudaStream_t (NULL = the default stream). Shapes are row-major.
 *
 * Paged KV layout (same as the CPU backend, but bf16): one layer's K pool
 * (and V pool) is [n_blocks][block_size][n_kv_heads][head_dim]; the K/V of
 * position p of sequence s sit at block block_tables[s*bt_stride + p/bs],
 * slot p % bs.
 */
#ifndef TM_KERNELS_H
#define TM_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct CUstream_st;
typedef struct CUstream_st *tm_kstream;

/* Largest head_dim the attention / RoPE kernels support. */
#define TM_K_MAX_HEAD_DIM 256

/* x[t, :] = float(table[ids[t], :]) for t < n (bf16 table [vocab, dim]). */
int tm_k_embed_f32(const uint16_t *table, const int32_t *ids, int32_t n, int32_t dim, float *x,
                   tm_kstream stream);

/* For r < n_rows, with src = rows ? rows[r] : r:
 *   if resid: x[src, :] += resid[src, :]          (the residual add, in place)
 *   y = x[src, :] / sqrt(mean(x[src]^2) + eps) * w,  out[r, :] = bf16(y)
 *   if out_lo: out_lo[r, :] = bf16(y - out[r, :])  (hi + lo carry ~16 bits)
 * fp32 accumulation; w is fp32 [dim]. The hi/lo split lets lm_head run as
 * two bf16 GEMMs whose sum has (nearly) fp32 input precision (tested;
 * the backend does not use it yet: measured gain on lm_head was small). */
int tm_k_add_rmsnorm(float *x, const float *resid, const float *w, const int32_t *rows, int32_t n_rows,
                     int32_t dim, float eps, uint16_t *out, uint16_t *out_lo, tm_kstream stream);

/* The attention prologue, one token per thread block. qkv is fp32
 * [n_tokens, (n_heads + 2 n_kv) * hd] ([q | k | v] per row, the fused QKV
 * projection). For each token: add bias (fp32 [(nh + 2 nkv) * hd] or NULL),
 * per-head RMSNorm of q with q_norm and of k with k_norm (fp32 [hd] or NULL,
 * qwen3), rotate-half RoPE of q and k with angle positions[t] * inv_freq[i]
 * (double inv_freq[hd/2], llama3 scaling already applied; computed in
 * double), then q -> q_out fp32 [n_tokens, nh*hd] and k, v -> the layer's
 * paged bf16 pools at the token's slot (seq = tok_seq[t]). */
typedef struct tm_k_rope_args {
    const float *qkv;
    const float *bias, *q_norm, *k_norm;
    const double *inv_freq;
    const int32_t *positions, *tok_seq, *block_tables;
    int32_t bt_stride, block_size;
    int32_t n_tokens, n_heads, n_kv_heads, head_dim;
    float eps;
    float *q_out;
    uint16_t *k_cache, *v_cache;
} tm_k_rope_args;
int tm_k_qkv_rope_kv_write(const tm_k_rope_args *a, tm_kstream stream);

/* Paged causal attention for a mixed batch: token t (of sequence tok_seq[t])
 * attends to positions [0, positions[t]] of its sequence; query head h reads
 * kv head h / (n_heads / n_kv_heads); scores scaled by `scale`, online
 * softmax in fp32. q fp32 [n_tokens, nh*hd] -> out bf16 [n_tokens, nh*hd].
 * head_dim <= TM_K_MAX_HEAD_DIM. */
typedef struct tm_k_attn_args {
    const float *q;
    const uint16_t *k_cache, *v_cache;
    const int32_t *positions, *tok_seq, *block_tables;
    int32_t bt_stride, block_size;
    int32_t n_tokens, n_heads, n_kv_heads, head_dim;
    float scale;
    uint16_t *out;
    /* optional fp32 scratch (NULL = none) for split-context decoding: when
     * n_tokens * n_heads blocks are too few to fill the GPU, each token's
     * context is split over several blocks whose partial softmax states are
     * merged by a second kernel. Needs n_tokens * n_heads * splits *
     * (head_dim + 2) floats; splits shrink to what workspace_floats holds. */
    float *workspace;
    int64_t workspace_floats;
} tm_k_attn_args;
int tm_k_attention(const tm_k_attn_args *a, tm_kstream stream);

/* out[t, i] = bf16(silu(gu[t, i]) * gu[t, inter + i]) for gu fp32
 * [n, 2*inter] ([gate | up] per row, the fused gate/up projection). */
int tm_k_silu_mul(const float *gu, int32_t n, int32_t inter, uint16_t *out, tm_kstream stream);

/* out[i] = bf16(in[i]) for i < n (helper for tests and uploads). */
int tm_k_f32_to_bf16(const float *in, int64_t n, uint16_t *out, tm_kstream stream);

/* Synthetic weights (init.cu): element i of tensor `seed` is
 *   offset + scale * u,  u = tm_k_synth_uniform(seed, i) in [-1, 1),
 * written as bf16 (as_f32 == 0, out is uint16_t[n]) or fp32 (out is
 * float[n]). Deterministic: the same (seed, i) gives the same value on the
 * host and the device, whatever the launch shape. */
int tm_k_init_synthetic(void *out, int as_f32, int64_t n, uint32_t seed, float scale, float offset,
                        tm_kstream stream);

#ifdef __CUDACC__
#define TM_K_HD __host__ __device__
#else
#define TM_K_HD
#endif
/* splitmix64 of (seed, i) -> the top 24 bits as a uniform in [-1, 1). */
static inline TM_K_HD float tm_k_synth_uniform(uint32_t seed, int64_t i)
{
    uint64_t z = (uint64_t)i + ((uint64_t)seed + 1u) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

#ifdef __cplusplus
}
#endif

#endif
