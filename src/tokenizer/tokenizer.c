/* tokenizer.c — loading a Hugging Face tokenizer.json (+ tokenizer_config.json)
 * into an immutable tm_tokenizer, and the simple accessors.
 *
 * tokenizer.json is parsed with jansson; fields are type-checked, ids bounds-
 * checked; a bad file fails with TM_ERR_INPUT naming the file and JSON path.
 * Supported: model BPE; normalizers NFC/NFD/NFKC/NFKD, Lowercase, Replace,
 * Prepend; pre-tokenizers Split (5 behaviors), ByteLevel, Metaspace, Digits;
 * decoders ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace; Sequence
 * of each. Anything else is refused by name, never silently mis-tokenized.
 */
#include "model/gguf_hf.h"
#include "tokenizer/tok_load.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOK_JSON_MAX ((size_t)1 << 30) /* largest tokenizer.json we read */

static tm_status arena_add(tm_tokenizer *t, const char *s, size_t n, uint32_t *off)
{
    if (n > UINT32_MAX / 2 || t->arena.len + n + 1 > UINT32_MAX) return TM_ERR_NOMEM;
    *off = (uint32_t)t->arena.len;
    tm_status st = tm_buf_append(&t->arena, s, n);
    if (st) return st;
    return tm_buf_append(&t->arena, "", 1); /* keep every string NUL-terminated */
}

/* ---- model + added tokens ------------------------------------------------ */

static tm_status parse_id(tok_ld *L, json_t *v, const char *path, int32_t *out)
{
    if (!json_is_integer(v)) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: expected an integer id", L->file, path);
    json_int_t x = json_integer_value(v);
    if (x < 0 || x >= TOK_MAX_ID) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: id %lld out of range [0, %d)", L->file, path, (long long)x, TOK_MAX_ID);
    *out = (int32_t)x;
    return TM_OK;
}

/* Token string for error messages, truncated and made printable. */
static const char *show(const char *s, size_t n, char *buf, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 32 || c == 127) j += (size_t)snprintf(buf + j, cap - j, "\\x%02x", c);
        else buf[j++] = (char)c;
    }
    buf[j] = 0;
    return buf;
}

static tm_status trie_build(tok_ld *L, tok_trie *tr, int normalized)
{
    tm_tokenizer *t = L->t;
    size_t total = 1;
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].normalized == (unsigned)normalized) total += t->added[i].len;
    if (tok_umap_init(&tr->edges, total)) return tok_ld_nomem(L);
    if (!(tr->term = malloc(total * sizeof *tr->term))) return tok_ld_nomem(L);
    tr->term[0] = -1;
    tr->n_nodes = 1;
    for (size_t i = 0; i < t->n_added; i++) {
        const tok_added *a = &t->added[i];
        if (a->normalized != (unsigned)normalized) continue;
        const uint8_t *s = (const uint8_t *)t->arena.data + a->off;
        int32_t node = 0;
        for (uint32_t k = 0; k < a->len; k++) {
            uint64_t key = ((uint64_t)node << 8) | s[k];
            const tok_umap_ent *e = tok_umap_get(&tr->edges, key);
            if (e) { node = e->a; continue; }
            int32_t nn = tr->n_nodes++;
            tr->term[nn] = -1;
            tok_umap_put(&tr->edges, key, nn, 0);
            node = nn;
        }
        tr->term[node] = (int32_t)i;
        tr->first[s[0] >> 3] |= (uint8_t)(1u << (s[0] & 7));
        tr->any = 1;
    }
    return TM_OK;
}

static tm_status parse_added(tok_ld *L, json_t *arr)
{
    tm_tokenizer *t = L->t;
    if (!arr || json_is_null(arr)) return TM_OK;
    if (!json_is_array(arr)) return tm_errf(L->err, TM_ERR_INPUT, "%s: added_tokens: expected an array", L->file);
    size_t n = json_array_size(arr);
    if (n > TOK_MAX_ID) return tm_errf(L->err, TM_ERR_INPUT, "%s: added_tokens: too many entries", L->file);
    if (n && !(t->added = calloc(n, sizeof *t->added))) return tok_ld_nomem(L);
    if (tok_smap_init(&t->added_map, n)) return tok_ld_nomem(L);
    tm_status st;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        char path[64];
        snprintf(path, sizeof path, "added_tokens[%zu]", i);
        if (!json_is_object(o)) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: expected an object", L->file, path);
        tok_added *a = &t->added[i];
        char p2[80];
        snprintf(p2, sizeof p2, "%s.id", path);
        if ((st = parse_id(L, json_object_get(o, "id"), p2, &a->id))) return st;
        const char *s;
        size_t len;
        if ((st = tok_ld_get_str(L, o, "content", path, &s, &len))) return st;
        if (!s || len == 0) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.content: expected a non-empty string", L->file, path);
        int sp, ls, rs, sw, nz;
        if ((st = tok_ld_get_bool(L, o, "special", path, 0, &sp)) || (st = tok_ld_get_bool(L, o, "lstrip", path, 0, &ls)) ||
            (st = tok_ld_get_bool(L, o, "rstrip", path, 0, &rs)) || (st = tok_ld_get_bool(L, o, "single_word", path, 0, &sw)) ||
            (st = tok_ld_get_bool(L, o, "normalized", path, !sp, &nz)))
            return st;
        a->special = (unsigned)sp; a->lstrip = (unsigned)ls; a->rstrip = (unsigned)rs;
        a->single_word = (unsigned)sw; a->normalized = (unsigned)nz;
        if (arena_add(t, s, len, &a->off)) return tok_ld_nomem(L);
        a->len = (uint32_t)len;
        t->n_added = i + 1;
        int32_t prev = tok_smap_put(t, &t->added_map, a->off, a->len, (int32_t)i);
        char sh[80];
        if (prev >= 0) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.content: duplicate added token \"%s\"", L->file, path, show(s, len, sh, sizeof sh));
    }
    return TM_OK;
}

static tm_status lookup_tok(tok_ld *L, const char *s, size_t n, const char *path, int32_t *id)
{
    char sh[80];
    *id = tok_smap_get(L->t, &L->t->vocab, s, n);
    if (*id < 0) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: token \"%s\" is not in model.vocab", L->file, path, show(s, n, sh, sizeof sh));
    return TM_OK;
}

static tm_status parse_merges(tok_ld *L, json_t *arr)
{
    tm_tokenizer *t = L->t;
    if (!json_is_array(arr)) return tm_errf(L->err, TM_ERR_INPUT, "%s: model.merges: expected an array", L->file);
    size_t n = json_array_size(arr);
    if (n > TOK_MAX_ID) return tm_errf(L->err, TM_ERR_INPUT, "%s: model.merges: too many entries", L->file);
    if (tok_umap_init(&t->merges, n)) return tok_ld_nomem(L);
    tm_buf cat;
    tm_buf_init(&cat);
    tm_status st = TM_OK;
    for (size_t i = 0; i < n && !st; i++) {
        json_t *m = json_array_get(arr, i);
        char path[64];
        snprintf(path, sizeof path, "model.merges[%zu]", i);
        const char *a, *b;
        size_t al, bl;
        if (json_is_string(m)) {
            a = json_string_value(m);
            size_t len = json_string_length(m);
            const char *sp = memchr(a, ' ', len);
            if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - a))) {
                st = tm_errf(L->err, TM_ERR_INPUT, "%s: %s: expected \"left right\" (two tokens, one space)", L->file, path);
                break;
            }
            al = (size_t)(sp - a);
            b = sp + 1;
            bl = len - al - 1;
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0));
            al = json_string_length(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            bl = json_string_length(json_array_get(m, 1));
        } else {
            st = tm_errf(L->err, TM_ERR_INPUT, "%s: %s: expected \"a b\" or [\"a\", \"b\"]", L->file, path);
            break;
        }
        int32_t ia, ib, ic;
        if ((st = lookup_tok(L, a, al, path, &ia)) || (st = lookup_tok(L, b, bl, path, &ib))) break;
        tm_buf_clear(&cat);
        if (tm_buf_append(&cat, a, al) || tm_buf_append(&cat, b, bl)) { st = tok_ld_nomem(L); break; }
        if ((st = lookup_tok(L, cat.data, cat.len, path, &ic))) break;
        uint64_t key = ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib;
        if (!tok_umap_get(&t->merges, key)) tok_umap_put(&t->merges, key, (int32_t)i, ic); /* first rank wins */
    }
    tm_buf_free(&cat);
    return st;
}

/* model.vocab (nv entries) into t->vocab and the id tables (sized for the
 * largest vocab or added id); an id used twice in the vocab is an error. */
static tm_status read_vocab(tok_ld *L, json_t *vocab, size_t nv)
{
    tm_tokenizer *t = L->t;
    tm_status st = TM_OK;
    if (tok_smap_init(&t->vocab, nv)) return tok_ld_nomem(L);
    int32_t *vid = malloc((nv ? nv : 1) * sizeof *vid);
    uint32_t *voff = malloc((nv ? nv : 1) * sizeof *voff), *vlen = malloc((nv ? nv : 1) * sizeof *vlen);
    if (!vid || !voff || !vlen) { free(vid); free(voff); free(vlen); return tok_ld_nomem(L); }
    size_t k = 0;
    int32_t maxid = -1;
    for (void *it = json_object_iter(vocab); it && !st; it = json_object_iter_next(vocab, it), k++) {
        const char *key = json_object_iter_key(it);
        size_t kl = json_object_iter_key_len(it);
        char path[128], sh[80];
        snprintf(path, sizeof path, "model.vocab[\"%s\"]", show(key, kl, sh, sizeof sh));
        if ((st = parse_id(L, json_object_iter_value(it), path, &vid[k]))) break;
        if (arena_add(t, key, kl, &voff[k])) { st = tok_ld_nomem(L); break; }
        vlen[k] = (uint32_t)kl;
        if (vid[k] > maxid) maxid = vid[k];
        tok_smap_put(t, &t->vocab, voff[k], vlen[k], vid[k]);
    }
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].id > maxid) maxid = t->added[i].id;
    size_t limit = 2 * (nv + t->n_added) + 256;
    if (!st && (size_t)maxid + 1 > limit)
        st = tm_errf(L->err, TM_ERR_INPUT, "%s: model.vocab: id %d out of range for %zu tokens", L->file, maxid, nv + t->n_added);
    if (!st) {
        t->n_ids = maxid + 1;
        size_t ni = (size_t)t->n_ids + 1;
        t->id_off = malloc(ni * sizeof *t->id_off);
        t->id_len = malloc(ni * sizeof *t->id_len);
        t->id_flags = calloc(ni, 1);
        t->id_byte = malloc(ni * sizeof *t->id_byte);
        if (!t->id_off || !t->id_len || !t->id_flags || !t->id_byte) st = tok_ld_nomem(L);
    }
    for (size_t i = 0; !st && i < k; i++) {
        int32_t id = vid[i];
        if (t->id_flags[id] & TOKF_VOCAB) {
            char a[80], b[80];
            st = tm_errf(L->err, TM_ERR_INPUT, "%s: model.vocab[\"%s\"]: id %d already used by \"%s\"", L->file,
                         show(t->arena.data + voff[i], vlen[i], a, sizeof a), id,
                         show(t->arena.data + t->id_off[id], t->id_len[id], b, sizeof b));
            break;
        }
        t->id_flags[id] |= TOKF_VOCAB;
        t->id_off[id] = voff[i];
        t->id_len[id] = vlen[i];
    }
    free(vid); free(voff); free(vlen);
    return st;
}

/* Added tokens into the id tables, unused ids cleared, and the byte-fallback
 * ids (<0xNN>) of the vocab. */
static tm_status index_ids(tok_ld *L)
{
    tm_tokenizer *t = L->t;
    for (size_t i = 0; i < t->n_added; i++) {
        tok_added *a = &t->added[i];
        if (t->id_flags[a->id] & TOKF_ADDED)
            return tm_errf(L->err, TM_ERR_INPUT, "%s: added_tokens[%zu].id: id %d used by two added tokens", L->file, i, a->id);
        t->id_flags[a->id] |= TOKF_ADDED | (a->special ? TOKF_SPECIAL : 0);
        t->id_off[a->id] = a->off;
        t->id_len[a->id] = a->len;
    }
    for (int32_t i = 0; i < t->n_ids; i++) {
        t->id_byte[i] = -1;
        if (!(t->id_flags[i] & (TOKF_VOCAB | TOKF_ADDED))) { t->id_off[i] = 0; t->id_len[i] = 0; }
    }
    for (int b = 0; b < 256; b++) {
        char nm[8];
        snprintf(nm, sizeof nm, "<0x%02X>", b);
        t->byte_id[b] = tok_smap_get(t, &t->vocab, nm, 6);
        if (t->byte_id[b] >= 0) t->id_byte[t->byte_id[b]] = (int16_t)b;
    }
    return TM_OK;
}

static tm_status parse_model(tok_ld *L, json_t *m, json_t *added_json)
{
    tm_tokenizer *t = L->t;
    tm_status st;
    if (!json_is_object(m)) return tm_errf(L->err, TM_ERR_INPUT, "%s: model: missing or not an object", L->file);
    json_t *ty = json_object_get(m, "type");
    if (ty && !json_is_string(ty)) return tm_errf(L->err, TM_ERR_INPUT, "%s: model.type: expected a string", L->file);
    if (ty && strcmp(json_string_value(ty), "BPE"))
        return tm_errf(L->err, TM_ERR_INPUT, "%s: model.type: \"%s\" is not supported (only BPE)", L->file, json_string_value(ty));
    json_t *vocab = json_object_get(m, "vocab");
    if (!json_is_object(vocab)) return tm_errf(L->err, TM_ERR_INPUT, "%s: model.vocab: missing or not an object", L->file);
    const char *s;
    size_t len;
    if ((st = tok_ld_get_str(L, m, "continuing_subword_prefix", "model", &s, &len))) return st;
    if (len) return tm_errf(L->err, TM_ERR_INPUT, "%s: model.continuing_subword_prefix: not supported", L->file);
    if ((st = tok_ld_get_str(L, m, "end_of_word_suffix", "model", &s, &len))) return st;
    if (len) return tm_errf(L->err, TM_ERR_INPUT, "%s: model.end_of_word_suffix: not supported", L->file);
    if ((st = tok_ld_get_bool(L, m, "byte_fallback", "model", 0, &t->byte_fallback)) ||
        (st = tok_ld_get_bool(L, m, "fuse_unk", "model", 0, &t->fuse_unk)) ||
        (st = tok_ld_get_bool(L, m, "ignore_merges", "model", 0, &t->ignore_merges)))
        return st;

    size_t nv = json_object_size(vocab);
    if (nv > TOK_MAX_ID) return tm_errf(L->err, TM_ERR_INPUT, "%s: model.vocab: too many entries", L->file);
    if ((st = parse_added(L, added_json))) return st;
    if ((st = read_vocab(L, vocab, nv)) || (st = index_ids(L))) return st;
    t->unk_id = -1;
    if ((st = tok_ld_get_str(L, m, "unk_token", "model", &s, &len))) return st;
    if (s) t->unk_id = tok_smap_get(t, &t->vocab, s, len);
    json_t *merges = json_object_get(m, "merges");
    if (!merges || json_is_null(merges)) merges = json_array(); /* no merges: characters only */
    else json_incref(merges);
    st = parse_merges(L, merges);
    json_decref(merges);
    if (st) return st;
    if ((st = trie_build(L, &t->trie_raw, 0))) return st;
    return trie_build(L, &t->trie_norm, 1);
}

/* ---- tokenizer_config.json ----------------------------------------------- */

static tm_status cfg_token(tok_ld *L, json_t *cfg, const char *key, char **out)
{
    json_t *v = json_object_get(cfg, key);
    *out = NULL;
    if (!v || json_is_null(v)) return TM_OK;
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v))
        return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: expected a string or {\"content\": string}", L->file, key);
    if (!(*out = tok_dupn(json_string_value(v), json_string_length(v)))) return tok_ld_nomem(L);
    return TM_OK;
}

static tm_status parse_config(tok_ld *L, const char *json, size_t len)
{
    tm_tokenizer *t = L->t;
    json_error_t je;
    json_t *cfg = json_loadb(json, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je); /* model_max_length can be 1e30 */
    if (!cfg) return tm_errf(L->err, TM_ERR_INPUT, "%s:%d: invalid JSON: %s", L->file, je.line, je.text);
    tm_status st = TM_OK;
    if (!json_is_object(cfg)) { st = tm_errf(L->err, TM_ERR_INPUT, "%s: expected a JSON object", L->file); goto out; }
    if ((st = cfg_token(L, cfg, "bos_token", &t->bos_token)) || (st = cfg_token(L, cfg, "eos_token", &t->eos_token))) goto out;
    json_t *ab = json_object_get(cfg, "add_bos_token");
    t->add_bos = -1;
    if (ab && !json_is_null(ab)) {
        if (!json_is_boolean(ab)) { st = tm_errf(L->err, TM_ERR_INPUT, "%s: add_bos_token: expected a boolean", L->file); goto out; }
        t->add_bos = json_is_true(ab);
    }
    json_t *ct = json_object_get(cfg, "chat_template");
    if (json_is_string(ct)) {
        if (!(t->chat_template = tok_dupn(json_string_value(ct), json_string_length(ct)))) { st = tok_ld_nomem(L); goto out; }
    } else if (json_is_array(ct)) {
        json_t *pick = NULL;
        for (size_t i = 0; i < json_array_size(ct); i++) {
            json_t *e = json_array_get(ct, i), *nm = json_object_get(e, "name"), *tp = json_object_get(e, "template");
            if (!json_is_object(e) || !json_is_string(tp)) {
                st = tm_errf(L->err, TM_ERR_INPUT, "%s: chat_template[%zu]: expected {\"name\", \"template\"}", L->file, i);
                goto out;
            }
            if (json_is_string(nm) && !strcmp(json_string_value(nm), "default")) pick = tp;
        }
        if (pick && !(t->chat_template = tok_dupn(json_string_value(pick), json_string_length(pick)))) { st = tok_ld_nomem(L); goto out; }
    } else if (ct && !json_is_null(ct)) {
        st = tm_errf(L->err, TM_ERR_INPUT, "%s: chat_template: expected a string or a list of {name, template}", L->file);
    }
out:
    json_decref(cfg);
    return st;
}

/* ---- public -------------------------------------------------------------- */

static tm_status load_impl(const char *label, const char *cfg_label, const char *json, size_t len,
                           const char *config_json, size_t config_len, tm_tokenizer **out, tm_err *err)
{
    *out = NULL;
    tm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", label);
    tm_buf_init(&t->arena);
    t->bos_id = t->eos_id = -1;
    t->add_bos = -1;
    tok_ld L = { t, label, err };
    json_error_t je;
    tm_status st = TM_OK;
    json_t *root = json_loadb(json, len, JSON_ALLOW_NUL, &je);
    if (!root) { st = tm_errf(err, TM_ERR_INPUT, "%s:%d: invalid JSON: %s", label, je.line, je.text); goto fail; }
    if (!json_is_object(root)) { st = tm_errf(err, TM_ERR_INPUT, "%s: expected a JSON object", label); goto fail; }
    if ((st = parse_model(&L, json_object_get(root, "model"), json_object_get(root, "added_tokens")))) goto fail;
    if ((st = tok_parse_norm(&L, json_object_get(root, "normalizer"), "normalizer", 0))) goto fail;
    if ((st = tok_parse_pretok(&L, json_object_get(root, "pre_tokenizer"), "pre_tokenizer", 0))) goto fail;
    if ((st = tok_parse_dec(&L, json_object_get(root, "decoder"), "decoder", 0))) goto fail;
    json_decref(root);
    root = NULL;
    if (config_json) {
        L.file = cfg_label;
        if ((st = parse_config(&L, config_json, config_len))) goto fail;
    }
    t->bos_id = t->bos_token ? tm_tokenizer_token_id(t, t->bos_token) : -1;
    t->eos_id = t->eos_token ? tm_tokenizer_token_id(t, t->eos_token) : -1;
    if (t->add_bos < 0) t->add_bos = t->bos_id >= 0; /* default: add a BOS when the family has one */
    *out = t;
    return TM_OK;
fail:
    json_decref(root);
    tm_tokenizer_destroy(t);
    return st;
}

tm_status tm_tokenizer_load_json(const char *json, size_t len, const char *config_json, size_t config_len,
                                 tm_tokenizer **out, tm_err *err)
{
    if (!out) return tm_errf(err, TM_ERR_USAGE, "tm_tokenizer_load_json: out is NULL");
    *out = NULL;
    if (!json) return tm_errf(err, TM_ERR_USAGE, "tm_tokenizer_load_json: json is NULL");
    return load_impl("tokenizer.json", "tokenizer_config.json", json, len, config_json, config_len, out, err);
}

/* DIR/chat_template.jinja (where transformers saves the template now) takes
 * precedence over tokenizer_config.json's chat_template. */
static tm_status load_template_file(const char *dir, tm_tokenizer *t, tm_err *err)
{
    char p[4096];
    tm_status st = tm_path_join(p, sizeof p, dir, "chat_template.jinja", err);
    if (st) return st;
    FILE *f = fopen(p, "rb");
    if (!f) return TM_OK;
    fclose(f);
    tm_buf b;
    tm_buf_init(&b);
    if ((st = tm_read_file(p, 4u << 20, &b, err))) return st;
    if (!b.data || strlen(b.data) != b.len) {
        tm_buf_free(&b);
        return tm_errf(err, TM_ERR_INPUT, "%s: empty or contains a NUL byte", p);
    }
    free(t->chat_template);
    t->chat_template = b.data;
    return TM_OK;
}

tm_status tm_tokenizer_load(const char *dir, tm_tokenizer **out, tm_err *err)
{
    if (!out || !dir) return tm_errf(err, TM_ERR_USAGE, "tm_tokenizer_load: NULL argument");
    *out = NULL;
    if (tm_gguf_is_file(dir)) return tm_tokenizer_load_gguf(dir, out, err);
    char p1[4096], p2[4096];
    tm_status st;
    if ((st = tm_path_join(p1, sizeof p1, dir, "tokenizer.json", err))) return st;
    if ((st = tm_path_join(p2, sizeof p2, dir, "tokenizer_config.json", err))) return st;
    tm_buf a, b;
    tm_buf_init(&a);
    tm_buf_init(&b);
    if ((st = tm_read_file(p1, TOK_JSON_MAX, &a, err))) goto out;
    int have_cfg = 0;
    FILE *f = fopen(p2, "rb");
    if (f) {
        fclose(f);
        if ((st = tm_read_file(p2, TOK_JSON_MAX, &b, err))) goto out;
        have_cfg = 1;
    }
    st = load_impl(p1, p2, a.data ? a.data : "", a.len, have_cfg ? (b.data ? b.data : "") : NULL, b.len, out, err);
    if (!st) st = load_template_file(dir, *out, err);
    if (st && *out) {
        tm_tokenizer_destroy(*out);
        *out = NULL;
    }
out:
    tm_buf_free(&a);
    tm_buf_free(&b);
    return st;
}

static void trie_free(tok_trie *tr)
{
    free(tr->edges.e);
    free(tr->term);
}

void tm_tokenizer_destroy(tm_tokenizer *t)
{
    if (!t) return;
    tm_buf_free(&t->arena);
    free(t->id_off); free(t->id_len); free(t->id_flags); free(t->id_byte);
    free(t->vocab.e); free(t->added_map.e); free(t->added);
    trie_free(&t->trie_raw); trie_free(&t->trie_norm);
    free(t->merges.e);
    for (int i = 0; i < t->n_norm; i++) { pcre2_code_free(t->norm[i].re); free(t->norm[i].content); }
    for (int i = 0; i < t->n_pretok; i++) pcre2_code_free(t->pretok[i].re);
    for (int i = 0; i < t->n_dec; i++) { pcre2_code_free(t->dec[i].re); free(t->dec[i].content); }
    free(t->bos_token); free(t->eos_token); free(t->chat_template);
    free(t);
}

int32_t tm_tokenizer_vocab_size(const tm_tokenizer *t) { return t ? t->n_ids : 0; }

int32_t tm_tokenizer_token_id(const tm_tokenizer *t, const char *token)
{
    if (!t || !token) return -1;
    size_t n = strlen(token);
    int32_t a = tok_smap_get(t, &t->added_map, token, n);
    if (a >= 0) return t->added[a].id;
    return tok_smap_get(t, &t->vocab, token, n);
}

const char *tm_tokenizer_token_str(const tm_tokenizer *t, int32_t id)
{
    if (!t || id < 0 || id >= t->n_ids || !(t->id_flags[id] & (TOKF_VOCAB | TOKF_ADDED))) return NULL;
    return t->arena.data + t->id_off[id];
}

int tm_tokenizer_is_special(const tm_tokenizer *t, int32_t id)
{
    return t && id >= 0 && id < t->n_ids && (t->id_flags[id] & TOKF_SPECIAL) != 0;
}

const char *tm_tokenizer_bos_token(const tm_tokenizer *t) { return t ? t->bos_token : NULL; }
const char *tm_tokenizer_eos_token(const tm_tokenizer *t) { return t ? t->eos_token : NULL; }
int32_t tm_tokenizer_bos_id(const tm_tokenizer *t) { return t ? t->bos_id : -1; }
int32_t tm_tokenizer_eos_id(const tm_tokenizer *t) { return t ? t->eos_id : -1; }
int tm_tokenizer_add_bos(const tm_tokenizer *t) { return t ? t->add_bos > 0 : 0; }
const char *tm_tokenizer_chat_template(const tm_tokenizer *t) { return t ? t->chat_template : NULL; }
