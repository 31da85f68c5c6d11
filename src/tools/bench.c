/* bench.c — dispatch for `tokenmill bench <what>`. */
#include <string.h>

#include "tools/bench.h"
#include "cli/cli.h"

int tm_cmd_bench(int argc, char **argv)
{
    static const struct { const char *name; int (*fn)(int, char **); const char *what; } b[] = {
        {"submit", tm_bench_submit, "time and peak memory of submitting a large generated job file"},
        {"tokenize", tm_bench_tokenize, "tokenizer encode throughput (tokens/s)"},
        {"forward", tm_bench_forward, "CPU forward pass throughput (tokens/s)"},
        {"engine", tm_bench_engine, "batching engine vs one request at a time (requests/s, tokens/s)"},
        {"grammar", tm_bench_grammar, "structured output: time to first mask, time between masks (us)"},
        {"host", tm_bench_host, "the run path's host throughput with an instant backend (completions/s)"},
    };
    if (argc >= 2) {
        for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
            if (!strcmp(argv[1], b[i].name)) return b[i].fn(argc - 1, argv + 1);
    }
    FILE *f = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? stdout : stderr;
    fprintf(f, "usage: tokenmill bench <what> [options]   (each takes --help)\n\n");
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) fprintf(f, "  %-9s %s\n", b[i].name, b[i].what);
    return f == stdout ? 0 : 64;
}
