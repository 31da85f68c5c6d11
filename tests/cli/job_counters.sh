#!/usr/bin/env bash
# job_counters.sh — the jobs rows' counters (migration 0007: request counts
# per state, token and cost sums, kept by triggers) equal a GROUP BY recount
# of the requests after a mixed run: completions, worker-side failures, a
# cancel mid-run, kill -9 of workers (their leases reclaimed by the next
# claim), a retry of the failed requests and a last run. Checked with the
# sqlite3 shell after every stage, not through tokenmill's own code.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 shell not installed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }
T=$(mktemp -d); trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
"$BIN" demo --dir "$T/demo" >/dev/null 2>&1
MODEL="$T/demo/model"
gen() { # gen PREFIX N: completions; every 7th has a token id outside the demo vocabulary (fails in the worker)
  python3 - "$@" <<'PY'
import json, sys
p, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    prompt = [99999] if i % 7 == 3 else "count to %d" % i
    print(json.dumps({"custom_id": "%s%d" % (p, i), "method": "POST", "url": "/v1/completions",
                      "body": {"model": "demo", "prompt": prompt, "max_tokens": 24 + i % 40, "temperature": 0.7, "seed": i}}))
PY
}
gen a 150 > "$T/a.jsonl"
gen b 150 > "$T/b.jsonl"
printf '%s\n' '{"custom_id":"bad","method":"POST","url":"/v1/completions","body":{"prompt":[1],"temperature":9}}' >> "$T/b.jsonl"
DB="$T/q.db"
A=$("$BIN" submit "$T/a.jsonl" --db "$DB")
B=$("$BIN" submit "$T/b.jsonl" --db "$DB" --on-invalid skip)

check() { # check STAGE: every job's counters against the recount
  local bad
  bad=$(sqlite3 "$DB" "SELECT COUNT(*) FROM jobs j LEFT JOIN (SELECT job_id,
      SUM(state='pending') p, SUM(state='running') r, SUM(state='done') d, SUM(state='failed') f,
      SUM(state='cancelled') c, SUM(state='expired') e,
      SUM(CASE WHEN state IN ('done','failed') THEN prompt_tokens ELSE 0 END) pt,
      SUM(CASE WHEN state IN ('done','failed') THEN completion_tokens ELSE 0 END) ct,
      SUM(CASE WHEN state IN ('done','failed') THEN cached_tokens ELSE 0 END) kt,
      TOTAL(CASE WHEN state IN ('done','failed') THEN gpu_seconds END) g,
      TOTAL(CASE WHEN state IN ('done','failed') THEN cost_usd END) u,
      SUM(state IN ('done','failed') AND cost_usd IS NOT NULL) nc
      FROM requests GROUP BY job_id) x ON x.job_id = j.id
    WHERE j.n_pending IS NOT COALESCE(x.p,0) OR j.n_running IS NOT COALESCE(x.r,0) OR j.n_done IS NOT COALESCE(x.d,0)
       OR j.n_failed IS NOT COALESCE(x.f,0) OR j.n_cancelled IS NOT COALESCE(x.c,0) OR j.n_expired IS NOT COALESCE(x.e,0)
       OR j.sum_prompt_tokens IS NOT COALESCE(x.pt,0) OR j.sum_completion_tokens IS NOT COALESCE(x.ct,0)
       OR j.sum_cached_tokens IS NOT COALESCE(x.kt,0) OR j.n_cost IS NOT COALESCE(x.nc,0)
       OR abs(j.sum_gpu_seconds - COALESCE(x.g,0)) > 1e-9 * (1 + abs(x.g))
       OR abs(j.sum_cost_usd - COALESCE(x.u,0)) > 1e-9 * (1 + abs(x.u))")
  local states
  states=$(sqlite3 "$DB" "SELECT group_concat(state || '=' || n, ' ') FROM (SELECT state, COUNT(*) n FROM requests GROUP BY state)")
  echo "$1: $states; jobs with counters off: $bad"
  [ "$bad" = 0 ] || { sqlite3 -header "$DB" "SELECT * FROM jobs"; echo "FAIL: counters disagree after $1"; exit 1; }
}
check submit

RANDOM=20261207
for i in 1 2 3 4 5; do
  "$BIN" run --model "$MODEL" --db "$DB" --max-seqs 8 --threads 1 --checkpoint-every 0.3 --lease-seconds 5 \
    --quiet 2>>"$T/worker.log" &
  pid=$!
  # cancel job B while the first worker runs (early: on a fast machine the
  # whole queue can finish within a second)
  [ "$i" = 1 ] && { sleep 0.2; "$BIN" cancel "$B" --db "$DB" >/dev/null; }
  sleep "$((1 + RANDOM % 2)).$((RANDOM % 10))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  check "kill -9 #$i"
  [ "$i" = 1 ] && check "cancel"
done
sleep 5.5 # the killed workers' leases expire; the next claim reclaims them
"$BIN" run --model "$MODEL" --db "$DB" --max-seqs 8 --lease-seconds 5 --quiet 2>>"$T/worker.log"
check "last run"
"$BIN" retry "$A" --db "$DB" >/dev/null
check "retry"
"$BIN" run --model "$MODEL" --db "$DB" --max-seqs 8 --quiet 2>>"$T/worker.log"
check "run after retry"
read -r done failed cancelled <<<"$(sqlite3 -separator ' ' "$DB" \
  "SELECT SUM(n_done), SUM(n_failed), SUM(n_cancelled) FROM jobs")"
[ "$done" -gt 0 ] && [ "$failed" -gt 0 ] && [ "$cancelled" -gt 0 ] ||
  { echo "FAIL: the run was not mixed (done $done, failed $failed, cancelled $cancelled)"; exit 1; }
# a run ends only when nothing it can claim is left, even when a whole claim failed at once
left=$(sqlite3 "$DB" "SELECT COUNT(*) FROM requests WHERE state IN ('pending','running')")
[ "$left" = 0 ] || { echo "FAIL: the run ended with $left requests pending or running"; exit 1; }
st=$("$BIN" status "$A" --db "$DB")
echo "$st"
echo "PASS"
