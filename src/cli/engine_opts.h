/* engine_opts.h — the model and engine options shared by `run`, `generate`
 * and `bench engine`, parsed once into typed values (one parser, one help
 * text, the same ranges everywhere).
 *
 * A command puts TM_ENGINE_LONGOPTS_MODEL (and, if it batches,
 * TM_ENGINE_LONGOPTS_BATCH) in its getopt_long table, hands every option
 * code to tm_engine_opts_parse first, and prints tm_engine_opts_usage in its
 * --help. The option codes are TM_EO_* (>= 0x1000), clear of a command's own
 * short options and codes.
 *
 *   group MODEL: --model DIR, --device auto|cpu|cuda, --threads N,
 *                --quant Q, --kv-dtype D, --cuda-fast
 *   group BATCH: --max-seqs N, --max-batch-tokens N, --kv-memory SIZE
 */
#ifndef TM_ENGINE_OPTS_H
#define TM_ENGINE_OPTS_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "backend/backend.h"
#include "quant/quant.h"
#include "util/status.h"

typedef struct tm_engine_opts {
    const char *model_dir;      /* NULL until --model */
    tm_device device;           /* default TM_DEVICE_AUTO */
    int n_threads;              /* 0: all cores */
    tm_quant_scheme quant;      /* TM_QS_NONE: weights as stored */
    tm_kv_dtype kv_dtype;       /* TM_KV_AUTO */
    unsigned backend_flags;     /* TM_BACKEND_CUDA_FAST with --cuda-fast */
    int32_t max_seqs;           /* the command's default until given */
    int32_t max_batch_tokens;
    int64_t kv_memory;          /* bytes; 0: automatic */
} tm_engine_opts;

enum {
    TM_EO_MODEL = 0x1000, TM_EO_DEVICE, TM_EO_THREADS, TM_EO_QUANT, TM_EO_KV_DTYPE, TM_EO_CUDA_FAST,
    TM_EO_MAX_SEQS, TM_EO_MAX_BATCH_TOKENS, TM_EO_KV_MEMORY,
};

#define TM_ENGINE_LONGOPTS_MODEL                                                                   \
    {"model", required_argument, 0, TM_EO_MODEL}, {"device", required_argument, 0, TM_EO_DEVICE},  \
    {"threads", required_argument, 0, TM_EO_THREADS}, {"quant", required_argument, 0, TM_EO_QUANT}, \
    {"kv-dtype", required_argument, 0, TM_EO_KV_DTYPE}, {"cuda-fast", no_argument, 0, TM_EO_CUDA_FAST}
#define TM_ENGINE_LONGOPTS_BATCH                                                                   \
    {"max-seqs", required_argument, 0, TM_EO_MAX_SEQS},                                            \
    {"max-batch-tokens", required_argument, 0, TM_EO_MAX_BATCH_TOKENS},                            \
    {"kv-memory", required_argument, 0, TM_EO_KV_MEMORY}

#define TM_ENGINE_OPTS_MODEL 1u
#define TM_ENGINE_OPTS_BATCH 2u

/* Defaults: auto device, all cores, no quantization, auto KV type, the
 * given batch limits. */
void tm_engine_opts_default(tm_engine_opts *o, int32_t max_seqs, int32_t max_batch_tokens);

/* 1 when code is a TM_EO_* option (then *st says whether arg was valid,
 * TM_ERR_USAGE with a message in err), 0 when it is the command's own. */
int tm_engine_opts_parse(tm_engine_opts *o, int code, const char *arg, tm_status *st, tm_err *err);

/* Help lines for the groups (TM_ENGINE_OPTS_*), defaults from o. */
void tm_engine_opts_usage(FILE *f, unsigned groups, const tm_engine_opts *o);

#endif
