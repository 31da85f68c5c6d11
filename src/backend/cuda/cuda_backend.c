/* cuda_backend.c — the CUDA backend: backend.h's forward pass on one GPU.
 *
 * create() uploads every weight once into ONE device allocation (matrices
 * bf16 with fused [q;k;v] and [gate;up] per layer, norms and biases fp32:
 * runs of model/arch.h rows, k_runs below; mem_plan sizes it all, no GPU),
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
 * instead of an upload. With TM_BACKEND_CUDA_FAST in opts.flags (--cuda-fast;
 * TOKENMILL_CUDA_FAST=1 in the environment also works) at create() (and a head_dim tm_k_attention_fast_supported() takes), attention
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
#include "backend/cuda/cuda_backend.h"
#include "kernels.h"
#include "model/rope.h"

#define CU_ALIGN 256
#define CU_WS_BYTES ((size_t)32 << 20)
#define CU_CONV_CHUNK ((size_t)1 << 20)
#define CU_PLANS 64 /* cached GEMM shapes */
#define CU_RUNTIME_MARGIN ((size_t)1 << 30) /* CUDA context, cuBLASLt handle, fragmentation */

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
    /* TM_BACKEND_CUDA_FAST (or TOKENMILL_CUDA_FAST=1): tensor-core prefill and GQA
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

/* One bf16 KV block of bs tokens (all layers, K and V); 0 on overflow. */
static size_t cuda_kv_block_bytes(const tm_model *m, int32_t block_size)
{
    return (size_t)tm_arch_kv_bytes(tm_model_config_of(m), block_size, (int)sizeof(uint16_t), 0);
}

/* Logits come back in chunks of this many rows. */
static int32_t cu_logit_cap(int32_t max_tokens, int32_t max_seqs)
{
    int32_t lc = max_tokens < 256 ? max_tokens : 256;
    return lc < max_seqs && max_seqs <= max_tokens ? max_seqs : lc;
}

/* Split-context attention scratch: < 2048 (head, token, split) states. */
static int64_t cu_attn_ws_floats(int32_t head_dim) { return 2048 * (int64_t)(head_dim + 2); }

#define CU_NSCRATCH 9

/* Scratch bytes for T tokens and LC logit rows, in the order of
 * create_inner's pointers: x, qkv, q, logits (fp32), xn, att (bf16), gu
 * (fp32), act (bf16), attention workspace. */
static void scratch_sizes(const tm_model_config *c, size_t T, size_t LC, size_t sz[CU_NSCRATCH])
{
    size_t H = (size_t)c->hidden_size, I = (size_t)c->intermediate_size, V = (size_t)c->vocab_size;
    size_t Q = (size_t)tm_arch_dim(c, TM_WD_QDIM), QKV = Q + 2 * (size_t)tm_arch_dim(c, TM_WD_KVDIM);
    size_t v[CU_NSCRATCH] = {T * H * 4, T * QKV * 4, T * Q * 4, LC * V * 4, T * H * 2, T * Q * 2, T * 2 * I * 4,
                             T * I * 2, (size_t)cu_attn_ws_floats(c->head_dim) * 4};
    memcpy(sz, v, sizeof v);
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

/* The device layout of one layer: runs of arch.h tensors in this order, each
 * run aligned, the parts of a run back to back (fused [q;k;v], [gate;up],
 * [bq;bk;bv]). Matrices are bf16, norms and biases fp32. */
enum { CU_QKV, CU_O, CU_GU, CU_DOWN, CU_ATTN_NORM, CU_FFN_NORM, CU_BQKV, CU_Q_NORM, CU_K_NORM, CU_NRUNS };
static const tm_wid k_runs[CU_NRUNS][4] = {
    [CU_QKV] = {TM_W_Q, TM_W_K, TM_W_V, TM_W_COUNT}, [CU_O] = {TM_W_O, TM_W_COUNT},
    [CU_GU] = {TM_W_GATE, TM_W_UP, TM_W_COUNT},      [CU_DOWN] = {TM_W_DOWN, TM_W_COUNT},
    [CU_ATTN_NORM] = {TM_W_ATTN_NORM, TM_W_COUNT},   [CU_FFN_NORM] = {TM_W_FFN_NORM, TM_W_COUNT},
    [CU_BQKV] = {TM_W_BQ, TM_W_BK, TM_W_BV, TM_W_COUNT},
    [CU_Q_NORM] = {TM_W_Q_NORM, TM_W_COUNT},         [CU_K_NORM] = {TM_W_K_NORM, TM_W_COUNT},
};

static void set_run(cu_layer *cl, int run, void *p)
{
    switch (run) {
    case CU_QKV: cl->wqkv = p; break;
    case CU_O: cl->wo = p; break;
    case CU_GU: cl->wgu = p; break;
    case CU_DOWN: cl->wdown = p; break;
    case CU_ATTN_NORM: cl->attn_norm = p; break;
    case CU_FFN_NORM: cl->ffn_norm = p; break;
    case CU_BQKV: cl->bqkv = p; break;
    case CU_Q_NORM: cl->q_norm = p; break;
    case CU_K_NORM: cl->k_norm = p; break;
    }
}

/* Whether run r of layer l goes to the device: a part is present and no
 * debug flag switches it off. */
static int run_wanted(const tm_model *m, unsigned flags, int r, int l)
{
    if (r == CU_BQKV && (flags & TM_BACKEND_DEBUG_NO_QKV_BIAS)) return 0;
    if ((r == CU_Q_NORM || r == CU_K_NORM) && (flags & TM_BACKEND_DEBUG_NO_QK_NORM)) return 0;
    for (int i = 0; k_runs[r][i] != TM_W_COUNT; i++)
        if (tm_tensor_present(tm_model_weight(m, k_runs[r][i], l))) return 1;
    return 0;
}

/* Places tensor id (layer l) at u->off as put() does; fp32 for vectors. */
static tm_status put_id(upload *u, const tm_model *m, tm_wid id, int l, void **dst, tm_err *err)
{
    const tm_wspec *s = tm_arch_spec(id);
    int vec = s->role == TM_WR_NORM || s->role == TM_WR_BIAS;
    init_kind init = s->role == TM_WR_NORM ? INIT_ONES : s->role == TM_WR_BIAS ? INIT_BIAS : INIT_MATRIX;
    return put(u, tm_model_weight(m, id, l), (size_t)tm_arch_elems(tm_model_config_of(m), s), vec, init, dst, err);
}

/* Run r of layer l at u->off; *dst its first part's device address. A
 * single tensor advances u's synthetic seed; the parts of a fused run take
 * consecutive seeds from it without advancing it (as the layout always did). */
static tm_status put_run(upload *u, const tm_model *m, int r, int l, void **dst, tm_err *err)
{
    if (k_runs[r][1] == TM_W_COUNT) return put_id(u, m, k_runs[r][0], l, dst, err);
    upload part = *u;
    size_t at = u->off;
    tm_status st;
    for (int i = 0; k_runs[r][i] != TM_W_COUNT; i++) {
        const tm_wspec *s = tm_arch_spec(k_runs[r][i]);
        size_t es = s->role == TM_WR_NORM || s->role == TM_WR_BIAS ? 4 : 2;
        part.off = at;
        if ((st = put_id(&part, m, k_runs[r][i], l, i ? NULL : dst, err))) return st;
        at += (size_t)tm_arch_elems(tm_model_config_of(m), s) * es;
    }
    u->off += align_up(at - u->off);
    return TM_OK;
}

/* One pass over all weights: sizing when u->base == NULL (then only b->cfg
 * and b->flags are read, and nothing is written but u->off), else upload. */
static tm_status place_weights(tm_backend *b, const tm_model *m, upload *u, tm_err *err)
{
    const int sizing = u->base == NULL;
    int tied = tm_model_lm_head_tied(m);
    void *p = NULL, *lm = NULL, *fn = NULL;
    tm_status st;
    if ((st = put_id(u, m, TM_W_EMBED, 0, &p, err))) return st;
    if (!tied && (st = put_id(u, m, TM_W_LM_HEAD, 0, &lm, err))) return st;
    if ((st = put_id(u, m, TM_W_FINAL_NORM, 0, &fn, err))) return st;
    if (!sizing) {
        b->embed = p;
        b->lm_head = tied ? b->embed : lm;
        b->final_norm = fn;
    }
    /* inv_freq (double), computed exactly as the CPU reference does */
    size_t half = (size_t)b->cfg.head_dim / 2, off = u->off;
    u->off += align_up(half * sizeof(double));
    if (!sizing) {
        b->inv_freq = (const double *)(u->base + off);
        double *inv = malloc(half * sizeof(double));
        if (!inv) return tm_errf(err, TM_ERR_NOMEM, "cuda backend: out of memory");
        tm_rope_inv_freq(&b->cfg, !(b->flags & TM_BACKEND_DEBUG_NO_ROPE_SCALING), inv);
        cudaError_t e = cudaMemcpy(u->base + off, inv, half * sizeof(double), cudaMemcpyHostToDevice);
        free(inv);
        if (e != cudaSuccess) return cu_fail(err, e, "cudaMemcpy(inv_freq)");
    }
    for (int32_t l = 0; l < b->cfg.n_layers; l++) {
        cu_layer *cl = sizing ? NULL : &b->layers[l];
        if (cl) memset(cl, 0, sizeof *cl);
        for (int r = 0; r < CU_NRUNS; r++) {
            if (!run_wanted(m, b->flags, r, l)) continue;
            if ((st = put_run(u, m, r, l, &p, err))) return st;
            if (cl) set_run(cl, r, p);
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
    size_t KV = (size_t)b->kvdim;

    /* shapes: config.c checked the config, the loader every tensor (arch.h) */
    const int synth = tm_model_is_synthetic(m);
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
    b->logit_cap = cu_logit_cap(b->max_tokens, b->max_seqs);
    b->attn_ws_floats = cu_attn_ws_floats(b->hd);
    size_t sz[CU_NSCRATCH];
    scratch_sizes(c, T, (size_t)b->logit_cap, sz);
    void **ptr[CU_NSCRATCH] = {(void **)&b->x, (void **)&b->qkv, (void **)&b->q, (void **)&b->logits,
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

/* What this backend runs (config.c checked the rest of the shape). */
static tm_status cuda_supported(const tm_model_config *c, const tm_backend_opts *o, tm_err *err)
{
    if (o->max_batch_tokens > 65535)
        return tm_errf(err, TM_ERR_USAGE, "cuda backend: max_batch_tokens %d > 65535", o->max_batch_tokens);
    if (c->quant.method != TM_QM_NONE || o->kv_dtype == TM_KV_FP8) /* quant.h formats: CPU only so far */
        return tm_errf(err, TM_ERR_UNAVAILABLE, "cuda backend: %s are not implemented on the GPU yet (use --device cpu)",
                       o->kv_dtype == TM_KV_FP8 ? "fp8 KV caches" : "quantized weights");
    if (c->head_dim > TM_K_MAX_HEAD_DIM)
        return tm_errf(err, TM_ERR_INPUT, "cuda backend: head_dim %d is larger than the kernels' %d", c->head_dim,
                       TM_K_MAX_HEAD_DIM);
    return TM_OK;
}

static tm_status cuda_mem_plan(const tm_model *m, const tm_backend_opts *o, tm_backend_mem *out, tm_err *err)
{
    memset(out, 0, sizeof *out);
    const tm_model_config *c = tm_model_config_of(m);
    if (o->block_size <= 0 || o->max_batch_tokens <= 0 || o->max_seqs <= 0)
        return tm_errf(err, TM_ERR_USAGE, "cuda backend: block_size (%d), max_batch_tokens (%d) and max_seqs (%d) "
                       "must be > 0", o->block_size, o->max_batch_tokens, o->max_seqs);
    tm_status st = cuda_supported(c, o, err);
    if (st) return st;
    tm_backend sk; /* the sizing pass reads cfg and flags only */
    memset(&sk, 0, sizeof sk);
    sk.cfg = *c;
    sk.flags = o->flags;
    upload u = {.synth = tm_model_is_synthetic(m)};
    if ((st = place_weights(&sk, m, &u, err))) return st;
    size_t T = (size_t)o->max_batch_tokens, sz[CU_NSCRATCH], scratch = 0;
    scratch_sizes(c, T, (size_t)cu_logit_cap(o->max_batch_tokens, o->max_seqs), sz);
    for (size_t i = 0; i < CU_NSCRATCH; i++) scratch += align_up(sz[i]);
    out->weights = (int64_t)u.off;
    out->kv_block = (int64_t)cuda_kv_block_bytes(m, o->block_size);
    out->per_block = (int64_t)o->max_seqs * (int64_t)sizeof(int32_t); /* a block-table column */
    /* tok, pos, seq, rows, and the fast path's plan (counted whether it is on or not) */
    out->scratch = (int64_t)(scratch + align_up(7 * T * sizeof(int32_t)));
    out->reserve = (int64_t)(CU_WS_BYTES + CU_RUNTIME_MARGIN);
    if (!out->kv_block) return tm_errf(err, TM_ERR_INPUT, "cuda backend: %s: KV block size overflows", tm_model_dir(m));
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
    tm_status st = cuda_supported(c, o, err);
    if (st) return st;
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
    const char *fast = getenv("TOKENMILL_CUDA_FAST"); /* fallback for tests/gpu/run.sh */
    b->fast = ((o->flags & TM_BACKEND_CUDA_FAST) || (fast && strcmp(fast, "1") == 0)) &&
              tm_k_attention_fast_supported(b->hd);
    st = create_inner(b, m, o, err);
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
    .mem_plan = cuda_mem_plan,
    .mem_available = tm_cuda_mem_info,
};
