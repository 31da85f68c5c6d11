#!/usr/bin/env bash
# status_batch.sh — `status --json` is an OpenAI Batch / list page (issue 14).
#
# Every object `status --json` writes is checked against
# schemas/openai_batch.schema.json (python3-jsonschema; openai-python's own
# Batch.model_validate as well when the openai package happens to be
# installed): a job in each of tokenmill's states (the real flows for
# queued, completed, cancelled, expired; the stored state set directly for
# the others) with the OpenAI state it maps to; list pages with --limit,
# --after, --state and the plain listing's paging; the errors of
# --on-invalid skip lines {code, line, message, param}, also as fields of the
# error file's lines, a duplicate custom_id in the error file only; a job
# mixing chat and completions refused at submit with file:line (nothing
# stored), or with --on-invalid skip recorded as an invalid line (param url).
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
SRC=${TOKENMILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
python3 -c 'import jsonschema' 2>/dev/null || { echo "SKIP: python3-jsonschema not installed"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export TOKENMILL_DB="$T/q.db"
fail() { echo "FAIL: $*" >&2; exit 1; }
# check FILE PY-EXPR: FILE (kept) must be valid against the schema and the
# object d in it satisfy the expression; all checked at the end, in one python
N=0
check() { N=$((N + 1)); cp "$1" "$T/c$N.json"; printf '%s\t%s\n' "$T/c$N.json" "$2" >> "$T/checks"; }
check_all() {
  python3 - "$SRC/schemas/openai_batch.schema.json" "$T/checks" <<'PY' || fail "status --json checks"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
try:
    from openai.types import Batch
except ImportError:
    Batch = None
n = 0
for line in open(sys.argv[2]):
    path, expr = line.rstrip("\n").split("\t", 1)
    d = json.load(open(path))
    jsonschema.validate(d, schema)
    if Batch is not None:
        for b in d["data"] if d.get("object") == "list" else [d]:
            Batch.model_validate(b)
    assert eval(expr), (expr, d)
    n += 1
print(f"status_batch: {n} status --json objects valid" + (" (openai-python too)" if Batch else ""))
PY
}

(cd "$T" && "$BIN" demo --dir demo > demo.log 2>&1) || { cat "$T/demo.log"; exit 1; }
rm -f "$T/q.db"
M="$T/demo/model"
chat() { printf '{"custom_id":"%s","method":"POST","url":"/v1/chat/completions","body":{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":3}}\n' "$1"; }
comp() { printf '{"custom_id":"%s","method":"POST","url":"/v1/completions","body":{"model":"demo","prompt":[1,2],"max_tokens":3}}\n' "$1"; }

# 1. mixed endpoints: refused with file:line, nothing stored
{ chat c1; comp x2; chat c3; } > "$T/mixed.jsonl"
rc=0; "$BIN" submit "$T/mixed.jsonl" > "$T/out" 2> "$T/err" || rc=$?
[ "$rc" = 65 ] || fail "mixed job exited $rc"
grep -q "mixed.jsonl:2: url: /v1/completions in a job of /v1/chat/completions requests (from $T/mixed.jsonl:1)" "$T/err" \
  || fail "mixed message: $(cat "$T/err")"
"$BIN" status --json > "$T/p0.json"
check "$T/p0.json" 'd["data"] == [] and d["has_more"] is False and d["first_id"] is None'

# 2. --on-invalid skip: a bad line, a duplicate, a mixed line -> errors with line and param
{ chat k1; chat k1; printf '{"custom_id":"k3","method":"POST","url":"/v1/chat/completions","body":{"messages":5}}\n'; comp k4; chat k5; } > "$T/skip.jsonl"
S=$("$BIN" submit "$T/skip.jsonl" --on-invalid skip 2> "$T/err")
"$BIN" status "$S" --json > "$T/s.json"
check "$T/s.json" '[(e["line"], e["param"], e["code"]) for e in d["errors"]["data"]] == [(2, "custom_id", "invalid_request"), (3, "body.messages", "invalid_request"), (4, "url", "invalid_request")] and d["errors"]["object"] == "list" and d["input_filename"].endswith("skip.jsonl") and d["input_file_id"].startswith("file-") and d["endpoint"] == "/v1/chat/completions" and d["model"] == "demo" and d["status"] == "in_progress" and d["tokenmill_status"] == "queued" and d["output_file_id"] is None and d["error_file_id"]'
"$BIN" run --model "$M" --chat-template chatml --threads 1 --quiet
"$BIN" status "$S" --json > "$T/s2.json"
check "$T/s2.json" 'd["status"] == "completed" and d["output_file_id"] and d["usage"]["input_tokens"] > 0 and d["usage"]["output_tokens"] == 6 and d["usage"]["total_tokens"] == d["usage"]["input_tokens"] + 6 and d["request_counts"] == {"total": 5, "completed": 2, "failed": 3}'
"$BIN" results "$S" > "$T/o.jsonl"
"$BIN" results "$S" --errors > "$T/e.jsonl"
python3 - "$T/o.jsonl" "$T/e.jsonl" <<'PY' || fail "output / error files"
import json, sys
out = [json.loads(l) for l in open(sys.argv[1])]
err = [json.loads(l) for l in open(sys.argv[2])]
assert sorted(o["custom_id"] for o in out) == ["k1", "k5"], out
ids_out = {o["custom_id"] for o in out}
assert not ids_out & {e["custom_id"] for e in err}, err  # a duplicate id is in one file only
got = [(e["custom_id"], e["error"]["line"], e["error"]["param"]) for e in err]
assert got == [(None, 2, "custom_id"), ("k3", 3, "body.messages"), ("k4", 4, "url")], got
assert "duplicate" in err[0]["error"]["message"], err[0]
PY

# 3. every tokenmill state and the OpenAI state it maps to
"$BIN" cancel "$("$BIN" submit <(chat z1))" > /dev/null
E=$("$BIN" submit <(chat e1) --completion-window 1s)
sleep 2
"$BIN" status "$E" --json > "$T/e.json"
check "$T/e.json" 'd["status"] == "expired" and d["expired_at"] and d["completion_window"] == "1s"'
V=$("$BIN" submit <(chat v1))
for pair in validating:validating queued:in_progress in_progress:in_progress finalizing:finalizing completed:completed \
            failed:failed cancelling:cancelling cancelled:cancelled expired:expired; do
  tms=${pair%%:*}; oai=${pair#*:}
  python3 -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute("UPDATE jobs SET state=? WHERE id=?", (sys.argv[2], sys.argv[3])); d.commit()' "$T/q.db" "$tms" "$V"
  "$BIN" status "$V" --json > "$T/v.json"
  check "$T/v.json" "d['status'] == '$oai' and d['tokenmill_status'] == '$tms'"
done
python3 -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute("UPDATE jobs SET state=? WHERE id=?", ("queued", sys.argv[2])); d.commit()' "$T/q.db" "$V"

# 4. paging: 4 jobs listed now (skip, cancelled, expired, V), newest first
"$BIN" status --json --limit 3 > "$T/p1.json"
check "$T/p1.json" 'len(d["data"]) == 3 and d["has_more"] is True and d["first_id"] == d["data"][0]["id"] and d["last_id"] == d["data"][2]["id"] and d["data"][0]["id"] == "'"$V"'"'
LAST=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["last_id"])' "$T/p1.json")
"$BIN" status --json --limit 3 --after "$LAST" > "$T/p2.json"
check "$T/p2.json" 'len(d["data"]) == 1 and d["has_more"] is False and d["data"][0]["id"] == "'"$S"'"'
"$BIN" status --json --state cancelled > "$T/p3.json"
check "$T/p3.json" 'len(d["data"]) == 1 and d["data"][0]["status"] == "cancelled"'
"$BIN" status --limit 2 > "$T/plain"
[ "$(grep -c '^job_' "$T/plain")" = 2 ] || fail "plain page: $(cat "$T/plain")"
grep -q '^\.\.\. 2 more (older) jobs: tokenmill status --after job_' "$T/plain" || fail "more line: $(cat "$T/plain")"
rc=0; "$BIN" status --after job_nope > /dev/null 2>&1 || rc=$?
[ "$rc" = 65 ] || fail "--after an unknown job exited $rc"
for bad in "--limit 0" "--state queuedx" "--state running"; do
  rc=0; "$BIN" status $bad > /dev/null 2>&1 || rc=$?
  [ "$rc" = 64 ] || fail "status $bad exited $rc"
done
check_all
echo "status_batch: ok"
