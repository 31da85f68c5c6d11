/* gram_regex.c — the regex subset (pattern, guided_regex) and the JSON
 * string pieces it shares with gram_schema.c.
 *
 * Regex subset: literals (UTF-8), '.', classes [...] / [^...] with ranges and
 * \d \w \s (\D \W \S), groups (...) (?:...), '|', quantifiers ? * + {m}
 * {m,} {m,n} (a lazy '?' after one is allowed: same language), escapes of
 * punctuation, \n \t \r \f \v \xHH \uXXXX. The whole text must match: '^'
 * first and '$' last are allowed and implied. Anything else (backreferences,
 * lookaround, \b, \p{..}, possessive, non-ASCII ranges) is refused.
 * Negated classes and \D \W \S match ASCII only, and '.' matches no control
 * character in a JSON string: the engine allows a subset of what the regex
 * matches, never more. In json_mode the regex describes a JSON string's
 * decoded contents: '"' and '\' are emitted as \" and \\, controls as escapes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/gram_int.h"

int32_t gb_utf8_any(gb *b)
{
    /* Factored by bytes still to come, so that every path shares its tail
     * states (a smaller DFA: strings with maxLength repeat this per character). */
    int32_t t = gb_range(b, 0x80, 0xBF);
    int32_t k2[4] = {gb_alt2(b, gb_range(b, 0xE1, 0xEC), gb_range(b, 0xEE, 0xEF)),
                     gb_seq2(b, gb_byte(b, 0xF0), gb_range(b, 0x90, 0xBF)), gb_seq2(b, gb_range(b, 0xF1, 0xF3), t),
                     gb_seq2(b, gb_byte(b, 0xF4), gb_range(b, 0x80, 0x8F))};
    int32_t need2 = gb_altv(b, k2, 4);
    int32_t k1[4] = {gb_range(b, 0xC2, 0xDF), gb_seq2(b, gb_byte(b, 0xE0), gb_range(b, 0xA0, 0xBF)),
                     gb_seq2(b, gb_byte(b, 0xED), gb_range(b, 0x80, 0x9F)), gb_seq2(b, need2, t)};
    return gb_seq2(b, gb_altv(b, k1, 4), t);
}

static int32_t hex(gb *b)
{
    uint32_t bits[8] = {0};
    for (const char *p = "0123456789abcdefABCDEF"; *p; p++) bits[(uint8_t)*p >> 5] |= 1u << (*p & 31);
    return gb_set(b, bits);
}

int32_t gb_json_char(gb *b)
{
    uint32_t plain[8] = {0}, esc[8] = {0}, first[8] = {0};
    for (int c = 0x20; c < 0x80; c++)
        if (c != '"' && c != '\\') plain[c >> 5] |= 1u << (c & 31);
    for (const char *p = "\"\\/bfnrt"; *p; p++) esc[(uint8_t)*p >> 5] |= 1u << (*p & 31);
    for (const char *p = "0123456789abcABCefEF"; *p; p++) first[(uint8_t)*p >> 5] |= 1u << (*p & 31);
    /* \uXXXX without surrogates: a lone one is not valid text */
    int32_t u = gb_seq3(b, gb_byte(b, 'u'),
                        gb_alt2(b, gb_seq2(b, gb_set(b, first), hex(b)),
                                gb_seq2(b, gb_alt2(b, gb_byte(b, 'd'), gb_byte(b, 'D')), gb_range(b, '0', '7'))),
                        gb_rep(b, hex(b), 2, 2));
    int32_t k[3] = {gb_set(b, plain), gb_utf8_any(b), gb_seq2(b, gb_byte(b, '\\'), gb_alt2(b, gb_set(b, esc), u))};
    return gb_altv(b, k, 3);
}

int32_t gb_json_string_body(gb *b, int32_t min, int32_t max) { return gb_rep(b, gb_json_char(b), min, max); }

/* ---- parser ------------------------------------------------------------- */

typedef struct rx {
    gb *b;
    const uint8_t *s;
    size_t n, i;
    int json, depth;
    const char *where;
} rx;

static int32_t rx_fail(rx *r, const char *what)
{
    return gb_fail(r->b, TM_ERR_INPUT, "%s: regex: %s at offset %zu not supported", r->where, what, r->i);
}

static int32_t bits_node(rx *r, const uint32_t bits[8])
{
    for (int w = 0; w < 8; w++)
        if (bits[w]) return gb_set(r->b, bits);
    return gb_fail(r->b, TM_ERR_INPUT, "%s: regex: empty character class", r->where);
}

/* One code point as output bytes. */
static int32_t emit_cp(rx *r, uint32_t cp)
{
    char buf[8];
    if (r->json && (cp == '"' || cp == '\\')) { buf[0] = '\\'; buf[1] = (char)cp; return gb_lit(r->b, buf, 2); }
    if (r->json && cp < 0x20) {
        const char *e = cp == '\n' ? "\\n" : cp == '\t' ? "\\t" : cp == '\r' ? "\\r" : cp == 8 ? "\\b" : cp == 12 ? "\\f" : NULL;
        if (e) return gb_str(r->b, e);
        snprintf(buf, sizeof buf, "\\u%04x", (unsigned)cp);
        return gb_str(r->b, buf);
    }
    size_t n;
    if (cp < 0x80) { buf[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { buf[0] = (char)(0xC0 | cp >> 6); buf[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) {
        buf[0] = (char)(0xE0 | cp >> 12); buf[1] = (char)(0x80 | (cp >> 6 & 0x3F)); buf[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
    } else {
        buf[0] = (char)(0xF0 | cp >> 18); buf[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        buf[2] = (char)(0x80 | (cp >> 6 & 0x3F)); buf[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
    }
    return gb_lit(r->b, buf, n);
}

/* An ASCII set (bits over 0..127) as output. */
static int32_t emit_ascii(rx *r, const uint32_t in[8])
{
    if (!r->json) return bits_node(r, in);
    uint32_t plain[8] = {0};
    int32_t k[40];
    int32_t n = 0;
    for (int c = 0; c < 128; c++) {
        if (!(in[c >> 5] >> (c & 31) & 1)) continue;
        if (c >= 0x20 && c != '"' && c != '\\') plain[c >> 5] |= 1u << (c & 31);
        else if (n < 38) k[n++] = emit_cp(r, (uint32_t)c);
    }
    int any = 0;
    for (int w = 0; w < 8; w++) any |= plain[w] != 0;
    if (any) k[n++] = gb_set(r->b, plain);
    if (!n) return gb_fail(r->b, TM_ERR_INPUT, "%s: regex: empty character class", r->where);
    return gb_altv(r->b, k, n);
}

static void set_bit(uint32_t b[8], int c) { b[c >> 5] |= 1u << (c & 31); }

/* \d \w \s (and negations) into bits; returns 1 if letter is one. */
static int class_escape(uint8_t e, uint32_t bits[8])
{
    uint32_t t[8] = {0};
    int neg = e == 'D' || e == 'W' || e == 'S';
    switch (e | 0x20) {
    case 'd': for (int c = '0'; c <= '9'; c++) set_bit(t, c); break;
    case 'w':
        for (int c = 0; c < 128; c++)
            if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') set_bit(t, c);
        break;
    case 's': for (const char *p = " \t\n\r\f\v"; *p; p++) set_bit(t, *p); break;
    default: return 0;
    }
    if (!(e == 'd' || e == 'w' || e == 's' || neg)) return 0;
    for (int c = 0; c < 128; c++)
        if ((int)(t[c >> 5] >> (c & 31) & 1) != neg) set_bit(bits, c);
    return 1;
}

/* Decode one UTF-8 code point at r->i (advances); -1 on invalid. */
static int64_t next_cp(rx *r)
{
    uint8_t c = r->s[r->i];
    size_t k = c < 0x80 ? 1 : (c >= 0xC2 && c < 0xE0) ? 2 : (c >= 0xE0 && c < 0xF0) ? 3 : (c >= 0xF0 && c < 0xF5) ? 4 : 0;
    if (!k || r->i + k > r->n) return -1;
    uint32_t cp = k == 1 ? c : k == 2 ? (c & 0x1Fu) : k == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (size_t j = 1; j < k; j++) {
        if ((r->s[r->i + j] & 0xC0) != 0x80) return -1;
        cp = cp << 6 | (r->s[r->i + j] & 0x3Fu);
    }
    r->i += k;
    return cp;
}

/* After a backslash: a literal code point, or -2 (class escape written to bits), -1 error. */
static int64_t escape(rx *r, uint32_t bits[8])
{
    if (r->i >= r->n) return rx_fail(r, "trailing backslash");
    uint8_t e = r->s[r->i++];
    if (class_escape(e, bits)) return -2;
    switch (e) {
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    case 'f': return '\f';
    case 'v': return '\v';
    case 'x': case 'u': {
        size_t nd = e == 'x' ? 2 : 4;
        if (r->i + nd > r->n) return rx_fail(r, "short \\x/\\u escape");
        uint32_t v = 0;
        for (size_t j = 0; j < nd; j++) {
            uint8_t h = r->s[r->i + j];
            int d = h >= '0' && h <= '9' ? h - '0' : (h | 0x20) >= 'a' && (h | 0x20) <= 'f' ? (h | 0x20) - 'a' + 10 : -1;
            if (d < 0) return rx_fail(r, "bad hex escape");
            v = v * 16 + (uint32_t)d;
        }
        r->i += nd;
        if (v >= 0xD800 && v <= 0xDFFF) return rx_fail(r, "surrogate escape");
        return v;
    }
    }
    if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) { r->i--; return rx_fail(r, "escape"); }
    if (e >= 0x80) { r->i--; return rx_fail(r, "escaped non-ASCII"); }
    return e;
}

static int32_t parse_class(rx *r)
{
    uint32_t bits[8] = {0};
    int32_t extra[64];
    int32_t n_extra = 0, neg = 0, first = 1;
    if (r->i < r->n && r->s[r->i] == '^') { neg = 1; r->i++; }
    for (;;) {
        if (r->i >= r->n) return rx_fail(r, "unterminated class");
        if (r->s[r->i] == ']' && !first) { r->i++; break; }
        first = 0;
        int64_t lo;
        if (r->s[r->i] == '\\') { r->i++; lo = escape(r, bits); if (lo == -2) continue; }
        else if (r->s[r->i] == '[' && r->i + 1 < r->n && r->s[r->i + 1] == ':') return rx_fail(r, "POSIX class");
        else lo = next_cp(r);
        if (lo < 0) return lo == -1 && r->b->st == TM_OK ? rx_fail(r, "invalid UTF-8") : -1;
        int64_t hi = lo;
        if (r->i + 1 < r->n && r->s[r->i] == '-' && r->s[r->i + 1] != ']') {
            r->i++;
            if (r->s[r->i] == '\\') { r->i++; hi = escape(r, bits); if (hi == -2) return rx_fail(r, "class escape as range end"); }
            else hi = next_cp(r);
            if (hi < 0) return hi == -1 && r->b->st == TM_OK ? rx_fail(r, "invalid UTF-8") : -1;
            if (hi < lo) return rx_fail(r, "reversed range");
        }
        if (hi < 0x80) { for (int64_t c = lo; c <= hi; c++) set_bit(bits, (int)c); continue; }
        if (neg || hi != lo) return rx_fail(r, "non-ASCII range or negated non-ASCII");
        if (n_extra >= 62) return rx_fail(r, "more than 62 non-ASCII class members");
        extra[n_extra++] = emit_cp(r, (uint32_t)lo);
    }
    if (neg) {
        for (int w = 0; w < 4; w++) bits[w] = ~bits[w];
        for (int w = 4; w < 8; w++) bits[w] = 0;
        bits[0] &= ~(1u << '\n');
    }
    int any = 0;
    for (int w = 0; w < 8; w++) any |= bits[w] != 0;
    if (any) extra[n_extra++] = emit_ascii(r, bits);
    if (!n_extra) return gb_fail(r->b, TM_ERR_INPUT, "%s: regex: empty character class", r->where);
    return gb_altv(r->b, extra, n_extra);
}

static int32_t parse_alt(rx *r);

static int32_t parse_atom(rx *r)
{
    uint8_t c = r->s[r->i];
    uint32_t bits[8] = {0};
    switch (c) {
    case '(':
        r->i++;
        if (r->i + 1 < r->n && r->s[r->i] == '?') {
            if (r->s[r->i + 1] != ':') return rx_fail(r, "group flag (?...)");
            r->i += 2;
        }
        if (++r->depth > TM_GRAMMAR_MAX_DEPTH) return rx_fail(r, "group nesting too deep");
        int32_t x = parse_alt(r);
        r->depth--;
        if (x < 0) return -1;
        if (r->i >= r->n || r->s[r->i] != ')') return rx_fail(r, "unbalanced '('");
        r->i++;
        return x;
    case '[': r->i++; return parse_class(r);
    case '.': {
        r->i++;
        for (int k = r->json ? 0x20 : 0; k < 128; k++)
            if (k != '\n') set_bit(bits, k);
        return gb_alt2(r->b, emit_ascii(r, bits), gb_utf8_any(r->b));
    }
    case '\\': {
        r->i++;
        int64_t cp = escape(r, bits);
        if (cp == -2) return emit_ascii(r, bits);
        return cp < 0 ? -1 : emit_cp(r, (uint32_t)cp);
    }
    case '^': return rx_fail(r, "'^' not at the start");
    case '$': return rx_fail(r, "'$' not at the end");
    case '*': case '+': case '?': case '{': return rx_fail(r, "quantifier with nothing before it");
    }
    int64_t cp = next_cp(r);
    if (cp < 0) return rx_fail(r, "invalid UTF-8");
    return emit_cp(r, (uint32_t)cp);
}

static int read_int(rx *r, int32_t *v)
{
    size_t st = r->i;
    int64_t x = 0;
    while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9' && x <= TM_GRAMMAR_MAX_REPEAT)
        x = x * 10 + (r->s[r->i++] - '0');
    if (r->i == st) return 0;
    if (x > TM_GRAMMAR_MAX_REPEAT) return -1;
    *v = (int32_t)x;
    return 1;
}

static int32_t quantify(rx *r, int32_t x)
{
    while (r->i < r->n && x >= 0) {
        uint8_t c = r->s[r->i];
        int32_t lo, hi;
        if (c == '*') { lo = 0; hi = -1; r->i++; }
        else if (c == '+') { lo = 1; hi = -1; r->i++; }
        else if (c == '?') { lo = 0; hi = 1; r->i++; }
        else if (c == '{') {
            size_t at = r->i++;
            int k = read_int(r, &lo);
            if (k < 0) return rx_fail(r, "repetition count above the limit");
            if (k == 0) { r->i = at; return rx_fail(r, "'{' that is not a count"); }
            hi = lo;
            if (r->i < r->n && r->s[r->i] == ',') {
                r->i++;
                k = read_int(r, &hi);
                if (k < 0) return rx_fail(r, "repetition count above the limit");
                if (k == 0) hi = -1;
            }
            if (r->i >= r->n || r->s[r->i] != '}') return rx_fail(r, "unterminated {m,n}");
            r->i++;
        } else break;
        if (r->i < r->n && r->s[r->i] == '?') r->i++;  /* lazy: same language */
        else if (r->i < r->n && r->s[r->i] == '+') return rx_fail(r, "possessive quantifier");
        x = gb_rep(r->b, x, lo, hi);
    }
    return x;
}

static int32_t parse_seq(rx *r)
{
    int32_t *k = NULL, n = 0, cap = 0, res = -1;
    while (r->i < r->n && r->s[r->i] != '|' && r->s[r->i] != ')') {
        if (r->s[r->i] == '$' && r->i + 1 == r->n && r->depth == 0) { r->i++; break; }
        int32_t x = quantify(r, parse_atom(r));
        if (x < 0) goto out;
        if (n == cap) {
            int32_t c = cap ? cap * 2 : 16;
            int32_t *nk = realloc(k, (size_t)c * sizeof *nk);
            if (!nk) { gb_fail(r->b, TM_ERR_NOMEM, "out of memory"); goto out; }
            k = nk;
            cap = c;
        }
        k[n++] = x;
    }
    res = gb_seqv(r->b, k, n);
out:
    free(k);
    return res;
}

static int32_t parse_alt(rx *r)
{
    int32_t k[256], n = 0;
    for (;;) {
        int32_t x = parse_seq(r);
        if (x < 0) return -1;
        if (n == 256) return rx_fail(r, "more than 256 alternatives in one group");
        k[n++] = x;
        if (r->i < r->n && r->s[r->i] == '|') { r->i++; continue; }
        break;
    }
    return gb_altv(r->b, k, n);
}

int32_t gram_regex_parse(gb *b, const char *re, size_t len, int json_mode, const char *where)
{
    rx r = {b, (const uint8_t *)re, len, 0, json_mode, 0, where};
    if (r.n && r.s[0] == '^') r.i++;
    int32_t x = parse_alt(&r);
    if (x >= 0 && r.i < r.n) return rx_fail(&r, "unbalanced ')'");
    return x;
}
