/* test_cost_report.c — the cost views and `report` queries: documented
 * columns on an empty DB (NULL-safe), golden CSV on a DB generated
 * deterministically through the queue API (fixed clock, fixed worker ids,
 * job ids replaced by names), --since filtering, report == view for since 0,
 * and the HTML page (one <svg per chart, no scripts; screenshot with headless
 * chromium when present, else that part is skipped with a message).
 */
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

static void render_csv(const tm_queue_table *t, tm_buf *b)
{
    tm_err err = {{0}};
    tm_cost_report_in in = {.main = t};
    tm_buf_clear(b);
    assert_int_equal(tm_cost_report_render(&in, TM_COST_FMT_CSV, b, &err), TM_OK);
}

static void test_empty_db(void **state)
{
    fx *f = *state;
    tm_err err = {{0}};
    tm_queue_cost *qc;
    assert_int_equal(tm_queue_cost_open(f->path, 1, &qc, &err), TM_OK);
    const char *views[] = {"job_costs", "daily_costs", "model_costs", "worker_costs"};
    const char *keys[] = {"job_id", "day", "model", "worker"};
    tm_queue_table t;
    for (int v = 0; v < 4; v++) {
        assert_int_equal(tm_queue_cost_view(qc, views[v], &t, &err), TM_OK);
        assert_int_equal(t.n_rows, 0);
        assert_int_equal(tm_queue_table_col(&t, keys[v]), 0);
        for (size_t c = 0; c < sizeof MEASURE_COLS / sizeof *MEASURE_COLS; c++)
            assert_true(tm_queue_table_col(&t, MEASURE_COLS[c]) > 0);
        tm_queue_table_free(&t);
        assert_int_equal(tm_queue_cost_report(qc, (tm_queue_cost_by)v, 0, 1, &t, &err), TM_OK);
        if (v == TM_COST_BY_WORKER) {
            assert_int_equal(t.n_rows, 0);
        } else { /* just the (overhead) row, zero */
            assert_int_equal(t.n_rows, 1);
            assert_string_equal(tm_queue_table_cell(&t, 0, 0)->s, "(overhead)");
            assert_true(tm_queue_table_cell(&t, 0, tm_queue_table_col(&t, "cost_usd"))->d == 0.0);
            assert_int_equal(tm_queue_table_cell(&t, 0, tm_queue_table_col(&t, "kwh"))->type, TM_CELL_NULL);
        }
        tm_queue_table_free(&t);
    }
    assert_int_equal(tm_queue_cost_view(qc, "jobs; DROP TABLE jobs", &t, &err), TM_ERR_USAGE);
    /* the example price profiles come with the migration */
    tm_queue_price p;
    assert_int_equal(tm_queue_cost_price_get(qc, "h100-ondemand", &p, &err), TM_OK);
    assert_true(p.usd_per_gpu_hour == 3.0 && p.usd_per_kwh < 0);
    assert_string_equal(p.gpu, "H100");
    assert_int_equal(tm_queue_cost_price_get(qc, "nope", &p, &err), TM_ERR_NOTFOUND);
    tm_queue_price q = {.usd_per_gpu_hour = 2.1, .usd_per_kwh = 0.15};
    snprintf(q.name, sizeof q.name, "h200-spot");
    snprintf(q.profile, sizeof q.profile, "spot");
    assert_int_equal(tm_queue_cost_price_set(qc, &q, &err), TM_OK);
    assert_int_equal(tm_queue_cost_price_get(qc, "h200-spot", &p, &err), TM_OK);
    assert_true(p.usd_per_gpu_hour == 2.1 && p.usd_per_kwh == 0.15);
    assert_string_equal(p.profile, "spot");
    assert_string_equal(p.gpu, "");
    snprintf(q.name, sizeof q.name, "bad name'");
    assert_int_equal(tm_queue_cost_price_set(qc, &q, &err), TM_ERR_USAGE);
    tm_queue_run_cost rc = {.usd_per_hour = 1};
    assert_int_equal(tm_queue_cost_run_set(qc, "run_nope", &rc, &err), TM_ERR_NOTFOUND);
    tm_queue_cost_close(qc);
    tm_queue_cost_close(NULL);
}

/* ---- generated DB ---------------------------------------------------------- */

static double clk(void *ctx) { return *(double *)ctx; }

static void submit(tm_queue *q, const char *name, const char *model, int n, const char *model1, char id[TM_QUEUE_ID_MAX])
{
    tm_err err = {{0}};
    tm_queue_job_opts o = {.name = name, .model = model, .completion_window = 7 * 86400};
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

/* Claim up to max and complete each: request k of this batch (1-based, kk =
 * k + base) has prompt 1000*kk, completion 200*kk, work attributed by a meter
 * (one step of 0.5*kk s each at usd_h), energy 3600*kk J when energy. */
static void work(tm_queue *q, const char *owner, int max, int base, double usd_h, int energy, tm_queue_run_stats *st)
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
        int kk = k + 1 + base;
        tm_cost_work w = {1000 * kk, 0, 1000 * kk};
        double sec, usd;
        assert_int_equal(tm_cost_meter_step(m, &w, 1, 0.5 * kk, &sec, NULL, &usd), TM_OK);
        tm_queue_usage u = {1000 * kk, 200 * kk, 0, sec, energy ? 3600.0 * kk : -1, usd};
        assert_int_equal(tm_queue_complete(q, owner, c[k].request_id, "{}", 2, &u, &err), TM_OK);
        st->requests_done++;
        st->prompt_tokens += 1000 * kk;
        st->completion_tokens += 200 * kk;
        tm_queue_claimed_clear(&c[k]);
    }
    tm_cost_meter_destroy(m);
}

static void build_db(const char *path, char ids[4][TM_QUEUE_ID_MAX])
{
    tm_err err = {{0}};
    tm_queue *q;
    double now = D1 + 3600;
    assert_int_equal(tm_queue_open(path, &q, &err), TM_OK);
    tm_queue_set_clock(q, clk, &now);
    submit(q, "alpha", "llama3-8b", 3, NULL, ids[0]);
    submit(q, "beta", "qwen2.5-7b", 2, NULL, ids[1]);
    char run1[TM_QUEUE_ID_MAX], run2[TM_QUEUE_ID_MAX];
    now = D1 + 7200;
    const char *w1 = "nodeA:101:aaaa", *w2 = "nodeB:202:bbbb";
    assert_int_equal(tm_queue_worker_start(q, w1, "cuda", run1, &err), TM_OK);
    tm_queue_run_stats s1 = {0}, s2 = {0};
    work(q, w1, 3, 0, 3.0, 0, &s1); /* alpha on h100-ondemand */
    now = D1 + 7200 + 60;
    assert_int_equal(tm_queue_worker_stop(q, w1, run1, &s1, 0, &err), TM_OK);

    now = D1 + 86400 + 3600;
    submit(q, "gamma", "llama3-8b", 2, "deepseek-7b", ids[2]);
    submit(q, "delta", NULL, 1, NULL, ids[3]); /* never run */
    now = D1 + 86400 + 7200;
    assert_int_equal(tm_queue_worker_start(q, w2, "cuda", run2, &err), TM_OK);
    work(q, w2, 4, 3, 2.1, 1, &s2); /* beta + gamma on h200-spot, energy measured */
    now = D1 + 86400 + 7200 + 120;
    assert_int_equal(tm_queue_worker_stop(q, w2, run2, &s2, 0, &err), TM_OK);
    tm_queue_close(q);

    tm_queue_cost *qc;
    assert_int_equal(tm_queue_cost_open(path, 0, &qc, &err), TM_OK);
    /* run 1: 3 s of steps (0.5+1+1.5) + 60 s overhead at $3/h; run 2: 11 s + 30 s at $2.10/h */
    tm_queue_run_cost r1 = {"llama3-8b", "h100-ondemand", 3.0, -1, 63.0, -1, 63.0 * 3.0 / 3600, 60.0};
    tm_queue_run_cost r2 = {"qwen2.5-7b", "h200-spot", 2.1, -1, 41.0, 36000.0 + 5000.0, 41.0 * 2.1 / 3600, 30.0};
    assert_int_equal(tm_queue_cost_run_set(qc, run1, &r1, &err), TM_OK);
    assert_int_equal(tm_queue_cost_run_set(qc, run2, &r2, &err), TM_OK);
    tm_queue_cost_close(qc);
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

static void test_generated_db(void **state)
{
    fx *f = *state;
    char ids[4][TM_QUEUE_ID_MAX];
    build_db(f->path, ids);
    tm_err err = {{0}};
    tm_queue_cost *qc;
    assert_int_equal(tm_queue_cost_open(f->path, 0, &qc, &err), TM_OK);
    tm_buf b, v;
    tm_buf_init(&b);
    tm_buf_init(&v);
    const char *golden[] = {GOLDEN_JOB, GOLDEN_DAY, GOLDEN_MODEL, GOLDEN_WORKER};
    const char *views[] = {"job_costs", "daily_costs", "model_costs", "worker_costs"};
    for (int by = 0; by < 4; by++) {
        tm_queue_table t;
        assert_int_equal(tm_queue_cost_report(qc, (tm_queue_cost_by)by, 0, 0, &t, &err), TM_OK);
        render_csv(&t, &b);
        scrub(&b, ids);
        if (getenv("TM_COST_PRINT_GOLDEN")) printf("---- %s\n%s", views[by], b.data);
        assert_string_equal(b.data, golden[by]);
        tm_queue_table_free(&t);
        if (by != TM_COST_BY_JOB) { /* report with since 0 == the view */
            assert_int_equal(tm_queue_cost_view(qc, views[by], &t, &err), TM_OK);
            render_csv(&t, &v);
            assert_string_equal(v.data, b.data);
            tm_queue_table_free(&t);
        }
    }
    /* --since the second day */
    tm_queue_table t;
    int64_t since = (int64_t)D1 + 86400;
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_JOB, since, 0, &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 2);
    assert_string_equal(tm_queue_table_cell(&t, 0, 0)->s, ids[2]);
    tm_queue_table_free(&t);
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_DAY, since, 1, &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 2);
    assert_string_equal(tm_queue_table_cell(&t, 0, 0)->s, "2026-11-20");
    assert_string_equal(tm_queue_table_cell(&t, 1, 0)->s, "(overhead)");
    assert_true(tm_queue_table_cell(&t, 1, tm_queue_table_col(&t, "gpu_seconds"))->d == 30.0);
    tm_queue_table_free(&t);
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_WORKER, since, 0, &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 1);
    assert_string_equal(tm_queue_table_cell(&t, 0, 0)->s, "nodeB:202:bbbb");
    tm_queue_table_free(&t);
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_MODEL, since, 0, &t, &err), TM_OK);
    assert_int_equal(t.n_rows, 3); /* deepseek-7b, llama3-8b (gamma r1), qwen2.5-7b */
    tm_queue_table_free(&t);

    /* HTML: one <svg per chart, self-contained */
    tm_queue_table main_t, jobs, mp, tp;
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_MODEL, 0, 1, &main_t, &err), TM_OK);
    assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_JOB, 0, 0, &jobs, &err), TM_OK);
    assert_int_equal(tm_queue_cost_by_model_price(qc, 0, &mp, &err), TM_OK);
    assert_int_equal(tm_queue_cost_run_throughput(qc, 0, &tp, &err), TM_OK);
    assert_int_equal(mp.n_rows, 2);
    assert_int_equal(tp.n_rows, 2);
    /* run 1: 3 requests, (1000+200)*(1+2+3) tokens in 60 s */
    assert_true(tm_queue_table_cell(&tp, 0, tm_queue_table_col(&tp, "tokens_per_s"))->d == 7200.0 / 60.0);
    tm_cost_report_in in = {.title = "cost <report> & co", .main = &main_t, .jobs = &jobs, .model_price = &mp,
                            .throughput = &tp};
    tm_buf_clear(&b);
    assert_int_equal(tm_cost_report_render(&in, TM_COST_FMT_HTML, &b, &err), TM_OK);
    int svgs = 0;
    for (const char *p = b.data; (p = strstr(p, "<svg")); p++) svgs++;
    assert_int_equal(svgs, 3);
    assert_non_null(strstr(b.data, "cost &lt;report&gt; &amp; co"));
    assert_null(strstr(b.data, "<script"));
    assert_null(strstr(b.data, "http://www.w3.org/2000/svg\" href"));
    assert_non_null(strstr(b.data, "alpha"));
    assert_non_null(strstr(b.data, "h200-spot"));
    assert_non_null(strstr(b.data, "</html>"));
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
    tm_queue_table_free(&main_t);
    tm_queue_table_free(&jobs);
    tm_queue_table_free(&mp);
    tm_queue_table_free(&tp);
    for (int fmt = TM_COST_FMT_TABLE; fmt <= TM_COST_FMT_JSON; fmt++) { /* the other formats render */
        tm_cost_report_in in2 = {.main = &t};
        assert_int_equal(tm_queue_cost_report(qc, TM_COST_BY_JOB, 0, 1, &t, &err), TM_OK);
        tm_buf_clear(&b);
        assert_int_equal(tm_cost_report_render(&in2, (tm_cost_format)fmt, &b, &err), TM_OK);
        assert_non_null(strstr(b.data, "alpha"));
        assert_non_null(strstr(b.data, "(overhead)"));
        tm_queue_table_free(&t);
    }
    tm_buf_free(&b);
    tm_buf_free(&v);
    tm_queue_cost_close(qc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generated_db, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
