/* test_engine_tables.c — the engine's block-table rows (kept across steps,
 * only new entries written: tm_batch.bt_rows) and its sibling links, with a
 * backend that stores each token id in its KV slot and predicts
 *   next = (sum of every token id it reads back through the table) mod V.
 * Every generated token therefore checks that each position of each
 * sequence was read from the block the sequence really owns, in every step:
 * through prefix-cache sharing, n > 1 choices, preemption by recompute (a
 * pool too small for the batch) and sequences finishing, aborted or
 * released in any order (leaders before their siblings too).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "engine/engine.h"
#include "model/model.h"

enum { V = 97, BS = 4, NBLK = 48, CTX = 96, NREQ = 40, MAXC = 3, OUTN = 20 };

struct tm_backend {
    tm_batch_limits lim;
    int32_t kv[NBLK * BS];
};

static tm_status kv_create(const tm_model *m, const tm_backend_opts *o, tm_backend **out, tm_err *err)
{
    tm_backend *b = calloc(1, sizeof *b);
    if (!b) return tm_errf(err, TM_ERR_NOMEM, "oom");
    b->lim = (tm_batch_limits){.max_tokens = o->max_batch_tokens, .max_seqs = o->max_seqs,
                               .block_size = o->block_size, .n_blocks = o->n_blocks, .ctx_max = CTX, .vocab = V};
    *out = b;
    return TM_OK;
}

static void kv_destroy(tm_backend *b) { free(b); }

static tm_status kv_forward(tm_backend *b, const tm_batch *bt, tm_err *err)
{
    tm_status st = tm_batch_check(bt, &b->lim, err);
    if (st) return st;
    for (int32_t s = 0; s < bt->n_seqs; s++) {
        const int32_t *tab = tm_batch_table(bt, s);
        for (int32_t i = bt->seq_start[s]; i < bt->seq_start[s + 1]; i++) {
            int32_t p = bt->positions[i];
            b->kv[tab[p / BS] * BS + p % BS] = bt->token_ids[i];
        }
    }
    for (int32_t j = 0; j < bt->n_logits; j++) {
        int32_t row = bt->logit_rows[j], s = 0;
        while (bt->seq_start[s + 1] <= row) s++;
        const int32_t *tab = tm_batch_table(bt, s);
        int64_t sum = 0;
        for (int32_t p = 0; p <= bt->positions[row]; p++) sum += b->kv[tab[p / BS] * BS + p % BS];
        float *l = bt->logits + (size_t)j * V;
        for (int32_t t = 0; t < V; t++) l[t] = 0.0f;
        l[sum % V] = 1.0f;
    }
    return TM_OK;
}

static tm_status kv_copy(tm_backend *b, int32_t src, int32_t dst, tm_err *err)
{
    memcpy(b->kv + dst * BS, b->kv + src * BS, BS * sizeof(int32_t));
    return TM_OK;
}

static size_t kv_bytes(const tm_model *m, int32_t block_size) { return 1; }

static const tm_backend_ops kv_ops = {.name = "kvsum", .create = kv_create, .destroy = kv_destroy,
                                      .forward = kv_forward, .copy_block = kv_copy, .kv_block_bytes = kv_bytes};

typedef struct req {
    int32_t prompt[40], n_prompt, n, aborted_at;
    tm_engine_seq *seqs[MAXC];
    int finished[MAXC];
    int32_t got[MAXC];
} req;

static void test_tables(void **state)
{
    (void)state;
    tm_model_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.vocab_size = V;
    cfg.hidden_size = 16;
    cfg.intermediate_size = 32;
    cfg.n_layers = 1;
    cfg.n_heads = 1;
    cfg.n_kv_heads = 1;
    cfg.head_dim = 16;
    cfg.max_position_embeddings = CTX;
    cfg.rms_norm_eps = 1e-5f;
    cfg.rope_theta = 10000.0f;
    cfg.bos_token_id = -1;
    tm_model *m = NULL;
    tm_err err;
    assert_int_equal(tm_model_synthetic_from_config(&cfg, "kvsum", &m, &err), TM_OK);
    tm_engine_config ec = {.block_size = BS, .n_blocks = NBLK, .max_batch_tokens = 48, .max_seqs = 6,
                           .max_requests = 64, .max_context = CTX, .n_threads = 1};
    tm_engine *e = NULL;
    assert_int_equal(tm_engine_create(&kv_ops, m, &ec, &e, &err), TM_OK);
    static req rq[NREQ];
    uint64_t x = 31337;
    for (int r = 0; r < NREQ; r++) {
        req *q = &rq[r];
        memset(q, 0, sizeof *q);
        q->n_prompt = 9 + r % 23;
        for (int i = 0; i < q->n_prompt; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            q->prompt[i] = r % 4 == 0 && i < 8 ? i + 1 : (int32_t)(x % V); /* a shared prefix */
        }
        q->n = r % 5 == 1 ? MAXC : 1;
        q->aborted_at = r % 9 == 4 ? 3 : -1; /* leaders ended early, siblings run on */
    }
    int added = 0, open = 0, preempted = 0;
    for (int guard = 0; guard < 100000 && (added < NREQ || open > 0); guard++) {
        while (added < NREQ) {
            req *q = &rq[added];
            tm_engine_request er = {.id = added, .prompt = q->prompt, .n_prompt = q->n_prompt, .n = q->n,
                                    .user = q, .seqs_out = q->seqs};
            tm_sampling_params_default(&er.params);
            er.params.temperature = 0.0f;
            er.params.max_tokens = OUTN;
            er.params.ignore_eos = 1;
            tm_status st = tm_engine_add(e, &er, &err);
            if (st == TM_ERR_BUSY) break;
            assert_int_equal(st, TM_OK);
            open += q->n;
            added++;
        }
        tm_engine_step_out so;
        assert_int_equal(tm_engine_step(e, &so, &err), TM_OK);
        preempted += so.n_preempted;
        for (int32_t i = 0; i < so.n_events; i++) {
            const tm_engine_event *ev = &so.events[i];
            req *q = ev->user;
            assert_false(ev->aborted);
            int32_t np = 0, nt = 0;
            const int32_t *toks = tm_engine_seq_tokens(ev->seq, &np, &nt);
            int64_t sum = 0;
            for (int32_t p = 0; p < nt - 1; p++) sum += toks[p];
            assert_int_equal(ev->token, (int32_t)(sum % V)); /* read back through the table */
            q->got[ev->choice]++;
            int end = ev->finished != TM_FINISH_NONE;
            if (!end && ev->choice == 0 && q->n > 1 && q->got[0] == q->aborted_at) {
                tm_engine_finish(e, ev->seq, TM_FINISH_NONE);
                end = 1;
            }
            if (end) {
                q->finished[ev->choice] = 1;
                tm_engine_release(e, ev->seq);
                open--;
            }
        }
        if (so.n_events == 0 && !tm_engine_has_work(e)) break;
    }
    assert_int_equal(added, NREQ);
    assert_int_equal(open, 0);
    assert_true(preempted > 0); /* the pool was too small: recompute happened */
    for (int r = 0; r < NREQ; r++)
        for (int c = 0; c < rq[r].n; c++) {
            assert_true(rq[r].finished[c]);
            if (!(c == 0 && rq[r].aborted_at > 0 && rq[r].n > 1)) assert_int_equal(rq[r].got[c], OUTN);
        }
    tm_engine_destroy(e);
    tm_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
