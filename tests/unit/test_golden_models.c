/* test_golden_models.c — the CPU backend against float64 reference logits.
 *
 * Per test model (testdata/models/<name>/golden.jsonl): one-batch prefill
 * logits within 1e-4 relative; a 3-chunk prefill through another block table
 * bit-identical; 12 greedy steps through the paged cache (block size 16)
 * equal up to the first reference margin below 2e-4 * max|logit|; two
 * sequences batched bit-identical to each alone; 1, 2 and 3 threads
 * bit-identical; and, to prove the checks
 * can fail, each model with its architecture-specific part switched off
 * (TM_BACKEND_DEBUG_*) must FAIL them. Skips (77) without TOKENMILL_TESTDATA.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/backend.h"
#include "model/model.h"
#include "util/buf.h"

#define REL_TOL 1e-4
#define N_BLOCKS 40
#define BS 16
#define MAX_TOKENS 512
#define MAX_SEQS 4

typedef struct golden_line {
    int32_t *prompt;
    int n_prompt;
    float *logits;       /* [V] or NULL when only the top-20 is given */
    int32_t top_ids[32];
    double top_vals[32];
    int n_top;
    int32_t greedy[12];
    double margins[12];
    int n_greedy;
} golden_line;

typedef struct model_case {
    const char *name;
    unsigned knob;       /* the architecture-specific part, switched off */
    const char *knob_name;
} model_case;

static char testdata_models[4096];

/* ---- golden.jsonl ------------------------------------------------------- */

static int parse_line(const char *text, int32_t V, golden_line *g)
{
    memset(g, 0, sizeof *g);
    json_error_t je;
    json_t *o = json_loads(text, 0, &je);
    if (!o) return -1;
    json_t *p = json_object_get(o, "prompt_ids"), *ll = json_object_get(o, "last_logits"),
           *top = json_object_get(o, "last_logits_top"), *gi = json_object_get(o, "greedy_ids"),
           *gm = json_object_get(o, "greedy_margins");
    int ok = json_is_array(p) && json_array_size(p) > 0 && json_is_array(gi) && json_is_array(gm) &&
             json_array_size(gi) == json_array_size(gm) && json_array_size(gi) <= 12;
    if (ok) {
        g->n_prompt = (int)json_array_size(p);
        g->prompt = malloc(sizeof(int32_t) * g->n_prompt);
        for (int i = 0; i < g->n_prompt; i++) g->prompt[i] = (int32_t)json_integer_value(json_array_get(p, i));
        g->n_greedy = (int)json_array_size(gi);
        for (int i = 0; i < g->n_greedy; i++) {
            g->greedy[i] = (int32_t)json_integer_value(json_array_get(gi, i));
            g->margins[i] = json_number_value(json_array_get(gm, i));
        }
        if (json_is_array(ll) && json_array_size(ll) == (size_t)V) {
            g->logits = malloc(sizeof(float) * V);
            for (int32_t i = 0; i < V; i++) g->logits[i] = (float)json_number_value(json_array_get(ll, i));
        } else if (json_is_object(top)) {
            const char *k;
            json_t *v;
            json_object_foreach(top, k, v) {
                if (g->n_top == 32) break;
                g->top_ids[g->n_top] = atoi(k);
                g->top_vals[g->n_top++] = json_number_value(v);
            }
        } else {
            ok = 0;
        }
    }
    json_decref(o);
    return ok ? 0 : -1;
}

static int load_golden(const char *model, int32_t V, golden_line **out)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/golden.jsonl", testdata_models, model);
    tm_buf b;
    tm_buf_init(&b);
    assert_int_equal(tm_read_file(path, 64 << 20, &b, NULL), TM_OK);
    golden_line *g = NULL;
    int n = 0;
    char *save = NULL;
    for (char *line = strtok_r(b.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        g = realloc(g, sizeof *g * (n + 1));
        assert_int_equal(parse_line(line, V, &g[n]), 0);
        n++;
    }
    tm_buf_free(&b);
    *out = g;
    return n;
}

static void free_golden(golden_line *g, int n)
{
    for (int i = 0; i < n; i++) free(g[i].prompt), free(g[i].logits);
    free(g);
}

/* ---- running sequences through the backend ------------------------------ */

typedef struct harness {
    tm_model *m;
    int32_t V;
    tm_backend *b;
    float *logits; /* [MAX_SEQS * V] */
} harness;

static void harness_open_threads(harness *h, const char *model, unsigned flags, int n_threads)
{
    memset(h, 0, sizeof *h);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", testdata_models, model);
    tm_err err = {{0}};
    tm_status st = tm_model_load(dir, &h->m, &err);
    if (st) fprintf(stderr, "load %s: %s\n", dir, err.msg);
    assert_int_equal(st, TM_OK);
    h->V = tm_model_config_of(h->m)->vocab_size;
    tm_backend_opts o = {.n_blocks = N_BLOCKS, .block_size = BS, .max_batch_tokens = MAX_TOKENS,
                         .max_seqs = MAX_SEQS, .n_threads = n_threads, .flags = flags};
    st = tm_backend_cpu.create(h->m, &o, &h->b, &err);
    if (st) fprintf(stderr, "create: %s\n", err.msg);
    assert_int_equal(st, TM_OK);
    h->logits = malloc(sizeof(float) * MAX_SEQS * h->V);
}

static void harness_open(harness *h, const char *model, unsigned flags)
{
    harness_open_threads(h, model, flags, 2);
}

static void harness_close(harness *h)
{
    tm_backend_cpu.destroy(h->b);
    tm_model_destroy(h->m);
    free(h->logits);
}

/* Block tables of N_BLOCKS entries: reversed, and a stride-17 permutation. */
static void table_reversed(int32_t *t) { for (int j = 0; j < N_BLOCKS; j++) t[j] = N_BLOCKS - 1 - j; }
static void table_strided(int32_t *t) { for (int j = 0; j < N_BLOCKS; j++) t[j] = (3 + 17 * j) % N_BLOCKS; }

/* One forward of n_seqs sequences; seq s appends toks[s][0..n[s]) after
 * start[s] cached tokens, using table[s]; logits of each last token go to
 * h->logits + s*V. */
static void forward_seqs(harness *h, int n_seqs, const int32_t *const *toks, const int *n, const int *start,
                         const int32_t *const *table)
{
    int32_t ids[MAX_TOKENS], pos[MAX_TOKENS], seq_start[MAX_SEQS + 1], seq_len[MAX_SEQS], rows[MAX_SEQS];
    int32_t tables[MAX_SEQS * N_BLOCKS];
    int T = 0;
    for (int s = 0; s < n_seqs; s++) {
        seq_start[s] = T;
        for (int i = 0; i < n[s]; i++) {
            assert_true(T < MAX_TOKENS);
            ids[T] = toks[s][i];
            pos[T++] = start[s] + i;
        }
        seq_len[s] = start[s] + n[s];
        rows[s] = T - 1;
        memcpy(tables + s * N_BLOCKS, table[s], sizeof(int32_t) * N_BLOCKS);
    }
    seq_start[n_seqs] = T;
    tm_batch bt = {.n_tokens = T, .token_ids = ids, .positions = pos, .n_seqs = n_seqs, .seq_start = seq_start,
                   .seq_len = seq_len, .block_tables = tables, .max_blocks = N_BLOCKS, .n_logits = n_seqs,
                   .logit_rows = rows, .logits = h->logits};
    tm_err err = {{0}};
    tm_status st = tm_backend_cpu.forward(h->b, &bt, &err);
    if (st) fprintf(stderr, "forward: %s\n", err.msg);
    assert_int_equal(st, TM_OK);
}

static void forward_one(harness *h, const int32_t *toks, int n, int start, const int32_t *table)
{
    forward_seqs(h, 1, &toks, &n, &start, &table);
}

static double rel_error(const float *ours, const golden_line *g, int32_t V)
{
    double num = 0, den = 0;
    if (g->logits) {
        for (int32_t i = 0; i < V; i++) {
            num = fmax(num, fabs((double)ours[i] - g->logits[i]));
            den = fmax(den, fabs(g->logits[i]));
        }
    } else { /* top-20 only: error over those ids, relative to their max |logit| */
        for (int i = 0; i < g->n_top; i++) {
            num = fmax(num, fabs((double)ours[g->top_ids[i]] - g->top_vals[i]));
            den = fmax(den, fabs(g->top_vals[i]));
        }
    }
    return den > 0 ? num / den : num;
}

static int32_t argmax(const float *v, int32_t n, double *maxabs)
{
    int32_t best = 0;
    double ma = 0;
    for (int32_t i = 0; i < n; i++) {
        if (v[i] > v[best]) best = i;
        ma = fmax(ma, fabs(v[i]));
    }
    *maxabs = ma;
    return best;
}

typedef struct check_result {
    double rel_err;        /* one-batch prefill */
    int chunked_identical; /* 3-chunk prefill logits == one-batch logits, bitwise */
    int greedy_checked;    /* steps compared */
    int greedy_mismatch;   /* first mismatching step, -1 if none */
} check_result;

static int check_line(harness *h, const golden_line *g, check_result *r)
{
    int32_t V = h->V, rev[N_BLOCKS], strided[N_BLOCKS];
    table_reversed(rev);
    table_strided(strided);
    float *full = malloc(sizeof(float) * V);
    forward_one(h, g->prompt, g->n_prompt, 0, rev);
    memcpy(full, h->logits, sizeof(float) * V);
    r->rel_err = rel_error(full, g, V);

    /* chunked prefill (3 chunks where the prompt allows) into another layout */
    int n = g->n_prompt, c1 = n / 3, c2 = n / 3, done = 0;
    int sizes[3] = {c1, c2, n - c1 - c2};
    for (int c = 0; c < 3; c++) {
        if (!sizes[c]) continue;
        forward_one(h, g->prompt + done, sizes[c], done, strided);
        done += sizes[c];
    }
    r->chunked_identical = !memcmp(full, h->logits, sizeof(float) * V);

    /* greedy decode through the strided cache */
    r->greedy_checked = 0;
    r->greedy_mismatch = -1;
    for (int i = 0; i < g->n_greedy; i++) {
        double maxabs;
        int32_t tok = argmax(h->logits, V, &maxabs);
        double bound = 2.0 * REL_TOL * maxabs;
        if (g->margins[i] < bound) break; /* reference too close to call */
        r->greedy_checked++;
        if (tok != g->greedy[i]) {
            r->greedy_mismatch = i;
            break;
        }
        if (i + 1 < g->n_greedy) forward_one(h, &tok, 1, n + i, strided);
    }
    free(full);
    return r->rel_err <= REL_TOL && r->chunked_identical && r->greedy_mismatch < 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_golden(void **state)
{
    const model_case *mc = *state;
    harness h;
    harness_open(&h, mc->name, 0);
    golden_line *g;
    int n = load_golden(mc->name, h.V, &g);
    assert_true(n >= 1);
    for (int i = 0; i < n; i++) {
        check_result r;
        int ok = check_line(&h, &g[i], &r);
        printf("[ info ] %s line %d (%d prompt tokens): rel err %.2e, chunked %s, greedy %d/%d steps checked%s\n",
               mc->name, i, g[i].n_prompt, r.rel_err, r.chunked_identical ? "bit-identical" : "DIFFERENT",
               r.greedy_checked, g[i].n_greedy, r.greedy_mismatch >= 0 ? ", MISMATCH" : "");
        assert_true(r.rel_err <= REL_TOL);
        assert_true(r.chunked_identical);
        assert_int_equal(r.greedy_mismatch, -1);
        assert_true(ok);
    }
    free_golden(g, n);
    harness_close(&h);
}

/* Two sequences in one batch: bit-identical to each alone (prefill + decode),
 * the solo runs on a 1-thread backend and the batched ones on a 3-thread one. */
static void test_batch_invariance(void **state)
{
    const model_case *mc = *state;
    harness h, h3;
    harness_open_threads(&h, mc->name, 0, 1);
    harness_open_threads(&h3, mc->name, 0, 3);
    golden_line *g;
    int n = load_golden(mc->name, h.V, &g);
    assert_true(n >= 2);
    const golden_line *a = &g[n - 1], *b = &g[n - 2];
    int32_t ta[N_BLOCKS], tb[N_BLOCKS];
    table_reversed(ta);
    for (int j = 0; j < N_BLOCKS; j++) tb[j] = j; /* disjoint from ta's first blocks for these lengths */
    assert_true((a->n_prompt + 2) / BS + (b->n_prompt + 2) / BS + 2 <= N_BLOCKS);
    size_t V = (size_t)h.V;
    float *solo = malloc(sizeof(float) * V * 4);
    int32_t next[2];
    double ma;
    /* alone: prefill then one decode step each */
    forward_one(&h, a->prompt, a->n_prompt, 0, ta);
    memcpy(solo, h.logits, sizeof(float) * V);
    next[0] = argmax(h.logits, h.V, &ma);
    forward_one(&h, &next[0], 1, a->n_prompt, ta);
    memcpy(solo + V, h.logits, sizeof(float) * V);
    forward_one(&h, b->prompt, b->n_prompt, 0, tb);
    memcpy(solo + 2 * V, h.logits, sizeof(float) * V);
    next[1] = argmax(h.logits, h.V, &ma);
    forward_one(&h, &next[1], 1, b->n_prompt, tb);
    memcpy(solo + 3 * V, h.logits, sizeof(float) * V);
    /* together */
    const int32_t *toks[2] = {a->prompt, b->prompt}, *tabs[2] = {ta, tb};
    int ns[2] = {a->n_prompt, b->n_prompt}, st[2] = {0, 0};
    forward_seqs(&h3, 2, toks, ns, st, tabs);
    assert_memory_equal(h3.logits, solo, sizeof(float) * V);
    assert_memory_equal(h3.logits + V, solo + 2 * V, sizeof(float) * V);
    const int32_t *dt[2] = {&next[0], &next[1]};
    int n1[2] = {1, 1}, st2[2] = {a->n_prompt, b->n_prompt};
    forward_seqs(&h3, 2, dt, n1, st2, tabs);
    assert_memory_equal(h3.logits, solo + V, sizeof(float) * V);
    assert_memory_equal(h3.logits + V, solo + 3 * V, sizeof(float) * V);
    printf("[ info ] %s: 2 sequences batched (%d + %d tokens, then 1 + 1) (3 threads) give bit-identical logits to each alone (1 thread)\n",
           mc->name, a->n_prompt, b->n_prompt);
    free(solo);
    free_golden(g, n);
    harness_close(&h);
    harness_close(&h3);
}

/* The model with its architecture-specific part off must FAIL the golden check. */
static void test_knob_breaks_golden(void **state)
{
    const model_case *mc = *state;
    harness h;
    harness_open(&h, mc->name, mc->knob);
    golden_line *g;
    int n = load_golden(mc->name, h.V, &g);
    int failed = 0;
    double worst = 0;
    for (int i = 0; i < n; i++) {
        check_result r;
        if (!check_line(&h, &g[i], &r)) failed++;
        worst = fmax(worst, r.rel_err);
    }
    printf("[ info ] %s with %s: %d of %d golden lines fail (worst rel err %.2e)\n", mc->name, mc->knob_name,
           failed, n, worst);
    assert_true(failed > 0);
    assert_true(worst > REL_TOL);
    free_golden(g, n);
    harness_close(&h);
}

/* The cblas_sgemm path is as accurate (its bitwise batch invariance is not promised). */
static void test_blas_gemm_accuracy(void **state)
{
    const model_case *mc = *state;
    harness h;
    harness_open(&h, mc->name, TM_BACKEND_BLAS_GEMM);
    golden_line *g;
    int n = load_golden(mc->name, h.V, &g);
    for (int i = 0; i < n; i++) {
        check_result r;
        check_line(&h, &g[i], &r);
        assert_true(r.rel_err <= REL_TOL);
        assert_int_equal(r.greedy_mismatch, -1);
    }
    free_golden(g, n);
    harness_close(&h);
}

static void test_bad_batches_rejected(void **state)
{
    const model_case *mc = *state;
    harness h;
    harness_open(&h, mc->name, 0);
    int32_t ids[2] = {1, 2}, pos[2] = {0, 1}, ss[2] = {0, 2}, len[1] = {2}, tab[N_BLOCKS], rows[1] = {1};
    table_reversed(tab);
    tm_batch ok = {.n_tokens = 2, .token_ids = ids, .positions = pos, .n_seqs = 1, .seq_start = ss,
                   .seq_len = len, .block_tables = tab, .max_blocks = N_BLOCKS, .n_logits = 1,
                   .logit_rows = rows, .logits = h.logits};
    assert_int_equal(tm_backend_cpu.forward(h.b, &ok, NULL), TM_OK);
    tm_batch bad;
    tm_err err;
    bad = ok, bad.n_tokens = MAX_TOKENS + 1;
    assert_int_equal(tm_backend_cpu.forward(h.b, &bad, &err), TM_ERR_USAGE);
    int32_t bad_ids[2] = {1, h.V};
    bad = ok, bad.token_ids = bad_ids;
    assert_int_equal(tm_backend_cpu.forward(h.b, &bad, &err), TM_ERR_INPUT);
    int32_t bad_pos[2] = {0, 5};
    bad = ok, bad.positions = bad_pos;
    assert_int_equal(tm_backend_cpu.forward(h.b, &bad, &err), TM_ERR_USAGE);
    int32_t bad_tab[N_BLOCKS];
    memcpy(bad_tab, tab, sizeof tab);
    bad_tab[0] = N_BLOCKS;
    bad = ok, bad.block_tables = bad_tab;
    assert_int_equal(tm_backend_cpu.forward(h.b, &bad, &err), TM_ERR_USAGE);
    int32_t big_len[1] = {N_BLOCKS * BS + 1};
    bad = ok, bad.seq_len = big_len;
    assert_int_equal(tm_backend_cpu.forward(h.b, &bad, &err), TM_ERR_USAGE);
    int32_t bad_rows[1] = {2};
    bad = ok, bad.logit_rows = bad_rows;
    assert_int_equal(tm_backend_cpu.forward(h.b, &bad, &err), TM_ERR_USAGE);
    assert_int_equal(tm_backend_cpu.copy_block(h.b, 0, N_BLOCKS, &err), TM_ERR_USAGE);
    assert_int_equal(tm_backend_cpu.copy_block(h.b, 0, 1, &err), TM_OK);
    const tm_model_config *c = tm_model_config_of(h.m);
    assert_int_equal(tm_backend_cpu.kv_block_bytes(h.m, BS),
                     (size_t)c->n_layers * 2 * BS * c->n_kv_heads * c->head_dim * sizeof(float));
    tm_backend_cpu.destroy(NULL);
    harness_close(&h);
}

/* copy_block: a sequence whose blocks were copied decodes identically. */
static void test_copy_block(void **state)
{
    const model_case *mc = *state;
    harness h;
    harness_open(&h, mc->name, 0);
    golden_line *g;
    int n = load_golden(mc->name, h.V, &g);
    const golden_line *a = &g[n - 1];
    int32_t ta[N_BLOCKS], tb[N_BLOCKS];
    table_reversed(ta);
    for (int j = 0; j < N_BLOCKS; j++) tb[j] = j;
    forward_one(&h, a->prompt, a->n_prompt, 0, ta);
    int nb = (a->n_prompt + BS) / BS; /* blocks holding the prompt and the next token */
    assert_true(2 * nb <= N_BLOCKS);  /* ta's first nb blocks and tb's are disjoint */
    for (int j = 0; j < nb; j++) assert_int_equal(tm_backend_cpu.copy_block(h.b, ta[j], tb[j], NULL), TM_OK);
    int32_t tok = 5;
    size_t V = (size_t)h.V;
    float *l1 = malloc(sizeof(float) * V);
    forward_one(&h, &tok, 1, a->n_prompt, ta);
    memcpy(l1, h.logits, sizeof(float) * V);
    forward_one(&h, &tok, 1, a->n_prompt, tb);
    assert_memory_equal(l1, h.logits, sizeof(float) * V);
    free(l1);
    free_golden(g, n);
    harness_close(&h);
}

/* 1, 2 and 3 threads: bit-identical logits (prefill of the longest golden
 * prompt, then 4 greedy decode steps); the GEMM splits work over output
 * columns only, so no element's arithmetic depends on the thread count. */
static void test_threads_identical(void **state)
{
    const model_case *mc = *state;
    harness h[3];
    for (int t = 0; t < 3; t++) harness_open_threads(&h[t], mc->name, 0, t + 1);
    golden_line *g;
    int n = load_golden(mc->name, h[0].V, &g);
    const golden_line *a = &g[n - 1];
    size_t V = (size_t)h[0].V;
    int32_t tab[N_BLOCKS];
    table_strided(tab);
    float *ref = malloc(sizeof(float) * V);
    assert_non_null(ref);
    int32_t tok[3];
    for (int step = 0; step < 5; step++) {
        for (int t = 0; t < 3; t++) {
            if (step == 0) forward_one(&h[t], a->prompt, a->n_prompt, 0, tab);
            else forward_one(&h[t], &tok[t], 1, a->n_prompt + step - 1, tab);
            if (t == 0) memcpy(ref, h[t].logits, sizeof(float) * V);
            else assert_memory_equal(ref, h[t].logits, sizeof(float) * V);
            double ma;
            tok[t] = argmax(h[t].logits, h[t].V, &ma);
        }
    }
    printf("[ info ] %s: 1, 2 and 3 threads give bit-identical logits (%d-token prefill + 4 decode steps)\n", mc->name,
           a->n_prompt);
    free(ref);
    free_golden(g, n);
    for (int t = 0; t < 3; t++) harness_close(&h[t]);
}

static const model_case cases[] = {
    {"llama-mini", TM_BACKEND_DEBUG_GQA_MODULO, "GQA mapping h % kv_heads"},
    {"llama31-mini", TM_BACKEND_DEBUG_NO_ROPE_SCALING, "llama3 rope scaling off"},
    {"qwen2-mini", TM_BACKEND_DEBUG_NO_QKV_BIAS, "q/k/v bias off"},
    {"qwen3-mini", TM_BACKEND_DEBUG_NO_QK_NORM, "q/k norm off"},
    {"mistral-tok-mini", TM_BACKEND_DEBUG_ROPE_INTERLEAVED, "interleaved (GPT-J) RoPE pairs"},
};

int main(void)
{
    const char *td = getenv("TOKENMILL_TESTDATA");
    struct stat sb;
    if (!td || !*td) {
        printf("SKIP: TOKENMILL_TESTDATA is not set\n");
        return 77;
    }
    snprintf(testdata_models, sizeof testdata_models, "%s/models", td);
    if (stat(testdata_models, &sb) || !S_ISDIR(sb.st_mode)) {
        printf("SKIP: %s is absent\n", testdata_models);
        return 77;
    }
    struct CMUnitTest tests[5 * 7];
    static char names[5 * 7][80];
    int n = 0;
    for (int i = 0; i < 5; i++) {
        struct { CMUnitTestFunction fn; const char *what; } kinds[] = {
            {test_golden, "golden"}, {test_batch_invariance, "batch_invariance"},
            {test_knob_breaks_golden, "knob_breaks_golden"}, {test_copy_block, "copy_block"},
            {test_blas_gemm_accuracy, "blas_gemm_accuracy"}, {test_bad_batches_rejected, "bad_batches_rejected"},
            {test_threads_identical, "threads_identical"}};
        for (int k = 0; k < 7; k++) {
            if (k == 5 && i) continue;
            snprintf(names[n], sizeof names[n], "%s/%s", kinds[k].what, cases[i].name);
            tests[n] = (struct CMUnitTest){.name = names[n], .test_func = kinds[k].fn,
                                           .initial_state = (void *)&cases[i]};
            n++;
        }
    }
    return _cmocka_run_group_tests("golden_models", tests, (size_t)n, NULL, NULL);
}
