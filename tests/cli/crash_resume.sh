#!/usr/bin/env bash
# crash_resume.sh — kill -9 at 20 random moments loses and duplicates nothing.
#
# A job of 200 requests (tests/cli/lib/resume_job.py: sampled and greedy,
# n=2, logprobs, stop strings, penalties) on the demo model. The worker is
# started with --checkpoint-every 0.3 and killed with SIGKILL at 20 seeded
# random moments, restarted each time; then a last run finishes the queue.
# Checks: every request has exactly one result, PRAGMA integrity_check is
# ok, and every output is byte-identical (choices, token counts) to the same
# job run without interruption (a copy of the DB taken after submit); some
# requests did resume from a checkpoint and were charged for the recompute.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
SRC=${TOKENMILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
T=$(mktemp -d); trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
"$BIN" demo --dir "$T/demo" >/dev/null 2>&1
MODEL="$T/demo/model"
python3 "$SRC/tests/cli/lib/resume_job.py" make 200 480 > "$T/job.jsonl"
JOB=$("$BIN" submit "$T/job.jsonl" --db "$T/a.db" --name crash --mixed-endpoints)
sqlite3 "$T/a.db" ".backup '$T/ref.db'"

# the uninterrupted reference
"$BIN" run --model "$MODEL" --db "$T/ref.db" --max-seqs 16 --quiet  # batch-invariant: the batch size does not change outputs
"$BIN" results "$JOB" --db "$T/ref.db" -o "$T/ref.jsonl"

RANDOM=20261123
kills=0
for i in $(seq 1 20); do
  "$BIN" run --model "$MODEL" --db "$T/a.db" --max-seqs 4 --threads 1 --checkpoint-every 0.3 --lease-seconds 5 \
    --quiet 2>>"$T/worker.log" &
  pid=$!
  ms=$((200 + RANDOM % 800))
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null || true
done
echo "killed $kills of 20 workers mid-run"
# whatever is left (leases of killed workers expire after 5 s)
"$BIN" run --model "$MODEL" --db "$T/a.db" --max-seqs 16 --lease-seconds 5 --quiet 2>>"$T/worker.log"
"$BIN" results "$JOB" --db "$T/a.db" -o "$T/out.jsonl"

ok=$(sqlite3 "$T/a.db" 'PRAGMA integrity_check')
[ "$ok" = ok ] || { echo "FAIL: integrity_check: $ok"; exit 1; }
read -r n_req n_done n_res n_ck <<<"$(sqlite3 -separator ' ' "$T/a.db" \
  "SELECT (SELECT COUNT(*) FROM requests), (SELECT COUNT(*) FROM requests WHERE state='done'),
          (SELECT COUNT(*) FROM results), (SELECT COUNT(*) FROM checkpoints)")"
echo "requests $n_req, done $n_done, results $n_res, checkpoints left $n_ck"
[ "$n_req" = 200 ] && [ "$n_done" = 200 ] && [ "$n_res" = 200 ] && [ "$n_ck" = 0 ] || { echo "FAIL: counts"; exit 1; }
python3 "$SRC/tests/cli/lib/resume_job.py" compare "$T/ref.jsonl" "$T/out.jsonl"
[ "$kills" -ge 15 ] || { echo "FAIL: only $kills kills landed while a worker ran"; exit 1; }
read -r retried wasted <<<"$(sqlite3 -separator ' ' "$T/a.db" \
  "SELECT COUNT(*), COALESCE(SUM(wasted_seconds > 0), 0) FROM requests WHERE attempts > 1")"
echo "requests claimed more than once: $retried; of them charged for recompute: $wasted"
[ "$retried" -gt 0 ] && [ "$wasted" -gt 0 ] || { echo "FAIL: no request resumed from a checkpoint"; exit 1; }
# charged for both attempts: the recompute share is inside the request's cost
bad=$(sqlite3 "$T/a.db" "SELECT COUNT(*) FROM requests WHERE wasted_seconds > gpu_seconds + 1e-12 OR wasted_usd > cost_usd + 1e-15")
[ "$bad" = 0 ] || { echo "FAIL: $bad requests with wasted > charged"; exit 1; }
echo "PASS"
