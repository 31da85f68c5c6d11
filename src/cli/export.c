/* export.c — `tokenmill export JOB -o bundle.tar.zst`.
 *
 * Writes one file holding everything about a job: output.jsonl.zst,
 * errors.jsonl.zst, job.json, cost.json and manifest.json (sizes + SHA-256 of
 * the others, request counts) in a zstd-compressed tar (format in output.h).
 * Member names are fixed; nothing from user input becomes a path inside it.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/job_view.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill export [-o FILE] [--db PATH] JOB\n"
               "\n"
               "Bundle JOB's results, errors, job object, cost and a manifest into a .tar.zst.\n"
               "  -o, --output FILE  the bundle (default JOB.tar.zst)\n"
               "  --db PATH          queue database (default ./tokenmill.db or $TOKENMILL_DB)\n"
               "Read it back with: tar --zstd -xf FILE   (members: output.jsonl.zst errors.jsonl.zst\n"
               "job.json cost.json manifest.json)\n"
               "Exit: 0 ok, 64 usage, 65 unknown job, 74 I/O.\n");
}

int tm_cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    tm_cli_getopt_reset();
    const char *db_flag = NULL, *outp = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': outp = optarg; break;
        case 'd': db_flag = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return tm_cli_usage_error("export", "bad option");
        }
    }
    if (argc - optind != 1) return tm_cli_usage_error("export", "expected exactly one JOB");
    if (outp && (!*outp || !strcmp(outp, "-")))
        return tm_cli_usage_error("export", "-o: give a file name");
    const char *job_id = argv[optind];
    tm_err err = {{0}};
    tm_queue *q;
    tm_status s = tm_cli_output_not_db(outp, tm_cli_db_path(db_flag), &err);
    if (s) return tm_cli_fail("export", s, &err);
    if ((s = tm_cli_db_check(tm_cli_db_path(db_flag), &err)) ||
        (s = tm_queue_open_existing(tm_cli_db_path(db_flag), &q, &err)))
        return tm_cli_fail("export", s, &err);
    char def[TM_QUEUE_ID_MAX + 16];
    tm_queue_job j;
    if (!(s = tm_queue_job_get(q, job_id, &j, &err))) {
        snprintf(def, sizeof def, "%s.tar.zst", j.id); /* j.id is our own job_<hex> */
        tm_queue_job_clear(&j);
        s = tm_cli_job_export(q, job_id, outp ? outp : def, &err);
    }
    tm_queue_close(q);
    if (s) return tm_cli_fail("export", s, &err);
    printf("%s\n", outp ? outp : def);
    return fflush(stdout) == 0 ? 0 : 74;
}
