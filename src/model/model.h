/* model.h — a Hugging Face model directory, loaded: config + weights.
 *
 * tm_model_load reads DIR/config.json (architecture, shapes, RoPE), optional
 * DIR/generation_config.json (eos ids, default sampling), and memory-maps
 * DIR/model.safetensors or the shards named by model.safetensors.index.json.
 * Every header offset and every tensor shape is checked against the file size
 * and the config before use; a missing or mis-shaped tensor is an error that
 * names it. Weights stay in their stored dtype (bf16/fp16/fp32) in the
 * mapping; backends convert as they need.
 *
 * Architectures: llama (incl. rope_scaling "llama3"), mistral, qwen2 (q/k/v
 * bias, tied embeddings), qwen3 (per-head q_norm/k_norm, explicit head_dim).
 *
 * Quantized checkpoints (config.json quantization_config: gptq, awq, fp8,
 * compressed-tensors float8; see quant/quant.h for the layouts): each of the
 * seven projections of a layer is looked up as PREFIX.qweight / qzeros /
 * scales / g_idx (gptq, awq) or as an F8_E4M3 PREFIX.weight + weight_scale
 * (fp8), converted at load into the canonical tm_qweight the tensor's `q`
 * points to (its data is then NULL); a projection stored plainly
 * (PREFIX.weight in bf16/fp16/fp32: an "ignored" module) loads as usual.
 * tm_model_quantize does the same from a bf16/fp16/fp32 model (RTN).
 */
#ifndef TM_MODEL_H
#define TM_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "model/arch.h"
#include "quant/quant.h"
#include "util/status.h"

/* I32 and F8_E4M3 occur only in quantized checkpoints (qweight/qzeros/g_idx,
 * float8 weights); the loader accepts them only there. */
typedef enum tm_dtype {
    TM_DTYPE_F32 = 0,
    TM_DTYPE_F16 = 1,
    TM_DTYPE_BF16 = 2,
    TM_DTYPE_I32 = 3,
    TM_DTYPE_F8_E4M3 = 4,
} tm_dtype;

typedef enum tm_arch { TM_ARCH_LLAMA = 0, TM_ARCH_MISTRAL, TM_ARCH_QWEN2, TM_ARCH_QWEN3 } tm_arch;

typedef enum tm_rope_scaling { TM_ROPE_NONE = 0, TM_ROPE_LLAMA3 = 1 } tm_rope_scaling;

#define TM_MAX_EOS 8

typedef struct tm_model_config {
    tm_arch arch;
    char model_type[32];         /* config.json model_type, e.g. "qwen3" */
    int32_t vocab_size;
    int32_t hidden_size;
    int32_t intermediate_size;
    int32_t n_layers;
    int32_t n_heads;
    int32_t n_kv_heads;
    int32_t head_dim;            /* explicit (qwen3) or hidden/heads */
    int32_t max_position_embeddings;
    float rms_norm_eps;
    float rope_theta;
    tm_rope_scaling rope_scaling;
    float rope_factor;           /* llama3: factor, low_freq_factor, ... */
    float rope_low_freq_factor;
    float rope_high_freq_factor;
    int32_t rope_original_max_pos;
    int tie_word_embeddings;
    int attention_bias;          /* q/k/v projections have bias (qwen2) */
    int qk_norm;                 /* per-head RMSNorm on q and k before RoPE (qwen3) */
    tm_dtype dtype;              /* torch_dtype of the checkpoint */
    int32_t bos_token_id;        /* -1 if none */
    int32_t eos_token_ids[TM_MAX_EOS];
    int n_eos;
    /* generation_config.json defaults (has_* = 0 when absent) */
    int has_temperature, has_top_p, has_top_k;
    float gen_temperature, gen_top_p;
    int32_t gen_top_k;
    /* config.json quantization_config (method TM_QM_NONE when absent);
     * TM_QM_RTN after tm_model_quantize. */
    tm_quant_config quant;
} tm_model_config;

/* A view of one tensor inside a mapped safetensors file. name and data live as
 * long as the model (or the tm_safetensors) they came from. Tensors handed out
 * by tm_model_* have data aligned to their element size (tm_model_load copies a
 * tensor whose bytes sit at an unaligned file offset). */
typedef struct tm_tensor {
    const char *name;
    tm_dtype dtype;
    int ndim;
    int64_t shape[4];
    const void *data;            /* points into the mapping; NULL if absent or quantized */
    size_t nbytes;
    /* A quantized projection: the canonical weight (owned by the model),
     * shape [out, in] above, data NULL, nbytes 0. NULL for plain tensors. */
    const tm_qweight *q;
} tm_tensor;

/* Whether a tensor is there: data, a quantized weight, or (synthetic) bytes. */
static inline int tm_tensor_present(const tm_tensor *t) { return t->data || t->q || t->nbytes; }

/* Per-layer weights, HF layout (row-major [out, in] for projections); the
 * rows of arch.h's table say which are present and their shapes. Optional
 * tensors are all zero (not tm_tensor_present) when the model lacks them. */
typedef struct tm_layer_weights {
    tm_tensor attn_norm;         /* [hidden] input_layernorm */
    tm_tensor wq, wk, wv, wo;    /* [heads*hd, hidden], [kv*hd, hidden] x2, [hidden, heads*hd] */
    tm_tensor bq, bk, bv;        /* optional biases (qwen2) */
    tm_tensor q_norm, k_norm;    /* optional [head_dim] (qwen3) */
    tm_tensor ffn_norm;          /* [hidden] post_attention_layernorm */
    tm_tensor w_gate, w_up;      /* [inter, hidden] */
    tm_tensor w_down;            /* [hidden, inter] */
} tm_layer_weights;

typedef struct tm_model tm_model;

tm_status tm_model_load(const char *dir, tm_model **out, tm_err *err);
void tm_model_destroy(tm_model *m);

const tm_model_config *tm_model_config_of(const tm_model *m);
const tm_tensor *tm_model_embed(const tm_model *m);      /* [vocab, hidden] */
const tm_tensor *tm_model_final_norm(const tm_model *m); /* [hidden] */
const tm_tensor *tm_model_lm_head(const tm_model *m);    /* [vocab, hidden]; == embed when tied */
const tm_layer_weights *tm_model_layer(const tm_model *m, int i);
const char *tm_model_dir(const tm_model *m);
/* The tensor of an arch.h row (layer ignored for model-wide rows); NULL when
 * id or layer is out of range. Every present tensor has the row's shape. */
const tm_tensor *tm_model_weight(const tm_model *m, tm_wid id, int layer);
/* Whether lm_head is embed's view (tied and not stored separately). */
int tm_model_lm_head_tied(const tm_model *m);
/* Elements of every tensor the model holds (lm_head once when tied):
 * what a backend converts or uploads. */
int64_t tm_model_weight_elems(const tm_model *m);

/* Synthetic models (benchmarks at full size without a checkpoint): the exact
 * config of a known model with tensors that have names, shapes, dtype bf16
 * and nbytes but data == NULL (no host memory). A synthetic tensor is present
 * when nbytes > 0 (optional ones of the architecture have nbytes 0); lm_head
 * aliases embed when the config is tied. Only the CUDA backend runs them (it
 * fills the weights on the device); the CPU backend refuses them.
 * Names: see tm_model_synthetic_names(). tm_model_dir is "synthetic:NAME". */
tm_status tm_model_synthetic(const char *name, tm_model **out, tm_err *err);
/* The config of a named synthetic model (synthetic.c); TM_ERR_NOTFOUND lists the names. */
tm_status tm_model_synthetic_config(const char *name, tm_model_config *cfg, tm_err *err);
/* A synthetic model of any (checked) config; name goes into tm_model_dir. */
tm_status tm_model_synthetic_from_config(const tm_model_config *cfg, const char *name, tm_model **out,
                                         tm_err *err);
const char *tm_model_synthetic_names(void); /* "llama3-8b, qwen2.5-7b, deepseek-llm-7b" */
int tm_model_is_synthetic(const tm_model *m);
/* Parameters from the config (arch.c): every tensor the architecture has,
 * lm_head only when untied. */
int64_t tm_model_n_params(const tm_model *m);
int64_t tm_model_config_n_params(const tm_model_config *c);

/* Quantize the seven projections of every layer at load, round-to-nearest
 * (quant.h): TM_QS_INT4 (symmetric, group 128, or the largest power of two
 * that divides in_features when 128 does not), TM_QS_INT4_ASYM (zero
 * points), TM_QS_FP8 (e4m3 per output channel, W8A8), TM_QS_NONE (no-op);
 * another value is TM_ERR_USAGE. Embeddings, lm_head and
 * norms stay as they are (as GPTQ/AWQ/FP8 checkpoints keep them). The model
 * must not be quantized already. Synthetic models get shape-only
 * descriptors (data filled on the device). On error the model is unchanged. */
tm_status tm_model_quantize(tm_model *m, tm_quant_scheme scheme, tm_err *err);
/* Whether any projection is quantized (the config's quant.method != NONE). */
int tm_model_is_quantized(const tm_model *m);
/* Bytes of all layer projections as stored for the backends (canonical
 * quantized sizes, or the checkpoint dtype). */
int64_t tm_model_projection_bytes(const tm_model *m);

/* Parse config.json text alone (used by the loader; exposed for tests/fuzz). */
tm_status tm_model_config_parse(const char *json, size_t len, const char *what,
                                tm_model_config *cfg, tm_err *err);

/* Apply generation_config.json text to cfg (already filled by config_parse):
 * eos_token_id (int or list; its ids come first, config.json's are kept after
 * them), temperature, top_p, top_k (has_* set). cfg is unchanged on error. */
tm_status tm_model_generation_config_parse(const char *json, size_t len, const char *what,
                                           tm_model_config *cfg, tm_err *err);

/* Number of weight files mapped (1 for model.safetensors, else the shards). */
int tm_model_n_files(const tm_model *m);

/* Convert n stored elements of dtype to float32. */
void tm_dtype_to_f32(tm_dtype dt, const void *src, float *dst, size_t n);
size_t tm_dtype_size(tm_dtype dt);
const char *tm_dtype_name(tm_dtype dt);

#endif
