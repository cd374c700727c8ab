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

#endif
