/* sampler_kernels.h — the sampler's passes over a vocabulary row (internal to
 * sampler.c): scale, max, exp + sum, threshold gathers, masked block sums;
 * and its selections over candidate lists (sampler_select.c).
 *
 * Each kernel has a portable C version and, on x86-64 CPUs with AVX2 and FMA
 * (checked at run time by tm_smpk_simd()), an AVX2 version. Both give the
 * same bits: the exp is tm_sampler_exp() (sampler.h) op for op, and every
 * double sum uses the one fixed order below. `simd` selects the version.
 */
#ifndef TM_SAMPLER_KERNELS_H
#define TM_SAMPLER_KERNELS_H

#include <stdint.h>

/* 1 when the AVX2 + FMA kernels can run on this CPU. */
int tm_smpk_simd(void);

/* The order of every vocabulary sum: blocks of TM_SMPK_BLOCK ids; a block
 * sums in double over 8 lanes (lane = id mod 8, in id order), combined as
 * ((l0+l4)+(l1+l5))+((l2+l6)+(l3+l7)), then its ids past the last multiple
 * of 8 in order; the total adds the block sums in block order (from 0.0). */
#define TM_SMPK_BLOCK 1024
static inline int32_t tm_smpk_blocks(int32_t n) { return (n + TM_SMPK_BLOCK - 1) / TM_SMPK_BLOCK; }

/* Compress tables for the AVX2 gathers (8 KiB), owned by the caller. */
typedef struct tm_smpk_lut {
    uint32_t perm[256][8];
} tm_smpk_lut;
void tm_smpk_lut_init(tm_smpk_lut *t);

/* max of x[0..n) ignoring NaN (-inf when all are NaN/-inf or n == 0). */
float tm_smpk_max(const float *x, int32_t n, int simd);

/* z[i] = (NaN ? -inf : l[i]) * invT for i < n. */
void tm_smpk_scale(const float *l, float invT, float *z, int32_t n, int simd);

/* First i with x[i] == v, or -1. */
int32_t tm_smpk_first_eq(const float *x, int32_t n, float v, int simd);

/* For i < n: v = (NaN ? -inf : x[i]) * invT; z[i] = v (z may be NULL);
 * e = tm_sampler_exp(v - zmax); w[i] = e (w may be NULL); bsum[b] = block
 * sums of e (may be NULL). Returns the total of e (order above). Needs
 * v - zmax <= 0 for every i. *near_sum (may be NULL) gets the mass of the
 * e with v - zmax >= near: float lanes per block, then added in double —
 * an estimate for the top_p threshold, the same bits on both paths. */
double tm_smpk_exp(const float *x, float invT, float zmax, float *z, float *w, double *bsum, int32_t n,
                   float near, double *near_sum, int simd);

/* Ids i with z[i] >= thr, ascending, into ids; returns how many. */
int32_t tm_smpk_gather_ge(const float *z, int32_t n, float thr, int32_t *ids, const tm_smpk_lut *lut,
                          int simd);

/* The same, also copying z[i] and w[i] of each gathered id to cz / cw. */
int32_t tm_smpk_gather_ge_zw(const float *z, const float *w, int32_t n, float thr, int32_t *ids, float *cz,
                             float *cw, const tm_smpk_lut *lut, int simd);

/* How many z[i] >= thr. */
int32_t tm_smpk_count_ge(const float *z, int32_t n, float thr, int simd);

/* The first i in [from, n) with x[i] > thr (NaN never is), or n. */
int32_t tm_smpk_next_gt(const float *x, int32_t from, int32_t n, float thr, int simd);

/* kw[i] = w[i] when token i is kept, else 0: kept = rank(z[i], i) >= (zc, idc)
 * (when has_cut), w[i] > 0 and w[i] >= wmin; bsum[b] = block sums of kw. */
void tm_smpk_mask_blocks(const float *z, const float *w, int32_t n, int has_cut, float zc, int32_t idc,
                         float wmin, float *kw, double *bsum, int simd);

/* ---- selection over candidates (sampler_select.c) -------------------------- */

typedef struct cand {
    float z;
    int32_t id;
    float w; /* its weight (top_p) */
} cand;

#define TM_SMP_BUCKETS  1024 /* histogram buckets of top_p's narrowing */
#define TM_SMP_SORT_MAX 64   /* boundary regions up to this size are sorted */

/* Rank order: z desc, then id asc. */
static inline int tm_smp_better(float za, int32_t ia, float zb, int32_t ib)
{
    return za > zb || (za == zb && ia < ib);
}

/* Min-heap by rank (root = worst kept) over h[0..n): sift h[i] down. */
void tm_smp_heap_down(cand *h, int32_t n, int32_t i);

/* Put the k best of c[0..n) (by rank) into c[0..k), any order. */
void tm_smp_quickselect(cand *c, int32_t n, int32_t k);

/* top_p on c[0..got), whose mass (c[i].w) reaches need: the shortest rank
 * prefix with mass >= need is moved to c[0..keep) with its worst element
 * last; returns keep. Large sets are narrowed with z histograms over bm/bc
 * (TM_SMP_BUCKETS each), so only a small boundary region is sorted. */
int32_t tm_smp_top_p_cut(cand *c, int32_t got, double need, double *bm, int32_t *bc);

#endif
