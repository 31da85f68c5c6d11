#!/usr/bin/env bash
# supervisor_scale.sh — aggregate completions/s of `tokenmill run --workers N`
# on one queue (issue 17), CPU workers, a tiny model (1 layer, hidden 16,
# random bf16 weights, the demo's byte-level tokenizer), short completions.
#
# usage: tests/bench/supervisor_scale.sh BIN [REQUESTS] [MAX_TOKENS] [WORKERS...]
#   (defaults: 4000 requests, max_tokens 4, workers 1 2 4 8)
# Prints one line per worker count: requests, seconds, completions/s, and
# how many 'database is locked' / busy lines the workers printed.
set -euo pipefail
BIN=$(realpath "${1:?usage: $0 BIN [REQUESTS] [MAX_TOKENS] [WORKERS...]}")
REQ=${2:-4000}; MAXTOK=${3:-4}; shift $(( $# < 3 ? $# : 3 ))
WORKERS=${*:-1 2 4 8}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
"$BIN" demo --dir "$T/demo" >/dev/null 2>&1
mkdir -p "$T/tiny"
cp "$T/demo/model/tokenizer.json" "$T/demo/model/tokenizer_config.json" "$T/tiny/"
python3 - "$T/tiny" "$REQ" "$MAXTOK" "$T/job.jsonl" <<'PY'
import json, os, random, struct, sys
out, n, maxtok, job = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
V, H, I, nh, nkv, L = 259, 16, 32, 2, 1, 1
hd = H // nh
cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V, "hidden_size": H,
       "intermediate_size": I, "num_hidden_layers": L, "num_attention_heads": nh, "num_key_value_heads": nkv,
       "max_position_embeddings": 1024, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
       "bos_token_id": 256, "eos_token_id": 257, "torch_dtype": "bfloat16", "hidden_act": "silu"}
ts = [("model.embed_tokens.weight", [V, H]), ("model.norm.weight", [H]), ("lm_head.weight", [V, H])]
for l in range(L):
    p = "model.layers.%d." % l
    ts += [(p + "input_layernorm.weight", [H]), (p + "post_attention_layernorm.weight", [H]),
           (p + "self_attn.q_proj.weight", [nh * hd, H]), (p + "self_attn.k_proj.weight", [nkv * hd, H]),
           (p + "self_attn.v_proj.weight", [nkv * hd, H]), (p + "self_attn.o_proj.weight", [H, nh * hd]),
           (p + "mlp.gate_proj.weight", [I, H]), (p + "mlp.up_proj.weight", [I, H]), (p + "mlp.down_proj.weight", [H, I])]
rng = random.Random(5)
bf16 = lambda x: struct.unpack("<I", struct.pack("<f", x))[0] >> 16
header, off, blobs = {}, 0, []
for name, shape in ts:
    k = 1
    for d in shape: k *= d
    vals = [1.0] * k if len(shape) == 1 else [rng.gauss(0, 0.3) for _ in range(k)]
    blobs.append(struct.pack("<%dH" % k, *[bf16(v) for v in vals]))
    header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + 2 * k]}
    off += 2 * k
hb = json.dumps(header).encode(); hb += b" " * ((8 - len(hb) % 8) % 8)
json.dump(cfg, open(os.path.join(out, "config.json"), "w"))
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))
with open(job, "w") as f:
    for i in range(n):
        body = {"model": "tiny", "prompt": "request %d of the scale test" % i, "max_tokens": maxtok,
                "temperature": 0, "ignore_eos": True}
        f.write(json.dumps({"custom_id": "r%d" % i, "method": "POST", "url": "/v1/completions", "body": body}) + "\n")
PY
"$BIN" submit "$T/job.jsonl" --db "$T/base.db" >/dev/null
for w in $WORKERS; do
  rm -f "$T/q.db"*; sqlite3 "$T/base.db" ".backup '$T/q.db'"
  t0=$(date +%s.%N)
  set +e; "$BIN" run --model "$T/tiny" --db "$T/q.db" --workers "$w" --threads 1 2>"$T/log"; rc=$?; set -e
  t1=$(date +%s.%N)
  done_n=$(sqlite3 "$T/q.db" "SELECT COUNT(*) FROM requests WHERE state='done'")
  locked=$(grep -ci 'database is locked\|queue busy' "$T/log" || true)
  grep -i "database is locked\|queue busy" "$T/log" | sed "s/^/    /" | head -5 || true
  awk -v w="$w" -v n="$done_n" -v a="$t0" -v b="$t1" -v rc="$rc" -v l="$locked" \
    'BEGIN { printf "workers %d: %d done in %.2f s = %.0f completions/s (exit %d, locked/busy lines %d)\n", w, n, b - a, n / (b - a), rc, l }'
done
