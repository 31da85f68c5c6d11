/* bench.h — `tokenmill bench <what>`: benchmark programs (not tests).
 *
 * Each prints what it measured and the exact command to reproduce it.
 */
#ifndef TM_BENCH_H
#define TM_BENCH_H

int tm_bench_submit(int argc, char **argv);   /* bench submit --lines N        */
int tm_bench_tokenize(int argc, char **argv); /* bench tokenize --tokenizer DIR */
int tm_bench_forward(int argc, char **argv);  /* bench forward --model DIR     */
int tm_bench_engine(int argc, char **argv);   /* bench engine --model DIR | --synthetic NAME */
int tm_bench_grammar(int argc, char **argv);  /* bench grammar [--tokenizer DIR] [--sample FILE] */
int tm_bench_host(int argc, char **argv);     /* bench host [--requests N] [--procs P]  */

/* The roofline of `bench engine` (bench_engine.c), per engine step:
 *   bytes = weight_bytes + kv_bytes_per_token * (ctx_seq_sum + n_tokens)
 *           (weights read once; each sequence's cached K/V read once; the
 *           step's new K/V written once)
 *   flops = 2 * layer_params * n_tokens + 2 * lm_head_params * n_logits
 *           + attn_flops_per_ctx * ctx_tok_sum
 *   floor = max(bytes / bandwidth, flops / peak_flops)
 * The embedding lookup (a gather of n_tokens rows) is left out. */
#include <stddef.h>
#include <stdint.h>

typedef struct tm_bench_roofline_model {
    double weight_bytes;       /* bytes read once per step: layer matrices, norms, biases, lm_head */
    double layer_params;       /* matmul parameters of all layers (2 flops each per token) */
    double lm_head_params;     /* vocab * hidden (2 flops each per logit row) */
    double kv_bytes_per_token; /* K and V of one token, all layers */
    double attn_flops_per_ctx; /* 4 * n_layers * n_heads * head_dim: QK^T and PV per attended position */
    double bandwidth;          /* bytes/s (HBM) */
    double peak_flops;         /* flop/s (dense bf16) */
} tm_bench_roofline_model;

typedef struct tm_bench_roofline_step {
    int64_t n_tokens;    /* tokens through the model this step */
    int64_t n_logits;    /* rows through lm_head */
    int64_t ctx_seq_sum; /* sum over the step's sequences of their cached length after it */
    int64_t ctx_tok_sum; /* sum over the step's tokens of the positions each attends to (position + 1) */
} tm_bench_roofline_step;

typedef struct tm_bench_roofline_sum {
    double floor_s, bytes, flops;
} tm_bench_roofline_sum;

/* Adds the n steps' floor time, bytes and flops to *sum (which the caller
 * zeroes once); returns the floor time of these n steps. */
double tm_bench_roofline(const tm_bench_roofline_model *rm, const tm_bench_roofline_step *steps, size_t n,
                         tm_bench_roofline_sum *sum);

#endif
