/*
 * test_driver_ops.c — every fast CPU kernel against the portable scalar
 * reference (kernels.h), on model-sized and awkward shapes: K not a multiple
 * of the block, tiny M, N not a multiple of the 16-wide panel, windows that
 * cut tiles. Also the blocked GEMM (tiling, packing, threads, epilogues)
 * against a plain triple loop in double precision.
 *
 * Tolerances: GEMM and attention within 2e-5 relative to the magnitude of the
 * values; elementwise ops within 1e-6 absolute (GELU's erf approximation has
 * an absolute error of 1.5e-7).
 */
#include <math.h>

#include "core/threadpool.h"
#include "core/util.h"
#include "drivers/cpu/gemm.h"
#include "drivers/cpu/kernels.h"
#include "drivers/driver.h"
#include "test_util.h"

static uint64_t g_rng = 0x1234567;
static float frand(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) & 0xffffff) / (float)0xffffff * 2.0f - 1.0f;
}
static float *rand_vec(size_t n, float scale) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        v[i] = frand() * scale;
    return v;
}

static double max_rel_diff(const float *a, const float *b, size_t n) {
    double m = 0, scale = 1e-6;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs((double)b[i]));
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]) / scale);
    return m;
}

static const ember_cpu_kernels *g_fast;
/* EMBER_TEST_QUICK=1: small shapes only (for slow emulators). */
static int g_quick;

static void test_gemm_shape_dtype(ember_pool *pool, ember_gemm_ws *ws, int64_t M, int64_t N, int64_t K,
                                  int act, int use_bias, int residual_mode, int dtype) {
    float *x = rand_vec((size_t)(M * K), 1.0f), *w = rand_vec((size_t)(N * K), 0.5f);
    if (dtype == EMBER_DTYPE_INT8 && K >= 8) /* activation outliers: rows with spikes, one with more than fit */
        for (int64_t r = 1; r < M; r += 3)
            for (int64_t e = 0; e < (r % 4 == 1 ? 2 * EMBER_Q8_OUTLIERS + 1 : 1 + r % 3); e++)
                x[r * K + (r * 7 + e * 5) % K] = (e % 2 ? -20.0f : 30.0f) + (float)e;
    if (dtype == EMBER_DTYPE_BF16) /* the expected result uses the rounded weights */
        for (int64_t i = 0; i < N * K; i++)
            w[i] = ember_bf16_to_f32(ember_f32_to_bf16(w[i]));
    if (dtype == EMBER_DTYPE_INT8) /* ... the quantized ones: the same round trip */
        for (int64_t c = 0; c < N; c++)
            for (int64_t k0 = 0; k0 < K; k0 += EMBER_Q8_BLOCK) {
                int64_t k1 = k0 + EMBER_Q8_BLOCK < K ? k0 + EMBER_Q8_BLOCK : K;
                float amax = 0;
                for (int64_t k = k0; k < k1; k++)
                    amax = fmaxf(amax, fabsf(w[c * K + k]));
                float s = amax > 0 ? amax / 127.0f : 1.0f;
                for (int64_t k = k0; k < k1; k++)
                    w[c * K + k] = (float)lrintf(w[c * K + k] / s) * s;
            }
    float *bias = rand_vec((size_t)N, 0.5f), *res = rand_vec((size_t)(M * N), 1.0f);
    /* Tables with a bf16 or int8 dot product also round the activations:
     * to bf16, or to 8 bits per block of 32 (modelled exactly by the
     * reference conversions, which the tests below check separately). */
    float *x_fast = malloc(sizeof(float) * (size_t)(M * K));
    memcpy(x_fast, x, sizeof(float) * (size_t)(M * K));
    if (dtype == EMBER_DTYPE_BF16 && g_fast->gemm_tile_bf16)
        for (int64_t i = 0; i < M * K; i++)
            x_fast[i] = ember_bf16_to_f32(ember_f32_to_bf16(x[i]));
    if (dtype == EMBER_DTYPE_INT8 && g_fast->gemm_tile_q8) {
        /* per row: blocks of 32 quantized, the outliers exact */
        int64_t ldq = ember_q8_kpad(K), nb = ldq / 32;
        uint8_t *q = malloc((size_t)ldq), n_out;
        float *sc = malloc(sizeof(float) * (size_t)nb), oval[EMBER_Q8_OUTLIERS];
        int32_t oidx[EMBER_Q8_OUTLIERS];
        for (int64_t r = 0; r < M; r++) {
            ember_ref_quant_a_q8(x + r * K, K, 1, K, q, ldq, sc, nb, &n_out, oidx, oval);
            for (int64_t k = 0; k < K; k++)
                x_fast[r * K + k] = (float)((int)q[k] - 128) * sc[k / 32];
            for (int e = 0; e < n_out; e++)
                x_fast[r * K + oidx[e]] = oval[e];
        }
        free(q);
        free(sc);
    }
    /* AMX multiplies bf16 activations by bf16 weights (int8 ones dequantized
     * and rounded) */
    const int amx_runs = g_fast->amx_bf16 && dtype != EMBER_DTYPE_F32;
    float *x_b16 = malloc(sizeof(float) * (size_t)(M * K)), *w_b16 = malloc(sizeof(float) * (size_t)(N * K));
    for (int64_t i = 0; i < M * K; i++)
        x_b16[i] = ember_bf16_to_f32(ember_f32_to_bf16(x[i]));
    for (int64_t i = 0; i < N * K; i++)
        w_b16[i] = ember_bf16_to_f32(ember_f32_to_bf16(w[i]));
    float *want = malloc(sizeof(float) * (size_t)(M * N)), *want_fast = malloc(sizeof(float) * (size_t)(M * N));
    float *want_amx = malloc(sizeof(float) * (size_t)(M * N));
    for (int variant = 0; variant < 3; variant++) {
        const float *xv = variant == 2 ? x_b16 : variant ? x_fast : x, *wv = variant == 2 ? w_b16 : w;
        float *out = variant == 2 ? want_amx : variant ? want_fast : want;
        if (variant == 2 && !amx_runs)
            break;
        for (int64_t r = 0; r < M; r++)
            for (int64_t c = 0; c < N; c++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += (double)xv[r * K + k] * wv[c * K + k];
                float v = (float)s + (use_bias ? bias[c] : 0.0f);
                v = ember_ref_act(act, v);
                out[r * N + c] = residual_mode ? v + res[r * N + c] : v;
            }
    }
    ember_weight wt = {.kind = EMBER_W_MATRIX, .dtype = EMBER_DT_F32, .rows = N, .cols = K,
                       .data = w, .name = "w"};
    ember_weight bt = {.kind = EMBER_W_VECTOR, .dtype = EMBER_DT_F32, .rows = 1, .cols = N,
                       .data = bias, .name = "b"};
    const ember_cpu_kernels *tables[2] = {&ember_cpu_kernels_ref, g_fast};
    for (int prepack = 0; prepack < (dtype == EMBER_DTYPE_F32 ? 2 : 1); prepack++) {
        ember_gemm g;
        ember_gemm_init(&g, dtype);
        g.prepack = prepack;
        wt.dtype = EMBER_DT_F32;
        ember_gemm_prepare(&g, &wt);
        /* runs: the reference, the fast table's own tile, each wide tile,
         * then AMX where the table has it (bf16 and int8) */
        const int n_wide = g_fast->gemm_wide ? g_fast->n_gemm_wide : 0;
        const int n_runs = 2 + n_wide + amx_runs;
        for (int run = 0; run < n_runs; run++) {
            const int ti = run ? 1 : 0, amx = run == 2 + n_wide;
            g.wide = run >= 2 && !amx ? &g_fast->gemm_wide[run - 2] : NULL;
            g.no_bf16_wide = run == 1; /* bf16: run 1 the 16-column tile, later ones the wide */
            g.amx = amx;
            float *y = calloc((size_t)(M * N), sizeof(float));
            /* residual_mode 2: y aliases the residual (in-place accumulate) */
            if (residual_mode == 2)
                memcpy(y, res, sizeof(float) * (size_t)(M * N));
            ember_gemm_args a = {.x = x, .ldx = K, .rows = M, .w = &wt,
                                   .bias = use_bias ? &bt : NULL, .act = act,
                                   .residual = residual_mode == 2 ? y : residual_mode ? res : NULL,
                                   .ldr = N, .y = y, .ldy = N};
            ember_gemm_linear(&g, tables[ti], pool, ws, &a);
            double d = max_rel_diff(y, amx ? want_amx : ti ? want_fast : want, (size_t)(M * N));
            CHECK(d < 2e-5, "gemm %s tile %s%s dtype %d M=%lld N=%lld K=%lld act=%d bias=%d res=%d prepack=%d: rel diff %.3g",
                  tables[ti]->name, ember_gemm_tile_name(&g, tables[ti]), amx ? " amx" : "", dtype, (long long)M,
                  (long long)N, (long long)K, act, use_bias, residual_mode, prepack, d);
            free(y);
        }
        ember_gemm_release(&wt);
    }
    free(x);
    free(x_fast);
    free(w);
    free(bias);
    free(res);
    free(want);
    free(want_fast);
    free(want_amx);
    free(x_b16);
    free(w_b16);
}

static void test_gemm_shape(ember_pool *pool, ember_gemm_ws *ws, int64_t M, int64_t N, int64_t K,
                            int act, int use_bias, int residual_mode) {
    test_gemm_shape_dtype(pool, ws, M, N, K, act, use_bias, residual_mode, EMBER_DTYPE_F32);
    test_gemm_shape_dtype(pool, ws, M, N, K, act, use_bias, residual_mode, EMBER_DTYPE_BF16);
    test_gemm_shape_dtype(pool, ws, M, N, K, act, use_bias, residual_mode, EMBER_DTYPE_INT8);
}

static void test_gemm(void) {
    const int64_t shapes[][3] = {{1, 1, 1}, {17, 40, 24}, {20, 90, 50}, {5, 17, 7},     {6, 16, 8},      {7, 33, 513},
                                 {64, 384, 384}, {129, 100, 1025}, {13, 1536, 384}, {200, 40, 1536}};
    for (int nth = 1; nth <= 2; nth++) {
        ember_pool *pool;
        ember_pool_create(nth, &pool);
        ember_gemm_ws ws = {.scratch = ember_aligned_alloc(sizeof(float) * ember_gemm_scratch_floats() * (size_t)nth, "t")};
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            if (g_quick && shapes[s][0] * shapes[s][1] * shapes[s][2] > 4000000)
                continue;
            test_gemm_shape(pool, &ws, shapes[s][0], shapes[s][1], shapes[s][2], EMBER_ACT_NONE, 1, 0);
            test_gemm_shape(pool, &ws, shapes[s][0], shapes[s][1], shapes[s][2], EMBER_ACT_GELU, 1, 0);
        }
        test_gemm_shape(pool, &ws, 70, 50, 300, EMBER_ACT_NONE, 1, 1);
        test_gemm_shape(pool, &ws, 70, 50, 600, EMBER_ACT_NONE, 0, 2);
        test_gemm_shape(pool, &ws, 70, 50, 300, EMBER_ACT_GELU, 1, 1);
        test_gemm_shape(pool, &ws, 9, 20, 30, EMBER_ACT_GELU_TANH, 1, 1);
        test_gemm_shape(pool, &ws, 9, 20, 30, EMBER_ACT_RELU, 0, 0);
        test_gemm_shape(pool, &ws, 9, 20, 30, EMBER_ACT_SILU, 1, 0);
        ember_aligned_free(ws.scratch);
        ember_gemm_ws_release(&ws);
        ember_pool_free(pool);
    }
}

/* The table's activation conversions give exactly the reference's values. */
static void test_conversions(void) {
    const int64_t lens[] = {1, 15, 16, 31, 32, 33, 100, 512};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        int64_t kc = lens[li], ld = 520;
        float *a = rand_vec((size_t)(3 * ld), 4.0f);
        a[5] = 0.0f;
        for (int64_t k = 64; k < 96; k++) /* an all-zero block */
            a[ld + k] = 0.0f;
        if (g_fast->pack_a_bf16) {
            uint16_t d1[3 * 520], d2[3 * 520];
            memset(d1, 0xab, sizeof d1);
            memset(d2, 0xab, sizeof d2);
            ember_ref_pack_a_bf16(a, ld, 3, kc, d1, ld);
            g_fast->pack_a_bf16(a, ld, 3, kc, d2, ld);
            CHECK(memcmp(d1, d2, sizeof d1) == 0, "pack_a_bf16 kc=%lld differs", (long long)kc);
        }
        if (g_fast->quant_a_q8) {
            /* rows with outliers: none, a few (one in the last partial
             * block), more than fit with a tie, and all-zero blocks */
            /* (a row of K values has none above 6 rms unless K > 36) */
            const int spikes = kc >= 512 ? EMBER_Q8_OUTLIERS + 2 : kc >= 64 ? 2 : 0;
            for (int e = 0; e < spikes; e++) /* row 1: +-100..106, two of 103 */
                a[ld + e * (kc / spikes)] = (e % 2 ? -1.0f : 1.0f) * (100.0f + (float)(e == 8 ? 3 : e % 7));
            if (kc >= 100)
                a[2 * ld + kc - 1] = 200.0f;
            enum { LDQ = 576, NB = 18, NO = EMBER_Q8_OUTLIERS };
            uint8_t q1[3 * LDQ], q2[3 * LDQ], n1[3], n2[3];
            float s1[3 * NB], s2[3 * NB], v1[3 * NO], v2[3 * NO];
            int32_t i1[3 * NO], i2[3 * NO];
            memset(q1, 0, sizeof q1);
            memset(q2, 0, sizeof q2);
            memset(s1, 0, sizeof s1);
            memset(s2, 0, sizeof s2);
            memset(i1, 0, sizeof i1);
            memset(i2, 0, sizeof i2);
            memset(v1, 0, sizeof v1);
            memset(v2, 0, sizeof v2);
            const int64_t ldq = ember_q8_kpad(kc);
            ember_ref_quant_a_q8(a, ld, 3, kc, q1, ldq, s1, NB, n1, i1, v1);
            g_fast->quant_a_q8(a, ld, 3, kc, q2, ldq, s2, NB, n2, i2, v2);
            CHECK(memcmp(q1, q2, sizeof q1) == 0 && memcmp(s1, s2, sizeof s1) == 0,
                  "quant_a_q8 kc=%lld differs", (long long)kc);
            CHECK(memcmp(n1, n2, sizeof n1) == 0 && memcmp(i1, i2, sizeof i1) == 0 &&
                      memcmp(v1, v2, sizeof v1) == 0,
                  "quant_a_q8 kc=%lld: outliers differ", (long long)kc);
            for (int i = 0; i < 3; i++) {
                /* within half a step of each value; outliers exact, their
                 * place 0; nothing left above the threshold unless full */
                const float *row = a + i * ld;
                const float thr2 = ember_ref_q8_threshold2(row, kc);
                CHECK(n1[i] <= NO, "row %d: %d outliers", i, n1[i]);
                for (int64_t k = 0, e = 0; k < kc; k++) {
                    float v = (float)((int)q1[i * ldq + k] - 128) * s1[i * NB + k / 32];
                    if (e < n1[i] && i1[i * NO + e] == k) {
                        CHECK(v == 0.0f && v1[i * NO + e] == row[k] && row[k] * row[k] > thr2,
                              "row %d outlier %lld", i, (long long)k);
                        e++;
                        continue;
                    }
                    CHECK(fabsf(v - row[k]) <= 0.5f * s1[i * NB + k / 32] * 1.0001f, "q8 of %g is %g", row[k], v);
                    CHECK(n1[i] == NO || !(row[k] * row[k] > thr2), "row %d: %g left in", i, row[k]);
                }
                for (int64_t k = kc; k < ldq; k++)
                    CHECK(q1[i * ldq + k] == 128, "padding at %lld", (long long)k);
            }
            CHECK(n1[1] == (spikes < NO ? spikes : NO) && n1[2] == (kc >= 100), "kc=%lld: %d and %d outliers",
                  (long long)kc, n1[1], n1[2]);
        }
        free(a);
    }
}

static void test_rows(void) {
    const int64_t sizes[] = {1, 7, 8, 64, 384, 1000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t n = sizes[s];
        float *x = rand_vec((size_t)n, 3.0f), *res = rand_vec((size_t)n, 1.0f);
        float *g = rand_vec((size_t)n, 1.0f), *b = rand_vec((size_t)n, 0.2f);
        float *o1 = malloc(sizeof(float) * (size_t)n), *o2 = malloc(sizeof(float) * (size_t)n);
        for (int variant = 0; variant < 4; variant++) {
            const float *r = variant & 1 ? res : NULL, *bb = variant & 2 ? b : NULL;
            ember_cpu_kernels_ref.layer_norm_row(x, r, g, bb, 1e-12f, n, o1);
            g_fast->layer_norm_row(x, r, g, bb, 1e-12f, n, o2);
            double d = max_rel_diff(o2, o1, (size_t)n);
            CHECK(d < 1e-5 || n == 1, "layer_norm n=%lld variant %d: %.3g", (long long)n, variant, d);
        }
        for (int act = 0; act <= EMBER_ACT_SILU; act++) {
            memcpy(o1, x, sizeof(float) * (size_t)n);
            memcpy(o2, x, sizeof(float) * (size_t)n);
            ember_cpu_kernels_ref.bias_act_row(o1, b, act, res, n);
            g_fast->bias_act_row(o2, b, act, res, n);
            double d = 0;
            for (int64_t i = 0; i < n; i++)
                d = fmax(d, fabs((double)o1[i] - o2[i]));
            CHECK(d < 1e-6, "bias_act n=%lld act=%d: abs diff %.3g", (long long)n, act, d);
        }
        float *in2 = rand_vec((size_t)(2 * n), 3.0f);
        ember_cpu_kernels_ref.geglu_row(in2, n, o1);
        g_fast->geglu_row(in2, n, o2);
        double d = 0;
        for (int64_t i = 0; i < n; i++)
            d = fmax(d, fabs((double)o1[i] - o2[i]));
        CHECK(d < 3e-6, "geglu n=%lld: abs diff %.3g", (long long)n, d);
        free(in2);
        free(x); free(res); free(g); free(b); free(o1); free(o2);
    }
    /* GELU on values where erf saturates and around zero */
    float vals[] = {-10.0f, -5.0f, -3.0f, -1e-3f, 0.0f, 1e-6f, 0.5f, 3.0f, 10.0f};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        float a = vals[i], b = vals[i];
        ember_cpu_kernels_ref.bias_act_row(&a, NULL, EMBER_ACT_GELU, NULL, 1);
        g_fast->bias_act_row(&b, NULL, EMBER_ACT_GELU, NULL, 1);
        CHECK(fabs((double)a - b) < 1e-6, "gelu(%g): %g vs %g", vals[i], a, b);
    }
    const int32_t dims[] = {2, 16, 32, 64, 128};
    for (size_t s = 0; s < sizeof dims / sizeof dims[0]; s++) {
        int32_t d = dims[s];
        float *x1 = rand_vec((size_t)d, 1.0f), *cs = rand_vec((size_t)d, 1.0f);
        float *x2 = malloc(sizeof(float) * (size_t)d);
        memcpy(x2, x1, sizeof(float) * (size_t)d);
        ember_cpu_kernels_ref.rope_head(x1, cs, cs + d / 2, d);
        g_fast->rope_head(x2, cs, cs + d / 2, d);
        CHECK(max_rel_diff(x2, x1, (size_t)d) < 1e-6, "rope head_dim %d", d);
        free(x1); free(x2); free(cs);
    }
}

/* The softmax pieces against double precision: row_max exactly; row_exp
 * within 2e-6 relative per value beyond what rounding x * scale - m to
 * fp32 costs (|y| 2^-24), and in the sum; row_exp_bf16's values within
 * half a bf16 step (a truncating rounding is off by up to a whole one) on
 * top of that, its sum as row_exp's, and nothing written past n. Exponents
 * span 0 down to about -120, and about -2000, which must come out at most
 * 2^-126 (0, or a flushed denormal). */
static void test_softmax_rows(void) {
    const int32_t sizes[] = {1, 5, 16, 17, 31, 32, 45, 128, 300};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int32_t n = sizes[s];
        float *x = rand_vec((size_t)n, 30.0f), *y = malloc(sizeof(float) * (size_t)n);
        uint16_t *p = malloc(sizeof(uint16_t) * (size_t)(n + 16));
        if (n > 3)
            x[n / 2] = -1000.0f; /* far below the others: exp is 0 */
        const float scale = 2.0f;
        float mx = -INFINITY;
        for (int32_t j = 0; j < n; j++)
            mx = x[j] > mx ? x[j] : mx;
        CHECK(g_fast->row_max(x, n) == mx, "row_max n=%d", n);
        const float m = mx * scale;
        double want_sum = 0;
        for (int32_t j = 0; j < n; j++)
            want_sum += exp((double)x[j] * scale - m);
        const double sum_tol = (1e-6 + 1.2e-7 * n) * want_sum;
        memcpy(y, x, sizeof(float) * (size_t)n);
        const float sum = g_fast->row_exp(y, n, scale, m);
        CHECK(fabs(sum - want_sum) <= sum_tol, "row_exp n=%d: sum %.9g vs %.9g", n, sum, want_sum);
        double worst = 0;
        for (int32_t j = 0; j < n; j++) {
            const double arg = (double)x[j] * scale - m, e = exp(arg);
            const double tol = (2e-6 + 0x1p-24 * (fabs(arg) + fabs(m))) * e + 0x1p-126; /* below it: 0 */
            worst = fmax(worst, fabs(y[j] - e) / tol);
        }
        CHECK(worst <= 1.0, "row_exp n=%d: %.3g of the bound", n, worst);
        if (!g_fast->row_exp_bf16)
            goto next;
        for (int32_t j = 0; j < n + 16; j++)
            p[j] = 0xabcd;
        const float sum16 = g_fast->row_exp_bf16(x, n, scale, m, p);
        CHECK(fabs(sum16 - want_sum) <= sum_tol, "row_exp_bf16 n=%d: sum %.9g vs %.9g", n, sum16, want_sum);
        worst = 0;
        for (int32_t j = 0; j < n; j++) {
            const double arg = (double)x[j] * scale - m, e = exp(arg);
            /* half a bf16 step (8 significant bits: 2^(k - 9) for e in
             * [2^(k-1), 2^k)) on top of the exp's error; below 2^-126 the
             * bf16 may be 0 (denormals flushed) */
            int k;
            frexp(e, &k);
            const double tol = e < 0x1p-126 ? 0x1p-126
                                            : ldexp(1.0, k - 9) + (1e-6 + 0x1p-24 * (fabs(arg) + fabs(m))) * e;
            worst = fmax(worst, fabs(ember_bf16_to_f32(p[j]) - e) / tol);
        }
        CHECK(worst <= 1.0, "row_exp_bf16 n=%d: %.3g of the bound", n, worst);
        for (int32_t j = n; j < n + 16; j++)
            CHECK(p[j] == 0xabcd, "row_exp_bf16 n=%d wrote past n at %d", n, j);
    next:
        free(x); free(y); free(p);
    }
}

/* Every query block of one head's attention into out: through the table's
 * attention_tile, or (tiled) straight through ember_attention_tiled over
 * table k, with the given products and fp32 wide tile. */
static void attend_blocks(const ember_cpu_kernels *k, int tiled, const float *qkv, int64_t ld, int32_t len,
                          int32_t d, int32_t win, int causal, int products, const ember_gemm_variant *wide,
                          float *out, float *scratch) {
    for (int32_t q0 = 0; q0 < len; q0 += EMBER_ATTN_QBLOCK) {
        ember_attn_tile t = {.q = qkv + (int64_t)q0 * ld, .ld_q = ld, .k = qkv + d, .v = qkv + 2 * d, .ld = ld,
                             .out = out + (int64_t)q0 * d, .ld_out = d, .len = len, .q0 = q0,
                             .q1 = q0 + EMBER_ATTN_QBLOCK < len ? q0 + EMBER_ATTN_QBLOCK : len,
                             .head_dim = d, .window = win, .causal = causal,
                             .scale = 1.0f / sqrtf((float)d), .products = products, .wide = wide,
                             .scratch = scratch};
        if (tiled)
            ember_attention_tiled(k, &t);
        else
            k->attention_tile(&t);
    }
}

static void test_attention(void) {
    /* up to 32 tokens the AVX-512 table runs its short kernel (one or two
     * 16-key panels), beyond it the tiled one; the quick run takes the first
     * four: both short shapes and a long one */
    const int32_t lens[] = {1, 7, 17, 130, 32, 16, 33, 300};
    const int32_t dims[] = {8, 16, 32, 64};
    const size_t n_lens = g_quick ? 4 : sizeof lens / sizeof lens[0];
    const int32_t windows[] = {0, 3, 64};
    for (size_t li = 0; li < n_lens; li++)
        for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
            for (size_t wi = 0; wi < sizeof windows / sizeof windows[0]; wi++)
            for (int causal = 0; causal < 2; causal++) {
                int32_t len = lens[li], d = dims[di], win = windows[wi];
                int64_t ld = 3 * d;
                float *qkv = rand_vec((size_t)(len * ld), 2.0f);
                float *o1 = calloc((size_t)(len * d), sizeof(float));
                float *o2 = calloc((size_t)(len * d), sizeof(float));
                float *scratch = malloc(sizeof(float) * (size_t)ember_attn_scratch_floats(d));
                for (int32_t q0 = 0; q0 < len; q0 += EMBER_ATTN_QBLOCK) {
                    /* q and out point at the block's first query */
                    ember_attn_tile t = {.q = qkv + (int64_t)q0 * ld, .ld_q = ld, .k = qkv + d,
                                         .v = qkv + 2 * d, .ld = ld, .ld_out = d, .len = len,
                                         .q0 = q0,
                                         .q1 = q0 + EMBER_ATTN_QBLOCK < len ? q0 + EMBER_ATTN_QBLOCK : len,
                                         .head_dim = d, .window = win, .causal = causal,
                                         .scale = 1.0f / sqrtf((float)d), .scratch = scratch};
                    t.out = o1 + (int64_t)q0 * d;
                    ember_cpu_kernels_ref.attention_tile(&t);
                    t.out = o2 + (int64_t)q0 * d;
                    g_fast->attention_tile(&t);
                }
                if (len >= 3) {
                    /* a middle range of queries alone (the layout of a
                     * query block, or of the first-token-only last layer) */
                    const int32_t a0 = len / 3, a1 = len / 2 + 1;
                    float *o3 = calloc((size_t)(len * d), sizeof(float));
                    ember_attn_tile t = {.q = qkv + (int64_t)a0 * ld, .ld_q = ld, .k = qkv + d, .v = qkv + 2 * d,
                                         .ld = ld, .out = o3 + (int64_t)a0 * d, .ld_out = d, .len = len,
                                         .q0 = a0, .q1 = a1, .head_dim = d, .window = win, .causal = causal,
                                         .scale = 1.0f / sqrtf((float)d), .scratch = scratch};
                    g_fast->attention_tile(&t);
                    double worst = 0;
                    for (int64_t x = (int64_t)a0 * d; x < (int64_t)a1 * d; x++)
                        worst = fmax(worst, fabs((double)o3[x] - (double)o1[x]));
                    CHECK(worst < 2e-5, "attention %s rows [%d, %d) of len %d d %d window %d causal %d: %.3g",
                          g_fast->name, a0, a1, len, d, win, causal, worst);
                    free(o3);
                }
                /* against a direct double-precision softmax for one row */
                int32_t i = len / 2;
                double m = -1e300, l = 0, acc[64] = {0};
                double sc[300];
                for (int32_t j = 0; j < len; j++) {
                    if ((win && abs(i - j) > win) || (causal && j > i)) {
                        sc[j] = -1e300;
                        continue;
                    }
                    double s = 0;
                    for (int32_t c = 0; c < d; c++)
                        s += (double)qkv[i * ld + c] * qkv[j * ld + d + c];
                    sc[j] = s / sqrt((double)d);
                    m = fmax(m, sc[j]);
                }
                for (int32_t j = 0; j < len; j++) {
                    if (sc[j] <= -1e299)
                        continue;
                    double p = exp(sc[j] - m);
                    l += p;
                    for (int32_t c = 0; c < d; c++)
                        acc[c] += p * qkv[j * ld + 2 * d + c];
                }
                float want[64];
                for (int32_t c = 0; c < d; c++)
                    want[c] = (float)(acc[c] / l);
                CHECK(max_rel_diff(o1 + i * d, want, (size_t)d) < 2e-5,
                      "attention ref vs double len %d d %d window %d causal %d", len, d, win,
                      causal);
                double diff = max_rel_diff(o2, o1, (size_t)(len * d));
                CHECK(diff < 2e-5, "attention %s vs ref len %d d %d window %d causal %d: %.3g",
                      g_fast->name, len, d, win, causal, diff);
                /* the fp32 products on each wide tile of the table (the
                 * driver passes the GEMM's load-time choice) */
                for (int v = 0; g_fast->gemm_wide && v < g_fast->n_gemm_wide; v++) {
                    memset(o2, 0, sizeof(float) * (size_t)(len * d));
                    attend_blocks(g_fast, 0, qkv, ld, len, d, win, causal, EMBER_ATTN_FP32,
                                  &g_fast->gemm_wide[v], o2, scratch);
                    const double dw = max_rel_diff(o2, o1, (size_t)(len * d));
                    CHECK(dw < 2e-5, "attention %s on the %s tile vs ref len %d d %d window %d causal %d: %.3g",
                          g_fast->name, g_fast->gemm_wide[v].name, len, d, win, causal, dw);
                }
                /* the bf16 paths: q, k, p and v in bf16 (relative error
                 * 2^-9 each), so a bf16-sized bound; a wrong panel layout or
                 * a missed zero pad gives errors of order 1 */
                for (int products = EMBER_ATTN_BF16_DOT; products <= EMBER_ATTN_BF16_AMX; products++) {
                    const int can = g_fast->pack_kt_bf16 && g_fast->pack_v_bf16 && g_fast->pack_a_bf16 &&
                                    (products == EMBER_ATTN_BF16_AMX ? g_fast->amx_bf16 && d % 32 == 0
                                                                     : g_fast->gemm_tile_bf16 && d % 16 == 0);
                    if (!can)
                        continue;
                    const char *what = products == EMBER_ATTN_BF16_AMX ? "amx" : "bf16 dot";
                    attend_blocks(g_fast, 0, qkv, ld, len, d, win, causal, products, NULL, o2, scratch);
                    diff = max_rel_diff(o2, o1, (size_t)(len * d));
                    CHECK(diff < 3e-2, "attention %s %s vs ref len %d d %d window %d causal %d: %.3g",
                          g_fast->name, what, len, d, win, causal, diff);
                    CHECK(diff > 0, "attention %s len %d d %d: bitwise equal to fp32, not run?", what, len, d);
                    /* the fused softmax-to-bf16 pass against its fallback
                     * (row_exp, then rounding): the same P but for a bf16
                     * rounding flipped here and there by the exps' last
                     * bits (test_softmax_rows holds each to its bound) */
                    if (g_fast->row_exp_bf16 && d % 16 == 0) {
                        ember_cpu_kernels unfused = *g_fast;
                        unfused.row_exp_bf16 = NULL;
                        float *o3 = malloc(sizeof(float) * (size_t)(len * d));
                        attend_blocks(&unfused, 1, qkv, ld, len, d, win, causal, products, NULL, o3, scratch);
                        const double fd = max_rel_diff(o3, o2, (size_t)(len * d));
                        CHECK(fd < 2e-3, "attention %s len %d d %d window %d causal %d: fused bf16 softmax "
                              "vs row_exp + rounding: %.3g", what, len, d, win, causal, fd);
                        free(o3);
                    }
                }
                free(qkv); free(o1); free(o2); free(scratch);
            }
}

int main(void) {
#if defined(EMBER_TEST_AVX512_EMULATION)
    g_fast = &ember_cpu_kernels_avx512_emulated;
#else
    g_fast = ember_cpu_kernels_best();
#endif
    g_quick = getenv("EMBER_TEST_QUICK") != NULL;
    printf("fast kernels: %s (cpu: %s)%s\n", g_fast->name, ember_cpu_features(), g_quick ? ", quick" : "");
    test_conversions();
    test_gemm();
    test_rows();
    test_softmax_rows();
    test_attention();
    return test_finish("test_driver_ops");
}
