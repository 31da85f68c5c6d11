#!/usr/bin/env bash
# refused_fields.sh — every body field tokenmill refuses (docs/requests.md)
# is refused at submit, never silently ignored. Table-driven: each case is a
# job of two lines whose second line carries the field; submit must exit 65,
# print "FILE:2: FIELD: WHAT" and leave the database's content unchanged
# (every row of every table; the file's bytes may change: a slow submit
# commits chunks of a hidden 'validating' job before it rejects). Then the
# no-op values of the same fields, the ignored fields and the honoured new
# fields are accepted, and --allow-unknown-fields accepts unknown fields
# (that it still refuses the refused ones: tests/unit/test_validate_fields.c).
set -euo pipefail
: "${TOKENMILL_BIN:?set by ctest}"
for c in python3; do
  command -v "$c" >/dev/null || { echo "skipped: $c is not installed"; exit 77; }
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
export TOKENMILL_DB="$T/q.db"
tm() { "$TOKENMILL_BIN" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
dbstate() { # a hash of every row of every table (not sqlite_sequence: ids of removed rows)
  python3 - "$TOKENMILL_DB" <<'PY'
import hashlib, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
h = hashlib.sha256()
for (t,) in c.execute("select name from sqlite_master where type='table' and name not like 'sqlite_%' order by name"):
    h.update(t.encode())
    for row in sorted(repr(r) for r in c.execute('select * from "%s"' % t)):
        h.update(row.encode())
print(h.hexdigest())
PY
}

# a database with one job in it, so "untouched" is checked against real content
printf '%s\n' '{"custom_id":"a","method":"POST","url":"/v1/completions","body":{"prompt":"hi","max_tokens":2}}' > seed.jsonl
tm submit seed.jsonl --name seed >/dev/null

# Cases: endpoint (chat|comp) TAB extra body JSON (an object's inner members) TAB field TAB message fragment
cat > cases.tsv <<'EOF'
comp	"suffix":"tail"	body.suffix	not supported (text after the insertion point)
comp	"best_of":3	body.best_of	not supported yet (returning the best of several candidates)
comp	"best_of":2,"n":3	body.best_of	must be at least n
comp	"echo":true	body.echo	not supported (echoing the prompt)
chat	"echo":true	body.echo	not supported (echoing the prompt)
chat	"stream":true	body.stream	not supported (batch jobs do not stream)
chat	"response_format":{"type":"json_object"}	body.response_format	not supported yet (structured output)
comp	"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}	body.response_format	not supported yet (structured output)
chat	"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]	body.tools	not supported yet (structured output)
chat	"tool_choice":"required"	body.tool_choice	not supported yet (structured output)
chat	"tool_choice":{"type":"function","function":{"name":"f"}}	body.tool_choice	not supported yet (structured output)
chat	"functions":[{"name":"f","parameters":{}}]	body.functions	not supported yet (structured output)
chat	"function_call":{"name":"f"}	body.function_call	not supported yet (structured output)
chat	"modalities":["text","audio"]	body.modalities	not supported (text output only)
chat	"audio":{"voice":"alloy","format":"wav"}	body.audio	not supported (audio output)
chat	"prediction":{"type":"content","content":"x"}	body.prediction	not supported (predicted outputs)
chat	"web_search_options":{}	body.web_search_options	not supported (web search)
chat	"reasoning_effort":"low"	body.reasoning_effort	not supported (OpenAI reasoning models
chat	"verbosity":"low"	body.verbosity	not supported (OpenAI reasoning models)
chat	"guided_json":{"type":"object"}	body.guided_json	not supported yet (structured output)
comp	"guided_regex":"a+"	body.guided_regex	not supported yet (structured output)
chat	"guided_choice":["a","b"]	body.guided_choice	not supported yet (structured output)
chat	"guided_grammar":"root ::= \"a\""	body.guided_grammar	not supported yet (structured output)
chat	"guided_decoding_backend":"xgrammar"	body.guided_decoding_backend	not supported yet (structured output)
chat	"guided_whitespace_pattern":" *"	body.guided_whitespace_pattern	not supported yet (structured output)
chat	"structured_outputs":{"json":{}}	body.structured_outputs	not supported yet (structured output)
comp	"structural_tag":"{}"	body.structural_tag	not supported yet (structured output)
chat	"skip_special_tokens":false	body.skip_special_tokens	not supported (special tokens are always left out of the text)
comp	"include_stop_str_in_output":true	body.include_stop_str_in_output	not supported (the stop string is never part of the text)
comp	"use_beam_search":true	body.use_beam_search	not supported (beam search)
chat	"return_tokens_as_token_ids":true	body.return_tokens_as_token_ids	not supported (tokens as token ids in logprobs)
chat	"include_reasoning":false	body.include_reasoning	not supported (reasoning is always returned)
comp	"truncate_prompt_tokens":10	body.truncate_prompt_tokens	not supported (prompt truncation)
comp	"prompt_logprobs":1	body.prompt_logprobs	not supported (prompt logprobs)
chat	"allowed_token_ids":[1,2]	body.allowed_token_ids	not supported (use logit_bias)
chat	"bad_words":["x"]	body.bad_words	not supported (use logit_bias or stop)
comp	"logits_processors":["x"]	body.logits_processors	not supported (custom logits processors)
comp	"vllm_xargs":{"a":1}	body.vllm_xargs	not supported (custom extension arguments)
chat	"documents":[{"title":"t","text":"x"}]	body.documents	not supported (documents for the chat template)
chat	"chat_template":"{{ messages }}"	body.chat_template	not supported (a per-request chat template
chat	"mm_processor_kwargs":{}	body.mm_processor_kwargs	not supported (multimodal input)
chat	"media_io_kwargs":{}	body.media_io_kwargs	not supported (multimodal input)
comp	"prompt_embeds":"AAAA"	body.prompt_embeds	not supported (prompt embeddings)
chat	"frobnicate":1	body.frobnicate	unknown field, not supported
comp	"messages":[{"role":"user","content":"x"}]	body.messages	not a field of /v1/completions
chat	"prompt":"x"	body.prompt	not a field of /v1/chat/completions
comp	"top_logprobs":2	body.top_logprobs	not a field of /v1/completions
chat	"logit_bias":{"abc":5}	body.logit_bias["abc"]	the key must be a token id
chat	"logit_bias":{"012":5}	body.logit_bias["012"]	the key must be a token id
comp	"logit_bias":{"12":101}	body.logit_bias["12"]	must be a number in [-100, 100], got 101
comp	"logit_bias":[1]	body.logit_bias	must be an object
comp	"min_tokens":-1	body.min_tokens	must be an integer from 0
comp	"min_tokens":5,"max_tokens":4	body.min_tokens	must be at most max_tokens (4)
chat	"chat_template_kwargs":{"messages":[]}	body.chat_template_kwargs	must not set 'messages'
chat	"chat_template_kwargs":"x"	body.chat_template_kwargs	must be an object
chat	"add_generation_prompt":"yes"	body.add_generation_prompt	must be a boolean
chat	"continue_final_message":true,"add_generation_prompt":true	body.continue_final_message	cannot be true together
MSG	[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x/y.png"}}]}]	body.messages[0].content[0].type	not supported (only text content is supported; got part type "image_url")
MSG	[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"","format":"wav"}}]}]	body.messages[0].content[0].type	not supported (only text content is supported; got part type "input_audio")
MSG	[{"role":"user","content":"x"},{"role":"assistant","content":null,"function_call":{"name":"f","arguments":"{}"}}]	body.messages[1].function_call	not supported (deprecated; send tool_calls)
MSG	[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function"}]}]	body.messages[1].tool_calls[0]	must have "function"
MSG	[{"role":"user","content":"x","tool_calls":[]}]	body.messages[0].tool_calls	only an assistant message has tool_calls
EOF

line() { # line ENDPOINT EXTRA -> a request line
  case "$1" in
    chat) printf '{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"hi"}],%s}}\n' "$2" ;;
    comp) printf '{"custom_id":"x","method":"POST","url":"/v1/completions","body":{"prompt":"hi",%s}}\n' "$2" ;;
    MSG)  printf '{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{"messages":%s}}\n' "$2" ;;
  esac
}

before=$(dbstate)
n=0
while IFS=$'\t' read -r ep extra field what; do
  n=$((n + 1))
  { printf '%s\n' '{"custom_id":"ok","method":"POST","url":"/v1/completions","body":{"prompt":"hi"}}'; line "$ep" "$extra"; } > "case$n.jsonl"
  set +e; tm submit "case$n.jsonl" >out.txt 2>err.txt; rc=$?; set -e
  [ "$rc" = 65 ] || { cat out.txt err.txt >&2; fail "case $n ($field): exit $rc, want 65"; }
  grep -qF "case$n.jsonl:2: $field: $what" err.txt || { cat err.txt >&2; fail "case $n: no 'case$n.jsonl:2: $field: $what'"; }
  [ "$(dbstate)" = "$before" ] || fail "case $n ($field): the database changed"
done < cases.tsv
[ "$n" -ge 60 ] || fail "only $n cases read"
[ "$(dbstate)" = "$before" ] || fail "the database changed"

# accepted: the no-op values, ignored fields, honoured new fields, the message forms
{
  line chat '"response_format":{"type":"text"},"tool_choice":"none","tools":[],"parallel_tool_calls":false,"modalities":["text"],"stream":false,"stream_options":{"include_usage":true},"echo":false,"skip_special_tokens":true,"include_stop_str_in_output":false,"use_beam_search":false,"include_reasoning":true,"function_call":"none"' | sed 's/"x"/"c1"/'
  line comp '"suffix":"","best_of":2,"n":2,"user":"u","metadata":{"k":"v"},"service_tier":"auto","prompt_cache_key":"k","safety_identifier":"s","priority":3,"request_id":"r","cache_salt":"s","kv_transfer_params":{},"length_penalty":1.0,"spaces_between_special_tokens":true,"add_special_tokens":false' | sed 's/"x"/"c2"/'
  line chat '"store":true,"logit_bias":{"0":-100,"17":100,"2147483647":0.5},"min_tokens":3,"max_tokens":5,"chat_template_kwargs":{"enable_thinking":false},"add_generation_prompt":true,"continue_final_message":false,"ignore_eos":false' | sed 's/"x"/"c3"/'
  line MSG '[{"role":"developer","content":"be brief"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},{"role":"tool","tool_call_id":"c","content":"42"},{"role":"assistant","content":"It is","name":"bot"}],"continue_final_message":true,"add_generation_prompt":false' | sed 's/"x"/"c4"/'
  line comp '"unknown_thing":null' | sed 's/"x"/"c5"/'
} > ok.jsonl
tm submit --mixed-endpoints ok.jsonl >out.txt 2>err.txt || { cat err.txt >&2; fail "the accepted forms were refused"; }

# --allow-unknown-fields: unknown fields (and the other endpoint's) are accepted and ignored
line chat '"frobnicate":1,"prompt":"x"' > unknown.jsonl
set +e; tm submit unknown.jsonl >/dev/null 2>err.txt; rc=$?; set -e
[ "$rc" = 65 ] || fail "unknown fields accepted without --allow-unknown-fields"
tm submit --allow-unknown-fields unknown.jsonl >/dev/null 2>err.txt || { cat err.txt >&2; fail "--allow-unknown-fields refused"; }
echo "ok: $n refusal cases"
