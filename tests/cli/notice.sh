#!/usr/bin/env bash
# notice.sh — a spot preemption notice, end to end, against a fake AWS
# metadata service (tests/cli/fake_metadata.py, IMDSv2).
#
# A job with more work than fits in the test's window runs with
# `--preemption-notice aws`; once it is under way the fake announces
# "terminate at now + 10 s". Checks: the run exits 75 before that deadline;
# runs.end_reason = 'notice:aws'; every unfinished request that had been
# started has a checkpoint row (as many as runs.requests_checkpointed), none
# is left running or leased; then a second plain `run` completes every
# request with exactly one result of the full length (the resumed ones too).
# Needs only the binary (the model is `tokenmill demo`'s), python3 and sqlite3.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
SRC=${TOKENMILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
for t in python3 sqlite3; do
  command -v $t >/dev/null || { echo "SKIP: $t not found"; exit 77; }
done
T=$(mktemp -d)
FAKE=""
cleanup() {
  if [ -n "$FAKE" ]; then kill "$FAKE" 2>/dev/null || true; wait "$FAKE" 2>/dev/null || true; fi
  rm -rf "$T"
}
trap cleanup EXIT
export TOKENMILL_DB="$T/q.db"
now() { python3 -c 'import time; print(f"{time.time():.3f}")'; }

# the demo's tiny model (written, and its 5-request demo job run, in ~1 s)
(cd "$T" && "$BIN" demo --dir demo > demo.log 2>&1) || { cat "$T/demo.log"; exit 1; }
MODEL="$T/demo/model"

# 100 requests x 900 tokens, 4 at a time on one thread: ~16 s of work without
# sanitizers (~4x that with ASan), more than the <= 7 s before the drain ends
N=100
python3 - "$N" > "$T/job.jsonl" <<'PY'
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/completions",
        "body": {"prompt": [79, 110, 99, 101, i % 250], "max_tokens": 900, "ignore_eos": True}}))
PY
JOB=$("$BIN" submit "$T/job.jsonl" --name notice)

# the fake metadata service
python3 "$SRC/tests/cli/fake_metadata.py" --control "$T/terminate" --log "$T/meta.log" > "$T/port" 2> "$T/meta.err" &
FAKE=$!
for _ in $(seq 50); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || { echo "fake metadata server did not start"; cat "$T/meta.err"; exit 1; }
PORT=$(cat "$T/port")
export TOKENMILL_AWS_METADATA_URL="http://127.0.0.1:$PORT"

RUN_ARGS=(--model "$MODEL" --max-seqs 4 --threads 1)
# --drain-margin 10 = the whole notice: the drain stops at once, so the requests
# in flight are checkpointed whatever the poll's phase (with a smaller margin
# they may all fit and finish, which is correct but tests less)
"$BIN" run "${RUN_ARGS[@]}" --preemption-notice aws --drain-margin 10 --checkpoint-every 30 \
  > "$T/run1.out" 2> "$T/run1.err" &
RUN=$!
# wait until it is under way (a few results stored), then announce the end
for _ in $(seq 300); do
  done_n=$(sqlite3 "$T/q.db" "select count(*) from results" 2>/dev/null || echo 0)
  [ "${done_n:-0}" -ge 2 ] && break
  kill -0 "$RUN" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$RUN" 2>/dev/null || { echo "run ended before the notice"; cat "$T/run1.err"; exit 1; }
echo 10 > "$T/terminate"
DEADLINE=$(python3 -c 'import os,sys; print(int(os.stat(sys.argv[1]).st_mtime + 10))' "$T/terminate")
set +e; wait "$RUN"; rc=$?; set -e
END=$(now)
echo "run 1: exit $rc at deadline$(python3 -c "print(f'{$END - $DEADLINE:+.1f}')")s"
if [ "$rc" -ne 75 ]; then echo "run 1 exited $rc, expected 75"; cat "$T/run1.err"; exit 1; fi
python3 -c "import sys; sys.exit(0 if $END < $DEADLINE else 1)" || {
  echo "run 1 ended after the announced termination time"; cat "$T/run1.err"; exit 1; }
grep -q "PUT /latest/api/token 200" "$T/meta.log" || { echo "no IMDSv2 token was asked for"; cat "$T/meta.log"; exit 1; }
grep -q "GET /latest/meta-data/spot/instance-action 200" "$T/meta.log" || { echo "the notice was never read"; exit 1; }
! grep -q " 401$" "$T/meta.log" || { echo "a GET went out without a valid token"; exit 1; }

python3 - "$T/q.db" "$N" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); n = int(sys.argv[2])
runs = db.execute("select id, end_reason, exit_code, requests_checkpointed from runs order by started_at, rowid").fetchall()
r = runs[-1]
assert r[1] == "notice:aws", runs
assert r[2] in (75, None), runs
states = dict(db.execute("select state, count(*) from requests where job_id in (select id from jobs where name='notice') group by state"))
assert states.get("running", 0) == 0, states
done = states.get("done", 0)
assert 0 < done < n, states
leased = db.execute("select count(*) from requests where lease_owner is not null and state='pending'").fetchone()[0]
assert leased == 0, f"{leased} pending requests still leased"
ck = db.execute("select count(*), coalesce(sum(tokens_done), 0) from checkpoints").fetchone()
started_left = db.execute("select count(*) from requests where state='pending' and attempts > 0").fetchone()[0]
ck_done = db.execute("select count(*) from checkpoints c join requests r on r.id=c.request_id where r.state='done'").fetchone()[0]
assert ck_done == 0, "a finished request kept its checkpoint"
assert ck[0] == r[3], (ck, r)
assert ck[0] > 0 and ck[1] > 0, ck            # the in-flight requests were saved
assert ck[0] <= started_left, (ck, started_left)  # only requests it had claimed
print(f"run 1: {done}/{n} done, {ck[0]} checkpointed ({ck[1]} tokens), end_reason {r[1]}")
PY

# the second run: plain, finishes everything (the checkpointed requests resume)
"$BIN" run "${RUN_ARGS[@]}" --quiet > "$T/run2.out" 2> "$T/run2.err" || { echo "run 2 failed"; cat "$T/run2.err"; exit 1; }
"$BIN" results "$JOB" -o "$T/out.jsonl"
python3 - "$T/q.db" "$T/out.jsonl" "$N" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1]); n = int(sys.argv[3])
jid = db.execute("select id from jobs where name='notice'").fetchone()[0]
st = dict(db.execute("select state, count(*) from requests where job_id=? group by state", (jid,)))
assert st == {"done": n}, st
per = db.execute("select count(*), count(distinct request_id) from results where request_id in (select id from requests where job_id=?)", (jid,)).fetchone()
assert per == (n, n), per
left = db.execute("select count(*) from checkpoints").fetchone()[0]
assert left == 0, f"{left} checkpoints left after completion"
seen = {}
for line in open(sys.argv[2]):
    o = json.loads(line)
    assert o["error"] is None, o
    u = o["response"]["body"]["usage"]
    assert u["completion_tokens"] == 900, (o["custom_id"], u)
    seen[o["custom_id"]] = seen.get(o["custom_id"], 0) + 1
assert sorted(seen) == sorted(f"r{i}" for i in range(n)) and set(seen.values()) == {1}, "not exactly one result each"
reasons = [r[0] for r in db.execute("select end_reason from runs order by started_at, rowid")]
assert reasons[-2:] == ["notice:aws", "empty"], reasons
print(f"run 2: all {n} requests done, one result each, 900 tokens each; runs: {reasons}")
PY
echo "notice.sh: ok"
