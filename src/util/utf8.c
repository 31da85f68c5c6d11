/* utf8.c — UTF-8 sequence scanning (utf8.h). */
#include "util/utf8.h"

size_t tm_utf8_seq(const uint8_t *s, size_t n, size_t i, size_t *bad)
{
    uint8_t c = s[i];
    if (c < 0x80) return 1;
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) { need = 2; lo = 0xA0; }
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 2;
    else if (c == 0xED) { need = 2; hi = 0x9F; }
    else if (c == 0xF0) { need = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) { need = 3; hi = 0x8F; }
    else { *bad = 1; return 0; }
    size_t k = 1;
    for (; k <= need && i + k < n; k++) {
        uint8_t d = s[i + k];
        if (k == 1 ? (d < lo || d > hi) : (d < 0x80 || d > 0xBF)) break;
    }
    if (k > need) return need + 1;
    *bad = k;
    return 0;
}
