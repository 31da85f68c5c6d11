/* test_cuda_fast_kernels.c — the fast-path kernels of kernels.h (tensor-core
 * prefill attention, GQA decode attention, GPU sampling) against the CPU
 * reference on random inputs:
 *  - attention: tm_cpu_attention_head (src/backend/cpu/cpu_ops.c) over the
 *    same bf16 K/V (exact in fp32), mixed batches split by
 *    tm_k_attention_plan into decode items and 64-token prefill tiles, shapes
 *    with head_dim 48/64/96/128, GQA groups 1..20 (more than 16 query heads
 *    per KV head), block sizes 5/7/16, chunks that are not multiples of the
 *    tile, context 1 and > 4096, decode with and without context splits.
 *    Cache slots outside every sequence's context hold NaN (a read of one
 *    would show); outputs are poisoned (NaN) before each run, and rows the
 *    decode kernel must not touch are checked to be still poisoned.
 *    Tolerance: bf16 K/V are exact, queries enter as a bf16 hi/lo pair, P
 *    and the output are bf16: max |err| <= 1e-2 * max(|ref|, 0.1) and
 *    ||err|| / ||ref|| <= 1e-2.
 *  - sampling: tm_k_sample vs tm_sampler_sample (src/engine/sampler.c) on
 *    rows of every parameter kind (greedy, top_k 1, temperature, top_k,
 *    top_p, min_p, penalties, logprobs, top_logprobs) and logit shapes
 *    (flat, peaked, many exact ties, NaN/-inf/-0 entries, all -inf, +inf),
 *    vocab 1000 / 32000 / 151936: the same token, the same kept-set size and
 *    logprobs within 2e-6 relative; a different token is accepted only where
 *    the CPU's own cumulative decision (top_p cut or draw) lies within 1e-6
 *    relative of its boundary (printed as INFO, counted). Also: Philox
 *    draws bit-identical to tm_philox_uniform, two runs bit-identical, the
 *    penalty counters back to zero.
 * TOKENMILL_GPU_TEST_QUICK=1 drops the largest cases (the 4100-token
 * prefill, the 48-sequence decode, vocab 151936) for compute-sanitizer runs.
 * Prints "PASS|FAIL name err tol"; exit 1 on a failure, 77 without a device.
 * Built by tests/gpu/build.sh, run by tests/gpu/run.sh.
 */
#include "gpucheck.h"
#include "kernels.h"

#include "backend/cpu/cpu_ops.h"
#include "engine/philox.h"
#include "engine/sampler.h"

static float *rand_f32(size_t n, float scale)
{
    float *p = gc_hmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = gc_rand() * scale;
    return p;
}

/* ======================= attention ========================================== */

typedef struct fbatch {
    int32_t n_seqs, n_tokens, bs, n_blocks, bt_stride;
    int32_t *seq_start, *seq_len, *positions, *tok_seq, *bt;
} fbatch;

/* Sequences with (new tokens, cached length after the step); block ids
 * scrambled so that tables are not contiguous. */
static fbatch fb_make(int32_t n_seqs, const int32_t *n_new, const int32_t *len, int32_t bs)
{
    fbatch p = {.n_seqs = n_seqs, .bs = bs};
    int32_t stride = 1, total = 0;
    for (int32_t s = 0; s < n_seqs; s++) {
        int32_t nb = (len[s] + bs - 1) / bs;
        if (nb > stride) stride = nb;
        total += nb;
        p.n_tokens += n_new[s];
    }
    p.bt_stride = stride;
    p.n_blocks = total + 3;
    p.seq_start = gc_hmalloc((size_t)(n_seqs + 1) * 4);
    p.seq_len = gc_hmalloc((size_t)n_seqs * 4);
    p.positions = gc_hmalloc((size_t)p.n_tokens * 4);
    p.tok_seq = gc_hmalloc((size_t)p.n_tokens * 4);
    p.bt = gc_hmalloc((size_t)n_seqs * stride * 4);
    int32_t mul = 7;
    for (;; mul++) {
        int32_t a = mul, c = p.n_blocks;
        while (c) {
            int32_t r = a % c;
            a = c;
            c = r;
        }
        if (a == 1) break;
    }
    int32_t next = 0, t = 0;
    for (int32_t s = 0; s < n_seqs; s++) {
        p.seq_start[s] = t;
        p.seq_len[s] = len[s];
        int32_t nb = (len[s] + bs - 1) / bs;
        for (int32_t j = 0; j < nb; j++)
            p.bt[(size_t)s * stride + j] = (int32_t)(((int64_t)(next++) * mul + 1) % p.n_blocks);
        for (int32_t i = 0; i < n_new[s]; i++, t++) {
            p.positions[t] = len[s] - n_new[s] + i;
            p.tok_seq[t] = s;
        }
    }
    p.seq_start[n_seqs] = t;
    return p;
}

static void fb_free(fbatch *p) { free(p->seq_start), free(p->seq_len), free(p->positions), free(p->tok_seq), free(p->bt); }

static size_t fb_slot(const fbatch *p, int32_t s, int32_t pos)
{
    return (size_t)p->bt[(size_t)s * p->bt_stride + pos / p->bs] * p->bs + (size_t)(pos % p->bs);
}

/* One mixed batch through decode + prefill; every token checked when
 * check_every == 1, else every check_every-th prefill token (decodes always). */
static void test_attention(const char *tag, int32_t nh, int32_t nkv, int32_t hd, int32_t n_seqs, const int32_t *n_new,
                           const int32_t *len, int32_t bs, int32_t check_every)
{
    fbatch pb = fb_make(n_seqs, n_new, len, bs);
    const int32_t T = pb.n_tokens;
    const size_t tok_stride = (size_t)nkv * hd, kv_elems = (size_t)pb.n_blocks * bs * tok_stride;
    uint16_t *k = gc_hmalloc(kv_elems * 2), *v = gc_hmalloc(kv_elems * 2);
    memset(k, 0xFF, kv_elems * 2); /* NaN everywhere no sequence's context is */
    memset(v, 0xFF, kv_elems * 2);
    for (int32_t s = 0; s < n_seqs; s++)
        for (int32_t p = 0; p < len[s]; p++) {
            size_t base = fb_slot(&pb, s, p) * tok_stride;
            for (size_t i = 0; i < tok_stride; i++) {
                k[base + i] = gc_f2bf(gc_rand());
                v[base + i] = gc_f2bf(gc_rand());
            }
        }
    float *q = rand_f32((size_t)T * nh * hd, 2.0f);
    const float scale = (float)(1.0 / sqrt((double)hd));
    int32_t *tiles = gc_hmalloc((size_t)2 * T * 4), *dec = gc_hmalloc((size_t)n_seqs * 4), n_tiles = 0, n_dec = 0;
    tm_k_attention_plan(pb.seq_start, n_seqs, tiles, &n_tiles, dec, &n_dec);
    int32_t max_ctx = 1;
    for (int32_t i = 0; i < n_dec; i++)
        if (pb.positions[dec[i]] + 1 > max_ctx) max_ctx = pb.positions[dec[i]] + 1;

    void *dk = gc_upload(k, kv_elems * 2), *dv = gc_upload(v, kv_elems * 2);
    float *dq = gc_upload(q, (size_t)T * nh * hd * 4);
    int32_t *dpos = gc_upload(pb.positions, (size_t)T * 4), *dseq = gc_upload(pb.tok_seq, (size_t)T * 4);
    int32_t *dbt = gc_upload(pb.bt, (size_t)n_seqs * pb.bt_stride * 4);
    int32_t *dtiles = gc_upload(tiles, (size_t)(n_tiles ? n_tiles : 1) * 2 * 4);
    int32_t *ddec = gc_upload(dec, (size_t)(n_dec ? n_dec : 1) * 4);
    const size_t out_elems = (size_t)T * nh * hd;
    uint16_t *dout = gc_dmalloc(out_elems * 2), *out = gc_hmalloc(out_elems * 2);
    const int64_t ws_floats = 2048 * (int64_t)(hd + 2);
    float *dws = gc_dmalloc((size_t)ws_floats * 4);

    /* the CPU reference's fp32 pools (exact copies of the bf16 values) */
    float *kf = gc_hmalloc(kv_elems * 4), *vf = gc_hmalloc(kv_elems * 4);
    for (size_t i = 0; i < kv_elems; i++) {
        kf[i] = gc_bf2f(k[i]);
        vf[i] = gc_bf2f(v[i]);
    }
    int32_t maxlen = 1;
    for (int32_t s = 0; s < n_seqs; s++)
        if (len[s] > maxlen) maxlen = len[s];
    float *scores = gc_hmalloc((size_t)maxlen * 4), *ref = gc_hmalloc((size_t)hd * 4);
    char *is_dec = gc_hmalloc((size_t)T);
    for (int32_t i = 0; i < n_dec; i++) is_dec[dec[i]] = 1;

    for (int split = 0; split < 2; split++) {
        GC_CUDA(cudaMemset(dout, 0xFF, out_elems * 2));
        tm_k_decode_args da = {.q = dq, .k_cache = dk, .v_cache = dv, .positions = dpos, .tok_seq = dseq,
                               .block_tables = dbt, .bt_stride = pb.bt_stride, .block_size = bs, .n_heads = nh,
                               .n_kv_heads = nkv, .head_dim = hd, .scale = scale, .out = dout, .tokens = ddec,
                               .n_items = n_dec, .max_ctx = max_ctx, .workspace = split ? dws : NULL,
                               .workspace_floats = split ? ws_floats : 0};
        GC_CUDA((cudaError_t)tm_k_attention_decode_gqa(&da, NULL));
        GC_CUDA(cudaDeviceSynchronize());
        gc_download(out, dout, out_elems * 2);
        /* decode alone: its rows written, every other row still poisoned */
        double stray = 0, unwritten = 0;
        for (int32_t t = 0; t < T; t++)
            for (size_t i = 0; i < (size_t)nh * hd; i++) {
                uint16_t b = out[(size_t)t * nh * hd + i];
                if (is_dec[t] && b == 0xFFFF) unwritten++;
                if (!is_dec[t] && b != 0xFFFF) stray++;
            }
        char name[160];
        snprintf(name, sizeof name, "fast_attn_%s%s_decode_rows_only", tag, split ? "_split" : "");
        gc_report(name, stray + unwritten, 0);
        tm_k_fa_args fa = {.q = dq, .k_cache = dk, .v_cache = dv, .positions = dpos, .tok_seq = dseq,
                           .block_tables = dbt, .bt_stride = pb.bt_stride, .block_size = bs, .n_tokens = T,
                           .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .scale = scale, .out = dout,
                           .tiles = dtiles, .n_tiles = n_tiles};
        GC_CUDA((cudaError_t)tm_k_attention_prefill_fa2(&fa, NULL));
        GC_CUDA(cudaDeviceSynchronize());
        gc_download(out, dout, out_elems * 2);

        double nan_count = 0, err = 0, mref = 0, e2 = 0, r2 = 0;
        for (size_t i = 0; i < out_elems; i++)
            if (isnan(gc_bf2f(out[i]))) nan_count++;
        int32_t pre_idx = 0;
        for (int32_t t = 0; t < T; t++) {
            if (!is_dec[t] && (pre_idx++ % check_every) != 0 && t != T - 1) continue;
            const int32_t s = pb.tok_seq[t];
            tm_cpu_kv_view kv = {.k = kf, .v = vf, .block_table = pb.bt + (size_t)s * pb.bt_stride, .block_size = bs,
                                 .n_kv_heads = nkv, .head_dim = hd};
            for (int32_t h = 0; h < nh; h++) {
                tm_cpu_attention_head(q + ((size_t)t * nh + h) * hd, h / (nh / nkv), pb.positions[t] + 1, &kv, scale,
                                      scores, ref);
                for (int32_t d = 0; d < hd; d++) {
                    double g = gc_bf2f(out[((size_t)t * nh + h) * hd + d]), rr = ref[d], e = fabs(g - rr);
                    if (!(e <= err)) err = e;
                    if (fabs(rr) > mref) mref = fabs(rr);
                    e2 += (g - rr) * (g - rr);
                    r2 += rr * rr;
                }
            }
        }
        snprintf(name, sizeof name, "fast_attn_%s%s_all_written", tag, split ? "_split" : "");
        gc_report(name, nan_count, 0);
        snprintf(name, sizeof name, "fast_attn_%s%s_max_abs", tag, split ? "_split" : "");
        gc_report(name, err, 1e-2 * (mref > 0.1 ? mref : 0.1));
        snprintf(name, sizeof name, "fast_attn_%s%s_rel_l2", tag, split ? "_split" : "");
        gc_report(name, r2 > 0 ? sqrt(e2 / r2) : (e2 > 0 ? 1.0 : 0.0), 1e-2);
    }
    cudaFree(dk), cudaFree(dv), cudaFree(dq), cudaFree(dpos), cudaFree(dseq), cudaFree(dbt), cudaFree(dtiles);
    cudaFree(ddec), cudaFree(dout), cudaFree(dws);
    free(k), free(v), free(q), free(tiles), free(dec), free(out), free(kf), free(vf), free(scores), free(ref);
    free(is_dec);
    fb_free(&pb);
}

/* ======================= sampling =========================================== */

static void test_philox(void)
{
    enum { N = 4096 };
    uint64_t *seed = gc_hmalloc(N * 8), *key = gc_hmalloc(N * 8), *idx = gc_hmalloc(N * 8);
    double *u = gc_hmalloc(N * 8);
    for (int i = 0; i < N; i++) {
        seed[i] = ((uint64_t)(gc_rand() * 2e9) << 32) ^ (uint64_t)(int64_t)(gc_rand() * 2e9) ^ (uint64_t)i;
        key[i] = i % 7 == 0 ? UINT64_MAX - (uint64_t)i : (uint64_t)(i % 5);
        idx[i] = i % 11 == 0 ? ((uint64_t)1 << 40) + (uint64_t)i : (uint64_t)i;
    }
    seed[0] = 0, key[0] = 0, idx[0] = 0;
    seed[1] = UINT64_MAX, key[1] = UINT64_MAX, idx[1] = UINT64_MAX;
    uint64_t *ds = gc_upload(seed, N * 8), *dk = gc_upload(key, N * 8), *di = gc_upload(idx, N * 8);
    double *du = gc_dmalloc(N * 8);
    GC_CUDA((cudaError_t)tm_k_philox_uniform(ds, dk, di, N, du, NULL));
    GC_CUDA(cudaDeviceSynchronize());
    gc_download(u, du, N * 8);
    double bad = 0;
    for (int i = 0; i < N; i++)
        if (u[i] != tm_philox_uniform(seed[i], key[i], idx[i])) bad++;
    gc_report("philox_uniform_bit_exact_4096", bad, 0);
    cudaFree(ds), cudaFree(dk), cudaFree(di), cudaFree(du);
    free(seed), free(key), free(idx), free(u);
}

enum { N_PRESETS = 16, N_DISTS = 5 };

/* Row parameters by preset. */
static void preset(int k, tm_sampling_params *p, int32_t vocab)
{
    tm_sampling_params_default(p);
    switch (k) {
    case 0: p->temperature = 0.0f; break;
    case 1: p->temperature = 0.8f, p->top_k = 1; break;
    case 2: break; /* T = 1, no filter */
    case 3: p->temperature = 0.7f, p->top_p = 0.9f; break;
    case 4: p->top_k = 50; break;
    case 5: p->top_k = 50, p->top_p = 0.95f; break;
    case 6: p->min_p = 0.05f; break;
    case 7: p->temperature = 1.3f, p->top_k = 200, p->top_p = 0.8f, p->min_p = 0.02f; break;
    case 8: p->temperature = 0.9f, p->top_p = 0.95f, p->repetition_penalty = 1.3f, p->frequency_penalty = 0.5f,
            p->presence_penalty = 0.7f; break;
    case 9: p->temperature = 0.0f, p->repetition_penalty = 1.2f, p->frequency_penalty = 0.3f; break;
    case 10: p->presence_penalty = -1.5f, p->frequency_penalty = 1.0f; break;
    case 11: p->temperature = 0.7f, p->logprobs = 1, p->top_logprobs = 20; break;
    case 12: p->top_p = 0.3f, p->logprobs = 1, p->top_logprobs = 3; break;
    case 13: p->temperature = 5.0f, p->top_p = 0.99f; break;
    case 14: p->top_k = vocab > 3000 ? 3000 : vocab / 2, p->top_p = 0.97f, p->repetition_penalty = 0.8f; break;
    default: p->temperature = 1e-4f, p->top_k = 5, p->logprobs = 1; break; /* sharp but sampled */
    }
}

/* A logit row of shape `dist`. */
static void fill_logits(float *l, int32_t V, int dist)
{
    for (int32_t i = 0; i < V; i++) l[i] = gc_rand() * 6.0f;
    if (dist == 1) { /* peaked */
        l[(int32_t)((gc_rand() + 1.0f) * 0.5f * (V - 1))] += 15.0f;
        l[(int32_t)((gc_rand() + 1.0f) * 0.5f * (V - 1))] += 13.0f;
    } else if (dist == 2) { /* many exact ties */
        for (int32_t i = 0; i < V; i++) l[i] = floorf(l[i] * 2.0f) * 0.5f;
    } else if (dist == 3) { /* NaN, -inf, -0 */
        for (int32_t i = 0; i < V; i += 37) l[i] = NAN;
        for (int32_t i = 5; i < V; i += 41) l[i] = -INFINITY;
        for (int32_t i = 9; i < V; i += 43) l[i] = -0.0f;
        for (int32_t i = 11; i < V; i += 47) l[i] = 0.0f;
    } else if (dist == 4) { /* flat and low: large top_p sets */
        for (int32_t i = 0; i < V; i++) l[i] = gc_rand() * 0.5f - 3.0f;
    }
}

/* How close the CPU's cumulative decisions for this row are to a boundary
 * (relative): min over the top_p cut and the draw. Recomputes the CPU's
 * z and w with the same float operations (this file is C11: no FMA
 * contraction, as sampler.c). */
static double cpu_margin(tm_sampler *smp, const float *logits, int32_t V, const tm_sampling_params *p,
                         uint64_t rk, uint64_t ti, const int32_t *prev, size_t n_prev, size_t n_prompt)
{
    tm_err err;
    float *pen = gc_hmalloc((size_t)V * 4), *z = gc_hmalloc((size_t)V * 4), *w = gc_hmalloc((size_t)V * 4);
    int32_t *ids = gc_hmalloc((size_t)V * 4), n_ids = 0;
    double margin = 1.0;
    if (tm_sampler_penalize(smp, logits, p, prev, n_prev, n_prompt, pen, &err) != TM_OK) {
        free(pen), free(z), free(w), free(ids);
        return margin;
    }
    const float invT = 1.0f / p->temperature;
    float zmax = -INFINITY;
    for (int32_t i = 0; i < V; i++) {
        float v = pen[i] != pen[i] ? -INFINITY : pen[i];
        z[i] = v * invT;
        if (z[i] > zmax) zmax = z[i];
    }
    for (int32_t i = 0; i < V; i++) w[i] = tm_sampler_exp(z[i] - zmax); /* the CPU's and smp_exp's */
    /* top_p: rank order (z desc, id asc) of the top-k set */
    if (p->top_p < 1.0f) {
        int32_t *ord = gc_hmalloc((size_t)V * 4);
        for (int32_t i = 0; i < V; i++) ord[i] = i;
        for (int32_t gap = V / 2; gap > 0; gap /= 2)
            for (int32_t i = gap; i < V; i++) {
                int32_t x = ord[i], j = i;
                while (j >= gap && (z[ord[j - gap]] < z[x] || (z[ord[j - gap]] == z[x] && ord[j - gap] > x))) {
                    ord[j] = ord[j - gap];
                    j -= gap;
                }
                ord[j] = x;
            }
        int32_t n = p->top_k > 1 && p->top_k < V ? p->top_k : V;
        double Z = 0;
        for (int32_t i = 0; i < n; i++) Z += w[ord[i]];
        double need = (double)p->top_p * Z, cum = 0;
        for (int32_t i = 0; i < n; i++) {
            double before = cum;
            cum += w[ord[i]];
            if (cum >= need) {
                double m1 = fabs(cum - need) / Z, m0 = fabs(need - before) / Z;
                if (m1 < margin) margin = m1;
                if (m0 < margin) margin = m0;
                break;
            }
        }
        free(ord);
    }
    /* the draw over the CPU's kept set */
    if (tm_sampler_kept_set(smp, logits, p, prev, n_prev, n_prompt, ids, &n_ids, &err) == TM_OK && n_ids > 1) {
        double total = 0, cum = 0;
        for (int32_t j = 0; j < n_ids; j++) total += w[ids[j]];
        double target = tm_philox_uniform(p->seed, rk, ti) * total;
        for (int32_t j = 0; j < n_ids; j++) {
            cum += w[ids[j]];
            double m = fabs(cum - target) / total;
            if (m < margin) margin = m;
        }
    }
    free(pen), free(z), free(w), free(ids);
    return margin;
}

static int lp_close(float a, float b)
{
    if (isinf(a) || isinf(b) || isnan(a) || isnan(b)) return a == b || (isnan(a) && isnan(b));
    return fabsf(a - b) <= 2e-6f * fmaxf(1.0f, fabsf(b));
}

static void test_sampling(int32_t V)
{
    const int32_t R = N_PRESETS * N_DISTS + 2; /* + an all -inf row and a +inf row */
    float *logits = gc_hmalloc((size_t)R * V * 4);
    tm_sampling_params *cp = gc_hmalloc((size_t)R * sizeof *cp);
    tm_k_sample_params *gp = gc_hmalloc((size_t)R * sizeof *gp);
    enum { PREV_MAX = 96 };
    int32_t *prev = gc_hmalloc((size_t)R * PREV_MAX * 4);
    for (int32_t r = 0; r < R; r++) {
        const int k = r % N_PRESETS, dist = (r / N_PRESETS) % N_DISTS;
        float *l = logits + (size_t)r * V;
        fill_logits(l, V, dist);
        if (r == R - 2)
            for (int32_t i = 0; i < V; i++) l[i] = i % 2 ? -INFINITY : NAN;
        if (r == R - 1) l[V / 3] = l[V / 2] = INFINITY;
        preset(r == R - 1 ? 3 : k, &cp[r], V); /* the +inf row is sampled, not greedy */
        cp[r].seed = 0x1234567ull * (uint64_t)(r + 1) + (uint64_t)V;
        if (r % 3 == 0) cp[r].logprobs = 1;
        if (r % 4 == 1 && cp[r].top_logprobs == 0) cp[r].top_logprobs = 1 + r % 20;
        /* previous tokens: 60 prompt + 36 generated, repeats included; a few
         * out of range (ignored) */
        int32_t *pv = prev + (size_t)r * PREV_MAX;
        for (int32_t i = 0; i < PREV_MAX; i++) pv[i] = (int32_t)((gc_rand() + 1.0f) * 0.5f * (V - 1));
        for (int32_t i = 70; i < PREV_MAX; i += 3) pv[i] = pv[i - 10]; /* generated repeats */
        pv[65] = pv[3];                                                /* generated token also in the prompt */
        pv[5] = -3;
        pv[80] = V + 5;
        gp[r] = (tm_k_sample_params){.temperature = cp[r].temperature, .top_p = cp[r].top_p, .min_p = cp[r].min_p,
                                     .presence_penalty = cp[r].presence_penalty,
                                     .frequency_penalty = cp[r].frequency_penalty,
                                     .repetition_penalty = cp[r].repetition_penalty, .top_k = cp[r].top_k,
                                     .logprobs = cp[r].logprobs, .top_logprobs = cp[r].top_logprobs,
                                     .n_prev = PREV_MAX, .n_prompt = 60, .prev_offset = (int64_t)r * PREV_MAX,
                                     .seed = cp[r].seed, .request_key = (uint64_t)(r % 3),
                                     .token_index = (uint64_t)(r * 7)};
    }
    /* device: 16 workspace slots for R rows (blocks loop over rows) */
    const int32_t slots = 16;
    size_t ws_bytes = tm_k_sample_workspace_bytes(V, slots);
    float *dl = gc_upload(logits, (size_t)R * V * 4);
    tm_k_sample_params *dp = gc_upload(gp, (size_t)R * sizeof *gp);
    int32_t *dprev = gc_upload(prev, (size_t)R * PREV_MAX * 4);
    void *dws = gc_dmalloc(ws_bytes);
    GC_CUDA(cudaMemset(dws, 0, ws_bytes));
    int32_t *dtok = gc_dmalloc((size_t)R * 4), *dst = gc_dmalloc((size_t)R * 4), *dnt = gc_dmalloc((size_t)R * 4);
    int32_t *dnk = gc_dmalloc((size_t)R * 4), *dtid = gc_dmalloc((size_t)R * TM_K_SAMPLE_MAX_TOP * 4);
    float *dlp = gc_dmalloc((size_t)R * 4), *dtlp = gc_dmalloc((size_t)R * TM_K_SAMPLE_MAX_TOP * 4);
    tm_k_sample_args a = {.logits = dl, .ld = V, .n_rows = R, .vocab = V, .params = dp, .prev = dprev,
                          .workspace = dws, .workspace_bytes = ws_bytes, .out_token = dtok, .out_status = dst,
                          .out_logprob = dlp, .out_n_top = dnt, .out_top_ids = dtid, .out_top_logprobs = dtlp,
                          .out_n_kept = dnk};
    int32_t *tok[2], *st = gc_hmalloc((size_t)R * 4), *nt = gc_hmalloc((size_t)R * 4), *nk = gc_hmalloc((size_t)R * 4);
    int32_t *tid = gc_hmalloc((size_t)R * TM_K_SAMPLE_MAX_TOP * 4);
    float *lp[2], *tlp = gc_hmalloc((size_t)R * TM_K_SAMPLE_MAX_TOP * 4);
    for (int run = 0; run < 2; run++) {
        tok[run] = gc_hmalloc((size_t)R * 4);
        lp[run] = gc_hmalloc((size_t)R * 4);
        GC_CUDA(cudaMemset(dtok, 0xFF, (size_t)R * 4)); /* poison: -1 / NaN */
        GC_CUDA(cudaMemset(dst, 0xFF, (size_t)R * 4));
        GC_CUDA(cudaMemset(dlp, 0xFF, (size_t)R * 4));
        GC_CUDA(cudaMemset(dnt, 0xFF, (size_t)R * 4));
        GC_CUDA(cudaMemset(dnk, 0xFF, (size_t)R * 4));
        GC_CUDA(cudaMemset(dtid, 0xFE, (size_t)R * TM_K_SAMPLE_MAX_TOP * 4));
        GC_CUDA(cudaMemset(dtlp, 0xFF, (size_t)R * TM_K_SAMPLE_MAX_TOP * 4));
        GC_CUDA((cudaError_t)tm_k_sample(&a, NULL));
        GC_CUDA(cudaDeviceSynchronize());
        gc_download(tok[run], dtok, (size_t)R * 4);
        gc_download(lp[run], dlp, (size_t)R * 4);
    }
    gc_download(st, dst, (size_t)R * 4);
    gc_download(nt, dnt, (size_t)R * 4);
    gc_download(nk, dnk, (size_t)R * 4);
    gc_download(tid, dtid, (size_t)R * TM_K_SAMPLE_MAX_TOP * 4);
    gc_download(tlp, dtlp, (size_t)R * TM_K_SAMPLE_MAX_TOP * 4);

    /* counters back to zero */
    int32_t *cnt = gc_hmalloc(ws_bytes);
    gc_download(cnt, dws, ws_bytes);
    double nonzero = 0;
    for (int32_t s = 0; s < slots; s++)
        for (int32_t i = 0; i < V; i++)
            if (cnt[(size_t)s * 3 * V + 2 * (size_t)V + i] != 0) nonzero++;
    char name[128];
    snprintf(name, sizeof name, "sample_v%d_penalty_counters_zero_after", V);
    gc_report(name, nonzero, 0);
    double diff = 0;
    for (int32_t r = 0; r < R; r++)
        if (tok[0][r] != tok[1][r] || memcmp(&lp[0][r], &lp[1][r], 4) != 0) diff++;
    snprintf(name, sizeof name, "sample_v%d_deterministic", V);
    gc_report(name, diff, 0);

    tm_sampler *smp = NULL;
    tm_err err;
    if (tm_sampler_create(V, &smp, &err) != TM_OK) {
        printf("FAIL tm_sampler_create: %s\n", err.msg);
        g_fails++;
        return;
    }
    int32_t *ids = gc_hmalloc((size_t)V * 4);
    double bad_tok = 0, bad_status = 0, bad_kept = 0, bad_lp = 0, bad_top = 0, near = 0;
    for (int32_t r = 0; r < R; r++) {
        const float *l = logits + (size_t)r * V;
        const int32_t *pv = prev + (size_t)r * PREV_MAX;
        tm_sample_result res;
        tm_status s = tm_sampler_sample(smp, l, &cp[r], gp[r].request_key, gp[r].token_index, pv, PREV_MAX, 60, &res,
                                        &err);
        if (s != TM_OK) {
            if (st[r] != 1 || tok[0][r] != -1) bad_status++;
            continue;
        }
        if (st[r] != 0) {
            bad_status++;
            continue;
        }
        int32_t n_ids = 0;
        tm_sampler_kept_set(smp, l, &cp[r], pv, PREV_MAX, 60, ids, &n_ids, &err);
        int mismatch = res.token != tok[0][r] || n_ids != nk[r];
        if (mismatch) {
            double m = cpu_margin(smp, l, V, &cp[r], gp[r].request_key, gp[r].token_index, pv, PREV_MAX, 60);
            if (m < 1e-6) {
                near++;
                printf("INFO sample_v%d row %d: GPU token %d (kept %d), CPU %d (kept %d): CPU decision %.2e from its "
                       "boundary\n", V, r, tok[0][r], nk[r], res.token, n_ids, m);
            } else {
                if (res.token != tok[0][r]) bad_tok++;
                if (n_ids != nk[r]) bad_kept++;
                printf("INFO sample_v%d row %d (preset %d, dist %d): GPU token %d kept %d, CPU %d kept %d, margin %.2e\n",
                       V, r, r % N_PRESETS, (r / N_PRESETS) % N_DISTS, tok[0][r], nk[r], res.token, n_ids, m);
            }
            continue; /* logprobs of another token are not comparable */
        }
        if (cp[r].logprobs && !lp_close(lp[0][r], res.logprob)) {
            bad_lp++;
            printf("INFO sample_v%d row %d: logprob GPU %.9g CPU %.9g\n", V, r, lp[0][r], res.logprob);
        }
        if (nt[r] != res.n_top) {
            bad_top++;
        } else {
            for (int32_t j = 0; j < res.n_top; j++)
                if (tid[(size_t)r * TM_K_SAMPLE_MAX_TOP + j] != res.top[j].id ||
                    !lp_close(tlp[(size_t)r * TM_K_SAMPLE_MAX_TOP + j], res.top[j].logprob)) {
                    bad_top++;
                    printf("INFO sample_v%d row %d top %d: GPU (%d, %.9g) CPU (%d, %.9g)\n", V, r, j,
                           tid[(size_t)r * TM_K_SAMPLE_MAX_TOP + j], tlp[(size_t)r * TM_K_SAMPLE_MAX_TOP + j],
                           res.top[j].id, res.top[j].logprob);
                    break;
                }
            for (int32_t j = res.n_top; j < TM_K_SAMPLE_MAX_TOP; j++)
                if (tid[(size_t)r * TM_K_SAMPLE_MAX_TOP + j] != -1) bad_top++;
        }
    }
    snprintf(name, sizeof name, "sample_v%d_%d_rows_token", V, R);
    gc_report(name, bad_tok, 0);
    snprintf(name, sizeof name, "sample_v%d_%d_rows_kept_set_size", V, R);
    gc_report(name, bad_kept, 0);
    snprintf(name, sizeof name, "sample_v%d_%d_rows_status", V, R);
    gc_report(name, bad_status, 0);
    snprintf(name, sizeof name, "sample_v%d_%d_rows_logprob", V, R);
    gc_report(name, bad_lp, 0);
    snprintf(name, sizeof name, "sample_v%d_%d_rows_top_logprobs", V, R);
    gc_report(name, bad_top, 0);
    printf("INFO sample_v%d: %g of %d rows differ only within 1e-6 of a CPU decision boundary\n", V, near, R);
    tm_sampler_destroy(smp);
    cudaFree(dl), cudaFree(dp), cudaFree(dprev), cudaFree(dws), cudaFree(dtok), cudaFree(dst), cudaFree(dnt);
    cudaFree(dnk), cudaFree(dtid), cudaFree(dlp), cudaFree(dtlp);
    free(logits), free(cp), free(gp), free(prev), free(st), free(nt), free(nk), free(tid), free(tlp), free(cnt);
    free(ids);
    for (int run = 0; run < 2; run++) free(tok[run]), free(lp[run]);
}

int main(void)
{
    gc_require_device();
    const char *qv = getenv("TOKENMILL_GPU_TEST_QUICK");
    const int quick = qv && strcmp(qv, "1") == 0;
    {   /* GQA 4:2 hd 64: context 1, a decode, a short chunk, exactly one tile,
         * a tile + 1, a chunked prefill that is no multiple of 64 */
        int32_t nn[] = {1, 1, 5, 64, 65, 130}, ln[] = {1, 17, 21, 64, 65, 200};
        test_attention("gqa4_2_hd64_mixed", 4, 2, 64, 6, nn, ln, 16, 1);
    }
    {   /* Llama-3-8B heads (32:8, hd 128): decodes at 4096 and 4133, a
         * 300-token chunk on a 4200-token context, a fresh 3-token prompt */
        int32_t nn[] = {1, 1, 300, 3}, ln[] = {4096, 4133, 4500, 3};
        test_attention("h32_kv8_hd128_long", 32, 8, 128, 4, nn, ln, 16, 7);
    }
    if (!quick) { /* a fresh 4100-token prefill (65 tiles, causal over 4k+) */
        int32_t nn[] = {4100}, ln[] = {4100};
        test_attention("h8_kv2_hd128_prefill4100", 8, 2, 128, 1, nn, ln, 16, 41);
    }
    {   /* MQA 8:1 hd 128, block size 7 */
        int32_t nn[] = {1, 70, 1}, ln[] = {300, 70, 2};
        test_attention("mqa8_hd128_bs7", 8, 1, 128, 3, nn, ln, 7, 1);
    }
    {   /* qwen3-mini-like: hd 48 (padded to 64), GQA 6:2, block size 5 */
        int32_t nn[] = {12, 1, 1}, ln[] = {12, 301, 1};
        test_attention("gqa6_2_hd48_bs5", 6, 2, 48, 3, nn, ln, 5, 1);
    }
    {   /* 20 query heads per KV head (two 16-row chunks), hd 64 */
        int32_t nn[] = {1, 33}, ln[] = {700, 40};
        test_attention("g20_hd64", 20, 1, 64, 2, nn, ln, 16, 1);
    }
    {   /* MHA hd 96 (padded to 128) */
        int32_t nn[] = {1, 100}, ln[] = {129, 100};
        test_attention("mha4_hd96", 4, 4, 96, 2, nn, ln, 16, 1);
    }
    if (!quick) { /* many decodes of mixed lengths (a realistic decode step) */
        enum { S = 48 };
        int32_t nn[S], ln[S];
        for (int i = 0; i < S; i++) nn[i] = 1, ln[i] = 1 + (i * 997) % 2300;
        test_attention("decode48_h32_kv8_hd128", 32, 8, 128, S, nn, ln, 16, 1);
    }
    test_philox();
    test_sampling(1000);
    test_sampling(32000);
    if (!quick) test_sampling(151936);
    return gc_finish("test_cuda_fast_kernels");
}
