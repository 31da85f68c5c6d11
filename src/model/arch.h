/* arch.h — the weight table: every tensor a supported model has, in one place.
 *
 * One row per tensor: its id, its Hugging Face name, its role (embedding
 * matrix, layer projection that may be stored quantized, norm, bias), the
 * config feature that makes it present, and its shape as config dimensions.
 * The loader (model.c) resolves exactly these rows and checks these shapes,
 * synthetic models are built from them, parameter and weight counts sum
 * them, and the backends size, convert and upload weights by iterating them.
 * A tensor handed out by tm_model_* has been checked against this table:
 * backends do not check shapes again.
 *
 * Adding an architecture: files to touch
 *   1. model/model.h   a tm_arch value, and a config flag per new feature
 *                      (as attention_bias, qk_norm); a new tensor also gets
 *                      a field in tm_layer_weights.
 *   2. model/config.c  model_type -> tm_arch, the feature's config.json keys.
 *   3. model/arch.c    rows for the new tensors (name, role, shape, feature)
 *                      and the feature's case in tm_arch_has(); a new
 *                      dimension is a tm_wdim and a case in tm_arch_dim().
 *   4. the op code that is really new: backend/cpu/cpu_backend.c (and
 *      cpu_ops.c) for the reference; backend/cuda/cuda_backend.c and
 *      kernels/ for the GPU (its layer layout groups name the new ids);
 *      a new RoPE scaling: model/rope.c.
 *   5. a small random model with reference logits in the test data and its
 *      row in tests/unit/test_golden_models.c.
 */
#ifndef TM_ARCH_H
#define TM_ARCH_H

#include <stddef.h>
#include <stdint.h>

struct tm_model_config;

/* Tensor ids: model-wide ones first, then those every layer has once. */
typedef enum tm_wid {
    TM_W_EMBED = 0,   /* model.embed_tokens.weight [vocab, hidden] */
    TM_W_FINAL_NORM,  /* model.norm.weight [hidden] */
    TM_W_LM_HEAD,     /* lm_head.weight [vocab, hidden]; embed's view when tied and absent */
    TM_W_ATTN_NORM,   /* first per-layer id */
    TM_W_Q, TM_W_K, TM_W_V, TM_W_O,
    TM_W_BQ, TM_W_BK, TM_W_BV,
    TM_W_Q_NORM, TM_W_K_NORM,
    TM_W_FFN_NORM,
    TM_W_GATE, TM_W_UP, TM_W_DOWN,
    TM_W_COUNT
} tm_wid;

#define TM_W_LAYER_FIRST TM_W_ATTN_NORM
#define TM_W_N_PROJ 7 /* projections per layer (TM_WR_PROJ rows) */

typedef enum tm_wrole {
    TM_WR_EMBED = 0, /* [vocab, hidden] matrix, kept in the checkpoint dtype */
    TM_WR_PROJ,      /* [out, in] layer projection; may be quantized (quant.h) */
    TM_WR_NORM,      /* RMSNorm weight (synthetic: ones) */
    TM_WR_BIAS,      /* bias (synthetic: small uniform) */
} tm_wrole;

/* When a tensor is present. */
typedef enum tm_wneed {
    TM_WN_ALWAYS = 0,
    TM_WN_UNTIED,    /* required unless tie_word_embeddings; loaded when stored even if tied */
    TM_WN_QKV_BIAS,  /* config attention_bias (qwen2) */
    TM_WN_QK_NORM,   /* config qk_norm (qwen3) */
} tm_wneed;

/* Shape dimensions, from the config. */
typedef enum tm_wdim {
    TM_WD_HIDDEN = 0, /* hidden_size */
    TM_WD_INTER,      /* intermediate_size */
    TM_WD_VOCAB,      /* vocab_size */
    TM_WD_QDIM,       /* n_heads * head_dim */
    TM_WD_KVDIM,      /* n_kv_heads * head_dim */
    TM_WD_HEAD,       /* head_dim */
} tm_wdim;

typedef struct tm_wspec {
    tm_wid id;
    const char *name;   /* HF name; per-layer names follow "model.layers.N." */
    tm_wrole role;
    tm_wneed need;
    int ndim;           /* 1 or 2 */
    tm_wdim dim[2];     /* shape [dim[0]] or [dim[0], dim[1]] */
    size_t field;       /* per-layer: offsetof(tm_layer_weights, <its field>) */
} tm_wspec;

/* The row of id (NULL when id is out of range); rows are in id order. */
const tm_wspec *tm_arch_spec(tm_wid id);
static inline int tm_arch_is_layer(tm_wid id) { return id >= TM_W_LAYER_FIRST && id < TM_W_COUNT; }

/* A dimension of config c. */
int64_t tm_arch_dim(const struct tm_model_config *c, tm_wdim d);

/* Whether a model of config c has the tensor at all (the loader looks it
 * up): its feature is on. lm_head counts as had (optional when tied). */
int tm_arch_has(const struct tm_model_config *c, const tm_wspec *s);

/* Whether the loader must find it: had, and not lm_head of a tied model. */
int tm_arch_required(const struct tm_model_config *c, const tm_wspec *s);

/* Elements of the tensor in config c (product of its shape). */
int64_t tm_arch_elems(const struct tm_model_config *c, const tm_wspec *s);

/* Its full checkpoint name ("model.layers.N.<name>", or the model-wide
 * name) into buf, truncated to n - 1 bytes when longer. */
void tm_arch_name(const tm_wspec *s, int layer, char *buf, size_t n);

/* K and V elements of one token over all layers: 2 x layers x kv_heads x
 * head_dim. tm_arch_kv_bytes: a cache of `tokens` tokens storing elem_bytes
 * per element plus scale_bytes per (token, layer, K|V, kv head); 0 when
 * tokens <= 0 or the product overflows. */
int64_t tm_arch_kv_elems_per_token(const struct tm_model_config *c);
int64_t tm_arch_kv_bytes(const struct tm_model_config *c, int64_t tokens, int elem_bytes, int scale_bytes);

#endif
