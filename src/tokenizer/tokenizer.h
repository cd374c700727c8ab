/*
 * tokenizer.h — what the rest of Ember needs from the tokenizer module
 * beyond the public API in ember.h.
 *
 * Nothing today: the engine loads a tokenizer with ember_tokenizer_load()
 * (which also reads sentence_bert_config.json for max_seq_length and
 * do_lower_case) and encodes with ember_tokenize() into a per-thread
 * ember_encoding. A tokenizer is immutable after load and may be shared by
 * threads; an encoding belongs to one thread at a time.
 */
#ifndef EMBER_TOKENIZER_TOKENIZER_H
#define EMBER_TOKENIZER_TOKENIZER_H

#include "ember.h"

#endif
