/*
 * log.c — one process-wide logging callback.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static ember_log_fn g_log_fn;
static void *g_log_user;
static ember_log_level g_log_level = EMBER_LOG_WARN;

void ember_log_set(ember_log_fn fn, ember_log_level max_level, void *user) {
    g_log_fn = fn;
    g_log_user = user;
    g_log_level = max_level;
}

int ember_log_enabled(ember_log_level level) { return g_log_fn && level <= g_log_level; }

void ember_log(ember_log_level level, const char *fmt, ...) {
    if (!ember_log_enabled(level))
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    g_log_fn(level, line, g_log_user);
}
