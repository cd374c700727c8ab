/*
 * fuzz_config.c — libFuzzer target: arbitrary bytes as config.json and as a
 * sentence-transformers Pooling config. Parsing must end in a status; an
 * accepted config must satisfy the invariants later size computations rely on.
 */
#include <stdint.h>
#include <stdlib.h>

#include "io/json.h"
#include "io/model_config.h"
#include "io/st_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_t *root = NULL;
    if (ember_json_load_buf((const char *)data, size, "config.json", &root) == EMBER_OK) {
        ember_hparams hp;
        if (ember_hparams_parse(root, "config.json", &hp) == EMBER_OK) {
            if (hp.hidden_size <= 0 || hp.n_heads <= 0 || hp.hidden_size % hp.n_heads != 0 ||
                hp.n_layers <= 0 || hp.n_layers > EMBER_MAX_LAYERS || hp.vocab_size <= 0 ||
                hp.max_position_embeddings <= 0 || !(hp.layer_norm_eps >= 0.0f))
                abort();
        }
        json_decref(root);
    }
    int32_t pooling = 0, dim = 0;
    bool include_prompt = false;
    ember_st_pooling_parse((const char *)data, size, "1_Pooling/config.json", &pooling,
                           &include_prompt, &dim);
    return 0;
}
