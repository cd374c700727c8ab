/*
 * cmd_rerank.c — `ember rerank -m DIR QUERY TEXT...`: scores each TEXT
 * against QUERY with a cross-encoder and writes one JSON line per text,
 * best first: {"index": i, "score": s[, "text": "..."]} (the shape of
 * TEI's /rerank results).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help(void) {
    printf("usage: ember rerank [-m MODEL] [options] QUERY TEXT...\n"
           "\n"
           "Scores every TEXT against QUERY with a cross-encoder (a BERT or XLM-R\n"
           "*ForSequenceClassification model) and writes one JSON line per text, best\n"
           "first: {\"index\": i, \"score\": s}.\n"
           "\n"
           "options:\n"
           "  -m, --model MODEL   model directory or hub id (default: $EMBER_MODEL or %s)\n"
           "  --raw-scores        logits instead of the sigmoid of a single-label model\n"
           "  --return-text       add \"text\" to every line\n"
           "  --no-truncate       fail on pairs longer than the model's limit instead of cutting\n"
           "  -t, --threads N     worker threads (default: all CPUs)\n"
           "  --device D, --dtype D  where and in what precision (see ember --help)\n"
           "  -v, --verbose       more messages on stderr\n",
           EMBER_DEFAULT_MODEL);
}

static const float *g_scores;

static int by_score(const void *a, const void *b) {
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (g_scores[i] != g_scores[j])
        return g_scores[i] > g_scores[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

int cmd_rerank(int argc, char **argv) {
    cli_args a = {argc, argv, 0, NULL};
    const char *model = NULL;
    ember_rerank_options ro = ember_rerank_default_options();
    int threads = 0, verbose = 0, return_text = 0;
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int n_pos = 0;
    if (!pos)
        cli_die(1, "rerank", "out of memory");
    for (a.i = 1; a.i < argc; a.i++) {
        if (cli_opt_value(&a, "--model", "-m"))
            model = a.value;
        else if (cli_opt_flag(&a, "--raw-scores", NULL))
            ro.raw_scores = 1;
        else if (cli_opt_flag(&a, "--return-text", NULL))
            return_text = 1;
        else if (cli_opt_flag(&a, "--no-truncate", NULL))
            ro.truncate = 0;
        else if (cli_opt_value(&a, "--threads", "-t"))
            threads = (int)cli_int("--threads", a.value, 0, 1024);
        else if (cli_opt_flag(&a, "--verbose", "-v"))
            verbose++;
        else if (cli_opt_flag(&a, "--help", "-h")) {
            help();
            free(pos);
            return 0;
        } else if (argv[a.i][0] == '-' && argv[a.i][1] != '\0')
            cli_die(2, "rerank", "unknown option %s (see ember rerank --help)", argv[a.i]);
        else
            pos[n_pos++] = argv[a.i];
    }
    if (n_pos < 2)
        cli_die(2, "rerank", "needs a QUERY and at least one TEXT (see ember rerank --help)");
    cli_setup_logging(verbose);
    const char *spec = cli_model_spec(model);
    ember_model *m = cli_load_model(spec, NULL, "rerank");
    if (ember_model_num_labels(m) == 0) {
        fprintf(stderr, "ember rerank: %s is not a cross-encoder (a *ForSequenceClassification "
                        "model); use ember embed for embedding models\n",
                spec);
        ember_model_free(m);
        free(pos);
        return 1;
    }
    ember_ctx_params cp = ember_model_ctx_params(m);
    cp.n_threads = threads;
    ember_ctx *ctx = NULL;
    if (ember_ctx_init(m, &cp, &ctx) != EMBER_OK) {
        fprintf(stderr, "ember rerank: %s\n", ember_last_error());
        ember_model_free(m);
        free(pos);
        return 1;
    }
    const int64_t n = n_pos - 1;
    const int32_t nl = ember_model_num_labels(m);
    const char *query = pos[0];
    char **texts = pos + 1;
    size_t *lens = calloc((size_t)n, sizeof *lens);
    float *all = calloc((size_t)(n * nl), sizeof *all), *scores = calloc((size_t)n, sizeof *scores);
    int64_t *order = calloc((size_t)n, sizeof *order);
    int rc = 0;
    if (!lens || !all || !scores || !order)
        cli_die(1, "rerank", "out of memory");
    for (int64_t i = 0; i < n; i++)
        lens[i] = strlen(texts[i]);
    if (ember_rerank(ctx, query, strlen(query), (const char *const *)texts, lens, n, &ro, all,
                     n * nl, NULL) != EMBER_OK) {
        fprintf(stderr, "ember rerank: %s\n", ember_last_error());
        rc = 1;
    } else {
        for (int64_t i = 0; i < n; i++) {
            scores[i] = all[i * nl]; /* the first label, as TEI */
            order[i] = i;
        }
        g_scores = scores;
        qsort(order, (size_t)n, sizeof *order, by_score);
        for (int64_t k = 0; k < n; k++) {
            int64_t i = order[k];
            printf("{\"index\": %lld, \"score\": ", (long long)i);
            cli_json_float(stdout, scores[i]);
            if (return_text) {
                printf(", \"text\": ");
                cli_json_string(stdout, texts[i], lens[i]);
            }
            printf("}\n");
        }
    }
    free(lens);
    free(all);
    free(scores);
    free(order);
    free(pos);
    ember_ctx_free(ctx);
    ember_model_free(m);
    return rc;
}
