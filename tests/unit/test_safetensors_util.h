/* test_safetensors_util.h — helpers shared by test_safetensors.c and test_model.c.
 *
 * A minimal safetensors writer (header JSON via jansson, optional misaligned
 * data start), raw-image construction for hostile headers, and temp-directory
 * helpers. Test-only code: failures abort the test through cmocka asserts.
 */
#ifndef TM_TEST_SAFETENSORS_UTIL_H
#define TM_TEST_SAFETENSORS_UTIL_H

#include <ftw.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TU_UNUSED __attribute__((unused))

typedef struct tu_tensor {
    const char *name;
    const char *dtype;   /* "BF16", "F16", "F32", or anything for hostile cases */
    int ndim;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
} tu_tensor;

/* 8-byte little-endian length + header + data, in one malloc'd buffer. */
TU_UNUSED static unsigned char *tu_raw(const char *header, size_t hlen, const void *data, size_t dlen,
                                       size_t *outlen)
{
    unsigned char *b = malloc(8 + hlen + dlen + 1);
    if (!b) return NULL;
    uint64_t n = hlen;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(n >> (8 * i));
    memcpy(b + 8, header, hlen);
    if (dlen) memcpy(b + 8 + hlen, data, dlen);
    *outlen = 8 + hlen + dlen;
    return b;
}

/* A well-formed image of ts[0..n) laid out back to back. misalign != 0 pads the
 * header so the data section starts at an odd offset (8 + N odd). */
TU_UNUSED static unsigned char *tu_build(const tu_tensor *ts, size_t n, int misalign, size_t *outlen)
{
    json_t *root = json_object();
    json_object_set_new(root, "__metadata__", json_pack("{s:s}", "format", "pt"));
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < ts[i].ndim; d++) json_array_append_new(shape, json_integer(ts[i].shape[d]));
        json_object_set_new(root, ts[i].name,
                            json_pack("{s:s, s:o, s:[I,I]}", "dtype", ts[i].dtype, "shape", shape,
                                      "data_offsets", (json_int_t)off, (json_int_t)(off + ts[i].nbytes)));
        off += ts[i].nbytes;
    }
    char *h = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    size_t hl = strlen(h);
    size_t target = (8 + hl + 7) / 8 * 8 + (misalign ? 1 : 0);
    size_t padded = target - 8;
    char *hp = malloc(padded);
    memcpy(hp, h, hl);
    memset(hp + hl, ' ', padded - hl);
    free(h);
    unsigned char *data = malloc(off ? off : 1);
    off = 0;
    for (size_t i = 0; i < n; i++) {
        if (ts[i].nbytes) memcpy(data + off, ts[i].data, ts[i].nbytes);
        off += ts[i].nbytes;
    }
    unsigned char *img = tu_raw(hp, padded, data, off, outlen);
    free(hp);
    free(data);
    return img;
}

TU_UNUSED static int tu_write(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(buf, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

TU_UNUSED static int tu_write_text(const char *dir, const char *name, const char *text)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return tu_write(p, text, strlen(text));
}

TU_UNUSED static char *tu_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[n] = 0; if (len) *len = (size_t)n; }
    return b;
}

TU_UNUSED static char *tu_mkdtemp(void)
{
    const char *t = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/tm_model_test_XXXXXX", t && *t ? t : "/tmp");
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

TU_UNUSED static int tu_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

TU_UNUSED static void tu_rmtree(char *dir)
{
    if (!dir) return;
    nftw(dir, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

#endif
