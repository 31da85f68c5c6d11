/* validate.h — validation of one OpenAI Batch request line.
 *
 * Implements the semantics of schemas/batch_request.schema.json: required
 * fields, types, ranges, allowed url/method, body fields for
 * /v1/chat/completions and /v1/completions, valid UTF-8. Every problem of a
 * line is reported (field path + what is wrong), not just the first.
 * Duplicate custom_id is a job-level check done by the queue (it knows the
 * earlier line), not here.
 */
#ifndef TM_VALIDATE_H
#define TM_VALIDATE_H

#include <stddef.h>
#include <stdint.h>
#include "util/status.h"

typedef enum tm_endpoint {
    TM_ENDPOINT_NONE = 0,
    TM_ENDPOINT_CHAT = 1,        /* /v1/chat/completions */
    TM_ENDPOINT_COMPLETIONS = 2, /* /v1/completions */
} tm_endpoint;

#define TM_MAX_CUSTOM_ID 512   /* bytes */
#define TM_PROBLEMS_KEPT 16    /* per line; the rest are only counted */

typedef struct tm_problem {
    char field[96];  /* JSON path, e.g. "body.messages[2].content", or "line" */
    char what[256];  /* e.g. "must be a number between 0 and 2, got 3.5" */
} tm_problem;

typedef struct tm_problems {
    tm_problem items[TM_PROBLEMS_KEPT];
    int kept;   /* entries in items */
    int total;  /* all problems found (>= kept) */
} tm_problems;

/* What the queue stores about a valid request (malloc'd strings). */
typedef struct tm_validated {
    char *custom_id;      /* NULL when missing/invalid */
    tm_endpoint endpoint;
    char *model;          /* body.model, or NULL */
    char *body_json;      /* body re-serialised compactly (JSON_COMPACT) */
    int64_t max_tokens;   /* max_completion_tokens / max_tokens, -1 if absent */
    int64_t n;            /* choices, default 1 */
} tm_validated;

void tm_problems_init(tm_problems *p);
void tm_problems_add(tm_problems *p, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Validate one line. Returns TM_OK if the line is valid (out filled),
 * TM_ERR_INPUT if not (problems filled; out->custom_id still set when it was
 * readable, so a skipped line can be recorded under its id; out->endpoint set
 * when the url was valid; model/body_json NULL), TM_ERR_NOMEM on allocation
 * failure. The line need not be NUL-terminated. out and problems may be NULL.
 * Call tm_validated_clear(out) after either result.
 *
 * Decisions (mirrored in the schema): JSON null in an optional body field
 * means absent; duplicate keys are a problem (field "line"); integers must
 * fit in int64 (seed too); integer fields reject 1.0; body fields follow the
 * field table (tm_validate_field_class): refused and unknown body fields
 * are problems "not supported (...)"; unknown top-level fields are problems. Byte offsets in "not valid
 * UTF-8 at byte N" / "NUL byte at byte N" count from 1; after such a problem
 * the rest of the line is still checked with the bad bytes replaced by U+FFFD
 * (a custom_id that contained them is not kept). Problem texts are printable
 * valid UTF-8: input echoed in them is quoted and cut to 40 bytes. */
tm_status tm_validate_line(const char *line, size_t len, tm_validated *out, tm_problems *problems);

/* Flags of tm_validate_line_ex. */
#define TM_VALIDATE_ALLOW_UNKNOWN 1u /* unknown body fields (and fields of the other
                                        endpoint) are ignored, not problems */
/* tm_validate_line with flags (tm_validate_line = flags 0). */
tm_status tm_validate_line_ex(const char *line, size_t len, unsigned flags, tm_validated *out,
                              tm_problems *problems);

/* What tokenmill does with a body field (docs/requests.md, "Request fields").
 * HONOURED: it changes the result as OpenAI / vLLM say. NOOP_ONLY: accepted
 * only with the value that changes nothing (stream false, response_format
 * {"type":"text"}, best_of = n, ...), other values refused. IGNORED: accepted,
 * cannot change the result (user, metadata, ...). REFUSED: refused at submit
 * unless null. UNKNOWN: not a field of that endpoint: refused unless
 * TM_VALIDATE_ALLOW_UNKNOWN. */
typedef enum tm_field_class {
    TM_FIELD_UNKNOWN = 0,
    TM_FIELD_HONOURED,
    TM_FIELD_NOOP_ONLY,
    TM_FIELD_IGNORED,
    TM_FIELD_REFUSED,
} tm_field_class;

tm_field_class tm_validate_field_class(const char *name, tm_endpoint ep);
/* "honoured", "no-op only", "ignored", "refused", "unknown" (the words of docs/requests.md). */
const char *tm_field_class_str(tm_field_class c);
/* The table's fields, i in [0, tm_validate_field_count()). */
size_t tm_validate_field_count(void);
const char *tm_validate_field_name(size_t i);
void tm_validated_clear(tm_validated *v);

#endif
