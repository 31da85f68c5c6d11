/* gguf.h — reader for GGUF files (llama.cpp's single-file model format), v2/v3.
 *
 * Format (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md), all
 * integers little-endian:
 *   uint32 magic "GGUF" (0x46554747) · uint32 version (2 or 3; v1 is refused)
 *   uint64 tensor_count · uint64 kv_count
 *   kv_count × { string key · uint32 type · value }
 *       string = uint64 length + bytes (no NUL); types: 0 u8, 1 i8, 2 u16,
 *       3 i16, 4 u32, 5 i32, 6 f32, 7 bool, 8 string, 9 array (uint32 elem
 *       type + uint64 count + elems; arrays of arrays refused), 10 u64,
 *       11 i64, 12 f64
 *   tensor_count × { string name · uint32 n_dims (1..4) · uint64 ne[n_dims]
 *       (ne[0] is the contiguous dimension: a Hugging Face [rows, cols]
 *       matrix is ne = {cols, rows}) · uint32 ggml type · uint64 offset }
 *   padding to `general.alignment` (u32, default 32, a power of two ≤ 4096)
 *   data: each tensor at data_start + offset (a multiple of the alignment).
 * Checks made here before anything is used (every input is hostile): every
 * length and count against the bytes left (a string of N bytes needs N bytes,
 * an array of N elements at least N × the element's minimum size), at most
 * TM_GGUF_MAX_KV keys and TM_GGUF_MAX_TENSORS tensors, duplicate keys and
 * tensor names refused, ne[i] ≥ 1 with the element count and byte size
 * overflow-checked, ne[0] a multiple of the type's block size, every tensor
 * inside the file, offsets aligned, no two tensors overlapping.
 * Values stay in the mapping: strings and arrays are (pointer, length) views.
 */
#ifndef TM_GGUF_H
#define TM_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include "util/status.h"

#define TM_GGUF_MAX_KV       65536
#define TM_GGUF_MAX_TENSORS  65536
#define TM_GGUF_MAX_NAME     256     /* tensor names (ggml's GGML_MAX_NAME is 64) */
#define TM_GGUF_MAX_KEY      65536

typedef enum tm_gguf_vtype {
    TM_GGUF_U8 = 0, TM_GGUF_I8 = 1, TM_GGUF_U16 = 2, TM_GGUF_I16 = 3, TM_GGUF_U32 = 4, TM_GGUF_I32 = 5,
    TM_GGUF_F32 = 6, TM_GGUF_BOOL = 7, TM_GGUF_STRING = 8, TM_GGUF_ARRAY = 9, TM_GGUF_U64 = 10,
    TM_GGUF_I64 = 11, TM_GGUF_F64 = 12, TM_GGUF_VTYPE_COUNT
} tm_gguf_vtype;

/* ggml tensor types this project knows by name (others are refused by name). */
typedef enum tm_ggml_type {
    TM_GGML_F32 = 0, TM_GGML_F16 = 1, TM_GGML_Q4_0 = 2, TM_GGML_Q4_1 = 3, TM_GGML_Q5_0 = 6,
    TM_GGML_Q5_1 = 7, TM_GGML_Q8_0 = 8, TM_GGML_Q8_1 = 9, TM_GGML_Q2_K = 10, TM_GGML_Q3_K = 11,
    TM_GGML_Q4_K = 12, TM_GGML_Q5_K = 13, TM_GGML_Q6_K = 14, TM_GGML_Q8_K = 15, TM_GGML_BF16 = 30,
} tm_ggml_type;

typedef struct tm_gguf tm_gguf;

typedef struct tm_gguf_str { const char *p; uint64_t len; } tm_gguf_str;

/* One metadata value. For arrays, `arr` points at the first element in the
 * file and `arr_type`/`arr_len` describe them; string arrays are walked with
 * tm_gguf_arr_str (elements are variable-length). */
typedef struct tm_gguf_value {
    tm_gguf_vtype type;
    struct { uint64_t u; int64_t i; double f; int b; tm_gguf_str s; } v;   /* every view that fits is set */
    tm_gguf_vtype arr_type;
    uint64_t arr_len;
    const unsigned char *arr;     /* first element (arrays) */
    const uint64_t *str_offsets;  /* string arrays: byte offset of each element from arr (owned by tm_gguf) */
} tm_gguf_value;

typedef struct tm_gguf_tensor {
    char name[TM_GGUF_MAX_NAME];
    int n_dims;
    int64_t ne[4];
    tm_ggml_type type;
    uint64_t offset;              /* from the data start */
    uint64_t nbytes;
    int64_t nelem;
    const unsigned char *data;
} tm_gguf_tensor;

/* Memory-map PATH read-only and parse it. Error messages start with PATH. */
tm_status tm_gguf_open(const char *path, tm_gguf **out, tm_err *err);
/* Parse an image in memory (valid for *out's lifetime). `what` names it in errors. */
tm_status tm_gguf_parse(const void *buf, size_t len, const char *what, tm_gguf **out, tm_err *err);
void tm_gguf_destroy(tm_gguf *g);

const char *tm_gguf_path(const tm_gguf *g);
uint32_t tm_gguf_version(const tm_gguf *g);

size_t tm_gguf_kv_count(const tm_gguf *g);
const char *tm_gguf_kv_key(const tm_gguf *g, size_t i);
const tm_gguf_value *tm_gguf_kv_at(const tm_gguf *g, size_t i);
/* By exact key, or NULL. */
const tm_gguf_value *tm_gguf_get(const tm_gguf *g, const char *key);

/* Typed getters: TM_OK and *out set; TM_ERR_NOTFOUND when absent (message
 * names the key); TM_ERR_INPUT when present with an unusable type/value.
 * Integers accept any integer type whose value fits; floats accept f32/f64
 * and integers. Strings are views into the file (not NUL-terminated). */
tm_status tm_gguf_get_int(const tm_gguf *g, const char *key, int64_t *out, tm_err *err);
tm_status tm_gguf_get_float(const tm_gguf *g, const char *key, double *out, tm_err *err);
tm_status tm_gguf_get_bool(const tm_gguf *g, const char *key, int *out, tm_err *err);
tm_status tm_gguf_get_str(const tm_gguf *g, const char *key, tm_gguf_str *out, tm_err *err);
/* Element i of an array value (any integer/float type -> int64/double). */
int64_t tm_gguf_arr_int(const tm_gguf_value *v, uint64_t i);
double tm_gguf_arr_float(const tm_gguf_value *v, uint64_t i);
tm_gguf_str tm_gguf_arr_str(const tm_gguf_value *v, uint64_t i);

size_t tm_gguf_tensor_count(const tm_gguf *g);
const tm_gguf_tensor *tm_gguf_tensor_at(const tm_gguf *g, size_t i);
const tm_gguf_tensor *tm_gguf_find(const tm_gguf *g, const char *name);

/* ggml type facts: name ("Q4_K"), elements per block and bytes per block
 * (0 for types this reader does not know). */
const char *tm_ggml_type_name(uint32_t t);
int tm_ggml_block_elems(uint32_t t);
int tm_ggml_block_bytes(uint32_t t);

#endif
