#!/usr/bin/env bash
# signal_drain.sh — signals and the time limit drain a run without loss.
#
# On the demo model (tests/cli/lib/resume_job.py jobs):
# 1. SIGUSR1 mid-run (--drain-grace 1.5 --drain-margin 1, no periodic
#    checkpoints): exit 75 within the grace (requests that fit in the 0.5 s
#    left finish), runs.end_reason 'signal:SIGUSR1',
#    checkpoints written for the unfinished requests; a second run completes
#    the job and every output is byte-identical to an uninterrupted run.
# 2. SIGTERM twice (--drain-grace 60): the second signal checkpoints at once:
#    exit 75 long before the grace, checkpoints present, identical outputs.
# 3. --time-limit 1s: exit 75 by the limit, end_reason 'time_limit'.
# 4. --exclusive: refuses (exit 0, nothing done) while a worker is alive.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
SRC=${TOKENMILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
T=$(mktemp -d); trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
"$BIN" demo --dir "$T/demo" >/dev/null 2>&1
MODEL="$T/demo/model"
RUN=("$BIN" run --model "$MODEL" --max-seqs 8 --threads 1)
python3 "$SRC/tests/cli/lib/resume_job.py" make 80 900 > "$T/job.jsonl"
JOB=$("$BIN" submit "$T/job.jsonl" --db "$T/base.db" --name sig --mixed-endpoints)
for d in ref s1 s2 s3 s4; do sqlite3 "$T/base.db" ".backup '$T/$d.db'"; done
"${RUN[@]}" --db "$T/ref.db" --quiet
"$BIN" results "$JOB" --db "$T/ref.db" -o "$T/ref.jsonl"
NRES=$(sqlite3 "$T/ref.db" "SELECT COUNT(*) FROM results")  # some prompts + max_tokens exceed the context

wait_done() { # DB N: until N requests are done (or 60 s)
  for _ in $(seq 1 600); do
    [ "$(sqlite3 "$1" "SELECT COUNT(*) FROM requests WHERE state='done'" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
    sleep 0.1
  done
  echo "FAIL: $1 never reached $2 done requests"; exit 1
}
now_ms() { date +%s%3N; }
finish_and_compare() { # DB NAME
  "${RUN[@]}" --db "$1" --quiet
  [ "$(sqlite3 "$1" 'PRAGMA integrity_check')" = ok ] || { echo "FAIL: $2: integrity"; exit 1; }
  [ "$(sqlite3 "$1" "SELECT COUNT(*) FROM results")" = "$NRES" ] || { echo "FAIL: $2: result count"; exit 1; }
  [ "$(sqlite3 "$1" "SELECT COUNT(*) FROM checkpoints")" = 0 ] || { echo "FAIL: $2: checkpoints left"; exit 1; }
  "$BIN" results "$JOB" --db "$1" -o "$T/$2.jsonl"
  python3 "$SRC/tests/cli/lib/resume_job.py" compare "$T/ref.jsonl" "$T/$2.jsonl"
}

# 1. SIGUSR1 (Slurm's --signal=B:USR1@120 forwarded by the batch script)
"${RUN[@]}" --db "$T/s1.db" --drain-grace 1.5 --drain-margin 1 --checkpoint-every 0 2>"$T/s1.log" &
pid=$!
wait_done "$T/s1.db" 3
t0=$(now_ms); kill -USR1 "$pid"
rc=0; wait "$pid" || rc=$?
dt=$(( $(now_ms) - t0 ))
echo "1. SIGUSR1: exit $rc after ${dt} ms"; grep -E "draining|stopped" "$T/s1.log" || true
[ "$rc" = 75 ] || { echo "FAIL: exit $rc, want 75"; cat "$T/s1.log"; exit 1; }
[ "$dt" -lt 4000 ] || { echo "FAIL: took ${dt} ms (grace 1.5 s)"; exit 1; }
read -r reason nck ncols <<<"$(sqlite3 -separator ' ' "$T/s1.db" \
  "SELECT end_reason, requests_checkpointed, (SELECT COUNT(*) FROM checkpoints) FROM runs")"
echo "   end_reason $reason, requests checkpointed $nck, checkpoint rows $ncols"
[ "$reason" = signal:SIGUSR1 ] && [ "$nck" -gt 0 ] && [ "$ncols" -gt 0 ] || { echo "FAIL: run row / checkpoints"; exit 1; }
[ "$(sqlite3 "$T/s1.db" "SELECT COUNT(*) FROM requests WHERE state='running'")" = 0 ] || { echo "FAIL: leases not released"; exit 1; }
# charged for both attempts: what the checkpoint carried is inside the final cost
sqlite3 "$T/s1.db" "SELECT request_id, gpu_seconds, cost_usd FROM checkpoints" > "$T/s1.carried"
"$BIN" status --workers --db "$T/s1.db" | tee "$T/s1.status"
grep -q "checkpointed" "$T/s1.status" || { echo "FAIL: status does not show checkpointed work"; exit 1; }
finish_and_compare "$T/s1.db" s1
while IFS='|' read -r rid cs cu; do
  ok=$(sqlite3 "$T/s1.db" "SELECT gpu_seconds > $cs AND cost_usd > $cu AND attempts = 2 AND wasted_seconds > 0 FROM requests WHERE id='$rid'")
  [ "$ok" = 1 ] || { echo "FAIL: $rid not charged for both attempts (carried $cs s)"; \
    sqlite3 "$T/s1.db" "SELECT gpu_seconds, cost_usd, attempts, wasted_seconds FROM requests WHERE id='$rid'"; exit 1; }
done < "$T/s1.carried"
echo "   $(wc -l < "$T/s1.carried") resumed requests charged for both attempts, recompute counted as wasted"

# 2. SIGTERM twice: checkpoint now
"${RUN[@]}" --db "$T/s2.db" --drain-grace 60 --drain-margin 1 --checkpoint-every 0 2>"$T/s2.log" &
pid=$!
wait_done "$T/s2.db" 3
t0=$(now_ms); kill -TERM "$pid"; sleep 0.3; kill -TERM "$pid" 2>/dev/null || true
rc=0; wait "$pid" || rc=$?
dt=$(( $(now_ms) - t0 ))
echo "2. SIGTERM x2: exit $rc after ${dt} ms"
[ "$rc" = 75 ] && [ "$dt" -lt 10000 ] || { echo "FAIL: exit $rc after $dt ms"; cat "$T/s2.log"; exit 1; }
[ "$(sqlite3 "$T/s2.db" "SELECT end_reason FROM runs")" = signal:SIGTERM ] || { echo "FAIL: end_reason"; exit 1; }
[ "$(sqlite3 "$T/s2.db" "SELECT COUNT(*) FROM checkpoints")" -gt 0 ] || { echo "FAIL: no checkpoints"; exit 1; }
finish_and_compare "$T/s2.db" s2

# 3. --time-limit
t0=$(now_ms)
# --max-seqs 1, 1 s: the job must outlast the limit however fast the host is
# (outputs do not depend on the batch: the comparison below still holds)
rc=0; "${RUN[@]}" --max-seqs 1 --db "$T/s3.db" --time-limit 1s --drain-margin 0.3 --quiet || rc=$?
dt=$(( $(now_ms) - t0 ))
echo "3. --time-limit 1s: exit $rc after ${dt} ms"
[ "$rc" = 75 ] && [ "$dt" -lt 6000 ] || { echo "FAIL: exit $rc after $dt ms"; exit 1; }
[ "$(sqlite3 "$T/s3.db" "SELECT end_reason FROM runs")" = time_limit ] || { echo "FAIL: end_reason"; exit 1; }
finish_and_compare "$T/s3.db" s3

# 4. --exclusive: the DB's worker table decides
"${RUN[@]}" --db "$T/s4.db" --quiet 2>/dev/null &
pid=$!
wait_done "$T/s4.db" 1
rc=0; "${RUN[@]}" --db "$T/s4.db" --exclusive 2>"$T/s4.log" || rc=$?
cat "$T/s4.log"
[ "$rc" = 0 ] && grep -q "another worker is alive" "$T/s4.log" || { echo "FAIL: --exclusive did not refuse"; exit 1; }
[ "$(sqlite3 "$T/s4.db" "SELECT COUNT(*) FROM runs")" = 1 ] || { echo "FAIL: the refused worker opened a run"; exit 1; }
wait "$pid"
rc=0; "${RUN[@]}" --db "$T/s4.db" --exclusive --quiet || rc=$?
[ "$rc" = 0 ] || { echo "FAIL: --exclusive after the other stopped: exit $rc"; exit 1; }
echo "PASS"
