/* tokenizer.h — text <-> token ids, loaded from a Hugging Face tokenizer.json.
 *
 * Byte-level BPE with PCRE2 regex pre-tokenizers (llama3, qwen2/3, deepseek)
 * and SentencePiece-style BPE with byte fallback and the U+2581 metaspace
 * (mistral, gemma3); the normalizer/pre-tokenizer/decoder types these use
 * (list in tokenizer.c) and added tokens; anything else is refused at load.
 * tokenizer_config.json gives bos/eos, add_bos_token, chat_template.
 * Results match HF `tokenizers` (tests/unit/test_tokenizer_golden.c).
 * Encoding is O(n log n) per pre-token (merge ranks + a priority queue).
 * A tm_tokenizer is immutable after load and safe to share across threads.
 */
#ifndef TM_TOKENIZER_H
#define TM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "util/status.h"

typedef struct tm_tokenizer tm_tokenizer;

/* Load DIR/tokenizer.json and (if present) DIR/tokenizer_config.json and
 * DIR/chat_template.jinja (which, when present, is the chat template); DIR
 * may instead be a GGUF model file. */
tm_status tm_tokenizer_load(const char *dir, tm_tokenizer **out, tm_err *err);
void tm_tokenizer_destroy(tm_tokenizer *t);
/* Load the tokenizer (and chat template) of a GGUF model file: its
 * tokenizer.ggml.* metadata as the equivalent tokenizer.json (tok_gguf.c says
 * how). tm_tokenizer_load calls it when DIR is a GGUF file. */
tm_status tm_tokenizer_load_gguf(const char *path, tm_tokenizer **out, tm_err *err);
/* Load from memory: the contents of tokenizer.json and (config_json may be
 * NULL) tokenizer_config.json. Errors name "tokenizer.json" and the JSON path.
 * Used by tests and the fuzz target; tm_tokenizer_load reads the files. */
tm_status tm_tokenizer_load_json(const char *json, size_t len, const char *config_json, size_t config_len,
                                 tm_tokenizer **out, tm_err *err);

/* Encode UTF-8 text (need not be NUL-terminated). Special/added tokens that
 * appear in the text are matched as tokens. No BOS is added unless add_bos.
 * *ids is malloc'd (caller frees); *n its length. Invalid UTF-8 -> TM_ERR_INPUT. */
tm_status tm_tokenizer_encode(const tm_tokenizer *t, const char *text, size_t len, int add_bos,
                              int32_t **ids, size_t *n, tm_err *err);

/* Decode ids to UTF-8 text (malloc'd, NUL-terminated). skip_special drops
 * special tokens (bos/eos/...). Out-of-range ids -> TM_ERR_INPUT. */
tm_status tm_tokenizer_decode(const tm_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                              char **text, size_t *len, tm_err *err);

int32_t tm_tokenizer_vocab_size(const tm_tokenizer *t);
/* Id of an exact token string (vocab or added token), or -1. */
int32_t tm_tokenizer_token_id(const tm_tokenizer *t, const char *token);
/* Raw token string of an id (as in the vocab, e.g. "Ġthe"), or NULL. */
const char *tm_tokenizer_token_str(const tm_tokenizer *t, int32_t id);
int tm_tokenizer_is_special(const tm_tokenizer *t, int32_t id);

/* From tokenizer_config.json (NULL / -1 when absent). */
const char *tm_tokenizer_bos_token(const tm_tokenizer *t);
const char *tm_tokenizer_eos_token(const tm_tokenizer *t);
int32_t tm_tokenizer_bos_id(const tm_tokenizer *t);
int32_t tm_tokenizer_eos_id(const tm_tokenizer *t);
int tm_tokenizer_add_bos(const tm_tokenizer *t);            /* add_bos_token, default per family */
/* Raw Jinja text or NULL: DIR/chat_template.jinja, else tokenizer_config.json's
 * chat_template (a string, or the "default" entry of a list of {name, template}). */
const char *tm_tokenizer_chat_template(const tm_tokenizer *t);

/* Streaming detokenizer: push ids one at a time, get back only complete
 * UTF-8 text (never a broken sequence); flush at the end. Handles the
 * SentencePiece leading-space rule and byte-fallback tokens. */
typedef struct tm_detok tm_detok;
tm_status tm_detok_create(const tm_tokenizer *t, int skip_special, tm_detok **out, tm_err *err);
void tm_detok_destroy(tm_detok *d);
/* Appends newly complete text to *out (pointer into the detok's buffer,
 * valid until the next call) with length *out_len (may be 0). */
tm_status tm_detok_push(tm_detok *d, int32_t id, const char **out, size_t *out_len, tm_err *err);
/* Emits whatever was held back (an incomplete UTF-8 tail comes out as
 * U+FFFD, as the full decode has it) and starts a new sequence. All pushed
 * text + flush == tm_tokenizer_decode of the same ids (tested on every golden
 * line); the only exception is a model emitting invalid byte-fallback
 * sequences that re-group after text was already emitted. */
tm_status tm_detok_flush(tm_detok *d, const char **out, size_t *out_len, tm_err *err);
void tm_detok_reset(tm_detok *d);

/* The bytes token `id` adds to the text when it follows prev[0..n_prev)
 * (the tokens before it in the same sequence, as the detokenizer was fed
 * them; n_prev 0: id opens the text, where SentencePiece's leading-space
 * strip applies, e.g. mistral "\u2581Fi" is "Fi" there and " Fi" anywhere
 * else). Raw bytes: a token that holds part of a UTF-8 character (a byte
 * fallback <0xNN> or a byte-level piece) gives its own bytes, never U+FFFD;
 * a special token d skips gives none. So the pieces of a sequence joined are
 * its decode before invalid UTF-8 is replaced: equal to the streamed text
 * whenever that is valid UTF-8. Uses the last TM_DETOK_PIECE_CONTEXT tokens
 * of prev as context (enough for every decoder chain supported) and d's own
 * scratch, not its stream: pushes and pieces may interleave. *out points into
 * d, valid until the next call. Out-of-range ids -> TM_ERR_INPUT. */
#define TM_DETOK_PIECE_CONTEXT 4
tm_status tm_detok_piece(tm_detok *d, const int32_t *prev, size_t n_prev, int32_t id, const char **out,
                         size_t *out_len, tm_err *err);

/* tok_bytes.c: the bytes token id stands for inside a text (what the
 * decoder chain turns it into, before any leading-space strip): byte-level
 * BPE strings unmapped to bytes, <0xNN> byte-fallback tokens as the byte,
 * U+2581 as ' ' where the decoder replaces it, added non-special tokens as
 * their content. Writes at most cap bytes to out and returns the full length,
 * or -1 for ids with no text (special tokens, unknown ids). Used by
 * src/grammar to build token masks. */
int tm_tokenizer_token_bytes(const tm_tokenizer *t, int32_t id, uint8_t *out, size_t cap);

#endif
