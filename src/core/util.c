/*
 * util.c — see util.h.
 */

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void *ember_malloc(size_t n, const char *what) {
    void *p = malloc(n ? n : 1);
    if (!p)
        ember_error(EMBER_E_NOMEM, "out of memory allocating %zu bytes for %s", n, what);
    return p;
}

void *ember_calloc(size_t count, size_t size, const char *what) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        ember_error(EMBER_E_NOMEM, "out of memory allocating %zu x %zu bytes for %s", count, size,
                    what);
    return p;
}

void *ember_realloc(void *p, size_t n, const char *what) {
    void *q = realloc(p, n ? n : 1);
    if (!q)
        ember_error(EMBER_E_NOMEM, "out of memory growing %s to %zu bytes", what, n);
    return q;
}

char *ember_strdup(const char *s) { return s ? ember_strndup(s, strlen(s)) : NULL; }

char *ember_strndup(const char *s, size_t n) {
    char *p = ember_malloc(n + 1, "string");
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void *ember_aligned_alloc(size_t n, const char *what) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) {
        ember_error(EMBER_E_NOMEM, "out of memory allocating %zu bytes for %s", n, what);
        return NULL;
    }
    return p;
}

void ember_aligned_free(void *p) { free(p); }

ember_status ember_buf_reserve(ember_buf *b, size_t extra) {
    size_t need;
    if (__builtin_add_overflow(b->len, extra + 1, &need))
        return ember_error(EMBER_E_NOMEM, "buffer size overflow");
    if (need <= b->cap)
        return EMBER_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = ember_realloc(b->data, cap, "buffer");
    if (!p)
        return EMBER_E_NOMEM;
    b->data = p;
    b->cap = cap;
    return EMBER_OK;
}

ember_status ember_buf_append(ember_buf *b, const void *data, size_t n) {
    EMBER_TRY(ember_buf_reserve(b, n));
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return EMBER_OK;
}

ember_status ember_buf_printf(ember_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return ember_error(EMBER_E_INTERNAL, "formatting failed");
    EMBER_TRY(ember_buf_reserve(b, (size_t)n));
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return EMBER_OK;
}

void ember_buf_free(ember_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

ember_status ember_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len) {
    *out = NULL;
    if (out_len)
        *out_len = 0;
    /* O_NONBLOCK: opening a FIFO for reading would block until a writer
     * comes; only regular files are read (a FIFO, device or directory could
     * hang the load forever or never end) */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return ember_error(errno == ENOENT ? EMBER_E_NOT_FOUND : EMBER_E_IO, "%s: cannot open: %s",
                           path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ember_error(EMBER_E_IO, "%s: not a regular file", path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return ember_error(EMBER_E_IO, "%s: cannot open: %s", path, strerror(e));
    }
    ember_buf b = {0};
    char chunk[65536];
    size_t n;
    ember_status st = EMBER_OK;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > max_bytes) {
            st = ember_error(EMBER_E_TOO_LONG, "%s: larger than the limit of %zu bytes", path,
                             max_bytes);
            break;
        }
        if ((st = ember_buf_append(&b, chunk, n)) != EMBER_OK)
            break;
    }
    if (st == EMBER_OK && ferror(f))
        st = ember_error(EMBER_E_IO, "%s: read error: %s", path, strerror(errno));
    fclose(f);
    if (st != EMBER_OK) {
        ember_buf_free(&b);
        return st;
    }
    if (!b.data && (st = ember_buf_reserve(&b, 0)) != EMBER_OK)
        return st;
    b.data[b.len] = '\0';
    *out = b.data;
    if (out_len)
        *out_len = b.len;
    return EMBER_OK;
}

char *ember_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), c = strlen(name);
    bool slash = a > 0 && dir[a - 1] != '/';
    char *p = ember_malloc(a + c + 2, "path");
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    if (slash)
        p[a++] = '/';
    memcpy(p + a, name, c + 1);
    return p;
}

bool ember_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool ember_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int ember_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

double ember_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void ember_free(void *p) { free(p); }
