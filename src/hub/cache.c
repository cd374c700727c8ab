/*
 * cache.c — reading and writing huggingface_hub's cache layout (see the
 * diagram in hub.h), as file_download.py does: refs, snapshot pointers,
 * .no_exist markers, blob locks.
 *
 * Two rules keep the cache trustworthy whoever wrote it:
 *  - what Ember writes appears atomically (temporary name, then rename), so
 *    an interrupted run never leaves a half-written ref or pointer;
 *  - what Ember reads must resolve to a regular file inside the cache, so a
 *    planted or broken symlink is reported instead of followed elsewhere.
 */
#define _GNU_SOURCE
#include "hub.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

char *ember_hub_storage_dir(const char *cache_dir, const char *repo_id) {
    /* repo_folder_name(): "models" + "--".join(repo_id.split("/")) */
    size_t n = strlen(repo_id);
    char *folder = ember_malloc(8 + 2 * n + 1, "cache folder name");
    if (!folder)
        return NULL;
    size_t k = 0;
    memcpy(folder, "models--", 8);
    k = 8;
    for (size_t i = 0; i < n; i++) {
        if (repo_id[i] == '/') {
            folder[k++] = '-';
            folder[k++] = '-';
        } else {
            folder[k++] = repo_id[i];
        }
    }
    folder[k] = '\0';
    char *p = ember_path_join(cache_dir, folder);
    free(folder);
    if (!p)
        ember_error(EMBER_E_NOMEM, "out of memory");
    return p;
}

/* The directory part of `path` (allocated). */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? ember_strndup(path, (size_t)(slash - path)) : ember_strdup(".");
}

/* A sibling name for writing `path` atomically, unique per process and call. */
static char *temp_name(const char *path) {
    static _Atomic unsigned counter;
    unsigned c = counter++;
    return ember_hub_strf("%s.tmp-%ld-%u", path, (long)getpid(), c);
}

ember_status ember_hub_read_ref(const char *storage, const char *revision, char commit[41]) {
    commit[0] = '\0';
    char *path = ember_hub_strf("%s/refs/%s", storage, revision);
    if (!path)
        return EMBER_E_NOMEM;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        free(path);
        return EMBER_E_NOT_FOUND;
    }
    char *data = NULL;
    size_t len = 0;
    ember_status s = ember_read_file(path, 4096, &data, &len);
    if (s != EMBER_OK) {
        if (s == EMBER_E_TOO_LONG)
            s = ember_error(EMBER_E_FORMAT,
                            "%s: expected a 40-character commit hash, found a large file; delete "
                            "it so that it is fetched again",
                            path);
        free(path);
        return s;
    }
    /* huggingface_hub writes the bare hash; tolerate a trailing newline
     * someone added by hand, nothing else. */
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' ' ||
                       data[len - 1] == '\t'))
        data[--len] = '\0';
    if (len != 40 || strlen(data) != 40 || !ember_hub_is_commit(data)) {
        char shown[48];
        size_t k = 0;
        for (size_t i = 0; i < len && k < 40; i++)
            shown[k++] = (data[i] >= 0x20 && data[i] < 0x7f) ? data[i] : '?';
        shown[k] = '\0';
        s = ember_error(EMBER_E_FORMAT,
                        "%s: expected a 40-character lowercase commit hash, found '%s%s' (%zu "
                        "bytes); delete the file, or the whole %s, and download again",
                        path, shown, len > 40 ? "..." : "", len, storage);
        free(data);
        free(path);
        return s;
    }
    memcpy(commit, data, 41);
    free(data);
    free(path);
    return EMBER_OK;
}

/* Writes `content` to `path` through a temporary file and rename. */
static ember_status write_atomic(const char *path, const char *content, size_t len) {
    char *tmp = temp_name(path);
    if (!tmp)
        return EMBER_E_NOMEM;
    ember_status st = EMBER_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        st = ember_error(EMBER_E_IO, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, content + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            st = ember_error(EMBER_E_IO, "cannot write %s: %s", tmp, strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 && st == EMBER_OK)
        st = ember_error(EMBER_E_IO, "cannot write %s: %s", tmp, strerror(errno));
    if (st == EMBER_OK && rename(tmp, path) != 0)
        st = ember_error(EMBER_E_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (st != EMBER_OK)
        unlink(tmp);
    free(tmp);
    return st;
}

ember_status ember_hub_write_ref(const char *storage, const char *revision, const char *commit) {
    if (strcmp(revision, commit) == 0)
        return EMBER_OK; /* a commit is its own ref: nothing to remember */
    char *path = ember_hub_strf("%s/refs/%s", storage, revision);
    if (!path)
        return EMBER_E_NOMEM;
    char current[41];
    ember_status st = ember_hub_read_ref(storage, revision, current);
    ember_error_clear();
    if (st == EMBER_OK && strcmp(current, commit) == 0) {
        free(path);
        return EMBER_OK;
    }
    char *dir = dir_of(path);
    st = dir ? ember_hub_mkdirs(dir) : EMBER_E_NOMEM;
    free(dir);
    if (st == EMBER_OK)
        st = write_atomic(path, commit, strlen(commit));
    free(path);
    return st;
}

ember_status ember_hub_snapshot_file(const char *cache_dir, const char *storage,
                                     const char *commit, const char *path, char **out) {
    if (out)
        *out = NULL;
    char *full = ember_hub_strf("%s/snapshots/%s/%s", storage, commit, path);
    if (!full)
        return EMBER_E_NOMEM;
    char *real = realpath(full, NULL);
    if (!real) {
        int err = errno;
        ember_status st = EMBER_E_NOT_FOUND;
        if (err == ELOOP)
            st = ember_error(EMBER_E_FORMAT, "%s: symbolic link loop; delete %s and download again",
                             full, storage);
        else if (err != ENOENT && err != ENOTDIR)
            st = ember_error(EMBER_E_IO, "%s: %s", full, strerror(err));
        free(full);
        return st;
    }
    ember_status st = EMBER_OK;
    char *root = realpath(cache_dir, NULL);
    size_t rl = root ? strlen(root) : 0;
    if (!root || strncmp(real, root, rl) != 0 || (real[rl] != '/' && strcmp(root, "/") != 0)) {
        st = ember_error(EMBER_E_FORMAT,
                         "%s resolves to %s, outside the Hugging Face cache %s; Ember refuses to "
                         "read it. Delete %s and download the model again",
                         full, real, cache_dir, storage);
    } else {
        struct stat sb;
        if (stat(real, &sb) != 0 || !S_ISREG(sb.st_mode))
            st = ember_error(EMBER_E_FORMAT, "%s is not a regular file; delete %s and download again",
                             full, storage);
    }
    free(root);
    free(real);
    if (st == EMBER_OK && out)
        *out = full;
    else
        free(full);
    return st;
}

bool ember_hub_no_exist(const char *storage, const char *commit, const char *path) {
    char *p = ember_hub_strf("%s/.no_exist/%s/%s", storage, commit, path);
    if (!p) {
        ember_error_clear();
        return false;
    }
    bool r = ember_file_exists(p);
    free(p);
    return r;
}

void ember_hub_mark_no_exist(const char *storage, const char *commit, const char *path) {
    /* Best effort, as huggingface_hub: failing to remember a 404 only costs a
     * HEAD request next time. */
    char *p = ember_hub_strf("%s/.no_exist/%s/%s", storage, commit, path);
    char *dir = p ? dir_of(p) : NULL;
    if (dir && ember_hub_mkdirs(dir) == EMBER_OK) {
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
        if (fd >= 0)
            close(fd);
        else
            ember_log(EMBER_LOG_DEBUG, "cannot create %s: %s", p, strerror(errno));
    }
    ember_error_clear();
    free(dir);
    free(p);
}

/* Copies `src` to `dst` (used where the filesystem has no symlinks). */
static ember_status copy_file(const char *src, const char *dst) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return ember_error(EMBER_E_IO, "cannot open %s: %s", src, strerror(errno));
    int outfd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (outfd < 0) {
        int err = errno;
        close(in);
        return ember_error(EMBER_E_IO, "cannot create %s: %s", dst, strerror(err));
    }
    ember_status st = EMBER_OK;
    char buf[65536];
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            st = ember_error(EMBER_E_IO, "cannot read %s: %s", src, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(outfd, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                st = ember_error(EMBER_E_IO, "cannot write %s: %s", dst, strerror(errno));
                break;
            }
            off += w;
        }
        if (st != EMBER_OK)
            break;
    }
    close(in);
    if (close(outfd) != 0 && st == EMBER_OK)
        st = ember_error(EMBER_E_IO, "cannot write %s: %s", dst, strerror(errno));
    return st;
}

ember_status ember_hub_link_blob(const char *storage, const char *commit, const char *path,
                                 const char *etag) {
    char *pointer = ember_hub_strf("%s/snapshots/%s/%s", storage, commit, path);
    if (!pointer)
        return EMBER_E_NOMEM;
    char *dir = dir_of(pointer);
    ember_status st = dir ? ember_hub_mkdirs(dir) : EMBER_E_NOMEM;
    free(dir);
    if (st != EMBER_OK) {
        free(pointer);
        return st;
    }
    /* Relative like _create_symlink's os.path.relpath: one "../" per directory
     * between the pointer and the repository folder, so the cache can move. */
    ember_buf target = {0};
    size_t depth = 2;
    for (const char *c = path; *c; c++)
        depth += *c == '/';
    for (size_t i = 0; i < depth && st == EMBER_OK; i++)
        st = ember_buf_append(&target, "../", 3);
    if (st == EMBER_OK)
        st = ember_buf_printf(&target, "blobs/%s", etag);
    char *tmp = st == EMBER_OK ? temp_name(pointer) : NULL;
    if (!tmp) {
        ember_buf_free(&target);
        free(pointer);
        return EMBER_E_NOMEM;
    }
    if (symlink(target.data, tmp) != 0) {
        int err = errno;
        if (err == EPERM || err == ENOTSUP || err == ENOSYS) {
            char *blob = ember_hub_strf("%s/blobs/%s", storage, etag);
            st = blob ? copy_file(blob, tmp) : EMBER_E_NOMEM;
            free(blob);
        } else {
            st = ember_error(EMBER_E_IO, "cannot create the link %s: %s", tmp, strerror(err));
        }
    }
    if (st == EMBER_OK && rename(tmp, pointer) != 0)
        st = ember_error(EMBER_E_IO, "cannot rename %s to %s: %s", tmp, pointer, strerror(errno));
    if (st != EMBER_OK)
        unlink(tmp);
    free(tmp);
    ember_buf_free(&target);
    free(pointer);
    return st;
}

int ember_hub_lock(const char *cache_dir, const char *storage, const char *etag) {
    const char *folder = strrchr(storage, '/');
    folder = folder ? folder + 1 : storage;
    char *dir = ember_hub_strf("%s/.locks/%s", cache_dir, folder);
    if (!dir)
        return -1;
    if (ember_hub_mkdirs(dir) != EMBER_OK) {
        free(dir);
        return -1;
    }
    char *path = ember_hub_strf("%s/%s.lock", dir, etag);
    free(dir);
    if (!path)
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        ember_error(EMBER_E_IO, "cannot create the lock file %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    /* filelock's UnixFileLock, used by huggingface_hub, is flock(): taking
     * the same lock keeps Ember and Python from writing one blob at once. */
    while (flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR)
            continue;
        ember_error(EMBER_E_IO, "cannot lock %s: %s", path, strerror(errno));
        close(fd);
        free(path);
        return -1;
    }
    free(path);
    return fd;
}

void ember_hub_unlock(int fd) {
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
}
