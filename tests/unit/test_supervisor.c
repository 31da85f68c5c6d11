/* test_supervisor.c — the parsers of `run --gpus` (worker/supervisor.h):
 * the --gpus list (all, indices, repeats, bounds, junk) and a sysfs cpulist
 * (ranges, single CPUs, trailing newline, CPUs past the mask ignored,
 * malformed lists refused), and this machine's own node0 cpulist when sysfs
 * has one. The supervisor's processes are tested end to end in
 * tests/cli/supervisor.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "worker/supervisor.h"

static void test_gpus(void **state)
{
    (void)state;
    int idx[4], n, all;
    tm_err err;
    assert_int_equal(tm_supervisor_parse_gpus("all", idx, 4, &n, &all, &err), TM_OK);
    assert_int_equal(all, 1);
    assert_int_equal(n, 0);
    assert_int_equal(tm_supervisor_parse_gpus("0,1,3", idx, 4, &n, &all, &err), TM_OK);
    assert_int_equal(all, 0);
    assert_int_equal(n, 3);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], 1);
    assert_int_equal(idx[2], 3);
    assert_int_equal(tm_supervisor_parse_gpus("7", idx, 4, &n, &all, &err), TM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(idx[0], 7);
    assert_int_equal(tm_supervisor_parse_gpus("1023", idx, 4, &n, &all, &err), TM_OK);
    const char *bad[] = {"", "1,1", "1024", "0,", ",0", "0,,1", "a", "0 1", "-1", "0,1,2,3,4", "All", "99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(tm_supervisor_parse_gpus(bad[i], idx, 4, &n, &all, &err), TM_ERR_USAGE);
        assert_true(strstr(err.msg, "--gpus") != NULL);
    }
    assert_int_equal(tm_supervisor_parse_gpus(NULL, idx, 4, &n, &all, &err), TM_ERR_USAGE);
}

static void test_cpulist(void **state)
{
    (void)state;
    unsigned long long m[2];
    const char *s = "0-3,8,62-65\n";
    assert_int_equal(tm_supervisor_parse_cpulist(s, strlen(s), m, 2), 1);
    assert_true(m[0] == (0xfULL | 1ULL << 8 | 3ULL << 62));
    assert_true(m[1] == 3ULL);
    s = "120-200"; /* CPUs past the mask are ignored */
    assert_int_equal(tm_supervisor_parse_cpulist(s, strlen(s), m, 2), 1);
    assert_true(m[0] == 0 && m[1] == (0xffULL << 56));
    s = "200-300"; /* nothing inside the mask */
    assert_int_equal(tm_supervisor_parse_cpulist(s, strlen(s), m, 2), 0);
    assert_int_equal(tm_supervisor_parse_cpulist("59", 1, m, 2), 1); /* only len bytes are read */
    assert_true(m[0] == 1ULL << 5 && m[1] == 0);
    const char *bad[] = {"", "\n", "3-1", "1-", "-1", "1,", ",1", "1,,2", "a", "0-3 4", "0-1048577", "1-2-3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(tm_supervisor_parse_cpulist(bad[i], strlen(bad[i]), m, 2), 0);
}

static void test_sysfs_node0(void **state)
{
    (void)state;
    FILE *f = fopen("/sys/devices/system/node/node0/cpulist", "r");
    if (!f) skip();
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    unsigned long long m[TM_SUPERVISOR_CPU_WORDS];
    assert_int_equal(tm_supervisor_parse_cpulist(buf, n, m, TM_SUPERVISOR_CPU_WORDS), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpus),
        cmocka_unit_test(test_cpulist),
        cmocka_unit_test(test_sysfs_node0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
