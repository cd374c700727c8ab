/*
 * cold_band.c — what the first pass over a band of weights costs when the
 * band comes from memory, and why: the library's fp32 GEMM tile (the wide
 * one the GEMM picks at load, 8 x 48 on AVX-512; one row strip of
 * activations in L1) run over a 590 KB band (twelve 16-column panels x K
 * 768, MPNet-base's shape) that was last touched hundreds of MB ago,
 * against the same tile over a band in L2. The cold band is timed
 *
 *   - on 4 KiB pages and on 2 MiB pages (MADV_HUGEPAGE), and
 *   - on 4 KiB pages after one line of each page was touched during the
 *     previous (warm) work, by a load or by a software prefetch: a load
 *     takes the page walk early, a prefetch that misses the TLB is dropped.
 *
 * It shows where the per-band cost of `gemm_layers`' per-strip profile comes
 * from: one page walk per 4 KiB page (a nested walk on a VM), which huge
 * pages remove (core/util.c asks for them). Linux only (madvise); elsewhere
 * it says so and exits 0.
 *
 *   cold_band [rounds]     (default 40; prints the mean of each mode)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__linux__)
#include <sys/mman.h>

#include "drivers/cpu/gemm.h"
#include "drivers/cpu/kernels.h"

enum { K = 768, PANELS = 12, NR = EMBER_GEMM_NR };
#define BAND_FLOATS ((size_t)PANELS * K * NR) /* 590 KB */
#define N_BANDS 1200                          /* 700 MB: past any cache here */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* the tile Ember's fp32 GEMM runs: the wide one chosen at load, else the
 * table's 16-column one */
static void (*g_tile)(const ember_gemm_tile *);
static int g_mr, g_panels;
static float g_a[EMBER_GEMM_MR_MAX * K] __attribute__((aligned(64)));
static float g_c[EMBER_GEMM_MR_MAX * PANELS * NR] __attribute__((aligned(64)));

/* one tile over column group p (its first panel) of a band */
static void tile(const float *band, int p) {
    const ember_gemm_tile t = {.mr = g_mr, .nr = g_panels * NR, .kc = K, .a = g_a, .lda = K,
                               .bp = band + (size_t)p * K * NR, .ldb = NR, .ldp = (int64_t)K * NR,
                               .c = g_c + p * NR, .ldc = PANELS * NR, .last = 1};
    g_tile(&t);
}

/* one row strip over the band: its column groups in turn */
static void strip(const float *band) {
    for (int p = 0; p < PANELS; p += g_panels)
        tile(band, p);
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
    const ember_cpu_kernels *k = ember_cpu_kernels_best();
    ember_gemm g;
    ember_gemm_init(&g, EMBER_DTYPE_F32);
    ember_gemm_choose(&g, k);
    g_tile = g.wide ? g.wide->tile : k->gemm_tile;
    g_mr = g.wide ? g.wide->mr : k->mr;
    g_panels = g.wide ? g.wide->panels : 1;
    if (rounds < 4) {
        fprintf(stderr, "usage: cold_band [rounds >= 4]\n");
        return 2;
    }
    float *small = bands(0), *huge = bands(1), *warm = aligned_alloc(64, BAND_FLOATS * sizeof(float));
    memcpy(warm, small, BAND_FLOATS * sizeof(float));
    for (int i = 0; i < EMBER_GEMM_MR_MAX * K; i++)
        g_a[i] = 0.001f * (float)i;
    const int groups = PANELS / g_panels; /* 12 panels: 1, 2, 3 or 4 per tile */
    volatile float sink = 0;
    double t_warm[N_MODES] = {0}, t_cold[N_MODES] = {0};
    size_t next = 0;
    for (int r = 0; r < rounds; r++)
        for (int m = 0; m < N_MODES; m++) {
            const size_t which = next++ % N_BANDS;
            const float *band = (m == COLD_2M ? huge : small) + which * BAND_FLOATS;
            const char *bytes = (const char *)band;
            const size_t pages = BAND_FLOATS * sizeof(float) / 4096;
            /* the current task's last 4 strips over a band in L2, with the
             * next band's touches (if any) spread over their tiles */
            const size_t per_tile = (pages + 4 * (size_t)groups - 1) / (4 * (size_t)groups);
            const double t0 = now();
            size_t page = 0;
            for (int s = 0; s < 4; s++)
                for (int p = 0; p < PANELS; p += g_panels) {
                    for (size_t i = 0; i < per_tile && page < pages; i++, page++) {
                        const char *line = bytes + page * 4096;
                        if (m == TOUCH_LOAD)
                            sink += *(const volatile float *)line;
                        else if (m == TOUCH_T0)
                            __builtin_prefetch(line, 0, 3); /* prefetcht0 on x86 */
                        else if (m == TOUCH_T2)
                            __builtin_prefetch(line, 0, 1); /* prefetcht2 */
                    }
                    tile(warm, p);
                }
            const double t1 = now();
            strip(band); /* the next task's first strip: its band from memory */
            const double t2 = now();
            if (r >= 2) { /* the first rounds fault nothing but still warm up */
                t_warm[m] += t1 - t0;
                t_cold[m] += t2 - t1;
            }
        }
    const double n = rounds - 2, ksteps = groups * K;
    printf("cold band of %.0f KB (%s: %d x %d tiles, K %d), mean of %d rounds; one strip over a band in L2 "
           "runs at about %.1f ns per k step\n",
           BAND_FLOATS * 4.0 / 1e3, k->name, g_mr, g_panels * NR, K, rounds - 2,
           1e9 * t_warm[COLD_4K] / n / (4 * ksteps));
    printf("%-32s %14s %14s %12s\n", "mode", "4 warm strips", "cold strip", "ns/k step");
    for (int m = 0; m < N_MODES; m++)
        printf("%-32s %11.1f us %11.1f us %12.1f\n", mode_name[m], 1e6 * t_warm[m] / n, 1e6 * t_cold[m] / n,
               1e9 * t_cold[m] / n / ksteps);
    printf("(sink %g)\n", (double)(sink + g_c[0]));
    free(small);
    free(huge);
    free(warm);
    return 0;
}
#else
int main(void) {
    printf("cold_band: Linux only (madvise); nothing measured\n");
    return 0;
}
#endif
