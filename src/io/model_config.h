/*
 * model_config.h — the hyper-parameters of a model, read from config.json.
 *
 * One struct covers every architecture (fields an architecture does not use
 * stay zero), so the backend and the CLI can describe any model the same way.
 * Both the original ModernBERT keys (global_attn_every_n_layers,
 * global_rope_theta, local_rope_theta, local_attention) and the spellings of
 * newer transformers versions (layer_types, rope_parameters, sliding_window)
 * are accepted.
 */
#ifndef EMBER_IO_MODEL_CONFIG_H
#define EMBER_IO_MODEL_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

#define EMBER_MAX_LAYERS 256

typedef enum ember_arch_id { EMBER_ARCH_BERT = 0, EMBER_ARCH_MODERNBERT = 1 } ember_arch_id;

typedef struct ember_hparams {
    ember_arch_id arch;
    char model_type[32];
    char name_or_path[256];
    int32_t hidden_size;
    int32_t n_layers;
    int32_t n_heads;
    int32_t head_dim;
    int32_t intermediate_size;
    int32_t vocab_size;
    int32_t max_position_embeddings;
    int32_t type_vocab_size;      /* BERT                                       */
    int32_t pad_token_id;
    float layer_norm_eps;
    int32_t hidden_act;           /* ember_act                                  */
    /* ModernBERT */
    int32_t local_attention;      /* full window; keys |i-j| <= local_attention/2 */
    int32_t global_attn_every_n_layers;
    float global_rope_theta;
    float local_rope_theta;
    bool attention_bias, mlp_bias, norm_bias;
    uint8_t layer_global[EMBER_MAX_LAYERS]; /* 1: full attention, 0: sliding    */
} ember_hparams;

/* Reads and validates `path` (a config.json). EMBER_E_NOT_FOUND when the file
 * is missing, EMBER_E_FORMAT for malformed JSON or values out of range,
 * EMBER_E_UNSUPPORTED for an unknown model_type or activation. */
ember_status ember_hparams_load(const char *path, ember_hparams *hp);
/* Same from a parsed document; `what` names it in messages. */
ember_status ember_hparams_parse(const json_t *root, const char *what, ember_hparams *hp);

const char *ember_arch_name(ember_arch_id arch);
const char *ember_act_name(int32_t act);

#endif
