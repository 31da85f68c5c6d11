#!/usr/bin/env bash
# supervisor.sh — `tokenmill run --workers N` (issue 17): one supervisor, N
# CPU worker processes on one queue.
#
# A job of 2,000 requests (tests/cli/lib/resume_job.py: greedy and seeded
# sampling, n=2, logprobs, stop strings, penalties; max_tokens 2-4) on the
# demo model:
#  1. 4 workers, one of them kill -9'd mid-run and restarted by the
#     supervisor: exit 0, every request exactly one result, outputs
#     byte-identical to a single-worker run of the same job, integrity_check
#     ok, the cost views agree with the requests and the runs' totals;
#  2. SIGTERM to the supervisor drains every worker: exit 75, nothing lost;
#     a rerun finishes (exit 0) with the same outputs;
#     the supervisor kill -9'd: its workers drain (SIGTERM from the kernel);
#  3. a worker that always crashes (the TOKENMILL_TEST_CRASH_AFTER hook) is
#     restarted --max-restarts times, then given up: exit 75, work left;
#  4. bad options (64), --gpus on a build without CUDA (69), a model no
#     worker can load (the single worker's code).
set -euo pipefail
SECONDS=0; say() { echo "[$SECONDS s] $*"; }
BIN=${TOKENMILL_BIN:?}
SRC=${TOKENMILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
T=$(mktemp -d); trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
ulimit -c 0 # the crash hook aborts: no core files
"$BIN" demo --dir "$T/demo" >/dev/null 2>&1
MODEL="$T/demo/model"
N=2000
python3 "$SRC/tests/cli/lib/resume_job.py" make $N 4 > "$T/job.jsonl"
JOB=$("$BIN" submit "$T/job.jsonl" --mixed-endpoints --db "$T/a.db" --name sup)
for c in ref b c d; do sqlite3 "$T/a.db" ".backup '$T/$c.db'"; done

"$BIN" run --model "$MODEL" --db "$T/ref.db" --quiet
"$BIN" results "$JOB" --db "$T/ref.db" -o "$T/ref.jsonl"

done_count() { sqlite3 "$1" "SELECT COUNT(*) FROM requests WHERE state='done'" 2>/dev/null || echo 0; }
wait_done() { # DB COUNT PID: until COUNT requests are done (or the supervisor ended)
  for _ in $(seq 1 600); do
    [ "$(done_count "$1")" -ge "$2" ] && return 0
    kill -0 "$3" 2>/dev/null || return 0
    sleep 0.1
  done
}
check_db() { # DB: integrity, exactly one result per request, no checkpoint left
  local ok; ok=$(sqlite3 "$1" 'PRAGMA integrity_check')
  [ "$ok" = ok ] || fail "integrity_check: $ok"
  read -r n_req n_done n_res n_ck n_dup <<<"$(sqlite3 -separator ' ' "$1" \
    "SELECT (SELECT COUNT(*) FROM requests), (SELECT COUNT(*) FROM requests WHERE state='done'),
            (SELECT COUNT(*) FROM results), (SELECT COUNT(*) FROM checkpoints),
            (SELECT COUNT(*) FROM (SELECT request_id FROM results GROUP BY request_id HAVING COUNT(*) > 1))")"
  echo "requests $n_req, done $n_done, results $n_res, checkpoints left $n_ck, duplicated $n_dup"
  [ "$n_req" = $N ] && [ "$n_done" = $N ] && [ "$n_res" = $N ] && [ "$n_ck" = 0 ] && [ "$n_dup" = 0 ] \
    || fail "counts"
}

say "1. four workers, one kill -9'd and restarted"
set +e
"$BIN" run --model "$MODEL" --db "$T/a.db" --workers 4 --max-seqs 16 --checkpoint-every 0.3 --lease-seconds 5 \
  --verbose 2>"$T/sup1.log" &
sup=$!
set -e
wait_done "$T/a.db" 300 $sup
victim=$(sed -n 's/^\[supervisor\] w1 started (pid \([0-9]*\))$/\1/p' "$T/sup1.log" | head -1)
[ -n "$victim" ] || { cat "$T/sup1.log"; fail "no pid for w1"; }
kill -9 "$victim" || fail "w1 (pid $victim) was not running at $(done_count "$T/a.db") done"
set +e; wait $sup; rc=$?; set -e
[ "$rc" = 0 ] || { tail -20 "$T/sup1.log"; fail "--workers 4 exited $rc"; }
grep -q '^\[supervisor\] w1 killed by signal 9; restart 1/5 in 1s$' "$T/sup1.log" || { cat "$T/sup1.log"; fail "no restart"; }
[ "$(grep -c '^\[supervisor\] w1 started' "$T/sup1.log")" = 2 ] || fail "w1 not started twice"
grep -q '^\[tokenmill\] [0-9]*/[0-9]* done' "$T/sup1.log" || fail "no aggregated progress line"
! grep -q '^\[w[0-9]*\] \[tokenmill\]' "$T/sup1.log" || fail "a worker printed its own progress line"
! grep -qi 'database is locked' "$T/sup1.log" || fail "database is locked"
check_db "$T/a.db"
"$BIN" results "$JOB" --db "$T/a.db" -o "$T/a.jsonl"
python3 "$SRC/tests/cli/lib/resume_job.py" compare "$T/ref.jsonl" "$T/a.jsonl"
# the runs: 5 (4 + the restart), one of them lost; the cost views agree with the requests and the runs
read -r n_runs n_lost n_workers <<<"$(sqlite3 -separator ' ' "$T/a.db" \
  "SELECT COUNT(*), SUM(end_reason='lost' OR ended_at IS NULL), COUNT(DISTINCT worker_id) FROM runs")"
echo "runs $n_runs (lost or open: $n_lost), workers $n_workers"
[ "$n_runs" = 5 ] && [ "$n_workers" = 5 ] || fail "runs"
python3 - "$T/a.db" <<'PY' || fail "cost views"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
one = lambda q: db.execute(q).fetchone()
req = one("SELECT COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(gpu_seconds), SUM(cost_usd) FROM requests")
job = one("SELECT SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), SUM(gpu_seconds), SUM(cost_usd) FROM job_costs")
day = one("SELECT SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), SUM(gpu_seconds), SUM(cost_usd) FROM daily_costs")
mod = one("SELECT SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), SUM(gpu_seconds), SUM(cost_usd) FROM model_costs")
rc = one("SELECT COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(gpu_seconds), SUM(cost_usd) FROM request_costs")
for name, v in (("job_costs", job), ("daily_costs", day), ("model_costs", mod), ("request_costs", rc)):
    assert v[:3] == req[:3], (name, v, req)
    assert abs(v[3] - req[3]) < 1e-9 and abs(v[4] - req[4]) < 1e-12, (name, v, req)
# the runs that ended (not the killed one) recorded what they completed
runs = one("SELECT SUM(requests_done), SUM(completion_tokens) FROM runs WHERE end_reason <> 'lost'")
by_run = one("SELECT COUNT(*), SUM(completion_tokens) FROM requests WHERE run_id IN "
             "(SELECT id FROM runs WHERE end_reason <> 'lost')")
assert runs == by_run, (runs, by_run)
w = one("SELECT SUM(requests), SUM(completion_tokens) FROM worker_costs WHERE worker IN "
        "(SELECT worker_id FROM runs WHERE end_reason <> 'lost')")
assert w == runs, (w, runs)
print(f"cost views: {req[0]} requests, {req[2]} completion tokens, ${req[4]:.6f}; ended runs {runs}")
PY

say "2. SIGTERM to the supervisor drains every worker, a rerun finishes"
set +e
"$BIN" run --model "$MODEL" --db "$T/b.db" --workers 4 --max-seqs 16 --lease-seconds 5 --verbose 2>"$T/sup2.log" &
sup=$!
set -e
wait_done "$T/b.db" 200 $sup
kill -TERM $sup
set +e; wait $sup; rc=$?; set -e
[ "$rc" = 75 ] || { tail -20 "$T/sup2.log"; fail "SIGTERM: exited $rc, want 75"; }
grep -q '^\[supervisor\] signal 15: draining 4 workers$' "$T/sup2.log" || fail "no drain message"
! grep -q '^\[supervisor\] .*restart' "$T/sup2.log" || fail "a worker was restarted after a drain"
left=$(sqlite3 "$T/b.db" "SELECT COUNT(*) FROM requests WHERE state IN ('pending','running')")
echo "after SIGTERM: $(done_count "$T/b.db") done, $left left"
[ "$left" -gt 0 ] || fail "SIGTERM: nothing left (the drain came too late to test)"
sqlite3 "$T/b.db" "SELECT COUNT(*) FROM requests WHERE state='running'" | grep -qx 0 || fail "leases kept after drain"
"$BIN" run --model "$MODEL" --db "$T/b.db" --workers 2 --quiet || fail "rerun after the drain"
check_db "$T/b.db"
"$BIN" results "$JOB" --db "$T/b.db" -o "$T/b.jsonl"
python3 "$SRC/tests/cli/lib/resume_job.py" compare "$T/ref.jsonl" "$T/b.jsonl"

say "2b. the supervisor killed: its workers get SIGTERM (PR_SET_PDEATHSIG) and drain"
set +e
"$BIN" run --model "$MODEL" --db "$T/d.db" --workers 2 --max-seqs 16 --lease-seconds 5 --quiet 2>"$T/sup2b.log" &
sup=$!
set -e
wait_done "$T/d.db" 100 $sup
kill -9 $sup; wait $sup 2>/dev/null || true
for _ in $(seq 1 300); do
  reasons=$(sqlite3 "$T/d.db" "SELECT group_concat(COALESCE(end_reason, '-'), ' ') FROM runs" 2>/dev/null || true)
  [ "$reasons" = "signal:SIGTERM signal:SIGTERM" ] && break
  sleep 0.1
done
[ "$reasons" = "signal:SIGTERM signal:SIGTERM" ] || fail "after the supervisor was killed, runs ended: $reasons"
[ "$(sqlite3 "$T/d.db" "SELECT COUNT(*) FROM requests WHERE state='running'")" = 0 ] || fail "leases kept"

say "3. a crash loop is bounded by --max-restarts"
set +e
TOKENMILL_TEST_CRASH_AFTER=1 "$BIN" run --model "$MODEL" --db "$T/c.db" --workers 2 --max-restarts 2 \
  --lease-seconds 5 2>"$T/sup3.log"
rc=$?
set -e
[ "$rc" = 75 ] || { cat "$T/sup3.log"; fail "crash loop: exited $rc, want 75"; }
for w in 0 1; do
  grep -q "^\[supervisor\] w$w killed by signal 6; restart 2/2 in 2s$" "$T/sup3.log" || fail "w$w: no second restart"
  grep -q "^\[supervisor\] w$w killed by signal 6; not restarted (--max-restarts reached)$" "$T/sup3.log" \
    || fail "w$w: not given up"
done
[ "$(grep -c 'killed by signal 6' "$T/sup3.log")" = 6 ] || fail "crash loop: not 3 attempts per worker"
[ "$(sqlite3 "$T/c.db" 'PRAGMA integrity_check')" = ok ] || fail "crash loop: integrity"

say "4. options and start failures"
expect_rc() {
  local want=$1; shift
  set +e; "$@" >"$T/out.txt" 2>"$T/err.txt"; local rc=$?; set -e
  [ "$rc" = "$want" ] || { cat "$T/out.txt" "$T/err.txt"; fail "'$*' exited $rc, want $want"; }
}
expect_rc 64 "$BIN" run --model "$MODEL" --db "$T/c.db" --workers 0
expect_rc 64 "$BIN" run --model "$MODEL" --db "$T/c.db" --workers 257
expect_rc 64 "$BIN" run --model "$MODEL" --db "$T/c.db" --gpus 0,x
expect_rc 64 "$BIN" run --model "$MODEL" --db "$T/c.db" --gpus 1,1
expect_rc 64 "$BIN" run --model "$MODEL" --db "$T/c.db" --gpus ""
expect_rc 64 "$BIN" run --model "$MODEL" --db "$T/c.db" --gpus 0 --workers 2
expect_rc 64 "$BIN" run --model "$MODEL" --db "$T/c.db" --gpus all --device cpu
expect_rc 64 "$BIN" run --model "$MODEL" --db "$T/c.db" --workers 2 --exclusive
expect_rc 64 "$BIN" run --model "$MODEL" --db "$T/c.db" --workers 2 --max-restarts -1
if ! "$BIN" --version | grep -q 'CUDA backend: built in'; then
  expect_rc 69 "$BIN" run --model "$MODEL" --db "$T/c.db" --gpus all
  grep -q 'no CUDA backend' "$T/err.txt" || fail "--gpus without CUDA: $(cat "$T/err.txt")"
fi
set +e; "$BIN" run --model "$T/nonexistent" --db "$T/c.db" --quiet 2>/dev/null; want=$?; set -e
expect_rc "$want" "$BIN" run --model "$T/nonexistent" --db "$T/c.db" --workers 3 --max-restarts 1
[ "$(grep -c '^\[w[0-2]\] ' "$T/err.txt")" -ge 3 ] || fail "workers' errors not shown with a [wN] prefix"
# a new DB: created once by the supervisor, empty queue, every worker exits 0
expect_rc 0 "$BIN" run --model "$MODEL" --db "$T/new.db" --workers 3 --quiet
[ "$(sqlite3 "$T/new.db" "SELECT COUNT(*) FROM runs")" = 3 ] || fail "new DB: not 3 runs"
echo "PASS"
