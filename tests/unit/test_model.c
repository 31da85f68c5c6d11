/* test_model.c — tm_model_load on the shared test models, sharded copies, hostile dirs.
 *
 * Loads the five models of $TOKENMILL_TESTDATA/models and checks config values
 * and known bf16 weights (values read from the files with python3), re-writes
 * a model as 2 shards + index json and checks identical tensors, and checks
 * that each broken directory fails with a message naming the problem.
 * config.json parsing tests need no data; the rest skip (77) without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <sys/stat.h>

#include "model/model.h"
#include "model/safetensors.h"
#include "test_safetensors_util.h"

static char g_models[1024];

static void model_path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", g_models, name); }

static tm_model *load_ok(const char *name)
{
    char p[4096];
    model_path(p, sizeof p, name);
    tm_model *m = NULL;
    tm_err e = { { 0 } };
    tm_status s = tm_model_load(p, &m, &e);
    if (s) fprintf(stderr, "load %s: %s\n", p, e.msg);
    assert_int_equal(s, TM_OK);
    assert_non_null(m);
    return m;
}

static uint16_t u16_at(const tm_tensor *t, size_t i)
{
    const uint8_t *p = (const uint8_t *)t->data + 2 * i;
    return (uint16_t)(p[0] | (p[1] << 8));
}

static void check_shape2(const tm_tensor *t, int64_t a, int64_t b)
{
    assert_non_null(t->data);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], a);
    assert_int_equal(t->shape[1], b);
    assert_int_equal(t->nbytes, (size_t)(a * b) * tm_dtype_size(t->dtype));
}

static void check_shape1(const tm_tensor *t, int64_t a)
{
    assert_non_null(t->data);
    assert_int_equal(t->ndim, 1);
    assert_int_equal(t->shape[0], a);
}

/* ---- the five shared models ------------------------------------------------ */

static void test_llama_mini(void **state)
{
    (void)state;
    tm_model *m = load_ok("llama-mini");
    const tm_model_config *c = tm_model_config_of(m);
    assert_int_equal(c->arch, TM_ARCH_LLAMA);
    assert_string_equal(c->model_type, "llama");
    assert_int_equal(c->vocab_size, 512);
    assert_int_equal(c->hidden_size, 128);
    assert_int_equal(c->intermediate_size, 352);
    assert_int_equal(c->n_layers, 2);
    assert_int_equal(c->n_heads, 4);
    assert_int_equal(c->n_kv_heads, 2);
    assert_int_equal(c->head_dim, 32);
    assert_int_equal(c->max_position_embeddings, 4096);
    assert_true(fabsf(c->rms_norm_eps - 1e-5f) < 1e-12f);
    assert_true(c->rope_theta == 10000.0f);
    assert_int_equal(c->rope_scaling, TM_ROPE_NONE);
    assert_int_equal(c->tie_word_embeddings, 0);
    assert_int_equal(c->attention_bias, 0);
    assert_int_equal(c->qk_norm, 0);
    assert_int_equal(c->dtype, TM_DTYPE_BF16);
    assert_int_equal(c->bos_token_id, 1);
    assert_int_equal(c->n_eos, 1);
    assert_int_equal(c->eos_token_ids[0], 2);
    assert_int_equal(c->has_temperature, 0);
    assert_int_equal(tm_model_n_files(m), 1);

    const tm_tensor *emb = tm_model_embed(m), *lm = tm_model_lm_head(m);
    check_shape2(emb, 512, 128);
    check_shape2(lm, 512, 128);
    assert_ptr_not_equal(emb->data, lm->data);
    assert_string_equal(emb->name, "model.embed_tokens.weight");
    assert_int_equal(emb->dtype, TM_DTYPE_BF16);
    uint16_t want_emb[4] = { 0xbc7a, 0xbd8e, 0x3f25, 0x3f8c };
    uint16_t want_lm[4] = { 0x3de9, 0xbe47, 0xbc83, 0x3ec3 };
    for (int i = 0; i < 4; i++) {
        assert_int_equal(u16_at(emb, (size_t)i), want_emb[i]);
        assert_int_equal(u16_at(lm, (size_t)i), want_lm[i]);
    }
    float f[4];
    tm_dtype_to_f32(emb->dtype, emb->data, f, 4);
    assert_true(f[0] == -0.0152587890625f && f[1] == -0.0693359375f);
    assert_true(f[2] == 0.64453125f && f[3] == 1.09375f);
    check_shape1(tm_model_final_norm(m), 128);
    for (int l = 0; l < 2; l++) {
        const tm_layer_weights *L = tm_model_layer(m, l);
        assert_non_null(L);
        check_shape1(&L->attn_norm, 128);
        check_shape2(&L->wq, 128, 128);
        check_shape2(&L->wk, 64, 128);
        check_shape2(&L->wv, 64, 128);
        check_shape2(&L->wo, 128, 128);
        check_shape1(&L->ffn_norm, 128);
        check_shape2(&L->w_gate, 352, 128);
        check_shape2(&L->w_up, 352, 128);
        check_shape2(&L->w_down, 128, 352);
        assert_null(L->bq.data);
        assert_null(L->q_norm.data);
    }
    assert_null(tm_model_layer(m, 2));
    assert_null(tm_model_layer(m, -1));
    assert_true(strstr(tm_model_dir(m), "llama-mini") != NULL);
    tm_model_destroy(m);
    tm_model_destroy(NULL);
}

static void test_llama31_mini(void **state)
{
    (void)state;
    tm_model *m = load_ok("llama31-mini");
    const tm_model_config *c = tm_model_config_of(m);
    assert_int_equal(c->arch, TM_ARCH_LLAMA);
    assert_int_equal(c->n_kv_heads, 1);
    assert_true(c->rope_theta == 500000.0f);
    assert_int_equal(c->rope_scaling, TM_ROPE_LLAMA3);
    assert_true(c->rope_factor == 8.0f);
    assert_true(c->rope_low_freq_factor == 1.0f);
    assert_true(c->rope_high_freq_factor == 4.0f);
    assert_int_equal(c->rope_original_max_pos, 8192);
    const tm_layer_weights *L = tm_model_layer(m, 1);
    check_shape2(&L->wk, 32, 128);
    check_shape2(&L->w_down, 128, 352);
    uint16_t want[4] = { 0xbc20, 0x3c75, 0xbca1, 0xbd11 };
    for (int i = 0; i < 4; i++) assert_int_equal(u16_at(&L->w_down, (size_t)i), want[i]);
    tm_model_destroy(m);
}

static void test_qwen2_mini(void **state)
{
    (void)state;
    tm_model *m = load_ok("qwen2-mini");
    const tm_model_config *c = tm_model_config_of(m);
    assert_int_equal(c->arch, TM_ARCH_QWEN2);
    assert_int_equal(c->tie_word_embeddings, 1);
    assert_int_equal(c->attention_bias, 1);
    assert_true(fabsf(c->rms_norm_eps - 1e-6f) < 1e-13f);
    assert_true(c->rope_theta == 1000000.0f);
    /* tied: lm_head is the embedding */
    assert_ptr_equal(tm_model_lm_head(m)->data, tm_model_embed(m)->data);
    check_shape2(tm_model_lm_head(m), 512, 128);
    for (int l = 0; l < 2; l++) {
        const tm_layer_weights *L = tm_model_layer(m, l);
        check_shape1(&L->bq, 128);
        check_shape1(&L->bk, 64);
        check_shape1(&L->bv, 64);
        assert_null(L->q_norm.data);
    }
    const tm_tensor *bk = &tm_model_layer(m, 1)->bk;
    assert_string_equal(bk->name, "model.layers.1.self_attn.k_proj.bias");
    float f[4];
    tm_dtype_to_f32(bk->dtype, bk->data, f, 4);
    assert_true(f[0] == 0.109375f && f[1] == 0.0224609375f && f[2] == -0.064453125f && f[3] == 0.1376953125f);
    tm_model_destroy(m);
}

static void test_qwen3_mini(void **state)
{
    (void)state;
    tm_model *m = load_ok("qwen3-mini");
    const tm_model_config *c = tm_model_config_of(m);
    assert_int_equal(c->arch, TM_ARCH_QWEN3);
    assert_int_equal(c->head_dim, 48);
    assert_int_equal(c->qk_norm, 1);
    assert_int_equal(c->attention_bias, 0);
    assert_int_equal(c->tie_word_embeddings, 0);
    const tm_layer_weights *L = tm_model_layer(m, 0);
    check_shape2(&L->wq, 192, 128);
    check_shape2(&L->wk, 96, 128);
    check_shape2(&L->wv, 96, 128);
    check_shape2(&L->wo, 128, 192);
    check_shape1(&L->q_norm, 48);
    check_shape1(&L->k_norm, 48);
    assert_null(L->bq.data);
    uint16_t want[4] = { 0x3f86, 0x3f83, 0x3f75, 0x3f7f };
    for (int i = 0; i < 4; i++) assert_int_equal(u16_at(&L->q_norm, (size_t)i), want[i]);
    tm_model_destroy(m);
}

static void test_mistral_tok_mini(void **state)
{
    (void)state;
    tm_model *m = load_ok("mistral-tok-mini");
    const tm_model_config *c = tm_model_config_of(m);
    assert_int_equal(c->arch, TM_ARCH_LLAMA);
    assert_int_equal(c->vocab_size, 32000);
    assert_int_equal(c->hidden_size, 64);
    assert_int_equal(c->intermediate_size, 160);
    assert_int_equal(c->tie_word_embeddings, 1);
    assert_int_equal(c->n_eos, 1); /* generation_config repeats eos 2 */
    assert_int_equal(c->eos_token_ids[0], 2);
    assert_ptr_equal(tm_model_lm_head(m)->data, tm_model_embed(m)->data);
    check_shape2(tm_model_embed(m), 32000, 64);
    uint16_t want[4] = { 0x3e0f, 0xbd03, 0xbf7c, 0xbe86 };
    for (int i = 0; i < 4; i++) assert_int_equal(u16_at(tm_model_embed(m), (size_t)i), want[i]);
    tm_model_destroy(m);
}

/* ---- a working copy of a model dir, for sharding and breaking -------------- */

static void copy_config(const char *model, const char *dst)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s/config.json", g_models, model);
    char *txt = tu_slurp(p, NULL);
    assert_non_null(txt);
    assert_int_equal(tu_write_text(dst, "config.json", txt), 0);
    free(txt);
}

/* Writes the tensors of MODEL/model.safetensors for which keep(i) into dst/name.
 * skip: a tensor name to drop (or NULL). part: -1 all, else i % 2 == part. */
static void write_subset(const char *model, const char *dst, const char *name, const char *skip, int part,
                         int misalign)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s/model.safetensors", g_models, model);
    tm_safetensors *st = NULL;
    assert_int_equal(tm_safetensors_open(p, &st, NULL), TM_OK);
    size_t n = tm_safetensors_count(st), k = 0;
    tu_tensor *ts = calloc(n, sizeof *ts);
    for (size_t i = 0; i < n; i++) {
        const tm_tensor *t = tm_safetensors_at(st, i);
        if (skip && !strcmp(t->name, skip)) continue;
        if (part >= 0 && (int)(i % 2) != part) continue;
        ts[k] = (tu_tensor){ t->name, tm_dtype_name(t->dtype), t->ndim,
                             { t->shape[0], t->shape[1], t->shape[2], t->shape[3] }, t->data, t->nbytes };
        k++;
    }
    size_t len = 0;
    unsigned char *img = tu_build(ts, k, misalign, &len);
    snprintf(p, sizeof p, "%s/%s", dst, name);
    assert_int_equal(tu_write(p, img, len), 0);
    free(img);
    free(ts);
    tm_safetensors_destroy(st);
}

static void write_index(const char *model, const char *dst, const char *shard0, const char *shard1)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s/model.safetensors", g_models, model);
    tm_safetensors *st = NULL;
    assert_int_equal(tm_safetensors_open(p, &st, NULL), TM_OK);
    json_t *wm = json_object();
    for (size_t i = 0; i < tm_safetensors_count(st); i++)
        json_object_set_new(wm, tm_safetensors_at(st, i)->name, json_string(i % 2 ? shard1 : shard0));
    json_t *root = json_pack("{s:{s:i}, s:o}", "metadata", "total_size", 0, "weight_map", wm);
    char *txt = json_dumps(root, JSON_INDENT(2));
    assert_int_equal(tu_write_text(dst, "model.safetensors.index.json", txt), 0);
    free(txt);
    json_decref(root);
    tm_safetensors_destroy(st);
}

static void same_tensor(const tm_tensor *a, const tm_tensor *b)
{
    assert_int_equal(a->data == NULL, b->data == NULL);
    if (!a->data) return;
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->dtype, b->dtype);
    assert_int_equal(a->ndim, b->ndim);
    assert_memory_equal(a->shape, b->shape, sizeof a->shape);
    assert_int_equal(a->nbytes, b->nbytes);
    assert_memory_equal(a->data, b->data, a->nbytes);
}

static void same_model(const tm_model *a, const tm_model *b)
{
    assert_memory_equal(tm_model_config_of(a), tm_model_config_of(b), sizeof(tm_model_config));
    same_tensor(tm_model_embed(a), tm_model_embed(b));
    same_tensor(tm_model_final_norm(a), tm_model_final_norm(b));
    same_tensor(tm_model_lm_head(a), tm_model_lm_head(b));
    for (int l = 0; l < tm_model_config_of(a)->n_layers; l++) {
        const tm_layer_weights *x = tm_model_layer(a, l), *y = tm_model_layer(b, l);
        const tm_tensor *tx = &x->attn_norm, *ty = &y->attn_norm;
        size_t nt = sizeof(tm_layer_weights) / sizeof(tm_tensor);
        for (size_t i = 0; i < nt; i++) same_tensor(&tx[i], &ty[i]);
    }
}

static void test_sharded(void **state)
{
    (void)state;
    const char *models[] = { "llama-mini", "qwen2-mini", "qwen3-mini" };
    for (size_t k = 0; k < 3; k++) {
        char *d = tu_mkdtemp();
        assert_non_null(d);
        copy_config(models[k], d);
        write_subset(models[k], d, "model-00001-of-00002.safetensors", NULL, 0, 0);
        write_subset(models[k], d, "model-00002-of-00002.safetensors", NULL, 1, 0);
        write_index(models[k], d, "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");
        tm_model *orig = load_ok(models[k]), *sh = NULL;
        tm_err e = { { 0 } };
        tm_status s = tm_model_load(d, &sh, &e);
        if (s) fprintf(stderr, "sharded %s: %s\n", models[k], e.msg);
        assert_int_equal(s, TM_OK);
        assert_int_equal(tm_model_n_files(sh), 2);
        same_model(orig, sh);
        tm_model_destroy(sh);
        tm_model_destroy(orig);
        tu_rmtree(d);
    }
}

/* Data starting at an odd file offset: the loader hands out aligned copies. */
static void test_misaligned_realigned(void **state)
{
    (void)state;
    char *d = tu_mkdtemp();
    copy_config("llama-mini", d);
    write_subset("llama-mini", d, "model.safetensors", NULL, -1, 1);
    tm_model *orig = load_ok("llama-mini"), *m = NULL;
    tm_err e = { { 0 } };
    tm_status s = tm_model_load(d, &m, &e);
    if (s) fprintf(stderr, "misaligned: %s\n", e.msg);
    assert_int_equal(s, TM_OK);
    assert_int_equal((uintptr_t)tm_model_embed(m)->data % 2, 0);
    assert_int_equal((uintptr_t)tm_model_layer(m, 1)->w_down.data % 2, 0);
    same_model(orig, m);
    tm_model_destroy(m);
    tm_model_destroy(orig);
    tu_rmtree(d);
}

/* ---- broken model directories ------------------------------------------------ */

static void expect_load_error(const char *dir, tm_status want, const char *sub1, const char *sub2)
{
    tm_model *m = (tm_model *)(uintptr_t)1;
    tm_err e = { { 0 } };
    tm_status s = tm_model_load(dir, &m, &e);
    if (s == TM_OK || (sub1 && !strstr(e.msg, sub1)) || (sub2 && !strstr(e.msg, sub2)))
        fprintf(stderr, "unexpected: status %d msg '%s' (wanted '%s' '%s')\n", s, e.msg, sub1 ? sub1 : "",
                sub2 ? sub2 : "");
    assert_int_equal(s, want);
    assert_null(m);
    if (sub1) assert_non_null(strstr(e.msg, sub1));
    if (sub2) assert_non_null(strstr(e.msg, sub2));
}

static void test_missing_config(void **state)
{
    (void)state;
    char *d = tu_mkdtemp();
    write_subset("llama-mini", d, "model.safetensors", NULL, -1, 0);
    expect_load_error(d, TM_ERR_NOTFOUND, "/config.json: not found", NULL);
    expect_load_error("/nonexistent/tokenmill/model", TM_ERR_NOTFOUND, "config.json", NULL);
    tu_rmtree(d);
}

static void test_missing_weights(void **state)
{
    (void)state;
    char *d = tu_mkdtemp();
    copy_config("llama-mini", d);
    expect_load_error(d, TM_ERR_NOTFOUND, "no model.safetensors or model.safetensors.index.json", NULL);
    tu_rmtree(d);
}

static void test_missing_tensor(void **state)
{
    (void)state;
    char *d = tu_mkdtemp();
    copy_config("llama-mini", d);
    write_subset("llama-mini", d, "model.safetensors", "model.layers.1.mlp.up_proj.weight", -1, 0);
    expect_load_error(d, TM_ERR_INPUT, "model.safetensors: tensor model.layers.1.mlp.up_proj.weight is missing",
                      NULL);
    tu_rmtree(d);
}

static void test_missing_lm_head_untied(void **state)
{
    (void)state;
    char *d = tu_mkdtemp();
    copy_config("llama-mini", d);
    write_subset("llama-mini", d, "model.safetensors", "lm_head.weight", -1, 0);
    expect_load_error(d, TM_ERR_INPUT, "tensor lm_head.weight is missing", "tie_word_embeddings is false");
    tu_rmtree(d);
}

static void test_misshaped_tensor(void **state)
{
    (void)state;
    char *d = tu_mkdtemp();
    /* llama-mini weights (kv heads 2) under a config that says 1 kv head */
    char p[4096];
    snprintf(p, sizeof p, "%s/llama-mini/config.json", g_models);
    json_t *cfg = json_load_file(p, 0, NULL);
    assert_non_null(cfg);
    json_object_set_new(cfg, "num_key_value_heads", json_integer(1));
    char *txt = json_dumps(cfg, 0);
    tu_write_text(d, "config.json", txt);
    free(txt);
    json_decref(cfg);
    write_subset("llama-mini", d, "model.safetensors", NULL, -1, 0);
    expect_load_error(d, TM_ERR_INPUT,
                      "/model.safetensors: tensor model.layers.0.self_attn.k_proj.weight has shape [64, 128], "
                      "expected [32, 128]",
                      NULL);
    tu_rmtree(d);
}

static void test_unsupported_arch_dir(void **state)
{
    (void)state;
    char *d = tu_mkdtemp();
    tu_write_text(d, "config.json",
                  "{\"architectures\":[\"GemmaForCausalLM\"],\"model_type\":\"gemma\",\"vocab_size\":8,"
                  "\"hidden_size\":8,\"intermediate_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":1}");
    expect_load_error(d, TM_ERR_INPUT, "/config.json: architecture 'GemmaForCausalLM' is not supported",
                      "(supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)");
    tu_rmtree(d);
}

static void test_index_escapes(void **state)
{
    (void)state;
    const char *bad[] = { "../model-00001-of-00002.safetensors", "/etc/passwd", "sub/x.safetensors", "..", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *d = tu_mkdtemp();
        copy_config("llama-mini", d);
        write_subset("llama-mini", d, "model-00001-of-00002.safetensors", NULL, 0, 0);
        write_index("llama-mini", d, "model-00001-of-00002.safetensors", bad[i]);
        expect_load_error(d, TM_ERR_INPUT, "model.safetensors.index.json: weight_map",
                          "is not a plain file name in the model directory");
        tu_rmtree(d);
    }
}

static void test_index_wrong_shard(void **state)
{
    (void)state;
    char *d = tu_mkdtemp();
    copy_config("llama-mini", d);
    write_subset("llama-mini", d, "a.safetensors", NULL, 0, 0);
    write_subset("llama-mini", d, "b.safetensors", NULL, 1, 0);
    /* swapped: every tensor is said to live in the other shard */
    write_index("llama-mini", d, "b.safetensors", "a.safetensors");
    expect_load_error(d, TM_ERR_INPUT, "is missing (the weight_map of", NULL);
    /* a shard that does not exist */
    write_index("llama-mini", d, "a.safetensors", "c.safetensors");
    expect_load_error(d, TM_ERR_NOTFOUND, "c.safetensors: cannot open", NULL);
    /* index that is not JSON */
    tu_write_text(d, "model.safetensors.index.json", "{\"weight_map\": ");
    expect_load_error(d, TM_ERR_INPUT, "model.safetensors.index.json:", "not valid JSON");
    tu_write_text(d, "model.safetensors.index.json", "{\"weight_map\": {\"x\": 3}}");
    expect_load_error(d, TM_ERR_INPUT, "weight_map: x: file name is not a string", NULL);
    tu_rmtree(d);
}

static void test_truncated_weights_file(void **state)
{
    (void)state;
    char *d = tu_mkdtemp();
    copy_config("llama-mini", d);
    tu_write_text(d, "model.safetensors", "abc");
    expect_load_error(d, TM_ERR_INPUT, "model.safetensors: file is 3 bytes, too short", NULL);
    tu_rmtree(d);
}

/* ---- config.json alone (no test data needed) -------------------------------- */

static const char *k_base =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"vocab_size\":1000,"
    "\"hidden_size\":256,\"intermediate_size\":512,\"num_hidden_layers\":3,\"num_attention_heads\":8%s}";

static tm_status parse_with(const char *extra, tm_model_config *c, tm_err *e)
{
    char buf[4096];
    snprintf(buf, sizeof buf, k_base, extra);
    return tm_model_config_parse(buf, strlen(buf), "DIR/config.json", c, e);
}

static void expect_cfg_error(const char *extra, const char *sub)
{
    tm_model_config c;
    tm_err e = { { 0 } };
    tm_status s = parse_with(extra, &c, &e);
    if (s == TM_OK || !strstr(e.msg, sub)) fprintf(stderr, "extra '%s': got '%s', want '%s'\n", extra, e.msg, sub);
    assert_int_equal(s, TM_ERR_INPUT);
    assert_non_null(strstr(e.msg, sub));
}

static void test_config_defaults(void **state)
{
    (void)state;
    tm_model_config c;
    tm_err e = { { 0 } };
    assert_int_equal(parse_with("", &c, &e), TM_OK);
    assert_int_equal(c.n_kv_heads, 8);
    assert_int_equal(c.head_dim, 32);
    assert_true(c.rope_theta == 10000.0f);
    assert_int_equal(c.rope_scaling, TM_ROPE_NONE);
    assert_int_equal(c.tie_word_embeddings, 0);
    assert_int_equal(c.bos_token_id, -1);
    assert_int_equal(c.n_eos, 0);
    /* eos as a list; head_dim explicit; rope_scaling null; "type" spelling */
    assert_int_equal(parse_with(",\"eos_token_id\":[5,7,5],\"head_dim\":64,\"rope_scaling\":null", &c, &e), TM_OK);
    assert_int_equal(c.n_eos, 2);
    assert_int_equal(c.eos_token_ids[0], 5);
    assert_int_equal(c.eos_token_ids[1], 7);
    assert_int_equal(c.head_dim, 64);
    assert_int_equal(parse_with(",\"rope_scaling\":{\"type\":\"llama3\",\"factor\":32,\"low_freq_factor\":1,"
                                "\"high_freq_factor\":4,\"original_max_position_embeddings\":8192}",
                                &c, &e),
                     TM_OK);
    assert_int_equal(c.rope_scaling, TM_ROPE_LLAMA3);
    assert_true(c.rope_factor == 32.0f);
    /* model_type alone, mistral; qwen2 gets biases without the key */
    const char *mis = "{\"model_type\":\"mistral\",\"vocab_size\":10,\"hidden_size\":8,\"intermediate_size\":8,"
                      "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":1}";
    assert_int_equal(tm_model_config_parse(mis, strlen(mis), NULL, &c, &e), TM_OK);
    assert_int_equal(c.arch, TM_ARCH_MISTRAL);
    assert_string_equal(c.model_type, "mistral");
    const char *q2 = "{\"architectures\":[\"Qwen2ForCausalLM\"],\"vocab_size\":10,\"hidden_size\":8,"
                     "\"intermediate_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":2}";
    assert_int_equal(tm_model_config_parse(q2, strlen(q2), NULL, &c, &e), TM_OK);
    assert_int_equal(c.arch, TM_ARCH_QWEN2);
    assert_int_equal(c.attention_bias, 1);
    assert_string_equal(c.model_type, "qwen2");
}

static void test_config_errors(void **state)
{
    (void)state;
    tm_model_config c;
    tm_err e = { { 0 } };
    const char *q = "{\"architectures\":[\"DeepseekV3ForCausalLM\"]}";
    assert_int_equal(tm_model_config_parse(q, strlen(q), "DIR/config.json", &c, &e), TM_ERR_INPUT);
    assert_string_equal(e.msg, "DIR/config.json: architecture 'DeepseekV3ForCausalLM' is not supported "
                               "(supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, "
                               "Qwen3ForCausalLM)");
    q = "{\"model_type\":\"gpt2\"}";
    assert_int_equal(tm_model_config_parse(q, strlen(q), "DIR/config.json", &c, &e), TM_ERR_INPUT);
    assert_non_null(strstr(e.msg, "architecture 'gpt2' is not supported"));
    q = "{\"model_type\":";
    assert_int_equal(tm_model_config_parse(q, strlen(q), "DIR/config.json", &c, &e), TM_ERR_INPUT);
    assert_non_null(strstr(e.msg, "DIR/config.json:1: not valid JSON"));
    expect_cfg_error(",\"num_key_value_heads\":3", "num_key_value_heads: 3 does not divide num_attention_heads 8");
    expect_cfg_error(",\"num_key_value_heads\":0", "num_key_value_heads: 0 is out of range");
    expect_cfg_error(",\"vocab_size\":0", "duplicate"); /* duplicate key rejected */
    expect_cfg_error(",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}",
                     "rope_scaling: rope_type 'yarn' is not supported");
    expect_cfg_error(",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8}",
                     "rope_scaling: low_freq_factor: missing");
    expect_cfg_error(",\"eos_token_id\":[1,2,3,4,5,6,7,8,9]", "more than 8 distinct ids");
    expect_cfg_error(",\"eos_token_id\":1000", "eos_token_id: 1000 is out of range [0, 1000)");
    expect_cfg_error(",\"eos_token_id\":\"x\"", "eos_token_id: not an integer");
    expect_cfg_error(",\"head_dim\":1000000", "head_dim: 1000000 is out of range");
    expect_cfg_error(",\"head_dim\":33", "head_dim: 33 is odd");
    expect_cfg_error(",\"rms_norm_eps\":\"1e-5\"", "rms_norm_eps: not a number");
    expect_cfg_error(",\"torch_dtype\":\"int8\"", "torch_dtype: 'int8' is not supported");
    expect_cfg_error(",\"hidden_act\":\"gelu\"", "hidden_act: 'gelu' is not supported");
    expect_cfg_error(",\"attention_bias\":true", "attention_bias: true is not supported for llama");
    expect_cfg_error(",\"tie_word_embeddings\":1", "tie_word_embeddings: not true/false");
    expect_cfg_error(",\"max_position_embeddings\":1000000000000", "max_position_embeddings");
    /* missing required field, and a hostile huge vocab */
    q = "{\"model_type\":\"llama\",\"vocab_size\":10000000000,\"hidden_size\":8}";
    assert_int_equal(tm_model_config_parse(q, strlen(q), "C", &c, &e), TM_ERR_INPUT);
    assert_non_null(strstr(e.msg, "C: vocab_size: 10000000000 is out of range"));
    q = "{\"model_type\":\"llama\",\"vocab_size\":10,\"hidden_size\":8}";
    assert_int_equal(tm_model_config_parse(q, strlen(q), "C", &c, &e), TM_ERR_INPUT);
    assert_string_equal(e.msg, "C: intermediate_size: missing");
    q = "[1]";
    assert_int_equal(tm_model_config_parse(q, strlen(q), "C", &c, &e), TM_ERR_INPUT);
    assert_string_equal(e.msg, "C: not a JSON object");
}

static void test_generation_config(void **state)
{
    (void)state;
    tm_model_config c;
    tm_err e = { { 0 } };
    assert_int_equal(parse_with(",\"eos_token_id\":2", &c, &e), TM_OK);
    const char *g = "{\"eos_token_id\":[9,2,11],\"temperature\":0.6,\"top_p\":0.9,\"top_k\":20}";
    assert_int_equal(tm_model_generation_config_parse(g, strlen(g), "G", &c, &e), TM_OK);
    assert_int_equal(c.n_eos, 3);
    assert_int_equal(c.eos_token_ids[0], 9);
    assert_int_equal(c.eos_token_ids[1], 2);
    assert_int_equal(c.eos_token_ids[2], 11);
    assert_true(c.has_temperature && fabsf(c.gen_temperature - 0.6f) < 1e-7f);
    assert_true(c.has_top_p && fabsf(c.gen_top_p - 0.9f) < 1e-7f);
    assert_true(c.has_top_k && c.gen_top_k == 20);
    /* config's eos kept after generation_config's */
    assert_int_equal(parse_with(",\"eos_token_id\":[2,3]", &c, &e), TM_OK);
    g = "{\"eos_token_id\":4}";
    assert_int_equal(tm_model_generation_config_parse(g, strlen(g), "G", &c, &e), TM_OK);
    assert_int_equal(c.n_eos, 3);
    assert_int_equal(c.eos_token_ids[0], 4);
    assert_int_equal(c.eos_token_ids[2], 3);
    assert_int_equal(c.has_temperature, 0);
    /* errors leave cfg unchanged */
    tm_model_config before = c;
    g = "{\"top_p\":1.5}";
    assert_int_equal(tm_model_generation_config_parse(g, strlen(g), "G", &c, &e), TM_ERR_INPUT);
    assert_string_equal(e.msg, "G: top_p: 1.5 is out of range [0, 1]");
    g = "{\"eos_token_id\":[4, 5000]}";
    assert_int_equal(tm_model_generation_config_parse(g, strlen(g), "G", &c, &e), TM_ERR_INPUT);
    assert_non_null(strstr(e.msg, "G: eos_token_id: 5000 is out of range"));
    assert_memory_equal(&before, &c, sizeof c);
}

int main(void)
{
    const struct CMUnitTest nodata[] = {
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_generation_config),
    };
    const struct CMUnitTest withdata[] = {
        cmocka_unit_test(test_llama_mini),
        cmocka_unit_test(test_llama31_mini),
        cmocka_unit_test(test_qwen2_mini),
        cmocka_unit_test(test_qwen3_mini),
        cmocka_unit_test(test_mistral_tok_mini),
        cmocka_unit_test(test_sharded),
        cmocka_unit_test(test_misaligned_realigned),
        cmocka_unit_test(test_missing_config),
        cmocka_unit_test(test_missing_weights),
        cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_missing_lm_head_untied),
        cmocka_unit_test(test_misshaped_tensor),
        cmocka_unit_test(test_unsupported_arch_dir),
        cmocka_unit_test(test_index_escapes),
        cmocka_unit_test(test_index_wrong_shard),
        cmocka_unit_test(test_truncated_weights_file),
    };
    int rc = cmocka_run_group_tests(nodata, NULL, NULL);
    if (rc) return rc;
    const char *td = getenv("TOKENMILL_TESTDATA");
    struct stat sb;
    if (td && *td) snprintf(g_models, sizeof g_models, "%s/models", td);
    if (!td || !*td || stat(g_models, &sb) != 0) {
        printf("skipping model loading tests: $TOKENMILL_TESTDATA/models not found (TOKENMILL_TESTDATA=%s)\n",
               td ? td : "(unset)");
        return 77;
    }
    return cmocka_run_group_tests(withdata, NULL, NULL);
}
