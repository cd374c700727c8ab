/*
 * safetensors.c — see safetensors.h.
 */
#include "safetensors.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "io/json.h"

const char *ember_st_describe(ember_dt dt, int n_dims, const int64_t *shape, char *buf,
                              size_t size) {
    size_t len = (size_t)snprintf(buf, size, "%s[", ember_dt_name(dt));
    for (int i = 0; i < n_dims && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%" PRId64, i ? "," : "", shape[i]);
    if (len < size)
        snprintf(buf + len, size - len, "]");
    return buf;
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp(((const ember_st_tensor *)a)->name, ((const ember_st_tensor *)b)->name);
}

static int cmp_by_offset(const void *a, const void *b) {
    const ember_st_tensor *x = *(const ember_st_tensor *const *)a;
    const ember_st_tensor *y = *(const ember_st_tensor *const *)b;
    if (x->file_offset != y->file_offset)
        return x->file_offset < y->file_offset ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* Reads one data_offsets bound: a non-negative integer. */
static ember_status read_offset(const json_t *v, const char *file, const char *name, int which,
                                uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return ember_error(EMBER_E_FORMAT,
                           "%s: tensor '%s': data_offsets[%d] must be a non-negative integer, "
                           "found %s",
                           file, name, which, ember_json_type_name(v));
    *out = (uint64_t)json_integer_value(v);
    return EMBER_OK;
}

static ember_status parse_entry(const char *file, const char *name, const json_t *e,
                                uint64_t data_size, ember_st_tensor *t) {
    if (!json_is_object(e))
        return ember_error(EMBER_E_FORMAT, "%s: tensor '%s': entry must be an object, found %s",
                           file, name, ember_json_type_name(e));
    const json_t *jdt = json_object_get(e, "dtype");
    const json_t *jshape = json_object_get(e, "shape");
    const json_t *joff = json_object_get(e, "data_offsets");
    if (!json_is_string(jdt))
        return ember_error(EMBER_E_FORMAT, "%s: tensor '%s': 'dtype' must be a string, found %s",
                           file, name, ember_json_type_name(jdt));
    if (ember_dt_parse(json_string_value(jdt), &t->dtype) != 0)
        return ember_error(EMBER_E_FORMAT, "%s: tensor '%s': unknown dtype '%s'", file, name,
                           json_string_value(jdt));
    if (!json_is_array(jshape))
        return ember_error(EMBER_E_FORMAT, "%s: tensor '%s': 'shape' must be an array, found %s",
                           file, name, ember_json_type_name(jshape));
    size_t nd = json_array_size(jshape);
    if (nd > EMBER_ST_MAX_DIMS)
        return ember_error(EMBER_E_FORMAT, "%s: tensor '%s': %zu dimensions, at most %d supported",
                           file, name, nd, EMBER_ST_MAX_DIMS);
    t->n_dims = (int)nd;
    uint64_t count = 1;
    for (size_t i = 0; i < nd; i++) {
        const json_t *d = json_array_get(jshape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return ember_error(EMBER_E_FORMAT,
                               "%s: tensor '%s': shape[%zu] must be a non-negative integer", file,
                               name, i);
        t->shape[i] = (int64_t)json_integer_value(d);
        if (!ember_mul_u64(count, (uint64_t)t->shape[i], &count))
            return ember_error(EMBER_E_FORMAT, "%s: tensor '%s': shape product overflows", file,
                               name);
    }
    t->n_elements = count;
    uint64_t want;
    if (!ember_mul_u64(count, ember_dt_size(t->dtype), &want))
        return ember_error(EMBER_E_FORMAT, "%s: tensor '%s': byte size overflows", file, name);
    if (!json_is_array(joff) || json_array_size(joff) != 2)
        return ember_error(EMBER_E_FORMAT,
                           "%s: tensor '%s': 'data_offsets' must be an array of 2 integers", file,
                           name);
    uint64_t begin, end;
    EMBER_TRY(read_offset(json_array_get(joff, 0), file, name, 0, &begin));
    EMBER_TRY(read_offset(json_array_get(joff, 1), file, name, 1, &end));
    if (begin > end)
        return ember_error(EMBER_E_FORMAT,
                           "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] decrease",
                           file, name, begin, end);
    if (end > data_size)
        return ember_error(EMBER_E_FORMAT,
                           "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                           "] end past the data region of %" PRIu64 " bytes",
                           file, name, begin, end, data_size);
    if (end - begin != want) {
        char desc[160];
        return ember_error(EMBER_E_FORMAT,
                           "%s: tensor '%s': %s needs %" PRIu64 " bytes but data_offsets [%" PRIu64
                           ", %" PRIu64 "] span %" PRIu64,
                           file, name, ember_st_describe(t->dtype, t->n_dims, t->shape, desc, sizeof desc),
                           want, begin, end, end - begin);
    }
    t->nbytes = want;
    t->file_offset = begin; /* made absolute by the caller */
    return EMBER_OK;
}

ember_status ember_st_parse(ember_mapping *map, ember_st_file **out) {
    *out = NULL;
    const char *file = map->path;
    if (map->size < 8)
        return ember_error(EMBER_E_FORMAT,
                           "%s: %zu bytes is too short for a safetensors file (8-byte header "
                           "length missing)",
                           file, map->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | map->data[i];
    if (hlen > EMBER_ST_MAX_HEADER)
        return ember_error(EMBER_E_FORMAT,
                           "%s: header length %" PRIu64 " exceeds the limit of %u bytes", file,
                           hlen, EMBER_ST_MAX_HEADER);
    if (hlen > map->size - 8)
        return ember_error(EMBER_E_FORMAT,
                           "%s: header length %" PRIu64 " runs past the end of the file (%zu bytes)",
                           file, hlen, map->size);
    if (hlen < 2 || map->data[8] != '{')
        return ember_error(EMBER_E_FORMAT, "%s: header does not start with a JSON object", file);

    json_t *root;
    EMBER_TRY(ember_json_load_buf((const char *)map->data + 8, (size_t)hlen, file, &root));
    if (!json_is_object(root)) {
        json_decref(root);
        return ember_error(EMBER_E_FORMAT, "%s: header must be a JSON object", file);
    }
    uint64_t data_start = 8 + hlen;
    uint64_t data_size = map->size - data_start;

    ember_st_file *f = ember_calloc(1, sizeof *f, "safetensors file");
    size_t n = json_object_size(root);
    size_t names_len = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) { names_len += strlen(key) + 1; }
    ember_st_tensor **by_offset = NULL;
    ember_status st = EMBER_OK;
    if (!f || !(f->tensors = ember_calloc(n, sizeof *f->tensors, "tensor table")) ||
        !(f->names = ember_malloc(names_len + 1, "tensor names")) ||
        !(by_offset = ember_calloc(n, sizeof *by_offset, "tensor table"))) {
        st = EMBER_E_NOMEM;
        goto fail;
    }
    f->map = ember_mapping_retain(map);

    size_t pos = 0;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) {
                st = ember_error(EMBER_E_FORMAT, "%s: '__metadata__' must be an object", file);
                goto fail;
            }
            continue;
        }
        ember_st_tensor *t = &f->tensors[f->n_tensors];
        size_t klen = strlen(key);
        memcpy(f->names + pos, key, klen + 1);
        t->name = f->names + pos;
        pos += klen + 1;
        if ((st = parse_entry(file, key, val, data_size, t)) != EMBER_OK)
            goto fail;
        t->file_offset += data_start;
        t->data = map->data + t->file_offset;
        t->map = map;
        by_offset[f->n_tensors] = t;
        f->n_tensors++;
    }

    /* No two non-empty tensors may share bytes. */
    qsort(by_offset, f->n_tensors, sizeof *by_offset, cmp_by_offset);
    const ember_st_tensor *prev = NULL;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const ember_st_tensor *t = by_offset[i];
        if (t->nbytes == 0)
            continue;
        if (prev && t->file_offset < prev->file_offset + prev->nbytes) {
            st = ember_error(EMBER_E_FORMAT,
                             "%s: tensors '%s' [%" PRIu64 ", %" PRIu64 ") and '%s' [%" PRIu64
                             ", %" PRIu64 ") overlap",
                             file, prev->name, prev->file_offset - data_start,
                             prev->file_offset - data_start + prev->nbytes, t->name,
                             t->file_offset - data_start, t->file_offset - data_start + t->nbytes);
            goto fail;
        }
        prev = t;
    }
    /* The names point into f->names, so sorting the table keeps them valid. */
    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, cmp_by_name);
    free(by_offset);
    json_decref(root);
    *out = f;
    return EMBER_OK;

fail:
    free(by_offset);
    json_decref(root);
    ember_st_close(f);
    return st;
}

ember_status ember_st_open(const char *path, ember_st_file **out) {
    *out = NULL;
    ember_mapping *map;
    EMBER_TRY(ember_mapping_open(path, &map));
    ember_status st = ember_st_parse(map, out);
    ember_mapping_release(map); /* the file holds its own reference */
    return st;
}

void ember_st_close(ember_st_file *f) {
    if (!f)
        return;
    ember_mapping_release(f->map);
    free(f->tensors);
    free(f->names);
    free(f);
}

const ember_st_tensor *ember_st_find(const ember_st_file *f, const char *name) {
    size_t lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->tensors[mid].name);
        if (c == 0)
            return &f->tensors[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
