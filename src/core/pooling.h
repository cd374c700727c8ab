/*
 * pooling.h — sentence-transformers pooling and L2 normalization on host
 * memory: used by the CPU driver and as the fallback of drivers without
 * these ops.
 */
#ifndef EMBER_CORE_POOLING_H
#define EMBER_CORE_POOLING_H

#include <stdint.h>

/* out[cols] = pooling of the n rows (stride cols) of one sequence; `mode` is
 * an ember_pooling. Matches sentence_transformers.models.Pooling. */
void ember_pool_sequence(const float *rows, int64_t n, int64_t cols, int32_t mode, float *out);
/* Same over rows `ld` floats apart. */
void ember_pool_sequence_strided(const float *rows, int64_t n, int64_t cols, int64_t ld,
                                 int32_t mode, float *out);

/* x[r] /= max(||x[r]||_2, 1e-12), as torch.nn.functional.normalize. */
void ember_l2_normalize_rows(float *x, int64_t rows, int64_t cols);

#endif
