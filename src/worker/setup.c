/* setup.c — the worker's set-up and teardown: options' defaults, backend,
 * model, tokenizer, engine (KV sizing), price and cost meter, the lists the
 * loop fills (sized from the options), the progress line, and the end of a
 * run (checkpoint on error, run record, run cost). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model.h"
#include "queue/queue_cost.h"
#include "util/timeutil.h"
#include "worker/worker_int.h"

void tm_worker_opts_default(tm_worker_opts *o)
{
    memset(o, 0, sizeof *o);
    o->device = TM_DEVICE_AUTO;
    o->max_batch_tokens = 2048;
    o->max_seqs = 64;
    o->lease_s = 60;
    o->progress_every_s = 10;
    o->checkpoint_every_s = 30;
    o->drain_grace_s = 30;
    o->drain_margin_s = 5;
    o->signal_fd = -1;
}

/* Tokens still to generate: each in-flight request's budget (max_new per
 * choice) less what it generated, capped at the tokens a finished request
 * took on average once some finished; the pending requests at that average
 * (or the in-flight budget's). O(window), once per progress line. */
static double tokens_remaining(const worker *w, int64_t pending)
{
    double avg = w->sum->done > 0 ? (double)w->sum->completion_tokens / (double)w->sum->done : 0;
    double rem = 0, budget = 0;
    int32_t n = 0;
    for (const wreq *r = w->inflight; r; r = r->next, n++) {
        double b = (double)r->max_new * r->prep.n, g = tm_worker_generated(r), left = b - g;
        if (avg > 0 && avg - g < left) left = avg - g > 1 ? avg - g : 1;
        rem += left > 0 ? left : 0;
        budget += b;
    }
    double per = avg > 0 ? avg : n ? budget / n : 0;
    return rem + (double)pending * per;
}

static void fmt_eta(double e, char *out, size_t outsz)
{
    if (!(e >= 0) || e > 1e9) snprintf(out, outsz, "-");
    else if (e < 120) snprintf(out, outsz, "%.0fs", e);
    else if (e < 7200) snprintf(out, outsz, "%.0fm", e / 60);
    else snprintf(out, outsz, "%.1fh", e / 3600);
}

/* The progress line: requests done of the total (done + failed here, plus
 * what is pending or running in the queue: the jobs rows' counters, read at
 * most every TM_WORKER_LEFT_COUNT_S), requests in flight, tokens generated
 * per second by the steps (smoothed; the final line: over the run), and an
 * ETA from the remaining token budget at that rate. */
void tm_worker_progress(worker *w, int final)
{
    if (w->o->quiet) return;
    double now = tm_now_unix_f();
    if (now - w->left_at > TM_WORKER_LEFT_COUNT_S || final) {
        int64_t p = 0, r = 0;
        if (tm_queue_left(w->q, &p, &r, NULL) == TM_OK) { w->left = p + r; w->left_pending = p; }
        w->left_at = now;
    }
    tm_kv_cache_stats kv;
    tm_engine_kv_stats(w->engine, &kv);
    double el = now - w->t0;
    if (w->rate_at > 0 && now - w->rate_at >= 0.2) {
        double inst = (double)(w->gen_tokens - w->rate_tokens) / (now - w->rate_at);
        w->tok_rate = w->tok_rate > 0 ? 0.7 * w->tok_rate + 0.3 * inst : inst;
    }
    if (w->rate_at == 0 || now - w->rate_at >= 0.2) { w->rate_at = now; w->rate_tokens = w->gen_tokens; }
    double tps = final ? (el > 0 ? (double)w->gen_tokens / el : 0) : w->tok_rate;
    int kvpct = kv.n_blocks ? (int)(100.0 * (kv.in_use) / kv.n_blocks) : 0;
    char eta[32] = "-";
    if (!final && tps > 0) fmt_eta(tokens_remaining(w, w->left_pending) / tps, eta, sizeof eta);
    int64_t total = w->sum->done + w->sum->failed + w->left;
    fprintf(stderr, "%s[tokenmill] %lld/%lld done, %lld failed, %d in flight | %.1f output tok/s | KV %d%% | "
                    "%.0fs elapsed, ETA %s%s",
            tm_worker_cr(w), (long long)w->sum->done, (long long)total, (long long)w->sum->failed, w->n_inflight,
            tps, kvpct, el, eta, w->tty && !final ? "" : "\n");
    if (final && w->sum->steps > 0) {
        double eng = w->t_engine - w->t_forward, tot = w->t_engine + w->t_events + w->t_commit + w->t_claim;
        double ms = 1e3 / (double)w->sum->steps;
        fprintf(stderr, "[tokenmill] per step (%lld steps): %.2f ms = forward %.2f + schedule/sampling %.2f + "
                        "host (tokens, stop strings, responses) %.2f + commit %.2f + claims %.2f\n",
                (long long)w->sum->steps, tot * ms, w->t_forward * ms, (eng > 0 ? eng : 0) * ms, w->t_events * ms,
                w->t_commit * ms, w->t_claim * ms);
    }
}


/* The KV pool in blocks: --kv-memory, else what the backend's memory has
 * free now less what the backend will allocate besides the pool (its
 * mem_plan: weights as it stores them, scratch, reserve) and a 10% margin,
 * capped at what the window can use. *per_block: one block's bytes. */
static tm_status kv_pool_blocks(worker *w, const tm_engine_config *ec, int64_t *out, int64_t *per_block,
                                tm_err *err)
{
    const tm_worker_opts *o = w->o;
    tm_backend_opts bo = {.block_size = ec->block_size, .max_batch_tokens = ec->max_batch_tokens,
                          .max_seqs = ec->max_seqs, .n_threads = ec->n_threads, .flags = ec->backend_flags,
                          .kv_dtype = ec->kv_dtype};
    tm_backend_mem mp;
    tm_status st = w->ops->mem_plan(w->model, &bo, &mp, err);
    if (st) return st;
    *per_block = mp.kv_block + mp.per_block;
    int64_t nb;
    if (o->kv_memory > 0) {
        nb = o->kv_memory / (*per_block > 0 ? *per_block : 1);
        if (nb < 1)
            return tm_errf(err, TM_ERR_USAGE, "--kv-memory is smaller than one KV block (%lld bytes)",
                           (long long)*per_block);
    } else {
        size_t free_b = 0, total_b = 0;
        tm_err merr;
        if (w->ops->mem_available(&free_b, &total_b, &merr)) free_b = (size_t)1 << 30;
        int64_t budget = (int64_t)free_b - (int64_t)free_b / 10;
        nb = tm_backend_mem_kv_blocks(&mp, budget);
        int64_t want = (int64_t)ec->max_requests * ((w->max_context + ec->block_size - 1) / ec->block_size);
        if (nb > want) nb = want;
        if (nb < 1)
            return tm_errf(err, TM_ERR_NOMEM, "%s: %.1f MiB free cannot hold the weights (%.1f MiB), scratch and one "
                           "KV block; give --kv-memory or free memory", w->ops->name, (double)free_b / 1048576.0,
                           (double)mp.weights / 1048576.0);
    }
    *out = nb > (1 << 28) ? (1 << 28) : nb;
    return TM_OK;
}

/* Registered first (state 'starting'), so that --exclusive decides before a
 * model is loaded and `status --workers` shows a loading worker. */
static tm_status register_worker(worker *w, tm_err *err)
{
    const tm_worker_opts *o = w->o;
    tm_status st;
    if ((st = tm_queue_open(o->db_path, &w->q, err))) return st;
    if ((st = tm_queue_make_owner(w->q, w->owner, sizeof w->owner, err))) return st;
    int other = 0;
    st = tm_queue_worker_start(w->q, w->owner, w->ops->name, o->lease_s, o->exclusive, &other, w->run_id, err);
    if (st && other) {
        w->sum->other_alive = 1;
        return TM_OK;
    }
    if (!st) w->registered = 1;
    return st;
}

/* Add one served name (trimmed of blanks); duplicates are dropped. */
static tm_status add_served(worker *w, const char *name, size_t len, tm_err *err)
{
    while (len && (*name == ' ' || *name == '\t')) { name++; len--; }
    while (len && (name[len - 1] == ' ' || name[len - 1] == '\t')) len--;
    if (len == 0) return tm_errf(err, TM_ERR_USAGE, "--served-model-name: an empty name");
    if (len > TM_QUEUE_NAME_MAX)
        return tm_errf(err, TM_ERR_USAGE, "--served-model-name: longer than %d bytes", TM_QUEUE_NAME_MAX);
    for (int i = 0; i < w->n_served; i++)
        if (strlen(w->served[i]) == len && !memcmp(w->served[i], name, len)) return TM_OK;
    if (w->n_served == TM_WORKER_SERVED_MAX)
        return tm_errf(err, TM_ERR_USAGE, "--served-model-name: at most %d names", TM_WORKER_SERVED_MAX);
    memcpy(w->served_buf[w->n_served], name, len);
    w->served_buf[w->n_served][len] = 0;
    w->served[w->n_served] = w->served_buf[w->n_served];
    w->n_served++;
    return TM_OK;
}

/* The names this worker serves (worker.h, served_names), recorded in the
 * queue, which then claims only requests for them. */
static tm_status setup_names(worker *w, tm_err *err)
{
    const tm_worker_opts *o = w->o;
    tm_status st = TM_OK;
    for (int i = 0; !st && i < o->n_served_names; i++)
        for (const char *p = o->served_names[i]; !st;) {
            const char *comma = strchr(p, ',');
            st = add_served(w, p, comma ? (size_t)(comma - p) : strlen(p), err);
            if (!comma) break;
            p = comma + 1;
        }
    if (!st && o->n_served_names == 0) {
        size_t len = strlen(o->model_dir);
        while (len > 1 && o->model_dir[len - 1] == '/') len--;
        size_t start = len;
        while (start > 0 && o->model_dir[start - 1] != '/') start--;
        st = add_served(w, o->model_dir + start, len - start, err);
        char path[4096];
        json_t *cfg = NULL;
        if (!st && tm_path_join(path, sizeof path, o->model_dir, "config.json", NULL) == TM_OK)
            cfg = json_load_file(path, 0, NULL);
        const char *nop = json_string_value(json_object_get(cfg, "_name_or_path"));
        if (!st && nop && *nop && strlen(nop) <= TM_QUEUE_NAME_MAX) st = add_served(w, nop, strlen(nop), err);
        json_decref(cfg);
    }
    if (!st) st = tm_queue_set_served_models(w->q, w->owner, w->run_id, w->served, w->n_served, err);
    if (!st && !o->quiet) {
        fprintf(stderr, "tokenmill run: serving model name%s", w->n_served == 1 ? "" : "s");
        for (int i = 0; i < w->n_served; i++) fprintf(stderr, "%s'%s'", i ? ", " : " ", w->served[i]);
        fprintf(stderr, " (and requests that name none)\n");
    }
    return st;
}

/* Model (quantized at load when asked), tokenizer and chat template. */
static tm_status load_model(worker *w, tm_err *err)
{
    const tm_worker_opts *o = w->o;
    tm_status st;
    if ((st = tm_model_load(o->model_dir, &w->model, err))) return st;
    if (o->quant != TM_QS_NONE && (st = tm_model_quantize(w->model, o->quant, err))) return st;
    tm_err terr;
    w->kinds = TM_QUEUE_KIND_ALL;
    if (tm_tokenizer_load(o->model_dir, &w->tok, &terr) == TM_OK) {
        tm_err cerr;
        if (tm_chat_template_load(o->chat_template, tm_tokenizer_chat_template(w->tok), &w->chat, &cerr)) {
            if (o->chat_template) return tm_errf(err, TM_ERR_USAGE, "%s", cerr.msg);
            w->kinds &= ~TM_QUEUE_KIND_CHAT; /* chat requests wait for a worker with a template */
            snprintf(w->unserved_why, sizeof w->unserved_why, "no chat template (%.280s)",
                     cerr.msg);
        }
    } else {
        w->kinds = TM_QUEUE_KIND_IDS; /* chat and text prompts wait for a worker with a tokenizer */
        snprintf(w->unserved_why, sizeof w->unserved_why, "no tokenizer (%.280s)", terr.msg);
    }
    const tm_model_config *mc = tm_model_config_of(w->model);
    w->pctx = (tm_prepare_ctx){.tok = w->tok, .chat = w->chat, .cfg = mc};
    w->max_context = o->max_model_len > 0 ? o->max_model_len : mc->max_position_embeddings;
    if (w->max_context < 2) w->max_context = 2;
    return TM_OK;
}

/* The engine, with a KV pool of --kv-memory, or of what is free capped at
 * what the window can use. */
static tm_status make_engine(worker *w, tm_err *err)
{
    const tm_worker_opts *o = w->o;
    const int32_t bs = TM_WORKER_BLOCK_SIZE;
    tm_engine_config ec = {.block_size = bs, .max_batch_tokens = o->max_batch_tokens, .max_seqs = o->max_seqs,
                           .max_context = w->max_context, .n_threads = o->n_threads, .kv_dtype = o->kv_dtype,
                           .backend_flags = o->backend_flags};
    ec.max_requests = w->max_requests = w->window + TM_WORKER_CHOICE_ROOM;
    int64_t nb, per_block;
    tm_status st = kv_pool_blocks(w, &ec, &nb, &per_block, err);
    if (st) return st;
    ec.n_blocks = (int32_t)nb;
    st = tm_engine_create(w->ops, w->model, &ec, &w->engine, err);
    if (st) return st;
    const tm_model_config *mc = tm_model_config_of(w->model);
    if (!o->quiet)
        fprintf(stderr, "tokenmill run: model %s (%s, %d layers), device %s, KV %d blocks x %d tokens (%.1f MiB), "
                        "batch %d tokens / %d seqs\n", o->model_dir, mc->model_type, mc->n_layers, w->ops->name,
                ec.n_blocks, bs, (double)ec.n_blocks * (double)per_block / 1048576.0, ec.max_batch_tokens, ec.max_seqs);
    return TM_OK;
}

/* Cost metering: the price applied (--price: a number or a prices profile),
 * per-step attribution scratch. */
static tm_status setup_cost(worker *w, tm_err *err)
{
    const tm_worker_opts *o = w->o;
    const char *pname = o->price ? o->price : w->ops == &tm_backend_cpu ? TM_WORKER_PRICE_CPU : TM_WORKER_PRICE_GPU;
    tm_err perr;
    tm_status st;
    st = tm_cost_price_parse_number(pname, &w->price, &perr);
    if (st == TM_ERR_USAGE) return tm_errf(err, TM_ERR_USAGE, "%s", perr.msg);
    if (st == TM_ERR_NOTFOUND) {
        tm_queue_price qp;
        st = tm_queue_price_get(w->q, pname, &qp, err);
        if (st) return tm_err_prefix(err, TM_ERR_USAGE, "--price %s", pname);
        snprintf(w->price.name, sizeof w->price.name, "%s", qp.name);
        w->price.usd_per_gpu_hour = qp.usd_per_gpu_hour;
        w->price.usd_per_kwh = qp.usd_per_kwh;
    }
    if ((st = tm_cost_meter_create(&w->price, o->nvml_path, &w->meter, err))) return st;
    const tm_model_config *mc = tm_model_config_of(w->model);
    tm_cost_meter_set_model(w->meter, tm_model_n_params(w->model), mc->n_layers, mc->n_heads, mc->head_dim);
    size_t ns = (size_t)o->max_seqs;
    w->work = calloc(ns, sizeof *w->work);
    w->share_s = calloc(ns, sizeof(double));
    w->share_j = calloc(ns, sizeof(double));
    w->share_usd = calloc(ns, sizeof(double));
    if (!w->work || !w->share_s || !w->share_j || !w->share_usd) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    return TM_OK;
}

/* The lists the loop fills, [window] each (in flight <= window). */
static tm_status alloc_lists(worker *w, tm_err *err)
{
    size_t n = (size_t)w->window;
    w->claims = calloc(n, sizeof *w->claims);
    w->reqs = calloc(n, sizeof *w->reqs);
    w->ids = calloc(n, sizeof *w->ids);
    w->held = calloc(n, sizeof *w->held);
    w->cks = calloc(n, sizeof *w->cks);
    w->ck_off = calloc(n, sizeof *w->ck_off);
    w->holders_cap = TM_WORKER_HOLDERS_MIN;
    w->holders = calloc((size_t)w->holders_cap, sizeof *w->holders);
    w->seen = calloc((size_t)w->holders_cap, sizeof *w->seen);
    w->cap_done = w->window;
    w->done = calloc(n, sizeof *w->done);
    w->done_c = calloc(n, sizeof *w->done_c);
    if (!w->done || !w->done_c) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    if (!w->claims || !w->reqs || !w->ids || !w->held || !w->cks || !w->ck_off || !w->holders || !w->seen)
        return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    return TM_OK;
}

tm_status tm_worker_setup(worker *w, const tm_worker_opts *o, tm_worker_summary *sum, tm_err *err)
{
    memset(sum, 0, sizeof *sum);
    memset(w, 0, sizeof *w);
    w->o = o;
    w->sum = sum;
    w->tty = isatty(2);
    w->t0 = tm_now_unix_f();
    w->window = o->window > 0 ? o->window : 2 * o->max_seqs;
    tm_buf_init(&w->json);
    tm_buf_init(&w->ckbuf);
    tm_buf_init(&w->done_json);
    tm_status st;
    if (o->backend) w->ops = o->backend;
    else if ((st = tm_backend_select(o->device, &w->ops, err))) return st;
    if ((st = register_worker(w, err)) || sum->other_alive) return st;
    if (o->preemption_notice &&
        (st = tm_notice_start(o->preemption_notice, TM_WORKER_NOTICE_POLL_S, &w->notice, err)))
        return st;
    if ((st = setup_names(w, err)) || (st = load_model(w, err)) || (st = tm_worker_serve_start(w, err)) ||
        (st = make_engine(w, err)))
        return st;
    tm_queue_run_stats rs = {.state = "running"};
    tm_queue_worker_heartbeat(w->q, w->owner, w->run_id, &rs, NULL);
    if ((st = setup_cost(w, err)) || (st = alloc_lists(w, err))) return st;
    w->tl_deadline = o->time_limit_s > 0 ? w->t0 + (double)o->time_limit_s : 0;
    w->mark = tm_now_unix_f();
    tm_cost_meter_overhead(w->meter, w->mark - w->t0); /* model load, start-up */
    w->last_renew = w->last_ckpt = tm_now_unix_f();
    return TM_OK;
}

/* The run's end in the queue: worker row stopped with its exit code, the
 * run's cost totals (attributed steps + overhead). */
static void record_run(worker *w, tm_status st)
{
    tm_worker_summary *sum = w->sum;
    int code = st ? tm_status_exit_code(st) : sum->stopped_with_work ? 75 : 0;
    tm_queue_run_stats rs = {sum->done, sum->prompt_tokens, sum->completion_tokens,
                             .requests_checkpointed = sum->checkpointed, .end_reason = sum->end_reason};
    tm_queue_worker_stop(w->q, w->owner, w->run_id, &rs, code, NULL);
    if (!w->meter) return;
    tm_cost_totals t;
    tm_cost_meter_totals(w->meter, &t);
    tm_queue_run_cost rc = {.model = w->model ? tm_model_dir(w->model) : NULL,
                            .price_profile = w->price.name[0] ? w->price.name : NULL,
                            .usd_per_hour = w->price.usd_per_gpu_hour, .usd_per_kwh = w->price.usd_per_kwh,
                            .gpu_seconds = t.gpu_seconds, .energy_joules = t.energy_joules,
                            .cost_usd = t.cost_usd, .overhead_seconds = t.overhead_seconds};
    tm_queue_run_cost_set(w->q, w->run_id, &rc, NULL);
}

tm_status tm_worker_teardown(worker *w, tm_status st, tm_err *err)
{
    tm_worker_summary *sum = w->sum;
    if (w->q && w->n_done) { /* finished requests not yet stored: store them before anything is released */
        tm_err cerr;
        tm_status cs = TM_OK;
        for (int i = 0; i < TM_WORKER_COMMIT_TRIES && w->n_done && !cs; i++) cs = tm_worker_commit(w, &cerr);
        if (cs && !st) st = tm_errf(err, cs, "%s", cerr.msg);
        if (w->n_done && !st) /* still busy: give them back now rather than when the leases expire */
            st = tm_errf(err, TM_ERR_BUSY, "%d finished requests could not be stored (database busy); "
                                          "their leases are released", (int)w->n_done);
    }
    if (st && w->q) {
        /* keep what was generated: checkpoint before giving the leases back */
        tm_err cerr;
        if (w->engine && w->inflight) tm_worker_checkpoint_all(w, &cerr);
        for (wreq *r = w->inflight; r; r = r->next) if (tm_worker_generated(r) > 0) r->keep_cost = 1;
        tm_queue_release(w->q, w->owner, NULL, NULL, NULL);
    }
    while (w->inflight) tm_worker_drop_request(w, w->inflight);
    if (!st && w->draining && w->q) {
        /* work left: what this run gave back, or what is still queued */
        int64_t pending = 0, running = 0;
        if (tm_queue_left(w->q, &pending, &running, NULL) == TM_OK && pending + running > 0) sum->stopped_with_work = 1;
        if (sum->checkpointed > 0) sum->stopped_with_work = 1;
    }
    if (!st && !w->draining && w->q && !sum->other_alive) st = tm_worker_serve_end(w, err);
    if (!sum->other_alive && (!sum->end_reason[0] || st))
        snprintf(sum->end_reason, sizeof sum->end_reason, "%s", w->unservable ? "unservable" : st ? "error" : "empty");
    if (w->registered) record_run(w, st);
    tm_notice_stop(w->notice);
    tm_engine_destroy(w->engine);
    tm_cost_meter_destroy(w->meter);
    free(w->work); free(w->share_s); free(w->share_j); free(w->share_usd);
    free(w->claims); free(w->reqs); free(w->ids); free(w->held); free(w->cks); free(w->ck_off);
    free(w->holders); free(w->seen);
    tm_chat_template_destroy(w->chat);
    tm_tokenizer_destroy(w->tok);
    tm_model_destroy(w->model);
    tm_queue_close(w->q);
    tm_buf_free(&w->json);
    tm_buf_free(&w->ckbuf);
    tm_buf_free(&w->done_json);
    free(w->done); free(w->done_c);
    sum->seconds = tm_now_unix_f() - w->t0;
    if (!st && sum->stopped_with_work)
        return tm_errf(err, TM_ERR_STOPPED, "%s: stopped with work left (%lld requests checkpointed; leases released)",
                       sum->end_reason, (long long)sum->checkpointed);
    return st;
}
