/* supervisor_gpu.c — the GPUs of `run --gpus` (supervisor.h): the list,
 * each GPU's CUDA_VISIBLE_DEVICES entry and the CPUs of its NUMA node, and
 * the two parsers (--gpus, sysfs cpulist). */
#include "worker/supervisor.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"

#define SUP_MAX_GPU_INDEX 1023

/* ---- parsers (hostile input) -------------------------------------------- */

tm_status tm_supervisor_parse_gpus(const char *s, int *idx, int max, int *n, int *all, tm_err *err)
{
    *n = 0;
    *all = 0;
    if (!s || !*s) return tm_errf(err, TM_ERR_USAGE, "--gpus: empty list");
    if (!strcmp(s, "all")) { *all = 1; return TM_OK; }
    const char *p = s;
    for (;;) {
        if (*p < '0' || *p > '9') return tm_errf(err, TM_ERR_USAGE, "--gpus: '%.64s' is not 'all' nor a list like 0,1,3", s);
        long v = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (*p++ - '0');
            if (v > SUP_MAX_GPU_INDEX) return tm_errf(err, TM_ERR_USAGE, "--gpus: index above %d", SUP_MAX_GPU_INDEX);
        }
        for (int i = 0; i < *n; i++)
            if (idx[i] == (int)v) return tm_errf(err, TM_ERR_USAGE, "--gpus: GPU %ld listed twice", v);
        if (*n >= max) return tm_errf(err, TM_ERR_USAGE, "--gpus: more than %d GPUs", max);
        idx[(*n)++] = (int)v;
        if (!*p) return TM_OK;
        if (*p++ != ',') return tm_errf(err, TM_ERR_USAGE, "--gpus: '%.64s' is not 'all' nor a list like 0,1,3", s);
    }
}

static int read_uint(const char *s, size_t len, size_t *i, long *out)
{
    if (*i >= len || s[*i] < '0' || s[*i] > '9') return 0;
    long v = 0;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        v = v * 10 + (s[(*i)++] - '0');
        if (v > 1 << 20) return 0;
    }
    *out = v;
    return 1;
}

int tm_supervisor_parse_cpulist(const char *s, size_t len, unsigned long long *mask, int nwords)
{
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' ')) len--;
    if (len == 0 || nwords <= 0) return 0;
    memset(mask, 0, (size_t)nwords * sizeof *mask);
    long cap = 64L * nwords, any = 0;
    size_t i = 0;
    for (;;) {
        long a, b;
        if (!read_uint(s, len, &i, &a)) return 0;
        b = a;
        if (i < len && s[i] == '-') {
            i++;
            if (!read_uint(s, len, &i, &b) || b < a) return 0;
        }
        for (long k = a; k <= b && k < cap; k++) { mask[k / 64] |= 1ULL << (k % 64); any = 1; }
        if (i == len) return any ? 1 : 0;
        if (s[i++] != ',') return 0;
    }
}

/* ---- GPUs: count, PCI bus id (CUDA driver by dlopen), NUMA CPUs ---------- */

typedef int (*cu_init_fn)(unsigned);
typedef int (*cu_count_fn)(int *);
typedef int (*cu_get_fn)(int *, int);
typedef int (*cu_pci_fn)(char *, int, int);

typedef struct gpu_probe {
    void *lib;
    cu_count_fn count;
    cu_get_fn get;
    cu_pci_fn pci;
} gpu_probe;

static int probe_open(gpu_probe *g, int *count, char *why, size_t whysz)
{
    memset(g, 0, sizeof *g);
    g->lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!g->lib) { snprintf(why, whysz, "no CUDA driver (%s)", dlerror()); return 0; }
    cu_init_fn init = (cu_init_fn)dlsym(g->lib, "cuInit");
    g->count = (cu_count_fn)dlsym(g->lib, "cuDeviceGetCount");
    g->get = (cu_get_fn)dlsym(g->lib, "cuDeviceGet");
    g->pci = (cu_pci_fn)dlsym(g->lib, "cuDeviceGetPCIBusId");
    int rc;
    if (!init || !g->count || !g->get || (rc = init(0)) != 0) {
        snprintf(why, whysz, "the CUDA driver does not start (cuInit)");
        return 0;
    }
    if (g->count(count) != 0) *count = 0;
    return 1;
}

static void probe_close(gpu_probe *g)
{
    if (g->lib) dlclose(g->lib);
    g->lib = NULL;
}

static int read_small(const char *path, char *buf, size_t sz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t r = read(fd, buf, sz - 1);
    close(fd);
    if (r < 0) return -1;
    buf[r] = 0;
    return (int)r;
}

/* The CPUs of CUDA device ordinal's NUMA node into mask; 0 with why. */
static int gpu_cpus(gpu_probe *g, int ordinal, unsigned long long *mask, int nwords, char *why, size_t whysz)
{
    char bus[64] = "", path[160], buf[4096];
    int dev;
    if (!g->pci || g->get(&dev, ordinal) != 0 || g->pci(bus, (int)sizeof bus, dev) != 0 || !bus[0]) {
        snprintf(why, whysz, "PCI bus id unreadable");
        return 0;
    }
    bus[sizeof bus - 1] = 0;
    for (char *c = bus; *c; c++) if (*c >= 'A' && *c <= 'F') *c = (char)(*c - 'A' + 'a');
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/numa_node", bus);
    char *end;
    long node = read_small(path, buf, sizeof buf) > 0 ? strtol(buf, &end, 10) : -1;
    if (node < 0 || node > 4095) { snprintf(why, whysz, "%s: no NUMA node", path); return 0; }
    snprintf(path, sizeof path, "/sys/devices/system/node/node%ld/cpulist", node);
    int r = read_small(path, buf, sizeof buf);
    if (r <= 0 || !tm_supervisor_parse_cpulist(buf, (size_t)r, mask, nwords)) {
        snprintf(why, whysz, "%s unreadable", path);
        return 0;
    }
    int n = 0;
    for (int k = 0; k < nwords; k++) n += __builtin_popcountll(mask[k]);
    snprintf(why, whysz, "PCI %s, NUMA node %ld (%d CPUs)", bus, node, n);
    return 1;
}


/* The i-th entry of an inherited CUDA_VISIBLE_DEVICES (UUIDs kept), or the index. */
static void visible_entry(int idx, char *out, size_t sz)
{
    const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
    snprintf(out, sz, "%d", idx);
    if (!cvd || !*cvd) return;
    const char *p = cvd;
    for (int i = 0; i < idx && p; i++) if ((p = strchr(p, ','))) p++;
    if (!p || !*p) return;
    size_t len = strcspn(p, ",");
    if (len >= sz) return;
    memcpy(out, p, len);
    out[len] = 0;
}


static tm_status gpus_check(const int *idx, int n, int count, tm_err *err)
{
    if (n == 0) return tm_errf(err, TM_ERR_UNAVAILABLE, "--gpus all: no GPU visible");
    for (int i = 0; i < n; i++)
        if (idx[i] >= count)
            return tm_errf(err, TM_ERR_UNAVAILABLE, "--gpus: GPU %d asked for, %d visible", idx[i], count);
    return TM_OK;
}

tm_status tm_supervisor_gpus(const char *spec, tm_supervisor_gpu *out, int max, int *n_out, tm_err *err)
{
    int idx[TM_SUPERVISOR_MAX_WORKERS], n = 0, all = 0, count = 0;
    if (max > TM_SUPERVISOR_MAX_WORKERS) max = TM_SUPERVISOR_MAX_WORKERS;
    *n_out = 0;
    tm_status st = tm_supervisor_parse_gpus(spec, idx, max, &n, &all, err);
    if (st) return st;
    if (!tm_cuda_built_in()) return tm_errf(err, TM_ERR_UNAVAILABLE, "--gpus: this build has no CUDA backend");
    gpu_probe g;
    char why[sizeof out->where];
    if (!probe_open(&g, &count, why, sizeof why)) st = tm_errf(err, TM_ERR_UNAVAILABLE, "--gpus: %s", why);
    if (!st && all)
        for (n = 0; n < count && n < max; n++) idx[n] = n;
    if (!st) st = gpus_check(idx, n, count, err);
    for (int i = 0; !st && i < n; i++) {
        tm_supervisor_gpu *u = &out[i];
        memset(u, 0, sizeof *u);
        u->ordinal = idx[i];
        visible_entry(idx[i], u->visible, sizeof u->visible);
        u->have_cpus = gpu_cpus(&g, idx[i], u->cpus, TM_SUPERVISOR_CPU_WORDS, u->where, sizeof u->where);
    }
    probe_close(&g);
    if (!st) *n_out = n;
    return st;
}
