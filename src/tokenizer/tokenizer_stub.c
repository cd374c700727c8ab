/*
 * tokenizer_stub.c — placeholder until the tokenizer lands: no tokenizer can
 * be loaded, so models embed token ids only.
 */
#include <stdlib.h>

#include "core/error.h"
#include "ember.h"

ember_status ember_tokenizer_load(const char *path, ember_tokenizer **out) {
    *out = NULL;
    return ember_error(EMBER_E_UNSUPPORTED, "%s: tokenizers are not available in this build", path);
}
void ember_tokenizer_free(ember_tokenizer *tok) { (void)tok; }
int32_t ember_tokenizer_vocab_size(const ember_tokenizer *tok) { (void)tok; return 0; }
const char *ember_tokenizer_id_to_token(const ember_tokenizer *tok, int32_t id) { (void)tok; (void)id; return NULL; }
int32_t ember_tokenizer_max_length(const ember_tokenizer *tok) { (void)tok; return 0; }
ember_tokenize_options ember_tokenize_default_options(void) {
    ember_tokenize_options o = {sizeof o, 1, 0, EMBER_TRUNCATE_RIGHT, -1};
    return o;
}
ember_status ember_encoding_new(ember_encoding **out) { *out = NULL; return EMBER_E_UNSUPPORTED; }
void ember_encoding_free(ember_encoding *enc) { (void)enc; }
ember_status ember_tokenize(const ember_tokenizer *tok, const char *text, size_t len,
                            const ember_tokenize_options *opts, ember_encoding *enc) {
    (void)tok; (void)text; (void)len; (void)opts; (void)enc;
    return EMBER_E_UNSUPPORTED;
}
int64_t ember_encoding_length(const ember_encoding *enc) { (void)enc; return 0; }
const int32_t *ember_encoding_ids(const ember_encoding *enc) { (void)enc; return NULL; }
const int64_t *ember_encoding_byte_offsets(const ember_encoding *enc) { (void)enc; return NULL; }
const int64_t *ember_encoding_char_offsets(const ember_encoding *enc) { (void)enc; return NULL; }
const uint8_t *ember_encoding_special_mask(const ember_encoding *enc) { (void)enc; return NULL; }
const char *ember_encoding_token(const ember_encoding *enc, int64_t i) { (void)enc; (void)i; return NULL; }
uint32_t ember_encoding_flags(const ember_encoding *enc) { (void)enc; return 0; }
int64_t ember_encoding_untruncated_length(const ember_encoding *enc) { (void)enc; return 0; }
