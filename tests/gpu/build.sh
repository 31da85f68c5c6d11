#!/usr/bin/env bash
# build.sh BUILD_DIR — compiles the GPU test programs (tests/gpu/*.c with a
# main) against BUILD_DIR/libtmcore.a (a -DTOKENMILL_CUDA=ON build) into
# BUILD_DIR/gpu/. Needs cc and the CUDA toolkit headers/libs here; the GPU
# machine then only runs them (tests/gpu/run.sh BUILD_DIR).
set -euo pipefail
BUILD=${1:?usage: tests/gpu/build.sh BUILD_DIR}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CUDA=${CUDA_HOME:-/usr/local/cuda}
CC=${CC:-cc}
[ -f "$BUILD/libtmcore.a" ] || { echo "build.sh: $BUILD/libtmcore.a not found (build tmcore first)"; exit 1; }
nm "$BUILD/libtmcore.a" 2>/dev/null | grep ' T tm_k_attention' >/dev/null ||
  { echo "build.sh: $BUILD/libtmcore.a has no CUDA kernels (configure with -DTOKENMILL_CUDA=ON)"; exit 1; }
mkdir -p "$BUILD/gpu"
LIBS="$(pkg-config --libs sqlite3 libzstd libarchive jansson libpcre2-8 libutf8proc openblas)"
CFLAGS="-std=c11 -O2 -g -Wall -Wextra -Wno-unused-parameter -Werror -D_GNU_SOURCE -DTOKENMILL_HAVE_CUDA=1"
# a -DTOKENMILL_SANITIZE=ON library needs the sanitizer runtimes at link time
if nm "$BUILD/libtmcore.a" 2>/dev/null | grep '__asan_' >/dev/null; then
  CFLAGS="$CFLAGS -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
  echo "(ASan+UBSan build: run with ASAN_OPTIONS=protect_shadow_gap=0, run.sh sets it)"
fi
for t in test_cuda_kernels test_cuda_fast_kernels test_cuda_backend bench_cuda bench_cuda_fast; do
  [ -f "$SRC/tests/gpu/$t.c" ] || continue
  echo "cc $t"
  # shellcheck disable=SC2086
  $CC $CFLAGS -I"$SRC/src" -I"$SRC/kernels" -I"$SRC/tests/gpu" -I"$CUDA/include" \
    $(pkg-config --cflags openblas) \
    "$SRC/tests/gpu/$t.c" -o "$BUILD/gpu/$t" "$BUILD/libtmcore.a" $LIBS \
    -L"$CUDA/lib64" -Wl,-rpath,"$CUDA/lib64" -lcublasLt -lcublas -lcudart -lpthread -lm -lstdc++
done
echo "built into $BUILD/gpu"
