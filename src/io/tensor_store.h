/*
 * tensor_store.h — all the safetensors files of one model: a single
 * model.safetensors or the shards named by model.safetensors.index.json.
 * The store owns the files (and through them the mappings); weights that
 * point into a mapping hold their own reference on it.
 */
#ifndef EMBER_IO_TENSOR_STORE_H
#define EMBER_IO_TENSOR_STORE_H

#include "io/safetensors.h"

typedef struct ember_tensor_store {
    ember_st_file **files;
    int n_files;
} ember_tensor_store;

/* Opens the weights of the model directory `dir`. EMBER_E_NOT_FOUND when no
 * safetensors file is there (saying safetensors is required when only
 * pytorch_model.bin is), EMBER_E_FORMAT for a malformed file or index. */
ember_status ember_tensor_store_open(const char *dir, ember_tensor_store **out);
void ember_tensor_store_close(ember_tensor_store *s);
const ember_st_tensor *ember_tensor_store_find(const ember_tensor_store *s, const char *name);

#endif
