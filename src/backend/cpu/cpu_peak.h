/* cpu_peak.h — the machine's measured peak, for benches to report efficiency.
 *
 * Two small calibration loops on a pool's threads (not assumed from a data
 * sheet): fp32 FMA throughput with enough independent accumulators to fill
 * the pipes, using the widest vector ISA the GEMM would pick (gemm.h), and
 * streaming read bandwidth over a buffer far larger than the caches. Each is
 * the best of a few runs. Takes about a second; allocates its buffer.
 * Two views of each: by wall time, and by each thread's own CPU time (what
 * the threads achieve while they hold a core: robust on a shared machine
 * where other processes take turns on the cores; it reads high if threads
 * idle in the pool, which these loops do not).
 */
#ifndef TM_CPU_PEAK_H
#define TM_CPU_PEAK_H

#include "backend/cpu/cpu_ops.h"
#include "util/status.h"

typedef struct tm_cpu_peak {
    double gflops, gflops_wall; /* fp32 GFLOP/s (an FMA counts 2), all threads: by CPU time, by wall time */
    double gbps, gbps_wall;     /* read GB/s (1e9 bytes), all threads: by CPU time, by wall time */
    const char *isa; /* the vector ISA the FMA loop used */
} tm_cpu_peak;

/* Measure on p's threads (NULL: one thread) with a read buffer of buf_mb MiB. */
tm_status tm_cpu_peak_measure(tm_cpu_pool *p, int buf_mb, tm_cpu_peak *out, tm_err *err);

#endif
