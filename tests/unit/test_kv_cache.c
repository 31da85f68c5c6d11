/* test_kv_cache.c — the paged KV block manager: allocation, refcounts,
 * prefix matching through the hash chain, LRU eviction, and no leaks of
 * block ids under a randomized workload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/kv_cache.h"

#define BS 4

static tm_kv_cache *mk(int32_t n)
{
    tm_kv_cache *kv = NULL;
    tm_err err;
    assert_int_equal(tm_kv_cache_create(n, BS, 1234, &kv, &err), TM_OK);
    return kv;
}

/* Fill blocks for a whole sequence of tokens and register its full blocks. */
static int32_t fill_seq(tm_kv_cache *kv, const int32_t *tok, int32_t n, int32_t *blocks)
{
    int32_t nb = (n + BS - 1) / BS;
    uint64_t parent = 0;
    int32_t m = tm_kv_cache_match_prefix(kv, tok, n, (n - 1) / BS, blocks, &parent);
    assert_int_equal(tm_kv_cache_allocate(kv, nb - m, blocks + m), TM_OK);
    for (int32_t i = m; i < n / BS; i++) parent = tm_kv_cache_commit(kv, blocks[i], parent, tok + i * BS);
    return m;
}

static void test_create_bounds(void **s)
{
    (void)s;
    tm_kv_cache *kv = (tm_kv_cache *)1;
    tm_err err;
    assert_int_equal(tm_kv_cache_create(0, 16, 0, &kv, &err), TM_ERR_USAGE);
    assert_null(kv);
    assert_int_equal(tm_kv_cache_create(8, 0, 0, &kv, &err), TM_ERR_USAGE);
    tm_kv_cache_destroy(NULL);
}

static void test_allocate_release(void **s)
{
    (void)s;
    tm_kv_cache *kv = mk(8);
    int32_t b[8];
    assert_int_equal(tm_kv_cache_available(kv), 8);
    assert_int_equal(tm_kv_cache_allocate(kv, 5, b), TM_OK);
    assert_int_equal(tm_kv_cache_available(kv), 3);
    /* asking for more than available takes nothing */
    int32_t c[8];
    assert_int_equal(tm_kv_cache_allocate(kv, 4, c), TM_ERR_BUSY);
    assert_int_equal(tm_kv_cache_available(kv), 3);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++) assert_int_not_equal(b[i], b[j]);
    tm_kv_cache_ref(kv, b[0]);
    tm_kv_cache_release(kv, b, 5);
    assert_int_equal(tm_kv_cache_refcount(kv, b[0]), 1);
    assert_int_equal(tm_kv_cache_available(kv), 7);
    tm_kv_cache_release(kv, b, 1);
    assert_int_equal(tm_kv_cache_available(kv), 8);
    tm_kv_cache_destroy(kv);
}

static void test_prefix_reuse(void **s)
{
    (void)s;
    tm_kv_cache *kv = mk(16);
    int32_t a[11] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    int32_t ba[4], bb[4], bc[4];
    assert_int_equal(fill_seq(kv, a, 11, ba), 0);
    /* same first 8 tokens, different tail: reuses 2 blocks, shared (ref 2) */
    int32_t bt[10] = {1, 2, 3, 4, 5, 6, 7, 8, 42, 43};
    assert_int_equal(fill_seq(kv, bt, 10, bb), 2);
    assert_int_equal(bb[0], ba[0]);
    assert_int_equal(bb[1], ba[1]);
    assert_int_equal(tm_kv_cache_refcount(kv, ba[0]), 2);
    /* differs in block 1: reuses only block 0 */
    int32_t ct[9] = {1, 2, 3, 4, 5, 6, 0, 8, 9};
    assert_int_equal(fill_seq(kv, ct, 9, bc), 1);
    /* an exact multiple of the block size leaves the last block to compute */
    int32_t d[8] = {1, 2, 3, 4, 5, 6, 7, 8}, bd[2];
    uint64_t h;
    assert_int_equal(tm_kv_cache_match_prefix(kv, d, 8, (8 - 1) / BS, bd, &h), 1);
    tm_kv_cache_release(kv, bd, 1);
    /* same tokens in block 1 but a different parent chain: no match */
    int32_t e[8] = {9, 9, 9, 9, 5, 6, 7, 8}, be[2];
    assert_int_equal(tm_kv_cache_match_prefix(kv, e, 8, 2, be, &h), 0);
    tm_kv_cache_stats st;
    tm_kv_cache_get_stats(kv, &st);
    assert_int_equal(st.hits, 4);
    tm_kv_cache_destroy(kv);
}

static void test_lru_eviction(void **s)
{
    (void)s;
    tm_kv_cache *kv = mk(4);
    int32_t x[8] = {1, 1, 1, 1, 2, 2, 2, 2}, y[8] = {3, 3, 3, 3, 4, 4, 4, 4};
    int32_t bx[2], by[2], tmp[2];
    fill_seq(kv, x, 8, bx);
    tm_kv_cache_release(kv, bx, 2);
    fill_seq(kv, y, 8, by);
    tm_kv_cache_release(kv, by, 2);
    tm_kv_cache_stats st;
    tm_kv_cache_get_stats(kv, &st);
    assert_int_equal(st.cached_idle, 4);
    assert_int_equal(st.free, 0);
    /* touch x again so y becomes least recently used */
    uint64_t h;
    assert_int_equal(tm_kv_cache_match_prefix(kv, x, 8, 2, tmp, &h), 2);
    tm_kv_cache_release(kv, tmp, 2);
    /* need 2 fresh blocks: y's go first, tail before head (y[1] then y[0]) */
    int32_t f[2];
    assert_int_equal(tm_kv_cache_allocate(kv, 2, f), TM_OK);
    tm_kv_cache_get_stats(kv, &st);
    assert_int_equal(st.evictions, 2);
    assert_int_equal(tm_kv_cache_match_prefix(kv, y, 8, 2, tmp, &h), 0);
    assert_int_equal(tm_kv_cache_match_prefix(kv, x, 8, 2, tmp, &h), 2);
    tm_kv_cache_release(kv, tmp, 2);
    tm_kv_cache_release(kv, f, 2);
    /* now: x cached idle (2), f's 2 blocks free. Take 3: the free 2, then
     * one eviction, which must hit x's tail before its head */
    int32_t g[3];
    assert_int_equal(tm_kv_cache_allocate(kv, 3, g), TM_OK);
    assert_int_equal(tm_kv_cache_match_prefix(kv, x, 8, 2, tmp, &h), 1);
    tm_kv_cache_release(kv, tmp, 1);
    tm_kv_cache_release(kv, g, 3);
    tm_kv_cache_destroy(kv);
}

static void test_random_workload_conserves_blocks(void **s)
{
    (void)s;
    enum { N = 64, SEQS = 12, MAXT = 40 };
    tm_kv_cache *kv = mk(N);
    int32_t blocks[SEQS][MAXT / BS + 1], nblk[SEQS] = {0};
    uint32_t rng = 12345;
    for (int step = 0; step < 5000; step++) {
        rng = rng * 1664525u + 1013904223u;
        int i = (int)((rng >> 8) % SEQS);
        if (nblk[i]) {
            tm_kv_cache_release(kv, blocks[i], nblk[i]);
            nblk[i] = 0;
        } else {
            int32_t tok[MAXT];
            int32_t n = 1 + (int32_t)((rng >> 16) % MAXT);
            for (int32_t t = 0; t < n; t++) tok[t] = (t < 12) ? t : (int32_t)((rng >> (t % 16)) % 3);
            int32_t nb = (n + BS - 1) / BS;
            uint64_t parent = 0;
            int32_t m = tm_kv_cache_match_prefix(kv, tok, n, (n - 1) / BS, blocks[i], &parent);
            if (tm_kv_cache_allocate(kv, nb - m, blocks[i] + m) != TM_OK) {
                tm_kv_cache_release(kv, blocks[i], m);
                continue;
            }
            for (int32_t b = m; b < n / BS; b++)
                parent = tm_kv_cache_commit(kv, blocks[i][b], parent, tok + b * BS);
            nblk[i] = nb;
        }
        /* invariant: in-use blocks == distinct blocks held by live sequences */
        int held[N] = {0};
        for (int q = 0; q < SEQS; q++)
            for (int b = 0; b < nblk[q]; b++) held[blocks[q][b]]++;
        int distinct = 0;
        for (int b = 0; b < N; b++) {
            assert_int_equal(held[b], tm_kv_cache_refcount(kv, b));
            distinct += held[b] > 0;
        }
        tm_kv_cache_stats st;
        tm_kv_cache_get_stats(kv, &st);
        assert_int_equal(st.in_use, distinct);
        assert_int_equal(st.free + st.cached_idle + st.in_use, N);
    }
    tm_kv_cache_stats st;
    tm_kv_cache_get_stats(kv, &st);
    assert_true(st.hits > 0);
    assert_true(st.evictions > 0);
    tm_kv_cache_destroy(kv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_bounds),
        cmocka_unit_test(test_allocate_release),
        cmocka_unit_test(test_prefix_reuse),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_random_workload_conserves_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
