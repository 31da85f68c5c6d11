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
 * seed as an unsigned 64-bit integer. The input is plain records (text,
 * ids, token bytes and logprobs): the worker converts its sampler results and
 * token texts when a request finishes, so output/ needs no queue, engine or
 * tokenizer type. The worker stores the body in the queue;
 * the batch output line that wraps it is written by tm_output_result_line
 * (output.h) when `tokenmill results` / `export` read it back.
 */
#ifndef TM_RESPONSE_H
#define TM_RESPONSE_H

#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"
#include "util/status.h"

/* Which OpenAI object the body is (output's own: it needs no queue type). */
typedef enum tm_response_kind {
    TM_RESPONSE_CHAT,               /* /v1/chat/completions -> "chat.completion" */
    TM_RESPONSE_COMPLETION,         /* /v1/completions -> "text_completion" */
} tm_response_kind;

/* A token as logprobs show it: its decoded bytes (may be a partial UTF-8
 * sequence; the JSON string then has U+FFFD for invalid bytes, "bytes" the
 * raw ones). bytes == NULL: the token has no text (no tokenizer, or decoding
 * failed): the string is "token_id:<id>" and "bytes" is empty. */
typedef struct tm_response_token {
    int32_t id;
    const char *bytes;
    size_t len;
    float logprob;                  /* -inf is written as -9999.0 */
} tm_response_token;

/* One generated token with its alternatives (already cut to top_logprobs). */
typedef struct tm_response_logprob {
    tm_response_token tok;
    const tm_response_token *top;   /* [n_top], by logprob desc */
    int32_t n_top;
} tm_response_logprob;

typedef struct tm_response_choice {
    const char *text;               /* UTF-8, already cut at a stop string */
    size_t text_len;
    const char *finish_reason;      /* "stop" | "length" */
    const int32_t *token_ids;       /* generated ids (kept after a stop string cut) */
    int32_t n_tokens;
    const tm_response_logprob *logprobs; /* [n_tokens], or NULL: "logprobs": null */
} tm_response_choice;

typedef struct tm_response {
    tm_response_kind kind;
    const char *id;                 /* e.g. "chatcmpl-<request id>" */
    const char *model;
    int64_t created;                /* unix seconds */
    const tm_response_choice *choices;
    int32_t n_choices;
    int64_t prompt_tokens, completion_tokens, cached_tokens;
    const int32_t *prompt_ids;      /* for return_token_ids */
    int32_t n_prompt;
    int return_token_ids;
    uint64_t seed;                  /* the effective seed (recorded as "seed") */
    int has_cost;                   /* 1: usage.cost = {gpu_seconds, energy_joules, usd} */
    double gpu_seconds, energy_joules, cost_usd; /* energy < 0: null (not measured) */
} tm_response;

/* Serialise r as compact JSON into out (cleared first). */
tm_status tm_response_build(const tm_response *r, tm_buf *out, tm_err *err);

#endif
