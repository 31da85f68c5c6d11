/* config.c — Hugging Face config.json and generation_config.json parsing (jansson).
 *
 * Maps architectures/model_type to tm_arch ("architectures": null falls back to
 * model_type), fills tm_model_config with HF's defaults (num_key_value_heads =
 * heads, head_dim = hidden/heads, tie_word_embeddings false), reads RoPE from
 * either layout (top-level rope_theta + rope_scaling, or transformers 5's
 * rope_parameters: see parse_rope), and range-checks every size so a hostile
 * config cannot make later stages allocate absurd amounts (see TM_CFG_MAX_*).
 * quantization_config (gptq, awq, fp8, compressed-tensors float8) becomes
 * cfg->quant; an unknown method or an unsupported value of a known field is
 * an error naming the field; keys we have no use for are ignored.
 * Error messages: "WHAT: field: what is wrong".
 */
#include "model/model.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Upper bounds: well above any published decoder-only checkpoint. */
#define TM_CFG_MAX_VOCAB (1 << 22)        /* 4M tokens (Gemma 3: 262k) */
#define TM_CFG_MAX_HIDDEN (1 << 16)
#define TM_CFG_MAX_INTER (1 << 20)
#define TM_CFG_MAX_LAYERS 1024
#define TM_CFG_MAX_HEADS 1024
#define TM_CFG_MAX_HEAD_DIM 1024
#define TM_CFG_MAX_POS (1 << 24)          /* 16M positions */

static const struct { const char *archname, *model_type; tm_arch arch; } k_archs[] = {
    { "LlamaForCausalLM", "llama", TM_ARCH_LLAMA },
    { "MistralForCausalLM", "mistral", TM_ARCH_MISTRAL },
    { "Qwen2ForCausalLM", "qwen2", TM_ARCH_QWEN2 },
    { "Qwen3ForCausalLM", "qwen3", TM_ARCH_QWEN3 },
};
#define K_SUPPORTED "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM"

/* Reads an optional integer field into *out within [lo, hi]. Absent or null:
 * leaves *out and returns TM_OK with *present = 0. */
static tm_status get_int(json_t *o, const char *key, const char *what, long long lo, long long hi,
                         int32_t *out, int *present, tm_err *err)
{
    json_t *v = json_object_get(o, key);
    if (present) *present = 0;
    if (!v || json_is_null(v)) return TM_OK;
    if (!json_is_integer(v))
        return tm_errf(err, TM_ERR_INPUT, "%s: %s: not an integer", what, key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return tm_errf(err, TM_ERR_INPUT, "%s: %s: %lld is out of range [%lld, %lld]", what, key,
                       (long long)x, lo, hi);
    *out = (int32_t)x;
    if (present) *present = 1;
    return TM_OK;
}

static tm_status req_int(json_t *o, const char *key, const char *what, long long lo, long long hi,
                         int32_t *out, tm_err *err)
{
    int present;
    tm_status s = get_int(o, key, what, lo, hi, out, &present, err);
    if (s) return s;
    if (!present) return tm_errf(err, TM_ERR_INPUT, "%s: %s: missing", what, key);
    return TM_OK;
}

/* Optional number (integer or real, finite) within [lo, hi]. */
static tm_status get_num(json_t *o, const char *key, const char *what, double lo, double hi,
                         float *out, int *present, tm_err *err)
{
    json_t *v = json_object_get(o, key);
    if (present) *present = 0;
    if (!v || json_is_null(v)) return TM_OK;
    if (!json_is_number(v))
        return tm_errf(err, TM_ERR_INPUT, "%s: %s: not a number", what, key);
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi)
        return tm_errf(err, TM_ERR_INPUT, "%s: %s: %g is out of range [%g, %g]", what, key, x, lo, hi);
    *out = (float)x;
    if (present) *present = 1;
    return TM_OK;
}

static tm_status get_bool(json_t *o, const char *key, const char *what, int *out, tm_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return TM_OK;
    if (!json_is_boolean(v))
        return tm_errf(err, TM_ERR_INPUT, "%s: %s: not true/false", what, key);
    *out = json_is_true(v);
    return TM_OK;
}

/* eos_token_id: int or list of ints, each in [0, vocab). Appends ids not yet in
 * cfg (so a second call extends the first). */
static tm_status add_eos(json_t *o, const char *what, tm_model_config *cfg, tm_err *err)
{
    json_t *v = json_object_get(o, "eos_token_id");
    if (!v || json_is_null(v)) return TM_OK;
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_array(v) && !json_is_integer(v))
        return tm_errf(err, TM_ERR_INPUT, "%s: eos_token_id: not an integer or a list of integers", what);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_integer(e))
            return tm_errf(err, TM_ERR_INPUT, "%s: eos_token_id[%zu]: not an integer", what, i);
        json_int_t id = json_integer_value(e);
        if (id < 0 || id >= cfg->vocab_size)
            return tm_errf(err, TM_ERR_INPUT, "%s: eos_token_id: %lld is out of range [0, %d)", what,
                           (long long)id, cfg->vocab_size);
        int dup = 0;
        for (int k = 0; k < cfg->n_eos; k++) dup |= cfg->eos_token_ids[k] == (int32_t)id;
        if (dup) continue;
        if (cfg->n_eos >= TM_MAX_EOS)
            return tm_errf(err, TM_ERR_INPUT, "%s: eos_token_id: more than %d distinct ids", what,
                           TM_MAX_EOS);
        cfg->eos_token_ids[cfg->n_eos++] = (int32_t)id;
    }
    return TM_OK;
}

static tm_status parse_arch(json_t *root, const char *what, tm_model_config *cfg, tm_err *err)
{
    json_t *mt = json_object_get(root, "model_type");
    json_t *archs = json_object_get(root, "architectures");
    if (mt && !json_is_null(mt) && !json_is_string(mt))
        return tm_errf(err, TM_ERR_INPUT, "%s: model_type: not a string", what);
    const char *name = NULL;
    if (archs && !json_is_null(archs)) {
        if (!json_is_array(archs) || json_array_size(archs) < 1 ||
            !json_is_string(json_array_get(archs, 0)))
            return tm_errf(err, TM_ERR_INPUT, "%s: architectures: not a non-empty list of strings", what);
        name = json_string_value(json_array_get(archs, 0));
        for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++)
            if (!strcmp(name, k_archs[i].archname)) { cfg->arch = k_archs[i].arch; goto found; }
    } else if (json_is_string(mt)) {
        name = json_string_value(mt);
        for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++)
            if (!strcmp(name, k_archs[i].model_type)) { cfg->arch = k_archs[i].arch; goto found; }
    } else {
        return tm_errf(err, TM_ERR_INPUT, "%s: architectures: missing (and no model_type) (supported: %s)",
                       what, K_SUPPORTED);
    }
    return tm_errf(err, TM_ERR_INPUT, "%s: architecture '%.100s' is not supported (supported: %s)",
                   what, name, K_SUPPORTED);
found:;
    const char *mts = json_is_string(mt) ? json_string_value(mt) : k_archs[cfg->arch].model_type;
    if (strlen(mts) >= sizeof cfg->model_type)
        return tm_errf(err, TM_ERR_INPUT, "%s: model_type: longer than %zu bytes", what,
                       sizeof cfg->model_type - 1);
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", mts);
    return TM_OK;
}

/* The RoPE scaling fields of one object (rope_scaling, or transformers 5's
 * rope_parameters); key names the object in messages. */
static tm_status parse_rope_type(json_t *rs, const char *what, const char *key, tm_model_config *cfg,
                                 tm_err *err)
{
    json_t *t = json_object_get(rs, "rope_type");
    if (!t || json_is_null(t)) t = json_object_get(rs, "type");
    if (!json_is_string(t))
        return tm_errf(err, TM_ERR_INPUT, "%s: %s: rope_type missing or not a string", what, key);
    const char *ty = json_string_value(t);
    if (!strcmp(ty, "default")) return TM_OK;
    if (strcmp(ty, "llama3"))
        return tm_errf(err, TM_ERR_INPUT,
                       "%s: %s: rope_type '%.64s' is not supported (supported: llama3, default)",
                       what, key, ty);
    cfg->rope_scaling = TM_ROPE_LLAMA3;
    char w2[300];
    snprintf(w2, sizeof w2, "%s: %s", what, key);
    int p1, p2, p3, p4;
    tm_status s;
    if ((s = get_num(rs, "factor", w2, 1e-6, 1e6, &cfg->rope_factor, &p1, err))) return s;
    if ((s = get_num(rs, "low_freq_factor", w2, 1e-6, 1e6, &cfg->rope_low_freq_factor, &p2, err))) return s;
    if ((s = get_num(rs, "high_freq_factor", w2, 1e-6, 1e6, &cfg->rope_high_freq_factor, &p3, err))) return s;
    if ((s = get_int(rs, "original_max_position_embeddings", w2, 1, TM_CFG_MAX_POS,
                     &cfg->rope_original_max_pos, &p4, err)))
        return s;
    if (!p1 || !p2 || !p3 || !p4)
        return tm_errf(err, TM_ERR_INPUT, "%s: %s: missing (llama3 needs factor, low_freq_factor, "
                       "high_freq_factor, original_max_position_embeddings)", w2,
                       !p1 ? "factor" : !p2 ? "low_freq_factor" : !p3 ? "high_freq_factor"
                                                                     : "original_max_position_embeddings");
    if (cfg->rope_high_freq_factor <= cfg->rope_low_freq_factor)
        return tm_errf(err, TM_ERR_INPUT, "%s: high_freq_factor %g must exceed low_freq_factor %g", w2,
                       (double)cfg->rope_high_freq_factor, (double)cfg->rope_low_freq_factor);
    return TM_OK;
}

/* RoPE, in both layouts:
 *   transformers <= 4: top-level "rope_theta" + optional "rope_scaling" object;
 *   transformers 5:    "rope_parameters": {"rope_theta": T, "rope_type": "default" |
 *                      "llama3", + that type's fields} (rope_scaling, when also
 *                      written, is the same object).
 * rope_theta is taken from wherever it is; two different values are an error.
 * A rope_parameters object without rope_theta (and none at top level), or one
 * keyed by layer type (Gemma 3's {"full_attention": {...}, ...}), is refused.
 * Only a config with no RoPE fields at all gets transformers' class default
 * for these architectures, 10000. Two different scaling objects are an error. */
static tm_status parse_rope(json_t *root, const char *what, tm_model_config *cfg, tm_err *err)
{
    cfg->rope_scaling = TM_ROPE_NONE;
    cfg->rope_theta = 10000.0f;
    float top = 0, inner = 0;
    int has_top = 0, has_inner = 0;
    tm_status s;
    if ((s = get_num(root, "rope_theta", what, 1.0, 1e12, &top, &has_top, err))) return s;
    json_t *rp = json_object_get(root, "rope_parameters");
    json_t *rs = json_object_get(root, "rope_scaling");
    if (rp && json_is_null(rp)) rp = NULL;
    if (rs && json_is_null(rs)) rs = NULL;
    if (rp && !json_is_object(rp))
        return tm_errf(err, TM_ERR_INPUT, "%s: rope_parameters: not an object", what);
    if (rs && !json_is_object(rs)) return tm_errf(err, TM_ERR_INPUT, "%s: rope_scaling: not an object", what);
    if (rp) {
        char w2[300];
        snprintf(w2, sizeof w2, "%s: rope_parameters", what);
        const char *k;
        json_t *v;
        json_object_foreach(rp, k, v) {
            if (json_is_object(v))
                return tm_errf(err, TM_ERR_INPUT,
                               "%s: '%.64s': per-layer-type RoPE parameters are not supported for %s", w2, k,
                               cfg->model_type);
        }
        if ((s = get_num(rp, "rope_theta", w2, 1.0, 1e12, &inner, &has_inner, err))) return s;
        if (!has_inner && !has_top)
            return tm_errf(err, TM_ERR_INPUT, "%s: rope_theta: missing (and no top-level rope_theta)", w2);
    }
    if (has_top && has_inner && top != inner)
        return tm_errf(err, TM_ERR_INPUT, "%s: rope_theta: top-level %g and rope_parameters.rope_theta %g differ",
                       what, (double)top, (double)inner);
    if (has_inner) cfg->rope_theta = inner;
    else if (has_top) cfg->rope_theta = top;
    if (rs && (s = parse_rope_type(rs, what, "rope_scaling", cfg, err))) return s;
    if (rp) {
        tm_model_config a = *cfg;
        a.rope_scaling = TM_ROPE_NONE;
        json_t *t = json_object_get(rp, "rope_type");
        if (!t || json_is_null(t)) t = json_object_get(rp, "type");
        /* a rope_parameters holding only rope_theta is the default type */
        if ((t || !has_inner || json_object_size(rp) > 1) &&
            (s = parse_rope_type(rp, what, "rope_parameters", &a, err)))
            return s;
        if (rs && (a.rope_scaling != cfg->rope_scaling ||
                   (a.rope_scaling == TM_ROPE_LLAMA3 &&
                    (a.rope_factor != cfg->rope_factor || a.rope_low_freq_factor != cfg->rope_low_freq_factor ||
                     a.rope_high_freq_factor != cfg->rope_high_freq_factor ||
                     a.rope_original_max_pos != cfg->rope_original_max_pos))))
            return tm_errf(err, TM_ERR_INPUT, "%s: rope_scaling and rope_parameters disagree", what);
        *cfg = a;
    }
    return TM_OK;
}

/* ---- quantization_config ------------------------------------------------ */

/* Optional string field: NULL when absent/null; error when not a string. */
static tm_status get_str(json_t *o, const char *key, const char *what, const char **out, tm_err *err)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) return TM_OK;
    if (!json_is_string(v)) return tm_errf(err, TM_ERR_INPUT, "%s: %s: not a string", what, key);
    *out = json_string_value(v);
    return TM_OK;
}

static tm_status quant_bits(json_t *q, const char *key, const char *w, int32_t want, tm_quant_config *qc, tm_err *err)
{
    int present = 0;
    qc->bits = want;
    tm_status s = get_int(q, key, w, 1, 64, &qc->bits, &present, err);
    if (s) return s;
    if (qc->bits != want)
        return tm_errf(err, TM_ERR_INPUT, "%s: %s: %d is not supported (supported: %d)", w, key, qc->bits, want);
    return TM_OK;
}

static tm_status quant_group(json_t *q, const char *key, const char *w, tm_quant_config *qc, tm_err *err)
{
    qc->group_size = 128;
    tm_status s = get_int(q, key, w, -1, TM_CFG_MAX_INTER, &qc->group_size, NULL, err);
    if (s) return s;
    if (qc->group_size == 0 || (qc->group_size > 0 && qc->group_size % 8))
        return tm_errf(err, TM_ERR_INPUT, "%s: %s: %d is not supported (-1, or a positive multiple of 8)", w, key,
                       qc->group_size);
    return TM_OK;
}

static tm_status parse_gptq(json_t *q, const char *w, tm_quant_config *qc, tm_err *err)
{
    tm_status s;
    qc->method = TM_QM_GPTQ;
    qc->sym = 1;
    if ((s = quant_bits(q, "bits", w, 4, qc, err))) return s;
    if ((s = quant_group(q, "group_size", w, qc, err))) return s;
    if ((s = get_bool(q, "desc_act", w, &qc->desc_act, err))) return s;
    if ((s = get_bool(q, "sym", w, &qc->sym, err))) return s;
    const char *fmt, *key = "checkpoint_format";
    if ((s = get_str(q, key, w, &fmt, err))) return s;
    if (!fmt) {
        key = "format"; /* GPTQModel's newer spelling */
        if ((s = get_str(q, key, w, &fmt, err))) return s;
    }
    if (fmt && strcmp(fmt, "gptq") && strcmp(fmt, "gptq_v2"))
        return tm_errf(err, TM_ERR_INPUT, "%s: %s: '%.32s' is not supported (supported: gptq, gptq_v2)", w, key,
                       fmt);
    qc->gptq_v2 = fmt && !strcmp(fmt, "gptq_v2");
    const char *pd;
    if ((s = get_str(q, "pack_dtype", w, &pd, err))) return s;
    if (pd && strcmp(pd, "int32"))
        return tm_errf(err, TM_ERR_INPUT, "%s: pack_dtype: '%.32s' is not supported (supported: int32)", w, pd);
    int lm_head = 0;
    if ((s = get_bool(q, "lm_head", w, &lm_head, err))) return s;
    if (lm_head) return tm_errf(err, TM_ERR_INPUT, "%s: lm_head: a quantized lm_head is not supported", w);
    json_t *dyn = json_object_get(q, "dynamic");
    if (dyn && !json_is_null(dyn) && !(json_is_object(dyn) && json_object_size(dyn) == 0))
        return tm_errf(err, TM_ERR_INPUT, "%s: dynamic: per-module quantization overrides are not supported", w);
    return TM_OK;
}

static tm_status parse_awq(json_t *q, const char *w, tm_quant_config *qc, tm_err *err)
{
    tm_status s;
    qc->method = TM_QM_AWQ;
    const char *bk = json_object_get(q, "w_bit") ? "w_bit" : "bits";
    const char *gk = json_object_get(q, "q_group_size") ? "q_group_size" : "group_size";
    if ((s = quant_bits(q, bk, w, 4, qc, err))) return s;
    if ((s = quant_group(q, gk, w, qc, err))) return s;
    int zp = 1;
    if ((s = get_bool(q, "zero_point", w, &zp, err))) return s;
    if (!zp) return tm_errf(err, TM_ERR_INPUT, "%s: zero_point: false is not supported (supported: true)", w);
    qc->sym = 0;
    const char *ver;
    if ((s = get_str(q, "version", w, &ver, err))) return s;
    if (ver && strcasecmp(ver, "gemm"))
        return tm_errf(err, TM_ERR_INPUT, "%s: version: '%.32s' is not supported (supported: gemm)", w, ver);
    return TM_OK;
}

static tm_status parse_fp8(json_t *q, const char *w, tm_quant_config *qc, tm_err *err)
{
    tm_status s;
    qc->method = TM_QM_FP8;
    qc->bits = 8;
    qc->act_fp8 = 1;
    const char *as, *fmt;
    if ((s = get_str(q, "activation_scheme", w, &as, err))) return s;
    if (as && strcmp(as, "dynamic") && strcmp(as, "static"))
        return tm_errf(err, TM_ERR_INPUT, "%s: activation_scheme: '%.32s' is not supported (supported: dynamic, static)",
                       w, as);
    if ((s = get_str(q, "fmt", w, &fmt, err))) return s;
    if (fmt && strcmp(fmt, "e4m3"))
        return tm_errf(err, TM_ERR_INPUT, "%s: fmt: '%.32s' is not supported (supported: e4m3)", w, fmt);
    json_t *bs = json_object_get(q, "weight_block_size");
    if (bs && !json_is_null(bs))
        return tm_errf(err, TM_ERR_INPUT, "%s: weight_block_size: block-wise fp8 scales are not supported "
                       "(supported: per-tensor and per-channel weight_scale)", w);
    return TM_OK;
}

/* compressed-tensors: every config group must be 8-bit float weights
 * (channel or tensor strategy); activations absent (W8A16) or 8-bit float. */
static tm_status parse_ct(json_t *q, const char *w, tm_quant_config *qc, tm_err *err)
{
    tm_status s;
    qc->method = TM_QM_CT_FP8;
    qc->bits = 8;
    const char *fmt;
    if ((s = get_str(q, "format", w, &fmt, err))) return s;
    if (!fmt || strcmp(fmt, "float-quantized"))
        return tm_errf(err, TM_ERR_INPUT, "%s: format: '%.32s' is not supported (supported: float-quantized)", w,
                       fmt ? fmt : "(missing)");
    json_t *groups = json_object_get(q, "config_groups");
    if (!json_is_object(groups) || json_object_size(groups) == 0)
        return tm_errf(err, TM_ERR_INPUT, "%s: config_groups: missing or not a non-empty object", w);
    const char *gname;
    json_t *g;
    int first = 1;
    json_object_foreach(groups, gname, g) {
        char gw[400];
        snprintf(gw, sizeof gw, "%s: config_groups.%.64s", w, gname);
        if (!json_is_object(g)) return tm_errf(err, TM_ERR_INPUT, "%s: not an object", gw);
        json_t *wt = json_object_get(g, "weights");
        if (!json_is_object(wt)) return tm_errf(err, TM_ERR_INPUT, "%s: weights: missing or not an object", gw);
        char ww[440];
        snprintf(ww, sizeof ww, "%s.weights", gw);
        int32_t nb = 0;
        const char *ty, *st;
        if ((s = req_int(wt, "num_bits", ww, 1, 64, &nb, err))) return s;
        if ((s = get_str(wt, "type", ww, &ty, err))) return s;
        if ((s = get_str(wt, "strategy", ww, &st, err))) return s;
        if (nb != 8 || !ty || strcmp(ty, "float"))
            return tm_errf(err, TM_ERR_INPUT, "%s: %d-bit %.16s weights are not supported (supported: 8-bit float)",
                           ww, nb, ty ? ty : "?");
        if (!st || (strcmp(st, "channel") && strcmp(st, "tensor")))
            return tm_errf(err, TM_ERR_INPUT, "%s: strategy: '%.32s' is not supported (supported: channel, tensor)",
                           ww, st ? st : "(missing)");
        json_t *ia = json_object_get(g, "input_activations");
        int act = ia && !json_is_null(ia);
        if (act) {
            snprintf(ww, sizeof ww, "%s.input_activations", gw);
            if (!json_is_object(ia)) return tm_errf(err, TM_ERR_INPUT, "%s: not an object", ww);
            if ((s = req_int(ia, "num_bits", ww, 1, 64, &nb, err))) return s;
            if ((s = get_str(ia, "type", ww, &ty, err))) return s;
            if (nb != 8 || !ty || strcmp(ty, "float"))
                return tm_errf(err, TM_ERR_INPUT,
                               "%s: %d-bit %.16s activations are not supported (supported: 8-bit float)", ww, nb,
                               ty ? ty : "?");
        }
        if (!first && act != qc->act_fp8)
            return tm_errf(err, TM_ERR_INPUT, "%s: config_groups: groups that quantize activations and groups "
                           "that do not are not supported together", w);
        qc->act_fp8 = act;
        first = 0;
    }
    return TM_OK;
}

static tm_status parse_quant(json_t *root, const char *what, tm_model_config *cfg, tm_err *err)
{
    memset(&cfg->quant, 0, sizeof cfg->quant);
    json_t *q = json_object_get(root, "quantization_config");
    if (!q || json_is_null(q)) return TM_OK;
    char w[300];
    snprintf(w, sizeof w, "%s: quantization_config", what);
    if (!json_is_object(q)) return tm_errf(err, TM_ERR_INPUT, "%s: not an object", w);
    const char *m;
    tm_status s = get_str(q, "quant_method", w, &m, err);
    if (s) return s;
    if (!m) return tm_errf(err, TM_ERR_INPUT, "%s: quant_method: missing", w);
    if (!strcmp(m, "gptq")) return parse_gptq(q, w, &cfg->quant, err);
    if (!strcmp(m, "awq")) return parse_awq(q, w, &cfg->quant, err);
    if (!strcmp(m, "fp8")) return parse_fp8(q, w, &cfg->quant, err);
    if (!strcmp(m, "compressed-tensors")) return parse_ct(q, w, &cfg->quant, err);
    return tm_errf(err, TM_ERR_INPUT,
                   "%s: quant_method: '%.32s' is not supported (supported: gptq, awq, fp8, compressed-tensors)", w, m);
}

static tm_status parse_root(json_t *root, const char *what, tm_model_config *cfg, tm_err *err)
{
    tm_status s;
    if (!json_is_object(root)) return tm_errf(err, TM_ERR_INPUT, "%s: not a JSON object", what);
    if ((s = parse_arch(root, what, cfg, err))) return s;
    if ((s = req_int(root, "vocab_size", what, 1, TM_CFG_MAX_VOCAB, &cfg->vocab_size, err))) return s;
    if ((s = req_int(root, "hidden_size", what, 1, TM_CFG_MAX_HIDDEN, &cfg->hidden_size, err))) return s;
    if ((s = req_int(root, "intermediate_size", what, 1, TM_CFG_MAX_INTER, &cfg->intermediate_size, err)))
        return s;
    if ((s = req_int(root, "num_hidden_layers", what, 1, TM_CFG_MAX_LAYERS, &cfg->n_layers, err))) return s;
    if ((s = req_int(root, "num_attention_heads", what, 1, TM_CFG_MAX_HEADS, &cfg->n_heads, err))) return s;
    cfg->n_kv_heads = cfg->n_heads;
    if ((s = get_int(root, "num_key_value_heads", what, 1, TM_CFG_MAX_HEADS, &cfg->n_kv_heads, NULL, err)))
        return s;
    if (cfg->n_heads % cfg->n_kv_heads)
        return tm_errf(err, TM_ERR_INPUT,
                       "%s: num_key_value_heads: %d does not divide num_attention_heads %d", what,
                       cfg->n_kv_heads, cfg->n_heads);
    int has_hd = 0;
    if ((s = get_int(root, "head_dim", what, 1, TM_CFG_MAX_HEAD_DIM, &cfg->head_dim, &has_hd, err)))
        return s;
    if (!has_hd) {
        if (cfg->hidden_size % cfg->n_heads)
            return tm_errf(err, TM_ERR_INPUT,
                           "%s: hidden_size: %d is not divisible by num_attention_heads %d (and no head_dim)",
                           what, cfg->hidden_size, cfg->n_heads);
        cfg->head_dim = cfg->hidden_size / cfg->n_heads;
        if (cfg->head_dim > TM_CFG_MAX_HEAD_DIM)
            return tm_errf(err, TM_ERR_INPUT, "%s: head_dim: %d (hidden/heads) is larger than %d", what,
                           cfg->head_dim, TM_CFG_MAX_HEAD_DIM);
    }
    if (cfg->head_dim % 2)
        return tm_errf(err, TM_ERR_INPUT, "%s: head_dim: %d is odd (RoPE needs pairs)", what, cfg->head_dim);
    cfg->max_position_embeddings = 4096;
    if ((s = get_int(root, "max_position_embeddings", what, 1, TM_CFG_MAX_POS,
                     &cfg->max_position_embeddings, NULL, err)))
        return s;
    cfg->rms_norm_eps = 1e-6f;
    if ((s = get_num(root, "rms_norm_eps", what, 0.0, 1.0, &cfg->rms_norm_eps, NULL, err))) return s;
    if ((s = parse_rope(root, what, cfg, err))) return s;

    cfg->tie_word_embeddings = 0;
    if ((s = get_bool(root, "tie_word_embeddings", what, &cfg->tie_word_embeddings, err))) return s;
    int attn_bias = 0, mlp_bias = 0;
    if ((s = get_bool(root, "attention_bias", what, &attn_bias, err))) return s;
    if ((s = get_bool(root, "mlp_bias", what, &mlp_bias, err))) return s;
    if (mlp_bias) return tm_errf(err, TM_ERR_INPUT, "%s: mlp_bias: true is not supported", what);
    /* Qwen2 always has q/k/v biases (its config has no key for it); the others
     * would also need an o_proj bias, which we do not support. */
    if (cfg->arch == TM_ARCH_QWEN2) {
        cfg->attention_bias = 1;
    } else if (attn_bias) {
        return tm_errf(err, TM_ERR_INPUT, "%s: attention_bias: true is not supported for %s", what,
                       cfg->model_type);
    }
    cfg->qk_norm = cfg->arch == TM_ARCH_QWEN3;

    json_t *act = json_object_get(root, "hidden_act");
    if (!act || json_is_null(act)) act = json_object_get(root, "hidden_activation");
    if (act && !json_is_null(act) &&
        (!json_is_string(act) || strcmp(json_string_value(act), "silu")))
        return tm_errf(err, TM_ERR_INPUT, "%s: hidden_act: '%.32s' is not supported (supported: silu)", what,
                       json_is_string(act) ? json_string_value(act) : "?");

    json_t *dt = json_object_get(root, "torch_dtype");
    if (!dt || json_is_null(dt)) dt = json_object_get(root, "dtype");
    cfg->dtype = TM_DTYPE_F32; /* transformers' default when absent */
    if (dt && !json_is_null(dt)) {
        const char *d = json_is_string(dt) ? json_string_value(dt) : "";
        if (!strcmp(d, "bfloat16")) cfg->dtype = TM_DTYPE_BF16;
        else if (!strcmp(d, "float16")) cfg->dtype = TM_DTYPE_F16;
        else if (!strcmp(d, "float32")) cfg->dtype = TM_DTYPE_F32;
        else
            return tm_errf(err, TM_ERR_INPUT,
                           "%s: torch_dtype: '%.32s' is not supported (supported: bfloat16, float16, float32)",
                           what, d);
    }
    cfg->bos_token_id = -1;
    if ((s = get_int(root, "bos_token_id", what, 0, cfg->vocab_size - 1, &cfg->bos_token_id, NULL, err)))
        return s;
    cfg->n_eos = 0;
    if ((s = add_eos(root, what, cfg, err))) return s;
    if ((s = parse_quant(root, what, cfg, err))) return s;
    return TM_OK;
}

tm_status tm_model_config_parse(const char *json, size_t len, const char *what,
                                tm_model_config *cfg, tm_err *err)
{
    if (!what) what = "config.json";
    memset(cfg, 0, sizeof *cfg);
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return tm_errf(err, TM_ERR_INPUT, "%s:%d: not valid JSON: %s", what, je.line, je.text);
    tm_status s = parse_root(root, what, cfg, err);
    json_decref(root);
    return s;
}

tm_status tm_model_generation_config_parse(const char *json, size_t len, const char *what,
                                           tm_model_config *cfg, tm_err *err)
{
    if (!what) what = "generation_config.json";
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return tm_errf(err, TM_ERR_INPUT, "%s:%d: not valid JSON: %s", what, je.line, je.text);
    tm_status s = TM_OK;
    tm_model_config tmp = *cfg; /* cfg changes only on success */
    if (!json_is_object(root)) {
        s = tm_errf(err, TM_ERR_INPUT, "%s: not a JSON object", what);
        goto out;
    }
    /* generation_config's eos ids come first (it is what generate() uses), then
     * config.json's that it does not repeat. */
    tmp.n_eos = 0;
    if ((s = add_eos(root, what, &tmp, err))) goto out;
    for (int i = 0; i < cfg->n_eos; i++) {
        int dup = 0;
        for (int k = 0; k < tmp.n_eos; k++) dup |= tmp.eos_token_ids[k] == cfg->eos_token_ids[i];
        if (dup) continue;
        if (tmp.n_eos >= TM_MAX_EOS) {
            s = tm_errf(err, TM_ERR_INPUT, "%s: eos_token_id: more than %d distinct ids with config.json's",
                        what, TM_MAX_EOS);
            goto out;
        }
        tmp.eos_token_ids[tmp.n_eos++] = cfg->eos_token_ids[i];
    }
    if ((s = get_num(root, "temperature", what, 0.0, 100.0, &tmp.gen_temperature, &tmp.has_temperature, err)))
        goto out;
    if ((s = get_num(root, "top_p", what, 0.0, 1.0, &tmp.gen_top_p, &tmp.has_top_p, err))) goto out;
    if ((s = get_int(root, "top_k", what, 0, 1 << 30, &tmp.gen_top_k, &tmp.has_top_k, err))) goto out;
    *cfg = tmp;
out:
    json_decref(root);
    return s;
}
