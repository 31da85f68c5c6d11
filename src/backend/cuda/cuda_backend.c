/* cuda_backend.c — the CUDA backend: backend.h's forward pass on one GPU.
 *
 * create() uploads every weight once into ONE device allocation (matrices
 * bf16 with fused [q;k;v] and [gate;up] per layer, norms and biases fp32:
 * runs of model/arch.h rows, k_runs in cuda_weights.c; mem_plan sizes it all, no GPU),
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
 */#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_int.h"

/* ---- error helpers --------------------------------------------------------- */

tm_status cu_fail(tm_err *err, cudaError_t e, const char *call)
{
    (void)cudaGetLastError(); /* clear a non-sticky error so later calls are not blamed */
    return tm_errf(err, e == cudaErrorMemoryAllocation ? TM_ERR_NOMEM : TM_ERR_INTERNAL,
                   "cuda backend: %s: %s (%s)", call, cudaGetErrorString(e), cudaGetErrorName(e));
}

/* A launcher's int code -> tm_status. */
tm_status cu_k_check(tm_err *err, int rc, const char *what)
{
    if (rc == 0) return TM_OK;
    return cu_fail(err, (cudaError_t)rc, what);
}

tm_status cu_lt_fail(tm_err *err, cublasStatus_t s, const char *call)
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
 * create_scratch's pointers: x, qkv, q, logits (fp32), xn, att (bf16), gu
 * (fp32), act (bf16), attention workspace. */
static void scratch_sizes(const tm_model_config *c, size_t T, size_t LC, size_t sz[CU_NSCRATCH])
{
    size_t H = (size_t)c->hidden_size, I = (size_t)c->intermediate_size, V = (size_t)c->vocab_size;
    size_t Q = (size_t)tm_arch_dim(c, TM_WD_QDIM), QKV = Q + 2 * (size_t)tm_arch_dim(c, TM_WD_KVDIM);
    size_t v[CU_NSCRATCH] = {T * H * 4, T * QKV * 4, T * Q * 4, LC * V * 4, T * H * 2, T * Q * 2, T * 2 * I * 4,
                             T * I * 2, (size_t)cu_attn_ws_floats(c->head_dim) * 4};
    memcpy(sz, v, sizeof v);
}
/* ---- create / destroy -------------------------------------------------------- */

static void cuda_destroy(tm_backend *b)
{
    if (!b) return;
    if (b->stream) cudaStreamSynchronize(b->stream);
    if (b->plans)
        for (int i = 0; i < CU_PLANS; i++) cu_plan_clear(&b->plans[i]);
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

/* The weight arena: sized, allocated, then uploaded (or filled on the device). */
static tm_status create_weights(tm_backend *b, const tm_model *m, tm_err *err)
{
    const int synth = tm_model_is_synthetic(m);
    tm_status st;
    cu_upload u = {.synth = synth, .stream = b->stream};
    if ((st = cu_place_weights(b, m, &u, err))) return st;
    size_t wbytes = u.off;
    cudaError_t e = cudaMalloc(&b->dw, wbytes);
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
    st = cu_place_weights(b, m, &u, err);
    free(u.f32);
    free(u.bf);
    if (st) return st;
    if (synth) CU_TRY(cudaStreamSynchronize(b->stream)); /* init kernel faults surface here, named */
    return TM_OK;
}

/* The bf16 KV pool, zeroed, and the context it holds. */
static tm_status create_kv_pool(tm_backend *b, tm_err *err)
{
    size_t KV = (size_t)b->kvdim;
    b->pool_elems = (size_t)b->n_blocks;
    size_t kv_bytes;
    if (!cu_mul_ok(&b->pool_elems, (size_t)b->bs) || !cu_mul_ok(&b->pool_elems, KV) ||
        (kv_bytes = b->pool_elems, !cu_mul_ok(&kv_bytes, 2 * (size_t)b->L)) || !cu_mul_ok(&kv_bytes, sizeof(uint16_t)))
        return tm_errf(err, TM_ERR_USAGE, "cuda backend: KV pool of %d blocks x %d is too large", b->n_blocks, b->bs);
    cudaError_t e = cudaMalloc((void **)&b->kv, kv_bytes);
    if (e != cudaSuccess)
        return tm_errf(err, e == cudaErrorMemoryAllocation ? TM_ERR_NOMEM : TM_ERR_INTERNAL,
                       "cuda backend: cudaMalloc of a %zu MiB KV pool (%d blocks): %s", kv_bytes >> 20, b->n_blocks,
                       cudaGetErrorString(e));
    CU_TRY(cudaMemset(b->kv, 0, kv_bytes));
    int64_t ctx = (int64_t)b->n_blocks * b->bs;
    b->ctx_max = ctx > INT32_MAX ? INT32_MAX : (int32_t)ctx;
    return TM_OK;
}

/* Activation scratch (one allocation, scratch_sizes' order) followed by the
 * batch's int arrays, and their pinned host staging buffer. */
static tm_status create_scratch(tm_backend *b, tm_err *err)
{
    size_t T = (size_t)b->max_tokens, S = (size_t)b->max_seqs;
    b->logit_cap = cu_logit_cap(b->max_tokens, b->max_seqs);
    b->attn_ws_floats = cu_attn_ws_floats(b->hd);
    size_t sz[CU_NSCRATCH];
    scratch_sizes(&b->cfg, T, (size_t)b->logit_cap, sz);
    void **ptr[CU_NSCRATCH] = {(void **)&b->x, (void **)&b->qkv, (void **)&b->q, (void **)&b->logits,
                    (void **)&b->xn, (void **)&b->att, (void **)&b->gu, (void **)&b->act,
                    (void **)&b->attn_ws};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
        if (sz[i] / 4 / (T ? T : 1) > SIZE_MAX / 64 || total > SIZE_MAX / 2)
            return tm_errf(err, TM_ERR_USAGE, "cuda backend: scratch for %d tokens is too large", b->max_tokens);
        total += cu_align_up(sz[i]);
    }
    size_t nbt = S;
    if (!cu_mul_ok(&nbt, (size_t)b->n_blocks))
        return tm_errf(err, TM_ERR_USAGE, "cuda backend: block tables of %d seqs x %d blocks too large", b->max_seqs,
                       b->n_blocks);
    b->ints_total = 4 * T + nbt;
    if (b->fast) {
        b->fa_off = b->ints_total;
        b->ints_total += 3 * T;
    }
    cudaError_t e = cudaMalloc(&b->dscratch, total + cu_align_up(b->ints_total * sizeof(int32_t)));
    if (e != cudaSuccess)
        return tm_errf(err, e == cudaErrorMemoryAllocation ? TM_ERR_NOMEM : TM_ERR_INTERNAL,
                       "cuda backend: cudaMalloc of %zu MiB scratch for %d tokens: %s", total >> 20, b->max_tokens,
                       cudaGetErrorString(e));
    char *p = b->dscratch;
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
        *ptr[i] = p;
        p += cu_align_up(sz[i]);
    }
    b->d_ints = (int32_t *)p;
    CU_TRY(cudaMallocHost((void **)&b->h_ints, b->ints_total * sizeof(int32_t)));
    return TM_OK;
}

static tm_status create_inner(tm_backend *b, const tm_model *m, tm_err *err)
{
    tm_status st;
    /* shapes: config.c checked the config, the loader every tensor (arch.h) */
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
    if ((st = create_weights(b, m, err)) || (st = create_kv_pool(b, err)) || (st = create_scratch(b, err))) return st;

    /* cuBLASLt */
    cublasStatus_t s = cublasLtCreate(&b->lt);
    if (s != CUBLAS_STATUS_SUCCESS) {
        b->lt = NULL;
        return cu_lt_fail(err, s, "cublasLtCreate");
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
    cu_upload u = {.synth = tm_model_is_synthetic(m)};
    if ((st = cu_place_weights(&sk, m, &u, err))) return st;
    size_t T = (size_t)o->max_batch_tokens, sz[CU_NSCRATCH], scratch = 0;
    scratch_sizes(c, T, (size_t)cu_logit_cap(o->max_batch_tokens, o->max_seqs), sz);
    for (size_t i = 0; i < CU_NSCRATCH; i++) scratch += cu_align_up(sz[i]);
    out->weights = (int64_t)u.off;
    out->kv_block = (int64_t)cuda_kv_block_bytes(m, o->block_size);
    out->per_block = (int64_t)o->max_seqs * (int64_t)sizeof(int32_t); /* a block-table column */
    /* tok, pos, seq, rows, and the fast path's plan (counted whether it is on or not) */
    out->scratch = (int64_t)(scratch + cu_align_up(7 * T * sizeof(int32_t)));
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
    st = create_inner(b, m, err);
    if (st) {
        cuda_destroy(b);
        return st;
    }
    *out = b;
    return TM_OK;
}
const tm_backend_ops tm_backend_cuda = {
    .name = "cuda",
    .create = cuda_create,
    .destroy = cuda_destroy,
    .forward = cu_forward,
    .copy_block = cu_copy_block,
    .kv_block_bytes = cuda_kv_block_bytes,
    .mem_plan = cuda_mem_plan,
    .mem_available = tm_cuda_mem_info,
};
