/* generate.c — `tokenmill generate`: run one prompt through a model.
 *
 * For inspection and end-to-end checks, not throughput: one request through
 * the batching engine (engine/engine.h: chunked prefill, paged KV cache, the
 * engine's sampler and EOS / length checks), greedy unless --temperature;
 * the model and engine options are the shared ones (cli/engine_opts.h). The
 * prompt: token ids, text (BOS per the tokenizer, as a completions request),
 * or one user chat message through the chat template. --json prints
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
#include "model/gguf_hf.h"
#include "cli/engine_opts.h"
#include "engine/engine.h"
#include "model/model.h"
#include "quant/quant.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"
#include "util/buf.h"

#define GEN_BLOCK_SIZE 16     /* tokens per KV block */
#define GEN_MAX_CHUNK 256     /* prefill tokens per engine step */
#define GEN_MAX_PROMPT 1000000

static void usage(FILE *f, const tm_engine_opts *eo)
{
    fprintf(f,
            "usage: tokenmill generate --model DIR (--ids 1,2,3 | --prompt TEXT | --chat TEXT) [options]\n"
            "\n"
            "Runs one prompt through the model and prints the generated text.\n"
            "\n"
            "  --ids LIST              prompt as comma-separated token ids (no tokenizer needed)\n"
            "  --prompt TEXT           prompt text, tokenized as a completions request (BOS per tokenizer)\n"
            "  --chat TEXT             one user message, rendered with the model's chat template\n"
            "  --chat-template NAME    override the detected chat template (%s)\n"
            "  -n, --max-tokens N      tokens to generate (default 16); stops earlier at EOS\n"
            "  --ignore-eos            do not stop at EOS\n"
            "  --temperature T         0 (default) = greedy\n"
            "  --top-p P, --top-k K, --seed S   sampling (see the sampler's pipeline)\n"
            "  --logits last           with --json: also print the logits of the final prompt position\n"
            "  --json                  print one JSON object instead of text\n"
            "  --help\n",
            tm_chat_template_names());
    tm_engine_opts_usage(f, TM_ENGINE_OPTS_MODEL, eo);
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
    tm_engine_opts eo;
    const char *model, *ids, *prompt, *chat, *tmpl;
    long long max_tokens;
    int json, logits_last;
    tm_sampling_params sp;      /* .ignore_eos from --ignore-eos */
} gen_opts;

/* Build the prompt ids from --ids / --prompt / --chat. */
static tm_status make_prompt(const gen_opts *o, const tm_tokenizer *tok, int32_t **ids, size_t *n, tm_err *err)
{
    if (o->ids) return parse_ids(o->ids, ids, n, err);
    if (!tok)
        return tm_errf(err, TM_ERR_INPUT, "%s has no tokenizer.json: use --ids", o->model);
    if (o->prompt)
        return tm_tokenizer_encode(tok, o->prompt, strlen(o->prompt), tm_tokenizer_add_bos(tok), ids, n, err);
    tm_chat_template *t = NULL;
    tm_status s = tm_chat_template_load(o->tmpl, tm_tokenizer_chat_template(tok), &t, err);
    if (s) return s;
    tm_chat_message msg = {.role = "user", .content = o->chat};
    tm_buf text;
    tm_buf_init(&text);
    s = tm_chat_render(t, &msg, 1, 1, tm_tokenizer_bos_token(tok), tm_tokenizer_eos_token(tok), &text, err);
    if (!s) s = tm_tokenizer_encode(tok, text.data, text.len, 0, ids, n, err);
    tm_buf_free(&text);
    tm_chat_template_destroy(t);
    return s;
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

typedef struct gen_run {
    const tm_backend_ops *ops;
    tm_model *m;
    tm_tokenizer *tok;
    tm_engine *e;
    int32_t *prompt;
    size_t n_prompt;
    int32_t *ids;               /* [max_tokens] generated */
    size_t n_gen;
    float *last_logits;         /* --logits last */
    tm_detok *dt;               /* streaming text (no --json) */
    tm_finish_reason finish;
} gen_run;

static void gen_free(gen_run *g)
{
    tm_detok_destroy(g->dt);
    tm_engine_destroy(g->e);
    free(g->last_logits);
    free(g->ids);
    free(g->prompt);
    tm_tokenizer_destroy(g->tok);
    tm_model_destroy(g->m);
}

/* Backend, model (quantized when asked), tokenizer when there is one, the
 * prompt ids, checked against the vocabulary and the context. */
static tm_status gen_load(const gen_opts *o, gen_run *g, tm_err *err)
{
    tm_status s;
    if ((s = tm_backend_select(o->eo.device, &g->ops, err))) return s;
    if ((s = tm_model_load(o->model, &g->m, err))) return s;
    if (o->eo.quant != TM_QS_NONE && (s = tm_model_quantize(g->m, o->eo.quant, err))) return s;
    const tm_model_config *cfg = tm_model_config_of(g->m);
    char tpath[4096];
    struct stat st;
    int gguf = tm_gguf_is_file(o->model);    /* a GGUF file carries its tokenizer, or none */
    if ((s = tm_path_join(tpath, sizeof tpath, o->model, "tokenizer.json", err))) return s;
    if ((gguf || !stat(tpath, &st)) && (s = tm_tokenizer_load(o->model, &g->tok, err)) &&
        !(gguf && s == TM_ERR_NOTFOUND))
        return s;
    if ((s = make_prompt(o, g->tok, &g->prompt, &g->n_prompt, err))) return s;
    for (size_t i = 0; i < g->n_prompt; i++)
        if (g->prompt[i] < 0 || g->prompt[i] >= cfg->vocab_size)
            return tm_errf(err, TM_ERR_INPUT, "prompt token %zu: id %d is not in [0, %d)", i, g->prompt[i],
                           cfg->vocab_size);
    int64_t total = (int64_t)g->n_prompt + o->max_tokens;
    if (cfg->max_position_embeddings > 0 && total > cfg->max_position_embeddings)
        return tm_errf(err, TM_ERR_USAGE, "prompt (%zu tokens) + --max-tokens %lld exceeds the model's context of %d",
                       g->n_prompt, o->max_tokens, cfg->max_position_embeddings);
    if (total > INT32_MAX / 2) return tm_errf(err, TM_ERR_USAGE, "prompt + --max-tokens is too long");
    return tm_sampling_params_check(&o->sp, cfg->vocab_size, err);
}

/* An engine sized for this one request, and the request in it. -n 0 still
 * runs the prompt (one token, not reported) for --logits last. */
static tm_status gen_start(const gen_opts *o, gen_run *g, tm_err *err)
{
    int32_t n_new = o->max_tokens > 0 ? (int32_t)o->max_tokens : 1;
    int32_t total = (int32_t)g->n_prompt + n_new;
    tm_engine_config ec = {.block_size = GEN_BLOCK_SIZE, .n_blocks = (total + GEN_BLOCK_SIZE - 1) / GEN_BLOCK_SIZE,
                           .max_batch_tokens = GEN_MAX_CHUNK, .max_seqs = 1, .max_requests = 1,
                           .max_context = total, .n_threads = o->eo.n_threads, .kv_dtype = o->eo.kv_dtype,
                           .backend_flags = o->eo.backend_flags};
    tm_status s = tm_engine_create(g->ops, g->m, &ec, &g->e, err);
    if (s) return s;
    g->ids = malloc(sizeof(int32_t) * (size_t)n_new);
    if (!g->ids) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    if (g->tok && !o->json && (s = tm_detok_create(g->tok, 1, &g->dt, err))) return s;
    tm_engine_request er = {.id = 0, .prompt = g->prompt, .n_prompt = (int32_t)g->n_prompt, .n = 1,
                            .params = o->sp, .seed = o->sp.seed};
    er.params.max_tokens = n_new;
    return tm_engine_add(g->e, &er, err);
}

/* One generated token: kept, and printed as it comes without --json. */
static tm_status gen_take(const gen_opts *o, gen_run *g, int32_t token, tm_err *err)
{
    g->ids[g->n_gen++] = token;
    if (g->dt) {
        const char *piece;
        size_t plen;
        tm_status s = tm_detok_push(g->dt, token, &piece, &plen, err);
        if (s) return s;
        fwrite(piece, 1, plen, stdout);
    } else if (!o->json) {
        printf("%s%d", g->n_gen > 1 ? "," : "", token);
    }
    fflush(stdout);
    return TM_OK;
}

/* Step the engine until the request finishes (EOS, --max-tokens). */
static tm_status gen_loop(const gen_opts *o, gen_run *g, tm_err *err)
{
    const int32_t vocab = tm_model_config_of(g->m)->vocab_size;
    g->finish = TM_FINISH_NONE;
    tm_status s = TM_OK;
    while (!s && g->finish == TM_FINISH_NONE && tm_engine_has_work(g->e)) {
        tm_engine_step_out so;
        if ((s = tm_engine_step(g->e, &so, err))) break;
        for (int32_t i = 0; i < so.n_events && !s; i++) {
            const tm_engine_event *ev = &so.events[i];
            if (ev->aborted) return tm_errf(err, TM_ERR_INPUT, "the sampler could not draw a token (all logits -inf/NaN)");
            if (o->logits_last && !g->last_logits) {
                g->last_logits = malloc(sizeof(float) * (size_t)vocab);
                if (!g->last_logits) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
                memcpy(g->last_logits, ev->logits, sizeof(float) * (size_t)vocab);
            }
            if (o->max_tokens > 0) s = gen_take(o, g, ev->token, err);
            if (ev->finished) g->finish = ev->finished;
        }
    }
    if (!s && g->finish == TM_FINISH_NONE) s = tm_errf(err, TM_ERR_INTERNAL, "the engine stopped without finishing");
    if (!s && g->dt) {
        const char *piece;
        size_t plen;
        if (!(s = tm_detok_flush(g->dt, &piece, &plen, err))) fwrite(piece, 1, plen, stdout);
    }
    return s;
}

static tm_status gen_print_json(const gen_opts *o, const gen_run *g, tm_err *err)
{
    char *text = NULL;
    size_t tlen = 0;
    tm_status s;
    if (g->tok && (s = tm_tokenizer_decode(g->tok, g->ids, g->n_gen, 1, &text, &tlen, err))) return s;
    json_t *out = json_object();
    s = TM_OK;
    if (!out || json_object_set_new(out, "prompt_ids", int_array(g->prompt, g->n_prompt)) ||
        json_object_set_new(out, "ids", int_array(g->ids, g->n_gen)) ||
        json_object_set_new(out, "text", text ? json_stringn(text, tlen) : json_null()) ||
        json_object_set_new(out, "finish_reason", json_string(tm_finish_reason_str(g->finish))) ||
        (g->last_logits &&
         json_object_set_new(out, "last_logits", float_array(g->last_logits, (size_t)tm_model_config_of(g->m)->vocab_size))) ||
        json_dumpf(out, stdout, JSON_COMPACT) || putchar('\n') == EOF)
        s = tm_errf(err, TM_ERR_IO, "writing the JSON result failed");
    json_decref(out);
    free(text);
    return s;
}

static int generate(const gen_opts *o)
{
    tm_err err = {{0}};
    gen_run g;
    memset(&g, 0, sizeof g);
    tm_status s = gen_load(o, &g, &err);
    if (!s) s = gen_start(o, &g, &err);
    if (!s) s = gen_loop(o, &g, &err);
    if (!s && !o->json && putchar('\n') == EOF) s = tm_errf(&err, TM_ERR_IO, "writing stdout failed");
    if (!s && o->json) s = gen_print_json(o, &g, &err);
    if (!s && fflush(stdout) == EOF) s = tm_errf(&err, TM_ERR_IO, "writing stdout failed");
    gen_free(&g);
    return s ? tm_cli_fail("generate", s, &err) : 0;
}

int tm_cmd_generate(int argc, char **argv)
{
    enum { O_IDS = 256, O_PROMPT, O_CHAT, O_TMPL, O_TEMP, O_TOPP, O_TOPK, O_SEED, O_LOGITS, O_JSON, O_IGNORE_EOS,
           O_DB };
    static const struct option opts[] = {
        TM_ENGINE_LONGOPTS_MODEL,
        {"ids", required_argument, NULL, O_IDS},
        {"prompt", required_argument, NULL, O_PROMPT}, {"chat", required_argument, NULL, O_CHAT},
        {"chat-template", required_argument, NULL, O_TMPL}, {"max-tokens", required_argument, NULL, 'n'},
        {"temperature", required_argument, NULL, O_TEMP}, {"top-p", required_argument, NULL, O_TOPP},
        {"top-k", required_argument, NULL, O_TOPK},   {"seed", required_argument, NULL, O_SEED},
        {"logits", required_argument, NULL, O_LOGITS}, {"json", no_argument, NULL, O_JSON},
        {"ignore-eos", no_argument, NULL, O_IGNORE_EOS}, {"db", required_argument, NULL, O_DB},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0},
    };
    gen_opts o = {.max_tokens = 16};
    tm_engine_opts_default(&o.eo, 1, GEN_MAX_CHUNK);
    tm_sampling_params_default(&o.sp);
    o.sp.temperature = 0.0f; /* greedy unless asked */
    o.sp.seed = tm_sampler_seed_from("generate", NULL);
    tm_err err = {{0}};
    long long v;
    tm_cli_getopt_reset();
    int ch;
    while ((ch = getopt_long(argc, argv, "m:n:h", opts, NULL)) != -1) {
        tm_status s = TM_OK;
        if (tm_engine_opts_parse(&o.eo, ch == 'm' ? TM_EO_MODEL : ch, optarg, &s, &err)) {
            if (s) return tm_cli_usage_error("generate", "%s", err.msg);
            continue;
        }
        switch (ch) {
        case O_IDS: o.ids = optarg; break;
        case O_PROMPT: o.prompt = optarg; break;
        case O_CHAT: o.chat = optarg; break;
        case O_TMPL: o.tmpl = optarg; break;
        case 'n':
            if (!(s = tm_cli_parse_long("--max-tokens", optarg, 0, 1000000, &v, &err))) o.max_tokens = v;
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
        case O_IGNORE_EOS: o.sp.ignore_eos = 1; break;
        case O_DB: break;
        case 'h': usage(stdout, &o.eo); return 0;
        default: return tm_cli_usage_error("generate", "bad option");
        }
        if (s) return tm_cli_usage_error("generate", "%s", err.msg);
    }
    o.model = o.eo.model_dir;
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
