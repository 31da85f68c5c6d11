/* cpu_backend.c — the CPU reference backend: a float32 forward pass over a
 * paged KV cache (tm_backend_cpu, see backend.h for the batch contract).
 *
 * create() packs every projection, the embedding and lm_head once into
 * gemm.h's panels (cpu_weights.h: bf16 stays bf16, the rest float32; one
 * allocation), keeps norms and biases as float32, sizes the KV pool
 * ([layer][K|V][block][slot][kv_head][head_dim]) and all scratch for
 * max_batch_tokens, and starts the thread pool; forward() validates the batch
 * and allocates nothing. Llama / Mistral / Qwen2 (q/k/v bias, tied lm_head) /
 * Qwen3 (per-head q/k RMSNorm) with HF rotate-half RoPE and llama3 scaling.
 * Batch invariant (gemm.h, cpu_ops.h) unless TM_BACKEND_BLAS_GEMM; results do
 * not depend on the thread count or the CPU's ISA; one caller at a time.
 *
 * Quantized models (quant.h) run here too: create() dequantizes each int4 /
 * fp8 projection to float32 panels, and an fp8 projection
 * with act_fp8 (W8A8) gets its input rows fake-quantized first (e4m3 round
 * trip with each row's dynamic scale), so a CPU run is the numerical
 * reference of the GPU's quantized GEMMs. kv_dtype FP8 stores the cache as
 * e4m3 codes plus one float scale per (slot, kv head) — real storage, read
 * by tm_cpu_attention_head_fp8, so the CPU exercises the very format a GPU
 * cache uses; BF16 rounds K/V to bf16 on write (fp32 storage). Both keep
 * batch invariance: every scale depends on one token's own vector.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/cpu_weights.h"
#include "backend/cpu/gemm.h"
#include "model/arch.h"
#include "model/rope.h"
#include "quant/quant.h"

typedef struct cpu_layer {
    const float *attn_norm, *bq, *bk, *bv, *q_norm, *k_norm, *ffn_norm;
    tm_cpu_mat wq, wk, wv, wo, w_gate, w_up, w_down;
    /* W8A8: fake-quantize the input of this projection per token (fp8 act) */
    unsigned char a8_q, a8_k, a8_v, a8_o, a8_gate, a8_up, a8_down;
} cpu_layer;

struct tm_backend {
    tm_model_config cfg;
    unsigned flags;
    tm_cpu_pool *pool;
    tm_gemm_isa isa; /* kernels picked at create (the results do not depend on it) */
    int32_t H, I, V, nh, nkv, hd, qdim, kvdim;
    /* weights: float32 vectors (+ matrices in BLAS mode), packed matrices */
    float *wbuf;
    void *pbuf;
    const float *final_norm;
    tm_cpu_mat embed, lm_head; /* the same when tied */
    cpu_layer *layers;
    double *inv_freq; /* [hd/2] */
    /* KV pool: fp32 (kv), or fp8 codes (kv8) + per-(slot, kv head) scales (kvs) */
    tm_kv_dtype kv_dtype;
    float *kv;
    uint8_t *kv8;
    float *kvs;
    float e4m3_lut[256];
    int32_t n_blocks, bs;
    size_t pool_floats; /* elements of one layer's K (or V) pool */
    size_t pool_scales; /* fp8: scales of one layer's K (or V) pool */
    int32_t ctx_max;    /* longest sequence attention can handle */
    /* scratch for max_batch_tokens rows */
    int32_t max_tokens, max_seqs;
    float *scratch;
    float *x, *xn, *q, *k, *v, *att, *gate, *up, *tmp, *rcos, *rsin, *scores;
    float *xq;          /* W8A8: fake-quantized projection input [T * max(H, Q, I)] */
    float *kvtmp;       /* fp8 KV: per-thread decoded head vector [threads * hd] */
    int32_t *tok_seq;
};

/* ---- create / destroy ---------------------------------------------------- */

static int mul_ok(size_t *acc, size_t b)
{
    if (b && *acc > SIZE_MAX / b) return 0;
    *acc *= b;
    return 1;
}

/* The converted weights' memory, from arch.h's table: float32 vectors (and,
 * with TM_BACKEND_BLAS_GEMM, float32 matrices) and gemm.h's packed panels for
 * the matrices. 0 when a matrix is too large to pack. */
static int cpu_weight_layout(const tm_model *m, int blas, size_t *floats, size_t *pbytes)
{
    const tm_model_config *c = tm_model_config_of(m);
    int tied = tm_model_lm_head_tied(m);
    *floats = 0, *pbytes = 0;
    for (int id = 0; id < TM_W_COUNT; id++) {
        const tm_wspec *ws = tm_arch_spec((tm_wid)id);
        if (id == TM_W_LM_HEAD && tied) continue;
        int nl = tm_arch_is_layer(ws->id) ? c->n_layers : 1;
        for (int l = 0; l < nl; l++) {
            const tm_tensor *t = tm_model_weight(m, ws->id, l);
            if (!t || !tm_tensor_present(t)) continue;
            if (ws->ndim == 2 && !blas) {
                size_t pb = tm_cpu_mat_bytes(t, (size_t)tm_arch_dim(c, ws->dim[0]), (size_t)tm_arch_dim(c, ws->dim[1]));
                if (!pb) return 0;
                *pbytes += pb;
            } else {
                *floats += (size_t)tm_arch_elems(c, ws);
            }
        }
    }
    return 1;
}

/* A projection whose activations the GPU quantizes to fp8 (W8A8). */
static unsigned char act8(const tm_tensor *t) { return t->q && t->q->fmt == TM_QFMT_FP8 && t->q->act_fp8; }

static void cpu_destroy(tm_backend *b)
{
    if (!b) return;
    tm_cpu_pool_destroy(b->pool);
    free(b->wbuf);
    free(b->pbuf);
    free(b->layers);
    free(b->inv_freq);
    free(b->kv);
    free(b->kv8);
    free(b->kvs);
    free(b->scratch);
    free(b->tok_seq);
    free(b);
}

/* One KV block of bs tokens: fp32 elements (auto, bf16: rounded, stored as
 * fp32), or fp8 codes plus a float scale per (slot, kv head); 0 on overflow. */
static int64_t cpu_kv_block(const tm_model_config *c, int32_t bs, tm_kv_dtype kvd)
{
    return kvd == TM_KV_FP8 ? tm_arch_kv_bytes(c, bs, 1, sizeof(float)) : tm_arch_kv_bytes(c, bs, sizeof(float), 0);
}

static size_t cpu_kv_block_bytes(const tm_model *m, int32_t block_size)
{
    return (size_t)cpu_kv_block(tm_model_config_of(m), block_size, TM_KV_AUTO);
}

#define CPU_NSCRATCH 14

/* Scratch floats for T tokens, nthr threads and a context of ctx tokens, in
 * the order of cpu_create's pointers. */
static void scratch_sizes(const tm_model_config *c, size_t T, size_t nthr, size_t ctx, size_t sz[CPU_NSCRATCH])
{
    size_t H = (size_t)c->hidden_size, I = (size_t)c->intermediate_size, hd = (size_t)c->head_dim;
    size_t Q = (size_t)c->n_heads * hd, KV = (size_t)c->n_kv_heads * hd;
    size_t maxk = H > Q ? H : Q;
    if (I > maxk) maxk = I;
    size_t v[CPU_NSCRATCH] = {T * H, T * H, T * Q, T * KV, T * KV, T * Q, T * I, T * I, T * H,
                              T * (hd / 2), T * (hd / 2), nthr * ctx, T * maxk, nthr * hd};
    memcpy(sz, v, sizeof v);
}

static tm_status cpu_mem_plan(const tm_model *m, const tm_backend_opts *o, tm_backend_mem *out, tm_err *err)
{
    memset(out, 0, sizeof *out);
    const tm_model_config *c = tm_model_config_of(m);
    if (o->block_size <= 0 || o->max_batch_tokens <= 0 || o->max_seqs <= 0 || o->n_threads < 0)
        return tm_errf(err, TM_ERR_USAGE, "cpu backend: block_size (%d), max_batch_tokens (%d) and max_seqs (%d) "
                       "must be > 0, n_threads (%d) >= 0", o->block_size, o->max_batch_tokens, o->max_seqs,
                       o->n_threads);
    size_t nthr = (size_t)tm_cpu_threads_for(o->n_threads), sz[CPU_NSCRATCH];
    scratch_sizes(c, (size_t)o->max_batch_tokens, nthr, 0, sz);
    int64_t floats = 0;
    for (size_t i = 0; i < CPU_NSCRATCH; i++) floats += (int64_t)sz[i];
    size_t wf, pb;
    if (!cpu_weight_layout(m, !!(o->flags & TM_BACKEND_BLAS_GEMM), &wf, &pb))
        return tm_errf(err, TM_ERR_INPUT, "cpu backend: %s: a weight matrix is too large", tm_model_dir(m));
    out->weights = (int64_t)wf * (int64_t)sizeof(float) + (int64_t)pb + (int64_t)(c->head_dim / 2) * (int64_t)sizeof(double);
    out->kv_block = cpu_kv_block(c, o->block_size, o->kv_dtype);
    out->per_block = (int64_t)nthr * o->block_size * (int64_t)sizeof(float); /* attention scores */
    out->scratch = floats * (int64_t)sizeof(float) + (int64_t)o->max_batch_tokens * (int64_t)sizeof(int32_t);
    if (!out->kv_block) return tm_errf(err, TM_ERR_INPUT, "cpu backend: %s: KV block size overflows", tm_model_dir(m));
    return TM_OK;
}

static tm_status cpu_mem_available(size_t *free_bytes, size_t *total_bytes, tm_err *err)
{
    long avail = sysconf(_SC_AVPHYS_PAGES), phys = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (avail <= 0 || phys <= 0 || psz <= 0)
        return tm_errf(err, TM_ERR_UNAVAILABLE, "cpu backend: sysconf does not report the memory size");
    *free_bytes = (size_t)avail * (size_t)psz;
    *total_bytes = (size_t)phys * (size_t)psz;
    return TM_OK;
}

/* Pack every weight (the loader checked every shape against arch.h's table)
 * into b->wbuf / b->pbuf and the rope frequencies into b->inv_freq. */
static tm_status create_weights(tm_backend *b, const tm_model *m, tm_err *err)
{
    const tm_model_config *c = &b->cfg;
    size_t H = (size_t)b->H, I = (size_t)b->I, Q = (size_t)b->qdim, KV = (size_t)b->kvdim;
    size_t L = (size_t)c->n_layers, hd = (size_t)b->hd;
    const tm_tensor *emb = tm_model_embed(m), *fn = tm_model_final_norm(m), *lmh = tm_model_lm_head(m);
    int tied = tm_model_lm_head_tied(m);
    int blas = !!(b->flags & TM_BACKEND_BLAS_GEMM);
    tm_status st;
    /* total: float32 elements; pbytes: packed matrices (each 64-byte aligned) */
    size_t total, pbytes, maxk = H > Q ? H : Q;
    if (I > maxk) maxk = I;
    if (!cpu_weight_layout(m, blas, &total, &pbytes))
        return tm_errf(err, TM_ERR_INPUT, "cpu backend: %s: a weight matrix is too large", tm_model_dir(m));
    b->wbuf = malloc(total * sizeof(float));
    b->pbuf = blas ? NULL : aligned_alloc(64, pbytes);
    b->layers = calloc(L, sizeof *b->layers);
    b->inv_freq = malloc((hd / 2) * sizeof(double));
    float *rowtmp = malloc(maxk * (sizeof(float) + sizeof(uint16_t)));
    if (!b->wbuf || (!blas && !b->pbuf) || !b->layers || !b->inv_freq || !rowtmp) {
        free(rowtmp);
        return tm_errf(err, TM_ERR_NOMEM, "cpu backend: out of memory for %zu MiB of weights",
                       (total * sizeof(float) + pbytes) >> 20);
    }
    b->isa = tm_gemm_isa_best();
    tm_cpu_conv cs = {.next = b->wbuf, .pnext = b->pbuf, .blas = blas, .tmp = rowtmp,
                     .tmp16 = (uint16_t *)(rowtmp + maxk)};
    st = tm_cpu_conv_mat(&cs, emb, b->V, b->H, &b->embed, err);
    b->final_norm = tm_cpu_conv_vec(&cs, fn, H);
    if (tied) b->lm_head = b->embed;
    else if (!st) st = tm_cpu_conv_mat(&cs, lmh, b->V, b->H, &b->lm_head, err);
    for (size_t l = 0; l < L && !st; l++) {
        const tm_layer_weights *w = tm_model_layer(m, (int)l);
        cpu_layer *cl = &b->layers[l];
        cl->attn_norm = tm_cpu_conv_vec(&cs, &w->attn_norm, H);
        cl->bq = tm_cpu_conv_vec(&cs, &w->bq, Q);
        cl->bk = tm_cpu_conv_vec(&cs, &w->bk, KV);
        cl->bv = tm_cpu_conv_vec(&cs, &w->bv, KV);
        cl->q_norm = tm_cpu_conv_vec(&cs, &w->q_norm, hd);
        cl->k_norm = tm_cpu_conv_vec(&cs, &w->k_norm, hd);
        cl->ffn_norm = tm_cpu_conv_vec(&cs, &w->ffn_norm, H);
        if ((st = tm_cpu_conv_mat(&cs, &w->wq, b->qdim, b->H, &cl->wq, err)) ||
            (st = tm_cpu_conv_mat(&cs, &w->wk, b->kvdim, b->H, &cl->wk, err)) ||
            (st = tm_cpu_conv_mat(&cs, &w->wv, b->kvdim, b->H, &cl->wv, err)) ||
            (st = tm_cpu_conv_mat(&cs, &w->wo, b->H, b->qdim, &cl->wo, err)) ||
            (st = tm_cpu_conv_mat(&cs, &w->w_gate, b->I, b->H, &cl->w_gate, err)) ||
            (st = tm_cpu_conv_mat(&cs, &w->w_up, b->I, b->H, &cl->w_up, err)) ||
            (st = tm_cpu_conv_mat(&cs, &w->w_down, b->H, b->I, &cl->w_down, err))) {
            tm_err_prefix(err, st, "layer %zu", l);
            break;
        }
        cl->a8_q = act8(&w->wq), cl->a8_k = act8(&w->wk), cl->a8_v = act8(&w->wv), cl->a8_o = act8(&w->wo);
        cl->a8_gate = act8(&w->w_gate), cl->a8_up = act8(&w->w_up), cl->a8_down = act8(&w->w_down);
        if (b->flags & TM_BACKEND_DEBUG_NO_QKV_BIAS) cl->bq = cl->bk = cl->bv = NULL;
        if (b->flags & TM_BACKEND_DEBUG_NO_QK_NORM) cl->q_norm = cl->k_norm = NULL;
    }
    free(rowtmp);
    if (st) return st;
    tm_rope_inv_freq(c, !(b->flags & TM_BACKEND_DEBUG_NO_ROPE_SCALING), b->inv_freq);
    return TM_OK;
}

/* The KV pool (float32, or fp8 codes + per-slot scales), zeroed. */
static tm_status create_kv_pool(tm_backend *b, tm_err *err)
{
    size_t L = (size_t)b->cfg.n_layers, KV = (size_t)b->kvdim, hd = (size_t)b->hd;
    b->pool_floats = (size_t)b->n_blocks;
    size_t kv_total;
    if (!mul_ok(&b->pool_floats, (size_t)b->bs) || !mul_ok(&b->pool_floats, KV) ||
        (kv_total = b->pool_floats, !mul_ok(&kv_total, 2 * L)) || !mul_ok(&kv_total, sizeof(float)))
        return tm_errf(err, TM_ERR_USAGE, "cpu backend: KV pool of %d blocks x %d is too large", b->n_blocks, b->bs);
    if (b->kv_dtype == TM_KV_FP8) {
        /* codes: a quarter of the float bytes; scales: one float per slot and kv head */
        b->pool_scales = b->pool_floats / hd;
        b->kv8 = calloc(1, kv_total / sizeof(float));
        b->kvs = calloc(2 * L * b->pool_scales, sizeof(float));
        if (!b->kv8 || !b->kvs)
            return tm_errf(err, TM_ERR_NOMEM, "cpu backend: out of memory for a %zu MiB fp8 KV pool",
                           kv_total / sizeof(float) >> 20);
    } else {
        b->kv = calloc(1, kv_total);
        if (!b->kv)
            return tm_errf(err, TM_ERR_NOMEM, "cpu backend: out of memory for a %zu MiB KV pool", kv_total >> 20);
    }
    int64_t ctx = (int64_t)b->n_blocks * b->bs;
    if (ctx > INT32_MAX) ctx = INT32_MAX;
    b->ctx_max = (int32_t)ctx;
    return TM_OK;
}

/* The thread pool and the scratch buffers (one allocation, scratch_sizes' order). */
static tm_status create_scratch(tm_backend *b, int32_t n_threads, tm_err *err)
{
    tm_status st;
    if ((st = tm_cpu_pool_create(n_threads, &b->pool, err))) return st;
    size_t T = (size_t)b->max_tokens, nthr = (size_t)tm_cpu_pool_threads(b->pool);
    size_t sizes[CPU_NSCRATCH];
    scratch_sizes(&b->cfg, T, nthr, (size_t)b->ctx_max, sizes);
    float **ptrs[CPU_NSCRATCH] = {&b->x, &b->xn, &b->q, &b->k, &b->v, &b->att, &b->gate, &b->up, &b->tmp,
                      &b->rcos, &b->rsin, &b->scores, &b->xq, &b->kvtmp};
    size_t sc_total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (sizes[i] > (SIZE_MAX / sizeof(float) - sc_total) / 2)
            return tm_errf(err, TM_ERR_USAGE, "cpu backend: scratch for %d tokens is too large", b->max_tokens);
        sc_total += sizes[i];
    }
    b->scratch = malloc(sc_total * sizeof(float));
    b->tok_seq = malloc(T * sizeof(int32_t));
    if (!b->scratch || !b->tok_seq)
        return tm_errf(err, TM_ERR_NOMEM, "cpu backend: out of memory for scratch (%zu MiB)",
                       sc_total * sizeof(float) >> 20);
    float *p = b->scratch;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        *ptrs[i] = p;
        p += sizes[i];
    }
    return TM_OK;
}

static tm_status cpu_create(const tm_model *m, const tm_backend_opts *o, tm_backend **out, tm_err *err)
{
    *out = NULL;
    if (!m || !o) return tm_errf(err, TM_ERR_USAGE, "cpu backend: model and options are required");
    if (tm_model_is_synthetic(m)) /* its tensors have no data to convert */
        return tm_errf(err, TM_ERR_UNAVAILABLE, "cpu backend: %s: synthetic models run on the CUDA backend only",
                       tm_model_dir(m));
    const tm_model_config *c = tm_model_config_of(m);
    if (o->kv_dtype != TM_KV_AUTO && o->kv_dtype != TM_KV_BF16 && o->kv_dtype != TM_KV_FP8)
        return tm_errf(err, TM_ERR_USAGE, "cpu backend: kv_dtype %d is not one of %s", (int)o->kv_dtype,
                       TM_KV_DTYPE_NAMES);
    if (o->n_blocks <= 0 || o->block_size <= 0 || o->max_batch_tokens <= 0 || o->max_seqs <= 0)
        return tm_errf(err, TM_ERR_USAGE,
                       "cpu backend: n_blocks (%d), block_size (%d), max_batch_tokens (%d) and max_seqs (%d) must be > 0",
                       o->n_blocks, o->block_size, o->max_batch_tokens, o->max_seqs);
    /* shapes: config.c checked the config, the loader every tensor (arch.h) */

    tm_backend *b = calloc(1, sizeof *b);
    if (!b) return tm_errf(err, TM_ERR_NOMEM, "cpu backend: out of memory");
    tm_status st;
    b->cfg = *c;
    b->flags = o->flags;
    b->kv_dtype = o->kv_dtype;
    for (int i = 0; i < 256; i++) b->e4m3_lut[i] = tm_e4m3_to_f32((uint8_t)i);
    b->H = c->hidden_size;
    b->I = c->intermediate_size;
    b->V = c->vocab_size;
    b->nh = c->n_heads;
    b->nkv = c->n_kv_heads;
    b->hd = c->head_dim;
    b->qdim = b->nh * b->hd;
    b->kvdim = b->nkv * b->hd;
    b->n_blocks = o->n_blocks;
    b->bs = o->block_size;
    b->max_tokens = o->max_batch_tokens;
    b->max_seqs = o->max_seqs;
    if ((st = create_weights(b, m, err)) || (st = create_kv_pool(b, err)) ||
        (st = create_scratch(b, o->n_threads, err))) {
        cpu_destroy(b);
        return st;
    }
    *out = b;
    return TM_OK;
}

/* ---- forward ------------------------------------------------------------- */

static tm_status check_batch(const tm_backend *b, const tm_batch *bt, tm_err *err)
{
    tm_batch_limits lim = {.max_tokens = b->max_tokens, .max_seqs = b->max_seqs, .block_size = b->bs,
                           .n_blocks = b->n_blocks, .ctx_max = b->ctx_max, .vocab = b->V};
    return tm_batch_check(bt, &lim, err);
}

typedef struct fwd_ctx {
    tm_backend *b;
    const tm_batch *bt;
    const cpu_layer *layer;
    const float *norm_w;
    size_t layer_k, layer_v; /* offsets of this layer's K and V pools in b->kv / b->kv8 */
    size_t layer_ks, layer_vs; /* fp8: offsets of this layer's K and V scales in b->kvs */
} fwd_ctx;

static void matmul(tm_backend *b, const float *x, int32_t T, const tm_cpu_mat *w, const float *bias, float *y)
{
    if (w->f)
        tm_cpu_matmul_blas(x, T, w->g.k, w->f, w->g.n, bias, y);
    else
        tm_gemm(b->pool, b->isa, x, T, &w->g, bias, y);
}

typedef struct a8_ctx {
    const float *x;
    float *xq;
    int32_t K;
} a8_ctx;

static void task_act8(void *arg, int64_t i0, int64_t i1, int thread)
{
    const a8_ctx *c = arg;
    for (int64_t i = i0; i < i1; i++) {
        float *r = c->xq + (size_t)i * c->K;
        memcpy(r, c->x + (size_t)i * c->K, (size_t)c->K * sizeof(float));
        tm_fp8_fake_quant_row(r, c->K);
    }
}

/* y = x W^T (+ bias); with a8, x's rows are fp8-fake-quantized first (W8A8). */
static void proj(tm_backend *b, const float *x, int32_t T, const tm_cpu_mat *w, const float *bias, float *y, int a8)
{
    if (a8) {
        a8_ctx ac = {.x = x, .xq = b->xq, .K = w->g.k};
        tm_cpu_pool_run(b->pool, T, task_act8, &ac);
        x = b->xq;
    }
    matmul(b, x, T, w, bias, y);
}

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Round to bf16 (nearest even), kept as float. */
static void round_bf16(float *v, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        uint32_t u = bits_of(v[i]);
        if ((u & 0x7fffffffu) > 0x7f800000u) continue; /* NaN stays */
        u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
        memcpy(&v[i], &u, 4);
    }
}

static void task_norm(void *arg, int64_t i0, int64_t i1, int thread)
{
    const fwd_ctx *c = arg;
    tm_backend *b = c->b;
    for (int64_t i = i0; i < i1; i++)
        tm_cpu_rmsnorm(b->xn + i * b->H, b->x + i * b->H, c->norm_w, b->H, b->cfg.rms_norm_eps);
}

static void task_rope_cos_sin(void *arg, int64_t i0, int64_t i1, int thread)
{
    const fwd_ctx *c = arg;
    tm_backend *b = c->b;
    int32_t half = b->hd / 2;
    for (int64_t i = i0; i < i1; i++)
        tm_cpu_rope_cos_sin(b->inv_freq, half, c->bt->positions[i], b->rcos + i * half, b->rsin + i * half);
}

/* q/k norm, RoPE, and K/V into the cache, one token per item. */
static void task_qk(void *arg, int64_t i0, int64_t i1, int thread)
{
    const fwd_ctx *c = arg;
    tm_backend *b = c->b;
    const tm_batch *bt = c->bt;
    int32_t hd = b->hd, half = hd / 2;
    int inter = !!(b->flags & TM_BACKEND_DEBUG_ROPE_INTERLEAVED);
    for (int64_t i = i0; i < i1; i++) {
        float *q = b->q + i * b->qdim, *k = b->k + i * b->kvdim, *v = b->v + i * b->kvdim;
        if (c->layer->q_norm) {
            for (int32_t h = 0; h < b->nh; h++) tm_cpu_rmsnorm(q + h * hd, q + h * hd, c->layer->q_norm, hd, b->cfg.rms_norm_eps);
            for (int32_t h = 0; h < b->nkv; h++) tm_cpu_rmsnorm(k + h * hd, k + h * hd, c->layer->k_norm, hd, b->cfg.rms_norm_eps);
        }
        tm_cpu_rope(q, b->nh, hd, b->rcos + i * half, b->rsin + i * half, inter);
        tm_cpu_rope(k, b->nkv, hd, b->rcos + i * half, b->rsin + i * half, inter);
        int32_t s = b->tok_seq[i], pos = bt->positions[i];
        int32_t blk = tm_batch_table(bt, s)[pos / b->bs];
        size_t slot = (size_t)blk * b->bs + (size_t)(pos % b->bs), off = slot * b->kvdim;
        if (b->kv_dtype == TM_KV_FP8) {
            size_t so = slot * (size_t)b->nkv;
            tm_kv_fp8_quantize(k, b->nkv, hd, b->kv8 + c->layer_k + off, b->kvs + c->layer_ks + so);
            tm_kv_fp8_quantize(v, b->nkv, hd, b->kv8 + c->layer_v + off, b->kvs + c->layer_vs + so);
            continue;
        }
        if (b->kv_dtype == TM_KV_BF16) {
            round_bf16(k, b->kvdim);
            round_bf16(v, b->kvdim);
        }
        memcpy(b->kv + c->layer_k + off, k, (size_t)b->kvdim * sizeof(float));
        memcpy(b->kv + c->layer_v + off, v, (size_t)b->kvdim * sizeof(float));
    }
}

/* Attention, one (token, head) per item. */
static void task_attn(void *arg, int64_t i0, int64_t i1, int thread)
{
    const fwd_ctx *c = arg;
    tm_backend *b = c->b;
    const tm_batch *bt = c->bt;
    float *scores = b->scores + (size_t)thread * b->ctx_max;
    int32_t group = b->nh / b->nkv;
    float scale = (float)(1.0 / sqrt((double)b->hd));
    for (int64_t it = i0; it < i1; it++) {
        int32_t i = (int32_t)(it / b->nh), h = (int32_t)(it % b->nh);
        int32_t s = b->tok_seq[i];
        const int32_t *table = tm_batch_table(bt, s);
        int32_t kvh = (b->flags & TM_BACKEND_DEBUG_GQA_MODULO) ? h % b->nkv : h / group;
        const float *qv = b->q + (size_t)i * b->qdim + (size_t)h * b->hd;
        float *out = b->att + (size_t)i * b->qdim + (size_t)h * b->hd;
        if (b->kv_dtype == TM_KV_FP8) {
            tm_cpu_kv8_view kv = {.k = b->kv8 + c->layer_k, .v = b->kv8 + c->layer_v,
                                  .k_scale = b->kvs + c->layer_ks, .v_scale = b->kvs + c->layer_vs,
                                  .lut = b->e4m3_lut, .block_table = table, .block_size = b->bs,
                                  .n_kv_heads = b->nkv, .head_dim = b->hd};
            tm_cpu_attention_head_fp8(qv, kvh, bt->positions[i] + 1, &kv, scale, scores,
                                      b->kvtmp + (size_t)thread * b->hd, out);
            continue;
        }
        tm_cpu_kv_view kv = {.k = b->kv + c->layer_k, .v = b->kv + c->layer_v, .block_table = table,
                             .block_size = b->bs, .n_kv_heads = b->nkv, .head_dim = b->hd};
        tm_cpu_attention_head(qv, kvh, bt->positions[i] + 1, &kv, scale, scores, out);
    }
}

static void task_swiglu(void *arg, int64_t i0, int64_t i1, int thread)
{
    tm_backend *b = ((const fwd_ctx *)arg)->b;
    for (int64_t i = i0; i < i1; i++) tm_cpu_swiglu(b->gate + i * b->I, b->up + i * b->I, (size_t)b->I);
}

static tm_status cpu_forward(tm_backend *b, const tm_batch *bt, tm_err *err)
{
    if (!b || !bt) return tm_errf(err, TM_ERR_USAGE, "cpu forward: backend and batch are required");
    tm_status st = check_batch(b, bt, err);
    if (st) return st;
    int32_t T = bt->n_tokens, H = b->H;
    for (int32_t s = 0; s < bt->n_seqs; s++)
        for (int32_t i = bt->seq_start[s]; i < bt->seq_start[s + 1]; i++) b->tok_seq[i] = s;
    for (int32_t i = 0; i < T; i++) {
        if (b->embed.f) memcpy(b->x + (size_t)i * H, b->embed.f + (size_t)bt->token_ids[i] * H, (size_t)H * sizeof(float));
        else tm_gemm_unpack_row(&b->embed.g, bt->token_ids[i], b->x + (size_t)i * H);
    }

    fwd_ctx c = {.b = b, .bt = bt};
    tm_cpu_pool_run(b->pool, T, task_rope_cos_sin, &c);
    for (int32_t l = 0; l < b->cfg.n_layers; l++) {
        const cpu_layer *L = &b->layers[l];
        c.layer = L;
        c.layer_k = (size_t)(2 * l) * b->pool_floats;
        c.layer_v = (size_t)(2 * l + 1) * b->pool_floats;
        c.layer_ks = (size_t)(2 * l) * b->pool_scales;
        c.layer_vs = (size_t)(2 * l + 1) * b->pool_scales;
        c.norm_w = L->attn_norm;
        tm_cpu_pool_run(b->pool, T, task_norm, &c);
        proj(b, b->xn, T, &L->wq, L->bq, b->q, L->a8_q);
        proj(b, b->xn, T, &L->wk, L->bk, b->k, L->a8_k);
        proj(b, b->xn, T, &L->wv, L->bv, b->v, L->a8_v);
        tm_cpu_pool_run(b->pool, T, task_qk, &c);
        tm_cpu_pool_run(b->pool, (int64_t)T * b->nh, task_attn, &c);
        proj(b, b->att, T, &L->wo, NULL, b->tmp, L->a8_o);
        for (size_t i = 0; i < (size_t)T * H; i++) b->x[i] += b->tmp[i];
        c.norm_w = L->ffn_norm;
        tm_cpu_pool_run(b->pool, T, task_norm, &c);
        proj(b, b->xn, T, &L->w_gate, NULL, b->gate, L->a8_gate);
        proj(b, b->xn, T, &L->w_up, NULL, b->up, L->a8_up);
        tm_cpu_pool_run(b->pool, T, task_swiglu, &c);
        proj(b, b->gate, T, &L->w_down, NULL, b->tmp, L->a8_down);
        for (size_t i = 0; i < (size_t)T * H; i++) b->x[i] += b->tmp[i];
    }
    if (bt->n_logits == 0) return TM_OK;
    for (int32_t j = 0; j < bt->n_logits; j++)
        tm_cpu_rmsnorm(b->xn + (size_t)j * H, b->x + (size_t)bt->logit_rows[j] * H, b->final_norm, H,
                       b->cfg.rms_norm_eps);
    matmul(b, b->xn, bt->n_logits, &b->lm_head, NULL, bt->logits);
    return TM_OK;
}

static tm_status cpu_copy_block(tm_backend *b, int32_t src, int32_t dst, tm_err *err)
{
    if (!b) return tm_errf(err, TM_ERR_USAGE, "cpu copy_block: no backend");
    if (src < 0 || src >= b->n_blocks || dst < 0 || dst >= b->n_blocks)
        return tm_errf(err, TM_ERR_USAGE, "cpu copy_block: blocks %d -> %d not in [0, %d)", src, dst, b->n_blocks);
    if (src == dst) return TM_OK;
    size_t blk = (size_t)b->bs * b->kvdim, sblk = (size_t)b->bs * b->nkv;
    for (int32_t l = 0; l < 2 * b->cfg.n_layers; l++) {
        if (b->kv_dtype == TM_KV_FP8) {
            uint8_t *pool = b->kv8 + (size_t)l * b->pool_floats;
            float *sc = b->kvs + (size_t)l * b->pool_scales;
            memcpy(pool + (size_t)dst * blk, pool + (size_t)src * blk, blk);
            memcpy(sc + (size_t)dst * sblk, sc + (size_t)src * sblk, sblk * sizeof(float));
            continue;
        }
        float *pool = b->kv + (size_t)l * b->pool_floats;
        memcpy(pool + (size_t)dst * blk, pool + (size_t)src * blk, blk * sizeof(float));
    }
    return TM_OK;
}

const tm_backend_ops tm_backend_cpu = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .forward = cpu_forward,
    .copy_block = cpu_copy_block,
    .kv_block_bytes = cpu_kv_block_bytes,
    .mem_plan = cpu_mem_plan,
    .mem_available = cpu_mem_available,
};
