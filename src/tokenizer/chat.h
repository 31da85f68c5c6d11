/* chat.h — built-in chat templates: a conversation -> the prompt text a model expects.
 *
 * No Jinja interpreter: one C renderer per model family, reproducing the
 * family's Hugging Face chat_template byte for byte for plain-text
 * conversations (roles system/user/assistant, plus tool results where the
 * family has them). A model's template is picked by matching distinctive
 * substrings of its tokenizer_config.json "chat_template" text
 * (tm_chat_template_detect) or by name (--chat-template NAME). A
 * conversation the template cannot render is TM_ERR_INPUT, never a crash.
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
