/* validate_int.h — shared between validate.c (the line, the honoured
 * fields' ranges) and validate_body.c (the field table, messages). Not a
 * public interface. */
#ifndef TM_VALIDATE_INT_H
#define TM_VALIDATE_INT_H

#include <jansson.h>
#include "queue/validate.h"

/* "object", "array", "string", "number", "boolean" or "null". */
const char *tm_vjson_type(const json_t *v);
/* A short display form: numbers as written, strings quoted and cut to 40
 * bytes on a character boundary, other types by name. */
const char *tm_vjson_show(const json_t *v, char *buf, size_t sz);
/* A field path ("body.messages[2].content"), cut short if too long. */
void tm_vpath(char *out, size_t sz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* obj[key], with JSON null counted as absent. */
json_t *tm_vjson_opt(json_t *obj, const char *key);

/* Every key of body against the field table (docs/requests.md): refused
 * fields, no-op-only fields, fields of the other endpoint and (unless
 * TM_VALIDATE_ALLOW_UNKNOWN) unknown fields are problems; the honoured
 * fields added with the table (logit_bias, min_tokens, chat options,
 * best_of) are checked here. */
void tm_validate_body_fields(tm_problems *p, json_t *body, tm_endpoint ep, unsigned flags);

/* body.messages of a chat request. */
void tm_validate_messages(tm_problems *p, json_t *body);

#endif
