/* gemm.c — packed-panel GEMM with one fixed fma order per element (gemm.h).
 *
 * Microkernels compute an mr x (np * 16) tile of y: np panels (1 or 2) of
 * 16 output columns for mr consecutive rows of x, one fma per (row, column,
 * k) in ascending k into a register accumulator. Tile shapes only change
 * which elements are computed together, never how one element is computed,
 * so any mix of tiles (the tail rows of a batch, the odd last panel, a thread
 * split) gives the same bits. The ISA paths are compiled with function-level
 * target attributes and picked at run time, so the binary runs on any x86-64
 * (and the portable path anywhere).
 */
#include "backend/cpu/gemm.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TM_GEMM_X86 1
#endif

#define NR TM_GEMM_NR
#define TILE_LD (2 * NR) /* floats between rows of a tile */
#define MR_ALL 8         /* largest mr of any kernel */

typedef void (*kern_fn)(const float *x, size_t ldx, const void *pan, size_t ps, int32_t K, float *out);

/* ---- packing -------------------------------------------------------------- */

static size_t es_of(tm_gemm_dtype dt) { return dt == TM_GEMM_BF16 ? 2 : 4; }
static int32_t slot_of(tm_gemm_dtype dt, int32_t j) { return dt == TM_GEMM_F32 ? j : j < 8 ? 2 * j : 2 * (j - 8) + 1; }

size_t tm_gemm_packed_bytes(int32_t n, int32_t k, tm_gemm_dtype dt)
{
    if (n <= 0 || k <= 0) return 0;
    size_t panels = ((size_t)n + NR - 1) / NR, es = es_of(dt);
    if (panels > SIZE_MAX / NR / es / (size_t)k) return 0;
    return panels * NR * (size_t)k * es;
}

static size_t elem_index(const tm_gemm_w *w, int32_t n, int32_t k)
{
    return (((size_t)(n / NR) * (size_t)w->k + (size_t)k) * NR) + (size_t)slot_of(w->dtype, n % NR);
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void tm_gemm_w_init(tm_gemm_w *w, void *data, int32_t n, int32_t k, tm_gemm_dtype dt)
{
    w->data = data;
    w->n = n;
    w->k = k;
    w->dtype = dt;
    if (n <= 0 || k <= 0 || n % NR == 0) return;
    for (int32_t r = n; r < (n / NR + 1) * NR; r++)
        for (int32_t c = 0; c < k; c++) {
            size_t i = elem_index(w, r, c);
            if (dt == TM_GEMM_BF16) ((uint16_t *)data)[i] = 0;
            else ((float *)data)[i] = 0.0f;
        }
}

void tm_gemm_pack_row_f32(const tm_gemm_w *w, int32_t row, const float *src)
{
    size_t i0 = elem_index(w, row, 0);
    if (w->dtype == TM_GEMM_BF16) {
        uint16_t *d = (uint16_t *)w->data + i0;
        for (int32_t c = 0; c < w->k; c++) d[(size_t)c * NR] = f32_to_bf16(src[c]);
    } else {
        float *d = (float *)w->data + i0;
        for (int32_t c = 0; c < w->k; c++) d[(size_t)c * NR] = src[c];
    }
}

void tm_gemm_pack_row_bf16(const tm_gemm_w *w, int32_t row, const uint16_t *src)
{
    size_t i0 = elem_index(w, row, 0);
    if (w->dtype == TM_GEMM_BF16) {
        uint16_t *d = (uint16_t *)w->data + i0;
        for (int32_t c = 0; c < w->k; c++) d[(size_t)c * NR] = src[c];
    } else {
        float *d = (float *)w->data + i0;
        for (int32_t c = 0; c < w->k; c++) d[(size_t)c * NR] = bf16_to_f32(src[c]);
    }
}

void tm_gemm_unpack_row(const tm_gemm_w *w, int32_t row, float *dst)
{
    size_t i0 = elem_index(w, row, 0);
    if (w->dtype == TM_GEMM_BF16) {
        const uint16_t *s = (const uint16_t *)w->data + i0;
        for (int32_t c = 0; c < w->k; c++) dst[c] = bf16_to_f32(s[(size_t)c * NR]);
    } else {
        const float *s = (const float *)w->data + i0;
        for (int32_t c = 0; c < w->k; c++) dst[c] = s[(size_t)c * NR];
    }
}

/* ---- portable kernels ----------------------------------------------------- */

#define UNROLL _Pragma("GCC unroll 16")

static inline __attribute__((always_inline)) void body_c(const float *x, size_t ldx, const void *pan, int32_t K,
                                                          float *out, const int mr, const int bf)
{
    float acc[4][NR];
    for (int m = 0; m < mr; m++)
        for (int j = 0; j < NR; j++) acc[m][j] = 0.0f;
    for (int32_t k = 0; k < K; k++) {
        float w[NR];
        if (bf) {
            const uint16_t *p = (const uint16_t *)pan + (size_t)k * NR;
            for (int j = 0; j < NR; j++) w[j] = bf16_to_f32(p[j < 8 ? 2 * j : 2 * (j - 8) + 1]);
        } else {
            memcpy(w, (const float *)pan + (size_t)k * NR, sizeof w);
        }
        for (int m = 0; m < mr; m++) {
            float a = x[(size_t)m * ldx + (size_t)k];
            for (int j = 0; j < NR; j++) acc[m][j] = fmaf(a, w[j], acc[m][j]);
        }
    }
    for (int m = 0; m < mr; m++) memcpy(out + (size_t)m * TILE_LD, acc[m], sizeof acc[m]);
}

#define DEF_C(dt, bf, mr)                                                                                  \
    static void kc_##dt##_##mr(const float *x, size_t ldx, const void *pan, size_t ps, int32_t K, float *out) \
    {                                                                                                      \
        (void)ps;                                                                                          \
        body_c(x, ldx, pan, K, out, mr, bf);                                                               \
    }
DEF_C(f, 0, 1) DEF_C(f, 0, 2) DEF_C(f, 0, 3) DEF_C(f, 0, 4)
DEF_C(b, 1, 1) DEF_C(b, 1, 2) DEF_C(b, 1, 3) DEF_C(b, 1, 4)

/* ---- AVX2 + FMA kernels --------------------------------------------------- */
#ifdef TM_GEMM_X86
#define TGT_AVX2 __attribute__((target("avx2,fma")))

/* acc[m][q]: row m, 8 columns q*8.. (q < 2 np). bf16: one 32-byte load gives
 * columns 0..7 (low halves, shifted up) and 8..15 (high halves, masked). */
TGT_AVX2 static inline __attribute__((always_inline)) void body_avx2(const float *x, size_t ldx, const void *pan,
                                                                      size_t ps, int32_t K, float *out,
                                                                      const int mr, const int np, const int bf)
{
    __m256 acc[6][4];
    UNROLL for (int m = 0; m < mr; m++) UNROLL for (int q = 0; q < 2 * np; q++) acc[m][q] = _mm256_setzero_ps();
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    for (int32_t k = 0; k < K; k++) {
        __m256 w[4];
        UNROLL for (int p = 0; p < np; p++) {
            if (bf) {
                __m256i v = _mm256_loadu_si256((const __m256i *)((const uint16_t *)pan + (size_t)p * ps + (size_t)k * NR));
                w[2 * p] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
                w[2 * p + 1] = _mm256_castsi256_ps(_mm256_and_si256(v, hi));
            } else {
                const float *f = (const float *)pan + (size_t)p * ps + (size_t)k * NR;
                w[2 * p] = _mm256_loadu_ps(f);
                w[2 * p + 1] = _mm256_loadu_ps(f + 8);
            }
        }
        UNROLL for (int m = 0; m < mr; m++) {
            __m256 a = _mm256_broadcast_ss(x + (size_t)m * ldx + (size_t)k);
            UNROLL for (int q = 0; q < 2 * np; q++) acc[m][q] = _mm256_fmadd_ps(a, w[q], acc[m][q]);
        }
    }
    UNROLL for (int m = 0; m < mr; m++) UNROLL for (int q = 0; q < 2 * np; q++)
        _mm256_storeu_ps(out + (size_t)m * TILE_LD + q * 8, acc[m][q]);
}

#define DEF_A2(dt, bf, np, mr)                                                                             \
    TGT_AVX2 static void ka2_##dt##np##_##mr(const float *x, size_t ldx, const void *pan, size_t ps,      \
                                             int32_t K, float *out)                                       \
    {                                                                                                      \
        body_avx2(x, ldx, pan, ps, K, out, mr, np, bf);                                                    \
    }
DEF_A2(f, 0, 1, 1) DEF_A2(f, 0, 1, 2) DEF_A2(f, 0, 1, 3) DEF_A2(f, 0, 1, 4) DEF_A2(f, 0, 1, 5) DEF_A2(f, 0, 1, 6)
DEF_A2(b, 1, 1, 1) DEF_A2(b, 1, 1, 2) DEF_A2(b, 1, 1, 3) DEF_A2(b, 1, 1, 4) DEF_A2(b, 1, 1, 5) DEF_A2(b, 1, 1, 6)
DEF_A2(f, 0, 2, 1) DEF_A2(f, 0, 2, 2) DEF_A2(f, 0, 2, 3)
DEF_A2(b, 1, 2, 1) DEF_A2(b, 1, 2, 2) DEF_A2(b, 1, 2, 3)

/* ---- AVX-512F kernels ----------------------------------------------------- */
#define TGT_AVX512 __attribute__((target("avx512f,avx2,fma")))

/* acc[m][p]: row m, panel p's 16 columns in one zmm. */
TGT_AVX512 static inline __attribute__((always_inline)) void body_avx512(const float *x, size_t ldx, const void *pan,
                                                                          size_t ps, int32_t K, float *out,
                                                                          const int mr, const int np, const int bf)
{
    __m512 acc[MR_ALL][2];
    UNROLL for (int m = 0; m < mr; m++) UNROLL for (int p = 0; p < np; p++) acc[m][p] = _mm512_setzero_ps();
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    for (int32_t k = 0; k < K; k++) {
        __m512 w[2];
        UNROLL for (int p = 0; p < np; p++) {
            if (bf) {
                __m256i v = _mm256_loadu_si256((const __m256i *)((const uint16_t *)pan + (size_t)p * ps + (size_t)k * NR));
                __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_slli_epi32(v, 16)),
                                               _mm256_and_si256(v, hi), 1);
                w[p] = _mm512_castsi512_ps(z);
            } else {
                w[p] = _mm512_loadu_ps((const float *)pan + (size_t)p * ps + (size_t)k * NR);
            }
        }
        UNROLL for (int m = 0; m < mr; m++) {
            __m512 a = _mm512_set1_ps(x[(size_t)m * ldx + (size_t)k]);
            UNROLL for (int p = 0; p < np; p++) acc[m][p] = _mm512_fmadd_ps(a, w[p], acc[m][p]);
        }
    }
    UNROLL for (int m = 0; m < mr; m++) UNROLL for (int p = 0; p < np; p++)
        _mm512_storeu_ps(out + (size_t)m * TILE_LD + p * NR, acc[m][p]);
}

#define DEF_A5(dt, bf, np, mr)                                                                             \
    TGT_AVX512 static void ka5_##dt##np##_##mr(const float *x, size_t ldx, const void *pan, size_t ps,    \
                                               int32_t K, float *out)                                     \
    {                                                                                                      \
        body_avx512(x, ldx, pan, ps, K, out, mr, np, bf);                                                  \
    }
#define DEF_A5_ALL(dt, bf, np)                                                                             \
    DEF_A5(dt, bf, np, 1) DEF_A5(dt, bf, np, 2) DEF_A5(dt, bf, np, 3) DEF_A5(dt, bf, np, 4)                \
    DEF_A5(dt, bf, np, 5) DEF_A5(dt, bf, np, 6) DEF_A5(dt, bf, np, 7) DEF_A5(dt, bf, np, 8)
DEF_A5_ALL(f, 0, 1) DEF_A5_ALL(b, 1, 1) DEF_A5_ALL(f, 0, 2) DEF_A5_ALL(b, 1, 2)
#endif /* TM_GEMM_X86 */

/* ---- dispatch ------------------------------------------------------------- */

typedef struct isa_kernels {
    int mr_max[2];     /* largest mr with 1 and with 2 panels (0: no 2-panel kernels) */
    int np_rows;       /* use 2-panel kernels when T <= this (they hold 2x the accumulators) */
    kern_fn k[2][2][MR_ALL]; /* [dtype][np - 1][mr - 1] */
} isa_kernels;

static const isa_kernels k_portable = {
    .mr_max = {4, 0},
    .np_rows = 0,
    .k = {{{kc_f_1, kc_f_2, kc_f_3, kc_f_4}}, {{kc_b_1, kc_b_2, kc_b_3, kc_b_4}}},
};

#ifdef TM_GEMM_X86
static const isa_kernels k_avx2 = {
    .mr_max = {6, 3},
    .np_rows = 3, /* decode: 4 independent accumulator chains per row hide the fma latency */
    .k = {{{ka2_f1_1, ka2_f1_2, ka2_f1_3, ka2_f1_4, ka2_f1_5, ka2_f1_6}, {ka2_f2_1, ka2_f2_2, ka2_f2_3}},
          {{ka2_b1_1, ka2_b1_2, ka2_b1_3, ka2_b1_4, ka2_b1_5, ka2_b1_6}, {ka2_b2_1, ka2_b2_2, ka2_b2_3}}},
};

static const isa_kernels k_avx512 = {
    .mr_max = {8, 8},
    .np_rows = 1 << 30,
    .k = {{{ka5_f1_1, ka5_f1_2, ka5_f1_3, ka5_f1_4, ka5_f1_5, ka5_f1_6, ka5_f1_7, ka5_f1_8},
           {ka5_f2_1, ka5_f2_2, ka5_f2_3, ka5_f2_4, ka5_f2_5, ka5_f2_6, ka5_f2_7, ka5_f2_8}},
          {{ka5_b1_1, ka5_b1_2, ka5_b1_3, ka5_b1_4, ka5_b1_5, ka5_b1_6, ka5_b1_7, ka5_b1_8},
           {ka5_b2_1, ka5_b2_2, ka5_b2_3, ka5_b2_4, ka5_b2_5, ka5_b2_6, ka5_b2_7, ka5_b2_8}}},
};
#endif

int tm_gemm_isa_supported(tm_gemm_isa isa)
{
    switch (isa) {
    case TM_GEMM_ISA_AUTO:
    case TM_GEMM_ISA_PORTABLE: return 1;
#ifdef TM_GEMM_X86
    case TM_GEMM_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case TM_GEMM_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    default: return 0;
    }
}

tm_gemm_isa tm_gemm_isa_best(void)
{
    if (tm_gemm_isa_supported(TM_GEMM_ISA_AVX512)) return TM_GEMM_ISA_AVX512;
    if (tm_gemm_isa_supported(TM_GEMM_ISA_AVX2)) return TM_GEMM_ISA_AVX2;
    return TM_GEMM_ISA_PORTABLE;
}

const char *tm_gemm_isa_name(tm_gemm_isa isa)
{
    static const char *const names[TM_GEMM_ISA_COUNT] = {"auto", "portable", "avx2", "avx512"};
    return isa >= 0 && isa < TM_GEMM_ISA_COUNT ? names[isa] : "?";
}

static const isa_kernels *kernels_of(tm_gemm_isa isa)
{
    if (isa == TM_GEMM_ISA_AUTO || !tm_gemm_isa_supported(isa)) isa = tm_gemm_isa_best();
#ifdef TM_GEMM_X86
    if (isa == TM_GEMM_ISA_AVX512) return &k_avx512;
    if (isa == TM_GEMM_ISA_AVX2) return &k_avx2;
#endif
    return &k_portable;
}

typedef struct gemm_ctx {
    const isa_kernels *ks;
    const float *x, *bias;
    const tm_gemm_w *w;
    float *y;
    int32_t T;
} gemm_ctx;

/* Panels [p0, p1): for each group of np panels, every row tile over full K. */
static void gemm_task(void *arg, int64_t p0, int64_t p1, int thread)
{
    const gemm_ctx *c = arg;
    const tm_gemm_w *w = c->w;
    int32_t K = w->k, N = w->n, T = c->T;
    size_t ps = (size_t)K * NR, es = es_of(w->dtype);
    int np_main = c->ks->mr_max[1] && T <= c->ks->np_rows ? 2 : 1;
    float tile[MR_ALL * TILE_LD];
    for (int64_t p = p0; p < p1;) {
        int np = np_main == 2 && p + 1 < p1 ? 2 : 1, mr_max = c->ks->mr_max[np - 1];
        const void *pan = (const char *)w->data + (size_t)p * ps * es;
        for (int32_t t0 = 0; t0 < T;) {
            int mr = T - t0 < mr_max ? T - t0 : mr_max;
            c->ks->k[w->dtype][np - 1][mr - 1](c->x + (size_t)t0 * K, (size_t)K, pan, ps, K, tile);
            int64_t n0 = p * NR, n1 = n0 + (int64_t)np * NR < N ? n0 + (int64_t)np * NR : N;
            for (int m = 0; m < mr; m++) {
                float *yr = c->y + (size_t)(t0 + m) * N;
                const float *tr = tile + (size_t)m * TILE_LD;
                if (c->bias)
                    for (int64_t n = n0; n < n1; n++) yr[n] = tr[n - n0] + c->bias[n];
                else
                    for (int64_t n = n0; n < n1; n++) yr[n] = tr[n - n0];
            }
            t0 += mr;
        }
        p += np;
    }
}

void tm_gemm(tm_cpu_pool *p, tm_gemm_isa isa, const float *x, int32_t T, const tm_gemm_w *w, const float *bias,
             float *y)
{
    if (T <= 0 || !w || w->n <= 0 || w->k <= 0) return;
    gemm_ctx c = {.ks = kernels_of(isa), .x = x, .bias = bias, .w = w, .y = y, .T = T};
    int64_t panels = ((int64_t)w->n + NR - 1) / NR;
    /* Tiny products are not worth waking the pool (the split never changes results). */
    if ((int64_t)T * w->n * w->k < (1 << 16)) p = NULL;
    tm_cpu_pool_run(p, panels, gemm_task, &c);
}
