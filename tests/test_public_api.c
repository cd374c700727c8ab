/*
 * test_public_api.c — the functions added for the tools, used the way the
 * tools use them: through <ember.h> and libember.so only (this program has
 * no include path into src/). Checks that ember_model_tokenize_texts +
 * ember_embed_tokens gives what ember_embed_texts gives (prompt, truncation),
 * that ember_l2_normalize matches the library's own normalization, the
 * index-based op profile, and the peak measurement's argument checks.
 * Usage: test_public_api MODEL_DIR (a model with a tokenizer and prompts)
 */
#include <ember.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, " [%s]\n", ember_last_error());                                        \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static float max_diff(const float *a, const float *b, int64_t n) {
    float d = 0;
    for (int64_t i = 0; i < n; i++)
        d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    ember_model *m = NULL;
    ember_ctx *ctx = NULL;
    if (ember_model_load(argv[1], NULL, &m) != EMBER_OK || ember_ctx_init(m, NULL, &ctx) != EMBER_OK) {
        fprintf(stderr, "test_public_api: %s\n", ember_last_error());
        return 1;
    }
    const int32_t dim = ember_model_dim(m), max_tokens = ember_model_max_tokens(m);
    /* a long text (truncated), an empty one, invalid UTF-8, a plain one */
    size_t long_len = (size_t)max_tokens * 8;
    char *long_text = malloc(long_len);
    for (size_t i = 0; i < long_len; i++)
        long_text[i] = i % 4 == 3 ? ' ' : 'a' + (char)(i % 7);
    const char *texts[] = {"hello world", long_text, "", "caf\xc3\xa9 \xff\xfe ok"};
    size_t lens[] = {11, long_len, 0, 12};
    const int64_t n = 4;
    float *a = malloc(sizeof(float) * (size_t)(n * dim)), *b = malloc(sizeof(float) * (size_t)(n * dim));

    /* 1. tokenize ahead + embed ids == embed texts, with a prompt */
    ember_embed_options eo = ember_embed_default_options();
    eo.prompt = ember_model_prompt_text(m, 0) ? ember_model_prompt_text(m, 0) : "query: ";
    int32_t *ids = NULL;
    int64_t *offsets = NULL;
    ember_embed_stats ts, es;
    CHECK(ember_model_tokenize_texts(m, texts, lens, n, &eo, &ids, &offsets, &ts) == EMBER_OK,
          "tokenize_texts");
    CHECK(ember_embed_texts(ctx, texts, lens, n, &eo, a, n * dim, &es) == EMBER_OK, "embed_texts");
    if (ids && offsets) {
        CHECK(ts.n_truncated == 1 && ts.n_invalid_utf8 == 1, "stats: truncated %lld invalid %lld",
              (long long)ts.n_truncated, (long long)ts.n_invalid_utf8);
        CHECK(ts.n_tokens == offsets[n] && es.n_tokens == offsets[n], "tokens %lld %lld %lld",
              (long long)ts.n_tokens, (long long)es.n_tokens, (long long)offsets[n]);
        CHECK(offsets[2] - offsets[1] == max_tokens, "long text has %lld tokens, max %d",
              (long long)(offsets[2] - offsets[1]), max_tokens);
        CHECK(ember_embed_tokens(ctx, ids, offsets, n, &eo, b, n * dim, NULL) == EMBER_OK, "embed ids");
        CHECK(max_diff(a, b, n * dim) == 0.0f, "texts vs ids differ by %g", max_diff(a, b, n * dim));
    }
    ember_free(ids);
    ember_free(offsets);

    /* 2. one text at a time, and the errors */
    ember_encoding *enc = NULL;
    CHECK(ember_encoding_new(&enc) == EMBER_OK, "encoding_new");
    CHECK(ember_model_tokenize(m, texts[0], lens[0], &eo, enc) == EMBER_OK, "tokenize");
    ember_embed_options strict = eo;
    strict.truncate = 0;
    CHECK(ember_model_tokenize(m, long_text, long_len, &strict, enc) == EMBER_E_TOO_LONG, "too long");
    CHECK(ember_encoding_length(enc) > max_tokens, "whole encoding kept: %lld",
          (long long)ember_encoding_length(enc));
    CHECK(ember_model_tokenize(m, NULL, 3, NULL, enc) == EMBER_E_INVALID_ARGUMENT, "NULL text");
    CHECK(ember_model_tokenize(NULL, "x", 1, NULL, enc) == EMBER_E_INVALID_ARGUMENT, "NULL model");
    ember_encoding_free(enc);

    /* 3. raw pooled + ember_l2_normalize == normalized by the library */
    ember_embed_options raw = ember_embed_default_options();
    raw.normalize = 0;
    ember_embed_options unit = ember_embed_default_options();
    unit.normalize = 1;
    CHECK(ember_embed_texts(ctx, texts, lens, n, &raw, a, n * dim, NULL) == EMBER_OK, "raw");
    CHECK(ember_embed_texts(ctx, texts, lens, n, &unit, b, n * dim, NULL) == EMBER_OK, "unit");
    CHECK(ember_l2_normalize(a, n, dim) == EMBER_OK, "l2_normalize");
    CHECK(max_diff(a, b, n * dim) <= 1e-6f, "normalize differs by %g", max_diff(a, b, n * dim));
    CHECK(ember_l2_normalize(NULL, 1, dim) == EMBER_E_INVALID_ARGUMENT, "NULL rows");
    CHECK(ember_l2_normalize(a, -1, dim) == EMBER_E_INVALID_ARGUMENT, "negative rows");

    /* 4. the per-op profile, by index */
    int32_t n_ops = ember_ctx_profile_count(ctx);
    CHECK(n_ops > 0 && ember_ctx_profile_count(NULL) == 0, "profile count %d", n_ops);
    CHECK(ember_ctx_enable_profiling(ctx, 1) == EMBER_OK, "enable");
    CHECK(ember_embed_texts(ctx, texts, lens, n, NULL, a, n * dim, NULL) == EMBER_OK, "profiled");
    CHECK(ember_ctx_enable_profiling(ctx, 0) == EMBER_OK, "disable");
    double flops = 0;
    int64_t calls = 0;
    for (int32_t i = 0; i < n_ops; i++) {
        ember_op_stats s;
        memset(&s, 0, sizeof s);
        s.struct_size = sizeof s;
        CHECK(ember_ctx_profile_get(ctx, i, &s) == EMBER_OK && s.name && *s.name, "op %d", i);
        flops += s.flops;
        calls += s.calls;
    }
    CHECK(flops > 0 && calls > 0, "profile: %g flops, %lld calls", flops, (long long)calls);
    ember_op_stats s;
    s.struct_size = sizeof s;
    CHECK(ember_ctx_profile_get(ctx, n_ops, &s) == EMBER_E_INVALID_ARGUMENT, "op out of range");
    s.struct_size = 0;
    CHECK(ember_ctx_profile_get(ctx, 0, &s) == EMBER_E_INVALID_ARGUMENT, "struct_size 0");
    CHECK(ember_ctx_enable_profiling(NULL, 1) == EMBER_E_INVALID_ARGUMENT, "NULL ctx");

    /* 5. the peak measurement's argument checks (the measurement itself runs in ember bench) */
    double g = 0;
    CHECK(ember_cpu_peak_gflops(-1, &g) == EMBER_E_INVALID_ARGUMENT, "negative threads");
    CHECK(ember_cpu_peak_gflops(1, NULL) == EMBER_E_INVALID_ARGUMENT, "NULL out");
    CHECK(ember_cpu_peak_gflops_dtype(1, (ember_dtype)42, &g) == EMBER_E_INVALID_ARGUMENT, "bad dtype");
    CHECK(ember_cpu_peak_gflops_dtype(1, EMBER_DTYPE_INT8, NULL) == EMBER_E_INVALID_ARGUMENT, "NULL out (dtype)");

    free(a);
    free(b);
    free(long_text);
    ember_ctx_free(ctx);
    ember_model_free(m);
    if (failures)
        return 1;
    printf("test_public_api: ok (%d ops profiled)\n", n_ops);
    return 0;
}
