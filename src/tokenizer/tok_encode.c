/* tok_encode.c — text -> token ids, following the Hugging Face `tokenizers`
 * pipeline: added tokens are cut out of the raw text first (leftmost-longest,
 * those with normalized=false), each remaining segment is normalized, cut
 * again by the normalized added tokens, split by the pre-tokenizer chain
 * (Split regex via PCRE2, ByteLevel, Metaspace, Digits) and every pre-token
 * is BPE-merged: a linked list of symbols plus a min-heap of candidate merges
 * keyed (rank, position), so a pre-token of n symbols costs O(n log n).
 * All scratch memory is per call: a tm_tokenizer stays read-only.
 */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- per-call scratch ---------------------------------------------------- */

typedef struct plist { /* a list of pieces: text with piece end offsets */
    tm_buf text;
    size_t *end;
    size_t n, cap;
    int first_at_origin; /* piece 0 starts at offset 0 of the original text */
} plist;

typedef struct sym { int32_t id, prev, next, len; } sym;

typedef struct enc {
    const tm_tokenizer *t;
    tm_err *err;
    pcre2_match_data *md;
    pcre2_match_context *mc; /* the match limit */
    uint64_t budget;         /* regex work left for this encode (bytes of subject given to pcre2) */
    int32_t *ids;
    size_t n_ids, cap_ids;
    plist pa, pb;
    tm_buf norm, tmp;
    size_t *mt;      /* split scratch: (start, end, is_match) triples */
    size_t n_mt, cap_mt;
    sym *sy;
    size_t cap_sy;
    uint64_t *heap;
    size_t n_heap, cap_heap;
} enc;

static tm_status oom(enc *E) { return tm_errf(E->err, TM_ERR_NOMEM, "tokenizer: out of memory"); }

static tm_status grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return TM_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return TM_ERR_NOMEM;
    *p = q;
    *cap = c;
    return TM_OK;
}

static tm_status push_id(enc *E, int32_t id)
{
    if (grow((void **)&E->ids, &E->cap_ids, E->n_ids + 1, sizeof *E->ids)) return oom(E);
    E->ids[E->n_ids++] = id;
    return TM_OK;
}

static void pl_clear(plist *p) { tm_buf_clear(&p->text); p->n = 0; p->first_at_origin = 0; }

static tm_status pl_add(enc *E, plist *p, const char *s, size_t n)
{
    if (n == 0) return TM_OK; /* empty pieces are dropped, as HF does */
    if (tm_buf_append(&p->text, s, n) || grow((void **)&p->end, &p->cap, p->n + 1, sizeof *p->end)) return oom(E);
    p->end[p->n++] = p->text.len;
    return TM_OK;
}

static size_t u8len(uint8_t c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

/* ---- regex --------------------------------------------------------------- */

/* Regex work is bounded per encode, not only per match: a pattern that is
 * quadratic without backtracking (a++b|a scans to the end of a run for each
 * one-byte match) would take minutes on a 1 MB prompt. pcre2 reports no work
 * done, so the subject is given in windows: RE_WINDOW bytes past the start,
 * doubled while the match needs more (PCRE2_PARTIAL_HARD: the end of the
 * window was reached), the whole rest when that is smaller (then the match is
 * exact JIT matching); no match in a window goes on after it. Every byte of window given is charged to a budget of
 * RE_BUDGET_PER_BYTE per input byte; backtracking inside a window is bounded
 * by RE_MATCH_LIMIT. Ordinary tokenizer patterns use a small fraction of it. */
#define RE_WINDOW 128
#define RE_BUDGET_PER_BYTE 1024
#define RE_MATCH_LIMIT 1000000

/* Next match of re in s[0..n) at or after from. 1: found, 0: none, <0: error. */
static int re_next(enc *E, const pcre2_code *re, const char *s, size_t n, size_t from, size_t *ms, size_t *me)
{
    if (from > n) return 0;
    int rc;
    for (size_t w = RE_WINDOW;; w *= 2) {
        size_t end = n - from > w ? from + w : n;
        while (end < n && end > from + 1 && ((uint8_t)s[end] & 0xC0) == 0x80) end--; /* a character boundary */
        uint32_t opt = PCRE2_NO_UTF_CHECK | (end < n ? PCRE2_PARTIAL_HARD : 0);
        if (end - from + 1 > E->budget) {
            tm_errf(E->err, TM_ERR_INPUT, "tokenizer: the pre-tokenizer regex is too slow on this text (work budget "
                                          "of %d x its length used up); the request cannot be tokenized",
                    RE_BUDGET_PER_BYTE);
            return -1;
        }
        E->budget -= end - from + 1;
        rc = pcre2_match(re, (PCRE2_SPTR)s, end, from, opt, E->md, E->mc);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(re, (PCRE2_SPTR)s, end, from, opt | PCRE2_NO_JIT, E->md, E->mc);
        if (rc == PCRE2_ERROR_NOMATCH && end < n) { /* none starts before end: go on from there */
            from = end;
            w = RE_WINDOW / 2;
            continue;
        }
        if (rc != PCRE2_ERROR_PARTIAL) break;
    }
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(rc, msg, sizeof msg);
        tm_errf(E->err, TM_ERR_INPUT, "tokenizer: regex match failed: %s", (char *)msg);
        return -1;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(E->md);
    *ms = ov[0];
    *me = ov[1];
    return 1;
}

static tm_status mt_add(enc *E, size_t a, size_t b, size_t m)
{
    if (grow((void **)&E->mt, &E->cap_mt, E->n_mt + 3, sizeof *E->mt)) return oom(E);
    E->mt[E->n_mt++] = a; E->mt[E->n_mt++] = b; E->mt[E->n_mt++] = m;
    return TM_OK;
}

/* HF Pattern::find_matches: the matches and the gaps between them. */
static tm_status find_matches(enc *E, const pcre2_code *re, const char *s, size_t n)
{
    E->n_mt = 0;
    if (n == 0) return mt_add(E, 0, 0, 0);
    size_t prev = 0, from = 0, ms, me;
    int r;
    while ((r = re_next(E, re, s, n, from, &ms, &me)) == 1) {
        if (prev != ms && mt_add(E, prev, ms, 0)) return TM_ERR_NOMEM;
        if (mt_add(E, ms, me, 1)) return TM_ERR_NOMEM;
        prev = me;
        from = me > ms ? me : me + (me < n ? u8len((uint8_t)s[me]) : 1);
    }
    if (r < 0) return TM_ERR_INPUT;
    if (prev != n) return mt_add(E, prev, n, 0);
    return TM_OK;
}

/* Apply a split behavior to the matches in E->mt, then emit the kept pieces
 * (HF SplitDelimiterBehavior). */
static tm_status split_emit(enc *E, plist *out, const char *s, int behavior, int invert)
{
    size_t k = E->n_mt / 3, w = 0;
    if (grow((void **)&E->mt, &E->cap_mt, 5 * k + 2, sizeof *E->mt)) return oom(E);
    size_t *m = E->mt, *r = E->mt + 3 * k; /* r: (start, end) pairs */
    if (invert)
        for (size_t i = 0; i < k; i++) m[3 * i + 2] = !m[3 * i + 2];
    int prevm = 0;
    if (behavior == SPLIT_MERGED_NEXT) {
        for (size_t i = k; i-- > 0;) {
            int im = (int)m[3 * i + 2];
            if (im && !prevm && w > 0) r[2 * (w - 1)] = m[3 * i];
            else { r[2 * w] = m[3 * i]; r[2 * w + 1] = m[3 * i + 1]; w++; }
            prevm = im;
        }
        for (size_t i = w; i-- > 0;)
            if (pl_add(E, out, s + r[2 * i], r[2 * i + 1] - r[2 * i])) return TM_ERR_NOMEM;
        return TM_OK;
    }
    for (size_t i = 0; i < k; i++) {
        int im = (int)m[3 * i + 2];
        int merge = 0, keep = 1;
        if (behavior == SPLIT_REMOVED) keep = !im;
        else if (behavior == SPLIT_MERGED_PREV) merge = im && !prevm;
        else if (behavior == SPLIT_CONTIGUOUS) merge = im == prevm;
        prevm = im;
        if (!keep) continue;
        if (merge && w > 0) r[2 * (w - 1) + 1] = m[3 * i + 1];
        else { r[2 * w] = m[3 * i]; r[2 * w + 1] = m[3 * i + 1]; w++; }
    }
    for (size_t i = 0; i < w; i++)
        if (pl_add(E, out, s + r[2 * i], r[2 * i + 1] - r[2 * i])) return TM_ERR_NOMEM;
    return TM_OK;
}

/* ---- normalizers --------------------------------------------------------- */

/* Normalize E->norm in place through the chain (using E->tmp). */
static tm_status normalize(enc *E)
{
    const tm_tokenizer *t = E->t;
    for (int i = 0; i < t->n_norm; i++) {
        const tok_norm *nz = &t->norm[i];
        tm_buf *in = &E->norm, *out = &E->tmp;
        tm_buf_clear(out);
        if (in->len == 0) return TM_OK;
        switch (nz->kind) {
        case NORM_NFC: case NORM_NFD: case NORM_NFKC: case NORM_NFKD: {
            int opt = UTF8PROC_STABLE | (nz->kind == NORM_NFC || nz->kind == NORM_NFKC ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE) |
                      (nz->kind == NORM_NFKC || nz->kind == NORM_NFKD ? UTF8PROC_COMPAT : 0);
            utf8proc_uint8_t *o = NULL;
            utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)in->data, (utf8proc_ssize_t)in->len, &o, (utf8proc_option_t)opt);
            if (r < 0) { free(o); return tm_errf(E->err, TM_ERR_INPUT, "tokenizer: normalization failed: %s", utf8proc_errmsg(r)); }
            tm_status st = tm_buf_append(out, o, (size_t)r);
            free(o);
            if (st) return oom(E);
            break;
        }
        case NORM_LOWERCASE: {
            utf8proc_ssize_t p = 0, n = (utf8proc_ssize_t)in->len;
            while (p < n) {
                utf8proc_int32_t cp;
                utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)in->data + p, n - p, &cp);
                if (k <= 0) return tm_errf(E->err, TM_ERR_INPUT, "tokenizer: invalid UTF-8");
                utf8proc_uint8_t enc8[4];
                utf8proc_ssize_t w = utf8proc_encode_char(utf8proc_tolower(cp), enc8);
                if (tm_buf_append(out, enc8, (size_t)w)) return oom(E);
                p += k;
            }
            break;
        }
        case NORM_PREPEND:
            if (tm_buf_append(out, nz->content, nz->content_len) || tm_buf_append(out, in->data, in->len)) return oom(E);
            break;
        case NORM_REPLACE: {
            size_t from = 0, prev = 0, ms, me;
            int r;
            while ((r = re_next(E, nz->re, in->data, in->len, from, &ms, &me)) == 1) {
                if (tm_buf_append(out, in->data + prev, ms - prev) || tm_buf_append(out, nz->content, nz->content_len)) return oom(E);
                prev = me;
                from = me > ms ? me : me + (me < in->len ? u8len((uint8_t)in->data[me]) : 1);
            }
            if (r < 0) return TM_ERR_INPUT;
            if (tm_buf_append(out, in->data + prev, in->len - prev)) return oom(E);
            break;
        }
        }
        tm_buf tmp = E->norm; /* swap */
        E->norm = E->tmp;
        E->tmp = tmp;
    }
    return TM_OK;
}

/* ---- pre-tokenizers ------------------------------------------------------ */

static tm_status bytelevel_map(enc *E, plist *out, const char *s, size_t n)
{
    tm_buf_clear(&E->tmp);
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = tok_byte_to_cp((uint8_t)s[i]);
        char c[2];
        size_t k;
        if (cp < 0x80) { c[0] = (char)cp; k = 1; }
        else { c[0] = (char)(0xC0 | (cp >> 6)); c[1] = (char)(0x80 | (cp & 0x3F)); k = 2; }
        if (tm_buf_append(&E->tmp, c, k)) return oom(E);
    }
    return pl_add(E, out, E->tmp.data, E->tmp.len);
}

/* One pre-tokenizer step over one piece s[0..n). */
static tm_status pretok_piece(enc *E, const tok_pretok *p, plist *out, const char *s, size_t n, int at_origin)
{
    tm_status st;
    switch (p->kind) {
    case PT_SPLIT:
    case PT_DIGITS:
        if ((st = find_matches(E, p->re, s, n))) return st;
        return split_emit(E, out, s, p->behavior, p->invert);
    case PT_BYTELEVEL: {
        const char *src = s;
        size_t len = n;
        tm_buf pre;
        tm_buf_init(&pre);
        if (p->add_prefix_space && (n == 0 || s[0] != ' ')) {
            if (tm_buf_append(&pre, " ", 1) || tm_buf_append(&pre, s, n)) { tm_buf_free(&pre); return oom(E); }
            src = pre.data;
            len = pre.len;
        }
        st = TM_OK;
        if (!p->use_regex) {
            st = bytelevel_map(E, out, src, len);
        } else if (!(st = find_matches(E, p->re, src, len))) {
            size_t k = E->n_mt / 3;
            for (size_t i = 0; i < k && !st; i++)
                st = bytelevel_map(E, out, src + E->mt[3 * i], E->mt[3 * i + 1] - E->mt[3 * i]);
        }
        tm_buf_free(&pre);
        return st;
    }
    case PT_METASPACE: {
        tm_buf b;
        tm_buf_init(&b);
        int starts = n >= p->repl_len && memcmp(s, p->repl, p->repl_len) == 0;
        int prepend = !starts && (p->prepend_scheme == PREPEND_ALWAYS || (p->prepend_scheme == PREPEND_FIRST && at_origin));
        /* a piece that starts with ' ' will start with the replacement */
        if (n > 0 && s[0] == ' ') prepend = 0;
        if (prepend && tm_buf_append(&b, p->repl, p->repl_len)) goto nm;
        for (size_t i = 0; i < n; i++)
            if (s[i] == ' ' ? tm_buf_append(&b, p->repl, p->repl_len) : tm_buf_append(&b, s + i, 1)) goto nm;
        st = TM_OK;
        if (!p->split) {
            st = pl_add(E, out, b.data, b.len);
        } else { /* MergedWithNext on each replacement character */
            size_t start = 0;
            for (size_t i = 0; i + p->repl_len <= b.len && !st; i++)
                if (i > start && memcmp(b.data + i, p->repl, p->repl_len) == 0) { st = pl_add(E, out, b.data + start, i - start); start = i; }
            if (!st && b.len) st = pl_add(E, out, b.data + start, b.len - start);
        }
        tm_buf_free(&b);
        return st;
    nm:
        tm_buf_free(&b);
        return oom(E);
    }
    }
    return TM_OK;
}

/* Run the pre-tokenizer chain on s[0..n); result in E->pa. */
static tm_status pretokenize(enc *E, const char *s, size_t n, int at_origin)
{
    pl_clear(&E->pa);
    tm_status st = pl_add(E, &E->pa, s, n);
    if (st) return st;
    E->pa.first_at_origin = at_origin;
    for (int i = 0; i < E->t->n_pretok; i++) {
        plist *in = &E->pa, *out = &E->pb;
        pl_clear(out);
        size_t start = 0;
        for (size_t k = 0; k < in->n; k++) {
            size_t before = out->n;
            /* out's buffer is separate from in's: pointers into in stay valid */
            if ((st = pretok_piece(E, &E->t->pretok[i], out, in->text.data + start, in->end[k] - start,
                                   k == 0 && in->first_at_origin)))
                return st;
            if (k == 0) out->first_at_origin = in->first_at_origin && out->n > before;
            start = in->end[k];
        }
        plist tmp = E->pa;
        E->pa = E->pb;
        E->pb = tmp;
    }
    return TM_OK;
}

/* ---- BPE ----------------------------------------------------------------- */

static void heap_push(uint64_t *h, size_t *n, uint64_t v)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n)
{
    uint64_t top = h[0], v = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1] < h[c]) c++;
        if (h[c] >= v) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = v;
    return top;
}

static tm_status try_pair(enc *E, int32_t pos)
{
    const sym *a = &E->sy[pos];
    if (a->next < 0) return TM_OK;
    uint64_t key = ((uint64_t)(uint32_t)a->id << 32) | (uint32_t)E->sy[a->next].id;
    const tok_umap_ent *e = tok_umap_get(&E->t->merges, key);
    if (!e) return TM_OK;
    if (grow((void **)&E->heap, &E->cap_heap, E->n_heap + 1, sizeof *E->heap)) return oom(E);
    heap_push(E->heap, &E->n_heap, ((uint64_t)(uint32_t)e->a << 32) | (uint32_t)pos);
    return TM_OK;
}

static tm_status bpe(enc *E, const char *s, size_t n)
{
    const tm_tokenizer *t = E->t;
    if (n == 0) return TM_OK;
    if (t->ignore_merges) {
        int32_t id = tok_smap_get(t, &t->vocab, s, n);
        if (id >= 0) return push_id(E, id);
    }
    if (grow((void **)&E->sy, &E->cap_sy, n + 1, sizeof *E->sy)) return oom(E);
    int32_t ns = 0;
    int last_unk = 0;
    for (size_t i = 0; i < n;) {
        size_t k = u8len((uint8_t)s[i]);
        if (k > n - i) k = n - i;
        int32_t id = tok_smap_get(t, &t->vocab, s + i, k);
        if (id >= 0) {
            E->sy[ns++] = (sym){ id, -1, -1, (int32_t)k };
            last_unk = 0;
        } else {
            int ok = t->byte_fallback;
            for (size_t j = 0; ok && j < k; j++) ok = t->byte_id[(uint8_t)s[i + j]] >= 0;
            if (ok) {
                for (size_t j = 0; j < k; j++) E->sy[ns++] = (sym){ t->byte_id[(uint8_t)s[i + j]], -1, -1, 1 };
                last_unk = 0;
            } else if (t->unk_id >= 0) {
                if (t->fuse_unk && last_unk) E->sy[ns - 1].len += (int32_t)k;
                else E->sy[ns++] = (sym){ t->unk_id, -1, -1, (int32_t)k };
                last_unk = 1;
            }
        }
        i += k;
    }
    for (int32_t i = 0; i < ns; i++) { E->sy[i].prev = i - 1; E->sy[i].next = i + 1 < ns ? i + 1 : -1; }
    E->n_heap = 0;
    for (int32_t i = 0; i + 1 < ns; i++)
        if (try_pair(E, i)) return TM_ERR_NOMEM;
    while (E->n_heap) {
        uint64_t top = heap_pop(E->heap, &E->n_heap);
        int32_t pos = (int32_t)(uint32_t)top, rank = (int32_t)(top >> 32);
        sym *a = &E->sy[pos];
        if (a->len == 0 || a->next < 0) continue;
        sym *b = &E->sy[a->next];
        uint64_t key = ((uint64_t)(uint32_t)a->id << 32) | (uint32_t)b->id;
        const tok_umap_ent *e = tok_umap_get(&t->merges, key);
        if (!e || e->a != rank) continue; /* stale candidate */
        a->id = e->b;
        a->len += b->len;
        b->len = 0;
        a->next = b->next;
        if (a->next >= 0) E->sy[a->next].prev = pos;
        if (a->prev >= 0 && try_pair(E, a->prev)) return TM_ERR_NOMEM;
        if (try_pair(E, pos)) return TM_ERR_NOMEM;
    }
    for (int32_t i = ns > 0 ? 0 : -1; i >= 0; i = E->sy[i].next)
        if (push_id(E, E->sy[i].id)) return TM_ERR_NOMEM;
    return TM_OK;
}

/* ---- added tokens -------------------------------------------------------- */

static int is_ws(const char *s, size_t n, size_t i, size_t *k)
{
    utf8proc_int32_t cp;
    utf8proc_ssize_t r = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
    if (r <= 0) return 0;
    *k = (size_t)r;
    if (cp == ' ' || (cp >= 9 && cp <= 13) || cp == 0x85) return 1;
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP;
}

static int is_word_at(const char *s, size_t n, size_t i)
{
    utf8proc_int32_t cp;
    if (utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp) <= 0) return 0;
    if (cp == '_') return 1;
    utf8proc_category_t c = utf8proc_category(cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) || (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO) ||
           (c >= UTF8PROC_CATEGORY_MN && c <= UTF8PROC_CATEGORY_ME);
}

/* Leftmost-longest added token in s[from..n); lstrip/rstrip widen the match
 * over whitespace (not before floor). 1 if found. */
static int find_added(const tm_tokenizer *t, const tok_trie *tr, const char *s, size_t n, size_t from, size_t floor,
                      size_t *ms, size_t *me, int32_t *id)
{
    if (!tr->any) return 0;
    const uint8_t *u = (const uint8_t *)s;
    for (size_t i = from; i < n; i++) {
        if (!(tr->first[u[i] >> 3] & (1u << (u[i] & 7)))) continue;
        int32_t node = 0, best = -1;
        size_t bestend = 0;
        for (size_t j = i; j < n; j++) {
            const tok_umap_ent *e = tok_umap_get(&tr->edges, ((uint64_t)node << 8) | u[j]);
            if (!e) break;
            node = e->a;
            if (tr->term[node] >= 0) { best = tr->term[node]; bestend = j + 1; }
        }
        if (best < 0) continue;
        const tok_added *a = &t->added[best];
        if (a->single_word) {
            int before = 0, after = bestend < n && is_word_at(s, n, bestend);
            if (i > 0) {
                size_t p = i - 1;
                while (p > 0 && (u[p] & 0xC0) == 0x80) p--;
                before = is_word_at(s, n, p);
            }
            if (before || after) continue;
        }
        size_t a0 = i, b0 = bestend, k;
        if (a->lstrip)
            while (a0 > floor) {
                size_t p = a0 - 1;
                while (p > floor && (u[p] & 0xC0) == 0x80) p--;
                if (!is_ws(s, n, p, &k)) break;
                a0 = p;
            }
        if (a->rstrip)
            while (b0 < n && is_ws(s, n, b0, &k)) b0 += k;
        *ms = a0;
        *me = b0;
        *id = a->id;
        return 1;
    }
    return 0;
}

/* Normalize, cut by normalized added tokens, pre-tokenize and BPE one segment. */
static tm_status segment(enc *E, const char *s, size_t n, int at_origin)
{
    const tm_tokenizer *t = E->t;
    tm_buf_clear(&E->norm);
    if (tm_buf_append(&E->norm, s, n)) return oom(E);
    tm_status st = normalize(E);
    if (st) return st;
    /* E->norm is not touched below (pre-tokenizers use pa/pb/tmp) */
    tm_buf seg = E->norm;
    tm_buf_init(&E->norm);
    size_t pos = 0, ms, me;
    int32_t id;
    while (pos <= seg.len) {
        int f = find_added(t, &t->trie_norm, seg.data, seg.len, pos, pos, &ms, &me, &id);
        size_t end = f ? ms : seg.len;
        if (end > pos) {
            if ((st = pretokenize(E, seg.data + pos, end - pos, at_origin && pos == 0))) break;
            size_t start = 0;
            for (size_t k = 0; k < E->pa.n && !st; k++) {
                st = bpe(E, E->pa.text.data + start, E->pa.end[k] - start);
                start = E->pa.end[k];
            }
            if (st) break;
        }
        if (!f) break;
        if ((st = push_id(E, id))) break;
        pos = me;
    }
    tm_buf_free(&E->norm);
    E->norm = seg;
    return st;
}

tm_status tm_tokenizer_encode(const tm_tokenizer *t, const char *text, size_t len, int add_bos,
                              int32_t **ids, size_t *n, tm_err *err)
{
    if (!ids || !n) return tm_errf(err, TM_ERR_USAGE, "tm_tokenizer_encode: NULL output");
    *ids = NULL;
    *n = 0;
    if (!t || (!text && len)) return tm_errf(err, TM_ERR_USAGE, "tm_tokenizer_encode: NULL argument");
    if (len && !tok_utf8_valid(text, len)) return tm_errf(err, TM_ERR_INPUT, "tokenizer: input text is not valid UTF-8");
    enc E;
    memset(&E, 0, sizeof E);
    E.t = t;
    E.err = err;
    tm_status st = TM_OK;
    if (!(E.md = pcre2_match_data_create(2, NULL)) || !(E.mc = pcre2_match_context_create(NULL))) {
        st = oom(&E);
        goto out;
    }
    pcre2_set_match_limit(E.mc, RE_MATCH_LIMIT);
    E.budget = (uint64_t)RE_BUDGET_PER_BYTE * ((uint64_t)len + RE_WINDOW);
    if (add_bos && t->bos_id >= 0 && (st = push_id(&E, t->bos_id))) goto out;
    size_t pos = 0, ms, me;
    int32_t id;
    while (pos <= len) {
        int f = find_added(t, &t->trie_raw, text, len, pos, pos, &ms, &me, &id);
        size_t end = f ? ms : len;
        if (end > pos && (st = segment(&E, text + pos, end - pos, pos == 0))) goto out;
        if (!f) break;
        if ((st = push_id(&E, id))) goto out;
        pos = me;
    }
out:
    pcre2_match_data_free(E.md);
    pcre2_match_context_free(E.mc);
    tm_buf_free(&E.pa.text); free(E.pa.end);
    tm_buf_free(&E.pb.text); free(E.pb.end);
    tm_buf_free(&E.norm); tm_buf_free(&E.tmp);
    free(E.mt); free(E.sy); free(E.heap);
    if (st) { free(E.ids); return st; }
    if (!E.ids && !(E.ids = malloc(sizeof *E.ids))) return tm_errf(err, TM_ERR_NOMEM, "tokenizer: out of memory");
    *ids = E.ids;
    *n = E.n_ids;
    return TM_OK;
}
