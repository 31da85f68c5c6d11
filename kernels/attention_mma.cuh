/* attention_mma.cuh — tensor-core building blocks shared by the
 * FlashAttention-2-style prefill kernel (attention_prefill_fa2.cu) and the
 * GQA decode kernel (attention_decode_gqa.cu): inline-PTX wrappers for
 * mma.sync m16n8k16 (bf16 in, fp32 accumulate), ldmatrix, cp.async, and the
 * paged K/V tile loader. Device code only.
 *
 * Fragment layouts (PTX ISA, mma.m16n8k16 .bf16; g = lane / 4, t = lane % 4):
 *   A 16x16 (row-major), 4 x b32:  a[0] = (row g,   cols 2t, 2t+1)
 *                                  a[1] = (row g+8, cols 2t, 2t+1)
 *                                  a[2] = (row g,   cols 2t+8, 2t+9)
 *                                  a[3] = (row g+8, cols 2t+8, 2t+9)
 *   B 16x8 ("col"), 2 x b32:       b[0] = (k 2t, 2t+1;   n g), b[1] = (k 2t+8, 2t+9; n g)
 *   C/D 16x8 fp32, 4 floats:       c[0], c[1] = (row g, cols 2t, 2t+1), c[2], c[3] = row g+8
 * The lower-numbered element sits in the low 16 bits of a b32. So the C
 * fragments of two neighbouring 8-column blocks are, packed to bf16, exactly
 * the A fragment of the 16-column block (FlashAttention-2's register reuse
 * of P for the P.V product).
 *
 * Shared-memory tiles are row-major bf16 with a row stride of HDP + 8
 * elements (16 bytes of padding), so the 8 row addresses of one ldmatrix
 * 8x8 matrix fall in 8 different 16-byte bank groups (no conflicts), and
 * every row start stays 16-byte aligned for cp.async and ldmatrix.
 */
#ifndef TM_ATTENTION_MMA_CUH
#define TM_ATTENTION_MMA_CUH

#include "common.cuh"

#define TM_FA_LOG2E 1.4426950408889634f

/* D = A * B + D, bf16 x bf16 -> fp32. */
static __device__ __forceinline__ void tm_mma_bf16(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

static __device__ __forceinline__ uint32_t tm_smem_addr(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* Four 8x8 b16 matrices; lane i gives the address of row i % 8 of matrix
 * i / 8; register j receives matrix j as (row lane/4, cols 2*(lane%4), +1). */
static __device__ __forceinline__ void tm_ldmatrix_x4(uint32_t r[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(tm_smem_addr(p)));
}

/* The same, each matrix transposed: register j receives (rows 2*(lane%4),
 * +1; col lane/4) of matrix j as stored. */
static __device__ __forceinline__ void tm_ldmatrix_x4_trans(uint32_t r[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(tm_smem_addr(p)));
}

/* 16-byte global -> shared copy that bypasses L1; src_bytes == 0 writes 16
 * zero bytes and reads nothing (src must still be a valid address). */
static __device__ __forceinline__ void tm_cp_async16(void *dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(tm_smem_addr(dst)), "l"(src),
                 "r"(src_bytes)
                 : "memory");
}

static __device__ __forceinline__ void tm_cp_async_commit(void)
{
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

template <int N>
static __device__ __forceinline__ void tm_cp_async_wait(void)
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

/* Two floats -> one b32 of two bf16 (lo in the low half), round to nearest. */
static __device__ __forceinline__ uint32_t tm_pack_bf16(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

/* The two bf16 of a packed b32 back to floats (exact). */
static __device__ __forceinline__ float2 tm_unpack_bf16(uint32_t u)
{
    return make_float2(__uint_as_float(u << 16), __uint_as_float(u & 0xffff0000u));
}

/* Stage `rows` query rows of head_dim hd (fp32, row r at q + r * row_stride_floats) into
 * smem as a bf16 hi/lo pair (q = hi + lo to ~16 mantissa bits, so the Q.K
 * product loses almost nothing to bf16), zeros for rows >= n_valid and for
 * columns >= hd. hd % 4 == 0; q rows 16-byte aligned. */
template <int HDP>
static __device__ __forceinline__ void tm_fa_stage_q(bf16 *sQh, bf16 *sQl, int rows, int n_valid, int hd,
                                                     const float *q, size_t row_stride_floats, int tid,
                                                     int nthreads)
{
    constexpr int RS = HDP + 8;
    const int c4n = HDP / 4;
    for (int idx = tid; idx < rows * c4n; idx += nthreads) {
        const int r = idx / c4n, d = (idx % c4n) * 4;
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (r < n_valid && d < hd) v = *reinterpret_cast<const float4 *>(q + (size_t)r * row_stride_floats + d);
        const uint32_t h01 = tm_pack_bf16(v.x, v.y), h23 = tm_pack_bf16(v.z, v.w);
        const float2 f01 = tm_unpack_bf16(h01), f23 = tm_unpack_bf16(h23);
        const uint32_t l01 = tm_pack_bf16(v.x - f01.x, v.y - f01.y), l23 = tm_pack_bf16(v.z - f23.x, v.w - f23.y);
        *reinterpret_cast<uint2 *>(sQh + r * RS + d) = make_uint2(h01, h23);
        *reinterpret_cast<uint2 *>(sQl + r * RS + d) = make_uint2(l01, l23);
    }
}

/* Issue the cp.async copies of one K tile and one V tile: BN key positions
 * starting at n0 of one sequence (block table bt), kv head kvh; positions
 * >= n_end and columns >= hd are zero-filled (so masked keys hold 0, never
 * stale NaN bits: P = 0 times V = NaN would poison the P.V product). */
template <int HDP, int BN>
static __device__ __forceinline__ void tm_fa_load_kv(bf16 *sK, bf16 *sV, const bf16 *kc, const bf16 *vc,
                                                     const int32_t *bt, int32_t bs, int32_t n0, int32_t n_end,
                                                     size_t tok_stride, size_t head_off, int hd, int tid,
                                                     int nthreads)
{
    constexpr int RS = HDP + 8, CH = HDP / 8;
    const int hd_ch = hd / 8;
    for (int idx = tid; idx < BN * CH; idx += nthreads) {
        const int r = idx / CH, c = idx % CH;
        const int32_t p = n0 + r;
        const bool ok = p < n_end && c < hd_ch;
        size_t off = 0;
        if (ok) off = ((size_t)bt[p / bs] * bs + (size_t)(p % bs)) * tok_stride + head_off + (size_t)c * 8;
        tm_cp_async16(sK + r * RS + c * 8, kc + off, ok ? 16 : 0);
        tm_cp_async16(sV + r * RS + c * 8, vc + off, ok ? 16 : 0);
    }
}

#endif
