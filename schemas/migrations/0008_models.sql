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
