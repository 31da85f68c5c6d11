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
#include "cost/report.h"
#include "queue/queue_cost.h"
#include "util/timeutil.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill report [--by job|day|model|worker] [--since DATE] [--format table|csv|json|html]\n"
               "                        [-o FILE] [--include-overhead] [--db PATH]\n"
               "\n"
               "Cost report from the cost views (job_costs, daily_costs, model_costs, worker_costs):\n"
               "tokens, GPU-seconds, kWh (blank when not measured), USD, USD per 1M input/output/total\n"
               "tokens, tokens per USD, and the wasted part: wasted_gpu_seconds, wasted_usd and\n"
               "wasted_share (= wasted_usd / cost_usd) spent recomputing work already done once (a\n"
               "request resumed after a preemption is charged for every attempt).\n"
               "  --by KEY            grouping (default job)\n"
               "  --since DATE        YYYY-MM-DD[THH:MM:SS] (UTC) or a duration back from now (7d, 12h);\n"
               "                      job: jobs created since; day: days from; model: requests finished\n"
               "                      since; worker: runs started since\n"
               "  --format FMT        table (default), csv, json, html (one file, inline SVG charts)\n"
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

static tm_status parse_since(const char *s, int64_t *out, tm_err *err)
{
    struct tm tmv;
    memset(&tmv, 0, sizeof tmv);
    const char *end = strptime(s, "%Y-%m-%d", &tmv);
    if (end && (*end == 'T' || *end == ' ')) end = strptime(end + 1, "%H:%M:%S", &tmv);
    if (end && !*end) {
        time_t t = timegm(&tmv);
        if (t == (time_t)-1) return tm_errf(err, TM_ERR_USAGE, "--since: bad date \"%.40s\"", s);
        *out = (int64_t)t;
        return TM_OK;
    }
    int64_t d;
    if (tm_parse_duration(s, &d, NULL) == TM_OK && d >= 0) {
        *out = tm_now_unix() - d;
        return TM_OK;
    }
    return tm_errf(err, TM_ERR_USAGE, "--since: \"%.40s\" is neither YYYY-MM-DD[THH:MM:SS] nor a duration (7d)", s);
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

int tm_cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"by", required_argument, NULL, 'b'},   {"since", required_argument, NULL, 's'},
        {"format", required_argument, NULL, 'f'}, {"output", required_argument, NULL, 'o'},
        {"include-overhead", no_argument, NULL, 'O'}, {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    tm_cli_getopt_reset();
    const char *db_flag = NULL, *by_s = "job", *fmt_s = "table", *out_path = NULL, *since_s = NULL;
    int overhead = 0, c;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'b': by_s = optarg; break;
        case 's': since_s = optarg; break;
        case 'f': fmt_s = optarg; break;
        case 'o': out_path = optarg; break;
        case 'O': overhead = 1; break;
        case 'd': db_flag = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return tm_cli_usage_error("report", "bad option");
        }
    }
    if (optind != argc) return tm_cli_usage_error("report", "unexpected argument \"%.40s\"", argv[optind]);
    tm_queue_cost_by by;
    if (!strcmp(by_s, "job")) by = TM_COST_BY_JOB;
    else if (!strcmp(by_s, "day")) by = TM_COST_BY_DAY;
    else if (!strcmp(by_s, "model")) by = TM_COST_BY_MODEL;
    else if (!strcmp(by_s, "worker")) by = TM_COST_BY_WORKER;
    else return tm_cli_usage_error("report", "--by: one of job, day, model, worker");
    tm_err err = {{0}};
    tm_cost_format fmt;
    tm_status s = tm_cost_format_parse(fmt_s, &fmt, &err);
    if (s) return tm_cli_usage_error("report", "%s", err.msg);
    int64_t since = 0;
    if (since_s && (s = parse_since(since_s, &since, &err))) return tm_cli_usage_error("report", "%s", err.msg);

    tm_queue *q;
    if ((s = tm_cli_db_check(tm_cli_db_path(db_flag), &err)) ||
        (s = tm_queue_open_existing(tm_cli_db_path(db_flag), &q, &err)))
        return tm_cli_fail("report", s, &err);
    tm_table main_t = {0}, jobs = {0}, mp = {0}, tp = {0};
    tm_buf out;
    tm_buf_init(&out);
    s = tm_queue_cost_report(q, by, since, overhead, &main_t, &err);
    if (!s && fmt == TM_COST_FMT_HTML) {
        s = tm_queue_cost_report(q, TM_COST_BY_JOB, since, overhead, &jobs, &err);
        if (!s) s = tm_queue_cost_by_model_price(q, since, &mp, &err);
        if (!s) s = tm_queue_cost_run_throughput(q, since, &tp, &err);
    }
    tm_queue_close(q);
    if (!s && fmt == TM_COST_FMT_TABLE) s = printable_cells(&main_t, &err);
    if (!s) {
        char title[96];
        snprintf(title, sizeof title, "tokenmill cost report by %s", by_s);
        const char *note = NULL;
        if (by == TM_COST_BY_WORKER)
            note = "Costs are whole runs: they include run overhead (model load, idle, checkpointing), shown in "
                   "overhead_seconds / overhead_usd.";
        else if (overhead)
            note = "Costs include run overhead (--include-overhead): each run's overhead (model load, idle, "
                   "checkpointing) is spread over the requests it completed in proportion to their GPU-seconds; "
                   "overhead_seconds / overhead_usd show that part of cost_usd, usd_per_1m_* and tokens_per_usd.";
        else if (fmt == TM_COST_FMT_TABLE || fmt == TM_COST_FMT_HTML)
            note = "Costs are the requests' GPU time only; run overhead (model load, idle, checkpointing) is "
                   "left out (--include-overhead spreads it over the rows).";
        tm_cost_report_in in = {.title = title, .note = note, .main = &main_t, .jobs = &jobs, .model_price = &mp,
                                .throughput = &tp};
        s = tm_cost_report_render(&in, fmt, &out, &err);
    }
    if (!s) {
        FILE *f = out_path ? fopen(out_path, "wb") : stdout;
        if (!f) s = tm_errf(&err, TM_ERR_IO, "%s: cannot create", out_path);
        else {
            if (out.len && fwrite(out.data, 1, out.len, f) != out.len) s = tm_errf(&err, TM_ERR_IO, "write failed");
            if ((out_path ? fclose(f) : fflush(f)) != 0 && !s) s = tm_errf(&err, TM_ERR_IO, "write failed");
        }
    }
    tm_table_free(&main_t);
    tm_table_free(&jobs);
    tm_table_free(&mp);
    tm_table_free(&tp);
    tm_buf_free(&out);
    return s ? tm_cli_fail("report", s, &err) : 0;
}
