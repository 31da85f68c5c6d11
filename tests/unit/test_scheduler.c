/* test_scheduler.c — continuous batching plans checked by simulation.
 *
 * A fake forward pass writes each computed token's id into a simulated paged
 * KV pool through the block table; whenever a sequence is sampled, every one
 * of its positions must read back its own token (so prefix-cache reuse,
 * sharing and preemption never hand a sequence someone else's KV). Budgets
 * (tokens per step, sequences per step) are checked on every plan, and every
 * request must finish with all its tokens, also with a pool so small that
 * preemption by recompute is needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/kv_cache.h"
#include "engine/scheduler.h"

#define BS 4

typedef struct sim_result {
    int64_t steps, preemptions, cached_tokens, prefill_tokens;
} sim_result;

static int32_t next_token(const tm_seq *q)
{
    /* deterministic "model": depends only on the sequence's own tokens */
    uint32_t h = 2166136261u;
    for (int32_t i = 0; i < q->n_tokens; i++) h = (h ^ (uint32_t)q->tokens[i]) * 16777619u;
    return (int32_t)(h % 50);
}

static sim_result simulate(int n_seqs, int32_t n_blocks, int32_t max_batch_tokens, int32_t max_seqs,
                           int shared_prefix, unsigned seed)
{
    tm_err err;
    tm_kv_cache *kv;
    assert_int_equal(tm_kv_cache_create(n_blocks, BS, 7, &kv, &err), TM_OK);
    tm_sched_config cfg = {.max_batch_tokens = max_batch_tokens, .max_seqs = max_seqs, .max_waiting = 256};
    tm_sched *s;
    assert_int_equal(tm_sched_create(&cfg, kv, &s, &err), TM_OK);
    int32_t *pool = malloc((size_t)n_blocks * BS * sizeof *pool);
    for (int32_t i = 0; i < n_blocks * BS; i++) pool[i] = -1;

    tm_seq *seqs = calloc((size_t)n_seqs, sizeof *seqs);
    int32_t *max_new = calloc((size_t)n_seqs, sizeof *max_new);
    uint32_t r = seed;
    for (int i = 0; i < n_seqs; i++) {
        int32_t prompt[64];
        r = r * 1664525u + 1013904223u;
        int32_t n = 3 + (int32_t)((r >> 10) % 30);
        for (int32_t t = 0; t < n; t++) {
            r = r * 1664525u + 1013904223u;
            prompt[t] = (shared_prefix && t < 13) ? 100 + t : (int32_t)((r >> 12) % 1000);
        }
        max_new[i] = 1 + (int32_t)((r >> 5) % 12);
        assert_int_equal(tm_seq_init(&seqs[i], i, prompt, n, max_new[i], BS, &err), TM_OK);
        seqs[i].priority = (int32_t)(i % 3 == 0);
        assert_int_equal(tm_sched_add(s, &seqs[i], &err), TM_OK);
    }

    sim_result res = {0};
    int finished = 0;
    while (finished < n_seqs) {
        tm_sched_out out;
        assert_int_equal(tm_sched_step(s, &out, &err), TM_OK);
        assert_true(out.n_items > 0);
        assert_true(out.n_tokens <= max_batch_tokens);
        assert_true(out.n_items <= max_seqs);
        res.steps++;
        res.preemptions += out.n_preempted;
        res.cached_tokens += out.n_cached_tokens;
        res.prefill_tokens += out.n_prefill_tokens;
        /* before anything is written this step, each item's earlier
         * positions must already hold its own KV (attention reads them) */
        for (int32_t k = 0; k < out.n_items; k++) {
            const tm_sched_item *it = &out.items[k];
            const tm_seq *q = it->seq;
            for (int32_t p = 0; p < it->start; p++)
                assert_int_equal(pool[q->blocks[p / BS] * BS + p % BS], q->tokens[p]);
        }
        for (int32_t k = 0; k < out.n_items; k++) {
            const tm_sched_item *it = &out.items[k];
            tm_seq *q = it->seq;
            assert_int_equal(it->start, q->n_computed);
            assert_true(it->start + it->n_new <= q->n_tokens);
            /* fake forward: write KV of the new tokens */
            for (int32_t p = it->start; p < it->start + it->n_new; p++) {
                assert_true(p / BS < q->n_blocks);
                int32_t b = q->blocks[p / BS];
                /* a block shared with another live sequence is full and immutable */
                if (tm_kv_cache_refcount(kv, b) > 1) assert_int_equal(pool[b * BS + p % BS], q->tokens[p]);
                pool[b * BS + p % BS] = q->tokens[p];
            }
        }
        for (int32_t k = 0; k < out.n_items; k++) {
            const tm_sched_item *it = &out.items[k];
            tm_seq *q = it->seq;
            tm_sched_advance(s, it);
            if (!it->need_logits) continue;
            /* attention would read every position: all must be this sequence's */
            for (int32_t p = 0; p < q->n_tokens; p++)
                assert_int_equal(pool[q->blocks[p / BS] * BS + p % BS], q->tokens[p]);
            q->tokens[q->n_tokens] = next_token(q);
            q->n_tokens++;
            if (q->n_tokens - q->n_prompt == max_new[q->id]) {
                tm_sched_remove(s, q);
                finished++;
            }
        }
    }
    /* outputs equal a sequence run alone: the fake model is deterministic
     * per sequence, so check each token against a replay */
    for (int i = 0; i < n_seqs; i++) {
        tm_seq *q = &seqs[i];
        assert_int_equal(q->n_tokens - q->n_prompt, max_new[i]);
        tm_seq replay = *q;
        for (int32_t t = q->n_prompt; t < q->n_tokens; t++) {
            replay.n_tokens = t;
            assert_int_equal(next_token(&replay), q->tokens[t]);
        }
        tm_seq_free(q);
    }
    tm_kv_cache_stats st;
    tm_kv_cache_get_stats(kv, &st);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(tm_sched_n_running(s) + tm_sched_n_waiting(s), 0);
    free(seqs);
    free(max_new);
    free(pool);
    tm_sched_destroy(s);
    tm_kv_cache_destroy(kv);
    return res;
}

static void test_roomy_pool(void **st)
{
    (void)st;
    sim_result r = simulate(40, 512, 64, 16, 0, 1);
    assert_int_equal(r.preemptions, 0);
}

static void test_chunked_prefill_small_budget(void **st)
{
    (void)st;
    /* budget 5 tokens/step: long prompts must be chunked */
    sim_result r = simulate(20, 512, 5, 4, 0, 2);
    assert_true(r.steps > 20);
}

static void test_tiny_pool_preempts_and_completes(void **st)
{
    (void)st;
    /* 14 blocks of 4 tokens: the largest request (32+12 tokens) needs 11 */
    sim_result r = simulate(40, 14, 64, 16, 0, 3);
    assert_true(r.preemptions > 0);
}

static void test_prefix_sharing(void **st)
{
    (void)st;
    sim_result shared = simulate(30, 512, 64, 16, 1, 4);
    assert_true(shared.cached_tokens > 0);
    sim_result plain = simulate(30, 512, 64, 16, 0, 4);
    (void)plain;
    assert_true(shared.cached_tokens >= 12 * 10); /* most of the 29 later requests reuse 3 blocks */
}

static void test_chunked_prefill_with_shared_prefix(void **st)
{
    (void)st;
    /* small chunks + shared prefixes: a block may be reused only once it is
     * completely computed */
    sim_result r = simulate(30, 512, 6, 4, 1, 5);
    assert_true(r.cached_tokens > 0);
    r = simulate(30, 40, 7, 3, 1, 6);
    assert_true(r.cached_tokens > 0);
}

static void test_request_too_big_for_pool(void **st)
{
    (void)st;
    tm_err err;
    tm_kv_cache *kv;
    tm_sched *s;
    assert_int_equal(tm_kv_cache_create(2, BS, 0, &kv, &err), TM_OK);
    tm_sched_config cfg = {.max_batch_tokens = 8, .max_seqs = 2, .max_waiting = 4};
    assert_int_equal(tm_sched_create(&cfg, kv, &s, &err), TM_OK);
    int32_t prompt[6] = {1, 2, 3, 4, 5, 6};
    tm_seq q;
    assert_int_equal(tm_seq_init(&q, 1, prompt, 6, 5, BS, &err), TM_OK);
    assert_int_equal(tm_sched_add(s, &q, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "KV blocks"));
    tm_seq_free(&q);
    tm_sched_destroy(s);
    tm_kv_cache_destroy(kv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roomy_pool),
        cmocka_unit_test(test_chunked_prefill_small_budget),
        cmocka_unit_test(test_tiny_pool_preempts_and_completes),
        cmocka_unit_test(test_prefix_sharing),
        cmocka_unit_test(test_chunked_prefill_with_shared_prefix),
        cmocka_unit_test(test_request_too_big_for_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
