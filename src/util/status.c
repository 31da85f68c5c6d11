/* status.c — status names, exit-code mapping and error formatting. */
#include "util/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *tm_status_str(tm_status s)
{
    switch (s) {
    case TM_OK: return "ok";
    case TM_ERR_USAGE: return "usage error";
    case TM_ERR_INPUT: return "bad input";
    case TM_ERR_NOTFOUND: return "not found";
    case TM_ERR_UNAVAILABLE: return "unavailable";
    case TM_ERR_INTERNAL: return "internal error";
    case TM_ERR_NOMEM: return "out of memory";
    case TM_ERR_IO: return "I/O error";
    case TM_ERR_BUSY: return "busy";
    case TM_ERR_STOPPED: return "stopped with work left";
    default: return "unknown status";
    }
}

int tm_status_exit_code(tm_status s)
{
    switch (s) {
    case TM_OK: return 0;
    case TM_ERR_USAGE: return 64;
    case TM_ERR_INPUT: case TM_ERR_NOTFOUND: return 65;
    case TM_ERR_UNAVAILABLE: return 69;
    case TM_ERR_IO: return 74;
    case TM_ERR_BUSY: case TM_ERR_STOPPED: return 75;
    default: return 70;
    }
}

tm_status tm_errf(tm_err *err, tm_status s, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}

tm_status tm_err_prefix(tm_err *err, tm_status s, const char *fmt, ...)
{
    if (err) {
        char old[sizeof err->msg];
        char pre[256];
        memcpy(old, err->msg, sizeof old);
        old[sizeof old - 1] = 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pre, sizeof pre, fmt, ap);
        va_end(ap);
        snprintf(err->msg, sizeof err->msg, "%s: %s", pre, old);
    }
    return s;
}
