/* merge.c — `tokenmill merge SHARD.db... [--db ORIGIN]`: bring shard
 * databases written by `tokenmill shard` back into their origin: results,
 * error lines, request states, runs, workers and cost (queue/queue_shard.h).
 * Idempotent; a shard of another database is refused naming both. Prints
 * one line per shard. Every shard is tried; the exit code is the first
 * failure's.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "queue/queue_shard.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill merge [--db PATH] SHARD.db...\n"
               "\n"
               "Merge shard databases back into the database they were sharded from (--db): finished\n"
               "requests with their results, errors, tokens and cost; the shard's workers and runs (the\n"
               "per-worker cost view shows who did what). Requests a shard did not finish go back to\n"
               "pending here (run them, or shard them again). Merging again changes nothing; merging a\n"
               "shard that finished more since takes the rest. A shard of another database is refused.\n"
               "  --db PATH  the origin queue database (default ./tokenmill.db or $TOKENMILL_DB)\n"
               "Exit: 0 ok, 64 usage, 65 no such file or not a shard of this database.\n");
}

int tm_cmd_merge(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'}, {"into", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},     {NULL, 0, NULL, 0},
    };
    tm_cli_getopt_reset();
    const char *db_flag = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db_flag = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return tm_cli_usage_error("merge", "bad option");
        }
    }
    if (argc - optind < 1) return tm_cli_usage_error("merge", "expected one or more SHARD.db files");
    const char *db = tm_cli_db_path(db_flag);
    tm_err err = {{0}};
    tm_queue *q = NULL;
    tm_status s = tm_cli_db_check(db, &err);
    if (!s) s = tm_queue_open_existing(db, &q, &err);
    if (s) return tm_cli_fail("merge", s, &err);
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        tm_queue_merge_out o;
        tm_err e = {{0}};
        s = tm_queue_merge(q, argv[i], &o, &e);
        if (s) {
            int code = tm_cli_fail("merge", s, &e);
            if (!rc) rc = code;
            continue;
        }
        printf("%s: shard %d of %d of %s: %lld finished taken, %lld unfinished back to pending, %lld runs%s\n",
               argv[i], o.shard_index, o.shard_count, o.job_id, (long long)o.taken, (long long)o.returned,
               (long long)o.runs, o.taken || o.returned ? "" : " (nothing new)");
    }
    tm_queue_close(q);
    if (fflush(stdout) != 0 && !rc) rc = 74;
    return rc;
}
