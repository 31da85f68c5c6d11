/* test_chat.c — chat template renderers without test data: every built-in
 * against expected prompts rendered by Python Jinja2 (trim_blocks,
 * lstrip_blocks, as transformers) from the families' real templates
 * (reasoning/tool turns of qwen3 and deepseek, R1's </think> stripping,
 * llama2/mistral [INST], qwen2.5's default system prompt, llama3.1's date
 * block, Unicode-whitespace trim); registry/detection; and the conversations
 * a template cannot render -> TM_ERR_INPUT with a clear message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tokenizer/chat.h"

typedef struct {
    const char *tmpl;
    size_t n;
    tm_chat_message m[8];
    int gen;
    const char *want;
} render_case;

/* Generated with Jinja2 3.1 from the templates (see the file comment). */
static const render_case cases[] = {
    {"qwen3", 4, {{"system", "sys"}, {"user", "q1"}, {"assistant", "<think>\nreason one\n</think>\n\nanswer one"}, {"user", "q2"}}, 1,
     "<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\nanswer one<|im_end|>\n<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3", 2, {{"user", "q1"}, {"assistant", "<think>r</think>ans"}}, 0,
     "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\n<think>\nr\n</think>\n\nans<|im_end|>\n"},
    {"qwen3", 2, {{"user", "q1"}, {"assistant", "plain"}}, 0,
     "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nplain<|im_end|>\n"},
    {"qwen3", 2, {{"user", "q1"}, {"assistant", "\n\nx<think>\n\na\n\n</think>\n\nb</think>\n\nc"}}, 0,
     "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\n<think>\na\n</think>\n\nc<|im_end|>\n"},
    {"qwen3", 6, {{"user", "weather?"}, {"assistant", "calling"}, {"tool", "r1"}, {"tool", "r2"}, {"assistant", "<think>t</think>done"}, {"user", "<tool_response>x</tool_response>"}}, 1,
     "<|im_start|>user\nweather?<|im_end|>\n<|im_start|>assistant\ncalling<|im_end|>\n<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\nt\n</think>\n\ndone<|im_end|>\n<|im_start|>user\n<tool_response>x</tool_response><|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3", 3, {{"system", "s"}, {"system", "s2"}, {"user", "u"}}, 1,
     "<|im_start|>system\ns<|im_end|>\n<|im_start|>system\ns2<|im_end|>\n<|im_start|>user\nu<|im_end|>\n<|im_start|>assistant\n"},
    {"deepseek", 8, {{"system", "a"}, {"user", "u1"}, {"system", "b"}, {"assistant", "x"}, {"tool", "t1"}, {"tool", "t2"}, {"assistant", "y"}, {"user", "u2"}}, 1,
     "<\357\275\234begin\342\226\201of\342\226\201sentence\357\275\234>a\n\nb<\357\275\234User\357\275\234>u1<\357\275\234Assistant\357\275\234>x<\357\275\234end\342\226\201of\342\226\201sentence\357\275\234><\357\275\234tool\342\226\201outputs\342\226\201begin\357\275\234><\357\275\234tool\342\226\201output\342\226\201begin\357\275\234>t1<\357\275\234tool\342\226\201output\342\226\201end\357\275\234>\n<\357\275\234tool\342\226\201output\342\226\201begin\357\275\234>t2<\357\275\234tool\342\226\201output\342\226\201end\357\275\234><\357\275\234tool\342\226\201outputs\342\226\201end\357\275\234>y<\357\275\234end\342\226\201of\342\226\201sentence\357\275\234><\357\275\234User\357\275\234>u2<\357\275\234Assistant\357\275\234>"},
    {"deepseek", 2, {{"user", "u1"}, {"tool", "t1"}}, 1,
     "<\357\275\234begin\342\226\201of\342\226\201sentence\357\275\234><\357\275\234User\357\275\234>u1<\357\275\234tool\342\226\201outputs\342\226\201begin\357\275\234><\357\275\234tool\342\226\201output\342\226\201begin\357\275\234>t1<\357\275\234tool\342\226\201output\342\226\201end\357\275\234><\357\275\234tool\342\226\201outputs\342\226\201end\357\275\234>"},
    {"deepseek-r1", 3, {{"user", "u1"}, {"assistant", "<think>x</think>ans</think>final"}, {"user", "u2"}}, 1,
     "<\357\275\234begin\342\226\201of\342\226\201sentence\357\275\234><\357\275\234User\357\275\234>u1<\357\275\234Assistant\357\275\234>final<\357\275\234end\342\226\201of\342\226\201sentence\357\275\234><\357\275\234User\357\275\234>u2<\357\275\234Assistant\357\275\234><think>\n"},
    {"deepseek-r1", 1, {{"user", "u1"}}, 0,
     "<\357\275\234begin\342\226\201of\342\226\201sentence\357\275\234><\357\275\234User\357\275\234>u1"},
    {"llama2", 4, {{"system", "Be brief."}, {"user", " hi "}, {"assistant", " hello "}, {"user", "bye"}}, 1,
     "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n hi [/INST] hello </s><s>[INST] bye [/INST]"},
    {"llama2", 3, {{"user", "a"}, {"assistant", "b"}, {"user", "c"}}, 0,
     "<s>[INST] a [/INST] b </s><s>[INST] c [/INST]"},
    {"mistral", 4, {{"system", "Be brief."}, {"user", "hi"}, {"assistant", "hello"}, {"user", "bye"}}, 1,
     "<s> [INST] Be brief.\n\nhi [/INST] hello</s> [INST] bye [/INST]"},
    {"mistral", 1, {{"user", "hi"}}, 1,
     "<s> [INST] hi [/INST]"},
    {"qwen2.5", 1, {{"user", "hi"}}, 1,
     "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen2.5", 5, {{"system", "own"}, {"user", "hi"}, {"assistant", "yo"}, {"tool", "r"}, {"user", "x"}}, 0,
     "<|im_start|>system\nown<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n<|im_start|>user\n<tool_response>\nr\n</tool_response><|im_end|>\n<|im_start|>user\nx<|im_end|>\n"},
    {"llama3.1", 1, {{"user", "hi"}}, 1,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama3.1", 5, {{"system", "  sys  "}, {"user", " a "}, {"assistant", "b"}, {"tool", "tool \"out\"\n\303\251\001"}, {"user", "c"}}, 0,
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nsys<|eot_id|><|start_header_id|>user<|end_header_id|>\n\na<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nb<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n\"tool \\\"out\\\"\\n\303\251\\u0001\"<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nc<|eot_id|>"},
    {"llama3", 1, {{"user", "hi"}}, 0,
     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"},
    {"chatml", 2, {{"system", "s"}, {"user", "u"}}, 1,
     "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nu<|im_end|>\n<|im_start|>assistant\n"},
    {"gemma3", 4, {{"system", " s "}, {"user", " u "}, {"assistant", " a "}, {"user", "\343\200\200v\302\240\342\200\203"}}, 1,
     "<bos><start_of_turn>user\n s \n\nu<end_of_turn>\n<start_of_turn>model\na<end_of_turn>\n<start_of_turn>user\nv<end_of_turn>\n<start_of_turn>model\n"},
};

static const char *bos_for(const char *tmpl)
{
    if (!strncmp(tmpl, "deepseek", 8)) return "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>";
    if (!strcmp(tmpl, "llama2") || !strcmp(tmpl, "mistral")) return "<s>";
    if (!strncmp(tmpl, "llama3", 6)) return "<|begin_of_text|>";
    if (!strcmp(tmpl, "gemma3")) return "<bos>";
    return NULL;
}

static const char *eos_for(const char *tmpl)
{
    return (!strcmp(tmpl, "llama2") || !strcmp(tmpl, "mistral")) ? "</s>" : NULL;
}

static void test_render_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const render_case *c = &cases[i];
        const tm_chat_template *t = tm_chat_template_by_name(c->tmpl);
        assert_non_null(t);
        tm_buf out;
        tm_buf_init(&out);
        tm_err err = {{0}};
        if (tm_chat_render(t, c->m, c->n, c->gen, bos_for(c->tmpl), eos_for(c->tmpl), &out, &err))
            fail_msg("case %zu (%s): %s", i, c->tmpl, err.msg);
        if (strcmp(out.data, c->want))
            fail_msg("case %zu (%s):\n got  [%s]\n want [%s]", i, c->tmpl, out.data, c->want);
        tm_buf_free(&out);
    }
}

static void test_render_appends(void **state)
{
    (void)state;
    tm_buf out;
    tm_buf_init(&out);
    assert_int_equal(tm_buf_puts(&out, "X"), TM_OK);
    tm_chat_message m[] = {{"user", "a"}, {"assistant", "b"}};
    tm_err err;
    assert_int_equal(tm_chat_render(tm_chat_template_by_name("raw"), m, 2, 1, "<s>", "</s>", &out, &err), TM_OK);
    assert_string_equal(out.data, "Xab"); /* raw: contents only, no BOS */
    /* a failed render leaves the buffer as it was */
    tm_chat_message bad[] = {{"assistant", "a"}};
    assert_int_equal(tm_chat_render(tm_chat_template_by_name("gemma3"), bad, 1, 1, "<bos>", NULL, &out, &err),
                     TM_ERR_INPUT);
    assert_string_equal(out.data, "Xab");
    assert_int_equal(out.len, 3);
    tm_buf_free(&out);
    /* a render that writes nothing (llama2 drops a lone system prompt) still gives "" */
    tm_chat_message sys[] = {{"system", "s"}};
    assert_int_equal(tm_chat_render(tm_chat_template_by_name("llama2"), sys, 1, 1, "<s>", "</s>", &out, &err), TM_OK);
    assert_non_null(out.data);
    assert_int_equal(out.len, 0);
    assert_string_equal(out.data, "");
    tm_buf_free(&out);
}

typedef struct {
    const char *tmpl;
    size_t n;
    tm_chat_message m[4];
    const char *msg_part; /* expected in the error message */
} error_case;

static void test_unrenderable(void **state)
{
    (void)state;
    static const error_case bad[] = {
        {"gemma3", 2, {{"user", "a"}, {"user", "b"}}, "messages[1]: conversation roles must alternate"},
        {"gemma3", 1, {{"assistant", "a"}}, "messages[0]: conversation roles must alternate"},
        {"gemma3", 3, {{"system", "s"}, {"assistant", "a"}, {"user", "b"}}, "messages[1]: conversation roles"},
        {"gemma3", 3, {{"user", "a"}, {"assistant", "b"}, {"system", "s"}}, "messages[2]: chat template gemma3 allows a system message only first"},
        {"gemma3", 2, {{"user", "a"}, {"tool", "b"}}, "messages[1]: role 'tool' is not supported by chat template gemma3"},
        {"mistral", 2, {{"user", "a"}, {"user", "b"}}, "must alternate user/assistant"},
        {"mistral", 2, {{"user", "a"}, {"system", "b"}}, "allows a system message only first"},
        {"llama2", 1, {{"assistant", "a"}}, "must alternate"},
        {"qwen3", 1, {{"narrator", "a"}}, "messages[0]: role 'narrator' is not supported by chat template qwen3"},
        {"deepseek", 2, {{"user", "a"}, {"robot", "b"}}, "messages[1]: role 'robot'"},
        {"llama3", 1, {{"<|eot_id|>", "a"}}, "messages[0]: role '<|eot_id|>' is not supported"},
        {"qwen", 2, {{"user", "a"}, {"user", NULL}}, "messages[1]: content missing"},
        {"chatml", 1, {{NULL, "a"}}, "messages[0]: role missing"},
        {"llama3", 0, {{NULL, NULL}}, "messages: the conversation is empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tm_buf out;
        tm_buf_init(&out);
        tm_err err = {{0}};
        tm_status s = tm_chat_render(tm_chat_template_by_name(bad[i].tmpl), bad[i].m, bad[i].n, 1, "<s>", "</s>",
                                     &out, &err);
        if (s != TM_ERR_INPUT) fail_msg("case %zu (%s): status %d, want TM_ERR_INPUT", i, bad[i].tmpl, (int)s);
        if (!strstr(err.msg, bad[i].msg_part))
            fail_msg("case %zu (%s): message [%s] lacks [%s]", i, bad[i].tmpl, err.msg, bad[i].msg_part);
        tm_buf_free(&out);
    }
}

static void test_registry_and_detect(void **state)
{
    (void)state;
    assert_null(tm_chat_template_by_name("nope"));
    assert_null(tm_chat_template_by_name(NULL));
    /* every listed name resolves to itself */
    char names[512];
    strncpy(names, tm_chat_template_names(), sizeof names - 1);
    names[sizeof names - 1] = 0;
    int count = 0;
    for (char *save = NULL, *tok = strtok_r(names, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        const tm_chat_template *t = tm_chat_template_by_name(tok);
        assert_non_null(t);
        assert_string_equal(tm_chat_template_name(t), tok);
        count++;
    }
    assert_true(count >= 10);

    static const struct {
        const char *jinja, *want;
    } det[] = {
        {"{{ '<|start_header_id|>' }}{% if add_generation_prompt %}", "llama3"},
        {"{{ '<|start_header_id|>' }}", "llama3-always"},
        {"Cutting Knowledge Date: <|start_header_id|>", "llama3.1"},
        {"<|im_start|> reasoning_content", "qwen3"},
        {"<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.", "qwen2.5"},
        {"<|im_start|>", "chatml"},
        {"<\xef\xbd\x9cUser\xef\xbd\x9c>", "deepseek"},
        {"<\xef\xbd\x9cUser\xef\xbd\x9c></think><\xef\xbd\x9c" "Assistant\xef\xbd\x9c><think>\\n", "deepseek-r1"},
        {"<\xef\xbd\x9cUser\xef\xbd\x9c></think><\xef\xbd\x9c" "Assistant\xef\xbd\x9c>", "deepseek-r1-nothink"},
        {"<start_of_turn>", "gemma3"},
        {"[INST] <<SYS>>", "llama2"},
        {"[INST]", "mistral"},
    };
    for (size_t i = 0; i < sizeof det / sizeof det[0]; i++) {
        const tm_chat_template *t = NULL;
        tm_err err;
        assert_int_equal(tm_chat_template_detect(det[i].jinja, &t, &err), TM_OK);
        assert_string_equal(tm_chat_template_name(t), det[i].want);
    }
    const tm_chat_template *t = NULL;
    tm_err err;
    assert_int_equal(tm_chat_template_detect("{{ messages }}", &t, &err), TM_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "--chat-template"));
    assert_int_equal(tm_chat_template_detect("", &t, &err), TM_ERR_NOTFOUND);
    /* resolve: a name wins over the text; an unknown name is an error */
    assert_int_equal(tm_chat_template_resolve("mistral", "<start_of_turn>", &t, &err), TM_OK);
    assert_string_equal(tm_chat_template_name(t), "mistral");
    assert_int_equal(tm_chat_template_resolve(NULL, "<start_of_turn>", &t, &err), TM_OK);
    assert_string_equal(tm_chat_template_name(t), "gemma3");
    assert_int_equal(tm_chat_template_resolve("gemma", NULL, &t, &err), TM_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "unknown chat template 'gemma'"));
}

static void test_conv_from_json(void **state)
{
    (void)state;
    json_error_t je;
    json_t *j = json_loads("[{\"role\":\"system\",\"content\":\"s\"},"
                           "{\"role\":\"user\",\"name\":\"x\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                           "{\"type\":\"text\",\"text\":\"b\"}]}]",
                           0, &je);
    assert_non_null(j);
    tm_chat_conv *c = NULL;
    tm_err err;
    assert_int_equal(tm_chat_conv_from_json(j, &c, &err), TM_OK);
    json_decref(j); /* the conversation owns copies */
    assert_int_equal(tm_chat_conv_count(c), 2);
    const tm_chat_message *m = tm_chat_conv_messages(c);
    assert_string_equal(m[0].role, "system");
    assert_string_equal(m[1].content, "a\nb");
    tm_chat_conv_destroy(c);
    tm_chat_conv_destroy(NULL);

    static const struct {
        const char *json, *msg_part;
    } bad[] = {
        {"{}", "messages: must be an array"},
        {"[]", "messages: the conversation is empty"},
        {"[1]", "messages[0]: must be an object"},
        {"[{\"content\":\"a\"}]", "messages[0].role: missing"},
        {"[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\"}]", "messages[1].content: must be a string"},
        {"[{\"role\":\"user\",\"content\":null}]", "(missing or null)"},
        {"[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]", "messages[0].content[0]: only"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = json_loads(bad[i].json, JSON_DECODE_ANY, &je);
        assert_non_null(j);
        c = (tm_chat_conv *)1;
        assert_int_equal(tm_chat_conv_from_json(j, &c, &err), TM_ERR_INPUT);
        assert_null(c);
        if (!strstr(err.msg, bad[i].msg_part)) fail_msg("case %zu: [%s] lacks [%s]", i, err.msg, bad[i].msg_part);
        json_decref(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_cases),
        cmocka_unit_test(test_render_appends),
        cmocka_unit_test(test_unrenderable),
        cmocka_unit_test(test_registry_and_detect),
        cmocka_unit_test(test_conv_from_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
