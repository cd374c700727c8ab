/*
 * cublaslt_loader.h — cuBLASLt through a table of function pointers, filled
 * by dlopen on the first use of a CUDA device (see cublaslt_loader.c).
 *
 * The members carry the real prototypes of <cublasLt.h> (__typeof__), named
 * as the functions: the driver calls ember_lt.cublasLtMatmul(...) where it
 * used to call cublasLtMatmul(...).
 */
#ifndef EMBER_CUBLASLT_LOADER_H
#define EMBER_CUBLASLT_LOADER_H

#include <cublasLt.h>

#include "core/error.h"

/* exactly the cuBLASLt functions src/drivers/cuda uses */
#define EMBER_LT_FUNCTIONS(X)                                                                  \
    X(cublasLtGetVersion)                                                                      \
    X(cublasLtGetStatusName)                                                                   \
    X(cublasLtGetStatusString)                                                                 \
    X(cublasLtCreate)                                                                          \
    X(cublasLtDestroy)                                                                         \
    X(cublasLtMatmulDescCreate)                                                                \
    X(cublasLtMatmulDescDestroy)                                                               \
    X(cublasLtMatmulDescSetAttribute)                                                          \
    X(cublasLtMatrixLayoutCreate)                                                              \
    X(cublasLtMatrixLayoutDestroy)                                                             \
    X(cublasLtMatmulPreferenceCreate)                                                          \
    X(cublasLtMatmulPreferenceDestroy)                                                         \
    X(cublasLtMatmulPreferenceSetAttribute)                                                    \
    X(cublasLtMatmulAlgoGetHeuristic)                                                          \
    X(cublasLtMatmulAlgoCheck)                                                                 \
    X(cublasLtMatmul)

typedef struct ember_cublaslt {
#define EMBER_LT_MEMBER(fn) __typeof__(fn) *fn;
    EMBER_LT_FUNCTIONS(EMBER_LT_MEMBER)
#undef EMBER_LT_MEMBER
} ember_cublaslt;

/* Filled by ember_cublaslt_load(); all NULL before (and after a failure). */
extern ember_cublaslt ember_lt;

/* Loads cuBLASLt once per process (thread-safe). EMBER_OK when every entry
 * of ember_lt is set; otherwise EMBER_E_UNSUPPORTED with a message naming
 * the library and dlerror(), on every call. Never aborts or prints. */
ember_status ember_cublaslt_load(void);

/* Whether the library has been loaded (for tests). */
int ember_cublaslt_loaded(void);

#endif
