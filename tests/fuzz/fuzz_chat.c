/* fuzz_chat.c — hostile conversations through every chat template.
 *
 * Input starting with '[': parsed as an OpenAI "messages" JSON array
 * (tm_chat_conv_from_json), then rendered by every built-in. Otherwise raw
 * bytes (invalid UTF-8 included): byte 0 = flags, then records split by 0x1e,
 * each record's first byte picking the role. Renders must succeed or return
 * TM_ERR_INPUT, and a success must be NUL-terminated at its length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/chat.h"

static const char *const names[] = {"raw", "llama3", "llama3-always", "llama3.1", "qwen3", "qwen2.5", "chatml",
                                    "deepseek", "deepseek-r1", "deepseek-r1-nothink", "gemma3", "mistral", "llama2"};
static const char *const roles[] = {"system", "user", "assistant", "tool", "ipython", "narrator"};

static void render_all(const tm_chat_message *m, size_t n, int gen)
{
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const tm_chat_template *t = tm_chat_template_by_name(names[k]);
        if (!t) abort();
        tm_buf out;
        tm_buf_init(&out);
        tm_err err;
        tm_status s = tm_chat_render(t, m, n, gen, "<s>", "</s>", &out, &err);
        if (s != TM_OK && s != TM_ERR_INPUT) abort();
        if (s == TM_OK && (!out.data || out.data[out.len] != 0)) abort();
        tm_buf_free(&out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > (1u << 20)) return 0;
    if (data[0] == '[') {
        json_error_t je;
        json_t *j = json_loadb((const char *)data, size, 0, &je);
        tm_chat_conv *c = NULL;
        tm_err err;
        if (j && tm_chat_conv_from_json(j, &c, &err) == TM_OK) {
            render_all(tm_chat_conv_messages(c), tm_chat_conv_count(c), 1);
            render_all(tm_chat_conv_messages(c), tm_chat_conv_count(c), 0);
        }
        tm_chat_conv_destroy(c);
        json_decref(j);
        return 0;
    }
    /* raw mode: a NUL-terminated copy, split in place at 0x1e */
    char *copy = malloc(size);
    tm_chat_message *m = calloc(size, sizeof *m);
    if (!copy || !m) goto done;
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = 0;
    size_t n = 0;
    char *p = copy, *end = copy + (size - 1);
    while (p <= end && n < size) {
        char *q = memchr(p, 0x1e, (size_t)(end - p));
        if (q) *q = 0;
        unsigned char r = (unsigned char)*p;
        m[n].role = roles[r % (sizeof roles / sizeof roles[0])];
        m[n].content = *p ? p + 1 : p;
        n++;
        if (!q) break;
        p = q + 1;
    }
    render_all(m, n, data[0] & 1);
done:
    free(copy);
    free(m);
    return 0;
}
