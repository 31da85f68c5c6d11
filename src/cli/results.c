/* results.c — `tokenmill results JOB [-o FILE] [--errors]`.
 *
 * Writes the job's OpenAI batch output lines (or, with --errors, its failed /
 * cancelled / expired requests as error lines; formats in output.h) as JSONL
 * to stdout or FILE, zstd-compressed when FILE ends in .zst. A FILE is written
 * as FILE.partial and renamed when complete.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/job_view.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill results [-o FILE] [--errors] [--db PATH] JOB\n"
               "\n"
               "Write JOB's results as OpenAI batch output JSONL (one line per done request).\n"
               "  -o, --output FILE  write to FILE instead of stdout; zstd-compressed if FILE ends in .zst\n"
               "  --errors           write the failed/cancelled/expired requests instead (OpenAI error file)\n"
               "  --db PATH          queue database (default ./tokenmill.db or $TOKENMILL_DB)\n"
               "Lines are in submission order; match them on custom_id.\n"
               "Exit: 0 ok, 64 usage, 65 unknown job, 74 I/O.\n");
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

int tm_cmd_results(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"errors", no_argument, NULL, 'e'},
        {"db", required_argument, NULL, 'd'},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    tm_cli_getopt_reset();
    const char *db_flag = NULL, *outp = "-";
    int errors = 0, c;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': outp = optarg; break;
        case 'e': errors = 1; break;
        case 'd': db_flag = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return tm_cli_usage_error("results", "bad option");
        }
    }
    if (argc - optind != 1) return tm_cli_usage_error("results", "expected exactly one JOB");
    if (!*outp) return tm_cli_usage_error("results", "-o: empty file name");
    const char *job_id = argv[optind];
    tm_err err = {{0}};
    tm_queue *q;
    tm_status s = tm_cli_output_not_db(outp, tm_cli_db_path(db_flag), &err);
    if (s) return tm_cli_fail("results", s, &err);
    if ((s = tm_cli_db_check(tm_cli_db_path(db_flag), &err)) ||
        (s = tm_queue_open_existing(tm_cli_db_path(db_flag), &q, &err)))
        return tm_cli_fail("results", s, &err);
    tm_queue_job j;
    if ((s = tm_queue_job_get(q, job_id, &j, &err))) { /* unknown job: no output file */
        tm_queue_close(q);
        return tm_cli_fail("results", s, &err);
    }
    tm_queue_job_clear(&j);
    tm_out *o;
    int64_t lines = 0;
    s = tm_out_open(outp, strcmp(outp, "-") && ends_with(outp, ".zst"), &o, &err);
    if (!s) {
        s = tm_cli_job_lines(q, job_id, errors, o, &lines, &err);
        if (s) tm_out_abort(o);
        else s = tm_out_finish(o, NULL, NULL, &err);
    }
    tm_queue_close(q);
    if (s) return tm_cli_fail("results", s, &err);
    if (strcmp(outp, "-"))
        fprintf(stderr, "tokenmill results: wrote %lld %s line%s to %s\n", (long long)lines,
                errors ? "error" : "result", lines == 1 ? "" : "s", outp);
    return 0;
}
