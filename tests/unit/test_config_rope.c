/* test_config_rope.c — config.json RoPE layouts: transformers <= 4 (top-level
 * rope_theta + rope_scaling) and transformers 5 (rope_parameters), and
 * "architectures": null. Each layout read, each unreadable one refused with
 * a message naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "model/model.h"

static const char *k_base =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"vocab_size\":1000,"
    "\"hidden_size\":256,\"intermediate_size\":512,\"num_hidden_layers\":3,\"num_attention_heads\":8%s}";

#define L3 "\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192"

static tm_status parse_with(const char *extra, tm_model_config *c, tm_err *e)
{
    char buf[4096];
    snprintf(buf, sizeof buf, k_base, extra);
    return tm_model_config_parse(buf, strlen(buf), "DIR/config.json", c, e);
}

static void expect_ok(const char *extra, tm_model_config *c)
{
    tm_err e = {{0}};
    tm_status s = parse_with(extra, c, &e);
    if (s) fprintf(stderr, "extra '%s': %s\n", extra, e.msg);
    assert_int_equal(s, TM_OK);
}

static void expect_error(const char *extra, const char *msg)
{
    tm_model_config c;
    tm_err e = {{0}};
    tm_status s = parse_with(extra, &c, &e);
    if (s == TM_OK || strcmp(e.msg, msg)) fprintf(stderr, "extra '%s':\n got  '%s'\n want '%s'\n", extra, e.msg, msg);
    assert_int_equal(s, TM_ERR_INPUT);
    assert_string_equal(e.msg, msg);
}

static void test_v4_layout(void **state)
{
    (void)state;
    tm_model_config c;
    expect_ok(",\"rope_theta\":500000.0", &c);
    assert_true(c.rope_theta == 500000.0f);
    assert_int_equal(c.rope_scaling, TM_ROPE_NONE);
    expect_ok(",\"rope_theta\":500000.0,\"rope_scaling\":{\"rope_type\":\"llama3\"," L3 "}", &c);
    assert_true(c.rope_theta == 500000.0f);
    assert_int_equal(c.rope_scaling, TM_ROPE_LLAMA3);
    assert_true(c.rope_factor == 8.0f && c.rope_high_freq_factor == 4.0f);
    assert_int_equal(c.rope_original_max_pos, 8192);
    /* no RoPE field at all: transformers' class default for these architectures */
    expect_ok("", &c);
    assert_true(c.rope_theta == 10000.0f);
}

static void test_v5_layout(void **state)
{
    (void)state;
    tm_model_config c;
    expect_ok(",\"rope_parameters\":{\"rope_theta\":1000000.0,\"rope_type\":\"default\"}", &c);
    assert_true(c.rope_theta == 1e6f);
    assert_int_equal(c.rope_scaling, TM_ROPE_NONE);
    expect_ok(",\"rope_parameters\":{\"rope_theta\":1000000.0}", &c);
    assert_true(c.rope_theta == 1e6f);
    expect_ok(",\"rope_parameters\":{\"rope_theta\":500000,\"rope_type\":\"llama3\"," L3 "}", &c);
    assert_true(c.rope_theta == 500000.0f);
    assert_int_equal(c.rope_scaling, TM_ROPE_LLAMA3);
    assert_true(c.rope_factor == 8.0f && c.rope_low_freq_factor == 1.0f);
    /* both written (transformers 5 keeps rope_scaling as an alias), same content */
    expect_ok(",\"rope_parameters\":{\"rope_theta\":500000,\"rope_type\":\"llama3\"," L3 "},"
              "\"rope_scaling\":{\"rope_theta\":500000,\"rope_type\":\"llama3\"," L3 "},\"rope_theta\":500000",
              &c);
    assert_true(c.rope_theta == 500000.0f);
    assert_int_equal(c.rope_scaling, TM_ROPE_LLAMA3);
    /* "architectures": null falls back to model_type */
    const char *q = "{\"architectures\":null,\"model_type\":\"qwen3\",\"vocab_size\":10,\"hidden_size\":8,"
                    "\"intermediate_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":2,"
                    "\"rope_parameters\":{\"rope_theta\":1000000.0,\"rope_type\":\"default\"}}";
    tm_err e = {{0}};
    assert_int_equal(tm_model_config_parse(q, strlen(q), NULL, &c, &e), TM_OK);
    assert_int_equal(c.arch, TM_ARCH_QWEN3);
    assert_true(c.rope_theta == 1e6f);
}

static void test_refused(void **state)
{
    (void)state;
    expect_error(",\"rope_parameters\":{\"rope_type\":\"default\"}",
                 "DIR/config.json: rope_parameters: rope_theta: missing (and no top-level rope_theta)");
    expect_error(",\"rope_parameters\":{\"rope_theta\":1e6,\"rope_type\":\"yarn\",\"factor\":4}",
                 "DIR/config.json: rope_parameters: rope_type 'yarn' is not supported (supported: llama3, default)");
    expect_error(",\"rope_theta\":1e6,\"rope_scaling\":{\"type\":\"linear\",\"factor\":2}",
                 "DIR/config.json: rope_scaling: rope_type 'linear' is not supported (supported: llama3, default)");
    expect_error(",\"rope_theta\":1e6,\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}",
                 "DIR/config.json: rope_scaling: rope_type 'yarn' is not supported (supported: llama3, default)");
    expect_error(",\"rope_theta\":10000,\"rope_parameters\":{\"rope_theta\":1e6,\"rope_type\":\"default\"}",
                 "DIR/config.json: rope_theta: top-level 10000 and rope_parameters.rope_theta 1e+06 differ");
    expect_error(",\"rope_parameters\":{\"full_attention\":{\"rope_theta\":1e6,\"rope_type\":\"default\"},"
                 "\"sliding_attention\":{\"rope_theta\":1e4,\"rope_type\":\"default\"}}",
                 "DIR/config.json: rope_parameters: 'full_attention': per-layer-type RoPE parameters are not "
                 "supported for llama");
    expect_error(",\"rope_parameters\":[1]", "DIR/config.json: rope_parameters: not an object");
    expect_error(",\"rope_parameters\":{\"rope_theta\":\"big\"}", "DIR/config.json: rope_parameters: rope_theta: not a number");
    expect_error(",\"rope_parameters\":{\"rope_theta\":0.5}",
                 "DIR/config.json: rope_parameters: rope_theta: 0.5 is out of range [1, 1e+12]");
    expect_error(",\"rope_parameters\":{\"rope_theta\":5e5,\"rope_type\":\"llama3\",\"factor\":8}",
                 "DIR/config.json: rope_parameters: low_freq_factor: missing (llama3 needs factor, low_freq_factor, "
                 "high_freq_factor, original_max_position_embeddings)");
    expect_error(",\"rope_parameters\":{\"rope_theta\":5e5,\"rope_type\":\"llama3\"," L3 "},"
                 "\"rope_scaling\":{\"rope_type\":\"default\"}",
                 "DIR/config.json: rope_scaling and rope_parameters disagree");
    tm_model_config c;
    tm_err e = {{0}};
    const char *q = "{\"architectures\":null,\"vocab_size\":10}";
    assert_int_equal(tm_model_config_parse(q, strlen(q), "C", &c, &e), TM_ERR_INPUT);
    assert_non_null(strstr(e.msg, "C: architectures: missing (and no model_type)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_layout),
        cmocka_unit_test(test_v5_layout),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
