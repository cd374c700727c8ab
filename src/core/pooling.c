/*
 * pooling.c — see pooling.h. Sums are accumulated in double: pooling is cheap
 * and this keeps long (8192-token) means as exact as the reference's.
 */
#include "pooling.h"

#include <math.h>

#include "ember.h"

void ember_pool_sequence_strided(const float *rows, int64_t n, int64_t cols, int64_t ld,
                                 int32_t mode, float *out) {
    if (n <= 0) {
        for (int64_t c = 0; c < cols; c++)
            out[c] = 0.0f;
        return;
    }
    switch (mode) {
    case EMBER_POOLING_CLS:
        for (int64_t c = 0; c < cols; c++)
            out[c] = rows[c];
        return;
    case EMBER_POOLING_LAST_TOKEN:
        for (int64_t c = 0; c < cols; c++)
            out[c] = rows[(n - 1) * ld + c];
        return;
    case EMBER_POOLING_MAX:
        for (int64_t c = 0; c < cols; c++) {
            float m = rows[c];
            for (int64_t r = 1; r < n; r++)
                m = rows[r * ld + c] > m ? rows[r * ld + c] : m;
            out[c] = m;
        }
        return;
    default: break;
    }
    /* mean, mean_sqrt_len, weighted mean: weighted sums over a norm, in
     * column chunks so the double accumulators stay on the stack */
    double wsum = 0.0;
    for (int64_t r = 0; r < n; r++)
        wsum += mode == EMBER_POOLING_WEIGHTED_MEAN ? (double)(r + 1) : 1.0;
    double norm = mode == EMBER_POOLING_MEAN_SQRT_LEN ? sqrt((double)n) : wsum;
    enum { CHUNK = 64 };
    for (int64_t c0 = 0; c0 < cols; c0 += CHUNK) {
        int64_t w = cols - c0 < CHUNK ? cols - c0 : CHUNK;
        double acc[CHUNK] = {0};
        for (int64_t r = 0; r < n; r++) {
            double wr = mode == EMBER_POOLING_WEIGHTED_MEAN ? (double)(r + 1) : 1.0;
            const float *row = rows + r * ld + c0;
            for (int64_t c = 0; c < w; c++)
                acc[c] += wr * row[c];
        }
        for (int64_t c = 0; c < w; c++)
            out[c0 + c] = (float)(acc[c] / norm);
    }
}

void ember_pool_sequence(const float *rows, int64_t n, int64_t cols, int32_t mode, float *out) {
    ember_pool_sequence_strided(rows, n, cols, cols, mode, out);
}

void ember_l2_normalize_rows(float *x, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++) {
        float *v = x + r * cols;
        double s = 0.0;
        for (int64_t c = 0; c < cols; c++)
            s += (double)v[c] * v[c];
        double norm = sqrt(s);
        float inv = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
        for (int64_t c = 0; c < cols; c++)
            v[c] *= inv;
    }
}
