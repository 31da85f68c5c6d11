/* test_checkpoint.c — the checkpoint state codec (worker/checkpoint.h):
 * round trips with and without logprobs, exact byte layout of a small state,
 * and hostile inputs (truncation at every byte, huge counts, bad magic,
 * trailing bytes) refused without allocating beyond the input. Also writes
 * the fuzz corpus seeds when TOKENMILL_WRITE_CORPUS names a directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "worker/checkpoint.h"

static void encode(const tm_ckpt *c, tm_buf *b)
{
    tm_err err;
    tm_buf_init(b);
    assert_int_equal(tm_ckpt_encode(c, b, &err), TM_OK);
}

static void test_roundtrip_plain(void **st)
{
    (void)st;
    int32_t t0[3] = {7, 0, 151000}, t1[1] = {42};
    tm_ckpt_choice ch[3] = {{3, t0, NULL}, {1, t1, NULL}, {0, NULL, NULL}};
    tm_ckpt c = {.n_choices = 3, .gpu_seconds = 1.5, .energy_joules = -1, .cost_usd = 0.25,
                 .wasted_seconds = 0.125, .wasted_usd = 0.0625, .choices = ch};
    tm_buf b;
    encode(&c, &b);
    assert_int_equal(b.len, 4 + 12 + 40 + (4 + 12) + (4 + 4) + 4);
    assert_memory_equal(b.data, "TMCK\x01\0\0\0\x03\0\0\0\0\0\0\0", 16);
    tm_ckpt d;
    tm_err err;
    assert_int_equal(tm_ckpt_decode(b.data, b.len, &d, &err), TM_OK);
    assert_int_equal(d.n_choices, 3);
    assert_int_equal(d.logprobs, 0);
    assert_true(d.gpu_seconds == 1.5 && d.energy_joules == -1 && d.cost_usd == 0.25);
    assert_true(d.wasted_seconds == 0.125 && d.wasted_usd == 0.0625);
    assert_int_equal(d.choices[0].n_tokens, 3);
    assert_memory_equal(d.choices[0].tokens, t0, sizeof t0);
    assert_int_equal(d.choices[1].tokens[0], 42);
    assert_int_equal(d.choices[2].n_tokens, 0);
    assert_null(d.choices[0].samples);
    assert_int_equal(tm_ckpt_tokens(&d), 4);
    tm_ckpt_clear(&d);
    tm_ckpt_clear(NULL);
    tm_buf_free(&b);
}

static void test_roundtrip_logprobs(void **st)
{
    (void)st;
    int32_t t0[2] = {5, 9};
    tm_sample_result s0[2];
    memset(s0, 0, sizeof s0);
    s0[0] = (tm_sample_result){.token = 5, .logprob = -0.5f, .n_top = 2};
    s0[0].top[0] = (tm_token_logprob){5, -0.5f};
    s0[0].top[1] = (tm_token_logprob){3, -1.25f};
    s0[1] = (tm_sample_result){.token = 9, .logprob = -3.0f, .n_top = 0};
    tm_ckpt_choice ch[1] = {{2, t0, s0}};
    tm_ckpt c = {.n_choices = 1, .logprobs = 1, .choices = ch};
    tm_buf b;
    encode(&c, &b);
    tm_ckpt d;
    tm_err err;
    assert_int_equal(tm_ckpt_decode(b.data, b.len, &d, &err), TM_OK);
    assert_int_equal(d.logprobs, 1);
    assert_non_null(d.choices[0].samples);
    assert_true(d.choices[0].samples[0].logprob == -0.5f);
    assert_int_equal(d.choices[0].samples[0].n_top, 2);
    assert_int_equal(d.choices[0].samples[0].top[1].id, 3);
    assert_true(d.choices[0].samples[0].top[1].logprob == -1.25f);
    assert_int_equal(d.choices[0].samples[1].token, 9);
    assert_int_equal(d.choices[0].samples[1].n_top, 0);
    /* every truncation is refused, cleanly */
    for (size_t n = 0; n < b.len; n++) {
        tm_ckpt e;
        assert_int_equal(tm_ckpt_decode(b.data, n, &e, &err), TM_ERR_INPUT);
        assert_null(e.choices);
    }
    const char *dir = getenv("TOKENMILL_WRITE_CORPUS");
    if (dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/logprobs.bin", dir);
        FILE *f = fopen(path, "wb");
        if (f) { fwrite(b.data, 1, b.len, f); fclose(f); }
    }
    tm_ckpt_clear(&d);
    tm_buf_free(&b);
}

static void test_hostile(void **st)
{
    (void)st;
    int32_t t0[1] = {1};
    tm_ckpt_choice ch[1] = {{1, t0, NULL}};
    tm_ckpt c = {.n_choices = 1, .choices = ch};
    tm_buf b;
    encode(&c, &b);
    tm_ckpt d;
    tm_err err;
    /* a token count far beyond the bytes present: refused before allocating */
    unsigned char *m = malloc(b.len);
    memcpy(m, b.data, b.len);
    size_t cnt = 4 + 12 + 40;
    m[cnt] = 0xff; m[cnt + 1] = 0xff; m[cnt + 2] = 0xff; m[cnt + 3] = 0x7f;
    assert_int_equal(tm_ckpt_decode(m, b.len, &d, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "tokens"));
    /* 0 and 129 choices, version 2, unknown flags, bad magic, negative token */
    memcpy(m, b.data, b.len);
    m[8] = 0;
    assert_int_equal(tm_ckpt_decode(m, b.len, &d, &err), TM_ERR_INPUT);
    m[8] = 129;
    assert_int_equal(tm_ckpt_decode(m, b.len, &d, &err), TM_ERR_INPUT);
    memcpy(m, b.data, b.len);
    m[4] = 2;
    assert_int_equal(tm_ckpt_decode(m, b.len, &d, &err), TM_ERR_INPUT);
    memcpy(m, b.data, b.len);
    m[12] = 2;
    assert_int_equal(tm_ckpt_decode(m, b.len, &d, &err), TM_ERR_INPUT);
    memcpy(m, b.data, b.len);
    m[0] = 'X';
    assert_int_equal(tm_ckpt_decode(m, b.len, &d, &err), TM_ERR_INPUT);
    memcpy(m, b.data, b.len);
    m[b.len - 1] = 0x80;
    assert_int_equal(tm_ckpt_decode(m, b.len, &d, &err), TM_ERR_INPUT);
    free(m);
    /* trailing bytes */
    tm_buf_append(&b, "x", 1);
    assert_int_equal(tm_ckpt_decode(b.data, b.len, &d, &err), TM_ERR_INPUT);
    const char *dir = getenv("TOKENMILL_WRITE_CORPUS");
    if (dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/plain.bin", dir);
        FILE *f = fopen(path, "wb");
        if (f) { fwrite(b.data, 1, b.len - 1, f); fclose(f); }
    }
    tm_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_plain),
        cmocka_unit_test(test_roundtrip_logprobs),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
