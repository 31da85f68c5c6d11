/* test_jobfile.c — unit tests of the streaming job-file reader (jobfile.h).
 *
 * Fixtures are built in a temp dir by the test itself: plain files, zstd
 * (libzstd), gzip and tar/tar.gz/tar.zst/zip (libarchive's write API), then
 * read back: line numbers, sources, counts, CRLF, missing final newline,
 * over-long lines, empty files and members, skipped non-regular members,
 * compressed members, nested archives, corrupt data, missing paths, stdin.
 */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include <zstd.h>

#include "queue/jobfile.h"

/* ---- collecting what the reader delivers -------------------------------- */

#define MAXREC 64

typedef struct rec_line {
    char source[256];
    long lineno;
    char text[256];
    size_t len, full_len;
    int too_long;
} rec_line;

typedef struct rec_end {
    char source[256];
    long lines;
} rec_end;

typedef struct rec {
    rec_line lines[MAXREC];
    int nlines;
    long total_lines; /* also counts lines beyond MAXREC */
    rec_end ends[MAXREC];
    int nends;
    long stop_at;     /* on_line fails at this global line number (0: never) */
} rec;

static tm_status on_line(void *ctx, const tm_jobfile_line *l, tm_err *err)
{
    rec *r = ctx;
    r->total_lines++;
    if (r->stop_at && r->total_lines == r->stop_at) return tm_errf(err, TM_ERR_INPUT, "stopped by callback");
    assert_true(l->data[l->len] == 0);
    if (r->nlines < MAXREC) {
        rec_line *x = &r->lines[r->nlines++];
        snprintf(x->source, sizeof x->source, "%s", l->source);
        x->lineno = l->lineno;
        snprintf(x->text, sizeof x->text, "%.*s", (int)(l->len < 255 ? l->len : 255), l->data);
        x->len = l->len;
        x->full_len = l->full_len;
        x->too_long = l->too_long;
    }
    return TM_OK;
}

static tm_status on_end(void *ctx, const char *source, long lines, tm_err *err)
{
    (void)err;
    rec *r = ctx;
    if (r->nends < MAXREC) {
        snprintf(r->ends[r->nends].source, sizeof r->ends[r->nends].source, "%s", source);
        r->ends[r->nends++].lines = lines;
    }
    return TM_OK;
}

static tm_status read_path(const char *path, size_t max_line, rec *r, tm_err *err)
{
    memset(r, 0, sizeof *r);
    tm_jobfile_callbacks cb = {on_line, on_end, r};
    return tm_jobfile_read(path, max_line, &cb, err);
}

/* index of the end record for source, or -1 */
static int find_end(const rec *r, const char *source)
{
    for (int i = 0; i < r->nends; i++)
        if (strcmp(r->ends[i].source, source) == 0) return i;
    return -1;
}

/* ---- fixtures -------------------------------------------------------------- */

static char tmpdir[256];

static void fixture_path(char *out, size_t sz, const char *name)
{
    snprintf(out, sz, "%s/%s", tmpdir, name);
}

static void write_bytes(const char *name, const void *data, size_t n)
{
    char p[512];
    fixture_path(p, sizeof p, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_zstd(const char *name, const char *text)
{
    size_t n = strlen(text);
    size_t cap = ZSTD_compressBound(n);
    void *buf = malloc(cap);
    assert_non_null(buf);
    size_t z = ZSTD_compress(buf, cap, text, n, 3);
    assert_false(ZSTD_isError(z));
    write_bytes(name, buf, z);
    free(buf);
}

/* Member of an archive fixture. type: 'f' file, 'd' directory, 'l' symlink. */
typedef struct member {
    const char *name;
    char type;
    const void *data;
    size_t size;
} member;

/* filter: "none", "gzip", "zstd"; format: "raw", "tar", "zip" */
static void write_archive(const char *name, const char *format, const char *filter, const member *m, int nm)
{
    char p[512];
    fixture_path(p, sizeof p, name);
    struct archive *a = archive_write_new();
    assert_non_null(a);
    if (strcmp(filter, "gzip") == 0) assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    if (strcmp(filter, "zstd") == 0) assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
    if (strcmp(format, "raw") == 0) assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
    if (strcmp(format, "tar") == 0) assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    if (strcmp(format, "zip") == 0) assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, p), ARCHIVE_OK);
    for (int i = 0; i < nm; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        if (m[i].type == 'd') {
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, 0755);
        } else if (m[i].type == 'l') {
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_perm(e, 0777);
            archive_entry_set_symlink(e, (const char *)m[i].data);
        } else {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, (la_int64_t)m[i].size);
        }
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (m[i].type == 'f' && m[i].size)
            assert_int_equal(archive_write_data(a, m[i].data, m[i].size), (la_ssize_t)m[i].size);
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

static void *read_whole(const char *name, size_t *n)
{
    char p[512];
    fixture_path(p, sizeof p, name);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc((size_t)sz + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static const char THREE[] = "{\"custom_id\":\"a\"}\n{\"custom_id\":\"b\"}\n{\"custom_id\":\"c\"}\n";

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/tm_jobfile_XXXXXX", t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) return -1;
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* three lines "a","b","c" from one source */
static void expect_three(const rec *r, const char *source)
{
    assert_int_equal(r->nlines, 3);
    const char *ids[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "{\"custom_id\":\"%s\"}", ids[i]);
        assert_string_equal(r->lines[i].source, source);
        assert_int_equal(r->lines[i].lineno, i + 1);
        assert_string_equal(r->lines[i].text, want);
        assert_false(r->lines[i].too_long);
    }
    assert_int_equal(r->nends, 1);
    assert_string_equal(r->ends[0].source, source);
    assert_int_equal(r->ends[0].lines, 3);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_plain_crlf_no_final_newline(void **state)
{
    (void)state;
    char p[512];
    rec r;
    tm_err err;
    write_bytes("plain.jsonl", THREE, strlen(THREE));
    fixture_path(p, sizeof p, "plain.jsonl");
    assert_int_equal(read_path(p, 0, &r, &err), TM_OK);
    expect_three(&r, p);

    const char crlf[] = "one\r\n\r\ntwo\r\nlast";
    write_bytes("crlf.jsonl", crlf, strlen(crlf));
    fixture_path(p, sizeof p, "crlf.jsonl");
    assert_int_equal(read_path(p, 0, &r, &err), TM_OK);
    assert_int_equal(r.nlines, 4);
    assert_string_equal(r.lines[0].text, "one");
    assert_int_equal(r.lines[0].len, 3);
    assert_string_equal(r.lines[1].text, ""); /* blank lines count for numbering */
    assert_int_equal(r.lines[2].lineno, 3);
    assert_string_equal(r.lines[2].text, "two");
    assert_string_equal(r.lines[3].text, "last"); /* no final newline */
    assert_int_equal(r.lines[3].lineno, 4);
    assert_int_equal(r.ends[0].lines, 4);

    /* a UTF-8 BOM before the first line is dropped */
    const char bom[] = "\xEF\xBB\xBF{}\n\xEF\xBB\xBFx\n";
    write_bytes("bom.jsonl", bom, strlen(bom));
    fixture_path(p, sizeof p, "bom.jsonl");
    assert_int_equal(read_path(p, 0, &r, &err), TM_OK);
    assert_string_equal(r.lines[0].text, "{}");
    assert_string_equal(r.lines[1].text, "\xEF\xBB\xBFx"); /* only at the start of a source */
}

static void test_too_long(void **state)
{
    (void)state;
    char p[512];
    rec r;
    tm_err err;
    char data[400];
    memset(data, 'x', 100);
    data[100] = '\n';
    memcpy(data + 101, "short\n", 6);
    memset(data + 107, 'y', 16); /* exactly max_line, with CRLF: not too long */
    memcpy(data + 123, "\r\n", 2);
    memset(data + 125, 'z', 17); /* max_line + 1 at end of file */
    write_bytes("long.jsonl", data, 142);
    fixture_path(p, sizeof p, "long.jsonl");
    assert_int_equal(read_path(p, 16, &r, &err), TM_OK);
    assert_int_equal(r.nlines, 4);
    assert_true(r.lines[0].too_long);
    assert_int_equal(r.lines[0].len, 16);
    assert_int_equal(r.lines[0].full_len, 100);
    assert_string_equal(r.lines[0].text, "xxxxxxxxxxxxxxxx");
    assert_false(r.lines[1].too_long); /* the next line is still read */
    assert_string_equal(r.lines[1].text, "short");
    assert_int_equal(r.lines[1].lineno, 2);
    assert_false(r.lines[2].too_long);
    assert_int_equal(r.lines[2].len, 16);
    assert_true(r.lines[3].too_long);
    assert_int_equal(r.lines[3].full_len, 17);
    assert_int_equal(r.ends[0].lines, 4);

    /* a BOM does not count against max_line (found by fuzzing) */
    const char bl[] = "\xEF\xBB\xBF" "0123456789abcdef\nx";
    write_bytes("bomlong.jsonl", bl, strlen(bl));
    fixture_path(p, sizeof p, "bomlong.jsonl");
    assert_int_equal(read_path(p, 16, &r, &err), TM_OK);
    assert_false(r.lines[0].too_long);
    assert_string_equal(r.lines[0].text, "0123456789abcdef");
    /* a partial BOM is data */
    write_bytes("halfbom.jsonl", "\xEF\xBBx", 3);
    fixture_path(p, sizeof p, "halfbom.jsonl");
    assert_int_equal(read_path(p, 16, &r, &err), TM_OK);
    assert_int_equal(r.lines[0].len, 3);

    /* a line spanning many 64 KiB read blocks arrives whole */
    size_t big = 300000;
    char *b = malloc(big + 8);
    assert_non_null(b);
    for (size_t i = 0; i < big; i++) b[i] = (char)('a' + i % 26);
    memcpy(b + big, "\nend\n", 5);
    write_bytes("big.jsonl", b, big + 5);
    fixture_path(p, sizeof p, "big.jsonl");
    assert_int_equal(read_path(p, 0, &r, &err), TM_OK);
    assert_int_equal(r.nlines, 2);
    assert_int_equal(r.lines[0].len, big);
    assert_false(r.lines[0].too_long);
    assert_string_equal(r.lines[1].text, "end");
    free(b);
}

static void test_empty_file(void **state)
{
    (void)state;
    char p[512];
    rec r;
    tm_err err;
    write_bytes("empty.jsonl", "", 0);
    fixture_path(p, sizeof p, "empty.jsonl");
    assert_int_equal(read_path(p, 0, &r, &err), TM_OK);
    assert_int_equal(r.nlines, 0);
    assert_int_equal(r.nends, 1);
    assert_string_equal(r.ends[0].source, p);
    assert_int_equal(r.ends[0].lines, 0);

    /* compressed empty content too */
    write_zstd("empty.jsonl.zst", "");
    fixture_path(p, sizeof p, "empty.jsonl.zst");
    assert_int_equal(read_path(p, 0, &r, &err), TM_OK);
    assert_int_equal(r.nends, 1);
    assert_int_equal(r.ends[0].lines, 0);
}

static void test_compressed(void **state)
{
    (void)state;
    char p[512];
    rec r;
    tm_err err;
    write_zstd("jobs.jsonl.zst", THREE);
    fixture_path(p, sizeof p, "jobs.jsonl.zst");
    assert_int_equal(read_path(p, 0, &r, &err), TM_OK);
    expect_three(&r, p);

    member one = {"data", 'f', THREE, strlen(THREE)};
    write_archive("jobs.jsonl.gz", "raw", "gzip", &one, 1);
    fixture_path(p, sizeof p, "jobs.jsonl.gz");
    assert_int_equal(read_path(p, 0, &r, &err), TM_OK);
    expect_three(&r, p);

    /* content decides, not the name */
    write_archive("looks_plain.jsonl", "raw", "zstd", &one, 1);
    fixture_path(p, sizeof p, "looks_plain.jsonl");
    assert_int_equal(read_path(p, 0, &r, &err), TM_OK);
    expect_three(&r, p);
}

static void check_archive_read(const char *name, int expect_link_skipped)
{
    char p[512], src[600];
    rec r;
    tm_err err;
    fixture_path(p, sizeof p, name);
    tm_status st = read_path(p, 0, &r, &err);
    if (st != TM_OK) fprintf(stderr, "%s: %s\n", name, err.msg);
    assert_int_equal(st, TM_OK);
    /* a.jsonl: 3 lines; empty.jsonl: 0; sub/b.jsonl.zst: 3 lines (decompressed) */
    snprintf(src, sizeof src, "%s:a.jsonl", p);
    int i = find_end(&r, src);
    assert_true(i >= 0);
    assert_int_equal(r.ends[i].lines, 3);
    snprintf(src, sizeof src, "%s:empty.jsonl", p);
    i = find_end(&r, src);
    assert_true(i >= 0);
    assert_int_equal(r.ends[i].lines, 0);
    snprintf(src, sizeof src, "%s:sub/b.jsonl.zst", p);
    i = find_end(&r, src);
    assert_true(i >= 0);
    assert_int_equal(r.ends[i].lines, 3);
    /* directory and symlink members are skipped */
    snprintf(src, sizeof src, "%s:sub/", p);
    assert_int_equal(find_end(&r, src), -1);
    snprintf(src, sizeof src, "%s:sub", p);
    assert_int_equal(find_end(&r, src), -1);
    if (expect_link_skipped) {
        snprintf(src, sizeof src, "%s:link.jsonl", p);
        assert_int_equal(find_end(&r, src), -1);
        assert_int_equal(r.nends, 3);
    }
    assert_int_equal(r.total_lines, 6);
    /* line numbers restart per member and sources are named */
    snprintf(src, sizeof src, "%s:sub/b.jsonl.zst", p);
    for (int k = 0; k < r.nlines; k++)
        if (strcmp(r.lines[k].source, src) == 0) assert_true(r.lines[k].lineno >= 1 && r.lines[k].lineno <= 3);
}

static void test_archives(void **state)
{
    (void)state;
    size_t zcap = ZSTD_compressBound(strlen(THREE));
    void *z = malloc(zcap);
    assert_non_null(z);
    size_t zn = ZSTD_compress(z, zcap, THREE, strlen(THREE), 1);
    assert_false(ZSTD_isError(zn));
    member ms[] = {
        {"sub/", 'd', NULL, 0},
        {"a.jsonl", 'f', THREE, strlen(THREE)},
        {"link.jsonl", 'l', "a.jsonl", 0},
        {"empty.jsonl", 'f', "", 0},
        {"sub/b.jsonl.zst", 'f', z, zn},
    };
    int nm = (int)(sizeof ms / sizeof ms[0]);
    write_archive("jobs.tar", "tar", "none", ms, nm);
    write_archive("jobs.tar.gz", "tar", "gzip", ms, nm);
    write_archive("jobs.tar.zst", "tar", "zstd", ms, nm);
    write_archive("jobs.zip", "zip", "none", ms, nm);
    check_archive_read("jobs.tar", 1);
    check_archive_read("jobs.tar.gz", 1);
    check_archive_read("jobs.tar.zst", 1);
    check_archive_read("jobs.zip", 1);

    /* the same bytes through the memory reader */
    size_t n;
    void *bytes = read_whole("jobs.tar.zst", &n);
    rec r;
    memset(&r, 0, sizeof r);
    tm_jobfile_callbacks cb = {on_line, on_end, &r};
    tm_err err;
    assert_int_equal(tm_jobfile_read_memory("mem.tar.zst", bytes, n, 0, &cb, &err), TM_OK);
    assert_int_equal(r.total_lines, 6);
    assert_true(find_end(&r, "mem.tar.zst:a.jsonl") >= 0);
    free(bytes);

    /* an archive with only a directory: one empty source */
    member d[] = {{"only/", 'd', NULL, 0}};
    write_archive("dirs.tar", "tar", "none", d, 1);
    char p[512];
    fixture_path(p, sizeof p, "dirs.tar");
    assert_int_equal(read_path(p, 0, &r, &err), TM_OK);
    assert_int_equal(r.nends, 1);
    assert_int_equal(r.ends[0].lines, 0);

    /* nested archives are not expanded: a clear error naming the member */
    size_t tn;
    void *tar = read_whole("jobs.tar", &tn);
    member nest[] = {{"a.jsonl", 'f', THREE, strlen(THREE)}, {"inner.tar", 'f', tar, tn}};
    write_archive("nested.tar", "tar", "none", nest, 2);
    fixture_path(p, sizeof p, "nested.tar");
    assert_int_equal(read_path(p, 0, &r, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "nested.tar:inner.tar"));
    assert_non_null(strstr(err.msg, "nested archives"));
    free(tar);
    free(z);
}

static void test_errors(void **state)
{
    (void)state;
    char p[512];
    rec r;
    tm_err err;

    /* corrupt zstd: valid frame cut short, and garbage after the magic */
    size_t cap = ZSTD_compressBound(strlen(THREE));
    char *z = malloc(cap);
    assert_non_null(z);
    size_t zn = ZSTD_compress(z, cap, THREE, strlen(THREE), 3);
    assert_false(ZSTD_isError(zn));
    write_bytes("cut.jsonl.zst", z, zn - 6);
    fixture_path(p, sizeof p, "cut.jsonl.zst");
    assert_int_equal(read_path(p, 0, &r, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, p));
    for (size_t i = 8; i < zn; i++) z[i] ^= 0x5a;
    write_bytes("bad.jsonl.zst", z, zn);
    fixture_path(p, sizeof p, "bad.jsonl.zst");
    assert_int_equal(read_path(p, 0, &r, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "bad.jsonl.zst"));
    free(z);

    /* truncated tar member */
    size_t tn;
    member big = {"a.jsonl", 'f', THREE, strlen(THREE)};
    write_archive("t.tar", "tar", "none", &big, 1);
    char *tar = read_whole("t.tar", &tn);
    write_bytes("trunc.tar", tar, 600);
    free(tar);
    fixture_path(p, sizeof p, "trunc.tar");
    assert_int_equal(read_path(p, 0, &r, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "trunc.tar"));

    /* 1024 NUL bytes (tar's end marker), alone or before real lines: not a
     * job file, never "empty" (issue 19) */
    char nul[1024 + sizeof THREE] = {0};
    memcpy(nul + 1024, THREE, strlen(THREE));
    write_bytes("nul.jsonl", nul, 1024);
    fixture_path(p, sizeof p, "nul.jsonl");
    assert_int_equal(read_path(p, 0, &r, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "not a job file"));
    assert_int_equal(r.nends, 0);
    write_bytes("nul-lines.jsonl", nul, 1024 + strlen(THREE));
    fixture_path(p, sizeof p, "nul-lines.jsonl");
    assert_int_equal(read_path(p, 0, &r, &err), TM_ERR_INPUT);
    assert_non_null(strstr(err.msg, "not a job file"));

    fixture_path(p, sizeof p, "does-not-exist.jsonl");
    assert_int_equal(read_path(p, 0, &r, &err), TM_ERR_IO);
    assert_non_null(strstr(err.msg, "does-not-exist.jsonl"));
    assert_int_equal(r.nends, 0);

    assert_int_equal(read_path(tmpdir, 0, &r, &err), TM_ERR_IO);
    assert_non_null(strstr(err.msg, "directory"));

    /* a callback error stops reading and is returned as is */
    fixture_path(p, sizeof p, "plain.jsonl");
    write_bytes("plain.jsonl", THREE, strlen(THREE));
    memset(&r, 0, sizeof r);
    r.stop_at = 2;
    tm_jobfile_callbacks cb = {on_line, on_end, &r};
    assert_int_equal(tm_jobfile_read(p, 0, &cb, &err), TM_ERR_INPUT);
    assert_string_equal(err.msg, "stopped by callback");
    assert_int_equal(r.total_lines, 2);
    assert_int_equal(r.nends, 0);
}

static void test_stdin(void **state)
{
    (void)state;
    char p[512];
    rec r;
    tm_err err;
    write_zstd("stdin.jsonl.zst", THREE);
    fixture_path(p, sizeof p, "stdin.jsonl.zst");
    int saved = dup(0);
    assert_true(saved >= 0);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(dup2(fd, 0), 0);
    close(fd);
    tm_status st = read_path("-", 0, &r, &err);
    assert_int_equal(dup2(saved, 0), 0);
    close(saved);
    assert_int_equal(st, TM_OK);
    expect_three(&r, "<stdin>");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_crlf_no_final_newline),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_compressed),
        cmocka_unit_test(test_archives),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_stdin),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
