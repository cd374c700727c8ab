/*
 * tensor_store.c — see tensor_store.h.
 */
#include "tensor_store.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "io/json.h"

static ember_status add_file(ember_tensor_store *s, const char *path) {
    ember_st_file **files = ember_realloc(s->files, sizeof *files * (size_t)(s->n_files + 1), "shards");
    if (!files)
        return EMBER_E_NOMEM;
    s->files = files;
    EMBER_TRY(ember_st_open(path, &s->files[s->n_files]));
    s->n_files++;
    return EMBER_OK;
}

/* Shard names come from a file we do not trust: plain names only. */
static bool plain_file_name(const char *n) {
    return n[0] && !strchr(n, '/') && strcmp(n, ".") != 0 && strcmp(n, "..") != 0;
}

static ember_status open_sharded(ember_tensor_store *s, const char *dir, const char *index_path) {
    json_t *root;
    EMBER_TRY(ember_json_load_file(index_path, 64u << 20, &root));
    ember_status st = EMBER_OK;
    const json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(map) || json_object_size(map) == 0) {
        st = ember_error(EMBER_E_FORMAT, "%s: 'weight_map' must be a non-empty object", index_path);
        goto done;
    }
    /* open each distinct shard once, in order of first mention */
    const char *name;
    json_t *v;
    const char **opened = ember_calloc(json_object_size(map), sizeof(char *), "shard list");
    int n_opened = 0;
    if (!opened) {
        st = EMBER_E_NOMEM;
        goto done;
    }
    json_object_foreach((json_t *)map, name, v) {
        const char *shard = json_string_value(v);
        if (!shard || !plain_file_name(shard)) {
            st = ember_error(EMBER_E_FORMAT,
                             "%s: tensor '%s' maps to an invalid shard name (must be a file name "
                             "in the model directory)",
                             index_path, name);
            break;
        }
        int seen = 0;
        for (int i = 0; i < n_opened && !seen; i++)
            seen = strcmp(opened[i], shard) == 0;
        if (!seen) {
            char *path = ember_path_join(dir, shard);
            st = path ? add_file(s, path) : EMBER_E_NOMEM;
            free(path);
            if (st != EMBER_OK)
                break;
            opened[n_opened++] = shard;
        }
        /* the index must tell the truth about where each tensor is */
        for (int i = 0; i < n_opened; i++) {
            if (strcmp(opened[i], shard) == 0 && !ember_st_find(s->files[i], name)) {
                st = ember_error(EMBER_E_FORMAT, "%s: tensor '%s' is not in shard %s", index_path,
                                 name, shard);
                break;
            }
        }
        if (st != EMBER_OK)
            break;
    }
    free(opened);
done:
    json_decref(root);
    return st;
}

ember_status ember_tensor_store_open(const char *dir, ember_tensor_store **out) {
    *out = NULL;
    ember_tensor_store *s = ember_calloc(1, sizeof *s, "tensor store");
    if (!s)
        return EMBER_E_NOMEM;
    char *single = ember_path_join(dir, "model.safetensors");
    char *index = ember_path_join(dir, "model.safetensors.index.json");
    ember_status st = EMBER_OK;
    if (!single || !index) {
        st = EMBER_E_NOMEM;
    } else if (ember_file_exists(single)) {
        st = add_file(s, single);
    } else if (ember_file_exists(index)) {
        st = open_sharded(s, dir, index);
    } else {
        static const char *other[] = {"pytorch_model.bin", "pytorch_model.bin.index.json",
                                      "model.bin", "tf_model.h5", "model.onnx", "onnx/model.onnx"};
        const char *found = NULL;
        for (size_t i = 0; i < EMBER_ARRAY_LEN(other) && !found; i++) {
            char *p = ember_path_join(dir, other[i]);
            if (p && ember_file_exists(p))
                found = other[i];
            free(p);
        }
        if (found)
            st = ember_error(EMBER_E_UNSUPPORTED,
                             "%s: only %s found; Ember requires safetensors weights "
                             "(model.safetensors). Convert with: python -c \"from transformers "
                             "import AutoModel; AutoModel.from_pretrained('%s')"
                             ".save_pretrained('OUT', safe_serialization=True)\"",
                             dir, found, dir);
        else
            st = ember_error(EMBER_E_NOT_FOUND,
                             "%s: no model.safetensors or model.safetensors.index.json", dir);
    }
    free(single);
    free(index);
    if (st != EMBER_OK) {
        ember_tensor_store_close(s);
        return st;
    }
    *out = s;
    return EMBER_OK;
}

void ember_tensor_store_close(ember_tensor_store *s) {
    if (!s)
        return;
    for (int i = 0; i < s->n_files; i++)
        ember_st_close(s->files[i]);
    free(s->files);
    free(s);
}

const ember_st_tensor *ember_tensor_store_find(const ember_tensor_store *s, const char *name) {
    for (int i = 0; i < s->n_files; i++) {
        const ember_st_tensor *t = ember_st_find(s->files[i], name);
        if (t)
            return t;
    }
    return NULL;
}
