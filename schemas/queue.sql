-- queue.sql — the tokenmill queue's schema as its migrations build it, in
-- order, with comments (for humans).
--
-- The DB is what `tokenmill submit` writes and `tokenmill run` claims from;
-- anyone may query it (`sqlite3 tokenmill.db 'select * from job_costs'`).
-- The build does NOT read this file: it embeds schemas/migrations/NNNN_*.sql
-- and src/queue/queue.c applies those newer than PRAGMA user_version (= the
-- number of applied migrations), one transaction each. This file is those
-- migrations in order (0001_init, 0002_indexes_cost_views, 0003_cost_views,
-- 0004_checkpoints_runs, 0005_cost_wasted, 0006_submit_chunks, 0007_job_counters, 0008_models, 0009_shards); keep it in step. It is not one
-- CREATE per table: the tables as 0001/0002 created them come first, and the
-- later migrations' ALTER TABLE ... ADD COLUMN and view re-creations follow
-- in their "==== NNNN" sections, so a table's current columns are its CREATE
-- TABLE plus the ALTERs below it. Run on an empty DB it gives the same tables,
-- columns, indexes and views as the migrations do.
-- Connections use WAL mode, foreign_keys=ON, busy_timeout 10 s.
-- Times are unix seconds (INTEGER) except lease_expires (REAL, sub-second).

-- One submission. Lifecycle (OpenAI batch states):
--   validating -> queued -> in_progress -> completed        (nothing pending/running left)
--                                       -> expired          (completion window passed)
--   queued|in_progress -> cancelling -> cancelled           (tokenmill cancel; once nothing runs)
--   validating -> failed   (--on-invalid skip and not one valid line)
--   validating: rows are inserted in chunks; a rejected, failed or killed
--   submission's rows are deleted (by it, or by the next command, 0006).
--   finalizing is set (finalizing_at) on the way to completed.
CREATE TABLE jobs (
    seq               INTEGER PRIMARY KEY,          -- submission order (claim order within a priority)
    id                TEXT NOT NULL UNIQUE,         -- 'job_' + 32 random hex digits
    name              TEXT,                         -- --name
    model             TEXT,                         -- --model: default for requests without body.model
    endpoint          TEXT,                         -- url of the first request ('/v1/chat/completions' ...)
    state             TEXT NOT NULL DEFAULT 'validating' CHECK (state IN
                      ('validating','queued','in_progress','finalizing','completed',
                       'failed','cancelling','cancelled','expired')),
    priority          INTEGER NOT NULL DEFAULT 0,   -- higher is claimed first
    metadata          TEXT NOT NULL DEFAULT '{}',   -- JSON object of --metadata k=v (<= 16 keys)
    on_invalid        TEXT NOT NULL DEFAULT 'reject', -- 'reject' | 'skip'
    completion_window INTEGER NOT NULL DEFAULT 86400, -- seconds; expires_at = created_at + this
    created_at        INTEGER NOT NULL,
    in_progress_at    INTEGER,                      -- first claim
    finalizing_at     INTEGER,
    completed_at      INTEGER,
    failed_at         INTEGER,
    expired_at        INTEGER,
    cancelling_at     INTEGER,
    cancelled_at      INTEGER,
    expires_at        INTEGER                       -- pending requests after this become 'expired'
);
CREATE INDEX jobs_state_priority ON jobs(state, priority);

-- One input line. States: pending -> running (claimed with a lease) -> done | failed;
-- running -> pending (released, or lease expired and reclaimed);
-- pending -> cancelled (tokenmill cancel) | expired (completion window passed).
CREATE TABLE requests (
    seq               INTEGER PRIMARY KEY,          -- submission order
    id                TEXT NOT NULL UNIQUE,         -- 'req_' + 32 hex; output line id is 'batch_req_' + the same hex
    job_id            TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    custom_id         TEXT,                         -- the line's custom_id (NULL if unreadable on an invalid line)
    invalid           INTEGER NOT NULL DEFAULT 0,   -- 1: an invalid line kept by --on-invalid skip (state failed)
    source            TEXT NOT NULL,                -- file name, or 'archive.tar:member.jsonl', or '<stdin>'
    line              INTEGER NOT NULL,             -- 1-based line number in source
    method            TEXT NOT NULL DEFAULT 'POST',
    url               TEXT,                         -- endpoint, '/v1/chat/completions' | '/v1/completions'
    model             TEXT,                         -- body.model or the job's default
    body              TEXT,                         -- request body JSON (compact)
    max_tokens        INTEGER,                      -- max_completion_tokens / max_tokens; NULL if absent
    n                 INTEGER NOT NULL DEFAULT 1,
    state             TEXT NOT NULL DEFAULT 'pending' CHECK (state IN
                      ('pending','running','done','failed','cancelled','expired')),
    error             TEXT,                         -- JSON {"code":..., "message":...} when failed/cancelled/expired
    lease_owner       TEXT,                         -- worker holding the claim (unique per process)
    lease_expires     REAL,                         -- unix seconds; past it the request may be reclaimed
    attempts          INTEGER NOT NULL DEFAULT 0,   -- times claimed
    created_at        INTEGER NOT NULL,
    started_at        INTEGER,                      -- first claim
    finished_at       INTEGER,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,   -- prompt tokens served from the prefix cache
    gpu_seconds       REAL,                         -- cost columns: NULL until the worker attributes them
    energy_joules     REAL,
    cost_usd          REAL
);
CREATE UNIQUE INDEX requests_custom_id ON requests(job_id, custom_id) WHERE invalid = 0;
CREATE INDEX requests_job_state ON requests(job_id, state);
CREATE INDEX requests_lease ON requests(lease_expires) WHERE state = 'running';

-- The response of a done request: the response body JSON (chat.completion /
-- text_completion object with usage), zstd-compressed (one frame).
CREATE TABLE results (
    request_id        TEXT PRIMARY KEY REFERENCES requests(id) ON DELETE CASCADE,
    response_zstd     BLOB NOT NULL,
    response_size     INTEGER NOT NULL,             -- uncompressed bytes
    created_at        INTEGER NOT NULL
);

-- Progress of a running request saved at preemption (filled by the worker).
CREATE TABLE checkpoints (
    request_id        TEXT PRIMARY KEY REFERENCES requests(id) ON DELETE CASCADE,
    worker_id         TEXT,
    tokens_done       INTEGER NOT NULL DEFAULT 0,
    state_zstd        BLOB,                         -- generated ids, sampler state (worker's format)
    created_at        INTEGER NOT NULL
);

-- A `tokenmill run` process (filled by the worker).
CREATE TABLE workers (
    id                TEXT PRIMARY KEY,             -- also its lease owner string
    host              TEXT,
    pid               INTEGER,
    device            TEXT,                         -- 'cpu' | GPU name
    state             TEXT,
    started_at        INTEGER NOT NULL,
    heartbeat_at      INTEGER
);

-- One run of a worker, with what it did and cost (filled by the worker).
CREATE TABLE runs (
    id                TEXT PRIMARY KEY,
    worker_id         TEXT REFERENCES workers(id) ON DELETE SET NULL,
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    exit_code         INTEGER,
    device            TEXT,
    price_profile     TEXT,                         -- prices.name used
    requests_done     INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    gpu_seconds       REAL,
    energy_joules     REAL,
    cost_usd          REAL
);

-- Price profiles (e.g. 'h200-spot': 2.10 USD/GPU-hour, 0.15 USD/kWh).
CREATE TABLE prices (
    name              TEXT PRIMARY KEY,
    usd_per_gpu_hour  REAL,
    usd_per_kwh       REAL,
    description       TEXT,
    created_at        INTEGER NOT NULL
);

-- Per-request cost (NULL cost columns until attributed).
CREATE VIEW request_costs AS
SELECT r.id AS request_id, r.job_id, r.custom_id, r.prompt_tokens, r.completion_tokens,
       r.cached_tokens, r.gpu_seconds, r.energy_joules, r.cost_usd
FROM requests r;

-- Per-job cost. Sums are 0 on empty data; the ratios are the job's whole cost
-- divided by its input / output / all tokens (per million), NULL when the
-- divisor is 0 or no cost is recorded; tokens_per_usd = all tokens / cost.
CREATE VIEW job_costs AS
SELECT j.id AS job_id, j.name, j.model,
       COUNT(r.seq) AS requests,
       COALESCE(SUM(r.prompt_tokens), 0) AS prompt_tokens,
       COALESCE(SUM(r.completion_tokens), 0) AS completion_tokens,
       COALESCE(SUM(r.cached_tokens), 0) AS cached_tokens,
       COALESCE(SUM(r.gpu_seconds), 0.0) AS gpu_seconds,
       COALESCE(SUM(r.energy_joules), 0.0) / 3.6e6 AS kwh,
       COALESCE(SUM(r.cost_usd), 0.0) AS cost_usd,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens), 0) AS usd_per_1m_input,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.completion_tokens), 0) AS usd_per_1m_output,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens) + SUM(r.completion_tokens), 0) AS usd_per_1m_total,
       (SUM(r.prompt_tokens) + SUM(r.completion_tokens)) / NULLIF(SUM(r.cost_usd), 0.0) AS tokens_per_usd
FROM jobs j LEFT JOIN requests r ON r.job_id = j.id
GROUP BY j.id;

-- ==== 0003_cost_views (cost accounting; appended as the migration applies it) ====
-- 0003_cost_views.sql — cost accounting: price profile details, run-level cost
-- columns, example price profiles, and the cost views (job/day/model/worker).
-- Applied on top of 0001..0002. Every cost view has the same measure columns:
--   requests, prompt_tokens, completion_tokens, total_tokens (0 on no data),
--   gpu_seconds (0.0 on no data), kwh (sum over the rows whose energy was
--   measured through NVML; NULL when none was: unknown is never shown as 0),
--   cost_usd (0.0 on no data), usd_per_1m_input / usd_per_1m_output /
--   usd_per_1m_total (cost * 1e6 / tokens; NULL when tokens are 0 or no cost
--   is recorded), tokens_per_usd (total tokens / cost; NULL when cost is 0/NULL).

-- prices: which GPU and which purchase profile a price is for.
ALTER TABLE prices ADD COLUMN gpu TEXT;      -- 'H100', 'A100', 'cpu', ...
ALTER TABLE prices ADD COLUMN profile TEXT;  -- 'on-demand' | 'spot' | 'reserved' (free text)

-- runs: the price actually used (a profile can change later), the model served,
-- and the seconds not attributed to requests (model load, idle, checkpointing).
-- runs.gpu_seconds / energy_joules / cost_usd are whole-run totals incl. overhead.
ALTER TABLE runs ADD COLUMN model TEXT;
ALTER TABLE runs ADD COLUMN price_usd_per_hour REAL;
ALTER TABLE runs ADD COLUMN price_usd_per_kwh REAL;
ALTER TABLE runs ADD COLUMN overhead_seconds REAL;

-- (The migration also inserts example price profiles h100-ondemand $3.00,
-- h100-premium $4.00, a100-ondemand $2.50, cpu $0.10 per GPU-hour.)
-- Example price profiles (illustrative list prices, not quotes; edit with
-- `tokenmill prices set`). h100-ondemand: an 8xH100 node at $24/h = $3/GPU-h.
-- cpu: a 2-core VM-ish figure. Inserted once, by this migration.

-- job_costs from 0002 reported kwh 0 when no energy was measured; it is NULL
-- now, and total_tokens is added (after cached_tokens).
DROP VIEW job_costs;
CREATE VIEW job_costs AS
SELECT j.id AS job_id, j.name AS name, j.model AS model,
       COUNT(r.seq) AS requests,
       COALESCE(SUM(r.prompt_tokens), 0) AS prompt_tokens,
       COALESCE(SUM(r.completion_tokens), 0) AS completion_tokens,
       COALESCE(SUM(r.cached_tokens), 0) AS cached_tokens,
       COALESCE(SUM(r.prompt_tokens + r.completion_tokens), 0) AS total_tokens,
       COALESCE(SUM(r.gpu_seconds), 0.0) AS gpu_seconds,
       SUM(r.energy_joules) / 3.6e6 AS kwh,
       COALESCE(SUM(r.cost_usd), 0.0) AS cost_usd,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens), 0) AS usd_per_1m_input,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.completion_tokens), 0) AS usd_per_1m_output,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens) + SUM(r.completion_tokens), 0) AS usd_per_1m_total,
       (SUM(r.prompt_tokens) + SUM(r.completion_tokens)) / NULLIF(SUM(r.cost_usd), 0.0) AS tokens_per_usd
FROM jobs j LEFT JOIN requests r ON r.job_id = j.id
GROUP BY j.id;

-- Per UTC day of finished_at (done/failed requests only), day = 'YYYY-MM-DD'.
CREATE VIEW daily_costs AS
SELECT date(r.finished_at, 'unixepoch') AS day,
       COUNT(*) AS requests,
       COALESCE(SUM(r.prompt_tokens), 0) AS prompt_tokens,
       COALESCE(SUM(r.completion_tokens), 0) AS completion_tokens,
       COALESCE(SUM(r.prompt_tokens + r.completion_tokens), 0) AS total_tokens,
       COALESCE(SUM(r.gpu_seconds), 0.0) AS gpu_seconds,
       SUM(r.energy_joules) / 3.6e6 AS kwh,
       COALESCE(SUM(r.cost_usd), 0.0) AS cost_usd,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens), 0) AS usd_per_1m_input,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.completion_tokens), 0) AS usd_per_1m_output,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens + r.completion_tokens), 0) AS usd_per_1m_total,
       SUM(r.prompt_tokens + r.completion_tokens) / NULLIF(SUM(r.cost_usd), 0.0) AS tokens_per_usd
FROM requests r
WHERE r.finished_at IS NOT NULL
GROUP BY day;

-- Per model (request's body.model, else its job's --model, else '(none)').
CREATE VIEW model_costs AS
SELECT COALESCE(r.model, j.model, '(none)') AS model,
       COUNT(*) AS requests,
       COALESCE(SUM(r.prompt_tokens), 0) AS prompt_tokens,
       COALESCE(SUM(r.completion_tokens), 0) AS completion_tokens,
       COALESCE(SUM(r.prompt_tokens + r.completion_tokens), 0) AS total_tokens,
       COALESCE(SUM(r.gpu_seconds), 0.0) AS gpu_seconds,
       SUM(r.energy_joules) / 3.6e6 AS kwh,
       COALESCE(SUM(r.cost_usd), 0.0) AS cost_usd,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens), 0) AS usd_per_1m_input,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.completion_tokens), 0) AS usd_per_1m_output,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens + r.completion_tokens), 0) AS usd_per_1m_total,
       SUM(r.prompt_tokens + r.completion_tokens) / NULLIF(SUM(r.cost_usd), 0.0) AS tokens_per_usd
FROM requests r JOIN jobs j ON j.id = r.job_id
WHERE r.finished_at IS NOT NULL
GROUP BY 1;

-- Per worker, from its runs (whole-run totals, so overhead is included;
-- overhead_seconds / overhead_usd show that part). requests = requests_done.
CREATE VIEW worker_costs AS
SELECT COALESCE(u.worker_id, '(unknown)') AS worker,
       COALESCE(SUM(u.requests_done), 0) AS requests,
       COALESCE(SUM(u.prompt_tokens), 0) AS prompt_tokens,
       COALESCE(SUM(u.completion_tokens), 0) AS completion_tokens,
       COALESCE(SUM(u.prompt_tokens + u.completion_tokens), 0) AS total_tokens,
       COALESCE(SUM(u.gpu_seconds), 0.0) AS gpu_seconds,
       SUM(u.energy_joules) / 3.6e6 AS kwh,
       COALESCE(SUM(u.cost_usd), 0.0) AS cost_usd,
       SUM(u.cost_usd) * 1e6 / NULLIF(SUM(u.prompt_tokens), 0) AS usd_per_1m_input,
       SUM(u.cost_usd) * 1e6 / NULLIF(SUM(u.completion_tokens), 0) AS usd_per_1m_output,
       SUM(u.cost_usd) * 1e6 / NULLIF(SUM(u.prompt_tokens + u.completion_tokens), 0) AS usd_per_1m_total,
       SUM(u.prompt_tokens + u.completion_tokens) / NULLIF(SUM(u.cost_usd), 0.0) AS tokens_per_usd,
       COUNT(*) AS runs,
       COALESCE(SUM(u.overhead_seconds), 0.0) AS overhead_seconds,
       COALESCE(SUM(u.overhead_seconds * u.price_usd_per_hour / 3600.0), 0.0) AS overhead_usd
FROM runs u
GROUP BY 1;

-- ==== 0004_checkpoints_runs (preemption-safe runs; appended as the migration applies it) ====
-- runs.end_reason: why the run ended: 'empty' (nothing left), 'time_limit',
-- 'signal:SIGTERM' / 'signal:SIGUSR1' / ..., 'notice:aws' / 'notice:gcp' /
-- 'notice:url' / 'notice:file', 'error', 'lost' (died without saying; set when
-- another worker finds its heartbeat older than its lease).
ALTER TABLE runs ADD COLUMN end_reason TEXT;
ALTER TABLE runs ADD COLUMN requests_checkpointed INTEGER NOT NULL DEFAULT 0; -- checkpointed + released at the end
-- workers: lease length (heartbeat older than this = dead), state
-- ('starting' | 'running' | 'draining' | 'stopped' | 'lost'), requests held.
ALTER TABLE workers ADD COLUMN lease_seconds REAL;
ALTER TABLE workers ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0;
-- requests.run_id: the run that stored the result. wasted_seconds / wasted_usd:
-- the part of gpu_seconds / cost_usd spent recomputing work already done once
-- (resume after a preemption; KV preemption by recompute).
ALTER TABLE requests ADD COLUMN run_id TEXT;
ALTER TABLE requests ADD COLUMN wasted_seconds REAL;
ALTER TABLE requests ADD COLUMN wasted_usd REAL;
-- checkpoints: one row per in-flight request that has generated tokens,
-- written every --checkpoint-every seconds and when a run stops, guarded by
-- the lease; deleted in the transaction that stores the result.
--   tokens_done: tokens generated so far (all choices) = the sampler position
--   state_zstd:  zstd of the binary state documented in src/worker/checkpoint.h
--   run_id:      the run that wrote it
--   gpu_seconds, cost_usd: charged so far over every attempt (carried into the result)
ALTER TABLE checkpoints ADD COLUMN run_id TEXT;
ALTER TABLE checkpoints ADD COLUMN gpu_seconds REAL;
ALTER TABLE checkpoints ADD COLUMN cost_usd REAL;
CREATE INDEX runs_worker ON runs(worker_id);

-- ==== 0005_cost_wasted (wasted share in the cost views; appended as the migration applies it) ====
-- 0005_cost_wasted.sql — the wasted share in the cost views. Applied on top
-- of 0001..0004 (0004 added requests.run_id / wasted_seconds / wasted_usd).
-- Every view keeps its columns, names and order, and gains new ones at the end:
--   request_costs: wasted_seconds, wasted_usd (the part of gpu_seconds /
--     cost_usd spent recomputing work already done once: resume after a
--     preemption, KV preemption by recompute; NULL when not recorded),
--     run_id (the run that stored the result; NULL before 0004).
--   job_costs, daily_costs, model_costs, worker_costs: wasted_gpu_seconds and
--     wasted_usd (sums; 0.0 on no data or when not recorded), wasted_share
--     (wasted_usd / cost_usd; NULL when cost_usd is 0 or NULL).
-- A request that ran twice is charged for both attempts (its gpu_seconds and
-- cost_usd include them), so wasted_share is a share of what was paid.
-- worker_costs counts the waste of the requests each of its runs stored
-- (requests.run_id): the recomputation happens in the run that resumed them.

DROP VIEW request_costs;
CREATE VIEW request_costs AS
SELECT r.id                AS request_id,
       r.job_id            AS job_id,
       r.custom_id         AS custom_id,
       r.prompt_tokens     AS prompt_tokens,
       r.completion_tokens AS completion_tokens,
       r.cached_tokens     AS cached_tokens,
       r.gpu_seconds       AS gpu_seconds,
       r.energy_joules     AS energy_joules,
       r.cost_usd          AS cost_usd,
       r.wasted_seconds    AS wasted_seconds,
       r.wasted_usd        AS wasted_usd,
       r.run_id            AS run_id
FROM requests r;

DROP VIEW job_costs;
CREATE VIEW job_costs AS
SELECT j.id AS job_id, j.name AS name, j.model AS model,
       COUNT(r.seq) AS requests,
       COALESCE(SUM(r.prompt_tokens), 0) AS prompt_tokens,
       COALESCE(SUM(r.completion_tokens), 0) AS completion_tokens,
       COALESCE(SUM(r.cached_tokens), 0) AS cached_tokens,
       COALESCE(SUM(r.prompt_tokens + r.completion_tokens), 0) AS total_tokens,
       COALESCE(SUM(r.gpu_seconds), 0.0) AS gpu_seconds,
       SUM(r.energy_joules) / 3.6e6 AS kwh,
       COALESCE(SUM(r.cost_usd), 0.0) AS cost_usd,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens), 0) AS usd_per_1m_input,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.completion_tokens), 0) AS usd_per_1m_output,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens) + SUM(r.completion_tokens), 0) AS usd_per_1m_total,
       (SUM(r.prompt_tokens) + SUM(r.completion_tokens)) / NULLIF(SUM(r.cost_usd), 0.0) AS tokens_per_usd,
       COALESCE(SUM(r.wasted_seconds), 0.0) AS wasted_gpu_seconds,
       COALESCE(SUM(r.wasted_usd), 0.0) AS wasted_usd,
       COALESCE(SUM(r.wasted_usd), 0.0) / NULLIF(SUM(r.cost_usd), 0.0) AS wasted_share
FROM jobs j LEFT JOIN requests r ON r.job_id = j.id
GROUP BY j.id;

DROP VIEW daily_costs;
CREATE VIEW daily_costs AS
SELECT date(r.finished_at, 'unixepoch') AS day,
       COUNT(*) AS requests,
       COALESCE(SUM(r.prompt_tokens), 0) AS prompt_tokens,
       COALESCE(SUM(r.completion_tokens), 0) AS completion_tokens,
       COALESCE(SUM(r.prompt_tokens + r.completion_tokens), 0) AS total_tokens,
       COALESCE(SUM(r.gpu_seconds), 0.0) AS gpu_seconds,
       SUM(r.energy_joules) / 3.6e6 AS kwh,
       COALESCE(SUM(r.cost_usd), 0.0) AS cost_usd,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens), 0) AS usd_per_1m_input,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.completion_tokens), 0) AS usd_per_1m_output,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens + r.completion_tokens), 0) AS usd_per_1m_total,
       SUM(r.prompt_tokens + r.completion_tokens) / NULLIF(SUM(r.cost_usd), 0.0) AS tokens_per_usd,
       COALESCE(SUM(r.wasted_seconds), 0.0) AS wasted_gpu_seconds,
       COALESCE(SUM(r.wasted_usd), 0.0) AS wasted_usd,
       COALESCE(SUM(r.wasted_usd), 0.0) / NULLIF(SUM(r.cost_usd), 0.0) AS wasted_share
FROM requests r
WHERE r.finished_at IS NOT NULL
GROUP BY day;

DROP VIEW model_costs;
CREATE VIEW model_costs AS
SELECT COALESCE(r.model, j.model, '(none)') AS model,
       COUNT(*) AS requests,
       COALESCE(SUM(r.prompt_tokens), 0) AS prompt_tokens,
       COALESCE(SUM(r.completion_tokens), 0) AS completion_tokens,
       COALESCE(SUM(r.prompt_tokens + r.completion_tokens), 0) AS total_tokens,
       COALESCE(SUM(r.gpu_seconds), 0.0) AS gpu_seconds,
       SUM(r.energy_joules) / 3.6e6 AS kwh,
       COALESCE(SUM(r.cost_usd), 0.0) AS cost_usd,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens), 0) AS usd_per_1m_input,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.completion_tokens), 0) AS usd_per_1m_output,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens + r.completion_tokens), 0) AS usd_per_1m_total,
       SUM(r.prompt_tokens + r.completion_tokens) / NULLIF(SUM(r.cost_usd), 0.0) AS tokens_per_usd,
       COALESCE(SUM(r.wasted_seconds), 0.0) AS wasted_gpu_seconds,
       COALESCE(SUM(r.wasted_usd), 0.0) AS wasted_usd,
       COALESCE(SUM(r.wasted_usd), 0.0) / NULLIF(SUM(r.cost_usd), 0.0) AS wasted_share
FROM requests r JOIN jobs j ON j.id = r.job_id
WHERE r.finished_at IS NOT NULL
GROUP BY 1;

-- Per worker, from its runs (whole-run totals, overhead included); the waste
-- of the requests its runs stored. wasted_share is of the whole-run cost.
DROP VIEW worker_costs;
CREATE VIEW worker_costs AS
SELECT COALESCE(u.worker_id, '(unknown)') AS worker,
       COALESCE(SUM(u.requests_done), 0) AS requests,
       COALESCE(SUM(u.prompt_tokens), 0) AS prompt_tokens,
       COALESCE(SUM(u.completion_tokens), 0) AS completion_tokens,
       COALESCE(SUM(u.prompt_tokens + u.completion_tokens), 0) AS total_tokens,
       COALESCE(SUM(u.gpu_seconds), 0.0) AS gpu_seconds,
       SUM(u.energy_joules) / 3.6e6 AS kwh,
       COALESCE(SUM(u.cost_usd), 0.0) AS cost_usd,
       SUM(u.cost_usd) * 1e6 / NULLIF(SUM(u.prompt_tokens), 0) AS usd_per_1m_input,
       SUM(u.cost_usd) * 1e6 / NULLIF(SUM(u.completion_tokens), 0) AS usd_per_1m_output,
       SUM(u.cost_usd) * 1e6 / NULLIF(SUM(u.prompt_tokens + u.completion_tokens), 0) AS usd_per_1m_total,
       SUM(u.prompt_tokens + u.completion_tokens) / NULLIF(SUM(u.cost_usd), 0.0) AS tokens_per_usd,
       COUNT(*) AS runs,
       COALESCE(SUM(u.overhead_seconds), 0.0) AS overhead_seconds,
       COALESCE(SUM(u.overhead_seconds * u.price_usd_per_hour / 3600.0), 0.0) AS overhead_usd,
       COALESCE(SUM(w.wasted_seconds), 0.0) AS wasted_gpu_seconds,
       COALESCE(SUM(w.wasted_usd), 0.0) AS wasted_usd,
       COALESCE(SUM(w.wasted_usd), 0.0) / NULLIF(SUM(u.cost_usd), 0.0) AS wasted_share
FROM runs u
LEFT JOIN (SELECT run_id, SUM(wasted_seconds) AS wasted_seconds, SUM(wasted_usd) AS wasted_usd
           FROM requests WHERE run_id IS NOT NULL GROUP BY run_id) w ON w.run_id = u.id
GROUP BY 1;

-- ==== 0006_submit_chunks (chunked submissions; appended as the migration applies it) ====
-- 0006_submit_chunks.sql — a submission is inserted in chunks (one short
-- write transaction each) while its job is 'validating' (invisible to claims
-- and listings), then flipped to queued in one small transaction. These
-- columns let any later command find and remove the rows of a submission
-- whose process died:
--   submitter:           'host:pid:random' of the submitting process while the
--                        job is 'validating' (NULL afterwards and before 0006);
--   submit_heartbeat_at: unix seconds (REAL) of its last committed chunk.
ALTER TABLE jobs ADD COLUMN submitter TEXT;
ALTER TABLE jobs ADD COLUMN submit_heartbeat_at REAL;

-- ==== 0007_job_counters (job counters, cost view indexes; appended as the migration applies it) ====
-- 0007_job_counters.sql — a job's request counts and token/cost sums kept on
-- its jobs row, so status, the worker's cancel check and its progress line
-- read one row instead of counting every request of the job (O(job) per step
-- on a 1M-request job). Applied on top of 0001..0006.
--
-- The counters are maintained by triggers on requests, so every transaction
-- that inserts, deletes or changes the state / token / cost columns of a
-- request (submit, claim, complete, fail, release, reclaim, expire, cancel,
-- retry, purge of a dead submission) updates them in the same transaction:
-- they are exact at every commit. `tm_queue_job_recount` (queue.h) counts
-- them again from requests, for checks.
--   n_pending .. n_expired: requests in each state (total = their sum)
--   sum_*: sums over the job's done and failed requests (NULL columns count 0)
--   n_cost, n_energy: done/failed requests with cost_usd / energy_joules set
ALTER TABLE jobs ADD COLUMN n_pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN n_running INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN n_done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN n_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN n_cancelled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN n_expired INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN sum_prompt_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN sum_completion_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN sum_cached_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN sum_gpu_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN sum_energy_joules REAL NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN sum_cost_usd REAL NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN sum_wasted_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN sum_wasted_usd REAL NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN n_cost INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN n_energy INTEGER NOT NULL DEFAULT 0;

-- Backfill from the requests as they are.
UPDATE jobs SET (n_pending, n_running, n_done, n_failed, n_cancelled, n_expired,
                 sum_prompt_tokens, sum_completion_tokens, sum_cached_tokens, sum_gpu_seconds,
                 sum_energy_joules, sum_cost_usd, sum_wasted_seconds, sum_wasted_usd, n_cost, n_energy) =
    (SELECT COALESCE(SUM(r.state = 'pending'), 0), COALESCE(SUM(r.state = 'running'), 0),
            COALESCE(SUM(r.state = 'done'), 0), COALESCE(SUM(r.state = 'failed'), 0),
            COALESCE(SUM(r.state = 'cancelled'), 0), COALESCE(SUM(r.state = 'expired'), 0),
            COALESCE(SUM(CASE WHEN r.state IN ('done','failed') THEN r.prompt_tokens END), 0),
            COALESCE(SUM(CASE WHEN r.state IN ('done','failed') THEN r.completion_tokens END), 0),
            COALESCE(SUM(CASE WHEN r.state IN ('done','failed') THEN r.cached_tokens END), 0),
            COALESCE(SUM(CASE WHEN r.state IN ('done','failed') THEN r.gpu_seconds END), 0.0),
            COALESCE(SUM(CASE WHEN r.state IN ('done','failed') THEN r.energy_joules END), 0.0),
            COALESCE(SUM(CASE WHEN r.state IN ('done','failed') THEN r.cost_usd END), 0.0),
            COALESCE(SUM(CASE WHEN r.state IN ('done','failed') THEN r.wasted_seconds END), 0.0),
            COALESCE(SUM(CASE WHEN r.state IN ('done','failed') THEN r.wasted_usd END), 0.0),
            COALESCE(SUM(r.state IN ('done','failed') AND r.cost_usd IS NOT NULL), 0),
            COALESCE(SUM(r.state IN ('done','failed') AND r.energy_joules IS NOT NULL), 0)
     FROM requests r WHERE r.job_id = jobs.id);

CREATE TRIGGER requests_count_insert AFTER INSERT ON requests BEGIN
    UPDATE jobs SET n_pending = n_pending + (NEW.state = 'pending'), n_running = n_running + (NEW.state = 'running'),
        n_done = n_done + (NEW.state = 'done'), n_failed = n_failed + (NEW.state = 'failed'),
        n_cancelled = n_cancelled + (NEW.state = 'cancelled'), n_expired = n_expired + (NEW.state = 'expired'),
        sum_prompt_tokens = sum_prompt_tokens + (CASE WHEN NEW.state IN ('done','failed') THEN NEW.prompt_tokens ELSE 0 END),
        sum_completion_tokens = sum_completion_tokens + (CASE WHEN NEW.state IN ('done','failed') THEN NEW.completion_tokens ELSE 0 END),
        sum_cached_tokens = sum_cached_tokens + (CASE WHEN NEW.state IN ('done','failed') THEN NEW.cached_tokens ELSE 0 END),
        sum_gpu_seconds = sum_gpu_seconds + (CASE WHEN NEW.state IN ('done','failed') THEN COALESCE(NEW.gpu_seconds, 0) ELSE 0 END),
        sum_energy_joules = sum_energy_joules + (CASE WHEN NEW.state IN ('done','failed') THEN COALESCE(NEW.energy_joules, 0) ELSE 0 END),
        sum_cost_usd = sum_cost_usd + (CASE WHEN NEW.state IN ('done','failed') THEN COALESCE(NEW.cost_usd, 0) ELSE 0 END),
        sum_wasted_seconds = sum_wasted_seconds + (CASE WHEN NEW.state IN ('done','failed') THEN COALESCE(NEW.wasted_seconds, 0) ELSE 0 END),
        sum_wasted_usd = sum_wasted_usd + (CASE WHEN NEW.state IN ('done','failed') THEN COALESCE(NEW.wasted_usd, 0) ELSE 0 END),
        n_cost = n_cost + (NEW.state IN ('done','failed') AND NEW.cost_usd IS NOT NULL),
        n_energy = n_energy + (NEW.state IN ('done','failed') AND NEW.energy_joules IS NOT NULL)
    WHERE id = NEW.job_id;
END;

CREATE TRIGGER requests_count_delete AFTER DELETE ON requests BEGIN
    UPDATE jobs SET n_pending = n_pending - (OLD.state = 'pending'), n_running = n_running - (OLD.state = 'running'),
        n_done = n_done - (OLD.state = 'done'), n_failed = n_failed - (OLD.state = 'failed'),
        n_cancelled = n_cancelled - (OLD.state = 'cancelled'), n_expired = n_expired - (OLD.state = 'expired'),
        sum_prompt_tokens = sum_prompt_tokens - (CASE WHEN OLD.state IN ('done','failed') THEN OLD.prompt_tokens ELSE 0 END),
        sum_completion_tokens = sum_completion_tokens - (CASE WHEN OLD.state IN ('done','failed') THEN OLD.completion_tokens ELSE 0 END),
        sum_cached_tokens = sum_cached_tokens - (CASE WHEN OLD.state IN ('done','failed') THEN OLD.cached_tokens ELSE 0 END),
        sum_gpu_seconds = sum_gpu_seconds - (CASE WHEN OLD.state IN ('done','failed') THEN COALESCE(OLD.gpu_seconds, 0) ELSE 0 END),
        sum_energy_joules = sum_energy_joules - (CASE WHEN OLD.state IN ('done','failed') THEN COALESCE(OLD.energy_joules, 0) ELSE 0 END),
        sum_cost_usd = sum_cost_usd - (CASE WHEN OLD.state IN ('done','failed') THEN COALESCE(OLD.cost_usd, 0) ELSE 0 END),
        sum_wasted_seconds = sum_wasted_seconds - (CASE WHEN OLD.state IN ('done','failed') THEN COALESCE(OLD.wasted_seconds, 0) ELSE 0 END),
        sum_wasted_usd = sum_wasted_usd - (CASE WHEN OLD.state IN ('done','failed') THEN COALESCE(OLD.wasted_usd, 0) ELSE 0 END),
        n_cost = n_cost - (OLD.state IN ('done','failed') AND OLD.cost_usd IS NOT NULL),
        n_energy = n_energy - (OLD.state IN ('done','failed') AND OLD.energy_joules IS NOT NULL)
    WHERE id = OLD.job_id;
END;

-- Only statements that set one of these columns fire it (a lease renewal does not).
CREATE TRIGGER requests_count_update AFTER UPDATE OF state, prompt_tokens, completion_tokens, cached_tokens,
    gpu_seconds, energy_joules, cost_usd, wasted_seconds, wasted_usd ON requests BEGIN
    UPDATE jobs SET n_pending = n_pending + (NEW.state = 'pending') - (OLD.state = 'pending'),
        n_running = n_running + (NEW.state = 'running') - (OLD.state = 'running'),
        n_done = n_done + (NEW.state = 'done') - (OLD.state = 'done'),
        n_failed = n_failed + (NEW.state = 'failed') - (OLD.state = 'failed'),
        n_cancelled = n_cancelled + (NEW.state = 'cancelled') - (OLD.state = 'cancelled'),
        n_expired = n_expired + (NEW.state = 'expired') - (OLD.state = 'expired'),
        sum_prompt_tokens = sum_prompt_tokens + (CASE WHEN NEW.state IN ('done','failed') THEN NEW.prompt_tokens ELSE 0 END)
            - (CASE WHEN OLD.state IN ('done','failed') THEN OLD.prompt_tokens ELSE 0 END),
        sum_completion_tokens = sum_completion_tokens + (CASE WHEN NEW.state IN ('done','failed') THEN NEW.completion_tokens ELSE 0 END)
            - (CASE WHEN OLD.state IN ('done','failed') THEN OLD.completion_tokens ELSE 0 END),
        sum_cached_tokens = sum_cached_tokens + (CASE WHEN NEW.state IN ('done','failed') THEN NEW.cached_tokens ELSE 0 END)
            - (CASE WHEN OLD.state IN ('done','failed') THEN OLD.cached_tokens ELSE 0 END),
        sum_gpu_seconds = sum_gpu_seconds + (CASE WHEN NEW.state IN ('done','failed') THEN COALESCE(NEW.gpu_seconds, 0) ELSE 0 END)
            - (CASE WHEN OLD.state IN ('done','failed') THEN COALESCE(OLD.gpu_seconds, 0) ELSE 0 END),
        sum_energy_joules = sum_energy_joules + (CASE WHEN NEW.state IN ('done','failed') THEN COALESCE(NEW.energy_joules, 0) ELSE 0 END)
            - (CASE WHEN OLD.state IN ('done','failed') THEN COALESCE(OLD.energy_joules, 0) ELSE 0 END),
        sum_cost_usd = sum_cost_usd + (CASE WHEN NEW.state IN ('done','failed') THEN COALESCE(NEW.cost_usd, 0) ELSE 0 END)
            - (CASE WHEN OLD.state IN ('done','failed') THEN COALESCE(OLD.cost_usd, 0) ELSE 0 END),
        sum_wasted_seconds = sum_wasted_seconds + (CASE WHEN NEW.state IN ('done','failed') THEN COALESCE(NEW.wasted_seconds, 0) ELSE 0 END)
            - (CASE WHEN OLD.state IN ('done','failed') THEN COALESCE(OLD.wasted_seconds, 0) ELSE 0 END),
        sum_wasted_usd = sum_wasted_usd + (CASE WHEN NEW.state IN ('done','failed') THEN COALESCE(NEW.wasted_usd, 0) ELSE 0 END)
            - (CASE WHEN OLD.state IN ('done','failed') THEN COALESCE(OLD.wasted_usd, 0) ELSE 0 END),
        n_cost = n_cost + (NEW.state IN ('done','failed') AND NEW.cost_usd IS NOT NULL)
            - (OLD.state IN ('done','failed') AND OLD.cost_usd IS NOT NULL),
        n_energy = n_energy + (NEW.state IN ('done','failed') AND NEW.energy_joules IS NOT NULL)
            - (OLD.state IN ('done','failed') AND OLD.energy_joules IS NOT NULL)
    WHERE id = NEW.job_id;
END;

-- Cost views without a full scan of requests: daily_costs reads this covering
-- index in day order (finished requests only), and worker_costs' per-run waste
-- reads the second. (model_costs groups by COALESCE(request model, job model):
-- no index orders that; it reads the finished rows through the first one.)
CREATE INDEX requests_finished_day ON requests(date(finished_at, 'unixepoch'), prompt_tokens, completion_tokens,
    gpu_seconds, energy_joules, cost_usd, wasted_seconds, wasted_usd, finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX requests_run_waste ON requests(run_id, wasted_seconds, wasted_usd) WHERE run_id IS NOT NULL;

-- ==== 0008_models (served model names, OpenAI Batch fields; appended as the migration applies it) ====
-- 0008_models.sql — one model per worker, named truthfully; OpenAI Batch
-- fields of a job. Applied on top of 0001..0007.
--   jobs.input_file_id:  'file-' + 32 hex, the id of the submission's input
--                        (OpenAI Batch input_file_id); NULL before 0008.
--   jobs.input_filename: the submitted file name(s), ', '-joined as given.
--   jobs.input_sha256:   hex SHA-256 of the submitted files' bytes (as read,
--                        in order); NULL when read from stdin. `tokenmill
--                        batch` finds an earlier submission of the same
--                        input by it (resume).
--   workers.models:      JSON array of the names the worker serves
--                        (run --served-model-name; the first is the one its
--                        responses carry). A worker claims only requests whose
--                        requests.model is one of them, or NULL (any worker).
--   runs.served_model:   the first served name of the run's worker: the
--                        model that ran (requests.run_id -> runs).
-- requests.model (body.model, else the job's --model at submit) is filled
-- from the body for rows stored without it. requests.error of an invalid
-- line may carry "param" (the field at fault) next to code and message.
ALTER TABLE jobs ADD COLUMN input_file_id TEXT;
ALTER TABLE jobs ADD COLUMN input_filename TEXT;
ALTER TABLE jobs ADD COLUMN input_sha256 TEXT;
ALTER TABLE workers ADD COLUMN models TEXT;
ALTER TABLE runs ADD COLUMN served_model TEXT;
CREATE INDEX jobs_input_sha256 ON jobs(input_sha256) WHERE input_sha256 IS NOT NULL;

UPDATE requests SET model = json_extract(body, '$.model')
WHERE model IS NULL AND json_valid(body) AND json_type(body, '$.model') = 'text';

-- Per request: the model it asked for (requested_model) and the model that
-- ran it (served_model: the run that stored its result; NULL if none did).
DROP VIEW request_costs;
CREATE VIEW request_costs AS
SELECT r.id                AS request_id,
       r.job_id            AS job_id,
       r.custom_id         AS custom_id,
       r.prompt_tokens     AS prompt_tokens,
       r.completion_tokens AS completion_tokens,
       r.cached_tokens     AS cached_tokens,
       r.gpu_seconds       AS gpu_seconds,
       r.energy_joules     AS energy_joules,
       r.cost_usd          AS cost_usd,
       r.wasted_seconds    AS wasted_seconds,
       r.wasted_usd        AS wasted_usd,
       r.run_id            AS run_id,
       u.served_model      AS served_model,
       COALESCE(r.model, j.model) AS requested_model
FROM requests r JOIN jobs j ON j.id = r.job_id
LEFT JOIN runs u ON u.id = r.run_id;

-- Per model that ran: the served name of the run that stored the result
-- (runs.served_model); where no run recorded one (a request no run stored:
-- an invalid line, a failure; a run before 0008) the requested name. And per
-- requested name (requested_model: body.model, else the job's --model, else
-- '(none)'), the second column. src/queue/queue_cost.c repeats this grouping.
DROP VIEW model_costs;
CREATE VIEW model_costs AS
SELECT COALESCE(u.served_model, r.model, j.model, '(none)') AS model,
       COALESCE(r.model, j.model, '(none)') AS requested_model,
       COUNT(*) AS requests,
       COALESCE(SUM(r.prompt_tokens), 0) AS prompt_tokens,
       COALESCE(SUM(r.completion_tokens), 0) AS completion_tokens,
       COALESCE(SUM(r.prompt_tokens + r.completion_tokens), 0) AS total_tokens,
       COALESCE(SUM(r.gpu_seconds), 0.0) AS gpu_seconds,
       SUM(r.energy_joules) / 3.6e6 AS kwh,
       COALESCE(SUM(r.cost_usd), 0.0) AS cost_usd,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens), 0) AS usd_per_1m_input,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.completion_tokens), 0) AS usd_per_1m_output,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens + r.completion_tokens), 0) AS usd_per_1m_total,
       SUM(r.prompt_tokens + r.completion_tokens) / NULLIF(SUM(r.cost_usd), 0.0) AS tokens_per_usd,
       COALESCE(SUM(r.wasted_seconds), 0.0) AS wasted_gpu_seconds,
       COALESCE(SUM(r.wasted_usd), 0.0) AS wasted_usd,
       COALESCE(SUM(r.wasted_usd), 0.0) / NULLIF(SUM(r.cost_usd), 0.0) AS wasted_share
FROM requests r JOIN jobs j ON j.id = r.job_id
LEFT JOIN runs u ON u.id = r.run_id
WHERE r.finished_at IS NOT NULL
GROUP BY 1, 2;

-- ==== 0009_shards (shard databases and merging them back; appended as the migration applies it) ====
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
