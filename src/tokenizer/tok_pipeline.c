/* tok_pipeline.c — loading tokenizer.json's normalizer, pre_tokenizer and
 * decoder sections (each possibly a Sequence) into the flattened op lists of
 * a tm_tokenizer, plus the JSON field helpers the loader shares (tok_load.h).
 */
#include "tokenizer/tok_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tm_status tok_ld_nomem(tok_ld *L) { return tm_errf(L->err, TM_ERR_NOMEM, "%s: out of memory", L->file); }

/* Optional boolean field (absent/null -> def). */
tm_status tok_ld_get_bool(tok_ld *L, json_t *o, const char *key, const char *path, int def, int *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) { *out = def; return TM_OK; }
    if (!json_is_boolean(v)) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.%s: expected a boolean", L->file, path, key);
    *out = json_is_true(v);
    return TM_OK;
}

/* Optional string field; *out points into the JSON (NULL when absent/null). */
tm_status tok_ld_get_str(tok_ld *L, json_t *o, const char *key, const char *path, const char **out, size_t *len)
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

char *tok_dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) { memcpy(p, s, n); p[n] = 0; }
    return p;
}

/* Compile {"Regex": ...} or {"String": ...} (a literal). */
static tm_status compile_pattern(tok_ld *L, json_t *o, const char *path, pcre2_code **out)
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
    /* without JIT pcre2_match interprets; PARTIAL_HARD: tok_encode.c matches in windows */
    pcre2_jit_compile(c, PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD);
    *out = c;
    return TM_OK;
}

static tm_status compile_raw(tok_ld *L, const char *pat, const char *path, pcre2_code **out)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    if (!c) return tm_errf(L->err, TM_ERR_INTERNAL, "%s: %s: built-in regex failed to compile", L->file, path);
    pcre2_jit_compile(c, PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD);
    *out = c;
    return TM_OK;
}

static const char *type_of(tok_ld *L, json_t *o, const char *path, tm_status *st)
{
    json_t *ty = json_object_get(o, "type");
    if (!json_is_string(ty)) {
        *st = tm_errf(L->err, TM_ERR_INPUT, "%s: %s.type: expected a string", L->file, path);
        return NULL;
    }
    *st = TM_OK;
    return json_string_value(ty);
}

static tm_status parse_prepend_scheme(tok_ld *L, json_t *o, const char *path, int *out)
{
    const char *s;
    tm_status st = tok_ld_get_str(L, o, "prepend_scheme", path, &s, NULL);
    if (st) return st;
    if (!s) {
        int aps;
        if ((st = tok_ld_get_bool(L, o, "add_prefix_space", path, 1, &aps))) return st;
        *out = aps ? PREPEND_ALWAYS : PREPEND_NEVER;
    } else if (!strcmp(s, "always")) *out = PREPEND_ALWAYS;
    else if (!strcmp(s, "first")) *out = PREPEND_FIRST;
    else if (!strcmp(s, "never")) *out = PREPEND_NEVER;
    else return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.prepend_scheme: unknown value \"%s\"", L->file, path, s);
    return TM_OK;
}

static tm_status parse_replacement(tok_ld *L, json_t *o, const char *path, char *repl, size_t *rlen)
{
    const char *s;
    size_t n;
    tm_status st = tok_ld_get_str(L, o, "replacement", path, &s, &n);
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

tm_status tok_parse_norm(tok_ld *L, json_t *o, const char *path, int depth)
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
            if ((st = tok_parse_norm(L, json_array_get(a, i), p, depth + 1))) return st;
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
        if ((st = tok_ld_get_str(L, o, rep ? "content" : "prepend", path, &s, &len))) return st;
        if (!s) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.%s: missing", L->file, path, rep ? "content" : "prepend");
        n->kind = rep ? NORM_REPLACE : NORM_PREPEND;
        if (!(n->content = tok_dupn(s, len))) return tok_ld_nomem(L);
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

tm_status tok_parse_pretok(tok_ld *L, json_t *o, const char *path, int depth)
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
            if ((st = tok_parse_pretok(L, json_array_get(a, i), p, depth + 1))) return st;
        }
        return TM_OK;
    }
    if (t->n_pretok >= TOK_MAX_OPS) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s: more than %d pre-tokenizers", L->file, path, TOK_MAX_OPS);
    tok_pretok *p = &t->pretok[t->n_pretok];
    memset(p, 0, sizeof *p);
    if (!strcmp(ty, "Split")) {
        const char *b;
        if ((st = tok_ld_get_str(L, o, "behavior", path, &b, NULL))) return st;
        if (!b) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.behavior: missing", L->file, path);
        if (!strcmp(b, "Removed")) p->behavior = SPLIT_REMOVED;
        else if (!strcmp(b, "Isolated")) p->behavior = SPLIT_ISOLATED;
        else if (!strcmp(b, "MergedWithPrevious")) p->behavior = SPLIT_MERGED_PREV;
        else if (!strcmp(b, "MergedWithNext")) p->behavior = SPLIT_MERGED_NEXT;
        else if (!strcmp(b, "Contiguous")) p->behavior = SPLIT_CONTIGUOUS;
        else return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.behavior: unknown value \"%s\"", L->file, path, b);
        if ((st = tok_ld_get_bool(L, o, "invert", path, 0, &p->invert))) return st;
        p->kind = PT_SPLIT;
        t->n_pretok++;
        return compile_pattern(L, o, path, &p->re);
    } else if (!strcmp(ty, "ByteLevel")) {
        if ((st = tok_ld_get_bool(L, o, "add_prefix_space", path, 1, &p->add_prefix_space))) return st;
        if ((st = tok_ld_get_bool(L, o, "use_regex", path, 1, &p->use_regex))) return st;
        p->kind = PT_BYTELEVEL;
        t->n_pretok++;
        return p->use_regex ? compile_raw(L, GPT2_RE, path, &p->re) : TM_OK;
    } else if (!strcmp(ty, "Metaspace")) {
        if ((st = parse_replacement(L, o, path, p->repl, &p->repl_len))) return st;
        if ((st = parse_prepend_scheme(L, o, path, &p->prepend_scheme))) return st;
        if ((st = tok_ld_get_bool(L, o, "split", path, 1, &p->split))) return st;
        p->kind = PT_METASPACE;
    } else if (!strcmp(ty, "Digits")) {
        int ind;
        if ((st = tok_ld_get_bool(L, o, "individual_digits", path, 0, &ind))) return st;
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

tm_status tok_parse_dec(tok_ld *L, json_t *o, const char *path, int depth)
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
            if ((st = tok_parse_dec(L, json_array_get(a, i), p, depth + 1))) return st;
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
        if ((st = tok_ld_get_str(L, o, "content", path, &s, &n))) return st;
        if (!s || n == 0 || n > 4 || !tok_utf8_valid(s, n))
            return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.content: expected one character", L->file, path);
        json_t *a = json_object_get(o, "start"), *b = json_object_get(o, "stop");
        if (!json_is_integer(a) || !json_is_integer(b) || json_integer_value(a) < 0 || json_integer_value(b) < 0 ||
            json_integer_value(a) > 1000000 || json_integer_value(b) > 1000000)
            return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.start/stop: expected small non-negative integers", L->file, path);
        d->kind = DEC_STRIP;
        d->start = (long)json_integer_value(a);
        d->stop = (long)json_integer_value(b);
        if (!(d->content = tok_dupn(s, n))) return tok_ld_nomem(L);
        d->content_len = n;
    } else if (!strcmp(ty, "Replace")) {
        const char *s;
        size_t n;
        if ((st = tok_ld_get_str(L, o, "content", path, &s, &n))) return st;
        if (!s) return tm_errf(L->err, TM_ERR_INPUT, "%s: %s.content: missing", L->file, path);
        d->kind = DEC_REPLACE;
        if (!(d->content = tok_dupn(s, n))) return tok_ld_nomem(L);
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
