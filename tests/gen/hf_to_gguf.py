#!/usr/bin/env python3
"""hf_to_gguf.py — write a Hugging Face model directory (or only its tokenizer)
as a GGUF file the way llama.cpp's convert_hf_to_gguf.py does, in plain
Python (no numpy, no gguf package), for tokenmill's GGUF tests.

Conventions followed (llama.cpp's): tensor names token_embd/output_norm/output
and blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, attn_q_norm,
attn_k_norm, ffn_norm, ffn_gate, ffn_up, ffn_down}; shapes written reversed
(ne[0] = columns); for architecture llama the rows of attn_q/attn_k are
interleaved per head (llama.cpp's `permute`); metadata <arch>.* keys; the
tokenizer as tokenizer.ggml.{model, pre, tokens, token_type, merges, scores,
bos/eos/unknown/padding_token_id, add_bos_token} with token types
1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte; tokenizer.chat_template.

usage: hf_to_gguf.py MODEL_DIR OUT.gguf [--type bf16|f32|q8_0] [--tokenizer-only] [--tokenizer DIR]
"""
import json, math, os, re, struct, sys

U32, I32, F32, BOOL, STRING, ARRAY, U64 = 4, 5, 6, 7, 8, 9, 10
T_F32, T_F16, T_Q8_0, T_BF16 = 0, 1, 8, 30
ALIGN = 32


def s_(x):
    b = x.encode() if isinstance(x, str) else x
    return struct.pack('<Q', len(b)) + b


def kv(key, vtype, val):
    out = s_(key) + struct.pack('<I', vtype)
    if vtype == STRING:
        return out + s_(val)
    if vtype == ARRAY:
        et, items = val
        out += struct.pack('<IQ', et, len(items))
        if et == STRING:
            return out + b''.join(s_(i) for i in items)
        fmt = {U32: '<I', I32: '<i', F32: '<f'}[et]
        return out + b''.join(struct.pack(fmt, i) for i in items)
    fmt = {U32: '<I', I32: '<i', F32: '<f', BOOL: '<?', U64: '<Q'}[vtype]
    return out + struct.pack(fmt, val)


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    hdr.pop('__metadata__', None)
    return {k: (v['dtype'], v['shape'], data[v['data_offsets'][0]:v['data_offsets'][1]]) for k, v in hdr.items()}


def bf16_to_f32_list(b):
    return list(struct.unpack('<%df' % (len(b) // 2), b''.join(b'\0\0' + b[i:i + 2] for i in range(0, len(b), 2))))


def to_f32_list(dtype, b):
    if dtype == 'BF16':
        return bf16_to_f32_list(b)
    if dtype == 'F32':
        return list(struct.unpack('<%df' % (len(b) // 4), b))
    if dtype == 'F16':
        return list(struct.unpack('<%de' % (len(b) // 2), b))
    raise SystemExit('unsupported dtype ' + dtype)


def permute_rows(rows, n_head):
    """llama.cpp: w.reshape(n_head, 2, D/2, ...).swapaxes(1, 2).reshape(w.shape)."""
    D = len(rows) // n_head
    out = [None] * len(rows)
    for h in range(n_head):
        for t in range(2):
            for j in range(D // 2):
                out[h * D + 2 * j + t] = rows[h * D + t * (D // 2) + j]
    return out


def q8_0(vals):
    out = bytearray()
    for i in range(0, len(vals), 32):
        blk = vals[i:i + 32]
        amax = max(abs(v) for v in blk)
        d = amax / 127.0
        dh = struct.unpack('<e', struct.pack('<e', d))[0]
        inv = 1.0 / d if d else 0.0
        out += struct.pack('<e', d)
        out += struct.pack('<32b', *[max(-127, min(127, int(round(v * inv)))) for v in blk])
    _ = dh
    return bytes(out)


LAYER = [('input_layernorm.weight', 'attn_norm.weight'), ('self_attn.q_proj.weight', 'attn_q.weight'),
         ('self_attn.q_proj.bias', 'attn_q.bias'), ('self_attn.k_proj.weight', 'attn_k.weight'),
         ('self_attn.k_proj.bias', 'attn_k.bias'), ('self_attn.v_proj.weight', 'attn_v.weight'),
         ('self_attn.v_proj.bias', 'attn_v.bias'), ('self_attn.o_proj.weight', 'attn_output.weight'),
         ('self_attn.q_norm.weight', 'attn_q_norm.weight'), ('self_attn.k_norm.weight', 'attn_k_norm.weight'),
         ('post_attention_layernorm.weight', 'ffn_norm.weight'), ('mlp.gate_proj.weight', 'ffn_gate.weight'),
         ('mlp.up_proj.weight', 'ffn_up.weight'), ('mlp.down_proj.weight', 'ffn_down.weight')]


def gguf_name(hf):
    if hf == 'model.embed_tokens.weight': return 'token_embd.weight'
    if hf == 'model.norm.weight': return 'output_norm.weight'
    if hf == 'lm_head.weight': return 'output.weight'
    m = re.match(r'model\.layers\.(\d+)\.(.*)$', hf)
    for a, b in LAYER:
        if m and m.group(2) == a:
            return 'blk.%s.%s' % (m.group(1), b)
    raise SystemExit('unknown tensor ' + hf)


def llama3_rope_freqs(cfg, head_dim):
    rs = cfg['rope_scaling']
    factor, low, high, orig = rs['factor'], rs['low_freq_factor'], rs['high_freq_factor'], rs['original_max_position_embeddings']
    base = cfg['rope_theta']
    lw, hw = orig / low, orig / high
    out = []
    for i in range(0, head_dim, 2):
        freq = 1.0 / (base ** (i / head_dim))
        wl = 2 * math.pi / freq
        if wl < hw: out.append(1.0)
        elif wl > lw: out.append(factor)
        else:
            sm = (orig / wl - low) / (high - low)
            out.append(1 / ((1 - sm) / factor + sm))
    return out


def tensors_of(model_dir, cfg, arch, qtype):
    st = read_safetensors(os.path.join(model_dir, 'model.safetensors'))
    heads, kvh = cfg['num_attention_heads'], cfg.get('num_key_value_heads', cfg['num_attention_heads'])
    out = []
    for hf in sorted(st):
        dtype, shape, data = st[hf]
        name = gguf_name(hf)
        vals = None
        if arch == 'llama' and (name.endswith('attn_q.weight') or name.endswith('attn_k.weight')):
            cols = shape[1]
            elsz = {'BF16': 2, 'F16': 2, 'F32': 4}[dtype]
            rows = [data[r * cols * elsz:(r + 1) * cols * elsz] for r in range(shape[0])]
            data = b''.join(permute_rows(rows, heads if 'attn_q' in name else kvh))
        is_matrix = len(shape) == 2
        if qtype == 'q8_0' and is_matrix and shape[1] % 32 == 0:
            vals = to_f32_list(dtype, data)
            out.append((name, shape, T_Q8_0, q8_0(vals)))
        elif qtype == 'f32' or dtype == 'F32' or not is_matrix:
            vals = to_f32_list(dtype, data)
            out.append((name, shape, T_F32, struct.pack('<%df' % len(vals), *vals)))
        else:
            out.append((name, shape, T_BF16 if dtype == 'BF16' else T_F16, data))
    rs = cfg.get('rope_scaling') or {}
    if rs.get('rope_type', rs.get('type')) == 'llama3':
        hd = cfg.get('head_dim') or cfg['hidden_size'] // heads
        f = llama3_rope_freqs(cfg, hd)
        out.append(('rope_freqs.weight', [len(f)], T_F32, struct.pack('<%df' % len(f), *f)))
    return out


def model_kvs(cfg, arch):
    heads = cfg['num_attention_heads']
    k = [kv('general.architecture', STRING, arch), kv('general.name', STRING, 'test'),
         kv(arch + '.block_count', U32, cfg['num_hidden_layers']),
         kv(arch + '.context_length', U32, cfg.get('max_position_embeddings', 4096)),
         kv(arch + '.embedding_length', U32, cfg['hidden_size']),
         kv(arch + '.feed_forward_length', U32, cfg['intermediate_size']),
         kv(arch + '.attention.head_count', U32, heads),
         kv(arch + '.attention.head_count_kv', U32, cfg.get('num_key_value_heads', heads)),
         kv(arch + '.attention.layer_norm_rms_epsilon', F32, cfg['rms_norm_eps']),
         kv(arch + '.rope.freq_base', F32, cfg.get('rope_theta', 10000.0))]
    if cfg.get('head_dim'):
        k.append(kv(arch + '.attention.key_length', U32, cfg['head_dim']))
        k.append(kv(arch + '.attention.value_length', U32, cfg['head_dim']))
    return k


PRE_BY_REGEX = {
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": 'llama-bpe',
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": 'qwen2',
}


def tokenizer_kvs(tok_dir, cfg):
    tj = json.load(open(os.path.join(tok_dir, 'tokenizer.json'), encoding='utf-8'))
    tc_path = os.path.join(tok_dir, 'tokenizer_config.json')
    tc = json.load(open(tc_path, encoding='utf-8')) if os.path.exists(tc_path) else {}
    m = tj['model']
    vocab = m['vocab']
    added = {a['id']: a for a in tj.get('added_tokens', [])}
    n = max(max(vocab.values()), max(added) if added else 0) + 1
    n = max(n, cfg.get('vocab_size', 0) if cfg else 0)
    tokens = ['[PAD%d]' % i for i in range(n)]
    types = [5] * n   # unused
    for t, i in vocab.items():
        tokens[i] = t
        types[i] = 1
    spm = bool(m.get('byte_fallback'))
    for i, a in added.items():
        tokens[i] = a['content']
        types[i] = 3 if a.get('special') else 4
        if spm and not a.get('special'):   # llama.cpp: user-defined pieces keep real spaces
            tokens[i] = a['content'].replace('\u2581', ' ')
    if spm:
        for t, i in vocab.items():
            if re.fullmatch(r'<0x[0-9A-F]{2}>', t): types[i] = 6
        if m.get('unk_token') in vocab: types[vocab[m['unk_token']]] = 2
    merges = [x if isinstance(x, str) else ' '.join(x) for x in m.get('merges', [])]
    out = []
    if spm:
        # SentencePiece vocabularies carry scores (llama.cpp: the piece's log-prob);
        # from a BPE tokenizer.json, rank merged pieces by merge order like HF's converter does.
        rank = {}
        for r, mg in enumerate(merges):
            rank.setdefault(mg.replace(' ', ''), r)
        scores = [-(rank.get(t, len(merges) + i)) * 1.0 for i, t in enumerate(tokens)]
        norm = json.dumps(tj.get('normalizer'))
        out += [kv('tokenizer.ggml.model', STRING, 'llama'), kv('tokenizer.ggml.pre', STRING, 'default'),
                kv('tokenizer.ggml.scores', ARRAY, (F32, scores)),
                kv('tokenizer.ggml.add_space_prefix', BOOL, '"Prepend"' in norm)]
    else:
        pre = 'default'
        pts = tj.get('pre_tokenizer') or {}
        for p in pts.get('pretokenizers', []):
            rx = (p.get('pattern') or {}).get('Regex')
            if rx in PRE_BY_REGEX: pre = PRE_BY_REGEX[rx]
        if len(pts.get('pretokenizers', [])) == 4 and pts['pretokenizers'][0].get('pattern') == {'Regex': '\\p{N}{1,3}'}:
            pre = 'deepseek-v3'
        out += [kv('tokenizer.ggml.model', STRING, 'gpt2'), kv('tokenizer.ggml.pre', STRING, pre)]
    out += [kv('tokenizer.ggml.tokens', ARRAY, (STRING, tokens)), kv('tokenizer.ggml.token_type', ARRAY, (I32, types))]
    if merges:
        out.append(kv('tokenizer.ggml.merges', ARRAY, (STRING, merges)))

    def tid(field):
        v = tc.get(field)
        if isinstance(v, dict): v = v.get('content')
        if v is None: return None
        for i, t in enumerate(tokens):
            if t == v: return i
        return None
    for field, key in (('bos_token', 'bos'), ('eos_token', 'eos'), ('unk_token', 'unknown'), ('pad_token', 'padding')):
        i = tid(field)
        if i is None and cfg and field in ('bos_token', 'eos_token') and isinstance(cfg.get(field + '_id'), int):
            i = cfg[field + '_id']
        if i is not None:
            out.append(kv('tokenizer.ggml.%s_token_id' % key, U32, i))
    if 'add_bos_token' in tc:
        out.append(kv('tokenizer.ggml.add_bos_token', BOOL, bool(tc['add_bos_token'])))
    if 'add_eos_token' in tc:
        out.append(kv('tokenizer.ggml.add_eos_token', BOOL, bool(tc['add_eos_token'])))
    ct = tc.get('chat_template')
    if isinstance(ct, list):
        ct = next((c['template'] for c in ct if c.get('name') == 'default'), None)
    if isinstance(ct, str):
        out.append(kv('tokenizer.chat_template', STRING, ct))
    return out


def write(path, kvs, tensors):
    hdr = b'GGUF' + struct.pack('<IQQ', 3, len(tensors), len(kvs)) + b''.join(kvs)
    infos, data, off = b'', b'', 0
    for name, shape, t, b in tensors:
        infos += s_(name) + struct.pack('<I', len(shape)) + b''.join(struct.pack('<Q', d) for d in reversed(shape))
        infos += struct.pack('<IQ', t, off)
        pad = (-len(b)) % ALIGN
        data += b + b'\0' * pad
        off += len(b) + pad
    head = hdr + infos
    head += b'\0' * ((-len(head)) % ALIGN)
    with open(path, 'wb') as f:
        f.write(head + data)


def main(argv):
    args = [a for a in argv if not a.startswith('--')]
    qtype = 'bf16'
    tok_dir = None
    for i, a in enumerate(argv):
        if a == '--type': qtype = argv[i + 1]
        if a == '--tokenizer': tok_dir = argv[i + 1]
    args = [a for a in args if a not in (qtype, tok_dir)]
    src, out = args[0], args[1]
    only_tok = '--tokenizer-only' in argv
    cfg = None if only_tok else json.load(open(os.path.join(src, 'config.json')))
    tok_dir = tok_dir or src
    kvs, tensors = [], []
    if cfg:
        arch = cfg['model_type']
        if arch == 'mistral': arch = 'llama'
        kvs += model_kvs(cfg, arch)
        tensors = tensors_of(src, cfg, arch, qtype)
    else:
        kvs.append(kv('general.architecture', STRING, 'llama'))
    if os.path.exists(os.path.join(tok_dir, 'tokenizer.json')):
        kvs += tokenizer_kvs(tok_dir, cfg)
    write(out, kvs, tensors)


if __name__ == '__main__':
    main(sys.argv[1:])
