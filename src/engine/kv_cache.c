/* kv_cache.c — paged KV block ids: free list, refcounts, prefix cache, LRU.
 *
 * Data layout (all arrays of n_blocks, allocated once): ref, hash, parent,
 * hashed flag, the block's tokens (to verify a hash match), LRU links. The
 * prefix index is an open-addressing table (linear probing, backward-shift
 * deletion) from hash to block id, 2x..4x the pool size.
 */
#include "engine/kv_cache.h"

#include <stdlib.h>
#include <string.h>

struct tm_kv_cache {
    int32_t n, bs;
    uint64_t model_key;
    int32_t *ref;
    uint64_t *hash, *parent;
    uint8_t *hashed;
    int32_t *tokens;          /* [n * bs] */
    int32_t *lru_prev, *lru_next;
    int32_t lru_head, lru_tail, n_lru;
    int32_t *free_stack;
    int32_t n_free;
    int32_t *table;           /* [cap], -1 = empty */
    uint32_t cap_mask;
    int64_t hits, evictions;
};

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27; x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

uint64_t tm_kv_cache_block_hash(const tm_kv_cache *kv, uint64_t parent, const int32_t *tokens)
{
    uint64_t h = mix64(parent ^ kv->model_key ^ 0x9e3779b97f4a7c15ull);
    for (int32_t i = 0; i < kv->bs; i++)
        h = mix64(h ^ ((uint64_t)(uint32_t)tokens[i] + 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1)));
    return h ? h : 1; /* 0 means "no parent" */
}

void tm_kv_cache_destroy(tm_kv_cache *kv)
{
    if (!kv) return;
    free(kv->ref); free(kv->hash); free(kv->parent); free(kv->hashed); free(kv->tokens);
    free(kv->lru_prev); free(kv->lru_next); free(kv->free_stack); free(kv->table);
    free(kv);
}

tm_status tm_kv_cache_create(int32_t n_blocks, int32_t block_size, uint64_t model_key,
                             tm_kv_cache **out, tm_err *err)
{
    *out = NULL;
    if (n_blocks < 1 || n_blocks > (1 << 28))
        return tm_errf(err, TM_ERR_USAGE, "kv cache: %d blocks is out of range [1, 2^28]", n_blocks);
    if (block_size < 1 || block_size > 1024)
        return tm_errf(err, TM_ERR_USAGE, "kv cache: block size %d is out of range [1, 1024]", block_size);
    tm_kv_cache *kv = calloc(1, sizeof *kv);
    if (!kv) return tm_errf(err, TM_ERR_NOMEM, "kv cache: out of memory");
    kv->n = n_blocks;
    kv->bs = block_size;
    kv->model_key = model_key;
    uint32_t cap = 1;
    while (cap < (uint32_t)n_blocks * 2u) cap <<= 1;
    kv->cap_mask = cap - 1;
    size_t n = (size_t)n_blocks;
    kv->ref = calloc(n, sizeof *kv->ref);
    kv->hash = calloc(n, sizeof *kv->hash);
    kv->parent = calloc(n, sizeof *kv->parent);
    kv->hashed = calloc(n, 1);
    kv->tokens = malloc(n * (size_t)block_size * sizeof *kv->tokens);
    kv->lru_prev = malloc(n * sizeof(int32_t));
    kv->lru_next = malloc(n * sizeof(int32_t));
    kv->free_stack = malloc(n * sizeof(int32_t));
    kv->table = malloc((size_t)cap * sizeof(int32_t));
    if (!kv->ref || !kv->hash || !kv->parent || !kv->hashed || !kv->tokens || !kv->lru_prev ||
        !kv->lru_next || !kv->free_stack || !kv->table) {
        tm_kv_cache_destroy(kv);
        return tm_errf(err, TM_ERR_NOMEM, "kv cache: out of memory for %d blocks", n_blocks);
    }
    for (uint32_t i = 0; i < cap; i++) kv->table[i] = -1;
    /* free stack popped from the top: hand out low ids first */
    for (int32_t i = 0; i < n_blocks; i++) kv->free_stack[i] = n_blocks - 1 - i;
    kv->n_free = n_blocks;
    kv->lru_head = kv->lru_tail = -1;
    *out = kv;
    return TM_OK;
}

int32_t tm_kv_cache_block_size(const tm_kv_cache *kv) { return kv->bs; }
int32_t tm_kv_cache_available(const tm_kv_cache *kv) { return kv->n_free + kv->n_lru; }
int32_t tm_kv_cache_refcount(const tm_kv_cache *kv, int32_t block) { return kv->ref[block]; }

void tm_kv_cache_get_stats(const tm_kv_cache *kv, tm_kv_cache_stats *st)
{
    st->n_blocks = kv->n;
    st->free = kv->n_free;
    st->cached_idle = kv->n_lru;
    st->in_use = kv->n - kv->n_free - kv->n_lru;
    st->hits = kv->hits;
    st->evictions = kv->evictions;
}

/* ---- LRU list of idle cached blocks ---- */
static void lru_push_tail(tm_kv_cache *kv, int32_t b)
{
    kv->lru_prev[b] = kv->lru_tail;
    kv->lru_next[b] = -1;
    if (kv->lru_tail >= 0) kv->lru_next[kv->lru_tail] = b; else kv->lru_head = b;
    kv->lru_tail = b;
    kv->n_lru++;
}

static void lru_remove(tm_kv_cache *kv, int32_t b)
{
    int32_t p = kv->lru_prev[b], nx = kv->lru_next[b];
    if (p >= 0) kv->lru_next[p] = nx; else kv->lru_head = nx;
    if (nx >= 0) kv->lru_prev[nx] = p; else kv->lru_tail = p;
    kv->n_lru--;
}

/* ---- prefix index ---- */
static int32_t table_find(const tm_kv_cache *kv, uint64_t h)
{
    for (uint32_t i = (uint32_t)h & kv->cap_mask;; i = (i + 1) & kv->cap_mask) {
        int32_t b = kv->table[i];
        if (b < 0) return -1;
        if (kv->hash[b] == h) return b;
    }
}

static void table_insert(tm_kv_cache *kv, int32_t b)
{
    uint32_t i = (uint32_t)kv->hash[b] & kv->cap_mask;
    while (kv->table[i] >= 0) i = (i + 1) & kv->cap_mask;
    kv->table[i] = b;
}

static void table_remove(tm_kv_cache *kv, int32_t b)
{
    uint32_t i = (uint32_t)kv->hash[b] & kv->cap_mask;
    while (kv->table[i] != b) {
        if (kv->table[i] < 0) return; /* not present */
        i = (i + 1) & kv->cap_mask;
    }
    /* backward-shift deletion keeps probe chains intact without tombstones */
    uint32_t j = i;
    for (;;) {
        kv->table[i] = -1;
        for (;;) {
            j = (j + 1) & kv->cap_mask;
            if (kv->table[j] < 0) return;
            uint32_t home = (uint32_t)kv->hash[kv->table[j]] & kv->cap_mask;
            /* move table[j] to i unless its home lies cyclically in (i, j] */
            if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) break;
        }
        kv->table[i] = kv->table[j];
        i = j;
    }
}

int32_t tm_kv_cache_match_prefix(tm_kv_cache *kv, const int32_t *tokens, int32_t n, int32_t max_blocks,
                                 int32_t *blocks_out, uint64_t *last_hash)
{
    uint64_t parent = 0;
    int32_t m = 0;
    while (m < max_blocks && (int64_t)(m + 1) * kv->bs <= n) {
        const int32_t *t = tokens + (size_t)m * (size_t)kv->bs;
        uint64_t h = tm_kv_cache_block_hash(kv, parent, t);
        int32_t b = table_find(kv, h);
        if (b < 0 || kv->parent[b] != parent ||
            memcmp(kv->tokens + (size_t)b * (size_t)kv->bs, t, (size_t)kv->bs * sizeof *t))
            break;
        if (kv->ref[b] == 0) lru_remove(kv, b);
        kv->ref[b]++;
        blocks_out[m++] = b;
        parent = h;
        kv->hits++;
    }
    if (last_hash) *last_hash = parent;
    return m;
}

tm_status tm_kv_cache_allocate(tm_kv_cache *kv, int32_t n, int32_t *blocks_out)
{
    if (n < 0 || n > kv->n_free + kv->n_lru) return TM_ERR_BUSY;
    for (int32_t i = 0; i < n; i++) {
        int32_t b;
        if (kv->n_free > 0) {
            b = kv->free_stack[--kv->n_free];
        } else {
            b = kv->lru_head;
            lru_remove(kv, b);
            table_remove(kv, b);
            kv->hashed[b] = 0;
            kv->evictions++;
        }
        kv->ref[b] = 1;
        blocks_out[i] = b;
    }
    return TM_OK;
}

void tm_kv_cache_ref(tm_kv_cache *kv, int32_t block) { kv->ref[block]++; }

void tm_kv_cache_release(tm_kv_cache *kv, const int32_t *blocks, int32_t n)
{
    for (int32_t i = n - 1; i >= 0; i--) {
        int32_t b = blocks[i];
        if (b < 0 || b >= kv->n || kv->ref[b] <= 0) continue; /* defensive: double release */
        if (--kv->ref[b] > 0) continue;
        if (kv->hashed[b]) lru_push_tail(kv, b);
        else kv->free_stack[kv->n_free++] = b;
    }
}

uint64_t tm_kv_cache_commit(tm_kv_cache *kv, int32_t block, uint64_t parent, const int32_t *tokens)
{
    uint64_t h = tm_kv_cache_block_hash(kv, parent, tokens);
    if (kv->hashed[block]) return kv->hash[block];
    if (table_find(kv, h) >= 0) return h; /* identical block already cached */
    kv->hash[block] = h;
    kv->parent[block] = parent;
    memcpy(kv->tokens + (size_t)block * (size_t)kv->bs, tokens, (size_t)kv->bs * sizeof *tokens);
    kv->hashed[block] = 1;
    table_insert(kv, block);
    return h;
}
