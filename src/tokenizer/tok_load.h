/* tok_load.h — private to the tokenizer loader (tokenizer.c, tok_pipeline.c):
 * the load context that carries the tokenizer being built and the file label
 * for error messages, the JSON field helpers, and the parsers of the
 * normalizer / pre_tokenizer / decoder sections (tok_pipeline.c).
 * Every error is TM_ERR_INPUT naming the file and JSON path (or TM_ERR_NOMEM).
 */
#ifndef TM_TOK_LOAD_H
#define TM_TOK_LOAD_H

#include <jansson.h>

#include "tokenizer/tok_internal.h"

typedef struct tok_ld {
    tm_tokenizer *t;
    const char *file; /* label for errors */
    tm_err *err;
} tok_ld;

tm_status tok_ld_nomem(tok_ld *L);
/* Optional boolean field (absent/null -> def). */
tm_status tok_ld_get_bool(tok_ld *L, json_t *o, const char *key, const char *path, int def, int *out);
/* Optional string field; *out points into the JSON (NULL when absent/null). */
tm_status tok_ld_get_str(tok_ld *L, json_t *o, const char *key, const char *path, const char **out, size_t *len);
/* malloc'd NUL-terminated copy of s[0..n), NULL when out of memory. */
char *tok_dupn(const char *s, size_t n);

/* One section (object or Sequence, nested at most a few levels deep by depth)
 * appended to L->t's normalizer, pre-tokenizer or decoder op list. */
tm_status tok_parse_norm(tok_ld *L, json_t *o, const char *path, int depth);
tm_status tok_parse_pretok(tok_ld *L, json_t *o, const char *path, int depth);
tm_status tok_parse_dec(tok_ld *L, json_t *o, const char *path, int depth);

#endif
