/*
 * test_util.h — tiny assertion helpers shared by the C tests. A failed
 * CHECK prints where and why, and the test exits non-zero at the end.
 */
#ifndef EMBER_TEST_UTIL_H
#define EMBER_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

static int g_failures;
static int g_checks;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        g_checks++;                                                       \
        if (!(cond)) {                                                    \
            g_failures++;                                                 \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fprintf(stderr, "\n");                                        \
        }                                                                 \
    } while (0)

/* Checks an Ember call returned `want`; prints the library's message. */
#define CHECK_STATUS(call, want)                                                         \
    do {                                                                                 \
        ember_status st_ = (call);                                                       \
        CHECK(st_ == (want), "%s returned %d (%s), wanted %d: %s", #call, st_,           \
              ember_status_str(st_), (int)(want), ember_last_error());                   \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, EMBER_OK)

static inline int test_finish(const char *name) {
    if (g_failures) {
        fprintf(stderr, "%s: %d of %d checks failed\n", name, g_failures, g_checks);
        return 1;
    }
    printf("%s: all %d checks passed\n", name, g_checks);
    return 0;
}

/* Cosine similarity and largest absolute difference of two vectors. */
static inline void test_compare(const float *a, const float *b, int n, double *cosine,
                                double *max_abs) {
    double dot = 0, na = 0, nb = 0, m = 0;
    for (int i = 0; i < n; i++) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
        double d = fabs((double)a[i] - b[i]);
        if (d > m)
            m = d;
    }
    *cosine = dot / (sqrt(na) * sqrt(nb) + 1e-300);
    *max_abs = m;
}

static inline char *test_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

#ifdef JANSSON_H
/* The bf16 bound of a golden case: min(cap, the cosine the reference itself
 * reaches in bf16 minus 0.0005), the reference's number being
 * meta.json's "reference_bf16"."min_cosine" (scripts/make_bf16_bounds.py);
 * `cap` when the case has none. */
static inline double test_bf16_bound(const char *dir, double cap) {
    char path[1024];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    json_error_t err;
    json_t *meta = json_load_file(path, 0, &err);
    double bound = cap;
    json_t *c = json_object_get(json_object_get(meta, "reference_bf16"), "min_cosine");
    if (json_is_number(c) && json_number_value(c) - 0.0005 < cap)
        bound = json_number_value(c) - 0.0005;
    json_decref(meta);
    return bound;
}
#endif

#endif
