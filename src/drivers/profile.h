/*
 * profile.h — a driver that wraps another and times each op: the decorator
 * behind `ember bench`'s per-op breakdown. It forwards every call to the
 * wrapped driver unchanged, so results are identical with and without it.
 *
 * Timing: a driver with timer_start/timer_stop (a GPU driver recording
 * events) times its own kernels; otherwise the wrapper synchronizes after
 * each op and reads the host clock, so an asynchronous driver without the
 * hook is still timed correctly, only with its launch gaps included.
 */
#ifndef EMBER_DRIVERS_PROFILE_H
#define EMBER_DRIVERS_PROFILE_H

#include "drivers/driver.h"

typedef struct ember_op_profile {
    double seconds[EMBER_OP_COUNT];
    double flops[EMBER_OP_COUNT];
    int64_t calls[EMBER_OP_COUNT];
} ember_op_profile;

/* The wrapper's per-context state; pass &p->driver and p as (driver, dctx). */
typedef struct ember_profiler {
    ember_driver driver;        /* ops = the profiling table, impl = this  */
    const ember_driver *inner;
    void *inner_dctx;
    ember_op_profile prof;
} ember_profiler;

void ember_profiler_init(ember_profiler *p, const ember_driver *inner, void *inner_dctx);

#endif
