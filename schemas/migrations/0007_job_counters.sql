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
