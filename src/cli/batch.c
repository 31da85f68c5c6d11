/* batch.c — `tokenmill batch -i IN.jsonl -o OUT.jsonl --model DIR`: submit,
 * run and write the results in one command, as vLLM's run_batch does.
 *
 * The queue is a temporary DB (deleted once the results are written) or
 * --db PATH (kept). The input is identified by the SHA-256 of its bytes
 * (jobs.input_sha256, stored by submit): rerun with the same --db and input,
 * batch finds that job and resumes it (runs what is left, checkpoints
 * included) instead of submitting it again. Results go to OUT (zstd when it
 * ends in .zst), error lines to --errors FILE or OUT's sibling
 * OUT.errors.jsonl (formats in output/output.h). Every option batch does not
 * own goes to `tokenmill run` as it is; the exit codes are run's (a failed
 * submission: submit's; requests left that name a model this worker does
 * not serve: 69).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/job_view.h"
#include "queue/queue.h"

#define BATCH_MAX_ARGS 256

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill batch -i IN.jsonl -o OUT.jsonl --model DIR [--db PATH] [run options]\n"
               "\n"
               "Submit IN, run it with the model in DIR and write the results to OUT in one command\n"
               "(as vLLM's run_batch). Every option not listed here is a 'tokenmill run' option.\n"
               "  -i, --input FILE      OpenAI Batch JSONL input (.jsonl, .jsonl.zst, .jsonl.gz; not stdin)\n"
               "  -o, --output FILE     the output lines (zstd-compressed if FILE ends in .zst)\n"
               "  --errors FILE         the error lines (default: OUT's sibling OUT.errors.jsonl)\n"
               "  --db PATH             keep the queue in PATH; rerun with the same PATH and input to resume\n"
               "                        (default: a temporary DB, deleted once the results are written)\n"
               "  --on-invalid reject|skip, --mixed-endpoints   as for 'tokenmill submit'\n"
               "Exit: as 'tokenmill run' (0 done, 64 usage, 65 bad input or model, 69 requests left that name\n"
               "a model this worker does not serve, 75 stopped with work left: rerun with --db to resume).\n");
}

typedef struct batch_opts {
    const char *in, *out, *errors, *db, *on_invalid;
    int mixed, has_model;
    char *run[BATCH_MAX_ARGS];
    int n_run;
} batch_opts;

/* the value of option name at argv[*i] ("--x V" or "--x=V"); NULL: not it */
static const char *opt_value(int argc, char **argv, int *i, const char *name, const char *short_name, int *missing)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (!strncmp(a, name, n) && a[n] == '=') return a + n + 1;
    if (strcmp(a, name) && (!short_name || strcmp(a, short_name))) return NULL;
    if (*i + 1 >= argc) { *missing = 1; return NULL; }
    return argv[++*i];
}

/* -1: go on; else the exit code */
static int parse(int argc, char **argv, batch_opts *o)
{
    o->run[o->n_run++] = "run";
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        if ((v = opt_value(argc, argv, &i, "--input", "-i", &missing))) o->in = v;
        else if ((v = opt_value(argc, argv, &i, "--output", "-o", &missing))) o->out = v;
        else if ((v = opt_value(argc, argv, &i, "--errors", NULL, &missing))) o->errors = v;
        else if ((v = opt_value(argc, argv, &i, "--db", NULL, &missing))) o->db = v;
        else if ((v = opt_value(argc, argv, &i, "--on-invalid", NULL, &missing))) o->on_invalid = v;
        else if (!missing && !strcmp(argv[i], "--mixed-endpoints")) o->mixed = 1;
        else if (!missing) {
            if (!strcmp(argv[i], "--model") || !strncmp(argv[i], "--model=", 8) || !strcmp(argv[i], "-m")) o->has_model = 1;
            if (o->n_run >= BATCH_MAX_ARGS - 4) return tm_cli_usage_error("batch", "too many arguments");
            o->run[o->n_run++] = argv[i];
        }
        if (missing) return tm_cli_usage_error("batch", "%s needs a value", argv[i]);
    }
    if (!o->in || !*o->in) return tm_cli_usage_error("batch", "-i IN.jsonl is required");
    if (!strcmp(o->in, "-")) return tm_cli_usage_error("batch", "-i: stdin cannot be resumed: give a file");
    if (!o->out || !*o->out || !strcmp(o->out, "-")) return tm_cli_usage_error("batch", "-o OUT.jsonl is required (a file)");
    if (!o->has_model) return tm_cli_usage_error("batch", "--model DIR is required");
    if (o->on_invalid && strcmp(o->on_invalid, "reject") && strcmp(o->on_invalid, "skip"))
        return tm_cli_usage_error("batch", "--on-invalid: expected reject or skip, got '%s'", o->on_invalid);
    return -1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* OUT.jsonl -> OUT.errors.jsonl (OUT.jsonl.zst -> OUT.errors.jsonl.zst; else OUT + .errors.jsonl) */
static void errors_path(const char *out, char *buf, size_t bufsz)
{
    size_t n = strlen(out);
    int zst = ends_with(out, ".zst");
    size_t base = n - (zst ? 4 : 0);
    if (base >= 6 && !strncmp(out + base - 6, ".jsonl", 6)) base -= 6;
    snprintf(buf, bufsz, "%.*s.errors.jsonl%s", (int)base, out, zst ? ".zst" : "");
}

static tm_status write_lines(tm_queue *q, const char *job_id, int errors, const char *path, int64_t *n, tm_err *err)
{
    tm_out *o;
    tm_status s = tm_out_open(path, ends_with(path, ".zst"), &o, err);
    if (s) return s;
    s = tm_cli_job_lines(q, job_id, errors, o, n, err);
    if (s) tm_out_abort(o);
    else s = tm_out_finish(o, NULL, NULL, err);
    return s;
}

/* The job of this input in db: found by its hash, else submitted now. */
static int find_or_submit(const batch_opts *o, const char *db, char job_id[TM_QUEUE_ID_MAX])
{
    char sha[65];
    tm_err err = {{0}};
    tm_queue *q = NULL;
    tm_status s = tm_cli_files_sha256((char *const *)&o->in, 1, sha, &err);
    if (!s) s = tm_queue_open(db, &q, &err);
    if (!s) s = tm_queue_job_find_input(q, sha, job_id, &err);
    tm_queue_close(q);
    if (s) return tm_cli_fail("batch", s, &err);
    if (job_id[0]) {
        fprintf(stderr, "tokenmill batch: %s: resuming %s (same input, sha256 %.12s…)\n", db, job_id, sha);
        return 0;
    }
    char *sub[10];
    int n = 0;
    sub[n++] = "submit";
    sub[n++] = (char *)o->in;
    sub[n++] = "--db";
    sub[n++] = (char *)db;
    if (o->on_invalid) { sub[n++] = "--on-invalid"; sub[n++] = (char *)o->on_invalid; }
    if (o->mixed) sub[n++] = "--mixed-endpoints";
    sub[n] = NULL;
    int rc = tm_cmd_submit(n, sub);
    if (rc) return rc;
    fflush(stdout);
    if (!(s = tm_queue_open(db, &q, &err))) s = tm_queue_job_find_input(q, sha, job_id, &err);
    tm_queue_close(q);
    if (!s && !job_id[0]) s = tm_errf(&err, TM_ERR_INTERNAL, "the submitted job is not in %s", db);
    return s ? tm_cli_fail("batch", s, &err) : 0;
}

/* After the run: OUT and the error file; 69 when requests wait for another model. */
static int finish(const batch_opts *o, const char *db, const char *job_id)
{
    tm_err err = {{0}};
    tm_queue *q;
    tm_status s = tm_queue_open_existing(db, &q, &err);
    if (s) return tm_cli_fail("batch", s, &err);
    tm_queue_job j;
    if ((s = tm_queue_job_get(q, job_id, &j, &err))) { tm_queue_close(q); return tm_cli_fail("batch", s, &err); }
    int64_t left = j.pending + j.running;
    tm_queue_job_clear(&j);
    if (left > 0) {
        tm_queue_close(q);
        fprintf(stderr, "tokenmill batch: %lld requests of %s were not run: they name a model this worker does not "
                        "serve (see 'tokenmill status --db %s'; run --served-model-name NAME serves it by that name)\n",
                (long long)left, job_id, db);
        return 69;
    }
    char ep[4200];
    if (o->errors) snprintf(ep, sizeof ep, "%s", o->errors);
    else errors_path(o->out, ep, sizeof ep);
    int64_t nout = 0, nerr = 0;
    s = write_lines(q, job_id, 0, o->out, &nout, &err);
    if (!s) s = write_lines(q, job_id, 1, ep, &nerr, &err);
    tm_queue_close(q);
    if (s) return tm_cli_fail("batch", s, &err);
    fprintf(stderr, "tokenmill batch: wrote %lld result lines to %s, %lld error lines to %s\n", (long long)nout, o->out,
            (long long)nerr, ep);
    return 0;
}

static void remove_db(const char *dir, const char *db)
{
    const char *sfx[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s%s", db, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
}

int tm_cmd_batch(int argc, char **argv)
{
    batch_opts o = {0};
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    char tmpdir[4096] = "", db[4200];
    tm_err err = {{0}};
    if (o.db) {
        if (tm_cli_db_check(o.db, &err)) return tm_cli_usage_error("batch", "%s", err.msg);
        snprintf(db, sizeof db, "%s", o.db);
    } else {
        const char *t = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/tokenmill-batch-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmpdir)) return tm_cli_fail("batch", tm_errf(&err, TM_ERR_IO, "%s: %s", tmpdir, strerror(errno)), &err);
        snprintf(db, sizeof db, "%s/queue.db", tmpdir);
    }
    const char *outs[2] = {o.out, o.errors};
    for (int i = 0; i < 2; i++)
        if (outs[i] && tm_cli_output_not_db(outs[i], db, &err)) {
            if (tmpdir[0]) rmdir(tmpdir);
            return tm_cli_usage_error("batch", "%s", err.msg);
        }
    char job_id[TM_QUEUE_ID_MAX] = "";
    rc = find_or_submit(&o, db, job_id);
    if (!rc) {
        o.run[o.n_run++] = "--db";
        o.run[o.n_run++] = db;
        o.run[o.n_run] = NULL;
        rc = tm_cmd_run(o.n_run, o.run);
    }
    if (!rc) rc = finish(&o, db, job_id);
    if (!rc && tmpdir[0]) remove_db(tmpdir, db);
    else if (rc && job_id[0])
        fprintf(stderr, "tokenmill batch: the queue is kept in %s: rerun with --db %s to resume\n", db, db);
    else if (rc && tmpdir[0]) remove_db(tmpdir, db); /* nothing was queued */
    return rc;
}
