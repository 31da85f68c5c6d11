/* backend.c — picks a compute backend for a --device value; shared checks.
 *
 * "cpu" gives the CPU reference backend; "cuda" gives tm_backend_cuda when
 * it is built in and a device is visible, else TM_ERR_UNAVAILABLE (exit 69):
 * a job that demands a GPU never silently runs on the CPU. "auto" picks CUDA
 * when it is built in and a device is visible, else the CPU.
 */
#include <string.h>

#include "backend/backend.h"
#ifdef TOKENMILL_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

tm_status tm_device_parse(const char *s, tm_device *out, tm_err *err)
{
    static const char *const names[] = {"auto", "cpu", "cuda"};
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, names[i])) { *out = (tm_device)i; return TM_OK; }
    return tm_errf(err, TM_ERR_USAGE, "--device: '%s' is not one of " TM_DEVICE_NAMES, s ? s : "");
}

tm_status tm_backend_select(tm_device device, const tm_backend_ops **out, tm_err *err)
{
    *out = NULL;
    switch (device) {
    case TM_DEVICE_AUTO:
#ifdef TOKENMILL_HAVE_CUDA
        if (tm_cuda_device_count() > 0) {
            *out = &tm_backend_cuda;
            return TM_OK;
        }
#endif
        *out = &tm_backend_cpu;
        return TM_OK;
    case TM_DEVICE_CPU:
        *out = &tm_backend_cpu;
        return TM_OK;
    case TM_DEVICE_CUDA:
#ifdef TOKENMILL_HAVE_CUDA
        if (tm_cuda_device_count() <= 0)
            return tm_errf(err, TM_ERR_UNAVAILABLE, "--device cuda: no CUDA device is visible (%s); use --device cpu",
                           tm_cuda_build_info());
        *out = &tm_backend_cuda;
        return TM_OK;
#else
        return tm_errf(err, TM_ERR_UNAVAILABLE,
                       "--device cuda: this tokenmill was built without CUDA (%s); use --device cpu",
                       tm_cuda_build_info());
#endif
    }
    return tm_errf(err, TM_ERR_USAGE, "device %d is not one of " TM_DEVICE_NAMES, (int)device);
}

int64_t tm_backend_mem_kv_blocks(const tm_backend_mem *p, int64_t avail)
{
    int64_t per = p->kv_block + p->per_block;
    int64_t left = avail - p->weights - p->scratch - p->reserve;
    return per > 0 && left > 0 ? left / per : 0;
}

/* Shared by the backends: every index of a batch checked before use. */
tm_status tm_batch_check(const tm_batch *bt, const tm_batch_limits *b, tm_err *err)
{
    if (!bt->token_ids || !bt->positions || !bt->seq_start || !bt->seq_len || !bt->block_tables)
        return tm_errf(err, TM_ERR_USAGE, "batch: a required array is NULL");
    if (bt->n_tokens <= 0 || bt->n_tokens > b->max_tokens)
        return tm_errf(err, TM_ERR_USAGE, "batch: n_tokens %d not in [1, %d]", bt->n_tokens, b->max_tokens);
    if (bt->n_seqs <= 0 || bt->n_seqs > b->max_seqs)
        return tm_errf(err, TM_ERR_USAGE, "batch: n_seqs %d not in [1, %d]", bt->n_seqs, b->max_seqs);
    if (bt->max_blocks <= 0) return tm_errf(err, TM_ERR_USAGE, "batch: max_blocks %d <= 0", bt->max_blocks);
    if (bt->n_logits < 0 || bt->n_logits > b->max_tokens || (bt->n_logits && (!bt->logit_rows || !bt->logits)))
        return tm_errf(err, TM_ERR_USAGE, "batch: n_logits %d not in [0, %d] (or no rows/output)", bt->n_logits,
                       b->max_tokens);
    if (bt->seq_start[0] != 0 || bt->seq_start[bt->n_seqs] != bt->n_tokens)
        return tm_errf(err, TM_ERR_USAGE, "batch: seq_start must run from 0 to n_tokens");
    for (int32_t s = 0; s < bt->n_seqs; s++) {
        int32_t a = bt->seq_start[s], e = bt->seq_start[s + 1], len = bt->seq_len[s];
        if (e <= a || e > bt->n_tokens)
            return tm_errf(err, TM_ERR_USAGE, "batch: sequence %d: empty or decreasing seq_start", s);
        if (len < e - a || len > b->ctx_max || (int64_t)(len - 1) / b->block_size >= bt->max_blocks)
            return tm_errf(err, TM_ERR_USAGE, "batch: sequence %d: seq_len %d does not fit (%d new tokens, %d blocks "
                           "of %d, pool %d tokens)", s, len, e - a, bt->max_blocks, b->block_size, b->ctx_max);
        for (int32_t i = a; i < e; i++)
            if (bt->positions[i] != len - (e - i))
                return tm_errf(err, TM_ERR_USAGE, "batch: token %d: position %d, expected %d (tokens of a sequence "
                               "are its last ones, in order)", i, bt->positions[i], len - (e - i));
        if (bt->bt_rows && (bt->bt_rows[s] < 0 || bt->bt_rows[s] >= b->max_seqs))
            return tm_errf(err, TM_ERR_USAGE, "batch: sequence %d: block table row %d not in [0, %d)", s,
                           bt->bt_rows[s], b->max_seqs);
        const int32_t *tab = tm_batch_table(bt, s);
        for (int32_t j = 0; j <= (len - 1) / b->block_size; j++)
            if (tab[j] < 0 || tab[j] >= b->n_blocks)
                return tm_errf(err, TM_ERR_USAGE, "batch: sequence %d: block %d is %d, not in [0, %d)", s, j, tab[j],
                               b->n_blocks);
    }
    for (int32_t i = 0; i < bt->n_tokens; i++)
        if (bt->token_ids[i] < 0 || bt->token_ids[i] >= b->vocab)
            return tm_errf(err, TM_ERR_INPUT, "batch: token %d: id %d not in [0, %d)", i, bt->token_ids[i], b->vocab);
    for (int32_t j = 0; j < bt->n_logits; j++)
        if (bt->logit_rows[j] < 0 || bt->logit_rows[j] >= bt->n_tokens)
            return tm_errf(err, TM_ERR_USAGE, "batch: logit_rows[%d] = %d not in [0, %d)", j, bt->logit_rows[j],
                           bt->n_tokens);
    return TM_OK;
}
