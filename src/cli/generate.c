/* generate.c — `tokenmill generate`: run one prompt through a model.
 *
 * For inspection and end-to-end checks, not throughput: one sequence, the
 * backend driven directly (chunked prefill, then one token per step over a
 * paged KV cache), the engine's sampler (greedy unless --temperature);
 * --quant quantizes the weights at load and --kv-dtype picks the KV cache
 * element type (quant/quant.h). The prompt: token ids, text (BOS per the
 * tokenizer, as a completions request), or one user chat message through
 * the chat template. --json prints
 *   {"prompt_ids", "ids", "text" (null without tokenizer), "finish_reason",
 *    "last_logits" (final prompt position; only with --logits last)}
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "engine/sampler.h"
#include "model/model.h"
#include "quant/quant.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"
#include "util/buf.h"

#define GEN_BLOCK_SIZE 16
#define GEN_MAX_CHUNK 256     /* prefill tokens per forward */
#define GEN_MAX_PROMPT 1000000

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tokenmill generate --model DIR (--ids 1,2,3 | --prompt TEXT | --chat TEXT) [options]\n"
            "\n"
            "Runs one prompt through the model and prints the generated text.\n"
            "\n"
            "  --model DIR          Hugging Face model directory\n"
            "  --ids LIST           prompt as comma-separated token ids (no tokenizer needed)\n"
            "  --prompt TEXT        prompt text, tokenized as a completions request (BOS per tokenizer)\n"
            "  --chat TEXT          one user message, rendered with the model's chat template\n"
            "  --chat-template NAME override the detected chat template (%s)\n"
            "  -n, --max-tokens N   tokens to generate (default 16); stops earlier at EOS\n"
            "  --ignore-eos         do not stop at EOS\n"
            "  --device D           auto | cpu | cuda (default auto = cpu for now)\n"
            "  --threads N          CPU threads (default 0 = all cores)\n"
            "  --quant Q            quantize the weights at load: %s (default none)\n"
            "  --kv-dtype D         KV cache element type: %s (default auto)\n"
            "  --temperature T      0 (default) = greedy\n"
            "  --top-p P, --top-k K, --seed S   sampling (see the sampler's pipeline)\n"
            "  --logits last        with --json: also print the logits of the final prompt position\n"
            "  --json               print one JSON object instead of text\n"
            "  --help\n",
            tm_chat_template_names(), TM_QUANT_SCHEME_NAMES, TM_KV_DTYPE_NAMES);
}

static tm_status parse_ids(const char *s, int32_t **out, size_t *n, tm_err *err)
{
    size_t cap = 16, len = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            free(ids);
            return tm_errf(err, TM_ERR_USAGE, "--ids: '%s' is not a comma-separated list of token ids", s);
        }
        if (len == cap) {
            if (cap >= GEN_MAX_PROMPT) {
                free(ids);
                return tm_errf(err, TM_ERR_USAGE, "--ids: more than %d ids", GEN_MAX_PROMPT);
            }
            int32_t *g = realloc(ids, 2 * cap * sizeof *ids);
            if (!g) {
                free(ids);
                return tm_errf(err, TM_ERR_NOMEM, "out of memory");
            }
            ids = g;
            cap *= 2;
        }
        ids[len++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    if (!len) {
        free(ids);
        return tm_errf(err, TM_ERR_USAGE, "--ids: empty list");
    }
    *out = ids;
    *n = len;
    return TM_OK;
}

static tm_status parse_float(const char *opt, const char *val, float lo, float hi, float *out, tm_err *err)
{
    char *end;
    errno = 0;
    float v = strtof(val, &end);
    if (errno || end == val || *end || isnan(v) || v < lo || v > hi)
        return tm_errf(err, TM_ERR_USAGE, "%s: '%s' is not a number in [%g, %g]", opt, val, lo, hi);
    *out = v;
    return TM_OK;
}

typedef struct gen_opts {
    const char *model, *ids, *prompt, *chat, *tmpl, *device, *quant;
    tm_kv_dtype kv_dtype;
    long long max_tokens;
    int ignore_eos, json, logits_last, n_threads;
    tm_sampling_params sp;
} gen_opts;

/* Build the prompt ids from --ids / --prompt / --chat. */
static tm_status make_prompt(const gen_opts *o, const tm_tokenizer *tok, int32_t **ids, size_t *n, tm_err *err)
{
    if (o->ids) return parse_ids(o->ids, ids, n, err);
    if (!tok)
        return tm_errf(err, TM_ERR_INPUT, "%s has no tokenizer.json: use --ids", o->model);
    if (o->prompt)
        return tm_tokenizer_encode(tok, o->prompt, strlen(o->prompt), tm_tokenizer_add_bos(tok), ids, n, err);
    const tm_chat_template *t;
    tm_status s = tm_chat_template_resolve(o->tmpl, tm_tokenizer_chat_template(tok), &t, err);
    if (s) return s;
    tm_chat_message msg = {.role = "user", .content = o->chat};
    tm_buf text;
    tm_buf_init(&text);
    s = tm_chat_render(t, &msg, 1, 1, tm_tokenizer_bos_token(tok), tm_tokenizer_eos_token(tok), &text, err);
    if (!s) s = tm_tokenizer_encode(tok, text.data, text.len, 0, ids, n, err);
    tm_buf_free(&text);
    return s;
}

typedef struct gen_state {
    const tm_backend_ops *ops;
    tm_backend *be;
    int32_t *table;
    int32_t n_blocks;
} gen_state;

/* Append toks[0..n) at position start; logits of the last one into logits. */
static tm_status run_tokens(gen_state *g, const int32_t *toks, int32_t n, int32_t start, float *logits, tm_err *err)
{
    int32_t pos[GEN_MAX_CHUNK], seq_start[2] = {0, n}, seq_len = start + n, row = n - 1;
    for (int32_t i = 0; i < n; i++) pos[i] = start + i;
    tm_batch b = {.n_tokens = n, .token_ids = toks, .positions = pos, .n_seqs = 1, .seq_start = seq_start,
                  .seq_len = &seq_len, .block_tables = g->table, .max_blocks = g->n_blocks,
                  .n_logits = logits ? 1 : 0, .logit_rows = &row, .logits = logits};
    return g->ops->forward(g->be, &b, err);
}

static json_t *float_array(const float *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_real(v[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *int_array(const int32_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer(v[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static int generate(const gen_opts *o)
{
    tm_err err = {{0}};
    tm_status s;
    const tm_backend_ops *ops;
    if ((s = tm_backend_select(o->device, &ops, &err))) return tm_cli_fail("generate", s, &err);

    tm_model *m = NULL;
    tm_tokenizer *tok = NULL;
    tm_sampler *smp = NULL;
    gen_state g = {.ops = ops};
    int32_t *prompt = NULL, *all = NULL;
    float *logits = NULL, *last_logits = NULL;
    char *text = NULL;
    json_t *out = NULL;
    size_t n_prompt = 0, n_gen = 0;
    int rc = 0;

    if ((s = tm_model_load(o->model, &m, &err))) goto fail;
    if ((s = tm_model_quantize(m, o->quant, &err))) goto fail;
    const tm_model_config *cfg = tm_model_config_of(m);
    char tpath[4096];
    struct stat st;
    if ((s = tm_path_join(tpath, sizeof tpath, o->model, "tokenizer.json", &err))) goto fail;
    if (!stat(tpath, &st) && (s = tm_tokenizer_load(o->model, &tok, &err))) goto fail;
    if ((s = make_prompt(o, tok, &prompt, &n_prompt, &err))) goto fail;
    for (size_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= cfg->vocab_size) {
            s = tm_errf(&err, TM_ERR_INPUT, "prompt token %zu: id %d is not in [0, %d)", i, prompt[i], cfg->vocab_size);
            goto fail;
        }
    int64_t total = (int64_t)n_prompt + o->max_tokens;
    if (cfg->max_position_embeddings > 0 && total > cfg->max_position_embeddings) {
        s = tm_errf(&err, TM_ERR_USAGE, "prompt (%zu tokens) + --max-tokens %lld exceeds the model's context of %d",
                    n_prompt, o->max_tokens, cfg->max_position_embeddings);
        goto fail;
    }
    if (total > INT32_MAX / 2) {
        s = tm_errf(&err, TM_ERR_USAGE, "prompt + --max-tokens is too long");
        goto fail;
    }
    if ((s = tm_sampling_params_check(&o->sp, cfg->vocab_size, &err))) goto fail;
    if ((s = tm_sampler_create(cfg->vocab_size, &smp, &err))) goto fail;

    g.n_blocks = (int32_t)((total + GEN_BLOCK_SIZE - 1) / GEN_BLOCK_SIZE);
    tm_backend_opts bo = {.n_blocks = g.n_blocks, .block_size = GEN_BLOCK_SIZE,
                          .max_batch_tokens = n_prompt < GEN_MAX_CHUNK ? (int32_t)n_prompt : GEN_MAX_CHUNK,
                          .max_seqs = 1, .n_threads = o->n_threads, .kv_dtype = o->kv_dtype};
    g.table = malloc(sizeof(int32_t) * g.n_blocks);
    all = malloc(sizeof(int32_t) * (size_t)total);
    logits = malloc(sizeof(float) * cfg->vocab_size);
    if (!g.table || !all || !logits) {
        s = tm_errf(&err, TM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int32_t i = 0; i < g.n_blocks; i++) g.table[i] = i;
    if ((s = ops->create(m, &bo, &g.be, &err))) goto fail;

    /* prefill */
    memcpy(all, prompt, n_prompt * sizeof(int32_t));
    for (size_t done = 0; done < n_prompt;) {
        int32_t n = (int32_t)(n_prompt - done < GEN_MAX_CHUNK ? n_prompt - done : GEN_MAX_CHUNK);
        int last = done + (size_t)n == n_prompt;
        if ((s = run_tokens(&g, prompt + done, n, (int32_t)done, last ? logits : NULL, &err))) goto fail;
        done += (size_t)n;
    }
    if (o->logits_last) {
        last_logits = malloc(sizeof(float) * cfg->vocab_size);
        if (!last_logits) {
            s = tm_errf(&err, TM_ERR_NOMEM, "out of memory");
            goto fail;
        }
        memcpy(last_logits, logits, sizeof(float) * cfg->vocab_size);
    }

    /* decode */
    const char *finish = "length";
    tm_detok *dt = NULL;
    if (tok && !o->json && (s = tm_detok_create(tok, 1, &dt, &err))) goto fail;
    for (long long i = 0; i < o->max_tokens; i++) {
        tm_sample_result r;
        if ((s = tm_sampler_sample(smp, logits, &o->sp, 0, (uint64_t)i, all, n_prompt + n_gen, n_prompt, &r, &err)))
            break;
        all[n_prompt + n_gen++] = r.token;
        if (dt) {
            const char *piece;
            size_t plen;
            if ((s = tm_detok_push(dt, r.token, &piece, &plen, &err))) break;
            fwrite(piece, 1, plen, stdout);
            fflush(stdout);
        } else if (!o->json) {
            printf("%s%d", n_gen > 1 ? "," : "", r.token);
            fflush(stdout);
        }
        int is_eos = 0;
        for (int e = 0; e < cfg->n_eos; e++) is_eos |= r.token == cfg->eos_token_ids[e];
        if (is_eos && !o->ignore_eos) {
            finish = "stop";
            break;
        }
        if (i + 1 < o->max_tokens &&
            (s = run_tokens(&g, &r.token, 1, (int32_t)(n_prompt + n_gen - 1), logits, &err)))
            break;
    }
    if (dt) {
        const char *piece;
        size_t plen;
        if (!s && !(s = tm_detok_flush(dt, &piece, &plen, &err))) fwrite(piece, 1, plen, stdout);
        tm_detok_destroy(dt);
    }
    if (s) goto fail;
    if (!o->json) {
        putchar('\n');
    } else {
        size_t tlen = 0;
        if (tok && (s = tm_tokenizer_decode(tok, all + n_prompt, n_gen, 1, &text, &tlen, &err))) goto fail;
        out = json_object();
        if (!out || json_object_set_new(out, "prompt_ids", int_array(prompt, n_prompt)) ||
            json_object_set_new(out, "ids", int_array(all + n_prompt, n_gen)) ||
            json_object_set_new(out, "text", text ? json_stringn(text, tlen) : json_null()) ||
            json_object_set_new(out, "finish_reason", json_string(finish)) ||
            (last_logits && json_object_set_new(out, "last_logits", float_array(last_logits, cfg->vocab_size))) ||
            json_dumpf(out, stdout, JSON_COMPACT) || putchar('\n') == EOF) {
            s = tm_errf(&err, TM_ERR_IO, "writing the JSON result failed");
            goto fail;
        }
    }
    if (fflush(stdout) == EOF) {
        s = tm_errf(&err, TM_ERR_IO, "writing stdout failed");
        goto fail;
    }
    goto done;
fail:
    rc = tm_cli_fail("generate", s, &err);
done:
    json_decref(out);
    free(text);
    free(last_logits);
    free(logits);
    free(all);
    free(prompt);
    free(g.table);
    if (g.be) ops->destroy(g.be);
    tm_sampler_destroy(smp);
    tm_tokenizer_destroy(tok);
    tm_model_destroy(m);
    return rc;
}

int tm_cmd_generate(int argc, char **argv)
{
    enum { O_IDS = 256, O_PROMPT, O_CHAT, O_TMPL, O_DEVICE, O_THREADS, O_TEMP, O_TOPP, O_TOPK, O_SEED, O_LOGITS,
           O_JSON, O_IGNORE_EOS, O_DB, O_QUANT, O_KV };
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},      {"ids", required_argument, NULL, O_IDS},
        {"prompt", required_argument, NULL, O_PROMPT}, {"chat", required_argument, NULL, O_CHAT},
        {"chat-template", required_argument, NULL, O_TMPL}, {"max-tokens", required_argument, NULL, 'n'},
        {"device", required_argument, NULL, O_DEVICE}, {"threads", required_argument, NULL, O_THREADS},
        {"temperature", required_argument, NULL, O_TEMP}, {"top-p", required_argument, NULL, O_TOPP},
        {"top-k", required_argument, NULL, O_TOPK},   {"seed", required_argument, NULL, O_SEED},
        {"logits", required_argument, NULL, O_LOGITS}, {"json", no_argument, NULL, O_JSON},
        {"ignore-eos", no_argument, NULL, O_IGNORE_EOS}, {"db", required_argument, NULL, O_DB},
        {"quant", required_argument, NULL, O_QUANT},  {"kv-dtype", required_argument, NULL, O_KV},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0},
    };
    gen_opts o = {.device = "auto", .max_tokens = 16, .quant = "none"};
    tm_sampling_params_default(&o.sp);
    o.sp.temperature = 0.0f; /* greedy unless asked */
    o.sp.seed = tm_sampler_seed_from("generate", NULL);
    tm_err err = {{0}};
    long long v;
    tm_cli_getopt_reset();
    int ch;
    while ((ch = getopt_long(argc, argv, "m:n:h", opts, NULL)) != -1) {
        tm_status s = TM_OK;
        switch (ch) {
        case 'm': o.model = optarg; break;
        case O_IDS: o.ids = optarg; break;
        case O_PROMPT: o.prompt = optarg; break;
        case O_CHAT: o.chat = optarg; break;
        case O_TMPL: o.tmpl = optarg; break;
        case 'n':
            if (!(s = tm_cli_parse_long("--max-tokens", optarg, 0, 1000000, &v, &err))) o.max_tokens = v;
            break;
        case O_DEVICE: o.device = optarg; break;
        case O_THREADS:
            if (!(s = tm_cli_parse_long("--threads", optarg, 0, 256, &v, &err))) o.n_threads = (int)v;
            break;
        case O_TEMP: s = parse_float("--temperature", optarg, 0.0f, 100.0f, &o.sp.temperature, &err); break;
        case O_TOPP: s = parse_float("--top-p", optarg, 0.0f, 1.0f, &o.sp.top_p, &err); break;
        case O_TOPK:
            if (!(s = tm_cli_parse_long("--top-k", optarg, -1, INT32_MAX, &v, &err))) o.sp.top_k = (int32_t)v;
            break;
        case O_SEED:
            if (!(s = tm_cli_parse_long("--seed", optarg, 0, INT64_MAX, &v, &err))) {
                o.sp.seed = (uint64_t)v;
                o.sp.has_seed = 1;
            }
            break;
        case O_LOGITS:
            if (strcmp(optarg, "last")) return tm_cli_usage_error("generate", "--logits: only 'last' is supported");
            o.logits_last = 1;
            break;
        case O_JSON: o.json = 1; break;
        case O_IGNORE_EOS: o.ignore_eos = 1; break;
        case O_DB: break;
        case O_QUANT: {
            tm_quant_scheme qs;
            if (!(s = tm_quant_scheme_parse(optarg, &qs, &err))) o.quant = optarg;
            break;
        }
        case O_KV: s = tm_kv_dtype_parse(optarg, &o.kv_dtype, &err); break;
        case 'h': usage(stdout); return 0;
        default: return tm_cli_usage_error("generate", "bad option");
        }
        if (s) return tm_cli_usage_error("generate", "%s", err.msg);
    }
    if (optind < argc) return tm_cli_usage_error("generate", "unexpected argument '%s'", argv[optind]);
    if (!o.model) return tm_cli_usage_error("generate", "--model DIR is required");
    if (!!o.ids + !!o.prompt + !!o.chat != 1)
        return tm_cli_usage_error("generate", "give exactly one of --ids, --prompt, --chat");
    if (o.tmpl && !o.chat) return tm_cli_usage_error("generate", "--chat-template goes with --chat");
    if (o.tmpl && !tm_chat_template_by_name(o.tmpl))
        return tm_cli_usage_error("generate", "--chat-template: unknown template '%s' (known: %s)", o.tmpl,
                                  tm_chat_template_names());
    if (o.logits_last && !o.json) return tm_cli_usage_error("generate", "--logits last needs --json");
    return generate(&o);
}
