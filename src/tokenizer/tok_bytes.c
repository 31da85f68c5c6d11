/* tok_bytes.c — a token's bytes inside a text (tokenizer.h). */
#include <string.h>

#include "tokenizer/tok_internal.h"

static size_t cp_len(uint8_t c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

static uint32_t cp_of(const uint8_t *u, size_t k)
{
    switch (k) {
    case 1: return u[0];
    case 2: return ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
    case 3: return ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    default: return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) | ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
    }
}

int tm_tokenizer_token_bytes(const tm_tokenizer *t, int32_t id, uint8_t *out, size_t cap)
{
    if (!t || id < 0 || id >= t->n_ids) return -1;
    uint8_t f = t->id_flags[id];
    if (!(f & (TOKF_VOCAB | TOKF_ADDED)) || (f & TOKF_SPECIAL)) return -1;
    const uint8_t *s = (const uint8_t *)t->arena.data + t->id_off[id];
    size_t n = t->id_len[id], w = 0;
    if (t->dec_byte_fallback && t->id_byte[id] >= 0) {
        if (cap) out[0] = (uint8_t)t->id_byte[id];
        return 1;
    }
    int bytelevel = 0, space = 0;
    for (int i = 0; i < t->n_dec; i++) {
        if (t->dec[i].kind == DEC_BYTELEVEL) bytelevel = 1;
        if (t->dec[i].kind == DEC_METASPACE) space = 1;
        if (t->dec[i].kind == DEC_REPLACE && t->dec[i].content_len == 1 && t->dec[i].content[0] == ' ') space = 1;
    }
    if (f & TOKF_ADDED) bytelevel = space = 0; /* added content is plain text */
    for (size_t i = 0; i < n;) {
        size_t k = cp_len(s[i]);
        if (i + k > n) k = n - i;
        if (bytelevel) {
            int b = tok_cp_to_byte(cp_of(s + i, k));
            if (b < 0) return -1;
            if (w < cap) out[w] = (uint8_t)b;
            w++;
        } else if (space && k == 3 && !memcmp(s + i, "\xE2\x96\x81", 3)) {
            if (w < cap) out[w] = ' ';
            w++;
        } else {
            for (size_t j = 0; j < k; j++, w++)
                if (w < cap) out[w] = s[i + j];
        }
        i += k;
    }
    return (int)w;
}
