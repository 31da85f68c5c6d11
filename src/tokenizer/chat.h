/* chat.h — chat templates: a conversation -> the prompt text a model expects.
 *
 * A model's own template: its Jinja chat template (chat_template.jinja or
 * tokenizer_config.json's chat_template, see tm_tokenizer_chat_template),
 * compiled by tm_chat_template_load and rendered by the Jinja interpreter
 * (template/jinja.h) exactly as Hugging Face transformers renders it, with
 * tools, tool calls and template kwargs (tm_chat_render_json).
 *
 * Built-ins: one C renderer per model family, reproducing the family's
 * Hugging Face chat_template byte for byte for plain-text conversations
 * (roles system/user/assistant, plus tool results where the family has
 * them); now only the named fallback (--chat-template NAME) for models that
 * have no template of their own. tm_chat_template_detect /
 * tm_chat_template_resolve (picking a built-in by the template's text) are
 * kept for existing callers. A conversation a template cannot render is
 * TM_ERR_INPUT, never a crash.
 */
#ifndef TM_CHAT_H
#define TM_CHAT_H

#include <stddef.h>
#include <jansson.h>
#include "util/buf.h"
#include "util/status.h"

/* One turn. role: "system" | "user" | "assistant" | "tool" (which ones a
 * template accepts depends on the family); content: UTF-8, NUL-terminated,
 * never NULL. */
typedef struct tm_chat_message {
    const char *role;
    const char *content;
} tm_chat_message;

/* A built-in template: a static, immutable registry entry (never freed). */
typedef struct tm_chat_template tm_chat_template;

/* Names accepted by tm_chat_template_by_name:
 *   raw         no template: the contents concatenated, nothing added
 *   llama3      Llama 3: <|start_header_id|>role<|end_header_id|>\n\n content|trim <|eot_id|>;
 *               BOS first; the assistant header is appended when
 *               add_generation_prompt (see llama3-always)
 *   llama3-always  the same, assistant header appended always (the original
 *               Llama-3 template, as in testdata/tokenizers/llama3)
 *   llama3.1    Llama 3.1/3.2/3.3 (no tools): system turn always emitted with
 *               "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
 *   qwen, qwen3 ChatML as Qwen3 renders it (<think> blocks for assistant turns
 *               after the last user query; "</think>" splits reasoning from content)
 *   qwen2.5     ChatML with Qwen2.5's default system prompt when none is given
 *   chatml      plain ChatML (<|im_start|>role\ncontent<|im_end|>\n)
 *   deepseek    DeepSeek-V3: BOS + all system prompts joined by "\n\n", then
 *               <｜User｜>... <｜Assistant｜>...<｜end▁of▁sentence｜>
 *   deepseek-r1 the same, assistant contents cut after the last "</think>" and
 *               the generation prompt "<｜Assistant｜><think>\n"
 *   deepseek-r1-nothink  as deepseek-r1, generation prompt "<｜Assistant｜>" (early R1)
 *   gemma3      <start_of_turn>user|model ... <end_of_turn>\n; the system prompt
 *               prefixes the first user turn; roles must alternate user/assistant
 *   mistral     Mistral v0.1/v0.2 (tokenizer V1): "<s> [INST] u [/INST] a</s>";
 *               an optional first system message prefixes the first user turn
 *   llama2      Llama-2-chat: "<s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nu [/INST] a </s>"
 */
const tm_chat_template *tm_chat_template_by_name(const char *name); /* NULL if unknown */
const char *tm_chat_template_name(const tm_chat_template *t);
/* Comma-separated list of every name above, for --help and error messages. */
const char *tm_chat_template_names(void);

/* Pick the built-in matching a model's Jinja chat_template text.
 * jinja_text NULL (the model has none) or unrecognised -> TM_ERR_NOTFOUND
 * with a message asking for --chat-template NAME. */
tm_status tm_chat_template_detect(const char *jinja_text, const tm_chat_template **out, tm_err *err);

/* name given (the --chat-template override): by name, unknown name -> TM_ERR_NOTFOUND
 * listing the names; else tm_chat_template_detect(jinja_text). */
tm_status tm_chat_template_resolve(const char *name, const char *jinja_text,
                                   const tm_chat_template **out, tm_err *err);

/* What a caller should use. name given (the --chat-template override): the
 * built-in NAME (unknown -> TM_ERR_NOTFOUND listing the names). Else
 * jinja_text (the model's template) compiled: a syntax error is TM_ERR_INPUT
 * "chat template line N: ...". Neither -> TM_ERR_NOTFOUND asking for
 * --chat-template NAME. *out belongs to the caller: tm_chat_template_destroy
 * (a no-op for built-ins). tm_chat_template_name of a compiled template is
 * "model". */
tm_status tm_chat_template_load(const char *name, const char *jinja_text, tm_chat_template **out, tm_err *err);
/* Compile Jinja text (len bytes) as a chat template (TM_JINJA_HF settings). */
tm_status tm_chat_template_compile(const char *jinja_text, size_t len, tm_chat_template **out, tm_err *err);
void tm_chat_template_destroy(tm_chat_template *t);
/* 1 when t renders the model's own Jinja template, 0 for a built-in. */
int tm_chat_template_is_jinja(const tm_chat_template *t);

/* Render options beyond the conversation. Zero-initialise, then set. */
typedef struct tm_chat_opts {
    int add_generation_prompt;
    const char *bos_token, *eos_token; /* tokenizer_config.json's strings (NULL: not defined) */
    const json_t *tools;               /* a JSON array of tool schemas, or NULL (the template sees none) */
    const json_t *kwargs;              /* chat_template_kwargs: a JSON object of extra template variables
                                        * (e.g. {"enable_thinking": false}), or NULL */
} tm_chat_opts;

/* Render an OpenAI-style "messages" JSON array and APPEND the prompt to out
 * (restored on failure). For a Jinja template the variables are those
 * transformers' apply_chat_template passes: messages, tools (null when
 * none), documents (null), add_generation_prompt, bos_token, eos_token, and
 * the kwargs (which may not redefine those: TM_ERR_INPUT). Messages are
 * passed as given except that content given as text parts becomes one
 * string ("\n"-joined, as tm_chat_conv_from_json does) and an assistant
 * tool call's "arguments" string holding a JSON object becomes that object
 * (as vLLM does; templates expect a mapping). A template error (including
 * raise_exception) is TM_ERR_INPUT "chat template line N: message".
 * For a built-in, the messages go through tm_chat_conv_from_json and
 * tm_chat_render; tools or kwargs are then TM_ERR_INPUT (built-ins have no
 * tool support). */
tm_status tm_chat_render_json(const tm_chat_template *t, const json_t *messages, const tm_chat_opts *opts,
                              tm_buf *out, tm_err *err);

/* Render messages[0..n) and APPEND the prompt text to out (on failure out is
 * restored to its previous length). bos_token / eos_token: the strings from
 * tokenizer_config.json (NULL = empty). The text contains the BOS string
 * where the template writes it, so encode it with add_bos = 0.
 * Errors (TM_ERR_INPUT, message names the message index): n == 0, a NULL
 * role/content, a role the template does not know, roles that do not
 * alternate where the template requires it, a system message where the
 * template forbids one. */
tm_status tm_chat_render(const tm_chat_template *t, const tm_chat_message *messages, size_t n,
                         int add_generation_prompt, const char *bos_token, const char *eos_token,
                         tm_buf *out, tm_err *err);

/* A conversation parsed from an OpenAI-style "messages" JSON array, owning
 * copies of its strings. Each element: {"role": str, "content": C} where C is
 * a string, or an array of parts {"type": "text", "text": str} (joined with
 * "\n", as vLLM does). Other keys (name, ...) are ignored. Errors
 * (TM_ERR_INPUT, "messages[i].field: what"): not an array, empty, an element
 * not an object, role missing / not a string, content null / missing / of
 * another type, a non-text part. */
typedef struct tm_chat_conv tm_chat_conv;
tm_status tm_chat_conv_from_json(const json_t *messages, tm_chat_conv **out, tm_err *err);
void tm_chat_conv_destroy(tm_chat_conv *c);
const tm_chat_message *tm_chat_conv_messages(const tm_chat_conv *c);
size_t tm_chat_conv_count(const tm_chat_conv *c);

#endif
