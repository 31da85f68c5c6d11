/* output.h — what leaves the queue: OpenAI batch output/error JSONL, the job
 * object, and export bundles.
 *
 * Output line (results):  {"id":"batch_req_<hex>","custom_id":..,"response":
 *   {"status_code":200,"request_id":"req_<hex>","body":<stored response>},"error":null}
 * Error line (--errors):  {"id":..,"custom_id":..,"response":null,"error":{"code":..,"message":..}}
 * ("batch_req_<hex>" reuses the request id's hex, so it is stable across runs.)
 * Bundle (tokenmill export): a tar (pax) compressed with zstd, members with
 * fixed names: output.jsonl.zst, errors.jsonl.zst, job.json, cost.json and
 * manifest.json = {"format":"tokenmill-bundle/1","job_id","created_at",
 * "members":[{"name","size","sha256"}...],"request_counts":{...}} listing the
 * other four members (size and sha256 of the member bytes as stored).
 */
#ifndef TM_OUTPUT_H
#define TM_OUTPUT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include "queue/queue.h"
#include "util/status.h"

/* A byte sink: a file (written to PATH.partial, renamed on finish) or a
 * borrowed FILE*, optionally zstd-compressed; counts and hashes what it writes. */
typedef struct tm_out tm_out;

/* path "-" writes to stdout. */
tm_status tm_out_open(const char *path, int zstd, tm_out **out, tm_err *err);
tm_status tm_out_open_file(FILE *f, int zstd, tm_out **out, tm_err *err); /* f stays the caller's */
tm_status tm_out_write(tm_out *o, const void *p, size_t n, tm_err *err);
/* Flush (ending the zstd frame) and free o; bytes/sha_hex (may be NULL) get
 * the size and SHA-256 of the bytes written to the file. */
tm_status tm_out_finish(tm_out *o, uint64_t *bytes, char sha_hex[65], tm_err *err);
void tm_out_abort(tm_out *o); /* free without finishing; removes PATH.partial; NULL ok */

/* Write a job's output lines (errors=0) or error lines (errors=1). */
tm_status tm_output_results(tm_queue *q, const char *job_id, int errors, tm_out *o, int64_t *lines,
                            tm_err *err);

/* The job as an OpenAI batch object plus tokenmill's fields (new reference). */
json_t *tm_output_job_json(const tm_queue_job *j);
/* The job's cost sums (cost.json); null cost fields when none recorded. */
json_t *tm_output_cost_json(const tm_queue_job *j);

/* Write the bundle to path (via path.partial + rename). */
tm_status tm_output_export(tm_queue *q, const char *job_id, const char *path, tm_err *err);

#endif
