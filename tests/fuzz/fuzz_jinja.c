/* fuzz_jinja.c — hostile chat templates and variables through the Jinja
 * interpreter.
 *
 * Input: template source, then optionally a NUL byte and a JSON object of
 * variables (when absent or invalid, a fixed conversation with tools is
 * used). Compile and render under small limits must succeed or fail with
 * TM_ERR_INPUT (TM_ERR_NOMEM only for the memory limit) and a message; a
 * success is NUL-terminated at its length and within the output limit; a
 * failed render leaves the output buffer as it was.
 * Corpus: tests/fuzz/corpus/jinja/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template/jinja.h"

static const char k_vars[] =
    "{\"messages\":[{\"role\":\"system\",\"content\":\"sys\"},{\"role\":\"user\",\"content\":\" hi \"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
    "\"arguments\":{\"a\":1}}}]},{\"role\":\"tool\",\"content\":\"2\"},{\"role\":\"user\",\"content\":"
    "[{\"type\":\"text\",\"text\":\"x\"}]}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
    "\"add_generation_prompt\":true,\"bos_token\":\"<s>\",\"eos_token\":\"</s>\",\"enable_thinking\":false}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *src = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t slen = nul ? (size_t)(nul - data) : size;
    json_t *vars = NULL;
    if (nul) vars = json_loadb((const char *)nul + 1, size - slen - 1, 0, NULL);
    if (!json_is_object(vars)) {
        json_decref(vars);
        vars = json_loads(k_vars, 0, NULL);
    }
    tm_jinja *t = NULL;
    tm_err err;
    err.msg[0] = 0;
    tm_status s = tm_jinja_compile(src, slen, TM_JINJA_HF, &t, &err);
    if (s != TM_OK && s != TM_ERR_INPUT && s != TM_ERR_NOMEM) abort();
    if (s == TM_OK) {
        tm_jinja_limits lim = {.max_output = 1 << 16, .max_memory = 8 << 20, .max_steps = 200000, .max_depth = 16};
        tm_buf out;
        tm_buf_init(&out);
        if (tm_buf_puts(&out, "prefix")) abort();
        s = tm_jinja_render(t, vars, &lim, &out, &err);
        if (s != TM_OK && s != TM_ERR_INPUT && s != TM_ERR_NOMEM) abort();
        if (s != TM_OK && (out.len != 6 || memcmp(out.data, "prefix", 6) || !err.msg[0])) abort();
        if (s == TM_OK && (out.data[out.len] != 0 || out.len > 6 + lim.max_output)) abort();
        tm_buf_free(&out);
        tm_jinja_destroy(t);
    } else if (!err.msg[0]) {
        abort();
    }
    json_decref(vars);
    return 0;
}
