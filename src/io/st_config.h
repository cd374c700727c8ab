/*
 * st_config.h — the sentence-transformers files of a model directory:
 * modules.json (which modules run, in order: Transformer, Pooling, any
 * number of Dense layers, Normalize),
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

#define EMBER_ST_MAX_DENSE 8

/* A sentence-transformers Dense module: y = act(W x + b), W [out, in]. */
typedef struct ember_st_dense {
    char *dir;               /* the module's directory (weights inside)    */
    int32_t in_features, out_features;
    bool bias;
    int32_t act;             /* ember_act (driver.h): NONE is Identity      */
} ember_st_dense;

typedef struct ember_st_config {
    bool from_files;         /* modules.json was found and used            */
    bool has_pooling_module;
    int32_t pooling;         /* ember_pooling                              */
    bool normalize;          /* a Normalize module is listed               */
    bool include_prompt;     /* Pooling include_prompt (default true)      */
    int32_t word_embedding_dimension; /* 0 if not given                    */
    int32_t n_dense;         /* Dense modules after pooling, in order      */
    ember_st_dense dense[EMBER_ST_MAX_DENSE];
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
