#!/usr/bin/env bash
# wide_window.sh — a --window above the worker's old fixed lists (4096 drain /
# checkpoint entries, 256 lease checks, 64 jobs in the cancel check) drains
# and loses nothing.
#
# 5000 tiny requests (max_tokens 2..4, n=2 for one in six: more choices than
# the engine's room, so some claims go back to the queue) in 3 jobs on the
# demo model, run with --window 5000 --max-seqs 64: the whole job is claimed
# at once. SIGUSR1 once results appear (--drain-grace 1 --drain-margin 1:
# everything in flight stops now): exit 75, end_reason signal:SIGUSR1, no
# lease left (every in-flight request, thousands, released), checkpoints for
# those that had generated tokens. A second run with the same window empties
# the queue: every request has exactly one result with its full choices, and
# no checkpoint is left.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 not found"; exit 77; }
T=$(mktemp -d); trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
"$BIN" demo --dir "$T/demo" >/dev/null 2>&1
MODEL="$T/demo/model"
N=5000
python3 - "$T" "$N" <<'PY'
import json, random, sys
d, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(5)
words = ["alpha", "beta", "gamma", "delta", "window", "drain"]
files = [open(f"{d}/job{j}.jsonl", "w") for j in range(3)]
for i in range(n):
    body = {"model": "demo", "prompt": " ".join(rnd.choice(words) for _ in range(rnd.randint(2, 12))),
            "max_tokens": rnd.randint(2, 4), "temperature": 0}
    if i % 6 == 5:
        body["n"] = 2
    files[i % 3].write(json.dumps({"custom_id": f"w{i}", "method": "POST", "url": "/v1/completions",
                                   "body": body}) + "\n")
PY
for j in 0 1 2; do "$BIN" submit "$T/job$j.jsonl" --db "$T/a.db" --name "wide$j" >/dev/null; done
RUN=("$BIN" run --model "$MODEL" --db "$T/a.db" --window "$N" --max-seqs 64 --threads 1 --checkpoint-every 0)

count() { sqlite3 "$T/a.db" "$1" 2>/dev/null || echo 0; }
"${RUN[@]}" --drain-grace 1 --drain-margin 1 2>"$T/run1.log" &
pid=$!
for _ in $(seq 1 1200); do
  [ "$(count "SELECT COUNT(*) FROM requests WHERE state='done'")" -ge 20 ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
running=$(count "SELECT COUNT(*) FROM requests WHERE state='running'")
kill -USR1 "$pid" 2>/dev/null || true
rc=0; wait "$pid" || rc=$?
done1=$(count "SELECT COUNT(*) FROM requests WHERE state='done'")
echo "first run: exit $rc, $running running at the signal, $done1 done after it"
grep -E "draining|stopped" "$T/run1.log" || true
[ "$rc" = 75 ] || { echo "FAIL: exit $rc, want 75"; tail -n 20 "$T/run1.log"; exit 1; }
[ "$running" -gt 4096 ] || { echo "FAIL: only $running in flight at the signal (want > 4096)"; exit 1; }
[ "$(count "SELECT end_reason FROM runs")" = signal:SIGUSR1 ] || { echo "FAIL: end_reason"; exit 1; }
[ "$(count "SELECT COUNT(*) FROM requests WHERE state='running'")" = 0 ] || {
  echo "FAIL: leases left after the drain"; count "SELECT state, COUNT(*) FROM requests GROUP BY state"; exit 1; }
nck=$(count "SELECT COUNT(*) FROM checkpoints")
echo "checkpoints: $nck"
[ "$nck" -gt 0 ] || { echo "FAIL: no checkpoint written"; exit 1; }

"${RUN[@]}" --quiet
[ "$(count "PRAGMA integrity_check")" = ok ] || { echo "FAIL: integrity"; exit 1; }
[ "$(count "SELECT COUNT(*) FROM requests WHERE state='done'")" = "$N" ] || {
  echo "FAIL: not all done"; count "SELECT state, COUNT(*) FROM requests GROUP BY state"; exit 1; }
[ "$(count "SELECT COUNT(*) FROM checkpoints")" = 0 ] || { echo "FAIL: checkpoints left"; exit 1; }
: > "$T/all.jsonl"
for j in 0 1 2; do
  id=$(count "SELECT id FROM jobs WHERE name='wide$j'")
  "$BIN" results "$id" --db "$T/a.db" >> "$T/all.jsonl"
done
python3 - "$T/all.jsonl" "$N" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
seen = {}
for line in open(path):
    o = json.loads(line)
    cid = o["custom_id"]
    assert cid not in seen, f"{cid}: two results"
    body = o["response"]["body"]
    i = int(cid[1:])
    want = 2 if i % 6 == 5 else 1
    assert len(body["choices"]) == want, f"{cid}: {len(body['choices'])} choices, want {want}"
    seen[cid] = 1
assert len(seen) == n, f"{len(seen)} results, want {n}"
print(f"{n} requests, exactly one result each")
PY
echo "wide_window.sh: ok"
