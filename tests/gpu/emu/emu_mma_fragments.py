# emu_mma_fragments.py — a GPU-free check of the warp-level index math of
# kernels/attention_prefill_fa2.cu and kernels/attention_decode_gqa.cu.
#
# Emulates ldmatrix (.x4, .trans) and mma.sync m16n8k16 with the fragment
# layouts of the PTX ISA (see kernels/attention_mma.cuh), runs the kernels'
# per-warp algorithm with the SAME index expressions (copied: keep them in
# step when the kernels change) in exact arithmetic (no bf16 rounding), and
# compares with direct softmax attention. Proves the fragment plumbing
# (addresses, masks, online softmax, warp merge, split combine), not the
# hardware: tests/gpu/test_cuda_fast_kernels.c does that on a GPU.
# Run: python3 tests/gpu/emu/emu_mma_fragments.py  (pure Python, seconds)
import math, random
random.seed(1)

def ldm(smem, addr_of_lane, trans=False):
    # smem: 2D list; addr_of_lane(lane) -> (row, col) of the 8-element row lane supplies
    rows = [addr_of_lane(l) for l in range(32)]
    mats = []
    for j in range(4):
        M = []
        for r in range(8):
            (ro, co) = rows[j*8 + r]
            M.append([smem[ro][co + c] for c in range(8)])
        mats.append(M)
    regs = []  # regs[lane][j] = (lo, hi)
    for lane in range(32):
        g, t = lane // 4, lane % 4
        rr = []
        for j in range(4):
            M = mats[j]
            if not trans:
                rr.append((M[g][2*t], M[g][2*t+1]))
            else:
                rr.append((M[2*t][g], M[2*t+1][g]))
        regs.append(rr)
    return regs

def mma(D, A, B0, B1):
    # D[lane] = [4 floats]; A[lane] = 4 regs of (lo,hi); B0/B1[lane] = (lo,hi)
    Am = [[0.0]*16 for _ in range(16)]
    Bm = [[0.0]*8 for _ in range(16)]
    for lane in range(32):
        g, t = lane // 4, lane % 4
        a = A[lane]
        Am[g][2*t], Am[g][2*t+1] = a[0]
        Am[g+8][2*t], Am[g+8][2*t+1] = a[1]
        Am[g][2*t+8], Am[g][2*t+9] = a[2]
        Am[g+8][2*t+8], Am[g+8][2*t+9] = a[3]
        Bm[2*t][g], Bm[2*t+1][g] = B0[lane]
        Bm[2*t+8][g], Bm[2*t+9][g] = B1[lane]
    for lane in range(32):
        g, t = lane // 4, lane % 4
        for e in range(4):
            r = g + (8 if e >= 2 else 0); c = 2*t + (e & 1)
            D[lane][e] += sum(Am[r][k]*Bm[k][c] for k in range(16))

def ref_attn(q, K, V, n):
    s = [sum(q[d]*K[p][d] for d in range(len(q))) for p in range(n)]
    m = max(s); e = [math.exp(x - m) for x in s]; S = sum(e)
    return [sum(e[p]*V[p][d] for p in range(n))/S for d in range(len(V[0]))]

def prefill(HDP, hd, qrows, qp0, Kall, Vall, scale):
    # one block, one head: qrows m x hd; keys Kall[p] for p < qp0+m (logical)
    BM = BN = 64; RS = HDP + 8
    m = len(qrows)
    sQ = [[(qrows[r][d] if (r < m and d < hd) else 0.0) for d in range(RS)] for r in range(BM)]
    n_kv = qp0 + m
    n_tiles = (n_kv + BN - 1)//BN
    out = [[None]*hd for _ in range(m)]
    sl2 = scale * 1.4426950408889634
    for warp in range(4):
        o = [[[0.0]*4 for _ in range(HDP//8)] for _ in range(32)]
        mm = [[-math.inf, -math.inf] for _ in range(32)]
        ll = [[0.0, 0.0] for _ in range(32)]
        for j in range(n_tiles):
            n0 = j*BN
            sK = [[(Kall[n0+r][c] if (n0 + r < n_kv and c < hd) else 0.0) for c in range(RS)] for r in range(BN)]
            sV = [[(Vall[n0+r][c] if (n0 + r < n_kv and c < hd) else 0.0) for c in range(RS)] for r in range(BN)]
            s = [[[0.0]*4 for _ in range(8)] for _ in range(32)]
            for kk in range(HDP//16):
                qh = ldm(sQ, lambda lane: (16*warp + (lane & 15), kk*16 + (lane >> 4)*8))
                for nb2 in range(4):
                    kb = ldm(sK, lambda lane: (nb2*16 + (lane & 7) + (lane >> 4)*8, kk*16 + ((lane >> 3) & 1)*8))
                    D0 = [s[l][2*nb2] for l in range(32)]; D1 = [s[l][2*nb2+1] for l in range(32)]
                    mma(D0, qh, [kb[l][0] for l in range(32)], [kb[l][1] for l in range(32)])
                    mma(D1, qh, [kb[l][2] for l in range(32)], [kb[l][3] for l in range(32)])
            pa_all = []
            for lane in range(32):
                g, t4 = lane >> 2, lane & 3
                r0 = 16*warp + g; r1 = r0 + 8
                qpos0 = qp0 + (r0 if r0 < m else m - 1); qpos1 = qp0 + (r1 if r1 < m else m - 1)
                if n0 + BN - 1 > qp0:
                    for nb in range(8):
                        c = n0 + 8*nb + 2*t4
                        if c > qpos0: s[lane][nb][0] = -math.inf
                        if c + 1 > qpos0: s[lane][nb][1] = -math.inf
                        if c > qpos1: s[lane][nb][2] = -math.inf
                        if c + 1 > qpos1: s[lane][nb][3] = -math.inf
            # quad max
            mx = []
            for lane in range(32):
                mx.append([max(max(s[lane][nb][0], s[lane][nb][1]) for nb in range(8)),
                           max(max(s[lane][nb][2], s[lane][nb][3]) for nb in range(8))])
            mxq = [[max(mx[(lane & ~3) + i][h] for i in range(4)) for h in range(2)] for lane in range(32)]
            pa = []
            for lane in range(32):
                mn = [max(mm[lane][h], mxq[lane][h]*sl2) for h in range(2)]
                b = [0.0 if x == -math.inf else x for x in mn]
                c = [2**(mm[lane][h] - b[h]) if mm[lane][h] != -math.inf else 0.0 for h in range(2)]
                mm[lane] = mn
                ll[lane] = [ll[lane][h]*c[h] for h in range(2)]
                for nb in range(HDP//8):
                    o[lane][nb] = [o[lane][nb][0]*c[0], o[lane][nb][1]*c[0], o[lane][nb][2]*c[1], o[lane][nb][3]*c[1]]
                p = [[0]*4 for _ in range(4)]
                for kk in range(4):
                    for half in range(2):
                        sv = s[lane][2*kk+half]
                        e = lambda x, bb: 0.0 if x == -math.inf else 2**(x*sl2 - bb)
                        u01 = (e(sv[0], b[0]), e(sv[1], b[0])); u23 = (e(sv[2], b[1]), e(sv[3], b[1]))
                        ll[lane][0] += u01[0] + u01[1]; ll[lane][1] += u23[0] + u23[1]
                        p[kk][2*half] = u01; p[kk][2*half+1] = u23
                pa.append(p)
            for kk in range(4):
                for nb2 in range(HDP//16):
                    vb = ldm(sV, lambda lane: (kk*16 + (lane & 7) + ((lane >> 3) & 1)*8, nb2*16 + (lane >> 4)*8), trans=True)
                    A = [pa[l][kk] for l in range(32)]
                    D0 = [o[l][2*nb2] for l in range(32)]; D1 = [o[l][2*nb2+1] for l in range(32)]
                    mma(D0, A, [vb[l][0] for l in range(32)], [vb[l][1] for l in range(32)])
                    mma(D1, A, [vb[l][2] for l in range(32)], [vb[l][3] for l in range(32)])
        for lane in range(32):
            g, t4 = lane >> 2, lane & 3
            L = [sum(ll[(lane & ~3) + i][h] for i in range(4)) for h in range(2)]
            r0 = 16*warp + g; r1 = r0 + 8
            for nb in range(HDP//8):
                col = 8*nb + 2*t4
                if col >= hd: continue
                if r0 < m: out[r0][col] = o[lane][nb][0]/L[0]; out[r0][col+1] = o[lane][nb][1]/L[0]
                if r1 < m: out[r1][col] = o[lane][nb][2]/L[1]; out[r1][col+1] = o[lane][nb][3]/L[1]
    return out

def check_prefill(HDP, hd, m, qp0):
    scale = 1/math.sqrt(hd)
    n_kv = qp0 + m
    K = [[random.uniform(-1,1) for _ in range(hd)] for _ in range(n_kv)]
    V = [[random.uniform(-1,1) for _ in range(hd)] for _ in range(n_kv)]
    Q = [[random.uniform(-2,2) for _ in range(hd)] for _ in range(m)]
    out = prefill(HDP, hd, Q, qp0, K, V, scale)
    err = 0
    for r in range(m):
        ref = ref_attn([x*scale for x in Q[r]], K, V, qp0 + r + 1)
        for d in range(hd):
            assert out[r][d] is not None, (r, d)
            err = max(err, abs(out[r][d] - ref[d]))
    print("prefill HDP", HDP, "hd", hd, "m", m, "qp0", qp0, "max err", err)
    assert err < 1e-9

check_prefill(64, 64, 5, 0)
check_prefill(64, 48, 37, 70)
check_prefill(64, 64, 64, 3)
check_prefill(128, 96, 9, 60)
def decode_block(HDP, hd, Qrows, K, V, k0, k1, scale):
    # returns per row (M, L, O[hd]) merged over the 4 warps (log2 units)
    BN = 64; RS = HDP + 8
    rows = len(Qrows)
    sQ = [[(Qrows[r][d] if (r < rows and d < hd) else 0.0) for d in range(RS)] for r in range(16)]
    n_tiles = (k1 - k0 + BN - 1)//BN if k1 > k0 else 0
    sl2 = scale * 1.4426950408889634
    W = []
    for warp in range(4):
        o = [[[0.0]*4 for _ in range(HDP//8)] for _ in range(32)]
        mm = [[-math.inf, -math.inf] for _ in range(32)]
        ll = [[0.0, 0.0] for _ in range(32)]
        for j in range(n_tiles):
            base = k0 + j*BN
            sK = [[(K[base+r][c] if (base + r < k1 and c < hd) else 0.0) for c in range(RS)] for r in range(BN)]
            sV = [[(V[base+r][c] if (base + r < k1 and c < hd) else 0.0) for c in range(RS)] for r in range(BN)]
            Kw = sK[16*warp:]; Vw = sV[16*warp:]
            n0 = base + 16*warp
            s = [[[0.0]*4 for _ in range(2)] for _ in range(32)]
            for kk in range(HDP//16):
                qh = ldm(sQ, lambda lane: (lane & 15, kk*16 + (lane >> 4)*8))
                kb = ldm(Kw, lambda lane: ((lane & 7) + (lane >> 4)*8, kk*16 + ((lane >> 3) & 1)*8))
                D0 = [s[l][0] for l in range(32)]; D1 = [s[l][1] for l in range(32)]
                mma(D0, qh, [kb[l][0] for l in range(32)], [kb[l][1] for l in range(32)])
                mma(D1, qh, [kb[l][2] for l in range(32)], [kb[l][3] for l in range(32)])
            for lane in range(32):
                t4 = lane & 3
                if n0 + 16 > k1:
                    for nb in range(2):
                        c = n0 + 8*nb + 2*t4
                        if c >= k1: s[lane][nb][0] = s[lane][nb][2] = -math.inf
                        if c + 1 >= k1: s[lane][nb][1] = s[lane][nb][3] = -math.inf
            mx = [[max(s[l][0][0], s[l][0][1], s[l][1][0], s[l][1][1]), max(s[l][0][2], s[l][0][3], s[l][1][2], s[l][1][3])] for l in range(32)]
            mxq = [[max(mx[(l & ~3) + i][h] for i in range(4)) for h in range(2)] for l in range(32)]
            pa = []
            for lane in range(32):
                mn = [max(mm[lane][h], mxq[lane][h]*sl2) for h in range(2)]
                b = [0.0 if x == -math.inf else x for x in mn]
                c = [2**(mm[lane][h] - b[h]) if mm[lane][h] != -math.inf else 0.0 for h in range(2)]
                mm[lane] = mn
                ll[lane] = [ll[lane][h]*c[h] for h in range(2)]
                for nb in range(HDP//8):
                    o[lane][nb] = [o[lane][nb][0]*c[0], o[lane][nb][1]*c[0], o[lane][nb][2]*c[1], o[lane][nb][3]*c[1]]
                e = lambda x, bb: 0.0 if x == -math.inf else 2**(x*sl2 - bb)
                p = [None]*4
                for half in range(2):
                    sv = s[lane][half]
                    u01 = (e(sv[0], b[0]), e(sv[1], b[0])); u23 = (e(sv[2], b[1]), e(sv[3], b[1]))
                    ll[lane][0] += u01[0] + u01[1]; ll[lane][1] += u23[0] + u23[1]
                    p[2*half] = u01; p[2*half+1] = u23
                pa.append(p)
            for nb2 in range(HDP//16):
                vb = ldm(Vw, lambda lane: ((lane & 7) + ((lane >> 3) & 1)*8, nb2*16 + (lane >> 4)*8), trans=True)
                D0 = [o[l][2*nb2] for l in range(32)]; D1 = [o[l][2*nb2+1] for l in range(32)]
                mma(D0, pa, [vb[l][0] for l in range(32)], [vb[l][1] for l in range(32)])
                mma(D1, pa, [vb[l][2] for l in range(32)], [vb[l][3] for l in range(32)])
        # to smem
        sO = [[0.0]*HDP for _ in range(16)]; sM = [0]*16; sL = [0]*16
        for lane in range(32):
            g, t4 = lane >> 2, lane & 3
            L = [sum(ll[(lane & ~3) + i][h] for i in range(4)) for h in range(2)]
            for nb in range(HDP//8):
                col = 8*nb + 2*t4
                sO[g][col], sO[g][col+1] = o[lane][nb][0], o[lane][nb][1]
                sO[g+8][col], sO[g+8][col+1] = o[lane][nb][2], o[lane][nb][3]
            if t4 == 0:
                sM[g], sM[g+8] = mm[lane]; sL[g], sL[g+8] = L
        W.append((sO, sM, sL))
    res = []
    for r in range(rows):
        M = max(W[w][1][r] for w in range(4))
        Lt = 0; O = [0.0]*hd
        for w in range(4):
            mw = W[w][1][r]
            f = 0.0 if mw == -math.inf else 2**(mw - M)
            Lt += W[w][2][r]*f
            for d in range(hd): O[d] += W[w][0][r][d]*f
        res.append((M, Lt, O))
    return res

def check_decode(HDP, hd, G, ctx, n_split):
    scale = 1/math.sqrt(hd)
    K = [[random.uniform(-1,1) for _ in range(hd)] for _ in range(ctx)]
    V = [[random.uniform(-1,1) for _ in range(hd)] for _ in range(ctx)]
    Q = [[random.uniform(-2,2) for _ in range(hd)] for _ in range(G)]
    per = (ctx + n_split - 1)//n_split; per = (per + 63)//64*64
    outs = [None]*G
    for hc in range((G + 15)//16):
        rows = min(16, G - hc*16)
        parts = []
        for z in range(n_split):
            k0 = z*per; k1 = min(ctx, k0 + per)
            parts.append(decode_block(HDP, hd, Q[hc*16:hc*16+rows], K, V, k0, k1, scale))
        for r in range(rows):
            if n_split == 1:
                M, L, O = parts[0][r]; outs[hc*16 + r] = [x/L for x in O]
            else:
                M = max(parts[z][r][0] for z in range(n_split))
                L = sum(parts[z][r][1]*2**(parts[z][r][0]-M) for z in range(n_split) if parts[z][r][0] != -math.inf)
                outs[hc*16 + r] = [sum(parts[z][r][2][d]*2**(parts[z][r][0]-M) for z in range(n_split) if parts[z][r][0] != -math.inf)/L for d in range(hd)]
    err = 0
    for h in range(G):
        ref = ref_attn([x*scale for x in Q[h]], K, V, ctx)
        err = max(err, max(abs(outs[h][d] - ref[d]) for d in range(hd)))
    print("decode HDP", HDP, "hd", hd, "G", G, "ctx", ctx, "splits", n_split, "err", err)
    assert err < 1e-9

check_decode(64, 64, 4, 1, 1)
check_decode(64, 48, 3, 150, 1)
check_decode(64, 64, 20, 70, 3)
check_decode(128, 128, 8, 200, 2)
check_decode(64, 64, 2, 10, 4)
