/* sampler.c — CPU sampler: penalties, greedy, temperature, top-k, top-p,
 * min-p, a Philox draw, raw logprobs. Semantics in sampler.h.
 *
 * Every filter keeps a prefix of the ranking (z desc, id asc); the kept set
 * is an ascending id list (small sets) or a predicate over the vocabulary
 * (rank >= a cut, w > 0, w >= min_p), and the draw gives the same token for
 * either form (block sums, sampler.h step 4). No full sort anywhere:
 *  - the vocabulary passes (scale + max, exp + sum, threshold gathers, the
 *    masked block sums of the draw) are sampler_kernels.c, AVX2 + FMA when
 *    the CPU has them, bit-identical portable C otherwise;
 *  - greedy: a vector max, then the first id holding it;
 *  - top_k: a min-heap fed only by the ids a vector scan finds above its
 *    root (k <= TOPK_HEAP), else a threshold widened until k ids pass, then
 *    quickselect over those;
 *  - top_p: the exp pass also sums the mass within 3 nats of z_max; with a
 *    histogram of a 1/16 sample of the rest it gives a threshold whose ids
 *    should hold the top_p mass (top_p_guess). Those ids are gathered and
 *    their mass checked; short, the threshold falls back to z_max - D, where
 *    V * exp(-D) <= (1 - top_p) * Z / 2 bounds what lies below. The gathered
 *    ids are narrowed with z histograms and only the boundary is sorted
 *    (tm_smp_top_p_cut). The gathered set only orders the mass sums: it
 *    can move the cut only where a running mass is within rounding of
 *    top_p * Z (deterministic all the same: a function of the row);
 *  - logprobs: a vector max and exp-sum over the raw logits (reused from the
 *    sampling pass when T = 1 without penalties), the top n by a heap-free
 *    insertion fed by a vector scan above the n-th value.
 * Timings: tests/bench/bench_sampler.c (`build/bench_sampler`).
 */
#include "engine/sampler.h"
#include "engine/philox.h"
#include "engine/sampler_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOPK_HEAP     128  /* top_k up to this uses the heap */


struct tm_sampler {
    int32_t vocab;
    int simd;         /* 1: AVX2+FMA kernels (same bits as the portable ones) */
    int32_t *pos;     /* [vocab] slot of a penalised token, -1 if none */
    int32_t *touched; /* [vocab] ids with a slot, n_touched of them */
    int32_t *count;   /* [vocab] per slot: occurrences among generated tokens (-1: not in prev) */
    float *pen;       /* [vocab] per slot: penalised logit */
    int32_t n_touched;
    float *z;         /* [vocab] processed logits / temperature, id order */
    float *w;         /* [vocab] tm_sampler_exp(z - zmax), id order */
    float *kw;        /* [vocab] w of kept tokens, 0 elsewhere (predicate draw) */
    int32_t *ids;     /* [vocab] candidate / kept ids, ascending */
    float *cz, *cw;   /* [vocab] z and w of ids[j] */
    cand *cand;       /* [vocab] selection scratch */
    double *bsum;     /* [blocks] block sums of w (exp pass) or of the kept set */
    tm_smpk_lut lut;  /* compress tables of the gathers */
    double bucket_mass[TM_SMP_BUCKETS];   /* top_p histogram */
    int32_t bucket_count[TM_SMP_BUCKETS];
};

/* What steps 1-3 leave for the draw. */
typedef struct kept {
    int greedy;      /* 1: token is decided */
    int32_t token;
    int list;        /* 1: ids[0..n) (ascending) holds the set */
    int32_t n;
    int has_cut;     /* vocabulary predicate: keep rank >= (zc, idc) */
    float zc;
    int32_t idc;
    float wmin;      /* and w >= wmin (min_p) */
    int raw_z;       /* z are the raw logits (T = 1, no penalties): zraw_sum reusable */
    float zmax;
    double z_sum;    /* sum of w over the vocabulary (kernel order) */
    double near_mass; /* about the mass of z >= zmax - TOPP_NEAR (float sums) */
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
    s->simd = tm_smpk_simd();
    tm_smpk_lut_init(&s->lut);
    s->pos = malloc(n * sizeof *s->pos);
    s->touched = malloc(n * sizeof *s->touched);
    s->count = malloc(n * sizeof *s->count);
    s->pen = malloc(n * sizeof *s->pen);
    s->z = malloc(n * sizeof *s->z);
    s->w = malloc(n * sizeof *s->w);
    s->kw = malloc(n * sizeof *s->kw);
    s->ids = malloc(n * sizeof *s->ids);
    s->cz = malloc(n * sizeof *s->cz);
    s->cw = malloc(n * sizeof *s->cw);
    s->cand = malloc(n * sizeof *s->cand);
    s->bsum = malloc((size_t)tm_smpk_blocks(vocab) * sizeof *s->bsum);
    if (!s->pos || !s->touched || !s->count || !s->pen || !s->z || !s->w || !s->kw || !s->ids || !s->cz || !s->cw ||
        !s->cand || !s->bsum) {
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
    free(s->kw);
    free(s->ids);
    free(s->cz);
    free(s->cw);
    free(s->cand);
    free(s->bsum);
    free(s);
}

int32_t tm_sampler_vocab(const tm_sampler *s)
{
    return s->vocab;
}

void tm_sampler_set_portable(tm_sampler *s, int portable)
{
    s->simd = portable ? 0 : tm_smpk_simd();
}

/* ---- steps 1-3 ---------------------------------------------------------- */

static void clear_penalties(tm_sampler *s)
{
    for (int32_t j = 0; j < s->n_touched; j++) s->pos[s->touched[j]] = -1;
    s->n_touched = 0;
}

/* The slot of token t, made on first use with pen = its raw logit (NaN as
 * -inf) and count -1 (not among prev). */
static int32_t slot_of(tm_sampler *s, const float *logits, int32_t t)
{
    int32_t slot = s->pos[t];
    if (slot < 0) {
        slot = s->n_touched++;
        s->pos[t] = slot;
        s->touched[slot] = t;
        s->count[slot] = -1; /* not among prev (yet) */
        float v = logits[t];
        s->pen[slot] = v != v ? -INFINITY : v;
    }
    return slot;
}

/* Step 0 (logit_bias, the min_tokens ban) and step 1 (penalties) on the
 * touched tokens only: pen[slot] ends as the processed logit. */
static void apply_penalties(tm_sampler *s, const float *logits, const tm_sampling_params *p,
                            const int32_t *prev, size_t n_prev, size_t n_prompt)
{
    s->n_touched = 0;
    int rep = p->repetition_penalty != 1.0f;
    int pf = p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f;
    int ban = (int64_t)(n_prev - n_prompt) < (int64_t)p->min_tokens && (p->n_eos_ids > 0 || p->n_stop_ids > 0);
    if (!rep && !pf && !ban && p->n_bias <= 0) return;
    for (int32_t i = 0; i < p->n_bias; i++) {
        int32_t t = p->bias_id[i];
        if (t < 0 || t >= s->vocab) continue;
        int32_t slot = slot_of(s, logits, t);
        s->pen[slot] += p->bias[i];
    }
    if (ban) {
        for (int32_t i = 0; i < p->n_eos_ids + p->n_stop_ids; i++) {
            int32_t t = i < p->n_eos_ids ? p->eos_ids[i] : p->stop_ids[i - p->n_eos_ids];
            if (t >= 0 && t < s->vocab) s->pen[slot_of(s, logits, t)] = -INFINITY;
        }
    }
    if (rep || pf) {
        size_t from = rep ? 0 : n_prompt;
        for (size_t i = from; i < n_prev; i++) {
            int32_t t = prev[i];
            if (t < 0 || t >= s->vocab) continue;
            int32_t slot = slot_of(s, logits, t);
            if (s->count[slot] < 0) s->count[slot] = 0;
            if (i >= n_prompt) s->count[slot]++;
        }
    }
    for (int32_t j = 0; j < s->n_touched; j++) {
        float v = s->pen[j];
        int32_t c = s->count[j];
        if (rep && c >= 0) v = v > 0.0f ? v / p->repetition_penalty : v * p->repetition_penalty;
        if (c > 0) v -= p->frequency_penalty * (float)c + p->presence_penalty;
        s->pen[j] = v != v ? -INFINITY : v;
    }
}

/* Argmax of the penalised logits, ties to the lowest id, NaN never: a vector
 * max over the raw logits, the first id holding it, then the touched ids. */
static tm_status greedy(tm_sampler *s, const float *logits, int32_t *tok, tm_err *err)
{
    const int32_t V = s->vocab;
    float m = tm_smpk_max(logits, V, s->simd);
    if (m == -INFINITY) return tm_errf(err, TM_ERR_INPUT, "sampler: every logit is -inf or NaN");
    int32_t best = tm_smpk_first_eq(logits, V, m, s->simd);
    if (s->n_touched > 0 && s->pos[best] >= 0) {
        /* the raw winner is penalised: rank the penalised row itself */
        memcpy(s->z, logits, (size_t)V * sizeof *s->z);
        for (int32_t j = 0; j < s->n_touched; j++) s->z[s->touched[j]] = s->pen[j];
        m = tm_smpk_max(s->z, V, s->simd);
        if (m == -INFINITY) return tm_errf(err, TM_ERR_INPUT, "sampler: every logit is -inf or NaN");
        *tok = tm_smpk_first_eq(s->z, V, m, s->simd);
        return TM_OK;
    }
    for (int32_t j = 0; j < s->n_touched; j++) { /* untouched best vs the penalised ones */
        float v = s->pen[j];
        int32_t t = s->touched[j];
        if (tm_smp_better(v, t, m, best)) {
            m = v;
            best = t;
        }
    }
    *tok = best;
    return TM_OK;
}

/* The k-th best rank (z desc, id asc) of z[0..V), 1 < k < V. */
static cand kth_best(tm_sampler *s, int32_t kk, float zmax)
{
    const int32_t V = s->vocab;
    const float *z = s->z;
    cand *c = s->cand;
    if (kk <= TOPK_HEAP) {
        for (int32_t i = 0; i < kk; i++) c[i] = (cand){z[i], i, 0.0f};
        for (int32_t i = kk / 2 - 1; i >= 0; i--) tm_smp_heap_down(c, kk, i);
        /* later ids with equal z rank lower: only z > root can enter */
        for (int32_t i = kk; (i = tm_smpk_next_gt(z, i, V, c[0].z, s->simd)) < V; i++) {
            c[0] = (cand){z[i], i, 0.0f};
            tm_smp_heap_down(c, kk, 0);
        }
        return c[0];
    }
    float d = 1.0f, thr = zmax - d;
    while (tm_smpk_count_ge(z, V, thr, s->simd) < kk) { /* -inf at the end counts all */
        d *= 4.0f;
        thr = d < 1e30f ? zmax - d : -INFINITY;
    }
    int32_t n = tm_smpk_gather_ge(z, V, thr, s->ids, &s->lut, s->simd);
    for (int32_t i = 0; i < n; i++) c[i] = (cand){z[s->ids[i]], s->ids[i], 0.0f};
    tm_smp_quickselect(c, n, kk);
    int32_t worst = 0;
    for (int32_t i = 1; i < kk; i++)
        if (tm_smp_better(c[worst].z, c[worst].id, c[i].z, c[i].id)) worst = i;
    return c[worst];
}

/* Keep the ids[0..n) (with cz, cw) whose rank is >= cut, in order; returns
 * how many. */
static int32_t filter_rank(tm_sampler *s, int32_t n, cand cut)
{
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++) {
        float zi = s->cz[i];
        if (zi > cut.z || (zi == cut.z && s->ids[i] <= cut.id)) {
            s->ids[m] = s->ids[i];
            s->cz[m] = zi;
            s->cw[m++] = s->cw[i];
        }
    }
    return m;
}

/* top_p over the ids[0..n) (ascending) that hold mass >= need: the cut. */
static cand top_p_on(tm_sampler *s, int32_t n, double need)
{
    cand *c = s->cand;
    for (int32_t i = 0; i < n; i++) c[i] = (cand){s->cz[i], s->ids[i], s->cw[i]};
    int32_t m = tm_smp_top_p_cut(c, n, need, s->bucket_mass, s->bucket_count);
    return c[m - 1];
}

/* A threshold t for top_p alone: ids with z >= t should hold mass >= need,
 * and few more. The mass within TOPP_NEAR nats of zmax comes from the exp
 * pass, the rest is estimated from every TOPP_STRIDE-th id in 1/8-nat buckets; the
 * answer goes TOPP_MARGIN buckets below where the estimate reaches need
 * (the caller checks the real mass). Never below `floor`. */
#define TOPP_NEAR   3.0f
#define TOPP_STRIDE 16
#define TOPP_EST    256 /* buckets of 1/8 nat: 32 nats below zmax - TOPP_NEAR */
#define TOPP_MARGIN 4
static float top_p_guess(tm_sampler *s, const kept *k, double need, float floor)
{
    const int32_t V = s->vocab;
    const float *z = s->z, *w = s->w;
    const float near = k->zmax - TOPP_NEAR;
    double m = k->near_mass;
    if (m >= need) return near > floor ? near : floor;
    double *h = s->bucket_mass; /* TM_SMP_BUCKETS >= TOPP_EST */
    memset(h, 0, TOPP_EST * sizeof *h);
    for (int32_t lo = 0; lo < V; lo += TOPP_STRIDE * 64) { /* 64 ids of every 64 * STRIDE */
        int32_t hi = V - lo > 64 ? lo + 64 : V;
        for (int32_t i = lo; i < hi; i++) {
            float d = (near - z[i]) * 8.0f;
            if (d > 0.0f && d < (float)TOPP_EST) h[(int32_t)d] += w[i];
        }
    }
    for (int32_t b = 0; b < TOPP_EST; b++) {
        m += TOPP_STRIDE * h[b];
        if (m >= need) {
            float t = near - (float)(b + 1 + TOPP_MARGIN) * 0.125f;
            return t > floor ? t : floor;
        }
    }
    return floor;
}

/* Steps 2-3 once z / w exist: the kept set into k. */
static void filters(tm_sampler *s, const tm_sampling_params *p, kept *k)
{
    const int32_t V = s->vocab;
    const float *w = s->w;
    int32_t n = -1; /* ids[0..n) is the set; -1: the whole vocabulary */
    cand cut = {0.0f, -1, 0.0f};
    double Z = k->z_sum;
    if (p->top_k > 1 && p->top_k < V) {
        cut = kth_best(s, p->top_k, k->zmax);
        n = tm_smpk_gather_ge_zw(s->z, w, V, cut.z, s->ids, s->cz, s->cw, &s->lut, s->simd);
        n = filter_rank(s, n, cut);
        Z = 0.0;
        for (int32_t i = 0; i < n; i++) Z += s->cw[i];
    }
    if (p->top_p < 1.0f) {
        double need = (double)p->top_p * Z;
        if (n < 0) {
            /* ids below zmax - D hold at most V * exp(-D) <= (Z - need) / 2 */
            double D = log(2.0 * (double)V / ((1.0 - (double)p->top_p) * Z));
            float bound = D > 0.0 ? (float)((double)k->zmax - D) : k->zmax;
            float thr = top_p_guess(s, k, need, bound);
            for (int tries = 0;; tries++) {
                n = tm_smpk_gather_ge_zw(s->z, w, V, thr, s->ids, s->cz, s->cw, &s->lut, s->simd);
                double m0 = 0.0, m1 = 0.0;
                int32_t i = 0;
                for (; i + 1 < n; i += 2) {
                    m0 += s->cw[i];
                    m1 += s->cw[i + 1];
                }
                if (i < n) m0 += s->cw[i];
                if (m0 + m1 >= need || tries == 2) break;
                /* the guess fell short: the bound, then every id with weight
                 * (w is 0 below zmax - 87) */
                thr = tries == 0 && thr > bound ? bound : k->zmax - 128.0f;
            }
        }
        cut = top_p_on(s, n, need);
        n = filter_rank(s, n, cut);
    }
    if (p->min_p > 0.0f) k->wmin = p->min_p; /* w = p / p_max */
    k->n = n < 0 ? V : n;
    if (n >= 0 && (int64_t)n * 16 <= V) {
        k->list = 1;
    } else if (n >= 0) {
        k->has_cut = 1;
        k->zc = cut.z;
        k->idc = cut.id;
    }
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

    /* z = logit / T and zmax. x -> x * invT is monotone, so without
     * penalties zmax is the largest logit times invT: z and w then come
     * from one pass over the logits. */
    const float invT = 1.0f / p->temperature;
    float zmax;
    if (s->n_touched > 0) {
        tm_smpk_scale(logits, invT, s->z, V, s->simd);
        for (int32_t j = 0; j < s->n_touched; j++) s->z[s->touched[j]] = s->pen[j] * invT;
        zmax = tm_smpk_max(s->z, V, s->simd);
    } else {
        zmax = tm_smpk_max(logits, V, s->simd) * invT;
    }
    if (zmax == -INFINITY) return tm_errf(err, TM_ERR_INPUT, "sampler: every logit is -inf or NaN");
    if (isinf(zmax)) { /* +inf: the lowest id holding it wins outright */
        k->greedy = 1;
        if (s->n_touched == 0) tm_smpk_scale(logits, invT, s->z, V, s->simd);
        k->token = tm_smpk_first_eq(s->z, V, zmax, s->simd);
        return TM_OK;
    }
    k->zmax = zmax;
    k->raw_z = invT == 1.0f && s->n_touched == 0;
    /* z is needed by top_k / top_p only; the near mass by top_p alone */
    const int topk_on = p->top_k > 1 && p->top_k < V, topp_on = p->top_p < 1.0f;
    double *near = topp_on && !topk_on ? &k->near_mass : NULL;
    if (s->n_touched > 0)
        k->z_sum = tm_smpk_exp(s->z, 1.0f, zmax, NULL, s->w, s->bsum, V, -TOPP_NEAR, near, s->simd);
    else
        k->z_sum = tm_smpk_exp(logits, invT, zmax, topk_on || topp_on ? s->z : NULL, s->w, s->bsum, V,
                               -TOPP_NEAR, near, s->simd);
    filters(s, p, k);
    return TM_OK;
}

/* ---- step 4: the draw --------------------------------------------------- */

static inline int w_kept(const kept *k, float w) { return w > 0.0f && w >= k->wmin; }

static inline double lanes8(const double l[8])
{
    return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

/* Block sums of the listed set, as tm_smpk_mask_blocks sums the same set. */
static void list_blocks(tm_sampler *s, const kept *k, int32_t nb)
{
    const int32_t V8 = s->vocab & ~7;
    memset(s->bsum, 0, (size_t)nb * sizeof *s->bsum);
    double l[8] = {0}, acc = 0.0;
    int32_t cur = -1, tail = 0;
    for (int32_t j = 0; j <= k->n; j++) {
        int32_t id = j < k->n ? s->ids[j] : -1;
        if (id >= 0 && !w_kept(k, s->cw[j])) continue;
        int32_t b = id >= 0 ? id / TM_SMPK_BLOCK : -1;
        if (b != cur) {
            if (cur >= 0) s->bsum[cur] = tail ? acc : lanes8(l);
            if (id < 0) break;
            memset(l, 0, sizeof l);
            cur = b;
            tail = 0;
        }
        double v = (double)s->cw[j];
        if (id < V8) {
            l[id & 7] += v;
        } else {
            if (!tail) acc = lanes8(l);
            tail = 1;
            acc += v;
        }
    }
}

static int32_t draw(tm_sampler *s, const kept *k, double u)
{
    const int32_t V = s->vocab;
    const int32_t nb = tm_smpk_blocks(V);
    const float *kw = s->w; /* whole vocabulary, no min_p: bsum is the exp pass's */
    if (k->list) {
        list_blocks(s, k, nb);
    } else if (k->has_cut || k->wmin > 0.0f) {
        tm_smpk_mask_blocks(s->z, s->w, V, k->has_cut, k->zc, k->idc, k->wmin, s->kw, s->bsum, s->simd);
        kw = s->kw;
    }
    double total = 0.0;
    for (int32_t b = 0; b < nb; b++) total += s->bsum[b];
    double target = u * total, pre = 0.0;
    int32_t b = 0;
    for (; b < nb; b++) {
        if (pre + s->bsum[b] > target) break;
        pre += s->bsum[b];
    }
    if (b == nb) { /* rounding: no block crossed; the last kept token */
        if (k->list) {
            for (int32_t j = k->n - 1; j >= 0; j--)
                if (w_kept(k, s->cw[j])) return s->ids[j];
            return -1;
        }
        for (int32_t i = V - 1; i >= 0; i--)
            if (kw[i] > 0.0f) return i;
        return -1;
    }
    int32_t lo = b * TM_SMPK_BLOCK, hi = lo + TM_SMPK_BLOCK < V ? lo + TM_SMPK_BLOCK : V;
    double cum = pre;
    int32_t last = -1;
    if (k->list) {
        for (int32_t j = 0; j < k->n; j++) {
            int32_t id = s->ids[j];
            if (id < lo || id >= hi || !w_kept(k, s->cw[j])) continue;
            cum += s->cw[j];
            last = id;
            if (cum > target) return id;
        }
        return last;
    }
    for (int32_t i = lo; i < hi; i++) {
        if (!(kw[i] > 0.0f)) continue;
        cum += kw[i];
        last = i;
        if (cum > target) return i;
    }
    return last;
}

/* Raw log-softmax: the chosen token's logprob and the top n. k: the
 * sampling pass (its max and exp-sum are the raw ones when k->raw_z). */
static void raw_logprobs(const tm_sampler *s, const float *logits, const kept *k, int32_t n_top,
                         tm_sample_result *out)
{
    const int32_t V = s->vocab;
    tm_token_logprob *top = out->top;
    int32_t nt = 0;
    for (int32_t i = 0; i < V && n_top > 0;) {
        float v = logits[i];
        if (v != v) v = -INFINITY;
        if (nt < n_top || tm_smp_better(v, i, top[nt - 1].logprob, top[nt - 1].id)) {
            int32_t j = nt < n_top ? nt++ : n_top - 1;
            while (j > 0 && tm_smp_better(v, i, top[j - 1].logprob, top[j - 1].id)) {
                top[j] = top[j - 1];
                j--;
            }
            top[j].id = i;
            top[j].logprob = v;
        }
        i++;
        /* full: later ids enter only above the n-th value (ties rank lower) */
        if (nt == n_top) i = tm_smpk_next_gt(logits, i, V, top[nt - 1].logprob, s->simd);
    }
    const int reuse = !k->greedy && k->raw_z;
    float m = reuse ? k->zmax : tm_smpk_max(logits, V, s->simd);
    double sum = 0.0;
    if (isfinite(m)) sum = reuse ? k->z_sum : tm_smpk_exp(logits, 1.0f, m, NULL, NULL, NULL, V, 0.0f, NULL, s->simd);
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
    if (p->logprobs || p->top_logprobs > 0) raw_logprobs(s, logits, &k, p->top_logprobs, out);
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
        for (int32_t j = 0; j < k.n; j++)
            if (w_kept(&k, s->cw[j])) ids[n++] = s->ids[j];
    } else {
        for (int32_t i = 0; i < s->vocab; i++) {
            float zi = s->z[i];
            if (k.has_cut && !(zi > k.zc || (zi == k.zc && i <= k.idc))) continue;
            if (w_kept(&k, s->w[i])) ids[n++] = i;
        }
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
