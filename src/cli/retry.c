/* retry.c — `tokenmill retry JOB [--errors CODE]`: failed requests back to
 * the queue.
 *
 * Every failed request of JOB (or those whose recorded error code is CODE,
 * e.g. invalid_request, server_error) goes back to pending with its error
 * cleared, and a finished job back to work; the next `tokenmill run` serves
 * them. Lines refused at submit are not requests and stay failed. A
 * cancelled (or cancelling, or expired) job is refused.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "queue/queue.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill retry [--errors CODE] [--db PATH] JOB\n"
               "\n"
               "Requeue JOB's failed requests (error cleared) for the next `tokenmill run`.\n"
               "  --errors CODE  only those whose error code is CODE (as in `results --errors`)\n"
               "  --db PATH      queue database (default ./tokenmill.db or $TOKENMILL_DB)\n"
               "Exit: 0 ok (the count is printed, 0 included), 64 usage, 65 unknown job or a\n"
               "cancelled / expired job.\n");
}

int tm_cmd_retry(int argc, char **argv)
{
    static const struct option opts[] = {
        {"errors", required_argument, NULL, 'e'}, {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    tm_cli_getopt_reset();
    const char *db_flag = NULL, *code = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'e': code = optarg; break;
        case 'd': db_flag = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return tm_cli_usage_error("retry", "bad option");
        }
    }
    if (argc - optind != 1) return tm_cli_usage_error("retry", "expected exactly one JOB");
    if (code && !*code) return tm_cli_usage_error("retry", "--errors: empty code");
    const char *job_id = argv[optind];
    tm_err err = {{0}};
    tm_queue *q;
    tm_status s = tm_queue_open_existing(tm_cli_db_path(db_flag), &q, &err);
    if (s) return tm_cli_fail("retry", s, &err);
    int64_t n = 0;
    s = tm_queue_retry(q, job_id, code, &n, &err);
    tm_queue_close(q);
    if (s) return tm_cli_fail("retry", s, &err);
    printf("%s: %lld failed request%s requeued%s%s\n", job_id, (long long)n, n == 1 ? "" : "s",
           code ? " with error code " : "", code ? code : "");
    return fflush(stdout) == 0 ? 0 : 74;
}
