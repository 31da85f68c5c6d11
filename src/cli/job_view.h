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

/* The job as an OpenAI batch object plus tokenmill's fields (new reference). */
json_t *tm_cli_job_json(const tm_queue_job *j);
/* The job's cost sums (an export's cost.json); null cost fields when none recorded. */
json_t *tm_cli_cost_json(const tm_queue_job *j);

/* Write job_id's output lines (errors 0) or error lines (errors 1) to o;
 * *lines (may be NULL) gets their count. TM_ERR_NOTFOUND for an unknown job. */
tm_status tm_cli_job_lines(tm_queue *q, const char *job_id, int errors, tm_out *o, int64_t *lines, tm_err *err);

/* Write job_id's export bundle (output.h) to path. */
tm_status tm_cli_job_export(tm_queue *q, const char *job_id, const char *path, tm_err *err);

#endif
