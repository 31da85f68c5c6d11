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

-- Example price profiles (illustrative list prices, not quotes; edit with
-- `tokenmill prices set`). h100-ondemand: an 8xH100 node at $24/h = $3/GPU-h.
-- cpu: a 2-core VM-ish figure. Inserted once, by this migration.
INSERT OR IGNORE INTO prices (name, usd_per_gpu_hour, usd_per_kwh, description, created_at, gpu, profile) VALUES
  ('h100-ondemand', 3.00, NULL, 'example: 8xH100 node at $24/h', CAST(strftime('%s','now') AS INTEGER), 'H100', 'on-demand'),
  ('h100-premium',  4.00, NULL, 'example: premium on-demand H100', CAST(strftime('%s','now') AS INTEGER), 'H100', 'on-demand'),
  ('a100-ondemand', 2.50, NULL, 'example: on-demand A100', CAST(strftime('%s','now') AS INTEGER), 'A100', 'on-demand'),
  ('cpu',           0.10, NULL, 'example: a 2-core VM', CAST(strftime('%s','now') AS INTEGER), 'cpu', 'on-demand');

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
