/* backend.h — the compute backend interface: one forward pass over a batch.
 *
 * A backend is a table of function pointers (the CPU reference, and CUDA
 * when built in).
 * One call runs the whole model over a batch that mixes sequences of
 * different lengths: prefill chunks and single-token decodes, each with its
 * own positions and its own paged KV block table. K/V for the batch's new
 * tokens are written into the paged cache, attention reads earlier tokens
 * through the block tables, and logits are produced only for the rows that
 * ask for them. The engine (scheduler, KV block manager) owns block ids; the
 * backend owns the KV memory (n_blocks x block_size x layers x kv_heads x
 * head_dim for K and for V), sized once at creation. Nothing allocates per
 * step.
 *
 * Batch layout (tokens of a sequence are contiguous, in position order):
 *   token i in [seq_start[s], seq_start[s+1]) belongs to sequence s,
 *   positions[i] is its absolute position; after the step sequence s has
 *   seq_len[s] tokens in the cache (= positions of its last token + 1), and
 *   its KV for position p lives in block block_tables[r*max_blocks + p/bs]
 *   at slot p % bs, where r = bt_rows[s] (s when bt_rows is NULL); only
 *   the entries of blocks up to position seq_len[s] - 1 are read.
 * forward() checks the batch against this contract (and the sizes given at
 * create) before touching memory: a violation is TM_ERR_USAGE, a token id
 * outside the vocabulary TM_ERR_INPUT.
 *
 * Batch invariance: a sequence's logits must be bit-identical whatever else
 * is in the batch, however its prompt was chunked, and whatever the thread
 * count (the CPU backend guarantees it; test_golden_models checks it).
 *
 * Weights: a backend takes the tensors model/arch.h's table lists, already
 * shape-checked by the loader, and says before create() what it will
 * allocate (mem_plan), so that callers size the KV pool from its own numbers.
 */
#ifndef TM_BACKEND_H
#define TM_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include "model/model.h"
#include "quant/quant.h"
#include "util/status.h"

typedef struct tm_batch {
    int32_t n_tokens;
    const int32_t *token_ids;     /* [n_tokens] */
    const int32_t *positions;     /* [n_tokens] */
    int32_t n_seqs;
    const int32_t *seq_start;     /* [n_seqs + 1] offsets into token_ids */
    const int32_t *seq_len;       /* [n_seqs] cached length after this step */
    const int32_t *block_tables;  /* [rows * max_blocks] */
    int32_t max_blocks;           /* row stride of block_tables */
    const int32_t *bt_rows;       /* [n_seqs] row of block_tables holding sequence s's
                                     table, each in [0, max_seqs); NULL: row s. Lets a
                                     caller keep one row per running sequence across
                                     steps and write only the entries that changed */
    int32_t n_logits;             /* rows of logits wanted */
    const int32_t *logit_rows;    /* [n_logits] token indices into the batch */
    float *logits;                /* out: [n_logits * vocab] float32 */
} tm_batch;

typedef struct tm_backend_opts {
    int32_t n_blocks;             /* KV pool size in blocks */
    int32_t block_size;           /* tokens per block (default 16) */
    int32_t max_batch_tokens;     /* largest n_tokens a forward will see */
    int32_t max_seqs;             /* largest n_seqs a forward will see */
    int n_threads;                /* CPU threads (0 = all cores) */
    unsigned flags;               /* TM_BACKEND_* below; 0 = the normal, exact path */
    tm_kv_dtype kv_dtype;         /* KV cache element type (quant/quant.h); 0 = auto */
} tm_backend_opts;

/* opts.flags. TM_BACKEND_BLAS_GEMM: the CPU backend projects through
 * cblas_sgemm (faster prefill) instead of its own fixed-order matmul; results
 * then depend in the last bits on the batch a token rides in (not batch
 * invariant). The TM_BACKEND_DEBUG_* knobs deliberately switch off one
 * architecture-specific part so tests can prove the golden checks fail
 * without it; never set them outside tests. */
#define TM_BACKEND_BLAS_GEMM             (1u << 0)
/* TM_BACKEND_CUDA_FAST: the CUDA backend's tensor-core prefill and GQA decode
 * attention kernels (kernels.h fast paths; not yet verified on a GPU). The
 * environment variable TOKENMILL_CUDA_FAST=1 sets it too (tests/gpu/run.sh). */
#define TM_BACKEND_CUDA_FAST             (1u << 1)
#define TM_BACKEND_DEBUG_NO_ROPE_SCALING (1u << 8)  /* ignore rope_scaling llama3 */
#define TM_BACKEND_DEBUG_NO_QKV_BIAS     (1u << 9)  /* drop q/k/v biases (qwen2) */
#define TM_BACKEND_DEBUG_NO_QK_NORM      (1u << 10) /* skip q_norm/k_norm (qwen3) */
#define TM_BACKEND_DEBUG_ROPE_INTERLEAVED (1u << 11) /* GPT-J pairs (2i,2i+1), not rotate-half */
#define TM_BACKEND_DEBUG_GQA_MODULO      (1u << 12) /* head h -> kv head h % kv_heads (wrong) */

typedef struct tm_backend tm_backend;

/* Bytes a backend allocates for a model and options (ops.mem_plan), in the
 * memory it computes in. A pool of n blocks takes weights + scratch +
 * reserve + n * (kv_block + per_block). */
typedef struct tm_backend_mem {
    int64_t weights;    /* the weights as this backend stores them */
    int64_t kv_block;   /* one KV block of o->block_size tokens, o->kv_dtype (all layers, K and V) */
    int64_t per_block;  /* other memory that grows with the pool, per block (block tables, scores) */
    int64_t scratch;    /* activations and staging for o->max_batch_tokens / o->max_seqs */
    int64_t reserve;    /* fixed: library workspaces, runtime context, margin */
} tm_backend_mem;

typedef struct tm_backend_ops {
    const char *name;             /* "cpu", "cuda" */
    tm_status (*create)(const tm_model *m, const tm_backend_opts *o, tm_backend **out, tm_err *err);
    void (*destroy)(tm_backend *b);
    tm_status (*forward)(tm_backend *b, const tm_batch *batch, tm_err *err);
    /* Copy a block's K/V into another block (copy-on-write for n > 1). */
    tm_status (*copy_block)(tm_backend *b, int32_t src, int32_t dst, tm_err *err);
    /* Bytes of KV memory one block takes (all layers, K and V) with the
     * default kv_dtype: mem_plan's kv_block for kv_dtype auto. */
    size_t (*kv_block_bytes)(const tm_model *m, int32_t block_size);
    /* What create(m, o) will allocate, computed without allocating
     * (o->n_blocks is not used: the pool is kv_block + per_block a block). */
    tm_status (*mem_plan)(const tm_model *m, const tm_backend_opts *o, tm_backend_mem *out, tm_err *err);
    /* The memory this backend allocates from (host RAM for cpu, the current
     * device for cuda): free now and total. TM_ERR_UNAVAILABLE when unknown. */
    tm_status (*mem_available)(size_t *free_bytes, size_t *total_bytes, tm_err *err);
} tm_backend_ops;

/* The CPU reference backend (always built). */
extern const tm_backend_ops tm_backend_cpu;

/* A --device value, parsed once at the command line. */
typedef enum tm_device { TM_DEVICE_AUTO = 0, TM_DEVICE_CPU, TM_DEVICE_CUDA } tm_device;
/* "auto" | "cpu" | "cuda" -> device; anything else TM_ERR_USAGE. */
tm_status tm_device_parse(const char *s, tm_device *out, tm_err *err);
#define TM_DEVICE_NAMES "auto, cpu, cuda"

/* The backend for a device: CPU; AUTO: CUDA when it is built in and a GPU is
 * visible, else the CPU; CUDA: TM_ERR_UNAVAILABLE unless a CUDA backend is
 * built in and a GPU is visible (never a silent CPU run). */
tm_status tm_backend_select(tm_device device, const tm_backend_ops **out, tm_err *err);

/* Whether the CUDA backend is compiled in, and a one-line description of it
 * (cuda_info.c; for --version and error messages). */
int tm_cuda_built_in(void);
const char *tm_cuda_build_info(void);

/* KV blocks that fit in avail bytes next to the rest of plan p (weights,
 * scratch, reserve); 0 when none does. */
int64_t tm_backend_mem_kv_blocks(const tm_backend_mem *p, int64_t avail);

/* The limits a backend was created with, for tm_batch_check. */
typedef struct tm_batch_limits {
    int32_t max_tokens, max_seqs, block_size, n_blocks, ctx_max, vocab;
} tm_batch_limits;

/* Check every field and index of a batch against a backend's limits
 * (positions contiguous and ending at seq_len, block ids in the pool, token
 * ids in the vocabulary, logit rows in the batch) before any memory is
 * touched. TM_ERR_USAGE / TM_ERR_INPUT with the offending index. */
tm_status tm_batch_check(const tm_batch *bt, const tm_batch_limits *lim, tm_err *err);

/* Sequence s's block table (bt_rows applied). */
static inline const int32_t *tm_batch_table(const tm_batch *bt, int32_t s)
{
    return bt->block_tables + (size_t)(bt->bt_rows ? bt->bt_rows[s] : s) * (size_t)bt->max_blocks;
}

#endif
