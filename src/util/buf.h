/* buf.h — a growable byte buffer (and small string helpers).
 *
 * Used off the hot path: building JSON/SQL parameters, reading small files.
 * Growth is geometric; every function reports allocation failure.
 */
#ifndef TM_BUF_H
#define TM_BUF_H

#include <stddef.h>
#include <stdint.h>
#include "util/status.h"

typedef struct tm_buf {
    char *data;   /* always NUL-terminated when len < cap */
    size_t len;
    size_t cap;
} tm_buf;

void tm_buf_init(tm_buf *b);
void tm_buf_free(tm_buf *b);
void tm_buf_clear(tm_buf *b);
tm_status tm_buf_reserve(tm_buf *b, size_t extra);
tm_status tm_buf_append(tm_buf *b, const void *p, size_t n);
tm_status tm_buf_puts(tm_buf *b, const char *s);
tm_status tm_buf_printf(tm_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Read a whole file (at most max_bytes, else TM_ERR_INPUT) into b. */
tm_status tm_read_file(const char *path, size_t max_bytes, tm_buf *b, tm_err *err);

/* Join dir and name with one '/' into out (size outsz). */
tm_status tm_path_join(char *out, size_t outsz, const char *dir, const char *name, tm_err *err);

#endif
