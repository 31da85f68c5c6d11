#!/usr/bin/env bash
# stage.sh BUILD_DIR [STAGE_DIR] — packs everything the GPU visit
# (tests/gpu/visit.sh) needs into ONE folder (default REPO/gpu-stage, ignored
# by git), so that the GPU machine builds nothing and reads nothing outside it:
#   bin.tar.xz    BUILD_DIR/tokenmill and the GPU test programs of
#                 BUILD_DIR/gpu (tests/gpu/build.sh is run when one is missing
#                 or older than libtmcore.a), debug info stripped
#   libs.tar.xz   their shared libraries (../shared/tools/pack-runtime-libs:
#                 all but libc and the CUDA/driver libraries a GPU host has;
#                 91 MB plain, ~21 MB as xz -6)
#   models/       the five golden test models of $TOKENMILL_TESTDATA
#   golden/       M.jsonl (the end-to-end job of each golden model, made by
#                 visit_golden.py) and M-cpu.out (its results, run here with
#                 --device cpu), so the device runs only the CUDA side
#   visit.sh, visit_golden.py, MANIFEST (commit, build, sizes)
# and checks the folder against the device tool's carry limit: < 60 MiB
# (64 MiB for the whole working tree that travels). Exit 1 on any failure.
# Environment: TOKENMILL_TESTDATA (default ../shared/testdata), VISIT_XZ_LEVEL
# (default 6; the CI dry run uses 0: faster, larger, still under the limit),
# VISIT_STAGE_PARTIAL=1 (stage what exists instead of failing when the build
# has no CUDA backend or no GPU test programs, and build nothing: the dry run).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:?usage: tests/gpu/stage.sh BUILD_DIR [STAGE_DIR]}" && pwd)
STAGE=${2:-$SRC/gpu-stage}
TD=${TOKENMILL_TESTDATA:-$SRC/../shared/testdata}
LEVEL=${VISIT_XZ_LEVEL:-6}
PARTIAL=${VISIT_STAGE_PARTIAL:-0}
LIMIT_MIB=60
PROGRAMS="test_cuda_fast_kernels test_cuda_backend test_cuda_kernels bench_cuda bench_cuda_fast"
MODELS="llama-mini llama31-mini qwen2-mini qwen3-mini mistral-tok-mini"
GOLDEN="llama-mini llama31-mini qwen2-mini qwen3-mini" # token-id prompts with full reference logits
say() { echo "stage: $*"; }
die() { echo "stage: $*" >&2; exit 1; }

BIN=$BUILD/tokenmill
[ -x "$BIN" ] || die "$BIN not found (build first)"
[ -d "$TD/models/llama-mini" ] || die "test data not found in $TD (set TOKENMILL_TESTDATA)"
command -v python3 >/dev/null || die "python3 not found"
command -v xz >/dev/null || die "xz not found"
cuda=0
"$BIN" --version | grep -q "CUDA backend: built in" && cuda=1
if [ $cuda = 0 ]; then
  [ "$PARTIAL" = 1 ] || die "$BIN has no CUDA backend (configure with -DTOKENMILL_CUDA=ON)"
  say "NOTE: $BIN has no CUDA backend: staging the CPU parts only (dry run)"
fi
# the GPU test programs: built by tests/gpu/build.sh, rebuilt when stale
progs=()
if [ $cuda = 1 ]; then
  stale=0
  for p in $PROGRAMS; do
    [ "$BUILD/gpu/$p" -nt "$BUILD/libtmcore.a" ] || stale=1
  done
  if [ $stale = 1 ] && [ "$PARTIAL" != 1 ]; then bash "$SRC/tests/gpu/build.sh" "$BUILD"; fi
  for p in $PROGRAMS; do
    if [ -x "$BUILD/gpu/$p" ]; then progs+=("$BUILD/gpu/$p")
    elif [ "$PARTIAL" = 1 ]; then say "NOTE: $BUILD/gpu/$p missing: not staged"
    else die "$BUILD/gpu/$p missing after tests/gpu/build.sh"; fi
  done
fi

case $STAGE in /*) ;; *) STAGE=$PWD/$STAGE ;; esac
if [ "$STAGE" = / ] || [ "$STAGE" = "$SRC" ]; then die "refusing to stage into $STAGE"; fi
rm -rf "$STAGE"
mkdir -p "$STAGE/models" "$STAGE/golden"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# 1. binaries and their libraries
mkdir -p "$TMP/bin"
for b in "$BIN" "${progs[@]}"; do
  cp "$b" "$TMP/bin/"
  strip --strip-debug "$TMP/bin/$(basename "$b")" 2>/dev/null || true
done
PACK=${PACK_RUNTIME_LIBS:-$SRC/../shared/tools/pack-runtime-libs}
if [ -x "$PACK" ] || [ -f "$PACK" ]; then
  bash "$PACK" "$BIN" "${progs[@]}" "$TMP/lib" >/dev/null
else # the same rule as pack-runtime-libs, for a checkout without ../shared/tools
  say "NOTE: $PACK not found: packing with the same rule inline"
  skip='^(linux-vdso|ld-linux|libc\.|libm\.|libpthread|libdl\.|librt\.|libstdc\+\+|libgcc_s|libcuda\.|libcudart|libcublas|libcufft|libcurand|libcusparse|libcusolver|libnccl|libnvidia|libnvrtc|libnvJitLink|libcudnn)'
  mkdir -p "$TMP/lib"
  for b in "$BIN" "${progs[@]}"; do
    ldd "$b" | awk '/=> \//{print $1, $3}' | while read -r name path; do
      echo "$name" | grep -qE "$skip" && continue
      cp -L -n "$path" "$TMP/lib/$name" 2>/dev/null || true
    done
  done
fi
say "compressing binaries and libraries (xz -$LEVEL, all cores)"
XZ_OPT="-$LEVEL -T0" tar -cJf "$STAGE/bin.tar.xz" -C "$TMP" bin
XZ_OPT="-$LEVEL -T0" tar -cJf "$STAGE/libs.tar.xz" -C "$TMP" lib

# 2. models, visit scripts
for m in $MODELS; do
  [ -d "$TD/models/$m" ] || die "$TD/models/$m missing"
  cp -r "$TD/models/$m" "$STAGE/models/"
done
cp "$SRC/tests/gpu/visit.sh" "$SRC/tests/gpu/visit_golden.py" "$STAGE/"

# 3. the golden jobs and their CPU results (the reference the device compares to)
for m in $GOLDEN; do
  python3 "$SRC/tests/gpu/visit_golden.py" jobs "$TD/models/$m/golden.jsonl" > "$STAGE/golden/$m.jsonl"
  db=$TMP/$m.db
  job=$("$BIN" submit "$STAGE/golden/$m.jsonl" --db "$db")
  "$BIN" run --model "$TD/models/$m" --device cpu --db "$db" --quiet --max-batch-tokens 256 ||
    die "run --device cpu on $m failed"
  "$BIN" results "$job" --db "$db" -o "$STAGE/golden/$m-cpu.out"
  verdict=$(python3 "$SRC/tests/gpu/visit_golden.py" compare "$TD/models/$m/golden.jsonl" \
            "$STAGE/golden/$m-cpu.out" "$STAGE/golden/$m-cpu.out")
  say "cpu $m: $verdict"
  [ "${verdict%% *}" = ok ] || die "the CPU run of $m does not match its reference"
done

# 4. manifest and the carry size check
kib=$(du -sk "$STAGE" | awk '{print $1}')
tree_kib=$(cd "$SRC" && git ls-files -z 2>/dev/null | xargs -0 du -ck 2>/dev/null | tail -1 | awk '{print $1}')
{
  echo "commit $(cd "$SRC" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$SRC" && git diff --quiet HEAD 2>/dev/null || echo '+dirty')"
  echo "staged $(date -u +%Y-%m-%dT%H:%M:%SZ) from $BUILD (xz -$LEVEL)"
  "$BIN" --version | tr '\n' ' ' | sed 's/ $/\n/'
  echo "cuda $cuda"
  echo "programs ${progs[*]##*/}"
  echo "size_kib $kib"
  (cd "$STAGE" && find . -type f -printf '%s %p\n' | sort -k2)
} > "$STAGE/MANIFEST"
mib=$(( (kib + 1023) / 1024 ))
say "$STAGE: ${mib} MiB (bin.tar.xz $(du -k "$STAGE/bin.tar.xz" | cut -f1) KiB, libs.tar.xz $(du -k "$STAGE/libs.tar.xz" | cut -f1) KiB, models $(du -sk "$STAGE/models" | cut -f1) KiB); tracked tree ${tree_kib:-?} KiB"
[ "$kib" -lt $((LIMIT_MIB * 1024)) ] || die "stage is ${mib} MiB: over the ${LIMIT_MIB} MiB budget (the device tool carries 64 MiB in all)"
[ -z "$tree_kib" ] || [ $((kib + tree_kib)) -lt $((64 * 1024)) ] ||
  die "stage + tracked tree = $(( (kib + tree_kib) / 1024 )) MiB: over the device tool's 64 MiB"
say "ok: under ${LIMIT_MIB} MiB; run on the GPU machine from the repo root: bash tests/gpu/visit.sh (carry gpu-stage)"
