/* test_validate_fields.c — the request field table (validate.h
 * tm_validate_field_class) and docs/requests.md say the same thing.
 *
 * Every row "| `field` | chat | completions | ... |" of the document must
 * give, per endpoint, the class the validator applies ("—" = not a field of
 * that endpoint), and every field of the validator's table must have a row.
 * Then each class behaves as named: a refused field with any non-null value
 * is a problem on its field; an ignored field with any value is accepted;
 * an unknown field is refused, and accepted with TM_VALIDATE_ALLOW_UNKNOWN.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "queue/validate.h"

static const char *word(tm_field_class c) { return c == TM_FIELD_UNKNOWN ? "—" : tm_field_class_str(c); }

static void test_doc_matches_table(void **st)
{
    (void)st;
    const char *src = getenv("TOKENMILL_SRC");
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/requests.md", src ? src : "..");
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s", path);
    char line[4096];
    size_t rows = 0, nt = tm_validate_field_count();
    char *seen = calloc(nt, 1);
    assert_non_null(seen);
    while (fgets(line, sizeof line, f)) {
        char name[128], chat[64], comp[64];
        if (sscanf(line, "| `%127[a-z_]` | %63[^|]| %63[^|]|", name, chat, comp) != 3) continue;
        for (char *s = chat + strlen(chat); s > chat && s[-1] == ' ';) *--s = 0;
        for (char *s = comp + strlen(comp); s > comp && s[-1] == ' ';) *--s = 0;
        rows++;
        const char *want_chat = word(tm_validate_field_class(name, TM_ENDPOINT_CHAT));
        const char *want_comp = word(tm_validate_field_class(name, TM_ENDPOINT_COMPLETIONS));
        if (strcmp(chat, want_chat) || strcmp(comp, want_comp))
            fail_msg("docs/requests.md: %s is '%s' / '%s', the validator: '%s' / '%s'", name, chat, comp, want_chat,
                     want_comp);
        for (size_t i = 0; i < nt; i++)
            if (!strcmp(tm_validate_field_name(i), name)) seen[i]++;
    }
    fclose(f);
    for (size_t i = 0; i < nt; i++)
        if (seen[i] != 1) fail_msg("docs/requests.md: %s has %d rows, want 1", tm_validate_field_name(i), seen[i]);
    assert_int_equal(rows, nt);
    free(seen);
}

static int problem_on(const char *line, unsigned flags, const char *field)
{
    tm_validated v;
    tm_problems p;
    tm_status st = tm_validate_line_ex(line, strlen(line), flags, &v, &p);
    tm_validated_clear(&v);
    if (st == TM_OK) return 0;
    for (int k = 0; k < p.kept; k++)
        if (!strcmp(p.items[k].field, field)) return 1;
    return -1; /* refused, but for something else */
}

/* A value no no-op-only or refused field accepts, and one each class that
 * takes anything accepts. */
static void test_classes_behave(void **st)
{
    (void)st;
    static const char *const odd = "{\"x\":[1,\"y\"]}";
    for (size_t i = 0; i < tm_validate_field_count(); i++) {
        const char *name = tm_validate_field_name(i);
        for (int e = 0; e < 2; e++) {
            tm_endpoint ep = e ? TM_ENDPOINT_COMPLETIONS : TM_ENDPOINT_CHAT;
            tm_field_class c = tm_validate_field_class(name, ep);
            if (!strcmp(name, "messages") || !strcmp(name, "prompt")) continue;
            char line[1024], field[160];
            snprintf(line, sizeof line,
                     e ? "{\"custom_id\":\"r\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"p\",\"%s\":%s}}"
                       : "{\"custom_id\":\"r\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":"
                         "{\"messages\":[{\"role\":\"user\",\"content\":\"u\"}],\"%s\":%s}}",
                     name, odd);
            snprintf(field, sizeof field, "body.%s", name);
            int r = problem_on(line, 0, field);
            if (c == TM_FIELD_IGNORED) {
                if (r != 0) fail_msg("%s (ignored) refused on endpoint %d", name, e);
            } else if (c == TM_FIELD_REFUSED || c == TM_FIELD_NOOP_ONLY || c == TM_FIELD_UNKNOWN) {
                if (r != 1) fail_msg("%s (%s) not refused on endpoint %d", name, word(c), e);
            }
            if (c == TM_FIELD_UNKNOWN && problem_on(line, TM_VALIDATE_ALLOW_UNKNOWN, field) != 0)
                fail_msg("%s: not accepted with TM_VALIDATE_ALLOW_UNKNOWN on endpoint %d", name, e);
            if (c == TM_FIELD_REFUSED && problem_on(line, TM_VALIDATE_ALLOW_UNKNOWN, field) != 1)
                fail_msg("%s: refused field let through by TM_VALIDATE_ALLOW_UNKNOWN", name);
            /* null is absent: accepted whatever the class */
            snprintf(line, sizeof line,
                     e ? "{\"custom_id\":\"r\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"p\",\"%s\":null}}"
                       : "{\"custom_id\":\"r\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":"
                         "{\"messages\":[{\"role\":\"user\",\"content\":\"u\"}],\"%s\":null}}",
                     name);
            if (problem_on(line, 0, field) != 0) fail_msg("%s: null refused on endpoint %d", name, e);
        }
    }
    assert_int_equal(tm_validate_field_class("no_such_field", TM_ENDPOINT_CHAT), TM_FIELD_UNKNOWN);
    assert_int_equal(tm_validate_field_class(NULL, TM_ENDPOINT_CHAT), TM_FIELD_UNKNOWN);
    assert_null(tm_validate_field_name(tm_validate_field_count()));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doc_matches_table),
        cmocka_unit_test(test_classes_behave),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
