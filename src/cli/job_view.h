/* job_view.h — where the queue's rows meet output/: a job as the CLI shows it
 * (the OpenAI batch object plus tokenmill's fields, its cost sums) and the
 * bridge that feeds a job's result / error rows to output.h's line writers
 * (`tokenmill status`, `cancel`, `submit`, `results`, `export`).
 */
#ifndef TM_CLI_JOB_VIEW_H
#define TM_CLI_JOB_VIEW_H

#include <jansson.h>
#include <stdint.h>
#include "output/output.h"
#include "queue/queue.h"
#include "util/status.h"

/* The job as an OpenAI Batch object (openai-python's Batch accepts it;
 * schemas/openai_batch.schema.json) plus tokenmill's fields (new reference,
 * NULL when out of memory): status is OpenAI's state (tm_cli_openai_state)
 * and tokenmill_status the finer one; input_file_id the submission's
 * 'file-…' id; output_file_id / error_file_id 'file-<job hex>-output' /
 * '-errors' once the job has result / error lines (what `tokenmill results
 * JOB [--errors]` writes), else null; errors the --on-invalid skip lines
 * {code, line, message, param}; model the job's --model, else the one model
 * its requests name, else null; usage OpenAI's BatchUsage (reasoning tokens
 * are not counted apart: 0, they are in output_tokens). b may be NULL
 * (then input_file_id is derived from the job id, errors null). */
json_t *tm_cli_batch_json(const tm_queue_job *j, const tm_queue_job_batch *b);
/* tm_cli_batch_json of job_id read from q. */
tm_status tm_cli_job_fetch_json(tm_queue *q, const char *job_id, json_t **out, tm_err *err);
/* OpenAI's name of a tokenmill job state (queued -> in_progress). */
const char *tm_cli_openai_state(const char *state);
/* The job's cost sums (an export's cost.json); null cost fields when none recorded. */
json_t *tm_cli_cost_json(const tm_queue_job *j);

/* Write job_id's output lines (errors 0) or error lines (errors 1) to o;
 * *lines (may be NULL) gets their count. TM_ERR_NOTFOUND for an unknown job. */
tm_status tm_cli_job_lines(tm_queue *q, const char *job_id, int errors, tm_out *o, int64_t *lines, tm_err *err);

/* Write job_id's export bundle (output.h) to path. */
tm_status tm_cli_job_export(tm_queue *q, const char *job_id, const char *path, tm_err *err);

#endif
