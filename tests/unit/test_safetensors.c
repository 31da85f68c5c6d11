/* test_safetensors.c — the safetensors parser on good and hostile images, and dtypes.
 *
 * Builds images in memory (tests/unit/test_safetensors_util.h) and checks that
 * a well-formed file exposes the right tensors and bytes, that every malformed
 * header is rejected with a message naming the problem, and that bf16/f16/f32
 * widen to the exact float32 values (f16 subnormals, inf, nan included).
 * Needs no test data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <sys/mman.h>

#include "model/model.h"
#include "model/safetensors.h"
#include "test_safetensors_util.h"

static void expect_bad(const char *header, size_t datalen, const char *sub1, const char *sub2)
{
    unsigned char data[64] = { 0 };
    size_t len;
    unsigned char *img = tu_raw(header, strlen(header), data, datalen, &len);
    tm_safetensors *st = (tm_safetensors *)(uintptr_t)1;
    tm_err e = { { 0 } };
    tm_status s = tm_safetensors_parse(img, len, "F.safetensors", &st, &e);
    if (s == TM_OK || (sub1 && !strstr(e.msg, sub1)) || (sub2 && !strstr(e.msg, sub2)))
        fprintf(stderr, "header %s: status %d, msg '%s', want '%s' '%s'\n", header, s, e.msg, sub1,
                sub2 ? sub2 : "");
    assert_int_equal(s, TM_ERR_INPUT);
    assert_null(st);
    assert_non_null(strstr(e.msg, "F.safetensors: "));
    if (sub1) assert_non_null(strstr(e.msg, sub1));
    if (sub2) assert_non_null(strstr(e.msg, sub2));
    free(img);
}

static void test_good(void **state)
{
    (void)state;
    uint16_t a[6] = { 0x3f80, 0x4000, 0xbf80, 0, 0x8000, 0x7f80 }; /* bf16 1 2 -1 0 -0 inf */
    float b[2] = { 3.5f, -0.25f };
    tu_tensor ts[3] = {
        { "zeta.weight", "BF16", 2, { 2, 3 }, a, sizeof a },
        { "alpha", "F32", 1, { 2 }, b, sizeof b },
        { "empty", "F16", 2, { 0, 7 }, NULL, 0 },
    };
    size_t len;
    unsigned char *img = tu_build(ts, 3, 0, &len);
    tm_safetensors *st = NULL;
    tm_err e = { { 0 } };
    assert_int_equal(tm_safetensors_parse(img, len, "mem", &st, &e), TM_OK);
    assert_string_equal(tm_safetensors_path(st), "mem");
    assert_int_equal(tm_safetensors_count(st), 3);
    /* sorted by name */
    assert_string_equal(tm_safetensors_at(st, 0)->name, "alpha");
    assert_string_equal(tm_safetensors_at(st, 1)->name, "empty");
    assert_string_equal(tm_safetensors_at(st, 2)->name, "zeta.weight");
    assert_null(tm_safetensors_at(st, 3));
    const tm_tensor *z = tm_safetensors_find(st, "zeta.weight");
    assert_non_null(z);
    assert_int_equal(z->dtype, TM_DTYPE_BF16);
    assert_int_equal(z->ndim, 2);
    assert_int_equal(z->shape[0], 2);
    assert_int_equal(z->shape[1], 3);
    assert_int_equal(z->nbytes, 12);
    assert_memory_equal(z->data, a, sizeof a);
    float f[6];
    tm_dtype_to_f32(z->dtype, z->data, f, 6);
    assert_true(f[0] == 1.0f && f[1] == 2.0f && f[2] == -1.0f && f[3] == 0.0f);
    assert_true(f[4] == 0.0f && signbit(f[4]) && isinf(f[5]) && f[5] > 0);
    const tm_tensor *al = tm_safetensors_find(st, "alpha");
    assert_int_equal(al->dtype, TM_DTYPE_F32);
    tm_dtype_to_f32(al->dtype, al->data, f, 2);
    assert_true(f[0] == 3.5f && f[1] == -0.25f);
    const tm_tensor *em = tm_safetensors_find(st, "empty");
    assert_int_equal(em->nbytes, 0);
    assert_int_equal(em->dtype, TM_DTYPE_F16);
    assert_null(tm_safetensors_find(st, "nope"));
    assert_null(tm_safetensors_find(st, ""));
    uint64_t bg, en;
    tm_safetensors_offsets(st, 2, &bg, &en);
    assert_int_equal(en - bg, 12);
    assert_int_equal(tm_safetensors_data_start(st) % 8, 0);
    assert_ptr_equal((const unsigned char *)z->data, img + tm_safetensors_data_start(st) + bg);
    tm_safetensors_destroy(st);
    tm_safetensors_destroy(NULL);
    free(img);
}

static void test_hostile_headers(void **state)
{
    (void)state;
    /* shorter than 8 bytes */
    tm_safetensors *st = NULL;
    tm_err e = { { 0 } };
    assert_int_equal(tm_safetensors_parse("abc", 3, "F.safetensors", &st, &e), TM_ERR_INPUT);
    assert_string_equal(e.msg, "F.safetensors: file is 3 bytes, too short for a safetensors header "
                               "(needs at least 8)");
    assert_int_equal(tm_safetensors_parse(NULL, 0, "F.safetensors", &st, &e), TM_ERR_INPUT);
    /* header length past EOF */
    unsigned char img[16] = { 9, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ' };
    assert_int_equal(tm_safetensors_parse(img, 11, "F.safetensors", &st, &e), TM_ERR_INPUT);
    assert_string_equal(e.msg, "F.safetensors: header length 9 runs past the end of the file (11 bytes)");
    unsigned char huge[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}' };
    assert_int_equal(tm_safetensors_parse(huge, 10, "F.safetensors", &st, &e), TM_ERR_INPUT);
    assert_non_null(strstr(e.msg, "runs past the end of the file"));
    /* empty header object: valid, no tensors */
    img[0] = 2;
    assert_int_equal(tm_safetensors_parse(img, 10, "F.safetensors", &st, &e), TM_OK);
    assert_int_equal(tm_safetensors_count(st), 0);
    tm_safetensors_destroy(st);

    expect_bad("{\"a\": {\"dtype\"", 0, "header is not valid JSON", NULL);
    expect_bad("not json", 0, "header is not valid JSON", NULL);
    expect_bad("[1, 2]", 0, "header is not a JSON object", NULL);
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
               8, "header is not valid JSON", "duplicate");
    expect_bad("{\"a\": 3}", 0, "tensor a: entry is not a JSON object", NULL);
    expect_bad("{\"__metadata__\": 3}", 0, "__metadata__ is not a JSON object", NULL);
    /* offsets past the end of the data */
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
               "tensor w: data_offsets [0, 16] run past the end of the data (8 bytes)", NULL);
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[9223372036854775807,9223372036854775807]}}", 8,
               "data_offsets", NULL);
    /* end < begin */
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
               "tensor w: data_offsets end 4 < begin 8", NULL);
    /* shape / offsets size mismatch */
    expect_bad("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", 16,
               "tensor w: shape [2, 3] of BF16 needs 12 bytes but data_offsets [0, 8] span 8", NULL);
    /* unsupported dtypes */
    expect_bad("{\"pos\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
               "tensor pos has dtype I64, which is not supported (supported: BF16, F16, F32, I32, F8_E4M3)", NULL);
    expect_bad("{\"w\":{\"dtype\":\"F8_E5M2\",\"shape\":[1],\"data_offsets\":[0,1]}}", 8, "dtype F8_E5M2", NULL);
    expect_bad("{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "tensor w: dtype missing", NULL);
    expect_bad("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "tensor w: dtype missing", NULL);
    /* ranks and dims */
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,8]}}", 8,
               "tensor w: shape [] of F32 needs 4 bytes but data_offsets [0, 8] span 8", NULL); /* rank 0 = 1 element */
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 8,
               "shape has rank 5", NULL);
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 8,
               "tensor w: shape[0] is not a non-negative integer", NULL);
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 8, "shape[0]", NULL);
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":\"x\",\"data_offsets\":[0,4]}}", 8, "shape missing", NULL);
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,4]}}", 8,
               "tensor w: shape size overflows", NULL);
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}", 8,
               "shape size overflows", NULL);
    /* offsets malformed */
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 8,
               "data_offsets missing or not [begin, end]", NULL);
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8,
               "data_offsets are not non-negative integers", NULL);
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 8, "data_offsets missing", NULL);
    /* overlapping tensors */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               16, "tensors a [0, 8] and b [4, 12] overlap", NULL);
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}",
               16, "overlap", NULL);
}

/* Header length over the 100 MB cap, in a file that is big enough: the
 * anonymous mapping is never touched beyond its first page. */
static void test_header_too_large(void **state)
{
    (void)state;
    size_t len = (size_t)TM_ST_MAX_HEADER + 4096;
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(p != MAP_FAILED);
    uint64_t n = TM_ST_MAX_HEADER + 1;
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(n >> (8 * i));
    tm_safetensors *st = NULL;
    tm_err e = { { 0 } };
    assert_int_equal(tm_safetensors_parse(p, len, "big", &st, &e), TM_ERR_INPUT);
    assert_string_equal(e.msg, "big: header length 100000001 exceeds the limit of 100000000 bytes");
    munmap(p, len);
}

static void test_open_file(void **state)
{
    (void)state;
    char *d = tu_mkdtemp();
    assert_non_null(d);
    char path[4096];
    snprintf(path, sizeof path, "%s/x.safetensors", d);
    tm_safetensors *st = NULL;
    tm_err e = { { 0 } };
    assert_int_equal(tm_safetensors_open(path, &st, &e), TM_ERR_NOTFOUND);
    assert_non_null(strstr(e.msg, "x.safetensors: cannot open"));
    assert_int_equal(tm_safetensors_open(d, &st, &e), TM_ERR_INPUT); /* a directory */
    assert_non_null(strstr(e.msg, "not a regular file"));
    tu_write_text(d, "x.safetensors", "");
    assert_int_equal(tm_safetensors_open(path, &st, &e), TM_ERR_INPUT);
    assert_non_null(strstr(e.msg, "x.safetensors: file is 0 bytes, too short"));
    float v[3] = { 1.0f, -2.0f, 0.5f };
    tu_tensor t = { "v", "F32", 1, { 3 }, v, sizeof v };
    size_t len;
    unsigned char *img = tu_build(&t, 1, 1, &len);
    assert_int_equal(tu_write(path, img, len), 0);
    free(img);
    assert_int_equal(tm_safetensors_open(path, &st, &e), TM_OK);
    assert_string_equal(tm_safetensors_path(st), path);
    const tm_tensor *tv = tm_safetensors_find(st, "v");
    assert_non_null(tv);
    assert_int_equal(tm_safetensors_data_start(st) % 2, 1); /* misaligned on purpose */
    float f[3];
    tm_dtype_to_f32(tv->dtype, tv->data, f, 3);
    assert_true(f[0] == 1.0f && f[1] == -2.0f && f[2] == 0.5f);
    tm_safetensors_destroy(st);
    /* truncated copy: header intact, data cut short */
    img = tu_build(&t, 1, 0, &len);
    assert_int_equal(tu_write(path, img, len - 1), 0);
    free(img);
    assert_int_equal(tm_safetensors_open(path, &st, &e), TM_ERR_INPUT);
    assert_non_null(strstr(e.msg, "tensor v: data_offsets [0, 12] run past the end of the data (11 bytes)"));
    tu_rmtree(d);
}

static float f16(uint16_t h)
{
    unsigned char b[2] = { (unsigned char)h, (unsigned char)(h >> 8) };
    float f;
    tm_dtype_to_f32(TM_DTYPE_F16, b, &f, 1);
    return f;
}

static void test_dtypes(void **state)
{
    (void)state;
    assert_int_equal(tm_dtype_size(TM_DTYPE_F32), 4);
    assert_int_equal(tm_dtype_size(TM_DTYPE_F16), 2);
    assert_int_equal(tm_dtype_size(TM_DTYPE_BF16), 2);
    assert_string_equal(tm_dtype_name(TM_DTYPE_F32), "F32");
    assert_string_equal(tm_dtype_name(TM_DTYPE_F16), "F16");
    assert_string_equal(tm_dtype_name(TM_DTYPE_BF16), "BF16");
    tm_dtype d;
    assert_int_equal(tm_dtype_from_safetensors("BF16", &d), 0);
    assert_int_equal(d, TM_DTYPE_BF16);
    assert_int_equal(tm_dtype_from_safetensors("bf16", &d), -1);
    /* f16: normals, limits, subnormals, specials */
    assert_true(f16(0x3c00) == 1.0f);
    assert_true(f16(0xc000) == -2.0f);
    assert_true(f16(0x3555) == 0.333251953125f);
    assert_true(f16(0x7bff) == 65504.0f);
    assert_true(f16(0x0400) == ldexpf(1.0f, -14));         /* smallest normal */
    assert_true(f16(0x0001) == ldexpf(1.0f, -24));         /* smallest subnormal */
    assert_true(f16(0x03ff) == 1023.0f * ldexpf(1.0f, -24)); /* largest subnormal */
    assert_true(f16(0x8001) == -ldexpf(1.0f, -24));
    assert_true(f16(0x0200) == ldexpf(1.0f, -15));
    assert_true(f16(0x0000) == 0.0f && !signbit(f16(0x0000)));
    assert_true(f16(0x8000) == 0.0f && signbit(f16(0x8000)));
    assert_true(isinf(f16(0x7c00)) && f16(0x7c00) > 0);
    assert_true(isinf(f16(0xfc00)) && f16(0xfc00) < 0);
    assert_true(isnan(f16(0x7e00)));
    assert_true(isnan(f16(0x7c01)));
    /* exhaustive: every finite f16 equals (-1)^s * 2^(e-15) * (1 + m/1024), or
     * (-1)^s * 2^-14 * (m/1024) when e == 0 (subnormal), computed in double */
    for (uint32_t h = 0; h < 0x10000; h++) {
        uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
        if (e == 0x1f) continue;
        double v = e ? ldexp(1.0 + m / 1024.0, (int)e - 15) : ldexp(m / 1024.0, -14);
        if (h & 0x8000) v = -v;
        if (f16((uint16_t)h) != (float)v) fail_msg("f16 0x%04x: got %g want %g", h, (double)f16((uint16_t)h), v);
    }
    /* bf16: shift */
    unsigned char bb[4] = { 0x49, 0x40, 0x80, 0xff }; /* 0x4049 = 3.140625, 0xff80 = -inf */
    float f[2];
    tm_dtype_to_f32(TM_DTYPE_BF16, bb, f, 2);
    assert_true(f[0] == 3.140625f);
    assert_true(isinf(f[1]) && f[1] < 0);
    /* unaligned source */
    unsigned char raw[9] = { 0 };
    float one = 1.0f;
    memcpy(raw + 1, &one, 4);
    tm_dtype_to_f32(TM_DTYPE_F32, raw + 1, f, 1);
    assert_true(f[0] == 1.0f);
    char sh[64];
    int64_t s2[2] = { 64, 128 };
    tm_shape_format(sh, sizeof sh, 2, s2);
    assert_string_equal(sh, "[64, 128]");
    tm_shape_format(sh, 4, 2, s2);
    assert_string_equal(sh, "[64");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_header_too_large),
        cmocka_unit_test(test_open_file),
        cmocka_unit_test(test_dtypes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
