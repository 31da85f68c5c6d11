/* test_engine_opts.c — the shared model/engine option parser (cli/engine_opts.h)
 * and the typed device: every value parsed once into its enum, ranges
 * enforced with a usage error, --cuda-fast as a backend flag, a command's
 * own option codes left alone, and getopt_long over a table built from the
 * shared long options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cli/cli.h"
#include "cli/engine_opts.h"

static void test_defaults(void **state)
{
    (void)state;
    tm_engine_opts o;
    tm_engine_opts_default(&o, 64, 2048);
    assert_null(o.model_dir);
    assert_int_equal(o.device, TM_DEVICE_AUTO);
    assert_int_equal(o.quant, TM_QS_NONE);
    assert_int_equal(o.kv_dtype, TM_KV_AUTO);
    assert_int_equal(o.backend_flags, 0);
    assert_int_equal(o.max_seqs, 64);
    assert_int_equal(o.max_batch_tokens, 2048);
    assert_int_equal(o.kv_memory, 0);
}

static void test_values(void **state)
{
    (void)state;
    tm_engine_opts o;
    tm_engine_opts_default(&o, 1, 1);
    tm_status st;
    tm_err err;
    assert_int_equal(tm_engine_opts_parse(&o, TM_EO_MODEL, "/m", &st, &err), 1);
    assert_int_equal(st, TM_OK);
    assert_string_equal(o.model_dir, "/m");
    assert_int_equal(tm_engine_opts_parse(&o, TM_EO_DEVICE, "cpu", &st, &err), 1);
    assert_int_equal(st, TM_OK);
    assert_int_equal(o.device, TM_DEVICE_CPU);
    assert_int_equal(tm_engine_opts_parse(&o, TM_EO_DEVICE, "cuda", &st, &err), 1);
    assert_int_equal(o.device, TM_DEVICE_CUDA);
    assert_int_equal(tm_engine_opts_parse(&o, TM_EO_QUANT, "int4-asym", &st, &err), 1);
    assert_int_equal(st, TM_OK);
    assert_int_equal(o.quant, TM_QS_INT4_ASYM);
    assert_int_equal(tm_engine_opts_parse(&o, TM_EO_KV_DTYPE, "fp8", &st, &err), 1);
    assert_int_equal(o.kv_dtype, TM_KV_FP8);
    assert_int_equal(tm_engine_opts_parse(&o, TM_EO_THREADS, "12", &st, &err), 1);
    assert_int_equal(o.n_threads, 12);
    assert_int_equal(tm_engine_opts_parse(&o, TM_EO_CUDA_FAST, NULL, &st, &err), 1);
    assert_true(o.backend_flags & TM_BACKEND_CUDA_FAST);
    assert_int_equal(tm_engine_opts_parse(&o, TM_EO_MAX_SEQS, "4096", &st, &err), 1);
    assert_int_equal(o.max_seqs, 4096);
    assert_int_equal(tm_engine_opts_parse(&o, TM_EO_MAX_BATCH_TOKENS, "512", &st, &err), 1);
    assert_int_equal(o.max_batch_tokens, 512);
    assert_int_equal(tm_engine_opts_parse(&o, TM_EO_KV_MEMORY, "2M", &st, &err), 1);
    assert_int_equal(st, TM_OK);
    assert_int_equal(o.kv_memory, 2 << 20);
}

static void test_bad_values(void **state)
{
    (void)state;
    tm_engine_opts o;
    tm_engine_opts_default(&o, 8, 16);
    tm_status st;
    tm_err err;
    const struct { int code; const char *val; } bad[] = {
        {TM_EO_DEVICE, "tpu"},   {TM_EO_DEVICE, ""},          {TM_EO_QUANT, "int3"},
        {TM_EO_KV_DTYPE, "f16"}, {TM_EO_THREADS, "-1"},       {TM_EO_THREADS, "1025"},
        {TM_EO_MAX_SEQS, "0"},   {TM_EO_MAX_SEQS, "4097"},    {TM_EO_MAX_BATCH_TOKENS, "x"},
        {TM_EO_KV_MEMORY, "lots"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st = TM_OK;
        assert_int_equal(tm_engine_opts_parse(&o, bad[i].code, bad[i].val, &st, &err), 1);
        assert_int_equal(st, TM_ERR_USAGE);
        assert_true(strlen(err.msg) > 0);
    }
    /* nothing changed by the refused values */
    assert_int_equal(o.device, TM_DEVICE_AUTO);
    assert_int_equal(o.max_seqs, 8);
    assert_int_equal(o.max_batch_tokens, 16);
    assert_int_equal(o.n_threads, 0);
    /* a command's own codes are not the shared parser's */
    assert_int_equal(tm_engine_opts_parse(&o, 'W', "5", &st, &err), 0);
    assert_int_equal(tm_engine_opts_parse(&o, 256, "5", &st, &err), 0);
}

static void test_device_parse(void **state)
{
    (void)state;
    tm_device d = TM_DEVICE_CUDA;
    tm_err err;
    assert_int_equal(tm_device_parse("auto", &d, &err), TM_OK);
    assert_int_equal(d, TM_DEVICE_AUTO);
    assert_int_equal(tm_device_parse(NULL, &d, &err), TM_ERR_USAGE);
    assert_int_equal(tm_device_parse("CPU", &d, &err), TM_ERR_USAGE);
    const tm_backend_ops *ops = NULL;
    assert_int_equal(tm_backend_select(TM_DEVICE_CPU, &ops, &err), TM_OK);
    assert_non_null(ops);
    assert_string_equal(ops->name, "cpu");
    assert_int_equal(tm_backend_select((tm_device)7, &ops, &err), TM_ERR_USAGE);
}

static void test_getopt_table(void **state)
{
    (void)state;
    static const struct option opts[] = {TM_ENGINE_LONGOPTS_MODEL, TM_ENGINE_LONGOPTS_BATCH,
                                         {"window", required_argument, 0, 'W'}, {0, 0, 0, 0}};
    char *argv[] = {"run", "--device", "cpu", "--window", "9", "--cuda-fast", "--kv-dtype", "bf16",
                    "--max-seqs", "3", "--model", "/x", NULL};
    int argc = (int)(sizeof argv / sizeof argv[0]) - 1;
    tm_engine_opts o;
    tm_engine_opts_default(&o, 64, 2048);
    tm_cli_getopt_reset();
    int c, own = 0;
    tm_err err;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        tm_status st;
        if (tm_engine_opts_parse(&o, c, optarg, &st, &err)) {
            assert_int_equal(st, TM_OK);
            continue;
        }
        assert_int_equal(c, 'W');
        assert_string_equal(optarg, "9");
        own++;
    }
    assert_int_equal(own, 1);
    assert_int_equal(o.device, TM_DEVICE_CPU);
    assert_int_equal(o.kv_dtype, TM_KV_BF16);
    assert_int_equal(o.max_seqs, 3);
    assert_string_equal(o.model_dir, "/x");
    assert_true(o.backend_flags & TM_BACKEND_CUDA_FAST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_device_parse),
        cmocka_unit_test(test_getopt_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
