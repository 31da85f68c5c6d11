/* output.c — OpenAI batch output/error JSONL lines and export bundles
 * (formats in output.h) from plain records; writes through tm_out (optional
 * zstd stream + running SHA-256) and libarchive.
 */
#include "output/output.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "util/buf.h"
#include "util/sha256.h"
#include "util/timeutil.h"

struct tm_out {
    FILE *f;
    int owned;          /* f opened by us (closed on finish) */
    char *path;         /* final path when owned */
    char *partial;      /* path.partial when owned */
    ZSTD_CCtx *z;
    void *zbuf;
    size_t zcap;
    tm_sha256_ctx sha;
    uint64_t bytes;
};

static tm_status raw_write(tm_out *o, const void *p, size_t n, tm_err *err)
{
    if (n && fwrite(p, 1, n, o->f) != n)
        return tm_errf(err, TM_ERR_IO, "%s: write failed: %s", o->path ? o->path : "output", strerror(errno));
    tm_sha256_update(&o->sha, p, n);
    o->bytes += n;
    return TM_OK;
}

static tm_status out_init(tm_out *o, int zstd, tm_err *err)
{
    tm_sha256_init(&o->sha);
    if (!zstd) return TM_OK;
    o->z = ZSTD_createCCtx();
    o->zcap = ZSTD_CStreamOutSize();
    o->zbuf = malloc(o->zcap);
    if (!o->z || !o->zbuf) return tm_errf(err, TM_ERR_NOMEM, "output: out of memory");
    ZSTD_CCtx_setParameter(o->z, ZSTD_c_compressionLevel, 3);
    ZSTD_CCtx_setParameter(o->z, ZSTD_c_checksumFlag, 1);
    return TM_OK;
}

tm_status tm_out_open_file(FILE *f, int zstd, tm_out **out, tm_err *err)
{
    *out = NULL;
    tm_out *o = calloc(1, sizeof *o);
    if (!o) return tm_errf(err, TM_ERR_NOMEM, "output: out of memory");
    o->f = f;
    tm_status s = out_init(o, zstd, err);
    if (s) { tm_out_abort(o); return s; }
    *out = o;
    return TM_OK;
}

/* Where an output path is written. A symbolic link is followed on purpose,
 * to its target (a dangling one is refused). A regular file, or a new path,
 * is written to a temporary beside it, created O_CREAT|O_EXCL|O_NOFOLLOW
 * (mkstemp: a planted file or link is never followed or reused) and renamed
 * into place when complete; anything else (a device such as /dev/null, a
 * FIFO, a socket) is written in place, never replaced. *final and *tmp
 * (NULL when in place) are the caller's to free. */
static tm_status target_open(const char *path, char **final, char **tmp, FILE **f, tm_err *err)
{
    *final = *tmp = NULL;
    *f = NULL;
    struct stat st;
    int exists = lstat(path, &st) == 0;
    if (exists && S_ISLNK(st.st_mode)) {
        char *real = realpath(path, NULL);
        if (!real) return tm_errf(err, TM_ERR_IO, "%s: a symbolic link to nothing usable: %s", path, strerror(errno));
        *final = real;
        exists = stat(real, &st) == 0;
    } else if (!(*final = strdup(path))) {
        return tm_errf(err, TM_ERR_NOMEM, "output: out of memory");
    }
    if (exists && S_ISDIR(st.st_mode)) return tm_errf(err, TM_ERR_USAGE, "%s: is a directory", path);
    if (exists && !S_ISREG(st.st_mode)) { /* a device, FIFO or socket: in place */
        int fd = open(*final, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || !(*f = fdopen(fd, "wb"))) {
            tm_status s = tm_errf(err, TM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
            if (fd >= 0) close(fd);
            return s;
        }
        return TM_OK;
    }
    size_t n = strlen(*final);
    if (!(*tmp = malloc(n + sizeof ".partial.XXXXXX"))) return tm_errf(err, TM_ERR_NOMEM, "output: out of memory");
    memcpy(*tmp, *final, n);
    memcpy(*tmp + n, ".partial.XXXXXX", sizeof ".partial.XXXXXX");
    int fd = mkostemp(*tmp, O_CLOEXEC);
    if (fd < 0) {
        tm_status s = tm_errf(err, TM_ERR_IO, "%s: cannot create a temporary beside it: %s", path, strerror(errno));
        free(*tmp);
        *tmp = NULL;
        return s;
    }
    mode_t um = umask(0);
    umask(um);
    fchmod(fd, exists ? (st.st_mode & 07777) : (0666 & ~um)); /* mkstemp made it 0600 */
    if (!(*f = fdopen(fd, "wb"))) {
        tm_status s = tm_errf(err, TM_ERR_IO, "%s: %s", *tmp, strerror(errno));
        close(fd);
        unlink(*tmp);
        free(*tmp);
        *tmp = NULL;
        return s;
    }
    return TM_OK;
}

tm_status tm_out_open(const char *path, int zstd, tm_out **out, tm_err *err)
{
    if (!strcmp(path, "-")) return tm_out_open_file(stdout, zstd, out, err);
    *out = NULL;
    tm_out *o = calloc(1, sizeof *o);
    if (!o) return tm_errf(err, TM_ERR_NOMEM, "output: out of memory");
    tm_status s = target_open(path, &o->path, &o->partial, &o->f, err);
    if (s) {
        tm_out_abort(o);
        return s;
    }
    o->owned = 1;
    s = out_init(o, zstd, err);
    if (s) { tm_out_abort(o); return s; }
    *out = o;
    return TM_OK;
}

static tm_status zpump(tm_out *o, ZSTD_inBuffer *in, ZSTD_EndDirective mode, tm_err *err)
{
    for (;;) {
        ZSTD_outBuffer ob = {o->zbuf, o->zcap, 0};
        size_t r = ZSTD_compressStream2(o->z, &ob, in, mode);
        if (ZSTD_isError(r)) return tm_errf(err, TM_ERR_INTERNAL, "output: zstd: %s", ZSTD_getErrorName(r));
        tm_status s = raw_write(o, o->zbuf, ob.pos, err);
        if (s) return s;
        if (mode == ZSTD_e_continue ? in->pos == in->size : r == 0) return TM_OK;
    }
}

tm_status tm_out_write(tm_out *o, const void *p, size_t n, tm_err *err)
{
    if (!o->z) return raw_write(o, p, n, err);
    ZSTD_inBuffer in = {p, n, 0};
    return zpump(o, &in, ZSTD_e_continue, err);
}

tm_status tm_out_finish(tm_out *o, uint64_t *bytes, char sha_hex[65], tm_err *err)
{
    tm_status s = TM_OK;
    if (o->z) {
        ZSTD_inBuffer in = {NULL, 0, 0};
        s = zpump(o, &in, ZSTD_e_end, err);
    }
    if (!s && fflush(o->f) != 0)
        s = tm_errf(err, TM_ERR_IO, "%s: write failed: %s", o->path ? o->path : "output", strerror(errno));
    if (!s && o->owned) {
        int rc = fclose(o->f);
        o->f = NULL;
        if (rc != 0) s = tm_errf(err, TM_ERR_IO, "%s: write failed: %s", o->path, strerror(errno));
        else if (o->partial && rename(o->partial, o->path) != 0)
            s = tm_errf(err, TM_ERR_IO, "%s: cannot rename into place: %s", o->path, strerror(errno));
        else {
            free(o->partial);
            o->partial = NULL;
        }
    }
    if (s) { tm_out_abort(o); return s; }
    if (bytes) *bytes = o->bytes;
    if (sha_hex) {
        uint8_t d[32];
        tm_sha256_final(&o->sha, d);
        tm_sha256_hex(d, sha_hex);
    }
    tm_out_abort(o); /* frees; nothing partial is left */
    return TM_OK;
}

void tm_out_abort(tm_out *o)
{
    if (!o) return;
    if (o->owned && o->f) fclose(o->f);
    if (o->partial) unlink(o->partial);
    ZSTD_freeCCtx(o->z);
    free(o->zbuf);
    free(o->path);
    free(o->partial);
    free(o);
}

/* ---- JSONL lines -------------------------------------------------------- */

/* Dump line (compact, ASCII) and write it with a newline. */
static tm_status write_json_line(tm_out *o, json_t *line, tm_err *err)
{
    if (!line) return tm_errf(err, TM_ERR_NOMEM, "output: out of memory");
    char *s = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(line);
    if (!s) return tm_errf(err, TM_ERR_NOMEM, "output: out of memory");
    size_t n = strlen(s);
    s[n] = '\n'; /* replaces the NUL; write n+1 bytes */
    tm_status st = tm_out_write(o, s, n + 1, err);
    free(s);
    return st;
}

static json_t *batch_req_id(const char *request_id)
{
    const char *hex = strncmp(request_id, "req_", 4) ? request_id : request_id + 4;
    char id[128];
    snprintf(id, sizeof id, "batch_req_%.100s", hex);
    return json_string(id);
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

/* Append JSON text t (valid JSON, checked by the caller) to b compacted, with
 * every non-ASCII character as \uXXXX (a surrogate pair above U+FFFF): the
 * bytes jansson's JSON_COMPACT | JSON_ENSURE_ASCII dump of a jansson-written
 * body give, without parsing its numbers (a seed above 2^63 stays exact). */
static tm_status ascii_compact(const char *t, size_t len, tm_buf *b)
{
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (!in_str && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) continue;
        if (c < 0x80) {
            if (in_str && c == '\\' && i + 1 < len) {
                if (tm_buf_append(b, t + i, 2)) return TM_ERR_NOMEM;
                i++;
                continue;
            }
            if (c == '"') in_str = !in_str;
            if (tm_buf_append(b, &t[i], 1)) return TM_ERR_NOMEM;
            continue;
        }
        int n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
        uint32_t cp = c & (0x3f >> n);
        for (int k = 0; k < n && i + 1 < len; k++) cp = (cp << 6) | ((unsigned char)t[++i] & 0x3f);
        char seq[16];
        if (cp < 0x10000) {
            snprintf(seq, sizeof seq, "\\u%04X", (unsigned)cp);
        } else {
            cp -= 0x10000;
            snprintf(seq, sizeof seq, "\\u%04X\\u%04X", (unsigned)(0xd800 | (cp >> 10)), (unsigned)(0xdc00 | (cp & 0x3ff)));
        }
        if (tm_buf_puts(b, seq)) return TM_ERR_NOMEM;
    }
    return TM_OK;
}

tm_status tm_output_result_line(tm_out *o, const char *request_id, const char *custom_id, const char *body,
                                size_t len, tm_err *err)
{
    json_error_t je;
    /* validate only (any integer size): the body is embedded as text */
    json_t *v = json_loadb(body, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
    if (!v) return tm_errf(err, TM_ERR_INPUT, "output: %s: stored response is not JSON: %s", request_id, je.text);
    json_decref(v);
    /* the line with a null body, then the body spliced in before its end */
    static const char tail[] = "null},\"error\":null}";
    json_t *line = json_pack("{s:o, s:o, s:{s:i, s:s, s:n}, s:n}", "id", batch_req_id(request_id), "custom_id",
                             str_or_null(custom_id), "response", "status_code", 200, "request_id", request_id,
                             "body", "error");
    char *head = line ? json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(line);
    size_t hl = head ? strlen(head) : 0;
    if (!head || hl < sizeof tail - 1 || strcmp(head + hl - (sizeof tail - 1), tail)) {
        free(head);
        return tm_errf(err, TM_ERR_NOMEM, "output: out of memory");
    }
    tm_buf b;
    tm_buf_init(&b);
    tm_status s = tm_buf_append(&b, head, hl - (sizeof tail - 1));
    if (!s) s = ascii_compact(body, len, &b);
    if (!s) s = tm_buf_puts(&b, "},\"error\":null}\n");
    free(head);
    if (s) s = tm_errf(err, TM_ERR_NOMEM, "output: out of memory");
    else s = tm_out_write(o, b.data, b.len, err);
    tm_buf_free(&b);
    return s;
}

/* with_at: "line" and "param" in "error" too */
static tm_status error_line(tm_out *o, const char *request_id, const char *custom_id, const char *state,
                            const char *code, const char *message, int with_at, int64_t line_no,
                            const char *param, tm_err *err)
{
    const char *fallback = state ? state : "error";
    json_t *e = json_pack("{s:s, s:s}", "code", code ? code : fallback, "message",
                          message ? message : "no error recorded");
    if (!e) /* not UTF-8 (an edited DB): as when nothing usable was recorded */
        e = json_pack("{s:s, s:s}", "code", fallback, "message", "no error recorded");
    if (!e) return tm_errf(err, TM_ERR_INPUT, "output: %s: state is not UTF-8", request_id ? request_id : "?");
    json_t *p = with_at && param ? json_string(param) : NULL; /* NULL also for a param that is not UTF-8 */
    if (with_at && (json_object_set_new(e, "line", line_no > 0 ? json_integer((json_int_t)line_no) : json_null()) ||
                    json_object_set_new(e, "param", p ? p : json_null()))) {
        json_decref(e);
        return tm_errf(err, TM_ERR_NOMEM, "output: out of memory");
    }
    json_t *line = json_pack("{s:o, s:o, s:n, s:o}", "id", batch_req_id(request_id ? request_id : ""),
                             "custom_id", str_or_null(custom_id), "response", "error", e);
    return write_json_line(o, line, err);
}

tm_status tm_output_error_line(tm_out *o, const char *request_id, const char *custom_id, const char *state,
                               const char *code, const char *message, tm_err *err)
{
    return error_line(o, request_id, custom_id, state, code, message, 0, 0, NULL, err);
}

tm_status tm_output_error_line_at(tm_out *o, const char *request_id, const char *custom_id, const char *state,
                                  const char *code, const char *message, int64_t line_no, const char *param,
                                  tm_err *err)
{
    return error_line(o, request_id, custom_id, state, code, message, 1, line_no, param, err);
}

/* ---- export bundle -------------------------------------------------------- */

typedef struct member {
    const char *name;
    FILE *file;        /* output/errors: a tmpfile */
    char *mem;         /* json members */
    uint64_t size;
    char sha[65];
} member;

static tm_status jsonl_member(const tm_output_bundle *b, int errors, member *m, tm_err *err)
{
    m->file = tmpfile();
    if (!m->file) return tm_errf(err, TM_ERR_IO, "export: cannot create a temporary file: %s", strerror(errno));
    tm_out *o;
    tm_status s = tm_out_open_file(m->file, 1, &o, err);
    if (s) return s;
    s = b->lines(b->lines_ctx, errors, o, NULL, err);
    if (s) { tm_out_abort(o); return s; }
    return tm_out_finish(o, &m->size, m->sha, err);
}

static tm_status json_member(const json_t *v, member *m, tm_err *err)
{
    if (!v) return tm_errf(err, TM_ERR_NOMEM, "export: out of memory");
    m->mem = json_dumps(v, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (!m->mem) return tm_errf(err, TM_ERR_NOMEM, "export: out of memory");
    size_t n = strlen(m->mem);
    char *p = realloc(m->mem, n + 2);
    if (!p) return tm_errf(err, TM_ERR_NOMEM, "export: out of memory");
    m->mem = p;
    m->mem[n] = '\n';
    m->mem[n + 1] = 0;
    m->size = n + 1;
    uint8_t d[32];
    tm_sha256(m->mem, (size_t)m->size, d);
    tm_sha256_hex(d, m->sha);
    return TM_OK;
}

static tm_status archive_fail(struct archive *a, const char *path, tm_err *err)
{
    return tm_errf(err, TM_ERR_IO, "%s: %s", path, archive_error_string(a) ? archive_error_string(a) : "archive error");
}

static tm_status write_member(struct archive *a, const char *path, member *m, int64_t mtime, tm_err *err)
{
    struct archive_entry *e = archive_entry_new();
    if (!e) return tm_errf(err, TM_ERR_NOMEM, "export: out of memory");
    archive_entry_set_pathname(e, m->name);
    archive_entry_set_size(e, (la_int64_t)m->size);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, (time_t)mtime, 0);
    tm_status s = TM_OK;
    if (archive_write_header(a, e) != ARCHIVE_OK) s = archive_fail(a, path, err);
    archive_entry_free(e);
    if (s) return s;
    if (m->mem) {
        if (archive_write_data(a, m->mem, (size_t)m->size) != (la_ssize_t)m->size) return archive_fail(a, path, err);
        return TM_OK;
    }
    rewind(m->file);
    char buf[65536];
    uint64_t left = m->size;
    while (left) {
        size_t want = left < sizeof buf ? (size_t)left : sizeof buf;
        size_t got = fread(buf, 1, want, m->file);
        if (got != want) return tm_errf(err, TM_ERR_IO, "export: temporary file read failed");
        if (archive_write_data(a, buf, got) != (la_ssize_t)got) return archive_fail(a, path, err);
        left -= got;
    }
    return TM_OK;
}

tm_status tm_output_export(const tm_output_bundle *b, const char *path, tm_err *err)
{
    enum { OUT, ERRS, JOB, COST, MANIFEST, NM };
    member m[NM] = {{.name = "output.jsonl.zst"}, {.name = "errors.jsonl.zst"}, {.name = "job.json"},
                    {.name = "cost.json"}, {.name = "manifest.json"}};
    if (!b->job_id || !b->lines || !b->request_counts)
        return tm_errf(err, TM_ERR_INTERNAL, "export: incomplete bundle");
    int64_t now = tm_now_unix();
    struct archive *a = NULL;
    char *partial = NULL;
    tm_status s = jsonl_member(b, 0, &m[OUT], err);
    if (!s) s = jsonl_member(b, 1, &m[ERRS], err);
    if (!s) s = json_member(b->job, &m[JOB], err);
    if (!s) s = json_member(b->cost, &m[COST], err);
    if (!s) {
        json_t *members = json_array();
        for (int i = 0; members && i < MANIFEST; i++)
            json_array_append_new(members, json_pack("{s:s, s:I, s:s}", "name", m[i].name, "size",
                                                     (json_int_t)m[i].size, "sha256", m[i].sha));
        json_t *man = members ? json_pack("{s:s, s:s, s:I, s:o, s:O}", "format", "tokenmill-bundle/1", "job_id",
                                          b->job_id, "created_at", (json_int_t)now, "members", members,
                                          "request_counts", b->request_counts)
                              : NULL;
        s = json_member(man, &m[MANIFEST], err);
        json_decref(man);
    }
    char *final = NULL;
    FILE *f = NULL;
    if (!s) s = target_open(path, &final, &partial, &f, err);
    if (!s) {
        a = archive_write_new();
        if (!a) s = tm_errf(err, TM_ERR_NOMEM, "export: out of memory");
        else if (archive_write_add_filter_zstd(a) != ARCHIVE_OK || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK)
            s = archive_fail(a, path, err);
        else if (archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK || /* no zero padding after the frame */
                 archive_write_open_FILE(a, f) != ARCHIVE_OK)
            s = archive_fail(a, path, err);
        for (int i = 0; !s && i < NM; i++) s = write_member(a, path, &m[i], now, err);
        if (!s && archive_write_close(a) != ARCHIVE_OK) s = archive_fail(a, path, err);
        if (a) archive_write_free(a);
        if (fclose(f) != 0 && !s) s = tm_errf(err, TM_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        if (!s && partial && rename(partial, final) != 0)
            s = tm_errf(err, TM_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
        if (s && partial) unlink(partial);
    }
    free(partial);
    free(final);
    for (int i = 0; i < NM; i++) {
        if (m[i].file) fclose(m[i].file);
        free(m[i].mem);
    }
    return s;
}
