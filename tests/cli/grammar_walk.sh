#!/usr/bin/env bash
# grammar_walk.sh — structured output is always valid (issue 15, without a
# model): `tokenmill bench grammar --sample` walks every built-in schema
# (nested objects, arrays, enums, $ref recursion, patterns, formats, integer
# ranges, any-JSON, a regex, a choice: src/tools/bench_grammar_schemas.h) 25
# times with uniformly random allowed tokens on the llama3 (byte-level BPE,
# 128,256 tokens) and mistral (SentencePiece, byte fallback) tokenizers,
# steering to an end after 24 tokens; every walk must end, decode to the
# tokens' bytes, and grammar_walk.py must find 100% of the outputs valid
# (python3-jsonschema, formats checked). Skips (77) without test data or
# python3-jsonschema.
set -u
TD="${TOKENMILL_TESTDATA:-}"
BIN="${TOKENMILL_BIN:?TOKENMILL_BIN not set}"
SRC="${TOKENMILL_SRC:?TOKENMILL_SRC not set}"
if [ -z "$TD" ] || [ ! -f "$TD/tokenizers/llama3/tokenizer.json" ] || [ ! -f "$TD/tokenizers/mistral/tokenizer.json" ]; then
    echo "skipped: no test data (TOKENMILL_TESTDATA='$TD')"; exit 77
fi
command -v python3 >/dev/null || { echo "skipped: python3 not found"; exit 77; }
python3 -c 'import jsonschema' 2>/dev/null || { echo "skipped: python3-jsonschema not installed (scripts/install-deps.sh)"; exit 77; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$BIN" bench grammar --help | grep -q -- "--sample" || fail "--help"
"$BIN" bench grammar --walks 0 >/dev/null 2>&1; [ $? -eq 64 ] || fail "--walks 0 must be 64"

for fam in llama3 mistral; do
    "$BIN" bench grammar --tokenizer "$TD/tokenizers/$fam" --walks 25 --seed 7 --sample "$WORK/$fam.jsonl" \
        >"$WORK/$fam.out" 2>&1 || { cat "$WORK/$fam.out"; fail "$fam: bench grammar failed"; }
    grep "^all schemas" "$WORK/$fam.out"
    n=$(wc -l <"$WORK/$fam.jsonl")
    [ "$n" -ge 500 ] || fail "$fam: only $n outputs"
    python3 "$SRC/tests/cli/grammar_walk.py" "$WORK/$fam.jsonl" || fail "$fam: invalid outputs"
done
echo "ok"
