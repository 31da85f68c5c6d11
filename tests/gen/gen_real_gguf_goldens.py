#!/usr/bin/env python3
"""gen_real_gguf_goldens.py — goldens for a real GGUF model (tests/cli/real_gguf.sh).

For each prompt (plain text, and chat messages rendered by the GGUF's own
chat template through transformers), writes one JSON line:
  {"kind": "text"|"chat", "prompt": ..., "messages": ..., "ids": [...],
   "top": [[id, logit] x 20], "greedy": [6 ids], "margins": [6 floats]} (first N_LOGITS prompts)
- ids: Hugging Face `tokenizers` (through transformers' PreTrainedTokenizerFast,
  whose apply_chat_template renders the GGUF's own chat template with jinja2)
  loading a tokenizer.json of the same vocabulary (--hf-tokenizer DIR; the
  script first checks that every GGUF token and merge equals that file's,
  apart from ids the GGUF marks as padding) — transformers' own GGUF
  tokenizer path needs PyTorch;
- logits: a float64 NumPy forward pass of the Qwen2/Llama architecture over
  weights dequantised by llama.cpp's own gguf-py (gguf.quants.dequantize),
  following transformers' modeling code (RMSNorm, RoPE half-rotation, GQA,
  SwiGLU, q/k/v bias for qwen2, tied lm_head);
- greedy: 6 greedy steps of the same reference, margins = top1 - top2.
Needs: pip install numpy gguf transformers tokenizers jinja2 (only to regenerate).
usage: gen_real_gguf_goldens.py MODEL.gguf OUT.jsonl --hf-tokenizer DIR
"""
import json, os, sys
import numpy as np
import gguf

N_LOGITS = 4   # prompts that also get logits and a greedy continuation (the first 2 text, first 2 chat)
PROMPTS = [
    ("text", "The capital of France is"),
    ("text", "def fibonacci(n):"),
    ("chat", [{"role": "user", "content": "Write a Python function that returns the square of x."}]),
    ("chat", [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}]),
    ("text", "1, 2, 3, 4, 5,"),
    ("text", "Once upon a time, in a small village,"),
    ("chat", [{"role": "user", "content": "Translate 'good morning' to French."}]),
    ("chat", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
              {"role": "user", "content": "Name three colours."}]),
]


class Model:
    def __init__(self, path):
        r = gguf.GGUFReader(path)
        self.f = {k: v.contents() for k, v in r.fields.items() if not k.startswith('tokenizer.ggml.')}
        a = self.f['general.architecture']
        g = lambda k, d=None: self.f.get(f'{a}.{k}', d)
        self.L, self.H = g('block_count'), g('embedding_length')
        self.nh, self.nkv = g('attention.head_count'), g('attention.head_count_kv')
        self.hd = g('attention.key_length', self.H // self.nh)
        self.eps, self.base = g('attention.layer_norm_rms_epsilon'), g('rope.freq_base', 10000.0)
        self.arch = a
        self.t = {}
        for t in r.tensors:
            w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)
            self.t[t.name] = w.reshape([int(x) for x in reversed(t.shape)]) if len(t.shape) > 1 else w.reshape(-1)
        if a == 'llama':
            raise SystemExit('llama GGUFs need the q/k un-permute; not needed for the models used')

    def rms(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x, pos):
        d = self.hd
        inv = 1.0 / (self.base ** (np.arange(0, d, 2, dtype=np.float64) / d))
        ang = np.outer(pos, inv)
        cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
        x1, x2 = x[..., : d // 2], x[..., d // 2:]
        rot = np.concatenate([-x2, x1], -1)
        return x * cos[:, None, :] + rot * sin[:, None, :]

    def logits(self, ids):
        T = self.t
        x = T['token_embd.weight'][ids]
        n = len(ids)
        pos = np.arange(n)
        mask = np.triu(np.full((n, n), -np.inf), 1)
        for l in range(self.L):
            p = f'blk.{l}.'
            h = self.rms(x, T[p + 'attn_norm.weight'])
            q = h @ T[p + 'attn_q.weight'].T + T.get(p + 'attn_q.bias', 0)
            k = h @ T[p + 'attn_k.weight'].T + T.get(p + 'attn_k.bias', 0)
            v = h @ T[p + 'attn_v.weight'].T + T.get(p + 'attn_v.bias', 0)
            q, k, v = q.reshape(n, self.nh, self.hd), k.reshape(n, self.nkv, self.hd), v.reshape(n, self.nkv, self.hd)
            if p + 'attn_q_norm.weight' in T:
                q, k = self.rms(q, T[p + 'attn_q_norm.weight']), self.rms(k, T[p + 'attn_k_norm.weight'])
            q, k = self.rope(q, pos), self.rope(k, pos)
            rep = self.nh // self.nkv
            k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
            s = np.einsum('qhd,khd->hqk', q, k) / np.sqrt(self.hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            o = np.einsum('hqk,khd->qhd', s, v).reshape(n, self.nh * self.hd)
            x = x + o @ T[p + 'attn_output.weight'].T
            h = self.rms(x, T[p + 'ffn_norm.weight'])
            gt, up = h @ T[p + 'ffn_gate.weight'].T, h @ T[p + 'ffn_up.weight'].T
            x = x + ((gt / (1 + np.exp(-gt))) * up) @ T[p + 'ffn_down.weight'].T
        x = self.rms(x[-1:], T['output_norm.weight'])
        head = T.get('output.weight', T['token_embd.weight'])
        return (x @ head.T)[0]


def reference_tokenizer(path, hf_dir):
    from transformers import PreTrainedTokenizerFast
    r = gguf.GGUFReader(path)
    toks = r.fields['tokenizer.ggml.tokens'].contents()
    merges = r.fields['tokenizer.ggml.merges'].contents()
    tj = json.load(open(os.path.join(hf_dir, 'tokenizer.json'), encoding='utf-8'))
    inv = {i: t for t, i in tj['model']['vocab'].items()}
    inv.update({a['id']: a['content'] for a in tj['added_tokens']})
    for i, t in enumerate(toks):
        if not t.startswith('[PAD') and inv.get(i) != t:
            raise SystemExit(f'token {i}: GGUF {t!r} != {inv.get(i)!r}')
    if [m if isinstance(m, str) else ' '.join(m) for m in tj['model']['merges']] != list(merges):
        raise SystemExit('merges differ')
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(hf_dir, 'tokenizer.json'))
    tok.chat_template = r.fields['tokenizer.chat_template'].contents()
    return tok


def main(path, out, hf_dir):
    tok = reference_tokenizer(path, hf_dir)
    m = Model(path)
    n_done = 0
    with open(out, 'w') as f:
        for kind, p in PROMPTS:
            if kind == 'text':
                ids = tok(p, add_special_tokens=False)['input_ids']   # the GGUF says add_bos_token false
                rec = {'kind': kind, 'prompt': p}
            else:
                text = tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
                ids = tok(text, add_special_tokens=False)['input_ids']
                rec = {'kind': kind, 'messages': p, 'text': text}
            rec['ids'] = ids
            if n_done >= N_LOGITS:          # ids only for the rest
                f.write(json.dumps(rec, ensure_ascii=False) + '\n')
                continue
            n_done += 1
            seq, greedy, margins, top = list(ids), [], [], None
            for step in range(6):
                lg = m.logits(seq)
                order = np.argsort(-lg)
                if step == 0:
                    top = [[int(i), float(lg[i])] for i in order[:20]]
                greedy.append(int(order[0]))
                margins.append(float(lg[order[0]] - lg[order[1]]))
                seq.append(int(order[0]))
            rec.update(top=top, greedy=greedy, margins=margins)
            f.write(json.dumps(rec, ensure_ascii=False) + '\n')
            f.flush()
            print(kind, len(ids), greedy, flush=True)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], sys.argv[sys.argv.index('--hf-tokenizer') + 1])
