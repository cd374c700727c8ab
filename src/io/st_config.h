/*
 * st_config.h — the sentence-transformers files of a model directory:
 * modules.json (which modules run: Transformer, Pooling, Normalize),
 * <pooling module>/config.json (pooling mode), sentence_bert_config.json
 * (max_seq_length, do_lower_case) and config_sentence_transformers.json
 * (prompts). Without modules.json the architecture's documented default
 * applies (from_files = false says so).
 */
#ifndef EMBER_IO_ST_CONFIG_H
#define EMBER_IO_ST_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

typedef struct ember_st_config {
    bool from_files;         /* modules.json was found and used            */
    bool has_pooling_module;
    int32_t pooling;         /* ember_pooling                              */
    bool normalize;          /* a Normalize module is listed               */
    bool include_prompt;     /* Pooling include_prompt (default true)      */
    int32_t word_embedding_dimension; /* 0 if not given                    */
    int32_t max_seq_length;  /* 0 if not given                             */
    bool do_lower_case;
    int32_t n_prompts;
    char **prompt_names;
    char **prompt_texts;
    char *default_prompt_name; /* NULL if none                             */
} ember_st_config;

/* Reads the files under `dir`. Missing optional files are fine; malformed
 * ones are EMBER_E_FORMAT, unknown modules or pooling modes
 * EMBER_E_UNSUPPORTED. `default_pooling` and `default_normalize` apply when
 * there is no modules.json. */
ember_status ember_st_config_load(const char *dir, int32_t default_pooling, bool default_normalize,
                                  ember_st_config *cfg);
void ember_st_config_free(ember_st_config *cfg);

/* Parses a Pooling config document (exported for the fuzz target). */
ember_status ember_st_pooling_parse(const char *text, size_t len, const char *what,
                                    int32_t *pooling, bool *include_prompt, int32_t *dim);

#endif
