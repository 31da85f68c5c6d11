/* meter.c — step metering and attribution (see meter.h for the model).
 *
 * NVML is optional and loaded at run time with dlopen so that the binary has
 * no link-time dependency on the NVIDIA driver; the handful of entry points
 * used are declared here with their C ABI types (nvml.h is not needed).
 */
#include "cost/meter.h"

#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef void *nvml_device;
typedef int (*nvml_init_fn)(void);
typedef int (*nvml_shutdown_fn)(void);
typedef int (*nvml_handle_fn)(unsigned int, nvml_device *);
typedef int (*nvml_energy_fn)(nvml_device, unsigned long long *);

struct tm_cost_meter {
    tm_cost_price price;
    void *lib;
    nvml_shutdown_fn shutdown;
    nvml_energy_fn energy;
    nvml_device dev;
    int has_energy;
    unsigned long long last_mj;
    double w_token, w_attn; /* weight of a new token, and per new token per context token */
    tm_cost_totals t;
};

tm_status tm_cost_price_parse_number(const char *s, tm_cost_price *price, tm_err *err)
{
    if (!s || !*s) return tm_errf(err, TM_ERR_USAGE, "price: empty");
    const char *p = s[0] == '$' ? s + 1 : s;
    char *end = NULL;
    double v = strtod(p, &end);
    if (end == p || *end || !isfinite(v)) return tm_errf(err, TM_ERR_NOTFOUND, "price: \"%s\" is not a number", s);
    if (v < 0 || v > 1e6) return tm_errf(err, TM_ERR_USAGE, "price: %s USD/GPU-hour out of range [0, 1e6]", s);
    memset(price, 0, sizeof *price);
    price->usd_per_gpu_hour = v;
    price->usd_per_kwh = -1;
    return TM_OK;
}

static int read_mj(tm_cost_meter *m, unsigned long long *mj)
{
    if (!m->has_energy) return 0;
    return m->energy(m->dev, mj) == 0;
}

static void load_nvml(tm_cost_meter *m, const char *path)
{
    m->lib = dlopen(path ? path : "libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!m->lib) return;
    nvml_init_fn init = (nvml_init_fn)dlsym(m->lib, "nvmlInit_v2");
    nvml_handle_fn handle = (nvml_handle_fn)dlsym(m->lib, "nvmlDeviceGetHandleByIndex_v2");
    m->shutdown = (nvml_shutdown_fn)dlsym(m->lib, "nvmlShutdown");
    m->energy = (nvml_energy_fn)dlsym(m->lib, "nvmlDeviceGetTotalEnergyConsumption");
    if (!init || !handle || !m->shutdown || !m->energy || init() != 0) {
        dlclose(m->lib);
        m->lib = NULL;
        m->shutdown = NULL;
        return;
    }
    unsigned long long mj;
    if (handle(0, &m->dev) == 0 && m->energy(m->dev, &mj) == 0) {
        m->has_energy = 1;
        m->last_mj = mj;
    }
}

tm_status tm_cost_meter_create(const tm_cost_price *price, const char *nvml_path, tm_cost_meter **out,
                               tm_err *err)
{
    *out = NULL;
    if (!price || !isfinite(price->usd_per_gpu_hour) || price->usd_per_gpu_hour < 0)
        return tm_errf(err, TM_ERR_USAGE, "price: usd_per_gpu_hour must be a number >= 0");
    tm_cost_meter *m = calloc(1, sizeof *m);
    if (!m) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    m->price = *price;
    m->price.name[sizeof m->price.name - 1] = 0;
    if (!isfinite(m->price.usd_per_kwh)) m->price.usd_per_kwh = -1;
    m->w_token = 1;
    m->w_attn = 0;
    m->t.energy_joules = m->t.overhead_joules = -1;
    load_nvml(m, nvml_path);
    if (m->has_energy) m->t.energy_joules = m->t.overhead_joules = 0;
    *out = m;
    return TM_OK;
}

void tm_cost_meter_destroy(tm_cost_meter *m)
{
    if (!m) return;
    if (m->lib) {
        if (m->shutdown) m->shutdown();
        dlclose(m->lib);
    }
    free(m);
}

int tm_cost_meter_has_energy(const tm_cost_meter *m) { return m && m->has_energy; }

void tm_cost_meter_set_model(tm_cost_meter *m, int64_t n_params, int32_t n_layers, int32_t n_heads,
                             int32_t head_dim)
{
    if (n_params <= 0) {
        m->w_token = 1;
        m->w_attn = 0;
        return;
    }
    m->w_token = 2.0 * (double)n_params;
    m->w_attn = (n_layers > 0 && n_heads > 0 && head_dim > 0)
                    ? 4.0 * (double)n_layers * (double)n_heads * (double)head_dim
                    : 0;
}

/* Energy since the previous reading in joules, or -1 when unknown. */
static double take_joules(tm_cost_meter *m)
{
    unsigned long long mj;
    if (!read_mj(m, &mj)) return -1;
    double j = mj >= m->last_mj ? (double)(mj - m->last_mj) * 1e-3 : 0; /* counter reset: 0 */
    m->last_mj = mj;
    return j;
}

static double usd_of(const tm_cost_meter *m, double seconds, double joules)
{
    double usd = seconds * m->price.usd_per_gpu_hour / 3600.0;
    if (m->price.usd_per_kwh >= 0 && joules > 0) usd += joules / 3.6e6 * m->price.usd_per_kwh;
    return usd;
}

static void add_overhead(tm_cost_meter *m, double seconds, double joules)
{
    m->t.overhead_seconds += seconds;
    m->t.gpu_seconds += seconds;
    if (joules >= 0 && m->t.energy_joules >= 0) {
        m->t.overhead_joules += joules;
        m->t.energy_joules += joules;
    }
    double usd = usd_of(m, seconds, joules);
    m->t.overhead_usd += usd;
    m->t.cost_usd += usd;
}

tm_status tm_cost_meter_overhead(tm_cost_meter *m, double seconds)
{
    if (!m || !isfinite(seconds) || seconds < 0) return TM_ERR_INPUT;
    add_overhead(m, seconds, take_joules(m));
    return TM_OK;
}

tm_status tm_cost_meter_step(tm_cost_meter *m, const tm_cost_work *work, int n, double step_seconds,
                             double *seconds_out, double *joules_out, double *usd_out)
{
    if (!m || n < 0 || (n > 0 && !work) || !isfinite(step_seconds) || step_seconds < 0) return TM_ERR_INPUT;
    for (int i = 0; i < n; i++)
        if (work[i].prefill_tokens < 0 || work[i].decode_tokens < 0 || work[i].context_tokens < 0)
            return TM_ERR_INPUT;
    double joules = take_joules(m);
    if (n == 0) {
        add_overhead(m, step_seconds, joules);
        return TM_OK;
    }
    double wsum = 0, wmax = -1;
    int imax = 0;
    for (int i = 0; i < n; i++) {
        double nt = (double)work[i].prefill_tokens + (double)work[i].decode_tokens;
        double w = nt * (m->w_token + m->w_attn * (double)work[i].context_tokens);
        wsum += w;
        if (w > wmax) { wmax = w; imax = i; }
    }
    double sec_acc = 0, j_acc = 0, usd_acc = 0;
    double usd_total = usd_of(m, step_seconds, joules);
    for (int i = 0; i < n; i++) {
        if (i == imax) continue;
        double f;
        if (wsum > 0) {
            double nt = (double)work[i].prefill_tokens + (double)work[i].decode_tokens;
            f = nt * (m->w_token + m->w_attn * (double)work[i].context_tokens) / wsum;
        } else {
            f = 1.0 / n;
        }
        double s = step_seconds * f, j = joules >= 0 ? joules * f : -1, u = usd_total * f;
        sec_acc += s;
        if (j >= 0) j_acc += j;
        usd_acc += u;
        if (seconds_out) seconds_out[i] = s;
        if (joules_out) joules_out[i] = j;
        if (usd_out) usd_out[i] = u;
    }
    /* the largest share absorbs the rounding remainder, so the sums are exact */
    double s_last = step_seconds - sec_acc, u_last = usd_total - usd_acc;
    if (seconds_out) seconds_out[imax] = s_last > 0 ? s_last : 0;
    if (joules_out) joules_out[imax] = joules >= 0 ? (joules - j_acc > 0 ? joules - j_acc : 0) : -1;
    if (usd_out) usd_out[imax] = u_last > 0 ? u_last : 0;
    m->t.step_seconds += step_seconds;
    m->t.gpu_seconds += step_seconds;
    if (joules >= 0 && m->t.energy_joules >= 0) m->t.energy_joules += joules;
    m->t.cost_usd += usd_total;
    m->t.steps++;
    return TM_OK;
}

tm_status tm_cost_meter_discard(tm_cost_meter *m, double seconds, double joules, double usd)
{
    if (!m || !isfinite(seconds) || seconds < 0 || !isfinite(usd) || usd < 0 || !isfinite(joules)) return TM_ERR_INPUT;
    m->t.step_seconds -= seconds;
    m->t.overhead_seconds += seconds;
    if (joules > 0 && m->t.overhead_joules >= 0) m->t.overhead_joules += joules;
    m->t.overhead_usd += usd;
    return TM_OK;
}

void tm_cost_meter_totals(const tm_cost_meter *m, tm_cost_totals *out) { *out = m->t; }
