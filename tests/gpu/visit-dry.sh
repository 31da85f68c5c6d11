#!/usr/bin/env bash
# visit-dry.sh — the GPU visit's CPU-only dry run (ctest gpu/visit-dry), so
# tests/gpu/stage.sh and tests/gpu/visit.sh cannot rot between GPU visits:
#  1. stages into a temporary folder from a CUDA build (VISIT_BUILD, else
#     REPO/build-ci as CI builds it, else REPO/build-cuda; else the build
#     running the test, CPU parts only) at xz -0 (fast; larger than the real
#     -6 stage, so its size check bounds the real one);
#  2. runs the visit with VISIT_DRY_RUN=1: device steps become "skip: no GPU"
#     rows; the bench parser reads CPU benches of llama-mini; the golden jobs
#     run --device cpu (once: the "fast" rows are skips) and go through the
#     comparison with the carried CPU results; checks the table (every step a row, no FAIL), the log archive;
#  3. the comparison rejects tampered tokens (it is not vacuous);
#  4. with the whole budget spent (VISIT_SPENT_S) every selected step
#     (VISIT_ONLY) is a "deadline" skip, the others "not selected", and the
#     table is still complete; without a stage the visit fails with a row.
# Exit 0 passed, 1 failed, 77 skipped (no python3/xz/test data, or no CUDA
# build: then 1-4 still ran on the CPU parts and a failure still fails).
set -uo pipefail
SRC=${TOKENMILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
TD=${TOKENMILL_TESTDATA:-$SRC/../shared/testdata}
export TOKENMILL_TESTDATA=$TD
for tool in python3 xz tar ldd timeout; do
  command -v $tool >/dev/null || { echo "SKIP: $tool not found"; exit 77; }
done
[ -d "$TD/models/llama-mini" ] || { echo "SKIP: test data not found in $TD"; exit 77; }

has_cuda() { [ -x "$1/tokenmill" ] && "$1/tokenmill" --version 2>/dev/null | grep -q "CUDA backend: built in"; }
BUILD=""
for b in "${VISIT_BUILD:-}" "$SRC/build-ci" "$SRC/build-cuda"; do
  if [ -n "$b" ] && has_cuda "$b" && [ -x "$b/gpu/test_cuda_backend" ]; then BUILD=$b; break; fi
done
cuda=1
if [ -z "$BUILD" ]; then
  cuda=0 BUILD=${TOKENMILL_BUILD:-$SRC/build}
  [ -x "$BUILD/tokenmill" ] || { echo "SKIP: no tokenmill binary in $BUILD"; exit 77; }
fi
echo "staging from $BUILD (CUDA build with GPU programs: $cuda)"

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
check() { # DESCRIPTION COMMAND... : one assertion
  if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi
}
t0=$SECONDS

# 1. stage
VISIT_XZ_LEVEL=0 VISIT_STAGE_PARTIAL=1 bash "$SRC/tests/gpu/stage.sh" "$BUILD" "$T/stage" > "$T/stage.log" 2>&1
rc=$?
cat "$T/stage.log"
[ $rc = 0 ] || { echo "FAIL stage.sh exited $rc"; exit 1; }
check "stage has bin.tar.xz, libs.tar.xz, MANIFEST, visit.sh, 4 CPU results, 5 models" \
  test -s "$T/stage/bin.tar.xz" -a -s "$T/stage/libs.tar.xz" -a -s "$T/stage/MANIFEST" -a -s "$T/stage/visit.sh" \
  -a "$(find "$T/stage/golden" -name '*-cpu.out' -size +0 | wc -l)" = 4 -a "$(find "$T/stage/models" -name config.json | wc -l)" = 5
check "stage under 60 MiB" test "$(du -sk "$T/stage" | cut -f1)" -lt $((60 * 1024))
if [ $cuda = 1 ]; then
  check "GPU programs staged" bash -c "tar -tJf '$T/stage/bin.tar.xz' | grep -c 'bin/test_cuda' | grep -qx 3"
fi

# 2. the dry visit (the staged copy of the script, as the device would run it)
SETUP="stage unpack load fast-path_switch"
DEVICE="device fast-kernels backend-fast kernels backend kbench-fast kbench memcheck-fast racecheck-fast
memcheck-kernels memcheck-backend"
BENCH="bench_128/128_fast=off bench_128/128_fast=on fp8_128/128 fp8+kv8_128/128 bench_2048/128_fast=on
bench_128/2048_fast=on"
GOLDEN="golden_llama-mini_default golden_llama31-mini_default golden_qwen2-mini_default golden_qwen3-mini_default"
GOLDEN_FAST="golden_llama-mini_fast golden_llama31-mini_fast golden_qwen2-mini_fast golden_qwen3-mini_fast"
# shellcheck disable=SC2317 # (run through bash -c below)
has_rows() { # RESULTS.md RESULT_REGEX STEPS: each step (_ for space) has a row whose result matches
  local s
  for s in $3; do
    awk -F' [|] ' -v s="${s//_/ }" -v r="^($2)\$" '$2 == s && $3 ~ r {f = 1} END {exit !f}' "$1" ||
      { echo "  no '$2' row for '${s//_/ }' in $1"; return 1; }
  done
}
export -f has_rows
export SETUP DEVICE BENCH GOLDEN GOLDEN_FAST
(cd "$T" && VISIT_DRY_RUN=1 VISIT_STAGE='' OUT="$T/out" bash "$T/stage/visit.sh") > "$T/visit.log" 2>&1
rc=$?
cat "$T/visit.log"
check "dry visit exits 0" test $rc = 0
R1=$T/out/results.md
check "results.md: setup ok, device, bench and golden-fast steps skip, golden ok" bash -c \
  "has_rows $R1 'ok|info' \"\$SETUP\" && has_rows $R1 skip \"\$DEVICE \$BENCH \$GOLDEN_FAST\" && has_rows $R1 ok \"\$GOLDEN\""
check "results.md: no FAIL/TIMEOUT rows, a closing line" bash -c \
  "! grep -qE '\| (FAIL|TIMEOUT) \|' '$T/out/results.md' && grep -q '^finished after' '$T/out/results.md'"
check "bench parser read all six CPU benches" test "$(grep -c 'parser checked on cpu llama-mini.*out [0-9.]* tok/s.*decode' "$T/out/results.md")" = 6
check "logs.tar.gz holds every step that ran" test "$(tar -tzf "$T/out/logs.tar.gz" | grep -c '\.log$')" = 13

# 3. the comparison sees wrong tokens
python3 - "$T/stage/golden/llama31-mini-cpu.out" "$T/tampered.out" <<'PY'
import json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as o:
    for line in f:
        r = json.loads(line)
        ids = r["response"]["body"]["choices"][0]["token_ids"]
        ids[0] = (ids[0] + 1) % 256
        o.write(json.dumps(r) + "\n")
PY
v=$(python3 "$T/stage/visit_golden.py" compare "$TD/models/llama31-mini/golden.jsonl" "$T/tampered.out" \
    "$T/stage/golden/llama31-mini-cpu.out")
echo "tampered: $v"
check "compare rejects tampered first tokens" test "${v%% *}" = FAIL

# 4. deadline spent; no stage
(cd "$T" && VISIT_DRY_RUN=1 VISIT_STAGE="$T/stage" VISIT_SPENT_S=10000 VISIT_ONLY='^(kernels|golden .*default)$' \
  OUT="$T/out2" bash "$T/stage/visit.sh") > "$T/visit2.log" 2>&1
rc=$?
R2=$T/out2/results.md
check "spent deadline + VISIT_ONLY: exit 0, setup ok, the 5 selected steps deadline skips, 16 not selected" bash -c \
  "test $rc = 0 && has_rows $R2 'ok|info' \"\$SETUP\" && has_rows $R2 skip \"\$DEVICE \$BENCH \$GOLDEN \$GOLDEN_FAST\" &&
   test \$(grep -c '| skip | 0 | deadline:' $R2) = 5 && test \$(grep -c '| skip | 0 | not selected' $R2) = 16"
(cd "$T" && VISIT_DRY_RUN=1 VISIT_STAGE="$T/none" OUT="$T/out3" bash "$T/stage/visit.sh") > "$T/visit3.log" 2>&1
rc=$?
check "no stage: exit 1 and a FAIL row saying so" bash -c \
  "test $rc = 1 && grep -q 'nothing to run without the stage' '$T/out3/results.md'"

echo "visit-dry: $fails failed, $((SECONDS - t0)) s"
[ $fails = 0 ] || exit 1
if [ $cuda = 0 ]; then
  echo "SKIP: no CUDA build with GPU programs (build-ci/build-cuda): staged and dry-ran the CPU parts only"
  exit 77
fi
exit 0
