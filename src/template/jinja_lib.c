/* jinja_lib.c — the larger filters (dispatch, tests and globals are in
 * jinja_dispatch.c), with jinja2 3.1's semantics for the arguments chat
 * templates pass. The full lists:
 *
 * Filters: trim, tojson (transformers': json.dumps(x, ensure_ascii=False,
 * indent, separators, sort_keys)), length/count, join, selectattr,
 * rejectattr, select, reject, map, first, last, upper, lower, capitalize,
 * title, default/d, items, list, string, int, float, replace, indent, abs,
 * round, sum, min, max, unique, reverse, sort, safe, e/escape, wordcount.
 * Tests: defined, undefined, none, boolean, true, false, integer, float,
 * number, string, mapping, iterable, sequence, callable, sameas,
 * eq/equalto/==, ne/!=, lt/<, le/<=, gt/>, ge/>=, in, odd, even,
 * divisibleby, lower, upper. */
#include "template/jinja_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const jv *jlib_arg(const jv *args, size_t n, const jstr *const *kwn, const jv *kwv, size_t nk, size_t i,
                   const char *key)
{
    if (i < n) return &args[i];
    for (size_t k = 0; key && k < nk; k++)
        if (!strcmp(kwn[k]->s, key)) return &kwv[k];
    return NULL;
}

#define ARG(i, key) jlib_arg(args, n, kwn, kwv, nk, (i), (key))

int jf_mklist(jrt *r, size_t n, jlist **l, jv *out)
{
    if (!(*l = jlist_new(jrt_arena(r), n))) return jrt_oom(r);
    out->t = JV_LIST;
    out->u.l = *l;
    return 0;
}

static int str_of(jrt *r, jv v, const jstr **s) { return jrt_tostr(r, v, s); }

/* The items of an iterable value as a list (dict keys, string characters). */
int jf_as_list(jrt *r, jv v, const jlist **out)
{
    static const jlist empty = {0, NULL, 0};
    if (v.t == JV_LIST) { *out = v.u.l; return 0; }
    if (v.t == JV_UNDEF) { *out = &empty; return 0; }
    jlist *l;
    jv tmp;
    if (v.t == JV_DICT) {
        if (jf_mklist(r, v.u.d->n, &l, &tmp)) return -1;
        for (size_t i = 0; i < l->n; i++) l->v[i] = jv_str(v.u.d->k[i]);
        *out = l;
        return 0;
    }
    if (v.t == JV_STR) {
        const jstr *s = v.u.s;
        if (jf_mklist(r, ju8_len(s->s, s->n), &l, &tmp)) return -1;
        for (size_t i = 0, o = 0; i < l->n; i++) {
            uint32_t c;
            size_t k = ju8_dec((const unsigned char *)s->s + o, s->n - o, &c);
            const jstr *ch = jstr_new(jrt_arena(r), s->s + o, k);
            if (!ch) return jrt_oom(r);
            l->v[i] = jv_str(ch);
            o += k;
        }
        *out = l;
        return 0;
    }
    return jrt_fail(r, TM_ERR_INPUT, "'%s' object is not iterable", jv_type_name(v));
}

/* attribute "a.b.0" of x, as jinja's make_attrgetter */
int jf_attr_path(jrt *r, jv x, const jstr *path, jv *out)
{
    size_t i = 0;
    *out = x;
    while (i <= path->n) {
        const char *dot = memchr(path->s + i, '.', path->n - i);
        size_t k = dot ? (size_t)(dot - path->s) : path->n;
        const jstr *part = jstr_new(jrt_arena(r), path->s + i, k - i);
        if (!part) return jrt_oom(r);
        jv key = jv_str(part);
        char *end;
        long long idx = strtoll(part->s, &end, 10);
        if (part->n && *end == 0) key = jv_int(idx);
        if (out->t == JV_UNDEF) return jrt_undefined(r, *out);
        if (jrt_getitem(r, *out, key, out)) return -1;
        if (!dot) break;
        i = k + 1;
    }
    return 0;
}

int jf_filter_tojson(jrt *r, jv x, const jv *args, size_t n, const jstr *const *kwn, const jv *kwv, size_t nk,
                         jv *out)
{
    const jv *ea = ARG(99, "ensure_ascii"), *ind = ARG(0, "indent"), *sep = ARG(99, "separators"),
             *sk = ARG(99, "sort_keys");
    if (ea && jv_truthy(*ea)) return jrt_fail(r, TM_ERR_INPUT, "tojson: ensure_ascii=True is not supported");
    int indent = -1;
    if (ind && ind->t == JV_INT) indent = ind->u.i < 0 ? 0 : ind->u.i > 64 ? 64 : (int)ind->u.i;
    else if (ind && ind->t != JV_NONE) return jrt_fail(r, TM_ERR_INPUT, "tojson: indent must be an integer");
    const char *isep = indent >= 0 ? "," : ", ", *ksep = ": ";
    if (sep && sep->t == JV_LIST && sep->u.l->n == 2 && sep->u.l->v[0].t == JV_STR && sep->u.l->v[1].t == JV_STR) {
        isep = sep->u.l->v[0].u.s->s;
        ksep = sep->u.l->v[1].u.s->s;
    } else if (sep && sep->t != JV_NONE) {
        return jrt_fail(r, TM_ERR_INPUT, "tojson: separators must be a pair of strings");
    }
    tm_buf b;
    tm_buf_init(&b);
    const char *why = NULL;
    int rc = jv_tojson(&b, x, indent, isep, ksep, sk && jv_truthy(*sk), 0, &why);
    const jstr *s = rc ? NULL : jstr_new(jrt_arena(r), b.data ? b.data : "", b.len);
    tm_buf_free(&b);
    if (rc && why) return jrt_fail(r, TM_ERR_INPUT, "tojson: Object of type %s is not JSON serializable", why);
    if (!s) return jrt_oom(r);
    *out = jv_str(s);
    return 0;
}

static int test_by_name(jrt *r, const char *name, jv x, const jv *args, size_t n, int *res)
{
    int rc = jlib_test(r, name, x, args, n, res);
    if (rc == 1) return jrt_fail(r, TM_ERR_INPUT, "no test named '%s'", name);
    return rc;
}

/* select / reject / selectattr / rejectattr */
int jf_filter_select(jrt *r, const char *name, jv x, const jv *args, size_t n, jv *out)
{
    int attr = strstr(name, "attr") != NULL, want = name[0] == 's';
    const jlist *in;
    jlist *l;
    if (jf_as_list(r, x, &in) || jf_mklist(r, in->n, &l, out)) return -1;
    l->n = 0;
    size_t k = 0;
    const jstr *path = NULL;
    if (attr) {
        if (n < 1 || args[0].t != JV_STR) return jrt_fail(r, TM_ERR_INPUT, "%s needs an attribute name", name);
        path = args[0].u.s;
        k = 1;
    }
    const char *test = n > k && args[k].t == JV_STR ? args[k].u.s->s : NULL;
    if (n > k && !test) return jrt_fail(r, TM_ERR_INPUT, "%s: the test name must be a string", name);
    for (size_t i = 0; i < in->n; i++) {
        jv v = in->v[i];
        int res;
        if (path && jf_attr_path(r, v, path, &v)) return -1;
        if (test) {
            if (test_by_name(r, test, v, args + k + 1, n - k - 1, &res)) return -1;
        } else {
            res = jv_truthy(v);
        }
        if (res == want) l->v[l->n++] = in->v[i];
    }
    return 0;
}

int jf_filter_map(jrt *r, jv x, const jv *args, size_t n, const jstr *const *kwn, const jv *kwv, size_t nk,
                      jv *out)
{
    const jlist *in;
    jlist *l;
    if (jf_as_list(r, x, &in) || jf_mklist(r, in->n, &l, out)) return -1;
    const jv *at = ARG(99, "attribute"), *def = ARG(99, "default");
    if (at && at->t != JV_STR) return jrt_fail(r, TM_ERR_INPUT, "map: attribute must be a string");
    if (!at && (n < 1 || args[0].t != JV_STR)) return jrt_fail(r, TM_ERR_INPUT, "map: needs a filter name or attribute=");
    for (size_t i = 0; i < in->n; i++) {
        if (at) {
            if (jf_attr_path(r, in->v[i], at->u.s, &l->v[i])) return -1;
            if (def && l->v[i].t == JV_UNDEF) l->v[i] = *def;
        } else {
            int rc = jlib_filter(r, args[0].u.s->s, in->v[i], args + 1, n - 1, kwn, kwv, nk, &l->v[i]);
            if (rc == 1) return jrt_fail(r, TM_ERR_INPUT, "no filter named '%s'", args[0].u.s->s);
            if (rc) return -1;
        }
    }
    return 0;
}

int jf_filter_join(jrt *r, jv x, const jv *args, size_t n, const jstr *const *kwn, const jv *kwv, size_t nk,
                       jv *out)
{
    const jv *d = ARG(0, "d"), *at = ARG(1, "attribute");
    const jstr *sep = NULL;
    const jlist *in;
    if ((d && str_of(r, *d, &sep)) || jf_as_list(r, x, &in)) return -1;
    tm_buf b;
    tm_buf_init(&b);
    int rc = 0;
    for (size_t i = 0; i < in->n && !rc; i++) {
        jv v = in->v[i];
        const jstr *s;
        if (at && at->t == JV_STR && jf_attr_path(r, v, at->u.s, &v)) rc = -1;
        else if (str_of(r, v, &s)) rc = -1;
        else if ((i && sep && tm_buf_append(&b, sep->s, sep->n)) || tm_buf_append(&b, s->s, s->n)) rc = jrt_oom(r);
    }
    const jstr *res = rc ? NULL : jstr_new(jrt_arena(r), b.data ? b.data : "", b.len);
    tm_buf_free(&b);
    if (rc) return -1;
    if (!res) return jrt_oom(r);
    *out = jv_str(res);
    return 0;
}

/* str.splitlines() boundaries */
static size_t line_break(const char *s, size_t n, size_t i, size_t *len)
{
    uint32_t c;
    size_t l = ju8_dec((const unsigned char *)s + i, n - i, &c);
    *len = l;
    if (c == '\r' && i + 1 < n && s[i + 1] == '\n') { *len = 2; return 1; }
    return c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e) || c == 0x85 ||
           c == 0x2028 || c == 0x2029;
}

int jf_filter_indent(jrt *r, jv x, const jv *args, size_t n, const jstr *const *kwn, const jv *kwv, size_t nk,
                         jv *out)
{
    const jv *w = ARG(0, "width"), *first = ARG(1, "first"), *blank = ARG(2, "blank");
    const jstr *s, *ind;
    char sp[65];
    if (x.t != JV_STR) /* jinja appends "\n" to the value itself */
        return jrt_fail(r, TM_ERR_INPUT, "indent: unsupported operand type(s) for +=: '%s' and 'str'", jv_type_name(x));
    s = x.u.s;
    if (w && w->t == JV_STR) ind = w->u.s;
    else {
        int64_t k = w && (w->t == JV_INT) ? w->u.i : 4;
        k = k < 0 ? 0 : k > 64 ? 64 : k;
        memset(sp, ' ', (size_t)k);
        if (!(ind = jstr_new(jrt_arena(r), sp, (size_t)k))) return jrt_oom(r);
    }
    int bl = blank && jv_truthy(*blank);
    tm_buf b;
    tm_buf_init(&b);
    int fail = first && jv_truthy(*first) && tm_buf_append(&b, ind->s, ind->n);
    /* (s + "\n").splitlines(): every piece of s, the last one too, joined with
     * "\n" + indent (blank lines unindented unless blank=True) */
    size_t i = 0, start = 0, line = 0;
    while (!fail && i <= s->n) {
        size_t bl_len = 0;
        int brk = i == s->n || line_break(s->s, s->n, i, &bl_len);
        if (!brk) { i += bl_len; continue; }
        size_t len = i - start;
        if (line > 0) fail |= tm_buf_puts(&b, "\n") || ((len || bl) && tm_buf_append(&b, ind->s, ind->n));
        fail |= tm_buf_append(&b, s->s + start, len) != TM_OK;
        line++;
        if (i == s->n) break;
        i += bl_len;
        start = i;
    }
    const jstr *res = fail ? NULL : jstr_new(jrt_arena(r), b.data ? b.data : "", b.len);
    tm_buf_free(&b);
    if (!res) return jrt_oom(r);
    *out = jv_str(res);
    return 0;
}

int jf_filter_int(jrt *r, jv x, const jv *def, int to_float, jv *out)
{
    *out = def ? *def : to_float ? jv_float(0.0) : jv_int(0);
    if (x.t == JV_BOOL || x.t == JV_INT) { *out = to_float ? jv_float((double)x.u.i) : jv_int(x.u.i); return 0; }
    double f = 0;
    if (x.t == JV_FLOAT) f = x.u.f;
    else if (x.t == JV_STR) {
        char *end;
        const char *p = x.u.s->s;
        long long v = strtoll(p, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\n') end++;
        if (!to_float && end != p && *end == 0 && end - p == (long)x.u.s->n) { *out = jv_int(v); return 0; }
        f = strtod(p, &end);
        while (*end == ' ' || *end == '\t' || *end == '\n') end++;
        if (end == p || *end || (size_t)(end - p) != x.u.s->n) return 0;
    } else return 0;
    if (to_float) *out = jv_float(f);
    else if (isfinite(f) && f > -9.2e18 && f < 9.2e18) *out = jv_int((int64_t)f);
    return 0;
}

int jf_filter_minmax_sort(jrt *r, const char *name, jv x, const jv *args, size_t n, const jstr *const *kwn,
                              const jv *kwv, size_t nk, jv *out)
{
    const jlist *in;
    jlist *l;
    if (jf_as_list(r, x, &in) || jf_mklist(r, in->n, &l, out)) return -1;
    if (in->n) memcpy(l->v, in->v, in->n * sizeof(jv));
    const jv *rev = ARG(0, "reverse"), *at = ARG(2, "attribute");
    if (!strcmp(name, "reverse")) {
        for (size_t i = 0; i < l->n / 2; i++) { jv t = l->v[i]; l->v[i] = l->v[l->n - 1 - i]; l->v[l->n - 1 - i] = t; }
        return 0;
    }
    /* insertion sort: stable like Python's sorted(); the lists are short */
    jv *keys = ja_alloc(jrt_arena(r), (l->n + 1) * sizeof(jv));
    if (!keys) return jrt_oom(r);
    const jv *cs = ARG(1, "case_sensitive");
    if (strcmp(name, "sort")) cs = ARG(0, "case_sensitive"), at = ARG(1, "attribute");
    for (size_t i = 0; i < l->n; i++) {
        keys[i] = l->v[i];
        if (at && at->t == JV_STR && jf_attr_path(r, l->v[i], at->u.s, &keys[i])) return -1;
        /* jinja compares strings case-insensitively unless case_sensitive=True */
        if (keys[i].t == JV_STR && !(cs && jv_truthy(*cs)) && jstr_case(r, keys[i].u.s, 'L', &keys[i])) return -1;
    }
    int desc = strcmp(name, "sort") ? 0 : rev && jv_truthy(*rev);
    for (size_t i = 1; i < l->n; i++) {
        if (jrt_step(r, NULL)) return -1;
        jv kv = keys[i], vv = l->v[i];
        size_t j = i;
        while (j > 0) {
            int c;
            if (jv_compare(keys[j - 1], kv, &c))
                return jrt_fail(r, TM_ERR_INPUT, "cannot compare '%s' and '%s'", jv_type_name(keys[j - 1]),
                                jv_type_name(kv));
            if (desc ? c >= 0 : c <= 0) break;
            keys[j] = keys[j - 1];
            l->v[j] = l->v[j - 1];
            j--;
        }
        keys[j] = kv;
        l->v[j] = vv;
    }
    if (!strcmp(name, "sort")) return 0;
    if (!l->n) { *out = jv_undef(NULL); return 0; }
    *out = name[1] == 'i' ? l->v[0] : l->v[l->n - 1];
    return 0;
}

