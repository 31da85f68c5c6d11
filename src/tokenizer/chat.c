/* chat.c — the built-in chat template renderers (see chat.h).
 *
 * Each family's renderer is a direct C transcription of its Hugging Face
 * Jinja chat_template for text-only conversations (no tools/tool_calls
 * arguments), including the template's whitespace handling (Jinja `trim` and
 * Python str.strip use Python's Unicode whitespace set) and its error cases.
 * Verified byte for byte against testdata/tokenizers/golden_chat.jsonl by
 * tests/unit/test_chat_golden.c.
 */
#include "tokenizer/chat.h"
#include "tokenizer/chat_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const tm_chat_template registry[] = {
    {"raw", CHAT_RAW, 0, NULL},
    {"llama3", CHAT_LLAMA3, 0, NULL},
    {"llama3-always", CHAT_LLAMA3, F_GEN_ALWAYS, NULL},
    {"llama3.1", CHAT_LLAMA31, 0, NULL},
    {"qwen", CHAT_QWEN3, 0, NULL},
    {"qwen3", CHAT_QWEN3, 0, NULL},
    {"qwen2.5", CHAT_QWEN25, 0, NULL},
    {"chatml", CHAT_CHATML, 0, NULL},
    {"deepseek", CHAT_DEEPSEEK, 0, NULL},
    {"deepseek-r1", CHAT_DEEPSEEK, F_STRIP_THINK | F_GEN_THINK, NULL},
    {"deepseek-r1-nothink", CHAT_DEEPSEEK, F_STRIP_THINK, NULL},
    {"gemma3", CHAT_GEMMA3, 0, NULL},
    {"mistral", CHAT_MISTRAL, 0, NULL},
    {"llama2", CHAT_LLAMA2, 0, NULL},
};
#define N_REGISTRY (sizeof registry / sizeof registry[0])

#define DS_USER "<\xef\xbd\x9cUser\xef\xbd\x9c>"
#define DS_ASSISTANT "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"
#define DS_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define DS_OUTPUTS_BEGIN "<\xef\xbd\x9ctool\xe2\x96\x81outputs\xe2\x96\x81" "begin\xef\xbd\x9c>"
#define DS_OUTPUTS_END "<\xef\xbd\x9ctool\xe2\x96\x81outputs\xe2\x96\x81" "end\xef\xbd\x9c>"
#define DS_OUTPUT_BEGIN "<\xef\xbd\x9ctool\xe2\x96\x81output\xe2\x96\x81" "begin\xef\xbd\x9c>"
#define DS_OUTPUT_END "<\xef\xbd\x9ctool\xe2\x96\x81output\xe2\x96\x81" "end\xef\xbd\x9c>"

static const tm_chat_template *find(const char *name)
{
    for (size_t i = 0; i < N_REGISTRY; i++)
        if (!strcmp(registry[i].name, name)) return &registry[i];
    return NULL;
}

const tm_chat_template *tm_chat_template_by_name(const char *name)
{
    return name ? find(name) : NULL;
}

const char *tm_chat_template_name(const tm_chat_template *t) { return t ? t->name : NULL; }

const char *tm_chat_template_names(void)
{
    return "raw, llama3, llama3-always, llama3.1, qwen, qwen3, qwen2.5, chatml, deepseek, "
           "deepseek-r1, deepseek-r1-nothink, gemma3, mistral, llama2";
}

tm_status tm_chat_template_detect(const char *j, const tm_chat_template **out, tm_err *err)
{
    *out = NULL;
    if (!j || !*j)
        return tm_errf(err, TM_ERR_NOTFOUND,
                       "the tokenizer has no chat_template; pass --chat-template NAME (%s)",
                       tm_chat_template_names());
    const char *name = NULL;
    if (strstr(j, DS_USER))
        name = !strstr(j, "</think>") ? "deepseek"
               : strstr(j, DS_ASSISTANT "<think>") ? "deepseek-r1" : "deepseek-r1-nothink";
    else if (strstr(j, "<|start_header_id|>"))
        name = strstr(j, "Cutting Knowledge Date") ? "llama3.1"
               : strstr(j, "add_generation_prompt") ? "llama3" : "llama3-always";
    else if (strstr(j, "<start_of_turn>"))
        name = "gemma3";
    else if (strstr(j, "<|im_start|>"))
        name = (strstr(j, "</think>") || strstr(j, "reasoning_content")) ? "qwen3"
               : strstr(j, "You are Qwen, created by Alibaba Cloud") ? "qwen2.5" : "chatml";
    else if (strstr(j, "[INST]"))
        name = strstr(j, "<<SYS>>") ? "llama2" : "mistral";
    if (!name)
        return tm_errf(err, TM_ERR_NOTFOUND,
                       "chat_template not recognised as a built-in; pass --chat-template NAME (%s)",
                       tm_chat_template_names());
    *out = find(name);
    return TM_OK;
}

tm_status tm_chat_template_resolve(const char *name, const char *jinja_text,
                                   const tm_chat_template **out, tm_err *err)
{
    if (name) {
        *out = find(name);
        if (!*out)
            return tm_errf(err, TM_ERR_NOTFOUND, "unknown chat template '%s' (known: %s)", name,
                           tm_chat_template_names());
        return TM_OK;
    }
    return tm_chat_template_detect(jinja_text, out, err);
}

/* ---- strings: slices and Python's strip semantics ---- */

typedef struct {
    const char *p;
    size_t n;
} slice;

static slice sl(const char *s) { return (slice){s, s ? strlen(s) : 0}; }

/* Python str.isspace() for a code point (what Jinja's trim / str.strip() remove). */
static int py_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Decode one UTF-8 sequence at p (at most n bytes); returns its length, 0 if malformed. */
static size_t utf8_dec(const unsigned char *p, size_t n, uint32_t *cp)
{
    if (n == 0) return 0;
    if (p[0] < 0x80) { *cp = p[0]; return 1; }
    size_t len = (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3 : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || len > n) return 0;
    uint32_t c = p[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    *cp = c;
    return len;
}

static slice py_strip_ws(slice s)
{
    const unsigned char *p = (const unsigned char *)s.p;
    size_t b = 0, e = s.n;
    while (b < e) {
        uint32_t c;
        size_t l = utf8_dec(p + b, e - b, &c);
        if (!l || !py_space(c)) break;
        b += l;
    }
    while (e > b) {
        size_t k = e - 1;
        while (k > b && (p[k] & 0xc0) == 0x80 && e - k < 4) k--;
        uint32_t c;
        size_t l = utf8_dec(p + k, e - k, &c);
        if (l != e - k || !py_space(c)) break;
        e = k;
    }
    return (slice){s.p + b, e - b};
}

static slice lstrip_nl(slice s)
{
    while (s.n && s.p[0] == '\n') { s.p++; s.n--; }
    return s;
}

static slice rstrip_nl(slice s)
{
    while (s.n && s.p[s.n - 1] == '\n') s.n--;
    return s;
}

/* Position of the first / last occurrence of needle in s, or -1. */
static long find_first(slice s, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; m <= s.n && i <= s.n - m; i++)
        if (!memcmp(s.p + i, needle, m)) return (long)i;
    return -1;
}

static long find_last(slice s, const char *needle)
{
    size_t m = strlen(needle);
    if (m > s.n) return -1;
    for (size_t i = s.n - m + 1; i-- > 0;)
        if (!memcmp(s.p + i, needle, m)) return (long)i;
    return -1;
}

static int starts_with(slice s, const char *pre)
{
    size_t m = strlen(pre);
    return s.n >= m && !memcmp(s.p, pre, m);
}

static int ends_with(slice s, const char *suf)
{
    size_t m = strlen(suf);
    return s.n >= m && !memcmp(s.p + s.n - m, suf, m);
}

/* ---- output ---- */

typedef struct {
    tm_buf *out;
    int failed;
} emitter;

static void put(emitter *e, const char *s)
{
    if (!e->failed && s && tm_buf_puts(e->out, s)) e->failed = 1;
}

static void put_sl(emitter *e, slice s)
{
    if (!e->failed && s.n && tm_buf_append(e->out, s.p, s.n)) e->failed = 1;
}

static int is_role(const tm_chat_message *m, const char *role) { return !strcmp(m->role, role); }

static tm_status bad_role(tm_err *err, const tm_chat_template *t, size_t i, const char *role,
                          const char *allowed)
{
    return tm_errf(err, TM_ERR_INPUT, "messages[%zu]: role '%s' is not supported by chat template %s (%s)",
                   i, role, t->name, allowed);
}

static tm_status check_roles(const tm_chat_template *t, const tm_chat_message *m, size_t n,
                             const char *const *allowed, const char *allowed_text, tm_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int ok = 0;
        for (size_t k = 0; allowed[k]; k++)
            if (!strcmp(m[i].role, allowed[k])) ok = 1;
        if (!ok) return bad_role(err, t, i, m[i].role, allowed_text);
    }
    return TM_OK;
}

/* After an optional first system message, user at even and assistant at odd positions. */
static tm_status check_alternate(const tm_chat_template *t, const tm_chat_message *m, size_t n,
                                 size_t first, tm_err *err)
{
    for (size_t i = first; i < n; i++) {
        int want_user = (i - first) % 2 == 0;
        if (is_role(&m[i], "system"))
            return tm_errf(err, TM_ERR_INPUT,
                           "messages[%zu]: chat template %s allows a system message only first", i, t->name);
        if (!is_role(&m[i], "user") && !is_role(&m[i], "assistant"))
            return bad_role(err, t, i, m[i].role, "system first, then user/assistant");
        if (is_role(&m[i], "user") != want_user)
            return tm_errf(err, TM_ERR_INPUT,
                           "messages[%zu]: conversation roles must alternate user/assistant/user/assistant/... "
                           "(chat template %s, got '%s')",
                           i, t->name, m[i].role);
    }
    return TM_OK;
}

/* ---- renderers ---- */

static void render_raw(emitter *e, const tm_chat_message *m, size_t n)
{
    for (size_t i = 0; i < n; i++) put(e, m[i].content);
}

static void render_llama3(emitter *e, const tm_chat_template *t, const tm_chat_message *m, size_t n,
                          int gen, const char *bos)
{
    put(e, bos);
    for (size_t i = 0; i < n; i++) {
        put(e, "<|start_header_id|>");
        put(e, m[i].role);
        put(e, "<|end_header_id|>\n\n");
        put_sl(e, py_strip_ws(sl(m[i].content)));
        put(e, "<|eot_id|>");
    }
    if (gen || (t->flags & F_GEN_ALWAYS)) put(e, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* JSON string literal of s as Python's json.dumps(s, ensure_ascii=False). */
static void put_json_string(emitter *e, slice s)
{
    put(e, "\"");
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        char esc[8];
        switch (c) {
        case '"': put(e, "\\\""); break;
        case '\\': put(e, "\\\\"); break;
        case '\n': put(e, "\\n"); break;
        case '\r': put(e, "\\r"); break;
        case '\t': put(e, "\\t"); break;
        case '\b': put(e, "\\b"); break;
        case '\f': put(e, "\\f"); break;
        default:
            if (c < 0x20) {
                static const char hex[] = "0123456789abcdef";
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                esc[6] = 0;
                put(e, esc);
            } else {
                put_sl(e, (slice){s.p + i, 1});
            }
        }
    }
    put(e, "\"");
}

static void render_llama31(emitter *e, const tm_chat_message *m, size_t n, int gen, const char *bos)
{
    size_t first = 0;
    slice sys = {"", 0};
    if (is_role(&m[0], "system")) {
        sys = py_strip_ws(sl(m[0].content));
        first = 1;
    }
    put(e, bos);
    put(e, "<|start_header_id|>system<|end_header_id|>\n\n"
           "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n");
    put_sl(e, sys);
    put(e, "<|eot_id|>");
    for (size_t i = first; i < n; i++) {
        if (is_role(&m[i], "tool") || is_role(&m[i], "ipython")) {
            /* a string is "iterable" in Jinja, so the template tojson's it */
            put(e, "<|start_header_id|>ipython<|end_header_id|>\n\n");
            put_json_string(e, sl(m[i].content));
            put(e, "<|eot_id|>");
        } else {
            put(e, "<|start_header_id|>");
            put(e, m[i].role);
            put(e, "<|end_header_id|>\n\n");
            put_sl(e, py_strip_ws(sl(m[i].content)));
            put(e, "<|eot_id|>");
        }
    }
    if (gen) put(e, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void qwen_tool(emitter *e, const tm_chat_message *m, size_t n, size_t i)
{
    if (i == 0 || !is_role(&m[i - 1], "tool")) put(e, "<|im_start|>user");
    put(e, "\n<tool_response>\n");
    put(e, m[i].content);
    put(e, "\n</tool_response>");
    if (i == n - 1 || !is_role(&m[i + 1], "tool")) put(e, "<|im_end|>\n");
}

static void chatml_turn(emitter *e, const char *role, slice content)
{
    put(e, "<|im_start|>");
    put(e, role);
    put(e, "\n");
    put_sl(e, content);
    put(e, "<|im_end|>\n");
}

static void render_qwen3(emitter *e, const tm_chat_message *m, size_t n, int gen)
{
    if (is_role(&m[0], "system")) chatml_turn(e, "system", sl(m[0].content));
    /* the last user message that is not a bare tool response */
    size_t last_query = n - 1;
    for (size_t k = n; k-- > 0;) {
        slice c = sl(m[k].content);
        if (is_role(&m[k], "user") &&
            !(starts_with(c, "<tool_response>") && ends_with(c, "</tool_response>"))) {
            last_query = k;
            break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (is_role(&m[i], "user") || (is_role(&m[i], "system") && i > 0)) {
            chatml_turn(e, m[i].role, sl(m[i].content));
        } else if (is_role(&m[i], "assistant")) {
            slice content = sl(m[i].content), reasoning = {"", 0};
            long end = find_last(content, "</think>");
            if (end >= 0) {
                slice whole = content;
                content = lstrip_nl((slice){whole.p + end + 8, whole.n - (size_t)end - 8});
                reasoning = rstrip_nl((slice){whole.p, (size_t)find_first(whole, "</think>")});
                long open = find_last(reasoning, "<think>");
                if (open >= 0)
                    reasoning = (slice){reasoning.p + open + 7, reasoning.n - (size_t)open - 7};
                reasoning = lstrip_nl(reasoning);
            }
            put(e, "<|im_start|>assistant\n");
            if (i > last_query && (i == n - 1 || reasoning.n)) {
                put(e, "<think>\n");
                put_sl(e, rstrip_nl(lstrip_nl(reasoning)));
                put(e, "\n</think>\n\n");
                put_sl(e, lstrip_nl(content));
            } else {
                put_sl(e, content);
            }
            put(e, "<|im_end|>\n");
        } else if (is_role(&m[i], "tool")) {
            qwen_tool(e, m, n, i);
        }
    }
    if (gen) put(e, "<|im_start|>assistant\n");
}

static void render_qwen25(emitter *e, const tm_chat_message *m, size_t n, int gen)
{
    if (!is_role(&m[0], "system"))
        chatml_turn(e, "system", sl("You are Qwen, created by Alibaba Cloud. You are a helpful assistant."));
    for (size_t i = 0; i < n; i++) {
        if (is_role(&m[i], "tool")) qwen_tool(e, m, n, i);
        else chatml_turn(e, m[i].role, sl(m[i].content));
    }
    if (gen) put(e, "<|im_start|>assistant\n");
}

static void render_chatml(emitter *e, const tm_chat_message *m, size_t n, int gen)
{
    for (size_t i = 0; i < n; i++) chatml_turn(e, m[i].role, sl(m[i].content));
    if (gen) put(e, "<|im_start|>assistant\n");
}

static void render_deepseek(emitter *e, const tm_chat_template *t, const tm_chat_message *m, size_t n,
                            int gen, const char *bos)
{
    put(e, bos);
    int first_sp = 1;
    for (size_t i = 0; i < n; i++) {
        if (!is_role(&m[i], "system")) continue;
        if (!first_sp) put(e, "\n\n");
        put(e, m[i].content);
        first_sp = 0;
    }
    int is_tool = 0, output_first = 1;
    for (size_t i = 0; i < n; i++) {
        if (is_role(&m[i], "user")) {
            is_tool = 0;
            put(e, DS_USER);
            put(e, m[i].content);
        } else if (is_role(&m[i], "assistant")) {
            if (is_tool) {
                put(e, DS_OUTPUTS_END);
                put(e, m[i].content);
                put(e, DS_EOS);
                is_tool = 0;
            } else {
                slice c = sl(m[i].content);
                long end = (t->flags & F_STRIP_THINK) ? find_last(c, "</think>") : -1;
                if (end >= 0) c = (slice){c.p + end + 8, c.n - (size_t)end - 8};
                put(e, DS_ASSISTANT);
                put_sl(e, c);
                put(e, DS_EOS);
            }
        } else if (is_role(&m[i], "tool")) {
            is_tool = 1;
            put(e, output_first ? DS_OUTPUTS_BEGIN DS_OUTPUT_BEGIN : "\n" DS_OUTPUT_BEGIN);
            put(e, m[i].content);
            put(e, DS_OUTPUT_END);
            output_first = 0;
        }
    }
    if (is_tool) put(e, DS_OUTPUTS_END);
    if (gen && !is_tool) put(e, (t->flags & F_GEN_THINK) ? DS_ASSISTANT "<think>\n" : DS_ASSISTANT);
}

static void render_gemma3(emitter *e, const tm_chat_message *m, size_t n, int gen, const char *bos)
{
    put(e, bos);
    size_t first = is_role(&m[0], "system") ? 1 : 0;
    for (size_t i = first; i < n; i++) {
        put(e, "<start_of_turn>");
        put(e, is_role(&m[i], "assistant") ? "model" : m[i].role);
        put(e, "\n");
        if (first && i == first) {
            put(e, m[0].content);
            put(e, "\n\n");
        }
        put_sl(e, py_strip_ws(sl(m[i].content)));
        put(e, "<end_of_turn>\n");
    }
    if (gen) put(e, "<start_of_turn>model\n");
}

static void render_mistral(emitter *e, const tm_chat_message *m, size_t n, const char *bos,
                           const char *eos)
{
    size_t first = is_role(&m[0], "system") ? 1 : 0;
    put(e, bos);
    for (size_t i = first; i < n; i++) {
        if (is_role(&m[i], "user")) {
            put(e, " [INST] ");
            if (first && i == first) {
                put(e, m[0].content);
                put(e, "\n\n");
            }
            put(e, m[i].content);
            put(e, " [/INST]");
        } else {
            put(e, " ");
            put(e, m[i].content);
            put(e, eos);
        }
    }
}

static void render_llama2(emitter *e, const tm_chat_message *m, size_t n, const char *bos,
                          const char *eos)
{
    size_t first = is_role(&m[0], "system") ? 1 : 0;
    for (size_t i = first; i < n; i++) {
        if (is_role(&m[i], "user")) {
            put(e, bos);
            put(e, "[INST] ");
            if (first && i == first) {
                /* strip() applies to the whole "<<SYS>>...user" string */
                tm_buf tmp;
                tm_buf_init(&tmp);
                if (tm_buf_puts(&tmp, "<<SYS>>\n") || tm_buf_puts(&tmp, m[0].content) ||
                    tm_buf_puts(&tmp, "\n<</SYS>>\n\n") || tm_buf_puts(&tmp, m[i].content))
                    e->failed = 1;
                else
                    put_sl(e, py_strip_ws((slice){tmp.data, tmp.len}));
                tm_buf_free(&tmp);
            } else {
                put_sl(e, py_strip_ws(sl(m[i].content)));
            }
            put(e, " [/INST]");
        } else {
            put(e, " ");
            put_sl(e, py_strip_ws(sl(m[i].content)));
            put(e, " ");
            put(e, eos);
        }
    }
}

tm_status tm_chat_render(const tm_chat_template *t, const tm_chat_message *m, size_t n,
                         int add_generation_prompt, const char *bos_token, const char *eos_token,
                         tm_buf *out, tm_err *err)
{
    if (!t || !out) return tm_errf(err, TM_ERR_INTERNAL, "tm_chat_render: NULL template or output");
    if (n == 0 || !m) return tm_errf(err, TM_ERR_INPUT, "messages: the conversation is empty");
    for (size_t i = 0; i < n; i++) {
        if (!m[i].role) return tm_errf(err, TM_ERR_INPUT, "messages[%zu]: role missing", i);
        if (!m[i].content) return tm_errf(err, TM_ERR_INPUT, "messages[%zu]: content missing", i);
    }
    if (t->kind == CHAT_JINJA)
        return tm_chat_jinja_render_messages(t, m, n, add_generation_prompt, bos_token, eos_token, out, err);
    const char *bos = bos_token ? bos_token : "";
    const char *eos = eos_token ? eos_token : "";
    static const char *const sua[] = {"system", "user", "assistant", NULL};
    static const char *const suat[] = {"system", "user", "assistant", "tool", NULL};
    static const char *const suati[] = {"system", "user", "assistant", "tool", "ipython", NULL};
    tm_status s = TM_OK;
    switch (t->kind) {
    case CHAT_RAW: case CHAT_JINJA: break;
    case CHAT_LLAMA3:
    case CHAT_LLAMA31:
        s = check_roles(t, m, n, suati, "system, user, assistant, tool, ipython", err);
        break;
    case CHAT_QWEN3:
    case CHAT_QWEN25:
    case CHAT_DEEPSEEK:
    case CHAT_CHATML:
        s = check_roles(t, m, n, suat, "system, user, assistant, tool", err);
        break;
    case CHAT_GEMMA3:
    case CHAT_MISTRAL:
    case CHAT_LLAMA2:
        s = check_roles(t, m, n, sua, "system, user, assistant", err);
        if (!s) s = check_alternate(t, m, n, is_role(&m[0], "system") ? 1 : 0, err);
        break;
    }
    if (s) return s;

    size_t mark = out->len;
    emitter e = {out, 0};
    switch (t->kind) {
    case CHAT_RAW: render_raw(&e, m, n); break;
    case CHAT_LLAMA3: render_llama3(&e, t, m, n, add_generation_prompt, bos); break;
    case CHAT_LLAMA31: render_llama31(&e, m, n, add_generation_prompt, bos); break;
    case CHAT_QWEN3: render_qwen3(&e, m, n, add_generation_prompt); break;
    case CHAT_QWEN25: render_qwen25(&e, m, n, add_generation_prompt); break;
    case CHAT_CHATML: render_chatml(&e, m, n, add_generation_prompt); break;
    case CHAT_DEEPSEEK: render_deepseek(&e, t, m, n, add_generation_prompt, bos); break;
    case CHAT_GEMMA3: render_gemma3(&e, m, n, add_generation_prompt, bos); break;
    case CHAT_MISTRAL: render_mistral(&e, m, n, bos, eos); break;
    case CHAT_LLAMA2: render_llama2(&e, m, n, bos, eos); break;
    case CHAT_JINJA: break;
    }
    if (e.failed) {
        out->len = mark;
        if (out->data) out->data[mark] = 0;
        return tm_errf(err, TM_ERR_NOMEM, "chat template %s: out of memory", t->name);
    }
    if (out->data == NULL) { /* an empty render still yields "" */
        if (tm_buf_reserve(out, 0))
            return tm_errf(err, TM_ERR_NOMEM, "chat template %s: out of memory", t->name);
        out->data[out->len] = 0;
    }
    return TM_OK;
}
