/*
 * test_long_text.c — a text far longer than the model accepts is tokenized
 * only as far as the kept tokens need: ember_model_tokenize() (bounded) gives
 * exactly the ids and offsets of the full tokenization truncated
 * (ember_tokenize() with max_length over the whole text), for texts built to
 * stress the cut (long words, whitespace runs, no whitespace at all,
 * multi-byte characters, punctuation), and a 50 MB text costs bounded memory.
 *
 * Usage: test_long_text MODEL_DIR...   (directories with a tokenizer.json)
 */
#include <stdint.h>
#include <sys/resource.h>

#include "test_util.h"

static char *make_text(int kind, size_t len) {
    char *t = malloc(len + 1);
    static const char *words[] = {"the",  "quick", "Brown", "fox,", "jumps", "über", "naïve",
                                  "café", "東京",  "données", "123", "(x)", "—", "résumé",
                                  "supercalifragilisticexpialidocious", "e.g.", "«ok»"};
    size_t n = 0;
    uint32_t r = 12345u + (uint32_t)kind;
    while (n < len) {
        r = r * 1103515245u + 12345u;
        const char *w;
        char buf[256];
        if (kind == 1) { /* no whitespace at all */
            w = words[(r >> 8) % (sizeof words / sizeof words[0])];
        } else if (kind == 2 && (r >> 5) % 7 == 0) { /* long whitespace runs */
            memset(buf, (r >> 9) % 2 ? ' ' : '\n', 40);
            buf[40] = 0;
            w = buf;
        } else if (kind == 3 && (r >> 5) % 11 == 0) { /* words over 100 characters */
            memset(buf, 'a' + (int)((r >> 9) % 26), 150);
            buf[150] = 0;
            w = buf;
        } else {
            w = words[(r >> 8) % (sizeof words / sizeof words[0])];
        }
        size_t k = strlen(w);
        if (n + k + 1 > len)
            break;
        memcpy(t + n, w, k);
        n += k;
        if (kind != 1)
            t[n++] = ' ';
    }
    t[n] = 0;
    return t;
}

static void compare(const ember_model *m, const char *text, size_t len, const char *what) {
    ember_encoding *a = NULL, *b = NULL;
    CHECK_OK(ember_encoding_new(&a));
    CHECK_OK(ember_encoding_new(&b));
    if (!a || !b)
        return;
    CHECK_OK(ember_model_tokenize(m, text, len, NULL, a));
    ember_tokenize_options to = ember_tokenize_default_options();
    to.add_special_tokens = 1;
    to.max_length = ember_model_max_tokens(m);
    CHECK_OK(ember_tokenize(ember_model_tokenizer(m), text, len, &to, b));
    int64_t n = ember_encoding_length(a);
    CHECK(n == ember_encoding_length(b), "%s: %lld tokens, full tokenization %lld", what,
          (long long)n, (long long)ember_encoding_length(b));
    if (n == ember_encoding_length(b)) {
        CHECK(memcmp(ember_encoding_ids(a), ember_encoding_ids(b), sizeof(int32_t) * (size_t)n) == 0,
              "%s: ids differ from the full tokenization", what);
        CHECK(memcmp(ember_encoding_byte_offsets(a), ember_encoding_byte_offsets(b),
                     sizeof(int64_t) * 2 * (size_t)n) == 0,
              "%s: offsets differ", what);
    }
    CHECK((ember_encoding_flags(a) & EMBER_ENCODING_TRUNCATED) ==
              (ember_encoding_flags(b) & EMBER_ENCODING_TRUNCATED),
          "%s: truncation flag", what);
    ember_encoding_free(a);
    ember_encoding_free(b);
}

static long max_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR...\n", argv[0]);
        return 2;
    }
    for (int a = 1; a < argc; a++) {
        ember_model *m = NULL;
        CHECK_OK(ember_model_load(argv[a], NULL, &m));
        if (!m)
            continue;
        for (int kind = 0; kind < 4; kind++)
            for (size_t len = 1000; len <= 400000; len *= 7) {
                char *t = make_text(kind, len);
                char what[300];
                snprintf(what, sizeof what, "%s kind %d len %zu", argv[a], kind, len);
                compare(m, t, strlen(t), what);
                free(t);
            }
        /* memory: 50 MB of text, tokenized for the model, costs what the
         * kept part needs (was ~40x the text: 2 GB) */
        size_t big = 50u << 20;
        char *t = make_text(0, big);
        size_t len = strlen(t);
        long before = max_rss_kb();
        ember_encoding *e = NULL;
        CHECK_OK(ember_encoding_new(&e));
        CHECK_OK(ember_model_tokenize(m, t, len, NULL, e));
        long grew_mb = (max_rss_kb() - before) / 1024;
        CHECK(grew_mb < 64, "%s: tokenizing %zu bytes raised the peak RSS by %ld MB", argv[a], len,
              grew_mb);
        CHECK(ember_encoding_length(e) == ember_model_max_tokens(m), "50 MB text: %lld tokens",
              (long long)ember_encoding_length(e));
        ember_encoding_free(e);
        free(t);
        ember_model_free(m);
    }
    return test_finish("test_long_text");
}
