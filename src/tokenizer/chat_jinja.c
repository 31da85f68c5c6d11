/* chat_jinja.c — chat templates compiled from the model's own Jinja text,
 * rendered with the variables transformers' apply_chat_template passes
 * (see chat.h). */
#include "tokenizer/chat.h"
#include "tokenizer/chat_int.h"

#include <stdlib.h>
#include <string.h>

tm_status tm_chat_template_compile(const char *text, size_t len, tm_chat_template **out, tm_err *err)
{
    *out = NULL;
    tm_chat_template *t = calloc(1, sizeof *t);
    if (!t) return tm_errf(err, TM_ERR_NOMEM, "chat template: out of memory");
    t->name = "model";
    t->kind = CHAT_JINJA;
    tm_status st = tm_jinja_compile(text, len, TM_JINJA_HF, &t->jinja, err);
    if (st) {
        free(t);
        return tm_err_prefix(err, st, "chat template");
    }
    *out = t;
    return TM_OK;
}

tm_status tm_chat_template_load(const char *name, const char *jinja_text, tm_chat_template **out, tm_err *err)
{
    *out = NULL;
    if (name) {
        const tm_chat_template *b = tm_chat_template_by_name(name);
        if (!b)
            return tm_errf(err, TM_ERR_NOTFOUND, "unknown chat template '%s' (known: %s)", name,
                           tm_chat_template_names());
        *out = (tm_chat_template *)b; /* a registry entry: destroy is a no-op */
        return TM_OK;
    }
    if (!jinja_text || !*jinja_text)
        return tm_errf(err, TM_ERR_NOTFOUND, "the tokenizer has no chat_template; pass --chat-template NAME (%s)",
                       tm_chat_template_names());
    return tm_chat_template_compile(jinja_text, strlen(jinja_text), out, err);
}

void tm_chat_template_destroy(tm_chat_template *t)
{
    if (!t || t->kind != CHAT_JINJA) return;
    tm_jinja_destroy(t->jinja);
    free(t);
}

int tm_chat_template_is_jinja(const tm_chat_template *t) { return t && t->kind == CHAT_JINJA; }

/* A copy of messages shaped as templates expect them (see chat.h). */
static tm_status normalize_messages(const json_t *jm, json_t **out, tm_err *err)
{
    *out = NULL;
    if (!json_is_array(jm)) return tm_errf(err, TM_ERR_INPUT, "messages: must be an array");
    if (json_array_size(jm) == 0) return tm_errf(err, TM_ERR_INPUT, "messages: the conversation is empty");
    json_t *copy = json_deep_copy(jm);
    if (!copy) return tm_errf(err, TM_ERR_NOMEM, "messages: out of memory");
    size_t i;
    json_t *m;
    tm_status st = TM_OK;
    json_array_foreach(copy, i, m) {
        if (!json_is_object(m)) { st = tm_errf(err, TM_ERR_INPUT, "messages[%zu]: must be an object", i); break; }
        if (!json_is_string(json_object_get(m, "role"))) {
            st = tm_errf(err, TM_ERR_INPUT, "messages[%zu].role: missing or not a string", i);
            break;
        }
        json_t *c = json_object_get(m, "content");
        if (json_is_array(c)) {
            tm_chat_conv *conv = NULL;
            json_t *one = json_pack("[{s:s,s:O}]", "role", "user", "content", c);
            if (!one) { st = tm_errf(err, TM_ERR_NOMEM, "messages: out of memory"); break; }
            st = tm_chat_conv_from_json(one, &conv, err);
            json_decref(one);
            if (st) { tm_err_prefix(err, st, "messages[%zu]", i); break; }
            json_t *s = json_string(tm_chat_conv_messages(conv)[0].content);
            tm_chat_conv_destroy(conv);
            if (!s || json_object_set_new(m, "content", s)) { st = tm_errf(err, TM_ERR_NOMEM, "out of memory"); break; }
        }
        json_t *calls = json_object_get(m, "tool_calls"), *call;
        size_t k;
        json_array_foreach(calls, k, call) {
            json_t *fn = json_object_get(call, "function"), *args = json_object_get(fn, "arguments");
            if (!json_is_string(args)) continue;
            json_t *parsed = json_loadb(json_string_value(args), json_string_length(args), 0, NULL);
            if (json_is_object(parsed)) json_object_set(fn, "arguments", parsed);
            json_decref(parsed);
        }
    }
    if (st) {
        json_decref(copy);
        return st;
    }
    *out = copy;
    return TM_OK;
}

static tm_status render_jinja(const tm_chat_template *t, json_t *messages, const tm_chat_opts *o, tm_buf *out,
                              tm_err *err)
{
    static const char *const reserved[] = {"messages", "tools", "documents", "add_generation_prompt",
                                           "bos_token", "eos_token", NULL};
    json_t *vars = json_object();
    if (!vars) { json_decref(messages); return tm_errf(err, TM_ERR_NOMEM, "chat template: out of memory"); }
    tm_status st = TM_OK;
    if (o->kwargs) {
        if (!json_is_object(o->kwargs)) st = tm_errf(err, TM_ERR_INPUT, "chat_template_kwargs: must be an object");
        for (size_t i = 0; !st && reserved[i]; i++)
            if (json_object_get(o->kwargs, reserved[i]))
                st = tm_errf(err, TM_ERR_INPUT, "chat_template_kwargs: '%s' cannot be set here", reserved[i]);
        if (!st && json_object_update(vars, (json_t *)o->kwargs)) st = tm_errf(err, TM_ERR_NOMEM, "out of memory");
    }
    if (!st && o->tools && !json_is_array(o->tools)) st = tm_errf(err, TM_ERR_INPUT, "tools: must be an array");
    if (!st && (json_object_set_new(vars, "messages", messages) ||
                json_object_set_new(vars, "tools", o->tools ? json_incref((json_t *)o->tools) : json_null()) ||
                json_object_set_new(vars, "documents", json_null()) ||
                json_object_set_new(vars, "add_generation_prompt", json_boolean(o->add_generation_prompt)) ||
                (o->bos_token && json_object_set_new(vars, "bos_token", json_string(o->bos_token))) ||
                (o->eos_token && json_object_set_new(vars, "eos_token", json_string(o->eos_token)))))
        st = tm_errf(err, TM_ERR_NOMEM, "chat template: out of memory");
    else if (st)
        json_decref(messages);
    if (!st) {
        st = tm_jinja_render(t->jinja, vars, NULL, out, err);
        if (st) tm_err_prefix(err, st, "chat template");
    }
    json_decref(vars);
    return st;
}

tm_status tm_chat_render_json(const tm_chat_template *t, const json_t *messages, const tm_chat_opts *opts,
                              tm_buf *out, tm_err *err)
{
    tm_chat_opts none = {0};
    const tm_chat_opts *o = opts ? opts : &none;
    if (!t || !out) return tm_errf(err, TM_ERR_INTERNAL, "tm_chat_render_json: NULL template or output");
    if (t->kind != CHAT_JINJA) {
        if ((o->tools && json_array_size(o->tools)) || (o->kwargs && json_object_size(o->kwargs)))
            return tm_errf(err, TM_ERR_INPUT, "chat template %s (built-in) does not support %s", t->name,
                           o->tools && json_array_size(o->tools) ? "tools" : "chat_template_kwargs");
        tm_chat_conv *conv = NULL;
        tm_status st = tm_chat_conv_from_json(messages, &conv, err);
        if (st) return st;
        st = tm_chat_render(t, tm_chat_conv_messages(conv), tm_chat_conv_count(conv), o->add_generation_prompt,
                            o->bos_token, o->eos_token, out, err);
        tm_chat_conv_destroy(conv);
        return st;
    }
    json_t *norm;
    tm_status st = normalize_messages(messages, &norm, err);
    return st ? st : render_jinja(t, norm, o, out, err);
}

tm_status tm_chat_jinja_render_messages(const tm_chat_template *t, const tm_chat_message *m, size_t n,
                                        int add_generation_prompt, const char *bos_token, const char *eos_token,
                                        tm_buf *out, tm_err *err)
{
    json_t *msgs = json_array();
    for (size_t i = 0; msgs && i < n; i++)
        if (json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", m[i].role, "content", m[i].content))) {
            json_decref(msgs);
            msgs = NULL;
        }
    if (!msgs) return tm_errf(err, TM_ERR_INPUT, "messages: not valid UTF-8 (or out of memory)");
    tm_chat_opts o = {.add_generation_prompt = add_generation_prompt, .bos_token = bos_token, .eos_token = eos_token};
    return render_jinja(t, msgs, &o, out, err);
}
