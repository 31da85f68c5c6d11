/* grammar.h — constrained decoding: JSON Schema / regex / choice -> a
 * byte-level pushdown automaton -> per-token bitmasks over a vocabulary.
 *
 * Pipeline (docs/structured-output.md has the subset and the design):
 *   tm_grammar_compile_*   schema / regex / choices -> tm_grammar (rules, each a
 *                          DFA over bytes whose edges may also call another rule)
 *   tm_grammar_vocab       every token's bytes (tokenizer/tok_bytes.c), sorted
 *                          with common-prefix lengths; the EOS ids
 *   tm_matcher             one sequence's state: a small set of rule stacks
 *                          (copyable; accept token ids; fill masks; end test)
 *   tm_grammar_cache       compiled grammars by sha256 of (kind, text), owned by
 *                          the worker for a job's life
 *
 * Masks: uint32_t words, bit (id & 31) of word (id >> 5) set = token allowed;
 * tm_grammar_vocab_mask_words(v) words (ceil(tokenizer vocab / 32)). A model
 * whose logits row is wider than the tokenizer's vocab bans the extra ids
 * (tm_grammar_mask_apply treats ids past the mask as banned). EOS ids are
 * allowed only where the grammar accepts the end.
 *
 * Whitespace: compact. JSON output has no optional whitespace at all (no
 * space after ':' or ','); objects list their properties in the schema's
 * declared order, every required one present, optional ones may be skipped.
 *
 * Threads: a tm_grammar fills its per-state token tables lazily (the adaptive
 * cache), so a grammar and its matchers are used by one thread at a time,
 * unless tm_grammar_precompute was called first (then read-only, shareable).
 *
 * Wiring (for the worker/sampler, not done here): per job one cache
 * (tm_grammar_cache_create with the job's tokenizer vocab); per request
 * tm_grammar_cache_get(kind, text) at prepare time (errors -> the request
 * fails with the message); per choice one tm_matcher; per step fill the mask,
 * tm_grammar_mask_apply on the logits row, sample, tm_matcher_accept(token);
 * stop only when tm_matcher_done; resume = reset + accept each saved token.
 */
#ifndef TM_GRAMMAR_H
#define TM_GRAMMAR_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"
#include "util/status.h"

/* Limits (hostile input): past them compilation fails with TM_ERR_INPUT. */
#define TM_GRAMMAR_MAX_DEPTH 64      /* schema nesting / regex group nesting */
#define TM_GRAMMAR_MAX_RULES 256     /* $defs targets + built-in rules */
#define TM_GRAMMAR_MAX_REPEAT 1000   /* {m,n}, maxLength, maxItems upper bounds */
#define TM_GRAMMAR_MAX_NFA 300000    /* NFA states while compiling */
#define TM_GRAMMAR_MAX_STATES 16384  /* DFA states, all rules together */
#define TM_GRAMMAR_MAX_ENUM 4096     /* enum values / choices */
#define TM_MATCHER_MAX_STACKS 16     /* alternative parses held at once */
#define TM_MATCHER_MAX_DEPTH 32      /* rule calls nested (recursion depth) */

typedef struct tm_grammar tm_grammar;
typedef struct tm_grammar_vocab tm_grammar_vocab;
typedef struct tm_matcher tm_matcher;
typedef struct tm_grammar_cache tm_grammar_cache;

typedef enum tm_grammar_kind {
    TM_GRAMMAR_JSON_SCHEMA, /* text: a JSON Schema document */
    TM_GRAMMAR_JSON_OBJECT, /* text ignored: any JSON object ({"type":"json_object"}) */
    TM_GRAMMAR_REGEX,       /* text: a regex (vLLM guided_regex), matched on the whole output */
    TM_GRAMMAR_CHOICE,      /* text: a JSON array of strings (vLLM guided_choice), output one of them */
} tm_grammar_kind;

/* Compile. Errors (TM_ERR_INPUT) name the keyword and its JSON pointer, e.g.
 * "keyword 'oneOf' at /properties/a not supported", ready to be prefixed with
 * "file:line: response_format: ". */
tm_status tm_grammar_compile(tm_grammar_kind kind, const char *text, size_t len, tm_grammar **out, tm_err *err);
static inline tm_status tm_grammar_compile_schema(const char *json, size_t len, tm_grammar **out, tm_err *err)
{
    return tm_grammar_compile(TM_GRAMMAR_JSON_SCHEMA, json, len, out, err);
}
void tm_grammar_destroy(tm_grammar *g);
/* DFA states and rules after compilation (for tests and the bench). */
int32_t tm_grammar_n_states(const tm_grammar *g);
int32_t tm_grammar_n_rules(const tm_grammar *g);
/* Fill every DFA state's token table for vocab v now (else lazily, on the
 * first mask that needs it). A grammar is bound to the first vocab used. */
tm_status tm_grammar_precompute(tm_grammar *g, const tm_grammar_vocab *v, tm_err *err);

/* The vocabulary as bytes: every non-special token's bytes (byte-level BPE
 * unmapped, SentencePiece U+2581 -> ' ', <0xNN> -> the byte), EOS = the
 * tokenizer's eos id (tm_grammar_vocab_set_eos to give the model's list). */
tm_status tm_grammar_vocab_create(const tm_tokenizer *t, tm_grammar_vocab **out, tm_err *err);
void tm_grammar_vocab_destroy(tm_grammar_vocab *v);
tm_status tm_grammar_vocab_set_eos(tm_grammar_vocab *v, const int32_t *ids, size_t n, tm_err *err);
int32_t tm_grammar_vocab_size(const tm_grammar_vocab *v);
size_t tm_grammar_vocab_mask_words(const tm_grammar_vocab *v);
/* Bytes of token id (NULL, *len 0 when it has none: special tokens). */
const uint8_t *tm_grammar_vocab_token(const tm_grammar_vocab *v, int32_t id, size_t *len);
int tm_grammar_vocab_is_eos(const tm_grammar_vocab *v, int32_t id);

/* Matcher: state of one sequence. g and v must outlive it. */
tm_status tm_matcher_create(tm_grammar *g, const tm_grammar_vocab *v, tm_matcher **out, tm_err *err);
void tm_matcher_destroy(tm_matcher *m);
void tm_matcher_reset(tm_matcher *m);
/* dst := src (same grammar and vocab); no allocation. */
tm_status tm_matcher_copy(tm_matcher *dst, const tm_matcher *src);
/* Advance by one token. TM_ERR_INPUT (state unchanged) when the grammar does
 * not allow it. An EOS id is accepted when the end is allowed; after it the
 * matcher is terminated and accepts nothing more. */
tm_status tm_matcher_accept(tm_matcher *m, int32_t id);
/* Advance by raw bytes (tests, regex checks); same rules as accept. */
tm_status tm_matcher_accept_bytes(tm_matcher *m, const uint8_t *s, size_t n);
/* 1 when the output so far is complete (EOS / stop allowed here). */
int tm_matcher_done(const tm_matcher *m);
/* 1 after an EOS was accepted. */
int tm_matcher_terminated(const tm_matcher *m);
/* Write the allowed-token bitmask (tm_grammar_vocab_mask_words words). May
 * fill the grammar's token tables (allocation) the first time a state is
 * met; afterwards no allocation. Fails only on out-of-memory. */
tm_status tm_matcher_fill_mask(tm_matcher *m, uint32_t *mask, tm_err *err);
/* Fewest bytes that complete the output from here (INT32_MAX: none): lets a
 * test or bench steer a random walk to an end. */
int32_t tm_matcher_bytes_to_end(const tm_matcher *m);

/* logits[i] = -inf for every i < n_logits whose bit is clear in mask (mask
 * has mask_words words; ids at or past mask_words*32 are banned). */
void tm_grammar_mask_apply(float *logits, size_t n_logits, const uint32_t *mask, size_t mask_words);

/* Cache of compiled grammars for one vocab, keyed by sha256(kind, text);
 * owns them. get returns a borrowed grammar valid until the cache is
 * destroyed; a compile error is returned (and not cached). */
tm_status tm_grammar_cache_create(const tm_grammar_vocab *v, tm_grammar_cache **out, tm_err *err);
void tm_grammar_cache_destroy(tm_grammar_cache *c);
tm_status tm_grammar_cache_get(tm_grammar_cache *c, tm_grammar_kind kind, const char *text, size_t len,
                               tm_grammar **out, tm_err *err);
size_t tm_grammar_cache_count(const tm_grammar_cache *c);

#endif
