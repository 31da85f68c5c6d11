/* demo.c — `tokenmill demo`: the whole product on a tiny model, offline.
 *
 * Writes (deterministically, no download) DIR/model: a 2-layer Llama with
 * seeded random bf16 weights, a byte-level BPE tokenizer.json (256 byte
 * tokens + ChatML specials) and a ChatML chat template; DIR/job.jsonl: chat
 * and completion requests. Then submits the job into DIR/tokenmill.db, runs
 * it on the CPU, and prints the job status, where the results are and SQL
 * to try. The model's weights are random, so its text is gibberish: the
 * point is the pipeline. Point `tokenmill run --model` at a real Hugging
 * Face directory for real output.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "queue/queue.h"
#include "util/buf.h"

enum { D_VOCAB = 259, D_HIDDEN = 64, D_INTER = 176, D_LAYERS = 2, D_HEADS = 4, D_KV = 2, D_CTX = 1024 };

static const char *demo_job[] = {
    "{\"custom_id\":\"hello-1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"demo\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"},{\"role\":\"user\",\"content\":\"Say hello in three languages.\"}],\"max_tokens\":24}}",
    "{\"custom_id\":\"hello-2\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"demo\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"},{\"role\":\"user\",\"content\":\"Name three prime numbers.\"}],\"max_tokens\":24,\"temperature\":0.7,\"seed\":42}}",
    "{\"custom_id\":\"hello-3\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"demo\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"},{\"role\":\"user\",\"content\":\"What is a batch job?\"}],\"max_tokens\":32,\"top_p\":0.9,\"seed\":7,\"n\":2}}",
    "{\"custom_id\":\"story-1\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"model\":\"demo\",\"prompt\":\"Once upon a time\",\"max_tokens\":20,\"temperature\":0}}",
    "{\"custom_id\":\"ids-1\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"model\":\"demo\",\"prompt\":[79,110,99,101],\"max_tokens\":12,\"return_token_ids\":true}}",
};

static const char chatml_template[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

static int write_text(const char *path, const char *text, tm_err *err)
{
    FILE *f = fopen(path, "wb");
    if (!f) return tm_errf(err, TM_ERR_IO, "%s: %s", path, strerror(errno));
    size_t n = strlen(text);
    int bad = fwrite(text, 1, n, f) != n;
    bad |= fclose(f) != 0;
    return bad ? tm_errf(err, TM_ERR_IO, "%s: write failed", path) : TM_OK;
}

/* GPT-2 byte-to-unicode map: printable bytes map to themselves. */
static void byte_token(int b, char out[5])
{
    int map[256];
    int n = 0;
    for (int i = 0; i < 256; i++) {
        int printable = (i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255);
        map[i] = printable ? i : 256 + n++;
    }
    int cp = map[b];
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; }
    else { out[0] = (char)(0xc0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3f)); out[2] = 0; }
}

static tm_status write_tokenizer(const char *dir, tm_err *err)
{
    json_t *vocab = json_object();
    for (int b = 0; b < 256; b++) {
        char tok[5];
        byte_token(b, tok);
        json_object_set_new(vocab, tok, json_integer(b));
    }
    const char *specials[3] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    json_t *added = json_array();
    for (int i = 0; i < 3; i++) {
        json_object_set_new(vocab, specials[i], json_integer(256 + i));
        json_array_append_new(added, json_pack("{s:i,s:s,s:b,s:b,s:b,s:b,s:b}", "id", 256 + i, "content",
                                               specials[i], "single_word", 0, "lstrip", 0, "rstrip", 0,
                                               "normalized", 0, "special", 1));
    }
    json_t *bytelevel = json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 0,
                                  "trim_offsets", 1, "use_regex", 1);
    json_t *model = json_pack("{s:s,s:n,s:n,s:n,s:n,s:b,s:b,s:b}", "type", "BPE", "dropout", "unk_token",
                              "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0,
                              "byte_fallback", 0, "ignore_merges", 0);
    json_object_set_new(model, "vocab", vocab);
    json_object_set_new(model, "merges", json_array());
    json_t *tok = json_object();
    json_object_set_new(tok, "version", json_string("1.0"));
    json_object_set_new(tok, "truncation", json_null());
    json_object_set_new(tok, "padding", json_null());
    json_object_set_new(tok, "added_tokens", added);
    json_object_set_new(tok, "normalizer", json_null());
    json_object_set_new(tok, "pre_tokenizer", bytelevel);
    json_object_set_new(tok, "post_processor", json_null());
    json_object_set_new(tok, "decoder", json_deep_copy(bytelevel));
    json_object_set_new(tok, "model", model);
    char path[4096];
    tm_status st = tm_path_join(path, sizeof path, dir, "tokenizer.json", err);
    if (!st && json_dump_file(tok, path, JSON_INDENT(1)) != 0) st = tm_errf(err, TM_ERR_IO, "%s: write failed", path);
    json_decref(tok);
    if (st) return st;
    json_t *cfg = json_pack("{s:s,s:s,s:b,s:s,s:s,s:s}", "bos_token", "<|endoftext|>", "eos_token", "<|im_end|>",
                            "add_bos_token", 0, "chat_template", chatml_template, "tokenizer_class",
                            "PreTrainedTokenizerFast", "pad_token", "<|endoftext|>");
    if (!(st = tm_path_join(path, sizeof path, dir, "tokenizer_config.json", err)) &&
        json_dump_file(cfg, path, JSON_INDENT(1)) != 0)
        st = tm_errf(err, TM_ERR_IO, "%s: write failed", path);
    json_decref(cfg);
    return st;
}

typedef struct { const char *name; int64_t r, c; float scale; } dtensor;

/* config.json and generation_config.json of the demo model. */
static tm_status write_configs(const char *dir, tm_err *err)
{
    char path[4096];
    tm_status st;
    json_t *cfg = json_pack("{s:[s],s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:b,s:s,s:i,s:i,s:b}",
                            "architectures", "LlamaForCausalLM", "model_type", "llama", "vocab_size", D_VOCAB,
                            "hidden_size", D_HIDDEN, "intermediate_size", D_INTER, "num_hidden_layers", D_LAYERS,
                            "num_attention_heads", D_HEADS, "num_key_value_heads", D_KV,
                            "max_position_embeddings", D_CTX, "rms_norm_eps", 1e-5, "rope_theta", 10000.0,
                            "tie_word_embeddings", 0, "torch_dtype", "bfloat16", "bos_token_id", 256,
                            "eos_token_id", 258, "attention_bias", 0);
    /* the name its jobs ask for ("model": "demo"): a worker serves it by this name too */
    if (cfg) json_object_set_new(cfg, "_name_or_path", json_string("demo"));
    if ((st = tm_path_join(path, sizeof path, dir, "config.json", err))) { json_decref(cfg); return st; }
    int bad = json_dump_file(cfg, path, JSON_INDENT(1));
    json_decref(cfg);
    if (bad) return tm_errf(err, TM_ERR_IO, "%s: write failed", path);
    if ((st = tm_path_join(path, sizeof path, dir, "generation_config.json", err))) return st;
    if ((st = write_text(path, "{\"eos_token_id\": [258, 256], \"temperature\": 1.0}\n", err))) return st;
    return TM_OK;
}

/* model.safetensors holding the n tensors of t, bf16, filled from a fixed seed. */
static tm_status write_safetensors(const char *dir, const dtensor *t, int n, tm_err *err)
{
    char path[4096];
    tm_status st;
    int bad;
    json_t *hdr = json_object();
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t elems = (size_t)t[i].r * (size_t)(t[i].c ? t[i].c : 1);
        json_t *shape = t[i].c ? json_pack("[I,I]", (json_int_t)t[i].r, (json_int_t)t[i].c)
                               : json_pack("[I]", (json_int_t)t[i].r);
        json_object_set_new(hdr, t[i].name, json_pack("{s:s,s:o,s:[I,I]}", "dtype", "BF16", "shape", shape,
                                                      "data_offsets", (json_int_t)off, (json_int_t)(off + elems * 2)));
        off += elems * 2;
    }
    char *h = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(hdr);
    if (!h) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    size_t hl = strlen(h), padded = (hl + 7) & ~(size_t)7;
    if ((st = tm_path_join(path, sizeof path, dir, "model.safetensors", err))) { free(h); return st; }
    FILE *f = fopen(path, "wb");
    if (!f) { free(h); return tm_errf(err, TM_ERR_IO, "%s: %s", path, strerror(errno)); }
    uint64_t le = padded;
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)(le >> (8 * i));
    bad = fwrite(lenb, 1, 8, f) != 8 || fwrite(h, 1, hl, f) != hl;
    for (size_t i = hl; i < padded && !bad; i++) bad = fputc(' ', f) == EOF;
    free(h);
    uint64_t seed = 20261123;
    for (int i = 0; i < n && !bad; i++) {
        size_t elems = (size_t)t[i].r * (size_t)(t[i].c ? t[i].c : 1);
        for (size_t e = 0; e < elems && !bad; e++) {
            float v = 1.0f;
            if (t[i].scale != 0.0f) {
                /* sum of 4 uniforms: roughly normal, std ~0.58 before scaling */
                double s = 0;
                for (int k = 0; k < 4; k++) s += (double)(splitmix(&seed) >> 11) * (1.0 / 9007199254740992.0) - 0.5;
                v = (float)s * t[i].scale;
            }
            uint16_t b = f32_to_bf16(v);
            unsigned char two[2] = {(unsigned char)(b & 0xff), (unsigned char)(b >> 8)};
            bad = fwrite(two, 1, 2, f) != 2;
        }
    }
    bad |= fclose(f) != 0;
    return bad ? tm_errf(err, TM_ERR_IO, "%s: write failed", path) : TM_OK;
}

static tm_status write_model(const char *dir, tm_err *err)
{
    tm_status st = write_configs(dir, err);
    if (st) return st;

    /* tensors: name, rows, cols (cols 0 = 1-D), init scale (0 = ones) */
    dtensor t[64];
    int n = 0;
    static char names[D_LAYERS][9][64];
    t[n++] = (dtensor){"model.embed_tokens.weight", D_VOCAB, D_HIDDEN, 1.0f};
    for (int l = 0; l < D_LAYERS; l++) {
        const char *sfx[9] = {"input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                              "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                              "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                              "mlp.down_proj.weight"};
        int64_t hd = D_HIDDEN / D_HEADS;
        int64_t rows[9] = {D_HIDDEN, D_HEADS * hd, D_KV * hd, D_KV * hd, D_HIDDEN, D_HIDDEN, D_INTER, D_INTER, D_HIDDEN};
        int64_t cols[9] = {0, D_HIDDEN, D_HIDDEN, D_HIDDEN, D_HEADS * hd, 0, D_HIDDEN, D_HIDDEN, D_INTER};
        for (int k = 0; k < 9; k++) {
            snprintf(names[l][k], sizeof names[l][k], "model.layers.%d.%s", l, sfx[k]);
            t[n++] = (dtensor){names[l][k], rows[k], cols[k], cols[k] ? 1.0f / 8.0f : 0.0f};
        }
    }
    t[n++] = (dtensor){"model.norm.weight", D_HIDDEN, 0, 0.0f};
    t[n++] = (dtensor){"lm_head.weight", D_VOCAB, D_HIDDEN, 1.0f / 4.0f};
    return write_safetensors(dir, t, n, err);
}

static int mkdir_p(const char *dir, tm_err *err)
{
    if (mkdir(dir, 0755) && errno != EEXIST) return tm_errf(err, TM_ERR_IO, "%s: %s", dir, strerror(errno));
    return TM_OK;
}

static tm_status last_job_cb(void *ctx, const tm_queue_job *job, tm_err *err)
{
    (void)err;
    snprintf((char *)ctx, TM_QUEUE_ID_MAX, "%s", job->id);
    return TM_OK;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tokenmill demo [--dir DIR] [--keep-db]\n\n"
               "Creates DIR (default ./demo) with a tiny random-weight Llama model (DIR/model) and a\n"
               "sample job (DIR/job.jsonl), submits the job into DIR/tokenmill.db, runs it on the CPU\n"
               "and writes the results to DIR/output.jsonl. Offline and deterministic.\n"
               "The DB is recreated each time unless --keep-db.\n");
}

int tm_cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {{"dir", required_argument, 0, 'd'}, {"keep-db", no_argument, 0, 'k'},
                                          {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *dir = "demo";
    int keep = 0, c;
    tm_cli_getopt_reset();
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd') dir = optarg;
        else if (c == 'k') keep = 1;
        else if (c == 'h') { usage(stdout); return 0; }
        else return tm_cli_usage_error("demo", "unknown option");
    }
    if (optind < argc) return tm_cli_usage_error("demo", "unexpected argument '%s'", argv[optind]);
    tm_err err;
    char model[4096], job[4096], db[4096], out[4096];
    tm_status st;
    if ((st = mkdir_p(dir, &err)) || (st = tm_path_join(model, sizeof model, dir, "model", &err)) ||
        (st = mkdir_p(model, &err)) || (st = tm_path_join(job, sizeof job, dir, "job.jsonl", &err)) ||
        (st = tm_path_join(db, sizeof db, dir, "tokenmill.db", &err)) ||
        (st = tm_path_join(out, sizeof out, dir, "output.jsonl", &err)))
        return tm_cli_fail("demo", st, &err);
    if ((st = write_model(model, &err)) || (st = write_tokenizer(model, &err))) return tm_cli_fail("demo", st, &err);
    tm_buf jb;
    tm_buf_init(&jb);
    for (size_t i = 0; i < sizeof demo_job / sizeof demo_job[0]; i++) tm_buf_printf(&jb, "%s\n", demo_job[i]);
    st = write_text(job, jb.data, &err);
    tm_buf_free(&jb);
    if (st) return tm_cli_fail("demo", st, &err);
    if (!keep) {
        const char *sfx[3] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            char p[4200];
            snprintf(p, sizeof p, "%s%s", db, sfx[i]);
            remove(p);
        }
    }
    printf("demo: model   %s (llama, %d layers, random bf16 weights, byte-level BPE tokenizer)\n", model, D_LAYERS);
    printf("demo: job     %s (%zu requests)\n\n", job, sizeof demo_job / sizeof demo_job[0]);
    fflush(stdout);

    char *sub[] = {"submit", job, "--name", "demo", "--mixed-endpoints", "--db", db, NULL};
    int rc = tm_cmd_submit(7, sub);
    if (rc) return rc;
    fflush(stdout);
    char *run[] = {"run", "--model", model, "--chat-template", "chatml", "--db", db, NULL};
    rc = tm_cmd_run(7, run);
    if (rc) return rc;
    char *stat[] = {"status", "--db", db, NULL};
    printf("\n");
    fflush(stdout);
    rc = tm_cmd_status(3, stat);
    if (rc) return rc;
    char job_id[TM_QUEUE_ID_MAX] = "";
    tm_queue *q = NULL;
    if ((st = tm_queue_open_existing(db, &q, &err)) || (st = tm_queue_job_list(q, last_job_cb, job_id, &err))) {
        tm_queue_close(q);
        return tm_cli_fail("demo", st, &err);
    }
    tm_queue_close(q);
    char *res[] = {"results", job_id, "--db", db, "-o", out, NULL};
    rc = tm_cmd_results(6, res);
    if (rc) return rc;
    printf("\nresults: %s (OpenAI batch output lines; the weights are random, so the text is too)\n", out);
    printf("try:     sqlite3 %s 'select custom_id, state, prompt_tokens, completion_tokens from requests'\n", db);
    printf("         sqlite3 %s 'select * from job_costs'\n", db);
    printf("a real model: tokenmill run --model /path/to/hf-model-dir --db %s\n", db);
    return 0;
}
