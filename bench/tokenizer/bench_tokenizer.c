/*
 * bench_tokenizer.c — tokenization throughput on the golden corpus.
 *
 * For each fixture tokenizer, reads the texts of its golden file, then
 * tokenizes the whole corpus N times (single thread, special tokens added, no
 * truncation, no sentence-transformers lowercasing: the same work as HF's
 * `encode(text)`), and prints MB/s and tokens/s, one JSON object per line.
 * Results are validated first: the ids must equal the goldens' ids.
 * bench/tokenizer/hf_bench.py measures Hugging Face's Rust implementation
 * (PyPI `tokenizers`) on the same corpus with the same loop.
 *
 *   bench_tokenizer <fixtures/tokenizer> [iterations=20] [name substring]
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ember.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    char **text;
    size_t *len;
    json_t **ids;
    size_t n, cap;
    json_t *keep;
} corpus;

static int read_corpus(const char *path, corpus *c) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    c->keep = json_array();
    while ((got = getline(&line, &lcap, f)) > 0) {
        json_t *rec = json_loadb(line, (size_t)got, JSON_ALLOW_NUL, NULL);
        if (!rec)
            continue;
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 512;
            c->text = realloc(c->text, c->cap * sizeof *c->text);
            c->len = realloc(c->len, c->cap * sizeof *c->len);
            c->ids = realloc(c->ids, c->cap * sizeof *c->ids);
        }
        const json_t *t = json_object_get(rec, "text");
        c->len[c->n] = json_string_length(t);
        c->text[c->n] = malloc(c->len[c->n] + 1);
        memcpy(c->text[c->n], json_string_value(t), c->len[c->n] + 1);
        c->ids[c->n] = json_object_get(rec, "ids");
        json_array_append_new(c->keep, rec);
        c->n++;
    }
    free(line);
    fclose(f);
    return 0;
}

int main(int argc, char **argv) {
    const char *fx = argc > 1 ? argv[1] : "tests/fixtures/tokenizer";
    int iters = argc > 2 ? atoi(argv[2]) : 20;
    const char *names[] = {"BAAI--bge-small-en-v1.5", "sentence-transformers--all-MiniLM-L6-v2",
                           "google-bert--bert-base-uncased", "BAAI--bge-small-zh-v1.5",
                           "answerdotai--ModernBERT-base", "spm-xlmr-nmt", "spm-bytefallback"};
    int bad = 0;
    const char *only = argc > 3 ? argv[3] : NULL; /* substring of the names to run */
    for (int k = 0; k < (int)(sizeof names / sizeof *names); k++) {
        if (only && !strstr(names[k], only))
            continue;
        char path[2048];
        /* the SentencePiece fixtures have their own goldens directory */
        snprintf(path, sizeof path, "%s/%s/%s.jsonl", fx,
                 strncmp(names[k], "spm-", 4) == 0 ? "goldens-spm" : "goldens", names[k]);
        corpus c = {0};
        if (read_corpus(path, &c) != 0) {
            fprintf(stderr, "cannot read %s\n", path);
            return 1;
        }
        snprintf(path, sizeof path, "%s/%s", fx, names[k]);
        ember_tokenizer *t;
        if (ember_tokenizer_load(path, &t) != EMBER_OK) {
            fprintf(stderr, "load %s: %s\n", path, ember_last_error());
            return 1;
        }
        ember_encoding *e;
        ember_encoding_new(&e);
        ember_tokenize_options o = ember_tokenize_default_options();
        o.lowercase = 0;
        size_t bytes = 0, tokens = 0;
        for (size_t i = 0; i < c.n; i++) {
            ember_tokenize(t, c.text[i], c.len[i], &o, e);
            bytes += c.len[i];
            tokens += (size_t)ember_encoding_length(e);
            int ok = json_array_size(c.ids[i]) == (size_t)ember_encoding_length(e);
            for (int64_t j = 0; ok && j < ember_encoding_length(e); j++)
                ok = json_integer_value(json_array_get(c.ids[i], (size_t)j)) ==
                     ember_encoding_ids(e)[j];
            if (!ok) {
                fprintf(stderr, "%s: text %zu does not match its golden ids\n", names[k], i);
                bad = 1;
            }
        }
        double best = 1e30;
        for (int r = 0; r < 3; r++) {
            double t0 = now();
            for (int it = 0; it < iters; it++)
                for (size_t i = 0; i < c.n; i++)
                    ember_tokenize(t, c.text[i], c.len[i], &o, e);
            double dt = now() - t0;
            best = dt < best ? dt : best;
        }
        double mb = (double)bytes * iters / best / 1e6, tps = (double)tokens * iters / best;
        printf("{\"impl\": \"ember\", \"tokenizer\": \"%s\", \"texts\": %zu, \"bytes\": %zu, "
               "\"tokens\": %zu, \"iterations\": %d, \"seconds\": %.4f, \"MB_per_s\": %.2f, "
               "\"tokens_per_s\": %.0f}\n",
               names[k], c.n, bytes, tokens, iters, best, mb, tps);
        ember_encoding_free(e);
        ember_tokenizer_free(t);
        for (size_t i = 0; i < c.n; i++)
            free(c.text[i]);
        free(c.text);
        free(c.len);
        free(c.ids);
        json_decref(c.keep);
    }
    return bad;
}
