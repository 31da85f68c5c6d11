#!/usr/bin/env bash
# report_render.sh — the HTML cost report as a browser shows it: every --by
# (job, day, model, worker, metadata.team) with --include-overhead and
# --what-if, on a DB with ten days of costed requests (long model paths, a
# long job name), rendered by headless Chromium at 1200 px: a PNG screenshot
# and the DOM of a copy with a probe script added (the report itself has no
# script) that measures document.documentElement.scrollWidth against
# innerWidth. lib/report_check.py then checks no horizontal overflow, that
# every SVG bar's data-value equals the table cell of the same row and column,
# and that the headline total is the totals row's cost; the A4 print is at
# most 3 pages. Skipped (77) without chromium or python3.
# TM_REPORT_PNG_DIR=DIR keeps the screenshots and PDFs there.
set -euo pipefail
: "${TOKENMILL_BIN:?set by ctest}"
command -v python3 >/dev/null || { echo "skipped: python3 is not installed"; exit 77; }
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "skipped: chromium is not installed (apt-get install chromium, or TOKENMILL_CI_CHROMIUM=1 scripts/install-deps.sh)"; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
tm() { "$TOKENMILL_BIN" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
chrome() { timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
  --no-first-run --user-data-dir="$T/profile" --window-size=1200,1400 "$@" 2>>chromium.log; }

line() { printf '{"custom_id":"%s","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"hi"}]}}\n' "$1"; }
for i in 1 2 3 4; do line "r$i"; done > a.jsonl
ids=()
ids+=("$(tm submit --db q.db --name nightly-eval --model /srv/engineering/shared/testdata/models/llama-3.2-1b-instruct/ --metadata team=search a.jsonl)")
ids+=("$(tm submit --db q.db --name "a very long job name for the quarterly summarisation backfill of the support archive" --model /models/qwen2.5-7b-instruct-awq-int4-group128-with-a-long-suffix --metadata team=support a.jsonl)")
ids+=("$(tm submit --db q.db --name translate --model meta-llama/Llama-3.1-8B-Instruct --metadata team=search a.jsonl)")
ids+=("$(tm submit --db q.db --name ads-copy --model /srv/engineering/shared/testdata/models/llama-3.2-1b-instruct --metadata team=ads a.jsonl)")
python3 "$HERE/lib/report_check.py" seed q.db "${ids[@]}" || fail "could not seed the DB"

probe='<script>window.addEventListener("load",function(){var d=document.documentElement,p=document.createElement("pre");'
probe+='p.id="tm-measure";p.textContent=JSON.stringify({scrollWidth:d.scrollWidth,innerWidth:window.innerWidth});'
probe+='document.body.appendChild(p);});</script>'
doms=()
for by in job day model worker metadata.team; do
  f=report-${by/./-}
  tm report --db q.db --by "$by" --format html --include-overhead --what-if h100-premium,2.10 -o "$f.html" \
    || fail "report --by $by"
  ! grep -q '<script' "$f.html" || fail "$f.html has a script"
  sed "s#</body>#$probe</body>#" "$f.html" > "$f.probe.html"
  chrome --dump-dom "file://$T/$f.probe.html" > "$f.dom.html" || fail "chromium --dump-dom $f: $(tail -3 chromium.log)"
  chrome --screenshot="$T/$f.png" "file://$T/$f.html" >/dev/null || fail "chromium --screenshot $f"
  chrome --print-to-pdf="$T/$f.pdf" --no-pdf-header-footer "file://$T/$f.html" >/dev/null || fail "chromium --print-to-pdf $f"
  [ -s "$f.png" ] && [ "$(stat -c %s "$f.png")" -gt 20000 ] || fail "$f.png is empty"
  pages=$(grep -ac '/Type /Page$\|/Type /Page\b[^s]' "$f.pdf" || true)
  echo "$f: A4 print $pages page(s)"
  [ "$pages" -ge 1 ] && [ "$pages" -le 3 ] || fail "$f.pdf: $pages pages"
  doms+=("$f.dom.html")
  if [ -n "${TM_REPORT_PNG_DIR:-}" ]; then mkdir -p "$TM_REPORT_PNG_DIR"; cp "$f.png" "$f.pdf" "$f.html" "$TM_REPORT_PNG_DIR/"; fi
done
python3 "$HERE/lib/report_check.py" check "${doms[@]}" || fail "rendered reports"
echo "report_render: ok"
