/* output.h — what leaves tokenmill for a job: OpenAI batch output/error JSONL
 * lines and export bundles. It receives plain records (strings, JSON values,
 * a callback that writes a job's lines) and knows neither the queue nor the
 * engine: cli/job_view.c is where the queue's rows and these writers meet.
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
 * job.json is the batch job object and cost.json the job's cost sums
 * (cli/job_view.h builds both).
 */
#ifndef TM_OUTPUT_H
#define TM_OUTPUT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include "util/status.h"

/* A byte sink: a file or a borrowed FILE*, optionally zstd-compressed;
 * counts and hashes what it writes. A regular file (or a new path) is written
 * to a temporary beside it (PATH.partial.XXXXXX, created exclusively, never
 * through a planted link) and renamed into place on finish; a device, FIFO or
 * socket is written in place, never replaced; a symbolic link is followed to
 * its target. tm_output_export writes its bundle the same way. */
typedef struct tm_out tm_out;

/* path "-" writes to stdout. */
tm_status tm_out_open(const char *path, int zstd, tm_out **out, tm_err *err);
tm_status tm_out_open_file(FILE *f, int zstd, tm_out **out, tm_err *err); /* f stays the caller's */
tm_status tm_out_write(tm_out *o, const void *p, size_t n, tm_err *err);
/* Flush (ending the zstd frame) and free o; bytes/sha_hex (may be NULL) get
 * the size and SHA-256 of the bytes written to the file. */
tm_status tm_out_finish(tm_out *o, uint64_t *bytes, char sha_hex[65], tm_err *err);
void tm_out_abort(tm_out *o); /* free without finishing; removes PATH.partial; NULL ok */

/* ---- batch lines: one record in, one JSONL line out -------------------------- */

/* A done request's output line; body (len bytes) is its stored response JSON,
 * embedded as it is (compacted, non-ASCII escaped as \uXXXX like the rest of
 * the line; integers of any size kept exactly). Body that is not JSON is
 * TM_ERR_INPUT. */
tm_status tm_output_result_line(tm_out *o, const char *request_id, const char *custom_id, const char *body,
                                size_t len, tm_err *err);
/* A failed / cancelled / expired request's error line. code NULL: the state
 * is the code; message NULL: "no error recorded"; either not UTF-8: both
 * replaced so (as for an error that was never recorded). */
tm_status tm_output_error_line(tm_out *o, const char *request_id, const char *custom_id, const char *state,
                               const char *code, const char *message, tm_err *err);
/* The same with the request's input line (1-based; <= 0: null) and param
 * (the field at fault, NULL: null) as fields of "error", as OpenAI's
 * BatchError carries them: {"code", "message", "line", "param"}. */
tm_status tm_output_error_line_at(tm_out *o, const char *request_id, const char *custom_id, const char *state,
                                  const char *code, const char *message, int64_t line, const char *param,
                                  tm_err *err);

/* ---- export bundle ---------------------------------------------------------- */

/* Writes a job's output lines (errors 0) or error lines (errors 1) to o, and
 * their count to *lines (may be NULL): the caller's bridge from its rows. */
typedef tm_status (*tm_output_lines_fn)(void *ctx, int errors, tm_out *o, int64_t *lines, tm_err *err);

typedef struct tm_output_bundle {
    const char *job_id;
    json_t *job;              /* job.json (borrowed) */
    json_t *cost;             /* cost.json (borrowed) */
    json_t *request_counts;   /* manifest.json's request_counts (borrowed) */
    tm_output_lines_fn lines; /* output.jsonl.zst and errors.jsonl.zst */
    void *lines_ctx;
} tm_output_bundle;

/* Write the bundle to path (via path.partial + rename). */
tm_status tm_output_export(const tm_output_bundle *b, const char *path, tm_err *err);

#endif
