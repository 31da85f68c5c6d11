/* job_view.c — the job object, cost sums, and the queue -> output bridge for
 * results, errors and export bundles (job_view.h; formats in output.h).
 */
#include "cli/job_view.h"

#include <stdio.h>
#include <string.h>

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

/* ---- job / cost JSON ------------------------------------------------------ */

static json_t *ts(int64_t t) { return t ? json_integer(t) : json_null(); }

/* OpenAI's Batch states: tokenmill's 'queued' (validated, waiting for a
 * worker) is in_progress there; the others are the same words. */
const char *tm_cli_openai_state(const char *state)
{
    return !strcmp(state, "queued") ? "in_progress" : state;
}

/* "file-" + the job id's hex + suffix: the id of a file derived from the job */
static json_t *job_file_id(const char *job_id, const char *suffix)
{
    char id[96];
    snprintf(id, sizeof id, "file-%s%s", strncmp(job_id, "job_", 4) ? job_id : job_id + 4, suffix);
    return json_string(id);
}

static json_t *errors_json(const tm_queue_job_batch *b)
{
    if (!b || b->n_errors == 0) return json_null();
    json_t *data = json_array();
    for (int i = 0; data && i < b->n_errors; i++) {
        const tm_queue_line_error *e = &b->errors[i];
        json_t *o = json_pack("{s:s, s:o, s:s, s:o}", "code", e->code ? e->code : "invalid_request", "line",
                              e->line > 0 ? json_integer((json_int_t)e->line) : json_null(), "message",
                              e->message ? e->message : "invalid line", "param", str_or_null(e->param));
        if (!o) o = json_pack("{s:s, s:n, s:s, s:n}", "code", "invalid_request", "line", "message", "invalid line",
                              "param"); /* a stored string that is not UTF-8 */
        if (json_array_append_new(data, o)) { json_decref(data); data = NULL; }
    }
    return data ? json_pack("{s:s, s:o}", "object", "list", "data", data) : NULL;
}

/* The OpenAI fields first, then tokenmill's (set one by one: too many for one json_pack). */
json_t *tm_cli_batch_json(const tm_queue_job *j, const tm_queue_job_batch *b)
{
    json_t *meta = j->metadata_json ? json_loads(j->metadata_json, 0, NULL) : NULL;
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    char window[32];
    if (j->completion_window % 3600 == 0) snprintf(window, sizeof window, "%lldh", (long long)j->completion_window / 3600);
    else snprintf(window, sizeof window, "%llds", (long long)j->completion_window);
    int64_t unfinished = j->failed + j->cancelled + j->expired;
    const char *model = j->model ? j->model : b ? b->model : NULL;
    json_t *o = json_object();
    struct { const char *k; json_t *v; } f[] = {
        /* endpoint is a required string: NULL only for a job without one valid line, which submit refuses */
        {"id", json_string(j->id)}, {"object", json_string("batch")}, {"endpoint", json_string(j->endpoint ? j->endpoint : "")},
        {"errors", errors_json(b)},
        {"input_file_id", b && b->input_file_id ? json_string(b->input_file_id) : job_file_id(j->id, "")},
        {"completion_window", json_string(window)}, {"status", json_string(tm_cli_openai_state(j->state))},
        {"output_file_id", j->done > 0 ? job_file_id(j->id, "-output") : json_null()},
        {"error_file_id", unfinished > 0 ? job_file_id(j->id, "-errors") : json_null()},
        {"created_at", json_integer(j->created_at)}, {"in_progress_at", ts(j->in_progress_at)},
        {"expires_at", ts(j->expires_at)}, {"finalizing_at", ts(j->finalizing_at)},
        {"completed_at", ts(j->completed_at)}, {"failed_at", ts(j->failed_at)}, {"expired_at", ts(j->expired_at)},
        {"cancelling_at", ts(j->cancelling_at)}, {"cancelled_at", ts(j->cancelled_at)},
        {"request_counts", json_pack("{s:I, s:I, s:I}", "total", (json_int_t)j->total, "completed",
                                     (json_int_t)j->done, "failed", (json_int_t)j->failed)},
        {"metadata", meta}, {"model", str_or_null(model)},
        /* reasoning tokens are not counted apart: they are in output_tokens */
        {"usage", json_pack("{s:I, s:{s:I}, s:I, s:{s:I}, s:I}", "input_tokens", (json_int_t)j->prompt_tokens,
                            "input_tokens_details", "cached_tokens", (json_int_t)j->cached_tokens, "output_tokens",
                            (json_int_t)j->completion_tokens, "output_tokens_details", "reasoning_tokens",
                            (json_int_t)0, "total_tokens", (json_int_t)(j->prompt_tokens + j->completion_tokens))},
        {"tokenmill_status", json_string(j->state)},
        {"input_filename", str_or_null(b ? b->input_filename : NULL)},
        {"name", str_or_null(j->name)}, {"priority", json_integer(j->priority)},
        {"request_states", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "pending", (json_int_t)j->pending, "running",
                                     (json_int_t)j->running, "done", (json_int_t)j->done, "failed",
                                     (json_int_t)j->failed, "cancelled", (json_int_t)j->cancelled, "expired",
                                     (json_int_t)j->expired)},
        {"tokens", json_pack("{s:I, s:I, s:I, s:I}", "prompt", (json_int_t)j->prompt_tokens, "completion",
                             (json_int_t)j->completion_tokens, "cached", (json_int_t)j->cached_tokens, "total",
                             (json_int_t)(j->prompt_tokens + j->completion_tokens))},
    };
    int bad = !o;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (!f[i].v) bad = 1;
        else if (!o) json_decref(f[i].v);
        else if (json_object_set_new(o, f[i].k, f[i].v)) bad = 1;
    if (bad) { json_decref(o); return NULL; }
    return o;
}


tm_status tm_cli_job_fetch_json(tm_queue *q, const char *job_id, json_t **out, tm_err *err)
{
    tm_queue_job j;
    tm_queue_job_batch b;
    tm_status s = tm_queue_job_get(q, job_id, &j, err);
    if (s) return s;
    if ((s = tm_queue_job_batch_get(q, job_id, &b, err))) { tm_queue_job_clear(&j); return s; }
    *out = tm_cli_batch_json(&j, &b);
    tm_queue_job_clear(&j);
    tm_queue_job_batch_clear(&b);
    return *out ? TM_OK : tm_errf(err, TM_ERR_NOMEM, "out of memory");
}

static json_t *per_million(double cost, int64_t tokens, int has)
{
    return has && tokens > 0 ? json_real(cost * 1e6 / (double)tokens) : json_null();
}

json_t *tm_cli_cost_json(const tm_queue_job *j)
{
    int has = j->has_cost;
    int64_t all = j->prompt_tokens + j->completion_tokens;
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:f, s:o, s:o, s:o, s:o, s:o, s:o, s:f, s:o, s:o}", "job_id", j->id,
                     "requests", (json_int_t)j->total, "prompt_tokens", (json_int_t)j->prompt_tokens,
                     "completion_tokens", (json_int_t)j->completion_tokens, "cached_tokens",
                     (json_int_t)j->cached_tokens, "gpu_seconds", j->gpu_seconds,
                     "kwh", j->has_energy ? json_real(j->energy_joules / 3.6e6) : json_null(), /* unknown is not 0 */
                     "cost_usd", has ? json_real(j->cost_usd) : json_null(), "usd_per_1m_input",
                     per_million(j->cost_usd, j->prompt_tokens, has), "usd_per_1m_output",
                     per_million(j->cost_usd, j->completion_tokens, has), "usd_per_1m_total",
                     per_million(j->cost_usd, all, has), "tokens_per_usd",
                     has && j->cost_usd > 0 ? json_real((double)all / j->cost_usd) : json_null(),
                     /* the part spent recomputing work already done once (job_costs' wasted_*) */
                     "wasted_gpu_seconds", j->wasted_seconds, "wasted_usd", has ? json_real(j->wasted_usd) : json_null(),
                     "wasted_share", has && j->cost_usd > 0 ? json_real(j->wasted_usd / j->cost_usd) : json_null());
}

/* ---- rows -> lines ---------------------------------------------------------- */

typedef struct lines_ctx {
    tm_out *o;
    int64_t n;
} lines_ctx;

static tm_status on_result(void *ctx, const char *request_id, const char *custom_id, const char *resp,
                           size_t len, tm_err *err)
{
    lines_ctx *c = ctx;
    tm_status s = tm_output_result_line(c->o, request_id, custom_id, resp, len, err);
    if (!s) c->n++;
    return s;
}

static tm_status on_error(void *ctx, const tm_queue_error_row *r, tm_err *err)
{
    lines_ctx *c = ctx;
    tm_status s = tm_output_error_line_at(c->o, r->request_id, r->custom_id, r->state, r->code, r->message, r->line,
                                          r->param, err);
    if (!s) c->n++;
    return s;
}

tm_status tm_cli_job_lines(tm_queue *q, const char *job_id, int errors, tm_out *o, int64_t *lines, tm_err *err)
{
    lines_ctx c = {o, 0};
    tm_status s = errors ? tm_queue_foreach_error_row(q, job_id, on_error, &c, err)
                         : tm_queue_foreach_result(q, job_id, on_result, &c, err);
    if (lines) *lines = c.n;
    return s;
}

/* ---- export ------------------------------------------------------------------- */

typedef struct export_ctx {
    tm_queue *q;
    const char *job_id;
} export_ctx;

static tm_status export_lines(void *ctx, int errors, tm_out *o, int64_t *lines, tm_err *err)
{
    export_ctx *x = ctx;
    return tm_cli_job_lines(x->q, x->job_id, errors, o, lines, err);
}

tm_status tm_cli_job_export(tm_queue *q, const char *job_id, const char *path, tm_err *err)
{
    tm_queue_job j;
    tm_status s = tm_queue_job_get(q, job_id, &j, err);
    if (s) return s;
    export_ctx x = {q, job_id};
    tm_output_bundle b = {.job_id = j.id, .lines = export_lines, .lines_ctx = &x};
    tm_queue_job_batch jb;
    if ((s = tm_queue_job_batch_get(q, job_id, &jb, err))) { tm_queue_job_clear(&j); return s; }
    b.job = tm_cli_batch_json(&j, &jb);
    tm_queue_job_batch_clear(&jb);
    b.cost = tm_cli_cost_json(&j);
    b.request_counts = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "total", (json_int_t)j.total, "completed",
                                 (json_int_t)j.done, "failed", (json_int_t)j.failed, "cancelled",
                                 (json_int_t)j.cancelled, "expired", (json_int_t)j.expired, "pending",
                                 (json_int_t)j.pending, "running", (json_int_t)j.running);
    if (!b.job || !b.cost || !b.request_counts) s = tm_errf(err, TM_ERR_NOMEM, "export: out of memory");
    else s = tm_output_export(&b, path, err);
    json_decref(b.job);
    json_decref(b.cost);
    json_decref(b.request_counts);
    tm_queue_job_clear(&j);
    return s;
}
