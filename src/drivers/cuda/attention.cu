/*
 * attention.cu — variable-length scaled dot-product attention over packed
 * sequences, flash-attention style: each block owns BQ queries of one
 * (sequence, head), streams the keys and values through shared memory in
 * tiles of BK = 32 and keeps an online softmax (running max m, sum l,
 * output o) in registers, so memory is O(tile) whatever the length.
 *
 * SIMT version (fp32 FMA, no tensor cores): a warp owns QW = 4 queries;
 * lane j scores key j of the tile against each of them, the warp reduces the
 * tile max and sum with shuffles, and for the output lane j owns columns j,
 * j + 32, ... and reads the probabilities of the 32 keys by shuffle.
 *
 * Grid: x = n_seqs * ceil(max_len / BQ) (tiles past a shorter sequence's
 * end return at once: the backend sorts inputs by length, so batches are
 * nearly uniform), y = heads. With rows FIRST/LAST one query per sequence:
 * x = n_seqs, and only warp 0's first query slot is live.
 *
 * A tensor-core kernel takes the common case (bf16, all rows, head_dim
 * 32/64/128): the WMMA one (attention_tc.cu) by default, the mma.sync one
 * (attention_mma.cu) with EMBER_CUDA_ATTENTION=mma; this one runs the rest
 * (and everything with EMBER_CUDA_ATTENTION=simt).
 *
 * Keys of query i: j <= i when causal, |i - j| <= window when window > 0;
 * a block visits only the key tiles that some of its queries can see.
 * GQA: query head h reads key/value head h / (n_heads / n_kv_heads).
 *
 * Shared memory: Q tile BQ x D, K and V tiles BK x (D + 1) in fp32 (the +1
 * makes lane j's walk along row j conflict-free); D = 256 needs 82 KiB,
 * above the 48 KiB default, so the launcher opts in.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/cuda/cuda_kernels.h"
#include "drivers/cuda/ecu_common.cuh"

#define BK 32
#define QW 4        /* queries per warp          */
#define WARPS 4     /* warps per block           */
#define BQ (QW * WARPS)

static size_t attn_smem(int d) {
    return sizeof(float) * ((size_t)BQ * (size_t)d + 2u * BK * (size_t)(d + 1));
}

/* NC = ceil(D / 32) output columns per lane (2, 4 or 8). */
template <typename T, int NC>
__global__ void __launch_bounds__(WARPS * 32)
k_attention(ecu_attn a, int32_t tiles_per_seq) {
    extern __shared__ float smem[];
    const int d = a.head_dim, dp = d + 1;
    float *Qs = smem;              /* BQ x d, pre-scaled by scale * log2(e) */
    float *Ks = Qs + BQ * d;       /* BK x dp                                 */
    float *Vs = Ks + BK * dp;      /* BK x dp                                 */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int compact = a.rows != 0;
    const int32_t sq = blockIdx.x / tiles_per_seq, tile = blockIdx.x % tiles_per_seq;
    const int32_t head = blockIdx.y, kvh = head / (a.n_heads / a.n_kv_heads);
    const int64_t first = a.start_dev[sq];
    const int32_t len = a.start_dev[sq + 1] - (int32_t)first;
    /* positions [q0, q1) of this block's queries within the sequence */
    int32_t q0 = tile * BQ, q1 = min(len, q0 + BQ);
    if (compact) {
        q0 = a.rows == 1 ? 0 : len - 1;
        q1 = q0 + 1;
    }
    if (len <= 0 || q0 >= len)
        return; /* the whole block: no barrier has been reached */
    const int nq = q1 - q0;

    /* Q tile; rows of q and out: the token's own, or the sequence's (compact) */
    const float qscale = a.scale * 1.44269504088896341f; /* softmax in base 2 */
    const T *Q = (const T *)a.q;
    for (int i = threadIdx.x; i < BQ * d; i += blockDim.x) {
        int r = i / d, c = i % d;
        float v = 0.0f;
        if (r < nq) {
            int64_t row = compact ? sq : first + q0 + r;
            v = ecu_ld(Q + row * a.ldq + (int64_t)head * d + c) * qscale;
        }
        Qs[i] = v;
    }

    /* keys some query of [q0, q1) can see */
    int32_t k_lo, k_hi;
    ecu_key_range(a.causal, a.window, q0, q1, len, &k_lo, &k_hi);

    float m[QW], l[QW], o[QW][NC];
    for (int qi = 0; qi < QW; qi++) {
        m[qi] = -INFINITY;
        l[qi] = 0.0f;
        for (int c = 0; c < NC; c++)
            o[qi][c] = 0.0f;
    }
    const T *K = (const T *)a.k + first * a.ldkv + (int64_t)kvh * d;
    const T *V = (const T *)a.v + first * a.ldkv + (int64_t)kvh * d;
    for (int32_t k0 = k_lo; k0 < k_hi; k0 += BK) {
        const int nk = min(BK, k_hi - k0);
        __syncthreads(); /* the previous tile has been read */
        for (int i = threadIdx.x; i < BK * d; i += blockDim.x) {
            int r = i / d, c = i % d;
            float kv = 0.0f, vv = 0.0f;
            if (r < nk) {
                kv = ecu_ld(K + (int64_t)(k0 + r) * a.ldkv + c);
                vv = ecu_ld(V + (int64_t)(k0 + r) * a.ldkv + c);
            }
            Ks[r * dp + c] = kv;
            Vs[r * dp + c] = vv;
        }
        __syncthreads();
        const int32_t j = k0 + lane; /* this lane's key */
        for (int qi = 0; qi < QW; qi++) {
            const int qr = warp * QW + qi;
            if (qr >= nq)
                break; /* warp-uniform */
            const int32_t i = q0 + qr;
            bool ok = lane < nk;
            if (a.causal)
                ok = ok && j <= i;
            if (a.window > 0)
                ok = ok && j >= i - a.window && j <= i + a.window;
            float sc = -INFINITY;
            if (ok) {
                const float *qrow = Qs + qr * d, *krow = Ks + lane * dp;
                float acc = 0.0f;
                for (int c = 0; c < d; c++)
                    acc = fmaf(qrow[c], krow[c], acc);
                sc = acc;
                if (a.rel) /* the bias is on the scaled scores: base 2 here too */
                    sc += a.rel[(int64_t)head * a.rel_ld + j - i + a.rel_span - 1] *
                          1.44269504088896341f;
            }
            const float m_new = fmaxf(m[qi], ecu_warp_max(sc));
            if (m_new == -INFINITY)
                continue; /* nothing visible yet for this query */
            const float corr = exp2f(m[qi] - m_new); /* 0 when m was -inf */
            const float p = ok ? exp2f(sc - m_new) : 0.0f;
            l[qi] = l[qi] * corr + ecu_warp_sum(p);
            m[qi] = m_new;
            for (int c = 0; c < NC; c++)
                o[qi][c] *= corr;
            for (int jj = 0; jj < nk; jj++) {
                const float pj = __shfl_sync(0xffffffffu, p, jj);
                const float *vrow = Vs + jj * dp;
                for (int c = 0; c < NC; c++) {
                    const int col = lane + 32 * c;
                    if (col < d)
                        o[qi][c] = fmaf(pj, vrow[col], o[qi][c]);
                }
            }
        }
    }
    T *O = (T *)a.out;
    for (int qi = 0; qi < QW; qi++) {
        const int qr = warp * QW + qi;
        if (qr >= nq)
            break;
        const int64_t row = compact ? sq : first + q0 + qr;
        const float inv = l[qi] > 0.0f ? 1.0f / l[qi] : 0.0f;
        for (int c = 0; c < NC; c++) {
            const int col = lane + 32 * c;
            if (col < d)
                ecu_st(O + row * a.ldo + (int64_t)head * d + col, o[qi][c] * inv);
        }
    }
}

template <typename T, int NC>
static int launch(cudaStream_t s, const ecu_attn *a) {
    const int32_t tiles = a->rows != 0 ? 1 : (a->max_len + BQ - 1) / BQ;
    return ecu_launch_attention(k_attention<T, NC>, (int64_t)a->n_seqs * tiles, a->n_heads,
                                WARPS * 32, attn_smem(a->head_dim), s, *a, tiles);
}

template <typename T>
static int launch_d(cudaStream_t s, const ecu_attn *a) {
    if (a->head_dim <= 64)
        return launch<T, 2>(s, a);
    if (a->head_dim <= 128)
        return launch<T, 4>(s, a);
    return launch<T, 8>(s, a);
}

enum { ATTN_WMMA, ATTN_MMA, ATTN_SIMT };

/* EMBER_CUDA_ATTENTION = wmma (default) | mma | simt, read once;
 * EMBER_CUDA_SIMT_ATTENTION=1 (older spelling) is simt. */
static int attention_choice(void) {
    static int choice = -1;
    if (choice < 0) {
        const char *e = getenv("EMBER_CUDA_ATTENTION"), *old = getenv("EMBER_CUDA_SIMT_ATTENTION");
        choice = e && strcmp(e, "mma") == 0    ? ATTN_MMA
                 : e && strcmp(e, "simt") == 0 ? ATTN_SIMT
                 : old && old[0] == '1'        ? ATTN_SIMT
                                               : ATTN_WMMA;
    }
    return choice;
}

extern "C" const char *ecu_attention_kernels(void) {
    switch (attention_choice()) {
    case ATTN_MMA: return "tensor-core mma.sync, registers (head dim 32/64/128, else SIMT)";
    case ATTN_SIMT: return "SIMT (EMBER_CUDA_ATTENTION=simt)";
    default: return "tensor-core WMMA (head dim 32/64/128, else SIMT)";
    }
}

extern "C" int ecu_attention(cudaStream_t s, const ecu_attn *a) {
    if (a->n_seqs <= 0 || a->max_len <= 0)
        return 0;
    if (a->head_dim <= 0 || a->head_dim > ECU_ATTN_MAX_HEAD_DIM || a->n_kv_heads <= 0 ||
        a->n_heads % a->n_kv_heads)
        return (int)cudaErrorInvalidValue;
    const int choice = attention_choice();
    const int tc = choice == ATTN_MMA    ? ecu_attention_mma(s, a)
                   : choice == ATTN_WMMA ? ecu_attention_tc(s, a)
                                         : -1;
    if (tc != -1)
        return tc;
    return a->bf16 ? launch_d<__nv_bfloat16>(s, a) : launch_d<float>(s, a);
}
