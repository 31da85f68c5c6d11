/* jobfile.h — streaming reader of job files: lines out, bounded memory.
 *
 * Accepts a path to .jsonl, .jsonl.zst, .jsonl.gz (also .zst/.gz by magic),
 * "-" for stdin, or an archive (.tar, .tar.gz, .tar.zst, .zip) whose regular
 * members are such files (read with libarchive; compression is detected from
 * magic bytes, not trusted from the name). Lines are delivered one at a time
 * through a callback, never the whole file; a line longer than max_line is
 * reported with too_long set (its text truncated) and reading goes on.
 *
 * source names: the path, or "archive.tar:member.jsonl" for archive members,
 * "<stdin>" for "-". Line numbers start at 1. A final line without '\n'
 * counts; "\r\n" endings are accepted (the '\r' is stripped).
 */
#ifndef TM_JOBFILE_H
#define TM_JOBFILE_H

#include <stddef.h>
#include "util/status.h"

#define TM_JOBFILE_MAX_LINE_DEFAULT (8u << 20) /* 8 MiB, as a request body may carry long prompts */

typedef struct tm_jobfile_line {
    const char *source;  /* display name of the file / archive member */
    long lineno;         /* 1-based */
    const char *data;    /* line text without the newline; not NUL-terminated beyond len */
    size_t len;
    int too_long;        /* 1: line exceeded max_line; data holds its first max_line bytes */
    size_t full_len;     /* the line's true length (>= len) */
} tm_jobfile_line;

typedef struct tm_jobfile_callbacks {
    /* Called once per line (including blank lines, so numbering is exact).
     * Returning non-TM_OK stops reading and is returned by tm_jobfile_read. */
    tm_status (*on_line)(void *ctx, const tm_jobfile_line *line, tm_err *err);
    /* Called when a source (file or archive member) ends, with its line count.
     * 0 lines means an empty file. May be NULL. */
    tm_status (*on_source_end)(void *ctx, const char *source, long lines, tm_err *err);
    void *ctx;
} tm_jobfile_callbacks;

/* Read one path ("-" = stdin). I/O and corrupt-compression errors name the
 * source and return TM_ERR_IO / TM_ERR_INPUT. */
tm_status tm_jobfile_read(const char *path, size_t max_line, const tm_jobfile_callbacks *cb,
                          tm_err *err);

#endif
