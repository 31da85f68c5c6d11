/* ggml_blocks.h — dequantisation of ggml's block formats (as stored in GGUF
 * files) into float32, as pure functions over caller memory.
 *
 * Layouts (one block, little-endian; d/dmin are IEEE fp16):
 *   Q4_0  32 elems, 18 B: d, qs[16]               x = d·(q − 8), q = low nibbles (elems 0..15) then high (16..31)
 *   Q4_1  32 elems, 20 B: d, m, qs[16]            x = d·q + m
 *   Q5_0  32 elems, 22 B: d, qh[4], qs[16]        q |= bit j of qh << 4; x = d·(q − 16)
 *   Q5_1  32 elems, 24 B: d, m, qh[4], qs[16]     x = d·q + m
 *   Q8_0  32 elems, 34 B: d, int8 qs[32]          x = d·q
 *   Q4_K 256 elems, 144 B: d, dmin, scales[12], qs[128]: 8 sub-blocks of 32 with
 *        6-bit scale sc and min m packed in scales; x = d·sc·q − dmin·m
 *   Q5_K 256 elems, 176 B: d, dmin, scales[12], qh[32], qs[128]: Q4_K + a fifth bit
 *   Q6_K 256 elems, 210 B: ql[128], qh[64], int8 scales[16], d: 16 sub-blocks of
 *        16; x = d·scale·(q − 32), q 6 bits (4 in ql, 2 in qh)
 *   F32, F16, BF16: plain.
 * The arithmetic follows ggml's reference dequantize_row_* in float32, so the
 * values equal what llama.cpp (and transformers' GGUF loader) produce.
 */
#ifndef TM_GGML_BLOCKS_H
#define TM_GGML_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

/* Dequantise n elements (a multiple of the type's block size) of ggml type
 * `type` (numbering as in model/gguf.h) from src to dst. Returns 0, or -1 for
 * a type not handled here. */
int tm_ggml_dequant(uint32_t type, const void *src, float *dst, int64_t n);

/* 1 when tm_ggml_dequant handles the type. */
int tm_ggml_dequant_supported(uint32_t type);

#endif
