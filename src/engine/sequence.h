/* sequence.h — one generation stream as the engine sees it.
 *
 * Token ids only (prompt + generated), how many of them have KV in the cache,
 * and the sequence's block table. Buffers are sized once when the sequence
 * is created (prompt + max_tokens), so stepping never allocates. A sequence
 * preempted by recompute keeps its tokens and loses its blocks: it is
 * prefilled again (prompt + generated so far) when it is readmitted.
 */
#ifndef TM_SEQUENCE_H
#define TM_SEQUENCE_H

#include <stdint.h>
#include "util/status.h"

typedef enum tm_seq_state {
    TM_SEQ_WAITING = 0,  /* not admitted, or preempted: no blocks */
    TM_SEQ_RUNNING = 1,  /* holds blocks; prefilling or decoding */
    TM_SEQ_FINISHED = 2,
} tm_seq_state;

typedef struct tm_seq {
    int64_t id;            /* caller's id (unique while alive) */
    int32_t priority;      /* higher runs first (the job's priority) */
    int64_t arrival;       /* admission order, set by the scheduler */
    int32_t *tokens;       /* [cap_tokens]: prompt then generated */
    int32_t n_tokens;
    int32_t n_prompt;
    int32_t cap_tokens;    /* n_prompt + max_tokens */
    int32_t n_computed;    /* leading tokens whose KV is in the cache */
    int32_t n_cached;      /* prompt tokens served by the prefix cache (usage.cached_tokens) */
    int32_t *blocks;       /* [cap_blocks] block table */
    int32_t n_blocks;
    int32_t cap_blocks;
    int32_t n_committed;   /* leading full blocks registered in the prefix cache */
    uint32_t blocks_epoch; /* bumped whenever the block table is emptied (preemption,
                              (re)queueing, removal): while it holds, blocks only grow
                              at the end, so a copy of blocks[0..n) stays valid */
    uint64_t last_hash;    /* hash of block n_committed - 1 (0 if none) */
    int32_t n_preemptions;
    tm_seq_state state;
    void *user;            /* the caller's per-request context */
} tm_seq;

/* Allocate buffers for a prompt of n_prompt ids plus max_tokens to generate. */
tm_status tm_seq_init(tm_seq *s, int64_t id, const int32_t *prompt, int32_t n_prompt,
                      int32_t max_tokens, int32_t block_size, tm_err *err);
void tm_seq_free(tm_seq *s);

#endif
