/* ggml_blocks.c — ggml block formats to float32 (layouts: ggml_blocks.h). */
#include "quant/ggml_blocks.h"

#include <string.h>
#include "quant/quant.h"

enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8,
       T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_BF16 = 30 };

static float h2f(const unsigned char *p) { uint16_t h; memcpy(&h, p, 2); return tm_f16_to_f32(h); }

static void q4_0(const unsigned char *b, float *y)
{
    float d = h2f(b);
    const unsigned char *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((qs[j] & 0x0F) - 8) * d;
        y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
    }
}

static void q4_1(const unsigned char *b, float *y)
{
    float d = h2f(b), m = h2f(b + 2);
    const unsigned char *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(qs[j] & 0x0F) * d + m;
        y[j + 16] = (float)(qs[j] >> 4) * d + m;
    }
}

static void q5(const unsigned char *b, float *y, int with_min)
{
    float d = h2f(b), m = with_min ? h2f(b + 2) : 0.0f;
    const unsigned char *p = b + (with_min ? 4 : 2);
    uint32_t qh;
    memcpy(&qh, p, 4);
    const unsigned char *qs = p + 4;
    for (int j = 0; j < 16; j++) {
        int h0 = (int)(((qh >> j) << 4) & 0x10), h1 = (int)((qh >> (j + 12)) & 0x10);
        int x0 = (qs[j] & 0x0F) | h0, x1 = (qs[j] >> 4) | h1;
        if (with_min) {
            y[j] = (float)x0 * d + m;
            y[j + 16] = (float)x1 * d + m;
        } else {
            y[j] = (float)(x0 - 16) * d;
            y[j + 16] = (float)(x1 - 16) * d;
        }
    }
}

static void q8_0(const unsigned char *b, float *y)
{
    float d = h2f(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

static void scale_min_k4(int j, const unsigned char *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void q4_k(const unsigned char *b, float *y)
{
    float d = h2f(b), dmin = h2f(b + 2);
    const unsigned char *sc = b + 4, *q = b + 16;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
        uint8_t s, m;
        scale_min_k4(is, sc, &s, &m);
        float d1 = d * s, m1 = dmin * m;
        scale_min_k4(is + 1, sc, &s, &m);
        float d2 = d * s, m2 = dmin * m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
    }
}

static void q5_k(const unsigned char *b, float *y)
{
    float d = h2f(b), dmin = h2f(b + 2);
    const unsigned char *sc = b + 4, *qh = b + 16, *ql = b + 48;
    unsigned u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
        uint8_t s, m;
        scale_min_k4(is, sc, &s, &m);
        float d1 = d * s, m1 = dmin * m;
        scale_min_k4(is + 1, sc, &s, &m);
        float d2 = d * s, m2 = dmin * m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
}

static void q6_k(const unsigned char *b, float *y)
{
    const unsigned char *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = h2f(b + 208);
    for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
    }
}

int tm_ggml_dequant_supported(uint32_t type)
{
    switch (type) {
    case T_F32: case T_F16: case T_BF16: case T_Q4_0: case T_Q4_1: case T_Q5_0: case T_Q5_1: case T_Q8_0:
    case T_Q4_K: case T_Q5_K: case T_Q6_K: return 1;
    default: return 0;
    }
}

int tm_ggml_dequant(uint32_t type, const void *src, float *dst, int64_t n)
{
    const unsigned char *s = src;
    switch (type) {
    case T_F32: memcpy(dst, s, (size_t)n * 4); return 0;
    case T_F16: for (int64_t i = 0; i < n; i++) dst[i] = h2f(s + 2 * i); return 0;
    case T_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h; uint32_t u;
            memcpy(&h, s + 2 * i, 2);
            u = (uint32_t)h << 16;
            memcpy(&dst[i], &u, 4);
        }
        return 0;
    case T_Q4_0: for (int64_t i = 0; i < n / 32; i++) q4_0(s + i * 18, dst + i * 32); return 0;
    case T_Q4_1: for (int64_t i = 0; i < n / 32; i++) q4_1(s + i * 20, dst + i * 32); return 0;
    case T_Q5_0: for (int64_t i = 0; i < n / 32; i++) q5(s + i * 22, dst + i * 32, 0); return 0;
    case T_Q5_1: for (int64_t i = 0; i < n / 32; i++) q5(s + i * 24, dst + i * 32, 1); return 0;
    case T_Q8_0: for (int64_t i = 0; i < n / 32; i++) q8_0(s + i * 34, dst + i * 32); return 0;
    case T_Q4_K: for (int64_t i = 0; i < n / 256; i++) q4_k(s + i * 144, dst + i * 256); return 0;
    case T_Q5_K: for (int64_t i = 0; i < n / 256; i++) q5_k(s + i * 176, dst + i * 256); return 0;
    case T_Q6_K: for (int64_t i = 0; i < n / 256; i++) q6_k(s + i * 210, dst + i * 256); return 0;
    default: return -1;
    }
}
