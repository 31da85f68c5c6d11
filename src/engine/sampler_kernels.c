/* sampler_kernels.c — portable and AVX2+FMA versions of the sampler's
 * vocabulary passes (sampler_kernels.h); the exp is tm_sampler_exp(). */
#include "engine/sampler_kernels.h"
#include "engine/sampler.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define TM_SMPK_X86 1
#include <immintrin.h>
#endif

/* tm_sampler_exp constants (Cephes expf: Cody-Waite split of ln 2, a
 * degree-5 polynomial in Horner/FMA form). */
#define SX_LOG2E 1.44269504088896341f
#define SX_LN2_HI 0.693359375f
#define SX_LN2_LO -2.12194440e-4f
#define SX_P0 1.9875691500E-4f
#define SX_P1 1.3981999507E-3f
#define SX_P2 8.3334519073E-3f
#define SX_P3 4.1665795894E-2f
#define SX_P4 1.6666665459E-1f
#define SX_P5 5.0000001201E-1f
#define SX_MIN -87.0f /* below: 0 (2^k stays a normal float: k >= -126) */

float tm_sampler_exp(float x)
{
    if (!(x >= SX_MIN)) return 0.0f; /* also -inf and NaN */
    if (x > 0.0f) x = 0.0f;          /* outside the domain: the kernels never pass it */
    float t = x * SX_LOG2E;
    float k = rintf(t);
    float r = fmaf(k, -SX_LN2_HI, x);
    r = fmaf(k, -SX_LN2_LO, r);
    float p = SX_P0;
    p = fmaf(p, r, SX_P1);
    p = fmaf(p, r, SX_P2);
    p = fmaf(p, r, SX_P3);
    p = fmaf(p, r, SX_P4);
    p = fmaf(p, r, SX_P5);
    float r2 = r * r;
    p = fmaf(p, r2, r);
    p = p + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)k + 127) << 23; /* 2^k, k in [-126, 0] */
    float sc;
    memcpy(&sc, &bits, sizeof sc);
    return p * sc;
}

static inline double lanes_total(const double l[8])
{
    return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

static inline float clean(float v) { return v != v ? -INFINITY : v; }

void tm_smpk_lut_init(tm_smpk_lut *t)
{
    for (uint32_t m = 0; m < 256; m++) {
        uint32_t c = 0;
        for (uint32_t j = 0; j < 8; j++)
            if (m & (1u << j)) t->perm[m][c++] = j;
        while (c < 8) t->perm[m][c++] = 0;
    }
}

/* ---- portable versions -------------------------------------------------------- */

static float max_c(const float *x, int32_t n)
{
    float m = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (x[i] > m) m = x[i];
    return m;
}

static double exp_block_c(const float *x, float invT, float zmax, float *z, float *w, int32_t lo, int32_t hi,
                          float near, double *near_sum)
{
    double l[8] = {0};
    float nl[8] = {0};
    int32_t i = lo;
    for (; i + 8 <= hi; i += 8)
        for (int j = 0; j < 8; j++) {
            float v = clean(x[i + j]) * invT;
            if (z) z[i + j] = v;
            float d = v - zmax;
            float e = tm_sampler_exp(d);
            if (w) w[i + j] = e;
            l[j] += (double)e;
            if (near_sum) nl[j] += d >= near ? e : 0.0f;
        }
    double s = lanes_total(l);
    for (; i < hi; i++) {
        float v = clean(x[i]) * invT;
        if (z) z[i] = v;
        float d = v - zmax;
        float e = tm_sampler_exp(d);
        if (w) w[i] = e;
        s += (double)e;
        if (near_sum && d >= near) *near_sum += (double)e;
    }
    if (near_sum)
        for (int j = 0; j < 8; j++) *near_sum += (double)nl[j];
    return s;
}

static inline int kept_c(float z, float w, int32_t i, int has_cut, float zc, int32_t idc, float wmin)
{
    if (has_cut && !(z > zc || (z == zc && i <= idc))) return 0;
    return w > 0.0f && w >= wmin;
}

static double mask_block_c(const float *z, const float *w, int32_t lo, int32_t hi, int has_cut, float zc,
                           int32_t idc, float wmin, float *kw)
{
    double l[8] = {0};
    int32_t i = lo;
    for (; i + 8 <= hi; i += 8)
        for (int j = 0; j < 8; j++) {
            float v = kept_c(z[i + j], w[i + j], i + j, has_cut, zc, idc, wmin) ? w[i + j] : 0.0f;
            kw[i + j] = v;
            l[j] += (double)v;
        }
    double s = lanes_total(l);
    for (; i < hi; i++) {
        float v = kept_c(z[i], w[i], i, has_cut, zc, idc, wmin) ? w[i] : 0.0f;
        kw[i] = v;
        s += (double)v;
    }
    return s;
}

static void scale_c(const float *l, float invT, float *z, int32_t n)
{
    for (int32_t i = 0; i < n; i++) z[i] = clean(l[i]) * invT;
}

static int32_t first_eq_c(const float *x, int32_t n, float v)
{
    for (int32_t i = 0; i < n; i++)
        if (x[i] == v) return i;
    return -1;
}

static int32_t gather_ge_c(const float *z, int32_t n, float thr, int32_t *ids)
{
    int32_t c = 0;
    for (int32_t i = 0; i < n; i++)
        if (z[i] >= thr) ids[c++] = i;
    return c;
}

static int32_t gather_zw_c(const float *z, const float *w, int32_t n, float thr, int32_t *ids, float *cz,
                           float *cw)
{
    int32_t c = 0;
    for (int32_t i = 0; i < n; i++)
        if (z[i] >= thr) {
            ids[c] = i;
            cz[c] = z[i];
            cw[c++] = w[i];
        }
    return c;
}

static int32_t count_ge_c(const float *z, int32_t n, float thr)
{
    int32_t c = 0;
    for (int32_t i = 0; i < n; i++) c += z[i] >= thr;
    return c;
}

static int32_t next_gt_c(const float *x, int32_t from, int32_t n, float thr)
{
    for (int32_t i = from; i < n; i++)
        if (x[i] > thr) return i;
    return n;
}

/* ---- AVX2 + FMA versions ------------------------------------------------------ */

#ifdef TM_SMPK_X86
#define AVX __attribute__((target("avx2,fma")))

/* tm_sampler_exp for 8 lanes, x <= 0 (or -inf / NaN) */
AVX static inline __m256 exp8(__m256 x)
{
    const __m256 ok = _mm256_cmp_ps(x, _mm256_set1_ps(SX_MIN), _CMP_GE_OQ);
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(SX_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(k, _mm256_set1_ps(-SX_LN2_HI), x);
    r = _mm256_fmadd_ps(k, _mm256_set1_ps(-SX_LN2_LO), r);
    __m256 p = _mm256_set1_ps(SX_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SX_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SX_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SX_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SX_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SX_P5));
    __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256i ki = _mm256_cvtps_epi32(k); /* lanes outside ok are masked below */
    __m256 sc = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(ki, _mm256_set1_epi32(127)), 23));
    return _mm256_and_ps(_mm256_mul_ps(p, sc), ok);
}

AVX static inline __m256 clean8(__m256 v)
{
    return _mm256_blendv_ps(v, _mm256_set1_ps(-INFINITY), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

AVX static inline double vtotal(__m256d a, __m256d b)
{
    __m256d c = _mm256_add_pd(a, b); /* (l0+l4, l1+l5, l2+l6, l3+l7) */
    double t[4];
    _mm256_storeu_pd(t, c);
    return (t[0] + t[1]) + (t[2] + t[3]);
}

AVX static float max_avx(const float *x, int32_t n)
{
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) { /* NaN x: max_ps keeps m */
        m0 = _mm256_max_ps(_mm256_loadu_ps(x + i), m0);
        m1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), m1);
    }
    float t[16];
    _mm256_storeu_ps(t, m0);
    _mm256_storeu_ps(t + 8, m1);
    float r = -INFINITY;
    for (int j = 0; j < 16; j++) r = t[j] > r ? t[j] : r;
    for (; i < n; i++)
        if (x[i] > r) r = x[i];
    return r;
}

AVX static void scale_avx(const float *l, float invT, float *z, int32_t n)
{
    const __m256 it = _mm256_set1_ps(invT);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(z + i, _mm256_mul_ps(clean8(_mm256_loadu_ps(l + i)), it));
    for (; i < n; i++) z[i] = clean(l[i]) * invT;
}

AVX static int32_t first_eq_avx(const float *x, int32_t n, float v)
{
    __m256 vv = _mm256_set1_ps(v);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        int mk = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), vv, _CMP_EQ_OQ));
        if (mk) return i + __builtin_ctz((unsigned)mk);
    }
    for (; i < n; i++)
        if (x[i] == v) return i;
    return -1;
}

/* One block; the flags are constants at each call site, so each
 * combination compiles to its own loop. */
AVX static inline __attribute__((always_inline)) double
exp_block_avx_t(const float *x, float invT, float zmax, float *z, float *w, int32_t lo, int32_t hi, float near,
                double *near_sum, const int store_z, const int do_near)
{
    __m256d a = _mm256_setzero_pd(), b = _mm256_setzero_pd();
    __m256 nacc = _mm256_setzero_ps();
    const __m256 zm = _mm256_set1_ps(zmax), it = _mm256_set1_ps(invT), nr = _mm256_set1_ps(near);
    int32_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256 v = _mm256_mul_ps(clean8(_mm256_loadu_ps(x + i)), it);
        if (store_z) _mm256_storeu_ps(z + i, v);
        __m256 d = _mm256_sub_ps(v, zm);
        __m256 e = exp8(d);
        if (w) _mm256_storeu_ps(w + i, e);
        a = _mm256_add_pd(a, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        b = _mm256_add_pd(b, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
        if (do_near) nacc = _mm256_add_ps(nacc, _mm256_and_ps(e, _mm256_cmp_ps(d, nr, _CMP_GE_OQ)));
    }
    double s = vtotal(a, b);
    for (; i < hi; i++) {
        float v = clean(x[i]) * invT;
        if (store_z) z[i] = v;
        float d = v - zmax;
        float e = tm_sampler_exp(d);
        if (w) w[i] = e;
        s += (double)e;
        if (do_near && d >= near) *near_sum += (double)e;
    }
    if (do_near) {
        float nl[8];
        _mm256_storeu_ps(nl, nacc);
        for (int j = 0; j < 8; j++) *near_sum += (double)nl[j];
    }
    return s;
}

AVX static double exp_block_avx(const float *x, float invT, float zmax, float *z, float *w, int32_t lo, int32_t hi,
                                float near, double *near_sum)
{
    if (z && near_sum) return exp_block_avx_t(x, invT, zmax, z, w, lo, hi, near, near_sum, 1, 1);
    if (z) return exp_block_avx_t(x, invT, zmax, z, w, lo, hi, near, near_sum, 1, 0);
    if (near_sum) return exp_block_avx_t(x, invT, zmax, z, w, lo, hi, near, near_sum, 0, 1);
    return exp_block_avx_t(x, invT, zmax, z, w, lo, hi, near, near_sum, 0, 0);
}

AVX static int32_t gather_ge_avx(const float *z, int32_t n, float thr, int32_t *ids, const tm_smpk_lut *lut)
{
    const __m256 t = _mm256_set1_ps(thr);
    const __m256i step = _mm256_set1_epi32(8);
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int32_t i = 0, c = 0;
    /* ids gets up to 7 garbage entries past c: stop 8 early so they stay < n */
    for (; i + 16 <= n; i += 8, idx = _mm256_add_epi32(idx, step)) {
        unsigned mk = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(z + i), t, _CMP_GE_OQ));
        __m256i perm = _mm256_loadu_si256((const __m256i *)lut->perm[mk]);
        _mm256_storeu_si256((__m256i *)(ids + c), _mm256_permutevar8x32_epi32(idx, perm));
        c += __builtin_popcount(mk);
    }
    for (; i < n; i++)
        if (z[i] >= thr) ids[c++] = i;
    return c;
}

AVX static int32_t gather_zw_avx(const float *z, const float *w, int32_t n, float thr, int32_t *ids, float *cz,
                                 float *cw, const tm_smpk_lut *lut)
{
    const __m256 t = _mm256_set1_ps(thr);
    const __m256i step = _mm256_set1_epi32(8);
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int32_t i = 0, c = 0;
    for (; i + 16 <= n; i += 8, idx = _mm256_add_epi32(idx, step)) { /* as gather_ge_avx */
        __m256 zv = _mm256_loadu_ps(z + i);
        unsigned mk = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(zv, t, _CMP_GE_OQ));
        __m256i perm = _mm256_loadu_si256((const __m256i *)lut->perm[mk]);
        _mm256_storeu_si256((__m256i *)(ids + c), _mm256_permutevar8x32_epi32(idx, perm));
        _mm256_storeu_ps(cz + c, _mm256_permutevar8x32_ps(zv, perm));
        _mm256_storeu_ps(cw + c, _mm256_permutevar8x32_ps(_mm256_loadu_ps(w + i), perm));
        c += __builtin_popcount(mk);
    }
    for (; i < n; i++)
        if (z[i] >= thr) {
            ids[c] = i;
            cz[c] = z[i];
            cw[c++] = w[i];
        }
    return c;
}

AVX static int32_t count_ge_avx(const float *z, int32_t n, float thr)
{
    __m256 t = _mm256_set1_ps(thr);
    __m256i acc = _mm256_setzero_si256();
    int32_t i = 0, c = 0;
    for (; i + 8 <= n; i += 8) /* a true compare is -1 in every bit */
        acc = _mm256_sub_epi32(acc, _mm256_castps_si256(_mm256_cmp_ps(_mm256_loadu_ps(z + i), t, _CMP_GE_OQ)));
    int32_t l[8];
    _mm256_storeu_si256((__m256i *)l, acc);
    for (int j = 0; j < 8; j++) c += l[j];
    for (; i < n; i++) c += z[i] >= thr;
    return c;
}

AVX static int32_t next_gt_avx(const float *x, int32_t from, int32_t n, float thr)
{
    __m256 t = _mm256_set1_ps(thr);
    int32_t i = from;
    for (; i + 8 <= n; i += 8) {
        int mk = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), t, _CMP_GT_OQ));
        if (mk) return i + __builtin_ctz((unsigned)mk);
    }
    for (; i < n; i++)
        if (x[i] > thr) return i;
    return n;
}

AVX static double mask_block_avx(const float *z, const float *w, int32_t lo, int32_t hi, int has_cut, float zc,
                                 int32_t idc, float wmin, float *kw)
{
    __m256d a = _mm256_setzero_pd(), b = _mm256_setzero_pd();
    const __m256 vzc = _mm256_set1_ps(zc), vwmin = _mm256_set1_ps(wmin), zero = _mm256_setzero_ps();
    const __m256i lim = _mm256_set1_epi32(idc + 1), step = _mm256_set1_epi32(8);
    __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(lo), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    int32_t i = lo;
    for (; i + 8 <= hi; i += 8, idx = _mm256_add_epi32(idx, step)) {
        __m256 wv = _mm256_loadu_ps(w + i);
        __m256 keep = _mm256_and_ps(_mm256_cmp_ps(wv, zero, _CMP_GT_OQ), _mm256_cmp_ps(wv, vwmin, _CMP_GE_OQ));
        if (has_cut) {
            __m256 zv = _mm256_loadu_ps(z + i);
            __m256 le = _mm256_castsi256_ps(_mm256_cmpgt_epi32(lim, idx));
            __m256 cut = _mm256_or_ps(_mm256_cmp_ps(zv, vzc, _CMP_GT_OQ),
                                      _mm256_and_ps(_mm256_cmp_ps(zv, vzc, _CMP_EQ_OQ), le));
            keep = _mm256_and_ps(keep, cut);
        }
        __m256 v = _mm256_and_ps(wv, keep);
        _mm256_storeu_ps(kw + i, v);
        a = _mm256_add_pd(a, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        b = _mm256_add_pd(b, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    double s = vtotal(a, b);
    for (; i < hi; i++) {
        float v = kept_c(z[i], w[i], i, has_cut, zc, idc, wmin) ? w[i] : 0.0f;
        kw[i] = v;
        s += (double)v;
    }
    return s;
}
#endif /* TM_SMPK_X86 */

/* ---- dispatch ----------------------------------------------------------------- */

int tm_smpk_simd(void)
{
#ifdef TM_SMPK_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

#ifdef TM_SMPK_X86
#define PICK(simd, avx_call, c_call) ((simd) ? (avx_call) : (c_call))
#else
#define PICK(simd, avx_call, c_call) ((void)(simd), (c_call))
#endif

float tm_smpk_max(const float *x, int32_t n, int simd) { return PICK(simd, max_avx(x, n), max_c(x, n)); }

void tm_smpk_scale(const float *l, float invT, float *z, int32_t n, int simd)
{
#ifdef TM_SMPK_X86
    if (simd) {
        scale_avx(l, invT, z, n);
        return;
    }
#endif
    (void)simd;
    scale_c(l, invT, z, n);
}

int32_t tm_smpk_first_eq(const float *x, int32_t n, float v, int simd)
{
    return PICK(simd, first_eq_avx(x, n, v), first_eq_c(x, n, v));
}

double tm_smpk_exp(const float *x, float invT, float zmax, float *z, float *w, double *bsum, int32_t n,
                   float near, double *near_sum, int simd)
{
    double total = 0.0, ns = 0.0, *nsp = near_sum ? &ns : NULL;
    for (int32_t lo = 0, b = 0; lo < n; lo += TM_SMPK_BLOCK, b++) {
        int32_t hi = n - lo > TM_SMPK_BLOCK ? lo + TM_SMPK_BLOCK : n;
        double s = PICK(simd, exp_block_avx(x, invT, zmax, z, w, lo, hi, near, nsp),
                        exp_block_c(x, invT, zmax, z, w, lo, hi, near, nsp));
        if (bsum) bsum[b] = s;
        total += s;
    }
    if (near_sum) *near_sum = ns;
    return total;
}

int32_t tm_smpk_gather_ge(const float *z, int32_t n, float thr, int32_t *ids, const tm_smpk_lut *lut, int simd)
{
    return PICK(simd, gather_ge_avx(z, n, thr, ids, lut), gather_ge_c(z, n, thr, ids));
}

int32_t tm_smpk_gather_ge_zw(const float *z, const float *w, int32_t n, float thr, int32_t *ids, float *cz,
                             float *cw, const tm_smpk_lut *lut, int simd)
{
    return PICK(simd, gather_zw_avx(z, w, n, thr, ids, cz, cw, lut), gather_zw_c(z, w, n, thr, ids, cz, cw));
}

int32_t tm_smpk_count_ge(const float *z, int32_t n, float thr, int simd)
{
    return PICK(simd, count_ge_avx(z, n, thr), count_ge_c(z, n, thr));
}

int32_t tm_smpk_next_gt(const float *x, int32_t from, int32_t n, float thr, int simd)
{
    return PICK(simd, next_gt_avx(x, from, n, thr), next_gt_c(x, from, n, thr));
}

void tm_smpk_mask_blocks(const float *z, const float *w, int32_t n, int has_cut, float zc, int32_t idc,
                         float wmin, float *kw, double *bsum, int simd)
{
    for (int32_t lo = 0, b = 0; lo < n; lo += TM_SMPK_BLOCK, b++) {
        int32_t hi = n - lo > TM_SMPK_BLOCK ? lo + TM_SMPK_BLOCK : n;
        bsum[b] = PICK(simd, mask_block_avx(z, w, lo, hi, has_cut, zc, idc, wmin, kw),
                       mask_block_c(z, w, lo, hi, has_cut, zc, idc, wmin, kw));
    }
}
