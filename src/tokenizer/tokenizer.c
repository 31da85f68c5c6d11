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
#include "tokenizer/tok_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOK_JSON_MAX ((size_t)1 << 30) /* largest tokenizer.json we read */

/* ---- hashing and maps ---------------------------------------------------- */

uint32_t tok_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static tm_status smap_init(tok_smap *m, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2 + 1) cap *= 2;
    if (cap > ((size_t)1 << 31)) return TM_ERR_NOMEM;
    m->e = malloc(cap * sizeof *m->e);
    if (!m->e) return TM_ERR_NOMEM;
    for (size_t i = 0; i < cap; i++) m->e[i].val = -1;
    m->mask = (uint32_t)(cap - 1);
    return TM_OK;
}

/* Insert; returns the existing value if the key is present (no insert), else -1. */
static int32_t smap_put(const tm_tokenizer *t, tok_smap *m, uint32_t off, uint32_t len, int32_t val)
{
    const char *s = t->arena.data + off;
    uint32_t h = tok_hash(s, len);
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        tok_smap_ent *e = &m->e[i];
        if (e->val < 0) {
            e->hash = h; e->val = val; e->off = off; e->len = len;
            return -1;
        }
        if (e->hash == h && e->len == len && memcmp(t->arena.data + e->off, s, len) == 0) return e->val;
    }
}

int32_t tok_smap_get(const tm_tokenizer *t, const tok_smap *m, const char *s, size_t n)
{
    if (!m->e) return -1;
    uint32_t h = tok_hash(s, n);
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        const tok_smap_ent *e = &m->e[i];
        if (e->val < 0) return -1;
        if (e->hash == h && e->len == n && memcmp(t->arena.data + e->off, s, n) == 0) return e->val;
    }
}

static tm_status umap_init(tok_umap *m, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2 + 1) cap *= 2;
    if (cap > ((size_t)1 << 31)) return TM_ERR_NOMEM;
    m->e = malloc(cap * sizeof *m->e);
    if (!m->e) return TM_ERR_NOMEM;
    for (size_t i = 0; i < cap; i++) m->e[i].key = UINT64_MAX;
    m->mask = cap - 1;
    return TM_OK;
}

static uint64_t umix(uint64_t k)
{
    k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53ULL; k ^= k >> 33;
    return k;
}

/* Insert or overwrite. */
static void umap_put(tok_umap *m, uint64_t key, int32_t a, int32_t b)
{
    for (uint64_t i = umix(key) & m->mask;; i = (i + 1) & m->mask) {
        tok_umap_ent *e = &m->e[i];
        if (e->key == UINT64_MAX || e->key == key) { e->key = key; e->a = a; e->b = b; return; }
    }
}

const tok_umap_ent *tok_umap_get(const tok_umap *m, uint64_t key)
{
    if (!m->e) return NULL;
    for (uint64_t i = umix(key) & m->mask;; i = (i + 1) & m->mask) {
        const tok_umap_ent *e = &m->e[i];
        if (e->key == key) return e;
        if (e->key == UINT64_MAX) return NULL;
    }
}

/* ---- GPT-2 byte-level alphabet ------------------------------------------- */

/* bytes_to_unicode() of GPT-2: printable bytes map to themselves, the other
 * 68 to U+0100.. in byte order. */
static const uint16_t BYTE_CP[256] = {
    256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271,
    272, 273, 274, 275, 276, 277, 278, 279, 280, 281, 282, 283, 284, 285, 286, 287,
    288, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
    64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79,
    80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95,
    96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 289,
    290, 291, 292, 293, 294, 295, 296, 297, 298, 299, 300, 301, 302, 303, 304, 305,
    306, 307, 308, 309, 310, 311, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321,
    322, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 323, 174, 175,
    176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191,
    192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 206, 207,
    208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223,
    224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239,
    240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255,
};

static const uint8_t CP_BYTE[68] = { /* U+0100 + i -> byte */
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 127,
    128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144,
    145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159, 160, 173,
};

uint32_t tok_byte_to_cp(uint8_t b) { return BYTE_CP[b]; }

int tok_cp_to_byte(uint32_t cp)
{
    if (cp < 256) return BYTE_CP[cp] == cp ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    return CP_BYTE[cp - 256];
}

/* ---- load helpers -------------------------------------------------------- */

typedef struct ld {
    tm_tokenizer *t;
    const char *file; /* label for errors */
    tm_err *err;
} ld;

static tm_status arena_add(tm_tokenizer *t, const char *s, size_t n, uint32_t *off)
{
    if (n > UINT32_MAX / 2 || t->arena.len + n + 1 > UINT32_MAX) return TM_ERR_NOMEM;
    *off = (uint32_t)t->arena.len;
    tm_status st = tm_buf_append(&t->arena, s, n);
    if (st) return st;
    return tm_buf_append(&t->arena, "", 1); /* keep every string NUL-terminated */
}

static tm_status nomem(ld *L) { return tm_errf(L->err, TM_ERR_NOMEM, "%s: out of memory", L->file); }

/* Optional boolean field (absent/null -> def). */
static tm_status get_bool(ld *L, json_t *o, const char *key, const char *path, int def, int *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) { *out = def; return TM_OK; }
    if (!json_is_boolean(v)) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.%s: expected a boolean", L->file, path, key);
    *out = json_is_true(v);
    return TM_OK;
}

/* Optional string field; *out points into the JSON (NULL when absent/null). */
static tm_status get_str(ld *L, json_t *o, const char *key, const char *path, const char **out, size_t *len)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (len) *len = 0;
    if (!v || json_is_null(v)) return TM_OK;
    if (!json_is_string(v)) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.%s: expected a string", L->file, path, key);
    *out = json_string_value(v);
    if (len) *len = json_string_length(v);
    return TM_OK;
}

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) { memcpy(p, s, n); p[n] = 0; }
    return p;
}

/* Compile {"Regex": ...} or {"String": ...} (a literal). */
static tm_status compile_pattern(ld *L, json_t *o, const char *path, pcre2_code **out)
{
    json_t *p = json_object_get(o, "pattern");
    if (!json_is_object(p)) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.pattern: expected an object {\"Regex\"|\"String\": ...}", L->file, path);
    json_t *re = json_object_get(p, "Regex"), *str = json_object_get(p, "String");
    json_t *v = re ? re : str;
    if (!json_is_string(v)) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.pattern: expected a string \"Regex\" or \"String\"", L->file, path);
    uint32_t opts = PCRE2_UTF | (re ? PCRE2_UCP : PCRE2_LITERAL); /* LITERAL refuses UCP */
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)json_string_value(v), json_string_length(v), opts, &ec, &eo, NULL);
    if (!c) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.pattern: bad regex at offset %zu: %s", L->file, path, (size_t)eo, (char *)msg);
    }
    pcre2_jit_compile(c, PCRE2_JIT_COMPLETE); /* without JIT pcre2_match interprets */
    *out = c;
    return TM_OK;
}

static tm_status compile_raw(ld *L, const char *pat, const char *path, pcre2_code **out)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    if (!c) return tm_errf(L->err, TM_ERR_INTERNAL, "%s: %s: built-in regex failed to compile", L->file, path);
    pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
    *out = c;
    return TM_OK;
}

static const char *type_of(ld *L, json_t *o, const char *path, tm_status *st)
{
    json_t *ty = json_object_get(o, "type");
    if (!json_is_string(ty)) {
        *st = tm_errf(L->err, TM_ERR_INPUT, "%s: %s.type: expected a string", L->file, path);
        return NULL;
    }
    *st = TM_OK;
    return json_string_value(ty);
}

static tm_status parse_prepend_scheme(ld *L, json_t *o, const char *path, int *out)
{
    const char *s;
    tm_status st = get_str(L, o, "prepend_scheme", path, &s, NULL);
    if (st) return st;
    if (!s) {
        int aps;
        if ((st = get_bool(L, o, "add_prefix_space", path, 1, &aps))) return st;
        *out = aps ? PREPEND_ALWAYS : PREPEND_NEVER;
    } else if (!strcmp(s, "always")) *out = PREPEND_ALWAYS;
    else if (!strcmp(s, "first")) *out = PREPEND_FIRST;
    else if (!strcmp(s, "never")) *out = PREPEND_NEVER;
    else return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.prepend_scheme: unknown value \"%s\"", L->file, path, s);
    return TM_OK;
}

static tm_status parse_replacement(ld *L, json_t *o, const char *path, char *repl, size_t *rlen)
{
    const char *s;
    size_t n;
    tm_status st = get_str(L, o, "replacement", path, &s, &n);
    if (st) return st;
    if (!s) { s = "\xe2\x96\x81"; n = 3; }
    if (n == 0 || n > 4 || !tok_utf8_valid(s, n))
        return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.replacement: expected one character", L->file, path);
    memcpy(repl, s, n);
    repl[n] = 0;
    *rlen = n;
    return TM_OK;
}

/* ---- normalizer ---------------------------------------------------------- */

static tm_status parse_norm(ld *L, json_t *o, const char *path, int depth)
{
    tm_tokenizer *t = L->t;
    if (!o || json_is_null(o)) return TM_OK;
    if (!json_is_object(o)) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: expected an object or null", L->file, path);
    if (depth > 8) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: nested too deeply", L->file, path);
    tm_status st;
    const char *ty = type_of(L, o, path, &st);
    if (!ty) return st;
    if (!strcmp(ty, "Sequence")) {
        json_t *a = json_object_get(o, "normalizers");
        if (!json_is_array(a)) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.normalizers: expected an array", L->file, path);
        for (size_t i = 0; i < json_array_size(a); i++) {
            char p[256];
            snprintf(p, sizeof p, "%s.normalizers[%zu]", path, i);
            if ((st = parse_norm(L, json_array_get(a, i), p, depth + 1))) return st;
        }
        return TM_OK;
    }
    if (t->n_norm >= TOK_MAX_OPS) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: more than %d normalizers", L->file, path, TOK_MAX_OPS);
    tok_norm *n = &t->norm[t->n_norm];
    memset(n, 0, sizeof *n);
    if (!strcmp(ty, "NFC")) n->kind = NORM_NFC;
    else if (!strcmp(ty, "NFD")) n->kind = NORM_NFD;
    else if (!strcmp(ty, "NFKC")) n->kind = NORM_NFKC;
    else if (!strcmp(ty, "NFKD")) n->kind = NORM_NFKD;
    else if (!strcmp(ty, "Lowercase")) n->kind = NORM_LOWERCASE;
    else if (!strcmp(ty, "Replace") || !strcmp(ty, "Prepend")) {
        int rep = !strcmp(ty, "Replace");
        const char *s;
        size_t len;
        if ((st = get_str(L, o, rep ? "content" : "prepend", path, &s, &len))) return st;
        if (!s) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.%s: missing", L->file, path, rep ? "content" : "prepend");
        n->kind = rep ? NORM_REPLACE : NORM_PREPEND;
        if (!(n->content = dupn(s, len))) return nomem(L);
        n->content_len = len;
        t->n_norm++; /* owned from here on */
        if (rep && (st = compile_pattern(L, o, path, &n->re))) return st;
        return TM_OK;
    } else {
        return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.type: normalizer \"%s\" is not supported", L->file, path, ty);
    }
    t->n_norm++;
    return TM_OK;
}

/* ---- pre-tokenizer ------------------------------------------------------- */

static const char GPT2_RE[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static tm_status parse_pretok(ld *L, json_t *o, const char *path, int depth)
{
    tm_tokenizer *t = L->t;
    if (!o || json_is_null(o)) return TM_OK;
    if (!json_is_object(o)) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: expected an object or null", L->file, path);
    if (depth > 8) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: nested too deeply", L->file, path);
    tm_status st;
    const char *ty = type_of(L, o, path, &st);
    if (!ty) return st;
    if (!strcmp(ty, "Sequence")) {
        json_t *a = json_object_get(o, "pretokenizers");
        if (!json_is_array(a)) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.pretokenizers: expected an array", L->file, path);
        for (size_t i = 0; i < json_array_size(a); i++) {
            char p[256];
            snprintf(p, sizeof p, "%s.pretokenizers[%zu]", path, i);
            if ((st = parse_pretok(L, json_array_get(a, i), p, depth + 1))) return st;
        }
        return TM_OK;
    }
    if (t->n_pretok >= TOK_MAX_OPS) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: more than %d pre-tokenizers", L->file, path, TOK_MAX_OPS);
    tok_pretok *p = &t->pretok[t->n_pretok];
    memset(p, 0, sizeof *p);
    if (!strcmp(ty, "Split")) {
        const char *b;
        if ((st = get_str(L, o, "behavior", path, &b, NULL))) return st;
        if (!b) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.behavior: missing", L->file, path);
        if (!strcmp(b, "Removed")) p->behavior = SPLIT_REMOVED;
        else if (!strcmp(b, "Isolated")) p->behavior = SPLIT_ISOLATED;
        else if (!strcmp(b, "MergedWithPrevious")) p->behavior = SPLIT_MERGED_PREV;
        else if (!strcmp(b, "MergedWithNext")) p->behavior = SPLIT_MERGED_NEXT;
        else if (!strcmp(b, "Contiguous")) p->behavior = SPLIT_CONTIGUOUS;
        else return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.behavior: unknown value \"%s\"", L->file, path, b);
        if ((st = get_bool(L, o, "invert", path, 0, &p->invert))) return st;
        p->kind = PT_SPLIT;
        t->n_pretok++;
        return compile_pattern(L, o, path, &p->re);
    } else if (!strcmp(ty, "ByteLevel")) {
        if ((st = get_bool(L, o, "add_prefix_space", path, 1, &p->add_prefix_space))) return st;
        if ((st = get_bool(L, o, "use_regex", path, 1, &p->use_regex))) return st;
        p->kind = PT_BYTELEVEL;
        t->n_pretok++;
        return p->use_regex ? compile_raw(L, GPT2_RE, path, &p->re) : TM_OK;
    } else if (!strcmp(ty, "Metaspace")) {
        if ((st = parse_replacement(L, o, path, p->repl, &p->repl_len))) return st;
        if ((st = parse_prepend_scheme(L, o, path, &p->prepend_scheme))) return st;
        if ((st = get_bool(L, o, "split", path, 1, &p->split))) return st;
        p->kind = PT_METASPACE;
    } else if (!strcmp(ty, "Digits")) {
        int ind;
        if ((st = get_bool(L, o, "individual_digits", path, 0, &ind))) return st;
        p->kind = PT_DIGITS;
        p->behavior = ind ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS;
        t->n_pretok++;
        return compile_raw(L, "\\p{N}", path, &p->re);
    } else {
        return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.type: pre-tokenizer \"%s\" is not supported", L->file, path, ty);
    }
    t->n_pretok++;
    return TM_OK;
}

/* ---- decoder ------------------------------------------------------------- */

static tm_status parse_dec(ld *L, json_t *o, const char *path, int depth)
{
    tm_tokenizer *t = L->t;
    if (!o || json_is_null(o)) return TM_OK;
    if (!json_is_object(o)) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: expected an object or null", L->file, path);
    if (depth > 8) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: nested too deeply", L->file, path);
    t->has_decoder = 1;
    tm_status st;
    const char *ty = type_of(L, o, path, &st);
    if (!ty) return st;
    if (!strcmp(ty, "Sequence")) {
        json_t *a = json_object_get(o, "decoders");
        if (!json_is_array(a)) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.decoders: expected an array", L->file, path);
        for (size_t i = 0; i < json_array_size(a); i++) {
            char p[256];
            snprintf(p, sizeof p, "%s.decoders[%zu]", path, i);
            if ((st = parse_dec(L, json_array_get(a, i), p, depth + 1))) return st;
        }
        return TM_OK;
    }
    if (t->n_dec >= TOK_MAX_OPS) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: more than %d decoders", L->file, path, TOK_MAX_OPS);
    tok_dec *d = &t->dec[t->n_dec];
    memset(d, 0, sizeof *d);
    if (!strcmp(ty, "ByteLevel")) d->kind = DEC_BYTELEVEL;
    else if (!strcmp(ty, "ByteFallback")) { d->kind = DEC_BYTEFALLBACK; t->dec_byte_fallback = 1; }
    else if (!strcmp(ty, "Fuse")) d->kind = DEC_FUSE;
    else if (!strcmp(ty, "Strip")) {
        const char *s;
        size_t n;
        if ((st = get_str(L, o, "content", path, &s, &n))) return st;
        if (!s || n == 0 || n > 4 || !tok_utf8_valid(s, n))
            return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.content: expected one character", L->file, path);
        json_t *a = json_object_get(o, "start"), *b = json_object_get(o, "stop");
        if (!json_is_integer(a) || !json_is_integer(b) || json_integer_value(a) < 0 || json_integer_value(b) < 0 ||
            json_integer_value(a) > 1000000 || json_integer_value(b) > 1000000)
            return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.start/stop: expected small non-negative integers", L->file, path);
        d->kind = DEC_STRIP;
        d->start = (long)json_integer_value(a);
        d->stop = (long)json_integer_value(b);
        if (!(d->content = dupn(s, n))) return nomem(L);
        d->content_len = n;
    } else if (!strcmp(ty, "Replace")) {
        const char *s;
        size_t n;
        if ((st = get_str(L, o, "content", path, &s, &n))) return st;
        if (!s) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.content: missing", L->file, path);
        d->kind = DEC_REPLACE;
        if (!(d->content = dupn(s, n))) return nomem(L);
        d->content_len = n;
        t->n_dec++;
        return compile_pattern(L, o, path, &d->re);
    } else if (!strcmp(ty, "Metaspace")) {
        if ((st = parse_replacement(L, o, path, d->repl, &d->repl_len))) return st;
        if ((st = parse_prepend_scheme(L, o, path, &d->prepend_scheme))) return st;
        d->kind = DEC_METASPACE;
    } else {
        return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.type: decoder \"%s\" is not supported", L->file, path, ty);
    }
    t->n_dec++;
    return TM_OK;
}

/* ---- model + added tokens ------------------------------------------------ */

static tm_status parse_id(ld *L, json_t *v, const char *path, int32_t *out)
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

static tm_status trie_build(ld *L, tok_trie *tr, int normalized)
{
    tm_tokenizer *t = L->t;
    size_t total = 1;
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].normalized == (unsigned)normalized) total += t->added[i].len;
    if (umap_init(&tr->edges, total)) return nomem(L);
    if (!(tr->term = malloc(total * sizeof *tr->term))) return nomem(L);
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
            umap_put(&tr->edges, key, nn, 0);
            node = nn;
        }
        tr->term[node] = (int32_t)i;
        tr->first[s[0] >> 3] |= (uint8_t)(1u << (s[0] & 7));
        tr->any = 1;
    }
    return TM_OK;
}

static tm_status parse_added(ld *L, json_t *arr)
{
    tm_tokenizer *t = L->t;
    if (!arr || json_is_null(arr)) return TM_OK;
    if (!json_is_array(arr)) return tm_errf(L->err, TM_ERR_INPUT, "%s: added_tokens: expected an array", L->file);
    size_t n = json_array_size(arr);
    if (n > TOK_MAX_ID) return tm_errf(L->err, TM_ERR_INPUT, "%s: added_tokens: too many entries", L->file);
    if (n && !(t->added = calloc(n, sizeof *t->added))) return nomem(L);
    if (smap_init(&t->added_map, n)) return nomem(L);
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
        if ((st = get_str(L, o, "content", path, &s, &len))) return st;
        if (!s || len == 0) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.content: expected a non-empty string", L->file, path);
        int sp, ls, rs, sw, nz;
        if ((st = get_bool(L, o, "special", path, 0, &sp)) || (st = get_bool(L, o, "lstrip", path, 0, &ls)) ||
            (st = get_bool(L, o, "rstrip", path, 0, &rs)) || (st = get_bool(L, o, "single_word", path, 0, &sw)) ||
            (st = get_bool(L, o, "normalized", path, !sp, &nz)))
            return st;
        a->special = (unsigned)sp; a->lstrip = (unsigned)ls; a->rstrip = (unsigned)rs;
        a->single_word = (unsigned)sw; a->normalized = (unsigned)nz;
        if (arena_add(t, s, len, &a->off)) return nomem(L);
        a->len = (uint32_t)len;
        t->n_added = i + 1;
        int32_t prev = smap_put(t, &t->added_map, a->off, a->len, (int32_t)i);
        char sh[80];
        if (prev >= 0) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.content: duplicate added token \"%s\"", L->file, path, show(s, len, sh, sizeof sh));
    }
    return TM_OK;
}

static tm_status lookup_tok(ld *L, const char *s, size_t n, const char *path, int32_t *id)
{
    char sh[80];
    *id = tok_smap_get(L->t, &L->t->vocab, s, n);
    if (*id < 0) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: token \"%s\" is not in model.vocab", L->file, path, show(s, n, sh, sizeof sh));
    return TM_OK;
}

static tm_status parse_merges(ld *L, json_t *arr)
{
    tm_tokenizer *t = L->t;
    if (!json_is_array(arr)) return tm_errf(L->err, TM_ERR_INPUT, "%s: model.merges: expected an array", L->file);
    size_t n = json_array_size(arr);
    if (n > TOK_MAX_ID) return tm_errf(L->err, TM_ERR_INPUT, "%s: model.merges: too many entries", L->file);
    if (umap_init(&t->merges, n)) return nomem(L);
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
        if (tm_buf_append(&cat, a, al) || tm_buf_append(&cat, b, bl)) { st = nomem(L); break; }
        if ((st = lookup_tok(L, cat.data, cat.len, path, &ic))) break;
        uint64_t key = ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib;
        if (!tok_umap_get(&t->merges, key)) umap_put(&t->merges, key, (int32_t)i, ic); /* first rank wins */
    }
    tm_buf_free(&cat);
    return st;
}

static tm_status parse_model(ld *L, json_t *m, json_t *added_json)
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
    if ((st = get_str(L, m, "continuing_subword_prefix", "model", &s, &len))) return st;
    if (len) return tm_errf(L->err, TM_ERR_INPUT, "%s: model.continuing_subword_prefix: not supported", L->file);
    if ((st = get_str(L, m, "end_of_word_suffix", "model", &s, &len))) return st;
    if (len) return tm_errf(L->err, TM_ERR_INPUT, "%s: model.end_of_word_suffix: not supported", L->file);
    if ((st = get_bool(L, m, "byte_fallback", "model", 0, &t->byte_fallback)) ||
        (st = get_bool(L, m, "fuse_unk", "model", 0, &t->fuse_unk)) ||
        (st = get_bool(L, m, "ignore_merges", "model", 0, &t->ignore_merges)))
        return st;

    size_t nv = json_object_size(vocab);
    if (nv > TOK_MAX_ID) return tm_errf(L->err, TM_ERR_INPUT, "%s: model.vocab: too many entries", L->file);
    if ((st = parse_added(L, added_json))) return st;
    if (smap_init(&t->vocab, nv)) return nomem(L);
    int32_t *vid = malloc((nv ? nv : 1) * sizeof *vid);
    uint32_t *voff = malloc((nv ? nv : 1) * sizeof *voff), *vlen = malloc((nv ? nv : 1) * sizeof *vlen);
    if (!vid || !voff || !vlen) { free(vid); free(voff); free(vlen); return nomem(L); }
    size_t k = 0;
    int32_t maxid = -1;
    for (void *it = json_object_iter(vocab); it && !st; it = json_object_iter_next(vocab, it), k++) {
        const char *key = json_object_iter_key(it);
        size_t kl = json_object_iter_key_len(it);
        char path[128], sh[80];
        snprintf(path, sizeof path, "model.vocab[\"%s\"]", show(key, kl, sh, sizeof sh));
        if ((st = parse_id(L, json_object_iter_value(it), path, &vid[k]))) break;
        if (arena_add(t, key, kl, &voff[k])) { st = nomem(L); break; }
        vlen[k] = (uint32_t)kl;
        if (vid[k] > maxid) maxid = vid[k];
        smap_put(t, &t->vocab, voff[k], vlen[k], vid[k]);
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
        if (!t->id_off || !t->id_len || !t->id_flags || !t->id_byte) st = nomem(L);
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
    if (st) return st;
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
    t->unk_id = -1;
    if ((st = get_str(L, m, "unk_token", "model", &s, &len))) return st;
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

static tm_status cfg_token(ld *L, json_t *cfg, const char *key, char **out)
{
    json_t *v = json_object_get(cfg, key);
    *out = NULL;
    if (!v || json_is_null(v)) return TM_OK;
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v))
        return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: expected a string or {\"content\": string}", L->file, key);
    if (!(*out = dupn(json_string_value(v), json_string_length(v)))) return nomem(L);
    return TM_OK;
}

static tm_status parse_config(ld *L, const char *json, size_t len)
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
        if (!(t->chat_template = dupn(json_string_value(ct), json_string_length(ct)))) { st = nomem(L); goto out; }
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
        if (pick && !(t->chat_template = dupn(json_string_value(pick), json_string_length(pick)))) { st = nomem(L); goto out; }
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
    ld L = { t, label, err };
    json_error_t je;
    tm_status st = TM_OK;
    json_t *root = json_loadb(json, len, JSON_ALLOW_NUL, &je);
    if (!root) { st = tm_errf(err, TM_ERR_INPUT, "%s:%d: invalid JSON: %s", label, je.line, je.text); goto fail; }
    if (!json_is_object(root)) { st = tm_errf(err, TM_ERR_INPUT, "%s: expected a JSON object", label); goto fail; }
    if ((st = parse_model(&L, json_object_get(root, "model"), json_object_get(root, "added_tokens")))) goto fail;
    if ((st = parse_norm(&L, json_object_get(root, "normalizer"), "normalizer", 0))) goto fail;
    if ((st = parse_pretok(&L, json_object_get(root, "pre_tokenizer"), "pre_tokenizer", 0))) goto fail;
    if ((st = parse_dec(&L, json_object_get(root, "decoder"), "decoder", 0))) goto fail;
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
