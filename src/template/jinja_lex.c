/* jinja_lex.c — Jinja2 source -> tokens, following jinja2.lexer (3.1):
 * newlines normalised to \n and one trailing newline dropped (as with
 * keep_trailing_newline=False); {%- / -%} strip all whitespace, {%+ / +%}
 * disable lstrip_blocks / trim_blocks for that tag; end markers are only
 * recognised outside brackets; string literals are decoded like Python's
 * unicode-escape codec (what jinja2 does). */
#include "template/jinja_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;
    size_t n, pos;
    int line;
    unsigned flags;
    jarena *a;
    jtoks *out;
    tm_err *err;
} lx;

static int push(lx *L, jtok_kind k, int line, const jstr *s)
{
    jtoks *t = L->out;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        jtok *nv = ja_alloc(L->a, cap * sizeof *nv);
        if (!nv) return -1;
        if (t->n) memcpy(nv, t->v, t->n * sizeof *nv);
        t->v = nv;
        t->cap = cap;
    }
    t->v[t->n++] = (jtok){.k = k, .line = line, .s = s};
    return 0;
}

static tm_status oom(lx *L) { return tm_errf(L->err, TM_ERR_NOMEM, "chat template: out of memory"); }

static int count_nl(const char *s, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n; i++) c += s[i] == '\n';
    return c;
}

/* Length of the Python-whitespace run at s[0..n) from the end (rstrip). */
static size_t rstrip_len(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t e = n;
    while (e > 0) {
        size_t k = e - 1;
        while (k > 0 && (p[k] & 0xc0) == 0x80 && e - k < 4) k--;
        uint32_t c;
        size_t l = ju8_dec(p + k, e - k, &c);
        if (l != e - k || !ju8_space(c)) break;
        e = k;
    }
    return e;
}

static size_t lstrip_pos(const char *s, size_t n, size_t i)
{
    uint32_t c;
    while (i < n) {
        size_t l = ju8_dec((const unsigned char *)s + i, n - i, &c);
        if (!ju8_space(c)) break;
        i += l;
    }
    return i;
}

static int is_ident(char c, int first)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9');
}

static void put_utf8(char *o, size_t *k, uint32_t c)
{
    if (c < 0x80) o[(*k)++] = (char)c;
    else if (c < 0x800) { o[(*k)++] = (char)(0xc0 | c >> 6); o[(*k)++] = (char)(0x80 | (c & 0x3f)); }
    else if (c < 0x10000) {
        o[(*k)++] = (char)(0xe0 | c >> 12);
        o[(*k)++] = (char)(0x80 | ((c >> 6) & 0x3f));
        o[(*k)++] = (char)(0x80 | (c & 0x3f));
    } else {
        o[(*k)++] = (char)(0xf0 | c >> 18);
        o[(*k)++] = (char)(0x80 | ((c >> 12) & 0x3f));
        o[(*k)++] = (char)(0x80 | ((c >> 6) & 0x3f));
        o[(*k)++] = (char)(0x80 | (c & 0x3f));
    }
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decode the body of a string literal s[0..n) (Python unicode-escape). */
static tm_status decode_string(lx *L, const char *s, size_t n, int line, const jstr **out)
{
    char *o = malloc(n + 1);
    if (!o) return oom(L);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) { o[k++] = s[i]; continue; }
        char c = s[++i];
        int w = 0;
        switch (c) {
        case '\n': break;
        case '\\': o[k++] = '\\'; break;
        case '\'': o[k++] = '\''; break;
        case '"': o[k++] = '"'; break;
        case 'a': o[k++] = '\a'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'n': o[k++] = '\n'; break;
        case 'r': o[k++] = '\r'; break;
        case 't': o[k++] = '\t'; break;
        case 'v': o[k++] = '\v'; break;
        case 'x': w = 2; break;
        case 'u': w = 4; break;
        case 'U': w = 8; break;
        default:
            if (c >= '0' && c <= '7') {
                uint32_t v = 0;
                int d = 0;
                while (d < 3 && i < n && s[i] >= '0' && s[i] <= '7') v = v * 8 + (uint32_t)(s[i++] - '0'), d++;
                i--;
                put_utf8(o, &k, v);
            } else {
                o[k++] = '\\';
                o[k++] = c;
            }
        }
        if (w) {
            uint32_t v = 0;
            for (int d = 0; d < w; d++) {
                int h = i + 1 + (size_t)d < n ? hexval(s[i + 1 + d]) : -1;
                if (h < 0) {
                    free(o);
                    return tm_errf(L->err, TM_ERR_INPUT, "line %d: truncated \\%c escape in a string", line, c);
                }
                v = v * 16 + (uint32_t)h;
            }
            i += (size_t)w;
            if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
                free(o);
                return tm_errf(L->err, TM_ERR_INPUT, "line %d: \\%c escape out of range in a string", line, c);
            }
            put_utf8(o, &k, v);
        }
    }
    *out = jstr_new(L->a, o, k);
    free(o);
    return *out ? TM_OK : oom(L);
}

static const char *const k_ops[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]",
                                    "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"};

/* An integer or float literal at L->pos (digits, '_' separators, fraction, exponent). */
static tm_status lex_number(lx *L)
{
    const char *s = L->s;
    size_t n = L->n, i = L->pos;
    size_t j = i;
    int is_float = 0;
    while (j < n && ((s[j] >= '0' && s[j] <= '9') || s[j] == '_')) j++;
    if (j + 1 < n && s[j] == '.' && s[j + 1] >= '0' && s[j + 1] <= '9') {
        is_float = 1;
        j++;
        while (j < n && ((s[j] >= '0' && s[j] <= '9') || s[j] == '_')) j++;
    }
    if (j < n && (s[j] == 'e' || s[j] == 'E')) {
        size_t k = j + 1;
        if (k < n && (s[k] == '+' || s[k] == '-')) k++;
        if (k < n && s[k] >= '0' && s[k] <= '9') {
            is_float = 1;
            while (k < n && s[k] >= '0' && s[k] <= '9') k++;
            j = k;
        }
    }
    char buf[64];
    size_t bl = 0;
    for (size_t k = i; k < j && bl < sizeof buf - 1; k++)
        if (s[k] != '_') buf[bl++] = s[k];
    buf[bl] = 0;
    if (j - i >= sizeof buf - 1)
        return tm_errf(L->err, TM_ERR_INPUT, "line %d: number literal too long", L->line);
    if (push(L, is_float ? JT_FLOAT : JT_INT, L->line, NULL)) return oom(L);
    jtok *t = &L->out->v[L->out->n - 1];
    if (is_float) t->f = strtod(buf, NULL);
    else {
        char *ep;
        unsigned long long v = strtoull(buf, &ep, 10);
        if (v > INT64_MAX || bl > 19)
            return tm_errf(L->err, TM_ERR_INPUT, "line %d: integer literal too large", L->line);
        t->i = (int64_t)v;
    }
    L->pos = j;
    return TM_OK;
}

/* A quoted string literal at L->pos. */
static tm_status lex_string(lx *L)
{
    const char *s = L->s;
    size_t n = L->n, i = L->pos;
    char c = s[i];
    size_t j = i + 1;
    int line = L->line;
    while (j < n && s[j] != c) {
        if (s[j] == '\\' && j + 1 < n) j++;
        j++;
    }
    if (j >= n) return tm_errf(L->err, TM_ERR_INPUT, "line %d: unterminated string", line);
    const jstr *v;
    tm_status st = decode_string(L, s + i + 1, j - i - 1, line, &v);
    if (st) return st;
    if (push(L, JT_STRING, line, v)) return oom(L);
    L->line += count_nl(s + i, j - i);
    L->pos = j + 1;
    return TM_OK;
}

/* Tokens inside {{ }} (block 0) or {% %} (block 1), up to and past the end marker. */
static tm_status lex_tag(lx *L, int block, int *line_starting)
{
    int depth = 0;
    const char *s = L->s;
    size_t n = L->n;
    for (;;) {
        size_t i = L->pos;
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' || s[i] == '\v')) {
            if (s[i] == '\n') L->line++;
            i++;
        }
        L->pos = i;
        if (i >= n) return tm_errf(L->err, TM_ERR_INPUT, "line %d: unexpected end of template (unclosed %s)",
                                   L->line, block ? "{%" : "{{");
        const char *end = block ? "%}" : "}}";
        if (depth == 0) {
            size_t e = 0;
            int strip = 0, keep = 0;
            if (s[i] == '-' && i + 2 < n + 0 && !memcmp(s + i + 1, end, 2)) e = 3, strip = 1;
            else if (block && s[i] == '+' && i + 2 < n + 0 && !memcmp(s + i + 1, end, 2)) e = 3, keep = 1;
            else if (i + 1 < n && !memcmp(s + i, end, 2)) e = 2;
            if (e) {
                if (push(L, block ? JT_BLOCK_END : JT_VAR_END, L->line, NULL)) return oom(L);
                size_t j = i + e;
                if (strip) {
                    size_t k = lstrip_pos(s, n, j);
                    L->line += count_nl(s + j, k - j);
                    j = k;
                } else if (block && !keep && (L->flags & TM_JINJA_TRIM_BLOCKS) && j < n && s[j] == '\n') {
                    j++;
                    L->line++;
                }
                *line_starting = s[j - 1] == '\n';
                L->pos = j;
                return TM_OK;
            }
        }
        char c = s[i];
        if (is_ident(c, 1)) {
            size_t j = i;
            while (j < n && is_ident(s[j], 0)) j++;
            const jstr *nm = jstr_new(L->a, s + i, j - i);
            if (!nm || push(L, JT_NAME, L->line, nm)) return oom(L);
            L->pos = j;
        } else if (c >= '0' && c <= '9') {
            tm_status st = lex_number(L);
            if (st) return st;
        } else if (c == '\'' || c == '"') {
            tm_status st = lex_string(L);
            if (st) return st;
        } else {
            const char *op = NULL;
            for (size_t k = 0; k < sizeof k_ops / sizeof k_ops[0] && !op; k++) {
                size_t m = strlen(k_ops[k]);
                if (i + m <= n && !memcmp(s + i, k_ops[k], m)) op = k_ops[k];
            }
            if (!op) return tm_errf(L->err, TM_ERR_INPUT, "line %d: unexpected character '%c'", L->line, c);
            if (*op == '(' || *op == '[' || *op == '{') depth++;
            if ((*op == ')' || *op == ']' || *op == '}') && depth > 0) depth--;
            const jstr *o = jstr_c(L->a, op);
            if (!o || push(L, JT_OP, L->line, o)) return oom(L);
            L->pos = i + strlen(op);
        }
    }
}

/* After "{% raw ... %}": the text up to {% endraw %} becomes data. */
static int match_endraw(const char *s, size_t n, size_t i, size_t *end, int *strip_before, int *strip_after)
{
    if (i + 2 > n || s[i] != '{' || s[i + 1] != '%') return 0;
    size_t j = i + 2;
    *strip_before = j < n && s[j] == '-';
    if (j < n && (s[j] == '-' || s[j] == '+')) j++;
    while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n')) j++;
    if (j + 6 > n || memcmp(s + j, "endraw", 6)) return 0;
    j += 6;
    while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n')) j++;
    *strip_after = j < n && s[j] == '-';
    if (j < n && (s[j] == '-' || s[j] == '+')) j++;
    if (j + 2 > n || s[j] != '%' || s[j + 1] != '}') return 0;
    *end = j + 2;
    return 1;
}

static tm_status emit_data(lx *L, const char *p, size_t len, int line)
{
    if (!len) return TM_OK;
    const jstr *d = jstr_new(L->a, p, len);
    if (!d || push(L, JT_DATA, line, d)) return oom(L);
    return TM_OK;
}

/* A raw block starting at the "{%" at i (sign already checked); 1 if it was one. */
static int try_raw(lx *L, size_t i, tm_status *st, int *line_starting)
{
    const char *s = L->s;
    size_t n = L->n, j = i + 2;
    if (j < n && (s[j] == '-' || s[j] == '+')) j++;
    while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n')) j++;
    if (j + 3 > n || memcmp(s + j, "raw", 3) || (j + 3 < n && is_ident(s[j + 3], 0))) return 0;
    j += 3;
    while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n')) j++;
    int strip = j < n && s[j] == '-';
    if (j < n && (s[j] == '-' || s[j] == '+')) j++;
    if (j + 2 > n || s[j] != '%' || s[j + 1] != '}') return 0;
    j += 2;
    if (strip) j = lstrip_pos(s, n, j);
    else if ((L->flags & TM_JINJA_TRIM_BLOCKS) && j < n && s[j] == '\n') j++;
    size_t body = j, end = 0;
    int sb = 0, sa = 0;
    while (j < n && !match_endraw(s, n, j, &end, &sb, &sa)) j++;
    L->line += count_nl(s + i, body - i);
    if (j >= n) {
        *st = tm_errf(L->err, TM_ERR_INPUT, "line %d: missing {%% endraw %%}", L->line);
        return 1;
    }
    size_t blen = sb ? rstrip_len(s + body, j - body) : j - body;
    if ((*st = emit_data(L, s + body, blen, L->line))) return 1;
    L->line += count_nl(s + body, end - body);
    if (sa) {
        size_t k = lstrip_pos(s, n, end);
        L->line += count_nl(s + end, k - end);
        end = k;
    } else if ((L->flags & TM_JINJA_TRIM_BLOCKS) && end < n && s[end] == '\n') {
        end++;
        L->line++;
    }
    *line_starting = s[end - 1] == '\n';
    L->pos = end;
    return 1;
}

tm_status jinja_lex(const char *src, size_t len, unsigned flags, jarena *a, jtoks *out, tm_err *err)
{
    char *s = ja_alloc(a, len + 1);
    if (!s) return tm_errf(err, TM_ERR_NOMEM, "chat template: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) { /* \r\n and \r -> \n */
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    lx L = {s, n, 0, 1, flags, a, out, err};
    int line_starting = 1;
    tm_status st;
    while (L.pos < n) {
        size_t i = L.pos;
        while (i + 1 < n && !(s[i] == '{' && (s[i + 1] == '{' || s[i + 1] == '%' || s[i + 1] == '#'))) i++;
        if (i + 1 >= n) { /* no tag: the rest is data */
            if ((st = emit_data(&L, s + L.pos, n - L.pos, L.line))) return st;
            break;
        }
        char kind = s[i + 1], sign = i + 2 < n ? s[i + 2] : 0;
        if (sign != '-' && sign != '+') sign = 0;
        size_t tlen = i - L.pos;
        if (sign == '-') {
            tlen = rstrip_len(s + L.pos, tlen);
        } else if (sign != '+' && (flags & TM_JINJA_LSTRIP_BLOCKS) && kind != '{') {
            size_t lp = 0;
            for (size_t k = tlen; k > 0; k--)
                if (s[L.pos + k - 1] == '\n') { lp = k; break; }
            if (lp > 0 || line_starting) {
                size_t k = lp;
                while (k < tlen && ju8_space((unsigned char)s[L.pos + k]) && s[L.pos + k] != '\n') k++;
                if (k == tlen) tlen = lp;
            }
        }
        if ((st = emit_data(&L, s + L.pos, tlen, L.line))) return st;
        L.line += count_nl(s + L.pos, i - L.pos);
        if (kind == '#') {
            size_t j = i + 2;
            while (j + 1 < n && !(s[j] == '#' && s[j + 1] == '}')) j++;
            if (j + 1 >= n) return tm_errf(err, TM_ERR_INPUT, "line %d: unclosed comment", L.line);
            int strip = s[j - 1] == '-' && j - 1 > i + 2, keep = s[j - 1] == '+' && j - 1 > i + 2;
            L.line += count_nl(s + i, j + 2 - i);
            j += 2;
            if (strip) {
                size_t k = lstrip_pos(s, n, j);
                L.line += count_nl(s + j, k - j);
                j = k;
            } else if (!keep && (flags & TM_JINJA_TRIM_BLOCKS) && j < n && s[j] == '\n') {
                j++;
                L.line++;
            }
            line_starting = s[j - 1] == '\n';
            L.pos = j;
            continue;
        }
        if (kind == '%') {
            st = TM_OK;
            if (try_raw(&L, i, &st, &line_starting)) {
                if (st) return st;
                continue;
            }
        }
        if (push(&L, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, L.line, NULL))
            return tm_errf(err, TM_ERR_NOMEM, "chat template: out of memory");
        L.pos = i + 2 + (sign ? 1 : 0);
        if ((st = lex_tag(&L, kind == '%', &line_starting))) return st;
    }
    if (push(&L, JT_EOF, L.line, NULL)) return tm_errf(err, TM_ERR_NOMEM, "chat template: out of memory");
    return TM_OK;
}
