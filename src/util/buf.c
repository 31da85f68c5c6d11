/* buf.c — growable byte buffer and whole-file reads. */
#include "util/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tm_buf_init(tm_buf *b) { b->data = NULL; b->len = 0; b->cap = 0; }

void tm_buf_free(tm_buf *b)
{
    if (!b) return;
    free(b->data);
    tm_buf_init(b);
}

void tm_buf_clear(tm_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

tm_status tm_buf_reserve(tm_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1) return TM_ERR_NOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return TM_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p) return TM_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return TM_OK;
}

tm_status tm_buf_append(tm_buf *b, const void *p, size_t n)
{
    tm_status s = tm_buf_reserve(b, n);
    if (s) return s;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return TM_OK;
}

tm_status tm_buf_puts(tm_buf *b, const char *s) { return tm_buf_append(b, s, strlen(s)); }

tm_status tm_buf_printf(tm_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return TM_ERR_INTERNAL;
    tm_status s = tm_buf_reserve(b, (size_t)n);
    if (s) return s;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return TM_OK;
}

tm_status tm_read_file(const char *path, size_t max_bytes, tm_buf *b, tm_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return tm_errf(err, TM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    tm_buf_clear(b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b->len + n > max_bytes) {
            fclose(f);
            return tm_errf(err, TM_ERR_INPUT, "%s: file larger than %zu bytes", path, max_bytes);
        }
        if (tm_buf_append(b, chunk, n)) {
            fclose(f);
            return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", path);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return tm_errf(err, TM_ERR_IO, "%s: read error", path);
    if (!b->data && tm_buf_reserve(b, 0)) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    b->data[b->len] = 0;
    return TM_OK;
}

tm_status tm_path_join(char *out, size_t outsz, const char *dir, const char *name, tm_err *err)
{
    size_t dl = strlen(dir);
    int slash = dl > 0 && dir[dl - 1] == '/';
    int n = snprintf(out, outsz, "%s%s%s", dir, slash ? "" : "/", name);
    if (n < 0 || (size_t)n >= outsz)
        return tm_errf(err, TM_ERR_INPUT, "path too long: %s/%s", dir, name);
    return TM_OK;
}
