/* cpu_peak.c — FMA-throughput and read-bandwidth calibration (cpu_peak.h). */
#include "backend/cpu/cpu_peak.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/gemm.h"
#include "util/timeutil.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PEAK_X86 1
#endif

#define CHAINS 12 /* independent accumulators: > latency x pipes on current cores */
#define UNROLL _Pragma("GCC unroll 16") /* keeps the accumulators in registers */

#define MAXT 256

typedef struct fma_ctx {
    tm_gemm_isa isa;
    int64_t iters;
    float sink[MAXT];  /* one slot per thread, so the loops are not optimised away */
    double cpu_s[MAXT]; /* each thread's CPU time for its share */
} fma_ctx;

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#ifdef PEAK_X86
__attribute__((target("avx512f"))) static float fma_avx512(int64_t n)
{
    __m512 a[CHAINS], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    UNROLL for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
    for (int64_t k = 0; k < n; k++)
        UNROLL for (int i = 0; i < CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
    float s = 0;
    UNROLL for (int i = 0; i < CHAINS; i++) s += _mm512_reduce_add_ps(a[i]);
    return s;
}

__attribute__((target("avx2,fma"))) static float fma_avx2(int64_t n)
{
    __m256 a[CHAINS], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    UNROLL for (int i = 0; i < CHAINS; i++) a[i] = _mm256_set1_ps((float)i);
    for (int64_t k = 0; k < n; k++)
        UNROLL for (int i = 0; i < CHAINS; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    float t[8], s = 0;
    UNROLL for (int i = 0; i < CHAINS; i++) {
        _mm256_storeu_ps(t, a[i]);
        for (int j = 0; j < 8; j++) s += t[j];
    }
    return s;
}
#endif

/* Lanes of one vector in the loop of isa (the portable loop: 4 floats, mul + add). */
static int lanes_of(tm_gemm_isa isa) { return isa == TM_GEMM_ISA_AVX512 ? 16 : isa == TM_GEMM_ISA_AVX2 ? 8 : 4; }

static float fma_portable(int64_t n)
{
    float a[CHAINS][4];
    for (int i = 0; i < CHAINS; i++)
        for (int j = 0; j < 4; j++) a[i][j] = (float)(i + j);
    for (int64_t k = 0; k < n; k++)
        UNROLL for (int i = 0; i < CHAINS; i++)
            UNROLL for (int j = 0; j < 4; j++) a[i][j] = a[i][j] * 0.999999f + 1e-7f;
    float s = 0;
    for (int i = 0; i < CHAINS; i++)
        for (int j = 0; j < 4; j++) s += a[i][j];
    return s;
}

static void fma_task(void *arg, int64_t b, int64_t e, int thread)
{
    fma_ctx *c = arg;
    float s = 0;
    double t0 = thread_cpu_s();
    for (int64_t i = b; i < e; i++) {
#ifdef PEAK_X86
        if (c->isa == TM_GEMM_ISA_AVX512) s += fma_avx512(c->iters);
        else if (c->isa == TM_GEMM_ISA_AVX2) s += fma_avx2(c->iters);
        else
#endif
            s += fma_portable(c->iters);
    }
    c->cpu_s[thread & (MAXT - 1)] = thread_cpu_s() - t0;
    c->sink[thread & (MAXT - 1)] += s;
}

typedef struct bw_ctx {
    const float *buf;
    size_t n_chunks, chunk;
    int avx2;
    float sink[MAXT];
    double cpu_s[MAXT], bytes[MAXT];
} bw_ctx;

#ifdef PEAK_X86
__attribute__((target("avx2"))) static float sum_avx2(const float *p, size_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
    }
    float t[8], s = 0;
    _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (int j = 0; j < 8; j++) s += t[j];
    return s;
}
#endif

static float sum_portable(const float *p, size_t n)
{
    float acc[16] = {0}, s = 0;
    for (size_t i = 0; i < n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += p[i + (size_t)j];
    for (int j = 0; j < 16; j++) s += acc[j];
    return s;
}

static void bw_task(void *arg, int64_t b, int64_t e, int thread)
{
    bw_ctx *c = arg;
    float s = 0;
    double t0 = thread_cpu_s();
    for (int64_t ch = b; ch < e; ch++) {
        const float *p = c->buf + (size_t)ch * c->chunk;
#ifdef PEAK_X86
        if (c->avx2) s += sum_avx2(p, c->chunk);
        else
#endif
            s += sum_portable(p, c->chunk);
    }
    c->cpu_s[thread & (MAXT - 1)] = thread_cpu_s() - t0;
    c->bytes[thread & (MAXT - 1)] = (double)(e - b) * (double)c->chunk * sizeof(float);
    c->sink[thread & (MAXT - 1)] += s;
}

tm_status tm_cpu_peak_measure(tm_cpu_pool *p, int buf_mb, tm_cpu_peak *out, tm_err *err)
{
    memset(out, 0, sizeof *out);
    if (buf_mb < 1 || buf_mb > 65536) return tm_errf(err, TM_ERR_USAGE, "cpu peak: buffer of %d MiB", buf_mb);
    int nt = tm_cpu_pool_threads(p);
    if (nt > MAXT) return tm_errf(err, TM_ERR_USAGE, "cpu peak: %d threads > %d", nt, MAXT);
    fma_ctx fc = {.isa = tm_gemm_isa_best(), .iters = 4000000};
    out->isa = tm_gemm_isa_name(fc.isa);
    for (int r = 0; r < 3; r++) {
        uint64_t t0 = tm_now_mono_ns();
        tm_cpu_pool_run(p, nt, fma_task, &fc);
        double s = (double)(tm_now_mono_ns() - t0) / 1e9;
        double per = (double)fc.iters * CHAINS * lanes_of(fc.isa) * 2.0 / 1e9, g = nt * per / (s > 0 ? s : 1e-9), gc = 0;
        for (int t = 0; t < nt; t++) gc += per / (fc.cpu_s[t] > 0 ? fc.cpu_s[t] : 1e-9);
        if (g > out->gflops_wall) out->gflops_wall = g;
        if (gc > out->gflops) out->gflops = gc;
    }
    size_t bytes = (size_t)buf_mb << 20, chunk = 1 << 16; /* floats per work item (256 KiB) */
    float *buf = malloc(bytes);
    if (!buf) return tm_errf(err, TM_ERR_NOMEM, "cpu peak: out of memory for %d MiB", buf_mb);
    for (size_t i = 0; i < bytes / sizeof(float); i++) buf[i] = (float)(i & 7);
    bw_ctx bc = {.buf = buf, .chunk = chunk, .n_chunks = bytes / sizeof(float) / chunk,
                 .avx2 = tm_gemm_isa_supported(TM_GEMM_ISA_AVX2)};
    for (int r = 0; r < 4; r++) {
        uint64_t t0 = tm_now_mono_ns();
        tm_cpu_pool_run(p, (int64_t)bc.n_chunks, bw_task, &bc);
        double s = (double)(tm_now_mono_ns() - t0) / 1e9;
        double g = (double)(bc.n_chunks * chunk * sizeof(float)) / (s > 0 ? s : 1e-9) / 1e9, gc = 0;
        for (int t = 0; t < nt; t++) gc += bc.bytes[t] / 1e9 / (bc.cpu_s[t] > 0 ? bc.cpu_s[t] : 1e-9);
        if (r == 0) continue; /* run 0 warms the TLB */
        if (g > out->gbps_wall) out->gbps_wall = g;
        if (gc > out->gbps) out->gbps = gc;
    }
    free(buf);
    return TM_OK;
}
