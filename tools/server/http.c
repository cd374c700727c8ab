/*
 * http.c — libmicrohttpd glue: routes, auth, limits, the suspend/resume
 * handshake with the batcher, and the per-request log line and metrics.
 *
 * Threading: MHD runs a small pool of event-loop threads (epoll). They read
 * bodies, parse and tokenize (api.c) and write responses, but never wait for
 * the model: an embedding request suspends its connection, its job goes to
 * the batcher, and the worker resumes the connection when the vectors are
 * there. Thousands of waiting clients therefore cost no threads.
 *
 * Limits, checked as early as possible:
 *   - route, method (405 + Allow) and API key (401) on the request headers;
 *   - draining (503 + Connection: close), --max-concurrent admission slots
 *     (503 + Retry-After) and Content-Length > --max-body-bytes (413) before
 *     a byte of the body is read, so hostile sizes cost nothing;
 *   - bodies without Content-Length (chunked) are counted as they arrive and
 *     over the limit the rest is discarded unread-into-memory, then 413;
 *   - all buffered bodies together stay under --max-pending-bytes (503);
 *   - every request must arrive whole, headers and body, within
 *     --request-timeout of the moment its connection was ready for it
 *     (accepted, or the previous answer sent plus --idle-timeout): an
 *     absolute deadline per connection, enforced by a reaper thread that
 *     shuts the socket down, so bytes trickled slower than --idle-timeout
 *     (which MHD resets on every byte) cannot hold a connection forever;
 *   - --max-connections connections may be reading a request; MHD accepts a
 *     reserve above that, and a connection arriving over the limit evicts
 *     the oldest one still reading its request (a slow client can cost
 *     others a reconnect, never /health its answer); headers beyond MHD's
 *     32 KiB connection memory get 431 from MHD itself;
 *   - framing is unambiguous: several Content-Length headers that differ, or
 *     Content-Length together with Transfer-Encoding, are 400 (smuggling);
 *   - an error decided mid-body (a chunked body over --max-body-bytes, the
 *     pending-bytes budget) is answered at once: MHD 0.9 cannot queue a
 *     response while a body is being read, so the answer is written on the
 *     socket directly with Connection: close, and the rest of the body is
 *     discarded for at most a second before the socket is shut.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

/* One per TCP connection (MHD's socket context): the absolute deadline of
 * the request it is reading. The list is ordered by accept time. */
typedef struct conn_track {
    struct conn_track *prev, *next;
    struct srv_http *h;
    MHD_socket fd;
    double deadline; /* 0: none (the request is complete; the model has it) */
    bool shut;       /* shut down by us: MHD closes it next */
} conn_track;

struct srv_http {
    struct MHD_Daemon *daemon;
    srv_state *st;
    pthread_mutex_t mu; /* the list; held across shutdown() so fds are not reused */
    conn_track *head, *tail;
    int64_t n_conns;
    pthread_t reaper;
    bool reaper_started;
    atomic_int stop;
    atomic_llong timed_out, evicted;
};

#define LINGER_S 1.0 /* after an early answer, how long the rest of a body is read */

typedef struct route_def {
    const char *path;
    srv_route metric;
    bool post;
    bool auth; /* needs the API key when one is set */
} route_def;

/* The POST routes of tei.c, indexed by SRV_TEI_* - 1 (POST / is /embed or
 * /rerank by model type). */
static const route_def k_tei_routes[] = {
    {"/", RT_TEI, true, true},         {"/rerank", RT_TEI, true, true},
    {"/tokenize", RT_TEI, true, true}, {"/decode", RT_TEI, true, true},
    {"/similarity", RT_TEI, true, true}, {"/embed_all", RT_TEI, true, true},
};

/* Health, readiness and metrics stay open for probes and scrapers (as TEI). */
static const route_def k_routes[] = {
    {"/v1/embeddings", RT_OPENAI, true, true},
    {"/embeddings", RT_OPENAI, true, true},
    {"/embed", RT_TEI, true, true},
    {"/info", RT_INFO, false, true},
    {"/v1/models", RT_MODELS, false, true},
    {"/health", RT_HEALTH, false, false},
    {"/ping", RT_HEALTH, false, false},
    {"/", RT_HEALTH, false, false},
    {"/ready", RT_READY, false, false},
    {"/metrics", RT_METRICS, false, false},
};

typedef struct req {
    srv_state *st;
    struct MHD_Connection *conn;
    const route_def *def;
    srv_route route;
    srv_api api; /* shape of error bodies */
    double t0;
    int status;  /* 0 until answered */
    bool responded;
    char method[12];
    char path[128];
    char remote[64];
    /* body */
    char *body;
    size_t len, cap;
    int64_t reserved; /* bytes counted in metrics->pending_bytes */
    bool has_slot;
    /* embedding */
    srv_job *job;
    srv_embed_opts opts;
    pthread_mutex_t mu; /* orders suspend (MHD thread) before resume (worker) */
    bool job_done, suspended;
    conn_track *track;
    bool raw_answered; /* answered on the socket directly: close after the body */
} req;

/* ---- connection deadlines ---- */

static void set_deadline(conn_track *t, double deadline) {
    if (!t)
        return;
    pthread_mutex_lock(&t->h->mu);
    t->deadline = deadline;
    pthread_mutex_unlock(&t->h->mu);
}

/* Under h->mu: MHD closes a socket only after notifying us, so fd is ours. */
static void shut_locked(conn_track *t) {
    if (!t->shut && t->fd != MHD_INVALID_SOCKET) {
        shutdown(t->fd, SHUT_RDWR); /* MHD sees EOF/error and closes it */
        t->shut = true;
    }
}

static void notify_conn(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode code) {
    srv_http *h = cls;
    const srv_config *cfg = h->st->cfg;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_track *t = calloc(1, sizeof *t);
        *socket_context = t;
        if (!t)
            return;
        t->h = h;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        t->fd = ci ? ci->connect_fd : MHD_INVALID_SOCKET;
        t->deadline = srv_now() + cfg->request_timeout_s;
        pthread_mutex_lock(&h->mu);
        t->prev = h->tail;
        if (h->tail)
            h->tail->next = t;
        else
            h->head = t;
        h->tail = t;
        h->n_conns++;
        if (h->n_conns > cfg->max_connections) {
            /* over the limit: the oldest connection still reading a request
             * makes room (the reserve holds this one meanwhile) */
            for (conn_track *o = h->head; o && o != t; o = o->next)
                if (o->deadline > 0 && !o->shut) {
                    shut_locked(o);
                    atomic_fetch_add(&h->evicted, 1);
                    break;
                }
        }
        pthread_mutex_unlock(&h->mu);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_track *t = *socket_context;
        *socket_context = NULL;
        if (!t)
            return;
        pthread_mutex_lock(&h->mu);
        if (t->prev)
            t->prev->next = t->next;
        else
            h->head = t->next;
        if (t->next)
            t->next->prev = t->prev;
        else
            h->tail = t->prev;
        h->n_conns--;
        pthread_mutex_unlock(&h->mu);
        free(t);
    }
}

static void *reaper_main(void *arg) {
    srv_http *h = arg;
    while (!atomic_load(&h->stop)) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        double now = srv_now();
        pthread_mutex_lock(&h->mu);
        for (conn_track *t = h->head; t; t = t->next)
            if (t->deadline > 0 && now > t->deadline && !t->shut) {
                shut_locked(t);
                atomic_fetch_add(&h->timed_out, 1);
            }
        pthread_mutex_unlock(&h->mu);
    }
    return NULL;
}

/* ---- responses ---- */

static enum MHD_Result respond(req *r, int status, sbuf *body, const char *content_type,
                               const char *h1, const char *v1) {
    size_t len = 0;
    char *data = sb_take(body, &len);
    struct MHD_Response *resp;
    if (data) {
        resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    } else { /* out of memory building the body */
        static const char oom[] = "{\"error\":\"out of memory\",\"error_type\":\"Backend\"}";
        status = 500;
        content_type = "application/json";
        resp = MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (h1)
        MHD_add_response_header(resp, h1, v1);
    if (atomic_load(&r->st->stopping))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned int)status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    r->responded = true;
    return ret;
}

static enum MHD_Result respond_error(req *r, const srv_error *e) {
    sbuf b = {0};
    srv_render_error(r->api, e, &b);
    const char *h = NULL, *v = NULL;
    if (e->status == 401) {
        h = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
        v = "Bearer";
    } else if (e->status == 503) {
        h = MHD_HTTP_HEADER_RETRY_AFTER;
        v = "1";
    } else if (e->status == 405) {
        h = MHD_HTTP_HEADER_ALLOW;
        v = r->def && r->def->post ? "POST" : "GET, HEAD";
    }
    return respond(r, e->status, &b, "application/json", h, v);
}

/* An answer decided while the body is still arriving. MHD 0.9 refuses to
 * queue a response then, and waiting for the end of the body would let a
 * client announcing a huge chunk hold the connection until the timeout. So
 * the answer is written on the socket directly (nothing of this request has
 * been written yet: MHD reads a request only after the previous answer is
 * sent), the rest of the body is read and dropped for LINGER_S so the client
 * is not reset before it reads the answer, then the socket is shut. */
static void answer_raw(req *r, const srv_error *e) {
    sbuf b = {0};
    srv_render_error(r->api, e, &b);
    sbuf msg = {0};
    const char *reason = e->status == 413 ? "Payload Too Large"
                         : e->status == 503 ? "Service Unavailable"
                         : e->status == 408 ? "Request Timeout"
                                            : "Bad Request";
    sb_printf(&msg,
              "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
              "Connection: close\r\n%s\r\n",
              e->status, reason, b.len, e->status == 503 ? "Retry-After: 1\r\n" : "");
    sb_put(&msg, b.data ? b.data : "", b.len);
    r->status = e->status;
    r->responded = true;
    r->raw_answered = true;
    if (r->track && !msg.oom) {
        pthread_mutex_lock(&r->track->h->mu);
        if (!r->track->shut && r->track->fd != MHD_INVALID_SOCKET) {
            size_t off = 0;
            while (off < msg.len) { /* a few hundred bytes: the send buffer is empty */
                ssize_t k = send(r->track->fd, msg.data + off, msg.len - off, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                    continue;
                if (k <= 0)
                    break;
                off += (size_t)k;
            }
        }
        r->track->deadline = srv_now() + LINGER_S;
        pthread_mutex_unlock(&r->track->h->mu);
    }
    sb_free(&msg);
    sb_free(&b);
}

static enum MHD_Result fail(req *r, int status, const char *type, const char *msg) {
    srv_error e;
    srv_error_set(&e, status, type, "%s", msg);
    return respond_error(r, &e);
}

/* ---- bookkeeping ---- */

static bool reserve_bytes(req *r, int64_t n) {
    srv_metrics *m = r->st->metrics;
    int64_t was = atomic_fetch_add(&m->pending_bytes, n);
    if (was + n > r->st->cfg->max_pending_bytes) {
        atomic_fetch_sub(&m->pending_bytes, n);
        return false;
    }
    r->reserved += n;
    return true;
}

static void release_body(req *r) {
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    atomic_fetch_sub(&r->st->metrics->pending_bytes, r->reserved);
    r->reserved = 0;
}

static void log_request(req *r, int status, double seconds) {
    const srv_config *cfg = r->st->cfg;
    if (cfg->quiet)
        return;
    if (!cfg->log_probes && status >= 200 && status < 300 &&
        (r->route == RT_HEALTH || r->route == RT_READY || r->route == RT_METRICS))
        return;
    char ts[40];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t k = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + k, sizeof ts - k, ".%03ldZ", now.tv_nsec / 1000000);
    long long inputs = r->job ? (long long)r->job->n : 0;
    long long tokens = r->job ? (long long)r->job->n_tokens : 0;
    sbuf b = {0};
    if (cfg->log_format == LOG_JSON) {
        sb_printf(&b, "{\"time\":\"%s\",\"remote\":\"%s\",\"method\":", ts, r->remote);
        sb_json_str(&b, r->method, strlen(r->method));
        sb_puts(&b, ",\"path\":");
        sb_json_str(&b, r->path, strlen(r->path));
        sb_printf(&b, ",\"status\":%d,\"inputs\":%lld,\"tokens\":%lld,\"latency_ms\":%.3f}\n",
                  status, inputs, tokens, seconds * 1e3);
    } else {
        sb_printf(&b, "%s %s %s %s %d inputs=%lld tokens=%lld latency_ms=%.3f\n", ts, r->remote,
                  r->method, r->path, status, inputs, tokens, seconds * 1e3);
    }
    if (!b.oom && b.len) /* one write: lines from many threads do not interleave */
        (void)!write(STDERR_FILENO, b.data, b.len);
    sb_free(&b);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    (void)c;
    srv_state *st = cls;
    req *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    double dt = srv_now() - r->t0;
    int status = r->status;
    /* a kept-alive connection waits (MHD's --idle-timeout) then must send
     * its next request whole within --request-timeout */
    if (r->track && !r->raw_answered)
        set_deadline(r->track,
                     srv_now() + st->cfg->idle_timeout_s + st->cfg->request_timeout_s);
    if (!status) /* closed without an answer: timed out (idle or slow sender) or by the client */
        status = toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? 408 : 499;
    srv_metrics_count(st->metrics, r->route, status);
    if (r->responded)
        srv_hist_observe(&st->metrics->latency[r->route], dt);
    log_request(r, status, dt);
    release_body(r);
    if (r->has_slot)
        atomic_fetch_sub(&st->metrics->in_flight, 1);
    /* a suspended connection is never completed, so the worker is done with the job */
    srv_job_free(r->job);
    srv_opts_free(&r->opts);
    pthread_mutex_destroy(&r->mu);
    free(r);
    atomic_fetch_sub(&st->open_requests, 1);
}

/* ---- request steps ---- */

static bool authorized(req *r) {
    const char *key = r->st->cfg->api_key;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    size_t a = strlen(h), b = strlen(key);
    /* compare in time independent of where they differ */
    unsigned char diff = (unsigned char)(a != b);
    for (size_t i = 0; i < b; i++)
        diff |= (unsigned char)(key[i] ^ (i < a ? h[i] : 0));
    return diff == 0;
}

static enum MHD_Result answer_get(req *r) {
    srv_state *st = r->st;
    sbuf b = {0};
    switch (r->route) {
    case RT_HEALTH:
        if (!atomic_load(&st->healthy))
            return fail(r, 503, "Unhealthy", "unhealthy: the last embedding call failed");
        sb_puts(&b, "{\"status\":\"ok\"}");
        return respond(r, 200, &b, "application/json", NULL, NULL);
    case RT_READY:
        if (atomic_load(&st->draining))
            return fail(r, 503, "Unhealthy", "draining: the server is shutting down");
        sb_puts(&b, "{\"status\":\"ready\"}");
        return respond(r, 200, &b, "application/json", NULL, NULL);
    case RT_METRICS:
        srv_metrics_render(st->metrics, &b, st->cfg->served_name, !atomic_load(&st->draining),
                           atomic_load(&st->healthy), srv_http_connections(st->http));
        return respond(r, 200, &b, "text/plain; version=0.0.4; charset=utf-8", NULL, NULL);
    case RT_INFO:
        srv_render_info(st->sm, st->cfg, &b);
        return respond(r, 200, &b, "application/json", NULL, NULL);
    case RT_MODELS:
        srv_render_models(st->cfg, st->metrics->start_time, &b);
        return respond(r, 200, &b, "application/json", NULL, NULL);
    default:
        return fail(r, 404, "NotFound", "not found");
    }
}

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value) {
    (void)kind;
    srv_framing_add(cls, key, value);
    return MHD_YES;
}

static enum MHD_Result begin(req *r, const char *url, const char *method) {
    srv_state *st = r->st;
    const srv_config *cfg = st->cfg;
    /* a body whose length two parsers could read differently is refused
     * before routing: request smuggling through a proxy relies on it */
    srv_framing fr = {0, false, false, NULL};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_framing, &fr);
    srv_error ferr;
    if (!srv_framing_ok(&fr, &ferr)) {
        r->api = strncmp(url, "/v1/", 4) == 0 ? API_OPENAI : API_TEI;
        r->route = RT_OTHER;
        return respond_error(r, &ferr);
    }
    for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; i++)
        if (strcmp(url, k_routes[i].path) == 0)
            r->def = &k_routes[i];
    if (srv_tei_route(url) && strcmp(method, "POST") == 0)
        r->def = &k_tei_routes[srv_tei_route(url) - 1];
    r->api = strncmp(url, "/v1/", 4) == 0 || strcmp(url, "/embeddings") == 0 ? API_OPENAI : API_TEI;
    if (!r->def) {
        r->route = RT_OTHER;
        return fail(r, 404, "NotFound", "no such route (POST /v1/embeddings, POST /embed, GET "
                                        "/health, /ready, /info, /metrics, /v1/models)");
    }
    r->route = r->def->metric;
    bool is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (r->def->post ? strcmp(method, "POST") != 0 : !is_get)
        return fail(r, 405, "MethodNotAllowed", "method not allowed on this route");
    if (r->def->auth && cfg->api_key && !authorized(r))
        return fail(r, 401, "Unauthorized",
                    "missing or wrong API key (send the header Authorization: Bearer KEY)");
    if (!r->def->post) {
        set_deadline(r->track, 0);
        return answer_get(r);
    }

    if (atomic_load(&st->stopping))
        return fail(r, 503, "Unhealthy", "the server is shutting down");
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t length = -1;
    if (cl) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        length = (*end || v > (unsigned long long)INT64_MAX) ? INT64_MAX : (int64_t)v;
    }
    if (length > cfg->max_body_bytes) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body larger than %lld bytes (--max-body-bytes)",
                 (long long)cfg->max_body_bytes);
        return fail(r, 413, "Validation", msg);
    }
    if (atomic_fetch_add(&st->metrics->in_flight, 1) >= cfg->max_concurrent) {
        atomic_fetch_sub(&st->metrics->in_flight, 1);
        return fail(r, 503, "Overloaded", "model is overloaded: too many concurrent requests");
    }
    r->has_slot = true;
    if (length > 0) { /* the whole body in one allocation, counted before reading */
        if (!reserve_bytes(r, length + 1))
            return fail(r, 503, "Overloaded", "too many request bytes buffered; retry later");
        r->body = malloc((size_t)length + 1);
        if (!r->body)
            return fail(r, 503, "Overloaded", "out of memory for the request body");
        r->cap = (size_t)length + 1;
    }
    return MHD_YES;
}

static enum MHD_Result upload(req *r, const char *data, size_t n) {
    const srv_config *cfg = r->st->cfg;
    if (srv_now() - r->t0 > cfg->request_timeout_s) {
        r->status = 408; /* slow sender: close without reading more */
        return MHD_NO;
    }
    if ((int64_t)(r->len + n) > cfg->max_body_bytes) {
        srv_error e;
        srv_error_set(&e, 413, "Validation", "request body larger than %lld bytes (--max-body-bytes)",
                      (long long)cfg->max_body_bytes);
        release_body(r);
        answer_raw(r, &e);
        return MHD_YES;
    }
    if (r->len + n + 1 > r->cap) { /* chunked: grow, counting what is held */
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        if ((int64_t)cap > cfg->max_body_bytes + 1)
            cap = (size_t)cfg->max_body_bytes + 1;
        char *p = reserve_bytes(r, (int64_t)(cap - r->cap)) ? realloc(r->body, cap) : NULL;
        if (!p) {
            srv_error e;
            srv_error_set(&e, 503, "Overloaded", "too many request bytes buffered; retry later");
            release_body(r);
            answer_raw(r, &e);
            return MHD_YES;
        }
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return MHD_YES;
}

static enum MHD_Result dispatch(req *r) {
    srv_state *st = r->st;
    set_deadline(r->track, 0); /* the request is whole: no deadline while the model works */
    if (r->def >= k_tei_routes && r->def < k_tei_routes + sizeof k_tei_routes / sizeof *r->def) {
        sbuf tb = {0};
        int status = srv_tei_handle(st->sm, st->cfg, (int)(r->def - k_tei_routes) + 1, r->body,
                                    r->len, &tb);
        if (status >= 0) {
            release_body(r);
            return respond(r, status, &tb, "application/json", NULL, NULL);
        }
        sb_free(&tb);
    }
    srv_error err;
    srv_job *job = NULL;
    srv_api api = r->route == RT_OPENAI ? API_OPENAI : API_TEI;
    bool ok = srv_parse_embed(st->sm, st->cfg, api, r->body ? r->body : "", r->len, &r->opts, &job,
                              &err);
    release_body(r);
    if (!ok)
        return respond_error(r, &err);
    r->job = job;
    job->owner = r;
    srv_hist_observe(&st->metrics->request_inputs, (double)job->n);
    atomic_fetch_add(&st->metrics->truncated_total, (uint64_t)r->opts.n_truncated);
    /* counted before the check, so shutdown either sees the job or refuses it */
    atomic_fetch_add(&st->jobs_active, 1);
    if (atomic_load(&st->refuse_jobs)) {
        atomic_fetch_sub(&st->jobs_active, 1);
        return fail(r, 503, "Unhealthy", "the server is shutting down");
    }
    /* suspend before the job can finish, so the worker's resume always follows it */
    pthread_mutex_lock(&r->mu);
    MHD_suspend_connection(r->conn);
    r->suspended = true;
    pthread_mutex_unlock(&r->mu);
    srv_batcher_submit(st->batcher, job);
    return MHD_YES;
}

void srv_http_job_done(srv_job *job, void *user) {
    srv_state *st = user;
    req *r = job->owner;
    pthread_mutex_lock(&r->mu);
    r->job_done = true;
    if (r->suspended) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
    }
    pthread_mutex_unlock(&r->mu);
    /* after the resume: MHD_stop_daemon accepts connections being resumed */
    atomic_fetch_sub(&st->jobs_active, 1);
}

static enum MHD_Result resumed(req *r) {
    srv_state *st = r->st;
    pthread_mutex_lock(&r->mu);
    if (!r->job_done) { /* called early: wait for the worker again */
        MHD_suspend_connection(r->conn);
        r->suspended = true;
        pthread_mutex_unlock(&r->mu);
        return MHD_YES;
    }
    pthread_mutex_unlock(&r->mu);
    srv_job *job = r->job;
    if (job->status != EMBER_OK) {
        if (job->cancelled)
            return fail(r, 503, "Unhealthy", "the server is shutting down");
        if (job->status == EMBER_E_INTERNAL || job->status == EMBER_E_NOMEM)
            atomic_store(&st->healthy, 0);
        srv_error e;
        srv_error_set(&e, 500, "Backend", "embedding failed: %s", job->error);
        return respond_error(r, &e);
    }
    atomic_store(&st->healthy, 1);
    sbuf b = {0};
    if (!srv_render_embed(st->sm, st->cfg, &r->opts, job, &b)) {
        sb_free(&b);
        return fail(r, 500, "Backend", "out of memory writing the response");
    }
    return respond(r, 200, &b, "application/json", NULL, NULL);
}

static void copy_printable(char *dst, size_t cap, const char *src) {
    size_t i = 0;
    for (; src && src[i] && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = c > 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '?';
    }
    dst[i] = '\0';
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls) {
    (void)version;
    srv_state *st = cls;
    req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->st = st;
        r->conn = c;
        r->t0 = srv_now();
        pthread_mutex_init(&r->mu, NULL);
        copy_printable(r->method, sizeof r->method, method);
        copy_printable(r->path, sizeof r->path, url);
        snprintf(r->remote, sizeof r->remote, "-");
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            const struct sockaddr *sa = ci->client_addr;
            if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                          r->remote, sizeof r->remote);
            else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                          r->remote, sizeof r->remote);
        }
        const union MHD_ConnectionInfo *sc =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        r->track = sc ? sc->socket_context : NULL;
        atomic_fetch_add(&st->open_requests, 1);
        *con_cls = r;
        return begin(r, url, method);
    }
    if (r->raw_answered) { /* answered on the socket: drop the body, then close */
        if (*upload_data_size) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        return MHD_NO;
    }
    if (r->responded) { /* answered early: drop whatever body still comes */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->job)
        return resumed(r);
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return upload(r, upload_data, n);
    }
    return dispatch(r);
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap) {
    srv_state *st = cls;
    if (st->cfg->verbose < 1)
        return; /* hostile clients would otherwise fill the log */
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    fprintf(stderr, "ember serve: http: %s\n", line);
}

srv_http *srv_http_start(srv_state *st, int *port) {
    const srv_config *cfg = st->cfg;
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", cfg->port);
    int gai = getaddrinfo(cfg->host, portstr, &hints, &ai);
    if (gai != 0 || !ai) {
        fprintf(stderr, "ember serve: cannot resolve --host %s: %s\n", cfg->host, gai_strerror(gai));
        return NULL;
    }
    srv_http *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        return NULL;
    }
    h->st = st;
    pthread_mutex_init(&h->mu, NULL);
    /* room above --max-connections so a new client (a health probe) is
     * accepted while the oldest connection still reading is evicted */
    unsigned int reserve = (unsigned int)(cfg->max_connections / 8 + 4);
    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, handler, st, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        st, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)cfg->http_threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)cfg->max_connections + reserve, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)cfg->idle_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, completed, st,
        MHD_OPTION_NOTIFY_CONNECTION, notify_conn, h,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->daemon) {
        fprintf(stderr, "ember serve: cannot listen on %s:%d (in use, or not an address of this "
                        "machine?)\n",
                cfg->host, cfg->port);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return NULL;
    }
    if (pthread_create(&h->reaper, NULL, reaper_main, h) != 0) {
        fprintf(stderr, "ember serve: cannot start the connection reaper thread\n");
        MHD_stop_daemon(h->daemon);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return NULL;
    }
    h->reaper_started = true;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    *port = di ? di->port : cfg->port;
    return h;
}

void srv_http_quiesce(srv_http *h) {
    MHD_socket fd = MHD_quiesce_daemon(h->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

int64_t srv_http_connections(srv_http *h) {
    if (!h || !h->daemon)
        return 0;
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return di ? (int64_t)di->num_connections : 0;
}

void srv_http_stop(srv_http *h) {
    if (!h)
        return;
    atomic_store(&h->stop, 1);
    if (h->reaper_started)
        pthread_join(h->reaper, NULL);
    MHD_stop_daemon(h->daemon);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
