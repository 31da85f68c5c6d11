/* test_chat_jinja.c — the model's own chat template through chat.h.
 *
 * Every line of testdata/tokenizers/golden_chat.jsonl (rendered by Python
 * Jinja2 and @huggingface/jinja) must come out of the family's own
 * chat_template compiled by tm_chat_template_compile and rendered by
 * tm_chat_render_json and by tm_chat_render, byte for byte. Also: template
 * selection (tm_chat_template_load), tools and chat_template_kwargs
 * (enable_thinking), raise_exception as TM_ERR_INPUT, built-ins refusing
 * tools, chat_template.jinja taking precedence in tm_tokenizer_load.
 * Skipped when the test data is absent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"
#include "util/buf.h"

static const char *testdata(void) { return getenv("TOKENMILL_TESTDATA"); }

typedef struct {
    char family[64];
    tm_chat_template *t;
    char *bos, *eos;
} fam;

static char *tok_str(json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

static void load_family(fam *f, const char *family)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/%s/tokenizer_config.json", testdata(), family);
    json_error_t je;
    json_t *cfg = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
    if (!cfg) fail_msg("%s: %s", path, je.text);
    snprintf(f->family, sizeof f->family, "%s", family);
    f->bos = tok_str(cfg, "bos_token");
    f->eos = tok_str(cfg, "eos_token");
    json_t *ct = json_object_get(cfg, "chat_template");
    tm_err err;
    assert_true(json_is_string(ct));
    if (tm_chat_template_compile(json_string_value(ct), json_string_length(ct), &f->t, &err))
        fail_msg("%s: %s", family, err.msg);
    assert_true(tm_chat_template_is_jinja(f->t));
    json_decref(cfg);
}

static void test_golden_chat(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/golden_chat.jsonl", testdata());
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    fam fams[8];
    int nf = 0, lines = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *g = json_loads(line, 0, NULL);
        assert_non_null(g);
        const char *family = json_string_value(json_object_get(g, "tokenizer"));
        int k = 0;
        while (k < nf && strcmp(fams[k].family, family)) k++;
        if (k == nf) {
            assert_true(nf < 8);
            load_family(&fams[nf++], family);
        }
        json_t *want = json_object_get(g, "text");
        tm_chat_opts o = {.add_generation_prompt = json_is_true(json_object_get(g, "add_generation_prompt")),
                          .bos_token = fams[k].bos, .eos_token = fams[k].eos};
        tm_buf out;
        tm_buf_init(&out);
        tm_err err;
        tm_status s = tm_chat_render_json(fams[k].t, json_object_get(g, "messages"), &o, &out, &err);
        if (s) fail_msg("line %d (%s): %s", lines + 1, family, err.msg);
        if (out.len != json_string_length(want) || memcmp(out.data, json_string_value(want), out.len))
            fail_msg("line %d (%s): got\n%s\nwant\n%s", lines + 1, family, out.data, json_string_value(want));
        /* the tm_chat_message path gives the same */
        tm_chat_conv *conv;
        assert_int_equal(tm_chat_conv_from_json(json_object_get(g, "messages"), &conv, &err), TM_OK);
        tm_buf_clear(&out);
        assert_int_equal(tm_chat_render(fams[k].t, tm_chat_conv_messages(conv), tm_chat_conv_count(conv),
                                        o.add_generation_prompt, o.bos_token, o.eos_token, &out, &err),
                         TM_OK);
        assert_int_equal(out.len, json_string_length(want));
        assert_memory_equal(out.data, json_string_value(want), out.len);
        tm_chat_conv_destroy(conv);
        tm_buf_free(&out);
        json_decref(g);
        lines++;
    }
    free(line);
    fclose(f);
    for (int k = 0; k < nf; k++) {
        tm_chat_template_destroy(fams[k].t);
        free(fams[k].bos);
        free(fams[k].eos);
    }
    assert_true(lines > 10);
}

static void test_load(void **state)
{
    (void)state;
    tm_chat_template *t = NULL;
    tm_err err;
    assert_int_equal(tm_chat_template_load(NULL, NULL, &t, &err), TM_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "--chat-template"));
    assert_int_equal(tm_chat_template_load("nosuch", "{{ x }}", &t, &err), TM_ERR_NOTFOUND);
    assert_int_equal(tm_chat_template_load("chatml", "{{ x }}", &t, &err), TM_OK); /* the override wins */
    assert_string_equal(tm_chat_template_name(t), "chatml");
    assert_false(tm_chat_template_is_jinja(t));
    tm_chat_template_destroy(t); /* no-op for a built-in */
    assert_int_equal(tm_chat_template_load(NULL, "ok\n{% if %}", &t, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "chat template: line 2:"));
    assert_int_equal(tm_chat_template_load(NULL, "{% for m in messages %}{{ m.content }}{% endfor %}", &t, &err),
                     TM_OK);
    assert_string_equal(tm_chat_template_name(t), "model");
    json_t *msgs = json_loads("[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                              "{\"type\":\"text\",\"text\":\"b\"}]}]", 0, NULL);
    tm_buf out;
    tm_buf_init(&out);
    assert_int_equal(tm_chat_render_json(t, msgs, NULL, &out, &err), TM_OK);
    assert_string_equal(out.data, "a\nb");
    json_t *kw = json_loads("{\"messages\": 1}", 0, NULL);
    tm_chat_opts o = {.kwargs = kw};
    assert_int_equal(tm_chat_render_json(t, msgs, &o, &out, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "'messages' cannot be set"));
    assert_string_equal(out.data, "a\nb"); /* unchanged */
    json_decref(kw);
    tm_chat_template_destroy(t);
    /* built-ins refuse tools */
    json_t *tools = json_loads("[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]", 0, NULL);
    o = (tm_chat_opts){.tools = tools};
    assert_int_equal(tm_chat_render_json(tm_chat_template_by_name("chatml"), msgs, &o, &out, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "does not support tools"));
    json_decref(tools);
    json_decref(msgs);
    tm_buf_free(&out);
}

static void test_tools_kwargs_errors(void **state)
{
    (void)state;
    fam q = {0}, gm = {0};
    load_family(&q, "qwen3");
    load_family(&gm, "gemma3");
    json_t *msgs = json_loads(
        "[{\"role\":\"user\",\"content\":\"Weather in Oslo?\"},"
        "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"Oslo\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"-3 C\"}]",
        0, NULL);
    json_t *tools = json_loads("[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"
                               "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]",
                               0, NULL);
    json_t *kw = json_loads("{\"enable_thinking\": false}", 0, NULL);
    tm_chat_opts o = {.add_generation_prompt = 1, .eos_token = q.eos, .tools = tools, .kwargs = kw};
    tm_buf out;
    tm_buf_init(&out);
    tm_err err;
    assert_int_equal(tm_chat_render_json(q.t, msgs, &o, &out, &err), TM_OK);
    const char *want =
        "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
        "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\", "
        "\"properties\": {\"city\": {\"type\": \"string\"}}}}}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
        "<args-json-object>}\n</tool_call><|im_end|>\n"
        "<|im_start|>user\nWeather in Oslo?<|im_end|>\n"
        "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n"
        "</tool_call><|im_end|>\n"
        "<|im_start|>user\n<tool_response>\n-3 C\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n";
    if (strcmp(out.data, want)) fprintf(stderr, "got:\n%s\n", out.data);
    assert_string_equal(out.data, want);
    /* gemma3's raise_exception: roles must alternate */
    json_t *bad = json_loads("[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]", 0, NULL);
    tm_chat_opts g = {.add_generation_prompt = 1, .bos_token = gm.bos};
    tm_buf_clear(&out);
    assert_int_equal(tm_chat_render_json(gm.t, bad, &g, &out, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "chat template: line "));
    assert_non_null(strstr(err.msg, "Conversation roles must alternate user/assistant/user/assistant/..."));
    json_decref(bad);
    json_decref(msgs);
    json_decref(tools);
    json_decref(kw);
    tm_buf_free(&out);
    tm_chat_template_destroy(q.t);
    tm_chat_template_destroy(gm.t);
    free(q.bos); free(q.eos); free(gm.bos); free(gm.eos);
}

/* chat_template.jinja beside tokenizer_config.json is the template */
static void test_tokenizer_jinja_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/tm_chat_jinja_XXXXXX", p[4200], src[4200];
    assert_non_null(mkdtemp(dir));
    snprintf(src, sizeof src, "%s/models/mistral-tok-mini/tokenizer.json", testdata());
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    assert_int_equal(symlink(src, p), 0);
    tm_tokenizer *tok;
    tm_err err;
    assert_int_equal(tm_tokenizer_load(dir, &tok, &err), TM_OK);
    assert_null(tm_tokenizer_chat_template(tok)); /* no tokenizer_config.json, no .jinja */
    tm_tokenizer_destroy(tok);
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}\n", f);
    fclose(f);
    assert_int_equal(tm_tokenizer_load(dir, &tok, &err), TM_OK);
    tm_chat_template *t;
    assert_int_equal(tm_chat_template_load(NULL, tm_tokenizer_chat_template(tok), &t, &err), TM_OK);
    tm_chat_message m = {"user", "hi"};
    tm_buf out;
    tm_buf_init(&out);
    assert_int_equal(tm_chat_render(t, &m, 1, 1, NULL, NULL, &out, &err), TM_OK);
    assert_string_equal(out.data, "[user]hi"); /* the file's trailing newline is dropped, as jinja2 does */
    tm_buf_free(&out);
    tm_chat_template_destroy(t);
    tm_tokenizer_destroy(tok);
    unlink(p);
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    unlink(p);
    rmdir(dir);
}

int main(void)
{
    const char *td = testdata();
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/golden_chat.jsonl", td ? td : "");
    FILE *f = td ? fopen(path, "r") : NULL;
    if (!f) {
        printf("skipped: no test data (TOKENMILL_TESTDATA=%s)\n", td ? td : "(unset)");
        return 77;
    }
    fclose(f);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_chat),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_tools_kwargs_errors),
        cmocka_unit_test(test_tokenizer_jinja_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
