/* gram_mask.c — the vocabulary as bytes, and the per-state token tables
 * (the adaptive token-mask cache, after xgrammar).
 *
 * For a DFA state q of rule R, every token is walked through R's byte
 * transitions alone, from q. Position 0 needs no care: the matcher's state
 * set is closed, so pops and calls possible at q are other stacks of the set,
 * with their own tables. Then:
 *   - the whole token is consumed inside R       -> accept (context-free)
 *   - it fails, and no state passed after the first byte could end R or call
 *     another rule                               -> rejected for good
 *   - otherwise (it may leave R mid-token)       -> check: run at mask time
 *     through the whole stack set
 * Tokens are walked in sorted order, sharing the states of common prefixes
 * (lcp), and skipping every token that extends a prefix already rejected.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/gram_int.h"

#define TOK_MAX_BYTES 1024 /* longer tokens are left out of the vocab (never allowed) */

static int cmp_tok(const void *x, const void *y, void *ctx)
{
    const tm_grammar_vocab *v = ctx;
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    uint32_t la = v->tok_off[a + 1] - v->tok_off[a], lb = v->tok_off[b + 1] - v->tok_off[b];
    int c = memcmp(v->bytes + v->tok_off[a], v->bytes + v->tok_off[b], la < lb ? la : lb);
    if (c) return c;
    return la != lb ? (la < lb ? -1 : 1) : (a > b) - (a < b);
}

static tm_status vocab_fill(tm_grammar_vocab *v, const tm_tokenizer *t, tm_err *err)
{
    uint8_t buf[TOK_MAX_BYTES];
    size_t total = 0;
    for (int32_t id = 0; id < v->n_vocab; id++) {
        int n = tm_tokenizer_token_bytes(t, id, buf, sizeof buf);
        if (n > 0 && n <= TOK_MAX_BYTES) total += (size_t)n;
    }
    v->bytes = malloc(total ? total : 1);
    if (!v->bytes) return tm_errf(err, TM_ERR_NOMEM, "out of memory building grammar vocab");
    size_t at = 0;
    for (int32_t id = 0; id < v->n_vocab; id++) {
        v->tok_off[id] = (uint32_t)at;
        int n = tm_tokenizer_token_bytes(t, id, buf, sizeof buf);
        if (n > 0 && n <= TOK_MAX_BYTES) {
            memcpy(v->bytes + at, buf, (size_t)n);
            at += (size_t)n;
            v->sorted[v->n_sorted++] = id;
            if (n > v->max_len) v->max_len = n;
        }
    }
    v->tok_off[v->n_vocab] = (uint32_t)at;
    qsort_r(v->sorted, (size_t)v->n_sorted, sizeof *v->sorted, cmp_tok, v);
    for (int32_t i = 0; i < v->n_sorted; i++) {
        if (i == 0) { v->lcp[i] = 0; continue; }
        int32_t a = v->sorted[i - 1], b = v->sorted[i], l = 0;
        uint32_t la = v->tok_off[a + 1] - v->tok_off[a], lb = v->tok_off[b + 1] - v->tok_off[b];
        while ((uint32_t)l < la && (uint32_t)l < lb && v->bytes[v->tok_off[a] + l] == v->bytes[v->tok_off[b] + l]) l++;
        v->lcp[i] = l;
    }
    v->s_off = malloc(((size_t)v->n_sorted + 1) * sizeof *v->s_off);
    v->s_bytes = malloc(at ? at : 1);
    if (!v->s_off || !v->s_bytes) return tm_errf(err, TM_ERR_NOMEM, "out of memory building grammar vocab");
    size_t o = 0;
    for (int32_t i = 0; i < v->n_sorted; i++) {
        int32_t id = v->sorted[i];
        size_t n = v->tok_off[id + 1] - v->tok_off[id];
        v->s_off[i] = (uint32_t)o;
        memcpy(v->s_bytes + o, v->bytes + v->tok_off[id], n);
        o += n;
    }
    v->s_off[v->n_sorted] = (uint32_t)o;
    for (int k = 0; k < 3; k++) {
        if (!(v->skip[k] = malloc(((size_t)v->n_sorted + 1) * sizeof *v->skip[k])))
            return tm_errf(err, TM_ERR_NOMEM, "out of memory building grammar vocab");
        v->skip[k][v->n_sorted] = v->n_sorted;
        for (int32_t i = v->n_sorted - 1; i >= 0; i--)
            v->skip[k][i] = i + 1 < v->n_sorted && v->lcp[i + 1] <= k ? i + 1 : v->skip[k][i + 1];
    }
    return TM_OK;
}

tm_status tm_grammar_vocab_create(const tm_tokenizer *t, tm_grammar_vocab **out, tm_err *err)
{
    *out = NULL;
    int32_t n = tm_tokenizer_vocab_size(t);
    if (n <= 0) return tm_errf(err, TM_ERR_INPUT, "tokenizer has an empty vocabulary");
    tm_grammar_vocab *v = calloc(1, sizeof *v);
    if (!v) return tm_errf(err, TM_ERR_NOMEM, "out of memory building grammar vocab");
    v->n_vocab = n;
    v->words = ((size_t)n + 31) / 32;
    v->tok_off = malloc(((size_t)n + 1) * sizeof *v->tok_off);
    v->sorted = malloc((size_t)n * sizeof *v->sorted);
    v->lcp = malloc((size_t)n * sizeof *v->lcp);
    tm_status s = TM_ERR_NOMEM;
    if (!v->tok_off || !v->sorted || !v->lcp) tm_errf(err, s, "out of memory building grammar vocab");
    else s = vocab_fill(v, t, err);
    int32_t eos = tm_tokenizer_eos_id(t);
    if (s == TM_OK && eos >= 0) s = tm_grammar_vocab_set_eos(v, &eos, 1, err);
    if (s != TM_OK) { tm_grammar_vocab_destroy(v); return s; }
    *out = v;
    return TM_OK;
}

void tm_grammar_vocab_destroy(tm_grammar_vocab *v)
{
    if (!v) return;
    free(v->tok_off);
    free(v->bytes);
    free(v->sorted);
    free(v->lcp);
    free(v->s_off);
    free(v->s_bytes);
    for (int k = 0; k < 3; k++) free(v->skip[k]);
    free(v->eos);
    free(v);
}

tm_status tm_grammar_vocab_set_eos(tm_grammar_vocab *v, const int32_t *ids, size_t n, tm_err *err)
{
    int32_t *e = malloc((n ? n : 1) * sizeof *e);
    if (!e) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= v->n_vocab) { free(e); return tm_errf(err, TM_ERR_INPUT, "eos id %d outside the vocab", (int)ids[i]); }
        e[i] = ids[i];
    }
    free(v->eos);
    v->eos = e;
    v->n_eos = n;
    return TM_OK;
}

int32_t tm_grammar_vocab_size(const tm_grammar_vocab *v) { return v->n_vocab; }
size_t tm_grammar_vocab_mask_words(const tm_grammar_vocab *v) { return v->words; }

const uint8_t *tm_grammar_vocab_token(const tm_grammar_vocab *v, int32_t id, size_t *len)
{
    *len = 0;
    if (id < 0 || id >= v->n_vocab) return NULL;
    *len = v->tok_off[id + 1] - v->tok_off[id];
    return *len ? v->bytes + v->tok_off[id] : NULL;
}

int tm_grammar_vocab_is_eos(const tm_grammar_vocab *v, int32_t id)
{
    for (size_t i = 0; i < v->n_eos; i++)
        if (v->eos[i] == id) return 1;
    return 0;
}

static int add_check(gmask_entry *e, int32_t *cap, int32_t id)
{
    if (e->n_check == *cap) {
        int32_t c = *cap ? *cap * 2 : 256;
        int32_t *n = realloc(e->check, (size_t)c * sizeof *n);
        if (!n) return -1;
        e->check = n;
        *cap = c;
    }
    e->check[e->n_check++] = id;
    return 0;
}

tm_status gram_mask_entry(tm_grammar *g, int32_t q, tm_err *err)
{
    const tm_grammar_vocab *v = g->vocab;
    gmask_entry *e = &g->mt[q];
    int32_t *st = malloc(((size_t)v->max_len + 1) * sizeof *st);
    uint8_t *fl = malloc((size_t)v->max_len + 1);
    e->accept = calloc(v->words, sizeof *e->accept);
    int32_t cap = 0, valid = 0, fail = -1, fail_flag = 0;
    if (!st || !fl || !e->accept) goto nomem;
    st[0] = q;
    fl[0] = 0;
    for (int32_t i = 0; i < v->n_sorted;) {
        int32_t id = v->sorted[i], l = v->lcp[i];
        if (fail >= 0 && l > fail) {
            if (fail_flag && add_check(e, &cap, id)) goto nomem;
            i++;
            continue;
        }
        fail = -1;
        const uint8_t *s = v->s_bytes + v->s_off[i];
        int32_t len = (int32_t)(v->s_off[i + 1] - v->s_off[i]), d = l < valid ? l : valid;
        while (d < len) {
            int32_t ns = g->trans[(size_t)st[d] * 256 + s[d]];
            if (ns < 0) { fail = d; fail_flag = fl[d]; break; }
            st[d + 1] = ns;
            fl[d + 1] = fl[d] | g->special[ns];
            d++;
        }
        valid = d;
        if (fail < 0) e->accept[id >> 5] |= 1u << (id & 31);
        else if (fail_flag && add_check(e, &cap, id)) goto nomem;
        /* rejected for good: jump over every token sharing the failed prefix */
        i = fail >= 0 && !fail_flag && fail < 3 ? v->skip[fail][i] : i + 1;
    }
    free(st);
    free(fl);
    e->ready = 1;
    return TM_OK;
nomem:
    free(st);
    free(fl);
    free(e->accept);
    free(e->check);
    memset(e, 0, sizeof *e);
    return tm_errf(err, TM_ERR_NOMEM, "out of memory building a token mask");
}

void tm_grammar_mask_apply(float *logits, size_t n_logits, const uint32_t *mask, size_t mask_words)
{
    for (size_t i = 0; i < n_logits; i++) {
        size_t w = i >> 5;
        if (w >= mask_words || !(mask[w] >> (i & 31) & 1)) logits[i] = -INFINITY;
    }
}
