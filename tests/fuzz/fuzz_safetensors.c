/* fuzz_safetensors.c — fuzz target for the safetensors header parser.
 *
 * Feeds the input as a whole safetensors image to tm_safetensors_parse; when
 * it is accepted, looks every tensor up by name and widens up to 64 elements
 * of each to f32, so any offset the parser let through is actually read.
 * Corpus: tests/fuzz/corpus/safetensors/ (good files and the hostile cases).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tm_safetensors *st = NULL;
    tm_err err;
    if (tm_safetensors_parse(data, size, "fuzz", &st, &err) != TM_OK) return 0;
    float buf[64];
    for (size_t i = 0; i < tm_safetensors_count(st); i++) {
        const tm_tensor *t = tm_safetensors_at(st, i);
        if (tm_safetensors_find(st, t->name) != t) abort();
        size_t n = t->nbytes / tm_dtype_size(t->dtype);
        if (n > 64) n = 64;
        tm_dtype_to_f32(t->dtype, t->data, buf, n);
        if (t->nbytes && ((const uint8_t *)t->data < data ||
                          (const uint8_t *)t->data + t->nbytes > data + size))
            abort();
    }
    tm_safetensors_destroy(st);
    return 0;
}
