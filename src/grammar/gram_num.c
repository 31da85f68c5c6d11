/* gram_num.c — integer and number schemas with their bounds.
 *
 * integer: minimum / maximum / exclusiveMinimum / exclusiveMaximum (numbers,
 * |bound| <= 1e15) become an exact digit automaton for the range (the
 * classic range-to-regex split by digit count and leading digit), so every
 * integer the grammar allows is in range. number: only "minimum": 0 (no '-')
 * can be enforced token by token without an arithmetic lexer; other bounds
 * on a number are refused.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "grammar/gram_int.h"

#define BOUND_MAX 1e15

int32_t gram_integer(gb *b, json_t *node, const char *ptr);
int32_t gram_number(gb *b, json_t *node, const char *ptr);

/* lo..hi as digit strings of the same length n */
static int32_t same_len(gb *b, const char *lo, const char *hi, size_t n)
{
    if (n == 0) return gb_empty(b);
    if (n == 1) return gb_range(b, lo[0], hi[0]);
    if (lo[0] == hi[0]) return gb_seq2(b, gb_byte(b, lo[0]), same_len(b, lo + 1, hi + 1, n - 1));
    int lo_zero = 1, hi_nine = 1;
    for (size_t i = 1; i < n; i++) { lo_zero &= lo[i] == '0'; hi_nine &= hi[i] == '9'; }
    int32_t any = gb_rep(b, gb_range(b, '0', '9'), (int32_t)n - 1, (int32_t)n - 1);
    if (lo_zero && hi_nine) return gb_seq2(b, gb_range(b, lo[0], hi[0]), any);
    char nines[24], zeros[24];
    memset(nines, '9', n - 1);
    memset(zeros, '0', n - 1);
    int32_t k[3], m = 0;
    k[m++] = gb_seq2(b, gb_byte(b, lo[0]), same_len(b, lo + 1, nines, n - 1));
    if (hi[0] - lo[0] >= 2) k[m++] = gb_seq2(b, gb_range(b, lo[0] + 1, hi[0] - 1), any);
    k[m++] = gb_seq2(b, gb_byte(b, hi[0]), same_len(b, zeros, hi + 1, n - 1));
    return gb_altv(b, k, m);
}

/* 0 <= lo <= hi; hi < 0 means no upper bound */
static int32_t nonneg(gb *b, long long lo, long long hi)
{
    int32_t k[24], m = 0;
    char a[24], z[24];
    int dlo = snprintf(a, sizeof a, "%lld", lo);
    int dhi = hi < 0 ? dlo : snprintf(z, sizeof z, "%lld", hi);
    long long p = 1;
    for (int i = 1; i < dlo; i++) p *= 10;
    for (int d = dlo; d <= dhi; d++, p *= 10) {
        long long x = d == 1 ? lo : (lo > p ? lo : p), y = p * 10 - 1;
        if (hi >= 0 && hi < y) y = hi;
        if (x > y) continue;
        snprintf(a, sizeof a, "%lld", x);
        snprintf(z, sizeof z, "%lld", y);
        k[m++] = same_len(b, a, z, (size_t)d);
    }
    if (hi < 0) /* more digits than lo has: all larger */
        k[m++] = gb_seq2(b, gb_range(b, '1', '9'), gb_rep(b, gb_range(b, '0', '9'), dlo, -1));
    return gb_altv(b, k, m);
}

static int bound(gb *b, json_t *node, const char *key, const char *ptr, double *v)
{
    json_t *x = json_object_get(node, key);
    if (!x) return 0;
    if (!json_is_number(x)) { gb_fail(b, TM_ERR_INPUT, "%s at %s/%s must be a number", key, ptr, key); return -1; }
    *v = json_number_value(x);
    if (!(fabs(*v) <= BOUND_MAX)) { gb_fail(b, TM_ERR_INPUT, "%s at %s/%s beyond +-1e15 not supported", key, ptr, key); return -1; }
    return 1;
}

int32_t gram_integer(gb *b, json_t *node, const char *ptr)
{
    double v;
    int has, any_lo = 0, any_hi = 0;
    long long lo = 0, hi = 0;
    if ((has = bound(b, node, "minimum", ptr, &v)) < 0) return -1;
    if (has) { lo = (long long)ceil(v); any_lo = 1; }
    if ((has = bound(b, node, "exclusiveMinimum", ptr, &v)) < 0) return -1;
    if (has && (!any_lo || (long long)floor(v) + 1 > lo)) { lo = (long long)floor(v) + 1; any_lo = 1; }
    if ((has = bound(b, node, "maximum", ptr, &v)) < 0) return -1;
    if (has) { hi = (long long)floor(v); any_hi = 1; }
    if ((has = bound(b, node, "exclusiveMaximum", ptr, &v)) < 0) return -1;
    if (has && (!any_hi || (long long)ceil(v) - 1 < hi)) { hi = (long long)ceil(v) - 1; any_hi = 1; }
    if (any_lo && any_hi && lo > hi) return gb_fail(b, TM_ERR_INPUT, "no integer between the bounds at %s", *ptr ? ptr : "/");
    int32_t k[2], m = 0;
    /* negative part: -(1..) */
    if (!any_lo || lo < 0) {
        long long nlo = any_hi && hi < 0 ? -hi : 1, nhi = any_lo ? -lo : -1;
        k[m++] = gb_seq2(b, gb_byte(b, '-'), nonneg(b, nlo, nhi));
    }
    if (!any_hi || hi >= 0) k[m++] = nonneg(b, any_lo && lo > 0 ? lo : 0, any_hi ? hi : -1);
    return gb_altv(b, k, m);
}

int32_t gram_number(gb *b, json_t *node, const char *ptr)
{
    double v;
    static const char *const other[] = {"maximum", "exclusiveMinimum", "exclusiveMaximum"};
    for (int i = 0; i < 3; i++)
        if (json_object_get(node, other[i]))
            return gb_fail(b, TM_ERR_INPUT, "%s on a number at %s/%s not supported (use integer, or minimum 0)", other[i], ptr, other[i]);
    int has = bound(b, node, "minimum", ptr, &v);
    if (has < 0) return -1;
    if (has && v != 0)
        return gb_fail(b, TM_ERR_INPUT, "minimum other than 0 on a number at %s/minimum not supported (use integer)", ptr);
    int32_t dig = gb_range(b, '0', '9');
    int32_t intp = gb_alt2(b, gb_byte(b, '0'), gb_seq2(b, gb_range(b, '1', '9'), gb_rep(b, dig, 0, -1)));
    int32_t frac = gb_opt(b, gb_seq2(b, gb_byte(b, '.'), gb_rep(b, dig, 1, -1)));
    int32_t exp = gb_opt(b, gb_seq3(b, gb_alt2(b, gb_byte(b, 'e'), gb_byte(b, 'E')),
                                    gb_opt(b, gb_alt2(b, gb_byte(b, '+'), gb_byte(b, '-'))), gb_rep(b, dig, 1, -1)));
    int32_t k[4] = {has ? gb_empty(b) : gb_opt(b, gb_byte(b, '-')), intp, frac, exp};
    return gb_seqv(b, k, 4);
}
