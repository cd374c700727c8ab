/*
 * threadpool.c — see threadpool.h.
 *
 * Protocol: the caller publishes (fn, arg, n_tasks), resets the task counter
 * and bumps `generation`. Each worker that sees a new generation takes tasks
 * until none are left and then increments `finished`. The caller, after its
 * own share, waits for finished == n_workers. Both sides spin briefly and
 * then sleep on a condition variable: spinning alone stalls whole scheduler
 * slices when another thread of the process (an HTTP server's, say) holds a
 * CPU the spinner is waiting for. Sleepers are signalled only when some are
 * actually asleep (seq_cst flags on both sides, Dekker-style).
 */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "fpenv.h"
#include "util.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ volatile("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* Spin iterations before sleeping: a few tens of microseconds, longer than
 * the gap between two ops of a forward pass. */
#define SPIN_ITERS 4000

struct ember_pool {
    int n_threads;
    pthread_t *workers; /* n_threads - 1 */

    ember_task_fn fn;
    void *arg;
    int64_t n_tasks;
    atomic_llong next_task;

    atomic_uint generation;
    atomic_int finished;
    atomic_int sleeping;
    atomic_int caller_sleeping;
    atomic_bool stop;

    pthread_mutex_t mutex;
    pthread_cond_t wake; /* workers wait for a new generation */
    pthread_cond_t done; /* the caller waits for the last worker */
};

typedef struct {
    ember_pool *pool;
    int index;
} worker_arg;

static void run_tasks(ember_pool *p, int thread) {
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&p->next_task, 1, memory_order_relaxed);
        if (t >= p->n_tasks)
            break;
        p->fn(p->arg, t, thread);
    }
}

static void *worker_main(void *argp) {
    worker_arg wa = *(worker_arg *)argp;
    free(argp);
    ember_pool *p = wa.pool;
    unsigned seen = 0;
    (void)ember_fpenv_enter(); /* our own thread: flush subnormals for good */
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->stop, memory_order_acquire)) {
            if (++spins < SPIN_ITERS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mutex);
            atomic_fetch_add(&p->sleeping, 1);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mutex);
            atomic_fetch_sub(&p->sleeping, 1);
            pthread_mutex_unlock(&p->mutex);
            spins = 0;
        }
        if (atomic_load_explicit(&p->stop, memory_order_acquire))
            return NULL;
        seen = gen;
        run_tasks(p, wa.index);
        int now = atomic_fetch_add(&p->finished, 1) + 1; /* seq_cst: pairs with caller_sleeping */
        if (now == p->n_threads - 1 && atomic_load(&p->caller_sleeping)) {
            pthread_mutex_lock(&p->mutex);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mutex);
        }
    }
}

ember_status ember_pool_create(int n_threads, ember_pool **out) {
    *out = NULL;
    if (n_threads < 1)
        n_threads = 1;
    ember_pool *p = ember_calloc(1, sizeof *p, "thread pool");
    if (!p)
        return EMBER_E_NOMEM;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads > 1) {
        p->workers = ember_calloc((size_t)n_threads - 1, sizeof(pthread_t), "thread pool");
        if (!p->workers) {
            ember_pool_free(p);
            return EMBER_E_NOMEM;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = ember_malloc(sizeof *wa, "thread pool");
        if (!wa) {
            p->n_threads = i;
            ember_pool_free(p);
            return EMBER_E_NOMEM;
        }
        wa->pool = p;
        wa->index = i;
        if (pthread_create(&p->workers[i - 1], NULL, worker_main, wa) != 0) {
            free(wa);
            p->n_threads = i;
            ember_pool_free(p);
            return ember_error(EMBER_E_NOMEM, "cannot start worker thread %d of %d", i, n_threads);
        }
    }
    *out = p;
    return EMBER_OK;
}

void ember_pool_free(ember_pool *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->mutex);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    for (int i = 1; i < p->n_threads; i++)
        pthread_join(p->workers[i - 1], NULL);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->workers);
    free(p);
}

int ember_pool_size(const ember_pool *p) { return p ? p->n_threads : 1; }

void ember_pool_run(ember_pool *p, ember_task_fn fn, void *arg, int64_t n_tasks) {
    if (n_tasks <= 0)
        return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; t++)
            fn(arg, t, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&p->finished, 0, memory_order_relaxed);
    atomic_fetch_add(&p->generation, 1); /* seq_cst: pairs with `sleeping` */
    if (atomic_load(&p->sleeping) > 0) {
        pthread_mutex_lock(&p->mutex);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }
    run_tasks(p, 0);
    int workers = p->n_threads - 1;
    for (int spins = 0; atomic_load_explicit(&p->finished, memory_order_acquire) < workers; spins++) {
        if (spins < SPIN_ITERS) {
            cpu_relax();
            continue;
        }
        pthread_mutex_lock(&p->mutex);
        atomic_store(&p->caller_sleeping, 1);
        while (atomic_load(&p->finished) < workers)
            pthread_cond_wait(&p->done, &p->mutex);
        atomic_store(&p->caller_sleeping, 0);
        pthread_mutex_unlock(&p->mutex);
    }
}
