-- 0001_init.sql — the first queue schema: tables and the indexes their
-- constraints need. Applied by src/queue/queue.c (embedded at build time) in
-- one transaction; PRAGMA user_version counts applied migrations.
-- Columns are documented in schemas/queue.sql (all migrations in order, commented).

CREATE TABLE jobs (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    name              TEXT,
    model             TEXT,
    endpoint          TEXT,
    state             TEXT NOT NULL DEFAULT 'validating' CHECK (state IN
                      ('validating','queued','in_progress','finalizing','completed',
                       'failed','cancelling','cancelled','expired')),
    priority          INTEGER NOT NULL DEFAULT 0,
    metadata          TEXT NOT NULL DEFAULT '{}',
    on_invalid        TEXT NOT NULL DEFAULT 'reject',
    completion_window INTEGER NOT NULL DEFAULT 86400,
    created_at        INTEGER NOT NULL,
    in_progress_at    INTEGER,
    finalizing_at     INTEGER,
    completed_at      INTEGER,
    failed_at         INTEGER,
    expired_at        INTEGER,
    cancelling_at     INTEGER,
    cancelled_at      INTEGER,
    expires_at        INTEGER
);

CREATE TABLE requests (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    job_id            TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    custom_id         TEXT,
    invalid           INTEGER NOT NULL DEFAULT 0,
    source            TEXT NOT NULL,
    line              INTEGER NOT NULL,
    method            TEXT NOT NULL DEFAULT 'POST',
    url               TEXT,
    model             TEXT,
    body              TEXT,
    max_tokens        INTEGER,
    n                 INTEGER NOT NULL DEFAULT 1,
    state             TEXT NOT NULL DEFAULT 'pending' CHECK (state IN
                      ('pending','running','done','failed','cancelled','expired')),
    error             TEXT,
    lease_owner       TEXT,
    lease_expires     REAL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    gpu_seconds       REAL,
    energy_joules     REAL,
    cost_usd          REAL
);
-- custom_id is unique among a job's valid requests (invalid lines recorded by
-- --on-invalid skip are outside the constraint).
CREATE UNIQUE INDEX requests_custom_id ON requests(job_id, custom_id) WHERE invalid = 0;

CREATE TABLE results (
    request_id        TEXT PRIMARY KEY REFERENCES requests(id) ON DELETE CASCADE,
    response_zstd     BLOB NOT NULL,
    response_size     INTEGER NOT NULL,
    created_at        INTEGER NOT NULL
);

CREATE TABLE checkpoints (
    request_id        TEXT PRIMARY KEY REFERENCES requests(id) ON DELETE CASCADE,
    worker_id         TEXT,
    tokens_done       INTEGER NOT NULL DEFAULT 0,
    state_zstd        BLOB,
    created_at        INTEGER NOT NULL
);

CREATE TABLE workers (
    id                TEXT PRIMARY KEY,
    host              TEXT,
    pid               INTEGER,
    device            TEXT,
    state             TEXT,
    started_at        INTEGER NOT NULL,
    heartbeat_at      INTEGER
);

CREATE TABLE runs (
    id                TEXT PRIMARY KEY,
    worker_id         TEXT REFERENCES workers(id) ON DELETE SET NULL,
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    exit_code         INTEGER,
    device            TEXT,
    price_profile     TEXT,
    requests_done     INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    gpu_seconds       REAL,
    energy_joules     REAL,
    cost_usd          REAL
);

CREATE TABLE prices (
    name              TEXT PRIMARY KEY,
    usd_per_gpu_hour  REAL,
    usd_per_kwh       REAL,
    description       TEXT,
    created_at        INTEGER NOT NULL
);
