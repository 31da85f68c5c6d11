/* queue_cost.c — the cost section of the queue (queue_cost.h): prices, runs' cost columns, report
 * queries over the cost views (0003_cost_views.sql, 0005_cost_wasted.sql).
 *
 * The model/worker/metadata report queries repeat the view definitions with
 * the period bound as parameters ?1 since, ?2 until, and the metadata key's
 * JSON path as ?3 (views take no parameters); unit/test_cost_report
 * checks that with since = 0 they return exactly the views' rows. The
 * --include-overhead queries are the same definitions over the requests
 * extended with their share of their run's overhead (OVERHEAD_CTE).
 */
#include "queue/queue_cost.h"
#include "queue/queue_int.h"

#include <ctype.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void bind_opt_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s && *s) sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

static void bind_opt_real(sqlite3_stmt *st, int i, double v)
{
    if (v >= 0 && isfinite(v)) sqlite3_bind_double(st, i, v);
    else sqlite3_bind_null(st, i);
}

/* ---- prices ------------------------------------------------------------------ */

static int valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 63) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') return 0;
    return 1;
}

tm_status tm_queue_price_set(tm_queue *q, const tm_queue_price *p, tm_err *err)
{
    if (!valid_name(p->name))
        return tm_errf(err, TM_ERR_USAGE, "price name \"%.80s\": 1-63 characters of A-Z a-z 0-9 . _ -", p->name);
    if (!isfinite(p->usd_per_gpu_hour) || p->usd_per_gpu_hour < 0 || p->usd_per_gpu_hour > 1e6)
        return tm_errf(err, TM_ERR_USAGE, "--usd-per-gpu-hour: must be a number in [0, 1e6]");
    if (!isfinite(p->usd_per_kwh) || p->usd_per_kwh > 1e6)
        return tm_errf(err, TM_ERR_USAGE, "--usd-per-kwh: must be a number in [0, 1e6]");
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q,
                       "INSERT OR REPLACE INTO prices (name, usd_per_gpu_hour, usd_per_kwh, description, created_at, "
                       "gpu, profile) VALUES (?1, ?2, ?3, ?4, CAST(strftime('%s','now') AS INTEGER), ?5, ?6)",
                       &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, p->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 2, p->usd_per_gpu_hour);
    bind_opt_real(st, 3, p->usd_per_kwh);
    bind_opt_text(st, 4, p->description);
    bind_opt_text(st, 5, p->gpu);
    bind_opt_text(st, 6, p->profile);
    if (sqlite3_step(st) != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "set price");
    sqlite3_finalize(st);
    return s;
}

static void read_price(sqlite3_stmt *st, tm_queue_price *p)
{
    memset(p, 0, sizeof *p);
    tm_queue_col_copy(st, 0, p->name, sizeof p->name);
    p->usd_per_gpu_hour = sqlite3_column_double(st, 1);
    p->usd_per_kwh = sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 2);
    tm_queue_col_copy(st, 3, p->description, sizeof p->description);
    p->created_at = sqlite3_column_int64(st, 4);
    tm_queue_col_copy(st, 5, p->gpu, sizeof p->gpu);
    tm_queue_col_copy(st, 6, p->profile, sizeof p->profile);
}

#define PRICE_COLS "name, usd_per_gpu_hour, usd_per_kwh, description, created_at, gpu, profile"

tm_status tm_queue_price_get(tm_queue *q, const char *name, tm_queue_price *out, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT " PRICE_COLS " FROM prices WHERE name = ?1", &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) read_price(st, out);
    else if (rc == SQLITE_DONE) s = tm_errf(err, TM_ERR_NOTFOUND, "no price profile \"%.80s\" (tokenmill prices list)", name);
    else s = tm_queue_sql_fail(q, err, "get price");
    sqlite3_finalize(st);
    return s;
}

tm_status tm_queue_price_list(tm_queue *q, tm_status (*cb)(void *ctx, const tm_queue_price *p, tm_err *err),
                              void *ctx, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q, "SELECT " PRICE_COLS " FROM prices ORDER BY name", &st, err);
    if (s) return s;
    int rc;
    tm_queue_price p;
    while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_price(st, &p);
        s = cb(ctx, &p, err);
    }
    if (!s && rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "list prices");
    sqlite3_finalize(st);
    return s;
}

/* ---- runs ----------------------------------------------------------------------- */

tm_status tm_queue_run_cost_set(tm_queue *q, const char *run_id, const tm_queue_run_cost *rc, tm_err *err)
{
    sqlite3_stmt *st;
    tm_status s = tm_queue_prep(q,
                       "UPDATE runs SET model = ?2, price_profile = ?3, price_usd_per_hour = ?4, "
                       "price_usd_per_kwh = ?5, gpu_seconds = ?6, energy_joules = ?7, cost_usd = ?8, "
                       "overhead_seconds = ?9 WHERE id = ?1",
                       &st, err);
    if (s) return s;
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_TRANSIENT);
    bind_opt_text(st, 2, rc->model);
    bind_opt_text(st, 3, rc->price_profile);
    bind_opt_real(st, 4, rc->usd_per_hour);
    bind_opt_real(st, 5, rc->usd_per_kwh);
    bind_opt_real(st, 6, rc->gpu_seconds);
    bind_opt_real(st, 7, rc->energy_joules);
    bind_opt_real(st, 8, rc->cost_usd);
    bind_opt_real(st, 9, rc->overhead_seconds);
    if (sqlite3_step(st) != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "set run cost");
    else if (sqlite3_changes(q->db) != 1) s = tm_errf(err, TM_ERR_NOTFOUND, "no run \"%.80s\"", run_id);
    sqlite3_finalize(st);
    return s;
}

/* ---- report queries ---------------------------------------------------------------- */

/* Run a prepared statement into out (columns named as the statement's). */
static tm_status fill_table(tm_queue *q, sqlite3_stmt *st, tm_table *out, tm_err *err)
{
    memset(out, 0, sizeof *out);
    int nc = sqlite3_column_count(st);
    if (nc < 1) return tm_errf(err, TM_ERR_INTERNAL, "report: query has no columns");
    const char *names[64];
    if (nc > (int)(sizeof names / sizeof *names)) return tm_errf(err, TM_ERR_INTERNAL, "report: too many columns");
    for (int i = 0; i < nc; i++) names[i] = sqlite3_column_name(st, i);
    tm_status s0 = tm_table_set_cols(out, names, nc, err);
    if (s0) return s0;
    int rc;
    tm_status s = TM_OK;
    while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        tm_cell *row;
        if ((s = tm_table_add_row(out, &row, err))) break;
        for (int i = 0; i < nc && !s; i++) {
            switch (sqlite3_column_type(st, i)) {
            case SQLITE_INTEGER: row[i].type = TM_CELL_INT; row[i].i = sqlite3_column_int64(st, i); break;
            case SQLITE_FLOAT: row[i].type = TM_CELL_REAL; row[i].d = sqlite3_column_double(st, i); break;
            case SQLITE_NULL: row[i].type = TM_CELL_NULL; break;
            default: {
                const unsigned char *txt = sqlite3_column_text(st, i);
                row[i].type = TM_CELL_TEXT;
                if (!(row[i].s = strdup(txt ? (const char *)txt : ""))) s = tm_errf(err, TM_ERR_NOMEM, "out of memory");
            }
            }
        }
    }
    if (!s && rc != SQLITE_DONE) s = tm_queue_sql_fail(q, err, "report query");
    return s;
}

/* The end of time for an open --until: 10000-01-01 (SQLite's date() stops at 9999). */
#define UNTIL_NONE INT64_C(253402300800)

/* Binds ?1 = since, ?2 = until (exclusive), ?3 = path (when the statement has them). */
static tm_status run_query3(tm_queue *q, const char *sql, int64_t since, int64_t until, const char *path,
                            tm_table *out, tm_err *err)
{
    sqlite3_stmt *st;
    memset(out, 0, sizeof *out);
    tm_status s = tm_queue_prep(q, sql, &st, err);
    if (s) return s;
    int np = sqlite3_bind_parameter_count(st);
    if (np >= 1) sqlite3_bind_int64(st, 1, since < 0 ? 0 : since);
    if (np >= 2) sqlite3_bind_int64(st, 2, until <= 0 || until > UNTIL_NONE ? UNTIL_NONE : until);
    if (np >= 3) sqlite3_bind_text(st, 3, path ? path : "$", -1, SQLITE_TRANSIENT);
    s = fill_table(q, st, out, err);
    sqlite3_finalize(st);
    if (s) tm_table_free(out);
    return s;
}

static tm_status run_query(tm_queue *q, const char *sql, int64_t since, tm_table *out, tm_err *err)
{
    return run_query3(q, sql, since, 0, NULL, out, err);
}

/* The measure columns of the cost views (0003/0005) over rows T, with C the
 * per-row cost expression (T.cost_usd, or the cost with its overhead share). */
#define MEASURES_C(T, C)                                                                                    \
    "COALESCE(SUM(" T ".prompt_tokens), 0) AS prompt_tokens, "                                              \
    "COALESCE(SUM(" T ".completion_tokens), 0) AS completion_tokens, "                                      \
    "COALESCE(SUM(" T ".prompt_tokens + " T ".completion_tokens), 0) AS total_tokens, "                     \
    "COALESCE(SUM(" T ".gpu_seconds), 0.0) AS gpu_seconds, "                                                \
    "SUM(" T ".energy_joules) / 3.6e6 AS kwh, "                                                             \
    "COALESCE(SUM(" C "), 0.0) AS cost_usd, "                                                               \
    "SUM(" C ") * 1e6 / NULLIF(SUM(" T ".prompt_tokens), 0) AS usd_per_1m_input, "                          \
    "SUM(" C ") * 1e6 / NULLIF(SUM(" T ".completion_tokens), 0) AS usd_per_1m_output, "                     \
    "SUM(" C ") * 1e6 / NULLIF(SUM(" T ".prompt_tokens + " T ".completion_tokens), 0) "                    \
    "AS usd_per_1m_total, "                                                                                 \
    "SUM(" T ".prompt_tokens + " T ".completion_tokens) / NULLIF(SUM(" C "), 0.0) AS tokens_per_usd"
#define MEASURES(T) MEASURES_C(T, T ".cost_usd")
/* job_costs has cached_tokens between completion_tokens and total_tokens */
#define JOB_MEASURES_C(T, C)                                                                                \
    "COALESCE(SUM(" T ".prompt_tokens), 0) AS prompt_tokens, "                                              \
    "COALESCE(SUM(" T ".completion_tokens), 0) AS completion_tokens, "                                      \
    "COALESCE(SUM(" T ".cached_tokens), 0) AS cached_tokens, "                                              \
    "COALESCE(SUM(" T ".prompt_tokens + " T ".completion_tokens), 0) AS total_tokens, "                     \
    "COALESCE(SUM(" T ".gpu_seconds), 0.0) AS gpu_seconds, "                                                \
    "SUM(" T ".energy_joules) / 3.6e6 AS kwh, "                                                             \
    "COALESCE(SUM(" C "), 0.0) AS cost_usd, "                                                               \
    "SUM(" C ") * 1e6 / NULLIF(SUM(" T ".prompt_tokens), 0) AS usd_per_1m_input, "                          \
    "SUM(" C ") * 1e6 / NULLIF(SUM(" T ".completion_tokens), 0) AS usd_per_1m_output, "                     \
    "SUM(" C ") * 1e6 / NULLIF(SUM(" T ".prompt_tokens) + SUM(" T ".completion_tokens), 0) "               \
    "AS usd_per_1m_total, "                                                                                 \
    "(SUM(" T ".prompt_tokens) + SUM(" T ".completion_tokens)) / NULLIF(SUM(" C "), 0.0) AS tokens_per_usd"
/* 0005: waste sums over rows W, share of the cost C */
#define WASTED(W, C)                                                                                        \
    "COALESCE(SUM(" W ".wasted_seconds), 0.0) AS wasted_gpu_seconds, "                                      \
    "COALESCE(SUM(" W ".wasted_usd), 0.0) AS wasted_usd, "                                                  \
    "COALESCE(SUM(" W ".wasted_usd), 0.0) / NULLIF(SUM(" C "), 0.0) AS wasted_share"

/* Requests with their share of their run's overhead (the rule in queue_cost.h):
 * CTE rx = the requests columns the reports use, plus oh_s, oh_usd (0.0 when
 * none) and cost_all = cost_usd + oh_usd (NULL when the request has neither).
 * One pass over requests for ow (per-run GPU-seconds) and one joined to it and
 * to runs by primary key: no per-request subquery (400k requests: ~2 s). */
#define OVERHEAD_CTE                                                                                        \
    "WITH ow AS (SELECT run_id, SUM(COALESCE(gpu_seconds, 0.0)) AS g, COUNT(*) AS n FROM requests "          \
    "WHERE run_id IS NOT NULL GROUP BY run_id), "                                                           \
    "rw AS (SELECT r.seq, r.job_id, r.model, u.served_model, r.finished_at, r.prompt_tokens, r.completion_tokens, "         \
    "r.cached_tokens, r.gpu_seconds, r.energy_joules, r.cost_usd, r.wasted_seconds, r.wasted_usd, "         \
    "u.overhead_seconds AS u_oh_s, u.overhead_seconds * u.price_usd_per_hour / 3600.0 AS u_oh_usd, "        \
    "CASE WHEN u.id IS NULL THEN 0.0 WHEN ow.g > 0 THEN COALESCE(r.gpu_seconds, 0.0) / ow.g "               \
    "ELSE 1.0 / ow.n END AS w "                                                                             \
    "FROM requests r LEFT JOIN ow ON ow.run_id = r.run_id LEFT JOIN runs u ON u.id = r.run_id), "           \
    "rx AS (SELECT rw.*, rw.w * COALESCE(rw.u_oh_s, 0.0) AS oh_s, rw.w * COALESCE(rw.u_oh_usd, 0.0) AS oh_usd, " \
    "CASE WHEN rw.cost_usd IS NULL AND rw.u_oh_usd IS NULL THEN NULL "                                      \
    "ELSE COALESCE(rw.cost_usd, 0.0) + rw.w * COALESCE(rw.u_oh_usd, 0.0) END AS cost_all FROM rw) "
#define OVERHEAD_COLS(T)                                                                                    \
    "COALESCE(SUM(" T ".oh_s), 0.0) AS overhead_seconds, COALESCE(SUM(" T ".oh_usd), 0.0) AS overhead_usd"

static const char *const SQL_BY_JOB =
    "SELECT c.* FROM job_costs c JOIN jobs j ON j.id = c.job_id WHERE j.created_at >= ?1 AND j.created_at < ?2 "
    "ORDER BY j.seq";
static const char *const SQL_BY_DAY =
    "SELECT * FROM daily_costs WHERE day >= date(?1, 'unixepoch') AND day <= date(?2 - 1, 'unixepoch') ORDER BY day";
static const char *const SQL_BY_MODEL =
    "SELECT COALESCE(u.served_model, r.model, j.model, '(none)') AS model, "
    "COALESCE(r.model, j.model, '(none)') AS requested_model, COUNT(*) AS requests, " MEASURES("r") ", "
    WASTED("r", "r.cost_usd")
    " FROM requests r JOIN jobs j ON j.id = r.job_id LEFT JOIN runs u ON u.id = r.run_id "
    "WHERE r.finished_at IS NOT NULL AND r.finished_at >= ?1 AND r.finished_at < ?2 GROUP BY 1, 2 ORDER BY 1, 2";
static const char *const SQL_BY_WORKER =
    "SELECT COALESCE(u.worker_id, '(unknown)') AS worker, COALESCE(SUM(u.requests_done), 0) AS requests, "
    MEASURES("u") ", COUNT(*) AS runs, COALESCE(SUM(u.overhead_seconds), 0.0) AS overhead_seconds, "
    "COALESCE(SUM(u.overhead_seconds * u.price_usd_per_hour / 3600.0), 0.0) AS overhead_usd, "
    WASTED("w", "u.cost_usd")
    " FROM runs u LEFT JOIN (SELECT run_id, SUM(wasted_seconds) AS wasted_seconds, SUM(wasted_usd) AS wasted_usd "
    "FROM requests WHERE run_id IS NOT NULL GROUP BY run_id) w ON w.run_id = u.id "
    "WHERE u.started_at >= ?1 AND u.started_at < ?2 GROUP BY 1 ORDER BY 1";

/* The same rows with the overhead spread (include_overhead; worker needs none). */
static const char *const SQL_BY_JOB_OH =
    OVERHEAD_CTE "SELECT j.id AS job_id, j.name AS name, j.model AS model, COUNT(r.seq) AS requests, "
    JOB_MEASURES_C("r", "r.cost_all") ", " WASTED("r", "r.cost_all") ", " OVERHEAD_COLS("r")
    " FROM jobs j LEFT JOIN rx r ON r.job_id = j.id WHERE j.created_at >= ?1 AND j.created_at < ?2 "
    "GROUP BY j.id ORDER BY j.seq";
static const char *const SQL_BY_DAY_OH =
    OVERHEAD_CTE "SELECT date(r.finished_at, 'unixepoch') AS day, COUNT(*) AS requests, "
    MEASURES_C("r", "r.cost_all") ", " WASTED("r", "r.cost_all") ", " OVERHEAD_COLS("r")
    " FROM rx r WHERE r.finished_at IS NOT NULL AND date(r.finished_at, 'unixepoch') >= date(?1, 'unixepoch') "
    "AND date(r.finished_at, 'unixepoch') <= date(?2 - 1, 'unixepoch') GROUP BY day ORDER BY day";
static const char *const SQL_BY_MODEL_OH =
    OVERHEAD_CTE "SELECT COALESCE(r.served_model, r.model, j.model, '(none)') AS model, "
    "COALESCE(r.model, j.model, '(none)') AS requested_model, COUNT(*) AS requests, "
    MEASURES_C("r", "r.cost_all") ", " WASTED("r", "r.cost_all") ", " OVERHEAD_COLS("r")
    " FROM rx r JOIN jobs j ON j.id = r.job_id WHERE r.finished_at IS NOT NULL AND r.finished_at >= ?1 "
    "AND r.finished_at < ?2 GROUP BY 1, 2 ORDER BY 1, 2";
/* By a job metadata value (?3 = the JSON path '$."KEY"'): requests finished in the period. */
#define META_VALUE "COALESCE(CAST(json_extract(CASE WHEN json_valid(j.metadata) THEN j.metadata END, ?3) AS TEXT), " \
    "'(none)') AS value"
static const char *const SQL_BY_META =
    "SELECT " META_VALUE ", COUNT(*) AS requests, " MEASURES("r") ", " WASTED("r", "r.cost_usd")
    " FROM requests r JOIN jobs j ON j.id = r.job_id WHERE r.finished_at IS NOT NULL AND r.finished_at >= ?1 "
    "AND r.finished_at < ?2 GROUP BY 1 ORDER BY 1";
static const char *const SQL_BY_META_OH =
    OVERHEAD_CTE "SELECT " META_VALUE ", COUNT(*) AS requests, "
    MEASURES_C("r", "r.cost_all") ", " WASTED("r", "r.cost_all") ", " OVERHEAD_COLS("r")
    " FROM rx r JOIN jobs j ON j.id = r.job_id WHERE r.finished_at IS NOT NULL AND r.finished_at >= ?1 "
    "AND r.finished_at < ?2 GROUP BY 1 ORDER BY 1";

/* Runs started since that stored no request: their overhead has nowhere to go. */
static const char *const SQL_UNATTRIBUTED =
    "SELECT COUNT(*), COALESCE(SUM(overhead_seconds), 0.0), "
    "COALESCE(SUM(overhead_seconds * price_usd_per_hour / 3600.0), 0.0) FROM runs "
    "WHERE started_at >= ?1 AND started_at < ?2 AND id NOT IN (SELECT run_id FROM requests WHERE run_id IS NOT NULL)";

static tm_cell real_cell(double d) { return (tm_cell){.type = TM_CELL_REAL, .d = d}; }

static tm_status append_unattributed(tm_queue *q, int64_t since, int64_t until, tm_table *t, tm_err *err)
{
    tm_table o;
    tm_status s = run_query3(q, SQL_UNATTRIBUTED, since, until, NULL, &o, err);
    if (s) return s;
    if (o.n_rows != 1 || o.n_cols != 3 || o.cells[0].type != TM_CELL_INT) {
        tm_table_free(&o);
        return tm_errf(err, TM_ERR_INTERNAL, "report: unexpected overhead query result");
    }
    if (o.cells[0].i == 0) { /* every run stored a request: all of it is spread */
        tm_table_free(&o);
        return TM_OK;
    }
    double oh_s = o.cells[1].d, oh_usd = o.cells[2].d;
    tm_table_free(&o);
    tm_cell *row;
    if ((s = tm_table_add_row(t, &row, err))) return s;
    for (int i = 0; i < t->n_cols && !s; i++) {
        const char *c = t->cols[i];
        if (i == 0) {
            row[i].type = TM_CELL_TEXT;
            if (!(row[i].s = strdup("(unattributed overhead)"))) s = tm_errf(err, TM_ERR_NOMEM, "out of memory");
        } else if (!strcmp(c, "requests") || strstr(c, "_tokens")) {
            row[i] = (tm_cell){.type = TM_CELL_INT, .i = 0};
        } else if (!strcmp(c, "gpu_seconds") || !strcmp(c, "wasted_gpu_seconds") || !strcmp(c, "wasted_usd")) {
            row[i] = real_cell(0.0);
        } else if (!strcmp(c, "cost_usd") || !strcmp(c, "overhead_usd")) {
            row[i] = real_cell(oh_usd);
        } else if (!strcmp(c, "overhead_seconds")) {
            row[i] = real_cell(oh_s);
        } else if ((!strcmp(c, "tokens_per_usd") || !strcmp(c, "wasted_share")) && oh_usd != 0.0) {
            row[i] = real_cell(0.0);
        } /* else NULL: name, model, kwh, $ per 1M tokens */
    }
    return s;
}

/* '$."KEY"' for json_extract; KEY: 1-64 bytes, no quote, backslash or control character. */
static tm_status meta_path(const char *key, char *out, size_t n, tm_err *err)
{
    size_t len = key ? strlen(key) : 0;
    if (len < 1 || len > 64) return tm_errf(err, TM_ERR_USAGE, "--by metadata.KEY: the key must be 1-64 bytes");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)key[i] < 0x20 || key[i] == '"' || key[i] == '\\' || key[i] == 0x7f)
            return tm_errf(err, TM_ERR_USAGE, "--by metadata.KEY: the key has a quote, backslash or control character");
    snprintf(out, n, "$.\"%s\"", key);
    return TM_OK;
}

tm_status tm_queue_cost_report_range(tm_queue *q, tm_queue_cost_by by, const tm_queue_cost_range *range,
                                     int include_overhead, tm_table *out, tm_err *err)
{
    int oh = include_overhead && by != TM_COST_BY_WORKER;
    const char *sql = by == TM_COST_BY_JOB ? (oh ? SQL_BY_JOB_OH : SQL_BY_JOB)
                    : by == TM_COST_BY_DAY ? (oh ? SQL_BY_DAY_OH : SQL_BY_DAY)
                    : by == TM_COST_BY_MODEL ? (oh ? SQL_BY_MODEL_OH : SQL_BY_MODEL)
                    : by == TM_COST_BY_WORKER ? SQL_BY_WORKER
                    : by == TM_COST_BY_METADATA ? (oh ? SQL_BY_META_OH : SQL_BY_META) : NULL;
    memset(out, 0, sizeof *out);
    if (!sql || !range) return tm_errf(err, TM_ERR_USAGE, "report: unknown grouping");
    char path[80] = "$";
    tm_status s = by == TM_COST_BY_METADATA ? meta_path(range->metadata_key, path, sizeof path, err) : TM_OK;
    if (s) return s;
    int64_t since = range->since < 0 ? 0 : range->since, until = range->until;
    s = run_query3(q, sql, since, until, path, out, err);
    if (!s && by == TM_COST_BY_METADATA && out->n_cols > 0) { /* the first column is named after the key */
        char *name = strdup(range->metadata_key);
        if (!name) s = tm_errf(err, TM_ERR_NOMEM, "out of memory");
        else { free(out->cols[0]); out->cols[0] = name; }
    }
    if (!s && oh) s = append_unattributed(q, since, until, out, err);
    if (s) tm_table_free(out);
    return s;
}

tm_status tm_queue_cost_report(tm_queue *q, tm_queue_cost_by by, int64_t since, int include_overhead,
                               tm_table *out, tm_err *err)
{
    tm_queue_cost_range r = {.since = since, .until = 0, .metadata_key = NULL};
    return tm_queue_cost_report_range(q, by, &r, include_overhead, out, err);
}

tm_status tm_queue_cost_prices_used(tm_queue *q, const tm_queue_cost_range *range, tm_table *out, tm_err *err)
{
    return run_query3(q,
                      "SELECT u.price_profile AS price_profile, u.price_usd_per_hour AS usd_per_gpu_hour, "
                      "u.price_usd_per_kwh AS usd_per_kwh, p.gpu AS gpu, COUNT(*) AS runs, "
                      "COALESCE(SUM(u.gpu_seconds), 0.0) AS gpu_seconds FROM runs u "
                      "LEFT JOIN prices p ON p.name = u.price_profile WHERE u.started_at >= ?1 AND u.started_at < ?2 "
                      "GROUP BY 1, 2, 3, 4 ORDER BY 6 DESC, 1",
                      range ? range->since : 0, range ? range->until : 0, NULL, out, err);
}

tm_status tm_queue_cost_view(tm_queue *q, const char *view, tm_table *out, tm_err *err)
{
    static const char *const views[][2] = {
        {"request_costs", "SELECT * FROM request_costs ORDER BY 1"},
        {"job_costs", "SELECT * FROM job_costs ORDER BY 1"},
        {"daily_costs", "SELECT * FROM daily_costs ORDER BY 1"},
        {"model_costs", "SELECT * FROM model_costs ORDER BY 1, 2"},
        {"worker_costs", "SELECT * FROM worker_costs ORDER BY 1"},
    };
    for (size_t i = 0; i < sizeof views / sizeof *views; i++)
        if (view && !strcmp(view, views[i][0])) return run_query(q, views[i][1], 0, out, err);
    return tm_errf(err, TM_ERR_USAGE, "no cost view \"%.80s\"", view ? view : "");
}
