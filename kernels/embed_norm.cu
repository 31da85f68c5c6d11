/* embed_norm.cu — embedding gather and RMSNorm (fused with the residual add,
 * an optional row gather and an optional hi+lo bf16 split of the output for
 * the final norm before lm_head).
 * fp32 residual stream in, bf16 normalized activations out (GEMM inputs);
 * the sum of squares is accumulated in fp32, one thread block per row.
 */
#include "common.cuh"

static __global__ void k_embed(const bf16 *table, const int32_t *ids, int32_t dim, float *x)
{
    int64_t t = blockIdx.x;
    const bf16 *row = table + (size_t)ids[t] * dim;
    float *o = x + (size_t)t * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = tm_bf2f(row[i]);
}

extern "C" int tm_k_embed_f32(const uint16_t *table, const int32_t *ids, int32_t n, int32_t dim, float *x,
                              tm_kstream stream)
{
    if (n <= 0 || dim <= 0) return 0;
    k_embed<<<n, 256, 0, stream>>>((const bf16 *)table, ids, dim, x);
    return (int)cudaGetLastError();
}

static __global__ void k_add_rmsnorm(float *x, const float *resid, const float *w, const int32_t *rows,
                                     int32_t dim, float eps, bf16 *out, bf16 *out_lo)
{
    __shared__ float sh[33];
    int32_t r = blockIdx.x;
    int32_t src = rows ? rows[r] : r;
    float *xr = x + (size_t)src * dim;
    float ss = 0.0f;
    if (resid) {
        const float *rr = resid + (size_t)src * dim;
        for (int i = threadIdx.x; i < dim; i += blockDim.x) {
            float v = xr[i] + rr[i];
            xr[i] = v;
            ss += v * v;
        }
    } else {
        for (int i = threadIdx.x; i < dim; i += blockDim.x) {
            float v = xr[i];
            ss += v * v;
        }
    }
    ss = tm_block_sum(ss, sh);
    float inv = rsqrtf(ss / (float)dim + eps);
    bf16 *o = out + (size_t)r * dim;
    bf16 *lo = out_lo ? out_lo + (size_t)r * dim : NULL;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float v = xr[i] * inv * w[i];
        bf16 hi = tm_f2bf(v);
        o[i] = hi;
        if (lo) lo[i] = tm_f2bf(v - tm_bf2f(hi));
    }
}

extern "C" int tm_k_add_rmsnorm(float *x, const float *resid, const float *w, const int32_t *rows,
                                int32_t n_rows, int32_t dim, float eps, uint16_t *out, uint16_t *out_lo,
                                tm_kstream stream)
{
    if (n_rows <= 0 || dim <= 0) return 0;
    int threads = dim >= 4096 ? 1024 : dim >= 1024 ? 512 : 128;
    k_add_rmsnorm<<<n_rows, threads, 0, stream>>>(x, resid, w, rows, dim, eps, (bf16 *)out, (bf16 *)out_lo);
    return (int)cudaGetLastError();
}
