/* fuzz_validate.c — libFuzzer target for tm_validate_line (validate.h).
 *
 * Feeds arbitrary bytes as one request line and checks the contract: only
 * TM_OK or TM_ERR_INPUT; OK fills custom_id and body_json; INPUT has at least
 * one problem; kept <= total; every problem text is printable, valid UTF-8.
 * Replayed by ctest over tests/fuzz/corpus/validate/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "queue/validate.h"

static void check_text(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap) abort(); /* not terminated */
    size_t i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0 || cp < 0x20 || cp == 0x7f) abort();
        i += (size_t)k;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tm_validated v;
    tm_problems p;
    tm_status st = tm_validate_line((const char *)data, size, &v, &p);
    if (st == TM_OK) {
        if (!v.custom_id || !v.body_json || p.total != 0) abort();
        if (v.endpoint != TM_ENDPOINT_CHAT && v.endpoint != TM_ENDPOINT_COMPLETIONS) abort();
        if (v.n < 1 || v.n > 128) abort();
        if (strlen(v.custom_id) == 0 || strlen(v.custom_id) > TM_MAX_CUSTOM_ID) abort();
    } else if (st == TM_ERR_INPUT) {
        if (p.total < 1 || v.body_json || v.model) abort();
    } else if (st != TM_ERR_NOMEM) {
        abort();
    }
    if (p.kept > p.total || p.kept > TM_PROBLEMS_KEPT || p.kept < 0) abort();
    for (int i = 0; i < p.kept; i++) {
        check_text(p.items[i].field, sizeof p.items[i].field);
        check_text(p.items[i].what, sizeof p.items[i].what);
    }
    tm_validated_clear(&v);
    return 0;
}
