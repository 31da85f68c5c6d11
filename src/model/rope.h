/* rope.h — RoPE inverse frequencies of a model config, for every backend.
 *
 * A fact of the architecture (rope_theta, rope_scaling), not of a backend:
 * the CPU reference computes its cos/sin from these and the CUDA backend
 * uploads the same doubles, so both rotate by identical angles.
 */
#ifndef TM_ROPE_H
#define TM_ROPE_H

#include "model/model.h"

/* inv_freq[i] = theta^(-2i/hd), i < hd/2, with the llama3 scaling of
 * transformers' _compute_llama3_parameters applied when
 * cfg->rope_scaling == TM_ROPE_LLAMA3 and apply_scaling. */
void tm_rope_inv_freq(const tm_model_config *cfg, int apply_scaling, double *inv_freq);

#endif
