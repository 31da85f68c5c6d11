/* test_cost_meter.c — cost attribution: per-sequence shares of a step add up
 * to the step's seconds and dollars exactly (random work vectors), follow the
 * documented weights, and energy is unknown (-1), never 0, without NVML.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cost/meter.h"

static tm_cost_meter *make(double usd_h, const char *nvml)
{
    tm_cost_price p = {.usd_per_gpu_hour = usd_h, .usd_per_kwh = -1};
    snprintf(p.name, sizeof p.name, "h100-ondemand");
    tm_cost_meter *m = NULL;
    tm_err err = {{0}};
    assert_int_equal(tm_cost_meter_create(&p, nvml ? nvml : "/nonexistent/libnvidia-ml.so.1", &m, &err), TM_OK);
    assert_non_null(m);
    return m;
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void check_random(int with_model)
{
    tm_cost_meter *m = make(3.0, NULL);
    if (with_model) tm_cost_meter_set_model(m, 8030261248LL, 32, 32, 128); /* llama3-8b */
    uint64_t seed = 0x9e3779b97f4a7c15ULL + (uint64_t)with_model;
    tm_cost_work w[256];
    double sec[256], j[256], usd[256];
    double total_step = 0;
    for (int iter = 0; iter < 2000; iter++) {
        int n = 1 + (int)(rng(&seed) % 256);
        for (int i = 0; i < n; i++) {
            int prefill = rng(&seed) % 4 == 0;
            w[i].prefill_tokens = prefill ? (int64_t)(rng(&seed) % 2048) : 0;
            w[i].decode_tokens = prefill ? 0 : (int64_t)(rng(&seed) % 2);
            w[i].context_tokens = (int64_t)(rng(&seed) % 32768) + w[i].prefill_tokens + w[i].decode_tokens;
        }
        double step = (double)(rng(&seed) % 1000000) * 1e-7 + 1e-6; /* 1 us .. 0.1 s */
        assert_int_equal(tm_cost_meter_step(m, w, n, step, sec, j, usd), TM_OK);
        double ss = 0, su = 0;
        for (int i = 0; i < n; i++) {
            assert_true(sec[i] >= 0 && usd[i] >= 0);
            assert_true(j[i] == -1.0); /* no NVML: unknown, never 0 */
            ss += sec[i];
            su += usd[i];
        }
        assert_true(fabs(ss - step) <= 1e-9 * step);
        assert_true(fabs(su - step * 3.0 / 3600.0) <= 1e-9 * (step * 3.0 / 3600.0));
        total_step += step;
    }
    tm_cost_totals t;
    tm_cost_meter_totals(m, &t);
    assert_int_equal(t.steps, 2000);
    assert_true(fabs(t.step_seconds - total_step) <= 1e-9 * total_step);
    assert_true(fabs(t.cost_usd - total_step * 3.0 / 3600.0) <= 1e-9 * t.cost_usd);
    assert_true(t.energy_joules == -1.0 && t.overhead_joules == -1.0);
    tm_cost_meter_destroy(m);
}

static void test_sums_exact_tokens(void **state) { (void)state; check_random(0); }
static void test_sums_exact_model(void **state) { (void)state; check_random(1); }

static void test_weights(void **state)
{
    (void)state;
    tm_cost_meter *m = make(3.6, NULL); /* $3.6/h = $0.001/s */
    double sec[4], usd[4];
    /* without a model: weight = new tokens */
    tm_cost_work w[3] = {{100, 0, 100}, {0, 1, 5000}, {299, 0, 299}};
    assert_int_equal(tm_cost_meter_step(m, w, 3, 4.0, sec, NULL, usd), TM_OK);
    assert_true(fabs(sec[0] - 1.0) < 1e-12 && fabs(sec[1] - 0.01) < 1e-12 && fabs(sec[2] - 2.99) < 1e-12);
    assert_true(fabs(usd[2] - 0.00299) < 1e-15);
    /* with a model: new * (2P + 4*L*H*D*ctx); P = 1000, 4LHD = 4 -> token weight 2000 + 4*ctx */
    tm_cost_meter_set_model(m, 1000, 1, 1, 1);
    tm_cost_work v[2] = {{0, 1, 500}, {0, 1, 0}}; /* 1*(2000+2000)=4000 vs 2000 */
    assert_int_equal(tm_cost_meter_step(m, v, 2, 3.0, sec, NULL, NULL), TM_OK);
    assert_true(fabs(sec[0] - 2.0) < 1e-12 && fabs(sec[1] - 1.0) < 1e-12);
    /* no tokens at all: equal shares */
    tm_cost_work z[4] = {{0, 0, 0}, {0, 0, 7}, {0, 0, 0}, {0, 0, 0}};
    assert_int_equal(tm_cost_meter_step(m, z, 4, 2.0, sec, NULL, NULL), TM_OK);
    for (int i = 0; i < 3; i++) assert_true(fabs(sec[i] - 0.5) < 1e-12);
    tm_cost_meter_destroy(m);
}

static void test_overhead_and_errors(void **state)
{
    (void)state;
    tm_cost_meter *m = make(7.2, NULL); /* $0.002/s */
    assert_false(tm_cost_meter_has_energy(m));
    assert_int_equal(tm_cost_meter_overhead(m, 10.0), TM_OK); /* model load */
    tm_cost_work w = {10, 0, 10};
    double s;
    assert_int_equal(tm_cost_meter_step(m, &w, 1, 5.0, &s, NULL, NULL), TM_OK);
    assert_true(s == 5.0);
    assert_int_equal(tm_cost_meter_step(m, NULL, 0, 1.0, NULL, NULL, NULL), TM_OK); /* empty step = overhead */
    tm_cost_totals t;
    tm_cost_meter_totals(m, &t);
    assert_true(fabs(t.overhead_seconds - 11.0) < 1e-12 && fabs(t.step_seconds - 5.0) < 1e-12);
    assert_true(fabs(t.gpu_seconds - 16.0) < 1e-12);
    assert_true(fabs(t.overhead_usd - 0.022) < 1e-12 && fabs(t.cost_usd - 0.032) < 1e-12);
    assert_true(t.energy_joules == -1.0);
    /* a cancelled request's 2 s share goes to overhead; totals unchanged */
    assert_int_equal(tm_cost_meter_discard(m, 2.0, -1, 0.004), TM_OK);
    tm_cost_meter_totals(m, &t);
    assert_true(fabs(t.overhead_seconds - 13.0) < 1e-12 && fabs(t.step_seconds - 3.0) < 1e-12);
    assert_true(fabs(t.gpu_seconds - 16.0) < 1e-12 && fabs(t.cost_usd - 0.032) < 1e-12);
    assert_true(fabs(t.overhead_usd - 0.026) < 1e-12);
    assert_int_equal(tm_cost_meter_discard(m, -2.0, -1, 0), TM_ERR_INPUT);
    assert_int_equal(tm_cost_meter_overhead(m, -1), TM_ERR_INPUT);
    tm_cost_work bad = {-1, 0, 0};
    assert_int_equal(tm_cost_meter_step(m, &bad, 1, 1.0, &s, NULL, NULL), TM_ERR_INPUT);
    assert_int_equal(tm_cost_meter_step(m, &w, 1, NAN, &s, NULL, NULL), TM_ERR_INPUT);
    assert_int_equal(tm_cost_meter_step(m, &w, -1, 1.0, &s, NULL, NULL), TM_ERR_INPUT);
    tm_cost_meter_destroy(m);
    tm_cost_meter_destroy(NULL);
}

/* A library that loads but is not NVML (libm) must also give "no energy". */
static void test_nvml_wrong_library(void **state)
{
    (void)state;
    tm_cost_meter *m = make(1.0, "libm.so.6");
    assert_false(tm_cost_meter_has_energy(m));
    tm_cost_work w = {1, 0, 1};
    double j = 0;
    assert_int_equal(tm_cost_meter_step(m, &w, 1, 1.0, NULL, &j, NULL), TM_OK);
    assert_true(j == -1.0);
    tm_cost_meter_destroy(m);
}

static void test_price_parse(void **state)
{
    (void)state;
    tm_cost_price p;
    tm_err err = {{0}};
    assert_int_equal(tm_cost_price_parse_number("2.10", &p, &err), TM_OK);
    assert_true(p.usd_per_gpu_hour == 2.10 && p.usd_per_kwh < 0 && p.name[0] == 0);
    assert_int_equal(tm_cost_price_parse_number("$3", &p, &err), TM_OK);
    assert_true(p.usd_per_gpu_hour == 3.0);
    assert_int_equal(tm_cost_price_parse_number("h100-ondemand", &p, &err), TM_ERR_NOTFOUND);
    assert_int_equal(tm_cost_price_parse_number("-1", &p, &err), TM_ERR_USAGE);
    assert_int_equal(tm_cost_price_parse_number("1e400", &p, &err), TM_ERR_NOTFOUND);
    tm_cost_price neg = {.usd_per_gpu_hour = -2};
    tm_cost_meter *m = (tm_cost_meter *)&neg;
    assert_int_equal(tm_cost_meter_create(&neg, NULL, &m, &err), TM_ERR_USAGE);
    assert_null(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sums_exact_tokens), cmocka_unit_test(test_sums_exact_model),
        cmocka_unit_test(test_weights),           cmocka_unit_test(test_overhead_and_errors),
        cmocka_unit_test(test_nvml_wrong_library), cmocka_unit_test(test_price_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
