/* sampler.h — turns one row of logits into the next token (CPU reference).
 *
 * Plain structs in, a token id out: no SQLite, no JSON. A tm_sampler is made
 * once per engine for a vocabulary and owns all scratch: sampling never
 * allocates. The draw for generated token i depends only on (seed,
 * request_key, i) via Philox-4x32-10 (philox.h), so resumed or re-batched
 * requests reproduce exactly. Pipeline and choices (vLLM / HF / OpenAI) are
 * documented at tm_sampler_sample(); timings at the top of sampler.c.
 */
#ifndef TM_SAMPLER_H
#define TM_SAMPLER_H

#include <stddef.h>
#include <stdint.h>
#include "util/status.h"

#define TM_SAMPLER_MAX_TOP_LOGPROBS 20  /* OpenAI's limit for top_logprobs */
#define TM_SAMPLER_MAX_STOP_IDS     16  /* request stop_token_ids (eos is separate) */
#define TM_STOP_MAX                 4   /* stop strings per request (OpenAI: up to 4) */
#define TM_STOP_MAX_BYTES           128 /* bytes per stop string */
#define TM_SAMPLER_MAX_LOGIT_BIAS   300 /* logit_bias entries per request */
#define TM_SAMPLER_MAX_EOS_IDS      8   /* eos ids masked under min_tokens (= TM_MAX_EOS) */
#define TM_SAMPLER_MAX_BIAS         100.0f /* |logit_bias value| <= this (OpenAI) */

/* Temperatures below this are greedy (vLLM's _SAMPLING_EPS). */
#define TM_SAMPLER_GREEDY_EPS 1e-5f

/* Per-request sampling parameters. Fill with tm_sampling_params_default()
 * then override what the request sets; check with tm_sampling_params_check(). */
typedef struct tm_sampling_params {
    float temperature;        /* >= 0; < TM_SAMPLER_GREEDY_EPS -> greedy. default 1 */
    float top_p;              /* (0, 1]; 1 = off. default 1 */
    int32_t top_k;            /* <= 0 (0 or -1) = off; >= vocab = off. default 0 */
    float min_p;              /* [0, 1]; 0 = off. default 0 */
    float presence_penalty;   /* [-2, 2], OpenAI. default 0 */
    float frequency_penalty;  /* [-2, 2], OpenAI. default 0 */
    float repetition_penalty; /* > 0 (HF/vLLM); 1 = off. default 1 */
    uint64_t seed;            /* the stream's seed; always used by the sampler. When
                                 the request gave none (has_seed = 0) the caller
                                 fills in tm_sampler_seed_from() and records it */
    int has_seed;             /* 1 when the request gave a seed */
    int logprobs;             /* 1: fill tm_sample_result.logprob */
    int32_t top_logprobs;     /* 0..TM_SAMPLER_MAX_TOP_LOGPROBS alternatives */
    int32_t max_tokens;       /* <= 0: no request limit (engine caps at context) */
    int ignore_eos;           /* 1: eos does not finish (vLLM ignore_eos) */
    int32_t n_stop_ids;       /* entries in stop_ids */
    int32_t stop_ids[TM_SAMPLER_MAX_STOP_IDS]; /* extra stop token ids */
    int32_t n_stop;           /* stop strings in use, 0..TM_STOP_MAX */
    uint16_t stop_len[TM_STOP_MAX];             /* bytes, 1..TM_STOP_MAX_BYTES */
    char stop[TM_STOP_MAX][TM_STOP_MAX_BYTES];  /* not NUL-terminated */
    int32_t min_tokens;       /* >= 0 (vLLM): while fewer tokens are generated, eos_ids
                                 and stop_ids are banned and stop strings do not match */
    int32_t n_eos_ids;        /* entries in eos_ids (the engine fills the model's) */
    int32_t eos_ids[TM_SAMPLER_MAX_EOS_IDS];
    int32_t n_bias;           /* logit_bias entries, 0..TM_SAMPLER_MAX_LOGIT_BIAS */
    int32_t bias_id[TM_SAMPLER_MAX_LOGIT_BIAS];  /* distinct token ids */
    float bias[TM_SAMPLER_MAX_LOGIT_BIAS];       /* [-100, 100], added to the logit */
} tm_sampling_params;

typedef struct tm_token_logprob {
    int32_t id;
    float logprob;
} tm_token_logprob;

typedef struct tm_sample_result {
    int32_t token;            /* the sampled token id */
    float logprob;            /* raw log-softmax of token (when params->logprobs) */
    int32_t n_top;            /* entries in top (params->top_logprobs, <= vocab) */
    tm_token_logprob top[TM_SAMPLER_MAX_TOP_LOGPROBS]; /* by logprob desc, ties id asc */
} tm_sample_result;

typedef struct tm_sampler tm_sampler;

/* Defaults as OpenAI / vLLM: temperature 1, top_p 1, top_k off, min_p 0,
 * penalties off (repetition 1), no seed, no logprobs, no max_tokens, no stops. */
void tm_sampling_params_default(tm_sampling_params *p);

/* Range checks (listed above; vocab bounds stop ids). TM_ERR_INPUT with
 * "field: what is wrong" in err when a value is out of range. */
tm_status tm_sampling_params_check(const tm_sampling_params *p, int32_t vocab, tm_err *err);

/* Copy one stop string into p (TM_ERR_INPUT when empty, too long, or full). */
tm_status tm_sampling_params_add_stop(tm_sampling_params *p, const char *s, size_t len, tm_err *err);

/* A seed for requests that gave none: FNV-1a 64 over job_id, a 0xff byte,
 * custom_id (NULL = ""), then the splitmix64 finaliser. Stable across runs
 * and machines; the caller records it with the result. */
uint64_t tm_sampler_seed_from(const char *job_id, const char *custom_id);

/* A logit_bias key (a JSON object key) as a token id: canonical decimal
 * ("0", "42"; no sign, spaces or leading zeros), < 2^31; -1 otherwise.
 * Submit-time validation and request preparation use this one rule. */
int64_t tm_sampler_bias_key(const char *key);

/* Scratch for a vocabulary of `vocab` tokens (52 bytes per token, + 8 KiB). */
tm_status tm_sampler_create(int32_t vocab, tm_sampler **out, tm_err *err);
void tm_sampler_destroy(tm_sampler *s);
int32_t tm_sampler_vocab(const tm_sampler *s);

/* Sample the next token from logits[0..vocab).
 *
 *   request_key  distinguishes streams that share a seed: pass the choice
 *                index (0..n-1). With a user seed the same (seed, prompt,
 *                params) then reproduces, as in vLLM; without one the seed
 *                comes from tm_sampler_seed_from(job_id, custom_id).
 *   token_index  index of the token being generated (0 = first output token).
 *   prev         prompt tokens followed by generated tokens, n_prev in all,
 *                the first n_prompt of them the prompt. Ids outside
 *                [0, vocab) are ignored.
 *
 * Pipeline (float32 logits, double accumulations):
 *  0. Logits processors, as vLLM applies them before the penalties:
 *     logit_bias adds bias[i] to logit[bias_id[i]] (OpenAI; NaN counts as
 *     -inf); then, while n_prev - n_prompt < min_tokens, every id of
 *     eos_ids and stop_ids becomes -inf (vLLM's MinTokensLogitsProcessor).
 *     Requests with neither touch no logit: their results are unchanged.
 *  1. Penalties. repetition_penalty (HF/vLLM) over every distinct token in
 *     prompt + output: logit > 0 -> logit / r, else logit * r. Then OpenAI
 *     presence/frequency over *generated* tokens only:
 *     logit -= frequency * count + presence * (count > 0).
 *  2. temperature < TM_SAMPLER_GREEDY_EPS, or top_k == 1: greedy, the argmax
 *     of the penalised logits, ties -> lowest id; no draw is used.
 *  3. z = logit / temperature; w = tm_sampler_exp(z - z_max) (float), p =
 *     w / sum(w). Tokens are ranked by (z desc, id asc); every filter keeps a
 *     prefix of that ranking: top_k keeps the first k; top_p then keeps the
 *     shortest prefix whose mass (renormalised after top_k) is >= top_p
 *     (always >= 1 token; masses in double, the vocabulary total in the
 *     kernels' 8-lane order, the top_k total in id order);
 *     min_p then keeps p >= min_p * p_max. This is HF's and vLLM v0's order
 *     (vLLM v1 applies min_p before top_k/top_p; that differs only when
 *     min_p and top_p are both set).
 *  4. One uniform u in [0,1) (tm_philox_uniform(seed, request_key,
 *     token_index), 53 bits). The vocabulary is cut in blocks of 1024 ids;
 *     each block's kept weight is summed in double over 8 lanes (lane = id
 *     mod 8, in id order; then ((l0+l4)+(l1+l5))+((l2+l6)+(l3+l7)); the
 *     ids past the last multiple of 8 added after, in order); total = the
 *     block sums added in block order. The chosen block is the first whose
 *     running sum exceeds u * total; in it the kept tokens are walked in
 *     ascending id order from that running sum and the first whose running
 *     sum exceeds u * total is taken (the block's last kept token if
 *     rounding leaves none; the last kept token if no block crosses).
 *  Logprobs are the raw log-softmax of the *unprocessed* logits (before
 *  penalties and temperature), as vLLM returns by default.
 *
 * A NaN logit counts as -inf; if some processed logit is +inf the lowest
 * such id is chosen. Tokens whose weight exp(z - z_max) underflows to 0 are
 * never drawn. TM_ERR_INPUT when every logit is -inf/NaN,
 * when n_prompt > n_prev, or when params fail tm_sampling_params_check(). */
tm_status tm_sampler_sample(tm_sampler *s, const float *logits, const tm_sampling_params *p,
                            uint64_t request_key, uint64_t token_index,
                            const int32_t *prev, size_t n_prev, size_t n_prompt,
                            tm_sample_result *out, tm_err *err);

/* The set steps 1-3 keep (sorted by id ascending, nonzero weight only) —
 * what the draw chooses from; for tests and debugging. ids must hold vocab entries. For greedy
 * params the set is the one argmax token. */
tm_status tm_sampler_kept_set(tm_sampler *s, const float *logits, const tm_sampling_params *p,
                              const int32_t *prev, size_t n_prev, size_t n_prompt,
                              int32_t *ids, int32_t *n_ids, tm_err *err);

/* The sampler's exp, for x <= 0 (larger x count as 0): 0 below -104 (and
 * for -inf / NaN), else Cephes expf in float with FMA: k = rint(x * log2 e),
 * r = fma(k, -0.693359375, x), r = fma(k, 2.12194440e-4, r), p = Horner/FMA
 * of the degree-5 coefficients, p = fma(p, r*r, r) + 1, then p * 2^(k>>1) *
 * 2^(k - (k>>1)). Within 2 ulp of exp; the same bits on every CPU path and
 * in the GPU sampler (kernels/sample.cu smp_exp). */
float tm_sampler_exp(float x);

/* 1: use only the portable C passes (tests compare them with the AVX2 ones;
 * both give the same bits). 0: AVX2 + FMA when the CPU has them (default). */
void tm_sampler_set_portable(tm_sampler *s, int portable);

/* Step 1 only: out[0..vocab) = the penalised logits (NaN kept as is for
 * untouched tokens). The reference a CUDA penalty kernel is tested against. */
tm_status tm_sampler_penalize(tm_sampler *s, const float *logits, const tm_sampling_params *p,
                              const int32_t *prev, size_t n_prev, size_t n_prompt,
                              float *out, tm_err *err);

#endif
