/* attention_prefill_fa2.cu — FlashAttention-2-style causal prefill over the
 * paged bf16 K/V cache, on tensor cores (mma.sync m16n8k16, bf16 in, fp32
 * accumulate).
 *
 * One thread block (4 warps) per (query head, tile of <= 64 consecutive
 * tokens of one sequence). The block stages its queries once in shared
 * memory as a bf16 hi/lo pair (q = hi + lo: S = Qhi.K + Qlo.K keeps ~16
 * mantissa bits of q, so only K's own bf16 rounding — the cache's — is left
 * in the scores); each warp owns 16 query rows. The block then walks the
 * sequence's keys [0, last query position] in tiles of 64 through the block
 * table: K and V tiles are copied into shared memory with cp.async, double
 * buffered (tile j+1 loads while tile j is used), S = Q K^T comes out of the
 * tensor cores in registers, is masked (causal, tail), and feeds an online
 * softmax in fp32 (exp2 with the scale folded into log2 units); P is rounded
 * to bf16 in registers and reused directly as the A operand of O += P V
 * (V read with ldmatrix.trans). The row sums use the same bf16-rounded P, so
 * O / l is an exact convex combination of the V rows. Only the last tile of
 * a block (the diagonal) and the tail are masked; keys beyond the tile's
 * last query are never loaded.
 *
 * GQA: query head h reads KV head h / (n_heads / n_kv_heads); blockIdx.x is
 * the head, so the query heads sharing a KV head run side by side and read
 * its tiles through L2. Tiles are launched last-first (the longest contexts
 * start first). head_dim 64 and 128 run unpadded; any other multiple of 8 up
 * to 128 (e.g. 48) runs on the 64/128 kernel with zero-filled columns.
 */
#include <math.h>

#include "attention_mma.cuh"

#define FA_BM 64
#define FA_BN 64
#define FA_WARPS 4
#define FA_THREADS (FA_WARPS * 32)

template <int HDP>
static size_t fa_smem_bytes(void)
{
    return (size_t)(2 * FA_BM + 4 * FA_BN) * (HDP + 8) * sizeof(bf16);
}

template <int HDP>
static __global__ void __launch_bounds__(FA_THREADS) k_fa2_prefill(tm_k_fa_args a)
{
    constexpr int RS = HDP + 8;  /* smem row stride (elements) */
    constexpr int NB = HDP / 8;  /* 8-column blocks of the output */
    constexpr int KT = FA_BN * RS;
    extern __shared__ __align__(16) unsigned char fa_smem[];
    bf16 *sQh = reinterpret_cast<bf16 *>(fa_smem), *sQl = sQh + FA_BM * RS;
    bf16 *sK = sQl + FA_BM * RS; /* [2][FA_BN][RS] */
    bf16 *sV = sK + 2 * KT;      /* [2][FA_BN][RS] */

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t4 = lane & 3;
    const int32_t h = blockIdx.x;
    const int32_t ti = a.n_tiles - 1 - (int32_t)blockIdx.y;
    const int32_t t0 = a.tiles[2 * ti], m = a.tiles[2 * ti + 1];
    const int32_t hd = a.head_dim, nh = a.n_heads;
    const int32_t qp0 = a.positions[t0];
    const int32_t n_kv = qp0 + m; /* keys [0, last query position] */
    const int32_t kvh = h / (nh / a.n_kv_heads);
    const int32_t *bt = a.block_tables + (size_t)a.tok_seq[t0] * a.bt_stride;
    const size_t tok_stride = (size_t)a.n_kv_heads * hd, head_off = (size_t)kvh * hd;
    const bf16 *kc = reinterpret_cast<const bf16 *>(a.k_cache), *vc = reinterpret_cast<const bf16 *>(a.v_cache);
    const int32_t n_tiles = (n_kv + FA_BN - 1) / FA_BN;

    tm_fa_load_kv<HDP, FA_BN>(sK, sV, kc, vc, bt, a.block_size, 0, n_kv, tok_stride, head_off, hd, tid, FA_THREADS);
    tm_cp_async_commit();
    tm_fa_stage_q<HDP>(sQh, sQl, FA_BM, m, hd, a.q + ((size_t)t0 * nh + h) * hd, (size_t)nh * hd, tid, FA_THREADS);

    /* this thread's two rows of the warp's 16: r0 and r0 + 8; padding rows
     * (>= m) take the last query's position and are never stored */
    const int r0 = 16 * warp + g, r1 = r0 + 8;
    const int32_t qpos0 = qp0 + (r0 < m ? r0 : m - 1), qpos1 = qp0 + (r1 < m ? r1 : m - 1);
    const float sl2 = a.scale * TM_FA_LOG2E;
    float o[NB][4];
#pragma unroll
    for (int nb = 0; nb < NB; nb++) o[nb][0] = o[nb][1] = o[nb][2] = o[nb][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;

    for (int32_t j = 0; j < n_tiles; j++) {
        const int buf = j & 1;
        if (j + 1 < n_tiles) {
            tm_fa_load_kv<HDP, FA_BN>(sK + (buf ^ 1) * KT, sV + (buf ^ 1) * KT, kc, vc, bt, a.block_size,
                                      (j + 1) * FA_BN, n_kv, tok_stride, head_off, hd, tid, FA_THREADS);
            tm_cp_async_commit();
            tm_cp_async_wait<1>();
        } else {
            tm_cp_async_wait<0>();
        }
        __syncthreads();
        const bf16 *K = sK + buf * KT, *V = sV + buf * KT;
        const int32_t n0 = j * FA_BN;

        /* S[16 rows x 64 keys] of this warp = (Qhi + Qlo) K^T */
        float s[8][4];
#pragma unroll
        for (int nb = 0; nb < 8; nb++) s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < HDP / 16; kk++) {
            uint32_t qh[4], ql[4];
            const int qr = 16 * warp + (lane & 15), qc = kk * 16 + (lane >> 4) * 8;
            tm_ldmatrix_x4(qh, sQh + qr * RS + qc);
            tm_ldmatrix_x4(ql, sQl + qr * RS + qc);
#pragma unroll
            for (int nb2 = 0; nb2 < 4; nb2++) {
                uint32_t kb[4];
                const int kr = nb2 * 16 + (lane & 7) + (lane >> 4) * 8, kcol = kk * 16 + ((lane >> 3) & 1) * 8;
                tm_ldmatrix_x4(kb, K + kr * RS + kcol);
                tm_mma_bf16(s[2 * nb2], qh, kb[0], kb[1]);
                tm_mma_bf16(s[2 * nb2], ql, kb[0], kb[1]);
                tm_mma_bf16(s[2 * nb2 + 1], qh, kb[2], kb[3]);
                tm_mma_bf16(s[2 * nb2 + 1], ql, kb[2], kb[3]);
            }
        }
        /* causal mask (and keys past the last query) where the tile reaches
         * beyond the first query's position */
        if (n0 + FA_BN - 1 > qp0) {
#pragma unroll
            for (int nb = 0; nb < 8; nb++) {
                const int32_t c = n0 + 8 * nb + 2 * t4;
                if (c > qpos0) s[nb][0] = -INFINITY;
                if (c + 1 > qpos0) s[nb][1] = -INFINITY;
                if (c > qpos1) s[nb][2] = -INFINITY;
                if (c + 1 > qpos1) s[nb][3] = -INFINITY;
            }
        }
        /* online softmax (log2 units); the 4 lanes of a quad share a row */
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int nb = 0; nb < 8; nb++) {
            mx0 = fmaxf(mx0, fmaxf(s[nb][0], s[nb][1]));
            mx1 = fmaxf(mx1, fmaxf(s[nb][2], s[nb][3]));
        }
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
        /* P (bf16) as A fragments, one per 16 keys */
        uint32_t pa[4][4];
#pragma unroll
        for (int kk = 0; kk < 4; kk++)
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const float *sv = s[2 * kk + half];
                const uint32_t u01 = tm_pack_bf16(exp2f(fmaf(sv[0], sl2, -b0)), exp2f(fmaf(sv[1], sl2, -b0)));
                const uint32_t u23 = tm_pack_bf16(exp2f(fmaf(sv[2], sl2, -b1)), exp2f(fmaf(sv[3], sl2, -b1)));
                const float2 f01 = tm_unpack_bf16(u01), f23 = tm_unpack_bf16(u23);
                l0 += f01.x + f01.y;
                l1 += f23.x + f23.y;
                pa[kk][2 * half] = u01;
                pa[kk][2 * half + 1] = u23;
            }
        /* O += P V */
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            const int vr = kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
#pragma unroll
            for (int nb2 = 0; nb2 < NB / 2; nb2++) {
                uint32_t vb[4];
                tm_ldmatrix_x4_trans(vb, V + vr * RS + nb2 * 16 + (lane >> 4) * 8);
                tm_mma_bf16(o[2 * nb2], pa[kk], vb[0], vb[1]);
                tm_mma_bf16(o[2 * nb2 + 1], pa[kk], vb[2], vb[3]);
            }
        }
        __syncthreads(); /* the buffer is reloaded two tiles later */
    }

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
    bf16 *out = reinterpret_cast<bf16 *>(a.out);
#pragma unroll
    for (int nb = 0; nb < NB; nb++) {
        const int col = 8 * nb + 2 * t4;
        if (col >= hd) continue; /* hd % 8 == 0: col + 1 < hd too */
        if (r0 < m)
            *reinterpret_cast<__nv_bfloat162 *>(out + ((size_t)(t0 + r0) * nh + h) * hd + col) =
                __floats2bfloat162_rn(o[nb][0] * inv0, o[nb][1] * inv0);
        if (r1 < m)
            *reinterpret_cast<__nv_bfloat162 *>(out + ((size_t)(t0 + r1) * nh + h) * hd + col) =
                __floats2bfloat162_rn(o[nb][2] * inv1, o[nb][3] * inv1);
    }
}

extern "C" int tm_k_attention_fast_supported(int32_t head_dim)
{
    return head_dim > 0 && head_dim <= 128 && head_dim % 8 == 0;
}

template <int HDP>
static int fa_launch(const tm_k_fa_args *a, tm_kstream stream)
{
    const size_t smem = fa_smem_bytes<HDP>();
    cudaError_t e = cudaFuncSetAttribute(k_fa2_prefill<HDP>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return (int)e;
    dim3 grid((unsigned)a->n_heads, (unsigned)a->n_tiles);
    k_fa2_prefill<HDP><<<grid, FA_THREADS, smem, stream>>>(*a);
    return (int)cudaGetLastError();
}

extern "C" int tm_k_attention_prefill_fa2(const tm_k_fa_args *a, tm_kstream stream)
{
    if (a->n_tiles <= 0) return 0;
    if (!tm_k_attention_fast_supported(a->head_dim) || a->n_heads <= 0 || a->n_kv_heads <= 0 ||
        a->n_heads % a->n_kv_heads || a->block_size <= 0 || a->n_tiles > 65535 || a->n_heads > 65535 || !a->tiles)
        return (int)cudaErrorInvalidValue;
    return a->head_dim <= 64 ? fa_launch<64>(a, stream) : fa_launch<128>(a, stream);
}
