/* generate.c — PLACEHOLDER until its helper lands the real command. */
#include "cli/cli.h"
int tm_cmd_generate(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "tokenmill generate: not implemented in this build\n");
    return 70;
}
