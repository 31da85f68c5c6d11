/* chat_int.h — the chat template object shared by chat.c (built-ins) and
 * chat_jinja.c (a model's own Jinja template). Not a public API. */
#ifndef TM_CHAT_INT_H
#define TM_CHAT_INT_H

#include "template/jinja.h"
#include "tokenizer/chat.h"

typedef enum {
    CHAT_RAW,
    CHAT_LLAMA3,
    CHAT_LLAMA31,
    CHAT_QWEN3,
    CHAT_QWEN25,
    CHAT_CHATML,
    CHAT_DEEPSEEK,
    CHAT_GEMMA3,
    CHAT_MISTRAL,
    CHAT_LLAMA2,
    CHAT_JINJA, /* compiled from the model's template; heap-allocated, owns jinja */
} chat_kind;

enum {
    F_GEN_ALWAYS = 1u << 0,  /* llama3: assistant header even without add_generation_prompt */
    F_STRIP_THINK = 1u << 1, /* deepseek-r1: assistant content after the last </think> */
    F_GEN_THINK = 1u << 2,   /* deepseek-r1: generation prompt opens a <think> block */
};

struct tm_chat_template {
    const char *name;
    chat_kind kind;
    unsigned flags;
    tm_jinja *jinja; /* CHAT_JINJA only */
};

/* tm_chat_render for a CHAT_JINJA template (arguments checked by the caller). */
tm_status tm_chat_jinja_render_messages(const tm_chat_template *t, const tm_chat_message *m, size_t n,
                                        int add_generation_prompt, const char *bos_token, const char *eos_token,
                                        tm_buf *out, tm_err *err);

#endif
