/*
 * mock_hub.c — see mock_hub.h. The answers copy what huggingface.co sends
 * (status codes, X-Error-Code / X-Error-Message, X-Repo-Commit, quoted ETags,
 * an LFS redirect whose X-Linked-Etag is the sha256), which is what
 * huggingface_hub's hf_raise_for_status and get_hf_file_metadata key on.
 */
#define _GNU_SOURCE
#include "mock_hub.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hub/hub.h"

#define MOCK_LOG_MAX 512

typedef struct fault {
    char file[128];
    int64_t after;
    int stall_ms;
    int times;
} fault;

struct mock_hub {
    struct MHD_Daemon *daemon;
    const mock_repo *repos;
    size_t n_repos;
    const char *token, *weak_token;
    char url[64];
    char cdn[256];
    pthread_mutex_t mu;
    volatile int stopping;
    mock_request log[MOCK_LOG_MAX];
    size_t n_log, total;
    fault cut;
    char corrupt[128];
    bool ignore_range;
    int head_delay_ms;
};

/* ---- helpers ---------------------------------------------------------------- */

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    *len = n;
    return buf ? buf : calloc(1, 1);
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* %XX-decodes `s` into dst (cap bytes). The hub receives URLs raw (see
 * keep_raw) so that the log shows exactly what the client sent. */
static void url_decode(const char *s, size_t n, char *dst, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], '\0'};
            dst[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            dst[o++] = s[i];
        }
    }
    dst[o] = '\0';
}

/* MHD_OPTION_UNESCAPE_CALLBACK that leaves the URL as it came. */
static size_t keep_raw(void *cls, struct MHD_Connection *c, char *s) {
    (void)cls;
    (void)c;
    return strlen(s);
}

/* A path-relative reference ("../../x/y") from absolute path `from` to
 * absolute path `to`, as a server may put in a Location. */
static void relative_ref(const char *from, const char *to, char *out, size_t cap) {
    size_t common = 0; /* length of the shared directories, up to a '/' */
    for (size_t i = 0; from[i] && from[i] == to[i]; i++)
        if (from[i] == '/')
            common = i + 1;
    size_t o = 0;
    out[0] = '\0';
    for (const char *p = from + common; (p = strchr(p, '/')) != NULL; p++)
        o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "../");
    snprintf(out + o, o < cap ? cap - o : 0, "%s", to + common);
}

static struct MHD_Response *text_response(const char *text) {
    return MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result send_and_log(mock_hub *h, struct MHD_Connection *c, unsigned status,
                                    struct MHD_Response *r, size_t log_index) {
    pthread_mutex_lock(&h->mu);
    if (log_index < MOCK_LOG_MAX)
        h->log[log_index].status = (int)status;
    pthread_mutex_unlock(&h->mu);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result hub_error(mock_hub *h, struct MHD_Connection *c, size_t li, unsigned status,
                                 const char *code, const char *message, const char *commit) {
    struct MHD_Response *r = text_response(message);
    if (code)
        MHD_add_response_header(r, "X-Error-Code", code);
    MHD_add_response_header(r, "X-Error-Message", message);
    if (commit)
        MHD_add_response_header(r, "X-Repo-Commit", commit);
    return send_and_log(h, c, status, r, li);
}

/* ---- content with faults ------------------------------------------------------ */

typedef struct slow_body {
    mock_hub *hub;
    char *data;
    size_t len;    /* bytes the response announces            */
    size_t limit;  /* bytes actually sent before breaking      */
    int stall_ms;
} slow_body;

static ssize_t slow_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    slow_body *b = cls;
    if (pos >= b->limit) {
        for (int waited = 0; waited < b->stall_ms && !b->hub->stopping; waited += 20) {
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
        return MHD_CONTENT_READER_END_WITH_ERROR; /* closes the connection */
    }
    size_t n = b->limit - (size_t)pos;
    if (n > max)
        n = max;
    memcpy(buf, b->data + pos, n);
    return (ssize_t)n;
}

static void slow_free(void *cls) {
    slow_body *b = cls;
    free(b->data);
    free(b);
}

/* Serves `data` honouring Range and the faults registered for `repo_path`. */
static enum MHD_Result serve_content(mock_hub *h, struct MHD_Connection *c, size_t li,
                                     const char *method, char *data, size_t len,
                                     const char *repo_path, const char *etag_header,
                                     const char *commit) {
    const char *name = base_name(repo_path);
    pthread_mutex_lock(&h->mu);
    bool corrupt = h->corrupt[0] && strcmp(h->corrupt, name) == 0;
    bool ignore_range = h->ignore_range;
    fault f = {0};
    bool is_get = strcmp(method, "GET") == 0;
    if (is_get && h->cut.times > 0 && strcmp(h->cut.file, name) == 0) {
        f = h->cut;
        h->cut.times--;
    }
    pthread_mutex_unlock(&h->mu);
    if (corrupt && len > 0)
        data[len / 2] ^= 0x5a;

    size_t start = 0;
    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    if (range && !ignore_range && strncmp(range, "bytes=", 6) == 0) {
        start = (size_t)strtoull(range + 6, NULL, 10);
        if (start >= len && len > 0) {
            free(data);
            struct MHD_Response *r = text_response("Range Not Satisfiable");
            char cr[64];
            snprintf(cr, sizeof cr, "bytes */%zu", len);
            MHD_add_response_header(r, "Content-Range", cr);
            return send_and_log(h, c, 416, r, li);
        }
    }
    unsigned status = start > 0 ? 206 : 200;
    size_t body = len - start;
    struct MHD_Response *r;
    if (f.times > 0 && is_get) {
        slow_body *b = calloc(1, sizeof *b);
        b->hub = h;
        b->data = malloc(body ? body : 1);
        memcpy(b->data, data + start, body);
        b->len = body;
        b->limit = (size_t)f.after < body ? (size_t)f.after : body;
        b->stall_ms = f.stall_ms;
        free(data);
        r = MHD_create_response_from_callback(body, 4096, slow_reader, b, slow_free);
    } else {
        r = MHD_create_response_from_buffer(body, data + start, MHD_RESPMEM_MUST_COPY);
        free(data);
    }
    if (start > 0) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %zu-%zu/%zu", start, len - 1, len);
        MHD_add_response_header(r, "Content-Range", cr);
    }
    MHD_add_response_header(r, "Accept-Ranges", "bytes");
    if (etag_header)
        MHD_add_response_header(r, "ETag", etag_header);
    if (commit)
        MHD_add_response_header(r, "X-Repo-Commit", commit);
    return send_and_log(h, c, status, r, li);
}

/* ---- routes -------------------------------------------------------------------- */

static void sha256_hex(const char *data, size_t len, char hex[65]) {
    ember_sha256 s;
    uint8_t d[32];
    ember_sha256_init(&s);
    ember_sha256_update(&s, data, len);
    ember_sha256_final(&s, d);
    ember_hub_hex(d, 32, hex);
}

/* /cdn/{sha256}/{commit}/{path}: the URL names the content fully, like a
 * signed CDN URL, so another mock instance with the same repos can serve it. */
static enum MHD_Result serve_cdn(mock_hub *h, struct MHD_Connection *c, size_t li,
                                 const char *method, const char *rest) {
    char sha[65], commit[41];
    if (strlen(rest) < 64 + 1 + 40 + 2 || rest[64] != '/' || rest[105] != '/')
        return hub_error(h, c, li, 404, NULL, "NoSuchKey", NULL);
    memcpy(sha, rest, 64);
    sha[64] = '\0';
    memcpy(commit, rest + 65, 40);
    commit[40] = '\0';
    char path[1024];
    url_decode(rest + 106, strlen(rest + 106), path, sizeof path);
    const char *dir = NULL;
    for (size_t i = 0; i < h->n_repos && !dir; i++)
        for (size_t k = 0; k < 4 && h->repos[i].revs[k].name && !dir; k++)
            if (strcmp(h->repos[i].revs[k].commit, commit) == 0)
                dir = h->repos[i].revs[k].dir;
    char file[2048];
    snprintf(file, sizeof file, "%s/%s", dir ? dir : "/nonexistent", path);
    size_t len = 0;
    char *data = dir && !strstr(path, "..") ? read_all(file, &len) : NULL;
    char actual[65] = "";
    if (data)
        sha256_hex(data, len, actual);
    if (!data || strcmp(actual, sha) != 0) {
        free(data);
        return hub_error(h, c, li, 404, NULL, "NoSuchKey", NULL);
    }
    char etag[80];
    snprintf(etag, sizeof etag, "\"%s\"", sha);
    return serve_content(h, c, li, method, data, len, path, etag, NULL);
}

static enum MHD_Result serve_resolve(mock_hub *h, struct MHD_Connection *c, size_t li,
                                     const char *method, const char *url) {
    const char *res = strstr(url, "/resolve/");
    if (!res)
        return hub_error(h, c, li, 404, NULL, "Not Found", NULL);
    /* raw_*: as sent (quoted), for Locations; the others decoded. */
    char id[256], rev[256], path[512], raw_rev[512], raw_path[1024];
    url_decode(url + 1, (size_t)(res - url - 1), id, sizeof id);
    const char *rest = res + 9;
    const char *slash = strchr(rest, '/');
    if (!slash)
        return hub_error(h, c, li, 404, NULL, "Not Found", NULL);
    snprintf(raw_rev, sizeof raw_rev, "%.*s", (int)(slash - rest), rest);
    snprintf(raw_path, sizeof raw_path, "%s", slash + 1);
    url_decode(raw_rev, strlen(raw_rev), rev, sizeof rev);
    url_decode(raw_path, strlen(raw_path), path, sizeof path);

    const mock_repo *repo = NULL;
    for (size_t i = 0; i < h->n_repos && !repo; i++)
        if (strcmp(h->repos[i].id, id) == 0)
            repo = &h->repos[i];
    if (!repo)
        return hub_error(h, c, li, 404, "RepoNotFound", "Repository not found", NULL);
    if (repo->renamed_to) {
        char loc[2048], target[2048];
        snprintf(target, sizeof target, "/%s/resolve/%s/%s", repo->renamed_to, raw_rev, raw_path);
        if (repo->redirect == MOCK_REDIRECT_PATH_RELATIVE)
            relative_ref(url, target, loc, sizeof loc);
        else
            snprintf(loc, sizeof loc, "%s", target);
        struct MHD_Response *r = text_response("Temporary Redirect");
        MHD_add_response_header(r, "Location", loc);
        return send_and_log(h, c, 307, r, li);
    }
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    char want[256] = "", weak[256] = "";
    if (h->token)
        snprintf(want, sizeof want, "Bearer %s", h->token);
    if (h->weak_token)
        snprintf(weak, sizeof weak, "Bearer %s", h->weak_token);
    bool good = auth && want[0] && strcmp(auth, want) == 0;
    bool weak_ok = auth && weak[0] && strcmp(auth, weak) == 0;
    if (repo->access == MOCK_PRIVATE && !good)
        return hub_error(h, c, li, 401, "RepoNotFound", "Invalid username or password.", NULL);
    if (repo->access == MOCK_GATED && !good) {
        char msg[1024];
        if (weak_ok) {
            snprintf(msg, sizeof msg,
                     "Access to model %s is restricted and you are not in the authorized list. "
                     "Visit https://huggingface.co/%s to ask for access.",
                     id, id);
            return hub_error(h, c, li, 403, "GatedRepo", msg, NULL);
        }
        snprintf(msg, sizeof msg,
                 "Access to model %s is restricted. You must have access to it and be "
                 "authenticated to access it. Please log in.",
                 id);
        return hub_error(h, c, li, 401, "GatedRepo", msg, NULL);
    }
    const mock_rev *rv = NULL;
    for (size_t i = 0; i < 4 && repo->revs[i].name && !rv; i++)
        if (strcmp(repo->revs[i].name, rev) == 0 || strcmp(repo->revs[i].commit, rev) == 0)
            rv = &repo->revs[i];
    if (!rv) {
        char msg[512];
        snprintf(msg, sizeof msg, "Invalid rev id: %s", rev);
        return hub_error(h, c, li, 404, "RevisionNotFound", msg, NULL);
    }
    char file[2048];
    snprintf(file, sizeof file, "%s/%s", rv->dir, path);
    struct stat sb;
    if (strstr(path, "..") || stat(file, &sb) != 0 || !S_ISREG(sb.st_mode))
        return hub_error(h, c, li, 404, "EntryNotFound", "Entry not found", rv->commit);
    size_t len;
    char *data = read_all(file, &len);
    if (!data)
        return hub_error(h, c, li, 500, NULL, "Internal Error", NULL);

    bool lfs = ends_with(path, ".safetensors") || ends_with(path, ".bin");
    if (lfs) {
        char hex[65];
        sha256_hex(data, len, hex);
        free(data);
        char loc[2048], linked[80], size[32];
        pthread_mutex_lock(&h->mu);
        snprintf(loc, sizeof loc, "%s/cdn/%s/%s/%s", h->cdn[0] ? h->cdn : h->url, hex, rv->commit,
                 raw_path);
        pthread_mutex_unlock(&h->mu);
        snprintf(linked, sizeof linked, "\"%s\"", hex);
        snprintf(size, sizeof size, "%zu", len);
        struct MHD_Response *r = text_response("Found. Redirecting");
        MHD_add_response_header(r, "Location", loc);
        MHD_add_response_header(r, "X-Linked-Etag", linked);
        MHD_add_response_header(r, "X-Linked-Size", size);
        MHD_add_response_header(r, "X-Repo-Commit", rv->commit);
        /* The pointer's own ETag: what a client must NOT use as the blob name. */
        MHD_add_response_header(r, "ETag", "\"0123456789abcdef0123456789abcdef01234567\"");
        return send_and_log(h, c, 302, r, li);
    }
    ember_sha1 s1;
    uint8_t d1[20];
    char hex1[41], head[32];
    int hl = snprintf(head, sizeof head, "blob %zu", len);
    ember_sha1_init(&s1);
    ember_sha1_update(&s1, head, (size_t)hl + 1);
    ember_sha1_update(&s1, data, len);
    ember_sha1_final(&s1, d1);
    ember_hub_hex(d1, 20, hex1);
    char etag[48];
    snprintf(etag, sizeof etag, "\"%s\"", hex1);
    return serve_content(h, c, li, method, data, len, path, etag, rv->commit);
}

static void copy_header(struct MHD_Connection *c, const char *name, char *dst, size_t cap) {
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    snprintf(dst, cap, "%s", v ? v : "");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **req_cls) {
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    mock_hub *h = cls;
    mock_request rq = {0};
    snprintf(rq.method, sizeof rq.method, "%s", method);
    snprintf(rq.url, sizeof rq.url, "%s", url);
    /* Escapes logged in one case (libcurl sends "%c3", Python "%C3"). */
    for (char *p = rq.url; (p = strchr(p, '%')) != NULL; p++)
        for (int k = 1; k <= 2 && p[k]; k++)
            p[k] = (char)toupper((unsigned char)p[k]);
    copy_header(c, "Range", rq.range, sizeof rq.range);
    copy_header(c, "Authorization", rq.auth, sizeof rq.auth);
    copy_header(c, "User-Agent", rq.user_agent, sizeof rq.user_agent);
    copy_header(c, "Accept-Encoding", rq.accept_encoding, sizeof rq.accept_encoding);
    pthread_mutex_lock(&h->mu);
    size_t li = h->n_log;
    if (h->n_log < MOCK_LOG_MAX)
        h->log[h->n_log++] = rq;
    h->total++;
    pthread_mutex_unlock(&h->mu);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return hub_error(h, c, li, 405, NULL, "Method Not Allowed", NULL);
    pthread_mutex_lock(&h->mu);
    int delay = strcmp(method, "HEAD") == 0 ? h->head_delay_ms : 0;
    pthread_mutex_unlock(&h->mu);
    for (int waited = 0; waited < delay && !h->stopping; waited += 20) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (strncmp(url, "/cdn/", 5) == 0)
        return serve_cdn(h, c, li, method, url + 5);
    return serve_resolve(h, c, li, method, url);
}

/* ---- lifecycle and inspection ------------------------------------------------------ */

mock_hub *mock_hub_start(const mock_repo *repos, size_t n_repos, const char *token,
                         const char *weak_token) {
    mock_hub *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->repos = repos;
    h->n_repos = n_repos;
    h->token = token;
    h->weak_token = weak_token;
    pthread_mutex_init(&h->mu, NULL);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                                 0, NULL, NULL, handler, h, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)10, MHD_OPTION_UNESCAPE_CALLBACK, keep_raw, NULL,
                                 MHD_OPTION_END);
    if (!h->daemon) {
        pthread_mutex_destroy(&h->mu);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(h->url, sizeof h->url, "http://127.0.0.1:%u", info ? (unsigned)info->port : 0u);
    return h;
}

void mock_hub_stop(mock_hub *h) {
    if (!h)
        return;
    h->stopping = 1;
    MHD_stop_daemon(h->daemon);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

const char *mock_hub_url(const mock_hub *h) { return h->url; }

void mock_hub_set_cdn(mock_hub *h, const char *base_url) {
    pthread_mutex_lock(&h->mu);
    snprintf(h->cdn, sizeof h->cdn, "%s", base_url ? base_url : "");
    pthread_mutex_unlock(&h->mu);
}

void mock_hub_cut(mock_hub *h, const char *file, int64_t after, int times) {
    mock_hub_stall(h, file, after, 0, times);
}

void mock_hub_stall(mock_hub *h, const char *file, int64_t after, int stall_ms, int times) {
    pthread_mutex_lock(&h->mu);
    snprintf(h->cut.file, sizeof h->cut.file, "%s", file);
    h->cut.after = after;
    h->cut.stall_ms = stall_ms;
    h->cut.times = times;
    pthread_mutex_unlock(&h->mu);
}

void mock_hub_corrupt(mock_hub *h, const char *file) {
    pthread_mutex_lock(&h->mu);
    snprintf(h->corrupt, sizeof h->corrupt, "%s", file ? file : "");
    pthread_mutex_unlock(&h->mu);
}

void mock_hub_ignore_range(mock_hub *h, bool on) {
    pthread_mutex_lock(&h->mu);
    h->ignore_range = on;
    pthread_mutex_unlock(&h->mu);
}

void mock_hub_delay_head(mock_hub *h, int ms) {
    pthread_mutex_lock(&h->mu);
    h->head_delay_ms = ms;
    pthread_mutex_unlock(&h->mu);
}

static bool matches(const mock_request *r, const char *method, const char *url_part) {
    return (!method || strcmp(r->method, method) == 0) && (!url_part || strstr(r->url, url_part));
}

size_t mock_hub_count(mock_hub *h, const char *method, const char *url_part) {
    size_t n = 0;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->n_log; i++)
        n += matches(&h->log[i], method, url_part);
    pthread_mutex_unlock(&h->mu);
    return n;
}

bool mock_hub_last(mock_hub *h, const char *method, const char *url_part, mock_request *out) {
    bool found = false;
    pthread_mutex_lock(&h->mu);
    for (size_t i = h->n_log; i-- > 0 && !found;)
        if (matches(&h->log[i], method, url_part)) {
            *out = h->log[i];
            found = true;
        }
    pthread_mutex_unlock(&h->mu);
    return found;
}

size_t mock_hub_total(mock_hub *h) {
    pthread_mutex_lock(&h->mu);
    size_t n = h->total;
    pthread_mutex_unlock(&h->mu);
    return n;
}

void mock_hub_clear_log(mock_hub *h) {
    pthread_mutex_lock(&h->mu);
    h->n_log = 0;
    h->total = 0;
    pthread_mutex_unlock(&h->mu);
}
