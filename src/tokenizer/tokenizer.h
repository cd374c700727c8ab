/*
 * tokenizer.h — what the rest of Ember needs from the tokenizer module
 * beyond the public API in ember.h.
 *
 * The engine loads a tokenizer with ember_tokenizer_load()
 * (which also reads sentence_bert_config.json for max_seq_length and
 * do_lower_case) and encodes with ember_tokenize() into a per-thread
 * ember_encoding. A tokenizer is immutable after load and may be shared by
 * threads; an encoding belongs to one thread at a time.
 */
#ifndef EMBER_TOKENIZER_TOKENIZER_H
#define EMBER_TOKENIZER_TOKENIZER_H

#include "ember.h"

/* The SentencePiece model file (e.g. "sentencepiece.bpe.model") of a model
 * directory that has no tokenizer.json, or NULL. Ember reads SentencePiece
 * tokenizers only from tokenizer.json; callers use this to say how to make it. */
const char *ember_tok_sentencepiece_only(const char *dir);

/* The command that writes tokenizer.json next to a SentencePiece model. */
#define EMBER_TOK_SPM_HOWTO                                                                    \
    "Create it with Python: transformers.AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR)"

/* Token ids and token type ids of sequence pairs, appended one pair after
 * the other (a growable buffer the caller frees with ember_pair_buf_free). */
typedef struct ember_pair_buf {
    int32_t *ids, *types;
    int64_t n, cap;
} ember_pair_buf;

void ember_pair_buf_free(ember_pair_buf *b);

/* Appends the encoding of the pair (a, b) to `out` as Hugging Face
 * tokenizers encodes tokenizer(a, b, truncation="longest_first",
 * max_length=max_length): both texts are tokenized without special tokens,
 * cut longest-first to max_length minus the pair template's special tokens
 * (max_length 0: no cut), then laid out by the post-processor's pair template
 * ([CLS] A [SEP] B [SEP] with type ids 0/1 for BERT, <s> A </s></s> B </s>
 * for RoBERTa) with its type ids. `enc` is scratch. *n_untruncated receives
 * the length before cutting. EMBER_E_UNSUPPORTED when the tokenizer has no
 * pair template. */
ember_status ember_tok_encode_pair(const ember_tokenizer *t, const char *a, size_t alen,
                                   const char *b, size_t blen, int32_t max_length,
                                   ember_encoding *enc, ember_pair_buf *out,
                                   int64_t *n_untruncated);

#endif
