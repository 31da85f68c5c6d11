/* test_queue_sha256.c — src/util/sha256.c against the FIPS 180-2 example
 * vectors ("abc", the 448-bit two-block message, one million 'a') plus the
 * empty string, and incremental updates in odd-sized pieces across block
 * boundaries (the export manifest's checksums depend on it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util/sha256.h"

static void hex_of(const void *p, size_t n, char out[65])
{
    uint8_t d[32];
    tm_sha256(p, n, d);
    tm_sha256_hex(d, out);
}

static void test_fips_vectors(void **state)
{
    (void)state;
    char h[65];
    hex_of("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(m2, strlen(m2), h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    hex_of("", 0, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    char *a = malloc(1000000);
    assert_non_null(a);
    memset(a, 'a', 1000000);
    hex_of(a, 1000000, h);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

static void test_incremental(void **state)
{
    (void)state;
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 7 + 3);
    /* every length around the 55/56/64-byte padding edges, and odd pieces */
    for (size_t len = 0; len < sizeof buf; len += (len < 140 ? 1 : 97)) {
        uint8_t one[32], inc[32];
        tm_sha256(buf, len, one);
        tm_sha256_ctx c;
        tm_sha256_init(&c);
        size_t off = 0, step = 1;
        while (off < len) {
            size_t take = step < len - off ? step : len - off;
            tm_sha256_update(&c, buf + off, take);
            off += take;
            step = step * 3 % 71 + 1;
        }
        tm_sha256_final(&c, inc);
        assert_memory_equal(one, inc, 32);
    }
    /* 1,000,000 'a' fed as 10,000 x 100 bytes */
    tm_sha256_ctx c;
    tm_sha256_init(&c);
    uint8_t a[100];
    memset(a, 'a', sizeof a);
    for (int i = 0; i < 10000; i++) tm_sha256_update(&c, a, sizeof a);
    uint8_t d[32];
    char h[65];
    tm_sha256_final(&c, d);
    tm_sha256_hex(d, h);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_vectors),
        cmocka_unit_test(test_incremental),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
