#!/usr/bin/env bash
# foreign_db.sh — a file is identified as a tokenmill queue before anything is
# written to it (issue 19, item 6): another application's SQLite file, one with
# a negative or huge user_version, or a foreign application_id is refused with
# "not a tokenmill queue" (exit 65), never crashes, and is left byte-for-byte as
# it was (no switch to WAL, no migration); a new queue carries tokenmill's
# application_id; a queue made before the id existed is recognised by its
# schema and marked.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
refused() { # DB WHAT: status must exit 65 saying why, and leave the file as it was
  local before after rc=0
  before=$(sha256sum "$1" | cut -d' ' -f1)
  "$BIN" status --db "$1" > "$T/out" 2>&1 || rc=$?
  after=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$rc" = 65 ] || { cat "$T/out"; fail "$2: exit $rc, want 65"; }
  grep -qi "tokenmill queue" "$T/out" || { cat "$T/out"; fail "$2: message does not say why"; }
  [ "$before" = "$after" ] || fail "$2: the file was changed"
  [ ! -e "$1-wal" ] || fail "$2: switched to WAL"
  echo "ok: $2: $(tail -n1 "$T/out")"
}
sqlite3 "$T/other.db" "CREATE TABLE notes(x); PRAGMA user_version = 3;"
refused "$T/other.db" "another application's DB with user_version 3"
sqlite3 "$T/neg.db" "CREATE TABLE t(x); PRAGMA user_version = -1;"
refused "$T/neg.db" "user_version -1"
sqlite3 "$T/negempty.db" "PRAGMA user_version = -1;"
refused "$T/negempty.db" "user_version -1, no tables"
sqlite3 "$T/huge.db" "CREATE TABLE t(x); PRAGMA user_version = 2147483647;"
refused "$T/huge.db" "user_version 2^31-1"
sqlite3 "$T/app.db" "PRAGMA application_id = 1234; CREATE TABLE jobs(x);"
refused "$T/app.db" "a foreign application_id"

printf '%s\n' '{"custom_id":"a","method":"POST","url":"/v1/completions","body":{"prompt":[1,2],"max_tokens":1}}' > "$T/j.jsonl"
"$BIN" submit "$T/j.jsonl" --db "$T/q.db" > /dev/null
[ "$(sqlite3 "$T/q.db" 'PRAGMA application_id')" = 1414353201 ] || fail "a new queue has no application_id"
sqlite3 "$T/q.db" "PRAGMA application_id = 0;"   # as queues made before the id existed
"$BIN" status --db "$T/q.db" > /dev/null || fail "an older queue (no application_id) is refused"
[ "$(sqlite3 "$T/q.db" 'PRAGMA application_id')" = 1414353201 ] || fail "an older queue was not marked"
echo "foreign_db: all checks passed"
