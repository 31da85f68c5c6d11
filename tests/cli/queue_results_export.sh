#!/usr/bin/env bash
# queue_results_export.sh — end-to-end tests of `tokenmill results` (stdout,
# -o FILE, -o FILE.zst, --errors) and `tokenmill export` (bundle read back with
# tar + zstd; manifest sizes and sha256 checked with sha256sum). The fake
# worker in test_queue_output (--complete DB) finishes the requests.
set -euo pipefail
: "${TOKENMILL_BIN:?set by ctest}"
: "${TOKENMILL_BUILD:?set by ctest}"
for c in zstd tar python3 sha256sum; do
  command -v "$c" >/dev/null || { echo "skipped: $c is not installed"; exit 77; }
done
WORKER="$TOKENMILL_BUILD/test_queue_output"
[ -x "$WORKER" ] || { echo "skipped: $WORKER not built (needs cmocka)"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
tm() { "$TOKENMILL_BIN" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_rc() {
  local want=$1; shift
  set +e; "$@" >out.txt 2>err.txt; local rc=$?; set -e
  [ "$rc" = "$want" ] || { cat out.txt err.txt >&2; fail "'$*' exited $rc, want $want"; }
}
line() { printf '{"custom_id":"%s","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}}\n' "$1"; }
{ line first; line fail-me; line 'third \"q\"'; } > j.jsonl
J=$(tm submit --db q.db --name exp j.jsonl)
# before any work: no results, no errors, both succeed
[ "$(tm results --db q.db "$J" | wc -c)" = 0 ] || fail "results before work"
"$WORKER" --complete q.db > w.txt
grep -qx 'completed 2 failed 1' w.txt || fail "fake worker: $(cat w.txt)"

tm results --db q.db "$J" > res.jsonl
python3 - res.jsonl <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert [l["custom_id"] for l in lines] == ["first", 'third "q"'], lines
for l in lines:
    assert set(l) == {"id", "custom_id", "response", "error"}, l
    assert l["id"].startswith("batch_req_") and l["error"] is None
    r = l["response"]
    assert r["status_code"] == 200 and r["request_id"].startswith("req_")
    assert r["request_id"][4:] == l["id"][10:]
    assert r["body"]["object"] == "chat.completion"
    assert r["body"]["choices"][0]["message"]["content"] == l["custom_id"]
    assert r["body"]["usage"]["total_tokens"] == 13
PY
expect_rc 0 tm results --db q.db "$J" -o res2.jsonl
cmp res.jsonl res2.jsonl || fail "-o FILE differs from stdout"
grep -q 'wrote 2 result lines to res2.jsonl' err.txt || fail "results summary: $(cat err.txt)"
tm results "$J" --db q.db -o res.jsonl.zst 2>/dev/null
zstd -t -q res.jsonl.zst || fail "-o .zst is not zstd"
zstd -dc res.jsonl.zst | cmp - res.jsonl || fail ".zst content differs"
[ ! -e res.jsonl.zst.partial ] || fail "partial file left"
tm results --db q.db "$J" --errors > err.jsonl
python3 - err.jsonl <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 1, lines
e = lines[0]
assert e["custom_id"] == "fail-me" and e["response"] is None and e["id"].startswith("batch_req_")
assert e["error"] == {"code": "server_error", "message": "fake worker failed it", "line": 2, "param": None}, e
PY
expect_rc 65 tm results --db q.db job_unknown -o nothing.jsonl
[ ! -e nothing.jsonl ] && [ ! -e nothing.jsonl.partial ] || fail "unknown job left a file"
expect_rc 64 tm results --db q.db
expect_rc 0 tm results --help
expect_rc 74 tm results --db q.db "$J" -o no/such/dir/x.jsonl

# export: read the bundle back and check the manifest against the members
expect_rc 0 tm export "$J" --db q.db -o bundle.tar.zst
grep -qx bundle.tar.zst out.txt || fail "export prints the bundle path"
mkdir x
zstd -dc bundle.tar.zst | tar -xf - -C x
[ "$(cd x && ls | sort | tr '\n' ' ')" = "cost.json errors.jsonl.zst job.json manifest.json output.jsonl.zst " ] \
  || fail "bundle members: $(ls x)"
python3 - x "$J" <<'PY'
import hashlib, json, os, sys
d, job = sys.argv[1], sys.argv[2]
m = json.load(open(os.path.join(d, "manifest.json")))
assert m["job_id"] == job and m["format"] == "tokenmill-bundle/1"
names = [e["name"] for e in m["members"]]
assert names == ["output.jsonl.zst", "errors.jsonl.zst", "job.json", "cost.json"], names
for e in m["members"]:
    data = open(os.path.join(d, e["name"]), "rb").read()
    assert len(data) == e["size"], e
    assert hashlib.sha256(data).hexdigest() == e["sha256"], e
assert m["request_counts"]["total"] == 3 and m["request_counts"]["completed"] == 2 and m["request_counts"]["failed"] == 1
j = json.load(open(os.path.join(d, "job.json")))
assert j["id"] == job and j["status"] == "completed" and j["name"] == "exp"
c = json.load(open(os.path.join(d, "cost.json")))
assert c["prompt_tokens"] == 20 and c["completion_tokens"] == 6 and abs(c["cost_usd"] - 0.002) < 1e-12, c
PY
# also the shell's own sha256sum agrees with the manifest
want=$(python3 -c 'import json; print([e["sha256"] for e in json.load(open("x/manifest.json"))["members"] if e["name"]=="output.jsonl.zst"][0])')
[ "$(sha256sum x/output.jsonl.zst | cut -d' ' -f1)" = "$want" ] || fail "sha256sum disagrees with manifest"
zstd -dc x/output.jsonl.zst | cmp - res.jsonl || fail "bundle output differs from results"
zstd -dc x/errors.jsonl.zst | cmp - err.jsonl || fail "bundle errors differ from results --errors"
# default name, unknown job, usage
expect_rc 0 tm export --db q.db "$J"
[ -f "$J.tar.zst" ] || fail "default bundle name"
expect_rc 65 tm export --db q.db job_unknown -o u.tar.zst
[ ! -e u.tar.zst ] || fail "unknown job left a bundle"
expect_rc 64 tm export --db q.db
expect_rc 0 tm export --help
echo "queue_results_export: all passed"
