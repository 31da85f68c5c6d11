/* bench_submit.c — `tokenmill bench submit --lines N`: submit throughput and
 * peak memory.
 *
 * Generates an N-line chat-completions job file in a temporary directory,
 * then runs `tokenmill submit` on it into a fresh DB in a child process
 * (fork + exec of this binary, so the child's ru_maxrss from wait4 is the
 * submit alone), and prints lines/s, MB/s, peak RSS and the command to
 * reproduce. The temporary directory is removed unless --keep.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/bench.h"
#include "cli/cli.h"
#include "util/timeutil.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill bench submit [--lines N] [--dir DIR] [--keep]\n"
               "\n"
               "Time `tokenmill submit` of a generated N-line job file (default 100000) into a fresh DB,\n"
               "in a child process, and report lines/s and the child's peak RSS.\n"
               "  --lines N  lines to generate (1 .. 100000000)\n"
               "  --dir DIR  where to make the temporary directory (default $TMPDIR or /tmp)\n"
               "  --keep     keep the generated file and DB (prints where)\n");
}

static int gen_file(const char *path, long long n, long long *bytes)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    static const char *topics[] = {"the history of tea", "prime numbers", "how batteries work",
                                   "the water cycle", "sorting algorithms", "volcanoes"};
    for (long long i = 1; i <= n; i++) {
        fprintf(f,
                "{\"custom_id\":\"req-%lld\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\","
                "\"body\":{\"model\":\"bench-model\",\"messages\":[{\"role\":\"system\",\"content\":"
                "\"You are a helpful assistant.\"},{\"role\":\"user\",\"content\":\"Question %lld: explain %s "
                "to a curious ten-year-old in three short sentences.\"}],\"max_tokens\":%lld,"
                "\"temperature\":0.7,\"seed\":%lld}}\n",
                i, i, topics[i % 6], 32 + i % 96, i);
    }
    long pos = ftell(f);
    if (fclose(f) != 0 || pos < 0) return -1;
    *bytes = pos;
    return 0;
}

static void rm_rf_dir(const char *dir, const char *const *names, int n)
{
    char p[4200];
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* `tokenmill submit --db db --name bench job` in a child (this executable,
 * stdout to /dev/null), waited for: its wait status and resource usage.
 * Returns 0, or -1 after printing why fork or wait failed. */
static int run_submit(char *db, char *job, int *status, struct rusage *ru)
{
    memset(ru, 0, sizeof *ru);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "tokenmill bench submit: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) dup2(fd, STDOUT_FILENO);
        char *args[] = {"tokenmill", "submit", "--db", db, "--name", "bench", job, NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    while (wait4(pid, status, 0, ru) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "tokenmill bench submit: wait: %s\n", strerror(errno));
            return -1;
        }
    }
    return 0;
}

static void print_report(long long lines, long long bytes, double sub_s, const struct rusage *ru, long long dbsize)
{
    printf("bench submit: %lld lines, %.1f MB job file\n", lines, (double)bytes / 1e6);
    printf("  submit wall time   %.2f s (user %.2f s, sys %.2f s)\n", sub_s,
           (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec * 1e-6,
           (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec * 1e-6);
    printf("  throughput         %.0f lines/s, %.1f MB/s\n", (double)lines / sub_s, (double)bytes / 1e6 / sub_s);
    printf("  peak RSS (submit)  %.1f MiB\n", (double)ru->ru_maxrss / 1024.0);
    printf("  DB size            %.1f MB\n", (double)dbsize / 1e6);
    printf("  reproduce with     tokenmill bench submit --lines %lld\n", lines);
}

int tm_bench_submit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"lines", required_argument, NULL, 'n'}, {"dir", required_argument, NULL, 'D'},
        {"keep", no_argument, NULL, 'k'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    tm_cli_getopt_reset();
    long long lines = 100000;
    int keep = 0, c;
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    tm_err err = {{0}};
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (tm_cli_parse_long("--lines", optarg, 1, 100000000, &lines, &err))
                return tm_cli_usage_error("bench submit", "%s", err.msg);
            break;
        case 'D': base = optarg; break;
        case 'k': keep = 1; break;
        case 'h': usage(stdout); return 0;
        default: return tm_cli_usage_error("bench submit", "bad option");
        }
    }
    if (optind < argc) return tm_cli_usage_error("bench submit", "unexpected argument '%s'", argv[optind]);

    char dir[4096], job[4200], db[4200];
    if (snprintf(dir, sizeof dir, "%s/tm_bench_submit_XXXXXX", base) >= (int)sizeof dir)
        return tm_cli_usage_error("bench submit", "--dir: path too long");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "tokenmill bench submit: %s: cannot create: %s\n", dir, strerror(errno));
        return 74;
    }
    snprintf(job, sizeof job, "%s/job.jsonl", dir);
    snprintf(db, sizeof db, "%s/bench.db", dir);
    static const char *const names[] = {"job.jsonl", "bench.db", "bench.db-wal", "bench.db-shm"};

    long long bytes = 0;
    uint64_t t0 = tm_now_mono_ns();
    if (gen_file(job, lines, &bytes) != 0) {
        fprintf(stderr, "tokenmill bench submit: %s: cannot write: %s\n", job, strerror(errno));
        rm_rf_dir(dir, names, 4);
        return 74;
    }
    double gen_s = (double)(tm_now_mono_ns() - t0) * 1e-9;
    fprintf(stderr, "generated %lld lines (%.1f MB) in %.2f s: %s\n", lines, (double)bytes / 1e6, gen_s, job);

    fflush(NULL);
    uint64_t t1 = tm_now_mono_ns();
    int status = 0;
    struct rusage ru;
    if (run_submit(db, job, &status, &ru) != 0) {
        rm_rf_dir(dir, names, 4);
        return 70;
    }
    double sub_s = (double)(tm_now_mono_ns() - t1) * 1e-9;
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 70;
    struct stat sb;
    long long dbsize = stat(db, &sb) == 0 ? (long long)sb.st_size : -1;
    if (rc != 0) {
        fprintf(stderr, "tokenmill bench submit: submit exited %d\n", rc);
    } else {
        print_report(lines, bytes, sub_s, &ru, dbsize);
    }
    if (keep) fprintf(stderr, "kept: %s\n", dir);
    else rm_rf_dir(dir, names, 4);
    return rc == 0 ? 0 : rc;
}
