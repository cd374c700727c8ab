/*
 * cold_band.c — what the first pass over a band of weights costs when the
 * band comes from memory, and why: the fp32 GEMM's 8 x 48 tile (three
 * 16-column panels, 8 rows of activations in L1) run over a 590 KB band
 * (4 groups x 3 panels x K 768, MPNet-base's shape) that was last touched
 * hundreds of MB ago, against the same tile over a band in L2. The cold
 * band is timed
 *
 *   - on 4 KiB pages and on 2 MiB pages (MADV_HUGEPAGE), and
 *   - on 4 KiB pages after one line of each page was touched during the
 *     previous (warm) work, by a load or by a software prefetch: a load
 *     takes the page walk early, a prefetch that misses the TLB is dropped.
 *
 * It shows where the per-band cost of `gemm_layers`' per-strip profile comes
 * from: one page walk per 4 KiB page (a nested walk on a VM), which huge
 * pages remove (core/util.c asks for them). x86-64 with AVX-512F only; on
 * anything else it says so and exits 0.
 *
 *   cold_band [rounds]     (default 40; prints the mean of each mode)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>
#include <sys/mman.h>

enum { K = 768, GROUPS = 4, NR = 16 };
#define BAND_FLOATS ((size_t)GROUPS * 3 * K * NR) /* 590 KB */
#define N_BANDS 1200                               /* 700 MB: past any cache here */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float g_a[8 * K] __attribute__((aligned(64)));
static float g_sink;

/* one 8 x 48 tile over K: the library's fp32 wide tile, minus its epilogue */
__attribute__((target("avx512f"), noinline)) static void tile(const float *b) {
    __m512 acc[3][8];
#pragma GCC unroll 3
    for (int q = 0; q < 3; q++)
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            acc[q][i] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 bv[3];
#pragma GCC unroll 3
        for (int q = 0; q < 3; q++)
            bv[q] = _mm512_loadu_ps(b + (size_t)q * K * NR + (size_t)k * NR);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            const __m512 av = _mm512_set1_ps(g_a[i * K + k]);
#pragma GCC unroll 3
            for (int q = 0; q < 3; q++)
                acc[q][i] = _mm512_fmadd_ps(av, bv[q], acc[q][i]);
        }
    }
    for (int q = 0; q < 3; q++)
        for (int i = 0; i < 8; i++)
            g_sink += _mm512_reduce_add_ps(acc[q][i]);
}

/* one row strip over the band: its four groups in turn */
static void strip(const float *band) {
    for (int g = 0; g < GROUPS; g++)
        tile(band + (size_t)g * 3 * K * NR);
}

static float *bands(int huge) {
    const size_t bytes = (size_t)N_BANDS * BAND_FLOATS * sizeof(float), align = (size_t)2 << 20;
    float *p = aligned_alloc(align, (bytes + align - 1) / align * align);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    madvise(p, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    for (size_t i = 0; i < (size_t)N_BANDS * BAND_FLOATS; i++)
        p[i] = (float)(i % 97) * 0.01f;
    return p;
}

enum { COLD_4K, COLD_2M, TOUCH_LOAD, TOUCH_T0, TOUCH_T2, N_MODES };
static const char *mode_name[N_MODES] = {"4 KiB pages", "2 MiB pages", "4 KiB, a load per page before",
                                         "4 KiB, prefetcht0 per page", "4 KiB, prefetcht2 per page"};

int main(int argc, char **argv) {
    const int rounds = argc > 1 ? atoi(argv[1]) : 40;
    if (!__builtin_cpu_supports("avx512f")) {
        printf("cold_band: needs AVX-512F; nothing measured\n");
        return 0;
    }
    if (rounds < 4) {
        fprintf(stderr, "usage: cold_band [rounds >= 4]\n");
        return 2;
    }
    float *small = bands(0), *huge = bands(1), *warm = aligned_alloc(64, BAND_FLOATS * sizeof(float));
    memcpy(warm, small, BAND_FLOATS * sizeof(float));
    for (int i = 0; i < 8 * K; i++)
        g_a[i] = 0.001f * (float)i;
    double t_warm[N_MODES] = {0}, t_cold[N_MODES] = {0};
    size_t next = 0;
    for (int r = 0; r < rounds; r++)
        for (int m = 0; m < N_MODES; m++) {
            const size_t which = next++ % N_BANDS;
            const float *band = (m == COLD_2M ? huge : small) + which * BAND_FLOATS;
            const char *bytes = (const char *)band;
            const size_t pages = BAND_FLOATS * sizeof(float) / 4096;
            /* the current task's last 4 strips over a band in L2, with the
             * next band's touches (if any) spread over its 16 tiles */
            const double t0 = now();
            size_t page = 0;
            for (int s = 0; s < 4; s++)
                for (int g = 0; g < GROUPS; g++) {
                    for (int i = 0; i < 9 && page < pages; i++, page++) {
                        const char *line = bytes + page * 4096;
                        if (m == TOUCH_LOAD)
                            g_sink += *(const volatile float *)line;
                        else if (m == TOUCH_T0)
                            _mm_prefetch(line, _MM_HINT_T0);
                        else if (m == TOUCH_T2)
                            _mm_prefetch(line, _MM_HINT_T2);
                    }
                    tile(warm + (size_t)g * 3 * K * NR);
                }
            const double t1 = now();
            strip(band); /* the next task's first strip: its band from memory */
            const double t2 = now();
            if (r >= 2) { /* the first rounds fault nothing but still warm up */
                t_warm[m] += t1 - t0;
                t_cold[m] += t2 - t1;
            }
        }
    const double n = rounds - 2, ksteps = GROUPS * K;
    printf("cold band of %.0f KB (8 x 48 tiles, K %d), mean of %d rounds; one strip over a band in L2 "
           "runs at about %.1f ns per k step\n",
           BAND_FLOATS * 4.0 / 1e3, K, rounds - 2, 1e9 * t_warm[COLD_4K] / n / (4 * ksteps));
    printf("%-32s %14s %14s %12s\n", "mode", "4 warm strips", "cold strip", "ns/k step");
    for (int m = 0; m < N_MODES; m++)
        printf("%-32s %11.1f us %11.1f us %12.1f\n", mode_name[m], 1e6 * t_warm[m] / n, 1e6 * t_cold[m] / n,
               1e9 * t_cold[m] / n / ksteps);
    printf("(sink %g)\n", (double)g_sink);
    free(small);
    free(huge);
    free(warm);
    return 0;
}
#else
int main(void) {
    printf("cold_band: x86-64 Linux only; nothing measured\n");
    return 0;
}
#endif
