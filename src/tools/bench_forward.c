/* bench_forward.c — `tokenmill bench forward`: forward-pass throughput of a backend.
 *
 * Measures, on synthetic token ids (deterministic), with the backend driven
 * directly (no scheduler): prefill tokens/s (one sequence of --tokens in one
 * forward), decode tokens/s of one sequence (--steps single-token forwards
 * after that prompt), and decode tokens/s of --batch sequences stepping
 * together (each with a --tokens prompt). Each phase runs --reps times after
 * one warm-up; the best and the mean are printed, with the exact command.
 * --quant quantizes the weights at load, --kv-dtype picks the KV cache type.
 * On the CPU backend it then measures the machine's peak (cpu_peak.h) and
 * prints achieved GFLOP/s (prefill, batched decode) and GB/s (1-seq decode)
 * against it. "By CPU time" rates divide by the process's CPU seconds over
 * the thread count: on a machine shared with other work they show what the
 * code does while it holds the cores (they read high when threads idle).
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_peak.h"
#include "backend/cpu/gemm.h"
#include "tools/bench.h"
#include "cli/cli.h"
#include "cli/engine_opts.h"
#include "model/model.h"
#include "quant/quant.h"
#include "util/timeutil.h"

#define BF_BS 16

static void usage(FILE *f, const tm_engine_opts *eo)
{
    fprintf(f,
            "usage: tokenmill bench forward --model DIR [--tokens N] [--batch B] [--steps S] [--reps R]\n"
            "                               [--threads T] [--device D] [--blas] [--quant Q] [--kv-dtype D]\n"
            "                               [--cuda-fast]\n"
            "\n"
            "  --tokens N   prompt length for prefill and the decode context (default 512)\n"
            "  --batch B    sequences decoding together in the batched phase (default 8)\n"
            "  --steps S    decode steps per measurement (default 32)\n"
            "  --reps R     measured repetitions after one warm-up (default 3)\n"
            "  --blas       project with cblas_sgemm (faster prefill, not batch invariant)\n");
    tm_engine_opts_usage(f, TM_ENGINE_OPTS_MODEL, eo);
}

typedef struct bench {
    const tm_backend_ops *ops;
    tm_backend *be;
    int32_t V, n_tokens, batch, steps, max_blocks;
    int32_t *tables, *ids, *pos, *seq_start, *seq_len, *rows;
    float *logits;
} bench;

/* Prefill sequence s with the full synthetic prompt (one forward). */
static tm_status prefill(bench *b, int32_t s, int with_logits, tm_err *err)
{
    for (int32_t i = 0; i < b->n_tokens; i++) {
        b->ids[i] = (int32_t)((1103515245u * (uint32_t)(i + 7 * s) + 12345u) % (uint32_t)b->V);
        b->pos[i] = i;
    }
    int32_t ss[2] = {0, b->n_tokens}, len = b->n_tokens, row = b->n_tokens - 1;
    tm_batch bt = {.n_tokens = b->n_tokens, .token_ids = b->ids, .positions = b->pos, .n_seqs = 1,
                   .seq_start = ss, .seq_len = &len, .block_tables = b->tables + (size_t)s * b->max_blocks,
                   .max_blocks = b->max_blocks, .n_logits = with_logits, .logit_rows = &row, .logits = b->logits};
    return b->ops->forward(b->be, &bt, err);
}

/* steps decode forwards of sequences 0..n_seqs-1 together (after their prompts). */
static tm_status decode(bench *b, int32_t n_seqs, tm_err *err)
{
    for (int32_t st = 0; st < b->steps; st++) {
        for (int32_t s = 0; s < n_seqs; s++) {
            b->ids[s] = (int32_t)((s * 31 + st * 17 + 3) % b->V);
            b->pos[s] = b->n_tokens + st;
            b->seq_start[s] = s;
            b->seq_len[s] = b->n_tokens + st + 1;
            b->rows[s] = s;
        }
        b->seq_start[n_seqs] = n_seqs;
        tm_batch bt = {.n_tokens = n_seqs, .token_ids = b->ids, .positions = b->pos, .n_seqs = n_seqs,
                       .seq_start = b->seq_start, .seq_len = b->seq_len, .block_tables = b->tables,
                       .max_blocks = b->max_blocks, .n_logits = n_seqs, .logit_rows = b->rows, .logits = b->logits};
        tm_status s = b->ops->forward(b->be, &bt, err);
        if (s) return s;
    }
    return TM_OK;
}

/* Process CPU seconds (all threads). */
static double process_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Prefill of one sequence, decode of one, decode of the batch: reps
 * measured runs after a warm-up; best and mean tokens/s printed, and the
 * best by CPU time (tokens / (process CPU s / nthr)). best/cbest: per phase. */
static tm_status measure(bench *b, long long reps, int nthr, double best[3], double cbest[3], tm_err *err)
{
    tm_status s;
    const char *names[3] = {"prefill (1 seq)", "decode (1 seq)", "decode (batch)"};
    double sum[3] = {0, 0, 0};
    double per[3] = {(double)b->n_tokens, (double)b->steps, (double)b->steps * b->batch};
    for (int ph = 0; ph < 3; ph++) best[ph] = cbest[ph] = 0;
    for (long long r = 0; r <= reps; r++) {
        for (int ph = 0; ph < 3; ph++) {
            if (ph == 2)
                for (int32_t sq = 0; sq < b->batch; sq++)
                    if ((s = prefill(b, sq, 0, err))) return s;
            if (ph == 1 && (s = prefill(b, 0, 0, err))) return s;
            uint64_t a = tm_now_mono_ns();
            double ca = process_cpu_s();
            if (ph == 0) s = prefill(b, 0, 1, err);
            else s = decode(b, ph == 1 ? 1 : b->batch, err);
            if (s) return s;
            double sec = (double)(tm_now_mono_ns() - a) / 1e9, csec = (process_cpu_s() - ca) / nthr;
            double tps = per[ph] / (sec > 0 ? sec : 1e-9), ctps = per[ph] / (csec > 0 ? csec : 1e-9);
            if (r == 0) continue; /* warm-up */
            sum[ph] += tps;
            if (tps > best[ph]) best[ph] = tps;
            if (ctps > cbest[ph]) cbest[ph] = ctps;
        }
    }
    for (int ph = 0; ph < 3; ph++) {
        char what[64];
        if (ph == 0) snprintf(what, sizeof what, "%d-token prompt", b->n_tokens);
        else snprintf(what, sizeof what, "%d seq x %d steps at context %d", ph == 1 ? 1 : b->batch, b->steps,
                      b->n_tokens);
        printf("%-16s %-36s best %10.1f tok/s   mean %10.1f tok/s   by CPU time %10.1f tok/s\n", names[ph], what,
               best[ph], sum[ph] / (double)reps, cbest[ph]);
    }
    return TM_OK;
}

static void print_rates(const char *what, double wall, double cpu, double pk_wall, double pk_cpu, const char *unit)
{
    printf("%-16s %8.1f %s = %5.1f%% of peak (wall); %8.1f %s = %5.1f%% of peak (by CPU time)\n", what, wall, unit,
           100 * wall / pk_wall, cpu, unit, 100 * cpu / pk_cpu);
}

/* best[ph]: wall tok/s; cbest[ph]: tok/s by CPU time (tokens / process CPU s x threads). */
static void print_cpu_efficiency(const tm_model *m, long long threads, int fp32_weights, int n_tokens,
                                 const double best[3], const double cbest[3])
{
    const tm_model_config *c = tm_model_config_of(m);
    double H = c->hidden_size, I = c->intermediate_size, V = c->vocab_size;
    double Q = (double)c->n_heads * c->head_dim, KV = (double)c->n_kv_heads * c->head_dim;
    double proj = c->n_layers * (2 * H * Q + 2 * H * KV + 3 * H * I), head = V * H;
    double es = !fp32_weights && tm_model_embed(m)->dtype == TM_DTYPE_BF16 ? 2 : 4;
    tm_cpu_pool *p = NULL;
    tm_cpu_peak pk;
    tm_err err = {{0}};
    if (tm_cpu_pool_create((int)threads, &p, &err) || tm_cpu_peak_measure(p, 256, &pk, &err)) {
        fprintf(stderr, "tokenmill bench forward: peak calibration: %s\n", err.msg);
        tm_cpu_pool_destroy(p);
        return;
    }
    int nt = tm_cpu_pool_threads(p);
    tm_cpu_pool_destroy(p);
    double fl_pre = (2 * proj + 2 * head / n_tokens) * 1e-9, by_dec = (proj + head) * es * 1e-9;
    double fl_bat = 2 * (proj + head) * 1e-9;
    printf("machine peak (measured, %d threads; wall / by CPU time): %.1f / %.1f GFLOP/s fp32 FMA (%s), "
           "%.1f / %.1f GB/s read; gemm kernels: %s\n", nt, pk.gflops_wall, pk.gflops, pk.isa, pk.gbps_wall, pk.gbps,
           tm_gemm_isa_name(tm_gemm_isa_best()));
    print_rates("prefill", best[0] * fl_pre, cbest[0] * fl_pre, pk.gflops_wall, pk.gflops, "GFLOP/s");
    print_rates("decode (1 seq)", best[1] * by_dec, cbest[1] * by_dec, pk.gbps_wall, pk.gbps, "GB/s");
    printf("                 (%.0f MB of weights per decode token)\n", by_dec * 1e3);
    print_rates("decode (batch)", best[2] * fl_bat, cbest[2] * fl_bat, pk.gflops_wall, pk.gflops, "GFLOP/s");
}

typedef struct bf_args {
    tm_engine_opts eo;
    long long n_tokens, batch, steps, reps;
    int blas;
} bf_args;

/* The command line into a; returns an exit code, *done after --help. */
static int parse_args(int argc, char **argv, bf_args *a, int *done)
{
    enum { O_TOKENS = 256, O_BATCH, O_STEPS, O_REPS, O_BLAS };
    static const struct option opts[] = {
        TM_ENGINE_LONGOPTS_MODEL,
        {"tokens", required_argument, NULL, O_TOKENS},
        {"batch", required_argument, NULL, O_BATCH}, {"steps", required_argument, NULL, O_STEPS},
        {"reps", required_argument, NULL, O_REPS}, {"blas", no_argument, NULL, O_BLAS},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    tm_engine_opts_default(&a->eo, 1, 1);
    a->n_tokens = 512, a->batch = 8, a->steps = 32, a->reps = 3, a->blas = 0;
    long long v;
    tm_err err = {{0}};
    tm_cli_getopt_reset();
    int ch;
    while ((ch = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        tm_status s = TM_OK;
        if (tm_engine_opts_parse(&a->eo, ch == 'm' ? TM_EO_MODEL : ch, optarg, &s, &err)) {
            if (s) return tm_cli_usage_error("bench forward", "%s", err.msg);
            continue;
        }
        switch (ch) {
        case O_TOKENS: if (!(s = tm_cli_parse_long("--tokens", optarg, 1, 65536, &v, &err))) a->n_tokens = v; break;
        case O_BATCH: if (!(s = tm_cli_parse_long("--batch", optarg, 1, 1024, &v, &err))) a->batch = v; break;
        case O_STEPS: if (!(s = tm_cli_parse_long("--steps", optarg, 1, 65536, &v, &err))) a->steps = v; break;
        case O_REPS: if (!(s = tm_cli_parse_long("--reps", optarg, 1, 1000, &v, &err))) a->reps = v; break;
        case O_BLAS: a->blas = 1; break;
        case 'h': usage(stdout, &a->eo); *done = 1; return 0;
        default: return tm_cli_usage_error("bench forward", "bad option");
        }
        if (s) return tm_cli_usage_error("bench forward", "%s", err.msg);
    }
    if (optind < argc) return tm_cli_usage_error("bench forward", "unexpected argument '%s'", argv[optind]);
    if (!a->eo.model_dir) return tm_cli_usage_error("bench forward", "--model DIR is required");
    return 0;
}

/* b's batch arrays for b->n_tokens, b->batch and b->steps: block tables
 * (*n_blocks entries, identity), ids, positions, bounds and logits. */
static tm_status alloc_batch(bench *b, int32_t *n_blocks, int32_t *max_tok, tm_err *err)
{
    b->max_blocks = (int32_t)(((int64_t)b->n_tokens + b->steps + BF_BS - 1) / BF_BS);
    *n_blocks = b->max_blocks * b->batch;
    *max_tok = b->n_tokens > b->batch ? b->n_tokens : b->batch;
    b->tables = malloc(sizeof(int32_t) * (size_t)*n_blocks);
    b->ids = malloc(sizeof(int32_t) * (size_t)*max_tok);
    b->pos = malloc(sizeof(int32_t) * (size_t)*max_tok);
    b->seq_start = malloc(sizeof(int32_t) * ((size_t)b->batch + 1));
    b->seq_len = malloc(sizeof(int32_t) * (size_t)b->batch);
    b->rows = malloc(sizeof(int32_t) * (size_t)b->batch);
    b->logits = malloc(sizeof(float) * (size_t)b->V * (size_t)b->batch);
    if (!b->tables || !b->ids || !b->pos || !b->seq_start || !b->seq_len || !b->rows || !b->logits)
        return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < *n_blocks; i++) b->tables[i] = i;
    return TM_OK;
}

int tm_bench_forward(int argc, char **argv)
{
    bf_args fa;
    int done = 0, rc = parse_args(argc, argv, &fa, &done);
    if (rc || done) return rc;
    tm_engine_opts eo = fa.eo;
    long long n_tokens = fa.n_tokens, batch = fa.batch, steps = fa.steps, reps = fa.reps;
    int blas = fa.blas;
    tm_err err = {{0}};
    const char *model = eo.model_dir, *quant = tm_quant_scheme_name(eo.quant);
    tm_kv_dtype kv_dtype = eo.kv_dtype;
    long long threads = eo.n_threads;

    tm_status s;
    bench b;
    memset(&b, 0, sizeof b);
    tm_model *m = NULL;
    if ((s = tm_backend_select(eo.device, &b.ops, &err))) return tm_cli_fail("bench forward", s, &err);
    if ((s = tm_model_load(model, &m, &err))) return tm_cli_fail("bench forward", s, &err);
    if (eo.quant != TM_QS_NONE && (s = tm_model_quantize(m, eo.quant, &err))) {
        tm_model_destroy(m);
        return tm_cli_fail("bench forward", s, &err);
    }
    const tm_model_config *cfg = tm_model_config_of(m);
    b.V = cfg->vocab_size;
    b.n_tokens = (int32_t)n_tokens;
    b.batch = (int32_t)batch;
    b.steps = (int32_t)steps;
    int32_t n_blocks, max_tok;
    if ((s = alloc_batch(&b, &n_blocks, &max_tok, &err))) goto fail;
    tm_backend_opts bo = {.n_blocks = n_blocks, .block_size = BF_BS, .max_batch_tokens = max_tok,
                          .max_seqs = b.batch, .n_threads = (int)threads, .flags = eo.backend_flags | (blas ? TM_BACKEND_BLAS_GEMM : 0),
                          .kv_dtype = kv_dtype};
    uint64_t t0 = tm_now_mono_ns();
    if ((s = b.ops->create(m, &bo, &b.be, &err))) goto fail;
    double create_s = (double)(tm_now_mono_ns() - t0) / 1e9;

    long ncores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("model %s (%s, hidden %d, layers %d, heads %d/%d, vocab %d), backend %s%s, --threads %lld (%ld cores online)\n",
           model, cfg->model_type, cfg->hidden_size, cfg->n_layers, cfg->n_heads, cfg->n_kv_heads, cfg->vocab_size,
           b.ops->name, blas ? " (cblas_sgemm GEMMs)" : "", threads, ncores);
    char qd[128];
    tm_quant_config_describe(&cfg->quant, qd, sizeof qd);
    printf("weights: %s, projections %.4g MB; KV cache: %s\n", qd, (double)tm_model_projection_bytes(m) * 1e-6,
           tm_kv_dtype_name(kv_dtype));
    printf("create (weights packed, KV pool %d blocks): %.3f s\n", n_blocks, create_s);

    double best[3], cbest[3];
    int nthr = threads > 0 ? (int)threads : (int)(ncores > 0 ? ncores : 1);
    if ((s = measure(&b, reps, nthr, best, cbest, &err))) goto fail;
    if (!strcmp(b.ops->name, "cpu"))
        print_cpu_efficiency(m, threads, blas || eo.quant != TM_QS_NONE, b.n_tokens, best, cbest);
    printf("command: tokenmill bench forward --model %s --tokens %d --batch %d --steps %d --reps %lld --threads %lld%s"
           " --quant %s --kv-dtype %s\n",
           model, b.n_tokens, b.batch, b.steps, reps, threads, blas ? " --blas" : "", quant, tm_kv_dtype_name(kv_dtype));
    goto done;
fail:
    rc = tm_cli_fail("bench forward", s, &err);
done:
    if (b.be) b.ops->destroy(b.be);
    free(b.tables);
    free(b.ids);
    free(b.pos);
    free(b.seq_start);
    free(b.seq_len);
    free(b.rows);
    free(b.logits);
    tm_model_destroy(m);
    return rc;
}
