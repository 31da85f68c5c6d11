/* fuzz_quant_unpack.c — fuzz target for the GPTQ / AWQ / FP8 converters and
 * the RTN quantizer of quant.h, with hostile shapes and contents.
 *
 * Input: byte 0 mode (0 gptq, 1 awq, 2 fp8 checkpoint, 3 rtn int4, 4 rtn
 * fp8), byte 1 n (out_features 0..255), byte 2 k (in_features 0..255),
 * byte 3 group (0xff = -1), byte 4 flags (1 gptq_v2, 2 g_idx present,
 * 4 per-channel fp8 scale, 8 asym), then the tensors' raw little-endian
 * bytes in order (qweight, qzeros, scales as float32, g_idx; zero-filled when
 * the input runs out). Buffers are sized as a loader would size them from
 * n, k and the group (shapes need not be valid: the converter must reject
 * them before reading). When a converter accepts, every row is dequantized,
 * perm must be a permutation, zeros must be 4-bit, the packed reference GEMM
 * runs, and for RTN int4 |w - dq| <= scale/2 must hold.
 * Corpus: tests/fuzz/corpus/quant_unpack/.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"

typedef struct stream {
    const uint8_t *p;
    size_t left;
} stream;

/* n elements of es bytes from the stream into a fresh buffer (zeros past the end). */
static void *take(stream *s, size_t n, size_t es)
{
    size_t bytes = n * es;
    uint8_t *b = calloc(bytes ? bytes : 1, 1);
    if (!b) abort();
    size_t c = bytes < s->left ? bytes : s->left;
    memcpy(b, s->p, c);
    s->p += c;
    s->left -= c;
    return b;
}

static void check(const tm_qweight *q)
{
    if (q->n < 1 || q->k < 1) abort();
    float *row = malloc(sizeof(float) * (size_t)q->k), *x = malloc(sizeof(float) * 2 * (size_t)q->k);
    float *y = malloc(sizeof(float) * 2 * (size_t)q->n);
    if (!row || !x || !y) abort();
    for (int32_t r = 0; r < q->n; r++) tm_qweight_dequantize_row(q, r, row);
    if (q->fmt == TM_QFMT_INT4) {
        if (q->k % 8 || q->group < 8 || q->k % q->group) abort();
        if (q->perm) {
            uint8_t *seen = calloc((size_t)q->k, 1);
            if (!seen) abort();
            for (int32_t j = 0; j < q->k; j++) {
                if (q->perm[j] < 0 || q->perm[j] >= q->k || seen[q->perm[j]]) abort();
                seen[q->perm[j]] = 1;
            }
            free(seen);
        }
        if (q->zeros)
            for (size_t i = 0; i < (size_t)q->n * (size_t)(q->k / q->group); i++)
                if (q->zeros[i] > 15) abort();
    }
    for (int32_t i = 0; i < 2 * q->k; i++) x[i] = (float)((i * 7) % 13) - 6.0f;
    if (q->fmt == TM_QFMT_INT4) tm_qweight_gemm_ref_int4(q, x, 2, y);
    else tm_qweight_gemm_ref_fp8(q, x, 2, y);
    free(row), free(x), free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5) return 0;
    int mode = data[0] % 5, flags = data[4];
    int32_t n = data[1], k = data[2], group = data[3] == 0xff ? -1 : data[3];
    stream s = {data + 5, size - 5};
    int32_t G = group == -1 ? k : group;
    size_t ng = G > 0 ? (size_t)(k / G) : 1;
    tm_qweight *q = NULL;
    tm_err err;
    if (mode == 0 || mode == 1) {
        int32_t *qw = take(&s, mode == 0 ? (size_t)(k / 8) * (size_t)n : (size_t)k * (size_t)(n / 8), 4);
        int32_t *qz = take(&s, ng * (size_t)(n / 8), 4);
        float *sc = take(&s, ng * (size_t)n, 4);
        int32_t *gi = (flags & 2) ? take(&s, (size_t)k, 4) : NULL;
        tm_status st;
        if (mode == 0) {
            tm_gptq_src src = {.n = n, .k = k, .group = group, .qweight = qw, .qzeros = qz, .scales = sc,
                               .g_idx = gi, .v2 = flags & 1};
            st = tm_qweight_from_gptq(&src, "fuzz", &q, &err);
        } else {
            tm_awq_src src = {.n = n, .k = k, .group = group, .qweight = qw, .qzeros = qz, .scales = sc};
            st = tm_qweight_from_awq(&src, "fuzz", &q, &err);
        }
        if (!st) check(q);
        free(qw), free(qz), free(sc), free(gi);
    } else if (mode == 2) {
        uint8_t *w8 = take(&s, (size_t)n * (size_t)k, 1);
        int32_t ns = (flags & 4) ? n : 1;
        float *sc = take(&s, (size_t)(ns > 0 ? ns : 1), 4);
        if (!tm_qweight_from_fp8(n, k, w8, sc, ns, flags & 1, "fuzz", &q, &err)) check(q);
        tm_qweight_free(q);
        q = NULL;
        free(w8), free(sc);
    } else {
        tm_status st = mode == 3 ? tm_qweight_new_int4(n, k, group, flags & 8, 0, 0, "fuzz", &q, &err)
                                 : tm_qweight_new_fp8(n, k, NULL, flags & 1, 0, "fuzz", &q, &err);
        if (!st) {
            float *w = take(&s, (size_t)n * (size_t)k, 4), *d = malloc(sizeof(float) * (size_t)k);
            if (!d) abort();
            int ok = 1;
            for (int32_t r = 0; r < n && ok; r++) {
                const float *wr = w + (size_t)r * (size_t)k;
                ok = tm_qweight_quantize_row(q, r, wr, &err) == TM_OK;
                if (!ok || mode != 3) continue;
                tm_qweight_dequantize_row(q, r, d);
                for (int32_t j = 0; j < k; j++) {
                    float sc = q->scales[(size_t)r * (size_t)(k / q->group) + (size_t)(j / q->group)];
                    if (!(fabs((double)wr[j] - (double)d[j]) <= (double)sc / 2 * (1 + 1e-5))) abort();
                }
            }
            if (ok) check(q);
            free(w), free(d);
        }
    }
    tm_qweight_free(q);
    return 0;
}
