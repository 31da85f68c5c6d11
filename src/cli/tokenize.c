/* tokenize.c — PLACEHOLDER until its helper lands the real command. */
#include "cli/cli.h"
int tm_cmd_tokenize(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "tokenmill tokenize: not implemented in this build\n");
    return 70;
}
