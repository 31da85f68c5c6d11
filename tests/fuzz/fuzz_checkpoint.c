/* fuzz_checkpoint.c — libFuzzer target for tm_ckpt_decode (worker/checkpoint.h).
 *
 * Arbitrary bytes as a checkpoint state: only TM_OK or TM_ERR_INPUT (NOMEM
 * tolerated); a decoded state re-encodes to exactly the input bytes (the
 * format has one encoding per state), and the token counts are within the
 * input's size. Replayed by ctest over tests/fuzz/corpus/checkpoint/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tm_ckpt c;
    tm_err err;
    tm_status st = tm_ckpt_decode(data, size, &c, &err);
    if (st == TM_OK) {
        if (c.n_choices < 1 || c.n_choices > TM_CKPT_MAX_CHOICES) abort();
        if ((size_t)tm_ckpt_tokens(&c) * 4 > size) abort();
        tm_buf b;
        tm_buf_init(&b);
        if (tm_ckpt_encode(&c, &b, &err) == TM_OK) {
            /* NaN payloads and -0.0 survive bit for bit: the codec copies bits */
            if (b.len != size || memcmp(b.data, data, size)) abort();
        }
        tm_buf_free(&b);
        tm_ckpt_clear(&c);
    } else if (st != TM_ERR_INPUT && st != TM_ERR_NOMEM) {
        abort();
    } else if (c.choices || c.n_choices) {
        abort(); /* cleared on error */
    }
    return 0;
}
