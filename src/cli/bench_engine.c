/* bench_engine.c — `tokenmill bench engine`: the batching engine's requests/s
 * and tokens/s against processing the same requests one at a time, measured
 * side by side in one run on the same model and backend.
 *
 * Requests are random token-id prompts (seeded) of --input-len tokens that
 * generate exactly --output-len tokens each (ignore_eos), greedy.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "cli/bench.h"
#include "cli/cli.h"
#include "engine/engine.h"
#include "model/model.h"
#include "util/timeutil.h"

typedef struct bench_result {
    double seconds;
    int64_t prompt_tokens, output_tokens, steps;
} bench_result;

static tm_status run_batch(const tm_backend_ops *ops, const tm_model *m, const int32_t *prompts, int R, int I,
                           int O, int max_seqs, int max_batch_tokens, int threads, bench_result *res, tm_err *err)
{
    int32_t bs = 16;
    int32_t per_req = (I + O + bs - 1) / bs;
    tm_engine_config cfg = {.block_size = bs, .n_blocks = per_req * (max_seqs + 1), .max_batch_tokens = max_batch_tokens,
                            .max_seqs = max_seqs, .max_requests = R + 1, .max_context = I + O + 1,
                            .n_threads = threads};
    tm_engine *e = NULL;
    tm_status st = tm_engine_create(ops, m, &cfg, &e, err);
    if (st) return st;
    uint64_t t0 = tm_now_mono_ns();
    for (int r = 0; r < R && !st; r++) {
        tm_engine_request er = {.id = r, .prompt = prompts + (size_t)r * (size_t)I, .n_prompt = I, .n = 1};
        tm_sampling_params_default(&er.params);
        er.params.temperature = 0;
        er.params.max_tokens = O;
        er.params.ignore_eos = 1;
        st = tm_engine_add(e, &er, err);
    }
    while (!st && tm_engine_has_work(e)) {
        tm_engine_step_out so;
        if ((st = tm_engine_step(e, &so, err))) break;
        res->steps++;
        res->prompt_tokens += so.n_prefill_tokens;
        for (int32_t i = 0; i < so.n_events; i++) {
            res->output_tokens++;
            if (so.events[i].finished) tm_engine_release(e, so.events[i].seq);
        }
    }
    res->seconds += (double)(tm_now_mono_ns() - t0) * 1e-9;
    tm_engine_destroy(e);
    return st;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill bench engine --model DIR [--requests R] [--input-len I] [--output-len O]\n"
               "                              [--max-seqs N] [--max-batch-tokens T] [--threads N] [--device D]\n\n"
               "Runs R random-prompt requests (I prompt tokens, O generated, greedy) through the\n"
               "batching engine, then the same requests one at a time, and prints both and the ratio.\n");
}

int tm_bench_engine(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},      {"requests", required_argument, 0, 'r'},
        {"input-len", required_argument, 0, 'i'},  {"output-len", required_argument, 0, 'o'},
        {"max-seqs", required_argument, 0, 's'},   {"max-batch-tokens", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 'j'},    {"device", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    const char *model_dir = NULL, *device = "auto";
    long long R = 32, I = 64, O = 32, S = 32, T = 2048, J = 0, v;
    tm_err err;
    tm_cli_getopt_reset();
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        tm_status st = TM_OK;
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'd': device = optarg; break;
        case 'r': st = tm_cli_parse_long("--requests", optarg, 1, 100000, &R, &err); break;
        case 'i': st = tm_cli_parse_long("--input-len", optarg, 1, 1 << 20, &I, &err); break;
        case 'o': st = tm_cli_parse_long("--output-len", optarg, 1, 1 << 20, &O, &err); break;
        case 's': st = tm_cli_parse_long("--max-seqs", optarg, 1, 4096, &S, &err); break;
        case 'b': st = tm_cli_parse_long("--max-batch-tokens", optarg, 1, 1 << 20, &T, &err); break;
        case 'j': st = tm_cli_parse_long("--threads", optarg, 0, 1024, &J, &err); break;
        case 'h': usage(stdout); return 0;
        default: return tm_cli_usage_error("bench engine", "unknown option");
        }
        (void)v;
        if (st) return tm_cli_usage_error("bench engine", "%s", err.msg);
    }
    if (!model_dir) return tm_cli_usage_error("bench engine", "--model DIR is required");
    const tm_backend_ops *ops;
    tm_status st = tm_backend_select(device, &ops, &err);
    if (st) return tm_cli_fail("bench engine", st, &err);
    tm_model *m = NULL;
    if ((st = tm_model_load(model_dir, &m, &err))) return tm_cli_fail("bench engine", st, &err);
    const tm_model_config *mc = tm_model_config_of(m);
    if (I + O + 1 > mc->max_position_embeddings) {
        tm_model_destroy(m);
        return tm_cli_usage_error("bench engine", "input + output length exceeds the model's context (%d)",
                                  mc->max_position_embeddings);
    }
    int32_t *prompts = malloc((size_t)(R * I) * sizeof *prompts);
    if (!prompts) { tm_model_destroy(m); return tm_cli_fail("bench engine", TM_ERR_NOMEM, NULL); }
    uint64_t x = 12345;
    for (long long k = 0; k < R * I; k++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        prompts[k] = (int32_t)((x >> 33) % (uint64_t)mc->vocab_size);
    }
    bench_result batched = {0}, alone = {0};
    st = run_batch(ops, m, prompts, (int)R, (int)I, (int)O, (int)S, (int)T, (int)J, &batched, &err);
    for (long long r = 0; r < R && !st; r++)
        st = run_batch(ops, m, prompts + r * I, 1, (int)I, (int)O, 1, (int)T, (int)J, &alone, &err);
    free(prompts);
    tm_model_destroy(m);
    if (st) return tm_cli_fail("bench engine", st, &err);
    printf("tokenmill bench engine --model %s --requests %lld --input-len %lld --output-len %lld "
           "--max-seqs %lld --max-batch-tokens %lld --threads %lld --device %s\n",
           model_dir, R, I, O, S, T, J, ops->name);
    printf("%-22s %10s %12s %14s %14s %8s\n", "mode", "seconds", "requests/s", "input tok/s", "output tok/s", "steps");
    const bench_result *b[2] = {&batched, &alone};
    const char *names[2] = {"batched (engine)", "one at a time"};
    for (int i = 0; i < 2; i++)
        printf("%-22s %10.3f %12.2f %14.0f %14.0f %8lld\n", names[i], b[i]->seconds, (double)R / b[i]->seconds,
               (double)b[i]->prompt_tokens / b[i]->seconds, (double)b[i]->output_tokens / b[i]->seconds,
               (long long)b[i]->steps);
    printf("speed-up of batching: %.2fx (requests/s, same requests, same run)\n", alone.seconds / batched.seconds);
    return 0;
}
