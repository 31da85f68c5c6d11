/* attention.cu — paged causal attention for a mixed batch (prefill chunks
 * and decodes together), GQA, online softmax in fp32.
 *
 * One thread block per (query head, token); each of its warps walks a strided
 * share of the token's context positions in chunks of 32 through the
 * sequence's block table: lane i scores position base+i over all of
 * head_dim, the chunk's max/sum update the running softmax state, then the
 * lanes (splitting head_dim) accumulate the chunk's V rows. The warps are
 * merged through shared memory at the end. With a workspace and too few
 * (head, token) blocks (small decode batches), each token's context is also
 * split over gridDim.z blocks (flash-decoding) and k_attention_merge
 * combines their (max, sum, acc) states. Correct for any context length; FlashAttention-style tensor-core
 * tiling is a later step.
 */
#include <math.h>

#include "common.cuh"

#define ATT_WARPS 4
#define ATT_EPL (TM_K_MAX_HEAD_DIM / 32) /* head_dim elements per lane */
#define ATT_TARGET_BLOCKS 1024            /* enough blocks to fill an H100/H200 */
#define ATT_MAX_SPLITS 64

static __global__ void __launch_bounds__(ATT_WARPS * 32) k_attention(tm_k_attn_args a)
{
    __shared__ float sm_m[ATT_WARPS], sm_l[ATT_WARPS];
    __shared__ float sm_acc[ATT_WARPS][TM_K_MAX_HEAD_DIM];
    const int32_t h = blockIdx.x, t = blockIdx.y, hd = a.head_dim;
    const int32_t split = blockIdx.z, n_split = gridDim.z;
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int32_t full_ctx = a.positions[t] + 1;
    /* this block's share of the context: [c0, n_ctx) */
    const int32_t per = (full_ctx + n_split - 1) / n_split;
    const int32_t c0 = split * per;
    const int32_t n_ctx = c0 + per < full_ctx ? c0 + per : full_ctx;
    const int32_t kvh = h / (a.n_heads / a.n_kv_heads);
    const int32_t *bt = a.block_tables + (size_t)a.tok_seq[t] * a.bt_stride;
    const size_t tok_stride = (size_t)a.n_kv_heads * hd;
    const bf16 *K = (const bf16 *)a.k_cache + (size_t)kvh * hd;
    const bf16 *V = (const bf16 *)a.v_cache + (size_t)kvh * hd;
    const float *q = a.q + ((size_t)t * a.n_heads + h) * hd;

    __shared__ float sm_q[TM_K_MAX_HEAD_DIM];
    for (int d = threadIdx.x; d < hd; d += blockDim.x) sm_q[d] = q[d] * a.scale;
    __syncthreads();
    float acc[ATT_EPL];
#pragma unroll
    for (int j = 0; j < ATT_EPL; j++) acc[j] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    /* each warp takes chunks of 32 positions: lane i scores position
     * base + i over the whole head_dim, then the warp accumulates V of the
     * chunk with the lanes splitting head_dim */
    for (int32_t base = c0 + w * 32; base < n_ctx; base += ATT_WARPS * 32) {
        const int32_t p = base + lane;
        const int valid = p < n_ctx;
        size_t off = 0;
        float s = -INFINITY;
        if (valid) {
            off = ((size_t)bt[p / a.block_size] * a.block_size + (size_t)(p % a.block_size)) * tok_stride;
            const __nv_bfloat162 *k2 = (const __nv_bfloat162 *)(K + off);
            float d0 = 0.0f, d1 = 0.0f;
#pragma unroll 8
            for (int d = 0; d < hd / 2; d++) {
                float2 kv = __bfloat1622float2(k2[d]);
                d0 += sm_q[2 * d] * kv.x;
                d1 += sm_q[2 * d + 1] * kv.y;
            }
            s = d0 + d1;
        }
        float cm = s;
        for (int o = 16; o > 0; o >>= 1) cm = fmaxf(cm, __shfl_xor_sync(0xffffffffu, cm, o));
        const float mn = fmaxf(m, cm);
        const float corr = expf(m - mn);
        const float pe = valid ? expf(s - mn) : 0.0f;
        l = l * corr + tm_warp_sum(pe);
#pragma unroll
        for (int j = 0; j < ATT_EPL; j++) acc[j] *= corr;
        const int n_valid = n_ctx - base < 32 ? n_ctx - base : 32;
        const unsigned off_lo = (unsigned)off, off_hi = (unsigned)(off >> 32);
#pragma unroll 4
        for (int kk = 0; kk < n_valid; kk++) {
            const float pk = __shfl_sync(0xffffffffu, pe, kk);
            const size_t ok = (size_t)__shfl_sync(0xffffffffu, off_lo, kk) |
                              ((size_t)__shfl_sync(0xffffffffu, off_hi, kk) << 32);
            const bf16 *v = V + ok;
#pragma unroll
            for (int j = 0; j < ATT_EPL; j++) {
                int d = lane + 32 * j;
                if (d < hd) acc[j] += pk * tm_bf2f(v[d]);
            }
        }
        m = mn;
    }
    if (lane == 0) {
        sm_m[w] = m;
        sm_l[w] = l;
    }
#pragma unroll
    for (int j = 0; j < ATT_EPL; j++) {
        int d = lane + 32 * j;
        if (d < hd) sm_acc[w][d] = acc[j];
    }
    __syncthreads();
    float M = -INFINITY;
    for (int i = 0; i < ATT_WARPS; i++) M = fmaxf(M, sm_m[i]);
    float L = 0.0f, f[ATT_WARPS];
    for (int i = 0; i < ATT_WARPS; i++) {
        f[i] = sm_m[i] == -INFINITY ? 0.0f : expf(sm_m[i] - M);
        L += sm_l[i] * f[i];
    }
    if (n_split == 1) {
        bf16 *o = (bf16 *)a.out + ((size_t)t * a.n_heads + h) * hd;
        for (int d = threadIdx.x; d < hd; d += blockDim.x) {
            float s = 0.0f;
            for (int i = 0; i < ATT_WARPS; i++) s += sm_acc[i][d] * f[i];
            o[d] = tm_f2bf(s / L);
        }
        return;
    }
    /* partial state of this split: [M, L, acc[hd]] (acc relative to M) */
    float *ws = a.workspace + (((size_t)t * a.n_heads + h) * n_split + split) * (size_t)(hd + 2);
    if (threadIdx.x == 0) {
        ws[0] = M;
        ws[1] = L;
    }
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float s = 0.0f;
        for (int i = 0; i < ATT_WARPS; i++) s += sm_acc[i][d] * f[i];
        ws[2 + d] = s;
    }
}

/* Merge the n_split partial states of each (head, token) into the output. */
static __global__ void k_attention_merge(const float *ws, int32_t n_heads, int32_t hd, int32_t n_split, bf16 *out)
{
    const int32_t h = blockIdx.x, t = blockIdx.y;
    const float *p = ws + ((size_t)t * n_heads + h) * n_split * (size_t)(hd + 2);
    float M = -INFINITY, L = 0.0f;
    for (int z = 0; z < n_split; z++) M = fmaxf(M, p[(size_t)z * (hd + 2)]);
    for (int z = 0; z < n_split; z++) {
        float mz = p[(size_t)z * (hd + 2)];
        if (mz != -INFINITY) L += p[(size_t)z * (hd + 2) + 1] * expf(mz - M);
    }
    bf16 *o = out + ((size_t)t * n_heads + h) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float s = 0.0f;
        for (int z = 0; z < n_split; z++) {
            float mz = p[(size_t)z * (hd + 2)];
            if (mz != -INFINITY) s += p[(size_t)z * (hd + 2) + 2 + d] * expf(mz - M);
        }
        o[d] = tm_f2bf(s / L);
    }
}

extern "C" int tm_k_attention(const tm_k_attn_args *a, tm_kstream stream)
{
    if (a->n_tokens <= 0) return 0;
    if (a->head_dim <= 0 || a->head_dim > TM_K_MAX_HEAD_DIM || a->n_heads <= 0 || a->n_kv_heads <= 0 ||
        a->n_heads % a->n_kv_heads || a->block_size <= 0 || a->n_tokens > 65535)
        return (int)cudaErrorInvalidValue;
    /* split the context when (heads x tokens) blocks cannot fill the GPU */
    int64_t blocks = (int64_t)a->n_heads * a->n_tokens, n_split = 1;
    if (a->workspace && blocks < ATT_TARGET_BLOCKS) {
        n_split = (ATT_TARGET_BLOCKS + blocks - 1) / blocks;
        if (n_split > ATT_MAX_SPLITS) n_split = ATT_MAX_SPLITS;
        int64_t fit = a->workspace_floats / (blocks * (a->head_dim + 2));
        if (n_split > fit) n_split = fit;
        if (n_split < 1) n_split = 1;
    }
    dim3 grid((unsigned)a->n_heads, (unsigned)a->n_tokens, (unsigned)n_split);
    k_attention<<<grid, ATT_WARPS * 32, 0, stream>>>(*a);
    if (n_split > 1) {
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return (int)e;
        dim3 g2((unsigned)a->n_heads, (unsigned)a->n_tokens);
        k_attention_merge<<<g2, 128, 0, stream>>>(a->workspace, a->n_heads, a->head_dim, (int32_t)n_split,
                                                   (bf16 *)a->out);
    }
    return (int)cudaGetLastError();
}
