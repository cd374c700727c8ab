/*
 * gemm_layers.c — times the linear products of an encoder in the order a
 * forward pass runs them (per layer: Q/K/V stacked [3H, H], output [H, H]
 * with the residual, FFN in [F, H] with bias + GELU, FFN out [H, F] with the
 * residual), with every layer's weights distinct, as in a real model (they
 * come from memory, not from cache), or with one layer's weights reused by
 * every layer ("warm"). The gap between the two is what a real pass loses to
 * weights and activations that are not in cache; gemm_bench times each
 * shape warm.
 *
 *   gemm_layers [threads [rows [H [F [layers [f32|bf16|int8]]]]]]
 *   defaults: 2 512 768 3072 12 f32 (MPNet/XLM-R-base shapes, one short batch)
 *   env REPS=8: passes per mode; the modes alternate pass by pass in one
 *   process, best and mean reported (the VM's noise between processes is
 *   larger than most effects worth measuring). Built with
 *   -DEMBER_GEMM_PROFILE=ON it also prints the fp32 tile's time per k step by
 *   row strip (see gemm.h), which shows where a pass loses to memory.
 *   env PAGES=small-first|huge-first: instead of warm, a second cold set of
 *   weights allocated on 4 KiB pages (EMBER_HUGEPAGES=0 around its
 *   allocation) beside the default set on 2 MiB pages, the two sets made in
 *   the order named (the first set made can run differently from the next);
 *   the activations are on 2 MiB pages in both modes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/threadpool.h"
#include "core/util.h"
#include "drivers/cpu/gemm.h"
#include "drivers/cpu/kernels.h"

enum { N_OPS = 4 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *random_floats(size_t n) {
    float *p = ember_aligned_alloc(sizeof(float) * n, "bench buffer");
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    return p;
}

int main(int argc, char **argv) {
    const int nth = argc > 1 ? atoi(argv[1]) : 2;
    const int64_t M = argc > 2 ? atoll(argv[2]) : 512, H = argc > 3 ? atoll(argv[3]) : 768;
    const int64_t F = argc > 4 ? atoll(argv[4]) : 3072;
    const int L = argc > 5 ? atoi(argv[5]) : 12;
    const char *dt = argc > 6 ? argv[6] : "f32";
    const int reps = getenv("REPS") ? atoi(getenv("REPS")) : 8;
    const int compute = !strcmp(dt, "bf16") ? EMBER_DTYPE_BF16 : !strcmp(dt, "int8") ? EMBER_DTYPE_INT8 : EMBER_DTYPE_F32;
    if (nth < 1 || M < 1 || H < 16 || F < 16 || L < 1 || reps < 1) {
        fprintf(stderr, "usage: gemm_layers [threads [rows [H [F [layers [f32|bf16|int8]]]]]]\n");
        return 2;
    }
    ember_pool *pool;
    if (ember_pool_create(nth, &pool) != EMBER_OK)
        return 1;
    const ember_cpu_kernels *k = ember_cpu_kernels_best();
    ember_gemm g;
    ember_gemm_init(&g, compute);
    ember_gemm_choose(&g, k);
    ember_gemm_ws ws = {.scratch = ember_aligned_alloc(sizeof(float) * ember_gemm_scratch_floats() * (size_t)nth, "scratch")};

    const int64_t shape[N_OPS][2] = {{3 * H, H}, {H, H}, {F, H}, {H, F}}; /* [out, in] */
    const char *op_name[N_OPS] = {"qkv", "o", "ffn in", "ffn out"};
    const char *pages = getenv("PAGES");
    const int pages_mode = pages && (!strcmp(pages, "small-first") || !strcmp(pages, "huge-first"));
    if (pages && !pages_mode) {
        fprintf(stderr, "PAGES must be small-first or huge-first\n");
        return 2;
    }
    /* set 0: the cold weights (and the warm mode's layer 0); set 1: the
     * same on 4 KiB pages (PAGES mode only) */
    ember_weight(*sets[2])[N_OPS] = {calloc((size_t)L, sizeof *sets[0]), calloc((size_t)L, sizeof *sets[0])};
    ember_weight(*b)[N_OPS] = calloc((size_t)L, sizeof *b);
    double weight_mb = 0;
    for (int made = 0; made < (pages_mode ? 2 : 1); made++) {
        const int set = pages_mode && !strcmp(pages, "small-first") ? 1 - made : made;
        if (set == 1)
            setenv("EMBER_HUGEPAGES", "0", 1);
        ember_weight(*w)[N_OPS] = sets[set];
        for (int l = 0; l < L; l++)
            for (int i = 0; i < N_OPS; i++) {
                const int64_t n = shape[i][0], kk = shape[i][1];
                float *data = random_floats((size_t)(n * kk));
                w[l][i] = (ember_weight){.kind = EMBER_W_MATRIX, .dtype = EMBER_DT_F32, .rows = n, .cols = kk,
                                         .data = data, .name = "w"};
                if (ember_gemm_prepare(&g, &w[l][i]) != EMBER_OK) {
                    fprintf(stderr, "%s\n", ember_last_error());
                    return 1;
                }
                if (w[l][i].packed) { /* the packed copy is what the products read */
                    ember_aligned_free(data);
                    w[l][i].data = NULL;
                }
                if (made == 0) {
                    b[l][i] = (ember_weight){.kind = EMBER_W_VECTOR, .dtype = EMBER_DT_F32, .rows = n, .cols = 1,
                                             .data = random_floats((size_t)n), .name = "b"};
                    weight_mb += 4.0 * (double)(n * kk) / 1e6;
                }
            }
        unsetenv("EMBER_HUGEPAGES");
    }
    float *x = random_floats((size_t)(M * H)), *qkv = random_floats((size_t)(M * 3 * H));
    float *h = random_floats((size_t)(M * H)), *f = random_floats((size_t)(M * F)), *y = random_floats((size_t)(M * H));

    double best[2] = {1e30, 1e30}, sum[2] = {0, 0}, op_best[2][N_OPS];
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < N_OPS; i++)
            op_best[m][i] = 1e30;
    for (int r = 0; r < 2 * reps; r++) {
        const int warm = r % 2; /* or, in PAGES mode, the weights on 4 KiB pages */
        ember_weight(*w)[N_OPS] = sets[pages_mode ? warm : 0];
#if defined(EMBER_GEMM_PROFILE)
        if (r == 2) /* after a pass of each mode: the profile is of steady passes */
            ember_gemm_profile_reset();
#endif
        double op_t[N_OPS] = {0}, t0 = now();
        for (int l = 0; l < L; l++) {
            const int wl = warm && !pages_mode ? 0 : l;
            const ember_gemm_args args[N_OPS] = {
                {.x = x, .ldx = H, .rows = M, .w = &w[wl][0], .bias = &b[wl][0], .y = qkv, .ldy = 3 * H},
                {.x = qkv, .ldx = 3 * H, .rows = M, .w = &w[wl][1], .bias = &b[wl][1], .residual = x, .ldr = H,
                 .y = h, .ldy = H},
                {.x = h, .ldx = H, .rows = M, .w = &w[wl][2], .bias = &b[wl][2], .act = EMBER_ACT_GELU, .y = f,
                 .ldy = F},
                {.x = f, .ldx = F, .rows = M, .w = &w[wl][3], .bias = &b[wl][3], .residual = h, .ldr = H, .y = y,
                 .ldy = H},
            };
            for (int i = 0; i < N_OPS; i++) {
                const double t = now();
                if (ember_gemm_linear(&g, k, pool, &ws, &args[i]) != EMBER_OK) {
                    fprintf(stderr, "%s\n", ember_last_error());
                    return 1;
                }
                op_t[i] += now() - t;
            }
        }
        const double t = now() - t0;
        best[warm] = t < best[warm] ? t : best[warm];
        sum[warm] += t;
        for (int i = 0; i < N_OPS; i++)
            op_best[warm][i] = op_t[i] < op_best[warm][i] ? op_t[i] : op_best[warm][i];
    }
    const double op_flop[N_OPS] = {2.0 * M * 3 * H * H * L, 2.0 * M * H * H * L, 2.0 * M * H * F * L,
                                   2.0 * M * H * F * L};
    const double flop = op_flop[0] + op_flop[1] + op_flop[2] + op_flop[3];
    printf("%s linears, %d threads, %lld rows, H %lld, F %lld, %d layers (%.0f MB of fp32 weights); "
           "kernels %s; GFLOP/s of wall time, best (mean) of %d passes\n",
           dt, nth, (long long)M, (long long)H, (long long)F, L, weight_mb, k->name, reps);
    for (int m = 0; m < 2; m++) {
        printf("%-5s %7.1f (%7.1f) |", pages_mode ? (m ? "4 KiB" : "2 MiB") : m ? "warm" : "cold", flop / best[m] / 1e9, flop / (sum[m] / reps) / 1e9);
        for (int i = 0; i < N_OPS; i++)
            printf(" %s %.1f", op_name[i], op_flop[i] / op_best[m][i] / 1e9);
        printf("\n");
    }
#if defined(EMBER_GEMM_PROFILE)
    printf("tile profile (pool thread 0, cold and warm passes together):\n");
    ember_gemm_profile_print(stdout);
#endif
    return 0;
}
