/*
 * fuzz_tok_text.c — random bytes as text for every fixture tokenizer
 * (loaded once). The first byte picks the options (specials, truncation
 * length and side, lowercasing); the rest is the text. Besides the
 * sanitizers, it checks the invariants callers rely on: offsets inside the
 * text and ordered, ids inside the vocabulary, token strings present, and
 * the flags consistent.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ember.h"

#ifndef TOK_FIXTURES_DIR
#error "TOK_FIXTURES_DIR must be defined"
#endif

static const char *names[] = {"BAAI--bge-small-en-v1.5", "sentence-transformers--all-MiniLM-L6-v2",
                              "google-bert--bert-base-uncased", "BAAI--bge-small-zh-v1.5",
                              "answerdotai--ModernBERT-base", "spm-xlmr-nmt", "spm-bytefallback"};
#define N_TOK (int)(sizeof names / sizeof *names)
static ember_tokenizer *toks[N_TOK];
static ember_encoding *enc;

static void fail(const char *what, int k) {
    fprintf(stderr, "fuzz_tok_text: %s (tokenizer %s)\n", what, names[k]);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!enc) {
        for (int k = 0; k < N_TOK; k++) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", TOK_FIXTURES_DIR, names[k]);
            if (ember_tokenizer_load(path, &toks[k]) != EMBER_OK) {
                fprintf(stderr, "cannot load %s: %s\n", path, ember_last_error());
                abort();
            }
        }
        if (ember_encoding_new(&enc) != EMBER_OK)
            abort();
    }
    if (size == 0)
        return 0;
    uint8_t sel = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    ember_tokenize_options o = ember_tokenize_default_options();
    o.add_special_tokens = sel & 1;
    o.max_length = (sel & 2) ? 1 + (sel >> 4) : 0;
    o.truncation_side = (sel & 4) ? EMBER_TRUNCATE_LEFT : EMBER_TRUNCATE_RIGHT;
    o.lowercase = (sel & 8) ? 1 : -1;
    for (int k = 0; k < N_TOK; k++) {
        if (ember_tokenize(toks[k], text, len, &o, enc) != EMBER_OK)
            fail(ember_last_error(), k);
        int64_t n = ember_encoding_length(enc);
        if (o.max_length > 0 && n > (o.max_length > 2 ? o.max_length : 2))
            fail("longer than max_length", k);
        if (ember_encoding_untruncated_length(enc) < n)
            fail("untruncated length below length", k);
        const int64_t *bo = ember_encoding_byte_offsets(enc), *co = ember_encoding_char_offsets(enc);
        for (int64_t i = 0; i < n; i++) {
            if (bo[2 * i] < 0 || bo[2 * i] > bo[2 * i + 1] || bo[2 * i + 1] > (int64_t)len)
                fail("byte offsets out of range", k);
            if (co[2 * i] < 0 || co[2 * i] > co[2 * i + 1] || co[2 * i + 1] > (int64_t)len)
                fail("char offsets out of range", k);
            int32_t id = ember_encoding_ids(enc)[i];
            if (id < 0 || id >= ember_tokenizer_vocab_size(toks[k]))
                fail("id out of range", k);
            if (!ember_encoding_token(enc, i))
                fail("no token string", k);
        }
    }
    return 0;
}
