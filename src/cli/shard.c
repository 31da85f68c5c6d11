/* shard.c — `tokenmill shard JOB --into N --dir DIR`: split a job's pending
 * requests into N shard databases (DIR/shard-000.db ...) that run anywhere
 * (`tokenmill run --db DIR/shard-003.db`, a Slurm array task) and merge back
 * with `tokenmill merge`. queue/queue_shard.h has what moves and how the
 * split is balanced. Prints one line per shard (or a JSON array with --json).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "queue/queue_shard.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill shard --into N --dir DIR [--json] [--db PATH] JOB\n"
               "\n"
               "Move JOB's pending requests into N shard databases DIR/shard-000.db ... (1 <= N <= %d),\n"
               "balanced by estimated work (prompt bytes / 4 + max_tokens x n), each a complete queue\n"
               "for `tokenmill run --db`. In this database they stay counted as running (on their shard)\n"
               "until `tokenmill merge DIR/shard-*.db` brings them back. Done, failed and running requests\n"
               "stay here (`tokenmill retry JOB` first to send failed ones out too).\n"
               "  --into N   number of shards (every file is written, empty ones included)\n"
               "  --dir DIR  where to write them (created if missing; existing shard files are refused)\n"
               "  --json     print the shards as a JSON array\n"
               "  --db PATH  queue database (default ./tokenmill.db or $TOKENMILL_DB)\n"
               "Exit: 0 ok, 64 usage (or a shard file exists), 65 unknown job or one not queued/in_progress.\n",
            TM_QUEUE_SHARD_MAX);
}

static tm_status print_shards(const char *job_id, const tm_queue_shard_out *o, int n, int as_json, tm_err *err)
{
    if (!as_json) {
        for (int i = 0; i < n; i++)
            printf("%s  %s  %lld requests  work %lld\n", o[i].path, o[i].id, (long long)o[i].requests,
                   (long long)o[i].work);
        return TM_OK;
    }
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
        json_t *x = json_pack("{s:s, s:i, s:s, s:s, s:I, s:I}", "job_id", job_id, "index", i, "path", o[i].path, "id",
                              o[i].id, "requests", (json_int_t)o[i].requests, "work", (json_int_t)o[i].work);
        if (!x || json_array_append_new(a, x)) { json_decref(a); a = NULL; }
    }
    tm_status s = TM_OK;
    if (!a || json_dumpf(a, stdout, JSON_INDENT(2)) != 0) s = tm_errf(err, TM_ERR_IO, "write failed");
    else printf("\n");
    json_decref(a);
    return s;
}

int tm_cmd_shard(int argc, char **argv)
{
    static const struct option opts[] = {
        {"into", required_argument, NULL, 'n'}, {"dir", required_argument, NULL, 'D'},
        {"json", no_argument, NULL, 'j'},       {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    tm_cli_getopt_reset();
    const char *db_flag = NULL, *dir = NULL;
    long long n = 0;
    int as_json = 0, c;
    tm_err err = {{0}};
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (tm_cli_parse_long("--into", optarg, 1, TM_QUEUE_SHARD_MAX, &n, &err))
                return tm_cli_fail("shard", TM_ERR_USAGE, &err);
            break;
        case 'D': dir = optarg; break;
        case 'j': as_json = 1; break;
        case 'd': db_flag = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return tm_cli_usage_error("shard", "bad option");
        }
    }
    if (argc - optind != 1) return tm_cli_usage_error("shard", "expected exactly one JOB");
    if (!n) return tm_cli_usage_error("shard", "--into N is required");
    if (!dir || !*dir) return tm_cli_usage_error("shard", "--dir DIR is required");
    const char *job_id = argv[optind];
    tm_queue_shard_out *out = calloc((size_t)n, sizeof *out);
    if (!out) return tm_cli_fail("shard", tm_errf(&err, TM_ERR_NOMEM, "out of memory"), &err);
    tm_queue *q = NULL;
    tm_status s = tm_cli_db_check(tm_cli_db_path(db_flag), &err);
    if (!s) s = tm_queue_open_existing(tm_cli_db_path(db_flag), &q, &err);
    if (!s) s = tm_queue_shard(q, job_id, (int)n, dir, out, &err);
    if (!s) s = print_shards(job_id, out, (int)n, as_json, &err);
    tm_queue_close(q);
    free(out);
    if (s) return tm_cli_fail("shard", s, &err);
    return fflush(stdout) == 0 ? 0 : 74;
}
