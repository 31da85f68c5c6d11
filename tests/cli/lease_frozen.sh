#!/usr/bin/env bash
# lease_frozen.sh — a worker frozen past its lease writes nothing twice.
#
# Worker A (--lease-seconds 5, checkpoints every 0.5 s) is frozen with SIGSTOP
# mid-run. Worker B starts, takes the pending requests, and when A's leases
# expire reclaims A's requests too (resuming from A's checkpoints) and
# finishes the job. A is then resumed with SIGCONT: it finds its leases gone,
# drops those requests and exits without writing a result or a checkpoint.
# Checks: exactly one result per request, outputs byte-identical to an
# uninterrupted run, A's log says its leases were lost, nothing changed
# after A came back, integrity_check ok.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
SRC=${TOKENMILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
T=$(mktemp -d); trap 'kill -CONT $(jobs -p) 2>/dev/null || true; kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
"$BIN" demo --dir "$T/demo" >/dev/null 2>&1
MODEL="$T/demo/model"
RUN=("$BIN" run --model "$MODEL" --max-seqs 4 --threads 1 --lease-seconds 5)
python3 "$SRC/tests/cli/lib/resume_job.py" make 40 900 > "$T/job.jsonl"
JOB=$("$BIN" submit "$T/job.jsonl" --db "$T/a.db" --name lease --mixed-endpoints)
sqlite3 "$T/a.db" ".backup '$T/ref.db'"
"${RUN[@]}" --db "$T/ref.db" --quiet
"$BIN" results "$JOB" --db "$T/ref.db" -o "$T/ref.jsonl"
NRES=$(sqlite3 "$T/ref.db" "SELECT COUNT(*) FROM results")

"${RUN[@]}" --db "$T/a.db" --checkpoint-every 0.5 2>"$T/a.log" &
A=$!
for _ in $(seq 1 300); do
  [ "$(sqlite3 "$T/a.db" "SELECT COUNT(*) FROM checkpoints")" -gt 0 ] && break; sleep 0.1
done
kill -STOP "$A"
held=$(sqlite3 "$T/a.db" "SELECT COUNT(*) FROM requests WHERE state='running'")
echo "A frozen holding $held requests"
[ "$held" -gt 0 ] || { echo "FAIL: A held nothing when frozen"; exit 1; }
"${RUN[@]}" --db "$T/a.db" 2>"$T/b.log"
done_b=$(sqlite3 "$T/a.db" "SELECT COUNT(*) FROM results")
echo "B finished: $done_b results"
[ "$done_b" = "$NRES" ] || { echo "FAIL: B left work: $done_b of $NRES"; cat "$T/b.log"; exit 1; }
before=$(sqlite3 "$T/a.db" "SELECT group_concat(request_id || ':' || created_at || ':' || response_size) FROM results")
kill -CONT "$A"
rc=0; wait "$A" || rc=$?
echo "A resumed and exited $rc"
cat "$T/a.log" | grep -v "^\[tokenmill\]" | tail -5
grep -q "lease lost" "$T/a.log" || { echo "FAIL: A did not notice its lost leases"; exit 1; }
after=$(sqlite3 "$T/a.db" "SELECT group_concat(request_id || ':' || created_at || ':' || response_size) FROM results")
[ "$before" = "$after" ] || { echo "FAIL: results changed after A came back"; exit 1; }
[ "$(sqlite3 "$T/a.db" "SELECT COUNT(*) FROM checkpoints")" = 0 ] || { echo "FAIL: A wrote checkpoints"; exit 1; }
[ "$(sqlite3 "$T/a.db" 'PRAGMA integrity_check')" = ok ] || { echo "FAIL: integrity"; exit 1; }
"$BIN" results "$JOB" --db "$T/a.db" -o "$T/out.jsonl"
python3 "$SRC/tests/cli/lib/resume_job.py" compare "$T/ref.jsonl" "$T/out.jsonl"
echo "PASS"
