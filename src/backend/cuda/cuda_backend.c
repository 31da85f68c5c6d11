/* cuda_backend.c — the CUDA backend: backend.h's forward pass on one GPU.
 *
 * create() uploads every weight once into ONE device allocation (matrices
 * bf16 with fused [q;k;v] and [gate;up] per layer, norms and biases fp32),
 * sizes the bf16 KV pool ([layer][K|V][block][slot][kv_head][head_dim]),
 * the activation scratch for max_batch_tokens, a pinned staging buffer for
 * the batch's int arrays, the stream and the cuBLASLt handle + workspace.
 * forward() allocates no device memory: one upload of the int arrays, the
 * layers (cuBLASLt GEMMs bf16 x bf16 -> fp32 compute, kernels of
 * kernels/kernels.h), then lm_head for logit_rows only, fp32 logits back
 * (in chunks of <= 256 rows). cuBLASLt plans are cached per GEMM shape, so a
 * step of a known shape creates nothing. Every CUDA / cuBLASLt failure
 * becomes a tm_status naming the call. A synthetic model (model.h) gets the
 * same layout, filled on the device by one tm_k_init_synthetic launch per
 * tensor (matrices uniform in +-1/sqrt(in_features), norms 1, biases +-0.02)
 * instead of an upload. With TOKENMILL_CUDA_FAST=1 in the environment at
 * create() (and a head_dim tm_k_attention_fast_supported() takes), attention
 * runs on the tensor-core kernels instead of tm_k_attention: sequences with
 * one new token through tm_k_attention_decode_gqa, the others through
 * tm_k_attention_prefill_fa2 in tiles of 64 tokens. They are not yet
 * verified on a GPU (docs/gpu-notes.md), so the default stays the scalar path.
 */
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/cuda_backend.h"
#include "kernels.h"

#define CU_ALIGN 256
#define CU_WS_BYTES ((size_t)32 << 20)
#define CU_CONV_CHUNK ((size_t)1 << 20)
#define CU_PLANS 64 /* cached GEMM shapes */

typedef struct cu_layer {
    const uint16_t *wqkv, *wo, *wgu, *wdown;                      /* bf16 */
    const float *attn_norm, *ffn_norm, *bqkv, *q_norm, *k_norm;   /* fp32; optional ones NULL */
} cu_layer;

/* A cuBLASLt plan (descriptors + the heuristic's algorithm) for one GEMM
 * shape, cached so that a step of the same shape creates nothing. */
typedef struct gemm_plan {
    int32_t T, K, N, y_f32, beta1, used;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
} gemm_plan;

static void plan_clear(gemm_plan *p)
{
    if (p->lc) cublasLtMatrixLayoutDestroy(p->lc);
    if (p->lb) cublasLtMatrixLayoutDestroy(p->lb);
    if (p->la) cublasLtMatrixLayoutDestroy(p->la);
    if (p->op) cublasLtMatmulDescDestroy(p->op);
    memset(p, 0, sizeof *p);
}

struct tm_backend {
    tm_model_config cfg;
    unsigned flags;
    int32_t H, I, V, nh, nkv, hd, qdim, kvdim, qkvdim, L;
    /* weights: one device allocation */
    void *dw;
    const uint16_t *embed, *lm_head;
    const float *final_norm;
    const double *inv_freq;
    cu_layer *layers;
    /* KV pool (bf16) */
    uint16_t *kv;
    size_t pool_elems; /* elements of one layer's K (or V) pool */
    int32_t n_blocks, bs, ctx_max;
    /* scratch */
    int32_t max_tokens, max_seqs, logit_cap;
    void *dscratch;
    float *x, *qkv, *q, *logits, *gu, *attn_ws;
    int64_t attn_ws_floats;
    uint16_t *xn, *att, *act;
    int32_t *d_ints, *h_ints; /* [tok | pos | seq | rows | block tables], device and pinned host */
    size_t ints_total;
    /* TOKENMILL_CUDA_FAST=1 (read at create): tensor-core prefill and GQA
     * decode attention (kernels.h fast paths, not yet verified on a GPU);
     * their plan [tiles 2T | decode items T] follows the ints above */
    int fast;
    size_t fa_off;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *ws;
    gemm_plan *plans; /* [CU_PLANS] */
    int next_plan;
};

/* ---- error helpers --------------------------------------------------------- */

static tm_status cu_fail(tm_err *err, cudaError_t e, const char *call)
{
    (void)cudaGetLastError(); /* clear a non-sticky error so later calls are not blamed */
    return tm_errf(err, e == cudaErrorMemoryAllocation ? TM_ERR_NOMEM : TM_ERR_INTERNAL,
                   "cuda backend: %s: %s (%s)", call, cudaGetErrorString(e), cudaGetErrorName(e));
}

#define CU_TRY(call)                                                    \
    do {                                                                \
        cudaError_t e_ = (call);                                        \
        if (e_ != cudaSuccess) return cu_fail(err, e_, #call);          \
    } while (0)

/* A launcher's int code -> tm_status. */
static tm_status k_check(tm_err *err, int rc, const char *what)
{
    if (rc == 0) return TM_OK;
    return cu_fail(err, (cudaError_t)rc, what);
}

static tm_status lt_fail(tm_err *err, cublasStatus_t s, const char *call)
{
    return tm_errf(err, TM_ERR_INTERNAL, "cuda backend: %s: %s", call, cublasLtGetStatusString(s));
}

int tm_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

tm_status tm_cuda_mem_info(size_t *free_bytes, size_t *total_bytes, tm_err *err)
{
    size_t f = 0, t = 0;
    cudaError_t e = cudaMemGetInfo(&f, &t);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return tm_errf(err, TM_ERR_UNAVAILABLE, "cuda: cudaMemGetInfo: %s", cudaGetErrorString(e));
    }
    *free_bytes = f;
    *total_bytes = t;
    return TM_OK;
}

tm_status tm_cuda_device_name(char *buf, size_t n, tm_err *err)
{
    int dev = 0;
    struct cudaDeviceProp prop;
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, dev);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return tm_errf(err, TM_ERR_UNAVAILABLE, "cuda: cudaGetDeviceProperties: %s", cudaGetErrorString(e));
    }
    if (n) snprintf(buf, n, "%s", prop.name);
    return TM_OK;
}

/* ---- sizes ----------------------------------------------------------------- */

static int mul_ok(size_t *acc, size_t b)
{
    if (b && *acc > SIZE_MAX / b) return 0;
    *acc *= b;
    return 1;
}

static size_t align_up(size_t n) { return (n + CU_ALIGN - 1) / CU_ALIGN * CU_ALIGN; }

static size_t cuda_kv_block_bytes(const tm_model *m, int32_t block_size)
{
    const tm_model_config *c = tm_model_config_of(m);
    if (block_size <= 0 || c->n_layers <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0) return 0;
    size_t n = (size_t)c->n_layers * 2;
    if (!mul_ok(&n, (size_t)block_size) || !mul_ok(&n, (size_t)c->n_kv_heads) ||
        !mul_ok(&n, (size_t)c->head_dim) || !mul_ok(&n, sizeof(uint16_t)))
        return 0;
    return n;
}

/* Whether a tensor is there: data, or (synthetic model) a shape without data. */
static int present(const tm_tensor *t, int synth) { return t->data || (synth && t->nbytes); }

/* lm_head is embed: same mapping, or (synthetic) the config says so. */
static int lm_head_tied(const tm_model *m)
{
    if (tm_model_is_synthetic(m)) return tm_model_config_of(m)->tie_word_embeddings;
    return tm_model_lm_head(m)->data == tm_model_embed(m)->data;
}

static tm_status tensor_check(const tm_tensor *t, const char *what, size_t n, int required, int synth, tm_err *err)
{
    if (!present(t, synth)) {
        if (required) return tm_errf(err, TM_ERR_INPUT, "cuda backend: tensor %s is missing", what);
        return TM_OK;
    }
    size_t es = tm_dtype_size(t->dtype), need = n;
    if (!es || !mul_ok(&need, es) || t->nbytes != need)
        return tm_errf(err, TM_ERR_INPUT, "cuda backend: tensor %s has %zu bytes, expected %zu elements of %s",
                       t->name ? t->name : what, t->nbytes, n, tm_dtype_name(t->dtype));
    return TM_OK;
}

/* ---- weight upload ------------------------------------------------------------ */

/* The weight arena is laid out twice: once with base == NULL to size it, once
 * to upload. `off` advances by each tensor's aligned size. */
typedef struct upload {
    char *base;       /* device base, NULL while sizing */
    size_t off;
    float *f32;       /* host staging: CU_CONV_CHUNK floats */
    uint16_t *bf;     /* host staging: CU_CONV_CHUNK bf16 */
    int synth;        /* synthetic model: fill on the device, no host data */
    uint32_t n_init;  /* synthetic: tensors filled so far (the seed of the next) */
    cudaStream_t stream;
} upload;

/* How a synthetic tensor is filled. */
typedef enum init_kind { INIT_MATRIX, INIT_ONES, INIT_BIAS } init_kind;

static uint16_t f32_to_bf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0; /* NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Place n elements of t (zeros when t is absent) as bf16 or fp32 at u->off;
 * *dst (when dst is not NULL) gets the device pointer (NULL while sizing).
 * Synthetic: t is filled on the device as `init` says (matrices [out, in]:
 * uniform in +-1/sqrt(in); norms 1; biases uniform in +-0.02). */
static tm_status put(upload *u, const tm_tensor *t, size_t n, int as_f32, init_kind init, void **dst,
                     tm_err *err)
{
    size_t es = as_f32 ? 4 : 2;
    size_t off = u->off;
    u->off += align_up(n * es);
    if (dst) *dst = u->base ? u->base + off : NULL;
    if (!u->base) return TM_OK;
    char *d = u->base + off;
    if (u->synth && t && t->nbytes) {
        float scale = 0.0f, offset = 0.0f;
        if (init == INIT_ONES)
            offset = 1.0f;
        else if (init == INIT_BIAS)
            scale = 0.02f;
        else
            scale = (float)(1.0 / sqrt((double)(t->ndim == 2 && t->shape[1] > 0 ? t->shape[1] : 1)));
        return k_check(err, tm_k_init_synthetic(d, as_f32, (int64_t)n, u->n_init++, scale, offset, u->stream),
                       "tm_k_init_synthetic");
    }
    if (!t || !t->data) {
        CU_TRY(cudaMemset(d, 0, n * es));
        return TM_OK;
    }
    if (!as_f32 && t->dtype == TM_DTYPE_BF16) {
        CU_TRY(cudaMemcpy(d, t->data, n * 2, cudaMemcpyHostToDevice));
        return TM_OK;
    }
    size_t esrc = tm_dtype_size(t->dtype);
    for (size_t i = 0; i < n; i += CU_CONV_CHUNK) {
        size_t c = n - i < CU_CONV_CHUNK ? n - i : CU_CONV_CHUNK;
        tm_dtype_to_f32(t->dtype, (const char *)t->data + i * esrc, u->f32, c);
        if (as_f32) {
            CU_TRY(cudaMemcpy(d + i * 4, u->f32, c * 4, cudaMemcpyHostToDevice));
        } else {
            for (size_t j = 0; j < c; j++) u->bf[j] = f32_to_bf16_bits(u->f32[j]);
            CU_TRY(cudaMemcpy(d + i * 2, u->bf, c * 2, cudaMemcpyHostToDevice));
        }
    }
    return TM_OK;
}

/* One pass over all weights (sizing when u->base == NULL). */
static tm_status place_weights(tm_backend *b, const tm_model *m, upload *u, tm_err *err)
{
    size_t H = (size_t)b->H, I = (size_t)b->I, V = (size_t)b->V, Q = (size_t)b->qdim, KV = (size_t)b->kvdim;
    size_t hd = (size_t)b->hd;
    const tm_tensor *emb = tm_model_embed(m), *fn = tm_model_final_norm(m), *lmh = tm_model_lm_head(m);
    int tied = lm_head_tied(m);
    void *p;
    tm_status st;
    if ((st = put(u, emb, V * H, 0, INIT_MATRIX, &p, err))) return st;
    b->embed = p;
    if (tied) {
        b->lm_head = b->embed;
    } else {
        if ((st = put(u, lmh, V * H, 0, INIT_MATRIX, &p, err))) return st;
        b->lm_head = p;
    }
    if ((st = put(u, fn, H, 1, INIT_ONES, &p, err))) return st;
    b->final_norm = p;
    /* inv_freq (double), computed exactly as the CPU reference does */
    size_t half = hd / 2, off = u->off;
    u->off += align_up(half * sizeof(double));
    b->inv_freq = u->base ? (const double *)(u->base + off) : NULL;
    if (u->base) {
        double *inv = malloc(half * sizeof(double));
        if (!inv) return tm_errf(err, TM_ERR_NOMEM, "cuda backend: out of memory");
        tm_cpu_rope_inv_freq(&b->cfg, !(b->flags & TM_BACKEND_DEBUG_NO_ROPE_SCALING), inv);
        cudaError_t e = cudaMemcpy(u->base + off, inv, half * sizeof(double), cudaMemcpyHostToDevice);
        free(inv);
        if (e != cudaSuccess) return cu_fail(err, e, "cudaMemcpy(inv_freq)");
    }
    for (int32_t l = 0; l < b->L; l++) {
        const tm_layer_weights *w = tm_model_layer(m, l);
        cu_layer *cl = &b->layers[l];
        void *q;
        /* fused [q; k; v] rows, then [gate; up] rows: the parts sit back to
         * back with no alignment padding between them */
        size_t base_off = u->off;
        {
            upload uq = *u;
            uq.off = base_off;
            if ((st = put(&uq, &w->wq, Q * H, 0, INIT_MATRIX, &q, err))) return st;
            uq.off = base_off + Q * H * 2;
            if ((st = put(&uq, &w->wk, KV * H, 0, INIT_MATRIX, NULL, err))) return st;
            uq.off = base_off + (Q + KV) * H * 2;
            if ((st = put(&uq, &w->wv, KV * H, 0, INIT_MATRIX, NULL, err))) return st;
            u->off = base_off + align_up((Q + 2 * KV) * H * 2);
        }
        cl->wqkv = q;
        if ((st = put(u, &w->wo, H * Q, 0, INIT_MATRIX, &p, err))) return st;
        cl->wo = p;
        base_off = u->off;
        {
            upload ug = *u;
            void *g;
            ug.off = base_off;
            if ((st = put(&ug, &w->w_gate, I * H, 0, INIT_MATRIX, &g, err))) return st;
            ug.off = base_off + I * H * 2;
            if ((st = put(&ug, &w->w_up, I * H, 0, INIT_MATRIX, NULL, err))) return st;
            cl->wgu = g;
            u->off = base_off + align_up(2 * I * H * 2);
        }
        if ((st = put(u, &w->w_down, H * I, 0, INIT_MATRIX, &p, err))) return st;
        cl->wdown = p;
        if ((st = put(u, &w->attn_norm, H, 1, INIT_ONES, &p, err))) return st;
        cl->attn_norm = p;
        if ((st = put(u, &w->ffn_norm, H, 1, INIT_ONES, &p, err))) return st;
        cl->ffn_norm = p;
        cl->bqkv = NULL;
        if ((present(&w->bq, u->synth) || present(&w->bk, u->synth) || present(&w->bv, u->synth)) &&
            !(b->flags & TM_BACKEND_DEBUG_NO_QKV_BIAS)) {
            size_t bo = u->off;
            upload ub = *u;
            void *bq;
            ub.off = bo;
            if ((st = put(&ub, &w->bq, Q, 1, INIT_BIAS, &bq, err))) return st;
            ub.off = bo + Q * 4;
            if ((st = put(&ub, &w->bk, KV, 1, INIT_BIAS, NULL, err))) return st;
            ub.off = bo + (Q + KV) * 4;
            if ((st = put(&ub, &w->bv, KV, 1, INIT_BIAS, NULL, err))) return st;
            cl->bqkv = bq;
            u->off = bo + align_up((Q + 2 * KV) * 4);
        }
        cl->q_norm = cl->k_norm = NULL;
        if (present(&w->q_norm, u->synth) && present(&w->k_norm, u->synth) &&
            !(b->flags & TM_BACKEND_DEBUG_NO_QK_NORM)) {
            if ((st = put(u, &w->q_norm, hd, 1, INIT_ONES, &p, err))) return st;
            cl->q_norm = p;
            if ((st = put(u, &w->k_norm, hd, 1, INIT_ONES, &p, err))) return st;
            cl->k_norm = p;
        }
    }
    return TM_OK;
}

/* ---- create / destroy -------------------------------------------------------- */

static void cuda_destroy(tm_backend *b)
{
    if (!b) return;
    if (b->stream) cudaStreamSynchronize(b->stream);
    if (b->plans)
        for (int i = 0; i < CU_PLANS; i++) plan_clear(&b->plans[i]);
    free(b->plans);
    if (b->lt) cublasLtDestroy(b->lt);
    cudaFree(b->ws);
    cudaFree(b->dw);
    cudaFree(b->kv);
    cudaFree(b->dscratch);
    cudaFreeHost(b->h_ints);
    if (b->stream) cudaStreamDestroy(b->stream);
    (void)cudaGetLastError();
    free(b->layers);
    free(b);
}

static tm_status create_inner(tm_backend *b, const tm_model *m, const tm_backend_opts *o, tm_err *err)
{
    const tm_model_config *c = &b->cfg;
    tm_status st;
    size_t H = (size_t)b->H, I = (size_t)b->I, V = (size_t)b->V, Q = (size_t)b->qdim, KV = (size_t)b->kvdim;
    size_t hd = (size_t)b->hd;

    /* check every tensor first */
    const int synth = tm_model_is_synthetic(m);
    const tm_tensor *emb = tm_model_embed(m), *fn = tm_model_final_norm(m), *lmh = tm_model_lm_head(m);
    int tied = lm_head_tied(m);
    if ((st = tensor_check(emb, "embed_tokens", V * H, 1, synth, err)) ||
        (st = tensor_check(fn, "norm", H, 1, synth, err)) ||
        (!tied && (st = tensor_check(lmh, "lm_head", V * H, 1, synth, err))))
        return st;
    for (int32_t l = 0; l < b->L; l++) {
        const tm_layer_weights *w = tm_model_layer(m, l);
        if (!w) return tm_errf(err, TM_ERR_INPUT, "cuda backend: layer %d is missing", l);
        struct { const tm_tensor *t; const char *name; size_t n; int req; } ts[] = {
            {&w->attn_norm, "input_layernorm", H, 1}, {&w->wq, "q_proj", Q * H, 1},
            {&w->wk, "k_proj", KV * H, 1},            {&w->wv, "v_proj", KV * H, 1},
            {&w->wo, "o_proj", H * Q, 1},             {&w->bq, "q_proj.bias", Q, 0},
            {&w->bk, "k_proj.bias", KV, 0},           {&w->bv, "v_proj.bias", KV, 0},
            {&w->q_norm, "q_norm", hd, c->qk_norm},   {&w->k_norm, "k_norm", hd, c->qk_norm},
            {&w->ffn_norm, "post_attention_layernorm", H, 1}, {&w->w_gate, "gate_proj", I * H, 1},
            {&w->w_up, "up_proj", I * H, 1},          {&w->w_down, "down_proj", H * I, 1},
        };
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
            if ((st = tensor_check(ts[i].t, ts[i].name, ts[i].n, ts[i].req, synth, err)))
                return tm_err_prefix(err, st, "layer %d", l);
    }
    b->layers = calloc((size_t)b->L, sizeof *b->layers);
    if (!b->layers) return tm_errf(err, TM_ERR_NOMEM, "cuda backend: out of memory");

    int ndev = 0;
    cudaError_t e = cudaGetDeviceCount(&ndev);
    if (e != cudaSuccess || ndev <= 0) {
        (void)cudaGetLastError();
        return tm_errf(err, TM_ERR_UNAVAILABLE, "cuda backend: no CUDA device (%s)",
                       e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount returned 0");
    }
    CU_TRY(cudaStreamCreateWithFlags(&b->stream, cudaStreamNonBlocking));

    /* weights */
    upload u = {.synth = synth, .stream = b->stream};
    if ((st = place_weights(b, m, &u, err))) return st;
    size_t wbytes = u.off;
    e = cudaMalloc(&b->dw, wbytes);
    if (e != cudaSuccess)
        return tm_errf(err, e == cudaErrorMemoryAllocation ? TM_ERR_NOMEM : TM_ERR_INTERNAL,
                       "cuda backend: cudaMalloc of %zu MiB of weights: %s", wbytes >> 20, cudaGetErrorString(e));
    u.base = b->dw;
    u.off = 0;
    if (!synth) {
        u.f32 = malloc(CU_CONV_CHUNK * sizeof(float));
        u.bf = malloc(CU_CONV_CHUNK * sizeof(uint16_t));
        if (!u.f32 || !u.bf) {
            free(u.f32);
            free(u.bf);
            return tm_errf(err, TM_ERR_NOMEM, "cuda backend: out of memory");
        }
    }
    st = place_weights(b, m, &u, err);
    free(u.f32);
    free(u.bf);
    if (st) return st;
    if (synth) CU_TRY(cudaStreamSynchronize(b->stream)); /* init kernel faults surface here, named */

    /* KV pool */
    b->pool_elems = (size_t)b->n_blocks;
    size_t kv_bytes;
    if (!mul_ok(&b->pool_elems, (size_t)b->bs) || !mul_ok(&b->pool_elems, KV) ||
        (kv_bytes = b->pool_elems, !mul_ok(&kv_bytes, 2 * (size_t)b->L)) || !mul_ok(&kv_bytes, sizeof(uint16_t)))
        return tm_errf(err, TM_ERR_USAGE, "cuda backend: KV pool of %d blocks x %d is too large", b->n_blocks, b->bs);
    e = cudaMalloc((void **)&b->kv, kv_bytes);
    if (e != cudaSuccess)
        return tm_errf(err, e == cudaErrorMemoryAllocation ? TM_ERR_NOMEM : TM_ERR_INTERNAL,
                       "cuda backend: cudaMalloc of a %zu MiB KV pool (%d blocks): %s", kv_bytes >> 20, b->n_blocks,
                       cudaGetErrorString(e));
    CU_TRY(cudaMemset(b->kv, 0, kv_bytes));
    int64_t ctx = (int64_t)b->n_blocks * b->bs;
    b->ctx_max = ctx > INT32_MAX ? INT32_MAX : (int32_t)ctx;

    /* scratch */
    size_t T = (size_t)b->max_tokens, S = (size_t)b->max_seqs;
    /* logits in chunks of logit_cap rows; */
    b->logit_cap = b->max_tokens < 256 ? b->max_tokens : 256;
    if (b->logit_cap < b->max_seqs && b->max_seqs <= b->max_tokens) b->logit_cap = b->max_seqs;
    size_t QKV = (size_t)b->qkvdim, LC = (size_t)b->logit_cap;
    /* split-context attention scratch: < 2048 (head, token, split) states */
    b->attn_ws_floats = 2048 * (int64_t)(b->hd + 2);
    size_t sz[] = {T * H * 4, T * QKV * 4, T * Q * 4, LC * V * 4, T * H * 2, T * Q * 2, T * 2 * I * 4, T * I * 2,
                   (size_t)b->attn_ws_floats * 4};
    void **ptr[] = {(void **)&b->x, (void **)&b->qkv, (void **)&b->q, (void **)&b->logits,
                    (void **)&b->xn, (void **)&b->att, (void **)&b->gu, (void **)&b->act,
                    (void **)&b->attn_ws};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
        if (sz[i] / 4 / (T ? T : 1) > SIZE_MAX / 64 || total > SIZE_MAX / 2)
            return tm_errf(err, TM_ERR_USAGE, "cuda backend: scratch for %d tokens is too large", b->max_tokens);
        total += align_up(sz[i]);
    }
    size_t nbt = S;
    if (!mul_ok(&nbt, (size_t)b->n_blocks))
        return tm_errf(err, TM_ERR_USAGE, "cuda backend: block tables of %d seqs x %d blocks too large", b->max_seqs,
                       b->n_blocks);
    b->ints_total = 4 * T + nbt;
    if (b->fast) {
        b->fa_off = b->ints_total;
        b->ints_total += 3 * T;
    }
    e = cudaMalloc(&b->dscratch, total + align_up(b->ints_total * sizeof(int32_t)));
    if (e != cudaSuccess)
        return tm_errf(err, e == cudaErrorMemoryAllocation ? TM_ERR_NOMEM : TM_ERR_INTERNAL,
                       "cuda backend: cudaMalloc of %zu MiB scratch for %d tokens: %s", total >> 20, b->max_tokens,
                       cudaGetErrorString(e));
    char *p = b->dscratch;
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
        *ptr[i] = p;
        p += align_up(sz[i]);
    }
    b->d_ints = (int32_t *)p;
    CU_TRY(cudaMallocHost((void **)&b->h_ints, b->ints_total * sizeof(int32_t)));

    /* cuBLASLt */
    cublasStatus_t s = cublasLtCreate(&b->lt);
    if (s != CUBLAS_STATUS_SUCCESS) {
        b->lt = NULL;
        return lt_fail(err, s, "cublasLtCreate");
    }
    CU_TRY(cudaMalloc(&b->ws, CU_WS_BYTES));
    b->plans = calloc(CU_PLANS, sizeof *b->plans);
    if (!b->plans) return tm_errf(err, TM_ERR_NOMEM, "cuda backend: out of memory");
    CU_TRY(cudaStreamSynchronize(b->stream));
    CU_TRY(cudaDeviceSynchronize()); /* memsets on the legacy stream are done before a forward on ours */
    return TM_OK;
}

static tm_status cuda_create(const tm_model *m, const tm_backend_opts *o, tm_backend **out, tm_err *err)
{
    *out = NULL;
    if (!m || !o) return tm_errf(err, TM_ERR_USAGE, "cuda backend: model and options are required");
    const tm_model_config *c = tm_model_config_of(m);
    if (o->n_blocks <= 0 || o->block_size <= 0 || o->max_batch_tokens <= 0 || o->max_seqs <= 0)
        return tm_errf(err, TM_ERR_USAGE,
                       "cuda backend: n_blocks (%d), block_size (%d), max_batch_tokens (%d) and max_seqs (%d) must be > 0",
                       o->n_blocks, o->block_size, o->max_batch_tokens, o->max_seqs);
    if (o->max_batch_tokens > 65535)
        return tm_errf(err, TM_ERR_USAGE, "cuda backend: max_batch_tokens %d > 65535", o->max_batch_tokens);
    if (c->quant.method != TM_QM_NONE || o->kv_dtype == TM_KV_FP8) /* quant.h formats: CPU only so far */
        return tm_errf(err, TM_ERR_UNAVAILABLE, "cuda backend: %s are not implemented on the GPU yet (use --device cpu)",
                       o->kv_dtype == TM_KV_FP8 ? "fp8 KV caches" : "quantized weights");
    if (c->hidden_size <= 0 || c->intermediate_size <= 0 || c->vocab_size <= 0 || c->n_layers <= 0 ||
        c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 || c->head_dim % 2 ||
        c->head_dim > TM_K_MAX_HEAD_DIM || c->n_heads % c->n_kv_heads)
        return tm_errf(err, TM_ERR_INPUT, "cuda backend: unsupported model shape (hidden %d, inter %d, vocab %d, "
                       "layers %d, heads %d, kv_heads %d, head_dim %d; head_dim must be even and <= %d)",
                       c->hidden_size, c->intermediate_size, c->vocab_size, c->n_layers, c->n_heads, c->n_kv_heads,
                       c->head_dim, TM_K_MAX_HEAD_DIM);
    tm_backend *b = calloc(1, sizeof *b);
    if (!b) return tm_errf(err, TM_ERR_NOMEM, "cuda backend: out of memory");
    b->cfg = *c;
    b->flags = o->flags;
    b->H = c->hidden_size;
    b->I = c->intermediate_size;
    b->V = c->vocab_size;
    b->nh = c->n_heads;
    b->nkv = c->n_kv_heads;
    b->hd = c->head_dim;
    b->L = c->n_layers;
    b->qdim = b->nh * b->hd;
    b->kvdim = b->nkv * b->hd;
    b->qkvdim = b->qdim + 2 * b->kvdim;
    b->n_blocks = o->n_blocks;
    b->bs = o->block_size;
    b->max_tokens = o->max_batch_tokens;
    b->max_seqs = o->max_seqs;
    const char *fast = getenv("TOKENMILL_CUDA_FAST");
    b->fast = fast && strcmp(fast, "1") == 0 && tm_k_attention_fast_supported(b->hd);
    tm_status st = create_inner(b, m, o, err);
    if (st) {
        cuda_destroy(b);
        return st;
    }
    *out = b;
    return TM_OK;
}

/* ---- GEMM -------------------------------------------------------------------- */

/* Build the plan for Y[T, N] = X[T, K] W[N, K]^T (see gemm()). */
static tm_status plan_make(tm_backend *b, gemm_plan *p, int32_t T, int32_t K, int32_t N, int y_f32, int beta1,
                           tm_err *err)
{
    cublasLtMatmulPreference_t pref = NULL;
    cublasStatus_t s;
    const char *call = "cublasLtMatmulDescCreate";
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    size_t ws = CU_WS_BYTES;
    tm_status st = TM_OK;
    plan_clear(p);
    if ((s = cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F))) goto lt_err;
    call = "cublasLtMatmulDescSetAttribute";
    if ((s = cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta))) goto lt_err;
    if ((s = cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb))) goto lt_err;
    call = "cublasLtMatrixLayoutCreate";
    if ((s = cublasLtMatrixLayoutCreate(&p->la, CUDA_R_16BF, (uint64_t)K, (uint64_t)N, K))) goto lt_err;
    if ((s = cublasLtMatrixLayoutCreate(&p->lb, CUDA_R_16BF, (uint64_t)K, (uint64_t)T, K))) goto lt_err;
    if ((s = cublasLtMatrixLayoutCreate(&p->lc, y_f32 ? CUDA_R_32F : CUDA_R_16BF, (uint64_t)N, (uint64_t)T, N)))
        goto lt_err;
    call = "cublasLtMatmulPreference";
    if ((s = cublasLtMatmulPreferenceCreate(&pref))) goto lt_err;
    if ((s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws)))
        goto lt_err;
    cublasLtMatmulHeuristicResult_t res;
    int nres = 0;
    call = "cublasLtMatmulAlgoGetHeuristic";
    if ((s = cublasLtMatmulAlgoGetHeuristic(b->lt, p->op, p->la, p->lb, p->lc, p->lc, pref, 1, &res, &nres)))
        goto lt_err;
    if (nres < 1) {
        st = tm_errf(err, TM_ERR_INTERNAL, "cuda backend: cuBLASLt has no algorithm for GEMM %d x %d x %d", T, N, K);
        goto done;
    }
    p->algo = res.algo;
    p->T = T, p->K = K, p->N = N, p->y_f32 = y_f32, p->beta1 = beta1, p->used = 1;
    goto done;
lt_err:
    st = lt_fail(err, s, call);
    tm_err_prefix(err, st, "GEMM %d x %d x %d", T, N, K);
done:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (st) plan_clear(p);
    return st;
}

/* Row-major Y[T, N] (+)= X[T, K] * W[N, K]^T with bf16 X and W, fp32 compute.
 * Column-major view: Y^T[N, T] = op_T(W as K x N) * X^T (K x T).
 * y_f32: Y is fp32 (beta 0 or 1: accumulate into Y), else bf16 (beta 0).
 * Plans are cached by shape (round-robin replacement). */
static tm_status gemm(tm_backend *b, const uint16_t *W, const uint16_t *X, int32_t T, int32_t K, int32_t N,
                      void *Y, int y_f32, float beta, tm_err *err)
{
    int beta1 = beta != 0.0f;
    gemm_plan *p = NULL;
    for (int i = 0; i < CU_PLANS; i++) {
        gemm_plan *q = &b->plans[i];
        if (q->used && q->T == T && q->K == K && q->N == N && q->y_f32 == y_f32 && q->beta1 == beta1) {
            p = q;
            break;
        }
    }
    if (!p) {
        tm_status st;
        p = &b->plans[b->next_plan];
        b->next_plan = (b->next_plan + 1) % CU_PLANS;
        if ((st = plan_make(b, p, T, K, N, y_f32, beta1, err))) return st;
    }
    float alpha = 1.0f;
    cublasStatus_t s = cublasLtMatmul(b->lt, p->op, &alpha, W, p->la, X, p->lb, &beta, Y, p->lc, Y, p->lc, &p->algo,
                                      b->ws, CU_WS_BYTES, b->stream);
    if (s) {
        tm_status st = lt_fail(err, s, "cublasLtMatmul");
        return tm_err_prefix(err, st, "GEMM %d x %d x %d", T, N, K);
    }
    return TM_OK;
}

/* ---- forward ------------------------------------------------------------------- */

static tm_status check_batch(const tm_backend *b, const tm_batch *bt, tm_err *err)
{
    tm_batch_limits lim = {.max_tokens = b->max_tokens, .max_seqs = b->max_seqs, .block_size = b->bs,
                           .n_blocks = b->n_blocks, .ctx_max = b->ctx_max, .vocab = b->V};
    return tm_batch_check(bt, &lim, err);
}

static tm_status cuda_forward(tm_backend *b, const tm_batch *bt, tm_err *err)
{
    if (!b || !bt) return tm_errf(err, TM_ERR_USAGE, "cuda forward: backend and batch are required");
    tm_status st = check_batch(b, bt, err);
    if (st) return st;
    const int32_t T = bt->n_tokens, H = b->H;
    const size_t Tm = (size_t)b->max_tokens;
    int32_t *h_tok = b->h_ints, *h_pos = h_tok + Tm, *h_seq = h_pos + Tm, *h_rows = h_seq + Tm, *h_bt = h_rows + Tm;
    int32_t *d_tok = b->d_ints, *d_pos = d_tok + Tm, *d_seq = d_pos + Tm, *d_rows = d_seq + Tm, *d_bt = d_rows + Tm;

    /* stage the int arrays; block tables compacted to stride mb (<= n_blocks) */
    int32_t mb = 1;
    for (int32_t s = 0; s < bt->n_seqs; s++) {
        int32_t need = (bt->seq_len[s] - 1) / b->bs + 1;
        if (need > mb) mb = need;
    }
    CU_TRY(cudaStreamSynchronize(b->stream)); /* the staging buffer is free */
    memcpy(h_tok, bt->token_ids, (size_t)T * sizeof(int32_t));
    memcpy(h_pos, bt->positions, (size_t)T * sizeof(int32_t));
    for (int32_t s = 0; s < bt->n_seqs; s++) {
        for (int32_t i = bt->seq_start[s]; i < bt->seq_start[s + 1]; i++) h_seq[i] = s;
        int32_t need = (bt->seq_len[s] - 1) / b->bs + 1;
        memcpy(h_bt + (size_t)s * mb, tm_batch_table(bt, s), (size_t)need * sizeof(int32_t));
        for (int32_t j = need; j < mb; j++) h_bt[(size_t)s * mb + j] = 0;
    }
    if (bt->n_logits) memcpy(h_rows, bt->logit_rows, (size_t)bt->n_logits * sizeof(int32_t));
    CU_TRY(cudaMemcpyAsync(d_tok, h_tok, 4 * Tm * sizeof(int32_t), cudaMemcpyHostToDevice, b->stream));
    CU_TRY(cudaMemcpyAsync(d_bt, h_bt, (size_t)bt->n_seqs * mb * sizeof(int32_t), cudaMemcpyHostToDevice, b->stream));
    /* fast path: prefill tiles and decode items, planned on the host */
    int32_t n_tiles = 0, n_dec = 0, dec_ctx = 1;
    const int32_t *d_tiles = NULL, *d_dec = NULL;
    if (b->fast) {
        int32_t *h_tiles = b->h_ints + b->fa_off, *h_dec = h_tiles + 2 * Tm;
        tm_k_attention_plan(bt->seq_start, bt->n_seqs, h_tiles, &n_tiles, h_dec, &n_dec);
        for (int32_t s = 0; s < bt->n_seqs; s++)
            if (bt->seq_start[s + 1] - bt->seq_start[s] == 1 && bt->seq_len[s] > dec_ctx) dec_ctx = bt->seq_len[s];
        d_tiles = b->d_ints + b->fa_off;
        d_dec = d_tiles + 2 * Tm;
        if (n_tiles)
            CU_TRY(cudaMemcpyAsync((void *)d_tiles, h_tiles, (size_t)n_tiles * 2 * sizeof(int32_t),
                                   cudaMemcpyHostToDevice, b->stream));
        if (n_dec)
            CU_TRY(cudaMemcpyAsync((void *)d_dec, h_dec, (size_t)n_dec * sizeof(int32_t), cudaMemcpyHostToDevice,
                                   b->stream));
    }

    if ((st = k_check(err, tm_k_embed_f32(b->embed, d_tok, T, H, b->x, b->stream), "tm_k_embed_f32"))) return st;
    const float eps = b->cfg.rms_norm_eps;
    for (int32_t l = 0; l < b->L; l++) {
        const cu_layer *L = &b->layers[l];
        uint16_t *kc = b->kv + (size_t)(2 * l) * b->pool_elems, *vc = b->kv + (size_t)(2 * l + 1) * b->pool_elems;
        if ((st = k_check(err, tm_k_add_rmsnorm(b->x, NULL, L->attn_norm, NULL, T, H, eps, b->xn, NULL, b->stream),
                          "tm_k_add_rmsnorm(attn)")))
            return st;
        if ((st = gemm(b, L->wqkv, b->xn, T, H, b->qkvdim, b->qkv, 1, 0.0f, err))) return st;
        tm_k_rope_args ra = {.qkv = b->qkv, .bias = L->bqkv, .q_norm = L->q_norm, .k_norm = L->k_norm,
                             .inv_freq = b->inv_freq, .positions = d_pos, .tok_seq = d_seq, .block_tables = d_bt,
                             .bt_stride = mb, .block_size = b->bs, .n_tokens = T, .n_heads = b->nh,
                             .n_kv_heads = b->nkv, .head_dim = b->hd, .eps = eps, .q_out = b->q,
                             .k_cache = kc, .v_cache = vc};
        if ((st = k_check(err, tm_k_qkv_rope_kv_write(&ra, b->stream), "tm_k_qkv_rope_kv_write"))) return st;
        tm_k_attn_args aa = {.q = b->q, .k_cache = kc, .v_cache = vc, .positions = d_pos, .tok_seq = d_seq,
                             .block_tables = d_bt, .bt_stride = mb, .block_size = b->bs, .n_tokens = T,
                             .n_heads = b->nh, .n_kv_heads = b->nkv, .head_dim = b->hd,
                             .scale = (float)(1.0 / sqrt((double)b->hd)), .out = b->att,
                             .workspace = b->attn_ws, .workspace_floats = b->attn_ws_floats};
        if (!b->fast) {
            if ((st = k_check(err, tm_k_attention(&aa, b->stream), "tm_k_attention"))) return st;
        } else {
            tm_k_decode_args da = {.q = b->q, .k_cache = kc, .v_cache = vc, .positions = d_pos, .tok_seq = d_seq,
                                   .block_tables = d_bt, .bt_stride = mb, .block_size = b->bs, .n_heads = b->nh,
                                   .n_kv_heads = b->nkv, .head_dim = b->hd, .scale = aa.scale, .out = b->att,
                                   .tokens = d_dec, .n_items = n_dec, .max_ctx = dec_ctx,
                                   .workspace = b->attn_ws, .workspace_floats = b->attn_ws_floats};
            tm_k_fa_args fa = {.q = b->q, .k_cache = kc, .v_cache = vc, .positions = d_pos, .tok_seq = d_seq,
                               .block_tables = d_bt, .bt_stride = mb, .block_size = b->bs, .n_tokens = T,
                               .n_heads = b->nh, .n_kv_heads = b->nkv, .head_dim = b->hd, .scale = aa.scale,
                               .out = b->att, .tiles = d_tiles, .n_tiles = n_tiles};
            if ((st = k_check(err, tm_k_attention_decode_gqa(&da, b->stream), "tm_k_attention_decode_gqa")) ||
                (st = k_check(err, tm_k_attention_prefill_fa2(&fa, b->stream), "tm_k_attention_prefill_fa2")))
                return st;
        }
        if ((st = gemm(b, L->wo, b->att, T, b->qdim, H, b->x, 1, 1.0f, err))) return st; /* x += att Wo^T */
        if ((st = k_check(err, tm_k_add_rmsnorm(b->x, NULL, L->ffn_norm, NULL, T, H, eps, b->xn, NULL, b->stream),
                          "tm_k_add_rmsnorm(ffn)")))
            return st;
        if ((st = gemm(b, L->wgu, b->xn, T, H, 2 * b->I, b->gu, 1, 0.0f, err))) return st;
        if ((st = k_check(err, tm_k_silu_mul(b->gu, T, b->I, b->act, b->stream), "tm_k_silu_mul"))) return st;
        if ((st = gemm(b, L->wdown, b->act, T, b->I, H, b->x, 1, 1.0f, err))) return st; /* x += mlp */
    }
    for (int32_t c0 = 0; c0 < bt->n_logits; c0 += b->logit_cap) {
        int32_t n = bt->n_logits - c0 < b->logit_cap ? bt->n_logits - c0 : b->logit_cap;
        if ((st = k_check(err, tm_k_add_rmsnorm(b->x, NULL, b->final_norm, d_rows + c0, n, H, eps, b->xn, NULL,
                                               b->stream),
                          "tm_k_add_rmsnorm(final)")))
            return st;
        if ((st = gemm(b, b->lm_head, b->xn, n, H, b->V, b->logits, 1, 0.0f, err))) return st;
        CU_TRY(cudaMemcpyAsync(bt->logits + (size_t)c0 * b->V, b->logits, (size_t)n * b->V * sizeof(float),
                               cudaMemcpyDeviceToHost, b->stream));
    }
    CU_TRY(cudaStreamSynchronize(b->stream));
    return TM_OK;
}

static tm_status cuda_copy_block(tm_backend *b, int32_t src, int32_t dst, tm_err *err)
{
    if (!b) return tm_errf(err, TM_ERR_USAGE, "cuda copy_block: no backend");
    if (src < 0 || src >= b->n_blocks || dst < 0 || dst >= b->n_blocks)
        return tm_errf(err, TM_ERR_USAGE, "cuda copy_block: blocks %d -> %d not in [0, %d)", src, dst, b->n_blocks);
    if (src == dst) return TM_OK;
    size_t blk = (size_t)b->bs * b->kvdim * sizeof(uint16_t), pitch = b->pool_elems * sizeof(uint16_t);
    CU_TRY(cudaMemcpy2DAsync((char *)b->kv + (size_t)dst * blk, pitch, (char *)b->kv + (size_t)src * blk, pitch, blk,
                             2 * (size_t)b->L, cudaMemcpyDeviceToDevice, b->stream));
    CU_TRY(cudaStreamSynchronize(b->stream));
    return TM_OK;
}

const tm_backend_ops tm_backend_cuda = {
    .name = "cuda",
    .create = cuda_create,
    .destroy = cuda_destroy,
    .forward = cuda_forward,
    .copy_block = cuda_copy_block,
    .kv_block_bytes = cuda_kv_block_bytes,
};
