/* timeutil.h — clocks and durations.
 *
 * tm_now_mono_ns for measuring (monotonic), tm_now_unix for timestamps stored
 * in the queue (seconds since the epoch, as the OpenAI batch object uses), and
 * a parser for human durations ("90", "90s", "15m", "24h", "2d", "1h30m").
 */
#ifndef TM_TIMEUTIL_H
#define TM_TIMEUTIL_H

#include <stdint.h>
#include "util/status.h"

uint64_t tm_now_mono_ns(void);
int64_t tm_now_unix(void);
double tm_now_unix_f(void);

/* Parse a duration into seconds; a bare number is seconds. */
tm_status tm_parse_duration(const char *s, int64_t *seconds, tm_err *err);

#endif
