/*
 * http.c — talking to the hub with libcurl the way huggingface_hub's
 * file_download.py does: a HEAD on /{repo}/resolve/{revision}/{path} for the
 * metadata (X-Repo-Commit, X-Linked-Etag or ETag, X-Linked-Size or
 * Content-Length), following relative redirects (renamed repositories) but
 * not ones that name a host (the CDN location of an LFS file is where the GET
 * goes). URLs are built, compared by origin and resolved against a Location
 * with libcurl's URL API, response headers read with curl_easy_header(),
 * then a GET into blobs/{etag}.incomplete, resumed with a Range request,
 * checked against the announced size and the digest the ETag names, and
 * renamed into place only when it is whole and right.
 *
 * Timeouts follow huggingface_hub's: HF_HUB_ETAG_TIMEOUT (10 s) bounds the
 * connection and the HEAD, HF_HUB_DOWNLOAD_TIMEOUT (10 s) the connection of a
 * GET and any wait for the next byte of a transfer, so that nothing hangs. A transfer that
 * breaks is resumed a few times within the call, as http_get does; what is
 * left after that stays in .incomplete for the next run.
 */
#define _GNU_SOURCE
#include "hub.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

#define EMBER_HUB_MAX_HOPS 10     /* relative redirects followed by a HEAD      */
#define EMBER_HUB_ATTEMPTS 3      /* tries of one GET when the transfer breaks  */
#define EMBER_HUB_PROGRESS_S 0.1  /* at most this often to the progress callback */

struct ember_hub_http {
    const ember_hub_env *env;
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
};

/* What the client uses of the last response of a request. */
typedef struct resp_headers {
    long status;
    char repo_commit[64];
    char etag[160];
    char linked_etag[160];
    char linked_size[32];
    char content_length[32];
    char content_range[96];
    char error_code[64];
    char error_message[256];
    char location[2048];
} resp_headers;

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init;

static void curl_init_once(void) { g_curl_init = curl_global_init(CURL_GLOBAL_DEFAULT); }

ember_status ember_hub_http_new(const ember_hub_env *env, ember_hub_http **out) {
    *out = NULL;
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init != CURLE_OK)
        return ember_error(EMBER_E_NETWORK, "libcurl failed to initialise: %s",
                           curl_easy_strerror(g_curl_init));
    ember_hub_http *h = ember_calloc(1, sizeof *h, "hub connection");
    if (!h)
        return EMBER_E_NOMEM;
    h->env = env;
    h->curl = curl_easy_init();
    if (!h->curl) {
        free(h);
        return ember_error(EMBER_E_NOMEM, "libcurl could not create a handle");
    }
    *out = h;
    return EMBER_OK;
}

void ember_hub_http_free(ember_hub_http *h) {
    if (!h)
        return;
    curl_easy_cleanup(h->curl);
    free(h);
}

void ember_hub_meta_free(ember_hub_meta *m) {
    free(m->url);
    m->url = NULL;
}

/* ---- URLs ------------------------------------------------------------------ */

/* Appends `s` percent-encoded as urllib.parse.quote does (unreserved
 * characters kept, '/' kept only when `keep_slash`). curl_easy_escape encodes
 * one segment; CURLU_URLENCODE cannot serve here because it always keeps '/',
 * and a revision such as "refs/pr/1" must be one segment ("refs%2Fpr%2F1"). */
static ember_status append_quoted(ember_buf *b, const char *s, bool keep_slash) {
    for (;;) {
        size_t n = keep_slash ? strcspn(s, "/") : strlen(s);
        char *e = curl_easy_escape(NULL, s, (int)n);
        if (!e)
            return ember_error(EMBER_E_NOMEM, "out of memory quoting a URL");
        ember_status st = ember_buf_append(b, e, strlen(e));
        curl_free(e);
        if (st != EMBER_OK || s[n] == '\0')
            return st;
        EMBER_TRY(ember_buf_append(b, "/", 1));
        s += n + 1;
    }
}

/* A message for a CURLU failure on `url`; memory errors keep their status. */
static ember_status url_error(CURLUcode rc, const char *what, const char *url) {
    if (rc == CURLUE_OUT_OF_MEMORY)
        return ember_error(EMBER_E_NOMEM, "out of memory parsing a URL");
    return ember_error(EMBER_E_INVALID_ARGUMENT, "%s '%s' is not a usable URL: %s", what, url,
                       curl_url_strerror(rc));
}

/* hf_hub_url(): {endpoint}/{repo_id}/resolve/{quote(revision, safe="")}/{quote(path)}.
 * The endpoint is parsed by libcurl, so a mirror with a path prefix keeps it
 * and a query or fragment in HF_ENDPOINT is dropped rather than misplaced. */
ember_status ember_hub_resolve_url(const char *endpoint, const char *repo_id,
                                   const char *revision, const char *path, char **out) {
    *out = NULL;
    CURLU *u = curl_url();
    if (!u)
        return ember_error(EMBER_E_NOMEM, "out of memory");
    char *base = NULL, *got = NULL;
    ember_buf b = {0};
    ember_status st = EMBER_OK;
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, endpoint, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_get(u, CURLUPART_PATH, &base, 0);
    if (rc != CURLUE_OK) {
        st = url_error(rc, "HF_ENDPOINT", endpoint);
        goto out;
    }
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    if ((st = ember_buf_append(&b, base, bl)) != EMBER_OK ||
        (st = ember_buf_append(&b, "/", 1)) != EMBER_OK ||
        (st = append_quoted(&b, repo_id, true)) != EMBER_OK ||
        (st = ember_buf_append(&b, "/resolve/", 9)) != EMBER_OK ||
        (st = append_quoted(&b, revision, false)) != EMBER_OK ||
        (st = ember_buf_append(&b, "/", 1)) != EMBER_OK ||
        (st = append_quoted(&b, path, true)) != EMBER_OK ||
        (st = ember_buf_append(&b, "", 1)) != EMBER_OK)
        goto out;
    /* Already quoted: set without CURLU_URLENCODE so nothing is encoded twice. */
    rc = curl_url_set(u, CURLUPART_PATH, b.data, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_set(u, CURLUPART_QUERY, NULL, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_get(u, CURLUPART_URL, &got, 0);
    if (rc != CURLUE_OK) {
        st = url_error(rc, "the file URL under HF_ENDPOINT", endpoint);
        goto out;
    }
    *out = ember_strdup(got); /* callers free() it, not curl_free() */
    if (!*out)
        st = ember_error(EMBER_E_NOMEM, "out of memory");
out:
    curl_free(got);
    ember_buf_free(&b);
    curl_free(base);
    curl_url_cleanup(u);
    return st;
}

/* The parts of a URL that make its origin (RFC 6454), as libcurl parses
 * them: scheme and host lowercase-comparable, the port explicit even when it
 * is the scheme's default, so "https://h" and "https://H:443/x" agree. */
typedef struct origin {
    char *scheme, *host, *port;
} origin;

static void origin_free(origin *o) {
    curl_free(o->scheme);
    curl_free(o->host);
    curl_free(o->port);
}

static bool origin_of(const char *url, origin *o) {
    memset(o, 0, sizeof *o);
    CURLU *u = curl_url();
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &o->scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &o->host, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_PORT, &o->port, CURLU_DEFAULT_PORT) == CURLUE_OK;
    curl_url_cleanup(u);
    if (!ok)
        origin_free(o);
    return ok;
}

/* Whether `a` and `b` have the same origin. Anything that does not parse
 * counts as another origin, so a doubtful URL never receives the token. */
static bool same_origin(const char *a, const char *b) {
    origin oa, ob;
    if (!origin_of(a, &oa))
        return false;
    bool same = false;
    if (origin_of(b, &ob)) {
        same = strcasecmp(oa.scheme, ob.scheme) == 0 && strcasecmp(oa.host, ob.host) == 0 &&
               strcmp(oa.port, ob.port) == 0;
        origin_free(&ob);
    }
    origin_free(&oa);
    return same;
}

/* Whether a Location names a host of its own ("https://cdn/x", "//cdn/x"),
 * i.e. urlparse(location).netloc != "": huggingface_hub follows only
 * redirects without one. A scheme-relative "//host/x" names a host even
 * though it has no scheme. Whatever libcurl parses as a full URL has one. */
static bool names_host(const char *loc) {
    if (loc[0] == '/' && loc[1] == '/')
        return true;
    CURLU *u = curl_url();
    if (!u)
        return true; /* the safe answer: not followed with the token */
    bool absolute = curl_url_set(u, CURLUPART_URL, loc, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK;
    curl_url_cleanup(u);
    return absolute;
}

/* ---- response headers ------------------------------------------------------- */

/* Copies a value, or leaves the field empty when it does not fit. */
static void set_field(char *dst, size_t cap, const char *v, size_t n) {
    if (n < cap) {
        memcpy(dst, v, n);
        dst[n] = '\0';
    } else {
        dst[0] = '\0';
    }
}

/* Copies the value of header `name` of the last response (libcurl keeps
 * them; the headers of an earlier response of a followed redirect are not
 * mixed in) into dst. With several, the last one counts. The field is left
 * empty when the value does not fit (a truncated ETag or commit would be
 * wrong, an absent one is detected) unless `truncate` allows cutting it. */
static void header_value(CURL *c, const char *name, char *dst, size_t cap, bool truncate) {
    struct curl_header *hd;
    dst[0] = '\0';
    if (curl_easy_header(c, name, 0, CURLH_HEADER, -1, &hd) != CURLHE_OK)
        return;
    if (hd->amount > 1 &&
        curl_easy_header(c, name, hd->amount - 1, CURLH_HEADER, -1, &hd) != CURLHE_OK)
        return;
    size_t n = strlen(hd->value);
    set_field(dst, cap, hd->value, truncate ? EMBER_MIN(n, cap - 1) : n);
}

/* The headers of the last response that the hub client looks at. */
static void read_headers(CURL *c, resp_headers *r) {
    memset(r, 0, sizeof *r);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    header_value(c, "X-Repo-Commit", r->repo_commit, sizeof r->repo_commit, false);
    header_value(c, "ETag", r->etag, sizeof r->etag, false);
    header_value(c, "X-Linked-Etag", r->linked_etag, sizeof r->linked_etag, false);
    header_value(c, "X-Linked-Size", r->linked_size, sizeof r->linked_size, false);
    header_value(c, "Content-Length", r->content_length, sizeof r->content_length, false);
    header_value(c, "Content-Range", r->content_range, sizeof r->content_range, false);
    header_value(c, "X-Error-Code", r->error_code, sizeof r->error_code, false);
    header_value(c, "X-Error-Message", r->error_message, sizeof r->error_message, true);
    header_value(c, "Location", r->location, sizeof r->location, false);
}

static int64_t parse_size(const char *s) {
    if (!s[0])
        return -1;
    int64_t v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*c - '0');
    }
    return v;
}

/* _normalize_etag(): etag.lstrip("W/").strip('"') */
static void normalize_etag(const char *raw, char *out, size_t cap) {
    while (*raw == 'W' || *raw == '/')
        raw++;
    size_t n = strlen(raw);
    while (n && raw[0] == '"') {
        raw++;
        n--;
    }
    while (n && raw[n - 1] == '"')
        n--;
    set_field(out, cap, raw, n);
}

/* An ETag becomes a file name in blobs/: accept only what the hub sends. */
static bool etag_usable(const char *e) {
    size_t n = strlen(e);
    if (n == 0 || n > 128 || e[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((e[i] >= '0' && e[i] <= '9') || (e[i] >= 'a' && e[i] <= 'z') ||
              (e[i] >= 'A' && e[i] <= 'Z') || e[i] == '-' || e[i] == '_' || e[i] == '.'))
            return false;
    return true;
}

/* ---- requests ------------------------------------------------------------------ */

/* Options shared by HEAD and GET. `auth` says whether the token may go to
 * this URL (only to the endpoint's own origin, as huggingface_hub drops the
 * authorization header for a CDN). */
static ember_status setup(ember_hub_http *h, const char *url, bool auth,
                          struct curl_slist **list) {
    CURL *c = h->curl;
    curl_easy_reset(c); /* keeps the connection cache: one TCP/TLS session per host */
    h->errbuf[0] = '\0';
    *list = NULL;
    char *ua = ember_hub_strf("User-Agent: %s", h->env->user_agent);
    if (!ua)
        return EMBER_E_NOMEM;
    struct curl_slist *l = curl_slist_append(NULL, ua);
    free(ua);
    if (l) {
        struct curl_slist *l2 = curl_slist_append(l, "Accept-Encoding: identity");
        l = l2 ? l2 : (curl_slist_free_all(l), NULL);
    }
    if (l && auth && h->env->token) {
        char *a = ember_hub_strf("Authorization: Bearer %s", h->env->token);
        struct curl_slist *l2 = a ? curl_slist_append(l, a) : NULL;
        free(a);
        l = l2 ? l2 : (curl_slist_free_all(l), NULL);
    }
    if (!l)
        return ember_error(EMBER_E_NOMEM, "out of memory building request headers");
    *list = l;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    return EMBER_OK;
}

static const char *curl_text(ember_hub_http *h, CURLcode rc) {
    return h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
}

/* The absolute URL a 3xx response points to, or NULL: libcurl resolves the
 * Location against the request URL (RFC 3986: "../x/y", "/a/b",
 * "//host/p", full URLs), which CURLINFO_REDIRECT_URL gives without
 * following it. EMBER_E_NOMEM only. */
static ember_status redirect_target(ember_hub_http *h, const resp_headers *r, char **out) {
    *out = NULL;
    char *where = NULL;
    if (r->status < 300 || r->status >= 400 || !r->location[0] ||
        curl_easy_getinfo(h->curl, CURLINFO_REDIRECT_URL, &where) != CURLE_OK || !where)
        return EMBER_OK;
    *out = ember_strdup(where); /* the handle's copy goes at the next request */
    return *out ? EMBER_OK : EMBER_E_NOMEM;
}

ember_status ember_hub_head(ember_hub_http *h, const char *repo_id, const char *revision,
                            const char *path, ember_hub_meta *meta) {
    memset(meta, 0, sizeof *meta);
    meta->size = -1;
    char *url;
    ember_status st = ember_hub_resolve_url(h->env->endpoint, repo_id, revision, path, &url);
    if (st != EMBER_OK)
        return st;
    resp_headers r = {0};
    CURLcode rc = CURLE_OK;
    char *target = NULL; /* where a redirect points, made absolute by libcurl */
    for (int hop = 0;; hop++) {
        struct curl_slist *list;
        if ((st = setup(h, url, same_origin(url, h->env->endpoint), &list)) != EMBER_OK)
            break;
        curl_easy_setopt(h->curl, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT, h->env->etag_timeout_s);
        curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, h->env->etag_timeout_s);
        rc = curl_easy_perform(h->curl);
        curl_slist_free_all(list);
        if (rc != CURLE_OK)
            break;
        read_headers(h->curl, &r);
        if ((st = redirect_target(h, &r, &target)) != EMBER_OK)
            break;
        /* _request_wrapper(follow_relative_redirects=True): a renamed repo
         * answers with a redirect to its new path on the same site. */
        if (target && !names_host(r.location) && same_origin(target, url) &&
            hop < EMBER_HUB_MAX_HOPS) {
            ember_log(EMBER_LOG_DEBUG, "%s redirects to %s", url, target);
            free(url);
            url = target;
            target = NULL;
            continue;
        }
        break;
    }
    if (st != EMBER_OK) {
        free(target);
        free(url);
        return st;
    }
    if (rc != CURLE_OK) {
        meta->answer = EMBER_HUB_UNREACHABLE;
        snprintf(meta->error_message, sizeof meta->error_message, "%s", curl_text(h, rc));
        free(url);
        return EMBER_OK;
    }
    meta->status = r.status;
    snprintf(meta->error_code, sizeof meta->error_code, "%s", r.error_code);
    snprintf(meta->error_message, sizeof meta->error_message, "%s", r.error_message);
    if (ember_hub_is_commit(r.repo_commit))
        memcpy(meta->commit, r.repo_commit, 41);

    if (r.status >= 200 && r.status < 400) {
        normalize_etag(r.linked_etag[0] ? r.linked_etag : r.etag, meta->etag, sizeof meta->etag);
        meta->size = parse_size(r.linked_size[0] ? r.linked_size : r.content_length);
        const char *missing = NULL;
        if (!meta->commit[0])
            missing = "no valid X-Repo-Commit header";
        else if (!etag_usable(meta->etag))
            missing = "no usable ETag";
        else if (meta->size < 0)
            missing = "no file size (X-Linked-Size or Content-Length)";
        else if (r.status >= 300 && !target)
            missing = "a redirect without a usable Location";
        if (missing) {
            meta->answer = EMBER_HUB_BAD_METADATA;
            snprintf(meta->error_message, sizeof meta->error_message,
                     "HTTP %ld with %s: the server does not answer like the Hugging Face hub "
                     "(check HF_ENDPOINT and proxy settings)",
                     r.status, missing);
        } else {
            meta->answer = EMBER_HUB_FOUND;
            meta->url = ember_strdup(r.status >= 300 ? target : url);
            if (!meta->url)
                st = EMBER_E_NOMEM;
        }
    } else if (r.status == 401 || r.status == 403) {
        meta->answer = EMBER_HUB_AUTH;
    } else if (r.status == 404) {
        if (strcmp(r.error_code, "RevisionNotFound") == 0)
            meta->answer = EMBER_HUB_REVISION_NOT_FOUND;
        else if (strcmp(r.error_code, "RepoNotFound") == 0)
            meta->answer = EMBER_HUB_REPO_NOT_FOUND;
        else
            meta->answer = EMBER_HUB_ENTRY_NOT_FOUND;
    } else {
        meta->answer = EMBER_HUB_SERVER;
    }
    free(target);
    free(url);
    return st;
}

/* ---- downloads ------------------------------------------------------------------ */

typedef struct transfer {
    int fd;
    int64_t off;      /* bytes in the .incomplete file                       */
    int64_t size;     /* expected total                                     */
    int64_t got;      /* bytes received by this attempt                     */
    bool checked;     /* the status of this response was looked at          */
    bool restart;     /* the server ignored the Range: start again at 0     */
    bool fatal;       /* a local write failed or the server sent too much   */
    bool corrupt;     /* what was received cannot be resumed: drop it        */
    bool stalled;     /* no byte for download_timeout_s seconds             */
    double last_data; /* when the last byte (or the attempt) came           */
    long stall_s;
    ember_status err; /* status of the error recorded by the last attempt   */
    CURL *curl;
    ember_hub_digest *digest;
    const char *etag;
    const char *file;
    ember_hub_progress_fn progress;
    void *progress_user;
    double last_report;
} transfer;

static void report(transfer *t, bool force) {
    if (!t->progress)
        return;
    double now = ember_now();
    if (force || t->off == t->size || now - t->last_report >= EMBER_HUB_PROGRESS_S) {
        t->last_report = now;
        t->progress(t->file, t->off, t->size, t->progress_user);
    }
}

/* Hashes what the .incomplete file already holds, so the digest covers the
 * whole blob when the transfer continues after it. */
static ember_status hash_prefix(transfer *t) {
    ember_hub_digest_init(t->digest, t->etag, t->size);
    char buf[65536];
    for (int64_t pos = 0; pos < t->off;) {
        size_t want = (size_t)EMBER_MIN((int64_t)sizeof buf, t->off - pos);
        ssize_t r = pread(t->fd, buf, want, (off_t)pos);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return ember_error(EMBER_E_IO, "cannot read the partial download of %s: %s", t->file,
                               r < 0 ? strerror(errno) : "unexpected end of file");
        ember_hub_digest_update(t->digest, buf, (size_t)r);
        pos += r;
    }
    return EMBER_OK;
}

static ember_status truncate_all(transfer *t) {
    if (ftruncate(t->fd, 0) != 0 || lseek(t->fd, 0, SEEK_SET) != 0)
        return ember_error(EMBER_E_IO, "cannot truncate the partial download of %s: %s", t->file,
                           strerror(errno));
    t->off = 0;
    ember_hub_digest_init(t->digest, t->etag, t->size);
    return EMBER_OK;
}

/* Start of "bytes START-END/TOTAL", or -1. */
static int64_t content_range_start(const char *cr) {
    if (strncasecmp(cr, "bytes ", 6) != 0)
        return -1;
    char num[32];
    size_t n = strspn(cr + 6, "0123456789");
    if (n == 0 || n >= sizeof num)
        return -1;
    memcpy(num, cr + 6, n);
    num[n] = '\0';
    return parse_size(num);
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *user) {
    transfer *t = user;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    if (!t->checked) {
        t->checked = true;
        char range[96];
        header_value(t->curl, "Content-Range", range, sizeof range, false);
        if (status == 206) {
            if (content_range_start(range) != t->off) {
                t->restart = true;
                return 0;
            }
        } else if (status == 200) {
            /* The server ignored our Range (http_get does the same): the body
             * is the whole file, so what we had is dropped. */
            if (t->off > 0 && (t->err = truncate_all(t)) != EMBER_OK) {
                t->fatal = true;
                return 0;
            }
        }
    }
    if (status != 200 && status != 206)
        return n; /* an error page: not content, the status says what happened */
    if ((int64_t)n > t->size - t->off) {
        t->err = ember_error(EMBER_E_NETWORK,
                             "%s: the server sent more than the %lld bytes announced; the "
                             "download was discarded",
                             t->file, (long long)t->size);
        t->fatal = t->corrupt = true;
        return 0;
    }
    for (size_t done = 0; done < n;) {
        ssize_t w = write(t->fd, data + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            t->err = ember_error(EMBER_E_IO, "cannot write the download of %s: %s", t->file,
                                 w < 0 ? strerror(errno) : "no space");
            t->fatal = true;
            return 0;
        }
        done += (size_t)w;
    }
    ember_hub_digest_update(t->digest, data, n);
    t->off += (int64_t)n;
    t->got += (int64_t)n;
    t->last_data = ember_now();
    report(t, false);
    return n;
}

/* libcurl calls this at least once a second, data or not. Its own
 * LOW_SPEED_TIME averages speed over several seconds, so a stall after a
 * burst would go unnoticed for that long; time since the last byte is what
 * HF_HUB_DOWNLOAD_TIMEOUT means. */
static int xferinfo_cb(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    transfer *t = user;
    if (ember_now() - t->last_data > (double)t->stall_s) {
        t->stalled = true;
        return 1;
    }
    return 0;
}

typedef enum { GET_DONE, GET_RETRY, GET_FAILED } get_result;

/* One GET of the rest of the blob. On GET_FAILED an error is recorded. */
static get_result get_once(ember_hub_http *h, const char *url, transfer *t) {
    struct curl_slist *list;
    /* huggingface_hub drops the token when the content lives on another host
     * (a signed CDN URL); libcurl also never forwards it across hosts. */
    if (setup(h, url, same_origin(url, h->env->endpoint), &list) != EMBER_OK)
        return GET_FAILED;
    CURL *c = h->curl;
    char range[48];
    if (t->off > 0) {
        snprintf(range, sizeof range, "%lld-", (long long)t->off);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
    }
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, h->env->download_timeout_s);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    t->curl = c;
    t->checked = t->restart = t->fatal = t->stalled = false;
    t->got = 0;
    t->stall_s = h->env->download_timeout_s;
    t->last_data = ember_now();
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(list);
    resp_headers r;
    read_headers(c, &r);
    long status = r.status;
    get_result res = GET_FAILED;
    if (t->fatal) {
        res = GET_FAILED;
    } else if (t->restart) {
        ember_log(EMBER_LOG_DEBUG, "%s: unexpected Content-Range '%s', restarting", t->file,
                  r.content_range);
        res = (t->err = truncate_all(t)) == EMBER_OK ? GET_RETRY : GET_FAILED;
    } else if (rc == CURLE_OK && (status == 200 || status == 206)) {
        if (t->off == t->size) {
            res = GET_DONE;
        } else {
            t->err = ember_error(EMBER_E_NETWORK, "%s: the transfer ended after %lld of %lld bytes",
                                 t->file, (long long)t->off, (long long)t->size);
            res = GET_RETRY;
        }
    } else if (rc == CURLE_OK && status == 416) {
        /* Our partial file does not fit what the server has: start over. */
        res = (t->err = truncate_all(t)) == EMBER_OK ? GET_RETRY : GET_FAILED;
    } else if (rc == CURLE_OK && (status == 401 || status == 403)) {
        t->err = ember_error(EMBER_E_AUTH, "%s: the download was refused (HTTP %ld%s%s)", t->file,
                             status, r.error_message[0] ? ": " : "", r.error_message);
    } else if (rc == CURLE_OK && status == 404) {
        t->err = ember_error(EMBER_E_NOT_FOUND, "%s: the download location answered 404 (%s)",
                             t->file, url);
    } else if (rc == CURLE_OK) {
        t->err = ember_error(EMBER_E_NETWORK, "%s: the server answered HTTP %ld", t->file, status);
        res = (status >= 500 || status == 429) ? GET_RETRY : GET_FAILED;
    } else if (t->stalled) {
        t->err = ember_error(EMBER_E_NETWORK,
                             "%s: no data for %ld s (HF_HUB_DOWNLOAD_TIMEOUT) after %lld of %lld "
                             "bytes",
                             t->file, t->stall_s, (long long)t->off, (long long)t->size);
        res = GET_RETRY;
    } else {
        t->err = ember_error(EMBER_E_NETWORK, "%s: %s after %lld of %lld bytes", t->file,
                             curl_text(h, rc), (long long)t->off, (long long)t->size);
        res = GET_RETRY;
    }
    return res;
}

static void pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Downloads into `incomplete`; on success it holds the verified blob. */
static ember_status download(ember_hub_http *h, const char *incomplete, const char *path,
                             const ember_hub_meta *meta, ember_hub_progress_fn progress,
                             void *progress_user) {
    int fd = open(incomplete, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return ember_error(EMBER_E_IO, "cannot create %s: %s", incomplete, strerror(errno));
    ember_hub_digest digest;
    transfer t = {.fd = fd,
                  .size = meta->size,
                  .digest = &digest,
                  .etag = meta->etag,
                  .file = path,
                  .progress = progress,
                  .progress_user = progress_user};
    ember_status st = EMBER_OK;
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0) {
        st = ember_error(EMBER_E_IO, "cannot read %s: %s", incomplete, strerror(errno));
        goto out;
    }
    t.off = (int64_t)end;
    if (t.off > t.size) {
        if ((st = truncate_all(&t)) != EMBER_OK)
            goto out;
    } else if (t.off > 0) {
        ember_log(EMBER_LOG_INFO, "resuming %s from byte %lld of %lld", path, (long long)t.off,
                  (long long)t.size);
    }
    if ((st = hash_prefix(&t)) != EMBER_OK)
        goto out;
    report(&t, true);
    for (int attempt = 1; t.off < t.size; attempt++) {
        get_result r = get_once(h, meta->url, &t);
        if (r == GET_DONE)
            break;
        if (r == GET_FAILED || attempt >= EMBER_HUB_ATTEMPTS) {
            st = t.err != EMBER_OK ? t.err : EMBER_E_NETWORK;
            if (st == EMBER_E_NETWORK && !t.corrupt && t.off > 0) {
                char why[1024];
                snprintf(why, sizeof why, "%s", ember_last_error());
                ember_error(st, "%s; the %lld bytes received are kept in %s and the next run "
                                "resumes from there",
                            why, (long long)t.off, incomplete);
            }
            goto out;
        }
        ember_log(EMBER_LOG_WARN, "%s; resuming (attempt %d of %d)", ember_last_error(),
                  attempt + 1, EMBER_HUB_ATTEMPTS);
        pause_ms(200L * attempt);
    }
    report(&t, true);
    st = ember_hub_digest_check(&digest, meta->etag, path);
    if (st == EMBER_OK && fsync(fd) != 0)
        st = ember_error(EMBER_E_IO, "cannot flush %s: %s", incomplete, strerror(errno));
    if (st != EMBER_OK)
        t.corrupt = true;
out:
    /* A corrupt partial file would only fail again if resumed. */
    if (t.corrupt)
        unlink(incomplete);
    if (close(fd) != 0 && st == EMBER_OK)
        st = ember_error(EMBER_E_IO, "cannot write %s: %s", incomplete, strerror(errno));
    return st;
}

ember_status ember_hub_fetch(ember_hub_http *h, const char *cache_dir, const char *storage,
                             const char *commit, const char *path, const ember_hub_meta *meta,
                             ember_hub_progress_fn progress, void *progress_user) {
    char *blobs = ember_path_join(storage, "blobs");
    char *blob = blobs ? ember_hub_strf("%s/%s", blobs, meta->etag) : NULL;
    char *incomplete = blob ? ember_hub_strf("%s.incomplete", blob) : NULL;
    if (!incomplete) {
        free(blob);
        free(blobs);
        return ember_error(EMBER_E_NOMEM, "out of memory");
    }
    ember_status st = ember_hub_mkdirs(blobs);
    int lock = -1;
    if (st == EMBER_OK && !ember_file_exists(blob)) {
        lock = ember_hub_lock(cache_dir, storage, meta->etag);
        if (lock < 0)
            st = EMBER_E_IO;
    }
    /* Another process may have finished the blob while we waited for the lock. */
    if (st == EMBER_OK && !ember_file_exists(blob)) {
        st = download(h, incomplete, path, meta, progress, progress_user);
        if (st == EMBER_OK && rename(incomplete, blob) != 0)
            st = ember_error(EMBER_E_IO, "cannot rename %s to %s: %s", incomplete, blob,
                             strerror(errno));
    } else if (st == EMBER_OK && progress) {
        progress(path, meta->size, meta->size, progress_user);
    }
    ember_hub_unlock(lock);
    if (st == EMBER_OK)
        st = ember_hub_link_blob(storage, commit, path, meta->etag);
    free(incomplete);
    free(blob);
    free(blobs);
    return st;
}
