/* grammar.c — compile entry point, grammar lifetime, the grammar cache. */
#include <stdlib.h>
#include <string.h>

#include "grammar/gram_int.h"
#include "util/sha256.h"

tm_status tm_grammar_compile(tm_grammar_kind kind, const char *text, size_t len, tm_grammar **out, tm_err *err)
{
    *out = NULL;
    tm_grammar *g = calloc(1, sizeof *g);
    if (!g) return tm_errf(err, TM_ERR_NOMEM, "out of memory compiling grammar");
    gb b;
    gb_init(&b, err);
    tm_status s = gram_schema_build(&b, kind, text ? text : "", text ? len : 0);
    if (s == TM_OK) s = gram_dfa_build(&b, g, err);
    gb_free(&b);
    if (s != TM_OK) { tm_grammar_destroy(g); return s; }
    *out = g;
    return TM_OK;
}

void tm_grammar_destroy(tm_grammar *g)
{
    if (!g) return;
    if (g->mt)
        for (int32_t s = 0; s < g->n_states; s++) { free(g->mt[s].accept); free(g->mt[s].check); }
    free(g->mt);
    free(g->trans);
    free(g->accepting);
    free(g->special);
    free(g->call_off);
    free(g->calls);
    free(g->rule_start);
    free(g->dist);
    free(g);
}

int32_t tm_grammar_n_states(const tm_grammar *g) { return g->n_states; }
int32_t tm_grammar_n_rules(const tm_grammar *g) { return g->n_rules; }

tm_status tm_grammar_precompute(tm_grammar *g, const tm_grammar_vocab *v, tm_err *err)
{
    if (g->vocab && g->vocab != v) return tm_errf(err, TM_ERR_INTERNAL, "grammar already bound to another vocab");
    g->vocab = v;
    for (int32_t s = 0; s < g->n_states; s++)
        if (!g->mt[s].ready) {
            tm_status st = gram_mask_entry(g, s, err);
            if (st != TM_OK) return st;
        }
    return TM_OK;
}

/* ---- cache ---------------------------------------------------------------- */

typedef struct centry {
    uint8_t key[32];
    tm_grammar *g;
} centry;

struct tm_grammar_cache {
    const tm_grammar_vocab *v;
    centry *e;
    size_t n, cap;
};

tm_status tm_grammar_cache_create(const tm_grammar_vocab *v, tm_grammar_cache **out, tm_err *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    (*out)->v = v;
    return TM_OK;
}

void tm_grammar_cache_destroy(tm_grammar_cache *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) tm_grammar_destroy(c->e[i].g);
    free(c->e);
    free(c);
}

size_t tm_grammar_cache_count(const tm_grammar_cache *c) { return c->n; }

tm_status tm_grammar_cache_get(tm_grammar_cache *c, tm_grammar_kind kind, const char *text, size_t len,
                               tm_grammar **out, tm_err *err)
{
    *out = NULL;
    uint8_t key[32], k = (uint8_t)kind;
    tm_sha256_ctx h;
    tm_sha256_init(&h);
    tm_sha256_update(&h, &k, 1);
    if (text) tm_sha256_update(&h, text, len);
    tm_sha256_final(&h, key);
    for (size_t i = 0; i < c->n; i++)
        if (!memcmp(c->e[i].key, key, 32)) { *out = c->e[i].g; return TM_OK; }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 8;
        centry *ne = realloc(c->e, nc * sizeof *ne);
        if (!ne) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
        c->e = ne;
        c->cap = nc;
    }
    tm_grammar *g;
    tm_status s = tm_grammar_compile(kind, text, len, &g, err);
    if (s != TM_OK) return s;
    g->vocab = c->v;
    memcpy(c->e[c->n].key, key, 32);
    c->e[c->n++].g = g;
    *out = g;
    return TM_OK;
}
