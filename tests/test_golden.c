/*
 * test_golden.c — full embeddings against the Hugging Face reference
 * (tests/fixtures/goldens/<case>: transformers + sentence-transformers on
 * random weights). Every embedding must reach cosine >= 0.99999 and max abs
 * difference <= 1e-4, whatever the batch size (1, 5, 7, 32) and thread count
 * (1, 2), and an input's embedding must not depend on its batch (<= 1e-5).
 *
 * Usage: test_golden CASE_DIR [f32|bf16|int8|zero-copy] [--model DIR] [--quick]
 * CASE_DIR holds ids.txt + expected.jsonl, and the model unless --model names
 * another directory (the real-shape cases: bench/make_model writes the
 * model into the build tree, the goldens are in tests/fixtures). --quick
 * runs two passes instead of eight: every sequence alone on 1 thread (batch
 * 1), then all of them packed into one pass of mixed lengths on 2 threads
 * (batch 32): the batch- and thread-independence checks at the cost of two
 * passes, for the real-shape models.
 * The driver is EMBER_DRIVER's ("cpu", "cpu-ref", ...), or auto when unset.
 * With bf16 the matrices run in bf16 (reduced precision, opt-in): cosine
 * >= 0.999 against the fp32 reference is required instead. Rows that carry
 * "embedding_bf16" (the reference's own bf16 run) are compared with it too,
 * against the bound that run sets (meta.json reference_bf16).
 */
#include <jansson.h>

#if defined(EMBER_TEST_AVX512_EMULATION)
#include "drivers/cpu/kernels.h"
#endif
#include "test_util.h"

static double COS_MIN = 0.99999, ABS_MAX = 1e-4;
#define BATCH_INDEPENDENCE 1e-5

typedef struct {
    int n;
    int32_t *ids;
    int64_t *offsets;
    float *expected; /* n x dim */
    float *expected_bf16; /* n x dim, or NULL: the reference run in bf16 */
    int dim;
} golden;

static int load_ids(const char *path, golden *g) {
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t cap_ids = 1024, n_ids = 0, cap_seq = 64;
    g->ids = malloc(cap_ids * sizeof *g->ids);
    g->offsets = malloc(cap_seq * sizeof *g->offsets);
    g->offsets[0] = 0;
    g->n = 0;
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0) {
        char *p = line, *end;
        int any = 0;
        for (;;) {
            long v = strtol(p, &end, 10);
            if (end == p)
                break;
            if (n_ids == cap_ids)
                g->ids = realloc(g->ids, (cap_ids *= 2) * sizeof *g->ids);
            g->ids[n_ids++] = (int32_t)v;
            p = end;
            any = 1;
        }
        if (!any)
            continue;
        if ((size_t)g->n + 2 >= cap_seq)
            g->offsets = realloc(g->offsets, (cap_seq *= 2) * sizeof *g->offsets);
        g->offsets[++g->n] = (int64_t)n_ids;
    }
    free(line);
    fclose(f);
    return 0;
}

static int load_expected(const char *path, golden *g) {
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t lcap = 0;
    int row = 0;
    while (getline(&line, &lcap, f) > 0 && row < g->n) {
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        json_t *e = json_object_get(o, "embedding");
        int dim = (int)json_array_size(e);
        json_t *e16 = json_object_get(o, "embedding_bf16");
        if (!g->expected) {
            g->dim = dim;
            g->expected = calloc((size_t)g->n * (size_t)dim, sizeof(float));
            if (e16)
                g->expected_bf16 = calloc((size_t)g->n * (size_t)dim, sizeof(float));
        }
        for (int i = 0; i < dim && i < g->dim; i++)
            g->expected[(size_t)row * g->dim + i] = (float)json_number_value(json_array_get(e, i));
        for (int i = 0; g->expected_bf16 && i < g->dim; i++)
            g->expected_bf16[(size_t)row * g->dim + i] = (float)json_number_value(json_array_get(e16, i));
        json_decref(o);
        row++;
    }
    free(line);
    fclose(f);
    return row == g->n ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CASE_DIR [f32|bf16|int8|zero-copy] [--model DIR] [--quick]\n",
                argv[0]);
        return 2;
    }
    const char *dir = argv[1], *model_dir = argv[1], *mode = "";
    int quick = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
            model_dir = argv[++i];
        else if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else
            mode = argv[i];
    }
#if defined(EMBER_TEST_AVX512_EMULATION)
    ember_cpu_kernels_forced = &ember_cpu_kernels_avx512_emulated;
    printf("kernels: %s\n", ember_cpu_kernels_avx512_emulated.name);
#endif
    golden g = {0};
    char *ids_path = test_path(dir, "ids.txt"), *exp_path = test_path(dir, "expected.jsonl");
    CHECK(load_ids(ids_path, &g) == 0, "cannot read %s", ids_path);
    CHECK(load_expected(exp_path, &g) == 0, "cannot read %s", exp_path);
    free(ids_path);
    free(exp_path);
    if (g_failures)
        return test_finish(dir);

    ember_model *model = NULL;
    ember_model_params mp = ember_model_default_params();
    if (strcmp(mode, "bf16") == 0) {
        mp.dtype = EMBER_DTYPE_BF16;
        /* bf16 activations (a GPU driver) may be as far from fp32 as the
         * reference's own bf16 run (meta.json reference_bf16) */
        COS_MIN = test_bf16_bound(dir, 0.999);
        ABS_MAX = 0.05;
    }
    if (strcmp(mode, "int8") == 0) {
        mp.dtype = EMBER_DTYPE_INT8;
        COS_MIN = 0.999;
        ABS_MAX = 0.05;
    }
    if (strcmp(mode, "f32") == 0) /* explicit: a GPU driver's auto is bf16 */
        mp.dtype = EMBER_DTYPE_F32;
    if (strcmp(mode, "zero-copy") == 0)
        mp.pack_weights = 0;
    /* EMBER_DRIVER=cpu-ref (say) runs the case on that driver; unset = auto */
    const char *driver = getenv("EMBER_DRIVER");
    if (driver && *driver)
        mp.driver = driver;
    /* the reference's own bf16 run: as far from it as it is from fp32 */
    const double cos_min_bf16 = test_bf16_bound(dir, 0.9999);
    CHECK_OK(ember_model_load(model_dir, &mp, &model));
    if (!model)
        return test_finish(dir);
    CHECK(ember_model_dim(model) == g.dim, "dim %d vs golden %d", ember_model_dim(model), g.dim);
    ember_model_info info = {.struct_size = sizeof info};
    CHECK_OK(ember_model_get_info(model, &info));
    printf("driver %s, kernels %s\n", info.driver ? info.driver : "?",
           info.kernels ? info.kernels : "?");
    if (driver && *driver)
        CHECK(info.driver && strcmp(info.driver, driver) == 0, "driver %s in use, %s asked for",
              info.driver ? info.driver : "?", driver);

    const int batches[] = {1, 5, 7, 32};
    const int threads[] = {1, 2};
    float *out = calloc((size_t)g.n * g.dim, sizeof(float));
    float *first = calloc((size_t)g.n * g.dim, sizeof(float));
    int first_done = 0;
    for (size_t ti = 0; ti < sizeof threads / sizeof threads[0]; ti++) {
        for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
            /* quick: batch 1 on 1 thread, batch 32 on 2 threads */
            if (quick && !((ti == 0 && bi == 0) || (ti == 1 && bi == 3)))
                continue;
            ember_ctx_params cp = ember_ctx_default_params();
            cp.n_threads = threads[ti];
            cp.max_batch = batches[bi];
            cp.max_batch_tokens = 1 << 16;
            ember_ctx *ctx = NULL;
            CHECK_OK(ember_ctx_init(model, &cp, &ctx));
            if (!ctx)
                continue;
            ember_embed_stats stats;
            CHECK_OK(ember_embed_tokens(ctx, g.ids, g.offsets, g.n, NULL, out,
                                        (int64_t)g.n * g.dim, &stats));
            CHECK(stats.n_tokens == g.offsets[g.n], "stats.n_tokens %lld", (long long)stats.n_tokens);
            double worst_cos = 1.0, worst_abs = 0.0;
            int worst_row = -1;
            for (int i = 0; i < g.n; i++) {
                double c, a;
                test_compare(out + (size_t)i * g.dim, g.expected + (size_t)i * g.dim, g.dim, &c, &a);
                if (c < worst_cos || a > worst_abs)
                    worst_row = i;
                if (c < worst_cos)
                    worst_cos = c;
                if (a > worst_abs)
                    worst_abs = a;
                CHECK(c >= COS_MIN && a <= ABS_MAX,
                      "row %d (len %lld), batch %d, threads %d: cosine %.9f, max abs %.3g", i,
                      (long long)(g.offsets[i + 1] - g.offsets[i]), batches[bi], threads[ti], c, a);
            }
            printf("batch %2d threads %d: worst cosine %.9f, worst max abs %.3g (row %d)\n",
                   batches[bi], threads[ti], worst_cos, worst_abs, worst_row);
            if (g.expected_bf16 && !first_done) {
                double worst16 = 1.0;
                for (int i = 0; i < g.n; i++) {
                    double c, a;
                    test_compare(out + (size_t)i * g.dim, g.expected_bf16 + (size_t)i * g.dim, g.dim,
                                 &c, &a);
                    worst16 = fmin(worst16, c);
                    CHECK(c >= cos_min_bf16, "row %d: cosine %.7f to the reference's bf16 run, below %.7f",
                          i, c, cos_min_bf16);
                }
                printf("  against the reference's bf16 run: worst cosine %.7f (bound %.7f)\n", worst16,
                       cos_min_bf16);
            }
            if (!first_done) {
                memcpy(first, out, sizeof(float) * (size_t)g.n * g.dim);
                first_done = 1;
            } else {
                double worst = 0;
                for (size_t i = 0; i < (size_t)g.n * g.dim; i++)
                    worst = fmax(worst, fabs((double)out[i] - first[i]));
                CHECK(worst <= BATCH_INDEPENDENCE,
                      "batch %d threads %d differs from batch 1 threads 1 by %.3g", batches[bi],
                      threads[ti], worst);
            }
            ember_ctx_free(ctx);
        }
    }
    free(out);
    free(first);
    ember_model_free(model);
    free(g.ids);
    free(g.offsets);
    free(g.expected);
    free(g.expected_bf16);
    return test_finish(dir);
}
