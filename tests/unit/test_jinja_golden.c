/* test_jinja_golden.c — the C Jinja interpreter against Python jinja2.
 *
 * tests/data/jinja_golden.jsonl (tests/gen/gen_jinja_goldens.py: jinja2 set
 * up as transformers sets it) holds renderings of every chat template in the
 * test data over a corpus of conversations, and of feature templates that
 * exercise each construct. Every rendering must come out of tm_jinja_render
 * byte for byte; where jinja2 raised, tm_jinja_compile or tm_jinja_render
 * must fail with TM_ERR_INPUT and a "line N:" message. The test-data part is
 * skipped (with a message) when the test data is absent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "template/jinja.h"
#include "util/buf.h"

static json_t *load_goldens(void)
{
    const char *src = getenv("TOKENMILL_SRC");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/jinja_golden.jsonl", src ? src : "..");
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s", path);
    json_t *all = json_array();
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *g = json_loads(line, 0, &je);
        if (!g) fail_msg("%s: %s", path, je.text);
        json_array_append_new(all, g);
    }
    free(line);
    fclose(f);
    return all;
}

/* The template text of a test-data path (chat_template.jinja, or the
 * chat_template of a tokenizer_config.json); malloc'd, NULL if absent. */
static char *template_text(const char *rel)
{
    const char *td = getenv("TOKENMILL_TESTDATA");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", td ? td : "", rel);
    size_t n = strlen(rel);
    if (n > 6 && !strcmp(rel + n - 6, ".jinja")) {
        tm_buf b;
        tm_buf_init(&b);
        tm_err err;
        if (tm_read_file(path, 1 << 24, &b, &err)) return NULL;
        return b.data;
    }
    json_error_t je;
    json_t *cfg = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
    if (!cfg) return NULL;
    json_t *t = json_object_get(cfg, "chat_template");
    if (json_is_array(t)) {
        size_t i;
        json_t *e, *pick = NULL;
        json_array_foreach(t, i, e) {
            if (!strcmp(json_string_value(json_object_get(e, "name")) ? json_string_value(json_object_get(e, "name")) : "", "default"))
                pick = json_object_get(e, "template");
        }
        t = pick;
    }
    char *r = json_is_string(t) ? strdup(json_string_value(t)) : NULL;
    json_decref(cfg);
    return r;
}

/* 1 = ok, 0 = mismatch (printed) */
static int check_one(json_t *g, const char *src)
{
    const char *name = json_string_value(json_object_get(g, "name"));
    json_t *want = json_object_get(g, "output");
    tm_jinja *t = NULL;
    tm_err err = {{0}};
    tm_buf out;
    tm_buf_init(&out);
    tm_status s = tm_jinja_compile(src, strlen(src), TM_JINJA_HF, &t, &err);
    if (!s) s = tm_jinja_render(t, json_object_get(g, "vars"), NULL, &out, &err);
    tm_jinja_destroy(t);
    int ok;
    if (want) {
        ok = s == TM_OK && out.len == json_string_length(want) && !memcmp(out.data, json_string_value(want), out.len);
        if (!ok) {
            fprintf(stderr, "MISMATCH %s\n  status %d: %s\n  want: ", name, (int)s, s ? err.msg : "");
            json_dumpf(want, stderr, JSON_ENCODE_ANY);
            json_t *got = json_stringn(out.data ? out.data : "", out.len);
            fprintf(stderr, "\n  got:  ");
            json_dumpf(got ? got : json_null(), stderr, JSON_ENCODE_ANY);
            fprintf(stderr, "\n");
            json_decref(got);
        }
    } else {
        ok = s == TM_ERR_INPUT && !strncmp(err.msg, "line ", 5);
        if (!ok)
            fprintf(stderr, "EXPECTED AN ERROR %s (jinja2: %s)\n  status %d: %s\n", name,
                    json_string_value(json_object_get(g, "error")), (int)s, err.msg);
    }
    tm_buf_free(&out);
    return ok;
}

static void run(int testdata_part)
{
    json_t *all = load_goldens();
    size_t i;
    json_t *g;
    int n = 0, bad = 0, absent = 0;
    char last_rel[1024] = "", *last_src = NULL; /* tokenizer_config.json is large: read each once */
    json_array_foreach(all, i, g) {
        json_t *inl = json_object_get(g, "template");
        const char *rel = json_string_value(json_object_get(g, "template_path"));
        if (testdata_part != (rel != NULL)) continue;
        if (rel && strcmp(rel, last_rel)) {
            free(last_src);
            last_src = template_text(rel);
            snprintf(last_rel, sizeof last_rel, "%s", rel);
        }
        const char *src = inl ? json_string_value(inl) : last_src;
        if (!src) { absent++; continue; }
        n++;
        bad += !check_one(g, src);
    }
    free(last_src);
    json_decref(all);
    fprintf(stderr, "%s: %d renderings, %d mismatches\n", testdata_part ? "test-data templates" : "features", n, bad);
    if (testdata_part && n == 0) {
        fprintf(stderr, "SKIP: the test data (TOKENMILL_TESTDATA) is absent\n");
        skip();
    }
    assert_int_equal(absent, 0);
    assert_int_equal(bad, 0);
}

static void test_features(void **state) { (void)state; run(0); }
static void test_testdata_templates(void **state) { (void)state; run(1); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features),
        cmocka_unit_test(test_testdata_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
