/* gguf.c — the GGUF reader (format and checks: gguf.h). */
#include "model/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct kv {
    const char *key;     /* owned, NUL-terminated copy */
    tm_gguf_value val;
} kv;

struct tm_gguf {
    char *what;
    void *map;
    size_t map_len;
    const unsigned char *buf;
    size_t len;
    uint32_t version;
    kv *kvs;
    size_t n_kv;
    tm_gguf_tensor *tensors;
    size_t n_tensors;
    size_t *kv_sorted;        /* indices sorted by key */
    size_t *t_sorted;         /* indices sorted by name */
};

typedef struct cur {
    const unsigned char *p, *end;
    const char *what;
    tm_err *err;
} cur;

static const struct { const char *name; int elems, bytes; } k_types[] = {
    [TM_GGML_F32] = {"F32", 1, 4},       [TM_GGML_F16] = {"F16", 1, 2},
    [TM_GGML_Q4_0] = {"Q4_0", 32, 18},   [TM_GGML_Q4_1] = {"Q4_1", 32, 20},
    [4] = {"Q4_2 (removed)", 0, 0},      [5] = {"Q4_3 (removed)", 0, 0},
    [TM_GGML_Q5_0] = {"Q5_0", 32, 22},   [TM_GGML_Q5_1] = {"Q5_1", 32, 24},
    [TM_GGML_Q8_0] = {"Q8_0", 32, 34},   [TM_GGML_Q8_1] = {"Q8_1", 32, 36},
    [TM_GGML_Q2_K] = {"Q2_K", 256, 84},  [TM_GGML_Q3_K] = {"Q3_K", 256, 110},
    [TM_GGML_Q4_K] = {"Q4_K", 256, 144}, [TM_GGML_Q5_K] = {"Q5_K", 256, 176},
    [TM_GGML_Q6_K] = {"Q6_K", 256, 210}, [TM_GGML_Q8_K] = {"Q8_K", 256, 292},
    [16] = {"IQ2_XXS", 0, 0}, [17] = {"IQ2_XS", 0, 0}, [18] = {"IQ3_XXS", 0, 0}, [19] = {"IQ1_S", 0, 0},
    [20] = {"IQ4_NL", 0, 0},  [21] = {"IQ3_S", 0, 0},  [22] = {"IQ2_S", 0, 0},   [23] = {"IQ4_XS", 0, 0},
    [24] = {"I8", 1, 1},      [25] = {"I16", 1, 2},    [26] = {"I32", 1, 4},     [27] = {"I64", 1, 8},
    [28] = {"F64", 1, 8},     [29] = {"IQ1_M", 0, 0},  [TM_GGML_BF16] = {"BF16", 1, 2},
    [34] = {"TQ1_0", 0, 0},   [35] = {"TQ2_0", 0, 0},  [39] = {"MXFP4", 0, 0},
};
#define N_TYPES (sizeof k_types / sizeof k_types[0])

const char *tm_ggml_type_name(uint32_t t) { return t < N_TYPES && k_types[t].name ? k_types[t].name : "unknown"; }
int tm_ggml_block_elems(uint32_t t) { return t < N_TYPES ? k_types[t].elems : 0; }
int tm_ggml_block_bytes(uint32_t t) { return t < N_TYPES ? k_types[t].bytes : 0; }

static const int k_vsize[TM_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 8 /* min: length */, 12, 8, 8, 8};
static const char *k_vname[TM_GGUF_VTYPE_COUNT] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                                   "bool", "string", "array", "u64", "i64", "f64"};

static size_t left(const cur *c) { return (size_t)(c->end - c->p); }

static tm_status rd(cur *c, void *out, size_t n, const char *field)
{
    if (left(c) < n) return tm_errf(c->err, TM_ERR_INPUT, "%s: truncated reading %s", c->what, field);
    memcpy(out, c->p, n);
    c->p += n;
    return TM_OK;
}

static tm_status rd_u32(cur *c, uint32_t *v, const char *f) { return rd(c, v, 4, f); }
static tm_status rd_u64(cur *c, uint64_t *v, const char *f) { return rd(c, v, 8, f); }

static tm_status rd_str(cur *c, tm_gguf_str *s, uint64_t max, const char *field)
{
    uint64_t n = 0;
    tm_status st = rd_u64(c, &n, field);
    if (st) return st;
    if (n > left(c)) return tm_errf(c->err, TM_ERR_INPUT, "%s: %s: string of %llu bytes past the end of the file",
                                    c->what, field, (unsigned long long)n);
    if (n > max) return tm_errf(c->err, TM_ERR_INPUT, "%s: %s: string of %llu bytes (limit %llu)", c->what, field,
                                (unsigned long long)n, (unsigned long long)max);
    s->p = (const char *)c->p;
    s->len = n;
    c->p += n;
    return TM_OK;
}

static void scalar(tm_gguf_vtype t, const unsigned char *p, tm_gguf_value *v)
{
    uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; float f; double d;
    switch (t) {
    case TM_GGUF_U8: memcpy(&u8, p, 1); v->v.u = u8; v->v.i = u8; v->v.f = u8; break;
    case TM_GGUF_I8: memcpy(&i8, p, 1); v->v.i = i8; v->v.f = i8; v->v.u = (uint64_t)v->v.i; break;
    case TM_GGUF_U16: memcpy(&u16, p, 2); v->v.u = u16; v->v.i = u16; v->v.f = u16; break;
    case TM_GGUF_I16: memcpy(&i16, p, 2); v->v.i = i16; v->v.f = i16; v->v.u = (uint64_t)v->v.i; break;
    case TM_GGUF_U32: memcpy(&u32, p, 4); v->v.u = u32; v->v.i = u32; v->v.f = u32; break;
    case TM_GGUF_I32: memcpy(&i32, p, 4); v->v.i = i32; v->v.f = i32; v->v.u = (uint64_t)v->v.i; break;
    case TM_GGUF_F32: memcpy(&f, p, 4); v->v.f = f; break;
    case TM_GGUF_BOOL: v->v.b = p[0] != 0; v->v.i = v->v.b; break;
    case TM_GGUF_U64: memcpy(&v->v.u, p, 8); v->v.f = (double)v->v.u; v->v.i = (int64_t)v->v.u; break;
    case TM_GGUF_I64: memcpy(&v->v.i, p, 8); v->v.f = (double)v->v.i; v->v.u = (uint64_t)v->v.i; break;
    case TM_GGUF_F64: memcpy(&d, p, 8); v->v.f = d; break;
    default: break;
    }
}

static tm_status rd_value(cur *c, tm_gguf_value *v, const char *key)
{
    uint32_t t = 0;
    tm_status st = rd_u32(c, &t, key);
    if (st) return st;
    if (t >= TM_GGUF_VTYPE_COUNT)
        return tm_errf(c->err, TM_ERR_INPUT, "%s: %s: unknown value type %u", c->what, key, t);
    v->type = (tm_gguf_vtype)t;
    if (t == TM_GGUF_STRING) return rd_str(c, &v->v.s, UINT64_MAX, key);
    if (t != TM_GGUF_ARRAY) {
        if (left(c) < (size_t)k_vsize[t]) return tm_errf(c->err, TM_ERR_INPUT, "%s: %s: truncated", c->what, key);
        scalar(v->type, c->p, v);
        c->p += k_vsize[t];
        return TM_OK;
    }
    uint32_t et = 0;
    uint64_t n = 0;
    if ((st = rd_u32(c, &et, key)) || (st = rd_u64(c, &n, key))) return st;
    if (et >= TM_GGUF_VTYPE_COUNT || et == TM_GGUF_ARRAY)
        return tm_errf(c->err, TM_ERR_INPUT, "%s: %s: array of unsupported element type %u", c->what, key, et);
    if (n > left(c) / (uint64_t)k_vsize[et])
        return tm_errf(c->err, TM_ERR_INPUT, "%s: %s: array of %llu elements past the end of the file", c->what,
                       key, (unsigned long long)n);
    v->arr_type = (tm_gguf_vtype)et;
    v->arr_len = n;
    v->arr = c->p;
    if (et != TM_GGUF_STRING) {
        c->p += n * (uint64_t)k_vsize[et];
        return TM_OK;
    }
    uint64_t *offs = malloc((n ? n : 1) * sizeof *offs);   /* bounded: n <= bytes left / 8 */
    if (!offs) return tm_errf(c->err, TM_ERR_NOMEM, "%s: %s: out of memory", c->what, key);
    v->str_offsets = offs;
    for (uint64_t i = 0; i < n; i++) {
        tm_gguf_str s;
        offs[i] = (uint64_t)(c->p - v->arr);
        if ((st = rd_str(c, &s, UINT64_MAX, key))) return st;
    }
    return TM_OK;
}

static int cmp_kv_idx(const void *a, const void *b, void *ctx)
{
    const kv *k = ctx;
    return strcmp(k[*(const size_t *)a].key, k[*(const size_t *)b].key);
}
static int cmp_t_off(const void *a, const void *b, void *ctx)
{
    const tm_gguf_tensor *t = ctx;
    uint64_t x = t[*(const size_t *)a].offset, y = t[*(const size_t *)b].offset;
    return (x > y) - (x < y);
}
static int cmp_t_idx(const void *a, const void *b, void *ctx)
{
    const tm_gguf_tensor *t = ctx;
    return strcmp(t[*(const size_t *)a].name, t[*(const size_t *)b].name);
}

static tm_status parse_kvs(tm_gguf *g, cur *c, uint64_t n)
{
    if (n > TM_GGUF_MAX_KV || n > left(c) / 12)
        return tm_errf(c->err, TM_ERR_INPUT, "%s: %llu metadata keys (limit %d, or past the end of the file)",
                       c->what, (unsigned long long)n, TM_GGUF_MAX_KV);
    g->kvs = calloc(n ? n : 1, sizeof *g->kvs);
    g->kv_sorted = malloc((n ? n : 1) * sizeof *g->kv_sorted);
    if (!g->kvs || !g->kv_sorted) return tm_errf(c->err, TM_ERR_NOMEM, "%s: out of memory", c->what);
    for (uint64_t i = 0; i < n; i++) {
        tm_gguf_str k;
        tm_status st = rd_str(c, &k, TM_GGUF_MAX_KEY, "metadata key");
        if (st) return st;
        if (memchr(k.p, 0, k.len)) return tm_errf(c->err, TM_ERR_INPUT, "%s: metadata key %llu has a NUL byte",
                                                  c->what, (unsigned long long)i);
        char *key = malloc(k.len + 1);
        if (!key) return tm_errf(c->err, TM_ERR_NOMEM, "%s: out of memory", c->what);
        memcpy(key, k.p, k.len);
        key[k.len] = 0;
        g->kvs[i].key = key;
        g->n_kv = i + 1;
        if ((st = rd_value(c, &g->kvs[i].val, key))) return st;
        g->kv_sorted[i] = i;
    }
    qsort_r(g->kv_sorted, g->n_kv, sizeof *g->kv_sorted, cmp_kv_idx, g->kvs);
    for (size_t i = 1; i < g->n_kv; i++)
        if (!strcmp(g->kvs[g->kv_sorted[i]].key, g->kvs[g->kv_sorted[i - 1]].key))
            return tm_errf(c->err, TM_ERR_INPUT, "%s: metadata key '%s' appears twice", c->what,
                           g->kvs[g->kv_sorted[i]].key);
    return TM_OK;
}

static tm_status parse_tensor_info(cur *c, tm_gguf_tensor *t, uint64_t i)
{
    tm_gguf_str name;
    uint32_t nd = 0, type = 0;
    tm_status st = rd_str(c, &name, TM_GGUF_MAX_NAME - 1, "tensor name");
    if (st) return st;
    if (!name.len || memchr(name.p, 0, name.len))
        return tm_errf(c->err, TM_ERR_INPUT, "%s: tensor %llu: empty name or NUL byte", c->what,
                       (unsigned long long)i);
    memcpy(t->name, name.p, name.len);
    t->name[name.len] = 0;
    if ((st = rd_u32(c, &nd, t->name))) return st;
    if (nd < 1 || nd > 4) return tm_errf(c->err, TM_ERR_INPUT, "%s: tensor %s: %u dimensions (1..4)", c->what,
                                         t->name, nd);
    t->n_dims = (int)nd;
    int64_t nel = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t ne = 0;
        if ((st = rd_u64(c, &ne, t->name))) return st;
        if (ne < 1 || ne > ((uint64_t)1 << 40) || (uint64_t)nel > ((uint64_t)1 << 46) / ne)
            return tm_errf(c->err, TM_ERR_INPUT, "%s: tensor %s: dimension %u is %llu (1..2^40, product <= 2^46)",
                           c->what, t->name, d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
        nel *= (int64_t)ne;
    }
    for (uint32_t d = nd; d < 4; d++) t->ne[d] = 1;
    t->nelem = nel;
    if ((st = rd_u32(c, &type, t->name)) || (st = rd_u64(c, &t->offset, t->name))) return st;
    int be = tm_ggml_block_elems(type), bb = tm_ggml_block_bytes(type);
    if (!be) return tm_errf(c->err, TM_ERR_INPUT, "%s: tensor %s: tensor type %s (%u) is not supported", c->what,
                            t->name, tm_ggml_type_name(type), type);
    if (t->ne[0] % be)
        return tm_errf(c->err, TM_ERR_INPUT, "%s: tensor %s: row of %lld elements is not a multiple of %s's block "
                       "of %d", c->what, t->name, (long long)t->ne[0], tm_ggml_type_name(type), be);
    t->type = (tm_ggml_type)type;
    t->nbytes = (uint64_t)(nel / be) * (uint64_t)bb;
    return TM_OK;
}

static tm_status parse_tensors(tm_gguf *g, cur *c, uint64_t n, uint64_t align)
{
    if (n > TM_GGUF_MAX_TENSORS || n > left(c) / 24)
        return tm_errf(c->err, TM_ERR_INPUT, "%s: %llu tensors (limit %d, or past the end of the file)", c->what,
                       (unsigned long long)n, TM_GGUF_MAX_TENSORS);
    g->tensors = calloc(n ? n : 1, sizeof *g->tensors);
    g->t_sorted = malloc((n ? n : 1) * sizeof *g->t_sorted);
    if (!g->tensors || !g->t_sorted) return tm_errf(c->err, TM_ERR_NOMEM, "%s: out of memory", c->what);
    for (uint64_t i = 0; i < n; i++) {
        tm_status st = parse_tensor_info(c, &g->tensors[i], i);
        if (st) return st;
        g->t_sorted[i] = i;
        g->n_tensors = i + 1;
    }
    size_t hdr = (size_t)(c->p - g->buf);
    uint64_t data_start = (hdr + align - 1) / align * align;
    if (n && data_start > g->len)
        return tm_errf(c->err, TM_ERR_INPUT, "%s: data section starts past the end of the file", c->what);
    uint64_t data_len = g->len - (data_start < g->len ? data_start : g->len);
    for (size_t i = 0; i < g->n_tensors; i++) {
        tm_gguf_tensor *t = &g->tensors[i];
        if (t->offset % align)
            return tm_errf(c->err, TM_ERR_INPUT, "%s: tensor %s: offset %llu not a multiple of the alignment %llu",
                           c->what, t->name, (unsigned long long)t->offset, (unsigned long long)align);
        if (t->offset > data_len || t->nbytes > data_len - t->offset)
            return tm_errf(c->err, TM_ERR_INPUT, "%s: tensor %s: %llu bytes at offset %llu run past the end of "
                           "the file", c->what, t->name, (unsigned long long)t->nbytes,
                           (unsigned long long)t->offset);
        t->data = g->buf + data_start + t->offset;
    }
    qsort_r(g->t_sorted, g->n_tensors, sizeof *g->t_sorted, cmp_t_idx, g->tensors);
    for (size_t i = 1; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[g->t_sorted[i]].name, g->tensors[g->t_sorted[i - 1]].name))
            return tm_errf(c->err, TM_ERR_INPUT, "%s: tensor '%s' appears twice", c->what,
                           g->tensors[g->t_sorted[i]].name);
    /* Overlap check: sort by offset (a copy of the indices). */
    size_t *by_off = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof *by_off);
    if (!by_off) return tm_errf(c->err, TM_ERR_NOMEM, "%s: out of memory", c->what);
    for (size_t i = 0; i < g->n_tensors; i++) by_off[i] = i;
    qsort_r(by_off, g->n_tensors, sizeof *by_off, cmp_t_off, g->tensors);
    tm_status st = TM_OK;
    for (size_t i = 1; i < g->n_tensors && !st; i++) {
        const tm_gguf_tensor *a = &g->tensors[by_off[i - 1]], *b = &g->tensors[by_off[i]];
        if (a->offset + a->nbytes > b->offset)
            st = tm_errf(c->err, TM_ERR_INPUT, "%s: tensors %s and %s overlap", c->what, a->name, b->name);
    }
    free(by_off);
    return st;
}

tm_status tm_gguf_parse(const void *buf, size_t len, const char *what, tm_gguf **out, tm_err *err)
{
    *out = NULL;
    if (!what) what = "gguf";
    tm_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->what = strdup(what))) {
        free(g);
        return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", what);
    }
    g->buf = buf;
    g->len = len;
    cur c = { .p = buf, .end = (const unsigned char *)buf + len, .what = g->what, .err = err };
    uint32_t magic = 0;
    uint64_t n_t = 0, n_kv = 0;
    tm_status st = rd_u32(&c, &magic, "magic");
    if (!st && magic != 0x46554747u)
        st = tm_errf(err, TM_ERR_INPUT, "%s: not a GGUF file (magic %08x)", g->what, magic);
    if (!st) st = rd_u32(&c, &g->version, "version");
    if (!st && (g->version < 2 || g->version > 3))
        st = tm_errf(err, TM_ERR_INPUT, "%s: GGUF version %u is not supported (2 or 3)", g->what, g->version);
    if (!st) st = rd_u64(&c, &n_t, "tensor_count");
    if (!st) st = rd_u64(&c, &n_kv, "metadata_kv_count");
    if (!st) st = parse_kvs(g, &c, n_kv);
    uint64_t align = 32;
    const tm_gguf_value *a = st ? NULL : tm_gguf_get(g, "general.alignment");
    if (a) {
        if (a->type != TM_GGUF_U32 || !a->v.u || a->v.u > 4096 || (a->v.u & (a->v.u - 1)))
            st = tm_errf(err, TM_ERR_INPUT, "%s: general.alignment must be a u32 power of two <= 4096", g->what);
        else align = a->v.u;
    }
    if (!st) st = parse_tensors(g, &c, n_t, align);
    if (st) { tm_gguf_destroy(g); return st; }
    *out = g;
    return TM_OK;
}

tm_status tm_gguf_open(const char *path, tm_gguf **out, tm_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tm_errf(err, errno == ENOENT ? TM_ERR_NOTFOUND : TM_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        close(fd);
        return tm_errf(err, TM_ERR_INPUT, "%s: not a regular file", path);
    }
    size_t len = (size_t)sb.st_size;
    void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (len && map == MAP_FAILED) return tm_errf(err, TM_ERR_IO, "%s: mmap: %s", path, strerror(errno));
    tm_status st = tm_gguf_parse(map, len, path, out, err);
    if (st) {
        if (map) munmap(map, len);
        return st;
    }
    (*out)->map = map;
    (*out)->map_len = len;
    return TM_OK;
}

void tm_gguf_destroy(tm_gguf *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->n_kv; i++) {
        free((char *)g->kvs[i].key);
        free((void *)g->kvs[i].val.str_offsets);
    }
    free(g->kvs);
    free(g->kv_sorted);
    free(g->tensors);
    free(g->t_sorted);
    if (g->map) munmap(g->map, g->map_len);
    free(g->what);
    free(g);
}

const char *tm_gguf_path(const tm_gguf *g) { return g->what; }
uint32_t tm_gguf_version(const tm_gguf *g) { return g->version; }
size_t tm_gguf_kv_count(const tm_gguf *g) { return g->n_kv; }
const char *tm_gguf_kv_key(const tm_gguf *g, size_t i) { return i < g->n_kv ? g->kvs[i].key : NULL; }
const tm_gguf_value *tm_gguf_kv_at(const tm_gguf *g, size_t i) { return i < g->n_kv ? &g->kvs[i].val : NULL; }
size_t tm_gguf_tensor_count(const tm_gguf *g) { return g->n_tensors; }
const tm_gguf_tensor *tm_gguf_tensor_at(const tm_gguf *g, size_t i) { return i < g->n_tensors ? &g->tensors[i] : NULL; }

const tm_gguf_value *tm_gguf_get(const tm_gguf *g, const char *key)
{
    size_t lo = 0, hi = g->n_kv;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(g->kvs[g->kv_sorted[mid]].key, key);
        if (!c) return &g->kvs[g->kv_sorted[mid]].val;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

const tm_gguf_tensor *tm_gguf_find(const tm_gguf *g, const char *name)
{
    size_t lo = 0, hi = g->n_tensors;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(g->tensors[g->t_sorted[mid]].name, name);
        if (!c) return &g->tensors[g->t_sorted[mid]];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

static int is_int(tm_gguf_vtype t)
{
    return t == TM_GGUF_U8 || t == TM_GGUF_I8 || t == TM_GGUF_U16 || t == TM_GGUF_I16 || t == TM_GGUF_U32 ||
           t == TM_GGUF_I32 || t == TM_GGUF_U64 || t == TM_GGUF_I64;
}

static tm_status get_typed(const tm_gguf *g, const char *key, const tm_gguf_value **v, tm_err *err)
{
    if (!(*v = tm_gguf_get(g, key))) return tm_errf(err, TM_ERR_NOTFOUND, "%s: metadata '%s' is missing", g->what, key);
    return TM_OK;
}

tm_status tm_gguf_get_int(const tm_gguf *g, const char *key, int64_t *out, tm_err *err)
{
    const tm_gguf_value *v;
    tm_status st = get_typed(g, key, &v, err);
    if (st) return st;
    if (!is_int(v->type) || (v->type == TM_GGUF_U64 && v->v.u > INT64_MAX))
        return tm_errf(err, TM_ERR_INPUT, "%s: metadata '%s' is %s, not an integer in range", g->what, key,
                       k_vname[v->type]);
    *out = v->v.i;
    if (v->type == TM_GGUF_U64) *out = (int64_t)v->v.u;
    return TM_OK;
}

tm_status tm_gguf_get_float(const tm_gguf *g, const char *key, double *out, tm_err *err)
{
    const tm_gguf_value *v;
    tm_status st = get_typed(g, key, &v, err);
    if (st) return st;
    if (v->type == TM_GGUF_U64) { *out = (double)v->v.u; return TM_OK; }
    if (v->type != TM_GGUF_F32 && v->type != TM_GGUF_F64 && !is_int(v->type))
        return tm_errf(err, TM_ERR_INPUT, "%s: metadata '%s' is %s, not a number", g->what, key, k_vname[v->type]);
    *out = v->v.f;
    return TM_OK;
}

tm_status tm_gguf_get_bool(const tm_gguf *g, const char *key, int *out, tm_err *err)
{
    const tm_gguf_value *v;
    tm_status st = get_typed(g, key, &v, err);
    if (st) return st;
    if (v->type != TM_GGUF_BOOL)
        return tm_errf(err, TM_ERR_INPUT, "%s: metadata '%s' is %s, not a bool", g->what, key, k_vname[v->type]);
    *out = v->v.b;
    return TM_OK;
}

tm_status tm_gguf_get_str(const tm_gguf *g, const char *key, tm_gguf_str *out, tm_err *err)
{
    const tm_gguf_value *v;
    tm_status st = get_typed(g, key, &v, err);
    if (st) return st;
    if (v->type != TM_GGUF_STRING)
        return tm_errf(err, TM_ERR_INPUT, "%s: metadata '%s' is %s, not a string", g->what, key, k_vname[v->type]);
    *out = v->v.s;
    return TM_OK;
}

int64_t tm_gguf_arr_int(const tm_gguf_value *v, uint64_t i)
{
    if (v->type != TM_GGUF_ARRAY || i >= v->arr_len || v->arr_type == TM_GGUF_STRING) return 0;
    tm_gguf_value x = {0};
    scalar(v->arr_type, v->arr + i * (uint64_t)k_vsize[v->arr_type], &x);
    return v->arr_type == TM_GGUF_U64 ? (int64_t)x.v.u : v->arr_type == TM_GGUF_F32 || v->arr_type == TM_GGUF_F64
                                                              ? (int64_t)x.v.f : x.v.i;
}

double tm_gguf_arr_float(const tm_gguf_value *v, uint64_t i)
{
    if (v->type != TM_GGUF_ARRAY || i >= v->arr_len || v->arr_type == TM_GGUF_STRING) return 0;
    tm_gguf_value x = {0};
    scalar(v->arr_type, v->arr + i * (uint64_t)k_vsize[v->arr_type], &x);
    return v->arr_type == TM_GGUF_U64 ? (double)x.v.u : x.v.f;
}

tm_gguf_str tm_gguf_arr_str(const tm_gguf_value *v, uint64_t i)
{
    tm_gguf_str s = { "", 0 };
    if (v->type != TM_GGUF_ARRAY || v->arr_type != TM_GGUF_STRING || i >= v->arr_len) return s;
    const unsigned char *p = v->arr + v->str_offsets[i];
    memcpy(&s.len, p, 8);
    s.p = (const char *)p + 8;
    return s;
}
