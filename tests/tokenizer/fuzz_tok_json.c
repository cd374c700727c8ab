/*
 * fuzz_tok_json.c — random bytes as tokenizer.json. Loading must either
 * succeed or fail with a status and a message; a tokenizer that loads is
 * then run on a few fixed texts (ASCII, CJK, combining marks, invalid UTF-8,
 * special-token look-alikes), with and without truncation.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"
#include "tokenizer/internal.h"

static const char *texts[] = {
    "Hello, world! The quick brown fox's 123 jumps.",
    "  leading and trailing  \t\n",
    "\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c caf\xc3\xa9 cafe\xcc\x81",
    "[CLS] x[MASK]y <s> </s> <unk> \xe2\x96\x81word",
    "bad \xff\xfe utf8 \xc0\x80 \xed\xa0\x80",
    "",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ember_tokenizer *t = NULL;
    ember_status st = ember_tok_load_json_buf((const char *)data, size, "fuzz", &t);
    if (st != EMBER_OK) {
        if (t || ember_last_error()[0] == '\0')
            abort(); /* a failure must leave no tokenizer and say why */
        return 0;
    }
    ember_encoding *e = NULL;
    if (ember_encoding_new(&e) != EMBER_OK)
        abort();
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        ember_tokenize_options o = ember_tokenize_default_options();
        for (int v = 0; v < 2; v++) {
            o.max_length = v ? 5 : 0;
            o.add_special_tokens = !v;
            size_t len = strlen(texts[i]);
            if (ember_tokenize(t, texts[i], len, &o, e) == EMBER_OK) {
                for (int64_t k = 0; k < ember_encoding_length(e); k++) {
                    const int64_t *bo = ember_encoding_byte_offsets(e);
                    if (bo[2 * k] < 0 || bo[2 * k] > bo[2 * k + 1] || bo[2 * k + 1] > (int64_t)len)
                        abort();
                    (void)ember_tokenizer_id_to_token(t, ember_encoding_ids(e)[k]);
                }
            }
        }
    }
    ember_encoding_free(e);
    ember_tokenizer_free(t);
    return 0;
}
