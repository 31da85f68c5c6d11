/* fuzz_result_line.c — libFuzzer target for output/'s batch line writers
 * (output.h): a stored response body (the queue DB is a file anyone can
 * edit) embedded as text by tm_output_result_line, and error lines from
 * arbitrary code / message bytes.
 *
 * Input: the body bytes; the first line (up to '\n') also serves as an error
 * code and the rest as its message. Checks: a body the writer accepts gives
 * one line, ASCII only, that parses as JSON whose response.body equals the
 * input parsed (integers read as reals); a refused body writes nothing; the
 * error line parses, with the code given or (not UTF-8) the state.
 * Replayed by ctest over tests/fuzz/corpus/result_line/.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output/output.h"

static char *written(FILE *f, tm_out *o, int finish, size_t *n)
{
    if (finish) { if (tm_out_finish(o, NULL, NULL, NULL) != TM_OK) abort(); }
    else tm_out_abort(o);
    long len = ftell(f);
    if (len < 0) abort();
    char *b = calloc(1, (size_t)len + 1);
    if (!b) abort();
    rewind(f);
    if (fread(b, 1, (size_t)len, f) != (size_t)len) abort();
    *n = (size_t)len;
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16) return 0;
    const char *body = (const char *)data;
    FILE *f = tmpfile();
    tm_out *o;
    if (!f || tm_out_open_file(f, 0, &o, NULL) != TM_OK) abort();
    tm_status s = tm_output_result_line(o, "req_00", "c", body, size, NULL);
    size_t n;
    char *line = written(f, o, 1, &n);
    fclose(f);
    if (s) {
        if (n) abort(); /* refused: nothing written */
    } else {
        if (!n || line[n - 1] != '\n' || memchr(line, '\n', n - 1)) abort();
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)line[i] >= 0x80) abort();
        json_t *l = json_loadb(line, n, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
        json_t *in = json_loadb(body, size, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
        json_t *out = json_object_get(json_object_get(l, "response"), "body");
        if (!l || !in || !json_equal(in, out)) abort();
        json_decref(l);
        json_decref(in);
    }
    free(line);

    /* error line: code = first line, message = the rest (NUL-terminated copies) */
    const uint8_t *nl = memchr(data, '\n', size);
    size_t cl = nl ? (size_t)(nl - data) : size;
    char *code = strndup(body, cl), *msg = strndup(nl ? (const char *)nl + 1 : "", nl ? size - cl - 1 : 0);
    if (!code || !msg) abort();
    f = tmpfile();
    if (!f || tm_out_open_file(f, 0, &o, NULL) != TM_OK) abort();
    s = tm_output_error_line(o, "req_01", NULL, "failed", code, msg, NULL);
    line = written(f, o, !s, &n);
    fclose(f);
    if (!s) {
        json_t *l = json_loadb(line, n, 0, NULL);
        const char *c = json_string_value(json_object_get(json_object_get(l, "error"), "code"));
        if (!l || !c || (strcmp(c, code) && strcmp(c, "failed"))) abort();
        json_decref(l);
    }
    free(line);
    free(code);
    free(msg);
    return 0;
}
