/* prices.c — `tokenmill prices set|list`: the price profiles costs are
 * computed with (table prices; the 0003 migration inserts four example
 * profiles: h100-ondemand, h100-premium, a100-ondemand, cpu).
 * `tokenmill run --price NAME` (or a bare $/GPU-hour number) picks one.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "queue/queue_cost.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill prices set NAME --usd-per-gpu-hour X [--usd-per-kwh Y] [--gpu H100]\n"
               "                             [--profile on-demand|spot|reserved] [--description TEXT] [--db PATH]\n"
               "       tokenmill prices list [--json] [--db PATH]\n"
               "\n"
               "Price profiles: USD per GPU-hour of wall time (and optionally per kWh measured through NVML).\n"
               "`set` creates or replaces NAME. The examples h100-ondemand ($3.00: an 8xH100 node at $24/h),\n"
               "h100-premium ($4.00), a100-ondemand ($2.50) and cpu ($0.10) are inserted when the DB is created\n"
               "or migrated; they are illustrative figures, not quotes.\n"
               "  --db PATH  queue database (default ./tokenmill.db or $TOKENMILL_DB)\n"
               "Exit: 0 ok, 64 usage.\n");
}

static tm_status parse_money(const char *opt, const char *v, double *out, tm_err *err)
{
    char *end = NULL;
    const char *p = v && v[0] == '$' ? v + 1 : v;
    double d = p ? strtod(p, &end) : 0;
    if (!p || end == p || *end || !(d >= 0 && d <= 1e6))
        return tm_errf(err, TM_ERR_USAGE, "%s: \"%.40s\" is not a number in [0, 1e6]", opt, v ? v : "");
    *out = d;
    return TM_OK;
}

static tm_status print_row(void *ctx, const tm_queue_price *p, tm_err *err)
{
    (void)err;
    json_t *arr = ctx;
    if (arr) {
        json_t *o = json_pack("{s:s, s:f, s:o, s:o, s:o, s:o, s:I}", "name", p->name, "usd_per_gpu_hour",
                              p->usd_per_gpu_hour, "usd_per_kwh",
                              p->usd_per_kwh >= 0 ? json_real(p->usd_per_kwh) : json_null(), "gpu",
                              *p->gpu ? json_string(p->gpu) : json_null(), "profile",
                              *p->profile ? json_string(p->profile) : json_null(), "description",
                              *p->description ? json_string(p->description) : json_null(), "created_at",
                              (json_int_t)p->created_at);
        if (!o || json_array_append_new(arr, o)) return TM_ERR_NOMEM;
        return TM_OK;
    }
    char kwh[32] = "-";
    if (p->usd_per_kwh >= 0) snprintf(kwh, sizeof kwh, "%.4f", p->usd_per_kwh);
    printf("%-20s %12.4f %10s  %-8s %-10s %s\n", p->name, p->usd_per_gpu_hour, kwh, *p->gpu ? p->gpu : "-",
           *p->profile ? p->profile : "-", p->description);
    return TM_OK;
}

int tm_cmd_prices(int argc, char **argv)
{
    static const struct option opts[] = {
        {"usd-per-gpu-hour", required_argument, NULL, 'u'}, {"usd-per-kwh", required_argument, NULL, 'k'},
        {"gpu", required_argument, NULL, 'g'},              {"profile", required_argument, NULL, 'p'},
        {"description", required_argument, NULL, 'D'},      {"json", no_argument, NULL, 'j'},
        {"db", required_argument, NULL, 'd'},               {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    tm_cli_getopt_reset();
    const char *db_flag = NULL, *gpu = NULL, *profile = NULL, *desc = NULL, *usd_h = NULL, *usd_k = NULL;
    int as_json = 0, c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'u': usd_h = optarg; break;
        case 'k': usd_k = optarg; break;
        case 'g': gpu = optarg; break;
        case 'p': profile = optarg; break;
        case 'D': desc = optarg; break;
        case 'j': as_json = 1; break;
        case 'd': db_flag = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return tm_cli_usage_error("prices", "bad option");
        }
    }
    if (optind >= argc) return tm_cli_usage_error("prices", "expected `set NAME ...` or `list`");
    const char *sub = argv[optind];
    tm_err err = {{0}};
    tm_status s;
    if (!strcmp(sub, "set")) {
        if (argc - optind != 2) return tm_cli_usage_error("prices", "set: expected exactly one NAME");
        if (!usd_h) return tm_cli_usage_error("prices", "set: --usd-per-gpu-hour is required");
        tm_queue_price p = {.usd_per_kwh = -1};
        if (strlen(argv[optind + 1]) >= sizeof p.name) return tm_cli_usage_error("prices", "NAME is too long");
        snprintf(p.name, sizeof p.name, "%s", argv[optind + 1]);
        if ((s = parse_money("--usd-per-gpu-hour", usd_h, &p.usd_per_gpu_hour, &err))) return tm_cli_fail("prices", s, &err);
        if (usd_k && (s = parse_money("--usd-per-kwh", usd_k, &p.usd_per_kwh, &err))) return tm_cli_fail("prices", s, &err);
        if ((gpu && strlen(gpu) >= sizeof p.gpu) || (profile && strlen(profile) >= sizeof p.profile) ||
            (desc && strlen(desc) >= sizeof p.description))
            return tm_cli_usage_error("prices", "--gpu/--profile (31 bytes) or --description (255 bytes) too long");
        if (profile && strcmp(profile, "on-demand") && strcmp(profile, "spot") && strcmp(profile, "reserved"))
            return tm_cli_usage_error("prices", "--profile: one of on-demand, spot, reserved");
        snprintf(p.gpu, sizeof p.gpu, "%s", gpu ? gpu : "");
        snprintf(p.profile, sizeof p.profile, "%s", profile ? profile : "");
        snprintf(p.description, sizeof p.description, "%s", desc ? desc : "");
        tm_queue *q;
        if ((s = tm_cli_db_check(tm_cli_db_path(db_flag), &err)) ||
            (s = tm_queue_open(tm_cli_db_path(db_flag), &q, &err)))
            return tm_cli_fail("prices", s, &err);
        s = tm_queue_price_set(q, &p, &err);
        tm_queue_close(q);
        if (s) return tm_cli_fail("prices", s, &err);
        printf("%s: %.4f USD/GPU-hour\n", p.name, p.usd_per_gpu_hour);
        return fflush(stdout) == 0 ? 0 : 74;
    }
    if (!strcmp(sub, "list")) {
        if (argc - optind != 1) return tm_cli_usage_error("prices", "list: no arguments expected");
        tm_queue *q;
        if ((s = tm_cli_db_check(tm_cli_db_path(db_flag), &err)) ||
            (s = tm_queue_open(tm_cli_db_path(db_flag), &q, &err)))
            return tm_cli_fail("prices", s, &err);
        json_t *arr = as_json ? json_array() : NULL;
        if (!as_json)
            printf("%-20s %12s %10s  %-8s %-10s %s\n", "name", "usd/gpu-h", "usd/kwh", "gpu", "profile", "description");
        s = tm_queue_price_list(q, print_row, arr, &err);
        tm_queue_close(q);
        if (!s && arr) {
            if (json_dumpf(arr, stdout, JSON_INDENT(2)) != 0) s = tm_errf(&err, TM_ERR_IO, "write failed");
            else printf("\n");
        }
        json_decref(arr);
        if (s) return tm_cli_fail("prices", s, &err);
        return fflush(stdout) == 0 ? 0 : 74;
    }
    return tm_cli_usage_error("prices", "unknown subcommand \"%.40s\" (set, list)", sub);
}
