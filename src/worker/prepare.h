/* prepare.h — a claimed request's body -> prompt token ids + sampling params.
 *
 * Chat: messages rendered with the model's chat template (add_generation_prompt)
 * and encoded without an extra BOS (the template writes it). Completions: a
 * string prompt is encoded with BOS as the tokenizer_config says; a list of
 * ids is taken as is. Chat options (vLLM): add_generation_prompt (default
 * true), continue_final_message, chat_template_kwargs (template variables),
 * add_special_tokens (BOS at encode: chat default false, completions true);
 * the developer role is rendered as system. Sampling fields follow OpenAI (plus vLLM's top_k,
 * min_p, repetition_penalty, ignore_eos, stop_token_ids, min_tokens,
 * return_token_ids; logit_bias as OpenAI: token-id keys, values in [-100, 100]);
 * fields the request leaves out take the model's generation_config.json
 * defaults (temperature, top_p, top_k), as vLLM does. Anything wrong with
 * the request is a per-request error (code + message), never fatal.
 */
#ifndef TM_PREPARE_H
#define TM_PREPARE_H

#include <stdint.h>
#include "engine/sampler.h"
#include "model/model.h"
#include "queue/validate.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"
#include "util/status.h"

/* Choices per request (body.n), the most a request may ask for. */
#define TM_PREPARE_MAX_N 128

typedef struct tm_prepared {
    tm_endpoint endpoint;
    int32_t *prompt;            /* malloc'd ids */
    int32_t n_prompt;
    int32_t n;                  /* choices */
    tm_sampling_params params;  /* seed filled (request's or derived) */
    int return_token_ids;
} tm_prepared;

typedef struct tm_prepare_ctx {
    const tm_tokenizer *tok;          /* NULL: only id-list prompts work (the worker claims no others) */
    const tm_chat_template *chat;     /* NULL: chat requests fail (the worker claims none) */
    const tm_model_config *cfg;       /* generation defaults */
} tm_prepare_ctx;

/* Fills out (free with tm_prepared_clear). On a bad request returns
 * TM_ERR_INPUT with a message fit for the error file. */
tm_status tm_prepare_request(const tm_prepare_ctx *ctx, const char *url, const char *body_json,
                             const char *job_id, const char *custom_id, tm_prepared *out, tm_err *err);
void tm_prepared_clear(tm_prepared *p);


#endif
