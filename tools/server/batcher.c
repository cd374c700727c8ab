/*
 * batcher.c — the bounded job queue and the workers that run it.
 *
 * Why merge: a forward pass over 32 short sentences costs little more than
 * over one, so concurrent single-sentence requests are far cheaper together.
 * Each worker owns an ember_ctx (the model is shared) and loops: take the
 * oldest job plus every following queued job that still fits one forward
 * pass (--max-batch-size sequences, --max-batch-tokens tokens; the first job
 * is always taken whole, the library splits it if it is larger), run them as
 * one ember_embed_tokens call, hand each job its rows. There is no batching
 * timer: jobs that arrive while a pass runs form the next batch, so a lone
 * request never waits for company.
 *
 * Vectors come back raw (no normalization, full dimension) so that requests
 * with different `normalize`/`dimensions` share a pass; http/api apply those
 * per request with the library's own normalization, which keeps responses
 * bit-identical to `ember embed`.
 *
 * The queue needs no limit of its own: every job holds one of the
 * --max-concurrent admission slots taken in http.c before its body is read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

typedef struct worker {
    struct srv_batcher *b;
    pthread_t thread;
    bool started;
    ember_ctx *ctx;
    int32_t *ids; /* merged CSR, grown as needed and kept */
    int64_t ids_cap;
    int64_t *offsets;
    int64_t offsets_cap;
    float *out;
    int64_t out_cap;
} worker;

struct srv_batcher {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_job *head, *tail;
    bool stop;
    int n_workers;
    worker *workers;
    const ember_model *model;
    int32_t dim;
    int64_t merge_tokens, merge_seqs;
    srv_metrics *metrics;
    srv_done_fn done;
    void *user;
};

static bool grow(void **p, int64_t *cap, int64_t need, size_t size) {
    if (*cap >= need)
        return true;
    int64_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, (size_t)n * size);
    if (!q)
        return false;
    *p = q;
    *cap = n;
    return true;
}

static void fail_job(srv_job *j, ember_status st, const char *msg) {
    j->status = st;
    snprintf(j->error, sizeof j->error, "%s", msg && *msg ? msg : ember_status_str(st));
}

/* Runs the jobs of the list as one call; isolates a failure by retrying
 * each job alone so one bad job cannot fail its neighbours. */
static void run(worker *w, srv_job *jobs, int n_jobs, int64_t seqs, int64_t toks) {
    srv_batcher *b = w->b;
    srv_metrics *m = b->metrics;
    const int64_t dim = b->dim;
    double t0 = srv_now();
    for (srv_job *j = jobs; j; j = j->next) {
        j->t_started = t0;
        srv_hist_observe(&m->queue_wait, t0 - j->t_queued);
    }
    ember_embed_options eo = ember_embed_default_options();
    eo.normalize = 0; /* raw pooled vectors: normalization is per request */
    eo.dimensions = 0;
    ember_embed_stats stats;
    memset(&stats, 0, sizeof stats);
    ember_status st;
    if (n_jobs == 1) {
        st = ember_embed_tokens(w->ctx, jobs->ids, jobs->offsets, jobs->n, &eo, jobs->vecs,
                                jobs->n * dim, &stats);
        if (st != EMBER_OK)
            fail_job(jobs, st, ember_last_error());
    } else if (!grow((void **)&w->ids, &w->ids_cap, toks, sizeof(int32_t)) ||
               !grow((void **)&w->offsets, &w->offsets_cap, seqs + 1, sizeof(int64_t)) ||
               !grow((void **)&w->out, &w->out_cap, seqs * dim, sizeof(float))) {
        st = EMBER_E_NOMEM;
        for (srv_job *j = jobs; j; j = j->next)
            fail_job(j, st, "out of memory merging requests");
    } else {
        int64_t row = 0, pos = 0;
        w->offsets[0] = 0;
        for (srv_job *j = jobs; j; j = j->next) {
            memcpy(w->ids + pos, j->ids, sizeof(int32_t) * (size_t)j->n_tokens);
            for (int64_t i = 0; i < j->n; i++)
                w->offsets[row + i + 1] = pos + j->offsets[i + 1];
            row += j->n;
            pos += j->n_tokens;
        }
        st = ember_embed_tokens(w->ctx, w->ids, w->offsets, seqs, &eo, w->out, seqs * dim, &stats);
        if (st == EMBER_OK) {
            row = 0;
            for (srv_job *j = jobs; j; j = j->next) {
                memcpy(j->vecs, w->out + row * dim, sizeof(float) * (size_t)(j->n * dim));
                row += j->n;
            }
        } else {
            for (srv_job *j = jobs; j; j = j->next) {
                ember_embed_stats one;
                ember_status s1 = ember_embed_tokens(w->ctx, j->ids, j->offsets, j->n, &eo,
                                                     j->vecs, j->n * dim, &one);
                if (s1 != EMBER_OK)
                    fail_job(j, s1, ember_last_error());
            }
        }
    }
    double t1 = srv_now();
    atomic_fetch_add_explicit(&m->embed_calls_total, 1, memory_order_relaxed);
    if (st == EMBER_OK) {
        srv_hist_observe(&m->compute, t1 - t0);
        srv_hist_observe(&m->batch_inputs, (double)seqs);
        srv_hist_observe(&m->batch_tokens, (double)toks);
        atomic_fetch_add_explicit(&m->inputs_total, (uint64_t)seqs, memory_order_relaxed);
        atomic_fetch_add_explicit(&m->tokens_total, (uint64_t)stats.n_tokens, memory_order_relaxed);
        atomic_fetch_add_explicit(&m->forward_passes_total, (uint64_t)stats.n_forward_passes,
                                  memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&m->embed_errors_total, 1, memory_order_relaxed);
    }
    srv_job *j = jobs;
    while (j) {
        srv_job *next = j->next; /* done() may free the job */
        j->next = NULL;
        j->t_done = t1;
        b->done(j, b->user);
        j = next;
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    srv_batcher *b = w->b;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        while (!b->head && !b->stop)
            pthread_cond_wait(&b->cv, &b->mu);
        if (!b->head) {
            pthread_mutex_unlock(&b->mu);
            break;
        }
        srv_job *first = b->head, *last = first;
        int64_t seqs = first->n, toks = first->n_tokens;
        int n_jobs = 1;
        while (last->next && seqs + last->next->n <= b->merge_seqs &&
               toks + last->next->n_tokens <= b->merge_tokens) {
            last = last->next;
            seqs += last->n;
            toks += last->n_tokens;
            n_jobs++;
        }
        b->head = last->next;
        if (!b->head)
            b->tail = NULL;
        last->next = NULL;
        atomic_fetch_sub_explicit(&b->metrics->queue_depth, n_jobs, memory_order_relaxed);
        pthread_mutex_unlock(&b->mu);
        run(w, first, n_jobs, seqs, toks);
    }
    return NULL;
}

/* One short pass per context: starts its thread pool and touches its
 * scratch memory before the first client waits on it. */
static bool warm_up(const ember_model *model, ember_ctx *ctx, int32_t dim) {
    ember_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    ember_model_get_info(model, &info);
    int32_t vocab = info.vocab_size;
    int32_t ids[8];
    int64_t offsets[2] = {0, 0};
    int32_t n = ember_model_max_tokens(model) < 8 ? ember_model_max_tokens(model) : 8;
    for (int32_t i = 0; i < n; i++)
        ids[i] = i % (vocab > 0 ? vocab : 1);
    offsets[1] = n;
    float *out = malloc(sizeof(float) * (size_t)dim);
    if (!out)
        return false;
    ember_status st = ember_embed_tokens(ctx, ids, offsets, 1, NULL, out, dim, NULL);
    free(out);
    if (st != EMBER_OK)
        fprintf(stderr, "ember serve: warm-up failed: %s\n", ember_last_error());
    return st == EMBER_OK;
}

srv_batcher *srv_batcher_start(const ember_model *model, const srv_config *cfg,
                               srv_metrics *metrics, srv_done_fn done, void *user) {
    srv_batcher *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->model = model;
    b->dim = ember_model_dim(model);
    b->merge_tokens = cfg->max_batch_tokens;
    b->merge_seqs = cfg->max_batch_size;
    b->metrics = metrics;
    b->done = done;
    b->user = user;
    b->n_workers = cfg->workers;
    b->workers = calloc((size_t)b->n_workers, sizeof(worker));
    if (!b->workers) {
        srv_batcher_stop(b);
        return NULL;
    }
    ember_ctx_params cp = ember_ctx_default_params();
    cp.n_threads = cfg->threads;
    cp.max_batch = cfg->max_batch_size;
    cp.max_batch_tokens = cfg->max_batch_tokens;
    for (int i = 0; i < b->n_workers; i++) {
        worker *w = &b->workers[i];
        w->b = b;
        if (ember_ctx_init(model, &cp, &w->ctx) != EMBER_OK) {
            fprintf(stderr, "ember serve: cannot create a context: %s\n", ember_last_error());
            srv_batcher_stop(b);
            return NULL;
        }
        if (!warm_up(model, w->ctx, b->dim)) {
            srv_batcher_stop(b);
            return NULL;
        }
    }
    for (int i = 0; i < b->n_workers; i++) {
        worker *w = &b->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            fprintf(stderr, "ember serve: cannot start a worker thread\n");
            srv_batcher_stop(b);
            return NULL;
        }
        w->started = true;
    }
    return b;
}

void srv_batcher_submit(srv_batcher *b, srv_job *job) {
    job->next = NULL;
    job->t_queued = srv_now();
    pthread_mutex_lock(&b->mu);
    if (b->tail)
        b->tail->next = job;
    else
        b->head = job;
    b->tail = job;
    atomic_fetch_add_explicit(&b->metrics->queue_depth, 1, memory_order_relaxed);
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

int srv_batcher_cancel_waiting(srv_batcher *b) {
    pthread_mutex_lock(&b->mu);
    srv_job *j = b->head;
    b->head = b->tail = NULL;
    pthread_mutex_unlock(&b->mu);
    int n = 0;
    while (j) {
        srv_job *next = j->next;
        j->next = NULL;
        j->cancelled = true;
        fail_job(j, EMBER_E_INTERNAL, "the server is shutting down");
        atomic_fetch_sub_explicit(&b->metrics->queue_depth, 1, memory_order_relaxed);
        b->done(j, b->user);
        n++;
        j = next;
    }
    return n;
}

void srv_batcher_stop(srv_batcher *b) {
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->stop = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; b->workers && i < b->n_workers; i++) {
        worker *w = &b->workers[i];
        if (w->started)
            pthread_join(w->thread, NULL);
        ember_ctx_free(w->ctx);
        free(w->ids);
        free(w->offsets);
        free(w->out);
    }
    free(b->workers);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}
