#!/usr/bin/env python3
"""Write a Qwen2.5-0.5B-shaped model with random bf16 weights (for CPU speed
benchmarks only: the values are a tiled pseudo-random pattern, the text it
generates is meaningless). Pure python, no numpy.

usage: make_qwen05b_shape.py OUT_DIR [--layers N]
"""
import json, os, random, struct, sys

def main():
    out = sys.argv[1]
    layers = 24
    if "--layers" in sys.argv:
        layers = int(sys.argv[sys.argv.index("--layers") + 1])
    H, I, V, nh, nkv, hd = 896, 4864, 151936, 14, 2, 64
    cfg = {"vocab_size": V, "hidden_size": H, "num_hidden_layers": layers, "num_attention_heads": nh,
           "num_key_value_heads": nkv, "intermediate_size": I, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
           "max_position_embeddings": 32768, "tie_word_embeddings": True, "bos_token_id": 151643,
           "eos_token_id": 151645, "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"],
           "torch_dtype": "bfloat16", "hidden_act": "silu"}
    tensors = [("model.embed_tokens.weight", [V, H], 0.02), ("model.norm.weight", [H], None)]
    for l in range(layers):
        p = "model.layers.%d." % l
        tensors += [(p + "input_layernorm.weight", [H], None), (p + "post_attention_layernorm.weight", [H], None),
                    (p + "self_attn.q_proj.weight", [nh * hd, H], 0.03), (p + "self_attn.q_proj.bias", [nh * hd], 0.01),
                    (p + "self_attn.k_proj.weight", [nkv * hd, H], 0.03), (p + "self_attn.k_proj.bias", [nkv * hd], 0.01),
                    (p + "self_attn.v_proj.weight", [nkv * hd, H], 0.03), (p + "self_attn.v_proj.bias", [nkv * hd], 0.01),
                    (p + "self_attn.o_proj.weight", [H, nh * hd], 0.03), (p + "mlp.gate_proj.weight", [I, H], 0.03),
                    (p + "mlp.up_proj.weight", [I, H], 0.03), (p + "mlp.down_proj.weight", [H, I], 0.015)]
    rng = random.Random(1234)
    def bf16(x):
        return struct.unpack("<I", struct.pack("<f", x))[0] >> 16
    pat_n = (1 << 16) + 17  # prime-ish period so rows do not repeat in step
    pats = {}
    def pattern(std):
        if std not in pats:
            pats[std] = struct.pack("<%dH" % pat_n, *[bf16(rng.gauss(0.0, std)) for _ in range(pat_n)])
        return pats[std]
    one = struct.pack("<H", bf16(1.0))
    header, off = {}, 0
    for name, shape, _ in tensors:
        n = 1
        for d in shape: n *= d
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + 2 * n]}
        off += 2 * n
    hb = json.dumps(header).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb)
        for i, (name, shape, std) in enumerate(tensors):
            n = 1
            for d in shape: n *= d
            if std is None:
                f.write(one * n)
                continue
            pat, start, left = pattern(std), (i * 7919) % pat_n, 2 * n
            while left:
                chunk = pat[2 * start:][:left]
                f.write(chunk)
                left -= len(chunk)
                start = 0

if __name__ == "__main__":
    main()
