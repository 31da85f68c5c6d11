/* request.c — one request through the worker: start (prepare, resume from a
 * checkpoint, engine add), take a token (detokenizer, stop strings), finish
 * (response, queue complete), fail, cancel. What a response carries beside
 * the text (logprobs, stop_reason, reasoning) is built in respond.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/stop.h"
#include "output/response.h"
#include "util/timeutil.h"
#include "worker/checkpoint.h"
#include "worker/worker_int.h"

/* A request that leaves without a result: its attributed time becomes the
 * run's overhead (the run still paid for it). */
static void discard_cost(worker *w, wreq *r)
{
    double ds = r->cost_s - r->carried_s, du = r->cost_usd - r->carried_usd;
    double dj = r->cost_j < 0 ? -1 : r->cost_j - (r->carried_j > 0 ? r->carried_j : 0);
    if (w->meter && !r->keep_cost && ds > 0) tm_cost_meter_discard(w->meter, ds, dj, du);
    r->cost_s = r->cost_usd = 0;
    r->cost_j = -1;
}

static void wreq_free(worker *w, wreq *r)
{
    if (!r) return;
    discard_cost(w, r); /* no-op after a result was stored with its cost */
    if (r->choices) {
        for (int32_t i = 0; i < r->prep.n; i++) {
            wchoice *c = &r->choices[i];
            if (c->seq) {
                tm_engine_release(w->engine, c->seq);
                w->live_seqs--;
            }
            tm_detok_destroy(c->detok);
            tm_stop_destroy(c->stop);
            tm_buf_free(&c->text);
            free(c->samples);
        }
        free(r->choices);
    }
    tm_prepared_clear(&r->prep);
    tm_queue_claimed_clear(&r->claim);
    free(r);
}

static void unlink_req(worker *w, wreq *r)
{
    for (wreq **pp = &w->inflight; *pp; pp = &(*pp)->next)
        if (*pp == r) { *pp = r->next; w->n_inflight--; return; }
}

void tm_worker_drop_request(worker *w, wreq *r)
{
    unlink_req(w, r);
    wreq_free(w, r);
}

const char *tm_worker_cr(const worker *w) { return w->tty ? "\r\033[K" : ""; }

/* Fail one claimed request with a message; the run goes on. */
static tm_status fail_request(worker *w, const tm_queue_claimed *c, const char *code, const char *msg)
{
    tm_err err;
    tm_status st = tm_queue_fail(w->q, w->owner, c->request_id, code, msg, &err);
    if (st == TM_ERR_NOTFOUND) return TM_OK; /* lease lost: someone else has it */
    if (st) return tm_errf(NULL, st, "%s", err.msg);
    w->sum->failed++;
    if (!w->o->quiet) fprintf(stderr, "%stokenmill run: %s (%s): %s\n", tm_worker_cr(w),
                              c->custom_id ? c->custom_id : c->request_id, code, msg);
    return TM_OK;
}

/* Append a piece of detokenized text to a choice, applying stop strings.
 * Returns 1 when a stop string matched. */
static int feed_text(wchoice *c, const char *piece, size_t len)
{
    if (!len) return 0;
    tm_stop_result sr;
    int hit = tm_stop_feed(c->stop, piece, len, &sr);
    tm_buf_append(&c->text, piece, len);
    if (hit) {
        c->text.len = (size_t)sr.cut;
        if (c->text.data) c->text.data[c->text.len] = 0;
    }
    return hit;
}

/* One generated token of a choice through the detokenizer and the stop
 * strings; the engine's own verdict (eos / stop id / length) in finished.
 * Returns the choice's finish reason, TM_FINISH_NONE while it goes on; *text_stop
 * says a stop string ended it (the engine does not know yet). */
static tm_finish_reason take_token(wchoice *c, int32_t token, const tm_sample_result *sample,
                                   tm_finish_reason finished, int *text_stop)
{
    *text_stop = 0;
    tm_stop_note_token(c->stop); /* min_tokens: stop strings wait */
    if (c->samples && c->n_samples < c->cap_samples) c->samples[c->n_samples++] = *sample;
    int hit = 0;
    const char *piece;
    size_t len;
    tm_err derr;
    if (finished != TM_FINISH_STOP && c->detok) {
        if (tm_detok_push(c->detok, token, &piece, &len, &derr) == TM_OK) hit = feed_text(c, piece, len);
        if (!hit && finished == TM_FINISH_LENGTH && tm_detok_flush(c->detok, &piece, &len, &derr) == TM_OK)
            hit = feed_text(c, piece, len);
    } else if (c->detok && tm_detok_flush(c->detok, &piece, &len, &derr) == TM_OK) {
        hit = feed_text(c, piece, len); /* a stop token: bytes held back end the text (as U+FFFD) */
    }
    if (hit && !finished) *text_stop = 1;
    if (hit || finished) {
        c->finish = hit ? TM_FINISH_STOP : finished;
        c->done = 1;
    }
    return c->done ? c->finish : TM_FINISH_NONE;
}

/* Rebuild a resumed request's choices from its checkpoint: each token goes
 * through the same checks as when it was generated. resume[i] / n_resume[i]
 * / fin[i] are filled for the engine. A checkpoint that does not fit the
 * request (another n, logprobs setting, a token past a stop) is refused. */
static tm_status replay_checkpoint(worker *w, wreq *r, const tm_ckpt *ck, const int32_t **resume, int32_t *n_resume,
                                   tm_finish_reason *fin, tm_err *err)
{
    if (ck->n_choices != r->prep.n) return tm_errf(err, TM_ERR_INPUT, "%d choices, the request has %d", ck->n_choices, r->prep.n);
    if (!ck->logprobs != !r->prep.params.logprobs) return tm_errf(err, TM_ERR_INPUT, "logprobs setting differs");
    const tm_model_config *mc = tm_model_config_of(w->model);
    for (int32_t i = 0; i < ck->n_choices; i++) {
        const tm_ckpt_choice *cc = &ck->choices[i];
        wchoice *c = &r->choices[i];
        if (cc->n_tokens > r->max_new) return tm_errf(err, TM_ERR_INPUT, "choice %d has %d tokens (max %d)", i, cc->n_tokens, r->max_new);
        resume[i] = cc->tokens;
        n_resume[i] = cc->n_tokens;
        fin[i] = TM_FINISH_NONE;
        for (int32_t t = 0; t < cc->n_tokens; t++) {
            if (c->done) return tm_errf(err, TM_ERR_INPUT, "choice %d goes on after it finished (token %d)", i, t);
            int32_t tok = cc->tokens[t];
            if (tok < 0 || tok >= mc->vocab_size) return tm_errf(err, TM_ERR_INPUT, "choice %d: token %d outside the vocabulary", i, tok);
            tm_finish_reason f = tm_stop_check_token(&r->prep.params, mc->eos_token_ids, (size_t)mc->n_eos, tok, t + 1);
            if (!f && t + 1 >= r->max_new) f = TM_FINISH_LENGTH;
            tm_sample_result sr = {.token = tok};
            int ts;
            fin[i] = take_token(c, tok, ck->logprobs ? &cc->samples[t] : &sr, f, &ts);
        }
        if (c->done) r->n_done++;
    }
    r->cost_s = ck->gpu_seconds > 0 ? ck->gpu_seconds : 0;
    r->cost_j = ck->energy_joules;
    r->cost_usd = ck->cost_usd > 0 ? ck->cost_usd : 0;
    r->wasted_s = ck->wasted_seconds > 0 ? ck->wasted_seconds : 0;
    r->wasted_usd = ck->wasted_usd > 0 ? ck->wasted_usd : 0;
    r->carried_s = r->cost_s;
    r->carried_j = r->cost_j;
    r->carried_usd = r->cost_usd;
    return TM_OK;
}

static void reset_choices(wreq *r)
{
    for (int32_t i = 0; i < r->prep.n; i++) {
        wchoice *c = &r->choices[i];
        tm_detok_reset(c->detok);
        tm_stop_reset(c->stop);
        tm_buf_clear(&c->text);
        c->n_samples = 0;
        c->done = 0;
        c->finish = TM_FINISH_NONE;
    }
    r->n_done = 0;
    r->cost_s = r->cost_usd = r->wasted_s = r->wasted_usd = 0;
    r->carried_s = r->carried_usd = 0;
    r->cost_j = r->carried_j = -1;
}

static tm_status finish_request(worker *w, wreq *r, tm_err *err);
static tm_status queue_done(worker *w, wreq *r, int64_t completion, int32_t cached, tm_err *err);

/* The choices' detokenizers, stop matchers and logprob buffers. */
static tm_status make_choices(worker *w, wreq *r, tm_err *err)
{
    tm_status st;
    r->choices = calloc((size_t)r->prep.n, sizeof *r->choices);
    if (!r->choices) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    int32_t max_new = r->max_new > 0 ? r->max_new : 1;
    for (int32_t i = 0; i < r->prep.n; i++) {
        wchoice *c = &r->choices[i];
        tm_buf_init(&c->text);
        if (w->tok && (st = tm_detok_create(w->tok, 1, &c->detok, err))) return st;
        if ((st = tm_stop_create_from_params(&r->prep.params, &c->stop, err))) return st;
        if (r->prep.params.logprobs) {
            c->cap_samples = max_new;
            c->samples = malloc((size_t)max_new * sizeof *c->samples);
            if (!c->samples) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
        }
    }
    return TM_OK;
}

/* Resume from a checkpoint of an earlier attempt: 1 when the choices were
 * rebuilt (resume / n_resume / fin filled, ck holds the tokens), 0 when
 * there is none or it does not fit (then the request starts over);
 * TM_ERR_NOMEM in *st. */
static int try_resume(worker *w, wreq *r, tm_ckpt *ck, const int32_t **resume, int32_t *n_resume,
                      tm_finish_reason *fin, tm_status *st, tm_err *err)
{
    *st = TM_OK;
    if (!(r->claim.checkpoint || r->claim.checkpoint_bad) || r->prep.n > TM_CKPT_MAX_CHOICES ||
        w->max_context - r->prep.n_prompt <= 0)
        return 0;
    tm_err cerr;
    tm_status s = r->claim.checkpoint_bad ? tm_errf(&cerr, TM_ERR_INPUT, "unreadable zstd frame")
                                          : tm_ckpt_decode(r->claim.checkpoint, r->claim.checkpoint_len, ck, &cerr);
    if (s == TM_ERR_NOMEM) { *st = tm_errf(err, s, "out of memory"); return 0; }
    if (!s) s = replay_checkpoint(w, r, ck, resume, n_resume, fin, &cerr);
    if (!s) return 1;
    if (!w->o->quiet)
        fprintf(stderr, "%stokenmill run: %s: checkpoint ignored (%s); starting over\n", tm_worker_cr(w),
                r->claim.custom_id ? r->claim.custom_id : r->claim.request_id, cerr.msg);
    reset_choices(r);
    return 0;
}

/* Hand a prepared request to the engine and put it in flight. */
static tm_status add_to_engine(worker *w, wreq *r, tm_err *err)
{
    tm_ckpt ck;
    memset(&ck, 0, sizeof ck);
    const int32_t *resume[TM_CKPT_MAX_CHOICES];
    int32_t n_resume[TM_CKPT_MAX_CHOICES];
    tm_finish_reason fin[TM_CKPT_MAX_CHOICES];
    tm_status st;
    int resumed = try_resume(w, r, &ck, resume, n_resume, fin, &st, err);
    if (st) { wreq_free(w, r); return st; }
    tm_engine_seq *seqs[TM_CKPT_MAX_CHOICES];
    tm_engine_request er = {.id = (int64_t)(intptr_t)r, .prompt = r->prep.prompt, .n_prompt = r->prep.n_prompt,
                            .priority = r->claim.priority > INT32_MAX ? INT32_MAX
                                        : r->claim.priority < -INT32_MAX ? -INT32_MAX : (int32_t)r->claim.priority,
                            .n = r->prep.n, .params = r->prep.params,
                            .seed = r->prep.params.seed, .user = r,
                            .resume = resumed ? resume : NULL, .n_resume = resumed ? n_resume : NULL,
                            .resume_finished = resumed ? fin : NULL,
                            .seqs_out = r->prep.n <= TM_CKPT_MAX_CHOICES ? seqs : NULL};
    tm_err rerr;
    st = tm_engine_add(w->engine, &er, &rerr);
    tm_ckpt_clear(&ck);
    if (st == TM_ERR_INPUT) {
        st = fail_request(w, &r->claim, "invalid_request", rerr.msg);
        wreq_free(w, r);
        return st;
    }
    if (st == TM_ERR_BUSY) { /* the engine holds all the choices it can: back to the queue, claimed again later */
        tm_queue_release(w->q, w->owner, r->claim.request_id, NULL, NULL);
        wreq_free(w, r);
        return TM_ERR_BUSY;
    }
    if (st) { wreq_free(w, r); return tm_errf(err, st, "%s", rerr.msg); }
    if (er.seqs_out)
        for (int32_t i = 0; i < r->prep.n; i++) r->choices[i].seq = seqs[i];
    w->live_seqs += r->prep.n;
    r->next = w->inflight;
    w->inflight = r;
    w->n_inflight++;
    if (resumed) {
        w->sum->resumed++;
        if (r->n_done == r->prep.n) { /* every choice had finished before the stop */
            st = finish_request(w, r, err);
            tm_worker_drop_request(w, r);
            return st;
        }
    }
    return TM_OK;
}

tm_status tm_worker_start_request(worker *w, tm_queue_claimed *claim, tm_err *err)
{
    wreq *r = calloc(1, sizeof *r);
    if (!r) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    r->claim = *claim;
    memset(claim, 0, sizeof *claim);
    r->cost_j = -1;
    tm_err rerr;
    tm_status st = tm_prepare_request(&w->pctx, r->claim.url, r->claim.body_json, r->claim.job_id,
                                      r->claim.custom_id, &r->prep, &rerr);
    if (st == TM_ERR_NOMEM) { wreq_free(w, r); return tm_errf(err, st, "out of memory"); }
    if (st) {
        st = fail_request(w, &r->claim, "invalid_request", rerr.msg);
        wreq_free(w, r);
        return st;
    }
    int32_t room = w->max_context - r->prep.n_prompt;
    r->max_new = r->prep.params.max_tokens > 0 ? r->prep.params.max_tokens : room;
    if ((st = make_choices(w, r, err))) { wreq_free(w, r); return st; }
    return add_to_engine(w, r, err);
}

static tm_status finish_request(worker *w, wreq *r, tm_err *err)
{
    tm_response_choice ch[TM_PREPARE_MAX_N];
    int64_t completion = 0;
    int32_t cached = 0;
    for (int32_t i = 0; i < r->prep.n; i++) {
        wchoice *c = &r->choices[i];
        int32_t n_prompt, n_total;
        const int32_t *toks = tm_engine_seq_tokens(c->seq, &n_prompt, &n_total);
        ch[i] = (tm_response_choice){.text = c->text.data ? c->text.data : "", .text_len = c->text.len,
                                     .finish_reason = tm_finish_reason_str(c->finish),
                                     .token_ids = toks + n_prompt, .n_tokens = n_total - n_prompt};
        completion += n_total - n_prompt;
        if (i == 0) cached = tm_engine_seq_cached(c->seq);
    }
    char id[96];
    snprintf(id, sizeof id, "%s%s", r->prep.endpoint == TM_ENDPOINT_CHAT ? "chatcmpl-" : "cmpl-",
             r->claim.request_id + (strncmp(r->claim.request_id, "req_", 4) ? 0 : 4));
    const char *model = w->served[0]; /* the model that ran, by its served name */
    tm_worker_extras ex = {0};
    int64_t reasoning = 0;
    tm_status st = tm_worker_response_extras(w, r, ch, &ex, &reasoning, err);
    tm_response resp = {.kind = r->prep.endpoint == TM_ENDPOINT_CHAT ? TM_RESPONSE_CHAT : TM_RESPONSE_COMPLETION,
                        .id = id, .model = model, .created = tm_now_unix(),
                        .choices = ch, .n_choices = r->prep.n, .prompt_tokens = r->prep.n_prompt,
                        .completion_tokens = completion, .cached_tokens = cached,
                        .reasoning_tokens = reasoning, .prompt_ids = r->prep.prompt, .n_prompt = r->prep.n_prompt,
                        .return_token_ids = r->prep.return_token_ids, .seed = r->prep.params.seed,
                        .has_cost = 1, .gpu_seconds = r->cost_s, .energy_joules = r->cost_j,
                        .cost_usd = r->cost_usd};
    if (!st) st = tm_response_build(&resp, &w->json, err);
    tm_worker_extras_clear(&ex);
    if (st) return st;
    return queue_done(w, r, completion, cached, err);
}

/* Put a finished request's response on the step's commit list; its cost
 * travels with it (the request is dropped before the commit). */
static tm_status queue_done(worker *w, wreq *r, int64_t completion, int32_t cached, tm_err *err)
{
    if (w->n_done == w->cap_done) { /* commits refused for a while (busy DB): grow */
        int32_t cap = w->cap_done ? w->cap_done * 2 : 16;
        wdone *d = realloc(w->done, (size_t)cap * sizeof *d);
        if (d) w->done = d;
        tm_queue_completion *c = d ? realloc(w->done_c, (size_t)cap * sizeof *c) : NULL;
        if (!c) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
        w->done_c = c;
        w->cap_done = cap;
    }
    wdone *d = &w->done[w->n_done];
    memcpy(d->request_id, r->claim.request_id, sizeof d->request_id);
    d->u = (tm_queue_usage){.prompt_tokens = r->prep.n_prompt, .completion_tokens = completion,
                            .cached_tokens = cached, .gpu_seconds = r->cost_s, .energy_joules = r->cost_j,
                            .cost_usd = r->cost_usd, .wasted_seconds = r->wasted_s, .wasted_usd = r->wasted_usd,
                            .run_id = w->run_id};
    d->off = w->done_json.len;
    d->len = w->json.len;
    d->prompt = r->prep.n_prompt;
    d->completion = completion;
    d->cached = cached;
    d->ds = r->keep_cost ? 0 : r->cost_s - r->carried_s;
    d->du = r->cost_usd - r->carried_usd;
    d->dj = r->cost_j < 0 ? -1 : r->cost_j - (r->carried_j > 0 ? r->carried_j : 0);
    if (tm_buf_append(&w->done_json, w->json.data ? w->json.data : "", w->json.len))
        return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    w->n_done++;
    r->cost_s = r->cost_usd = r->wasted_s = r->wasted_usd = 0; /* on the commit list now */
    r->cost_j = -1;
    return TM_OK;
}

tm_status tm_worker_commit(worker *w, tm_err *err)
{
    if (w->n_done == 0) return TM_OK;
    double t0 = tm_now_unix_f();
    for (int32_t i = 0; i < w->n_done; i++)
        w->done_c[i] = (tm_queue_completion){.request_id = w->done[i].request_id,
                                             .response_json = w->done_json.data + w->done[i].off,
                                             .len = w->done[i].len, .usage = &w->done[i].u};
    tm_err qerr;
    tm_status st = tm_queue_complete_batch(w->q, w->owner, w->done_c, w->n_done, NULL, &qerr);
    w->t_commit += tm_now_unix_f() - t0;
    if (st == TM_ERR_BUSY) return TM_OK; /* still ours under the lease: the next step tries again */
    if (st) return tm_errf(err, st, "%s", qerr.msg);
    for (int32_t i = 0; i < w->n_done; i++) {
        const wdone *d = &w->done[i];
        if (!w->done_c[i].stored) { /* the lease was lost: the run paid for it all the same */
            if (w->meter && d->ds > 0) tm_cost_meter_discard(w->meter, d->ds, d->dj, d->du);
            continue;
        }
        w->sum->done++;
        w->sum->prompt_tokens += d->prompt;
        w->sum->completion_tokens += d->completion;
        w->sum->cached_tokens += d->cached;
    }
    w->n_done = 0;
    tm_buf_clear(&w->done_json);
    return TM_OK;
}

tm_status tm_worker_handle_event(worker *w, const tm_engine_event *ev, tm_err *err)
{
    wreq *r = ev->user;
    wchoice *c = &r->choices[ev->choice];
    c->seq = ev->seq;
    if (ev->aborted) {
        c->done = 1;
        r->failed = 1;
        r->n_done++;
    } else {
        int text_stop;
        take_token(c, ev->token, &ev->sample, ev->finished, &text_stop);
        if (text_stop) tm_engine_finish(w->engine, ev->seq, TM_FINISH_STOP);
        if (c->done) r->n_done++;
    }
    if (r->n_done < r->prep.n) return TM_OK;
    tm_status st;
    if (r->failed) st = fail_request(w, &r->claim, "server_error", "the sampler could not draw a token (all logits -inf/NaN)");
    else st = finish_request(w, r, err);
    tm_worker_drop_request(w, r);
    return st;
}

/* Drop in-flight requests of jobs that are being cancelled, at most every
 * TM_WORKER_CANCEL_CHECK_S: each job's state is one jobs row, looked up once
 * (w->ids holds the ids of those checked: distinct jobs <= requests in
 * flight <= window). */
tm_status tm_worker_check_cancelled(worker *w, double now, tm_err *err)
{
    if (now - w->last_cancel_check < TM_WORKER_CANCEL_CHECK_S) return TM_OK;
    w->last_cancel_check = now;
    const char **seen = w->ids;
    int n_seen = 0;
    for (wreq *r = w->inflight; r;) {
        int dup = 0;
        for (int i = 0; i < n_seen && !dup; i++) dup = !strcmp(seen[i], r->claim.job_id);
        if (dup || n_seen >= w->window) { r = r->next; continue; }
        char state[16] = "";
        tm_err qerr;
        tm_status st = tm_queue_job_state(w->q, r->claim.job_id, state, &qerr);
        if (st == TM_ERR_BUSY) return TM_OK; /* a read meeting a checkpointing writer: next time */
        if (st && st != TM_ERR_NOTFOUND) return tm_errf(err, st, "%s", qerr.msg);
        int cancel = st == TM_ERR_NOTFOUND || !strcmp(state, "cancelling") || !strcmp(state, "cancelled");
        if (!cancel) { seen[n_seen++] = r->claim.job_id; r = r->next; continue; }
        char job_id[TM_QUEUE_ID_MAX]; /* r itself is freed below */
        memcpy(job_id, r->claim.job_id, sizeof job_id);
        for (wreq *x = w->inflight, *nx; x; x = nx) {
            nx = x->next;
            if (strcmp(x->claim.job_id, job_id)) continue;
            tm_engine_abort_request(w->engine, (int64_t)(intptr_t)x);
            /* released inside a cancelling job, the queue marks it cancelled */
            tm_queue_release(w->q, w->owner, x->claim.request_id, NULL, &qerr);
            w->sum->cancelled++;
            tm_worker_drop_request(w, x);
        }
        r = w->inflight; /* the list changed: rescan (jobs in seen stay checked) */
    }
    return TM_OK;
}

int32_t tm_worker_generated(const wreq *r)
{
    int32_t n = 0;
    for (int32_t i = 0; i < r->prep.n; i++) {
        int32_t np, nt;
        if (!r->choices[i].seq) continue;
        tm_engine_seq_tokens(r->choices[i].seq, &np, &nt);
        n += nt - np;
    }
    return n;
}

