/* sampler_v0.c — the CPU sampler as it was before the fast one (commit
 * e99b710, src/engine/sampler.c: libm expf, histogram top_p, scalar passes),
 * kept only so tests/bench/bench_sampler.c can time old and new side by side
 * in one run. Its public names are renamed to tm_sampler_v0_*; the shared
 * parameter helpers (sampler_params.c) are not duplicated. Not part of the
 * library. */
#define tm_sampler tm_sampler_v0
#define tm_sampler_create tm_sampler_v0_create
#define tm_sampler_destroy tm_sampler_v0_destroy
#define tm_sampler_vocab tm_sampler_v0_vocab
#define tm_sampler_sample tm_sampler_v0_sample
#define tm_sampler_kept_set tm_sampler_v0_kept_set
#define tm_sampler_penalize tm_sampler_v0_penalize
#define tm_sampler_exp tm_sampler_v0_exp_unused
#define tm_sampler_set_portable tm_sampler_v0_set_portable_unused
#define tm_sampling_params_default tm_sampling_params_default_v0_unused
#define tm_sampling_params_add_stop tm_sampling_params_add_stop_v0_unused
#define tm_sampler_seed_from tm_sampler_seed_from_v0_unused
/* sampler.c — CPU reference sampler: penalties, greedy, temperature, top-k,
 * top-p, min-p, a Philox draw, raw logprobs. Semantics in sampler.h.
 * Every filter keeps a prefix of the ranking (z desc, id asc); the draw walks
 * the kept set in ascending id order whichever way it was found (a sorted id
 * list, or a predicate over the vocabulary), accumulating the same floats in
 * the same order. No full-vocabulary sort: top_k uses a heap (k <= 64) or
 * quickselect; top_p narrows with z histograms and sorts only the boundary.
 */

/* Performance notes (one tm_sampler_sample, vocab 151936, -O2, one thread,
 * medians; `tests/unit/test_sampler_perf.c`, run `ctest -R test_sampler_perf
 * -V`; measured on the 16-core Xeon device host, 2026-11-23, uncontended):
 *   greedy                          0.12-0.14 ms (8-lane single pass)
 *   greedy + penalties, 4096 prev   0.27 ms
 *   T=1, no filter                  ~1.0 ms  (one expf pass dominates)
 *   T=0.7 top_p=0.9 peaked / flat   1.0-1.3 ms / 1.2 ms (3946 kept)
 *   T=1 top_p=0.9 flat              2.2 ms (20060 kept)
 *   T=1 top_k=50 (+top_p=0.95)      0.92 ms;  min_p=0.05  ~1.0 ms
 *   + top_logprobs=20               +0.7-0.9 ms (raw log-softmax pass)
 * Before the histogram narrowing, flat top_p=0.9 took 40-80 ms (a qsort of
 * ~150k candidates). The floor is libm expf over the vocabulary (~0.8 ms);
 * on the GPU this is a fused softmax anyway. */
#include "engine/sampler.h"
#include "engine/philox.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOPP_BUCKETS  1024 /* histogram buckets for a large top_p set */
#define TOPP_SORT_MAX 2048 /* top_p sets up to this size are simply sorted */

typedef struct cand {
    float z;
    int32_t id;
} cand;

struct tm_sampler {
    int32_t vocab;
    int32_t *pos;     /* [vocab] slot of a penalised token, -1 if none */
    int32_t *touched; /* [vocab] ids with a slot, n_touched of them */
    int32_t *count;   /* [vocab] per slot: occurrences among generated tokens */
    float *pen;       /* [vocab] per slot: penalised logit */
    int32_t n_touched;
    float *z;         /* [vocab] processed logits / temperature, id order */
    float *w;         /* [vocab] exp(z - zmax), id order */
    cand *cand;       /* [vocab] candidates */
    double bucket_mass[TOPP_BUCKETS];   /* top_p histogram */
    int32_t bucket_count[TOPP_BUCKETS];
};

/* What steps 1-3 leave for the draw. */
typedef struct kept {
    int greedy;      /* 1: token is decided */
    int32_t token;
    int list;        /* 1: cand[0..n) sorted by id holds the set */
    int32_t n;
    int has_cut;     /* vocabulary walk: keep rank >= (zc, idc) */
    float zc;
    int32_t idc;
    float wmin;      /* and w >= wmin (min_p) */
} kept;

tm_status tm_sampler_create(int32_t vocab, tm_sampler **out, tm_err *err)
{
    *out = NULL;
    if (vocab <= 0 || vocab > (1 << 28))
        return tm_errf(err, TM_ERR_INPUT, "sampler: vocab size %d out of range", (int)vocab);
    tm_sampler *s = calloc(1, sizeof *s);
    if (!s) return tm_errf(err, TM_ERR_NOMEM, "sampler: out of memory");
    size_t n = (size_t)vocab;
    s->vocab = vocab;
    s->pos = malloc(n * sizeof *s->pos);
    s->touched = malloc(n * sizeof *s->touched);
    s->count = malloc(n * sizeof *s->count);
    s->pen = malloc(n * sizeof *s->pen);
    s->z = malloc(n * sizeof *s->z);
    s->w = malloc(n * sizeof *s->w);
    s->cand = malloc(n * sizeof *s->cand);
    if (!s->pos || !s->touched || !s->count || !s->pen || !s->z || !s->w || !s->cand) {
        tm_sampler_destroy(s);
        return tm_errf(err, TM_ERR_NOMEM, "sampler: out of memory for vocab %d", (int)vocab);
    }
    for (size_t i = 0; i < n; i++) s->pos[i] = -1;
    *out = s;
    return TM_OK;
}

void tm_sampler_destroy(tm_sampler *s)
{
    if (!s) return;
    free(s->pos);
    free(s->touched);
    free(s->count);
    free(s->pen);
    free(s->z);
    free(s->w);
    free(s->cand);
    free(s);
}

int32_t tm_sampler_vocab(const tm_sampler *s)
{
    return s->vocab;
}

/* ---- ranking helpers ---------------------------------------------------- */

static inline int better(float za, int32_t ia, float zb, int32_t ib)
{
    return za > zb || (za == zb && ia < ib);
}

static int cmp_rank(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (better(x->z, x->id, y->z, y->id)) return -1;
    if (better(y->z, y->id, x->z, x->id)) return 1;
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static inline void cswap(cand *a, cand *b)
{
    cand t = *a;
    *a = *b;
    *b = t;
}

/* Min-heap by rank (root = worst kept) over h[0..n). */
static void heap_down(cand *h, int32_t n, int32_t i)
{
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && better(h[m].z, h[m].id, h[l].z, h[l].id)) m = l;
        if (r < n && better(h[m].z, h[m].id, h[r].z, h[r].id)) m = r;
        if (m == i) return;
        cswap(&h[i], &h[m]);
        i = m;
    }
}

/* Put the k best of c[0..n) (by rank) into c[0..k), any order. */
static void quickselect(cand *c, int32_t n, int32_t k)
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
        if (better(b->z, b->id, a->z, a->id)) cswap(a, b);
        if (better(d->z, d->id, b->z, b->id)) cswap(b, d);
        if (better(b->z, b->id, a->z, a->id)) cswap(a, b);
        cswap(b, d); /* median now at hi-1 */
        cand piv = c[hi - 1];
        int32_t st = lo;
        for (int32_t i = lo; i < hi - 1; i++)
            if (better(c[i].z, c[i].id, piv.z, piv.id)) cswap(&c[i], &c[st++]);
        cswap(&c[st], &c[hi - 1]);
        if (st == k || st == k - 1) return;
        if (st > k) hi = st;
        else lo = st + 1;
    }
}

/* top_p on c[0..got), whose mass reaches need: the shortest rank prefix with
 * mass >= need is moved to c[0..keep) with its worst element last. Large
 * sets are narrowed with a z histogram (TOPP_BUCKETS equal-width buckets;
 * buckets above the one where the mass crosses need are kept whole, the
 * boundary bucket is refined again), so only a small boundary region is
 * ever sorted. A higher bucket always holds strictly larger z. */
static int32_t top_p_cut(tm_sampler *s, cand *c, int32_t got, double need)
{
    const float *w = s->w;
    int32_t base = 0;       /* c[0..base) kept for sure */
    double kept_mass = 0.0; /* their mass */
    while (got - base > TOPP_SORT_MAX) {
        float zhi = c[base].z, zlo = c[base].z;
        for (int32_t i = base + 1; i < got; i++) {
            if (c[i].z > zhi) zhi = c[i].z;
            if (c[i].z < zlo) zlo = c[i].z;
        }
        if (!(zhi > zlo) || !isfinite(zhi - zlo)) break; /* all equal or -inf: sort */
        const double scale = (double)TOPP_BUCKETS / ((double)zhi - (double)zlo);
        double *bm = s->bucket_mass;
        int32_t *bc = s->bucket_count;
        memset(bm, 0, TOPP_BUCKETS * sizeof *bm);
        memset(bc, 0, TOPP_BUCKETS * sizeof *bc);
#define TOPP_BUCKET(zv) (int32_t)fmin((double)(TOPP_BUCKETS - 1), ((double)zhi - (double)(zv)) * scale)
        for (int32_t i = base; i < got; i++) {
            int32_t b = TOPP_BUCKET(c[i].z);
            bm[b] += w[c[i].id];
            bc[b]++;
        }
        int32_t bb = TOPP_BUCKETS - 1;
        double cum = kept_mass;
        for (int32_t b = 0; b < TOPP_BUCKETS; b++) {
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
        for (int32_t i = base; i < st; i++) m += w[c[i].id];
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
        cum += w[c[i].id];
        if (cum >= need) return i + 1;
    }
    return got;
}

/* Bucket of zmax - z in 1/16 nat steps (the last one takes everything
 * below 64 nats). Monotone in z, so buckets <= b form a rank prefix. */
static inline int32_t coarse_bucket(float zmax, float z)
{
    float d = (zmax - z) * 16.0f;
    return d < (float)(TOPP_BUCKETS - 1) ? (int32_t)d : TOPP_BUCKETS - 1;
}

/* ---- steps 1-3 ---------------------------------------------------------- */

static void clear_penalties(tm_sampler *s)
{
    for (int32_t j = 0; j < s->n_touched; j++) s->pos[s->touched[j]] = -1;
    s->n_touched = 0;
}

static void apply_penalties(tm_sampler *s, const float *logits, const tm_sampling_params *p,
                            const int32_t *prev, size_t n_prev, size_t n_prompt)
{
    s->n_touched = 0;
    int rep = p->repetition_penalty != 1.0f;
    int pf = p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f;
    if (!rep && !pf) return;
    size_t from = rep ? 0 : n_prompt;
    for (size_t i = from; i < n_prev; i++) {
        int32_t t = prev[i];
        if (t < 0 || t >= s->vocab) continue;
        int32_t slot = s->pos[t];
        if (slot < 0) {
            slot = s->n_touched++;
            s->pos[t] = slot;
            s->touched[slot] = t;
            s->count[slot] = 0;
        }
        if (i >= n_prompt) s->count[slot]++;
    }
    for (int32_t j = 0; j < s->n_touched; j++) {
        int32_t t = s->touched[j];
        float v = logits[t];
        if (v != v) v = -INFINITY;
        if (rep) v = v > 0.0f ? v / p->repetition_penalty : v * p->repetition_penalty;
        int32_t c = s->count[j];
        if (c > 0) v -= p->frequency_penalty * (float)c + p->presence_penalty;
        s->pen[j] = v;
    }
}

/* Penalised logit of token i (NaN -> -inf). */
static inline float eff(const tm_sampler *s, const float *logits, int32_t i)
{
    int32_t slot = s->pos[i];
    float v = slot >= 0 ? s->pen[slot] : logits[i];
    return v != v ? -INFINITY : v;
}

/* Argmax in one pass; GREEDY_LANES independent (value, first id) chains
 * break the compare/select dependency, then the lanes are merged by
 * (value desc, id asc), so ties still go to the lowest id. NaN never wins. */
#define GREEDY_LANES 8
static tm_status greedy(const tm_sampler *s, const float *logits, int32_t *tok, tm_err *err)
{
    const int32_t V = s->vocab;
    const int pen = s->n_touched > 0;
    float lb[GREEDY_LANES];
    int32_t li[GREEDY_LANES];
    for (int j = 0; j < GREEDY_LANES; j++) {
        lb[j] = -INFINITY;
        li[j] = -1;
    }
    int32_t i = 0;
    if (!pen) {
        for (; i + GREEDY_LANES <= V; i += GREEDY_LANES)
            for (int j = 0; j < GREEDY_LANES; j++) {
                float v = logits[i + j];
                int g = v > lb[j];
                lb[j] = g ? v : lb[j];
                li[j] = g ? i + j : li[j];
            }
    } else {
        for (; i + GREEDY_LANES <= V; i += GREEDY_LANES)
            for (int j = 0; j < GREEDY_LANES; j++) {
                float v = eff(s, logits, i + j);
                int g = v > lb[j];
                lb[j] = g ? v : lb[j];
                li[j] = g ? i + j : li[j];
            }
    }
    float bv = -INFINITY;
    int32_t best = -1;
    for (int j = 0; j < GREEDY_LANES; j++)
        if (li[j] >= 0 && (best < 0 || better(lb[j], li[j], bv, best))) {
            bv = lb[j];
            best = li[j];
        }
    for (; i < V; i++) { /* tail: ids above every lane's, strict > keeps ties low */
        float v = eff(s, logits, i);
        if (v > bv) {
            bv = v;
            best = i;
        }
    }
    if (best < 0) return tm_errf(err, TM_ERR_INPUT, "sampler: every logit is -inf or NaN");
    *tok = best;
    return TM_OK;
}

static tm_status compute_kept(tm_sampler *s, const float *logits, const tm_sampling_params *p,
                              const int32_t *prev, size_t n_prev, size_t n_prompt, kept *k,
                              tm_err *err)
{
    tm_status st = tm_sampling_params_check(p, s->vocab, err);
    if (st != TM_OK) return st;
    if (n_prompt > n_prev)
        return tm_errf(err, TM_ERR_INPUT, "sampler: n_prompt %zu > n_prev %zu", n_prompt, n_prev);
    if (n_prev > 0 && !prev) return tm_errf(err, TM_ERR_INPUT, "sampler: prev is NULL");
    memset(k, 0, sizeof *k);
    const int32_t V = s->vocab;
    apply_penalties(s, logits, p, prev, n_prev, n_prompt);

    if (p->temperature < TM_SAMPLER_GREEDY_EPS || p->top_k == 1) {
        k->greedy = 1;
        return greedy(s, logits, &k->token, err);
    }

    /* z = logit / T, zmax */
    const float invT = 1.0f / p->temperature;
    float *z = s->z, *w = s->w;
    float zmax = -INFINITY;
    int32_t imax = -1;
    for (int32_t i = 0; i < V; i++) {
        float v = eff(s, logits, i) * invT;
        z[i] = v;
        if (v > zmax) {
            zmax = v;
            imax = i;
        }
    }
    if (imax < 0) return tm_errf(err, TM_ERR_INPUT, "sampler: every logit is -inf or NaN");
    if (isinf(zmax)) { /* +inf: the lowest id holding it wins outright */
        k->greedy = 1;
        k->token = imax;
        return TM_OK;
    }
    double Z = 0.0;
    const int topk_on = p->top_k > 1 && p->top_k < V;
    const int hist = p->top_p < 1.0f && !topk_on;
    double *bm = s->bucket_mass;
    int32_t *bc = s->bucket_count;
    if (hist) { /* coarse histogram of zmax - z for top_p, in the same pass */
        memset(bm, 0, TOPP_BUCKETS * sizeof *bm);
        memset(bc, 0, TOPP_BUCKETS * sizeof *bc);
        for (int32_t i = 0; i < V; i++) {
            float e = expf(z[i] - zmax);
            w[i] = e;
            Z += e;
            int32_t b = coarse_bucket(zmax, z[i]);
            bm[b] += e;
            bc[b]++;
        }
    } else {
        for (int32_t i = 0; i < V; i++) {
            float e = expf(z[i] - zmax);
            w[i] = e;
            Z += e;
        }
    }

    int active = 0; /* cand[0..n) holds the current set */
    int sorted = 0; /* ... in rank order */
    int32_t n = V;
    cand *c = s->cand;

    if (topk_on) {
        int32_t kk = p->top_k;
        if (kk <= 64) {
            for (int32_t i = 0; i < kk; i++) c[i] = (cand){z[i], i};
            for (int32_t i = kk / 2 - 1; i >= 0; i--) heap_down(c, kk, i);
            for (int32_t i = kk; i < V; i++) {
                if (better(z[i], i, c[0].z, c[0].id)) {
                    c[0] = (cand){z[i], i};
                    heap_down(c, kk, 0);
                }
            }
        } else {
            for (int32_t i = 0; i < V; i++) c[i] = (cand){z[i], i};
            quickselect(c, V, kk);
        }
        n = kk;
        active = 1;
        Z = 0.0;
        for (int32_t i = 0; i < n; i++) Z += w[c[i].id];
    }

    if (hist) {
        /* gather the buckets up to the one where the mass reaches top_p */
        double need = (double)p->top_p * Z, cum = 0.0;
        int32_t bb = TOPP_BUCKETS - 1;
        for (int32_t b = 0; b < TOPP_BUCKETS; b++) {
            cum += bm[b];
            if (bc[b] && cum >= need) {
                bb = b;
                break;
            }
        }
        int32_t got = 0;
        for (int32_t i = 0; i < V; i++)
            if (coarse_bucket(zmax, z[i]) <= bb) c[got++] = (cand){z[i], i};
        n = top_p_cut(s, c, got, need);
        active = 1;
        sorted = 1;
    } else if (p->top_p < 1.0f) { /* after top_k: cand[0..n) is the set */
        double need = (double)p->top_p * Z;
        float delta = 4.0f;
        int32_t got = 0; /* cand[0..got) are above the threshold */
        double mass = 0.0;
        for (;;) { /* widen the threshold until its mass reaches top_p */
            float thr = zmax - delta;
            int all = !(delta < 1e4f);
            for (int32_t i = got; i < n; i++) {
                if (all || c[i].z >= thr) {
                    mass += w[c[i].id];
                    cswap(&c[i], &c[got++]);
                }
            }
            if (mass >= need || all) break;
            delta *= 4.0f;
        }
        n = top_p_cut(s, c, got, need);
        sorted = 1;
    }

    if (p->min_p > 0.0f) k->wmin = p->min_p; /* w = p / p_max */

    if (!active) {
        k->n = V;
        return TM_OK;
    }
    if ((int64_t)n * 16 <= V) {
        qsort(c, (size_t)n, sizeof *c, cmp_id);
        k->list = 1;
        k->n = n;
        return TM_OK;
    }
    /* large set: walk the vocabulary with the rank cut of the worst kept */
    int32_t worst = n - 1;
    if (!sorted) {
        worst = 0;
        for (int32_t i = 1; i < n; i++)
            if (better(c[worst].z, c[worst].id, c[i].z, c[i].id)) worst = i;
    }
    k->has_cut = 1;
    k->zc = c[worst].z;
    k->idc = c[worst].id;
    k->n = n;
    return TM_OK;
}

static inline int in_vocab_set(const tm_sampler *s, const kept *k, int32_t i)
{
    if (k->has_cut && !(s->z[i] > k->zc || (s->z[i] == k->zc && i <= k->idc))) return 0;
    return s->w[i] > 0.0f && s->w[i] >= k->wmin;
}

static int32_t draw(const tm_sampler *s, const kept *k, double u)
{
    const float *w = s->w;
    double total = 0.0;
    int32_t last = -1;
    if (k->list) {
        const cand *c = s->cand;
        for (int32_t j = 0; j < k->n; j++)
            if (w[c[j].id] > 0.0f && w[c[j].id] >= k->wmin) total += w[c[j].id];
        double target = u * total, cum = 0.0;
        for (int32_t j = 0; j < k->n; j++) {
            int32_t id = c[j].id;
            if (!(w[id] > 0.0f && w[id] >= k->wmin)) continue;
            cum += w[id];
            last = id;
            if (cum > target) return id;
        }
        return last;
    }
    for (int32_t i = 0; i < s->vocab; i++)
        if (in_vocab_set(s, k, i)) total += w[i];
    double target = u * total, cum = 0.0;
    for (int32_t i = 0; i < s->vocab; i++) {
        if (!in_vocab_set(s, k, i)) continue;
        cum += w[i];
        last = i;
        if (cum > target) return i;
    }
    return last;
}

/* Raw log-softmax: the chosen token's logprob and the top n. */
static void raw_logprobs(const tm_sampler *s, const float *logits, int32_t n_top,
                         tm_sample_result *out)
{
    float m = -INFINITY;
    int32_t nt = 0;
    tm_token_logprob *top = out->top;
    for (int32_t i = 0; i < s->vocab; i++) {
        float v = logits[i];
        if (v != v) v = -INFINITY;
        if (v > m) m = v;
        if (n_top > 0 && (nt < n_top || better(v, i, top[nt - 1].logprob, top[nt - 1].id))) {
            int32_t j = nt < n_top ? nt++ : n_top - 1;
            while (j > 0 && better(v, i, top[j - 1].logprob, top[j - 1].id)) {
                top[j] = top[j - 1];
                j--;
            }
            top[j].id = i;
            top[j].logprob = v;
        }
    }
    double sum = 0.0;
    if (isfinite(m))
        for (int32_t i = 0; i < s->vocab; i++) {
            float v = logits[i];
            if (v == v) sum += expf(v - m);
        }
    double lse = isfinite(m) ? (double)m + log(sum) : (double)m;
    float lt = logits[out->token];
    out->logprob = lt == lt ? (float)((double)lt - lse) : -INFINITY;
    if (isinf(m) && m > 0) out->logprob = lt == m ? 0.0f : -INFINITY;
    for (int32_t j = 0; j < nt; j++) {
        float v = top[j].logprob;
        if (isinf(m) && m > 0) top[j].logprob = v == m ? 0.0f : -INFINITY;
        else top[j].logprob = (float)((double)v - lse);
    }
    out->n_top = nt;
}

tm_status tm_sampler_sample(tm_sampler *s, const float *logits, const tm_sampling_params *p,
                            uint64_t request_key, uint64_t token_index,
                            const int32_t *prev, size_t n_prev, size_t n_prompt,
                            tm_sample_result *out, tm_err *err)
{
    kept k;
    out->token = -1;
    out->logprob = 0.0f;
    out->n_top = 0;
    tm_status st = compute_kept(s, logits, p, prev, n_prev, n_prompt, &k, err);
    clear_penalties(s);
    if (st != TM_OK) return st;
    if (k.greedy) {
        out->token = k.token;
    } else {
        double u = tm_philox_uniform(p->seed, request_key, token_index);
        out->token = draw(s, &k, u);
        if (out->token < 0) return tm_errf(err, TM_ERR_INTERNAL, "sampler: empty kept set");
    }
    if (p->logprobs || p->top_logprobs > 0) raw_logprobs(s, logits, p->top_logprobs, out);
    return TM_OK;
}

tm_status tm_sampler_kept_set(tm_sampler *s, const float *logits, const tm_sampling_params *p,
                              const int32_t *prev, size_t n_prev, size_t n_prompt,
                              int32_t *ids, int32_t *n_ids, tm_err *err)
{
    kept k;
    *n_ids = 0;
    tm_status st = compute_kept(s, logits, p, prev, n_prev, n_prompt, &k, err);
    clear_penalties(s);
    if (st != TM_OK) return st;
    int32_t n = 0;
    if (k.greedy) {
        ids[n++] = k.token;
    } else if (k.list) {
        for (int32_t j = 0; j < k.n; j++) {
            int32_t id = s->cand[j].id;
            if (s->w[id] > 0.0f && s->w[id] >= k.wmin) ids[n++] = id;
        }
    } else {
        for (int32_t i = 0; i < s->vocab; i++)
            if (in_vocab_set(s, &k, i)) ids[n++] = i;
    }
    *n_ids = n;
    return TM_OK;
}

tm_status tm_sampler_penalize(tm_sampler *s, const float *logits, const tm_sampling_params *p,
                              const int32_t *prev, size_t n_prev, size_t n_prompt,
                              float *out, tm_err *err)
{
    tm_status st = tm_sampling_params_check(p, s->vocab, err);
    if (st != TM_OK) return st;
    if (n_prompt > n_prev)
        return tm_errf(err, TM_ERR_INPUT, "sampler: n_prompt %zu > n_prev %zu", n_prompt, n_prev);
    if (n_prev > 0 && !prev) return tm_errf(err, TM_ERR_INPUT, "sampler: prev is NULL");
    apply_penalties(s, logits, p, prev, n_prev, n_prompt);
    memcpy(out, logits, (size_t)s->vocab * sizeof *out);
    for (int32_t j = 0; j < s->n_touched; j++) out[s->touched[j]] = s->pen[j];
    clear_penalties(s);
    return TM_OK;
}

