/* status.h — status codes and error messages shared by every module.
 *
 * Every fallible function returns a tm_status and, on failure, fills a
 * caller-provided tm_err with the place and cause ("file:line: field: what").
 * Nothing below main() exits: each command (src/cli/) turns the status it
 * ends with into its exit code with tm_status_exit_code (through
 * tm_cli_fail), the worker records the same code in runs.exit_code, and
 * main() returns the command's code. The codes are sysexits.h values:
 * 0 ok, 64 usage, 65 data, 69 unavailable, 70 internal, 74 I/O,
 * 75 stopped with work left (the table below).
 */
#ifndef TM_STATUS_H
#define TM_STATUS_H

#include <stddef.h>

typedef enum tm_status {
    TM_OK = 0,
    TM_ERR_USAGE,       /* bad command line                         -> 64 */
    TM_ERR_INPUT,       /* bad input data (job file, model, config) -> 65 */
    TM_ERR_NOTFOUND,    /* a named thing does not exist             -> 65 */
    TM_ERR_UNAVAILABLE, /* a required resource is absent (GPU)      -> 69 */
    TM_ERR_INTERNAL,    /* a bug or an unexpected library failure   -> 70 */
    TM_ERR_NOMEM,       /* allocation failed                        -> 70 */
    TM_ERR_IO,          /* read/write/open failed                   -> 74 */
    TM_ERR_BUSY,        /* database locked past busy_timeout        -> 75 */
    TM_ERR_STOPPED,     /* stopped with work left (preempted/limit) -> 75 */
    TM_STATUS_COUNT
} tm_status;

/* An error message buffer. Functions write into it only on failure. */
typedef struct tm_err {
    char msg[1024];
} tm_err;

const char *tm_status_str(tm_status s);

/* Process exit code for a status (sysexits.h values, the table above). */
int tm_status_exit_code(tm_status s);

/* Format a message into err (err may be NULL) and return s, so that
 * `return tm_errf(err, TM_ERR_INPUT, "%s: bad", path);` is one line. */
tm_status tm_errf(tm_err *err, tm_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message: "prefix: old message". Returns s. */
tm_status tm_err_prefix(tm_err *err, tm_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
