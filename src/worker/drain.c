/* drain.c — stopping well: signals, the preemption notice and the time
 * limit start one drain; checkpoints (periodic and at the stop); leases
 * (renewal, heartbeat, lost leases); whether an empty-looking queue really
 * is empty (leases of dead workers). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/timeutil.h"
#include "worker/checkpoint.h"
#include "worker/worker_int.h"

/* Save the checkpoints of reqs[0..n) that generated something, one
 * transaction. Time spent here is the run's overhead. */
static tm_status save_checkpoints(worker *w, wreq **reqs, int n, int *saved, tm_err *err)
{
    if (saved) *saved = 0;
    double t0 = tm_now_unix_f();
    tm_queue_checkpoint *cks = w->cks; /* [window] >= n */
    size_t *off = w->ck_off;
    tm_buf_clear(&w->ckbuf);
    int m = 0;
    tm_status st = TM_OK;
    for (int k = 0; k < n && !st; k++) {
        wreq *r = reqs[k];
        int32_t gen = tm_worker_generated(r);
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
    double dt = tm_now_unix_f() - t0;
    w->ckpt_seconds += dt;
    if (w->meter) tm_cost_meter_overhead(w->meter, dt);
    return st;
}

tm_status tm_worker_checkpoint_all(worker *w, tm_err *err)
{
    int n = 0;
    for (wreq *r = w->inflight; r && n < w->window; r = r->next) w->reqs[n++] = r;
    return n ? save_checkpoints(w, w->reqs, n, NULL, err) : TM_OK;
}

/* Checkpoint reqs (those with tokens), give their leases back and drop them. */
static tm_status stop_requests(worker *w, wreq **reqs, int n, tm_err *err)
{
    if (n <= 0) return TM_OK;
    tm_status st = save_checkpoints(w, reqs, n, NULL, err);
    if (st) return st;
    for (int k = 0; k < n; k++) {
        wreq *r = reqs[k];
        int released = 0, saved = tm_worker_generated(r) > 0;
        tm_err qerr;
        if (saved) r->keep_cost = 1; /* its cost so far is in the checkpoint */
        if (tm_queue_release(w->q, w->owner, r->claim.request_id, &released, &qerr) == TM_OK && released && saved)
            w->sum->checkpointed++;
        tm_engine_abort_request(w->engine, (int64_t)(intptr_t)r);
        tm_worker_drop_request(w, r);
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
                tm_worker_cr(w), reason, deadline - tm_now_unix_f(), w->o->drain_margin_s);
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
                    fprintf(stderr, "%stokenmill run: %s again: checkpointing now\n", tm_worker_cr(w),
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
    wreq **list = w->reqs; /* [window] >= n_inflight */
    int n = 0;
    for (wreq *r = w->inflight; r && n < w->window; r = r->next) {
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
            double step = w->step_ewma > 0 ? w->step_ewma : TM_WORKER_STEP_GUESS_S;
            go = now + (double)rem * step * TM_WORKER_DRAIN_SAFETY > stop_at;
        }
        if (go) list[n++] = r;
    }
    if (n) *st = stop_requests(w, list, n, err);
    return all || w->n_inflight == 0;
}

/* One drain path: a signal, a preemption notice, the time limit (drained
 * over its last min(grace, a quarter of the limit)). */
void tm_worker_watch_stops(worker *w, double now)
{
    poll_signals(w, now);
    double dl;
    const char *kind;
    if (w->notice && tm_notice_check(w->notice, &dl, &kind)) {
        char reason[48];
        snprintf(reason, sizeof reason, "notice:%s", kind);
        begin_drain(w, dl, reason);
    }
    if (w->tl_deadline) {
        double limit = (double)w->o->time_limit_s, grace = w->o->drain_grace_s;
        double win = grace < 0.25 * limit ? grace : 0.25 * limit;
        if (now >= w->tl_deadline - win) begin_drain(w, w->tl_deadline, "time_limit");
    }
}

tm_status tm_worker_drain_or_checkpoint(worker *w, double now, int *end, tm_err *err)
{
    tm_status st = TM_OK;
    *end = 0;
    if (w->draining) {
        *end = drain_tick(w, now, &st, err);
    } else if (w->o->checkpoint_every_s > 0 && now - w->last_ckpt >= w->o->checkpoint_every_s) {
        st = tm_worker_checkpoint_all(w, err);
        w->last_ckpt = tm_now_unix_f();
    }
    return st;
}

static void check_leases(worker *w)
{
    const char **ids = w->ids; /* [window] >= n_inflight */
    wreq **rs = w->reqs;
    int n = 0;
    for (wreq *r = w->inflight; r && n < w->window; r = r->next) { rs[n] = r; ids[n++] = r->claim.request_id; }
    if (tm_queue_leases_held(w->q, w->owner, ids, n, w->held, NULL) != TM_OK) return;
    for (int k = 0; k < n; k++) {
        if (w->held[k]) continue;
        if (!w->o->quiet)
            fprintf(stderr, "%stokenmill run: %s: lease lost (another worker has it); dropped\n", tm_worker_cr(w),
                    rs[k]->claim.custom_id ? rs[k]->claim.custom_id : rs[k]->claim.request_id);
        w->sum->leases_lost++;
        tm_engine_abort_request(w->engine, (int64_t)(intptr_t)rs[k]);
        tm_worker_drop_request(w, rs[k]);
    }
}

/* Renew the leases and beat the heart every lease/3 seconds; requests whose
 * lease another worker took are dropped. */
void tm_worker_keep_leases(worker *w, double now)
{
    if (now - w->last_renew <= w->o->lease_s / 3) return;
    int renewed = 0;
    tm_queue_renew(w->q, w->owner, w->o->lease_s, &renewed, NULL);
    if (renewed < w->n_inflight) check_leases(w);
    const tm_worker_summary *sum = w->sum;
    tm_queue_run_stats rs = {sum->done, sum->prompt_tokens, sum->completion_tokens, .in_flight = w->n_inflight,
                             .state = w->draining ? "draining" : "running"};
    tm_queue_worker_heartbeat(w->q, w->owner, w->run_id, &rs, NULL);
    w->last_renew = now;
}

/* The other lease holders, the list grown until it holds them all. */
static int other_holders(worker *w, int *n)
{
    for (;;) {
        if (tm_queue_other_holders(w->q, w->owner, w->holders, w->holders_cap, n, NULL) != TM_OK) return -1;
        if (*n < w->holders_cap) return 0;
        int cap = 2 * w->holders_cap;
        tm_queue_holder *h = realloc(w->holders, (size_t)cap * sizeof *h);
        if (!h) return 0; /* the first holders_cap only */
        w->holders = h;
        h = realloc(w->seen, (size_t)cap * sizeof *h);
        if (!h) return 0;
        w->seen = h;
        w->holders_cap = cap;
    }
}

/* Nothing to claim and nothing in flight: is the queue really empty? Requests
 * leased to another worker are waited for while that worker looks dead (its
 * heartbeat does not advance): their leases expire and the next claim takes
 * them. A live worker's heartbeat advances every lease/3 seconds: its
 * requests are its own business. Returns 1 when the run may end. */
int tm_worker_nothing_left(worker *w, double now)
{
    int n = 0;
    if (other_holders(w, &n) < 0) return 1;
    if (n == 0) { w->n_seen = 0; return 1; }
    if (w->n_seen == 0 || w->waiting_since == 0) w->waiting_since = now;
    const tm_queue_holder *h = w->holders;
    int dead = 0;
    for (int i = 0; i < n; i++) {
        int k = 0, alive = 0;
        for (; k < w->n_seen; k++)
            if (!strcmp(w->seen[k].owner, h[i].owner)) { alive = h[i].heartbeat_at > w->seen[k].heartbeat_at; break; }
        if (k == w->n_seen && w->n_seen < w->holders_cap) w->seen[w->n_seen++] = h[i];
        if (!alive) dead++;
    }
    if (dead && !w->o->quiet && now - w->waiting_since < 0.6)
        fprintf(stderr, "%stokenmill run: waiting for requests leased to %d other worker(s), busy or dead "
                        "(a dead one's leases expire within %.0fs)\n", tm_worker_cr(w), dead,
                h[0].lease_expires - now > 0 ? h[0].lease_expires - now : 0);
    return dead == 0;
}
