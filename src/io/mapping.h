/*
 * mapping.h — a read-only memory mapping of a file, reference counted.
 *
 * Weights are used in place from the mapping (zero-copy). Every buffer that
 * points into a mapping holds a reference, and the file is unmapped only when
 * the last reference goes: the mapping outlives every view into it by
 * construction, whatever order the owners are freed in.
 */
#ifndef EMBER_IO_MAPPING_H
#define EMBER_IO_MAPPING_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct ember_mapping {
    const uint8_t *data;
    size_t size;
    char *path;
    int refs; /* atomic */
} ember_mapping;

/* Maps `path` read-only; the result holds one reference. */
ember_status ember_mapping_open(const char *path, ember_mapping **out);
/* Wraps caller memory that must outlive the mapping (tests, fuzzing). */
ember_status ember_mapping_wrap(const void *data, size_t size, const char *name,
                                ember_mapping **out);
ember_mapping *ember_mapping_retain(ember_mapping *m);
/* Access to [p, p + len) will be random (an embedding table gathered by
 * token id): no read-ahead or fault-around, so only the rows actually used
 * become resident. */
void ember_mapping_advise_random(ember_mapping *m, const void *p, size_t len);
/* Tells the kernel the pages wholly inside [p, p + len) will not be read
 * again soon (their copy in a packed layout is used instead), so they leave
 * the process's resident set. Reading them later stays valid. */
void ember_mapping_drop_pages(ember_mapping *m, const void *p, size_t len);
void ember_mapping_release(ember_mapping *m);

#endif
