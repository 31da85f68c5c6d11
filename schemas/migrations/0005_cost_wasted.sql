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
