#!/usr/bin/env python3
"""Make tests/data/ggml_blocks.gguf: for every ggml block type tokenmill reads,
a tensor of random blocks (fp16 scales kept finite) and, beside it, the same
values dequantised by llama.cpp's own Python package (gguf-py's
gguf.quants.dequantize) as an F32 tensor "<name>.ref". Written by gguf-py's
GGUFWriter, with metadata of every value type, so the file also checks the
reader against the reference writer. Needs: pip install gguf numpy (only to
regenerate; the test reads the committed file)."""
import sys
import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

rng = np.random.default_rng(20261207)
TYPES = [Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.Q4_K, Q.Q5_K, Q.Q6_K]

def f16_bytes(n):
    return rng.uniform(-0.05, 0.05, n).astype(np.float16).view(np.uint8).reshape(n, 2)

def random_blocks(t, nblocks):
    bs, ts = gguf.GGML_QUANT_SIZES[t]
    raw = rng.integers(0, 256, size=(nblocks, ts), dtype=np.uint8)
    # fp16 fields: Q4_0/Q5_0/Q8_0 d at 0; Q4_1/Q5_1 d,m at 0,2; K: d,dmin at 0,2; Q6_K d at 208
    offs = {Q.Q4_0: [0], Q.Q5_0: [0], Q.Q8_0: [0], Q.Q4_1: [0, 2], Q.Q5_1: [0, 2],
            Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}.get(t, [])
    for o in offs:
        raw[:, o:o + 2] = f16_bytes(nblocks)
    return raw

def main(out):
    w = gguf.GGUFWriter(out, "test")
    w.add_uint8("t.u8", 200); w.add_int8("t.i8", -100); w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000); w.add_uint32("t.u32", 4000000000); w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 1.5); w.add_bool("t.bool", True); w.add_string("t.str", "héllo")
    w.add_uint64("t.u64", 2**40); w.add_int64("t.i64", -2**40); w.add_float64("t.f64", 0.1)
    w.add_array("t.arr_str", ["a", "", "ccc"]); w.add_array("t.arr_i32", [1, -2, 3])
    for t in TYPES:
        name = t.name.lower()
        if t in (Q.F32, Q.F16, Q.BF16):
            vals = rng.standard_normal(512).astype(np.float32)
            if t == Q.F32:
                w.add_tensor(name, vals.reshape(2, 256), raw_dtype=Q.F32)
                ref = vals
            elif t == Q.F16:
                h = vals.astype(np.float16)
                w.add_tensor(name, h.reshape(2, 256), raw_dtype=Q.F16)
                ref = h.astype(np.float32)
            else:
                b = gguf.quants.quantize(vals, Q.BF16)
                w.add_tensor(name, b.reshape(2, 512), raw_dtype=Q.BF16)
                ref = gguf.quants.dequantize(b, Q.BF16).reshape(-1)
        else:
            bs, ts = gguf.GGML_QUANT_SIZES[t]
            nb = 4 if bs == 256 else 32
            raw = random_blocks(t, nb)
            w.add_tensor(name, raw.reshape(2, nb // 2 * ts), raw_dtype=t)
            ref = gguf.quants.dequantize(raw.reshape(2, nb // 2 * ts), t).reshape(-1)
        w.add_tensor(name + ".ref", np.ascontiguousarray(ref, dtype=np.float32).reshape(2, -1), raw_dtype=Q.F32)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/ggml_blocks.gguf")
