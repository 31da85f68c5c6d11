/* worker.c — the run loop: claim → prepare → engine → detok/stop → result. */
#include "worker/worker.h"

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
#include "output/response.h"
#include "queue/queue.h"
#include "queue/queue_cost.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"
#include "util/buf.h"
#include "util/timeutil.h"
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
    double cost_s, cost_j, cost_usd; /* attributed step shares (cost_j < 0: unknown) */
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
} worker;

void tm_worker_opts_default(tm_worker_opts *o)
{
    memset(o, 0, sizeof *o);
    o->device = "auto";
    o->max_batch_tokens = 2048;
    o->max_seqs = 64;
    o->lease_s = 60;
    o->progress_every_s = 10;
}

/* A request that leaves without a result: its attributed time becomes the
 * run's overhead (the run still paid for it). */
static void discard_cost(worker *w, wreq *r)
{
    if (w->meter && r->cost_s > 0) tm_cost_meter_discard(w->meter, r->cost_s, r->cost_j, r->cost_usd);
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
    int32_t max_new = r->prep.params.max_tokens > 0 ? r->prep.params.max_tokens : w->max_context;
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
    tm_engine_request er = {.id = (int64_t)(intptr_t)r, .prompt = r->prep.prompt, .n_prompt = r->prep.n_prompt,
                            .priority = r->claim.priority > INT32_MAX ? INT32_MAX
                                        : r->claim.priority < -INT32_MAX ? -INT32_MAX : (int32_t)r->claim.priority,
                            .n = r->prep.n, .params = r->prep.params,
                            .seed = r->prep.params.seed, .user = r};
    st = tm_engine_add(w->engine, &er, &rerr);
    if (st == TM_ERR_INPUT) {
        st = fail_request(w, &r->claim, "invalid_request", rerr.msg);
        wreq_free(w, r);
        return st;
    }
    if (st) { wreq_free(w, r); return tm_errf(err, st, "%s", rerr.msg); }
    w->live_seqs += r->prep.n;
    r->next = w->inflight;
    w->inflight = r;
    w->n_inflight++;
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
                        .cost_usd = r->cost_usd};
    tm_err qerr;
    st = tm_queue_complete(w->q, w->owner, r->claim.request_id, w->json.data, w->json.len, &u, &qerr);
    if (st && st != TM_ERR_NOTFOUND) return tm_errf(err, st, "%s", qerr.msg);
    if (!st) {
        r->cost_s = r->cost_usd = 0; /* recorded on the request */
        r->cost_j = -1;
        w->sum->done++;
        w->sum->prompt_tokens += r->prep.n_prompt;
        w->sum->completion_tokens += completion;
        w->sum->cached_tokens += cached;
    }
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
        if (c->samples && c->n_samples < c->cap_samples) c->samples[c->n_samples++] = ev->sample;
        int stop_token = ev->finished == TM_FINISH_STOP;
        int hit = 0;
        if (!stop_token && c->detok) {
            const char *piece;
            size_t len;
            tm_err derr;
            if (tm_detok_push(c->detok, ev->token, &piece, &len, &derr) == TM_OK) hit = feed_text(c, piece, len);
            if (!hit && ev->finished == TM_FINISH_LENGTH &&
                tm_detok_flush(c->detok, &piece, &len, &derr) == TM_OK)
                hit = feed_text(c, piece, len);
        }
        if (hit && !ev->finished) tm_engine_finish(w->engine, ev->seq, TM_FINISH_STOP);
        if (hit || ev->finished) {
            c->finish = hit ? TM_FINISH_STOP : ev->finished;
            c->done = 1;
            r->n_done++;
        }
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
    tm_status st;
    double t0 = tm_now_unix_f();

    const tm_backend_ops *ops = NULL;
    if ((st = tm_backend_select(o->device, &ops, err))) return st;

    if ((st = tm_queue_open(o->db_path, &w->q, err))) return st;
    if ((st = tm_queue_make_owner(w->q, w->owner, sizeof w->owner, err))) goto out;
    if ((st = tm_model_load(o->model_dir, &w->model, err))) goto out;
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
                           .max_context = w->max_context, .n_threads = o->n_threads};
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

    if ((st = tm_queue_worker_start(w->q, w->owner, ops->name, w->run_id, err))) goto out;
    w->registered = 1;

    /* cost metering: the price applied, per-step attribution scratch */
    {
        const char *pname = o->price ? o->price : (ops == &tm_backend_cpu ? "cpu" : "h100-ondemand");
        tm_err perr;
        if (tm_cost_price_parse_number(pname, &w->price, &perr) == TM_ERR_NOTFOUND) {
            tm_queue_cost *qc = NULL;
            tm_queue_price qp;
            st = tm_queue_cost_open(o->db_path, 0, &qc, err);
            if (!st) st = tm_queue_cost_price_get(qc, pname, &qp, err);
            tm_queue_cost_close(qc);
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

    double deadline = o->time_limit_s > 0 ? t0 + (double)o->time_limit_s : 0;
    double mark = tm_now_unix_f();
    tm_cost_meter_overhead(w->meter, mark - t0); /* model load, start-up */
    double last_renew = tm_now_unix_f(), last_progress = 0;
    tm_queue_claimed *claims = calloc((size_t)window, sizeof *claims);
    if (!claims) { st = tm_errf(err, TM_ERR_NOMEM, "out of memory"); goto out; }
    for (;;) {
        double now = tm_now_unix_f();
        if (deadline && now >= deadline) {
            int released = 0;
            tm_queue_release(w->q, w->owner, NULL, &released, NULL);
            while (w->inflight) { wreq *r = w->inflight; unlink_req(w, r); wreq_free(w, r); }
            sum->stopped_with_work = 1;
            break;
        }
        /* keep the window full */
        int room = window - w->n_inflight;
        if (room > 0 && w->live_seqs + 128 <= ec.max_requests) {
            int got = 0;
            if ((st = tm_queue_claim(w->q, w->owner, room, o->lease_s, claims, &got, err))) break;
            for (int i = 0; i < got; i++) {
                if (!st) st = start_request(w, &claims[i], err);
                tm_queue_claimed_clear(&claims[i]);
            }
            if (st) break;
        }
        if (!tm_engine_has_work(w->engine)) {
            if (w->n_inflight == 0 && !o->watch) break;
            if (w->n_inflight == 0) {
                usleep(500000);
                double idle_end = tm_now_unix_f();
                tm_cost_meter_overhead(w->meter, idle_end - mark); /* idle time */
                mark = idle_end;
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
        for (int32_t k = 0; k < so.n_seqs; k++) {
            const tm_engine_work *ew = &so.work[k];
            w->work[k] = (tm_cost_work){.prefill_tokens = ew->prefill ? ew->n_new : 0,
                                        .decode_tokens = ew->prefill ? 0 : ew->n_new,
                                        .context_tokens = ew->start + ew->n_new};
        }
        if (tm_cost_meter_step(w->meter, w->work, so.n_seqs, step_end - mark, w->share_s, w->share_j,
                               w->share_usd) == TM_OK) {
            for (int32_t k = 0; k < so.n_seqs; k++) {
                wreq *r = so.work[k].user;
                r->cost_s += w->share_s[k];
                r->cost_usd += w->share_usd[k];
                if (w->share_j[k] >= 0) r->cost_j = (r->cost_j < 0 ? 0 : r->cost_j) + w->share_j[k];
            }
        }
        mark = step_end;
        for (int32_t i = 0; i < so.n_events && !st; i++) st = handle_event(w, &so.events[i], err);
        if (st) break;
        if ((st = check_cancelled(w, err))) break;
        now = tm_now_unix_f();
        if (now - last_renew > o->lease_s / 3) {
            tm_queue_renew(w->q, w->owner, o->lease_s, NULL, NULL);
            tm_queue_run_stats rs = {sum->done, sum->prompt_tokens, sum->completion_tokens};
            tm_queue_worker_heartbeat(w->q, w->owner, w->run_id, &rs, NULL);
            last_renew = now;
        }
        if (w->tty ? now - last_progress > 0.2 : now - last_progress > o->progress_every_s) {
            progress(w, t0, 0);
            last_progress = now;
        }
    }
    free(claims);
    if (!st && w->engine) progress(w, t0, 1);
out:
    if (st && w->q) tm_queue_release(w->q, w->owner, NULL, NULL, NULL);
    while (w->inflight) { wreq *r = w->inflight; unlink_req(w, r); wreq_free(w, r); }
    if (w->registered) {
        tm_queue_run_stats rs = {sum->done, sum->prompt_tokens, sum->completion_tokens};
        int code = st ? tm_status_exit_code(st) : sum->stopped_with_work ? 75 : 0;
        tm_queue_worker_stop(w->q, w->owner, w->run_id, &rs, code, NULL);
        if (w->meter) { /* the run's totals: attributed steps + overhead */
            tm_cost_totals t;
            tm_cost_meter_totals(w->meter, &t);
            tm_queue_cost *qc = NULL;
            tm_queue_run_cost rc = {.model = tm_model_dir(w->model), .price_profile = w->price.name[0] ? w->price.name : NULL,
                                    .usd_per_hour = w->price.usd_per_gpu_hour, .usd_per_kwh = w->price.usd_per_kwh,
                                    .gpu_seconds = t.gpu_seconds, .energy_joules = t.energy_joules,
                                    .cost_usd = t.cost_usd, .overhead_seconds = t.overhead_seconds};
            if (tm_queue_cost_open(o->db_path, 0, &qc, NULL) == TM_OK) tm_queue_cost_run_set(qc, w->run_id, &rc, NULL);
            tm_queue_cost_close(qc);
        }
    }
    tm_engine_destroy(w->engine);
    tm_cost_meter_destroy(w->meter);
    free(w->work); free(w->share_s); free(w->share_j); free(w->share_usd);
    tm_tokenizer_destroy(w->tok);
    tm_model_destroy(w->model);
    tm_queue_close(w->q);
    tm_buf_free(&w->json);
    sum->seconds = tm_now_unix_f() - t0;
    if (!st && sum->stopped_with_work) return tm_errf(err, TM_ERR_STOPPED, "time limit reached with work left; leases released");
    return st;
}
