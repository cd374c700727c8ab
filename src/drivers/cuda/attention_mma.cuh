/*
 * attention_mma.cuh — the body of the register-resident tensor-core
 * attention kernel (attention_mma.cu), written once against an executor X
 * so that two can run it: the GPU (mma.sync, warp shuffles, __syncthreads)
 * and a CPU emulation of a thread block (tests/test_cuda_emu.cu),
 * which checks the fragment arithmetic on machines without a GPU.
 *
 * Same semantics as attention_tc.cu (packed variable-length sequences,
 * online softmax in base 2, causal and sliding-window masks that also bound
 * the key tiles visited, GQA, the relative-position bias table), same
 * cases (bf16, all query rows, head_dim 32/64/128); the difference is where
 * the tiles live. FlashAttention-2's layout: a block owns TQ = 64 queries of
 * one (sequence, head), each of its 4 warps 16 of them, and per key tile of
 * TK = 64 keys (K and V staged in shared memory):
 *   S (16 x 64, fp32)  = Q_w K^T   8 key groups x D/16 steps of
 *                                   mma.m16n8k16 (bf16 in, fp32 accumulate);
 *                                   Q_w stays in registers as A fragments
 *   online softmax in registers: a lane holds rows g and g + 8 of its warp's
 *                                   16 (g = lane / 4) at 16 keys each; row
 *                                   max and sum over the 4 lanes of a quad
 *   O (16 x D, fp32)  += P V       P's accumulator layout is the A fragment
 *                                   layout, so P never leaves registers
 * O is scaled by 1/l and stored once. Nothing goes through shared memory
 * but K and V (and Q once), against S, P and O each tile in attention_tc.
 *
 * Fragment layouts of mma.m16n8k16 .bf16 (PTX ISA, "Matrix Fragments for
 * mma.m16n8k16 with floating point type"), g = lane >> 2, t = lane & 3,
 * registers of two bf16 each, the lower index in the low half:
 *   A (16 x 16): a[0] = (row g, cols 2t, 2t+1)   a[1] = (row g+8, same cols)
 *                a[2] = (row g, cols 2t+8, 2t+9) a[3] = (row g+8, same cols)
 *   B (16 x 8):  b[0] = (rows 2t, 2t+1, col g)   b[1] = (rows 2t+8, 2t+9, col g)
 *   C (16 x 8, fp32): c[0], c[1] = (row g, cols 2t, 2t+1); c[2], c[3] = row g+8
 *
 * K and V tiles are double-buffered: while the warps compute on tile i,
 * tile i + 1 is on its way from global memory by cp.async (16 bytes a
 * thread, no registers, no wait until it is needed), so the loads of a
 * sequence's keys overlap its products instead of stalling every tile.
 *
 * Masks cost a compare chain per score; a warp whose rows all see every key
 * of a full tile (the interior of a long sequence) skips them.
 *
 * Shared memory: (TQ + 4 TK) x (D + 8) bf16 = 25, 45 or 85 KiB for D = 32,
 * 64, 128 (the row pad of 8 keeps a warp's 32-bit fragment loads on
 * distinct banks; 85 KiB is within every sm_80+ GPU's opt-in limit).
 *
 * The executor X provides: tid(), bx(), by() (threadIdx.x, blockIdx.x,
 * blockIdx.y); sync() (__syncthreads); shfl_xor(v, m) (within the warp);
 * mma(d, a, b) (d += A B on one warp's fragments); ldsm_x4(r, p) and
 * ldsm_x4_trans(r, p) (ldmatrix.m8n8.x4[.trans].b16: lane l gives the
 * address of row l % 8 of 8x8 tile l / 8; register j receives tile j's
 * elements (row l / 4, columns 2 (l % 4) + {0, 1}), or with .trans
 * (rows 2 (l % 4) + {0, 1}, column l / 4)); cp16(dst, src) (cp.async of
 * 16 bytes from global to shared memory: the data may land any time until
 * the thread's wait), commit() (cp.async.commit_group: closes the copies
 * issued since the last commit into a group) and wait<N>() (until at most
 * the N newest groups are pending; other threads' copies are visible after
 * the barrier that follows); all(p) (__all_sync over the warp).
 */
#ifndef EMBER_DRIVERS_CUDA_ATTENTION_MMA_CUH
#define EMBER_DRIVERS_CUDA_ATTENTION_MMA_CUH

#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <vector_functions.h>
#include <vector_types.h>

#include "drivers/cuda/cuda_kernels.h"
#include "drivers/cuda/ecu_common.cuh"

/* How the body's functions are compiled: device code normally; the CPU
 * emulation defines it as host code before including this file. */
#ifndef ECU_BODY_FN
#define ECU_BODY_FN static __device__ __forceinline__
#endif

/* Loops over fragments must unroll (fragments indexed at run time live in
 * local memory); host compilers of the emulation do not know the pragma. */
#ifdef __CUDA_ARCH__
#define MMA_UNROLL _Pragma("unroll")
#else
#define MMA_UNROLL
#endif

#define MMA_TQ 64
#define MMA_TK 64
#define MMA_NWARP 4
#define MMA_LOG2E 1.44269504088896341f

template <int D>
struct mma_layout {
    static constexpr int LDH = D + 8; /* bf16 row stride of Q, K, V in shared memory */
    /* Q, then two buffers of K and V */
    static constexpr size_t bytes = (size_t)(MMA_TQ + 4 * MMA_TK) * LDH * 2;
};

ECU_BODY_FN int mma_imin(int a, int b) { return a < b ? a : b; }
ECU_BODY_FN int mma_imax(int a, int b) { return a > b ? a : b; }

/* Two consecutive bf16 of shared memory (an even index of a row, so 4-byte
 * aligned): one 32-bit load on the GPU; memcpy in the CPU emulation, where
 * the pun would be undefined behaviour. */
ECU_BODY_FN uint32_t mma_ld2(const __nv_bfloat16 *p) {
#ifdef __CUDA_ARCH__
    return *(const uint32_t *)p;
#else
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
#endif
}

/* Stores two bf16 (an even index of an output row: 4-byte aligned). */
ECU_BODY_FN void mma_st2(__nv_bfloat16 *p, uint32_t v) {
#ifdef __CUDA_ARCH__
    *(uint32_t *)p = v;
#else
    memcpy((void *)p, &v, 4);
#endif
}

/* Two bf16 of one column, rows r and r + 1 (V as a B operand). */
ECU_BODY_FN uint32_t mma_ld_col2(const __nv_bfloat16 *p, int ld) {
    uint16_t lo, hi;
    memcpy(&lo, p, 2);
    memcpy(&hi, p + ld, 2);
    return (uint32_t)lo | (uint32_t)hi << 16;
}

/* Starts the copies of rows [0, n) of a TK- or TQ-row tile (src: row 0,
 * stride ld elements) into shared memory (stride LDH) and zeroes rows
 * [n, rows): V rows past the keys must be finite (P is 0 there, and
 * 0 x NaN is NaN), K and Q rows are zeroed for the same peace of mind.
 * A thread copies 16 bytes at a time. */
template <int D, class X>
ECU_BODY_FN void mma_stage_rows(const __nv_bfloat16 *src, int64_t ld, int n, int rows,
                                __nv_bfloat16 *dst, X &x) {
    constexpr int LDH = D + 8, C8 = D / 8;
    for (int i = x.tid(); i < rows * C8; i += MMA_NWARP * 32) {
        const int r = i / C8, c = (i % C8) * 8;
        if (r < n)
            x.cp16(dst + r * LDH + c, src + (int64_t)r * ld + c);
        else
            *(uint4 *)(dst + r * LDH + c) = make_uint4(0, 0, 0, 0);
    }
}

/* The scores of one key tile, in place: scaled to base 2, plus the
 * relative-position bias; with MASKED, keys a row may not see (past the
 * tile's nk keys, past the sequence, causal, outside the window) become
 * -inf. tmax[h] gets the maximum of row h's scores in this lane. */
template <bool MASKED, int NKT>
ECU_BODY_FN void mma_scores(float (&s)[NKT][4], float tmax[2], const ecu_attn &a, int t, int32_t k0,
                            int nk, const int32_t qi[2], const bool live[2], float qscale,
                            int64_t rel_base) {
    MMA_UNROLL
    for (int n = 0; n < NKT; n++)
        MMA_UNROLL
        for (int e = 0; e < 4; e++) {
            const int h = e >> 1, col = n * 8 + 2 * t + (e & 1);
            const int32_t j = k0 + col;
            bool ok = true;
            if (MASKED) {
                ok = live[h] && col < nk;
                if (a.causal)
                    ok = ok && j <= qi[h];
                if (a.window > 0)
                    ok = ok && j >= qi[h] - a.window && j <= qi[h] + a.window;
            }
            float v = -INFINITY;
            if (ok) {
                v = s[n][e] * qscale;
                if (a.rel)
                    v += a.rel[rel_base + j - qi[h]] * MMA_LOG2E;
            }
            s[n][e] = v;
            tmax[h] = fmaxf(tmax[h], v);
        }
}

/* One block: queries [tile * TQ, +TQ) of sequence bx / tiles_per_seq,
 * head by. LDSM: K and V fragments come from ldmatrix (.trans for V), four
 * 8x8 tiles per instruction, instead of one 32-bit (K) or two 16-bit (V)
 * shared loads per register. */
template <int D, bool LDSM, class X>
ECU_BODY_FN void attention_mma_body(const ecu_attn &a, int32_t tiles_per_seq, unsigned char *smem,
                                   X &x) {
    typedef mma_layout<D> L;
    constexpr int LDH = L::LDH, KSTEPS = D / 16, DTILES = D / 8;
    constexpr int NKT = MMA_TK / 8; /* key groups of 8 per tile */
    /* Q (TQ x LDH), then buffer b's K at KV0 + b * BUF and its V at
     * KV0 + b * BUF + TK * LDH (TK x LDH each) */
    __nv_bfloat16 *Qs = (__nv_bfloat16 *)smem;
    __nv_bfloat16 *KV0 = Qs + MMA_TQ * LDH;
    constexpr int BUF = 2 * MMA_TK * LDH;

    const int tid = x.tid(), lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    const int32_t sq = x.bx() / tiles_per_seq, tile = x.bx() % tiles_per_seq;
    const int32_t head = x.by(), kvh = head / (a.n_heads / a.n_kv_heads);
    const int64_t first = a.start_dev[sq];
    const int32_t len = a.start_dev[sq + 1] - (int32_t)first;
    const int32_t q0 = tile * MMA_TQ;
    if (q0 >= len)
        return; /* the whole block, before any barrier */
    const int32_t nq = mma_imin(MMA_TQ, len - q0);

    /* the lane's two rows: positions in the sequence, live or past its end */
    const int32_t qi[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
    const bool live[2] = {qi[0] < len, qi[1] < len};
    const bool warp_live = warp * 16 < nq;

    /* keys some query of the block can see */
    int32_t k_lo, k_hi;
    ecu_key_range(a.causal, a.window, q0, q0 + nq, len, &k_lo, &k_hi);
    const float qscale = a.scale * MMA_LOG2E;
    /* rel[rel_base + j - qi] is the bias of (qi, j) */
    const int64_t rel_base = (int64_t)head * a.rel_ld + a.rel_span - 1;
    const __nv_bfloat16 *Q = (const __nv_bfloat16 *)a.q + (first + q0) * a.ldq + (int64_t)head * D;
    const __nv_bfloat16 *K = (const __nv_bfloat16 *)a.k + first * a.ldkv + (int64_t)kvh * D;
    const __nv_bfloat16 *V = (const __nv_bfloat16 *)a.v + first * a.ldkv + (int64_t)kvh * D;

    /* group 0: the Q tile and the first key tile (buffer 0) */
    mma_stage_rows<D>(Q, a.ldq, nq, MMA_TQ, Qs, x);
    if (k_lo < k_hi) {
        const int nk0 = mma_imin(MMA_TK, k_hi - k_lo);
        mma_stage_rows<D>(K + (int64_t)k_lo * a.ldkv, a.ldkv, nk0, MMA_TK, KV0, x);
        mma_stage_rows<D>(V + (int64_t)k_lo * a.ldkv, a.ldkv, nk0, MMA_TK, KV0 + MMA_TK * LDH, x);
    }
    x.commit();
    x.template wait<0>();
    x.sync();

    /* this warp's 16 query rows as A fragments, one per 16 dims */
    uint32_t qf[KSTEPS][4];
    const __nv_bfloat16 *Qw = Qs + warp * 16 * LDH;
    MMA_UNROLL
    for (int kk = 0; kk < KSTEPS; kk++) {
        qf[kk][0] = mma_ld2(Qw + g * LDH + kk * 16 + 2 * t);
        qf[kk][1] = mma_ld2(Qw + (g + 8) * LDH + kk * 16 + 2 * t);
        qf[kk][2] = mma_ld2(Qw + g * LDH + kk * 16 + 8 + 2 * t);
        qf[kk][3] = mma_ld2(Qw + (g + 8) * LDH + kk * 16 + 8 + 2 * t);
    }

    float o[DTILES][4];
    MMA_UNROLL
    for (int n = 0; n < DTILES; n++)
        o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f}; /* l: this lane's part */

    int buf = 0;
    for (int32_t k0 = k_lo; k0 < k_hi; k0 += MMA_TK, buf ^= 1) {
        const int nk = mma_imin(MMA_TK, k_hi - k0);
        /* every warp is done with the other buffer (the previous tile):
         * start the next tile's copies into it, then wait for this one's */
        x.sync();
        const int32_t k1 = k0 + MMA_TK;
        if (k1 < k_hi) {
            const int nk1 = mma_imin(MMA_TK, k_hi - k1);
            __nv_bfloat16 *next = KV0 + (buf ^ 1) * BUF;
            mma_stage_rows<D>(K + (int64_t)k1 * a.ldkv, a.ldkv, nk1, MMA_TK, next, x);
            mma_stage_rows<D>(V + (int64_t)k1 * a.ldkv, a.ldkv, nk1, MMA_TK, next + MMA_TK * LDH, x);
        }
        x.commit();            /* possibly empty: one group per tile keeps the count */
        x.template wait<1>();  /* this tile's group has landed (this thread's part) */
        x.sync();              /* ... and every thread's */
        if (!warp_live)
            continue; /* warp-uniform; the barriers above are met every tile */
        const __nv_bfloat16 *Ks = KV0 + buf * BUF, *Vs = Ks + MMA_TK * LDH;

        /* a lane whose two rows see all TK keys of this tile needs no mask */
        const bool unmasked = nk == MMA_TK && live[1] &&
                              (!a.causal || k0 + MMA_TK - 1 <= qi[0]) &&
                              (a.window <= 0 || (k0 >= qi[1] - a.window &&
                                                 k0 + MMA_TK - 1 <= qi[0] + a.window));

        /* S = Q_w K^T: key group n is the B operand K[8n + g][dims] */
        float s[NKT][4];
        MMA_UNROLL
        for (int n = 0; n < NKT; n++) {
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
            if (LDSM) {
                /* two 16-dim steps per ldmatrix.x4: matrix j (lanes 8j ..
                 * 8j+7 give its rows) is keys 8n .. 8n+7 x dims 16kk + 8j */
                const __nv_bfloat16 *src = Ks + (n * 8 + (lane & 7)) * LDH + 8 * (lane >> 3);
                MMA_UNROLL
                for (int kk = 0; kk < KSTEPS; kk += 2) {
                    uint32_t b[4];
                    x.ldsm_x4(b, src + kk * 16);
                    x.mma(s[n], qf[kk], b);
                    x.mma(s[n], qf[kk + 1], b + 2);
                }
            } else {
                const __nv_bfloat16 *krow = Ks + (n * 8 + g) * LDH + 2 * t;
                MMA_UNROLL
                for (int kk = 0; kk < KSTEPS; kk++) {
                    const uint32_t b[2] = {mma_ld2(krow + kk * 16), mma_ld2(krow + kk * 16 + 8)};
                    x.mma(s[n], qf[kk], b);
                }
            }
        }

        /* masks, scale (base 2), bias; the tile's row maxima. The mask
         * tests are skipped when no lane of the warp needs them (a
         * warp-uniform branch: per-lane it would only predicate them) */
        float tmax[2] = {-INFINITY, -INFINITY};
        if (x.all(unmasked))
            mma_scores<false, NKT>(s, tmax, a, t, k0, nk, qi, live, qscale, rel_base);
        else
            mma_scores<true, NKT>(s, tmax, a, t, k0, nk, qi, live, qscale, rel_base);
        float corr[2];
        for (int h = 0; h < 2; h++) {
            tmax[h] = fmaxf(tmax[h], x.shfl_xor(tmax[h], 1));
            tmax[h] = fmaxf(tmax[h], x.shfl_xor(tmax[h], 2));
            const float m_new = fmaxf(m[h], tmax[h]);
            /* while the row has seen no key m stays -inf: O and l are 0 */
            corr[h] = m_new == -INFINITY ? 1.0f : exp2f(m[h] - m_new);
            m[h] = m_new;
        }
        float psum[2] = {0.0f, 0.0f};
        MMA_UNROLL
        for (int n = 0; n < NKT; n++)
            MMA_UNROLL
            for (int e = 0; e < 4; e++) {
                const int h = e >> 1;
                const float p = m[h] == -INFINITY ? 0.0f : exp2f(s[n][e] - m[h]);
                s[n][e] = p;
                psum[h] += p;
            }
        l[0] = l[0] * corr[0] + psum[0];
        l[1] = l[1] * corr[1] + psum[1];
        MMA_UNROLL
        for (int n = 0; n < DTILES; n++) {
            o[n][0] *= corr[0];
            o[n][1] *= corr[0];
            o[n][2] *= corr[1];
            o[n][3] *= corr[1];
        }

        /* O += P V: keys 16kk .. 16kk+15 are key groups 2kk and 2kk+1 */
        MMA_UNROLL
        for (int kk = 0; kk < MMA_TK / 16; kk++) {
            const uint32_t pa[4] = {ecu_pack_bf16x2(s[2 * kk][0], s[2 * kk][1]),
                                    ecu_pack_bf16x2(s[2 * kk][2], s[2 * kk][3]),
                                    ecu_pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                    ecu_pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
            if (LDSM) {
                /* two 8-dim tiles per ldmatrix.x4.trans: matrix j is keys
                 * 16kk + 8 (j & 1) .. + 7 x dims 8 (n + (j >> 1)), transposed
                 * into B fragments */
                const __nv_bfloat16 *src =
                    Vs + (kk * 16 + 8 * ((lane >> 3) & 1) + (lane & 7)) * LDH + 8 * (lane >> 4);
                MMA_UNROLL
                for (int n = 0; n < DTILES; n += 2) {
                    uint32_t b[4];
                    x.ldsm_x4_trans(b, src + n * 8);
                    x.mma(o[n], pa, b);
                    x.mma(o[n + 1], pa, b + 2);
                }
            } else {
                const __nv_bfloat16 *vrow = Vs + (kk * 16 + 2 * t) * LDH + g;
                MMA_UNROLL
                for (int n = 0; n < DTILES; n++) {
                    const uint32_t b[2] = {mma_ld_col2(vrow + n * 8, LDH),
                                           mma_ld_col2(vrow + 8 * LDH + n * 8, LDH)};
                    x.mma(o[n], pa, b);
                }
            }
        }
    }
    if (!warp_live)
        return;
    for (int h = 0; h < 2; h++) {
        l[h] += x.shfl_xor(l[h], 1);
        l[h] += x.shfl_xor(l[h], 2);
    }
    for (int h = 0; h < 2; h++) {
        if (!live[h])
            continue;
        const float inv = l[h] > 0.0f ? 1.0f / l[h] : 0.0f;
        __nv_bfloat16 *O = (__nv_bfloat16 *)a.out + (first + qi[h]) * a.ldo + (int64_t)head * D;
        MMA_UNROLL
        for (int n = 0; n < DTILES; n++) {
            mma_st2(O + n * 8 + 2 * t, ecu_pack_bf16x2(o[n][2 * h] * inv, o[n][2 * h + 1] * inv));
        }
    }
}

#endif
