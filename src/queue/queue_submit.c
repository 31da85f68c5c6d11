/* queue_submit.c — submission: one job and its requests, inserted in short
 * chunk transactions under the 'validating' state and made visible by one
 * small final transaction (queue.h "submission"); the cleanup of dead
 * submissions' rows.
 */
#include "queue/queue_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/timeutil.h"

/* ---- chunks ---------------------------------------------------------------- */

static tm_status chunk_open(tm_queue *q, tm_err *err)
{
    if (q->sub_txn) return TM_OK;
    tm_status s = tm_queue_begin_write(q, err);
    if (s) return s;
    q->sub_txn = 1;
    q->sub_txn_start_ns = tm_now_mono_ns();
    q->sub_chunk_rows = 0;
    return TM_OK;
}

/* Commit the open chunk (with a heartbeat) if it is full or over time. */
static tm_status chunk_maybe_commit(tm_queue *q, tm_err *err)
{
    if (!q->sub_txn) return TM_OK;
    uint64_t now = tm_now_mono_ns();
    if (q->sub_chunk_rows < TM_QUEUE_SUBMIT_CHUNK_ROWS &&
        now - q->sub_txn_start_ns < (uint64_t)TM_QUEUE_SUBMIT_CHUNK_MS * 1000000u)
        return TM_OK;
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "UPDATE jobs SET submit_heartbeat_at=?2 WHERE id=?1", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, q->sub_job, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, tm_now_unix_f());
    s = tm_queue_step_done(q, st, "submission heartbeat", NULL, err);
    sqlite3_finalize(st);
    if (!s) s = tm_queue_commit(q, err);
    q->sub_txn = 0;
    if (s) return s;
    q->sub_committed = 1;
    /* SQLite's lock is not fair: a waiter polls (every 100 ms once it has
     * waited a while) and would keep missing the instant between our COMMIT
     * and next BEGIN. A pause of one poll period lets every waiter in. */
    struct timespec ts = {0, (long)TM_QUEUE_SUBMIT_YIELD_MS * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    return TM_OK;
}

tm_status tm_queue_submit_tick(tm_queue *q, tm_err *err)
{
    if (!q->in_submit) return tm_errf(err, TM_ERR_INTERNAL, "queue: no submission open");
    return chunk_maybe_commit(q, err);
}

/* A request id of the open submission: "req_" + 16 hex of a per-submission
 * random prefix + 16 hex of a counter. Sequential within a job, so inserts
 * into the id index stay local (a big job's random ids made every insert a
 * random B-tree page); unique across jobs by the random prefix (and the
 * UNIQUE constraint would refuse a collision). */
static void sub_request_id(tm_queue *q, char out[TM_QUEUE_ID_MAX])
{
    static const char hex[] = "0123456789abcdef";
    size_t p = 0;
    memcpy(out, "req_", 4);
    p = 4;
    for (int i = 0; i < 8; i++) {
        out[p++] = hex[q->sub_prefix[i] >> 4];
        out[p++] = hex[q->sub_prefix[i] & 15];
    }
    uint64_t c = q->sub_counter++;
    for (int i = 15; i >= 0; i--) out[p + (size_t)(15 - i)] = hex[(c >> (4 * i)) & 15];
    out[p + 16] = 0;
}


tm_status tm_queue_submit_begin(tm_queue *q, const tm_queue_job_opts *o, char job_id[TM_QUEUE_ID_MAX],
                                tm_err *err)
{
    if (q->in_submit) return tm_errf(err, TM_ERR_INTERNAL, "queue: a submission is already open");
    if (o->name && strlen(o->name) > TM_QUEUE_NAME_MAX)
        return tm_errf(err, TM_ERR_USAGE, "--name: longer than %d bytes", TM_QUEUE_NAME_MAX);
    if (o->model && strlen(o->model) > TM_QUEUE_NAME_MAX)
        return tm_errf(err, TM_ERR_USAGE, "--model: longer than %d bytes", TM_QUEUE_NAME_MAX);
    int64_t window = o->completion_window > 0 ? o->completion_window : 86400;
    double now = tm_queue_now(q);
    tm_status s = tm_queue_new_id(q, "job_", job_id, err);
    if (!s) s = tm_queue_rand(q, q->sub_prefix, sizeof q->sub_prefix, err);
    if (s) return s;
    q->sub_counter = 0;
    if (!q->ins_req &&
        (s = tm_queue_prep(q, "INSERT INTO requests(id, job_id, custom_id, invalid, source, line, url, model, body, "
                     "max_tokens, n, state, created_at) VALUES (?1,?2,?3,0,?4,?5,?6,?7,?8,?9,?10,'pending',?11)",
                  &q->ins_req, err)))
        return s;
    if (!q->ins_failed &&
        (s = tm_queue_prep(q, "INSERT INTO requests(id, job_id, custom_id, invalid, source, line, url, model, body, "
                     "max_tokens, n, state, error, created_at, finished_at) "
                     "VALUES (?1,?2,?3,1,?4,?5,?6,?7,?8,?9,?10,'failed',"
                     "CASE WHEN ?13 IS NULL THEN " TM_QUEUE_ERROR_SQL("'invalid_request'", "?11")
                     " ELSE json_set(" TM_QUEUE_ERROR_SQL("'invalid_request'", "?11") ", '$.param', ?13) END"
                     ",?12,?12)",
                  &q->ins_failed, err)))
        return s;
    if (!q->find_dup &&
        (s = tm_queue_prep(q, "SELECT source, line FROM requests WHERE job_id=?1 AND custom_id=?2 AND invalid=0",
                  &q->find_dup, err)))
        return s;
    if ((s = tm_queue_make_owner(q, q->sub_owner, sizeof q->sub_owner, err))) return s;
    q->sub_txn = q->sub_committed = 0;
    if ((s = chunk_open(q, err))) return s;
    sqlite3_stmt *st;
    char file_id[TM_QUEUE_ID_MAX];
    if ((s = tm_queue_new_id(q, "file-", file_id, err)) ||
        (s = tm_queue_prep(q, "INSERT INTO jobs(id, name, model, state, priority, metadata, on_invalid, "
                     "completion_window, created_at, expires_at, submitter, submit_heartbeat_at, "
                     "input_file_id, input_filename, input_sha256) "
                     "VALUES (?1,?2,?3,'validating',?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
                  &st, err))) {
        q->sub_txn = 0;
        tm_queue_rollback(q);
        return s;
    }
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
    tm_queue_bind_text_or_null(st, 2, o->name);
    tm_queue_bind_text_or_null(st, 3, o->model);
    sqlite3_bind_int64(st, 4, o->priority);
    sqlite3_bind_text(st, 5, o->metadata_json ? o->metadata_json : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, o->skip_invalid ? "skip" : "reject", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, window);
    sqlite3_bind_int64(st, 8, (int64_t)now);
    sqlite3_bind_int64(st, 9, (int64_t)now + window);
    sqlite3_bind_text(st, 10, q->sub_owner, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 11, tm_now_unix_f());
    sqlite3_bind_text(st, 12, file_id, -1, SQLITE_TRANSIENT);
    tm_queue_bind_text_or_null(st, 13, o->input_filename);
    tm_queue_bind_text_or_null(st, 14, o->input_sha256);
    s = tm_queue_step_done(q, st, "insert job", NULL, err);
    sqlite3_finalize(st);
    if (s) { tm_queue_rollback(q); q->sub_txn = 0; return s; }
    q->in_submit = 1;
    snprintf(q->sub_job, sizeof q->sub_job, "%s", job_id);
    free(q->sub_default_model);
    free(q->sub_endpoint);
    free(q->sub_endpoint_at);
    q->sub_default_model = o->model ? strdup(o->model) : NULL;
    q->sub_endpoint = q->sub_endpoint_at = NULL;
    q->sub_mixed_ok = o->mixed_endpoints;
    q->sub_mixed = 0;
    q->sub_valid = q->sub_total = 0;
    return TM_OK;
}

tm_status tm_queue_submit_add(tm_queue *q, const tm_queue_new_request *r, tm_err *err)
{
    if (!q->in_submit) return tm_errf(err, TM_ERR_INTERNAL, "queue: no submission open");
    if (!r->custom_id || !r->source)
        return tm_errf(err, TM_ERR_INTERNAL, "queue: request without custom_id/source");
    int other = q->sub_endpoint && r->url && strcmp(q->sub_endpoint, r->url);
    if (other && q->sub_mixed_ok) q->sub_mixed = 1;
    else if (other)
        return tm_errf(err, TM_ERR_INPUT, "url: %.100s in a job of %s requests (from %.200s): one job is one "
                       "endpoint, as in OpenAI's Batch API; submit it as a separate job", r->url, q->sub_endpoint,
                       q->sub_endpoint_at ? q->sub_endpoint_at : "?");
    char rid[TM_QUEUE_ID_MAX];
    tm_status s = chunk_open(q, err);
    if (s) return s;
    sub_request_id(q, rid);
    const char *model = r->model ? r->model : q->sub_default_model;
    sqlite3_stmt *st = q->ins_req;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_bind_text(st, 1, rid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, q->sub_job, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->custom_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, r->line);
    tm_queue_bind_text_or_null(st, 6, r->url);
    tm_queue_bind_text_or_null(st, 7, model);
    tm_queue_bind_text_or_null(st, 8, r->body_json);
    if (r->max_tokens >= 0) sqlite3_bind_int64(st, 9, r->max_tokens);
    sqlite3_bind_int64(st, 10, r->n > 0 ? r->n : 1);
    sqlite3_bind_int64(st, 11, (int64_t)tm_queue_now(q));
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
        sqlite3_stmt *d = q->find_dup;
        sqlite3_reset(d);
        sqlite3_bind_text(d, 1, q->sub_job, -1, SQLITE_STATIC);
        sqlite3_bind_text(d, 2, r->custom_id, -1, SQLITE_STATIC);
        if (sqlite3_step(d) == SQLITE_ROW) {
            const unsigned char *src = sqlite3_column_text(d, 0);
            s = tm_errf(err, TM_ERR_INPUT, "custom_id: duplicate \"%.200s\" (first at %s:%lld)", r->custom_id,
                        src ? (const char *)src : "?", (long long)sqlite3_column_int64(d, 1));
        } else {
            s = tm_queue_sql_fail(q, err, "insert request");
        }
        sqlite3_reset(d);
        return s;
    }
    if (rc != SQLITE_DONE) return tm_queue_sql_fail(q, err, "insert request");
    q->sub_valid++;
    q->sub_total++;
    q->sub_chunk_rows++;
    if (!q->sub_endpoint && r->url) {
        char at[320];
        snprintf(at, sizeof at, "%.300s:%ld", r->source, r->line);
        if (!(q->sub_endpoint = strdup(r->url)) || !(q->sub_endpoint_at = strdup(at)))
            return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
    }
    return chunk_maybe_commit(q, err);
}

tm_status tm_queue_submit_add_failed(tm_queue *q, const tm_queue_new_request *r, const char *message,
                                     tm_err *err)
{
    if (!q->in_submit) return tm_errf(err, TM_ERR_INTERNAL, "queue: no submission open");
    char rid[TM_QUEUE_ID_MAX];
    tm_status s = chunk_open(q, err);
    if (s) return s;
    sub_request_id(q, rid);
    sqlite3_stmt *st = q->ins_failed;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_bind_text(st, 1, rid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, q->sub_job, -1, SQLITE_STATIC);
    tm_queue_bind_text_or_null(st, 3, r->custom_id);
    sqlite3_bind_text(st, 4, r->source ? r->source : "?", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, r->line);
    tm_queue_bind_text_or_null(st, 6, r->url);
    tm_queue_bind_text_or_null(st, 7, r->model ? r->model : q->sub_default_model);
    tm_queue_bind_text_or_null(st, 8, r->body_json);
    if (r->max_tokens >= 0) sqlite3_bind_int64(st, 9, r->max_tokens);
    sqlite3_bind_int64(st, 10, r->n > 0 ? r->n : 1);
    sqlite3_bind_text(st, 11, message ? message : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 12, (int64_t)tm_queue_now(q));
    tm_queue_bind_text_or_null(st, 13, r->param);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return tm_queue_sql_fail(q, err, "insert failed request");
    q->sub_total++;
    q->sub_chunk_rows++;
    return chunk_maybe_commit(q, err);
}

tm_status tm_queue_submit_commit(tm_queue *q, tm_err *err)
{
    if (!q->in_submit) return tm_errf(err, TM_ERR_INTERNAL, "queue: no submission open");
    int64_t now = (int64_t)tm_queue_now(q);
    sqlite3_stmt *st;
    tm_status s = chunk_open(q, err);
    if (s) {
        tm_queue_submit_rollback(q);
        return s;
    }
    /* the job must still be ours (a reaper removes only dead submissions) */
    s = tm_queue_prep(q, "UPDATE jobs SET endpoint=?2, submitter=NULL, submit_heartbeat_at=NULL "
                         "WHERE id=?1 AND state='validating'", &st, err);
    if (!s) {
        sqlite3_bind_text(st, 1, q->sub_job, -1, SQLITE_STATIC);
        tm_queue_bind_text_or_null(st, 2, q->sub_mixed ? "mixed" : q->sub_endpoint);
        int changes = 0;
        s = tm_queue_step_done(q, st, "job endpoint", &changes, err);
        sqlite3_finalize(st);
        if (!s && changes != 1)
            s = tm_errf(err, TM_ERR_INTERNAL, "queue: submission %s was removed while it was inserted", q->sub_job);
    }
    if (!s) s = tm_queue_set_job_state_locked(q, q->sub_job, q->sub_valid > 0 ? "queued" : "failed", now, err);
    if (!s) s = tm_queue_commit(q, err);
    q->sub_txn = 0;
    if (s) {
        tm_queue_submit_rollback(q);
        return s;
    }
    q->in_submit = 0;
    return TM_OK;
}

void tm_queue_submit_rollback(tm_queue *q)
{
    if (!q) return;
    if (q->ins_req) sqlite3_reset(q->ins_req);
    if (q->ins_failed) sqlite3_reset(q->ins_failed);
    if (q->find_dup) sqlite3_reset(q->find_dup);
    tm_queue_rollback(q);
    q->sub_txn = 0;
    if (q->in_submit && q->sub_committed) {
        /* a failure here leaves the rows to the next command's reaper */
        (void)tm_queue_submission_purge(q, q->sub_job, NULL);
    }
    q->sub_committed = 0;
    q->in_submit = 0;
}

/* ---- cleanup ------------------------------------------------------------- */

tm_status tm_queue_submission_purge(tm_queue *q, const char *job_id, tm_err *err)
{
    sqlite3_stmt *del_req = NULL, *del_job = NULL;
    tm_status s = tm_queue_prep(q, "DELETE FROM requests WHERE seq IN (SELECT r.seq FROM requests r JOIN jobs j "
                                   "ON j.id=r.job_id WHERE r.job_id=?1 AND j.state='validating' LIMIT ?2)",
                                &del_req, err);
    if (!s) s = tm_queue_prep(q, "DELETE FROM jobs WHERE id=?1 AND state='validating' AND "
                                 "NOT EXISTS (SELECT 1 FROM requests WHERE job_id=?1)", &del_job, err);
    for (int changes = 1; !s && changes > 0;) {
        if ((s = tm_queue_begin_write(q, err))) break;
        sqlite3_reset(del_req);
        sqlite3_bind_text(del_req, 1, job_id, -1, SQLITE_STATIC);
        sqlite3_bind_int(del_req, 2, TM_QUEUE_SUBMIT_CHUNK_ROWS);
        s = tm_queue_step_done(q, del_req, "purge submission", &changes, err);
        if (!s && changes == 0) {
            sqlite3_bind_text(del_job, 1, job_id, -1, SQLITE_STATIC);
            s = tm_queue_step_done(q, del_job, "purge submission job", NULL, err);
        }
        if (s) tm_queue_rollback(q);
        else s = tm_queue_commit(q, err);
    }
    sqlite3_finalize(del_req);
    sqlite3_finalize(del_job);
    return s;
}

/* Whether a submitter "host:pid:random" is gone: same host and no such
 * process, or no heartbeat for TM_QUEUE_SUBMIT_STALE_S. */
static int submitter_dead(const char *owner, double beat, double now)
{
    if (now - beat > TM_QUEUE_SUBMIT_STALE_S) return 1;
    if (!owner) return 0;
    char host[128];
    if (gethostname(host, sizeof host) != 0) return 0;
    host[sizeof host - 1] = 0;
    size_t hl = strlen(host);
    if (strncmp(owner, host, hl) || owner[hl] != ':') return 0;
    char *end = NULL;
    errno = 0;
    long pid = strtol(owner + hl + 1, &end, 10);
    if (errno || !end || *end != ':' || pid <= 0 || pid == (long)getpid()) return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

void tm_queue_reap_submissions(tm_queue *q)
{
    enum { MAX_REAP = 16 };
    char ids[MAX_REAP][TM_QUEUE_ID_MAX];
    int n = 0;
    sqlite3_stmt *st;
    if (tm_queue_prep(q, "SELECT id, submitter, COALESCE(submit_heartbeat_at, created_at) FROM jobs "
                         "WHERE state='validating' ORDER BY seq", &st, NULL))
        return;
    double now = tm_now_unix_f();
    while (n < MAX_REAP && sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *owner = sqlite3_column_text(st, 1);
        if (submitter_dead((const char *)owner, sqlite3_column_double(st, 2), now))
            tm_queue_col_copy(st, 0, ids[n++], TM_QUEUE_ID_MAX);
    }
    sqlite3_finalize(st);
    for (int i = 0; i < n; i++) (void)tm_queue_submission_purge(q, ids[i], NULL);
}

