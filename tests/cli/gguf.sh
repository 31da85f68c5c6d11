#!/usr/bin/env bash
# gguf.sh — GGUF model files end to end. tests/gen/hf_to_gguf.py writes every
# test-data model and tokenizer as GGUF with llama.cpp's conventions (tensor
# names, reversed shapes, llama's q/k row interleave, rope_freqs for Llama
# 3.1, tokenizer.ggml.* with SentencePiece scores); then:
#  1. bf16 GGUF of each of the five golden models: last-position logits from
#     `generate --model X.gguf` identical to the Hugging Face directory's;
#  2. Q8_0 GGUF: within 0.1 relative of the float64 reference (quantisation
#     error of random weights), greedy first token equal where the margin is
#     wide;
#  3. the five tokenizers (byte-level BPE llama3/qwen3/deepseek_v3,
#     SentencePiece mistral/gemma3) as tokenizer-only GGUF files: `tokenize`
#     ids equal the Hugging Face golden ids for every golden string and chat
#     rendering (the chat template read from the GGUF);
#  4. `run` on a GGUF with a tokenizer: chat + text requests complete;
#  5. hostile files: refused with the file and the reason, exit 65.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
SRC=${TOKENMILL_SRC:-.}
TD=${TOKENMILL_TESTDATA:-../shared/testdata}
if [ ! -f "$TD/models/llama-mini/golden.jsonl" ]; then
  echo "SKIP: test data not found in $TD (set TOKENMILL_TESTDATA)"; exit 77
fi
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
CONV="$SRC/tests/gen/hf_to_gguf.py"

for m in llama-mini llama31-mini qwen2-mini qwen3-mini mistral-tok-mini; do
  python3 "$CONV" "$TD/models/$m" "$T/$m.gguf"
  python3 "$CONV" "$TD/models/$m" "$T/$m.q8.gguf" --type q8_0
done
for t in llama3 qwen3 deepseek_v3 mistral gemma3; do
  python3 "$CONV" "$TD/tokenizers/$t" "$T/tok-$t.gguf" --tokenizer-only
done

python3 - "$BIN" "$TD" "$T" <<'PY'
import json, subprocess, sys
tm, td, tmp = sys.argv[1:4]
def logits(model, ids):
    o = subprocess.run([tm, 'generate', '--model', model, '--ids', ','.join(map(str, ids)), '-n', '1', '--json',
                        '--logits', 'last', '--device', 'cpu', '--threads', '1'], capture_output=True, text=True)
    if o.returncode: sys.exit('%s: exit %d: %s' % (model, o.returncode, o.stderr))
    return json.loads(o.stdout)['last_logits']
fails = 0
for m in ['llama-mini', 'llama31-mini', 'qwen2-mini', 'qwen3-mini', 'mistral-tok-mini']:
    worst = 0.0
    for n, line in enumerate(open(f'{td}/models/{m}/golden.jsonl')):
        if n >= 2: break
        g = json.loads(line)
        a, b, q = logits(f'{td}/models/{m}', g['prompt_ids']), logits(f'{tmp}/{m}.gguf', g['prompt_ids']), \
            logits(f'{tmp}/{m}.q8.gguf', g['prompt_ids'])
        if a != b:
            print(f'FAIL {m} line {n}: GGUF logits differ from the HF directory'); fails += 1
        ref = g.get('last_logits') or a
        mx = max(abs(x) for x in ref)
        worst = max(worst, max(abs(x - y) for x, y in zip(q, ref)) / mx)
        top = sorted(range(len(ref)), key=lambda i: -ref[i])[:2]
        if ref[top[0]] - ref[top[1]] > 0.2 * mx and max(range(len(q)), key=lambda i: q[i]) != top[0]:
            print(f'FAIL {m} line {n}: Q8_0 greedy token differs with a wide margin'); fails += 1
    if worst > 0.1:
        print(f'FAIL {m}: Q8_0 logits {worst:.3g} relative from the reference'); fails += 1
    print(f'ok {m}: bf16 GGUF identical, Q8_0 worst {worst:.2e}')

enc, chat = {}, {}
for l in open(f'{td}/tokenizers/golden_encode.jsonl'):
    g = json.loads(l); enc.setdefault(g['tokenizer'].split('/')[-1], []).append(g)
for l in open(f'{td}/tokenizers/golden_chat.jsonl'):
    g = json.loads(l); chat.setdefault(g['tokenizer'].split('/')[-1], []).append(g)
for name in ['llama3', 'qwen3', 'deepseek_v3', 'mistral', 'gemma3']:
    gs, cs = enc.get(name, []), chat.get(name, [])
    inp = ''.join(json.dumps({'text': g['text']}) + '\n' for g in gs)
    inp += ''.join(json.dumps({'messages': g['messages'], 'add_generation_prompt': g['add_generation_prompt']}) + '\n'
                   for g in cs)
    o = subprocess.run([tm, 'tokenize', '--model', f'{tmp}/tok-{name}.gguf'], input=inp, capture_output=True,
                       text=True)
    lines = o.stdout.splitlines()
    if o.returncode or len(lines) != len(gs) + len(cs):
        print(f'FAIL {name}: tokenize exit {o.returncode}: {o.stderr[:300]}'); fails += 1; continue
    bad = [g['text'][:40] for g, l in zip(gs + cs, lines) if json.loads(l).get('ids') != g['ids']]
    if bad:
        print(f'FAIL {name}: {len(bad)} of {len(lines)} differ, e.g. {bad[:3]}'); fails += 1
    else:
        print(f'ok {name}: {len(gs)} strings and {len(cs)} chats equal the golden ids')
sys.exit(1 if fails else 0)
PY

# 4. run: a GGUF that carries the mistral tokenizer serves text requests
python3 "$CONV" "$TD/models/mistral-tok-mini" "$T/mt.gguf"
cat > "$T/job.jsonl" <<'J'
{"custom_id":"a","method":"POST","url":"/v1/completions","body":{"model":"m","prompt":"The quick brown fox","max_tokens":8,"temperature":0}}
{"custom_id":"b","method":"POST","url":"/v1/completions","body":{"model":"m","prompt":[1,415,2936],"max_tokens":8,"temperature":0}}
J
J1=$("$BIN" submit "$T/job.jsonl" --db "$T/q.db")
"$BIN" run --db "$T/q.db" --model "$T/mt.gguf" --served-model-name m --device cpu >/dev/null 2>"$T/run.err" || { cat "$T/run.err"; exit 1; }
"$BIN" results "$J1" --db "$T/q.db" -o "$T/out.jsonl"
J2=$("$BIN" submit "$T/job.jsonl" --db "$T/q2.db")
"$BIN" run --db "$T/q2.db" --model "$TD/models/mistral-tok-mini" --served-model-name m --device cpu >/dev/null 2>&1
"$BIN" results "$J2" --db "$T/q2.db" -o "$T/out2.jsonl"
python3 - "$T/out.jsonl" "$T/out2.jsonl" <<'PY'
import json, sys
def texts(p):
    return {(l := json.loads(x))['custom_id']: l['response']['body']['choices'][0]['text'] for x in open(p)}
a, b = texts(sys.argv[1]), texts(sys.argv[2])
assert len(a) == 2 and a == b, (a, b)
print('ok run: GGUF completions equal the HF directory\'s', a)
PY

# 5. hostile files
printf 'GGUF\001\000\000\000' > "$T/v1.gguf"
set +e
"$BIN" generate --model "$T/v1.gguf" --ids 1 >/dev/null 2>"$T/e1"; rc1=$?
head -c 200 "$T/llama-mini.gguf" > "$T/trunc.gguf"
"$BIN" generate --model "$T/trunc.gguf" --ids 1 >/dev/null 2>"$T/e2"; rc2=$?
set -e
[ "$rc1" = 65 ] && grep -q "v1.gguf: GGUF version 1 is not supported" "$T/e1" || { echo "FAIL v1: $rc1 $(cat "$T/e1")"; exit 1; }
[ "$rc2" = 65 ] && grep -q "trunc.gguf" "$T/e2" || { echo "FAIL truncated: $rc2 $(cat "$T/e2")"; exit 1; }
echo "ok hostile files refused: $(cat "$T/e2")"
