/*
 * mapping.c — see mapping.h.
 */
#include "mapping.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

#define OWNS_MAP 1

typedef struct {
    ember_mapping pub;
    int flags;
} mapping_impl;

ember_status ember_mapping_open(const char *path, ember_mapping **out) {
    *out = NULL;
    /* O_NONBLOCK: a FIFO would block the open until a writer comes; it is
     * refused below like anything that is not a regular file */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return ember_error(errno == ENOENT ? EMBER_E_NOT_FOUND : EMBER_E_IO,
                           "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ember_error(EMBER_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ember_error(EMBER_E_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    void *data = NULL;
    if (size > 0) {
        data = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (data == MAP_FAILED) {
            int e = errno;
            close(fd);
            return ember_error(EMBER_E_IO, "%s: cannot map %zu bytes: %s", path, size,
                               strerror(e));
        }
    }
    close(fd);
    mapping_impl *m = ember_calloc(1, sizeof *m, "mapping");
    char *p = ember_strdup(path);
    if (!m || !p) {
        free(m);
        free(p);
        if (data)
            munmap(data, size);
        return EMBER_E_NOMEM;
    }
    m->pub.data = data;
    m->pub.size = size;
    m->pub.path = p;
    m->pub.refs = 1;
    m->flags = data ? OWNS_MAP : 0;
    *out = &m->pub;
    return EMBER_OK;
}

ember_status ember_mapping_wrap(const void *data, size_t size, const char *name,
                                ember_mapping **out) {
    *out = NULL;
    mapping_impl *m = ember_calloc(1, sizeof *m, "mapping");
    char *p = ember_strdup(name ? name : "(memory)");
    if (!m || !p) {
        free(m);
        free(p);
        return EMBER_E_NOMEM;
    }
    m->pub.data = data;
    m->pub.size = size;
    m->pub.path = p;
    m->pub.refs = 1;
    *out = &m->pub;
    return EMBER_OK;
}

void ember_mapping_advise_random(ember_mapping *m, const void *p, size_t len) {
    mapping_impl *mi = (mapping_impl *)m;
    if (!m || !(mi->flags & OWNS_MAP) || len == 0)
        return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)p & ~(page - 1);
    uintptr_t end = ((uintptr_t)p + len + page - 1) & ~(page - 1);
    madvise((void *)start, end - start, MADV_RANDOM);
}

void ember_mapping_drop_pages(ember_mapping *m, const void *p, size_t len) {
    mapping_impl *mi = (mapping_impl *)m;
    if (!m || !(mi->flags & OWNS_MAP) || len == 0)
        return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t end = ((uintptr_t)p + len) & ~(page - 1);
    if (end > start)
        madvise((void *)start, end - start, MADV_DONTNEED);
}

ember_mapping *ember_mapping_retain(ember_mapping *m) {
    if (m)
        __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

void ember_mapping_release(ember_mapping *m) {
    if (!m || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    mapping_impl *mi = (mapping_impl *)m;
    if ((mi->flags & OWNS_MAP) && m->size)
        munmap((void *)m->data, m->size);
    free(m->path);
    free(mi);
}
