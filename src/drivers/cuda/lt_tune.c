/*
 * lt_tune.c — timing cuBLASLt's candidate algorithms (see lt_tune.h).
 *
 * Each candidate runs once to warm up (first launches load modules), then
 * EMBER_LT_TUNE_REPS times between two events; the mean is its time. The
 * timed problem is the real one cut to its first EMBER_LT_TUNE_ROWS
 * columns of B, C and D (rows of x and y), so tuning a 65,536-token pass
 * costs what a 4,096-token one does; cuBLASLt checks each candidate
 * (cublasLtMatmulAlgoCheck) against that problem before it runs.
 */

#include "drivers/cuda/cublaslt_loader.h"
#include "drivers/cuda/cuda_kernels.h"
#include "drivers/cuda/lt_tune.h"

#define EMBER_LT_TUNE_REPS 3

int ember_lt_tune_enabled(void) {
    static int on = -1;
    return ecu_env_switch("EMBER_CUDA_LT_TUNE", 0, &on);
}

static int run(const ember_lt_call *c, const cublasLtMatmulAlgo_t *algo,
               cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t cl, cublasLtMatrixLayout_t dl,
               void *d) {
    const float alpha = 1.0f;
    return ember_lt.cublasLtMatmul(c->lt, c->op, &alpha, c->A, c->a, c->B, b, &c->beta, c->C, cl,
                                   d, dl, algo, c->workspace, c->workspace_bytes,
                                   c->stream) == CUBLAS_STATUS_SUCCESS;
}

int ember_lt_tune_pick(ember_lt_tuner *t, const ember_lt_call *c,
                       const cublasLtMatmulHeuristicResult_t *cand, int n_cand, float *us_first,
                       float *us_best) {
    *us_first = *us_best = 0.0f;
    if (n_cand < 2)
        return 0;
    const uint64_t rows = c->n < EMBER_LT_TUNE_ROWS ? c->n : EMBER_LT_TUNE_ROWS;
    const size_t need = (size_t)rows * (size_t)c->ldd * c->d_elem;
    if (need > EMBER_LT_TUNE_SCRATCH_MAX)
        return 0;
    if (t->scratch_bytes < need) {
        cudaFree(t->scratch); /* synchronizes: no product still writes it */
        t->scratch = NULL;
        t->scratch_bytes = 0;
        if (cudaMalloc(&t->scratch, need) != cudaSuccess) {
            (void)cudaGetLastError(); /* not sticky: clear it */
            return 0;
        }
        t->scratch_bytes = need;
    }
    if (!t->e0 && cudaEventCreate(&t->e0) != cudaSuccess)
        return 0;
    if (!t->e1 && cudaEventCreate(&t->e1) != cudaSuccess)
        return 0;

    cublasLtMatrixLayout_t b = NULL, cl = NULL, dl = NULL;
    int best = 0;
    float best_us = 0.0f;
    if (ember_lt.cublasLtMatrixLayoutCreate(&b, c->b_type, c->k, rows, c->ldb) ||
        ember_lt.cublasLtMatrixLayoutCreate(&cl, c->cd_type, c->m, rows, c->ldc) ||
        ember_lt.cublasLtMatrixLayoutCreate(&dl, c->cd_type, c->m, rows, c->ldd))
        goto done;
    for (int i = 0; i < n_cand; i++) {
        cublasLtMatmulHeuristicResult_t chk;
        if (cand[i].state != CUBLAS_STATUS_SUCCESS || cand[i].workspaceSize > c->workspace_bytes ||
            ember_lt.cublasLtMatmulAlgoCheck(c->lt, c->op, c->a, b, cl, dl, &cand[i].algo,
                                             &chk) != CUBLAS_STATUS_SUCCESS ||
            chk.workspaceSize > c->workspace_bytes)
            continue;
        if (!run(c, &cand[i].algo, b, cl, dl, t->scratch))
            continue;
        int ok = cudaEventRecord(t->e0, c->stream) == cudaSuccess;
        for (int r = 0; r < EMBER_LT_TUNE_REPS && ok; r++)
            ok = run(c, &cand[i].algo, b, cl, dl, t->scratch);
        float ms = 0.0f;
        ok = ok && cudaEventRecord(t->e1, c->stream) == cudaSuccess &&
             cudaEventSynchronize(t->e1) == cudaSuccess &&
             cudaEventElapsedTime(&ms, t->e0, t->e1) == cudaSuccess;
        if (!ok) {
            (void)cudaGetLastError();
            continue;
        }
        const float us = 1000.0f * ms / EMBER_LT_TUNE_REPS;
        if (i == 0)
            *us_first = us;
        if (best_us == 0.0f || us < best_us) {
            best_us = us;
            best = i;
        }
    }
    *us_best = best_us;
done:
    if (dl)
        ember_lt.cublasLtMatrixLayoutDestroy(dl);
    if (cl)
        ember_lt.cublasLtMatrixLayoutDestroy(cl);
    if (b)
        ember_lt.cublasLtMatrixLayoutDestroy(b);
    return best;
}

void ember_lt_tuner_free(ember_lt_tuner *t) {
    cudaFree(t->scratch);
    if (t->e0)
        cudaEventDestroy(t->e0);
    if (t->e1)
        cudaEventDestroy(t->e1);
    t->scratch = NULL;
    t->scratch_bytes = 0;
    t->e0 = t->e1 = NULL;
}
