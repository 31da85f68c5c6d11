/* report.h — cost reports: the cost table of one grouping (--by) rendered for
 * people (a terminal table, one HTML page) or for programs (CSV, JSON).
 *
 * Every format carries the same facts: the rows, a totals record (sums of the
 * additive columns; the ratios recomputed from the sums, never averaged) and
 * the metadata (currency, price profile(s), period, generated_at, overhead
 * included or not); with --what-if, the same measured GPU time priced at other
 * profiles. Formats:
 *   table  the columns that answer the grouping's question (tm_cost_report_in
 *          .wide: all), numbers for people ($1,234.56, 3.76 M, 12.5 %), a
 *          totals row; at most 100 columns wide unless wide; text labels
 *          (tm_cost_label) ellipsised in the middle.
 *   csv    RFC 4180 after '#'-comment lines "# key: value" (report, by,
 *          currency, price_profiles, period_since, period_until,
 *          generated_at, overhead_included, what_if rows); a header row, the
 *          rows, then the totals record whose first field is "(total)";
 *          reals "%.10g", NULL an empty field.
 *   json   one object: report "tokenmill cost", by, currency, price_profiles
 *          (array of strings), period {since, until} (ISO 8601 UTC or null),
 *          generated_at, overhead_included (bool), columns (array), rows
 *          (array of objects keyed by column), totals (object), what_if
 *          (array; empty without --what-if). Full precision, NULL as null.
 *   html   one self-contained file (no scripts, no external resources):
 *          headline (total spend, tokens, tokens per $, $ per 1M output
 *          tokens, wasted share, period), the chart of the grouping (day:
 *          daily spend; job, model, metadata: cost and tokens/$ bars; worker:
 *          GPU time busy vs overhead), the table with totals, the what-if
 *          comparison. Inline SVG; every bar carries data-row, data-col and
 *          data-value ("%.17g"), and so does the table cell with the same
 *          value (tr data-row, td data-col / data-value), so that a checker
 *          can compare them. A4 print rules, Okabe-Ito palette on white.
 */
#ifndef TM_COST_REPORT_H
#define TM_COST_REPORT_H

#include <stdint.h>
#include "util/table.h"
#include "util/buf.h"

typedef enum tm_cost_format {
    TM_COST_FMT_TABLE, TM_COST_FMT_CSV, TM_COST_FMT_JSON, TM_COST_FMT_HTML
} tm_cost_format;

/* "table" | "csv" | "json" | "html" -> format; anything else TM_ERR_USAGE. */
tm_status tm_cost_format_parse(const char *s, tm_cost_format *out, tm_err *err);

/* What the rows are grouped by (decides the columns and the chart). */
typedef enum tm_cost_group {
    TM_COST_GROUP_JOB, TM_COST_GROUP_DAY, TM_COST_GROUP_MODEL, TM_COST_GROUP_WORKER, TM_COST_GROUP_METADATA
} tm_cost_group;

/* Another price for the same measured GPU time (--what-if). */
typedef struct tm_cost_whatif {
    char name[64];              /* profile name or "$3.00/GPU-h" for a bare number */
    double usd_per_gpu_hour;    /* >= 0 */
    double usd_per_kwh;         /* < 0: energy not billed */
} tm_cost_whatif;

typedef struct tm_cost_report_in {
    tm_cost_group by;
    const char *by_label;       /* "job", "day", "model", "worker", "metadata.team"; NULL: from by */
    const char *note;           /* what the costs include (table: first line; html: under the title) */
    const tm_table *main;       /* the grouping's rows (queue_cost.h tm_queue_cost_report) */
    const char *currency;       /* NULL: "USD" */
    const char *const *price_profiles; /* the profiles the runs were billed at, as text */
    int n_price_profiles;
    int64_t since, until;       /* the period, unix seconds (until exclusive); <= 0: open */
    int64_t generated_at;       /* unix seconds */
    int overhead_included;      /* cost_usd includes run overhead (--include-overhead, or by worker) */
    const tm_cost_whatif *whatif; /* n_whatif profiles to compare; may be NULL */
    int n_whatif;
    int wide;                   /* table format: every column */
} tm_cost_report_in;

/* Render in->main with its totals, metadata and what-if in fmt; appends to out. */
tm_status tm_cost_report_render(const tm_cost_report_in *in, tm_cost_format fmt, tm_buf *out, tm_err *err);

/* The totals record of t: one row with t's columns. Additive columns
 * (requests, runs, *_tokens, *seconds, kwh, cost_usd, wasted_usd,
 * overhead_usd) are summed (kwh NULL when every row's is); the ratios are
 * recomputed from the sums: usd_per_1m_input/output/total = cost_usd * 1e6 /
 * tokens, tokens_per_usd = total_tokens / cost_usd, wasted_share =
 * wasted_usd / cost_usd (NULL on a zero divisor). The first column is the
 * text "(total)", other text columns NULL. */
tm_status tm_cost_report_totals(const tm_table *t, tm_table *out, tm_err *err);

/* The what-if comparison: one row "as billed" then one per in->whatif:
 * columns profile, usd_per_gpu_hour (NULL for "as billed"), gpu_hours,
 * cost_usd, tokens_per_usd, usd_per_1m_output, vs_billed (cost / billed cost).
 * The GPU time is the totals' gpu_seconds (+ overhead_seconds when the rows'
 * costs include it and the grouping is not worker: worker rows are whole runs);
 * a profile's cost is gpu_hours x usd_per_gpu_hour (+ kwh x usd_per_kwh when
 * both are known). */
tm_status tm_cost_report_whatif(const tm_cost_report_in *in, tm_table *out, tm_err *err);

/* A label for people: a value that looks like a path (has a '/') becomes its
 * last non-empty component; longer than max_chars characters (UTF-8), it is
 * cut in the middle with "…". Control characters become '?'. Always
 * NUL-terminates out (n >= 1). */
void tm_cost_label(const char *s, int max_chars, char *out, size_t n);

/* Numbers for people. money: "$1,234.56" (2 decimals from $1; below, 3
 * significant digits: "$0.00250"; "-" for NaN). count: "7,200" below 100,000,
 * then "156 k", "3.76 M", "1.20 B". */
void tm_cost_fmt_money(double usd, char *out, size_t n);
void tm_cost_fmt_count(double x, char *out, size_t n);

#endif
