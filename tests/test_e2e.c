/*
 * test_e2e.c — text in, vectors out, against sentence-transformers'
 * encode() on the same texts (tests/fixtures/goldens/e2e-*): the token ids
 * must be identical (special tokens, right truncation to max_seq_length) and
 * every embedding within cosine >= 0.99999 and max abs diff <= 1e-4, with
 * batch sizes 1 and 32 and 1 and 2 threads, and in blocks tokenized ahead
 * on a helper thread (EMBER_TOKENIZE_AHEAD=1, what a GPU driver does), where
 * a text that fails in a later block is named by its index in the call.
 *
 * Usage: test_e2e CASE_DIR [f32]
 * f32 pins the compute dtype (a GPU driver's default is bf16): how
 * scripts/gpu-check.sh runs it through EMBER_DRIVER=cuda.
 */
#include <jansson.h>

#include "test_util.h"

/* Checks n vectors of out against the expected embeddings (cosine >=
 * 0.99999, max abs diff <= 1e-4); returns the worst cosine and the worst
 * difference in *worst_abs. `what` names the configuration in failures. */
static double check_vectors(const float *out, json_t **exp, int n, int dim, const char *what,
                            double *worst_abs) {
    double worst_cos = 1;
    *worst_abs = 0;
    for (int i = 0; i < n; i++) {
        json_t *e = json_object_get(exp[i], "embedding");
        float want[4096];
        for (int k = 0; k < dim && k < 4096; k++)
            want[k] = (float)json_number_value(json_array_get(e, (size_t)k));
        double c, a;
        test_compare(out + (size_t)i * dim, want, dim, &c, &a);
        worst_cos = fmin(worst_cos, c);
        *worst_abs = fmax(*worst_abs, a);
        CHECK(c >= 0.99999 && a <= 1e-4, "%s, text %d: cosine %.9f max abs %.3g", what, i, c, a);
    }
    return worst_cos;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    const char *dir = argv[1];
    char *texts_path = test_path(dir, "texts.jsonl"), *exp_path = test_path(dir, "expected.jsonl");
    FILE *ft = fopen(texts_path, "r"), *fe = fopen(exp_path, "r");
    CHECK(ft && fe, "cannot open %s or %s", texts_path, exp_path);
    if (!ft || !fe)
        return test_finish(dir);
    json_t *texts[512], *exp[512];
    int n = 0;
    char *line = NULL;
    size_t cap = 0;
    json_error_t err;
    while (n < 512 && getline(&line, &cap, ft) > 0) {
        texts[n] = json_loads(line, JSON_ALLOW_NUL, &err);
        CHECK(texts[n] != NULL, "texts line %d: %s", n, err.text);
        if (getline(&line, &cap, fe) <= 0)
            break;
        exp[n] = json_loads(line, JSON_ALLOW_NUL, &err);
        CHECK(exp[n] != NULL, "expected line %d: %s", n, err.text);
        n++;
    }
    free(line);
    fclose(ft);
    fclose(fe);
    ember_model *m = NULL;
    ember_model_params mp = ember_model_default_params();
    if (argc > 2 && strcmp(argv[2], "f32") == 0)
        mp.dtype = EMBER_DTYPE_F32;
    CHECK_OK(ember_model_load(dir, &mp, &m));
    if (!m)
        return test_finish(dir);
    const ember_tokenizer *tok = ember_model_tokenizer(m);
    CHECK(tok != NULL, "model has no tokenizer");
    int dim = ember_model_dim(m);
    const char **ptrs = calloc((size_t)n, sizeof(char *));
    size_t *lens = calloc((size_t)n, sizeof(size_t));
    int n_truncated_expected = 0;
    for (int i = 0; i < n; i++) {
        json_t *t = json_object_get(texts[i], "text");
        ptrs[i] = json_string_value(t);
        lens[i] = json_string_length(t);
        n_truncated_expected += json_is_true(json_object_get(exp[i], "truncated"));
    }

    /* token ids, exactly */
    ember_encoding *enc = NULL;
    CHECK_OK(ember_encoding_new(&enc));
    ember_tokenize_options to = ember_tokenize_default_options();
    to.max_length = ember_model_max_tokens(m);
    int id_mismatches = 0;
    for (int i = 0; i < n && tok; i++) {
        CHECK_OK(ember_tokenize(tok, ptrs[i], lens[i], &to, enc));
        json_t *want = json_object_get(exp[i], "input_ids");
        int64_t len = ember_encoding_length(enc);
        int same = (size_t)len == json_array_size(want);
        for (int64_t k = 0; same && k < len; k++)
            same = ember_encoding_ids(enc)[k] == json_integer_value(json_array_get(want, (size_t)k));
        if (!same && id_mismatches++ < 5)
            CHECK(same, "text %d: ids differ (%lld tokens vs %zu expected)", i, (long long)len,
                  json_array_size(want));
    }
    CHECK(id_mismatches == 0, "%d texts tokenized differently", id_mismatches);
    ember_encoding_free(enc);

    float *out = calloc((size_t)n * dim, sizeof(float));
    const int batches[] = {1, 32}, threads[] = {1, 2};
    for (int bi = 0; bi < 2; bi++)
        for (int ti = 0; ti < 2; ti++) {
            ember_ctx_params cp = ember_ctx_default_params();
            cp.max_batch = batches[bi];
            cp.n_threads = threads[ti];
            ember_ctx *ctx = NULL;
            CHECK_OK(ember_ctx_init(m, &cp, &ctx));
            ember_embed_stats st;
            CHECK_OK(ember_embed_texts(ctx, ptrs, lens, n, NULL, out, (int64_t)n * dim, &st));
            CHECK(st.n_truncated == n_truncated_expected, "truncated %lld, expected %d",
                  (long long)st.n_truncated, n_truncated_expected);
            char what[64];
            snprintf(what, sizeof what, "batch %d, threads %d", batches[bi], threads[ti]);
            double worst_abs, worst_cos = check_vectors(out, exp, n, dim, what, &worst_abs);
            printf("batch %2d threads %d: worst cosine %.9f, worst max abs %.3g\n", batches[bi],
                   threads[ti], worst_cos, worst_abs);
            ember_ctx_free(ctx);
        }

    /* Blocks tokenized ahead: two sequences and 64 tokens a pass make
     * blocks of 2, 4, 8 and then 16 texts, each tokenized on a helper
     * thread while the one before runs. */
    int64_t tokens_expected = 0;
    int first_long = -1;
    for (int i = 0; i < n; i++) {
        tokens_expected += (int64_t)json_array_size(json_object_get(exp[i], "input_ids"));
        if (first_long < 0 && json_is_true(json_object_get(exp[i], "truncated")))
            first_long = i;
    }
    for (int ahead = 0; ahead < 2; ahead++) {
        setenv("EMBER_TOKENIZE_AHEAD", ahead ? "1" : "0", 1);
        ember_ctx_params cp = ember_ctx_default_params();
        cp.max_batch = 2;
        cp.max_batch_tokens = 64;
        cp.n_threads = 2;
        ember_ctx *ctx = NULL;
        CHECK_OK(ember_ctx_init(m, &cp, &ctx));
        if (!ctx)
            break;
        ember_embed_stats st;
        for (int i = 0; i < n * dim; i++)
            out[i] = NAN;
        CHECK_OK(ember_embed_texts(ctx, ptrs, lens, n, NULL, out, (int64_t)n * dim, &st));
        CHECK(st.n_truncated == n_truncated_expected && st.n_tokens == tokens_expected,
              "ahead %d: truncated %lld (expected %d), tokens %lld (expected %lld)", ahead,
              (long long)st.n_truncated, n_truncated_expected, (long long)st.n_tokens,
              (long long)tokens_expected);
        CHECK(st.n_forward_passes >= n / 2, "ahead %d: %lld passes for %d texts", ahead,
              (long long)st.n_forward_passes, n);
        char what[32];
        snprintf(what, sizeof what, "tokenize ahead %d", ahead);
        double worst_abs, worst_cos = check_vectors(out, exp, n, dim, what, &worst_abs);
        printf("tokenize ahead %d (2 sequences / 64 tokens a pass): worst cosine %.9f, %lld passes\n",
               ahead, worst_cos, (long long)st.n_forward_passes);
        /* without truncation the first long text fails, named by its index
         * in the call whichever block it fell in */
        CHECK(first_long >= 2, "the case needs a long text past the first block (first at %d)",
              first_long);
        if (first_long >= 2) {
            ember_embed_options eo = ember_embed_default_options();
            eo.truncate = 0;
            char want[32];
            snprintf(want, sizeof want, "text %d: ", first_long);
            for (int i = 0; i < n * dim; i++)
                out[i] = NAN;
            ember_status s = ember_embed_texts(ctx, ptrs, lens, n, &eo, out, (int64_t)n * dim, NULL);
            CHECK(s == EMBER_E_TOO_LONG && strncmp(ember_last_error(), want, strlen(want)) == 0,
                  "ahead %d: status %d, message \"%s\" (wanted \"%s...\")", ahead, (int)s,
                  ember_last_error(), want);
            /* in blocks, the first block ran before the failing one was
             * tokenized; in one block, tokenizing failed before any pass */
            CHECK(ahead ? isfinite(out[0]) : isnan(out[0]),
                  "ahead %d: text 0's vector is %g after the failure", ahead, (double)out[0]);
            /* the same context goes on working after the failure */
            CHECK_OK(ember_embed_texts(ctx, ptrs, lens, n > 3 ? 3 : n, NULL, out, (int64_t)n * dim, NULL));
        }
        /* an output too small for n vectors is refused before any work */
        CHECK(ember_embed_texts(ctx, ptrs, lens, n, NULL, out, (int64_t)n * dim - 1, NULL) ==
                  EMBER_E_INVALID_ARGUMENT,
              "ahead %d: a short output buffer was accepted", ahead);
        ember_ctx_free(ctx);
    }
    unsetenv("EMBER_TOKENIZE_AHEAD");

    free(out);
    free(ptrs);
    free(lens);
    for (int i = 0; i < n; i++) {
        json_decref(texts[i]);
        json_decref(exp[i]);
    }
    ember_model_free(m);
    free(texts_path);
    free(exp_path);
    return test_finish(dir);
}
