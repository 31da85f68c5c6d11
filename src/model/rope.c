/* rope.c — RoPE inverse frequencies (rope.h). */
#include "model/rope.h"

#include <math.h>

void tm_rope_inv_freq(const tm_model_config *cfg, int apply_scaling, double *inv_freq)
{
    int32_t hd = cfg->head_dim, half = hd / 2;
    double theta = cfg->rope_theta > 0 ? cfg->rope_theta : 10000.0;
    for (int32_t i = 0; i < half; i++) inv_freq[i] = 1.0 / pow(theta, (double)(2 * i) / hd);
    if (!apply_scaling || cfg->rope_scaling != TM_ROPE_LLAMA3) return;
    /* transformers.modeling_rope_utils._compute_llama3_parameters */
    double factor = cfg->rope_factor, lff = cfg->rope_low_freq_factor,
           hff = cfg->rope_high_freq_factor, old = cfg->rope_original_max_pos;
    if (factor <= 0 || lff <= 0 || hff <= 0 || old <= 0) return;
    double low_wl = old / lff, high_wl = old / hff;
    for (int32_t i = 0; i < half; i++) {
        double f = inv_freq[i];
        double wl = 2.0 * M_PI / f;
        double fl = wl > low_wl ? f / factor : f;
        int medium = !(wl < high_wl) && !(wl > low_wl);
        if (medium && hff != lff) {
            double smooth = (old / wl - lff) / (hff - lff);
            fl = (1.0 - smooth) * fl / factor + smooth * fl;
        }
        inv_freq[i] = fl;
    }
}
