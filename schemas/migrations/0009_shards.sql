-- 0009_shards.sql — shard databases (`tokenmill shard`) and merging them back
-- (`tokenmill merge`); src/queue/queue_shard.h documents the protocol.
--   meta:         key/value facts about this database file. 'db_uuid': a
--                 random identity ('db_' + 32 hex), made the first time the
--                 file is sharded or merged into (a copy of the file carries
--                 it, so shards also check shards below).
--   shards:       in an origin database, one row per shard written from it.
--                 Its requests are marked in requests: state 'running',
--                 lease_owner 'shard:' || shards.id, lease_expires far in the
--                 future (no local worker claims or reclaims them) until a
--                 merge brings them back.
--                 state: 'out' (written), 'merged' (every request came back
--                 finished), 'partial' (merged; the unfinished ones went back
--                 to pending here). requests: how many went out; work: their
--                 estimated work (prompt bytes / 4 + max_tokens x n).
--                 merged_requests: finished requests taken back so far.
--   shard_origin: in a shard database, its one row: where it came from.
CREATE TABLE meta (
    key               TEXT PRIMARY KEY,
    value             TEXT NOT NULL
);
CREATE TABLE shards (
    id                TEXT PRIMARY KEY,             -- 'shard_' + 32 hex
    job_id            TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    shard_index       INTEGER NOT NULL,             -- 0 .. shard_count - 1
    shard_count       INTEGER NOT NULL,
    path              TEXT NOT NULL,                -- as given to `tokenmill shard --dir`
    state             TEXT NOT NULL DEFAULT 'out' CHECK (state IN ('out','merged','partial')),
    requests          INTEGER NOT NULL DEFAULT 0,
    work              INTEGER NOT NULL DEFAULT 0,
    merged_requests   INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    merged_at         INTEGER                       -- last merge that changed something
);
CREATE INDEX shards_job ON shards(job_id);
CREATE TABLE shard_origin (
    shard_id          TEXT PRIMARY KEY,             -- = shards.id in the origin
    origin_db_uuid    TEXT NOT NULL,                -- the origin's meta 'db_uuid'
    origin_job_id     TEXT NOT NULL,                -- the job (same id in both files)
    shard_index       INTEGER NOT NULL,
    shard_count       INTEGER NOT NULL,
    created_at        INTEGER NOT NULL
);
