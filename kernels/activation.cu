/* activation.cu — elementwise kernels: SiLU(gate) * up over the fused
 * gate/up projection output (SwiGLU MLP).
 * Grid-stride loops; math in fp32.
 */
#include "common.cuh"

static __global__ void k_silu_mul(const float *gu, int64_t total, int32_t inter, bf16 *out)
{
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        int64_t t = idx / inter, i = idx % inter;
        float g = gu[t * 2 * inter + i];
        float u = gu[t * 2 * inter + inter + i];
        out[idx] = tm_f2bf(g / (1.0f + expf(-g)) * u);
    }
}

extern "C" int tm_k_silu_mul(const float *gu, int32_t n, int32_t inter, uint16_t *out, tm_kstream stream)
{
    int64_t total = (int64_t)n * inter;
    if (total <= 0) return 0;
    k_silu_mul<<<tm_grid_for(total, 256), 256, 0, stream>>>(gu, total, inter, (bf16 *)out);
    return (int)cudaGetLastError();
}
