/* synthetic.c — the configs of the synthetic models (tm_model_synthetic).
 *
 * Full-size benchmark models without a checkpoint: each entry is the exact
 * config.json + generation_config.json of a published model (shapes, RoPE,
 * norm eps, eos ids); model.c builds the data-less tensors from it and the
 * CUDA backend fills the weights on the device. Add a model here to make it
 * available to `tokenmill bench engine --synthetic NAME`.
 */
#include <string.h>

#include "model/model.h"

typedef struct synth_entry {
    const char *name;
    tm_model_config cfg;
} synth_entry;

static const synth_entry synth_models[] = {
    /* meta-llama/Llama-3.1-8B(-Instruct) */
    {"llama3-8b",
     {.arch = TM_ARCH_LLAMA, .model_type = "llama", .vocab_size = 128256, .hidden_size = 4096,
      .intermediate_size = 14336, .n_layers = 32, .n_heads = 32, .n_kv_heads = 8, .head_dim = 128,
      .max_position_embeddings = 131072, .rms_norm_eps = 1e-5f, .rope_theta = 500000.0f,
      .rope_scaling = TM_ROPE_LLAMA3, .rope_factor = 8.0f, .rope_low_freq_factor = 1.0f,
      .rope_high_freq_factor = 4.0f, .rope_original_max_pos = 8192, .tie_word_embeddings = 0,
      .attention_bias = 0, .qk_norm = 0, .dtype = TM_DTYPE_BF16, .bos_token_id = 128000,
      .eos_token_ids = {128001, 128008, 128009}, .n_eos = 3}},
    /* Qwen/Qwen2.5-7B(-Instruct) */
    {"qwen2.5-7b",
     {.arch = TM_ARCH_QWEN2, .model_type = "qwen2", .vocab_size = 152064, .hidden_size = 3584,
      .intermediate_size = 18944, .n_layers = 28, .n_heads = 28, .n_kv_heads = 4, .head_dim = 128,
      .max_position_embeddings = 32768, .rms_norm_eps = 1e-6f, .rope_theta = 1000000.0f,
      .rope_scaling = TM_ROPE_NONE, .tie_word_embeddings = 0, .attention_bias = 1, .qk_norm = 0,
      .dtype = TM_DTYPE_BF16, .bos_token_id = -1, .eos_token_ids = {151645, 151643}, .n_eos = 2}},
    /* deepseek-ai/deepseek-llm-7b-base / -chat (llama architecture) */
    {"deepseek-llm-7b",
     {.arch = TM_ARCH_LLAMA, .model_type = "llama", .vocab_size = 102400, .hidden_size = 4096,
      .intermediate_size = 11008, .n_layers = 30, .n_heads = 32, .n_kv_heads = 32, .head_dim = 128,
      .max_position_embeddings = 4096, .rms_norm_eps = 1e-6f, .rope_theta = 10000.0f,
      .rope_scaling = TM_ROPE_NONE, .tie_word_embeddings = 0, .attention_bias = 0, .qk_norm = 0,
      .dtype = TM_DTYPE_BF16, .bos_token_id = 100000, .eos_token_ids = {100001}, .n_eos = 1}},
};

const char *tm_model_synthetic_names(void) { return "llama3-8b, qwen2.5-7b, deepseek-llm-7b"; }

tm_status tm_model_synthetic_config(const char *name, tm_model_config *cfg, tm_err *err)
{
    for (size_t i = 0; name && i < sizeof synth_models / sizeof synth_models[0]; i++) {
        if (!strcmp(name, synth_models[i].name)) {
            *cfg = synth_models[i].cfg;
            return TM_OK;
        }
    }
    return tm_errf(err, TM_ERR_NOTFOUND, "synthetic model '%.100s' is not known (known: %s)", name ? name : "(null)",
                   tm_model_synthetic_names());
}
