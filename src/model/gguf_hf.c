/* gguf_hf.c — GGUF metadata and tensors as a Hugging Face config + safetensors
 * image (the mapping and its rules: gguf_hf.h). */
#include "model/gguf_hf.h"

#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "quant/ggml_blocks.h"
#include "quant/quant.h"

int tm_gguf_is_file(const char *path)
{
    struct stat sb;
    if (!path || stat(path, &sb) || !S_ISREG(sb.st_mode)) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char m[4];
    int ok = read(fd, m, 4) == 4 && !memcmp(m, "GGUF", 4);
    close(fd);
    return ok;
}

static const struct { const char *gguf, *hf_arch, *model_type; } k_arch[] = {
    { "llama", "LlamaForCausalLM", "llama" },
    { "qwen2", "Qwen2ForCausalLM", "qwen2" },
    { "qwen3", "Qwen3ForCausalLM", "qwen3" },
};

static tm_status arch_of(const tm_gguf *g, int *idx, char *key, size_t keysz, tm_err *err)
{
    tm_gguf_str a;
    tm_status s = tm_gguf_get_str(g, "general.architecture", &a, err);
    if (s) return s;
    for (size_t i = 0; i < sizeof k_arch / sizeof *k_arch; i++)
        if (a.len == strlen(k_arch[i].gguf) && !memcmp(a.p, k_arch[i].gguf, a.len)) {
            *idx = (int)i;
            snprintf(key, keysz, "%s", k_arch[i].gguf);
            return TM_OK;
        }
    return tm_errf(err, TM_ERR_INPUT, "%s: general.architecture '%.*s' is not supported (llama, qwen2, qwen3)",
                   tm_gguf_path(g), (int)(a.len > 64 ? 64 : a.len), a.p);
}

static tm_status get_i(const tm_gguf *g, const char *arch, const char *k, int required, int64_t def, int64_t *out,
                       tm_err *err)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, k);
    tm_status s = tm_gguf_get_int(g, key, out, err);
    if (s == TM_ERR_NOTFOUND && !required) { *out = def; return TM_OK; }
    if (!s && (*out < 0 || *out > (1LL << 31)))
        return tm_errf(err, TM_ERR_INPUT, "%s: %s = %lld is out of range", tm_gguf_path(g), key, (long long)*out);
    return s;
}

static tm_status get_f(const tm_gguf *g, const char *arch, const char *k, double def, double *out, tm_err *err)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, k);
    tm_status s = tm_gguf_get_float(g, key, out, err);
    if (s == TM_ERR_NOTFOUND) { *out = def; return TM_OK; }
    return s;
}

/* llama.cpp's rope_freqs for Llama 3.x rope_scaling (convert_hf_to_gguf.py). */
static int llama3_factors_match(const tm_gguf_tensor *t, double base, int64_t head_dim, double factor)
{
    const double low = 1.0, high = 4.0, orig = 8192.0, lw = orig / low, hw = orig / high;
    if (t->type != TM_GGML_F32 || t->nelem != head_dim / 2) return 0;
    for (int64_t i = 0; i < head_dim / 2; i++) {
        double freq = 1.0 / pow(base, (double)(2 * i) / (double)head_dim), wl = 2 * M_PI / freq, want;
        if (wl < hw) want = 1.0;
        else if (wl > lw) want = factor;
        else {
            double sm = (orig / wl - low) / (high - low);
            want = 1.0 / ((1 - sm) / factor + sm);
        }
        float got;
        memcpy(&got, t->data + 4 * i, 4);
        if (fabs(got - want) > 1e-4 * want) return 0;
    }
    return 1;
}

static tm_status rope_scaling(const tm_gguf *g, const char *arch, double base, int64_t head_dim, json_t *cfg,
                              tm_err *err)
{
    char key[160];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    tm_gguf_str st;
    tm_status s = tm_gguf_get_str(g, key, &st, err);
    if (s && s != TM_ERR_NOTFOUND) return s;
    if (!s && !(st.len == 4 && !memcmp(st.p, "none", 4)))
        return tm_errf(err, TM_ERR_INPUT, "%s: %s '%.*s' is not supported (only Llama 3's rope_freqs)",
                       tm_gguf_path(g), key, (int)(st.len > 32 ? 32 : st.len), st.p);
    const tm_gguf_tensor *rf = tm_gguf_find(g, "rope_freqs.weight");
    if (!rf) return TM_OK;
    static const double factors[] = { 8.0, 32.0 };
    for (size_t i = 0; i < 2; i++)
        if (llama3_factors_match(rf, base, head_dim, factors[i])) {
            json_t *rs = json_pack("{s:s, s:f, s:f, s:f, s:i}", "rope_type", "llama3", "factor", factors[i],
                                   "low_freq_factor", 1.0, "high_freq_factor", 4.0,
                                   "original_max_position_embeddings", 8192);
            if (!rs || json_object_set_new(cfg, "rope_scaling", rs))
                return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", tm_gguf_path(g));
            return TM_OK;
        }
    return tm_errf(err, TM_ERR_INPUT, "%s: rope_freqs.weight does not match Llama 3's rope scaling (factor 8 or 32, "
                   "low 1, high 4, original 8192): not supported", tm_gguf_path(g));
}

static tm_status dump(json_t *o, tm_buf *b, const char *what, tm_err *err)
{
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    tm_status s = txt ? tm_buf_puts(b, txt) : TM_ERR_NOMEM;
    free(txt);
    return s ? tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", what) : TM_OK;
}

tm_status tm_gguf_hf_config(const tm_gguf *g, tm_buf *config, tm_buf *generation, tm_err *err)
{
    int ai = 0;
    char arch[32];
    tm_status s = arch_of(g, &ai, arch, sizeof arch, err);
    int64_t layers = 0, hidden = 0, ffn = 0, ctx = 0, heads = 0, kv = 0, hd = 0, bos = -1, eos = -1;
    double eps = 0, base = 0;
    if (!s) s = get_i(g, arch, "block_count", 1, 0, &layers, err);
    if (!s) s = get_i(g, arch, "embedding_length", 1, 0, &hidden, err);
    if (!s) s = get_i(g, arch, "feed_forward_length", 1, 0, &ffn, err);
    if (!s) s = get_i(g, arch, "context_length", 0, 4096, &ctx, err);
    if (!s) s = get_i(g, arch, "attention.head_count", 1, 0, &heads, err);
    if (!s) s = get_i(g, arch, "attention.head_count_kv", 0, heads, &kv, err);
    if (!s && heads <= 0) s = tm_errf(err, TM_ERR_INPUT, "%s: %s.attention.head_count must be > 0", tm_gguf_path(g), arch);
    if (!s) s = get_i(g, arch, "attention.key_length", 0, hidden / (heads ? heads : 1), &hd, err);
    if (!s) s = get_f(g, arch, "attention.layer_norm_rms_epsilon", 1e-6, &eps, err);
    if (!s) s = get_f(g, arch, "rope.freq_base", 10000.0, &base, err);
    if (s) return s;
    const tm_gguf_tensor *emb = tm_gguf_find(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2)
        return tm_errf(err, TM_ERR_INPUT, "%s: token_embd.weight: missing or not a matrix", tm_gguf_path(g));
    int64_t tmp;
    if (!tm_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &tmp, err)) bos = tmp;
    if (!tm_gguf_get_int(g, "tokenizer.ggml.eos_token_id", &tmp, err)) eos = tmp;
    json_t *c = json_pack("{s:[s], s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:b}",
                          "architectures", k_arch[ai].hf_arch, "model_type", k_arch[ai].model_type,
                          "vocab_size", (json_int_t)emb->ne[1], "hidden_size", (json_int_t)hidden,
                          "intermediate_size", (json_int_t)ffn, "num_hidden_layers", (json_int_t)layers,
                          "num_attention_heads", (json_int_t)heads, "num_key_value_heads", (json_int_t)kv,
                          "head_dim", (json_int_t)hd, "max_position_embeddings", (json_int_t)ctx,
                          "rms_norm_eps", eps, "rope_theta", base,
                          "tie_word_embeddings", tm_gguf_find(g, "output.weight") == NULL);
    if (!c) return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", tm_gguf_path(g));
    if (tm_gguf_find(g, "blk.0.attn_q.bias") && strcmp(arch, "qwen2")) json_object_set_new(c, "attention_bias", json_true());
    if (bos >= 0) json_object_set_new(c, "bos_token_id", json_integer(bos));
    if (eos >= 0) json_object_set_new(c, "eos_token_id", json_integer(eos));
    s = rope_scaling(g, arch, base, hd, c, err);
    if (!s) s = dump(c, config, tm_gguf_path(g), err);
    json_decref(c);
    if (!s && generation) {
        json_t *gc = json_object();
        if (gc && eos >= 0) json_object_set_new(gc, "eos_token_id", json_integer(eos));
        if (gc && bos >= 0) json_object_set_new(gc, "bos_token_id", json_integer(bos));
        s = dump(gc, generation, tm_gguf_path(g), err);
        json_decref(gc);
    }
    return s;
}

/* ---- tensors ---------------------------------------------------------- */

static const struct { const char *gguf, *hf; } k_layer_names[] = {
    { "attn_norm.weight", "input_layernorm.weight" },
    { "attn_q.weight", "self_attn.q_proj.weight" },     { "attn_q.bias", "self_attn.q_proj.bias" },
    { "attn_k.weight", "self_attn.k_proj.weight" },     { "attn_k.bias", "self_attn.k_proj.bias" },
    { "attn_v.weight", "self_attn.v_proj.weight" },     { "attn_v.bias", "self_attn.v_proj.bias" },
    { "attn_output.weight", "self_attn.o_proj.weight" },
    { "attn_q_norm.weight", "self_attn.q_norm.weight" }, { "attn_k_norm.weight", "self_attn.k_norm.weight" },
    { "ffn_norm.weight", "post_attention_layernorm.weight" },
    { "ffn_gate.weight", "mlp.gate_proj.weight" },     { "ffn_up.weight", "mlp.up_proj.weight" },
    { "ffn_down.weight", "mlp.down_proj.weight" },
};

/* HF name of a GGUF tensor; 0 = skip (rope_freqs: read as metadata), -1 = unknown. */
static int hf_name(const char *gn, char *out, size_t n, int *layer, int *permute_q, int *permute_k)
{
    *layer = -1;
    *permute_q = *permute_k = 0;
    if (!strcmp(gn, "rope_freqs.weight")) return 0;
    if (!strcmp(gn, "token_embd.weight")) { snprintf(out, n, "model.embed_tokens.weight"); return 1; }
    if (!strcmp(gn, "output_norm.weight")) { snprintf(out, n, "model.norm.weight"); return 1; }
    if (!strcmp(gn, "output.weight")) { snprintf(out, n, "lm_head.weight"); return 1; }
    int l = -1, pos = 0;
    if (sscanf(gn, "blk.%d.%n", &l, &pos) != 1 || l < 0 || pos <= 0) return -1;
    for (size_t i = 0; i < sizeof k_layer_names / sizeof *k_layer_names; i++)
        if (!strcmp(gn + pos, k_layer_names[i].gguf)) {
            snprintf(out, n, "model.layers.%d.%s", l, k_layer_names[i].hf);
            *layer = l;
            *permute_q = !strcmp(k_layer_names[i].gguf, "attn_q.weight");
            *permute_k = !strcmp(k_layer_names[i].gguf, "attn_k.weight");
            return 1;
        }
    return -1;
}

typedef struct plan {
    const tm_gguf_tensor *t;
    char name[160];
    int out_dtype;           /* 0 F32, 1 F16, 2 BF16 */
    int permute_heads;       /* > 0: undo llama.cpp's q/k interleave with this many heads */
    uint64_t begin, nbytes;
} plan;

static const char *k_dt_name[] = { "F32", "F16", "BF16" };
static const int k_dt_size[] = { 4, 2, 2 };

/* rows r of GGUF = h*D + 2j + t  ->  HF row h*D + t*D/2 + j */
static int64_t unpermute_row(int64_t r, int64_t D)
{
    int64_t h = r / D, w = r % D, j = w / 2, t = w % 2;
    return h * D + t * (D / 2) + j;
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static tm_status plan_all(const tm_gguf *g, plan **out, size_t *n_out, uint64_t *data_len, tm_err *err)
{
    int ai = 0;
    char arch[32];
    int64_t heads = 0, kv = 0, total = 0;
    tm_status s = arch_of(g, &ai, arch, sizeof arch, err);
    if (!s) s = get_i(g, arch, "attention.head_count", 1, 0, &heads, err);
    if (!s) s = get_i(g, arch, "attention.head_count_kv", 0, heads, &kv, err);
    if (s) return s;
    int llama = !strcmp(arch, "llama");
    size_t n = tm_gguf_tensor_count(g);
    for (size_t i = 0; i < n; i++) total += tm_gguf_tensor_at(g, i)->nelem;
    plan *p = calloc(n ? n : 1, sizeof *p);
    if (!p) return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", tm_gguf_path(g));
    size_t k = 0;
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const tm_gguf_tensor *t = tm_gguf_tensor_at(g, i);
        int layer, pq, pk;
        int r = hf_name(t->name, p[k].name, sizeof p[k].name, &layer, &pq, &pk);
        if (r == 0) continue;
        if (r < 0 || !tm_ggml_dequant_supported(t->type) || t->n_dims > 2) {
            free(p);
            return tm_errf(err, TM_ERR_INPUT, r < 0 ? "%s: tensor %s is not a tensor of the supported architectures"
                                                    : "%s: tensor %s: type %s is not supported (F32, F16, BF16, "
                                                      "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K; 1-2 dims)",
                           tm_gguf_path(g), t->name, tm_ggml_type_name(t->type));
        }
        p[k].t = t;
        p[k].out_dtype = t->type == TM_GGML_F16 ? 1 : t->type == TM_GGML_BF16 ? 2 : t->type == TM_GGML_F32 ? 0
                         : total > TM_GGUF_F32_MAX_PARAMS ? 2 : 0;
        if (llama && (pq || pk)) {
            int64_t nh = pq ? heads : kv;
            if (nh <= 0 || t->ne[1] % nh || (t->ne[1] / nh) % 2) {
                free(p);
                return tm_errf(err, TM_ERR_INPUT, "%s: tensor %s: %lld rows do not split into %lld heads",
                               tm_gguf_path(g), t->name, (long long)t->ne[1], (long long)nh);
            }
            p[k].permute_heads = (int)nh;
        }
        p[k].begin = off;
        p[k].nbytes = (uint64_t)t->nelem * (uint64_t)k_dt_size[p[k].out_dtype];
        off += (p[k].nbytes + 7) / 8 * 8;
        k++;
    }
    *out = p;
    *n_out = k;
    *data_len = off;
    return TM_OK;
}

static tm_status header_json(const tm_gguf *g, const plan *p, size_t n, tm_buf *hdr, tm_err *err)
{
    json_t *h = json_object();
    for (size_t i = 0; h && i < n; i++) {
        const tm_gguf_tensor *t = p[i].t;
        json_t *shape = t->n_dims == 1 ? json_pack("[I]", (json_int_t)t->ne[0])
                                       : json_pack("[I,I]", (json_int_t)t->ne[1], (json_int_t)t->ne[0]);
        json_t *e = json_pack("{s:s, s:o, s:[I,I]}", "dtype", k_dt_name[p[i].out_dtype], "shape", shape,
                              "data_offsets", (json_int_t)p[i].begin, (json_int_t)(p[i].begin + p[i].nbytes));
        if (!e || json_object_set_new(h, p[i].name, e)) { json_decref(h); h = NULL; }
    }
    tm_status s = dump(h, hdr, tm_gguf_path(g), err);
    json_decref(h);
    while (!s && hdr->len % 8) s = tm_buf_append(hdr, " ", 1);
    return s;
}

/* Dequantise row by row into dst (dtype of the plan), undoing the q/k permute. */
static tm_status convert(const plan *p, unsigned char *dst, float *row, tm_err *err)
{
    const tm_gguf_tensor *t = p->t;
    int64_t cols = t->ne[0], rows = t->nelem / cols;
    size_t row_bytes = (size_t)(cols / tm_ggml_block_elems(t->type)) * (size_t)tm_ggml_block_bytes(t->type);
    int64_t D = p->permute_heads ? rows / p->permute_heads : 0;
    int sz = k_dt_size[p->out_dtype];
    for (int64_t r = 0; r < rows; r++) {
        int64_t hr = D ? unpermute_row(r, D) : r;
        unsigned char *o = dst + (size_t)hr * (size_t)cols * (size_t)sz;
        const unsigned char *src = t->data + (size_t)r * row_bytes;
        if ((t->type == TM_GGML_F16 && p->out_dtype == 1) || (t->type == TM_GGML_BF16 && p->out_dtype == 2)) {
            memcpy(o, src, (size_t)cols * 2);
            continue;
        }
        if (tm_ggml_dequant(t->type, src, row, cols))
            return tm_errf(err, TM_ERR_INTERNAL, "tensor %s: dequantisation failed", t->name);
        if (p->out_dtype == 0) memcpy(o, row, (size_t)cols * 4);
        else for (int64_t c = 0; c < cols; c++) {
            uint16_t v = f32_to_bf16(row[c]);
            memcpy(o + 2 * c, &v, 2);
        }
    }
    return TM_OK;
}

tm_status tm_gguf_hf_weights(const tm_gguf *g, void **image, size_t *len, tm_err *err)
{
    *image = NULL;
    *len = 0;
    plan *p = NULL;
    size_t n = 0;
    uint64_t data_len = 0;
    tm_buf hdr;
    tm_buf_init(&hdr);
    tm_status s = plan_all(g, &p, &n, &data_len, err);
    if (!s) s = header_json(g, p, n, &hdr, err);
    int64_t max_cols = 1;
    for (size_t i = 0; i < n; i++) if (p[i].t->ne[0] > max_cols) max_cols = p[i].t->ne[0];
    float *row = s ? NULL : malloc((size_t)max_cols * sizeof *row);
    size_t total = 8 + hdr.len + (size_t)data_len;
    unsigned char *img = (s || !row) ? NULL : malloc(total);
    if (!s && !img) s = tm_errf(err, TM_ERR_NOMEM, "%s: out of memory for %zu bytes of weights", tm_gguf_path(g), total);
    if (!s) {
        uint64_t hl = hdr.len;
        memcpy(img, &hl, 8);
        memcpy(img + 8, hdr.data, hdr.len);
        memset(img + 8 + hdr.len, 0, (size_t)data_len);
        for (size_t i = 0; !s && i < n; i++) s = convert(&p[i], img + 8 + hdr.len + p[i].begin, row, err);
    }
    free(row);
    free(p);
    tm_buf_free(&hdr);
    if (s) { free(img); return s; }
    *image = img;
    *len = total;
    return TM_OK;
}
