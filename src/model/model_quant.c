/* model_quant.c — tm_model_quantize: round-to-nearest int4 / fp8 of the
 * projections (arch.h's TM_WR_PROJ rows) of a loaded or synthetic model, and
 * the bytes they take as the backends receive them. Quantized checkpoints
 * (gptq, awq, fp8) are converted while loading, in model.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"

/* The TM_W_N_PROJ projections of layer l, in table order. */
static void layer_projs(tm_model *m, int l, tm_tensor *out[TM_W_N_PROJ])
{
    int k = 0;
    for (int id = TM_W_LAYER_FIRST; id < TM_W_COUNT; id++)
        if (tm_arch_spec((tm_wid)id)->role == TM_WR_PROJ && k < TM_W_N_PROJ)
            out[k++] = tm_model_slot(m, tm_arch_spec((tm_wid)id), l);
}

int64_t tm_model_projection_bytes(const tm_model *m)
{
    int64_t total = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        tm_tensor *p[TM_W_N_PROJ];
        layer_projs((tm_model *)m, l, p);
        for (int i = 0; i < TM_W_N_PROJ; i++) total += p[i]->q ? (int64_t)tm_qweight_bytes(p[i]->q) : (int64_t)p[i]->nbytes;
    }
    return total;
}

tm_status tm_model_quantize(tm_model *m, tm_quant_scheme qs, tm_err *err)
{
    tm_status s = TM_OK;
    if (qs != TM_QS_INT4 && qs != TM_QS_INT4_ASYM && qs != TM_QS_FP8 && qs != TM_QS_NONE)
        return tm_errf(err, TM_ERR_USAGE, "%s: quantization scheme %d is not known (known: %s)", m->dir, (int)qs,
                       TM_QUANT_SCHEME_NAMES);
    if (qs == TM_QS_NONE) return TM_OK;
    const char *kind = tm_quant_scheme_name(qs);
    if (m->cfg.quant.method != TM_QM_NONE) {
        char d[128];
        tm_quant_config_describe(&m->cfg.quant, d, sizeof d);
        return tm_errf(err, TM_ERR_USAGE, "%s: the model is already quantized (%s); --quant %s applies to "
                       "bf16/fp16/fp32 checkpoints", m->dir, d, kind);
    }
    size_t np = (size_t)m->cfg.n_layers * TM_W_N_PROJ;
    tm_qweight **qs_new = calloc(np, sizeof *qs_new);
    float *row = NULL;
    if (!qs_new) return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", m->dir);
    size_t made = 0;
    for (int l = 0; l < m->cfg.n_layers && !s; l++) {
        tm_tensor *p[TM_W_N_PROJ];
        layer_projs(m, l, p);
        for (int i = 0; i < TM_W_N_PROJ && !s; i++) {
            tm_tensor *t = p[i];
            int32_t N = (int32_t)t->shape[0], K = (int32_t)t->shape[1];
            char what[192];
            snprintf(what, sizeof what, "%s: layer %d: %s", m->dir, l, t->name ? t->name : "projection");
            tm_qweight *q = NULL;
            if (qs == TM_QS_FP8) {
                s = tm_qweight_new_fp8(N, K, NULL, 1, m->synthetic, what, &q, err);
            } else {
                int32_t G = tm_q4_pick_group(K, 128);
                if (!G)
                    s = tm_errf(err, TM_ERR_INPUT, "%s: in_features %d is not a multiple of 8: int4 needs that", what,
                                K);
                else
                    s = tm_qweight_new_int4(N, K, G, qs == TM_QS_INT4_ASYM, 0, m->synthetic, what, &q, err);
            }
            if (s) break;
            qs_new[made++] = q;
            if (m->synthetic) continue;
            float *nr = realloc(row, (size_t)K * sizeof *row);
            if (!nr) {
                s = tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", what);
                break;
            }
            row = nr;
            size_t es = tm_dtype_size(t->dtype);
            for (int32_t r = 0; r < N && !s; r++) {
                tm_dtype_to_f32(t->dtype, (const char *)t->data + (size_t)r * (size_t)K * es, row, (size_t)K);
                if ((s = tm_qweight_quantize_row(q, r, row, err))) tm_err_prefix(err, s, "%s", what);
            }
        }
    }
    free(row);
    if (!s) {
        tm_qweight **nq = realloc(m->qws, (m->n_qws + made) * sizeof *nq);
        if (!nq) s = tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", m->dir);
        else m->qws = nq;
    }
    if (s) {
        for (size_t i = 0; i < made; i++) tm_qweight_free(qs_new[i]);
        free(qs_new);
        return s;
    }
    for (int l = 0; l < m->cfg.n_layers; l++) {
        tm_tensor *p[TM_W_N_PROJ];
        layer_projs(m, l, p);
        for (int i = 0; i < TM_W_N_PROJ; i++) {
            tm_qweight *q = qs_new[(size_t)l * TM_W_N_PROJ + (size_t)i];
            m->qws[m->n_qws++] = q;
            p[i]->q = q;
            p[i]->data = NULL;
            p[i]->nbytes = 0;
        }
    }
    free(qs_new);
    tm_quant_config *qc = &m->cfg.quant;
    memset(qc, 0, sizeof *qc);
    qc->method = TM_QM_RTN;
    qc->scheme = qs;
    qc->bits = qs == TM_QS_FP8 ? 8 : 4;
    qc->group_size = qs == TM_QS_FP8 ? 0 : 128;
    qc->sym = qs == TM_QS_INT4;
    qc->act_fp8 = qs == TM_QS_FP8;
    return TM_OK;
}
