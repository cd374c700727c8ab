/*
 * sbuf.c — a growable byte buffer for response bodies, with the JSON and
 * base64 writers the server needs. Responses are built in memory and handed
 * to libmicrohttpd in one piece (MHD_RESPMEM_MUST_FREE), so a failed
 * allocation only sets a flag that the caller turns into a 500.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

void sb_free(sbuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void sb_reserve(sbuf *b, size_t extra) {
    if (b->oom)
        return;
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return;
    }
    b->data = p;
    b->cap = cap;
}

void sb_put(sbuf *b, const void *p, size_t n) {
    sb_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        sb_put(b, small, (size_t)n);
        return;
    }
    sb_reserve(b, (size_t)n);
    if (b->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the well-formed UTF-8 sequence at s[0..n) (Unicode 15, table
 * 3-7: no overlongs, surrogates or values above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
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
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

void sb_json_str(sbuf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    sb_reserve(b, n + 2);
    sb_put(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed in one piece */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[6];
        if (c >= 0x80) { /* valid UTF-8 as it is; anything else becomes U+FFFD */
            size_t k = utf8_len((const unsigned char *)s + i, n - i);
            if (k) {
                run += k;
                i += k - 1;
                continue;
            }
            sb_put(b, s + i - run, run);
            run = 0;
            sb_puts(b, "\\ufffd");
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
                memcpy(u, "\\u00", 4);
                u[4] = hex[c >> 4];
                u[5] = hex[c & 15];
            } else {
                run++;
                continue;
            }
        }
        sb_put(b, s + i - run, run);
        run = 0;
        if (esc)
            sb_puts(b, esc);
        else
            sb_put(b, u, 6);
    }
    sb_put(b, s + n - run, run);
    sb_put(b, "\"", 1);
}

void sb_json_float(sbuf *b, float v) {
    if (!isfinite(v)) { /* JSON has no NaN or infinity */
        sb_put(b, "null", 4);
        return;
    }
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%.9g", (double)v);
    sb_put(b, tmp, (size_t)n);
}

void sb_base64(sbuf *b, const void *p, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = p;
    size_t out = (n + 2) / 3 * 4;
    sb_reserve(b, out);
    if (b->oom)
        return;
    char *d = b->data + b->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *d++ = tab[v >> 18];
        *d++ = tab[(v >> 12) & 63];
        *d++ = tab[(v >> 6) & 63];
        *d++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
        *d++ = tab[v >> 18];
        *d++ = tab[(v >> 12) & 63];
        *d++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *d++ = '=';
    }
    b->len += out;
    b->data[b->len] = '\0';
}

char *sb_take(sbuf *b, size_t *len) {
    if (b->oom) {
        sb_free(b);
        return NULL;
    }
    if (!b->data)
        sb_reserve(b, 0);
    if (b->oom)
        return NULL;
    char *p = b->data;
    *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
