/* tokenize.c — `tokenmill tokenize`: text or chat messages -> token ids, as JSONL.
 *
 * Reads one JSON object a line from stdin and writes one a line to stdout:
 *   {"text": S}                                   -> {"ids": [...]}
 *   {"messages": [...], "add_generation_prompt": B} -> {"text": rendered, "ids": [...]}
 * (B defaults to true). ids never get an added BOS: the chat template writes
 * the BOS string itself where the model expects it. A bad line prints
 * {"error": "line N: ..."} and processing goes on; exit 65 if any line failed.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"
#include "util/buf.h"

#define MAX_LINE ((size_t)64 << 20) /* a longer line is an error, not an allocation */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tokenmill tokenize (--model DIR | --tokenizer DIR) [--chat-template NAME] < in.jsonl\n"
            "\n"
            "Reads JSONL on stdin, one object a line, and writes one a line to stdout:\n"
            "  {\"text\": S}                            -> {\"ids\": [...]}   (no BOS added)\n"
            "  {\"messages\": [...], \"add_generation_prompt\": B}\n"
            "                                          -> {\"text\": prompt, \"ids\": [...]}\n"
            "     (B defaults to true; the template writes BOS itself where the model wants it)\n"
            "A bad line gives {\"error\": \"line N: ...\"}; the exit status is then 65.\n"
            "\n"
            "  --model DIR          a model directory holding tokenizer.json (+ tokenizer_config.json),\n"
            "                       or a GGUF model file (its tokenizer.ggml.* and chat template)\n"
            "  --tokenizer DIR      a directory holding only the tokenizer files\n"
            "  --chat-template NAME use this built-in template instead of the one detected\n"
            "                       from tokenizer_config.json's chat_template; one of:\n"
            "                       %s\n"
            "  --help\n",
            tm_chat_template_names());
}

typedef struct {
    const tm_tokenizer *tok;
    tm_chat_template *tmpl; /* the model's Jinja template or --chat-template; NULL: none (tmpl_err says why) */
    tm_err tmpl_err;
    tm_buf text;
} tok_ctx;

/* Print obj (stolen) as one compact line. */
static int emit(json_t *obj)
{
    if (!obj) return -1;
    int rc = json_dumpf(obj, stdout, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(obj);
    if (rc == 0 && fputc('\n', stdout) == EOF) rc = -1;
    return rc;
}

static json_t *ids_array(const int32_t *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer(ids[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* Handle one parsed line; fill *result (an object to print) or err. */
static tm_status do_line(tok_ctx *c, const json_t *in, json_t **result, tm_err *err)
{
    *result = NULL;
    if (!json_is_object(in)) return tm_errf(err, TM_ERR_INPUT, "not a JSON object");
    const json_t *jtext = json_object_get(in, "text");
    const json_t *jmsgs = json_object_get(in, "messages");
    if (jtext && jmsgs) return tm_errf(err, TM_ERR_INPUT, "give either \"text\" or \"messages\", not both");
    const char *text;
    size_t len;
    int chat = 0;
    if (jtext) {
        if (!json_is_string(jtext)) return tm_errf(err, TM_ERR_INPUT, "text: must be a string");
        text = json_string_value(jtext);
        len = json_string_length(jtext);
    } else if (jmsgs) {
        const json_t *jgen = json_object_get(in, "add_generation_prompt");
        if (jgen && !json_is_boolean(jgen))
            return tm_errf(err, TM_ERR_INPUT, "add_generation_prompt: must be true or false");
        int gen = jgen ? json_is_true(jgen) : 1;
        if (!c->tmpl) {
            memcpy(err, &c->tmpl_err, sizeof *err);
            return TM_ERR_INPUT;
        }
        tm_chat_conv *conv = NULL;
        tm_status s = tm_chat_conv_from_json(jmsgs, &conv, err);
        if (s) return s;
        tm_buf_clear(&c->text);
        s = tm_chat_render(c->tmpl, tm_chat_conv_messages(conv), tm_chat_conv_count(conv), gen,
                           tm_tokenizer_bos_token(c->tok), tm_tokenizer_eos_token(c->tok), &c->text, err);
        tm_chat_conv_destroy(conv);
        if (s) return s;
        text = c->text.data;
        len = c->text.len;
        chat = 1;
    } else {
        return tm_errf(err, TM_ERR_INPUT, "expected a \"text\" or a \"messages\" field");
    }
    int32_t *ids = NULL;
    size_t n = 0;
    tm_status s = tm_tokenizer_encode(c->tok, text, len, 0, &ids, &n, err);
    if (s) return s;
    json_t *o = json_object();
    json_t *a = ids_array(ids, n);
    free(ids);
    if (!o || !a || (chat && json_object_set_new(o, "text", json_stringn(text, len))) ||
        json_object_set_new(o, "ids", a)) {
        if (!o) json_decref(a);
        json_decref(o);
        return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    }
    *result = o;
    return TM_OK;
}

static int only_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

int tm_cmd_tokenize(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"tokenizer", required_argument, NULL, 't'},
        {"chat-template", required_argument, NULL, 'c'},
        {"db", required_argument, NULL, 'd'}, /* accepted by every command; unused here */
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model = NULL, *tokdir = NULL, *tmpl_name = NULL;
    tm_cli_getopt_reset();
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 't': tokdir = optarg; break;
        case 'c': tmpl_name = optarg; break;
        case 'd': break;
        case 'h': usage(stdout); return 0;
        default: return tm_cli_usage_error("tokenize", "bad option");
        }
    }
    if (optind < argc) return tm_cli_usage_error("tokenize", "unexpected argument '%s'", argv[optind]);
    if (!model == !tokdir) return tm_cli_usage_error("tokenize", "give one of --model DIR or --tokenizer DIR");
    if (tmpl_name && !tm_chat_template_by_name(tmpl_name))
        return tm_cli_usage_error("tokenize", "--chat-template: unknown template '%s' (known: %s)", tmpl_name,
                                  tm_chat_template_names());

    tm_err err = {{0}};
    tm_tokenizer *tok = NULL;
    tm_status s = tm_tokenizer_load(model ? model : tokdir, &tok, &err);
    if (s) return tm_cli_fail("tokenize", s, &err);

    tok_ctx c = {.tok = tok};
    tm_buf_init(&c.text);
    if (tm_chat_template_load(tmpl_name, tm_tokenizer_chat_template(tok), &c.tmpl, &c.tmpl_err))
        c.tmpl = NULL; /* only chat lines fail, with this message */

    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0, failed = 0;
    int io_error = 0;
    while ((got = getline(&line, &cap, stdin)) != -1) {
        lineno++;
        if (only_space(line, (size_t)got)) continue;
        json_t *result = NULL;
        tm_err lerr = {{0}};
        if ((size_t)got > MAX_LINE) {
            s = tm_errf(&lerr, TM_ERR_INPUT, "line longer than %zu bytes", MAX_LINE);
        } else {
            json_error_t je;
            json_t *in = json_loadb(line, (size_t)got, JSON_DECODE_INT_AS_REAL, &je);
            if (!in)
                s = tm_errf(&lerr, TM_ERR_INPUT, "not JSON: %s (column %d)", je.text, je.column);
            else
                s = do_line(&c, in, &result, &lerr);
            json_decref(in);
        }
        if (s) {
            failed++;
            char msg[sizeof lerr.msg + 32];
            snprintf(msg, sizeof msg, "line %ld: %s", lineno, lerr.msg);
            result = json_pack("{s:s}", "error", msg);
            if (!result) result = json_pack("{s:s}", "error", "invalid message text");
        }
        if (emit(result)) {
            io_error = 1;
            break;
        }
    }
    free(line);
    tm_buf_free(&c.text);
    tm_chat_template_destroy(c.tmpl);
    tm_tokenizer_destroy(tok);
    if (ferror(stdin)) {
        fprintf(stderr, "tokenmill tokenize: reading stdin failed\n");
        return 74;
    }
    if (io_error || fflush(stdout) == EOF) {
        fprintf(stderr, "tokenmill tokenize: writing stdout failed\n");
        return 74;
    }
    return failed ? 65 : 0;
}
