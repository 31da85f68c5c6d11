/* cpu_ops.c — thread pool and float32 ops of the CPU backend (see cpu_ops.h).
 *
 * The matmul is our own instead of cblas_sgemm because OpenBLAS picks
 * different micro-kernels (and thread splits) for different M, so the same
 * token's projection changes in the last bits with the batch it rides in.
 * Here every output element is a dot product with one fixed summation order;
 * GCC vector extensions (and an AVX2 clone without FMA, which rounds exactly
 * like the SSE2 one) keep it reasonably fast.
 */
#include "backend/cpu/cpu_ops.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- thread pool -------------------------------------------------------- */

struct tm_cpu_pool {
    int n;                       /* threads including the caller */
    int n_started;               /* worker threads actually running */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned gen;
    int pending;
    int stop;
    tm_cpu_task fn;
    void *ctx;
    int64_t n_items;
};

typedef struct pool_arg {
    tm_cpu_pool *p;
    int idx;
} pool_arg;

static void pool_range(int64_t n_items, int n, int i, int64_t *b, int64_t *e)
{
    *b = n_items * i / n;
    *e = n_items * (i + 1) / n;
}

static void *pool_main(void *arg)
{
    tm_cpu_pool *p = ((pool_arg *)arg)->p;
    int idx = ((pool_arg *)arg)->idx;
    free(arg);
    unsigned seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->gen == seen && !p->stop) pthread_cond_wait(&p->go, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->gen;
        tm_cpu_task fn = p->fn;
        void *ctx = p->ctx;
        int64_t n_items = p->n_items;
        pthread_mutex_unlock(&p->mu);

        int64_t b, e;
        pool_range(n_items, p->n, idx, &b, &e);
        if (b < e) fn(ctx, b, e, idx);

        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

int tm_cpu_threads_for(int n_threads)
{
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    return n_threads > 256 ? 256 : n_threads;
}

tm_status tm_cpu_pool_create(int n_threads, tm_cpu_pool **out, tm_err *err)
{
    *out = NULL;
    if (n_threads < 0) return tm_errf(err, TM_ERR_USAGE, "cpu pool: n_threads %d < 0", n_threads);
    n_threads = tm_cpu_threads_for(n_threads);
    tm_cpu_pool *p = calloc(1, sizeof *p);
    if (!p) return tm_errf(err, TM_ERR_NOMEM, "cpu pool: out of memory");
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads > 1) {
        p->th = calloc((size_t)n_threads - 1, sizeof *p->th);
        if (!p->th) {
            tm_cpu_pool_destroy(p);
            return tm_errf(err, TM_ERR_NOMEM, "cpu pool: out of memory");
        }
        for (int i = 1; i < n_threads; i++) {
            pool_arg *a = malloc(sizeof *a);
            if (!a) {
                tm_cpu_pool_destroy(p);
                return tm_errf(err, TM_ERR_NOMEM, "cpu pool: out of memory");
            }
            a->p = p;
            a->idx = i;
            int rc = pthread_create(&p->th[i - 1], NULL, pool_main, a);
            if (rc) {
                free(a);
                tm_cpu_pool_destroy(p);
                return tm_errf(err, TM_ERR_INTERNAL, "cpu pool: pthread_create: %s", strerror(rc));
            }
            p->n_started++;
        }
    }
    *out = p;
    return TM_OK;
}

void tm_cpu_pool_destroy(tm_cpu_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p->th);
    free(p);
}

int tm_cpu_pool_threads(const tm_cpu_pool *p) { return p ? p->n : 1; }

void tm_cpu_pool_run(tm_cpu_pool *p, int64_t n_items, tm_cpu_task fn, void *ctx)
{
    if (n_items <= 0) return;
    if (!p || p->n == 1 || n_items == 1) {
        fn(ctx, 0, n_items, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_items = n_items;
    p->pending = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);

    int64_t b, e;
    pool_range(n_items, p->n, 0, &b, &e);
    if (b < e) fn(ctx, b, e, 0);

    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* ---- matmul ------------------------------------------------------------- */

typedef float v8 __attribute__((vector_size(32)));

/* Unaligned load (a macro: passing v8 by value would change the ABI without AVX). */
#define LD8(dst, p) memcpy(&(dst), (p), sizeof(v8))

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define TM_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TM_CLONES
#endif

#define MT 4 /* tokens per tile */
#define NT 2 /* outputs per tile */

/* One tile: out[t][n] = dot(xr[t], wr[n]) over K, for 4 or 1 rows. The
 * summation order of an element is independent of the tile (lanes never
 * mix, rows never mix): lane l sums k = l, l+8, ...; lanes combine pairwise;
 * the K % 8 tail adds last. So the 1-row and 4-row tiles agree bitwise.
 * Accumulators are named variables so that they stay in registers. */
static inline __attribute__((always_inline)) float mm_finish(const v8 *acc, const float *x, const float *w,
                                                              int32_t k, int32_t K)
{
    float a[8];
    memcpy(a, acc, sizeof a); /* by pointer: a v8 argument would change the ABI without AVX */
    float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; k < K; k++) s += x[k] * w[k];
    return s;
}

TM_CLONES static void mm_tile4(const float *const *xr, const float *const *wr, int32_t K, float out[MT][NT])
{
    v8 a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0}, a20 = {0}, a21 = {0}, a30 = {0}, a31 = {0};
    const float *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3], *w0 = wr[0], *w1 = wr[1];
    int32_t k = 0;
    for (; k + 8 <= K; k += 8) {
        v8 u, v, x;
        LD8(u, w0 + k);
        LD8(v, w1 + k);
        LD8(x, x0 + k);
        a00 += x * u;
        a01 += x * v;
        LD8(x, x1 + k);
        a10 += x * u;
        a11 += x * v;
        LD8(x, x2 + k);
        a20 += x * u;
        a21 += x * v;
        LD8(x, x3 + k);
        a30 += x * u;
        a31 += x * v;
    }
    out[0][0] = mm_finish(&a00, x0, w0, k, K);
    out[0][1] = mm_finish(&a01, x0, w1, k, K);
    out[1][0] = mm_finish(&a10, x1, w0, k, K);
    out[1][1] = mm_finish(&a11, x1, w1, k, K);
    out[2][0] = mm_finish(&a20, x2, w0, k, K);
    out[2][1] = mm_finish(&a21, x2, w1, k, K);
    out[3][0] = mm_finish(&a30, x3, w0, k, K);
    out[3][1] = mm_finish(&a31, x3, w1, k, K);
}

TM_CLONES static void mm_tile1(const float *const *xr, const float *const *wr, int32_t K, float out[MT][NT])
{
    v8 a00 = {0}, a01 = {0};
    const float *x0 = xr[0], *w0 = wr[0], *w1 = wr[1];
    int32_t k = 0;
    for (; k + 8 <= K; k += 8) {
        v8 u, v, x;
        LD8(u, w0 + k);
        LD8(v, w1 + k);
        LD8(x, x0 + k);
        a00 += x * u;
        a01 += x * v;
    }
    out[0][0] = mm_finish(&a00, x0, w0, k, K);
    out[0][1] = mm_finish(&a01, x0, w1, k, K);
}

typedef struct mm_ctx {
    const float *x, *w, *bias;
    float *y;
    int32_t T, K, N;
} mm_ctx;

#define MM_NBLOCK 32 /* weight rows kept hot while all tokens stream past */

static void mm_task(void *arg, int64_t n0, int64_t n1, int thread)
{
    const mm_ctx *c = arg;
    for (int64_t nb = n0; nb < n1; nb += MM_NBLOCK) {
        int64_t nb_end = nb + MM_NBLOCK < n1 ? nb + MM_NBLOCK : n1;
        for (int32_t t0 = 0; t0 < c->T;) {
            /* full 4-row tiles, then single rows (same arithmetic, no wasted rows) */
            int mt = c->T - t0 >= MT ? MT : 1;
            const float *xr[MT];
            for (int t = 0; t < MT; t++) xr[t] = c->x + (size_t)(t < mt ? t0 + t : t0) * c->K;
            for (int64_t n = nb; n < nb_end; n += NT) {
                const float *wr[NT];
                for (int j = 0; j < NT; j++) {
                    int64_t nn = n + j < nb_end ? n + j : nb_end - 1;
                    wr[j] = c->w + (size_t)nn * c->K;
                }
                float out[MT][NT];
                if (mt == MT) mm_tile4(xr, wr, c->K, out);
                else mm_tile1(xr, wr, c->K, out);
                for (int t = 0; t < mt; t++)
                    for (int j = 0; j < NT && n + j < nb_end; j++) {
                        float v = out[t][j];
                        if (c->bias) v += c->bias[n + j];
                        c->y[(size_t)(t0 + t) * c->N + n + j] = v;
                    }
            }
            t0 += mt;
        }
    }
}

void tm_cpu_matmul(tm_cpu_pool *p, const float *x, int32_t T, int32_t K, const float *w, int32_t N,
                   const float *bias, float *y)
{
    if (T <= 0 || N <= 0) return;
    mm_ctx c = {.x = x, .w = w, .bias = bias, .y = y, .T = T, .K = K, .N = N};
    /* Tiny products are not worth waking the pool (the split never changes results). */
    if ((int64_t)T * N * K < (1 << 16)) p = NULL;
    tm_cpu_pool_run(p, N, mm_task, &c);
}

void tm_cpu_matmul_blas(const float *x, int32_t T, int32_t K, const float *w, int32_t N,
                        const float *bias, float *y)
{
    if (T <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, N, K, 1.0f, x, K, w, K, 0.0f, y, N);
    if (bias)
        for (int32_t t = 0; t < T; t++)
            for (int32_t n = 0; n < N; n++) y[(size_t)t * N + n] += bias[n];
}

/* ---- per-row ops -------------------------------------------------------- */

void tm_cpu_rmsnorm(float *out, const float *x, const float *w, int32_t n, float eps)
{
    double ss = 0.0;
    for (int32_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float r = (float)(1.0 / sqrt(ss / (n > 0 ? n : 1) + (double)eps));
    for (int32_t i = 0; i < n; i++) {
        float v = x[i] * r;
        out[i] = w ? v * w[i] : v;
    }
}

void tm_cpu_rope_cos_sin(const double *inv_freq, int32_t half, int32_t pos, float *cos_out,
                         float *sin_out)
{
    for (int32_t i = 0; i < half; i++) {
        double a = (double)pos * inv_freq[i];
        cos_out[i] = (float)cos(a);
        sin_out[i] = (float)sin(a);
    }
}

void tm_cpu_rope(float *v, int32_t n_heads, int32_t head_dim, const float *cos_v, const float *sin_v,
                 int interleaved)
{
    int32_t half = head_dim / 2;
    for (int32_t h = 0; h < n_heads; h++) {
        float *x = v + (size_t)h * head_dim;
        for (int32_t i = 0; i < half; i++) {
            int32_t a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
            float x0 = x[a], x1 = x[b];
            x[a] = x0 * cos_v[i] - x1 * sin_v[i];
            x[b] = x1 * cos_v[i] + x0 * sin_v[i];
        }
    }
}

/* Dot product of n floats: 8 lane sums (k = l, l+8, ...) combined pairwise,
 * then the n % 8 tail; the same order for every row. */
static inline __attribute__((always_inline)) float dot8(const float *a, const float *b, int32_t n)
{
    v8 acc = {0};
    int32_t k = 0;
    for (; k + 8 <= n; k += 8) {
        v8 x, y;
        LD8(x, a + k);
        LD8(y, b + k);
        acc += x * y;
    }
    return mm_finish(&acc, a, b, k, n);
}

TM_CLONES void tm_cpu_attention_head(const float *q, int32_t kvh, int32_t n_ctx, const tm_cpu_kv_view *kv,
                                     float scale, float *scores, float *out)
{
    int32_t hd = kv->head_dim, bs = kv->block_size;
    size_t tok_stride = (size_t)kv->n_kv_heads * hd;
    float m = -INFINITY;
    for (int32_t p = 0; p < n_ctx; p++) {
        size_t slot = (size_t)kv->block_table[p / bs] * bs + (size_t)(p % bs);
        float s = dot8(q, kv->k + slot * tok_stride + (size_t)kvh * hd, hd) * scale;
        scores[p] = s;
        if (s > m) m = s;
    }
    double sum = 0.0;
    for (int32_t p = 0; p < n_ctx; p++) {
        float e = expf(scores[p] - m);
        scores[p] = e;
        sum += e;
    }
    float inv = (float)(1.0 / sum);
    for (int32_t d = 0; d < hd; d++) out[d] = 0.0f;
    for (int32_t p = 0; p < n_ctx; p++) {
        size_t slot = (size_t)kv->block_table[p / bs] * bs + (size_t)(p % bs);
        const float *v = kv->v + slot * tok_stride + (size_t)kvh * hd;
        float wgt = scores[p] * inv;
        int32_t d = 0;
        v8 wv = {wgt, wgt, wgt, wgt, wgt, wgt, wgt, wgt};
        for (; d + 8 <= hd; d += 8) { /* element-wise: same result as the scalar loop */
            v8 o, x;
            LD8(o, out + d);
            LD8(x, v + d);
            o += wv * x;
            memcpy(out + d, &o, sizeof o);
        }
        for (; d < hd; d++) out[d] += wgt * v[d];
    }
}

static inline void decode8(const uint8_t *c, float s, const float *lut, int32_t n, float *out)
{
    for (int32_t d = 0; d < n; d++) out[d] = lut[c[d]] * s;
}

TM_CLONES void tm_cpu_attention_head_fp8(const float *q, int32_t kvh, int32_t n_ctx, const tm_cpu_kv8_view *kv,
                                         float scale, float *scores, float *tmp, float *out)
{
    int32_t hd = kv->head_dim, bs = kv->block_size;
    size_t tok_stride = (size_t)kv->n_kv_heads * hd;
    float m = -INFINITY;
    for (int32_t p = 0; p < n_ctx; p++) {
        size_t slot = (size_t)kv->block_table[p / bs] * bs + (size_t)(p % bs);
        decode8(kv->k + slot * tok_stride + (size_t)kvh * hd, kv->k_scale[slot * kv->n_kv_heads + kvh], kv->lut, hd,
                tmp);
        float s = dot8(q, tmp, hd) * scale;
        scores[p] = s;
        if (s > m) m = s;
    }
    double sum = 0.0;
    for (int32_t p = 0; p < n_ctx; p++) {
        float e = expf(scores[p] - m);
        scores[p] = e;
        sum += e;
    }
    float inv = (float)(1.0 / sum);
    for (int32_t d = 0; d < hd; d++) out[d] = 0.0f;
    for (int32_t p = 0; p < n_ctx; p++) {
        size_t slot = (size_t)kv->block_table[p / bs] * bs + (size_t)(p % bs);
        decode8(kv->v + slot * tok_stride + (size_t)kvh * hd, kv->v_scale[slot * kv->n_kv_heads + kvh], kv->lut, hd,
                tmp);
        const float *v = tmp;
        float wgt = scores[p] * inv;
        int32_t d = 0;
        v8 wv = {wgt, wgt, wgt, wgt, wgt, wgt, wgt, wgt};
        for (; d + 8 <= hd; d += 8) {
            v8 o, x;
            LD8(o, out + d);
            LD8(x, v + d);
            o += wv * x;
            memcpy(out + d, &o, sizeof o);
        }
        for (; d < hd; d++) out[d] += wgt * v[d];
    }
}

void tm_cpu_swiglu(float *gate, const float *up, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}
