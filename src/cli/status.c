/* status.c — PLACEHOLDER until its helper lands the real command. */
#include "cli/cli.h"
int tm_cmd_status(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "tokenmill status: not implemented in this build\n");
    return 70;
}
