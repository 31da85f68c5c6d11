/* synthetic.c — the synthetic models (tm_model_synthetic): configs, and
 * shape-only models built from arch.h's table.
 *
 * Full-size benchmark models without a checkpoint: each entry is the exact
 * config.json + generation_config.json of a published model (shapes, RoPE,
 * norm eps, eos ids); tm_model_synthetic_from_config (below) builds the
 * data-less tensors from it and the CUDA backend fills the weights on the
 * device. Add a model here to make it
 * available to `tokenmill bench engine --synthetic NAME`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"

typedef struct synth_entry {
    const char *name;
    tm_model_config cfg;
} synth_entry;

static const synth_entry synth_models[] = {
    /* meta-llama/Llama-3.1-8B(-Instruct) */
    {"llama3-8b",
     {.arch = TM_ARCH_LLAMA, .model_type = "llama", .vocab_size = 128256, .hidden_size = 4096,
      .intermediate_size = 14336, .n_layers = 32, .n_heads = 32, .n_kv_heads = 8, .head_dim = 128,
      .max_position_embeddings = 131072, .rms_norm_eps = 1e-5f, .rope_theta = 500000.0f,
      .rope_scaling = TM_ROPE_LLAMA3, .rope_factor = 8.0f, .rope_low_freq_factor = 1.0f,
      .rope_high_freq_factor = 4.0f, .rope_original_max_pos = 8192, .tie_word_embeddings = 0,
      .attention_bias = 0, .qk_norm = 0, .dtype = TM_DTYPE_BF16, .bos_token_id = 128000,
      .eos_token_ids = {128001, 128008, 128009}, .n_eos = 3}},
    /* Qwen/Qwen2.5-7B(-Instruct) */
    {"qwen2.5-7b",
     {.arch = TM_ARCH_QWEN2, .model_type = "qwen2", .vocab_size = 152064, .hidden_size = 3584,
      .intermediate_size = 18944, .n_layers = 28, .n_heads = 28, .n_kv_heads = 4, .head_dim = 128,
      .max_position_embeddings = 32768, .rms_norm_eps = 1e-6f, .rope_theta = 1000000.0f,
      .rope_scaling = TM_ROPE_NONE, .tie_word_embeddings = 0, .attention_bias = 1, .qk_norm = 0,
      .dtype = TM_DTYPE_BF16, .bos_token_id = -1, .eos_token_ids = {151645, 151643}, .n_eos = 2}},
    /* deepseek-ai/deepseek-llm-7b-base / -chat (llama architecture) */
    {"deepseek-llm-7b",
     {.arch = TM_ARCH_LLAMA, .model_type = "llama", .vocab_size = 102400, .hidden_size = 4096,
      .intermediate_size = 11008, .n_layers = 30, .n_heads = 32, .n_kv_heads = 32, .head_dim = 128,
      .max_position_embeddings = 4096, .rms_norm_eps = 1e-6f, .rope_theta = 10000.0f,
      .rope_scaling = TM_ROPE_NONE, .tie_word_embeddings = 0, .attention_bias = 0, .qk_norm = 0,
      .dtype = TM_DTYPE_BF16, .bos_token_id = 100000, .eos_token_ids = {100001}, .n_eos = 1}},
};

const char *tm_model_synthetic_names(void) { return "llama3-8b, qwen2.5-7b, deepseek-llm-7b"; }

tm_status tm_model_synthetic_config(const char *name, tm_model_config *cfg, tm_err *err)
{
    for (size_t i = 0; name && i < sizeof synth_models / sizeof synth_models[0]; i++) {
        if (!strcmp(name, synth_models[i].name)) {
            *cfg = synth_models[i].cfg;
            return TM_OK;
        }
    }
    return tm_errf(err, TM_ERR_NOTFOUND, "synthetic model '%.100s' is not known (known: %s)", name ? name : "(null)",
                   tm_model_synthetic_names());
}

/* A synthetic tensor: shape and bf16 byte count, no data. */
static void synth_tensor(tm_tensor *t, const char *name, int ndim, int64_t d0, int64_t d1)
{
    memset(t, 0, sizeof *t);
    t->name = name;
    t->dtype = TM_DTYPE_BF16;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim > 1 ? d1 : 0;
    t->nbytes = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1) * 2;
}

tm_status tm_model_synthetic_from_config(const tm_model_config *c, const char *name, tm_model **out, tm_err *err)
{
    *out = NULL;
    const char *nm = name ? name : "custom";
    /* bounds keep every product below 2^62 */
    const int32_t dmax = 1 << 20;
    if (c->hidden_size <= 0 || c->hidden_size > dmax || c->intermediate_size <= 0 || c->intermediate_size > dmax ||
        c->vocab_size <= 0 || c->vocab_size > (1 << 22) || c->n_layers <= 0 || c->n_layers > 1024 ||
        c->n_heads <= 0 || c->n_heads > 1024 || c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads ||
        c->head_dim <= 0 || c->head_dim > 1024 || c->head_dim % 2 || c->max_position_embeddings < 2)
        return tm_errf(err, TM_ERR_INPUT, "synthetic:%s: config has an unsupported shape (hidden %d, inter %d, "
                       "vocab %d, layers %d, heads %d, kv_heads %d, head_dim %d, max_position %d)", nm,
                       c->hidden_size, c->intermediate_size, c->vocab_size, c->n_layers, c->n_heads, c->n_kv_heads,
                       c->head_dim, c->max_position_embeddings);
    tm_model *m = calloc(1, sizeof *m);
    size_t dl = strlen("synthetic:") + strlen(nm) + 1;
    if (!m || !(m->dir = malloc(dl))) {
        free(m);
        return tm_errf(err, TM_ERR_NOMEM, "synthetic:%s: out of memory", nm);
    }
    snprintf(m->dir, dl, "synthetic:%s", nm);
    m->cfg = *c;
    m->cfg.dtype = TM_DTYPE_BF16;
    m->synthetic = 1;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) {
        tm_model_destroy(m);
        return tm_errf(err, TM_ERR_NOMEM, "synthetic:%s: out of memory", nm);
    }
    for (int id = 0; id < TM_W_COUNT; id++) {
        const tm_wspec *s = tm_arch_spec((tm_wid)id);
        if (!tm_arch_has(c, s)) continue;
        int nl = tm_arch_is_layer(s->id) ? c->n_layers : 1;
        for (int32_t l = 0; l < nl; l++) {
            tm_tensor *t = tm_model_slot(m, s, l);
            if (s->need == TM_WN_UNTIED && c->tie_word_embeddings) {
                *t = m->embed;
                m->tied = 1;
            } else {
                synth_tensor(t, s->name, s->ndim, tm_arch_dim(c, s->dim[0]),
                             s->ndim > 1 ? tm_arch_dim(c, s->dim[1]) : 0);
            }
        }
    }
    *out = m;
    return TM_OK;
}

tm_status tm_model_synthetic(const char *name, tm_model **out, tm_err *err)
{
    *out = NULL;
    tm_model_config cfg;
    tm_status s = tm_model_synthetic_config(name, &cfg, err);
    if (s) return s;
    return tm_model_synthetic_from_config(&cfg, name, out, err);
}
