/* validate.c — checks one OpenAI Batch request line (see validate.h).
 *
 * Bytes first (UTF-8, NUL), then jansson parses (duplicate keys rejected),
 * then every rule of schemas/batch_request.schema.json is checked and every
 * failure recorded, so a user fixes a line in one pass. Problem messages are
 * always printable, valid UTF-8 (input echoed in them is quoted and cut short)
 * so they can be stored in JSON and SQL as they are.
 */
#include "queue/validate.h"
#include "queue/validate_int.h"
#include "engine/sampler.h"

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define TOKEN_ID_LIMIT 2147483648LL /* token ids are < 2^31 */
#define MAX_STOP TM_STOP_MAX            /* the engine's limits (engine/sampler.h) */
#define MAX_STOP_BYTES TM_STOP_MAX_BYTES
#define MAX_STOP_IDS TM_SAMPLER_MAX_STOP_IDS
#define MAX_N 128
#define MAX_LOGPROBS 20

/* In place: invalid UTF-8 bytes and control characters become '?'. */
static void sanitize_text(char *s)
{
    size_t n = strlen(s);
    size_t i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) { s[i++] = '?'; continue; }
        if (cp < 0x20 || cp == 0x7f) s[i] = '?';
        i += (size_t)k;
    }
}

void tm_problems_init(tm_problems *p)
{
    if (!p) return;
    memset(p, 0, sizeof *p);
}

void tm_problems_add(tm_problems *p, const char *field, const char *fmt, ...)
{
    if (!p) return;
    p->total++;
    if (p->kept >= TM_PROBLEMS_KEPT) return;
    tm_problem *it = &p->items[p->kept++];
    snprintf(it->field, sizeof it->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->what, sizeof it->what, fmt, ap);
    va_end(ap);
    sanitize_text(it->field);
    sanitize_text(it->what);
}

void tm_validated_clear(tm_validated *v)
{
    if (!v) return;
    free(v->custom_id);
    free(v->model);
    free(v->body_json);
    v->custom_id = NULL;
    v->model = NULL;
    v->body_json = NULL;
    v->endpoint = TM_ENDPOINT_NONE;
    v->max_tokens = -1;
    v->n = 1;
}

void tm_vpath(char *out, size_t sz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, sz, fmt, ap);
    va_end(ap);
}

/* ---- helpers for messages ---------------------------------------------- */

const char *tm_vjson_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: case JSON_REAL: return "number";
    case JSON_TRUE: case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

/* A short display form of a value: numbers as written, strings quoted and
 * cut to 40 bytes on a character boundary, other types by name. */
const char *tm_vjson_show(const json_t *v, char *buf, size_t sz)
{
    if (json_is_integer(v)) {
        snprintf(buf, sz, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(buf, sz, "%.15g", json_real_value(v));
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v), cut = n;
        if (cut > 40) {
            cut = 40;
            while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80) cut--;
        }
        snprintf(buf, sz, "\"%.*s%s\"", (int)cut, s, cut < n ? "..." : "");
    } else {
        snprintf(buf, sz, "%s", tm_vjson_type(v));
    }
    return buf;
}

/* JSON null counts as absent for optional body fields (as OpenAI clients send). */
json_t *tm_vjson_opt(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

static int is_number(const json_t *v) { return json_is_integer(v) || json_is_real(v); }

static double num(const json_t *v)
{
    return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

/* body.<key> a number in [lo, hi], each end open or closed. */
static void check_range(tm_problems *p, json_t *body, const char *key, double lo, int lo_open, double hi,
                        int hi_open)
{
    json_t *v = tm_vjson_opt(body, key);
    if (!v) return;
    char f[96], b[64];
    tm_vpath(f, sizeof f, "body.%s", key);
    if (!is_number(v)) {
        tm_problems_add(p, f, "must be a number, got %s", tm_vjson_type(v));
        return;
    }
    double d = num(v);
    if ((lo_open ? d <= lo : d < lo) || (hi_open ? d >= hi : d > hi))
        tm_problems_add(p, f, "must be a number in %c%g, %g%c, got %s", lo_open ? '(' : '[', lo, hi,
                        hi_open ? ')' : ']', tm_vjson_show(v, b, sizeof b));
}

/* v (at field f) an integer in [lo, hi]; returns 1 and sets *out if so. */
static int check_int_at(tm_problems *p, const char *f, json_t *v, long long lo, long long hi, long long *out)
{
    char b[64];
    if (!json_is_integer(v)) {
        if (json_is_real(v))
            tm_problems_add(p, f, "must be an integer, got %s", tm_vjson_show(v, b, sizeof b));
        else
            tm_problems_add(p, f, "must be an integer, got %s", tm_vjson_type(v));
        return 0;
    }
    long long x = json_integer_value(v);
    if (x < lo || x > hi) {
        if (hi == LLONG_MAX)
            tm_problems_add(p, f, "must be an integer >= %lld, got %lld", lo, x);
        else
            tm_problems_add(p, f, "must be an integer between %lld and %lld, got %lld", lo, hi, x);
        return 0;
    }
    if (out) *out = x;
    return 1;
}

static int check_int(tm_problems *p, json_t *body, const char *key, long long lo, long long hi, long long *out)
{
    json_t *v = tm_vjson_opt(body, key);
    if (!v) return 0;
    char f[96];
    tm_vpath(f, sizeof f, "body.%s", key);
    return check_int_at(p, f, v, lo, hi, out);
}

static void check_bool(tm_problems *p, json_t *body, const char *key)
{
    json_t *v = tm_vjson_opt(body, key);
    if (v && !json_is_boolean(v)) {
        char f[96];
        tm_vpath(f, sizeof f, "body.%s", key);
        tm_problems_add(p, f, "must be a boolean, got %s", tm_vjson_type(v));
    }
}

/* ---- body parts ----------------------------------------------------------- */

static void check_prompt(tm_problems *p, json_t *body)
{
    json_t *pr = tm_vjson_opt(body, "prompt");
    if (!pr) {
        tm_problems_add(p, "body.prompt", "is required for /v1/completions");
        return;
    }
    if (json_is_string(pr)) return;
    if (!json_is_array(pr)) {
        tm_problems_add(p, "body.prompt", "must be a string or an array of token ids, got %s", tm_vjson_type(pr));
        return;
    }
    if (json_array_size(pr) == 0) {
        tm_problems_add(p, "body.prompt", "must not be empty");
        return;
    }
    json_t *first = json_array_get(pr, 0);
    if (json_is_string(first)) {
        tm_problems_add(p, "body.prompt", "a list of prompts is not supported; send one request per prompt");
        return;
    }
    if (json_is_array(first)) {
        tm_problems_add(p, "body.prompt", "a list of token-id lists is not supported; send one request per prompt");
        return;
    }
    size_t i;
    json_t *t;
    char f[96], b[64];
    json_array_foreach(pr, i, t) {
        if (json_is_integer(t) && json_integer_value(t) >= 0 && json_integer_value(t) < TOKEN_ID_LIMIT) continue;
        tm_vpath(f, sizeof f, "body.prompt[%zu]", i);
        tm_problems_add(p, f, "must be a token id (an integer from 0 to 2147483647), got %s", tm_vjson_show(t, b, sizeof b));
    }
}

static void check_stop(tm_problems *p, json_t *body)
{
    json_t *s = tm_vjson_opt(body, "stop");
    if (!s) return;
    if (json_is_string(s)) {
        if (json_string_length(s) == 0) tm_problems_add(p, "body.stop", "must not be an empty string");
        else if (json_string_length(s) > MAX_STOP_BYTES)
            tm_problems_add(p, "body.stop", "must be at most %d bytes, got %zu", MAX_STOP_BYTES, json_string_length(s));
        return;
    }
    if (!json_is_array(s)) {
        tm_problems_add(p, "body.stop", "must be a string or an array of strings, got %s", tm_vjson_type(s));
        return;
    }
    if (json_array_size(s) > MAX_STOP)
        tm_problems_add(p, "body.stop", "must have at most %d stop strings, got %zu", MAX_STOP, json_array_size(s));
    size_t i;
    json_t *e;
    char f[96];
    json_array_foreach(s, i, e) {
        if (i >= MAX_STOP) break;
        tm_vpath(f, sizeof f, "body.stop[%zu]", i);
        if (!json_is_string(e))
            tm_problems_add(p, f, "must be a string, got %s", tm_vjson_type(e));
        else if (json_string_length(e) == 0)
            tm_problems_add(p, f, "must not be an empty string");
        else if (json_string_length(e) > MAX_STOP_BYTES)
            tm_problems_add(p, f, "must be at most %d bytes, got %zu", MAX_STOP_BYTES, json_string_length(e));
    }
}

/* stop_token_ids: an array of at most MAX_STOP_IDS token ids (whether an id
 * is in the model's vocabulary is checked by the worker). */
static void check_stop_ids(tm_problems *p, json_t *body)
{
    json_t *s = tm_vjson_opt(body, "stop_token_ids");
    if (!s) return;
    if (!json_is_array(s)) {
        tm_problems_add(p, "body.stop_token_ids", "must be an array of token ids, got %s", tm_vjson_type(s));
        return;
    }
    if (json_array_size(s) > MAX_STOP_IDS)
        tm_problems_add(p, "body.stop_token_ids", "must have at most %d token ids, got %zu", MAX_STOP_IDS,
                        json_array_size(s));
    size_t i;
    json_t *e;
    char f[96], b[64];
    json_array_foreach(s, i, e) {
        if (i >= MAX_STOP_IDS) break;
        if (json_is_integer(e) && json_integer_value(e) >= 0 && json_integer_value(e) < TOKEN_ID_LIMIT) continue;
        tm_vpath(f, sizeof f, "body.stop_token_ids[%zu]", i);
        tm_problems_add(p, f, "must be a token id (an integer from 0 to 2147483647), got %s", tm_vjson_show(e, b, sizeof b));
    }
}

/* All body rules. Fills max_tokens / n of out when they are valid. */
static void check_body(tm_problems *p, json_t *body, tm_endpoint ep, unsigned flags, tm_validated *out)
{
    json_t *model = tm_vjson_opt(body, "model");
    if (model) {
        if (!json_is_string(model))
            tm_problems_add(p, "body.model", "must be a string, got %s", tm_vjson_type(model));
        else if (json_string_length(model) == 0)
            tm_problems_add(p, "body.model", "must not be empty");
    }

    long long mt = -1, mct = -1;
    int have_mt = check_int(p, body, "max_tokens", 1, LLONG_MAX, &mt);
    int have_mct = check_int(p, body, "max_completion_tokens", 1, LLONG_MAX, &mct);
    if (have_mt && have_mct && mt != mct)
        tm_problems_add(p, "body.max_tokens",
                        "must equal max_completion_tokens when both are given (%lld vs %lld)", mt, mct);
    out->max_tokens = have_mct ? mct : have_mt ? mt : -1;

    check_range(p, body, "temperature", 0, 0, 2, 0);
    check_range(p, body, "top_p", 0, 1, 1, 0);
    check_int(p, body, "top_k", -1, LLONG_MAX, NULL);
    check_range(p, body, "min_p", 0, 0, 1, 0);
    check_int(p, body, "seed", LLONG_MIN, LLONG_MAX, NULL);
    check_stop(p, body);
    check_stop_ids(p, body);
    long long n = 1;
    check_int(p, body, "n", 1, MAX_N, &n);
    out->n = n;
    check_range(p, body, "presence_penalty", -2, 0, 2, 0);
    check_range(p, body, "frequency_penalty", -2, 0, 2, 0);
    check_range(p, body, "repetition_penalty", 0, 1, 2, 0);
    check_bool(p, body, "return_token_ids");
    tm_validate_body_fields(p, body, ep, flags);

    if (ep == TM_ENDPOINT_CHAT) {
        check_int(p, body, "top_logprobs", 0, MAX_LOGPROBS, NULL);
        check_bool(p, body, "logprobs");
        json_t *tl = tm_vjson_opt(body, "top_logprobs");
        if (tl && !json_is_true(tm_vjson_opt(body, "logprobs")))
            tm_problems_add(p, "body.top_logprobs", "requires logprobs to be true");
        tm_validate_messages(p, body);
    } else if (ep == TM_ENDPOINT_COMPLETIONS) {
        check_int(p, body, "logprobs", 0, MAX_LOGPROBS, NULL);
        check_prompt(p, body);
    }
}

/* ---- the line ------------------------------------------------------------- */

/* First offending byte (0-based) of line, or len if clean; *nul says why. */
static size_t scan_bytes(const char *line, size_t len, int *nul)
{
    size_t i = 0;
    while (i < len) {
        /* ASCII fast path: most job files are plain ASCII JSON */
        while (i < len && (unsigned char)line[i] < 0x80 && line[i] != 0) i++;
        if (i == len) break;
        if (line[i] == 0) { *nul = 1; return i; }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)line + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0) { *nul = 0; return i; }
        i += (size_t)k;
    }
    return len;
}

/* A copy of line with every bad byte replaced by U+FFFD, so the rest of the
 * line can still be parsed and checked. NULL on allocation failure. */
static char *replace_bad_bytes(const char *line, size_t len, size_t *outlen)
{
    if (len > (SIZE_MAX - 1) / 3) return NULL;
    char *o = malloc(len * 3 + 1);
    if (!o) return NULL;
    size_t i = 0, j = 0;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = line[i] ? utf8proc_iterate((const utf8proc_uint8_t *)line + i, (utf8proc_ssize_t)(len - i), &cp) : -1;
        if (k <= 0) {
            memcpy(o + j, "\xEF\xBF\xBD", 3);
            j += 3;
            i++;
        } else {
            memcpy(o + j, line + i, (size_t)k);
            j += (size_t)k;
            i += (size_t)k;
        }
    }
    o[j] = 0;
    *outlen = j;
    return o;
}

tm_status tm_validate_line(const char *line, size_t len, tm_validated *out, tm_problems *problems)
{
    return tm_validate_line_ex(line, len, 0, out, problems);
}

tm_status tm_validate_line_ex(const char *line, size_t len, unsigned flags, tm_validated *out, tm_problems *problems)
{
    tm_problems local;
    tm_validated scratch = {0};
    tm_problems *p = problems ? problems : &local;
    if (!out) out = &scratch;
    tm_problems_init(p);
    out->custom_id = out->model = out->body_json = NULL;
    out->endpoint = TM_ENDPOINT_NONE;
    out->max_tokens = -1;
    out->n = 1;
    if (!line) line = "", len = 0;

    tm_status st = TM_OK;
    char *copy = NULL;
    json_t *root = NULL;
    const char *text = line;
    size_t tlen = len;

    int nul = 0;
    size_t bad = scan_bytes(line, len, &nul);
    if (bad < len) {
        if (nul)
            tm_problems_add(p, "line", "contains a NUL byte at byte %zu", bad + 1);
        else
            tm_problems_add(p, "line", "not valid UTF-8 at byte %zu", bad + 1);
        if (!(copy = replace_bad_bytes(line, len, &tlen))) { st = TM_ERR_NOMEM; goto done; }
        text = copy;
    }

    /* Parse: duplicate keys and 64-bit overflow are reported, then the line
     * is parsed again leniently so the other fields can still be checked. */
    json_error_t je;
    int id_only = 0;
    root = json_loadb(text, tlen, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        enum json_error_code code = json_error_code(&je);
        if (code == json_error_out_of_memory) { st = TM_ERR_NOMEM; goto done; }
        if (code == json_error_duplicate_key) {
            tm_problems_add(p, "line", "duplicate key at column %d: %s", je.column, je.text);
            root = json_loadb(text, tlen, JSON_DECODE_ANY, &je);
        } else if (code == json_error_numeric_overflow) {
            tm_problems_add(p, "line", "number out of range at column %d (integers must fit in 64 bits, reals in a double): %s",
                            je.column, je.text);
            root = json_loadb(text, tlen, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &je);
            id_only = 1; /* integers are now reals: only custom_id is trustworthy */
        } else if (code == json_error_null_character || code == json_error_invalid_utf8) {
            if (bad >= len) tm_problems_add(p, "line", "invalid JSON at column %d: %s", je.column, je.text);
        } else {
            tm_problems_add(p, "line", "invalid JSON at column %d: %s", je.column, je.text);
        }
        if (!root) goto done;
    }
    if (!json_is_object(root)) {
        tm_problems_add(p, "line", "must be a JSON object, got %s", tm_vjson_type(root));
        goto done;
    }

    /* custom_id first, so even a bad line is recorded under its id */
    json_t *cid = json_object_get(root, "custom_id");
    if (!cid) {
        tm_problems_add(p, "custom_id", "is required");
    } else if (!json_is_string(cid)) {
        tm_problems_add(p, "custom_id", "must be a string, got %s", tm_vjson_type(cid));
    } else if (json_string_length(cid) == 0) {
        tm_problems_add(p, "custom_id", "must not be empty");
    } else if (json_string_length(cid) > TM_MAX_CUSTOM_ID) {
        tm_problems_add(p, "custom_id", "is %zu bytes, longer than the limit of %d", json_string_length(cid),
                        TM_MAX_CUSTOM_ID);
    } else if (copy && strstr(json_string_value(cid), "\xEF\xBF\xBD")) {
        tm_problems_add(p, "custom_id", "is not valid UTF-8");
    } else if (!(out->custom_id = strdup(json_string_value(cid)))) {
        st = TM_ERR_NOMEM;
        goto done;
    }
    if (id_only) goto done;

    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "custom_id") && strcmp(key, "method") && strcmp(key, "url") && strcmp(key, "body"))
            tm_problems_add(p, key, "unknown field (allowed: custom_id, method, url, body)");
    }

    char b[64];
    json_t *method = json_object_get(root, "method");
    if (!method)
        tm_problems_add(p, "method", "is required (\"POST\")");
    else if (!json_is_string(method))
        tm_problems_add(p, "method", "must be a string, got %s", tm_vjson_type(method));
    else if (strcmp(json_string_value(method), "POST") != 0)
        tm_problems_add(p, "method", "must be \"POST\", got %s", tm_vjson_show(method, b, sizeof b));

    tm_endpoint ep = TM_ENDPOINT_NONE;
    json_t *url = json_object_get(root, "url");
    if (!url) {
        tm_problems_add(p, "url", "is required (supported: /v1/chat/completions, /v1/completions)");
    } else if (!json_is_string(url)) {
        tm_problems_add(p, "url", "must be a string, got %s", tm_vjson_type(url));
    } else if (strcmp(json_string_value(url), "/v1/chat/completions") == 0) {
        ep = TM_ENDPOINT_CHAT;
    } else if (strcmp(json_string_value(url), "/v1/completions") == 0) {
        ep = TM_ENDPOINT_COMPLETIONS;
    } else {
        tm_problems_add(p, "url", "unsupported url %s (supported: /v1/chat/completions, /v1/completions)",
                        tm_vjson_show(url, b, sizeof b));
    }
    out->endpoint = ep;

    json_t *body = json_object_get(root, "body");
    if (!body)
        tm_problems_add(p, "body", "is required");
    else if (!json_is_object(body))
        tm_problems_add(p, "body", "must be an object, got %s", tm_vjson_type(body));
    else
        check_body(p, body, ep, flags, out);

    if (p->total == 0) {
        json_t *model = json_object_get(body, "model");
        if (json_is_string(model) && !(out->model = strdup(json_string_value(model)))) { st = TM_ERR_NOMEM; goto done; }
        if (!(out->body_json = json_dumps(body, JSON_COMPACT))) { st = TM_ERR_NOMEM; goto done; }
    }

done:
    json_decref(root);
    free(copy);
    if (st == TM_OK && p->total > 0) st = TM_ERR_INPUT;
    if (st != TM_OK) {
        /* on failure only custom_id (and endpoint) stay set */
        free(out->model);
        free(out->body_json);
        out->model = out->body_json = NULL;
        out->max_tokens = -1;
        out->n = 1;
        if (st == TM_ERR_NOMEM) { free(out->custom_id); out->custom_id = NULL; }
    }
    if (out == &scratch) tm_validated_clear(&scratch);
    return st;
}
