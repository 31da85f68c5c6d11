/* test_chat_golden.c — the built-in chat templates against the real ones.
 *
 * Every line of testdata/tokenizers/golden_chat.jsonl (rendered by Jinja2
 * from each family's tokenizer_config.json chat_template) must come out of
 * tm_chat_render byte for byte, using the template that tm_chat_template_detect
 * picks from that same chat_template text; with the tokenizer loaded, the
 * encoding of the rendered text must equal the golden ids. Also: detection
 * for the five families, and unrenderable conversations -> TM_ERR_INPUT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"
#include "util/buf.h"

static const char *testdata(void) { return getenv("TOKENMILL_TESTDATA"); }

/* tokenizer_config.json of a family, parsed (caller json_decref's). */
static json_t *load_config(const char *family)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/%s/tokenizer_config.json", testdata(), family);
    json_error_t je;
    json_t *cfg = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
    if (!cfg) fail_msg("%s: %s", path, je.text);
    return cfg;
}

/* bos_token / eos_token: a string or an AddedToken object with "content". */
static const char *token_str(json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void test_golden_render(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/golden_chat.jsonl", testdata());
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    int lines = 0, encoded = 0;
    tm_tokenizer *tok = NULL;
    char tok_family[64] = "";
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *g = json_loads(line, 0, &je);
        assert_non_null(g);
        const char *family = json_string_value(json_object_get(g, "tokenizer"));
        assert_non_null(family);
        json_t *cfg = load_config(family);
        const tm_chat_template *t = NULL;
        tm_err err = {{0}};
        const char *jinja = json_string_value(json_object_get(cfg, "chat_template"));
        if (tm_chat_template_detect(jinja, &t, &err)) fail_msg("%s: %s", family, err.msg);

        json_t *jm = json_object_get(g, "messages");
        size_t n = json_array_size(jm);
        tm_chat_message *msgs = calloc(n ? n : 1, sizeof *msgs);
        assert_non_null(msgs);
        for (size_t i = 0; i < n; i++) {
            msgs[i].role = json_string_value(json_object_get(json_array_get(jm, i), "role"));
            msgs[i].content = json_string_value(json_object_get(json_array_get(jm, i), "content"));
        }
        tm_buf out;
        tm_buf_init(&out);
        int gen = json_is_true(json_object_get(g, "add_generation_prompt"));
        if (tm_chat_render(t, msgs, n, gen, token_str(cfg, "bos_token"), token_str(cfg, "eos_token"),
                           &out, &err))
            fail_msg("line %d (%s): %s", lines + 1, family, err.msg);
        const char *want = json_string_value(json_object_get(g, "text"));
        if (strcmp(out.data, want))
            fail_msg("line %d (%s, template %s):\n got  [%s]\n want [%s]", lines + 1, family,
                     tm_chat_template_name(t), out.data, want);

        /* with the tokenizer: encode(text) == ids */
        if (strcmp(tok_family, family)) {
            tm_tokenizer_destroy(tok);
            tok = NULL;
            snprintf(path, sizeof path, "%s/tokenizers/%s", testdata(), family);
            if (tm_tokenizer_load(path, &tok, &err)) fail_msg("load %s: %s", path, err.msg);
            snprintf(tok_family, sizeof tok_family, "%s", family);
        }
        int32_t *ids = NULL;
        size_t nids = 0;
        if (tm_tokenizer_encode(tok, out.data, out.len, 0, &ids, &nids, &err))
            fail_msg("line %d: encode: %s", lines + 1, err.msg);
        json_t *jids = json_object_get(g, "ids");
        assert_int_equal(nids, json_array_size(jids));
        for (size_t i = 0; i < nids; i++)
            if (ids[i] != json_integer_value(json_array_get(jids, i)))
                fail_msg("line %d (%s): ids[%zu] = %d, want %lld", lines + 1, family, i, ids[i],
                         (long long)json_integer_value(json_array_get(jids, i)));
        encoded++;
        free(ids);
        tm_buf_free(&out);
        free(msgs);
        json_decref(cfg);
        json_decref(g);
        lines++;
    }
    free(line);
    fclose(f);
    tm_tokenizer_destroy(tok);
    assert_int_equal(lines, 80);
    assert_int_equal(encoded, 80);
}

static void test_detect_families(void **state)
{
    (void)state;
    static const struct {
        const char *family, *want;
    } cases[] = {
        {"llama3", "llama3-always"}, {"qwen3", "qwen3"}, {"deepseek_v3", "deepseek"}, {"gemma3", "gemma3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *cfg = load_config(cases[i].family);
        const tm_chat_template *t = NULL;
        tm_err err;
        assert_int_equal(tm_chat_template_detect(json_string_value(json_object_get(cfg, "chat_template")),
                                                 &t, &err),
                         TM_OK);
        assert_string_equal(tm_chat_template_name(t), cases[i].want);
        json_decref(cfg);
    }
    /* mistral ships no chat_template: detection asks for --chat-template */
    json_t *cfg = load_config("mistral");
    const tm_chat_template *t = (const tm_chat_template *)1;
    tm_err err;
    assert_null(json_object_get(cfg, "chat_template"));
    assert_int_equal(tm_chat_template_detect(NULL, &t, &err), TM_ERR_NOTFOUND);
    assert_null(t);
    assert_non_null(strstr(err.msg, "--chat-template"));
    json_decref(cfg);
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
        cmocka_unit_test(test_golden_render),
        cmocka_unit_test(test_detect_families),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
