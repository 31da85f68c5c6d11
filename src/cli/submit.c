/* submit.c — `tokenmill submit FILE...`: validate job files and queue them as
 * one job, all or nothing.
 *
 * Each path goes through tm_jobfile_read (jsonl/.zst/.gz/-/tar/zip, streamed
 * line by line, so memory stays bounded), each line through tm_validate_line,
 * duplicates of custom_id are found by the queue's unique index. Rows go in
 * as they are validated, in short chunk transactions under a 'validating'
 * job nobody else sees (queue.h "submission"). Default (--on-invalid
 * reject): any problem removes them, prints every problem (the first 50) and
 * exits 65. The database file is never deleted, not even one this run
 * created: another submit may have committed to it meanwhile (it stays an
 * empty, valid queue). With --on-invalid skip, invalid lines are recorded as
 * failed requests.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/job_view.h"
#include "queue/jobfile.h"
#include "queue/queue.h"
#include "queue/validate.h"
#include "util/buf.h"
#include "util/timeutil.h"

#define MAX_PRINTED_PROBLEMS 50

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tokenmill submit [options] FILE...\n"
            "\n"
            "Validate OpenAI Batch JSONL job files and queue them as one job; prints the job id.\n"
            "FILE: .jsonl, .jsonl.zst, .jsonl.gz, - (stdin), or a .tar/.tar.gz/.tar.zst/.zip of them.\n"
            "\n"
            "  --name NAME               a name for the job\n"
            "  --model MODEL             model for requests whose body has none\n"
            "  --priority N              higher runs first (default 0)\n"
            "  --metadata KEY=VALUE      attach metadata (repeatable, up to 16; key <= 64, value <= 512 bytes)\n"
            "  --completion-window DUR   pending requests expire after DUR (default 24h; e.g. 90m, 2d)\n"
            "  --on-invalid reject|skip  reject (default): any invalid line rejects the whole job;\n"
            "                            skip: queue the valid lines, record invalid ones as failed\n"
            "  --mixed-endpoints         accept chat and completions lines in one job (OpenAI refuses\n"
            "                            that, and so does tokenmill by default; the job's endpoint is 'mixed')\n"
            "  --json                    print the job object instead of the id\n"
            "  --allow-unknown-fields    accept (and ignore) body fields tokenmill does not know, as vLLM\n"
            "                            does; fields it refuses stay refused (docs/requests.md)\n"
            "  --db PATH                 queue database (default ./tokenmill.db or $TOKENMILL_DB)\n"
            "  -h, --help                this help\n"
            "\n"
            "Problems are printed as FILE:LINE: FIELD: WHAT. Exit: 0 queued, 64 usage, 65 invalid input, 74 I/O.\n");
}

typedef struct submit_ctx {
    tm_queue *q;
    int skip;
    unsigned vflags;    /* tm_validate_line_ex flags (--allow-unknown-fields) */
    long problems;      /* all problems found */
    long printed;
    long bad_lines;
    long valid;
    long recorded_failed;
    long nonblank;      /* in the current source */
    tm_buf msg;         /* joined problems of one line (skip mode) */
} submit_ctx;

static void problem(submit_ctx *c, const char *source, long line, const char *field, const char *what)
{
    c->problems++;
    if (c->printed >= MAX_PRINTED_PROBLEMS) return;
    c->printed++;
    if (line > 0) fprintf(stderr, "%s:%ld: %s: %s\n", source, line, field, what);
    else fprintf(stderr, "%s: %s: %s\n", source, field, what);
}

static int is_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\f' && p[i] != '\v') return 0;
    return 1;
}

/* skip mode: keep an invalid line as a failed request */
static tm_status record_failed(submit_ctx *c, const tm_jobfile_line *l, const char *custom_id, const char *param,
                               tm_err *err)
{
    if (!c->skip) return TM_OK;
    tm_queue_new_request r = {.custom_id = custom_id, .source = l->source, .line = l->lineno, .max_tokens = -1,
                              .param = param};
    tm_status s = tm_queue_submit_add_failed(c->q, &r, c->msg.data ? c->msg.data : "invalid line", err);
    if (!s) c->recorded_failed++;
    return s;
}

static tm_status on_line(void *ctx, const tm_jobfile_line *l, tm_err *err)
{
    submit_ctx *c = ctx;
    tm_status ts = tm_queue_submit_tick(c->q, err); /* no write transaction over ~50 ms */
    if (ts) return ts;
    if (!l->too_long && is_blank(l->data, l->len)) return TM_OK;
    c->nonblank++;
    tm_buf_clear(&c->msg);
    if (l->too_long) {
        char what[128];
        snprintf(what, sizeof what, "longer than %zu bytes (%zu)", l->len, l->full_len);
        problem(c, l->source, l->lineno, "line", what);
        c->bad_lines++;
        tm_buf_printf(&c->msg, "%s:%ld: line: %s", l->source, l->lineno, what);
        return record_failed(c, l, NULL, NULL, err);
    }
    tm_validated v;
    memset(&v, 0, sizeof v);
    tm_problems p;
    tm_problems_init(&p);
    tm_status s = tm_validate_line_ex(l->data, l->len, c->vflags, &v, &p);
    if (s == TM_ERR_NOMEM) {
        tm_validated_clear(&v);
        return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    }
    if (s == TM_OK) {
        tm_queue_new_request r = {.custom_id = v.custom_id, .source = l->source, .line = l->lineno,
                                  .url = v.endpoint == TM_ENDPOINT_COMPLETIONS ? "/v1/completions"
                                                                                : "/v1/chat/completions",
                                  .model = v.model, .body_json = v.body_json, .max_tokens = v.max_tokens,
                                  .n = v.n};
        tm_err e = {{0}};
        s = tm_queue_submit_add(c->q, &r, &e);
        if (s == TM_ERR_INPUT) {
            /* e.msg is "FIELD: what": a duplicate custom_id, or a url not the job's endpoint */
            char field[32] = "custom_id";
            const char *what = e.msg, *colon = strstr(e.msg, ": ");
            if (colon && colon - e.msg < (long)sizeof field) {
                snprintf(field, sizeof field, "%.*s", (int)(colon - e.msg), e.msg);
                what = colon + 2;
            }
            problem(c, l->source, l->lineno, field, what);
            c->bad_lines++;
            tm_buf_printf(&c->msg, "%s:%ld: %s: %s", l->source, l->lineno, field, what);
            /* a duplicate's error line carries no custom_id: that id is the
             * first line's, in the output file (line and param say which) */
            s = record_failed(c, l, strcmp(field, "custom_id") ? v.custom_id : NULL, field, err);
        } else if (s) {
            tm_errf(err, s, "%s", e.msg);
        } else {
            c->valid++;
        }
        tm_validated_clear(&v);
        return s;
    }
    /* invalid line */
    c->bad_lines++;
    for (int i = 0; i < p.kept; i++) {
        problem(c, l->source, l->lineno, p.items[i].field, p.items[i].what);
        tm_buf_printf(&c->msg, "%s%s:%ld: %s: %s", i ? "; " : "", l->source, l->lineno, p.items[i].field,
                      p.items[i].what);
    }
    if (p.kept == 0) {
        problem(c, l->source, l->lineno, "line", "invalid");
        tm_buf_printf(&c->msg, "%s:%ld: line: invalid", l->source, l->lineno);
    }
    if (p.total > p.kept) {
        c->problems += p.total - p.kept;
        tm_buf_printf(&c->msg, "; and %d more problems", p.total - p.kept);
    }
    s = record_failed(c, l, v.custom_id, p.kept > 0 ? p.items[0].field : NULL, err);
    tm_validated_clear(&v);
    return s;
}

static tm_status on_source_end(void *ctx, const char *source, long lines, tm_err *err)
{
    submit_ctx *c = ctx;
    (void)lines;
    (void)err;
    if (c->nonblank == 0) problem(c, source, 0, "file", "empty (no request lines)");
    c->nonblank = 0;
    return TM_OK;
}

static tm_status add_metadata(json_t *meta, const char *kv, tm_err *err)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) return tm_errf(err, TM_ERR_USAGE, "--metadata: expected KEY=VALUE, got '%s'", kv);
    size_t klen = (size_t)(eq - kv), vlen = strlen(eq + 1);
    if (klen > TM_QUEUE_METADATA_KEY_MAX)
        return tm_errf(err, TM_ERR_USAGE, "--metadata: key longer than %d bytes", TM_QUEUE_METADATA_KEY_MAX);
    if (vlen > TM_QUEUE_METADATA_VALUE_MAX)
        return tm_errf(err, TM_ERR_USAGE, "--metadata: value of '%.*s' longer than %d bytes", (int)klen, kv,
                       TM_QUEUE_METADATA_VALUE_MAX);
    char key[TM_QUEUE_METADATA_KEY_MAX + 1];
    memcpy(key, kv, klen);
    key[klen] = 0;
    if (!json_object_get(meta, key) && json_object_size(meta) >= TM_QUEUE_METADATA_MAX_KEYS)
        return tm_errf(err, TM_ERR_USAGE, "--metadata: at most %d keys", TM_QUEUE_METADATA_MAX_KEYS);
    json_t *v = json_stringn(eq + 1, vlen);
    if (!v) return tm_errf(err, TM_ERR_USAGE, "--metadata: '%s' is not valid UTF-8", kv);
    json_object_set_new(meta, key, v);
    return TM_OK;
}

/* Options into jo / db_flag / as_json / meta. -1: go on; else the exit code
 * (--help: 0). */
static int parse_opts(int argc, char **argv, tm_queue_job_opts *jo, const char **db_flag, int *as_json, json_t *meta,
                      unsigned *vflags)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},       {"model", required_argument, NULL, 'm'},
        {"priority", required_argument, NULL, 'p'},   {"metadata", required_argument, NULL, 'M'},
        {"completion-window", required_argument, NULL, 'w'},
        {"on-invalid", required_argument, NULL, 'i'}, {"json", no_argument, NULL, 'j'},
        {"db", required_argument, NULL, 'd'},         {"help", no_argument, NULL, 'h'},
        {"allow-unknown-fields", no_argument, NULL, 'u'},
        {"mixed-endpoints", no_argument, NULL, 'x'},
        {NULL, 0, NULL, 0},
    };
    tm_cli_getopt_reset();
    tm_err err = {{0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        tm_status s = TM_OK;
        long long v;
        switch (c) {
        case 'n': s = tm_cli_check_text("--name", optarg, &err); jo->name = optarg; break;
        case 'm': s = tm_cli_check_text("--model", optarg, &err); jo->model = optarg; break;
        case 'p':
            s = tm_cli_parse_long("--priority", optarg, -1000000, 1000000, &v, &err);
            jo->priority = v;
            break;
        case 'M': if (!(s = tm_cli_check_text("--metadata", optarg, &err))) s = add_metadata(meta, optarg, &err); break;
        case 'w': s = tm_parse_duration(optarg, &jo->completion_window, &err);
            if (!s && jo->completion_window <= 0) s = tm_errf(&err, TM_ERR_USAGE, "must be positive");
            if (s) tm_err_prefix(&err, s, "--completion-window");
            break;
        case 'i':
            if (!strcmp(optarg, "skip")) jo->skip_invalid = 1;
            else if (!strcmp(optarg, "reject")) jo->skip_invalid = 0;
            else s = tm_errf(&err, TM_ERR_USAGE, "--on-invalid: expected reject or skip, got '%s'", optarg);
            break;
        case 'j': *as_json = 1; break;
        case 'u': *vflags |= TM_VALIDATE_ALLOW_UNKNOWN; break;
        case 'x': jo->mixed_endpoints = 1; break;
        case 'd': *db_flag = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return tm_cli_usage_error("submit", "bad option");
        }
        if (s) return tm_cli_usage_error("submit", "%s", err.msg);
    }
    if (optind >= argc) return tm_cli_usage_error("submit", "no job file given");
    if (jo->name && strlen(jo->name) > TM_QUEUE_NAME_MAX)
        return tm_cli_usage_error("submit", "--name: longer than %d bytes", TM_QUEUE_NAME_MAX);
    if (jo->model && strlen(jo->model) > TM_QUEUE_NAME_MAX)
        return tm_cli_usage_error("submit", "--model: longer than %d bytes", TM_QUEUE_NAME_MAX);
    return -1;
}

/* The queued job: its id, or with --json its OpenAI batch object. */
static int print_job(tm_queue *q, const char *job_id, int as_json)
{
    int rc = 0;
    if (as_json) {
        json_t *o = NULL;
        tm_err err = {{0}};
        tm_status s = tm_cli_job_fetch_json(q, job_id, &o, &err);
        if (s) rc = tm_cli_fail("submit", s, &err);
        else if (json_dumpf(o, stdout, JSON_INDENT(2)) != 0) rc = tm_cli_fail("submit", TM_ERR_IO, NULL);
        else printf("\n");
        json_decref(o);
    } else {
        printf("%s\n", job_id);
    }
    return rc;
}

int tm_cmd_submit(int argc, char **argv)
{
    tm_queue_job_opts jo = {0};
    const char *db_flag = NULL;
    int as_json = 0;
    json_t *meta = json_object();
    tm_err err = {{0}};
    if (!meta) return tm_cli_fail("submit", TM_ERR_NOMEM, NULL);
    unsigned vflags = 0;
    int rc = parse_opts(argc, argv, &jo, &db_flag, &as_json, meta, &vflags);
    if (rc >= 0) {
        json_decref(meta);
        return rc;
    }
    char *meta_json = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    if (!meta_json) return tm_cli_fail("submit", TM_ERR_NOMEM, NULL);
    jo.metadata_json = meta_json;

    const char *db = tm_cli_db_path(db_flag);
    if (tm_cli_db_check(db, &err)) {
        free(meta_json);
        return tm_cli_usage_error("submit", "%s", err.msg);
    }
    tm_queue *q = NULL;
    tm_status s = tm_queue_open(db, &q, &err);
    if (s) {
        free(meta_json);
        return tm_cli_fail("submit", s, &err);
    }
    char job_id[TM_QUEUE_ID_MAX], sha[65];
    tm_buf names;
    tm_buf_init(&names);
    for (int i = optind; i < argc; i++) tm_buf_printf(&names, "%s%s", i > optind ? ", " : "", argv[i]);
    jo.input_filename = names.data;
    tm_err herr;
    if (tm_cli_files_sha256(argv + optind, argc - optind, sha, &herr)) sha[0] = 0; /* the read below says why */
    jo.input_sha256 = sha[0] ? sha : NULL;
    submit_ctx ctx = {.q = q, .skip = jo.skip_invalid, .vflags = vflags};
    tm_buf_init(&ctx.msg);
    s = tm_queue_submit_begin(q, &jo, job_id, &err);
    tm_jobfile_callbacks cb = {on_line, on_source_end, &ctx};
    for (int i = optind; !s && i < argc; i++) {
        ctx.nonblank = 0;
        s = tm_jobfile_read(argv[i], TM_JOBFILE_MAX_LINE_DEFAULT, &cb, &err);
    }
    tm_buf_free(&ctx.msg);
    tm_buf_free(&names);
    free(meta_json);
    if (s) {
        tm_queue_submit_rollback(q);
        tm_queue_close(q);
        return tm_cli_fail("submit", s, &err);
    }
    if (ctx.problems > ctx.printed)
        fprintf(stderr, "... and %ld more problems\n", ctx.problems - ctx.printed);
    int reject = ctx.problems > 0 && !jo.skip_invalid;
    if (!reject && ctx.valid == 0) {
        reject = 1;
        if (ctx.problems == 0) fprintf(stderr, "tokenmill submit: no requests in the given files\n");
    }
    if (reject) {
        tm_queue_submit_rollback(q);
        tm_queue_close(q);
        if (ctx.problems)
            fprintf(stderr, "tokenmill submit: rejected: %ld problem%s in %ld line%s%s; nothing was queued\n",
                    ctx.problems, ctx.problems == 1 ? "" : "s", ctx.bad_lines, ctx.bad_lines == 1 ? "" : "s",
                    jo.skip_invalid ? " and no valid request" : " (use --on-invalid skip to queue the valid ones)");
        return 65;
    }
    if ((s = tm_queue_submit_commit(q, &err))) {
        tm_queue_close(q);
        return tm_cli_fail("submit", s, &err);
    }
    if (ctx.problems)
        fprintf(stderr, "tokenmill submit: %s: queued %ld requests; %ld invalid line%s recorded as failed\n",
                job_id, ctx.valid, ctx.recorded_failed, ctx.recorded_failed == 1 ? "" : "s");
    rc = print_job(q, job_id, as_json);
    tm_queue_close(q);
    if (!rc && fflush(stdout) != 0) rc = 74;
    return rc;
}
