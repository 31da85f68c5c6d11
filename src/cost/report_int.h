/* report_int.h — shared between the cost report renderers (report.c: text,
 * csv, json; report_html.c: the HTML page): the columns shown to people per
 * grouping and how one cell is formatted for them. Not a public API.
 */
#ifndef TM_COST_REPORT_INT_H
#define TM_COST_REPORT_INT_H

#include "cost/report.h"

typedef enum rep_kind {
    REP_LABEL,      /* the row's name (first column, or name/job_id for jobs) */
    REP_COUNT,      /* 7,200 / 3.76 M */
    REP_MONEY,      /* $1,234.56 */
    REP_SECONDS,    /* GPU time: 8.5 s / 12.3 min / 3.76 h */
    REP_SHARE,      /* 12.5 % */
    REP_KWH,        /* 0.0123 kWh */
    REP_TEXT        /* other text */
} rep_kind;

#define REP_MAX_COLS 64

/* One shown column: value = col (minus col_minus when >= 0). */
typedef struct rep_col {
    int col, col_minus, alt;    /* alt: REP_LABEL fallback column when col is NULL/empty */
    rep_kind kind;
    const char *header;         /* for people */
    const char *key;            /* data-col / machine name */
} rep_col;

/* The columns for people of in (in->wide: all of main's); returns the count. */
int rep_columns(const tm_cost_report_in *in, rep_col *cols, int max);

/* The value of c in row r of t (tot: the totals table, row 0, when r < 0). */
int rep_value(const tm_table *t, int r, const rep_col *c, double *v);
const char *rep_text(const tm_table *t, int r, const rep_col *c);

/* c's cell in row r formatted for people ("-" when NULL); label cells via
 * tm_cost_label with max_chars. */
void rep_format(const tm_table *t, int r, const rep_col *c, int max_chars, char *buf, size_t n);

/* v formatted for people as kind. */
void rep_format_value(double v, rep_kind kind, char *buf, size_t n);

/* Numeric value of a cell; 0 (and *ok 0) when NULL, text or not finite. */
double rep_num(const tm_cell *c, int *ok);

/* "2026-12-01" / "2026-12-01 12:30" UTC for t (date only at midnight). */
void rep_time(int64_t t, int iso, char *buf, size_t n);

/* The period as one line: "2026-12-01 – 2026-12-07", "since …", "all time". */
void rep_period(const tm_cost_report_in *in, char *buf, size_t n);

const char *rep_by_label(const tm_cost_report_in *in);

/* A numeric cell of the totals table by column name. */
double rep_tot(const tm_table *tot, const char *col, int *ok);

tm_status rep_render_table(const tm_cost_report_in *in, const tm_table *tot, const tm_table *wi, tm_buf *b);

tm_status rep_render_html(const tm_cost_report_in *in, const tm_table *tot, const tm_table *wi, tm_buf *b);

#endif
