/* fuzz_notice.c — libFuzzer target for the preemption-notice body parser
 * (tm_notice_parse_body, tm_notice_parse_iso8601 in src/notice/notice.h).
 *
 * Feeds arbitrary bytes as a metadata answer and checks the contract: the
 * result is 0 or 1; on 0 the deadline is untouched; on 1 it is finite and
 * within [0, end of year 9999]; the ISO-8601 parser only accepts dates 1970-9999.
 * Replayed by ctest over tests/fuzz/corpus/notice/.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "notice/notice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const double now = 1700000000.0;
    double d = -42.0;
    int r = tm_notice_parse_body((const char *)data, size, now, &d);
    if (r == 0) {
        if (d != -42.0) abort();
    } else if (r == 1) {
        if (!isfinite(d) || d < 0 || d >= 253402300801.0) abort(); /* year 9999 at most */
    } else {
        abort();
    }
    double t = -42.0;
    int ok = tm_notice_parse_iso8601((const char *)data, size, &t);
    if (ok == 1) {
        if (!isfinite(t) || t < 0 || t >= 253402300801.0) abort();
    } else if (ok != 0 || t != -42.0) {
        abort();
    }
    return 0;
}
