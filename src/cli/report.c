/* report.c — `tokenmill report`: cost by job, day, model or worker from the
 * cost views, as a table, CSV, JSON or one self-contained HTML page with
 * inline SVG charts (src/cost/report.h). Read-only on the queue DB.
 */
#define _XOPEN_SOURCE 700
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cost/meter.h"
#include "cost/report.h"
#include "queue/queue_cost.h"
#include "util/timeutil.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill report [--by job|day|model|worker|metadata.KEY] [--since WHEN] [--until WHEN]\n"
               "                        [--format table|csv|json|html] [-o FILE] [--include-overhead]\n"
               "                        [--what-if PRICE[,PRICE...]] [--wide] [--db PATH]\n"
               "\n"
               "Cost report: a headline (total spend, tokens, tokens per $, $ per 1M output tokens,\n"
               "wasted share, period), then the rows of the grouping with a totals row. The cost views\n"
               "(job_costs, daily_costs, model_costs, worker_costs) give tokens, GPU-seconds, kWh\n"
               "(blank when not measured), USD, USD per 1M input/output/total tokens, tokens per USD,\n"
               "and the wasted part: wasted_gpu_seconds, wasted_usd and wasted_share (= wasted_usd /\n"
               "cost_usd) spent recomputing work already done once (a request resumed after a\n"
               "preemption is charged for every attempt).\n"
               "  --by KEY            job (default), day, model, worker, or metadata.KEY: the value of\n"
               "                      the jobs' --metadata KEY (e.g. metadata.team)\n"
               "  --since WHEN        from WHEN (UTC): today, yesterday, now, a duration back from now\n"
               "                      (7d, 12h), YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS. job: jobs created;\n"
               "                      day: days; model, metadata: requests finished; worker: runs started\n"
               "  --until WHEN        up to the end of WHEN (a date or today/yesterday: that whole day)\n"
               "  --format FMT        table (default: fits 100 columns, numbers for people), csv and\n"
               "                      json (every column, full precision, totals record and metadata),\n"
               "                      html (one self-contained page with inline SVG charts, prints on A4)\n"
               "  --wide              table: every column\n"
               "  --what-if PRICE     also price the same measured GPU time at PRICE: a price profile\n"
               "                      (tokenmill prices list; it must be for the runs' GPU kind) or a\n"
               "                      number of $ per GPU-hour; repeat or separate with commas\n"
               "  -o FILE             write to FILE instead of stdout\n"
               "  --include-overhead  spread run time not attributed to requests (model load, idle,\n"
               "                      checkpointing; overhead_seconds x the run's price) over the rows:\n"
               "                      each run's overhead goes to the requests it completed, in\n"
               "                      proportion to their GPU-seconds, then to their job/day/model.\n"
               "                      Adds columns overhead_seconds and overhead_usd; cost_usd,\n"
               "                      usd_per_1m_*, tokens_per_usd and wasted_share then include it.\n"
               "                      Runs that completed no request: a row '(unattributed overhead)'.\n"
               "                      By worker the costs are whole runs, overhead always included.\n"
               "  --db PATH           queue database (default ./tokenmill.db or $TOKENMILL_DB)\n"
               "Exit: 0 ok, 64 usage, 65 no such DB or not a valid queue (as status), 74 I/O.\n");
}

/* WHEN -> [start, end): a date is its whole UTC day, today/yesterday too; a
 * date-time, now or a duration back from now (7d) is one instant. */
static tm_status parse_when(const char *opt, const char *s, int64_t *start, int64_t *end, tm_err *err)
{
    int64_t now = tm_now_unix(), midnight = now - now % 86400;
    if (!strcmp(s, "today") || !strcmp(s, "yesterday")) {
        *start = midnight - (s[0] == 'y' ? 86400 : 0);
        *end = *start + 86400;
        return TM_OK;
    }
    if (!strcmp(s, "now")) { *start = *end = now; return TM_OK; }
    struct tm tmv;
    memset(&tmv, 0, sizeof tmv);
    const char *e = strptime(s, "%Y-%m-%d", &tmv);
    int whole_day = e && !*e;
    if (e && (*e == 'T' || *e == ' ')) e = strptime(e + 1, "%H:%M:%S", &tmv);
    if (e && !*e && strlen(s) >= 10) {
        time_t t = timegm(&tmv);
        if (t == (time_t)-1 || t < 0) return tm_errf(err, TM_ERR_USAGE, "%s: bad date \"%.40s\"", opt, s);
        *start = (int64_t)t;
        *end = *start + (whole_day ? 86400 : 0);
        return TM_OK;
    }
    int64_t d;
    if (tm_parse_duration(s, &d, NULL) == TM_OK && d >= 0 && d <= now) {
        *start = *end = now - d;
        return TM_OK;
    }
    return tm_errf(err, TM_ERR_USAGE,
                   "%s: \"%.40s\" is not today, yesterday, now, a duration (7d) or YYYY-MM-DD[THH:MM:SS]", opt, s);
}

/* The table format is for a terminal: text cells (job names, models) get
 * their control characters escaped; csv/json/html are escaped by their own
 * rules. */
static tm_status printable_cells(tm_table *t, tm_err *err)
{
    for (int i = 0; i < t->n_rows * t->n_cols; i++) {
        tm_cell *c = &t->cells[i];
        if (c->type != TM_CELL_TEXT || !c->s) continue;
        size_t n = strlen(c->s) * 6 + 1; /* the longest escape, \u2028, is 6 bytes for 3 */
        char *e = malloc(n);
        if (!e) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
        tm_cli_printable(c->s, e, n);
        free(c->s);
        c->s = e;
    }
    return TM_OK;
}

#define MAX_WHATIF 16

typedef struct report_opts {
    const char *db, *by_s, *fmt_s, *out_path, *since_s, *until_s;
    const char *whatif_s[MAX_WHATIF];
    int n_whatif_s, overhead, wide;
    tm_queue_cost_by by;
    tm_cost_group group;
    tm_cost_format fmt;
    tm_queue_cost_range range;
} report_opts;

static tm_status parse_by(report_opts *o, tm_err *err)
{
    static const char *const names[] = {"job", "day", "model", "worker"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(o->by_s, names[i])) {
            o->by = (tm_queue_cost_by)i;
            o->group = (tm_cost_group)i;
            return TM_OK;
        }
    if (!strncmp(o->by_s, "metadata.", 9) && o->by_s[9]) {
        o->by = TM_COST_BY_METADATA;
        o->group = TM_COST_GROUP_METADATA;
        o->range.metadata_key = o->by_s + 9;
        return TM_OK;
    }
    return tm_errf(err, TM_ERR_USAGE, "--by: one of job, day, model, worker, metadata.KEY");
}

/* Options into o; TM_ERR_USAGE (err filled) on a bad one; 1 in *help for --help. */
static tm_status parse_opts(int argc, char **argv, report_opts *o, int *help, tm_err *err)
{
    static const struct option opts[] = {
        {"by", required_argument, NULL, 'b'},   {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 'u'}, {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'}, {"include-overhead", no_argument, NULL, 'O'},
        {"what-if", required_argument, NULL, 'w'}, {"wide", no_argument, NULL, 'W'},
        {"db", required_argument, NULL, 'd'},   {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    tm_cli_getopt_reset();
    int c;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'b': o->by_s = optarg; break;
        case 's': o->since_s = optarg; break;
        case 'u': o->until_s = optarg; break;
        case 'f': o->fmt_s = optarg; break;
        case 'o': o->out_path = optarg; break;
        case 'O': o->overhead = 1; break;
        case 'W': o->wide = 1; break;
        case 'd': o->db = optarg; break;
        case 'w':
            if (o->n_whatif_s == MAX_WHATIF) return tm_errf(err, TM_ERR_USAGE, "--what-if: at most %d", MAX_WHATIF);
            o->whatif_s[o->n_whatif_s++] = optarg;
            break;
        case 'h': *help = 1; return TM_OK;
        default: return tm_errf(err, TM_ERR_USAGE, "bad option");
        }
    }
    if (optind != argc) return tm_errf(err, TM_ERR_USAGE, "unexpected argument \"%.40s\"", argv[optind]);
    tm_status s = parse_by(o, err);
    if (!s) s = tm_cost_format_parse(o->fmt_s, &o->fmt, err);
    int64_t a, z;
    if (!s && o->since_s && !(s = parse_when("--since", o->since_s, &a, &z, err))) o->range.since = a;
    if (!s && o->until_s && !(s = parse_when("--until", o->until_s, &a, &z, err))) o->range.until = z;
    if (!s && o->range.until > 0 && o->range.until <= o->range.since)
        s = tm_errf(err, TM_ERR_USAGE, "--until: the period ends before it starts");
    return s;
}

/* The profiles the runs of the period were billed at, as text ("h100-ondemand ($3.00/GPU-h)"). */
static tm_status billed_profiles(const tm_table *used, char (*txt)[96], const char **ptrs, int max, int *n)
{
    *n = 0;
    for (int r = 0; r < used->n_rows && *n < max; r++) {
        const tm_cell *name = tm_table_cell(used, r, 0), *price = tm_table_cell(used, r, 1);
        char m[48] = "?";
        if (price && price->type == TM_CELL_REAL) tm_cost_fmt_money(price->d, m, sizeof m);
        else if (price && price->type == TM_CELL_INT) tm_cost_fmt_money((double)price->i, m, sizeof m);
        if (name && name->type == TM_CELL_TEXT && name->s) snprintf(txt[*n], 96, "%.50s (%s per GPU-h)", name->s, m);
        else snprintf(txt[*n], 96, "%s per GPU-h", m);
        ptrs[*n] = txt[*n];
        (*n)++;
    }
    return TM_OK;
}

/* --what-if values into w: a bare number, or a profile for the GPU kind of the period's runs. */
static tm_status whatif_prices(tm_queue *q, const report_opts *o, const tm_table *used, tm_cost_whatif *w, int *n,
                               tm_err *err)
{
    *n = 0;
    for (int i = 0; i < o->n_whatif_s; i++) {
        char list[512];
        snprintf(list, sizeof list, "%s", o->whatif_s[i]);
        for (char *save = NULL, *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
            if (*n == MAX_WHATIF) return tm_errf(err, TM_ERR_USAGE, "--what-if: at most %d prices", MAX_WHATIF);
            tm_cost_price pr;
            tm_cost_whatif *x = &w[(*n)++];
            memset(x, 0, sizeof *x);
            if (tm_cost_price_parse_number(p, &pr, NULL) == TM_OK) {
                char m[48];
                tm_cost_fmt_money(pr.usd_per_gpu_hour, m, sizeof m);
                snprintf(x->name, sizeof x->name, "%s per GPU-h", m);
                x->usd_per_gpu_hour = pr.usd_per_gpu_hour;
                x->usd_per_kwh = -1;
                continue;
            }
            tm_queue_price qp;
            tm_status s = tm_queue_price_get(q, p, &qp, err);
            if (s) return s == TM_ERR_NOTFOUND ? tm_errf(err, TM_ERR_USAGE, "--what-if: %s", err->msg) : s;
            for (int r = 0; qp.gpu[0] && r < used->n_rows; r++) {
                const tm_cell *g = tm_table_cell(used, r, 3);
                if (g && g->type == TM_CELL_TEXT && g->s && strcmp(g->s, qp.gpu))
                    return tm_errf(err, TM_ERR_USAGE, "--what-if %s: a price for %s, but runs of this period ran "
                                   "on %.31s: compare profiles of the same GPU kind", qp.name, qp.gpu, g->s);
            }
            snprintf(x->name, sizeof x->name, "%s", qp.name);
            x->usd_per_gpu_hour = qp.usd_per_gpu_hour;
            x->usd_per_kwh = qp.usd_per_kwh;
        }
    }
    return TM_OK;
}

static const char *cost_note(const report_opts *o)
{
    if (o->by == TM_COST_BY_WORKER)
        return "Costs are whole runs: they include run overhead (model load, idle, checkpointing), shown in "
               "overhead_seconds / overhead_usd.";
    if (o->overhead)
        return "Costs include run overhead (--include-overhead): each run's overhead (model load, idle, "
               "checkpointing) is spread over the requests it completed in proportion to their GPU-seconds; "
               "overhead_seconds / overhead_usd show that part of cost_usd, usd_per_1m_* and tokens_per_usd.";
    return "Costs are the requests' GPU time only; run overhead (model load, idle, checkpointing) is left out "
           "(--include-overhead spreads it over the rows).";
}

static tm_status write_out(const char *path, const tm_buf *out, tm_err *err)
{
    FILE *f = path ? fopen(path, "wb") : stdout;
    if (!f) return tm_errf(err, TM_ERR_IO, "%s: cannot create", path);
    tm_status s = TM_OK;
    if (out->len && fwrite(out->data, 1, out->len, f) != out->len) s = tm_errf(err, TM_ERR_IO, "write failed");
    if ((path ? fclose(f) : fflush(f)) != 0 && !s) s = tm_errf(err, TM_ERR_IO, "write failed");
    return s;
}

int tm_cmd_report(int argc, char **argv)
{
    report_opts o = {.by_s = "job", .fmt_s = "table"};
    tm_err err = {{0}};
    int help = 0;
    tm_status s = parse_opts(argc, argv, &o, &help, &err);
    if (s) return tm_cli_usage_error("report", "%s", err.msg);
    if (help) { usage(stdout); return 0; }
    tm_queue *q;
    if ((s = tm_cli_db_check(tm_cli_db_path(o.db), &err)) || (s = tm_queue_open_existing(tm_cli_db_path(o.db), &q, &err)))
        return tm_cli_fail("report", s, &err);
    tm_table main_t = {0}, used = {0};
    tm_cost_whatif w[MAX_WHATIF];
    int nw = 0, np = 0;
    s = tm_queue_cost_report_range(q, o.by, &o.range, o.overhead, &main_t, &err);
    if (!s) s = tm_queue_cost_prices_used(q, &o.range, &used, &err);
    if (!s) s = whatif_prices(q, &o, &used, w, &nw, &err);
    tm_queue_close(q);
    if (!s && o.fmt == TM_COST_FMT_TABLE) s = printable_cells(&main_t, &err);
    char ptxt[8][96];
    const char *pp[8];
    if (!s) s = billed_profiles(&used, ptxt, pp, 8, &np);
    tm_buf out;
    tm_buf_init(&out);
    if (!s) {
        tm_cost_report_in in = {.by = o.group, .by_label = o.by_s, .note = cost_note(&o), .main = &main_t,
                                .currency = "USD", .price_profiles = pp, .n_price_profiles = np,
                                .since = o.range.since, .until = o.range.until, .generated_at = tm_now_unix(),
                                .overhead_included = o.overhead || o.by == TM_COST_BY_WORKER, .whatif = w,
                                .n_whatif = nw, .wide = o.wide};
        s = tm_cost_report_render(&in, o.fmt, &out, &err);
    }
    if (!s) s = write_out(o.out_path, &out, &err);
    tm_table_free(&main_t);
    tm_table_free(&used);
    tm_buf_free(&out);
    if (s == TM_ERR_USAGE) return tm_cli_usage_error("report", "%s", err.msg);
    return s ? tm_cli_fail("report", s, &err) : 0;
}
