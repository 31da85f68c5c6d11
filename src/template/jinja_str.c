/* jinja_str.c — Python str and dict methods for templates (strip, split,
 * startswith, replace, upper, title, ..., items, keys, get), with Python's
 * Unicode whitespace and case mappings (utf8proc). */
#include "template/jinja_int.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static jv mkstr(jrt *r, const char *s, size_t n, int *rc)
{
    const jstr *t = jstr_new(jrt_arena(r), s, n);
    if (!t) { *rc = jrt_oom(r); return jv_undef(NULL); }
    return jv_str(t);
}

static int in_set(uint32_t c, const jstr *set)
{
    uint32_t d;
    for (size_t i = 0; i < set->n;) {
        i += ju8_dec((const unsigned char *)set->s + i, set->n - i, &d);
        if (c == d) return 1;
    }
    return 0;
}

int jstr_strip(jrt *r, const jstr *s, const jv *chars, int left, int right, jv *out)
{
    const jstr *set = NULL;
    if (chars && chars->t == JV_STR) set = chars->u.s;
    else if (chars && chars->t != JV_NONE && chars->t != JV_UNDEF)
        return jrt_fail(r, TM_ERR_INPUT, "strip arg must be None or str");
    const unsigned char *p = (const unsigned char *)s->s;
    size_t b = 0, e = s->n;
    uint32_t c;
    while (left && b < e) {
        size_t l = ju8_dec(p + b, e - b, &c);
        if (set ? !in_set(c, set) : !ju8_space(c)) break;
        b += l;
    }
    while (right && e > b) {
        size_t k = e - 1;
        while (k > b && (p[k] & 0xc0) == 0x80 && e - k < 4) k--;
        size_t l = ju8_dec(p + k, e - k, &c);
        if (l != e - k) { k = e - 1; c = p[k]; }
        if (set ? !in_set(c, set) : !ju8_space(c)) break;
        e = k;
    }
    int rc = 0;
    *out = mkstr(r, s->s + b, e - b, &rc);
    return rc;
}

static int cased(uint32_t c)
{
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT;
}

int jstr_is_case(const jstr *s, int lower)
{
    int want = 0, other = 0;
    for (size_t i = 0; i < s->n;) {
        uint32_t c;
        i += ju8_dec((const unsigned char *)s->s + i, s->n - i, &c);
        utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
        if (k == (lower ? UTF8PROC_CATEGORY_LL : UTF8PROC_CATEGORY_LU)) want++;
        else if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT) other++;
    }
    return want > 0 && other == 0;
}

static int jinja_word_sep(uint32_t c) { return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || ju8_space(c); }

int jstr_case(jrt *r, const jstr *s, int how, jv *out)
{
    if (s->n > SIZE_MAX / 4 - 8) return jrt_oom(r);
    char *buf = malloc(s->n * 2 + 8); /* simple mappings change a length by at most one byte */
    if (!buf) return jrt_oom(r);
    size_t o = 0;
    int prev_cased = 0, word_start = 1, first = 1;
    for (size_t i = 0; i < s->n;) {
        uint32_t c;
        size_t l = ju8_dec((const unsigned char *)s->s + i, s->n - i, &c);
        utf8proc_int32_t m = (utf8proc_int32_t)c;
        int valid = utf8proc_codepoint_valid(m) && l > 1 ? 1 : c < 0x80;
        if (valid) {
            switch (how) {
            case 'U': m = utf8proc_toupper(m); break;
            case 'L': m = utf8proc_tolower(m); break;
            case 'C': m = first ? utf8proc_totitle(m) : utf8proc_tolower(m); break;
            case 'T': m = prev_cased ? utf8proc_tolower(m) : utf8proc_totitle(m); break;
            case 'J': m = jinja_word_sep(c) ? m : word_start ? utf8proc_toupper(m) : utf8proc_tolower(m); break;
            }
        }
        prev_cased = cased(c);
        word_start = jinja_word_sep(c);
        first = 0;
        if (valid) {
            utf8proc_ssize_t k = utf8proc_encode_char(m, (utf8proc_uint8_t *)buf + o);
            o += (size_t)(k > 0 ? k : 0);
        } else {
            memcpy(buf + o, s->s + i, l);
            o += l;
        }
        i += l;
    }
    int rc = 0;
    *out = mkstr(r, buf, o, &rc);
    free(buf);
    return rc;
}

int jstr_replace(jrt *r, const jstr *s, const jstr *old, const jstr *nw, int64_t count, jv *out)
{
    tm_buf b;
    tm_buf_init(&b);
    size_t i = 0;
    int64_t done = 0;
    int fail = 0;
    if (old->n == 0) { /* Python: insert nw between characters (and at both ends) */
        uint32_t c;
        while (!fail && (count < 0 || done < count)) {
            fail |= tm_buf_append(&b, nw->s, nw->n) != TM_OK;
            done++;
            if (i >= s->n) break;
            size_t l = ju8_dec((const unsigned char *)s->s + i, s->n - i, &c);
            fail |= tm_buf_append(&b, s->s + i, l) != TM_OK;
            i += l;
        }
    } else {
        while (!fail && i <= s->n && (count < 0 || done < count)) {
            const char *p = memmem(s->s + i, s->n - i, old->s, old->n);
            if (!p) break;
            size_t k = (size_t)(p - s->s);
            fail |= tm_buf_append(&b, s->s + i, k - i) || tm_buf_append(&b, nw->s, nw->n);
            i = k + old->n;
            done++;
        }
    }
    if (!fail && i < s->n) fail |= tm_buf_append(&b, s->s + i, s->n - i) != TM_OK;
    int rc = fail ? jrt_oom(r) : 0;
    if (!rc) *out = mkstr(r, b.data ? b.data : "", b.len, &rc);
    tm_buf_free(&b);
    return rc;
}

static int push_part(jrt *r, tm_buf *parts, size_t *np, const char *p, size_t n)
{
    const jstr *s = jstr_new(jrt_arena(r), p, n);
    jv v = jv_str(s);
    if (!s || tm_buf_append(parts, &v, sizeof v)) return jrt_oom(r);
    (*np)++;
    return 0;
}

/* str.split(sep=None, maxsplit=-1) */
static int split(jrt *r, const jstr *s, const jv *sep, const jv *maxsplit, jv *out)
{
    int64_t max = -1;
    if (maxsplit && maxsplit->t == JV_INT) max = maxsplit->u.i;
    if (sep && sep->t != JV_STR && sep->t != JV_NONE) return jrt_fail(r, TM_ERR_INPUT, "split: sep must be a string");
    tm_buf parts;
    tm_buf_init(&parts);
    size_t np = 0;
    int rc = 0;
    if (sep && sep->t == JV_STR) {
        const jstr *d = sep->u.s;
        if (!d->n) { tm_buf_free(&parts); return jrt_fail(r, TM_ERR_INPUT, "split: empty separator"); }
        size_t i = 0;
        for (;;) {
            const char *p = max < 0 || (int64_t)np < max ? memmem(s->s + i, s->n - i, d->s, d->n) : NULL;
            size_t k = p ? (size_t)(p - s->s) : s->n;
            if ((rc = push_part(r, &parts, &np, s->s + i, k - i))) break;
            if (!p) break;
            i = k + d->n;
        }
    } else {
        size_t i = 0;
        uint32_t c;
        for (;;) {
            while (i < s->n) { /* skip whitespace */
                size_t l = ju8_dec((const unsigned char *)s->s + i, s->n - i, &c);
                if (!ju8_space(c)) break;
                i += l;
            }
            if (i >= s->n) break;
            if (max >= 0 && (int64_t)np >= max) { /* the rest, right-stripped */
                jv rest;
                const jstr *t = jstr_new(jrt_arena(r), s->s + i, s->n - i);
                if (!t) { rc = jrt_oom(r); break; }
                if ((rc = jstr_strip(r, t, NULL, 0, 1, &rest))) break;
                if ((rc = push_part(r, &parts, &np, rest.u.s->s, rest.u.s->n))) break;
                break;
            }
            size_t b = i;
            while (i < s->n) {
                size_t l = ju8_dec((const unsigned char *)s->s + i, s->n - i, &c);
                if (ju8_space(c)) break;
                i += l;
            }
            if ((rc = push_part(r, &parts, &np, s->s + b, i - b))) break;
        }
    }
    jlist *l = rc ? NULL : jlist_new(jrt_arena(r), np);
    if (!rc && !l) rc = jrt_oom(r);
    if (!rc) {
        if (np) memcpy(l->v, parts.data, np * sizeof(jv));
        out->t = JV_LIST;
        out->u.l = l;
    }
    tm_buf_free(&parts);
    return rc;
}

static int affix(jrt *r, const jstr *s, const jv *x, int end, int *res)
{
    *res = 0;
    if (!x) return jrt_fail(r, TM_ERR_INPUT, "%s needs an argument", end ? "endswith" : "startswith");
    const jv *opts = x;
    size_t n = 1;
    if (x->t == JV_LIST) { opts = x->u.l->v; n = x->u.l->n; }
    for (size_t i = 0; i < n; i++) {
        if (opts[i].t != JV_STR) return jrt_fail(r, TM_ERR_INPUT, "%s arg must be str or a tuple of str",
                                                  end ? "endswith" : "startswith");
        const jstr *a = opts[i].u.s;
        if (a->n <= s->n && !memcmp(end ? s->s + s->n - a->n : s->s, a->s, a->n)) *res = 1;
    }
    return 0;
}

static const char *const k_str_methods[] = {"strip", "lstrip", "rstrip", "startswith", "endswith", "split",
                                            "replace", "upper", "lower", "title", "capitalize", "find",
                                            "count", "join", "isdigit", "isspace", "isalpha", NULL};
static const char *const k_dict_methods[] = {"items", "keys", "values", "get", NULL};

int jlib_has_method(jv self, const char *name)
{
    const char *const *m = self.t == JV_STR ? k_str_methods : self.t == JV_DICT ? k_dict_methods : NULL;
    for (; m && *m; m++)
        if (!strcmp(*m, name)) return 1;
    return 0;
}

static int dict_method(jrt *r, const jdict *d, const char *name, const jv *a0, const jv *a1, jv *out)
{
    if (!strcmp(name, "get")) {
        if (!a0) return jrt_fail(r, TM_ERR_INPUT, "get expected at least 1 argument");
        const jv *v = a0->t == JV_STR ? jdict_get(d, a0->u.s->s, a0->u.s->n) : NULL;
        *out = v ? *v : a1 ? *a1 : jv_none();
        return 0;
    }
    jlist *l = jlist_new(jrt_arena(r), d->n);
    if (!l) return jrt_oom(r);
    for (size_t i = 0; i < d->n; i++) {
        if (name[0] == 'k') l->v[i] = jv_str(d->k[i]);
        else if (name[0] == 'v') l->v[i] = d->v[i];
        else {
            jlist *p = jlist_new(jrt_arena(r), 2);
            if (!p) return jrt_oom(r);
            p->tuple = 1;
            p->v[0] = jv_str(d->k[i]);
            p->v[1] = d->v[i];
            l->v[i] = (jv){JV_LIST, {.l = p}};
        }
    }
    out->t = JV_LIST;
    out->u.l = l;
    return 0;
}

static int char_class(const jstr *s, int kind)
{
    if (!s->n) return 0;
    for (size_t i = 0; i < s->n;) {
        uint32_t c;
        i += ju8_dec((const unsigned char *)s->s + i, s->n - i, &c);
        utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
        int ok = kind == 'd' ? k == UTF8PROC_CATEGORY_ND
                 : kind == 's' ? ju8_space(c)
                               : (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO);
        if (!ok) return 0;
    }
    return 1;
}

int jlib_method(jrt *r, jv self, const char *name, const jv *args, size_t n, const jstr *const *kwn, const jv *kwv,
                size_t nk, jv *out)
{
    if (self.t == JV_LOOP) { /* loop.cycle(a, b, ...) */
        if (!n) return jrt_fail(r, TM_ERR_INPUT, "no items for cycling given");
        *out = args[self.u.loop->i % n];
        return 0;
    }
    const jv *a0 = jlib_arg(args, n, kwn, kwv, nk, 0, NULL), *a1 = jlib_arg(args, n, kwn, kwv, nk, 1, NULL);
    if (self.t == JV_DICT) return dict_method(r, self.u.d, name, a0, a1, out);
    const jstr *s = self.u.s;
    int res;
    if (!strcmp(name, "strip")) return jstr_strip(r, s, a0, 1, 1, out);
    if (!strcmp(name, "lstrip")) return jstr_strip(r, s, a0, 1, 0, out);
    if (!strcmp(name, "rstrip")) return jstr_strip(r, s, a0, 0, 1, out);
    if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
        if (affix(r, s, a0, name[0] == 'e', &res)) return -1;
        *out = jv_bool(res);
        return 0;
    }
    if (!strcmp(name, "split"))
        return split(r, s, jlib_arg(args, n, kwn, kwv, nk, 0, "sep"), jlib_arg(args, n, kwn, kwv, nk, 1, "maxsplit"),
                     out);
    if (!strcmp(name, "replace")) {
        const jv *c = jlib_arg(args, n, kwn, kwv, nk, 2, "count");
        if (!a0 || !a1 || a0->t != JV_STR || a1->t != JV_STR || (c && c->t != JV_INT))
            return jrt_fail(r, TM_ERR_INPUT, "replace(old, new[, count]) needs strings");
        return jstr_replace(r, s, a0->u.s, a1->u.s, c ? c->u.i : -1, out);
    }
    if (!strcmp(name, "upper")) return jstr_case(r, s, 'U', out);
    if (!strcmp(name, "lower")) return jstr_case(r, s, 'L', out);
    if (!strcmp(name, "title")) return jstr_case(r, s, 'T', out);
    if (!strcmp(name, "capitalize")) return jstr_case(r, s, 'C', out);
    if (!strcmp(name, "isdigit") || !strcmp(name, "isspace") || !strcmp(name, "isalpha")) {
        *out = jv_bool(char_class(s, name[2]));
        return 0;
    }
    if (!a0 || (a0->t != JV_STR && strcmp(name, "join")))
        return jrt_fail(r, TM_ERR_INPUT, "%s() needs a string argument", name);
    if (!strcmp(name, "find") || !strcmp(name, "count")) {
        const jstr *x = a0->u.s;
        int64_t cnt = 0, pos = -1;
        for (size_t i = 0; i + x->n <= s->n;) {
            const char *p = memmem(s->s + i, s->n - i, x->s, x->n);
            if (!p) break;
            if (pos < 0) pos = (int64_t)ju8_len(s->s, (size_t)(p - s->s));
            cnt++;
            i = (size_t)(p - s->s) + (x->n ? x->n : 1);
            if (name[0] == 'f') break;
        }
        *out = jv_int(name[0] == 'f' ? pos : cnt);
        return 0;
    }
    /* join */
    if (a0->t != JV_LIST) return jrt_fail(r, TM_ERR_INPUT, "join() needs a list of strings");
    tm_buf b;
    tm_buf_init(&b);
    for (size_t i = 0; i < a0->u.l->n; i++) {
        jv e = a0->u.l->v[i];
        if (e.t != JV_STR) {
            tm_buf_free(&b);
            return jrt_fail(r, TM_ERR_INPUT, "sequence item %zu: expected str instance, %s found", i, jv_type_name(e));
        }
        if ((i && tm_buf_append(&b, s->s, s->n)) || tm_buf_append(&b, e.u.s->s, e.u.s->n)) {
            tm_buf_free(&b);
            return jrt_oom(r);
        }
    }
    int rc = 0;
    *out = mkstr(r, b.data ? b.data : "", b.len, &rc);
    tm_buf_free(&b);
    return rc;
}
