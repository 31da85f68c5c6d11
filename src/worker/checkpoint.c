/* checkpoint.c — encode/decode the in-flight request state (checkpoint.h). */
#include "worker/checkpoint.h"

#include <stdlib.h>
#include <string.h>

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static tm_status app_u32(tm_buf *b, uint32_t v) { uint8_t t[4]; put_u32(t, v); return tm_buf_append(b, t, 4); }
static tm_status app_f32(tm_buf *b, float f) { uint32_t v; memcpy(&v, &f, 4); return app_u32(b, v); }
static tm_status app_f64(tm_buf *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    tm_status s = app_u32(b, (uint32_t)v);
    return s ? s : app_u32(b, (uint32_t)(v >> 32));
}

int64_t tm_ckpt_tokens(const tm_ckpt *c)
{
    int64_t n = 0;
    for (int32_t i = 0; i < c->n_choices; i++) n += c->choices[i].n_tokens;
    return n;
}

tm_status tm_ckpt_encode(const tm_ckpt *c, tm_buf *out, tm_err *err)
{
    if (c->n_choices < 1 || c->n_choices > TM_CKPT_MAX_CHOICES)
        return tm_errf(err, TM_ERR_USAGE, "checkpoint: %d choices", c->n_choices);
    tm_status s = tm_buf_append(out, "TMCK", 4);
    if (!s) s = app_u32(out, TM_CKPT_VERSION);
    if (!s) s = app_u32(out, (uint32_t)c->n_choices);
    if (!s) s = app_u32(out, c->logprobs ? 1u : 0u);
    const double d[5] = {c->gpu_seconds, c->energy_joules, c->cost_usd, c->wasted_seconds, c->wasted_usd};
    for (int i = 0; i < 5 && !s; i++) s = app_f64(out, d[i]);
    for (int32_t i = 0; i < c->n_choices && !s; i++) {
        const tm_ckpt_choice *ch = &c->choices[i];
        s = app_u32(out, (uint32_t)ch->n_tokens);
        for (int32_t t = 0; t < ch->n_tokens && !s; t++) s = app_u32(out, (uint32_t)ch->tokens[t]);
        if (!c->logprobs) continue;
        for (int32_t t = 0; t < ch->n_tokens && !s; t++) {
            const tm_sample_result *r = &ch->samples[t];
            int32_t nt = r->n_top < 0 ? 0 : r->n_top > TM_SAMPLER_MAX_TOP_LOGPROBS ? TM_SAMPLER_MAX_TOP_LOGPROBS : r->n_top;
            s = app_f32(out, r->logprob);
            if (!s) s = app_u32(out, (uint32_t)nt);
            for (int32_t k = 0; k < nt && !s; k++) {
                s = app_u32(out, (uint32_t)r->top[k].id);
                if (!s) s = app_f32(out, r->top[k].logprob);
            }
        }
    }
    if (s) return tm_errf(err, s, "checkpoint: out of memory");
    return TM_OK;
}

void tm_ckpt_clear(tm_ckpt *c)
{
    if (!c) return;
    if (c->choices)
        for (int32_t i = 0; i < c->n_choices; i++) {
            free(c->choices[i].tokens);
            free(c->choices[i].samples);
        }
    free(c->choices);
    memset(c, 0, sizeof *c);
}

typedef struct rd { const uint8_t *p; size_t left; } rd;

static int rd_u32(rd *r, uint32_t *v)
{
    if (r->left < 4) return 0;
    *v = get_u32(r->p);
    r->p += 4;
    r->left -= 4;
    return 1;
}
static int rd_f32(rd *r, float *f) { uint32_t v; if (!rd_u32(r, &v)) return 0; memcpy(f, &v, 4); return 1; }
static int rd_f64(rd *r, double *d)
{
    uint32_t lo, hi;
    if (!rd_u32(r, &lo) || !rd_u32(r, &hi)) return 0;
    uint64_t v = (uint64_t)hi << 32 | lo;
    memcpy(d, &v, 8);
    return 1;
}

tm_status tm_ckpt_decode(const void *data, size_t len, tm_ckpt *out, tm_err *err)
{
    memset(out, 0, sizeof *out);
    rd r = {data, len};
    uint32_t ver, nc, flags;
    if (len < 4 || memcmp(data, "TMCK", 4)) return tm_errf(err, TM_ERR_INPUT, "checkpoint: bad magic");
    r.p += 4;
    r.left -= 4;
    if (!rd_u32(&r, &ver) || !rd_u32(&r, &nc) || !rd_u32(&r, &flags))
        return tm_errf(err, TM_ERR_INPUT, "checkpoint: truncated header");
    if (ver != TM_CKPT_VERSION) return tm_errf(err, TM_ERR_INPUT, "checkpoint: version %u (want %d)", ver, TM_CKPT_VERSION);
    if (nc < 1 || nc > TM_CKPT_MAX_CHOICES) return tm_errf(err, TM_ERR_INPUT, "checkpoint: %u choices", nc);
    if (flags & ~1u) return tm_errf(err, TM_ERR_INPUT, "checkpoint: unknown flags 0x%x", flags);
    double d[5];
    for (int i = 0; i < 5; i++)
        if (!rd_f64(&r, &d[i])) return tm_errf(err, TM_ERR_INPUT, "checkpoint: truncated header");
    out->n_choices = (int32_t)nc;
    out->logprobs = (int)(flags & 1u);
    out->gpu_seconds = d[0];
    out->energy_joules = d[1];
    out->cost_usd = d[2];
    out->wasted_seconds = d[3];
    out->wasted_usd = d[4];
    out->choices = calloc(nc, sizeof *out->choices);
    if (!out->choices) { out->n_choices = 0; return tm_errf(err, TM_ERR_NOMEM, "checkpoint: out of memory"); }
    tm_status s = TM_OK;
    for (uint32_t i = 0; i < nc && !s; i++) {
        tm_ckpt_choice *ch = &out->choices[i];
        uint32_t nt;
        if (!rd_u32(&r, &nt)) { s = tm_errf(err, TM_ERR_INPUT, "checkpoint: choice %u: truncated", i); break; }
        /* each token takes at least 4 bytes (12 with logprobs): bound first */
        if (nt > r.left / (out->logprobs ? 12u : 4u) || nt > INT32_MAX / 2) {
            s = tm_errf(err, TM_ERR_INPUT, "checkpoint: choice %u: %u tokens in %zu bytes", i, nt, r.left);
            break;
        }
        ch->n_tokens = (int32_t)nt;
        ch->tokens = malloc((nt ? nt : 1) * sizeof(int32_t));
        if (!ch->tokens) { s = tm_errf(err, TM_ERR_NOMEM, "checkpoint: out of memory"); break; }
        for (uint32_t t = 0; t < nt; t++) {
            uint32_t v = 0;
            rd_u32(&r, &v); /* bounded above */
            if (v > INT32_MAX) { s = tm_errf(err, TM_ERR_INPUT, "checkpoint: choice %u: token %u is negative", i, t); break; }
            ch->tokens[t] = (int32_t)v;
        }
        if (s || !out->logprobs) continue;
        ch->samples = calloc(nt ? nt : 1, sizeof *ch->samples);
        if (!ch->samples) { s = tm_errf(err, TM_ERR_NOMEM, "checkpoint: out of memory"); break; }
        for (uint32_t t = 0; t < nt && !s; t++) {
            tm_sample_result *sr = &ch->samples[t];
            uint32_t ntop;
            sr->token = ch->tokens[t];
            if (!rd_f32(&r, &sr->logprob) || !rd_u32(&r, &ntop)) {
                s = tm_errf(err, TM_ERR_INPUT, "checkpoint: choice %u: truncated logprobs", i);
                break;
            }
            if (ntop > TM_SAMPLER_MAX_TOP_LOGPROBS) {
                s = tm_errf(err, TM_ERR_INPUT, "checkpoint: choice %u: %u top logprobs", i, ntop);
                break;
            }
            sr->n_top = (int32_t)ntop;
            for (uint32_t k = 0; k < ntop; k++) {
                uint32_t id;
                if (!rd_u32(&r, &id) || !rd_f32(&r, &sr->top[k].logprob) || id > INT32_MAX) {
                    s = tm_errf(err, TM_ERR_INPUT, "checkpoint: choice %u: bad top logprob", i);
                    break;
                }
                sr->top[k].id = (int32_t)id;
            }
        }
    }
    if (!s && r.left) s = tm_errf(err, TM_ERR_INPUT, "checkpoint: %zu bytes after the last choice", r.left);
    if (s) tm_ckpt_clear(out);
    return s;
}
