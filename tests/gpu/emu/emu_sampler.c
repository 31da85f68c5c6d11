/* emu_sampler.c — a GPU-free check of kernels/sample.cu's ALGORITHM against
 * the CPU sampler (tm_sampler_sample / tm_sampler_kept_set): the same rank
 * keys, the same 8-bit radix descents (count and 2^-42 fixed-point mass
 * histograms), the same kept predicate and the same warp-order double sums
 * and scans of the draw, run sequentially on the host (a copy of the
 * kernel's logic: keep it in step when sample.cu changes). It does not test
 * the kernel's threads (tests/gpu/test_cuda_fast_kernels.c does, on a GPU).
 * Build and run from the repo root:
 *   cc -std=c11 -O2 -D_GNU_SOURCE -Isrc tests/gpu/emu/emu_sampler.c src/engine/sampler.c \
 *      src/engine/sampler_kernels.c src/engine/sampler_select.c src/engine/sampler_params.c \
 *      src/engine/philox.c \
 *      src/util/status.c -lm -o /tmp/emu_sampler && /tmp/emu_sampler
 * Prints every row where the token or the kept-set size differs; exit 1 if any.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/philox.h"
#include "engine/sampler.h"

#define NW 32
typedef unsigned long long u64;
static float clean(float v) { return v != v ? -INFINITY : v; }
static uint32_t ordf(float f) { if (f == 0.0f) f = 0.0f; uint32_t u; memcpy(&u, &f, 4); return (u & 0x80000000u) ? ~u : (u | 0x80000000u); }
static u64 key(float v, int32_t i) { return ((u64)ordf(v) << 32) | (u64)(0xFFFFFFFFu - (uint32_t)i); }
static u64 fix(float w) { return (u64)llrint((double)w * 4398046511104.0); }

static float *Z, *W; static int32_t V;
static u64 zkey(int32_t i) { return key(Z[i], i); }

static int descend(u64 (*kf)(int32_t), int mass, u64 klow, double need, u64 *out)
{
    u64 prefix = 0, pmask = 0, above = 0;
    for (int shift = 56; shift >= 0; shift -= 8) {
        unsigned cnt[256] = {0}; u64 ms[256] = {0};
        for (int32_t i = 0; i < V; i++) {
            u64 k = kf(i);
            if (k < klow || (k & pmask) != prefix) continue;
            int d = (int)((k >> shift) & 255); cnt[d]++; if (mass) ms[d] += fix(W[i]);
        }
        int sel = -1;
        for (int d = 255; d >= 0; d--) {
            u64 val = mass ? ms[d] : cnt[d];
            if (cnt[d] && (double)(above + val) >= need) { sel = d; break; }
            above += val;
        }
        if (sel < 0) return 0;
        prefix |= (u64)sel << shift; pmask |= 0xFFull << shift;
        if (cnt[sel] == 1 && shift > 0) {
            for (int32_t i = 0; i < V; i++) { u64 k = kf(i); if (k >= klow && (k & pmask) == prefix) *out = k; }
            return 1;
        }
    }
    *out = prefix; return 1;
}

static void butterfly(double *v) { for (int o = 16; o > 0; o >>= 1) { double t[32]; for (int l = 0; l < 32; l++) t[l] = v[l] + v[l ^ o]; memcpy(v, t, sizeof t); } }

static u64 g_cut; static float g_minp;
static float kw(int32_t i) { float x = W[i]; return (x > 0.0f && x >= g_minp && zkey(i) >= g_cut) ? x : 0.0f; }

/* returns token (-1 error), n_kept */
static int32_t gpu_emu(const float *L, const tm_sampling_params *P, uint64_t rk, uint64_t ti, const int32_t *prev, int32_t n_prev, int32_t n_prompt, int *n_kept)
{
    int rep = P->repetition_penalty != 1.0f, pf = P->presence_penalty != 0.0f || P->frequency_penalty != 0.0f;
    static int cnt[1 << 21];
    for (int32_t i = 0; i < V; i++) Z[i] = clean(L[i]);
    int32_t from = rep ? 0 : n_prompt;
    if (rep || pf) {
        for (int32_t i = from; i < n_prev; i++) { int32_t t = prev[i]; if (t < 0 || t >= V) continue; if (i >= n_prompt) cnt[t] += 1; else cnt[t] |= 0x40000000; }
        for (int32_t i = from; i < n_prev; i++) {
            int32_t t = prev[i]; if (t < 0 || t >= V) continue;
            int old = cnt[t]; cnt[t] = 0; if (!old) continue;
            float v = clean(L[t]);
            if (rep) v = v > 0.0f ? v / P->repetition_penalty : v * P->repetition_penalty;
            int c = old & (0x40000000 - 1);
            if (c > 0) v = v - (P->frequency_penalty * (float)c + P->presence_penalty);
            Z[t] = v;
        }
    }
    *n_kept = 1;
    if (P->temperature < 1e-5f || P->top_k == 1) {
        float bv = -INFINITY; int bi = -1;
        for (int32_t i = 0; i < V; i++) if (Z[i] > bv) { bv = Z[i]; bi = i; }
        if (bi < 0) *n_kept = 0;
        return bi;
    }
    float invT = 1.0f / P->temperature, zmax = -INFINITY; int bi = -1;
    for (int32_t i = 0; i < V; i++) { Z[i] = Z[i] * invT; if (Z[i] > zmax) { zmax = Z[i]; bi = i; } }
    if (bi < 0) { *n_kept = 0; return -1; }
    if (isinf(zmax)) return bi;
    for (int32_t i = 0; i < V; i++) W[i] = tm_sampler_exp(Z[i] - zmax); /* smp_exp */
    u64 cut = 0;
    if (P->top_k > 1 && P->top_k < V) descend(zkey, 0, 0, (double)P->top_k, &cut);
    if (P->top_p < 1.0f) {
        u64 zf = 0; for (int32_t i = 0; i < V; i++) if (zkey(i) >= cut) zf += fix(W[i]);
        u64 kp; if (descend(zkey, 1, cut, (double)P->top_p * (double)zf, &kp)) cut = kp;
    }
    g_cut = cut; g_minp = P->min_p;
    int32_t C = ((V + NW - 1) / NW + 31) / 32 * 32;
    double wsum[NW]; int kept = 0, last_all = -1;
    for (int w = 0; w < NW; w++) {
        int32_t lo = w * C, hi = lo + C < V ? lo + C : V;
        double lane[32] = {0};
        for (int32_t b = lo; b < hi; b += 32) for (int l = 0; l < 32; l++) { int32_t i = b + l; if (i < hi) { float x = kw(i); if (x > 0) { lane[l] += x; kept++; last_all = i; } } }
        butterfly(lane); wsum[w] = lane[0];
    }
    double total = 0; for (int w = 0; w < NW; w++) total += wsum[w];
    *n_kept = kept;
    double u = tm_philox_uniform(P->seed, rk, ti), target = u * total, pre = 0; int wsel = -1;
    for (int w = 0; w < NW; w++) { if (pre + wsum[w] > target) { wsel = w; break; } pre += wsum[w]; }
    if (wsel < 0) return last_all;
    int32_t lo = wsel * C, hi = lo + C < V ? lo + C : V;
    double cum = pre; int found = -1, lastk = -1;
    for (int32_t b = lo; b < hi && found < 0; b += 32) {
        double sc[32]; float x[32];
        for (int l = 0; l < 32; l++) { int32_t i = b + l; x[l] = i < hi ? kw(i) : 0.0f; sc[l] = x[l]; }
        for (int o = 1; o < 32; o <<= 1) { double t[32]; for (int l = 0; l < 32; l++) t[l] = sc[l] + (l >= o ? sc[l - o] : 0.0); for (int l = 0; l < 32; l++) if (l >= o) sc[l] = t[l]; }
        for (int l = 0; l < 32; l++) if (x[l] > 0 && cum + sc[l] > target) { found = b + l; break; }
        for (int l = 31; l >= 0; l--) if (x[l] > 0) { lastk = b + l; break; }
        cum += sc[31];
    }
    return found >= 0 ? found : lastk;
}

static uint64_t rs = 88172645463325252ull;
static float frand(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (float)((rs >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f; }

int main(void)
{
    int32_t vocabs[] = {50, 1000, 32000, 151936};
    int bad = 0, total = 0, badk = 0;
    for (int vi = 0; vi < 4; vi++) {
        V = vocabs[vi];
        Z = malloc(V * 4); W = malloc(V * 4);
        float *L = malloc(V * 4); int32_t *ids = malloc(V * 4);
        tm_sampler *s; tm_err err; tm_sampler_create(V, &s, &err);
        int rows = V > 100000 ? 150 : 600;
        for (int r = 0; r < rows; r++) {
            int dist = r % 5;
            for (int32_t i = 0; i < V; i++) L[i] = frand() * 6.0f;
            if (dist == 1) L[rs % V] += 15, L[(rs >> 20) % V] += 13;
            if (dist == 2) for (int32_t i = 0; i < V; i++) L[i] = floorf(L[i] * 2.0f) * 0.5f;
            if (dist == 3) { for (int32_t i = 0; i < V; i += 37) L[i] = NAN; for (int32_t i = 5; i < V; i += 41) L[i] = -INFINITY; for (int32_t i = 9; i < V; i += 43) L[i] = -0.0f; }
            if (dist == 4) for (int32_t i = 0; i < V; i++) L[i] = frand() * 0.5f - 3.0f;
            tm_sampling_params P; tm_sampling_params_default(&P);
            int k = (r / 5) % 16;
            float tv[] = {0.0f, 0.3f, 0.7f, 1.0f, 1.5f, 5.0f};
            P.temperature = tv[(r / 3) % 6];
            if (k & 1) P.top_k = 1 + (int)(rs % (V < 300 ? V : 300));
            if (k & 2) P.top_p = 0.05f + 0.9f * (frand() + 1) / 2;
            if (k & 4) P.min_p = 0.1f * (frand() + 1) / 2;
            if (k & 8) P.repetition_penalty = 1.3f, P.frequency_penalty = 0.5f, P.presence_penalty = -0.7f;
            if (r % 7 == 0) P.top_k = V + 3;
            if (r % 11 == 0) P.top_k = V - 1;
            P.seed = rs;
            int32_t prev[100];
            for (int i = 0; i < 100; i++) prev[i] = (int32_t)(rs % V), frand();
            for (int i = 70; i < 100; i += 3) prev[i] = prev[i - 10];
            tm_sample_result res;
            tm_status st = tm_sampler_sample(s, L, &P, r % 3, r, prev, 100, 60, &res, &err);
            int nk; int32_t g = gpu_emu(L, &P, r % 3, r, prev, 100, 60, &nk);
            int32_t nids = 0; tm_sampler_kept_set(s, L, &P, prev, 100, 60, ids, &nids, &err);
            total++;
            if ((st != TM_OK ? -1 : res.token) != g) { bad++; printf("V %d row %d: cpu %d emu %d (T %g k %d p %g minp %g)\n", V, r, st ? -1 : res.token, g, P.temperature, P.top_k, P.top_p, P.min_p); }
            else if (st == TM_OK && nids != nk) { badk++; printf("V %d row %d: kept cpu %d emu %d\n", V, r, nids, nk); }
        }
        tm_sampler_destroy(s); free(Z); free(W); free(L); free(ids);
    }
    printf("%d rows, %d token mismatches, %d kept-size mismatches\n", total, bad, badk);
    return bad || badk;
}
