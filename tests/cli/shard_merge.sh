#!/usr/bin/env bash
# shard_merge.sh — `tokenmill shard` + `tokenmill merge` give what one worker
# on one DB gives.
#
# A job of 100 requests (tests/cli/lib/resume_job.py: chat and completions,
# greedy and sampled, n=2, logprobs, stops; plus 2 lines that fail at run
# time) is submitted; a copy of the DB taken then is the reference, run
# uninterrupted. The origin runs 2 s first (some done, in-flight ones
# checkpointed), then is sharded into 4: disjoint, all pending requests out,
# balanced by estimated work (LPT bound), done ones stay, a local worker on
# the origin finds nothing to wait for. Shards 0, 2, 3 run; shard 1 is killed
# with kill -9 mid-run and merged while unfinished (its rest goes back to
# pending in the origin), then resumed, finished and merged again (the rest is
# taken). Checks: results and error lines byte-identical to the reference
# (but the "created" times, measured cost and prefix-cache hits), every request one result, integrity ok, the
# second full merge changes no table (dump compared), the job completed,
# cost views sum to the requests and the runs of the shards; a shard merged
# into another DB, into the copy taken before sharding, or a non-shard is
# refused naming the identities; a re-shard of a shard merges back up.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
SRC=${TOKENMILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
T=$(mktemp -d); trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$BIN" demo --dir "$T/demo" >/dev/null 2>&1
MODEL="$T/demo/model"
python3 "$SRC/tests/cli/lib/resume_job.py" make 100 600 > "$T/job.jsonl"
for i in 1 2; do  # past the demo model's 1024-token context: failed at run time, an error line
  echo "{\"custom_id\":\"toolong$i\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":[1,2,3],\"max_tokens\":2000}}"
done >> "$T/job.jsonl"
JOB=$("$BIN" submit "$T/job.jsonl" --mixed-endpoints --db "$T/a.db" --name sharded)
sqlite3 "$T/a.db" ".backup '$T/ref.db'"
sqlite3 "$T/a.db" ".backup '$T/other.db'"   # the same job, another database (gets its own identity)

"$BIN" run --model "$MODEL" --db "$T/ref.db" --max-seqs 16 --quiet
"$BIN" results "$JOB" --db "$T/ref.db" -o "$T/ref.jsonl"
"$BIN" results "$JOB" --db "$T/ref.db" --errors -o "$T/ref-err.jsonl"

# some work done here first; the in-flight requests are checkpointed
rc=0; "$BIN" run --model "$MODEL" --db "$T/a.db" --max-seqs 1 --threads 1 --time-limit 1s --drain-margin 0.3 --quiet || rc=$?
[ "$rc" = 75 ] || fail "the 1 s run exited $rc, not 75 (work left)"
read -r done0 pend0 ck0 <<<"$(sqlite3 -separator ' ' "$T/a.db" "SELECT (SELECT count(*) FROM requests WHERE state IN ('done','failed')),
  (SELECT count(*) FROM requests WHERE state='pending'), (SELECT count(*) FROM checkpoints)")"
echo "before sharding: $done0 finished, $pend0 pending, $ck0 checkpoints"
[ "$pend0" -gt 40 ] || fail "too little left to shard ($pend0)"

# ---- shard ---------------------------------------------------------------------------
"$BIN" shard "$JOB" --into 4 --dir "$T/sh" --db "$T/a.db" --json > "$T/shards.json"
python3 - "$T" "$pend0" <<'PY'
import json, sqlite3, sys
t, pend0 = sys.argv[1], int(sys.argv[2])
sh = json.load(open(f"{t}/shards.json"))
assert [s["index"] for s in sh] == [0, 1, 2, 3], sh
ids, works = [], []
maxw = 0
for s in sh:
    db = sqlite3.connect(s["path"])
    rows = db.execute("select id, length(cast(body as blob))/4 + coalesce(max_tokens,1024)*n, state from requests").fetchall()
    assert all(r[2] == "pending" for r in rows), s
    assert len(rows) == s["requests"], (s, len(rows))
    w = sum(r[1] for r in rows); assert w == s["work"], (s, w)
    ids += [r[0] for r in rows]; works.append(w); maxw = max([maxw] + [r[1] for r in rows])
    o = db.execute("select shard_id, origin_job_id, shard_index, shard_count from shard_origin").fetchall()
    assert o == [(s["id"], s["job_id"], s["index"], 4)], o
    assert db.execute("select state from jobs").fetchall() == [("queued",)]
assert len(ids) == len(set(ids)) == pend0, (len(ids), len(set(ids)), pend0)
# greedy LPT: the heaviest and lightest shard differ by at most one request's work
assert max(works) - min(works) <= maxw, (works, maxw)
a = sqlite3.connect(f"{t}/a.db")
out = a.execute("select count(*) from requests where state='running' and lease_owner like 'shard:%'").fetchone()[0]
assert out == pend0 and a.execute("select count(*) from requests where state='pending'").fetchone()[0] == 0
print(f"shards: {[s['requests'] for s in sh]} requests, work {works} (max one request {maxw})")
PY
# nothing left here for a local worker, and it does not wait for the shards
timeout 20 "$BIN" run --model "$MODEL" --db "$T/a.db" --quiet || fail "a local worker on the sharded origin exited $?"
# refused: merging a shard that is not done is fine, but not into the wrong place
"$BIN" shard "$JOB" --into 1 --dir "$T/osh" --db "$T/other.db" > /dev/null
for db in other ref; do
  rc=0; "$BIN" merge "$T/sh/shard-000.db" --db "$T/$db.db" 2> "$T/wrong.err" || rc=$?
  [ "$rc" = 65 ] || fail "merge into $db.db exited $rc"
  grep -q "refusing to merge" "$T/wrong.err" || { cat "$T/wrong.err"; fail "no clear refusal for $db.db"; }
done
uuid_a=$(sqlite3 "$T/a.db" "select value from meta where key='db_uuid'")
rc=0; "$BIN" merge "$T/sh/shard-000.db" --db "$T/other.db" 2> "$T/wrong.err" || rc=$?
grep -qF "$uuid_a" "$T/wrong.err" && grep -qF "$(sqlite3 "$T/other.db" "select value from meta where key='db_uuid'")" "$T/wrong.err" \
  || { cat "$T/wrong.err"; fail "the refusal does not name both databases"; }
cat "$T/wrong.err"
rc=0; "$BIN" merge "$T/ref.db" --db "$T/a.db" 2> "$T/wrong.err" || rc=$?
[ "$rc" = 65 ] && grep -q "not a shard database" "$T/wrong.err" || { cat "$T/wrong.err"; fail "a non-shard merged ($rc)"; }

# ---- run the shards; shard 1 killed mid-run -----------------------------------------------
for i in 0 2 3; do
  "$BIN" run --model "$MODEL" --db "$T/sh/shard-00$i.db" --max-seqs 8 --threads 1 --quiet &
done
"$BIN" run --model "$MODEL" --db "$T/sh/shard-001.db" --max-seqs 4 --threads 1 --checkpoint-every 0.2 \
  --lease-seconds 5 --quiet 2>/dev/null &
k=$!
for _ in $(seq 100); do  # killed once some of it is stored
  [ "$(sqlite3 "$T/sh/shard-001.db" "select count(*) from results" 2>/dev/null || echo 0)" -ge 3 ] && break
  sleep 0.1
done
kill -9 "$k"; wait "$k" 2>/dev/null || true
wait
# everything so far, shard 1 unfinished: its rest goes back to pending here
"$BIN" merge "$T"/sh/shard-00{0,1,2,3}.db --db "$T/a.db" | tee "$T/merge1.out"
back=$(sqlite3 "$T/a.db" "select count(*) from requests where state='pending'")
left1=$(sqlite3 "$T/sh/shard-001.db" "select count(*) from requests where state not in ('done','failed')")
echo "shard 1 killed with $left1 unfinished; back to pending here: $back"
[ "$left1" -gt 0 ] && [ "$back" = "$left1" ] || fail "partial merge: $back pending here, $left1 unfinished in the shard"
[ "$(sqlite3 "$T/a.db" "select state from shards where shard_index=1")" = partial ] || fail "shard 1 not partial"
# the array task requeued: shard 1 resumes (its killed worker's leases expire) and finishes
"$BIN" run --model "$MODEL" --db "$T/sh/shard-001.db" --max-seqs 4 --threads 1 --lease-seconds 5 --quiet
"$BIN" merge "$T/sh/shard-001.db" --db "$T/a.db" | tee "$T/merge2.out"
grep -q "$left1 finished taken" "$T/merge2.out" || fail "the resumed shard's rest was not taken"

# ---- the merged origin ------------------------------------------------------------------------
dump() { sqlite3 "$1" ".dump"; }
dump "$T/a.db" > "$T/dump1.sql"
"$BIN" merge "$T"/sh/shard-*.db --db "$T/a.db" > "$T/merge3.out"
dump "$T/a.db" > "$T/dump2.sql"
cmp -s "$T/dump1.sql" "$T/dump2.sql" || { diff "$T/dump1.sql" "$T/dump2.sql" | head; fail "a second merge changed the DB"; }
[ "$(grep -c "(nothing new)" "$T/merge3.out")" = 4 ] || { cat "$T/merge3.out"; fail "second merge output"; }
"$BIN" results "$JOB" --db "$T/a.db" -o "$T/out.jsonl"
"$BIN" results "$JOB" --db "$T/a.db" --errors -o "$T/out-err.jsonl"
python3 "$SRC/tests/cli/lib/resume_job.py" compare "$T/ref.jsonl" "$T/out.jsonl"
# all but what depends on when and beside what a request ran: "created", the
# measured usage.cost (seconds, USD) and the prefix-cache hits (cached_tokens)
strip() { sed -E 's/"created":[0-9]+/"created":0/; s/"cost":\{[^}]*\}/"cost":{}/; s/"cached_tokens":[0-9]+/"cached_tokens":0/' "$1"; }
first_diff() { python3 -c 'import sys
a, b = open(sys.argv[1]).read().splitlines(), open(sys.argv[2]).read().splitlines()
for i, (x, y) in enumerate(zip(a, b)):
    if x != y:
        k = next(j for j in range(min(len(x), len(y)) + 1) if j == min(len(x), len(y)) or x[j] != y[j])
        print(f"line {i + 1}, char {k}:\n  ref: ...{x[max(0, k - 80):k + 120]}\n  out: ...{y[max(0, k - 80):k + 120]}"); break' "$1" "$2"; }
strip "$T/ref.jsonl" > "$T/ref.s"; strip "$T/out.jsonl" > "$T/out.s"
cmp -s "$T/ref.s" "$T/out.s" || { first_diff "$T/ref.s" "$T/out.s"; fail "results differ from the unsharded run"; }
cmp -s <(strip "$T/ref-err.jsonl") <(strip "$T/out-err.jsonl") || fail "error lines differ from the unsharded run"
[ "$(wc -l < "$T/out-err.jsonl")" = 2 ] || fail "expected 2 error lines"
ok=$(sqlite3 "$T/a.db" 'PRAGMA integrity_check'); [ "$ok" = ok ] || fail "integrity_check: $ok"
"$BIN" status "$JOB" --db "$T/a.db" | grep -q completed || fail "job not completed after the merge"
python3 - "$T" <<'PY'
import sqlite3, sys
t = sys.argv[1]
a = sqlite3.connect(f"{t}/a.db")
st = dict(a.execute("select state, count(*) from requests group by state"))
assert st == {"done": 100, "failed": 2}, st
def one(sql): return a.execute(sql).fetchone()
assert one("select count(*), count(distinct request_id) from results") == (100, 100)
assert one("select count(*) from checkpoints")[0] == 0, "checkpoints left"
assert one("select count(*) from requests where lease_owner is not null")[0] == 0, "leases left"
sh = a.execute("select state, requests, merged_requests from shards order by shard_index").fetchall()
assert all(x[0] == "merged" and x[1] == x[2] for x in sh), sh
# every run of every shard is here (the per-worker view: who did what)
runs = 1 + 1  # the origin's own: the 1 s run and the empty local one
for i in range(4):
    s = sqlite3.connect(f"{t}/sh/shard-00{i}.db")
    runs += s.execute("select count(*) from runs").fetchone()[0]
    for r in s.execute("select id, requests_done, cost_usd from runs"):
        assert a.execute("select requests_done, cost_usd from runs where id=?", (r[0],)).fetchone() == r[1:], r
assert a.execute("select count(*) from runs").fetchone()[0] == runs
# cost views agree with the requests and the runs
jc = a.execute("select requests, prompt_tokens, completion_tokens, cost_usd from job_costs").fetchone()
rq = a.execute("select count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost_usd) from requests").fetchone()
assert jc[:3] == rq[:3] and abs(jc[3] - rq[3]) < 1e-12, (jc, rq)
wc = a.execute("select sum(requests), sum(runs) from worker_costs").fetchone()
ru = a.execute("select sum(requests_done), count(*) from runs").fetchone()
assert wc == ru, (wc, ru)
# every done request names the run that stored it, and that run is here
assert one("select count(*) from requests where state='done' and (run_id is null or "
           "run_id not in (select id from runs))")[0] == 0, "done requests of unknown runs"
print(f"merged: {st}; {runs} runs; job cost {jc[3]:.6f} USD = sum of request costs")
PY

# ---- a shard sharded again, merged back up -------------------------------------------------
python3 "$SRC/tests/cli/lib/resume_job.py" make 12 40 > "$T/small.jsonl"
J2=$("$BIN" submit "$T/small.jsonl" --mixed-endpoints --db "$T/c.db" --name twice)
"$BIN" shard "$J2" --into 2 --dir "$T/c1" --db "$T/c.db" > /dev/null
"$BIN" shard "$J2" --into 2 --dir "$T/c2" --db "$T/c1/shard-000.db" > /dev/null
for f in "$T"/c1/shard-001.db "$T"/c2/shard-00{0,1}.db; do "$BIN" run --model "$MODEL" --db "$f" --threads 1 --quiet; done
rc=0; "$BIN" merge "$T/c2/shard-000.db" --db "$T/c.db" 2>/dev/null >&2 || rc=$?
[ "$rc" = 65 ] || fail "a sub-shard merged into the top origin ($rc)"
"$BIN" merge "$T"/c2/shard-00{0,1}.db --db "$T/c1/shard-000.db" > /dev/null
"$BIN" merge "$T"/c1/shard-00{0,1}.db --db "$T/c.db" > /dev/null
st=$(sqlite3 "$T/c.db" "select group_concat(state || '=' || n) from (select state, count(*) n from requests group by state order by state)")
[ "$st" = "done=12" ] || fail "re-sharded job: $st"
[ "$(sqlite3 "$T/c.db" "select count(*) from results")" = 12 ] || fail "re-sharded job: results"
[ "$(sqlite3 "$T/c.db" "select state from jobs")" = completed ] || fail "re-sharded job not completed"
echo "re-shard: 2 shards, one split again, merged up: all 12 back"
echo "PASS"
