#!/usr/bin/env bash
# fields_run.sh — logit_bias and min_tokens honoured end to end (submit ->
# run -> results) on the test data's mistral-tok-mini (text in, text out,
# eos id 2), greedy:
#  - logit_bias {"272": 100} forces token 272 at every step;
#  - logit_bias -100 on the greedy run's first token bans it;
#  - logit_bias {"2": 100} forces eos: the choice stops at once ("stop");
#    with min_tokens 3 eos is banned for 3 tokens and then forced, so the
#    choice has exactly 3 tokens before eos and finishes "stop";
#  - stop_token_ids [first greedy token] stops at once; with min_tokens 3 it
#    cannot stop before 3 tokens.
#  - a logit_bias key outside the model's vocabulary fails that request alone.
#  - chat (run --chat-template chatml, the model has no template): a developer
#    message runs as a system message (it used to fail every such request).
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
TD=${TOKENMILL_TESTDATA:-../shared/testdata}
M="$TD/models/mistral-tok-mini"
if [ ! -f "$M/tokenizer.json" ]; then
  echo "SKIP: test data not found in $TD (set TOKENMILL_TESTDATA)"; exit 77
fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
export TOKENMILL_DB="$T/q.db"
run_job() { # run_job FILE -> $T/out.jsonl, $T/err.jsonl
  local job
  job=$("$BIN" submit "$1")
  "$BIN" run --model "$M" --max-model-len 128 --quiet
  "$BIN" results "$job" -o "$T/out.jsonl"
  "$BIN" results "$job" --errors -o "$T/err.jsonl"
}
req() { # req ID EXTRA
  printf '{"custom_id":"%s","method":"POST","url":"/v1/completions","body":{"prompt":"The capital of France is","max_tokens":6,"temperature":0,"return_token_ids":true%s}}\n' "$1" "$2"
}

# 1. the plain greedy run gives the reference first token
req base '' > "$T/a.jsonl"
run_job "$T/a.jsonl"
FIRST=$(python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); print(o["response"]["body"]["choices"][0]["token_ids"][0])' "$T/out.jsonl")
[ "$FIRST" != 2 ] || { echo "FAIL: the greedy first token is eos; pick another prompt"; exit 1; }

# 2. the fields
{
  req force ',"logit_bias":{"272":100}'
  req ban ",\"logit_bias\":{\"$FIRST\":-100}"
  req eos ',"logit_bias":{"2":100}'
  req eos_min ',"logit_bias":{"2":100},"min_tokens":3'
  req stopid ",\"stop_token_ids\":[$FIRST]"
  req stopid_min ",\"stop_token_ids\":[$FIRST],\"min_tokens\":3"
  req bad_key ',"logit_bias":{"32000":5}'
} > "$T/b.jsonl"
run_job "$T/b.jsonl"
python3 - "$T/out.jsonl" "$T/err.jsonl" "$FIRST" <<'PY'
import json, sys
out = {}
for line in open(sys.argv[1]):
    o = json.loads(line)
    out[o["custom_id"]] = o["response"]["body"]["choices"][0]
errs = {json.loads(l)["custom_id"]: json.loads(l) for l in open(sys.argv[2])}
first = int(sys.argv[3])
def ids(k): return out[k]["token_ids"]
assert ids("force") == [272] * 6, ids("force")
assert first not in ids("ban"), (first, ids("ban"))
assert out["eos"]["finish_reason"] == "stop" and ids("eos") in ([], [2]), out["eos"]
e = ids("eos_min")
assert out["eos_min"]["finish_reason"] == "stop", out["eos_min"]
assert len([t for t in e if t != 2]) == 3 and 2 not in e[:3], e
assert out["stopid"]["finish_reason"] == "stop" and len([t for t in ids("stopid") if t != first]) == 0, out["stopid"]
s = ids("stopid_min")
assert first not in s[:3] and len(s) >= 3, s
assert "bad_key" in errs and "bad_key" not in out, (errs.keys(), out.keys())
msg = json.dumps(errs["bad_key"])
assert "logit_bias" in msg and "vocabulary" in msg, msg
print("ok:", {k: ids(k) for k in out})
PY

# 3. chat: the developer role runs (as system), content parts are joined
printf '%s\n' '{"custom_id":"dev","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"developer","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"},{"type":"text","text":"there"}]}],"max_tokens":3,"temperature":0,"return_token_ids":true}}' \
  '{"custom_id":"sys","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi\nthere"}],"max_tokens":3,"temperature":0,"return_token_ids":true}}' > "$T/c.jsonl"
JOB=$("$BIN" submit "$T/c.jsonl")
"$BIN" run --model "$M" --chat-template chatml --max-model-len 128 --quiet
"$BIN" results "$JOB" -o "$T/out.jsonl"
python3 - "$T/out.jsonl" <<'PY'
import json, sys
b = {}
for line in open(sys.argv[1]):
    o = json.loads(line)
    assert o["error"] is None, o
    b[o["custom_id"]] = o["response"]["body"]
assert set(b) == {"dev", "sys"}, b.keys()
# the same prompt: developer = system, parts joined with "\n"
assert b["dev"]["usage"]["prompt_tokens"] == b["sys"]["usage"]["prompt_tokens"]
assert b["dev"]["choices"][0]["token_ids"] == b["sys"]["choices"][0]["token_ids"]
print("ok: developer role")
PY
