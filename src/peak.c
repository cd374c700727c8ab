/*
 * peak.c — ember_cpu_peak_gflops(): the practical fp32 peak of the machine,
 * measured with the CPU driver's own GEMM, so `ember bench` can report model
 * FLOP utilisation without reaching into the driver's internals.
 */
#include <string.h>

#include "core/threadpool.h"
#include "core/util.h"
#include "drivers/cpu/gemm.h"
#include "drivers/cpu/kernels.h"
#include "ember.h"

ember_status ember_cpu_peak_gflops(int32_t n_threads, double *out_gflops) {
    ember_error_clear();
    if (!out_gflops || n_threads < 0 || n_threads > 1024)
        return ember_error(EMBER_E_INVALID_ARGUMENT,
                           "ember_cpu_peak_gflops: n_threads %d (want [0, 1024]) or out NULL",
                           n_threads);
    *out_gflops = 0;
    int threads = n_threads > 0 ? n_threads : ember_cpu_count();
    /* large enough that packing and threading overheads are small */
    const int64_t M = 2048, N = 1536, K = 1024;
    float *x = ember_aligned_alloc(sizeof(float) * M * K, "peak input");
    float *w = ember_aligned_alloc(sizeof(float) * N * K, "peak weights");
    float *y = ember_aligned_alloc(sizeof(float) * M * N, "peak output");
    float *scratch =
        ember_aligned_alloc(sizeof(float) * ember_gemm_scratch_floats() * (size_t)threads, "peak scratch");
    ember_pool *pool = NULL;
    ember_status st = x && w && y && scratch ? ember_pool_create(threads, &pool) : EMBER_E_NOMEM;
    if (st == EMBER_OK) {
        for (int64_t i = 0; i < M * K; i++)
            x[i] = (float)((i * 7) % 13) * 0.01f;
        for (int64_t i = 0; i < N * K; i++)
            w[i] = (float)((i * 5) % 11) * 0.01f;
        ember_gemm g;
        ember_gemm_init(&g, EMBER_DTYPE_F32);
        ember_weight wt;
        memset(&wt, 0, sizeof wt);
        wt.kind = EMBER_W_MATRIX;
        wt.dtype = EMBER_DT_F32;
        wt.rows = N;
        wt.cols = K;
        wt.data = w;
        wt.name = "peak";
        ember_gemm_args a;
        memset(&a, 0, sizeof a);
        a.x = x;
        a.ldx = K;
        a.rows = M;
        a.w = &wt;
        a.y = y;
        a.ldy = N;
        const ember_cpu_kernels *k = ember_cpu_kernels_best();
        st = ember_gemm_linear(&g, k, pool, scratch, &a); /* warm-up */
        double best = 0;
        for (int r = 0; r < 8 && st == EMBER_OK; r++) {
            double t0 = ember_now();
            st = ember_gemm_linear(&g, k, pool, scratch, &a);
            double dt = ember_now() - t0;
            double gf = dt > 0 ? 2.0 * (double)M * (double)N * (double)K / dt / 1e9 : 0;
            best = gf > best ? gf : best;
        }
        if (st == EMBER_OK)
            *out_gflops = best;
    }
    ember_pool_free(pool);
    ember_aligned_free(x);
    ember_aligned_free(w);
    ember_aligned_free(y);
    ember_aligned_free(scratch);
    return st;
}
