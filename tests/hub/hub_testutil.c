/*
 * hub_testutil.c — see hub_testutil.h.
 */
#define _GNU_SOURCE
#include "hub_testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hub/hub.h"

int tu_failures;
char tu_dir[512];
static int tu_tests, tu_failed_tests;

double tu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void tu_rmrf(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

void tu_run(const char *name, void (*fn)(void)) {
    const char *tmp = getenv("TMPDIR");
    snprintf(tu_dir, sizeof tu_dir, "%s/ember-hub-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tu_dir)) {
        fprintf(stderr, "cannot create a temporary directory: %s\n", strerror(errno));
        exit(1);
    }
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        cwd[0] = '\0';
    tu_isolate_env(NULL);
    int before = tu_failures;
    double t0 = tu_now();
    fn();
    double dt = tu_now() - t0;
    tu_tests++;
    if (tu_failures != before)
        tu_failed_tests++;
    fprintf(stderr, "%-40s %s (%.2f s)\n", name, tu_failures != before ? "FAILED" : "ok", dt);
    if (cwd[0] && chdir(cwd) != 0)
        fprintf(stderr, "cannot return to %s\n", cwd);
    tu_rmrf(tu_dir);
}

int tu_finish(void) {
    fprintf(stderr, "%d tests, %d failed, %d failed checks\n", tu_tests, tu_failed_tests,
            tu_failures);
    return tu_failures ? 1 : 0;
}

void tu_isolate_env(const char *endpoint) {
    static const char *const vars[] = {
        "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME", "HF_ENDPOINT",
        "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_IMPLICIT_TOKEN", "HF_HUB_ETAG_TIMEOUT",
        "HF_HUB_DOWNLOAD_TIMEOUT", "HF_HUB_USER_AGENT_ORIGIN", "http_proxy", "HTTP_PROXY",
        "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    setenv("HF_HOME", tu_path("home"), 1);
    if (endpoint)
        setenv("HF_ENDPOINT", endpoint, 1);
}

const char *tu_path(const char *rel) {
    static char bufs[8][2048];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", tu_dir, rel);
    return b;
}

const char *tu_storage(const char *repo_id) {
    char folder[512] = "models--";
    size_t k = strlen(folder);
    for (const char *c = repo_id; *c && k + 3 < sizeof folder; c++) {
        if (*c == '/') {
            folder[k++] = '-';
            folder[k++] = '-';
        } else {
            folder[k++] = *c;
        }
    }
    folder[k] = '\0';
    char rel[600];
    snprintf(rel, sizeof rel, "home/hub/%s", folder);
    return tu_path(rel);
}

bool tu_exists(const char *path) {
    struct stat sb;
    return lstat(path, &sb) == 0;
}

bool tu_is_link(const char *path) {
    struct stat sb;
    return lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode);
}

char *tu_read(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = n;
    }
    return buf;
}

bool tu_mkdirs(const char *path) {
    char p[1024];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0777);
            *s = '/';
        }
    }
    return mkdir(p, 0777) == 0 || errno == EEXIST;
}

bool tu_write(const char *path, const void *data, size_t len) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        tu_mkdirs(dir);
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

bool tu_same_file(const char *a, const char *b) {
    size_t la, lb;
    char *x = tu_read(a, &la), *y = tu_read(b, &lb);
    bool same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

int tu_count_dir(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        size_t a = strlen(e->d_name), b = suffix ? strlen(suffix) : 0;
        if (!suffix || (a >= b && strcmp(e->d_name + a - b, suffix) == 0))
            n++;
    }
    closedir(d);
    return n;
}

bool tu_sha256_file(const char *path, char hex[65]) {
    size_t len;
    char *data = tu_read(path, &len);
    if (!data)
        return false;
    ember_sha256 s;
    uint8_t d[32];
    ember_sha256_init(&s);
    ember_sha256_update(&s, data, len);
    ember_sha256_final(&s, d);
    ember_hub_hex(d, 32, hex);
    free(data);
    return true;
}

bool tu_git_sha1_file(const char *path, char hex[41]) {
    size_t len;
    char *data = tu_read(path, &len);
    if (!data)
        return false;
    char head[32];
    int hl = snprintf(head, sizeof head, "blob %zu", len);
    ember_sha1 s;
    uint8_t d[20];
    ember_sha1_init(&s);
    ember_sha1_update(&s, head, (size_t)hl + 1);
    ember_sha1_update(&s, data, len);
    ember_sha1_final(&s, d);
    ember_hub_hex(d, 20, hex);
    free(data);
    return true;
}

const char *tu_dead_url(void) {
    static char url[64];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    unsigned port = 9; /* discard: closed on test machines if bind fails below */
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
    return url;
}

ember_model_params tu_params(void) {
    ember_model_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.load_tokenizer = 1;
    p.allow_download = 1;
    return p;
}
