/* engine.c — schedule → batch → forward → sample → append → stop checks.
 *
 * Sequences (one per choice) are allocated in tm_engine_add and freed in
 * tm_engine_release; the batch arrays, logits and events are sized at
 * create() from max_batch_tokens / max_seqs / max_context, so a step does
 * not allocate.
 *
 * Bookkeeping is O(batch): the choices of a request are linked to their
 * leader (choice 0), so handing siblings to the scheduler or releasing a
 * leader touches only that request's sequences. Block tables: max_seqs rows
 * that sequences keep from step to step (tm_batch.bt_rows); a row already
 * holding a sequence's blocks[0..n) of the same blocks_epoch gets only the
 * blocks added since, so a step writes the table entries that changed.
 */
#include "engine/engine.h"

#include <stdlib.h>
#include <string.h>

#include "util/timeutil.h"

struct tm_engine_seq {
    tm_seq seq;                 /* first: the scheduler's view */
    int64_t request_id;
    int32_t choice;
    void *user;
    tm_sampling_params params;  /* params.seed: the request's effective seed */
    int32_t max_new;
    tm_finish_reason finished;
    int done;                   /* finished or aborted: no longer scheduled */
    int scheduled;              /* handed to the scheduler */
    int32_t n_high;             /* positions [0, n_high) were computed once (now or before a resume) */
    tm_engine_seq *leader;      /* choice 0 of the request (self for choice 0) */
    tm_engine_seq *sib_next, *sib_prev; /* the leader's list of its other choices */
    tm_engine_seq *next, *prev; /* list of live sequences */
    int32_t bt_row;             /* block table row last used (-1: none) */
};

/* One block table row: whose blocks it holds, and how many. */
typedef struct bt_row {
    const tm_engine_seq *owner;
    uint32_t epoch;             /* owner's blocks_epoch when written */
    int32_t n;                  /* entries [0, n) hold owner's blocks */
    uint64_t step;              /* last step it was used in */
} bt_row;

struct tm_engine {
    tm_engine_config cfg;
    const tm_backend_ops *ops;
    tm_backend *backend;
    const tm_model *model;
    int32_t vocab;
    int32_t eos[TM_MAX_EOS];
    int n_eos;
    tm_kv_cache *kv;
    tm_sched *sched;
    tm_sampler *sampler;
    int32_t max_blocks;
    /* batch arrays */
    int32_t *token_ids, *positions, *seq_start, *seq_len, *block_tables, *logit_rows, *bt_rows;
    bt_row *rows;               /* [max_seqs] */
    int32_t row_cursor;         /* where the search for a free row starts */
    uint64_t step;              /* steps run (stamps rows) */
    float *logits;
    tm_engine_event *events;
    tm_engine_work *work;
    tm_engine_seq *live;        /* head of the live list */
    int32_t n_live;
    int32_t n_unscheduled;      /* siblings waiting for their leader's prompt */
};

void tm_engine_destroy(tm_engine *e)
{
    if (!e) return;
    while (e->live) tm_engine_release(e, e->live);
    if (e->backend) e->ops->destroy(e->backend);
    tm_sched_destroy(e->sched);
    tm_kv_cache_destroy(e->kv);
    tm_sampler_destroy(e->sampler);
    free(e->token_ids); free(e->positions); free(e->seq_start); free(e->seq_len);
    free(e->block_tables); free(e->logit_rows); free(e->logits); free(e->events); free(e->work);
    free(e->bt_rows); free(e->rows);
    free(e);
}

static uint64_t model_key(const tm_model *m)
{
    /* the prefix cache must never mix models: key on the directory and shapes */
    const char *d = tm_model_dir(m);
    const tm_model_config *c = tm_model_config_of(m);
    uint64_t h = 1469598103934665603ull;
    for (const char *p = d ? d : ""; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h = (h ^ (uint64_t)c->vocab_size) * 1099511628211ull;
    h = (h ^ (uint64_t)c->hidden_size) * 1099511628211ull;
    h = (h ^ (uint64_t)c->n_layers) * 1099511628211ull;
    return h;
}

tm_status tm_engine_create(const tm_backend_ops *ops, const tm_model *m, const tm_engine_config *cfg,
                           tm_engine **out, tm_err *err)
{
    *out = NULL;
    const tm_model_config *mc = tm_model_config_of(m);
    if (cfg->block_size < 1 || cfg->n_blocks < 1 || cfg->max_batch_tokens < 1 || cfg->max_seqs < 1 ||
        cfg->max_requests < 1 || cfg->max_context < 2)
        return tm_errf(err, TM_ERR_USAGE, "engine: block_size, n_blocks, max_batch_tokens, max_seqs, "
                                          "max_requests must be >= 1 and max_context >= 2");
    tm_engine *e = calloc(1, sizeof *e);
    if (!e) return tm_errf(err, TM_ERR_NOMEM, "engine: out of memory");
    e->cfg = *cfg;
    e->ops = ops;
    e->model = m;
    e->vocab = mc->vocab_size;
    e->n_eos = mc->n_eos;
    memcpy(e->eos, mc->eos_token_ids, sizeof e->eos);
    e->max_blocks = (cfg->max_context + cfg->block_size - 1) / cfg->block_size;

    tm_status st;
    if ((st = tm_kv_cache_create(cfg->n_blocks, cfg->block_size, model_key(m), &e->kv, err))) goto fail;
    tm_sched_config sc = {.max_batch_tokens = cfg->max_batch_tokens, .max_seqs = cfg->max_seqs,
                          .max_waiting = cfg->max_requests};
    if ((st = tm_sched_create(&sc, e->kv, &e->sched, err))) goto fail;
    if ((st = tm_sampler_create(e->vocab, &e->sampler, err))) goto fail;

    size_t nt = (size_t)cfg->max_batch_tokens, ns = (size_t)cfg->max_seqs;
    e->token_ids = malloc(nt * sizeof(int32_t));
    e->positions = malloc(nt * sizeof(int32_t));
    e->seq_start = malloc((ns + 1) * sizeof(int32_t));
    e->seq_len = malloc(ns * sizeof(int32_t));
    e->block_tables = malloc(ns * (size_t)e->max_blocks * sizeof(int32_t));
    e->bt_rows = malloc(ns * sizeof(int32_t));
    e->rows = calloc(ns, sizeof *e->rows);
    e->logit_rows = malloc(ns * sizeof(int32_t));
    e->logits = malloc(ns * (size_t)e->vocab * sizeof(float));
    e->events = calloc(ns, sizeof *e->events);
    e->work = calloc(ns, sizeof *e->work);
    if (!e->work || !e->token_ids || !e->positions || !e->seq_start || !e->seq_len || !e->block_tables || !e->bt_rows || !e->rows ||
        !e->logit_rows || !e->logits || !e->events) {
        st = tm_errf(err, TM_ERR_NOMEM, "engine: out of memory for batch buffers");
        goto fail;
    }
    tm_backend_opts bo = {.n_blocks = cfg->n_blocks, .block_size = cfg->block_size,
                          .max_batch_tokens = cfg->max_batch_tokens, .max_seqs = cfg->max_seqs,
                          .n_threads = cfg->n_threads, .flags = cfg->backend_flags, .kv_dtype = cfg->kv_dtype};
    if ((st = ops->create(m, &bo, &e->backend, err))) goto fail;
    *out = e;
    return TM_OK;
fail:
    tm_engine_destroy(e);
    return st;
}

int tm_engine_has_work(const tm_engine *e)
{
    return tm_sched_n_running(e->sched) + tm_sched_n_waiting(e->sched) + e->n_unscheduled > 0;
}

static void live_push(tm_engine *e, tm_engine_seq *s)
{
    s->prev = NULL;
    s->next = e->live;
    if (e->live) e->live->prev = s;
    e->live = s;
    e->n_live++;
}

/* Validate a request against the engine: n, prompt tokens, context room,
 * sampling parameters, resumed tokens, KV blocks and queue room. *max_new is
 * the tokens each choice may generate; *resumed when a resume carries tokens
 * or a finished choice. */
static tm_status check_request(const tm_engine *e, const tm_engine_request *r, int32_t *max_new_out, int *resumed,
                               tm_err *err)
{
    if (r->n < 1 || r->n > 128) return tm_errf(err, TM_ERR_INPUT, "n must be between 1 and 128, got %d", r->n);
    if (r->n_prompt < 1) return tm_errf(err, TM_ERR_INPUT, "the prompt is empty");
    for (int32_t i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || r->prompt[i] >= e->vocab)
            return tm_errf(err, TM_ERR_INPUT, "prompt token %d at index %d is outside the vocabulary [0, %d)",
                           r->prompt[i], i, e->vocab);
    int32_t room = e->cfg.max_context - r->n_prompt;
    if (room < 1)
        return tm_errf(err, TM_ERR_INPUT, "the prompt has %d tokens; the model's context is %d tokens",
                       r->n_prompt, e->cfg.max_context);
    int32_t max_new = r->params.max_tokens > 0 ? r->params.max_tokens : room;
    if (max_new > room)
        return tm_errf(err, TM_ERR_INPUT,
                       "the prompt (%d tokens) plus max_tokens (%d) exceeds the model's context of %d tokens",
                       r->n_prompt, max_new, e->cfg.max_context);
    tm_status st = tm_sampling_params_check(&r->params, e->vocab, err);
    if (st) return st;
    *resumed = 0;
    if (r->resume) {
        for (int32_t c = 0; c < r->n; c++) {
            int32_t nr = r->n_resume[c];
            int fin = r->resume_finished && r->resume_finished[c] != TM_FINISH_NONE;
            if (nr < 0 || nr > max_new || (nr == max_new && !fin) || (nr > 0 && !r->resume[c]))
                return tm_errf(err, TM_ERR_INPUT, "resume: choice %d has %d tokens, outside [0, %d)", c, nr, max_new);
            for (int32_t i = 0; i < nr; i++)
                if (r->resume[c][i] < 0 || r->resume[c][i] >= e->vocab)
                    return tm_errf(err, TM_ERR_INPUT, "resume: choice %d token %d at index %d is outside the "
                                                      "vocabulary [0, %d)", c, r->resume[c][i], i, e->vocab);
            if (nr > 0 || fin) *resumed = 1;
        }
    }
    int32_t need_blocks = (r->n_prompt + max_new + e->cfg.block_size - 1) / e->cfg.block_size;
    if (need_blocks > e->cfg.n_blocks)
        return tm_errf(err, TM_ERR_INPUT, "the request needs %d KV blocks (%d tokens) but the cache has %d",
                       need_blocks, r->n_prompt + max_new, e->cfg.n_blocks);
    if (tm_sched_n_running(e->sched) + tm_sched_n_waiting(e->sched) + e->n_unscheduled + r->n >
        e->cfg.max_requests)
        return tm_errf(err, TM_ERR_BUSY, "engine: %d sequences already queued", e->n_live);
    *max_new_out = max_new;
    return TM_OK;
}

/* Choice c of r as a new live sequence, linked after its leader (NULL for c == 0). */
static tm_status new_choice(tm_engine *e, const tm_engine_request *r, int32_t c, int32_t max_new,
                            tm_engine_seq *leader, tm_engine_seq **out, tm_err *err)
{
    tm_engine_seq *s = calloc(1, sizeof *s);
    if (!s) return tm_errf(err, TM_ERR_NOMEM, "engine: out of memory");
    tm_status st = tm_seq_init(&s->seq, r->id, r->prompt, r->n_prompt, max_new, e->cfg.block_size, err);
    if (st) {
        free(s);
        return st;
    }
    s->seq.priority = r->priority;
    s->seq.user = s;
    s->request_id = r->id;
    s->choice = c;
    s->user = r->user;
    s->params = r->params;
    s->params.seed = r->seed;
    s->params.has_seed = 1;
    if (s->params.min_tokens > 0 && s->params.n_eos_ids == 0) { /* min_tokens bans the model's eos ids */
        s->params.n_eos_ids = e->n_eos < TM_SAMPLER_MAX_EOS_IDS ? e->n_eos : TM_SAMPLER_MAX_EOS_IDS;
        memcpy(s->params.eos_ids, e->eos, (size_t)s->params.n_eos_ids * sizeof *e->eos);
    }
    s->max_new = max_new;
    s->bt_row = -1;
    s->leader = c == 0 ? s : leader;
    if (c != 0) { /* after the leader, in choice order */
        tm_engine_seq *tail = leader->sib_prev ? leader->sib_prev : leader;
        tail->sib_next = s;
        s->sib_prev = tail;
        leader->sib_prev = s; /* the leader's sib_prev is the list's tail */
    }
    live_push(e, s);
    if (r->seqs_out) r->seqs_out[c] = s;
    *out = s;
    return TM_OK;
}

/* A resumed choice: its generated tokens appended; finished ones are done,
 * the others go to the scheduler (on failure the whole request is released).
 * No sibling holding: each choice's own tokens differ anyway, and the shared
 * prompt blocks are found through the prefix cache. */
static tm_status start_resumed(tm_engine *e, const tm_engine_request *r, int32_t c, tm_engine_seq *s,
                               tm_engine_seq *leader, tm_err *err)
{
    int32_t nr = r->n_resume[c];
    if (nr > 0) memcpy(s->seq.tokens + s->seq.n_tokens, r->resume[c], (size_t)nr * sizeof(int32_t));
    s->seq.n_tokens += nr;
    s->n_high = s->seq.n_tokens - 1; /* the last token's KV was never computed */
    s->scheduled = 1;
    if (r->resume_finished && r->resume_finished[c] != TM_FINISH_NONE) {
        s->finished = r->resume_finished[c];
        s->done = 1;
        return TM_OK;
    }
    tm_status st = tm_sched_add(e->sched, &s->seq, err);
    if (st) {
        while (leader->sib_next) tm_engine_release(e, leader->sib_next);
        tm_engine_release(e, leader);
    }
    return st;
}

tm_status tm_engine_add(tm_engine *e, const tm_engine_request *r, tm_err *err)
{
    int32_t max_new = 0;
    int resumed = 0;
    tm_status st = check_request(e, r, &max_new, &resumed, err);
    if (st) return st;
    tm_engine_seq *leader = NULL;
    for (int32_t c = 0; c < r->n; c++) {
        tm_engine_seq *s = NULL;
        if ((st = new_choice(e, r, c, max_new, leader, &s, err))) return st;
        if (c == 0) leader = s;
        if (resumed) {
            if ((st = start_resumed(e, r, c, s, leader, err))) return st;
            continue;
        }
        if (c == 0) {
            if ((st = tm_sched_add(e->sched, &s->seq, err))) {
                tm_engine_release(e, s);
                return st;
            }
            s->scheduled = 1;
        } else {
            e->n_unscheduled++;
        }
    }
    return TM_OK;
}

/* Hand a leader's held siblings to the scheduler (its prompt is cached now). */
static void release_siblings(tm_engine *e, tm_engine_seq *leader)
{
    for (tm_engine_seq *s = leader->sib_next; s; s = s->sib_next) {
        if (s->scheduled || s->done) continue;
        tm_err err;
        s->scheduled = 1;
        e->n_unscheduled--;
        if (tm_sched_add(e->sched, &s->seq, &err) != TM_OK) s->done = 1;
    }
}

/* Give every item of the plan a block table row (bt_rows[k]) holding its
 * sequence's current blocks, writing only entries not already there. */
static void fill_block_tables(tm_engine *e, const tm_sched_out *plan)
{
    const int32_t ns = e->cfg.max_seqs;
    e->step++;
    for (int32_t k = 0; k < plan->n_items; k++) { /* rows kept from earlier steps */
        const tm_engine_seq *es = (const tm_engine_seq *)plan->items[k].seq->user;
        int32_t r = es->bt_row;
        e->bt_rows[k] = -1;
        if (r >= 0 && e->rows[r].owner == es) {
            e->rows[r].step = e->step;
            e->bt_rows[k] = r;
        }
    }
    for (int32_t k = 0; k < plan->n_items; k++) {
        tm_engine_seq *es = (tm_engine_seq *)plan->items[k].seq->user;
        const tm_seq *q = &es->seq;
        int32_t r = e->bt_rows[k];
        if (r < 0) { /* a row no item of this step uses: n_items <= max_seqs rows */
            while (e->rows[e->row_cursor].step == e->step) e->row_cursor = (e->row_cursor + 1) % ns;
            r = e->row_cursor;
            e->rows[r] = (bt_row){.owner = es, .epoch = q->blocks_epoch, .n = 0, .step = e->step};
            es->bt_row = e->bt_rows[k] = r;
        }
        bt_row *row = &e->rows[r];
        if (row->epoch != q->blocks_epoch || row->n > q->n_blocks) row->n = 0;
        int32_t *dst = e->block_tables + (size_t)r * (size_t)e->max_blocks;
        if (q->n_blocks > row->n)
            memcpy(dst + row->n, q->blocks + row->n, (size_t)(q->n_blocks - row->n) * sizeof *dst);
        row->n = q->n_blocks;
        row->epoch = q->blocks_epoch;
    }
}

/* The plan's tokens, positions, sequence bounds, work records and logit
 * rows into the engine's preallocated arrays; *n_logits the rows. Returns the
 * batch's token count. */
static int32_t build_batch(tm_engine *e, const tm_sched_out *plan, int32_t *n_logits)
{
    int32_t t = 0, nl = 0;
    for (int32_t k = 0; k < plan->n_items; k++) {
        const tm_sched_item *it = &plan->items[k];
        const tm_seq *q = it->seq;
        e->seq_start[k] = t;
        for (int32_t p = it->start; p < it->start + it->n_new; p++, t++) {
            e->token_ids[t] = q->tokens[p];
            e->positions[t] = p;
        }
        e->seq_len[k] = it->start + it->n_new;
        tm_engine_seq *es = (tm_engine_seq *)q->user;
        int32_t end = it->start + it->n_new;
        int32_t rc = (end < es->n_high ? end : es->n_high) - it->start;
        e->work[k] = (tm_engine_work){.user = es->user, .choice = es->choice, .start = it->start,
                                      .n_new = it->n_new, .prefill = it->n_new > 1 || it->start < q->n_prompt,
                                      .n_recompute = rc > 0 ? rc : 0};
        if (end > es->n_high) es->n_high = end;
        if (it->need_logits) e->logit_rows[nl++] = t - 1;
    }
    e->seq_start[plan->n_items] = t;
    *n_logits = nl;
    return t;
}

/* Sample the next token of an item that needed logits (row), append it and
 * check the stop conditions; the event goes to out. */
static void sample_item(tm_engine *e, const tm_sched_item *it, const float *row, tm_engine_step_out *out,
                        tm_err *err)
{
    tm_engine_seq *s = (tm_engine_seq *)it->seq->user;
    tm_seq *q = &s->seq;
    int32_t gen = q->n_tokens - q->n_prompt;
    tm_engine_event *ev = &e->events[out->n_events++];
    memset(ev, 0, sizeof *ev);
    ev->seq = s;
    ev->request_id = s->request_id;
    ev->choice = s->choice;
    ev->user = s->user;
    ev->logits = row;
    tm_status st = tm_sampler_sample(e->sampler, row, &s->params, (uint64_t)s->choice, (uint64_t)gen, q->tokens,
                                     (size_t)q->n_tokens, (size_t)q->n_prompt, &ev->sample, err);
    if (st) {
        /* a row the sampler rejects (all -inf) ends that sequence alone */
        ev->token = -1;
        ev->aborted = 1;
        tm_sched_remove(e->sched, q);
        s->done = 1;
        if (s->leader == s) release_siblings(e, s);
        return;
    }
    ev->token = ev->sample.token;
    q->tokens[q->n_tokens++] = ev->token;
    gen++;
    ev->finished = tm_stop_check_token(&s->params, e->eos, (size_t)e->n_eos, ev->token, gen);
    if (!ev->finished && gen >= s->max_new) ev->finished = TM_FINISH_LENGTH; /* context cap */
    if (ev->finished) {
        tm_sched_remove(e->sched, q);
        s->finished = ev->finished;
        s->done = 1;
    }
    if (s->leader == s && gen == 1) release_siblings(e, s);
}

tm_status tm_engine_step(tm_engine *e, tm_engine_step_out *out, tm_err *err)
{
    memset(out, 0, sizeof *out);
    out->events = e->events;
    out->work = e->work;
    tm_sched_out plan;
    tm_status st = tm_sched_step(e->sched, &plan, err);
    if (st) return st;
    if (plan.n_items == 0) return TM_OK;
    fill_block_tables(e, &plan);

    int32_t nl;
    int32_t t = build_batch(e, &plan, &nl);
    tm_batch b = {.n_tokens = t, .token_ids = e->token_ids, .positions = e->positions,
                  .n_seqs = plan.n_items, .seq_start = e->seq_start, .seq_len = e->seq_len,
                  .block_tables = e->block_tables, .max_blocks = e->max_blocks, .bt_rows = e->bt_rows,
                  .n_logits = nl, .logit_rows = e->logit_rows, .logits = e->logits};
    uint64_t t0 = tm_now_mono_ns();
    if ((st = e->ops->forward(e->backend, &b, err))) return st;
    out->forward_ns = tm_now_mono_ns() - t0;
    out->n_tokens = plan.n_tokens;
    out->n_prefill_tokens = plan.n_prefill_tokens;
    out->n_decode_tokens = plan.n_decode_tokens;
    out->n_seqs = plan.n_items;
    out->n_preempted = plan.n_preempted;
    out->n_cached_tokens = plan.n_cached_tokens;

    /* advance, sample, append, stop checks */
    int32_t li = 0;
    for (int32_t k = 0; k < plan.n_items; k++) {
        const tm_sched_item *it = &plan.items[k];
        tm_sched_advance(e->sched, it);
        if (!it->need_logits) continue;
        sample_item(e, it, e->logits + (size_t)li++ * (size_t)e->vocab, out, err);
    }
    return TM_OK;
}

const int32_t *tm_engine_seq_tokens(const tm_engine_seq *s, int32_t *n_prompt, int32_t *n_total)
{
    if (n_prompt) *n_prompt = s->seq.n_prompt;
    if (n_total) *n_total = s->seq.n_tokens;
    return s->seq.tokens;
}

int32_t tm_engine_seq_cached(const tm_engine_seq *s) { return s->seq.n_cached; }
int32_t tm_engine_seq_preemptions(const tm_engine_seq *s) { return s->seq.n_preemptions; }

void tm_engine_finish(tm_engine *e, tm_engine_seq *s, tm_finish_reason why)
{
    if (s->done) return;
    if (s->scheduled) tm_sched_remove(e->sched, &s->seq);
    else { s->scheduled = 1; e->n_unscheduled--; }
    s->finished = why;
    s->done = 1;
    if (s->leader == s) release_siblings(e, s);
}

void tm_engine_release(tm_engine *e, tm_engine_seq *s)
{
    if (!s) return;
    if (!s->done) tm_engine_finish(e, s, TM_FINISH_NONE);
    /* siblings keep a pointer to their leader: each becomes its own */
    if (s->leader == s) {
        for (tm_engine_seq *o = s->sib_next, *nx; o; o = nx) {
            nx = o->sib_next;
            o->leader = o;
            o->sib_next = o->sib_prev = NULL;
        }
    } else {
        tm_engine_seq *l = s->leader;
        if (s->sib_prev) s->sib_prev->sib_next = s->sib_next;
        if (s->sib_next) s->sib_next->sib_prev = s->sib_prev;
        else if (l->sib_prev == s) l->sib_prev = s->sib_prev == l ? NULL : s->sib_prev;
    }
    if (s->bt_row >= 0 && e->rows[s->bt_row].owner == s) e->rows[s->bt_row].owner = NULL;
    if (s->prev) s->prev->next = s->next; else e->live = s->next;
    if (s->next) s->next->prev = s->prev;
    e->n_live--;
    tm_seq_free(&s->seq);
    free(s);
}

void tm_engine_abort_request(tm_engine *e, int64_t request_id)
{
    for (tm_engine_seq *s = e->live; s; s = s->next)
        if (s->request_id == request_id && !s->done) tm_engine_finish(e, s, TM_FINISH_NONE);
}

void tm_engine_kv_stats(const tm_engine *e, tm_kv_cache_stats *st) { tm_kv_cache_get_stats(e->kv, st); }
