/* jinja.h — a sandboxed Jinja2 interpreter for the subset chat templates use.
 *
 * Why: a model's chat template (chat_template.jinja, tokenizer_config.json's
 * "chat_template", GGUF's tokenizer.chat_template) is Jinja2 code; rendering
 * the model's own template is the only way to get its prompt format right for
 * every family, tools and kwargs included. Output matches Python jinja2 3.x
 * as Hugging Face transformers configures it (ImmutableSandboxedEnvironment,
 * trim_blocks, lstrip_blocks, loopcontrols, its tojson, raise_exception,
 * strftime_now) byte for byte (tests/unit/test_jinja_golden.c).
 *
 * Supported: {{ }}, {% %}, {# #} with whitespace control ({%- -%} {%+ +%}),
 * trim_blocks/lstrip_blocks, raw; statements if/elif/else, for (loop.*,
 * else, inline if, tuple unpacking, break/continue), set (also ns.attr and
 * block set), macro (defaults, varargs-free), call (caller()), filter,
 * generation (rendered as-is); expressions with Python semantics for
 * int/float/str/list/dict/bool/None, slicing, `in`, `~`, `is [not] TEST`,
 * chained comparisons, conditional expressions; globals range, namespace,
 * dict, raise_exception, strftime_now; the filters, tests and str/dict
 * methods listed in jinja_lib.c. Anything else is a template error.
 *
 * Sandbox: no I/O (include/import/extends are errors), immutable lists and
 * dicts (only namespace() objects take attribute assignment), and limits on
 * output bytes, work steps (loop iterations + evaluated nodes), memory and
 * call/nesting depth. Errors are TM_ERR_INPUT with "line N: what".
 */
#ifndef TM_JINJA_H
#define TM_JINJA_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "util/buf.h"
#include "util/status.h"

typedef struct tm_jinja tm_jinja;

enum {
    TM_JINJA_TRIM_BLOCKS = 1u << 0,  /* drop the first newline after a block tag */
    TM_JINJA_LSTRIP_BLOCKS = 1u << 1, /* drop spaces/tabs before a block tag at line start */
    TM_JINJA_HF = TM_JINJA_TRIM_BLOCKS | TM_JINJA_LSTRIP_BLOCKS, /* as transformers sets them */
};

/* Limits of one render; zero fields take the defaults in brackets. */
typedef struct tm_jinja_limits {
    size_t max_output;   /* bytes of any one output or captured block [16 MiB] */
    size_t max_memory;   /* bytes of values built while rendering [256 MiB] */
    uint64_t max_steps;  /* evaluated nodes + loop iterations [50,000,000] */
    int max_depth;       /* nested macro calls [64] */
} tm_jinja_limits;

/* Parse template source (UTF-8, len bytes, need not be NUL-terminated; at most
 * 4 MiB). flags: TM_JINJA_*. A syntax error is TM_ERR_INPUT "line N: ...". */
tm_status tm_jinja_compile(const char *src, size_t len, unsigned flags, tm_jinja **out, tm_err *err);
void tm_jinja_destroy(tm_jinja *t);

/* Render with the keys of vars (a JSON object, may be NULL) as template
 * variables; JSON values map to Python's (object -> dict in key order,
 * array -> list, true/false -> bool, null -> None, integer -> int, real ->
 * float). APPENDS to out; on failure out is restored to its previous length.
 * lim may be NULL (defaults). raise_exception(msg) is TM_ERR_INPUT "line N:
 * msg". A render never crashes and never runs past its limits. */
tm_status tm_jinja_render(const tm_jinja *t, const json_t *vars, const tm_jinja_limits *lim, tm_buf *out,
                          tm_err *err);

#endif
