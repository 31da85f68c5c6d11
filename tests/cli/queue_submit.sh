#!/usr/bin/env bash
# queue_submit.sh — end-to-end tests of `tokenmill submit` with the real binary:
# every input form (.jsonl, .zst, .gz, .tar, .tar.gz, .tar.zst, .zip, stdin,
# several files), options (--name --model --priority --metadata
# --completion-window --json, options after files), rejection (exit 65, every
# problem as file:line: field: what, at most 50 then "... and N more", DB
# byte-identical, a new one an empty queue), duplicates across files, empty files, blank
# lines, --on-invalid skip, and usage errors (exit 64).
set -euo pipefail
: "${TOKENMILL_BIN:?set by ctest}"
for c in zstd gzip tar python3 sha256sum; do
  command -v "$c" >/dev/null || { echo "skipped: $c is not installed"; exit 77; }
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
export TOKENMILL_DB="$T/default.db"
tm() { "$TOKENMILL_BIN" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# jq-like check: jcheck FILE 'python expression on d' (must be true)
jcheck() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" \
  || fail "json check failed: $2 on $(cat "$1")"; }
gen() { # gen PREFIX N: N valid request lines
  local i
  for i in $(seq 1 "$2"); do
    printf '{"custom_id":"%s-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hello %d"}],"max_tokens":8}}\n' "$1" "$i" "$i"
  done
}
expect_rc() { # expect_rc WANT cmd...
  local want=$1; shift
  set +e; "$@" >out.txt 2>err.txt; local rc=$?; set -e
  [ "$rc" = "$want" ] || { cat out.txt err.txt >&2; fail "'$*' exited $rc, want $want"; }
}
total_of() { tm status --db "$1" "$2" --json > st.json; python3 -c 'import json; print(json.load(open("st.json"))["request_counts"]["total"])'; }

gen p 3 > plain.jsonl
gen z 4 > z.jsonl; zstd -q z.jsonl -o z.jsonl.zst
gen g 5 > g.jsonl; gzip -k g.jsonl
gen t1 2 > t1.jsonl; gen t2 3 > t2.jsonl
tar -cf a.tar t1.jsonl t2.jsonl
tar -czf a.tar.gz t1.jsonl t2.jsonl
tar -cf - t1.jsonl t2.jsonl | zstd -q -o a.tar.zst
python3 -c 'import zipfile; z=zipfile.ZipFile("a.zip","w",zipfile.ZIP_DEFLATED); z.write("t1.jsonl"); z.write("t2.jsonl"); z.close()'

# --- every input form -----------------------------------------------------------
for spec in plain.jsonl:3 z.jsonl.zst:4 g.jsonl.gz:5 a.tar:5 a.tar.gz:5 a.tar.zst:5 a.zip:5; do
  f=${spec%%:*}; n=${spec##*:}
  expect_rc 0 tm submit --db q.db "$f"
  id=$(cat out.txt)
  [[ "$id" =~ ^job_[0-9a-f]{32}$ ]] || fail "$f: bad job id '$id'"
  [ "$(total_of q.db "$id")" = "$n" ] || fail "$f: want $n requests"
done
# stdin, and several files in one job
id=$(tm submit --db q.db - < plain.jsonl)
[ "$(total_of q.db "$id")" = 3 ] || fail "stdin"
id=$(tm submit --db q.db plain.jsonl z.jsonl.zst a.zip)
[ "$(total_of q.db "$id")" = 12 ] || fail "three files in one job"
# default DB from $TOKENMILL_DB
tm submit plain.jsonl >/dev/null
[ -f "$T/default.db" ] || fail "TOKENMILL_DB not used"

# --- options (also after the file) --------------------------------------------
printf '{"custom_id":"nomodel","method":"POST","url":"/v1/completions","body":{"prompt":"x"}}\n' > nomodel.jsonl
expect_rc 0 tm submit nomodel.jsonl --db q.db --name "my job" --model dflt --priority 5 \
  --metadata team=search --metadata run=7 --completion-window 2h --json
cp out.txt sub.json
jcheck sub.json 'd["object"]=="batch" and d["id"].startswith("job_") and d["status"]=="in_progress" and d["tokenmill_status"]=="queued"'
jcheck sub.json 'd["name"]=="my job" and d["model"]=="dflt" and d["priority"]==5'
jcheck sub.json 'd["metadata"]=={"team":"search","run":"7"}'
jcheck sub.json 'd["expires_at"]-d["created_at"]==7200 and d["completion_window"]=="2h"'
jcheck sub.json 'd["endpoint"]=="/v1/completions" and d["request_counts"]=={"total":1,"completed":0,"failed":0}'

# --- rejection: exit 65, every problem, DB unchanged ------------------------------
{ gen r 1; echo; echo '{"custom_id":"r-2","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"x"}],"temperature":9}}'
  echo '   '; echo 'not json'; } > bad.jsonl      # line 2 and 4 blank, line 3 and 5 bad
gen r 1 > dup.jsonl                               # r-1 again, in another file
before=$(sha256sum q.db)
expect_rc 65 tm submit --db q.db bad.jsonl dup.jsonl
[ "$(sha256sum q.db)" = "$before" ] || fail "rejected submit changed the DB"
grep -q '^bad.jsonl:3: body.temperature: ' err.txt || fail "no temperature problem at line 3: $(cat err.txt)"
grep -q '^bad.jsonl:5: ' err.txt || fail "no problem for line 5 (blank lines must keep numbering)"
grep -q '^dup.jsonl:1: custom_id: duplicate "r-1" (first at bad.jsonl:1)$' err.txt || fail "duplicate message: $(cat err.txt)"
[ ! -s out.txt ] || fail "rejected submit printed a job id"
# a DB that did not exist stays an empty, valid queue (never deleted: another
# submit may have committed to it meanwhile; tests/cli/submit_chunks.sh)
expect_rc 65 tm submit --db new.db bad.jsonl
[ "$(tm status --db new.db --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"])')" = "[]" ] || fail "rejected submit left a job in new.db: $(tm status --db new.db)"
# empty file (only blank lines) names the file
printf '\n\n' > empty.jsonl
expect_rc 65 tm submit --db q.db plain.jsonl empty.jsonl
grep -q 'empty.jsonl: file: empty' err.txt || fail "empty file message: $(cat err.txt)"
[ "$(sha256sum q.db)" = "$before" ] || fail "rejected submit (empty file) changed the DB"
# more than 50 problems: 50 printed, then a count
for i in $(seq 1 60); do echo "{\"custom_id\":\"x$i\"}"; done > many.jsonl
expect_rc 65 tm submit --db q.db many.jsonl
[ "$(grep -c '^many.jsonl:[0-9]*: ' err.txt)" = 50 ] || fail "want 50 printed problems: $(head -3 err.txt)"
grep -q '^\.\.\. and [0-9]* more problems$' err.txt || fail "no '... and N more problems'"
# unreadable file: I/O error
expect_rc 74 tm submit --db q.db does-not-exist.jsonl

# --- --on-invalid skip -------------------------------------------------------------
expect_rc 0 tm submit --db q.db --on-invalid skip bad.jsonl
id=$(cat out.txt)
[[ "$id" =~ ^job_[0-9a-f]{32}$ ]] || fail "skip: no job id"
grep -q '^bad.jsonl:3: body.temperature: ' err.txt || fail "skip mode must still print problems"
tm status --db q.db "$id" --json > st.json
jcheck st.json 'd["request_counts"]=={"total":3,"completed":0,"failed":2} and d["tokenmill_status"]=="queued"'
tm results --db q.db "$id" --errors > errs.jsonl
python3 - errs.jsonl <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 2, lines
a, b = lines
assert a["custom_id"] == "r-2" and a["response"] is None, a
assert a["error"]["code"] == "invalid_request" and "bad.jsonl:3: body.temperature" in a["error"]["message"], a
assert b["custom_id"] is None and b["error"]["message"].startswith("bad.jsonl:5: "), b
assert all(l["id"].startswith("batch_req_") for l in lines)
PY
# skip with nothing valid: nothing queued
expect_rc 65 tm submit --db q.db --on-invalid skip many.jsonl

# --- usage ----------------------------------------------------------------------------
expect_rc 0 tm submit --help
grep -q '^usage: tokenmill submit' out.txt || fail "--help"
expect_rc 64 tm submit --db q.db
expect_rc 64 tm submit --db q.db --priority high plain.jsonl
expect_rc 64 tm submit --db q.db --on-invalid maybe plain.jsonl
expect_rc 64 tm submit --db q.db --completion-window soon plain.jsonl
expect_rc 64 tm submit --db q.db --metadata novalue plain.jsonl
expect_rc 64 tm submit --db q.db --metadata "$(printf 'k%.0s' $(seq 65))=v" plain.jsonl
args=(); for i in $(seq 17); do args+=(--metadata "k$i=v"); done
expect_rc 64 tm submit --db q.db "${args[@]}" plain.jsonl
expect_rc 64 tm submit --db q.db --bogus plain.jsonl

# --- bench submit (smoke): measures a real submit and says how to reproduce ------------
expect_rc 0 tm bench submit --lines 300 --dir "$T"
grep -Eq '^  throughput +[0-9]+ lines/s' out.txt || fail "bench: no lines/s: $(cat out.txt)"
grep -Eq '^  peak RSS \(submit\) +[0-9.]+ MiB' out.txt || fail "bench: no peak RSS"
grep -Eq 'reproduce with +tokenmill bench submit --lines 300' out.txt || fail "bench: no reproduce line"
[ -z "$(ls -d "$T"/tm_bench_submit_* 2>/dev/null)" ] || fail "bench left its temporary directory"
expect_rc 64 tm bench submit --lines 0
echo "queue_submit: all passed"
