/* gram_dfa.c — expression tree -> per-rule DFAs (Thompson NFA, then subset
 * construction over the 256 bytes plus one symbol per called rule), then
 * each state's fewest bytes to its rule's end (for tm_matcher_bytes_to_end).
 */
#include <stdlib.h>
#include <string.h>

#include "grammar/gram_int.h"

enum { E_EPS, E_SET, E_CALL };
typedef struct nedge { int32_t kind, label, to, next; } nedge;

typedef struct nfa {
    gb *b;
    int32_t *head;
    int32_t n, cap;
    nedge *e;
    int32_t ne, cape;
    int32_t comma;   /* set index of ',' */
    int32_t accept;  /* end state of the rule being built */
} nfa;

static int32_t nstate(nfa *a)
{
    if (a->n >= TM_GRAMMAR_MAX_NFA)
        return gb_fail(a->b, TM_ERR_INPUT, "grammar too large (more than %d automaton states)", TM_GRAMMAR_MAX_NFA);
    if (a->n == a->cap) {
        int32_t c = a->cap ? a->cap * 2 : 1024;
        int32_t *h = realloc(a->head, (size_t)c * sizeof *h);
        if (!h) return gb_fail(a->b, TM_ERR_NOMEM, "out of memory compiling grammar");
        a->head = h;
        a->cap = c;
    }
    a->head[a->n] = -1;
    return a->n++;
}

static int nedge_add(nfa *a, int32_t from, int kind, int32_t label, int32_t to)
{
    if (a->ne == a->cape) {
        int32_t c = a->cape ? a->cape * 2 : 2048;
        nedge *e = realloc(a->e, (size_t)c * sizeof *e);
        if (!e) { gb_fail(a->b, TM_ERR_NOMEM, "out of memory compiling grammar"); return -1; }
        a->e = e;
        a->cape = c;
    }
    a->e[a->ne] = (nedge){kind, label, to, a->head[from]};
    a->head[from] = a->ne++;
    return 0;
}

/* Build node x starting at state s; returns the end state or -1. s is never
 * the target of an edge made here, so callers may add more edges from it. */
static int32_t build(nfa *a, int32_t x, int32_t s, int depth)
{
    if (x < 0 || s < 0 || a->b->st != TM_OK) return -1;
    if (depth > 4 * TM_GRAMMAR_MAX_DEPTH + 64) return gb_fail(a->b, TM_ERR_INPUT, "grammar nested too deeply");
    const gnode nd = a->b->nodes[x];
    const int32_t *k = a->b->kids + nd.a;
    int32_t t, cur;
    switch (nd.kind) {
    case GN_EMPTY: return s;
    case GN_SET:
        if ((t = nstate(a)) < 0 || nedge_add(a, s, E_SET, nd.a, t)) return -1;
        return t;
    case GN_CALL:
        if ((t = nstate(a)) < 0 || nedge_add(a, s, E_CALL, nd.a, t)) return -1;
        return t;
    case GN_SEQ:
        cur = s;
        for (int32_t i = 0; i < nd.n && cur >= 0; i++) cur = build(a, k[i], cur, depth + 1);
        return cur;
    case GN_ALT:
        if ((t = nstate(a)) < 0) return -1;
        for (int32_t i = 0; i < nd.n; i++) {
            int32_t f = nstate(a), e;
            if (f < 0 || nedge_add(a, s, E_EPS, 0, f) || (e = build(a, k[i], f, depth + 1)) < 0 ||
                nedge_add(a, e, E_EPS, 0, t))
                return -1;
        }
        return t;
    case GN_REP:
        cur = s;
        for (int32_t i = 0; i < nd.n && cur >= 0; i++) cur = build(a, nd.a, cur, depth + 1);
        if (cur < 0) return -1;
        if (nd.max < 0) {
            int32_t l = nstate(a), e;
            if (l < 0 || nedge_add(a, cur, E_EPS, 0, l) || (e = build(a, nd.a, l, depth + 1)) < 0 ||
                nedge_add(a, e, E_EPS, 0, l))
                return -1;
            return l;
        }
        if (nd.max == nd.n) return cur;
        if ((t = nstate(a)) < 0) return -1;
        for (int32_t i = nd.n; i < nd.max && cur >= 0; i++) {
            if (nedge_add(a, cur, E_EPS, 0, t)) return -1;
            cur = build(a, nd.a, cur, depth + 1);
        }
        if (cur < 0 || nedge_add(a, cur, E_EPS, 0, t)) return -1;
        return t;
    case GN_MEMBERS: {
        if (nd.n == 0) return s;
        int32_t e = s, c = -1;
        for (int32_t j = 0; j < nd.n; j++) {
            int32_t m = k[2 * j], req = k[2 * j + 1], nc = nstate(a), ne = -1, end;
            if (nc < 0) return -1;
            if (e >= 0) {
                if ((end = build(a, m, e, depth + 1)) < 0 || nedge_add(a, end, E_EPS, 0, nc)) return -1;
                if (!req) ne = e;
            }
            if (c >= 0) {
                int32_t f = nstate(a), g2;
                if (f < 0 || nedge_add(a, c, E_EPS, 0, f) || (g2 = nstate(a)) < 0 ||
                    nedge_add(a, f, E_SET, a->comma, g2) || (end = build(a, m, g2, depth + 1)) < 0 ||
                    nedge_add(a, end, E_EPS, 0, nc))
                    return -1;
                if (!req && nedge_add(a, c, E_EPS, 0, nc)) return -1;
            }
            e = ne;
            c = nc;
        }
        if ((t = nstate(a)) < 0 || nedge_add(a, c, E_EPS, 0, t)) return -1;
        if (e >= 0 && nedge_add(a, e, E_EPS, 0, t)) return -1;
        return t;
    }
    }
    return gb_fail(a->b, TM_ERR_INTERNAL, "grammar builder: bad node");
}

/* ---- subset construction ------------------------------------------------ */

typedef struct dset {
    int32_t *mem;            /* arena of sorted NFA state lists */
    size_t nmem, capmem;
    int32_t *off, *len;      /* per DFA state (global numbering) */
    int32_t *hash_slot;      /* open addressing over DFA ids of the current rule; -1 empty */
    uint32_t hmask;
    int32_t *stack, *mark;   /* closure work */
    int32_t epoch;
} dset;

typedef struct dfa_out {
    tm_grammar *g;
    int32_t cap;
    gcall *calls;            /* per state lists built in order */
    int32_t ncalls, capcalls;
} dfa_out;

static uint32_t hash_list(const int32_t *l, int32_t n)
{
    uint32_t h = 2166136261u;
    for (int32_t i = 0; i < n; i++) h = (h ^ (uint32_t)l[i]) * 16777619u;
    return h;
}

static int cmp_i32(const void *x, const void *y)
{
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

/* A state matters to the DFA when it reads (a byte or a call) or ends the
 * rule; pure eps joins do not, and leaving them out of the key merges
 * equivalent DFA states (e.g. the ends of every branch of a character). */
static int important(const nfa *a, int32_t s)
{
    if (s == a->accept) return 1;
    for (int32_t e = a->head[s]; e >= 0; e = a->e[e].next)
        if (a->e[e].kind != E_EPS) return 1;
    return 0;
}

/* eps-closure of list (n entries, in dst with room for a->n) -> sorted, unique,
 * important states only */
static int32_t closure(nfa *a, dset *d, int32_t *list, int32_t n)
{
    d->epoch++;
    int32_t sp = 0, out = 0;
    for (int32_t i = 0; i < n; i++)
        if (d->mark[list[i]] != d->epoch) { d->mark[list[i]] = d->epoch; d->stack[sp++] = list[i]; }
    while (sp) {
        int32_t s = d->stack[--sp];
        if (important(a, s)) list[out++] = s;
        for (int32_t e = a->head[s]; e >= 0; e = a->e[e].next)
            if (a->e[e].kind == E_EPS && d->mark[a->e[e].to] != d->epoch) {
                d->mark[a->e[e].to] = d->epoch;
                d->stack[sp++] = a->e[e].to;
            }
    }
    qsort(list, (size_t)out, sizeof *list, cmp_i32);
    return out;
}

static int32_t dfa_state(nfa *a, dset *d, dfa_out *o, int32_t first, const int32_t *l, int32_t n, int32_t accept)
{
    tm_grammar *g = o->g;
    uint32_t h = hash_list(l, n) & d->hmask;
    for (;; h = (h + 1) & d->hmask) {
        int32_t id = d->hash_slot[h];
        if (id < 0) break;
        if (d->len[id] == n && !memcmp(d->mem + d->off[id], l, (size_t)n * sizeof *l)) return id;
    }
    if (g->n_states >= TM_GRAMMAR_MAX_STATES || (uint32_t)(g->n_states - first) * 2 >= d->hmask)
        return gb_fail(a->b, TM_ERR_INPUT, "grammar too large (more than %d states)", TM_GRAMMAR_MAX_STATES);
    if (d->nmem + (size_t)n > d->capmem) {
        size_t c = d->capmem ? d->capmem : 4096;
        while (c < d->nmem + (size_t)n) c *= 2;
        int32_t *m = realloc(d->mem, c * sizeof *m);
        if (!m) return gb_fail(a->b, TM_ERR_NOMEM, "out of memory compiling grammar");
        d->mem = m;
        d->capmem = c;
    }
    int32_t id = g->n_states++;
    memcpy(d->mem + d->nmem, l, (size_t)n * sizeof *l);
    d->off[id] = (int32_t)d->nmem;
    d->len[id] = n;
    d->nmem += (size_t)n;
    d->hash_slot[h] = id;
    g->accepting[id] = 0;
    for (int32_t i = 0; i < n; i++)
        if (l[i] == accept) g->accepting[id] = 1;
    return id;
}

/* Expand state id: byte transitions and calls. */
static int expand(nfa *a, dset *d, dfa_out *o, int32_t first, int32_t id, int32_t accept, int32_t *tmp, int32_t *prev)
{
    tm_grammar *g = o->g;
    const uint32_t(*sets)[8] = (const uint32_t(*)[8])a->b->sets;
    int32_t nprev = -1, prev_id = -1;
    for (int c = 0; c < 256; c++) {
        int32_t n = 0;
        for (int32_t i = 0; i < d->len[id]; i++) {
            int32_t s = d->mem[d->off[id] + i];
            for (int32_t e = a->head[s]; e >= 0; e = a->e[e].next)
                if (a->e[e].kind == E_SET && (sets[a->e[e].label][c >> 5] >> (c & 31) & 1)) tmp[n++] = a->e[e].to;
        }
        int32_t to = -1;
        if (n) {
            qsort(tmp, (size_t)n, sizeof *tmp, cmp_i32);
            if (n == nprev && !memcmp(tmp, prev, (size_t)n * sizeof *tmp)) to = prev_id;
            else {
                memcpy(prev, tmp, (size_t)n * sizeof *tmp);
                nprev = n;
                n = closure(a, d, tmp, n);
                to = prev_id = dfa_state(a, d, o, first, tmp, n, accept);
                if (to < 0) return -1;
            }
        }
        g->trans[(size_t)id * 256 + (size_t)c] = to;
    }
    /* calls: one target per called rule */
    g->call_off[id] = o->ncalls;
    for (int32_t i = 0; i < d->len[id]; i++) {
        int32_t s = d->mem[d->off[id] + i];
        for (int32_t e = a->head[s]; e >= 0; e = a->e[e].next) {
            if (a->e[e].kind != E_CALL) continue;
            int32_t r = a->e[e].label, dup = 0;
            for (int32_t j = g->call_off[id]; j < o->ncalls; j++) dup |= o->calls[j].rule == r;
            if (dup) continue;
            int32_t n = 0;
            for (int32_t i2 = 0; i2 < d->len[id]; i2++) {
                int32_t s2 = d->mem[d->off[id] + i2];
                for (int32_t e2 = a->head[s2]; e2 >= 0; e2 = a->e[e2].next)
                    if (a->e[e2].kind == E_CALL && a->e[e2].label == r) tmp[n++] = a->e[e2].to;
            }
            n = closure(a, d, tmp, n);
            int32_t to = dfa_state(a, d, o, first, tmp, n, accept);
            if (to < 0) return -1;
            if (o->ncalls == o->capcalls) {
                int32_t cc = o->capcalls ? o->capcalls * 2 : 64;
                gcall *nc = realloc(o->calls, (size_t)cc * sizeof *nc);
                if (!nc) return gb_fail(a->b, TM_ERR_NOMEM, "out of memory compiling grammar");
                o->calls = nc;
                o->capcalls = cc;
            }
            o->calls[o->ncalls++] = (gcall){r, to};
        }
    }
    g->call_off[id + 1] = o->ncalls;
    return 0;
}

static int alloc_states(gb *b, tm_grammar *g, dset *d)
{
    size_t n = TM_GRAMMAR_MAX_STATES;
    g->trans = malloc(n * 256 * sizeof *g->trans);
    g->accepting = calloc(n, 1);
    g->special = calloc(n, 1);
    g->call_off = calloc(n + 1, sizeof *g->call_off);
    g->dist = malloc(n * sizeof *g->dist);
    d->off = malloc(n * sizeof *d->off);
    d->len = malloc(n * sizeof *d->len);
    d->hmask = 2 * TM_GRAMMAR_MAX_STATES * 2 - 1;
    d->hash_slot = malloc(((size_t)d->hmask + 1) * sizeof *d->hash_slot);
    if (!g->trans || !g->accepting || !g->special || !g->call_off || !g->dist || !d->off || !d->len || !d->hash_slot)
        return gb_fail(b, TM_ERR_NOMEM, "out of memory compiling grammar");
    return 0;
}

static int build_rule(gb *b, nfa *a, dset *d, dfa_out *o, int32_t r)
{
    a->n = a->ne = 0;
    int32_t start = nstate(a);
    int32_t end = build(a, b->rule_root[r], start, 0);
    if (end < 0) return -1;
    a->accept = end;
    int32_t *mk = realloc(d->mark, (size_t)a->n * sizeof *mk), *st = realloc(d->stack, (size_t)a->n * sizeof *st);
    if (mk) d->mark = mk;
    if (st) d->stack = st;
    int32_t *tmp = malloc((size_t)a->n * sizeof *tmp), *prev = malloc((size_t)a->n * sizeof *prev);
    int rc = -1;
    if (!mk || !st || !tmp || !prev) { gb_fail(b, TM_ERR_NOMEM, "out of memory compiling grammar"); goto out; }
    memset(d->mark, 0, (size_t)a->n * sizeof *d->mark);
    d->epoch = 0;
    memset(d->hash_slot, 0xff, ((size_t)d->hmask + 1) * sizeof *d->hash_slot);
    int32_t first = o->g->n_states;
    tmp[0] = start;
    int32_t n = closure(a, d, tmp, 1);
    if ((o->g->rule_start[r] = dfa_state(a, d, o, first, tmp, n, end)) < 0) goto out;
    for (int32_t id = first; id < o->g->n_states; id++)
        if (expand(a, d, o, first, id, end, tmp, prev)) goto out;
    rc = 0;
out:
    free(tmp);
    free(prev);
    return rc;
}

static void compute_dist(tm_grammar *g)
{
    const int32_t INF = INT32_MAX / 4;
    for (int32_t s = 0; s < g->n_states; s++) g->dist[s] = g->accepting[s] ? 0 : INF;
    for (int changed = 1, it = 0; changed && it < 256; it++) { /* bounded: later values stay upper bounds */
        changed = 0;
        for (int32_t s = g->n_states - 1; s >= 0; s--) {
            int32_t best = g->dist[s], last = -1;
            for (int c = 0; c < 256; c++) {
                int32_t t = g->trans[(size_t)s * 256 + (size_t)c];
                if (t < 0 || t == last) continue;
                last = t;
                if (g->dist[t] + 1 < best) best = g->dist[t] + 1;
            }
            for (int32_t j = g->call_off[s]; j < g->call_off[s + 1]; j++) {
                int32_t v = g->dist[g->rule_start[g->calls[j].rule]] + g->dist[g->calls[j].ret];
                if (v < best) best = v;
            }
            if (best < g->dist[s]) { g->dist[s] = best; changed = 1; }
        }
    }
    for (int32_t s = 0; s < g->n_states; s++)
        if (g->dist[s] >= INF) g->dist[s] = INT32_MAX;
}

tm_status gram_dfa_build(gb *b, tm_grammar *g, tm_err *err)
{
    nfa a = {.b = b};
    dset d = {0};
    dfa_out o = {.g = g};
    g->n_rules = b->n_rules;
    g->rule_start = calloc((size_t)(b->n_rules ? b->n_rules : 1), sizeof *g->rule_start);
    if (!g->rule_start) gb_fail(b, TM_ERR_NOMEM, "out of memory compiling grammar");
    a.comma = gb_byte(b, ',');
    if (a.comma >= 0) a.comma = b->nodes[a.comma].a;
    if (b->st == TM_OK) alloc_states(b, g, &d);
    for (int32_t r = 0; r < b->n_rules && b->st == TM_OK; r++) {
        if (b->rule_root[r] < 0) { gb_fail(b, TM_ERR_INTERNAL, "grammar rule %d has no body", (int)r); break; }
        build_rule(b, &a, &d, &o, r);
    }
    free(a.head);
    free(a.e);
    free(d.mem);
    free(d.off);
    free(d.len);
    free(d.hash_slot);
    free(d.stack);
    free(d.mark);
    g->calls = o.calls;
    if (b->st != TM_OK) return b->st;
    /* shrink to size */
    size_t n = (size_t)g->n_states;
    int32_t *tr = realloc(g->trans, (n ? n : 1) * 256 * sizeof *tr);
    if (tr) g->trans = tr;
    /* Rule 0 is only ever the bottom of a stack (a "#" $ref gets a rule of its
     * own): its end pops nothing, so only calls make its states special. */
    int32_t end0 = g->n_rules > 1 ? g->rule_start[1] : g->n_states;
    for (int32_t s = 0; s < g->n_states; s++)
        g->special[s] = (g->accepting[s] && s >= end0) || g->call_off[s + 1] > g->call_off[s];
    compute_dist(g);
    g->mt = calloc(n ? n : 1, sizeof *g->mt);
    if (!g->mt) return tm_errf(err, TM_ERR_NOMEM, "out of memory compiling grammar");
    return TM_OK;
}
