#!/usr/bin/env bash
# disk_full.sh — a full disk loses nothing (issue 19). On a small tmpfs
# (skipped with a message where mounting one is not permitted):
#  1. the disk is full before `run` starts: exit 74, nothing claimed; once
#     space is freed, a rerun completes everything;
#  2. the disk fills while `run` works: exit 74; the requests it held come
#     back when their leases expire; a rerun completes everything and the
#     outputs are byte-identical to an uninterrupted run (seeded sampling);
#  3. `results -o` onto the full disk: exit 74, the existing file untouched,
#     no temporary file left;
#  4. `submit` onto the full disk: exit 74, no job added, integrity ok.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
SRC=${TOKENMILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
T=$(mktemp -d)
F="$T/full"
mkdir -p "$F"
if ! mount -t tmpfs -o size=24m tmpfs "$F" 2>/dev/null; then
  rm -rf "$T"; echo "SKIP: cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)"; exit 77
fi
trap 'kill -9 $(jobs -p) 2>/dev/null || true; umount "$F" 2>/dev/null || true; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
fill() { dd if=/dev/zero of="$F/filler" bs=1k count=100000 2>/dev/null || true; }
unfill() { rm -f "$F/filler"; }
"$BIN" demo --dir "$T/demo" >/dev/null 2>&1
MODEL="$T/demo/model"
python3 - > "$T/job.jsonl" <<'PY'
import json
for i in range(300):
    print(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/completions",
                      "body": {"model": "demo", "prompt": "hello " * 20, "max_tokens": 64, "temperature": 0.7,
                               "seed": i}}))
PY
JOB=$("$BIN" submit "$T/job.jsonl" --db "$F/q.db")
cp "$F/q.db" "$T/ref.db"
"$BIN" run --model "$MODEL" --db "$T/ref.db" --quiet
"$BIN" results "$JOB" --db "$T/ref.db" -o "$T/ref.jsonl"

# 1. full before the run starts
fill
rc=0; "$BIN" run --model "$MODEL" --db "$F/q.db" --quiet 2>"$T/e1" || rc=$?
unfill
[ "$rc" = 74 ] || fail "1: run on a full disk exited $rc, not 74: $(cat "$T/e1")"
[ "$(sqlite3 "$F/q.db" "SELECT COUNT(*) FROM requests WHERE state='pending'")" = 300 ] || fail "1: requests were touched"
echo "1. full before the run: exit 74, all 300 requests still pending ($(head -c 120 "$T/e1"))"

# 2. full while the run works
rc=0
( r=0; "$BIN" run --model "$MODEL" --db "$F/q.db" --quiet --lease-seconds 5 --max-seqs 4 --threads 1 2>"$T/e2" || r=$?
  echo "$r" > "$T/rc2" ) &
for _ in $(seq 1 100); do
  [ "$(sqlite3 "$F/q.db" "SELECT COUNT(*) FROM requests WHERE state='done'" 2>/dev/null || echo 0)" -ge 20 ] && break
  sleep 0.05
done
fill
wait
unfill
rc=$(cat "$T/rc2")
done_mid=$(sqlite3 "$F/q.db" "SELECT COUNT(*) FROM requests WHERE state='done'")
[ "$rc" = 74 ] || fail "2: run exited $rc when the disk filled, not 74: $(cat "$T/e2")"
[ "$done_mid" -lt 300 ] || fail "2: the disk filled too late (all done)"
sleep 6 # the held leases expire
"$BIN" run --model "$MODEL" --db "$F/q.db" --quiet
[ "$(sqlite3 "$F/q.db" 'PRAGMA integrity_check')" = ok ] || fail "2: integrity"
"$BIN" results "$JOB" --db "$F/q.db" -o "$T/out.jsonl"
python3 "$SRC/tests/cli/lib/resume_job.py" compare "$T/ref.jsonl" "$T/out.jsonl"
echo "2. disk filled with $done_mid/300 done: exit 74; after freeing space and a rerun, identical outputs"

# 3. results -o onto the full disk
echo old > "$F/out.jsonl"
fill
rc=0; "$BIN" results "$JOB" --db "$T/ref.db" -o "$F/out.jsonl" 2>"$T/e3" || rc=$?
unfill
[ "$rc" = 74 ] || fail "3: results on a full disk exited $rc, not 74: $(cat "$T/e3")"
[ "$(cat "$F/out.jsonl")" = old ] || fail "3: the existing output file was changed"
[ -z "$(ls "$F" | grep -v '^out.jsonl$\|^q.db')" ] || fail "3: files left behind: $(ls "$F")"
echo "3. results -o on a full disk: exit 74, old file intact ($(head -c 120 "$T/e3"))"

# 4. submit onto the full disk
cp "$T/ref.db" "$F/s.db"
fill
rc=0; "$BIN" submit "$T/job.jsonl" --db "$F/s.db" 2>"$T/e4" >/dev/null || rc=$?
unfill
[ "$rc" = 74 ] || fail "4: submit on a full disk exited $rc, not 74: $(cat "$T/e4")"
[ "$(sqlite3 "$F/s.db" 'SELECT COUNT(*) FROM jobs')" = 1 ] || fail "4: a job was added"
[ "$(sqlite3 "$F/s.db" 'PRAGMA integrity_check')" = ok ] || fail "4: integrity"
echo "4. submit on a full disk: exit 74, no job added"
echo PASS
