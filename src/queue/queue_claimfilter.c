/* queue_claimfilter.c — which kinds of request a worker claims (a worker
 * without a tokenizer or chat template leaves what it cannot serve pending),
 * and how many pending requests there are of each kind. The claim itself
 * (queue_lease.c) applies the filter with TM_QUEUE_KIND_SQL. */
#include "queue/queue_int.h"

void tm_queue_set_claim_kinds(tm_queue *q, unsigned kinds)
{
    kinds &= TM_QUEUE_KIND_ALL;
    q->claim_kinds = kinds == TM_QUEUE_KIND_ALL ? 0 : kinds;
}

tm_status tm_queue_pending_kinds(tm_queue *q, int64_t counts[4], tm_err *err)
{
    for (int i = 0; i < 4; i++) counts[i] = 0;
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT " TM_QUEUE_KIND_SQL " AS k, count(*) FROM requests r "
                                   "JOIN jobs j ON j.id = r.job_id "
                                   "WHERE r.state='pending' AND j.state IN ('queued','in_progress') GROUP BY k",
                                &st, err);
    if (s) return s;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t k = sqlite3_column_int64(st, 0), n = sqlite3_column_int64(st, 1);
        int slot = k == TM_QUEUE_KIND_CHAT ? 0 : k == TM_QUEUE_KIND_TEXT ? 1 : k == TM_QUEUE_KIND_IDS ? 2 : 3;
        counts[slot] += n;
    }
    if (rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "count pending requests");
    sqlite3_finalize(st);
    return s;
}
