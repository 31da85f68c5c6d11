/* response.h — the OpenAI response body of one finished request.
 *
 * /v1/chat/completions -> a "chat.completion" object, /v1/completions -> a
 * "text_completion" object, each with choices (text, finish_reason, optional
 * logprobs in that endpoint's shape) and usage {prompt_tokens,
 * completion_tokens, total_tokens, prompt_tokens_details.cached_tokens}.
 * usage also carries "cost": {gpu_seconds, energy_joules, usd}, the same
 * numbers the queue stores for the request (request_costs view).
 * With return_token_ids (as vLLM accepts it) the body also carries
 * prompt_token_ids and each choice its token_ids. "seed" is the effective
 * seed as an unsigned 64-bit integer. The worker stores the body in the queue;
 * the batch output line that wraps it is written by tm_output_result_line
 * (output.h) when `tokenmill results` / `export` read it back.
 */
#ifndef TM_RESPONSE_H
#define TM_RESPONSE_H

#include <stddef.h>
#include <stdint.h>
#include "engine/sampler.h"
#include "queue/validate.h"
#include "tokenizer/tokenizer.h"
#include "util/buf.h"
#include "util/status.h"

typedef struct tm_response_choice {
    const char *text;               /* UTF-8, already cut at a stop string */
    size_t text_len;
    const char *finish_reason;      /* "stop" | "length" */
    const int32_t *token_ids;       /* generated ids (kept after a stop string cut) */
    int32_t n_tokens;
    const tm_sample_result *samples;/* per generated token, or NULL (no logprobs) */
} tm_response_choice;

typedef struct tm_response {
    tm_endpoint endpoint;
    const char *id;                 /* e.g. "chatcmpl-<request id>" */
    const char *model;
    int64_t created;                /* unix seconds */
    const tm_response_choice *choices;
    int32_t n_choices;
    int64_t prompt_tokens, completion_tokens, cached_tokens;
    const int32_t *prompt_ids;      /* for return_token_ids */
    int32_t n_prompt;
    int return_token_ids;
    int logprobs;                   /* 1: include logprobs from samples */
    int32_t top_logprobs;           /* alternatives per token */
    uint64_t seed;                  /* the effective seed (recorded as "seed") */
    int has_cost;                   /* 1: usage.cost = {gpu_seconds, energy_joules, usd} */
    double gpu_seconds, energy_joules, cost_usd; /* energy < 0: null (not measured) */
    const tm_tokenizer *tok;        /* token strings for logprobs; may be NULL */
} tm_response;

/* Serialise r as compact JSON into out (cleared first). */
tm_status tm_response_build(const tm_response *r, tm_buf *out, tm_err *err);

#endif
