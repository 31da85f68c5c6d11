/* bench_engine_host.c — the engine's own host cost per step and per
 * completion (scheduler, batch and block-table building, sampling, stop
 * checks, tm_engine_release), with a backend whose forward only writes a
 * logit row per sequence, so nearly all the time measured is bookkeeping.
 *
 * Model: a synthetic config (vocab 256, 1 layer) with a 131,072-token context
 * (8,192 block-table entries per row at block size 16). Requests: 128
 * random prompt tokens, 16 greedy output tokens (ignore_eos), n choices
 * each; the engine holds up to 1,024 sequences and runs up to --max-seqs
 * per step. Prints host µs per step (step wall time minus forward time),
 * µs per completion spent in tm_engine_release, and completions per second
 * of host time. One thread.
 *
 *   build/bench_engine_host [requests=20000] [max_seqs=256] [n=1]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "engine/engine.h"
#include "model/model.h"

enum { VOCAB = 256, PROMPT = 128, OUT = 16, CTX = 131072, BS = 16 };

struct tm_backend {
    int32_t vocab;
    tm_batch_limits lim;
};

static tm_status fake_create(const tm_model *m, const tm_backend_opts *o, tm_backend **out, tm_err *err)
{
    tm_backend *b = calloc(1, sizeof *b);
    if (!b) return tm_errf(err, TM_ERR_NOMEM, "fake backend: out of memory");
    b->vocab = tm_model_config_of(m)->vocab_size;
    b->lim = (tm_batch_limits){.max_tokens = o->max_batch_tokens, .max_seqs = o->max_seqs,
                               .block_size = o->block_size, .n_blocks = o->n_blocks,
                               .ctx_max = CTX, .vocab = b->vocab};
    *out = b;
    return TM_OK;
}

static void fake_destroy(tm_backend *b) { free(b); }

/* token (position * 7) mod vocab wins: cheap, and never depends on the batch */
static tm_status fake_forward(tm_backend *b, const tm_batch *bt, tm_err *err)
{
    tm_status st = tm_batch_check(bt, &b->lim, err); /* block tables included */
    if (st) return st;
    for (int32_t j = 0; j < bt->n_logits; j++) {
        float *row = bt->logits + (size_t)j * (size_t)b->vocab;
        memset(row, 0, (size_t)b->vocab * sizeof *row);
        row[(bt->positions[bt->logit_rows[j]] * 7) % b->vocab] = 1.0f;
    }
    return TM_OK;
}

static tm_status fake_copy(tm_backend *b, int32_t src, int32_t dst, tm_err *err) { return TM_OK; }
static size_t fake_kv_bytes(const tm_model *m, int32_t block_size) { return 1; }

static const tm_backend_ops fake_ops = {.name = "fake", .create = fake_create, .destroy = fake_destroy,
                                        .forward = fake_forward, .copy_block = fake_copy,
                                        .kv_block_bytes = fake_kv_bytes};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    int64_t n_req = argc > 1 ? atoll(argv[1]) : 20000;
    int32_t max_seqs = argc > 2 ? atoi(argv[2]) : 256;
    int32_t n_choices = argc > 3 ? atoi(argv[3]) : 1;
    if (n_req < 1 || max_seqs < 1 || n_choices < 1 || n_choices > 128) return 2;
    tm_err err;
    tm_model_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.vocab_size = VOCAB;
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
    cfg.dtype = TM_DTYPE_F32;
    tm_model *m = NULL;
    if (tm_model_synthetic_from_config(&cfg, "bench-host", &m, &err)) {
        fprintf(stderr, "model: %s\n", err.msg);
        return 1;
    }
    tm_engine_config ec = {.block_size = BS, .n_blocks = 1024 * (PROMPT + OUT) / BS + 64,
                           .max_batch_tokens = 8192, .max_seqs = max_seqs, .max_requests = 1024,
                           .max_context = CTX, .n_threads = 1};
    tm_engine *e = NULL;
    if (tm_engine_create(&fake_ops, m, &ec, &e, &err)) {
        fprintf(stderr, "engine: %s\n", err.msg);
        return 1;
    }
    int32_t prompt[PROMPT];
    uint64_t x = 12345;
    int64_t added = 0, done = 0, steps = 0;
    uint64_t t_step = 0, t_fwd = 0, t_rel = 0, t0 = now_ns();
    while (done < n_req * n_choices) {
        while (added < n_req) {
            for (int i = 0; i < PROMPT; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                prompt[i] = (int32_t)(x % VOCAB);
            }
            tm_engine_request r = {.id = added, .prompt = prompt, .n_prompt = PROMPT, .n = n_choices};
            tm_sampling_params_default(&r.params);
            r.params.temperature = 0.0f;
            r.params.max_tokens = OUT;
            r.params.ignore_eos = 1;
            tm_status st = tm_engine_add(e, &r, &err);
            if (st == TM_ERR_BUSY) break;
            if (st) {
                fprintf(stderr, "add: %s\n", err.msg);
                return 1;
            }
            added++;
        }
        tm_engine_step_out so;
        uint64_t a = now_ns();
        if (tm_engine_step(e, &so, &err)) {
            fprintf(stderr, "step: %s\n", err.msg);
            return 1;
        }
        uint64_t b = now_ns();
        t_step += b - a;
        t_fwd += so.forward_ns;
        steps++;
        for (int32_t i = 0; i < so.n_events; i++) {
            if (!so.events[i].finished && !so.events[i].aborted) continue;
            uint64_t c = now_ns();
            tm_engine_release(e, so.events[i].seq);
            t_rel += now_ns() - c;
            done++;
        }
        if (so.n_events == 0 && !tm_engine_has_work(e) && added >= n_req) break;
    }
    double wall = (double)(now_ns() - t0) / 1e9;
    double host_step = (double)(t_step - t_fwd) / 1e3 / (double)steps;
    printf("requests %lld x n=%d, max_seqs %d, context %d (%d table entries/row): %lld steps, %lld completions\n",
           (long long)n_req, n_choices, max_seqs, CTX, CTX / BS, (long long)steps, (long long)done);
    printf("host per step (step - forward)   %8.1f us\n", host_step);
    printf("forward per step (fake backend)  %8.1f us\n", (double)t_fwd / 1e3 / (double)steps);
    printf("tm_engine_release per completion %8.2f us\n", (double)t_rel / 1e3 / (double)done);
    printf("completions / s of host time     %8.0f   (wall %.2f s)\n",
           (double)done / ((double)(t_step - t_fwd + t_rel) / 1e9), wall);
    tm_engine_destroy(e);
    tm_model_destroy(m);
    return 0;
}
