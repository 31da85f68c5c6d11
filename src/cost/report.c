/* report.c — cost table rendering (table/csv/json) and the HTML page with
 * hand-written inline SVG charts (see report.h). Pure formatting: no SQL, no
 * files; the caller writes the buffer where it wants.
 */
#include "cost/report.h"

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

/* One cell as text: reals with fmt ("%.10g" / "%.6g"), NULL as null_txt. */
static void cell_text(const tm_cell *c, const char *real_fmt, const char *null_txt, char *buf, size_t n,
                      const char **out)
{
    switch (c->type) {
    case TM_CELL_INT: snprintf(buf, n, "%lld", (long long)c->i); *out = buf; break;
    case TM_CELL_REAL: snprintf(buf, n, real_fmt, c->d); *out = buf; break;
    case TM_CELL_TEXT: *out = c->s ? c->s : ""; break;
    default: *out = null_txt;
    }
}

static tm_status put_csv_field(tm_buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) return tm_buf_puts(b, s);
    tm_status st = tm_buf_puts(b, "\"");
    for (const char *p = s; !st && *p; p++) st = *p == '"' ? tm_buf_puts(b, "\"\"") : tm_buf_append(b, p, 1);
    return st ? st : tm_buf_puts(b, "\"");
}

static tm_status render_csv(const tm_table *t, tm_buf *b)
{
    tm_status s = TM_OK;
    for (int c = 0; c < t->n_cols && !s; c++) {
        if (c) s = tm_buf_puts(b, ",");
        if (!s) s = put_csv_field(b, t->cols[c]);
    }
    if (!s) s = tm_buf_puts(b, "\n");
    char tmp[64];
    for (int r = 0; r < t->n_rows && !s; r++) {
        for (int c = 0; c < t->n_cols && !s; c++) {
            const char *txt;
            cell_text(tm_table_cell(t, r, c), "%.10g", "", tmp, sizeof tmp, &txt);
            if (c) s = tm_buf_puts(b, ",");
            if (!s) s = put_csv_field(b, txt);
        }
        if (!s) s = tm_buf_puts(b, "\n");
    }
    return s;
}

static tm_status render_table(const tm_table *t, tm_buf *b)
{
    int *w = calloc((size_t)t->n_cols, sizeof *w);
    if (!w) return TM_ERR_NOMEM;
    char tmp[64];
    for (int c = 0; c < t->n_cols; c++) w[c] = (int)strlen(t->cols[c]);
    for (int r = 0; r < t->n_rows; r++)
        for (int c = 0; c < t->n_cols; c++) {
            const char *txt;
            cell_text(tm_table_cell(t, r, c), "%.6g", "-", tmp, sizeof tmp, &txt);
            int l = (int)strlen(txt);
            if (l > w[c]) w[c] = l > 60 ? 60 : l;
        }
    tm_status s = TM_OK;
    for (int c = 0; c < t->n_cols && !s; c++)
        s = c + 1 < t->n_cols ? tm_buf_printf(b, "%-*s  ", w[c], t->cols[c]) : tm_buf_printf(b, "%s\n", t->cols[c]);
    for (int r = 0; r < t->n_rows && !s; r++)
        for (int c = 0; c < t->n_cols && !s; c++) {
            const tm_cell *cell = tm_table_cell(t, r, c);
            const char *txt;
            cell_text(cell, "%.6g", "-", tmp, sizeof tmp, &txt);
            int left = cell->type == TM_CELL_TEXT;
            if (c + 1 == t->n_cols) s = tm_buf_printf(b, "%*s\n", left ? 0 : w[c], txt);
            else s = tm_buf_printf(b, left ? "%-*.60s  " : "%*.60s  ", w[c], txt);
        }
    if (!s && t->n_rows == 0) s = tm_buf_puts(b, "(no rows)\n");
    free(w);
    return s;
}

static json_t *cell_json(const tm_cell *c)
{
    switch (c->type) {
    case TM_CELL_INT: return json_integer((json_int_t)c->i);
    case TM_CELL_REAL: return isfinite(c->d) ? json_real(c->d) : json_null();
    case TM_CELL_TEXT: return json_string(c->s ? c->s : "");
    default: return json_null();
    }
}

static tm_status render_json(const tm_table *t, tm_buf *b, tm_err *err)
{
    json_t *arr = json_array();
    if (!arr) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    for (int r = 0; r < t->n_rows; r++) {
        json_t *o = json_object();
        if (!o || json_array_append_new(arr, o)) { json_decref(arr); return tm_errf(err, TM_ERR_NOMEM, "out of memory"); }
        for (int c = 0; c < t->n_cols; c++) json_object_set_new(o, t->cols[c], cell_json(tm_table_cell(t, r, c)));
    }
    char *txt = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    json_decref(arr);
    if (!txt) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    tm_status s = tm_buf_puts(b, txt);
    if (!s) s = tm_buf_puts(b, "\n");
    free(txt);
    return s;
}

/* ---- HTML ------------------------------------------------------------------ */

static tm_status put_html(tm_buf *b, const char *s, size_t max)
{
    tm_status st = TM_OK;
    size_t n = 0;
    /* stop after max characters, never inside a UTF-8 sequence */
    const char *p = s;
    for (; !st && *p && (n < max || ((unsigned char)*p & 0xC0) == 0x80); p++) {
        if (((unsigned char)*p & 0xC0) != 0x80) n++;
        switch (*p) {
        case '&': st = tm_buf_puts(b, "&amp;"); break;
        case '<': st = tm_buf_puts(b, "&lt;"); break;
        case '>': st = tm_buf_puts(b, "&gt;"); break;
        case '"': st = tm_buf_puts(b, "&quot;"); break;
        case '\'': st = tm_buf_puts(b, "&#39;"); break;
        default: st = tm_buf_append(b, p, 1);
        }
    }
    if (!st && *p) st = tm_buf_puts(b, "&#8230;");
    return st;
}

static double cell_num(const tm_cell *c, int *ok)
{
    *ok = 1;
    if (c && c->type == TM_CELL_INT) return (double)c->i;
    if (c && c->type == TM_CELL_REAL && isfinite(c->d)) return c->d;
    *ok = 0;
    return 0;
}

static const char *cell_str(const tm_cell *c) { return c && c->type == TM_CELL_TEXT && c->s ? c->s : NULL; }

#define CHART_W 760
#define LABEL_W 230
#define BAR_H 22

/* One coloured part of a bar (a column whose value is included in the bar's value). */
typedef struct bar_part {
    int col;            /* -1: absent */
    const char *fill;
    const char *label;
} bar_part;

/* Horizontal bars: label column l1 (and l2 joined with " · " when >= 0), value
 * column v. parts (n_parts, may be 0): columns whose values are parts of v,
 * drawn at the end of each bar in their colour with their share in the label,
 * and a legend under the title; the rest of the bar is the base colour. */
static tm_status svg_bars(tm_buf *b, const char *title, const tm_table *t, int l1, int l1_alt, int l2, int v,
                          const bar_part *parts, int n_parts, const char *unit_fmt)
{
    int n = 0, have_parts = 0;
    double max = 0;
    for (int r = 0; t && v >= 0 && r < t->n_rows; r++) {
        int ok;
        double x = cell_num(tm_table_cell(t, r, v), &ok);
        if (ok) { n++; if (x > max) max = x; }
    }
    for (int k = 0; t && k < n_parts; k++) have_parts |= parts[k].col >= 0;
    if (n > 200) n = 200;
    int top = have_parts ? 58 : 40; /* room for the legend */
    int h = top + (n ? n : 1) * (BAR_H + 6) + 10;
    double bar_max = CHART_W - LABEL_W - (have_parts ? 250 : 110);
    tm_status s = tm_buf_printf(b, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                                   "viewBox=\"0 0 %d %d\" role=\"img\"><title>", CHART_W, h, CHART_W, h);
    if (!s) s = put_html(b, title, 200);
    if (!s) s = tm_buf_printf(b, "</title><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>"
                                 "<text x=\"8\" y=\"22\" font-size=\"15\" font-weight=\"bold\">", CHART_W, h);
    if (!s) s = put_html(b, title, 200);
    if (!s) s = tm_buf_puts(b, "</text>");
    if (!s && have_parts) {
        int x = 8;
        s = tm_buf_printf(b, "<rect x=\"%d\" y=\"30\" width=\"12\" height=\"12\" fill=\"#4e79a7\"/>"
                             "<text x=\"%d\" y=\"40\" font-size=\"12\">requests</text>", x, x + 16);
        x += 90;
        for (int k = 0; !s && k < n_parts; k++) {
            if (parts[k].col < 0) continue;
            s = tm_buf_printf(b, "<rect x=\"%d\" y=\"30\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                                 "<text x=\"%d\" y=\"40\" font-size=\"12\">", x, parts[k].fill, x + 16);
            if (!s) s = put_html(b, parts[k].label, 40);
            if (!s) s = tm_buf_puts(b, "</text>");
            x += 40 + 8 * (int)strlen(parts[k].label);
        }
    }
    if (!s && n == 0)
        s = tm_buf_printf(b, "<text x=\"8\" y=\"%d\" font-size=\"13\" fill=\"#666\">no data</text>", top + 18);
    int row = 0;
    for (int r = 0; !s && t && r < t->n_rows && row < n; r++) {
        int ok;
        double x = cell_num(tm_table_cell(t, r, v), &ok);
        if (!ok) continue;
        const char *a = cell_str(tm_table_cell(t, r, l1));
        if (!a && l1_alt >= 0) a = cell_str(tm_table_cell(t, r, l1_alt));
        const char *c = l2 >= 0 ? cell_str(tm_table_cell(t, r, l2)) : NULL;
        int y = top + row * (BAR_H + 6);
        double bw = max > 0 && x > 0 ? x / max * bar_max : 0;
        /* the parts, clamped so that they never exceed the bar */
        double pv[4] = {0}, left = x > 0 ? x : 0;
        for (int k = 0; k < n_parts && k < 4; k++) {
            int okp;
            double p = parts[k].col >= 0 ? cell_num(tm_table_cell(t, r, parts[k].col), &okp) : 0;
            if (parts[k].col < 0 || !okp || p <= 0) continue;
            pv[k] = p < left ? p : left;
            left -= pv[k];
        }
        s = tm_buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">", LABEL_W - 6,
                          y + BAR_H - 7);
        if (!s) s = put_html(b, a ? a : "(none)", 30);
        if (!s && c) s = tm_buf_puts(b, " · ");
        if (!s && c) s = put_html(b, c, 20);
        double base_w = x > 0 ? bw * left / x : 0, at = LABEL_W + base_w;
        if (!s) s = tm_buf_printf(b, "</text><rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>",
                                  LABEL_W, y, have_parts ? base_w : bw, BAR_H,
                                  have_parts || row % 2 ? "#4e79a7" : "#59a14f");
        for (int k = 0; !s && k < n_parts && k < 4; k++) {
            if (pv[k] <= 0) continue;
            double w = bw * pv[k] / x;
            s = tm_buf_printf(b, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>", at, y, w,
                              BAR_H, parts[k].fill);
            at += w;
        }
        if (!s) s = tm_buf_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"12\">", LABEL_W + bw + 6, y + BAR_H - 7);
        if (!s) s = tm_buf_printf(b, unit_fmt, x);
        for (int k = 0; !s && k < n_parts && k < 4; k++)
            if (pv[k] > 0) {
                s = tm_buf_puts(b, " · ");
                if (!s) s = put_html(b, parts[k].label, 40);
                if (!s) s = tm_buf_printf(b, " %.3g%%", 100.0 * pv[k] / x);
            }
        if (!s) s = tm_buf_puts(b, "</text>");
        row++;
    }
    if (!s) s = tm_buf_puts(b, "</svg></figure>\n");
    return s;
}

static void fmt_time(double t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tmv;
    if (!gmtime_r(&tt, &tmv) || !strftime(buf, n, "%Y-%m-%d %H:%M", &tmv)) snprintf(buf, n, "%.0f", t);
}

/* tokens/s of each run (y) against its start time (x). */
static tm_status svg_throughput(tm_buf *b, const tm_table *t)
{
    int cs = t ? tm_table_col(t, "started_at") : -1, cv = t ? tm_table_col(t, "tokens_per_s") : -1;
    double x0 = 0, x1 = 0, ymax = 0;
    int n = 0;
    for (int r = 0; cs >= 0 && cv >= 0 && r < t->n_rows; r++) {
        int ok1, ok2;
        double x = cell_num(tm_table_cell(t, r, cs), &ok1), y = cell_num(tm_table_cell(t, r, cv), &ok2);
        if (!ok1 || !ok2) continue;
        if (!n || x < x0) x0 = x;
        if (!n || x > x1) x1 = x;
        if (y > ymax) ymax = y;
        n++;
    }
    const int H = 300, L = 70, R = 30, T = 40, B = 50;
    tm_status s = tm_buf_printf(b, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                                   "viewBox=\"0 0 %d %d\" role=\"img\"><title>tokens/s per run over time</title>"
                                   "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>"
                                   "<text x=\"8\" y=\"22\" font-size=\"15\" font-weight=\"bold\">tokens/s per run "
                                   "over time</text>",
                                CHART_W, H, CHART_W, H, CHART_W, H);
    if (!s) s = tm_buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>"
                                 "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>",
                              L, H - B, CHART_W - R, H - B, L, T, L, H - B);
    if (!s && n == 0) s = tm_buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"13\" fill=\"#666\">no data</text>",
                                        L + 10, T + 30);
    if (!s && n > 0) {
        double pw = CHART_W - L - R, ph = H - T - B, span = x1 > x0 ? x1 - x0 : 1, ym = ymax > 0 ? ymax : 1;
        char a[32], z[32];
        fmt_time(x0, a, sizeof a);
        fmt_time(x1, z, sizeof z);
        s = tm_buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"11\">%s</text>"
                             "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%s</text>"
                             "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%.4g</text>"
                             "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">0</text>"
                             "<text x=\"%d\" y=\"%d\" font-size=\"11\">tokens/s (UTC start time of each run)</text>"
                             "<polyline fill=\"none\" stroke=\"#e15759\" stroke-width=\"2\" points=\"",
                          L, H - B + 16, a, CHART_W - R, H - B + 16, z, L - 6, T + 4, ym, L - 6, H - B, L, H - 12);
        for (int r = 0; !s && r < t->n_rows; r++) {
            int ok1, ok2;
            double x = cell_num(tm_table_cell(t, r, cs), &ok1), y = cell_num(tm_table_cell(t, r, cv), &ok2);
            if (ok1 && ok2)
                s = tm_buf_printf(b, "%.1f,%.1f ", L + (n == 1 ? pw / 2 : (x - x0) / span * pw), H - B - y / ym * ph);
        }
        if (!s) s = tm_buf_puts(b, "\"/>");
        for (int r = 0; !s && r < t->n_rows; r++) {
            int ok1, ok2;
            double x = cell_num(tm_table_cell(t, r, cs), &ok1), y = cell_num(tm_table_cell(t, r, cv), &ok2);
            if (ok1 && ok2)
                s = tm_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#e15759\"/>",
                                  L + (n == 1 ? pw / 2 : (x - x0) / span * pw), H - B - y / ym * ph);
        }
    }
    if (!s) s = tm_buf_puts(b, "</svg></figure>\n");
    return s;
}

static tm_status render_html_table(const tm_table *t, tm_buf *b)
{
    tm_status s = tm_buf_puts(b, "<table><thead><tr>");
    for (int c = 0; !s && c < t->n_cols; c++) {
        s = tm_buf_puts(b, "<th>");
        if (!s) s = put_html(b, t->cols[c], 100);
        if (!s) s = tm_buf_puts(b, "</th>");
    }
    if (!s) s = tm_buf_puts(b, "</tr></thead><tbody>\n");
    char tmp[64];
    for (int r = 0; !s && r < t->n_rows; r++) {
        s = tm_buf_puts(b, "<tr>");
        for (int c = 0; !s && c < t->n_cols; c++) {
            const tm_cell *cell = tm_table_cell(t, r, c);
            const char *txt;
            cell_text(cell, "%.6g", "–", tmp, sizeof tmp, &txt);
            s = tm_buf_puts(b, cell->type == TM_CELL_TEXT ? "<td>" : "<td class=\"n\">");
            if (!s) s = put_html(b, txt, 200);
            if (!s) s = tm_buf_puts(b, "</td>");
        }
        if (!s) s = tm_buf_puts(b, "</tr>\n");
    }
    if (!s) s = tm_buf_puts(b, "</tbody></table>\n");
    return s;
}

static tm_status render_html(const tm_cost_report_in *in, tm_buf *b)
{
    const char *title = in->title ? in->title : "tokenmill cost report";
    tm_status s = tm_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    if (!s) s = put_html(b, title, 200);
    if (!s) s = tm_buf_puts(b, "</title><style>body{font-family:sans-serif;margin:24px;color:#222}"
                               "table{border-collapse:collapse;font-size:13px;margin:12px 0}"
                               "th,td{border:1px solid #ccc;padding:3px 8px}th{background:#f0f0f0}"
                               "td.n{text-align:right;font-variant-numeric:tabular-nums}"
                               "figure{margin:16px 0}.wrap{overflow-x:auto}</style></head><body><h1>");
    if (!s) s = put_html(b, title, 200);
    char now[32];
    fmt_time((double)time(NULL), now, sizeof now);
    if (!s) s = tm_buf_printf(b, "</h1><p>Generated %s UTC. Costs are GPU wall time &#215; the run&#39;s price "
                                 "(plus energy when priced per kWh); kWh is blank when not measured; wasted_share "
                                 "is the part of the cost spent recomputing work already done once (after a "
                                 "preemption).</p>\n", now);
    if (!s && in->note) s = tm_buf_puts(b, "<p><strong>");
    if (!s && in->note) s = put_html(b, in->note, 1000);
    if (!s && in->note) s = tm_buf_puts(b, "</strong></p>\n");
    if (!s) s = tm_buf_puts(b, "<div class=\"wrap\">");
    if (!s) s = render_html_table(in->main, b);
    if (!s) s = tm_buf_puts(b, "</div>\n");
    const tm_table *j = in->jobs, *mp = in->model_price;
    bar_part jparts[2] = {{j ? tm_table_col(j, "wasted_usd") : -1, "#e15759", "wasted (recompute)"},
                          {j ? tm_table_col(j, "overhead_usd") : -1, "#bab0ac", "run overhead"}};
    if (!s) s = svg_bars(b, "cost per job (USD)", j, j ? tm_table_col(j, "name") : -1,
                         j ? tm_table_col(j, "job_id") : -1, -1, j ? tm_table_col(j, "cost_usd") : -1,
                         jparts, 2, "$%.4g");
    if (!s) s = svg_bars(b, "USD per 1M tokens by model and price profile (whole runs, incl. overhead)", mp,
                         mp ? tm_table_col(mp, "model") : -1, -1, mp ? tm_table_col(mp, "price_profile") : -1,
                         mp ? tm_table_col(mp, "usd_per_1m_total") : -1, NULL, 0, "$%.4g / 1M");
    if (!s) s = svg_throughput(b, in->throughput);
    if (!s) s = tm_buf_puts(b, "</body></html>\n");
    return s;
}

tm_status tm_cost_report_render(const tm_cost_report_in *in, tm_cost_format fmt, tm_buf *out, tm_err *err)
{
    if (!in || !in->main) return tm_errf(err, TM_ERR_INTERNAL, "report: no table");
    tm_status s;
    switch (fmt) {
    case TM_COST_FMT_CSV: s = render_csv(in->main, out); break;
    case TM_COST_FMT_JSON: return render_json(in->main, out, err);
    case TM_COST_FMT_HTML: s = render_html(in, out); break;
    default:
        s = in->note ? tm_buf_puts(out, in->note) : TM_OK;
        if (!s && in->note) s = tm_buf_puts(out, "\n");
        if (!s) s = render_table(in->main, out);
    }
    return s ? tm_errf(err, s, "report: %s", tm_status_str(s)) : TM_OK;
}
