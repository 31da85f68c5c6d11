/* bench_engine.c — `tokenmill bench engine`: the batching engine's requests/s
 * and tokens/s (and, unless --only-batched, the same requests one at a time,
 * side by side in one run on the same model and backend).
 *
 * Requests are random token-id prompts (seeded) of --input-len tokens that
 * generate exactly --output-len tokens each (ignore_eos), greedy. The model is
 * a checkpoint (--model DIR) or a full-size synthetic one (--synthetic NAME,
 * CUDA only: weights filled on the device). Steps are split into those with
 * prefill tokens and pure decodes (wall time = forward + host sampling), and
 * the run is compared with its roofline (bench.h) at the device's HBM
 * bandwidth and bf16 peak. --quant quantizes the weights at load (synthetic
 * models too) and --kv-dtype picks the KV cache type; the roofline then
 * counts the quantized projection bytes, fp8 K/V (+ one float scale per head
 * and token) and, for fp8 weights, the dense fp8 peak.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "tools/bench.h"
#include "cli/cli.h"
#include "cli/engine_opts.h"
#include "engine/engine.h"
#include "model/model.h"
#include "quant/quant.h"
#include "util/timeutil.h"
#ifdef TOKENMILL_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

#define BENCH_BLOCK 16 /* tokens per KV block */
#define BENCH_PEAK_BF16 989e12 /* H100/H200 SXM dense bf16 flop/s */
#define BENCH_PEAK_FP8 1979e12 /* H100/H200 SXM dense fp8 flop/s */

double tm_bench_roofline(const tm_bench_roofline_model *rm, const tm_bench_roofline_step *steps, size_t n,
                         tm_bench_roofline_sum *sum)
{
    double t = 0;
    for (size_t i = 0; i < n; i++) {
        const tm_bench_roofline_step *s = &steps[i];
        double bytes = rm->weight_bytes + rm->kv_bytes_per_token * (double)(s->ctx_seq_sum + s->n_tokens);
        double flops = 2.0 * rm->layer_params * (double)s->n_tokens + 2.0 * rm->lm_head_params * (double)s->n_logits +
                       rm->attn_flops_per_ctx * (double)s->ctx_tok_sum;
        double tb = rm->bandwidth > 0 ? bytes / rm->bandwidth : 0, tf = rm->peak_flops > 0 ? flops / rm->peak_flops : 0;
        double f = tb > tf ? tb : tf;
        t += f;
        if (sum) {
            sum->floor_s += f;
            sum->bytes += bytes;
            sum->flops += flops;
        }
    }
    return t;
}

/* The roofline constants of a model (bandwidth / peak filled by the caller):
 * bf16 matrices unless the projections are quantized (then their canonical
 * bytes, quant.h), bf16 K/V or fp8 K/V with a float scale per head. */
static void roofline_model_of(const tm_model *m, tm_kv_dtype kvd, tm_bench_roofline_model *rm)
{
    const tm_model_config *c = tm_model_config_of(m);
    double H = c->hidden_size, I = c->intermediate_size, V = c->vocab_size, L = c->n_layers;
    double Q = (double)c->n_heads * c->head_dim, KV = (double)c->n_kv_heads * c->head_dim;
    double vec = L * (2 * H + (c->attention_bias ? Q + 2 * KV : 0) + (c->qk_norm ? 2.0 * c->head_dim : 0)) + H;
    memset(rm, 0, sizeof *rm);
    rm->layer_params = L * (H * (Q + 2 * KV) + Q * H + 3 * H * I);
    rm->lm_head_params = V * H;
    double proj = tm_model_is_quantized(m) ? (double)tm_model_projection_bytes(m) : 2 * rm->layer_params;
    rm->weight_bytes = proj + 2 * rm->lm_head_params + 4 * vec; /* bf16 or quantized matrices, fp32 vectors */
    rm->kv_bytes_per_token = kvd == TM_KV_FP8 ? 2.0 * L * (KV + 4.0 * c->n_kv_heads) /* K and V, fp8 + scales */
                                              : 2.0 * L * KV * 2;                    /* K and V, bf16 */
    rm->attn_flops_per_ctx = 4.0 * L * (double)c->n_heads * c->head_dim;
}

typedef struct step_class {
    int64_t n;
    double wall_s, fwd_s, bytes;
} step_class;

typedef struct bench_result {
    double seconds;
    int64_t prompt_tokens, output_tokens, steps, preempted, aborted;
    int64_t distinct;  /* different token ids generated (a degenerate model repeats one) */
    uint64_t checksum; /* order-independent hash of (request, index, token): same run, same value */
    step_class prefill, decode;
    tm_bench_roofline_sum roof;
} bench_result;

typedef struct bench_run {
    const tm_backend_ops *ops;
    const tm_model *m;
    int I, O, max_seqs, max_batch_tokens, threads;
    tm_kv_dtype kv_dtype;
    unsigned backend_flags;
    int32_t n_blocks;
    const tm_bench_roofline_model *rm; /* NULL: no roofline */
} bench_run;

/* The step's prefill tokens, assuming prompts are prefilled in request order
 * (FCFS, as the scheduler admits them): global prefill token g is position
 * g % I of request g / I. Adds their attended positions and the cached length
 * of each touched sequence. *P advances. Exact without preemption. */
static void prefill_ctx(int64_t *P, int64_t n, int I, tm_bench_roofline_step *rs)
{
    int64_t g = *P, end = *P + n;
    while (g < end) {
        int64_t a = g % I, e = a + (end - g < I - a ? end - g : I - a); /* positions [a, e) of one prompt */
        rs->ctx_tok_sum += (e * (e + 1) - a * (a + 1)) / 2;
        rs->ctx_seq_sum += e;
        g += e - a;
    }
    *P = end;
}

/* One step's events into res: distinct tokens, the checksum, output tokens,
 * and the decode contexts into rs; finished sequences are released. */
static void count_events(tm_engine *e, const tm_engine_step_out *so, int R, int32_t vocab, int32_t *gen,
                         uint8_t *seen, bench_result *res, tm_bench_roofline_step *rs)
{
    for (int32_t i = 0; i < so->n_events; i++) {
        const tm_engine_event *ev = &so->events[i];
        int64_t id = ev->request_id;
        int id_ok = id >= 0 && id < R;
        if (ev->aborted) res->aborted++;
        if (ev->token >= 0 && ev->token < vocab) {
            res->distinct += !seen[ev->token];
            seen[ev->token] = 1;
            uint64_t h = ((uint64_t)id << 40) ^ ((uint64_t)(id_ok ? gen[id] : 0) << 20) ^ (uint64_t)ev->token;
            h = (h ^ (h >> 31)) * 0x7fb5d329728ea185ull;
            res->checksum += h ^ (h >> 27);
        }
        if (!ev->aborted && id_ok) {
            int32_t n_total = 0;
            tm_engine_seq_tokens(ev->seq, NULL, &n_total);
            if (gen[id]++ > 0) { /* a decode: attends to its n_total - 1 cached tokens */
                rs->ctx_tok_sum += n_total - 1;
                rs->ctx_seq_sum += n_total - 1;
            }
        }
        res->output_tokens++;
        if (ev->finished) tm_engine_release(e, ev->seq);
    }
}

/* One step's times (and its roofline, with a model) into its class of res. */
static void count_step(const bench_run *br, const tm_engine_step_out *so, const tm_bench_roofline_step *rs,
                       double wall, bench_result *res)
{
    step_class *sc = so->n_prefill_tokens > 0 ? &res->prefill : &res->decode;
    sc->n++;
    sc->wall_s += wall;
    sc->fwd_s += (double)so->forward_ns * 1e-9;
    if (br->rm) {
        tm_bench_roofline_sum one = {0};
        tm_bench_roofline(br->rm, rs, 1, &one);
        sc->bytes += one.bytes;
        res->roof.floor_s += one.floor_s;
        res->roof.bytes += one.bytes;
        res->roof.flops += one.flops;
    }
}

static tm_status run_batch(const bench_run *br, const int32_t *prompts, int R, bench_result *res, tm_err *err)
{
    tm_engine_config cfg = {.block_size = BENCH_BLOCK, .n_blocks = br->n_blocks,
                            .max_batch_tokens = br->max_batch_tokens, .max_seqs = br->max_seqs,
                            .max_requests = R + 1, .max_context = br->I + br->O + 1, .n_threads = br->threads,
                            .kv_dtype = br->kv_dtype, .backend_flags = br->backend_flags};
    int32_t *gen = calloc((size_t)R, sizeof *gen); /* tokens generated per request (decode vs first token) */
    int32_t vocab = tm_model_config_of(br->m)->vocab_size;
    uint8_t *seen = calloc((size_t)vocab, 1);
    if (!gen || !seen) {
        free(gen);
        free(seen);
        return tm_errf(err, TM_ERR_NOMEM, "bench engine: out of memory");
    }
    tm_engine *e = NULL;
    tm_status st = tm_engine_create(br->ops, br->m, &cfg, &e, err);
    if (st) {
        free(gen);
        free(seen);
        return st;
    }
    int64_t P = 0;
    uint64_t t0 = tm_now_mono_ns();
    for (int r = 0; r < R && !st; r++) {
        tm_engine_request er = {.id = r, .prompt = prompts + (size_t)r * (size_t)br->I, .n_prompt = br->I, .n = 1};
        tm_sampling_params_default(&er.params);
        er.params.temperature = 0;
        er.params.max_tokens = br->O;
        er.params.ignore_eos = 1;
        st = tm_engine_add(e, &er, err);
    }
    while (!st && tm_engine_has_work(e)) {
        tm_engine_step_out so;
        uint64_t s0 = tm_now_mono_ns();
        if ((st = tm_engine_step(e, &so, err))) break;
        double wall = (double)(tm_now_mono_ns() - s0) * 1e-9;
        res->steps++;
        res->prompt_tokens += so.n_prefill_tokens;
        res->preempted += so.n_preempted;
        tm_bench_roofline_step rs = {.n_tokens = so.n_tokens, .n_logits = so.n_events};
        prefill_ctx(&P, so.n_prefill_tokens, br->I, &rs);
        count_events(e, &so, R, vocab, gen, seen, res, &rs);
        count_step(br, &so, &rs, wall, res);
    }
    res->seconds += (double)(tm_now_mono_ns() - t0) * 1e-9;
    tm_engine_destroy(e);
    free(gen);
    free(seen);
    return st;
}

static void usage(FILE *f, const tm_engine_opts *eo)
{
    fprintf(f,
            "usage: tokenmill bench engine (--model DIR | --synthetic NAME) [--requests R] [--input-len I]\n"
            "                              [--output-len O] [--max-seqs N] [--max-batch-tokens T] [--threads N]\n"
            "                              [--device D] [--only-batched] [--gpu-memory-utilization F]\n"
            "                              [--kv-memory SIZE] [--hbm-bandwidth B/s] [--peak-flops F/s]\n"
            "                              [--quant Q] [--kv-dtype D] [--cuda-fast]\n\n"
            "Runs R random-prompt requests (I prompt tokens, O generated, greedy, ignore_eos) through the\n"
            "batching engine, then (unless --only-batched) the same requests one at a time, and prints both,\n"
            "the step times (prefill-containing vs pure decode) and the roofline of the run.\n\n"
            "  --synthetic NAME   full-size model with device-generated weights (CUDA only): %s;\n"
            "                     add --only-batched (one request at a time at 8B takes very long)\n"
            "  --requests R, --input-len I, --output-len O   (default 32, 64, 32)\n"
            "  --only-batched     skip the one-at-a-time pass\n"
            "  --gpu-memory-utilization F  CUDA: share of device memory for weights + KV + scratch (0.90)\n"
            "  --hbm-bandwidth    bytes/s for the roofline (default by device name: H200 4.8e12, H100 3.35e12)\n"
            "  --peak-flops       flop/s for the roofline (default 989e12 dense bf16; 1979e12 dense fp8 with --quant fp8)\n",
            tm_model_synthetic_names());
    tm_engine_opts_usage(f, TM_ENGINE_OPTS_MODEL | TM_ENGINE_OPTS_BATCH, eo);
    fprintf(f, "                          (automatic here: CUDA by --gpu-memory-utilization, CPU max-seqs + 1 requests)\n");
}

static tm_status parse_double(const char *opt, const char *v, double lo, double hi, double *out, tm_err *err)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi))
        return tm_errf(err, TM_ERR_USAGE, "%s: '%s' is not a number in [%g, %g]", opt, v, lo, hi);
    *out = x;
    return TM_OK;
}

typedef struct bench_args {
    tm_engine_opts eo;
    const char *synth;
    long long R, I, O;
    double util, bw, peak;
    int only_batched;
} bench_args;

/* 0 to run, else the exit code (help: 0 with *done). */
static int parse_args(int argc, char **argv, bench_args *a, int *done)
{
    static const struct option opts[] = {
        TM_ENGINE_LONGOPTS_MODEL, TM_ENGINE_LONGOPTS_BATCH,
        {"synthetic", required_argument, 0, 'y'},
        {"requests", required_argument, 0, 'r'},   {"input-len", required_argument, 0, 'i'},
        {"output-len", required_argument, 0, 'o'}, {"only-batched", no_argument, 0, 'B'},
        {"gpu-memory-utilization", required_argument, 0, 'u'},
        {"hbm-bandwidth", required_argument, 0, 'W'}, {"peak-flops", required_argument, 0, 'F'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    *a = (bench_args){.R = 32, .I = 64, .O = 32, .util = 0.90};
    tm_engine_opts_default(&a->eo, 32, 2048);
    *done = 0;
    tm_err err;
    tm_cli_getopt_reset();
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        tm_status st = TM_OK;
        if (tm_engine_opts_parse(&a->eo, c, optarg, &st, &err)) {
            if (st) return tm_cli_usage_error("bench engine", "%s", err.msg);
            continue;
        }
        switch (c) {
        case 'y': a->synth = optarg; break;
        case 'B': a->only_batched = 1; break;
        case 'r': st = tm_cli_parse_long("--requests", optarg, 1, 100000, &a->R, &err); break;
        case 'i': st = tm_cli_parse_long("--input-len", optarg, 1, 1 << 20, &a->I, &err); break;
        case 'o': st = tm_cli_parse_long("--output-len", optarg, 1, 1 << 20, &a->O, &err); break;
        case 'u': st = parse_double("--gpu-memory-utilization", optarg, 0.01, 1.0, &a->util, &err); break;
        case 'W': st = parse_double("--hbm-bandwidth", optarg, 1e6, 1e16, &a->bw, &err); break;
        case 'F': st = parse_double("--peak-flops", optarg, 1e6, 1e18, &a->peak, &err); break;
        case 'h': usage(stdout, &a->eo); *done = 1; return 0;
        default: return tm_cli_usage_error("bench engine", "unknown option");
        }
        if (st) return tm_cli_usage_error("bench engine", "%s", err.msg);
    }
    if (optind < argc) return tm_cli_usage_error("bench engine", "unexpected argument '%s'", argv[optind]);
    if (!a->eo.model_dir == !a->synth)
        return tm_cli_usage_error("bench engine", "give one of --model DIR or --synthetic NAME");
    return 0;
}

/* KV pool blocks: --kv-memory; on CUDA what --gpu-memory-utilization leaves
 * after weights and scratch; on the CPU max-seqs + 1 requests; never more
 * than the requests need. Where the number came from goes to src. */
static int64_t kv_pool_blocks(const bench_args *a, const tm_backend_mem *mp, int cuda_mem, size_t dev_free,
                              size_t dev_total, char *src, size_t srcsz)
{
    int64_t per_req = (a->I + a->O + BENCH_BLOCK - 1) / BENCH_BLOCK, n_blocks;
    if (a->eo.kv_memory > 0) {
        n_blocks = a->eo.kv_memory / mp->kv_block;
        snprintf(src, srcsz, "--kv-memory");
    } else if (cuda_mem) {
        /* what the backend says it allocates besides the pool (mem_plan) */
        double budget = a->util * (double)dev_total - (double)(dev_total - dev_free);
        n_blocks = tm_backend_mem_kv_blocks(mp, budget > 0 ? (int64_t)budget : 0);
        snprintf(src, srcsz, "--gpu-memory-utilization %.2f of %.1f GiB, %.1f GiB free", a->util,
                 (double)dev_total / 1073741824.0, (double)dev_free / 1073741824.0);
    } else {
        n_blocks = per_req * (a->eo.max_seqs + 1); /* CPU: one more sequence than the batch holds */
        snprintf(src, srcsz, "max-seqs + 1 requests");
    }
    if (n_blocks > per_req * a->R) {
        n_blocks = per_req * a->R;
        snprintf(src + strlen(src), srcsz - strlen(src), ", capped at what %lld requests need", a->R);
    }
    return n_blocks > INT32_MAX ? INT32_MAX : n_blocks;
}

/* The tables: both modes, the batched run's step classes, its output
 * summary and its roofline (when the bandwidth is known). */
static void print_results(const bench_args *a, const bench_result *batched, const bench_result *alone,
                          const tm_bench_roofline_model *rm, const char *bw_src, const char *dev_kind,
                          const char *devname)
{
    printf("%-22s %10s %12s %14s %14s %8s %14s\n", "mode", "seconds", "requests/s", "input tok/s", "output tok/s",
           "steps", "total tok/s");
    const bench_result *b[2] = {batched, alone};
    const char *names[2] = {"batched (engine)", "one at a time"};
    for (int i = 0; i < (a->only_batched ? 1 : 2); i++)
        printf("%-22s %10.4f %12.2f %14.0f %14.0f %8lld %14.0f\n", names[i], b[i]->seconds,
               (double)a->R / b[i]->seconds, (double)b[i]->prompt_tokens / b[i]->seconds,
               (double)b[i]->output_tokens / b[i]->seconds, (long long)b[i]->steps,
               (double)(b[i]->prompt_tokens + b[i]->output_tokens) / b[i]->seconds);
    if (!a->only_batched)
        printf("speed-up of batching: %.2fx (requests/s, same requests, same run)\n", alone->seconds / batched->seconds);

    printf("%-22s %8s %12s %12s %12s\n", "batched steps", "count", "mean ms", "forward ms", "host ms");
    const step_class *sc[2] = {&batched->prefill, &batched->decode};
    const char *sn[2] = {"with prefill", "pure decode"};
    for (int i = 0; i < 2; i++) {
        double n = sc[i]->n ? (double)sc[i]->n : 1;
        printf("%-22s %8lld %12.3f %12.3f %12.3f\n", sn[i], (long long)sc[i]->n, sc[i]->wall_s * 1e3 / n,
               sc[i]->fwd_s * 1e3 / n, (sc[i]->wall_s - sc[i]->fwd_s) * 1e3 / n);
    }
    printf("generated: %lld distinct token ids in %lld tokens, checksum %016llx%s\n", (long long)batched->distinct,
           (long long)batched->output_tokens, (unsigned long long)batched->checksum,
           batched->aborted ? " (some sequences aborted by the sampler!)" : "");
    if (rm->bandwidth > 0) {
        const step_class *d = &batched->decode;
        double ach = d->fwd_s > 0 ? d->bytes / d->fwd_s : 0;
        printf("decode steps: weights+KV %.3g B/s achieved (bytes / forward time) = %.1f%% of %.3g B/s (%s)\n", ach,
               100.0 * ach / rm->bandwidth, rm->bandwidth, bw_src);
        printf("roofline: floor %.4g s = sum over %lld steps of max(bytes / %.3g B/s, flops / %.3g flop/s); "
               "actual %.4g s; floor/actual %.4g\n",
               batched->roof.floor_s, (long long)batched->steps, rm->bandwidth, rm->peak_flops, batched->seconds,
               batched->roof.floor_s / batched->seconds);
        printf("roofline totals: %.10g bytes, %.10g flops (weights %.10g B per step, KV %.10g B per token)\n",
               batched->roof.bytes, batched->roof.flops, rm->weight_bytes, rm->kv_bytes_per_token);
        if (batched->preempted)
            printf("note: %lld preemptions (recompute): the prefill context in the roofline is approximate\n",
                   (long long)batched->preempted);
    } else {
        printf("roofline: n/a (no HBM bandwidth known for device %s%s%s%s; pass --hbm-bandwidth B/s)\n", dev_kind,
               devname[0] ? " (" : "", devname, devname[0] ? ")" : "");
    }
}

/* The KV pool in blocks (from what the backend says it allocates, kv_pool_blocks'
 * rule, described in kv_src) and one block's bytes; it must hold one request
 * of per_req blocks. */
static tm_status size_kv_pool(const bench_args *a, const tm_backend_ops *ops, const tm_model *m, int use_dev,
                              size_t dev_free, size_t dev_total, int64_t per_req, int64_t *n_blocks,
                              size_t *blk_bytes, char *kv_src, size_t kv_src_n, tm_err *err)
{
    tm_backend_opts bo = {.block_size = BENCH_BLOCK, .max_batch_tokens = (int32_t)a->eo.max_batch_tokens,
                          .max_seqs = (int32_t)a->eo.max_seqs, .n_threads = (int)a->eo.n_threads,
                          .flags = a->eo.backend_flags, .kv_dtype = a->eo.kv_dtype};
    tm_backend_mem mp;
    tm_status st = ops->mem_plan(m, &bo, &mp, err);
    if (st) return st;
    *blk_bytes = (size_t)mp.kv_block;
    if (!*blk_bytes) return TM_ERR_INPUT;
    *n_blocks = kv_pool_blocks(a, &mp, use_dev, dev_free, dev_total, kv_src, kv_src_n);
    if (*n_blocks < per_req)
        return tm_errf(err, a->eo.kv_memory > 0 ? TM_ERR_USAGE : TM_ERR_NOMEM,
                       "KV pool of %lld blocks (%s) cannot hold one request (%lld blocks of %d)",
                       (long long)*n_blocks, kv_src, (long long)per_req, BENCH_BLOCK);
    return TM_OK;
}

/* The model to bench: loaded (or synthetic), quantized when asked. */
static tm_status open_model(const bench_args *a, tm_model **out, tm_err *err)
{
    tm_model *m = NULL;
    tm_status st = a->synth ? tm_model_synthetic(a->synth, &m, err) : tm_model_load(a->eo.model_dir, &m, err);
    if (!st && a->eo.quant != TM_QS_NONE && (st = tm_model_quantize(m, a->eo.quant, err)))
        tm_model_destroy(m);
    *out = st ? NULL : m;
    return st;
}

/* The GPU's name, its memory (returns whether known) and, unless *bw was
 * given, its HBM bandwidth by device name. Nothing without the CUDA build. */
static int gpu_info(char *devname, size_t n, double *bw, const char **bw_src, size_t *dev_free, size_t *dev_total)
{
    int have_mem = 0;
#ifdef TOKENMILL_HAVE_CUDA
    tm_err e2;
    if (tm_cuda_device_name(devname, n, &e2)) snprintf(devname, n, "unknown GPU");
    have_mem = tm_cuda_mem_info(dev_free, dev_total, &e2) == TM_OK;
    if (*bw <= 0) {
        if (strstr(devname, "H200")) *bw = 4.8e12, *bw_src = "H200 HBM3e, by device name";
        else if (strstr(devname, "H100")) *bw = 3.35e12, *bw_src = "H100 SXM HBM3, by device name";
    }
#else
    (void)devname, (void)n, (void)bw, (void)bw_src, (void)dev_free, (void)dev_total;
#endif
    return have_mem;
}

/* n prompt tokens from a fixed LCG, uniform over the vocabulary; NULL when out of memory. */
static int32_t *make_prompts(long long n, int32_t vocab)
{
    int32_t *prompts = malloc((size_t)n * sizeof *prompts);
    if (!prompts) return NULL;
    uint64_t x = 12345;
    for (long long k = 0; k < n; k++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        prompts[k] = (int32_t)((x >> 33) % (uint64_t)vocab);
    }
    return prompts;
}

int tm_bench_engine(int argc, char **argv)
{
    bench_args a;
    int done = 0, rc = parse_args(argc, argv, &a, &done);
    if (rc || done) return rc;
    long long R = a.R, I = a.I, O = a.O, S = a.eo.max_seqs, T = a.eo.max_batch_tokens, J = a.eo.n_threads;
    double bw = a.bw, peak = a.peak;
    int only_batched = a.only_batched;
    tm_kv_dtype kv_dtype = a.eo.kv_dtype;
    tm_err err;

    /* the exact command line first */
    printf("tokenmill bench");
    for (int k = 0; k < argc; k++) printf(" %s", argv[k]);
    printf("\n");
    fflush(stdout);

    const tm_backend_ops *ops;
    tm_status st = tm_backend_select(a.eo.device, &ops, &err);
    if (st) return tm_cli_fail("bench engine", st, &err);
    tm_model *m = NULL;
    if ((st = open_model(&a, &m, &err))) return tm_cli_fail("bench engine", st, &err);
    if (peak <= 0) peak = tm_model_config_of(m)->quant.act_fp8 ? BENCH_PEAK_FP8 : BENCH_PEAK_BF16;
    const tm_model_config *mc = tm_model_config_of(m);
    if (I + O + 1 > mc->max_position_embeddings) {
        tm_model_destroy(m);
        return tm_cli_usage_error("bench engine", "input + output length exceeds the model's context (%d)",
                                  mc->max_position_embeddings);
    }
    const int is_cuda = !strcmp(ops->name, "cuda");

    /* roofline constants; bandwidth by device name unless given */
    tm_bench_roofline_model rm;
    roofline_model_of(m, kv_dtype, &rm);
    char devname[256] = "";
    const char *bw_src = "--hbm-bandwidth";
    size_t dev_free = 0, dev_total = 0;
    int have_mem = 0;
    if (is_cuda) have_mem = gpu_info(devname, sizeof devname, &bw, &bw_src, &dev_free, &dev_total);
    rm.bandwidth = bw;
    rm.peak_flops = peak;

    /* KV pool, from what the backend says it allocates */
    int64_t per_req = (I + O + BENCH_BLOCK - 1) / BENCH_BLOCK, n_blocks;
    size_t blk_bytes = 1; /* stays non-zero unless the plan's block size is 0 (a failure without a message) */
    char kv_src[160];
    if ((st = size_kv_pool(&a, ops, m, is_cuda && have_mem, dev_free, dev_total, per_req, &n_blocks, &blk_bytes,
                           kv_src, sizeof kv_src, &err))) {
        tm_model_destroy(m);
        return tm_cli_fail("bench engine", st, blk_bytes ? &err : NULL);
    }

    int32_t *prompts = make_prompts(R * I, mc->vocab_size);
    if (!prompts) { tm_model_destroy(m); return tm_cli_fail("bench engine", TM_ERR_NOMEM, NULL); }
    printf("model %s (%.4g params, %.4g GB weights) | device %s%s%s%s | KV pool %lld blocks x %d tokens "
           "(%.2f GiB; %s)\n",
           tm_model_dir(m), (double)tm_model_n_params(m), rm.weight_bytes * 1e-9, ops->name, devname[0] ? " (" : "",
           devname, devname[0] ? ")" : "", (long long)n_blocks, BENCH_BLOCK,
           (double)n_blocks * (double)blk_bytes / 1073741824.0, kv_src);
    char qd[128];
    tm_quant_config_describe(&mc->quant, qd, sizeof qd);
    printf("weights: %s | KV cache: %s | roofline peak %.4g flop/s\n", qd, tm_kv_dtype_name(kv_dtype), peak);
    fflush(stdout);

    bench_result batched = {0}, alone = {0};
    bench_run br = {.ops = ops, .m = m, .I = (int)I, .O = (int)O, .max_seqs = (int)S, .max_batch_tokens = (int)T,
                    .threads = (int)J, .kv_dtype = kv_dtype, .backend_flags = a.eo.backend_flags, .n_blocks = (int32_t)n_blocks, .rm = bw > 0 ? &rm : NULL};
    st = run_batch(&br, prompts, (int)R, &batched, &err);
    bench_run b1 = br;
    b1.max_seqs = 1;
    b1.n_blocks = (int32_t)(per_req * 2);
    b1.rm = NULL;
    for (long long r = 0; r < R && !st && !only_batched; r++) st = run_batch(&b1, prompts + r * I, 1, &alone, &err);
    free(prompts);
    tm_model_destroy(m);
    if (st) return tm_cli_fail("bench engine", st, &err);

    print_results(&a, &batched, &alone, &rm, bw_src, ops->name, devname);
    return 0;
}
