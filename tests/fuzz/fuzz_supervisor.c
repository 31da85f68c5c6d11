/* fuzz_supervisor.c — libFuzzer target for the two parsers of `run --gpus`
 * (src/worker/supervisor.h): tm_supervisor_parse_cpulist (a sysfs cpulist)
 * and tm_supervisor_parse_gpus (the --gpus value).
 *
 * Checks the contract: cpulist returns 0 or 1 and never sets a bit past the
 * mask; 1 means at least one CPU. parse_gpus returns TM_OK or TM_ERR_USAGE;
 * on TM_OK either "all" or 1..max distinct indices in 0..1023.
 * Replayed by ctest over tests/fuzz/corpus/supervisor/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/supervisor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned long long mask[3] = {0, 0, 0x5a5a5a5a5a5a5a5aULL}; /* the parser owns 2 words */
    int r = tm_supervisor_parse_cpulist((const char *)data, size, mask, 2);
    if (r != 0 && r != 1) abort();
    if (mask[2] != 0x5a5a5a5a5a5a5a5aULL) abort();
    if (r == 1 && !mask[0] && !mask[1]) abort();
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    int idx[8], n = -1, all = -1;
    tm_err err;
    tm_status st = tm_supervisor_parse_gpus(s, idx, 8, &n, &all, &err);
    if (st != TM_OK && st != TM_ERR_USAGE) abort();
    if (st == TM_OK) {
        if (all == 1 ? n != 0 : (all != 0 || n < 1 || n > 8)) abort();
        for (int i = 0; i < n; i++) {
            if (idx[i] < 0 || idx[i] > 1023) abort();
            for (int j = 0; j < i; j++) if (idx[i] == idx[j]) abort();
        }
    }
    free(s);
    return 0;
}
