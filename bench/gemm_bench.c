/*
 * gemm_bench.c — times the CPU driver's Linear op (Ember's blocked GEMM) on
 * the shapes of the benchmark models, against OpenBLAS sgemm when built with
 * it, and prints GFLOP/s. Usage: gemm_bench [threads]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "core/util.h"
#include "drivers/cpu/gemm.h"
#include "drivers/cpu/kernels.h"

#if defined(EMBER_BENCH_OPENBLAS)
#include <cblas.h>
#endif

static float frand(void) { return (float)rand() / (float)RAND_MAX - 0.5f; }

int main(int argc, char **argv) {
    int nth = argc > 1 ? atoi(argv[1]) : 2;
    const struct { int m, n, k; const char *what; } shapes[] = {
        {512, 384, 384, "A q/k/v/o"},   {512, 1536, 384, "A ffn in"}, {512, 384, 1536, "A ffn out"},
        {2048, 384, 384, "A q (2048)"}, {2048, 1536, 384, "A ffn in (2048)"},
        {512, 2304, 768, "B Wqkv"},     {512, 768, 768, "B Wo"},      {512, 2304, 768, "B Wi"},
        {512, 768, 1152, "B mlp Wo"},   {64, 384, 384, "A tiny M"},
    };
    ember_pool *pool;
    ember_pool_create(nth, &pool);
    ember_gemm g;
    ember_gemm_init(&g, 1);
    const ember_cpu_kernels *k = ember_cpu_kernels_best();
    float *scratch = ember_aligned_alloc(sizeof(float) * ember_gemm_scratch_floats() * (size_t)nth, "s");
    printf("kernels %s, %s, %d threads\n", k->name, ember_gemm_name(&g, k), nth);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s].m, n = shapes[s].n, kk = shapes[s].k;
        float *x = malloc(sizeof(float) * (size_t)m * kk), *w = malloc(sizeof(float) * (size_t)n * kk);
        float *y = malloc(sizeof(float) * (size_t)m * n);
        for (size_t i = 0; i < (size_t)m * kk; i++) x[i] = frand();
        for (size_t i = 0; i < (size_t)n * kk; i++) w[i] = frand();
        ember_weight wt = {.kind = EMBER_W_MATRIX, .dtype = EMBER_DT_F32, .rows = n, .cols = kk, .data = w, .name = "w"};
        ember_gemm_prepare(&g, &wt);
        ember_gemm_args a = {.x = x, .ldx = kk, .rows = m, .w = &wt, .y = y, .ldy = n};
        ember_gemm_linear(&g, k, pool, scratch, &a);
        int reps = (int)(2e9 / (2.0 * m * n * kk)) + 1;
        double t0 = ember_now();
        for (int r = 0; r < reps; r++)
            ember_gemm_linear(&g, k, pool, scratch, &a);
        double dt = ember_now() - t0;
        double gf = 2.0 * m * n * kk * reps / dt / 1e9;
        printf("%-18s %5dx%5dx%5d  ember %6.1f GFLOP/s", shapes[s].what, m, n, kk, gf);
#if defined(EMBER_BENCH_OPENBLAS)
        t0 = ember_now();
        for (int r = 0; r < reps; r++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, kk, 1.0f, x, kk, w, kk, 0.0f, y, n);
        dt = ember_now() - t0;
        printf("   openblas(1 thread) %6.1f GFLOP/s", 2.0 * m * n * kk * reps / dt / 1e9);
#endif
        printf("\n");
        ember_gemm_release(&wt);
        free(x); free(w); free(y);
    }
    ember_aligned_free(scratch);
    ember_pool_free(pool);
    return 0;
}
