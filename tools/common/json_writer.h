/*
 * json_writer.h — the one JSON string and number writer of the `ember`
 * command and server, so both escape text the same way. Tool-side code, not
 * library API.
 *
 * Strings: RFC 8259 escapes (\" \\ \n \r \t \b \f, \u00XX for the other
 * control characters and DEL); valid UTF-8 is copied as it is; each maximal
 * ill-formed subsequence of invalid UTF-8 becomes one \ufffd (Unicode's
 * "substitution of maximal subparts", what Python's
 * bytes.decode("utf-8", errors="replace") does and what Ember's tokenizer
 * does), so the output is always valid JSON that Python reads back as the
 * same text a Hugging Face pipeline would have decoded.
 * Floats: 9 significant digits (reads back to the same float32); NaN and
 * infinities, which JSON cannot represent, as null.
 */
#ifndef EMBER_TOOLS_JSON_WRITER_H
#define EMBER_TOOLS_JSON_WRITER_H

#include <stddef.h>

/* Receives `n` bytes of output. */
typedef void (*json_sink_fn)(void *sink, const char *p, size_t n);

/* Writes `n` bytes of `s` as a quoted, escaped JSON string. */
void json_write_string(json_sink_fn put, void *sink, const char *s, size_t n);

/* Formats `v` as a JSON number (or null) into buf; returns the length. */
size_t json_format_float(char buf[32], float v);

#endif
