/* common.cuh — small device helpers shared by the kernels/<op>.cu files:
 * warp and block sums, bf16 <-> float conversion, grid sizing.
 * Device code only; the C launchers are declared in kernels.h.
 */
#ifndef TM_KERNELS_COMMON_CUH
#define TM_KERNELS_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels.h"

typedef __nv_bfloat16 bf16;

static __device__ __forceinline__ float tm_bf2f(bf16 v) { return __bfloat162float(v); }
static __device__ __forceinline__ bf16 tm_f2bf(float v) { return __float2bfloat16_rn(v); }

static __device__ __forceinline__ float tm_warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Sum of v over the block (blockDim.x a multiple of 32); sh: 33 floats of
 * shared memory. Every thread gets the result. */
static __device__ __forceinline__ float tm_block_sum(float v, float *sh)
{
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = tm_warp_sum(v);
    if (lane == 0) sh[w] = v;
    __syncthreads();
    if (w == 0) {
        float t = lane < nw ? sh[lane] : 0.0f;
        t = tm_warp_sum(t);
        if (lane == 0) sh[32] = t;
    }
    __syncthreads();
    float r = sh[32];
    __syncthreads();
    return r;
}

/* Blocks for a grid-stride loop over n items with `threads` per block. */
static inline unsigned tm_grid_for(int64_t n, int threads)
{
    int64_t g = (n + threads - 1) / threads;
    if (g > 65535LL * 8) g = 65535LL * 8;
    return (unsigned)(g < 1 ? 1 : g);
}

#endif
