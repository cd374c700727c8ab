/*
 * classes.c — tokenizer.json as transformers (5.x) runs it, where that is
 * not the file as saved.
 *
 * AutoTokenizer instantiates the class tokenizer_config.json names (or the
 * one registered for config.json's model_type), and a class with its own
 * __init__ rebuilds the pipeline from the file's vocabulary rather than
 * taking the file's normalizer and pre-tokenizer: what
 * sentence-transformers then tokenizes with. For BERT, Qwen2 and Gemma the
 * rebuild is what the files say (checked on the real bge-small and MiniLM
 * files and on the qwen3-bpe / gemma3-bpe-split fixtures). Two classes of
 * the models Ember runs rebuild something else, and Ember rewrites the parsed
 * tokenizer.json the same way before building its tokenizer:
 *
 *   LlamaTokenizer(Fast)   (Llama 2 / Mistral layouts, whose files carry a
 *     Prepend("▁") + Replace(" ", "▁") normalizer): no normalizer, a
 *     Metaspace("▁", split false) pre-tokenizer prepending "first" ("always"
 *     with legacy true, "never" with add_prefix_space false), a
 *     byte_fallback + fuse_unk BPE. Not when the file has a ByteLevel part
 *     (Llama 3 style files load as saved).
 *   XLMRobertaTokenizer(Fast), CamembertTokenizer(Fast)   (multilingual-e5,
 *     bge-m3, paraphrase-multilingual-*, sentence-camembert): the file's
 *     Precompiled charsmap as the only
 *     normalizer (no Replace of space runs, no Strip), WhitespaceSplit then
 *     Metaspace("▁", "always", or "never" with add_prefix_space false), a
 *     Unigram without byte fallback whose unk_id is 3 (XLM-R; CamemBERT:
 *     where unk_token sits in the vocabulary). The post-processor the
 *     class sets, <s> $A </s> and <s> A </s></s> B </s> with type ids 0, is
 *     what the files' RobertaProcessing gives: the file's is kept.
 *
 * config.json's model_type decides first: under mistral (no class of its own
 * without mistral-common), modernbert and qwen2 (transformers overrides the
 * classes their hub files name) the named class is not used. The post-
 * processor stays the file's (transformers passes it to the class).
 * Checked against AutoTokenizer by the llama2-bpe-hf*, spm-xlmr-nmt-hf,
 * spm-xlmr-nmt-camembert-hf goldens and e2e-mistral (scripts/make_decoder_tok_goldens.py).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "internal.h"
#include "io/json.h"

/* Whether a tokenizer.json section holds a ByteLevel component. */
static bool has_byte_level(const json_t *j) {
    if (json_is_object(j)) {
        const char *type = json_string_value(json_object_get(j, "type"));
        if (type && strcmp(type, "ByteLevel") == 0)
            return true;
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)j, key, v) {
            if (strcmp(key, "vocab") != 0 && strcmp(key, "merges") != 0 && has_byte_level(v))
                return true;
        }
    } else if (json_is_array(j)) {
        size_t i;
        const json_t *v;
        json_array_foreach(j, i, v) {
            if (has_byte_level(v))
                return true;
        }
    }
    return false;
}

/* Loads DIR/NAME if it exists (*out NULL otherwise). */
static ember_status load_side_json(const char *dir, const char *name, json_t **out, char **path) {
    *out = NULL;
    *path = ember_path_join(dir, name);
    if (!*path)
        return ember_error(EMBER_E_NOMEM, "out of memory");
    if (!ember_file_exists(*path))
        return EMBER_OK;
    return ember_json_load_file(*path, 16u << 20, out);
}

/* A boolean of tokenizer_config.json; absent or null (Python's None): def. */
static ember_status cfg_bool(const json_t *cfg, const char *key, bool def, const char *what, bool *out) {
    *out = def;
    if (json_is_null(json_object_get(cfg, key)))
        return EMBER_OK;
    const ember_status st = ember_json_bool(cfg, key, what, out);
    return st == EMBER_E_NOT_FOUND ? EMBER_OK : st;
}

static bool is_class(const char *cls, const char *name) {
    const size_t n = strlen(name);
    return cls && strncmp(cls, name, n) == 0 && (cls[n] == '\0' || strcmp(cls + n, "Fast") == 0);
}

static json_t *metaspace(const char *scheme, bool split) {
    return json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement", "\xe2\x96\x81",
                     "prepend_scheme", scheme, "split", split);
}

static ember_status rebuild_llama(json_t *root, json_t *model, const json_t *cfg, const char *what) {
    bool legacy, prefix_space;
    EMBER_TRY(cfg_bool(cfg, "legacy", false, what, &legacy));
    EMBER_TRY(cfg_bool(cfg, "add_prefix_space", true, what, &prefix_space));
    /* json_object_set_new takes the value's reference even when it fails */
    if (json_object_set_new(root, "pre_tokenizer",
                            metaspace(!prefix_space ? "never" : legacy ? "always" : "first", false)) != 0 ||
        json_object_set_new(root, "normalizer", json_null()) != 0 ||
        json_object_set_new(model, "byte_fallback", json_true()) != 0 ||
        json_object_set_new(model, "fuse_unk", json_true()) != 0)
        return ember_error(EMBER_E_NOMEM, "out of memory");
    return EMBER_OK;
}

/* The first Precompiled normalizer of the file (alone or in a Sequence), or NULL. */
static json_t *find_precompiled(json_t *norm) {
    const char *type = json_string_value(json_object_get(norm, "type"));
    if (type && strcmp(type, "Precompiled") == 0 && json_object_get(norm, "precompiled_charsmap"))
        return norm;
    if (type && strcmp(type, "Sequence") == 0) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(norm, "normalizers"), i, v) {
            json_t *p = find_precompiled(v);
            if (p)
                return p;
        }
    }
    return NULL;
}

/* The index of piece `name` in a Unigram vocabulary ([[piece, score], ...]), or 0. */
static int64_t unigram_index(const json_t *model, const char *name) {
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(model, "vocab"), i, v) {
        const char *piece = json_string_value(json_array_get(v, 0));
        if (piece && strcmp(piece, name) == 0)
            return (int64_t)i;
    }
    return 0;
}

/* XLMRobertaTokenizer, and CamembertTokenizer (the same, but its unk_id is
 * where unk_token sits in the vocabulary, not 3). */
static ember_status rebuild_xlm_roberta(json_t *root, json_t *model, const json_t *cfg, const char *what,
                                        bool camembert) {
    int64_t unk_id = 3;
    if (camembert) {
        const json_t *u = json_object_get(cfg, "unk_token");
        const char *unk = json_is_string(u) ? json_string_value(u)
                          : json_is_object(u) ? json_string_value(json_object_get(u, "content"))
                                              : NULL;
        unk_id = unigram_index(model, unk ? unk : "<unk>");
    }
    bool prefix_space;
    EMBER_TRY(cfg_bool(cfg, "add_prefix_space", true, what, &prefix_space));
    json_t *pc = find_precompiled(json_object_get(root, "normalizer"));
    /* json_object_set_new takes the value's reference even when it fails */
    if (json_object_set_new(root, "normalizer", pc ? json_deep_copy(pc) : json_null()) != 0 ||
        json_object_set_new(root, "pre_tokenizer",
                            json_pack("{s:s, s:[{s:s}, o]}", "type", "Sequence", "pretokenizers", "type",
                                      "WhitespaceSplit", metaspace(prefix_space ? "always" : "never", true))) != 0 ||
        json_object_set_new(model, "unk_id", json_integer(unk_id)) != 0 ||
        json_object_set_new(model, "byte_fallback", json_false()) != 0)
        return ember_error(EMBER_E_NOMEM, "out of memory");
    return EMBER_OK;
}

ember_status ember_tok_apply_class(json_t *root, const char *dir) {
    json_t *cfg = NULL, *conf = NULL;
    char *cpath = NULL, *mpath = NULL;
    ember_status st = load_side_json(dir, "tokenizer_config.json", &cfg, &cpath);
    if (st != EMBER_OK || !json_is_object(cfg) || !json_is_object(root))
        goto done;
    const char *cls = json_string_value(json_object_get(cfg, "tokenizer_class"));
    json_t *model = json_object_get(root, "model");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    const bool llama = is_class(cls, "LlamaTokenizer") && (!mtype || strcmp(mtype, "BPE") == 0) &&
                       !has_byte_level(root);
    const bool camembert = is_class(cls, "CamembertTokenizer");
    const bool xlmr = (is_class(cls, "XLMRobertaTokenizer") || camembert) && mtype &&
                      strcmp(mtype, "Unigram") == 0;
    if (!json_is_object(model) || (!llama && !xlmr))
        goto done;
    if ((st = load_side_json(dir, "config.json", &conf, &mpath)) != EMBER_OK)
        goto done;
    const char *mt = json_string_value(json_object_get(conf, "model_type"));
    if (mt && (!strcmp(mt, "mistral") || !strcmp(mt, "modernbert") || !strcmp(mt, "qwen2")))
        goto done;
    st = llama ? rebuild_llama(root, model, cfg, cpath) : rebuild_xlm_roberta(root, model, cfg, cpath, camembert);
done:
    json_decref(cfg);
    json_decref(conf);
    free(cpath);
    free(mpath);
    return st;
}
