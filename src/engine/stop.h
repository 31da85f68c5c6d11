/* stop.h — when does a sequence finish: stop strings, stop tokens, length.
 *
 * tm_stop is a streaming matcher for up to TM_STOP_MAX stop strings (bytes,
 * up to TM_STOP_MAX_BYTES each; one KMP automaton per string, all sized at
 * create, nothing allocated per piece). Feed it the detokenized text piece by
 * piece (arbitrary chunks; a stop string may span many tokens). Offsets are
 * absolute byte offsets into the whole output text fed so far.
 */

/* Semantics: bytes are scanned in order; the output stops at the first byte
 * that completes any stop string. If several complete on that byte, the one
 * that starts earliest (the longest) wins. The result is independent of how
 * the text was split into pieces. As OpenAI, the stop string itself is not
 * part of the output: the text ends at `cut` (vLLM's default too).
 *
 * Streaming: after each feed, bytes [0, safe) may be emitted; the last
 * `hold` bytes could still be the start of a stop string and must be held
 * back. safe never decreases, and never exceeds a later cut.
 */
#ifndef TM_STOP_H
#define TM_STOP_H

#include <stddef.h>
#include <stdint.h>
#include "engine/sampler.h"
#include "util/status.h"

typedef enum tm_finish_reason {
    TM_FINISH_NONE = 0,   /* keep generating */
    TM_FINISH_STOP,       /* eos, a stop token id or a stop string ("stop") */
    TM_FINISH_LENGTH,     /* max_tokens reached ("length") */
} tm_finish_reason;

/* "stop", "length", or NULL for TM_FINISH_NONE (OpenAI finish_reason). */
const char *tm_finish_reason_str(tm_finish_reason r);

/* After appending generated token `token` (n_generated now counts it):
 * while n_generated <= p->min_tokens only TM_FINISH_LENGTH (vLLM: nothing
 * stops a sequence before min_tokens); else TM_FINISH_STOP if token is one of eos_ids (unless p->ignore_eos) or of
 * p->stop_ids; else TM_FINISH_LENGTH if p->max_tokens > 0 and
 * n_generated >= p->max_tokens; else TM_FINISH_NONE. Stop wins over length
 * (vLLM's order). A stopping token's text is not part of the output. */
tm_finish_reason tm_stop_check_token(const tm_sampling_params *p, const int32_t *eos_ids,
                                     size_t n_eos, int32_t token, int64_t n_generated);

typedef struct tm_stop tm_stop;

typedef struct tm_stop_result {
    int matched;        /* 1 once a stop string has been found */
    int32_t which;      /* index of the matching stop string, -1 if none */
    uint64_t total;     /* bytes fed so far (up to and including the match) */
    uint64_t cut;       /* matched: the output text is [0, cut) */
    uint64_t safe;      /* bytes that may be emitted now (= cut once matched) */
    uint32_t hold;      /* total - safe while not matched */
} tm_stop_result;

/* Matcher for the n stop strings stops[i] of lens[i] bytes (n may be 0).
 * TM_ERR_INPUT when n > TM_STOP_MAX or a string is empty or too long. */
tm_status tm_stop_create(const char *const *stops, const size_t *lens, int n,
                         tm_stop **out, tm_err *err);
/* The same from the stop strings in sampling params, with p->min_tokens:
 * a stop string then matches only where it completes in the text of a
 * token after the first min_tokens (it may start earlier), as vLLM's
 * detokenizer checks; the caller notes each token (tm_stop_note_token). */
tm_status tm_stop_create_from_params(const tm_sampling_params *p, tm_stop **out, tm_err *err);
/* One more generated token; call before feeding its text. Without
 * min_tokens it changes nothing. */
void tm_stop_note_token(tm_stop *s);
void tm_stop_destroy(tm_stop *s);
/* Forget all text fed and tokens noted (same stop strings), e.g. for the next request. */
void tm_stop_reset(tm_stop *s);

/* Feed the next piece of output text; r (may be NULL) receives the state.
 * Returns 1 when a stop string has matched (now or earlier), else 0. Once
 * matched, further pieces are ignored. */
int tm_stop_feed(tm_stop *s, const char *piece, size_t len, tm_stop_result *r);

/* Current state without feeding anything. */
void tm_stop_state(const tm_stop *s, tm_stop_result *r);

#endif
