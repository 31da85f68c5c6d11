/* bench_grammar.c — `tokenmill bench grammar`: constrained-decoding speed,
 * and (with --sample) outputs for the walk test.
 *
 *   tokenmill bench grammar [--tokenizer DIR] [--walks N] [--seed S]
 *                           [--close-after K] [--max-tokens M] [--sample FILE]
 *                           [--precompute]
 *
 * For each schema of bench_grammar_schemas.h, on one core: time to first mask
 * (compile + matcher + first mask, cold), then N random walks: each step
 * fills the mask (timed: thread CPU time, so other load on the machine does
 * not count), picks a uniformly random allowed token — after K
 * tokens the walk steers to an end: EOS when allowed, else the candidate
 * (every allowed single-byte token plus 64 random allowed ones) that leaves
 * the fewest bytes to the end — and accepts it (timed). A walk that reaches
 * M tokens fails. --sample writes one JSON line per walk:
 * {"name","kind":"json|regex|choice","schema","output"} (output = the
 * tokenizer's decode, checked equal to the tokens' bytes).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/bench.h"
#include "tools/bench_grammar_schemas.h"
#include "cli/cli.h"
#include "grammar/grammar.h"
#include "tokenizer/tokenizer.h"

#define CMD "bench grammar"

typedef struct walker {
    const tm_tokenizer *tok;
    tm_grammar_vocab *v;
    uint64_t rng;
    long long close_after, max_tokens;
    int precompute;
    int32_t *allowed, *single, n_single, *ids;
    uint32_t *mask;
    tm_matcher *probe;
    double *mask_us;        /* per mask, this schema */
    size_t n_mask, cap_mask;
    double accept_us;
    size_t n_accept;
} walker;

/* Thread CPU time: one core's work, not inflated by other load on the machine. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t next_rand(walker *w)
{
    w->rng = w->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return w->rng >> 33;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Steering: the allowed candidate leaving the fewest bytes to the end. */
static int32_t steer(walker *w, tm_matcher *m, const int32_t *allowed, int32_t na)
{
    int32_t best = -1, best_d = INT32_MAX, ties = 0;
    for (int32_t k = 0; k < na; k++)
        if (tm_grammar_vocab_is_eos(w->v, allowed[k])) return allowed[k];
    for (int32_t k = 0; k < w->n_single + 64; k++) {
        int32_t id = k < w->n_single ? w->single[k] : allowed[next_rand(w) % (uint64_t)na];
        if (!(w->mask[id >> 5] >> (id & 31) & 1)) continue;
        tm_matcher_copy(w->probe, m);
        if (tm_matcher_accept(w->probe, id) != TM_OK) continue;
        int32_t d = tm_matcher_bytes_to_end(w->probe);
        if (d < best_d) { best_d = d; best = id; ties = 1; }
        else if (d == best_d && next_rand(w) % (uint64_t)++ties == 0) best = id;
    }
    return best >= 0 ? best : allowed[0];
}

/* One walk; returns the number of tokens (ids in w->ids), -1 on failure. */
static long long walk(walker *w, tm_matcher *m, int first_timed, tm_err *err)
{
    tm_matcher_reset(m);
    size_t words = tm_grammar_vocab_mask_words(w->v);
    for (long long n = 0; n <= w->max_tokens; n++) {
        uint64_t t0 = cpu_ns();
        if (tm_matcher_fill_mask(m, w->mask, err) != TM_OK) return -1;
        double us = (double)(cpu_ns() - t0) * 1e-3;
        if (n > 0 || first_timed) {
            if (w->n_mask == w->cap_mask) {
                size_t c = w->cap_mask ? w->cap_mask * 2 : 4096;
                double *d = realloc(w->mask_us, c * sizeof *d);
                if (!d) return -1;
                w->mask_us = d;
                w->cap_mask = c;
            }
            w->mask_us[w->n_mask++] = us;
        }
        int32_t na = 0;
        for (size_t i = 0; i < words; i++)
            for (uint32_t x = w->mask[i]; x; x &= x - 1) w->allowed[na++] = (int32_t)(i * 32 + (size_t)__builtin_ctz(x));
        if (na == 0) return -1;
        int32_t id = n < w->close_after ? w->allowed[next_rand(w) % (uint64_t)na] : steer(w, m, w->allowed, na);
        t0 = cpu_ns();
        tm_status s = tm_matcher_accept(m, id);
        w->accept_us += (double)(cpu_ns() - t0) * 1e-3;
        w->n_accept++;
        if (s != TM_OK) { tm_errf(err, TM_ERR_INTERNAL, "an allowed token (%d) was refused", (int)id); return -1; }
        if (tm_matcher_terminated(m)) return n;
        w->ids[n] = id;
    }
    tm_errf(err, TM_ERR_INTERNAL, "walk reached --max-tokens %lld", w->max_tokens);
    return -1;
}

/* Decode, compare with the tokens' bytes, write the sample line. */
static int sample_line(walker *w, FILE *out, const bench_schema *sc, long long n)
{
    char *text = NULL;
    size_t len = 0, blen = 0;
    tm_err err;
    if (tm_tokenizer_decode(w->tok, w->ids, (size_t)n, 1, &text, &len, &err) != TM_OK) return -1;
    int same = 1;
    for (long long i = 0; i < n && same; i++) {
        size_t tl;
        const uint8_t *tb = tm_grammar_vocab_token(w->v, w->ids[i], &tl);
        same = blen + tl <= len && !memcmp(text + blen, tb, tl);
        blen += tl;
    }
    same &= blen == len;
    if (out) {
        json_t *schema = sc->kind == TM_GRAMMAR_JSON_SCHEMA ? json_loads(sc->text, 0, NULL)
                         : sc->kind == TM_GRAMMAR_CHOICE  ? json_loads(sc->text, 0, NULL)
                                                          : json_string(sc->text);
        const char *kind = sc->kind == TM_GRAMMAR_REGEX ? "regex" : sc->kind == TM_GRAMMAR_CHOICE ? "choice"
                         : sc->kind == TM_GRAMMAR_JSON_OBJECT ? "json_object" : "json";
        json_t *o = json_pack("{s:s,s:s,s:o*,s:s%}", "name", sc->name, "kind", kind, "schema", schema, "output", text, len);
        char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (line) fprintf(out, "%s\n", line);
        free(line);
        json_decref(o);
    }
    free(text);
    return same ? 0 : -1;
}

typedef struct totals {
    double *all;
    size_t n_all;
    int failures, worst_first_set;
    double worst_first_ms;
} totals;

static int run_schema(walker *w, const bench_schema *sc, int walks, FILE *sample, totals *T)
{
    tm_err err;
    tm_grammar_cache *cache = NULL;
    tm_grammar *g = NULL;
    tm_matcher *m = NULL;
    w->n_mask = 0;
    uint64_t t0 = cpu_ns();
    if (tm_grammar_cache_create(w->v, &cache, &err) || tm_grammar_cache_get(cache, sc->kind, sc->text, strlen(sc->text), &g, &err) ||
        (w->precompute && tm_grammar_precompute(g, w->v, &err)) || tm_matcher_create(g, w->v, &m, &err) ||
        tm_matcher_fill_mask(m, w->mask, &err)) {
        fprintf(stderr, "%s: %s: %s\n", CMD, sc->name, err.msg);
        tm_grammar_cache_destroy(cache);
        return -1;
    }
    double first_ms = (double)(cpu_ns() - t0) * 1e-6;
    if (first_ms > T->worst_first_ms) T->worst_first_ms = first_ms;
    if (tm_matcher_create(g, w->v, &w->probe, &err)) return -1;
    int fails = 0;
    long long tokens = 0;
    for (int k = 0; k < walks; k++) {
        long long n = walk(w, m, k > 0, &err);
        if (n < 0) { fprintf(stderr, "%s: %s walk %d: %s\n", CMD, sc->name, k, err.msg); fails++; continue; }
        tokens += n;
        if (sample_line(w, sample, sc, n)) { fprintf(stderr, "%s: %s walk %d: decode differs from the token bytes\n", CMD, sc->name, k); fails++; }
    }
    double sum = 0;
    for (size_t i = 0; i < w->n_mask; i++) sum += w->mask_us[i];
    qsort(w->mask_us, w->n_mask, sizeof *w->mask_us, cmp_d);
    double p99 = w->n_mask ? w->mask_us[(size_t)((double)(w->n_mask - 1) * 0.99)] : 0, mx = w->n_mask ? w->mask_us[w->n_mask - 1] : 0;
    printf("%-13s %6d %9.3f %7zu %8.2f %8.2f %9.1f %7.1f %5d/%d\n", sc->name, (int)tm_grammar_n_states(g), first_ms, w->n_mask,
           w->n_mask ? sum / (double)w->n_mask : 0, p99, mx, walks ? (double)tokens / walks : 0, walks - fails, walks);
    double *a = realloc(T->all, (T->n_all + w->n_mask + 1) * sizeof *a);
    if (a) { memcpy(a + T->n_all, w->mask_us, w->n_mask * sizeof *a); T->all = a; T->n_all += w->n_mask; }
    T->failures += fails;
    tm_matcher_destroy(w->probe);
    w->probe = NULL;
    tm_matcher_destroy(m);
    tm_grammar_cache_destroy(cache);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill bench grammar [--tokenizer DIR] [--walks N] [--seed S] [--close-after K]\n"
               "                               [--max-tokens M] [--sample FILE] [--precompute]\n"
               "  --tokenizer DIR   default $TOKENMILL_TESTDATA/tokenizers/llama3\n"
               "  --walks N         random walks per schema (default 25)\n"
               "  --close-after K   uniformly random tokens before steering to an end (default 24)\n"
               "  --max-tokens M    a walk longer than this fails (default 2000)\n"
               "  --precompute      fill every state's token table at compile time (first mask includes it)\n"
               "  --sample FILE     write every walk's output as JSON lines (for tests/cli/grammar_walk.py)\n");
}

static int setup_walker(walker *w, const char *dir, tm_tokenizer **tok)
{
    tm_err err;
    uint64_t t0 = cpu_ns();
    if (tm_tokenizer_load(dir, tok, &err) || tm_grammar_vocab_create(*tok, &w->v, &err)) {
        fprintf(stderr, "%s: %s\n", CMD, err.msg);
        return -1;
    }
    w->tok = *tok;
    int32_t n = tm_grammar_vocab_size(w->v);
    w->allowed = malloc((size_t)n * sizeof *w->allowed);
    w->single = malloc((size_t)n * sizeof *w->single);
    w->ids = malloc(((size_t)w->max_tokens + 2) * sizeof *w->ids);
    w->mask = malloc(tm_grammar_vocab_mask_words(w->v) * sizeof *w->mask);
    if (!w->allowed || !w->single || !w->ids || !w->mask) { fprintf(stderr, "%s: out of memory\n", CMD); return -1; }
    for (int32_t id = 0; id < n; id++) {
        size_t l;
        if (tm_grammar_vocab_token(w->v, id, &l) && l == 1) w->single[w->n_single++] = id;
    }
    printf("tokenizer %s: %d tokens, %d single-byte; vocab built in %.1f ms\n", dir, (int)n, (int)w->n_single,
           (double)(cpu_ns() - t0) * 1e-6);
    return 0;
}

int tm_bench_grammar(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tokenizer", required_argument, 0, 't'}, {"walks", required_argument, 0, 'w'},
        {"seed", required_argument, 0, 's'},      {"close-after", required_argument, 0, 'k'},
        {"max-tokens", required_argument, 0, 'm'}, {"sample", required_argument, 0, 'o'},
        {"precompute", no_argument, 0, 'p'},      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *dir = NULL, *sample_path = NULL;
    long long walks = 25, seed = 1;
    walker w = {.close_after = 24, .max_tokens = 2000};
    tm_err err;
    int c;
    tm_cli_getopt_reset();
    while ((c = getopt_long(argc, argv, "t:w:s:k:m:o:ph", opts, NULL)) != -1) {
        tm_status s = TM_OK;
        switch (c) {
        case 't': dir = optarg; break;
        case 'o': sample_path = optarg; break;
        case 'w': s = tm_cli_parse_long("--walks", optarg, 1, 100000, &walks, &err); break;
        case 's': s = tm_cli_parse_long("--seed", optarg, 0, 1LL << 62, &seed, &err); break;
        case 'k': s = tm_cli_parse_long("--close-after", optarg, 0, 100000, &w.close_after, &err); break;
        case 'm': s = tm_cli_parse_long("--max-tokens", optarg, 1, 1000000, &w.max_tokens, &err); break;
        case 'p': w.precompute = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 64;
        }
        if (s) return tm_cli_usage_error(CMD, "%s", err.msg);
    }
    char defdir[4096];
    if (!dir) {
        const char *td = getenv("TOKENMILL_TESTDATA");
        snprintf(defdir, sizeof defdir, "%s/tokenizers/llama3", td ? td : "../shared/testdata");
        dir = defdir;
    }
    w.rng = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1;
    tm_tokenizer *tok = NULL;
    FILE *sample = NULL;
    totals T = {0};
    int rc = 70;
    if (setup_walker(&w, dir, &tok)) goto out;
    if (sample_path && !(sample = fopen(sample_path, "w"))) { fprintf(stderr, "%s: cannot write %s\n", CMD, sample_path); rc = 74; goto out; }
    printf("%-13s %6s %9s %7s %8s %8s %9s %7s %7s\n", "schema", "states", "first_ms", "masks", "mean_us", "p99_us",
           "max_us", "tokens", "walks");
    size_t n_schemas = sizeof bench_schemas / sizeof bench_schemas[0];
    for (size_t i = 0; i < n_schemas; i++)
        if (run_schema(&w, &bench_schemas[i], (int)walks, sample, &T)) T.failures += (int)walks;
    double sum = 0;
    for (size_t i = 0; i < T.n_all; i++) sum += T.all[i];
    if (T.n_all) qsort(T.all, T.n_all, sizeof *T.all, cmp_d);
    printf("all schemas: %zu masks, mean %.2f us, p99 %.2f us, max %.1f us; worst first mask %.3f ms; failed walks %d of %lld\n",
           T.n_all, T.n_all ? sum / (double)T.n_all : 0, T.n_all ? T.all[(size_t)((double)(T.n_all - 1) * 0.99)] : 0,
           T.n_all ? T.all[T.n_all - 1] : 0, T.worst_first_ms, T.failures, walks * (long long)n_schemas);
    printf("accept: mean %.2f us per token\n", w.n_accept ? w.accept_us / (double)w.n_accept : 0);
    printf("command: tokenmill bench grammar --tokenizer %s --walks %lld --seed %lld --close-after %lld --max-tokens %lld%s\n",
           dir, walks, seed, w.close_after, w.max_tokens, w.precompute ? " --precompute" : "");
    rc = T.failures ? 65 : 0;
out:
    if (sample && fclose(sample)) rc = 74;
    free(T.all);
    free(w.allowed);
    free(w.single);
    free(w.ids);
    free(w.mask);
    free(w.mask_us);
    tm_grammar_vocab_destroy(w.v);
    tm_tokenizer_destroy(tok);
    return rc;
}
