/* jinja_dispatch.c — filter and test dispatch by name, the simple filters
 * and tests, and the globals (range, namespace, dict, raise_exception,
 * strftime_now). The lists are in jinja_lib.c's header comment. */
#include "template/jinja_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ARG(i, key) jlib_arg(args, n, kwn, kwv, nk, (i), (key))
#define IS(s) (!strcmp(name, s))

static int str_filter(jrt *r, const char *name, jv x, const jv *args, size_t n, const jstr *const *kwn,
                      const jv *kwv, size_t nk, jv *out)
{
    const jstr *s;
    if (jrt_tostr(r, x, &s)) return -1;
    if (IS("trim")) return jstr_strip(r, s, ARG(0, "chars"), 1, 1, out);
    if (IS("upper")) return jstr_case(r, s, 'U', out);
    if (IS("lower")) return jstr_case(r, s, 'L', out);
    if (IS("capitalize")) return jstr_case(r, s, 'C', out);
    if (IS("title")) return jstr_case(r, s, 'J', out);
    if (IS("string") || IS("safe")) { *out = jv_str(s); return 0; }
    if (IS("replace")) {
        const jv *o = ARG(0, "old"), *w = ARG(1, "new"), *c = ARG(2, "count");
        const jstr *os, *ws;
        if (!o || !w) return jrt_fail(r, TM_ERR_INPUT, "replace needs old and new");
        if (jrt_tostr(r, *o, &os) || jrt_tostr(r, *w, &ws)) return -1;
        return jstr_replace(r, s, os, ws, c && c->t == JV_INT ? c->u.i : -1, out);
    }
    /* escape / e */
    tm_buf b;
    tm_buf_init(&b);
    int fail = 0;
    for (size_t i = 0; i < s->n && !fail; i++) {
        const char *e = s->s[i] == '&' ? "&amp;" : s->s[i] == '<' ? "&lt;" : s->s[i] == '>' ? "&gt;"
                        : s->s[i] == '"' ? "&#34;" : s->s[i] == '\'' ? "&#39;" : NULL;
        fail = e ? tm_buf_puts(&b, e) != TM_OK : tm_buf_append(&b, s->s + i, 1) != TM_OK;
    }
    const jstr *res = fail ? NULL : jstr_new(jrt_arena(r), b.data ? b.data : "", b.len);
    tm_buf_free(&b);
    if (!res) return jrt_oom(r);
    *out = jv_str(res);
    return 0;
}

static int len_of(jrt *r, jv x, int64_t *len)
{
    switch (x.t) {
    case JV_STR: *len = (int64_t)ju8_len(x.u.s->s, x.u.s->n); return 0;
    case JV_LIST: *len = (int64_t)x.u.l->n; return 0;
    case JV_DICT: *len = (int64_t)x.u.d->n; return 0;
    case JV_UNDEF: *len = 0; return 0;
    default: return jrt_fail(r, TM_ERR_INPUT, "object of type '%s' has no len()", jv_type_name(x));
    }
}

static int seq_filter(jrt *r, const char *name, jv x, const jv *args, size_t n, const jstr *const *kwn,
                      const jv *kwv, size_t nk, jv *out)
{
    const jlist *in;
    jlist *l;
    if (IS("first") || IS("last")) {
        if (x.t == JV_UNDEF) { *out = x; return 0; }
        if (jf_as_list(r, x, &in)) return -1;
        *out = !in->n ? jv_undef(NULL) : IS("first") ? in->v[0] : in->v[in->n - 1];
        return 0;
    }
    if (IS("items")) {
        if (x.t == JV_UNDEF) return jf_mklist(r, 0, &l, out);
        if (x.t != JV_DICT) return jrt_fail(r, TM_ERR_INPUT, "items: expected a mapping, got %s", jv_type_name(x));
        if (jf_mklist(r, x.u.d->n, &l, out)) return -1;
        for (size_t i = 0; i < l->n; i++) {
            jlist *p;
            jv pv;
            if (jf_mklist(r, 2, &p, &pv)) return -1;
            p->tuple = 1;
            p->v[0] = jv_str(x.u.d->k[i]);
            p->v[1] = x.u.d->v[i];
            l->v[i] = pv;
        }
        return 0;
    }
    if (jf_as_list(r, x, &in)) return -1;
    if (IS("list")) {
        if (jf_mklist(r, in->n, &l, out)) return -1;
        if (in->n) memcpy(l->v, in->v, in->n * sizeof(jv));
        return 0;
    }
    if (IS("unique")) {
        if (jf_mklist(r, in->n, &l, out)) return -1;
        l->n = 0;
        for (size_t i = 0; i < in->n; i++) {
            int seen = 0;
            if (jrt_step(r, NULL)) return -1;
            for (size_t k = 0; k < l->n && !seen; k++) seen = jv_equal(l->v[k], in->v[i]);
            if (!seen) l->v[l->n++] = in->v[i];
        }
        return 0;
    }
    /* sum(attribute=None, start=0) */
    const jv *at = ARG(0, "attribute"), *st = ARG(1, "start");
    jv acc = st ? *st : jv_int(0);
    for (size_t i = 0; i < in->n; i++) {
        jv v = in->v[i];
        if (at && at->t == JV_STR && jf_attr_path(r, v, at->u.s, &v)) return -1;
        if ((acc.t != JV_INT && acc.t != JV_FLOAT) || (v.t != JV_INT && v.t != JV_FLOAT && v.t != JV_BOOL))
            return jrt_fail(r, TM_ERR_INPUT, "sum: unsupported operand types '%s' and '%s'", jv_type_name(acc),
                            jv_type_name(v));
        if (acc.t == JV_INT && v.t != JV_FLOAT) {
            if (__builtin_add_overflow(acc.u.i, v.u.i, &acc.u.i))
                return jrt_fail(r, TM_ERR_INPUT, "integer overflow (beyond 64 bits)");
        } else {
            acc = jv_float((acc.t == JV_FLOAT ? acc.u.f : (double)acc.u.i) + (v.t == JV_FLOAT ? v.u.f : (double)v.u.i));
        }
    }
    *out = acc;
    return 0;
}

int jlib_filter(jrt *r, const char *name, jv x, const jv *args, size_t n, const jstr *const *kwn, const jv *kwv,
                size_t nk, jv *out)
{
    if (IS("trim") || IS("upper") || IS("lower") || IS("capitalize") || IS("title") || IS("string") || IS("safe") ||
        IS("replace") || IS("escape") || IS("e"))
        return str_filter(r, name, x, args, n, kwn, kwv, nk, out);
    if (IS("first") || IS("last") || IS("items") || IS("list") || IS("unique") || IS("sum"))
        return seq_filter(r, name, x, args, n, kwn, kwv, nk, out);
    if (IS("tojson")) return jf_filter_tojson(r, x, args, n, kwn, kwv, nk, out);
    if (IS("length") || IS("count")) {
        int64_t len = 0;
        if (len_of(r, x, &len)) return -1;
        *out = jv_int(len);
        return 0;
    }
    if (IS("join")) return jf_filter_join(r, x, args, n, kwn, kwv, nk, out);
    if (IS("select") || IS("reject") || IS("selectattr") || IS("rejectattr"))
        return jf_filter_select(r, name, x, args, n, out);
    if (IS("map")) return jf_filter_map(r, x, args, n, kwn, kwv, nk, out);
    if (IS("default") || IS("d")) {
        const jv *v = ARG(0, "default_value"), *b = ARG(1, "boolean");
        int use = x.t == JV_UNDEF || (b && jv_truthy(*b) && !jv_truthy(x));
        *out = use ? (v ? *v : jv_str(jstr_c(jrt_arena(r), ""))) : x;
        return out->t == JV_STR && !out->u.s ? jrt_oom(r) : 0;
    }
    if (IS("int") || IS("float")) return jf_filter_int(r, x, ARG(0, "default"), name[0] == 'f', out);
    if (IS("indent")) return jf_filter_indent(r, x, args, n, kwn, kwv, nk, out);
    if (IS("reverse") && x.t == JV_STR) {
        jv none = jv_none();
        return jrt_getitem_slice(r, x, none, none, jv_int(-1), out);
    }
    if (IS("min") || IS("max") || IS("sort") || IS("reverse"))
        return jf_filter_minmax_sort(r, name, x, args, n, kwn, kwv, nk, out);
    if (IS("abs")) {
        if (x.t == JV_FLOAT) *out = jv_float(fabs(x.u.f));
        else if ((x.t == JV_INT || x.t == JV_BOOL) && x.u.i != INT64_MIN) *out = jv_int(x.u.i < 0 ? -x.u.i : x.u.i);
        else return jrt_fail(r, TM_ERR_INPUT, "bad operand type for abs(): '%s'", jv_type_name(x));
        return 0;
    }
    if (IS("round")) {
        const jv *p = ARG(0, "precision"), *m = ARG(1, "method");
        int prec = p && p->t == JV_INT ? (int)(p->u.i < 0 ? 0 : p->u.i > 15 ? 15 : p->u.i) : 0;
        if (x.t != JV_INT && x.t != JV_FLOAT && x.t != JV_BOOL)
            return jrt_fail(r, TM_ERR_INPUT, "round: expected a number, got %s", jv_type_name(x));
        const char *mm = m && m->t == JV_STR ? m->u.s->s : "common";
        if (x.t != JV_FLOAT && !strcmp(mm, "common")) { /* Python's round(int, n) is that int */
            *out = jv_int(x.u.i);
            return 0;
        }
        double f = x.t == JV_FLOAT ? x.u.f : (double)x.u.i, s = pow(10, prec);
        const char *meth = m && m->t == JV_STR ? m->u.s->s : "common";
        if (!strcmp(meth, "ceil")) f = ceil(f * s) / s;
        else if (!strcmp(meth, "floor")) f = floor(f * s) / s;
        else if (isfinite(f)) {
            char buf[400];
            snprintf(buf, sizeof buf, "%.*f", prec, f);
            f = strtod(buf, NULL);
        }
        *out = jv_float(f);
        return 0;
    }
    return 1;
}

int jlib_test(jrt *r, const char *name, jv x, const jv *args, size_t n, int *res)
{
    const jv *a = n ? &args[0] : NULL;
    int c;
    if (IS("defined")) *res = x.t != JV_UNDEF;
    else if (IS("undefined")) *res = x.t == JV_UNDEF;
    else if (IS("none")) *res = x.t == JV_NONE;
    else if (IS("boolean")) *res = x.t == JV_BOOL;
    else if (IS("true")) *res = x.t == JV_BOOL && x.u.i;
    else if (IS("false")) *res = x.t == JV_BOOL && !x.u.i;
    else if (IS("integer")) *res = x.t == JV_INT;
    else if (IS("float")) *res = x.t == JV_FLOAT;
    else if (IS("number")) *res = x.t == JV_INT || x.t == JV_FLOAT || x.t == JV_BOOL;
    else if (IS("string")) *res = x.t == JV_STR;
    else if (IS("mapping")) *res = x.t == JV_DICT;
    else if (IS("iterable")) *res = x.t == JV_STR || x.t == JV_LIST || x.t == JV_DICT || x.t == JV_UNDEF;
    else if (IS("sequence")) *res = x.t == JV_STR || x.t == JV_LIST || x.t == JV_DICT;
    else if (IS("callable")) *res = x.t == JV_MACRO || x.t == JV_FUNC || x.t == JV_METHOD;
    else if (IS("odd") || IS("even") || IS("divisibleby")) { /* value % n with Python's int/float rules */
        int is_num = x.t == JV_INT || x.t == JV_BOOL || x.t == JV_FLOAT;
        const jv *d = IS("divisibleby") ? a : NULL;
        if (!is_num || (IS("divisibleby") && (!d || (d->t != JV_INT && d->t != JV_BOOL && d->t != JV_FLOAT))))
            return jrt_fail(r, TM_ERR_INPUT, "%s: expected numbers", name);
        double dv = !d ? 2.0 : d->t == JV_FLOAT ? d->u.f : (double)d->u.i;
        if (dv == 0) return jrt_fail(r, TM_ERR_INPUT, "%s: modulo by zero", name);
        double m; /* Python's value % n: the sign of n */
        if (x.t != JV_FLOAT && (!d || d->t != JV_FLOAT)) {
            int64_t k = (int64_t)dv, q = k == -1 ? 0 : x.u.i % k;
            m = (double)(q != 0 && ((k < 0) != (q < 0)) ? q + k : q);
        } else {
            m = fmod(x.t == JV_FLOAT ? x.u.f : (double)x.u.i, dv);
            if (m != 0 && ((dv < 0) != (m < 0))) m += dv;
        }
        *res = IS("odd") ? m == 1 : m == 0;
    } else if (IS("lower") || IS("upper")) { /* str(x).islower() / .isupper() */
        const jstr *s;
        if (jrt_tostr(r, x, &s)) return -1;
        *res = jstr_is_case(s, name[0] == 'l');
    } else {
        if (!a) return 1;
        if (IS("sameas")) *res = x.t == a->t && jv_equal(x, *a) && (x.t != JV_LIST || x.u.l == a->u.l) &&
                                 (x.t != JV_DICT || x.u.d == a->u.d);
        else if (IS("eq") || IS("equalto") || IS("==")) *res = jv_equal(x, *a);
        else if (IS("ne") || IS("!=")) *res = !jv_equal(x, *a);
        else if (IS("in")) return jrt_contains(r, *a, x, res);
        else if (IS("lt") || IS("<") || IS("le") || IS("<=") || IS("gt") || IS(">") || IS("ge") || IS(">=")) {
            if (jv_compare(x, *a, &c))
                return jrt_fail(r, TM_ERR_INPUT, "'%s' not supported between '%s' and '%s'", name, jv_type_name(x),
                                jv_type_name(*a));
            *res = name[0] == 'l' || name[0] == '<' ? (name[1] == 'e' || name[1] == '=' ? c <= 0 : c < 0)
                                                    : (name[1] == 'e' || name[1] == '=' ? c >= 0 : c > 0);
        } else return 1;
    }
    return 0;
}

int jlib_global(const char *name)
{
    return IS("range") ? JF_RANGE : IS("namespace") ? JF_NAMESPACE : IS("dict") ? JF_DICT
           : IS("raise_exception") ? JF_RAISE : IS("strftime_now") ? JF_STRFTIME : 0;
}

int jlib_call_global(jrt *r, int fn, const jv *args, size_t n, const jstr *const *kwn, const jv *kwv, size_t nk,
                     jv *out)
{
    if (fn == JF_RAISE) {
        const jstr *m = NULL;
        if (n && jrt_tostr(r, args[0], &m)) return -1;
        return jrt_fail(r, TM_ERR_INPUT, "%s", m ? m->s : "raise_exception()");
    }
    if (fn == JF_STRFTIME) {
        if (!n || args[0].t != JV_STR) return jrt_fail(r, TM_ERR_INPUT, "strftime_now needs a format string");
        time_t now = time(NULL);
        struct tm tmv;
        char buf[256];
        size_t k = localtime_r(&now, &tmv) ? strftime(buf, sizeof buf, args[0].u.s->s, &tmv) : 0;
        const jstr *s = jstr_new(jrt_arena(r), buf, k);
        if (!s) return jrt_oom(r);
        *out = jv_str(s);
        return 0;
    }
    if (fn == JF_RANGE) {
        int64_t lo = 0, hi, st = 1;
        for (size_t i = 0; i < n; i++)
            if (args[i].t != JV_INT && args[i].t != JV_BOOL)
                return jrt_fail(r, TM_ERR_INPUT, "range: '%s' object cannot be interpreted as an integer",
                                jv_type_name(args[i]));
        if (n == 1) hi = args[0].u.i;
        else if (n == 2 || n == 3) { lo = args[0].u.i; hi = args[1].u.i; if (n == 3) st = args[2].u.i; }
        else return jrt_fail(r, TM_ERR_INPUT, "range expected 1 to 3 arguments, got %zu", n);
        if (st == 0) return jrt_fail(r, TM_ERR_INPUT, "range() arg 3 must not be zero");
        double cnt = st > 0 ? ceil(((double)hi - (double)lo) / (double)st) : ceil(((double)lo - (double)hi) / (double)-st);
        if (cnt < 0) cnt = 0;
        if (cnt > 1e7) return jrt_fail(r, TM_ERR_INPUT, "range too big (%.0f items; the limit is 10000000)", cnt);
        jlist *l;
        if (jf_mklist(r, (size_t)cnt, &l, out)) return -1;
        for (size_t i = 0; i < l->n; i++) l->v[i] = jv_int(lo + (int64_t)i * st);
        return 0;
    }
    /* namespace(...) / dict(...): an optional mapping, then keyword arguments */
    jdict *d = jdict_new(jrt_arena(r), n + nk);
    if (!d) return jrt_oom(r);
    if (n > 1 || (n == 1 && args[0].t != JV_DICT))
        return jrt_fail(r, TM_ERR_INPUT, "%s() takes keyword arguments or one mapping", fn == JF_DICT ? "dict" : "namespace");
    for (size_t i = 0; n && i < args[0].u.d->n; i++)
        if (jdict_set(jrt_arena(r), d, args[0].u.d->k[i], args[0].u.d->v[i])) return jrt_oom(r);
    for (size_t i = 0; i < nk; i++)
        if (jdict_set(jrt_arena(r), d, kwn[i], kwv[i])) return jrt_oom(r);
    out->t = fn == JF_DICT ? JV_DICT : JV_NS;
    out->u.d = d;
    return 0;
}
