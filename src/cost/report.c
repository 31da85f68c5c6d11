/* report.c — cost reports (report.h): totals, what-if, labels and numbers for
 * people, the terminal table, CSV and JSON. The HTML page is report_html.c.
 * Pure formatting: no SQL, no files; the caller writes the buffer.
 */
#include "cost/report.h"
#include "cost/report_int.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

tm_status tm_cost_format_parse(const char *s, tm_cost_format *out, tm_err *err)
{
    static const char *const names[] = {"table", "csv", "json", "html"};
    for (int i = 0; i < 4; i++)
        if (s && !strcmp(s, names[i])) { *out = (tm_cost_format)i; return TM_OK; }
    return tm_errf(err, TM_ERR_USAGE, "--format: \"%.40s\" is not one of table, csv, json, html", s ? s : "");
}

/* ---- numbers and labels for people ---------------------------------------------- */

/* digits of a non-negative integer value with thousands separators */
static void group_int(double x, char *out, size_t n)
{
    char d[48];
    snprintf(d, sizeof d, "%.0f", x);
    size_t len = strlen(d), o = 0;
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        if (i && (len - i) % 3 == 0) out[o++] = ',';
        out[o++] = d[i];
    }
    out[o] = 0;
}

void tm_cost_fmt_money(double usd, char *out, size_t n)
{
    if (!isfinite(usd)) { snprintf(out, n, "-"); return; }
    const char *sign = usd < 0 ? "-" : "";
    double a = fabs(usd);
    if (a >= 1e15) { snprintf(out, n, "%s$%.3g", sign, a); return; }
    if (a >= 0.00995 || a == 0) {
        double cents = floor(a * 100 + 0.5);
        char g[48];
        group_int(floor(cents / 100), g, sizeof g);
        snprintf(out, n, "%s$%s.%02d", sign, g, (int)fmod(cents, 100));
    } else {
        snprintf(out, n, "%s$%.3g", sign, a);
    }
}

void tm_cost_fmt_count(double x, char *out, size_t n)
{
    if (!isfinite(x)) { snprintf(out, n, "-"); return; }
    double a = fabs(x);
    const char *sign = x < 0 ? "-" : "";
    if (a < 99999.5) {
        if (a == floor(a) || a >= 100) {
            char g[48];
            group_int(floor(a + 0.5), g, sizeof g);
            snprintf(out, n, "%s%s", sign, g);
        } else {
            snprintf(out, n, "%s%.3g", sign, a);
        }
        return;
    }
    static const char *const unit[] = {"k", "M", "B", "T"};
    double v = a / 1e3;
    int u = 0;
    while (u < 3 && v >= 999.5) { v /= 1e3; u++; }
    snprintf(out, n, "%s%.3g %s", sign, v, unit[u]);
}

static void fmt_seconds(double s, char *out, size_t n)
{
    double a = fabs(s);
    if (a < 99.95) snprintf(out, n, "%.3g s", s);
    else if (a < 5999.5) snprintf(out, n, "%.3g min", s / 60);
    else if (a < 999.5 * 3600) snprintf(out, n, "%.3g h", s / 3600);
    else {
        char g[48];
        group_int(floor(a / 3600 + 0.5), g, sizeof g);
        snprintf(out, n, "%s%s h", s < 0 ? "-" : "", g);
    }
}

/* bytes of the UTF-8 character starting at p (1 for a stray byte) */
static size_t u8_len(const unsigned char *p)
{
    size_t l = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 1;
    for (size_t i = 1; i < l; i++)
        if ((p[i] & 0xC0) != 0x80) return 1;
    return l;
}

/* copy characters [from, to) of s (bytes [0, len)) to out at *o, control characters as '?' */
static void copy_chars(const char *s, size_t len, size_t from, size_t to, char *out, size_t n, size_t *o)
{
    size_t ch = 0;
    for (size_t i = 0; i < len && ch < to; ch++) {
        size_t bl = u8_len((const unsigned char *)s + i);
        if (i + bl > len) bl = len - i;
        if (ch >= from) {
            if (*o + bl + 1 > n) return;
            if (bl == 1 && ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)) out[(*o)++] = '?';
            else { memcpy(out + *o, s + i, bl); *o += bl; }
        }
        i += bl;
    }
}

void tm_cost_label(const char *s, int max_chars, char *out, size_t n)
{
    if (!n) return;
    out[0] = 0;
    if (!s) return;
    size_t len = strlen(s);
    while (len > 1 && s[len - 1] == '/') len--; /* "dir/model/" -> "model" */
    size_t start = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '/' && i + 1 < len) start = i + 1;
    s += start;
    len -= start;
    size_t nch = 0;
    for (size_t i = 0; i < len; nch++) i += u8_len((const unsigned char *)s + i);
    if (max_chars < 3) max_chars = 3;
    size_t o = 0;
    if (nch <= (size_t)max_chars) {
        copy_chars(s, len, 0, nch, out, n, &o);
    } else {
        size_t keep_a = (size_t)max_chars / 2, keep_b = (size_t)max_chars - 1 - keep_a;
        copy_chars(s, len, 0, keep_a, out, n, &o);
        if (o + 4 <= n) { memcpy(out + o, "\xe2\x80\xa6", 3); o += 3; }
        copy_chars(s, len, nch - keep_b, nch, out, n, &o);
    }
    out[o] = 0;
}

/* ---- columns for people ------------------------------------------------------------ */

double rep_num(const tm_cell *c, int *ok)
{
    *ok = 1;
    if (c && c->type == TM_CELL_INT) return (double)c->i;
    if (c && c->type == TM_CELL_REAL && isfinite(c->d)) return c->d;
    *ok = 0;
    return 0;
}

const char *rep_by_label(const tm_cost_report_in *in)
{
    static const char *const names[] = {"job", "day", "model", "worker", "metadata"};
    if (in->by_label) return in->by_label;
    return (unsigned)in->by < 5 ? names[in->by] : "job";
}

static int add_col(const tm_table *t, rep_col *cols, int n, int max, const char *name, int minus, rep_kind k,
                   const char *header)
{
    int c = tm_table_col(t, name);
    if (c < 0 || n >= max) return n;
    cols[n] = (rep_col){.col = c, .col_minus = minus, .alt = -1, .kind = k, .header = header, .key = name};
    return n + 1;
}

int rep_columns(const tm_cost_report_in *in, rep_col *cols, int max)
{
    const tm_table *t = in->main;
    int n = 0;
    if (!t || t->n_cols < 1 || max < 1) return 0;
    if (in->wide) {
        for (int c = 0; c < t->n_cols && n < max; c++) {
            const char *k = t->cols[c];
            rep_kind kind = c == 0 ? REP_LABEL : strstr(k, "usd") && strncmp(k, "tokens_per", 10) ? REP_MONEY
                          : strstr(k, "seconds") ? REP_SECONDS : strstr(k, "share") ? REP_SHARE
                          : !strcmp(k, "kwh") ? REP_KWH : REP_COUNT;
            for (int r = 0; r < t->n_rows && kind != REP_LABEL; r++)
                if (tm_table_cell(t, r, c)->type == TM_CELL_TEXT) kind = REP_TEXT; /* job name, model */
            cols[n++] = (rep_col){.col = c, .col_minus = -1, .alt = -1, .kind = kind, .header = k, .key = k};
        }
        return n;
    }
    /* the label: a job's name (its id when it has none), else the first column */
    int lab = in->by == TM_COST_GROUP_JOB && tm_table_col(t, "name") >= 0 ? tm_table_col(t, "name") : 0;
    const char *lh = in->by == TM_COST_GROUP_METADATA ? t->cols[0] : rep_by_label(in);
    cols[n++] = (rep_col){.col = lab, .col_minus = -1, .alt = lab ? 0 : -1, .kind = REP_LABEL, .header = lh,
                          .key = t->cols[lab]};
    if (in->by == TM_COST_GROUP_WORKER) n = add_col(t, cols, n, max, "runs", -1, REP_COUNT, "runs");
    n = add_col(t, cols, n, max, "requests", -1, REP_COUNT, "requests");
    n = add_col(t, cols, n, max, "total_tokens", -1, REP_COUNT, "tokens");
    if (in->by == TM_COST_GROUP_WORKER && tm_table_col(t, "overhead_seconds") >= 0) {
        n = add_col(t, cols, n, max, "gpu_seconds", tm_table_col(t, "overhead_seconds"), REP_SECONDS, "busy");
        if (n > 1 && cols[n - 1].col_minus >= 0) cols[n - 1].key = "busy_seconds";
        n = add_col(t, cols, n, max, "overhead_seconds", -1, REP_SECONDS, "overhead");
    } else {
        n = add_col(t, cols, n, max, "gpu_seconds", -1, REP_SECONDS, "GPU time");
    }
    n = add_col(t, cols, n, max, "cost_usd", -1, REP_MONEY, "cost");
    n = add_col(t, cols, n, max, "tokens_per_usd", -1, REP_COUNT, "tokens/$");
    n = add_col(t, cols, n, max, "usd_per_1m_output", -1, REP_MONEY, "$/1M out");
    n = add_col(t, cols, n, max, "wasted_share", -1, REP_SHARE, "wasted");
    if (in->by != TM_COST_GROUP_WORKER) n = add_col(t, cols, n, max, "overhead_usd", -1, REP_MONEY, "overhead");
    return n;
}

int rep_value(const tm_table *t, int r, const rep_col *c, double *v)
{
    int ok, ok2 = 1;
    double x = rep_num(tm_table_cell(t, r, c->col), &ok);
    if (ok && c->col_minus >= 0) x -= rep_num(tm_table_cell(t, r, c->col_minus), &ok2);
    *v = x;
    return ok && ok2;
}

const char *rep_text(const tm_table *t, int r, const rep_col *c)
{
    const tm_cell *cell = tm_table_cell(t, r, c->col);
    if ((!cell || cell->type != TM_CELL_TEXT || !cell->s || !*cell->s) && c->alt >= 0)
        cell = tm_table_cell(t, r, c->alt);
    return cell && cell->type == TM_CELL_TEXT && cell->s ? cell->s : NULL;
}

void rep_format(const tm_table *t, int r, const rep_col *c, int max_chars, char *buf, size_t n)
{
    double v;
    const tm_cell *cell = tm_table_cell(t, r, c->col);
    if (c->kind == REP_LABEL || c->kind == REP_TEXT || (cell && cell->type == TM_CELL_TEXT)) {
        const char *s = rep_text(t, r, c);
        if (s) tm_cost_label(s, max_chars, buf, n);
        else if (cell && cell->type != TM_CELL_NULL && rep_value(t, r, c, &v)) snprintf(buf, n, "%.10g", v);
        else snprintf(buf, n, "-");
        return;
    }
    if (!rep_value(t, r, c, &v)) { snprintf(buf, n, "-"); return; }
    rep_format_value(v, c->kind, buf, n);
}

void rep_format_value(double v, rep_kind kind, char *buf, size_t n)
{
    switch (kind) {
    case REP_MONEY: tm_cost_fmt_money(v, buf, n); break;
    case REP_SECONDS: fmt_seconds(v, buf, n); break;
    case REP_SHARE:
        if (v > 0 && v < 0.0005) snprintf(buf, n, "<0.1 %%");
        else snprintf(buf, n, "%.1f %%", v * 100);
        break;
    case REP_KWH: snprintf(buf, n, "%.3g kWh", v); break;
    default: tm_cost_fmt_count(v, buf, n);
    }
}

void rep_time(int64_t t, int iso, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tmv;
    const char *f = iso ? "%Y-%m-%dT%H:%M:%SZ" : t % 86400 == 0 ? "%Y-%m-%d" : "%Y-%m-%d %H:%M";
    if (!gmtime_r(&tt, &tmv) || !strftime(buf, n, f, &tmv)) snprintf(buf, n, "%lld", (long long)t);
}

void rep_period(const tm_cost_report_in *in, char *buf, size_t n)
{
    char a[40], z[40];
    if (in->since > 0) rep_time(in->since, 0, a, sizeof a);
    /* until is exclusive: a whole day ends the day before */
    if (in->until > 0) rep_time(in->until % 86400 == 0 ? in->until - 86400 : in->until, 0, z, sizeof z);
    if (in->since > 0 && in->until > 0) snprintf(buf, n, "%s to %s%s UTC", a, z, in->until % 86400 ? " (excl.)" : "");
    else if (in->since > 0) snprintf(buf, n, "since %s UTC", a);
    else if (in->until > 0) snprintf(buf, n, "up to %s%s UTC", z, in->until % 86400 ? " (excl.)" : "");
    else snprintf(buf, n, "all recorded");
}

/* ---- totals and what-if ---------------------------------------------------------------- */

static int is_additive(const char *c)
{
    static const char *const add[] = {"requests", "runs", "prompt_tokens", "completion_tokens", "cached_tokens",
                                      "total_tokens", "tokens", "gpu_seconds", "kwh", "cost_usd",
                                      "wasted_gpu_seconds", "wasted_usd", "overhead_seconds", "overhead_usd"};
    for (size_t i = 0; i < sizeof add / sizeof *add; i++)
        if (!strcmp(c, add[i])) return 1;
    return 0;
}

static double sum_col(const tm_table *t, int c, int *any, int *all_int)
{
    double s = 0;
    *any = 0;
    *all_int = 1;
    for (int r = 0; c >= 0 && r < t->n_rows; r++) {
        int ok;
        const tm_cell *cell = tm_table_cell(t, r, c);
        double v = rep_num(cell, &ok);
        if (!ok) continue;
        s += v;
        *any = 1;
        if (cell->type != TM_CELL_INT) *all_int = 0;
    }
    return s;
}

static tm_cell ratio(double num, double den, double scale)
{
    return den != 0 && isfinite(num / den) ? (tm_cell){.type = TM_CELL_REAL, .d = num * scale / den}
                                           : (tm_cell){.type = TM_CELL_NULL};
}

tm_status tm_cost_report_totals(const tm_table *t, tm_table *out, tm_err *err)
{
    memset(out, 0, sizeof *out);
    if (!t || t->n_cols < 1) return tm_errf(err, TM_ERR_INTERNAL, "report: no table");
    tm_status s = tm_table_set_cols(out, (const char *const *)t->cols, t->n_cols, err);
    tm_cell *row;
    if (!s) s = tm_table_add_row(out, &row, err);
    if (s) { tm_table_free(out); return s; }
    int any, ai;
    double cost = sum_col(t, tm_table_col(t, "cost_usd"), &any, &ai);
    double pt = sum_col(t, tm_table_col(t, "prompt_tokens"), &any, &ai);
    double ct = sum_col(t, tm_table_col(t, "completion_tokens"), &any, &ai);
    int tc = tm_table_col(t, "total_tokens") >= 0 ? tm_table_col(t, "total_tokens") : tm_table_col(t, "tokens");
    double tt = sum_col(t, tc, &any, &ai);
    double wu = sum_col(t, tm_table_col(t, "wasted_usd"), &any, &ai);
    for (int c = 0; c < t->n_cols && !s; c++) {
        const char *k = t->cols[c];
        if (c == 0) {
            row[0].type = TM_CELL_TEXT;
            if (!(row[0].s = strdup("(total)"))) s = tm_errf(err, TM_ERR_NOMEM, "out of memory");
        } else if (is_additive(k)) {
            double v = sum_col(t, c, &any, &ai);
            if (!any && !strcmp(k, "kwh")) continue;
            row[c] = ai ? (tm_cell){.type = TM_CELL_INT, .i = (int64_t)v} : (tm_cell){.type = TM_CELL_REAL, .d = v};
        } else if (!strcmp(k, "usd_per_1m_input")) row[c] = ratio(cost, pt, 1e6);
        else if (!strcmp(k, "usd_per_1m_output")) row[c] = ratio(cost, ct, 1e6);
        else if (!strcmp(k, "usd_per_1m_total")) row[c] = ratio(cost, tt, 1e6);
        else if (!strcmp(k, "tokens_per_usd")) row[c] = ratio(tt, cost, 1);
        else if (!strcmp(k, "wasted_share")) row[c] = ratio(wu, cost, 1);
    }
    if (s) tm_table_free(out);
    return s;
}

double rep_tot(const tm_table *tot, const char *col, int *ok)
{
    return rep_num(tm_table_cell(tot, 0, tm_table_col(tot, col)), ok);
}

static tm_status whatif_row(tm_table *out, const char *name, double per_h, double gpu_h, double cost, double tokens,
                            double out_tokens, double billed, tm_err *err)
{
    tm_cell *row;
    tm_status s = tm_table_add_row(out, &row, err);
    if (s) return s;
    row[0].type = TM_CELL_TEXT;
    if (!(row[0].s = strdup(name))) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    if (per_h >= 0) row[1] = (tm_cell){.type = TM_CELL_REAL, .d = per_h};
    row[2] = (tm_cell){.type = TM_CELL_REAL, .d = gpu_h};
    row[3] = (tm_cell){.type = TM_CELL_REAL, .d = cost};
    row[4] = ratio(tokens, cost, 1);
    row[5] = ratio(cost, out_tokens, 1e6);
    row[6] = ratio(cost, billed, 1);
    return TM_OK;
}

tm_status tm_cost_report_whatif(const tm_cost_report_in *in, tm_table *out, tm_err *err)
{
    static const char *const cols[] = {"profile", "usd_per_gpu_hour", "gpu_hours", "cost_usd", "tokens_per_usd",
                                       "usd_per_1m_output", "vs_billed"};
    memset(out, 0, sizeof *out);
    tm_table tot;
    tm_status s = tm_cost_report_totals(in->main, &tot, err);
    if (s) return s;
    int ok, okk, has_oh = tm_table_col(in->main, "overhead_seconds") >= 0;
    double gpu = rep_tot(&tot, "gpu_seconds", &ok), kwh = rep_tot(&tot, "kwh", &okk);
    if (has_oh && in->by != TM_COST_GROUP_WORKER) gpu += rep_tot(&tot, "overhead_seconds", &ok);
    double billed = rep_tot(&tot, "cost_usd", &ok), ct = rep_tot(&tot, "completion_tokens", &ok);
    int tc = tm_table_col(&tot, "total_tokens") >= 0 ? tm_table_col(&tot, "total_tokens") : tm_table_col(&tot, "tokens");
    double tt = rep_num(tm_table_cell(&tot, 0, tc), &ok);
    tm_table_free(&tot);
    s = tm_table_set_cols(out, cols, 7, err);
    char billed_name[128] = "as billed";
    if (in->n_price_profiles == 1 && in->price_profiles[0])
        snprintf(billed_name, sizeof billed_name, "as billed (%.100s)", in->price_profiles[0]);
    if (!s) s = whatif_row(out, billed_name, -1, gpu / 3600, billed, tt, ct, billed, err);
    for (int i = 0; !s && i < in->n_whatif; i++) {
        const tm_cost_whatif *w = &in->whatif[i];
        double cost = gpu / 3600 * w->usd_per_gpu_hour + (okk && w->usd_per_kwh > 0 ? kwh * w->usd_per_kwh : 0);
        s = whatif_row(out, w->name, w->usd_per_gpu_hour, gpu / 3600, cost, tt, ct, billed, err);
    }
    if (s) tm_table_free(out);
    return s;
}

/* ---- csv ------------------------------------------------------------------------------ */

static void cell_text(const tm_cell *c, const char *null_txt, char *buf, size_t n, const char **out)
{
    switch (c ? c->type : TM_CELL_NULL) {
    case TM_CELL_INT: snprintf(buf, n, "%lld", (long long)c->i); *out = buf; break;
    case TM_CELL_REAL: snprintf(buf, n, "%.10g", c->d); *out = buf; break;
    case TM_CELL_TEXT: *out = c->s ? c->s : ""; break;
    default: *out = null_txt;
    }
}

static tm_status put_csv_field(tm_buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n#")) return tm_buf_puts(b, s);
    tm_status st = tm_buf_puts(b, "\"");
    for (const char *p = s; !st && *p; p++) st = *p == '"' ? tm_buf_puts(b, "\"\"") : tm_buf_append(b, p, 1);
    return st ? st : tm_buf_puts(b, "\"");
}

static tm_status csv_row(const tm_table *t, int r, tm_buf *b)
{
    char tmp[64];
    tm_status s = TM_OK;
    for (int c = 0; c < t->n_cols && !s; c++) {
        const char *txt;
        if (r < 0) txt = t->cols[c];
        else cell_text(tm_table_cell(t, r, c), "", tmp, sizeof tmp, &txt);
        if (c) s = tm_buf_puts(b, ",");
        if (!s) s = put_csv_field(b, txt);
    }
    return s ? s : tm_buf_puts(b, "\n");
}

/* A comment line "# key: value" (value's line breaks as spaces). */
static tm_status csv_meta(tm_buf *b, const char *key, const char *v)
{
    tm_status s = tm_buf_printf(b, "# %s: ", key);
    for (const char *p = v ? v : ""; !s && *p; p++) s = tm_buf_append(b, *p == '\n' || *p == '\r' ? " " : p, 1);
    return s ? s : tm_buf_puts(b, "\n");
}

static void iso_or_empty(int64_t t, char *buf, size_t n)
{
    if (t > 0) rep_time(t, 1, buf, n);
    else buf[0] = 0;
}

static tm_status render_csv(const tm_cost_report_in *in, const tm_table *tot, const tm_table *wi, tm_buf *b)
{
    char a[40], z[40], g[40], line[512];
    iso_or_empty(in->since, a, sizeof a);
    iso_or_empty(in->until, z, sizeof z);
    rep_time(in->generated_at, 1, g, sizeof g);
    tm_status s = csv_meta(b, "report", "tokenmill cost");
    if (!s) s = csv_meta(b, "by", rep_by_label(in));
    if (!s) s = csv_meta(b, "currency", in->currency ? in->currency : "USD");
    size_t o = 0;
    line[0] = 0;
    for (int i = 0; i < in->n_price_profiles && o < sizeof line; i++)
        o += (size_t)snprintf(line + o, sizeof line - o, "%s%s", i ? "; " : "", in->price_profiles[i]);
    if (!s) s = csv_meta(b, "price_profiles", line);
    if (!s) s = csv_meta(b, "period_since", a);
    if (!s) s = csv_meta(b, "period_until", z);
    if (!s) s = csv_meta(b, "generated_at", g);
    if (!s) s = csv_meta(b, "overhead_included", in->overhead_included ? "yes" : "no");
    for (int r = 0; !s && wi && r < wi->n_rows; r++) {
        char v[3][64];
        const tm_cell *nm = tm_table_cell(wi, r, 0);
        for (int k = 0; k < 3; k++) {
            const char *txt;
            cell_text(tm_table_cell(wi, r, k == 0 ? 1 : k + 2), "", v[k], sizeof v[k], &txt);
            if (txt != v[k]) snprintf(v[k], sizeof v[k], "%s", txt);
        }
        snprintf(line, sizeof line, "%s, usd_per_gpu_hour %s, cost_usd %s, tokens_per_usd %s",
                 nm && nm->s ? nm->s : "", v[0], v[1], v[2]);
        s = csv_meta(b, "what_if", line);
    }
    if (!s) s = csv_row(in->main, -1, b);
    for (int r = 0; r < in->main->n_rows && !s; r++) s = csv_row(in->main, r, b);
    if (!s) s = csv_row(tot, 0, b);
    return s;
}

/* ---- json ------------------------------------------------------------------------------ */

static json_t *cell_json(const tm_cell *c)
{
    switch (c ? c->type : TM_CELL_NULL) {
    case TM_CELL_INT: return json_integer((json_int_t)c->i);
    case TM_CELL_REAL: return isfinite(c->d) ? json_real(c->d) : json_null();
    case TM_CELL_TEXT: return json_string(c->s ? c->s : "");
    default: return json_null();
    }
}

static json_t *row_json(const tm_table *t, int r)
{
    json_t *o = json_object();
    for (int c = 0; o && c < t->n_cols; c++) json_object_set_new(o, t->cols[c], cell_json(tm_table_cell(t, r, c)));
    return o;
}

static json_t *time_json(int64_t t)
{
    char buf[40];
    if (t <= 0) return json_null();
    rep_time(t, 1, buf, sizeof buf);
    return json_string(buf);
}

static tm_status render_json(const tm_cost_report_in *in, const tm_table *tot, const tm_table *wi, tm_buf *b,
                             tm_err *err)
{
    json_t *root = json_object(), *cols = json_array(), *rows = json_array(), *pp = json_array(),
           *per = json_object(), *w = json_array();
    const tm_table *t = in->main;
    for (int c = 0; cols && c < t->n_cols; c++) json_array_append_new(cols, json_string(t->cols[c]));
    for (int r = 0; rows && r < t->n_rows; r++) json_array_append_new(rows, row_json(t, r));
    for (int i = 0; pp && i < in->n_price_profiles; i++)
        json_array_append_new(pp, json_string(in->price_profiles[i] ? in->price_profiles[i] : ""));
    for (int r = 0; w && wi && r < wi->n_rows; r++) json_array_append_new(w, row_json(wi, r));
    if (per) {
        json_object_set_new(per, "since", time_json(in->since));
        json_object_set_new(per, "until", time_json(in->until));
    }
    char g[40];
    rep_time(in->generated_at, 1, g, sizeof g);
    if (root) {
        json_object_set_new(root, "report", json_string("tokenmill cost"));
        json_object_set_new(root, "by", json_string(rep_by_label(in)));
        json_object_set_new(root, "currency", json_string(in->currency ? in->currency : "USD"));
        json_object_set_new(root, "price_profiles", pp ? pp : json_null());
        json_object_set_new(root, "period", per ? per : json_null());
        json_object_set_new(root, "generated_at", json_string(g));
        json_object_set_new(root, "overhead_included", json_boolean(in->overhead_included));
        json_object_set_new(root, "columns", cols ? cols : json_null());
        json_object_set_new(root, "rows", rows ? rows : json_null());
        json_object_set_new(root, "totals", row_json(tot, 0));
        json_object_set_new(root, "what_if", w ? w : json_null());
    } else {
        json_decref(cols); json_decref(rows); json_decref(pp); json_decref(per); json_decref(w);
    }
    char *txt = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(root);
    if (!txt) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    tm_status s = tm_buf_puts(b, txt);
    if (!s) s = tm_buf_puts(b, "\n");
    free(txt);
    return s;
}

tm_status tm_cost_report_render(const tm_cost_report_in *in, tm_cost_format fmt, tm_buf *out, tm_err *err)
{
    if (!in || !in->main || in->main->n_cols < 1) return tm_errf(err, TM_ERR_INTERNAL, "report: no table");
    tm_table tot, wi = {0};
    tm_status s = tm_cost_report_totals(in->main, &tot, err);
    if (s) return s;
    if (in->n_whatif > 0 && (s = tm_cost_report_whatif(in, &wi, err))) { tm_table_free(&tot); return s; }
    const tm_table *w = in->n_whatif > 0 ? &wi : NULL;
    switch (fmt) {
    case TM_COST_FMT_CSV: s = render_csv(in, &tot, w, out); break;
    case TM_COST_FMT_JSON: s = render_json(in, &tot, w, out, err); break;
    case TM_COST_FMT_HTML: s = rep_render_html(in, &tot, w, out); break;
    default: s = rep_render_table(in, &tot, w, out);
    }
    tm_table_free(&tot);
    tm_table_free(&wi);
    if (s && fmt == TM_COST_FMT_JSON) return s;
    return s ? tm_errf(err, s, "report: %s", tm_status_str(s)) : TM_OK;
}
