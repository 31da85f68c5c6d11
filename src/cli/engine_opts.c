/* engine_opts.c — the shared model/engine options (engine_opts.h). */
#include "cli/engine_opts.h"

#include "cli/cli.h"

void tm_engine_opts_default(tm_engine_opts *o, int32_t max_seqs, int32_t max_batch_tokens)
{
    *o = (tm_engine_opts){.device = TM_DEVICE_AUTO, .quant = TM_QS_NONE, .kv_dtype = TM_KV_AUTO,
                          .max_seqs = max_seqs, .max_batch_tokens = max_batch_tokens};
}

int tm_engine_opts_parse(tm_engine_opts *o, int code, const char *arg, tm_status *st, tm_err *err)
{
    long long v = 0;
    *st = TM_OK;
    switch (code) {
    case TM_EO_MODEL: o->model_dir = arg; return 1;
    case TM_EO_DEVICE: *st = tm_device_parse(arg, &o->device, err); return 1;
    case TM_EO_THREADS:
        if (!(*st = tm_cli_parse_long("--threads", arg, 0, 1024, &v, err))) o->n_threads = (int)v;
        return 1;
    case TM_EO_QUANT: *st = tm_quant_scheme_parse(arg, &o->quant, err); return 1;
    case TM_EO_KV_DTYPE: *st = tm_kv_dtype_parse(arg, &o->kv_dtype, err); return 1;
    case TM_EO_CUDA_FAST: o->backend_flags |= TM_BACKEND_CUDA_FAST; return 1;
    case TM_EO_MAX_SEQS:
        if (!(*st = tm_cli_parse_long("--max-seqs", arg, 1, 4096, &v, err))) o->max_seqs = (int32_t)v;
        return 1;
    case TM_EO_MAX_BATCH_TOKENS:
        if (!(*st = tm_cli_parse_long("--max-batch-tokens", arg, 1, 1 << 20, &v, err))) o->max_batch_tokens = (int32_t)v;
        return 1;
    case TM_EO_KV_MEMORY: *st = tm_cli_parse_size("--kv-memory", arg, &o->kv_memory, err); return 1;
    default: return 0;
    }
}

void tm_engine_opts_usage(FILE *f, unsigned groups, const tm_engine_opts *o)
{
    if (groups & TM_ENGINE_OPTS_MODEL)
        fprintf(f,
                "  --model DIR             Hugging Face model directory (config.json, *.safetensors,\n"
                "                          tokenizer.json, tokenizer_config.json) or a GGUF file\n"
                "  --device D              %s (default auto: CUDA when built in and a GPU is\n"
                "                          visible, else the CPU)\n"
                "  --threads N             CPU threads (default: all cores)\n"
                "  --quant Q               quantize the weights at load: %s (default none;\n"
                "                          GPTQ/AWQ/FP8 checkpoints load as they are). CPU only for now\n"
                "  --kv-dtype D            KV cache element type: %s (default auto)\n"
                "  --cuda-fast             CUDA: tensor-core prefill / GQA decode attention kernels\n"
                "                          (UNVERIFIED: not yet checked on a GPU; default off)\n",
                TM_DEVICE_NAMES, TM_QUANT_SCHEME_NAMES, TM_KV_DTYPE_NAMES);
    if (groups & TM_ENGINE_OPTS_BATCH)
        fprintf(f,
                "  --max-seqs N            sequences per engine step (default %d)\n"
                "  --max-batch-tokens N    tokens per engine step (default %d)\n"
                "  --kv-memory SIZE        KV cache budget, e.g. 512M, 4G (default: automatic)\n",
                (int)o->max_seqs, (int)o->max_batch_tokens);
}
