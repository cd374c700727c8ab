/*
 * consumer.c — a program outside the project that uses only <ember.h> and
 * the pkg-config file, as a user would: loads a model, embeds one sequence
 * of token ids, checks the vector is unit length.
 */
#include <ember.h>
#include <math.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    ember_model *model = NULL;
    ember_ctx *ctx = NULL;
    if (ember_model_load(argv[1], NULL, &model) != EMBER_OK ||
        ember_ctx_init(model, NULL, &ctx) != EMBER_OK) {
        fprintf(stderr, "consumer: %s\n", ember_last_error());
        return 1;
    }
    int32_t ids[] = {101, 1000, 1001, 102};
    int64_t offsets[] = {0, 4};
    float vec[4096];
    int32_t dim = ember_model_dim(model);
    if (dim > 4096 || ember_embed_tokens(ctx, ids, offsets, 1, NULL, vec, dim, NULL) != EMBER_OK) {
        fprintf(stderr, "consumer: %s\n", ember_last_error());
        return 1;
    }
    double norm = 0;
    for (int32_t i = 0; i < dim; i++)
        norm += (double)vec[i] * vec[i];
    ember_ctx_free(ctx);
    ember_model_free(model);
    printf("consumer: dimension %d, norm %.6f\n", dim, sqrt(norm));
    return fabs(sqrt(norm) - 1.0) < 1e-5 ? 0 : 1;
}
