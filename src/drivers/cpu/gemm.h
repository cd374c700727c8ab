/*
 * gemm.h — the CPU driver's matrix multiply: y = act(x W^T + b) + residual.
 *
 * One entry point for every Linear layer: Ember's own blocked GEMM over the
 * kernel table's micro-kernel, split over the context's thread pool, with
 * the epilogue (bias, activation, residual) fused into the micro-kernel.
 * Weights are packed once at load (default), or read in place from the
 * mapping and packed per call into a per-thread scratch (zero-copy mode).
 * Why not OpenBLAS: its single-threaded build is not safe to call from two
 * threads at once, and its threaded build brings a second thread pool.
 */
#ifndef EMBER_DRIVERS_CPU_GEMM_H
#define EMBER_DRIVERS_CPU_GEMM_H

#include "core/threadpool.h"
#include "drivers/cpu/kernels.h"
#include "drivers/driver.h"

/* Block sizes: at most NC_MAX output columns per task (12 panels of 16),
 * KC deep: a band's packed panels (NC_MAX x KC floats, 384 KB) stay in L2. */
#define EMBER_GEMM_NC_MAX 192
#define EMBER_GEMM_KC 512

/* int8 weights (EMBER_Q8_BLOCK, EMBER_Q8_KPAD: kernels.h) */
typedef struct ember_q8 {
    int8_t *q;      /* panels: [panel][k / 4][16][k % 4], K padded to KPAD */
    float *scales;  /* [panel][k / 32][16]                                 */
    int32_t *offs;  /* [panel][k / 32][16]: -128 x the block's sum of q, the
                       int32 start of each block's dot product with uint8
                       activations (cancels their +128)                     */
} ember_q8;

static inline int64_t ember_q8_kpad(int64_t K) {
    return (K + EMBER_Q8_KPAD - 1) / EMBER_Q8_KPAD * EMBER_Q8_KPAD;
}

typedef struct ember_gemm {
    int prepack;       /* pack weights once at load (copies them)   */
    int compute_dtype; /* ember_dtype                               */
    /* the fp32 tile: NULL = the table's gemm_tile (mr x 16), else one of
     * its wider tiles, chosen by ember_gemm_choose */
    const ember_gemm_variant *wide;
    int no_bf16_wide;  /* 1: the bf16 dot products 16 columns at a time
                          (tests, A/B timing; EMBER_GEMM_BF16_WIDE=0)  */
    int amx;           /* 1: bf16 and int8 weights on AMX tiles where the
                          table has them (ember_gemm_choose)            */
    int64_t kc_packed; /* K block of fp32 weights packed at load        */
} ember_gemm;

void ember_gemm_init(ember_gemm *g, int compute_dtype);
/* Picks the fastest fp32 tile of table k (its gemm_tile or one of its
 * gemm_wide) by timing each on an L2-resident block, a few milliseconds the
 * first time per kernel table and CPU model; the choice is cached in memory.
 * Where the table has AMX, times the AMX-BF16 block against the AVX512_BF16
 * tile the same way and sets g->amx when it wins. EMBER_GEMM_TILE, a comma
 * list, forces: MRxNR (e.g. 12x16, 12x32) the fp32 tile by name, `amx` /
 * `noamx` the AMX choice. */
void ember_gemm_choose(ember_gemm *g, const ember_cpu_kernels *k);
/* The name of the fp32 tile in use ("12x32"). */
const char *ember_gemm_tile_name(const ember_gemm *g, const ember_cpu_kernels *k);
/* What the GEMM runs for this dtype on kernel table k (static string). */
const char *ember_gemm_name(const ember_gemm *g, const ember_cpu_kernels *k);
/* Called once per matrix weight at load (packing, reduced precision). */
ember_status ember_gemm_prepare(const ember_gemm *g, ember_weight *w);
/* The same for an fp32 matrix, also scanning it for NaN and infinities (in
 * the packing threads when it packs fp32 panels): *bad receives the index of
 * the first one in w->data, or rows x cols when there is none. The matrix is
 * packed either way; the caller refuses it. */
ember_status ember_gemm_prepare_checked(const ember_gemm *g, ember_weight *w, size_t *bad);
void ember_gemm_release(ember_weight *w);
/* y[r, :] = act(x[r, :] W^T + bias) + residual[r, :] for r < rows, on fp32
 * host memory (the CPU driver's linear op, its views unpacked). residual may
 * be y when act is NONE. */
typedef struct ember_gemm_args {
    const float *x;
    int64_t ldx;               /* row stride of x (>= w->cols)                  */
    int64_t rows;
    const ember_weight *w;     /* [out, in]                                      */
    const ember_weight *bias;  /* [out] or NULL                                  */
    ember_act act;
    const float *residual;     /* rows x out with stride ldr, or NULL            */
    int64_t ldr;
    float *y;
    int64_t ldy;
} ember_gemm_args;

/* What ember_gemm_linear works in, owned by the caller (one per context):
 * per-thread scratch, and the activations converted once per call for the
 * int8 dot products (quantized rows, their scales and outliers), grown on
 * demand and kept for the next call. */
typedef struct ember_gemm_ws {
    float *scratch;    /* ember_gemm_scratch_floats() floats per pool thread */
    void *act;
    size_t act_bytes;
} ember_gemm_ws;

/* Per-thread scratch the caller provides to ember_gemm_linear. */
size_t ember_gemm_scratch_floats(void);
/* Frees ws->act (not ws->scratch, which the caller allocated). */
void ember_gemm_ws_release(ember_gemm_ws *ws);
ember_status ember_gemm_linear(const ember_gemm *g, const ember_cpu_kernels *k, ember_pool *pool,
                               ember_gemm_ws *ws, const ember_gemm_args *a);

#if defined(EMBER_GEMM_PROFILE)
#include <stdio.h>
/* A build option for studying the GEMM (cmake -DEMBER_GEMM_PROFILE=ON; off
 * by default, it costs two clock reads per tile): every fp32 wide tile run by
 * pool thread 0 is timed, and the table gives nanoseconds per k step by the
 * tile's row strip within its task (strip 0 is the first pass over the
 * task's band of weights), split into the first column group of each strip,
 * the other groups, and the K blocks after the first. */
void ember_gemm_profile_reset(void);
void ember_gemm_profile_print(FILE *out);
#endif

#endif
