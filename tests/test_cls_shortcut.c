/*
 * test_cls_shortcut.c — with CLS pooling, architectures run the rest of the
 * last layer on each sequence's first token only. This checks that shortcut
 * against the full last layer (EMBER_FULL_LAST_LAYER=1) on a model directory
 * made CLS-pooled in a temporary folder: vectors equal within 1e-5, for
 * several batchings, including sequences longer than the sliding window.
 *
 * Usage: test_cls_shortcut MODEL_DIR   (its 1_Pooling is replaced by CLS)
 */
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "test_util.h"

static void copy(const char *src_dir, const char *dst_dir, const char *name) {
    char *s = test_path(src_dir, name), *d = test_path(dst_dir, name);
    FILE *in = fopen(s, "rb"), *out = in ? fopen(d, "wb") : NULL;
    char buf[65536];
    size_t n;
    while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    free(s);
    free(d);
}

/* Embeds and returns the FLOPs the linear layers executed. */
static double embed(ember_model *m, const int32_t *ids, const int64_t *off, int n, int batch, float *out) {
    ember_ctx_params p = ember_ctx_default_params();
    p.max_batch = batch;
    ember_ctx *ctx = NULL;
    double flops = 0;
    CHECK_OK(ember_ctx_init(m, &p, &ctx));
    if (ctx) {
        ember_ctx_set_profiling(ctx, 1);
        CHECK_OK(ember_embed_tokens(ctx, ids, off, n, NULL, out, (int64_t)n * ember_model_dim(m), NULL));
        flops = ember_ctx_profile(ctx)->flops[EMBER_OP_LINEAR];
    }
    ember_ctx_free(ctx);
    return flops;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    char dir[128], sub[160];
    snprintf(dir, sizeof dir, "/tmp/ember_cls_%d", (int)getpid());
    snprintf(sub, sizeof sub, "%s/1_Pooling", dir);
    mkdir(dir, 0700);
    mkdir(sub, 0700);
    copy(argv[1], dir, "config.json");
    copy(argv[1], dir, "model.safetensors");
    copy(argv[1], dir, "modules.json");
    char *pool = test_path(sub, "config.json");
    FILE *f = fopen(pool, "w");
    fputs("{\"pooling_mode_cls_token\": true}", f);
    fclose(f);
    free(pool);

    ember_model *m = NULL;
    CHECK_OK(ember_model_load(dir, NULL, &m));
    if (!m)
        return test_finish("test_cls_shortcut");
    CHECK(ember_model_pooling(m) == EMBER_POOLING_CLS, "pooling not cls");
    enum { N = 6 };
    const int lens[N] = {1, 2, 17, 70, 200, 300};
    int32_t ids[600];
    int64_t off[N + 1] = {0};
    for (int s = 0; s < N; s++) {
        for (int k = 0; k < lens[s]; k++)
            ids[off[s] + k] = (s * 37 + k * 11) % 1000;
        off[s + 1] = off[s] + lens[s];
    }
    int dim = ember_model_dim(m);
    float *fast = calloc((size_t)N * dim, sizeof(float)), *full = calloc((size_t)N * dim, sizeof(float));
    const int batches[] = {1, 3, 32};
    for (int b = 0; b < 3; b++) {
        unsetenv("EMBER_FULL_LAST_LAYER");
        double f_fast = embed(m, ids, off, N, batches[b], fast);
        setenv("EMBER_FULL_LAST_LAYER", "1", 1);
        double f_full = embed(m, ids, off, N, batches[b], full);
        CHECK(f_fast < 0.97 * f_full, "batch %d: the shortcut did not run (%.0f vs %.0f linear FLOPs)",
              batches[b], f_fast, f_full);
        double worst = 0;
        for (int i = 0; i < N * dim; i++)
            worst = fmax(worst, fabs((double)fast[i] - full[i]));
        CHECK(worst <= 1e-5, "batch %d: shortcut differs from the full last layer by %.3g", batches[b], worst);
        printf("batch %d: max abs diff %.3g\n", batches[b], worst);
    }
    free(fast);
    free(full);
    ember_model_free(m);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    return test_finish("test_cls_shortcut");
}
