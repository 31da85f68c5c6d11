#!/usr/bin/env python3
"""visit_golden.py — the golden end-to-end jobs of the GPU visit (tests/gpu/visit.sh).

  visit_golden.py jobs GOLDEN.jsonl > JOB.jsonl
      one completions request per golden prompt and copy (8 copies: real
      batches, prefix sharing): greedy, 12 tokens, ignore_eos, token ids back.
  visit_golden.py compare GOLDEN.jsonl DEVICE.out CPU.out
      DEVICE.out (the run on the device) against the float64 reference's
      greedy tokens, each sequence up to its first step whose reference margin
      is under the bf16 error bound (2e-2 x max |last logit|, README of the
      test data), and against CPU.out (the same job run with --device cpu on
      the staging machine): prints one line "ok|FAIL <detail>"; exit 0 either
      way (the verdict is the first word), 2 on unreadable input.

Standard library only: it runs under whatever python3 the GPU machine has.
"""
import json
import sys

COPIES = 8
TOKENS = 12
BF16_BOUND = 2e-2


def jobs(golden_path):
    with open(golden_path) as f:
        for i, line in enumerate(f):
            g = json.loads(line)
            for rep in range(COPIES):
                print(json.dumps({"custom_id": f"g{i}-{rep}", "method": "POST", "url": "/v1/completions",
                                  "body": {"prompt": g["prompt_ids"], "max_tokens": TOKENS, "temperature": 0,
                                           "ignore_eos": True, "return_token_ids": True}}))


def load_out(path):
    out = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            try:
                out[r["custom_id"]] = r["response"]["body"]["choices"][0]["token_ids"]
            except (KeyError, IndexError, TypeError):
                out[r["custom_id"]] = None  # an error line: counts as a miss
    return out


def compare(golden_path, dev_path, cpu_path):
    with open(golden_path) as f:
        gold = [json.loads(line) for line in f]
    dev, cpu = load_out(dev_path), load_out(cpu_path)
    ref_ok = ref_n = cpu_ref_ok = cut = agree = total = same12 = 0
    for cid, cids in cpu.items():
        g = gold[int(cid[1:].split("-")[0])]
        d = dev.get(cid)
        same12 += d is not None and d == cids
        bound = BF16_BOUND * max(abs(x) for x in g["last_logits"])
        for k in range(TOKENS):
            if g["greedy_margins"][k] < bound:
                cut += 1
                break
            ref_n += 1
            ref_ok += d is not None and len(d) > k and d[k] == g["greedy_ids"][k]
            cpu_ref_ok += cids is not None and len(cids) > k and cids[k] == g["greedy_ids"][k]
            total += 1
            agree += d is not None and cids is not None and len(d) > k and len(cids) > k and d[k] == cids[k]
    missing = sum(1 for cid in cpu if dev.get(cid) is None)
    good = ref_ok == ref_n and cpu_ref_ok == ref_n and missing == 0 and len(cpu) > 0 and len(dev) == len(cpu)
    print(f"{'ok' if good else 'FAIL'} device=ref {ref_ok}/{ref_n} tokens above the bf16 margin bound "
          f"({cut} seqs cut there; cpu=ref {cpu_ref_ok}/{ref_n}); all {TOKENS} tokens device==cpu in "
          f"{same12}/{len(cpu)} seqs; {missing} missing")


def main(argv):
    try:
        if len(argv) == 3 and argv[1] == "jobs":
            jobs(argv[2])
        elif len(argv) == 5 and argv[1] == "compare":
            compare(argv[2], argv[3], argv[4])
        else:
            print(__doc__, file=sys.stderr)
            return 64
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        print(f"FAIL visit_golden.py: {type(e).__name__}: {e}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
