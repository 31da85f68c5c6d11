/* response.c — builds chat.completion / text_completion bodies with jansson. */
#include "output/response.h"

#include <jansson.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"
#include "util/version.h"

/* JSON has no -inf: a token of probability 0 gets -9999.0, as OpenAI does. */
static json_t *lp_real(float lp) { return json_real(isfinite(lp) ? (double)lp : -9999.0); }

/* s[0..n) as a JSON string, each maximal invalid subpart as U+FFFD. */
static json_t *lossy_string(const char *s, size_t n)
{
    json_t *str = json_stringn(s, n);
    if (str) return str;
    tm_buf b;
    tm_buf_init(&b);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t bad = 1, k = tm_utf8_seq(u, n, i, &bad);
        if (k) tm_buf_append(&b, s + i, k);
        else tm_buf_puts(&b, "\xef\xbf\xbd");
        i += k ? k : bad;
    }
    str = json_stringn(b.data ? b.data : "", b.len);
    tm_buf_free(&b);
    return str;
}

/* The "token" string of one logprobs entry, and (bytes_out non-NULL) its
 * "bytes" array: see tm_response_token. */
static json_t *token_text(const tm_response_token *t, json_t **bytes_out)
{
    json_t *str = NULL;
    if (t->special) str = json_string(t->special);
    else if (t->bytes) str = lossy_string(t->bytes, t->len);
    if (!str) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "token_id:%d", t->id);
        str = json_string(tmp);
    }
    if (bytes_out) {
        json_t *bytes = json_array();
        for (size_t i = 0; t->bytes && !t->special && i < t->len; i++)
            json_array_append_new(bytes, json_integer((unsigned char)t->bytes[i]));
        *bytes_out = bytes;
    }
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

/* One entry of a completions top_logprobs object, keyed by the token's
 * string; a key already taken (another token with the same text) becomes
 * "token_id:<id>" (vLLM's spelling of a token by id), so no entry is lost;
 * so does a text holding U+0000 (jansson reads no NUL in a key back). */
static void top_put(json_t *top, const tm_response_token *t)
{
    json_t *tt = token_text(t, NULL);
    const char *key = json_string_value(tt);
    size_t klen = json_string_length(tt); /* a key may hold U+0000 */
    char tmp[32];
    if (memchr(key, 0, klen) || json_object_getn(top, key, klen)) {
        snprintf(tmp, sizeof tmp, "token_id:%d", t->id);
        key = tmp;
        klen = strlen(tmp);
    }
    json_object_setn_new(top, key, klen, lp_real(t->logprob));
    json_decref(tt);
}

/* Characters (code points) that begin in b[0..n): UTF-8 lead bytes. */
static size_t count_chars(const char *b, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; b && i < n; i++) c += ((unsigned char)b[i] & 0xC0) != 0x80;
    return c;
}

/* The legacy shape. top_logprobs[i]: the sampled token first, then the
 * top_logprobs alternatives other than it (up to k+1 entries, as OpenAI and
 * vLLM: logprobs 0 gives the sampled token's alone). text_offset: characters
 * of the text before the token (code points begun before its first byte). */
static json_t *completion_logprobs(const tm_response_choice *c)
{
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    size_t offset = 0;
    for (int32_t i = 0; i < c->n_tokens; i++) {
        const tm_response_logprob *s = &c->logprobs[i];
        json_array_append_new(offs, json_integer((json_int_t)offset));
        if (!s->tok.special) offset += count_chars(s->tok.bytes, s->tok.len);
        json_array_append_new(tokens, token_text(&s->tok, NULL));
        json_array_append_new(lps, lp_real(s->tok.logprob));
        json_t *top = json_object();
        top_put(top, &s->tok);
        for (int32_t k = 0; k < s->n_top; k++)
            if (s->top[k].id != s->tok.id) top_put(top, &s->top[k]);
        json_array_append_new(tops, top);
    }
    json_t *lp = json_object();
    json_object_set_new(lp, "tokens", tokens);
    json_object_set_new(lp, "token_logprobs", lps);
    json_object_set_new(lp, "top_logprobs", tops);
    json_object_set_new(lp, "text_offset", offs);
    return lp;
}

static json_t *stop_reason(const tm_response_choice *c)
{
    switch (c->stop_kind) {
    case TM_RESPONSE_STOP_STRING: return lossy_string(c->stop_str ? c->stop_str : "", c->stop_str ? c->stop_len : 0);
    case TM_RESPONSE_STOP_TOKEN: return json_integer(c->stop_token);
    default: return json_null();
    }
}

void tm_response_split_reasoning(tm_reasoning_parser p, const char *text, size_t len, const char **reasoning,
                                 size_t *reasoning_len, const char **content, size_t *content_len)
{
    static const char open[] = "<think>", close[] = "</think>";
    *reasoning = NULL;
    *reasoning_len = 0;
    *content = text;
    *content_len = len;
    if (p == TM_REASONING_NONE || !text) return;
    const char *o = memmem(text, len, open, sizeof open - 1);
    const char *x = memmem(text, len, close, sizeof close - 1);
    if (p == TM_REASONING_QWEN3 && (!o || !x)) return; /* both or nothing */
    const char *r = o ? o + sizeof open - 1 : text, *end = text + len;
    x = memmem(r, (size_t)(end - r), close, sizeof close - 1);
    if (!x) { /* deepseek_r1: no end yet, all reasoning (qwen3: the pair was out of order) */
        if (p == TM_REASONING_QWEN3) return;
        *reasoning = r;
        *reasoning_len = (size_t)(end - r);
        *content = NULL;
        *content_len = 0;
        return;
    }
    *reasoning = r;
    *reasoning_len = (size_t)(x - r);
    const char *after = x + sizeof close - 1;
    *content = after < end ? after : NULL; /* vLLM: empty content is null */
    *content_len = (size_t)(end - after);
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
        json_t *text = c->text_null ? json_null() : json_stringn(c->text ? c->text : "", c->text_len);
        json_t *reasoning = c->reasoning ? json_stringn(c->reasoning, c->reasoning_len) : json_null();
        if (!text || !reasoning) {
            json_decref(text);
            json_decref(reasoning);
            json_decref(ch);
            json_decref(choices);
            json_decref(o);
            return tm_errf(err, TM_ERR_INTERNAL, "response: choice %d text is not valid UTF-8", i);
        }
        if (chat) {
            json_t *msg = json_object();
            json_object_set_new(msg, "role", json_string("assistant"));
            json_object_set_new(msg, "content", text);
            json_object_set_new(msg, "refusal", json_null());
            json_object_set_new(msg, "reasoning_content", reasoning);
            json_object_set_new(ch, "message", msg);
        } else {
            json_object_set_new(ch, "text", text);
            json_decref(reasoning);
        }
        json_object_set_new(ch, "logprobs", c->logprobs ? (chat ? chat_logprobs(c) : completion_logprobs(c))
                                                        : json_null());
        json_object_set_new(ch, "finish_reason", json_string(c->finish_reason ? c->finish_reason : "stop"));
        json_object_set_new(ch, "stop_reason", stop_reason(c));
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
    json_t *cdetails = json_object();
    json_object_set_new(cdetails, "reasoning_tokens", json_integer(r->reasoning_tokens));
    json_object_set_new(usage, "completion_tokens_details", cdetails);
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
