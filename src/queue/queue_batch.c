/* queue_batch.c — what an OpenAI Batch object and list page need beyond a
 * job's counts (queue.h "jobs"): the input file's id, name and hash, the
 * model its requests name, the errors of invalid lines; pages of jobs newest
 * first; a job found by its input's hash; error rows with line and param.
 */
#include "queue/queue_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tm_queue_job_batch_clear(tm_queue_job_batch *b)
{
    if (!b) return;
    free(b->input_file_id);
    free(b->input_filename);
    free(b->input_sha256);
    free(b->model);
    for (int i = 0; i < b->n_errors; i++) {
        free(b->errors[i].code);
        free(b->errors[i].message);
        free(b->errors[i].param);
    }
    free(b->errors);
    memset(b, 0, sizeof *b);
}

/* input_* and the one model the job's valid requests name (NULL: none or several) */
static tm_status batch_job_row(tm_queue *q, const char *job_id, tm_queue_job_batch *b, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT j.input_file_id, j.input_filename, j.input_sha256, "
                                   "(SELECT CASE WHEN COUNT(DISTINCT COALESCE(r.model, '')) = 1 THEN MIN(r.model) END "
                                   " FROM requests r WHERE r.job_id = j.id AND r.invalid = 0), "
                                   "(SELECT COUNT(*) FROM requests r WHERE r.job_id = j.id AND r.invalid = 1) "
                                   "FROM jobs j WHERE j.id = ?1", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        b->input_file_id = tm_queue_col_dup(st, 0);
        b->input_filename = tm_queue_col_dup(st, 1);
        b->input_sha256 = tm_queue_col_dup(st, 2);
        b->model = tm_queue_col_dup(st, 3);
        b->invalid = tm_queue_col_i64(st, 4);
    } else if (rc == SQLITE_DONE) {
        s = tm_errf(err, TM_ERR_NOTFOUND, "no such job: %.100s", job_id);
    } else {
        s = tm_queue_sql_fail(q, err, "read job");
    }
    sqlite3_finalize(st);
    return s;
}

static tm_status batch_errors(tm_queue *q, const char *job_id, tm_queue_job_batch *b, tm_err *err)
{
    if (b->invalid <= 0) return TM_OK;
    size_t cap = b->invalid < TM_QUEUE_LINE_ERRORS_MAX ? (size_t)b->invalid : TM_QUEUE_LINE_ERRORS_MAX;
    if (!(b->errors = calloc(cap, sizeof *b->errors))) return tm_errf(err, TM_ERR_NOMEM, "queue: out of memory");
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT line, "
                                   "CASE WHEN json_valid(error) THEN json_extract(error, '$.code') END, "
                                   "CASE WHEN json_valid(error) THEN json_extract(error, '$.message') END, "
                                   "CASE WHEN json_valid(error) THEN json_extract(error, '$.param') END "
                                   "FROM requests WHERE job_id=?1 AND invalid=1 ORDER BY seq LIMIT ?2", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)cap);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && (size_t)b->n_errors < cap) {
        tm_queue_line_error *e = &b->errors[b->n_errors++];
        e->line = tm_queue_col_i64(st, 0);
        e->code = tm_queue_col_dup(st, 1);
        e->message = tm_queue_col_dup(st, 2);
        e->param = sqlite3_column_type(st, 3) == SQLITE_TEXT ? tm_queue_col_dup(st, 3) : NULL;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) s = tm_queue_sql_fail(q, err, "read invalid lines");
    sqlite3_finalize(st);
    return s;
}

tm_status tm_queue_job_batch_get(tm_queue *q, const char *job_id, tm_queue_job_batch *out, tm_err *err)
{
    memset(out, 0, sizeof *out);
    /* inside a job page's callback the page's read transaction is open: read in it */
    int own = sqlite3_get_autocommit(q->db) != 0;
    tm_status s = own ? tm_queue_begin_read(q, err) : TM_OK;
    if (s) return s;
    s = batch_job_row(q, job_id, out, err);
    if (!s) s = batch_errors(q, job_id, out, err);
    if (own) tm_queue_rollback(q);
    if (s) tm_queue_job_batch_clear(out);
    return s;
}

tm_status tm_queue_job_page(tm_queue *q, const char *after, const char *state, int limit,
                            tm_status (*cb)(void *ctx, const tm_queue_job *job, tm_err *err), void *ctx,
                            int64_t *more, tm_err *err)
{
    if (more) *more = 0;
    if (limit < 1) limit = 1;
    tm_status s = tm_queue_begin_read(q, err);
    if (s) return s;
    /* ?1 after (its seq bounds the page), ?2 state, ?3 limit */
    static const char where[] = "FROM jobs WHERE state <> 'validating' AND (?2 IS NULL OR state = ?2) "
                                "AND (?1 IS NULL OR seq < (SELECT seq FROM jobs WHERE id = ?1)) ";
    sqlite3_stmt *st = NULL, *cnt = NULL;
    tm_queue_ids l = {0};
    if (after && !(s = tm_queue_prep(q, "SELECT 1 FROM jobs WHERE id=?1", &st, err))) {
        sqlite3_bind_text(st, 1, after, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) s = tm_errf(err, TM_ERR_NOTFOUND, "--after: no such job: %.100s", after);
        else if (rc != SQLITE_ROW) s = tm_queue_sql_fail(q, err, "read job");
        sqlite3_finalize(st);
        st = NULL;
    }
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT id %s ORDER BY seq DESC LIMIT ?3", where);
    if (!s) s = tm_queue_prep(q, sql, &st, err);
    if (!s) {
        tm_queue_bind_text_or_null(st, 1, after);
        tm_queue_bind_text_or_null(st, 2, state);
        sqlite3_bind_int(st, 3, limit);
        int rc;
        while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW)
            s = tm_queue_ids_push(&l, (const char *)sqlite3_column_text(st, 0), err);
        if (!s && rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "list jobs");
    }
    snprintf(sql, sizeof sql, "SELECT COUNT(*) %s", where);
    if (!s && more && !(s = tm_queue_prep(q, sql, &cnt, err))) {
        tm_queue_bind_text_or_null(cnt, 1, after);
        tm_queue_bind_text_or_null(cnt, 2, state);
        if (sqlite3_step(cnt) == SQLITE_ROW) *more = sqlite3_column_int64(cnt, 0) - (int64_t)l.n;
        else s = tm_queue_sql_fail(q, err, "count jobs");
    }
    sqlite3_finalize(st);
    sqlite3_finalize(cnt);
    for (size_t i = 0; !s && i < l.n; i++) {
        tm_queue_job j;
        s = tm_queue_job_get_locked(q, l.ids[i], &j, err);
        if (!s) s = cb(ctx, &j, err);
        tm_queue_job_clear(&j);
    }
    tm_queue_rollback(q);
    tm_queue_ids_free(&l);
    return s;
}

tm_status tm_queue_job_find_input(tm_queue *q, const char *sha, char job_id[TM_QUEUE_ID_MAX], tm_err *err)
{
    job_id[0] = 0;
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT id FROM jobs WHERE input_sha256 = ?1 AND state NOT IN "
                                   "('validating','failed','cancelling','cancelled','expired') "
                                   "ORDER BY seq DESC LIMIT 1", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) tm_queue_col_copy(st, 0, job_id, TM_QUEUE_ID_MAX);
    else if (rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "find input");
    sqlite3_finalize(st);
    return s;
}

tm_status tm_queue_foreach_error_row(tm_queue *q, const char *job_id,
                                     tm_status (*cb)(void *ctx, const tm_queue_error_row *row, tm_err *err),
                                     void *ctx, tm_err *err)
{
    tm_status s = tm_queue_begin_read(q, err);
    if (s) return s;
    sqlite3_stmt *st = NULL;
    if (!(s = tm_queue_prep(q, "SELECT 1 FROM jobs WHERE id=?1", &st, err))) {
        sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) s = tm_errf(err, TM_ERR_NOTFOUND, "no such job: %.100s", job_id);
        else if (rc != SQLITE_ROW) s = tm_queue_sql_fail(q, err, "read job");
        sqlite3_finalize(st);
        st = NULL;
    }
    if (!s)
        s = tm_queue_prep(q, "SELECT id, custom_id, state, "
                             "CASE WHEN json_valid(error) THEN json_extract(error, '$.code') END, "
                             "CASE WHEN json_valid(error) THEN json_extract(error, '$.message') END, "
                             "CASE WHEN json_valid(error) AND json_type(error, '$.param') = 'text' "
                             "THEN json_extract(error, '$.param') END, line "
                             "FROM requests WHERE job_id=?1 "
                             "AND state IN ('failed','cancelled','expired') ORDER BY seq", &st, err);
    if (!s) {
        sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
        int rc = SQLITE_DONE;
        while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            tm_queue_error_row r = {(const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
                                    (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
                                    (const char *)sqlite3_column_text(st, 4), (const char *)sqlite3_column_text(st, 5),
                                    sqlite3_column_int64(st, 6)};
            s = cb(ctx, &r, err);
        }
        if (!s && rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "read errors");
    }
    sqlite3_finalize(st);
    tm_queue_rollback(q);
    return s;
}
