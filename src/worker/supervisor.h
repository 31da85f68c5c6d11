/* supervisor.h — `tokenmill run --workers N` / `--gpus all|0,1,3`: one
 * supervisor process, one worker process per CPU slot or GPU, one queue.
 *
 * Each worker is fork() + execve() of the same binary with the run's own
 * arguments (less --workers/--gpus/--max-restarts/--verbose) plus
 * --no-progress, so a worker is an ordinary `tokenmill run`: it claims with
 * its own owner id (host:pid:random), polls its own --preemption-notice,
 * checkpoints and drains by itself. The supervisor opens the queue once
 * before the first fork (creating / migrating it, so N workers do not race
 * to) and closes it, then opens it again only to read the progress counts;
 * SQLite's descriptors are close-on-exec and a restarted child execs at once
 * (between fork and exec: only async-signal-safe calls), so no SQLite handle
 * is used across fork(). The GPU part (list, driver probe, NUMA CPUs, the
 * parsers) is supervisor_gpu.c.
 *
 * Per worker (index i from 0, shown as [wi]): environment TOKENMILL_WORKER_INDEX=i;
 * CPU: --threads T added unless given (T = cores / N, at least 1); GPU: the
 * environment CUDA_VISIBLE_DEVICES set to that GPU alone (the i-th entry of
 * an inherited CUDA_VISIBLE_DEVICES when one is set), --device cuda added
 * unless given, and the CPU affinity set to the GPU's NUMA node: PCI bus id
 * from the CUDA driver (libcuda.so.1 through dlopen; no context is created),
 * /sys/bus/pci/devices/ID/numa_node, /sys/devices/system/node/nodeN/cpulist;
 * where any of it is unreadable the affinity is left alone (--verbose says so).
 * A worker's stderr comes back through a pipe and is printed line by line
 * with its [wi] prefix; the supervisor prints one progress line for all,
 * read from the queue.
 *
 * Signals: SIGTERM/SIGINT/SIGUSR1 to the supervisor are forwarded to every
 * live worker (each is in its own process group, so a terminal's Ctrl-C
 * reaches the workers once, through the supervisor); a second signal is
 * forwarded again (the workers checkpoint at once). A worker whose supervisor
 * dies gets SIGTERM (PR_SET_PDEATHSIG) and drains.
 *
 * Restarts: a worker that dies of a signal or exits with a code other than
 * 0, 75, 64, 65, 69 (or 127: could not exec) is started again after 1 s,
 * 2 s, 4 s ... (at most 60 s), at most max_restarts times per slot, never
 * once a drain signal was received.
 *
 * Exit code (*exit_code): 0 every worker exited 0 (queue empty); 64/65/69
 * when every worker ended with that same start failure (69 when they differ);
 * 75 when work is left (a drain, a worker that gave up); 70 when a worker
 * gave up but no work is left.
 */
#ifndef TM_SUPERVISOR_H
#define TM_SUPERVISOR_H

#include <stddef.h>
#include "util/status.h"

#define TM_SUPERVISOR_MAX_WORKERS 256
#define TM_SUPERVISOR_BACKOFF_MAX_S 60

typedef struct tm_supervisor_opts {
    const char *exe;              /* what to exec; NULL: /proc/self/exe */
    char *const *argv;            /* a worker's arguments (argv[0] first), NULL-terminated */
    const char *db_path;          /* for the progress line */
    int n_workers;                /* CPU workers (ignored with gpus) */
    const char *gpus;             /* NULL: CPU workers; "all" or a list "0,1,3" */
    int threads_given;            /* --threads is in argv: add none */
    int device_given;             /* --device is in argv: add none */
    int max_restarts;             /* per worker slot */
    int quiet;                    /* no progress line, no summary */
    int verbose;                  /* say what is started, where, and why not pinned */
    double progress_every_s;      /* progress period when stderr is not a TTY */
    int signal_fd;                /* read end of a pipe of signal numbers (non-blocking), or -1 */
} tm_supervisor_opts;

/* Run the workers to the end. TM_OK with *exit_code set (the table above);
 * TM_ERR_USAGE for a bad --gpus list, TM_ERR_UNAVAILABLE when GPUs were asked
 * for and none can be used (no CUDA build, no driver, an index out of
 * range), TM_ERR_NOMEM / TM_ERR_INTERNAL (pipe, fork) otherwise. */
tm_status tm_supervisor_run(const tm_supervisor_opts *o, int *exit_code, tm_err *err);

#define TM_SUPERVISOR_CPU_WORDS 16 /* CPU masks: 1024 CPUs */

/* One GPU of --gpus (supervisor_gpu.c). */
typedef struct tm_supervisor_gpu {
    int ordinal;                  /* CUDA ordinal as this process sees the devices */
    char visible[128];            /* the worker's CUDA_VISIBLE_DEVICES */
    int have_cpus;                /* cpus holds the GPU's NUMA node's CPUs */
    unsigned long long cpus[TM_SUPERVISOR_CPU_WORDS];
    char where[256];              /* "PCI 0000:65:00.0, NUMA node 0 (48 CPUs)", or why not known */
} tm_supervisor_gpu;

/* The GPUs of spec ("all" or "0,1,3"), at most max. TM_ERR_USAGE for a bad
 * list; TM_ERR_UNAVAILABLE without a CUDA build, without a CUDA driver
 * (libcuda.so.1 by dlopen: cuInit, cuDeviceGetCount, cuDeviceGetPCIBusId; no
 * context is created), with no GPU or an index out of range. */
tm_status tm_supervisor_gpus(const char *spec, tm_supervisor_gpu *out, int max, int *n, tm_err *err);

/* "all" (-> *all = 1, n = 0) or comma-separated indices 0..1023, no repeats,
 * at most max of them (hostile input: any bytes). TM_ERR_USAGE otherwise. */
tm_status tm_supervisor_parse_gpus(const char *s, int *idx, int max, int *n, int *all, tm_err *err);

/* A Linux cpulist ("0-15,32-47\n"; len bytes, need not be NUL-terminated):
 * bit k of mask[k / 64] set for each CPU k < 64 * nwords. 1 and at least one
 * CPU on success, 0 on anything malformed (mask then undefined). */
int tm_supervisor_parse_cpulist(const char *s, size_t len, unsigned long long *mask, int nwords);

#endif
