/*
 * profile.h — a driver that wraps another and times each op: the decorator
 * behind `ember bench`'s per-op breakdown. It forwards every call to the
 * wrapped driver unchanged, so results are identical with and without it.
 */
#ifndef EMBER_DRIVERS_PROFILE_H
#define EMBER_DRIVERS_PROFILE_H

#include "drivers/driver.h"

typedef enum ember_op_kind {
    EMBER_OP_GATHER,
    EMBER_OP_LAYER_NORM,
    EMBER_OP_LINEAR,
    EMBER_OP_GEGLU,
    EMBER_OP_ROPE,
    EMBER_OP_ATTENTION,
    EMBER_OP_POOL,
    EMBER_OP_TRANSFER,
    EMBER_OP_COUNT
} ember_op_kind;

typedef struct ember_op_profile {
    double seconds[EMBER_OP_COUNT];
    double flops[EMBER_OP_COUNT];
    int64_t calls[EMBER_OP_COUNT];
} ember_op_profile;

const char *ember_op_name(ember_op_kind k);

/* The wrapper's per-context state; pass &p->driver and p as (driver, dctx). */
typedef struct ember_profiler {
    ember_driver driver;        /* ops = the profiling table, impl = this  */
    const ember_driver *inner;
    void *inner_dctx;
    ember_op_profile prof;
} ember_profiler;

void ember_profiler_init(ember_profiler *p, const ember_driver *inner, void *inner_dctx);

#endif
