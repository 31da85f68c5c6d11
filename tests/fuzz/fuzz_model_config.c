/* fuzz_model_config.c — fuzz target for config.json / generation_config.json parsing.
 *
 * Parses the input as config.json; when accepted, checks the invariants the
 * loader and backends rely on (positive bounded sizes, heads divisible by kv
 * heads, eos count, a supported quantization_config: gptq/awq int4 with
 * group -1 or a positive multiple of 8, fp8 8-bit) and applies the same
 * input as generation_config.json.
 * Corpus: tests/fuzz/corpus/model_config/.
 */
#include <stdint.h>
#include <stdlib.h>

#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tm_model_config cfg;
    tm_err err;
    if (tm_model_config_parse((const char *)data, size, "fuzz", &cfg, &err) != TM_OK) return 0;
    if (cfg.vocab_size <= 0 || cfg.hidden_size <= 0 || cfg.intermediate_size <= 0 || cfg.n_layers <= 0 ||
        cfg.n_heads <= 0 || cfg.n_kv_heads <= 0 || cfg.head_dim <= 0 || cfg.n_heads % cfg.n_kv_heads ||
        cfg.n_eos < 0 || cfg.n_eos > TM_MAX_EOS)
        abort();
    const tm_quant_config *q = &cfg.quant;
    if (q->method == TM_QM_GPTQ || q->method == TM_QM_AWQ) {
        if (q->bits != 4 || !(q->group_size == -1 || (q->group_size > 0 && q->group_size % 8 == 0))) abort();
    } else if (q->method == TM_QM_FP8 || q->method == TM_QM_CT_FP8) {
        if (q->bits != 8) abort();
    } else if (q->method != TM_QM_NONE) {
        abort(); /* RTN is never parsed from a file */
    }
    tm_model_config before = cfg;
    if (tm_model_generation_config_parse((const char *)data, size, "fuzz", &cfg, &err) != TM_OK &&
        cfg.n_eos != before.n_eos)
        abort(); /* cfg must be unchanged on error */
    if (cfg.n_eos < 0 || cfg.n_eos > TM_MAX_EOS) abort();
    return 0;
}
