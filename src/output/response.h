/* response.h — the OpenAI response body of one finished request.
 *
 * /v1/chat/completions -> a "chat.completion" object, /v1/completions -> a
 * "text_completion" object, each with choices (text, finish_reason, optional
 * logprobs in that endpoint's shape) and usage {prompt_tokens,
 * completion_tokens, total_tokens, prompt_tokens_details.cached_tokens}.
 * usage.completion_tokens_details.reasoning_tokens counts the tokens of
 * the reasoning split out of a chat response ("reasoning_content");
 * choices carry vLLM's "stop_reason". The logprobs shapes, the EOS entry
 * and the reasoning split are documented in docs/output.md.
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

/* A token as logprobs show it (docs/output.md): bytes = the raw bytes it
 * adds to the text at its position (tm_detok_piece: a SentencePiece token
 * keeps its leading space, a token holding part of a UTF-8 character gives
 * its own bytes), written as "bytes"; "token" is those bytes as a string
 * with each maximal invalid UTF-8 subpart replaced by U+FFFD (as vLLM's
 * decode shows it). special non-NULL: a special token that adds no text
 * (len 0): "token" is this string (e.g. "</s>"), "bytes" []. bytes == NULL:
 * the token has no text (no tokenizer, or decoding failed): "token" is
 * "token_id:<id>" and "bytes" is []. */
typedef struct tm_response_token {
    int32_t id;
    const char *bytes;
    size_t len;
    const char *special;            /* NUL-terminated, or NULL */
    float logprob;                  /* -inf is written as -9999.0 */
} tm_response_token;

/* One generated token with its alternatives (already cut to top_logprobs). */
typedef struct tm_response_logprob {
    tm_response_token tok;
    const tm_response_token *top;   /* [n_top], by logprob desc */
    int32_t n_top;
} tm_response_logprob;

/* choices[].stop_reason, as vLLM: what ended a "stop" choice. */
typedef enum tm_response_stop {
    TM_RESPONSE_STOP_NULL = 0,      /* null: length, or the model's EOS token */
    TM_RESPONSE_STOP_STRING,        /* the stop string that matched */
    TM_RESPONSE_STOP_TOKEN,         /* the stop token id (stop_token_ids, or an extra EOS id) */
} tm_response_stop;

typedef struct tm_response_choice {
    const char *text;               /* UTF-8, already cut at a stop string; the content
                                     * after the reasoning when reasoning is split out */
    size_t text_len;
    int text_null;                  /* chat: "content": null (the reasoning parser left none) */
    const char *reasoning;          /* chat: "reasoning_content" (UTF-8), NULL: null */
    size_t reasoning_len;
    const char *finish_reason;      /* "stop" | "length" */
    tm_response_stop stop_kind;
    const char *stop_str;           /* TM_RESPONSE_STOP_STRING: the string (UTF-8 or not: */
    size_t stop_len;                /*  invalid bytes written as U+FFFD) */
    int32_t stop_token;             /* TM_RESPONSE_STOP_TOKEN */
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
    int64_t reasoning_tokens;       /* usage.completion_tokens_details.reasoning_tokens */
    const int32_t *prompt_ids;      /* for return_token_ids */
    int32_t n_prompt;
    int return_token_ids;
    uint64_t seed;                  /* the effective seed (recorded as "seed") */
    int has_cost;                   /* 1: usage.cost = {gpu_seconds, energy_joules, usd} */
    double gpu_seconds, energy_joules, cost_usd; /* energy < 0: null (not measured) */
} tm_response;

/* Reasoning formats a chat response can be split by (vLLM's reasoning
 * parsers of the same names). */
typedef enum tm_reasoning_parser {
    TM_REASONING_NONE = 0,
    TM_REASONING_DEEPSEEK_R1,       /* the prompt opened <think>: text up to the first
                                     * </think> is reasoning; no </think>: all of it */
    TM_REASONING_QWEN3,             /* only a <think>...</think> pair in the text splits it */
} tm_reasoning_parser;

/* Split text[0..len) as vLLM's parser p does: *reasoning / *content point
 * into text (NULL: null). A "<think>" before the reasoning (and whatever
 * precedes it) and the "</think>" after it belong to neither. */
void tm_response_split_reasoning(tm_reasoning_parser p, const char *text, size_t len, const char **reasoning,
                                 size_t *reasoning_len, const char **content, size_t *content_len);

/* Serialise r as compact JSON into out (cleared first). */
tm_status tm_response_build(const tm_response *r, tm_buf *out, tm_err *err);

#endif
