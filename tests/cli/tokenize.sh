#!/usr/bin/env bash
# tokenize.sh — `tokenmill tokenize` end to end against the golden data:
# for each tokenizer family, every golden_chat conversation must come back
# with exactly the golden prompt text and ids, every golden_encode text with
# the golden ids; bad lines give {"error": "line N: ..."} without stopping
# the stream, and exit 65. Skips (77) without test data or python3.
set -u
TD="${TOKENMILL_TESTDATA:-}"
BIN="${TOKENMILL_BIN:?TOKENMILL_BIN not set}"
if [ -z "$TD" ] || [ ! -f "$TD/tokenizers/golden_chat.jsonl" ]; then
    echo "skipped: no test data (TOKENMILL_TESTDATA='$TD')"; exit 77
fi
command -v python3 >/dev/null || { echo "skipped: python3 not found"; exit 77; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# usage
"$BIN" tokenize --help | grep -q -- "--chat-template" || fail "--help"
"$BIN" tokenize </dev/null >/dev/null 2>&1; [ $? -eq 64 ] || fail "no --tokenizer/--model must be 64"
"$BIN" tokenize --tokenizer "$TD/tokenizers/qwen3" --chat-template nope </dev/null >/dev/null 2>&1
[ $? -eq 64 ] || fail "unknown --chat-template must be 64"
"$BIN" tokenize --tokenizer "$WORK/missing" </dev/null >/dev/null 2>&1
rc=$?; [ $rc -ne 0 ] && [ $rc -ne 64 ] || fail "missing tokenizer dir: rc $rc"

for fam in llama3 qwen3 deepseek_v3 gemma3 mistral; do
    python3 - "$TD/tokenizers" "$fam" "$WORK/$fam.in" "$WORK/$fam.want" <<'PY' || fail "$fam: preparing input"
import json, sys
td, fam, inp, want = sys.argv[1:]
with open(inp, "w") as fi, open(want, "w") as fw:
    for name in ("golden_chat.jsonl", "golden_encode.jsonl"):
        for line in open(f"{td}/{name}", encoding="utf-8"):
            g = json.loads(line)
            if g["tokenizer"] != fam:
                continue
            if g["kind"] == "chat":
                fi.write(json.dumps({"messages": g["messages"], "add_generation_prompt": g["add_generation_prompt"]}) + "\n")
                fw.write(json.dumps({"text": g["text"], "ids": g["ids"]}) + "\n")
            else:
                fi.write(json.dumps({"text": g["text"]}) + "\n")
                fw.write(json.dumps({"ids": g["ids"]}) + "\n")
PY
    "$BIN" tokenize --tokenizer "$TD/tokenizers/$fam" <"$WORK/$fam.in" >"$WORK/$fam.out" 2>"$WORK/$fam.err"
    rc=$?
    [ $rc -eq 0 ] || { head -c 2000 "$WORK/$fam.out" "$WORK/$fam.err"; fail "$fam: exit $rc"; }
    python3 - "$WORK/$fam.want" "$WORK/$fam.out" "$fam" <<'PY' || fail "$fam: output differs from golden"
import json, sys
want = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
got = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
if len(want) != len(got):
    sys.exit(f"{sys.argv[3]}: {len(got)} output lines, want {len(want)}")
bad = [i for i, (w, g) in enumerate(zip(want, got)) if w != g]
for i in bad[:3]:
    print(f"line {i+1}:\n got  {json.dumps(got[i], ensure_ascii=False)[:400]}\n want {json.dumps(want[i], ensure_ascii=False)[:400]}")
if bad:
    sys.exit(f"{sys.argv[3]}: {len(bad)} of {len(want)} lines differ")
print(f"{sys.argv[3]}: {len(want)} lines match")
PY
done

# --model DIR and --chat-template: mistral has no chat_template of its own
printf '%s\n' '{"messages":[{"role":"user","content":"Hi"}]}' >"$WORK/m.in"
"$BIN" tokenize --model "$TD/tokenizers/mistral" --chat-template mistral <"$WORK/m.in" >"$WORK/m.out" \
    || fail "mistral with --chat-template"
python3 - "$WORK/m.out" <<'PY' || fail "mistral [INST] prompt"
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["text"] == "<s> [INST] Hi [/INST]", o
assert o["ids"][0] == 1 and len(o["ids"]) > 3, o
PY

# bad lines: each gives an error object, the good lines around them still work, exit 65
cat >"$WORK/bad.in" <<'JSONL'
{"text": "hello"}
this is not json
{"prompt": "neither text nor messages"}
{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}

{"messages": [{"role": "user", "content": "ok"}], "add_generation_prompt": "yes"}
{"messages": []}
{"text": 5}
{"text": "bye"}
JSONL
"$BIN" tokenize --tokenizer "$TD/tokenizers/gemma3" <"$WORK/bad.in" >"$WORK/bad.out"
rc=$?
[ $rc -eq 65 ] || fail "bad lines: exit $rc, want 65"
python3 - "$WORK/bad.out" <<'PY' || fail "bad lines output"
import json, sys
out = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
assert len(out) == 8, out                      # the blank line is skipped
assert "ids" in out[0] and len(out[0]["ids"]) > 0, out[0]
expect = [(1, "line 2: not JSON"), (2, "line 3: expected a \"text\" or a \"messages\" field"),
          (3, "line 4: "),  # the model's own template raises it (checked below)
          (4, "line 6: add_generation_prompt"), (5, "line 7: messages: the conversation is empty"),
          (6, "line 8: text: must be a string")]
for i, prefix in expect:
    assert list(out[i]) == ["error"] and out[i]["error"].startswith(prefix), (i, out[i])
assert "roles must alternate" in out[3]["error"].lower(), out[3]
assert "ids" in out[7], out[7]
PY
# a chat line for a tokenizer without chat_template and no --chat-template
"$BIN" tokenize --tokenizer "$TD/tokenizers/mistral" <"$WORK/m.in" >"$WORK/nm.out"
rc=$?
[ $rc -eq 65 ] || fail "mistral without --chat-template: exit $rc"
grep -q -- '--chat-template' "$WORK/nm.out" || fail "mistral without template: message should name --chat-template"
echo "tokenize: all checks passed"
