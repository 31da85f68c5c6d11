/* bench_sampler.c — µs per row of tm_sampler_sample() on a 128,256-token
 * vocabulary (Llama 3), one thread: the current sampler (AVX2 kernels when
 * the CPU has them, and its portable C path) next to the previous one
 * (tests/bench/sampler_v0.c), for greedy, top-k, top-p, min-p and plain
 * temperature sampling, with and without logprobs (top 5).
 *
 * Logits: "peaked" = N(0, 2^2) noise plus a few leaders 9-14 above the
 * rest (a trained model's shape: top-p keeps a handful); "flat" = N(0,
 * 2.5^2) (a random-weight model: top-p keeps thousands). 32 distinct rows
 * are cycled so that a row is not cache-resident from the previous call.
 * Each figure is the best of 7 rounds of the mean over 32 rows, in thread
 * CPU time (CLOCK_THREAD_CPUTIME_ID: a loaded machine's waits are left out).
 * "same" is the fraction of draws where old and new choose the same token
 * (they differ where the new exp's last bit moves a boundary).
 *
 *   build/bench_sampler [rounds]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/sampler.h"

/* the previous sampler (sampler_v0.c) */
typedef struct tm_sampler_v0 tm_sampler_v0;
tm_status tm_sampler_v0_create(int32_t vocab, tm_sampler_v0 **out, tm_err *err);
void tm_sampler_v0_destroy(tm_sampler_v0 *s);
tm_status tm_sampler_v0_sample(tm_sampler_v0 *s, const float *logits, const tm_sampling_params *p,
                               uint64_t request_key, uint64_t token_index, const int32_t *prev,
                               size_t n_prev, size_t n_prompt, tm_sample_result *out, tm_err *err);

enum { V = 128256, ROWS = 32, NPREV = 600 };

static uint64_t rng(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static float gauss(uint64_t *x) /* Irwin-Hall(12) - 6 */
{
    float s = 0.0f;
    for (int i = 0; i < 12; i++) s += (float)(rng(x) >> 40) / (float)(1 << 24);
    return s - 6.0f;
}

typedef struct bcase {
    const char *name;
    float temp, top_p, min_p, rep;
    int32_t top_k, top_logprobs;
} bcase;

typedef struct timing {
    double us;
    int32_t tok[ROWS];
} timing;

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int run(void *s, int which, float *const *rows, const tm_sampling_params *p, const int32_t *prev,
               size_t np, int rounds, timing *t)
{
    t->us = 1e30;
    for (int r = 0; r < rounds; r++) {
        uint64_t t0 = cpu_ns();
        for (int i = 0; i < ROWS; i++) {
            tm_sample_result res;
            tm_err err;
            tm_status st = which == 0
                               ? tm_sampler_v0_sample(s, rows[i], p, 0, (uint64_t)i, prev, np, np / 2, &res, &err)
                               : tm_sampler_sample(s, rows[i], p, 0, (uint64_t)i, prev, np, np / 2, &res, &err);
            if (st) {
                fprintf(stderr, "sample: %s\n", err.msg);
                return 1;
            }
            t->tok[i] = res.token;
        }
        double us = (double)(cpu_ns() - t0) / 1e3 / ROWS;
        if (us < t->us) t->us = us;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 7;
    if (rounds < 1) rounds = 1;
    uint64_t x = 0x5eed1234;
    float *rows[2][ROWS];
    for (int d = 0; d < 2; d++)
        for (int r = 0; r < ROWS; r++) {
            float *l = malloc(V * sizeof *l);
            if (!l) return 1;
            for (int i = 0; i < V; i++) l[i] = (d == 0 ? 2.0f : 2.5f) * gauss(&x);
            if (d == 0)
                for (int j = 0; j < 4; j++) l[rng(&x) % V] = 9.0f + 5.0f * (float)(rng(&x) >> 40) / (float)(1 << 24);
            rows[d][r] = l;
        }
    int32_t prev[NPREV];
    for (int i = 0; i < NPREV; i++) prev[i] = (int32_t)(rng(&x) % V);
    tm_sampler_v0 *old = NULL;
    tm_sampler *cur = NULL;
    tm_err err;
    if (tm_sampler_v0_create(V, &old, &err) || tm_sampler_create(V, &cur, &err)) {
        fprintf(stderr, "create: %s\n", err.msg);
        return 1;
    }
    const bcase cases[] = {
        {"greedy", 0.0f, 1.0f, 0.0f, 1.0f, 0, 0},
        {"greedy rep=1.1 (600 prev)", 0.0f, 1.0f, 0.0f, 1.1f, 0, 0},
        {"T=1", 1.0f, 1.0f, 0.0f, 1.0f, 0, 0},
        {"T=0.8 top_k=50", 0.8f, 1.0f, 0.0f, 1.0f, 50, 0},
        {"T=0.8 top_p=0.9", 0.8f, 0.9f, 0.0f, 1.0f, 0, 0},
        {"T=0.8 top_p=0.9 rep=1.1", 0.8f, 0.9f, 0.0f, 1.1f, 0, 0},
        {"T=1 top_k=50 top_p=0.95", 1.0f, 0.95f, 0.0f, 1.0f, 50, 0},
        {"T=1 min_p=0.05", 1.0f, 1.0f, 0.05f, 1.0f, 0, 0},
    };
    const char *dname[2] = {"peaked", "flat"};
    printf("vocab %d, %d rows, best of %d rounds, one thread; CPU us/row\n", V, ROWS, rounds);
    printf("%-6s %-30s %-4s %9s %9s %9s %8s %6s\n", "logits", "case", "lp", "old", "new", "portable",
           "speedup", "same");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int lp = 0; lp < 2; lp++)
            for (int d = 0; d < 2; d++) {
                const bcase *b = &cases[c];
                tm_sampling_params p;
                tm_sampling_params_default(&p);
                p.temperature = b->temp;
                p.top_p = b->top_p;
                p.min_p = b->min_p;
                p.top_k = b->top_k;
                p.repetition_penalty = b->rep;
                p.logprobs = lp;
                p.top_logprobs = lp ? 5 : 0;
                p.seed = 7;
                size_t np = b->rep != 1.0f ? NPREV : 0;
                timing to, tn, tp;
                if (run(old, 0, rows[d], &p, prev, np, rounds, &to)) return 1;
                tm_sampler_set_portable(cur, 0);
                if (run(cur, 1, rows[d], &p, prev, np, rounds, &tn)) return 1;
                tm_sampler_set_portable(cur, 1);
                if (run(cur, 1, rows[d], &p, prev, np, rounds, &tp)) return 1;
                int same = 0;
                for (int i = 0; i < ROWS; i++) {
                    same += to.tok[i] == tn.tok[i];
                    if (tn.tok[i] != tp.tok[i]) {
                        fprintf(stderr, "%s row %d: AVX2 and portable paths disagree (%d vs %d)\n", b->name,
                                i, tn.tok[i], tp.tok[i]);
                        return 1;
                    }
                }
                printf("%-6s %-30s %-4s %9.1f %9.1f %9.1f %7.1fx %3d/%d\n", dname[d], b->name, lp ? "yes" : "no",
                       to.us, tn.us, tp.us, to.us / tn.us, same, ROWS);
            }
    tm_sampler_v0_destroy(old);
    tm_sampler_destroy(cur);
    for (int d = 0; d < 2; d++)
        for (int r = 0; r < ROWS; r++) free(rows[d][r]);
    return 0;
}
