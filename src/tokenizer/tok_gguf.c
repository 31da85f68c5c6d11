/* tok_gguf.c — a GGUF file's tokenizer (tokenizer.ggml.*) as the Hugging Face
 * tokenizer.json + tokenizer_config.json that tokenizer.c loads.
 *
 * Read from the file:
 *   tokenizer.ggml.model   "gpt2" (byte-level BPE) or "llama" (SentencePiece
 *                          BPE with byte fallback); others refused by name
 *   tokenizer.ggml.pre     gpt2 only: the pre-tokenizer, by llama.cpp's names —
 *                          llama-bpe/llama3/llama-v3, qwen2/deepseek-r1-qwen,
 *                          deepseek-v3, gpt-2/default; others refused by name
 *   tokenizer.ggml.tokens / token_type (1 normal, 2 unknown, 3 control,
 *                          4 user-defined, 5 unused, 6 byte) / merges ("a b")
 *                          / scores (llama: merges are rebuilt from them as
 *                          transformers' SentencePiece converter does: every
 *                          split of a piece into two pieces, ordered by the
 *                          piece's score, high first, then by ids)
 *   tokenizer.ggml.{bos,eos,unknown}_token_id, add_bos_token (default: yes for
 *                          llama, no for gpt2), add_space_prefix (llama,
 *                          default yes: "▁" prepended as Mistral/Llama 2 do;
 *                          no: Gemma's layout), tokenizer.chat_template.
 * Control and user-defined tokens become added tokens (control ones special),
 * matched in the raw text before normalisation as llama.cpp does (its
 * converter stores a SentencePiece user-defined piece such as "▁▁" with real
 * spaces, "  ").
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "model/gguf.h"
#include "model/gguf_hf.h"
#include "tokenizer/tokenizer.h"

#define RX_LLAMA3 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_QWEN2 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_DS3_CJK "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+"
#define RX_DS3_WORDS "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

typedef struct src {
    const tm_gguf *g;
    const tm_gguf_value *tokens, *types, *scores, *merges;
    const char *what;
    tm_err *err;
} src;

static json_t *split(const char *rx)
{
    return json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex", rx, "behavior", "Isolated",
                     "invert", 0);
}

static json_t *byte_level(int use_regex)
{
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 0,
                     "use_regex", use_regex);
}

/* gpt2-style: the pre-tokenizer llama.cpp names in tokenizer.ggml.pre. */
static tm_status gpt2_pre(src *S, json_t *root, int *ignore_merges)
{
    tm_gguf_str pre = { "default", 7 };
    tm_status s = tm_gguf_get_str(S->g, "tokenizer.ggml.pre", &pre, S->err);
    if (s && s != TM_ERR_NOTFOUND) return s;
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(pre.len < 63 ? pre.len : 63), pre.p);
    json_t *pt = NULL;
    *ignore_merges = 0;
    if (!strcmp(name, "llama-bpe") || !strcmp(name, "llama3") || !strcmp(name, "llama-v3")) {
        pt = json_pack("{s:s, s:[o,o]}", "type", "Sequence", "pretokenizers", split(RX_LLAMA3), byte_level(0));
        *ignore_merges = 1;
    } else if (!strcmp(name, "qwen2") || !strcmp(name, "deepseek-r1-qwen")) {
        pt = json_pack("{s:s, s:[o,o]}", "type", "Sequence", "pretokenizers", split(RX_QWEN2), byte_level(0));
        json_object_set_new(root, "normalizer", json_pack("{s:s}", "type", "NFC"));
    } else if (!strcmp(name, "deepseek-v3")) {
        pt = json_pack("{s:s, s:[o,o,o,o]}", "type", "Sequence", "pretokenizers", split("\\p{N}{1,3}"),
                       split(RX_DS3_CJK), split(RX_DS3_WORDS), byte_level(0));
    } else if (!strcmp(name, "gpt-2") || !strcmp(name, "default") || !strcmp(name, "gpt2")) {
        pt = byte_level(1);
    } else {
        return tm_errf(S->err, TM_ERR_INPUT, "%s: tokenizer.ggml.pre '%s' is not supported (llama-bpe, qwen2, "
                       "deepseek-v3, gpt-2, default)", S->what, name);
    }
    if (!pt || json_object_set_new(root, "pre_tokenizer", pt) ||
        json_object_set_new(root, "decoder", byte_level(1)))
        return tm_errf(S->err, TM_ERR_NOMEM, "%s: out of memory", S->what);
    return TM_OK;
}

typedef struct cand { float score; int32_t id, l, r; } cand;

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    if (x->l != y->l) return x->l < y->l ? -1 : 1;
    return (x->r > y->r) - (x->r < y->r);
}

/* SentencePiece: merges rebuilt from scores (see the file comment). */
static tm_status spm_merges(src *S, json_t *vocab, json_t *merges)
{
    uint64_t n = S->tokens->arr_len;
    size_t cap = 1024, nc = 0;
    cand *c = malloc(cap * sizeof *c);
    if (!c) return tm_errf(S->err, TM_ERR_NOMEM, "%s: out of memory", S->what);
    for (uint64_t i = 0; i < n; i++) {
        if (tm_gguf_arr_int(S->types, i) != TT_NORMAL) continue;
        tm_gguf_str t = tm_gguf_arr_str(S->tokens, i);
        for (uint64_t k = 1; k < t.len; k++) {
            if (((unsigned char)t.p[k] & 0xC0) == 0x80) continue;   /* split at characters */
            json_t *l = json_object_getn(vocab, t.p, k), *r = json_object_getn(vocab, t.p + k, t.len - k);
            if (!l || !r) continue;
            if (nc == cap) {
                cand *nc2 = realloc(c, 2 * cap * sizeof *c);
                if (!nc2) { free(c); return tm_errf(S->err, TM_ERR_NOMEM, "%s: out of memory", S->what); }
                c = nc2;
                cap *= 2;
            }
            c[nc++] = (cand){ (float)tm_gguf_arr_float(S->scores, i), (int32_t)i,
                              (int32_t)json_integer_value(l), (int32_t)json_integer_value(r) };
        }
    }
    qsort(c, nc, sizeof *c, cand_cmp);
    tm_status s = TM_OK;
    for (size_t i = 0; !s && i < nc; i++) {
        tm_gguf_str a = tm_gguf_arr_str(S->tokens, (uint64_t)c[i].l), b = tm_gguf_arr_str(S->tokens, (uint64_t)c[i].r);
        json_t *pair = json_pack("[s%, s%]", a.p, (size_t)a.len, b.p, (size_t)b.len);
        if (!pair || json_array_append_new(merges, pair)) s = tm_errf(S->err, TM_ERR_NOMEM, "%s: out of memory", S->what);
    }
    free(c);
    return s;
}

static tm_status gpt2_merges(src *S, json_t *merges)
{
    if (!S->merges) return TM_OK;
    for (uint64_t i = 0; i < S->merges->arr_len; i++) {
        tm_gguf_str m = tm_gguf_arr_str(S->merges, i);
        const char *sp = memchr(m.p, ' ', m.len);
        if (!sp || sp == m.p || sp + 1 == m.p + m.len)
            return tm_errf(S->err, TM_ERR_INPUT, "%s: tokenizer.ggml.merges[%llu]: expected \"left right\"", S->what,
                           (unsigned long long)i);
        json_t *pair = json_pack("[s%, s%]", m.p, (size_t)(sp - m.p), sp + 1, (size_t)(m.p + m.len - sp - 1));
        if (!pair || json_array_append_new(merges, pair))
            return tm_errf(S->err, TM_ERR_NOMEM, "%s: out of memory", S->what);
    }
    return TM_OK;
}

/* vocab (normal, byte, unknown tokens) and added_tokens (control, user-defined). */
static tm_status vocab_and_added(src *S, json_t *vocab, json_t *added)
{
    for (uint64_t i = 0; i < S->tokens->arr_len; i++) {
        tm_gguf_str t = tm_gguf_arr_str(S->tokens, i);
        int64_t ty = S->types ? tm_gguf_arr_int(S->types, i) : TT_NORMAL;
        if (memchr(t.p, 0, t.len))
            return tm_errf(S->err, TM_ERR_INPUT, "%s: tokenizer.ggml.tokens[%llu] has a NUL byte", S->what,
                           (unsigned long long)i);
        json_t *e = NULL;
        if (ty == TT_CONTROL || ty == TT_USER)
            e = json_pack("{s:I, s:s%, s:b, s:b, s:b, s:b, s:b}", "id", (json_int_t)i, "content", t.p, (size_t)t.len,
                          "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special",
                          ty == TT_CONTROL);
        if (e ? json_array_append_new(added, e) : 0) return tm_errf(S->err, TM_ERR_NOMEM, "%s: out of memory", S->what);
        if (e || ty == TT_UNUSED) continue;
        if (json_object_getn(vocab, t.p, t.len)) continue;        /* first id wins, as llama.cpp's map does */
        if (json_object_setn_new(vocab, t.p, t.len, json_integer((json_int_t)i)))
            return tm_errf(S->err, TM_ERR_NOMEM, "%s: out of memory", S->what);
    }
    return TM_OK;
}

static tm_status spm_layout(src *S, json_t *root, json_t *model)
{
    int prefix = 1;
    tm_err tmp;
    if (tm_gguf_get_bool(S->g, "tokenizer.ggml.add_space_prefix", &prefix, &tmp) == TM_ERR_INPUT)
        return tm_errf(S->err, TM_ERR_INPUT, "%s: %s", S->what, tmp.msg);
    json_t *repl = json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", "String", " ", "content", "\xe2\x96\x81");
    json_t *norm = prefix ? json_pack("{s:s, s:[{s:s, s:s}, o]}", "type", "Sequence", "normalizers", "type", "Prepend",
                                      "prepend", "\xe2\x96\x81", repl)
                          : repl;
    json_t *dec = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}]}", "type", "Sequence", "decoders", "type",
                            "Replace", "pattern", "String", "\xe2\x96\x81", "content", " ", "type", "ByteFallback",
                            "type", "Fuse");
    if (dec && prefix)
        json_array_append_new(json_object_get(dec, "decoders"),
                              json_pack("{s:s, s:s, s:i, s:i}", "type", "Strip", "content", " ", "start", 1, "stop", 0));
    int64_t unk = -1;
    if (tm_gguf_get_int(S->g, "tokenizer.ggml.unknown_token_id", &unk, &tmp) == TM_OK && unk >= 0 &&
        (uint64_t)unk < S->tokens->arr_len) {
        tm_gguf_str u = tm_gguf_arr_str(S->tokens, (uint64_t)unk);
        json_object_set_new(model, "unk_token", json_stringn(u.p, u.len));
    }
    if (!norm || !dec || json_object_set_new(root, "normalizer", norm) || json_object_set_new(root, "decoder", dec) ||
        json_object_set_new(model, "byte_fallback", json_true()) || json_object_set_new(model, "fuse_unk", json_true()))
        return tm_errf(S->err, TM_ERR_NOMEM, "%s: out of memory", S->what);
    return TM_OK;
}

static tm_status build_tokenizer_json(src *S, int spm, json_t **out)
{
    json_t *root = json_object(), *model = json_object(), *vocab = json_object(), *merges = json_array(),
           *added = json_array();
    tm_status s = TM_OK;
    if (!root || !model || !vocab || !merges || !added) s = tm_errf(S->err, TM_ERR_NOMEM, "%s: out of memory", S->what);
    if (!s) s = vocab_and_added(S, vocab, added);
    int ignore_merges = 0;
    if (!s) s = spm ? spm_merges(S, vocab, merges) : gpt2_merges(S, merges);
    if (!s) s = spm ? spm_layout(S, root, model) : gpt2_pre(S, root, &ignore_merges);
    if (!s) {
        json_object_set_new(model, "type", json_string("BPE"));
        json_object_set_new(model, "ignore_merges", json_boolean(ignore_merges));
        json_object_set_new(model, "vocab", vocab);
        json_object_set_new(model, "merges", merges);
        json_object_set_new(root, "model", model);
        json_object_set_new(root, "added_tokens", added);
        *out = root;
        return TM_OK;
    }
    json_decref(vocab);
    json_decref(merges);
    json_decref(added);
    json_decref(model);
    json_decref(root);
    return s;
}

static tm_status build_config_json(src *S, int spm, json_t **out)
{
    json_t *c = json_object();
    if (!c) return tm_errf(S->err, TM_ERR_NOMEM, "%s: out of memory", S->what);
    tm_err tmp;
    static const char *const ids[][2] = { { "tokenizer.ggml.bos_token_id", "bos_token" },
                                          { "tokenizer.ggml.eos_token_id", "eos_token" } };
    for (int k = 0; k < 2; k++) {
        int64_t id;
        if (tm_gguf_get_int(S->g, ids[k][0], &id, &tmp) || id < 0 || (uint64_t)id >= S->tokens->arr_len) continue;
        tm_gguf_str t = tm_gguf_arr_str(S->tokens, (uint64_t)id);
        json_object_set_new(c, ids[k][1], json_stringn(t.p, t.len));
    }
    int add_bos = spm;
    if (tm_gguf_get_bool(S->g, "tokenizer.ggml.add_bos_token", &add_bos, &tmp) == TM_ERR_INPUT) {
        json_decref(c);
        return tm_errf(S->err, TM_ERR_INPUT, "%s", tmp.msg);
    }
    json_object_set_new(c, "add_bos_token", json_boolean(add_bos));
    tm_gguf_str ct;
    if (!tm_gguf_get_str(S->g, "tokenizer.chat_template", &ct, &tmp))
        json_object_set_new(c, "chat_template", json_stringn(ct.p, ct.len));
    *out = c;
    return TM_OK;
}

static tm_status load_from(const tm_gguf *g, tm_tokenizer **out, tm_err *err)
{
    src S = { .g = g, .what = tm_gguf_path(g), .err = err };
    tm_gguf_str model;
    tm_status s = tm_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (s) return s;
    int spm = model.len == 5 && !memcmp(model.p, "llama", 5);
    if (!spm && !(model.len == 4 && !memcmp(model.p, "gpt2", 4)))
        return tm_errf(err, TM_ERR_INPUT, "%s: tokenizer.ggml.model '%.*s' is not supported (gpt2, llama)", S.what,
                       (int)(model.len > 32 ? 32 : model.len), model.p);
    S.tokens = tm_gguf_get(g, "tokenizer.ggml.tokens");
    S.types = tm_gguf_get(g, "tokenizer.ggml.token_type");
    S.scores = tm_gguf_get(g, "tokenizer.ggml.scores");
    S.merges = tm_gguf_get(g, "tokenizer.ggml.merges");
    if (!S.tokens || S.tokens->type != TM_GGUF_ARRAY || S.tokens->arr_type != TM_GGUF_STRING || !S.tokens->arr_len)
        return tm_errf(err, TM_ERR_INPUT, "%s: tokenizer.ggml.tokens: missing or not a list of strings", S.what);
    if (S.types && (S.types->type != TM_GGUF_ARRAY || S.types->arr_len != S.tokens->arr_len ||
                    S.types->arr_type == TM_GGUF_STRING))
        return tm_errf(err, TM_ERR_INPUT, "%s: tokenizer.ggml.token_type: not one integer per token", S.what);
    if (spm && (!S.scores || S.scores->type != TM_GGUF_ARRAY || S.scores->arr_len != S.tokens->arr_len ||
                S.scores->arr_type == TM_GGUF_STRING))
        return tm_errf(err, TM_ERR_INPUT, "%s: tokenizer.ggml.scores: missing or not one number per token", S.what);
    if (!spm && S.merges && (S.merges->type != TM_GGUF_ARRAY || S.merges->arr_type != TM_GGUF_STRING))
        return tm_errf(err, TM_ERR_INPUT, "%s: tokenizer.ggml.merges: not a list of strings", S.what);
    json_t *tj = NULL, *cj = NULL;
    s = build_tokenizer_json(&S, spm, &tj);
    if (!s) s = build_config_json(&S, spm, &cj);
    char *a = s ? NULL : json_dumps(tj, JSON_COMPACT), *b = s ? NULL : json_dumps(cj, JSON_COMPACT);
    json_decref(tj);
    json_decref(cj);
    if (!s && (!a || !b)) s = tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", S.what);
    if (!s) s = tm_tokenizer_load_json(a, strlen(a), b, strlen(b), out, err);
    free(a);
    free(b);
    return s;
}

tm_status tm_tokenizer_load_gguf(const char *path, tm_tokenizer **out, tm_err *err)
{
    *out = NULL;
    tm_gguf *g = NULL;
    tm_status s = tm_gguf_open(path, &g, err);
    if (!s) s = load_from(g, out, err);
    tm_gguf_destroy(g);
    return s;
}
