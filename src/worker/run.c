/* run.c — tm_worker_run: the loop. Each turn: stops and leases (drain.c),
 * claim → schedule (requests into the engine, request.c) → execute (one
 * engine step) → update (the step's cost shared out, tokens through the
 * detokenizer and stop strings) → commit (finished requests' results,
 * cancelled jobs dropped, progress). Set-up and teardown: setup.c.
 *
 * Test hook (compiled in always, for tests/cli/supervisor.sh): with the
 * environment variable TOKENMILL_TEST_CRASH_AFTER=N (N >= 1) the worker
 * calls abort() after its N-th engine step, as a crashing worker would die.
 * progress_every_s <= 0 (--no-progress): no progress line. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/timeutil.h"
#include "worker/worker_int.h"

/* Keep the window full. *slept: the queue was busy with nothing in flight
 * (the caller starts the next turn). */
static tm_status claim(worker *w, double now, int *slept, tm_err *err)
{
    *slept = 0;
    int room = w->window - w->n_inflight;
    w->claimed_last = 0;
    if (w->draining || room <= 0 || w->live_seqs + TM_WORKER_CHOICE_ROOM > w->max_requests ||
        (w->n_inflight > 0 && now < w->next_claim_at))
        return TM_OK;
    int got = 0;
    /* with work in flight, do not stall the engine behind another writer */
    tm_queue_set_busy_timeout(w->q, w->n_inflight ? TM_WORKER_BUSY_MS_INFLIGHT : TM_WORKER_BUSY_MS_IDLE);
    tm_status st = tm_queue_claim(w->q, w->owner, room, w->o->lease_s, w->claims, &got, err);
    tm_queue_set_busy_timeout(w->q, TM_QUEUE_BUSY_TIMEOUT_MS);
    if (st == TM_ERR_BUSY) { /* another writer (a long submission, another worker) holds the lock */
        if (!w->busy_noted && !w->o->quiet)
            fprintf(stderr, "%stokenmill run: queue busy (another writer holds the write lock); retrying\n",
                    tm_worker_cr(w));
        w->busy_noted = 1;
        if (w->n_inflight == 0) { usleep(TM_WORKER_IDLE_SLEEP_US); *slept = 1; }
        return TM_OK;
    }
    if (st) return st;
    w->claimed_last = got;
    /* the queue had less than the window wants: with work in flight, ask
     * again in a while, not on every step (a claim is a write transaction:
     * reclaim, expiry, lost workers) */
    if (got < room) w->next_claim_at = now + TM_WORKER_CLAIM_RETRY_S;
    int full = 0; /* the engine has no room for more choices: give the rest back */
    for (int i = 0; i < got; i++) {
        if (!st && !full) {
            st = tm_worker_start_request(w, &w->claims[i], err);
            if (st == TM_ERR_BUSY) { st = TM_OK; full = 1; w->next_claim_at = now + TM_WORKER_CLAIM_RETRY_S; }
        } else {
            tm_queue_release(w->q, w->owner, w->claims[i].request_id, NULL, NULL);
        }
        tm_queue_claimed_clear(&w->claims[i]);
    }
    return st;
}

/* Nothing in flight, nothing claimable: wait; the time is the run's overhead
 * (checkpoint time is counted already). */
static void idle_wait(worker *w)
{
    usleep(TM_WORKER_IDLE_SLEEP_US);
    double end = tm_now_unix_f();
    tm_cost_meter_overhead(w->meter, end - w->mark - (w->ckpt_seconds - w->mark_ck));
    w->mark = end;
    w->mark_ck = w->ckpt_seconds;
}

/* The step's wall time (claims, detok and DB writes included: the GPU is
 * rented by the hour) shared out by each sequence's work, before the events
 * may complete a request. Checkpoint time is overhead, not the step's. */
static void attribute_step(worker *w, const tm_engine_step_out *so)
{
    double step_end = tm_now_unix_f();
    double step_s = step_end - w->mark - (w->ckpt_seconds - w->mark_ck);
    if (so->n_seqs > 0) w->step_ewma = w->step_ewma > 0 ? 0.8 * w->step_ewma + 0.2 * step_s : step_s;
    for (int32_t k = 0; k < so->n_seqs; k++) {
        const tm_engine_work *ew = &so->work[k];
        w->work[k] = (tm_cost_work){.prefill_tokens = ew->prefill ? ew->n_new : 0,
                                    .decode_tokens = ew->prefill ? 0 : ew->n_new,
                                    .context_tokens = ew->start + ew->n_new};
    }
    if (tm_cost_meter_step(w->meter, w->work, so->n_seqs, step_s, w->share_s, w->share_j, w->share_usd) == TM_OK) {
        for (int32_t k = 0; k < so->n_seqs; k++) {
            wreq *r = so->work[k].user;
            r->cost_s += w->share_s[k];
            r->cost_usd += w->share_usd[k];
            if (w->share_j[k] >= 0) r->cost_j = (r->cost_j < 0 ? 0 : r->cost_j) + w->share_j[k];
            if (so->work[k].n_recompute > 0 && so->work[k].n_new > 0) {
                double f = (double)so->work[k].n_recompute / (double)so->work[k].n_new;
                r->wasted_s += w->share_s[k] * f;
                r->wasted_usd += w->share_usd[k] * f;
            }
        }
    }
    w->mark = step_end;
    w->mark_ck = w->ckpt_seconds;
}

/* TOKENMILL_TEST_CRASH_AFTER (the test hook above); 0: off. */
static long crash_after(void)
{
    const char *e = getenv("TOKENMILL_TEST_CRASH_AFTER");
    char *end;
    long n = e ? strtol(e, &end, 10) : 0;
    return e && *e && !*end && n > 0 ? n : 0;
}

static tm_status loop(worker *w, tm_err *err)
{
    tm_status st = TM_OK;
    long crash = crash_after();
    int show = w->o->progress_every_s > 0;
    for (;;) {
        double now = tm_now_unix_f();
        tm_worker_watch_stops(w, now); /* signals, notice, time limit: one drain */
        tm_worker_keep_leases(w, now);
        int end = 0, slept = 0;
        if ((st = tm_worker_drain_or_checkpoint(w, now, &end, err)) || end) break;
        double t0 = tm_now_unix_f();
        st = claim(w, now, &slept, err); /* claim → schedule */
        double t1 = tm_now_unix_f();
        w->t_claim += t1 - t0;
        if (st || (st = tm_worker_commit(w, err))) break; /* resumed requests that had finished */
        if (slept) continue;
        if (!tm_engine_has_work(w->engine) && w->n_inflight == 0) {
            /* a claim whose requests all failed at once (bad prompts): claim again */
            if (w->claimed_last > 0 && !w->draining) continue;
            if (w->draining || (!w->o->watch && tm_worker_nothing_left(w, now))) break;
            idle_wait(w);
            continue;
        }
        tm_engine_step_out so;
        t0 = tm_now_unix_f();
        if ((st = tm_engine_step(w->engine, &so, err))) break; /* execute */
        t1 = tm_now_unix_f();
        w->t_engine += t1 - t0;
        w->t_forward += (double)so.forward_ns * 1e-9;
        w->sum->steps++;
        if (crash && w->sum->steps >= crash) abort(); /* the test hook */
        w->sum->forward_seconds += (double)so.forward_ns * 1e-9;
        attribute_step(w, &so); /* update: cost, */
        w->gen_tokens += so.n_events;
        for (int32_t i = 0; i < so.n_events && !st; i++) st = tm_worker_handle_event(w, &so.events[i], err);
        w->t_events += tm_now_unix_f() - t1;
        if (st || (st = tm_worker_commit(w, err))) break; /* the step's results: one transaction */
        if ((st = tm_worker_check_cancelled(w, tm_now_unix_f(), err))) break;
        now = tm_now_unix_f();
        if (show && now - w->last_progress > (w->tty ? TM_WORKER_TTY_PROGRESS_S : w->o->progress_every_s)) {
            tm_worker_progress(w, 0);
            w->last_progress = now;
        }
    }
    if (!st && show) tm_worker_progress(w, 1);
    return st;
}

tm_status tm_worker_run(const tm_worker_opts *o, tm_worker_summary *sum, tm_err *err)
{
    worker w;
    tm_status st = tm_worker_setup(&w, o, sum, err);
    if (!st && !sum->other_alive) st = loop(&w, err);
    return tm_worker_teardown(&w, st, err);
}
