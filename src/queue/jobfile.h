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
 *
 * What is accepted (libarchive, detected by content): compression gzip,
 * bzip2, xz, lz4, zstd (stacked filters too); containers tar (all variants)
 * and zip; anything else is read as one plain file. Not enabled on purpose:
 * mtree (it reads files named in the input from the local disk), filters that
 * run an external program (lrzip, lzop, grzip), uuencode, and headerless
 * .lzma (recognised only by a heuristic). Non-regular archive members
 * (directories, links, devices) are skipped; zip read from stdin is streamed,
 * so there a symlink member is read as a file holding its target. A member
 * that is itself compressed (a.jsonl.zst inside a tar) is decompressed; a
 * member that is itself an archive (tar/zip inside a tar) is an error: nested
 * archives are not expanded. An empty file, and an archive without regular
 * members, report one on_source_end(name, 0); a tar with no header at all
 * (a file starting with 1024 NUL bytes, tar's end marker) is TM_ERR_INPUT
 * "not a job file". A UTF-8 byte-order mark at the start of a source is
 * dropped. Display names are sanitised: control bytes
 * and invalid UTF-8 become '?'.
 *
 * Memory is bounded: fixed 64 KiB read blocks plus one line buffer of at most
 * max_line + 2 bytes; the delivered data is NUL-terminated at data[len].
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
 * source and return TM_ERR_IO / TM_ERR_INPUT. max_line 0 means
 * TM_JOBFILE_MAX_LINE_DEFAULT; values above TM_JOBFILE_MAX_LINE_LIMIT are
 * clamped to it. A nonexistent/unreadable path or a directory is TM_ERR_IO;
 * corrupt or truncated compressed data or archives are TM_ERR_INPUT. */
tm_status tm_jobfile_read(const char *path, size_t max_line, const tm_jobfile_callbacks *cb,
                          tm_err *err);

#define TM_JOBFILE_MAX_LINE_LIMIT (1u << 30)

/* The same reader over bytes in memory (tests, fuzzing); name is the display
 * name used in sources and messages. */
tm_status tm_jobfile_read_memory(const char *name, const void *data, size_t size, size_t max_line,
                                 const tm_jobfile_callbacks *cb, tm_err *err);

#endif
