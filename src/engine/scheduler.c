/* scheduler.c — continuous batching: decodes first, then chunked prefill,
 * admission by KV availability, preemption by recompute.
 *
 * running[] is kept in admission order; waiting[] is kept sorted (priority
 * desc, preempted first, prompt tokens lexicographically so that shared
 * prefixes are adjacent, then arrival). Both arrays and the step's item list
 * are allocated at create().
 */
#include "engine/scheduler.h"

#include <stdlib.h>
#include <string.h>

struct tm_sched {
    tm_sched_config cfg;
    tm_kv_cache *kv;
    int32_t bs;
    tm_seq **running;
    int32_t n_running, cap_running;
    tm_seq **waiting;
    int32_t n_waiting;
    tm_sched_item *items;
    int64_t arrivals;
};

void tm_sched_destroy(tm_sched *s)
{
    if (!s) return;
    free(s->running);
    free(s->waiting);
    free(s->items);
    free(s);
}

tm_status tm_sched_create(const tm_sched_config *cfg, tm_kv_cache *kv, tm_sched **out, tm_err *err)
{
    *out = NULL;
    if (cfg->max_batch_tokens < 1 || cfg->max_seqs < 1 || cfg->max_waiting < 1)
        return tm_errf(err, TM_ERR_USAGE, "scheduler: max_batch_tokens, max_seqs and max_waiting must be >= 1");
    tm_sched *s = calloc(1, sizeof *s);
    if (!s) return tm_errf(err, TM_ERR_NOMEM, "scheduler: out of memory");
    s->cfg = *cfg;
    s->kv = kv;
    s->bs = tm_kv_cache_block_size(kv);
    /* running can hold every admitted sequence: at most max_seqs are
     * scheduled per step, but a running sequence may skip a step */
    s->cap_running = cfg->max_waiting + cfg->max_seqs;
    s->running = calloc((size_t)s->cap_running, sizeof *s->running);
    s->waiting = calloc((size_t)cfg->max_waiting + (size_t)s->cap_running, sizeof *s->waiting);
    s->items = calloc((size_t)cfg->max_seqs, sizeof *s->items);
    if (!s->running || !s->waiting || !s->items) {
        tm_sched_destroy(s);
        return tm_errf(err, TM_ERR_NOMEM, "scheduler: out of memory");
    }
    *out = s;
    return TM_OK;
}

int32_t tm_sched_n_running(const tm_sched *s) { return s->n_running; }
int32_t tm_sched_n_waiting(const tm_sched *s) { return s->n_waiting; }

/* <0 when a runs before b */
static int wait_cmp(const tm_seq *a, const tm_seq *b)
{
    if (a->priority != b->priority) return a->priority > b->priority ? -1 : 1;
    int pa = a->n_preemptions > 0, pb = b->n_preemptions > 0;
    if (pa != pb) return pa ? -1 : 1;
    int32_t n = a->n_prompt < b->n_prompt ? a->n_prompt : b->n_prompt;
    for (int32_t i = 0; i < n; i++)
        if (a->tokens[i] != b->tokens[i]) return a->tokens[i] < b->tokens[i] ? -1 : 1;
    if (a->n_prompt != b->n_prompt) return a->n_prompt < b->n_prompt ? -1 : 1;
    if (a->arrival != b->arrival) return a->arrival < b->arrival ? -1 : 1;
    return a->id < b->id ? -1 : (a->id > b->id);
}

static void waiting_insert(tm_sched *s, tm_seq *q)
{
    int32_t lo = 0, hi = s->n_waiting;
    while (lo < hi) {
        int32_t mid = (lo + hi) / 2;
        if (wait_cmp(s->waiting[mid], q) <= 0) lo = mid + 1; else hi = mid;
    }
    memmove(s->waiting + lo + 1, s->waiting + lo, (size_t)(s->n_waiting - lo) * sizeof *s->waiting);
    s->waiting[lo] = q;
    s->n_waiting++;
    q->state = TM_SEQ_WAITING;
}

static void array_remove(tm_seq **arr, int32_t *n, int32_t i)
{
    memmove(arr + i, arr + i + 1, (size_t)(*n - i - 1) * sizeof *arr);
    (*n)--;
}

tm_status tm_sched_add(tm_sched *s, tm_seq *seq, tm_err *err)
{
    tm_kv_cache_stats st;
    tm_kv_cache_get_stats(s->kv, &st);
    if (seq->cap_blocks > st.n_blocks)
        return tm_errf(err, TM_ERR_INPUT,
                       "request needs %d KV blocks (%d tokens) but the whole cache has %d",
                       seq->cap_blocks, seq->cap_tokens, st.n_blocks);
    if (s->n_waiting >= s->cfg.max_waiting) return tm_errf(err, TM_ERR_BUSY, "scheduler: waiting queue full");
    seq->arrival = s->arrivals++;
    seq->n_blocks = seq->n_computed = seq->n_committed = 0;
    seq->blocks_epoch++;
    seq->last_hash = 0;
    waiting_insert(s, seq);
    return TM_OK;
}

static int32_t blocks_for(const tm_sched *s, int32_t tokens) { return (tokens + s->bs - 1) / s->bs; }

static void release_blocks(tm_sched *s, tm_seq *q)
{
    tm_kv_cache_release(s->kv, q->blocks, q->n_blocks);
    q->n_blocks = q->n_computed = q->n_committed = 0;
    q->blocks_epoch++;
    q->last_hash = 0;
}

static void preempt(tm_sched *s, int32_t running_idx)
{
    tm_seq *q = s->running[running_idx];
    array_remove(s->running, &s->n_running, running_idx);
    release_blocks(s, q);
    q->n_preemptions++;
    waiting_insert(s, q);
}

/* Victim among running[from..]: lowest priority, then latest admitted. */
static int32_t pick_victim(const tm_sched *s, int32_t from)
{
    int32_t v = from;
    for (int32_t j = from + 1; j < s->n_running; j++) {
        const tm_seq *a = s->running[j], *b = s->running[v];
        if (a->priority < b->priority || (a->priority == b->priority && a->arrival > b->arrival)) v = j;
    }
    return v;
}

/* Would q reuse more than its m cached blocks once a running sequence that
 * is still prefilling (or was admitted in this very step) has computed its
 * prompt? Compares token ids directly, block by block. */
static int prefix_in_flight(const tm_sched *s, const tm_seq *q, int32_t m)
{
    int32_t max_blocks = (q->n_tokens - 1) / s->bs;
    if (m >= max_blocks) return 0;
    for (int32_t i = 0; i < s->n_running; i++) {
        const tm_seq *r = s->running[i];
        if (r->n_computed >= r->n_prompt) continue; /* its prompt blocks are cached already */
        int32_t lim = r->n_prompt < q->n_tokens ? r->n_prompt : q->n_tokens;
        const int32_t *a = q->tokens + (size_t)m * (size_t)s->bs, *b = r->tokens + (size_t)m * (size_t)s->bs;
        if ((m + 1) * s->bs <= lim && !memcmp(a, b, (size_t)s->bs * sizeof *a)) return 1;
    }
    return 0;
}

static void add_item(tm_sched *s, tm_sched_out *out, tm_seq *q, int32_t n_new)
{
    tm_sched_item *it = &s->items[out->n_items++];
    it->seq = q;
    it->start = q->n_computed;
    it->n_new = n_new;
    it->need_logits = q->n_computed + n_new == q->n_tokens;
    out->n_tokens += n_new;
    if (q->n_computed + n_new <= q->n_prompt || n_new > 1) out->n_prefill_tokens += n_new;
    else out->n_decode_tokens += n_new;
}

tm_status tm_sched_step(tm_sched *s, tm_sched_out *out, tm_err *err)
{
    memset(out, 0, sizeof *out);
    out->items = s->items;
    int32_t budget = s->cfg.max_batch_tokens;

    /* 1. running sequences, in admission order */
    for (int32_t i = 0; i < s->n_running && budget > 0 && out->n_items < s->cfg.max_seqs;) {
        tm_seq *q = s->running[i];
        int32_t remaining = q->n_tokens - q->n_computed;
        if (remaining <= 0) { i++; continue; }
        int32_t n_new = remaining < budget ? remaining : budget;
        int32_t need = blocks_for(s, q->n_computed + n_new) - q->n_blocks;
        int self_preempted = 0;
        while (need > tm_kv_cache_available(s->kv)) {
            int32_t v = pick_victim(s, i);
            preempt(s, v);
            out->n_preempted++;
            if (v == i) { self_preempted = 1; break; }
        }
        if (self_preempted) continue; /* running[i] is now the next sequence */
        if (need > 0 && tm_kv_cache_allocate(s->kv, need, q->blocks + q->n_blocks) != TM_OK)
            return tm_errf(err, TM_ERR_INTERNAL, "scheduler: block allocation failed after preemption");
        q->n_blocks += need > 0 ? need : 0;
        add_item(s, out, q, n_new);
        budget -= n_new;
        i++;
    }

    /* 2. admit waiting sequences while budget, seats and blocks allow */
    for (int32_t w = 0; w < s->n_waiting && budget > 0 && out->n_items < s->cfg.max_seqs &&
                        s->n_running < s->cap_running;) {
        tm_seq *q = s->waiting[w];
        uint64_t last = 0;
        int32_t m = tm_kv_cache_match_prefix(s->kv, q->tokens, q->n_tokens, (q->n_tokens - 1) / s->bs,
                                             q->blocks, &last);
        if (prefix_in_flight(s, q, m)) {
            /* a running sequence is computing blocks this one could reuse:
             * admit it once they are cached instead of computing them twice */
            tm_kv_cache_release(s->kv, q->blocks, m);
            w++;
            continue;
        }
        int32_t n_computed = m * s->bs;
        int32_t remaining = q->n_tokens - n_computed;
        int32_t n_new = remaining < budget ? remaining : budget;
        int32_t need = blocks_for(s, n_computed + n_new) - m;
        if (need > tm_kv_cache_available(s->kv)) {
            tm_kv_cache_release(s->kv, q->blocks, m);
            break; /* waits for blocks; the order is kept */
        }
        if (need > 0 && tm_kv_cache_allocate(s->kv, need, q->blocks + m) != TM_OK) {
            tm_kv_cache_release(s->kv, q->blocks, m);
            return tm_errf(err, TM_ERR_INTERNAL, "scheduler: block allocation failed");
        }
        array_remove(s->waiting, &s->n_waiting, w);
        q->n_blocks = m + need;
        q->n_computed = n_computed;
        q->n_committed = m;
        q->last_hash = last;
        if (q->n_preemptions == 0) {
            int32_t c = n_computed < q->n_prompt ? n_computed : q->n_prompt;
            q->n_cached = c;
            out->n_cached_tokens += c;
        }
        q->arrival = s->arrivals++;
        q->state = TM_SEQ_RUNNING;
        s->running[s->n_running++] = q;
        add_item(s, out, q, n_new);
        budget -= n_new;
    }
    return TM_OK;
}

void tm_sched_advance(tm_sched *s, const tm_sched_item *item)
{
    tm_seq *q = item->seq;
    q->n_computed = item->start + item->n_new;
    while ((q->n_committed + 1) * s->bs <= q->n_computed) {
        q->last_hash = tm_kv_cache_commit(s->kv, q->blocks[q->n_committed], q->last_hash,
                                          q->tokens + (size_t)q->n_committed * (size_t)s->bs);
        q->n_committed++;
    }
}

void tm_sched_remove(tm_sched *s, tm_seq *seq)
{
    /* state says which array holds it (waiting_insert / admission keep it) */
    if (seq->state == TM_SEQ_RUNNING) {
        for (int32_t i = 0; i < s->n_running; i++)
            if (s->running[i] == seq) { array_remove(s->running, &s->n_running, i); break; }
    } else if (seq->state == TM_SEQ_WAITING) {
        for (int32_t i = 0; i < s->n_waiting; i++)
            if (s->waiting[i] == seq) { array_remove(s->waiting, &s->n_waiting, i); break; }
    }
    release_blocks(s, seq);
    seq->state = TM_SEQ_FINISHED;
}
