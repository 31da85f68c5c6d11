/* supervisor.c — tm_supervisor_run: one worker process per CPU slot or GPU
 * (supervisor.h): start (fork + execve), stderr with a [wi] prefix, signals
 * forwarded, restarts with backoff, one progress line, the exit code. */
#include "worker/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "queue/queue.h"
#include "util/timeutil.h"

extern char **environ;

#define SUP_LINE_MAX 4096     /* a worker's stderr line longer than this is cut in pieces */
#define SUP_TICK_MS 250       /* longest wait: reaping, restarts, progress */
#define SUP_TTY_PROGRESS_S 1.0

enum { SLOT_DONE, SLOT_RUNNING, SLOT_WAITING }; /* calloc: a slot not started yet is DONE */

typedef struct slot {
    int state, fd, restarts, last_code, ran, gave_up;
    pid_t pid;
    double start_at;               /* SLOT_WAITING: when to start again */
    char **argv, **envp;
    char env_index[48], env_cvd[160], threads_arg[16];
    cpu_set_t cpus;
    int have_cpus;
    char line[SUP_LINE_MAX];
    size_t n_line;
} slot;

typedef struct sup {
    const tm_supervisor_opts *o;
    slot *s;
    int n;
    int draining, tty;
    tm_queue *q;
    int64_t done0, failed0, tok0, done, failed, tok, left;
    double t0, last_progress;
    int progress_shown;            /* a TTY progress line is on screen */
} sup;

/* ---- per-slot argv / environment (built before fork) ---------------------- */

static tm_status slot_env(slot *s, int i, const char *cvd, tm_err *err)
{
    size_t n = 0;
    while (environ && environ[n]) n++;
    if (!(s->envp = calloc(n + 3, sizeof *s->envp))) return tm_errf(err, TM_ERR_NOMEM, "supervisor: environment");
    size_t k = 0;
    for (size_t j = 0; j < n; j++)
        if (strncmp(environ[j], "TOKENMILL_WORKER_INDEX=", 23) && (!cvd || strncmp(environ[j], "CUDA_VISIBLE_DEVICES=", 21)))
            s->envp[k++] = environ[j];
    snprintf(s->env_index, sizeof s->env_index, "TOKENMILL_WORKER_INDEX=%d", i);
    s->envp[k++] = s->env_index;
    if (cvd) {
        snprintf(s->env_cvd, sizeof s->env_cvd, "CUDA_VISIBLE_DEVICES=%s", cvd);
        s->envp[k++] = s->env_cvd;
    }
    return TM_OK;
}

static tm_status slot_argv(slot *s, const tm_supervisor_opts *o, int threads, int gpu)
{
    size_t n = 0;
    while (o->argv[n]) n++;
    if (!(s->argv = calloc(n + 8, sizeof *s->argv))) return TM_ERR_NOMEM;
    static char no_progress[] = "--no-progress", threads_opt[] = "--threads", device_opt[] = "--device",
                cuda[] = "cuda";
    size_t k = 0;
    for (size_t j = 0; j < n; j++) s->argv[k++] = o->argv[j];
    s->argv[k++] = no_progress;
    if (threads > 0 && !o->threads_given) {
        snprintf(s->threads_arg, sizeof s->threads_arg, "%d", threads);
        s->argv[k++] = threads_opt;
        s->argv[k++] = s->threads_arg;
    }
    if (gpu && !o->device_given) { s->argv[k++] = device_opt; s->argv[k++] = cuda; }
    return TM_OK;
}

static void slots_free(sup *S)
{
    for (int i = 0; S->s && i < S->n; i++) {
        if (S->s[i].fd >= 0) close(S->s[i].fd);
        free(S->s[i].argv);
        free(S->s[i].envp);
    }
    free(S->s);
    S->s = NULL;
}

static tm_status plan_gpus(sup *S, tm_err *err)
{
    const tm_supervisor_opts *o = S->o;
    tm_supervisor_gpu *g = calloc(TM_SUPERVISOR_MAX_WORKERS, sizeof *g);
    int n = 0;
    if (!g) return tm_errf(err, TM_ERR_NOMEM, "supervisor");
    tm_status st = tm_supervisor_gpus(o->gpus, g, TM_SUPERVISOR_MAX_WORKERS, &n, err);
    if (!st && !(S->s = calloc((size_t)n, sizeof *S->s))) st = tm_errf(err, TM_ERR_NOMEM, "supervisor");
    if (!st) S->n = n;
    for (int i = 0; i < n && !st; i++) {
        slot *s = &S->s[i];
        s->fd = -1;
        s->have_cpus = g[i].have_cpus;
        CPU_ZERO(&s->cpus);
        for (int k = 0; k < TM_SUPERVISOR_CPU_WORDS * 64 && k < CPU_SETSIZE; k++)
            if (g[i].cpus[k / 64] >> (k % 64) & 1) CPU_SET(k, &s->cpus);
        if (o->verbose)
            fprintf(stderr, "[supervisor] w%d: GPU %d (CUDA_VISIBLE_DEVICES=%s): %s%s\n", i, g[i].ordinal,
                    g[i].visible, g[i].where, s->have_cpus ? "" : "; CPU affinity left alone");
        if (!(st = slot_env(s, i, g[i].visible, err)) && slot_argv(s, o, 0, 1))
            st = tm_errf(err, TM_ERR_NOMEM, "supervisor");
    }
    free(g);
    return st;
}

static tm_status plan_cpus(sup *S, tm_err *err)
{
    const tm_supervisor_opts *o = S->o;
    cpu_set_t mine;
    int cores = sched_getaffinity(0, sizeof mine, &mine) == 0 ? CPU_COUNT(&mine) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cores / o->n_workers > 0 ? cores / o->n_workers : 1;
    if (!(S->s = calloc((size_t)o->n_workers, sizeof *S->s))) return tm_errf(err, TM_ERR_NOMEM, "supervisor");
    S->n = o->n_workers;
    for (int i = 0; i < S->n; i++) {
        S->s[i].fd = -1;
        tm_status st = slot_env(&S->s[i], i, NULL, err);
        if (st) return st;
        if (slot_argv(&S->s[i], o, threads, 0)) return tm_errf(err, TM_ERR_NOMEM, "supervisor");
    }
    if (o->verbose)
        fprintf(stderr, "[supervisor] %d CPU workers, threads each: %s%d\n", S->n,
                o->threads_given ? "as given, not " : "", threads);
    return TM_OK;
}

/* ---- workers: start, output, end ----------------------------------------- */

static const int fwd_signals[] = {SIGTERM, SIGINT, SIGUSR1};

/* fork + execve; between the two only async-signal-safe calls (libraries
 * may have started threads). Signals are blocked over the fork so that the
 * child never runs the supervisor's handler. */
static tm_status spawn(sup *S, int i, tm_err *err)
{
    slot *s = &S->s[i];
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return tm_errf(err, TM_ERR_INTERNAL, "supervisor: pipe: %s", strerror(errno));
    const char *exe = S->o->exe ? S->o->exe : "/proc/self/exe";
    pid_t parent = getpid();
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int k = 0; k < 3; k++) sigaction(fwd_signals[k], &dfl, NULL);
        setpgid(0, 0);                        /* a terminal's Ctrl-C reaches it through the supervisor only */
        prctl(PR_SET_PDEATHSIG, SIGTERM);     /* the supervisor died: drain */
        if (getppid() != parent) _exit(127);
        if (dup2(p[1], 2) < 0) _exit(127);
        if (s->have_cpus) sched_setaffinity(0, sizeof s->cpus, &s->cpus);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        execve(exe, s->argv, s->envp);
        static const char msg[] = "tokenmill run: cannot exec the worker\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return tm_errf(err, TM_ERR_INTERNAL, "supervisor: fork: %s", strerror(e));
    }
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    s->pid = pid;
    s->fd = p[0];
    s->n_line = 0;
    s->state = SLOT_RUNNING;
    if (S->o->verbose) fprintf(stderr, "[supervisor] w%d started (pid %ld)\n", i, (long)pid);
    return TM_OK;
}

static void clear_progress(sup *S)
{
    if (S->progress_shown) fputs("\r\033[K", stderr);
    S->progress_shown = 0;
}

static void emit_line(sup *S, int i, const char *l, size_t n)
{
    clear_progress(S);
    fprintf(stderr, "[w%d] %.*s\n", i, (int)n, l);
}

/* Read what the worker wrote; whole lines out with the [wi] prefix. 1 at EOF. */
static int pump(sup *S, int i)
{
    slot *s = &S->s[i];
    if (s->fd < 0) return 1;
    for (;;) {
        ssize_t r = read(s->fd, s->line + s->n_line, sizeof s->line - s->n_line);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return errno == EAGAIN ? 0 : 1;
        if (r == 0) return 1;
        s->n_line += (size_t)r;
        size_t start = 0;
        for (size_t k = 0; k < s->n_line; k++)
            if (s->line[k] == '\n' || s->line[k] == '\r') {
                if (k > start) emit_line(S, i, s->line + start, k - start);
                start = k + 1;
            }
        if (start == 0 && s->n_line == sizeof s->line) start = s->n_line, emit_line(S, i, s->line, s->n_line);
        memmove(s->line, s->line + start, s->n_line - start);
        s->n_line -= start;
    }
}

static void close_output(sup *S, int i)
{
    slot *s = &S->s[i];
    pump(S, i);
    if (s->n_line) emit_line(S, i, s->line, s->n_line);
    s->n_line = 0;
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
}

static int start_failure(int code) { return code == 64 || code == 65 || code == 69 || code == 127; }

/* A worker ended: done, or started again later (crash, no drain, restarts left). */
static void ended(sup *S, int i, int ws)
{
    slot *s = &S->s[i];
    close_output(S, i);
    int sig = WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
    int code = sig ? 128 + sig : WEXITSTATUS(ws);
    s->last_code = code;
    s->state = SLOT_DONE;
    if (!start_failure(code)) s->ran = 1;
    int crash = sig || !(code == 0 || code == 75 || start_failure(code));
    char what[48];
    if (sig) snprintf(what, sizeof what, "killed by signal %d", sig);
    else snprintf(what, sizeof what, "exited %d", code);
    if (!crash) {
        if (S->o->verbose) { clear_progress(S); fprintf(stderr, "[supervisor] w%d %s\n", i, what); }
        return;
    }
    clear_progress(S);
    if (S->draining || s->restarts >= S->o->max_restarts) {
        s->gave_up = !S->draining;
        fprintf(stderr, "[supervisor] w%d %s; %s\n", i, what,
                S->draining ? "not restarted (draining)" : "not restarted (--max-restarts reached)");
        return;
    }
    int delay = s->restarts < 6 ? 1 << s->restarts : TM_SUPERVISOR_BACKOFF_MAX_S;
    if (delay > TM_SUPERVISOR_BACKOFF_MAX_S) delay = TM_SUPERVISOR_BACKOFF_MAX_S;
    s->restarts++;
    s->state = SLOT_WAITING;
    s->start_at = tm_now_unix_f() + delay;
    fprintf(stderr, "[supervisor] w%d %s; restart %d/%d in %ds\n", i, what, s->restarts, S->o->max_restarts, delay);
}

static void reap(sup *S)
{
    int ws;
    pid_t pid;
    while ((pid = waitpid(-1, &ws, WNOHANG)) > 0)
        for (int i = 0; i < S->n; i++)
            if (S->s[i].state == SLOT_RUNNING && S->s[i].pid == pid) { ended(S, i, ws); break; }
}

/* Signals: forward each to every live worker; no restarts from now on. */
static void forward_signals(sup *S)
{
    unsigned char b[16];
    ssize_t r;
    while (S->o->signal_fd >= 0 && (r = read(S->o->signal_fd, b, sizeof b)) > 0)
        for (ssize_t k = 0; k < r; k++) {
            if (!S->draining && !S->o->quiet) {
                clear_progress(S);
                fprintf(stderr, "[supervisor] signal %d: draining %d workers\n", b[k], S->n);
            }
            S->draining = 1;
            for (int i = 0; i < S->n; i++) {
                if (S->s[i].state == SLOT_RUNNING && S->s[i].pid > 0) kill(S->s[i].pid, b[k]);
                else if (S->s[i].state == SLOT_WAITING) S->s[i].state = SLOT_DONE;
            }
        }
}

/* ---- the progress line (read from the queue, like the worker's own) ------ */

typedef struct counts { int64_t done, failed, left, tok; } counts;

static tm_status count_cb(void *ctx, const tm_queue_job *j, tm_err *err)
{
    (void)err;
    counts *c = ctx;
    c->done += j->done;
    c->failed += j->failed;
    c->left += j->pending + j->running;
    c->tok += j->completion_tokens;
    return TM_OK;
}

/* 0 when the queue could not be read (then nothing changes). */
static int read_counts(sup *S)
{
    if (!S->q && tm_queue_open_existing(S->o->db_path, &S->q, NULL) != TM_OK) { S->q = NULL; return 0; }
    counts c = {0, 0, 0, 0};
    if (tm_queue_job_list(S->q, count_cb, &c, NULL) != TM_OK) return 0;
    S->done = c.done;
    S->failed = c.failed;
    S->left = c.left;
    S->tok = c.tok;
    return 1;
}

static void progress(sup *S, int final)
{
    double now = tm_now_unix_f();
    if (S->o->quiet || (!final && now - S->last_progress < (S->tty ? SUP_TTY_PROGRESS_S : S->o->progress_every_s)))
        return;
    S->last_progress = now;
    if (!read_counts(S)) return;
    int live = 0, restarts = 0;
    for (int i = 0; i < S->n; i++) {
        live += S->s[i].state == SLOT_RUNNING;
        restarts += S->s[i].restarts;
    }
    double el = now - S->t0;
    int64_t done = S->done - S->done0, failed = S->failed - S->failed0;
    double rps = el > 0 ? (double)(done + failed) / el : 0, tps = el > 0 ? (double)(S->tok - S->tok0) / el : 0;
    char eta[32] = "-";
    if (rps > 0 && S->left > 0) {
        double e = (double)S->left / rps;
        if (e < 120) snprintf(eta, sizeof eta, "%.0fs", e);
        else if (e < 7200) snprintf(eta, sizeof eta, "%.0fm", e / 60);
        else snprintf(eta, sizeof eta, "%.1fh", e / 3600);
    }
    clear_progress(S);
    fprintf(stderr, "[tokenmill] %lld/%lld done, %lld failed | %.1f output tok/s | %d/%d workers, %d restarts | "
            "%.0fs elapsed, ETA %s%s", (long long)done, (long long)(done + failed + S->left), (long long)failed, tps,
            live, S->n, restarts, el, eta, S->tty && !final ? "" : "\n");
    S->progress_shown = S->tty && !final;
}

/* ---- the loop and the exit code -------------------------------------------- */

static int exit_code(sup *S)
{
    int ran = 0, all_zero = 1, gave_up = 0, first = -1, same = 1;
    for (int i = 0; i < S->n; i++) {
        slot *s = &S->s[i];
        ran |= s->ran;
        all_zero &= s->last_code == 0;
        gave_up |= s->gave_up;
        if (first < 0) first = s->last_code;
        same &= s->last_code == first;
    }
    if (!ran) return same && first != 127 ? first : 69;
    if (all_zero) return 0;
    int known = read_counts(S);
    if (!known || S->left > 0) return 75;
    return gave_up ? 70 : 0;
}

static int live_or_waiting(sup *S, double *next_start)
{
    int any = 0;
    *next_start = 0;
    for (int i = 0; i < S->n; i++) {
        if (S->s[i].state == SLOT_RUNNING) any = 1;
        if (S->s[i].state == SLOT_WAITING) {
            any = 1;
            if (*next_start == 0 || S->s[i].start_at < *next_start) *next_start = S->s[i].start_at;
        }
    }
    return any;
}

static tm_status loop(sup *S, tm_err *err)
{
    struct pollfd pf[TM_SUPERVISOR_MAX_WORKERS + 1];
    int who[TM_SUPERVISOR_MAX_WORKERS + 1];
    double next_start;
    while (live_or_waiting(S, &next_start)) {
        int n = 0;
        if (S->o->signal_fd >= 0) { pf[n] = (struct pollfd){S->o->signal_fd, POLLIN, 0}; who[n++] = -1; }
        for (int i = 0; i < S->n; i++)
            if (S->s[i].fd >= 0) { pf[n] = (struct pollfd){S->s[i].fd, POLLIN, 0}; who[n++] = i; }
        int ms = SUP_TICK_MS;
        double now = tm_now_unix_f();
        if (next_start > 0 && (next_start - now) * 1000 < ms) ms = next_start > now ? (int)((next_start - now) * 1000) : 0;
        int r = poll(pf, (nfds_t)n, ms);
        if (r < 0 && errno != EINTR) return tm_errf(err, TM_ERR_INTERNAL, "supervisor: poll: %s", strerror(errno));
        for (int k = 0; r > 0 && k < n; k++) {
            if (!pf[k].revents) continue;
            if (who[k] < 0) forward_signals(S);
            else if (pump(S, who[k])) close_output(S, who[k]); /* EOF: the exit is reaped below */
        }
        reap(S);
        now = tm_now_unix_f();
        for (int i = 0; i < S->n; i++) {
            if (S->s[i].state != SLOT_WAITING || S->s[i].start_at > now) continue;
            tm_err serr;
            if (spawn(S, i, &serr)) {
                clear_progress(S);
                fprintf(stderr, "[supervisor] w%d: %s\n", i, serr.msg);
                S->s[i].state = SLOT_DONE;
                S->s[i].gave_up = 1;
            }
        }
        progress(S, 0);
    }
    return TM_OK;
}

tm_status tm_supervisor_run(const tm_supervisor_opts *o, int *exit_code_out, tm_err *err)
{
    sup S;
    memset(&S, 0, sizeof S);
    S.o = o;
    S.tty = isatty(2);
    *exit_code_out = 69;
    tm_status st = o->gpus ? plan_gpus(&S, err) : plan_cpus(&S, err);
    if (!st) {
        /* the queue created / migrated once, not by N workers at once; the
         * progress counts' baseline; the handle is closed before the first fork */
        S.t0 = tm_now_unix_f();
        st = tm_queue_open(o->db_path, &S.q, err);
        if (!st && read_counts(&S)) { S.done0 = S.done; S.failed0 = S.failed; S.tok0 = S.tok; }
        tm_queue_close(S.q);
        S.q = NULL;
        S.last_progress = S.t0;
        for (int i = 0; i < S.n && !st; i++) st = spawn(&S, i, err);
        if (st) /* fork failed part-way: stop what was started, then wait for it */
            for (int i = 0; i < S.n; i++) if (S.s[i].state == SLOT_RUNNING && S.s[i].pid > 0) kill(S.s[i].pid, SIGTERM);
        S.draining |= st != TM_OK;
        tm_status lst = loop(&S, err);
        if (!st) st = lst;
    }
    if (!st) {
        progress(&S, 1);
        *exit_code_out = exit_code(&S);
    }
    tm_queue_close(S.q);
    slots_free(&S);
    return st;
}
