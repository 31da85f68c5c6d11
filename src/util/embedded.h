/* embedded.h — files compiled into the binary (cmake/embed.cmake).
 *
 * tm_migrations: schemas/migrations/NNNN_*.sql, sorted by name; the queue
 * applies those newer than the DB's user_version on open.
 */
#ifndef TM_EMBEDDED_H
#define TM_EMBEDDED_H

#include <stddef.h>

typedef struct tm_embedded_file {
    const char *name; /* base name, e.g. "0001_init.sql" */
    const char *data; /* NUL-terminated */
    size_t len;       /* without the NUL */
} tm_embedded_file;

extern const tm_embedded_file tm_migrations[];
extern const size_t tm_migrations_count;

#endif
