/*
 * log.h — the library's diagnostics, routed to the user's callback.
 * Silent unless ember_log_set() installed one; never writes to stdout.
 */
#ifndef EMBER_CORE_LOG_H
#define EMBER_CORE_LOG_H

#include "error.h"

void ember_log(ember_log_level level, const char *fmt, ...) EMBER_PRINTF(2, 3);
/* True when a message at `level` would reach the callback (skip costly
 * formatting otherwise). */
int ember_log_enabled(ember_log_level level);

#endif
