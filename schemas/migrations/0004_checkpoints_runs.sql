-- 0004_checkpoints_runs.sql — preemption-safe runs (checkpoints, drain, resume)
-- and the columns cost accounting needs to charge a resumed request for every
-- attempt. Applied on top of 0001..0003.

-- runs: why the run ended: 'empty' (nothing left), 'time_limit', 'signal'
-- ('signal:SIGTERM' etc.), 'notice' ('notice:aws' etc.), 'error', 'lost' (the
-- worker died without saying; set by another worker that reclaimed its leases).
ALTER TABLE runs ADD COLUMN end_reason TEXT;
-- runs: requests checkpointed and released at the end of the run.
ALTER TABLE runs ADD COLUMN requests_checkpointed INTEGER NOT NULL DEFAULT 0;

-- workers: the lease length it runs with (a worker whose heartbeat is older
-- than this is dead), what it is doing ('starting' | 'running' | 'draining' |
-- 'stopped' | 'lost') and how many requests it holds.
ALTER TABLE workers ADD COLUMN lease_seconds REAL;
ALTER TABLE workers ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0;

-- requests: the run that stored the result, and the part of gpu_seconds /
-- cost_usd spent recomputing work already done once (resume after a
-- preemption, KV preemption by recompute): the wasted share.
ALTER TABLE requests ADD COLUMN run_id TEXT;
ALTER TABLE requests ADD COLUMN wasted_seconds REAL;
ALTER TABLE requests ADD COLUMN wasted_usd REAL;

-- checkpoints: the run that wrote it, the sampler position (tokens generated,
-- summed over choices, = tokens_done) and the cost charged so far over all
-- attempts (carried into the result when the request completes).
ALTER TABLE checkpoints ADD COLUMN run_id TEXT;
ALTER TABLE checkpoints ADD COLUMN gpu_seconds REAL;
ALTER TABLE checkpoints ADD COLUMN cost_usd REAL;

CREATE INDEX runs_worker ON runs(worker_id);
