/* sequence.c — buffers of one generation stream, sized once. */
#include "engine/sequence.h"

#include <stdlib.h>
#include <string.h>

tm_status tm_seq_init(tm_seq *s, int64_t id, const int32_t *prompt, int32_t n_prompt,
                      int32_t max_tokens, int32_t block_size, tm_err *err)
{
    memset(s, 0, sizeof *s);
    if (n_prompt < 1) return tm_errf(err, TM_ERR_INPUT, "empty prompt");
    if (max_tokens < 1) return tm_errf(err, TM_ERR_INPUT, "max_tokens must be >= 1");
    if ((int64_t)n_prompt + max_tokens > INT32_MAX / 2)
        return tm_errf(err, TM_ERR_INPUT, "prompt + max_tokens is too long");
    if (block_size < 1) return tm_errf(err, TM_ERR_INTERNAL, "block size %d", block_size);
    s->id = id;
    s->cap_tokens = n_prompt + max_tokens;
    s->cap_blocks = (s->cap_tokens + block_size - 1) / block_size;
    s->tokens = malloc((size_t)s->cap_tokens * sizeof *s->tokens);
    s->blocks = malloc((size_t)s->cap_blocks * sizeof *s->blocks);
    if (!s->tokens || !s->blocks) {
        tm_seq_free(s);
        return tm_errf(err, TM_ERR_NOMEM, "out of memory for a sequence of %d tokens", s->cap_tokens);
    }
    memcpy(s->tokens, prompt, (size_t)n_prompt * sizeof *prompt);
    s->n_tokens = s->n_prompt = n_prompt;
    s->state = TM_SEQ_WAITING;
    return TM_OK;
}

void tm_seq_free(tm_seq *s)
{
    if (!s) return;
    free(s->tokens);
    free(s->blocks);
    s->tokens = s->blocks = NULL;
    s->n_tokens = s->n_blocks = s->cap_tokens = s->cap_blocks = 0;
}
