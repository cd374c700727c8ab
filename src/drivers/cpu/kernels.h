/*
 * kernels.h — the CPU driver's inner kernels, one table per instruction set.
 *
 * The scalar table (ref.c) is portable C and the ground truth of the
 * driver-op tests; ISA tables (x86/avx2.c, ...) are compiled with their own
 * flags and chosen once from the detected CPU features. Each kernel works on
 * a slice of the data (rows, one attention tile): splitting work over threads
 * is the driver's job, not the kernel's.
 */
#ifndef EMBER_DRIVERS_CPU_KERNELS_H
#define EMBER_DRIVERS_CPU_KERNELS_H

#include <stdint.h>

/* One attention task: query rows [q0, q1) of one head of one sequence of
 * length `len`, whose rows start at `base` in qkv/out. */
typedef struct ember_attn_tile {
    const float *q, *k, *v; /* first row of the sequence, this head's columns */
    int64_t ld_q;           /* row stride of q                                */
    int64_t ld;             /* row stride of k/v                              */
    float *out;             /* first row of the sequence, this head's columns */
    int64_t ld_out;
    int32_t len;            /* sequence length                                */
    int32_t q0, q1;         /* query rows of this task                        */
    int32_t head_dim;
    int32_t window;         /* 0: all keys; else |i - j| <= window            */
    float scale;
    float *scratch;         /* per-thread, ember_attn_scratch_floats() floats */
} ember_attn_tile;

/* Query rows per attention task and keys per tile of the online softmax.
 * Global attention uses blocks of QBLOCK queries so that packing K^T is
 * amortised over many queries; sliding-window attention uses QBLOCK_LOCAL,
 * since a block sees its queries' window plus its own width in keys. */
#define EMBER_ATTN_QBLOCK 128
#define EMBER_ATTN_QBLOCK_LOCAL 32
#define EMBER_ATTN_KBLOCK 128

static inline int64_t ember_attn_scratch_floats(int32_t head_dim) {
    /* K^T tile + score tile + output accumulator + running max/sum */
    return (int64_t)head_dim * EMBER_ATTN_KBLOCK + (int64_t)EMBER_ATTN_QBLOCK * EMBER_ATTN_KBLOCK +
           (int64_t)EMBER_ATTN_QBLOCK * head_dim + 2 * EMBER_ATTN_QBLOCK + 64;
}

/* GEMM micro-kernel: C[mr x nr] (row stride ldc) = init + A[mr x kc] B, where
 * A is row-major (stride lda) and B holds EMBER_GEMM_NR columns with row
 * stride ldb: a packed panel (ldb = NR) or rows of a row-major matrix. All 16
 * columns of B must be readable (panels are zero-padded) even when nr < 16;
 * only C is masked to nr columns. `init` is NULL (start from zero) or the
 * tile to start from (C itself to continue a K split, or the residual), with
 * stride ld_init. When `last`, the epilogue runs on the tile before it is
 * stored: + bias[j], activation, + late_res (stride ld_res). */
#define EMBER_GEMM_MR 6
#define EMBER_GEMM_NR 16

typedef struct ember_gemm_tile {
    int mr, nr;
    int64_t kc;
    const float *a;
    int64_t lda;
    const float *bp;
    int64_t ldb;      /* row stride of B; 0 = EMBER_GEMM_NR (a packed panel) */
    float *c;
    int64_t ldc;
    const float *init;
    int64_t ld_init;
    int last;
    const float *bias;
    int act;
    const float *late_res;
    int64_t ld_res;
} ember_gemm_tile;

typedef struct ember_cpu_kernels {
    const char *name;
    /* One GEMM micro-tile (see ember_gemm_tile). */
    void (*gemm_tile)(const ember_gemm_tile *t);
    /* out = LayerNorm(x + res) * gamma + beta over n values; res, beta may be
     * NULL; out may alias x. */
    void (*layer_norm_row)(const float *x, const float *res, const float *gamma,
                           const float *beta, float eps, int64_t n, float *out);
    /* y = act(y + bias) (+ residual) over n values; bias/residual may be NULL. */
    void (*bias_act_row)(float *y, const float *bias, int act, const float *residual, int64_t n);
    /* out[i] = gelu(in[i]) * in[inter + i] for i < inter. */
    void (*geglu_row)(const float *in, int64_t inter, float *out);
    void (*attention_tile)(const ember_attn_tile *t);
    /* Rotate-half RoPE on one head vector of head_dim values. */
    void (*rope_head)(float *x, const float *cos, const float *sin, int32_t head_dim);
} ember_cpu_kernels;

extern const ember_cpu_kernels ember_cpu_kernels_ref;
#if defined(EMBER_HAVE_X86)
extern const ember_cpu_kernels ember_cpu_kernels_avx2;
#endif

/* The best table for this CPU (honours EMBER_CPU). */
const ember_cpu_kernels *ember_cpu_kernels_best(void);

/* Activation codes shared with driver.h's ember_act. */
float ember_ref_act(int act, float x);

#endif
