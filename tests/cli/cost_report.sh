#!/usr/bin/env bash
# cost_report.sh — end-to-end tests of `tokenmill prices` and `tokenmill
# report`: example profiles present after migration, set/replace/list --json,
# bad input (exit 64), report on a missing DB (65, nothing created), every
# --by x --format on a DB with queued jobs (no cost yet: NULL ratios, 0 $),
# -o FILE, the HTML page (one file, 3 inline <svg>, no <script>), and, on
# runs written into the DB by hand, the wasted share and the overhead spread
# of --include-overhead.
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
[ "$(grep -v '^#' out.txt | head -1)" = "job_id,name,model,requests,prompt_tokens,completion_tokens,cached_tokens,total_tokens,gpu_seconds,kwh,cost_usd,usd_per_1m_input,usd_per_1m_output,usd_per_1m_total,tokens_per_usd,wasted_gpu_seconds,wasted_usd,wasted_share" ] \
  || fail "csv header: $(cat out.txt)"
grep -qx "$A,first,,2,0,0,0,0,0,,0,,,,,0,0," out.txt || fail "csv row A: $(cat out.txt)"
grep -qx "$B,second,,2,0,0,0,0,0,,0,,,,,0,0," out.txt || fail "csv row B: $(cat out.txt)"
expect_rc 0 tm report --db q.db --format json --include-overhead
python3 - out.txt "$A" <<'PY' || fail "report json: $(cat out.txt)"
import json, sys
d = json.load(open(sys.argv[1]))
rows = d["rows"]
assert [r["job_id"] for r in rows] [0] == sys.argv[2] and len(rows) == 2  # no run: nothing unattributed
assert d["currency"] == "USD" and d["overhead_included"] is True and d["by"] == "job", d
assert d["period"] == {"since": None, "until": None} and d["generated_at"].endswith("Z"), d
assert d["totals"]["job_id"] == "(total)" and d["totals"]["requests"] == 4 and d["totals"]["cost_usd"] == 0, d
assert rows[0]["usd_per_1m_total"] is None and rows[0]["kwh"] is None and rows[0]["cost_usd"] == 0
assert rows[0]["overhead_usd"] == 0 and rows[0]["wasted_share"] is None
PY
expect_rc 0 tm report --db q.db --since 2000-01-01 --format csv
[ "$(grep -vc '^#' out.txt)" = 4 ] || fail "--since 2000: $(cat out.txt)"  # header, 2 jobs, totals
grep -qx '# period_since: 2000-01-01T00:00:00Z' out.txt || fail "--since 2000 metadata: $(cat out.txt)"
grep -q '^(total),,,4,' out.txt || fail "csv totals: $(cat out.txt)"
expect_rc 0 tm report --db q.db --since 2999-01-01T00:00:00 --format csv
[ "$(grep -vc '^#' out.txt)" = 2 ] || fail "--since 2999: $(cat out.txt)"
expect_rc 0 tm report --db q.db --since 1h --format csv
[ "$(grep -vc '^#' out.txt)" = 4 ] || fail "--since 1h: $(cat out.txt)"
for w in today 7d now 2026-12-01; do expect_rc 0 tm report --db q.db --since $w --format csv; done
expect_rc 0 tm report --db q.db --until yesterday --format csv
[ "$(grep -vc '^#' out.txt)" = 2 ] || fail "--until yesterday: $(cat out.txt)"   # jobs created today
expect_rc 0 tm report --db q.db --since today --until today --format csv
[ "$(grep -vc '^#' out.txt)" = 4 ] || fail "--since/--until today: $(cat out.txt)"
expect_rc 64 tm report --db q.db --since someday
expect_rc 64 tm report --db q.db --since 2026-13-45
expect_rc 64 tm report --db q.db --since today --until yesterday
expect_rc 64 tm report --db q.db --by metadata.
expect_rc 64 tm report --db q.db --by 'metadata.a"b'
expect_rc 64 tm report --db q.db --what-if no-such-profile
expect_rc 64 tm report --db q.db --what-if -3
expect_rc 64 tm report --db q.db --by color
expect_rc 64 tm report --db q.db --format pdf
expect_rc 64 tm report --db q.db extra

expect_rc 0 tm report --db q.db --format html -o r.html
[ ! -s out.txt ] || fail "-o also wrote stdout"
[ "$(grep -o '<svg' r.html | wc -l)" = 2 ] || fail "want 2 <svg in r.html (cost, tokens/\$)"
! grep -q '<script' r.html || fail "html has a script"
grep -q 'first' r.html || fail "html lacks job name"
expect_rc 74 tm report --db q.db -o /nonexistent/dir/r.html
expect_rc 0 tm report --help
grep -q 'wasted_share' out.txt && grep -q "(unattributed overhead)" out.txt || fail "--help: $(cat out.txt)"

# Two runs written by hand (the worker's part is tested elsewhere): run_a at
# $1/h completed A's two requests (1 s and 3 s; the second was charged for
# two attempts, 0.5 s of it recomputed) with 36 s of overhead ($0.01); run_b
# at $2/h completed nothing, 18 s of overhead ($0.01).
python3 - q.db "$A" <<'PY' || fail "could not write runs into the DB"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
now = 1795046400
db.execute("INSERT INTO runs(id, worker_id, started_at, ended_at, requests_done, prompt_tokens, completion_tokens,"
           " gpu_seconds, cost_usd, price_usd_per_hour, overhead_seconds) VALUES"
           " ('run_a', NULL, ?, ?, 2, 20, 4, 40.0, 40.0/3600, 1.0, 36.0),"
           " ('run_b', NULL, ?, ?, 0, 0, 0, 18.0, 36.0/3600, 2.0, 18.0)", (now, now + 40, now + 60, now + 78))
ids = [r[0] for r in db.execute("SELECT id FROM requests WHERE job_id=? ORDER BY seq", (sys.argv[2],))]
for i, (g, w) in enumerate([(1.0, 0.0), (3.0, 0.5)]):
    db.execute("UPDATE requests SET state='done', finished_at=?, prompt_tokens=10, completion_tokens=2, gpu_seconds=?,"
               " cost_usd=?/3600, wasted_seconds=?, wasted_usd=?/3600, run_id='run_a' WHERE id=?",
               (now + 40, g, g, w, w, ids[i]))
db.commit()
PY
expect_rc 0 tm report --db q.db --format json
python3 - out.txt "$A" <<'PY' || fail "wasted share json: $(cat out.txt)"
import json, sys
a = json.load(open(sys.argv[1]))["rows"][0]
assert a["job_id"] == sys.argv[2] and abs(a["cost_usd"] - 4 / 3600) < 1e-12, a
assert a["wasted_gpu_seconds"] == 0.5 and abs(a["wasted_share"] - 0.125) < 1e-12, a
assert "overhead_usd" not in a
PY
expect_rc 0 tm report --db q.db --format json --include-overhead
python3 - out.txt "$A" "$B" <<'PY' || fail "overhead spread json: $(cat out.txt)"
import json, sys
d = json.load(open(sys.argv[1]))
rows = {r["job_id"]: r for r in d["rows"]}
t = d["totals"]
assert abs(t["cost_usd"] - sum(r["cost_usd"] for r in rows.values())) < 1e-15, t
assert abs(t["tokens_per_usd"] - t["total_tokens"] / t["cost_usd"]) < 1e-6, t
assert abs(t["wasted_share"] - t["wasted_usd"] / t["cost_usd"]) < 1e-15, t
a, b, u = rows[sys.argv[2]], rows[sys.argv[3]], rows["(unattributed overhead)"]
assert a["overhead_seconds"] == 36 and abs(a["overhead_usd"] - 0.01) < 1e-12, a
assert abs(a["cost_usd"] - (4 / 3600 + 0.01)) < 1e-12 and a["gpu_seconds"] == 4, a
assert abs(a["usd_per_1m_total"] - a["cost_usd"] * 1e6 / 24) < 1e-6, a
assert abs(a["wasted_share"] - (0.5 / 3600) / a["cost_usd"]) < 1e-12, a
assert b["overhead_seconds"] == 0 and b["cost_usd"] == 0, b
assert u["overhead_seconds"] == 18 and abs(u["cost_usd"] - 0.01) < 1e-12 and u["requests"] == 0, u
assert abs(sum(r["overhead_seconds"] for r in rows.values()) - 54) < 1e-9
PY
for by in day model; do
  expect_rc 0 tm report --db q.db --by $by --format csv --include-overhead
  want="(unattributed overhead),0,0,0,0,0,,0.01,,,,0,0,0,0,18,0.01"
  [ $by = model ] && want="(unattributed overhead),,0,0,0,0,0,,0.01,,,,0,0,0,0,18,0.01" # + requested_model (empty)
  [ "$(tail -2 out.txt | head -1)" = "$want" ] || fail "--by $by: $(cat out.txt)"
  tot='^(total),2,20,4,24,4,,0.0211111'; [ $by = model ] && tot='^(total),,2,20,4,24,4,,0.0211111'
  tail -1 out.txt | grep -q "$tot" || fail "--by $by totals: $(tail -1 out.txt)"
done
expect_rc 0 tm report --db q.db --by worker --format json --include-overhead
python3 - out.txt <<'PY' || fail "worker json: $(cat out.txt)"
import json, sys
w = json.load(open(sys.argv[1]))["rows"][0]
assert w["worker"] == "(unknown)" and w["runs"] == 2 and w["overhead_seconds"] == 54, w
assert w["wasted_gpu_seconds"] == 0.5 and abs(w["wasted_share"] - (0.5 / 3600) / (76 / 3600)) < 1e-12, w
PY
expect_rc 0 tm report --db q.db --include-overhead
grep -q 'include run overhead' out.txt || fail "table note: $(head -6 out.txt)"
grep -q '^Total \$0.02 | 24 tokens' out.txt || fail "table headline: $(head -3 out.txt)"
grep -q '^(total) ' out.txt || fail "table totals row: $(cat out.txt)"
awk 'length($0) > 100 { bad = 1 } END { exit bad }' out.txt || fail "table wider than 100 columns: $(cat out.txt)"
expect_rc 0 tm report --db q.db --include-overhead --wide
grep -q 'usd_per_1m_input' out.txt || fail "--wide lacks columns: $(cat out.txt)"
grep -q '^(unattributed overhead)' out.txt || fail "table: $(cat out.txt)"
expect_rc 0 tm report --db q.db --format html --include-overhead -o o.html
grep -q 'Wasted (recompute)' o.html && grep -q 'run overhead' o.html && grep -q '>wasted</th>' o.html \
  || fail "html lacks the wasted/overhead parts"
grep -q 'Total spend</div><div class="v">\$0.02<' o.html || fail "html headline"
grep -q '<tfoot>' o.html || fail "html totals row"

# --by metadata.team, --what-if (a profile of the same GPU kind, a bare number; not another GPU's)
sqlite3 q.db "UPDATE jobs SET metadata='{\"team\":\"search\"}' WHERE id='$A'; UPDATE runs SET price_profile='h100-ondemand'"
expect_rc 0 tm report --db q.db --by metadata.team --format json --what-if h100-premium,2.5
python3 - out.txt <<'PY' || fail "metadata/what-if json: $(cat out.txt)"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["by"] == "metadata.team" and d["columns"][0] == "team", d
assert [r["team"] for r in d["rows"]] == ["search"] and d["rows"][0]["requests"] == 2, d
assert d["price_profiles"] == ["h100-ondemand ($1.00 per GPU-h)", "h100-ondemand ($2.00 per GPU-h)"], d  # the runs' own prices
w = {x["profile"]: x for x in d["what_if"]}
g = 4 / 3600  # the requests' GPU-hours (overhead not included)
assert abs(w["h100-premium"]["cost_usd"] - g * 4.0) < 1e-15 and abs(w["$2.50 per GPU-h"]["cost_usd"] - g * 2.5) < 1e-15, w
assert abs(w["h100-premium"]["tokens_per_usd"] - 24 / (g * 4.0)) < 1e-6, w
PY
expect_rc 64 tm report --db q.db --what-if a100-ondemand   # an A100 price for H100 runs
grep -q 'same GPU kind' err.txt || fail "what-if GPU kind: $(cat err.txt)"
echo "cost_report: ok"
