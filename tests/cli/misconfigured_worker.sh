#!/usr/bin/env bash
# misconfigured_worker.sh — a worker that cannot serve a request because of
# its own set-up never fails it (issue 19, item 5). A healthy queue of chat,
# text-prompt and token-id requests meets: (c) a model with a NaN weight:
# exit 69 at start, nothing claimed; (a) no tokenizer.json: token-id requests
# are served, the others stay queued (not failed, attempts not charged), exit
# 69 says not everything could be served; (b) no chat template: text prompts
# served, chat stays queued; then a healthy worker serves everything.
# `tokenmill retry` requeues failed requests (all, or by error code), refuses
# a cancelled job, and a rerun completes them.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
q() { sqlite3 "$T/q.db" "$1"; }
count() { q "SELECT count(*) FROM requests WHERE $1"; }

"$BIN" demo --dir "$T/demo" > "$T/demo.log" 2>&1 || { cat "$T/demo.log"; fail "demo"; }
M=$T/demo/model
cp -r "$M" "$T/notok"; rm "$T/notok/tokenizer.json"
cp -r "$M" "$T/notpl"
python3 - "$T/notpl/tokenizer_config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p)); del c["chat_template"]; json.dump(c, open(p, "w"))
PY
cp -r "$M" "$T/nan"
python3 - "$T/nan/model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
name = next(k for k in sorted(h) if k.endswith("mlp.down_proj.weight"))
off = 8 + n + h[name]["data_offsets"][0] + 2 * 37
b[off:off + 2] = struct.pack("<H", 0x7fc0)  # a bf16 NaN
open(p, "wb").write(b)
PY

for i in 1 2 3; do
  echo '{"custom_id":"chat-'$i'","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"hi '$i'"}],"max_tokens":4}}'
  echo '{"custom_id":"text-'$i'","method":"POST","url":"/v1/completions","body":{"prompt":"once '$i'","max_tokens":4}}'
  echo '{"custom_id":"ids-'$i'","method":"POST","url":"/v1/completions","body":{"prompt":[79,110,'$((99 + i))'],"max_tokens":4}}'
done > "$T/job.jsonl"
J=$("$BIN" submit "$T/job.jsonl" --db "$T/q.db" --mixed-endpoints | grep -o 'job_[0-9a-f]*' | head -n1)
[ -n "$J" ] || fail "submit printed no job id"
RUN=("$BIN" run --device cpu --until-empty --db "$T/q.db" --lease-seconds 30)

# (c) NaN weights: refused at load, nothing claimed
rc=0; "${RUN[@]}" --model "$T/nan" > "$T/c.log" 2>&1 || rc=$?
[ "$rc" = 69 ] || { cat "$T/c.log"; fail "NaN weight: exit $rc, want 69"; }
grep -q "NaN or Inf" "$T/c.log" || { cat "$T/c.log"; fail "NaN weight: the message does not say why"; }
[ "$(count "state='pending' AND attempts=0")" = 9 ] || fail "NaN weight: requests were claimed"
echo "ok: (c) NaN weight: exit 69, nothing claimed: $(tail -n1 "$T/c.log")"

# (a) no tokenizer: token-id requests served, chat and text left queued untouched
rc=0; "${RUN[@]}" --model "$T/notok" > "$T/a.log" 2>&1 || rc=$?
[ "$rc" = 69 ] || { cat "$T/a.log"; fail "no tokenizer: exit $rc, want 69"; }
[ "$(count "custom_id LIKE 'ids-%' AND state='done'")" = 3 ] || { cat "$T/a.log"; fail "no tokenizer: token-id requests not served"; }
[ "$(count "custom_id NOT LIKE 'ids-%' AND state='pending' AND attempts=0 AND error IS NULL")" = 6 ] || {
  q "SELECT custom_id, state, attempts, error FROM requests"; fail "no tokenizer: chat/text requests not left queued untouched"; }
[ "$(count "state='failed'")" = 0 ] || fail "no tokenizer: requests failed"
grep -q "no tokenizer" "$T/a.log" || { cat "$T/a.log"; fail "no tokenizer: not said"; }
[ "$(grep -c "left queued for a worker" "$T/a.log")" = 1 ] || { cat "$T/a.log"; fail "no tokenizer: not said exactly once"; }
echo "ok: (a) no tokenizer: 3 token-id done, 6 queued, exit 69: $(tail -n1 "$T/a.log")"

# the same worker again: nothing it can serve is left -> 69 at start, nothing claimed
rc=0; "${RUN[@]}" --model "$T/notok" > "$T/a2.log" 2>&1 || rc=$?
[ "$rc" = 69 ] || { cat "$T/a2.log"; fail "no tokenizer, only chat/text left: exit $rc, want 69"; }
grep -q "can serve none" "$T/a2.log" || { cat "$T/a2.log"; fail "no tokenizer, only chat/text left: not said"; }
[ "$(count "state='pending' AND attempts=0")" = 6 ] || fail "no tokenizer, only chat/text left: something claimed"
echo "ok: no tokenizer, nothing servable: exit 69 at start"

# (b) no chat template: text prompts served, chat left queued
rc=0; "${RUN[@]}" --model "$T/notpl" > "$T/b.log" 2>&1 || rc=$?
[ "$rc" = 69 ] || { cat "$T/b.log"; fail "no chat template: exit $rc, want 69"; }
[ "$(count "custom_id LIKE 'text-%' AND state='done'")" = 3 ] || { cat "$T/b.log"; fail "no chat template: text not served"; }
[ "$(count "custom_id LIKE 'chat-%' AND state='pending' AND attempts=0")" = 3 ] || fail "no chat template: chat not left queued"
[ "$(count "state='failed'")" = 0 ] || fail "no chat template: requests failed"
echo "ok: (b) no chat template: text done, chat queued, exit 69: $(tail -n1 "$T/b.log")"

# a healthy worker serves everything
"${RUN[@]}" --model "$M" > "$T/h.log" 2>&1 || { cat "$T/h.log"; fail "healthy worker failed"; }
[ "$(count "state='done'")" = 9 ] || fail "healthy worker: not all done"
[ "$(q "SELECT state FROM jobs WHERE id='$J'")" = completed ] || fail "job not completed"
echo "ok: healthy worker: 9/9 done, job completed"

# retry: requests failed for their own fault (prompt longer than the context)
printf '%s\n' '{"custom_id":"long-1","method":"POST","url":"/v1/completions","body":{"prompt":"a long prompt that does not fit","max_tokens":2}}' \
              '{"custom_id":"long-2","method":"POST","url":"/v1/completions","body":{"prompt":[1,2,3,4,5,6,7,8,9,10,11,12],"max_tokens":2}}' \
              '{"custom_id":"short","method":"POST","url":"/v1/completions","body":{"prompt":[1,2],"max_tokens":2}}' > "$T/r.jsonl"
R=$("$BIN" submit "$T/r.jsonl" --db "$T/q.db" | grep -o 'job_[0-9a-f]*' | head -n1)
"${RUN[@]}" --model "$M" --max-model-len 8 > "$T/r1.log" 2>&1 || { cat "$T/r1.log"; fail "run with a short context"; }
[ "$(count "job_id='$R' AND state='failed'")" = 2 ] || { q "SELECT custom_id,state,error FROM requests WHERE job_id='$R'"; fail "long prompts did not fail"; }
[ "$(q "SELECT state FROM jobs WHERE id='$R'")" = completed ] || fail "retry job not completed"
"$BIN" retry "$R" --errors no_such_code --db "$T/q.db" > "$T/r.out"
grep -q ": 0 failed requests requeued" "$T/r.out" || { cat "$T/r.out"; fail "retry --errors (no match) count"; }
"$BIN" retry "$R" --db "$T/q.db" > "$T/r.out"
grep -q ": 2 failed requests requeued" "$T/r.out" || { cat "$T/r.out"; fail "retry count"; }
[ "$(count "job_id='$R' AND state='pending' AND error IS NULL")" = 2 ] || fail "retry: not pending"
[ "$(q "SELECT state FROM jobs WHERE id='$R'")" != completed ] || fail "retry: job still completed"
"${RUN[@]}" --model "$M" > "$T/r2.log" 2>&1 || { cat "$T/r2.log"; fail "rerun after retry"; }
[ "$(count "job_id='$R' AND state='done'")" = 3 ] || fail "rerun after retry: not all done"
[ "$(q "SELECT state FROM jobs WHERE id='$R'")" = completed ] || fail "rerun after retry: job not completed"
echo "ok: retry requeued 2 failed requests; the rerun completed them"

# retry refuses a cancelled job, an unknown job, and bad usage
C=$("$BIN" submit "$T/r.jsonl" --db "$T/q.db" | grep -o 'job_[0-9a-f]*' | head -n1)
"$BIN" cancel "$C" --db "$T/q.db" > /dev/null
rc=0; "$BIN" retry "$C" --db "$T/q.db" > "$T/x.out" 2>&1 || rc=$?
[ "$rc" = 65 ] && grep -q cancelled "$T/x.out" || { cat "$T/x.out"; fail "retry of a cancelled job: exit $rc, want 65"; }
rc=0; "$BIN" retry job_nope --db "$T/q.db" > "$T/x.out" 2>&1 || rc=$?
[ "$rc" = 65 ] || { cat "$T/x.out"; fail "retry of an unknown job: exit $rc"; }
rc=0; "$BIN" retry --db "$T/q.db" > "$T/x.out" 2>&1 || rc=$?
[ "$rc" = 64 ] || fail "retry without JOB: exit $rc"
echo "ok: retry refuses a cancelled job (65), an unknown job (65), no JOB (64)"
