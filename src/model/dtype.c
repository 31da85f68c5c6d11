/* dtype.c — stored weight dtypes (bf16, fp16, fp32): sizes, names, widening to f32.
 *
 * bf16 is the top half of an f32, so widening is a 16-bit shift. fp16 is
 * decoded exactly (subnormals, inf, nan keep their meaning). Sources are read
 * with memcpy so unaligned mappings are fine; elements are little-endian.
 */
#include "model/model.h"

#include <string.h>

size_t tm_dtype_size(tm_dtype dt)
{
    switch (dt) {
    case TM_DTYPE_F32: return 4;
    case TM_DTYPE_F16: return 2;
    case TM_DTYPE_BF16: return 2;
    }
    return 0;
}

const char *tm_dtype_name(tm_dtype dt)
{
    switch (dt) {
    case TM_DTYPE_F32: return "F32";
    case TM_DTYPE_F16: return "F16";
    case TM_DTYPE_BF16: return "BF16";
    }
    return "?";
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalize into an f32 normal */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            man &= 0x3ff;
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13);
        }
    } else if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13); /* inf or nan (payload kept) */
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    return bits_f32(u);
}

void tm_dtype_to_f32(tm_dtype dt, const void *src, float *dst, size_t n)
{
    const uint8_t *p = src;
    switch (dt) {
    case TM_DTYPE_F32:
        memcpy(dst, src, n * 4);
        break;
    case TM_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t v = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
            dst[i] = bits_f32((uint32_t)v << 16);
        }
        break;
    case TM_DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t v = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
            dst[i] = f16_to_f32(v);
        }
        break;
    }
}
