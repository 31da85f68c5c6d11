/* common.c — helpers shared by the subcommands: db path, errors, options. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "util/sha256.h"

const char *tm_cli_db_path(const char *db_flag)
{
    if (db_flag && *db_flag) return db_flag;
    const char *env = getenv("TOKENMILL_DB");
    if (env && *env) return env;
    return "tokenmill.db";
}

tm_status tm_cli_db_check(const char *path, tm_err *err)
{
    if (!path || !*path || !strcmp(path, ":memory:"))
        return tm_errf(err, TM_ERR_USAGE, "--db '%s': an in-memory or temporary database keeps nothing; "
                                          "give a file path", path ? path : "");
    if (!strncmp(path, "file:", 5))
        return tm_errf(err, TM_ERR_USAGE, "--db '%.200s': SQLite URIs are not accepted; give a file path "
                                          "(./%.200s for a file of that name)", path, path);
    return TM_OK;
}

int tm_cli_fail(const char *cmd, tm_status s, const tm_err *err)
{
    fprintf(stderr, "tokenmill %s: %s\n", cmd, err && err->msg[0] ? err->msg : tm_status_str(s));
    return tm_status_exit_code(s);
}

int tm_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "tokenmill %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'tokenmill %s --help')\n", cmd);
    return 64;
}

void tm_cli_getopt_reset(void)
{
    optind = 0; /* glibc: 0 re-initialises, including the permutation state */
    opterr = 1;
}

tm_status tm_cli_parse_long(const char *opt, const char *val, long long lo, long long hi,
                            long long *out, tm_err *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (errno || end == val || *end)
        return tm_errf(err, TM_ERR_USAGE, "%s: '%s' is not an integer", opt, val);
    if (v < lo || v > hi)
        return tm_errf(err, TM_ERR_USAGE, "%s: %lld is out of range [%lld, %lld]", opt, v, lo, hi);
    *out = v;
    return TM_OK;
}

tm_status tm_cli_parse_size(const char *opt, const char *val, int64_t *out, tm_err *err)
{
    char *end;
    double x = strtod(val, &end), mult = 1;
    if (*end == 'K' || *end == 'k') mult = 1024.0, end++;
    else if (*end == 'M' || *end == 'm') mult = 1048576.0, end++;
    else if (*end == 'G' || *end == 'g') mult = 1073741824.0, end++;
    if (*end == 'i') end++;
    if (*end == 'B' || *end == 'b') end++;
    if (end == val || *end || !(x > 0) || x * mult > 9e18)
        return tm_errf(err, TM_ERR_USAGE, "%s: '%s' is not a size (e.g. 512M, 4G)", opt, val);
    *out = (int64_t)(x * mult);
    return TM_OK;
}

/* path with its folder resolved (links, "..") and its own name kept, or,
 * when the path itself exists, fully resolved; 0 when the folder does not
 * resolve. */
static int canonical(const char *path, char out[PATH_MAX])
{
    char *r = realpath(path, NULL);
    if (r) {
        snprintf(out, PATH_MAX, "%s", r);
        free(r);
        return 1;
    }
    char d[PATH_MAX], b[PATH_MAX];
    snprintf(d, sizeof d, "%s", path);
    snprintf(b, sizeof b, "%s", path);
    char *dir = realpath(dirname(d), NULL);
    if (!dir) return 0;
    snprintf(out, PATH_MAX, "%s/%s", dir, basename(b));
    free(dir);
    return 1;
}

tm_status tm_cli_output_not_db(const char *out_path, const char *db, tm_err *err)
{
    if (!out_path || !strcmp(out_path, "-")) return TM_OK;
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    char co[PATH_MAX], cd[PATH_MAX], name[PATH_MAX + 16];
    int have_o = canonical(out_path, co), have_d = canonical(db, cd);
    struct stat so, sd;
    int o_exists = stat(out_path, &so) == 0;
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        snprintf(name, sizeof name, "%s%s", db, sfx[i]);
        int same = o_exists && stat(name, &sd) == 0 && so.st_dev == sd.st_dev && so.st_ino == sd.st_ino;
        if (!same && have_o && have_d) {
            snprintf(name, sizeof name, "%s%s", cd, sfx[i]);
            same = !strcmp(co, name);
        }
        if (same)
            return tm_errf(err, TM_ERR_USAGE, "-o %s: that is the queue database%s%s: refusing to write over it",
                           out_path, *sfx[i] ? "'s " : "", sfx[i]);
    }
    return TM_OK;
}

/* bytes of the valid UTF-8 character at s[0..n), 0 when invalid; *cp set */
static size_t utf8_char(const char *s, size_t n, int32_t *cp)
{
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &c);
    if (k <= 0) return 0;
    *cp = c;
    return (size_t)k;
}

tm_status tm_cli_check_text(const char *opt, const char *s, tm_err *err)
{
    size_t n = s ? strlen(s) : 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        size_t k = utf8_char(s + i, n - i, &cp);
        if (!k)
            return tm_errf(err, TM_ERR_USAGE, "%s: not valid UTF-8 (byte %zu); names and metadata must be UTF-8 text",
                           opt, i + 1);
        i += k;
    }
    return TM_OK;
}

const char *tm_cli_printable(const char *s, char *out, size_t outsz)
{
    if (!out || outsz == 0) return "";
    size_t n = s ? strlen(s) : 0, o = 0;
    for (size_t i = 0; i < n;) {
        int32_t cp = 0;
        size_t k = utf8_char(s + i, n - i, &cp);
        char esc[16];
        size_t el;
        if (!k) { /* an invalid byte */
            el = (size_t)snprintf(esc, sizeof esc, "\\x%02x", (unsigned char)s[i]);
            k = 1;
        } else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == 0x2028 || cp == 0x2029) {
            el = (size_t)snprintf(esc, sizeof esc, cp < 0x80 ? "\\x%02x" : "\\u%04x", (unsigned)cp);
        } else if (cp == '\\') {
            el = (size_t)snprintf(esc, sizeof esc, "\\\\");
        } else {
            el = k;
            memcpy(esc, s + i, k);
        }
        if (o + el >= outsz) break; /* never cut an escape or a character */
        memcpy(out + o, esc, el);
        o += el;
        i += k;
    }
    out[o] = 0;
    return out;
}

tm_status tm_cli_files_sha256(char *const *paths, int n, char hex[65], tm_err *err)
{
    hex[0] = 0;
    for (int i = 0; i < n; i++) { /* stdin, a pipe, a FIFO: read once, by the submission */
        struct stat sb;
        if (!strcmp(paths[i], "-") || stat(paths[i], &sb) != 0 || !S_ISREG(sb.st_mode)) return TM_OK;
    }
    tm_sha256_ctx c;
    tm_sha256_init(&c);
    unsigned char buf[65536];
    for (int i = 0; i < n; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (!f) return tm_errf(err, TM_ERR_IO, "%s: %s", paths[i], strerror(errno));
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, f)) > 0) tm_sha256_update(&c, buf, got);
        int bad = ferror(f);
        fclose(f);
        if (bad) return tm_errf(err, TM_ERR_IO, "%s: read failed", paths[i]);
    }
    uint8_t d[32];
    tm_sha256_final(&c, d);
    tm_sha256_hex(d, hex);
    return TM_OK;
}
