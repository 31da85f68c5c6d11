/* prepare.c — request body JSON -> prompt ids + tm_sampling_params. */
#include "worker/prepare.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

void tm_prepared_clear(tm_prepared *p)
{
    if (!p) return;
    free(p->prompt);
    memset(p, 0, sizeof *p);
}

static int get_num(json_t *body, const char *key, double *out)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v) || !json_is_number(v)) return 0;
    *out = json_number_value(v);
    return 1;
}

static tm_status encode(const tm_tokenizer *tok, const char *text, size_t len, int add_bos,
                        tm_prepared *out, tm_err *err)
{
    int32_t *ids = NULL;
    size_t n = 0;
    tm_status st = tm_tokenizer_encode(tok, text, len, add_bos, &ids, &n, err);
    if (st) return tm_err_prefix(err, TM_ERR_INPUT, "cannot tokenize the prompt");
    if (n == 0 || n > INT32_MAX / 4) {
        free(ids);
        return tm_errf(err, TM_ERR_INPUT, "the prompt encodes to %zu tokens", n);
    }
    out->prompt = ids;
    out->n_prompt = (int32_t)n;
    return TM_OK;
}

static tm_status build_prompt(const tm_prepare_ctx *ctx, json_t *body, tm_prepared *out, tm_err *err)
{
    if (out->endpoint == TM_ENDPOINT_CHAT) {
        if (!ctx->tok) return tm_errf(err, TM_ERR_INPUT, "this model has no tokenizer: chat requests cannot run");
        if (!ctx->chat)
            return tm_errf(err, TM_ERR_INPUT, "this model has no chat template tokenmill knows "
                                              "(run with --chat-template NAME)");
        tm_chat_conv *conv = NULL;
        tm_status st = tm_chat_conv_from_json(json_object_get(body, "messages"), &conv, err);
        if (st) return tm_err_prefix(err, TM_ERR_INPUT, "body");
        tm_buf text;
        tm_buf_init(&text);
        st = tm_chat_render(ctx->chat, tm_chat_conv_messages(conv), tm_chat_conv_count(conv), 1,
                            tm_tokenizer_bos_token(ctx->tok), tm_tokenizer_eos_token(ctx->tok), &text, err);
        tm_chat_conv_destroy(conv);
        if (st) {
            tm_buf_free(&text);
            return tm_err_prefix(err, TM_ERR_INPUT, "the chat template cannot render this conversation");
        }
        st = encode(ctx->tok, text.data ? text.data : "", text.len, 0, out, err);
        tm_buf_free(&text);
        return st;
    }
    json_t *p = json_object_get(body, "prompt");
    if (json_is_string(p)) {
        if (!ctx->tok) return tm_errf(err, TM_ERR_INPUT, "this model has no tokenizer: give the prompt as token ids");
        return encode(ctx->tok, json_string_value(p), json_string_length(p), tm_tokenizer_add_bos(ctx->tok), out, err);
    }
    if (json_is_array(p) && json_array_size(p) > 0) {
        size_t n = json_array_size(p);
        if (n > INT32_MAX / 4) return tm_errf(err, TM_ERR_INPUT, "body.prompt: too many tokens");
        out->prompt = malloc(n * sizeof *out->prompt);
        if (!out->prompt) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_array_get(p, i);
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
                return tm_errf(err, TM_ERR_INPUT, "body.prompt[%zu]: must be a token id", i);
            out->prompt[i] = (int32_t)json_integer_value(v);
        }
        out->n_prompt = (int32_t)n;
        return TM_OK;
    }
    return tm_errf(err, TM_ERR_INPUT, "body.prompt: must be a string or a non-empty list of token ids");
}

static tm_status add_stop(tm_sampling_params *sp, json_t *v, tm_err *err)
{
    if (!v || json_is_null(v)) return TM_OK;
    if (json_is_string(v)) return tm_sampling_params_add_stop(sp, json_string_value(v), json_string_length(v), err);
    if (!json_is_array(v)) return tm_errf(err, TM_ERR_INPUT, "body.stop: must be a string or a list of strings");
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) {
        if (!json_is_string(s)) return tm_errf(err, TM_ERR_INPUT, "body.stop[%zu]: must be a string", i);
        tm_status st = tm_sampling_params_add_stop(sp, json_string_value(s), json_string_length(s), err);
        if (st) return tm_err_prefix(err, st, "body.stop[%zu]", i);
    }
    return TM_OK;
}

tm_status tm_prepare_request(const tm_prepare_ctx *ctx, const char *url, const char *body_json,
                             const char *job_id, const char *custom_id, tm_prepared *out, tm_err *err)
{
    memset(out, 0, sizeof *out);
    if (url && !strcmp(url, "/v1/chat/completions")) out->endpoint = TM_ENDPOINT_CHAT;
    else if (url && !strcmp(url, "/v1/completions")) out->endpoint = TM_ENDPOINT_COMPLETIONS;
    else return tm_errf(err, TM_ERR_INPUT, "url: unsupported endpoint '%s'", url ? url : "");
    json_error_t je;
    json_t *body = json_loads(body_json ? body_json : "", 0, &je);
    if (!json_is_object(body)) {
        json_decref(body);
        return tm_errf(err, TM_ERR_INPUT, "body: not a JSON object");
    }
    tm_status st = build_prompt(ctx, body, out, err);
    if (st) goto done;

    tm_sampling_params *sp = &out->params;
    tm_sampling_params_default(sp);
    const tm_model_config *c = ctx->cfg;
    if (c && c->has_temperature) sp->temperature = c->gen_temperature;
    if (c && c->has_top_p) sp->top_p = c->gen_top_p;
    if (c && c->has_top_k) sp->top_k = c->gen_top_k;
    double d;
    if (get_num(body, "temperature", &d)) sp->temperature = (float)d;
    if (get_num(body, "top_p", &d)) sp->top_p = (float)d;
    if (get_num(body, "top_k", &d)) sp->top_k = (int32_t)d;
    if (get_num(body, "min_p", &d)) sp->min_p = (float)d;
    if (get_num(body, "presence_penalty", &d)) sp->presence_penalty = (float)d;
    if (get_num(body, "frequency_penalty", &d)) sp->frequency_penalty = (float)d;
    if (get_num(body, "repetition_penalty", &d)) sp->repetition_penalty = (float)d;
    json_t *v;
    if ((v = json_object_get(body, "max_completion_tokens")) && json_is_integer(v))
        sp->max_tokens = (int32_t)(json_integer_value(v) > INT32_MAX ? INT32_MAX : json_integer_value(v));
    else if ((v = json_object_get(body, "max_tokens")) && json_is_integer(v))
        sp->max_tokens = (int32_t)(json_integer_value(v) > INT32_MAX ? INT32_MAX : json_integer_value(v));
    if ((v = json_object_get(body, "seed")) && json_is_integer(v)) {
        sp->seed = (uint64_t)json_integer_value(v);
        sp->has_seed = 1;
    } else {
        sp->seed = tm_sampler_seed_from(job_id, custom_id); /* recorded in the response */
        sp->has_seed = 0;
    }
    v = json_object_get(body, "logprobs");
    if (out->endpoint == TM_ENDPOINT_CHAT) {
        sp->logprobs = json_is_true(v);
        json_t *t = json_object_get(body, "top_logprobs");
        if (sp->logprobs && json_is_integer(t)) sp->top_logprobs = (int32_t)json_integer_value(t);
    } else if (json_is_integer(v)) {
        sp->logprobs = 1;
        sp->top_logprobs = (int32_t)json_integer_value(v);
    }
    sp->ignore_eos = json_is_true(json_object_get(body, "ignore_eos"));
    if ((v = json_object_get(body, "stop_token_ids")) && json_is_array(v)) {
        size_t i;
        json_t *id;
        json_array_foreach(v, i, id) {
            if (!json_is_integer(id) || sp->n_stop_ids >= TM_SAMPLER_MAX_STOP_IDS) {
                st = tm_errf(err, TM_ERR_INPUT, "body.stop_token_ids[%zu]: must be a token id (at most %d)", i,
                             TM_SAMPLER_MAX_STOP_IDS);
                goto done;
            }
            sp->stop_ids[sp->n_stop_ids++] = (int32_t)json_integer_value(id);
        }
    }
    if ((st = add_stop(sp, json_object_get(body, "stop"), err))) goto done;
    json_int_t n_req = 1;
    if ((v = json_object_get(body, "n")) && json_is_integer(v)) n_req = json_integer_value(v);
    out->n = n_req >= 1 && n_req <= TM_PREPARE_MAX_N ? (int32_t)n_req : 0;
    if (!out->n) {
        st = tm_errf(err, TM_ERR_INPUT, "body.n: must be between 1 and %d", TM_PREPARE_MAX_N);
        goto done;
    }
    out->return_token_ids = json_is_true(json_object_get(body, "return_token_ids"));
    st = tm_sampling_params_check(sp, c ? c->vocab_size : INT32_MAX, err);
    if (st) st = tm_err_prefix(err, TM_ERR_INPUT, "body");
done:
    json_decref(body);
    if (st) tm_prepared_clear(out);
    return st;
}
