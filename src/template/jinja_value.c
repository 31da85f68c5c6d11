/* jinja_value.c — the Jinja interpreter's values: arena, strings, Python's
 * truthiness / equality / ordering, str() / repr() / json.dumps() text, and
 * values from jansson JSON (see jinja_int.h). */
#include "template/jinja_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */

struct jchunk {
    struct jchunk *next;
    size_t used, size;
    _Alignas(16) unsigned char mem[];
};

#define JA_CHUNK (64 * 1024)

void *ja_alloc(jarena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (n > a->cap || a->used > a->cap - n) return NULL;
    struct jchunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t sz = n > JA_CHUNK / 4 ? n : JA_CHUNK;
        c = malloc(sizeof *c + sz);
        if (!c) return NULL;
        c->used = 0;
        c->size = sz;
        if (sz == n && a->head) { /* a big block: keep filling the current chunk */
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->mem + c->used;
    c->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

void ja_free(jarena *a)
{
    struct jchunk *c = a->head;
    while (c) {
        struct jchunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->used = 0;
}

/* ---- strings, lists, dicts ---- */

const jstr *jstr_new(jarena *a, const char *s, size_t n)
{
    if (n > SIZE_MAX / 2) return NULL;
    jstr *r = ja_alloc(a, sizeof *r + n + 1);
    if (!r) return NULL;
    r->n = n;
    if (n) memcpy(r->s, s, n);
    r->s[n] = 0;
    return r;
}

const jstr *jstr_c(jarena *a, const char *s) { return jstr_new(a, s, strlen(s)); }

jlist *jlist_new(jarena *a, size_t n)
{
    if (n > SIZE_MAX / sizeof(jv) / 2) return NULL;
    jlist *l = ja_alloc(a, sizeof *l);
    if (!l) return NULL;
    l->n = n;
    if (n && !(l->v = ja_alloc(a, n * sizeof(jv)))) return NULL;
    return l;
}

jdict *jdict_new(jarena *a, size_t cap)
{
    jdict *d = ja_alloc(a, sizeof *d);
    if (!d) return NULL;
    if (cap < 4) cap = 4;
    if (cap > SIZE_MAX / sizeof(jv) / 2) return NULL;
    d->cap = cap;
    d->k = ja_alloc(a, cap * sizeof *d->k);
    d->v = ja_alloc(a, cap * sizeof *d->v);
    return d->k && d->v ? d : NULL;
}

jv *jdict_get(const jdict *d, const char *k, size_t n)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i]->n == n && !memcmp(d->k[i]->s, k, n)) return &d->v[i];
    return NULL;
}

int jdict_set(jarena *a, jdict *d, const jstr *k, jv v)
{
    jv *p = jdict_get(d, k->s, k->n);
    if (p) { *p = v; return 0; }
    if (d->n == d->cap) { /* the old arrays stay in the arena until the render ends */
        size_t cap = d->cap * 2;
        const jstr **nk = ja_alloc(a, cap * sizeof *nk);
        jv *nv = ja_alloc(a, cap * sizeof *nv);
        if (!nk || !nv) return -1;
        memcpy(nk, d->k, d->n * sizeof *nk);
        memcpy(nv, d->v, d->n * sizeof *nv);
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = k;
    d->v[d->n++] = v;
    return 0;
}

/* ---- UTF-8 ---- */

size_t ju8_dec(const unsigned char *p, size_t n, uint32_t *cp)
{
    if (n == 0) return 0;
    if (p[0] < 0x80) { *cp = p[0]; return 1; }
    size_t len = (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3 : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || len > n) { *cp = p[0]; return 1; } /* a stray byte counts as one character */
    uint32_t c = p[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) { *cp = p[0]; return 1; }
        c = (c << 6) | (p[i] & 0x3f);
    }
    *cp = c;
    return len;
}

size_t ju8_len(const char *s, size_t n)
{
    size_t k = 0;
    uint32_t c;
    for (size_t i = 0; i < n; k++) i += ju8_dec((const unsigned char *)s + i, n - i, &c);
    return k;
}

size_t ju8_off(const char *s, size_t n, size_t idx)
{
    size_t i = 0;
    uint32_t c;
    while (idx-- && i < n) i += ju8_dec((const unsigned char *)s + i, n - i, &c);
    return i;
}

/* Python str.isspace() */
int ju8_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
           c == 0x3000;
}

/* ---- Python semantics ---- */

int jv_truthy(jv v)
{
    switch (v.t) {
    case JV_UNDEF: case JV_NONE: return 0;
    case JV_BOOL: case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s->n != 0;
    case JV_LIST: return v.u.l->n != 0;
    case JV_DICT: return v.u.d->n != 0;
    default: return 1;
    }
}

const char *jv_type_name(jv v)
{
    static const char *const names[] = {"Undefined", "NoneType", "bool", "int", "float", "str", "list", "dict",
                                        "Namespace", "LoopContext", "Macro", "function", "method"};
    return names[v.t];
}

static int is_num(jv v) { return v.t == JV_BOOL || v.t == JV_INT || v.t == JV_FLOAT; }
static double num(jv v) { return v.t == JV_FLOAT ? v.u.f : (double)v.u.i; }

/* Values nested deeper than JV_MAX_DEPTH (a template can build them in a
 * loop) compare as unequal / unordered instead of exhausting the stack. */
static int eq_depth(jv a, jv b, int depth)
{
    if (depth > JV_MAX_DEPTH) return 0;
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) return a.u.i == b.u.i;
        return num(a) == num(b);
    }
    if (a.t != b.t) return 0;
    switch (a.t) {
    case JV_UNDEF: case JV_NONE: return 1;
    case JV_STR: return a.u.s->n == b.u.s->n && !memcmp(a.u.s->s, b.u.s->s, a.u.s->n);
    case JV_LIST:
        if (a.u.l->n != b.u.l->n) return 0;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!eq_depth(a.u.l->v[i], b.u.l->v[i], depth + 1)) return 0;
        return 1;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n) return 0;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv *o = jdict_get(b.u.d, a.u.d->k[i]->s, a.u.d->k[i]->n);
            if (!o || !eq_depth(a.u.d->v[i], *o, depth + 1)) return 0;
        }
        return 1;
    case JV_NS: return a.u.d == b.u.d;
    case JV_FUNC: return a.u.i == b.u.i;
    case JV_MACRO: return a.u.m == b.u.m;
    case JV_LOOP: return a.u.loop == b.u.loop;
    default: return 0;
    }
}

int jv_equal(jv a, jv b) { return eq_depth(a, b, 0); }

static int cmp_depth(jv a, jv b, int *cmp, int depth)
{
    if (depth > JV_MAX_DEPTH) return -1;
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) *cmp = (a.u.i > b.u.i) - (a.u.i < b.u.i);
        else *cmp = (num(a) > num(b)) - (num(a) < num(b));
        return 0;
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        size_t n = a.u.s->n < b.u.s->n ? a.u.s->n : b.u.s->n;
        int c = memcmp(a.u.s->s, b.u.s->s, n);
        *cmp = c ? (c > 0) - (c < 0) : (a.u.s->n > b.u.s->n) - (a.u.s->n < b.u.s->n);
        return 0;
    }
    if (a.t == JV_LIST && b.t == JV_LIST) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (eq_depth(a.u.l->v[i], b.u.l->v[i], depth + 1)) continue;
            return cmp_depth(a.u.l->v[i], b.u.l->v[i], cmp, depth + 1);
        }
        *cmp = (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
        return 0;
    }
    return -1;
}

int jv_compare(jv a, jv b, int *cmp) { return cmp_depth(a, b, cmp, 0); }

/* ---- text forms ---- */

/* Python float repr: the shortest digits that round-trip; fixed notation for
 * decimal exponents in (-4, 16], else d.ddde+XX. */
static int put_float(tm_buf *b, double f, int json)
{
    if (isnan(f)) return tm_buf_puts(b, json ? "NaN" : "nan") ? -1 : 0;
    if (isinf(f)) return tm_buf_puts(b, f > 0 ? (json ? "Infinity" : "inf") : (json ? "-Infinity" : "-inf")) ? -1 : 0;
    char e[40];
    for (int p = 0; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p, f);
        if (strtod(e, NULL) == f) break;
    }
    char digits[24];
    size_t nd = 0;
    const char *q = e;
    int neg = *q == '-';
    if (neg) q++;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9' && nd < sizeof digits - 1) digits[nd++] = *q;
    digits[nd] = 0;
    int exp10 = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') digits[--nd] = 0;
    int decpt = exp10 + 1;
    char out[64];
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -decpt; i++) out[o++] = '0';
            for (size_t i = 0; i < nd; i++) out[o++] = digits[i];
        } else if ((size_t)decpt >= nd) {
            for (size_t i = 0; i < nd; i++) out[o++] = digits[i];
            for (size_t i = nd; i < (size_t)decpt; i++) out[o++] = '0';
            out[o++] = '.';
            out[o++] = '0';
        } else {
            for (size_t i = 0; i < nd; i++) {
                if (i == (size_t)decpt) out[o++] = '.';
                out[o++] = digits[i];
            }
        }
        out[o] = 0;
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (size_t i = 1; i < nd; i++) out[o++] = digits[i];
        }
        snprintf(out + o, sizeof out - o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    }
    return tm_buf_puts(b, out) ? -1 : 0;
}

static int printable(uint32_t c)
{
    if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad) return 0;
    if (c == 0x1680 || (c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) ||
        (c >= 0x205f && c <= 0x2064) || c == 0x3000 || c == 0xfeff)
        return 0;
    return 1;
}

static int repr_str(tm_buf *b, const jstr *s)
{
    char quote = memchr(s->s, '\'', s->n) && !memchr(s->s, '"', s->n) ? '"' : '\'';
    if (tm_buf_append(b, &quote, 1)) return -1;
    const unsigned char *p = (const unsigned char *)s->s;
    for (size_t i = 0; i < s->n;) {
        uint32_t c;
        size_t l = ju8_dec(p + i, s->n - i, &c);
        char tmp[16];
        const char *t = NULL;
        if (c == '\\') t = "\\\\";
        else if (c == (uint32_t)quote) t = quote == '"' ? "\\\"" : "\\'";
        else if (c == '\n') t = "\\n";
        else if (c == '\r') t = "\\r";
        else if (c == '\t') t = "\\t";
        else if (!printable(c)) {
            snprintf(tmp, sizeof tmp, c < 0x100 ? "\\x%02x" : "\\u%04x", (unsigned)c);
            t = tmp;
        }
        if (t ? tm_buf_puts(b, t) : tm_buf_append(b, p + i, l)) return -1;
        i += l;
    }
    return tm_buf_append(b, &quote, 1) ? -1 : 0;
}

int jv_write_repr(tm_buf *b, jv v, int depth)
{
    if (depth > JV_MAX_DEPTH) return tm_buf_puts(b, "...") ? -1 : 0;
    switch (v.t) {
    case JV_STR: return repr_str(b, v.u.s);
    case JV_UNDEF: return tm_buf_puts(b, "Undefined") ? -1 : 0;
    case JV_LIST:
        if (tm_buf_puts(b, v.u.l->tuple ? "(" : "[")) return -1;
        for (size_t i = 0; i < v.u.l->n; i++)
            if ((i && tm_buf_puts(b, ", ")) || jv_write_repr(b, v.u.l->v[i], depth + 1)) return -1;
        if (v.u.l->tuple && v.u.l->n == 1 && tm_buf_puts(b, ",")) return -1;
        return tm_buf_puts(b, v.u.l->tuple ? ")" : "]") ? -1 : 0;
    case JV_DICT:
    case JV_NS:
        if (tm_buf_puts(b, v.t == JV_NS ? "<Namespace {" : "{")) return -1;
        for (size_t i = 0; i < v.u.d->n; i++)
            if ((i && tm_buf_puts(b, ", ")) || repr_str(b, v.u.d->k[i]) || tm_buf_puts(b, ": ") ||
                jv_write_repr(b, v.u.d->v[i], depth + 1))
                return -1;
        return tm_buf_puts(b, v.t == JV_NS ? "}>" : "}") ? -1 : 0;
    default: return jv_write_str(b, v);
    }
}

int jv_write_str(tm_buf *b, jv v)
{
    switch (v.t) {
    case JV_UNDEF: return 0;
    case JV_NONE: return tm_buf_puts(b, "None") ? -1 : 0;
    case JV_BOOL: return tm_buf_puts(b, v.u.i ? "True" : "False") ? -1 : 0;
    case JV_INT: return tm_buf_printf(b, "%" PRId64, v.u.i) ? -1 : 0;
    case JV_FLOAT: return put_float(b, v.u.f, 0);
    case JV_STR: return tm_buf_append(b, v.u.s->s, v.u.s->n) ? -1 : 0;
    case JV_LIST: case JV_DICT: case JV_NS: return jv_write_repr(b, v, 0);
    case JV_LOOP: return tm_buf_puts(b, "<LoopContext>") ? -1 : 0;
    case JV_MACRO: return tm_buf_puts(b, "<Macro>") ? -1 : 0;
    default: return tm_buf_puts(b, "<function>") ? -1 : 0;
    }
}

static int json_str(tm_buf *b, const char *s, size_t n)
{
    if (tm_buf_puts(b, "\"")) return -1;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *t = NULL;
        char tmp[8];
        if (c == '"') t = "\\\"";
        else if (c == '\\') t = "\\\\";
        else if (c == '\n') t = "\\n";
        else if (c == '\r') t = "\\r";
        else if (c == '\t') t = "\\t";
        else if (c == '\b') t = "\\b";
        else if (c == '\f') t = "\\f";
        else if (c < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            t = tmp;
        }
        if (!t) continue;
        if (tm_buf_append(b, s + run, i - run) || tm_buf_puts(b, t)) return -1;
        run = i + 1;
    }
    return tm_buf_append(b, s + run, n - run) || tm_buf_puts(b, "\"") ? -1 : 0;
}

static int newline_indent(tm_buf *b, int indent, int level)
{
    if (indent < 0) return 0;
    if (tm_buf_puts(b, "\n")) return -1;
    for (long i = 0; i < (long)indent * level; i++)
        if (tm_buf_puts(b, " ")) return -1;
    return 0;
}

static int key_cmp(const void *x, const void *y)
{
    const jstr *a = **(const jstr *const *const *)x, *b = **(const jstr *const *const *)y;
    size_t n = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->s, b->s, n);
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

/* json.dumps(v, ensure_ascii=False, indent, separators, sort_keys); indent < 0: None */
int jv_tojson(tm_buf *b, jv v, int indent, const char *isep, const char *ksep, int sort_keys, int depth,
              const char **why)
{
    if (depth > JV_MAX_DEPTH) { *why = "nested too deeply"; return -1; }
    switch (v.t) {
    case JV_NONE: return tm_buf_puts(b, "null") ? -1 : 0;
    case JV_BOOL: return tm_buf_puts(b, v.u.i ? "true" : "false") ? -1 : 0;
    case JV_INT: return tm_buf_printf(b, "%" PRId64, v.u.i) ? -1 : 0;
    case JV_FLOAT: return put_float(b, v.u.f, 1);
    case JV_STR: return json_str(b, v.u.s->s, v.u.s->n);
    case JV_LIST:
        if (v.u.l->n == 0) return tm_buf_puts(b, "[]") ? -1 : 0;
        if (tm_buf_puts(b, "[")) return -1;
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i && tm_buf_puts(b, isep)) return -1;
            if (newline_indent(b, indent, depth + 1) ||
                jv_tojson(b, v.u.l->v[i], indent, isep, ksep, sort_keys, depth + 1, why))
                return -1;
        }
        return newline_indent(b, indent, depth) || tm_buf_puts(b, "]") ? -1 : 0;
    case JV_DICT: {
        const jdict *d = v.u.d;
        if (d->n == 0) return tm_buf_puts(b, "{}") ? -1 : 0;
        const jstr ***idx = malloc(d->n * sizeof *idx);
        int rc = -1;
        if (!idx) goto out;
        for (size_t i = 0; i < d->n; i++) idx[i] = &d->k[i];
        if (sort_keys) qsort(idx, d->n, sizeof *idx, key_cmp);
        if (tm_buf_puts(b, "{")) goto out;
        for (size_t i = 0; i < d->n; i++) {
            size_t k = (size_t)(idx[i] - d->k);
            if ((i && tm_buf_puts(b, isep)) || newline_indent(b, indent, depth + 1) ||
                json_str(b, d->k[k]->s, d->k[k]->n) || tm_buf_puts(b, ksep) ||
                jv_tojson(b, d->v[k], indent, isep, ksep, sort_keys, depth + 1, why))
                goto out;
        }
        rc = newline_indent(b, indent, depth) || tm_buf_puts(b, "}") ? -1 : 0;
    out:
        free(idx);
        return rc;
    }
    default:
        *why = jv_type_name(v);
        return -1;
    }
}

int jv_from_json(jarena *a, const json_t *j, int depth, jv *out)
{
    if (depth > JV_MAX_DEPTH) return -2;
    switch (json_typeof(j)) {
    case JSON_NULL: *out = jv_none(); return 0;
    case JSON_TRUE: *out = jv_bool(1); return 0;
    case JSON_FALSE: *out = jv_bool(0); return 0;
    case JSON_INTEGER: *out = jv_int(json_integer_value(j)); return 0;
    case JSON_REAL: *out = jv_float(json_real_value(j)); return 0;
    case JSON_STRING: {
        const jstr *s = jstr_new(a, json_string_value(j), json_string_length(j));
        if (!s) return -1;
        *out = jv_str(s);
        return 0;
    }
    case JSON_ARRAY: {
        jlist *l = jlist_new(a, json_array_size(j));
        if (!l) return -1;
        for (size_t i = 0; i < l->n; i++) {
            int rc = jv_from_json(a, json_array_get(j, i), depth + 1, &l->v[i]);
            if (rc) return rc;
        }
        out->t = JV_LIST;
        out->u.l = l;
        return 0;
    }
    case JSON_OBJECT: {
        jdict *d = jdict_new(a, json_object_size(j));
        if (!d) return -1;
        const char *k;
        size_t kl;
        json_t *v;
        json_object_keylen_foreach((json_t *)j, k, kl, v) {
            const jstr *ks = jstr_new(a, k, kl);
            if (!ks) return -1;
            d->k[d->n] = ks;
            int rc = jv_from_json(a, v, depth + 1, &d->v[d->n]);
            if (rc) return rc;
            d->n++;
        }
        out->t = JV_DICT;
        out->u.d = d;
        return 0;
    }
    }
    return -1;
}
