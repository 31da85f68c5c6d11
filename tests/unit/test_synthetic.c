/* test_synthetic.c — synthetic full-size models and the bench's roofline.
 *
 * Checks the three synthetic configs field by field, their parameter counts
 * (llama3-8b 8,030,261,248 = Llama-3.1-8B incl. embeddings and the untied
 * lm_head), that every tensor has its HF shape and no data, that the CPU
 * backend (directly and through the engine) refuses them with a clear
 * TM_ERR_UNAVAILABLE, bad configs and names, the host copy of the device
 * init hash, and tm_bench_roofline on a hand-computed case. No GPU, no data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "tools/bench.h"
#include "engine/engine.h"
#include "kernels.h"
#include "model/model.h"

static tm_model *synth_ok(const char *name)
{
    tm_model *m = NULL;
    tm_err e = {{0}};
    tm_status s = tm_model_synthetic(name, &m, &e);
    if (s) fprintf(stderr, "%s: %s\n", name, e.msg);
    assert_int_equal(s, TM_OK);
    assert_non_null(m);
    assert_int_equal(tm_model_is_synthetic(m), 1);
    return m;
}

static void check_tensor(const tm_tensor *t, int ndim, int64_t d0, int64_t d1)
{
    assert_non_null(t->name);
    assert_null(t->data);
    assert_int_equal(t->dtype, TM_DTYPE_BF16);
    assert_int_equal(t->ndim, ndim);
    assert_int_equal(t->shape[0], d0);
    if (ndim == 2) assert_int_equal(t->shape[1], d1);
    assert_int_equal(t->nbytes, (size_t)d0 * (size_t)(ndim == 2 ? d1 : 1) * 2);
}

static void absent(const tm_tensor *t)
{
    assert_null(t->data);
    assert_int_equal(t->nbytes, 0);
}

/* Every tensor of m has the shape its config implies, and no data. */
static void check_all_tensors(const tm_model *m)
{
    const tm_model_config *c = tm_model_config_of(m);
    int64_t H = c->hidden_size, I = c->intermediate_size, V = c->vocab_size;
    int64_t Q = (int64_t)c->n_heads * c->head_dim, KV = (int64_t)c->n_kv_heads * c->head_dim;
    check_tensor(tm_model_embed(m), 2, V, H);
    check_tensor(tm_model_final_norm(m), 1, H, 0);
    check_tensor(tm_model_lm_head(m), 2, V, H);
    assert_string_equal(tm_model_lm_head(m)->name, c->tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
    for (int i = 0; i < c->n_layers; i++) {
        const tm_layer_weights *L = tm_model_layer(m, i);
        assert_non_null(L);
        check_tensor(&L->attn_norm, 1, H, 0);
        check_tensor(&L->wq, 2, Q, H);
        check_tensor(&L->wk, 2, KV, H);
        check_tensor(&L->wv, 2, KV, H);
        check_tensor(&L->wo, 2, H, Q);
        if (c->attention_bias) {
            check_tensor(&L->bq, 1, Q, 0);
            check_tensor(&L->bk, 1, KV, 0);
            check_tensor(&L->bv, 1, KV, 0);
        } else {
            absent(&L->bq), absent(&L->bk), absent(&L->bv);
        }
        absent(&L->q_norm), absent(&L->k_norm);
        check_tensor(&L->ffn_norm, 1, H, 0);
        check_tensor(&L->w_gate, 2, I, H);
        check_tensor(&L->w_up, 2, I, H);
        check_tensor(&L->w_down, 2, H, I);
    }
    assert_null(tm_model_layer(m, c->n_layers));
    assert_null(tm_model_layer(m, -1));
}

static void test_llama3_8b(void **state)
{
    (void)state;
    tm_model *m = synth_ok("llama3-8b");
    const tm_model_config *c = tm_model_config_of(m);
    assert_string_equal(tm_model_dir(m), "synthetic:llama3-8b");
    assert_int_equal(c->arch, TM_ARCH_LLAMA);
    assert_int_equal(c->vocab_size, 128256);
    assert_int_equal(c->hidden_size, 4096);
    assert_int_equal(c->intermediate_size, 14336);
    assert_int_equal(c->n_layers, 32);
    assert_int_equal(c->n_heads, 32);
    assert_int_equal(c->n_kv_heads, 8);
    assert_int_equal(c->head_dim, 128);
    assert_int_equal(c->max_position_embeddings, 131072);
    assert_true(c->rope_theta == 500000.0f);
    assert_int_equal(c->rope_scaling, TM_ROPE_LLAMA3);
    assert_true(c->rope_factor == 8.0f && c->rope_low_freq_factor == 1.0f && c->rope_high_freq_factor == 4.0f);
    assert_int_equal(c->rope_original_max_pos, 8192);
    assert_true(c->rms_norm_eps == 1e-5f);
    assert_int_equal(c->tie_word_embeddings, 0);
    assert_int_equal(c->attention_bias, 0);
    assert_int_equal(c->qk_norm, 0);
    assert_int_equal(c->n_eos, 3);
    assert_int_equal(c->eos_token_ids[0], 128001);
    assert_int_equal(c->eos_token_ids[1], 128008);
    assert_int_equal(c->eos_token_ids[2], 128009);
    assert_int_equal(tm_model_n_params(m), 8030261248LL);
    assert_int_equal(tm_model_n_files(m), 0);
    check_all_tensors(m);
    /* untied: lm_head is its own tensor */
    assert_ptr_not_equal(tm_model_lm_head(m), tm_model_embed(m));
    tm_model_destroy(m);
}

static void test_qwen25_7b(void **state)
{
    (void)state;
    tm_model *m = synth_ok("qwen2.5-7b");
    const tm_model_config *c = tm_model_config_of(m);
    assert_string_equal(tm_model_dir(m), "synthetic:qwen2.5-7b");
    assert_int_equal(c->arch, TM_ARCH_QWEN2);
    assert_int_equal(c->vocab_size, 152064);
    assert_int_equal(c->hidden_size, 3584);
    assert_int_equal(c->intermediate_size, 18944);
    assert_int_equal(c->n_layers, 28);
    assert_int_equal(c->n_heads, 28);
    assert_int_equal(c->n_kv_heads, 4);
    assert_int_equal(c->head_dim, 128);
    assert_int_equal(c->max_position_embeddings, 32768);
    assert_true(c->rope_theta == 1e6f);
    assert_int_equal(c->rope_scaling, TM_ROPE_NONE);
    assert_true(c->rms_norm_eps == 1e-6f);
    assert_int_equal(c->attention_bias, 1);
    assert_int_equal(c->tie_word_embeddings, 0);
    assert_int_equal(c->n_eos, 2);
    assert_int_equal(c->eos_token_ids[0], 151645);
    assert_int_equal(c->eos_token_ids[1], 151643);
    assert_int_equal(tm_model_n_params(m), 7615616512LL); /* Qwen2.5-7B: 7.61e9 */
    check_all_tensors(m);
    tm_model_destroy(m);
}

static void test_deepseek_7b(void **state)
{
    (void)state;
    tm_model *m = synth_ok("deepseek-llm-7b");
    const tm_model_config *c = tm_model_config_of(m);
    assert_int_equal(c->arch, TM_ARCH_LLAMA);
    assert_int_equal(c->vocab_size, 102400);
    assert_int_equal(c->hidden_size, 4096);
    assert_int_equal(c->intermediate_size, 11008);
    assert_int_equal(c->n_layers, 30);
    assert_int_equal(c->n_heads, 32);
    assert_int_equal(c->n_kv_heads, 32);
    assert_int_equal(c->head_dim, 128);
    assert_int_equal(c->max_position_embeddings, 4096);
    assert_true(c->rope_theta == 10000.0f);
    assert_true(c->rms_norm_eps == 1e-6f);
    assert_int_equal(c->n_eos, 1);
    assert_int_equal(c->eos_token_ids[0], 100001);
    assert_int_equal(tm_model_n_params(m), 6910365696LL); /* deepseek-llm-7b: 6.91e9 */
    check_all_tensors(m);
    tm_model_destroy(m);
}

static void test_unknown_and_bad(void **state)
{
    (void)state;
    tm_model *m = (tm_model *)&m;
    tm_err e = {{0}};
    assert_int_equal(tm_model_synthetic("llama3-70b", &m, &e), TM_ERR_NOTFOUND);
    assert_null(m);
    assert_non_null(strstr(e.msg, "llama3-70b"));
    assert_non_null(strstr(e.msg, "llama3-8b, qwen2.5-7b, deepseek-llm-7b"));
    assert_int_equal(tm_model_synthetic(NULL, &m, &e), TM_ERR_NOTFOUND);

    tm_model_config c;
    assert_int_equal(tm_model_synthetic_config("llama3-8b", &c, &e), TM_OK);
    tm_model_config bad = c;
    bad.n_kv_heads = 5; /* 32 % 5 != 0 */
    assert_int_equal(tm_model_synthetic_from_config(&bad, "bad", &m, &e), TM_ERR_INPUT);
    assert_null(m);
    assert_non_null(strstr(e.msg, "synthetic:bad"));
    bad = c;
    bad.head_dim = 127;
    assert_int_equal(tm_model_synthetic_from_config(&bad, "bad", &m, &e), TM_ERR_INPUT);
    bad = c;
    bad.hidden_size = 0;
    assert_int_equal(tm_model_synthetic_from_config(&bad, "bad", &m, &e), TM_ERR_INPUT);
    bad = c;
    bad.vocab_size = 1 << 30;
    assert_int_equal(tm_model_synthetic_from_config(&bad, "bad", &m, &e), TM_ERR_INPUT);
    tm_model_destroy(NULL); /* no-op */
}

/* A tiny tied config with qk_norm: lm_head aliases embed; q/k norms present. */
static void test_tiny_tied(void **state)
{
    (void)state;
    tm_model_config c;
    tm_err e = {{0}};
    assert_int_equal(tm_model_synthetic_config("qwen2.5-7b", &c, &e), TM_OK);
    c.vocab_size = 64, c.hidden_size = 32, c.intermediate_size = 48, c.n_layers = 2;
    c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8, c.tie_word_embeddings = 1, c.qk_norm = 1;
    tm_model *m = NULL;
    assert_int_equal(tm_model_synthetic_from_config(&c, "tiny", &m, &e), TM_OK);
    assert_string_equal(tm_model_dir(m), "synthetic:tiny");
    const tm_tensor *emb = tm_model_embed(m), *lm = tm_model_lm_head(m);
    assert_string_equal(lm->name, emb->name);
    assert_int_equal(lm->nbytes, emb->nbytes);
    check_tensor(&tm_model_layer(m, 1)->q_norm, 1, 8, 0);
    check_tensor(&tm_model_layer(m, 1)->k_norm, 1, 8, 0);
    /* tied: embed once; + final norm; per layer qkv, o, mlp, 2 norms, qkv bias, q/k norm */
    int64_t layer = 32 * (32 + 32) + 32 * 32 + 3 * 32 * 48 + 2 * 32 + (32 + 32) + 2 * 8;
    assert_int_equal(tm_model_n_params(m), 64 * 32 + 32 + 2 * layer);
    tm_model_destroy(m);
}

static void test_cpu_refuses(void **state)
{
    (void)state;
    tm_model *m = synth_ok("llama3-8b");
    tm_backend_opts o = {.n_blocks = 4, .block_size = 16, .max_batch_tokens = 16, .max_seqs = 1, .n_threads = 1};
    tm_backend *b = (tm_backend *)&b;
    tm_err e = {{0}};
    assert_int_equal(tm_backend_cpu.create(m, &o, &b, &e), TM_ERR_UNAVAILABLE);
    assert_null(b);
    assert_non_null(strstr(e.msg, "synthetic models run on the CUDA backend only"));
    assert_non_null(strstr(e.msg, "synthetic:llama3-8b"));
    /* through the engine too (what bench engine --device cpu does) */
    tm_engine_config ec = {.block_size = 16, .n_blocks = 4, .max_batch_tokens = 16, .max_seqs = 1,
                           .max_requests = 2, .max_context = 64, .n_threads = 1};
    tm_engine *eng = (tm_engine *)&eng;
    memset(&e, 0, sizeof e);
    assert_int_equal(tm_engine_create(&tm_backend_cpu, m, &ec, &eng, &e), TM_ERR_UNAVAILABLE);
    assert_null(eng);
    assert_non_null(strstr(e.msg, "synthetic models run on the CUDA backend only"));
    tm_model_destroy(m);
}

/* The host copy of the device init hash: deterministic, in [-1, 1),
 * centred, and different per tensor (seed). */
static void test_init_hash(void **state)
{
    (void)state;
    const int n = 200000;
    double sum = 0, sumsq = 0;
    int same = 0;
    float lo = 1, hi = -1;
    for (int i = 0; i < n; i++) {
        float u = tm_k_synth_uniform(7, i);
        assert_true(u >= -1.0f && u < 1.0f);
        assert_true(u == tm_k_synth_uniform(7, i));
        same += u == tm_k_synth_uniform(8, i);
        sum += u;
        sumsq += (double)u * u;
        if (u < lo) lo = u;
        if (u > hi) hi = u;
    }
    double mean = sum / n, var = sumsq / n - mean * mean;
    assert_true(fabs(mean) < 0.01);          /* sd of the mean ~ 0.0013 */
    assert_true(fabs(var - 1.0 / 3) < 0.01); /* uniform on [-1, 1) */
    assert_true(lo < -0.999f && hi > 0.999f);
    assert_true(same < 10);
    /* large element indices (past 2^32) still vary */
    assert_true(tm_k_synth_uniform(0, (int64_t)1 << 33) != tm_k_synth_uniform(0, ((int64_t)1 << 33) + 1));
}

/* Hand-computed: step A is bandwidth-bound, step B compute-bound.
 *   A: bytes = 1000 + 4 * (10 + 2) = 1048 -> 10.48 s;
 *      flops = 2*100*2 + 2*10*2 + 2*10 = 460 -> 0.92 s       => 10.48
 *   B: bytes = 1000 + 4 * (50 + 50) = 1400 -> 14 s;
 *      flops = 2*100*50 + 2*10*1 + 2*1275 = 12570 -> 25.14 s => 25.14 */
static void test_roofline(void **state)
{
    (void)state;
    tm_bench_roofline_model rm = {.weight_bytes = 1000, .layer_params = 100, .lm_head_params = 10,
                                  .kv_bytes_per_token = 4, .attn_flops_per_ctx = 2, .bandwidth = 100,
                                  .peak_flops = 500};
    tm_bench_roofline_step st[2] = {{.n_tokens = 2, .n_logits = 2, .ctx_seq_sum = 10, .ctx_tok_sum = 10},
                                    {.n_tokens = 50, .n_logits = 1, .ctx_seq_sum = 50, .ctx_tok_sum = 1275}};
    tm_bench_roofline_sum sum = {0};
    double t = tm_bench_roofline(&rm, st, 2, &sum);
    assert_true(fabs(t - 35.62) < 1e-9);
    assert_true(fabs(sum.floor_s - 35.62) < 1e-9);
    assert_true(fabs(sum.bytes - 2448) < 1e-9);
    assert_true(fabs(sum.flops - 13030) < 1e-9);
    /* accumulates; one step at a time gives the same total */
    tm_bench_roofline_sum one = {0};
    assert_true(fabs(tm_bench_roofline(&rm, &st[0], 1, &one) - 10.48) < 1e-9);
    assert_true(fabs(tm_bench_roofline(&rm, &st[1], 1, &one) - 25.14) < 1e-9);
    assert_true(fabs(one.floor_s - sum.floor_s) < 1e-9);
    assert_true(tm_bench_roofline(&rm, st, 0, NULL) == 0);

    /* llama3-8b decode of 256 sequences at context 192 on an H200: weights
     * (no embedding table) 15.01e9 B + KV 256*192*131072 B = 6.44e9 B ->
     * 4.47 ms, just above the 3.9 ms of its 3.87e12 flops at 989e12 */
    double L = 32, H = 4096, I = 14336, Q = 4096, KV = 1024, V = 128256;
    tm_bench_roofline_model ll = {.layer_params = L * (H * (Q + 2 * KV) + Q * H + 3 * H * I),
                                  .lm_head_params = V * H, .kv_bytes_per_token = 2 * L * KV * 2,
                                  .attn_flops_per_ctx = 4 * L * 32 * 128, .bandwidth = 4.8e12, .peak_flops = 989e12};
    ll.weight_bytes = 2 * (ll.layer_params + ll.lm_head_params);
    tm_bench_roofline_step d = {.n_tokens = 256, .n_logits = 256, .ctx_seq_sum = 256 * 192, .ctx_tok_sum = 256 * 192};
    double f = tm_bench_roofline(&ll, &d, 1, NULL);
    double bytes = ll.weight_bytes + ll.kv_bytes_per_token * (256.0 * 192 + 256);
    assert_true(fabs(f - bytes / 4.8e12) < 1e-12);
    assert_true(f > 3.5e-3 && f < 4.6e-3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama3_8b),       cmocka_unit_test(test_qwen25_7b),
        cmocka_unit_test(test_deepseek_7b),     cmocka_unit_test(test_unknown_and_bad),
        cmocka_unit_test(test_tiny_tied),       cmocka_unit_test(test_cpu_refuses),
        cmocka_unit_test(test_init_hash),       cmocka_unit_test(test_roofline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
