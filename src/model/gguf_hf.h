/* gguf_hf.h — a GGUF model file seen as a Hugging Face model directory.
 *
 * The loader (model.c) and the tokenizer (tokenizer/tok_gguf.c) speak Hugging
 * Face layouts; this translates a GGUF file's metadata and tensors into
 * exactly those, so every check downstream (config parsing, weight table
 * shapes, NaN scan) runs unchanged:
 *
 *   metadata  general.architecture = llama | qwen2 | qwen3 (others refused by
 *             name) and <arch>.{block_count, embedding_length,
 *             feed_forward_length, context_length, attention.head_count,
 *             attention.head_count_kv, attention.key_length,
 *             attention.layer_norm_rms_epsilon, rope.freq_base} → config.json;
 *             a `rope_freqs.weight` tensor (Llama 3.1/3.2) → rope_scaling
 *             "llama3" when it equals the factors of (factor 8 or 32, low 1,
 *             high 4, original 8192) — anything else, and any
 *             <arch>.rope.scaling.type but "none", is refused.
 *   tensors   token_embd → model.embed_tokens, output_norm → model.norm,
 *             output → lm_head (absent: tied), blk.N.{attn_norm, attn_q,
 *             attn_k, attn_v, attn_output, attn_q_norm, attn_k_norm, ffn_norm,
 *             ffn_gate, ffn_up, ffn_down} → model.layers.N.{…} (weights and
 *             biases). Shapes reverse (GGUF ne = {cols, rows}). For
 *             architecture llama, llama.cpp's converter interleaved the rows
 *             of attn_q/attn_k per head (its `permute`); they are put back.
 *             A tensor name not in this list is refused by name.
 *   dtypes    F32, F16, BF16 stay as stored. Block types (Q4_0, Q4_1, Q5_0,
 *             Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) are dequantised at load with
 *             ggml's arithmetic (quant/ggml_blocks.h): to F32 for models up to
 *             TM_GGUF_F32_MAX_PARAMS parameters (the values llama.cpp and
 *             transformers compute), to BF16 above (half the memory; each
 *             weight then carries bf16 rounding, ≤ 2^-9 relative).
 * The result is one in-memory safetensors image (the 8-byte length, the JSON
 * header, the data), parsed by model/safetensors.c like a file.
 */
#ifndef TM_GGUF_HF_H
#define TM_GGUF_HF_H

#include <stddef.h>
#include "model/gguf.h"
#include "util/buf.h"
#include "util/status.h"

#define TM_GGUF_F32_MAX_PARAMS ((int64_t)1600 * 1000 * 1000)

/* 1 when PATH is a regular file that starts with the GGUF magic. */
int tm_gguf_is_file(const char *path);

/* config.json (and generation_config.json: eos/bos ids) text for G. */
tm_status tm_gguf_hf_config(const tm_gguf *g, tm_buf *config, tm_buf *generation, tm_err *err);

/* The weights as a safetensors image in *image (malloc'd; caller frees). */
tm_status tm_gguf_hf_weights(const tm_gguf *g, void **image, size_t *len, tm_err *err);

#endif
