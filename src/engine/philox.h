/* philox.h — Philox-4x32-10 counter-based RNG (Salmon et al., SC'11).
 *
 * Bit-exact with Random123's philox4x32_10 (its known-answer vectors are in
 * tests/unit/test_philox.c), so the CUDA sampler can reproduce every draw.
 * Stateless: a draw is a pure function of (counter, key).
 */

/* Sampler stream layout (the contract the CUDA sampler must follow):
 *   key     = { seed & 0xffffffff, seed >> 32 }
 *   counter = { i & 0xffffffff, i >> 32, rk & 0xffffffff, rk >> 32 }
 *   (i = index of the generated token, rk = request_key)
 *   u = ((out[0] >> 5) * 2^26 + (out[1] >> 6)) * 2^-53, a double in [0, 1)
 *   with 53 random bits (the genrand_res53 construction).
 */
#ifndef TM_PHILOX_H
#define TM_PHILOX_H

#include <stdint.h>

/* One Philox-4x32 block with 10 rounds. out may alias ctr. */
void tm_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The sampler's uniform draw for (seed, request_key, token_index), see above. */
double tm_philox_uniform(uint64_t seed, uint64_t request_key, uint64_t token_index);

#endif
