/* report.h — rendering cost tables as text, CSV, JSON or one HTML page.
 *
 * Formats: table (aligned columns, reals with 6 significant digits, NULL as
 * '-'); csv (RFC 4180, header row, NULL as an empty field, reals "%.10g");
 * json (array of objects keyed by column name, NULL as null); html (one
 * self-contained file: the table plus three inline hand-written SVG charts —
 * cost per job (stacked: the wasted recompute and, with --include-overhead,
 * the run overhead in their own colours), $ per 1M tokens by model and price
 * profile, tokens/s per run over time — no scripts, no external resources).
 */
#ifndef TM_COST_REPORT_H
#define TM_COST_REPORT_H

#include "util/table.h"
#include "util/buf.h"

typedef enum tm_cost_format {
    TM_COST_FMT_TABLE, TM_COST_FMT_CSV, TM_COST_FMT_JSON, TM_COST_FMT_HTML
} tm_cost_format;

/* "table" | "csv" | "json" | "html" -> format; anything else TM_ERR_USAGE. */
tm_status tm_cost_format_parse(const char *s, tm_cost_format *out, tm_err *err);

/* What an HTML report shows; the charts' tables may be NULL (chart says "no data"). */
typedef struct tm_cost_report_in {
    const char *title;                  /* e.g. "tokenmill cost report — by job" */
    const char *note;                   /* what the numbers include (table: first line; html: under
                                           the title); NULL: none */
    const tm_table *main;               /* the --by table */
    const tm_table *jobs;               /* job_costs rows: job_id, name, cost_usd; the bars show
                                           wasted_usd and overhead_usd as parts when present */
    const tm_table *model_price;        /* columns model, price_profile, tokens, cost_usd,
                                           usd_per_1m_total */
    const tm_table *throughput;         /* columns run_id, started_at, ended_at, tokens, tokens_per_s */
} tm_cost_report_in;

/* Append the rendering of in->main (and, for html, the charts) to out. */
tm_status tm_cost_report_render(const tm_cost_report_in *in, tm_cost_format fmt, tm_buf *out, tm_err *err);

#endif
