/* sample.cu — GPU sampling for a batch of logit rows: the CPU sampler's
 * pipeline (src/engine/sampler.c) step for step, so that only token ids
 * (and the requested logprobs) need to leave the device.
 *
 * One thread block of 1024 threads per row (a block works through rows
 * blockIdx.x, + gridDim.x, ... with its own workspace slot: z[vocab],
 * w[vocab] fp32 and penalty counters[vocab] int32). Per row:
 *  0. logprobs (when asked), from the raw logits: max, sum of exp (double),
 *     the top-N by (logit desc, id asc) via a radix select on 64-bit rank
 *     keys, then the chosen token's log-softmax at the end.
 *  1. penalties: counters of prompt/generated occurrences with atomics; each
 *     distinct token's penalised logit is written once by whichever thread
 *     atomically takes its counter back to zero (so the counters are zero
 *     again when the row is done). The float operations are the CPU's, one
 *     rounding each (__fdiv_rn/__fmul_rn/__fsub_rn: no FMA contraction).
 *  2. greedy (temperature < 1e-5 or top_k == 1): argmax, ties to the lowest
 *     id, -inf/NaN never chosen.
 *  3. z = logit * (1/T) (the CPU's float ops), z_max and its lowest id; +inf
 *     wins outright. w = exp(z - z_max) rounded to float.
 *  4. top_k: the k-th best rank key (z desc, id asc: key = ord(z) << 32 |
 *     ~id) by an 8-bit radix descent over the vocabulary (count histograms).
 *  5. top_p: the shortest rank prefix (of the top-k set) whose mass reaches
 *     top_p * its total, by the same descent over mass histograms.
 *  6. min_p: w >= min_p (w = p / p_max). The kept set is
 *     {key >= cut, w > 0, w >= min_p}.
 *  7. one draw: u = Philox-4x32-10(seed, request_key, token_index) with the
 *     CPU's counter/key layout and 53-bit construction (philox.h); walk the
 *     kept set in ascending id order, the first token whose running weight
 *     sum exceeds u * total.
 *
 * Where the GPU may choose another token than the CPU (same logits, same
 * params; measured by tests/gpu/test_cuda_fast_kernels.c):
 *  - w: none: both use tm_sampler_exp's float operations (smp_exp).
 *  - sums: the CPU accumulates doubles in its own orders (1024-id blocks of
 *    8 lanes, or by histogram bucket for top_p); the GPU sums the draw's weights in
 *    doubles in a fixed warp-tree order, and the top_p masses in 2^-42
 *    fixed point (uint64, so the histogram atomics are exactly associative
 *    and the result is run-to-run deterministic).
 *  Both only move a cumulative-probability comparison by ~1e-8 relative:
 *  the GPU's top_p cut or its draw can differ from the CPU's only when the
 *  CPU's own comparison (running mass vs top_p * Z, or running weight vs
 *  u * total) is that close to its boundary. Every set decision (penalties,
 *  greedy, z, rank order and ties, top_k, min_p) and the draw u are exact.
 *  The logprobs differ from the CPU's by the same few ulps.
 */
#include <math.h>

#include "common.cuh"

#define SMP_THREADS 1024
#define SMP_WARPS (SMP_THREADS / 32)
#define SMP_FIX_SCALE 4398046511104.0 /* 2^42: vocab <= 2^21 keeps sums < 2^63 */
#define SMP_MAX_VOCAB (1 << 21)
#define SMP_SEEN 0x40000000
#define SMP_GREEDY_EPS 1e-5f /* TM_SAMPLER_GREEDY_EPS */

/* ---- Philox-4x32-10 (philox.c, bit for bit) ------------------------------------ */

static __host__ __device__ __forceinline__ double smp_philox_uniform(uint64_t seed, uint64_t rk, uint64_t idx)
{
    uint32_t c0 = (uint32_t)idx, c1 = (uint32_t)(idx >> 32), c2 = (uint32_t)rk, c3 = (uint32_t)(rk >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        const uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0, hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    const uint64_t a = c0 >> 5, b = c1 >> 6;
    return (double)((a << 26) | b) * (1.0 / 9007199254740992.0);
}

/* ---- small helpers ----------------------------------------------------------------- */

static __device__ __forceinline__ float smp_clean(float v) { return v != v ? -INFINITY : v; }

/* Monotone map float -> uint32 (-0 and +0 equal, as the CPU's compares). */
static __device__ __forceinline__ uint32_t smp_ord(float f)
{
    if (f == 0.0f) f = 0.0f;
    const uint32_t u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* Rank key: larger = better (value desc, then id asc). */
static __device__ __forceinline__ unsigned long long smp_key(float v, int32_t i)
{
    return ((unsigned long long)smp_ord(v) << 32) | (unsigned long long)(0xFFFFFFFFu - (uint32_t)i);
}

static __device__ __forceinline__ unsigned long long smp_fix(float w)
{
    return (unsigned long long)__double2ull_rn((double)w * SMP_FIX_SCALE);
}

/* w = tm_sampler_exp(x) (src/engine/sampler_kernels.c), op for op with
 * explicit roundings (no contraction), so the GPU's weights are the CPU's
 * bits: 0 below -87 (and -inf / NaN); k = rint(x * log2 e); Cody-Waite
 * reduction and the degree-5 polynomial with FMAs; times 2^k. */
static __device__ __forceinline__ float smp_exp(float x)
{
    if (!(x >= -87.0f)) return 0.0f;
    if (x > 0.0f) x = 0.0f;
    const float k = rintf(__fmul_rn(x, 1.44269504088896341f));
    float r = __fmaf_rn(k, -0.693359375f, x);
    r = __fmaf_rn(k, 2.12194440e-4f, r);
    float p = 1.9875691500E-4f;
    p = __fmaf_rn(p, r, 1.3981999507E-3f);
    p = __fmaf_rn(p, r, 8.3334519073E-3f);
    p = __fmaf_rn(p, r, 4.1665795894E-2f);
    p = __fmaf_rn(p, r, 1.6666665459E-1f);
    p = __fmaf_rn(p, r, 5.0000001201E-1f);
    p = __fmaf_rn(p, __fmul_rn(r, r), r);
    p = __fadd_rn(p, 1.0f);
    return __fmul_rn(p, __int_as_float(((int)k + 127) << 23));
}

struct smp_shared {
    unsigned int hcnt[256];
    unsigned long long hmass[256];
    float wf[SMP_WARPS];
    int wi[SMP_WARPS];
    double wd[SMP_WARPS];
    unsigned long long wu[SMP_WARPS];
    int sel;
    unsigned int sel_cnt;
    unsigned long long above, key;
    int top_n;
    unsigned long long top_key[TM_K_SAMPLE_MAX_TOP];
    int token;
};

/* (v, i) beats (bv, bi): value desc, id asc; i < 0 = nothing. */
static __device__ __forceinline__ void smp_better(float &bv, int &bi, float v, int i)
{
    if (i >= 0 && (bi < 0 || v > bv || (v == bv && i < bi))) {
        bv = v;
        bi = i;
    }
}

/* Block-wide argmax; every thread gets the result. */
static __device__ void smp_block_argmax(float &bv, int &bi, smp_shared &sh)
{
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        smp_better(bv, bi, ov, oi);
    }
    if (lane == 0) {
        sh.wf[w] = bv;
        sh.wi[w] = bi;
    }
    __syncthreads();
    bv = -INFINITY;
    bi = -1;
    for (int k = 0; k < SMP_WARPS; k++) smp_better(bv, bi, sh.wf[k], sh.wi[k]);
    __syncthreads();
}

static __device__ float smp_block_max(float v, smp_shared &sh)
{
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (lane == 0) sh.wf[w] = v;
    __syncthreads();
    v = -INFINITY;
    for (int k = 0; k < SMP_WARPS; k++) v = fmaxf(v, sh.wf[k]);
    __syncthreads();
    return v;
}

/* Deterministic double sum: xor butterflies give every lane the same bits,
 * then the warps' sums in warp order. */
static __device__ double smp_block_sum(double v, smp_shared &sh)
{
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) sh.wd[w] = v;
    __syncthreads();
    v = 0.0;
    for (int k = 0; k < SMP_WARPS; k++) v += sh.wd[k];
    __syncthreads();
    return v;
}

static __device__ unsigned long long smp_block_sum_u64(unsigned long long v, smp_shared &sh)
{
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) sh.wu[w] = v;
    __syncthreads();
    v = 0;
    for (int k = 0; k < SMP_WARPS; k++) v += sh.wu[k];
    __syncthreads();
    return v;
}

/* Radix descent over the rank keys of the candidates (key >= klow): the
 * best-first position where the running count (mass_mode 0) or mass
 * (mass_mode 1, smp_fix(w)) first reaches `need`; returns its key in *out,
 * or 0 (false) when the candidates' total never reaches need. */
template <typename KeyF, typename MassF>
static __device__ bool smp_descend(int32_t V, KeyF keyf, MassF massf, int mass_mode, unsigned long long klow,
                                   double need, smp_shared &sh, unsigned long long *out)
{
    unsigned long long prefix = 0, pmask = 0, above = 0;
    for (int shift = 56; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) {
            sh.hcnt[b] = 0;
            sh.hmass[b] = 0;
        }
        __syncthreads();
        for (int32_t i = threadIdx.x; i < V; i += blockDim.x) {
            const unsigned long long k = keyf(i);
            if (k < klow || (k & pmask) != prefix) continue;
            const int d = (int)((k >> shift) & 255u);
            atomicAdd(&sh.hcnt[d], 1u);
            if (mass_mode) atomicAdd(&sh.hmass[d], massf(i));
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int sel = -1;
            for (int d = 255; d >= 0; d--) {
                const unsigned long long val = mass_mode ? sh.hmass[d] : (unsigned long long)sh.hcnt[d];
                if (sh.hcnt[d] && (double)(above + val) >= need) {
                    sel = d;
                    break;
                }
                above += val;
            }
            sh.sel = sel;
            sh.sel_cnt = sel >= 0 ? sh.hcnt[sel] : 0u;
            sh.above = above;
        }
        __syncthreads();
        const int sel = sh.sel;
        const unsigned int sel_cnt = sh.sel_cnt;
        above = sh.above;
        __syncthreads();
        if (sel < 0) return false;
        prefix |= (unsigned long long)sel << shift;
        pmask |= 0xFFull << shift;
        if (sel_cnt == 1 && shift > 0) { /* one candidate left: find it */
            for (int32_t i = threadIdx.x; i < V; i += blockDim.x) {
                const unsigned long long k = keyf(i);
                if (k >= klow && (k & pmask) == prefix) sh.key = k;
            }
            __syncthreads();
            *out = sh.key;
            __syncthreads();
            return true;
        }
    }
    *out = prefix;
    return true;
}

/* ---- the kernel --------------------------------------------------------------------- */

static __global__ void __launch_bounds__(SMP_THREADS) k_sample(tm_k_sample_args a, int32_t slots)
{
    __shared__ smp_shared sh;
    const int32_t V = a.vocab;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    float *z = reinterpret_cast<float *>(reinterpret_cast<char *>(a.workspace) + (size_t)blockIdx.x * 12 * V);
    float *w = z + V;
    int *cnt = reinterpret_cast<int *>(w + V);

    for (int32_t r = blockIdx.x; r < a.n_rows; r += slots) {
        const tm_k_sample_params P = a.params[r];
        const float *L = a.logits + (size_t)r * a.ld;
        int token = -1, status = 0, n_kept = 0;

        /* 0. logprob statistics over the raw logits */
        const int want_lp = P.logprobs || P.top_logprobs > 0;
        double lse = 0.0;
        float lmax = -INFINITY;
        int n_top = 0;
        if (want_lp) {
            float mx = -INFINITY;
            for (int32_t i = tid; i < V; i += SMP_THREADS) mx = fmaxf(mx, smp_clean(L[i]));
            lmax = smp_block_max(mx, sh);
            double sum = 0.0;
            if (isfinite(lmax))
                for (int32_t i = tid; i < V; i += SMP_THREADS) {
                    const float v = L[i];
                    if (v == v) sum += (double)smp_exp(__fsub_rn(v, lmax));
                }
            sum = smp_block_sum(sum, sh);
            lse = isfinite(lmax) ? (double)lmax + log(sum) : (double)lmax;
            n_top = P.top_logprobs < V ? P.top_logprobs : V;
            if (n_top > 0) {
                auto rawkey = [&](int32_t i) { return smp_key(smp_clean(L[i]), i); };
                auto nomass = [&](int32_t i) { return 0ull; };
                unsigned long long kn = 0;
                smp_descend(V, rawkey, nomass, 0, 0ull, (double)n_top, sh, &kn);
                if (tid == 0) sh.top_n = 0;
                __syncthreads();
                for (int32_t i = tid; i < V; i += SMP_THREADS) {
                    const unsigned long long k = rawkey(i);
                    if (k >= kn) {
                        const int slot = atomicAdd(&sh.top_n, 1);
                        if (slot < TM_K_SAMPLE_MAX_TOP) sh.top_key[slot] = k;
                    }
                }
                __syncthreads();
            }
        }

        /* 1. penalties: z[] = penalised logits (NaN -> -inf) */
        const int rep = P.repetition_penalty != 1.0f;
        const int pf = P.presence_penalty != 0.0f || P.frequency_penalty != 0.0f;
        const int pen = (rep || pf) && a.prev; /* no prev array: no tokens to penalise */
        const int32_t *prev = pen ? a.prev + P.prev_offset : nullptr;
        const int32_t from = rep ? 0 : P.n_prompt;
        for (int32_t i = tid; i < V; i += SMP_THREADS) z[i] = smp_clean(L[i]);
        if (pen) {
            for (int32_t i = from + tid; i < P.n_prev; i += SMP_THREADS) {
                const int32_t t = prev[i];
                if (t < 0 || t >= V) continue;
                if (i >= P.n_prompt)
                    atomicAdd(&cnt[t], 1); /* generated: count (< 2^30, never carries into SEEN) */
                else
                    atomicOr(&cnt[t], SMP_SEEN); /* prompt only: marked for the repetition penalty */
            }
        }
        __syncthreads();
        if (pen) {
            for (int32_t i = from + tid; i < P.n_prev; i += SMP_THREADS) {
                const int32_t t = prev[i];
                if (t < 0 || t >= V) continue;
                const int old = atomicExch(&cnt[t], 0);
                if (!old) continue; /* another thread has this token */
                float v = smp_clean(L[t]);
                if (rep) v = v > 0.0f ? __fdiv_rn(v, P.repetition_penalty) : __fmul_rn(v, P.repetition_penalty);
                const int c = old & (SMP_SEEN - 1);
                if (c > 0) v = __fsub_rn(v, __fadd_rn(__fmul_rn(P.frequency_penalty, (float)c), P.presence_penalty));
                z[t] = v;
            }
        }
        __syncthreads();
        /* 2. greedy */
        if (P.temperature < SMP_GREEDY_EPS || P.top_k == 1) {
            float bv = -INFINITY;
            int bi = -1;
            for (int32_t i = tid; i < V; i += SMP_THREADS) {
                const float v = z[i];
                if (v > bv) { /* strided ascending ids: strict > keeps the lowest */
                    bv = v;
                    bi = i;
                }
            }
            smp_block_argmax(bv, bi, sh);
            token = bi;
            n_kept = bi >= 0;
            if (bi < 0) status = 1;
        } else {
            /* 3. z = logit * (1/T), z_max */
            const float invT = __fdiv_rn(1.0f, P.temperature);
            float bv = -INFINITY;
            int bi = -1;
            for (int32_t i = tid; i < V; i += SMP_THREADS) {
                const float v = __fmul_rn(z[i], invT);
                z[i] = v;
                if (v > bv) {
                    bv = v;
                    bi = i;
                }
            }
            smp_block_argmax(bv, bi, sh);
            const float zmax = bv;
            if (bi < 0) {
                status = 1;
            } else if (isinf(zmax)) {
                token = bi;
                n_kept = 1;
            } else {
                for (int32_t i = tid; i < V; i += SMP_THREADS) w[i] = smp_exp(__fsub_rn(z[i], zmax));
                __syncthreads();
                auto zkey = [&](int32_t i) { return smp_key(z[i], i); };
                auto wmass = [&](int32_t i) { return smp_fix(w[i]); };
                unsigned long long cut = 0;
                /* 4. top_k */
                if (P.top_k > 1 && P.top_k < V) smp_descend(V, zkey, wmass, 0, 0ull, (double)P.top_k, sh, &cut);
                /* 5. top_p over the (top-k) set */
                if (P.top_p < 1.0f) {
                    unsigned long long zf = 0;
                    for (int32_t i = tid; i < V; i += SMP_THREADS)
                        if (zkey(i) >= cut) zf += smp_fix(w[i]);
                    zf = smp_block_sum_u64(zf, sh);
                    unsigned long long kp = 0;
                    if (smp_descend(V, zkey, wmass, 1, cut, (double)P.top_p * (double)zf, sh, &kp)) cut = kp;
                }
                /* 6-7. the kept set and the draw, ascending ids: warp k owns
                 * [k*C, (k+1)*C), lanes take consecutive ids */
                const float minp = P.min_p;
                auto kw = [&](int32_t i) {
                    const float x = w[i];
                    return (x > 0.0f && x >= minp && zkey(i) >= cut) ? x : 0.0f;
                };
                const int32_t C = ((V + SMP_WARPS - 1) / SMP_WARPS + 31) / 32 * 32;
                const int32_t lo = warp * C, hi = lo + C < V ? lo + C : V;
                double acc = 0.0;
                int kept = 0, last = -1;
                for (int32_t base = lo; base < hi; base += 32) {
                    const int32_t i = base + lane;
                    if (i < hi) {
                        const float x = kw(i);
                        if (x > 0.0f) {
                            acc += x;
                            kept++;
                            last = i;
                        }
                    }
                }
                for (int o = 16; o > 0; o >>= 1) {
                    acc += __shfl_xor_sync(0xffffffffu, acc, o);
                    kept += __shfl_xor_sync(0xffffffffu, kept, o);
                    last = max(last, __shfl_xor_sync(0xffffffffu, last, o));
                }
                if (lane == 0) {
                    sh.wd[warp] = acc;
                    sh.wi[warp] = last;
                    sh.wu[warp] = (unsigned long long)kept;
                }
                __syncthreads();
                double total = 0.0;
                int last_all = -1;
                for (int k = 0; k < SMP_WARPS; k++) {
                    total += sh.wd[k];
                    n_kept += (int)sh.wu[k];
                    last_all = max(last_all, sh.wi[k]);
                }
                const double u = smp_philox_uniform(P.seed, P.request_key, P.token_index);
                const double target = u * total;
                double pre = 0.0;
                int wsel = -1;
                for (int k = 0; k < SMP_WARPS; k++) {
                    if (pre + sh.wd[k] > target) {
                        wsel = k;
                        break;
                    }
                    pre += sh.wd[k];
                }
                if (tid == 0) sh.token = last_all;
                __syncthreads();
                if (warp == wsel) {
                    double cum = pre;
                    int found = -1, lastk = -1;
                    for (int32_t base = lo; base < hi && found < 0; base += 32) {
                        const int32_t i = base + lane;
                        const float x = i < hi ? kw(i) : 0.0f;
                        double sc = x;
                        for (int o = 1; o < 32; o <<= 1) {
                            const double y = __shfl_up_sync(0xffffffffu, sc, o);
                            if (lane >= o) sc += y;
                        }
                        const unsigned hit = __ballot_sync(0xffffffffu, x > 0.0f && cum + sc > target);
                        const unsigned any = __ballot_sync(0xffffffffu, x > 0.0f);
                        if (hit) found = base + __ffs(hit) - 1;
                        if (any) lastk = base + 31 - __clz(any);
                        cum += __shfl_sync(0xffffffffu, sc, 31);
                    }
                    if (lane == 0) sh.token = found >= 0 ? found : lastk;
                }
                __syncthreads();
                token = sh.token;
                __syncthreads();
                if (token < 0) status = 1; /* cannot happen: z_max's token has w = 1 */
            }
        }

        /* outputs */
        if (tid == 0) {
            a.out_token[r] = token;
            if (a.out_status) a.out_status[r] = status;
            if (a.out_n_kept) a.out_n_kept[r] = n_kept;
            const int ok = token >= 0 && want_lp;
            const int pinf = isinf(lmax) && lmax > 0.0f;
            if (a.out_logprob) {
                float lp = 0.0f;
                if (ok && P.logprobs) {
                    const float lt = L[token];
                    lp = lt == lt ? (float)((double)lt - lse) : -INFINITY;
                    if (pinf) lp = lt == lmax ? 0.0f : -INFINITY;
                }
                a.out_logprob[r] = lp;
            }
            int nt = 0;
            if (ok && n_top > 0) {
                nt = sh.top_n < n_top ? sh.top_n : n_top;
                for (int j = 1; j < nt; j++) { /* insertion sort, best first */
                    const unsigned long long k = sh.top_key[j];
                    int q = j;
                    while (q > 0 && sh.top_key[q - 1] < k) {
                        sh.top_key[q] = sh.top_key[q - 1];
                        q--;
                    }
                    sh.top_key[q] = k;
                }
            }
            if (a.out_n_top) a.out_n_top[r] = nt;
            if (a.out_top_ids)
                for (int j = 0; j < TM_K_SAMPLE_MAX_TOP; j++) {
                    int id = -1;
                    float lp = 0.0f;
                    if (j < nt) {
                        id = (int)(0xFFFFFFFFu - (uint32_t)(sh.top_key[j] & 0xFFFFFFFFull));
                        const float v = smp_clean(L[id]);
                        lp = pinf ? (v == lmax ? 0.0f : -INFINITY) : (float)((double)v - lse);
                    }
                    a.out_top_ids[(size_t)r * TM_K_SAMPLE_MAX_TOP + j] = id;
                    if (a.out_top_logprobs) a.out_top_logprobs[(size_t)r * TM_K_SAMPLE_MAX_TOP + j] = lp;
                }
        }
        __syncthreads(); /* shared state and the slot's buffers are reused by the next row */
    }
}

static __global__ void k_philox(const uint64_t *seed, const uint64_t *key, const uint64_t *index, int32_t n,
                                double *out)
{
    for (int32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        out[i] = smp_philox_uniform(seed[i], key[i], index[i]);
}

extern "C" size_t tm_k_sample_workspace_bytes(int32_t vocab, int32_t slots)
{
    if (vocab <= 0 || slots <= 0) return 0;
    return (size_t)slots * 12 * (size_t)vocab;
}

extern "C" int tm_k_sample(const tm_k_sample_args *a, tm_kstream stream)
{
    if (a->n_rows <= 0) return 0;
    if (a->vocab <= 0 || a->vocab > SMP_MAX_VOCAB || a->ld < a->vocab || !a->logits || !a->params || !a->workspace ||
        !a->out_token)
        return (int)cudaErrorInvalidValue;
    const size_t per = tm_k_sample_workspace_bytes(a->vocab, 1);
    int64_t slots = (int64_t)(a->workspace_bytes / per);
    if (slots < 1) return (int)cudaErrorInvalidValue;
    if (slots > a->n_rows) slots = a->n_rows;
    if (slots > 65535) slots = 65535;
    k_sample<<<(unsigned)slots, SMP_THREADS, 0, stream>>>(*a, (int32_t)slots);
    return (int)cudaGetLastError();
}

extern "C" int tm_k_philox_uniform(const uint64_t *seed, const uint64_t *key, const uint64_t *index, int32_t n,
                                   double *out, tm_kstream stream)
{
    if (n <= 0) return 0;
    k_philox<<<tm_grid_for(n, 256), 256, 0, stream>>>(seed, key, index, n, out);
    return (int)cudaGetLastError();
}
