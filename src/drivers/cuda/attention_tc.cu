/*
 * attention_tc.cu — the tensor-core attention kernel: bf16 activations,
 * all query rows, head_dim 32, 64 or 128. Everything else (fp32
 * activations, first/last-token rows, other head sizes) runs the SIMT
 * kernel of attention.cu, which this one matches in semantics: packed
 * variable-length sequences, online softmax in base 2, causal and sliding
 * window masks that also bound the key tiles visited, GQA, and the
 * relative-position bias table.
 *
 * A block owns TQ = 64 queries of one (sequence, head); each of its 4 warps
 * owns 16 of them. Per key tile of TK = 64 keys:
 *   S (16 x 64, fp32)  = Q_w (16 x D, bf16) . K^T      WMMA 16x16x16
 *   softmax: a lane pair per query row (32 columns each): mask, running
 *            max m and sum l, P = exp2(S - m) in bf16, O row *= exp2(m_old - m)
 *   O (16 x D, fp32)  += P (16 x 64, bf16) . V         WMMA, O kept in smem
 * so memory is O(tile) for any length (an 8,192-token ModernBERT input or a
 * 32K-token Qwen3 one), and products run on tensor cores with fp32
 * accumulation. Q, K and V move global -> shared in 16-byte vectors; the
 * launcher checks the alignment that needs and otherwise declines (the
 * caller then runs the SIMT kernel).
 *
 * Shared memory (bytes): (TQ + 2 TK)(D + 8) 2 + 4 warps x 16 x [(TK + 4) 4
 * + (TK + 8) 2 + (D + 4) 4]: 51 KiB for D = 32, 72 KiB for 64, 110 KiB for
 * 128 (above the 48 KiB default: the launcher opts in).
 */
#include <math.h>
#include <mma.h>
#include <stdlib.h>

#include "drivers/cuda/cuda_kernels.h"
#include "drivers/cuda/ecu_common.cuh"

using namespace nvcuda;

#define TQ 64
#define TK 64
#define NWARP 4
#define LOG2E 1.44269504088896341f

template <int D>
struct tc_layout {
    static constexpr int LDH = D + 8;  /* bf16 rows of Q, K, V (16-byte steps)   */
    static constexpr int LDS = TK + 4; /* fp32 scores                             */
    static constexpr int LDP = TK + 8; /* bf16 probabilities                      */
    static constexpr int LDO = D + 4;  /* fp32 output accumulator                 */
    static constexpr size_t bytes = (size_t)(TQ + 2 * TK) * LDH * 2 +
                                    (size_t)NWARP * 16 * (LDS * 4 + LDP * 2 + LDO * 4);
};

template <int D>
__global__ void __launch_bounds__(NWARP * 32)
k_attention_tc(ecu_attn a, int32_t tiles_per_seq) {
    typedef tc_layout<D> L;
    extern __shared__ __align__(128) unsigned char smem_raw[];
    __nv_bfloat16 *Qs = (__nv_bfloat16 *)smem_raw;         /* TQ x LDH        */
    __nv_bfloat16 *Ks = Qs + TQ * L::LDH;                   /* TK x LDH        */
    __nv_bfloat16 *Vs = Ks + TK * L::LDH;                   /* TK x LDH        */
    float *Ss = (float *)(Vs + TK * L::LDH);                /* warps x 16 x LDS */
    __nv_bfloat16 *Ps = (__nv_bfloat16 *)(Ss + NWARP * 16 * L::LDS);
    float *Os = (float *)(Ps + NWARP * 16 * L::LDP);        /* warps x 16 x LDO */

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int32_t sq = blockIdx.x / tiles_per_seq, tile = blockIdx.x % tiles_per_seq;
    const int32_t head = blockIdx.y, kvh = head / (a.n_heads / a.n_kv_heads);
    const int64_t first = a.start_dev[sq];
    const int32_t len = a.start_dev[sq + 1] - (int32_t)first;
    const int32_t q0 = tile * TQ;
    if (q0 >= len)
        return; /* the whole block, before any barrier */
    const int32_t nq = min(TQ, len - q0);
    constexpr int C8 = D / 8; /* 16-byte chunks per row */

    const __nv_bfloat16 *Q = (const __nv_bfloat16 *)a.q + (first + q0) * a.ldq + (int64_t)head * D;
    for (int i = threadIdx.x; i < TQ * C8; i += blockDim.x) {
        const int r = i / C8, c = (i % C8) * 8;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (r < nq)
            v = *(const uint4 *)(Q + (int64_t)r * a.ldq + c);
        *(uint4 *)(Qs + r * L::LDH + c) = v;
    }
    float *Sw = Ss + warp * 16 * L::LDS, *Ow = Os + warp * 16 * L::LDO;
    __nv_bfloat16 *Pw = Ps + warp * 16 * L::LDP;
    for (int i = lane; i < 16 * L::LDO; i += 32)
        Ow[i] = 0.0f;

    /* this lane's query row (of the warp's 16) and half of the columns */
    const int row = lane >> 1, half = lane & 1;
    const int32_t qi = q0 + warp * 16 + row; /* position in the sequence */
    const bool row_live = warp * 16 + row < nq;
    const bool warp_live = warp * 16 < nq;
    float m = -INFINITY, l = 0.0f;

    /* keys some query of the block can see */
    int32_t k_lo, k_hi;
    ecu_key_range(a.causal, a.window, q0, q0 + nq, len, &k_lo, &k_hi);
    const float qscale = a.scale * LOG2E;
    const float *rel = a.rel ? a.rel + (int64_t)head * a.rel_ld + a.rel_span - 1 - qi : NULL;
    const __nv_bfloat16 *K = (const __nv_bfloat16 *)a.k + first * a.ldkv + (int64_t)kvh * D;
    const __nv_bfloat16 *V = (const __nv_bfloat16 *)a.v + first * a.ldkv + (int64_t)kvh * D;

    for (int32_t k0 = k_lo; k0 < k_hi; k0 += TK) {
        const int nk = min(TK, k_hi - k0);
        __syncthreads(); /* every warp is done with the previous K and V */
        for (int i = threadIdx.x; i < TK * C8; i += blockDim.x) {
            const int r = i / C8, c = (i % C8) * 8;
            uint4 kv = make_uint4(0, 0, 0, 0), vv = kv;
            if (r < nk) {
                kv = *(const uint4 *)(K + (int64_t)(k0 + r) * a.ldkv + c);
                vv = *(const uint4 *)(V + (int64_t)(k0 + r) * a.ldkv + c);
            }
            *(uint4 *)(Ks + r * L::LDH + c) = kv;
            *(uint4 *)(Vs + r * L::LDH + c) = vv;
        }
        __syncthreads();
        if (!warp_live)
            continue; /* warp-uniform; the barrier above is met every tile */

        /* S = Q_w K^T: K rows in shared memory are K^T's columns */
        for (int n = 0; n < TK / 16; n++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> s;
            wmma::fill_fragment(s, 0.0f);
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> qa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> kb;
                wmma::load_matrix_sync(qa, Qs + warp * 16 * L::LDH + kk * 16, L::LDH);
                wmma::load_matrix_sync(kb, Ks + n * 16 * L::LDH + kk * 16, L::LDH);
                wmma::mma_sync(s, qa, kb, s);
            }
            wmma::store_matrix_sync(Sw + n * 16, s, L::LDS, wmma::mem_row_major);
        }
        __syncwarp();

        /* online softmax of this lane's 32 scores (base 2) */
        float sv[32];
        float tmax = -INFINITY;
#pragma unroll
        for (int c = 0; c < 32; c++) {
            const int col = half * 32 + c;
            const int32_t j = k0 + col;
            bool ok = row_live && col < nk;
            if (a.causal)
                ok = ok && j <= qi;
            if (a.window > 0)
                ok = ok && j >= qi - a.window && j <= qi + a.window;
            float x = -INFINITY;
            if (ok) {
                x = Sw[row * L::LDS + col] * qscale;
                if (rel)
                    x += rel[j] * LOG2E;
            }
            sv[c] = x;
            tmax = fmaxf(tmax, x);
        }
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        const float m_new = fmaxf(m, tmax);
        float corr = 1.0f, psum = 0.0f;
        if (m_new != -INFINITY) {
            corr = exp2f(m - m_new); /* 0 while m is -inf: O and l are 0 then */
#pragma unroll
            for (int c = 0; c < 32; c++) {
                const float p = exp2f(sv[c] - m_new); /* masked: exp2(-inf) = 0 */
                psum += p;
                Pw[row * L::LDP + half * 32 + c] = __float2bfloat16_rn(p);
            }
        } else {
#pragma unroll
            for (int c = 0; c < 32; c++)
                Pw[row * L::LDP + half * 32 + c] = __float2bfloat16_rn(0.0f);
        }
        psum += __shfl_xor_sync(0xffffffffu, psum, 1);
        l = l * corr + psum;
        m = m_new;
        if (corr != 1.0f)
            for (int c = half * (D / 2); c < (half + 1) * (D / 2); c++)
                Ow[row * L::LDO + c] *= corr;
        __syncwarp();

        /* O += P V */
        for (int n = 0; n < D / 16; n++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> o;
            wmma::load_matrix_sync(o, Ow + n * 16, L::LDO, wmma::mem_row_major);
#pragma unroll
            for (int kk = 0; kk < TK / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> pa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> vb;
                wmma::load_matrix_sync(pa, Pw + kk * 16, L::LDP);
                wmma::load_matrix_sync(vb, Vs + kk * 16 * L::LDH + n * 16, L::LDH);
                wmma::mma_sync(o, pa, vb, o);
            }
            wmma::store_matrix_sync(Ow + n * 16, o, L::LDO, wmma::mem_row_major);
        }
        __syncwarp();
    }
    if (!row_live)
        return;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    __nv_bfloat16 *O = (__nv_bfloat16 *)a.out + (first + qi) * a.ldo + (int64_t)head * D;
    for (int c = half * (D / 2); c < (half + 1) * (D / 2); c++)
        O[c] = __float2bfloat16_rn(Ow[row * L::LDO + c] * inv);
}

template <int D>
static int launch_tc(cudaStream_t s, const ecu_attn *a) {
    const int32_t tiles = (a->max_len + TQ - 1) / TQ;
    return ecu_launch_attention(k_attention_tc<D>, (int64_t)a->n_seqs * tiles, a->n_heads,
                                NWARP * 32, tc_layout<D>::bytes, s, *a, tiles);
}

static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* -1: not this kernel's case (the caller runs the SIMT one); else the
 * launch status. */
extern "C" int ecu_attention_tc(cudaStream_t s, const ecu_attn *a) {
    const int d = a->head_dim;
    if (!a->bf16 || a->rows != 0 || (d != 32 && d != 64 && d != 128) || a->ldq % 8 ||
        a->ldkv % 8 || !aligned16(a->q) || !aligned16(a->k) || !aligned16(a->v))
        return -1;
    switch (d) {
    case 32: return launch_tc<32>(s, a);
    case 64: return launch_tc<64>(s, a);
    default: return launch_tc<128>(s, a);
    }
}
