/*
 * server.h — the pieces of `ember serve`, the HTTP embedding server, and how
 * they meet.
 *
 *   serve.c    options, model loading and warm-up, signals, graceful drain
 *   http.c     libmicrohttpd glue: routing, auth, body limits, suspend/resume,
 *              per-request log line and metrics
 *   api.c      request bodies (OpenAI /v1/embeddings, TEI /embed) parsed and
 *              tokenized into jobs; JSON responses and error bodies
 *   batcher.c  the bounded queue and the workers (one ember_ctx each) that
 *              merge concurrent jobs into forward passes under a token budget
 *   metrics.c  counters and histograms, rendered in Prometheus text format
 *   sbuf.c     a growable byte buffer with JSON and base64 writers
 *
 * Request life: an MHD thread reads the body, parses and tokenizes it into a
 * srv_job (so bad input is answered without touching the queue), suspends the
 * connection and queues the job; a worker runs it (raw pooled vectors, merged
 * with whatever else is queued) and resumes the connection; the MHD thread
 * then normalizes/truncates per request and writes the JSON. The model is
 * shared; each worker owns its ember_ctx.
 */
#ifndef EMBER_SERVER_H
#define EMBER_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember.h"

/* ---- growable buffer (sbuf.c) ---- */

typedef struct sbuf {
    char *data;
    size_t len, cap;
    bool oom; /* an allocation failed: content is truncated, callers answer 500 */
} sbuf;

void sb_free(sbuf *b);
void sb_reserve(sbuf *b, size_t extra);
void sb_put(sbuf *b, const void *p, size_t n);
void sb_puts(sbuf *b, const char *s);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string (quoted, escaped); invalid UTF-8 becomes U+FFFD. */
void sb_json_str(sbuf *b, const char *s, size_t n);
/* A float that reads back to the same float32 (%.9g); null when not finite. */
void sb_json_float(sbuf *b, float v);
/* Standard base64 (RFC 4648, padded) of n bytes. */
void sb_base64(sbuf *b, const void *p, size_t n);
/* Takes the content (NUL-terminated) out of the buffer; NULL after oom. */
char *sb_take(sbuf *b, size_t *len);

/* ---- configuration (serve.c) ---- */

typedef enum { LOG_TEXT, LOG_JSON } srv_log_format;

typedef struct srv_config {
    const char *host;
    int port;                   /* 0: any free port (printed at start)        */
    const char *api_key;        /* NULL: no auth                              */
    const char *served_name;    /* model name in responses and /info          */
    const char *default_prompt; /* prompt name used when a request names none */
    int32_t max_batch_tokens;   /* tokens per forward pass and per merge      */
    int32_t max_batch_size;     /* sequences per forward pass and per merge   */
    int32_t max_client_batch;   /* inputs per request                         */
    int32_t max_concurrent;     /* admitted embedding requests at once        */
    int32_t threads;            /* compute threads per worker (0: auto)       */
    int32_t workers;            /* workers, each with its own ember_ctx       */
    int32_t http_threads;       /* libmicrohttpd thread pool                  */
    int32_t max_connections;
    int64_t max_body_bytes;
    int64_t max_pending_bytes;  /* request bodies buffered, all requests      */
    int32_t idle_timeout_s;     /* no byte received for this long: close      */
    int32_t request_timeout_s;  /* whole body not received by then: close     */
    int32_t drain_delay_s;      /* SIGTERM: not ready, still serving, so long */
    int32_t shutdown_timeout_s; /* then at most so long to finish in flight   */
    bool auto_truncate;         /* default of `truncate`                      */
    bool quiet;                 /* no per-request log lines                   */
    int verbose;                /* 1: library info and HTTP-level messages    */
    bool log_probes;            /* also log successful health/ready/metrics   */
    srv_log_format log_format;
} srv_config;

/* ---- metrics (metrics.c) ---- */

typedef enum {
    RT_OPENAI,
    RT_TEI,
    RT_INFO,
    RT_MODELS,
    RT_HEALTH,
    RT_READY,
    RT_METRICS,
    RT_OTHER,
    RT_COUNT
} srv_route;

#define SRV_HIST_MAX 20

typedef struct srv_hist {
    pthread_mutex_t mu;
    int n_bounds;
    const double *bounds;
    uint64_t counts[SRV_HIST_MAX + 1]; /* per bucket (not cumulative); last is +Inf */
    uint64_t count;
    double sum;
} srv_hist;

#define SRV_N_CODES 12

typedef struct srv_metrics {
    atomic_uint_fast64_t requests[RT_COUNT][SRV_N_CODES];
    srv_hist latency[RT_COUNT];  /* seconds, first handler call to completion */
    srv_hist queue_wait;         /* seconds a job waited for a worker         */
    srv_hist compute;            /* seconds per ember_embed_tokens call       */
    srv_hist batch_inputs;       /* sequences per call                        */
    srv_hist batch_tokens;       /* tokens per call                           */
    srv_hist request_inputs;     /* inputs per embedding request              */
    atomic_uint_fast64_t inputs_total, tokens_total, truncated_total;
    atomic_uint_fast64_t embed_calls_total, forward_passes_total, embed_errors_total;
    atomic_int_fast64_t in_flight;     /* admitted embedding requests          */
    atomic_int_fast64_t queue_depth;   /* jobs waiting for a worker            */
    atomic_int_fast64_t pending_bytes; /* request bytes buffered               */
    double start_time;                 /* unix seconds                         */
} srv_metrics;

void srv_metrics_init(srv_metrics *m);
void srv_metrics_free(srv_metrics *m);
void srv_hist_observe(srv_hist *h, double v);
void srv_metrics_count(srv_metrics *m, srv_route r, int status);
/* Prometheus text exposition of everything, plus the gauges given. */
void srv_metrics_render(srv_metrics *m, sbuf *out, const char *model_name, int ready,
                        int healthy, int64_t connections);
const char *srv_route_name(srv_route r);

/* ---- jobs and the batcher (batcher.c) ---- */

/* One embedding request's inputs as token ids, and the raw pooled vectors
 * (model dimension, not normalized) the worker writes back. */
typedef struct srv_job {
    int64_t n;          /* inputs                                   */
    int32_t *ids;       /* CSR: input i is ids[offsets[i]..offsets[i+1]) */
    int64_t *offsets;   /* n + 1                                    */
    int64_t n_tokens;
    float *vecs;        /* n x dim, written by the worker            */
    ember_status status;
    bool cancelled;     /* failed by shutdown before it ran           */
    char error[256];    /* ember_last_error() when status != OK      */
    double t_queued, t_started, t_done; /* monotonic seconds         */
    struct srv_job *next;
    void *owner;        /* the HTTP request, for the done callback   */
} srv_job;

typedef void (*srv_done_fn)(srv_job *job, void *user);

typedef struct srv_batcher srv_batcher;

/* Creates `cfg->workers` contexts (warming each up) and starts the workers.
 * `done` is called from a worker thread when a job is finished (ok or not).
 * Returns NULL after printing why. */
srv_batcher *srv_batcher_start(const ember_model *model, const srv_config *cfg,
                               srv_metrics *metrics, srv_done_fn done, void *user);
/* Queues a job (the caller has already admitted it). */
void srv_batcher_submit(srv_batcher *b, srv_job *job);
/* Fails every job still waiting (cancelled set) and returns how many; jobs
 * being computed finish normally. */
int srv_batcher_cancel_waiting(srv_batcher *b);
/* Stops the workers after the queue is empty, joins them, frees contexts. */
void srv_batcher_stop(srv_batcher *b);

/* ---- request parsing and responses (api.c) ---- */

typedef enum { API_OPENAI, API_TEI } srv_api;

/* What the server knows about its model, shared read-only by all threads. */
typedef struct srv_model {
    const ember_model *model;
    const ember_tokenizer *tok; /* NULL: token-id inputs only   */
    int32_t dim, max_tokens, vocab;
    int normalize;              /* the model's own default      */
    bool prompts_ok;            /* prompts can be used (include_prompt) */
    const char *default_prompt; /* text, or NULL                */
    ember_model_info info;
} srv_model;

/* A client-visible error: HTTP status, TEI error_type, message. */
typedef struct srv_error {
    int status;
    const char *type;
    const char *oai_code; /* OpenAI error.code, or NULL */
    char message[320];
} srv_error;

void srv_error_set(srv_error *e, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Per-request options that shape the response. */
typedef struct srv_embed_opts {
    srv_api api;
    int normalize;     /* 0 or 1, resolved */
    int32_t dims;      /* output dimension, resolved */
    bool base64;
    char *model_echo;  /* OpenAI: the request's "model", owned; NULL = served name */
    int64_t n_truncated;
} srv_embed_opts;

/* Parses a request body for `api`, validates it against the limits and
 * tokenizes it into *job (allocated, inputs only). Returns true, or false
 * with *err filled (and nothing allocated). */
bool srv_parse_embed(const srv_model *sm, const srv_config *cfg, srv_api api, const char *body,
                     size_t len, srv_embed_opts *opts, srv_job **job, srv_error *err);
void srv_opts_free(srv_embed_opts *o);
void srv_job_free(srv_job *job); /* NULL-safe */

/* The response body for a finished job: normalization and Matryoshka cut per
 * request, floats or base64. Returns false on out-of-memory. */
bool srv_render_embed(const srv_model *sm, const srv_config *cfg, const srv_embed_opts *o,
                      const srv_job *job, sbuf *out);
/* Error body in the shape of `api` (OpenAI: {"error": {...}}; TEI and every
 * other route: {"error": "...", "error_type": "..."}). */
void srv_render_error(srv_api api, const srv_error *e, sbuf *out);
/* GET /info and GET /v1/models bodies. */
void srv_render_info(const srv_model *sm, const srv_config *cfg, sbuf *out);
void srv_render_models(const srv_config *cfg, double created, sbuf *out);

/* Request framing (api.c, used by http.c): header fields are added one by
 * one; srv_framing_ok refuses a body length two parsers could read
 * differently (different Content-Length values, or Content-Length with
 * Transfer-Encoding) with a 400. */
typedef struct srv_framing {
    int n_length;
    bool lengths_differ, has_te;
    const char *first;
} srv_framing;
void srv_framing_add(srv_framing *f, const char *key, const char *value);
bool srv_framing_ok(const srv_framing *f, srv_error *err);

/* ---- the rest of TEI's routes (tei.c) ---- */

enum { SRV_TEI_ROOT = 1, SRV_TEI_RERANK, SRV_TEI_TOKENIZE, SRV_TEI_DECODE, SRV_TEI_SIMILARITY,
       SRV_TEI_EMBED_ALL };
/* The SRV_TEI_* of a POST route answered by srv_tei_handle, or 0. */
int srv_tei_route(const char *url);
/* Answers POST `route` synchronously: fills `out` (a JSON body) and returns
 * the HTTP status, or -1 when the request is an embedding request (POST /
 * on an embedding model) for the /embed path. */
int srv_tei_handle(const srv_model *sm, const srv_config *cfg, int route, const char *body,
                   size_t len, sbuf *out);
/* Frees the context of those routes. */
void srv_tei_shutdown(void);

/* ---- HTTP (http.c) ---- */

typedef struct srv_http srv_http;

typedef struct srv_state {
    const srv_config *cfg;
    srv_model *sm;
    srv_metrics *metrics;
    srv_batcher *batcher;
    srv_http *http;
    atomic_int draining;   /* SIGTERM seen: /ready says 503              */
    atomic_int stopping;   /* no new requests: 503 + Connection: close    */
    atomic_int healthy;    /* last embedding call did not fail internally */
    atomic_int_fast64_t open_requests; /* started, not yet completed      */
    atomic_int_fast64_t jobs_active;   /* submitted, worker not done yet  */
    atomic_int refuse_jobs;            /* shutdown deadline passed        */
} srv_state;

/* Starts libmicrohttpd on cfg->host:cfg->port. Returns NULL after printing
 * why. *port receives the bound port. */
srv_http *srv_http_start(srv_state *st, int *port);
/* Stops accepting new connections (existing ones go on). */
void srv_http_quiesce(srv_http *h);
int64_t srv_http_connections(srv_http *h);
/* Closes everything. No request may be suspended. */
void srv_http_stop(srv_http *h);
/* The batcher's done callback: resumes the job's connection. */
void srv_http_job_done(srv_job *job, void *user);

double srv_now(void);      /* monotonic seconds */
double srv_wall_now(void); /* unix seconds */

#endif
