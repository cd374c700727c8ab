/*
 * test_rerank.c — cross-encoder scores against sentence-transformers'
 * CrossEncoder (tests/fixtures/goldens/rerank-*: random weights, real
 * tokenizers with shrunk vocabularies, made by scripts/make_rerank_goldens.py).
 * Raw logits and default-activation scores must be within 1e-4 of the
 * reference with identical ordering per query, at batch sizes 1 and 32; the
 * pair encodings (ids and token types, longest-first truncation) must equal
 * the tokenizer's.
 *
 * Usage: test_rerank CASE_DIR
 */
#include <jansson.h>

#include "test_util.h"
#include "tokenizer/tokenizer.h"

#define ABS_MAX 1e-4

typedef struct {
    json_t *rows;
    size_t n;
} golden;

static double max_abs(const float *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m)
            m = d;
    }
    return m;
}

static int same_order(const float *a, const double *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if ((a[i] > a[j]) != (b[i] > b[j]) && fabs(b[i] - b[j]) > 2 * ABS_MAX)
                return 0;
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_rerank CASE_DIR\n");
        return 2;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/pairs.jsonl", argv[1]);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    json_t *rows = json_array();
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        if (o)
            json_array_append_new(rows, o);
    }
    free(line);
    fclose(f);
    size_t n = json_array_size(rows);
    CHECK(n > 0, "no pairs");

    ember_model *m = NULL;
    CHECK_OK(ember_model_load(argv[1], NULL, &m));
    if (!m)
        return test_finish("test_rerank");
    CHECK(ember_model_num_labels(m) == 1, "num_labels %d", ember_model_num_labels(m));

    /* pair encodings */
    ember_encoding *enc = NULL;
    CHECK_OK(ember_encoding_new(&enc));
    int bad_tok = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(rows, i);
        const char *q = json_string_value(json_object_get(r, "query"));
        const char *t = json_string_value(json_object_get(r, "text"));
        json_t *ids = json_object_get(r, "input_ids"), *ty = json_object_get(r, "token_type_ids");
        ember_pair_buf pb;
        memset(&pb, 0, sizeof pb);
        int64_t full = 0;
        CHECK_OK(ember_tok_encode_pair(ember_model_tokenizer(m), q, strlen(q), t, strlen(t),
                                       ember_model_max_tokens(m), enc, &pb, &full));
        int ok = pb.n == (int64_t)json_array_size(ids);
        for (int64_t k = 0; ok && k < pb.n; k++) {
            ok = pb.ids[k] == json_integer_value(json_array_get(ids, (size_t)k));
            if (ok && json_is_array(ty))
                ok = pb.types[k] == json_integer_value(json_array_get(ty, (size_t)k));
            else if (ok)
                ok = pb.types[k] == 0;
        }
        if (!ok && bad_tok++ < 3)
            fprintf(stderr, "pair %zu: %lld ids, reference %zu\n", i, (long long)pb.n,
                    json_array_size(ids));
        CHECK(ok, "pair %zu encoding differs from the tokenizer's", i);
        ember_pair_buf_free(&pb);
    }
    ember_encoding_free(enc);

    const int batches[] = {1, 32};
    double worst_raw = 0, worst_score = 0;
    for (int bi = 0; bi < 2; bi++) {
        ember_ctx_params cp = ember_ctx_default_params();
        cp.max_batch = batches[bi];
        cp.n_threads = 2;
        ember_ctx *ctx = NULL;
        CHECK_OK(ember_ctx_init(m, &cp, &ctx));
        if (!ctx)
            break;
        /* one call per query: consecutive rows with the same query */
        for (size_t s = 0; s < n;) {
            const char *q = json_string_value(json_object_get(json_array_get(rows, s), "query"));
            size_t e = s;
            while (e < n &&
                   !strcmp(q, json_string_value(json_object_get(json_array_get(rows, e), "query"))))
                e++;
            size_t k = e - s;
            const char **texts = calloc(k, sizeof *texts);
            size_t *lens = calloc(k, sizeof *lens);
            float *raw = calloc(k, sizeof *raw), *score = calloc(k, sizeof *score);
            double *xraw = calloc(k, sizeof *xraw), *xscore = calloc(k, sizeof *xscore);
            for (size_t i = 0; i < k; i++) {
                json_t *r = json_array_get(rows, s + i);
                texts[i] = json_string_value(json_object_get(r, "text"));
                lens[i] = strlen(texts[i]);
                xraw[i] = json_real_value(json_array_get(json_object_get(r, "raw"), 0));
                xscore[i] = json_real_value(json_array_get(json_object_get(r, "score"), 0));
            }
            ember_rerank_options o = ember_rerank_default_options();
            o.raw_scores = 1;
            CHECK_OK(ember_rerank(ctx, q, strlen(q), texts, lens, (int64_t)k, &o, raw, (int64_t)k,
                                  NULL));
            CHECK_OK(ember_rerank(ctx, q, strlen(q), texts, lens, (int64_t)k, NULL, score,
                                  (int64_t)k, NULL));
            double dr = max_abs(raw, xraw, k), ds = max_abs(score, xscore, k);
            worst_raw = dr > worst_raw ? dr : worst_raw;
            worst_score = ds > worst_score ? ds : worst_score;
            CHECK(dr <= ABS_MAX, "query at row %zu: raw max abs diff %g", s, dr);
            CHECK(ds <= ABS_MAX, "query at row %zu: score max abs diff %g", s, ds);
            CHECK(same_order(raw, xraw, k), "query at row %zu: ordering differs", s);
            /* without truncation a pair over the limit is refused */
            o.truncate = 0;
            int64_t longest = 0;
            for (size_t i = 0; i < k; i++)
                if (lens[i] > lens[longest])
                    longest = (int64_t)i;
            if (lens[longest] > 3000)
                CHECK_STATUS(ember_rerank(ctx, q, strlen(q), texts + longest, lens + longest, 1,
                                          &o, raw, 1, NULL),
                             EMBER_E_TOO_LONG);
            free(texts);
            free(lens);
            free(raw);
            free(score);
            free(xraw);
            free(xscore);
            s = e;
        }
        ember_ctx_free(ctx);
    }
    printf("%s: %zu pairs, max abs diff raw %.3g, score %.3g\n", argv[1], n, worst_raw,
           worst_score);
    ember_model_free(m);
    json_decref(rows);
    return test_finish("test_rerank");
}
