/* sampler_params.c — tm_sampling_params defaults, range checks, stop strings
 * and the derived seed of requests that gave none (sampler.h). */
#include "engine/sampler.h"

#include <math.h>
#include <string.h>

void tm_sampling_params_default(tm_sampling_params *p)
{
    memset(p, 0, sizeof *p);
    p->temperature = 1.0f;
    p->top_p = 1.0f;
    p->top_k = 0;
    p->min_p = 0.0f;
    p->repetition_penalty = 1.0f;
}

/* min_tokens, eos_ids and logit_bias (vLLM / OpenAI fields). */
static tm_status tm_sampling_params_check_extra(const tm_sampling_params *p, int32_t vocab, tm_err *err)
{
    if (p->min_tokens < 0)
        return tm_errf(err, TM_ERR_INPUT, "min_tokens: must be >= 0, got %d", (int)p->min_tokens);
    if (p->max_tokens > 0 && p->min_tokens > p->max_tokens)
        return tm_errf(err, TM_ERR_INPUT, "min_tokens: %d is more than max_tokens %d", (int)p->min_tokens,
                       (int)p->max_tokens);
    if (p->n_eos_ids < 0 || p->n_eos_ids > TM_SAMPLER_MAX_EOS_IDS)
        return tm_errf(err, TM_ERR_INPUT, "eos ids: at most %d, got %d", TM_SAMPLER_MAX_EOS_IDS,
                       (int)p->n_eos_ids);
    if (p->n_bias < 0 || p->n_bias > TM_SAMPLER_MAX_LOGIT_BIAS)
        return tm_errf(err, TM_ERR_INPUT, "logit_bias: at most %d entries, got %d", TM_SAMPLER_MAX_LOGIT_BIAS,
                       (int)p->n_bias);
    for (int32_t i = 0; i < p->n_bias; i++) {
        if (p->bias_id[i] < 0 || (vocab > 0 && p->bias_id[i] >= vocab))
            return tm_errf(err, TM_ERR_INPUT, "logit_bias: token id %d is not in the vocabulary [0, %d)",
                           (int)p->bias_id[i], (int)vocab);
        if (!(p->bias[i] >= -TM_SAMPLER_MAX_BIAS && p->bias[i] <= TM_SAMPLER_MAX_BIAS))
            return tm_errf(err, TM_ERR_INPUT, "logit_bias[\"%d\"]: must be in [-100, 100], got %g",
                           (int)p->bias_id[i], (double)p->bias[i]);
    }
    return TM_OK;
}

tm_status tm_sampling_params_check(const tm_sampling_params *p, int32_t vocab, tm_err *err)
{
    if (!(isfinite(p->temperature) && p->temperature >= 0.0f))
        return tm_errf(err, TM_ERR_INPUT, "temperature: must be a finite number >= 0, got %g",
                       (double)p->temperature);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return tm_errf(err, TM_ERR_INPUT, "top_p: must be in (0, 1], got %g", (double)p->top_p);
    if (p->top_k < -1)
        return tm_errf(err, TM_ERR_INPUT, "top_k: must be -1, 0 (off) or >= 1, got %d",
                       (int)p->top_k);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return tm_errf(err, TM_ERR_INPUT, "min_p: must be in [0, 1], got %g", (double)p->min_p);
    if (!(p->presence_penalty >= -2.0f && p->presence_penalty <= 2.0f))
        return tm_errf(err, TM_ERR_INPUT, "presence_penalty: must be in [-2, 2], got %g",
                       (double)p->presence_penalty);
    if (!(p->frequency_penalty >= -2.0f && p->frequency_penalty <= 2.0f))
        return tm_errf(err, TM_ERR_INPUT, "frequency_penalty: must be in [-2, 2], got %g",
                       (double)p->frequency_penalty);
    if (!(isfinite(p->repetition_penalty) && p->repetition_penalty > 0.0f))
        return tm_errf(err, TM_ERR_INPUT, "repetition_penalty: must be a finite number > 0, got %g",
                       (double)p->repetition_penalty);
    if (p->top_logprobs < 0 || p->top_logprobs > TM_SAMPLER_MAX_TOP_LOGPROBS)
        return tm_errf(err, TM_ERR_INPUT, "top_logprobs: must be in [0, %d], got %d",
                       TM_SAMPLER_MAX_TOP_LOGPROBS, (int)p->top_logprobs);
    if (p->n_stop_ids < 0 || p->n_stop_ids > TM_SAMPLER_MAX_STOP_IDS)
        return tm_errf(err, TM_ERR_INPUT, "stop_token_ids: at most %d ids, got %d",
                       TM_SAMPLER_MAX_STOP_IDS, (int)p->n_stop_ids);
    for (int32_t i = 0; i < p->n_stop_ids; i++) {
        if (p->stop_ids[i] < 0 || (vocab > 0 && p->stop_ids[i] >= vocab))
            return tm_errf(err, TM_ERR_INPUT, "stop_token_ids[%d]: %d is not in [0, %d)", (int)i,
                           (int)p->stop_ids[i], (int)vocab);
    }
    if (p->n_stop < 0 || p->n_stop > TM_STOP_MAX)
        return tm_errf(err, TM_ERR_INPUT, "stop: at most %d strings, got %d", TM_STOP_MAX,
                       (int)p->n_stop);
    for (int32_t i = 0; i < p->n_stop; i++) {
        if (p->stop_len[i] < 1 || p->stop_len[i] > TM_STOP_MAX_BYTES)
            return tm_errf(err, TM_ERR_INPUT, "stop[%d]: length must be 1..%d bytes, got %u",
                           (int)i, TM_STOP_MAX_BYTES, (unsigned)p->stop_len[i]);
    }
    return tm_sampling_params_check_extra(p, vocab, err);
}

tm_status tm_sampling_params_add_stop(tm_sampling_params *p, const char *s, size_t len, tm_err *err)
{
    if (p->n_stop < 0 || p->n_stop >= TM_STOP_MAX)
        return tm_errf(err, TM_ERR_INPUT, "stop: at most %d strings", TM_STOP_MAX);
    if (len == 0 || !s)
        return tm_errf(err, TM_ERR_INPUT, "stop[%d]: must not be empty", (int)p->n_stop);
    if (len > TM_STOP_MAX_BYTES)
        return tm_errf(err, TM_ERR_INPUT, "stop[%d]: %zu bytes, at most %d allowed",
                       (int)p->n_stop, len, TM_STOP_MAX_BYTES);
    memcpy(p->stop[p->n_stop], s, len);
    p->stop_len[p->n_stop] = (uint16_t)len;
    p->n_stop++;
    return TM_OK;
}

int64_t tm_sampler_bias_key(const char *k)
{
    size_t n = k ? strlen(k) : 0;
    if (n == 0 || n > 10 || (n > 1 && k[0] == '0')) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (k[i] < '0' || k[i] > '9') return -1;
        v = v * 10 + (k[i] - '0');
    }
    return v <= INT32_MAX ? v : -1;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    if (!s) return h;
    for (const unsigned char *b = (const unsigned char *)s; *b; b++) {
        h ^= *b;
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t tm_sampler_seed_from(const char *job_id, const char *custom_id)
{
    uint64_t h = fnv1a(0xcbf29ce484222325ULL, job_id);
    h ^= 0xffu;
    h *= 0x100000001b3ULL;
    h = fnv1a(h, custom_id);
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL; /* splitmix64 finaliser */
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}
