/* jinja_stmt.c — the statement half of the parser ({% ... %} tags and
 * template bodies; node layouts in jinja_parse.c), and tm_jinja_compile. */
#include "template/jinja_int.h"

#include <stdlib.h>
#include <string.h>

#define MAX_BLOCK_NEST 64
#define MAX_SOURCE (4u << 20)

static jnode *body(jps *P, const char *const *ends, const char **which);

static int block_end(jps *P)
{
    if (jp_cur(P)->k != JT_BLOCK_END) {
        jp_fail(P, "expected end of tag%s", "");
        return -1;
    }
    P->i++;
    return 0;
}

/* a body up to one of ends; then the end tag's name was consumed */
static jnode *sub_body(jps *P, const char *const *ends, const char **which)
{
    if (++P->depth > MAX_BLOCK_NEST) return jp_fail(P, "blocks nested too deeply%s", "");
    jnode *b = body(P, ends, which);
    P->depth--;
    return b;
}

static jnode *stmt_if(jps *P, int line)
{
    jnode *n = jp_mk(P, S_IF, line);
    if (!n || !(n->a = jp_tuple(P, 1)) || block_end(P)) return NULL;
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    const char *w = NULL;
    if (!(n->b = sub_body(P, ends, &w))) return NULL;
    if (!strcmp(w, "elif")) {
        n->c = stmt_if(P, jp_cur(P)->line);
        return n->c ? n : NULL;
    }
    if (!strcmp(w, "else")) {
        static const char *const e2[] = {"endif", NULL};
        if (block_end(P) || !(n->c = sub_body(P, e2, &w))) return NULL;
    }
    return block_end(P) ? NULL : n;
}

static int targets(jps *P, jnode *n)
{
    const jstr *t[16];
    size_t k = 0;
    int paren = jp_is_op(jp_cur(P), "(");
    if (paren) P->i++;
    do {
        if (k && jp_expect_op(P, ",")) return -1;
        if (k == 16) { jp_fail(P, "too many loop targets%s", ""); return -1; }
        if (!(t[k++] = jp_expect_name(P))) return -1;
    } while (jp_is_op(jp_cur(P), ","));
    if (paren && jp_expect_op(P, ")")) return -1;
    n->nnames = k;
    return (n->names = jp_names(P, t, k)) ? 0 : -1;
}

static jnode *stmt_for(jps *P, int line)
{
    jnode *n = jp_mk(P, S_FOR, line);
    if (!n || targets(P, n)) return NULL;
    if (!jp_is_name(jp_cur(P), "in")) return jp_fail(P, "expected 'in'%s", "");
    P->i++;
    if (!(n->a = jp_tuple(P, 0))) return NULL;
    if (jp_is_name(jp_cur(P), "recursive")) return jp_fail(P, "recursive loops are not supported%s", "");
    if (jp_is_name(jp_cur(P), "if")) {
        P->i++;
        if (!(n->d = jp_expr(P))) return NULL;
    }
    if (block_end(P)) return NULL;
    static const char *const ends[] = {"else", "endfor", NULL}, *const e2[] = {"endfor", NULL};
    const char *w = NULL;
    if (!(n->b = sub_body(P, ends, &w))) return NULL;
    if (!strcmp(w, "else") && (block_end(P) || !(n->c = sub_body(P, e2, &w)))) return NULL;
    return block_end(P) ? NULL : n;
}

/* {% filter f | g(x) %} / {% set x | f %}: a chain over the block's content (a = NULL) */
static jnode *filter_chain(jps *P)
{
    jnode *f = jp_filter(P, NULL);
    while (f && jp_is_op(jp_cur(P), "|")) {
        P->i++;
        f = jp_filter(P, f);
    }
    return f;
}

static jnode *stmt_set(jps *P, int line)
{
    jnode *n = jp_mk(P, S_SET, line);
    if (!n) return NULL;
    if (jp_cur(P)->k == JT_NAME && jp_is_op(jp_peek(P, 1), ".")) {
        const jstr *ns = jp_cur(P)->s;
        P->i += 2;
        if (!(n->str = jp_expect_name(P))) return NULL;
        n->op = 1;
        n->nnames = 1;
        if (!(n->names = jp_names(P, &ns, 1))) return NULL;
    } else if (targets(P, n)) {
        return NULL;
    }
    if (jp_is_op(jp_cur(P), "=")) {
        P->i++;
        if (!(n->a = jp_tuple(P, 1))) return NULL;
        return block_end(P) ? NULL : n;
    }
    if (n->op || n->nnames != 1) return jp_fail(P, "expected '='%s", "");
    n->k = S_SETBLOCK;
    if (jp_is_op(jp_cur(P), "|")) {
        P->i++;
        if (!(n->a = filter_chain(P))) return NULL;
    }
    static const char *const ends[] = {"endset", NULL};
    const char *w;
    if (block_end(P) || !(n->b = sub_body(P, ends, &w))) return NULL;
    return block_end(P) ? NULL : n;
}

/* (a, b=default, ...) for macro and call-block parameters */
static int params(jps *P, jnode *n)
{
    const jstr *nm[64];
    jnvec defs = {0};
    size_t k = 0;
    if (jp_expect_op(P, "(")) return -1;
    while (!jp_is_op(jp_cur(P), ")")) {
        if (k && jp_expect_op(P, ",")) return -1;
        if (jp_is_op(jp_cur(P), ")")) break;
        if (k == 64) { jp_fail(P, "too many parameters%s", ""); return -1; }
        if (!(nm[k++] = jp_expect_name(P))) return -1;
        jnode *d = NULL;
        if (jp_is_op(jp_cur(P), "=")) {
            P->i++;
            if (!(d = jp_expr(P))) return -1;
        }
        if (jp_push(P, &defs, d)) return -1;
    }
    P->i++;
    n->nnames = k;
    n->kwargs = jp_done(&defs);
    return (n->names = jp_names(P, nm, k)) ? 0 : -1;
}

static jnode *stmt_macro(jps *P, int line)
{
    jnode *n = jp_mk(P, S_MACRO, line);
    if (!n || !(n->str = jp_expect_name(P)) || params(P, n) || block_end(P)) return NULL;
    static const char *const ends[] = {"endmacro", NULL};
    const char *w;
    if (!(n->b = sub_body(P, ends, &w))) return NULL;
    if (jp_cur(P)->k == JT_NAME) P->i++; /* {% endmacro name %} */
    return block_end(P) ? NULL : n;
}

static jnode *stmt_call(jps *P, int line)
{
    jnode *n = jp_mk(P, S_CALLBLOCK, line);
    if (!n) return NULL;
    if (jp_is_op(jp_cur(P), "(")) {
        if (params(P, n)) return NULL;
    } else if (!(n->names = jp_names(P, NULL, 0))) {
        return NULL;
    }
    if (!(n->a = jp_expr(P))) return NULL;
    if (n->a->k != N_CALL) return jp_fail(P, "expected a call after {%% call%s", "");
    static const char *const ends[] = {"endcall", NULL};
    const char *w;
    if (block_end(P) || !(n->b = sub_body(P, ends, &w))) return NULL;
    return block_end(P) ? NULL : n;
}

static jnode *stmt(jps *P)
{
    int line = jp_cur(P)->line;
    const jstr *name = jp_expect_name(P);
    if (!name) return NULL;
    const char *s = name->s;
    if (!strcmp(s, "if")) return stmt_if(P, line);
    if (!strcmp(s, "for")) return stmt_for(P, line);
    if (!strcmp(s, "set")) return stmt_set(P, line);
    if (!strcmp(s, "macro")) return stmt_macro(P, line);
    if (!strcmp(s, "call")) return stmt_call(P, line);
    if (!strcmp(s, "filter")) {
        jnode *n = jp_mk(P, S_FILTERBLOCK, line);
        static const char *const ends[] = {"endfilter", NULL};
        const char *w;
        if (!n || !(n->a = filter_chain(P)) || block_end(P) || !(n->b = sub_body(P, ends, &w)) || block_end(P))
            return NULL;
        return n;
    }
    if (!strcmp(s, "generation")) { /* transformers' AssistantTracker: renders its body */
        static const char *const ends[] = {"endgeneration", NULL};
        const char *w;
        jnode *b;
        if (block_end(P) || !(b = sub_body(P, ends, &w)) || block_end(P)) return NULL;
        return b;
    }
    if (!strcmp(s, "break") || !strcmp(s, "continue")) {
        jnode *n = jp_mk(P, s[0] == 'b' ? S_BREAK : S_CONTINUE, line);
        return !n || block_end(P) ? NULL : n;
    }
    if (!strcmp(s, "include") || !strcmp(s, "import") || !strcmp(s, "from") || !strcmp(s, "extends") ||
        !strcmp(s, "block"))
        return jp_fail(P, "'%s' is not available in a chat template (no files)", s);
    return jp_fail(P, "unknown tag '%s'", s);
}

static jnode *body(jps *P, const char *const *ends, const char **which)
{
    jnvec v = {0};
    jnode *b = jp_mk(P, S_BODY, jp_cur(P)->line);
    if (!b) return NULL;
    for (;;) {
        const jtok *t = jp_cur(P);
        jnode *n = NULL;
        if (t->k == JT_EOF) {
            if (ends) return jp_fail(P, "unexpected end of template (expected {%% %s %%})", ends[0]);
            break;
        }
        if (t->k == JT_DATA) {
            if ((n = jp_mk(P, S_TEXT, t->line))) n->str = t->s;
            P->i++;
        } else if (t->k == JT_VAR_BEGIN) {
            P->i++;
            if ((n = jp_mk(P, S_OUT, t->line)) && (n->a = jp_tuple(P, 1))) {
                if (jp_cur(P)->k != JT_VAR_END) return jp_fail(P, "expected '}}'%s", "");
                P->i++;
            } else {
                n = NULL;
            }
        } else if (t->k == JT_BLOCK_BEGIN) {
            const jtok *nm = jp_peek(P, 1);
            for (size_t k = 0; ends && nm->k == JT_NAME && ends[k]; k++)
                if (!strcmp(nm->s->s, ends[k])) {
                    *which = ends[k];
                    P->i += 2;
                    b->args = jp_done(&v);
                    return b;
                }
            if (nm->k == JT_NAME && (!strncmp(nm->s->s, "end", 3) || !strcmp(nm->s->s, "else") ||
                                     !strcmp(nm->s->s, "elif"))) {
                P->i++;
                return jp_fail(P, "unexpected '%s'", nm->s->s);
            }
            P->i++;
            n = stmt(P);
        } else {
            return jp_fail(P, "unexpected token%s", "");
        }
        if (!n || jp_push(P, &v, n)) return NULL;
    }
    b->args = jp_done(&v);
    return b;
}

tm_status jinja_parse(const jtoks *toks, jarena *a, jnode **root, tm_err *err)
{
    jps P = {toks, 0, a, err, 0, TM_OK};
    *root = body(&P, NULL, NULL);
    if (!*root && !P.st) P.st = tm_errf(err, TM_ERR_INTERNAL, "chat template: parse failed");
    return *root ? TM_OK : P.st;
}

tm_status tm_jinja_compile(const char *src, size_t len, unsigned flags, tm_jinja **out, tm_err *err)
{
    *out = NULL;
    if (!src) return tm_errf(err, TM_ERR_INPUT, "chat template: no source");
    if (len > MAX_SOURCE)
        return tm_errf(err, TM_ERR_INPUT, "chat template: %zu bytes is larger than the limit (%u)", len, MAX_SOURCE);
    tm_jinja *t = calloc(1, sizeof *t);
    if (!t) return tm_errf(err, TM_ERR_NOMEM, "chat template: out of memory");
    t->arena.cap = (size_t)64 * len + (1u << 20);
    jtoks toks = {0};
    tm_status st = jinja_lex(src, len, flags, &t->arena, &toks, err);
    if (!st) st = jinja_parse(&toks, &t->arena, &t->root, err);
    if (st) {
        tm_jinja_destroy(t);
        return st;
    }
    *out = t;
    return TM_OK;
}

void tm_jinja_destroy(tm_jinja *t)
{
    if (!t) return;
    ja_free(&t->arena);
    free(t);
}
