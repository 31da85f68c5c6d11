#!/usr/bin/env bash
# device-check.sh [BUILD_DIR] — every GPU check of a change in one call, on
# the GPU machine, building nothing: (1) tests/gpu/run.sh (kernel and backend
# tests vs the CPU reference — the fast tensor-core attention / GPU sampling
# kernels included, and the backend golden checks again with
# TOKENMILL_CUDA_FAST=1 —, compute-sanitizer, kernel benches);
# (2) end to end: the golden llama/qwen jobs through `tokenmill run --device
# cuda` (default attention, then --cuda-fast) and `--device cpu`,
# greedy tokens compared up to the reference's small-margin steps; (3) the
# demo with --device auto; (4) bench engine on cuda vs cpu, and the
# synthetic llama3-8b on cuda with and without --cuda-fast.
# Prints one table at the end. Needs BUILD_DIR (a -DTOKENMILL_CUDA=ON build
# with tests/gpu/build.sh run), BUILD_DIR/gpu-libs
# (../shared/tools/pack-runtime-libs) and ./testdata-gpu (copied models).
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build-cuda}" && pwd)
export LD_LIBRARY_PATH=$BUILD/gpu-libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export TOKENMILL_TESTDATA=${TOKENMILL_TESTDATA:-$SRC/testdata-gpu}
BIN=$BUILD/tokenmill
T=$(mktemp -d)
declare -a ROWS
row() { ROWS+=("$(printf '%-34s %-6s %s' "$1" "$2" "$3")"); }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$BIN" --version

# 1. unit-level GPU tests
bash "$SRC/tests/gpu/run.sh" "$BUILD"; rc=$?
row "tests/gpu/run.sh" "$([ $rc = 0 ] && echo ok || echo FAIL)" "exit $rc"

# 2. end to end: same job, cuda vs cpu, vs the float64 greedy reference
for m in llama-mini llama31-mini qwen2-mini qwen3-mini; do
  python3 - "$TOKENMILL_TESTDATA/models/$m/golden.jsonl" > "$T/$m.jsonl" <<'PY'
import json, sys
for i, line in enumerate(open(sys.argv[1])):
    g = json.loads(line)
    for rep in range(8):  # 8 copies each: real batches, prefix sharing
        print(json.dumps({"custom_id": f"g{i}-{rep}", "method": "POST", "url": "/v1/completions",
            "body": {"prompt": g["prompt_ids"], "max_tokens": 12, "temperature": 0,
                     "ignore_eos": True, "return_token_ids": True}}))
PY
  for dev in cuda cuda-fast cpu; do
    db="$T/$m-$dev.db"
    job=$("$BIN" submit "$T/$m.jsonl" --db "$db")
    flag=(); [ "$dev" = cuda-fast ] && flag=(--cuda-fast)
    "$BIN" run --model "$TOKENMILL_TESTDATA/models/$m" --device "${dev%-fast}" --db "$db" "${flag[@]}" \
      --quiet --max-batch-tokens 256
    echo "run $m $dev exit $?"
    "$BIN" results "$job" --db "$db" -o "$T/$m-$dev.out"
  done
  for dev in cuda cuda-fast; do
  res=$(python3 - "$TOKENMILL_TESTDATA/models/$m/golden.jsonl" "$T/$m-$dev.out" "$T/$m-cpu.out" <<'PY'
import json, sys
gold = [json.loads(l) for l in open(sys.argv[1])]
def load(p):
    return {json.loads(l)["custom_id"]: json.loads(l)["response"]["body"]["choices"][0]["token_ids"] for l in open(p)}
cu, cp = load(sys.argv[2]), load(sys.argv[3])
agree = total = ref_ok = ref_n = low = 0
all_same = sum(cu.get(cid) == ids for cid, ids in cp.items())
for cid, ids in cp.items():
    g = gold[int(cid[1:].split("-")[0])]
    c = cu.get(cid)
    for k in range(12):
        if g["greedy_margins"][k] < 2e-2 * max(abs(x) for x in g["last_logits"]):  # under the bf16 error bound
            low += 1; break
        ref_n += 1; ref_ok += c is not None and c[k] == g["greedy_ids"][k]
        total += 1; agree += c is not None and ids[k] == c[k]
print(f"{'ok' if ref_ok == ref_n and len(cu) == len(cp) else 'FAIL'} cuda=ref {ref_ok}/{ref_n} tokens above the bf16 margin bound ({low} seqs cut there); all 12 tokens cuda==cpu in {all_same}/{len(cp)} seqs")
PY
)
  row "run --device $dev: $m" "${res%% *}" "${res#* }"
  done
done

# 3. the demo, device auto (must pick cuda)
(cd "$T" && "$BIN" demo --dir demo > demo.log 2>&1); rc=$?
dev=$(grep -o 'device [a-z]*' "$T/demo.log" | head -1)
row "demo (--device auto)" "$([ $rc = 0 ] && [ "$dev" = "device cuda" ] && echo ok || echo FAIL)" "exit $rc, $dev, $(wc -l < "$T/demo/output.jsonl" 2>/dev/null) results"

# 4. engine bench, cuda vs cpu (tiny models: pipeline overhead, not the GPU's speed)
for dev in cuda cpu; do
  out=$("$BIN" bench engine --model "$TOKENMILL_TESTDATA/models/mistral-tok-mini" --device "$dev" --requests 64 \
        --input-len 128 --output-len 64 --max-seqs 64 2>&1 | grep -E '^batched \(engine\)')
  row "bench engine mistral-tok-mini $dev" "info" "$(echo "$out" | awk '{print $4" req/s, "$5" in tok/s, "$6" out tok/s"}')"
done

# 5. full-size synthetic llama3-8b on the GPU, default vs --cuda-fast
#    (prefill-heavy 2048/128 and decode-heavy 128/512)
for io in "2048 128 64" "128 512 256"; do
  set -- $io
  for fast in 0 1; do
    flag=(); [ "$fast" = 1 ] && flag=(--cuda-fast)
    out=$("$BIN" bench engine --synthetic llama3-8b --device cuda --only-batched "${flag[@]}" \
          --input-len "$1" --output-len "$2" --requests "$3" 2>&1)
    echo "$out" | tail -25
    line=$(echo "$out" | grep -E '^batched \(engine\)' | head -1)
    row "llama3-8b $1/$2 x$3 fast=$fast" "info" "$(echo "$line" | awk '{print $4" req/s, "$5" in tok/s, "$6" out tok/s"}')"
  done
done

echo
echo "==== device-check summary"
printf '%s\n' "${ROWS[@]}"
rm -rf "$T"
