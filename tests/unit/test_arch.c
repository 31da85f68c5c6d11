/* test_arch.c — the weight table (model/arch.h) and the memory plans derived from it.
 *
 * The table is well formed (rows in id order, per-layer fields inside
 * tm_layer_weights, seven projections); every test model loads exactly the
 * rows its features ask for, with the table's shapes, and the elements the
 * model holds equal the elements stored in its model.safetensors; parameter
 * counts of the synthetic configs match the closed formula; the CPU
 * backend's mem_plan agrees with kv_block_bytes and with fp8 / fp32 KV
 * layouts, and a backend created with it works; with CUDA built in, the
 * CUDA plan of full-size synthetic models equals the device layout's closed
 * formula (no GPU needed: the plan allocates nothing). Models skip (77
 * from main) without TOKENMILL_TESTDATA.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/backend.h"
#include "model/arch.h"
#include "model/model.h"
#include "model/safetensors.h"
#ifdef TOKENMILL_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

static char models_dir[4096];

static void test_table_well_formed(void **state)
{
    (void)state;
    int n_proj = 0;
    for (int id = 0; id < TM_W_COUNT; id++) {
        const tm_wspec *s = tm_arch_spec((tm_wid)id);
        assert_non_null(s);
        assert_int_equal(s->id, id);
        assert_true(s->ndim == 1 || s->ndim == 2);
        size_t len = strlen(s->name);
        int bias = len > 5 && !strcmp(s->name + len - 5, ".bias");
        int weight = len > 7 && !strcmp(s->name + len - 7, ".weight");
        assert_true(bias || weight);
        assert_int_equal(bias, s->role == TM_WR_BIAS);
        if (tm_arch_is_layer(s->id)) {
            assert_true(s->field + sizeof(tm_tensor) <= sizeof(tm_layer_weights));
            assert_int_equal(s->field % sizeof(void *), 0);
            for (int j = TM_W_LAYER_FIRST; j < id; j++) assert_int_not_equal(tm_arch_spec((tm_wid)j)->field, s->field);
        }
        if (s->role == TM_WR_PROJ) {
            n_proj++;
            assert_true(tm_arch_is_layer(s->id));
            assert_int_equal(s->ndim, 2);
        }
    }
    assert_int_equal(n_proj, TM_W_N_PROJ);
    assert_null(tm_arch_spec(TM_W_COUNT));
    assert_null(tm_arch_spec((tm_wid)-1));
    assert_int_equal(sizeof(tm_layer_weights), (TM_W_COUNT - TM_W_LAYER_FIRST) * sizeof(tm_tensor));
    char buf[64];
    tm_arch_name(tm_arch_spec(TM_W_K_NORM), 12, buf, sizeof buf);
    assert_string_equal(buf, "model.layers.12.self_attn.k_norm.weight");
    tm_arch_name(tm_arch_spec(TM_W_LM_HEAD), 12, buf, sizeof buf);
    assert_string_equal(buf, "lm_head.weight");
    tm_arch_name(tm_arch_spec(TM_W_Q), 3, buf, 12);
    assert_string_equal(buf, "model.layer");
}

/* The old closed formula: embeddings, lm_head when untied, final norm, and
 * per layer the four attention and three MLP matrices, two norms, optional
 * biases and q/k norms. */
static int64_t params_formula(const tm_model_config *c)
{
    int64_t H = c->hidden_size, I = c->intermediate_size, V = c->vocab_size, L = c->n_layers;
    int64_t Q = (int64_t)c->n_heads * c->head_dim, KV = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t layer = H * (Q + 2 * KV) + Q * H + 3 * H * I + 2 * H;
    if (c->attention_bias) layer += Q + 2 * KV;
    if (c->qk_norm) layer += 2 * (int64_t)c->head_dim;
    return V * H * (c->tie_word_embeddings ? 1 : 2) + H + L * layer;
}

static void test_synthetic_from_table(void **state)
{
    (void)state;
    const char *names[] = {"llama3-8b", "qwen2.5-7b", "deepseek-llm-7b"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        tm_model *m = NULL;
        tm_err err;
        assert_int_equal(tm_model_synthetic(names[k], &m, &err), TM_OK);
        const tm_model_config *c = tm_model_config_of(m);
        assert_int_equal(tm_model_n_params(m), params_formula(c));
        int64_t elems = 0;
        for (int id = 0; id < TM_W_COUNT; id++) {
            const tm_wspec *s = tm_arch_spec((tm_wid)id);
            int nl = tm_arch_is_layer(s->id) ? c->n_layers : 1;
            for (int l = 0; l < nl; l++) {
                const tm_tensor *t = tm_model_weight(m, (tm_wid)id, l);
                assert_non_null(t);
                assert_int_equal(tm_tensor_present(t), tm_arch_has(c, s));
                if (!tm_tensor_present(t)) continue;
                assert_int_equal(t->nbytes, (size_t)tm_arch_elems(c, s) * 2);
                if (id == TM_W_LM_HEAD && c->tie_word_embeddings) continue;
                elems += tm_arch_elems(c, s);
            }
        }
        assert_int_equal(tm_model_lm_head_tied(m), c->tie_word_embeddings);
        assert_int_equal(tm_model_weight_elems(m), elems);
        assert_int_equal(tm_model_weight_elems(m), tm_model_n_params(m));
        assert_null(tm_model_weight(m, TM_W_Q, c->n_layers));
        assert_null(tm_model_weight(m, TM_W_Q, -1));
        assert_null(tm_model_weight(m, TM_W_COUNT, 0));
        tm_model_destroy(m);
    }
}

/* Every test model: rows present exactly when the config has them, with the
 * table's shapes; the model holds what its file stores. */
static void test_models_follow_table(void **state)
{
    (void)state;
    const char *names[] = {"llama-mini", "llama31-mini", "qwen2-mini", "qwen3-mini", "mistral-tok-mini"};
    int saw_bias = 0, saw_qk_norm = 0, saw_tied = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char dir[4200], path[4300];
        snprintf(dir, sizeof dir, "%s/%s", models_dir, names[k]);
        tm_model *m = NULL;
        tm_err err;
        assert_int_equal(tm_model_load(dir, &m, &err), TM_OK);
        const tm_model_config *c = tm_model_config_of(m);
        saw_bias |= c->attention_bias;
        saw_qk_norm |= c->qk_norm;
        saw_tied |= tm_model_lm_head_tied(m);
        for (int id = 0; id < TM_W_COUNT; id++) {
            const tm_wspec *s = tm_arch_spec((tm_wid)id);
            int nl = tm_arch_is_layer(s->id) ? c->n_layers : 1;
            for (int l = 0; l < nl; l++) {
                const tm_tensor *t = tm_model_weight(m, (tm_wid)id, l);
                assert_int_equal(tm_tensor_present(t), tm_arch_has(c, s));
                if (!tm_tensor_present(t)) continue;
                assert_int_equal(t->ndim, s->ndim);
                for (int d = 0; d < s->ndim; d++) assert_int_equal(t->shape[d], tm_arch_dim(c, s->dim[d]));
            }
        }
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        tm_safetensors *st = NULL;
        assert_int_equal(tm_safetensors_open(path, &st, &err), TM_OK);
        int64_t stored = 0;
        for (size_t i = 0; i < tm_safetensors_count(st); i++) {
            const tm_tensor *t = tm_safetensors_at(st, i);
            int64_t n = 1;
            for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
            stored += n;
        }
        tm_safetensors_destroy(st);
        assert_int_equal(tm_model_weight_elems(m), stored);
        if (!c->tie_word_embeddings || tm_model_lm_head_tied(m)) assert_int_equal(stored, tm_model_n_params(m));
        tm_model_destroy(m);
    }
    assert_true(saw_bias && saw_qk_norm && saw_tied); /* every optional row was exercised */
}

static void test_cpu_mem_plan(void **state)
{
    (void)state;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/qwen3-mini", models_dir);
    tm_model *m = NULL;
    tm_err err;
    assert_int_equal(tm_model_load(dir, &m, &err), TM_OK);
    const tm_model_config *c = tm_model_config_of(m);
    int64_t KV = (int64_t)c->n_kv_heads * c->head_dim, L2 = 2 * (int64_t)c->n_layers;
    tm_backend_opts o = {.n_blocks = 8, .block_size = 16, .max_batch_tokens = 64, .max_seqs = 4, .n_threads = 2};
    tm_backend_mem p;
    assert_int_equal(tm_backend_cpu.mem_plan(m, &o, &p, &err), TM_OK);
    assert_int_equal(p.kv_block, (int64_t)tm_backend_cpu.kv_block_bytes(m, 16));
    assert_int_equal(p.kv_block, 16 * L2 * KV * 4);
    /* packed bf16 panels (gemm.h) for the matrices, float32 for the vectors:
     * at least 2 bytes and under 4 per weight for this bf16 model */
    assert_true(p.weights >= tm_model_weight_elems(m) * 2 && p.weights < tm_model_weight_elems(m) * 4);
    o.flags = TM_BACKEND_BLAS_GEMM; /* BLAS mode: every weight as float32 */
    assert_int_equal(tm_backend_cpu.mem_plan(m, &o, &p, &err), TM_OK);
    assert_int_equal(p.weights, tm_model_weight_elems(m) * 4 + (c->head_dim / 2) * 8);
    o.flags = 0;
    assert_int_equal(tm_backend_cpu.mem_plan(m, &o, &p, &err), TM_OK);
    assert_int_equal(p.per_block, 2 * 16 * 4); /* attention scores: threads x block tokens */
    assert_true(p.scratch >= 64 * (int64_t)c->hidden_size * 4);
    assert_int_equal(p.reserve, 0);
    o.kv_dtype = TM_KV_FP8;
    assert_int_equal(tm_backend_cpu.mem_plan(m, &o, &p, &err), TM_OK);
    assert_int_equal(p.kv_block, 16 * L2 * (KV + 4 * c->n_kv_heads));
    /* sizing arithmetic: avail minus the fixed parts, over a block's share */
    tm_backend_mem q = {.weights = 100, .kv_block = 10, .per_block = 5, .scratch = 20, .reserve = 30};
    assert_int_equal(tm_backend_mem_kv_blocks(&q, 150 + 75), 5);
    assert_int_equal(tm_backend_mem_kv_blocks(&q, 149), 0);
    assert_int_equal(tm_backend_mem_kv_blocks(&q, -5), 0);
    /* a backend created with the plan's pool runs */
    o.n_blocks = (int32_t)tm_backend_mem_kv_blocks(&p, p.weights + p.scratch + 8 * (p.kv_block + p.per_block));
    assert_int_equal(o.n_blocks, 8);
    tm_backend *b = NULL;
    assert_int_equal(tm_backend_cpu.create(m, &o, &b, &err), TM_OK);
    int32_t tok[3] = {1, 2, 3}, pos[3] = {0, 1, 2}, ss[2] = {0, 3}, len[1] = {3}, tab[8] = {7}, rows[1] = {2};
    float *logits = malloc(sizeof(float) * (size_t)c->vocab_size);
    tm_batch bt = {.n_tokens = 3, .token_ids = tok, .positions = pos, .n_seqs = 1, .seq_start = ss,
                   .seq_len = len, .block_tables = tab, .max_blocks = 8, .n_logits = 1, .logit_rows = rows,
                   .logits = logits};
    assert_int_equal(tm_backend_cpu.forward(b, &bt, &err), TM_OK);
    free(logits);
    tm_backend_cpu.destroy(b);
    o.max_seqs = 0;
    assert_int_equal(tm_backend_cpu.mem_plan(m, &o, &p, &err), TM_ERR_USAGE);
    tm_model_destroy(m);
}

#ifdef TOKENMILL_HAVE_CUDA
static int64_t al(int64_t n) { return (n + 255) / 256 * 256; }

/* The device layout: embed, lm_head when untied, final norm, inv_freq, then
 * per layer [q;k;v], o, [gate;up], down (bf16), two norms, [bq;bk;bv] and
 * q/k norms when present (fp32), each run aligned to 256 bytes. */
static int64_t cuda_layout_formula(const tm_model_config *c)
{
    int64_t H = c->hidden_size, I = c->intermediate_size, V = c->vocab_size, hd = c->head_dim;
    int64_t Q = (int64_t)c->n_heads * hd, KV = (int64_t)c->n_kv_heads * hd;
    int64_t n = al(V * H * 2) + (c->tie_word_embeddings ? 0 : al(V * H * 2)) + al(H * 4) + al(hd / 2 * 8);
    int64_t layer = al((Q + 2 * KV) * H * 2) + al(H * Q * 2) + al(2 * I * H * 2) + al(H * I * 2) + 2 * al(H * 4);
    if (c->attention_bias) layer += al((Q + 2 * KV) * 4);
    if (c->qk_norm) layer += 2 * al(hd * 4);
    return n + c->n_layers * layer;
}

static void test_cuda_mem_plan(void **state)
{
    (void)state;
    const char *names[] = {"llama3-8b", "qwen2.5-7b", "deepseek-llm-7b"};
    tm_backend_opts o = {.block_size = 16, .max_batch_tokens = 2048, .max_seqs = 32};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        tm_model *m = NULL;
        tm_err err;
        assert_int_equal(tm_model_synthetic(names[k], &m, &err), TM_OK);
        const tm_model_config *c = tm_model_config_of(m);
        tm_backend_mem p;
        assert_int_equal(tm_backend_cuda.mem_plan(m, &o, &p, &err), TM_OK);
        assert_int_equal(p.weights, cuda_layout_formula(c));
        assert_int_equal(p.kv_block, (int64_t)tm_backend_cuda.kv_block_bytes(m, 16));
        assert_int_equal(p.kv_block, 16 * 2 * (int64_t)c->n_layers * c->n_kv_heads * c->head_dim * 2);
        assert_int_equal(p.per_block, 32 * 4);
        tm_backend_opts f8 = o;
        f8.kv_dtype = TM_KV_FP8;
        assert_int_equal(tm_backend_cuda.mem_plan(m, &f8, &p, &err), TM_ERR_UNAVAILABLE);
        tm_model_destroy(m);
    }
}
#endif

int main(void)
{
    const struct CMUnitTest always[] = {
        cmocka_unit_test(test_table_well_formed),
        cmocka_unit_test(test_synthetic_from_table),
#ifdef TOKENMILL_HAVE_CUDA
        cmocka_unit_test(test_cuda_mem_plan),
#endif
    };
    int rc = cmocka_run_group_tests_name("arch", always, NULL, NULL);
    const char *td = getenv("TOKENMILL_TESTDATA");
    struct stat sb;
    if (!td || !*td) {
        printf("SKIP (models): TOKENMILL_TESTDATA is not set\n");
        return rc;
    }
    snprintf(models_dir, sizeof models_dir, "%s/models", td);
    if (stat(models_dir, &sb) || !S_ISDIR(sb.st_mode)) {
        printf("SKIP (models): %s is absent\n", models_dir);
        return rc;
    }
    const struct CMUnitTest with_models[] = {
        cmocka_unit_test(test_models_follow_table),
        cmocka_unit_test(test_cpu_mem_plan),
    };
    return rc | cmocka_run_group_tests_name("arch_models", with_models, NULL, NULL);
}
