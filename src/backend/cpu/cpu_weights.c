/* cpu_weights.c — packing a model's tensors for the CPU backend (cpu_weights.h). */
#include "backend/cpu/cpu_weights.h"

#include <string.h>

#include "quant/quant.h"

const float *tm_cpu_conv_vec(tm_cpu_conv *cs, const tm_tensor *t, size_t n)
{
    float *dst = cs->next;
    if (t->q) { /* dequantize (original input order) */
        for (int32_t r = 0; r < t->q->n; r++) tm_qweight_dequantize_row(t->q, r, dst + (size_t)r * (size_t)t->q->k);
    } else if (t->data) {
        tm_dtype_to_f32(t->dtype, t->data, dst, n);
    } else {
        return NULL;
    }
    cs->next += n;
    return dst;
}

static tm_gemm_dtype mat_dtype(const tm_tensor *t)
{
    return !t->q && t->dtype == TM_DTYPE_BF16 ? TM_GEMM_BF16 : TM_GEMM_F32;
}

size_t tm_cpu_mat_bytes(const tm_tensor *t, size_t n, size_t k)
{
    if (n > INT32_MAX || k > INT32_MAX) return 0;
    size_t s = tm_gemm_packed_bytes((int32_t)n, (int32_t)k, mat_dtype(t));
    return s > SIZE_MAX - 63 ? 0 : (s + 63) & ~(size_t)63;
}

tm_status tm_cpu_conv_mat(tm_cpu_conv *cs, const tm_tensor *t, int32_t n, int32_t k, tm_cpu_mat *out, tm_err *err)
{
    memset(out, 0, sizeof *out);
    out->g.n = n;
    out->g.k = k;
    if (t->q && (t->q->n != n || t->q->k != k))
        return tm_errf(err, TM_ERR_INPUT, "cpu backend: quantized tensor %s is [%d, %d], expected [%d, %d]",
                       t->name ? t->name : "?", t->q->n, t->q->k, n, k);
    if (cs->blas) {
        out->f = tm_cpu_conv_vec(cs, t, (size_t)n * (size_t)k);
        return TM_OK;
    }
    tm_gemm_w_init(&out->g, cs->pnext, n, k, mat_dtype(t));
    cs->pnext += tm_cpu_mat_bytes(t, (size_t)n, (size_t)k);
    size_t es = tm_dtype_size(t->dtype);
    for (int32_t r = 0; r < n; r++) {
        if (t->q) {
            tm_qweight_dequantize_row(t->q, r, cs->tmp);
            tm_gemm_pack_row_f32(&out->g, r, cs->tmp);
        } else if (t->dtype == TM_DTYPE_BF16) {
            memcpy(cs->tmp16, (const char *)t->data + (size_t)r * (size_t)k * 2, (size_t)k * 2);
            tm_gemm_pack_row_bf16(&out->g, r, cs->tmp16);
        } else {
            tm_dtype_to_f32(t->dtype, (const char *)t->data + (size_t)r * (size_t)k * es, cs->tmp, (size_t)k);
            tm_gemm_pack_row_f32(&out->g, r, cs->tmp);
        }
    }
    return TM_OK;
}

