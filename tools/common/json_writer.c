/*
 * json_writer.c — JSON string escaping with U+FFFD for invalid UTF-8, and
 * round-trip float formatting (see json_writer.h for the rules).
 */
#include "common/json_writer.h"

#include <math.h>
#include <stdint.h>
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

/* Powers of ten 1e0 .. 1e60 as doubles (each literal correctly rounded:
 * exact up to 1e22, within half an ulp beyond). */
static const double k_pow10[61] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11, 1e12,
    1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25,
    1e26, 1e27, 1e28, 1e29, 1e30, 1e31, 1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38,
    1e39, 1e40, 1e41, 1e42, 1e43, 1e44, 1e45, 1e46, 1e47, 1e48, 1e49, 1e50, 1e51,
    1e52, 1e53, 1e54, 1e55, 1e56, 1e57, 1e58, 1e59, 1e60};

/* d * 10^p for |p| <= 60, one rounding in the product (or quotient) */
static double scale10(double d, int p) { return p >= 0 ? d * k_pow10[p] : d / k_pow10[-p]; }

/* The text of snprintf("%.9g", v) for a finite float, 5.9 times faster
 * (149 -> 25 ns a value on a 2-vCPU Xeon, docs/performance.md: snprintf
 * spent 57 us on a 384-dimension vector, more than a GPU pass spends on
 * it). The 9
 * significant digits are round(|v| 10^(8 - e)) in double arithmetic: off by
 * at most 2.2e-7 before rounding, so the digits are printf's except when
 * |v| 10^(8 - e) lies within that of a half-way point (then the last digit
 * may differ by one). Either way the text reads back to the same float32:
 * 9 digits within one unit of the last are within 1.1e-8 of v, less than
 * half the float spacing (2^-25 relative at least). tests/test_json_float.c
 * checks both against snprintf and strtof. */
static size_t format_float9(char *buf, float v) {
    char *o = buf;
    double d = (double)v;
    if (signbit(v)) {
        *o++ = '-';
        d = -d;
    }
    if (d == 0.0) {
        *o++ = '0';
        *o = '\0';
        return (size_t)(o - buf);
    }
    /* decimal exponent e: 10^e <= d < 10^(e+1). From the binary exponent
     * (2^(b-1) <= d < 2^b) the estimate floor((b - 1) log10 2) is e or
     * e - 1; the scaled value tells which. */
    int b;
    (void)frexp(d, &b);
    int e = (int)floor((b - 1) * 0.30102999566398120);
    double m = scale10(d, 8 - e);
    if (m >= 999999999.5) {
        e++;
        m = scale10(d, 8 - e);
    }
    /* to nearest, ties to even, as printf rounds an exact half-way value */
    uint32_t mant = (uint32_t)nearbyint(m);
    if (mant >= 1000000000u) { /* rounding carried into a tenth digit */
        mant /= 10;
        e++;
    }
    char dig[9];
    for (int i = 8; i >= 0; i--) {
        dig[i] = (char)('0' + mant % 10);
        mant /= 10;
    }
    int nd = 9; /* %g drops trailing zeros */
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    if (e >= -4 && e < 9) { /* %g's fixed notation */
        if (e >= 0) {
            for (int i = 0; i <= e; i++)
                *o++ = i < nd ? dig[i] : '0';
            if (nd > e + 1) {
                *o++ = '.';
                for (int i = e + 1; i < nd; i++)
                    *o++ = dig[i];
            }
        } else {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -e - 1; i++)
                *o++ = '0';
            for (int i = 0; i < nd; i++)
                *o++ = dig[i];
        }
    } else { /* d.ddddddddde+XX, at least two exponent digits */
        *o++ = dig[0];
        if (nd > 1) {
            *o++ = '.';
            for (int i = 1; i < nd; i++)
                *o++ = dig[i];
        }
        *o++ = 'e';
        *o++ = e < 0 ? '-' : '+';
        const int a = e < 0 ? -e : e;
        if (a >= 10) {
            *o++ = (char)('0' + a / 10);
            *o++ = (char)('0' + a % 10);
        } else {
            *o++ = '0';
            *o++ = (char)('0' + a);
        }
    }
    *o = '\0';
    return (size_t)(o - buf);
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
    return format_float9(buf, v);
}
