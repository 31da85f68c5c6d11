/* fuzz_jobfile.c — libFuzzer target for the job-file reader (jobfile.h).
 *
 * The bytes go through tm_jobfile_read_memory, the same libarchive path as
 * files (filters, tar/zip, raw, member decompression), with a small max_line
 * so the over-long-line path is hit. Checks: line numbers count up from 1 per
 * source, len <= max_line, too_long iff full_len > max_line, data is
 * NUL-terminated at len, and errors are only TM_ERR_INPUT.
 * Replayed by ctest over tests/fuzz/corpus/jobfile/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/jobfile.h"

#define FUZZ_MAX_LINE 64

typedef struct fuzz_ctx {
    long expect;   /* next expected line number */
    long lines;    /* lines seen in total */
} fuzz_ctx;

static tm_status on_line(void *vctx, const tm_jobfile_line *l, tm_err *err)
{
    (void)err;
    fuzz_ctx *c = vctx;
    if (l->lineno != c->expect) abort();
    c->expect++;
    c->lines++;
    if (!l->data || !l->source) abort();
    if (l->len > FUZZ_MAX_LINE || l->len > l->full_len) abort();
    if (l->too_long != (l->full_len > FUZZ_MAX_LINE)) abort();
    if (!l->too_long && l->len != l->full_len) abort();
    if (l->data[l->len] != 0) abort();
    if (memchr(l->data, '\n', l->len)) abort();
    return TM_OK;
}

static tm_status on_end(void *vctx, const char *source, long lines, tm_err *err)
{
    (void)err;
    fuzz_ctx *c = vctx;
    if (!source || lines != c->expect - 1) abort();
    c->expect = 1;
    return TM_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_ctx c = {1, 0};
    tm_jobfile_callbacks cb = {on_line, on_end, &c};
    tm_err err;
    tm_status st = tm_jobfile_read_memory("fuzz.jsonl", data, size, FUZZ_MAX_LINE, &cb, &err);
    if (st != TM_OK && st != TM_ERR_INPUT && st != TM_ERR_NOMEM) abort();
    if (st != TM_OK && strnlen(err.msg, sizeof err.msg) == sizeof err.msg) abort();
    return 0;
}
