/* chat_conv.c — a chat conversation (tm_chat_conv, see chat.h) read from a
 * request's JSON "messages" array: roles and contents copied and checked,
 * list-of-parts contents joined, so that renderers see plain strings.
 */
#include "tokenizer/chat.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct tm_chat_conv {
    tm_chat_message *m; /* role/content strings malloc'd, owned */
    size_t n;
};

void tm_chat_conv_destroy(tm_chat_conv *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        free((char *)c->m[i].role);
        free((char *)c->m[i].content);
    }
    free(c->m);
    free(c);
}

const tm_chat_message *tm_chat_conv_messages(const tm_chat_conv *c) { return c ? c->m : NULL; }
size_t tm_chat_conv_count(const tm_chat_conv *c) { return c ? c->n : 0; }

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* content: a string, or an array of {"type":"text","text":str} joined by "\n". */
static tm_status content_from_json(const json_t *jc, size_t i, char **out, tm_err *err)
{
    *out = NULL;
    if (json_is_string(jc)) {
        if (!(*out = dup_n(json_string_value(jc), json_string_length(jc))))
            return tm_errf(err, TM_ERR_NOMEM, "messages[%zu].content: out of memory", i);
        if (strlen(*out) != json_string_length(jc)) {
            free(*out);
            *out = NULL;
            return tm_errf(err, TM_ERR_INPUT, "messages[%zu].content: contains a NUL character", i);
        }
        return TM_OK;
    }
    if (!json_is_array(jc))
        return tm_errf(err, TM_ERR_INPUT, "messages[%zu].content: must be a string or an array of text parts%s",
                       i, json_is_null(jc) || !jc ? " (missing or null)" : "");
    tm_buf b;
    tm_buf_init(&b);
    size_t k;
    const json_t *part;
    json_array_foreach(jc, k, part) {
        const json_t *type = json_object_get(part, "type");
        const json_t *text = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(type) || strcmp(json_string_value(type), "text") ||
            !json_is_string(text)) {
            tm_buf_free(&b);
            return tm_errf(err, TM_ERR_INPUT,
                           "messages[%zu].content[%zu]: only {\"type\": \"text\", \"text\": string} parts are supported",
                           i, k);
        }
        if ((k && tm_buf_puts(&b, "\n")) || tm_buf_append(&b, json_string_value(text), json_string_length(text))) {
            tm_buf_free(&b);
            return tm_errf(err, TM_ERR_NOMEM, "messages[%zu].content: out of memory", i);
        }
    }
    if (!b.data) {
        if (tm_buf_reserve(&b, 0)) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
        b.data[0] = 0;
    }
    if (strlen(b.data) != b.len) {
        tm_buf_free(&b);
        return tm_errf(err, TM_ERR_INPUT, "messages[%zu].content: contains a NUL character", i);
    }
    *out = b.data;
    return TM_OK;
}

tm_status tm_chat_conv_from_json(const json_t *jm, tm_chat_conv **out, tm_err *err)
{
    *out = NULL;
    if (!json_is_array(jm)) return tm_errf(err, TM_ERR_INPUT, "messages: must be an array");
    size_t n = json_array_size(jm);
    if (n == 0) return tm_errf(err, TM_ERR_INPUT, "messages: the conversation is empty");
    tm_chat_conv *c = calloc(1, sizeof *c);
    if (!c || !(c->m = calloc(n, sizeof *c->m))) {
        free(c);
        return tm_errf(err, TM_ERR_NOMEM, "messages: out of memory");
    }
    tm_status s = TM_OK;
    for (size_t i = 0; i < n && !s; i++) {
        const json_t *msg = json_array_get(jm, i);
        if (!json_is_object(msg)) {
            s = tm_errf(err, TM_ERR_INPUT, "messages[%zu]: must be an object", i);
            break;
        }
        const json_t *role = json_object_get(msg, "role");
        if (!json_is_string(role)) {
            s = tm_errf(err, TM_ERR_INPUT, "messages[%zu].role: missing or not a string", i);
            break;
        }
        c->n = i + 1; /* from here destroy() frees this entry */
        char *content = NULL;
        s = content_from_json(json_object_get(msg, "content"), i, &content, err);
        c->m[i].content = content;
        if (s) break;
        if (!(c->m[i].role = dup_n(json_string_value(role), json_string_length(role))))
            s = tm_errf(err, TM_ERR_NOMEM, "messages[%zu].role: out of memory", i);
        else if (strlen(c->m[i].role) != json_string_length(role))
            s = tm_errf(err, TM_ERR_INPUT, "messages[%zu].role: contains a NUL character", i);
    }
    if (s) {
        tm_chat_conv_destroy(c);
        return s;
    }
    *out = c;
    return TM_OK;
}
