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

#include <stddef.h>
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

/* Synthetic weights (init.cu): element i of tensor `seed` is
 *   offset + scale * u,  u = tm_k_synth_uniform(seed, i) in [-1, 1),
 * written as bf16 (as_f32 == 0, out is uint16_t[n]) or fp32 (out is
 * float[n]). Deterministic: the same (seed, i) gives the same value on the
 * host and the device, whatever the launch shape. */
int tm_k_init_synthetic(void *out, int as_f32, int64_t n, uint32_t seed, float scale, float offset,
                        tm_kstream stream);

/* ---- fast paths (written for issue 5; used by the backend only with
 * TOKENMILL_CUDA_FAST=1 until a GPU session has verified them, see
 * docs/gpu-notes.md "Written, not yet run on a GPU") ----------------------- */

/* Whether tm_k_attention_prefill_fa2 / tm_k_attention_decode_gqa take this
 * head_dim: a multiple of 8, at most 128 (64 and 128 run unpadded, the
 * others on the 64/128 kernels with zero-filled columns). */
int tm_k_attention_fast_supported(int32_t head_dim);

/* Causal prefill attention, FlashAttention-2 style on tensor cores
 * (attention_prefill_fa2.cu): same inputs and result as tm_k_attention for
 * the tokens the tiles cover. tiles[2*i] is the first batch token of tile i
 * and tiles[2*i+1] its count (1..TM_K_FA_TILE); the tokens of a tile are
 * consecutive tokens of one sequence in position order (the backend's batch
 * layout guarantees it; tm_k_attention_plan() builds the list). q fp32
 * [n_tokens, nh*hd] -> out bf16 [n_tokens, nh*hd], rows of other tokens
 * untouched. head_dim: tm_k_attention_fast_supported(). Queries enter the
 * tensor cores as a bf16 hi + lo pair, P as bf16. */
#define TM_K_FA_TILE 64
typedef struct tm_k_fa_args {
    const float *q;
    const uint16_t *k_cache, *v_cache;
    const int32_t *positions, *tok_seq, *block_tables;
    int32_t bt_stride, block_size;
    int32_t n_tokens, n_heads, n_kv_heads, head_dim;
    float scale;
    uint16_t *out;
    const int32_t *tiles; /* device [n_tiles * 2] */
    int32_t n_tiles;      /* <= 65535 */
} tm_k_fa_args;
int tm_k_attention_prefill_fa2(const tm_k_fa_args *a, tm_kstream stream);

/* Decode attention (attention_decode_gqa.cu): one query token per item,
 * item i = batch token tokens[i] (tokens NULL: item i = token i), attending
 * to positions [0, positions[t]] of its sequence. One thread block per
 * (item, KV head, context split) computes all the query heads of that KV
 * group (up to 16 per block) on tensor cores, so K/V are read once per KV
 * head. With a workspace and too few blocks to fill the GPU, the context is
 * split (flash-decoding) and a combine kernel merges the splits; max_ctx
 * (>= every item's positions[t] + 1, known to the host) sizes the split.
 * Needs n_items * n_heads * splits * (head_dim + 2) floats; splits shrink
 * to what workspace_floats holds. out rows of other tokens untouched. */
typedef struct tm_k_decode_args {
    const float *q;
    const uint16_t *k_cache, *v_cache;
    const int32_t *positions, *tok_seq, *block_tables;
    int32_t bt_stride, block_size;
    int32_t n_heads, n_kv_heads, head_dim;
    float scale;
    uint16_t *out;
    const int32_t *tokens; /* device [n_items] or NULL */
    int32_t n_items, max_ctx;
    float *workspace;
    int64_t workspace_floats;
} tm_k_decode_args;
int tm_k_attention_decode_gqa(const tm_k_decode_args *a, tm_kstream stream);

/* Host helper: sort a batch's sequences (token ranges [seq_start[s],
 * seq_start[s+1])) into decode items (sequences with one new token, when
 * `decode` is not NULL) and prefill tiles of <= TM_K_FA_TILE tokens
 * (tiles[2*i], tiles[2*i+1] as tm_k_fa_args wants). tiles needs room for
 * 2 * n_tokens ints, decode for n_seqs. */
static inline void tm_k_attention_plan(const int32_t *seq_start, int32_t n_seqs, int32_t *tiles, int32_t *n_tiles,
                                       int32_t *decode, int32_t *n_decode)
{
    int32_t nt = 0, nd = 0;
    for (int32_t s = 0; s < n_seqs; s++) {
        int32_t b = seq_start[s], e = seq_start[s + 1];
        if (e - b == 1 && decode) {
            decode[nd++] = b;
            continue;
        }
        for (int32_t t = b; t < e; t += TM_K_FA_TILE) {
            tiles[2 * nt] = t;
            tiles[2 * nt + 1] = e - t < TM_K_FA_TILE ? e - t : TM_K_FA_TILE;
            nt++;
        }
    }
    *n_tiles = nt;
    if (n_decode) *n_decode = nd;
}

/* GPU sampling (sample.cu) for a batch of logit rows, the CPU sampler's
 * pipeline (src/engine/sampler.h) step for step: penalties, greedy,
 * temperature, top-k, top-p, min-p, one Philox-4x32-10 draw with the CPU's
 * (seed, request_key, token_index) stream, raw logprobs. One row's params:
 * the tm_sampling_params fields it uses (the host checks them with
 * tm_sampling_params_check first; the kernel trusts them), plus the row's
 * previous tokens prev[prev_offset ..+ n_prev), the first n_prompt the
 * prompt. Layout shared with the device: keep the explicit padding. */
#define TM_K_SAMPLE_MAX_TOP 20
typedef struct tm_k_sample_params {
    float temperature, top_p, min_p;
    float presence_penalty, frequency_penalty, repetition_penalty;
    int32_t top_k;
    int32_t logprobs;     /* 1: out_logprob */
    int32_t top_logprobs; /* 0..TM_K_SAMPLE_MAX_TOP */
    int32_t n_prev, n_prompt;
    int32_t pad_;
    int64_t prev_offset;
    uint64_t seed, request_key, token_index;
} tm_k_sample_params;

/* logits row r at logits + r * ld (fp32, read only). Per row out_token (-1
 * on error), and when the pointers are not NULL: out_status (0 ok, 1 every
 * logit -inf/NaN: the CPU's TM_ERR_INPUT), out_logprob (raw log-softmax of
 * the token, 0 when not asked), out_n_top + out_top_ids/out_top_logprobs
 * [r * TM_K_SAMPLE_MAX_TOP ..] (by logprob desc, id asc; unused slots id -1),
 * out_n_kept (size of the set the draw chose from; 1 when decided without a
 * draw). workspace: tm_k_sample_workspace_bytes(vocab, slots) bytes, ZEROED
 * ONCE (cudaMemset) before first use; every call leaves it as it found the
 * zeros (the penalty counters). One thread block per slot works through the
 * rows; slots = min(n_rows, what the workspace holds). vocab <= 2^21.
 * Where the GPU may pick another token than the CPU: sample.cu's header. */
typedef struct tm_k_sample_args {
    const float *logits;
    int64_t ld;
    int32_t n_rows, vocab;
    const tm_k_sample_params *params; /* device [n_rows] */
    const int32_t *prev;              /* device; may be NULL when no row has n_prev > 0 */
    void *workspace;
    size_t workspace_bytes;
    int32_t *out_token, *out_status;
    float *out_logprob;
    int32_t *out_n_top, *out_top_ids;
    float *out_top_logprobs;
    int32_t *out_n_kept;
} tm_k_sample_args;
size_t tm_k_sample_workspace_bytes(int32_t vocab, int32_t slots);
int tm_k_sample(const tm_k_sample_args *a, tm_kstream stream);

/* out[i] = the sampler's uniform draw for (seed[i], key[i], index[i]) on the
 * device (same bits as tm_philox_uniform; for tests). */
int tm_k_philox_uniform(const uint64_t *seed, const uint64_t *key, const uint64_t *index, int32_t n, double *out,
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
