#!/usr/bin/env bash
# walkthrough.sh — every example of this folder, end to end, on the demo model.
#
#   bash examples/walkthrough.sh [TOKENMILL_BINARY [WORKDIR]]
#
# Builds nothing: the binary is the first argument, else $TOKENMILL_BIN, else
# ./build/tokenmill (or build/tokenmill beside this folder). WORKDIR (kept
# afterwards) defaults to a temporary folder that is removed at the end.
# Steps: write the demo model (`tokenmill demo`), submit chat.jsonl,
# completions.jsonl and sampling.jsonl as three jobs, run them until the
# queue is empty, print each job's results and status, export one bundle,
# print the cost report and run costs.sql with the sqlite3 CLI.
# Exits non-zero when a step fails or an expected output is missing: every
# custom_id of every job has exactly one result line with n choices, no error
# lines, a cost on every request, every costs.sql query runs. ctest runs
# this as cli/examples. $TOKENMILL_DEVICE picks the device (default auto).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

BIN=${1:-${TOKENMILL_BIN:-}}
if [ -z "$BIN" ]; then
  BIN=./build/tokenmill
  [ -x "$BIN" ] || BIN=$HERE/../build/tokenmill
fi
if [ ! -x "$BIN" ]; then
  echo "walkthrough: no tokenmill binary at '$BIN': build first (see README.md) or pass its path" >&2
  exit 1
fi
command -v sqlite3 >/dev/null || { echo "walkthrough: the sqlite3 CLI is needed (Debian: apt-get install sqlite3)" >&2; exit 1; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

if [ -n "${2:-}" ]; then
  W=$2
  mkdir -p "$W"
else
  W=$(mktemp -d)
  trap 'rm -rf "$W"' EXIT
fi
export TOKENMILL_DB=$W/tokenmill.db
rm -f "$TOKENMILL_DB" "$TOKENMILL_DB-wal" "$TOKENMILL_DB-shm"
tm() { "$BIN" "$@"; }
step() { printf '\n==== %s\n' "$*"; }
fail() { echo "walkthrough: FAILED: $*" >&2; exit 1; }

step "1. the demo model (a 2-layer Llama with random weights: the text is gibberish, the pipeline is real)"
tm demo --dir "$W/demo" > "$W/demo.log" 2>&1 || { cat "$W/demo.log"; fail "tokenmill demo"; }
MODEL=$W/demo/model
[ -f "$MODEL/config.json" ] && [ -f "$MODEL/model.safetensors" ] && [ -f "$MODEL/tokenizer.json" ] \
  || fail "tokenmill demo wrote no model in $MODEL"
ls "$MODEL"

step "2. submit the three example jobs"
declare -A JOB
for name in chat completions sampling; do
  JOB[$name]=$(tm submit "$HERE/$name.jsonl" --name "example-$name" --metadata source=examples --mixed-endpoints)
  [[ ${JOB[$name]} == job_* ]] || fail "submit $name.jsonl printed '${JOB[$name]}', not a job id"
  echo "$name.jsonl -> ${JOB[$name]}"
done
tm status

step "3. run them (until the queue is empty)"
tm run --model "$MODEL" --device "${TOKENMILL_DEVICE:-auto}" --quiet
tm status

step "4. results, checked against the job files"
# the first integer value of "KEY" in a JSON line (empty when absent)
num() { { grep -o "\"$1\": *-\{0,1\}[0-9]*" <<<"$2" || true; } | head -n1 | sed 's/.*: *//'; }
# custom_id and n of each line of a job file ("n" absent = 1)
ids_and_n() {
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    id=$({ grep -o '"custom_id": *"[^"]*"' <<<"$line" || true; } | head -n1 | sed 's/.*"\([^"]*\)"$/\1/')
    n=$(num n "$line")
    echo "$id ${n:-1}"
  done < "$1"
}
for name in chat completions sampling; do
  j=${JOB[$name]}
  out=$W/$name.output.jsonl err=$W/$name.errors.jsonl
  tm results "$j" -o "$out"
  tm results "$j" --errors -o "$err"
  [ -s "$err" ] && { cat "$err"; fail "$name: error lines in $err"; }
  echo "-- $name ($j): $out"
  while read -r id n; do
    hits=$(grep -c "\"custom_id\":\"$id\"" "$out" || true)
    [ "$hits" = 1 ] || fail "$name: custom_id $id has $hits result lines, expected 1"
    line=$(grep "\"custom_id\":\"$id\"" "$out")
    grep -q '"status_code":200' <<<"$line" || fail "$name: $id: status_code is not 200"
    reasons=$({ grep -o '"finish_reason":"[a-z_]*"' <<<"$line" || true; } | sed 's/.*:"\(.*\)"/\1/' | paste -sd, -)
    got=$({ grep -o '"finish_reason":"[a-z_]*"' <<<"$line" || true; } | wc -l)
    [ "$got" = "$n" ] || fail "$name: $id: $got choices with a finish_reason, expected n=$n"
    usage=$(num completion_tokens "$line")
    [ -n "$usage" ] || fail "$name: $id: no usage.completion_tokens"
    seed=$(num seed "$line")
    printf '   %-24s choices=%s finish=%-22s completion_tokens=%-4s seed=%s\n' "$id" "$n" "$reasons" "$usage" "$seed"
  done < <(ids_and_n "$HERE/$name.jsonl")
  lines=$(wc -l < "$out")
  want=$(grep -c . "$HERE/$name.jsonl")
  [ "$lines" = "$want" ] || fail "$name: $lines result lines, expected $want"
done
echo
echo "one result line as it is written (OpenAI batch output format):"
head -n1 "$W/chat.output.jsonl" | cut -c1-600

step "5. status of one job as the OpenAI batch object"
tm status "${JOB[sampling]}" --json

step "6. an export bundle (results, errors, job, cost, manifest with sha256)"
tm export "${JOB[chat]}" -o "$W/chat.tar.zst"
[ -s "$W/chat.tar.zst" ] || fail "export wrote no bundle"
if command -v zstd >/dev/null; then tar --zstd -tvf "$W/chat.tar.zst"; fi

step "7. what it cost: tokenmill report"
tm report --by job
tm report --by model --format html -o "$W/costs.html"
[ -s "$W/costs.html" ] || fail "report --format html wrote nothing"
missing=$(sqlite3 "$TOKENMILL_DB" "select count(*) from requests where state != 'done' or cost_usd is null or gpu_seconds is null")
[ "$missing" = 0 ] || fail "$missing requests are not done or carry no cost"

step "8. what it cost: examples/costs.sql"
sqlite3 -bail -header -column "$TOKENMILL_DB" < "$HERE/costs.sql" || fail "costs.sql"

step "done"
echo "walkthrough: ok (3 jobs, $(sqlite3 "$TOKENMILL_DB" 'select count(*) from requests') requests; files in $W${2:+ (kept)})"
