/* fuzz_gguf.c — fuzz target for the GGUF reader and the block dequantisers.
 *
 * Feeds the input as a whole GGUF image to tm_gguf_parse; when accepted,
 * reads every metadata value (string arrays element by element), looks every
 * tensor up by name and dequantises its first blocks, so any length or offset
 * the parser let through is actually read. Corpus: tests/fuzz/corpus/gguf/.
 */
#include <stdint.h>
#include <stdlib.h>

#include "model/gguf.h"
#include "quant/ggml_blocks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tm_gguf *g = NULL;
    tm_err err;
    if (tm_gguf_parse(data, size, "fuzz", &g, &err) != TM_OK) return 0;
    volatile uint64_t sink = 0;
    for (size_t i = 0; i < tm_gguf_kv_count(g); i++) {
        const tm_gguf_value *v = tm_gguf_kv_at(g, i);
        if (tm_gguf_get(g, tm_gguf_kv_key(g, i)) != v) abort();
        if (v->type == TM_GGUF_ARRAY)
            for (uint64_t k = 0; k < v->arr_len && k < 4096; k++) {
                tm_gguf_str s = tm_gguf_arr_str(v, k);
                if (s.len) sink += (unsigned char)s.p[s.len - 1];
                sink += (uint64_t)tm_gguf_arr_int(v, k);
            }
        else if (v->type == TM_GGUF_STRING && v->v.s.len)
            sink += (unsigned char)v->v.s.p[v->v.s.len - 1];
    }
    float buf[512];
    for (size_t i = 0; i < tm_gguf_tensor_count(g); i++) {
        const tm_gguf_tensor *t = tm_gguf_tensor_at(g, i);
        if (tm_gguf_find(g, t->name) != t) abort();
        if (t->data < data || t->data + t->nbytes > data + size) abort();
        int be = tm_ggml_block_elems(t->type);
        int64_t n = t->nelem < 256 ? t->nelem : 256;
        n -= n % be;
        if (n > 0 && tm_ggml_dequant_supported(t->type)) tm_ggml_dequant(t->type, t->data, buf, n);
    }
    (void)sink;
    tm_gguf_destroy(g);
    return 0;
}
