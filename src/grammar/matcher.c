/* matcher.c — the pushdown matcher (grammar.h).
 *
 * State: a set of rule stacks, kept closed: every stack reachable by ending
 * a rule (pop) or starting a called one (push) without reading a byte is in
 * the set. A byte moves each stack whose top state has an edge for it; the
 * set is deduplicated. Stacks past TM_MATCHER_MAX_DEPTH, and sets past
 * TM_MATCHER_MAX_STACKS, drop the extra parses: the matcher then allows less
 * than the grammar, never more (everything it accepts is in the language).
 */
#include <stdlib.h>
#include <string.h>

#include "grammar/gram_int.h"

typedef struct mstack {
    int32_t depth;
    int32_t f[TM_MATCHER_MAX_DEPTH]; /* f[depth-1]: current state; below: return states */
} mstack;

typedef struct mstate {
    int32_t n;
    mstack s[TM_MATCHER_MAX_STACKS];
} mstate;

struct tm_matcher {
    tm_grammar *g;
    const tm_grammar_vocab *v;
    int terminated;
    mstate cur, a, b; /* a, b: scratch */
};

static int same(const mstack *x, const mstack *y)
{
    return x->depth == y->depth && !memcmp(x->f, y->f, (size_t)x->depth * sizeof x->f[0]);
}

static void add(mstate *m, const mstack *x)
{
    for (int32_t i = 0; i < m->n; i++)
        if (same(&m->s[i], x)) return;
    if (m->n < TM_MATCHER_MAX_STACKS) m->s[m->n++] = *x;
}

static void close_set(const tm_grammar *g, mstate *m)
{
    mstack t;
    for (int32_t i = 0; i < m->n; i++) {
        const mstack *x = &m->s[i];
        int32_t q = x->f[x->depth - 1];
        if (g->accepting[q] && x->depth > 1) {
            t.depth = x->depth - 1;
            memcpy(t.f, x->f, (size_t)t.depth * sizeof t.f[0]);
            add(m, &t);
            x = &m->s[i];
        }
        for (int32_t j = g->call_off[q]; j < g->call_off[q + 1] && x->depth < TM_MATCHER_MAX_DEPTH; j++) {
            t.depth = x->depth + 1;
            memcpy(t.f, x->f, (size_t)x->depth * sizeof t.f[0]);
            t.f[x->depth - 1] = g->calls[j].ret;
            t.f[x->depth] = g->rule_start[g->calls[j].rule];
            add(m, &t);
            x = &m->s[i];
        }
    }
}

/* out := cur advanced by byte c (closed); returns out->n. */
static int32_t step(const tm_grammar *g, const mstate *cur, mstate *out, uint8_t c)
{
    out->n = 0;
    for (int32_t i = 0; i < cur->n; i++) {
        const mstack *x = &cur->s[i];
        int32_t to = g->trans[(size_t)x->f[x->depth - 1] * 256 + c];
        if (to < 0) continue;
        if (out->n == TM_MATCHER_MAX_STACKS) break;
        mstack *y = &out->s[out->n];
        y->depth = x->depth;
        memcpy(y->f, x->f, (size_t)x->depth * sizeof x->f[0]);
        y->f[x->depth - 1] = to;
        int dup = 0;
        for (int32_t k = 0; k < out->n && !dup; k++) dup = same(&out->s[k], y);
        if (!dup) out->n++;
    }
    if (out->n) close_set(g, out);
    return out->n;
}

/* Run bytes from *from; result in m->a or m->b; returns it or NULL. */
static const mstate *run(tm_matcher *m, const mstate *from, const uint8_t *s, size_t n)
{
    const mstate *cur = from;
    for (size_t i = 0; i < n; i++) {
        mstate *out = cur == &m->a ? &m->b : &m->a;
        if (!step(m->g, cur, out, s[i])) return NULL;
        cur = out;
    }
    return cur;
}

static int ends(const tm_grammar *g, const mstate *m)
{
    for (int32_t i = 0; i < m->n; i++)
        if (m->s[i].depth == 1 && g->accepting[m->s[i].f[0]]) return 1;
    return 0;
}

tm_status tm_matcher_create(tm_grammar *g, const tm_grammar_vocab *v, tm_matcher **out, tm_err *err)
{
    *out = NULL;
    if (!g || !v) return tm_errf(err, TM_ERR_INTERNAL, "tm_matcher_create: no grammar or vocab");
    if (g->vocab && g->vocab != v) return tm_errf(err, TM_ERR_INTERNAL, "grammar already bound to another vocab");
    tm_matcher *m = calloc(1, sizeof *m);
    if (!m) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    g->vocab = v;
    m->g = g;
    m->v = v;
    tm_matcher_reset(m);
    *out = m;
    return TM_OK;
}

void tm_matcher_destroy(tm_matcher *m) { free(m); }

void tm_matcher_reset(tm_matcher *m)
{
    m->terminated = 0;
    m->cur.n = 1;
    m->cur.s[0].depth = 1;
    m->cur.s[0].f[0] = m->g->rule_start[0];
    close_set(m->g, &m->cur);
}

tm_status tm_matcher_copy(tm_matcher *dst, const tm_matcher *src)
{
    if (dst->g != src->g || dst->v != src->v) return TM_ERR_INTERNAL;
    dst->terminated = src->terminated;
    dst->cur.n = src->cur.n;
    memcpy(dst->cur.s, src->cur.s, (size_t)src->cur.n * sizeof src->cur.s[0]);
    return TM_OK;
}

static void set_state(tm_matcher *m, const mstate *s)
{
    m->cur.n = s->n;
    memcpy(m->cur.s, s->s, (size_t)s->n * sizeof s->s[0]);
}

tm_status tm_matcher_accept_bytes(tm_matcher *m, const uint8_t *s, size_t n)
{
    if (m->terminated) return TM_ERR_INPUT;
    const mstate *r = run(m, &m->cur, s, n);
    if (!r) return TM_ERR_INPUT;
    if (r != &m->cur) set_state(m, r);
    return TM_OK;
}

tm_status tm_matcher_accept(tm_matcher *m, int32_t id)
{
    if (m->terminated) return TM_ERR_INPUT;
    if (tm_grammar_vocab_is_eos(m->v, id)) {
        if (!ends(m->g, &m->cur)) return TM_ERR_INPUT;
        m->terminated = 1;
        return TM_OK;
    }
    size_t n;
    const uint8_t *s = tm_grammar_vocab_token(m->v, id, &n);
    if (!s || !n) return TM_ERR_INPUT;
    return tm_matcher_accept_bytes(m, s, n);
}

int tm_matcher_done(const tm_matcher *m) { return !m->terminated && ends(m->g, &m->cur); }
int tm_matcher_terminated(const tm_matcher *m) { return m->terminated; }

int32_t tm_matcher_bytes_to_end(const tm_matcher *m)
{
    if (m->terminated) return 0;
    int64_t best = INT32_MAX;
    for (int32_t i = 0; i < m->cur.n; i++) {
        int64_t d = 0;
        for (int32_t k = 0; k < m->cur.s[i].depth && d < INT32_MAX; k++) d += m->g->dist[m->cur.s[i].f[k]];
        if (d < best) best = d;
    }
    return (int32_t)best;
}

tm_status tm_matcher_fill_mask(tm_matcher *m, uint32_t *mask, tm_err *err)
{
    const tm_grammar_vocab *v = m->v;
    tm_grammar *g = m->g;
    memset(mask, 0, v->words * sizeof *mask);
    if (m->terminated) return TM_OK;
    for (int32_t i = 0; i < m->cur.n; i++) {
        int32_t q = m->cur.s[i].f[m->cur.s[i].depth - 1];
        if (!g->mt[q].ready) {
            tm_status s = gram_mask_entry(g, q, err);
            if (s != TM_OK) return s;
        }
        const uint32_t *acc = g->mt[q].accept;
        for (size_t w = 0; w < v->words; w++) mask[w] |= acc[w];
    }
    for (int32_t i = 0; i < m->cur.n; i++) {
        const gmask_entry *e = &g->mt[m->cur.s[i].f[m->cur.s[i].depth - 1]];
        for (int32_t k = 0; k < e->n_check; k++) {
            int32_t id = e->check[k];
            if (mask[id >> 5] >> (id & 31) & 1) continue;
            const uint8_t *s = v->bytes + v->tok_off[id];
            if (run(m, &m->cur, s, v->tok_off[id + 1] - v->tok_off[id])) mask[id >> 5] |= 1u << (id & 31);
        }
    }
    if (ends(g, &m->cur))
        for (size_t k = 0; k < v->n_eos; k++) mask[v->eos[k] >> 5] |= 1u << (v->eos[k] & 31);
    return TM_OK;
}
