/*
 * metrics.c — the server's counters and histograms, rendered as Prometheus
 * text exposition (version 0.0.4) on GET /metrics.
 *
 * Counters are relaxed atomics, histograms take a small mutex: both are
 * touched a few times per request, never per token, so contention does not
 * matter. Status codes are bucketed into a fixed table so the counter array
 * is static (no allocation, bounded label cardinality whatever clients send).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

/* every status the server itself gives; 408 and 499 mark connections closed
 * without an answer (timeout, client gone) */
static const int k_codes[SRV_N_CODES] = {200, 400, 401, 404, 405, 408,
                                         413, 422, 499, 500, 503, 0 /* other */};

static const double k_latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25,  0.5,    1,     2.5,  5,     10,   30};
static const double k_size_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
static const double k_token_bounds[] = {16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768};

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *k_route_names[RT_COUNT] = {
    [RT_OPENAI] = "/v1/embeddings", [RT_TEI] = "/embed",     [RT_INFO] = "/info",
    [RT_MODELS] = "/v1/models",     [RT_HEALTH] = "/health", [RT_READY] = "/ready",
    [RT_METRICS] = "/metrics",      [RT_OTHER] = "other",
};

const char *srv_route_name(srv_route r) { return r < RT_COUNT ? k_route_names[r] : "other"; }

static void hist_init(srv_hist *h, const double *bounds, int n) {
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    h->bounds = bounds;
    h->n_bounds = n < SRV_HIST_MAX ? n : SRV_HIST_MAX;
}

void srv_metrics_init(srv_metrics *m) {
    memset(m, 0, sizeof *m);
    for (int r = 0; r < RT_COUNT; r++)
        hist_init(&m->latency[r], k_latency_bounds, N_OF(k_latency_bounds));
    hist_init(&m->queue_wait, k_latency_bounds, N_OF(k_latency_bounds));
    hist_init(&m->compute, k_latency_bounds, N_OF(k_latency_bounds));
    hist_init(&m->batch_inputs, k_size_bounds, N_OF(k_size_bounds));
    hist_init(&m->request_inputs, k_size_bounds, N_OF(k_size_bounds));
    hist_init(&m->batch_tokens, k_token_bounds, N_OF(k_token_bounds));
    m->start_time = srv_wall_now();
}

void srv_metrics_free(srv_metrics *m) {
    for (int r = 0; r < RT_COUNT; r++)
        pthread_mutex_destroy(&m->latency[r].mu);
    pthread_mutex_destroy(&m->queue_wait.mu);
    pthread_mutex_destroy(&m->compute.mu);
    pthread_mutex_destroy(&m->batch_inputs.mu);
    pthread_mutex_destroy(&m->request_inputs.mu);
    pthread_mutex_destroy(&m->batch_tokens.mu);
}

void srv_hist_observe(srv_hist *h, double v) {
    int b = 0;
    while (b < h->n_bounds && v > h->bounds[b])
        b++;
    pthread_mutex_lock(&h->mu);
    h->counts[b]++;
    h->count++;
    h->sum += v;
    pthread_mutex_unlock(&h->mu);
}

static int code_index(int status) {
    for (int i = 0; i < SRV_N_CODES - 1; i++)
        if (k_codes[i] == status)
            return i;
    return SRV_N_CODES - 1;
}

void srv_metrics_count(srv_metrics *m, srv_route r, int status) {
    if (r >= RT_COUNT)
        r = RT_OTHER;
    atomic_fetch_add_explicit(&m->requests[r][code_index(status)], 1, memory_order_relaxed);
}

static void render_hist(sbuf *o, const char *name, const char *labels, srv_hist *h) {
    pthread_mutex_lock(&h->mu);
    uint64_t cum = 0;
    for (int b = 0; b <= h->n_bounds; b++) {
        cum += h->counts[b];
        if (b < h->n_bounds)
            sb_printf(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "",
                      h->bounds[b], (unsigned long long)cum);
        else
            sb_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "",
                      (unsigned long long)cum);
    }
    const char *open = *labels ? "{" : "", *close = *labels ? "}" : "";
    sb_printf(o, "%s_sum%s%s%s %.9g\n", name, open, labels, close, h->sum);
    sb_printf(o, "%s_count%s%s%s %llu\n", name, open, labels, close, (unsigned long long)h->count);
    pthread_mutex_unlock(&h->mu);
}

static void header(sbuf *o, const char *name, const char *type, const char *help) {
    sb_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, quote and newline escaped as the format says;
 * other control characters dropped. */
static void label_value(sbuf *o, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\\' || c == '"')
            sb_put(o, "\\", 1);
        if (c == '\n')
            sb_puts(o, "\\n");
        else if (c >= 0x20 && c != 0x7f)
            sb_put(o, s, 1);
    }
}

static uint64_t load_u(atomic_uint_fast64_t *v) {
    return (uint64_t)atomic_load_explicit(v, memory_order_relaxed);
}

static long long load_i(atomic_int_fast64_t *v) {
    return (long long)atomic_load_explicit(v, memory_order_relaxed);
}

/* Resident set size from /proc (Linux); 0 when unknown. */
static long long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    long long size = 0, resident = 0;
    int ok = fscanf(f, "%lld %lld", &size, &resident) == 2;
    fclose(f);
    return ok ? resident * (long long)sysconf(_SC_PAGESIZE) : 0;
}

void srv_metrics_render(srv_metrics *m, sbuf *o, const char *model_name, int ready, int healthy,
                        int64_t connections) {
    header(o, "ember_build_info", "gauge", "Ember version and the model served.");
    sb_printf(o, "ember_build_info{version=\"%s\",model=\"", ember_version());
    label_value(o, model_name);
    sb_puts(o, "\"} 1\n");

    header(o, "ember_http_requests_total", "counter",
           "HTTP requests answered, by route and status code.");
    for (int r = 0; r < RT_COUNT; r++)
        for (int c = 0; c < SRV_N_CODES; c++) {
            uint64_t v = load_u(&m->requests[r][c]);
            if (!v)
                continue;
            if (k_codes[c])
                sb_printf(o, "ember_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
                          k_route_names[r], k_codes[c], (unsigned long long)v);
            else
                sb_printf(o, "ember_http_requests_total{route=\"%s\",code=\"other\"} %llu\n",
                          k_route_names[r], (unsigned long long)v);
        }

    header(o, "ember_http_request_duration_seconds", "histogram",
           "Time from the request headers to the end of the response, by route.");
    for (int r = 0; r < RT_COUNT; r++) {
        if (!m->latency[r].count)
            continue;
        char labels[64];
        snprintf(labels, sizeof labels, "route=\"%s\"", k_route_names[r]);
        render_hist(o, "ember_http_request_duration_seconds", labels, &m->latency[r]);
    }

    header(o, "ember_queue_wait_seconds", "histogram",
           "Time an embedding job waited in the queue for a worker.");
    render_hist(o, "ember_queue_wait_seconds", "", &m->queue_wait);
    header(o, "ember_compute_seconds", "histogram",
           "Time of one embedding call (one or more forward passes over merged requests).");
    render_hist(o, "ember_compute_seconds", "", &m->compute);
    header(o, "ember_batch_size", "histogram", "Inputs per embedding call (merged requests).");
    render_hist(o, "ember_batch_size", "", &m->batch_inputs);
    header(o, "ember_batch_tokens", "histogram", "Tokens per embedding call (merged requests).");
    render_hist(o, "ember_batch_tokens", "", &m->batch_tokens);
    header(o, "ember_request_inputs", "histogram", "Inputs per embedding request.");
    render_hist(o, "ember_request_inputs", "", &m->request_inputs);

    header(o, "ember_inputs_total", "counter", "Inputs embedded.");
    sb_printf(o, "ember_inputs_total %llu\n", (unsigned long long)load_u(&m->inputs_total));
    header(o, "ember_tokens_total", "counter", "Tokens run through the model.");
    sb_printf(o, "ember_tokens_total %llu\n", (unsigned long long)load_u(&m->tokens_total));
    header(o, "ember_truncated_inputs_total", "counter", "Inputs cut to the model's limit.");
    sb_printf(o, "ember_truncated_inputs_total %llu\n",
              (unsigned long long)load_u(&m->truncated_total));
    header(o, "ember_embed_calls_total", "counter", "Embedding calls made by the workers.");
    sb_printf(o, "ember_embed_calls_total %llu\n", (unsigned long long)load_u(&m->embed_calls_total));
    header(o, "ember_forward_passes_total", "counter", "Forward passes run.");
    sb_printf(o, "ember_forward_passes_total %llu\n",
              (unsigned long long)load_u(&m->forward_passes_total));
    header(o, "ember_embed_errors_total", "counter", "Embedding calls that failed.");
    sb_printf(o, "ember_embed_errors_total %llu\n",
              (unsigned long long)load_u(&m->embed_errors_total));

    header(o, "ember_requests_in_flight", "gauge",
           "Embedding requests admitted and not yet answered (bounded by --max-concurrent).");
    sb_printf(o, "ember_requests_in_flight %lld\n", load_i(&m->in_flight));
    header(o, "ember_queue_depth", "gauge", "Embedding jobs waiting for a worker.");
    sb_printf(o, "ember_queue_depth %lld\n", load_i(&m->queue_depth));
    header(o, "ember_pending_body_bytes", "gauge", "Request body bytes buffered.");
    sb_printf(o, "ember_pending_body_bytes %lld\n", load_i(&m->pending_bytes));
    header(o, "ember_http_connections", "gauge", "Open HTTP connections.");
    sb_printf(o, "ember_http_connections %lld\n", (long long)connections);
    header(o, "ember_ready", "gauge", "1 when accepting work, 0 while draining.");
    sb_printf(o, "ember_ready %d\n", ready);
    header(o, "ember_healthy", "gauge", "0 after an embedding call failed internally.");
    sb_printf(o, "ember_healthy %d\n", healthy);

    header(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    sb_printf(o, "process_resident_memory_bytes %lld\n", rss_bytes());
    header(o, "process_start_time_seconds", "gauge", "Start time of the process (unix seconds).");
    sb_printf(o, "process_start_time_seconds %.3f\n", m->start_time);
}

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double srv_wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
