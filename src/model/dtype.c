/* dtype.c — stored tensor dtypes (bf16, fp16, fp32, and the quantized
 * checkpoints' int32 and float8_e4m3fn): sizes, names, widening to f32.
 *
 * bf16 is the top half of an f32, so widening is a 16-bit shift. fp16 and
 * e4m3 are decoded exactly by quant.c's codecs (subnormals, inf, nan keep
 * their meaning); int32 widens by value. Sources are read with memcpy so
 * unaligned mappings are fine; elements are little-endian.
 */
#include "model/model.h"

#include <string.h>

size_t tm_dtype_size(tm_dtype dt)
{
    switch (dt) {
    case TM_DTYPE_F32: return 4;
    case TM_DTYPE_F16: return 2;
    case TM_DTYPE_BF16: return 2;
    case TM_DTYPE_I32: return 4;
    case TM_DTYPE_F8_E4M3: return 1;
    }
    return 0;
}

const char *tm_dtype_name(tm_dtype dt)
{
    switch (dt) {
    case TM_DTYPE_F32: return "F32";
    case TM_DTYPE_F16: return "F16";
    case TM_DTYPE_BF16: return "BF16";
    case TM_DTYPE_I32: return "I32";
    case TM_DTYPE_F8_E4M3: return "F8_E4M3";
    }
    return "?";
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
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
            dst[i] = tm_f16_to_f32(v);
        }
        break;
    case TM_DTYPE_I32:
        for (size_t i = 0; i < n; i++) {
            uint32_t v = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                         (uint32_t)p[4 * i + 3] << 24;
            int32_t sv;
            memcpy(&sv, &v, 4);
            dst[i] = (float)sv;
        }
        break;
    case TM_DTYPE_F8_E4M3:
        for (size_t i = 0; i < n; i++) dst[i] = tm_e4m3_to_f32(p[i]);
        break;
    }
}
