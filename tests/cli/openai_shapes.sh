#!/usr/bin/env bash
# openai_shapes.sh — every output and error line against the OpenAI shapes.
# Runs chat and completions jobs on two models: mistral-tok-mini (the test
# data's SentencePiece tokenizer with byte fallback, chat through the
# built-in mistral template) and the demo model (byte-level BPE, 259 tokens:
# random text full of partial UTF-8 characters, and EOS often). Requests:
# logprobs off and on with top_logprobs 0/1/5 (completions logprobs 0/1/5),
# n>1, a stop string and a stop token id (taken from a first pass with the
# same seed, so they are sure to occur), EOS, and a request that fails.
# Every line is validated with python3-jsonschema against
# schemas/openai_batch_output_line.schema.json and the body against
# openai_chat_completion / openai_completion .schema.json (and with
# openai-python's own models when that package happens to be installed);
# then the logprobs invariants of docs/output.md: joined "bytes" rebuild the
# content (up to the stop string or stop token), joined tokens == content
# where the content is valid UTF-8 without special tokens (SentencePiece
# tokens keep their leading space), text_offset counts characters,
# completions top_logprobs hold the sampled token and up to k+1 entries with
# no two tokens merged, stop_reason is the stop string / token id / null.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
TD=${TOKENMILL_TESTDATA:-../shared/testdata}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
if [ ! -f "$TD/models/mistral-tok-mini/tokenizer.json" ]; then
  echo "SKIP: test data not found in $TD (set TOKENMILL_TESTDATA)"; exit 77
fi
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
python3 -c 'import jsonschema' 2>/dev/null || { echo "SKIP: python3-jsonschema not installed (scripts/install-deps.sh)"; exit 77; }
T=${OPENAI_SHAPES_KEEP:-$(mktemp -d)}; [ -n "${OPENAI_SHAPES_KEEP:-}" ] || trap 'rm -rf "$T"' EXIT; mkdir -p "$T"
MI="$TD/models/mistral-tok-mini"
"$BIN" demo --dir "$T/demo" > "$T/demo.log" 2>&1 || { cat "$T/demo.log"; exit 1; }
DM="$T/demo/model"

# pass 1: the jobs without stops (requests named p1-*), then pass 2 adds a
# stop string / stop token id found in pass 1's text (same seed, same draws).
jobs() { # $1 model name, $2 pass, $3 pass-1 output (pass 2)
  python3 - "$1" "$2" "${3:-}" <<'PY'
import json, sys
model, pas, prev = sys.argv[1], sys.argv[2], sys.argv[3]
chat_url, cmpl_url = "/v1/chat/completions", "/v1/completions"
msgs = [{"role": "user", "content": "Write one line about the sea, please."}]
def line(cid, url, body):
    body = dict(body, model=model, seed=1234, return_token_ids=True)
    print(json.dumps({"custom_id": cid, "method": "POST", "url": url, "body": body}))
if pas == "1":
    for k in (None, 0, 1, 5):
        b = {"messages": msgs, "max_tokens": 24}
        if k is not None: b.update(logprobs=True, top_logprobs=k)
        line(f"chat-k{k}", chat_url, b)
        c = {"prompt": "The quick brown fox", "max_tokens": 24}
        if k is not None: c["logprobs"] = k
        line(f"cmpl-k{k}", cmpl_url, c)
    line("chat-n3", chat_url, {"messages": msgs, "max_tokens": 40, "n": 3, "logprobs": True, "top_logprobs": 2})
    line("cmpl-n3", cmpl_url, {"prompt": "Once upon", "max_tokens": 40, "n": 3, "logprobs": 2})
    line("cmpl-long", cmpl_url, {"prompt": "x " * 700, "max_tokens": 8})      # over --max-model-len: fails
    for i in range(4): # long samples: EOS on the byte-level demo model
        line(f"eos-{i}", cmpl_url, {"prompt": f"{i}", "max_tokens": 300, "n": 4, "logprobs": 5})
else:
    for o in map(json.loads, open(prev)):
        cid = o["custom_id"]
        if not cid.startswith(("chat-k", "cmpl-k")) or o["response"] is None: continue
        b = o["response"]["body"]
        ch = b["choices"][0]
        text = ch["message"]["content"] if "message" in ch else ch["text"]
        ids = ch["token_ids"]
        url = chat_url if "message" in ch else cmpl_url
        base = {"max_tokens": 24}
        base.update({"messages": msgs} if url == chat_url else {"prompt": "The quick brown fox"})
        k = cid.split("-k")[1]
        if k != "None":
            base.update({"logprobs": True, "top_logprobs": int(k)} if url == chat_url else {"logprobs": int(k)})
        # a stop string: 3 characters from the middle of the text, clean ones
        for s in range(len(text) // 3, len(text) - 3):
            cand = text[s:s + 3]
            if "\ufffd" not in cand and cand.strip() and text.find(cand) == s:
                line(cid + "-stop", url, dict(base, stop=[cand, "\u00e9\u00e9\u00e9\u00e9"]))
                break
        if len(ids) > 6 and ids[5] not in ids[:5]:
            line(cid + "-stopid", url, dict(base, stop_token_ids=[ids[5]]))
PY
}

run_model() { # $1 dir, $2 name, $3.. run options
  local dir=$1 name=$2; shift 2
  export TOKENMILL_DB="$T/$name.db"
  jobs "$name" 1 > "$T/$name.p1.jsonl"
  J1=$("$BIN" submit "$T/$name.p1.jsonl" --mixed-endpoints --name "$name-1")
  "$BIN" run --model "$dir" --max-model-len 512 --threads 2 --quiet "$@"
  "$BIN" results "$J1" -o "$T/$name.out1.jsonl"
  "$BIN" results "$J1" --errors -o "$T/$name.err1.jsonl"
  jobs "$name" 2 "$T/$name.out1.jsonl" > "$T/$name.p2.jsonl"
  J2=$("$BIN" submit "$T/$name.p2.jsonl" --mixed-endpoints --name "$name-2")
  "$BIN" run --model "$dir" --max-model-len 512 --threads 2 --quiet "$@"
  "$BIN" results "$J2" -o "$T/$name.out2.jsonl"
  "$BIN" results "$J2" --errors -o "$T/$name.err2.jsonl"
}
run_model "$MI" mistral-tok-mini --chat-template mistral
run_model "$DM" model

python3 "$SRC/tests/cli/lib/openai_shapes_check.py" "$SRC/schemas" "$TD/models/mistral-tok-mini" "$DM" "$T"
