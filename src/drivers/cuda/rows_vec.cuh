/*
 * rows_vec.cuh — the row kernels of bf16 activations moved in 16-byte
 * vectors (8 bf16 per load instead of one): LayerNorm, the linear epilogue
 * (bias, activation, residual), the gated linear unit and RoPE. Bodies written
 * against an executor like attention_mma.cuh, launched in kernels.cu, run on
 * the CPU by tests/test_cuda_emu.cu.
 *
 * Why: the scalar kernels move one bf16 (2 bytes) per lane and load; on an
 * H200 LayerNorm ran at about 1.5 TB/s of the 4.8 (12% of a bge-small
 * pass), the exact-GELU epilogue (BERT's 1,536-wide intermediate) and
 * ModernBERT's GeGLU (8.5%) alike.
 *
 * LayerNorm: a warp still owns a row (4 rows per block of 128
 * threads) but a lane reads 8 consecutive columns per 16-byte load: chunk
 * i of lane l covers columns 8 (l + 32 i) .. + 7, NC chunks a lane, rows up
 * to 256 NC columns. x and the residual are read once (kept in registers),
 * gamma and beta as float4 pairs, out written as 16-byte vectors. The
 * arithmetic is k_layer_norm_warp's: fp32, mean first, then the centred
 * variance (no E[x^2] - mean^2 cancellation); only the order of the sums
 * differs. Every lane reads its columns before any lane writes, so out may
 * alias x.
 *
 * Epilogue, GLU and RoPE (8 pairs of one head): one thread per 8
 * consecutive columns of a row, blocks
 * of 128 threads over rows x cols / 8 vectors (32-bit index arithmetic: the
 * launcher checks the count fits).
 *
 * The launchers take these kernels only when the widths are multiples of 8
 * and every row starts 16-byte aligned (pointers aligned, row strides
 * multiples of 8 elements); the scalar kernels run the rest.
 *
 * Executor X: tid(), bx() (threadIdx.x, blockIdx.x), shfl_xor(v, m).
 */
#ifndef EMBER_DRIVERS_CUDA_ROWS_VEC_CUH
#define EMBER_DRIVERS_CUDA_ROWS_VEC_CUH

#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <vector_types.h>

#include "drivers/cuda/ecu_common.cuh"

#ifndef ECU_BODY_FN
#define ECU_BODY_FN static __device__ __forceinline__
#endif

typedef struct lnv_args {
    const void *x;
    int64_t ldx;
    const void *res; /* NULL: none */
    int64_t ldr;
    const float *gamma, *beta; /* beta NULL: none */
    float eps;
    void *out;
    int64_t ldo;
    int64_t rows;
    int cols;
} lnv_args;

ECU_BODY_FN float vec_float_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* 8 bf16 -> fp32 (exact: a bf16 is the high half of an fp32) */
ECU_BODY_FN void vec_unpack_bf16(uint4 u, float f[8]) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
    for (int i = 0; i < 4; i++) {
        f[2 * i] = vec_float_bits(w[i] << 16);
        f[2 * i + 1] = vec_float_bits(w[i] & 0xffff0000u);
    }
}

/* 8 fp32 -> 8 bf16 (round to nearest even) */
ECU_BODY_FN uint4 vec_pack_bf16(const float f[8]) {
    uint4 u;
    u.x = ecu_pack_bf16x2(f[0], f[1]);
    u.y = ecu_pack_bf16x2(f[2], f[3]);
    u.z = ecu_pack_bf16x2(f[4], f[5]);
    u.w = ecu_pack_bf16x2(f[6], f[7]);
    return u;
}

template <class X>
ECU_BODY_FN float lnv_warp_sum(X &x, float v) {
    for (int o = 16; o > 0; o >>= 1)
        v += x.shfl_xor(v, o);
    return v;
}

template <int NC, class X>
ECU_BODY_FN void layer_norm_vec_body(const lnv_args &p, X &x) {
    const int tid = x.tid(), lane = tid & 31;
    const int64_t r = (int64_t)x.bx() * 4 + (tid >> 5);
    if (r >= p.rows)
        return; /* the whole warp: its lanes share the row */
    const __nv_bfloat16 *xr = (const __nv_bfloat16 *)p.x + r * p.ldx;
    const __nv_bfloat16 *rr = p.res ? (const __nv_bfloat16 *)p.res + r * p.ldr : NULL;
    float v[NC][8] = {};
    float sum = 0.0f;
    for (int i = 0; i < NC; i++) {
        const int c = (lane + 32 * i) * 8;
        if (c < p.cols) {
            vec_unpack_bf16(*(const uint4 *)(xr + c), v[i]);
            if (rr) {
                float w[8];
                vec_unpack_bf16(*(const uint4 *)(rr + c), w);
                for (int e = 0; e < 8; e++)
                    v[i][e] += w[e];
            }
            for (int e = 0; e < 8; e++)
                sum += v[i][e];
        }
    }
    const float mean = lnv_warp_sum(x, sum) / (float)p.cols;
    float var = 0.0f;
    for (int i = 0; i < NC; i++)
        if ((lane + 32 * i) * 8 < p.cols)
            for (int e = 0; e < 8; e++) {
                const float d = v[i][e] - mean;
                var += d * d;
            }
    const float inv = 1.0f / sqrtf(lnv_warp_sum(x, var) / (float)p.cols + p.eps);
    __nv_bfloat16 *orow = (__nv_bfloat16 *)p.out + r * p.ldo;
    for (int i = 0; i < NC; i++) {
        const int c = (lane + 32 * i) * 8;
        if (c >= p.cols)
            continue;
        const float4 g0 = *(const float4 *)(p.gamma + c), g1 = *(const float4 *)(p.gamma + c + 4);
        const float g[8] = {g0.x, g0.y, g0.z, g0.w, g1.x, g1.y, g1.z, g1.w};
        float b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (p.beta) {
            const float4 b0 = *(const float4 *)(p.beta + c), b1 = *(const float4 *)(p.beta + c + 4);
            const float bb[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
            for (int e = 0; e < 8; e++)
                b[e] = bb[e];
        }
        float o[8];
        for (int e = 0; e < 8; e++)
            o[e] = (v[i][e] - mean) * inv * g[e] + b[e];
        *(uint4 *)(orow + c) = vec_pack_bf16(o);
    }
}

/* This thread's vector of a rows x width grid of 8-column vectors, 128
 * threads a block: its row and first column; false past the last vector. */
template <class X>
ECU_BODY_FN bool vec_position(X &x, int64_t rows, int width, uint32_t *r, uint32_t *c) {
    const uint32_t per_row = (uint32_t)width / 8;
    const uint32_t i = (uint32_t)x.bx() * 128u + (uint32_t)x.tid();
    if ((int64_t)i >= rows * per_row)
        return false;
    *r = i / per_row;
    *c = (i - *r * per_row) * 8;
    return true;
}

/* ---- the linear epilogue: y = act(y + bias) + r ---- */

typedef struct epv_args {
    void *y;
    int64_t ldy;
    const float *bias; /* NULL: none */
    int act;           /* ECU_ACT_* */
    const void *r;     /* NULL: none */
    int64_t ldr;
    int64_t rows;
    int cols;
} epv_args;

/* 8 fp32 from 16-byte aligned memory */
ECU_BODY_FN void vec_load_f32(const float *p, float f[8]) {
    const float4 a = *(const float4 *)p, b = *(const float4 *)(p + 4);
    f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w;
    f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}

template <class X>
ECU_BODY_FN void epilogue_vec_body(const epv_args &p, X &x) {
    uint32_t r, c;
    if (!vec_position(x, p.rows, p.cols, &r, &c))
        return;
    __nv_bfloat16 *y = (__nv_bfloat16 *)p.y + (int64_t)r * p.ldy + c;
    float v[8];
    vec_unpack_bf16(*(const uint4 *)y, v);
    if (p.bias) {
        float b[8];
        vec_load_f32(p.bias + c, b);
        for (int e = 0; e < 8; e++)
            v[e] += b[e];
    }
    for (int e = 0; e < 8; e++)
        v[e] = ecu_act(p.act, v[e]);
    if (p.r) {
        float w[8];
        vec_unpack_bf16(*(const uint4 *)((const __nv_bfloat16 *)p.r + (int64_t)r * p.ldr + c), w);
        for (int e = 0; e < 8; e++)
            v[e] += w[e];
    }
    *(uint4 *)y = vec_pack_bf16(v);
}

/* ---- gated linear unit: out[r, i] = act(in[r, i]) * in[r, I + i] ---- */

typedef struct gluv_args {
    const void *in;
    int64_t ld_in;
    void *out;
    int64_t ld_out;
    int64_t rows;
    int inter; /* I = out's width; in is (rows, 2I) */
    int act;
} gluv_args;

template <class X>
ECU_BODY_FN void glu_vec_body(const gluv_args &p, X &x) {
    uint32_t r, c;
    if (!vec_position(x, p.rows, p.inter, &r, &c))
        return;
    const __nv_bfloat16 *in = (const __nv_bfloat16 *)p.in + (int64_t)r * p.ld_in + c;
    float a[8], g[8], o[8];
    vec_unpack_bf16(*(const uint4 *)in, a);
    vec_unpack_bf16(*(const uint4 *)(in + p.inter), g);
    for (int e = 0; e < 8; e++)
        o[e] = ecu_act(p.act, a[e]) * g[e];
    *(uint4 *)((__nv_bfloat16 *)p.out + (int64_t)r * p.ld_out + c) = vec_pack_bf16(o);
}

/* ---- RoPE (rotate-half): x[j], x[j + d/2] of each head rotated by the
 * angle of (position, j), in place; one thread per 8 consecutive pairs of
 * one head of one row, q's heads then k's ---- */

typedef struct ropev_args {
    void *q;
    int64_t ldq;
    int nq; /* heads of q */
    void *k; /* NULL: none */
    int64_t ldk;
    int nk;
    int64_t rows;
    int d;                   /* head_dim, a multiple of 16 */
    const int32_t *positions; /* per row */
    const void *table;       /* per position: d/2 cosines, then d/2 sines */
    int table_bf16;
} ropev_args;

/* 8 table values (fp32 or bf16) from 16-byte aligned memory */
ECU_BODY_FN void vec_load_table(const void *t, int bf16, int64_t i, float f[8]) {
    if (bf16)
        vec_unpack_bf16(*(const uint4 *)((const __nv_bfloat16 *)t + i), f);
    else
        vec_load_f32((const float *)t + i, f);
}

template <class X>
ECU_BODY_FN void rope_vec_body(const ropev_args &p, X &x) {
    const int half = p.d / 2;
    uint32_t r, c;
    if (!vec_position(x, p.rows, (p.nq + p.nk) * half, &r, &c))
        return;
    const int h = (int)c / half, j = (int)c - h * half;
    __nv_bfloat16 *xh = h < p.nq ? (__nv_bfloat16 *)p.q + (int64_t)r * p.ldq + (int64_t)h * p.d
                                 : (__nv_bfloat16 *)p.k + (int64_t)r * p.ldk + (int64_t)(h - p.nq) * p.d;
    const int64_t pos = (int64_t)p.positions[r] * p.d;
    float a[8], b[8], cs[8], sn[8], lo[8], hi[8];
    vec_unpack_bf16(*(const uint4 *)(xh + j), a);
    vec_unpack_bf16(*(const uint4 *)(xh + j + half), b);
    vec_load_table(p.table, p.table_bf16, pos + j, cs);
    vec_load_table(p.table, p.table_bf16, pos + half + j, sn);
    for (int e = 0; e < 8; e++) {
        lo[e] = a[e] * cs[e] - b[e] * sn[e];
        hi[e] = b[e] * cs[e] + a[e] * sn[e];
    }
    *(uint4 *)(xh + j) = vec_pack_bf16(lo);
    *(uint4 *)(xh + j + half) = vec_pack_bf16(hi);
}

#endif
