-- costs.sql — the questions an operator asks about what the work cost.
--
--   sqlite3 -header -column tokenmill.db < examples/costs.sql
--
-- Plain SQL over the cost views of the queue DB (their columns are documented
-- in schemas/queue.sql and schemas/migrations/0003_cost_views.sql,
-- 0005_cost_wasted.sql); no dot-commands, so any SQLite client runs it, and
-- every query works on an empty DB too. Dollars come from the price profile
-- each run was charged at (`tokenmill prices list`; `run --price`).
-- Per-request numbers (job_costs, daily_costs, model_costs) are the engine
-- steps the requests took part in; run overhead (model load, idle,
-- checkpointing) is only in runs/worker_costs: `tokenmill report
-- --include-overhead` spreads it over jobs. kwh is NULL when no energy was
-- measured (no NVML), never 0.

-- 1. What did each job cost? (newest first)
SELECT c.job_id, c.name, j.state, c.requests, c.prompt_tokens, c.completion_tokens,
       round(c.gpu_seconds, 3) AS gpu_seconds, c.kwh, printf('%.8f', c.cost_usd) AS cost_usd
FROM job_costs c JOIN jobs j ON j.id = c.job_id
ORDER BY j.created_at DESC, j.seq DESC;

-- 2. Tokens per dollar and $ per 1M output tokens, per job.
SELECT c.job_id, c.name, c.total_tokens,
       round(c.tokens_per_usd) AS tokens_per_usd,
       round(c.usd_per_1m_input, 4) AS usd_per_1m_input,
       round(c.usd_per_1m_output, 4) AS usd_per_1m_output,
       round(c.usd_per_1m_total, 4) AS usd_per_1m_total
FROM job_costs c JOIN jobs j ON j.id = c.job_id
ORDER BY j.seq;

-- 3. The same per model: which model gives the most tokens per dollar?
SELECT model, requests, total_tokens, printf('%.8f', cost_usd) AS cost_usd,
       round(tokens_per_usd) AS tokens_per_usd, round(usd_per_1m_output, 4) AS usd_per_1m_output
FROM model_costs
ORDER BY tokens_per_usd DESC;

-- 4. Daily spend (UTC days of the finished requests), last 30 days.
SELECT day, requests, completion_tokens, printf('%.8f', cost_usd) AS cost_usd,
       round(usd_per_1m_output, 4) AS usd_per_1m_output
FROM daily_costs
WHERE day >= date('now', '-30 days')
ORDER BY day DESC;

-- 5. Monthly spend, and what was actually paid for: the runs' whole time
--    (overhead included) next to the part attributed to requests.
SELECT substr(d.day, 1, 7) AS month, printf('%.8f', SUM(d.cost_usd)) AS attributed_usd,
       (SELECT printf('%.8f', COALESCE(SUM(u.cost_usd), 0.0)) FROM runs u
         WHERE strftime('%Y-%m', u.started_at, 'unixepoch') = substr(d.day, 1, 7)) AS runs_usd
FROM daily_costs d
GROUP BY 1
ORDER BY 1 DESC;

-- 6. Wasted share: how much of what was paid went to recomputing work already
--    done once (a request resumed after a preemption is charged for every
--    attempt). Per job, then per worker.
SELECT c.job_id, c.name, printf('%.8f', c.cost_usd) AS cost_usd, printf('%.8f', c.wasted_usd) AS wasted_usd,
       round(100.0 * c.wasted_share, 2) AS wasted_pct
FROM job_costs c JOIN jobs j ON j.id = c.job_id
ORDER BY c.wasted_usd DESC, j.seq;

SELECT worker, runs, requests, printf('%.8f', cost_usd) AS cost_usd,
       round(overhead_seconds, 3) AS overhead_seconds, printf('%.8f', wasted_usd) AS wasted_usd,
       round(100.0 * wasted_share, 2) AS wasted_pct
FROM worker_costs
ORDER BY worker_costs.cost_usd DESC;

-- 7. Where did each run's time go, and why did it end? Overhead is the part of
--    the paid time no request used (model load, idle, checkpointing).
SELECT u.id AS run_id, u.device, u.price_profile, u.price_usd_per_hour, u.requests_done,
       u.requests_checkpointed, u.end_reason, round(u.gpu_seconds, 3) AS gpu_seconds,
       round(u.overhead_seconds, 3) AS overhead_seconds,
       round(100.0 * u.overhead_seconds / NULLIF(u.gpu_seconds, 0.0), 1) AS overhead_pct
FROM runs u
ORDER BY u.started_at DESC;

-- 8. The ten most expensive requests, with their share of their job's cost.
SELECT r.job_id, r.custom_id, r.prompt_tokens, r.completion_tokens, r.cached_tokens,
       printf('%.8f', r.cost_usd) AS cost_usd,
       round(100.0 * r.cost_usd / NULLIF(c.cost_usd, 0.0), 1) AS pct_of_job
FROM request_costs r JOIN job_costs c ON c.job_id = r.job_id
WHERE r.cost_usd IS NOT NULL
ORDER BY r.cost_usd DESC
LIMIT 10;

-- 9. Everything so far, in one row.
SELECT COUNT(*) AS requests_finished,
       COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS tokens,
       printf('%.8f', COALESCE(SUM(cost_usd), 0.0)) AS attributed_usd,
       printf('%.8f', COALESCE(SUM(wasted_usd), 0.0)) AS wasted_usd,
       (SELECT printf('%.8f', COALESCE(SUM(cost_usd), 0.0)) FROM runs) AS runs_usd,
       round(SUM(prompt_tokens + completion_tokens) / NULLIF(SUM(cost_usd), 0.0)) AS tokens_per_usd
FROM requests
WHERE finished_at IS NOT NULL;
