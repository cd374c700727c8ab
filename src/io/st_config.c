/*
 * st_config.c — see st_config.h.
 */
#include "st_config.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "drivers/driver.h"
#include "ember.h"
#include "io/json.h"

#define MAX_SMALL_JSON (4u << 20)

static const struct {
    const char *key;  /* Pooling config boolean (sentence-transformers 2.x/3.x) */
    const char *name; /* pooling_mode string of newer versions                 */
    int32_t mode;
} k_modes[] = {
    {"pooling_mode_cls_token", "cls", EMBER_POOLING_CLS},
    {"pooling_mode_mean_tokens", "mean", EMBER_POOLING_MEAN},
    {"pooling_mode_max_tokens", "max", EMBER_POOLING_MAX},
    {"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens", EMBER_POOLING_MEAN_SQRT_LEN},
    {"pooling_mode_weightedmean_tokens", "weightedmean", EMBER_POOLING_WEIGHTED_MEAN},
    {"pooling_mode_lasttoken", "lasttoken", EMBER_POOLING_LAST_TOKEN},
};

static ember_status pooling_from_json(const json_t *root, const char *what, int32_t *pooling,
                                      bool *include_prompt, int32_t *dim) {
    if (!json_is_object(root))
        return ember_error(EMBER_E_FORMAT, "%s: must be a JSON object", what);
    int found = 0;
    const char *names[8];
    for (size_t i = 0; i < EMBER_ARRAY_LEN(k_modes); i++) {
        bool on = false;
        ember_status st = ember_json_bool(root, k_modes[i].key, what, &on);
        if (st != EMBER_OK && st != EMBER_E_NOT_FOUND)
            return st;
        if (on) {
            names[found++] = k_modes[i].name;
            *pooling = k_modes[i].mode;
        }
    }
    const char *mode_str = NULL;
    ember_status st = ember_json_str(root, "pooling_mode", what, &mode_str);
    if (st != EMBER_OK && st != EMBER_E_NOT_FOUND)
        return st;
    if (found == 0 && mode_str) {
        for (size_t i = 0; i < EMBER_ARRAY_LEN(k_modes); i++) {
            if (strcmp(mode_str, k_modes[i].name) == 0) {
                *pooling = k_modes[i].mode;
                found = 1;
            }
        }
        if (!found)
            return ember_error(EMBER_E_UNSUPPORTED, "%s: pooling_mode \"%s\" is not supported", what,
                               mode_str);
    }
    if (found == 0)
        return ember_error(EMBER_E_FORMAT, "%s: no pooling mode is enabled", what);
    if (found > 1)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "%s: several pooling modes at once (%s and %s, concatenated) are not "
                           "supported",
                           what, names[0], names[1]);
    *include_prompt = true;
    st = ember_json_bool(root, "include_prompt", what, include_prompt);
    if (st != EMBER_OK && st != EMBER_E_NOT_FOUND)
        return st;
    int64_t d = 0;
    st = ember_json_int(root, "word_embedding_dimension", what, &d);
    if (st != EMBER_OK && st != EMBER_E_NOT_FOUND)
        return st;
    if (st == EMBER_OK && (d < 1 || d >= (1 << 20)))
        return ember_error(EMBER_E_FORMAT, "%s: 'word_embedding_dimension' = %lld is out of range",
                           what, (long long)d);
    *dim = (int32_t)d;
    return EMBER_OK;
}

ember_status ember_st_pooling_parse(const char *text, size_t len, const char *what,
                                    int32_t *pooling, bool *include_prompt, int32_t *dim) {
    json_t *root;
    EMBER_TRY(ember_json_load_buf(text, len, what, &root));
    ember_status st = pooling_from_json(root, what, pooling, include_prompt, dim);
    json_decref(root);
    return st;
}

/* Loads dir/name if it exists: EMBER_OK with *out NULL when absent. */
static ember_status load_optional(const char *dir, const char *name, json_t **out, char **path) {
    *out = NULL;
    *path = ember_path_join(dir, name);
    if (!*path)
        return EMBER_E_NOMEM;
    if (!ember_file_exists(*path))
        return EMBER_OK;
    return ember_json_load_file(*path, MAX_SMALL_JSON, out);
}

/* Dense activation_function: the torch class path sentence-transformers
 * writes (any module prefix), or a bare name. */
static ember_status dense_act(const char *name, const char *what, int32_t *act) {
    static const struct {
        const char *cls;
        int32_t act;
    } acts[] = {{"Identity", EMBER_ACT_NONE}, {"Tanh", EMBER_ACT_TANH}, {"ReLU", EMBER_ACT_RELU},
                {"GELU", EMBER_ACT_GELU},     {"SiLU", EMBER_ACT_SILU}};
    const char *base = strrchr(name, '.');
    base = base ? base + 1 : name;
    for (size_t i = 0; i < EMBER_ARRAY_LEN(acts); i++)
        if (strcmp(base, acts[i].cls) == 0) {
            *act = acts[i].act;
            return EMBER_OK;
        }
    return ember_error(EMBER_E_UNSUPPORTED,
                       "%s: activation_function \"%s\" is not supported (Identity, Tanh, ReLU, "
                       "GELU, SiLU)",
                       what, name);
}

/* N_Dense/config.json: in_features, out_features, bias, activation_function. */
static ember_status parse_dense(const char *sub, ember_st_dense *d) {
    char *file = ember_path_join(sub, "config.json");
    if (!file)
        return EMBER_E_NOMEM;
    json_t *root = NULL;
    ember_status st = ember_json_load_file(file, MAX_SMALL_JSON, &root);
    if (st == EMBER_E_NOT_FOUND)
        st = ember_error(EMBER_E_NOT_FOUND, "%s: the Dense module's config.json is missing", file);
    int64_t in = 0, out = 0;
    if (st == EMBER_OK && !json_is_object(root))
        st = ember_error(EMBER_E_FORMAT, "%s: must be a JSON object", file);
    if (st == EMBER_OK)
        st = ember_json_int(root, "in_features", file, &in);
    if (st == EMBER_OK)
        st = ember_json_int(root, "out_features", file, &out);
    if (st == EMBER_OK && (in < 1 || in > (1 << 20) || out < 1 || out > (1 << 20)))
        st = ember_error(EMBER_E_FORMAT, "%s: in_features %lld / out_features %lld out of range",
                         file, (long long)in, (long long)out);
    d->bias = true;
    if (st == EMBER_OK) {
        ember_status s2 = ember_json_bool(root, "bias", file, &d->bias);
        if (s2 != EMBER_OK && s2 != EMBER_E_NOT_FOUND)
            st = s2;
    }
    const char *act = "torch.nn.modules.activation.Tanh"; /* sentence-transformers' default */
    if (st == EMBER_OK) {
        ember_status s2 = ember_json_str(root, "activation_function", file, &act);
        if (s2 != EMBER_OK && s2 != EMBER_E_NOT_FOUND)
            st = s2;
    }
    if (st == EMBER_OK)
        st = dense_act(act, file, &d->act);
    json_decref(root);
    free(file);
    d->in_features = (int32_t)in;
    d->out_features = (int32_t)out;
    return st;
}

/* A module path from modules.json must stay inside the model directory. */
static bool safe_relative_path(const char *p) {
    if (p[0] == '/')
        return false;
    for (const char *s = p; *s; s++) {
        if (s[0] == '.' && s[1] == '.' && (s == p || s[-1] == '/') && (s[2] == '/' || s[2] == '\0'))
            return false;
    }
    return true;
}

static ember_status parse_modules(const char *dir, const json_t *mods, const char *what,
                                  ember_st_config *cfg) {
    if (!json_is_array(mods))
        return ember_error(EMBER_E_FORMAT, "%s: must be a JSON array of modules", what);
    size_t i;
    json_t *m;
    json_array_foreach(mods, i, m) {
        const char *type = NULL, *path = "";
        if (!json_is_object(m) || ember_json_str(m, "type", what, &type) != EMBER_OK)
            return ember_error(EMBER_E_FORMAT, "%s: module %zu has no string 'type'", what, i);
        ember_status st = ember_json_str(m, "path", what, &path);
        if (st != EMBER_OK && st != EMBER_E_NOT_FOUND)
            return st;
        const char *base = strrchr(type, '.');
        base = base ? base + 1 : type;
        if (cfg->normalize)
            return ember_error(EMBER_E_UNSUPPORTED,
                               "%s: module %zu (%s) comes after Normalize; only Normalize may end "
                               "the chain",
                               what, i, type);
        if (strcmp(base, "Transformer") == 0) {
            continue;
        } else if (strcmp(base, "Normalize") == 0) {
            cfg->normalize = true;
        } else if (strcmp(base, "Dense") == 0) {
            if (!cfg->has_pooling_module)
                return ember_error(EMBER_E_UNSUPPORTED,
                                   "%s: module %zu (Dense) comes before the Pooling module", what, i);
            if (cfg->n_dense == EMBER_ST_MAX_DENSE)
                return ember_error(EMBER_E_UNSUPPORTED, "%s: more than %d Dense modules", what,
                                   EMBER_ST_MAX_DENSE);
            if (!safe_relative_path(path))
                return ember_error(EMBER_E_FORMAT, "%s: module path \"%s\" leaves the model directory",
                                   what, path);
            ember_st_dense *d = &cfg->dense[cfg->n_dense];
            d->dir = ember_path_join(dir, path);
            if (!d->dir)
                return EMBER_E_NOMEM;
            cfg->n_dense++;
            EMBER_TRY(parse_dense(d->dir, d));
            int32_t want = cfg->n_dense > 1 ? cfg->dense[cfg->n_dense - 2].out_features
                                            : cfg->word_embedding_dimension;
            if (want && d->in_features != want)
                return ember_error(EMBER_E_MODEL,
                                   "%s/config.json: in_features %d does not match the %d features "
                                   "the module before it gives",
                                   d->dir, d->in_features, want);
        } else if (strcmp(base, "Pooling") == 0) {
            if (!safe_relative_path(path))
                return ember_error(EMBER_E_FORMAT, "%s: module path \"%s\" leaves the model directory",
                                   what, path);
            char *sub = ember_path_join(dir, path);
            char *file = sub ? ember_path_join(sub, "config.json") : NULL;
            free(sub);
            if (!file)
                return EMBER_E_NOMEM;
            char *text = NULL;
            size_t len = 0;
            st = ember_read_file(file, MAX_SMALL_JSON, &text, &len);
            if (st == EMBER_OK)
                st = ember_st_pooling_parse(text, len, file, &cfg->pooling, &cfg->include_prompt,
                                            &cfg->word_embedding_dimension);
            free(text);
            free(file);
            if (st != EMBER_OK)
                return st;
            cfg->has_pooling_module = true;
        } else {
            return ember_error(EMBER_E_UNSUPPORTED,
                               "%s: module %zu of type \"%s\" is not supported (supported: "
                               "Transformer, Pooling, Dense, Normalize)",
                               what, i, type);
        }
    }
    if (!cfg->has_pooling_module)
        return ember_error(EMBER_E_UNSUPPORTED, "%s: no Pooling module is listed", what);
    return EMBER_OK;
}

static ember_status parse_prompts(const json_t *root, const char *what, ember_st_config *cfg) {
    const json_t *prompts = json_object_get(root, "prompts");
    if (prompts && !json_is_null(prompts)) {
        if (!json_is_object(prompts))
            return ember_error(EMBER_E_FORMAT, "%s: 'prompts' must be an object", what);
        size_t n = json_object_size(prompts);
        cfg->prompt_names = ember_calloc(n, sizeof(char *), "prompts");
        cfg->prompt_texts = ember_calloc(n, sizeof(char *), "prompts");
        if (!cfg->prompt_names || !cfg->prompt_texts)
            return EMBER_E_NOMEM;
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)prompts, key, val) {
            if (!json_is_string(val))
                return ember_error(EMBER_E_FORMAT, "%s: prompt '%s' must be a string", what, key);
            char *name = ember_strdup(key);
            char *text = ember_strndup(json_string_value(val), json_string_length(val));
            if (!name || !text) {
                free(name);
                free(text);
                return EMBER_E_NOMEM;
            }
            cfg->prompt_names[cfg->n_prompts] = name;
            cfg->prompt_texts[cfg->n_prompts] = text;
            cfg->n_prompts++;
        }
    }
    const char *def = NULL;
    ember_status st = ember_json_str(root, "default_prompt_name", what, &def);
    if (st == EMBER_OK) {
        cfg->default_prompt_name = ember_strdup(def);
        if (!cfg->default_prompt_name)
            return EMBER_E_NOMEM;
    } else if (st != EMBER_E_NOT_FOUND) {
        return st;
    }
    return EMBER_OK;
}

ember_status ember_st_config_load(const char *dir, int32_t default_pooling, bool default_normalize,
                                  ember_st_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->pooling = default_pooling;
    cfg->normalize = default_normalize;
    cfg->include_prompt = true;
    json_t *doc = NULL;
    char *path = NULL;
    ember_status st = load_optional(dir, "modules.json", &doc, &path);
    if (st == EMBER_OK && doc) {
        cfg->from_files = true;
        cfg->normalize = false;
        st = parse_modules(dir, doc, path, cfg);
    }
    json_decref(doc);
    free(path);
    if (st != EMBER_OK)
        goto fail;

    st = load_optional(dir, "sentence_bert_config.json", &doc, &path);
    if (st == EMBER_OK && doc) {
        int64_t v = 0;
        ember_status s2 = ember_json_int(doc, "max_seq_length", path, &v);
        if (s2 == EMBER_OK && (v < 1 || v > (1 << 20)))
            s2 = ember_error(EMBER_E_FORMAT, "%s: 'max_seq_length' = %lld is out of range", path,
                             (long long)v);
        if (s2 == EMBER_OK)
            cfg->max_seq_length = (int32_t)v;
        else if (s2 != EMBER_E_NOT_FOUND)
            st = s2;
        if (st == EMBER_OK) {
            s2 = ember_json_bool(doc, "do_lower_case", path, &cfg->do_lower_case);
            if (s2 != EMBER_OK && s2 != EMBER_E_NOT_FOUND)
                st = s2;
        }
    }
    json_decref(doc);
    free(path);
    if (st != EMBER_OK)
        goto fail;

    st = load_optional(dir, "config_sentence_transformers.json", &doc, &path);
    if (st == EMBER_OK && doc)
        st = parse_prompts(doc, path, cfg);
    json_decref(doc);
    free(path);
    if (st != EMBER_OK)
        goto fail;
    return EMBER_OK;
fail:
    ember_st_config_free(cfg);
    return st;
}

void ember_st_config_free(ember_st_config *cfg) {
    if (!cfg)
        return;
    for (int32_t i = 0; i < cfg->n_prompts; i++) {
        free(cfg->prompt_names[i]);
        free(cfg->prompt_texts[i]);
    }
    free(cfg->prompt_names);
    free(cfg->prompt_texts);
    free(cfg->default_prompt_name);
    for (int32_t i = 0; i < cfg->n_dense; i++)
        free(cfg->dense[i].dir);
    memset(cfg, 0, sizeof *cfg);
}
