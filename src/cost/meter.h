/* meter.h — cost metering: step time, NVML energy and per-sequence attribution.
 *
 * The worker measures each engine step (wall seconds) and hands the meter the
 * work each sequence did in it; the meter splits the step's seconds, joules and
 * dollars into per-sequence shares whose sums equal the step totals exactly
 * (the sequence with the largest weight absorbs the rounding remainder).
 * Energy comes from NVML (nvmlDeviceGetTotalEnergyConsumption, mJ, device 0),
 * loaded with dlopen; without the library or a device, energy is unknown and
 * reported as -1 (stored as NULL), never 0. Time not spent in steps (model
 * load, idle, checkpointing) is recorded with tm_cost_meter_overhead.
 */
#ifndef TM_COST_METER_H
#define TM_COST_METER_H

#include <stdint.h>
#include "util/status.h"

#define TM_COST_PRICE_NAME_MAX 64

/* A price: dollars per GPU-hour of wall time, plus optionally per kWh. */
typedef struct tm_cost_price {
    char name[TM_COST_PRICE_NAME_MAX]; /* prices.name, or "" for a bare number */
    double usd_per_gpu_hour;           /* >= 0 */
    double usd_per_kwh;                /* < 0: energy is not billed */
} tm_cost_price;

/* Parse a --price value that is a bare number ("3", "2.10", "$2.10"): fills
 * price with name "" and usd_per_kwh -1 and returns TM_OK; anything else is
 * TM_ERR_NOTFOUND (then look the name up with tm_queue_price_get). */
tm_status tm_cost_price_parse_number(const char *s, tm_cost_price *price, tm_err *err);

/* What one sequence did in a step. */
typedef struct tm_cost_work {
    int64_t prefill_tokens;  /* prompt tokens computed this step (chunked prefill) */
    int64_t decode_tokens;   /* generated tokens computed this step (0 or 1) */
    int64_t context_tokens;  /* tokens of KV context attended over (start + new) */
} tm_cost_work;

typedef struct tm_cost_meter tm_cost_meter;

/* nvml_path NULL: "libnvidia-ml.so.1". A library that cannot be loaded or has
 * no device is not an error: energy is then unknown (-1). */
tm_status tm_cost_meter_create(const tm_cost_price *price, const char *nvml_path,
                               tm_cost_meter **out, tm_err *err);
void tm_cost_meter_destroy(tm_cost_meter *m); /* NULL is a no-op */

/* Whether energy is measured (NVML loaded and device 0 answers). */
int tm_cost_meter_has_energy(const tm_cost_meter *m);

/* Attribution weights from the model: a new token costs 2*n_params weight
 * FLOPs plus 4*n_layers*n_heads*head_dim*context attention FLOPs. Without a
 * call (or with n_params <= 0) the weight of a sequence is its new tokens. */
void tm_cost_meter_set_model(tm_cost_meter *m, int64_t n_params, int32_t n_layers,
                             int32_t n_heads, int32_t head_dim);

/* One engine step of step_seconds (>= 0) over n (>= 0) sequences. Writes n
 * shares to each non-NULL output: seconds, joules (-1 each when energy is
 * unknown; the energy is the counter's delta since the previous reading) and
 * dollars (seconds * usd_per_gpu_hour / 3600 + kWh * usd_per_kwh when billed).
 * Sum of shares == step totals. Weight of sequence i:
 *   new_i * (2*P + 4*L*H*D*context_i),  new_i = prefill_i + decode_i;
 * all weights 0 -> equal shares. n == 0: the step counts as overhead.
 * Negative counts or seconds are TM_ERR_INPUT. No allocation. */
tm_status tm_cost_meter_step(tm_cost_meter *m, const tm_cost_work *work, int n, double step_seconds,
                             double *seconds_out, double *joules_out, double *usd_out);

/* Seconds not attributed to any request (model load, idle, checkpointing);
 * the energy counter's delta since the previous reading goes with them. */
tm_status tm_cost_meter_overhead(tm_cost_meter *m, double seconds);

/* Shares handed out by tm_cost_meter_step that will not be recorded on any
 * request (the request was cancelled, failed, or released at preemption and
 * will be recomputed): they move from step time to overhead, so that the
 * run's totals still equal attributed + overhead. joules < 0: none. */
tm_status tm_cost_meter_discard(tm_cost_meter *m, double seconds, double joules, double usd);

/* Totals for the runs row: gpu_seconds/energy/cost include the overhead. */
typedef struct tm_cost_totals {
    double step_seconds, overhead_seconds, gpu_seconds;  /* gpu = step + overhead */
    double energy_joules, overhead_joules;               /* -1: unknown */
    double cost_usd, overhead_usd;
    int64_t steps;
} tm_cost_totals;
void tm_cost_meter_totals(const tm_cost_meter *m, tm_cost_totals *out);

#endif
