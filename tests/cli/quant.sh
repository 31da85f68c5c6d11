#!/usr/bin/env bash
# quant.sh — --quant and --kv-dtype on `tokenmill generate`, `bench forward`
# and `bench engine`: bad values are usage errors (64) that list the known
# ones; on a test model every combination generates the requested tokens,
# deterministically, and quantized runs differ from bf16; bench engine prints
# what it ran; a synthetic model with --quant is still refused by the CPU (69).
set -uo pipefail
BIN=${TOKENMILL_BIN:?}
TD=${TOKENMILL_TESTDATA:-../shared/testdata}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
expect_rc() { # rc, command...
  local want=$1; shift
  "$@" > "$T/out" 2> "$T/err"; local rc=$?
  [ "$rc" = "$want" ] || { cat "$T/out" "$T/err"; fail "exit $rc, expected $want: $*"; }
}

expect_rc 64 "$BIN" generate --model x --ids 1 --quant int5
grep -q "quantization 'int5' is not known (known: none, int4, int4-asym, fp8)" "$T/err" || fail "no --quant message"
expect_rc 64 "$BIN" generate --model x --ids 1 --kv-dtype fp16
grep -q "KV dtype 'fp16' is not known (known: auto, bf16, fp8)" "$T/err" || fail "no --kv-dtype message"
expect_rc 64 "$BIN" bench forward --model x --quant q4
expect_rc 64 "$BIN" bench engine --synthetic llama3-8b --quant q4
expect_rc 64 "$BIN" bench engine --synthetic llama3-8b --kv-dtype e5m2
expect_rc 69 "$BIN" bench engine --synthetic llama3-8b --device cpu --only-batched --requests 2 --quant int4 --kv-dtype fp8
grep -q "synthetic models run on the CUDA backend only" "$T/err" || fail "cpu refusal message missing"
grep -q "^weights: int4 (round-to-nearest at load" "$T/out" || fail "bench engine does not say what it quantized"
grep -q "KV cache: fp8" "$T/out" || fail "bench engine does not say the KV dtype"
"$BIN" generate --help | grep -q -- "--quant Q" || fail "generate --help lacks --quant"
"$BIN" bench forward --help | grep -q -- "--kv-dtype D" || fail "bench forward --help lacks --kv-dtype"

if [ ! -f "$TD/models/llama-mini/config.json" ]; then
  echo "SKIP (rest): test data not found in $TD (set TOKENMILL_TESTDATA)"; exit 77
fi
M="$TD/models/llama-mini"
for q in none int4 int4-asym fp8; do
  for kv in auto bf16 fp8; do
    expect_rc 0 "$BIN" generate --model "$M" --device cpu --ids 5,6,7,8 -n 6 --ignore-eos --json --quant $q --kv-dtype $kv
    ids=$(sed -n 's/.*"ids": *\[\([0-9,]*\)\].*/\1/p' "$T/out")
    [ "$(echo "$ids" | tr ',' '\n' | grep -c .)" = 6 ] || fail "$q/$kv: not 6 ids: $(cat "$T/out")"
    expect_rc 0 "$BIN" generate --model "$M" --device cpu --ids 5,6,7,8 -n 6 --ignore-eos --json --quant $q --kv-dtype $kv --threads 1
    ids2=$(sed -n 's/.*"ids": *\[\([0-9,]*\)\].*/\1/p' "$T/out")
    [ "$ids" = "$ids2" ] || fail "$q/$kv: not deterministic across thread counts ($ids vs $ids2)"
    echo "$q/$kv: $ids" >> "$T/all"
  done
done
[ "$(grep -c . "$T/all")" = 12 ] || fail "missing runs"
# --logits last: quantized logits differ from bf16's
expect_rc 0 "$BIN" generate --model "$M" --device cpu --ids 5,6,7,8 -n 1 --json --logits last
cp "$T/out" "$T/bf16.json"
expect_rc 0 "$BIN" generate --model "$M" --device cpu --ids 5,6,7,8 -n 1 --json --logits last --quant int4
cmp -s "$T/out" "$T/bf16.json" && fail "--quant int4 gave bf16's logits"

expect_rc 0 "$BIN" bench engine --model "$M" --device cpu --threads 1 --requests 4 --input-len 12 --output-len 4 \
  --max-seqs 2 --only-batched --quant fp8 --kv-dtype fp8 --hbm-bandwidth 1e11
grep -q "^weights: fp8 (round-to-nearest at load, per-channel, W8A8) | KV cache: fp8 | roofline peak 1.979e+15" "$T/out" \
  || fail "bench engine fp8 line: $(grep weights "$T/out")"
grep -q "^batched (engine)" "$T/out" || fail "no batched row"
expect_rc 0 "$BIN" bench forward --model "$M" --device cpu --tokens 16 --batch 2 --steps 2 --reps 1 --quant int4-asym
grep -q "^weights: int4-asym" "$T/out" || fail "bench forward does not say what it quantized"
grep -q -- "--quant int4-asym --kv-dtype auto$" "$T/out" || fail "bench forward command line lacks --quant"
echo "quant.sh: ok"
