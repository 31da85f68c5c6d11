/* cancel.c — `tokenmill cancel JOB`: stop a job.
 *
 * Pending requests become cancelled at once; the job goes to cancelling, and
 * to cancelled as soon as nothing of it is running (immediately when no
 * worker holds any of its requests). Results already written stay.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/job_view.h"
#include "queue/queue.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill cancel [--json] [--db PATH] JOB\n"
               "\n"
               "Cancel JOB: its pending requests are cancelled now; running ones finish (their results stay),\n"
               "then the job is cancelled. A finished job is left as it is.\n"
               "  --json     print the job object afterwards\n"
               "  --db PATH  queue database (default ./tokenmill.db or $TOKENMILL_DB)\n"
               "Exit: 0 ok, 64 usage, 65 unknown job.\n");
}

int tm_cmd_cancel(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    tm_cli_getopt_reset();
    const char *db_flag = NULL;
    int as_json = 0, c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': as_json = 1; break;
        case 'd': db_flag = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return tm_cli_usage_error("cancel", "bad option");
        }
    }
    if (argc - optind != 1) return tm_cli_usage_error("cancel", "expected exactly one JOB");
    const char *job_id = argv[optind];
    tm_err err = {{0}};
    tm_queue *q;
    tm_status s = tm_cli_db_check(tm_cli_db_path(db_flag), &err);
    if (!s) s = tm_queue_open_existing(tm_cli_db_path(db_flag), &q, &err);
    if (s) return tm_cli_fail("cancel", s, &err);
    char before[16] = "", after[16] = "";
    tm_queue_job j;
    if (!(s = tm_queue_job_get(q, job_id, &j, &err))) {
        snprintf(before, sizeof before, "%s", j.state);
        tm_queue_job_clear(&j);
        s = tm_queue_cancel(q, job_id, after, &err);
    }
    if (!s) s = tm_queue_job_get(q, job_id, &j, &err);
    if (!s) {
        if (as_json) {
            json_t *o = NULL;
            s = tm_cli_job_fetch_json(q, job_id, &o, &err); /* the OpenAI Batch object, as status --json */
            if (!s && json_dumpf(o, stdout, JSON_INDENT(2)) != 0) s = tm_errf(&err, TM_ERR_IO, "write failed");
            else if (!s) printf("\n");
            json_decref(o);
        } else if (!strcmp(before, after)) {
            printf("%s: already %s\n", job_id, after);
        } else if (!strcmp(after, "cancelling")) {
            printf("%s: cancelling (%lld requests cancelled, %lld still running)\n", job_id,
                   (long long)j.cancelled, (long long)j.running);
        } else {
            printf("%s: %s (%lld requests cancelled, %lld done)\n", job_id, after, (long long)j.cancelled,
                   (long long)j.done);
        }
        tm_queue_job_clear(&j);
    }
    tm_queue_close(q);
    if (s) return tm_cli_fail("cancel", s, &err);
    return fflush(stdout) == 0 ? 0 : 74;
}
