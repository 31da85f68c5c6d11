/* cuda_int.h — private to the CUDA backend (cuda_backend.c: device info,
 * create/destroy, memory plan; cuda_weights.c: the weight layout and its
 * upload; cuda_forward.c: cuBLASLt GEMMs, forward, copy_block). The layout
 * and the forward pass are described in cuda_backend.c's opening comment.
 */
#ifndef TM_CUDA_INT_H
#define TM_CUDA_INT_H

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "kernels.h"

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

/* ---- error helpers (cuda_backend.c) -------------------------------------- */

/* A CUDA runtime error -> TM_ERR_NOMEM (allocation) or TM_ERR_INTERNAL naming call. */
tm_status cu_fail(tm_err *err, cudaError_t e, const char *call);
/* A launcher's int code -> tm_status. */
tm_status cu_k_check(tm_err *err, int rc, const char *what);
tm_status cu_lt_fail(tm_err *err, cublasStatus_t s, const char *call);

#define CU_TRY(call)                                                    \
    do {                                                                \
        cudaError_t e_ = (call);                                        \
        if (e_ != cudaSuccess) return cu_fail(err, e_, #call);          \
    } while (0)

static inline int cu_mul_ok(size_t *acc, size_t b)
{
    if (b && *acc > SIZE_MAX / b) return 0;
    *acc *= b;
    return 1;
}

static inline size_t cu_align_up(size_t n) { return (n + CU_ALIGN - 1) / CU_ALIGN * CU_ALIGN; }

/* ---- weights (cuda_weights.c) -------------------------------------------- */

/* The weight arena is laid out twice: once with base == NULL to size it, once
 * to upload. `off` advances by each tensor's aligned size. */
typedef struct cu_upload {
    char *base;       /* device base, NULL while sizing */
    size_t off;
    float *f32;       /* host staging: CU_CONV_CHUNK floats */
    uint16_t *bf;     /* host staging: CU_CONV_CHUNK bf16 */
    int synth;        /* synthetic model: fill on the device, no host data */
    uint32_t n_init;  /* synthetic: tensors filled so far (the seed of the next) */
    cudaStream_t stream;
} cu_upload;

/* One pass over all weights: sizing when u->base == NULL (then only b->cfg
 * and b->flags are read, and nothing is written but u->off), else upload. */
tm_status cu_place_weights(tm_backend *b, const tm_model *m, cu_upload *u, tm_err *err);

/* ---- GEMM and forward (cuda_forward.c) ----------------------------------- */

void cu_plan_clear(gemm_plan *p);
tm_status cu_forward(tm_backend *b, const tm_batch *bt, tm_err *err);
tm_status cu_copy_block(tm_backend *b, int32_t src, int32_t dst, tm_err *err);

#endif
