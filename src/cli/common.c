/* common.c — helpers shared by the subcommands: db path, errors, options. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>

const char *tm_cli_db_path(const char *db_flag)
{
    if (db_flag && *db_flag) return db_flag;
    const char *env = getenv("TOKENMILL_DB");
    if (env && *env) return env;
    return "tokenmill.db";
}

int tm_cli_fail(const char *cmd, tm_status s, const tm_err *err)
{
    fprintf(stderr, "tokenmill %s: %s\n", cmd, err && err->msg[0] ? err->msg : tm_status_str(s));
    return tm_status_exit_code(s);
}

int tm_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "tokenmill %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'tokenmill %s --help')\n", cmd);
    return 64;
}

void tm_cli_getopt_reset(void)
{
    optind = 0; /* glibc: 0 re-initialises, including the permutation state */
    opterr = 1;
}

tm_status tm_cli_parse_long(const char *opt, const char *val, long long lo, long long hi,
                            long long *out, tm_err *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (errno || end == val || *end)
        return tm_errf(err, TM_ERR_USAGE, "%s: '%s' is not an integer", opt, val);
    if (v < lo || v > hi)
        return tm_errf(err, TM_ERR_USAGE, "%s: %lld is out of range [%lld, %lld]", opt, v, lo, hi);
    *out = v;
    return TM_OK;
}

tm_status tm_cli_parse_size(const char *opt, const char *val, int64_t *out, tm_err *err)
{
    char *end;
    double x = strtod(val, &end), mult = 1;
    if (*end == 'K' || *end == 'k') mult = 1024.0, end++;
    else if (*end == 'M' || *end == 'm') mult = 1048576.0, end++;
    else if (*end == 'G' || *end == 'g') mult = 1073741824.0, end++;
    if (*end == 'i') end++;
    if (*end == 'B' || *end == 'b') end++;
    if (end == val || *end || !(x > 0) || x * mult > 9e18)
        return tm_errf(err, TM_ERR_USAGE, "%s: '%s' is not a size (e.g. 512M, 4G)", opt, val);
    *out = (int64_t)(x * mult);
    return TM_OK;
}
