#!/usr/bin/env python3
"""resume_job.py — job files and output comparison for the preemption tests.

  resume_job.py make N MAXTOK > job.jsonl
      N requests for the demo model: chat and completions, greedy and
      sampled (explicit and derived seeds), n=2, logprobs with top_logprobs,
      stop strings, penalties; max_tokens spread around MAXTOK.
  resume_job.py compare REF.jsonl OUT.jsonl
      every custom_id of REF appears exactly once in OUT, and the bytes of
      its "choices" array (text, token ids, logprobs, finish reasons) and
      its prompt/completion token counts are identical. Exit 1 on the
      first difference, printing it.
"""
import json
import random
import sys


def make(n, maxtok):
    rnd = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "omega", "spot", "preempt", "resume", "token", "mill"]
    for i in range(n):
        text = " ".join(rnd.choice(words) for _ in range(rnd.randint(3, 40)))
        body = {"model": "demo", "max_tokens": rnd.randint(maxtok // 2, maxtok)}
        kind = i % 6
        if kind in (0, 1, 2):
            body["messages"] = [{"role": "user", "content": text}]
            url = "/v1/chat/completions"
        else:
            body["prompt"] = text
            url = "/v1/completions"
        if kind == 0:
            body["temperature"] = 0
        elif kind == 1:
            body["temperature"] = 0.9
            body["seed"] = 1000 + i
            body["n"] = 2
        elif kind == 2:
            body["temperature"] = 0.7  # derived seed
            body["logprobs"] = True
            body["top_logprobs"] = 3
        elif kind == 3:
            body["temperature"] = 1.0
            body["top_p"] = 0.9
            body["frequency_penalty"] = 0.5
            body["stop"] = ["ta", "zz"]
        elif kind == 4:
            body["temperature"] = 0.8
            body["logprobs"] = 2
            body["seed"] = i
        else:
            body["temperature"] = 0.6
            body["presence_penalty"] = 0.3
            body["n"] = 2
            body["ignore_eos"] = True
        print(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": url, "body": body}))


def choices_bytes(line):
    a = line.index('"choices":')
    b = line.index(',"usage":', a)
    return line[a:b]


def load(path):
    out = {}
    for line in open(path, encoding="utf-8"):
        o = json.loads(line)
        cid = o["custom_id"]
        if cid in out:
            sys.exit(f"{path}: {cid} appears twice")
        u = o["response"]["body"]["usage"]
        out[cid] = (choices_bytes(line), u["prompt_tokens"], u["completion_tokens"])
    return out


def compare(ref_path, out_path):
    ref, out = load(ref_path), load(out_path)
    if sorted(ref) != sorted(out):
        missing = sorted(set(ref) - set(out))[:5]
        extra = sorted(set(out) - set(ref))[:5]
        sys.exit(f"different requests: missing {missing}, extra {extra}")
    for cid in ref:
        if ref[cid] != out[cid]:
            r, o = ref[cid], out[cid]
            k = next((i for i in range(min(len(r[0]), len(o[0]))) if r[0][i] != o[0][i]), None)
            sys.exit(f"{cid}: differs (tokens {r[1:]} vs {o[1:]}; first byte difference at {k}):\n"
                     f"  uninterrupted: {r[0][:300]}\n  interrupted:   {o[0][:300]}")
    print(f"compare: {len(ref)} outputs byte-identical")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
