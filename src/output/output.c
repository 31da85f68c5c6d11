/* output.c — OpenAI batch output/error JSONL, job/cost JSON and export bundles
 * (formats in output.h). Reads the queue only through queue.h; writes through
 * tm_out (optional zstd stream + running SHA-256) and libarchive.
 */
#include "output/output.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

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

tm_status tm_out_open(const char *path, int zstd, tm_out **out, tm_err *err)
{
    if (!strcmp(path, "-")) return tm_out_open_file(stdout, zstd, out, err);
    *out = NULL;
    tm_out *o = calloc(1, sizeof *o);
    if (!o) return tm_errf(err, TM_ERR_NOMEM, "output: out of memory");
    size_t n = strlen(path);
    o->path = strdup(path);
    o->partial = malloc(n + sizeof ".partial");
    if (!o->path || !o->partial) { tm_out_abort(o); return tm_errf(err, TM_ERR_NOMEM, "output: out of memory"); }
    memcpy(o->partial, path, n);
    memcpy(o->partial + n, ".partial", sizeof ".partial");
    o->f = fopen(o->partial, "wb");
    if (!o->f) {
        tm_status s = tm_errf(err, TM_ERR_IO, "%s: cannot create: %s", o->partial, strerror(errno));
        free(o->partial);
        o->partial = NULL; /* nothing to remove */
        tm_out_abort(o);
        return s;
    }
    o->owned = 1;
    tm_status s = out_init(o, zstd, err);
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
        else if (rename(o->partial, o->path) != 0)
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

typedef struct lines_ctx {
    tm_out *o;
    int64_t n;
} lines_ctx;

static tm_status write_json_line(lines_ctx *c, json_t *line, tm_err *err)
{
    if (!line) return tm_errf(err, TM_ERR_NOMEM, "output: out of memory");
    char *s = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(line);
    if (!s) return tm_errf(err, TM_ERR_NOMEM, "output: out of memory");
    size_t n = strlen(s);
    s[n] = '\n'; /* replaces the NUL; write n+1 bytes */
    tm_status st = tm_out_write(c->o, s, n + 1, err);
    free(s);
    if (!st) c->n++;
    return st;
}

static json_t *batch_req_id(const char *request_id)
{
    const char *hex = strncmp(request_id, "req_", 4) ? request_id : request_id + 4;
    char id[TM_QUEUE_ID_MAX + 16];
    snprintf(id, sizeof id, "batch_req_%s", hex);
    return json_string(id);
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static tm_status on_result(void *ctx, const char *request_id, const char *custom_id, const char *resp,
                           size_t len, tm_err *err)
{
    json_error_t je;
    json_t *body = json_loadb(resp, len, JSON_ALLOW_NUL, &je);
    if (!body) return tm_errf(err, TM_ERR_INPUT, "output: %s: stored response is not JSON: %s", request_id, je.text);
    json_t *line = json_pack("{s:o, s:o, s:{s:i, s:s, s:o}, s:n}", "id", batch_req_id(request_id), "custom_id",
                             str_or_null(custom_id), "response", "status_code", 200, "request_id", request_id,
                             "body", body, "error");
    return write_json_line(ctx, line, err);
}

static tm_status on_error(void *ctx, const char *request_id, const char *custom_id, const char *state,
                          const char *error_json, tm_err *err)
{
    json_t *e = error_json ? json_loads(error_json, 0, NULL) : NULL;
    if (!json_is_object(e)) {
        json_decref(e);
        e = json_pack("{s:s, s:s}", "code", state ? state : "error", "message", "no error recorded");
    }
    json_t *line = json_pack("{s:o, s:o, s:n, s:o}", "id", batch_req_id(request_id ? request_id : ""),
                             "custom_id", str_or_null(custom_id), "response", "error", e);
    return write_json_line(ctx, line, err);
}

tm_status tm_output_results(tm_queue *q, const char *job_id, int errors, tm_out *o, int64_t *lines, tm_err *err)
{
    lines_ctx c = {o, 0};
    tm_status s = errors ? tm_queue_foreach_error(q, job_id, on_error, &c, err)
                         : tm_queue_foreach_result(q, job_id, on_result, &c, err);
    if (lines) *lines = c.n;
    return s;
}

/* ---- job / cost JSON -------------------------------------------------------- */

static json_t *ts(int64_t t) { return t ? json_integer(t) : json_null(); }

json_t *tm_output_job_json(const tm_queue_job *j)
{
    json_t *meta = j->metadata_json ? json_loads(j->metadata_json, 0, NULL) : NULL;
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    char window[32];
    if (j->completion_window % 3600 == 0) snprintf(window, sizeof window, "%lldh", (long long)j->completion_window / 3600);
    else snprintf(window, sizeof window, "%llds", (long long)j->completion_window);
    return json_pack(
        "{s:s, s:s, s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
        " s:{s:I, s:I, s:I}, s:o, s:o, s:o, s:I,"
        " s:{s:I, s:I, s:I, s:I, s:I, s:I},"
        " s:{s:I, s:I, s:I, s:I}}",
        "id", j->id, "object", "batch", "endpoint", str_or_null(j->endpoint), "completion_window", window,
        "status", j->state, "created_at", ts(j->created_at), "in_progress_at", ts(j->in_progress_at),
        "finalizing_at", ts(j->finalizing_at), "completed_at", ts(j->completed_at), "failed_at",
        ts(j->failed_at), "expired_at", ts(j->expired_at), "cancelling_at", ts(j->cancelling_at),
        "cancelled_at", ts(j->cancelled_at), "expires_at", ts(j->expires_at), "metadata", meta,
        "request_counts", "total", (json_int_t)j->total, "completed", (json_int_t)j->done, "failed",
        (json_int_t)j->failed,
        "name", str_or_null(j->name), "model", str_or_null(j->model), "errors", json_null(), "priority",
        (json_int_t)j->priority,
        "request_states", "pending", (json_int_t)j->pending, "running", (json_int_t)j->running, "done",
        (json_int_t)j->done, "failed", (json_int_t)j->failed, "cancelled", (json_int_t)j->cancelled, "expired",
        (json_int_t)j->expired,
        "tokens", "prompt", (json_int_t)j->prompt_tokens, "completion", (json_int_t)j->completion_tokens,
        "cached", (json_int_t)j->cached_tokens, "total", (json_int_t)(j->prompt_tokens + j->completion_tokens));
}

static json_t *per_million(double cost, int64_t tokens, int has)
{
    return has && tokens > 0 ? json_real(cost * 1e6 / (double)tokens) : json_null();
}

json_t *tm_output_cost_json(const tm_queue_job *j)
{
    int has = j->has_cost;
    int64_t all = j->prompt_tokens + j->completion_tokens;
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:f, s:o, s:o, s:o, s:o, s:o, s:o, s:f, s:o, s:o}", "job_id", j->id,
                     "requests", (json_int_t)j->total, "prompt_tokens", (json_int_t)j->prompt_tokens,
                     "completion_tokens", (json_int_t)j->completion_tokens, "cached_tokens",
                     (json_int_t)j->cached_tokens, "gpu_seconds", j->gpu_seconds,
                     "kwh", j->has_energy ? json_real(j->energy_joules / 3.6e6) : json_null(), /* unknown is not 0 */
                     "cost_usd", has ? json_real(j->cost_usd) : json_null(), "usd_per_1m_input",
                     per_million(j->cost_usd, j->prompt_tokens, has), "usd_per_1m_output",
                     per_million(j->cost_usd, j->completion_tokens, has), "usd_per_1m_total",
                     per_million(j->cost_usd, all, has), "tokens_per_usd",
                     has && j->cost_usd > 0 ? json_real((double)all / j->cost_usd) : json_null(),
                     /* the part spent recomputing work already done once (job_costs' wasted_*) */
                     "wasted_gpu_seconds", j->wasted_seconds, "wasted_usd", has ? json_real(j->wasted_usd) : json_null(),
                     "wasted_share", has && j->cost_usd > 0 ? json_real(j->wasted_usd / j->cost_usd) : json_null());
}

/* ---- export bundle -------------------------------------------------------- */

typedef struct member {
    const char *name;
    FILE *file;        /* output/errors: a tmpfile */
    char *mem;         /* json members */
    uint64_t size;
    char sha[65];
} member;

static tm_status jsonl_member(tm_queue *q, const char *job_id, int errors, member *m, tm_err *err)
{
    m->file = tmpfile();
    if (!m->file) return tm_errf(err, TM_ERR_IO, "export: cannot create a temporary file: %s", strerror(errno));
    tm_out *o;
    tm_status s = tm_out_open_file(m->file, 1, &o, err);
    if (s) return s;
    s = tm_output_results(q, job_id, errors, o, NULL, err);
    if (s) { tm_out_abort(o); return s; }
    return tm_out_finish(o, &m->size, m->sha, err);
}

static tm_status json_member(json_t *v, member *m, tm_err *err)
{
    if (!v) return tm_errf(err, TM_ERR_NOMEM, "export: out of memory");
    m->mem = json_dumps(v, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(v);
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

tm_status tm_output_export(tm_queue *q, const char *job_id, const char *path, tm_err *err)
{
    enum { OUT, ERRS, JOB, COST, MANIFEST, NM };
    member m[NM] = {{.name = "output.jsonl.zst"}, {.name = "errors.jsonl.zst"}, {.name = "job.json"},
                    {.name = "cost.json"}, {.name = "manifest.json"}};
    tm_queue_job j;
    tm_status s = tm_queue_job_get(q, job_id, &j, err);
    if (s) return s;
    int64_t now = tm_now_unix();
    struct archive *a = NULL;
    char *partial = NULL;
    if (!s) s = jsonl_member(q, job_id, 0, &m[OUT], err);
    if (!s) s = jsonl_member(q, job_id, 1, &m[ERRS], err);
    if (!s) s = json_member(tm_output_job_json(&j), &m[JOB], err);
    if (!s) s = json_member(tm_output_cost_json(&j), &m[COST], err);
    if (!s) {
        json_t *members = json_array();
        for (int i = 0; members && i < MANIFEST; i++)
            json_array_append_new(members, json_pack("{s:s, s:I, s:s}", "name", m[i].name, "size",
                                                     (json_int_t)m[i].size, "sha256", m[i].sha));
        json_t *man = members ? json_pack("{s:s, s:s, s:I, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "format",
                                          "tokenmill-bundle/1", "job_id", j.id, "created_at", (json_int_t)now,
                                          "members", members, "request_counts", "total", (json_int_t)j.total,
                                          "completed", (json_int_t)j.done, "failed", (json_int_t)j.failed,
                                          "cancelled", (json_int_t)j.cancelled, "expired", (json_int_t)j.expired,
                                          "pending", (json_int_t)j.pending, "running", (json_int_t)j.running)
                              : NULL;
        s = json_member(man, &m[MANIFEST], err);
    }
    if (!s) {
        size_t n = strlen(path);
        partial = malloc(n + sizeof ".partial");
        if (!partial) s = tm_errf(err, TM_ERR_NOMEM, "export: out of memory");
        else {
            memcpy(partial, path, n);
            memcpy(partial + n, ".partial", sizeof ".partial");
        }
    }
    if (!s) {
        a = archive_write_new();
        if (!a) s = tm_errf(err, TM_ERR_NOMEM, "export: out of memory");
        else if (archive_write_add_filter_zstd(a) != ARCHIVE_OK || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK)
            s = archive_fail(a, path, err);
        else if (archive_write_open_filename(a, partial) != ARCHIVE_OK)
            s = archive_fail(a, partial, err);
        for (int i = 0; !s && i < NM; i++) s = write_member(a, path, &m[i], now, err);
        if (!s && archive_write_close(a) != ARCHIVE_OK) s = archive_fail(a, path, err);
        if (!s && rename(partial, path) != 0)
            s = tm_errf(err, TM_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
        if (a) archive_write_free(a);
        if (s) unlink(partial);
    }
    free(partial);
    for (int i = 0; i < NM; i++) {
        if (m[i].file) fclose(m[i].file);
        free(m[i].mem);
    }
    tm_queue_job_clear(&j);
    return s;
}
