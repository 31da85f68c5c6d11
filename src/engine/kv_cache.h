/* kv_cache.h — paged KV block manager with prefix caching.
 *
 * The backend owns the KV memory (n_blocks blocks of block_size token slots);
 * this module owns the block *ids*: which are free, which belong to which
 * sequences (reference counts: a block shared by n>1 choices or by several
 * requests with a common prefix has ref > 1), and which hold a cached prefix.
 *
 * Prefix caching: a FULL block is identified by a hash chain
 *     h_0 = H(model_key, tokens[0..bs)),  h_i = H(h_{i-1}, tokens[i*bs..(i+1)*bs))
 * and registered under that hash when the sequence fills it. A new sequence
 * walks its prompt block by block and reuses every registered block whose
 * hash, parent hash and tokens all match (tokens are stored, so a hash
 * collision can never hand out the wrong KV). Released blocks that carry a
 * hash stay cached on an LRU list and are evicted (oldest first) only when a
 * fresh block is needed and the free list is empty.
 *
 * Everything is sized at create(); no call allocates.
 */
#ifndef TM_KV_CACHE_H
#define TM_KV_CACHE_H

#include <stdint.h>
#include "util/status.h"

typedef struct tm_kv_cache tm_kv_cache;

typedef struct tm_kv_cache_stats {
    int32_t n_blocks;      /* pool size */
    int32_t free;          /* on the free list (no content) */
    int32_t cached_idle;   /* ref 0 but holding a cached prefix (evictable) */
    int32_t in_use;        /* ref > 0 */
    int64_t hits;          /* blocks reused by tm_kv_cache_match_prefix */
    int64_t evictions;
} tm_kv_cache_stats;

tm_status tm_kv_cache_create(int32_t n_blocks, int32_t block_size, uint64_t model_key,
                             tm_kv_cache **out, tm_err *err);
void tm_kv_cache_destroy(tm_kv_cache *kv);

int32_t tm_kv_cache_block_size(const tm_kv_cache *kv);
/* Blocks that tm_kv_cache_allocate could hand out now (free + evictable). */
int32_t tm_kv_cache_available(const tm_kv_cache *kv);
void tm_kv_cache_get_stats(const tm_kv_cache *kv, tm_kv_cache_stats *st);

/* Hash of one full block given its parent's hash (0 for the first block). */
uint64_t tm_kv_cache_block_hash(const tm_kv_cache *kv, uint64_t parent, const int32_t *tokens);

/* Longest cached prefix of tokens[0..n) in whole blocks, at most max_blocks
 * (callers pass (n-1)/bs so at least one token is left to compute logits).
 * Matched blocks get ref+1 and are written to blocks_out; *last_hash is the
 * hash of the last matched block (0 if none). Returns the number matched. */
int32_t tm_kv_cache_match_prefix(tm_kv_cache *kv, const int32_t *tokens, int32_t n, int32_t max_blocks,
                                 int32_t *blocks_out, uint64_t *last_hash);

/* n fresh blocks (ref 1, no hash), evicting LRU cached blocks if needed.
 * TM_ERR_BUSY (and nothing taken) when fewer than n are available. */
tm_status tm_kv_cache_allocate(tm_kv_cache *kv, int32_t n, int32_t *blocks_out);

/* One more reference to a block in use (sharing, e.g. n > 1 choices). */
void tm_kv_cache_ref(tm_kv_cache *kv, int32_t block);

/* Drop one reference from each block. A block reaching ref 0 goes to the LRU
 * cached list if it carries a hash, else back to the free list. Blocks are
 * released last-first so that a sequence's tail is evicted before its head. */
void tm_kv_cache_release(tm_kv_cache *kv, const int32_t *blocks, int32_t n);

/* Register a block the caller just filled (tokens = its block_size ids,
 * parent = hash of the previous block or 0). Returns the block's hash. If an
 * identical block is already registered, the existing entry is kept (this
 * block stays private and is freed normally on release). */
uint64_t tm_kv_cache_commit(tm_kv_cache *kv, int32_t block, uint64_t parent, const int32_t *tokens);

int32_t tm_kv_cache_refcount(const tm_kv_cache *kv, int32_t block);

#endif
