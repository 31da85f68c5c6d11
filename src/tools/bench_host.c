/* bench_host.c — `tokenmill bench host`: what the host alone sustains on the
 * full `run` path (queue claims, prepare, engine + scheduler, the sampler on
 * real 128k-vocabulary logits, detokenizer, response JSON, per-step commit),
 * with a backend whose forward pass costs nothing but filling the logits.
 *
 * The "instant" backend (a tm_backend_ops table private to this bench, not a
 * --device) copies, for each logit row, one of BH_ROWS fixed pseudo-random
 * rows of the model's vocabulary size (chosen by position and token): no
 * matmuls, no KV. The model is a 1-layer, hidden-16 Llama with
 * vocab_size 128256 (zero weights: the backend never reads them) written to
 * a temporary directory beside the Llama-3 tokenizer (--tokenizer DIR, linked,
 * default $TOKENMILL_TESTDATA/tokenizers/llama3), so detokenization is real.
 *
 * A job of --requests token-id prompts (--input-len ids each, --output-len
 * tokens generated with ignore_eos, temperature 0.8, top_p 0.9, seeded) is
 * submitted through the queue API, then `run` (tm_worker_run, one thread)
 * works it off; --procs P forks P workers on the same DB. Printed:
 * completions/s and output tok/s over the run, the same over the first and
 * the last quarter of the run's seconds (requests.finished_at, 1 s
 * resolution: is it flat?), and each worker's exit status (a worker that
 * met `database is locked` exits non-zero and says so).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "model/model.h"
#include "queue/queue.h"
#include "tools/bench.h"
#include "util/timeutil.h"
#include "worker/worker.h"

#define BH_VOCAB 128256
#define BH_ROWS 16
#define BH_PEAKS 32

/* ---- the instant backend -------------------------------------------------- */

struct tm_backend {
    int32_t vocab;
    float *rows; /* [BH_ROWS][vocab] */
};

static uint64_t bh_mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static tm_status bh_create(const tm_model *m, const tm_backend_opts *o, tm_backend **out, tm_err *err)
{
    (void)o;
    tm_backend *b = calloc(1, sizeof *b);
    int32_t v = tm_model_config_of(m)->vocab_size;
    if (b) b->rows = malloc((size_t)BH_ROWS * (size_t)v * sizeof *b->rows);
    if (!b || !b->rows) { if (b) free(b); return tm_errf(err, TM_ERR_NOMEM, "bench host: out of memory"); }
    b->vocab = v;
    uint64_t s = 20261207;
    /* logits shaped like a trained model's: noise in [-3, 3] and, per row,
     * BH_PEAKS tokens at 8..16 that hold most of the probability (top_p 0.9
     * keeps a handful of tokens, as on real text) */
    for (size_t i = 0; i < (size_t)BH_ROWS * (size_t)v; i++) {
        double u1 = (double)(bh_mix(&s) >> 11) * (1.0 / 9007199254740992.0);
        double u2 = (double)(bh_mix(&s) >> 11) * (1.0 / 9007199254740992.0);
        b->rows[i] = (float)(3.0 * (u1 + u2 - 1.0));
    }
    for (int r = 0; r < BH_ROWS; r++)
        for (int k = 0; k < BH_PEAKS; k++)
            b->rows[(size_t)r * (size_t)v + bh_mix(&s) % (uint64_t)v] = (float)(8.0 + (double)(bh_mix(&s) % 8000) / 1000.0);
    *out = b;
    return TM_OK;
}

static void bh_destroy(tm_backend *b)
{
    if (!b) return;
    free(b->rows);
    free(b);
}

static tm_status bh_forward(tm_backend *b, const tm_batch *bt, tm_err *err)
{
    (void)err;
    for (int32_t i = 0; i < bt->n_logits; i++) {
        int32_t t = bt->logit_rows[i];
        uint32_t k = ((uint32_t)bt->positions[t] * 31u + (uint32_t)bt->token_ids[t]) % BH_ROWS;
        memcpy(bt->logits + (size_t)i * (size_t)b->vocab, b->rows + (size_t)k * (size_t)b->vocab,
               (size_t)b->vocab * sizeof(float));
    }
    return TM_OK;
}

static tm_status bh_copy_block(tm_backend *b, int32_t src, int32_t dst, tm_err *err)
{
    (void)b; (void)src; (void)dst; (void)err;
    return TM_OK;
}

static size_t bh_kv_block_bytes(const tm_model *m, int32_t block_size) { (void)m; return (size_t)block_size; }

static tm_status bh_mem_plan(const tm_model *m, const tm_backend_opts *o, tm_backend_mem *out, tm_err *err)
{
    (void)err;
    memset(out, 0, sizeof *out);
    out->kv_block = o->block_size > 0 ? o->block_size : 16;
    out->scratch = (int64_t)BH_ROWS * tm_model_config_of(m)->vocab_size * 4;
    return TM_OK;
}

static tm_status bh_mem_available(size_t *free_bytes, size_t *total_bytes, tm_err *err)
{
    (void)err;
    *free_bytes = *total_bytes = (size_t)1 << 32;
    return TM_OK;
}

static const tm_backend_ops bh_ops = {"instant", bh_create, bh_destroy, bh_forward, bh_copy_block,
                                      bh_kv_block_bytes, bh_mem_plan, bh_mem_available};

/* ---- the model directory ------------------------------------------------- */

static int write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int bad = fwrite(p, 1, n, f) != n;
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

/* config.json + model.safetensors (zero bf16 weights) of a 1-layer, hidden-16
 * Llama with the Llama-3 vocabulary, and links to the tokenizer files. */
static int write_model(const char *dir, const char *tok_dir)
{
    enum { H = 16, I = 32, HD = 8, NH = 2, KV = 1 };
    static const char cfg[] =
        "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"vocab_size\":128256,"
        "\"hidden_size\":16,\"intermediate_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":2,"
        "\"num_key_value_heads\":1,\"max_position_embeddings\":4096,\"rms_norm_eps\":1e-5,\"rope_theta\":500000.0,"
        "\"tie_word_embeddings\":false,\"torch_dtype\":\"bfloat16\",\"bos_token_id\":128000,\"eos_token_id\":128001}";
    struct { const char *name; long r, c; } t[] = {
        {"model.embed_tokens.weight", BH_VOCAB, H}, {"model.layers.0.input_layernorm.weight", H, 0},
        {"model.layers.0.self_attn.q_proj.weight", NH * HD, H}, {"model.layers.0.self_attn.k_proj.weight", KV * HD, H},
        {"model.layers.0.self_attn.v_proj.weight", KV * HD, H}, {"model.layers.0.self_attn.o_proj.weight", H, NH * HD},
        {"model.layers.0.post_attention_layernorm.weight", H, 0}, {"model.layers.0.mlp.gate_proj.weight", I, H},
        {"model.layers.0.mlp.up_proj.weight", I, H}, {"model.layers.0.mlp.down_proj.weight", H, I},
        {"model.norm.weight", H, 0}, {"lm_head.weight", BH_VOCAB, H}};
    char hdr[4096];
    size_t hl = 0, off = 0;
    hl += (size_t)snprintf(hdr, sizeof hdr, "{");
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t bytes = (size_t)t[i].r * (size_t)(t[i].c ? t[i].c : 1) * 2;
        char shape[64];
        if (t[i].c) snprintf(shape, sizeof shape, "[%ld,%ld]", t[i].r, t[i].c);
        else snprintf(shape, sizeof shape, "[%ld]", t[i].r);
        hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                               i ? "," : "", t[i].name, shape, off, off + bytes);
        off += bytes;
    }
    hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "}");
    while (hl % 8) hdr[hl++] = ' ';
    size_t total = 8 + hl + off;
    unsigned char *file = calloc(1, total);
    if (!file) return -1;
    for (int i = 0; i < 8; i++) file[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(file + 8, hdr, hl);
    int bad = write_file(dir, "config.json", cfg, strlen(cfg)) || write_file(dir, "model.safetensors", file, total);
    free(file);
    const char *names[] = {"tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 2 && !bad; i++) {
        char from[4400], to[4400];
        snprintf(from, sizeof from, "%s/%s", tok_dir, names[i]);
        snprintf(to, sizeof to, "%s/%s", dir, names[i]);
        if (access(from, R_OK) != 0) { fprintf(stderr, "bench host: %s: %s\n", from, strerror(errno)); return -1; }
        bad = symlink(from, to) != 0;
    }
    return bad ? -1 : 0;
}

/* ---- the job --------------------------------------------------------------- */

typedef struct bh_args {
    long long requests;
    int input_len, output_len, max_seqs, procs;
    const char *tok_dir, *dir;
    int keep;
} bh_args;

static tm_status submit_job(const char *db, const bh_args *a, char job[TM_QUEUE_ID_MAX], tm_err *err)
{
    tm_queue *q;
    tm_status st = tm_queue_open(db, &q, err);
    if (st) return st;
    tm_queue_job_opts jo = {.name = "bench-host", .model = "bench"};
    char *body = malloc((size_t)a->input_len * 8 + 256);
    if (!body) { tm_queue_close(q); return tm_errf(err, TM_ERR_NOMEM, "out of memory"); }
    uint64_t s = 7;
    st = tm_queue_submit_begin(q, &jo, job, err);
    for (long long i = 0; !st && i < a->requests; i++) {
        size_t n = (size_t)sprintf(body, "{\"prompt\":[");
        for (int k = 0; k < a->input_len; k++) n += (size_t)sprintf(body + n, "%s%u", k ? "," : "", (unsigned)(bh_mix(&s) % 128000));
        sprintf(body + n, "],\"max_tokens\":%d,\"ignore_eos\":true,\"temperature\":0.8,\"top_p\":0.9,\"seed\":%lld}",
                a->output_len, i);
        char cid[32];
        snprintf(cid, sizeof cid, "r%lld", i);
        tm_queue_new_request r = {.custom_id = cid, .source = "bench", .line = (long)i + 1, .url = "/v1/completions",
                                  .body_json = body, .max_tokens = a->output_len, .n = 1};
        st = tm_queue_submit_add(q, &r, err);
        if (!st) st = tm_queue_submit_tick(q, err);
    }
    if (!st) st = tm_queue_submit_commit(q, err);
    free(body);
    tm_queue_close(q);
    return st;
}

/* CPU seconds of this process and its waited-for children. */
static double cpu_seconds(void)
{
    struct rusage a, b;
    getrusage(RUSAGE_SELF, &a);
    getrusage(RUSAGE_CHILDREN, &b);
    return (double)(a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec + b.ru_stime.tv_sec) +
           (double)(a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec + b.ru_stime.tv_usec) * 1e-6;
}

/* One worker (a child with --procs > 1): the run path on the instant backend. */
static int run_worker(const char *db, const char *model_dir, const bh_args *a, int quiet)
{
    tm_worker_opts o;
    tm_worker_opts_default(&o);
    o.db_path = db;
    o.model_dir = model_dir;
    o.device = TM_DEVICE_CPU;
    o.backend = &bh_ops;
    o.max_seqs = a->max_seqs;
    o.max_batch_tokens = a->max_seqs * 4 > 2048 ? a->max_seqs * 4 : 2048;
    o.n_threads = 1;
    o.quiet = quiet;
    o.progress_every_s = 30;
    tm_worker_summary sum;
    tm_err err = {{0}};
    tm_status st = tm_worker_run(&o, &sum, &err);
    if (st) fprintf(stderr, "bench host: worker %ld: %s\n", (long)getpid(), err.msg);
    return st ? tm_status_exit_code(st) : 0;
}

/* Completions per second over the first and the last quarter of the run's
 * whole seconds (requests.finished_at; the last, partial second left out),
 * and the job's done count. */
static void flatness(const char *db, const char *job, double *first, double *last, int64_t *done)
{
    *first = *last = 0;
    *done = 0;
    tm_queue *q;
    tm_err err;
    if (tm_queue_open_existing(db, &q, &err)) return;
    int64_t n = 0, lo = 0, hi = 0;
    tm_queue_job j;
    if (!tm_queue_job_get(q, job, &j, &err)) { *done = j.done; tm_queue_job_clear(&j); }
    if (!tm_queue_done_span(q, job, 0, INT64_MAX, &n, &lo, &hi, &err) && hi > lo) {
        int64_t quarter = (hi - lo) / 4 > 0 ? (hi - lo) / 4 : 1;
        if (!tm_queue_done_span(q, job, lo, lo + quarter, &n, NULL, NULL, &err)) *first = (double)n / (double)quarter;
        if (!tm_queue_done_span(q, job, hi - quarter, hi, &n, NULL, NULL, &err)) *last = (double)n / (double)quarter;
    }
    tm_queue_close(q);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill bench host [--requests N] [--input-len I] [--output-len O] [--max-seqs S]\n"
               "                            [--procs P] [--tokenizer DIR] [--dir DIR] [--keep]\n"
               "\n"
               "The host's throughput on the full run path with an instant backend (logits copied from\n"
               "fixed pseudo-random 128,256-wide rows; no model compute): completions/s, output tok/s.\n"
               "  --requests N    requests in the job (default 100000)\n"
               "  --input-len I   prompt token ids per request (default 128)\n"
               "  --output-len O  tokens generated per request, ignore_eos (default 128)\n"
               "  --max-seqs S    run's --max-seqs (default 256)\n"
               "  --procs P       worker processes on the one DB (default 1)\n"
               "  --tokenizer DIR Llama-3 tokenizer files (default $TOKENMILL_TESTDATA/tokenizers/llama3)\n"
               "  --dir DIR       where to make the temporary directory (default /tmp); --keep keeps it\n");
}

static int parse(int argc, char **argv, bh_args *a)
{
    static const struct option lo[] = {{"requests", 1, 0, 'n'}, {"input-len", 1, 0, 'i'}, {"output-len", 1, 0, 'o'},
                                       {"max-seqs", 1, 0, 's'}, {"procs", 1, 0, 'p'}, {"tokenizer", 1, 0, 't'},
                                       {"dir", 1, 0, 'd'}, {"keep", 0, 0, 'k'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    *a = (bh_args){.requests = 100000, .input_len = 128, .output_len = 128, .max_seqs = 256, .procs = 1, .dir = "/tmp"};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        long long v = optarg ? atoll(optarg) : 0;
        switch (c) {
        case 'n': if (v < 1 || v > 100000000) return tm_cli_usage_error("bench host", "--requests: 1 .. 100000000"); a->requests = v; break;
        case 'i': if (v < 1 || v > 2048) return tm_cli_usage_error("bench host", "--input-len: 1 .. 2048"); a->input_len = (int)v; break;
        case 'o': if (v < 1 || v > 2048) return tm_cli_usage_error("bench host", "--output-len: 1 .. 2048"); a->output_len = (int)v; break;
        case 's': if (v < 1 || v > 4096) return tm_cli_usage_error("bench host", "--max-seqs: 1 .. 4096"); a->max_seqs = (int)v; break;
        case 'p': if (v < 1 || v > 64) return tm_cli_usage_error("bench host", "--procs: 1 .. 64"); a->procs = (int)v; break;
        case 't': a->tok_dir = optarg; break;
        case 'd': a->dir = optarg; break;
        case 'k': a->keep = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 64;
        }
    }
    if (optind < argc) return tm_cli_usage_error("bench host", "unexpected argument '%s'", argv[optind]);
    return -1;
}

/* Run P workers (forked when P > 1); *failed: those that exited non-zero. */
static int run_workers(const char *db, const char *model, const bh_args *a, int *failed)
{
    *failed = 0;
    if (a->procs == 1) return run_worker(db, model, a, 0) != 0 ? (*failed = 1) : 0;
    pid_t pids[64];
    for (int i = 0; i < a->procs; i++) {
        fflush(NULL);
        pids[i] = fork();
        if (pids[i] == 0) _exit(run_worker(db, model, a, 1));
        if (pids[i] < 0) { fprintf(stderr, "bench host: fork: %s\n", strerror(errno)); return -1; }
    }
    for (int i = 0; i < a->procs; i++) {
        int ws = 0;
        while (waitpid(pids[i], &ws, 0) < 0 && errno == EINTR) {}
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
            ++*failed;
            fprintf(stderr, "bench host: worker %d exited %d\n", i, WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
        }
    }
    return 0;
}

int tm_bench_host(int argc, char **argv)
{
    bh_args a;
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
    char tdef[4096];
    if (!a.tok_dir) {
        const char *td = getenv("TOKENMILL_TESTDATA");
        snprintf(tdef, sizeof tdef, "%s/tokenizers/llama3", td ? td : "../shared/testdata");
        a.tok_dir = tdef;
    }
    char dir[4096], model[4200], db[4200];
    snprintf(dir, sizeof dir, "%s/tm_bench_host_XXXXXX", a.dir);
    if (!mkdtemp(dir)) { fprintf(stderr, "bench host: %s: %s\n", dir, strerror(errno)); return 73; }
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(db, sizeof db, "%s/q.db", dir);
    if (mkdir(model, 0755) != 0 || write_model(model, a.tok_dir) != 0) {
        fprintf(stderr, "bench host: cannot write the model in %s\n", model);
        return 73;
    }
    tm_err err = {{0}};
    double t0 = tm_now_unix_f();
    char job[TM_QUEUE_ID_MAX];
    tm_status st = submit_job(db, &a, job, &err);
    if (st) return tm_cli_fail("bench host", st, &err);
    double t1 = tm_now_unix_f();
    printf("bench host: %lld requests (%d prompt ids, %d output tokens, T=0.8 top_p=0.9) submitted in %.1f s\n",
           a.requests, a.input_len, a.output_len, t1 - t0);
    fflush(stdout);
    int failed = 0;
    double cpu0 = cpu_seconds();
    if (run_workers(db, model, &a, &failed) < 0) return 71;
    double cpu = cpu_seconds() - cpu0;
    double wall = tm_now_unix_f() - t1, first = 0, last = 0;
    int64_t n_done = 0;
    flatness(db, job, &first, &last, &n_done);
    double done = (double)n_done;
    printf("bench host: max-seqs %d, %d worker process%s, 1 thread each: %.1f s, %.0f completions/s, "
           "%.0f output tok/s (%lld done); first quarter %.0f/s, last quarter %.0f/s; workers failed: %d\n",
           a.max_seqs, a.procs, a.procs > 1 ? "es" : "", wall, done / wall, done * a.output_len / wall, (long long)n_done,
           first, last, failed);
    printf("  CPU time (user + sys, all workers): %.1f s: %.0f completions and %.0f output tokens per CPU-second%s\n",
           cpu, cpu > 0 ? done / cpu : 0, cpu > 0 ? done * a.output_len / cpu : 0,
           cpu < 0.8 * wall * a.procs ? " (the machine was busy: wall time > CPU time)" : "");
    printf("  reproduce: tokenmill bench host --requests %lld --input-len %d --output-len %d --max-seqs %d --procs %d\n",
           a.requests, a.input_len, a.output_len, a.max_seqs, a.procs);
    if (a.keep) printf("  kept: %s\n", dir);
    else {
        char cmd[4300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "bench host: could not remove %s\n", dir);
    }
    return failed ? 1 : 0;
}
