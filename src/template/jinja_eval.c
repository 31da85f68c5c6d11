/* jinja_eval.c — rendering: statements, expressions, scopes, macros and the
 * sandbox limits (see jinja.h). Filters, tests and methods: jinja_lib.c.
 *
 * Scopes follow Jinja's: a for loop's body gets a fresh scope per
 * iteration, a macro call a scope whose parent is the scope the macro was
 * defined in; if/filter/set blocks use the enclosing scope. Output goes to
 * the current sink, which set/filter blocks and macro calls swap for a
 * capture buffer. */
#include "template/jinja_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int jrt_fail(jrt *r, tm_status st, const char *fmt, ...)
{
    if (r->st) return -1;
    char m[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    r->st = st;
    tm_errf(r->err, st, "line %d: %s", r->line, m);
    return -1;
}

jarena *jrt_arena(jrt *r) { return &r->ar; }
int jrt_line(jrt *r) { return r->line; }

int jrt_oom(jrt *r) { return jrt_fail(r, TM_ERR_NOMEM, "out of memory (or over the render's memory limit)"); }

int jrt_step(jrt *r, const jnode *n)
{
    if (n) r->line = n->line;
    if (++r->steps > r->lim.max_steps)
        return jrt_fail(r, TM_ERR_INPUT, "template ran more than %llu steps", (unsigned long long)r->lim.max_steps);
    return 0;
}

static int emit(jrt *r, const char *s, size_t n)
{
    if (n > r->lim.max_output || r->sink->len > r->lim.max_output - n)
        return jrt_fail(r, TM_ERR_INPUT, "output larger than %zu bytes", r->lim.max_output);
    return tm_buf_append(r->sink, s, n) ? jrt_oom(r) : 0;
}

int jrt_tostr(jrt *r, jv v, const jstr **out)
{
    if (v.t == JV_STR) { *out = v.u.s; return 0; }
    tm_buf b;
    tm_buf_init(&b);
    int rc = jv_write_str(&b, v);
    *out = rc ? NULL : jstr_new(&r->ar, b.data ? b.data : "", b.len);
    tm_buf_free(&b);
    return *out ? 0 : jrt_oom(r);
}

/* ---- scopes ---- */

static jscope *scope_new(jrt *r, jscope *parent)
{
    jscope *s = ja_alloc(&r->ar, sizeof *s);
    if (!s || !(s->vars = jdict_new(&r->ar, 4))) { jrt_oom(r); return NULL; }
    s->parent = parent;
    return s;
}

static int bind(jrt *r, jscope *s, const jstr *name, jv v)
{
    return jdict_set(&r->ar, s->vars, name, v) ? jrt_oom(r) : 0;
}

jv jrt_lookup(jscope *s, const jstr *name)
{
    for (; s; s = s->parent) {
        jv *v = jdict_get(s->vars, name->s, name->n);
        if (v) return *v;
    }
    int fn = jlib_global(name->s);
    if (fn) { jv f = {JV_FUNC, {.i = fn}}; return f; }
    return jv_undef(name);
}

int jrt_undefined(jrt *r, jv v)
{
    return jrt_fail(r, TM_ERR_INPUT, "'%s' is undefined", v.u.s ? v.u.s->s : "value");
}

static int exec_body(jrt *r, const jnode *b, jscope *s);

/* ---- calls ---- */

int jrt_eval_args(jrt *r, const jnode *n, jscope *s, jv **pos, jv **kw)
{
    *pos = ja_alloc(&r->ar, (n->args.n + 1) * sizeof(jv));
    *kw = ja_alloc(&r->ar, (n->kwargs.n + 1) * sizeof(jv));
    if (!*pos || !*kw) return jrt_oom(r);
    for (size_t i = 0; i < n->args.n; i++)
        if (jrt_eval(r, n->args.v[i], s, &(*pos)[i])) return -1;
    for (size_t i = 0; i < n->kwargs.n; i++)
        if (jrt_eval(r, n->kwargs.v[i], s, &(*kw)[i])) return -1;
    return 0;
}

static int call_macro(jrt *r, jmacro *m, const jv *args, size_t n, const jstr *const *kwn, const jv *kwv,
                      size_t nk, jv *out)
{
    const jnode *d = m->def;
    if (n > d->nnames)
        return jrt_fail(r, TM_ERR_INPUT, "macro '%s' takes not more than %zu argument(s)",
                        d->str ? d->str->s : "caller", d->nnames);
    if (r->depth >= r->lim.max_depth)
        return jrt_fail(r, TM_ERR_INPUT, "macro calls nested deeper than %d", r->lim.max_depth);
    jscope *sc = scope_new(r, m->closure);
    if (!sc) return -1;
    for (size_t k = 0; k < nk; k++) {
        size_t p = 0;
        while (p < d->nnames && strcmp(d->names[p]->s, kwn[k]->s)) p++;
        if (p == d->nnames && strcmp(kwn[k]->s, "caller"))
            return jrt_fail(r, TM_ERR_INPUT, "macro '%s' has no parameter '%s'", d->str ? d->str->s : "caller",
                            kwn[k]->s);
        if (p < n) return jrt_fail(r, TM_ERR_INPUT, "macro got multiple values for '%s'", kwn[k]->s);
        if (bind(r, sc, kwn[k], kwv[k])) return -1;
    }
    for (size_t p = 0; p < d->nnames; p++) {
        if (p < n) {
            if (bind(r, sc, d->names[p], args[p])) return -1;
        } else if (!jdict_get(sc->vars, d->names[p]->s, d->names[p]->n)) {
            jv dv = jv_undef(d->names[p]);
            if (d->kwargs.v[p] && jrt_eval(r, d->kwargs.v[p], sc, &dv)) return -1;
            if (bind(r, sc, d->names[p], dv)) return -1;
        }
    }
    if (m->caller.t != JV_UNDEF) {
        const jstr *cn = jstr_c(&r->ar, "caller");
        if (!cn) return jrt_oom(r);
        if (bind(r, sc, cn, m->caller)) return -1;
    }
    tm_buf cap, *saved = r->sink;
    tm_buf_init(&cap);
    r->sink = &cap;
    r->depth++;
    int ctl = r->ctl, line = r->line;
    int rc = exec_body(r, d->b, sc);
    r->ctl = ctl;
    r->line = line;
    r->depth--;
    r->sink = saved;
    const jstr *res = rc ? NULL : jstr_new(&r->ar, cap.data ? cap.data : "", cap.len);
    tm_buf_free(&cap);
    if (rc) return -1;
    if (!res) return jrt_oom(r);
    *out = jv_str(res);
    return 0;
}

int jrt_call(jrt *r, jv fn, const jv *args, size_t n, const jstr *const *kwn, const jv *kwv, size_t nk, jv *out)
{
    switch (fn.t) {
    case JV_MACRO: return call_macro(r, fn.u.m, args, n, kwn, kwv, nk, out);
    case JV_FUNC: return jlib_call_global(r, (int)fn.u.i, args, n, kwn, kwv, nk, out);
    case JV_METHOD: return jlib_method(r, fn.u.bm->self, fn.u.bm->name, args, n, kwn, kwv, nk, out);
    case JV_UNDEF: return jrt_undefined(r, fn);
    default: return jrt_fail(r, TM_ERR_INPUT, "'%s' object is not callable", jv_type_name(fn));
    }
}


/* ---- statements ---- */

/* Run body b with its output captured into *out (a string in the arena). */
static int capture(jrt *r, const jnode *b, jscope *s, const jstr **out)
{
    tm_buf cap, *saved = r->sink;
    tm_buf_init(&cap);
    r->sink = &cap;
    int rc = exec_body(r, b, s);
    r->sink = saved;
    *out = rc ? NULL : jstr_new(&r->ar, cap.data ? cap.data : "", cap.len);
    tm_buf_free(&cap);
    if (rc) return -1;
    return *out ? 0 : jrt_oom(r);
}

/* Apply a filter chain built over NULL (set/filter blocks) to v. */
static int apply_chain(jrt *r, const jnode *f, jscope *s, jv v, jv *out)
{
    if (!f) { *out = v; return 0; }
    jv in;
    if (apply_chain(r, f->a, s, v, &in)) return -1;
    jv *pos, *kw;
    if (jrt_step(r, f) || jrt_eval_args(r, f, s, &pos, &kw)) return -1;
    int rc = jlib_filter(r, f->str->s, in, pos, f->args.n, f->names, kw, f->nnames, out);
    if (rc == 1) return jrt_fail(r, TM_ERR_INPUT, "no filter named '%s'", f->str->s);
    return rc;
}

static int unpack(jrt *r, const jnode *n, jscope *s, jv v)
{
    if (n->nnames == 1) return bind(r, s, n->names[0], v);
    if (v.t != JV_LIST)
        return jrt_fail(r, TM_ERR_INPUT, "cannot unpack a '%s' into %zu names", jv_type_name(v), n->nnames);
    if (v.u.l->n != n->nnames)
        return jrt_fail(r, TM_ERR_INPUT, "cannot unpack %zu values into %zu names", v.u.l->n, n->nnames);
    for (size_t i = 0; i < n->nnames; i++)
        if (bind(r, s, n->names[i], v.u.l->v[i])) return -1;
    return 0;
}

/* The items a for loop walks: list elements, dict keys, string characters. */
static int iter_items(jrt *r, jv v, const jlist **out)
{
    static const jlist empty = {0, NULL, 0};
    if (v.t == JV_UNDEF) { *out = &empty; return 0; }
    if (v.t == JV_LIST) { *out = v.u.l; return 0; }
    if (v.t == JV_DICT || v.t == JV_NS) {
        jlist *l = jlist_new(&r->ar, v.u.d->n);
        if (!l) return jrt_oom(r);
        for (size_t i = 0; i < l->n; i++) l->v[i] = jv_str(v.u.d->k[i]);
        *out = l;
        return 0;
    }
    if (v.t == JV_STR) {
        size_t n = ju8_len(v.u.s->s, v.u.s->n), o = 0;
        jlist *l = jlist_new(&r->ar, n);
        if (!l) return jrt_oom(r);
        for (size_t i = 0; i < n; i++) {
            uint32_t c;
            size_t k = ju8_dec((const unsigned char *)v.u.s->s + o, v.u.s->n - o, &c);
            const jstr *ch = jstr_new(&r->ar, v.u.s->s + o, k);
            if (!ch) return jrt_oom(r);
            l->v[i] = jv_str(ch);
            o += k;
        }
        *out = l;
        return 0;
    }
    return jrt_fail(r, TM_ERR_INPUT, "'%s' object is not iterable", jv_type_name(v));
}

static int exec_for(jrt *r, const jnode *n, jscope *s)
{
    jv it;
    const jlist *items = NULL;
    if (jrt_eval(r, n->a, s, &it) || iter_items(r, it, &items)) return -1;
    if (n->d) { /* {% for x in xs if cond %}: loop.* count only the kept items */
        jlist *kept = jlist_new(&r->ar, items->n);
        if (!kept) return jrt_oom(r);
        kept->n = 0;
        for (size_t i = 0; i < items->n; i++) {
            jscope *t = scope_new(r, s);
            jv c;
            if (!t || jrt_step(r, n) || unpack(r, n, t, items->v[i]) || jrt_eval(r, n->d, t, &c)) return -1;
            if (jv_truthy(c)) kept->v[kept->n++] = items->v[i];
        }
        items = kept;
    }
    jloop *lp = ja_alloc(&r->ar, sizeof *lp);
    const jstr *loopname = jstr_c(&r->ar, "loop");
    if (!lp || !loopname) return jrt_oom(r);
    lp->items = items;
    lp->depth0 = 0; /* depth counts recursive loops only, which are not supported */
    for (size_t i = 0; i < items->n; i++) {
        lp->i = i;
        jscope *t = scope_new(r, s);
        if (!t || jrt_step(r, n) || unpack(r, n, t, items->v[i]) || bind(r, t, loopname, (jv){JV_LOOP, {.loop = lp}}))
            return -1;
        if (exec_body(r, n->b, t)) return -1;
        int ctl = r->ctl;
        r->ctl = 0;
        if (ctl == CTL_BREAK) break;
    }
    if (items->n == 0 && n->c) return exec_body(r, n->c, s);
    return 0;
}

static int exec_set(jrt *r, const jnode *n, jscope *s)
{
    jv v;
    if (n->k == S_SETBLOCK) {
        const jstr *text;
        if (capture(r, n->b, s, &text) || apply_chain(r, n->a, s, jv_str(text), &v)) return -1;
        return bind(r, s, n->names[0], v);
    }
    if (jrt_eval(r, n->a, s, &v)) return -1;
    if (!n->op) return unpack(r, n, s, v);
    jv ns = jrt_lookup(s, n->names[0]);
    if (ns.t != JV_NS)
        return jrt_fail(r, TM_ERR_INPUT, "cannot assign attribute '%s' on '%s' (a %s, not a namespace)", n->str->s,
                        n->names[0]->s, jv_type_name(ns));
    return jdict_set(&r->ar, ns.u.d, n->str, v) ? jrt_oom(r) : 0;
}

static int exec_call_block(jrt *r, const jnode *n, jscope *s)
{
    const jnode *c = n->a;
    jv fn, *pos, *kw, res;
    if (jrt_eval(r, c->a, s, &fn) || jrt_eval_args(r, c, s, &pos, &kw)) return -1;
    if (fn.t != JV_MACRO) return jrt_fail(r, TM_ERR_INPUT, "{%% call %%} needs a macro, got '%s'", jv_type_name(fn));
    jmacro *caller = ja_alloc(&r->ar, sizeof *caller), *m = ja_alloc(&r->ar, sizeof *m);
    if (!caller || !m) return jrt_oom(r);
    caller->def = n;
    caller->closure = s;
    caller->caller = jv_undef(NULL);
    *m = *fn.u.m;
    m->caller = (jv){JV_MACRO, {.m = caller}};
    if (call_macro(r, m, pos, c->args.n, c->names, kw, c->nnames, &res)) return -1;
    return emit(r, res.u.s->s, res.u.s->n);
}

static int exec_node(jrt *r, const jnode *n, jscope *s)
{
    if (jrt_step(r, n)) return -1;
    switch (n->k) {
    case S_TEXT: return emit(r, n->str->s, n->str->n);
    case S_OUT: {
        jv v;
        const jstr *t;
        if (jrt_eval(r, n->a, s, &v) || jrt_tostr(r, v, &t)) return -1;
        return emit(r, t->s, t->n);
    }
    case S_IF: {
        jv c;
        if (jrt_eval(r, n->a, s, &c)) return -1;
        if (jv_truthy(c)) return exec_body(r, n->b, s);
        if (!n->c) return 0;
        return n->c->k == S_IF ? exec_node(r, n->c, s) : exec_body(r, n->c, s);
    }
    case S_FOR: return exec_for(r, n, s);
    case S_SET: case S_SETBLOCK: return exec_set(r, n, s);
    case S_MACRO: {
        jmacro *m = ja_alloc(&r->ar, sizeof *m);
        if (!m) return jrt_oom(r);
        m->def = n;
        m->closure = s;
        m->caller = jv_undef(NULL);
        return bind(r, s, n->str, (jv){JV_MACRO, {.m = m}});
    }
    case S_CALLBLOCK: return exec_call_block(r, n, s);
    case S_FILTERBLOCK: {
        const jstr *text;
        jv v;
        if (capture(r, n->b, s, &text) || apply_chain(r, n->a, s, jv_str(text), &v) || jrt_tostr(r, v, &text))
            return -1;
        return emit(r, text->s, text->n);
    }
    case S_BREAK: r->ctl = CTL_BREAK; return 0;
    case S_CONTINUE: r->ctl = CTL_CONTINUE; return 0;
    case S_BODY: return exec_body(r, n, s);
    default: return jrt_fail(r, TM_ERR_INTERNAL, "bad statement node %d", (int)n->k);
    }
}

static int exec_body(jrt *r, const jnode *b, jscope *s)
{
    for (size_t i = 0; i < b->args.n && !r->ctl; i++)
        if (exec_node(r, b->args.v[i], s)) return -1;
    return 0;
}

tm_status tm_jinja_render(const tm_jinja *t, const json_t *vars, const tm_jinja_limits *lim, tm_buf *out,
                          tm_err *err)
{
    if (!t || !out) return tm_errf(err, TM_ERR_INTERNAL, "tm_jinja_render: NULL template or output");
    if (vars && !json_is_object(vars)) return tm_errf(err, TM_ERR_INPUT, "chat template: variables must be an object");
    jrt r = {.sink = out, .err = err, .line = 1};
    if (lim) r.lim = *lim;
    if (!r.lim.max_output) r.lim.max_output = (size_t)16 << 20;
    if (!r.lim.max_memory) r.lim.max_memory = (size_t)256 << 20;
    if (!r.lim.max_steps) r.lim.max_steps = 50000000;
    if (!r.lim.max_depth) r.lim.max_depth = 64;
    r.ar.cap = r.lim.max_memory;
    size_t mark = out->len;
    /* the output limit counts this render's bytes only */
    r.lim.max_output = r.lim.max_output > SIZE_MAX - mark ? SIZE_MAX : r.lim.max_output + mark;
    jscope *g = scope_new(&r, NULL);
    int rc = g ? 0 : -1;
    if (!rc && vars) {
        const char *k;
        size_t kl;
        json_t *v;
        json_object_keylen_foreach((json_t *)vars, k, kl, v) {
            jv val;
            const jstr *ks = jstr_new(&r.ar, k, kl);
            int e = ks ? jv_from_json(&r.ar, v, 0, &val) : -1;
            if (e == -2) rc = jrt_fail(&r, TM_ERR_INPUT, "variable '%.64s' is nested deeper than %d", k, JV_MAX_DEPTH);
            else if (e) rc = jrt_oom(&r);
            else rc = bind(&r, g, ks, val);
            if (rc) break;
        }
    }
    if (!rc) {
        tm_buf *top = r.sink;
        rc = exec_body(&r, t->root, g);
        r.sink = top;
    }
    if (!rc && !out->data && tm_buf_reserve(out, 0)) rc = jrt_oom(&r);
    ja_free(&r.ar);
    if (rc) {
        out->len = mark;
        if (out->data) out->data[mark] = 0;
        return r.st ? r.st : TM_ERR_INTERNAL;
    }
    if (out->data) out->data[out->len] = 0;
    return TM_OK;
}
