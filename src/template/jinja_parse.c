/* jinja_parse.c — tokens -> AST, following jinja2.parser's grammar and
 * operator precedence (low to high): `x if c else y`, or, and, not,
 * comparisons (== != < > <= >= in, not in; chained), + -, ~, * / // %, **,
 * unary - +, then postfix ([...], .name, (...)) and filters / tests.
 *
 * Node layout per kind (jinja_int.h's jnode):
 *   N_LIT lit | N_NAME str | N_ATTR a.str | N_ITEM a[b] | N_SLICE a[b:c:d]
 *   N_CALL a(args, names=kwargs) | N_FILTER a|str(args, kw) (a NULL: the
 *   block's content) | N_TEST a is [not: op] str(args) | N_NEG/N_POS/N_NOT a
 *   N_BIN a op b | N_AND/N_OR a b | N_CMP args[0] names[i] args[i+1]
 *   N_COND a if b else c | N_LIST args (op 1: a jp_tuple) | N_DICT args: kwargs
 *   S_BODY args | S_TEXT str | S_OUT a | S_IF a b c | S_FOR names in a if d:
 *   b else c | S_SET names = a (op 1: names[0].str = a) | S_SETBLOCK names[0]
 *   a(filter chain) b | S_MACRO str(names=kwargs) b | S_CALLBLOCK a
 *   (names=kwargs) b | S_FILTERBLOCK a b | S_BREAK | S_CONTINUE
 */
#include "template/jinja_int.h"

#include <string.h>

#define MAX_NEST 128

const jtok *jp_cur(jps *P) { return &P->t->v[P->i]; }
const jtok *jp_peek(jps *P, size_t k)
{
    size_t j = P->i + k < P->t->n ? P->i + k : P->t->n - 1;
    return &P->t->v[j];
}

void *jp_fail(jps *P, const char *fmt, const char *arg)
{
    if (!P->st) {
        char m[300];
        snprintf(m, sizeof m, fmt, arg);
        P->st = tm_errf(P->err, TM_ERR_INPUT, "line %d: %s", jp_cur(P)->line, m);
    }
    return NULL;
}

void *jp_oom(jps *P)
{
    if (!P->st) P->st = tm_errf(P->err, TM_ERR_NOMEM, "chat template: out of memory");
    return NULL;
}

jnode *jp_mk(jps *P, jnode_kind k, int line)
{
    jnode *n = ja_alloc(P->a, sizeof *n);
    if (!n) return jp_oom(P);
    n->k = k;
    n->line = line;
    return n;
}

int jp_push(jps *P, jnvec *v, jnode *n)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        jnode **nn = ja_alloc(P->a, cap * sizeof *nn);
        if (!nn) { jp_oom(P); return -1; }
        if (v->n) memcpy(nn, v->v, v->n * sizeof *nn);
        v->v = nn;
        v->cap = cap;
    }
    v->v[v->n++] = n;
    return 0;
}

jnodes jp_done(jnvec *v) { return (jnodes){v->v, v->n}; }

const jstr **jp_names(jps *P, const jstr **tmp, size_t n)
{
    const jstr **r = ja_alloc(P->a, (n ? n : 1) * sizeof *r);
    if (!r) return jp_oom(P);
    if (n) memcpy(r, tmp, n * sizeof *r);
    return r;
}

int jp_is_op(const jtok *t, const char *op) { return t->k == JT_OP && !strcmp(t->s->s, op); }
int jp_is_name(const jtok *t, const char *nm) { return t->k == JT_NAME && !strcmp(t->s->s, nm); }

int jp_expect_op(jps *P, const char *op)
{
    if (!jp_is_op(jp_cur(P), op)) { jp_fail(P, "expected '%s'", op); return -1; }
    P->i++;
    return 0;
}

const jstr *jp_expect_name(jps *P)
{
    if (jp_cur(P)->k != JT_NAME) return jp_fail(P, "expected a name%s", "");
    return P->t->v[P->i++].s;
}

static jnode *unary(jps *P, int with_filter);
static jnode *primary(jps *P);

/* (args, name=kw, ...) after '(' was seen; fills n's args/kwargs/names. */
int jp_call_args(jps *P, jnode *n)
{
    jnvec pos = {0}, kw = {0};
    const jstr *kn[64];
    size_t nk = 0;
    P->i++; /* ( */
    while (!jp_is_op(jp_cur(P), ")")) {
        if (pos.n + kw.n && jp_expect_op(P, ",")) return -1;
        if (jp_is_op(jp_cur(P), ")")) break;
        if (jp_is_op(jp_cur(P), "*") || jp_is_op(jp_cur(P), "**")) { jp_fail(P, "*args / **kwargs are not supported%s", ""); return -1; }
        if (jp_cur(P)->k == JT_NAME && jp_is_op(jp_peek(P, 1), "=")) {
            if (nk == 64) { jp_fail(P, "too many keyword arguments%s", ""); return -1; }
            kn[nk++] = jp_cur(P)->s;
            P->i += 2;
            jnode *v = jp_expr(P);
            if (!v || jp_push(P, &kw, v)) return -1;
        } else {
            if (kw.n) { jp_fail(P, "positional argument after a keyword argument%s", ""); return -1; }
            jnode *v = jp_expr(P);
            if (!v || jp_push(P, &pos, v)) return -1;
        }
    }
    P->i++; /* ) */
    n->args = jp_done(&pos);
    n->kwargs = jp_done(&kw);
    n->nnames = nk;
    if (!(n->names = jp_names(P, kn, nk))) return -1;
    return 0;
}

/* name(.name)* [(args)] for filters; returns an N_FILTER over `in`. */
jnode *jp_filter(jps *P, jnode *in)
{
    jnode *f = jp_mk(P, N_FILTER, jp_cur(P)->line);
    if (!f || !(f->str = jp_expect_name(P))) return NULL;
    f->a = in;
    if (jp_is_op(jp_cur(P), "(") && jp_call_args(P, f)) return NULL;
    return f;
}

static jnode *test_one(jps *P, jnode *in)
{
    jnode *t = jp_mk(P, N_TEST, jp_cur(P)->line);
    if (!t) return NULL;
    P->i++; /* is */
    if (jp_is_name(jp_cur(P), "not")) { t->op = 1; P->i++; }
    if (!(t->str = jp_expect_name(P))) return NULL;
    t->a = in;
    const jtok *c = jp_cur(P);
    if (jp_is_op(c, "(")) {
        if (jp_call_args(P, t)) return NULL;
    } else if ((c->k == JT_NAME || c->k == JT_STRING || c->k == JT_INT || c->k == JT_FLOAT || jp_is_op(c, "(") ||
                jp_is_op(c, "[") || jp_is_op(c, "{")) &&
               !jp_is_name(c, "else") && !jp_is_name(c, "or") && !jp_is_name(c, "and")) {
        if (jp_is_name(c, "is")) return jp_fail(P, "cannot chain tests with is%s", "");
        jnode *arg = primary(P);
        jnvec v = {0};
        if (!arg || jp_push(P, &v, arg)) return NULL;
        t->args = jp_done(&v);
    }
    if (!t->names && !(t->names = jp_names(P, NULL, 0))) return NULL;
    return t;
}

static jnode *subscript(jps *P, jnode *obj)
{
    int line = jp_cur(P)->line;
    P->i++; /* [ */
    jnode *parts[3] = {NULL, NULL, NULL};
    int k = 0, is_slice = 0;
    for (;;) {
        if (!jp_is_op(jp_cur(P), ":") && !jp_is_op(jp_cur(P), "]")) {
            if (!(parts[k] = jp_expr(P))) return NULL;
        }
        if (jp_is_op(jp_cur(P), ":") && k < 2) { is_slice = 1; k++; P->i++; continue; }
        break;
    }
    if (jp_expect_op(P, "]")) return NULL;
    jnode *n = jp_mk(P, is_slice ? N_SLICE : N_ITEM, line);
    if (!n) return NULL;
    n->a = obj;
    n->b = parts[0];
    n->c = parts[1];
    n->d = parts[2];
    if (!is_slice && !n->b) return jp_fail(P, "empty subscript%s", "");
    return n;
}

static jnode *postfix(jps *P, jnode *n)
{
    while (n) {
        const jtok *c = jp_cur(P);
        if (jp_is_op(c, ".")) {
            P->i++;
            const jtok *nt = jp_cur(P);
            if (nt->k == JT_INT) {
                jnode *it = jp_mk(P, N_ITEM, nt->line), *lit = jp_mk(P, N_LIT, nt->line);
                if (!it || !lit) return NULL;
                lit->lit = jv_int(nt->i);
                it->a = n;
                it->b = lit;
                P->i++;
                n = it;
                continue;
            }
            jnode *at = jp_mk(P, N_ATTR, c->line);
            if (!at || !(at->str = jp_expect_name(P))) return NULL;
            at->a = n;
            n = at;
        } else if (jp_is_op(c, "[")) {
            n = subscript(P, n);
        } else if (jp_is_op(c, "(")) {
            jnode *cl = jp_mk(P, N_CALL, c->line);
            if (!cl) return NULL;
            cl->a = n;
            if (jp_call_args(P, cl)) return NULL;
            n = cl;
        } else {
            break;
        }
    }
    return n;
}

static jnode *filters_tests(jps *P, jnode *n)
{
    while (n) {
        const jtok *c = jp_cur(P);
        if (jp_is_op(c, "|")) {
            P->i++;
            n = jp_filter(P, n);
        } else if (jp_is_name(c, "is")) {
            n = test_one(P, n);
        } else if (jp_is_op(c, "(")) {
            jnode *cl = jp_mk(P, N_CALL, c->line);
            if (!cl) return NULL;
            cl->a = n;
            if (jp_call_args(P, cl)) return NULL;
            n = cl;
        } else {
            break;
        }
    }
    return n;
}

static jnode *lit(jps *P, jv v, int line)
{
    jnode *n = jp_mk(P, N_LIT, line);
    if (n) n->lit = v;
    return n;
}

/* [a, b], (a, b) / (a), {k: v} */
static jnode *collection(jps *P)
{
    const jtok *c = jp_cur(P);
    int line = c->line;
    char open = c->s->s[0];
    const char *close = open == '[' ? "]" : open == '(' ? ")" : "}";
    P->i++;
    jnvec items = {0}, vals = {0};
    int trailing_comma = 0;
    while (!jp_is_op(jp_cur(P), close)) {
        if (items.n) {
            if (jp_expect_op(P, ",")) return NULL;
            trailing_comma = 1;
            if (jp_is_op(jp_cur(P), close)) break;
        }
        trailing_comma = 0;
        jnode *e = jp_expr(P);
        if (!e || jp_push(P, &items, e)) return NULL;
        if (open == '{') {
            if (jp_expect_op(P, ":")) return NULL;
            jnode *v = jp_expr(P);
            if (!v || jp_push(P, &vals, v)) return NULL;
        }
    }
    P->i++;
    if (open == '(' && items.n == 1 && !trailing_comma) return items.v[0];
    jnode *n = jp_mk(P, open == '{' ? N_DICT : N_LIST, line);
    if (!n) return NULL;
    n->op = open == '(';
    n->args = jp_done(&items);
    n->kwargs = jp_done(&vals);
    return n;
}

static jnode *primary(jps *P)
{
    const jtok *c = jp_cur(P);
    if (++P->depth > MAX_NEST) return jp_fail(P, "expression nested too deeply%s", "");
    jnode *n = NULL;
    switch (c->k) {
    case JT_NAME: {
        const char *s = c->s->s;
        if (!strcmp(s, "true") || !strcmp(s, "True")) n = lit(P, jv_bool(1), c->line);
        else if (!strcmp(s, "false") || !strcmp(s, "False")) n = lit(P, jv_bool(0), c->line);
        else if (!strcmp(s, "none") || !strcmp(s, "None")) n = lit(P, jv_none(), c->line);
        else if ((n = jp_mk(P, N_NAME, c->line))) n->str = c->s;
        P->i++;
        break;
    }
    case JT_STRING: {
        const jstr *s = c->s;
        int line = c->line;
        P->i++;
        while (jp_cur(P)->k == JT_STRING) { /* "a" "b" */
            const jstr *t = jp_cur(P)->s;
            char *buf = ja_alloc(P->a, s->n + t->n + 1);
            if (!buf) return jp_oom(P);
            memcpy(buf, s->s, s->n);
            memcpy(buf + s->n, t->s, t->n);
            if (!(s = jstr_new(P->a, buf, s->n + t->n))) return jp_oom(P);
            P->i++;
        }
        n = lit(P, jv_str(s), line);
        break;
    }
    case JT_INT: n = lit(P, jv_int(c->i), c->line); P->i++; break;
    case JT_FLOAT: n = lit(P, jv_float(c->f), c->line); P->i++; break;
    case JT_OP:
        if (jp_is_op(c, "(") || jp_is_op(c, "[") || jp_is_op(c, "{")) { n = collection(P); break; }
        /* fall through */
    default:
        n = jp_fail(P, "unexpected %s", c->k == JT_OP ? c->s->s : c->k == JT_EOF ? "end of template" : "end of tag");
    }
    P->depth--;
    return n;
}

static jnode *unary(jps *P, int with_filter)
{
    const jtok *c = jp_cur(P);
    jnode *n;
    if (++P->depth > MAX_NEST) return jp_fail(P, "expression nested too deeply%s", "");
    if (jp_is_op(c, "-") || jp_is_op(c, "+")) {
        P->i++;
        n = jp_mk(P, jp_is_op(c, "-") ? N_NEG : N_POS, c->line);
        if (n && !(n->a = unary(P, 0))) n = NULL;
    } else {
        n = primary(P);
    }
    n = postfix(P, n);
    if (with_filter) n = filters_tests(P, n);
    P->depth--;
    return n;
}

static jnode *bin(jps *P, int op, jnode *a, jnode *b, int line)
{
    if (!a || !b) return NULL;
    jnode *n = jp_mk(P, N_BIN, line);
    if (!n) return NULL;
    n->op = op;
    n->a = a;
    n->b = b;
    return n;
}

static jnode *pow_(jps *P)
{
    jnode *n = unary(P, 1);
    while (n && jp_is_op(jp_cur(P), "**")) {
        int line = jp_cur(P)->line;
        P->i++;
        n = bin(P, 'P', n, unary(P, 1), line);
    }
    return n;
}

static jnode *math2(jps *P)
{
    jnode *n = pow_(P);
    for (;;) {
        const jtok *c = jp_cur(P);
        int op = jp_is_op(c, "*") ? '*' : jp_is_op(c, "/") ? '/' : jp_is_op(c, "//") ? 'F' : jp_is_op(c, "%") ? '%' : 0;
        if (!n || !op) return n;
        P->i++;
        n = bin(P, op, n, pow_(P), c->line);
    }
}

static jnode *concat(jps *P)
{
    jnode *n = math2(P);
    while (n && jp_is_op(jp_cur(P), "~")) {
        int line = jp_cur(P)->line;
        P->i++;
        n = bin(P, '~', n, math2(P), line);
    }
    return n;
}

static jnode *math1(jps *P)
{
    jnode *n = concat(P);
    for (;;) {
        const jtok *c = jp_cur(P);
        int op = jp_is_op(c, "+") ? '+' : jp_is_op(c, "-") ? '-' : 0;
        if (!n || !op) return n;
        P->i++;
        n = bin(P, op, n, concat(P), c->line);
    }
}

static jnode *compare(jps *P)
{
    jnode *first = math1(P);
    if (!first) return NULL;
    jnvec ops = {0};
    const jstr *on[32];
    size_t k = 0;
    int line = jp_cur(P)->line;
    if (jp_push(P, &ops, first)) return NULL;
    for (;;) {
        const jtok *c = jp_cur(P);
        const char *op = NULL;
        if (c->k == JT_OP && (!strcmp(c->s->s, "==") || !strcmp(c->s->s, "!=") || !strcmp(c->s->s, "<") ||
                              !strcmp(c->s->s, ">") || !strcmp(c->s->s, "<=") || !strcmp(c->s->s, ">=")))
            op = c->s->s, P->i++;
        else if (jp_is_name(c, "in")) op = "in", P->i++;
        else if (jp_is_name(c, "not") && jp_is_name(jp_peek(P, 1), "in")) op = "notin", P->i += 2;
        if (!op) break;
        if (k == 32) return jp_fail(P, "comparison chain too long%s", "");
        if (!(on[k++] = jstr_c(P->a, op))) return jp_oom(P);
        jnode *r = math1(P);
        if (!r || jp_push(P, &ops, r)) return NULL;
    }
    if (!k) return first;
    jnode *n = jp_mk(P, N_CMP, line);
    if (!n) return NULL;
    n->args = jp_done(&ops);
    n->nnames = k;
    n->names = jp_names(P, on, k);
    return n->names ? n : NULL;
}

static jnode *not_(jps *P)
{
    if (jp_is_name(jp_cur(P), "not")) {
        jnode *n = jp_mk(P, N_NOT, jp_cur(P)->line);
        P->i++;
        if (++P->depth > MAX_NEST) return jp_fail(P, "expression nested too deeply%s", "");
        if (n && !(n->a = not_(P))) n = NULL;
        P->depth--;
        return n;
    }
    return compare(P);
}

static jnode *and_(jps *P)
{
    jnode *n = not_(P);
    while (n && jp_is_name(jp_cur(P), "and")) {
        jnode *m = jp_mk(P, N_AND, jp_cur(P)->line);
        P->i++;
        if (!m) return NULL;
        m->a = n;
        if (!(m->b = not_(P))) return NULL;
        n = m;
    }
    return n;
}

static jnode *or_(jps *P)
{
    jnode *n = and_(P);
    while (n && jp_is_name(jp_cur(P), "or")) {
        jnode *m = jp_mk(P, N_OR, jp_cur(P)->line);
        P->i++;
        if (!m) return NULL;
        m->a = n;
        if (!(m->b = and_(P))) return NULL;
        n = m;
    }
    return n;
}

static jnode *expr_nocond(jps *P) { return or_(P); }

jnode *jp_expr(jps *P)
{
    if (++P->depth > MAX_NEST) return jp_fail(P, "expression nested too deeply%s", "");
    jnode *n = or_(P);
    while (n && jp_is_name(jp_cur(P), "if")) {
        jnode *c = jp_mk(P, N_COND, jp_cur(P)->line);
        P->i++;
        if (!c) return NULL;
        c->a = n;
        if (!(c->b = or_(P))) return NULL;
        if (jp_is_name(jp_cur(P), "else")) {
            P->i++;
            if (!(c->c = jp_expr(P))) return NULL;
        }
        n = c;
    }
    P->depth--;
    return n;
}

/* a, b, c (a jp_tuple when there is a comma) */
jnode *jp_tuple(jps *P, int with_cond)
{
    int line = jp_cur(P)->line;
    jnode *first = with_cond ? jp_expr(P) : expr_nocond(P);
    if (!first || !jp_is_op(jp_cur(P), ",")) return first;
    jnvec v = {0};
    if (jp_push(P, &v, first)) return NULL;
    while (jp_is_op(jp_cur(P), ",")) {
        P->i++;
        const jtok *c = jp_cur(P);
        if (c->k == JT_VAR_END || c->k == JT_BLOCK_END || jp_is_name(c, "if") || jp_is_name(c, "in")) break;
        jnode *e = with_cond ? jp_expr(P) : expr_nocond(P);
        if (!e || jp_push(P, &v, e)) return NULL;
    }
    jnode *n = jp_mk(P, N_LIST, line);
    if (!n) return NULL;
    n->op = 1;
    n->args = jp_done(&v);
    return n;
}

