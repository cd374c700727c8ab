/*
 * json_writer.c — JSON string escaping with U+FFFD for invalid UTF-8, and
 * round-trip float formatting (see json_writer.h for the rules).
 */
#include "common/json_writer.h"

#include <math.h>
#include <stdio.h>

/* Length of the well-formed UTF-8 sequence at s[0..n) (Unicode 15, table
 * 3-7: no overlongs, surrogates or values above U+10FFFF) when `*bad` is
 * left 0; otherwise *bad is the length of the maximal ill-formed subpart to
 * replace with one U+FFFD: the lead byte and the continuation bytes that
 * could still have started a valid sequence (at least 1). */
static size_t utf8_len(const unsigned char *s, size_t n, size_t *bad) {
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    *bad = 0;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xbf;
        if (i >= n || s[i] < l || s[i] > h) {
            *bad = i;
            return 0;
        }
    }
    return len;
}

void json_write_string(json_sink_fn put, void *sink, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    put(sink, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed in one piece */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[6];
        if (c >= 0x80) {
            size_t bad;
            size_t k = utf8_len((const unsigned char *)s + i, n - i, &bad);
            if (k) {
                run += k;
                i += k - 1;
                continue;
            }
            if (run)
                put(sink, s + i - run, run);
            run = 0;
            put(sink, "\\ufffd", 6);
            i += bad - 1;
            continue;
        }
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                u[0] = '\\';
                u[1] = 'u';
                u[2] = '0';
                u[3] = '0';
                u[4] = hex[c >> 4];
                u[5] = hex[c & 15];
            } else {
                run++;
                continue;
            }
        }
        if (run)
            put(sink, s + i - run, run);
        run = 0;
        if (esc)
            put(sink, esc, 2);
        else
            put(sink, u, 6);
    }
    if (run)
        put(sink, s + n - run, run);
    put(sink, "\"", 1);
}

size_t json_format_float(char buf[32], float v) {
    if (!isfinite(v)) { /* JSON has no NaN or infinity */
        buf[0] = 'n';
        buf[1] = 'u';
        buf[2] = 'l';
        buf[3] = 'l';
        buf[4] = '\0';
        return 4;
    }
    int k = snprintf(buf, 32, "%.9g", (double)v);
    return k > 0 ? (size_t)k : 0;
}
