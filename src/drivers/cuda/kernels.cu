/*
 * kernels.cu — the CUDA driver's element-wise, normalization, positional
 * and pooling kernels (attention is in attention.cu; matrix products go to
 * cuBLASLt in cuda_driver.c).
 *
 * Each kernel is a template over the activation type T (float or bf16),
 * instantiated twice through DISPATCH; activations are passed as void
 * pointers and typed inside. Arithmetic is fp32; row reductions accumulate
 * in fp32 over a block, pooling in double (as the CPU does). Launchers are
 * extern "C" and return the launch status.
 */
#include <stdlib.h>
#include <string.h>

#include "drivers/cuda/cuda_kernels.h"
#include "drivers/cuda/ecu_common.cuh"
#include "drivers/cuda/rows_vec.cuh"

#define DISPATCH(bf16, KERNEL, GRID, BLOCK, SHMEM, STREAM, ...)                                 \
    do {                                                                                      \
        if (bf16)                                                                             \
            KERNEL<__nv_bfloat16><<<GRID, BLOCK, SHMEM, STREAM>>>(__VA_ARGS__);              \
        else                                                                                  \
            KERNEL<float><<<GRID, BLOCK, SHMEM, STREAM>>>(__VA_ARGS__);                      \
    } while (0)

/* Row-wise element kernels: blockIdx.x walks rows (up to 2^31 - 1), the
 * threads of blockIdx.y's column block walk 256 columns each; no 64-bit
 * division per element (emulated on the GPU, it made these kernels
 * arithmetic-bound). */
#define ROW_COLS(r, c, cols)                                                                  \
    const int64_t r = blockIdx.x;                                                             \
    for (int64_t c = (int64_t)blockIdx.y * blockDim.x * 4 + threadIdx.x;                     \
         c < (cols) && c < ((int64_t)blockIdx.y + 1) * blockDim.x * 4; c += blockDim.x)

static inline dim3 row_grid(int64_t rows, int64_t cols) {
    int64_t cb = (cols + 1023) / 1024; /* 256 threads x 4 columns per block */
    return dim3((unsigned)rows, (unsigned)(cb > 0 ? cb : 1));
}
static inline int row_grid_ok(int64_t rows, int64_t cols) {
    return rows > 0 && rows <= 0x7fffffff && (cols + 1023) / 1024 <= 65535;
}

#define GRID_STRIDE(i, n)                                                                     \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n);                \
         i += (int64_t)gridDim.x * blockDim.x)

/* ---- bf16 rows in 16-byte vectors (rows_vec.cuh) ----
 * EMBER_CUDA_VEC_ROWS=1 turns them on (LayerNorm, the linear epilogue, the
 * GLU, RoPE); not the default until they have run on a GPU. */

struct vec_gpu {
    __device__ __forceinline__ int tid() const { return (int)threadIdx.x; }
    __device__ __forceinline__ int bx() const { return (int)blockIdx.x; }
    __device__ __forceinline__ float shfl_xor(float v, int mask) const {
        return __shfl_xor_sync(0xffffffffu, v, mask);
    }
};

template <int NC>
__global__ void __launch_bounds__(128) k_layer_norm_vec(lnv_args p) {
    vec_gpu x;
    layer_norm_vec_body<NC>(p, x);
}

__global__ void __launch_bounds__(128) k_epilogue_vec(epv_args p) {
    vec_gpu x;
    epilogue_vec_body(p, x);
}

__global__ void __launch_bounds__(128) k_glu_vec(gluv_args p) {
    vec_gpu x;
    glu_vec_body(p, x);
}

extern "C" int ecu_env_switch(const char *name, int dflt, int *cache) {
    int v = __atomic_load_n(cache, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *e = getenv(name);
        v = !e || !e[0] ? dflt : dflt ? e[0] != '0' : e[0] == '1';
        __atomic_store_n(cache, v, __ATOMIC_RELAXED);
    }
    return v;
}

static int vec_rows_on(void) {
    static int on = -1;
    return ecu_env_switch("EMBER_CUDA_VEC_ROWS", 0, &on);
}

extern "C" int ecu_vec_rows_enabled(void) { return vec_rows_on(); }

/* a row start of 8-element multiples on a 16-byte boundary */
static int vec_ok(const void *p, int64_t ld) { return ((uintptr_t)p & 15) == 0 && ld % 8 == 0; }

/* Blocks of 128 threads for rows x width/8 vectors, or 0 when the count does
 * not fit the kernels' 32-bit index. */
static unsigned vec_blocks(int64_t rows, int64_t width) {
    const int64_t n = rows * (width / 8);
    return n <= 0x7fffffff - 127 ? (unsigned)((n + 127) / 128) : 0u;
}

/* ---- conversions ---- */

template <typename T>
__global__ void k_convert(const void *src, int src_dt, void *dstv, int64_t n) {
    T *dst = (T *)dstv;
    GRID_STRIDE(i, n) {
        float v;
        if (src_dt == ECU_SRC_F32)
            v = ((const float *)src)[i];
        else if (src_dt == ECU_SRC_F16)
            v = __half2float(((const __half *)src)[i]);
        else
            v = __bfloat162float(((const __nv_bfloat16 *)src)[i]);
        ecu_st(dst + i, v);
    }
}

extern "C" int ecu_convert(cudaStream_t s, const void *src, int src_dt, void *dst, int dst_bf16,
                           int64_t n) {
    if (n <= 0)
        return 0;
    DISPATCH(dst_bf16, k_convert, ecu_blocks(n, 256), 256, 0, s, src, src_dt, dst, n);
    return (int)cudaGetLastError();
}

/* The source type is the opposite of T (fp32 <-> bf16) or the same. */
template <typename T>
__global__ void k_cast2d(const void *src, int64_t ld_src, int src_bf16, void *dstv, int64_t ld_dst,
                         int64_t rows, int64_t cols) {
    T *dst = (T *)dstv;
    GRID_STRIDE(i, rows * cols) {
        int64_t r = i / cols, c = i % cols;
        float v = src_bf16 ? __bfloat162float(((const __nv_bfloat16 *)src)[r * ld_src + c])
                           : ((const float *)src)[r * ld_src + c];
        ecu_st(dst + r * ld_dst + c, v);
    }
}

extern "C" int ecu_cast2d(cudaStream_t s, const void *src, int64_t ld_src, int src_bf16, void *dst,
                          int64_t ld_dst, int dst_bf16, int64_t rows, int64_t cols) {
    if (rows * cols <= 0)
        return 0;
    DISPATCH(dst_bf16, k_cast2d, ecu_blocks(rows * cols, 256), 256, 0, s, src, ld_src, src_bf16,
             dst, ld_dst, rows, cols);
    return (int)cudaGetLastError();
}

/* y = act(y + bias) + r: what a matrix product's epilogue did not do. */
template <typename T>
__global__ void k_epilogue(void *yv, int64_t ldy, const float *bias, int act, const void *rv,
                           int64_t ldr, int64_t cols) {
    T *y = (T *)yv;
    const T *r = (const T *)rv;
    ROW_COLS(row, c, cols) {
        float v = ecu_ld(y + row * ldy + c) + (bias ? bias[c] : 0.0f);
        v = ecu_act(act, v);
        if (r)
            v += ecu_ld(r + row * ldr + c);
        ecu_st(y + row * ldy + c, v);
    }
}

extern "C" int ecu_epilogue(cudaStream_t s, void *y, int64_t ldy, const float *bias, int act,
                            const void *r, int64_t ldr, int64_t rows, int64_t cols, int bf16) {
    if (rows * cols <= 0 || (!bias && act == ECU_ACT_NONE && !r))
        return 0;
    if (bf16 && vec_rows_on() && cols % 8 == 0 && cols <= 0x7fffffff && vec_ok(y, ldy) &&
        (!r || vec_ok(r, ldr)) && (!bias || vec_ok(bias, 0))) {
        const unsigned blocks = vec_blocks(rows, cols);
        if (blocks) {
            k_epilogue_vec<<<blocks, 128, 0, s>>>(epv_args{y, ldy, bias, act, r, ldr, rows, (int)cols});
            return (int)cudaGetLastError();
        }
    }
    if (!row_grid_ok(rows, cols))
        return (int)cudaErrorInvalidValue;
    DISPATCH(bf16, k_epilogue, row_grid(rows, cols), 256, 0, s, y, ldy, bias, act, r, ldr, cols);
    return (int)cudaGetLastError();
}

/* ---- gather, select_rows ---- */

template <typename T>
__global__ void k_gather(const void *table, int table_bf16, int64_t cols, const int32_t *idx,
                         void *outv, int64_t ld, int accumulate, float scale) {
    T *out = (T *)outv;
    ROW_COLS(r, c, cols) {
        float v = ecu_ldw(table, table_bf16, (int64_t)idx[r] * cols + c) * scale;
        T *o = out + r * ld + c;
        ecu_st(o, accumulate ? ecu_ld(o) + v : v);
    }
}

extern "C" int ecu_gather(cudaStream_t s, const void *table, int table_bf16, int64_t cols,
                          const int32_t *idx, void *out, int64_t ld, int64_t rows, int accumulate,
                          float scale, int bf16) {
    if (rows * cols <= 0)
        return 0;
    if (!row_grid_ok(rows, cols))
        return (int)cudaErrorInvalidValue;
    DISPATCH(bf16, k_gather, row_grid(rows, cols), 256, 0, s, table, table_bf16, cols, idx, out, ld,
             accumulate, scale);
    return (int)cudaGetLastError();
}

template <typename T>
__global__ void k_select_rows(const void *inv, int64_t ld_in, void *outv, int64_t ld_out,
                              int64_t cols, int32_t n_seqs, const int32_t *start, int last) {
    const T *in = (const T *)inv;
    T *out = (T *)outv;
    GRID_STRIDE(i, (int64_t)n_seqs * cols) {
        int64_t sq = i / cols, c = i % cols;
        int64_t r = last ? start[sq + 1] - 1 : start[sq];
        out[sq * ld_out + c] = in[r * ld_in + c];
    }
}

extern "C" int ecu_select_rows(cudaStream_t s, const void *in, int64_t ld_in, void *out,
                               int64_t ld_out, int64_t cols, int32_t n_seqs,
                               const int32_t *start_dev, int last, int bf16) {
    if (n_seqs <= 0 || cols <= 0)
        return 0;
    DISPATCH(bf16, k_select_rows, ecu_blocks(n_seqs * cols, 256), 256, 0, s, in, ld_in, out,
             ld_out, cols, n_seqs, start_dev, last);
    return (int)cudaGetLastError();
}

/* ---- layer norm: one block per row ----
 * Two passes over the row in global memory (mean, then centered variance,
 * as the reference does: no E[x^2] - mean^2 cancellation); each thread
 * writes only the columns it read, so out may alias x. */

template <typename T>
__global__ void k_layer_norm(const void *xv, int64_t ldx, const void *resv, int64_t ldr,
                             const float *gamma, const float *beta, float eps, void *outv,
                             int64_t ldo, int64_t cols) {
    __shared__ float red[32];
    const int64_t r = blockIdx.x;
    const T *x = (const T *)xv + r * ldx;
    const T *res = resv ? (const T *)resv + r * ldr : NULL;
    T *out = (T *)outv + r * ldo;
    float sum = 0.0f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
        sum += ecu_ld(x + c) + (res ? ecu_ld(res + c) : 0.0f);
    const float mean = ecu_block_sum(sum, red) / (float)cols;
    float var = 0.0f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        float d = ecu_ld(x + c) + (res ? ecu_ld(res + c) : 0.0f) - mean;
        var += d * d;
    }
    var = ecu_block_sum(var, red) / (float)cols;
    const float inv = rsqrtf(var + eps);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = (ecu_ld(x + c) + (res ? ecu_ld(res + c) : 0.0f) - mean) * inv * gamma[c];
        ecu_st(out + c, beta ? v + beta[c] : v);
    }
}

static int row_threads(int64_t cols) { return cols >= 1024 ? 256 : cols >= 256 ? 128 : 64; }

/* Rows of at most 32 NV columns: one warp per row, the row in registers (NV
 * values per lane), so x and the residual are read once; same two-pass
 * arithmetic as k_layer_norm. Lanes write only the columns they read: out
 * may alias x. */
template <typename T, int NV>
__global__ void __launch_bounds__(128)
k_layer_norm_warp(const void *xv, int64_t ldx, const void *resv, int64_t ldr, const float *gamma,
                  const float *beta, float eps, void *outv, int64_t ldo, int64_t rows, int cols) {
    const int64_t r = blockIdx.x * 4 + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (r >= rows)
        return;
    const T *x = (const T *)xv + r * ldx;
    const T *res = resv ? (const T *)resv + r * ldr : NULL;
    float v[NV];
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < NV; i++) {
        const int c = lane + 32 * i;
        v[i] = c < cols ? ecu_ld(x + c) + (res ? ecu_ld(res + c) : 0.0f) : 0.0f;
        sum += v[i];
    }
    const float mean = ecu_warp_sum(sum) / (float)cols;
    float var = 0.0f;
#pragma unroll
    for (int i = 0; i < NV; i++) {
        const int c = lane + 32 * i;
        const float d = c < cols ? v[i] - mean : 0.0f;
        var += d * d;
    }
    const float inv = rsqrtf(ecu_warp_sum(var) / (float)cols + eps);
    T *out = (T *)outv + r * ldo;
#pragma unroll
    for (int i = 0; i < NV; i++) {
        const int c = lane + 32 * i;
        if (c < cols) {
            const float o = (v[i] - mean) * inv * gamma[c];
            ecu_st(out + c, beta ? o + beta[c] : o);
        }
    }
}

template <int NV>
static void launch_ln_warp(int bf16, unsigned blocks, cudaStream_t s, const void *x, int64_t ldx,
                           const void *res, int64_t ldr, const float *gamma, const float *beta,
                           float eps, void *out, int64_t ldo, int64_t rows, int64_t cols) {
    if (bf16)
        k_layer_norm_warp<__nv_bfloat16, NV>
            <<<blocks, 128, 0, s>>>(x, ldx, res, ldr, gamma, beta, eps, out, ldo, rows, (int)cols);
    else
        k_layer_norm_warp<float, NV>
            <<<blocks, 128, 0, s>>>(x, ldx, res, ldr, gamma, beta, eps, out, ldo, rows, (int)cols);
}

/* 1 when the vector kernel took the rows (its launch status in *status). */
static int layer_norm_vec(cudaStream_t s, const void *x, int64_t ldx, const void *res, int64_t ldr,
                          const float *gamma, const float *beta, float eps, void *out, int64_t ldo,
                          int64_t rows, int64_t cols, int *status) {
    if (!vec_rows_on() || cols % 8 || cols > 1024 || !vec_ok(x, ldx) ||
        (res && !vec_ok(res, ldr)) || !vec_ok(out, ldo) || !vec_ok(gamma, 0) ||
        (beta && !vec_ok(beta, 0)))
        return 0;
    const lnv_args p = {x, ldx, res, ldr, gamma, beta, eps, out, ldo, rows, (int)cols};
    const unsigned blocks = (unsigned)((rows + 3) / 4);
    const int64_t nc = (cols + 255) / 256; /* 16-byte chunks per lane */
    if (nc <= 1)
        k_layer_norm_vec<1><<<blocks, 128, 0, s>>>(p);
    else if (nc == 2)
        k_layer_norm_vec<2><<<blocks, 128, 0, s>>>(p);
    else if (nc == 3)
        k_layer_norm_vec<3><<<blocks, 128, 0, s>>>(p);
    else
        k_layer_norm_vec<4><<<blocks, 128, 0, s>>>(p);
    *status = (int)cudaGetLastError();
    return 1;
}

extern "C" int ecu_layer_norm(cudaStream_t s, const void *x, int64_t ldx, const void *res,
                              int64_t ldr, const float *gamma, const float *beta, float eps,
                              void *out, int64_t ldo, int64_t rows, int64_t cols, int bf16) {
    if (rows <= 0 || cols <= 0)
        return 0;
    if (rows > 0x7fffffff)
        return (int)cudaErrorInvalidValue;
    int status;
    if (bf16 && rows / 4 < 0x7fffffff &&
        layer_norm_vec(s, x, ldx, res, ldr, gamma, beta, eps, out, ldo, rows, cols, &status))
        return status;
    if (cols <= 1024 && (rows + 3) / 4 <= 0x7fffffff) {
        const unsigned blocks = (unsigned)((rows + 3) / 4);
        const int nv = (int)((cols + 31) / 32);
        if (nv <= 8)
            launch_ln_warp<8>(bf16, blocks, s, x, ldx, res, ldr, gamma, beta, eps, out, ldo, rows, cols);
        else if (nv <= 16)
            launch_ln_warp<16>(bf16, blocks, s, x, ldx, res, ldr, gamma, beta, eps, out, ldo, rows, cols);
        else
            launch_ln_warp<32>(bf16, blocks, s, x, ldx, res, ldr, gamma, beta, eps, out, ldo, rows, cols);
        return (int)cudaGetLastError();
    }
    DISPATCH(bf16, k_layer_norm, (unsigned)rows, row_threads(cols), 0, s, x, ldx, res, ldr, gamma,
             beta, eps, out, ldo, cols);
    return (int)cudaGetLastError();
}

/* ---- RMS norm: one block per (row, group) ---- */

template <typename T>
__global__ void k_rms_norm(const void *xv, int64_t ldx, const float *w, float eps, float offset,
                           int64_t group, const void *resv, int64_t ldr, void *outv, int64_t ldo) {
    __shared__ float red[32];
    const int64_t r = blockIdx.x, g0 = (int64_t)blockIdx.y * group;
    const T *x = (const T *)xv + r * ldx + g0;
    const T *res = resv ? (const T *)resv + r * ldr + g0 : NULL;
    T *out = (T *)outv + r * ldo + g0;
    float ss = 0.0f;
    for (int64_t c = threadIdx.x; c < group; c += blockDim.x) {
        float v = ecu_ld(x + c);
        ss += v * v;
    }
    const float inv = rsqrtf(ecu_block_sum(ss, red) / (float)group + eps);
    /* every thread reads its columns of x (and res) before writing out, which
     * may alias either (Gemma's x += norm(branch)) */
    for (int64_t c = threadIdx.x; c < group; c += blockDim.x)
        ecu_st(out + c, (res ? ecu_ld(res + c) : 0.0f) + ecu_ld(x + c) * inv * (w[c] + offset));
}

extern "C" int ecu_rms_norm(cudaStream_t s, const void *x, int64_t ldx, const float *w, float eps,
                            float offset, int64_t group, const void *res, int64_t ldr, void *out,
                            int64_t ldo, int64_t rows, int64_t cols, int bf16) {
    if (rows <= 0 || cols <= 0)
        return 0;
    const int64_t groups = cols / group;
    if (rows > 0x7fffffff || groups > 65535)
        return (int)cudaErrorInvalidValue;
    dim3 grid((unsigned)rows, (unsigned)groups);
    DISPATCH(bf16, k_rms_norm, grid, row_threads(group), 0, s, x, ldx, w, eps, offset, group, res,
             ldr, out, ldo);
    return (int)cudaGetLastError();
}

/* ---- gated linear units ---- */

template <typename T>
__global__ void k_glu(const void *inv, int64_t ld_in, void *outv, int64_t ld_out, int64_t inter,
                      int act) {
    const T *in = (const T *)inv;
    T *out = (T *)outv;
    ROW_COLS(r, c, inter) {
        const T *row = in + r * ld_in;
        ecu_st(out + r * ld_out + c, ecu_act(act, ecu_ld(row + c)) * ecu_ld(row + inter + c));
    }
}

extern "C" int ecu_glu(cudaStream_t s, const void *in, int64_t ld_in, void *out, int64_t ld_out,
                       int64_t rows, int64_t inter, int act, int bf16) {
    if (rows * inter <= 0)
        return 0;
    if (bf16 && vec_rows_on() && inter % 8 == 0 && inter <= 0x3fffffff && vec_ok(in, ld_in) &&
        vec_ok(out, ld_out)) {
        const unsigned blocks = vec_blocks(rows, inter);
        if (blocks) {
            k_glu_vec<<<blocks, 128, 0, s>>>(gluv_args{in, ld_in, out, ld_out, rows, (int)inter, act});
            return (int)cudaGetLastError();
        }
    }
    if (!row_grid_ok(rows, inter))
        return (int)cudaErrorInvalidValue;
    DISPATCH(bf16, k_glu, row_grid(rows, inter), 256, 0, s, in, ld_in, out, ld_out, inter, act);
    return (int)cudaGetLastError();
}

/* ---- RoPE: one thread per (row, head, pair) over q's heads then k's ---- */

template <typename T>
__global__ void k_rope(void *qv, int64_t ldq, int32_t nq, void *kv, int64_t ldk, int32_t nk,
                       int32_t d, const int32_t *positions, const void *table, int table_bf16) {
    const int32_t half = d / 2;
    const int64_t r = blockIdx.x;
    for (int32_t i = threadIdx.x; i < (nq + nk) * half; i += blockDim.x) {
        const int32_t h = i / half, j = i - h * half;
        T *x = h < nq ? (T *)qv + r * ldq + h * d : (T *)kv + r * ldk + (h - nq) * d;
        const int64_t p = (int64_t)positions[r] * d;
        float c = ecu_ldw(table, table_bf16, p + j), sn = ecu_ldw(table, table_bf16, p + half + j);
        float a = ecu_ld(x + j), b = ecu_ld(x + j + half);
        ecu_st(x + j, a * c - b * sn);
        ecu_st(x + j + half, b * c + a * sn);
    }
}

__global__ void __launch_bounds__(128) k_rope_vec(ropev_args p) {
    vec_gpu x;
    rope_vec_body(p, x);
}

extern "C" int ecu_rope(cudaStream_t s, void *q, int64_t ldq, int64_t nq, void *k, int64_t ldk,
                        int64_t nk, int64_t rows, int32_t head_dim, const int32_t *positions,
                        const void *table, int table_bf16, int bf16) {
    const int64_t n = rows * (nq + (k ? nk : 0)) * (head_dim / 2);
    if (n <= 0)
        return 0;
    if (rows > 0x7fffffff || nq + nk > 65536)
        return (int)cudaErrorInvalidValue;
    if (!k)
        nk = 0;
    /* 8 pairs a thread: 16-byte rows and head offsets, a 16-byte table */
    if (bf16 && vec_rows_on() && head_dim % 16 == 0 && vec_ok(q, ldq) && (!k || vec_ok(k, ldk)) &&
        vec_ok(table, 0)) {
        const unsigned blocks = vec_blocks(rows, (nq + nk) * (head_dim / 2));
        if (blocks) {
            k_rope_vec<<<blocks, 128, 0, s>>>(ropev_args{q, ldq, (int)nq, k, ldk, (int)nk, rows,
                                                         head_dim, positions, table, table_bf16});
            return (int)cudaGetLastError();
        }
    }
    DISPATCH(bf16, k_rope, (unsigned)rows, 128, 0, s, q, ldq, (int32_t)nq, k, ldk, (int32_t)nk,
             head_dim, positions, table, table_bf16);
    return (int)cudaGetLastError();
}

/* ---- pooling: one thread per (sequence, column) ----
 * Modes as ember_pooling (include/ember.h) and core/pooling.c. */

enum { POOL_CLS, POOL_MEAN, POOL_MAX, POOL_MEAN_SQRT_LEN, POOL_WEIGHTED_MEAN, POOL_LAST };

template <typename T>
__global__ void k_pool(const void *hv, int64_t ld, int64_t cols, const int32_t *start, int32_t mode,
                       float *out, int64_t ld_out) {
    const int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    const int32_t sq = blockIdx.y;
    if (c >= cols)
        return;
    const int64_t r0 = start[sq], n = start[sq + 1] - r0;
    const T *h = (const T *)hv + r0 * ld + c;
    float *o = out + (int64_t)sq * ld_out + c;
    if (n <= 0) {
        *o = 0.0f;
        return;
    }
    if (mode == POOL_CLS) {
        *o = ecu_ld(h);
    } else if (mode == POOL_LAST) {
        *o = ecu_ld(h + (n - 1) * ld);
    } else if (mode == POOL_MAX) {
        float m = ecu_ld(h);
        for (int64_t r = 1; r < n; r++)
            m = fmaxf(m, ecu_ld(h + r * ld));
        *o = m;
    } else {
        double acc = 0.0, wsum = 0.0;
        for (int64_t r = 0; r < n; r++) {
            double w = mode == POOL_WEIGHTED_MEAN ? (double)(r + 1) : 1.0;
            acc += w * (double)ecu_ld(h + r * ld);
            wsum += w;
        }
        double norm = mode == POOL_MEAN_SQRT_LEN ? sqrt((double)n) : wsum;
        *o = (float)(acc / norm);
    }
}

extern "C" int ecu_pool(cudaStream_t s, const void *hidden, int64_t ld, int64_t cols,
                        int32_t n_seqs, const int32_t *start_dev, int32_t mode, float *out,
                        int64_t ld_out, int bf16) {
    if (n_seqs <= 0 || cols <= 0)
        return 0;
    if (n_seqs > 65535)
        return (int)cudaErrorInvalidValue;
    dim3 grid((unsigned)((cols + 127) / 128), (unsigned)n_seqs);
    DISPATCH(bf16, k_pool, grid, 128, 0, s, hidden, ld, cols, start_dev, mode, out, ld_out);
    return (int)cudaGetLastError();
}
