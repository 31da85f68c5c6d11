#!/usr/bin/env bash
# small_reliability.sh — issue 19 item 8, the smaller defects: an out-of-range
# run --price is refused (64), not a silent $0/h; databases that keep nothing
# (:memory:, file: URIs) are refused; a file starting with 1024 NUL bytes is
# "not a job file", not an empty job; stop strings over 128 bytes and more than
# 16 stop_token_ids are refused at submit; job names are printed escaped; status
# and report agree on a corrupt DB's exit code.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
TD=${TOKENMILL_TESTDATA:-../shared/testdata}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
expect() { # WANT_RC GREP WHAT CMD...: CMD exits WANT_RC and says GREP on stderr
  local want=$1 pat=$2 what=$3 rc=0; shift 3
  "$@" > "$T/out" 2> "$T/err" || rc=$?
  [ "$rc" = "$want" ] || { cat "$T/out" "$T/err"; fail "$what: exit $rc, want $want"; }
  grep -q -- "$pat" "$T/err" || { cat "$T/err"; fail "$what: stderr does not say '$pat'"; }
  echo "ok: $what: $(tail -n1 "$T/err")"
}
line() { printf '{"custom_id":"%s","method":"POST","url":"/v1/completions","body":{"prompt":[1,2],"max_tokens":1%s}}\n' "$1" "${2:-}"; }
line a > "$T/j.jsonl"
"$BIN" submit "$T/j.jsonl" --db "$T/q.db" > /dev/null

# --price: a number out of [0, 1e6] (the model is only loaded after parsing)
MODEL=$TD/models/llama-mini; [ -d "$MODEL" ] || MODEL=$T/no-model
for p in -1 1e7 '$-5'; do
  expect 64 "out of range" "run --price $p" "$BIN" run --model "$MODEL" --until-empty --quiet --db "$T/q.db" --price "$p"
done

# databases that keep nothing
for d in ':memory:' "file:$T/m.db?mode=memory" "file:$T/q.db"; do
  expect 64 "file path" "run --db $d" "$BIN" run --model "$MODEL" --until-empty --db "$d"
  expect 64 "file path" "prices list --db $d" "$BIN" prices list --db "$d"
  expect 64 "file path" "status --db $d" "$BIN" status --db "$d"
  expect 64 "file path" "report --db $d" "$BIN" report --db "$d"
done
TOKENMILL_DB=':memory:' expect 64 "file path" "status with TOKENMILL_DB=:memory:" "$BIN" status

# 1024 NUL bytes (tar's end marker), alone or before real lines
head -c 1024 /dev/zero > "$T/nul.jsonl"
expect 65 "not a job file" "a file of 1024 NUL bytes" "$BIN" submit "$T/nul.jsonl" --db "$T/q.db"
cat "$T/j.jsonl" >> "$T/nul.jsonl"
expect 65 "not a job file" "1024 NUL bytes before a request" "$BIN" submit "$T/nul.jsonl" --db "$T/q.db"

# model-independent limits of the engine, at submit
long=$(head -c 129 /dev/zero | tr '\0' x)
line s ",\"stop\":\"$long\"" > "$T/stop.jsonl"
expect 65 "at most 128 bytes" "a 129-byte stop string" "$BIN" submit "$T/stop.jsonl" --db "$T/q.db"
line s ",\"stop_token_ids\":[$(seq -s, 0 16)]" > "$T/ids.jsonl"
expect 65 "at most 16 token ids" "17 stop_token_ids" "$BIN" submit "$T/ids.jsonl" --db "$T/q.db"
line s ",\"stop\":\"${long:1}\",\"stop_token_ids\":[$(seq -s, 0 15)]" > "$T/ok.jsonl"
"$BIN" submit "$T/ok.jsonl" --db "$T/q.db" > /dev/null || fail "128-byte stop string and 16 stop_token_ids refused"

# a job name with a terminal escape and a line break is printed escaped
"$BIN" submit "$T/j.jsonl" --db "$T/n.db" --name $'\e[2J\e[31mevil\nfake 0/0/0 line' > /dev/null
"$BIN" status --db "$T/n.db" > "$T/st" || fail "status failed"
if LC_ALL=C grep -q $'\e' "$T/st"; then fail "status prints a raw escape character"; fi
[ "$(wc -l < "$T/st")" = 1 ] || { cat "$T/st"; fail "a job name made status print more than one line"; }
grep -qF '\x1b[31mevil\x0afake' "$T/st" || { cat "$T/st"; fail "name not shown escaped"; }
"$BIN" status --db "$T/n.db" --json | python3 -c 'import json,sys; j=json.load(sys.stdin)["data"]; assert j[0]["name"].startswith("\x1b[2J"), j' \
  || fail "status --json does not carry the name as JSON"
"$BIN" report --db "$T/n.db" --by job > "$T/rep" || fail "report failed"
if LC_ALL=C grep -q $'\e' "$T/rep"; then fail "report prints a raw escape character"; fi
echo "ok: job names are escaped in status and report"

# status and report exit the same way on corrupt databases
sqlite3 "$T/q.db" "PRAGMA wal_checkpoint(TRUNCATE);" > /dev/null
sz=$(stat -c %s "$T/q.db")
for off in 0 20 100 4200 12400 $((sz / 2)) $((sz - 4000)); do
  for cmd in status report; do
    python3 - "$T/q.db" "$T/c-$cmd.db" "$off" <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read()); o = int(sys.argv[3])
for k in range(64): d[(o + k) % len(d)] ^= 0x5a
open(sys.argv[2], 'wb').write(d)
PY
  done
  rs=0; "$BIN" status --db "$T/c-status.db" > /dev/null 2>&1 || rs=$?
  rr=0; "$BIN" report --db "$T/c-report.db" > /dev/null 2>&1 || rr=$?
  [ "$rs" = "$rr" ] || fail "corrupt at $off: status exits $rs, report $rr"
  rm -f "$T"/c-*
done
echo "ok: status and report agree on corrupt databases"
# submit: invalid UTF-8 in --name / --model / --metadata, and in-memory DBs, refused (64) with nothing kept
printf '%s\n' '{"custom_id":"u","method":"POST","url":"/v1/completions","body":{"prompt":[1,2],"max_tokens":1}}' > "$T/u.jsonl"
for args in "--name $(printf 'bad\xff')" "--model $(printf 'm\xc3')" "--metadata team=$(printf '\xfe')"; do
  rc=0; "$BIN" submit "$T/u.jsonl" --db "$T/u8.db" $args > /dev/null 2> "$T/u8.err" || rc=$?
  [ "$rc" = 64 ] || fail "submit $args: exit $rc, want 64"
  grep -q "UTF-8" "$T/u8.err" || fail "submit $args: message does not say UTF-8"
done
[ ! -e "$T/u8.db" ] || [ "$(sqlite3 "$T/u8.db" 'SELECT COUNT(*) FROM jobs' 2>/dev/null || echo 0)" = 0 ] || fail "a refused submit kept a job"
for db in ':memory:' 'file:x?mode=memory'; do
  rc=0; "$BIN" submit "$T/u.jsonl" --db "$db" > /dev/null 2>&1 || rc=$?
  [ "$rc" = 64 ] || fail "submit --db $db: exit $rc, want 64"
done
echo "ok: submit refuses invalid UTF-8 names/metadata and in-memory databases"
echo "small_reliability: all checks passed"
