"""openai_shapes_check.py SCHEMAS MISTRAL_DIR DEMO_DIR OUTDIR — the checks of
tests/cli/openai_shapes.sh over the output and error files it wrote
(OUTDIR/<model>.out{1,2}.jsonl, .err{1,2}.jsonl). The rules are docs/output.md's."""
import json
import os
import sys

import jsonschema

schemas, mistral_dir, demo_dir, out = sys.argv[1:5]


def load_schema(name):
    s = json.load(open(os.path.join(schemas, name)))
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


LINE = load_schema("openai_batch_output_line.schema.json")
CHAT = load_schema("openai_chat_completion.schema.json")
CMPL = load_schema("openai_completion.schema.json")
try:  # openai-python's own models, when installed (not needed: the schemas are the test)
    from openai.types import Completion
    from openai.types.chat import ChatCompletion
except ImportError:
    Completion = ChatCompletion = None

# the validators do reject what they should
for v, bad in ((CHAT, {"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                       "choices": [{"index": 0, "finish_reason": "eos", "message": {"role": "assistant"}}]}),
               (CMPL, {"id": "x", "object": "text_completion", "created": 1, "model": "m",
                       "choices": [{"index": 0, "finish_reason": "stop", "text": None}]}),
               (LINE, {"id": "batch_req_1", "custom_id": "a", "response": None, "error": None})):
    assert list(v.iter_errors(bad)), f"schema accepted {bad}"


def specials(model_dir):
    t = json.load(open(os.path.join(model_dir, "tokenizer.json")))
    return {a["id"]: a["content"] for a in t.get("added_tokens", []) if a.get("special")}


SPECIAL = {"mistral-tok-mini": specials(mistral_dir), "model": specials(demo_dir)}
EOS = {"mistral-tok-mini": 2, "model": 258}


def byte_tokens(model_dir):
    v = json.load(open(os.path.join(model_dir, "tokenizer.json")))["model"]["vocab"]
    return {i for t, i in v.items() if len(t) == 6 and t.startswith("<0x") and t.endswith(">")}


BYTE_TOKENS = {"mistral-tok-mini": byte_tokens(mistral_dir), "model": set()}


def lossy(b):
    return bytes(b).decode("utf-8", errors="replace")


def rebuild(model, ids, byts):
    """The content the joined bytes give: lossy UTF-8, except that a run of
    byte-fallback tokens that is not valid UTF-8 is one U+FFFD per byte (Hugging
    Face's ByteFallback decoder, which the content follows)."""
    out, run = [], b""
    bt = BYTE_TOKENS[model]
    for i, b in zip(ids, byts):
        if i in bt:
            run += bytes(b)
            continue
        if run:
            try:
                out.append(run.decode("utf-8"))
            except UnicodeDecodeError:
                out.append("\ufffd" * len(run))
            run = b""
        out.append(bytes(b))
    if run:
        try:
            out.append(run.decode("utf-8"))
        except UnicodeDecodeError:
            out.append("\ufffd" * len(run))
    text, raw = "", b""
    for x in out:
        if isinstance(x, bytes):
            raw += x
        else:
            text += lossy(raw) + x
            raw = b""
    return text + lossy(raw)


def lead_chars(b):
    return sum(1 for x in b if x & 0xC0 != 0x80)


counts = {"lines": 0, "errors": 0, "logprob_choices": 0, "stop_string": 0, "stop_token": 0, "eos": 0,
          "length": 0, "sp_space": 0, "collisions": 0, "partial_bytes": 0}


def check_choice(model, cid, body, ch, req):
    chat = body["object"] == "chat.completion"
    text = ch["message"]["content"] if chat else ch["text"]
    text = text or ""
    ids = ch["token_ids"]
    fin, sr = ch["finish_reason"], ch["stop_reason"]
    assert "stop_reason" in ch, cid
    if fin == "length":
        assert sr is None, (cid, sr)
    elif isinstance(sr, str):
        assert sr in (req.get("stop") or []), (cid, sr)
        counts["stop_string"] += 1
    elif isinstance(sr, int):
        assert sr == ids[-1] and (sr in (req.get("stop_token_ids") or []) or sr in SPECIAL[model]), (cid, sr)
        counts["stop_token"] += 1
    else:
        assert sr is None and ids[-1] == EOS[model], (cid, ids[-1])
        counts["eos"] += 1
    if fin == "length":
        counts["length"] += 1
    if chat:
        assert ch["message"]["reasoning_content"] is None, cid
    lp = ch["logprobs"]
    want_lp = req.get("logprobs") is not None and req.get("logprobs") is not False
    if not want_lp:
        assert lp is None, cid
        return
    counts["logprob_choices"] += 1
    k = req.get("top_logprobs", 0) if chat else req["logprobs"]
    if chat:
        ents = lp["content"]
        toks = [e["token"] for e in ents]
        byts = [e["bytes"] for e in ents]
        lps = [e["logprob"] for e in ents]
        for e in ents:
            tops = e["top_logprobs"]
            assert len(tops) == k, (cid, len(tops), k)
            assert all(tops[i]["logprob"] >= tops[i + 1]["logprob"] for i in range(len(tops) - 1)), cid
            assert all(t["bytes"] is not None for t in tops), cid
    else:
        toks, lps = lp["tokens"], lp["token_logprobs"]
        assert len(lp["top_logprobs"]) == len(lp["text_offset"]) == len(toks) == len(lps), cid
        byts = None
    assert len(toks) == len(ids), (cid, len(toks), len(ids))
    sp = SPECIAL[model]
    exact = True
    if byts is None:  # completions carry no bytes: rebuilt from the tokens, exact unless a token has U+FFFD
        byts = [[] if ids[i] in sp and toks[i] == sp[ids[i]] else list(toks[i].encode()) for i in range(len(ids))]
        exact = not any("\ufffd" in t for t in toks)
    for i, t in enumerate(ids):
        if t in sp:
            assert toks[i] == sp[t] and byts[i] == [], (cid, i, toks[i], byts[i])
    # joined bytes rebuild the content
    used = len(ids) - (1 if isinstance(sr, int) else 0)
    joined = b"".join(bytes(b) for b in byts[:used])
    rebuilt = rebuild(model, ids[:used], byts[:used])
    if not exact:
        pass
    elif isinstance(sr, str):
        assert rebuilt.startswith(text + sr), (cid, text, sr, rebuilt)
    else:
        assert rebuilt == text, (cid, text, rebuilt)
    if any(len(b) and lossy(b) == "\ufffd" for b in byts):
        counts["partial_bytes"] += 1
    # joined tokens == content where the text is clean
    if "\ufffd" not in text and not isinstance(sr, str):
        assert "".join(toks[i] for i in range(used) if ids[i] not in sp) == text, (cid, toks, text)
        if model == "mistral-tok-mini" and any(t.startswith(" ") for t in toks[1:used]):
            counts["sp_space"] += 1
    if not chat:
        off = lp["text_offset"]
        assert off[0] == 0 and all(off[i] <= off[i + 1] for i in range(len(off) - 1)), (cid, off)
        pos = 0
        for i in range(used if exact else 0):
            assert off[i] == lead_chars(joined[:pos]) == len(lossy(joined[:pos])), (cid, i, off)
            pos += len(byts[i])
        for i, top in enumerate(lp["top_logprobs"]):
            key = toks[i] if "\x00" not in toks[i] else f"token_id:{ids[i]}"
            assert key in top and top[key] == lps[i], (cid, i, toks[i], top)
            assert 1 <= len(top) <= k + 1, (cid, i, len(top), k)
            if k == 0:
                assert len(top) == 1, (cid, top)
            if any(key.startswith("token_id:") for key in top):
                counts["collisions"] += 1


def check_file(model, path, reqs, errors):
    for raw in open(path):
        o = json.loads(raw)
        errs = [e.message for e in LINE.iter_errors(o)]
        assert not errs, (path, errs, raw[:300])
        counts["lines"] += 1
        if errors:
            assert o["response"] is None and o["error"]["message"], o
            counts["errors"] += 1
            continue
        body = o["response"]["body"]
        v = CHAT if body["object"] == "chat.completion" else CMPL
        errs = [e.message for e in v.iter_errors(body)]
        assert not errs, (o["custom_id"], errs)
        if ChatCompletion is not None:
            (ChatCompletion if body["object"] == "chat.completion" else Completion).model_validate(body)
        req = reqs[o["custom_id"]]
        n = req.get("n", 1)
        assert [c["index"] for c in body["choices"]] == list(range(n)), o["custom_id"]
        u = body["usage"]
        assert u["completion_tokens"] == sum(len(c["token_ids"]) for c in body["choices"])
        assert u["completion_tokens_details"]["reasoning_tokens"] == 0
        for ch in body["choices"]:
            check_choice(model, o["custom_id"], body, ch, req)


for model in ("mistral-tok-mini", "model"):
    for p in ("1", "2"):
        reqs = {}
        for raw in open(os.path.join(out, f"{model}.p{p}.jsonl")):
            r = json.loads(raw)
            reqs[r["custom_id"]] = r["body"]
        check_file(model, os.path.join(out, f"{model}.out{p}.jsonl"), reqs, False)
        check_file(model, os.path.join(out, f"{model}.err{p}.jsonl"), reqs, True)

print(json.dumps(counts))
assert counts["errors"] == 2, counts          # cmpl-long on each model
assert counts["stop_string"] >= 4 and counts["stop_token"] >= 4, counts
assert counts["eos"] >= 1 and counts["sp_space"] >= 1 and counts["collisions"] >= 1, counts
assert counts["partial_bytes"] >= 1, counts
