/* test_notice.c — preemption notices (src/notice/notice.h).
 *
 * The body parser on AWS JSON (good, bad and hostile times), TRUE/FALSE,
 * seconds and garbage; the strict ISO-8601 parser; spec errors; file mode;
 * and HTTP mode against a tiny HTTP server run by the test itself (127.0.0.1,
 * port 0, one thread): a plain URL that answers 404 then the AWS JSON, AWS
 * IMDSv2 (token PUT, token header on the GET), the IMDSv1 fallback when the
 * PUT fails, GCP's Metadata-Flavor header, and a dead endpoint. Every poller
 * runs with a 0.1 s period and must flip within a couple of polls. A 30 s
 * lead counts from the last poll that saw no notice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "notice/notice.h"
#include "util/timeutil.h"

#define NOW 1700000000.0
#define T_2026 1795435200.0 /* 2026-11-23T12:00:00Z */

static int parse(const char *s, double *d)
{
    *d = -1;
    return tm_notice_parse_body(s, strlen(s), NOW, d);
}

static void test_body_true_false_seconds(void **state)
{
    (void)state;
    double d;
    assert_int_equal(parse("TRUE", &d), 1);
    assert_true(d == NOW + 30);
    assert_int_equal(parse(" true\r\n", &d), 1);
    assert_int_equal(parse("FALSE", &d), 0);
    assert_true(d == -1); /* untouched */
    assert_int_equal(parse("False\n", &d), 0);
    assert_int_equal(parse("", &d), 0);
    assert_int_equal(parse(" \n\t", &d), 0);
    assert_int_equal(parse("120", &d), 1);
    assert_true(d == NOW + 120);
    assert_int_equal(parse("  12.5\n", &d), 1);
    assert_true(d == NOW + 12.5);
    assert_int_equal(parse("0", &d), 1);
    assert_true(d == NOW);
    assert_int_equal(parse("-5", &d), 1); /* already late: now */
    assert_true(d == NOW);
    assert_int_equal(parse("1000000000", &d), 1);
    /* not decimal seconds, or absurd */
    const char *bad[] = {"1e3", "nan", "inf", "-inf", "0x10", "1000000001", "12abc", "1.2.3", ".", "-",
                         "99999999999999999999999999999999999999", "TRUEX", "TRU", "yes", "garbage",
                         "<html>200 OK</html>", "[1]", "\"TRUE\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d = -1;
        if (parse(bad[i], &d) != 0) fail_msg("'%s' parsed as a notice (deadline %f)", bad[i], d);
        assert_true(d == -1);
    }
}

static void test_body_aws_json(void **state)
{
    (void)state;
    double d;
    assert_int_equal(parse("{\"action\": \"terminate\", \"time\": \"2026-11-23T12:00:00Z\"}", &d), 1);
    assert_true(d == T_2026);
    assert_int_equal(parse("\n{\"action\":\"stop\",\"time\":\"2026-11-23T12:00:00.250Z\"}\n", &d), 1);
    assert_true(fabs(d - (T_2026 + 0.25)) < 1e-6);
    assert_int_equal(parse("{\"action\":\"hibernate\",\"time\":\"2024-02-29T23:59:59Z\"}", &d), 1);
    assert_true(d == 1709251199.0);
    /* a time in the past is honoured (the worker checkpoints at once) */
    assert_int_equal(parse("{\"action\":\"terminate\",\"time\":\"1970-01-01T00:00:00Z\"}", &d), 1);
    assert_true(d == 0);
    /* an action with a bad, missing or non-string time: AWS's 2 minutes */
    const char *bad_times[] = {
        "2026-02-30T12:00:00Z", "2026-13-01T12:00:00Z", "2026-00-10T12:00:00Z", "2026-11-00T12:00:00Z",
        "2026-11-23T24:00:00Z", "2026-11-23T12:60:00Z", "2026-11-23T12:00:61Z", "2026-11-23 12:00:00Z",
        "2026-11-23T12:00:00", "2026-11-23T12:00:00+00:00", "2026-11-23t12:00:00z", "2026-11-23T12:00:00.Z",
        "2026-11-23T12:00:00.1234567890Z", "1969-12-31T23:59:59Z", "2100-02-29T00:00:00Z", "+026-11-23T12:00:00Z",
        "2026-1-23T12:00:00Z", "2026-11-23T12:00:00ZZ", "", "20261123T120000Z", "2026-11-23T-1:00:00Z",
    };
    for (size_t i = 0; i < sizeof bad_times / sizeof bad_times[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"action\":\"terminate\",\"time\":\"%s\"}", bad_times[i]);
        d = -1;
        assert_int_equal(parse(body, &d), 1);
        if (d != NOW + 120) fail_msg("time '%s' accepted as %f", bad_times[i], d);
    }
    assert_int_equal(parse("{\"action\":\"terminate\"}", &d), 1);
    assert_true(d == NOW + 120);
    assert_int_equal(parse("{\"action\":\"terminate\",\"time\":1795435200}", &d), 1);
    assert_true(d == NOW + 120);
    /* no usable action: not a notice */
    const char *none[] = {"{}", "{\"action\":\"\"}", "{\"action\":1,\"time\":\"2026-11-23T12:00:00Z\"}",
                          "{\"time\":\"2026-11-23T12:00:00Z\"}", "{\"action\":\"terminate\"", "{\"action\":null}",
                          "{\"action\":\"terminate\",}", "{\"action\":\"terminate\"} trailing"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        d = -1;
        if (parse(none[i], &d) != 0) fail_msg("'%s' parsed as a notice", none[i]);
    }
}

static void test_body_hostile(void **state)
{
    (void)state;
    double d;
    /* not NUL-terminated: the parser must stop at len */
    char buf[8] = {'1', '2', '0', 'x', 'x', 'x', 'x', 'x'};
    d = -1;
    assert_int_equal(tm_notice_parse_body(buf, 3, NOW, &d), 1);
    assert_true(d == NOW + 120);
    assert_int_equal(tm_notice_parse_body(buf, 4, NOW, &d), 0);
    /* embedded NUL bytes */
    const char nul[] = "TR\0E";
    assert_int_equal(tm_notice_parse_body(nul, 4, NOW, &d), 0);
    const char nul2[] = "{\"action\":\"ter\0minate\"}";
    assert_int_equal(tm_notice_parse_body(nul2, sizeof nul2 - 1, NOW, &d), 0);
    assert_int_equal(tm_notice_parse_body(NULL, 0, NOW, &d), 0);
    /* larger than the cap: refused without parsing */
    size_t big = TM_NOTICE_MAX_BODY + 10;
    char *b = malloc(big);
    assert_non_null(b);
    memset(b, ' ', big);
    memcpy(b + big / 2, "TRUE", 4);
    assert_int_equal(tm_notice_parse_body(b, big, NOW, &d), 0);
    /* deeply nested JSON */
    for (size_t i = 0; i < big; i++) b[i] = i < big / 2 ? '[' : ']';
    b[0] = '{';
    assert_int_equal(tm_notice_parse_body(b, TM_NOTICE_MAX_BODY, NOW, &d), 0);
    free(b);
}

static void test_iso8601(void **state)
{
    (void)state;
    double t;
    assert_int_equal(tm_notice_parse_iso8601("1970-01-01T00:00:00Z", 20, &t), 1);
    assert_true(t == 0);
    assert_int_equal(tm_notice_parse_iso8601("2000-03-01T00:00:00Z", 20, &t), 1);
    assert_true(t == 951868800.0);
    assert_int_equal(tm_notice_parse_iso8601("2000-02-29T00:00:00Z", 20, &t), 1); /* 400-year leap */
    assert_int_equal(tm_notice_parse_iso8601("9999-12-31T23:59:59Z", 20, &t), 1);
    assert_true(t == 253402300799.0);
    assert_int_equal(tm_notice_parse_iso8601("2016-12-31T23:59:60Z", 20, &t), 1); /* leap second */
    assert_int_equal(tm_notice_parse_iso8601("2026-11-23T12:00:00.123456789Z", 30, &t), 1);
    assert_true(fabs(t - (T_2026 + 0.123456789)) < 1e-6);
    assert_int_equal(tm_notice_parse_iso8601("2026-11-23T12:00:00Z", 19, &t), 0); /* cut */
    assert_int_equal(tm_notice_parse_iso8601("2026-11-23T12:00:00Z", 0, &t), 0);
    assert_int_equal(tm_notice_parse_iso8601(NULL, 20, &t), 0);
    assert_int_equal(tm_notice_parse_iso8601("2026-04-31T00:00:00Z", 20, &t), 0);
    assert_int_equal(tm_notice_parse_iso8601("1900-02-29T00:00:00Z", 20, &t), 0);
}

static void test_bad_specs(void **state)
{
    (void)state;
    const char *bad[] = {"", "AWS", "azure", "ftp://x/y", "http://", "file:", "spot", "aws ", "gcp\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tm_notice *n = (tm_notice *)1;
        tm_err err = {{0}};
        assert_int_equal(tm_notice_start(bad[i], 0.1, &n, &err), TM_ERR_USAGE);
        assert_null(n);
        assert_true(err.msg[0] != 0);
    }
    tm_notice *n = NULL;
    tm_err err;
    assert_int_equal(tm_notice_start(NULL, 0.1, &n, &err), TM_ERR_USAGE);
    setenv("TOKENMILL_AWS_METADATA_URL", "169.254.169.254", 1);
    assert_int_equal(tm_notice_start("aws", 0.1, &n, &err), TM_ERR_USAGE);
    assert_non_null(strstr(err.msg, "TOKENMILL_AWS_METADATA_URL"));
    unsetenv("TOKENMILL_AWS_METADATA_URL");
    tm_notice_stop(NULL);
    assert_int_equal(tm_notice_check(NULL, NULL, NULL), 0);
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Wait up to limit_s for a notice; the time it took, or -1. */
static double wait_notice(tm_notice *n, double limit_s, double *deadline, const char **kind)
{
    double t0 = (double)tm_now_mono_ns() * 1e-9;
    for (;;) {
        double el = (double)tm_now_mono_ns() * 1e-9 - t0;
        if (tm_notice_check(n, deadline, kind)) return el;
        if (el > limit_s) return -1;
        sleep_s(0.01);
    }
}

static void write_file(const char *path, const char *text)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0); /* appears whole */
}

static void test_file_mode(void **state)
{
    (void)state;
    char dir[] = "/tmp/tm_notice_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512], spec[600];
    snprintf(path, sizeof path, "%s/preempt", dir);
    struct {
        const char *content;
        int notice;
        double lead; /* expected deadline - now */
    } cases[] = {{"60\n", 1, 60}, {"", 1, 30}, {"not a number", 1, 30}, {"TRUE", 1, 30},
                 {"{\"action\":\"terminate\",\"time\":\"2026-11-23T12:00:00Z\"}", 1, -1}, {"FALSE", 0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(spec, sizeof spec, i % 2 ? "file:%s" : "%s", path);
        tm_notice *n = NULL;
        tm_err err;
        assert_int_equal(tm_notice_start(spec, 0.1, &n, &err), TM_OK);
        sleep_s(0.25);
        assert_int_equal(tm_notice_check(n, NULL, NULL), 0); /* no file yet */
        write_file(path, cases[i].content);
        double t_write = tm_now_unix_f(), d = 0;
        const char *kind = NULL;
        double took = wait_notice(n, cases[i].notice ? 2.0 : 0.5, &d, &kind);
        if (!cases[i].notice) {
            assert_true(took < 0);
        } else {
            if (took < 0) fail_msg("file content '%s': no notice", cases[i].content);
            assert_true(took < 0.5); /* within a couple of 0.1 s polls */
            assert_string_equal(kind, "file");
            if (cases[i].lead < 0) assert_true(d == T_2026);
            else assert_true(fabs(d - (t_write + cases[i].lead)) < 0.5);
        }
        /* a notice stays seen after the file goes away */
        unlink(path);
        sleep_s(0.25);
        assert_int_equal(tm_notice_check(n, NULL, NULL), cases[i].notice);
        tm_notice_stop(n);
    }
    /* a directory appearing at the path is a notice too (it exists) */
    tm_notice *n = NULL;
    tm_err err;
    assert_int_equal(tm_notice_start(path, 0.1, &n, &err), TM_OK);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_true(wait_notice(n, 2.0, NULL, NULL) >= 0);
    tm_notice_stop(n);
    rmdir(path);
    rmdir(dir);
}

/* A "TRUE"-style notice (here an empty file) counts its 30 s from the last
 * poll that saw nothing, not from when it was first seen: with a 1 s period
 * the deadline is at most 30 s after the file appeared. */
static void test_lead_from_last_clear(void **state)
{
    (void)state;
    char dir[] = "/tmp/tm_notice_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/preempt", dir);
    tm_notice *n = NULL;
    tm_err err;
    assert_int_equal(tm_notice_start(path, 1.0, &n, &err), TM_OK);
    sleep_s(0.5); /* the first poll (at once) saw no file */
    double t_appear = tm_now_unix_f();
    write_file(path, "");
    double d = 0;
    assert_true(wait_notice(n, 3.0, &d, NULL) >= 0);
    double seen = tm_now_unix_f();
    assert_true(seen - t_appear > 0.3);     /* seen at the next poll, ~0.5 s later */
    assert_true(d <= t_appear + 30 + 1e-3); /* not seen + 30 */
    assert_true(d >= t_appear + 30 - 1.5);
    tm_notice_stop(n);
    unlink(path);
    rmdir(dir);
}

/* ---- a tiny HTTP server -------------------------------------------------------- */

enum { MODE_URL, MODE_AWS, MODE_AWS_V1, MODE_GCP };

typedef struct server {
    int fd, port, mode;
    atomic_int stop;
    atomic_int gets;        /* GETs of the notice path */
    atomic_int puts;        /* token PUTs */
    atomic_int bad_headers; /* GETs missing a required header (answered 401/403) */
    atomic_int flip_after;  /* notice answers from the GET number flip_after + 1 on */
    pthread_t th;
} server;

static void respond(int c, int code, const char *body)
{
    const char *reason = code == 200 ? "OK" : code == 404 ? "Not Found" : code == 401 ? "Unauthorized"
                       : code == 403 ? "Forbidden" : "Method Not Allowed";
    char out[1024];
    int k = snprintf(out, sizeof out, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s", code, reason, strlen(body), body);
    ssize_t w = write(c, out, (size_t)k);
    (void)w;
}

static void handle(server *s, int c)
{
    char req[8192];
    size_t n = 0;
    while (n < sizeof req - 1) { /* headers only: the requests have no body */
        struct pollfd p = {c, POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0) return;
        ssize_t r = read(c, req + n, sizeof req - 1 - n);
        if (r <= 0) return;
        n += (size_t)r;
        req[n] = 0;
        if (strstr(req, "\r\n\r\n")) break;
    }
    char method[16] = "", path[256] = "";
    if (sscanf(req, "%15s %255s", method, path) != 2) return;
    int is_get = strcmp(method, "GET") == 0;
    if (strcmp(method, "PUT") == 0 && strcmp(path, "/latest/api/token") == 0) {
        atomic_fetch_add(&s->puts, 1);
        if (s->mode == MODE_AWS && strcasestr(req, "\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\n"))
            respond(c, 200, "tok-123");
        else
            respond(c, 405, "");
        return;
    }
    const char *want = s->mode == MODE_GCP ? "/computeMetadata/v1/instance/preempted"
                     : s->mode == MODE_URL ? "/notice"
                                           : "/latest/meta-data/spot/instance-action";
    if (!is_get || strcmp(path, want) != 0) { respond(c, 404, ""); return; }
    if (s->mode == MODE_AWS && !strcasestr(req, "\r\nX-aws-ec2-metadata-token: tok-123\r\n")) {
        atomic_fetch_add(&s->bad_headers, 1);
        respond(c, 401, "");
        return;
    }
    if (s->mode == MODE_GCP && !strcasestr(req, "\r\nMetadata-Flavor: Google\r\n")) {
        atomic_fetch_add(&s->bad_headers, 1);
        respond(c, 403, "");
        return;
    }
    int k = atomic_fetch_add(&s->gets, 1) + 1;
    int flipped = k > atomic_load(&s->flip_after);
    if (s->mode == MODE_GCP) respond(c, 200, flipped ? "TRUE" : "FALSE");
    else if (!flipped) respond(c, 404, "");
    else respond(c, 200, "{\"code\":\"x\",\"action\":\"terminate\",\"time\":\"2026-11-23T12:00:00Z\"}");
}

static void *serve(void *arg)
{
    server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0) continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) continue;
        handle(s, c);
        close(c);
    }
    return NULL;
}

static void server_start(server *s, int mode, int flip_after)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    atomic_init(&s->flip_after, flip_after);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, serve, s), 0);
}

static void server_stop(server *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    close(s->fd);
}

/* Start a poller on spec, check it sees nothing while the server says 404 /
 * FALSE, and that it flips within a couple of polls after. */
static void check_flip(server *s, const char *spec, const char *want_kind, double want_lead)
{
    tm_notice *n = NULL;
    tm_err err;
    tm_status st = tm_notice_start(spec, 0.1, &n, &err);
    if (st) fail_msg("%s: %s", spec, err.msg);
    /* the first answers are "no notice" */
    double t0 = (double)tm_now_mono_ns() * 1e-9;
    while (atomic_load(&s->gets) < 1 && (double)tm_now_mono_ns() * 1e-9 - t0 < 5) sleep_s(0.01);
    assert_true(atomic_load(&s->gets) >= 1);
    assert_int_equal(tm_notice_check(n, NULL, NULL), 0);
    /* the server flips after its next answer */
    atomic_store(&s->flip_after, atomic_load(&s->gets));
    int gets_at_flip = atomic_load(&s->gets);
    double seen_at = tm_now_unix_f(), d = 0;
    const char *kind = NULL;
    double took = wait_notice(n, 3.0, &d, &kind);
    if (took < 0) fail_msg("%s: no notice after %d polls", spec, atomic_load(&s->gets));
    assert_true(took < 1.0);
    assert_true(atomic_load(&s->gets) - gets_at_flip <= 3); /* within a couple of polls */
    assert_string_equal(kind, want_kind);
    if (want_lead < 0) assert_true(d == T_2026);
    else assert_true(fabs(d - (seen_at + want_lead)) < 1.0);
    /* stays seen, deadline never moves later */
    sleep_s(0.3);
    double d2 = 0;
    assert_int_equal(tm_notice_check(n, &d2, NULL), 1);
    assert_true(d2 <= d);
    double t_stop = (double)tm_now_mono_ns() * 1e-9;
    tm_notice_stop(n);
    assert_true((double)tm_now_mono_ns() * 1e-9 - t_stop < 1.0);
}

static void test_http_url(void **state)
{
    (void)state;
    server s;
    server_start(&s, MODE_URL, 1000);
    char spec[128];
    snprintf(spec, sizeof spec, "http://127.0.0.1:%d/notice", s.port);
    check_flip(&s, spec, "url", -1);
    assert_int_equal(atomic_load(&s.puts), 0);
    server_stop(&s);
}

static void test_http_aws_imdsv2(void **state)
{
    (void)state;
    server s;
    server_start(&s, MODE_AWS, 1000);
    char base[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/", s.port); /* trailing slash is dropped */
    setenv("TOKENMILL_AWS_METADATA_URL", base, 1);
    check_flip(&s, "aws", "aws", -1);
    unsetenv("TOKENMILL_AWS_METADATA_URL");
    assert_int_equal(atomic_load(&s.bad_headers), 0); /* every GET carried the token */
    assert_int_equal(atomic_load(&s.puts), 1);        /* and the token was reused */
    server_stop(&s);
}

static void test_http_aws_imdsv1_fallback(void **state)
{
    (void)state;
    server s;
    server_start(&s, MODE_AWS_V1, 1000); /* the PUT answers 405 */
    char base[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", s.port);
    setenv("TOKENMILL_AWS_METADATA_URL", base, 1);
    check_flip(&s, "aws", "aws", -1);
    unsetenv("TOKENMILL_AWS_METADATA_URL");
    assert_true(atomic_load(&s.puts) >= 1);
    server_stop(&s);
}

static void test_http_gcp(void **state)
{
    (void)state;
    server s;
    server_start(&s, MODE_GCP, 1000);
    char base[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", s.port);
    setenv("TOKENMILL_GCP_METADATA_URL", base, 1);
    check_flip(&s, "gcp", "gcp", 30);
    unsetenv("TOKENMILL_GCP_METADATA_URL");
    assert_int_equal(atomic_load(&s.bad_headers), 0);
    server_stop(&s);
}

static void test_http_dead_endpoint(void **state)
{
    (void)state;
    /* a port nobody listens on: no notice, no error, stop is quick */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    char spec[128];
    snprintf(spec, sizeof spec, "http://127.0.0.1:%d/x", ntohs(a.sin_port));
    tm_notice *n = NULL;
    tm_err err;
    assert_int_equal(tm_notice_start(spec, 0.1, &n, &err), TM_OK);
    sleep_s(0.4);
    assert_int_equal(tm_notice_check(n, NULL, NULL), 0);
    tm_notice_stop(n);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_true_false_seconds),
        cmocka_unit_test(test_body_aws_json),
        cmocka_unit_test(test_body_hostile),
        cmocka_unit_test(test_iso8601),
        cmocka_unit_test(test_bad_specs),
        cmocka_unit_test(test_file_mode),
        cmocka_unit_test(test_lead_from_last_clear),
        cmocka_unit_test(test_http_url),
        cmocka_unit_test(test_http_aws_imdsv2),
        cmocka_unit_test(test_http_aws_imdsv1_fallback),
        cmocka_unit_test(test_http_gcp),
        cmocka_unit_test(test_http_dead_endpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
