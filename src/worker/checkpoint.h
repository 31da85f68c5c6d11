/* checkpoint.h — the state of an in-flight request, saved so that a run
 * killed or stopped in the middle of it loses nothing.
 *
 * A request's generation is fully determined by its prompt, its sampling
 * parameters and the tokens generated so far: the sampler's draws are
 * indexed by (seed, choice, token index) and the CPU kernels are batch
 * invariant. So the state is just each choice's generated token ids (plus
 * their logprobs when the request asked for them, which a resume cannot
 * recompute without re-running those steps) and the cost charged so far.
 * Text, stop-string state and finish reasons are rebuilt on resume by
 * replaying the tokens through the detokenizer and the stop checks.
 *
 * Binary format, version 1, little-endian, stored zstd-compressed in
 * checkpoints.state_zstd (the queue compresses):
 *   "TMCK" u32 version=1 u32 n_choices (1..128) u32 flags (bit 0: logprobs)
 *   f64 gpu_seconds f64 energy_joules (<0 unknown) f64 cost_usd
 *   f64 wasted_seconds f64 wasted_usd
 *   per choice: u32 n_tokens, i32 tokens[n_tokens],
 *     if logprobs, per token: f32 logprob, u32 n_top (<= 20),
 *                             n_top x (i32 id, f32 logprob)
 * Nothing may follow. The decoder treats the bytes as hostile: every count is
 * checked against the bytes left before anything is allocated.
 */
#ifndef TM_WORKER_CHECKPOINT_H
#define TM_WORKER_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include "engine/sampler.h"
#include "util/buf.h"
#include "util/status.h"

#define TM_CKPT_VERSION 1
#define TM_CKPT_MAX_CHOICES 128

typedef struct tm_ckpt_choice {
    int32_t n_tokens;
    int32_t *tokens;               /* [n_tokens] generated ids */
    tm_sample_result *samples;     /* [n_tokens] when logprobs, else NULL */
} tm_ckpt_choice;

typedef struct tm_ckpt {
    int32_t n_choices;
    int logprobs;
    double gpu_seconds, energy_joules, cost_usd, wasted_seconds, wasted_usd;
    tm_ckpt_choice *choices;       /* [n_choices] */
} tm_ckpt;

/* Append the encoding of c to out (out is not cleared). */
tm_status tm_ckpt_encode(const tm_ckpt *c, tm_buf *out, tm_err *err);
/* Decode; TM_ERR_INPUT names what is wrong. out is cleared on error. */
tm_status tm_ckpt_decode(const void *data, size_t len, tm_ckpt *out, tm_err *err);
/* Free what decode allocated (not for a caller-built tm_ckpt). */
void tm_ckpt_clear(tm_ckpt *c);
int64_t tm_ckpt_tokens(const tm_ckpt *c); /* sum over choices */

#endif
