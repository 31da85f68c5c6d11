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

/* messages as vLLM hands them to the template: the developer role renamed
 * system (OpenAI does so for models without a developer role; no chat
 * template knows one) and content null (an assistant turn that only calls
 * tools) as "" (vLLM's string content format joins no parts). A new reference. */
static json_t *shape_messages(json_t *msgs)
{
    size_t i;
    json_t *m;
    json_t *copy = NULL;
    json_array_foreach(msgs, i, m) {
        json_t *role = json_object_get(m, "role");
        int dev = json_is_string(role) && !strcmp(json_string_value(role), "developer");
        int null_content = json_is_object(m) && json_is_null(json_object_get(m, "content"));
        if (!dev && !null_content) continue;
        if (!copy && !(copy = json_copy(msgs))) return NULL;
        json_t *mc = json_copy(m);
        if (!mc || (dev && json_object_set_new(mc, "role", json_string("system"))) ||
            (null_content && json_object_set_new(mc, "content", json_string(""))) || json_array_set_new(copy, i, mc)) {
            json_decref(mc);
            json_decref(copy);
            return NULL;
        }
    }
    return copy ? copy : json_incref(msgs);
}

/* continue_final_message (transformers / vLLM): cut the rendered text right
 * after the last message's content, so the model continues it. */
static tm_status cut_after_final(json_t *msgs, tm_buf *text, size_t start, tm_err *err)
{
    json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
    json_t *c = json_object_get(last, "content");
    if (json_is_array(c)) c = json_object_get(json_array_get(c, json_array_size(c) - 1), "text");
    if (!json_is_string(c) || json_string_length(c) == 0)
        return tm_errf(err, TM_ERR_INPUT, "body.continue_final_message: the last message has no text content");
    const char *want = json_string_value(c);
    size_t wl = json_string_length(c);
    for (int pass = 0; pass < 2; pass++) { /* as given, then trimmed (templates that trim) */
        const char *w = want;
        size_t n = wl;
        if (pass) {
            while (n && strchr(" \t\r\n", *w)) w++, n--;
            while (n && strchr(" \t\r\n", w[n - 1])) n--;
            if (!n) break;
        }
        for (size_t at = text->len - start; at >= n; at--) {
            if (memcmp(text->data + start + at - n, w, n) == 0) {
                text->len = start + at;
                text->data[text->len] = 0;
                return TM_OK;
            }
        }
    }
    return tm_errf(err, TM_ERR_INPUT, "body.continue_final_message: the template does not write the last "
                                      "message's content as given");
}

/* Chat: the request's messages through the chat template with its options. */
static tm_status render_chat(const tm_prepare_ctx *ctx, json_t *body, tm_buf *text, tm_err *err)
{
    json_t *v = json_object_get(body, "add_generation_prompt");
    int agp = json_is_boolean(v) ? json_is_true(v) : 1;
    int cont = json_is_true(json_object_get(body, "continue_final_message"));
    if (cont && agp && json_is_true(v))
        return tm_errf(err, TM_ERR_INPUT, "body: continue_final_message and add_generation_prompt cannot both be true");
    if (cont) agp = 0;
    json_t *kw = json_object_get(body, "chat_template_kwargs");
    if (json_is_null(kw)) kw = NULL;
    if (kw && !json_is_object(kw)) return tm_errf(err, TM_ERR_INPUT, "body.chat_template_kwargs: must be an object");
    json_t *msgs = json_object_get(body, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return tm_errf(err, TM_ERR_INPUT, "body.messages: must be a non-empty array");
    if (!tm_chat_template_is_jinja(ctx->chat)) { /* a built-in would drop the calls silently */
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m) {
            json_t *tc = json_object_get(m, "tool_calls");
            if (json_array_size(tc) > 0)
                return tm_errf(err, TM_ERR_INPUT, "body.messages[%zu].tool_calls: chat template %s (built-in) cannot "
                                                  "render tool calls", i, tm_chat_template_name(ctx->chat));
        }
    }
    if (!(msgs = shape_messages(msgs))) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    tm_chat_opts o = {.add_generation_prompt = agp,
                      .bos_token = tm_tokenizer_bos_token(ctx->tok),
                      .eos_token = tm_tokenizer_eos_token(ctx->tok),
                      .kwargs = kw};
    tm_status st = tm_chat_render_json(ctx->chat, msgs, &o, text, err);
    if (st) st = tm_err_prefix(err, TM_ERR_INPUT, "the chat template cannot render this conversation");
    else if (cont) st = cut_after_final(msgs, text, 0, err);
    json_decref(msgs);
    return st;
}

/* add_special_tokens (vLLM): chat default false (the template writes BOS),
 * completions default true (the tokenizer's add_bos_token). */
static int want_bos(const tm_prepare_ctx *ctx, json_t *body, int dflt)
{
    json_t *v = json_object_get(body, "add_special_tokens");
    int on = json_is_boolean(v) ? json_is_true(v) : dflt;
    return on && tm_tokenizer_add_bos(ctx->tok);
}

static tm_status build_prompt(const tm_prepare_ctx *ctx, json_t *body, tm_prepared *out, tm_err *err)
{
    if (out->endpoint == TM_ENDPOINT_CHAT) {
        if (!ctx->tok) return tm_errf(err, TM_ERR_INPUT, "this model has no tokenizer: chat requests cannot run");
        if (!ctx->chat)
            return tm_errf(err, TM_ERR_INPUT, "this model has no chat template tokenmill knows "
                                              "(run with --chat-template NAME)");
        tm_buf text;
        tm_buf_init(&text);
        tm_status st = render_chat(ctx, body, &text, err);
        if (!st) st = encode(ctx->tok, text.data ? text.data : "", text.len, want_bos(ctx, body, 0), out, err);
        tm_buf_free(&text);
        return st;
    }
    json_t *p = json_object_get(body, "prompt");
    if (json_is_string(p)) {
        if (!ctx->tok) return tm_errf(err, TM_ERR_INPUT, "this model has no tokenizer: give the prompt as token ids");
        return encode(ctx->tok, json_string_value(p), json_string_length(p), want_bos(ctx, body, 1), out, err);
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

/* logit_bias {"id": bias} and min_tokens into sp (ranges as validate.c). */
static tm_status take_bias(tm_sampling_params *sp, json_t *body, tm_err *err)
{
    json_t *v = json_object_get(body, "min_tokens");
    if (json_is_integer(v)) {
        json_int_t m = json_integer_value(v);
        if (m < 0 || m > INT32_MAX) return tm_errf(err, TM_ERR_INPUT, "body.min_tokens: must be an integer >= 0");
        sp->min_tokens = (int32_t)m;
    }
    v = json_object_get(body, "logit_bias");
    if (!v || json_is_null(v)) return TM_OK;
    if (!json_is_object(v)) return tm_errf(err, TM_ERR_INPUT, "body.logit_bias: must be an object");
    if (json_object_size(v) > TM_SAMPLER_MAX_LOGIT_BIAS)
        return tm_errf(err, TM_ERR_INPUT, "body.logit_bias: at most %d entries", TM_SAMPLER_MAX_LOGIT_BIAS);
    const char *k;
    json_t *b;
    json_object_foreach(v, k, b) {
        int64_t id = tm_sampler_bias_key(k);
        if (id < 0) return tm_errf(err, TM_ERR_INPUT, "body.logit_bias: key '%.40s' is not a token id", k);
        if (!json_is_number(b) || !(fabs(json_number_value(b)) <= TM_SAMPLER_MAX_BIAS))
            return tm_errf(err, TM_ERR_INPUT, "body.logit_bias[\"%s\"]: must be a number in [-100, 100]", k);
        sp->bias_id[sp->n_bias] = (int32_t)id;
        sp->bias[sp->n_bias++] = (float)json_number_value(b);
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
    if ((st = take_bias(sp, body, err))) goto done;
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
