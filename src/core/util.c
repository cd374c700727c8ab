/*
 * util.c — see util.h.
 */

#include "util.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* Large blocks (weights, their packed panels, activation arenas) get a
 * mapping of their own, returned to the system when freed. Through malloc
 * they land in the heap as soon as glibc's dynamic mmap threshold has risen
 * (it follows the largest block freed, up to 32 MiB), and a model load —
 * widen a tensor to fp32, pack it, free the fp32 copy, next tensor — then
 * leaves holes that are never given back: 190 MB of the 1.55 GB peak RSS of
 * a Qwen3-0.6B-shaped BF16 model (1.19 GB of weights). Under AddressSanitizer
 * everything stays on malloc, so overflows of big buffers are still caught. */
#if defined(__SANITIZE_ADDRESS__)
#define EMBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMBER_ASAN 1
#endif
#endif
#if defined(EMBER_ASAN)
#define BIG_BLOCK SIZE_MAX
#else
#define BIG_BLOCK ((size_t)1 << 20)
#endif
/* every block starts with this header, 64 bytes before the pointer returned */
enum { HDR = 64 };
#define MAGIC_HEAP 0x656d6265726865ull /* "emberhe" */
#define MAGIC_MAP 0x656d6265726d70ull  /* "embermp" */
typedef struct {
    uint64_t magic;
    size_t len; /* the mapping's length (MAGIC_MAP) */
} block_hdr;

/* Blocks of 2 MiB or more (packed weights, activations) start on a 2 MiB
 * boundary and ask for transparent huge pages. Why: a pass streams every
 * weight once from memory, and each new 4 KiB page costs a page walk (a
 * nested one on a VM) that the hardware prefetchers do not start early (they
 * stop at page boundaries, and software prefetches that miss the TLB are
 * dropped). On the VMs Ember is measured on, the first pass over a band of
 * weights ran 4x faster (median) on 2 MiB pages and MPNet-base fp32 passes
 * 0-11% faster (the walks' cost varies with the VM's state); where the VM
 * must fault huge pages in from its host, loading takes up to 0.7 s longer
 * per 340 MB (docs/performance.md, "Huge pages"). Where THP is `never`, or
 * EMBER_HUGEPAGES=0, the advice is not given; the tail short of 2 MiB stays
 * in small pages, so no memory is added either way. */
#define HUGE_PAGE ((size_t)2 << 20)
static void *map_pages(size_t len, int huge) {
    const int prot = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS;
#if defined(MADV_HUGEPAGE)
    const char *env = getenv("EMBER_HUGEPAGES");
    if (huge && len >= HUGE_PAGE && len <= SIZE_MAX - HUGE_PAGE && !(env && strcmp(env, "0") == 0)) {
        char *raw = mmap(NULL, len + HUGE_PAGE, prot, flags, -1, 0);
        if (raw == MAP_FAILED) /* no room for the slack: try without it */
            return mmap(NULL, len, prot, flags, -1, 0);
        char *start = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
        /* give back the unaligned head and the spare tail (page multiples:
         * raw is page-aligned, len a page multiple; the tail is never empty) */
        if (start > raw)
            munmap(raw, (size_t)(start - raw));
        munmap(start + len, (size_t)(raw + HUGE_PAGE - start));
        madvise(start, len, MADV_HUGEPAGE); /* advice: failure changes nothing */
        return start;
    }
#else
    (void)huge;
#endif
    return mmap(NULL, len, prot, flags, -1, 0);
}

static void *aligned_alloc_pages(size_t n, const char *what, int huge) {
    if (n > SIZE_MAX - 2 * (size_t)HDR - 65536) {
        ember_error(EMBER_E_NOMEM, "out of memory allocating %zu bytes for %s", n, what);
        return NULL;
    }
    void *raw = NULL;
    block_hdr h = {MAGIC_HEAP, 0};
    if (n >= BIG_BLOCK) {
        const size_t page = (size_t)sysconf(_SC_PAGESIZE);
        h.len = (n + HDR + page - 1) / page * page;
        raw = map_pages(h.len, huge);
        if (raw == MAP_FAILED)
            raw = NULL;
        h.magic = MAGIC_MAP;
    } else if (posix_memalign(&raw, 64, n + HDR) != 0) {
        raw = NULL;
    }
    if (!raw) {
        ember_error(EMBER_E_NOMEM, "out of memory allocating %zu bytes for %s", n, what);
        return NULL;
    }
    memcpy(raw, &h, sizeof h);
    return (char *)raw + HDR;
}

void *ember_aligned_alloc(size_t n, const char *what) {
    return aligned_alloc_pages(n, what, 1);
}

/* A staging copy is written and read once at load, then freed: huge pages
 * would only add their slower faults (each freed 2 MiB block tends to go
 * back to the hypervisor, so the next one faults on the host again). */
void *ember_aligned_alloc_staging(size_t n, const char *what) {
    return aligned_alloc_pages(n, what, 0);
}

void ember_aligned_free(void *p) {
    if (!p)
        return;
    void *raw = (char *)p - HDR;
    block_hdr h;
    memcpy(&h, raw, sizeof h);
    if (h.magic == MAGIC_MAP)
        munmap(raw, h.len);
    else
        free(raw);
}

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

size_t ember_first_nonfinite(const float *d, size_t n) {
    /* blocks scanned with a branch-free OR of exponent tests, and only a
     * flagged block element by element */
    enum { BLOCK = 1024 };
    for (size_t b = 0; b < n; b += BLOCK) {
        const size_t m = n - b < BLOCK ? n - b : BLOCK;
        uint32_t any = 0;
        for (size_t i = 0; i < m; i++) {
            uint32_t bits;
            memcpy(&bits, &d[b + i], 4);
            any |= (bits & 0x7f800000u) == 0x7f800000u;
        }
        if (any)
            for (size_t i = 0; i < m; i++)
                if (!isfinite(d[b + i]))
                    return b + i;
    }
    return n;
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
