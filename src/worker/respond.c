/* respond.c — what a finished request's response carries beside its text:
 * the logprobs as output/'s plain records (each token's bytes at its
 * position), each choice's stop_reason, and the reasoning split out of a
 * chat choice (docs/output.md). Runs once per request at finish. */
#include <stdlib.h>
#include <string.h>

#include "worker/worker_int.h"

void tm_worker_extras_clear(tm_worker_extras *l)
{
    free(l->lp);
    free(l->alt);
    tm_buf_free(&l->bytes);
    tm_detok_destroy(l->pieces);
}

/* The logprobs of a finished request as output/'s plain records: one
 * allocation of records and one byte arena per request (at finish, not per
 * step). Each token, sampled or alternative, gets the bytes it adds to the
 * choice's text after the tokens before it (tm_detok_piece, skipping special
 * tokens as the text does: a special token adds nothing and shows its token
 * string); no tokenizer or a failed decode: bytes NULL ("token_id:<id>").
 *
 * lp_token: token id after prev[0..n_prev) into the arena. t->bytes is set
 * to "" as a mark ("in the arena, pointer set later": the arena may still
 * move) or NULL. */
static tm_status lp_token(const worker *w, tm_worker_extras *l, const int32_t *prev, int32_t n_prev, int32_t id,
                          float logprob, tm_response_token *t)
{
    *t = (tm_response_token){.id = id, .logprob = logprob};
    const char *s;
    size_t len;
    tm_err derr;
    if (!l->pieces || tm_detok_piece(l->pieces, prev, (size_t)n_prev, id, &s, &len, &derr) != TM_OK) return TM_OK;
    if (!len && tm_tokenizer_is_special(w->tok, id)) t->special = tm_tokenizer_token_str(w->tok, id);
    t->bytes = "";
    t->len = len;
    return tm_buf_append(&l->bytes, s, len);
}

/* Point every marked token at its bytes, in the order lp_token filled them. */
static void lp_fix(tm_worker_extras *l, int64_t n_lp)
{
    const char *base = l->bytes.data ? l->bytes.data : "";
    size_t pos = 0;
    for (int64_t i = 0; i < n_lp; i++) {
        tm_response_logprob *e = &l->lp[i];
        if (e->tok.bytes) { e->tok.bytes = base + pos; pos += e->tok.len; }
        for (int32_t k = 0; k < e->n_top; k++) {
            tm_response_token *t = &l->alt[(e->top - l->alt) + k];
            if (t->bytes) { t->bytes = base + pos; pos += t->len; }
        }
    }
}

/* Fill l for r's choices (ch[i].token_ids / n_tokens set) and point
 * ch[i].logprobs at them; nothing when the choices kept no samples. */
static tm_status lp_build(const worker *w, const wreq *r, tm_response_choice *ch, tm_worker_extras *l, tm_err *err)
{
    int32_t keep = r->prep.params.top_logprobs;
    int64_t n_lp = 0, n_alt = 0;
    for (int32_t i = 0; i < r->prep.n; i++) {
        const wchoice *c = &r->choices[i];
        if (!c->samples) return TM_OK;
        if (c->n_samples < ch[i].n_tokens)
            return tm_errf(err, TM_ERR_INTERNAL, "logprobs: %d samples for %d tokens", c->n_samples, ch[i].n_tokens);
        n_lp += ch[i].n_tokens;
        for (int32_t t = 0; t < ch[i].n_tokens; t++) n_alt += c->samples[t].n_top < keep ? c->samples[t].n_top : keep;
    }
    l->lp = calloc(n_lp ? (size_t)n_lp : 1, sizeof *l->lp);
    l->alt = calloc(n_alt ? (size_t)n_alt : 1, sizeof *l->alt);
    if (!l->lp || !l->alt) return tm_errf(err, TM_ERR_NOMEM, "out of memory");
    tm_status st = w->tok ? tm_detok_create(w->tok, 1, &l->pieces, err) : TM_OK;
    if (st) return st;
    tm_response_logprob *e = l->lp;
    tm_response_token *alt = l->alt;
    for (int32_t i = 0; i < r->prep.n && !st; i++) {
        ch[i].logprobs = e;
        const int32_t *ids = ch[i].token_ids;
        for (int32_t t = 0; t < ch[i].n_tokens && !st; t++, e++) {
            const tm_sample_result *s = &r->choices[i].samples[t];
            st = lp_token(w, l, ids, t, ids[t], s->logprob, &e->tok);
            e->top = alt;
            for (int32_t k = 0; k < s->n_top && k < keep && !st; k++, e->n_top++)
                st = lp_token(w, l, ids, t, s->top[k].id, s->top[k].logprob, alt++);
        }
    }
    if (st) return tm_errf(err, st, "out of memory");
    lp_fix(l, n_lp);
    return TM_OK;
}

/* choices[].stop_reason as vLLM: the stop string that matched, the stop
 * token id, or null (length, or the tokenizer's own EOS token: vLLM lists
 * generation_config's other EOS ids as stop token ids). */
static void choice_stop_reason(const worker *w, const wreq *r, const wchoice *c, tm_response_choice *ch)
{
    if (c->finish != TM_FINISH_STOP) return;
    tm_stop_result sr;
    tm_stop_state(c->stop, &sr);
    if (sr.matched && sr.which >= 0 && sr.which < r->prep.params.n_stop) {
        ch->stop_kind = TM_RESPONSE_STOP_STRING;
        ch->stop_str = r->prep.params.stop[sr.which];
        ch->stop_len = r->prep.params.stop_len[sr.which];
        return;
    }
    if (!ch->n_tokens) return;
    int32_t last = ch->token_ids[ch->n_tokens - 1];
    const tm_model_config *mc = tm_model_config_of(w->model);
    int32_t eos = w->tok ? tm_tokenizer_eos_id(w->tok) : -1;
    if (eos < 0 && mc->n_eos > 0) eos = mc->eos_token_ids[0];
    if (last == eos) return;
    ch->stop_kind = TM_RESPONSE_STOP_TOKEN;
    ch->stop_token = last;
}

/* The reasoning format of this worker's chat template (vLLM's parser of the
 * family): Qwen3 and DeepSeek-R1 templates, recognised by name or text. */
static tm_reasoning_parser reasoning_parser(const worker *w)
{
    if (!w->chat) return TM_REASONING_NONE;
    const char *name = tm_chat_template_name(w->chat);
    if (tm_chat_template_is_jinja(w->chat)) {
        const tm_chat_template *b = NULL;
        tm_err derr;
        name = w->tok && tm_chat_template_detect(tm_tokenizer_chat_template(w->tok), &b, &derr) == TM_OK
                   ? tm_chat_template_name(b) : NULL;
    }
    if (!name) return TM_REASONING_NONE;
    if (!strcmp(name, "qwen3") || !strcmp(name, "qwen")) return TM_REASONING_QWEN3;
    if (!strncmp(name, "deepseek-r1", 11)) return TM_REASONING_DEEPSEEK_R1;
    return TM_REASONING_NONE;
}

/* Split a chat choice's reasoning out of its content; returns the tokens
 * whose text begins inside the reasoning (usage's reasoning_tokens), found
 * by the bytes each token adds (tm_detok_piece). */
static int64_t split_reasoning(const worker *w, tm_reasoning_parser p, tm_response_choice *ch, tm_detok **pd)
{
    const char *text = ch->text, *reason, *content;
    size_t rlen, clen;
    tm_response_split_reasoning(p, text, ch->text_len, &reason, &rlen, &content, &clen);
    if (!reason) return 0;
    ch->reasoning = reason;
    ch->reasoning_len = rlen;
    ch->text = content ? content : "";
    ch->text_len = content ? clen : 0;
    ch->text_null = !content;
    size_t from = (size_t)(reason - text), to = from + rlen, pos = 0;
    int64_t n = 0;
    tm_err derr;
    if (!*pd && tm_detok_create(w->tok, 1, pd, &derr)) return 0;
    for (int32_t t = 0; t < ch->n_tokens && pos < to; t++) {
        const char *s;
        size_t len;
        if (tm_detok_piece(*pd, ch->token_ids, (size_t)t, ch->token_ids[t], &s, &len, &derr)) break;
        if (len && pos >= from) n++;
        pos += len;
    }
    return n;
}

tm_status tm_worker_response_extras(const worker *w, const wreq *r, tm_response_choice *ch, tm_worker_extras *x,
                                    int64_t *reasoning_tokens, tm_err *err)
{
    *reasoning_tokens = 0;
    tm_status st = r->prep.params.logprobs ? lp_build(w, r, ch, x, err) : TM_OK;
    tm_reasoning_parser rp = r->prep.endpoint == TM_ENDPOINT_CHAT && w->tok ? reasoning_parser(w) : TM_REASONING_NONE;
    tm_detok *pd = NULL;
    for (int32_t i = 0; i < r->prep.n && !st; i++) {
        choice_stop_reason(w, r, &r->choices[i], &ch[i]);
        if (rp) *reasoning_tokens += split_reasoning(w, rp, &ch[i], &pd);
    }
    tm_detok_destroy(pd);
    return st;
}
