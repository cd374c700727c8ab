/*
 * test_json_float.c — json_format_float (tools/common/json_writer.c), the
 * float writer of `ember embed` and the server: its text must be exactly
 * snprintf("%.9g")'s, which it replaced for speed, and read back (strtof) to
 * the same float32. Checked on special values (zeros, the smallest
 * subnormal, FLT_MIN, FLT_MAX, the edges of %g's fixed notation, values that
 * round up into another decade, exact half-way cases), on every float of a
 * few ranges and on 3 million random bit patterns.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_writer.h"

static long g_checked, g_failed;

static void check(float v) {
    char got[32], want[32];
    g_checked++;
    size_t n = json_format_float(got, v);
    if (!isfinite(v)) {
        if (strcmp(got, "null") != 0 && g_failed++ < 10)
            printf("FAIL %a: \"%s\", want null\n", (double)v, got);
        return;
    }
    snprintf(want, sizeof want, "%.9g", (double)v);
    float back = strtof(got, NULL);
    if ((strcmp(got, want) != 0 || n != strlen(want) || memcmp(&back, &v, sizeof v) != 0) &&
        g_failed++ < 10)
        printf("FAIL %a: \"%s\" (length %zu), printf \"%s\", reads back as %a\n", (double)v, got,
               n, want, (double)back);
}

static float from_bits(uint32_t b) {
    float v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static uint32_t to_bits(float v) {
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

/* every float from a up, n of them */
static void check_run(float a, long n) {
    for (uint32_t b = to_bits(a), end = b + (uint32_t)n; b != end; b++)
        check(from_bits(b));
}

int main(void) {
    const float special[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 0.1f, 1e-45f, FLT_MIN, FLT_MAX,
                             -FLT_MAX, 1e-4f, 9.99999975e-5f, 1e-5f, 123456789.0f, 999999999.0f,
                             1e9f, 1e10f, 99999999.5f, 0.999999999f, 1610167.125f, 318681.3125f,
                             3.14159265f, 1e38f, 1e-38f, 2.5f, 0.125f, 100.0f, 1e8f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        check(special[i]);
        check(-special[i]);
    }
    check(INFINITY);
    check(-INFINITY);
    check(NAN);
    /* decades' edges, the fixed/scientific switch, subnormals */
    for (int e = -45; e <= 38; e++) {
        float p = (float)pow(10.0, e);
        check_run(nextafterf(p, 0.0f), 3);
    }
    check_run(1e-4f, 20000);
    check_run(999990000.0f, 2000);
    check_run(1e-45f, 20000);
    check_run(1.0f, 100000);
    /* random bit patterns (xorshift64) */
    uint64_t s = 88172645463325252ull;
    for (long i = 0; i < 3000000; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        check(from_bits((uint32_t)s));
    }
    printf("%ld of %ld values failed\n", g_failed, g_checked);
    return g_failed ? 1 : 0;
}
