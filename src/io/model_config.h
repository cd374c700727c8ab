/*
 * model_config.h — the hyper-parameters of a model, read from config.json.
 *
 * ember_hparams_parse reads model_type, finds the architecture in the
 * registry (models/arch.h) and lets it parse the rest: each architecture
 * owns its keys, defaults and limits, with the range-checked helpers below.
 * One struct holds the result (fields an architecture does not use stay
 * zero), so the backend and the CLI can describe any model the same way.
 */
#ifndef EMBER_IO_MODEL_CONFIG_H
#define EMBER_IO_MODEL_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

#define EMBER_MAX_LAYERS 256

struct ember_arch;

/* Generous limits: the largest embedding models are far below them; they
 * keep later size computations (tokens x hidden) from overflowing. */
#define EMBER_CFG_MAX_HIDDEN 65536
#define EMBER_CFG_MAX_INTER (1 << 20)
#define EMBER_CFG_MAX_VOCAB (16 << 20)
#define EMBER_CFG_MAX_POS (1 << 20)
#define EMBER_CFG_MAX_HEADS 1024

enum { EMBER_HEAD_NONE = 0, EMBER_HEAD_BERT = 1, EMBER_HEAD_ROBERTA = 2, EMBER_HEAD_SCORE = 3 };

typedef struct ember_hparams {
    const struct ember_arch *arch;
    char model_type[32];
    char name_or_path[256];
    int32_t hidden_size;
    int32_t n_layers;
    int32_t n_heads;
    int32_t n_kv_heads;           /* = n_heads unless grouped-query attention  */
    int32_t head_dim;
    int32_t intermediate_size;
    int32_t vocab_size;
    int32_t max_position_embeddings;
    int32_t max_tokens;           /* longest input the positions allow         */
    int32_t position_offset;      /* added to each position (RoBERTa: pad + 1) */
    uint32_t extra_ops;           /* driver ops this model needs beyond its
                                     architecture's (EMBER_OP_BIT(...))         */
    int32_t rel_buckets;          /* MPNet: relative-position buckets         */
    float attn_scale;             /* Gemma: query_pre_attn_scalar^-1/2        */
    bool positions_skip_pad;      /* RoBERTa: a pad_token_id inside a sequence
                                     takes position pad_token_id and does not
                                     advance the count (HF derives positions
                                     from input_ids != padding_idx)           */
    int32_t type_vocab_size;      /* BERT                                       */
    int32_t pad_token_id;
    float layer_norm_eps;
    int32_t hidden_act;           /* ember_act                                  */
    /* Sequence classification (cross-encoder) head from config.json
     * `architectures`: 0 none; EMBER_HEAD_BERT: pooler dense + tanh on the
     * first token, then classifier; EMBER_HEAD_ROBERTA: classifier.dense +
     * tanh, then classifier.out_proj; EMBER_HEAD_SCORE: a decoder's `score`
     * product (no bias) on the last token that is not pad_token_id */
    int32_t cls_head;
    int32_t num_labels;           /* outputs of the head (id2label / num_labels) */
    /* ModernBERT */
    int32_t local_attention;      /* full window; keys |i-j| <= local_attention/2 */
    int32_t global_attn_every_n_layers;
    float global_rope_theta;
    float local_rope_theta;
    bool attention_bias, mlp_bias, norm_bias;
    uint8_t layer_global[EMBER_MAX_LAYERS]; /* 1: full attention, 0: sliding    */
    /* Llama-family decoders (decoder.c): per-head q/k RMSNorms (Qwen3), a
     * bias on the attention's output projection (attention_bias covers q,
     * k and v); sliding layers use local_attention as the driver's window */
    bool qk_norm, out_bias;
} ember_hparams;

/* Reads and validates `path` (a config.json). EMBER_E_NOT_FOUND when the file
 * is missing, EMBER_E_FORMAT for malformed JSON or values out of range,
 * EMBER_E_UNSUPPORTED for an unknown model_type or activation. */
ember_status ember_hparams_load(const char *path, ember_hparams *hp);
/* Same from a parsed document; `what` names it in messages. */
ember_status ember_hparams_parse(const json_t *root, const char *what, ember_hparams *hp);

const char *ember_act_name(int32_t act);

/* ---- helpers for the architectures' parse_config ----
 * `what` names the file in messages. */

/* Integer in [lo, hi]; absent -> def when has_default, else EMBER_E_FORMAT. */
ember_status ember_cfg_int(const json_t *root, const char *what, const char *key, int64_t lo,
                           int64_t hi, bool has_default, int64_t def, int32_t *out);
/* Finite number in [lo, hi]; absent -> def. */
ember_status ember_cfg_float(const json_t *root, const char *what, const char *key, double lo,
                             double hi, double def, float *out);
ember_status ember_cfg_bool(const json_t *root, const char *what, const char *key, bool def,
                            bool *out);
/* An activation name ("gelu", "gelu_pytorch_tanh", "silu", ...) under `key`,
 * def when absent; EMBER_E_UNSUPPORTED for an unknown name. */
ember_status ember_cfg_act(const json_t *root, const char *what, const char *key, const char *def,
                           int32_t *out);
/* hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
 * vocab_size, max_position_embeddings (def_max_pos when absent and > 0);
 * head_dim = hidden / heads, n_kv_heads = n_heads, max_tokens = positions. */
ember_status ember_cfg_common(const json_t *root, const char *what, ember_hparams *hp,
                              int64_t def_max_pos);
/* layer_types (one "full_attention" / "sliding_attention" per layer) into
 * hp->layer_global; EMBER_E_NOT_FOUND when absent or null (the caller's
 * default pattern applies), EMBER_E_FORMAT / EMBER_E_UNSUPPORTED otherwise. */
ember_status ember_cfg_layer_types(const json_t *root, const char *what, ember_hparams *hp);
/* The outputs of a sequence-classification head: id2label's size, else
 * num_labels, else transformers' default 2. */
ember_status ember_cfg_num_labels(const json_t *root, const char *what, int32_t *out);
/* rope_parameters[kind].rope_theta into *theta (kept when absent), refusing
 * RoPE scaling types other than "default". */
ember_status ember_cfg_rope_theta(const json_t *root, const char *what, const char *kind,
                                  float *theta);

#endif
