/* report_text.c — the terminal table of a cost report (report.h, format
 * "table"): a headline, the note wrapped at 100 columns, the columns chosen
 * for the grouping (report.c rep_columns) formatted for people with a totals
 * row, the label column shrunk until a line fits 100 columns (not with wide),
 * and the what-if comparison.
 */
#include "cost/report_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- terminal table --------------------------------------------------------------------- */

#define TERM_W 100
#define CELL_MAX 160

/* Words of s wrapped at width columns (bytes; the text is ASCII or the widths are approximate). */
static tm_status put_wrapped(tm_buf *b, const char *s, int width)
{
    tm_status st = TM_OK;
    while (!st && *s) {
        size_t len = strlen(s);
        if ((int)len <= width) return tm_buf_printf(b, "%s\n", s);
        int cut = width;
        while (cut > 0 && s[cut] != ' ') cut--;
        if (cut == 0) cut = width;
        st = tm_buf_printf(b, "%.*s\n", cut, s);
        s += cut;
        while (*s == ' ') s++;
    }
    return st;
}

static tm_status table_line(tm_buf *b, const rep_col *cols, int nc, const int *w, const char (*cells)[CELL_MAX])
{
    tm_status s = TM_OK;
    for (int c = 0; c < nc && !s; c++) {
        /* pad by characters, not bytes (labels may hold UTF-8) */
        int chars = 0;
        for (const unsigned char *p = (const unsigned char *)cells[c]; *p; p++) chars += (*p & 0xC0) != 0x80;
        int pad = w[c] > chars ? w[c] - chars : 0;
        int left = cols[c].kind == REP_LABEL || cols[c].kind == REP_TEXT;
        if (c) s = tm_buf_puts(b, "  ");
        if (!s && !left) s = tm_buf_printf(b, "%*s", pad, "");
        if (!s) s = tm_buf_puts(b, cells[c]);
        if (!s && left && c + 1 < nc) s = tm_buf_printf(b, "%*s", pad, "");
    }
    return s ? s : tm_buf_puts(b, "\n");
}

static tm_status headline_text(const tm_cost_report_in *in, const tm_table *tot, tm_buf *b)
{
    char per[96], g[40], cost[48], tok[48], tpu[48], p1m[48], ws[48];
    int ok;
    rep_period(in, per, sizeof per);
    rep_time(in->generated_at, 0, g, sizeof g);
    tm_cost_fmt_money(rep_tot(tot, "cost_usd", &ok), cost, sizeof cost);
    int tc = tm_table_col(tot, "total_tokens");
    tm_cost_fmt_count(rep_num(tm_table_cell(tot, 0, tc), &ok), tok, sizeof tok);
    double v = rep_tot(tot, "tokens_per_usd", &ok);
    if (ok) tm_cost_fmt_count(v, tpu, sizeof tpu); else snprintf(tpu, sizeof tpu, "-");
    v = rep_tot(tot, "usd_per_1m_output", &ok);
    if (ok) tm_cost_fmt_money(v, p1m, sizeof p1m); else snprintf(p1m, sizeof p1m, "-");
    v = rep_tot(tot, "wasted_share", &ok);
    if (ok) snprintf(ws, sizeof ws, "%.1f %%", v * 100); else snprintf(ws, sizeof ws, "-");
    tm_status s = tm_buf_printf(b, "tokenmill cost report by %s, %s (generated %s UTC)\n", rep_by_label(in), per, g);
    if (!s) s = tm_buf_printf(b, "Total %s | %s tokens | %s tokens/$ | %s per 1M output tokens | %s wasted\n", cost,
                              tok, tpu, p1m, ws);
    for (int i = 0; !s && i < in->n_price_profiles; i++)
        s = tm_buf_printf(b, "%s%.200s%s", i ? ", " : "Billed at: ", in->price_profiles[i],
                          i + 1 == in->n_price_profiles ? "\n" : "");
    if (!s && in->note) s = put_wrapped(b, in->note, TERM_W);
    return s;
}

/* cols of t's rows, then tot's row 0 as the totals row (tot NULL: none). */
static tm_status render_text_table(const rep_col *cols, int nc, const tm_table *t, const tm_table *tot, tm_buf *b,
                                   int wide)
{
    int w[REP_MAX_COLS] = {0}, label_max = wide ? 60 : 40;
    char (*cells)[CELL_MAX] = malloc(sizeof(*cells) * (size_t)nc);
    if (!cells) return TM_ERR_NOMEM;
    for (int c = 0; c < nc; c++) w[c] = (int)strlen(cols[c].header);
    for (int r = tot ? -1 : 0; r < t->n_rows; r++)
        for (int c = 0; c < nc; c++) {
            rep_format(r < 0 ? tot : t, r < 0 ? 0 : r, &cols[c], label_max, cells[c], CELL_MAX);
            int chars = 0;
            for (const unsigned char *p = (const unsigned char *)cells[c]; *p; p++) chars += (*p & 0xC0) != 0x80;
            if (chars > w[c]) w[c] = chars;
        }
    if (!wide) { /* shrink the label column until the line fits */
        int total = 0;
        for (int c = 0; c < nc; c++) total += w[c] + (c ? 2 : 0);
        if (total > TERM_W) w[0] = w[0] - (total - TERM_W) < 8 ? 8 : w[0] - (total - TERM_W);
        label_max = w[0];
    }
    tm_status s = TM_OK;
    for (int c = 0; c < nc; c++) snprintf(cells[c], CELL_MAX, "%s", cols[c].header);
    s = table_line(b, cols, nc, w, (const char (*)[CELL_MAX])cells);
    for (int r = 0; !s && r < t->n_rows + (tot ? 1 : 0); r++) {
        const tm_table *src = r < t->n_rows ? t : tot;
        for (int c = 0; c < nc; c++) rep_format(src, r < t->n_rows ? r : 0, &cols[c], label_max, cells[c], CELL_MAX);
        s = table_line(b, cols, nc, w, (const char (*)[CELL_MAX])cells);
    }
    if (!s && t->n_rows == 0) s = tm_buf_puts(b, "(no rows)\n");
    free(cells);
    return s;
}

tm_status rep_render_table(const tm_cost_report_in *in, const tm_table *tot, const tm_table *wi, tm_buf *b)
{
    rep_col cols[REP_MAX_COLS];
    int nc = rep_columns(in, cols, REP_MAX_COLS);
    tm_status s = headline_text(in, tot, b);
    if (!s) s = tm_buf_puts(b, "\n");
    if (!s) s = render_text_table(cols, nc, in->main, tot, b, in->wide);
    if (!s && wi && in->n_whatif > 0) {
        static const rep_col wc[] = {
            {0, -1, -1, REP_LABEL, "what if billed at", "profile"}, {1, -1, -1, REP_MONEY, "$/GPU-h", "usd_per_gpu_hour"},
            {2, -1, -1, REP_COUNT, "GPU-h", "gpu_hours"},         {3, -1, -1, REP_MONEY, "cost", "cost_usd"},
            {4, -1, -1, REP_COUNT, "tokens/$", "tokens_per_usd"}, {5, -1, -1, REP_MONEY, "$/1M out", "usd_per_1m_output"},
            {6, -1, -1, REP_SHARE, "vs billed", "vs_billed"}};
        s = tm_buf_puts(b, "\nThe same GPU time at other prices:\n");
        if (!s) s = render_text_table(wc, 7, wi, NULL, b, 1);
    }
    return s;
}

