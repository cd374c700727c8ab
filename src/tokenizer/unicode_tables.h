/*
 * unicode_tables.h — generated character tables (unicode_tables.c) that
 * pin the classifications HF `tokenizers` uses, independent of utf8proc's
 * Unicode version. Ranges are sorted and disjoint; lookups are binary
 * searches.
 */
#ifndef EMBER_TOKENIZER_UNICODE_TABLES_H
#define EMBER_TOKENIZER_UNICODE_TABLES_H

#include <stdint.h>

typedef struct tok_range {
    uint32_t lo, hi;
} tok_range;

typedef struct tok_lower {
    uint32_t cp, lo0, lo1; /* lo1 = 0: one code point */
} tok_lower;

extern const tok_range ember_tok_tab_deleted[];
extern const unsigned ember_tok_tab_deleted_n;
extern const tok_range ember_tok_tab_punct[];
extern const unsigned ember_tok_tab_punct_n;
extern const tok_range ember_tok_tab_mn[];
extern const unsigned ember_tok_tab_mn_n;
extern const tok_range ember_tok_tab_mark[];
extern const unsigned ember_tok_tab_mark_n;
extern const tok_range ember_tok_tab_alpha[];
extern const unsigned ember_tok_tab_alpha_n;
extern const tok_range ember_tok_tab_num[];
extern const unsigned ember_tok_tab_num_n;
extern const tok_range ember_tok_tab_numeric[];
extern const unsigned ember_tok_tab_numeric_n;
extern const tok_range ember_tok_tab_word[];
extern const unsigned ember_tok_tab_word_n;
extern const tok_range ember_tok_tab_nodecomp[];
extern const unsigned ember_tok_tab_nodecomp_n;
extern const tok_lower ember_tok_tab_lower[];
extern const unsigned ember_tok_tab_lower_n;

#endif
