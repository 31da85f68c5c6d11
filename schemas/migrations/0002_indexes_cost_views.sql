-- 0002_indexes_cost_views.sql — the indexes the claim/lease/status queries use
-- and the cost views (request_costs, job_costs). Applied on top of 0001; an
-- older DB (user_version 1) gets them when a newer tokenmill opens it.

-- claim: a job's pending requests in submission order; status: counts by state
CREATE INDEX requests_job_state ON requests(job_id, state);
-- reclaim: running requests whose lease has expired
CREATE INDEX requests_lease ON requests(lease_expires) WHERE state = 'running';
-- claim order over jobs
CREATE INDEX jobs_state_priority ON jobs(state, priority);

CREATE VIEW request_costs AS
SELECT r.id                AS request_id,
       r.job_id            AS job_id,
       r.custom_id         AS custom_id,
       r.prompt_tokens     AS prompt_tokens,
       r.completion_tokens AS completion_tokens,
       r.cached_tokens     AS cached_tokens,
       r.gpu_seconds       AS gpu_seconds,
       r.energy_joules     AS energy_joules,
       r.cost_usd          AS cost_usd
FROM requests r;

CREATE VIEW job_costs AS
SELECT j.id                                    AS job_id,
       j.name                                  AS name,
       j.model                                 AS model,
       COUNT(r.seq)                            AS requests,
       COALESCE(SUM(r.prompt_tokens), 0)       AS prompt_tokens,
       COALESCE(SUM(r.completion_tokens), 0)   AS completion_tokens,
       COALESCE(SUM(r.cached_tokens), 0)       AS cached_tokens,
       COALESCE(SUM(r.gpu_seconds), 0.0)       AS gpu_seconds,
       COALESCE(SUM(r.energy_joules), 0.0) / 3.6e6 AS kwh,
       COALESCE(SUM(r.cost_usd), 0.0)          AS cost_usd,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens), 0)     AS usd_per_1m_input,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.completion_tokens), 0) AS usd_per_1m_output,
       SUM(r.cost_usd) * 1e6 / NULLIF(SUM(r.prompt_tokens) + SUM(r.completion_tokens), 0)
                                               AS usd_per_1m_total,
       (SUM(r.prompt_tokens) + SUM(r.completion_tokens)) / NULLIF(SUM(r.cost_usd), 0.0)
                                               AS tokens_per_usd
FROM jobs j LEFT JOIN requests r ON r.job_id = j.id
GROUP BY j.id;
