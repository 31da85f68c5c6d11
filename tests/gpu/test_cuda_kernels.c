/* test_cuda_kernels.c — every kernel of kernels/kernels.h against a plain C
 * (double) reference on random inputs of several shapes, including sizes
 * that are not multiples of the block/warp sizes, context length 1 and
 * > 4096 for attention, non-contiguous block tables. Outputs are poisoned
 * (0xFF bytes = NaN) before each launch so an unwritten element fails.
 * Prints "PASS|FAIL name max_abs_err tol" per check; exit 1 on a failure,
 * 77 without a CUDA device. Built by tests/gpu/build.sh, run by run.sh.
 */
#include "gpucheck.h"
#include "kernels.h"

static float *rand_f32(size_t n, float scale)
{
    float *p = gc_hmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = gc_rand() * scale;
    return p;
}

static uint16_t *rand_bf16(size_t n, float scale)
{
    uint16_t *p = gc_hmalloc(n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) p[i] = gc_f2bf(gc_rand() * scale);
    return p;
}

/* max |a - ref| and max |ref| */
static double max_abs(const double *ref, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(ref[i]) > m) m = fabs(ref[i]);
    return m;
}

/* ---- embedding ------------------------------------------------------------- */
static void test_embed(int32_t vocab, int32_t dim, int32_t n)
{
    uint16_t *tab = rand_bf16((size_t)vocab * dim, 1.0f);
    int32_t *ids = gc_hmalloc((size_t)n * sizeof(int32_t));
    for (int32_t i = 0; i < n; i++) ids[i] = (int32_t)((gc_rand() + 1.0f) * 0.5f * (vocab - 1));
    if (n > 1) ids[n - 1] = vocab - 1;
    void *dt = gc_upload(tab, (size_t)vocab * dim * 2), *di = gc_upload(ids, (size_t)n * 4);
    float *dx = gc_dmalloc((size_t)n * dim * 4), *x = gc_hmalloc((size_t)n * dim * 4);
    GC_CUDA((cudaError_t)tm_k_embed_f32(dt, di, n, dim, dx, NULL));
    GC_CUDA(cudaDeviceSynchronize());
    gc_download(x, dx, (size_t)n * dim * 4);
    double err = 0;
    for (int32_t t = 0; t < n; t++)
        for (int32_t i = 0; i < dim; i++) {
            double e = fabs(x[(size_t)t * dim + i] - gc_bf2f(tab[(size_t)ids[t] * dim + i]));
            if (!(e <= err)) err = e; /* NaN sticks */
        }
    char name[96];
    snprintf(name, sizeof name, "embed_v%d_d%d_n%d", vocab, dim, n);
    gc_report(name, err, 0.0);
    cudaFree(dt), cudaFree(di), cudaFree(dx), free(tab), free(ids), free(x);
}

/* ---- RMSNorm (+ residual, + row gather) ------------------------------------------ */
static void test_rmsnorm(int32_t n_src, int32_t dim, int use_resid, int use_rows)
{
    int32_t n_rows = use_rows ? (n_src + 1) / 2 : n_src;
    float *x = rand_f32((size_t)n_src * dim, 3.0f), *r = rand_f32((size_t)n_src * dim, 1.0f);
    float *w = rand_f32((size_t)dim, 1.0f);
    int32_t *rows = gc_hmalloc((size_t)n_rows * 4);
    for (int32_t i = 0; i < n_rows; i++) rows[i] = use_rows ? n_src - 1 - 2 * i : i;
    float *dx = gc_upload(x, (size_t)n_src * dim * 4), *dr = gc_upload(r, (size_t)n_src * dim * 4);
    float *dw = gc_upload(w, (size_t)dim * 4);
    int32_t *drows = gc_upload(rows, (size_t)n_rows * 4);
    uint16_t *dout = gc_dmalloc((size_t)n_rows * dim * 2), *out = gc_hmalloc((size_t)n_rows * dim * 2);
    uint16_t *dlo = gc_dmalloc((size_t)n_rows * dim * 2), *lo = gc_hmalloc((size_t)n_rows * dim * 2);
    float *xo = gc_hmalloc((size_t)n_src * dim * 4);
    GC_CUDA((cudaError_t)tm_k_add_rmsnorm(dx, use_resid ? dr : NULL, dw, use_rows ? drows : NULL, n_rows, dim, 1e-5f,
                                          dout, use_rows ? dlo : NULL, NULL));
    GC_CUDA(cudaDeviceSynchronize());
    gc_download(out, dout, (size_t)n_rows * dim * 2);
    gc_download(xo, dx, (size_t)n_src * dim * 4);
    if (use_rows) gc_download(lo, dlo, (size_t)n_rows * dim * 2);
    double *ref = gc_hmalloc((size_t)n_rows * dim * sizeof(double));
    double errx = 0, err = 0;
    for (int32_t j = 0; j < n_rows; j++) {
        int32_t s = rows[j];
        double ss = 0;
        for (int32_t i = 0; i < dim; i++) {
            double v = (double)x[(size_t)s * dim + i] + (use_resid ? r[(size_t)s * dim + i] : 0.0);
            double e = fabs(xo[(size_t)s * dim + i] - v);
            if (!(e <= errx)) errx = e;
            ss += v * v;
        }
        double inv = 1.0 / sqrt(ss / dim + 1e-5);
        for (int32_t i = 0; i < dim; i++) {
            double v = (double)x[(size_t)s * dim + i] + (use_resid ? r[(size_t)s * dim + i] : 0.0);
            ref[(size_t)j * dim + i] = v * inv * w[i];
        }
    }
    double errlo = 0;
    for (size_t i = 0; i < (size_t)n_rows * dim; i++) {
        double e = fabs(gc_bf2f(out[i]) - ref[i]);
        if (!(e <= err)) err = e;
        e = fabs((double)gc_bf2f(out[i]) + gc_bf2f(lo[i]) - ref[i]);
        if (!(e <= errlo)) errlo = e;
    }
    char name[96];
    if (use_rows) { /* hi + lo split: ~16 mantissa bits */
        snprintf(name, sizeof name, "rmsnorm_n%d_d%d%s_rows_hi_lo", n_src, dim, use_resid ? "_resid" : "");
        gc_report(name, errlo, 1e-4 * max_abs(ref, (size_t)n_rows * dim));
    }
    snprintf(name, sizeof name, "rmsnorm_n%d_d%d%s%s", n_src, dim, use_resid ? "_resid" : "", use_rows ? "_rows" : "");
    gc_report(name, err, 1e-2 * max_abs(ref, (size_t)n_rows * dim));
    snprintf(name, sizeof name, "rmsnorm_n%d_d%d%s%s_x", n_src, dim, use_resid ? "_resid" : "", use_rows ? "_rows" : "");
    gc_report(name, errx, 1e-5);
    cudaFree(dx), cudaFree(dr), cudaFree(dw), cudaFree(drows), cudaFree(dout), cudaFree(dlo);
    free(lo), free(x), free(r), free(w), free(rows), free(out), free(xo), free(ref);
}

/* ---- SiLU * mul --------------------------------------------------------------- */
static void test_silu(int32_t n, int32_t inter)
{
    size_t N = (size_t)n * inter;
    float *gu = rand_f32(2 * N, 4.0f);
    uint16_t *out = gc_hmalloc(N * 2);
    float *dgu = gc_upload(gu, 2 * N * 4);
    uint16_t *dout = gc_dmalloc(N * 2);
    GC_CUDA((cudaError_t)tm_k_silu_mul(dgu, n, inter, dout, NULL));
    GC_CUDA(cudaDeviceSynchronize());
    gc_download(out, dout, N * 2);
    double *ref = gc_hmalloc(N * sizeof(double)), err = 0;
    for (int32_t t = 0; t < n; t++)
        for (int32_t i = 0; i < inter; i++) {
            double g = gu[(size_t)t * 2 * inter + i], u = gu[(size_t)t * 2 * inter + inter + i];
            ref[(size_t)t * inter + i] = g / (1.0 + exp(-g)) * u;
        }
    for (size_t i = 0; i < N; i++) {
        double e = fabs(gc_bf2f(out[i]) - ref[i]);
        if (!(e <= err)) err = e;
    }
    char name[96];
    snprintf(name, sizeof name, "silu_mul_n%d_i%d", n, inter);
    gc_report(name, err, 1e-2 * max_abs(ref, N));
    cudaFree(dgu), cudaFree(dout), free(gu), free(out), free(ref);
}

/* ---- shared paged-batch setup for rope/attention ------------------------------------ */
typedef struct pbatch {
    int32_t n_seqs, n_tokens, bs, n_blocks, bt_stride;
    int32_t *seq_len, *positions, *tok_seq, *bt; /* bt: [n_seqs * bt_stride] */
} pbatch;

/* Sequences with (new tokens, cached length after the step); blocks handed
 * out in a scrambled order so block tables are not contiguous. */
static pbatch make_batch(int32_t n_seqs, const int32_t *n_new, const int32_t *len, int32_t bs)
{
    pbatch p = {.n_seqs = n_seqs, .bs = bs};
    int32_t stride = 1, total_blocks = 0;
    for (int32_t s = 0; s < n_seqs; s++) {
        int32_t nb = (len[s] + bs - 1) / bs;
        if (nb > stride) stride = nb;
        total_blocks += nb;
        p.n_tokens += n_new[s];
    }
    p.bt_stride = stride;
    p.n_blocks = total_blocks + 3;
    p.seq_len = gc_hmalloc((size_t)n_seqs * 4);
    p.positions = gc_hmalloc((size_t)p.n_tokens * 4);
    p.tok_seq = gc_hmalloc((size_t)p.n_tokens * 4);
    p.bt = gc_hmalloc((size_t)n_seqs * stride * 4);
    /* block ids: a permutation of [0, n_blocks) via a multiplier coprime to it */
    int32_t mul = 7;
    for (;; mul++) {
        int32_t a = mul, c = p.n_blocks;
        while (c) { int32_t r = a % c; a = c; c = r; }
        if (a == 1) break;
    }
    int32_t next = 0, t = 0;
    for (int32_t s = 0; s < n_seqs; s++) {
        p.seq_len[s] = len[s];
        int32_t nb = (len[s] + bs - 1) / bs;
        for (int32_t j = 0; j < nb; j++) p.bt[(size_t)s * stride + j] = (int32_t)(((int64_t)(next++) * mul + 1) % p.n_blocks);
        for (int32_t i = 0; i < n_new[s]; i++, t++) {
            p.positions[t] = len[s] - n_new[s] + i;
            p.tok_seq[t] = s;
        }
    }
    return p;
}

static void free_batch(pbatch *p) { free(p->seq_len), free(p->positions), free(p->tok_seq), free(p->bt); }

static size_t slot_of(const pbatch *p, int32_t s, int32_t pos)
{
    return (size_t)p->bt[(size_t)s * p->bt_stride + pos / p->bs] * p->bs + (size_t)(pos % p->bs);
}

/* ---- q/k/v bias + q/k norm + RoPE + KV write ------------------------------------ */
static void test_rope(const char *tag, int32_t nh, int32_t nkv, int32_t hd, int bias, int qknorm, int llama3,
                      int32_t n_seqs, const int32_t *n_new, const int32_t *len, int32_t bs)
{
    pbatch pb = make_batch(n_seqs, n_new, len, bs);
    int32_t T = pb.n_tokens, W = (nh + 2 * nkv) * hd, half = hd / 2;
    float *qkv = rand_f32((size_t)T * W, 2.0f), *b = rand_f32((size_t)W, 0.5f);
    float *qn = rand_f32((size_t)hd, 1.0f), *kn = rand_f32((size_t)hd, 1.0f);
    double *inv = gc_hmalloc((size_t)half * sizeof(double));
    for (int32_t i = 0; i < half; i++) {
        inv[i] = 1.0 / pow(llama3 ? 500000.0 : 10000.0, (double)(2 * i) / hd);
        if (llama3 && i > half / 2) inv[i] /= 8.0; /* any table: the kernel must use it as given */
    }
    size_t kv_elems = (size_t)pb.n_blocks * bs * nkv * hd;
    float *dqkv = gc_upload(qkv, (size_t)T * W * 4), *db = gc_upload(b, (size_t)W * 4);
    float *dqn = gc_upload(qn, (size_t)hd * 4), *dkn = gc_upload(kn, (size_t)hd * 4);
    double *dinv = gc_upload(inv, (size_t)half * sizeof(double));
    int32_t *dpos = gc_upload(pb.positions, (size_t)T * 4), *dseq = gc_upload(pb.tok_seq, (size_t)T * 4);
    int32_t *dbt = gc_upload(pb.bt, (size_t)n_seqs * pb.bt_stride * 4);
    float *dq = gc_dmalloc((size_t)T * nh * hd * 4);
    uint16_t *dk = gc_dmalloc(kv_elems * 2), *dv = gc_dmalloc(kv_elems * 2);
    tm_k_rope_args a = {.qkv = dqkv, .bias = bias ? db : NULL, .q_norm = qknorm ? dqn : NULL,
                        .k_norm = qknorm ? dkn : NULL, .inv_freq = dinv, .positions = dpos, .tok_seq = dseq,
                        .block_tables = dbt, .bt_stride = pb.bt_stride, .block_size = bs, .n_tokens = T,
                        .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .eps = 1e-6f, .q_out = dq,
                        .k_cache = dk, .v_cache = dv};
    GC_CUDA((cudaError_t)tm_k_qkv_rope_kv_write(&a, NULL));
    GC_CUDA(cudaDeviceSynchronize());
    float *q = gc_hmalloc((size_t)T * nh * hd * 4);
    uint16_t *k = gc_hmalloc(kv_elems * 2), *v = gc_hmalloc(kv_elems * 2);
    gc_download(q, dq, (size_t)T * nh * hd * 4);
    gc_download(k, dk, kv_elems * 2);
    gc_download(v, dv, kv_elems * 2);

    /* reference */
    double *row = gc_hmalloc((size_t)W * sizeof(double));
    double eq = 0, ek = 0, ev = 0, mq = 0, mk = 0, mv = 0;
    char *written = gc_hmalloc((size_t)pb.n_blocks * bs);
    for (int32_t t = 0; t < T; t++) {
        for (int32_t i = 0; i < W; i++) row[i] = (double)qkv[(size_t)t * W + i] + (bias ? b[i] : 0.0);
        if (qknorm)
            for (int32_t h = 0; h < nh + nkv; h++) {
                double ss = 0, *x = row + (size_t)h * hd;
                for (int32_t d = 0; d < hd; d++) ss += x[d] * x[d];
                double iv = 1.0 / sqrt(ss / hd + 1e-6);
                for (int32_t d = 0; d < hd; d++) x[d] = x[d] * iv * (h < nh ? qn[d] : kn[d]);
            }
        int32_t pos = pb.positions[t];
        for (int32_t h = 0; h < nh + nkv; h++) {
            double *x = row + (size_t)h * hd;
            for (int32_t i = 0; i < half; i++) {
                double c = cos(pos * inv[i]), s = sin(pos * inv[i]), x0 = x[i], x1 = x[i + half];
                x[i] = x0 * c - x1 * s;
                x[i + half] = x1 * c + x0 * s;
            }
        }
        for (int32_t i = 0; i < nh * hd; i++) {
            double e = fabs(q[(size_t)t * nh * hd + i] - row[i]);
            if (!(e <= eq)) eq = e;
            if (fabs(row[i]) > mq) mq = fabs(row[i]);
        }
        size_t slot = slot_of(&pb, pb.tok_seq[t], pos);
        written[slot] = 1;
        for (int32_t i = 0; i < nkv * hd; i++) {
            double rk = row[(size_t)nh * hd + i], rv = row[(size_t)(nh + nkv) * hd + i];
            double e1 = fabs(gc_bf2f(k[slot * nkv * hd + i]) - rk), e2 = fabs(gc_bf2f(v[slot * nkv * hd + i]) - rv);
            if (!(e1 <= ek)) ek = e1;
            if (!(e2 <= ev)) ev = e2;
            if (fabs(rk) > mk) mk = fabs(rk);
            if (fabs(rv) > mv) mv = fabs(rv);
        }
    }
    /* slots of no token must still hold the poison */
    double stray = 0;
    for (size_t sl = 0; sl < (size_t)pb.n_blocks * bs; sl++)
        if (!written[sl])
            for (int32_t i = 0; i < nkv * hd; i++)
                if (k[sl * nkv * hd + i] != 0xFFFF || v[sl * nkv * hd + i] != 0xFFFF) stray = 1;
    char name[128];
    snprintf(name, sizeof name, "rope_%s_q", tag);
    gc_report(name, eq, 1e-4 * (mq > 1 ? mq : 1));
    snprintf(name, sizeof name, "rope_%s_kcache", tag);
    gc_report(name, ek, 1e-2 * mk);
    snprintf(name, sizeof name, "rope_%s_vcache", tag);
    gc_report(name, ev, 1e-2 * mv);
    snprintf(name, sizeof name, "rope_%s_no_stray_writes", tag);
    gc_report(name, stray, 0);
    cudaFree(dqkv), cudaFree(db), cudaFree(dqn), cudaFree(dkn), cudaFree(dinv), cudaFree(dpos), cudaFree(dseq);
    cudaFree(dbt), cudaFree(dq), cudaFree(dk), cudaFree(dv);
    free(qkv), free(b), free(qn), free(kn), free(inv), free(q), free(k), free(v), free(row), free(written);
    free_batch(&pb);
}

/* ---- paged attention ----------------------------------------------------------- */
static void test_attention1(const char *tag, int32_t nh, int32_t nkv, int32_t hd, int32_t n_seqs,
                            const int32_t *n_new, const int32_t *len, int32_t bs, int split)
{
    pbatch pb = make_batch(n_seqs, n_new, len, bs);
    int32_t T = pb.n_tokens;
    size_t kv_elems = (size_t)pb.n_blocks * bs * nkv * hd;
    uint16_t *k = rand_bf16(kv_elems, 1.0f), *v = rand_bf16(kv_elems, 1.0f);
    float *q = rand_f32((size_t)T * nh * hd, 2.0f);
    float scale = (float)(1.0 / sqrt((double)hd));
    void *dk = gc_upload(k, kv_elems * 2), *dv = gc_upload(v, kv_elems * 2);
    float *dq = gc_upload(q, (size_t)T * nh * hd * 4);
    int32_t *dpos = gc_upload(pb.positions, (size_t)T * 4), *dseq = gc_upload(pb.tok_seq, (size_t)T * 4);
    int32_t *dbt = gc_upload(pb.bt, (size_t)n_seqs * pb.bt_stride * 4);
    uint16_t *dout = gc_dmalloc((size_t)T * nh * hd * 2), *out = gc_hmalloc((size_t)T * nh * hd * 2);
    tm_k_attn_args a = {.q = dq, .k_cache = dk, .v_cache = dv, .positions = dpos, .tok_seq = dseq,
                        .block_tables = dbt, .bt_stride = pb.bt_stride, .block_size = bs, .n_tokens = T,
                        .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .scale = scale, .out = dout};
    float *dws = NULL;
    if (split) { /* room for 2048 partial states: forces context splits */
        a.workspace_floats = 2048 * (int64_t)(hd + 2);
        a.workspace = dws = gc_dmalloc((size_t)a.workspace_floats * 4);
    }
    GC_CUDA((cudaError_t)tm_k_attention(&a, NULL));
    GC_CUDA(cudaDeviceSynchronize());
    gc_download(out, dout, (size_t)T * nh * hd * 2);
    int32_t maxctx = 0;
    for (int32_t s = 0; s < n_seqs; s++)
        if (len[s] > maxctx) maxctx = len[s];
    double *sc = gc_hmalloc((size_t)maxctx * sizeof(double)), *o = gc_hmalloc((size_t)hd * sizeof(double));
    double err = 0, mref = 0;
    for (int32_t t = 0; t < T; t++)
        for (int32_t h = 0; h < nh; h++) {
            int32_t kvh = h / (nh / nkv), n_ctx = pb.positions[t] + 1;
            const float *qq = q + ((size_t)t * nh + h) * hd;
            double m = -INFINITY, sum = 0;
            for (int32_t p = 0; p < n_ctx; p++) {
                size_t base = (slot_of(&pb, pb.tok_seq[t], p) * nkv + kvh) * hd;
                double s = 0;
                for (int32_t d = 0; d < hd; d++) s += (double)qq[d] * gc_bf2f(k[base + d]);
                sc[p] = s * scale;
                if (sc[p] > m) m = sc[p];
            }
            for (int32_t d = 0; d < hd; d++) o[d] = 0;
            for (int32_t p = 0; p < n_ctx; p++) {
                size_t base = (slot_of(&pb, pb.tok_seq[t], p) * nkv + kvh) * hd;
                double e = exp(sc[p] - m);
                sum += e;
                for (int32_t d = 0; d < hd; d++) o[d] += e * gc_bf2f(v[base + d]);
            }
            for (int32_t d = 0; d < hd; d++) {
                double r = o[d] / sum, e = fabs(gc_bf2f(out[((size_t)t * nh + h) * hd + d]) - r);
                if (!(e <= err)) err = e;
                if (fabs(r) > mref) mref = fabs(r);
            }
        }
    char name[128];
    snprintf(name, sizeof name, "attention_%s%s", tag, split ? "_split" : "");
    gc_report(name, err, 1e-2 * (mref > 0.1 ? mref : 0.1));
    cudaFree(dws), cudaFree(dk), cudaFree(dv), cudaFree(dq), cudaFree(dpos), cudaFree(dseq), cudaFree(dbt), cudaFree(dout);
    free(k), free(v), free(q), free(out), free(sc), free(o);
    free_batch(&pb);
}

/* Each case twice: one block per (head, token), and split-context. */
static void test_attention(const char *tag, int32_t nh, int32_t nkv, int32_t hd, int32_t n_seqs,
                           const int32_t *n_new, const int32_t *len, int32_t bs)
{
    test_attention1(tag, nh, nkv, hd, n_seqs, n_new, len, bs, 0);
    test_attention1(tag, nh, nkv, hd, n_seqs, n_new, len, bs, 1);
}

int main(void)
{
    gc_require_device();
    test_embed(1000, 128, 1);
    test_embed(1000, 4099, 37);
    test_embed(32000, 64, 300);

    test_rmsnorm(1, 64, 0, 0);
    test_rmsnorm(33, 4096, 1, 0);
    test_rmsnorm(17, 5000, 1, 1);
    test_rmsnorm(9, 128, 0, 1);

    test_silu(1, 352);
    test_silu(17, 11011);

    {   /* llama-like: GQA 4:2, hd 64, no bias / norm; a decode, a chunk, a fresh prefill */
        int32_t nn[] = {1, 5, 7}, ln[] = {40, 21, 7};
        test_rope("gqa_hd64", 4, 2, 64, 0, 0, 0, 3, nn, ln, 16);
    }
    {   /* qwen3-like: hd 48 (not a multiple of 32), bias + q/k norm, block size 7 */
        int32_t nn[] = {3, 1}, ln[] = {3, 5000}, bs = 7;
        test_rope("qwen_hd48_bias_norm", 4, 2, 48, 1, 1, 0, 2, nn, ln, bs);
    }
    {   /* 8B-like head layout: 32 q heads, 8 kv heads, hd 128, long positions */
        int32_t nn[] = {2, 33}, ln[] = {8190, 33};
        test_rope("h32_kv8_hd128", 32, 8, 128, 0, 0, 1, 2, nn, ln, 16);
    }
    {   /* context 1, short chunks, decodes */
        int32_t nn[] = {1, 1, 6}, ln[] = {1, 17, 6};
        test_attention("gqa_hd64_short", 4, 2, 64, 3, nn, ln, 16);
    }
    {   /* long contexts (>= 4096) with MQA, hd 128, plus a prefill chunk */
        int32_t nn[] = {1, 3, 19}, ln[] = {4096, 4133, 19};
        test_attention("mqa_hd128_long", 8, 1, 128, 3, nn, ln, 16);
    }
    {   /* hd 48 (partial lanes), block size 5, GQA 6:2 */
        int32_t nn[] = {12, 1}, ln[] = {12, 301};
        test_attention("gqa_hd48_bs5", 6, 2, 48, 2, nn, ln, 5);
    }
    {   /* hd 256 (the maximum), GQA 8:8 */
        int32_t nn[] = {4}, ln[] = {70};
        test_attention("mha_hd256", 8, 8, 256, 1, nn, ln, 16);
    }
    return gc_finish("test_cuda_kernels");
}
