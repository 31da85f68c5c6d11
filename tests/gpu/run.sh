#!/usr/bin/env bash
# run.sh [BUILD_DIR] — runs the GPU tests built by tests/gpu/build.sh (no
# compiling here): test_cuda_kernels, test_cuda_fast_kernels (the tensor-core
# attention and GPU sampling kernels vs the CPU reference), test_cuda_backend
# twice (default path, then TOKENMILL_CUDA_FAST=1: the same golden checks on
# the fast attention kernels), the kernel tests again under compute-sanitizer
# memcheck (and racecheck for the fast kernels) when it is on PATH, and
# bench_cuda / bench_cuda_fast if built (informational, never fail the run). Run from the repo root on the GPU
# machine; TOKENMILL_TESTDATA defaults to ./testdata-gpu, then
# ../shared/testdata. Prints every check, then one summary table; exits 1 if
# any program failed, 77 if all were skipped (no device).
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build-cuda}
BIN=$BUILD/gpu
if [ -z "${TOKENMILL_TESTDATA:-}" ]; then
  if [ -d "$SRC/testdata-gpu/models" ]; then export TOKENMILL_TESTDATA=$SRC/testdata-gpu
  else export TOKENMILL_TESTDATA=$SRC/../shared/testdata; fi
fi
[ -x "$BIN/test_cuda_kernels" ] || { echo "run.sh: $BIN/test_cuda_kernels missing: run tests/gpu/build.sh $BUILD on the build machine"; exit 1; }
command -v compute-sanitizer >/dev/null || [ ! -x /usr/local/cuda/bin/compute-sanitizer ] || PATH=$PATH:/usr/local/cuda/bin
# the CUDA driver maps memory where ASan keeps its shadow gap
export ASAN_OPTIONS=${ASAN_OPTIONS:-protect_shadow_gap=0}
LOG=$(mktemp -d)
declare -a NAMES RCS PASSES FAILS SECS
run_one() { # name, command...
  local name=$1; shift
  local t0=$SECONDS
  echo "==== $name: $*"
  "$@" 2>&1 | tee "$LOG/$name.log"
  local rc=${PIPESTATUS[0]}
  NAMES+=("$name"); RCS+=("$rc"); SECS+=($((SECONDS - t0)))
  PASSES+=("$(grep -c '^PASS ' "$LOG/$name.log")"); FAILS+=("$(grep -c '^FAIL' "$LOG/$name.log")")
}
run_one kernels "$BIN/test_cuda_kernels"
[ -x "$BIN/test_cuda_fast_kernels" ] && run_one fast-kernels "$BIN/test_cuda_fast_kernels"
run_one backend "$BIN/test_cuda_backend"
run_one backend-fast env TOKENMILL_CUDA_FAST=1 "$BIN/test_cuda_backend"
if command -v compute-sanitizer >/dev/null; then
  run_one memcheck compute-sanitizer --tool memcheck --error-exitcode 3 "$BIN/test_cuda_kernels"
  [ -x "$BIN/test_cuda_fast_kernels" ] &&
    run_one memcheck-fast env TOKENMILL_GPU_TEST_QUICK=1 compute-sanitizer --tool memcheck --error-exitcode 3 "$BIN/test_cuda_fast_kernels"
  [ -x "$BIN/test_cuda_fast_kernels" ] &&
    run_one racecheck-fast env TOKENMILL_GPU_TEST_QUICK=1 compute-sanitizer --tool racecheck --error-exitcode 3 "$BIN/test_cuda_fast_kernels"
  run_one memcheck-backend compute-sanitizer --tool memcheck --error-exitcode 3 "$BIN/test_cuda_backend"
else
  echo "(compute-sanitizer not on PATH: memcheck skipped)"
fi
[ -x "$BIN/bench_cuda" ] && { echo "==== bench (informational)"; "$BIN/bench_cuda" || echo "bench_cuda exited $?"; }
[ -x "$BIN/bench_cuda_fast" ] &&
  { echo "==== bench fast kernels (informational)"; "$BIN/bench_cuda_fast" || echo "bench_cuda_fast exited $?"; }
echo
echo "==== GPU test summary ($(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1))"
printf '%-18s %-8s %6s %6s %6s\n' program result pass fail secs
status=0; skipped=0
for i in "${!NAMES[@]}"; do
  rc=${RCS[$i]}
  case $rc in 0) r=ok ;; 77) r=SKIP; skipped=$((skipped + 1)) ;; *) r="FAIL($rc)"; status=1 ;; esac
  printf '%-18s %-8s %6s %6s %6s\n' "${NAMES[$i]}" "$r" "${PASSES[$i]}" "${FAILS[$i]}" "${SECS[$i]}"
done
grep -h '^FAIL' "$LOG"/*.log | sed 's/^/  /'
rm -rf "$LOG"
if [ $status = 0 ] && [ $skipped = ${#NAMES[@]} ]; then exit 77; fi
exit $status
