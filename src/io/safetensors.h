/*
 * safetensors.h — a safetensors reader that trusts nothing.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON header
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
 * "__metadata__": {...}}, then the data region. Every tensor is checked:
 * known dtype, shape product x element size == e - b (no overflow), offsets
 * inside the data region, no two tensors overlapping, header size limited.
 * Each violation is an EMBER_E_FORMAT naming the file, the tensor and the
 * numbers. Tensor data points into the mapping, which the file keeps alive.
 */
#ifndef EMBER_IO_SAFETENSORS_H
#define EMBER_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/error.h"
#include "io/mapping.h"

#define EMBER_ST_MAX_DIMS 8
#define EMBER_ST_MAX_HEADER (100u * 1000u * 1000u) /* as the reference implementation */

typedef struct ember_st_tensor {
    const char *name;
    ember_dt dtype;
    int n_dims;
    int64_t shape[EMBER_ST_MAX_DIMS];
    uint64_t n_elements;
    uint64_t nbytes;
    uint64_t file_offset;     /* absolute offset of the data in the file */
    const uint8_t *data;      /* inside `map`, possibly unaligned         */
    ember_mapping *map;       /* the mapping (not retained per tensor)    */
} ember_st_tensor;

typedef struct ember_st_file {
    ember_mapping *map;       /* one reference held by the file          */
    ember_st_tensor *tensors; /* sorted by name                          */
    size_t n_tensors;
    char *names;              /* storage for the names                   */
} ember_st_file;

/* Maps and parses `path`. */
ember_status ember_st_open(const char *path, ember_st_file **out);
/* Parses an existing mapping (takes its own reference). */
ember_status ember_st_parse(ember_mapping *map, ember_st_file **out);
void ember_st_close(ember_st_file *f);

/* Tensor by exact name, or NULL. */
const ember_st_tensor *ember_st_find(const ember_st_file *f, const char *name);

/* "F32[384,384]" into buf. */
const char *ember_st_describe(ember_dt dt, int n_dims, const int64_t *shape, char *buf,
                              size_t size);

#endif
