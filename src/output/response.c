/* response.c — builds chat.completion / text_completion bodies with jansson. */
#include "output/response.h"

#include <jansson.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/version.h"

/* JSON has no -inf: a token of probability 0 gets -9999.0, as OpenAI does. */
static json_t *lp_real(float lp) { return json_real(isfinite(lp) ? (double)lp : -9999.0); }

/* The text of one token for logprobs (may be a partial UTF-8 sequence: then
 * jansson gets the bytes with invalid sequences replaced by U+FFFD). */
static json_t *token_text(const tm_response_token *t, json_t **bytes_out)
{
    json_t *bytes = json_array();
    json_t *str = NULL;
    if (t->bytes) {
        for (size_t i = 0; i < t->len; i++) json_array_append_new(bytes, json_integer((unsigned char)t->bytes[i]));
        str = json_stringn(t->bytes, t->len);
        if (!str) { /* not valid UTF-8 on its own */
            tm_buf b;
            tm_buf_init(&b);
            for (size_t i = 0; i < t->len; i++) {
                unsigned char c = (unsigned char)t->bytes[i];
                if (c < 0x80) tm_buf_append(&b, &c, 1);
                else tm_buf_puts(&b, "\xef\xbf\xbd");
            }
            str = json_stringn(b.data ? b.data : "", b.len);
            tm_buf_free(&b);
        }
    }
    if (!str) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "token_id:%d", t->id);
        str = json_string(tmp);
    }
    if (bytes_out) *bytes_out = bytes; else json_decref(bytes);
    return str;
}

static json_t *chat_logprobs(const tm_response_choice *c)
{
    json_t *content = json_array();
    for (int32_t i = 0; i < c->n_tokens; i++) {
        const tm_response_logprob *s = &c->logprobs[i];
        json_t *bytes;
        json_t *e = json_object();
        json_object_set_new(e, "token", token_text(&s->tok, &bytes));
        json_object_set_new(e, "logprob", lp_real(s->tok.logprob));
        json_object_set_new(e, "bytes", bytes);
        json_t *top = json_array();
        for (int32_t k = 0; k < s->n_top; k++) {
            json_t *t = json_object(), *tb;
            json_object_set_new(t, "token", token_text(&s->top[k], &tb));
            json_object_set_new(t, "logprob", lp_real(s->top[k].logprob));
            json_object_set_new(t, "bytes", tb);
            json_array_append_new(top, t);
        }
        json_object_set_new(e, "top_logprobs", top);
        json_array_append_new(content, e);
    }
    json_t *lp = json_object();
    json_object_set_new(lp, "content", content);
    json_object_set_new(lp, "refusal", json_null());
    return lp;
}

static json_t *completion_logprobs(const tm_response_choice *c)
{
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    size_t offset = 0;
    for (int32_t i = 0; i < c->n_tokens; i++) {
        const tm_response_logprob *s = &c->logprobs[i];
        json_t *t = token_text(&s->tok, NULL);
        json_array_append_new(offs, json_integer((json_int_t)offset));
        offset += json_string_length(t);
        json_array_append_new(tokens, t);
        json_array_append_new(lps, lp_real(s->tok.logprob));
        json_t *top = json_object();
        for (int32_t k = 0; k < s->n_top; k++) {
            json_t *tt = token_text(&s->top[k], NULL);
            json_object_set_new(top, json_string_value(tt), lp_real(s->top[k].logprob));
            json_decref(tt);
        }
        json_array_append_new(tops, top);
    }
    json_t *lp = json_object();
    json_object_set_new(lp, "tokens", tokens);
    json_object_set_new(lp, "token_logprobs", lps);
    json_object_set_new(lp, "top_logprobs", tops);
    json_object_set_new(lp, "text_offset", offs);
    return lp;
}

static json_t *id_array(const int32_t *ids, int32_t n)
{
    json_t *a = json_array();
    for (int32_t i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    return a;
}

tm_status tm_response_build(const tm_response *r, tm_buf *out, tm_err *err)
{
    int chat = r->kind == TM_RESPONSE_CHAT;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(r->id ? r->id : ""));
    json_object_set_new(o, "object", json_string(chat ? "chat.completion" : "text_completion"));
    json_object_set_new(o, "created", json_integer(r->created));
    json_object_set_new(o, "model", json_string(r->model ? r->model : ""));
    json_t *choices = json_array();
    for (int32_t i = 0; i < r->n_choices; i++) {
        const tm_response_choice *c = &r->choices[i];
        json_t *ch = json_object();
        json_object_set_new(ch, "index", json_integer(i));
        json_t *text = json_stringn(c->text ? c->text : "", c->text_len);
        if (!text) {
            json_decref(choices);
            json_decref(o);
            return tm_errf(err, TM_ERR_INTERNAL, "response: choice %d text is not valid UTF-8", i);
        }
        if (chat) {
            json_t *msg = json_object();
            json_object_set_new(msg, "role", json_string("assistant"));
            json_object_set_new(msg, "content", text);
            json_object_set_new(msg, "refusal", json_null());
            json_object_set_new(ch, "message", msg);
        } else {
            json_object_set_new(ch, "text", text);
        }
        json_object_set_new(ch, "logprobs", c->logprobs ? (chat ? chat_logprobs(c) : completion_logprobs(c))
                                                        : json_null());
        json_object_set_new(ch, "finish_reason", json_string(c->finish_reason ? c->finish_reason : "stop"));
        if (r->return_token_ids) json_object_set_new(ch, "token_ids", id_array(c->token_ids, c->n_tokens));
        json_array_append_new(choices, ch);
    }
    json_object_set_new(o, "choices", choices);
    json_t *usage = json_object();
    json_object_set_new(usage, "prompt_tokens", json_integer(r->prompt_tokens));
    json_object_set_new(usage, "completion_tokens", json_integer(r->completion_tokens));
    json_object_set_new(usage, "total_tokens", json_integer(r->prompt_tokens + r->completion_tokens));
    json_t *details = json_object();
    json_object_set_new(details, "cached_tokens", json_integer(r->cached_tokens));
    json_object_set_new(usage, "prompt_tokens_details", details);
    if (r->has_cost) {
        json_t *cost = json_object();
        json_object_set_new(cost, "gpu_seconds", json_real(r->gpu_seconds));
        json_object_set_new(cost, "energy_joules", r->energy_joules >= 0 ? json_real(r->energy_joules) : json_null());
        json_object_set_new(cost, "usd", json_real(r->cost_usd));
        json_object_set_new(usage, "cost", cost);
    }
    json_object_set_new(o, "usage", usage);
    json_object_set_new(o, "system_fingerprint", json_string("tokenmill-" TM_VERSION));
    /* "seed" is a uint64 (derived seeds use all 64 bits): jansson's integers
     * are signed, so it is printed here, then prompt_token_ids, keeping the
     * key order: ..., system_fingerprint, seed, prompt_token_ids. */
    json_t *ids = r->return_token_ids ? id_array(r->prompt_ids, r->n_prompt) : NULL;
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *is = ids ? json_dumps(ids, JSON_COMPACT) : NULL;
    json_decref(o);
    json_decref(ids);
    size_t n = s ? strlen(s) : 0;
    char seed[48];
    snprintf(seed, sizeof seed, ",\"seed\":%" PRIu64, r->seed);
    tm_status st = !s || n < 2 || (r->return_token_ids && !is) ? TM_ERR_NOMEM : TM_OK;
    tm_buf_clear(out);
    if (!st) st = tm_buf_append(out, s, n - 1); /* without the closing brace */
    if (!st) st = tm_buf_puts(out, seed);
    if (!st && is) st = tm_buf_puts(out, ",\"prompt_token_ids\":");
    if (!st && is) st = tm_buf_puts(out, is);
    if (!st) st = tm_buf_puts(out, "}");
    free(s);
    free(is);
    return st ? tm_errf(err, st, "response: out of memory") : TM_OK;
}
