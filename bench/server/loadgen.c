/*
 * loadgen.c — a small closed-loop HTTP load generator for `ember serve`
 * (so the load test needs nothing beyond a C compiler).
 *
 * C client threads each keep one HTTP/1.1 keep-alive connection and send
 * POST requests back to back for the duration (after a warm-up whose
 * requests are not counted). Bodies are English-like sentences drawn from a
 * fixed word list (deterministic per seed), one or --batch per request, in
 * the OpenAI or the TEI shape. Every response must be 200 with a complete
 * body (Content-Length); anything else counts as an error.
 *
 * Prints one JSON object: requests/s, inputs/s, latency p50/p90/p99/max.
 *
 *   cc -O2 -pthread bench/server/loadgen.c -o loadgen
 *   ./loadgen --port 8080 --concurrency 32 --duration 10 --batch 1
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *k_words[] = {
    "the",     "a",        "model",   "server",  "turns",   "text",     "into",    "vectors",
    "quick",   "brown",    "fox",     "jumps",   "over",    "lazy",     "dog",     "search",
    "engine",  "finds",    "similar", "answers", "for",     "every",    "question", "about",
    "weather", "tomorrow", "city",    "river",   "mountain", "people",  "write",   "code",
    "in",      "C",        "while",   "others",  "read",    "books",    "on",      "trains",
    "memory",  "cache",    "latency", "matters", "when",    "requests", "arrive",  "together",
};
#define N_WORDS (sizeof k_words / sizeof k_words[0])

typedef struct opts {
    const char *host;
    int port;
    const char *path;
    int concurrency;
    double duration, warmup;
    int batch;
    int tei;
    unsigned seed;
} opts;

typedef struct thread_ctx {
    const opts *o;
    int id;
    double t_start, t_end; /* measured window (monotonic) */
    double *lat;           /* seconds, requests completed in the window */
    size_t n_lat, cap_lat;
    long errors, inputs;
    pthread_t thread;
} thread_ctx;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint32_t rnd(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* A full request (headers + body) with `batch` sentences of 8..20 words. */
static char *make_request(const opts *o, uint32_t *seed, size_t *len) {
    size_t cap = 512 + (size_t)o->batch * 256;
    char *body = malloc(cap), *req = malloc(cap + 512);
    if (!body || !req)
        exit(1);
    size_t n = (size_t)snprintf(body, cap, o->tei ? "{\"inputs\":%s" : "{\"input\":%s",
                                o->batch > 1 ? "[" : "");
    for (int b = 0; b < o->batch; b++) {
        n += (size_t)snprintf(body + n, cap - n, "%s\"", b ? "," : "");
        int words = 8 + (int)(rnd(seed) % 13);
        for (int w = 0; w < words; w++)
            n += (size_t)snprintf(body + n, cap - n, "%s%s", w ? " " : "",
                                  k_words[rnd(seed) % N_WORDS]);
        n += (size_t)snprintf(body + n, cap - n, ".\"");
    }
    n += (size_t)snprintf(body + n, cap - n, "%s}", o->batch > 1 ? "]" : "");
    *len = (size_t)snprintf(req, cap + 512,
                            "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\n\r\n%s",
                            o->path, o->host, n, body);
    free(body);
    return req;
}

static int connect_to(const opts *o) {
    struct addrinfo hints, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    if (getaddrinfo(o->host, port, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct timeval tv = {60, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    return fd;
}

/* Sends one request and reads the whole response: 1 when 200, 0 on another
 * status, -1 when the connection failed. *keep: the server keeps it open. */
static int exchange(int fd, const char *req, size_t len, char **buf, size_t *cap, int *keep) {
    for (size_t off = 0; off < len;) {
        ssize_t k = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        off += (size_t)k;
    }
    size_t n = 0;
    char *end = NULL;
    while (!end) {
        if (n + 4096 > *cap) {
            *cap = *cap * 2 + 8192;
            *buf = realloc(*buf, *cap);
        }
        ssize_t k = recv(fd, *buf + n, *cap - n - 1, 0);
        if (k <= 0)
            return -1;
        n += (size_t)k;
        (*buf)[n] = '\0';
        end = strstr(*buf, "\r\n\r\n");
    }
    int status = atoi(*buf + 9);
    size_t head = (size_t)(end - *buf) + 4, clen = 0;
    *keep = 1;
    for (char *line = strstr(*buf, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
            clen = strtoull(line + 17, NULL, 10);
        else if (strncasecmp(line + 2, "Connection: close", 17) == 0)
            *keep = 0;
    }
    while (n < head + clen) {
        if (head + clen + 1 > *cap) {
            *cap = head + clen + 1;
            *buf = realloc(*buf, *cap);
        }
        ssize_t k = recv(fd, *buf + n, head + clen - n, 0);
        if (k <= 0)
            return -1;
        n += (size_t)k;
    }
    return status == 200;
}

static void *client(void *arg) {
    thread_ctx *t = arg;
    const opts *o = t->o;
    uint32_t seed = o->seed * 7919u + (uint32_t)t->id * 104729u + 1;
    enum { POOL = 32 };
    char *reqs[POOL];
    size_t lens[POOL];
    for (int i = 0; i < POOL; i++)
        reqs[i] = make_request(o, &seed, &lens[i]);
    char *buf = NULL;
    size_t cap = 0;
    int fd = -1;
    for (long i = 0;; i++) {
        double t0 = now();
        if (t0 >= t->t_end)
            break;
        if (fd < 0 && (fd = connect_to(o)) < 0) {
            t->errors++;
            usleep(10000);
            continue;
        }
        int keep = 0;
        int ok = exchange(fd, reqs[i % POOL], lens[i % POOL], &buf, &cap, &keep);
        double t1 = now();
        if (ok < 0 || !keep) {
            close(fd);
            fd = -1;
        }
        if (t0 < t->t_start || t1 > t->t_end)
            continue; /* warm-up, or finished after the window */
        if (ok != 1) {
            t->errors++;
            continue;
        }
        if (t->n_lat == t->cap_lat) {
            t->cap_lat = t->cap_lat * 2 + 1024;
            t->lat = realloc(t->lat, t->cap_lat * sizeof(double));
        }
        t->lat[t->n_lat++] = t1 - t0;
        t->inputs += o->batch;
    }
    if (fd >= 0)
        close(fd);
    for (int i = 0; i < POOL; i++)
        free(reqs[i]);
    free(buf);
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p) {
    if (!n)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static void usage(void) {
    fprintf(stderr, "usage: loadgen --port N [--host H] [--path P] [--tei] [--concurrency C]\n"
                    "               [--duration S] [--warmup S] [--batch N] [--seed N]\n");
    exit(2);
}

int main(int argc, char **argv) {
    opts o = {"127.0.0.1", 0, NULL, 1, 10, 2, 1, 0, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--tei") == 0) {
            o.tei = 1;
            continue;
        }
        if (!v)
            usage();
        if (strcmp(a, "--host") == 0)
            o.host = v;
        else if (strcmp(a, "--port") == 0)
            o.port = atoi(v);
        else if (strcmp(a, "--path") == 0)
            o.path = v;
        else if (strcmp(a, "--concurrency") == 0)
            o.concurrency = atoi(v);
        else if (strcmp(a, "--duration") == 0)
            o.duration = atof(v);
        else if (strcmp(a, "--warmup") == 0)
            o.warmup = atof(v);
        else if (strcmp(a, "--batch") == 0)
            o.batch = atoi(v);
        else if (strcmp(a, "--seed") == 0)
            o.seed = (unsigned)atoi(v);
        else
            usage();
        i++;
    }
    if (o.port <= 0 || o.concurrency < 1 || o.batch < 1 || o.duration <= 0)
        usage();
    if (!o.path)
        o.path = o.tei ? "/embed" : "/v1/embeddings";
    thread_ctx *t = calloc((size_t)o.concurrency, sizeof *t);
    double start = now() + o.warmup;
    for (int i = 0; i < o.concurrency; i++) {
        t[i].o = &o;
        t[i].id = i;
        t[i].t_start = start;
        t[i].t_end = start + o.duration;
        if (pthread_create(&t[i].thread, NULL, client, &t[i]) != 0)
            return 1;
    }
    size_t n = 0;
    long errors = 0, inputs = 0;
    for (int i = 0; i < o.concurrency; i++) {
        pthread_join(t[i].thread, NULL);
        n += t[i].n_lat;
        errors += t[i].errors;
        inputs += t[i].inputs;
    }
    double *all = malloc((n ? n : 1) * sizeof(double));
    size_t k = 0;
    for (int i = 0; i < o.concurrency; i++) {
        memcpy(all + k, t[i].lat, t[i].n_lat * sizeof(double));
        k += t[i].n_lat;
        free(t[i].lat);
    }
    qsort(all, n, sizeof(double), cmp_double);
    printf("{\"path\":\"%s\",\"concurrency\":%d,\"batch\":%d,\"seconds\":%.1f,\"requests\":%zu,"
           "\"errors\":%ld,\"requests_per_s\":%.1f,\"inputs_per_s\":%.1f,\"p50_ms\":%.2f,"
           "\"p90_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f}\n",
           o.path, o.concurrency, o.batch, o.duration, n, errors, (double)n / o.duration,
           (double)inputs / o.duration, pct(all, n, 0.5) * 1e3, pct(all, n, 0.9) * 1e3,
           pct(all, n, 0.99) * 1e3, n ? all[n - 1] * 1e3 : 0.0);
    free(all);
    free(t);
    return errors ? 3 : 0;
}
