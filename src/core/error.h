/*
 * error.h — how the library records failures.
 *
 * Every fallible internal function returns an ember_status and, on failure,
 * has already called ember_error() with a precise message. The message lives
 * in thread-local storage so that concurrent callers never see each other's
 * errors; ember_last_error() hands it to the user.
 */
#ifndef EMBER_CORE_ERROR_H
#define EMBER_CORE_ERROR_H

#include "ember.h"

#if defined(__GNUC__)
#define EMBER_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define EMBER_PRINTF(a, b)
#endif

/* Records `status` with a formatted message for this thread and returns
 * `status`, so callers can write `return ember_error(EMBER_E_FORMAT, ...)`. */
ember_status ember_error(ember_status status, const char *fmt, ...) EMBER_PRINTF(2, 3);

/* Prefixes the current message with "prefix: " (adds context while an error
 * travels up, e.g. the file name). Returns `status`. */
ember_status ember_error_prefix(ember_status status, const char *fmt, ...) EMBER_PRINTF(2, 3);

/* Forgets the message of this thread (called at the start of API calls). */
void ember_error_clear(void);

/* Propagate a failing status. */
#define EMBER_TRY(expr)                      \
    do {                                     \
        ember_status ember_try_st_ = (expr); \
        if (ember_try_st_ != EMBER_OK)       \
            return ember_try_st_;            \
    } while (0)

#endif
