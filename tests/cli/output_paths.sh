#!/usr/bin/env bash
# output_paths.sh — `results -o` and `export -o` never replace what is not a
# regular file, never follow a planted temporary, never write over the queue
# (issue 19, items 1-3):
# - a character device (mknod c 1 3, as root) and a FIFO are written in place
#   and stay what they were;
# - a symbolic link is followed to its target, and stays a link;
# - a planted OUT.partial symlink to a victim file is neither followed nor
#   touched (the temporary is created exclusively);
# - an existing regular file keeps its mode;
# - -o naming the DB, its -wal / -shm, or the DB through another path or a
#   hard link is refused (64) and the DB stays intact.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
T=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cd "$T"
printf '%s\n' '{"custom_id":"a","method":"POST","url":"/v1/completions","body":{"prompt":[1,2,3],"max_tokens":2}}' > j.jsonl
JOB=$("$BIN" submit j.jsonl --db q.db)
"$BIN" results "$JOB" --db q.db -o plain.jsonl   # pending job: no lines yet, still a valid file
[ -f plain.jsonl ] || fail "a plain output file was not written"

# 1. a character device written in place (root can mknod; skip that part otherwise)
if mknod -m 666 fakenull c 1 3 2>/dev/null; then
  "$BIN" results "$JOB" --db q.db -o fakenull
  [ "$(stat -c %F fakenull)" = "character special file" ] || fail "fakenull became a $(stat -c %F fakenull)"
  echo "ok: a device is written in place"
else
  echo "note: mknod not allowed here; device case skipped"
fi
# 2. a FIFO written in place
mkfifo pipe
cat pipe > from_pipe & reader=$!
"$BIN" results "$JOB" --db q.db -o pipe
wait "$reader"
[ -p pipe ] || fail "the FIFO was replaced by a $(stat -c %F pipe)"
echo "ok: a FIFO is written in place"
# 3. a symlink is followed to its target and stays a link
echo old > target.jsonl
ln -s target.jsonl link.jsonl
"$BIN" results "$JOB" --db q.db -o link.jsonl
[ -L link.jsonl ] || fail "the symlink was replaced"
[ "$(cat target.jsonl)" != old ] || fail "the link's target was not written"
echo "ok: a symlink is followed to its target"
# 4. a planted OUT.partial link is not followed
echo precious > victim
ln -s victim out.jsonl.partial
"$BIN" results "$JOB" --db q.db -o out.jsonl
[ "$(cat victim)" = precious ] || fail "the planted .partial link was followed"
[ -L out.jsonl.partial ] || fail "the planted link was touched"
ls out.jsonl.partial.* >/dev/null 2>&1 && fail "a temporary was left behind"
echo "ok: a planted .partial link is not followed"
# 5. an existing file keeps its mode
echo x > mode.jsonl; chmod 640 mode.jsonl
"$BIN" results "$JOB" --db q.db -o mode.jsonl
[ "$(stat -c %a mode.jsonl)" = 640 ] || fail "mode changed to $(stat -c %a mode.jsonl)"
echo "ok: an existing file keeps its mode"
# 6. never over the queue
sum() { sqlite3 q.db 'PRAGMA integrity_check'; }
mkdir sub; ln q.db hard.db
for o in q.db q.db-wal q.db-shm ./sub/../q.db "$T/q.db" hard.db; do
  rc=0; "$BIN" results "$JOB" --db q.db -o "$o" 2> err || rc=$?
  [ "$rc" = 64 ] || { cat err; fail "results -o $o: exit $rc, want 64"; }
  grep -q "queue database" err || { cat err; fail "results -o $o: message"; }
  rc=0; "$BIN" export "$JOB" --db q.db -o "$o" 2> err || rc=$?
  [ "$rc" = 64 ] || { cat err; fail "export -o $o: exit $rc, want 64"; }
done
[ "$(sum)" = ok ] || fail "the DB is damaged"
"$BIN" status "$JOB" --db q.db > /dev/null || fail "the DB no longer opens"
echo "ok: -o naming the DB, its WAL/SHM, another path to it or a hard link is refused"
# 7. export through a link and into a FIFO-free plain path still works
"$BIN" export "$JOB" --db q.db -o bundle.tar.zst > /dev/null
tar --zstd -tf bundle.tar.zst | grep -q manifest.json || fail "export bundle"
ln -s bundle2.tar.zst blink; "$BIN" export "$JOB" --db q.db -o blink > /dev/null 2>&1 && fail "a dangling link should be refused" || true
echo "output_paths: all checks passed"
