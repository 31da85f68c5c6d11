#!/usr/bin/env bash
# queue_status_cancel.sh — end-to-end tests of `tokenmill status` and
# `tokenmill cancel`: text lines (id, name, state, done/failed/total, progress
# bar, tokens), --json objects (OpenAI batch fields + ours), unknown job /
# missing DB (exit 65, nothing created), cancel of a queued job, cancel of a
# finished job, and expiry past --completion-window. Requests are finished by
# the fake worker in test_queue_output (--complete DB), as no worker exists yet.
set -euo pipefail
: "${TOKENMILL_BIN:?set by ctest}"
: "${TOKENMILL_BUILD:?set by ctest}"
command -v python3 >/dev/null || { echo "skipped: python3 is not installed"; exit 77; }
WORKER="$TOKENMILL_BUILD/test_queue_output"
[ -x "$WORKER" ] || { echo "skipped: $WORKER not built (needs cmocka)"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
tm() { "$TOKENMILL_BIN" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
jcheck() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" \
  || fail "json check failed: $2 on $(cat "$1")"; }
expect_rc() {
  local want=$1; shift
  set +e; "$@" >out.txt 2>err.txt; local rc=$?; set -e
  [ "$rc" = "$want" ] || { cat out.txt err.txt >&2; fail "'$*' exited $rc, want $want"; }
}
line() { printf '{"custom_id":"%s","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}}\n' "$1"; }
{ line a1; line a2; line a3; } > a.jsonl
{ line ok-1; line fail-2; line ok-3; } > c.jsonl

# no DB: 65, and status does not create one
expect_rc 65 tm status --db none.db
grep -q 'no queue database' err.txt || fail "missing DB message: $(cat err.txt)"
[ ! -e none.db ] || fail "status created a DB"

A=$(tm submit --db q.db a.jsonl)
B=$(tm submit --db q.db --name beta a.jsonl)
expect_rc 0 tm status --db q.db
[ "$(grep -c '^job_' out.txt)" = 2 ] || fail "want 2 status lines: $(cat out.txt)"
# nothing serves model m: status says so (6 queued requests)
grep -qx '6 requests wait for model m (no live worker serves it)' out.txt || fail "unserved line: $(cat out.txt)"
grep -Eq "^$A  -  +queued +0/0/3  \[\.{20}\]   0%  tokens 0  elapsed [0-9]+s$" out.txt || fail "status line A: $(cat out.txt)"
grep -Eq "^$B  beta +queued +0/0/3 " out.txt || fail "status line B: $(cat out.txt)"
tm status --db q.db "$A" --json > a.json
python3 - a.json "$A" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ["id","object","endpoint","status","created_at","in_progress_at","finalizing_at","completed_at",
          "failed_at","expired_at","cancelling_at","cancelled_at","expires_at","request_counts","metadata",
          "name","model","priority","tokens"]:
    assert k in d, k
# OpenAI's state (a queued job is in_progress there); tokenmill's in tokenmill_status
assert d["id"] == sys.argv[2] and d["object"] == "batch" and d["status"] == "in_progress"
assert d["tokenmill_status"] == "queued" and d["input_file_id"].startswith("file-"), d
assert d["input_filename"] == "a.jsonl" and d["model"] == "m" and d["errors"] is None, d
assert d["endpoint"] == "/v1/chat/completions" and d["in_progress_at"] is None and d["metadata"] == {}
assert d["request_counts"] == {"total": 3, "completed": 0, "failed": 0}
assert d["tokens"] == {"prompt": 0, "completion": 0, "cached": 0, "total": 0}
PY
tm status --db q.db --json > all.json
# an OpenAI list page, newest first
jcheck all.json 'd["object"]=="list" and len(d["data"])==2 and d["data"][0]["name"]=="beta" and d["first_id"]==d["data"][0]["id"] and d["last_id"]==d["data"][1]["id"] and d["has_more"] is False'
expect_rc 65 tm status --db q.db job_0000
grep -q 'no such job: job_0000' err.txt || fail "unknown job message"
expect_rc 64 tm status --db q.db a b
expect_rc 0 tm status --help
grep -q '^usage: tokenmill status' out.txt || fail "status --help"

# cancel a queued job: everything pending is cancelled at once
expect_rc 0 tm cancel "$A" --db q.db
grep -qx "$A: cancelled (3 requests cancelled, 0 done)" out.txt || fail "cancel output: $(cat out.txt)"
tm status --db q.db "$A" --json > a.json
jcheck a.json 'd["status"]=="cancelled" and d["cancelling_at"] and d["cancelled_at"] and d["request_counts"]["total"]==3'
tm results --db q.db "$A" --errors > aerr.jsonl
[ "$(grep -c '"code":"batch_cancelled"' aerr.jsonl)" = 3 ] || fail "cancelled requests not in --errors"
expect_rc 0 tm cancel --db q.db "$A"
grep -qx "$A: already cancelled" out.txt || fail "second cancel: $(cat out.txt)"
expect_rc 65 tm cancel --db q.db job_nope
expect_rc 64 tm cancel --db q.db
expect_rc 0 tm cancel --help

# a job run to the end by the fake worker: completed, counts, tokens, 100%
C=$(tm submit --db q.db c.jsonl)
"$WORKER" --complete q.db > w.txt   # also finishes B
grep -qx 'completed 5 failed 1' w.txt || fail "fake worker: $(cat w.txt)"
expect_rc 0 tm status --db q.db "$C"
grep -Eq "^$C  -  +completed +2/1/3  \[#{20}\] 100%  tokens 26  elapsed " out.txt || fail "completed line: $(cat out.txt)"
tm status --db q.db "$C" --json > c.json
jcheck c.json 'd["status"]=="completed" and d["request_counts"]=={"total":3,"completed":2,"failed":1}'
jcheck c.json 'd["in_progress_at"] and d["completed_at"] and d["tokens"]=={"prompt":20,"completion":6,"cached":0,"total":26}'
expect_rc 0 tm cancel --db q.db "$C"
grep -qx "$C: already completed" out.txt || fail "cancel of a completed job: $(cat out.txt)"
[ "$(tm results --db q.db "$C" | wc -l)" = 2 ] || fail "results must stay after cancel"

# expiry: pending past --completion-window become expired (status runs the expiry)
D=$(tm submit --db q.db --completion-window 1s a.jsonl)
sleep 2.2
tm status --db q.db "$D" --json > d.json
jcheck d.json 'd["status"]=="expired" and d["expired_at"] and d["request_counts"]["total"]==3'
[ "$(tm results --db q.db "$D" --errors | grep -c '"code":"batch_expired"')" = 3 ] || fail "expired requests not in --errors"
echo "queue_status_cancel: all passed"
