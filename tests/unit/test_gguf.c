/* test_gguf.c — the GGUF reader and the ggml block dequantisers.
 *
 * tests/data/ggml_blocks.gguf is written by llama.cpp's own gguf-py
 * (tests/gen/gen_ggml_blocks.py): metadata of every value type, and for each
 * block type a tensor of random blocks beside "<name>.ref", the same values
 * dequantised by gguf-py. Hostile images are built here byte by byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "model/gguf.h"
#include "quant/ggml_blocks.h"

static char g_path[4096];

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("TOKENMILL_SRC");
    snprintf(g_path, sizeof g_path, "%s/tests/data/ggml_blocks.gguf", src ? src : "..");
    return 0;
}

static void test_metadata(void **state)
{
    (void)state;
    tm_gguf *g = NULL;
    tm_err err;
    assert_int_equal(tm_gguf_open(g_path, &g, &err), TM_OK);
    int64_t i;
    double f;
    int b;
    tm_gguf_str s;
    assert_int_equal(tm_gguf_get_int(g, "t.u8", &i, &err), TM_OK); assert_int_equal(i, 200);
    assert_int_equal(tm_gguf_get_int(g, "t.i8", &i, &err), TM_OK); assert_int_equal(i, -100);
    assert_int_equal(tm_gguf_get_int(g, "t.u16", &i, &err), TM_OK); assert_int_equal(i, 60000);
    assert_int_equal(tm_gguf_get_int(g, "t.i16", &i, &err), TM_OK); assert_int_equal(i, -30000);
    assert_int_equal(tm_gguf_get_int(g, "t.u32", &i, &err), TM_OK); assert_int_equal(i, 4000000000LL);
    assert_int_equal(tm_gguf_get_int(g, "t.i32", &i, &err), TM_OK); assert_int_equal(i, -2000000000LL);
    assert_int_equal(tm_gguf_get_int(g, "t.u64", &i, &err), TM_OK); assert_int_equal(i, 1LL << 40);
    assert_int_equal(tm_gguf_get_int(g, "t.i64", &i, &err), TM_OK); assert_int_equal(i, -(1LL << 40));
    assert_int_equal(tm_gguf_get_float(g, "t.f32", &f, &err), TM_OK); assert_true(f == 1.5);
    assert_int_equal(tm_gguf_get_float(g, "t.f64", &f, &err), TM_OK); assert_true(f == 0.1);
    assert_int_equal(tm_gguf_get_bool(g, "t.bool", &b, &err), TM_OK); assert_true(b);
    assert_int_equal(tm_gguf_get_str(g, "t.str", &s, &err), TM_OK);
    assert_int_equal(s.len, 6);
    assert_memory_equal(s.p, "h\xc3\xa9llo", 6);
    assert_int_equal(tm_gguf_get_int(g, "t.str", &i, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "t.str"));
    assert_int_equal(tm_gguf_get_int(g, "nope", &i, &err), TM_ERR_NOTFOUND);
    const tm_gguf_value *a = tm_gguf_get(g, "t.arr_str");
    assert_non_null(a);
    assert_int_equal(a->arr_len, 3);
    assert_int_equal(tm_gguf_arr_str(a, 0).len, 1);
    assert_int_equal(tm_gguf_arr_str(a, 1).len, 0);
    assert_memory_equal(tm_gguf_arr_str(a, 2).p, "ccc", 3);
    assert_int_equal(tm_gguf_arr_str(a, 3).len, 0);          /* out of range: empty */
    a = tm_gguf_get(g, "t.arr_i32");
    assert_int_equal(tm_gguf_arr_int(a, 1), -2);
    tm_gguf_destroy(g);
    tm_gguf_destroy(NULL);
}

static void test_dequant_matches_ggml(void **state)
{
    (void)state;
    tm_gguf *g = NULL;
    tm_err err;
    assert_int_equal(tm_gguf_open(g_path, &g, &err), TM_OK);
    static const char *names[] = {"f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k", "q5_k",
                                  "q6_k"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        char ref[64];
        snprintf(ref, sizeof ref, "%s.ref", names[k]);
        const tm_gguf_tensor *t = tm_gguf_find(g, names[k]), *r = tm_gguf_find(g, ref);
        assert_non_null(t);
        assert_non_null(r);
        assert_int_equal(r->type, TM_GGML_F32);
        assert_int_equal(t->nelem, r->nelem);
        assert_true(tm_ggml_dequant_supported(t->type));
        float *y = malloc((size_t)t->nelem * sizeof *y), *want = malloc((size_t)t->nelem * sizeof *want);
        assert_int_equal(tm_ggml_dequant(t->type, t->data, y, t->nelem), 0);
        memcpy(want, r->data, (size_t)r->nelem * 4);
        for (int64_t i = 0; i < t->nelem; i++) {
            float tol = 1e-6f * fabsf(want[i]) + 1e-9f;
            if (fabsf(y[i] - want[i]) > tol) fail_msg("%s[%lld]: %g vs gguf-py %g", names[k], (long long)i, y[i], want[i]);
        }
        free(y);
        free(want);
    }
    tm_gguf_destroy(g);
}

/* ---- hostile images ----------------------------------------------------- */

typedef struct img { unsigned char b[4096]; size_t n; } img;
static void put(img *m, const void *p, size_t n) { memcpy(m->b + m->n, p, n); m->n += n; }
static void u32(img *m, uint32_t v) { put(m, &v, 4); }
static void u64(img *m, uint64_t v) { put(m, &v, 8); }
static void str(img *m, const char *s) { u64(m, strlen(s)); put(m, s, strlen(s)); }

static void header(img *m, uint64_t nt, uint64_t nkv)
{
    m->n = 0;
    put(m, "GGUF", 4);
    u32(m, 3);
    u64(m, nt);
    u64(m, nkv);
}

static tm_status parse(img *m, tm_err *err)
{
    tm_gguf *g = NULL;
    tm_status s = tm_gguf_parse(m->b, m->n, "x.gguf", &g, err);
    tm_gguf_destroy(g);
    return s;
}

static void one_tensor(img *m, const char *name, uint32_t type, uint64_t ne0, uint64_t off)
{
    str(m, name);
    u32(m, 1);
    u64(m, ne0);
    u32(m, type);
    u64(m, off);
}

static void test_hostile(void **state)
{
    (void)state;
    img m;
    tm_err err;
    header(&m, 0, 0);
    assert_int_equal(parse(&m, &err), TM_OK);
    m.b[0] = 'X';
    assert_int_equal(parse(&m, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "not a GGUF"));
    header(&m, 0, 0);
    m.b[4] = 1;
    assert_int_equal(parse(&m, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "version 1"));
    header(&m, 0, 1ULL << 40);                           /* kv count huge */
    assert_int_equal(parse(&m, &err), TM_ERR_INPUT);
    header(&m, 0, 1);                                    /* key length past the end */
    u64(&m, 1ULL << 60);
    assert_int_equal(parse(&m, &err), TM_ERR_INPUT);
    header(&m, 0, 1);                                    /* array count past the end */
    str(&m, "a");
    u32(&m, TM_GGUF_ARRAY);
    u32(&m, TM_GGUF_U32);
    u64(&m, 1ULL << 50);
    assert_int_equal(parse(&m, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "past the end"));
    header(&m, 0, 1);                                    /* array of arrays */
    str(&m, "a");
    u32(&m, TM_GGUF_ARRAY);
    u32(&m, TM_GGUF_ARRAY);
    u64(&m, 0);
    assert_int_equal(parse(&m, &err), TM_ERR_INPUT);
    header(&m, 0, 2);                                    /* duplicate key */
    str(&m, "k"); u32(&m, TM_GGUF_U32); u32(&m, 1);
    str(&m, "k"); u32(&m, TM_GGUF_U32); u32(&m, 2);
    assert_int_equal(parse(&m, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "twice"));
    header(&m, 1, 0);                                    /* tensor past the end */
    one_tensor(&m, "w", TM_GGML_F32, 1000, 0);
    assert_int_equal(parse(&m, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "past the end"));
    header(&m, 1, 0);                                    /* unknown type */
    one_tensor(&m, "w", 23, 32, 0);
    assert_int_equal(parse(&m, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "IQ4_XS"));
    header(&m, 1, 0);                                    /* row not a multiple of the block */
    one_tensor(&m, "w", TM_GGML_Q4_0, 33, 0);
    assert_int_equal(parse(&m, &err), TM_ERR_INPUT);
    header(&m, 2, 0);                                    /* overlapping tensors */
    one_tensor(&m, "a", TM_GGML_F32, 16, 0);
    one_tensor(&m, "b", TM_GGML_F32, 16, 32);
    while (m.n % 32) m.b[m.n++] = 0;
    memset(m.b + m.n, 0, 128);
    m.n += 128;
    assert_int_equal(parse(&m, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "overlap"));
    header(&m, 1, 0);                                    /* unaligned offset */
    one_tensor(&m, "a", TM_GGML_F32, 4, 4);
    while (m.n % 32) m.b[m.n++] = 0;
    memset(m.b + m.n, 0, 64);
    m.n += 64;
    assert_int_equal(parse(&m, &err), TM_ERR_INPUT);
    header(&m, 1, 0);                                    /* a good one */
    one_tensor(&m, "a", TM_GGML_F32, 4, 0);
    while (m.n % 32) m.b[m.n++] = 0;
    memset(m.b + m.n, 0, 16);
    m.n += 16;
    assert_int_equal(parse(&m, &err), TM_OK);
    m.n -= 1;                                            /* one byte short */
    assert_int_equal(parse(&m, &err), TM_ERR_INPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_dequant_matches_ggml),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
