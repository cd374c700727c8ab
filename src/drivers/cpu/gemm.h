/*
 * gemm.h — the CPU driver's matrix multiply: y = act(x W^T + b) + residual.
 *
 * One entry point for every Linear layer. It picks, once per model, between
 * OpenBLAS sgemm (single-threaded library, driven by Ember's own pool so
 * there is never a second set of threads) and the kernel table's matmul, and
 * it applies the epilogue (bias, activation, residual) per output tile while
 * the tile is still in cache.
 */
#ifndef EMBER_DRIVERS_CPU_GEMM_H
#define EMBER_DRIVERS_CPU_GEMM_H

#include "core/threadpool.h"
#include "drivers/cpu/kernels.h"
#include "drivers/driver.h"

typedef struct ember_gemm {
    int use_blas;
    int compute_dtype; /* ember_dtype */
} ember_gemm;

void ember_gemm_init(ember_gemm *g, int compute_dtype);
const char *ember_gemm_name(const ember_gemm *g);
/* Called once per matrix weight at load (packing, reduced precision). */
ember_status ember_gemm_prepare(const ember_gemm *g, ember_weight *w);
void ember_gemm_release(ember_weight *w);
ember_status ember_gemm_linear(const ember_gemm *g, const ember_cpu_kernels *k, ember_pool *pool,
                               const ember_linear_args *a);

#endif
