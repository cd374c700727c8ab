/*
 * registry.c — the drivers compiled into this build, found by name.
 */
#include <string.h>

#include "drivers/driver.h"

static const ember_driver_ops *const k_drivers[] = {
    &ember_cpu_driver_ops,
    &ember_cpu_ref_driver_ops,
};

const ember_driver_ops *ember_driver_find(const char *name) {
    if (!name || !*name || strcmp(name, "auto") == 0)
        return k_drivers[0];
    for (size_t i = 0; i < sizeof k_drivers / sizeof k_drivers[0]; i++)
        if (strcmp(k_drivers[i]->name, name) == 0)
            return k_drivers[i];
    return NULL;
}
