/* jinja_expr.c — expression evaluation: names, attribute/item access and
 * slicing with Python/Jinja semantics, operators, comparisons, filters and
 * tests (their implementations: jinja_lib.c). */
#include "template/jinja_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- attribute / item access ---- */

static int loop_attr(jrt *r, jloop *l, const char *k, jv *out)
{
    size_t n = l->items->n, i = l->i;
    if (!strcmp(k, "index")) *out = jv_int((int64_t)i + 1);
    else if (!strcmp(k, "index0")) *out = jv_int((int64_t)i);
    else if (!strcmp(k, "revindex")) *out = jv_int((int64_t)(n - i));
    else if (!strcmp(k, "revindex0")) *out = jv_int((int64_t)(n - i - 1));
    else if (!strcmp(k, "first")) *out = jv_bool(i == 0);
    else if (!strcmp(k, "last")) *out = jv_bool(i + 1 == n);
    else if (!strcmp(k, "length")) *out = jv_int((int64_t)n);
    else if (!strcmp(k, "depth")) *out = jv_int(l->depth0 + 1);
    else if (!strcmp(k, "depth0")) *out = jv_int(l->depth0);
    else if (!strcmp(k, "previtem")) *out = i > 0 ? l->items->v[i - 1] : jv_undef(NULL);
    else if (!strcmp(k, "nextitem")) *out = i + 1 < n ? l->items->v[i + 1] : jv_undef(NULL);
    else if (!strcmp(k, "cycle")) {
        jmethod *m = ja_alloc(&r->ar, sizeof *m);
        if (!m) return jrt_oom(r);
        m->self = (jv){JV_LOOP, {.loop = l}};
        m->name = "cycle";
        out->t = JV_METHOD;
        out->u.bm = m;
    } else *out = jv_undef(NULL);
    return 0;
}

static int bound(jrt *r, jv self, const char *name, jv *out)
{
    jmethod *m = ja_alloc(&r->ar, sizeof *m);
    if (!m) return jrt_oom(r);
    m->self = self;
    m->name = name;
    out->t = JV_METHOD;
    out->u.bm = m;
    return 0;
}

/* obj.name (attribute first: dict methods win over keys, as in Python) */
int jrt_getattr(jrt *r, jv obj, const jstr *name, jv *out)
{
    *out = jv_undef(name);
    switch (obj.t) {
    case JV_UNDEF: return jrt_undefined(r, obj);
    case JV_LOOP: return loop_attr(r, obj.u.loop, name->s, out);
    case JV_NS: {
        jv *v = jdict_get(obj.u.d, name->s, name->n);
        if (v) *out = *v;
        return 0;
    }
    case JV_DICT: {
        if (jlib_has_method(obj, name->s)) return bound(r, obj, name->s, out);
        jv *v = jdict_get(obj.u.d, name->s, name->n);
        if (v) *out = *v;
        return 0;
    }
    case JV_STR:
        if (jlib_has_method(obj, name->s)) return bound(r, obj, name->s, out);
        return 0;
    default: return 0;
    }
}

static int index_of(int64_t i, size_t n, size_t *out)
{
    if (i < 0) i += (int64_t)n;
    if (i < 0 || (uint64_t)i >= n) return -1;
    *out = (size_t)i;
    return 0;
}

/* obj[key] (item first, then attribute for string keys) */
int jrt_getitem(jrt *r, jv obj, jv key, jv *out)
{
    *out = jv_undef(NULL);
    if (obj.t == JV_UNDEF) return jrt_undefined(r, obj);
    if ((obj.t == JV_DICT || obj.t == JV_NS) && key.t == JV_STR) {
        jv *v = jdict_get(obj.u.d, key.u.s->s, key.u.s->n);
        if (v) { *out = *v; return 0; }
    }
    if ((key.t == JV_INT || key.t == JV_BOOL) && (obj.t == JV_LIST || obj.t == JV_STR)) {
        size_t i;
        if (obj.t == JV_LIST) {
            if (!index_of(key.u.i, obj.u.l->n, &i)) *out = obj.u.l->v[i];
            return 0;
        }
        const jstr *s = obj.u.s;
        if (!index_of(key.u.i, ju8_len(s->s, s->n), &i)) {
            size_t a = ju8_off(s->s, s->n, i), b = ju8_off(s->s, s->n, i + 1);
            const jstr *c = jstr_new(&r->ar, s->s + a, b - a);
            if (!c) return jrt_oom(r);
            *out = jv_str(c);
        }
        return 0;
    }
    if (key.t == JV_STR) return jrt_getattr(r, obj, key.u.s, out);
    return 0;
}

static int slice_bound(jrt *r, jv v, int64_t *out, int *present)
{
    *present = 0;
    if (v.t == JV_NONE || v.t == JV_UNDEF) return 0;
    if (v.t != JV_INT && v.t != JV_BOOL) return jrt_fail(r, TM_ERR_INPUT, "slice indices must be integers");
    *out = v.u.i;
    *present = 1;
    return 0;
}

/* Python's slice.indices + the element walk, over n elements */
int jrt_getitem_slice(jrt *r, jv obj, jv a, jv b, jv c, jv *out)
{
    int64_t st = 1, lo = 0, hi = 0;
    int ps, pl, ph;
    if (slice_bound(r, c, &st, &ps) || slice_bound(r, a, &lo, &pl) || slice_bound(r, b, &hi, &ph)) return -1;
    if (!ps) st = 1;
    if (st == 0) return jrt_fail(r, TM_ERR_INPUT, "slice step cannot be zero");
    if (obj.t == JV_UNDEF) return jrt_undefined(r, obj);
    if (obj.t != JV_LIST && obj.t != JV_STR)
        return jrt_fail(r, TM_ERR_INPUT, "'%s' object is not subscriptable", jv_type_name(obj));
    const jstr *s = obj.t == JV_STR ? obj.u.s : NULL;
    int64_t n = (int64_t)(s ? ju8_len(s->s, s->n) : obj.u.l->n);
    if (!pl) lo = st > 0 ? 0 : n - 1;
    else if (lo < 0) lo = lo + n < 0 ? (st > 0 ? 0 : -1) : lo + n;
    else if (lo >= n) lo = st > 0 ? n : n - 1;
    if (!ph) hi = st > 0 ? n : -1;
    else if (hi < 0) hi = hi + n < 0 ? (st > 0 ? 0 : -1) : hi + n;
    else if (hi >= n) hi = st > 0 ? n : n - 1;
    int64_t cnt = st > 0 ? (hi > lo ? (hi - lo + st - 1) / st : 0) : (lo > hi ? (lo - hi - st - 1) / (-st) : 0);
    if (!s) {
        jlist *l = jlist_new(&r->ar, (size_t)cnt);
        if (!l) return jrt_oom(r);
        l->tuple = obj.u.l->tuple;
        for (int64_t k = 0; k < cnt; k++) l->v[k] = obj.u.l->v[lo + k * st];
        out->t = JV_LIST;
        out->u.l = l;
        return 0;
    }
    size_t *offs = malloc(((size_t)n + 1) * sizeof *offs); /* code point -> byte offset */
    char *buf = malloc(s->n + 1);
    if (!offs || !buf) { free(offs); free(buf); return jrt_oom(r); }
    for (int64_t k = 0, o = 0; k <= n; k++) {
        offs[k] = (size_t)o;
        uint32_t cp;
        if (k < n) o += (int64_t)ju8_dec((const unsigned char *)s->s + o, s->n - (size_t)o, &cp);
    }
    size_t bl = 0;
    for (int64_t k = 0; k < cnt; k++) {
        int64_t i = lo + k * st;
        memcpy(buf + bl, s->s + offs[i], offs[i + 1] - offs[i]);
        bl += offs[i + 1] - offs[i];
    }
    const jstr *res = jstr_new(&r->ar, buf, bl);
    free(offs);
    free(buf);
    if (!res) return jrt_oom(r);
    *out = jv_str(res);
    return 0;
}

/* ---- operators ---- */

static int is_int(jv v) { return v.t == JV_INT || v.t == JV_BOOL; }
static int is_num(jv v) { return is_int(v) || v.t == JV_FLOAT; }
static double fnum(jv v) { return v.t == JV_FLOAT ? v.u.f : (double)v.u.i; }

static int type_err(jrt *r, int op, jv a, jv b)
{
    const char *o = op == 'F' ? "//" : op == 'P' ? "**" : NULL;
    char s[2] = {(char)op, 0};
    return jrt_fail(r, TM_ERR_INPUT, "unsupported operand type(s) for %s: '%s' and '%s'", o ? o : s,
                    jv_type_name(a), jv_type_name(b));
}

static int concat_str(jrt *r, const jstr *a, const jstr *b, jv *out)
{
    if (a->n > SIZE_MAX / 2 || b->n > SIZE_MAX / 2) return jrt_oom(r);
    jstr *s = ja_alloc(jrt_arena(r), sizeof *s + a->n + b->n + 1);
    if (!s) return jrt_oom(r);
    memcpy(s->s, a->s, a->n);
    memcpy(s->s + a->n, b->s, b->n);
    s->n = a->n + b->n;
    s->s[s->n] = 0;
    *out = jv_str(s);
    return 0;
}

static int repeat(jrt *r, jv seq, int64_t k, jv *out)
{
    if (k < 0) k = 0;
    size_t unit = seq.t == JV_STR ? seq.u.s->n : seq.u.l->n;
    if (unit && (uint64_t)k > (SIZE_MAX / 4) / unit) return jrt_oom(r);
    size_t total = unit * (size_t)k;
    if (seq.t == JV_STR) {
        jstr *s = ja_alloc(jrt_arena(r), sizeof *s + total + 1);
        if (!s) return jrt_oom(r);
        for (int64_t i = 0; i < k; i++) memcpy(s->s + (size_t)i * unit, seq.u.s->s, unit);
        s->n = total;
        *out = jv_str(s);
        return 0;
    }
    jlist *l = jlist_new(jrt_arena(r), total);
    if (!l) return jrt_oom(r);
    for (size_t i = 0; i < total; i++) l->v[i] = seq.u.l->v[i % unit];
    out->t = JV_LIST;
    out->u.l = l;
    return 0;
}

static int binop(jrt *r, int op, jv a, jv b, jv *out)
{
    if (op == '~') {
        const jstr *x, *y;
        if (jrt_tostr(r, a, &x) || jrt_tostr(r, b, &y)) return -1;
        return concat_str(r, x, y, out);
    }
    if (op == '+' && a.t == JV_STR && b.t == JV_STR) return concat_str(r, a.u.s, b.u.s, out);
    if (op == '+' && a.t == JV_LIST && b.t == JV_LIST) {
        jlist *l = jlist_new(jrt_arena(r), a.u.l->n + b.u.l->n);
        if (!l) return jrt_oom(r);
        if (a.u.l->n) memcpy(l->v, a.u.l->v, a.u.l->n * sizeof(jv));
        if (b.u.l->n) memcpy(l->v + a.u.l->n, b.u.l->v, b.u.l->n * sizeof(jv));
        out->t = JV_LIST;
        out->u.l = l;
        return 0;
    }
    if (op == '*' && (a.t == JV_STR || a.t == JV_LIST) && is_int(b)) return repeat(r, a, b.u.i, out);
    if (op == '*' && (b.t == JV_STR || b.t == JV_LIST) && is_int(a)) return repeat(r, b, a.u.i, out);
    if (!is_num(a) || !is_num(b)) return type_err(r, op, a, b);
    if (is_int(a) && is_int(b) && op != '/' && op != 'P') {
        int64_t x = a.u.i, y = b.u.i, z;
        switch (op) {
        case '+': if (__builtin_add_overflow(x, y, &z)) goto big; break;
        case '-': if (__builtin_sub_overflow(x, y, &z)) goto big; break;
        case '*': if (__builtin_mul_overflow(x, y, &z)) goto big; break;
        case 'F': case '%':
            if (y == 0) return jrt_fail(r, TM_ERR_INPUT, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) goto big;
            z = op == 'F' ? x / y - ((x % y != 0) && ((x < 0) != (y < 0))) : x % y;
            if (op == '%' && z != 0 && ((z < 0) != (y < 0))) z += y;
            break;
        default: return type_err(r, op, a, b);
        }
        *out = jv_int(z);
        return 0;
    big:
        return jrt_fail(r, TM_ERR_INPUT, "integer overflow (beyond 64 bits)");
    }
    if (op == 'P' && is_int(a) && is_int(b) && b.u.i >= 0) {
        int64_t z = 1, x = a.u.i;
        for (int64_t e = b.u.i; e > 0; e--)
            if (__builtin_mul_overflow(z, x, &z)) return jrt_fail(r, TM_ERR_INPUT, "integer overflow (beyond 64 bits)");
            else if (z == 0 || z == 1) break;
        *out = jv_int(z);
        return 0;
    }
    double x = fnum(a), y = fnum(b), z;
    switch (op) {
    case '+': z = x + y; break;
    case '-': z = x - y; break;
    case '*': z = x * y; break;
    case '/':
        if (y == 0) return jrt_fail(r, TM_ERR_INPUT, "division by zero");
        z = x / y;
        break;
    case 'F': case '%': { /* CPython's float_divmod */
        if (y == 0) return jrt_fail(r, TM_ERR_INPUT, "float division or modulo by zero");
        double mod = fmod(x, y), div = (x - mod) / y;
        if (mod != 0) {
            if ((y < 0) != (mod < 0)) { mod += y; div -= 1.0; }
        } else {
            mod = copysign(0.0, y);
        }
        double fl = floor(div);
        if (div != 0) { if (div - fl > 0.5) fl += 1.0; }
        else fl = copysign(0.0, x / y);
        z = op == 'F' ? fl : mod;
        break;
    }
    case 'P': z = pow(x, y); break;
    default: return type_err(r, op, a, b);
    }
    *out = jv_float(z);
    return 0;
}

int jrt_contains(jrt *r, jv hay, jv needle, int *out)
{
    *out = 0;
    switch (hay.t) {
    case JV_STR:
        if (needle.t != JV_STR)
            return jrt_fail(r, TM_ERR_INPUT, "'in <string>' requires string as left operand, not %s",
                            jv_type_name(needle));
        *out = needle.u.s->n == 0 || memmem(hay.u.s->s, hay.u.s->n, needle.u.s->s, needle.u.s->n) != NULL;
        return 0;
    case JV_LIST:
        for (size_t i = 0; i < hay.u.l->n && !*out; i++) *out = jv_equal(hay.u.l->v[i], needle);
        return 0;
    case JV_DICT: case JV_NS:
        *out = needle.t == JV_STR && jdict_get(hay.u.d, needle.u.s->s, needle.u.s->n);
        return 0;
    case JV_UNDEF: return 0;
    default: return jrt_fail(r, TM_ERR_INPUT, "argument of type '%s' is not iterable", jv_type_name(hay));
    }
}

static int cmp_op(jrt *r, const char *op, jv a, jv b, int *res)
{
    if (!strcmp(op, "==")) { *res = jv_equal(a, b); return 0; }
    if (!strcmp(op, "!=")) { *res = !jv_equal(a, b); return 0; }
    if (!strcmp(op, "in")) return jrt_contains(r, b, a, res);
    if (!strcmp(op, "notin")) {
        if (jrt_contains(r, b, a, res)) return -1;
        *res = !*res;
        return 0;
    }
    int c;
    if (jv_compare(a, b, &c))
        return jrt_fail(r, TM_ERR_INPUT, "'%s' not supported between instances of '%s' and '%s'", op,
                        jv_type_name(a), jv_type_name(b));
    *res = op[0] == '<' ? (op[1] ? c <= 0 : c < 0) : (op[1] ? c >= 0 : c > 0);
    return 0;
}

/* ---- eval ---- */

static int eval_list(jrt *r, const jnode *n, jscope *s, jv *out)
{
    jlist *l = jlist_new(jrt_arena(r), n->args.n);
    if (!l) return jrt_oom(r);
    l->tuple = n->op;
    for (size_t i = 0; i < n->args.n; i++)
        if (jrt_eval(r, n->args.v[i], s, &l->v[i])) return -1;
    out->t = JV_LIST;
    out->u.l = l;
    return 0;
}

static int eval_dict(jrt *r, const jnode *n, jscope *s, jv *out)
{
    jdict *d = jdict_new(jrt_arena(r), n->args.n);
    if (!d) return jrt_oom(r);
    for (size_t i = 0; i < n->args.n; i++) {
        jv k, v;
        if (jrt_eval(r, n->args.v[i], s, &k) || jrt_eval(r, n->kwargs.v[i], s, &v)) return -1;
        if (k.t != JV_STR) return jrt_fail(r, TM_ERR_INPUT, "dict keys must be strings, not %s", jv_type_name(k));
        if (jdict_set(jrt_arena(r), d, k.u.s, v)) return jrt_oom(r);
    }
    out->t = JV_DICT;
    out->u.d = d;
    return 0;
}

static int eval_cmp(jrt *r, const jnode *n, jscope *s, jv *out)
{
    jv a;
    if (jrt_eval(r, n->args.v[0], s, &a)) return -1;
    for (size_t i = 0; i < n->nnames; i++) {
        jv b;
        int res;
        if (jrt_eval(r, n->args.v[i + 1], s, &b) || cmp_op(r, n->names[i]->s, a, b, &res)) return -1;
        if (!res) { *out = jv_bool(0); return 0; }
        a = b;
    }
    *out = jv_bool(1);
    return 0;
}

static int eval_filter_test(jrt *r, const jnode *n, jscope *s, jv *out)
{
    jv x, *pos, *kw;
    if (jrt_eval(r, n->a, s, &x) || jrt_eval_args(r, n, s, &pos, &kw)) return -1;
    r->line = n->line;
    if (n->k == N_FILTER) {
        int rc = jlib_filter(r, n->str->s, x, pos, n->args.n, n->names, kw, n->nnames, out);
        if (rc == 1) return jrt_fail(r, TM_ERR_INPUT, "no filter named '%s'", n->str->s);
        return rc;
    }
    int res = 0, rc = jlib_test(r, n->str->s, x, pos, n->args.n, &res);
    if (rc == 1) return jrt_fail(r, TM_ERR_INPUT, "no test named '%s'", n->str->s);
    if (rc) return -1;
    *out = jv_bool(n->op ? !res : res);
    return 0;
}

int jrt_eval(jrt *r, const jnode *n, jscope *s, jv *out)
{
    if (jrt_step(r, n)) return -1;
    jv a, b, c;
    switch (n->k) {
    case N_LIT: *out = n->lit; return 0;
    case N_NAME: *out = jrt_lookup(s, n->str); return 0;
    case N_ATTR: return jrt_eval(r, n->a, s, &a) || jrt_getattr(r, a, n->str, out) ? -1 : 0;
    case N_ITEM:
        return jrt_eval(r, n->a, s, &a) || jrt_eval(r, n->b, s, &b) || jrt_getitem(r, a, b, out) ? -1 : 0;
    case N_SLICE:
        b = c = jv_none();
        jv d = jv_none();
        if (jrt_eval(r, n->a, s, &a) || (n->b && jrt_eval(r, n->b, s, &b)) || (n->c && jrt_eval(r, n->c, s, &c)) ||
            (n->d && jrt_eval(r, n->d, s, &d)))
            return -1;
        return jrt_getitem_slice(r, a, b, c, d, out);
    case N_CALL: {
        jv *pos, *kw;
        if (jrt_eval(r, n->a, s, &a) || jrt_eval_args(r, n, s, &pos, &kw)) return -1;
        r->line = n->line;
        return jrt_call(r, a, pos, n->args.n, n->names, kw, n->nnames, out);
    }
    case N_FILTER: case N_TEST: return eval_filter_test(r, n, s, out);
    case N_NEG: case N_POS:
        if (jrt_eval(r, n->a, s, &a)) return -1;
        if (!is_num(a))
            return jrt_fail(r, TM_ERR_INPUT, "bad operand type for unary %c: '%s'", n->k == N_NEG ? '-' : '+',
                            jv_type_name(a));
        if (n->k == N_POS) *out = a.t == JV_BOOL ? jv_int(a.u.i) : a;
        else if (a.t == JV_FLOAT) *out = jv_float(-a.u.f);
        else if (a.u.i == INT64_MIN) return jrt_fail(r, TM_ERR_INPUT, "integer overflow (beyond 64 bits)");
        else *out = jv_int(-a.u.i);
        return 0;
    case N_NOT:
        if (jrt_eval(r, n->a, s, &a)) return -1;
        *out = jv_bool(!jv_truthy(a));
        return 0;
    case N_AND: case N_OR:
        if (jrt_eval(r, n->a, s, &a)) return -1;
        if (jv_truthy(a) == (n->k == N_OR)) { *out = a; return 0; }
        return jrt_eval(r, n->b, s, out);
    case N_BIN: return jrt_eval(r, n->a, s, &a) || jrt_eval(r, n->b, s, &b) || binop(r, n->op, a, b, out) ? -1 : 0;
    case N_CMP: return eval_cmp(r, n, s, out);
    case N_COND:
        if (jrt_eval(r, n->b, s, &c)) return -1;
        if (jv_truthy(c)) return jrt_eval(r, n->a, s, out);
        if (n->c) return jrt_eval(r, n->c, s, out);
        *out = jv_undef(NULL);
        return 0;
    case N_LIST: return eval_list(r, n, s, out);
    case N_DICT: return eval_dict(r, n, s, out);
    default: return jrt_fail(r, TM_ERR_INTERNAL, "bad expression node %d", (int)n->k);
    }
}
