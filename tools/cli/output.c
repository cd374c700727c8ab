/*
 * output.c — JSON output helpers: RFC 8259 string escaping and floats
 * printed with 9 significant digits, enough to read back the same float.
 */
#include <math.h>

#include "cli.h"

void cli_json_string(FILE *f, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                fputs("\\u00", f);
                fputc(hex[c >> 4], f);
                fputc(hex[c & 15], f);
            } else {
                fputc(c, f);
            }
        }
    }
    fputc('"', f);
}

void cli_json_float(FILE *f, float v) {
    if (!isfinite(v)) { /* not representable in JSON */
        fputs("null", f);
        return;
    }
    fprintf(f, "%.9g", (double)v);
}
