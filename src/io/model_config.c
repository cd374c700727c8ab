/*
 * model_config.c — see model_config.h. Every number is range-checked here so
 * that later size computations (buffers of tokens x hidden) cannot overflow.
 * Architecture-specific keys are parsed by each architecture (src/models/).
 */
#include "model_config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "drivers/driver.h"
#include "io/json.h"
#include "models/arch.h"

const char *ember_act_name(int32_t act) {
    switch (act) {
    case EMBER_ACT_GELU: return "gelu";
    case EMBER_ACT_GELU_TANH: return "gelu_tanh";
    case EMBER_ACT_RELU: return "relu";
    case EMBER_ACT_SILU: return "silu";
    case EMBER_ACT_TANH: return "tanh";
    default: return "none";
    }
}

ember_status ember_cfg_act(const json_t *root, const char *what, const char *key, const char *def,
                           int32_t *out) {
    static const struct {
        const char *name;
        int32_t act;
    } acts[] = {
        {"gelu", EMBER_ACT_GELU},           {"gelu_python", EMBER_ACT_GELU},
        {"gelu_new", EMBER_ACT_GELU_TANH},  {"gelu_pytorch_tanh", EMBER_ACT_GELU_TANH},
        {"gelu_fast", EMBER_ACT_GELU_TANH}, {"relu", EMBER_ACT_RELU},
        {"silu", EMBER_ACT_SILU},           {"swish", EMBER_ACT_SILU},
        {"tanh", EMBER_ACT_TANH},
    };
    const char *name = def;
    ember_status st = ember_json_str(root, key, what, &name);
    if (st != EMBER_OK && st != EMBER_E_NOT_FOUND)
        return st;
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        if (strcmp(name, acts[i].name) == 0) {
            *out = acts[i].act;
            return EMBER_OK;
        }
    }
    return ember_error(EMBER_E_UNSUPPORTED, "%s: '%s' = \"%s\" is not a supported activation", what,
                       key, name);
}

ember_status ember_cfg_int(const json_t *root, const char *what, const char *key, int64_t lo,
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

ember_status ember_cfg_float(const json_t *root, const char *what, const char *key, double lo,
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

ember_status ember_cfg_bool(const json_t *root, const char *what, const char *key, bool def,
                            bool *out) {
    ember_status st = ember_json_bool(root, key, what, out);
    if (st == EMBER_E_NOT_FOUND) {
        *out = def;
        return EMBER_OK;
    }
    return st;
}

ember_status ember_cfg_common(const json_t *root, const char *what, ember_hparams *hp,
                              int64_t def_max_pos) {
    EMBER_TRY(ember_cfg_int(root, what, "hidden_size", 1, EMBER_CFG_MAX_HIDDEN, false, 0,
                            &hp->hidden_size));
    EMBER_TRY(ember_cfg_int(root, what, "num_hidden_layers", 1, EMBER_MAX_LAYERS, false, 0,
                            &hp->n_layers));
    EMBER_TRY(ember_cfg_int(root, what, "num_attention_heads", 1, EMBER_CFG_MAX_HEADS, false, 0,
                            &hp->n_heads));
    EMBER_TRY(ember_cfg_int(root, what, "intermediate_size", 1, EMBER_CFG_MAX_INTER, false, 0,
                            &hp->intermediate_size));
    EMBER_TRY(ember_cfg_int(root, what, "vocab_size", 1, EMBER_CFG_MAX_VOCAB, false, 0,
                            &hp->vocab_size));
    EMBER_TRY(ember_cfg_int(root, what, "max_position_embeddings", 1, EMBER_CFG_MAX_POS,
                            def_max_pos > 0, def_max_pos, &hp->max_position_embeddings));
    if (hp->hidden_size % hp->n_heads != 0)
        return ember_error(EMBER_E_FORMAT,
                           "%s: hidden_size %d is not a multiple of num_attention_heads %d", what,
                           hp->hidden_size, hp->n_heads);
    hp->head_dim = hp->hidden_size / hp->n_heads;
    hp->n_kv_heads = hp->n_heads;
    hp->max_tokens = hp->max_position_embeddings;
    return EMBER_OK;
}

ember_status ember_cfg_rope_theta(const json_t *root, const char *what, const char *kind,
                                  float *theta) {
    const json_t *rp = json_object_get(root, "rope_parameters");
    if (!rp || json_is_null(rp))
        return EMBER_OK;
    if (!json_is_object(rp))
        return ember_error(EMBER_E_FORMAT, "%s: 'rope_parameters' must be an object", what);
    const json_t *k = kind ? json_object_get(rp, kind) : rp;
    if (!k || json_is_null(k))
        return EMBER_OK;
    char ctx[160];
    snprintf(ctx, sizeof ctx, "%s: rope_parameters%s%s", what, kind ? "." : "", kind ? kind : "");
    const char *type = "default";
    ember_status st = ember_json_str(k, "rope_type", ctx, &type);
    if (st != EMBER_OK && st != EMBER_E_NOT_FOUND)
        return st;
    if (strcmp(type, "default") != 0)
        return ember_error(EMBER_E_UNSUPPORTED, "%s: rope_type \"%s\" is not supported", ctx, type);
    return ember_cfg_float(k, ctx, "rope_theta", 1.0, 1e12, *theta, theta);
}

ember_status ember_cfg_num_labels(const json_t *root, const char *what, int32_t *out) {
    const json_t *id2label = json_object_get(root, "id2label");
    if (json_is_object(id2label) && json_object_size(id2label) > 0) {
        if (json_object_size(id2label) > 65536)
            return ember_error(EMBER_E_FORMAT, "%s: id2label has too many labels", what);
        *out = (int32_t)json_object_size(id2label);
        return EMBER_OK;
    }
    return ember_cfg_int(root, what, "num_labels", 1, 65536, true, 2, out);
}

ember_status ember_cfg_layer_types(const json_t *root, const char *what, ember_hparams *hp) {
    const json_t *types = json_object_get(root, "layer_types");
    if (!types || json_is_null(types))
        return EMBER_E_NOT_FOUND;
    if (!json_is_array(types) || json_array_size(types) != (size_t)hp->n_layers)
        return ember_error(EMBER_E_FORMAT,
                           "%s: 'layer_types' must be an array of %d strings (one per layer)", what,
                           hp->n_layers);
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
    return EMBER_OK;
}

/* A model whose auto_map names its own modeling code for an AutoModel class
 * (gte-Qwen2-*-instruct: Qwen2 with bidirectional attention; jina-embeddings
 * v2/v3: BERT with ALiBi, XLM-R with RoPE) is something else under a known
 * model_type: sentence-transformers runs that code (trust_remote_code=True),
 * and the transformers class Ember follows would give other vectors, or fail
 * later on a missing tensor. AutoConfig / AutoTokenizer entries alone change
 * nothing Ember reads. */
static ember_status refuse_custom_code(const json_t *root, const char *what, const char *type) {
    const json_t *map = json_object_get(root, "auto_map");
    if (!json_is_object(map))
        return EMBER_OK;
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)map, key, value) {
        if (strncmp(key, "AutoModel", 9) != 0)
            continue;
        const char *code = json_is_string(value) ? json_string_value(value) : "(not a string)";
        return ember_error(EMBER_E_UNSUPPORTED,
                           "%s: auto_map.%s names the model's own code (\"%.120s\"), which "
                           "sentence-transformers runs with trust_remote_code=True; Ember runs the "
                           "transformers implementation of model_type \"%s\" only, which would not "
                           "give that model's vectors",
                           what, key, code, type);
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
    const ember_arch *arch = ember_arch_find(type);
    if (!arch)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "%s: model_type \"%s\" is not supported (supported: %s)", what, type,
                           ember_arch_supported());
    hp->arch = arch;
    EMBER_TRY(refuse_custom_code(root, what, type));
    EMBER_TRY(arch->parse_config(root, what, hp));
    if (hp->max_tokens <= 0 || hp->max_tokens > hp->max_position_embeddings ||
        hp->position_offset < 0 || hp->n_kv_heads <= 0 || hp->n_heads % hp->n_kv_heads != 0)
        return ember_error(EMBER_E_FORMAT,
                           "%s: inconsistent sizes (max tokens %d of %d positions, offset %d, "
                           "%d heads over %d key/value heads)",
                           what, hp->max_tokens, hp->max_position_embeddings, hp->position_offset,
                           hp->n_heads, hp->n_kv_heads);
    return EMBER_OK;
}

ember_status ember_hparams_load(const char *path, ember_hparams *hp) {
    json_t *root;
    EMBER_TRY(ember_json_load_file(path, 16u << 20, &root));
    ember_status st = ember_hparams_parse(root, path, hp);
    json_decref(root);
    return st;
}
