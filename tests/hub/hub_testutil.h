/*
 * hub_testutil.h — what the hub tests share: check macros that keep going
 * after a failure and print Ember's last error, temporary directories removed
 * afterwards, an environment isolated from the user's (HF_* and proxy
 * variables cleared, HF_HOME in a temporary directory), file helpers.
 */
#ifndef EMBER_TESTS_HUB_TESTUTIL_H
#define EMBER_TESTS_HUB_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "ember.h"

extern int tu_failures;

#define CHECK(cond, ...)                                                                         \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            tu_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);              \
            fprintf(stderr, __VA_ARGS__);                                                        \
            fprintf(stderr, "\n    last error: %s\n", ember_last_error());                       \
        }                                                                                        \
    } while (0)

/* Like CHECK, but leaves the current test function (which returns void). */
#define REQUIRE(cond, ...)                                                                       \
    do {                                                                                         \
        int tu_before_ = tu_failures;                                                            \
        CHECK(cond, __VA_ARGS__);                                                                \
        if (tu_failures != tu_before_)                                                           \
            return;                                                                              \
    } while (0)

/* Runs one test function with a fresh temporary directory (its path is in
 * tu_dir) and an isolated environment, then removes the directory. */
extern char tu_dir[512];
void tu_run(const char *name, void (*fn)(void));
#define RUN(fn) tu_run(#fn, fn)
/* Exit status for main(): 0 when every check passed. */
int tu_finish(void);

/* Clears every variable the hub code reads and sets HF_HOME=<tu_dir>/home
 * and HF_ENDPOINT=endpoint (NULL: unset). */
void tu_isolate_env(const char *endpoint);

/* "<tu_dir>/<rel>" in a static rotating buffer (valid for a few calls). */
const char *tu_path(const char *rel);
/* "<tu_dir>/home/hub/models--<org>--<name>" for "org/name". */
const char *tu_storage(const char *repo_id);

bool tu_exists(const char *path);  /* lstat: links count even if dangling */
bool tu_is_link(const char *path);
char *tu_read(const char *path, size_t *len); /* NULL if missing; free() it */
bool tu_write(const char *path, const void *data, size_t len); /* creates parent dirs */
bool tu_mkdirs(const char *path);
void tu_rmrf(const char *path);
bool tu_same_file(const char *a, const char *b); /* same bytes */
/* Number of entries of a directory whose name ends with `suffix` (NULL: all). */
int tu_count_dir(const char *dir, const char *suffix);

/* sha256 hex and git blob sha1 hex of a file (false if it cannot be read). */
bool tu_sha256_file(const char *path, char hex[65]);
bool tu_git_sha1_file(const char *path, char hex[41]);

/* An http://127.0.0.1:PORT URL where nothing listens (connection refused). */
const char *tu_dead_url(void);

/* Parameters as ember_model_default_params() will give them. */
ember_model_params tu_params(void);

/* Seconds since an arbitrary point, monotonic. */
double tu_now(void);

#endif
