#!/usr/bin/env bash
# batch_cmd.sh — `tokenmill batch -i IN -o OUT --model DIR` (issue 14), as
# vLLM's run_batch: one command, a temporary queue deleted at success.
# Checks: OUT has every request's output line and OUT.errors.jsonl the
# invalid line (--on-invalid skip), with line and param; no temporary queue
# is left behind; --errors FILE and .zst output; with --db a run that could
# not serve the input's model exits 69 and keeps the queue, and rerunning
# with the same DB and input resumes that job (no second submission) and
# writes the results; the usage errors (no -i/-o/--model, stdin) exit 64.
# Needs only the binary (the model is `tokenmill demo`'s) and python3.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export TMPDIR="$T/tmp"
mkdir -p "$TMPDIR"
fail() { echo "FAIL: $*" >&2; exit 1; }
(cd "$T" && "$BIN" demo --dir demo > demo.log 2>&1) || { cat "$T/demo.log"; exit 1; }
M="$T/demo/model"
python3 - "$T/in.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(4):
        f.write(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/completions",
                            "body": {"model": "demo", "prompt": [65, 66 + i], "max_tokens": 5, "temperature": 0}}) + "\n")
    f.write('{"custom_id":"bad","method":"POST","url":"/v1/completions","body":{"model":"demo","max_tokens":-1,"prompt":"x"}}\n')
PY

# 1. one shot with a temporary queue
"$BIN" batch -i "$T/in.jsonl" -o "$T/out.jsonl" --model "$M" --on-invalid skip --threads 1 --quiet > "$T/log" 2>&1 \
  || { cat "$T/log"; fail "batch failed"; }
python3 - "$T/out.jsonl" "$T/out.errors.jsonl" <<'PY' || fail "batch output"
import json, sys
out = [json.loads(l) for l in open(sys.argv[1])]
assert [o["custom_id"] for o in out] == ["r0", "r1", "r2", "r3"], out
for o in out:
    b = o["response"]["body"]
    assert o["error"] is None and b["object"] == "text_completion" and b["usage"]["completion_tokens"] == 5, o
    assert b["model"] == "model", b["model"]  # the served name: the model directory's base name
err = [json.loads(l) for l in open(sys.argv[2])]
assert len(err) == 1 and err[0]["custom_id"] == "bad", err
assert err[0]["error"]["line"] == 5 and err[0]["error"]["param"] == "body.max_tokens", err
PY
[ -z "$(ls -A "$TMPDIR")" ] || fail "temporary queue left: $(ls -A "$TMPDIR")"

# 2. --errors FILE, compressed output
"$BIN" batch -i "$T/in.jsonl" -o "$T/out2.jsonl.zst" --errors "$T/e2.jsonl" --model "$M" --on-invalid skip \
  --threads 1 --quiet > "$T/log" 2>&1 || { cat "$T/log"; fail "batch .zst failed"; }
[ "$(zstd -dc "$T/out2.jsonl.zst" | wc -l)" = 4 ] && [ "$(wc -l < "$T/e2.jsonl")" = 1 ] || fail "zst / --errors output"

# 3. a named queue: the model is not served -> 69, queue kept; rerun resumes the same job
rc=0; "$BIN" batch -i "$T/in.jsonl" -o "$T/out3.jsonl" --db "$T/keep.db" --model "$M" --served-model-name other \
  --on-invalid skip --threads 1 --quiet > "$T/log3" 2>&1 || rc=$?
[ "$rc" = 69 ] || { cat "$T/log3"; fail "unserved model exited $rc, want 69"; }
grep -q 'rerun with --db' "$T/log3" || fail "no resume hint: $(cat "$T/log3")"
[ -f "$T/keep.db" ] && [ ! -e "$T/out3.jsonl" ] || fail "named queue not kept, or output written"
"$BIN" batch -i "$T/in.jsonl" -o "$T/out3.jsonl" --db "$T/keep.db" --model "$M" --on-invalid skip --threads 1 \
  --quiet > "$T/log4" 2>&1 || { cat "$T/log4"; fail "resume failed"; }
grep -q 'resuming job_' "$T/log4" || fail "not resumed: $(cat "$T/log4")"
[ "$(wc -l < "$T/out3.jsonl")" = 4 ] || fail "resumed output: $(cat "$T/out3.jsonl")"
python3 -c 'import sqlite3,sys; n=sqlite3.connect(sys.argv[1]).execute("select count(*) from jobs").fetchone()[0]; sys.exit(n != 1)' \
  "$T/keep.db" || fail "the input was submitted twice"
cmp <(cut -d, -f2- "$T/out.jsonl" | python3 -c 'import json,sys; [print(json.loads("{\"x\":1,"+l)["response"]["body"]["choices"]) for l in sys.stdin]') \
    <(cut -d, -f2- "$T/out3.jsonl" | python3 -c 'import json,sys; [print(json.loads("{\"x\":1,"+l)["response"]["body"]["choices"]) for l in sys.stdin]') \
  || fail "resumed run's choices differ from the one-shot run's"

# 4. usage errors
for args in "-o $T/x.jsonl --model $M" "-i $T/in.jsonl --model $M" "-i $T/in.jsonl -o $T/x.jsonl" \
            "-i - -o $T/x.jsonl --model $M" "-i $T/in.jsonl -o $T/x.jsonl --model $M --on-invalid maybe"; do
  rc=0; "$BIN" batch $args > /dev/null 2>&1 || rc=$?
  [ "$rc" = 64 ] || fail "batch $args exited $rc, want 64"
done
[ ! -e "$T/x.jsonl" ] || fail "a refused batch wrote output"
echo "batch_cmd: ok"
