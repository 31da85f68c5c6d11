/* serve.c — what this worker's own set-up lets it serve. Without a
 * tokenizer only token-id prompts run; without a chat template no chat
 * request does. Those requests are the set-up's fault, not theirs: they are
 * not claimed (the queue's claim filter leaves them pending, attempts not
 * charged, no error recorded) and the worker says so once, exits 69 at
 * start when it can serve none of the pending work, and 69 at the end when
 * work it could not serve is still queued. */
#include <stdio.h>

#include "worker/worker_int.h"

/* "12 chat, 3 text-prompt" for the pending kinds this worker cannot serve;
 * the count in *n. */
static void describe_unserved(const worker *w, const int64_t c[4], char *out, size_t outsz, int64_t *n)
{
    static const char *const names[3] = {"chat", "text-prompt", "token-id"};
    static const unsigned bits[3] = {TM_QUEUE_KIND_CHAT, TM_QUEUE_KIND_TEXT, TM_QUEUE_KIND_IDS};
    size_t len = 0;
    *n = 0;
    out[0] = 0;
    for (int i = 0; i < 3; i++) {
        if ((w->kinds & bits[i]) || c[i] == 0) continue;
        *n += c[i];
        int k = snprintf(out + len, outsz - len, "%s%lld %s", len ? ", " : "", (long long)c[i], names[i]);
        if (k < 0 || (size_t)k >= outsz - len) break;
        len += (size_t)k;
    }
}

tm_status tm_worker_serve_start(worker *w, tm_err *err)
{
    tm_queue_set_claim_kinds(w->q, w->kinds);
    if (w->kinds == TM_QUEUE_KIND_ALL) return TM_OK;
    int64_t c[4];
    tm_status st = tm_queue_pending_kinds(w->q, c, err);
    if (st) return st;
    char what[160];
    int64_t unserved;
    describe_unserved(w, c, what, sizeof what, &unserved);
    int64_t served = c[3];
    if (w->kinds & TM_QUEUE_KIND_CHAT) served += c[0];
    if (w->kinds & TM_QUEUE_KIND_TEXT) served += c[1];
    if (w->kinds & TM_QUEUE_KIND_IDS) served += c[2];
    if (unserved > 0 && served == 0) {
        w->unservable = 1;
        return tm_errf(err, TM_ERR_UNAVAILABLE, "%s: this worker can serve none of the %lld pending requests "
                       "(%s); nothing claimed", w->unserved_why, (long long)unserved, what);
    }
    if (!w->o->quiet)
        fprintf(stderr, "tokenmill run: %s: %s requests are left queued for a worker that can serve them%s%s%s\n",
                w->unserved_why, w->kinds & TM_QUEUE_KIND_TEXT ? "chat" : "chat and text-prompt",
                unserved ? " (now " : "", unserved ? what : "", unserved ? ")" : "");
    return TM_OK;
}

tm_status tm_worker_serve_end(worker *w, tm_err *err)
{
    if (w->kinds == TM_QUEUE_KIND_ALL) return TM_OK;
    int64_t c[4];
    tm_err qerr;
    if (tm_queue_pending_kinds(w->q, c, &qerr) != TM_OK) return TM_OK; /* the run itself went well */
    char what[160];
    int64_t unserved;
    describe_unserved(w, c, what, sizeof what, &unserved);
    if (unserved == 0) return TM_OK;
    w->unservable = 1;
    return tm_errf(err, TM_ERR_UNAVAILABLE, "%lld requests left queued that this worker cannot serve (%s): %s",
                   (long long)unserved, what, w->unserved_why);
}
