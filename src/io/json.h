/*
 * json.h — reading JSON files with jansson, with errors that name the file,
 * the line and column, and the key that was wrong.
 *
 * Typed getters distinguish "absent" (EMBER_E_NOT_FOUND, no message set, so
 * callers may apply a default) from "present but wrong" (EMBER_E_FORMAT with a
 * message such as "config.json: 'hidden_size' must be an integer, found string").
 */
#ifndef EMBER_IO_JSON_H
#define EMBER_IO_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

/* Parses a JSON file of at most `max_bytes`. `what` names it in messages
 * (usually the path). The caller json_decref()s *out. */
ember_status ember_json_load_file(const char *path, size_t max_bytes, json_t **out);
/* Parses `len` bytes (NUL allowed inside strings). */
ember_status ember_json_load_buf(const char *data, size_t len, const char *what, json_t **out);

/* Getters. `what` names the file for messages. Return EMBER_OK,
 * EMBER_E_NOT_FOUND (key absent or null; nothing recorded) or EMBER_E_FORMAT. */
ember_status ember_json_int(const json_t *obj, const char *key, const char *what, int64_t *out);
ember_status ember_json_num(const json_t *obj, const char *key, const char *what, double *out);
ember_status ember_json_bool(const json_t *obj, const char *key, const char *what, bool *out);
/* Borrowed string owned by `obj`. */
ember_status ember_json_str(const json_t *obj, const char *key, const char *what, const char **out);

/* Like the getters, but absence is an error naming the key. */
ember_status ember_json_req_int(const json_t *obj, const char *key, const char *what, int64_t *out);

/* Name of a JSON type for messages ("string", "object", ...). */
const char *ember_json_type_name(const json_t *v);

#endif
