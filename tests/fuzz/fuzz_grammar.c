/* fuzz_grammar.c — hostile schemas, regexes and choices through the grammar
 * compiler, then a short walk of the matcher on a small vocabulary.
 *
 * Input: a JSON Schema; or "re:" + a regex (guided_regex); or "choice:" + a
 * JSON array (guided_choice); or "obj:" (json_object). Compilation must
 * succeed or fail with TM_ERR_INPUT and a message; a compiled grammar then
 * takes up to 64 tokens (the allowed one picked by the input's bytes), each
 * accept agreeing with the mask.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/grammar.h"

static tm_grammar_vocab *small_vocab(tm_tokenizer **tok)
{
    static const char *const multi[] = {"{\"", "\":", "\",\"", "\"}", "true", "123", "},", "\\u00e9", "\xc3\xa9", "\xc3", "\xa9", NULL};
    json_t *vocab = json_object();
    int id = 0;
    char s[2] = {0, 0};
    for (int c = 0x20; c < 0x7f; c++) { s[0] = (char)c; json_object_set_new(vocab, s, json_integer(id++)); }
    for (int i = 0; multi[i]; i++) json_object_set_new(vocab, multi[i], json_integer(id++));
    json_t *root = json_pack("{s:{s:s,s:o,s:[]},s:[{s:i,s:s,s:b}]}", "model", "type", "BPE", "vocab", vocab, "merges",
                             "added_tokens", "id", id, "content", "</s>", "special", 1);
    char *txt = json_dumps(root, 0);
    const char *cfg = "{\"eos_token\":\"</s>\"}";
    tm_err err;
    tm_grammar_vocab *v = NULL;
    if (!txt || tm_tokenizer_load_json(txt, strlen(txt), cfg, strlen(cfg), tok, &err) ||
        tm_grammar_vocab_create(*tok, &v, &err))
        abort();
    free(txt);
    json_decref(root);
    return v;
}

static void walk(tm_grammar *g, tm_grammar_vocab *v, const uint8_t *data, size_t size)
{
    tm_matcher *m, *c;
    tm_err err;
    if (tm_matcher_create(g, v, &m, &err) || tm_matcher_create(g, v, &c, &err)) abort();
    size_t words = tm_grammar_vocab_mask_words(v);
    uint32_t *mask = calloc(words, sizeof *mask);
    if (!mask) abort();
    for (size_t step = 0; step < 64; step++) {
        if (tm_matcher_fill_mask(m, mask, &err)) abort();
        int32_t n = 0, allowed[512];
        for (int32_t id = 0; id < tm_grammar_vocab_size(v) && n < 512; id++)
            if (mask[id >> 5] >> (id & 31) & 1) allowed[n++] = id;
        if (!n) break;
        int32_t id = allowed[(size ? data[step % size] : 0) % n];
        if (tm_matcher_copy(c, m) || tm_matcher_accept(m, id) != TM_OK) abort();
        (void)tm_matcher_bytes_to_end(m);
        if (tm_matcher_terminated(m)) break;
    }
    free(mask);
    tm_matcher_destroy(c);
    tm_matcher_destroy(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 16)) return 0;
    tm_grammar_kind kind = TM_GRAMMAR_JSON_SCHEMA;
    const char *text = (const char *)data;
    size_t len = size;
    if (size >= 3 && !memcmp(data, "re:", 3)) { kind = TM_GRAMMAR_REGEX; text += 3; len -= 3; }
    else if (size >= 7 && !memcmp(data, "choice:", 7)) { kind = TM_GRAMMAR_CHOICE; text += 7; len -= 7; }
    else if (size >= 4 && !memcmp(data, "obj:", 4)) kind = TM_GRAMMAR_JSON_OBJECT;
    tm_grammar *g = NULL;
    tm_err err = {{0}};
    tm_status s = tm_grammar_compile(kind, text, len, &g, &err);
    if (s != TM_OK) {
        if (s != TM_ERR_INPUT || !err.msg[0] || g) abort();
        return 0;
    }
    tm_tokenizer *tok = NULL;
    tm_grammar_vocab *v = small_vocab(&tok);
    walk(g, v, data, size);
    tm_grammar_destroy(g);
    tm_grammar_vocab_destroy(v);
    tm_tokenizer_destroy(tok);
    return 0;
}
