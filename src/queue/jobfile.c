/* jobfile.c — streaming job-file reader (plain, compressed, tar/zip) -> lines.
 *
 * One libarchive path for everything: the outer reader detects compression
 * and container by content; plain files come out as the "raw" format. Each
 * regular archive member goes through a second reader (filters + raw) so a
 * compressed member is decompressed and a nested archive is detected. Lines
 * are split from fixed-size blocks into one buffer capped at max_line + 2
 * bytes; longer lines are counted to their end but not stored.
 */
#include "queue/jobfile.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#define JF_BLOCK (64 * 1024)

/* Where the outer reader's bytes come from when reading a file descriptor. */
typedef struct jf_fdsrc {
    int fd;
    int io_errno; /* set when read(2) failed: an I/O error, not bad data */
    char buf[JF_BLOCK];
} jf_fdsrc;

/* The member reader's source: the outer archive's current entry. */
typedef struct jf_member {
    struct archive *outer;
    int outer_failed;
    char buf[JF_BLOCK];
} jf_member;

typedef struct jf_reader {
    const tm_jobfile_callbacks *cb;
    size_t max_line;
    char *line;       /* pending line bytes (at most max_line + 1 stored) */
    size_t line_len;  /* bytes stored */
    size_t line_cap;
    size_t full_len;  /* the pending line's true length so far */
    unsigned char last; /* last byte of the pending line (for "\r\n") */
    long lineno;
    int bom;          /* bytes of a leading byte-order mark matched; -1: done */
    int sources;      /* sources reported through on_source_end */
    jf_fdsrc *fdsrc;  /* NULL when reading memory */
    char name[512];   /* display name of the input */
    char source[1024];
    char block[JF_BLOCK];
    jf_member member;
} jf_reader;

/* Copy s into out as displayable text: control bytes and invalid UTF-8
 * become '?'; truncated (on a character boundary) to fit. */
static void jf_display(char *out, size_t outsz, const char *s)
{
    size_t o = 0;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    size_t n = strlen(s);
    while (n > 0 && o + 1 < outsz) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p, (utf8proc_ssize_t)n, &cp);
        if (k <= 0 || cp < 0x20 || cp == 0x7f) {
            out[o++] = '?';
            k = k <= 0 ? 1 : k;
        } else {
            if (o + (size_t)k + 1 > outsz) break;
            memcpy(out + o, p, (size_t)k);
            o += (size_t)k;
        }
        p += k;
        n -= (size_t)k;
    }
    out[o] = 0;
}

static void jf_begin_source(jf_reader *r, const char *member)
{
    if (member) {
        char m[480];
        jf_display(m, sizeof m, member);
        snprintf(r->source, sizeof r->source, "%s:%s", r->name, m);
    } else {
        snprintf(r->source, sizeof r->source, "%s", r->name);
    }
    r->lineno = 0;
    r->bom = 0;
    r->line_len = 0;
    r->full_len = 0;
    r->last = 0;
}

/* Append a line segment, storing at most max_line + 1 bytes (the +1 keeps a
 * '\r' that may precede the newline of a line exactly max_line long). */
static tm_status jf_append(jf_reader *r, const char *p, size_t n, tm_err *err)
{
    if (n == 0) return TM_OK;
    r->full_len += n;
    r->last = (unsigned char)p[n - 1];
    size_t room = r->max_line + 1 - r->line_len;
    size_t keep = n < room ? n : room;
    if (keep == 0) return TM_OK;
    size_t need = r->line_len + keep + 1;
    if (need > r->line_cap) {
        size_t cap = r->line_cap ? r->line_cap : 4096;
        while (cap < need) cap *= 2;
        if (cap > r->max_line + 2) cap = r->max_line + 2;
        char *nl = realloc(r->line, cap);
        if (!nl) return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory for a %zu-byte line", r->source, need);
        r->line = nl;
        r->line_cap = cap;
    }
    memcpy(r->line + r->line_len, p, keep);
    r->line_len += keep;
    return TM_OK;
}

static tm_status jf_emit(jf_reader *r, tm_err *err)
{
    size_t full = r->full_len;
    if (full > 0 && r->last == '\r') full--;
    tm_jobfile_line ln;
    ln.source = r->source;
    ln.lineno = ++r->lineno;
    ln.too_long = full > r->max_line;
    ln.len = ln.too_long ? r->max_line : full;
    ln.full_len = full;
    if (r->line) {
        r->line[ln.len] = 0;  /* len <= line_len < line_cap */
        ln.data = r->line;
    } else {
        ln.data = "";
    }
    r->line_len = 0;
    r->full_len = 0;
    r->last = 0;
    return r->cb->on_line ? r->cb->on_line(r->cb->ctx, &ln, err) : TM_OK;
}

/* A partial byte-order mark turned out to be data: hand it to the line. */
static tm_status jf_flush_bom(jf_reader *r, tm_err *err)
{
    int k = r->bom;
    r->bom = -1;
    return k > 0 ? jf_append(r, "\xEF\xBB\xBF", (size_t)k, err) : TM_OK;
}

static tm_status jf_feed(jf_reader *r, const char *p, size_t n, tm_err *err)
{
    /* drop a UTF-8 byte-order mark (Windows editors) at the start of a source;
     * matched byte by byte, as it may straddle read blocks */
    static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
    while (r->bom >= 0 && n > 0) {
        if ((unsigned char)*p == bom[r->bom]) {
            p++;
            n--;
            if (++r->bom == 3) r->bom = -1;
            continue;
        }
        tm_status st = jf_flush_bom(r, err);
        if (st != TM_OK) return st;
    }
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t seg = nl ? (size_t)(nl - p) : n;
        tm_status st = jf_append(r, p, seg, err);
        if (st != TM_OK) return st;
        if (!nl) break;
        if ((st = jf_emit(r, err)) != TM_OK) return st;
        p += seg + 1;
        n -= seg + 1;
    }
    return TM_OK;
}

static tm_status jf_end_source(jf_reader *r, tm_err *err)
{
    tm_status fs = jf_flush_bom(r, err);
    if (fs != TM_OK) return fs;
    if (r->full_len > 0) {
        tm_status st = jf_emit(r, err);
        if (st != TM_OK) return st;
    }
    r->sources++;
    if (r->cb->on_source_end) return r->cb->on_source_end(r->cb->ctx, r->source, r->lineno, err);
    return TM_OK;
}

/* Classify a libarchive failure: read(2) errors are I/O, the rest bad data. */
static tm_status jf_fail(jf_reader *r, struct archive *a, const char *where, tm_err *err)
{
    const char *msg = archive_error_string(a);
    if (!msg) msg = "unknown error";
    if (r->fdsrc && r->fdsrc->io_errno)
        return tm_errf(err, TM_ERR_IO, "%s: read failed: %s", where, strerror(r->fdsrc->io_errno));
    if (r->lineno > 0)
        return tm_errf(err, TM_ERR_INPUT, "%s: corrupt or truncated data after line %ld: %s", where,
                       r->lineno, msg);
    return tm_errf(err, TM_ERR_INPUT, "%s: corrupt, truncated or unreadable data: %s", where, msg);
}

static void jf_support_filters(struct archive *a)
{
    /* Explicit list instead of _filter_all: no external-program filters. */
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_bzip2(a);
    archive_read_support_filter_xz(a);
    archive_read_support_filter_lz4(a);
    archive_read_support_filter_zstd(a);
}

static la_ssize_t jf_member_read(struct archive *a, void *ctx, const void **buf)
{
    jf_member *m = ctx;
    la_ssize_t n = archive_read_data(m->outer, m->buf, sizeof m->buf);
    if (n < 0) {
        m->outer_failed = 1;
        const char *s = archive_error_string(m->outer);
        archive_set_error(a, -1 /* ARCHIVE_ERRNO_MISC */, "%s", s ? s : "read error");
        return -1;
    }
    *buf = m->buf;
    return n;
}

/* Copy data of the current raw entry of a into the line splitter. outer:
 * the archive feeding a (member readers), whose error wins when it failed. */
static tm_status jf_pump(jf_reader *r, struct archive *a, struct archive *outer, tm_err *err)
{
    for (;;) {
        la_ssize_t n = archive_read_data(a, r->block, sizeof r->block);
        if (n == 0) return TM_OK;
        if (n < 0) return jf_fail(r, outer && r->member.outer_failed ? outer : a, r->source, err);
        tm_status st = jf_feed(r, r->block, (size_t)n, err);
        if (st != TM_OK) return st;
    }
}

/* One regular archive member: decompress if needed, reject nested archives. */
static tm_status jf_read_member(jf_reader *r, struct archive *outer, tm_err *err)
{
    struct archive *in = archive_read_new();
    if (!in) return tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", r->source);
    jf_support_filters(in);
    archive_read_support_format_raw(in);
    archive_read_support_format_empty(in);
    archive_read_support_format_tar(in);  /* only to recognise nested archives */
    archive_read_support_format_zip(in);
    r->member.outer = outer;
    r->member.outer_failed = 0;
    tm_status st = TM_OK;
    struct archive_entry *e;
    if (archive_read_open(in, &r->member, NULL, jf_member_read, NULL) != ARCHIVE_OK) {
        st = jf_fail(r, r->member.outer_failed ? outer : in, r->source, err);
        goto done;
    }
    int rc = archive_read_next_header(in, &e);
    if (rc == ARCHIVE_EOF) goto done;  /* empty member */
    if (rc < ARCHIVE_WARN) {
        st = jf_fail(r, r->member.outer_failed ? outer : in, r->source, err);
        goto done;
    }
    int fmt = archive_format(in) & ARCHIVE_FORMAT_BASE_MASK;
    if (fmt != ARCHIVE_FORMAT_RAW) {
        st = tm_errf(err, TM_ERR_INPUT, "%s: member is itself an archive (%s); nested archives are not expanded",
                     r->source, archive_format_name(in) ? archive_format_name(in) : "?");
        goto done;
    }
    st = jf_pump(r, in, outer, err);
done:
    archive_read_free(in);
    return st;
}

/* Walk an opened outer archive. */
static tm_status jf_walk(jf_reader *r, struct archive *a, tm_err *err)
{
    struct archive_entry *e;
    long long headers = 0;
    for (;;) {
        int rc = archive_read_next_header(a, &e);
        if (rc == ARCHIVE_EOF) break;
        if (rc < ARCHIVE_WARN) return jf_fail(r, a, r->name, err);
        headers++;
        tm_status st;
        if ((archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_RAW) {
            jf_begin_source(r, NULL);
            st = jf_pump(r, a, NULL, err);
        } else {
            if (archive_entry_filetype(e) != AE_IFREG) continue;  /* dirs, links, devices */
            const char *mn = archive_entry_pathname_utf8(e);
            if (!mn) mn = archive_entry_pathname(e);
            jf_begin_source(r, mn ? mn : "?");
            st = jf_read_member(r, a, err);
        }
        if (st != TM_OK) return st;
        if ((st = jf_end_source(r, err)) != TM_OK) return st;
    }
    /* a tar without a single header is a file that starts with 1024 NUL
     * bytes (tar's end marker): whatever follows is never read, so it is not
     * taken for an empty job */
    if (headers == 0 && (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_TAR)
        return tm_errf(err, TM_ERR_INPUT, "%s: not a job file (it starts with NUL bytes: an empty tar archive "
                                          "or binary data)", r->name);
    if (r->sources == 0) {  /* empty file, or an archive without regular members */
        jf_begin_source(r, NULL);
        return jf_end_source(r, err);
    }
    return TM_OK;
}

static la_ssize_t jf_fd_read(struct archive *a, void *ctx, const void **buf)
{
    jf_fdsrc *s = ctx;
    for (;;) {
        ssize_t n = read(s->fd, s->buf, sizeof s->buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            s->io_errno = errno;
            archive_set_error(a, errno, "read: %s", strerror(errno));
            return -1;
        }
        *buf = s->buf;
        return n;
    }
}

/* Regular files get a seek callback: the zip reader then uses the central
 * directory (symlinks are recognised, data descriptors handled). */
static la_int64_t jf_fd_seek(struct archive *a, void *ctx, la_int64_t off, int whence)
{
    jf_fdsrc *s = ctx;
    off_t r = lseek(s->fd, (off_t)off, whence);
    if (r < 0) {
        archive_set_error(a, errno, "seek: %s", strerror(errno));
        return ARCHIVE_FATAL;
    }
    return (la_int64_t)r;
}

static jf_reader *jf_reader_new(const char *name, size_t max_line, const tm_jobfile_callbacks *cb)
{
    jf_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (max_line == 0) max_line = TM_JOBFILE_MAX_LINE_DEFAULT;
    if (max_line > TM_JOBFILE_MAX_LINE_LIMIT) max_line = TM_JOBFILE_MAX_LINE_LIMIT;
    r->max_line = max_line;
    r->cb = cb;
    jf_display(r->name, sizeof r->name, name);
    jf_begin_source(r, NULL);
    return r;
}

static void jf_reader_free(jf_reader *r)
{
    if (!r) return;
    free(r->line);
    free(r);
}

static struct archive *jf_outer_new(void)
{
    struct archive *a = archive_read_new();
    if (!a) return NULL;
    jf_support_filters(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_zip(a);
    archive_read_support_format_empty(a);
    archive_read_support_format_raw(a);
    return a;
}

tm_status tm_jobfile_read(const char *path, size_t max_line, const tm_jobfile_callbacks *cb,
                          tm_err *err)
{
    if (!path || !cb) return tm_errf(err, TM_ERR_INTERNAL, "tm_jobfile_read: NULL argument");
    int is_stdin = strcmp(path, "-") == 0;
    jf_reader *r = jf_reader_new(is_stdin ? "<stdin>" : path, max_line, cb);
    jf_fdsrc *src = calloc(1, sizeof *src);
    struct archive *a = NULL;
    tm_status st = TM_OK;
    int seekable = 0;
    if (!r || !src) { st = tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", path); goto done; }
    src->fd = -1;
    r->fdsrc = src;
    if (is_stdin) {
        src->fd = 0;
    } else {
        src->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (src->fd < 0) { st = tm_errf(err, TM_ERR_IO, "%s: cannot open: %s", r->name, strerror(errno)); goto done; }
        struct stat sb;
        if (fstat(src->fd, &sb) != 0) { st = tm_errf(err, TM_ERR_IO, "%s: cannot stat: %s", r->name, strerror(errno)); goto done; }
        if (S_ISDIR(sb.st_mode)) { st = tm_errf(err, TM_ERR_IO, "%s: is a directory", r->name); goto done; }
        seekable = S_ISREG(sb.st_mode);
    }
    if (!(a = jf_outer_new())) { st = tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", r->name); goto done; }
    archive_read_set_read_callback(a, jf_fd_read);
    archive_read_set_callback_data(a, src);
    if (seekable) archive_read_set_seek_callback(a, jf_fd_seek);
    if (archive_read_open1(a) != ARCHIVE_OK) {
        st = jf_fail(r, a, r->name, err);
        goto done;
    }
    st = jf_walk(r, a, err);
done:
    if (a) archive_read_free(a);
    if (src && src->fd > 0) close(src->fd);
    free(src);
    jf_reader_free(r);
    return st;
}

tm_status tm_jobfile_read_memory(const char *name, const void *data, size_t size, size_t max_line,
                                 const tm_jobfile_callbacks *cb, tm_err *err)
{
    if (!name || !cb || (!data && size)) return tm_errf(err, TM_ERR_INTERNAL, "tm_jobfile_read_memory: NULL argument");
    static const char empty[1] = {0};
    jf_reader *r = jf_reader_new(name, max_line, cb);
    struct archive *a = r ? jf_outer_new() : NULL;
    tm_status st;
    if (!r || !a) { st = tm_errf(err, TM_ERR_NOMEM, "%s: out of memory", name); goto done; }
    /* libarchive's memory reader wants a non-NULL pointer even for 0 bytes */
    if (archive_read_open_memory(a, size ? data : empty, size) != ARCHIVE_OK) {
        st = jf_fail(r, a, r->name, err);
        goto done;
    }
    st = jf_walk(r, a, err);
done:
    if (a) archive_read_free(a);
    jf_reader_free(r);
    return st;
}
