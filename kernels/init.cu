/* init.cu — fills a weight tensor with deterministic pseudo-random values
 * on the device (synthetic models: full-size benchmarks without a
 * checkpoint, nothing large on the host). One grid-stride launch per tensor;
 * the value of element i depends only on (seed, i) (kernels.h).
 */
#include "common.cuh"

static __global__ void k_init_bf16(bf16 *out, int64_t n, uint32_t seed, float scale, float offset)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = tm_f2bf(offset + scale * tm_k_synth_uniform(seed, i));
}

static __global__ void k_init_f32(float *out, int64_t n, uint32_t seed, float scale, float offset)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = offset + scale * tm_k_synth_uniform(seed, i);
}

extern "C" int tm_k_init_synthetic(void *out, int as_f32, int64_t n, uint32_t seed, float scale, float offset,
                                   tm_kstream stream)
{
    if (n <= 0) return 0;
    if (as_f32)
        k_init_f32<<<tm_grid_for(n, 256), 256, 0, stream>>>((float *)out, n, seed, scale, offset);
    else
        k_init_bf16<<<tm_grid_for(n, 256), 256, 0, stream>>>((bf16 *)out, n, seed, scale, offset);
    return (int)cudaGetLastError();
}
