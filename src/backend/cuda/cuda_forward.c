/* cuda_forward.c — the CUDA backend's step: cuBLASLt GEMMs with plans
 * cached per shape, forward() over a checked batch (int arrays staged through
 * the pinned buffer, the layers, lm_head in chunks of logit rows) and
 * copy_block. Allocates no device memory (cuda_int.h).
 */
#include <math.h>
#include <string.h>

#include "backend/cuda/cuda_int.h"

void cu_plan_clear(gemm_plan *p)
{
    if (p->lc) cublasLtMatrixLayoutDestroy(p->lc);
    if (p->lb) cublasLtMatrixLayoutDestroy(p->lb);
    if (p->la) cublasLtMatrixLayoutDestroy(p->la);
    if (p->op) cublasLtMatmulDescDestroy(p->op);
    memset(p, 0, sizeof *p);
}

/* ---- GEMM -------------------------------------------------------------------- */

/* Build the plan for Y[T, N] = X[T, K] W[N, K]^T (see cu_gemm()). */
static tm_status plan_make(tm_backend *b, gemm_plan *p, int32_t T, int32_t K, int32_t N, int y_f32, int beta1,
                           tm_err *err)
{
    cublasLtMatmulPreference_t pref = NULL;
    cublasStatus_t s;
    const char *call = "cublasLtMatmulDescCreate";
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    size_t ws = CU_WS_BYTES;
    tm_status st = TM_OK;
    cu_plan_clear(p);
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
    st = cu_lt_fail(err, s, call);
    tm_err_prefix(err, st, "GEMM %d x %d x %d", T, N, K);
done:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (st) cu_plan_clear(p);
    return st;
}

/* Row-major Y[T, N] (+)= X[T, K] * W[N, K]^T with bf16 X and W, fp32 compute.
 * Column-major view: Y^T[N, T] = op_T(W as K x N) * X^T (K x T).
 * y_f32: Y is fp32 (beta 0 or 1: accumulate into Y), else bf16 (beta 0).
 * Plans are cached by shape (round-robin replacement). */
static tm_status cu_gemm(tm_backend *b, const uint16_t *W, const uint16_t *X, int32_t T, int32_t K, int32_t N,
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
        tm_status st = cu_lt_fail(err, s, "cublasLtMatmul");
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

/* One step's device views of the staged int arrays and the fast path's plan. */
typedef struct cu_step {
    int32_t T, mb; /* tokens; block-table stride (<= n_blocks) */
    const int32_t *d_tok, *d_pos, *d_seq, *d_rows, *d_bt;
    int32_t n_tiles, n_dec, dec_ctx; /* fast path: prefill tiles, decode items, longest decode context */
    const int32_t *d_tiles, *d_dec;
} cu_step;

/* Stage the int arrays; block tables compacted to stride mb (<= n_blocks). */
static tm_status stage_ints(tm_backend *b, const tm_batch *bt, cu_step *sp, tm_err *err)
{
    const int32_t T = bt->n_tokens;
    const size_t Tm = (size_t)b->max_tokens;
    int32_t *h_tok = b->h_ints, *h_pos = h_tok + Tm, *h_seq = h_pos + Tm, *h_rows = h_seq + Tm, *h_bt = h_rows + Tm;
    int32_t *d_tok = b->d_ints, *d_pos = d_tok + Tm, *d_seq = d_pos + Tm, *d_rows = d_seq + Tm, *d_bt = d_rows + Tm;
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
    sp->T = T, sp->mb = mb;
    sp->d_tok = d_tok, sp->d_pos = d_pos, sp->d_seq = d_seq, sp->d_rows = d_rows, sp->d_bt = d_bt;
    sp->n_tiles = 0, sp->n_dec = 0, sp->dec_ctx = 1;
    sp->d_tiles = NULL, sp->d_dec = NULL;
    return TM_OK;
}

/* Fast path: prefill tiles and decode items, planned on the host. */
static tm_status stage_fast_plan(tm_backend *b, const tm_batch *bt, cu_step *sp, tm_err *err)
{
    const size_t Tm = (size_t)b->max_tokens;
    int32_t *h_tiles = b->h_ints + b->fa_off, *h_dec = h_tiles + 2 * Tm;
    tm_k_attention_plan(bt->seq_start, bt->n_seqs, h_tiles, &sp->n_tiles, h_dec, &sp->n_dec);
    for (int32_t s = 0; s < bt->n_seqs; s++)
        if (bt->seq_start[s + 1] - bt->seq_start[s] == 1 && bt->seq_len[s] > sp->dec_ctx) sp->dec_ctx = bt->seq_len[s];
    sp->d_tiles = b->d_ints + b->fa_off;
    sp->d_dec = sp->d_tiles + 2 * Tm;
    if (sp->n_tiles)
        CU_TRY(cudaMemcpyAsync((void *)sp->d_tiles, h_tiles, (size_t)sp->n_tiles * 2 * sizeof(int32_t),
                               cudaMemcpyHostToDevice, b->stream));
    if (sp->n_dec)
        CU_TRY(cudaMemcpyAsync((void *)sp->d_dec, h_dec, (size_t)sp->n_dec * sizeof(int32_t), cudaMemcpyHostToDevice,
                               b->stream));
    return TM_OK;
}

/* Attention of layer l's q (b->q) over its KV cache into b->att. */
static tm_status attention(tm_backend *b, const cu_step *sp, uint16_t *kc, uint16_t *vc, tm_err *err)
{
    tm_status st;
    tm_k_attn_args aa = {.q = b->q, .k_cache = kc, .v_cache = vc, .positions = sp->d_pos, .tok_seq = sp->d_seq,
                         .block_tables = sp->d_bt, .bt_stride = sp->mb, .block_size = b->bs, .n_tokens = sp->T,
                         .n_heads = b->nh, .n_kv_heads = b->nkv, .head_dim = b->hd,
                         .scale = (float)(1.0 / sqrt((double)b->hd)), .out = b->att,
                         .workspace = b->attn_ws, .workspace_floats = b->attn_ws_floats};
    if (!b->fast) return cu_k_check(err, tm_k_attention(&aa, b->stream), "tm_k_attention");
    tm_k_decode_args da = {.q = b->q, .k_cache = kc, .v_cache = vc, .positions = sp->d_pos, .tok_seq = sp->d_seq,
                           .block_tables = sp->d_bt, .bt_stride = sp->mb, .block_size = b->bs, .n_heads = b->nh,
                           .n_kv_heads = b->nkv, .head_dim = b->hd, .scale = aa.scale, .out = b->att,
                           .tokens = sp->d_dec, .n_items = sp->n_dec, .max_ctx = sp->dec_ctx,
                           .workspace = b->attn_ws, .workspace_floats = b->attn_ws_floats};
    tm_k_fa_args fa = {.q = b->q, .k_cache = kc, .v_cache = vc, .positions = sp->d_pos, .tok_seq = sp->d_seq,
                       .block_tables = sp->d_bt, .bt_stride = sp->mb, .block_size = b->bs, .n_tokens = sp->T,
                       .n_heads = b->nh, .n_kv_heads = b->nkv, .head_dim = b->hd, .scale = aa.scale,
                       .out = b->att, .tiles = sp->d_tiles, .n_tiles = sp->n_tiles};
    if ((st = cu_k_check(err, tm_k_attention_decode_gqa(&da, b->stream), "tm_k_attention_decode_gqa")) ||
        (st = cu_k_check(err, tm_k_attention_prefill_fa2(&fa, b->stream), "tm_k_attention_prefill_fa2")))
        return st;
    return TM_OK;
}

/* One decoder layer over b->x (the residual stream) in place. */
static tm_status layer_forward(tm_backend *b, int32_t l, const cu_step *sp, tm_err *err)
{
    tm_status st;
    const int32_t T = sp->T, H = b->H;
    const float eps = b->cfg.rms_norm_eps;
    const cu_layer *L = &b->layers[l];
    uint16_t *kc = b->kv + (size_t)(2 * l) * b->pool_elems, *vc = b->kv + (size_t)(2 * l + 1) * b->pool_elems;
    if ((st = cu_k_check(err, tm_k_add_rmsnorm(b->x, NULL, L->attn_norm, NULL, T, H, eps, b->xn, NULL, b->stream),
                         "tm_k_add_rmsnorm(attn)")))
        return st;
    if ((st = cu_gemm(b, L->wqkv, b->xn, T, H, b->qkvdim, b->qkv, 1, 0.0f, err))) return st;
    tm_k_rope_args ra = {.qkv = b->qkv, .bias = L->bqkv, .q_norm = L->q_norm, .k_norm = L->k_norm,
                         .inv_freq = b->inv_freq, .positions = sp->d_pos, .tok_seq = sp->d_seq,
                         .block_tables = sp->d_bt, .bt_stride = sp->mb, .block_size = b->bs, .n_tokens = T,
                         .n_heads = b->nh, .n_kv_heads = b->nkv, .head_dim = b->hd, .eps = eps, .q_out = b->q,
                         .k_cache = kc, .v_cache = vc};
    if ((st = cu_k_check(err, tm_k_qkv_rope_kv_write(&ra, b->stream), "tm_k_qkv_rope_kv_write"))) return st;
    if ((st = attention(b, sp, kc, vc, err))) return st;
    if ((st = cu_gemm(b, L->wo, b->att, T, b->qdim, H, b->x, 1, 1.0f, err))) return st; /* x += att Wo^T */
    if ((st = cu_k_check(err, tm_k_add_rmsnorm(b->x, NULL, L->ffn_norm, NULL, T, H, eps, b->xn, NULL, b->stream),
                         "tm_k_add_rmsnorm(ffn)")))
        return st;
    if ((st = cu_gemm(b, L->wgu, b->xn, T, H, 2 * b->I, b->gu, 1, 0.0f, err))) return st;
    if ((st = cu_k_check(err, tm_k_silu_mul(b->gu, T, b->I, b->act, b->stream), "tm_k_silu_mul"))) return st;
    return cu_gemm(b, L->wdown, b->act, T, b->I, H, b->x, 1, 1.0f, err); /* x += mlp */
}

/* Final norm and lm_head for the logit rows, in chunks of logit_cap, to the host. */
static tm_status logits_out(tm_backend *b, const tm_batch *bt, const cu_step *sp, tm_err *err)
{
    tm_status st;
    const int32_t H = b->H;
    for (int32_t c0 = 0; c0 < bt->n_logits; c0 += b->logit_cap) {
        int32_t n = bt->n_logits - c0 < b->logit_cap ? bt->n_logits - c0 : b->logit_cap;
        if ((st = cu_k_check(err, tm_k_add_rmsnorm(b->x, NULL, b->final_norm, sp->d_rows + c0, n, H,
                                                   b->cfg.rms_norm_eps, b->xn, NULL, b->stream),
                             "tm_k_add_rmsnorm(final)")))
            return st;
        if ((st = cu_gemm(b, b->lm_head, b->xn, n, H, b->V, b->logits, 1, 0.0f, err))) return st;
        CU_TRY(cudaMemcpyAsync(bt->logits + (size_t)c0 * b->V, b->logits, (size_t)n * b->V * sizeof(float),
                               cudaMemcpyDeviceToHost, b->stream));
    }
    return TM_OK;
}

tm_status cu_forward(tm_backend *b, const tm_batch *bt, tm_err *err)
{
    if (!b || !bt) return tm_errf(err, TM_ERR_USAGE, "cuda forward: backend and batch are required");
    tm_status st = check_batch(b, bt, err);
    if (st) return st;
    cu_step sp = {0};
    if ((st = stage_ints(b, bt, &sp, err))) return st;
    if (b->fast && (st = stage_fast_plan(b, bt, &sp, err))) return st;
    if ((st = cu_k_check(err, tm_k_embed_f32(b->embed, sp.d_tok, sp.T, b->H, b->x, b->stream), "tm_k_embed_f32")))
        return st;
    for (int32_t l = 0; l < b->L; l++)
        if ((st = layer_forward(b, l, &sp, err))) return st;
    if ((st = logits_out(b, bt, &sp, err))) return st;
    CU_TRY(cudaStreamSynchronize(b->stream));
    return TM_OK;
}

tm_status cu_copy_block(tm_backend *b, int32_t src, int32_t dst, tm_err *err)
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
