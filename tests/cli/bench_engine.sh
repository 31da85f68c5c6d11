#!/usr/bin/env bash
# bench_engine.sh — `tokenmill bench engine` host paths on the CPU: usage
# errors (64), an unknown synthetic model (65), a synthetic model refused by
# the CPU backend (69, with the reason), and a tiny real model through the
# batched pass only and through both passes: the exact command comes first,
# the token counts behind the rates add up, the step table and the roofline
# line (floor/actual in (0, 1]) are printed, and n/a without a bandwidth.
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

expect_rc 64 "$BIN" bench engine --device cpu
grep -q "one of --model DIR or --synthetic NAME" "$T/err" || fail "no --model/--synthetic message"
expect_rc 64 "$BIN" bench engine --model x --synthetic llama3-8b --device cpu
expect_rc 64 "$BIN" bench engine --synthetic llama3-8b --device cpu --gpu-memory-utilization 1.5
expect_rc 64 "$BIN" bench engine --synthetic llama3-8b --device cpu --kv-memory lots
expect_rc 65 "$BIN" bench engine --synthetic llama3-70b --device cpu
grep -q "llama3-8b, qwen2.5-7b, deepseek-llm-7b" "$T/err" || fail "unknown synthetic name does not list the known ones"
expect_rc 69 "$BIN" bench engine --synthetic llama3-8b --device cpu --only-batched --requests 4
grep -q "synthetic models run on the CUDA backend only" "$T/err" || fail "cpu refusal message missing"
[ "$(head -1 "$T/out")" = "tokenmill bench engine --synthetic llama3-8b --device cpu --only-batched --requests 4" ] \
  || fail "first line is not the exact command: $(head -1 "$T/out")"
expect_rc 64 "$BIN" bench engine --synthetic qwen2.5-7b --device cpu --kv-memory 1K

if [ ! -f "$TD/models/llama-mini/config.json" ]; then
  echo "SKIP (rest): test data not found in $TD (set TOKENMILL_TESTDATA)"; exit 77
fi
command -v python3 >/dev/null || { echo "SKIP (rest): python3 not found"; exit 77; }
M="$TD/models/llama-mini"

expect_rc 0 "$BIN" bench engine --model "$M" --device cpu --threads 1 --requests 6 --input-len 20 --output-len 5 \
  --max-seqs 3 --only-batched --hbm-bandwidth 1e11
cp "$T/out" "$T/batched"
[ "$(head -1 "$T/batched")" = "tokenmill bench engine --model $M --device cpu --threads 1 --requests 6 --input-len 20 --output-len 5 --max-seqs 3 --only-batched --hbm-bandwidth 1e11" ] \
  || fail "first line is not the exact command"
grep -q "^one at a time" "$T/batched" && fail "--only-batched ran the one-at-a-time pass"
M="$M" python3 - "$T/batched" <<'PY' || exit 1
import re, sys
out = open(sys.argv[1]).read()
row = [l for l in out.splitlines() if l.startswith("batched (engine)")]
assert row, out
f = row[0].split()
secs, rps, itok, otok, steps, ttok = float(f[2]), float(f[3]), float(f[4]), float(f[5]), int(f[6]), float(f[7])
# the rates are counts over seconds: 6 x 20 prompt tokens, 6 x 5 output tokens
assert abs(itok * secs - 120) <= 0.05 * 120 + 1, (itok, secs)
assert abs(otok * secs - 30) <= 0.05 * 30 + 1, (otok, secs)
assert abs(rps * secs - 6) < 0.3, (rps, secs)
assert abs(ttok - itok - otok) <= 2, (ttok, itok, otok)
# 3 sequences at a time, 5 tokens each: at least 2 waves of 5 steps
assert steps >= 10, steps
pre = re.search(r"^with prefill\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(-?[\d.]+)$", out, re.M)
dec = re.search(r"^pure decode\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(-?[\d.]+)$", out, re.M)
assert pre and dec, out
assert int(pre.group(1)) + int(dec.group(1)) == steps, (pre.group(1), dec.group(1), steps)
assert int(pre.group(1)) >= 2 and int(dec.group(1)) >= 1
for m in (pre, dec):
    mean, fwd = float(m.group(2)), float(m.group(3))
    assert 0 < fwd <= mean + 1e-3, (mean, fwd)
roof = re.search(r"^roofline: floor (\S+) s .* actual (\S+) s; floor/actual (\S+)$", out, re.M)
assert roof, out
assert 0 < float(roof.group(3)) <= 1, roof.group(3)
assert re.search(r"^decode steps: weights\+KV \S+ B/s achieved .* of 1e\+11 B/s \(--hbm-bandwidth\)$", out, re.M), out
# the totals follow from llama-mini's config: 6 requests, 20 prompt + 5 generated tokens
import json, os
c = json.load(open(os.path.join(os.environ["M"], "config.json")))
H, I, V, L = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["num_hidden_layers"]
nh, nkv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
hd = c.get("head_dim") or H // nh
Q, KV = nh * hd, nkv * hd
R, In, On = 6, 20, 5
layer = L * (H * (Q + 2 * KV) + Q * H + 3 * H * I)
ctx_tok = R * (In * (In + 1) // 2 + sum(In + k for k in range(1, On)))
flops = 2 * layer * (R * In + R * (On - 1)) + 2 * V * H * R * On + 4 * L * nh * hd * ctx_tok
tot = re.search(r"^roofline totals: (\S+) bytes, (\S+) flops \(weights (\S+) B per step, KV (\S+) B per token\)$", out, re.M)
assert tot, out
assert abs(float(tot.group(2)) - flops) <= 1e-6 * flops, (tot.group(2), flops)
kvb = 2 * L * KV * 2
assert float(tot.group(4)) == kvb, (tot.group(4), kvb)
# bytes: weights once per step + KV written once per token + each sequence's KV read once per step
wb = float(tot.group(3))
assert float(tot.group(1)) > steps * wb + kvb * R * (In + On - 1), tot.group(1)
print("ok: batched pass, rates, step table, roofline and its totals")
PY
gen1=$(grep '^generated: ' "$T/batched")
expect_rc 0 "$BIN" bench engine --model "$M" --device cpu --threads 1 --requests 6 --input-len 20 --output-len 5 \
  --max-seqs 1 --only-batched
# the CPU backend is batch invariant: same tokens whatever the batch, so the same checksum
[ "$(grep '^generated: ' "$T/out")" = "$gen1" ] || fail "checksum differs with --max-seqs 1: $gen1 vs $(grep '^generated: ' "$T/out")"

expect_rc 0 "$BIN" bench engine --model "$M" --device cpu --threads 1 --requests 3 --input-len 8 --output-len 3 --max-seqs 3
grep -q "^one at a time" "$T/out" || fail "no one-at-a-time row"
grep -q "^speed-up of batching: " "$T/out" || fail "no speed-up line"
grep -q "^roofline: n/a" "$T/out" || fail "roofline without a bandwidth should be n/a"
echo "ok"
