/*
 * gemm.c — see gemm.h.
 *
 * Work split: the output (rows x out) is cut into tiles handed to the pool.
 * Tiles are whole row bands when there are many rows (each thread then reads
 * all of W once per band: W stays in L2 across bands), column bands
 * otherwise (few tokens: each thread reads its slice of W).
 */
#include "gemm.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#if defined(EMBER_HAVE_OPENBLAS)
#include <cblas.h>
#endif

void ember_gemm_init(ember_gemm *g, int compute_dtype) {
    memset(g, 0, sizeof *g);
    g->compute_dtype = compute_dtype;
#if defined(EMBER_HAVE_OPENBLAS)
    const char *env = getenv("EMBER_BLAS");
    g->use_blas = !(env && env[0] == '0');
#endif
}

const char *ember_gemm_name(const ember_gemm *g) {
    return g->use_blas ? "openblas sgemm" : "ember kernels";
}

ember_status ember_gemm_prepare(const ember_gemm *g, ember_weight *w) { return EMBER_OK; }

void ember_gemm_release(ember_weight *w) {
    free(w->packed);
    w->packed = NULL;
}

typedef struct {
    const ember_gemm *g;
    const ember_cpu_kernels *k;
    const ember_linear_args *a;
    int64_t tile_rows, tile_cols, n_col_tiles;
} gemm_job;

static void gemm_tile(void *p, int64_t task, int thread) {
    const gemm_job *j = p;
    const ember_linear_args *a = j->a;
    const int64_t n = a->w->rows, kdim = a->w->cols;
    int64_t r0 = (task / j->n_col_tiles) * j->tile_rows;
    int64_t c0 = (task % j->n_col_tiles) * j->tile_cols;
    int64_t m = EMBER_MIN(j->tile_rows, a->rows - r0);
    int64_t nc = EMBER_MIN(j->tile_cols, n - c0);
    const float *x = a->x + r0 * a->ldx;
    const float *w = (const float *)a->w->data + c0 * kdim;
    float *y = a->y + r0 * a->ldy + c0;
    /* residual without activation: start from it and accumulate */
    int accumulate = a->residual && a->act == EMBER_ACT_NONE;
    if (accumulate && a->residual != a->y) {
        for (int64_t r = 0; r < m; r++)
            memcpy(y + r * a->ldy, a->residual + (r0 + r) * a->ldr + c0, sizeof(float) * (size_t)nc);
    }
#if defined(EMBER_HAVE_OPENBLAS)
    if (j->g->use_blas) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)nc, (int)kdim, 1.0f, x,
                    (int)a->ldx, w, (int)kdim, accumulate ? 1.0f : 0.0f, y, (int)a->ldy);
    } else
#endif
    {
        j->k->matmul_xwt(x, a->ldx, w, m, nc, kdim, y, a->ldy, accumulate);
    }
    const float *bias = a->bias ? (const float *)a->bias->data + c0 : NULL;
    int late_residual = a->residual && !accumulate;
    if (bias || a->act != EMBER_ACT_NONE || late_residual) {
        for (int64_t r = 0; r < m; r++)
            j->k->bias_act_row(y + r * a->ldy, bias, a->act,
                               late_residual ? a->residual + (r0 + r) * a->ldr + c0 : NULL, nc);
    }
}

ember_status ember_gemm_linear(const ember_gemm *g, const ember_cpu_kernels *k, ember_pool *pool,
                               const ember_linear_args *a) {
    const int64_t n = a->w->rows;
    if (a->rows <= 0 || n <= 0)
        return EMBER_OK;
    int nth = ember_pool_size(pool);
    gemm_job j = {g, k, a, a->rows, n, 1};
    if (nth > 1) {
        if (a->rows >= 64 * nth) {
            /* row bands of at least 64 rows, about 2 per thread */
            int64_t bands = EMBER_MAX((int64_t)nth, EMBER_MIN(2 * (int64_t)nth, a->rows / 64));
            j.tile_rows = (a->rows + bands - 1) / bands;
        } else {
            /* column bands, multiples of 16 */
            int64_t per = (n + nth - 1) / nth;
            j.tile_cols = EMBER_MAX((int64_t)16, (per + 15) & ~(int64_t)15);
            j.n_col_tiles = (n + j.tile_cols - 1) / j.tile_cols;
        }
    }
    int64_t row_tiles = (a->rows + j.tile_rows - 1) / j.tile_rows;
    ember_pool_run(pool, gemm_tile, &j, row_tiles * j.n_col_tiles);
    return EMBER_OK;
}
