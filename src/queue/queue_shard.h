/* queue_shard.h — splitting a job into shard databases that run anywhere
 * (other nodes, Slurm array tasks) and merging them back into the origin.
 *
 * SQLite in WAL mode needs one host, so a job spread over many nodes is cut
 * into files: `tokenmill shard` writes N shard databases, each a complete
 * queue (same job id, same request ids and seq, the origin's price
 * profiles) holding a disjoint part of the job's PENDING requests; `tokenmill
 * run --db SHARD` runs one like any queue; `tokenmill merge` brings it back.
 *
 * What goes out: the job's pending requests only (with their checkpoints, so
 * preempted work resumes on the shard). Done, failed, cancelled and running
 * ones stay in the origin: `tokenmill retry JOB` first to send failed ones
 * out too. The job must be queued or in_progress.
 *
 * Balance: by estimated work, not line count: work = body bytes / 4 (a
 * prompt-token estimate) + max_tokens x n (max_tokens absent:
 * TM_QUEUE_SHARD_DEFAULT_MAX_TOKENS), greedy longest-processing-time bin
 * packing (heaviest first, each to the lightest shard; ties: lowest seq,
 * lowest shard). Every one of the N files is written, empty ones included,
 * so array task i always finds shard-<iii>.db.
 *
 * Identity (schemas/migrations/0009_shards.sql): the origin gets a random
 * meta 'db_uuid' the first time it is sharded; each shard gets its own
 * db_uuid, a shard_origin row (origin db_uuid, job id, index, count, shard
 * id) and a shards row in the origin. A merge is refused (TM_ERR_INPUT, the
 * message names both identities) unless the shard's origin db_uuid is this
 * database's AND this database recorded that shard (a copy of the origin
 * taken before sharding has the uuid but not the record).
 *
 * In the origin, a request out on a shard is state 'running' with lease_owner
 * 'shard:<shard id>' and a lease that never expires: no local worker claims
 * or reclaims it, and status counts it as running (it runs elsewhere).
 *
 * Merge (one transaction, the shard ATTACHed, rows copied as stored:
 * compressed results byte for byte):
 *  - workers and runs of the shard: upserted by id (the per-worker cost view
 *    shows who did what);
 *  - each shard request that finished there (done, failed, cancelled,
 *    expired) is taken when the origin still has it out on this shard or
 *    pending (a merged-back request nobody has run since): its row (state,
 *    error, tokens, cost, run id ...) and result replace the origin's, its
 *    origin checkpoint goes;
 *  - every origin request still out on this shard that did not finish there
 *    goes back to pending in the origin, with the shard's checkpoint if it
 *    has one: the rest is runnable locally or re-shardable (a partial merge);
 *  - the job moves on as if one worker had run it (in_progress_at is the
 *    earliest start, completed when nothing is left).
 * Merging the same shard again changes nothing; merging it after its task
 * was requeued and finished more takes what finished since, for requests
 * nobody else ran meanwhile. A shard can itself be sharded (its sub-shards
 * merge into it, then it into its origin).
 */
#ifndef TM_QUEUE_SHARD_H
#define TM_QUEUE_SHARD_H

#include <stdint.h>

#include "queue/queue.h"

#define TM_QUEUE_SHARD_MAX 1024                 /* shards per call */
#define TM_QUEUE_SHARD_DEFAULT_MAX_TOKENS 1024  /* work estimate of a request without max_tokens */
#define TM_QUEUE_SHARD_PATH_MAX 4096

typedef struct tm_queue_shard_out {
    char path[TM_QUEUE_SHARD_PATH_MAX]; /* DIR/shard-000.db ... */
    char id[TM_QUEUE_ID_MAX];           /* 'shard_' + 32 hex */
    int64_t requests;                   /* requests moved to it */
    int64_t work;                       /* their estimated work */
} tm_queue_shard_out;

/* Write n (1..TM_QUEUE_SHARD_MAX) shard databases DIR/shard-000.db ... of
 * job_id's pending requests (out[0..n-1] filled). DIR is created if missing;
 * an existing shard file is refused (TM_ERR_USAGE) before anything is
 * written. One transaction per shard: a request claimed locally meanwhile
 * stays local. Unknown job: TM_ERR_NOTFOUND; a job not queued/in_progress:
 * TM_ERR_INPUT. */
tm_status tm_queue_shard(tm_queue *q, const char *job_id, int n, const char *dir, tm_queue_shard_out *out,
                         tm_err *err);

typedef struct tm_queue_merge_out {
    char shard_id[TM_QUEUE_ID_MAX];
    char job_id[TM_QUEUE_ID_MAX];
    int shard_index, shard_count;
    int64_t taken;      /* finished requests taken from the shard by this merge */
    int64_t returned;   /* unfinished ones put back to pending here */
    int64_t unfinished; /* requests not finished in the shard */
    int64_t runs;       /* the shard's runs (upserted) */
} tm_queue_merge_out;

/* Merge the shard database at path into q (see above). Not a shard, or the
 * wrong origin: TM_ERR_INPUT naming both identities. */
tm_status tm_queue_merge(tm_queue *q, const char *path, tm_queue_merge_out *out, tm_err *err);

/* This database's meta 'db_uuid' into out ("" when it has none). */
tm_status tm_queue_db_uuid(tm_queue *q, char out[TM_QUEUE_ID_MAX], tm_err *err);

#endif
