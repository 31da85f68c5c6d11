#!/usr/bin/env bash
# served_model.sh — one model per worker, named truthfully (issue 14).
#
# Two copies of the demo model, alpha/ and beta/ (each also serves "demo",
# config.json's _name_or_path). Jobs: A names model alpha, B names beta, N1
# names none. Checks: before any worker, `status` says alpha's and beta's
# requests wait for a model no live worker serves (and stops saying so for a
# model a live worker serves); a worker on alpha/ claims A and N1 and leaves
# B pending; a second job naming none, N2, is served by the beta worker
# (--served-model-name beta-served,beta) together with B; every response's
# "model" is the name the worker served it under; model_costs groups by the
# model that ran, with the requested name in its second column; a
# --served-model-name that is empty or too long is refused (64).
# Needs only the binary (the model is `tokenmill demo`'s) and python3.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export TOKENMILL_DB="$T/q.db"
fail() { echo "FAIL: $*" >&2; exit 1; }

(cd "$T" && "$BIN" demo --dir demo > demo.log 2>&1) || { cat "$T/demo.log"; exit 1; }
rm -f "$T/q.db"
cp -r "$T/demo/model" "$T/alpha"
cp -r "$T/demo/model" "$T/beta"

job() { # job FILE MODEL|- PREFIX: three token-id completions
  python3 - "$@" <<'PY'
import json, sys
path, model, prefix = sys.argv[1:4]
with open(path, "w") as f:
    for i in range(3):
        body = {"prompt": [72, 101, 108 + i], "max_tokens": 4, "temperature": 0}
        if model != "-":
            body["model"] = model
        f.write(json.dumps({"custom_id": f"{prefix}{i}", "method": "POST", "url": "/v1/completions", "body": body}) + "\n")
PY
}
job "$T/a.jsonl" alpha a
job "$T/b.jsonl" beta b
job "$T/n1.jsonl" - n
job "$T/n2.jsonl" - m
A=$("$BIN" submit "$T/a.jsonl")
B=$("$BIN" submit "$T/b.jsonl")
N1=$("$BIN" submit "$T/n1.jsonl")

# 1. no worker yet: the named models' work waits, and status says so
"$BIN" status > "$T/st0"
grep -qx '3 requests wait for model alpha (no live worker serves it)' "$T/st0" || fail "alpha not reported: $(cat "$T/st0")"
grep -qx '3 requests wait for model beta (no live worker serves it)' "$T/st0" || fail "beta not reported: $(cat "$T/st0")"
# a live worker serving beta (its heartbeat fresh) silences beta's line
python3 - "$T/q.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
now = int(time.time())
db.execute("INSERT INTO workers(id, host, pid, device, state, started_at, heartbeat_at, lease_seconds, models) "
           "VALUES ('fake:1:x', 'fake', 1, 'cpu', 'running', ?, ?, 600, '[\"beta\"]')", (now, now))
db.commit()
PY
"$BIN" status > "$T/st1"
grep -q 'wait for model beta' "$T/st1" && fail "beta reported while a live worker serves it: $(cat "$T/st1")"
grep -qx '3 requests wait for model alpha (no live worker serves it)' "$T/st1" || fail "alpha line lost: $(cat "$T/st1")"
python3 -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute("DELETE FROM workers WHERE id=?", ("fake:1:x",)); d.commit()' "$T/q.db"

# 2. a worker on alpha/: A and N1 (names none), not B
"$BIN" run --model "$T/alpha" --threads 1 --quiet
st() { "$BIN" status "$1" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["tokenmill_status"], d["request_states"]["pending"])'; }
[ "$(st "$A")" = "completed 0" ] || fail "alpha job: $(st "$A")"
[ "$(st "$N1")" = "completed 0" ] || fail "job naming no model: $(st "$N1")"
[ "$(st "$B")" = "queued 3" ] || fail "beta job claimed by the alpha worker: $(st "$B")"
"$BIN" status > "$T/st2"
grep -qx '3 requests wait for model beta (no live worker serves it)' "$T/st2" || fail "beta wait line: $(cat "$T/st2")"

# 3. a worker on beta/ under the names beta-served and beta: B and N2
N2=$("$BIN" submit "$T/n2.jsonl")
"$BIN" run --model "$T/beta" --served-model-name beta-served,beta --threads 1 --quiet
for j in "$B" "$N2"; do [ "$(st "$j")" = "completed 0" ] || fail "$j: $(st "$j")"; done
"$BIN" status > "$T/st3"
grep -q 'wait for model' "$T/st3" && fail "waiting work left: $(cat "$T/st3")"

# 4. the response's model is the served name
for pair in "$A:alpha" "$N1:alpha" "$B:beta-served" "$N2:beta-served"; do
  j=${pair%%:*}; want=${pair#*:}
  "$BIN" results "$j" | python3 -c '
import json, sys
want = sys.argv[1]
lines = [json.loads(l) for l in sys.stdin]
assert len(lines) == 3, lines
for o in lines:
    assert o["response"]["body"]["model"] == want, (o["custom_id"], o["response"]["body"]["model"], want)
' "$want" || fail "response model of $j is not $want"
done

# 5. model_costs: by the model that ran, then the requested name
python3 - "$T/q.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = {(m, r): n for m, r, n in db.execute("SELECT model, requested_model, requests FROM model_costs")}
want = {("alpha", "alpha"): 3, ("alpha", "(none)"): 3, ("beta-served", "beta"): 3, ("beta-served", "(none)"): 3}
assert rows == want, rows
served = sorted(r[0] for r in db.execute("SELECT served_model FROM runs"))
assert served == ["alpha", "beta-served"], served
models = sorted(r[0] for r in db.execute("SELECT models FROM workers"))
assert models == ['["alpha","demo"]', '["beta-served","beta"]'], models
rc = {r[0]: r[1] for r in db.execute("SELECT custom_id, served_model FROM request_costs")}
assert rc["a0"] == "alpha" and rc["b0"] == "beta-served" and rc["m0"] == "beta-served", rc
PY

# 6. bad names are refused before anything runs
for bad in "" "x,,y" "$(python3 -c 'print("n" * 300)')"; do
  rc=0; "$BIN" run --model "$T/alpha" --served-model-name "$bad" --quiet > "$T/bad.log" 2>&1 || rc=$?
  [ "$rc" = 64 ] || fail "--served-model-name '$bad' exited $rc: $(cat "$T/bad.log")"
done
echo "served_model: ok"
