/*
 * json.c — see json.h.
 */
#include "json.h"

#include "core/util.h"

const char *ember_json_type_name(const json_t *v) {
    if (!v)
        return "nothing";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

ember_status ember_json_load_buf(const char *data, size_t len, const char *what, json_t **out) {
    json_error_t jerr;
    *out = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!*out)
        return ember_error(EMBER_E_FORMAT, "%s: invalid JSON at line %d, column %d: %s", what,
                           jerr.line, jerr.column, jerr.text);
    return EMBER_OK;
}

ember_status ember_json_load_file(const char *path, size_t max_bytes, json_t **out) {
    *out = NULL;
    char *data;
    size_t len;
    EMBER_TRY(ember_read_file(path, max_bytes, &data, &len));
    ember_status st = ember_json_load_buf(data, len, path, out);
    free(data);
    return st;
}

static const json_t *lookup(const json_t *obj, const char *key) {
    if (!obj || !json_is_object(obj))
        return NULL;
    const json_t *v = json_object_get(obj, key);
    return (v && !json_is_null(v)) ? v : NULL;
}

ember_status ember_json_int(const json_t *obj, const char *key, const char *what, int64_t *out) {
    const json_t *v = lookup(obj, key);
    if (!v)
        return EMBER_E_NOT_FOUND;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return EMBER_OK;
    }
    /* Some writers emit 512.0 for integers; accept exact integral reals. */
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* range first: converting an out-of-range double is undefined */
        if (d > -9.0e18 && d < 9.0e18 && d == (double)(int64_t)d) {
            *out = (int64_t)d;
            return EMBER_OK;
        }
    }
    return ember_error(EMBER_E_FORMAT, "%s: '%s' must be an integer, found %s", what, key,
                       ember_json_type_name(v));
}

ember_status ember_json_req_int(const json_t *obj, const char *key, const char *what,
                                int64_t *out) {
    ember_status st = ember_json_int(obj, key, what, out);
    if (st == EMBER_E_NOT_FOUND)
        return ember_error(EMBER_E_FORMAT, "%s: required key '%s' is missing", what, key);
    return st;
}

ember_status ember_json_num(const json_t *obj, const char *key, const char *what, double *out) {
    const json_t *v = lookup(obj, key);
    if (!v)
        return EMBER_E_NOT_FOUND;
    if (!json_is_number(v))
        return ember_error(EMBER_E_FORMAT, "%s: '%s' must be a number, found %s", what, key,
                           ember_json_type_name(v));
    *out = json_number_value(v);
    return EMBER_OK;
}

ember_status ember_json_bool(const json_t *obj, const char *key, const char *what, bool *out) {
    const json_t *v = lookup(obj, key);
    if (!v)
        return EMBER_E_NOT_FOUND;
    if (!json_is_boolean(v))
        return ember_error(EMBER_E_FORMAT, "%s: '%s' must be true or false, found %s", what, key,
                           ember_json_type_name(v));
    *out = json_is_true(v);
    return EMBER_OK;
}

ember_status ember_json_str(const json_t *obj, const char *key, const char *what,
                            const char **out) {
    const json_t *v = lookup(obj, key);
    if (!v)
        return EMBER_E_NOT_FOUND;
    if (!json_is_string(v))
        return ember_error(EMBER_E_FORMAT, "%s: '%s' must be a string, found %s", what, key,
                           ember_json_type_name(v));
    *out = json_string_value(v);
    return EMBER_OK;
}
