/* notice.c — the preemption-notice poller (notice.h): a pthread that asks the
 * AWS / GCP metadata service, a URL or a file every period and publishes the
 * first notice it sees under a mutex; a strict parser for what they answer.
 *
 * HTTP is libcurl's easy interface, one handle owned by the thread, with
 * short timeouts and an abort hook so that tm_notice_stop() never waits on
 * the network for long.
 */
#include "notice/notice.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/timeutil.h"

#define NOTICE_DEFAULT_PERIOD 5.0
#define NOTICE_HTTP_TIMEOUT_MS 2000L
#define NOTICE_MAX_SPEC 4096
#define NOTICE_MAX_TOKEN 512
#define AWS_TOKEN_TTL 21600          /* asked for */
#define AWS_TOKEN_REFRESH 18000.0    /* renewed after (well before the TTL) */
#define NOTICE_MAX_SECONDS 1e9

typedef enum notice_kind { K_AWS, K_GCP, K_URL, K_FILE } notice_kind;
static const char *const kind_names[] = {"aws", "gcp", "url", "file"};

struct tm_notice {
    notice_kind kind;
    char *target;        /* aws/gcp: base URL without a trailing '/'; url: the URL; file: the path */
    double period_s;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;            /* under mu */
    atomic_int abort_io; /* read by libcurl's progress hook */
    int seen;            /* under mu */
    double deadline;     /* under mu */
    pthread_t thread;
    int thread_started;

    /* the poller thread's own state */
    CURL *curl;
    char token[NOTICE_MAX_TOKEN + 1];
    int have_token;
    double token_time;
    int failing;         /* a failure was logged; cleared by the next good answer */
    double last_clear;   /* when a poll last said "no notice" (have_clear) */
    int have_clear;
    double since;        /* this poll's earliest start of a notice: last_clear, or now */
    char body[TM_NOTICE_MAX_BODY + 1];
    size_t body_len;
    int body_overflow;
};

/* ---- parsing ---------------------------------------------------------------- */

typedef enum body_class { B_EMPTY, B_NO, B_NOTICE, B_GARBAGE } body_class;

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int tm_notice_parse_iso8601(const char *s, size_t len, double *unix_time)
{
    /* YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z */
    if (!s || len < 20 || len > 30) return 0;
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':') return 0;
    int year = digits(s, 4), mon = digits(s + 5, 2), day = digits(s + 8, 2);
    int hour = digits(s + 11, 2), min = digits(s + 14, 2), sec = digits(s + 17, 2);
    if (year < 1970 || mon < 1 || mon > 12 || day < 1 || hour < 0 || hour > 23 || min < 0 || min > 59 ||
        sec < 0 || sec > 60)
        return 0;
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > dim[mon - 1] + (mon == 2 && leap)) return 0;
    double frac = 0;
    size_t i = 19;
    if (s[i] == '.') {
        i++;
        size_t start = i;
        double scale = 0.1;
        while (i < len && is_digit(s[i]) && i - start < 9) {
            frac += (s[i] - '0') * scale;
            scale *= 0.1;
            i++;
        }
        if (i == start) return 0;
    }
    if (i + 1 != len || s[i] != 'Z') return 0;
    int64_t days = days_from_civil(year, mon, day);
    *unix_time = (double)(days * 86400 + hour * 3600 + min * 60 + sec) + frac;
    return 1;
}

static body_class classify_json(const char *b, size_t len, double since, double *deadline)
{
    json_error_t jerr;
    json_t *root = json_loadb(b, len, 0, &jerr);
    if (!root) return B_GARBAGE;
    body_class r = B_GARBAGE;
    json_t *action = json_is_object(root) ? json_object_get(root, "action") : NULL;
    if (json_is_string(action) && json_string_length(action) > 0) {
        json_t *t = json_object_get(root, "time");
        double when;
        if (json_is_string(t) && tm_notice_parse_iso8601(json_string_value(t), json_string_length(t), &when))
            *deadline = when;
        else
            *deadline = since + TM_NOTICE_AWS_LEAD;
        r = B_NOTICE;
    }
    json_decref(root);
    return r;
}

static body_class classify_number(const char *b, size_t len, double now, double *deadline)
{
    /* -?digits[.digits] (or .digits): no exponent, hex, inf or nan */
    if (len > 32) return B_GARBAGE;
    size_t i = 0, nd = 0;
    if (b[i] == '-' || b[i] == '+') i++;
    while (i < len && is_digit(b[i])) { i++; nd++; }
    if (i < len && b[i] == '.') {
        i++;
        while (i < len && is_digit(b[i])) { i++; nd++; }
    }
    if (i != len || nd == 0) return B_GARBAGE;
    char tmp[40];
    memcpy(tmp, b, len);
    tmp[len] = 0;
    double x = strtod(tmp, NULL);
    if (!isfinite(x) || x > NOTICE_MAX_SECONDS) return B_GARBAGE;
    if (x < 0) x = 0;
    *deadline = now + x;
    return B_NOTICE;
}

/* now: the time of the answer (seconds left count from it); since: the
 * earliest time the notice may have appeared (leads of "TRUE", of an AWS
 * action without a time, count from it). */
static body_class classify(const char *b, size_t len, double now, double since, double *deadline)
{
    if (!b) return B_EMPTY;
    if (len > TM_NOTICE_MAX_BODY) return B_GARBAGE; /* never read whole by the poller */
    while (len > 0 && is_ws(b[0])) { b++; len--; }
    while (len > 0 && is_ws(b[len - 1])) len--;
    if (len == 0) return B_EMPTY;
    if (memchr(b, 0, len)) return B_GARBAGE; /* text answers only */
    if (len == 4 && strncasecmp(b, "TRUE", 4) == 0) {
        *deadline = since + TM_NOTICE_DEFAULT_LEAD;
        return B_NOTICE;
    }
    if (len == 5 && strncasecmp(b, "FALSE", 5) == 0) return B_NO;
    if (b[0] == '{') return classify_json(b, len, since, deadline);
    return classify_number(b, len, now, deadline);
}

int tm_notice_parse_body(const char *body, size_t len, double now, double *deadline)
{
    double d;
    if (classify(body, len, now, now, &d) != B_NOTICE) return 0;
    *deadline = d;
    return 1;
}

/* ---- logging (once per failure episode) -------------------------------------- */

__attribute__((format(printf, 2, 3)))
static void log_failure(tm_notice *n, const char *fmt, ...)
{
    if (n->failing) return;
    n->failing = 1;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "tokenmill: preemption notice (%s): %s; treated as no notice\n", kind_names[n->kind], msg);
}

/* ---- HTTP ----------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    tm_notice *n = ud;
    size_t k = size * nmemb;
    if (k > TM_NOTICE_MAX_BODY - n->body_len) {
        n->body_overflow = 1;
        return 0; /* aborts the transfer */
    }
    memcpy(n->body + n->body_len, data, k);
    n->body_len += k;
    return k;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    tm_notice *n = ud;
    return atomic_load(&n->abort_io) ? 1 : 0;
}

/* One request; *code = HTTP status. 0 on a completed exchange, -1 on a
 * transport failure (logged). */
static int http(tm_notice *n, const char *method, const char *url, struct curl_slist *headers, long *code)
{
    CURL *c = n->curl;
    curl_easy_reset(c);
    n->body_len = 0;
    n->body_overflow = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, NOTICE_HTTP_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, NOTICE_HTTP_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(c, CURLOPT_USERAGENT, "tokenmill");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, n);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, n);
    if (headers) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    if (strcmp(method, "GET") != 0) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        if (!atomic_load(&n->abort_io)) {
            if (n->body_overflow)
                log_failure(n, "%s %s: answer longer than %d bytes", method, url, TM_NOTICE_MAX_BODY);
            else
                log_failure(n, "%s %s: %s", method, url, curl_easy_strerror(rc));
        }
        return -1;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
    return 0;
}

/* Handle a 200 / 404 / other answer of a notice endpoint: 1 with *deadline
 * on a notice, 0 on a clear "no notice", -1 when the answer says nothing. */
static int answer(tm_notice *n, const char *url, long code, double now, double *deadline)
{
    if (code == 404) { n->failing = 0; return 0; }
    if (code != 200) { log_failure(n, "GET %s: HTTP %ld", url, code); return -1; }
    body_class b = classify(n->body, n->body_len, now, n->since, deadline);
    if (b == B_GARBAGE) { log_failure(n, "GET %s: unrecognised answer (%zu bytes)", url, n->body_len); return -1; }
    n->failing = 0;
    return b == B_NOTICE;
}

static int aws_token(tm_notice *n, double now)
{
    if (n->have_token && now - n->token_time < AWS_TOKEN_REFRESH) return 1;
    n->have_token = 0;
    char url[NOTICE_MAX_SPEC + 64];
    snprintf(url, sizeof url, "%s/latest/api/token", n->target);
    struct curl_slist *h = curl_slist_append(NULL, "X-aws-ec2-metadata-token-ttl-seconds: 21600");
    long code = 0;
    int failing = n->failing;
    n->failing = 1; /* a failed PUT is not worth a log line: IMDSv1 follows */
    int ok = http(n, "PUT", url, h, &code) == 0 && code == 200;
    n->failing = failing;
    curl_slist_free_all(h);
    if (!ok || n->body_len == 0 || n->body_len > NOTICE_MAX_TOKEN) return 0;
    for (size_t i = 0; i < n->body_len; i++) /* a header value: printable ASCII only */
        if (n->body[i] < 0x21 || n->body[i] > 0x7e) return 0;
    memcpy(n->token, n->body, n->body_len);
    n->token[n->body_len] = 0;
    n->have_token = 1;
    n->token_time = now;
    return 1;
}

static int poll_aws(tm_notice *n, double now, double *deadline)
{
    char url[NOTICE_MAX_SPEC + 64];
    snprintf(url, sizeof url, "%s/latest/meta-data/spot/instance-action", n->target);
    for (int attempt = 0; attempt < 2; attempt++) {
        aws_token(n, now);
        struct curl_slist *h = NULL;
        if (n->have_token) {
            char hdr[NOTICE_MAX_TOKEN + 64];
            snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %s", n->token);
            h = curl_slist_append(NULL, hdr);
        }
        long code = 0;
        int rc = http(n, "GET", url, h, &code);
        curl_slist_free_all(h);
        if (rc != 0) return -1;
        if (code == 401 && n->have_token && attempt == 0) { /* expired token: get a new one */
            n->have_token = 0;
            continue;
        }
        return answer(n, url, code, now, deadline);
    }
    return -1;
}

static int poll_gcp(tm_notice *n, double now, double *deadline)
{
    char url[NOTICE_MAX_SPEC + 64];
    snprintf(url, sizeof url, "%s/computeMetadata/v1/instance/preempted", n->target);
    struct curl_slist *h = curl_slist_append(NULL, "Metadata-Flavor: Google");
    long code = 0;
    int rc = http(n, "GET", url, h, &code);
    curl_slist_free_all(h);
    if (rc != 0) return -1;
    if (code == 404) { log_failure(n, "GET %s: HTTP 404 (not a GCE instance?)", url); return -1; }
    return answer(n, url, code, now, deadline);
}

static int poll_url(tm_notice *n, double now, double *deadline)
{
    long code = 0;
    if (http(n, "GET", n->target, NULL, &code) != 0) return -1;
    return answer(n, n->target, code, now, deadline);
}

/* ---- file ------------------------------------------------------------------------ */

static int poll_file(tm_notice *n, double now, double *deadline)
{
    int fd = open(n->target, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) { n->failing = 0; return 0; }
        struct stat st;
        if (stat(n->target, &st) == 0) { /* exists, unreadable: still a notice */
            *deadline = n->since + TM_NOTICE_DEFAULT_LEAD;
            return 1;
        }
        log_failure(n, "%s: %s", n->target, strerror(errno));
        return -1;
    }
    struct stat st;
    size_t got = 0;
    int regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    while (regular && got < TM_NOTICE_MAX_BODY) {
        ssize_t r = read(fd, n->body + got, TM_NOTICE_MAX_BODY - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    n->failing = 0;
    switch (classify(n->body, got, now, n->since, deadline)) {
    case B_NO: return 0;
    case B_NOTICE: return 1;
    default: *deadline = n->since + TM_NOTICE_DEFAULT_LEAD; return 1;
    }
}

/* ---- the thread ---------------------------------------------------------------- */

static void poll_once(tm_notice *n)
{
    double now = tm_now_unix_f(), deadline = 0;
    /* a notice seen now appeared after the last poll that said "none" */
    n->since = n->have_clear ? n->last_clear : now;
    int seen = -1;
    switch (n->kind) {
    case K_AWS: seen = poll_aws(n, now, &deadline); break;
    case K_GCP: seen = poll_gcp(n, now, &deadline); break;
    case K_URL: seen = poll_url(n, now, &deadline); break;
    case K_FILE: seen = poll_file(n, now, &deadline); break;
    }
    if (seen == 0) {
        n->last_clear = now;
        n->have_clear = 1;
    }
    if (seen != 1) return;
    pthread_mutex_lock(&n->mu);
    if (!n->seen || deadline < n->deadline) n->deadline = deadline;
    n->seen = 1;
    pthread_mutex_unlock(&n->mu);
}

static void *poller(void *arg)
{
    tm_notice *n = arg;
    for (;;) {
        poll_once(n);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        double t = (double)until.tv_sec + until.tv_nsec * 1e-9 + n->period_s;
        until.tv_sec = (time_t)t;
        until.tv_nsec = (long)((t - (double)until.tv_sec) * 1e9);
        if (until.tv_nsec >= 1000000000L) until.tv_nsec = 999999999L;
        pthread_mutex_lock(&n->mu);
        int rc = 0;
        while (!n->stop && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&n->cv, &n->mu, &until);
        int stop = n->stop;
        pthread_mutex_unlock(&n->mu);
        if (stop) break;
    }
    return NULL;
}

/* ---- public ----------------------------------------------------------------------- */

static tm_status parse_spec(const char *spec, notice_kind *kind, char **target, tm_err *err)
{
    if (!spec || !*spec) return tm_errf(err, TM_ERR_USAGE, "--preemption-notice: empty spec");
    size_t len = strnlen(spec, NOTICE_MAX_SPEC + 1);
    if (len > NOTICE_MAX_SPEC)
        return tm_errf(err, TM_ERR_USAGE, "--preemption-notice: spec longer than %d bytes", NOTICE_MAX_SPEC);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)spec[i] < 0x20 || spec[i] == 0x7f)
            return tm_errf(err, TM_ERR_USAGE, "--preemption-notice: control character in spec");
    const char *t = NULL;
    if (strcmp(spec, "aws") == 0 || strcmp(spec, "gcp") == 0) {
        *kind = spec[0] == 'a' ? K_AWS : K_GCP;
        const char *env = getenv(*kind == K_AWS ? "TOKENMILL_AWS_METADATA_URL" : "TOKENMILL_GCP_METADATA_URL");
        if (env && *env) {
            if (strlen(env) > NOTICE_MAX_SPEC || (strncmp(env, "http://", 7) != 0 && strncmp(env, "https://", 8) != 0))
                return tm_errf(err, TM_ERR_USAGE, "%s: not an http:// or https:// URL",
                               *kind == K_AWS ? "TOKENMILL_AWS_METADATA_URL" : "TOKENMILL_GCP_METADATA_URL");
            t = env;
        } else {
            t = *kind == K_AWS ? "http://169.254.169.254" : "http://metadata.google.internal";
        }
    } else if (strncmp(spec, "http://", 7) == 0 || strncmp(spec, "https://", 8) == 0) {
        *kind = K_URL;
        t = spec;
        if (strlen(t) <= (t[4] == 's' ? 8u : 7u))
            return tm_errf(err, TM_ERR_USAGE, "--preemption-notice %s: URL without a host", spec);
    } else if (strncmp(spec, "file:", 5) == 0 || spec[0] == '/' || spec[0] == '.') {
        *kind = K_FILE;
        t = strncmp(spec, "file:", 5) == 0 ? spec + 5 : spec;
        if (!*t) return tm_errf(err, TM_ERR_USAGE, "--preemption-notice file: needs a path");
    } else {
        return tm_errf(err, TM_ERR_USAGE,
                       "--preemption-notice %s: expected aws, gcp, an http(s):// URL, file:PATH or a path", spec);
    }
    *target = strdup(t);
    if (!*target) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    if (*kind == K_AWS || *kind == K_GCP) { /* base URL: no trailing slash */
        size_t n = strlen(*target);
        while (n > 0 && (*target)[n - 1] == '/') (*target)[--n] = 0;
    }
    return TM_OK;
}

tm_status tm_notice_start(const char *spec, double period_s, tm_notice **out, tm_err *err)
{
    *out = NULL;
    notice_kind kind = K_FILE;
    char *target = NULL;
    tm_status st = parse_spec(spec, &kind, &target, err);
    if (st) return st;
    tm_notice *n = calloc(1, sizeof *n);
    if (!n) { free(target); return tm_errf(err, TM_ERR_NOMEM, "out of memory"); }
    n->kind = kind;
    n->target = target;
    n->period_s = period_s > 0 && isfinite(period_s) ? period_s : NOTICE_DEFAULT_PERIOD;
    if (n->period_s > 86400) n->period_s = 86400;
    atomic_init(&n->abort_io, 0);
    pthread_mutex_init(&n->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (kind != K_FILE) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            st = tm_errf(err, TM_ERR_INTERNAL, "--preemption-notice: libcurl initialisation failed");
            goto fail;
        }
        n->curl = curl_easy_init();
        if (!n->curl) {
            curl_global_cleanup();
            st = tm_errf(err, TM_ERR_INTERNAL, "--preemption-notice: curl_easy_init failed");
            goto fail;
        }
    }
    int rc = pthread_create(&n->thread, NULL, poller, n);
    if (rc != 0) {
        st = tm_errf(err, TM_ERR_INTERNAL, "--preemption-notice: cannot start the poller thread: %s", strerror(rc));
        goto fail;
    }
    n->thread_started = 1;
    *out = n;
    return TM_OK;
fail:
    tm_notice_stop(n);
    return st;
}

void tm_notice_stop(tm_notice *n)
{
    if (!n) return;
    if (n->thread_started) {
        atomic_store(&n->abort_io, 1);
        pthread_mutex_lock(&n->mu);
        n->stop = 1;
        pthread_cond_signal(&n->cv);
        pthread_mutex_unlock(&n->mu);
        pthread_join(n->thread, NULL);
    }
    if (n->curl) {
        curl_easy_cleanup(n->curl);
        curl_global_cleanup();
    }
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    free(n->target);
    free(n);
}

int tm_notice_check(tm_notice *n, double *deadline, const char **kind)
{
    if (!n) return 0;
    pthread_mutex_lock(&n->mu);
    int seen = n->seen;
    double d = n->deadline;
    pthread_mutex_unlock(&n->mu);
    if (!seen) return 0;
    if (deadline) *deadline = d;
    if (kind) *kind = kind_names[n->kind];
    return 1;
}
