/* bench_tokenize.c — `tokenmill bench tokenize`: encode throughput.
 *
 *   tokenmill bench tokenize --tokenizer DIR [--file F] [--repeat N]
 *
 * Texts: a golden_encode.jsonl-like file (the "text" of every line whose
 * "tokenizer" is DIR's folder name, or of every line when none matches), or
 * any other file as one text. Default file: $TOKENMILL_TESTDATA/tokenizers/
 * golden_encode.jsonl. Without --repeat the texts are encoded again and again
 * until at least one second has passed. Prints load time, tokens/s and MB/s.
 */
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/bench.h"
#include "cli/cli.h"
#include "tokenizer/tokenizer.h"
#include "util/buf.h"
#include "util/timeutil.h"

#define CMD "bench tokenize"

static double now_s(void) { return (double)tm_now_mono_ns() * 1e-9; }

typedef struct texts {
    char **s;
    size_t *len;
    size_t n, cap, bytes;
} texts;

static tm_status add_text(texts *T, const char *s, size_t n)
{
    if (T->n == T->cap) {
        size_t c = T->cap ? T->cap * 2 : 256;
        char **a = realloc(T->s, c * sizeof *a);
        if (!a) return TM_ERR_NOMEM;
        T->s = a;
        size_t *b = realloc(T->len, c * sizeof *b);
        if (!b) return TM_ERR_NOMEM;
        T->len = b;
        T->cap = c;
    }
    char *p = malloc(n + 1);
    if (!p) return TM_ERR_NOMEM;
    memcpy(p, s, n);
    p[n] = 0;
    T->s[T->n] = p;
    T->len[T->n++] = n;
    T->bytes += n;
    return TM_OK;
}

/* JSONL with "text" fields (filtered by "tokenizer" == family), else the whole file. */
static tm_status load_texts(const char *path, const char *family, texts *T, tm_err *err)
{
    tm_buf b;
    tm_buf_init(&b);
    tm_status st = tm_read_file(path, (size_t)1 << 30, &b, err);
    if (st) return st;
    int jsonl = b.len > 0 && b.data[0] == '{';
    for (int pass = 0; jsonl && pass < 2 && T->n == 0; pass++) { /* pass 1: ignore the family filter */
        char *line = b.data, *end = b.data + b.len;
        while (line < end) {
            char *nl = memchr(line, '\n', (size_t)(end - line));
            size_t ll = nl ? (size_t)(nl - line) : (size_t)(end - line);
            json_error_t je;
            json_t *o = ll ? json_loadb(line, ll, JSON_ALLOW_NUL, &je) : NULL;
            json_t *tx = json_object_get(o, "text"), *fam = json_object_get(o, "tokenizer");
            if (o && !json_is_string(tx)) jsonl = 0;
            if (json_is_string(tx) && (pass == 1 || (json_is_string(fam) && !strcmp(json_string_value(fam), family))))
                st = add_text(T, json_string_value(tx), json_string_length(tx));
            json_decref(o);
            if (st) { tm_buf_free(&b); return tm_errf(err, st, "out of memory"); }
            line += ll + 1;
        }
    }
    if (T->n == 0 && b.len) st = add_text(T, b.data, b.len);
    tm_buf_free(&b);
    if (st) return tm_errf(err, st, "out of memory");
    if (T->n == 0) return tm_errf(err, TM_ERR_INPUT, "%s: no text to encode", path);
    return TM_OK;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill bench tokenize --tokenizer DIR [--file F] [--repeat N]\n"
               "  --tokenizer DIR  folder with tokenizer.json (+ tokenizer_config.json)\n"
               "  --file F         golden_encode.jsonl-like file (texts of DIR's family) or a text file\n"
               "                   (default: $TOKENMILL_TESTDATA/tokenizers/golden_encode.jsonl)\n"
               "  --repeat N       passes over the texts (default: as many as fill one second)\n");
}

int tm_bench_tokenize(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tokenizer", required_argument, 0, 't'}, {"file", required_argument, 0, 'f'},
        {"repeat", required_argument, 0, 'r'},    {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
    const char *dir = NULL, *file = NULL;
    long long repeat = 0;
    tm_err err;
    tm_cli_getopt_reset();
    int c;
    while ((c = getopt_long(argc, argv, "t:f:r:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': dir = optarg; break;
        case 'f': file = optarg; break;
        case 'r':
            if (tm_cli_parse_long("--repeat", optarg, 1, 1000000000LL, &repeat, &err)) return tm_cli_usage_error(CMD, "%s", err.msg);
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 64;
        }
    }
    if (!dir) return tm_cli_usage_error(CMD, "--tokenizer DIR is required");
    char deffile[4096];
    if (!file) {
        const char *td = getenv("TOKENMILL_TESTDATA");
        if (!td) return tm_cli_usage_error(CMD, "--file F is required when TOKENMILL_TESTDATA is not set");
        snprintf(deffile, sizeof deffile, "%s/tokenizers/golden_encode.jsonl", td);
        file = deffile;
    }
    char dircopy[4096];
    snprintf(dircopy, sizeof dircopy, "%s", dir);
    size_t dl = strlen(dircopy);
    while (dl > 1 && dircopy[dl - 1] == '/') dircopy[--dl] = 0;
    const char *family = basename(dircopy);

    double t0 = now_s();
    tm_tokenizer *tok = NULL;
    tm_status st = tm_tokenizer_load(dir, &tok, &err);
    if (st) return tm_cli_fail(CMD, st, &err);
    double load_s = now_s() - t0;
    texts T = {0};
    if ((st = load_texts(file, family, &T, &err))) { tm_tokenizer_destroy(tok); return tm_cli_fail(CMD, st, &err); }

    size_t tokens = 0, passes = 0;
    double start = now_s(), el = 0;
    for (;;) {
        for (size_t i = 0; i < T.n; i++) {
            int32_t *ids = NULL;
            size_t n = 0;
            if ((st = tm_tokenizer_encode(tok, T.s[i], T.len[i], 0, &ids, &n, &err))) goto done;
            tokens += n;
            free(ids);
        }
        passes++;
        el = now_s() - start;
        if (repeat ? passes >= (size_t)repeat : el >= 1.0) break;
    }
done:
    if (!st) {
        double mb = (double)T.bytes * (double)passes / 1e6;
        printf("bench tokenize: tokenizer %s (%s), vocab %d, load %.3f s\n", dir, family, tm_tokenizer_vocab_size(tok), load_s);
        printf("  texts %zu (%zu bytes) from %s, passes %zu, %.3f s\n", T.n, T.bytes, file, passes, el);
        printf("  encode: %zu tokens, %.0f tokens/s, %.2f MB/s (single thread)\n", tokens, el > 0 ? (double)tokens / el : 0.0,
               el > 0 ? mb / el : 0.0);
        printf("  reproduce: tokenmill bench tokenize --tokenizer %s --file %s --repeat %zu\n", dir, file, passes);
    }
    for (size_t i = 0; i < T.n; i++) free(T.s[i]);
    free(T.s);
    free(T.len);
    tm_tokenizer_destroy(tok);
    return st ? tm_cli_fail(CMD, st, &err) : 0;
}
