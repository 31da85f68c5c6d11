/* report_html.c — the HTML cost report (report.h, format "html"): one
 * self-contained page, no scripts: headline cards, the chart that answers the
 * grouping (day: daily spend as columns; job/model/metadata: cost and tokens
 * per $ as bars, the 25 costliest rows; worker: GPU time busy vs overhead),
 * the table with a totals row, the what-if comparison. Bars and table cells
 * carry data-row / data-col / data-value ("%.17g") so that a checker can
 * compare chart and table (tests/cli/report_render.sh). Colours: Okabe-Ito
 * (colour-blind safe), dark text on white; A4 print rules.
 */
#include "cost/report_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C_BLUE "#0072B2"
#define C_ORANGE "#E69F00"
#define C_VERMILLION "#D55E00"
#define C_GREEN "#009E73"
#define C_GRID "#d9d9d9"
#define CHART_ROWS 25
#define LABEL_CHARS 24

static tm_status put_html(tm_buf *b, const char *s)
{
    tm_status st = TM_OK;
    for (const char *p = s ? s : ""; !st && *p; p++) {
        switch (*p) {
        case '&': st = tm_buf_puts(b, "&amp;"); break;
        case '<': st = tm_buf_puts(b, "&lt;"); break;
        case '>': st = tm_buf_puts(b, "&gt;"); break;
        case '"': st = tm_buf_puts(b, "&quot;"); break;
        case '\'': st = tm_buf_puts(b, "&#39;"); break;
        default: st = (unsigned char)*p < 0x20 ? tm_buf_puts(b, " ") : tm_buf_append(b, p, 1);
        }
    }
    return st;
}

static const char CSS[] =
    "@page{size:A4;margin:14mm}*{box-sizing:border-box}"
    "body{font-family:'DejaVu Sans','Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:0 auto;padding:24px;"
    "max-width:1120px;color:#1a1a1a;background:#fff;line-height:1.4}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 6px}"
    ".sub,.note,figcaption{color:#404040;font-size:13px}.sub{margin:0 0 12px}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:10px;margin:12px 0 16px}"
    ".card{border:1px solid #bdbdbd;border-radius:6px;padding:8px 12px}.card .k{font-size:12px;color:#404040}"
    ".card .v{font-size:21px;font-weight:600;font-variant-numeric:tabular-nums;white-space:nowrap}"
    ".charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}"
    "figure{margin:6px 0 14px;break-inside:avoid}svg{display:block;width:100%;height:auto}"
    "table{border-collapse:collapse;width:100%;font-size:13px}"
    "th,td{padding:4px 8px;border-bottom:1px solid #d9d9d9;white-space:nowrap;text-align:left}"
    "th{border-bottom:2px solid #333}.n{text-align:right;font-variant-numeric:tabular-nums}"
    "tfoot td{font-weight:700;border-top:2px solid #333;border-bottom:none}"
    "@media print{body{padding:0;max-width:none;font-size:11px}.card .v{font-size:16px}"
    ".cards{grid-template-columns:repeat(3,1fr)}table{font-size:10px}th,td{padding:2px 5px}"
    "tr,figure,.cards{break-inside:avoid}h2{break-after:avoid}"
    ".charts{grid-template-columns:1fr 1fr}}";

/* ---- charts --------------------------------------------------------------------- */

static tm_status svg_open(tm_buf *b, int w, int h, const char *title, const char *table_id)
{
    tm_status s = tm_buf_printf(b, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                                   "role=\"img\" data-table=\"%s\" font-family=\"DejaVu Sans,Arial,sans-serif\">"
                                   "<title>", w, h, table_id);
    if (!s) s = put_html(b, title);
    if (!s) s = tm_buf_printf(b, "</title><text x=\"0\" y=\"16\" font-size=\"15\" font-weight=\"bold\" "
                                 "fill=\"#1a1a1a\">");
    if (!s) s = put_html(b, title);
    return s ? s : tm_buf_puts(b, "</text>");
}

static tm_status legend(tm_buf *b, int x, int y, const char *color, const char *text)
{
    tm_status s = tm_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                                   "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#1a1a1a\">", x, y, color, x + 16, y + 11);
    if (!s) s = put_html(b, text);
    return s ? s : tm_buf_puts(b, "</text>");
}

/* Horizontal bars, one per rows[i] of t, stacked from n_parts columns. */
typedef struct hbar {
    const char *title, *table_id;
    const tm_table *t;
    const int *rows;
    int n, width;
    const rep_col *label;
    const rep_col *parts;
    const char *const *colors, *const *names;
    int n_parts;
    rep_kind kind;      /* of the value text (the parts' sum) */
} hbar;

static tm_status svg_hbars(tm_buf *b, const hbar *h)
{
    const int label_w = 170, text_w = 110, top = h->n_parts > 1 ? 48 : 30, bh = 20, gap = 6;
    double max = 0;
    for (int i = 0; i < h->n; i++) {
        double sum = 0, v;
        for (int k = 0; k < h->n_parts; k++)
            if (rep_value(h->t, h->rows[i], &h->parts[k], &v) && v > 0) sum += v;
        if (sum > max) max = sum;
    }
    int height = top + (h->n ? h->n : 1) * (bh + gap) + 4;
    double bar_w = h->width - label_w - text_w;
    tm_status s = svg_open(b, h->width, height, h->title, h->table_id);
    for (int k = 0; !s && h->n_parts > 1 && k < h->n_parts; k++) s = legend(b, k * 170, 24, h->colors[k], h->names[k]);
    if (!s && h->n == 0) s = tm_buf_printf(b, "<text x=\"0\" y=\"%d\" font-size=\"13\" fill=\"#404040\">no data"
                                              "</text>", top + 14);
    for (int i = 0; !s && i < h->n; i++) {
        int r = h->rows[i], y = top + i * (bh + gap);
        char lab[160], val[64];
        rep_format(h->t, r, h->label, LABEL_CHARS, lab, sizeof lab);
        s = tm_buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\" fill=\"#1a1a1a\">"
                             "<title>", label_w - 6, y + 14);
        char full[512]; /* the whole label, never a path (tm_cost_label) */
        rep_format(h->t, r, h->label, 200, full, sizeof full);
        if (!s) s = put_html(b, full);
        if (!s) s = tm_buf_puts(b, "</title>");
        if (!s) s = put_html(b, lab);
        if (!s) s = tm_buf_puts(b, "</text>");
        double x = label_w, sum = 0;
        for (int k = 0; !s && k < h->n_parts; k++) {
            double v;
            if (!rep_value(h->t, r, &h->parts[k], &v)) continue;
            double w = max > 0 && v > 0 ? v / max * bar_w : 0;
            s = tm_buf_printf(b, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\" data-row=\"%d\" "
                                 "data-col=\"%s\" data-value=\"%.17g\"/>",
                              x, y, w, bh, h->colors[k], r, h->parts[k].key, v);
            x += w;
            sum += v > 0 ? v : 0;
        }
        rep_format_value(sum, h->kind, val, sizeof val);
        if (!s) s = tm_buf_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"12\" fill=\"#1a1a1a\">%s</text>", x + 5,
                                  y + 14, val);
    }
    return s ? s : tm_buf_puts(b, "</svg></figure>\n");
}

/* day number (days since 1970-01-01) of a "YYYY-MM-DD" cell; -1 when not a date */
static long day_number(const char *s)
{
    int y, m, d;
    char tail;
    if (!s || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || m < 1 || m > 12 || d < 1 || d > 31) return -1;
    /* days from civil (H. Hinnant) */
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
    long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1, doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Daily spend: a column per calendar day (days without spend stay empty), the
 * last 366 days of the rows at most; rows that are not a date are left out. */
static tm_status svg_days(tm_buf *b, const tm_table *t, const rep_col *day, const rep_col *cost)
{
    const int W = 1000, H = 300, L = 80, R = 10, T = 34, B = 40;
    long d0 = -1, d1 = -1;
    double max = 0, v;
    for (int r = 0; r < t->n_rows; r++) {
        long d = day_number(rep_text(t, r, day));
        if (d >= 0 && d > d1) d1 = d;
    }
    for (int r = 0; r < t->n_rows; r++) {
        long d = day_number(rep_text(t, r, day));
        if (d < 0 || d < d1 - 365) continue;
        if (d0 < 0 || d < d0) d0 = d;
        if (rep_value(t, r, cost, &v) && v > max) max = v;
    }
    tm_status s = svg_open(b, W, H, "Spend per day (UTC)", "main");
    long span = d0 >= 0 ? d1 - d0 + 1 : 1;
    double step = max > 0 ? pow(10, floor(log10(max / 4))) : 0.25, ym;
    for (int k = 0;; k++) { /* the axis ends at 4 round steps: 1, 2, 2.5 or 5 x 10^n each */
        static const double m[] = {1, 2, 2.5, 5, 10};
        ym = 4 * step * m[k];
        if (ym >= max || k == 4) break;
    }
    double pw = W - L - R, ph = H - T - B, slot = pw / (double)span;
    double bw = slot * 0.7 > 60 ? 60 : slot * 0.7;
    for (int g = 0; !s && g <= 4; g++) { /* grid lines and money labels */
        char m[48];
        double y = T + ph - ph * g / 4;
        rep_format_value(ym * g / 4, REP_MONEY, m, sizeof m);
        s = tm_buf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\"/>"
                             "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\" fill=\"#404040\">%s</text>",
                          L, y, W - R, y, g ? C_GRID : "#333", L - 6, y + 4, m);
    }
    if (!s && d0 < 0) s = tm_buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"13\" fill=\"#404040\">no data</text>",
                                        L + 10, T + 30);
    long every = (span + 9) / 10;
    for (int r = 0; !s && r < t->n_rows; r++) {
        const char *txt = rep_text(t, r, day);
        long d = day_number(txt);
        if (d < 0 || d < d0) continue;
        int ok = rep_value(t, r, cost, &v);
        double x = L + (double)(d - d0) * slot + (slot - bw) / 2, hgt = ok && v > 0 ? v / ym * ph : 0;
        s = tm_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" data-row=\"%d\" "
                             "data-col=\"%s\" data-value=\"%.17g\"><title>%.10s</title></rect>",
                          x, T + ph - hgt, bw < 1 ? 1 : bw, hgt, C_BLUE, r, cost->key, ok ? v : 0, txt);
        if (!s && ((d - d0) % every == 0 || d == d1))
            s = tm_buf_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\" "
                                 "fill=\"#404040\">%.10s</text>", x + bw / 2, H - B + 16, txt);
    }
    return s ? s : tm_buf_puts(b, "</svg></figure>\n");
}

typedef struct keyed { double k; int r; } keyed;

static int by_key_desc(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->k != y->k) return x->k < y->k ? 1 : -1;
    return (x->r > y->r) - (x->r < y->r);
}

/* rows of t by the value of cost, most first; at most max; returns the count */
static int top_rows(const tm_table *t, const rep_col *cost, int *rows, int max)
{
    keyed *k = malloc(sizeof *k * (size_t)(t->n_rows ? t->n_rows : 1));
    if (!k) return 0;
    for (int r = 0; r < t->n_rows; r++) {
        double v;
        k[r] = (keyed){rep_value(t, r, cost, &v) ? v : -1, r};
    }
    qsort(k, (size_t)t->n_rows, sizeof *k, by_key_desc);
    int n = t->n_rows < max ? t->n_rows : max;
    for (int i = 0; i < n; i++) rows[i] = k[i].r;
    free(k);
    return n;
}

static const rep_col *find_col(const rep_col *cols, int nc, const char *key)
{
    for (int c = 0; c < nc; c++)
        if (!strcmp(cols[c].key, key)) return &cols[c];
    return NULL;
}

static tm_status group_chart(const tm_cost_report_in *in, const rep_col *cols, int nc, tm_buf *b)
{
    const tm_table *t = in->main;
    const rep_col *cost = find_col(cols, nc, "cost_usd"), *tpu = find_col(cols, nc, "tokens_per_usd");
    if (!cost) return TM_OK;
    if (in->by == TM_COST_GROUP_DAY) return svg_days(b, t, &cols[0], cost);
    int *rows = malloc(sizeof *rows * (size_t)(t->n_rows ? t->n_rows : 1));
    if (!rows) return TM_ERR_NOMEM;
    int n = top_rows(t, cost, rows, CHART_ROWS);
    tm_status s = TM_OK;
    if (in->by == TM_COST_GROUP_WORKER && find_col(cols, nc, "busy_seconds")) {
        rep_col parts[2] = {*find_col(cols, nc, "busy_seconds"), *find_col(cols, nc, "overhead_seconds")};
        static const char *const colors[] = {C_BLUE, C_ORANGE}, *const names[] = {"busy (requests)", "overhead"};
        hbar h = {"GPU time per worker: busy vs overhead", "main", t, rows, n, 1000, &cols[0], parts, colors,
                  names, 2, REP_SECONDS};
        s = svg_hbars(b, &h);
    } else {
        static const char *const c1[] = {C_BLUE}, *const c2[] = {C_GREEN}, *const nm[] = {""};
        hbar h1 = {"Cost", "main", t, rows, n, 500, &cols[0], cost, c1, nm, 1, REP_MONEY};
        s = tm_buf_puts(b, "<div class=\"charts\">");
        if (!s) s = svg_hbars(b, &h1);
        if (!s && tpu) {
            hbar h2 = {"Tokens per $ (more is better)", "main", t, rows, n, 500, &cols[0], tpu, c2, nm, 1, REP_COUNT};
            s = svg_hbars(b, &h2);
        }
        if (!s) s = tm_buf_puts(b, "</div>");
    }
    if (!s && n < t->n_rows)
        s = tm_buf_printf(b, "<p class=\"note\">The chart shows the %d costliest of %d rows; the table has all.</p>\n",
                          n, t->n_rows);
    free(rows);
    return s;
}

/* ---- tables and headline ---------------------------------------------------------- */

static tm_status html_row(tm_buf *b, const tm_table *t, int r, int data_row, const rep_col *cols, int nc)
{
    tm_status s = data_row >= 0 ? tm_buf_printf(b, "<tr data-row=\"%d\">", data_row) : tm_buf_puts(b, "<tr>");
    for (int c = 0; !s && c < nc; c++) {
        char txt[200];
        double v;
        rep_format(t, r, &cols[c], 40, txt, sizeof txt);
        int num = cols[c].kind != REP_LABEL && cols[c].kind != REP_TEXT;
        if (num && rep_value(t, r, &cols[c], &v))
            s = tm_buf_printf(b, "<td class=\"n\" data-col=\"%s\" data-value=\"%.17g\">", cols[c].key, v);
        else s = tm_buf_puts(b, num ? "<td class=\"n\">" : "<td>");
        char whole[512]; /* the whole label on hover when it was cut; never a path (tm_cost_label) */
        rep_format(t, r, &cols[c], 200, whole, sizeof whole);
        const char *full = cols[c].kind == REP_LABEL ? whole : NULL;
        if (!s && full && strcmp(full, txt)) {
            s = tm_buf_puts(b, "<span title=\"");
            if (!s) s = put_html(b, full);
            if (!s) s = tm_buf_puts(b, "\">");
        }
        if (!s) s = put_html(b, txt);
        if (!s && full && strcmp(full, txt)) s = tm_buf_puts(b, "</span>");
        if (!s) s = tm_buf_puts(b, "</td>");
    }
    return s ? s : tm_buf_puts(b, "</tr>\n");
}

static tm_status html_table(tm_buf *b, const char *id, const tm_table *t, const tm_table *tot, const rep_col *cols,
                            int nc)
{
    tm_status s = tm_buf_printf(b, "<table id=\"%s\"><thead><tr>", id);
    for (int c = 0; !s && c < nc; c++) {
        s = tm_buf_puts(b, cols[c].kind == REP_LABEL || cols[c].kind == REP_TEXT ? "<th>" : "<th class=\"n\">");
        if (!s) s = put_html(b, cols[c].header);
        if (!s) s = tm_buf_puts(b, "</th>");
    }
    if (!s) s = tm_buf_puts(b, "</tr></thead><tbody>\n");
    for (int r = 0; !s && r < t->n_rows; r++) s = html_row(b, t, r, r, cols, nc);
    if (!s && t->n_rows == 0) s = tm_buf_printf(b, "<tr><td colspan=\"%d\">no rows in this period</td></tr>", nc);
    if (!s) s = tm_buf_puts(b, "</tbody>");
    if (!s && tot) s = tm_buf_puts(b, "<tfoot>");
    if (!s && tot) s = html_row(b, tot, 0, -1, cols, nc);
    if (!s && tot) s = tm_buf_puts(b, "</tfoot>");
    return s ? s : tm_buf_puts(b, "</table>\n");
}

static tm_status card(tm_buf *b, const char *k, const char *v)
{
    tm_status s = tm_buf_puts(b, "<div class=\"card\"><div class=\"k\">");
    if (!s) s = put_html(b, k);
    if (!s) s = tm_buf_puts(b, "</div><div class=\"v\">");
    if (!s) s = put_html(b, v);
    return s ? s : tm_buf_puts(b, "</div></div>");
}

static tm_status headline(const tm_cost_report_in *in, const tm_table *tot, tm_buf *b)
{
    char v[6][96];
    int ok;
    double x = rep_tot(tot, "cost_usd", &ok);
    rep_format_value(x, REP_MONEY, v[0], sizeof v[0]);
    x = rep_tot(tot, "total_tokens", &ok);
    rep_format_value(x, REP_COUNT, v[1], sizeof v[1]);
    x = rep_tot(tot, "tokens_per_usd", &ok);
    if (ok) rep_format_value(x, REP_COUNT, v[2], sizeof v[2]); else snprintf(v[2], sizeof v[2], "-");
    x = rep_tot(tot, "usd_per_1m_output", &ok);
    if (ok) rep_format_value(x, REP_MONEY, v[3], sizeof v[3]); else snprintf(v[3], sizeof v[3], "-");
    x = rep_tot(tot, "wasted_share", &ok);
    if (ok) rep_format_value(x, REP_SHARE, v[4], sizeof v[4]); else snprintf(v[4], sizeof v[4], "-");
    rep_period(in, v[5], sizeof v[5]);
    static const char *const k[] = {"Total spend", "Tokens", "Tokens per $", "$ per 1M output tokens",
                                    "Wasted (recompute)", "Period"};
    tm_status s = tm_buf_puts(b, "<div class=\"cards\">");
    for (int i = 0; !s && i < 6; i++) s = card(b, k[i], v[i]);
    return s ? s : tm_buf_puts(b, "</div>\n");
}

static tm_status whatif_section(const tm_table *wi, tm_buf *b)
{
    static const rep_col wc[] = {
        {0, -1, -1, REP_LABEL, "price profile", "profile"}, {1, -1, -1, REP_MONEY, "$ per GPU-hour", "usd_per_gpu_hour"},
        {2, -1, -1, REP_COUNT, "GPU-hours", "gpu_hours"},   {3, -1, -1, REP_MONEY, "cost", "cost_usd"},
        {4, -1, -1, REP_COUNT, "tokens per $", "tokens_per_usd"},
        {5, -1, -1, REP_MONEY, "$ per 1M out", "usd_per_1m_output"}, {6, -1, -1, REP_SHARE, "vs billed", "vs_billed"}};
    int rows[64], n = wi->n_rows < 64 ? wi->n_rows : 64;
    for (int i = 0; i < n; i++) rows[i] = i;
    static const char *const c[] = {C_GREEN}, *const nm[] = {""};
    hbar h = {"Tokens per $ at each price (the same GPU time)", "whatif", wi, rows, n, 1000, &wc[0], &wc[4], c, nm, 1,
              REP_COUNT};
    tm_status s = tm_buf_puts(b, "<h2>What if: the same GPU time at other prices</h2>\n");
    if (!s) s = svg_hbars(b, &h);
    return s ? s : html_table(b, "whatif", wi, NULL, wc, 7);
}

tm_status rep_render_html(const tm_cost_report_in *in, const tm_table *tot, const tm_table *wi, tm_buf *b)
{
    rep_col cols[REP_MAX_COLS];
    int nc = rep_columns(in, cols, REP_MAX_COLS);
    char g[40];
    rep_time(in->generated_at, 0, g, sizeof g);
    tm_status s = tm_buf_printf(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                                   "<title>Cost report by ");
    if (!s) s = put_html(b, rep_by_label(in));
    if (!s) s = tm_buf_printf(b, "</title><style>%s</style></head><body><h1>Cost report by ", CSS);
    if (!s) s = put_html(b, rep_by_label(in));
    if (!s) s = tm_buf_printf(b, "</h1><p class=\"sub\">tokenmill &#183; generated %s UTC &#183; %s", g,
                              in->currency ? in->currency : "USD");
    for (int i = 0; !s && i < in->n_price_profiles; i++) {
        s = tm_buf_puts(b, i ? ", " : " &#183; billed at ");
        if (!s) s = put_html(b, in->price_profiles[i]);
    }
    if (!s) s = tm_buf_puts(b, "</p>\n");
    if (!s) s = headline(in, tot, b);
    if (!s && in->note) s = tm_buf_puts(b, "<p class=\"note\">");
    if (!s && in->note) s = put_html(b, in->note);
    if (!s && in->note) s = tm_buf_puts(b, "</p>\n");
    if (!s) s = group_chart(in, cols, nc, b);
    if (!s) s = html_table(b, "main", in->main, tot, cols, nc);
    if (!s && wi) s = whatif_section(wi, b);
    if (!s) s = tm_buf_puts(b, "<p class=\"note\">Cost is GPU wall time &#215; the run&#39;s price (plus energy when "
                               "priced per kWh). Wasted: the part of the cost spent recomputing work already done "
                               "once (after a preemption). The CSV and JSON formats carry every column at full "
                               "precision.</p>\n</body></html>\n");
    return s;
}
