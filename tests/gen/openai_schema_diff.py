#!/usr/bin/env python3
"""openai_schema_diff.py OUTPUT.jsonl... — do schemas/openai_*.schema.json
accept what openai-python's models accept? A developer's check (needs the
`openai` package from PyPI; CI validates with the schemas alone).

Takes the bodies of tokenmill output lines (one per shape: chat/completion,
logprobs on/off), trimmed to one choice and two logprob entries, and applies
every single-field mutation (delete the key; set it to null, "s", 1, 1.5, [],
{}, true, "12"); each mutant is judged by the JSON Schema and by
ChatCompletion / Completion.model_validate. Prints each kind of disagreement
once and the counts. Expected: the only disagreements are pydantic's lax
coercions (true or a numeric string where a number is wanted), which the
schema refuses: no mutant the schema accepts is refused by openai-python.
"""
import copy
import json
import os
import sys

import jsonschema
from openai.types import Completion
from openai.types.chat import ChatCompletion

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "schemas")
S = {o: jsonschema.Draft202012Validator(json.load(open(os.path.join(HERE, f))))
     for o, f in (("chat.completion", "openai_chat_completion.schema.json"),
                  ("text_completion", "openai_completion.schema.json"))}
M = {"chat.completion": ChatCompletion, "text_completion": Completion}


def trimmed(b):
    for c in b["choices"]:
        lp = c.get("logprobs")
        if lp and "content" in lp:
            lp["content"] = lp["content"][:2]
        elif lp:
            for k in lp:
                lp[k] = lp[k][:2]
        c["token_ids"] = c.get("token_ids", [])[:2]
    b["choices"] = b["choices"][:1]
    b.pop("prompt_token_ids", None)
    return b


def paths(x, p=()):
    yield p
    if isinstance(x, dict):
        for k, v in x.items():
            yield from paths(v, p + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x[:1]):
            yield from paths(v, p + (i,))


bodies = {}
for f in sys.argv[1:]:
    for line in open(f):
        resp = json.loads(line)["response"]
        if resp is None:
            continue
        b = resp["body"]
        bodies.setdefault((b["object"], b["choices"][0]["logprobs"] is None), trimmed(b))
total = schema_only = openai_only = 0
seen = set()
for b in bodies.values():
    for p in paths(b):
        for v in ([None, "s", 1, 1.5, [], {}, True, "12", "DEL"] if p else []):
            c = copy.deepcopy(b)
            t = c
            for k in p[:-1]:
                t = t[k]
            if v == "DEL":
                if isinstance(t, list):
                    continue
                del t[p[-1]]
            else:
                t[p[-1]] = v
            a = not list(S[b["object"]].iter_errors(c))
            try:
                M[b["object"]].model_validate(c)
                m = True
            except Exception:
                m = False
            total += 1
            if a != m:
                schema_only += a
                openai_only += m
                sig = (b["object"], tuple("#" if isinstance(k, int) else k for k in p[:-1]), repr(v), a, m)
                if sig not in seen:
                    seen.add(sig)
                    print("disagree", sig)
print(f"mutants {total}: accepted by the schema only {schema_only}, by openai-python only {openai_only}")
sys.exit(1 if schema_only else 0)
