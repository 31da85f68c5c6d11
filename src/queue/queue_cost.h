/* queue_cost.h — the cost section of the queue (same tm_queue handle as
 * queue.h): price profiles, a run's cost columns, and the cost report queries
 * (schemas/migrations/0003_cost_views.sql and 0005_cost_wasted.sql document
 * the views and their columns). Every statement is prepared with bound
 * parameters. Query results come back as a generic util/table.h table, which
 * cost/report.h renders without knowing the queue.
 */
#ifndef TM_QUEUE_COST_H
#define TM_QUEUE_COST_H

#include <stdint.h>
#include "queue/queue.h"
#include "util/status.h"
#include "util/table.h"

/* ---- price profiles (table prices) ---------------------------------------- */

typedef struct tm_queue_price {
    char name[64];
    double usd_per_gpu_hour;
    double usd_per_kwh;        /* < 0: NULL */
    char gpu[32];              /* "" : NULL */
    char profile[32];          /* 'on-demand' | 'spot' | 'reserved' | "" */
    char description[256];
    int64_t created_at;
} tm_queue_price;

/* Insert or replace by name (created_at = now). Name: 1-63 bytes of
 * [A-Za-z0-9._-]; prices finite and >= 0. */
tm_status tm_queue_price_set(tm_queue *q, const tm_queue_price *p, tm_err *err);
/* TM_ERR_NOTFOUND when no such profile. */
tm_status tm_queue_price_get(tm_queue *q, const char *name, tm_queue_price *out, tm_err *err);
/* All profiles by name. */
tm_status tm_queue_price_list(tm_queue *q, tm_status (*cb)(void *ctx, const tm_queue_price *p, tm_err *err),
                              void *ctx, tm_err *err);

/* ---- a run's cost (columns of runs; see 0003) ------------------------------ */

typedef struct tm_queue_run_cost {
    const char *model;          /* may be NULL */
    const char *price_profile;  /* prices.name, or NULL for a bare number */
    double usd_per_hour;        /* the price used */
    double usd_per_kwh;         /* < 0: NULL */
    double gpu_seconds;         /* whole run incl. overhead */
    double energy_joules;       /* < 0: NULL (not measured) */
    double cost_usd;            /* whole run incl. overhead */
    double overhead_seconds;    /* not attributed to requests */
} tm_queue_run_cost;

/* Set the cost columns of runs row run_id; TM_ERR_NOTFOUND if no such run. */
tm_status tm_queue_run_cost_set(tm_queue *q, const char *run_id, const tm_queue_run_cost *rc, tm_err *err);

/* ---- report queries --------------------------------------------------------- */

typedef enum tm_queue_cost_by {
    TM_COST_BY_JOB, TM_COST_BY_DAY, TM_COST_BY_MODEL, TM_COST_BY_WORKER,
    TM_COST_BY_METADATA     /* a value of the jobs' --metadata (range.metadata_key) */
} tm_queue_cost_by;

/* The period and, for TM_COST_BY_METADATA, the key. */
typedef struct tm_queue_cost_range {
    int64_t since;              /* unix seconds, inclusive; <= 0: from the beginning */
    int64_t until;              /* unix seconds, exclusive; <= 0: no end */
    const char *metadata_key;   /* 1-64 bytes, no '"', '\\' or control character */
} tm_queue_cost_range;

/* The cost view rows for `by`, restricted to since (unix seconds; 0 = all):
 * job: jobs created since (job_costs, submission order); day: days >= the
 * day of since (daily_costs); model: requests finished since; worker: runs
 * started since. With since 0 and include_overhead 0 the rows equal SELECT *
 * FROM the view (columns documented in schemas/queue.sql, 0003 and 0005).
 *
 * include_overhead spreads the runs' overhead (run time not attributed to
 * requests: model load, idle, checkpointing) over the rows. The rule:
 *   - a run's overhead is overhead_seconds, and overhead_seconds x
 *     price_usd_per_hour / 3600 dollars (the runs' overhead_usd in worker_costs);
 *   - it is split over the requests that run stored (requests.run_id), in
 *     proportion to their gpu_seconds (equally by request when those sum to 0);
 *     a resumed request's gpu_seconds include its earlier attempts;
 *   - job / day / model rows add up their requests' shares (by the request's
 *     job, UTC day of finished_at, model), whatever run or day the run began;
 *   - runs started since that stored no request keep one last row
 *     '(unattributed overhead)', present only when there is such a run: 0
 *     requests, tokens and GPU-seconds, cost_usd = overhead_usd, the other
 *     columns as the view computes them for that (NULL kwh and $/1M tokens,
 *     tokens_per_usd and wasted_share 0 when the cost is > 0, else NULL);
 *   - two columns are appended, overhead_seconds and overhead_usd, and
 *     cost_usd, usd_per_1m_input/output/total, tokens_per_usd and wasted_share
 *     include overhead_usd; gpu_seconds and kwh stay the requests' own.
 * So with since 0, the overhead_seconds / overhead_usd columns sum to the
 * runs' total overhead (to rounding). By worker the rows are whole-run totals
 * that already include overhead (the view's overhead_seconds / overhead_usd
 * columns show it): include_overhead changes nothing there. */
tm_status tm_queue_cost_report(tm_queue *q, tm_queue_cost_by by, int64_t since, int include_overhead,
                               tm_table *out, tm_err *err);

/* The same with an end (exclusive; same column per `by` as since: job
 * created, request finished, run started; day: days up to the one holding
 * until - 1 s) and the metadata grouping: TM_COST_BY_METADATA groups the
 * requests finished in the period by the value of their job's metadata key
 * (text; '(none)' when the job has no such key), columns as model_costs with
 * the first one named after the key. A bad key is TM_ERR_USAGE. */
tm_status tm_queue_cost_report_range(tm_queue *q, tm_queue_cost_by by, const tm_queue_cost_range *range,
                                     int include_overhead, tm_table *out, tm_err *err);

/* The prices of the runs started in the period: columns price_profile (NULL:
 * a bare --price number), usd_per_gpu_hour, usd_per_kwh, gpu (the profile's
 * GPU kind, NULL when unknown), runs, gpu_seconds; most GPU-seconds first. */
tm_status tm_queue_cost_prices_used(tm_queue *q, const tm_queue_cost_range *range, tm_table *out, tm_err *err);

/* SELECT * FROM one of the cost views (request_costs, job_costs, daily_costs,
 * model_costs, worker_costs); any other name is TM_ERR_USAGE. */
tm_status tm_queue_cost_view(tm_queue *q, const char *view, tm_table *out, tm_err *err);

#endif
