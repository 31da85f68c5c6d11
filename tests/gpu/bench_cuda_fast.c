/* bench_cuda_fast.c — the fast-path kernels against the kernels they would
 * replace, at Llama-3-8B attention shapes (32 q heads, 8 kv heads, head_dim
 * 128, paged bf16 cache, block size 16), one layer:
 *   prefill: one 8192-token sequence, causal (tm_k_attention vs
 *            tm_k_attention_prefill_fa2), time and achieved TFLOP/s
 *            (4 * heads * head_dim * sum of context lengths);
 *   decode:  batch 64 / 256 at context 1024 / 4096 (tm_k_attention with the
 *            backend's split workspace vs tm_k_attention_decode_gqa), time
 *            and GB/s of K/V read once (batch * ctx * 8 * 128 * 2 * 2 B);
 *   sampling: 256 rows of a 128256 vocabulary (greedy, T=0.7 top_p=0.9,
 *            top_k=50 + logprobs) on the GPU, next to what the host path
 *            pays just to copy those fp32 logits to the host.
 * Inputs are random (tm_k_init_synthetic), never zeros. cudaEvent timing,
 * median of the runs after warm-ups. Informational: exits 0 (77 without a
 * device). Built by tests/gpu/build.sh, run by tests/gpu/run.sh.
 */
#include "gpucheck.h"
#include "kernels.h"

#define NH 32
#define NKV 8
#define HD 128
#define BS 16

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

typedef int (*bench_fn)(void *ctx);

static float time_ms(bench_fn fn, void *ctx, int warm, int reps)
{
    cudaEvent_t e0, e1;
    float t[64];
    if (reps > 64) reps = 64;
    GC_CUDA(cudaEventCreate(&e0));
    GC_CUDA(cudaEventCreate(&e1));
    for (int i = 0; i < warm; i++) GC_CUDA((cudaError_t)fn(ctx));
    for (int i = 0; i < reps; i++) {
        GC_CUDA(cudaEventRecord(e0, NULL));
        GC_CUDA((cudaError_t)fn(ctx));
        GC_CUDA(cudaEventRecord(e1, NULL));
        GC_CUDA(cudaEventSynchronize(e1));
        GC_CUDA(cudaEventElapsedTime(&t[i], e0, e1));
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    qsort(t, (size_t)reps, sizeof t[0], cmp_f);
    return t[reps / 2];
}

static int run_old(void *c) { return tm_k_attention((const tm_k_attn_args *)c, NULL); }
static int run_fa2(void *c) { return tm_k_attention_prefill_fa2((const tm_k_fa_args *)c, NULL); }
static int run_dec(void *c) { return tm_k_attention_decode_gqa((const tm_k_decode_args *)c, NULL); }
static int run_smp(void *c) { return tm_k_sample((const tm_k_sample_args *)c, NULL); }

typedef struct copy_ctx { void *h; const void *d; size_t n; } copy_ctx;
static int run_copy(void *c)
{
    copy_ctx *x = c;
    return (int)cudaMemcpyAsync(x->h, x->d, x->n, cudaMemcpyDeviceToHost, NULL);
}

/* A paged cache of n_seqs x ctx tokens (random bf16), block tables
 * scrambled, and random fp32 queries for n_q tokens. */
typedef struct cache {
    uint16_t *k, *v;
    int32_t *bt, nbps;
    float *q;
} cache;

static cache cache_make(int32_t n_seqs, int32_t ctx, int32_t n_q, uint32_t seed)
{
    cache c;
    c.nbps = (ctx + BS - 1) / BS;
    int32_t nblk = n_seqs * c.nbps;
    size_t kv = (size_t)nblk * BS * NKV * HD;
    c.k = gc_dmalloc(kv * 2);
    c.v = gc_dmalloc(kv * 2);
    c.q = gc_dmalloc((size_t)n_q * NH * HD * 4);
    GC_CUDA((cudaError_t)tm_k_init_synthetic(c.k, 0, (int64_t)kv, seed, 1.0f, 0.0f, NULL));
    GC_CUDA((cudaError_t)tm_k_init_synthetic(c.v, 0, (int64_t)kv, seed + 1, 1.0f, 0.0f, NULL));
    GC_CUDA((cudaError_t)tm_k_init_synthetic(c.q, 1, (int64_t)n_q * NH * HD, seed + 2, 2.0f, 0.0f, NULL));
    int32_t *bt = gc_hmalloc((size_t)nblk * 4);
    for (int32_t i = 0; i < nblk; i++) bt[i] = (int32_t)(((int64_t)i * 7919) % nblk);
    c.bt = gc_upload(bt, (size_t)nblk * 4);
    free(bt);
    return c;
}

static void cache_free(cache *c) { cudaFree(c->k), cudaFree(c->v), cudaFree(c->bt), cudaFree(c->q); }

static void bench_prefill(int32_t T)
{
    cache c = cache_make(1, T, T, 100);
    int32_t *pos = gc_hmalloc((size_t)T * 4), *seq = gc_hmalloc((size_t)T * 4), seq_start[2] = {0, T};
    for (int32_t i = 0; i < T; i++) pos[i] = i, seq[i] = 0;
    int32_t *tiles = gc_hmalloc((size_t)2 * T * 4), n_tiles = 0;
    tm_k_attention_plan(seq_start, 1, tiles, &n_tiles, NULL, NULL);
    int32_t *dpos = gc_upload(pos, (size_t)T * 4), *dseq = gc_upload(seq, (size_t)T * 4);
    int32_t *dtiles = gc_upload(tiles, (size_t)2 * n_tiles * 4);
    uint16_t *out = gc_dmalloc((size_t)T * NH * HD * 2);
    const float scale = 0.08838834764831845f;
    tm_k_attn_args old = {.q = c.q, .k_cache = c.k, .v_cache = c.v, .positions = dpos, .tok_seq = dseq,
                          .block_tables = c.bt, .bt_stride = c.nbps, .block_size = BS, .n_tokens = T, .n_heads = NH,
                          .n_kv_heads = NKV, .head_dim = HD, .scale = scale, .out = out};
    tm_k_fa_args fa = {.q = c.q, .k_cache = c.k, .v_cache = c.v, .positions = dpos, .tok_seq = dseq,
                       .block_tables = c.bt, .bt_stride = c.nbps, .block_size = BS, .n_tokens = T, .n_heads = NH,
                       .n_kv_heads = NKV, .head_dim = HD, .scale = scale, .out = out, .tiles = dtiles,
                       .n_tiles = n_tiles};
    const double flops = 4.0 * NH * HD * ((double)T * (T + 1) / 2);
    float ms_old = time_ms(run_old, &old, 1, 5);
    float ms_new = time_ms(run_fa2, &fa, 3, 20);
    printf("BENCH prefill_attention tokens=%d old_scalar: %.3f ms, %.1f TFLOP/s\n", T, ms_old,
           flops / (ms_old * 1e-3) / 1e12);
    printf("BENCH prefill_attention tokens=%d fa2_mma: %.3f ms, %.1f TFLOP/s (x%.1f)\n", T, ms_new,
           flops / (ms_new * 1e-3) / 1e12, ms_old / ms_new);
    cudaFree(dpos), cudaFree(dseq), cudaFree(dtiles), cudaFree(out);
    free(pos), free(seq), free(tiles);
    cache_free(&c);
}

static void bench_decode(int32_t B, int32_t ctx)
{
    cache c = cache_make(B, ctx, B, 200);
    int32_t *pos = gc_hmalloc((size_t)B * 4), *seq = gc_hmalloc((size_t)B * 4);
    for (int32_t s = 0; s < B; s++) pos[s] = ctx - 1, seq[s] = s;
    int32_t *dpos = gc_upload(pos, (size_t)B * 4), *dseq = gc_upload(seq, (size_t)B * 4);
    uint16_t *out = gc_dmalloc((size_t)B * NH * HD * 2);
    const int64_t ws_floats = 2048 * (int64_t)(HD + 2); /* what the backend gives tm_k_attention */
    float *ws = gc_dmalloc((size_t)ws_floats * 4);
    const float scale = 0.08838834764831845f;
    tm_k_attn_args old = {.q = c.q, .k_cache = c.k, .v_cache = c.v, .positions = dpos, .tok_seq = dseq,
                          .block_tables = c.bt, .bt_stride = c.nbps, .block_size = BS, .n_tokens = B, .n_heads = NH,
                          .n_kv_heads = NKV, .head_dim = HD, .scale = scale, .out = out, .workspace = ws,
                          .workspace_floats = ws_floats};
    tm_k_decode_args dec = {.q = c.q, .k_cache = c.k, .v_cache = c.v, .positions = dpos, .tok_seq = dseq,
                            .block_tables = c.bt, .bt_stride = c.nbps, .block_size = BS, .n_heads = NH,
                            .n_kv_heads = NKV, .head_dim = HD, .scale = scale, .out = out, .tokens = NULL,
                            .n_items = B, .max_ctx = ctx, .workspace = ws, .workspace_floats = ws_floats};
    const double bytes = 2.0 * B * ctx * NKV * HD * 2;
    float ms_old = time_ms(run_old, &old, 3, 20), ms_new = time_ms(run_dec, &dec, 3, 20);
    printf("BENCH decode_attention batch=%d ctx=%d old_scalar: %.3f ms, %.0f GB/s of K/V\n", B, ctx, ms_old,
           bytes / (ms_old * 1e-3) / 1e9);
    printf("BENCH decode_attention batch=%d ctx=%d gqa_mma: %.3f ms, %.0f GB/s of K/V (x%.1f)\n", B, ctx, ms_new,
           bytes / (ms_new * 1e-3) / 1e9, ms_old / ms_new);
    cudaFree(dpos), cudaFree(dseq), cudaFree(out), cudaFree(ws);
    free(pos), free(seq);
    cache_free(&c);
}

static void bench_sampling(int32_t R, int32_t V)
{
    float *logits = gc_dmalloc((size_t)R * V * 4);
    GC_CUDA((cudaError_t)tm_k_init_synthetic(logits, 1, (int64_t)R * V, 300, 8.0f, 0.0f, NULL));
    tm_k_sample_params *p = gc_hmalloc((size_t)R * sizeof *p);
    int32_t *tok = gc_dmalloc((size_t)R * 4), *nt = gc_dmalloc((size_t)R * 4), *tid = gc_dmalloc((size_t)R * 80);
    float *lp = gc_dmalloc((size_t)R * 4), *tlp = gc_dmalloc((size_t)R * 80);
    int32_t *prev = gc_dmalloc(4);
    int dev = 0, sms = 132;
    GC_CUDA(cudaGetDevice(&dev));
    GC_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    size_t ws_bytes = tm_k_sample_workspace_bytes(V, R < 2 * sms ? R : 2 * sms);
    void *ws = gc_dmalloc(ws_bytes);
    GC_CUDA(cudaMemset(ws, 0, ws_bytes));
    const char *names[3] = {"greedy", "T0.7_top_p0.9", "top_k50_logprobs5"};
    for (int kind = 0; kind < 3; kind++) {
        for (int32_t r = 0; r < R; r++) {
            p[r] = (tm_k_sample_params){.temperature = kind == 0 ? 0.0f : kind == 1 ? 0.7f : 1.0f,
                                        .top_p = kind == 1 ? 0.9f : 1.0f, .repetition_penalty = 1.0f,
                                        .top_k = kind == 2 ? 50 : 0, .logprobs = kind == 2, .top_logprobs = kind == 2 ? 5 : 0,
                                        .seed = (uint64_t)r, .token_index = 3};
        }
        tm_k_sample_params *dp = gc_upload(p, (size_t)R * sizeof *p);
        tm_k_sample_args a = {.logits = logits, .ld = V, .n_rows = R, .vocab = V, .params = dp, .prev = prev,
                              .workspace = ws, .workspace_bytes = ws_bytes, .out_token = tok, .out_logprob = lp,
                              .out_n_top = nt, .out_top_ids = tid, .out_top_logprobs = tlp};
        float ms = time_ms(run_smp, &a, 2, 10);
        printf("BENCH sample rows=%d vocab=%d %s: %.3f ms (%.0f GB/s of logits read once)\n", R, V, names[kind], ms,
               (double)R * V * 4 / (ms * 1e-3) / 1e9);
        cudaFree(dp);
    }
    void *h = NULL;
    GC_CUDA(cudaMallocHost(&h, (size_t)R * V * 4));
    copy_ctx cc = {h, logits, (size_t)R * V * 4};
    float ms = time_ms(run_copy, &cc, 1, 5);
    printf("BENCH sample rows=%d vocab=%d host_path_copy_only: %.3f ms (D2H of the fp32 logits, before any host "
           "sampling)\n", R, V, ms);
    cudaFreeHost(h);
    cudaFree(logits), cudaFree(tok), cudaFree(nt), cudaFree(tid), cudaFree(lp), cudaFree(tlp), cudaFree(prev);
    cudaFree(ws);
    free(p);
}

int main(void)
{
    gc_require_device();
    bench_prefill(8192);
    int32_t batches[] = {64, 256}, ctxs[] = {1024, 4096};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) bench_decode(batches[i], ctxs[j]);
    bench_sampling(256, 128256);
    bench_sampling(64, 128256);
    return 0;
}
