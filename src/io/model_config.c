/*
 * model_config.c — see model_config.h. Every number is range-checked here so
 * that later size computations (buffers of tokens x hidden) cannot overflow.
 */
#include "model_config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "drivers/driver.h"
#include "io/json.h"

/* Generous limits: the largest BERT-family encoders are far below them. */
#define MAX_HIDDEN 65536
#define MAX_INTER (1 << 20)
#define MAX_VOCAB (16 << 20)
#define MAX_POS (1 << 20)
#define MAX_HEADS 1024

const char *ember_arch_name(ember_arch_id arch) {
    return arch == EMBER_ARCH_MODERNBERT ? "modernbert" : "bert";
}

const char *ember_act_name(int32_t act) {
    switch (act) {
    case EMBER_ACT_GELU: return "gelu";
    case EMBER_ACT_GELU_TANH: return "gelu_tanh";
    case EMBER_ACT_RELU: return "relu";
    case EMBER_ACT_SILU: return "silu";
    default: return "none";
    }
}

static ember_status parse_act(const char *name, const char *what, const char *key, int32_t *out) {
    static const struct {
        const char *name;
        int32_t act;
    } acts[] = {
        {"gelu", EMBER_ACT_GELU},           {"gelu_python", EMBER_ACT_GELU},
        {"gelu_new", EMBER_ACT_GELU_TANH},  {"gelu_pytorch_tanh", EMBER_ACT_GELU_TANH},
        {"gelu_fast", EMBER_ACT_GELU_TANH}, {"relu", EMBER_ACT_RELU},
        {"silu", EMBER_ACT_SILU},           {"swish", EMBER_ACT_SILU},
    };
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        if (strcmp(name, acts[i].name) == 0) {
            *out = acts[i].act;
            return EMBER_OK;
        }
    }
    return ember_error(EMBER_E_UNSUPPORTED, "%s: '%s' = \"%s\" is not a supported activation", what,
                       key, name);
}

/* Integer in [lo, hi]; absent -> default when has_default, else error. */
static ember_status get_int(const json_t *root, const char *what, const char *key, int64_t lo,
                            int64_t hi, bool has_default, int64_t def, int32_t *out) {
    int64_t v;
    ember_status st = ember_json_int(root, key, what, &v);
    if (st == EMBER_E_NOT_FOUND) {
        if (!has_default)
            return ember_error(EMBER_E_FORMAT, "%s: required key '%s' is missing", what, key);
        v = def;
    } else if (st != EMBER_OK) {
        return st;
    }
    if (v < lo || v > hi)
        return ember_error(EMBER_E_FORMAT, "%s: '%s' = %lld is outside [%lld, %lld]", what, key,
                           (long long)v, (long long)lo, (long long)hi);
    *out = (int32_t)v;
    return EMBER_OK;
}

static ember_status get_float(const json_t *root, const char *what, const char *key, double lo,
                              double hi, double def, float *out) {
    double v;
    ember_status st = ember_json_num(root, key, what, &v);
    if (st == EMBER_E_NOT_FOUND)
        v = def;
    else if (st != EMBER_OK)
        return st;
    if (!isfinite(v) || v < lo || v > hi)
        return ember_error(EMBER_E_FORMAT, "%s: '%s' = %g is outside [%g, %g]", what, key, v, lo,
                           hi);
    *out = (float)v;
    return EMBER_OK;
}

static ember_status get_bool(const json_t *root, const char *what, const char *key, bool def,
                             bool *out) {
    ember_status st = ember_json_bool(root, key, what, out);
    if (st == EMBER_E_NOT_FOUND) {
        *out = def;
        return EMBER_OK;
    }
    return st;
}

static ember_status parse_common(const json_t *root, const char *what, ember_hparams *hp,
                                 int64_t def_max_pos) {
    EMBER_TRY(get_int(root, what, "hidden_size", 1, MAX_HIDDEN, false, 0, &hp->hidden_size));
    EMBER_TRY(get_int(root, what, "num_hidden_layers", 1, EMBER_MAX_LAYERS, false, 0, &hp->n_layers));
    EMBER_TRY(get_int(root, what, "num_attention_heads", 1, MAX_HEADS, false, 0, &hp->n_heads));
    EMBER_TRY(get_int(root, what, "intermediate_size", 1, MAX_INTER, false, 0, &hp->intermediate_size));
    EMBER_TRY(get_int(root, what, "vocab_size", 1, MAX_VOCAB, false, 0, &hp->vocab_size));
    EMBER_TRY(get_int(root, what, "max_position_embeddings", 1, MAX_POS, def_max_pos > 0,
                      def_max_pos, &hp->max_position_embeddings));
    if (hp->hidden_size % hp->n_heads != 0)
        return ember_error(EMBER_E_FORMAT,
                           "%s: hidden_size %d is not a multiple of num_attention_heads %d", what,
                           hp->hidden_size, hp->n_heads);
    hp->head_dim = hp->hidden_size / hp->n_heads;
    return EMBER_OK;
}

static ember_status parse_bert(const json_t *root, const char *what, ember_hparams *hp) {
    EMBER_TRY(parse_common(root, what, hp, 512));
    EMBER_TRY(get_int(root, what, "type_vocab_size", 0, MAX_VOCAB, true, 2, &hp->type_vocab_size));
    EMBER_TRY(get_int(root, what, "pad_token_id", -1, MAX_VOCAB, true, 0, &hp->pad_token_id));
    EMBER_TRY(get_float(root, what, "layer_norm_eps", 0.0, 1.0, 1e-12, &hp->layer_norm_eps));
    const char *act = "gelu", *pos = "absolute";
    ember_status st = ember_json_str(root, "hidden_act", what, &act);
    if (st != EMBER_OK && st != EMBER_E_NOT_FOUND)
        return st;
    EMBER_TRY(parse_act(act, what, "hidden_act", &hp->hidden_act));
    st = ember_json_str(root, "position_embedding_type", what, &pos);
    if (st != EMBER_OK && st != EMBER_E_NOT_FOUND)
        return st;
    if (strcmp(pos, "absolute") != 0)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "%s: position_embedding_type \"%s\" is not supported (only \"absolute\")",
                           what, pos);
    return EMBER_OK;
}

/* rope_parameters[kind].rope_theta, checking that the RoPE type is plain. */
static ember_status rope_theta(const json_t *root, const char *what, const char *kind,
                               float *theta) {
    const json_t *rp = json_object_get(root, "rope_parameters");
    if (!rp || json_is_null(rp))
        return EMBER_OK;
    if (!json_is_object(rp))
        return ember_error(EMBER_E_FORMAT, "%s: 'rope_parameters' must be an object", what);
    const json_t *k = json_object_get(rp, kind);
    if (!k || json_is_null(k))
        return EMBER_OK;
    char ctx[160];
    snprintf(ctx, sizeof ctx, "%s: rope_parameters.%s", what, kind);
    const char *type = "default";
    ember_status st = ember_json_str(k, "rope_type", ctx, &type);
    if (st != EMBER_OK && st != EMBER_E_NOT_FOUND)
        return st;
    if (strcmp(type, "default") != 0)
        return ember_error(EMBER_E_UNSUPPORTED, "%s: rope_type \"%s\" is not supported", ctx, type);
    return get_float(k, ctx, "rope_theta", 1.0, 1e12, *theta, theta);
}

static ember_status parse_modernbert(const json_t *root, const char *what, ember_hparams *hp) {
    EMBER_TRY(parse_common(root, what, hp, 8192));
    hp->type_vocab_size = 0;
    EMBER_TRY(get_int(root, what, "pad_token_id", -1, MAX_VOCAB, true, 50283, &hp->pad_token_id));
    EMBER_TRY(get_float(root, what, "norm_eps", 0.0, 1.0, 1e-5, &hp->layer_norm_eps));
    const char *act = "gelu";
    ember_status st = ember_json_str(root, "hidden_activation", what, &act);
    if (st != EMBER_OK && st != EMBER_E_NOT_FOUND)
        return st;
    EMBER_TRY(parse_act(act, what, "hidden_activation", &hp->hidden_act));
    EMBER_TRY(get_bool(root, what, "attention_bias", false, &hp->attention_bias));
    EMBER_TRY(get_bool(root, what, "mlp_bias", false, &hp->mlp_bias));
    EMBER_TRY(get_bool(root, what, "norm_bias", false, &hp->norm_bias));
    if (hp->head_dim % 2 != 0)
        return ember_error(EMBER_E_FORMAT, "%s: head dimension %d must be even for RoPE", what,
                           hp->head_dim);

    /* window: local_attention (full width) or newer sliding_window (half) */
    int32_t half = 0;
    if (json_object_get(root, "local_attention")) {
        EMBER_TRY(get_int(root, what, "local_attention", 2, MAX_POS, true, 128, &hp->local_attention));
    } else if (json_object_get(root, "sliding_window")) {
        EMBER_TRY(get_int(root, what, "sliding_window", 1, MAX_POS, true, 64, &half));
        hp->local_attention = 2 * half;
    } else {
        hp->local_attention = 128;
    }

    EMBER_TRY(get_int(root, what, "global_attn_every_n_layers", 1, EMBER_MAX_LAYERS, true, 3,
                      &hp->global_attn_every_n_layers));
    EMBER_TRY(get_float(root, what, "global_rope_theta", 1.0, 1e12, 160000.0, &hp->global_rope_theta));
    /* HF: a null local_rope_theta falls back to the global one */
    EMBER_TRY(get_float(root, what, "local_rope_theta", 1.0, 1e12, hp->global_rope_theta,
                        &hp->local_rope_theta));
    if (!json_object_get(root, "local_rope_theta") && !json_object_get(root, "rope_parameters"))
        hp->local_rope_theta = 10000.0f;
    EMBER_TRY(rope_theta(root, what, "full_attention", &hp->global_rope_theta));
    EMBER_TRY(rope_theta(root, what, "sliding_attention", &hp->local_rope_theta));

    const json_t *types = json_object_get(root, "layer_types");
    if (types && !json_is_null(types)) {
        if (!json_is_array(types) || json_array_size(types) != (size_t)hp->n_layers)
            return ember_error(EMBER_E_FORMAT,
                               "%s: 'layer_types' must be an array of %d strings (one per layer)",
                               what, hp->n_layers);
        for (int32_t l = 0; l < hp->n_layers; l++) {
            const char *t = json_string_value(json_array_get(types, (size_t)l));
            if (t && strcmp(t, "full_attention") == 0)
                hp->layer_global[l] = 1;
            else if (t && strcmp(t, "sliding_attention") == 0)
                hp->layer_global[l] = 0;
            else
                return ember_error(EMBER_E_UNSUPPORTED,
                                   "%s: layer_types[%d] must be \"full_attention\" or "
                                   "\"sliding_attention\"",
                                   what, l);
        }
    } else {
        for (int32_t l = 0; l < hp->n_layers; l++)
            hp->layer_global[l] = (l % hp->global_attn_every_n_layers) == 0;
    }
    return EMBER_OK;
}

ember_status ember_hparams_parse(const json_t *root, const char *what, ember_hparams *hp) {
    memset(hp, 0, sizeof *hp);
    if (!json_is_object(root))
        return ember_error(EMBER_E_FORMAT, "%s: must be a JSON object", what);
    const char *type = NULL;
    ember_status st = ember_json_str(root, "model_type", what, &type);
    if (st == EMBER_E_NOT_FOUND)
        return ember_error(EMBER_E_FORMAT, "%s: 'model_type' is missing", what);
    if (st != EMBER_OK)
        return st;
    snprintf(hp->model_type, sizeof hp->model_type, "%s", type);
    const char *name = "";
    if (ember_json_str(root, "_name_or_path", what, &name) == EMBER_OK)
        snprintf(hp->name_or_path, sizeof hp->name_or_path, "%s", name);
    if (strcmp(type, "bert") == 0) {
        hp->arch = EMBER_ARCH_BERT;
        return parse_bert(root, what, hp);
    }
    if (strcmp(type, "modernbert") == 0) {
        hp->arch = EMBER_ARCH_MODERNBERT;
        return parse_modernbert(root, what, hp);
    }
    return ember_error(EMBER_E_UNSUPPORTED,
                       "%s: model_type \"%s\" is not supported (supported: bert, modernbert)", what,
                       type);
}

ember_status ember_hparams_load(const char *path, ember_hparams *hp) {
    json_t *root;
    EMBER_TRY(ember_json_load_file(path, 16u << 20, &root));
    ember_status st = ember_hparams_parse(root, path, hp);
    json_decref(root);
    return st;
}
