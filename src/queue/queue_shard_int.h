/* queue_shard_int.h — private to queue_shard.c / queue_merge.c: the SQL
 * helpers both use (an ATTACHed database, column lists built from the
 * schema so copies stay right when later migrations add columns). */
#ifndef TM_QUEUE_SHARD_INT_H
#define TM_QUEUE_SHARD_INT_H

#include "queue/queue_int.h"
#include "queue/queue_shard.h"
#include "util/buf.h"

#define TM_SHARD_OWNER_PREFIX "shard:"
#define TM_SHARD_LEASE_FOREVER 32503680000.0 /* year 3000: never reclaimed */

/* Column lists of table (as schema main has it; both files run the same
 * migrations) into b, names quoted: mode 0 `"a", "b"`, mode 1
 * `"a"=excluded."a", ...`. Names in skip (NULL-terminated, may be NULL)
 * are left out. */
tm_status tm_shard_cols(tm_queue *q, const char *table, int mode, const char *const *skip, tm_buf *b, tm_err *err);

/* Run sql built in b (printf-style; the only variable parts are our own
 * column lists) with ?1.. bound as text from args (n of them); *changes
 * gets sqlite3_changes (may be NULL). */
tm_status tm_shard_run(tm_queue *q, const char *sql, const char *const *args, int n, int *changes, tm_err *err);

/* One integer from a query with text args (0 when no row). */
tm_status tm_shard_int(tm_queue *q, const char *sql, const char *const *args, int n, int64_t *out, tm_err *err);

/* ATTACH path AS shard / DETACH it. */
tm_status tm_shard_attach(tm_queue *q, const char *path, tm_err *err);
void tm_shard_detach(tm_queue *q);

/* The meta 'db_uuid' of schema ("main" or "shard") into out ("" if none). */
tm_status tm_shard_uuid_of(tm_queue *q, const char *schema, char out[TM_QUEUE_ID_MAX], tm_err *err);

#endif
