#!/usr/bin/env bash
# cost_report.sh — end-to-end tests of `tokenmill prices` and `tokenmill
# report`: example profiles present after migration, set/replace/list --json,
# bad input (exit 64), report on a missing DB (65, nothing created), every
# --by x --format on a DB with queued jobs (no cost yet: NULL ratios, 0 $),
# -o FILE, and the HTML page (one file, 3 inline <svg>, no <script>).
set -euo pipefail
: "${TOKENMILL_BIN:?set by ctest}"
command -v python3 >/dev/null || { echo "skipped: python3 is not installed"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
tm() { "$TOKENMILL_BIN" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_rc() {
  local want=$1; shift
  set +e; "$@" >out.txt 2>err.txt; local rc=$?; set -e
  [ "$rc" = "$want" ] || { cat out.txt err.txt >&2; fail "'$*' exited $rc, want $want"; }
}

# report never creates a DB
expect_rc 65 tm report --db none.db
[ ! -e none.db ] || fail "report created a DB"

# prices: examples from the migration, set, replace, list --json
expect_rc 0 tm prices list --db q.db
for p in h100-ondemand h100-premium a100-ondemand cpu; do grep -q "^$p " out.txt || fail "no example $p: $(cat out.txt)"; done
expect_rc 0 tm prices set h200-spot --usd-per-gpu-hour 2.10 --usd-per-kwh 0.15 --gpu H200 --profile spot --description "my spot" --db q.db
expect_rc 0 tm prices set h200-spot --usd-per-gpu-hour '$2.25' --profile spot --db q.db
expect_rc 0 tm prices list --json --db q.db
python3 - out.txt <<'PY' || fail "prices json: $(cat out.txt)"
import json, sys
d = {p["name"]: p for p in json.load(open(sys.argv[1]))}
assert d["h100-ondemand"]["usd_per_gpu_hour"] == 3.0 and d["h100-ondemand"]["gpu"] == "H100"
assert d["cpu"]["usd_per_gpu_hour"] == 0.1
s = d["h200-spot"]
assert s["usd_per_gpu_hour"] == 2.25 and s["usd_per_kwh"] is None and s["profile"] == "spot" and s["gpu"] is None
PY
expect_rc 64 tm prices set bad --db q.db                                   # no price
expect_rc 64 tm prices set bad --usd-per-gpu-hour -1 --db q.db
expect_rc 64 tm prices set bad --usd-per-gpu-hour abc --db q.db
expect_rc 64 tm prices set 'bad name' --usd-per-gpu-hour 1 --db q.db
expect_rc 64 tm prices set bad --usd-per-gpu-hour 1 --profile cheap --db q.db
expect_rc 64 tm prices frobnicate --db q.db

# two queued jobs, nothing run yet
line() { printf '{"custom_id":"%s","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}}\n' "$1"; }
{ line a; line b; } > a.jsonl
A=$(tm submit --db q.db --name first a.jsonl)
B=$(tm submit --db q.db --name second a.jsonl)

for by in job day model worker; do
  for f in table csv json html; do
    expect_rc 0 tm report --db q.db --by $by --format $f --include-overhead
  done
done
expect_rc 0 tm report --db q.db --format csv
[ "$(head -1 out.txt)" = "job_id,name,model,requests,prompt_tokens,completion_tokens,cached_tokens,total_tokens,gpu_seconds,kwh,cost_usd,usd_per_1m_input,usd_per_1m_output,usd_per_1m_total,tokens_per_usd" ] \
  || fail "csv header: $(head -1 out.txt)"
grep -qx "$A,first,,2,0,0,0,0,0,,0,,,," out.txt || fail "csv row A: $(cat out.txt)"
grep -qx "$B,second,,2,0,0,0,0,0,,0,,,," out.txt || fail "csv row B: $(cat out.txt)"
expect_rc 0 tm report --db q.db --format json --include-overhead
python3 - out.txt "$A" <<'PY' || fail "report json: $(cat out.txt)"
import json, sys
rows = json.load(open(sys.argv[1]))
assert [r["job_id"] for r in rows][0] == sys.argv[2] and rows[-1]["job_id"] == "(overhead)"
assert rows[0]["usd_per_1m_total"] is None and rows[0]["kwh"] is None and rows[0]["cost_usd"] == 0
PY
expect_rc 0 tm report --db q.db --since 2000-01-01 --format csv
[ "$(wc -l < out.txt)" = 3 ] || fail "--since 2000: $(cat out.txt)"
expect_rc 0 tm report --db q.db --since 2999-01-01T00:00:00 --format csv
[ "$(wc -l < out.txt)" = 1 ] || fail "--since 2999: $(cat out.txt)"
expect_rc 0 tm report --db q.db --since 1h --format csv
[ "$(wc -l < out.txt)" = 3 ] || fail "--since 1h: $(cat out.txt)"
expect_rc 64 tm report --db q.db --since yesterday
expect_rc 64 tm report --db q.db --by color
expect_rc 64 tm report --db q.db --format pdf
expect_rc 64 tm report --db q.db extra

expect_rc 0 tm report --db q.db --format html -o r.html
[ ! -s out.txt ] || fail "-o also wrote stdout"
[ "$(grep -o '<svg' r.html | wc -l)" = 3 ] || fail "want 3 <svg in r.html"
! grep -q '<script' r.html || fail "html has a script"
grep -q 'first' r.html || fail "html lacks job name"
expect_rc 74 tm report --db q.db -o /nonexistent/dir/r.html
echo "cost_report: ok"
