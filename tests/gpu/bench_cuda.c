/* bench_cuda.c — timings of the CUDA kernels on Llama-3-8B shapes (hidden
 * 4096, 32 q heads, 8 kv heads, head_dim 128, inter 14336), synthetic data:
 * decode attention over a paged bf16 cache (GB/s of K/V read), the fused
 * qkv/RoPE/KV-write prologue, RMSNorm and SiLU*mul. Informational only: it
 * prints what it measured (cudaEvent timing, median of 20 runs after 3
 * warm-ups) and exits 0, or 77 without a device. GEMMs are cuBLASLt's.
 */
#include "gpucheck.h"
#include "kernels.h"

#define NH 32
#define NKV 8
#define HD 128
#define HID 4096
#define INTER 14336

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

typedef int (*bench_fn)(void *ctx);

static float time_ms(bench_fn fn, void *ctx)
{
    cudaEvent_t e0, e1;
    float t[20];
    GC_CUDA(cudaEventCreate(&e0));
    GC_CUDA(cudaEventCreate(&e1));
    for (int i = 0; i < 3; i++) GC_CUDA((cudaError_t)fn(ctx));
    for (int i = 0; i < 20; i++) {
        GC_CUDA(cudaEventRecord(e0, NULL));
        GC_CUDA((cudaError_t)fn(ctx));
        GC_CUDA(cudaEventRecord(e1, NULL));
        GC_CUDA(cudaEventSynchronize(e1));
        GC_CUDA(cudaEventElapsedTime(&t[i], e0, e1));
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    qsort(t, 20, sizeof t[0], cmp_f);
    return t[10];
}

static int run_attn(void *c) { return tm_k_attention((const tm_k_attn_args *)c, NULL); }
static int run_rope(void *c) { return tm_k_qkv_rope_kv_write((const tm_k_rope_args *)c, NULL); }

typedef struct norm_ctx { float *x, *w; uint16_t *out; int32_t n; } norm_ctx;
static int run_norm(void *c)
{
    norm_ctx *n = c;
    return tm_k_add_rmsnorm(n->x, NULL, n->w, NULL, n->n, HID, 1e-5f, n->out, NULL, NULL);
}
typedef struct silu_ctx { float *gu; uint16_t *out; int32_t n; } silu_ctx;
static int run_silu(void *c)
{
    silu_ctx *s = c;
    return tm_k_silu_mul(s->gu, s->n, INTER, s->out, NULL);
}

int main(void)
{
    gc_require_device();
    const int32_t bs = 16;
    int32_t seqs_list[] = {1, 32, 128}, ctx_list[] = {512, 4096};
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 2; b++) {
            int32_t S = seqs_list[a], ctx = ctx_list[b], nbps = ctx / bs, nblk = S * nbps;
            size_t kv_elems = (size_t)nblk * bs * NKV * HD;
            uint16_t *k = gc_dmalloc(kv_elems * 2), *v = gc_dmalloc(kv_elems * 2);
            GC_CUDA(cudaMemset(k, 0x3c, kv_elems * 2)); /* finite bf16 values */
            GC_CUDA(cudaMemset(v, 0x3c, kv_elems * 2));
            int32_t *pos = gc_hmalloc((size_t)S * 4), *seq = gc_hmalloc((size_t)S * 4);
            int32_t *bt = gc_hmalloc((size_t)nblk * 4);
            for (int32_t s = 0; s < S; s++) {
                pos[s] = ctx - 1;
                seq[s] = s;
            }
            for (int32_t i = 0; i < nblk; i++) bt[i] = (int32_t)(((int64_t)i * 7919) % nblk);
            float *q = gc_dmalloc((size_t)S * NH * HD * 4);
            GC_CUDA(cudaMemset(q, 0, (size_t)S * NH * HD * 4));
            uint16_t *out = gc_dmalloc((size_t)S * NH * HD * 2);
            int32_t *dpos = gc_upload(pos, (size_t)S * 4), *dseq = gc_upload(seq, (size_t)S * 4);
            int32_t *dbt = gc_upload(bt, (size_t)nblk * 4);
            tm_k_attn_args aa = {.q = q, .k_cache = k, .v_cache = v, .positions = dpos, .tok_seq = dseq,
                                 .block_tables = dbt, .bt_stride = nbps, .block_size = bs, .n_tokens = S,
                                 .n_heads = NH, .n_kv_heads = NKV, .head_dim = HD, .scale = 0.088f, .out = out};
            double bytes = 2.0 * S * ctx * NKV * HD * 2;
            for (int split = 0; split < 2; split++) {
                float *ws = NULL;
                if (split) {
                    aa.workspace_floats = 2048 * (int64_t)(HD + 2);
                    aa.workspace = ws = gc_dmalloc((size_t)aa.workspace_floats * 4);
                }
                float ms = time_ms(run_attn, &aa);
                printf("BENCH attention_decode%s seqs=%d ctx=%d: %.3f ms, %.1f GB/s of K/V (one layer, 8B shapes)\n",
                       split ? "_split" : "", S, ctx, ms, bytes / (ms * 1e-3) / 1e9);
                cudaFree(ws);
            }
            cudaFree(k), cudaFree(v), cudaFree(q), cudaFree(out), cudaFree(dpos), cudaFree(dseq), cudaFree(dbt);
            free(pos), free(seq), free(bt);
        }
    {   /* prologue + norm + silu for 512 tokens */
        int32_t T = 512;
        int32_t *pos = gc_hmalloc((size_t)T * 4), *seq = gc_hmalloc((size_t)T * 4), bt[32];
        for (int32_t i = 0; i < T; i++) pos[i] = i, seq[i] = 0;
        for (int32_t i = 0; i < 32; i++) bt[i] = i;
        size_t W = (size_t)(NH + 2 * NKV) * HD;
        float *qkv = gc_dmalloc((size_t)T * W * 4), *qo = gc_dmalloc((size_t)T * NH * HD * 4);
        GC_CUDA(cudaMemset(qkv, 0, (size_t)T * W * 4));
        double inv[HD / 2];
        for (int i = 0; i < HD / 2; i++) inv[i] = 1.0 / pow(500000.0, 2.0 * i / HD);
        double *dinv = gc_upload(inv, sizeof inv);
        uint16_t *k = gc_dmalloc((size_t)32 * 16 * NKV * HD * 2), *v = gc_dmalloc((size_t)32 * 16 * NKV * HD * 2);
        int32_t *dpos = gc_upload(pos, (size_t)T * 4), *dseq = gc_upload(seq, (size_t)T * 4), *dbt = gc_upload(bt, sizeof bt);
        tm_k_rope_args ra = {.qkv = qkv, .inv_freq = dinv, .positions = dpos, .tok_seq = dseq, .block_tables = dbt,
                             .bt_stride = 32, .block_size = 16, .n_tokens = T, .n_heads = NH, .n_kv_heads = NKV,
                             .head_dim = HD, .eps = 1e-5f, .q_out = qo, .k_cache = k, .v_cache = v};
        float ms = time_ms(run_rope, &ra);
        printf("BENCH qkv_rope_kv_write tokens=%d: %.3f ms, %.1f GB/s\n", T, ms,
               ((double)T * W * 4 + (double)T * NH * HD * 4 + (double)T * 2 * NKV * HD * 2) / (ms * 1e-3) / 1e9);
        norm_ctx nc = {.x = gc_dmalloc((size_t)T * HID * 4), .w = gc_dmalloc(HID * 4), .out = gc_dmalloc((size_t)T * HID * 2), .n = T};
        GC_CUDA(cudaMemset(nc.x, 0, (size_t)T * HID * 4));
        GC_CUDA(cudaMemset(nc.w, 0, HID * 4));
        ms = time_ms(run_norm, &nc);
        printf("BENCH rmsnorm tokens=%d dim=%d: %.3f ms, %.1f GB/s\n", T, HID, ms,
               (double)T * HID * 6 / (ms * 1e-3) / 1e9);
        silu_ctx sc = {.gu = gc_dmalloc((size_t)T * 2 * INTER * 4), .out = gc_dmalloc((size_t)T * INTER * 2), .n = T};
        GC_CUDA(cudaMemset(sc.gu, 0, (size_t)T * 2 * INTER * 4));
        ms = time_ms(run_silu, &sc);
        printf("BENCH silu_mul tokens=%d inter=%d: %.3f ms, %.1f GB/s\n", T, INTER, ms,
               (double)T * INTER * 10 / (ms * 1e-3) / 1e9);
    }
    return 0;
}
