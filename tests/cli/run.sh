#!/usr/bin/env bash
# run.sh — end to end: submit -> run -> results on the golden test models.
# Checks: every output line is an OpenAI batch output line with usage; greedy
# results equal the float64 reference's greedy tokens (up to the first small
# margin); a request whose prompt exceeds the context fails alone; a text
# prompt on mistral-tok-mini is tokenized as the reference did; cancel
# mid-run stops the job's work; `tokenmill demo` works from scratch.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
TD=${TOKENMILL_TESTDATA:-../shared/testdata}
if [ ! -f "$TD/models/llama-mini/golden.jsonl" ]; then
  echo "SKIP: test data not found in $TD (set TOKENMILL_TESTDATA)"; exit 77
fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
export TOKENMILL_DB="$T/q.db"

# 1. golden prompts as completions with token-id prompts, greedy, 12 tokens
python3 - "$TD/models/llama-mini/golden.jsonl" > "$T/job.jsonl" <<'PY'
import json, sys
for i, line in enumerate(open(sys.argv[1])):
    g = json.loads(line)
    print(json.dumps({"custom_id": f"g{i}", "method": "POST", "url": "/v1/completions",
                      "body": {"model": "llama-mini", "prompt": g["prompt_ids"], "max_tokens": 12,
                               "temperature": 0, "ignore_eos": True, "return_token_ids": True}}))
# a prompt longer than --max-model-len 64 fails alone
print(json.dumps({"custom_id": "too-long", "method": "POST", "url": "/v1/completions",
                  "body": {"prompt": list(range(1, 100)), "max_tokens": 4}}))
# (chat on a model without a tokenizer is left queued, not failed: misconfigured_worker.sh)
PY
JOB=$("$BIN" submit "$T/job.jsonl" --name golden)
"$BIN" run --model "$TD/models/llama-mini" --max-model-len 64 --max-batch-tokens 48 --max-seqs 4 --quiet
"$BIN" results "$JOB" -o "$T/out.jsonl"
"$BIN" results "$JOB" --errors -o "$T/err.jsonl"
python3 - "$TD/models/llama-mini/golden.jsonl" "$T/out.jsonl" "$T/err.jsonl" <<'PY'
import json, sys
gold = [json.loads(l) for l in open(sys.argv[1])]
out = {}
for line in open(sys.argv[2]):
    o = json.loads(line)
    assert set(o) >= {"id", "custom_id", "response", "error"}, o.keys()
    assert o["error"] is None and o["response"]["status_code"] == 200
    b = o["response"]["body"]
    assert b["object"] == "text_completion"
    u = b["usage"]
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert "cached_tokens" in u["prompt_tokens_details"]
    assert u["cost"]["gpu_seconds"] > 0 and u["cost"]["energy_joules"] is None, u
    out[o["custom_id"]] = b
# prompts longer than 64 - 12 tokens cannot run with --max-model-len 64
expect_ok = [i for i, g in enumerate(gold) if len(g["prompt_ids"]) + 12 <= 64]
assert sorted(out) == sorted(f"g{i}" for i in expect_ok), (sorted(out), expect_ok)
checked = 0
for i in expect_ok:
    b = out[f"g{i}"]; g = gold[i]
    assert b["prompt_token_ids"] == g["prompt_ids"]
    ids = b["choices"][0]["token_ids"]
    assert len(ids) == 12 and b["choices"][0]["finish_reason"] == "length"
    for k, (a, e) in enumerate(zip(ids, g["greedy_ids"])):
        if g["greedy_margins"][k] < 1e-3: break
        assert a == e, (i, k, ids, g["greedy_ids"])
        checked += 1
assert checked > 0
errs = {}
for line in open(sys.argv[3]):
    o = json.loads(line)
    assert o["response"] is None and o["error"]["message"]
    errs[o["custom_id"]] = o["error"]["message"]
assert "too-long" in errs and "context" in errs["too-long"], errs
print(f"golden greedy tokens checked: {checked}; errors: {sorted(errs)}")
PY
"$BIN" status "$JOB" --json | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["status"]=="completed", j; print("status:", j["status"], j["request_counts"])'
# cost attribution: request shares + the run's overhead == the run's measured time; $ = s x price
python3 - "$T/q.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
req_s, req_usd = db.execute("select sum(gpu_seconds), sum(cost_usd) from requests where state='done'").fetchone()
run_s, over_s, usd, price = db.execute("select gpu_seconds, overhead_seconds, cost_usd, price_usd_per_hour from runs").fetchone()
assert req_s > 0 and run_s > 0, (req_s, run_s)
assert abs(req_s + over_s - run_s) <= 1e-3 * run_s, (req_s, over_s, run_s)
assert abs(usd - run_s * price / 3600) <= 1e-6 + 1e-3 * usd, (usd, run_s, price)
assert abs(req_usd - req_s * price / 3600) <= 1e-9 + 1e-3 * req_usd, (req_usd, req_s)
n_null = db.execute("select count(*) from requests where state='done' and energy_joules is not null").fetchone()[0]
assert n_null == 0, "energy must be NULL without NVML"
print(f"cost: requests {req_s:.4f}s + overhead {over_s:.4f}s = run {run_s:.4f}s at ${price}/h")
PY

# 2. text prompt on mistral-tok-mini (has a tokenizer): same ids as the reference
python3 - "$TD/models/mistral-tok-mini/golden.jsonl" > "$T/text.jsonl" <<'PY'
import json, sys
for i, line in enumerate(open(sys.argv[1])):
    g = json.loads(line)
    print(json.dumps({"custom_id": f"t{i}", "method": "POST", "url": "/v1/completions",
                      "body": {"prompt": g["prompt"], "max_tokens": 4, "temperature": 0,
                               "return_token_ids": True, "ignore_eos": True}}))
PY
JOB2=$("$BIN" submit "$T/text.jsonl")
"$BIN" run --model "$TD/models/mistral-tok-mini" --quiet
"$BIN" results "$JOB2" -o "$T/out2.jsonl.zst"
zstd -dcq "$T/out2.jsonl.zst" > "$T/out2.jsonl"
python3 - "$TD/models/mistral-tok-mini/golden.jsonl" "$T/out2.jsonl" <<'PY'
import json, sys
gold = [json.loads(l) for l in open(sys.argv[1])]
n = 0
for line in open(sys.argv[2]):
    o = json.loads(line); b = o["response"]["body"]; g = gold[int(o["custom_id"][1:])]
    assert b["prompt_token_ids"] == g["prompt_ids"], (b["prompt_token_ids"], g["prompt_ids"])
    for k, (a, e) in enumerate(zip(b["choices"][0]["token_ids"], g["greedy_ids"])):
        if g["greedy_margins"][k] < 1e-3: break
        assert a == e, (o["custom_id"], k, b["choices"][0]["token_ids"], g["greedy_ids"])
    assert isinstance(b["choices"][0]["text"], str)
    n += 1
assert n == len(gold)
print("text prompts:", n)
PY

# 3. cancel mid-run: a slow job (one sequence at a time, long outputs)
python3 -c '
import json
for i in range(40):
    print(json.dumps({"custom_id": f"c{i}", "method": "POST", "url": "/v1/completions",
        "body": {"prompt": [1, 2, 3, i], "max_tokens": 3000, "ignore_eos": True}}))' > "$T/slow.jsonl"
JOB3=$("$BIN" submit "$T/slow.jsonl")
"$BIN" run --model "$TD/models/llama-mini" --max-seqs 1 --window 2 --quiet &
RUN=$!
sleep 1.5
"$BIN" cancel "$JOB3" >/dev/null
set +e; wait $RUN; rc=$?; set -e
[ "$rc" -eq 0 ] || { echo "run exited $rc after cancel"; exit 1; }
"$BIN" status "$JOB3" --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["status"] == "cancelled", j["status"]
c = j["request_counts"]
assert c["completed"] < 40, c
print("cancelled job:", c)'

# 4. the demo, from nothing
(cd "$T" && "$BIN" demo --dir d > demo.log 2>&1) || { cat "$T/demo.log"; exit 1; }
grep -q "results:" "$T/demo.log"
test "$(wc -l < "$T/d/output.jsonl")" -eq 5
echo "run.sh: ok"
