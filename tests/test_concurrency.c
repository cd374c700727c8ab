/*
 * test_concurrency.c — one immutable model shared by several threads, each
 * with its own context, embedding at the same time: every thread must get
 * exactly the vectors a lone context computes (same thread count per context
 * means the same arithmetic, so the comparison is bitwise).
 *
 * Usage: test_concurrency MODEL_DIR
 */
#include <pthread.h>

#include "test_util.h"

#define N_THREADS 4
#define N_SEQS 40

static ember_model *g_model;
static int32_t g_ids[N_SEQS * 64];
static int64_t g_offsets[N_SEQS + 1];
static float *g_reference;
static int g_dim;

static void *worker(void *arg) {
    float *out = arg;
    ember_ctx_params p = ember_ctx_default_params();
    p.n_threads = 1;
    p.max_batch = 8;
    ember_ctx *ctx = NULL;
    if (ember_ctx_init(g_model, &p, &ctx) != EMBER_OK)
        return (void *)1;
    for (int round = 0; round < 3; round++)
        if (ember_embed_tokens(ctx, g_ids, g_offsets, N_SEQS, NULL, out, (int64_t)N_SEQS * g_dim,
                               NULL) != EMBER_OK)
            return (void *)1;
    ember_ctx_free(ctx);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    CHECK_OK(ember_model_load(argv[1], NULL, &g_model));
    if (!g_model)
        return test_finish("test_concurrency");
    g_dim = ember_model_dim(g_model);
    int64_t t = 0;
    g_offsets[0] = 0;
    for (int s = 0; s < N_SEQS; s++) {
        int len = 2 + (s * 7) % 60;
        g_ids[t++] = 101;
        for (int k = 1; k < len - 1; k++)
            g_ids[t++] = 999 + (s * 31 + k * 17) % 24;
        g_ids[t++] = 102;
        g_offsets[s + 1] = t;
    }
    g_reference = calloc((size_t)N_SEQS * g_dim, sizeof(float));
    CHECK(worker(g_reference) == NULL, "reference run failed: %s", ember_last_error());
    pthread_t th[N_THREADS];
    float *outs[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        outs[i] = calloc((size_t)N_SEQS * g_dim, sizeof(float));
        pthread_create(&th[i], NULL, worker, outs[i]);
    }
    for (int i = 0; i < N_THREADS; i++) {
        void *rc;
        pthread_join(th[i], &rc);
        CHECK(rc == NULL, "thread %d failed", i);
        CHECK(memcmp(outs[i], g_reference, sizeof(float) * (size_t)N_SEQS * g_dim) == 0,
              "thread %d got different vectors", i);
        free(outs[i]);
    }
    free(g_reference);
    ember_model_free(g_model);
    return test_finish("test_concurrency");
}
