/* validate_body.c — the request body field table and the chat messages.
 *
 * Every body field of OpenAI's chat completions and completions APIs and of
 * vLLM's extra parameters is in TABLE, with what tokenmill does with it:
 * honoured, honoured only with the value that changes nothing (anything
 * else refused), ignored (it cannot change the result), or refused. A field
 * that changes the result is never silently ignored. docs/requests.md is the
 * same table for users (tests/unit/test_validate_fields.c checks they agree).
 * Unknown fields, and fields of the other endpoint, are refused unless the
 * caller allows unknown fields (submit --allow-unknown-fields: then ignored,
 * as vLLM does).
 */
#include "queue/validate_int.h"
#include "engine/sampler.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define CHAT 1u
#define COMP 2u
#define BOTH 3u
#define STRUCTURED "not supported yet (structured output)"

typedef enum rule {
    R_CHECKED,    /* honoured; range checks in validate.c */
    R_FN,         /* honoured or no-op-only; fn checks it */
    R_FALSE_ONLY, /* a boolean; true is refused (why) */
    R_TRUE_ONLY,  /* a boolean; false is refused (why) */
    R_IGNORE,     /* accepted, no effect (documented) */
    R_REFUSE,     /* refused unless null (why) */
    R_STRUCT,     /* refused unless null: structured output (issue 15) */
} rule;

typedef void (*check_fn)(tm_problems *p, json_t *body, json_t *v, const char *f);

typedef struct field {
    const char *name;
    unsigned ep;
    rule r;
    tm_field_class cls;
    const char *why;
    check_fn fn;
} field;

static void chk_logit_bias(tm_problems *p, json_t *body, json_t *v, const char *f);
static void chk_min_tokens(tm_problems *p, json_t *body, json_t *v, const char *f);
static void chk_kwargs(tm_problems *p, json_t *body, json_t *v, const char *f);
static void chk_bool(tm_problems *p, json_t *body, json_t *v, const char *f);
static void chk_continue(tm_problems *p, json_t *body, json_t *v, const char *f);
static void chk_best_of(tm_problems *p, json_t *body, json_t *v, const char *f);
static void chk_response_format(tm_problems *p, json_t *body, json_t *v, const char *f);
static void chk_tools(tm_problems *p, json_t *body, json_t *v, const char *f);
static void chk_tool_choice(tm_problems *p, json_t *body, json_t *v, const char *f);
static void chk_function_call(tm_problems *p, json_t *body, json_t *v, const char *f);
static void chk_modalities(tm_problems *p, json_t *body, json_t *v, const char *f);
static void chk_suffix(tm_problems *p, json_t *body, json_t *v, const char *f);

#define H TM_FIELD_HONOURED
#define P TM_FIELD_NOOP_ONLY
#define I TM_FIELD_IGNORED
#define X TM_FIELD_REFUSED

/* Sorted by nothing in particular: grouped as docs/requests.md groups them. */
static const field TABLE[] = {
    /* OpenAI, honoured */
    {"model", BOTH, R_CHECKED, H, NULL, NULL},
    {"messages", CHAT, R_CHECKED, H, NULL, NULL},
    {"prompt", COMP, R_CHECKED, H, NULL, NULL},
    {"max_tokens", BOTH, R_CHECKED, H, NULL, NULL},
    {"max_completion_tokens", BOTH, R_CHECKED, H, NULL, NULL},
    {"temperature", BOTH, R_CHECKED, H, NULL, NULL},
    {"top_p", BOTH, R_CHECKED, H, NULL, NULL},
    {"n", BOTH, R_CHECKED, H, NULL, NULL},
    {"stop", BOTH, R_CHECKED, H, NULL, NULL},
    {"seed", BOTH, R_CHECKED, H, NULL, NULL},
    {"presence_penalty", BOTH, R_CHECKED, H, NULL, NULL},
    {"frequency_penalty", BOTH, R_CHECKED, H, NULL, NULL},
    {"logprobs", BOTH, R_CHECKED, H, NULL, NULL},
    {"top_logprobs", CHAT, R_CHECKED, H, NULL, NULL},
    {"logit_bias", BOTH, R_FN, H, NULL, chk_logit_bias},
    {"best_of", COMP, R_FN, P, "not supported yet (returning the best of several candidates)", chk_best_of},
    /* OpenAI, accepted only with the value that changes nothing */
    {"stream", BOTH, R_FALSE_ONLY, P, "batch jobs do not stream", NULL},
    {"echo", BOTH, R_FALSE_ONLY, P, "echoing the prompt", NULL},
    {"suffix", COMP, R_FN, P, "text after the insertion point", chk_suffix},
    {"response_format", BOTH, R_FN, P, NULL, chk_response_format},
    {"tools", CHAT, R_FN, P, NULL, chk_tools},
    {"tool_choice", CHAT, R_FN, P, NULL, chk_tool_choice},
    {"function_call", CHAT, R_FN, P, NULL, chk_function_call},
    {"modalities", CHAT, R_FN, P, "text output only", chk_modalities},
    /* OpenAI, refused */
    {"functions", CHAT, R_STRUCT, X, NULL, NULL},
    {"audio", CHAT, R_REFUSE, X, "audio output", NULL},
    {"prediction", CHAT, R_REFUSE, X, "predicted outputs", NULL},
    {"web_search_options", CHAT, R_REFUSE, X, "web search", NULL},
    {"reasoning_effort", CHAT, R_REFUSE, X, "OpenAI reasoning models; for templates that take a switch use "
                                          "chat_template_kwargs", NULL},
    {"verbosity", CHAT, R_REFUSE, X, "OpenAI reasoning models", NULL},
    /* OpenAI, ignored: they cannot change the result */
    {"user", BOTH, R_IGNORE, I, NULL, NULL},
    {"metadata", BOTH, R_IGNORE, I, NULL, NULL},
    {"store", CHAT, R_IGNORE, I, NULL, NULL},
    {"service_tier", BOTH, R_IGNORE, I, NULL, NULL},
    {"stream_options", BOTH, R_IGNORE, I, NULL, NULL},
    {"parallel_tool_calls", CHAT, R_IGNORE, I, NULL, NULL},
    {"prompt_cache_key", BOTH, R_IGNORE, I, NULL, NULL},
    {"safety_identifier", BOTH, R_IGNORE, I, NULL, NULL},
    /* vLLM, honoured */
    {"top_k", BOTH, R_CHECKED, H, NULL, NULL},
    {"min_p", BOTH, R_CHECKED, H, NULL, NULL},
    {"repetition_penalty", BOTH, R_CHECKED, H, NULL, NULL},
    {"stop_token_ids", BOTH, R_CHECKED, H, NULL, NULL},
    {"ignore_eos", BOTH, R_FN, H, NULL, chk_bool},
    {"return_token_ids", BOTH, R_CHECKED, H, NULL, NULL},
    {"min_tokens", BOTH, R_FN, H, NULL, chk_min_tokens},
    {"chat_template_kwargs", CHAT, R_FN, H, NULL, chk_kwargs},
    {"add_generation_prompt", CHAT, R_FN, H, NULL, chk_bool},
    {"continue_final_message", CHAT, R_FN, H, NULL, chk_continue},
    {"add_special_tokens", BOTH, R_FN, H, NULL, chk_bool},
    /* vLLM, accepted only with the value that changes nothing */
    {"skip_special_tokens", BOTH, R_TRUE_ONLY, P, "special tokens are always left out of the text", NULL},
    {"include_stop_str_in_output", BOTH, R_FALSE_ONLY, P, "the stop string is never part of the text", NULL},
    {"use_beam_search", BOTH, R_FALSE_ONLY, P, "beam search", NULL},
    {"return_tokens_as_token_ids", BOTH, R_FALSE_ONLY, P, "tokens as token ids in logprobs", NULL},
    {"include_reasoning", CHAT, R_TRUE_ONLY, P, "reasoning is always returned", NULL},
    /* vLLM, refused */
    {"guided_json", BOTH, R_STRUCT, X, NULL, NULL},
    {"guided_regex", BOTH, R_STRUCT, X, NULL, NULL},
    {"guided_choice", BOTH, R_STRUCT, X, NULL, NULL},
    {"guided_grammar", BOTH, R_STRUCT, X, NULL, NULL},
    {"guided_decoding_backend", BOTH, R_STRUCT, X, NULL, NULL},
    {"guided_whitespace_pattern", BOTH, R_STRUCT, X, NULL, NULL},
    {"structured_outputs", BOTH, R_STRUCT, X, NULL, NULL},
    {"structural_tag", BOTH, R_STRUCT, X, NULL, NULL},
    {"truncate_prompt_tokens", BOTH, R_REFUSE, X, "prompt truncation", NULL},
    {"prompt_logprobs", BOTH, R_REFUSE, X, "prompt logprobs", NULL},
    {"allowed_token_ids", BOTH, R_REFUSE, X, "use logit_bias", NULL},
    {"bad_words", BOTH, R_REFUSE, X, "use logit_bias or stop", NULL},
    {"logits_processors", BOTH, R_REFUSE, X, "custom logits processors", NULL},
    {"vllm_xargs", BOTH, R_REFUSE, X, "custom extension arguments", NULL},
    {"documents", CHAT, R_REFUSE, X, "documents for the chat template", NULL},
    {"chat_template", CHAT, R_REFUSE, X, "a per-request chat template; the worker uses the model's or "
                                          "run --chat-template", NULL},
    {"mm_processor_kwargs", CHAT, R_REFUSE, X, "multimodal input", NULL},
    {"media_io_kwargs", CHAT, R_REFUSE, X, "multimodal input", NULL},
    {"prompt_embeds", COMP, R_REFUSE, X, "prompt embeddings", NULL},
    /* vLLM, ignored: scheduling and serving hints */
    {"priority", BOTH, R_IGNORE, I, NULL, NULL},
    {"request_id", BOTH, R_IGNORE, I, NULL, NULL},
    {"cache_salt", BOTH, R_IGNORE, I, NULL, NULL},
    {"kv_transfer_params", BOTH, R_IGNORE, I, NULL, NULL},
    {"length_penalty", BOTH, R_IGNORE, I, NULL, NULL},
    {"spaces_between_special_tokens", BOTH, R_IGNORE, I, NULL, NULL},
};

#undef H
#undef P
#undef I
#undef X

static const field *lookup(const char *name)
{
    for (size_t i = 0; i < sizeof TABLE / sizeof TABLE[0]; i++)
        if (!strcmp(TABLE[i].name, name)) return &TABLE[i];
    return NULL;
}

tm_field_class tm_validate_field_class(const char *name, tm_endpoint ep)
{
    const field *f = name ? lookup(name) : NULL;
    unsigned m = ep == TM_ENDPOINT_CHAT ? CHAT : ep == TM_ENDPOINT_COMPLETIONS ? COMP : 0;
    return f && (f->ep & m) ? f->cls : TM_FIELD_UNKNOWN;
}

const char *tm_field_class_str(tm_field_class c)
{
    switch (c) {
    case TM_FIELD_HONOURED: return "honoured";
    case TM_FIELD_NOOP_ONLY: return "no-op only";
    case TM_FIELD_IGNORED: return "ignored";
    case TM_FIELD_REFUSED: return "refused";
    default: return "unknown";
    }
}

size_t tm_validate_field_count(void) { return sizeof TABLE / sizeof TABLE[0]; }

const char *tm_validate_field_name(size_t i)
{
    return i < sizeof TABLE / sizeof TABLE[0] ? TABLE[i].name : NULL;
}

/* ---- honoured fields' checks ------------------------------------------ */

static void chk_bool(tm_problems *p, json_t *body, json_t *v, const char *f)
{
    (void)body;
    if (!json_is_boolean(v)) tm_problems_add(p, f, "must be a boolean, got %s", tm_vjson_type(v));
}

static void chk_logit_bias(tm_problems *p, json_t *body, json_t *v, const char *f)
{
    (void)body;
    char g[96], b[64];
    if (!json_is_object(v)) {
        tm_problems_add(p, f, "must be an object {\"token id\": bias}, got %s", tm_vjson_type(v));
        return;
    }
    if (json_object_size(v) > TM_SAMPLER_MAX_LOGIT_BIAS) {
        tm_problems_add(p, f, "must have at most %d entries, got %zu", TM_SAMPLER_MAX_LOGIT_BIAS, json_object_size(v));
        return;
    }
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        json_t *ks = json_string(k);
        tm_vpath(g, sizeof g, "%s[%s]", f, ks ? tm_vjson_show(ks, b, sizeof b) : "?");
        json_decref(ks);
        if (tm_sampler_bias_key(k) < 0)
            tm_problems_add(p, g, "the key must be a token id (decimal digits, no sign or leading zero, < 2^31)");
        else if (!json_is_integer(x) && !json_is_real(x))
            tm_problems_add(p, g, "must be a number in [-100, 100], got %s", tm_vjson_type(x));
        else if (!(json_number_value(x) >= -TM_SAMPLER_MAX_BIAS && json_number_value(x) <= TM_SAMPLER_MAX_BIAS))
            tm_problems_add(p, g, "must be a number in [-100, 100], got %s", tm_vjson_show(x, b, sizeof b));
    }
}

static void chk_min_tokens(tm_problems *p, json_t *body, json_t *v, const char *f)
{
    char b[64];
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
        tm_problems_add(p, f, "must be an integer from 0 to 2147483647, got %s", tm_vjson_show(v, b, sizeof b));
        return;
    }
    json_t *mt = tm_vjson_opt(body, "max_completion_tokens");
    if (!mt) mt = tm_vjson_opt(body, "max_tokens");
    if (json_is_integer(mt) && json_integer_value(v) > json_integer_value(mt))
        tm_problems_add(p, f, "must be at most max_tokens (%lld), got %lld", (long long)json_integer_value(mt),
                        (long long)json_integer_value(v));
}

static void chk_kwargs(tm_problems *p, json_t *body, json_t *v, const char *f)
{
    (void)body;
    static const char *const reserved[] = {"messages", "tools", "documents", "add_generation_prompt",
                                           "bos_token", "eos_token"};
    if (!json_is_object(v)) {
        tm_problems_add(p, f, "must be an object of template variables, got %s", tm_vjson_type(v));
        return;
    }
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (json_object_get(v, reserved[i]))
            tm_problems_add(p, f, "must not set '%s' (the request sets it)", reserved[i]);
}

static void chk_continue(tm_problems *p, json_t *body, json_t *v, const char *f)
{
    if (!json_is_boolean(v)) {
        tm_problems_add(p, f, "must be a boolean, got %s", tm_vjson_type(v));
        return;
    }
    if (json_is_true(v) && json_is_true(tm_vjson_opt(body, "add_generation_prompt")))
        tm_problems_add(p, f, "cannot be true together with add_generation_prompt: true");
}

static void chk_best_of(tm_problems *p, json_t *body, json_t *v, const char *f)
{
    char b[64];
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 128) {
        tm_problems_add(p, f, "must be an integer between 1 and 128, got %s", tm_vjson_show(v, b, sizeof b));
        return;
    }
    json_t *n = tm_vjson_opt(body, "n");
    long long nn = json_is_integer(n) ? (long long)json_integer_value(n) : 1;
    long long bo = (long long)json_integer_value(v);
    if (bo < nn) tm_problems_add(p, f, "must be at least n (%lld), got %lld", nn, bo);
    else if (bo > nn) tm_problems_add(p, f, "not supported yet (returning the best of several candidates); "
                                            "best_of equal to n is accepted");
}

static void chk_response_format(tm_problems *p, json_t *body, json_t *v, const char *f)
{
    (void)body;
    json_t *t = json_is_object(v) ? json_object_get(v, "type") : NULL;
    if (json_is_string(t) && !strcmp(json_string_value(t), "text") && json_object_size(v) == 1) return;
    tm_problems_add(p, f, STRUCTURED "; only {\"type\": \"text\"} is accepted");
}

static void chk_tools(tm_problems *p, json_t *body, json_t *v, const char *f)
{
    (void)body;
    if (json_is_array(v) && json_array_size(v) == 0) return;
    tm_problems_add(p, f, STRUCTURED "; tool calling (an empty list is accepted)");
}

static void chk_tool_choice(tm_problems *p, json_t *body, json_t *v, const char *f)
{
    json_t *tools = tm_vjson_opt(body, "tools");
    int no_tools = !tools || (json_is_array(tools) && json_array_size(tools) == 0);
    if (no_tools && json_is_string(v) &&
        (!strcmp(json_string_value(v), "none") || !strcmp(json_string_value(v), "auto")))
        return;
    tm_problems_add(p, f, STRUCTURED "; tool calling (\"none\" or \"auto\" without tools is accepted)");
}

static void chk_function_call(tm_problems *p, json_t *body, json_t *v, const char *f)
{
    if (json_is_string(v) && (!strcmp(json_string_value(v), "none") || !strcmp(json_string_value(v), "auto")) &&
        !tm_vjson_opt(body, "functions"))
        return;
    tm_problems_add(p, f, STRUCTURED "; function calling (\"none\" or \"auto\" without functions is accepted)");
}

static void chk_modalities(tm_problems *p, json_t *body, json_t *v, const char *f)
{
    (void)body;
    json_t *m0 = json_array_get(v, 0);
    if (json_is_array(v) && json_array_size(v) == 1 && json_is_string(m0) && !strcmp(json_string_value(m0), "text"))
        return;
    tm_problems_add(p, f, "not supported (text output only); only [\"text\"] is accepted");
}

static void chk_suffix(tm_problems *p, json_t *body, json_t *v, const char *f)
{
    (void)body;
    if (json_is_string(v) && json_string_length(v) == 0) return;
    tm_problems_add(p, f, "not supported (text after the insertion point); omit it");
}

/* ---- the table applied ---------------------------------------------------- */

static void check_field(tm_problems *p, json_t *body, const field *fd, json_t *v, const char *f)
{
    switch (fd->r) {
    case R_CHECKED:
    case R_IGNORE:
        return;
    case R_FN:
        fd->fn(p, body, v, f);
        return;
    case R_FALSE_ONLY:
    case R_TRUE_ONLY:
        if (!json_is_boolean(v))
            tm_problems_add(p, f, "must be a boolean, got %s", tm_vjson_type(v));
        else if (json_is_true(v) != (fd->r == R_TRUE_ONLY))
            tm_problems_add(p, f, "not supported (%s); omit it or set it to %s", fd->why,
                            fd->r == R_TRUE_ONLY ? "true" : "false");
        return;
    case R_REFUSE:
        tm_problems_add(p, f, "not supported (%s)", fd->why);
        return;
    case R_STRUCT:
        tm_problems_add(p, f, STRUCTURED);
        return;
    }
}

void tm_validate_body_fields(tm_problems *p, json_t *body, tm_endpoint ep, unsigned flags)
{
    unsigned m = ep == TM_ENDPOINT_CHAT ? CHAT : ep == TM_ENDPOINT_COMPLETIONS ? COMP : 0;
    const char *key;
    json_t *v;
    char f[96];
    json_object_foreach(body, key, v) {
        if (json_is_null(v)) continue; /* null means absent, whatever the field */
        tm_vpath(f, sizeof f, "body.%s", key);
        const field *fd = lookup(key);
        if (!fd || !m || !(fd->ep & m)) {
            if (!m || (flags & TM_VALIDATE_ALLOW_UNKNOWN)) continue;
            if (fd)
                tm_problems_add(p, f, "not a field of %s (see docs/requests.md)",
                                m == CHAT ? "/v1/chat/completions" : "/v1/completions");
            else
                tm_problems_add(p, f, "unknown field, not supported (not an OpenAI or vLLM request field tokenmill "
                                      "knows; see docs/requests.md, or submit --allow-unknown-fields)");
            continue;
        }
        check_field(p, body, fd, v, f);
    }
}

/* ---- messages ------------------------------------------------------------- */

static const char *const ROLES[] = {"system", "developer", "user", "assistant", "tool"};

static void check_content(tm_problems *p, const char *f, json_t *c)
{
    char g[96], gt[96], b[64];
    if (json_is_string(c)) return;
    if (!json_is_array(c)) {
        tm_problems_add(p, f, "must be a string or an array of content parts, got %s", tm_vjson_type(c));
        return;
    }
    size_t j;
    json_t *part;
    json_array_foreach(c, j, part) {
        tm_vpath(g, sizeof g, "%s[%zu]", f, j);
        if (!json_is_object(part)) {
            tm_problems_add(p, g, "must be an object {\"type\": \"text\", \"text\": ...}, got %s", tm_vjson_type(part));
            continue;
        }
        json_t *t = json_object_get(part, "type");
        tm_vpath(gt, sizeof gt, "%s.type", g);
        if (!t) {
            tm_problems_add(p, gt, "is required");
            continue;
        }
        if (!json_is_string(t)) {
            tm_problems_add(p, gt, "must be a string, got %s", tm_vjson_type(t));
            continue;
        }
        if (strcmp(json_string_value(t), "text") != 0) {
            tm_problems_add(p, gt, "not supported (only text content is supported; got part type %s)",
                            tm_vjson_show(t, b, sizeof b));
            continue;
        }
        json_t *tx = json_object_get(part, "text");
        tm_vpath(gt, sizeof gt, "%s.text", g);
        if (!tx)
            tm_problems_add(p, gt, "is required");
        else if (!json_is_string(tx))
            tm_problems_add(p, gt, "must be a string, got %s", tm_vjson_type(tx));
    }
}

/* An assistant turn's tool_calls: [{"id"?, "type": "function", "function":
 * {"name": str, "arguments": str | object}}], passed to the template. */
static void check_tool_calls(tm_problems *p, const char *f, json_t *calls)
{
    char g[96];
    if (!json_is_array(calls)) {
        tm_problems_add(p, f, "must be an array of tool calls, got %s", tm_vjson_type(calls));
        return;
    }
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c) {
        tm_vpath(g, sizeof g, "%s[%zu]", f, i);
        json_t *type = json_object_get(c, "type");
        json_t *fn = json_object_get(c, "function");
        json_t *args = json_object_get(fn, "arguments");
        if (!json_is_object(c))
            tm_problems_add(p, g, "must be an object, got %s", tm_vjson_type(c));
        else if (type && !(json_is_string(type) && !strcmp(json_string_value(type), "function")))
            tm_problems_add(p, g, "not supported (only \"type\": \"function\" tool calls)");
        else if (!json_is_object(fn) || !json_is_string(json_object_get(fn, "name")))
            tm_problems_add(p, g, "must have \"function\": {\"name\": string, \"arguments\": ...}");
        else if (args && !json_is_string(args) && !json_is_object(args))
            tm_problems_add(p, g, "function.arguments must be a string (JSON) or an object, got %s",
                            tm_vjson_type(args));
    }
}

/* One message: role, content (null only for an assistant turn that calls
 * tools), tool_calls; function_call and audio refused. */
static void check_message(tm_problems *p, json_t *m, const char *f)
{
    char g[96], b[64];
    json_t *role = json_object_get(m, "role");
    const char *rs = NULL;
    tm_vpath(g, sizeof g, "%s.role", f);
    if (!role) {
        tm_problems_add(p, g, "is required");
    } else if (!json_is_string(role)) {
        tm_problems_add(p, g, "must be a string, got %s", tm_vjson_type(role));
    } else {
        for (size_t k = 0; k < sizeof ROLES / sizeof ROLES[0]; k++)
            if (strcmp(json_string_value(role), ROLES[k]) == 0) rs = ROLES[k];
        if (!rs)
            tm_problems_add(p, g, "must be one of system, developer, user, assistant, tool; got %s",
                            tm_vjson_show(role, b, sizeof b));
    }
    json_t *calls = tm_vjson_opt(m, "tool_calls");
    tm_vpath(g, sizeof g, "%s.tool_calls", f);
    if (calls && rs && strcmp(rs, "assistant"))
        tm_problems_add(p, g, "only an assistant message has tool_calls");
    else if (calls)
        check_tool_calls(p, g, calls);
    if (tm_vjson_opt(m, "function_call")) {
        tm_vpath(g, sizeof g, "%s.function_call", f);
        tm_problems_add(p, g, "not supported (deprecated; send tool_calls)");
    }
    if (tm_vjson_opt(m, "audio")) {
        tm_vpath(g, sizeof g, "%s.audio", f);
        tm_problems_add(p, g, "not supported (audio input)");
    }
    json_t *c = tm_vjson_opt(m, "content");
    tm_vpath(g, sizeof g, "%s.content", f);
    if (!c) {
        /* an assistant turn that only calls tools has no content */
        if (rs && strcmp(rs, "assistant") == 0 && calls) return;
        if (json_object_get(m, "content"))
            tm_problems_add(p, g, "must be a string or an array of content parts, got null");
        else
            tm_problems_add(p, g, "is required");
        return;
    }
    check_content(p, g, c);
}

void tm_validate_messages(tm_problems *p, json_t *body)
{
    json_t *ms = tm_vjson_opt(body, "messages");
    if (!ms) {
        tm_problems_add(p, "body.messages", "is required for /v1/chat/completions");
        return;
    }
    if (!json_is_array(ms)) {
        tm_problems_add(p, "body.messages", "must be an array of messages, got %s", tm_vjson_type(ms));
        return;
    }
    if (json_array_size(ms) == 0) {
        tm_problems_add(p, "body.messages", "must not be empty");
        return;
    }
    size_t i;
    json_t *m;
    char f[96];
    json_array_foreach(ms, i, m) {
        tm_vpath(f, sizeof f, "body.messages[%zu]", i);
        if (!json_is_object(m))
            tm_problems_add(p, f, "must be an object, got %s", tm_vjson_type(m));
        else
            check_message(p, m, f);
    }
    if (json_is_true(tm_vjson_opt(body, "continue_final_message"))) {
        json_t *last = json_array_get(ms, json_array_size(ms) - 1);
        json_t *c = json_object_get(last, "content");
        if (json_is_array(c)) c = json_object_get(json_array_get(c, json_array_size(c) - 1), "text");
        if (!json_is_string(c) || json_string_length(c) == 0)
            tm_problems_add(p, "body.continue_final_message", "the last message must have text content to continue");
    }
}
