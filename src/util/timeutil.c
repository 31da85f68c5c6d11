/* timeutil.c — clocks and duration parsing. */
#define _POSIX_C_SOURCE 200809L
#include "util/timeutil.h"

#include <ctype.h>
#include <stdlib.h>
#include <time.h>

uint64_t tm_now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t tm_now_unix(void) { return (int64_t)time(NULL); }

double tm_now_unix_f(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

tm_status tm_parse_duration(const char *s, int64_t *seconds, tm_err *err)
{
    const char *p = s;
    int64_t total = 0;
    int any = 0;
    if (!s || !*s) return tm_errf(err, TM_ERR_USAGE, "empty duration");
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return tm_errf(err, TM_ERR_USAGE, "bad duration '%s' (use e.g. 90s, 15m, 24h, 2d)", s);
        char *end;
        long long v = strtoll(p, &end, 10);
        if (v < 0 || v > 100LL * 365 * 86400)
            return tm_errf(err, TM_ERR_USAGE, "duration '%s' out of range", s);
        int64_t mult = 1;
        switch (*end) {
        case 0: mult = 1; break;
        case 's': mult = 1; end++; break;
        case 'm': mult = 60; end++; break;
        case 'h': mult = 3600; end++; break;
        case 'd': mult = 86400; end++; break;
        default:
            return tm_errf(err, TM_ERR_USAGE, "bad duration unit in '%s' (s, m, h, d)", s);
        }
        total += (int64_t)v * mult;
        if (total > 100LL * 365 * 86400)
            return tm_errf(err, TM_ERR_USAGE, "duration '%s' out of range", s);
        any = 1;
        p = end;
    }
    if (!any) return tm_errf(err, TM_ERR_USAGE, "bad duration '%s'", s);
    *seconds = total;
    return TM_OK;
}
