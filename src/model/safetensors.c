/* safetensors.c — defensive safetensors parser over an mmap'd file or a buffer.
 *
 * The header is parsed with jansson; every offset, size and shape is checked
 * (see safetensors.h for the format and the list of checks) before any tensor
 * is exposed. Tensors are kept sorted by name for lookup; an offset-sorted
 * pass rejects overlaps. Nothing is copied: tensor data points into the image.
 */
#include "model/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct st_entry {
    tm_tensor t;        /* t.name is owned (malloc) */
    uint64_t begin, end;
} st_entry;

struct tm_safetensors {
    char *what;
    void *map;          /* mmap base when opened from a file, else NULL */
    size_t map_len;
    const uint8_t *base;
    size_t len;
    uint64_t data_start; /* 8 + N */
    st_entry *ents;
    size_t n;
};

int tm_dtype_from_safetensors(const char *s, tm_dtype *out)
{
    if (!strcmp(s, "BF16")) { *out = TM_DTYPE_BF16; return 0; }
    if (!strcmp(s, "F16")) { *out = TM_DTYPE_F16; return 0; }
    if (!strcmp(s, "F32")) { *out = TM_DTYPE_F32; return 0; }
    if (!strcmp(s, "I32")) { *out = TM_DTYPE_I32; return 0; }
    if (!strcmp(s, "F8_E4M3")) { *out = TM_DTYPE_F8_E4M3; return 0; }
    return -1;
}

void tm_shape_format(char *out, size_t outsz, int ndim, const int64_t *shape)
{
    if (!outsz) return;
    size_t o = 0;
    out[0] = 0;
    int w = snprintf(out, outsz, "[");
    if (w > 0) o = (size_t)w;
    for (int i = 0; i < ndim && o < outsz; i++) {
        w = snprintf(out + o, outsz - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
        if (w < 0) return;
        o += (size_t)w;
    }
    if (o < outsz) snprintf(out + o, outsz - o, "]");
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const st_entry *)a)->t.name, ((const st_entry *)b)->t.name);
}

static int cmp_begin(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* A non-negative JSON integer, or -1. */
static long long json_nonneg(const json_t *v)
{
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    return x < 0 ? -1 : (long long)x;
}

static tm_status parse_entry(tm_safetensors *st, const char *name, json_t *v, uint64_t data_len,
                             st_entry *e, tm_err *err)
{
    const char *w = st->what;
    if (!json_is_object(v))
        return tm_errf(err, TM_ERR_INPUT, "%s: header: tensor %s: entry is not a JSON object", w, name);
    json_t *jd = json_object_get(v, "dtype");
    json_t *js = json_object_get(v, "shape");
    json_t *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd))
        return tm_errf(err, TM_ERR_INPUT, "%s: header: tensor %s: dtype missing or not a string", w, name);
    if (tm_dtype_from_safetensors(json_string_value(jd), &e->t.dtype))
        return tm_errf(err, TM_ERR_INPUT,
                       "%s: tensor %s has dtype %.32s, which is not supported (supported: BF16, F16, F32, I32, F8_E4M3)",
                       w, name, json_string_value(jd));
    if (!json_is_array(js))
        return tm_errf(err, TM_ERR_INPUT, "%s: header: tensor %s: shape missing or not an array", w, name);
    size_t rank = json_array_size(js);
    if (rank > 4)
        return tm_errf(err, TM_ERR_INPUT, "%s: header: tensor %s: shape has rank %zu (supported: 0..4)",
                       w, name, rank);
    uint64_t nelem = 1;
    int overflow = 0;
    e->t.ndim = (int)rank;
    for (size_t i = 0; i < rank; i++) {
        long long d = json_nonneg(json_array_get(js, i));
        if (d < 0)
            return tm_errf(err, TM_ERR_INPUT,
                           "%s: header: tensor %s: shape[%zu] is not a non-negative integer", w, name, i);
        e->t.shape[i] = d;
        if (__builtin_mul_overflow(nelem, (uint64_t)d, &nelem)) overflow = 1;
    }
    uint64_t nbytes = 0;
    if (overflow || __builtin_mul_overflow(nelem, (uint64_t)tm_dtype_size(e->t.dtype), &nbytes))
        return tm_errf(err, TM_ERR_INPUT, "%s: header: tensor %s: shape size overflows", w, name);
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return tm_errf(err, TM_ERR_INPUT,
                       "%s: header: tensor %s: data_offsets missing or not [begin, end]", w, name);
    long long b = json_nonneg(json_array_get(jo, 0)), en = json_nonneg(json_array_get(jo, 1));
    if (b < 0 || en < 0)
        return tm_errf(err, TM_ERR_INPUT,
                       "%s: header: tensor %s: data_offsets are not non-negative integers", w, name);
    if ((uint64_t)en < (uint64_t)b)
        return tm_errf(err, TM_ERR_INPUT, "%s: tensor %s: data_offsets end %lld < begin %lld",
                       w, name, en, b);
    if ((uint64_t)en > data_len)
        return tm_errf(err, TM_ERR_INPUT,
                       "%s: tensor %s: data_offsets [%lld, %lld] run past the end of the data (%llu bytes)",
                       w, name, b, en, (unsigned long long)data_len);
    if ((uint64_t)(en - b) != nbytes) {
        char sh[128];
        tm_shape_format(sh, sizeof sh, e->t.ndim, e->t.shape);
        return tm_errf(err, TM_ERR_INPUT,
                       "%s: tensor %s: shape %s of %s needs %llu bytes but data_offsets [%lld, %lld] span %llu",
                       w, name, sh, tm_dtype_name(e->t.dtype), (unsigned long long)nbytes, b, en,
                       (unsigned long long)(en - b));
    }
    e->begin = (uint64_t)b;
    e->end = (uint64_t)en;
    e->t.nbytes = (size_t)nbytes;
    e->t.data = st->base + st->data_start + e->begin;
    e->t.name = strdup(name);
    if (!e->t.name) return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", w);
    return TM_OK;
}

static tm_status parse_header(tm_safetensors *st, tm_err *err)
{
    const char *w = st->what;
    if (st->len < 8)
        return tm_errf(err, TM_ERR_INPUT,
                       "%s: file is %zu bytes, too short for a safetensors header (needs at least 8)",
                       w, st->len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | st->base[i];
    if (n > (uint64_t)st->len - 8)
        return tm_errf(err, TM_ERR_INPUT,
                       "%s: header length %llu runs past the end of the file (%zu bytes)",
                       w, (unsigned long long)n, st->len);
    if (n > TM_ST_MAX_HEADER)
        return tm_errf(err, TM_ERR_INPUT, "%s: header length %llu exceeds the limit of %llu bytes",
                       w, (unsigned long long)n, (unsigned long long)TM_ST_MAX_HEADER);
    st->data_start = 8 + n;
    uint64_t data_len = (uint64_t)st->len - st->data_start;

    json_error_t je;
    json_t *root = json_loadb((const char *)st->base + 8, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return tm_errf(err, TM_ERR_INPUT, "%s: header is not valid JSON: %s (at byte %d)",
                       w, je.text, je.position);
    tm_status s = TM_OK;
    if (!json_is_object(root)) {
        s = tm_errf(err, TM_ERR_INPUT, "%s: header is not a JSON object", w);
        goto out;
    }
    size_t cap = json_object_size(root);
    st->ents = calloc(cap ? cap : 1, sizeof *st->ents);
    if (!st->ents) { s = tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", w); goto out; }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(val) && !json_is_null(val)) {
                s = tm_errf(err, TM_ERR_INPUT, "%s: header: __metadata__ is not a JSON object", w);
                goto out;
            }
            continue;
        }
        s = parse_entry(st, key, val, data_len, &st->ents[st->n], err);
        if (s) { free((char *)st->ents[st->n].t.name); st->ents[st->n].t.name = NULL; goto out; }
        st->n++;
    }
    if (st->n > 1) {
        qsort(st->ents, st->n, sizeof *st->ents, cmp_name);
        st_entry **byoff = malloc(st->n * sizeof *byoff);
        if (!byoff) { s = tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", w); goto out; }
        size_t m = 0;
        for (size_t i = 0; i < st->n; i++)
            if (st->ents[i].end > st->ents[i].begin) byoff[m++] = &st->ents[i];
        qsort(byoff, m, sizeof *byoff, cmp_begin);
        for (size_t i = 0; i + 1 < m; i++) {
            if (byoff[i]->end > byoff[i + 1]->begin) {
                s = tm_errf(err, TM_ERR_INPUT,
                            "%s: tensors %s [%llu, %llu] and %s [%llu, %llu] overlap", w,
                            byoff[i]->t.name, (unsigned long long)byoff[i]->begin,
                            (unsigned long long)byoff[i]->end, byoff[i + 1]->t.name,
                            (unsigned long long)byoff[i + 1]->begin,
                            (unsigned long long)byoff[i + 1]->end);
                break;
            }
        }
        free(byoff);
    }
out:
    json_decref(root);
    return s;
}

static tm_status st_new(const char *what, tm_safetensors **out, tm_err *err)
{
    tm_safetensors *st = calloc(1, sizeof *st);
    if (st) st->what = strdup(what ? what : "safetensors");
    if (!st || !st->what) {
        free(st);
        return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", what ? what : "safetensors");
    }
    *out = st;
    return TM_OK;
}

tm_status tm_safetensors_parse(const void *buf, size_t len, const char *what,
                               tm_safetensors **out, tm_err *err)
{
    *out = NULL;
    tm_safetensors *st;
    tm_status s = st_new(what, &st, err);
    if (s) return s;
    st->base = buf;
    st->len = buf ? len : 0;
    s = parse_header(st, err);
    if (s) { tm_safetensors_destroy(st); return s; }
    *out = st;
    return TM_OK;
}

tm_status tm_safetensors_open(const char *path, tm_safetensors **out, tm_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tm_errf(err, errno == ENOENT ? TM_ERR_NOTFOUND : TM_ERR_IO, "%s: cannot open: %s",
                       path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return tm_errf(err, TM_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return tm_errf(err, TM_ERR_INPUT, "%s: not a regular file", path);
    }
    tm_safetensors *st;
    tm_status s = st_new(path, &st, err);
    if (s) { close(fd); return s; }
    if (sb.st_size >= 8) {
        void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            tm_safetensors_destroy(st);
            return tm_errf(err, TM_ERR_IO, "%s: cannot mmap: %s", path, strerror(e));
        }
        st->map = p;
        st->map_len = (size_t)sb.st_size;
        st->base = p;
    }
    st->len = (size_t)sb.st_size;
    close(fd);
    s = parse_header(st, err);
    if (s) { tm_safetensors_destroy(st); return s; }
    *out = st;
    return TM_OK;
}

void tm_safetensors_destroy(tm_safetensors *st)
{
    if (!st) return;
    for (size_t i = 0; i < st->n; i++) free((char *)st->ents[i].t.name);
    free(st->ents);
    if (st->map) munmap(st->map, st->map_len);
    free(st->what);
    free(st);
}

const char *tm_safetensors_path(const tm_safetensors *st) { return st->what; }
size_t tm_safetensors_count(const tm_safetensors *st) { return st->n; }

const tm_tensor *tm_safetensors_at(const tm_safetensors *st, size_t i)
{
    return i < st->n ? &st->ents[i].t : NULL;
}

const tm_tensor *tm_safetensors_find(const tm_safetensors *st, const char *name)
{
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->ents[mid].t.name);
        if (c == 0) return &st->ents[mid].t;
        if (c < 0) hi = mid; else lo = mid + 1;
    }
    return NULL;
}

void tm_safetensors_offsets(const tm_safetensors *st, size_t i, uint64_t *begin, uint64_t *end)
{
    *begin = i < st->n ? st->ents[i].begin : 0;
    *end = i < st->n ? st->ents[i].end : 0;
}

uint64_t tm_safetensors_data_start(const tm_safetensors *st) { return st->data_start; }
