/* rope_kv.cu — the attention prologue fused into one kernel per token:
 * q/k/v bias add (qwen2), per-head q/k RMSNorm (qwen3), rotate-half RoPE
 * (llama3-scaled inv_freq precomputed on the host in double, angles and
 * sin/cos computed in double like the CPU reference), and the write of the
 * token's K and V (bf16) into its slot of the paged cache. The token's row of
 * the fused QKV output is staged in shared memory (fp32).
 */
#include "common.cuh"

static __global__ void k_qkv_rope_kv(tm_k_rope_args a)
{
    extern __shared__ float sm[];
    const int32_t t = blockIdx.x, hd = a.head_dim, half = hd / 2, nh = a.n_heads, nkv = a.n_kv_heads;
    const int32_t W = (nh + 2 * nkv) * hd;
    float *row = sm, *cs = sm + W, *sn = cs + half;
    const float *src = a.qkv + (size_t)t * W;
    const int32_t pos = a.positions[t];
    for (int i = threadIdx.x; i < W; i += blockDim.x) row[i] = src[i] + (a.bias ? a.bias[i] : 0.0f);
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        double s, c;
        sincos((double)pos * a.inv_freq[i], &s, &c);
        cs[i] = (float)c;
        sn[i] = (float)s;
    }
    __syncthreads();
    if (a.q_norm) {
        int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
        for (int h = w; h < nh + nkv; h += nw) {
            float *v = row + (size_t)h * hd;
            const float *g = h < nh ? a.q_norm : a.k_norm;
            float ss = 0.0f;
            for (int d = lane; d < hd; d += 32) ss += v[d] * v[d];
            ss = tm_warp_sum(ss);
            float inv = rsqrtf(ss / (float)hd + a.eps);
            for (int d = lane; d < hd; d += 32) v[d] = v[d] * inv * g[d];
        }
        __syncthreads();
    }
    const int32_t seq = a.tok_seq[t];
    const int32_t blk = a.block_tables[(size_t)seq * a.bt_stride + pos / a.block_size];
    const size_t slot = ((size_t)blk * a.block_size + (size_t)(pos % a.block_size)) * (size_t)nkv * hd;
    bf16 *kc = (bf16 *)a.k_cache + slot, *vc = (bf16 *)a.v_cache + slot;
    float *qo = a.q_out + (size_t)t * nh * hd;
    for (int idx = threadIdx.x; idx < (nh + nkv) * half; idx += blockDim.x) {
        int h = idx / half, i = idx % half;
        float x0 = row[h * hd + i], x1 = row[h * hd + i + half];
        float y0 = x0 * cs[i] - x1 * sn[i], y1 = x1 * cs[i] + x0 * sn[i];
        if (h < nh) {
            qo[h * hd + i] = y0;
            qo[h * hd + i + half] = y1;
        } else {
            int kh = h - nh;
            kc[kh * hd + i] = tm_f2bf(y0);
            kc[kh * hd + i + half] = tm_f2bf(y1);
        }
    }
    const float *vrow = row + (size_t)(nh + nkv) * hd;
    for (int i = threadIdx.x; i < nkv * hd; i += blockDim.x) vc[i] = tm_f2bf(vrow[i]);
}

extern "C" int tm_k_qkv_rope_kv_write(const tm_k_rope_args *a, tm_kstream stream)
{
    if (a->n_tokens <= 0) return 0;
    if (a->head_dim <= 0 || a->head_dim % 2 || a->n_heads <= 0 || a->n_kv_heads <= 0 || a->block_size <= 0)
        return (int)cudaErrorInvalidValue;
    size_t smem = ((size_t)(a->n_heads + 2 * a->n_kv_heads) * a->head_dim + (size_t)a->head_dim) * sizeof(float);
    if (smem > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(k_qkv_rope_kv, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return (int)e;
    }
    k_qkv_rope_kv<<<a->n_tokens, 256, smem, stream>>>(*a);
    return (int)cudaGetLastError();
}
