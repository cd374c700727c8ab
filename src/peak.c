/*
 * peak.c — ember_cpu_peak_gflops(): the arithmetic peak of the machine,
 * measured with the register-only multiply-add loops of the kernel table the
 * CPU driver picks (kernels.h: peak_f32, peak_bf16 or peak_amx_bf16, peak_q8), run on every
 * thread of a pool at once, so `ember bench` reports model FLOP utilisation
 * against the hardware rather than against Ember's own GEMM.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/threadpool.h"
#include "core/util.h"
#include "drivers/cpu/kernels.h"
#include "ember.h"

typedef struct {
    double (*loop)(int64_t iters);
    int64_t iters;
    double rate[1024]; /* operations per second of each thread's CPU time */
} peak_job;

static double thread_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Each thread's rate is over its own CPU time, so time the scheduler gave
 * to other processes does not count: the peak is the hardware's, on a busy
 * machine too (cores shared with a hyperthread sibling still count low). */
static void peak_task(void *p, int64_t task, int thread) {
    (void)thread;
    peak_job *j = p;
    double t0 = thread_cpu_seconds();
    double ops = j->loop(j->iters);
    double dt = thread_cpu_seconds() - t0;
    j->rate[task] = dt > 0 ? ops / dt : 0;
}

ember_status ember_cpu_peak_gflops_dtype(int32_t n_threads, ember_dtype dtype, double *out_gflops) {
    ember_error_clear();
    if (!out_gflops || n_threads < 0 || n_threads > 1024)
        return ember_error(EMBER_E_INVALID_ARGUMENT,
                           "ember_cpu_peak_gflops: n_threads %d (want [0, 1024]) or out NULL",
                           n_threads);
    if (dtype != EMBER_DTYPE_AUTO && dtype != EMBER_DTYPE_F32 && dtype != EMBER_DTYPE_BF16 &&
        dtype != EMBER_DTYPE_INT8)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_cpu_peak_gflops_dtype: unknown dtype %d",
                           (int)dtype);
    *out_gflops = 0;
    const ember_cpu_kernels *k = ember_cpu_kernels_best();
    double (*loop)(int64_t) = k->peak_f32;
    /* the dot products only where the GEMM uses them; bf16 runs on AMX
     * tiles where the CPU has them */
    if (dtype == EMBER_DTYPE_BF16 && k->gemm_tile_bf16 && k->peak_bf16)
        loop = k->peak_bf16;
    if (dtype == EMBER_DTYPE_BF16 && k->amx_bf16 && k->peak_amx_bf16)
        loop = k->peak_amx_bf16;
    if (dtype == EMBER_DTYPE_INT8 && k->gemm_tile_q8 && k->peak_q8)
        loop = k->peak_q8;
    if (!loop)
        loop = ember_cpu_kernels_ref.peak_f32;
    int threads = n_threads > 0 ? n_threads : ember_cpu_count();
    peak_job *j = ember_calloc(1, sizeof *j, "peak");
    ember_pool *pool = NULL;
    ember_status st = j ? ember_pool_create(threads, &pool) : EMBER_E_NOMEM;
    if (st != EMBER_OK) {
        free(j);
        return st;
    }
    j->loop = loop;
    /* calibrate on one thread to about 20 ms per run */
    j->iters = 1 << 12;
    for (;;) {
        double t0 = thread_cpu_seconds();
        (void)loop(j->iters);
        double dt = thread_cpu_seconds() - t0;
        if (dt > 0.004 || j->iters > ((int64_t)1 << 40))
            break;
        j->iters *= 4;
    }
    j->iters *= 5;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        ember_pool_run(pool, peak_task, j, threads);
        double rate = 0;
        for (int i = 0; i < threads; i++)
            rate += j->rate[i];
        best = rate / 1e9 > best ? rate / 1e9 : best;
    }
    ember_pool_free(pool);
    free(j);
    *out_gflops = best;
    return best > 0 ? EMBER_OK : ember_error(EMBER_E_INTERNAL, "ember_cpu_peak_gflops: no time measured");
}

ember_status ember_cpu_peak_gflops(int32_t n_threads, double *out_gflops) {
    return ember_cpu_peak_gflops_dtype(n_threads, EMBER_DTYPE_F32, out_gflops);
}
