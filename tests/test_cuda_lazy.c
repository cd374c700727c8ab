/*
 * test_cuda_lazy.c — a CUDA-enabled build does not load cuBLASLt until a
 * CUDA device is used (src/drivers/cuda/cublaslt_loader.c).
 *
 * Embeds on the cpu driver and checks /proc/self/maps: no libcublasLt and no
 * shared libcudart (the runtime is linked statically). Without a usable
 * device it also checks that "auto" and a failed "cuda" model load leave it
 * unloaded. Then, as the positive control of the maps scan, it loads
 * cuBLASLt through the loader itself: every entry of the table is set and
 * the library shows in the maps; where the library is not installed the
 * loader must return EMBER_E_UNSUPPORTED with a message naming it.
 *
 * Usage: test_cuda_lazy MODEL_DIR
 */
#include "drivers/cuda/cublaslt_loader.h"
#include "drivers/driver.h"
#include "test_util.h"

/* Whether a mapping of the process has `name` in its path. */
static int mapped(const char *name) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, name) != NULL;
    fclose(f);
    return found;
}

static void embed(const char *dir, const char *driver, ember_status want) {
    ember_model_params mp = ember_model_default_params();
    mp.driver = driver;
    mp.load_tokenizer = 0;
    ember_model *m = NULL;
    ember_ctx *ctx = NULL;
    ember_status st = ember_model_load(dir, &mp, &m);
    CHECK(st == want, "driver %s: model load returned %d, wanted %d: %s", driver, st, want,
          st != EMBER_OK ? ember_last_error() : "");
    if (st != EMBER_OK)
        return;
    CHECK_OK(ember_ctx_init(m, NULL, &ctx));
    if (ctx) {
        const int32_t ids[5] = {101, 1010, 1022, 1018, 102};
        const int64_t offsets[2] = {0, 5};
        const int32_t dim = ember_model_dim(m);
        float *out = calloc((size_t)dim, sizeof *out);
        CHECK_OK(ember_embed_tokens(ctx, ids, offsets, 1, NULL, out, dim, NULL));
        free(out);
        ember_ctx_free(ctx);
    }
    ember_model_free(m);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_cuda_lazy MODEL_DIR\n");
        return 2;
    }
    CHECK(mapped("libcublasLt") == 0, "libcublasLt is mapped at start");
    CHECK(mapped("libcudart.so") == 0, "the shared libcudart is mapped at start");

    embed(argv[1], "cpu", EMBER_OK);
    CHECK(mapped("libcublasLt") == 0, "libcublasLt was loaded by an embedding on the cpu");
    CHECK(!ember_cublaslt_loaded(), "the loader ran for an embedding on the cpu");

    const ember_driver_ops *cuda = ember_driver_find("cuda", NULL);
    CHECK(cuda != NULL, "this build has no cuda driver");
    int device = cuda && cuda->probe && cuda->probe();
    if (!device) {
        embed(argv[1], "auto", EMBER_OK);
        embed(argv[1], "cuda", EMBER_E_UNSUPPORTED);
        CHECK(mapped("libcublasLt") == 0, "libcublasLt was loaded without a CUDA device");
        CHECK(!ember_cublaslt_loaded(), "the loader ran without a CUDA device");
    }

    /* the positive control: the loader itself, twice (once-only) */
    for (int round = 0; round < 2; round++) {
        ember_status st = ember_cublaslt_load();
        if (st == EMBER_OK) {
            CHECK(ember_cublaslt_loaded(), "loaded, but ember_cublaslt_loaded() is 0");
#define LT_SET(fn) CHECK(ember_lt.fn != NULL, "ember_lt." #fn " is NULL");
            EMBER_LT_FUNCTIONS(LT_SET)
#undef LT_SET
            CHECK(mapped("libcublasLt") == 1, "the loader succeeded, libcublasLt is not mapped");
            if (round == 0)
                printf("cuBLASLt %zu loaded on demand; the cpu runs did not load it\n",
                       ember_lt.cublasLtGetVersion());
        } else {
            const char *msg = ember_last_error();
            CHECK(st == EMBER_E_UNSUPPORTED, "loader returned %d: %s", st, msg);
            CHECK(strstr(msg, "libcublasLt") != NULL, "unexpected message: %s", msg);
            if (round == 0)
                printf("cuBLASLt is not installed here: %s\n", msg);
        }
    }
    return test_finish("test_cuda_lazy");
}
