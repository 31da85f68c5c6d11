/* stop.c — streaming stop-string matcher (one KMP automaton per string) and
 * the per-token finish check. Semantics are documented in stop.h. The KMP
 * state of a string is the length of its longest prefix that is a suffix of
 * the text so far, so the hold-back is simply the largest state.
 */
#include "engine/stop.h"

#include <stdlib.h>
#include <string.h>

struct tm_stop {
    int n;
    uint16_t len[TM_STOP_MAX];
    uint16_t state[TM_STOP_MAX];
    uint16_t fail[TM_STOP_MAX][TM_STOP_MAX_BYTES]; /* KMP prefix function */
    unsigned char pat[TM_STOP_MAX][TM_STOP_MAX_BYTES];
    uint64_t total;
    uint64_t safe;
    uint64_t cut;
    int matched;
    int32_t which;
    int32_t min_tokens;  /* stop strings match only after this many tokens */
    int64_t n_tokens;    /* tokens noted (tm_stop_note_token) */
};

const char *tm_finish_reason_str(tm_finish_reason r)
{
    switch (r) {
    case TM_FINISH_STOP: return "stop";
    case TM_FINISH_LENGTH: return "length";
    default: return NULL;
    }
}

tm_finish_reason tm_stop_check_token(const tm_sampling_params *p, const int32_t *eos_ids,
                                     size_t n_eos, int32_t token, int64_t n_generated)
{
    if (n_generated <= p->min_tokens) /* vLLM: no stop before min_tokens (max_tokens >= min_tokens) */
        return p->max_tokens > 0 && n_generated >= p->max_tokens ? TM_FINISH_LENGTH : TM_FINISH_NONE;
    if (!p->ignore_eos && eos_ids) {
        for (size_t i = 0; i < n_eos; i++)
            if (eos_ids[i] == token) return TM_FINISH_STOP;
    }
    int32_t ns = p->n_stop_ids;
    if (ns > TM_SAMPLER_MAX_STOP_IDS) ns = TM_SAMPLER_MAX_STOP_IDS;
    for (int32_t i = 0; i < ns; i++)
        if (p->stop_ids[i] == token) return TM_FINISH_STOP;
    if (p->max_tokens > 0 && n_generated >= p->max_tokens) return TM_FINISH_LENGTH;
    return TM_FINISH_NONE;
}

static void build_fail(const unsigned char *pat, uint16_t len, uint16_t *fail)
{
    fail[0] = 0;
    uint16_t k = 0;
    for (uint16_t j = 1; j < len; j++) {
        while (k > 0 && pat[j] != pat[k]) k = fail[k - 1];
        if (pat[j] == pat[k]) k++;
        fail[j] = k;
    }
}

tm_status tm_stop_create(const char *const *stops, const size_t *lens, int n,
                         tm_stop **out, tm_err *err)
{
    *out = NULL;
    if (n < 0 || n > TM_STOP_MAX)
        return tm_errf(err, TM_ERR_INPUT, "stop: at most %d stop strings, got %d", TM_STOP_MAX, n);
    if (n > 0 && (!stops || !lens))
        return tm_errf(err, TM_ERR_INPUT, "stop: missing strings");
    for (int i = 0; i < n; i++) {
        if (lens[i] == 0 || !stops[i])
            return tm_errf(err, TM_ERR_INPUT, "stop[%d]: must not be empty", i);
        if (lens[i] > TM_STOP_MAX_BYTES)
            return tm_errf(err, TM_ERR_INPUT, "stop[%d]: %zu bytes, at most %d allowed", i,
                           lens[i], TM_STOP_MAX_BYTES);
    }
    tm_stop *s = calloc(1, sizeof *s);
    if (!s) return tm_errf(err, TM_ERR_NOMEM, "stop: out of memory");
    s->n = n;
    for (int i = 0; i < n; i++) {
        s->len[i] = (uint16_t)lens[i];
        memcpy(s->pat[i], stops[i], lens[i]);
        build_fail(s->pat[i], s->len[i], s->fail[i]);
    }
    tm_stop_reset(s);
    *out = s;
    return TM_OK;
}

tm_status tm_stop_create_from_params(const tm_sampling_params *p, tm_stop **out, tm_err *err)
{
    const char *strs[TM_STOP_MAX];
    size_t lens[TM_STOP_MAX];
    int n = p->n_stop;
    if (n < 0 || n > TM_STOP_MAX) {
        *out = NULL;
        return tm_errf(err, TM_ERR_INPUT, "stop: at most %d stop strings, got %d", TM_STOP_MAX, n);
    }
    for (int i = 0; i < n; i++) {
        strs[i] = p->stop[i];
        lens[i] = p->stop_len[i];
    }
    tm_status st = tm_stop_create(strs, lens, n, out, err);
    if (!st) (*out)->min_tokens = p->min_tokens > 0 ? p->min_tokens : 0;
    return st;
}

void tm_stop_note_token(tm_stop *s)
{
    if (s) s->n_tokens++;
}

void tm_stop_destroy(tm_stop *s)
{
    free(s);
}

void tm_stop_reset(tm_stop *s)
{
    memset(s->state, 0, sizeof s->state);
    s->total = 0;
    s->safe = 0;
    s->cut = 0;
    s->matched = 0;
    s->which = -1;
    s->n_tokens = 0;
}

void tm_stop_state(const tm_stop *s, tm_stop_result *r)
{
    r->matched = s->matched;
    r->which = s->which;
    r->total = s->total;
    r->cut = s->matched ? s->cut : 0;
    r->safe = s->safe;
    r->hold = (uint32_t)(s->total - s->safe);
}

int tm_stop_feed(tm_stop *s, const char *piece, size_t len, tm_stop_result *r)
{
    if (!s->matched && s->n > 0) {
        const unsigned char *b = (const unsigned char *)piece;
        for (size_t k = 0; k < len; k++) {
            unsigned char c = b[k];
            uint64_t end = s->total + 1; /* offset just past this byte */
            int best = -1;
            for (int i = 0; i < s->n; i++) {
                uint16_t q = s->state[i];
                const unsigned char *pat = s->pat[i];
                while (q > 0 && pat[q] != c) q = s->fail[i][q - 1];
                if (pat[q] == c) q++;
                if (q == s->len[i]) {
                    /* longest completed string starts earliest */
                    if (best < 0 || s->len[i] > s->len[best]) best = i;
                    q = s->fail[i][q - 1];
                }
                s->state[i] = q;
            }
            s->total = end;
            if (best >= 0 && (s->min_tokens == 0 || s->n_tokens > s->min_tokens)) {
                s->matched = 1;
                s->which = best;
                s->cut = end - s->len[best];
                s->safe = s->cut;
                break;
            }
        }
        if (!s->matched) {
            uint16_t hold = 0;
            for (int i = 0; i < s->n; i++)
                if (s->state[i] > hold) hold = s->state[i];
            uint64_t safe = s->total - hold;
            if (safe > s->safe) s->safe = safe;
        }
    } else if (!s->matched) {
        s->total += len;
        s->safe = s->total;
    }
    if (r) tm_stop_state(s, r);
    return s->matched;
}
