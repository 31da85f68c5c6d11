/* bench_tokenize.c — PLACEHOLDER until its helper lands the real benchmark. */
#include <stdio.h>
#include "cli/bench.h"
int tm_bench_tokenize(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "tokenmill bench tokenize: not implemented in this build\n");
    return 70;
}
