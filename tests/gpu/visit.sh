#!/usr/bin/env bash
# visit.sh — the GPU visit: every device check of a change in ONE command of
# at most 8 minutes, building nothing. Made for the lent GPU machine (10 min a
# command, ~15 min in all): the throughput numbers come early and every
# result is written as it comes, so a kill still leaves the table.
#
# Before (on the build machine): bash tests/gpu/stage.sh build-cuda
#   (packs gpu-stage/: binaries, GPU test programs, runtime libs as .tar.xz,
#   test models, the golden jobs' CPU results; < 60 MiB).
# On the GPU machine, from the repo root with gpu-stage carried:
#   bash tests/gpu/visit.sh        (or bash gpu-stage/visit.sh from anywhere)
#
# Steps, most valuable first; each checks the global deadline first and runs
# under `timeout` (skipped when less than its minimum is left; when
# fast-kernels or backend-fast time out, the later fast-path steps are
# skipped rather than left to hang too):
#   stage, unpack, load   the stage's size, the archives, every binary's
#                         libraries resolve, which fast-path switch it has
#   device                nvidia-smi: card, memory, driver
#   fast-kernels          test_cuda_fast_kernels: tensor-core prefill, GQA
#                         decode, GPU sampling vs the CPU reference
#   backend-fast          test_cuda_backend with the fast path (golden logits)
#   bench 128/128         synthetic Llama-3-8B engine bench, fast off then on
#   fp8 / fp8+kv8         the same at --quant fp8 (and --kv-dtype fp8):
#                         "refused" while the CUDA backend refuses them
#   bench 2048/128, 128/2048   fast on
#   golden <model> <mode> `tokenmill run --device cuda` (default, fast) on the
#                         golden jobs vs the float64 reference and the
#                         carried CPU results (visit_golden.py)
#   kernels, backend      the default-path tests
#   kbench-fast, kbench   kernel micro benches (informational)
#   memcheck-*, racecheck-fast   compute-sanitizer on the quick subsets
# Writes $OUT/results.md (one row a step, appended as each ends) and
# $OUT/logs.tar.gz (every step's full output, rewritten after each step);
# without $OUT: ./visit-out/. Exit 0 when no step FAILed (skips allowed).
#
# Environment: VISIT_DEADLINE_S (default 480), VISIT_STAGE (default: the
# folder holding this script if it has a MANIFEST, else REPO/gpu-stage),
# VISIT_DRY_RUN=1 (no GPU: device steps become "skip: no GPU" rows; the bench
# steps parse a CPU bench of llama-mini instead and the golden default steps
# run --device cpu against the carried CPU results, so everything but the
# device is exercised; tests/gpu/visit-dry.sh, ctest gpu/visit-dry), VISIT_SPENT_S
# (count that many seconds as spent once the stage is loaded: a test hook),
# VISIT_ONLY=REGEX (run only the steps whose name matches, e.g. for a second,
# shorter call: VISIT_ONLY='check|golden'; the stage steps always run).
set -uo pipefail

# ---- sub-steps: this script re-runs itself as `visit.sh __NAME ...` under
# `timeout` (a shell function cannot be timed out); they read VISIT_* vars.
case ${1:-} in
__golden) # MODEL MODE(default|fast): one golden job on the device, compared
  m=$2 mode=$3
  db=$VISIT_W/golden-$m-$mode.db out=$VISIT_W/golden-$m-$mode.out
  rm -f "$db"*
  job=$("$VISIT_TM" submit "$VISIT_STAGE/golden/$m.jsonl" --db "$db") || exit 1
  fast=0 sw=$VISIT_RUN_FAST_OFF
  [ "$mode" = fast ] && fast=1 sw=$VISIT_RUN_FAST_ON
  # shellcheck disable=SC2086
  TOKENMILL_CUDA_FAST=$fast "$VISIT_TM" run --model "$VISIT_STAGE/models/$m" --device "$VISIT_DEV" --db "$db" \
    --quiet --max-batch-tokens 256 $sw || { echo "tokenmill run exited $?"; exit 1; }
  "$VISIT_TM" results "$job" --db "$db" -o "$out" || exit 1
  exec python3 "$VISIT_STAGE/visit_golden.py" compare "$VISIT_STAGE/models/$m/golden.jsonl" "$out" \
    "$VISIT_STAGE/golden/$m-cpu.out" ;;
__stage) # the stage is there and under the carry budget
  [ -f "$VISIT_STAGE/MANIFEST" ] || { echo "no $VISIT_STAGE/MANIFEST: run tests/gpu/stage.sh BUILD_DIR first"; exit 1; }
  cat "$VISIT_STAGE/MANIFEST"
  kib=$(du -sk "$VISIT_STAGE" | awk '{print $1}')
  [ "$kib" -lt $((60 * 1024)) ] || { echo "stage is ${kib} KiB: over the 60 MiB carry budget"; exit 1; }
  echo "stage ${kib} KiB, under the 60 MiB carry budget" ;;
__unpack) # with xz, else python3's lzma (a bare image may lack xz-utils)
  for a in bin libs; do
    if command -v xz >/dev/null; then tar -xJf "$VISIT_STAGE/$a.tar.xz" -C "$VISIT_W" || exit 1
    else python3 -c 'import sys, tarfile; t = tarfile.open(sys.argv[1]); t.extractall(sys.argv[2], **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))' \
           "$VISIT_STAGE/$a.tar.xz" "$VISIT_W" || exit 1; fi
  done
  ls -l "$VISIT_W/bin"
  echo "unpacked $(find "$VISIT_W/bin" -type f | wc -l) programs, $(find "$VISIT_W/lib" -type f | wc -l) libraries ($(du -sh "$VISIT_W/lib" | cut -f1))" ;;
__load) # every staged binary resolves its libraries, and tokenmill answers
  bad=0
  for b in "$VISIT_W"/bin/*; do
    if ldd "$b" | grep 'not found'; then echo "$b: unresolved libraries"; bad=1; fi
  done
  "$VISIT_TM" --version | tr '\n' ' ' || bad=1
  echo
  exit $bad ;;
__device)
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || exit 1
  nvidia-smi
  echo "compute-sanitizer: ${VISIT_SAN:-not found}" ;;
__prog) # PROGRAM ARGS...: a staged tests/gpu program
  [ -x "$VISIT_W/bin/$2" ] || { echo "FAIL $2 not staged"; exit 1; }
  p=$2; shift 2
  exec "$VISIT_W/bin/$p" "$@" ;;
__san) # TOOL PROGRAM: compute-sanitizer on a staged program
  [ -n "${VISIT_SAN:-}" ] || { echo "SKIP: compute-sanitizer not found"; exit 77; }
  [ -x "$VISIT_W/bin/$3" ] || { echo "FAIL $3 not staged"; exit 1; }
  exec "$VISIT_SAN" --tool "$2" --error-exitcode 3 "$VISIT_W/bin/$3" ;;
__*) echo "visit.sh: unknown sub-step $1" >&2; exit 64 ;;
esac
case ${1:-} in __*) exit $? ;; esac # a sub-step never falls through to the visit

# ---- setup -------------------------------------------------------------------
[ -z "${VISIT_PARENT:-}" ] || { echo "visit.sh: a visit inside a visit is refused" >&2; exit 70; }
export VISIT_PARENT=$$
T0=$SECONDS
HERE=$(cd "$(dirname "$0")" && pwd)
SELF=$HERE/$(basename "$0")
if [ -n "${VISIT_STAGE:-}" ]; then STAGE=$VISIT_STAGE
elif [ -f "$HERE/MANIFEST" ]; then STAGE=$HERE
else STAGE=$(cd "$HERE/../.." && pwd)/gpu-stage; fi
DEADLINE=${VISIT_DEADLINE_S:-480}
DRY=${VISIT_DRY_RUN:-0}
RESERVE=5 # seconds kept for the last table row and the log archive
OUTD=${OUT:-$PWD/visit-out}
mkdir -p "$OUTD" || exit 1
W=$(mktemp -d)
mkdir -p "$W/logs"
RES=$OUTD/results.md
export VISIT_W=$W VISIT_STAGE=$STAGE VISIT_TM=$W/bin/tokenmill VISIT_DEV=cuda
export VISIT_RUN_FAST_ON="" VISIT_RUN_FAST_OFF=""
[ "$DRY" = 1 ] && VISIT_DEV=cpu
TM=$VISIT_TM
SUB=(bash "$SELF")
N=0 NFAIL=0 NOK=0 NSKIP=0 CUR="" FAST_HUNG=""
declare -a TABLE

{
  echo "# GPU visit $(date -u +%Y-%m-%dT%H:%M:%SZ)$([ "$DRY" = 1 ] && echo ' (DRY RUN: no GPU)')"
  echo
  echo "stage: $STAGE ($(head -1 "$STAGE/MANIFEST" 2>/dev/null || echo 'no MANIFEST')); deadline ${DEADLINE}s"
  echo
  echo "| # | step | result | s | detail |"
  echo "|---|---|---|---|---|"
} > "$RES"

row() { # name result secs detail
  local d=${4//|//}
  printf '| %d | %s | %s | %s | %s |\n' "$N" "$1" "$2" "$3" "$d" >> "$RES"
  TABLE+=("$(printf '%-3s %-26s %-8s %4s  %s' "$N" "$1" "$2" "$3" "$d")")
  printf '[%4ds] %-26s %-8s %s\n' $((SECONDS - T0)) "$1" "$2" "$d"
  case $2 in ok|info|refused) NOK=$((NOK + 1)) ;; skip) NSKIP=$((NSKIP + 1)) ;; *) NFAIL=$((NFAIL + 1)) ;; esac
}
save_logs() { tar -czf "$OUTD/logs.tar.gz.part" -C "$W" logs 2>/dev/null && mv -f "$OUTD/logs.tar.gz.part" "$OUTD/logs.tar.gz"; }
finish() {
  local why=$1
  {
    echo
    echo "$why after $((SECONDS - T0)) s: $NOK ok/info/refused, $NFAIL failed, $NSKIP skipped"
  } >> "$RES"
  save_logs
  echo
  echo "==== GPU visit summary ($why, $((SECONDS - T0)) s; $RES)"
  printf '%s\n' "${TABLE[@]}"
  rm -rf "$W"
}
on_signal() {
  [ -n "$CUR" ] && kill -TERM "$CUR" 2>/dev/null
  N=$((N + 1)); row "(visit)" FAIL $((SECONDS - T0)) "stopped by a signal"
  finish "stopped by a signal"
  exit 143
}
trap on_signal TERM INT HUP

# step NAME TIMEOUT MIN PARSER KIND CMD... — deadline check, run CMD under
# timeout (output to logs/NN-NAME.log), PARSER RC LOG sets R (result) and D
# (detail). KIND gpu: a "skip: no GPU" row in a dry run.
step() {
  local name=$1 tmo=$2 min=$3 parser=$4 kind=$5
  shift 5
  N=$((N + 1))
  local left=$((DEADLINE - (SECONDS - T0) - RESERVE))
  R=skip
  if [ -n "${VISIT_ONLY:-}" ] && ! [[ $name =~ $VISIT_ONLY ]]; then
    case $name in stage|unpack|load) ;; *) row "$name" skip 0 "not selected (VISIT_ONLY)"; return ;; esac
  fi
  if [ "$left" -lt "$min" ]; then row "$name" skip 0 "deadline: ${left}s left, needs ${min}s"; return; fi
  if [ "$DRY" = 1 ] && [ "$kind" = gpu ]; then row "$name" skip 0 "no GPU (dry run)"; return; fi
  [ "$tmo" -le "$left" ] || tmo=$left
  local log
  log=$W/logs/$(printf '%02d' "$N")-${name//[^A-Za-z0-9._-]/_}.log
  echo "\$ $*  (timeout ${tmo}s)" > "$log"
  local t0=$SECONDS rc
  timeout -k 5 "$tmo" "$@" >> "$log" 2>&1 &
  CUR=$!
  wait "$CUR"; rc=$?
  CUR=""
  R=FAIL D=""
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    R=TIMEOUT D="killed after ${tmo}s; last line: $(tail -1 "$log" | cut -c1-120)"
    # a hang in the never-run fast kernels would eat the budget again in every fast step
    case $name in fast-kernels|backend-fast) FAST_HUNG=$name ;; esac
  else
    "$parser" "$rc" "$log"
  fi
  row "$name" "$R" $((SECONDS - t0)) "$D"
  save_logs
}

# ---- parsers: RC LOG -> R, D -------------------------------------------------
p_plain() { if [ "$1" = 0 ]; then R=ok; else R=FAIL; fi; D="exit $1; $(tail -1 "$2" | cut -c1-160)"; }
p_tests() { # a tests/gpu program: PASS/FAIL lines, exit 0/1/77; compute-sanitizer's summary
  local pass fail san
  pass=$(grep -c '^PASS ' "$2") fail=$(grep -c '^FAIL' "$2")
  san=$(grep -o 'ERROR SUMMARY: [0-9]* error[s]*' "$2" | tail -1)
  case $1 in 0) R=ok ;; 77) R=skip ;; *) R=FAIL ;; esac
  D="$pass passed, $fail failed${san:+; $san}; exit $1"
  [ "$1" = 77 ] && D="$(grep -m1 '^SKIP' "$2" | cut -c1-120)"
  [ "$fail" -gt 0 ] && D="$D; $(grep '^FAIL' "$2" | head -3 | awk '{printf "%s%s", s, $2; s=", "}')"
  return 0
}
p_device() { p_plain "$@"; [ "$R" = ok ] && D=$(sed -n 2p "$2" | cut -c1-160); return 0; }
p_info() { if [ "$1" = 0 ]; then R=info; else R=FAIL; fi; D="exit $1 (numbers in the log)"; }
p_bench() { # tokenmill bench engine output -> the row's numbers
  local b dec pre roof hbm dev sum
  b=$(grep -m1 '^batched (engine)' "$2")
  if [ "$1" != 0 ] || [ -z "$b" ]; then
    R=FAIL D="exit $1; $(grep -m1 -iE 'error|fail|refus|not implemented' "$2" | cut -c1-160)"
    return 0
  fi
  dec=$(grep -m1 '^pure decode' "$2" | awk '{printf "decode %s x %s ms (fwd %s, host %s)", $3, $4, $5, $6}')
  pre=$(grep -m1 '^with prefill' "$2" | awk '{printf "prefill %s x %s ms (fwd %s)", $3, $4, $5}')
  roof=$(grep -o 'floor/actual [0-9.]*' "$2" | head -1)
  hbm=$(sed -n 's/^decode steps:.*= \([0-9.]*%\) of.*/\1/p' "$2" | head -1)
  dev=$(grep -m1 -o 'device [a-z]*\( ([^)]*)\)\?' "$2")
  sum=$(grep -m1 -o 'checksum [0-9a-f]*' "$2")
  R=info
  D=$(echo "$b" | awk '{printf "out %s tok/s, total %s tok/s, %s s", $6, $8, $3}')
  D="$D; $dec; $pre${roof:+; $roof}${hbm:+; decode HBM $hbm}; ${dev:-device ?}; $sum"
}
p_fp8() { # refused (exit != 0 with the backend's message) is a result, not a failure
  if [ "$1" != 0 ] && grep -qiE 'not implemented on the GPU|refus|not supported' "$2"; then
    R=refused D="$(grep -m1 -iE 'not implemented on the GPU|refus|not supported' "$2" | cut -c1-160)"
  else
    p_bench "$@"
  fi
}
p_golden() { # last line of visit_golden.py: "ok|FAIL detail"
  local v
  v=$(grep -E '^(ok|FAIL) ' "$2" | tail -1)
  if [ -n "$v" ] && [ "$1" = 0 ]; then R=${v%% *} D=${v#* }
  else R=FAIL D="exit $1; $(tail -1 "$2" | cut -c1-160)"; fi
}
dry_bench() { # a dry run's bench row: the parser on a CPU bench; "skip" when it parsed
  p_bench "$@"
  if [ "$R" != FAIL ]; then R=skip D="no GPU (dry run); parser checked on cpu llama-mini: $D"; fi
}
dry_fp8() {
  p_fp8 "$@"
  if [ "$R" != FAIL ]; then D="no GPU (dry run); parser checked on cpu llama-mini ($R): $D" R=skip; fi
}

# ---- the stage: size, unpack, load -------------------------------------------
step stage 30 1 p_plain any "${SUB[@]}" __stage
[ "$R" = ok ] && step unpack 60 5 p_plain any "${SUB[@]}" __unpack
if [ "$R" != ok ]; then N=$((N + 1)); row "(visit)" FAIL 0 "nothing to run without the stage"; finish aborted; exit 1; fi
export LD_LIBRARY_PATH=$W/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
[ -d /usr/local/cuda/lib64 ] && LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/usr/local/cuda/lib64
# the CUDA runtime and cuBLAS are not packed (the GPU host has them): if the
# loader does not find them, look once where toolkits and wheels put them
if ldd "$TM" 2>/dev/null | grep -qE '(libcudart|libcublas).* not found'; then
  for f in $(timeout 20 find /usr/local /opt /usr/lib -name 'libcudart.so.[0-9]*' -o -name 'libcublasLt.so.[0-9]*' 2>/dev/null); do
    d=$(dirname "$f")
    case ":$LD_LIBRARY_PATH:" in *":$d:"*) ;; *) LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$d ;; esac
  done
  echo "CUDA libraries searched: LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
fi
export TOKENMILL_TESTDATA=$STAGE ASAN_OPTIONS=${ASAN_OPTIONS:-protect_shadow_gap=0}
step load 30 5 p_plain any "${SUB[@]}" __load

# The fast-path switch: a --cuda-fast flag where the binary has one (its
# --help), else the TOKENMILL_CUDA_FAST environment variable (always set too).
fast_args() { # SUBCOMMAND... -> "ON_ARGS|OFF_ARGS"
  local h
  h=$("$TM" "$@" --help 2>&1)
  if echo "$h" | grep -q -- '--no-cuda-fast'; then echo "--cuda-fast|--no-cuda-fast"
  elif echo "$h" | grep -qE -- '--cuda-fast[ =]\[?(on|off)'; then echo "--cuda-fast=on|--cuda-fast=off"
  elif echo "$h" | grep -q -- '--cuda-fast'; then echo "--cuda-fast|"
  else echo "|"; fi
}
fb=$(fast_args bench engine) fr=$(fast_args run)
BENCH_ON=${fb%%|*} BENCH_OFF=${fb#*|}
VISIT_RUN_FAST_ON=${fr%%|*} VISIT_RUN_FAST_OFF=${fr#*|}
SWITCH="TOKENMILL_CUDA_FAST=1/0${BENCH_ON:+; bench engine $BENCH_ON / ${BENCH_OFF:-(none)}}"
SWITCH="$SWITCH${VISIT_RUN_FAST_ON:+; run $VISIT_RUN_FAST_ON / ${VISIT_RUN_FAST_OFF:-(none)}}"
if [ "$DRY" = 1 ]; then VISIT_RUN_FAST_ON="" VISIT_RUN_FAST_OFF=""; fi # the CPU takes no CUDA switch
N=$((N + 1)); row "fast-path switch" info 0 "$SWITCH"
T0=$((T0 - ${VISIT_SPENT_S:-0})) # test hook: count seconds as spent (the dry run checks the deadline skips)

VISIT_SAN=$(command -v compute-sanitizer || { [ -x /usr/local/cuda/bin/compute-sanitizer ] && echo /usr/local/cuda/bin/compute-sanitizer; })
export VISIT_SAN
step device 20 5 p_device gpu "${SUB[@]}" __device

# ---- 1. fast kernels vs the CPU ----------------------------------------------
step fast-kernels 120 30 p_tests gpu "${SUB[@]}" __prog test_cuda_fast_kernels
step backend-fast 90 20 p_tests gpu env TOKENMILL_CUDA_FAST=1 "${SUB[@]}" __prog test_cuda_backend

# ---- 2. engine benches: synthetic Llama-3-8B ---------------------------------
bench() { # NAME TIMEOUT MIN PARSER DRY_PARSER FAST(on|off) I O REQUESTS [extra args]
  local name=$1 tmo=$2 min=$3 parser=$4 dparser=$5 fast=$6 I=$7 O=$8 Rq=$9
  shift 9
  if [ "$DRY" = 1 ]; then
    step "$name" 60 3 "$dparser" any "$TM" bench engine --model "$STAGE/models/llama-mini" --device cpu \
      --only-batched --input-len 16 --output-len 8 --requests 8 --max-seqs 8 "$@"
    return
  fi
  local sw=$BENCH_OFF f=0
  [ "$fast" = on ] && sw=$BENCH_ON f=1
  if [ "$fast" = on ] && [ -n "$FAST_HUNG" ]; then N=$((N + 1)); row "$name" skip 0 "fast path timed out in $FAST_HUNG"; return; fi
  # shellcheck disable=SC2086
  step "$name" "$tmo" "$min" "$parser" gpu env TOKENMILL_CUDA_FAST=$f "$TM" bench engine --synthetic llama3-8b \
    --device cuda --only-batched --input-len "$I" --output-len "$O" --requests "$Rq" --max-seqs "$Rq" $sw "$@"
}
bench "bench 128/128 fast=off" 90 40 p_bench dry_bench off 128 128 256
bench "bench 128/128 fast=on" 90 40 p_bench dry_bench on 128 128 256
bench "fp8 128/128" 60 15 p_fp8 dry_fp8 on 128 128 256 --quant fp8
bench "fp8+kv8 128/128" 60 15 p_fp8 dry_fp8 on 128 128 256 --quant fp8 --kv-dtype fp8
bench "bench 2048/128 fast=on" 90 40 p_bench dry_bench on 2048 128 64
bench "bench 128/2048 fast=on" 120 60 p_bench dry_bench on 128 2048 64

# ---- 3. golden end to end vs the carried CPU results -------------------------
for m in llama-mini llama31-mini qwen2-mini qwen3-mini; do
  for mode in default fast; do
    if [ "$mode" = fast ] && [ -n "$FAST_HUNG" ]; then
      N=$((N + 1)); row "golden $m $mode" skip 0 "fast path timed out in $FAST_HUNG"; continue
    fi
    if [ "$mode" = fast ] && [ "$DRY" = 1 ]; then # on the CPU the same job as the default row
      N=$((N + 1)); row "golden $m $mode" skip 0 "no GPU (dry run): the default row ran this job on the CPU"; continue
    fi
    step "golden $m $mode" 45 10 p_golden any "${SUB[@]}" __golden "$m" "$mode"
  done
done

# ---- 4. default-path tests, kernel micro benches -----------------------------
step kernels 60 15 p_tests gpu "${SUB[@]}" __prog test_cuda_kernels
step backend 90 20 p_tests gpu "${SUB[@]}" __prog test_cuda_backend
step kbench-fast 60 20 p_info gpu "${SUB[@]}" __prog bench_cuda_fast
step kbench 45 15 p_info gpu "${SUB[@]}" __prog bench_cuda

# ---- 5. compute-sanitizer on the quick subsets -------------------------------
step memcheck-fast 90 30 p_tests gpu env TOKENMILL_GPU_TEST_QUICK=1 "${SUB[@]}" __san memcheck test_cuda_fast_kernels
step racecheck-fast 90 30 p_tests gpu env TOKENMILL_GPU_TEST_QUICK=1 "${SUB[@]}" __san racecheck test_cuda_fast_kernels
step memcheck-kernels 60 20 p_tests gpu "${SUB[@]}" __san memcheck test_cuda_kernels
step memcheck-backend 90 30 p_tests gpu "${SUB[@]}" __san memcheck test_cuda_backend

finish finished
[ "$NFAIL" = 0 ]
