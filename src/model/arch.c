/* arch.c — the weight table (arch.h) and the counts derived from it. */
#include "model/arch.h"
#include "model/model.h"

#include <stdio.h>

#define LW(f) offsetof(tm_layer_weights, f)

/* In tm_wid order (tm_arch_spec indexes it). */
static const tm_wspec k_specs[TM_W_COUNT] = {
    {TM_W_EMBED, "model.embed_tokens.weight", TM_WR_EMBED, TM_WN_ALWAYS, 2, {TM_WD_VOCAB, TM_WD_HIDDEN}, 0},
    {TM_W_FINAL_NORM, "model.norm.weight", TM_WR_NORM, TM_WN_ALWAYS, 1, {TM_WD_HIDDEN, 0}, 0},
    {TM_W_LM_HEAD, "lm_head.weight", TM_WR_EMBED, TM_WN_UNTIED, 2, {TM_WD_VOCAB, TM_WD_HIDDEN}, 0},
    {TM_W_ATTN_NORM, "input_layernorm.weight", TM_WR_NORM, TM_WN_ALWAYS, 1, {TM_WD_HIDDEN, 0}, LW(attn_norm)},
    {TM_W_Q, "self_attn.q_proj.weight", TM_WR_PROJ, TM_WN_ALWAYS, 2, {TM_WD_QDIM, TM_WD_HIDDEN}, LW(wq)},
    {TM_W_K, "self_attn.k_proj.weight", TM_WR_PROJ, TM_WN_ALWAYS, 2, {TM_WD_KVDIM, TM_WD_HIDDEN}, LW(wk)},
    {TM_W_V, "self_attn.v_proj.weight", TM_WR_PROJ, TM_WN_ALWAYS, 2, {TM_WD_KVDIM, TM_WD_HIDDEN}, LW(wv)},
    {TM_W_O, "self_attn.o_proj.weight", TM_WR_PROJ, TM_WN_ALWAYS, 2, {TM_WD_HIDDEN, TM_WD_QDIM}, LW(wo)},
    {TM_W_BQ, "self_attn.q_proj.bias", TM_WR_BIAS, TM_WN_QKV_BIAS, 1, {TM_WD_QDIM, 0}, LW(bq)},
    {TM_W_BK, "self_attn.k_proj.bias", TM_WR_BIAS, TM_WN_QKV_BIAS, 1, {TM_WD_KVDIM, 0}, LW(bk)},
    {TM_W_BV, "self_attn.v_proj.bias", TM_WR_BIAS, TM_WN_QKV_BIAS, 1, {TM_WD_KVDIM, 0}, LW(bv)},
    {TM_W_Q_NORM, "self_attn.q_norm.weight", TM_WR_NORM, TM_WN_QK_NORM, 1, {TM_WD_HEAD, 0}, LW(q_norm)},
    {TM_W_K_NORM, "self_attn.k_norm.weight", TM_WR_NORM, TM_WN_QK_NORM, 1, {TM_WD_HEAD, 0}, LW(k_norm)},
    {TM_W_FFN_NORM, "post_attention_layernorm.weight", TM_WR_NORM, TM_WN_ALWAYS, 1, {TM_WD_HIDDEN, 0},
     LW(ffn_norm)},
    {TM_W_GATE, "mlp.gate_proj.weight", TM_WR_PROJ, TM_WN_ALWAYS, 2, {TM_WD_INTER, TM_WD_HIDDEN}, LW(w_gate)},
    {TM_W_UP, "mlp.up_proj.weight", TM_WR_PROJ, TM_WN_ALWAYS, 2, {TM_WD_INTER, TM_WD_HIDDEN}, LW(w_up)},
    {TM_W_DOWN, "mlp.down_proj.weight", TM_WR_PROJ, TM_WN_ALWAYS, 2, {TM_WD_HIDDEN, TM_WD_INTER}, LW(w_down)},
};

const tm_wspec *tm_arch_spec(tm_wid id)
{
    return (int)id >= 0 && id < TM_W_COUNT ? &k_specs[id] : NULL;
}

int64_t tm_arch_dim(const tm_model_config *c, tm_wdim d)
{
    switch (d) {
    case TM_WD_HIDDEN: return c->hidden_size;
    case TM_WD_INTER: return c->intermediate_size;
    case TM_WD_VOCAB: return c->vocab_size;
    case TM_WD_QDIM: return (int64_t)c->n_heads * c->head_dim;
    case TM_WD_KVDIM: return (int64_t)c->n_kv_heads * c->head_dim;
    case TM_WD_HEAD: return c->head_dim;
    }
    return 0;
}

int tm_arch_has(const tm_model_config *c, const tm_wspec *s)
{
    switch (s->need) {
    case TM_WN_ALWAYS:
    case TM_WN_UNTIED: return 1;
    case TM_WN_QKV_BIAS: return c->attention_bias != 0;
    case TM_WN_QK_NORM: return c->qk_norm != 0;
    }
    return 0;
}

int tm_arch_required(const tm_model_config *c, const tm_wspec *s)
{
    if (s->need == TM_WN_UNTIED) return !c->tie_word_embeddings;
    return tm_arch_has(c, s);
}

int64_t tm_arch_elems(const tm_model_config *c, const tm_wspec *s)
{
    int64_t n = tm_arch_dim(c, s->dim[0]);
    return s->ndim > 1 ? n * tm_arch_dim(c, s->dim[1]) : n;
}

void tm_arch_name(const tm_wspec *s, int layer, char *buf, size_t n)
{
    if (tm_arch_is_layer(s->id))
        snprintf(buf, n, "model.layers.%d.%s", layer, s->name);
    else
        snprintf(buf, n, "%s", s->name);
}

int64_t tm_arch_kv_elems_per_token(const tm_model_config *c)
{
    return 2 * (int64_t)c->n_layers * c->n_kv_heads * c->head_dim;
}

int64_t tm_arch_kv_bytes(const tm_model_config *c, int64_t tokens, int elem_bytes, int scale_bytes)
{
    int64_t per_tok = tm_arch_kv_elems_per_token(c) * elem_bytes + 2 * (int64_t)c->n_layers * c->n_kv_heads * scale_bytes;
    if (tokens <= 0 || per_tok <= 0 || per_tok > INT64_MAX / tokens) return 0;
    return per_tok * tokens;
}

/* Parameters: every tensor the config has, lm_head only when untied. */
int64_t tm_model_config_n_params(const tm_model_config *c)
{
    int64_t model = 0, layer = 0;
    for (int id = 0; id < TM_W_COUNT; id++) {
        const tm_wspec *s = &k_specs[id];
        if (!tm_arch_has(c, s) || (s->need == TM_WN_UNTIED && c->tie_word_embeddings)) continue;
        if (tm_arch_is_layer(s->id))
            layer += tm_arch_elems(c, s);
        else
            model += tm_arch_elems(c, s);
    }
    return model + (int64_t)c->n_layers * layer;
}
