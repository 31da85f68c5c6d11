#!/usr/bin/env bash
# generate.sh — `tokenmill generate` end to end against the golden models.
# --ids on llama-mini (--json --logits last): last-position logits within
# 1e-4 relative of the float64 reference and greedy ids equal up to the first
# step whose reference margin is below 2e-4 * max|logit|; --prompt text on
# mistral-tok-mini: same prompt ids as the reference tokenization, top-20
# logits and greedy ids; --chat ids equal `tokenize`'s; EOS stops (seeded
# sampling); usage errors (64), bad ids (65), --device cuda without CUDA (69).
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
TD=${TOKENMILL_TESTDATA:-../shared/testdata}
if [ ! -f "$TD/models/llama-mini/golden.jsonl" ]; then
  echo "SKIP: test data not found in $TD (set TOKENMILL_TESTDATA)"; exit 77
fi
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

# 1. llama-mini, every golden line, prompt as ids
i=0
while IFS= read -r line; do
  ids=$(printf '%s' "$line" | python3 -c 'import json,sys; print(",".join(map(str, json.load(sys.stdin)["prompt_ids"])))')
  "$BIN" generate --model "$TD/models/llama-mini" --ids "$ids" -n 12 --ignore-eos --json --logits last \
    --threads 2 > "$T/out$i.json"
  printf '%s\n' "$line" > "$T/gold$i.json"
  i=$((i + 1))
done < "$TD/models/llama-mini/golden.jsonl"

# 2. mistral-tok-mini, every golden line, prompt as text
j=0
while IFS= read -r line; do
  prompt=$(printf '%s' "$line" | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["prompt"])')
  "$BIN" generate --model "$TD/models/mistral-tok-mini" --prompt "$prompt" -n 12 --ignore-eos --json \
    --logits last --threads 2 > "$T/mout$j.json"
  printf '%s\n' "$line" > "$T/mgold$j.json"
  j=$((j + 1))
done < "$TD/models/mistral-tok-mini/golden.jsonl"

python3 - "$T" "$i" "$j" <<'PY'
import json, sys
d, n_llama, n_mistral = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
TOL = 1e-4
def check(name, out, gold):
    assert out["prompt_ids"] == gold["prompt_ids"], f"{name}: prompt ids {out['prompt_ids']} != {gold['prompt_ids']}"
    ours = out["last_logits"]
    if "last_logits" in gold:
        ref = gold["last_logits"]
        assert len(ours) == len(ref), f"{name}: {len(ours)} logits, want {len(ref)}"
        err = max(abs(a - b) for a, b in zip(ours, ref)) / max(abs(b) for b in ref)
    else:
        top = gold["last_logits_top"]
        err = max(abs(ours[int(k)] - v) for k, v in top.items()) / max(abs(v) for v in top.values())
        best = max(top, key=top.get)
        assert max(range(len(ours)), key=ours.__getitem__) == int(best), f"{name}: argmax differs"
    assert err <= TOL, f"{name}: logits rel err {err:.3e} > {TOL}"
    bound = 2 * TOL * max(abs(x) for x in ours)
    checked = 0
    for k, (tok, margin) in enumerate(zip(gold["greedy_ids"], gold["greedy_margins"])):
        if margin < bound:
            break
        assert out["ids"][k] == tok, f"{name}: greedy step {k}: {out['ids'][k]} != {tok}"
        checked += 1
    assert len(out["ids"]) == 12 and out["finish_reason"] == "length", f"{name}: {out['ids']} {out['finish_reason']}"
    print(f"{name}: rel err {err:.2e}, {checked}/12 greedy steps match")
for i in range(n_llama):
    check(f"llama-mini[{i}]", json.load(open(f"{d}/out{i}.json")), json.load(open(f"{d}/gold{i}.json")))
    assert json.load(open(f"{d}/out{i}.json"))["text"] is None
for j in range(n_mistral):
    out, gold = json.load(open(f"{d}/mout{j}.json")), json.load(open(f"{d}/mgold{j}.json"))
    check(f"mistral-tok-mini[{j}]", out, gold)
    assert isinstance(out["text"], str) and out["text"], "mistral-tok-mini: no text"
assert n_llama >= 5 and n_mistral >= 5
PY

# 3. plain text output is the JSON text (streamed through the detokenizer)
"$BIN" generate --model "$TD/models/mistral-tok-mini" --prompt "Once upon a time" -n 12 --threads 2 > "$T/plain.txt"
"$BIN" generate --model "$TD/models/mistral-tok-mini" --prompt "Once upon a time" -n 12 --threads 2 --json > "$T/m.json"
python3 - "$T" <<'PY'
import json, sys
d = sys.argv[1]
plain = open(f"{d}/plain.txt", encoding="utf-8").read()
want = json.load(open(f"{d}/m.json"))["text"] + "\n"
assert plain == want, f"plain {plain!r} != json text {want!r}"
PY

# 4. --chat renders the conversation with the chat template: same ids as `tokenmill tokenize`
"$BIN" generate --model "$TD/models/mistral-tok-mini" --chat "What is 2+2?" --chat-template mistral -n 3 \
  --json > "$T/chat.json"
echo '{"messages":[{"role":"user","content":"What is 2+2?"}]}' |
  "$BIN" tokenize --model "$TD/models/mistral-tok-mini" --chat-template mistral > "$T/chat_tok.json"
python3 - "$T" <<'PY'
import json, sys
d = sys.argv[1]
g, t = json.load(open(f"{d}/chat.json")), json.load(open(f"{d}/chat_tok.json"))
assert g["prompt_ids"] == t["ids"], (g["prompt_ids"], t["ids"])
assert "[INST]" in t["text"] and len(g["ids"]) == 3
PY

# 5. errors
expect() { local want=$1; shift; set +e; "$@" > "$T/err.out" 2> "$T/err.txt"; local rc=$?; set -e
  if [ "$rc" != "$want" ]; then echo "FAIL: exit $rc (want $want): $*"; cat "$T/err.txt"; exit 1; fi; }
expect 64 "$BIN" generate --model "$TD/models/llama-mini"
expect 64 "$BIN" generate --model "$TD/models/llama-mini" --ids 1,2 --prompt hi
expect 64 "$BIN" generate --model "$TD/models/llama-mini" --ids 1,x
expect 64 "$BIN" generate --model "$TD/models/llama-mini" --ids 1 --device tpu
expect 65 "$BIN" generate --model "$TD/models/llama-mini" --ids 1,99999
expect 65 "$BIN" generate --model "$TD/models/llama-mini" --prompt hello
# --device cuda without CUDA built in, or without a visible GPU: 69, never a silent CPU run
if "$BIN" --version | grep -q "CUDA backend: not built" || ! nvidia-smi -L >/dev/null 2>&1; then
  expect 69 "$BIN" generate --model "$TD/models/llama-mini" --ids 1 --device cuda
  grep -q "cuda" "$T/err.txt"
fi
# -n 0 generates nothing
"$BIN" generate --model "$TD/models/llama-mini" --ids 1,2,3 -n 0 --json > "$T/zero.json"
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["ids"]==[] and o["finish_reason"]=="length"' "$T/zero.json"
# EOS (id 2) stops generation unless --ignore-eos: near-uniform sampling with a fixed seed
# reaches it; the same seed twice gives the same tokens (counter-based RNG)
"$BIN" generate --model "$TD/models/llama-mini" --ids 1 -n 3000 --temperature 100 --seed 7 --json > "$T/eos1.json"
"$BIN" generate --model "$TD/models/llama-mini" --ids 1 -n 3000 --temperature 100 --seed 7 --json > "$T/eos2.json"
"$BIN" generate --model "$TD/models/llama-mini" --ids 1 -n 3000 --temperature 100 --seed 7 --json --ignore-eos > "$T/eos3.json"
python3 - "$T" <<'PY'
import json, sys
d = sys.argv[1]
a, b, c = (json.load(open(f"{d}/eos{i}.json")) for i in (1, 2, 3))
assert a == b, "same seed, different tokens"
assert a["finish_reason"] == "stop" and a["ids"][-1] == 2 and 2 not in a["ids"][:-1], a["finish_reason"]
assert c["finish_reason"] == "length" and len(c["ids"]) == 3000 and c["ids"][:len(a["ids"])] == a["ids"]
PY
echo "generate.sh: ok"
