/* attention_decode_gqa.cu — decode attention (one query token per
 * sequence) over the paged bf16 K/V cache, GQA-aware: K/V are read once per
 * KV head, not once per query head.
 *
 * One thread block (4 warps) per (item, KV head [, chunk of 16 query heads
 * when a group has more], context split). The group's query heads are the
 * 16 rows of one mma m16 tile (rows past the group size are zero and never
 * stored), staged once as a bf16 hi/lo pair as in the prefill kernel. The
 * block walks its share of the context in tiles of 64 keys, copied with
 * cp.async and double buffered; warp w takes keys [16w, 16w+16) of every
 * tile: S = (Qhi + Qlo) K^T (2 n-blocks), online softmax in fp32 (log2
 * units), O += P V with P in bf16 registers. The 4 warps' (max, sum, O)
 * states are merged through shared memory at the end. With one split the
 * block writes bf16 output; with several (too few blocks to fill the GPU:
 * small batches, long contexts) it writes its partial state [m, l, O[hd]]
 * (m in log2 units, O unnormalised, relative to m) to the workspace and
 * k_decode_combine merges the splits — the existing k_attention_merge works
 * in natural-log units on a per-token layout, so it is not reused.
 */
#include <math.h>

#include "attention_mma.cuh"

#define DEC_BN 64
#define DEC_WARPS 4
#define DEC_THREADS (DEC_WARPS * 32)
#define DEC_ROWS 16
#define DEC_MAX_SPLITS 256
#define DEC_MIN_SPLIT_KEYS 128 /* a split gets at least two tiles */

template <int HDP>
static size_t dec_smem_bytes(void)
{
    return (size_t)(2 * DEC_ROWS + 4 * DEC_BN) * (HDP + 8) * sizeof(bf16);
}

template <int HDP>
static __global__ void __launch_bounds__(DEC_THREADS) k_decode_gqa(tm_k_decode_args a, int32_t n_split, int32_t n_hc)
{
    constexpr int RS = HDP + 8, NB = HDP / 8, KT = DEC_BN * RS;
    extern __shared__ __align__(16) unsigned char dec_smem[];
    bf16 *sQh = reinterpret_cast<bf16 *>(dec_smem), *sQl = sQh + DEC_ROWS * RS;
    bf16 *sK = sQl + DEC_ROWS * RS; /* [2][DEC_BN][RS] */
    bf16 *sV = sK + 2 * KT;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t4 = lane & 3;
    const int32_t item = blockIdx.x, kvh = blockIdx.y / n_hc, hc = blockIdx.y % n_hc, split = blockIdx.z;
    const int32_t t = a.tokens ? a.tokens[item] : item;
    const int32_t hd = a.head_dim, nh = a.n_heads, G = nh / a.n_kv_heads;
    const int32_t h0 = kvh * G + hc * DEC_ROWS;
    const int32_t rows = G - hc * DEC_ROWS < DEC_ROWS ? G - hc * DEC_ROWS : DEC_ROWS;
    const int32_t ctx = a.positions[t] + 1;
    int32_t per = (ctx + n_split - 1) / n_split;
    per = (per + DEC_BN - 1) / DEC_BN * DEC_BN;
    const int32_t k0 = split * per, k1 = k0 + per < ctx ? k0 + per : ctx;
    const int32_t n_tiles = k1 > k0 ? (k1 - k0 + DEC_BN - 1) / DEC_BN : 0;
    const int32_t *bt = a.block_tables + (size_t)a.tok_seq[t] * a.bt_stride;
    const size_t tok_stride = (size_t)a.n_kv_heads * hd, head_off = (size_t)kvh * hd;
    const bf16 *kc = reinterpret_cast<const bf16 *>(a.k_cache), *vc = reinterpret_cast<const bf16 *>(a.v_cache);

    if (n_tiles > 0) {
        tm_fa_load_kv<HDP, DEC_BN>(sK, sV, kc, vc, bt, a.block_size, k0, k1, tok_stride, head_off, hd, tid,
                                   DEC_THREADS);
        tm_cp_async_commit();
    }
    tm_fa_stage_q<HDP>(sQh, sQl, DEC_ROWS, rows, hd, a.q + ((size_t)t * nh + h0) * hd, (size_t)hd, tid,
                       DEC_THREADS);
    __syncthreads(); /* Q visible even when there is no tile */

    const float sl2 = a.scale * TM_FA_LOG2E;
    float o[NB][4];
#pragma unroll
    for (int nb = 0; nb < NB; nb++) o[nb][0] = o[nb][1] = o[nb][2] = o[nb][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;

    for (int32_t j = 0; j < n_tiles; j++) {
        const int buf = j & 1;
        if (j + 1 < n_tiles) {
            tm_fa_load_kv<HDP, DEC_BN>(sK + (buf ^ 1) * KT, sV + (buf ^ 1) * KT, kc, vc, bt, a.block_size,
                                       k0 + (j + 1) * DEC_BN, k1, tok_stride, head_off, hd, tid, DEC_THREADS);
            tm_cp_async_commit();
            tm_cp_async_wait<1>();
        } else {
            tm_cp_async_wait<0>();
        }
        __syncthreads();
        const bf16 *K = sK + buf * KT + 16 * warp * RS, *V = sV + buf * KT + 16 * warp * RS;
        const int32_t n0 = k0 + j * DEC_BN + 16 * warp; /* this warp's first key */

        float s[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
        for (int kk = 0; kk < HDP / 16; kk++) {
            uint32_t qh[4], ql[4], kb[4];
            const int qr = lane & 15, qc = kk * 16 + (lane >> 4) * 8;
            tm_ldmatrix_x4(qh, sQh + qr * RS + qc);
            tm_ldmatrix_x4(ql, sQl + qr * RS + qc);
            tm_ldmatrix_x4(kb, K + ((lane & 7) + (lane >> 4) * 8) * RS + kk * 16 + ((lane >> 3) & 1) * 8);
            tm_mma_bf16(s[0], qh, kb[0], kb[1]);
            tm_mma_bf16(s[0], ql, kb[0], kb[1]);
            tm_mma_bf16(s[1], qh, kb[2], kb[3]);
            tm_mma_bf16(s[1], ql, kb[2], kb[3]);
        }
        if (n0 + 16 > k1) { /* keys past this split's end */
#pragma unroll
            for (int nb = 0; nb < 2; nb++) {
                const int32_t c = n0 + 8 * nb + 2 * t4;
                if (c >= k1) s[nb][0] = s[nb][2] = -INFINITY;
                if (c + 1 >= k1) s[nb][1] = s[nb][3] = -INFINITY;
            }
        }
        float mx0 = fmaxf(fmaxf(s[0][0], s[0][1]), fmaxf(s[1][0], s[1][1]));
        float mx1 = fmaxf(fmaxf(s[0][2], s[0][3]), fmaxf(s[1][2], s[1][3]));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        const float mn0 = fmaxf(m0, mx0 * sl2), mn1 = fmaxf(m1, mx1 * sl2);
        const float b0 = mn0 == -INFINITY ? 0.0f : mn0, b1 = mn1 == -INFINITY ? 0.0f : mn1;
        const float c0 = exp2f(m0 - b0), c1 = exp2f(m1 - b1);
        m0 = mn0;
        m1 = mn1;
        l0 *= c0;
        l1 *= c1;
#pragma unroll
        for (int nb = 0; nb < NB; nb++) {
            o[nb][0] *= c0;
            o[nb][1] *= c0;
            o[nb][2] *= c1;
            o[nb][3] *= c1;
        }
        uint32_t pa[4];
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const uint32_t u01 = tm_pack_bf16(exp2f(fmaf(s[half][0], sl2, -b0)), exp2f(fmaf(s[half][1], sl2, -b0)));
            const uint32_t u23 = tm_pack_bf16(exp2f(fmaf(s[half][2], sl2, -b1)), exp2f(fmaf(s[half][3], sl2, -b1)));
            const float2 f01 = tm_unpack_bf16(u01), f23 = tm_unpack_bf16(u23);
            l0 += f01.x + f01.y;
            l1 += f23.x + f23.y;
            pa[2 * half] = u01;
            pa[2 * half + 1] = u23;
        }
        const int vr = (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
        for (int nb2 = 0; nb2 < NB / 2; nb2++) {
            uint32_t vb[4];
            tm_ldmatrix_x4_trans(vb, V + vr * RS + nb2 * 16 + (lane >> 4) * 8);
            tm_mma_bf16(o[2 * nb2], pa, vb[0], vb[1]);
            tm_mma_bf16(o[2 * nb2 + 1], pa, vb[2], vb[3]);
        }
        __syncthreads();
    }

    /* merge the 4 warps through shared memory (the K/V buffers are free) */
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    float *sO = reinterpret_cast<float *>(sK);    /* [DEC_WARPS][DEC_ROWS][HDP] */
    float *sM = sO + DEC_WARPS * DEC_ROWS * HDP; /* [DEC_WARPS][DEC_ROWS] */
    float *sL = sM + DEC_WARPS * DEC_ROWS;
    const int r0 = g, r1 = g + 8;
#pragma unroll
    for (int nb = 0; nb < NB; nb++) {
        const int col = 8 * nb + 2 * t4;
        sO[(warp * DEC_ROWS + r0) * HDP + col] = o[nb][0];
        sO[(warp * DEC_ROWS + r0) * HDP + col + 1] = o[nb][1];
        sO[(warp * DEC_ROWS + r1) * HDP + col] = o[nb][2];
        sO[(warp * DEC_ROWS + r1) * HDP + col + 1] = o[nb][3];
    }
    if (t4 == 0) {
        sM[warp * DEC_ROWS + r0] = m0;
        sM[warp * DEC_ROWS + r1] = m1;
        sL[warp * DEC_ROWS + r0] = l0;
        sL[warp * DEC_ROWS + r1] = l1;
    }
    __syncthreads();
    for (int idx = tid; idx < rows * hd; idx += DEC_THREADS) {
        const int r = idx / hd, d = idx % hd;
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < DEC_WARPS; w++) M = fmaxf(M, sM[w * DEC_ROWS + r]);
        float L = 0.0f, O = 0.0f;
#pragma unroll
        for (int w = 0; w < DEC_WARPS; w++) {
            const float mw = sM[w * DEC_ROWS + r];
            const float f = mw == -INFINITY ? 0.0f : exp2f(mw - M);
            L += sL[w * DEC_ROWS + r] * f;
            O += sO[(w * DEC_ROWS + r) * HDP + d] * f;
        }
        const int32_t h = h0 + r;
        if (n_split == 1) {
            a.out[((size_t)t * nh + h) * hd + d] = __bfloat16_as_ushort(__float2bfloat16_rn(O / L));
        } else {
            float *ws = a.workspace + (((size_t)item * nh + h) * n_split + split) * (size_t)(hd + 2);
            if (d == 0) {
                ws[0] = M;
                ws[1] = L;
            }
            ws[2 + d] = O;
        }
    }
}

/* Merge the n_split partial states of each (item, head) into the output. */
static __global__ void k_decode_combine(const float *ws, const int32_t *tokens, int32_t nh, int32_t hd,
                                        int32_t n_split, uint16_t *out)
{
    const int32_t item = blockIdx.x, h = blockIdx.y;
    const int32_t t = tokens ? tokens[item] : item;
    const float *p = ws + ((size_t)item * nh + h) * n_split * (size_t)(hd + 2);
    float M = -INFINITY, L = 0.0f;
    for (int z = 0; z < n_split; z++) M = fmaxf(M, p[(size_t)z * (hd + 2)]);
    for (int z = 0; z < n_split; z++) {
        const float mz = p[(size_t)z * (hd + 2)];
        if (mz != -INFINITY) L += p[(size_t)z * (hd + 2) + 1] * exp2f(mz - M);
    }
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float s = 0.0f;
        for (int z = 0; z < n_split; z++) {
            const float mz = p[(size_t)z * (hd + 2)];
            if (mz != -INFINITY) s += p[(size_t)z * (hd + 2) + 2 + d] * exp2f(mz - M);
        }
        out[((size_t)t * nh + h) * hd + d] = __bfloat16_as_ushort(__float2bfloat16_rn(s / L));
    }
}

template <int HDP>
static int dec_launch(const tm_k_decode_args *a, int32_t n_split, int32_t n_hc, tm_kstream stream)
{
    const size_t smem = dec_smem_bytes<HDP>();
    cudaError_t e = cudaFuncSetAttribute(k_decode_gqa<HDP>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return (int)e;
    dim3 grid((unsigned)a->n_items, (unsigned)(a->n_kv_heads * n_hc), (unsigned)n_split);
    k_decode_gqa<HDP><<<grid, DEC_THREADS, smem, stream>>>(*a, n_split, n_hc);
    e = cudaGetLastError();
    if (e != cudaSuccess || n_split == 1) return (int)e;
    dim3 g2((unsigned)a->n_items, (unsigned)a->n_heads);
    k_decode_combine<<<g2, 128, 0, stream>>>(a->workspace, a->tokens, a->n_heads, a->head_dim, n_split, a->out);
    return (int)cudaGetLastError();
}

extern "C" int tm_k_attention_decode_gqa(const tm_k_decode_args *a, tm_kstream stream)
{
    if (a->n_items <= 0) return 0;
    if (!tm_k_attention_fast_supported(a->head_dim) || a->n_heads <= 0 || a->n_kv_heads <= 0 ||
        a->n_heads % a->n_kv_heads || a->block_size <= 0 || a->n_heads > 65535)
        return (int)cudaErrorInvalidValue;
    const int32_t G = a->n_heads / a->n_kv_heads;
    const int32_t n_hc = (G + DEC_ROWS - 1) / DEC_ROWS;
    if ((int64_t)a->n_kv_heads * n_hc > 65535) return (int)cudaErrorInvalidValue;
    /* split the context when (items x KV heads) blocks cannot fill the GPU */
    int64_t n_split = 1;
    const int64_t blocks = (int64_t)a->n_items * a->n_kv_heads * n_hc;
    if (a->workspace && a->workspace_floats > 0) {
        int dev = 0, sms = 132;
        if (cudaGetDevice(&dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
            (void)cudaGetLastError();
            sms = 132;
        }
        const int64_t target = 4LL * sms; /* two resident blocks per SM, two waves */
        if (blocks < target) {
            n_split = (target + blocks - 1) / blocks;
            int64_t by_ctx = ((int64_t)a->max_ctx + DEC_MIN_SPLIT_KEYS - 1) / DEC_MIN_SPLIT_KEYS;
            if (n_split > by_ctx) n_split = by_ctx;
            if (n_split > DEC_MAX_SPLITS) n_split = DEC_MAX_SPLITS;
            const int64_t fit = a->workspace_floats / ((int64_t)a->n_items * a->n_heads * (a->head_dim + 2));
            if (n_split > fit) n_split = fit;
            if (n_split < 1) n_split = 1;
        }
    }
    return a->head_dim <= 64 ? dec_launch<64>(a, (int32_t)n_split, n_hc, stream)
                             : dec_launch<128>(a, (int32_t)n_split, n_hc, stream);
}
