/*
 * error.c — thread-local error messages and status descriptions.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define EMBER_ERRMSG_MAX 2048

static _Thread_local char tls_message[EMBER_ERRMSG_MAX];

ember_status ember_error(ember_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_message, sizeof tls_message, fmt, ap);
    va_end(ap);
    return status;
}

ember_status ember_error_prefix(ember_status status, const char *fmt, ...) {
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Shift the old message right to make room for "prefix: ", cutting its
     * end when the whole does not fit. */
    size_t plen = strlen(prefix);
    if (plen > EMBER_ERRMSG_MAX - 3)
        plen = EMBER_ERRMSG_MAX - 3;
    size_t room = EMBER_ERRMSG_MAX - 1 - plen - 2;
    size_t olen = strlen(tls_message);
    if (olen > room)
        olen = room;
    memmove(tls_message + plen + 2, tls_message, olen);
    memcpy(tls_message, prefix, plen);
    tls_message[plen] = ':';
    tls_message[plen + 1] = ' ';
    tls_message[plen + 2 + olen] = '\0';
    return status;
}

void ember_error_clear(void) { tls_message[0] = '\0'; }

const char *ember_last_error(void) { return tls_message; }

const char *ember_status_str(ember_status status) {
    switch (status) {
    case EMBER_OK: return "ok";
    case EMBER_E_INVALID_ARGUMENT: return "invalid argument";
    case EMBER_E_IO: return "input/output error";
    case EMBER_E_FORMAT: return "malformed input";
    case EMBER_E_UNSUPPORTED: return "unsupported";
    case EMBER_E_MODEL: return "model weights do not match the configuration";
    case EMBER_E_NOMEM: return "out of memory";
    case EMBER_E_TOO_LONG: return "input too long";
    case EMBER_E_NOT_FOUND: return "not found";
    case EMBER_E_NETWORK: return "network error";
    case EMBER_E_AUTH: return "not authorized";
    case EMBER_E_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *ember_version(void) { return EMBER_VERSION_STRING; }
