/* main.c — entry point of the tokenmill binary.
 *
 * Dispatches `tokenmill <command> ...` to the subcommand in src/cli/ and
 * answers --version / --help. The only place in the program that exits.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "cli/cli.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} tm_command;

static const tm_command commands[] = {
    {"submit",   tm_cmd_submit,   "validate job files (JSONL, .zst, .gz, tar, zip) and queue them as a job"},
    {"status",   tm_cmd_status,   "show jobs and their progress"},
    {"cancel",   tm_cmd_cancel,   "cancel a job's pending requests"},
    {"retry",    tm_cmd_retry,    "requeue a job's failed requests (all, or --errors CODE)"},
    {"run",      tm_cmd_run,      "process queued requests with a model (continuous batching)"},
    {"batch",    tm_cmd_batch,    "one shot, as vLLM run_batch: submit -i IN, run --model DIR, write -o OUT"},
    {"results",  tm_cmd_results,  "write a job's results (or errors) as OpenAI batch output JSONL"},
    {"export",   tm_cmd_export,   "bundle a job's results, errors, cost and manifest into a tar.zst"},
    {"shard",    tm_cmd_shard,    "split a job's pending requests into N shard DBs (other nodes, Slurm arrays)"},
    {"merge",    tm_cmd_merge,    "bring shard DBs' results, states, runs and cost back into the origin job"},
    {"report",   tm_cmd_report,   "cost by job, day, model, worker or metadata.KEY (table, csv, json, html with charts)"},
    {"prices",   tm_cmd_prices,   "set or list price profiles (USD per GPU-hour, per kWh)"},
    {"demo",     tm_cmd_demo,     "make a small model + sample job, run it, show the results"},
    {"tokenize", tm_cmd_tokenize, "tokenize text or chat messages (JSONL on stdin)"},
    {"generate", tm_cmd_generate, "run one prompt through a model (inspection and checks)"},
    {"bench",    tm_cmd_bench,    "benchmarks: submit, tokenize, forward, engine, grammar, host (--synthetic on CUDA)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill <command> [options] [args]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nglobal: --version, --help; every command takes --help and --db PATH\n"
               "(default ./tokenmill.db, or $TOKENMILL_DB).\n"
               "exit codes: 0 done, 64 usage, 65 bad input, 69 unavailable, 70 internal,\n"
               "            74 I/O, 75 stopped with work left (safe to rerun)\n");
}

int main(int argc, char **argv)
{
    /* A closed stdout/stderr (a pipe whose reader went away) is a write error
     * to handle, never a death: a worker must still drain and checkpoint. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 64;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("tokenmill %s\nCUDA backend: %s\n", TM_VERSION, tm_cuda_build_info());
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "tokenmill: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 64;
}
