/*
 * threadpool.h — a small persistent thread pool shared by all ops of a context.
 *
 * Work is expressed as `n_tasks` independent tasks handed out through an
 * atomic counter, so uneven tasks (attention over sequences of different
 * lengths) balance themselves. The calling thread works too: a pool of N
 * threads starts N-1 workers. Workers spin briefly between dispatches (a
 * forward pass issues hundreds of small ops) and then sleep, so an idle pool
 * costs nothing. No OpenMP is imposed on the host program.
 */
#ifndef EMBER_CORE_THREADPOOL_H
#define EMBER_CORE_THREADPOOL_H

#include <stdint.h>

#include "error.h"

typedef struct ember_pool ember_pool;

/* Runs task number `task` on worker `thread` (0 = the calling thread). */
typedef void (*ember_task_fn)(void *arg, int64_t task, int thread);

/* Creates a pool of `n_threads` (>= 1) threads, the caller included. */
ember_status ember_pool_create(int n_threads, ember_pool **out);
void ember_pool_free(ember_pool *pool);
int ember_pool_size(const ember_pool *pool);

/* Runs fn(arg, t, thread) for t in [0, n_tasks) and returns when all are done.
 * Not reentrant: one dispatch at a time per pool. */
void ember_pool_run(ember_pool *pool, ember_task_fn fn, void *arg, int64_t n_tasks);

#endif
