/* worker.c — the run loop: claim → prepare → engine → detok/stop → result. */
#include "worker/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "cost/meter.h"
#include "engine/engine.h"
#include "engine/stop.h"
#include "model/model.h"
#include "notice/notice.h"
#include "output/response.h"
#include "quant/quant.h"
#include "queue/queue.h"
#include "queue/queue_cost.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"
#include "util/buf.h"
#include "util/timeutil.h"
#include "worker/checkpoint.h"
#include "worker/prepare.h"

typedef struct wchoice {
    tm_engine_seq *seq;
    tm_detok *detok;
    tm_stop *stop;
    tm_buf text;
    tm_sample_result *samples;   /* [max_new] when logprobs */
    int32_t n_samples, cap_samples;
    tm_finish_reason finish;
    int done;
} wchoice;

typedef struct wreq {
    tm_queue_claimed claim;
    tm_prepared prep;
    wchoice *choices;
    int32_t n_done;
    int failed;                  /* a choice was aborted by the engine */
    double cost_s, cost_j, cost_usd; /* attributed step shares, earlier attempts included (cost_j < 0: unknown) */
    double wasted_s, wasted_usd; /* of which recomputing work done before */
    double carried_s, carried_j, carried_usd; /* from earlier attempts (checkpoint) */
    int keep_cost;               /* checkpointed: its cost travels with the checkpoint */
    int32_t max_new;             /* the engine's cap on generated tokens per choice */
    struct wreq *next;
} wreq;

typedef struct worker {
    const tm_worker_opts *o;
    tm_queue *q;
    char owner[128];
    tm_model *model;
    tm_tokenizer *tok;
    const tm_chat_template *chat;
    tm_engine *engine;
    tm_prepare_ctx pctx;
    wreq *inflight;
    int32_t n_inflight;
    int32_t live_seqs;
    int32_t max_context;
    tm_buf json;
    tm_worker_summary *sum;
    int tty;
    char run_id[TM_QUEUE_ID_MAX];
    int registered;
    int64_t left;              /* pending + running in the queue at the last look */
    double left_at;
    tm_cost_meter *meter;
    tm_cost_price price;
    tm_cost_work *work;        /* [max_seqs] per-step scratch */
    double *share_s, *share_j, *share_usd;
    tm_buf ckbuf;              /* checkpoint encoding scratch */
    /* drain */
    int draining;
    double drain_deadline;     /* unix time the machine goes away */
    double drain_start;        /* when the drain began */
    int hard_stop;             /* second signal: checkpoint now, exit */
    double step_ewma;          /* seconds per loop iteration with a step */
    double ckpt_seconds;       /* time spent saving checkpoints (overhead, not a step's) */
    int busy_noted;
    double next_claim_at;      /* no claim before this while work is in flight */
    tm_notice *notice;
    /* --until-empty with nothing to claim: holders of other leases seen so far */
    tm_queue_holder seen[32];
    int n_seen;
    double waiting_since;
} worker;

void tm_worker_opts_default(tm_worker_opts *o)
{
    memset(o, 0, sizeof *o);
    o->device = "auto";
    o->max_batch_tokens = 2048;
    o->max_seqs = 64;
    o->lease_s = 60;
    o->progress_every_s = 10;
    o->checkpoint_every_s = 30;
    o->drain_grace_s = 30;
    o->drain_margin_s = 5;
    o->signal_fd = -1;
}

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

/* Fail one claimed request with a message; the run goes on. */
static tm_status fail_request(worker *w, const tm_queue_claimed *c, const char *code, const char *msg)
{
    tm_err err;
    tm_status st = tm_queue_fail(w->q, w->owner, c->request_id, code, msg, &err);
    if (st == TM_ERR_NOTFOUND) return TM_OK; /* lease lost: someone else has it */
    if (st) return tm_errf(NULL, st, "%s", err.msg);
    w->sum->failed++;
    if (!w->o->quiet) fprintf(stderr, "%stokenmill run: %s (%s): %s\n", w->tty ? "\r\033[K" : "",
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
    if (c->samples && c->n_samples < c->cap_samples) c->samples[c->n_samples++] = *sample;
    int hit = 0;
    if (finished != TM_FINISH_STOP && c->detok) {
        const char *piece;
        size_t len;
        tm_err derr;
        if (tm_detok_push(c->detok, token, &piece, &len, &derr) == TM_OK) hit = feed_text(c, piece, len);
        if (!hit && finished == TM_FINISH_LENGTH && tm_detok_flush(c->detok, &piece, &len, &derr) == TM_OK)
            hit = feed_text(c, piece, len);
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

static tm_status start_request(worker *w, tm_queue_claimed *claim, tm_err *err)
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
    r->choices = calloc((size_t)r->prep.n, sizeof *r->choices);
    if (!r->choices) { wreq_free(w, r); return tm_errf(err, TM_ERR_NOMEM, "out of memory"); }
    int32_t room = w->max_context - r->prep.n_prompt;
    r->max_new = r->prep.params.max_tokens > 0 ? r->prep.params.max_tokens : room;
    int32_t max_new = r->max_new > 0 ? r->max_new : 1;
    for (int32_t i = 0; i < r->prep.n; i++) {
        wchoice *c = &r->choices[i];
        tm_buf_init(&c->text);
        if (w->tok && (st = tm_detok_create(w->tok, 1, &c->detok, err))) { wreq_free(w, r); return st; }
        if ((st = tm_stop_create_from_params(&r->prep.params, &c->stop, err))) { wreq_free(w, r); return st; }
        if (r->prep.params.logprobs) {
            c->cap_samples = max_new;
            c->samples = malloc((size_t)max_new * sizeof *c->samples);
            if (!c->samples) { wreq_free(w, r); return tm_errf(err, TM_ERR_NOMEM, "out of memory"); }
        }
    }
    /* resume from a checkpoint of an earlier attempt */
    tm_ckpt ck;
    memset(&ck, 0, sizeof ck);
    const int32_t *resume[TM_CKPT_MAX_CHOICES];
    int32_t n_resume[TM_CKPT_MAX_CHOICES];
    tm_finish_reason fin[TM_CKPT_MAX_CHOICES];
    int resumed = 0;
    if ((r->claim.checkpoint || r->claim.checkpoint_bad) && r->prep.n <= TM_CKPT_MAX_CHOICES && room > 0) {
        tm_err cerr;
        st = r->claim.checkpoint_bad ? tm_errf(&cerr, TM_ERR_INPUT, "unreadable zstd frame")
                                     : tm_ckpt_decode(r->claim.checkpoint, r->claim.checkpoint_len, &ck, &cerr);
        if (st == TM_ERR_NOMEM) { wreq_free(w, r); return tm_errf(err, st, "out of memory"); }
        if (!st) st = replay_checkpoint(w, r, &ck, resume, n_resume, fin, &cerr);
        if (st) {
            if (!w->o->quiet)
                fprintf(stderr, "%stokenmill run: %s: checkpoint ignored (%s); starting over\n", w->tty ? "\r\033[K" : "",
                        r->claim.custom_id ? r->claim.custom_id : r->claim.request_id, cerr.msg);
            reset_choices(r);
        } else {
            resumed = 1;
        }
    }
    tm_engine_seq *seqs[TM_CKPT_MAX_CHOICES];
    tm_engine_request er = {.id = (int64_t)(intptr_t)r, .prompt = r->prep.prompt, .n_prompt = r->prep.n_prompt,
                            .priority = r->claim.priority > INT32_MAX ? INT32_MAX
                                        : r->claim.priority < -INT32_MAX ? -INT32_MAX : (int32_t)r->claim.priority,
                            .n = r->prep.n, .params = r->prep.params,
                            .seed = r->prep.params.seed, .user = r,
                            .resume = resumed ? resume : NULL, .n_resume = resumed ? n_resume : NULL,
                            .resume_finished = resumed ? fin : NULL,
                            .seqs_out = r->prep.n <= TM_CKPT_MAX_CHOICES ? seqs : NULL};
    st = tm_engine_add(w->engine, &er, &rerr);
    tm_ckpt_clear(&ck);
    if (st == TM_ERR_INPUT) {
        st = fail_request(w, &r->claim, "invalid_request", rerr.msg);
        wreq_free(w, r);
        return st;
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
            unlink_req(w, r);
            wreq_free(w, r);
            return st;
        }
    }
    return TM_OK;
}

static tm_status finish_request(worker *w, wreq *r, tm_err *err)
{
    tm_response_choice ch[128];
    int64_t completion = 0;
    int32_t cached = 0;
    for (int32_t i = 0; i < r->prep.n; i++) {
        wchoice *c = &r->choices[i];
        int32_t n_prompt, n_total;
        const int32_t *toks = tm_engine_seq_tokens(c->seq, &n_prompt, &n_total);
        ch[i] = (tm_response_choice){.text = c->text.data ? c->text.data : "", .text_len = c->text.len,
                                     .finish_reason = tm_finish_reason_str(c->finish),
                                     .token_ids = toks + n_prompt, .n_tokens = n_total - n_prompt,
                                     .samples = c->samples};
        completion += n_total - n_prompt;
        if (i == 0) cached = tm_engine_seq_cached(c->seq);
    }
    char id[96];
    snprintf(id, sizeof id, "%s%s", r->prep.endpoint == TM_ENDPOINT_CHAT ? "chatcmpl-" : "cmpl-",
             r->claim.request_id + (strncmp(r->claim.request_id, "req_", 4) ? 0 : 4));
    const char *model = r->claim.model && *r->claim.model ? r->claim.model : tm_model_dir(w->model);
    tm_response resp = {.endpoint = r->prep.endpoint, .id = id, .model = model, .created = tm_now_unix(),
                        .choices = ch, .n_choices = r->prep.n, .prompt_tokens = r->prep.n_prompt,
                        .completion_tokens = completion, .cached_tokens = cached,
                        .prompt_ids = r->prep.prompt, .n_prompt = r->prep.n_prompt,
                        .return_token_ids = r->prep.return_token_ids, .logprobs = r->prep.params.logprobs,
                        .top_logprobs = r->prep.params.top_logprobs, .seed = r->prep.params.seed, .tok = w->tok,
                        .has_cost = 1, .gpu_seconds = r->cost_s, .energy_joules = r->cost_j,
                        .cost_usd = r->cost_usd};
    tm_status st = tm_response_build(&resp, &w->json, err);
    if (st) return st;
    tm_queue_usage u = {.prompt_tokens = r->prep.n_prompt, .completion_tokens = completion,
                        .cached_tokens = cached, .gpu_seconds = r->cost_s, .energy_joules = r->cost_j,
                        .cost_usd = r->cost_usd, .wasted_seconds = r->wasted_s, .wasted_usd = r->wasted_usd,
                        .run_id = w->run_id};
    tm_err qerr;
    st = tm_queue_complete(w->q, w->owner, r->claim.request_id, w->json.data, w->json.len, &u, &qerr);
    if (st && st != TM_ERR_NOTFOUND) return tm_errf(err, st, "%s", qerr.msg);
    if (!st) {
        r->cost_s = r->cost_usd = r->wasted_s = r->wasted_usd = 0; /* recorded on the request */
        r->cost_j = -1;
        w->sum->done++;
        w->sum->prompt_tokens += r->prep.n_prompt;
        w->sum->completion_tokens += completion;
        w->sum->cached_tokens += cached;
    }
    return TM_OK;
}

static tm_status handle_event(worker *w, const tm_engine_event *ev, tm_err *err)
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
    unlink_req(w, r);
    wreq_free(w, r);
    return st;
}

/* Drop in-flight requests of jobs that are being cancelled. */
static tm_status check_cancelled(worker *w, tm_err *err)
{
    const char *seen[64];
    int n_seen = 0;
    for (wreq *r = w->inflight; r; r = r->next) {
        int dup = 0;
        for (int i = 0; i < n_seen; i++) if (!strcmp(seen[i], r->claim.job_id)) dup = 1;
        if (dup || n_seen == 64) continue;
        seen[n_seen++] = r->claim.job_id;
        tm_queue_job job;
        memset(&job, 0, sizeof job);
        tm_err qerr;
        tm_status st = tm_queue_job_get(w->q, r->claim.job_id, &job, &qerr);
        if (st && st != TM_ERR_NOTFOUND) return tm_errf(err, st, "%s", qerr.msg);
        int cancel = st == TM_ERR_NOTFOUND || !strcmp(job.state, "cancelling") || !strcmp(job.state, "cancelled");
        tm_queue_job_clear(&job);
        if (!cancel) continue;
        char job_id[TM_QUEUE_ID_MAX]; /* r itself is freed below */
        memcpy(job_id, r->claim.job_id, sizeof job_id);
        for (wreq *x = w->inflight, *nx; x; x = nx) {
            nx = x->next;
            if (strcmp(x->claim.job_id, job_id)) continue;
            tm_engine_abort_request(w->engine, (int64_t)(intptr_t)x);
            /* released inside a cancelling job, the queue marks it cancelled */
            tm_queue_release(w->q, w->owner, x->claim.request_id, NULL, &qerr);
            w->sum->cancelled++;
            unlink_req(w, x);
            wreq_free(w, x);
        }
        return check_cancelled(w, err); /* the list changed: rescan */
    }
    return TM_OK;
}

static tm_status count_left_cb(void *ctx, const tm_queue_job *job, tm_err *err)
{
    (void)err;
    *(int64_t *)ctx += job->pending + job->running;
    return TM_OK;
}

static void progress(worker *w, double t0, int final)
{
    if (w->o->quiet) return;
    double now = tm_now_unix_f();
    if (now - w->left_at > 2.0 || final) { /* a count over all jobs: not every tick */
        int64_t left = 0;
        if (tm_queue_job_list(w->q, count_left_cb, &left, NULL) == TM_OK) w->left = left;
        w->left_at = now;
    }
    tm_kv_stats kv;
    tm_engine_kv_stats(w->engine, &kv);
    double el = now - t0;
    double tps = el > 0 ? (double)(w->sum->completion_tokens) / el : 0;
    double rps = el > 0 ? (double)(w->sum->done + w->sum->failed) / el : 0;
    int kvpct = kv.n_blocks ? (int)(100.0 * (kv.in_use) / kv.n_blocks) : 0;
    char eta[32] = "-";
    if (rps > 0 && w->left > 0) {
        double e = (double)w->left / rps;
        if (e < 120) snprintf(eta, sizeof eta, "%.0fs", e);
        else if (e < 7200) snprintf(eta, sizeof eta, "%.0fm", e / 60);
        else snprintf(eta, sizeof eta, "%.1fh", e / 3600);
    }
    int64_t total = w->sum->done + w->sum->failed + w->left;
    fprintf(stderr, "%s[tokenmill] %lld/%lld done, %lld failed | %.1f output tok/s | KV %d%% | %.0fs elapsed, ETA %s%s",
            w->tty ? "\r\033[K" : "", (long long)w->sum->done, (long long)total, (long long)w->sum->failed, tps,
            kvpct, el, eta, w->tty && !final ? "" : "\n");
}


/* ---- checkpoints and drain ------------------------------------------------ */

static int32_t generated(const wreq *r)
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

/* Save the checkpoints of reqs[0..n) that generated something, one
 * transaction. Time spent here is the run's overhead. */
static tm_status save_checkpoints(worker *w, wreq **reqs, int n, int *saved, tm_err *err)
{
    if (saved) *saved = 0;
    double t0 = tm_now_unix_f();
    tm_queue_checkpoint *cks = calloc((size_t)(n ? n : 1), sizeof *cks);
    size_t *off = calloc((size_t)(n ? n : 1), sizeof *off);
    if (!cks || !off) { free(cks); free(off); return tm_errf(err, TM_ERR_NOMEM, "out of memory"); }
    tm_buf_clear(&w->ckbuf);
    int m = 0;
    tm_status st = TM_OK;
    for (int k = 0; k < n && !st; k++) {
        wreq *r = reqs[k];
        int32_t gen = generated(r);
        if (gen <= 0 || r->prep.n > TM_CKPT_MAX_CHOICES) continue;
        tm_ckpt_choice ch[TM_CKPT_MAX_CHOICES];
        for (int32_t i = 0; i < r->prep.n; i++) {
            int32_t np = 0, nt = 0;
            const int32_t *t = r->choices[i].seq ? tm_engine_seq_tokens(r->choices[i].seq, &np, &nt) : NULL;
            ch[i] = (tm_ckpt_choice){.n_tokens = nt - np, .tokens = t ? (int32_t *)(uintptr_t)(t + np) : NULL,
                                     .samples = r->choices[i].samples};
            if (r->choices[i].samples && r->choices[i].n_samples < ch[i].n_tokens) ch[i].n_tokens = r->choices[i].n_samples;
        }
        tm_ckpt ck = {.n_choices = r->prep.n, .logprobs = r->prep.params.logprobs, .gpu_seconds = r->cost_s,
                      .energy_joules = r->cost_j, .cost_usd = r->cost_usd, .wasted_seconds = r->wasted_s,
                      .wasted_usd = r->wasted_usd, .choices = ch};
        off[m] = w->ckbuf.len;
        if ((st = tm_ckpt_encode(&ck, &w->ckbuf, err))) break;
        cks[m] = (tm_queue_checkpoint){.request_id = r->claim.request_id, .tokens_done = tm_ckpt_tokens(&ck),
                                       .len = w->ckbuf.len - off[m], .gpu_seconds = r->cost_s, .cost_usd = r->cost_usd};
        m++;
    }
    for (int k = 0; k < m; k++) cks[k].state = w->ckbuf.data + off[k];
    if (!st && m) {
        int ok = 0;
        tm_err qerr;
        st = tm_queue_checkpoint_save(w->q, w->owner, w->run_id, cks, m, &ok, &qerr);
        if (st) st = tm_errf(err, st, "checkpoint: %s", qerr.msg);
        else {
            w->sum->checkpoints_saved += ok;
            if (saved) *saved = ok;
        }
    }
    free(cks);
    free(off);
    double dt = tm_now_unix_f() - t0;
    w->ckpt_seconds += dt;
    if (w->meter) tm_cost_meter_overhead(w->meter, dt);
    return st;
}

static tm_status checkpoint_all(worker *w, tm_err *err)
{
    wreq *list[4096];
    int n = 0;
    tm_status st = TM_OK;
    for (wreq *r = w->inflight; r && !st; r = r->next) {
        list[n++] = r;
        if (n == (int)(sizeof list / sizeof list[0])) { st = save_checkpoints(w, list, n, NULL, err); n = 0; }
    }
    if (!st && n) st = save_checkpoints(w, list, n, NULL, err);
    return st;
}

/* Checkpoint reqs (those with tokens), give their leases back and drop them. */
static tm_status stop_requests(worker *w, wreq **reqs, int n, tm_err *err)
{
    if (n <= 0) return TM_OK;
    tm_status st = save_checkpoints(w, reqs, n, NULL, err);
    if (st) return st;
    for (int k = 0; k < n; k++) {
        wreq *r = reqs[k];
        int released = 0, saved = generated(r) > 0;
        tm_err qerr;
        if (saved) r->keep_cost = 1; /* its cost so far is in the checkpoint */
        if (tm_queue_release(w->q, w->owner, r->claim.request_id, &released, &qerr) == TM_OK && released && saved)
            w->sum->checkpointed++;
        tm_engine_abort_request(w->engine, (int64_t)(intptr_t)r);
        unlink_req(w, r);
        wreq_free(w, r);
    }
    return TM_OK;
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGHUP: return "SIGHUP";
    default: return "signal";
    }
}

static void begin_drain(worker *w, double deadline, const char *reason)
{
    if (w->draining) {
        if (deadline < w->drain_deadline) w->drain_deadline = deadline;
        return;
    }
    w->draining = 1;
    w->drain_deadline = deadline;
    w->drain_start = tm_now_unix_f();
    snprintf(w->sum->end_reason, sizeof w->sum->end_reason, "%s", reason);
    if (!w->o->quiet)
        fprintf(stderr, "%stokenmill run: %s: draining (no new requests; deadline in %.0fs, margin %.0fs)\n",
                w->tty ? "\r\033[K" : "", reason, deadline - tm_now_unix_f(), w->o->drain_margin_s);
}

static void poll_signals(worker *w, double now)
{
    if (w->o->signal_fd < 0) return;
    unsigned char b[32];
    ssize_t n;
    while ((n = read(w->o->signal_fd, b, sizeof b)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (w->draining) {
                if (!w->hard_stop && !w->o->quiet)
                    fprintf(stderr, "%stokenmill run: %s again: checkpointing now\n", w->tty ? "\r\033[K" : "",
                            signal_name(b[i]));
                w->hard_stop = 1;
                continue;
            }
            char reason[48];
            snprintf(reason, sizeof reason, "signal:%s", signal_name(b[i]));
            begin_drain(w, now + w->o->drain_grace_s, reason);
        }
    }
}

/* While draining: requests whose remaining tokens will not fit before the
 * deadline minus the margin (at the measured step time) stop now; at the
 * deadline minus the margin, or on a second signal, everything stops.
 * Returns 1 when the run should end. */
static int drain_tick(worker *w, double now, tm_status *st, tm_err *err)
{
    double stop_at = w->drain_deadline - w->o->drain_margin_s;
    if (stop_at < w->drain_start) stop_at = w->drain_start; /* a deadline closer than the margin: stop now */
    int all = w->hard_stop || now >= stop_at;
    wreq *list[4096];
    int n = 0;
    for (wreq *r = w->inflight; r && n < (int)(sizeof list / sizeof list[0]); r = r->next) {
        int go = all;
        if (!go) {
            int32_t rem = 0;
            for (int32_t i = 0; i < r->prep.n; i++) {
                const wchoice *c = &r->choices[i];
                if (c->done) continue;
                int32_t np = 0, nt = 0;
                if (c->seq) tm_engine_seq_tokens(c->seq, &np, &nt);
                int32_t left = r->max_new - (nt - np) + (nt == np ? 1 : 0); /* + its prefill step */
                if (left > rem) rem = left;
            }
            double step = w->step_ewma > 0 ? w->step_ewma : 0.05;
            go = now + (double)rem * step * 1.2 > stop_at; /* 20% safety on the estimate */
        }
        if (go) list[n++] = r;
    }
    if (n) *st = stop_requests(w, list, n, err);
    return all || w->n_inflight == 0;
}

static void check_leases(worker *w)
{
    const char *ids[256];
    wreq *rs[256];
    int held[256];
    int n = 0;
    for (wreq *r = w->inflight; r && n < 256; r = r->next) { rs[n] = r; ids[n++] = r->claim.request_id; }
    if (tm_queue_leases_held(w->q, w->owner, ids, n, held, NULL) != TM_OK) return;
    for (int k = 0; k < n; k++) {
        if (held[k]) continue;
        if (!w->o->quiet)
            fprintf(stderr, "%stokenmill run: %s: lease lost (another worker has it); dropped\n", w->tty ? "\r\033[K" : "",
                    rs[k]->claim.custom_id ? rs[k]->claim.custom_id : rs[k]->claim.request_id);
        w->sum->leases_lost++;
        tm_engine_abort_request(w->engine, (int64_t)(intptr_t)rs[k]);
        unlink_req(w, rs[k]);
        wreq_free(w, rs[k]);
    }
}


/* Nothing to claim and nothing in flight: is the queue really empty? Requests
 * leased to another worker are waited for while that worker looks dead (its
 * heartbeat does not advance): their leases expire and the next claim takes
 * them. A live worker's heartbeat advances every lease/3 seconds: its
 * requests are its own business. Returns 1 when the run may end. */
static int nothing_left(worker *w, double now)
{
    tm_queue_holder h[32];
    int n = 0;
    if (tm_queue_other_holders(w->q, w->owner, h, 32, &n, NULL) != TM_OK) return 1;
    if (n == 0) { w->n_seen = 0; return 1; }
    if (w->n_seen == 0 || w->waiting_since == 0) w->waiting_since = now;
    int dead = 0;
    for (int i = 0; i < n; i++) {
        int k = 0, alive = 0;
        for (; k < w->n_seen; k++)
            if (!strcmp(w->seen[k].owner, h[i].owner)) { alive = h[i].heartbeat_at > w->seen[k].heartbeat_at; break; }
        if (k == w->n_seen && w->n_seen < 32) w->seen[w->n_seen++] = h[i];
        if (!alive) dead++;
    }
    if (dead && !w->o->quiet && now - w->waiting_since < 0.6)
        fprintf(stderr, "%stokenmill run: waiting for requests leased to %d worker(s) that may have died "
                        "(their leases expire within %.0fs)\n", w->tty ? "\r\033[K" : "", dead,
                h[0].lease_expires - now > 0 ? h[0].lease_expires - now : 0);
    return dead == 0;
}

static int64_t tensor_elems(const tm_tensor *t)
{
    if (!t || !t->ndim) return 0;
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* Default KV budget: the memory available now, less the weights as the
 * backend holds them (fp32 on the CPU), less a 10% + 256 MiB margin. */
static int64_t auto_kv_bytes(const tm_model *m)
{
    long pages = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psz <= 0) return 1ll << 30;
    int64_t avail = (int64_t)pages * psz;
    int64_t params = tensor_elems(tm_model_embed(m)) + tensor_elems(tm_model_final_norm(m));
    if (tm_model_lm_head(m)->data != tm_model_embed(m)->data) params += tensor_elems(tm_model_lm_head(m));
    for (int i = 0; i < tm_model_config_of(m)->n_layers; i++) {
        const tm_layer_weights *l = tm_model_layer(m, i);
        const tm_tensor *t[] = {&l->attn_norm, &l->wq, &l->wk, &l->wv, &l->wo, &l->bq, &l->bk, &l->bv,
                                &l->q_norm, &l->k_norm, &l->ffn_norm, &l->w_gate, &l->w_up, &l->w_down};
        for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) params += t[k]->data ? tensor_elems(t[k]) : 0;
    }
    int64_t left = avail - 4 * params;
    left -= left / 10 + (256ll << 20);
    return left > (64ll << 20) ? left : (64ll << 20);
}

tm_status tm_worker_run(const tm_worker_opts *o, tm_worker_summary *sum, tm_err *err)
{
    memset(sum, 0, sizeof *sum);
    worker W;
    memset(&W, 0, sizeof W);
    worker *w = &W;
    w->o = o;
    w->sum = sum;
    w->tty = isatty(2);
    tm_buf_init(&w->json);
    tm_buf_init(&w->ckbuf);
    tm_status st;
    double t0 = tm_now_unix_f();

    const tm_backend_ops *ops = NULL;
    if ((st = tm_backend_select(o->device, &ops, err))) return st;

    if ((st = tm_queue_open(o->db_path, &w->q, err))) return st;
    if ((st = tm_queue_make_owner(w->q, w->owner, sizeof w->owner, err))) goto out;
    /* registered first (state 'starting'), so that --exclusive decides before a
     * model is loaded and `status --workers` shows a loading worker */
    {
        int other = 0;
        st = tm_queue_worker_start(w->q, w->owner, ops->name, o->lease_s, o->exclusive, &other, w->run_id, err);
        if (st && other) {
            sum->other_alive = 1;
            tm_queue_close(w->q);
            tm_buf_free(&w->json);
            return TM_OK;
        }
        if (st) goto out;
        w->registered = 1;
    }
    if (o->preemption_notice && (st = tm_notice_start(o->preemption_notice, 5.0, &w->notice, err))) goto out;
    tm_kv_dtype kvd = TM_KV_AUTO;
    if (o->kv_dtype && (st = tm_kv_dtype_parse(o->kv_dtype, &kvd, err))) goto out;
    if ((st = tm_model_load(o->model_dir, &w->model, err))) goto out;
    if (o->quant && strcmp(o->quant, "none") && (st = tm_model_quantize(w->model, o->quant, err))) goto out;
    const tm_model_config *mc = tm_model_config_of(w->model);
    tm_err terr;
    if (tm_tokenizer_load(o->model_dir, &w->tok, &terr) == TM_OK) {
        tm_err cerr;
        if (tm_chat_template_resolve(o->chat_template, tm_tokenizer_chat_template(w->tok), &w->chat, &cerr)) {
            if (o->chat_template) { st = tm_errf(err, TM_ERR_USAGE, "%s", cerr.msg); goto out; }
            if (!o->quiet) fprintf(stderr, "tokenmill run: note: %s; chat requests will fail\n", cerr.msg);
        }
    } else if (!o->quiet) {
        fprintf(stderr, "tokenmill run: note: no tokenizer (%s); only token-id prompts will run\n", terr.msg);
    }
    w->pctx = (tm_prepare_ctx){.tok = w->tok, .chat = w->chat, .cfg = mc};
    w->max_context = o->max_model_len > 0 ? o->max_model_len : mc->max_position_embeddings;
    if (w->max_context < 2) w->max_context = 2;

    tm_engine_config ec = {.block_size = 16, .max_batch_tokens = o->max_batch_tokens, .max_seqs = o->max_seqs,
                           .max_context = w->max_context, .n_threads = o->n_threads, .kv_dtype = kvd};
    int32_t window = o->window > 0 ? o->window : 2 * o->max_seqs;
    ec.max_requests = window + 128; /* room for one request's n choices beyond the window */
    int64_t kv_bytes = o->kv_memory > 0 ? o->kv_memory : auto_kv_bytes(w->model);
    size_t per_block = ops->kv_block_bytes(w->model, ec.block_size);
    int64_t want = (int64_t)ec.max_requests * ((w->max_context + 15) / 16);
    int64_t nb = kv_bytes / (int64_t)(per_block ? per_block : 1);
    if (o->kv_memory <= 0 && nb > want) nb = want;
    if (nb < 1) { st = tm_errf(err, TM_ERR_USAGE, "--kv-memory is smaller than one KV block (%zu bytes)", per_block); goto out; }
    if (nb > (1 << 28)) nb = 1 << 28;
    ec.n_blocks = (int32_t)nb;
    if ((st = tm_engine_create(ops, w->model, &ec, &w->engine, err))) goto out;
    if (!o->quiet)
        fprintf(stderr, "tokenmill run: model %s (%s, %d layers), device %s, KV %d blocks x 16 tokens (%.1f MiB), "
                        "batch %d tokens / %d seqs\n", o->model_dir, mc->model_type, mc->n_layers, ops->name, ec.n_blocks,
                (double)ec.n_blocks * (double)per_block / 1048576.0, ec.max_batch_tokens, ec.max_seqs);

    {
        tm_queue_run_stats rs = {.state = "running"};
        tm_queue_worker_heartbeat(w->q, w->owner, w->run_id, &rs, NULL);
    }

    /* cost metering: the price applied, per-step attribution scratch */
    {
        const char *pname = o->price ? o->price : (ops == &tm_backend_cpu ? "cpu" : "h100-ondemand");
        tm_err perr;
        if (tm_cost_price_parse_number(pname, &w->price, &perr) == TM_ERR_NOTFOUND) {
            tm_queue_price qp;
            st = tm_queue_price_get(w->q, pname, &qp, err);
            if (st) { st = tm_err_prefix(err, TM_ERR_USAGE, "--price %s", pname); goto out; }
            snprintf(w->price.name, sizeof w->price.name, "%s", qp.name);
            w->price.usd_per_gpu_hour = qp.usd_per_gpu_hour;
            w->price.usd_per_kwh = qp.usd_per_kwh;
        }
        if ((st = tm_cost_meter_create(&w->price, o->nvml_path, &w->meter, err))) goto out;
        tm_cost_meter_set_model(w->meter, tm_model_n_params(w->model), mc->n_layers, mc->n_heads, mc->head_dim);
        size_t ns = (size_t)ec.max_seqs;
        w->work = calloc(ns, sizeof *w->work);
        w->share_s = calloc(ns, sizeof(double));
        w->share_j = calloc(ns, sizeof(double));
        w->share_usd = calloc(ns, sizeof(double));
        if (!w->work || !w->share_s || !w->share_j || !w->share_usd) {
            st = tm_errf(err, TM_ERR_NOMEM, "out of memory");
            goto out;
        }
    }

    double tl_deadline = o->time_limit_s > 0 ? t0 + (double)o->time_limit_s : 0;
    double mark = tm_now_unix_f(), mark_ck = 0; /* mark_ck: ckpt_seconds at mark */
    tm_cost_meter_overhead(w->meter, mark - t0); /* model load, start-up */
    double last_renew = tm_now_unix_f(), last_progress = 0, last_ckpt = tm_now_unix_f();
    tm_queue_claimed *claims = calloc((size_t)window, sizeof *claims);
    if (!claims) { st = tm_errf(err, TM_ERR_NOMEM, "out of memory"); goto out; }
    for (;;) {
        double now = tm_now_unix_f();
        /* one drain path: signals, a preemption notice, the time limit */
        poll_signals(w, now);
        if (w->notice) {
            double dl;
            const char *kind;
            if (tm_notice_check(w->notice, &dl, &kind)) {
                char reason[48];
                snprintf(reason, sizeof reason, "notice:%s", kind);
                begin_drain(w, dl, reason);
            }
        }
        if (tl_deadline) { /* drain over the last min(grace, a quarter of the limit) */
            double win = o->drain_grace_s < 0.25 * (double)o->time_limit_s ? o->drain_grace_s : 0.25 * (double)o->time_limit_s;
            if (now >= tl_deadline - win) begin_drain(w, tl_deadline, "time_limit");
        }
        /* heartbeat, leases */
        if (now - last_renew > o->lease_s / 3) {
            int renewed = 0;
            tm_queue_renew(w->q, w->owner, o->lease_s, &renewed, NULL);
            if (renewed < w->n_inflight) check_leases(w);
            tm_queue_run_stats rs = {sum->done, sum->prompt_tokens, sum->completion_tokens, .in_flight = w->n_inflight,
                                     .state = w->draining ? "draining" : "running"};
            tm_queue_worker_heartbeat(w->q, w->owner, w->run_id, &rs, NULL);
            last_renew = now;
        }
        if (w->draining) {
            if (drain_tick(w, now, &st, err) || st) break;
        } else if (o->checkpoint_every_s > 0 && now - last_ckpt >= o->checkpoint_every_s) {
            if ((st = checkpoint_all(w, err))) break;
            last_ckpt = tm_now_unix_f();
        }
        /* keep the window full */
        int room = window - w->n_inflight;
        if (!w->draining && room > 0 && w->live_seqs + 128 <= ec.max_requests &&
            (w->n_inflight == 0 || now >= w->next_claim_at)) {
            int got = 0;
            /* with work in flight, do not stall the engine behind another writer */
            tm_queue_set_busy_timeout(w->q, w->n_inflight ? 200 : 2000);
            st = tm_queue_claim(w->q, w->owner, room, o->lease_s, claims, &got, err);
            tm_queue_set_busy_timeout(w->q, TM_QUEUE_BUSY_TIMEOUT_MS);
            if (st == TM_ERR_BUSY) { /* a long submission holds the write lock: retry later */
                st = TM_OK;
                if (!w->busy_noted && !o->quiet)
                    fprintf(stderr, "%stokenmill run: queue busy (a submission holds the write lock); retrying\n",
                            w->tty ? "\r\033[K" : "");
                w->busy_noted = 1;
                if (w->n_inflight == 0) { usleep(200000); continue; }
            }
            if (st) break;
            /* the queue had less than the window wants: with work in flight,
             * ask again in a while, not on every step (a claim is a write
             * transaction: reclaim, expiry, lost workers) */
            if (got < room) w->next_claim_at = now + 0.5;
            for (int i = 0; i < got; i++) {
                if (!st) st = start_request(w, &claims[i], err);
                else tm_queue_release(w->q, w->owner, claims[i].request_id, NULL, NULL);
                tm_queue_claimed_clear(&claims[i]);
            }
            if (st) break;
        }
        if (!tm_engine_has_work(w->engine)) {
            if (w->n_inflight == 0 && w->draining) break;
            if (w->n_inflight == 0 && !o->watch && nothing_left(w, now)) break;
            if (w->n_inflight == 0) {
                usleep(200000);
                double idle_end = tm_now_unix_f();
                /* idle time (checkpoint time is already overhead) */
                tm_cost_meter_overhead(w->meter, idle_end - mark - (w->ckpt_seconds - mark_ck));
                mark = idle_end;
                mark_ck = w->ckpt_seconds;
                continue;
            }
        }
        tm_engine_step_out so;
        if ((st = tm_engine_step(w->engine, &so, err))) break;
        sum->steps++;
        sum->forward_seconds += (double)so.forward_ns * 1e-9;
        /* the step's wall time (claims, detok and DB writes included: the GPU
         * is rented by the hour) shared out by each sequence's work, before
         * handle_event may complete a request */
        double step_end = tm_now_unix_f();
        double step_s = step_end - mark - (w->ckpt_seconds - mark_ck); /* checkpoints are overhead */
        if (so.n_seqs > 0) w->step_ewma = w->step_ewma > 0 ? 0.8 * w->step_ewma + 0.2 * step_s : step_s;
        for (int32_t k = 0; k < so.n_seqs; k++) {
            const tm_engine_work *ew = &so.work[k];
            w->work[k] = (tm_cost_work){.prefill_tokens = ew->prefill ? ew->n_new : 0,
                                        .decode_tokens = ew->prefill ? 0 : ew->n_new,
                                        .context_tokens = ew->start + ew->n_new};
        }
        if (tm_cost_meter_step(w->meter, w->work, so.n_seqs, step_s, w->share_s, w->share_j,
                               w->share_usd) == TM_OK) {
            for (int32_t k = 0; k < so.n_seqs; k++) {
                wreq *r = so.work[k].user;
                r->cost_s += w->share_s[k];
                r->cost_usd += w->share_usd[k];
                if (w->share_j[k] >= 0) r->cost_j = (r->cost_j < 0 ? 0 : r->cost_j) + w->share_j[k];
                if (so.work[k].n_recompute > 0 && so.work[k].n_new > 0) {
                    double f = (double)so.work[k].n_recompute / (double)so.work[k].n_new;
                    r->wasted_s += w->share_s[k] * f;
                    r->wasted_usd += w->share_usd[k] * f;
                }
            }
        }
        mark = step_end;
        mark_ck = w->ckpt_seconds;
        for (int32_t i = 0; i < so.n_events && !st; i++) st = handle_event(w, &so.events[i], err);
        if (st) break;
        if ((st = check_cancelled(w, err))) break;
        now = tm_now_unix_f();
        if (w->tty ? now - last_progress > 0.2 : now - last_progress > o->progress_every_s) {
            progress(w, t0, 0);
            last_progress = now;
        }
    }
    free(claims);
    if (!st && w->engine) progress(w, t0, 1);
out:
    if (st && w->q) {
        /* keep what was generated: checkpoint before giving the leases back */
        tm_err cerr;
        if (w->engine && w->inflight) checkpoint_all(w, &cerr);
        for (wreq *r = w->inflight; r; r = r->next) if (generated(r) > 0) r->keep_cost = 1;
        tm_queue_release(w->q, w->owner, NULL, NULL, NULL);
    }
    while (w->inflight) { wreq *r = w->inflight; unlink_req(w, r); wreq_free(w, r); }
    if (!st && w->draining && w->q) {
        /* work left: what this run gave back, or what is still queued */
        int64_t left = 0;
        if (tm_queue_job_list(w->q, count_left_cb, &left, NULL) == TM_OK && left > 0) sum->stopped_with_work = 1;
        if (sum->checkpointed > 0) sum->stopped_with_work = 1;
    }
    if (!sum->end_reason[0] || st) snprintf(sum->end_reason, sizeof sum->end_reason, "%s", st ? "error" : "empty");
    if (w->registered) {
        int code = st ? tm_status_exit_code(st) : sum->stopped_with_work ? 75 : 0;
        tm_queue_run_stats rs = {sum->done, sum->prompt_tokens, sum->completion_tokens,
                                 .requests_checkpointed = sum->checkpointed, .end_reason = sum->end_reason};
        tm_queue_worker_stop(w->q, w->owner, w->run_id, &rs, code, NULL);
        if (w->meter) { /* the run's totals: attributed steps + overhead */
            tm_cost_totals t;
            tm_cost_meter_totals(w->meter, &t);
            tm_queue_run_cost rc = {.model = w->model ? tm_model_dir(w->model) : NULL,
                                    .price_profile = w->price.name[0] ? w->price.name : NULL,
                                    .usd_per_hour = w->price.usd_per_gpu_hour, .usd_per_kwh = w->price.usd_per_kwh,
                                    .gpu_seconds = t.gpu_seconds, .energy_joules = t.energy_joules,
                                    .cost_usd = t.cost_usd, .overhead_seconds = t.overhead_seconds};
            tm_queue_run_cost_set(w->q, w->run_id, &rc, NULL);
        }
    }
    tm_notice_stop(w->notice);
    tm_engine_destroy(w->engine);
    tm_cost_meter_destroy(w->meter);
    free(w->work); free(w->share_s); free(w->share_j); free(w->share_usd);
    tm_tokenizer_destroy(w->tok);
    tm_model_destroy(w->model);
    tm_queue_close(w->q);
    tm_buf_free(&w->json);
    tm_buf_free(&w->ckbuf);
    sum->seconds = tm_now_unix_f() - t0;
    if (!st && sum->stopped_with_work)
        return tm_errf(err, TM_ERR_STOPPED, "%s: stopped with work left (%lld requests checkpointed; leases released)",
                       sum->end_reason, (long long)sum->checkpointed);
    return st;
}
