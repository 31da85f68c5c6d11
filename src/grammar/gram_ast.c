/* gram_ast.c — the expression-tree builders of gram_int.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/gram_int.h"

#define GB_MAX_NODES (1 << 22)

void gb_init(gb *b, tm_err *err)
{
    memset(b, 0, sizeof *b);
    b->err = err;
}

void gb_free(gb *b)
{
    free(b->nodes);
    free(b->kids);
    free(b->sets);
    memset(b, 0, sizeof *b);
}

int32_t gb_fail(gb *b, tm_status s, const char *fmt, ...)
{
    if (b->st == TM_OK) {
        b->st = s;
        if (b->err) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(b->err->msg, sizeof b->err->msg, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

static int grow(gb *b, void **p, int32_t *cap, int32_t need, size_t elem)
{
    if (need <= *cap) return 0;
    if (need > GB_MAX_NODES) { gb_fail(b, TM_ERR_INPUT, "grammar too large (more than %d parts)", GB_MAX_NODES); return -1; }
    int32_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) { gb_fail(b, TM_ERR_NOMEM, "out of memory compiling grammar"); return -1; }
    *p = q;
    *cap = c;
    return 0;
}

static int32_t node(gb *b, uint8_t kind, int32_t a, int32_t n, int32_t max)
{
    if (b->st != TM_OK) return -1;
    if (grow(b, (void **)&b->nodes, &b->cap_nodes, b->n_nodes + 1, sizeof(gnode))) return -1;
    gnode *x = &b->nodes[b->n_nodes];
    x->kind = kind;
    x->a = a;
    x->n = n;
    x->max = max;
    return b->n_nodes++;
}

int32_t gb_set(gb *b, const uint32_t bits[8])
{
    if (b->st != TM_OK) return -1;
    if (grow(b, (void **)&b->sets, &b->cap_sets, b->n_sets + 1, sizeof b->sets[0])) return -1;
    memcpy(b->sets[b->n_sets], bits, sizeof b->sets[0]);
    return node(b, GN_SET, b->n_sets++, 0, 0);
}

int32_t gb_range(gb *b, int lo, int hi)
{
    uint32_t bits[8] = {0};
    for (int c = lo; c <= hi && c < 256; c++) bits[c >> 5] |= 1u << (c & 31);
    return gb_set(b, bits);
}

int32_t gb_byte(gb *b, int c) { return gb_range(b, c, c); }

static int32_t kids_list(gb *b, uint8_t kind, const int32_t *k, int32_t n, int stride)
{
    if (b->st != TM_OK) return -1;
    for (int32_t i = 0; i < n; i += stride)
        if (k[i] < 0) return gb_fail(b, TM_ERR_INTERNAL, "grammar builder: bad child");
    if (grow(b, (void **)&b->kids, &b->cap_kids, b->n_kids + n, sizeof(int32_t))) return -1;
    int32_t at = b->n_kids;
    memcpy(b->kids + at, k, (size_t)n * sizeof *k);
    b->n_kids += n;
    return node(b, kind, at, n / stride, 0);
}

int32_t gb_seqv(gb *b, const int32_t *k, int32_t n)
{
    if (n == 0) return gb_empty(b);
    if (n == 1) return k[0];
    return kids_list(b, GN_SEQ, k, n, 1);
}

int32_t gb_altv(gb *b, const int32_t *k, int32_t n)
{
    if (n == 1) return k[0];
    if (n == 0) return gb_fail(b, TM_ERR_INPUT, "empty alternation");
    return kids_list(b, GN_ALT, k, n, 1);
}

int32_t gb_lit(gb *b, const char *s, size_t n)
{
    if (b->st != TM_OK) return -1;
    if (n == 0) return gb_empty(b);
    if (n > (size_t)GB_MAX_NODES) return gb_fail(b, TM_ERR_INPUT, "literal too long");
    int32_t *k = malloc(n * sizeof *k);
    if (!k) return gb_fail(b, TM_ERR_NOMEM, "out of memory compiling grammar");
    for (size_t i = 0; i < n; i++) k[i] = gb_byte(b, (uint8_t)s[i]);
    int32_t r = b->st == TM_OK ? gb_seqv(b, k, (int32_t)n) : -1;
    free(k);
    return r;
}

int32_t gb_str(gb *b, const char *s) { return gb_lit(b, s, strlen(s)); }

int32_t gb_seq2(gb *b, int32_t x, int32_t y)
{
    int32_t k[2] = {x, y};
    return gb_seqv(b, k, 2);
}

int32_t gb_seq3(gb *b, int32_t x, int32_t y, int32_t z)
{
    int32_t k[3] = {x, y, z};
    return gb_seqv(b, k, 3);
}

int32_t gb_alt2(gb *b, int32_t x, int32_t y)
{
    int32_t k[2] = {x, y};
    return gb_altv(b, k, 2);
}

int32_t gb_rep(gb *b, int32_t x, int32_t min, int32_t max)
{
    if (x < 0) return -1;
    if (min < 0 || min > TM_GRAMMAR_MAX_REPEAT || max > TM_GRAMMAR_MAX_REPEAT || (max >= 0 && max < min))
        return gb_fail(b, TM_ERR_INPUT, "repetition {%d,%d} out of range (at most %d)", (int)min, (int)max,
                       TM_GRAMMAR_MAX_REPEAT);
    if (min == 1 && max == 1) return x;
    return node(b, GN_REP, x, min, max);
}

int32_t gb_opt(gb *b, int32_t x) { return gb_rep(b, x, 0, 1); }

int32_t gb_call(gb *b, int32_t rule)
{
    if (rule < 0 || rule >= b->n_rules) return gb_fail(b, TM_ERR_INTERNAL, "grammar builder: bad rule");
    return node(b, GN_CALL, rule, 0, 0);
}

int32_t gb_empty(gb *b) { return node(b, GN_EMPTY, 0, 0, 0); }

int32_t gb_members(gb *b, const int32_t *nd, const int32_t *req, int32_t n)
{
    if (b->st != TM_OK) return -1;
    int32_t *k = malloc((size_t)(2 * n + 1) * sizeof *k);
    if (!k) return gb_fail(b, TM_ERR_NOMEM, "out of memory compiling grammar");
    for (int32_t i = 0; i < n; i++) { k[2 * i] = nd[i]; k[2 * i + 1] = req[i] ? 1 : 0; }
    int32_t r = kids_list(b, GN_MEMBERS, k, 2 * n, 2);
    free(k);
    return r;
}

int32_t gb_new_rule(gb *b)
{
    if (b->st != TM_OK) return -1;
    if (b->n_rules >= TM_GRAMMAR_MAX_RULES)
        return gb_fail(b, TM_ERR_INPUT, "more than %d grammar rules ($defs)", TM_GRAMMAR_MAX_RULES);
    b->rule_root[b->n_rules] = -1;
    return b->n_rules++;
}
