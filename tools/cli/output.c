/*
 * output.c — the CLI's JSON output over tools/common/json_writer.c (the
 * server's writer too): RFC 8259 strings with invalid UTF-8 replaced by
 * U+FFFD, floats that read back to the same float32.
 */
#include "cli.h"
#include "common/json_writer.h"

static void file_sink(void *f, const char *p, size_t n) { fwrite(p, 1, n, f); }

void cli_json_string(FILE *f, const char *s, size_t len) { json_write_string(file_sink, f, s, len); }

void cli_json_float(FILE *f, float v) {
    char tmp[32];
    fwrite(tmp, 1, json_format_float(tmp, v), f);
}
