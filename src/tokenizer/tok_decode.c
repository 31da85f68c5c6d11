/* tok_decode.c — token ids -> text, and the streaming detokenizer.
 *
 * As HF `tokenizers`: ids -> token strings (added content first; special ones
 * optionally dropped) -> decoder chain -> joined; invalid UTF-8 becomes U+FFFD
 * as Rust's String::from_utf8_lossy does. Streaming is HF's DecodeStream: a
 * small window (last emitted tokens as context + new ones) is decoded and the
 * text past the previous window is emitted, held back while it ends in U+FFFD
 * or a <0xNN> byte token; the context keeps the leading-space strip exactly
 * where the full decode has it.
 */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

/* ---- UTF-8 --------------------------------------------------------------- */

int tok_utf8_valid(const char *s, size_t n)
{
    const uint8_t *u = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        size_t bad, k = tm_utf8_seq(u, n, i, &bad);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

tm_status tok_utf8_lossy(tm_buf *b, const char *s, size_t n)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0, run = 0;
    while (i < n) {
        size_t bad, k = tm_utf8_seq(u, n, i, &bad);
        if (k) { i += k; continue; }
        if (tm_buf_append(b, s + run, i - run) || tm_buf_append(b, "\xEF\xBF\xBD", 3)) return TM_ERR_NOMEM;
        i += bad;
        run = i;
    }
    return tm_buf_append(b, s + run, n - run);
}

/* ---- token lists --------------------------------------------------------- */

typedef struct tl {
    tm_buf text;
    size_t *end;
    size_t n, cap;
} tl;

static void tl_clear(tl *l) { tm_buf_clear(&l->text); l->n = 0; }
static void tl_free(tl *l) { tm_buf_free(&l->text); free(l->end); }

/* Close the current token (text appended since the previous end). */
static tm_status tl_close(tl *l)
{
    if (l->n + 1 > l->cap) {
        size_t c = l->cap ? l->cap * 2 : 64;
        size_t *p = realloc(l->end, c * sizeof *p);
        if (!p) return TM_ERR_NOMEM;
        l->end = p;
        l->cap = c;
        if (!l->text.data && tm_buf_reserve(&l->text, 16)) return TM_ERR_NOMEM;
    }
    l->end[l->n++] = l->text.len;
    return TM_OK;
}

static tm_status tl_add(tl *l, const char *s, size_t n)
{
    if (tm_buf_append(&l->text, s, n)) return TM_ERR_NOMEM;
    return tl_close(l);
}

#define TL_START(l, k) ((k) ? (l)->end[(k) - 1] : 0)

static size_t u8len(uint8_t c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

static uint32_t cp_at(const char *s, size_t *k)
{
    const uint8_t *u = (const uint8_t *)s;
    *k = u8len(u[0]);
    switch (*k) {
    case 1: return u[0];
    case 2: return ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
    case 3: return ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    default: return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) | ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
    }
}

/* One decoder step: in -> out. Token texts are valid UTF-8 except where noted.
 * raw: bytes that are not valid UTF-8 are kept as they are (no U+FFFD). */
static tm_status dec_step(const tok_dec *d, pcre2_match_data *md, tl *in, tl *out, tm_buf *tmp, int raw)
{
    tl_clear(out);
    switch (d->kind) {
    case DEC_BYTELEVEL: {
        tm_buf_clear(tmp);
        for (size_t k = 0; k < in->n; k++) {
            const char *s = in->text.data + TL_START(in, k);
            size_t n = in->end[k] - TL_START(in, k), mark = tmp->len, c;
            int ok = 1;
            for (size_t i = 0; i < n && ok; i += c) {
                int b = tok_cp_to_byte(cp_at(s + i, &c));
                if (b < 0) { ok = 0; break; }
                uint8_t bb = (uint8_t)b;
                if (tm_buf_append(tmp, &bb, 1)) return TM_ERR_NOMEM;
            }
            if (!ok) { tmp->len = mark; if (tm_buf_append(tmp, s, n)) return TM_ERR_NOMEM; }
        }
        if (raw ? tm_buf_append(&out->text, tmp->data ? tmp->data : "", tmp->len)
                : tok_utf8_lossy(&out->text, tmp->data ? tmp->data : "", tmp->len))
            return TM_ERR_NOMEM;
        return tl_close(out);
    }
    case DEC_BYTEFALLBACK: {
        tm_buf_clear(tmp); /* pending bytes */
        for (size_t k = 0; k <= in->n; k++) {
            const char *s = k < in->n ? in->text.data + TL_START(in, k) : NULL;
            size_t n = k < in->n ? in->end[k] - TL_START(in, k) : 0;
            int byte = -1;
            if (s && n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>') {
                char h[3] = { s[3], s[4], 0 }, *e;
                long v = strtol(h, &e, 16);
                if (*e == 0 && ((h[0] >= '0' && h[0] <= '9') || (h[0] >= 'a' && h[0] <= 'f') || (h[0] >= 'A' && h[0] <= 'F'))) byte = (int)v;
            }
            if (byte >= 0) {
                uint8_t bb = (uint8_t)byte;
                if (tm_buf_append(tmp, &bb, 1)) return TM_ERR_NOMEM;
                continue;
            }
            if (tmp->len) {
                if (raw || tok_utf8_valid(tmp->data, tmp->len)) {
                    if (tl_add(out, tmp->data, tmp->len)) return TM_ERR_NOMEM;
                } else {
                    for (size_t i = 0; i < tmp->len; i++)
                        if (tl_add(out, "\xEF\xBF\xBD", 3)) return TM_ERR_NOMEM;
                }
                tm_buf_clear(tmp);
            }
            if (s && tl_add(out, s, n)) return TM_ERR_NOMEM;
        }
        return TM_OK;
    }
    case DEC_FUSE:
        if (tm_buf_append(&out->text, in->text.data ? in->text.data : "", in->text.len)) return TM_ERR_NOMEM;
        return tl_close(out);
    case DEC_STRIP:
        for (size_t k = 0; k < in->n; k++) {
            const char *s = in->text.data + TL_START(in, k);
            size_t n = in->end[k] - TL_START(in, k), a = 0, b = n, cl = d->content_len;
            for (long i = 0; i < d->start && a + cl <= b && !memcmp(s + a, d->content, cl); i++) a += cl;
            for (long i = 0; i < d->stop && b >= a + cl && !memcmp(s + b - cl, d->content, cl); i++) b -= cl;
            if (tl_add(out, s + a, b - a)) return TM_ERR_NOMEM;
        }
        return TM_OK;
    case DEC_REPLACE:
        for (size_t k = 0; k < in->n; k++) {
            const char *s = in->text.data + TL_START(in, k);
            size_t n = in->end[k] - TL_START(in, k), from = 0, prev = 0;
            for (;;) {
                if (from > n) break;
                int rc = pcre2_match(d->re, (PCRE2_SPTR)s, n, from, 0, md, NULL);
                if (rc < 0) break; /* no match (or a match error: leave the rest as is) */
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                if (tm_buf_append(&out->text, s + prev, ov[0] - prev) || tm_buf_append(&out->text, d->content, d->content_len))
                    return TM_ERR_NOMEM;
                prev = ov[1];
                from = ov[1] > ov[0] ? ov[1] : ov[1] + (ov[1] < n ? u8len((uint8_t)s[ov[1]]) : 1);
            }
            if (tm_buf_append(&out->text, s + prev, n - prev) || tl_close(out)) return TM_ERR_NOMEM;
        }
        return TM_OK;
    case DEC_METASPACE:
        for (size_t k = 0; k < in->n; k++) {
            const char *s = in->text.data + TL_START(in, k);
            size_t n = in->end[k] - TL_START(in, k), mark = out->text.len;
            for (size_t i = 0; i < n;) {
                if (i + d->repl_len <= n && !memcmp(s + i, d->repl, d->repl_len)) {
                    if (tm_buf_append(&out->text, " ", 1)) return TM_ERR_NOMEM;
                    i += d->repl_len;
                } else {
                    if (tm_buf_append(&out->text, s + i, 1)) return TM_ERR_NOMEM;
                    i++;
                }
            }
            if (k == 0 && d->prepend_scheme != PREPEND_NEVER && out->text.len > mark && out->text.data[mark] == ' ') {
                memmove(out->text.data + mark, out->text.data + mark + 1, out->text.len - mark - 1);
                out->text.len--;
                out->text.data[out->text.len] = 0;
            }
            if (tl_close(out)) return TM_ERR_NOMEM;
        }
        return TM_OK;
    }
    return TM_ERR_INTERNAL;
}

/* Reusable decode buffers: after warm-up a streaming push allocates nothing. */
typedef struct dscratch {
    tl a, b;
    tm_buf tmp;
    pcre2_match_data *md;
} dscratch;

static void ds_free(dscratch *sc)
{
    tl_free(&sc->a);
    tl_free(&sc->b);
    tm_buf_free(&sc->tmp);
    pcre2_match_data_free(sc->md);
}

/* Decode ids into out (appended); raw: see dec_step. */
static tm_status decode_into(const tm_tokenizer *t, const int32_t *ids, size_t n, int skip_special, int raw,
                             tm_buf *out, dscratch *sc, tm_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->n_ids || !(t->id_flags[ids[i]] & (TOKF_VOCAB | TOKF_ADDED)))
            return tm_errf(err, TM_ERR_INPUT, "tokenizer: decode: id %d at position %zu is not a token (vocab size %d)", ids[i], i, t->n_ids);
    tl_clear(&sc->a);
    tl_clear(&sc->b);
    tm_status st = TM_OK;
    for (size_t i = 0; i < n && !st; i++) {
        int32_t id = ids[i];
        if (skip_special && (t->id_flags[id] & TOKF_SPECIAL)) continue;
        st = tl_add(&sc->a, t->arena.data + t->id_off[id], t->id_len[id]);
    }
    if (!st && t->n_dec && !sc->md && !(sc->md = pcre2_match_data_create(2, NULL))) st = TM_ERR_NOMEM;
    for (int k = 0; k < t->n_dec && !st; k++) {
        st = dec_step(&t->dec[k], sc->md, &sc->a, &sc->b, &sc->tmp, raw);
        tl sw = sc->a; sc->a = sc->b; sc->b = sw;
    }
    tl *a = &sc->a;
    for (size_t k = 0; k < a->n && !st; k++) {
        if (!t->has_decoder && k > 0 && tm_buf_append(out, " ", 1)) st = TM_ERR_NOMEM;
        else if (tm_buf_append(out, a->text.data + TL_START(a, k), a->end[k] - TL_START(a, k))) st = TM_ERR_NOMEM;
    }
    if (!st && tm_buf_reserve(out, 1)) st = TM_ERR_NOMEM;
    if (st) return tm_errf(err, st, "tokenizer: decode: out of memory");
    return TM_OK;
}

tm_status tm_tokenizer_decode(const tm_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                              char **text, size_t *len, tm_err *err)
{
    if (!text) return tm_errf(err, TM_ERR_USAGE, "tm_tokenizer_decode: NULL output");
    *text = NULL;
    if (len) *len = 0;
    if (!t || (!ids && n)) return tm_errf(err, TM_ERR_USAGE, "tm_tokenizer_decode: NULL argument");
    tm_buf b;
    tm_buf_init(&b);
    dscratch sc;
    memset(&sc, 0, sizeof sc);
    tm_status st = decode_into(t, ids, n, skip_special, 0, &b, &sc, err);
    ds_free(&sc);
    if (st) { tm_buf_free(&b); return st; }
    *text = b.data;
    if (len) *len = b.len;
    return TM_OK;
}

/* ---- streaming ----------------------------------------------------------- */

struct tm_detok {
    const tm_tokenizer *t;
    int skip;
    int32_t *ids;        /* window: context tokens + pending ones */
    size_t n, cap;
    size_t prefix_index; /* ids[0..prefix_index) were already emitted */
    tm_buf prefix;       /* decode of ids[0..prefix_index) */
    tm_buf cur, out;
    dscratch sc;
    tm_buf pa, pb;       /* tm_detok_piece's decodes (apart from the stream's): */
    int32_t pctx[TM_DETOK_PIECE_CONTEXT]; /* pa is the decode of pctx[0..pctx_n) */
    size_t pctx_n;
    int pctx_ok;
};

tm_status tm_detok_create(const tm_tokenizer *t, int skip_special, tm_detok **out, tm_err *err)
{
    if (!out) return tm_errf(err, TM_ERR_USAGE, "tm_detok_create: out is NULL");
    *out = NULL;
    if (!t) return tm_errf(err, TM_ERR_USAGE, "tm_detok_create: tokenizer is NULL");
    tm_detok *d = calloc(1, sizeof *d);
    if (!d) return tm_errf(err, TM_ERR_NOMEM, "tm_detok_create: out of memory");
    d->t = t;
    d->skip = skip_special;
    tm_buf_init(&d->prefix);
    tm_buf_init(&d->cur);
    tm_buf_init(&d->out);
    tm_buf_init(&d->pa);
    tm_buf_init(&d->pb);
    *out = d;
    return TM_OK;
}

void tm_detok_destroy(tm_detok *d)
{
    if (!d) return;
    free(d->ids);
    ds_free(&d->sc);
    tm_buf_free(&d->prefix);
    tm_buf_free(&d->cur);
    tm_buf_free(&d->out);
    tm_buf_free(&d->pa);
    tm_buf_free(&d->pb);
    free(d);
}

void tm_detok_reset(tm_detok *d)
{
    if (!d) return;
    d->n = 0;
    d->prefix_index = 0;
    tm_buf_clear(&d->prefix);
    tm_buf_clear(&d->cur);
    tm_buf_clear(&d->out);
}

static int ends_with_fffd(const tm_buf *b)
{
    return b->len >= 3 && !memcmp(b->data + b->len - 3, "\xEF\xBF\xBD", 3);
}

/* Emit cur past the prefix into d->out. */
static tm_status emit_new(tm_detok *d)
{
    size_t p = d->prefix.len;
    if (p > d->cur.len || memcmp(d->cur.data, d->prefix.data ? d->prefix.data : "", p) != 0) {
        /* The window re-decoded differently (only possible for invalid byte
         * sequences): emit from the common prefix, on a character boundary. */
        size_t c = 0;
        while (c < p && c < d->cur.len && d->cur.data[c] == d->prefix.data[c]) c++;
        while (c > 0 && ((uint8_t)d->cur.data[c] & 0xC0) == 0x80) c--;
        p = c;
    }
    tm_buf_clear(&d->out);
    if (tm_buf_append(&d->out, d->cur.data + p, d->cur.len - p)) return TM_ERR_NOMEM;
    return TM_OK;
}

tm_status tm_detok_push(tm_detok *d, int32_t id, const char **out, size_t *out_len, tm_err *err)
{
    if (!d || !out || !out_len) return tm_errf(err, TM_ERR_USAGE, "tm_detok_push: NULL argument");
    *out = "";
    *out_len = 0;
    const tm_tokenizer *t = d->t;
    if (id < 0 || id >= t->n_ids || !(t->id_flags[id] & (TOKF_VOCAB | TOKF_ADDED)))
        return tm_errf(err, TM_ERR_INPUT, "tokenizer: detok: id %d is not a token (vocab size %d)", id, t->n_ids);
    if (d->n + 1 > d->cap) {
        size_t c = d->cap ? d->cap * 2 : 16;
        int32_t *p = realloc(d->ids, c * sizeof *p);
        if (!p) return tm_errf(err, TM_ERR_NOMEM, "tokenizer: detok: out of memory");
        d->ids = p;
        d->cap = c;
    }
    d->ids[d->n++] = id;
    if (t->dec_byte_fallback && t->id_byte[id] >= 0 && !(d->skip && (t->id_flags[id] & TOKF_SPECIAL)))
        return TM_OK; /* a byte token may still join the next ones */
    tm_buf_clear(&d->cur);
    tm_status st = decode_into(t, d->ids, d->n, d->skip, 0, &d->cur, &d->sc, err);
    if (st) return st;
    if (d->cur.len <= d->prefix.len || ends_with_fffd(&d->cur)) return TM_OK;
    if (emit_new(d)) return tm_errf(err, TM_ERR_NOMEM, "tokenizer: detok: out of memory");
    /* keep the last emitted tokens as context */
    size_t keep_from = d->prefix_index, new_prefix_index = d->n - d->prefix_index;
    memmove(d->ids, d->ids + keep_from, (d->n - keep_from) * sizeof *d->ids);
    d->n -= keep_from;
    d->prefix_index = new_prefix_index;
    tm_buf_clear(&d->prefix);
    if ((st = decode_into(t, d->ids, d->n, d->skip, 0, &d->prefix, &d->sc, err))) return st;
    *out = d->out.data;
    *out_len = d->out.len;
    return TM_OK;
}

tm_status tm_detok_flush(tm_detok *d, const char **out, size_t *out_len, tm_err *err)
{
    if (!d || !out || !out_len) return tm_errf(err, TM_ERR_USAGE, "tm_detok_flush: NULL argument");
    *out = "";
    *out_len = 0;
    tm_buf_clear(&d->cur);
    tm_status st = decode_into(d->t, d->ids, d->n, d->skip, 0, &d->cur, &d->sc, err);
    if (st) return st;
    tm_buf_clear(&d->out);
    if (d->cur.len > d->prefix.len && emit_new(d)) return tm_errf(err, TM_ERR_NOMEM, "tokenizer: detok: out of memory");
    d->n = 0;
    d->prefix_index = 0;
    tm_buf_clear(&d->prefix);
    *out = d->out.data ? d->out.data : "";
    *out_len = d->out.len;
    return TM_OK;
}

/* ---- one token's bytes at a position -------------------------------------- */

tm_status tm_detok_piece(tm_detok *d, const int32_t *prev, size_t n_prev, int32_t id, const char **out,
                         size_t *out_len, tm_err *err)
{
    if (!d || !out || !out_len || (!prev && n_prev)) return tm_errf(err, TM_ERR_USAGE, "tm_detok_piece: NULL argument");
    *out = "";
    *out_len = 0;
    int32_t w[TM_DETOK_PIECE_CONTEXT + 1];
    size_t k = n_prev < TM_DETOK_PIECE_CONTEXT ? n_prev : TM_DETOK_PIECE_CONTEXT;
    if (k) memcpy(w, prev + (n_prev - k), k * sizeof *w);
    w[k] = id;
    tm_status st = TM_OK;
    /* the alternatives at one position share their context: decoded once */
    if (!d->pctx_ok || d->pctx_n != k || (k && memcmp(d->pctx, w, k * sizeof *w))) {
        d->pctx_ok = 0;
        tm_buf_clear(&d->pa);
        if ((st = decode_into(d->t, w, k, d->skip, 1, &d->pa, &d->sc, err))) return st;
        if (k) memcpy(d->pctx, w, k * sizeof *w);
        d->pctx_n = k;
        d->pctx_ok = 1;
    }
    tm_buf_clear(&d->pb);
    if ((st = decode_into(d->t, w, k + 1, d->skip, 1, &d->pb, &d->sc, err))) return st;
    /* The context's text is a prefix of the window's (raw decoding only
     * appends); should a decoder ever rewrite it, the piece starts where
     * the two part. */
    size_t p = 0, na = d->pa.len;
    while (p < na && p < d->pb.len && d->pa.data[p] == d->pb.data[p]) p++;
    *out = d->pb.data ? d->pb.data + p : "";
    *out_len = d->pb.len - p;
    return TM_OK;
}
