/* safetensors.h — reader for the safetensors weight file format (read-only, mmap).
 *
 * Format (https://github.com/huggingface/safetensors), all integers little-endian:
 *   bytes [0, 8)        N: uint64 length of the JSON header
 *   bytes [8, 8+N)      JSON object, UTF-8, optionally padded with spaces:
 *                         { "<tensor name>": { "dtype": "BF16"|"F16"|"F32"|"I32"|"F8_E4M3"|...,
 *                                              "shape": [d0, d1, ...],
 *                                              "data_offsets": [begin, end] },
 *                           ...,
 *                           "__metadata__": { "<key>": "<string>", ... } }   (optional)
 *   bytes [8+N, EOF)    the data; each tensor's bytes are [begin, end) RELATIVE to 8+N,
 *                       row-major (C order), little-endian elements.
 * Checks made here before anything is used (every input is hostile):
 *   file >= 8 bytes; N <= file size - 8 and N <= TM_ST_MAX_HEADER (100 MB); the header
 *   parses as a JSON object without duplicate keys; dtype in {BF16, F16, F32, I32,
 *   F8_E4M3} (anything else is an error naming the tensor and dtype; I32 and
 *   F8_E4M3 are for quantized checkpoints); rank 0..4 (rank 0 is a scalar of
 *   one element, e.g. a per-tensor fp8 weight_scale); every dim >= 0;
 *   product(shape) * dtype size == end - begin (overflow-checked); begin <= end <= data
 *   length; no two non-empty tensors overlap (HF never writes that; we reject it).
 * Tensor data pointers point into the mapping (or the caller's buffer) and may be
 * unaligned in files not written by the safetensors library (it pads N to 8); read
 * them with memcpy or tm_dtype_to_f32, or let tm_model_load, which realigns.
 */
#ifndef TM_SAFETENSORS_H
#define TM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "model/model.h"
#include "util/status.h"

#define TM_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef struct tm_safetensors tm_safetensors;

/* Memory-map PATH read-only (PROT_READ, MAP_PRIVATE) and parse it. Error messages
 * start with PATH. */
tm_status tm_safetensors_open(const char *path, tm_safetensors **out, tm_err *err);

/* Parse a safetensors image already in memory. buf must stay valid and unchanged
 * for the lifetime of *out (tensor data points into it). `what` names the input in
 * error messages (e.g. a path); NULL means "safetensors". */
tm_status tm_safetensors_parse(const void *buf, size_t len, const char *what,
                               tm_safetensors **out, tm_err *err);

void tm_safetensors_destroy(tm_safetensors *st);

/* The name given to open/parse (used as the prefix of error messages). */
const char *tm_safetensors_path(const tm_safetensors *st);

/* Tensors, sorted by name. i in [0, count). */
size_t tm_safetensors_count(const tm_safetensors *st);
const tm_tensor *tm_safetensors_at(const tm_safetensors *st, size_t i);

/* Tensor by exact name, or NULL. O(log n). */
const tm_tensor *tm_safetensors_find(const tm_safetensors *st, const char *name);

/* Byte offsets [begin, end) of tensor i relative to the start of the data section,
 * and the size of the header (8 + N) — for writers/tools that copy tensors. */
void tm_safetensors_offsets(const tm_safetensors *st, size_t i, uint64_t *begin, uint64_t *end);
uint64_t tm_safetensors_data_start(const tm_safetensors *st);

/* Parse a safetensors dtype string ("BF16", "F16", "F32", "I32", "F8_E4M3"); 0 if supported. */
int tm_dtype_from_safetensors(const char *s, tm_dtype *out);

/* Format a shape as "[d0, d1]" into out (always NUL-terminated). */
void tm_shape_format(char *out, size_t outsz, int ndim, const int64_t *shape);

#endif
