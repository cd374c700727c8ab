/*
 * registry.c — the drivers compiled into this build, found by name.
 *
 * A GPU driver adds one line to k_drivers (under its build option); "auto"
 * takes the first entry whose probe() does not refuse, so GPU drivers go
 * before the CPU ones: with no usable device "auto" falls back to cpu, while
 * naming the GPU driver fails its init with a clear message.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/driver.h"

static const ember_driver_ops *const k_drivers[] = {
#if defined(EMBER_HAVE_CUDA)
    &ember_cuda_driver_ops,
#endif
    &ember_cpu_driver_ops,
    &ember_cpu_ref_driver_ops,
};

int ember_driver_count(void) { return (int)(sizeof k_drivers / sizeof k_drivers[0]); }

const ember_driver_ops *ember_driver_at(int i) {
    return i >= 0 && i < ember_driver_count() ? k_drivers[i] : NULL;
}

const ember_driver_ops *ember_driver_find(const char *name, int32_t *device) {
    if (device)
        *device = 0;
    if (!name || !*name || strcmp(name, "auto") == 0) {
        for (int i = 0; i < ember_driver_count(); i++)
            if (!k_drivers[i]->probe || k_drivers[i]->probe())
                return k_drivers[i];
        return NULL;
    }
    /* "name:N" selects device N of that driver */
    size_t len = strlen(name);
    const char *colon = strchr(name, ':');
    int32_t index = 0;
    if (colon) {
        char *end = NULL;
        long v = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end != '\0' || v < 0 || v > 1024)
            return NULL;
        index = (int32_t)v;
        len = (size_t)(colon - name);
    }
    for (int i = 0; i < ember_driver_count(); i++) {
        if (strlen(k_drivers[i]->name) == len && strncmp(k_drivers[i]->name, name, len) == 0) {
            if (device)
                *device = index;
            return k_drivers[i];
        }
    }
    return NULL;
}

int64_t ember_graph_max_tokens(void) {
    static _Atomic int64_t cached = -1;
    int64_t v = atomic_load(&cached);
    if (v < 0) {
        v = 2048;
        const char *e = getenv("EMBER_GRAPH_MAX_TOKENS");
        if (e && *e) {
            char *end = NULL;
            const long long n = strtoll(e, &end, 10);
            if (end != e && *end == '\0' && n >= 0 && n <= 1048576)
                v = n;
        }
        atomic_store(&cached, v);
    }
    return v;
}
