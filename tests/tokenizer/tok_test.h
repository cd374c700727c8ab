/*
 * tok_test.h — tiny helpers shared by the tokenizer tests: a failure counter
 * with file:line messages, JSON Lines reading, and access to the fixtures
 * directory (passed as argv[1] by CTest).
 */
#ifndef EMBER_TESTS_TOK_TEST_H
#define EMBER_TESTS_TOK_TEST_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

static int tt_failures;
static int tt_checks;

#define TT_CHECK(cond, ...)                                                       \
    do {                                                                          \
        tt_checks++;                                                              \
        if (!(cond)) {                                                            \
            tt_failures++;                                                        \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                         \
            fprintf(stderr, "\n");                                                \
        }                                                                         \
    } while (0)

/* Calls fn(record, user) for each line of a .jsonl file; returns lines read
 * or -1 when the file cannot be read. */
static inline long tt_jsonl(const char *path, int (*fn)(json_t *rec, void *user), void *user) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    long n = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) > 0) {
        json_error_t err;
        json_t *rec = json_loadb(line, (size_t)got, JSON_ALLOW_NUL, &err);
        if (!rec) {
            fprintf(stderr, "%s:%ld: bad JSON: %s\n", path, n + 1, err.text);
            tt_failures++;
            break;
        }
        n++;
        int stop = fn(rec, user);
        json_decref(rec);
        if (stop)
            break;
    }
    free(line);
    fclose(f);
    return n;
}

static inline char *tt_path(const char *dir, const char *a, const char *b) {
    size_t n = strlen(dir) + strlen(a) + (b ? strlen(b) : 0) + 3;
    char *p = malloc(n);
    if (b)
        snprintf(p, n, "%s/%s/%s", dir, a, b);
    else
        snprintf(p, n, "%s/%s", dir, a);
    return p;
}

static inline ember_tokenizer *tt_load(const char *path) {
    ember_tokenizer *t = NULL;
    ember_status st = ember_tokenizer_load(path, &t);
    if (st != EMBER_OK) {
        fprintf(stderr, "load %s failed: %s\n", path, ember_last_error());
        tt_failures++;
        return NULL;
    }
    return t;
}

static inline int tt_finish(const char *name) {
    printf("%s: %d checks, %d failures\n", name, tt_checks, tt_failures);
    return tt_failures ? 1 : 0;
}

#endif
