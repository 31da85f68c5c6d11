/* sampler_select.c — selection over candidate lists for the sampler
 * (sampler_kernels.h): rank order, a min-heap, quickselect, and top_p's
 * histogram narrowing. */
#include "engine/sampler_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_rank(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (tm_smp_better(x->z, x->id, y->z, y->id)) return -1;
    if (tm_smp_better(y->z, y->id, x->z, x->id)) return 1;
    return 0;
}

static inline void cswap(cand *a, cand *b)
{
    cand t = *a;
    *a = *b;
    *b = t;
}

/* Min-heap by rank (root = worst kept) over h[0..n). */
void tm_smp_heap_down(cand *h, int32_t n, int32_t i)
{
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && tm_smp_better(h[m].z, h[m].id, h[l].z, h[l].id)) m = l;
        if (r < n && tm_smp_better(h[m].z, h[m].id, h[r].z, h[r].id)) m = r;
        if (m == i) return;
        cswap(&h[i], &h[m]);
        i = m;
    }
}

/* Put the k best of c[0..n) (by rank) into c[0..k), any order. */
void tm_smp_quickselect(cand *c, int32_t n, int32_t k)
{
    int32_t lo = 0, hi = n;
    int budget = 16;
    for (int32_t m = n; m > 1; m >>= 1) budget += 2;
    while (hi - lo > 1) {
        if (budget-- == 0) { /* pathological input: finish by sorting */
            qsort(c + lo, (size_t)(hi - lo), sizeof *c, cmp_rank);
            return;
        }
        int32_t mid = lo + (hi - lo) / 2;
        /* median of three into c[hi-1] */
        cand *a = &c[lo], *b = &c[mid], *d = &c[hi - 1];
        if (tm_smp_better(b->z, b->id, a->z, a->id)) cswap(a, b);
        if (tm_smp_better(d->z, d->id, b->z, b->id)) cswap(b, d);
        if (tm_smp_better(b->z, b->id, a->z, a->id)) cswap(a, b);
        cswap(b, d); /* median now at hi-1 */
        cand piv = c[hi - 1];
        int32_t st = lo;
        for (int32_t i = lo; i < hi - 1; i++)
            if (tm_smp_better(c[i].z, c[i].id, piv.z, piv.id)) cswap(&c[i], &c[st++]);
        cswap(&c[st], &c[hi - 1]);
        if (st == k || st == k - 1) return;
        if (st > k) hi = st;
        else lo = st + 1;
    }
}

static inline int32_t topp_bucket(double d)
{
    return d < (double)(TM_SMP_BUCKETS - 1) ? (int32_t)d : TM_SMP_BUCKETS - 1;
}

/* top_p on c[0..got), whose mass reaches need: the shortest rank prefix with
 * mass >= need is moved to c[0..keep) with its worst element last. Large
 * sets are narrowed with a z histogram (TM_SMP_BUCKETS equal-width buckets;
 * buckets above the one where the mass crosses need are kept whole, the
 * boundary bucket is refined again), so only a small boundary region is
 * ever sorted. A higher bucket always holds strictly larger z. */
int32_t tm_smp_top_p_cut(cand *c, int32_t got, double need, double *bm, int32_t *bc)
{
    int32_t base = 0;       /* c[0..base) kept for sure */
    double kept_mass = 0.0; /* their mass */
    while (got - base > TM_SMP_SORT_MAX) {
        float zhi = c[base].z, zlo = c[base].z;
        for (int32_t i = base + 1; i < got; i++) {
            if (c[i].z > zhi) zhi = c[i].z;
            if (c[i].z < zlo) zlo = c[i].z;
        }
        if (!(zhi > zlo) || !isfinite(zhi - zlo)) break; /* all equal or -inf: sort */
        const double scale = (double)TM_SMP_BUCKETS / ((double)zhi - (double)zlo);
        memset(bm, 0, TM_SMP_BUCKETS * sizeof *bm);
        memset(bc, 0, TM_SMP_BUCKETS * sizeof *bc);
#define TOPP_BUCKET(zv) topp_bucket(((double)zhi - (double)(zv)) * scale)
        for (int32_t i = base; i < got; i++) {
            int32_t b = TOPP_BUCKET(c[i].z);
            bm[b] += c[i].w;
            bc[b]++;
        }
        int32_t bb = TM_SMP_BUCKETS - 1;
        double cum = kept_mass;
        for (int32_t b = 0; b < TM_SMP_BUCKETS; b++) {
            if (bc[b] == 0) continue;
            if (cum + bm[b] >= need) {
                bb = b;
                break;
            }
            cum += bm[b];
            bb = b; /* rounding: never crossed -> last non-empty bucket */
        }
        if (bc[bb] == got - base) { /* cannot narrow (one bucket): sort */
            break;
        }
        /* [base..) = buckets < bb, then bucket bb; drop the rest */
        int32_t st = base;
        for (int32_t i = base; i < got; i++)
            if (TOPP_BUCKET(c[i].z) < bb) cswap(&c[i], &c[st++]);
        int32_t en = st;
        for (int32_t i = st; i < got; i++)
            if (TOPP_BUCKET(c[i].z) == bb) cswap(&c[i], &c[en++]);
#undef TOPP_BUCKET
        double m = kept_mass;
        for (int32_t i = base; i < st; i++) m += c[i].w;
        if (m >= need) { /* rounding corner: the cut lies in [base, st) */
            got = st;
            continue;
        }
        kept_mass = m;
        base = st;
        got = en;
    }
    qsort(c + base, (size_t)(got - base), sizeof *c, cmp_rank);
    double cum = kept_mass;
    for (int32_t i = base; i < got; i++) {
        cum += c[i].w;
        if (cum >= need) return i + 1;
    }
    return got;
}
