/* test_engine.c — the batching engine on the golden test models (CPU).
 *
 * - Batch invariance: 32 prompts of varied lengths (some sharing prefixes),
 *   greedy and seeded sampling, run all together under a token budget give
 *   every request exactly the tokens it gets when run alone.
 * - Prefix cache: requests sharing a 300-token system prompt report cached
 *   tokens, compute measurably fewer prefill tokens, and give the same tokens.
 * - Preemption by recompute: a KV pool too small for the batch still
 *   completes every request with the same tokens.
 * - n > 1: the choices share the prompt's blocks and equal separate seeds.
 * - Resume (checkpoints): a request restarted in a fresh engine from any
 *   prefix of its generated tokens (per choice, sampled, with penalties)
 *   produces exactly the rest of the uninterrupted run's tokens, the
 *   recompute is reported as such, and finished choices stay silent.
 * Skipped (77) when TOKENMILL_TESTDATA is absent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "engine/engine.h"
#include "model/model.h"

#define NREQ 32
#define MAXGEN 12

typedef struct req {
    int32_t prompt[400];
    int32_t n_prompt;
    tm_sampling_params p;
    int32_t out[128][MAXGEN];  /* [choice][token] */
    int32_t n_out[128];
    int32_t n;                 /* choices */
} req;

typedef struct run_stats {
    int64_t prefill_tokens, cached_tokens, preemptions, steps;
} run_stats;

static char model_dir[4096];
static tm_model *model;

static int setup(void **st)
{
    (void)st;
    const char *td = getenv("TOKENMILL_TESTDATA");
    if (!td) td = "../shared/testdata";
    snprintf(model_dir, sizeof model_dir, "%s/models/llama-mini", td);
    tm_err err;
    if (tm_model_load(model_dir, &model, &err) != TM_OK) {
        fprintf(stderr, "cannot load %s: %s\n", model_dir, err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    tm_model_destroy(model);
    return 0;
}

/* Run reqs[idx[0..k)] through one engine; collect tokens per choice. */
static void run_engine(req *reqs, const int *idx, int k, int32_t n_blocks, int32_t max_batch_tokens,
                       int32_t max_seqs, run_stats *rs)
{
    tm_err err;
    tm_engine_config cfg = {.block_size = 16, .n_blocks = n_blocks, .max_batch_tokens = max_batch_tokens,
                            .max_seqs = max_seqs, .max_requests = 512, .max_context = 512, .n_threads = 2};
    tm_engine *e = NULL;
    tm_status s = tm_engine_create(&tm_backend_cpu, model, &cfg, &e, &err);
    if (s) fprintf(stderr, "engine: %s\n", err.msg);
    assert_int_equal(s, TM_OK);
    for (int i = 0; i < k; i++) {
        req *r = &reqs[idx[i]];
        tm_engine_request er = {.id = idx[i], .prompt = r->prompt, .n_prompt = r->n_prompt, .n = r->n,
                                .params = r->p, .seed = r->p.seed, .user = r};
        s = tm_engine_add(e, &er, &err);
        if (s) fprintf(stderr, "add: %s\n", err.msg);
        assert_int_equal(s, TM_OK);
        memset(r->n_out, 0, sizeof r->n_out);
    }
    tm_engine_seq *done[NREQ * 8];
    int n_done = 0;
    while (tm_engine_has_work(e)) {
        tm_engine_step_out so;
        assert_int_equal(tm_engine_step(e, &so, &err), TM_OK);
        assert_true(so.n_tokens <= max_batch_tokens);
        if (rs) {
            rs->prefill_tokens += so.n_prefill_tokens;
            rs->cached_tokens += so.n_cached_tokens;
            rs->preemptions += so.n_preempted;
            rs->steps++;
        }
        for (int32_t i = 0; i < so.n_events; i++) {
            const tm_engine_event *ev = &so.events[i];
            req *r = ev->user;
            assert_false(ev->aborted);
            assert_true(r->n_out[ev->choice] < MAXGEN);
            r->out[ev->choice][r->n_out[ev->choice]++] = ev->token;
            if (ev->finished) done[n_done++] = ev->seq;
        }
    }
    for (int i = 0; i < n_done; i++) tm_engine_release(e, done[i]);
    tm_engine_destroy(e);
}

static void make_reqs(req *reqs, int shared_len, int sampled)
{
    uint32_t r = 99;
    for (int i = 0; i < NREQ; i++) {
        req *q = &reqs[i];
        memset(q, 0, sizeof *q);
        r = r * 1664525u + 1013904223u;
        int32_t n = 1 + (int32_t)((r >> 9) % 90);
        int32_t shared = (i % 4 == 1) ? 20 : 0; /* a quarter share a 20-token prefix */
        if (shared_len) shared = shared_len;
        q->n_prompt = shared + n;
        for (int32_t t = 0; t < q->n_prompt; t++) {
            r = r * 1664525u + 1013904223u;
            q->prompt[t] = t < shared ? (int32_t)((t * 7 + 3) % 500) : (int32_t)((r >> 8) % 512);
        }
        tm_sampling_params_default(&q->p);
        q->p.max_tokens = 4 + (int32_t)(i % 9);
        q->p.ignore_eos = 1;
        q->p.temperature = (sampled && i % 2) ? 0.8f : 0.0f;
        q->p.top_p = (sampled && i % 3 == 0) ? 0.9f : 1.0f;
        q->p.seed = 1000 + (uint64_t)i;
        q->p.has_seed = 1;
        q->n = 1;
    }
}

static void check_batch_invariance(int sampled)
{
    static req alone[NREQ], batched[NREQ];
    make_reqs(alone, 0, sampled);
    make_reqs(batched, 0, sampled);
    int all[NREQ];
    for (int i = 0; i < NREQ; i++) {
        all[i] = i;
        run_engine(alone, &i, 1, 64, 512, 1, NULL);
    }
    run_stats rs = {0};
    run_engine(batched, all, NREQ, 256, 96, 16, &rs); /* chunked prefill + mixed steps */
    for (int i = 0; i < NREQ; i++) {
        assert_int_equal(batched[i].n_out[0], alone[i].p.max_tokens);
        assert_memory_equal(batched[i].out[0], alone[i].out[0], sizeof(int32_t) * (size_t)alone[i].n_out[0]);
    }
    assert_true(rs.steps < 32 * 12); /* it really batched */
}

static void test_batch_invariance_greedy(void **st) { (void)st; check_batch_invariance(0); }
static void test_batch_invariance_sampled(void **st) { (void)st; check_batch_invariance(1); }

static void test_prefix_cache(void **st)
{
    (void)st;
    static req cached[NREQ], fresh[NREQ];
    make_reqs(cached, 300, 0);
    make_reqs(fresh, 300, 0);
    int idx[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    /* uncached reference: every request alone in its own engine */
    int64_t fresh_prefill = 0;
    for (int i = 0; i < 8; i++) {
        run_stats rs = {0};
        run_engine(fresh, &idx[i], 1, 64, 512, 1, &rs);
        fresh_prefill += rs.prefill_tokens;
    }
    run_stats rs = {0};
    run_engine(cached, idx, 8, 256, 512, 8, &rs);
    assert_true(rs.cached_tokens >= 7 * 288); /* 18 full blocks of the 300-token prefix, 7 times */
    assert_true(rs.prefill_tokens + rs.cached_tokens <= fresh_prefill + 16);
    assert_true(rs.prefill_tokens < fresh_prefill / 2);
    for (int i = 0; i < 8; i++)
        assert_memory_equal(cached[i].out[0], fresh[i].out[0], sizeof(int32_t) * (size_t)fresh[i].n_out[0]);
}

static void test_preemption_recompute(void **st)
{
    (void)st;
    static req small[NREQ], ref[NREQ];
    make_reqs(small, 0, 1);
    make_reqs(ref, 0, 1);
    int all[NREQ];
    for (int i = 0; i < NREQ; i++) all[i] = i;
    run_engine(ref, all, NREQ, 512, 256, 32, NULL);
    run_stats rs = {0};
    run_engine(small, all, NREQ, 12, 256, 32, &rs); /* 12 blocks = 192 token slots */
    assert_true(rs.preemptions > 0);
    for (int i = 0; i < NREQ; i++)
        assert_memory_equal(small[i].out[0], ref[i].out[0], sizeof(int32_t) * (size_t)ref[i].n_out[0]);
}

static void test_n_choices(void **st)
{
    (void)st;
    static req tmp[NREQ], multi[1];
    make_reqs(tmp, 0, 0);
    multi[0] = tmp[0];
    multi[0].n_prompt = 70;
    multi[0].p.temperature = 1.0f;
    multi[0].p.max_tokens = 8;
    multi[0].n = 4;
    int zero = 0;
    run_stats rs = {0};
    run_engine(multi, &zero, 1, 64, 512, 8, &rs);
    /* choices differ from each other (request_key = choice index) ... */
    int differ = 0;
    for (int c = 1; c < 4; c++) differ |= memcmp(multi[0].out[0], multi[0].out[c], sizeof(int32_t) * 8) != 0;
    assert_true(differ);
    /* ... and the later choices reused choice 0's full prompt blocks */
    assert_true(rs.cached_tokens >= 3 * 64);
    assert_true(rs.prefill_tokens <= 70 + 3 * 16);
}


/* min_tokens and logit_bias through the engine: greedy request 0 stops at
 * once when its first greedy token is a stop id; with min_tokens 3 the stop
 * id is banned for 3 tokens and the sequence runs on; a +100 bias forces a
 * chosen token at every step, a -100 bias bans the greedy one. */
static void test_min_tokens_logit_bias(void **st)
{
    (void)st;
    static req tmp[NREQ], one[1];
    make_reqs(tmp, 0, 0);
    int zero = 0;
    one[0] = tmp[0];
    one[0].p.max_tokens = 6;
    run_engine(one, &zero, 1, 64, 512, 1, NULL);
    assert_int_equal(one[0].n_out[0], 6);
    int32_t first = one[0].out[0][0], greedy[MAXGEN];
    memcpy(greedy, one[0].out[0], sizeof greedy);

    one[0] = tmp[0];
    one[0].p.max_tokens = 6;
    one[0].p.stop_ids[one[0].p.n_stop_ids++] = first;
    run_engine(one, &zero, 1, 64, 512, 1, NULL);
    assert_int_equal(one[0].n_out[0], 1); /* stopped on its first token */

    one[0].p.min_tokens = 3;
    run_engine(one, &zero, 1, 64, 512, 1, NULL);
    assert_true(one[0].n_out[0] > 3);
    for (int t = 0; t < 3; t++) assert_int_not_equal(one[0].out[0][t], first);

    one[0] = tmp[0];
    one[0].p.max_tokens = 6;
    one[0].p.temperature = 1.0f; /* sampled: +100 still forces */
    one[0].p.bias_id[0] = 77;
    one[0].p.bias[0] = 100.0f;
    one[0].p.n_bias = 1;
    run_engine(one, &zero, 1, 64, 512, 1, NULL);
    for (int t = 0; t < 6; t++) assert_int_equal(one[0].out[0][t], 77);

    one[0] = tmp[0];
    one[0].p.max_tokens = 6;
    one[0].p.bias_id[0] = first;
    one[0].p.bias[0] = -100.0f;
    one[0].p.n_bias = 1;
    run_engine(one, &zero, 1, 64, 512, 1, NULL);
    for (int t = 0; t < 6; t++) assert_int_not_equal(one[0].out[0][t], first);
    assert_int_not_equal(memcmp(one[0].out[0], greedy, sizeof(int32_t) * 6), 0);
}

/* Resume from every cut point of a batch: each request (n = 2 choices cut at
 * different points, one of them already finished for some) continues with
 * exactly the tokens of the uninterrupted run. */
static void test_resume(void **st)
{
    (void)st;
    static req full[NREQ];
    make_reqs(full, 0, 1);
    for (int i = 0; i < NREQ; i++) {
        full[i].n = 2;
        if (i % 5 == 0) full[i].p.frequency_penalty = 0.5f;
        if (i % 7 == 0) full[i].p.repetition_penalty = 1.3f;
    }
    int idx[NREQ];
    for (int i = 0; i < NREQ; i++) idx[i] = i;
    run_engine(full, idx, NREQ, 512, 64, 16, NULL);

    for (int cut = 1; cut < MAXGEN; cut += 3) {
        tm_err err;
        tm_engine_config cfg = {.block_size = 16, .n_blocks = 512, .max_batch_tokens = 48, .max_seqs = 16,
                                .max_requests = 512, .max_context = 512, .n_threads = 2};
        tm_engine *e = NULL;
        assert_int_equal(tm_engine_create(&tm_backend_cpu, model, &cfg, &e, &err), TM_OK);
        static int32_t got[NREQ][2][MAXGEN];
        static int32_t n_got[NREQ][2];
        memset(n_got, 0, sizeof n_got);
        int32_t n_res[NREQ][2];
        int expect_events = 0;
        for (int i = 0; i < NREQ; i++) {
            req *r = &full[i];
            const int32_t *res[2] = {r->out[0], r->out[1]};
            tm_finish_reason fin[2] = {TM_FINISH_NONE, TM_FINISH_NONE};
            for (int c = 0; c < 2; c++) {
                int32_t k = c == 0 ? cut : cut / 2;
                if (k >= r->n_out[c]) { k = r->n_out[c]; fin[c] = TM_FINISH_LENGTH; } /* it had ended */
                n_res[i][c] = k;
                if (!fin[c]) expect_events += r->n_out[c] - k;
            }
            tm_engine_seq *seqs[2];
            tm_engine_request er = {.id = i, .prompt = r->prompt, .n_prompt = r->n_prompt, .n = 2, .params = r->p,
                                    .seed = r->p.seed, .user = r, .resume = res, .n_resume = n_res[i],
                                    .resume_finished = fin, .seqs_out = seqs};
            assert_int_equal(tm_engine_add(e, &er, &err), TM_OK);
            for (int c = 0; c < 2; c++) {
                int32_t np, nt;
                tm_engine_seq_tokens(seqs[c], &np, &nt);
                assert_int_equal(nt - np, n_res[i][c]);
            }
        }
        int events = 0, recompute = 0;
        while (tm_engine_has_work(e)) {
            tm_engine_step_out so;
            assert_int_equal(tm_engine_step(e, &so, &err), TM_OK);
            for (int32_t k = 0; k < so.n_seqs; k++) recompute += so.work[k].n_recompute;
            for (int32_t j = 0; j < so.n_events; j++) {
                const tm_engine_event *ev = &so.events[j];
                int i = (int)ev->request_id;
                assert_int_equal(ev->aborted, 0);
                assert_true(n_got[i][ev->choice] < MAXGEN);
                got[i][ev->choice][n_got[i][ev->choice]++] = ev->token;
                events++;
            }
        }
        assert_int_equal(events, expect_events);
        /* every resumed token but the last of each choice was computed before */
        int want_rc = 0;
        for (int i = 0; i < NREQ; i++)
            for (int c = 0; c < 2; c++)
                if (n_res[i][c] < full[i].n_out[c]) want_rc += full[i].n_prompt + n_res[i][c] - 1;
        assert_true(recompute <= want_rc);
        assert_true(recompute > 0);
        for (int i = 0; i < NREQ; i++)
            for (int c = 0; c < 2; c++) {
                int32_t k = n_res[i][c];
                if (k >= full[i].n_out[c]) { assert_int_equal(n_got[i][c], 0); continue; }
                assert_int_equal(n_got[i][c], full[i].n_out[c] - k);
                for (int32_t t = 0; t < n_got[i][c]; t++)
                    if (got[i][c][t] != full[i].out[c][k + t])
                        fail_msg("cut %d request %d choice %d token %d: %d, uninterrupted %d", cut, i, c, k + t,
                                 got[i][c][t], full[i].out[c][k + t]);
            }
        tm_engine_destroy(e);
    }
}

/* A resume that cannot be right is refused, not run. */
static void test_resume_refused(void **st)
{
    (void)st;
    tm_err err;
    tm_engine_config cfg = {.block_size = 16, .n_blocks = 64, .max_batch_tokens = 64, .max_seqs = 4,
                            .max_requests = 16, .max_context = 128, .n_threads = 1};
    tm_engine *e = NULL;
    assert_int_equal(tm_engine_create(&tm_backend_cpu, model, &cfg, &e, &err), TM_OK);
    int32_t prompt[4] = {1, 2, 3, 4}, toks[8] = {5, 6, 7, 8, 9, 10, 11, 12}, bad[1] = {1 << 30};
    tm_sampling_params p;
    tm_sampling_params_default(&p);
    p.max_tokens = 4;
    const int32_t *res[1] = {toks};
    int32_t nr[1] = {4}; /* == max_tokens but not marked finished */
    tm_engine_request er = {.id = 1, .prompt = prompt, .n_prompt = 4, .n = 1, .params = p, .resume = res,
                            .n_resume = nr};
    assert_int_equal(tm_engine_add(e, &er, &err), TM_ERR_INPUT);
    nr[0] = 9;
    assert_int_equal(tm_engine_add(e, &er, &err), TM_ERR_INPUT);
    nr[0] = 1;
    res[0] = bad;
    assert_int_equal(tm_engine_add(e, &er, &err), TM_ERR_INPUT);
    assert_false(tm_engine_has_work(e));
    tm_engine_destroy(e);
}

int main(void)
{
    const char *td = getenv("TOKENMILL_TESTDATA");
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/models/llama-mini/config.json", td ? td : "../shared/testdata");
    FILE *f = fopen(probe, "r");
    if (!f) {
        printf("SKIP: test data not found (%s); set TOKENMILL_TESTDATA\n", probe);
        return 77;
    }
    fclose(f);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_invariance_greedy),
        cmocka_unit_test(test_batch_invariance_sampled),
        cmocka_unit_test(test_prefix_cache),
        cmocka_unit_test(test_preemption_recompute),
        cmocka_unit_test(test_n_choices),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_resume_refused),
        cmocka_unit_test(test_min_tokens_logit_bias),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
