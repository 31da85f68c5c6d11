/* fuzz_tokenizer_json.c — fuzz target for the tokenizer.json loader.
 *
 * The input bytes are a tokenizer.json. When they load, the tokenizer is
 * exercised too: encode a fixed text and the input itself (when it is valid
 * UTF-8), decode the ids and every id below 64, stream them through the
 * detokenizer and take each one's piece (tm_detok_piece) after the ones
 * before it. Any crash, leak or sanitizer report is a bug.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

static void exercise(const tm_tokenizer *t, const char *text, size_t len)
{
    int32_t *ids = NULL;
    size_t n = 0;
    tm_err err;
    if (tm_tokenizer_encode(t, text, len, 1, &ids, &n, &err) != TM_OK) return;
    char *out = NULL;
    size_t ol = 0;
    if (tm_tokenizer_decode(t, ids, n, 0, &out, &ol, &err) == TM_OK) free(out);
    tm_detok *d = NULL;
    if (tm_detok_create(t, 1, &d, &err) == TM_OK) {
        const char *o;
        size_t l;
        for (size_t i = 0; i < n; i++) tm_detok_push(d, ids[i], &o, &l, &err);
        tm_detok_flush(d, &o, &l, &err);
        for (size_t i = 0; i < n; i++) tm_detok_piece(d, ids, i, ids[i], &o, &l, &err);
        tm_detok_destroy(d);
    }
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tm_tokenizer *t = NULL;
    tm_err err;
    if (tm_tokenizer_load_json((const char *)data, size, NULL, 0, &t, &err) != TM_OK) return 0;
    static const char text[] = "Hello  world, 123 <s> caf\xc3\xa9 \xf0\x9f\xa6\x99\n\n";
    exercise(t, text, sizeof text - 1);
    exercise(t, (const char *)data, size > 512 ? 512 : size);
    int32_t v = tm_tokenizer_vocab_size(t), ids[64];
    size_t n = 0;
    for (int32_t i = 0; i < v && i < 64; i++)
        if (tm_tokenizer_token_str(t, i)) ids[n++] = i;
    char *out = NULL;
    size_t ol = 0;
    if (tm_tokenizer_decode(t, ids, n, 0, &out, &ol, &err) == TM_OK) free(out);
    tm_tokenizer_destroy(t);
    return 0;
}
