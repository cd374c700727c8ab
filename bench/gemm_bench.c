/*
 * gemm_bench.c — times the CPU driver's Linear op (Ember's blocked GEMM) on
 * the shapes of the benchmark models, against OpenBLAS sgemm when built with
 * it, and prints GFLOP/s. Usage: gemm_bench [threads [SHAPE]] (SHAPE: only the
 * shapes whose name contains it, e.g. "ffn")
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "core/threadpool.h"
#include "core/util.h"
#include "drivers/cpu/gemm.h"
#include "drivers/cpu/kernels.h"

#if defined(EMBER_BENCH_OPENBLAS)
#include <cblas.h>
#endif

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float frand(void) { return (float)rand() / (float)RAND_MAX - 0.5f; }

int main(int argc, char **argv) {
    int nth = argc > 1 ? atoi(argv[1]) : 2;
    const struct { int m, n, k; const char *what; } shapes[] = {
        {512, 384, 384, "A q/k/v/o"},   {512, 1536, 384, "A ffn in"}, {512, 384, 1536, "A ffn out"},
        {2048, 384, 384, "A q (2048)"}, {2048, 1536, 384, "A ffn in (2048)"},
        {512, 2304, 768, "B Wqkv"},     {512, 768, 768, "B Wo"},      {512, 2304, 768, "B Wi"},
        {512, 768, 1152, "B mlp Wo"},   {64, 384, 384, "A tiny M"},   {16, 384, 384, "A one text q"},
        {16, 1536, 384, "A one text ffn in"},
    };
    ember_pool *pool;
    ember_pool_create(nth, &pool);
    ember_gemm g;
    ember_gemm_init(&g, 1);
    const ember_cpu_kernels *k = ember_cpu_kernels_best();
    ember_gemm_ws ws = {.scratch = ember_aligned_alloc(sizeof(float) * ember_gemm_scratch_floats() * (size_t)nth, "s")};
    ember_gemm_choose(&g, k);
    printf("kernels %s, %s, %d threads; tile chosen at load: %s; GFLOP per thread-CPU-second, medians of 7 alternating rounds\n", k->name,
           ember_gemm_name(&g, k), nth, ember_gemm_tile_name(&g, k));
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        if (argc > 2 && !strstr(shapes[s].what, argv[2]))
            continue;
        int m = shapes[s].m, n = shapes[s].n, kk = shapes[s].k;
        float *x = malloc(sizeof(float) * (size_t)m * kk), *w = malloc(sizeof(float) * (size_t)n * kk);
        float *y = malloc(sizeof(float) * (size_t)m * n);
        for (size_t i = 0; i < (size_t)m * kk; i++) x[i] = frand();
        for (size_t i = 0; i < (size_t)n * kk; i++) w[i] = frand();
        ember_weight wt = {.kind = EMBER_W_MATRIX, .dtype = EMBER_DT_F32, .rows = n, .cols = kk, .data = w, .name = "w"};
        ember_gemm_prepare(&g, &wt);
        ember_gemm_args a = {.x = x, .ldx = kk, .rows = m, .w = &wt, .y = y, .ldy = n};
        /* every fp32 tile of the table, alternated round by round (A B A B),
         * so that load from other processes hits them alike; medians */
        enum { ROUNDS = 7, NV = 12 };
        const int nw = k->gemm_wide ? (k->n_gemm_wide < 6 ? k->n_gemm_wide : 6) : 0;
        ember_gemm gb, gq;
        ember_gemm_init(&gb, EMBER_DTYPE_BF16);
        ember_gemm_init(&gq, EMBER_DTYPE_INT8); /* int8: activations quantized once per call */
        ember_weight wb = wt, wq = wt;
        const int has_b16 = k->gemm_tile_bf16 || k->amx_bf16, has_q8 = k->gemm_tile_q8 || k->amx_bf16;
        if (has_b16)
            ember_gemm_prepare(&gb, &wb);
        if (has_q8)
            ember_gemm_prepare(&gq, &wq);
        /* the variants: every fp32 tile, then bf16 and int8 on each of their paths */
        struct { const char *name; ember_gemm *g; ember_weight *w; const ember_gemm_variant *wide; int narrow, amx; } vs[NV];
        int nv = 0;
        for (int v = 0; v <= nw; v++) {
            vs[nv] = (__typeof__(vs[0])){NULL, &g, &wt, v ? &k->gemm_wide[v - 1] : NULL, 0, 0};
            nv++;
        }
        if (k->gemm_tile_bf16) {
            vs[nv++] = (__typeof__(vs[0])){"bf16 12x16", &gb, &wb, NULL, 1, 0};
            if (k->gemm_tile_bf16_wide)
                vs[nv++] = (__typeof__(vs[0])){"bf16 12x32", &gb, &wb, NULL, 0, 0};
        }
        if (k->amx_bf16)
            vs[nv++] = (__typeof__(vs[0])){"bf16 amx", &gb, &wb, NULL, 0, 1};
        if (k->gemm_tile_q8)
            vs[nv++] = (__typeof__(vs[0])){"int8 vnni", &gq, &wq, NULL, 0, 0};
        if (k->amx_bf16)
            vs[nv++] = (__typeof__(vs[0])){"int8 amx", &gq, &wq, NULL, 0, 1};
        double gfs[NV][ROUNDS];
        int reps = (int)(4e8 / (2.0 * m * n * kk)) + 1;
        for (int round = 0; round < ROUNDS; round++)
            for (int v = 0; v < nv; v++) {
                ember_gemm *gv = vs[v].g;
                a.w = vs[v].w;
                g.wide = vs[v].wide;
                gv->no_bf16_wide = vs[v].narrow;
                gv->amx = vs[v].amx;
                ember_gemm_linear(gv, k, pool, &ws, &a);
                /* CPU seconds of the process: what the threads got, less
                 * sensitive to other processes than the wall clock */
                double c0 = cpu_seconds();
                for (int r = 0; r < reps; r++)
                    ember_gemm_linear(gv, k, pool, &ws, &a);
                gfs[v][round] = 2.0 * m * n * kk * reps / ((cpu_seconds() - c0) / nth) / 1e9;
            }
        a.w = &wt;
        g.wide = NULL;
        printf("%-18s %5dx%5dx%5d ", shapes[s].what, m, n, kk);
        double base = 0;
        for (int v = 0; v < nv; v++) {
            for (int i = 1; i < ROUNDS; i++) /* insertion sort for the median */
                for (int j = i; j > 0 && gfs[v][j] < gfs[v][j - 1]; j--) {
                    double t = gfs[v][j];
                    gfs[v][j] = gfs[v][j - 1];
                    gfs[v][j - 1] = t;
                }
            double med = gfs[v][ROUNDS / 2];
            if (v == 0)
                base = med;
            g.wide = vs[v].wide;
            printf(" %s %6.1f (%.2fx)", vs[v].name ? vs[v].name : ember_gemm_tile_name(&g, k), med, med / base);
        }
        g.wide = NULL;
        if (has_b16)
            ember_gemm_release(&wb);
        if (has_q8)
            ember_gemm_release(&wq);
        double t0 = 0, dt = 0;
        (void)t0;
        (void)dt;
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
    ember_aligned_free(ws.scratch);
    ember_gemm_ws_release(&ws);
    ember_pool_free(pool);
    return 0;
}
