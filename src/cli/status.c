/* status.c — `tokenmill status [JOB]`: jobs and their progress.
 *
 * One line per job (id, name, state, done/failed/total, a progress bar,
 * tokens, elapsed), newest first, a page at a time (--limit, --after,
 * --state; a last line says how many more), or with --json the job as an
 * OpenAI Batch object (cli/job_view.h, tm_cli_batch_json) and without JOB
 * an OpenAI list page {object, data, first_id, last_id, has_more}. Runs the
 * queue's expiry first, so jobs past their completion window show as
 * expired. Then the workers that are alive (host, pid, state, heartbeat age,
 * requests in flight), the checkpointed work waiting to resume, and queued
 * work that names a model no live worker serves; --workers lists every
 * worker seen in the last 24 h instead of the jobs.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/job_view.h"
#include "queue/queue.h"
#include "util/timeutil.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill status [--json | --workers] [--limit N] [--after JOB] [--state S] [--db PATH] [JOB]\n"
               "\n"
               "Show the jobs, newest first, a page at a time (or JOB): id, name, state, done/failed/total,\n"
               "progress, tokens, elapsed; then the live workers (host, pid, state, heartbeat age, requests\n"
               "in flight), the checkpointed requests waiting to resume, and queued requests that wait for a\n"
               "model no live worker serves.\n"
               "  --json       JOB: an OpenAI Batch object (+ tokenmill_status, name, priority, tokens);\n"
               "               without JOB: an OpenAI list page {object, data, first_id, last_id, has_more}\n"
               "  --limit N    jobs per page (default 20, 1..10000)\n"
               "  --after JOB  the page after JOB (older jobs)\n"
               "  --state S    only jobs in tokenmill state S (queued, in_progress, completed, failed,\n"
               "               cancelling, cancelled, expired)\n"
               "  --workers    every worker seen in the last 24 h (alive, stopped, lost) instead of the jobs\n"
               "  --db PATH    queue database (default ./tokenmill.db or $TOKENMILL_DB)\n"
               "Exit: 0 ok, 64 usage, 65 unknown job or no database.\n");
}

static void human_tokens(int64_t n, char *out, size_t outsz)
{
    if (n < 10000) snprintf(out, outsz, "%lld", (long long)n);
    else if (n < 10000000) snprintf(out, outsz, "%.1fk", (double)n / 1e3);
    else snprintf(out, outsz, "%.1fM", (double)n / 1e6);
}

static void human_duration(int64_t s, char *out, size_t outsz)
{
    if (s < 0) s = 0;
    if (s < 60) snprintf(out, outsz, "%llds", (long long)s);
    else if (s < 3600) snprintf(out, outsz, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    else if (s < 86400) snprintf(out, outsz, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else snprintf(out, outsz, "%lldd%02lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

typedef struct line_ctx {
    long n;
    char last[TM_QUEUE_ID_MAX];
} line_ctx;

static tm_status print_line(void *ctx, const tm_queue_job *j, tm_err *err)
{
    (void)err;
    if (ctx) {
        line_ctx *c = ctx;
        c->n++;
        snprintf(c->last, sizeof c->last, "%s", j->id);
    }
    int64_t finished = j->done + j->failed + j->cancelled + j->expired;
    double frac = j->total > 0 ? (double)finished / (double)j->total : 0.0;
    char bar[21];
    int fill = (int)(frac * 20.0 + 1e-9);
    for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
    bar[20] = 0;
    int64_t end = j->completed_at ? j->completed_at : j->failed_at ? j->failed_at
                : j->cancelled_at ? j->cancelled_at : j->expired_at ? j->expired_at : tm_now_unix();
    char tok[32], el[32];
    human_tokens(j->prompt_tokens + j->completion_tokens, tok, sizeof tok);
    human_duration(end - j->created_at, el, sizeof el);
    char name[96]; /* a name is printed escaped: it could hold terminal escapes or line breaks */
    tm_cli_printable(j->name && *j->name ? j->name : "-", name, sizeof name);
    printf("%s  %-16s  %-11s  %lld/%lld/%lld  [%s] %3d%%  tokens %s  elapsed %s\n", j->id, name, j->state,
           (long long)j->done, (long long)j->failed, (long long)j->total, bar, (int)(frac * 100.0 + 1e-9), tok, el);
    return TM_OK;
}

static tm_status print_worker(void *ctx, const tm_queue_worker *w, tm_err *err)
{
    (void)err;
    int *n = ctx;
    if (!n[1] && !w->alive) return TM_OK; /* the job view shows live workers only */
    if (n[0]++ == 0) printf("%sworkers:\n", n[1] ? "" : "\n");
    char age[32];
    human_duration(tm_now_unix() - w->heartbeat_at, age, sizeof age);
    const char *state = w->alive ? w->state : (!strcmp(w->state, "stopped") || !strcmp(w->state, "lost")) ? w->state : "dead?";
    printf("  %-9s %-20.20s pid %-8lld %-10.10s heartbeat %6s ago  in flight %-5lld run %s\n", state, w->host,
           (long long)w->pid, w->device[0] ? w->device : "-", age, (long long)w->in_flight,
           w->run_id[0] ? w->run_id : "-");
    return TM_OK;
}

static tm_status print_workers(tm_queue *q, int all, tm_err *err)
{
    int n[2] = {0, all};
    tm_status s = tm_queue_worker_list(q, all ? 86400 : 0, print_worker, n, err);
    if (s) return s;
    if (all && n[0] == 0) printf("workers: none seen in the last 24 h\n");
    int64_t nreq = 0, ntok = 0;
    if ((s = tm_queue_checkpoint_stats(q, &nreq, &ntok, err))) return s;
    if (nreq > 0 || all)
        printf("%scheckpointed: %lld requests (%lld generated tokens) waiting to resume\n", all || n[0] ? "" : "\n",
               (long long)nreq, (long long)ntok);
    return TM_OK;
}

typedef struct page_ctx {
    tm_queue *q;
    json_t *data;
} page_ctx;

static tm_status append_json(void *ctx, const tm_queue_job *j, tm_err *err)
{
    page_ctx *p = ctx;
    tm_queue_job_batch b;
    tm_status s = tm_queue_job_batch_get(p->q, j->id, &b, err);
    if (s) return s;
    json_t *o = tm_cli_batch_json(j, &b);
    tm_queue_job_batch_clear(&b);
    if (!o || json_array_append_new(p->data, o) != 0)
        return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    return TM_OK;
}

static tm_status print_unserved(void *ctx, const char *model, int64_t n, tm_err *err)
{
    (void)err;
    int *k = ctx;
    char m[96];
    printf("%s%lld request%s wait for model %s (no live worker serves it)\n", (*k)++ ? "" : "\n", (long long)n,
           n == 1 ? "" : "s", tm_cli_printable(model, m, sizeof m));
    return TM_OK;
}

/* a page of jobs: an OpenAI list page (as_json) or lines + "N more" */
static tm_status print_page(tm_queue *q, int as_json, const char *after, const char *state, int limit,
                            const char *db, tm_err *err)
{
    int64_t more = 0;
    if (as_json) {
        page_ctx p = {q, json_array()};
        if (!p.data) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
        tm_status s = tm_queue_job_page(q, after, state, limit, append_json, &p, &more, err);
        size_t n = json_array_size(p.data);
        json_t *first = n ? json_object_get(json_array_get(p.data, 0), "id") : NULL;
        json_t *last = n ? json_object_get(json_array_get(p.data, n - 1), "id") : NULL;
        json_t *page = s ? NULL : json_pack("{s:s, s:o, s:O?, s:O?, s:b}", "object", "list", "data", p.data,
                                            "first_id", first, "last_id", last, "has_more", more > 0);
        if (s) json_decref(p.data);
        else if (!page) s = tm_errf(err, TM_ERR_NOMEM, "out of memory");
        else if (json_dumpf(page, stdout, JSON_INDENT(2)) != 0) s = tm_errf(err, TM_ERR_IO, "write failed");
        else printf("\n");
        json_decref(page);
        return s;
    }
    line_ctx c = {0, ""};
    tm_status s = tm_queue_job_page(q, after, state, limit, print_line, &c, &more, err);
    if (s) return s;
    if (c.n == 0) fprintf(stderr, "tokenmill status: no %s%sjobs in %s\n", state ? state : "", state ? " " : "", db);
    if (more > 0) printf("... %lld more (older) job%s: tokenmill status --after %s\n", (long long)more,
                         more == 1 ? "" : "s", c.last);
    if ((s = print_workers(q, 0, err))) return s;
    int k = 0;
    return tm_queue_unserved_models(q, print_unserved, &k, err);
}

typedef struct status_opts {
    const char *db_flag, *after, *state, *job_id;
    int as_json, workers, limit;
} status_opts;

static const char *const job_states[] = {"queued", "in_progress", "finalizing", "completed", "failed",
                                         "cancelling", "cancelled", "expired"};

/* -1: go on; else the exit code */
static int parse_opts(int argc, char **argv, status_opts *o)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"db", required_argument, NULL, 'd'},
        {"workers", no_argument, NULL, 'w'}, {"limit", required_argument, NULL, 'l'},
        {"after", required_argument, NULL, 'a'}, {"state", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    tm_cli_getopt_reset();
    int c;
    long long v;
    tm_err err = {{0}};
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': o->as_json = 1; break;
        case 'w': o->workers = 1; break;
        case 'd': o->db_flag = optarg; break;
        case 'l':
            if (tm_cli_parse_long("--limit", optarg, 1, 10000, &v, &err)) return tm_cli_usage_error("status", "%s", err.msg);
            o->limit = (int)v;
            break;
        case 'a': o->after = optarg; break;
        case 's': {
            size_t i = 0, n = sizeof job_states / sizeof job_states[0];
            while (i < n && strcmp(job_states[i], optarg)) i++;
            if (i == n) return tm_cli_usage_error("status", "--state: unknown state '%.40s'", optarg);
            o->state = optarg;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: return tm_cli_usage_error("status", "bad option");
        }
    }
    if (argc - optind > 1) return tm_cli_usage_error("status", "at most one JOB");
    o->job_id = optind < argc ? argv[optind] : NULL;
    if (o->workers && (o->as_json || o->job_id)) return tm_cli_usage_error("status", "--workers takes no JOB and no --json");
    if (o->job_id && (o->after || o->state)) return tm_cli_usage_error("status", "--after / --state list jobs: no JOB with them");
    return -1;
}

static tm_status print_job(tm_queue *q, const status_opts *o, tm_err *err)
{
    if (o->as_json) {
        json_t *j = NULL;
        tm_status s = tm_cli_job_fetch_json(q, o->job_id, &j, err);
        if (!s && json_dumpf(j, stdout, JSON_INDENT(2)) != 0) s = tm_errf(err, TM_ERR_IO, "write failed");
        if (!s) printf("\n");
        json_decref(j);
        return s;
    }
    tm_queue_job j;
    tm_status s = tm_queue_job_get(q, o->job_id, &j, err);
    if (!s) {
        s = print_line(NULL, &j, err);
        tm_queue_job_clear(&j);
    }
    return s;
}

int tm_cmd_status(int argc, char **argv)
{
    status_opts o = {.limit = 20};
    int rc = parse_opts(argc, argv, &o);
    if (rc >= 0) return rc;
    tm_err err = {{0}};
    tm_queue *q;
    const char *db = tm_cli_db_path(o.db_flag);
    tm_status s = tm_cli_db_check(db, &err);
    if (!s) s = tm_queue_open_existing(db, &q, &err);
    if (s) return tm_cli_fail("status", s, &err);
    /* expiry is opportunistic here: don't wait long behind a big submission */
    tm_queue_set_busy_timeout(q, 250);
    s = tm_queue_expire(q, NULL, &err);
    tm_queue_set_busy_timeout(q, TM_QUEUE_BUSY_TIMEOUT_MS);
    if (s) {
        if (s != TM_ERR_BUSY) {
            tm_queue_close(q);
            return tm_cli_fail("status", s, &err);
        }
        /* a long submission holds the write lock: show the state as it is */
        fprintf(stderr, "tokenmill status: queue busy, expiry not applied (%s)\n", err.msg);
    }
    if (o.workers) s = print_workers(q, 1, &err);
    else if (o.job_id) s = print_job(q, &o, &err);
    else s = print_page(q, o.as_json, o.after, o.state, o.limit, db, &err);
    tm_queue_close(q);
    if (s) return tm_cli_fail("status", s, &err);
    if (fflush(stdout) != 0) return 74;
    return 0;
}
