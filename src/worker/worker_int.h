/* worker_int.h — the worker's private state, shared by its files (not an API).
 *
 *   run.c      tm_worker_run: the loop, one step = claim → schedule (engine
 *              add) → execute (engine step) → update (tokens, cost) → commit
 *              (results, cancels, progress)
 *   request.c  one request: start (prepare, resume from a checkpoint, engine
 *              add), take a token (detok, stop strings), finish (response,
 *              queue complete), fail, cancel
 *   respond.c  a finished request's logprobs, stop_reason and reasoning
 *   drain.c    signals, preemption notice, time limit, drain, checkpoints,
 *              leases, "is the queue really empty"
 *   setup.c    options' defaults, backend/model/engine set-up (KV sizing),
 *              price and meter, progress line, teardown
 *   serve.c    what this set-up can serve (tokenizer, chat template): the
 *              claim filter, the start check (exit 69 when nothing) and the
 *              end check (requests left queued for another worker)
 *
 * Every list the loop fills is sized at set-up from the options (window:
 * in-flight requests never exceed it), so a step allocates nothing.
 */
#ifndef TM_WORKER_INT_H
#define TM_WORKER_INT_H

#include <stdint.h>

#include "backend/backend.h"
#include "cost/meter.h"
#include "engine/engine.h"
#include "notice/notice.h"
#include "output/response.h"
#include "queue/queue.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"
#include "util/buf.h"
#include "worker/prepare.h"
#include "worker/worker.h"

/* Named constants of the loop (seconds unless said). */
#define TM_WORKER_BLOCK_SIZE 16             /* tokens per KV block */
#define TM_WORKER_CHOICE_ROOM TM_PREPARE_MAX_N /* engine room for one request's choices beyond the window */
#define TM_WORKER_IDLE_SLEEP_US 200000      /* nothing in flight, nothing claimable */
#define TM_WORKER_CLAIM_RETRY_S 0.5         /* a short claim is retried this often while work is in flight */
#define TM_WORKER_BUSY_MS_INFLIGHT 200      /* claim's SQLite busy timeout with work in flight... */
#define TM_WORKER_BUSY_MS_IDLE 2000         /* ...and with none */
#define TM_WORKER_NOTICE_POLL_S 5.0         /* preemption notice poll period */
#define TM_WORKER_TTY_PROGRESS_S 0.2        /* progress line refresh on a terminal */
#define TM_WORKER_LEFT_COUNT_S 1.0          /* the "left" count (jobs rows' counters) is refreshed this often */
#define TM_WORKER_CANCEL_CHECK_S 1.0        /* in-flight jobs' states are read this often */
#define TM_WORKER_COMMIT_TRIES 3            /* teardown: tries to store the last step's results (each a busy wait) */
#define TM_WORKER_STEP_GUESS_S 0.05         /* step time before one was measured */
#define TM_WORKER_DRAIN_SAFETY 1.2          /* drain: margin on the remaining-time estimate */
#define TM_WORKER_HOLDERS_MIN 32            /* first size of the other-lease-holders lists (they grow) */

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

/* A finished request waiting for the step's commit (tm_worker_commit): its
 * response bytes are w->done_json[off, off + len). */
typedef struct wdone {
    char request_id[TM_QUEUE_ID_MAX];
    tm_queue_usage u;
    size_t off, len;
    int64_t prompt, completion, cached;
    double ds, dj, du;           /* cost to count as overhead if its lease was lost (dj < 0: unknown) */
} wdone;

typedef struct worker {
    const tm_worker_opts *o;
    tm_worker_summary *sum;
    tm_queue *q;
    char owner[128];
    char run_id[TM_QUEUE_ID_MAX];
    int registered;
    int tty;
    double t0;                   /* start of the run */
    const tm_backend_ops *ops;
    tm_model *model;
    tm_tokenizer *tok;
    tm_chat_template *chat;       /* the model's Jinja template or a named built-in; NULL: none */
    unsigned kinds;              /* TM_QUEUE_KIND_* this set-up can serve (serve.c) */
    char served_buf[TM_WORKER_SERVED_MAX][TM_QUEUE_NAME_MAX + 1];
    const char *served[TM_WORKER_SERVED_MAX]; /* the model names it serves; served[0] names its responses */
    int n_served;
    char unserved_why[320];      /* why the other kinds cannot be served ("" when all can) */
    int unservable;              /* the run ends because work is left that it cannot serve */
    tm_engine *engine;
    int32_t max_requests;        /* the engine's (window + TM_WORKER_CHOICE_ROOM) */
    tm_prepare_ctx pctx;
    int32_t window;              /* claimed requests ahead of the engine: n_inflight <= window */
    wreq *inflight;
    int32_t n_inflight;
    int claimed_last;            /* requests the last claim got (they may all have failed at once) */
    int32_t live_seqs;
    int32_t max_context;
    tm_buf json;                 /* response scratch */
    /* finished requests of this step, committed in one transaction */
    wdone *done;
    tm_queue_completion *done_c;
    int32_t n_done, cap_done;    /* cap: the window at set-up, grown if commits are refused */
    tm_buf done_json;
    /* step time breakdown (seconds over the run) */
    double t_claim, t_engine, t_forward, t_events, t_commit;
    int64_t left;                /* pending + running in the queue at the last look */
    int64_t left_pending;        /* of which pending */
    int64_t gen_tokens;          /* tokens generated by the steps (all choices, resumed ones not counted) */
    int64_t rate_tokens;         /* gen_tokens at rate_at */
    double rate_at, tok_rate;    /* the progress line's smoothed tokens/s */
    double left_at;
    /* cost */
    tm_cost_meter *meter;
    tm_cost_price price;
    tm_cost_work *work;          /* [max_seqs] per-step scratch */
    double *share_s, *share_j, *share_usd;
    double mark, mark_ck;        /* end of the last accounted interval; ckpt_seconds then */
    /* lists sized [window] at set-up */
    tm_queue_claimed *claims;
    wreq **reqs;                 /* drain / checkpoint selections */
    const char **ids;            /* lease check ids; cancel check job ids */
    int *held;
    tm_queue_checkpoint *cks;
    size_t *ck_off;
    tm_buf ckbuf;                /* checkpoint encoding scratch */
    /* timers */
    double last_renew, last_progress, last_ckpt, next_claim_at, last_cancel_check;
    double tl_deadline;          /* --time-limit as a unix time; 0: none */
    /* drain */
    int draining;
    double drain_deadline;       /* unix time the machine goes away */
    double drain_start;          /* when the drain began */
    int hard_stop;               /* second signal: checkpoint now, exit */
    double step_ewma;            /* seconds per loop iteration with a step */
    double ckpt_seconds;         /* time spent saving checkpoints (overhead, not a step's) */
    int busy_noted;
    tm_notice *notice;
    /* --until-empty with nothing to claim: holders of other leases (grown as needed) */
    tm_queue_holder *holders, *seen;
    int holders_cap, n_seen;
    double waiting_since;
} worker;

/* The "\r\033[K" that clears a progress line on a terminal, else "". */
const char *tm_worker_cr(const worker *w);

/* setup.c */
tm_status tm_worker_setup(worker *w, const tm_worker_opts *o, tm_worker_summary *sum, tm_err *err);
tm_status tm_worker_teardown(worker *w, tm_status st, tm_err *err);
void tm_worker_progress(worker *w, int final);

/* request.c */
/* TM_ERR_BUSY (err untouched): the engine has no room for the request's
 * choices now; its lease was given back. */
tm_status tm_worker_start_request(worker *w, tm_queue_claimed *claim, tm_err *err);
tm_status tm_worker_handle_event(worker *w, const tm_engine_event *ev, tm_err *err);
tm_status tm_worker_check_cancelled(worker *w, double now, tm_err *err); /* at most every TM_WORKER_CANCEL_CHECK_S */
void tm_worker_drop_request(worker *w, wreq *r); /* unlink and free */
int32_t tm_worker_generated(const wreq *r);       /* tokens generated over its choices */
/* Store the finished requests waiting in w->done in one transaction; the
 * summary counts them only then (a result is durable before it is reported
 * done). A busy database leaves them for the next call. */
tm_status tm_worker_commit(worker *w, tm_err *err);

/* respond.c: a finished request's logprob records (ch[i].logprobs point
 * into x: clear it after the response is built), each choice's stop_reason,
 * and for chat the reasoning split out of ch[i]'s text by the template's
 * reasoning format (*reasoning_tokens counts its tokens). ch[i].text,
 * token_ids and n_tokens are set by the caller. */
typedef struct tm_worker_extras {
    tm_response_logprob *lp;     /* [sum of the choices' tokens] */
    tm_response_token *alt;      /* [sum of their kept alternatives] */
    tm_buf bytes;                /* every token's bytes, back to back */
    tm_detok *pieces;            /* NULL without a tokenizer */
} tm_worker_extras;
tm_status tm_worker_response_extras(const worker *w, const wreq *r, tm_response_choice *ch, tm_worker_extras *x,
                                    int64_t *reasoning_tokens, tm_err *err);
void tm_worker_extras_clear(tm_worker_extras *x);

/* serve.c */
/* Set the claim filter from w->kinds; when some kinds cannot be served, say
 * once how many pending requests are left for another worker, and return
 * TM_ERR_UNAVAILABLE when pending work exists and none of it can be served. */
tm_status tm_worker_serve_start(worker *w, tm_err *err);
/* At the end of a run that emptied what it could: TM_ERR_UNAVAILABLE when
 * requests this worker could not serve are still pending. */
tm_status tm_worker_serve_end(worker *w, tm_err *err);

/* drain.c */
void tm_worker_watch_stops(worker *w, double now);   /* signals, notice, time limit -> drain */
void tm_worker_keep_leases(worker *w, double now);   /* renew, heartbeat, drop lost leases */
/* Drain tick while draining, periodic checkpoints otherwise; *end: the loop ends. */
tm_status tm_worker_drain_or_checkpoint(worker *w, double now, int *end, tm_err *err);
tm_status tm_worker_checkpoint_all(worker *w, tm_err *err);
int tm_worker_nothing_left(worker *w, double now);

#endif
