/* model.c — tm_model_load: a Hugging Face model directory -> config + weight views.
 *
 * Reads DIR/config.json and optional DIR/generation_config.json (config.c), maps
 * DIR/model.safetensors, or else every shard named by the weight_map of
 * DIR/model.safetensors.index.json (shard names must be plain file names in DIR),
 * then resolves the tensors of arch.h's table that the config asks for and
 * checks each shape against it. Tensors whose data is not aligned to their
 * element size (possible in hand-written files) are copied to aligned memory
 * we own.
 * Quantized checkpoints: the seven projections of each layer are found as
 * gptq/awq packed tensors or float8 weights (per config.json's
 * quantization_config) and converted to canonical tm_qweights (quant.h);
 * model_quant.c does the same for a float model (round-to-nearest) and
 * synthetic.c builds shape-only models.
 */
#include "model/model_internal.h"
#include "model/gguf_hf.h"
#include "util/buf.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TM_CONFIG_MAX_BYTES ((size_t)16 << 20)
#define TM_INDEX_MAX_BYTES ((size_t)64 << 20)
#define TM_PATH_MAX 4096

/* Where tensor names are looked up. */
typedef struct resolver {
    tm_model *m;
    json_t *weight_map;      /* NULL: single file files[0] */
    char where[TM_PATH_MAX]; /* model.safetensors or the index json path */
} resolver;

static int exists(const char *path) { struct stat sb; return stat(path, &sb) == 0; }

static tm_status read_json_file(const char *path, size_t max, tm_buf *b, tm_err *err)
{
    return tm_read_file(path, max, b, err);
}

static int shard_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255) return 0;
    if (!strcmp(s, ".") || !strcmp(s, "..")) return 0;
    return strchr(s, '/') == NULL && strchr(s, '\\') == NULL;
}

static tm_status add_file(tm_model *m, const char *name, tm_err *err)
{
    char path[TM_PATH_MAX];
    tm_status s = tm_path_join(path, sizeof path, m->dir, name, err);
    if (s) return s;
    tm_safetensors **nf = realloc(m->files, (size_t)(m->n_files + 1) * sizeof *nf);
    if (!nf) return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", path);
    m->files = nf;
    char **nn = realloc(m->file_names, (size_t)(m->n_files + 1) * sizeof *nn);
    if (!nn) return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", path);
    m->file_names = nn;
    char *dup = strdup(name);
    if (!dup) return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", path);
    tm_safetensors *st;
    s = tm_safetensors_open(path, &st, err);
    if (s) { free(dup); return s; }
    m->files[m->n_files] = st;
    m->file_names[m->n_files] = dup;
    m->n_files++;
    return TM_OK;
}

static int file_index(const tm_model *m, const char *name)
{
    for (int i = 0; i < m->n_files; i++)
        if (!strcmp(m->file_names[i], name)) return i;
    return -1;
}

/* Opens the shards of DIR/model.safetensors.index.json; keeps its weight_map. */
static tm_status open_index(tm_model *m, resolver *r, json_t **root_out, tm_err *err)
{
    tm_buf b;
    tm_buf_init(&b);
    tm_status s = read_json_file(r->where, TM_INDEX_MAX_BYTES, &b, err);
    if (s) { tm_buf_free(&b); return s; }
    json_error_t je;
    json_t *root = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &je);
    tm_buf_free(&b);
    if (!root)
        return tm_errf(err, TM_ERR_INPUT, "%s:%d: not valid JSON: %s", r->where, je.line, je.text);
    *root_out = root;
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm) || json_object_size(wm) == 0)
        return tm_errf(err, TM_ERR_INPUT, "%s: weight_map: missing or not a non-empty object", r->where);
    const char *key;
    json_t *val;
    json_object_foreach(wm, key, val) {
        if (!json_is_string(val))
            return tm_errf(err, TM_ERR_INPUT, "%s: weight_map: %s: file name is not a string", r->where, key);
        const char *fn = json_string_value(val);
        if (!shard_name_ok(fn))
            return tm_errf(err, TM_ERR_INPUT,
                           "%s: weight_map: %s: shard '%.200s' is not a plain file name in the model directory",
                           r->where, key, fn);
        if (file_index(m, fn) >= 0) continue;
        if ((s = add_file(m, fn, err))) return s;
    }
    r->weight_map = wm;
    return TM_OK;
}

/* Finds NAME: *out NULL when absent; *st_out the file that holds it. */
static tm_status lookup(resolver *r, const char *name, const tm_tensor **out, const tm_safetensors **st_out,
                        tm_err *err)
{
    tm_model *m = r->m;
    const tm_tensor *t = NULL;
    const tm_safetensors *st = m->files[0];
    if (r->weight_map) {
        json_t *v = json_object_get(r->weight_map, name);
        if (v) {
            int fi = file_index(m, json_string_value(v));
            st = m->files[fi < 0 ? 0 : fi];
            t = tm_safetensors_find(st, name);
            if (!t)
                return tm_errf(err, TM_ERR_INPUT,
                               "%s: tensor %s is missing (the weight_map of %s places it in this file)",
                               tm_safetensors_path(st), name, r->where);
        }
    } else {
        t = tm_safetensors_find(st, name);
    }
    *out = t;
    *st_out = st;
    return TM_OK;
}

#define DT_FLOAT ((1u << TM_DTYPE_F32) | (1u << TM_DTYPE_F16) | (1u << TM_DTYPE_BF16))
#define DT_I32 (1u << TM_DTYPE_I32)

static const char *dtypes_str(unsigned mask)
{
    return mask == DT_I32 ? "I32" : mask == DT_FLOAT ? "BF16, F16 or F32" : "?";
}

/* A float tensor holding NaN or Inf makes every logit NaN: the model cannot
 * serve anything, so the load refuses it (TM_ERR_UNAVAILABLE, exit 69 for a
 * worker) naming the tensor. The bits are tested (all-ones exponent), one
 * pass over the bytes at load. */
/* Index of the first element whose exponent bits are all ones, or n. Blocks
 * of 4096 are tested without an early exit (the compiler vectorizes them). */
static size_t first_nonfinite16(const unsigned char *p, size_t n, uint16_t mask)
{
    for (size_t b = 0; b < n; b += 4096) {
        size_t e = n - b < 4096 ? n : b + 4096;
        unsigned hit = 0;
        for (size_t i = b; i < e; i++) {
            uint16_t u;
            memcpy(&u, p + 2 * i, 2);
            hit |= (u & mask) == mask;
        }
        if (hit)
            for (size_t i = b; i < e; i++) {
                uint16_t u;
                memcpy(&u, p + 2 * i, 2);
                if ((u & mask) == mask) return i;
            }
    }
    return n;
}

static size_t first_nonfinite32(const unsigned char *p, size_t n)
{
    for (size_t b = 0; b < n; b += 4096) {
        size_t e = n - b < 4096 ? n : b + 4096;
        unsigned hit = 0;
        for (size_t i = b; i < e; i++) {
            uint32_t u;
            memcpy(&u, p + 4 * i, 4);
            hit |= (u & 0x7f800000u) == 0x7f800000u;
        }
        if (hit)
            for (size_t i = b; i < e; i++) {
                uint32_t u;
                memcpy(&u, p + 4 * i, 4);
                if ((u & 0x7f800000u) == 0x7f800000u) return i;
            }
    }
    return n;
}

/* A float tensor holding NaN or Inf makes every logit NaN: the model cannot
 * serve anything, so the load refuses it (TM_ERR_UNAVAILABLE, exit 69 for a
 * worker) naming the tensor. The bits are tested (all-ones exponent), one
 * pass over the bytes at load. */
static tm_status check_finite(const tm_tensor *t, const char *path, const char *name, tm_err *err)
{
    size_t n = t->nbytes / tm_dtype_size(t->dtype), bad = n;
    if (t->dtype == TM_DTYPE_F32) bad = first_nonfinite32(t->data, n);
    else if (t->dtype == TM_DTYPE_F16) bad = first_nonfinite16(t->data, n, 0x7c00u);
    else if (t->dtype == TM_DTYPE_BF16) bad = first_nonfinite16(t->data, n, 0x7f80u);
    if (bad == n) return TM_OK;
    return tm_errf(err, TM_ERR_UNAVAILABLE, "%s: tensor %s holds NaN or Inf (element %zu): the model cannot run",
                   path, name, bad);
}

/* Finds NAME and checks its dtype is in dtype_mask and (ndim >= 0) its shape is
 * dims[0..ndim). Absent + !required: out->data stays NULL. */
static tm_status resolve_any(resolver *r, const char *name, int required, unsigned dtype_mask, int ndim, int64_t d0,
                             int64_t d1, tm_tensor *out, tm_err *err)
{
    tm_model *m = r->m;
    memset(out, 0, sizeof *out);
    const tm_tensor *t;
    const tm_safetensors *st;
    tm_status s = lookup(r, name, &t, &st, err);
    if (s) return s;
    if (!t) {
        if (!required) return TM_OK;
        return tm_errf(err, TM_ERR_INPUT, "%s: tensor %s is missing", r->where, name);
    }
    if (!(dtype_mask & (1u << t->dtype)))
        return tm_errf(err, TM_ERR_INPUT, "%s: tensor %s has dtype %s, expected %s", tm_safetensors_path(st), name,
                       tm_dtype_name(t->dtype), dtypes_str(dtype_mask));
    int64_t want[2] = { d0, d1 };
    int ok = ndim < 0 || t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        char a[128], b[128];
        tm_shape_format(a, sizeof a, t->ndim, t->shape);
        tm_shape_format(b, sizeof b, ndim, want);
        return tm_errf(err, TM_ERR_INPUT, "%s: tensor %s has shape %s, expected %s",
                       tm_safetensors_path(st), name, a, b);
    }
    if ((s = check_finite(t, tm_safetensors_path(st), name, err))) return s;
    *out = *t;
    size_t al = tm_dtype_size(t->dtype);
    if (t->nbytes && (uintptr_t)t->data % al) {
        void **no = realloc(m->owned, (m->n_owned + 1) * sizeof *no);
        if (!no) return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", r->where);
        m->owned = no;
        void *copy = malloc(t->nbytes);
        if (!copy) return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory copying %s", r->where, name);
        memcpy(copy, t->data, t->nbytes);
        m->owned[m->n_owned++] = copy;
        out->data = copy;
    }
    return TM_OK;
}

/* A plain float tensor. */
static tm_status resolve(resolver *r, const char *name, int required, int ndim, int64_t d0, int64_t d1,
                         tm_tensor *out, tm_err *err)
{
    return resolve_any(r, name, required, DT_FLOAT, ndim, d0, d1, out, err);
}

/* ---- quantized projections ------------------------------------------------ */

static tm_status own_q(tm_model *m, tm_qweight *q, tm_err *err)
{
    tm_qweight **nq = realloc(m->qws, (m->n_qws + 1) * sizeof *nq);
    if (!nq) {
        tm_qweight_free(q);
        return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", m->dir);
    }
    m->qws = nq;
    m->qws[m->n_qws++] = q;
    return TM_OK;
}

/* The tensor view of a quantized projection. */
static void q_tensor(tm_tensor *out, const char *name, tm_dtype dt, int64_t n, int64_t k, const tm_qweight *q)
{
    memset(out, 0, sizeof *out);
    out->name = name;
    out->dtype = dt;
    out->ndim = 2;
    out->shape[0] = n;
    out->shape[1] = k;
    out->q = q;
}

/* A float tensor widened to a malloc'd float array (*out; caller frees). */
static tm_status widen(const tm_tensor *t, float **out, tm_err *err)
{
    size_t n = t->nbytes / tm_dtype_size(t->dtype);
    *out = malloc((n ? n : 1) * sizeof(float));
    if (!*out) return tm_errf(err, TM_ERR_NOMEM, "out of memory widening %s", t->name);
    tm_dtype_to_f32(t->dtype, t->data, *out, n);
    return TM_OK;
}

/* PREFIX.qweight/qzeros/scales(/g_idx) of gptq or awq -> a canonical int4 weight. */
static tm_status load_packed(resolver *r, const char *prefix, int64_t N, int64_t K, tm_tensor *out, tm_err *err)
{
    const tm_quant_config *qc = &r->m->cfg.quant;
    int gptq = qc->method == TM_QM_GPTQ;
    const char *fmt = gptq ? "gptq" : "awq";
    char n_qw[192], n_qz[192], n_sc[192], n_gi[192];
    snprintf(n_qw, sizeof n_qw, "%s.qweight", prefix);
    snprintf(n_qz, sizeof n_qz, "%s.qzeros", prefix);
    snprintf(n_sc, sizeof n_sc, "%s.scales", prefix);
    snprintf(n_gi, sizeof n_gi, "%s.g_idx", prefix);
    if (N % 8 || K % 8)
        return tm_errf(err, TM_ERR_INPUT, "%s: %s: shape [%lld, %lld] is not a multiple of 8 in both dims (%s packs 8 "
                       "per int32)", r->where, prefix, (long long)N, (long long)K, fmt);
    int64_t G = qc->group_size == -1 ? K : qc->group_size;
    if (G <= 0 || K % G)
        return tm_errf(err, TM_ERR_INPUT, "%s: %s: in_features %lld is not a multiple of group_size %d", r->where,
                       prefix, (long long)K, qc->group_size);
    int64_t ng = K / G;
    tm_tensor qw, qz, sc, gi;
    tm_status s;
    if ((s = resolve_any(r, n_qw, 1, DT_I32, 2, gptq ? K / 8 : K, gptq ? N : N / 8, &qw, err))) return s;
    if ((s = resolve_any(r, n_qz, 1, DT_I32, 2, ng, N / 8, &qz, err))) return s;
    if ((s = resolve_any(r, n_sc, 1, DT_FLOAT, 2, ng, N, &sc, err))) return s;
    memset(&gi, 0, sizeof gi);
    if (gptq && (s = resolve_any(r, n_gi, 0, DT_I32, 1, K, 0, &gi, err))) return s;
    if (gptq && qc->desc_act && !gi.data)
        return tm_errf(err, TM_ERR_INPUT, "%s: tensor %s is missing (desc_act is true)", r->where, n_gi);
    float *scales;
    if ((s = widen(&sc, &scales, err))) return s;
    tm_qweight *q = NULL;
    if (gptq) {
        tm_gptq_src src = {.n = (int32_t)N, .k = (int32_t)K, .group = qc->group_size, .qweight = qw.data,
                           .qzeros = qz.data, .scales = scales, .g_idx = gi.data, .v2 = qc->gptq_v2};
        s = tm_qweight_from_gptq(&src, prefix, &q, err);
    } else {
        tm_awq_src src = {.n = (int32_t)N, .k = (int32_t)K, .group = qc->group_size, .qweight = qw.data,
                          .qzeros = qz.data, .scales = scales};
        s = tm_qweight_from_awq(&src, prefix, &q, err);
    }
    free(scales);
    if (s) return tm_err_prefix(err, s, "%s", r->where);
    if ((s = own_q(r->m, q, err))) return s;
    q_tensor(out, qw.name, sc.dtype, N, K, q);
    return TM_OK;
}

/* An F8_E4M3 PREFIX.weight (already found: w) + PREFIX.weight_scale. */
static tm_status load_fp8(resolver *r, const char *prefix, const tm_tensor *w, int64_t N, int64_t K, tm_tensor *out,
                          tm_err *err)
{
    char n_ws[192], n_inv[192];
    snprintf(n_ws, sizeof n_ws, "%s.weight_scale", prefix);
    snprintf(n_inv, sizeof n_inv, "%s.weight_scale_inv", prefix);
    if (w->ndim != 2 || w->shape[0] != N || w->shape[1] != K) {
        char a[128];
        tm_shape_format(a, sizeof a, w->ndim, w->shape);
        return tm_errf(err, TM_ERR_INPUT, "%s: tensor %s has shape %s, expected [%lld, %lld]", r->where, w->name, a,
                       (long long)N, (long long)K);
    }
    tm_tensor ws;
    tm_status s;
    if ((s = resolve_any(r, n_inv, 0, DT_FLOAT, -1, 0, 0, &ws, err))) return s;
    if (ws.data)
        return tm_errf(err, TM_ERR_INPUT, "%s: tensor %s: block-wise fp8 scales are not supported", r->where, n_inv);
    if ((s = resolve_any(r, n_ws, 1, DT_FLOAT, -1, 0, 0, &ws, err))) return s;
    int64_t cnt = 1;
    for (int i = 0; i < ws.ndim; i++) cnt *= ws.shape[i];
    int shape_ok = (ws.ndim <= 1 && (cnt == 1 || cnt == N)) ||
                   (ws.ndim == 2 && ((ws.shape[0] == N && ws.shape[1] == 1) || (ws.shape[0] == 1 && ws.shape[1] == 1)));
    if (!shape_ok) {
        char a[128];
        tm_shape_format(a, sizeof a, ws.ndim, ws.shape);
        return tm_errf(err, TM_ERR_INPUT, "%s: tensor %s has shape %s, expected [], [1], [%lld] or [%lld, 1]",
                       r->where, n_ws, a, (long long)N, (long long)N);
    }
    float *scales;
    if ((s = widen(&ws, &scales, err))) return s;
    tm_qweight *q = NULL;
    s = tm_qweight_from_fp8((int32_t)N, (int32_t)K, w->data, scales, (int32_t)cnt, r->m->cfg.quant.act_fp8, prefix, &q,
                            err);
    free(scales);
    if (s) return tm_err_prefix(err, s, "%s", r->where);
    if ((s = own_q(r->m, q, err))) return s;
    q_tensor(out, w->name, r->m->cfg.dtype, N, K, q);
    return TM_OK;
}

/* One projection [N, K] named PREFIX: quantized per the config when the
 * checkpoint stores it so, else PREFIX.weight in a float dtype. */
static tm_status resolve_proj(resolver *r, const char *prefix, int64_t N, int64_t K, tm_tensor *out, tm_err *err)
{
    tm_quant_method qm = r->m->cfg.quant.method;
    char name[192];
    const tm_tensor *t;
    const tm_safetensors *st;
    tm_status s;
    if (qm == TM_QM_GPTQ || qm == TM_QM_AWQ) {
        snprintf(name, sizeof name, "%s.qweight", prefix);
        if ((s = lookup(r, name, &t, &st, err))) return s;
        if (t) return load_packed(r, prefix, N, K, out, err);
    }
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (qm == TM_QM_FP8 || qm == TM_QM_CT_FP8) {
        if ((s = lookup(r, name, &t, &st, err))) return s;
        if (t && t->dtype == TM_DTYPE_F8_E4M3) return load_fp8(r, prefix, t, N, K, out, err);
    }
    return resolve(r, name, 1, 2, N, K, out, err);
}

tm_tensor *tm_model_slot(tm_model *m, const tm_wspec *s, int layer)
{
    switch (s->id) {
    case TM_W_EMBED: return &m->embed;
    case TM_W_FINAL_NORM: return &m->norm;
    case TM_W_LM_HEAD: return &m->lm_head;
    default: return (tm_tensor *)((char *)&m->layers[layer] + s->field);
    }
}

/* Resolves row s (layer ignored for model-wide rows): projections through
 * resolve_proj (quantized forms), the rest as plain float tensors. */
static tm_status resolve_row(resolver *r, const tm_wspec *s, int layer, tm_err *err)
{
    const tm_model_config *c = &r->m->cfg;
    tm_tensor *dst = tm_model_slot(r->m, s, layer);
    int64_t d0 = tm_arch_dim(c, s->dim[0]), d1 = s->ndim > 1 ? tm_arch_dim(c, s->dim[1]) : 0;
    char n[160]; /* resolve_proj appends suffixes in 192 bytes */
    tm_arch_name(s, layer, n, sizeof n);
    if (s->role == TM_WR_PROJ) {
        size_t len = strlen(n); /* PREFIX of PREFIX.weight, PREFIX.qweight, ... */
        if (len > 7 && !strcmp(n + len - 7, ".weight")) n[len - 7] = '\0';
        return resolve_proj(r, n, d0, d1, dst, err);
    }
    if (s->need != TM_WN_UNTIED) return resolve(r, n, tm_arch_required(c, s), s->ndim, d0, d1, dst, err);
    tm_status st = resolve(r, n, 0, s->ndim, d0, d1, dst, err);
    if (st || dst->data) return st;
    if (!c->tie_word_embeddings)
        return tm_errf(err, TM_ERR_INPUT, "%s: tensor %s is missing (and tie_word_embeddings is false)", r->where, n);
    *dst = r->m->embed;
    r->m->tied = 1;
    return TM_OK;
}

/* Every row the architecture has: model-wide ones, then layer by layer. */
static tm_status resolve_all(resolver *r, tm_err *err)
{
    tm_model *m = r->m;
    tm_status s = TM_OK;
    for (int id = 0; !s && id < TM_W_LAYER_FIRST; id++)
        if (tm_arch_has(&m->cfg, tm_arch_spec((tm_wid)id))) s = resolve_row(r, tm_arch_spec((tm_wid)id), 0, err);
    if (!s) {
        m->layers = calloc((size_t)m->cfg.n_layers, sizeof *m->layers);
        if (!m->layers) return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", m->dir);
    }
    for (int l = 0; !s && l < m->cfg.n_layers; l++)
        for (int id = TM_W_LAYER_FIRST; !s && id < TM_W_COUNT; id++)
            if (tm_arch_has(&m->cfg, tm_arch_spec((tm_wid)id))) s = resolve_row(r, tm_arch_spec((tm_wid)id), l, err);
    return s;
}

static tm_status load_config(tm_model *m, tm_err *err)
{
    char path[TM_PATH_MAX];
    tm_status s = tm_path_join(path, sizeof path, m->dir, "config.json", err);
    if (s) return s;
    if (!exists(path))
        return tm_errf(err, TM_ERR_NOTFOUND, "%s: not found (is %s a Hugging Face model directory?)", path,
                       m->dir);
    tm_buf b;
    tm_buf_init(&b);
    s = read_json_file(path, TM_CONFIG_MAX_BYTES, &b, err);
    if (!s) s = tm_model_config_parse(b.data, b.len, path, &m->cfg, err);
    if (!s) s = tm_path_join(path, sizeof path, m->dir, "generation_config.json", err);
    if (!s && exists(path)) {
        s = read_json_file(path, TM_CONFIG_MAX_BYTES, &b, err);
        if (!s) s = tm_model_generation_config_parse(b.data, b.len, path, &m->cfg, err);
    }
    tm_buf_free(&b);
    return s;
}

static tm_status load_weights(tm_model *m, tm_err *err)
{
    resolver r = { .m = m };
    json_t *index_root = NULL;
    char single[TM_PATH_MAX];
    tm_status s = tm_path_join(single, sizeof single, m->dir, "model.safetensors", err);
    if (s) return s;
    if (exists(single)) {
        snprintf(r.where, sizeof r.where, "%s", single);
        s = add_file(m, "model.safetensors", err);
    } else {
        s = tm_path_join(r.where, sizeof r.where, m->dir, "model.safetensors.index.json", err);
        if (s) return s;
        if (!exists(r.where))
            return tm_errf(err, TM_ERR_NOTFOUND,
                           "%s: no model.safetensors or model.safetensors.index.json in the model directory",
                           m->dir);
        s = open_index(m, &r, &index_root, err);
    }
    if (!s) s = resolve_all(&r, err);
    json_decref(index_root);
    return s;
}

/* A GGUF file: config and weights translated to the Hugging Face layout
 * (model/gguf_hf.h), then the same parsing and checks as a directory. */
static tm_status load_gguf(tm_model *m, tm_err *err)
{
    tm_gguf *g = NULL;
    tm_buf cfg, gen;
    tm_buf_init(&cfg);
    tm_buf_init(&gen);
    void *img = NULL;
    size_t len = 0;
    tm_status s = tm_gguf_open(m->dir, &g, err);
    if (!s) s = tm_gguf_hf_config(g, &cfg, &gen, err);
    if (!s) s = tm_model_config_parse(cfg.data, cfg.len, m->dir, &m->cfg, err);
    if (!s) s = tm_model_generation_config_parse(gen.data, gen.len, m->dir, &m->cfg, err);
    if (!s) s = tm_gguf_hf_weights(g, &img, &len, err);
    tm_gguf_destroy(g);
    tm_buf_free(&cfg);
    tm_buf_free(&gen);
    void **no = s ? NULL : realloc(m->owned, (m->n_owned + 1) * sizeof *no);
    tm_safetensors **nf = s ? NULL : realloc(m->files, sizeof *nf);
    if (!s && (!no || !nf)) s = tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", m->dir);
    if (no) m->owned = no;
    if (nf) m->files = nf;
    if (s) { free(img); return s; }
    m->owned[m->n_owned++] = img;
    m->file_names = calloc(1, sizeof *m->file_names);
    if (!m->file_names || !(m->file_names[0] = strdup("model.safetensors")))
        return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", m->dir);
    if ((s = tm_safetensors_parse(img, len, m->dir, &m->files[0], err))) return s;
    m->n_files = 1;
    resolver r = { .m = m };
    snprintf(r.where, sizeof r.where, "%s", m->dir);
    return resolve_all(&r, err);
}

tm_status tm_model_load(const char *dir, tm_model **out, tm_err *err)
{
    *out = NULL;
    tm_model *m = calloc(1, sizeof *m);
    if (!m || !(m->dir = strdup(dir))) {
        free(m);
        return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", dir);
    }
    tm_status s;
    if (tm_gguf_is_file(dir)) s = load_gguf(m, err);
    else if (!(s = load_config(m, err))) s = load_weights(m, err);
    if (s) { tm_model_destroy(m); return s; }
    *out = m;
    return TM_OK;
}

void tm_model_destroy(tm_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_files; i++) {
        tm_safetensors_destroy(m->files[i]);
        free(m->file_names[i]);
    }
    free(m->files);
    free(m->file_names);
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    for (size_t i = 0; i < m->n_qws; i++) tm_qweight_free(m->qws[i]);
    free(m->qws);
    free(m->layers);
    free(m->dir);
    free(m);
}

const tm_model_config *tm_model_config_of(const tm_model *m) { return &m->cfg; }
const tm_tensor *tm_model_embed(const tm_model *m) { return &m->embed; }
const tm_tensor *tm_model_final_norm(const tm_model *m) { return &m->norm; }
const tm_tensor *tm_model_lm_head(const tm_model *m) { return &m->lm_head; }
const char *tm_model_dir(const tm_model *m) { return m->dir; }
int tm_model_n_files(const tm_model *m) { return m->n_files; }

const tm_layer_weights *tm_model_layer(const tm_model *m, int i)
{
    return i >= 0 && i < m->cfg.n_layers ? &m->layers[i] : NULL;
}

int tm_model_is_synthetic(const tm_model *m) { return m && m->synthetic; }

int tm_model_is_quantized(const tm_model *m) { return m && m->cfg.quant.method != TM_QM_NONE; }

int tm_model_lm_head_tied(const tm_model *m) { return m->tied; }

const tm_tensor *tm_model_weight(const tm_model *m, tm_wid id, int layer)
{
    const tm_wspec *s = tm_arch_spec(id);
    if (!s || (tm_arch_is_layer(id) && (layer < 0 || layer >= m->cfg.n_layers))) return NULL;
    return tm_model_slot((tm_model *)m, s, layer);
}

int64_t tm_model_weight_elems(const tm_model *m)
{
    int64_t n = 0;
    for (int id = 0; id < TM_W_COUNT; id++) {
        const tm_wspec *s = tm_arch_spec((tm_wid)id);
        if (id == TM_W_LM_HEAD && m->tied) continue;
        int nl = tm_arch_is_layer(s->id) ? m->cfg.n_layers : 1;
        for (int l = 0; l < nl; l++)
            if (tm_tensor_present(tm_model_slot((tm_model *)m, s, l))) n += tm_arch_elems(&m->cfg, s);
    }
    return n;
}

int64_t tm_model_n_params(const tm_model *m) { return tm_model_config_n_params(&m->cfg); }
