/* gpucheck.h — tiny helpers shared by the GPU test programs in tests/gpu:
 * PASS/FAIL lines ("PASS|FAIL name max_abs_err tol"), a device probe that
 * exits 77 ("SKIP: no CUDA device") when there is no GPU, a seeded RNG,
 * bf16 conversions and checked cudaMalloc/cudaMemcpy wrappers that abort the
 * test program (only test programs exit here, never library code).
 */
#ifndef TM_GPUCHECK_H
#define TM_GPUCHECK_H

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_fails, g_checks;

static inline void gc_report(const char *name, double err, double tol)
{
    int ok = err <= tol && !isnan(err);
    g_checks++;
    if (!ok) g_fails++;
    printf("%s %s %.3e %.3e\n", ok ? "PASS" : "FAIL", name, err, tol);
    fflush(stdout);
}

#define GC_CUDA(call)                                                                          \
    do {                                                                                       \
        cudaError_t e_ = (call);                                                               \
        if (e_ != cudaSuccess) {                                                               \
            printf("FAIL %s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));  \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

static inline void gc_require_device(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        printf("SKIP: no CUDA device (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        exit(77);
    }
}

static inline int gc_finish(const char *prog)
{
    printf("%s: %d checks, %d failed\n", prog, g_checks, g_fails);
    return g_fails ? 1 : 0;
}

/* xorshift64*, uniform in [-1, 1) */
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static inline float gc_rand(void)
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    uint64_t r = g_rng * 2685821657736338717ull;
    return (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static inline uint16_t gc_f2bf(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float gc_bf2f(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline void *gc_dmalloc(size_t n)
{
    void *p = NULL;
    GC_CUDA(cudaMalloc(&p, n ? n : 1));
    GC_CUDA(cudaMemset(p, 0xFF, n ? n : 1)); /* poison: NaN for floats and bf16 */
    return p;
}

static inline void *gc_upload(const void *h, size_t n)
{
    void *d = gc_dmalloc(n);
    GC_CUDA(cudaMemcpy(d, h, n, cudaMemcpyHostToDevice));
    return d;
}

static inline void gc_download(void *h, const void *d, size_t n) { GC_CUDA(cudaMemcpy(h, d, n, cudaMemcpyDeviceToHost)); }

static inline void *gc_hmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        printf("FAIL out of host memory\n");
        exit(1);
    }
    return p;
}

#endif
