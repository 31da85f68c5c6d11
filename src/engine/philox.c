/* philox.c — Philox-4x32-10 (Random123 / cuRAND compatible) and the
 * sampler's 53-bit uniform draw. See philox.h for the stream layout.
 * One round, as Random123's _philox4x32round: with (hi0,lo0) = M0*c0 and
 * (hi1,lo1) = M1*c2 (64-bit products), c = (hi1^c1^k0, lo1, hi0^c3^k1, lo0);
 * the key is bumped by the Weyl constants before every round but the first.
 */
#include "engine/philox.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static void philox_round(uint32_t c[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k[0];
    uint32_t n2 = hi0 ^ c[3] ^ k[1];
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
}

void tm_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(c, k);
    }
    out[0] = c[0];
    out[1] = c[1];
    out[2] = c[2];
    out[3] = c[3];
}

double tm_philox_uniform(uint64_t seed, uint64_t request_key, uint64_t token_index)
{
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t ctr[4] = {(uint32_t)token_index, (uint32_t)(token_index >> 32),
                       (uint32_t)request_key, (uint32_t)(request_key >> 32)};
    uint32_t out[4];
    tm_philox4x32_10(ctr, key, out);
    uint64_t a = out[0] >> 5, b = out[1] >> 6;
    return (double)((a << 26) | b) * (1.0 / 9007199254740992.0);
}
