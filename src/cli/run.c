/* run.c — `tokenmill run`: process queued requests with a model. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/engine_opts.h"
#include "cost/meter.h"
#include "util/timeutil.h"
#include "worker/supervisor.h"
#include "worker/worker.h"

static void usage(FILE *f, const tm_engine_opts *eo)
{
    fprintf(f,
            "usage: tokenmill run --model DIR [options]\n\n"
            "Claims queued requests, runs them through the batching engine and stores\n"
            "OpenAI-format results in the queue (see 'tokenmill results').\n\n");
    tm_engine_opts_usage(f, TM_ENGINE_OPTS_MODEL | TM_ENGINE_OPTS_BATCH, eo);
    fprintf(f,
            "                          (automatic: the memory left after the weights, less a 10%% margin,\n"
            "                          capped at what the window can use)\n"
            "  --until-empty           exit when no work is left (default)\n"
            "  --watch                 keep polling for new work until stopped\n"
            "  --time-limit DURATION   stop by DURATION (e.g. 90s, 30m, 4h): drains over the last\n"
            "                          min(--drain-grace, a quarter of it); exit 75 if work is left\n"
            "  --window N              requests claimed ahead of the engine (default 2 x max-seqs, max 65536)\n"
            "  --max-model-len N       context length cap (default: the model's)\n"
            "  --lease-seconds S       lease length (default 60; renewed while running)\n"
            "  --chat-template NAME    override the chat template picked from tokenizer_config.json\n"
            "  --price NAME|USD        price per GPU-hour: a profile of 'tokenmill prices list' or a number\n"
            "                          (default: '" TM_WORKER_PRICE_CPU "' on the CPU, '" TM_WORKER_PRICE_GPU
            "' on CUDA); recorded on the run\n"
            "  --checkpoint-every S    save in-flight requests' generated tokens every S seconds (default 30;\n"
            "                          0: only when stopping); a resumed request continues where it was\n"
            "  --preemption-notice SPEC  poll for a spot/preemption notice every 5 s and drain before it:\n"
            "                          aws | gcp | http://URL | file:PATH\n"
            "  --drain-grace S         deadline after SIGTERM/SIGINT/SIGUSR1 (default 30); a second signal\n"
            "                          checkpoints at once\n"
            "  --drain-margin S        stop this long before a deadline (default 5)\n"
            "  --exclusive             do nothing (exit 0) if another worker of this DB is alive (for cron)\n"
            "  --served-model-name NAME  the model name(s) this worker serves (repeatable, or a comma list;\n"
            "                          default: the model directory's base name and config.json's\n"
            "                          _name_or_path). It claims only requests whose model (body.model, else\n"
            "                          the job's --model) is one of them, or that name none; others wait\n"
            "                          for a worker that serves them. Responses carry the first name.\n"
            "  --quiet                 no progress output\n"
            "  --no-progress           no progress line (errors and the summary still shown)\n"
            "  --workers N             N CPU worker processes on this queue under one supervisor\n"
            "                          (--threads per worker, default cores/N)\n"
            "  --gpus all|0,1,3        one worker process per GPU (CUDA_VISIBLE_DEVICES each; threads\n"
            "                          pinned to the GPU's NUMA node where readable)\n"
            "  --max-restarts N        with --workers/--gpus: restarts of a crashed worker (default 5;\n"
            "                          after 1 s, 2 s, 4 s ...; never after a drain signal)\n"
            "  --verbose               with --workers/--gpus: say what starts where\n"
            "  --db PATH               queue database (default ./tokenmill.db or $TOKENMILL_DB)\n\n"
            "Draining (a signal, a notice, the time limit): no new requests; requests that can finish\n"
            "before the deadline minus the margin keep going, the others are checkpointed and released.\n"
            "exit: 0 nothing left, 64 usage, 65 bad model, 69 device unavailable, 75 stopped with work left\n"
            "(checkpointed; run again, e.g. Slurm requeue). With --workers/--gpus: signals go to every\n"
            "worker; exit 0 when every worker exited 0, 75 work left, 69 no worker could start.\n");
}

/* A number of seconds (fractions allowed) or a duration ("90s", "2m"). */
static tm_status parse_seconds(const char *opt, const char *s, double min, double *out, tm_err *err)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end != s && !*end && !errno && v >= min && v <= 7 * 86400.0) { *out = v; return TM_OK; }
    int64_t d;
    if (tm_parse_duration(s, &d, NULL) == TM_OK && (double)d >= min) { *out = (double)d; return TM_OK; }
    return tm_errf(err, TM_ERR_USAGE, "%s: '%s' is not a number of seconds >= %g", opt, s, min);
}

/* Signals reach the worker through a pipe: the handler writes the signal
 * number (async-signal-safe), the run loop reads it between steps. A handler
 * has nowhere to write but a process-wide variable: this write end is the one
 * piece of global state, set and cleared here around tm_worker_run. (signalfd
 * would need the signals blocked in every thread, and libraries may start
 * threads before main.) */
static int sig_pipe_w = -1;

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (sig_pipe_w >= 0) { ssize_t r = write(sig_pipe_w, &b, 1); (void)r; }
    errno = saved;
}

static const int drain_signals[] = {SIGTERM, SIGINT, SIGUSR1};

static int signals_install(int fds[2], struct sigaction old[3])
{
    if (pipe(fds) != 0) return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    sig_pipe_w = fds[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int i = 0; i < 3; i++) sigaction(drain_signals[i], &sa, &old[i]);
    return 0;
}

static void signals_remove(int fds[2], struct sigaction old[3])
{
    for (int i = 0; i < 3; i++) sigaction(drain_signals[i], &old[i], NULL);
    sig_pipe_w = -1;
    close(fds[0]);
    close(fds[1]);
}

/* --price: a bare number must be in range now (a name is looked up by the
 * worker); out of range was a silent $0/h. */
static tm_status check_price(const char *s, tm_err *err)
{
    tm_cost_price p;
    tm_status st = tm_cost_price_parse_number(s, &p, err);
    return st == TM_ERR_NOTFOUND ? TM_OK : st;
}

/* What `run` parsed besides the worker's options: the supervisor's options,
 * and which argv entries are the supervisor's own (not passed to workers). */
typedef struct run_args {
    const char *db;
    int done;                      /* --help printed */
    int workers, max_restarts, verbose, threads_given, device_given;
    const char *gpus;
    unsigned char *strip;          /* [argc]: 1 = a supervisor option or its value */
} run_args;

static int is_supervisor_opt(int c) { return c == 'n' || c == 'g' || c == 'R' || c == 'V'; }

/* The supervisor's options: 0, or a usage error's exit code. */
static int check_supervisor_args(const tm_worker_opts *o, const run_args *a)
{
    if (a->gpus && a->workers > 1) return tm_cli_usage_error("run", "--gpus and --workers: give one of them");
    if (a->gpus && o->device == TM_DEVICE_CPU) return tm_cli_usage_error("run", "--gpus with --device cpu");
    if ((a->gpus || a->workers > 1) && o->exclusive)
        return tm_cli_usage_error("run", "--exclusive is for one worker, not --workers/--gpus");
    return 0;
}

/* Parse argv into o (engine options through the shared parser) and a; 0 to
 * run, else the exit code (help: 0 with a->done). */
static int parse_args(int argc, char **argv, tm_worker_opts *o, run_args *a)
{
    static const struct option opts[] = {
        TM_ENGINE_LONGOPTS_MODEL, TM_ENGINE_LONGOPTS_BATCH,
        {"until-empty", no_argument, 0, 'u'},      {"watch", no_argument, 0, 'w'},
        {"time-limit", required_argument, 0, 't'}, {"window", required_argument, 0, 'W'},
        {"max-model-len", required_argument, 0, 'L'},
        {"lease-seconds", required_argument, 0, 'l'}, {"chat-template", required_argument, 0, 'c'},
        {"quiet", no_argument, 0, 'q'},            {"price", required_argument, 0, 'P'},
        {"checkpoint-every", required_argument, 0, 'C'}, {"preemption-notice", required_argument, 0, 'N'},
        {"drain-grace", required_argument, 0, 'G'}, {"drain-margin", required_argument, 0, 'M'},
        {"exclusive", no_argument, 0, 'X'},        {"no-progress", no_argument, 0, 'p'},
        {"workers", required_argument, 0, 'n'},    {"gpus", required_argument, 0, 'g'},
        {"max-restarts", required_argument, 0, 'R'}, {"verbose", no_argument, 0, 'V'},
        {"served-model-name", required_argument, 0, 'S'},
        {"db", required_argument, 0, 'D'},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    tm_engine_opts eo;
    tm_engine_opts_default(&eo, o->max_seqs, o->max_batch_tokens);
    tm_err err;
    long long v;
    tm_cli_getopt_reset();
    int c, at = 1;
    while ((c = getopt_long(argc, argv, "m:d:t:qh", opts, NULL)) != -1) {
        tm_status st = TM_OK;
        if (is_supervisor_opt(c)) /* a long option and its value: argv[at .. optind) */
            for (int k = at; k < optind && k < argc; k++) a->strip[k] = 1;
        at = optind;
        if (c == 'm') c = TM_EO_MODEL;
        else if (c == 'd') c = TM_EO_DEVICE;
        a->threads_given |= c == TM_EO_THREADS;
        a->device_given |= c == TM_EO_DEVICE;
        if (tm_engine_opts_parse(&eo, c, optarg, &st, &err)) {
            if (st) return tm_cli_usage_error("run", "%s", err.msg);
            continue;
        }
        switch (c) {
        case 'u': o->watch = 0; break;
        case 'w': o->watch = 1; break;
        case 't': st = tm_parse_duration(optarg, &o->time_limit_s, &err); break;
        case 'W': if (!(st = tm_cli_parse_long("--window", optarg, 1, 1 << 16, &v, &err))) o->window = (int32_t)v; break;
        case 'L': if (!(st = tm_cli_parse_long("--max-model-len", optarg, 2, 1 << 24, &v, &err))) o->max_model_len = (int32_t)v; break;
        case 'l': if (!(st = tm_cli_parse_long("--lease-seconds", optarg, 5, 86400, &v, &err))) o->lease_s = (double)v; break;
        case 'c': o->chat_template = optarg; break;
        case 'q': o->quiet = 1; break;
        case 'P': st = check_price(optarg, &err); o->price = optarg; break;
        case 'C': st = parse_seconds("--checkpoint-every", optarg, 0, &o->checkpoint_every_s, &err); break;
        case 'N': o->preemption_notice = optarg; break;
        case 'G': st = parse_seconds("--drain-grace", optarg, 0, &o->drain_grace_s, &err); break;
        case 'M': st = parse_seconds("--drain-margin", optarg, 0, &o->drain_margin_s, &err); break;
        case 'X': o->exclusive = 1; break;
        case 'S':
            if (o->n_served_names == TM_WORKER_SERVED_MAX)
                st = tm_errf(&err, TM_ERR_USAGE, "--served-model-name: at most %d values", TM_WORKER_SERVED_MAX);
            else if (!(st = tm_cli_check_text("--served-model-name", optarg, &err)))
                o->served_names[o->n_served_names++] = optarg;
            break;
        case 'p': o->progress_every_s = 0; break;
        case 'n': if (!(st = tm_cli_parse_long("--workers", optarg, 1, TM_SUPERVISOR_MAX_WORKERS, &v, &err))) a->workers = (int)v; break;
        case 'g': a->gpus = optarg; break;
        case 'R': if (!(st = tm_cli_parse_long("--max-restarts", optarg, 0, 1000, &v, &err))) a->max_restarts = (int)v; break;
        case 'V': a->verbose = 1; break;
        case 'D': a->db = optarg; break;
        case 'h': usage(stdout, &eo); a->done = 1; return 0;
        default: return tm_cli_usage_error("run", "unknown option");
        }
        if (st) return tm_cli_usage_error("run", "%s", err.msg);
    }
    if (optind < argc) return tm_cli_usage_error("run", "unexpected argument '%s'", argv[optind]);
    if (!eo.model_dir) return tm_cli_usage_error("run", "--model DIR is required");
    o->model_dir = eo.model_dir;
    o->device = eo.device;
    o->n_threads = eo.n_threads;
    o->quant = eo.quant;
    o->kv_dtype = eo.kv_dtype;
    o->backend_flags = eo.backend_flags;
    o->max_seqs = eo.max_seqs;
    o->max_batch_tokens = eo.max_batch_tokens;
    o->kv_memory = eo.kv_memory;
    return check_supervisor_args(o, a);
}

/* --workers N / --gpus: the supervisor runs `tokenmill run` with these
 * arguments less its own, once per worker. */
static int run_supervised(int argc, char **argv, const tm_worker_opts *o, const run_args *a, int sig_fd)
{
    char **wargv = calloc((size_t)argc + 2, sizeof *wargv);
    if (!wargv) return tm_cli_fail("run", TM_ERR_NOMEM, &(tm_err){"out of memory"});
    static char prog[] = "tokenmill";
    int n = 0;
    wargv[n++] = prog;
    for (int i = 0; i < argc; i++)
        if (!a->strip[i]) wargv[n++] = argv[i];
    tm_supervisor_opts so = {.argv = wargv, .db_path = o->db_path, .n_workers = a->workers, .gpus = a->gpus,
                             .threads_given = a->threads_given, .device_given = a->device_given,
                             .max_restarts = a->max_restarts, .quiet = o->quiet, .verbose = a->verbose,
                             .progress_every_s = o->progress_every_s > 0 ? o->progress_every_s : 10,
                             .signal_fd = sig_fd};
    tm_err err;
    int code = 0;
    tm_status st = tm_supervisor_run(&so, &code, &err);
    free(wargv);
    if (st) return tm_cli_fail("run", st, &err);
    return code;
}

int tm_cmd_run(int argc, char **argv)
{
    tm_worker_opts o;
    tm_worker_opts_default(&o);
    run_args a = {.workers = 1, .max_restarts = 5, .strip = calloc((size_t)argc + 1, 1)};
    if (!a.strip) return tm_cli_fail("run", TM_ERR_NOMEM, &(tm_err){"out of memory"});
    int rc = parse_args(argc, argv, &o, &a);
    if (rc || a.done) { free(a.strip); return rc; }
    tm_err err;
    o.db_path = tm_cli_db_path(a.db);
    if (tm_cli_db_check(o.db_path, &err)) { free(a.strip); return tm_cli_usage_error("run", "%s", err.msg); }
    tm_worker_summary sum;
    int fds[2] = {-1, -1};
    struct sigaction old[3];
    int have_sig = signals_install(fds, old) == 0;
    o.signal_fd = have_sig ? fds[0] : -1;
    if (a.gpus || a.workers > 1) {
        rc = run_supervised(argc, argv, &o, &a, o.signal_fd);
        if (have_sig) signals_remove(fds, old);
        free(a.strip);
        return rc;
    }
    free(a.strip);
    tm_status st = tm_worker_run(&o, &sum, &err);
    if (have_sig) signals_remove(fds, old);
    if (sum.other_alive) {
        if (!o.quiet) fprintf(stderr, "tokenmill run: --exclusive: %s; nothing to do\n", err.msg);
        return 0;
    }
    if (!o.quiet && (st == TM_OK || st == TM_ERR_STOPPED))
        fprintf(stderr, "tokenmill run: %lld done, %lld failed, %lld cancelled; %lld prompt + %lld completion tokens "
                        "(%lld cached) in %.1fs, %lld steps (%.1fs in forward); %lld resumed, %lld checkpointed\n",
                (long long)sum.done, (long long)sum.failed, (long long)sum.cancelled, (long long)sum.prompt_tokens,
                (long long)sum.completion_tokens, (long long)sum.cached_tokens, sum.seconds, (long long)sum.steps,
                sum.forward_seconds, (long long)sum.resumed, (long long)sum.checkpointed);
    if (st) return tm_cli_fail("run", st, &err);
    return 0;
}
