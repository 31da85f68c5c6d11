/* test_cost_report.c — the cost views and `report` queries: documented
 * columns on an empty DB (NULL-safe), golden CSV on a DB generated
 * deterministically through the queue API (fixed clock, fixed worker ids,
 * job ids replaced by names; four runs on four price profiles, one request
 * preempted and resumed on another node, one run that completed nothing),
 * the wasted share of a request charged for two attempts, the overhead
 * spread of --include-overhead (hand-checked shares that sum to the runs'
 * overhead), --since filtering, report == view for since 0, and the HTML page
 * (one <svg per chart, no scripts; screenshot with headless chromium when
 * present, else that part is skipped with a message).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cost/meter.h"
#include "cost/report.h"
#include "cli/job_view.h"
#include "queue/queue.h"
#include "queue/queue_cost.h"

#define D1 1795046400.0 /* 2026-11-19 00:00:00 UTC */

typedef struct fx {
    char dir[64], path[128];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tm_cost_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/q.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char p[200];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/report.html", f->dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/report.png", f->dir);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

static const char *MEASURE_COLS[] = {"requests", "prompt_tokens", "completion_tokens", "total_tokens",
                                     "gpu_seconds", "kwh", "cost_usd", "usd_per_1m_input",
                                     "usd_per_1m_output", "usd_per_1m_total", "tokens_per_usd"};
/* appended by 0005, in this order, after every older column */
static const char *WASTE_COLS[] = {"wasted_gpu_seconds", "wasted_usd", "wasted_share"};
static const char *REQUEST_COLS[] = {"request_id", "job_id", "custom_id", "prompt_tokens", "completion_tokens",
                                     "cached_tokens", "gpu_seconds", "energy_joules", "cost_usd",
                                     "wasted_seconds", "wasted_usd", "run_id",
                                     /* 0008: the model that ran it, the model it asked for */
                                     "served_model", "requested_model"};

static const tm_cell *cell_at(const tm_table *t, int row, const char *col)
{
    int c = tm_table_col(t, col);
    assert_true(c >= 0);
    const tm_cell *x = tm_table_cell(t, row, c);
    assert_non_null(x);
    return x;
}

static double real_at(const tm_table *t, int row, const char *col)
{
    const tm_cell *x = cell_at(t, row, col);
    if (x->type == TM_CELL_INT) return (double)x->i;
    assert_int_equal(x->type, TM_CELL_REAL);
    return x->d;
}

static int row_of(const tm_table *t, const char *key)
{
    for (int r = 0; r < t->n_rows; r++) {
        const tm_cell *c = tm_table_cell(t, r, 0);
        if (c->type == TM_CELL_TEXT && !strcmp(c->s, key)) return r;
    }
    fail_msg("no row \"%s\"", key);
    return -1;
}

#define assert_near(a, b) assert_true(fabs((double)(a) - (double)(b)) < 1e-12)

static void render_csv(const tm_table *t, tm_buf *b)
{
    tm_err err = {{0}};
    tm_cost_report_in in = {.main = t, .generated_at = 1795046400};
    tm_buf_clear(b);
    assert_int_equal(tm_cost_report_render(&in, TM_COST_FMT_CSV, b, &err), TM_OK);
}

static void test_empty_db(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    tm_queue *qc;
    assert_int_equal(tm_queue_open(f->path, &qc, &err), TM_OK);
    const char *views[] = {"job_costs", "daily_costs", "model_costs", "worker_costs"};
    const char *keys[] = {"job_id", "day", "model", "worker"};
    const int n_cols[] = {18, 15, 16, 18}; /* model_costs: + requested_model (0008) */
    tm_table t;
    for (int v = 0; v < 4; v++) {
        assert_int_equal(tm_queue_cost_view(qc, views[v], &t, &err), TM_OK);
        assert_int_equal(t.n_rows, 0);
        assert_int_equal(t.n_cols, n_cols[v]);
        assert_int_equal(tm_table_col(&t, keys[v]), 0);
        for (size_t c = 0; c < sizeof MEASURE_COLS / sizeof *MEASURE_COLS; c++)
            assert_true(tm_table_col(&t, MEASURE_COLS[c]) > 0);
        for (int c = 0; c < 3; c++) assert_int_equal(tm_table_col(&t, WASTE_COLS[c]), t.n_cols - 3 + c);
        tm_table_free(&t);
        /* with the overhead spread: same columns + overhead_seconds, overhead_usd
         * (worker: unchanged); no run, so no '(unattributed overhead)' row */
        assert_int_equal(tm_queue_cost_report(qc, (tm_queue_cost_by)v, 0, 1, &t, &err), TM_OK);
        assert_int_equal(t.n_rows, 0);
        assert_int_equal(t.n_cols, n_cols[v] + (v == TM_COST_BY_WORKER ? 0 : 2));
        assert_true(tm_table_col(&t, "overhead_usd") > 0);
        tm_table_free(&t);
    }
    assert_int_equal(tm_queue_cost_view(qc, "request_costs", &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 0);
    assert_int_equal(t.n_cols, (int)(sizeof REQUEST_COLS / sizeof *REQUEST_COLS));
    for (int c = 0; c < t.n_cols; c++) assert_string_equal(t.cols[c], REQUEST_COLS[c]);
    tm_table_free(&t);
    assert_int_equal(tm_queue_cost_view(qc, "jobs; DROP TABLE jobs", &t, &err), TM_ERR_USAGE);
    /* the example price profiles come with the migration */
    tm_queue_price p;
    assert_int_equal(tm_queue_price_get(qc, "h100-ondemand", &p, &err), TM_OK);
    assert_true(p.usd_per_gpu_hour == 3.0 && p.usd_per_kwh < 0);
    assert_string_equal(p.gpu, "H100");
    assert_int_equal(tm_queue_price_get(qc, "nope", &p, &err), TM_ERR_NOTFOUND);
    tm_queue_price q = {.usd_per_gpu_hour = 2.1, .usd_per_kwh = 0.15};
    snprintf(q.name, sizeof q.name, "h200-spot");
    snprintf(q.profile, sizeof q.profile, "spot");
    assert_int_equal(tm_queue_price_set(qc, &q, &err), TM_OK);
    assert_int_equal(tm_queue_price_get(qc, "h200-spot", &p, &err), TM_OK);
    assert_true(p.usd_per_gpu_hour == 2.1 && p.usd_per_kwh == 0.15);
    assert_string_equal(p.profile, "spot");
    assert_string_equal(p.gpu, "");
    snprintf(q.name, sizeof q.name, "bad name'");
    assert_int_equal(tm_queue_price_set(qc, &q, &err), TM_ERR_USAGE);
    tm_queue_run_cost rc = {.usd_per_hour = 1};
    assert_int_equal(tm_queue_run_cost_set(qc, "run_nope", &rc, &err), TM_ERR_NOTFOUND);
    tm_queue_close(qc);
    tm_queue_close(NULL);
}

/* ---- generated DB ---------------------------------------------------------- */

static double clk(void *ctx) { return *(double *)ctx; }

static void submit(tm_queue *q, const char *name, const char *model, int n, const char *model1, char id[TM_QUEUE_ID_MAX])
{
    tm_err err = {{0}};
    /* team metadata for --by metadata.team: alpha and beta "search", gamma "ads", delta none */
    const char *meta = !strcmp(name, "gamma") ? "{\"team\":\"ads\"}"
                     : !strcmp(name, "delta") ? NULL : "{\"team\":\"search\",\"n\":7}";
    tm_queue_job_opts o = {.name = name, .model = model, .completion_window = 7 * 86400, .metadata_json = meta};
    assert_int_equal(tm_queue_submit_begin(q, &o, id, &err), TM_OK);
    for (int i = 0; i < n; i++) {
        char cid[16];
        snprintf(cid, sizeof cid, "r%d", i);
        tm_queue_new_request r = {.custom_id = cid, .source = "a.jsonl", .line = i + 1, .url = "/v1/chat/completions",
                                  .model = i == 0 ? model1 : NULL, .body_json = "{\"messages\":[]}", .max_tokens = 16,
                                  .n = 1};
        assert_int_equal(tm_queue_submit_add(q, &r, &err), TM_OK);
    }
    assert_int_equal(tm_queue_submit_commit(q, &err), TM_OK);
}

/* Claim max requests and complete each: request k of this batch (1-based, kk =
 * k + base) has prompt 1000*kk, completion 200*kk, work attributed by a meter
 * (one step of 0.5*kk s each at usd_h), energy 3600*kk J when energy, stored by
 * run_id with no waste. release_last: the last one claimed is given back
 * unfinished instead (a preemption) and its id copied to released. */
static void work(tm_queue *q, const char *owner, const char *run_id, int max, int base, double usd_h, int energy,
                 int release_last, char released[TM_QUEUE_ID_MAX], tm_queue_run_stats *st)
{
    tm_err err = {{0}};
    tm_queue_claimed c[16];
    int n = 0;
    for (int tries = 0; n < max && tries < 4; tries++) { /* a claim may stop at a job boundary */
        int got = 0;
        assert_int_equal(tm_queue_claim(q, owner, max - n, 600, c + n, &got, &err), TM_OK);
        n += got;
    }
    assert_int_equal(n, max);
    tm_cost_price price = {.usd_per_gpu_hour = usd_h, .usd_per_kwh = -1};
    tm_cost_meter *m;
    assert_int_equal(tm_cost_meter_create(&price, "/nonexistent/libnvidia-ml.so.1", &m, &err), TM_OK);
    for (int k = 0; k < n; k++) {
        if (release_last && k == n - 1) {
            int rel = 0;
            memcpy(released, c[k].request_id, TM_QUEUE_ID_MAX);
            assert_int_equal(tm_queue_release(q, owner, c[k].request_id, &rel, &err), TM_OK);
            assert_int_equal(rel, 1);
            tm_queue_claimed_clear(&c[k]);
            continue;
        }
        int kk = k + 1 + base;
        tm_cost_work w = {1000 * kk, 0, 1000 * kk};
        double sec, usd;
        assert_int_equal(tm_cost_meter_step(m, &w, 1, 0.5 * kk, &sec, NULL, &usd), TM_OK);
        tm_queue_usage u = {.prompt_tokens = 1000 * kk, .completion_tokens = 200 * kk, .gpu_seconds = sec,
                            .energy_joules = energy ? 3600.0 * kk : -1, .cost_usd = usd, .wasted_seconds = 0,
                            .wasted_usd = 0, .run_id = run_id};
        assert_int_equal(tm_queue_complete(q, owner, c[k].request_id, "{}", 2, &u, &err), TM_OK);
        st->requests_done++;
        st->prompt_tokens += 1000 * kk;
        st->completion_tokens += 200 * kk;
        tm_queue_claimed_clear(&c[k]);
    }
    tm_cost_meter_destroy(m);
}

/* The generated DB (D1 = 2026-11-19):
 *   day 1: jobs alpha (3 requests, llama3-8b) and beta (2, qwen2.5-7b).
 *     run 1, nodeA, h100-ondemand $3.00/h: alpha r0..r2, steps 0.5+1+1.5 s;
 *       overhead 60 s ($0.05).
 *   day 2: jobs gamma (2, llama3-8b; r0 asks for deepseek-7b), delta (1, never run).
 *     run 2, nodeB, h200-spot $2.10/h, energy measured: beta r0, r1 and gamma
 *       r0 (2, 2.5, 3 s); gamma r1 ran 2 s and was preempted (released);
 *       overhead 30 s ($0.0175).
 *     run 3, nodeC, h100-premium $4.00/h: gamma r1 resumed, 3.5 s of which
 *       1 s recomputed what run 2 had done: charged for both attempts,
 *       5.5 s and $(2*2.1 + 3.5*4)/3600 = $18.2/3600, wasted 1 s, $4/3600;
 *       overhead 20 s ($80/3600).
 *     run 4, nodeA, a100-ondemand $2.50/h: loaded the model and stopped
 *       without completing anything: overhead 12 s ($30/3600), unattributed.
 * runs[] receives the four run ids, gamma_r1 the preempted request's id. */
static void build_db(const char *path, char ids[4][TM_QUEUE_ID_MAX], char runs[4][TM_QUEUE_ID_MAX],
                     char gamma_r1[TM_QUEUE_ID_MAX])
{
    tm_err err = {{0}};
    tm_queue *q;
    double now = D1 + 3600;
    assert_int_equal(tm_queue_open(path, &q, &err), TM_OK);
    tm_queue_set_clock(q, clk, &now);
    submit(q, "alpha", "llama3-8b", 3, NULL, ids[0]);
    submit(q, "beta", "qwen2.5-7b", 2, NULL, ids[1]);
    now = D1 + 7200;
    const char *w1 = "nodeA:101:aaaa", *w2 = "nodeB:202:bbbb", *w3 = "nodeC:303:cccc";
    assert_int_equal(tm_queue_worker_start(q, w1, "cuda", 60, 0, NULL, runs[0], &err), TM_OK);
    tm_queue_run_stats s1 = {0}, s2 = {0}, s3 = {0}, s4 = {0};
    work(q, w1, runs[0], 3, 0, 3.0, 0, 0, NULL, &s1); /* alpha on h100-ondemand */
    now = D1 + 7200 + 60;
    assert_int_equal(tm_queue_worker_stop(q, w1, runs[0], &s1, 0, &err), TM_OK);

    now = D1 + 86400 + 3600;
    submit(q, "gamma", "llama3-8b", 2, "deepseek-7b", ids[2]);
    submit(q, "delta", NULL, 1, NULL, ids[3]); /* never run */
    now = D1 + 86400 + 7200;
    assert_int_equal(tm_queue_worker_start(q, w2, "cuda", 60, 0, NULL, runs[1], &err), TM_OK);
    /* beta + gamma on h200-spot, energy measured; gamma r1 preempted */
    work(q, w2, runs[1], 4, 3, 2.1, 1, 1, gamma_r1, &s2);
    now = D1 + 86400 + 7200 + 120;
    assert_int_equal(tm_queue_worker_stop(q, w2, runs[1], &s2, 0, &err), TM_OK);

    now = D1 + 86400 + 10800;
    assert_int_equal(tm_queue_worker_start(q, w3, "cuda", 60, 0, NULL, runs[2], &err), TM_OK);
    tm_queue_claimed c;
    int got = 0;
    assert_int_equal(tm_queue_claim(q, w3, 1, 600, &c, &got, &err), TM_OK);
    assert_int_equal(got, 1);
    assert_string_equal(c.request_id, gamma_r1);
    tm_queue_usage u = {.prompt_tokens = 7000, .completion_tokens = 1400, .gpu_seconds = 2.0 + 3.5,
                        .energy_joules = -1, .cost_usd = (2.0 * 2.1 + 3.5 * 4.0) / 3600, .wasted_seconds = 1.0,
                        .wasted_usd = 4.0 / 3600, .run_id = runs[2]};
    assert_int_equal(tm_queue_complete(q, w3, c.request_id, "{}", 2, &u, &err), TM_OK);
    tm_queue_claimed_clear(&c);
    s3.requests_done = 1;
    s3.prompt_tokens = 7000;
    s3.completion_tokens = 1400;
    now = D1 + 86400 + 10800 + 40;
    assert_int_equal(tm_queue_worker_stop(q, w3, runs[2], &s3, 0, &err), TM_OK);

    now = D1 + 86400 + 14400;
    assert_int_equal(tm_queue_worker_start(q, w1, "cuda", 60, 0, NULL, runs[3], &err), TM_OK);
    now = D1 + 86400 + 14400 + 12;
    assert_int_equal(tm_queue_worker_stop(q, w1, runs[3], &s4, 0, &err), TM_OK);
    tm_queue_close(q);

    tm_queue *qc;
    assert_int_equal(tm_queue_open_existing(path, &qc, &err), TM_OK);
    /* whole runs: steps + overhead */
    tm_queue_run_cost r[4] = {
        {"llama3-8b", "h100-ondemand", 3.0, -1, 63.0, -1, 63.0 * 3.0 / 3600, 60.0},
        {"qwen2.5-7b", "h200-spot", 2.1, -1, 39.5, 60000.0, 39.5 * 2.1 / 3600, 30.0},
        {"llama3-8b", "h100-premium", 4.0, -1, 23.5, -1, 23.5 * 4.0 / 3600, 20.0},
        {"llama3-8b", "a100-ondemand", 2.5, -1, 12.0, -1, 12.0 * 2.5 / 3600, 12.0},
    };
    for (int i = 0; i < 4; i++) assert_int_equal(tm_queue_run_cost_set(qc, runs[i], &r[i], &err), TM_OK);
    tm_queue_close(qc);
}

/* Replace the random job ids by JOB_<name>. */
static void scrub(tm_buf *b, char ids[4][TM_QUEUE_ID_MAX])
{
    const char *names[] = {"JOB_alpha", "JOB_beta", "JOB_gamma", "JOB_delta"};
    for (int i = 0; i < 4; i++) {
        char *p;
        size_t l = strlen(ids[i]);
        while ((p = strstr(b->data, ids[i]))) {
            size_t nl = strlen(names[i]);
            assert_true(nl <= l);
            memcpy(p, names[i], nl);
            memmove(p + nl, p + l, strlen(p + l) + 1);
            b->len -= l - nl;
        }
    }
}

static const char GOLDEN_JOB[] =
#include "test_cost_report_golden_job.inc"
    ;
static const char GOLDEN_DAY[] =
#include "test_cost_report_golden_day.inc"
    ;
static const char GOLDEN_MODEL[] =
#include "test_cost_report_golden_model.inc"
    ;
static const char GOLDEN_WORKER[] =
#include "test_cost_report_golden_worker.inc"
    ;
static const char GOLDEN_JOB_OVERHEAD[] =
#include "test_cost_report_golden_job_overhead.inc"
    ;

static void test_generated_db(void **state)
{
    fx *f = *state;
    char ids[4][TM_QUEUE_ID_MAX], runs[4][TM_QUEUE_ID_MAX], gamma_r1[TM_QUEUE_ID_MAX];
    build_db(f->path, ids, runs, gamma_r1);
    tm_err err = {{0}};
    tm_queue *qc;
    assert_int_equal(tm_queue_open_existing(f->path, &qc, &err), TM_OK);
    tm_buf b, v;
    tm_buf_init(&b);
    tm_buf_init(&v);
    const char *golden[] = {GOLDEN_JOB, GOLDEN_DAY, GOLDEN_MODEL, GOLDEN_WORKER};
    const char *views[] = {"job_costs", "daily_costs", "model_costs", "worker_costs"};
    for (int by = 0; by < 4; by++) {
        tm_table t;
        assert_int_equal(tm_queue_cost_report(qc, (tm_queue_cost_by)by, 0, 0, &t, &err), TM_OK);
        render_csv(&t, &b);
        scrub(&b, ids);
        if (getenv("TM_COST_PRINT_GOLDEN")) printf("---- %s\n%s", views[by], b.data);
        else assert_string_equal(b.data, golden[by]);
        tm_table_free(&t);
        if (by != TM_COST_BY_JOB) { /* report with since 0 == the view */
            assert_int_equal(tm_queue_cost_view(qc, views[by], &t, &err), TM_OK);
            render_csv(&t, &v);
            scrub(&v, ids);
            assert_string_equal(v.data, b.data);
            tm_table_free(&t);
        }
    }
    { /* the spread, as a golden too */
        tm_table t;
        assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_JOB, 0, 1, &t, &err), TM_OK);
        render_csv(&t, &b);
        scrub(&b, ids);
        if (getenv("TM_COST_PRINT_GOLDEN")) printf("---- job_costs --include-overhead\n%s", b.data);
        else assert_string_equal(b.data, GOLDEN_JOB_OVERHEAD);
        tm_table_free(&t);
    }
    /* --since the second day */
    tm_table t;
    int64_t since = (int64_t)D1 + 86400;
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_JOB, since, 0, &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 2);
    assert_string_equal(tm_table_cell(&t, 0, 0)->s, ids[2]);
    tm_table_free(&t);
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_DAY, since, 1, &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 2);
    assert_string_equal(tm_table_cell(&t, 0, 0)->s, "2026-11-20");
    assert_near(real_at(&t, 0, "overhead_seconds"), 30.0 + 20.0); /* runs 2 and 3 */
    assert_string_equal(tm_table_cell(&t, 1, 0)->s, "(unattributed overhead)");
    assert_near(real_at(&t, 1, "overhead_seconds"), 12.0); /* run 4 */
    tm_table_free(&t);
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_WORKER, since, 0, &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 3); /* runs 2, 3, 4 */
    assert_string_equal(tm_table_cell(&t, 0, 0)->s, "nodeA:101:aaaa");
    assert_int_equal(cell_at(&t, 0, "runs")->i, 1);
    tm_table_free(&t);
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_MODEL, since, 0, &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 3); /* deepseek-7b, llama3-8b (gamma r1), qwen2.5-7b */
    tm_table_free(&t);

    /* HTML by model: headline, cost and tokens/$ bars, table with totals,
     * what-if; self-contained; text escaped */
    tm_table main_t;
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_MODEL, 0, 1, &main_t, &err), TM_OK);
    const char *profiles[] = {"h100 <ondemand> & co"};
    tm_cost_whatif wi[1] = {{"spot", 2.0, -1}};
    tm_cost_report_in in = {.by = TM_COST_GROUP_MODEL, .note = "incl. <overhead>", .main = &main_t,
                            .price_profiles = profiles, .n_price_profiles = 1, .generated_at = 1795046400,
                            .overhead_included = 1, .whatif = wi, .n_whatif = 1};
    tm_buf_clear(&b);
    assert_int_equal(tm_cost_report_render(&in, TM_COST_FMT_HTML, &b, &err), TM_OK);
    int svgs = 0;
    for (const char *p = b.data; (p = strstr(p, "<svg")); p++) svgs++;
    assert_int_equal(svgs, 3); /* cost, tokens/$, what-if */
    assert_non_null(strstr(b.data, "h100 &lt;ondemand&gt; &amp; co"));
    assert_non_null(strstr(b.data, "incl. &lt;overhead&gt;"));
    assert_null(strstr(b.data, "<script"));
    assert_null(strstr(b.data, " href"));
    assert_null(strstr(b.data, " src="));
    assert_non_null(strstr(b.data, "Total spend"));
    assert_non_null(strstr(b.data, "<tfoot>"));
    assert_non_null(strstr(b.data, "(total)"));
    assert_non_null(strstr(b.data, "@media print"));
    assert_non_null(strstr(b.data, "llama3-8b"));
    assert_non_null(strstr(b.data, "(unattributed overhead)"));
    assert_non_null(strstr(b.data, "</html>"));
    { /* every bar's value is in the table: same row, column and digits */
        int bars = 0;
        for (const char *p = b.data; (p = strstr(p, "<rect x=")); p++) {
            const char *dr = strstr(p, "data-row=\""), *end = strchr(p, '>');
            if (!dr || dr > end) continue;
            int row;
            char col[40], val[40], want[200];
            assert_int_equal(sscanf(dr, "data-row=\"%d\" data-col=\"%39[^\"]\" data-value=\"%39[^\"]\"", &row, col, val), 3);
            if (strstr(p, "data-table") && strstr(p, "data-table") < end) continue;
            const char *fig = p;
            while (fig > b.data && strncmp(fig, "data-table=\"", 12)) fig--;
            if (!strncmp(fig, "data-table=\"whatif", 18)) continue; /* checked by report_render.sh */
            snprintf(want, sizeof want, "<tr data-row=\"%d\">", row);
            const char *tr = strstr(b.data, want);
            assert_non_null(tr);
            snprintf(want, sizeof want, "data-col=\"%s\" data-value=\"%s\"", col, val);
            const char *td = strstr(tr, want), *tr_end = strstr(tr, "</tr>");
            assert_true(td && td < tr_end);
            bars++;
        }
        assert_int_equal(bars, 2 * main_t.n_rows);
    }
    char html[200], png[200], cmd[700];
    snprintf(html, sizeof html, "%s/report.html", f->dir);
    FILE *hf = fopen(html, "wb");
    assert_non_null(hf);
    assert_int_equal(fwrite(b.data, 1, b.len, hf), b.len);
    fclose(hf);
    const char *keep = getenv("TM_COST_KEEP_HTML");
    if (keep) {
        FILE *kf = fopen(keep, "wb");
        if (kf) { fwrite(b.data, 1, b.len, kf); fclose(kf); }
    }
    snprintf(png, sizeof png, "%s/report.png", f->dir);
    if (system("command -v chromium >/dev/null 2>&1") != 0) {
        print_message("chromium not installed: HTML render check skipped (structure checked above)\n");
    } else {
        snprintf(cmd, sizeof cmd, "timeout 120 chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage "
                                  "--window-size=900,1400 "
                                  "--screenshot=%s file://%s >/dev/null 2>&1", png, html);
        assert_int_equal(system(cmd), 0);
        struct stat sb;
        assert_int_equal(stat(png, &sb), 0);
        assert_true(sb.st_size > 5000); /* a rendered page, not an empty image */
    }
    tm_table_free(&main_t);
    for (int fmt = TM_COST_FMT_TABLE; fmt <= TM_COST_FMT_JSON; fmt++) { /* the other formats render */
        tm_cost_report_in in2 = {.main = &t, .note = "NOTE", .wide = 1};
        assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_JOB, 0, 1, &t, &err), TM_OK);
        tm_buf_clear(&b);
        assert_int_equal(tm_cost_report_render(&in2, (tm_cost_format)fmt, &b, &err), TM_OK);
        assert_non_null(strstr(b.data, "alpha"));
        assert_non_null(strstr(b.data, "(unattributed overhead)"));
        assert_non_null(strstr(b.data, "wasted_share"));
        assert_non_null(strstr(b.data, "overhead_usd"));
        /* the note is for people: csv and json stay machine-readable */
        assert_int_equal(strstr(b.data, "\nNOTE\n") != NULL, fmt == TM_COST_FMT_TABLE);
        assert_null(fmt == TM_COST_FMT_TABLE ? NULL : strstr(b.data, "NOTE"));
        tm_table_free(&t);
    }
    tm_buf_free(&b);
    tm_buf_free(&v);
    tm_queue_close(qc);
}

/* A request charged for two attempts: both are in its cost, and the recompute
 * shows as the wasted share of its job, day, model and the worker that resumed it. */
static void test_wasted_share(void **state)
{
    fx *f = *state;
    char ids[4][TM_QUEUE_ID_MAX], runs[4][TM_QUEUE_ID_MAX], gamma_r1[TM_QUEUE_ID_MAX];
    build_db(f->path, ids, runs, gamma_r1);
    tm_err err = {{0}};
    tm_queue *qc;
    assert_int_equal(tm_queue_open_existing(f->path, &qc, &err), TM_OK);
    tm_table t;
    assert_int_equal(tm_queue_cost_view(qc, "request_costs", &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 8);
    int seen = 0;
    for (int r = 0; r < t.n_rows; r++) {
        const char *id = cell_at(&t, r, "request_id")->s;
        const tm_cell *run = cell_at(&t, r, "run_id");
        if (!strcmp(cell_at(&t, r, "job_id")->s, ids[3])) { /* delta: never run, nothing recorded */
            assert_int_equal(cell_at(&t, r, "cost_usd")->type, TM_CELL_NULL);
            assert_int_equal(cell_at(&t, r, "wasted_usd")->type, TM_CELL_NULL);
            assert_int_equal(run->type, TM_CELL_NULL);
        } else if (!strcmp(id, gamma_r1)) { /* 2 s at $2.10/h on run 2 + 3.5 s at $4/h on run 3 */
            seen = 1;
            assert_near(real_at(&t, r, "gpu_seconds"), 5.5);
            assert_near(real_at(&t, r, "cost_usd"), 18.2 / 3600);
            assert_near(real_at(&t, r, "wasted_seconds"), 1.0);
            assert_near(real_at(&t, r, "wasted_usd"), 4.0 / 3600);
            assert_string_equal(run->s, runs[2]);
        } else {
            assert_near(real_at(&t, r, "wasted_usd"), 0.0);
            assert_int_equal(run->type, TM_CELL_TEXT);
        }
    }
    assert_true(seen);
    tm_table_free(&t);

    /* job_costs: gamma = r0 (3 s at $2.10/h) + r1; wasted 1 s, $4/3600 of $24.5/3600 */
    assert_int_equal(tm_queue_cost_view(qc, "job_costs", &t, &err), TM_OK);
    int g = row_of(&t, ids[2]);
    assert_near(real_at(&t, g, "gpu_seconds"), 8.5);
    assert_near(real_at(&t, g, "cost_usd"), 24.5 / 3600);
    assert_near(real_at(&t, g, "wasted_gpu_seconds"), 1.0);
    assert_near(real_at(&t, g, "wasted_usd"), 4.0 / 3600);
    assert_near(real_at(&t, g, "wasted_share"), 4.0 / 24.5);
    assert_near(real_at(&t, row_of(&t, ids[0]), "wasted_share"), 0.0);  /* alpha: cost, no waste */
    assert_int_equal(cell_at(&t, row_of(&t, ids[3]), "wasted_share")->type, TM_CELL_NULL); /* delta: no cost */
    assert_near(real_at(&t, row_of(&t, ids[3]), "wasted_usd"), 0.0);
    tm_table_free(&t);

    /* model: gamma r1 is a llama3-8b request (its job's model), with alpha's three */
    assert_int_equal(tm_queue_cost_view(qc, "model_costs", &t, &err), TM_OK);
    int m = row_of(&t, "llama3-8b");
    assert_near(real_at(&t, m, "wasted_share"), (4.0 / 3600) / real_at(&t, m, "cost_usd"));
    assert_near(real_at(&t, m, "cost_usd"), (0.5 * 3 + 1 * 3 + 1.5 * 3 + 18.2) / 3600);
    tm_table_free(&t);
    assert_int_equal(tm_queue_cost_view(qc, "daily_costs", &t, &err), TM_OK);
    assert_near(real_at(&t, row_of(&t, "2026-11-20"), "wasted_usd"), 4.0 / 3600);
    assert_near(real_at(&t, row_of(&t, "2026-11-19"), "wasted_share"), 0.0);
    tm_table_free(&t);

    /* worker: the run that resumed it (requests.run_id) carries the waste, as a
     * share of its whole-run cost (23.5 s at $4/h) */
    assert_int_equal(tm_queue_cost_view(qc, "worker_costs", &t, &err), TM_OK);
    int w = row_of(&t, "nodeC:303:cccc");
    assert_near(real_at(&t, w, "wasted_gpu_seconds"), 1.0);
    assert_near(real_at(&t, w, "wasted_share"), 4.0 / 94.0);
    assert_near(real_at(&t, row_of(&t, "nodeB:202:bbbb"), "wasted_usd"), 0.0);
    assert_int_equal(cell_at(&t, row_of(&t, "nodeA:101:aaaa"), "runs")->i, 2);
    tm_table_free(&t);
    tm_queue_close(qc);

    /* cost.json of an export bundle carries the same numbers */
    tm_queue *q;
    assert_int_equal(tm_queue_open_existing(f->path, &q, &err), TM_OK);
    tm_queue_job j;
    assert_int_equal(tm_queue_job_get(q, ids[2], &j, &err), TM_OK);
    json_t *cj = tm_cli_cost_json(&j);
    assert_non_null(cj);
    assert_near(json_real_value(json_object_get(cj, "cost_usd")), 24.5 / 3600);
    assert_near(json_real_value(json_object_get(cj, "wasted_gpu_seconds")), 1.0);
    assert_near(json_real_value(json_object_get(cj, "wasted_usd")), 4.0 / 3600);
    assert_near(json_real_value(json_object_get(cj, "wasted_share")), 4.0 / 24.5);
    json_decref(cj);
    tm_queue_job_clear(&j);
    assert_int_equal(tm_queue_job_get(q, ids[3], &j, &err), TM_OK); /* delta: nothing recorded */
    cj = tm_cli_cost_json(&j);
    assert_true(json_is_null(json_object_get(cj, "wasted_share")) && json_is_null(json_object_get(cj, "wasted_usd")));
    assert_near(json_real_value(json_object_get(cj, "wasted_gpu_seconds")), 0.0);
    json_decref(cj);
    tm_queue_job_clear(&j);
    tm_queue_close(q);
}

/* Sum of a column over a table's rows. */
static double col_sum(const tm_table *t, const char *col)
{
    double s = 0;
    for (int r = 0; r < t->n_rows; r++) s += real_at(t, r, col);
    return s;
}

/* --include-overhead: each run's overhead goes to the jobs (days, models)
 * whose requests it completed, by their GPU-seconds in it; the shares sum to
 * the runs' overhead; cost and ratios include it. */
static void test_overhead_spread(void **state)
{
    fx *f = *state;
    char ids[4][TM_QUEUE_ID_MAX], runs[4][TM_QUEUE_ID_MAX], gamma_r1[TM_QUEUE_ID_MAX];
    build_db(f->path, ids, runs, gamma_r1);
    tm_err err = {{0}};
    tm_queue *qc;
    assert_int_equal(tm_queue_open_existing(f->path, &qc, &err), TM_OK);
    /* the runs' overhead: 60 + 30 + 20 + 12 s; $(60*3 + 30*2.1 + 20*4 + 12*2.5)/3600 */
    const double total_s = 122.0, total_usd = 353.0 / 3600;
    tm_table w;
    assert_int_equal(tm_queue_cost_view(qc, "worker_costs", &w, &err), TM_OK);
    assert_near(col_sum(&w, "overhead_seconds"), total_s);
    assert_near(col_sum(&w, "overhead_usd"), total_usd);
    tm_table_free(&w);

    /* by job, hand-checked: run 1 -> alpha; run 2 (2 + 2.5 s beta, 3 s gamma)
     * -> beta 0.6, gamma 0.4; run 3 -> gamma; run 4 -> unattributed */
    tm_table t, base;
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_JOB, 0, 1, &t, &err), TM_OK);
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_JOB, 0, 0, &base, &err), TM_OK);
    assert_int_equal(t.n_rows, 5);
    assert_int_equal(t.n_cols, base.n_cols + 2);
    for (int c = 0; c < base.n_cols; c++) assert_string_equal(t.cols[c], base.cols[c]);
    assert_string_equal(t.cols[base.n_cols], "overhead_seconds");
    assert_string_equal(t.cols[base.n_cols + 1], "overhead_usd");
    const struct { int job; double s, usd; } want[] = {
        {0, 60.0, 0.05}, {1, 18.0, 0.6 * 0.0175}, {2, 12.0 + 20.0, 0.4 * 0.0175 + 80.0 / 3600}, {3, 0.0, 0.0}};
    for (int i = 0; i < 4; i++) {
        int r = row_of(&t, ids[want[i].job]);
        assert_int_equal(r, row_of(&base, ids[want[i].job]));
        assert_near(real_at(&t, r, "overhead_seconds"), want[i].s);
        assert_near(real_at(&t, r, "overhead_usd"), want[i].usd);
        /* cost includes the share; GPU-seconds, tokens and waste stay the requests' */
        assert_near(real_at(&t, r, "cost_usd"), real_at(&base, r, "cost_usd") + want[i].usd);
        assert_near(real_at(&t, r, "gpu_seconds"), real_at(&base, r, "gpu_seconds"));
        assert_near(real_at(&t, r, "wasted_usd"), real_at(&base, r, "wasted_usd"));
        assert_int_equal(cell_at(&t, r, "total_tokens")->i, cell_at(&base, r, "total_tokens")->i);
        double cost = real_at(&t, r, "cost_usd");
        int64_t tok = cell_at(&t, r, "total_tokens")->i;
        if (tok > 0) {
            assert_near(real_at(&t, r, "usd_per_1m_total"), cost * 1e6 / (double)tok);
            assert_true(fabs(real_at(&t, r, "tokens_per_usd") - (double)tok / cost) < 1e-6);
            assert_near(real_at(&t, r, "wasted_share"), real_at(&t, r, "wasted_usd") / cost);
        } else { /* delta: no tokens, no cost */
            assert_int_equal(cell_at(&t, r, "usd_per_1m_total")->type, TM_CELL_NULL);
            assert_int_equal(cell_at(&t, r, "wasted_share")->type, TM_CELL_NULL);
        }
    }
    int u = row_of(&t, "(unattributed overhead)");
    assert_int_equal(u, t.n_rows - 1);
    assert_near(real_at(&t, u, "overhead_seconds"), 12.0);
    assert_near(real_at(&t, u, "overhead_usd"), 30.0 / 3600);
    assert_near(real_at(&t, u, "cost_usd"), 30.0 / 3600);
    assert_int_equal(cell_at(&t, u, "requests")->i, 0);
    assert_int_equal(cell_at(&t, u, "kwh")->type, TM_CELL_NULL);
    assert_int_equal(cell_at(&t, u, "usd_per_1m_total")->type, TM_CELL_NULL);
    assert_near(real_at(&t, u, "tokens_per_usd"), 0.0);
    assert_true(fabs(col_sum(&t, "overhead_seconds") - total_s) < 1e-9);
    assert_true(fabs(col_sum(&t, "overhead_usd") - total_usd) < 1e-9);
    assert_true(fabs(col_sum(&t, "cost_usd") - col_sum(&base, "cost_usd") - total_usd) < 1e-9);
    tm_table_free(&t);
    tm_table_free(&base);

    /* by day and model: the same spread, by the requests' day / model */
    const struct { tm_queue_cost_by by; const char *key; double s; } rows[] = {
        {TM_COST_BY_DAY, "2026-11-19", 60.0},  {TM_COST_BY_DAY, "2026-11-20", 50.0},
        {TM_COST_BY_MODEL, "llama3-8b", 80.0}, {TM_COST_BY_MODEL, "qwen2.5-7b", 18.0},
        {TM_COST_BY_MODEL, "deepseek-7b", 12.0},
    };
    for (tm_queue_cost_by by = TM_COST_BY_DAY; by <= TM_COST_BY_MODEL; by++) {
        assert_int_equal(tm_queue_cost_report(qc, by, 0, 1, &t, &err), TM_OK);
        assert_int_equal(tm_queue_cost_report(qc, by, 0, 0, &base, &err), TM_OK);
        assert_int_equal(t.n_rows, base.n_rows + 1);
        for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
            if (rows[i].by == by) assert_near(real_at(&t, row_of(&t, rows[i].key), "overhead_seconds"), rows[i].s);
        assert_near(real_at(&t, row_of(&t, "(unattributed overhead)"), "overhead_seconds"), 12.0);
        assert_true(fabs(col_sum(&t, "overhead_seconds") - total_s) < 1e-9);
        assert_true(fabs(col_sum(&t, "overhead_usd") - total_usd) < 1e-9);
        for (int r = 0; r < base.n_rows; r++)
            assert_near(real_at(&t, r, "cost_usd"), real_at(&base, r, "cost_usd") + real_at(&t, r, "overhead_usd"));
        tm_table_free(&t);
        tm_table_free(&base);
    }

    /* by worker: already whole runs; the flag changes nothing */
    tm_buf a, b;
    tm_buf_init(&a);
    tm_buf_init(&b);
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_WORKER, 0, 1, &t, &err), TM_OK);
    render_csv(&t, &a);
    tm_table_free(&t);
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_WORKER, 0, 0, &t, &err), TM_OK);
    render_csv(&t, &b);
    tm_table_free(&t);
    assert_string_equal(a.data, b.data);
    tm_buf_free(&a);
    tm_buf_free(&b);
    tm_queue_close(qc);

    /* a run that stored requests whose GPU-seconds sum to 0 splits its
     * overhead equally by request; every run stored something: no
     * '(unattributed overhead)' row */
    tm_queue *q;
    assert_int_equal(tm_queue_open(f->path, &q, &err), TM_OK);
    double now = D1 + 3 * 86400;
    tm_queue_set_clock(q, clk, &now);
    char eps[TM_QUEUE_ID_MAX], run5[TM_QUEUE_ID_MAX];
    submit(q, "epsilon", NULL, 2, NULL, eps);
    assert_int_equal(tm_queue_worker_start(q, "nodeD:404:dddd", "cpu", 60, 0, NULL, run5, &err), TM_OK);
    tm_queue_claimed c[3];
    int got = 0;
    assert_int_equal(tm_queue_claim(q, "nodeD:404:dddd", 3, 600, c, &got, &err), TM_OK);
    assert_int_equal(got, 3); /* delta r0, epsilon r0, r1 */
    for (int i = 0; i < got; i++) {
        tm_queue_usage us = {.prompt_tokens = 10, .completion_tokens = 2, .gpu_seconds = 0, .energy_joules = -1,
                             .cost_usd = 0, .wasted_seconds = -1, .wasted_usd = -1, .run_id = run5};
        assert_int_equal(tm_queue_complete(q, "nodeD:404:dddd", c[i].request_id, "{}", 2, &us, &err), TM_OK);
        tm_queue_claimed_clear(&c[i]);
    }
    tm_queue_run_stats s5 = {0};
    assert_int_equal(tm_queue_worker_stop(q, "nodeD:404:dddd", run5, &s5, 0, &err), TM_OK);
    tm_queue_close(q);
    assert_int_equal(tm_queue_open_existing(f->path, &qc, &err), TM_OK);
    tm_queue_run_cost r5 = {NULL, "cpu", 0.1, -1, 9.0, -1, 9.0 * 0.1 / 3600, 9.0};
    assert_int_equal(tm_queue_run_cost_set(qc, run5, &r5, &err), TM_OK);
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_JOB, (int64_t)D1 + 2 * 86400, 1, &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 1); /* epsilon; run 4 started before since */
    assert_near(real_at(&t, 0, "overhead_seconds"), 6.0); /* 2 of 3 requests */
    assert_near(real_at(&t, 0, "cost_usd"), 6.0 * 0.1 / 3600);
    assert_near(real_at(&t, 0, "wasted_usd"), 0.0); /* not recorded: none known */
    tm_table_free(&t);
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_JOB, 0, 1, &t, &err), TM_OK);
    assert_near(real_at(&t, row_of(&t, ids[3]), "overhead_seconds"), 3.0); /* delta r0 */
    assert_true(fabs(col_sum(&t, "overhead_seconds") - (total_s + 9.0)) < 1e-9);
    tm_table_free(&t);
    tm_queue_close(qc);
}

/* --by metadata.KEY, --until, totals recomputed from sums, what-if. */
static void test_metadata_until_totals(void **state)
{
    fx *f = *state;
    char ids[4][TM_QUEUE_ID_MAX], runs[4][TM_QUEUE_ID_MAX], gamma_r1[TM_QUEUE_ID_MAX];
    build_db(f->path, ids, runs, gamma_r1);
    tm_err err = {{0}};
    tm_queue *qc;
    assert_int_equal(tm_queue_open_existing(f->path, &qc, &err), TM_OK);
    tm_table t, m, tot;
    tm_queue_cost_range r = {.metadata_key = "team"};
    assert_int_equal(tm_queue_cost_report_range(qc, TM_COST_BY_METADATA, &r, 0, &t, &err), TM_OK);
    assert_string_equal(t.cols[0], "team");
    assert_int_equal(t.n_rows, 2); /* ads (gamma), search (alpha, beta) */
    int ads = row_of(&t, "ads"), search = row_of(&t, "search");
    assert_int_equal(cell_at(&t, ads, "requests")->i, 2);
    assert_int_equal(cell_at(&t, search, "requests")->i, 5);
    /* the same money as by model: every finished request is in one group */
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_MODEL, 0, 0, &m, &err), TM_OK);
    assert_near(real_at(&t, ads, "cost_usd") + real_at(&t, search, "cost_usd"), col_sum(&m, "cost_usd"));
    tm_table_free(&m);
    /* totals: sums, and ratios from the sums */
    assert_int_equal(tm_cost_report_totals(&t, &tot, &err), TM_OK);
    assert_string_equal(tm_table_cell(&tot, 0, 0)->s, "(total)");
    double cost = real_at(&tot, 0, "cost_usd");
    assert_near(cost, col_sum(&t, "cost_usd"));
    assert_int_equal(cell_at(&tot, 0, "total_tokens")->i, 33600);
    assert_near(real_at(&tot, 0, "tokens_per_usd") * 1e-9, 33600 / cost * 1e-9);
    assert_near(real_at(&tot, 0, "usd_per_1m_output"), cost * 1e6 / 5600);
    assert_near(real_at(&tot, 0, "wasted_share"), 4.0 / 3600 / cost);
    assert_near(real_at(&tot, 0, "kwh"), 0.015);
    /* what-if: the requests' GPU-seconds (16 s) at $2 and $4 per GPU-hour */
    tm_cost_whatif w[2] = {{"two", 2.0, -1}, {"four", 4.0, -1}};
    tm_cost_report_in in = {.by = TM_COST_GROUP_METADATA, .main = &t, .whatif = w, .n_whatif = 2};
    tm_table wt;
    assert_int_equal(tm_cost_report_whatif(&in, &wt, &err), TM_OK);
    assert_int_equal(wt.n_rows, 3);
    assert_near(real_at(&wt, 0, "cost_usd"), cost);
    assert_near(real_at(&wt, 1, "cost_usd"), 16.0 * 2 / 3600);
    assert_near(real_at(&wt, 2, "cost_usd"), 16.0 * 4 / 3600);
    assert_near(real_at(&wt, 2, "tokens_per_usd") * 1e-9, 33600 / (16.0 * 4 / 3600) * 1e-9);
    tm_table_free(&wt);
    tm_table_free(&tot);
    tm_table_free(&t);
    /* with the overhead: the unattributed row, and all the runs' money */
    assert_int_equal(tm_queue_cost_report_range(qc, TM_COST_BY_METADATA, &r, 1, &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 3);
    assert_int_equal(tm_cost_report_totals(&t, &tot, &err), TM_OK);
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_WORKER, 0, 0, &m, &err), TM_OK);
    assert_true(fabs(real_at(&tot, 0, "cost_usd") - col_sum(&m, "cost_usd")) < 1e-9);
    tm_table_free(&m);
    tm_table_free(&tot);
    tm_table_free(&t);
    /* a key nobody has: one '(none)' group; a numeric value comes back as text */
    r.metadata_key = "project";
    assert_int_equal(tm_queue_cost_report_range(qc, TM_COST_BY_METADATA, &r, 0, &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 1);
    assert_string_equal(tm_table_cell(&t, 0, 0)->s, "(none)");
    tm_table_free(&t);
    r.metadata_key = "n";
    assert_int_equal(tm_queue_cost_report_range(qc, TM_COST_BY_METADATA, &r, 0, &t, &err), TM_OK);
    assert_int_equal(row_of(&t, "7"), 1);
    tm_table_free(&t);
    const char *bad[] = {"", "a\"b", "a\\b", "a\nb"};
    for (int i = 0; i < 4; i++) {
        r.metadata_key = bad[i];
        assert_int_equal(tm_queue_cost_report_range(qc, TM_COST_BY_METADATA, &r, 0, &t, &err), TM_ERR_USAGE);
    }
    /* --until the end of day 1: day 1 only, in every grouping */
    tm_queue_cost_range d1 = {.since = 0, .until = (int64_t)D1 + 86400};
    assert_int_equal(tm_queue_cost_report_range(qc, TM_COST_BY_DAY, &d1, 1, &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 1);
    assert_string_equal(tm_table_cell(&t, 0, 0)->s, "2026-11-19");
    tm_table_free(&t);
    assert_int_equal(tm_queue_cost_report_range(qc, TM_COST_BY_JOB, &d1, 0, &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 2); /* alpha, beta */
    tm_table_free(&t);
    assert_int_equal(tm_queue_cost_report_range(qc, TM_COST_BY_WORKER, &d1, 0, &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 1);
    assert_int_equal(cell_at(&t, 0, "runs")->i, 1);
    tm_table_free(&t);
    assert_int_equal(tm_queue_cost_report_range(qc, TM_COST_BY_MODEL, &d1, 0, &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 1);
    assert_string_equal(tm_table_cell(&t, 0, 0)->s, "llama3-8b");
    tm_table_free(&t);
    tm_queue_cost_range day2 = {.since = (int64_t)D1 + 86400, .until = (int64_t)D1 + 2 * 86400};
    assert_int_equal(tm_queue_cost_prices_used(qc, &day2, &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 3); /* runs 2, 3, 4: three profiles */
    assert_int_equal(row_of(&t, "h200-spot") >= 0, 1);
    tm_table_free(&t);
    tm_queue_close(qc);
}

/* Labels and numbers for people. */
static void test_labels_numbers(void **state)
{
    (void)state;
    char b[64];
    tm_cost_label("/work/engineering/shared/testdata/models/llama-3.2-1b-instruct/", 40, b, sizeof b);
    assert_string_equal(b, "llama-3.2-1b-instruct");
    tm_cost_label("meta-llama/Llama-3.1-8B-Instruct", 40, b, sizeof b);
    assert_string_equal(b, "Llama-3.1-8B-Instruct");
    tm_cost_label("abcdefghijklmnopqrstuvwxyz", 11, b, sizeof b);
    assert_string_equal(b, "abcde\xe2\x80\xa6vwxyz"); /* cut in the middle: 5 + … + 5 characters */
    tm_cost_label("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 5, b, sizeof b);
    assert_string_equal(b, "\xc3\xa9\xc3\xa9\xe2\x80\xa6\xc3\xa9\xc3\xa9"); /* never inside a UTF-8 character */
    tm_cost_label("a\tb\x1b", 40, b, sizeof b);
    assert_string_equal(b, "a?b?");
    tm_cost_label("/", 40, b, sizeof b);
    assert_string_equal(b, "/");
    tm_cost_label("abcdefghijklmnopqrstuvwxyz", 40, b, 8); /* small buffer: truncated, terminated */
    assert_true(strlen(b) < 8);
    tm_cost_fmt_money(1234.564, b, sizeof b);
    assert_string_equal(b, "$1,234.56");
    tm_cost_fmt_money(1234567.5, b, sizeof b);
    assert_string_equal(b, "$1,234,567.50");
    tm_cost_fmt_money(0.0025, b, sizeof b);
    assert_string_equal(b, "$0.0025");
    tm_cost_fmt_money(0.856, b, sizeof b);
    assert_string_equal(b, "$0.86");
    tm_cost_fmt_money(0, b, sizeof b);
    assert_string_equal(b, "$0.00");
    tm_cost_fmt_money(-3.5, b, sizeof b);
    assert_string_equal(b, "-$3.50");
    tm_cost_fmt_money(NAN, b, sizeof b);
    assert_string_equal(b, "-");
    tm_cost_fmt_count(7200, b, sizeof b);
    assert_string_equal(b, "7,200");
    tm_cost_fmt_count(3758550, b, sizeof b);
    assert_string_equal(b, "3.76 M");
    tm_cost_fmt_count(156000, b, sizeof b);
    assert_string_equal(b, "156 k");
    tm_cost_fmt_count(999999, b, sizeof b);
    assert_string_equal(b, "1 M");
    tm_cost_fmt_count(1.2e9, b, sizeof b);
    assert_string_equal(b, "1.2 B");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generated_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wasted_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overhead_spread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_until_totals, setup, teardown),
        cmocka_unit_test(test_labels_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
