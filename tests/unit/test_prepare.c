/* test_prepare.c — request preparation (worker/prepare.h) of the fields
 * issue 14 honours.
 *
 * - Goldens (tests/data/prepare_golden.jsonl, tests/gen/gen_prepare_goldens.py:
 *   Python jinja2 set up as transformers, messages shaped as vLLM shapes
 *   them): chat_template_kwargs (Qwen3 enable_thinking false renders the
 *   empty think block), add_generation_prompt false, continue_final_message,
 *   developer -> system, text parts, assistant tool_calls with content null
 *   and tool messages. The prepared prompt ids must equal the golden text's
 *   encoding.
 * - logit_bias / min_tokens land in the sampling params; a bias key outside
 *   the model's vocabulary is a request error; add_special_tokens adds or
 *   drops BOS.
 * The golden part is skipped (with a message) without the test data.
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
#include "worker/prepare.h"

static const char *testdata(void)
{
    const char *td = getenv("TOKENMILL_TESTDATA");
    return td ? td : "../shared/testdata";
}

typedef struct fam {
    tm_tokenizer *tok;
    tm_chat_template *chat;
} fam;

static int load_fam(const char *name, fam *f)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tokenizers/%s", testdata(), name);
    tm_err err;
    if (tm_tokenizer_load(dir, &f->tok, &err)) return 0;
    assert_int_equal(tm_chat_template_load(NULL, tm_tokenizer_chat_template(f->tok), &f->chat, &err), TM_OK);
    return 1;
}

static void free_fam(fam *f)
{
    tm_chat_template_destroy(f->chat);
    tm_tokenizer_destroy(f->tok);
}

static void test_goldens(void **st)
{
    (void)st;
    const char *src = getenv("TOKENMILL_SRC");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/prepare_golden.jsonl", src ? src : "..");
    FILE *fp = fopen(path, "r");
    if (!fp) fail_msg("cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    int n = 0, n_cache = 0;
    fam cache[4];
    char cache_name[4][32];
    while (getline(&line, &cap, fp) > 0) {
        json_error_t je;
        json_t *g = json_loads(line, 0, &je);
        assert_non_null(g);
        const char *name = json_string_value(json_object_get(g, "name"));
        const char *tn = json_string_value(json_object_get(g, "tokenizer"));
        int k = 0;
        while (k < n_cache && strcmp(cache_name[k], tn)) k++;
        if (k == n_cache) { /* each tokenizer loaded once: loading is the slow part */
            assert_true(n_cache < 4 && strlen(tn) < sizeof cache_name[0]);
            if (!load_fam(tn, &cache[k])) {
                fprintf(stderr, "skipped: the test data's tokenizers are not in %s\n", testdata());
                json_decref(g);
                break;
            }
            strcpy(cache_name[n_cache++], tn);
        }
        fam f = cache[k];
        char *body = json_dumps(json_object_get(g, "body"), JSON_COMPACT);
        json_t *text = json_object_get(g, "text");
        tm_prepare_ctx ctx = {.tok = f.tok, .chat = f.chat, .cfg = NULL};
        tm_prepared p;
        tm_err err;
        tm_status s = tm_prepare_request(&ctx, "/v1/chat/completions", body, "job", name, &p, &err);
        if (s) fail_msg("%s: %s", name, err.msg);
        int32_t *ids = NULL;
        size_t n_ids = 0;
        assert_int_equal(tm_tokenizer_encode(f.tok, json_string_value(text), json_string_length(text), 0, &ids,
                                             &n_ids, &err), TM_OK);
        if ((size_t)p.n_prompt != n_ids || memcmp(ids, p.prompt, n_ids * sizeof *ids)) {
            char *got = NULL;
            size_t glen = 0;
            tm_tokenizer_decode(f.tok, p.prompt, (size_t)p.n_prompt, 0, &got, &glen, &err);
            fail_msg("%s: prompt differs\n want %s\n got  %s", name, json_string_value(text), got ? got : "?");
        }
        free(ids);
        free(body);
        tm_prepared_clear(&p);
        json_decref(g);
        n++;
    }
    for (int k = 0; k < n_cache; k++) free_fam(&cache[k]);
    free(line);
    fclose(fp);
    if (n) assert_true(n >= 10);
}

static void test_bias_and_min_tokens(void **st)
{
    (void)st;
    tm_model_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.vocab_size = 1000;
    tm_prepare_ctx ctx = {.tok = NULL, .chat = NULL, .cfg = &cfg};
    tm_prepared p;
    tm_err err;
    assert_int_equal(tm_prepare_request(&ctx, "/v1/completions",
                                        "{\"prompt\":[1,2,3],\"logit_bias\":{\"5\":100,\"999\":-100,\"7\":0.25},"
                                        "\"min_tokens\":4,\"max_tokens\":9}",
                                        "job", "c", &p, &err), TM_OK);
    assert_int_equal(p.params.n_bias, 3);
    assert_int_equal(p.params.min_tokens, 4);
    float want[1000] = {0};
    int seen = 0;
    want[5] = 100.0f, want[999] = -100.0f, want[7] = 0.25f;
    for (int i = 0; i < p.params.n_bias; i++) {
        assert_true(p.params.bias[i] == want[p.params.bias_id[i]]);
        seen |= 1 << (p.params.bias_id[i] == 5 ? 0 : p.params.bias_id[i] == 999 ? 1 : 2);
    }
    assert_int_equal(seen, 7);
    tm_prepared_clear(&p);
    /* a key past the vocabulary: a request error, not a crash */
    assert_int_equal(tm_prepare_request(&ctx, "/v1/completions", "{\"prompt\":[1],\"logit_bias\":{\"1000\":1}}",
                                        "job", "c", &p, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "logit_bias"));
    assert_non_null(strstr(err.msg, "not in the vocabulary"));
    assert_int_equal(tm_prepare_request(&ctx, "/v1/completions", "{\"prompt\":[1],\"logit_bias\":{\"x\":1}}",
                                        "job", "c", &p, &err), TM_ERR_INPUT);
    assert_int_equal(tm_prepare_request(&ctx, "/v1/completions", "{\"prompt\":[1],\"min_tokens\":5,\"max_tokens\":2}",
                                        "job", "c", &p, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "min_tokens"));
}

static void test_add_special_tokens(void **st)
{
    (void)st;
    fam f = {0};
    if (!load_fam("llama3", &f)) {
        fprintf(stderr, "skipped: no test data in %s\n", testdata());
        return;
    }
    assert_true(tm_tokenizer_add_bos(f.tok));
    tm_prepare_ctx ctx = {.tok = f.tok, .chat = f.chat, .cfg = NULL};
    tm_prepared a, b, c;
    tm_err err;
    assert_int_equal(tm_prepare_request(&ctx, "/v1/completions", "{\"prompt\":\"Hello\"}", "j", "c", &a, &err), TM_OK);
    assert_int_equal(tm_prepare_request(&ctx, "/v1/completions", "{\"prompt\":\"Hello\",\"add_special_tokens\":false}",
                                        "j", "c", &b, &err), TM_OK);
    assert_int_equal(a.n_prompt, b.n_prompt + 1);
    assert_memory_equal(a.prompt + 1, b.prompt, sizeof(int32_t) * (size_t)b.n_prompt);
    /* chat: the template writes BOS; add_special_tokens true adds another (vLLM) */
    assert_int_equal(tm_prepare_request(&ctx, "/v1/chat/completions",
                                        "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"add_special_tokens\":true}",
                                        "j", "c", &c, &err), TM_OK);
    assert_int_equal(c.prompt[0], c.prompt[1]);
    tm_prepared_clear(&c);
    /* continue_final_message with add_generation_prompt true: refused */
    assert_int_equal(tm_prepare_request(&ctx, "/v1/chat/completions",
                                        "{\"messages\":[{\"role\":\"assistant\",\"content\":\"Hi\"}],"
                                        "\"continue_final_message\":true,\"add_generation_prompt\":true}",
                                        "j", "c", &c, &err), TM_ERR_INPUT);
    tm_prepared_clear(&a);
    tm_prepared_clear(&b);
    /* a built-in template cannot render tool calls: a request error, not a silent drop */
    tm_prepare_ctx bi = {.tok = f.tok, .chat = tm_chat_template_by_name("chatml"), .cfg = NULL};
    assert_int_equal(tm_prepare_request(&bi, "/v1/chat/completions",
                                        "{\"messages\":[{\"role\":\"user\",\"content\":\"w?\"},{\"role\":\"assistant\","
                                        "\"content\":null,\"tool_calls\":[{\"type\":\"function\",\"function\":"
                                        "{\"name\":\"f\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"content\":\"1\"}]}",
                                        "j", "c", &c, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "cannot render tool calls"));
    /* ... while the developer role works there too */
    assert_int_equal(tm_prepare_request(&bi, "/v1/chat/completions",
                                        "{\"messages\":[{\"role\":\"developer\",\"content\":\"d\"},{\"role\":\"user\",\"content\":\"u\"}]}",
                                        "j", "c", &c, &err), TM_OK);
    tm_prepared_clear(&c);
    free_fam(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_goldens),
        cmocka_unit_test(test_bias_and_min_tokens),
        cmocka_unit_test(test_add_special_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
