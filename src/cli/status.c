/* status.c — `tokenmill status [JOB]`: jobs and their progress.
 *
 * One line per job (id, name, state, done/failed/total, a progress bar,
 * tokens, elapsed), or with --json the job object(s): OpenAI batch object
 * fields plus tokenmill's (cli/job_view.h, tm_cli_job_json). Runs the queue's
 * expiry first, so jobs past their completion window show as expired.
 * Then the workers that are alive (host, pid, state, heartbeat age, requests
 * in flight) and the checkpointed work waiting to resume; --workers lists
 * every worker seen in the last 24 h instead of the jobs.
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
    fprintf(f, "usage: tokenmill status [--json | --workers] [--db PATH] [JOB]\n"
               "\n"
               "Show every job (or JOB): id, name, state, done/failed/total, progress, tokens, elapsed;\n"
               "then the live workers (host, pid, state, heartbeat age, requests in flight) and the\n"
               "checkpointed requests waiting to resume.\n"
               "  --json     the job object(s) as JSON (OpenAI batch object fields + name, model, priority, tokens)\n"
               "  --workers  every worker seen in the last 24 h (alive, stopped, lost) instead of the jobs\n"
               "  --db PATH  queue database (default ./tokenmill.db or $TOKENMILL_DB)\n"
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

static tm_status print_line(void *ctx, const tm_queue_job *j, tm_err *err)
{
    (void)err;
    if (ctx) ++*(long *)ctx;
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

static tm_status append_json(void *ctx, const tm_queue_job *j, tm_err *err)
{
    json_t *o = tm_cli_job_json(j);
    if (!o || json_array_append_new((json_t *)ctx, o) != 0)
        return tm_errf(err, TM_ERR_NOMEM, "out of memory");
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

int tm_cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"db", required_argument, NULL, 'd'},
        {"workers", no_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    tm_cli_getopt_reset();
    const char *db_flag = NULL;
    int as_json = 0, workers = 0, c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': as_json = 1; break;
        case 'w': workers = 1; break;
        case 'd': db_flag = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return tm_cli_usage_error("status", "bad option");
        }
    }
    if (argc - optind > 1) return tm_cli_usage_error("status", "at most one JOB");
    if (workers && (as_json || optind < argc)) return tm_cli_usage_error("status", "--workers takes no JOB and no --json");
    const char *job_id = optind < argc ? argv[optind] : NULL;
    tm_err err = {{0}};
    tm_queue *q;
    tm_status s = tm_cli_db_check(tm_cli_db_path(db_flag), &err);
    if (!s) s = tm_queue_open_existing(tm_cli_db_path(db_flag), &q, &err);
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
    if (workers) {
        s = print_workers(q, 1, &err);
    } else if (job_id) {
        tm_queue_job j;
        s = tm_queue_job_get(q, job_id, &j, &err);
        if (!s) {
            if (as_json) {
                json_t *o = tm_cli_job_json(&j);
                if (!o || json_dumpf(o, stdout, JSON_INDENT(2)) != 0) s = tm_errf(&err, TM_ERR_IO, "write failed");
                else printf("\n");
                json_decref(o);
            } else {
                s = print_line(NULL, &j, &err);
            }
            tm_queue_job_clear(&j);
        }
    } else if (as_json) {
        json_t *arr = json_array();
        if (!arr) s = tm_errf(&err, TM_ERR_NOMEM, "out of memory");
        if (!s) s = tm_queue_job_list(q, append_json, arr, &err);
        if (!s && json_dumpf(arr, stdout, JSON_INDENT(2)) != 0) s = tm_errf(&err, TM_ERR_IO, "write failed");
        if (!s) printf("\n");
        json_decref(arr);
    } else {
        long n = 0;
        s = tm_queue_job_list(q, print_line, &n, &err);
        if (!s && n == 0) fprintf(stderr, "tokenmill status: no jobs in %s\n", tm_cli_db_path(db_flag));
        if (!s) s = print_workers(q, 0, &err);
    }
    tm_queue_close(q);
    if (s) return tm_cli_fail("status", s, &err);
    if (fflush(stdout) != 0) return 74;
    return 0;
}
