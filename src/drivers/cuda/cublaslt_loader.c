/*
 * cublaslt_loader.c — loads cuBLASLt with dlopen when a CUDA device is
 * first used, instead of linking it.
 *
 * Why: libcublasLt is over 500 MB; linked, it is mapped and relocated at
 * the start of every program that links Ember (about 150 MB of resident
 * memory) even when it only embeds on the CPU, and a CUDA-enabled build
 * would not start at all on a machine without the CUDA libraries. Loaded
 * here, it costs nothing until cuda_init has found a usable GPU, and its
 * absence is an ordinary error of the CUDA driver ("auto" then runs on the
 * CPU).
 *
 * The soname is the one of the toolkit the build used (EMBER_CUBLASLT_SONAME,
 * set by CMake from its major version), then the one of the cuBLAS headers
 * compiled against, then the same file in the toolkit's library directory
 * (EMBER_CUBLASLT_DIR: a toolkit outside the loader's search path). No
 * unversioned libcublasLt.so: another major version has another ABI.
 */
#include "drivers/cuda/cublaslt_loader.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define LT_STR2(x) #x
#define LT_STR(x) LT_STR2(x)
#define LT_HEADER_SONAME "libcublasLt.so." LT_STR(CUBLAS_VER_MAJOR)
#ifndef EMBER_CUBLASLT_SONAME
#define EMBER_CUBLASLT_SONAME LT_HEADER_SONAME
#endif

ember_cublaslt ember_lt;

static pthread_once_t lt_once = PTHREAD_ONCE_INIT;
static int lt_ok;
static char lt_msg[768];

static void *lt_open(char *why, size_t why_size) {
    const char *names[3] = {EMBER_CUBLASLT_SONAME, LT_HEADER_SONAME, NULL};
#ifdef EMBER_CUBLASLT_DIR
    names[2] = EMBER_CUBLASLT_DIR "/" EMBER_CUBLASLT_SONAME;
#endif
    why[0] = '\0';
    for (int i = 0; i < 3; i++) {
        if (!names[i] || (i == 1 && strcmp(names[1], names[0]) == 0))
            continue;
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h)
            return h;
        if (!why[0]) { /* the first name's reason is the useful one */
            const char *e = dlerror();
            snprintf(why, why_size, "%s", e ? e : "dlopen failed");
        }
    }
    return NULL;
}

static void lt_load_once(void) {
    char why[512];
    void *h = lt_open(why, sizeof why);
    if (!h) {
        snprintf(lt_msg, sizeof lt_msg,
                 "CUDA device found but %s could not be loaded: %s; install the CUDA %d cuBLAS "
                 "runtime (libcublasLt) or add its directory to LD_LIBRARY_PATH",
                 EMBER_CUBLASLT_SONAME, why, CUBLAS_VER_MAJOR);
        return;
    }
    ember_cublaslt t;
    memset(&t, 0, sizeof t);
#define LT_SYM(fn)                                                                             \
    do {                                                                                       \
        void *p_ = dlsym(h, #fn);                                                              \
        if (!p_) {                                                                             \
            snprintf(lt_msg, sizeof lt_msg,                                                    \
                     "%s was loaded but has no %s; install the CUDA %d cuBLAS runtime",        \
                     EMBER_CUBLASLT_SONAME, #fn, CUBLAS_VER_MAJOR);                            \
            return; /* the handle stays open: harmless, and it may be in use */                \
        }                                                                                      \
        memcpy(&t.fn, &p_, sizeof p_); /* object to function pointer (POSIX) */                \
    } while (0);
    EMBER_LT_FUNCTIONS(LT_SYM)
#undef LT_SYM
    const size_t v = t.cublasLtGetVersion();
    if (v / 10000 != (size_t)CUBLAS_VER_MAJOR) {
        snprintf(lt_msg, sizeof lt_msg,
                 "the loaded cuBLASLt is version %zu.%zu, this build needs %d.x; install the "
                 "CUDA %d cuBLAS runtime", v / 10000, v / 100 % 100, CUBLAS_VER_MAJOR,
                 CUBLAS_VER_MAJOR);
        return;
    }
    ember_lt = t;
    lt_ok = 1;
}

ember_status ember_cublaslt_load(void) {
    if (pthread_once(&lt_once, lt_load_once) != 0)
        return ember_error(EMBER_E_INTERNAL, "cuda: pthread_once failed loading cuBLASLt");
    if (lt_ok)
        return EMBER_OK;
    return ember_error(EMBER_E_UNSUPPORTED, "%s", lt_msg);
}

int ember_cublaslt_loaded(void) {
    /* only meaningful once ember_cublaslt_load has returned somewhere */
    return lt_ok;
}
