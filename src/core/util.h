/*
 * util.h — small helpers shared by every module: checked allocation,
 * overflow-checked size arithmetic, growable byte buffers, files and paths.
 */
#ifndef EMBER_CORE_UTIL_H
#define EMBER_CORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define EMBER_MIN(a, b) ((a) < (b) ? (a) : (b))
#define EMBER_MAX(a, b) ((a) > (b) ? (a) : (b))
#define EMBER_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* malloc/calloc/realloc that record EMBER_E_NOMEM with `what` on failure. */
void *ember_malloc(size_t n, const char *what);
void *ember_calloc(size_t count, size_t size, const char *what);
void *ember_realloc(void *p, size_t n, const char *what);
char *ember_strdup(const char *s);
char *ember_strndup(const char *s, size_t n);

/* 64-byte aligned allocation (SIMD loads, cache lines); free with
 * ember_aligned_free. Blocks of 2 MiB or more are 2 MiB-aligned and advised
 * onto transparent huge pages unless EMBER_HUGEPAGES=0 (see util.c). */
void *ember_aligned_alloc(size_t n, const char *what);
/* The same on small pages, for a large copy that lives only through the
 * load (written once, read once, freed). */
void *ember_aligned_alloc_staging(size_t n, const char *what);
void ember_aligned_free(void *p);

/* Overflow-checked arithmetic: return false when the result does not fit. */
static inline bool ember_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool ember_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* A growable byte buffer, always NUL-terminated for convenience. */
typedef struct ember_buf {
    char *data;
    size_t len;
    size_t cap;
} ember_buf;

ember_status ember_buf_reserve(ember_buf *b, size_t extra);
ember_status ember_buf_append(ember_buf *b, const void *data, size_t n);
ember_status ember_buf_printf(ember_buf *b, const char *fmt, ...) EMBER_PRINTF(2, 3);
void ember_buf_free(ember_buf *b);

/* Reads a whole file (at most `max_bytes`) into a NUL-terminated buffer the
 * caller frees. EMBER_E_IO (with errno text) or EMBER_E_TOO_LONG. */
ember_status ember_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len);

/* "dir/name" in a newly allocated string (NULL on allocation failure). */
char *ember_path_join(const char *dir, const char *name);
bool ember_file_exists(const char *path);
bool ember_dir_exists(const char *path);

/* Number of online CPUs (at least 1). */
int ember_cpu_count(void);

/* Index of the first NaN or infinity among d[0 .. n), or n (a vectorized
 * scan: weights are checked once at load). */
size_t ember_first_nonfinite(const float *d, size_t n);

/* Monotonic clock in seconds. */
double ember_now(void);

#endif
