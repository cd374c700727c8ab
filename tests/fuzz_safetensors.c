/*
 * fuzz_safetensors.c — libFuzzer target: arbitrary bytes as a safetensors
 * file. The parser must return a status, never crash, hang or read outside
 * the buffer; when it accepts, every tensor must lie inside the buffer.
 */
#include <stdint.h>
#include <stdlib.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ember_mapping *map;
    if (ember_mapping_wrap(data, size, "fuzz.safetensors", &map) != EMBER_OK)
        return 0;
    ember_st_file *f = NULL;
    if (ember_st_parse(map, &f) == EMBER_OK) {
        for (size_t i = 0; i < f->n_tensors; i++) {
            const ember_st_tensor *t = &f->tensors[i];
            if (t->data < data || t->data + t->nbytes > data + size)
                abort();
            if (ember_st_find(f, t->name) == NULL)
                abort();
        }
        ember_st_close(f);
    }
    ember_mapping_release(map);
    return 0;
}
