/*
 * lt_tune.h — the fastest of cuBLASLt's candidate algorithms for one matrix
 * product, found by timing them on the device (EMBER_CUDA_LT_TUNE=1).
 *
 * cuBLASLt's heuristic ranks algorithms by a model of the GPU; its first
 * choice is not always the fastest for the narrow products of embedding
 * models (N = 384 or 768 outputs, K = 384-3072). The driver asks for up to
 * EMBER_LT_TUNE_CANDIDATES, this file times each on the real operands (at
 * most EMBER_LT_TUNE_ROWS rows of them, D into a scratch buffer so that a
 * product whose C is its D is not disturbed) and returns the winner's index.
 */
#ifndef EMBER_DRIVERS_CUDA_LT_TUNE_H
#define EMBER_DRIVERS_CUDA_LT_TUNE_H

#include <stddef.h>
#include <stdint.h>

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#define EMBER_LT_TUNE_CANDIDATES 8
#define EMBER_LT_TUNE_ROWS 4096                   /* rows (n) a candidate is timed on */
#define EMBER_LT_TUNE_MIN_MACS ((int64_t)1 << 27) /* smaller products keep the heuristic's */
#define EMBER_LT_TUNE_SCRATCH_MAX ((size_t)64 << 20)

/* One product as lt_matmul (cuda_driver.c) issues it, in cuBLASLt's
 * column-major terms: D (m x n) = op(A) B (+ beta C). */
typedef struct ember_lt_call {
    cublasLtHandle_t lt;
    cublasLtMatmulDesc_t op;    /* with its epilogue and bias set          */
    cublasLtMatrixLayout_t a;   /* A's layout (independent of n)           */
    cudaDataType_t b_type, cd_type;
    uint64_t m, n, k;
    int64_t ldb, ldc, ldd;
    size_t d_elem;              /* bytes per element of D                  */
    const void *A, *B, *C;
    float beta;
    void *workspace;
    size_t workspace_bytes;
    cudaStream_t stream;
} ember_lt_call;

/* Per-context timing state: the scratch D and two events. Zeroed = empty. */
typedef struct ember_lt_tuner {
    void *scratch;
    size_t scratch_bytes;
    cudaEvent_t e0, e1;
} ember_lt_tuner;

/* Whether EMBER_CUDA_LT_TUNE=1 (read once). */
int ember_lt_tune_enabled(void);

/* Times cand[0 .. n_cand) on `call` (stream not capturing) and returns the
 * index of the fastest; 0 when nothing could be timed (scratch too large or
 * not allocatable, every candidate refused). *us_first and *us_best get the
 * microseconds of cand[0] and of the winner per product (0 when not
 * timed). Synchronizes the stream; leaves the real D untouched. Never fails
 * the product: any error only narrows the choice. */
int ember_lt_tune_pick(ember_lt_tuner *t, const ember_lt_call *call,
                       const cublasLtMatmulHeuristicResult_t *cand, int n_cand, float *us_first,
                       float *us_best);

/* Frees the scratch and the events (the context's stream must be idle). */
void ember_lt_tuner_free(ember_lt_tuner *t);

#endif
