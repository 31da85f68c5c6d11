/* test_cli_text.c — the CLI's text edge (issue 19 item 8): tm_cli_check_text
 * refuses invalid UTF-8 in job names / metadata, tm_cli_printable escapes
 * what a terminal would interpret, and tm_cli_db_check refuses databases that
 * keep nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "cli/cli.h"

static void test_check_text(void **state)
{
    (void)state;
    tm_err err;
    assert_int_equal(tm_cli_check_text("--name", "nightly run \xc3\xa9\xe2\x82\xac", &err), TM_OK);
    assert_int_equal(tm_cli_check_text("--name", "", &err), TM_OK);
    assert_int_equal(tm_cli_check_text("--name", "ab\xff", &err), TM_ERR_USAGE);
    assert_non_null(strstr(err.msg, "--name: not valid UTF-8 (byte 3)"));
    assert_int_equal(tm_cli_check_text("--metadata", "k\xc3=v", &err), TM_ERR_USAGE); /* cut sequence */
    assert_non_null(strstr(err.msg, "--metadata"));
    assert_int_equal(tm_cli_check_text("--metadata", "k=\xed\xa0\x80", &err), TM_ERR_USAGE); /* surrogate */
    assert_int_equal(tm_cli_check_text("--metadata", "\xc0\x80=v", &err), TM_ERR_USAGE);     /* overlong */
}

static void test_printable(void **state)
{
    (void)state;
    char b[64];
    assert_string_equal(tm_cli_printable("plain \xc3\xa9", b, sizeof b), "plain \xc3\xa9");
    assert_string_equal(tm_cli_printable("\x1b[31mred\nfake line\r\t", b, sizeof b),
                        "\\x1b[31mred\\x0afake line\\x0d\\x09");
    assert_string_equal(tm_cli_printable("a\\b\x7f\xc2\x9b\xe2\x80\xa8", b, sizeof b), "a\\\\b\\x7f\\u009b\\u2028");
    assert_string_equal(tm_cli_printable("bad\xff", b, sizeof b), "bad\\xff");
    assert_string_equal(tm_cli_printable(NULL, b, sizeof b), "");
    /* cut between characters and escapes only */
    assert_string_equal(tm_cli_printable("abc\x1b", b, 6), "abc");
    assert_string_equal(tm_cli_printable("ab\xc3\xa9", b, 4), "ab");
    assert_string_equal(tm_cli_printable("x", b, 1), "");
}

static void test_db_check(void **state)
{
    (void)state;
    tm_err err;
    assert_int_equal(tm_cli_db_check("tokenmill.db", &err), TM_OK);
    assert_int_equal(tm_cli_db_check("./file:x.db", &err), TM_OK);
    assert_int_equal(tm_cli_db_check(":memory:", &err), TM_ERR_USAGE);
    assert_non_null(strstr(err.msg, "keeps nothing"));
    assert_int_equal(tm_cli_db_check("", &err), TM_ERR_USAGE);
    assert_int_equal(tm_cli_db_check("file:q.db?mode=memory&cache=shared", &err), TM_ERR_USAGE);
    assert_non_null(strstr(err.msg, "URI"));
    assert_int_equal(tm_cli_db_check("file:q.db", &err), TM_ERR_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_text),
        cmocka_unit_test(test_printable),
        cmocka_unit_test(test_db_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
