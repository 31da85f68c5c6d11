/* cuda_weights.c — the CUDA backend's weight arena: the layout of every
 * tensor (runs of model/arch.h rows per layer, fused [q;k;v] and [gate;up],
 * matrices bf16, norms and biases fp32), sized in one pass and uploaded (or,
 * for a synthetic model, filled on the device) in a second (cuda_int.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_int.h"
#include "model/rope.h"

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
static tm_status put(cu_upload *u, const tm_tensor *t, size_t n, int as_f32, init_kind init, void **dst,
                     tm_err *err)
{
    size_t es = as_f32 ? 4 : 2;
    size_t off = u->off;
    u->off += cu_align_up(n * es);
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
        return cu_k_check(err, tm_k_init_synthetic(d, as_f32, (int64_t)n, u->n_init++, scale, offset, u->stream),
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
static tm_status put_id(cu_upload *u, const tm_model *m, tm_wid id, int l, void **dst, tm_err *err)
{
    const tm_wspec *s = tm_arch_spec(id);
    int vec = s->role == TM_WR_NORM || s->role == TM_WR_BIAS;
    init_kind init = s->role == TM_WR_NORM ? INIT_ONES : s->role == TM_WR_BIAS ? INIT_BIAS : INIT_MATRIX;
    return put(u, tm_model_weight(m, id, l), (size_t)tm_arch_elems(tm_model_config_of(m), s), vec, init, dst, err);
}

/* Run r of layer l at u->off; *dst its first part's device address. A
 * single tensor advances u's synthetic seed; the parts of a fused run take
 * consecutive seeds from it without advancing it (as the layout always did). */
static tm_status put_run(cu_upload *u, const tm_model *m, int r, int l, void **dst, tm_err *err)
{
    if (k_runs[r][1] == TM_W_COUNT) return put_id(u, m, k_runs[r][0], l, dst, err);
    cu_upload part = *u;
    size_t at = u->off;
    tm_status st;
    for (int i = 0; k_runs[r][i] != TM_W_COUNT; i++) {
        const tm_wspec *s = tm_arch_spec(k_runs[r][i]);
        size_t es = s->role == TM_WR_NORM || s->role == TM_WR_BIAS ? 4 : 2;
        part.off = at;
        if ((st = put_id(&part, m, k_runs[r][i], l, i ? NULL : dst, err))) return st;
        at += (size_t)tm_arch_elems(tm_model_config_of(m), s) * es;
    }
    u->off += cu_align_up(at - u->off);
    return TM_OK;
}

/* One pass over all weights: sizing when u->base == NULL (then only b->cfg
 * and b->flags are read, and nothing is written but u->off), else upload. */
tm_status cu_place_weights(tm_backend *b, const tm_model *m, cu_upload *u, tm_err *err)
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
    u->off += cu_align_up(half * sizeof(double));
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
