/*
 * ref.c — portable scalar kernels: the reference every faster path is tested
 * against, and the fallback on CPUs without a SIMD table. Written for
 * clarity, in fp32 with the operation order of the PyTorch reference where it
 * matters (LayerNorm two-pass mean/variance, softmax with max subtraction).
 */
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "drivers/driver.h"
#include "kernels.h"

float ember_ref_act(int act, float x) {
    switch (act) {
    case EMBER_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case EMBER_ACT_GELU_TANH: {
        float inner = 0.7978845608028654f * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + tanhf(inner));
    }
    case EMBER_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case EMBER_ACT_SILU: return x / (1.0f + expf(-x));
    case EMBER_ACT_TANH: return tanhf(x);
    default: return x;
    }
}

static void ref_layer_norm_row(const float *x, const float *res, const float *gamma,
                               const float *beta, float eps, int64_t n, float *out) {
    double mean = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float v = res ? x[i] + res[i] : x[i];
        out[i] = v;
        mean += v;
    }
    mean /= (double)n;
    double var = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = out[i] - mean;
        var += d * d;
    }
    var /= (double)n;
    float inv = (float)(1.0 / sqrt(var + eps));
    for (int64_t i = 0; i < n; i++) {
        float v = (out[i] - (float)mean) * inv * gamma[i];
        out[i] = beta ? v + beta[i] : v;
    }
}

static void ref_bias_act_row(float *y, const float *bias, int act, const float *residual,
                             int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = bias ? y[i] + bias[i] : y[i];
        v = ember_ref_act(act, v);
        y[i] = residual ? v + residual[i] : v;
    }
}

static void ref_geglu_row(const float *in, int64_t inter, float *out) {
    for (int64_t i = 0; i < inter; i++)
        out[i] = ember_ref_act(EMBER_ACT_GELU, in[i]) * in[inter + i];
}

/* Two passes per query: scores and max, then softmax-weighted sum of V. */
static void ref_attention_tile(const ember_attn_tile *t) {
    float *scores = t->scratch; /* len floats fit: scratch >= QBLOCK*KBLOCK */
    int32_t d = t->head_dim;
    for (int32_t i = t->q0; i < t->q1; i++) {
        int32_t j0 = 0, j1 = t->len;
        if (t->window > 0) {
            j0 = i - t->window > 0 ? i - t->window : 0;
            j1 = i + t->window + 1 < t->len ? i + t->window + 1 : t->len;
        }
        if (t->causal && j1 > i + 1)
            j1 = i + 1;
        const float *q = t->q + (int64_t)(i - t->q0) * t->ld_q;
        float *o = t->out + (int64_t)(i - t->q0) * t->ld_out;
        for (int32_t c = 0; c < d; c++)
            o[c] = 0.0f;
        /* process keys in chunks so `scores` stays within the scratch */
        float m = -INFINITY, l = 0.0f;
        for (int32_t jb = j0; jb < j1; jb += EMBER_ATTN_KBLOCK) {
            int32_t je = jb + EMBER_ATTN_KBLOCK < j1 ? jb + EMBER_ATTN_KBLOCK : j1;
            float bm = -INFINITY;
            for (int32_t j = jb; j < je; j++) {
                const float *k = t->k + (int64_t)j * t->ld;
                float s = 0.0f;
                for (int32_t c = 0; c < d; c++)
                    s += q[c] * k[c];
                s *= t->scale;
                if (t->rel)
                    s += t->rel[j - i + t->rel_center];
                scores[j - jb] = s;
                if (s > bm)
                    bm = s;
            }
            float nm = bm > m ? bm : m;
            float corr = expf(m - nm); /* exp(-inf) = 0 on the first chunk */
            l *= corr;
            for (int32_t c = 0; c < d; c++)
                o[c] *= corr;
            for (int32_t j = jb; j < je; j++) {
                float p = expf(scores[j - jb] - nm);
                l += p;
                const float *v = t->v + (int64_t)j * t->ld;
                for (int32_t c = 0; c < d; c++)
                    o[c] += p * v[c];
            }
            m = nm;
        }
        float inv = 1.0f / l;
        for (int32_t c = 0; c < d; c++)
            o[c] *= inv;
    }
}

static void ref_gemm_tile(const ember_gemm_tile *t) {
    float acc[EMBER_GEMM_MR][EMBER_GEMM_NR];
    for (int i = 0; i < t->mr; i++)
        for (int j = 0; j < t->nr; j++)
            acc[i][j] = t->init ? t->init[i * t->ld_init + j] : 0.0f;
    const int64_t ldb = t->ldb ? t->ldb : EMBER_GEMM_NR;
    for (int64_t k = 0; k < t->kc; k++)
        for (int i = 0; i < t->mr; i++) {
            float a = t->a[i * t->lda + k];
            for (int j = 0; j < t->nr; j++)
                acc[i][j] += a * t->bp[k * ldb + j];
        }
    for (int i = 0; i < t->mr; i++) {
        float *c = t->c + i * t->ldc;
        for (int j = 0; j < t->nr; j++) {
            float v = acc[i][j];
            if (t->last) {
                if (t->bias)
                    v += t->bias[j];
                v = ember_ref_act(t->act, v);
                if (t->late_res)
                    v += t->late_res[i * t->ld_res + j];
            }
            c[j] = v;
        }
    }
}

void ember_ref_pack_a_bf16(const float *a, int64_t lda, int mr, int64_t kc, uint16_t *dst, int64_t ldd) {
    for (int i = 0; i < mr; i++) {
        for (int64_t k = 0; k < kc; k++)
            dst[i * ldd + k] = ember_f32_to_bf16(a[i * lda + k]);
        if (kc & 1)
            dst[i * ldd + kc] = 0;
    }
}

float ember_ref_q8_threshold2(const float *a, int64_t K) {
    float lane[16] = {0};
    for (int64_t k = 0; k < K; k++) /* fused, as the kernel's vfmadd */
        lane[k % 16] = fmaf(a[k], a[k], lane[k % 16]);
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++)
            lane[l] = lane[l] + lane[l + w];
    return lane[0] * (EMBER_Q8_OUTLIER_T * EMBER_Q8_OUTLIER_T / (float)K);
}

int ember_q8_row_outliers(const float *a, int64_t K, float thr2, int32_t *idx, float *val) {
    int n = 0;
    for (int64_t k = 0; k < K; k++) {
        if (!(a[k] * a[k] > thr2))
            continue;
        if (n < EMBER_Q8_OUTLIERS) {
            idx[n++] = (int32_t)k;
            continue;
        }
        /* full: replace the smallest kept one if this one is larger */
        int lo = 0;
        for (int e = 1; e < n; e++)
            if (fabsf(a[idx[e]]) < fabsf(a[idx[lo]]))
                lo = e;
        if (fabsf(a[k]) > fabsf(a[idx[lo]])) {
            for (int e = lo; e + 1 < n; e++) /* keep column order */
                idx[e] = idx[e + 1];
            idx[n - 1] = (int32_t)k;
        }
    }
    for (int e = 0; e < n; e++)
        val[e] = a[idx[e]];
    return n;
}

/* One row: outliers out, then blocks of 32 of what is left. */
void ember_ref_quant_a_q8(const float *a, int64_t lda, int rows, int64_t K, uint8_t *dst, int64_t ldd,
                          float *scales, int64_t lds, uint8_t *o_n, int32_t *o_idx, float *o_val) {
    for (int i = 0; i < rows; i++) {
        const float *x = a + i * lda;
        int32_t *idx = o_idx + (int64_t)i * EMBER_Q8_OUTLIERS;
        int n = ember_q8_row_outliers(x, K, ember_ref_q8_threshold2(x, K), idx,
                                      o_val + (int64_t)i * EMBER_Q8_OUTLIERS);
        o_n[i] = (uint8_t)n;
        int e = 0;
        for (int64_t k0 = 0; k0 < ldd; k0 += 32) {
            int64_t k1 = k0 + 32 < K ? k0 + 32 : K;
            float amax = 0.0f;
            for (int64_t k = k0, f = e; k < k1; k++) {
                float v = f < n && idx[f] == k ? (f++, 0.0f) : x[k];
                amax = fabsf(v) > amax ? fabsf(v) : amax;
            }
            float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
            if (k0 < K)
                scales[i * lds + k0 / 32] = amax / 127.0f;
            for (int64_t k = k0; k < k0 + 32; k++) {
                float v = k < k1 ? x[k] : 0.0f;
                if (e < n && idx[e] == k) {
                    v = 0.0f;
                    e++;
                }
                long q = lrintf(v * inv);
                q = q > 127 ? 127 : q < -127 ? -127 : q;
                dst[i * ldd + k] = (uint8_t)(q + 128);
            }
        }
    }
}

static void ref_rope_head(float *x, const float *cos, const float *sin, int32_t head_dim) {
    int32_t half = head_dim / 2;
    for (int32_t i = 0; i < half; i++) {
        float a = x[i], b = x[i + half];
        x[i] = a * cos[i] - b * sin[i];
        x[i + half] = b * cos[i] + a * sin[i];
    }
}

/* Peak of the portable kernels: 8 independent multiply-add chains. */
static double ref_peak_f32(int64_t iters) {
    float acc[8];
    for (int i = 0; i < 8; i++)
        acc[i] = (float)i;
    for (int64_t n = 0; n < iters; n++)
        for (int i = 0; i < 8; i++)
            acc[i] = acc[i] * 0.999999f + 1e-7f;
    volatile float sink = acc[0] + acc[7];
    (void)sink;
    return (double)iters * 8 * 2;
}

const ember_cpu_kernels ember_cpu_kernels_ref = {
    .name = "scalar",
    .mr = EMBER_GEMM_MR,
    .gemm_tile = ref_gemm_tile,
    .layer_norm_row = ref_layer_norm_row,
    .bias_act_row = ref_bias_act_row,
    .geglu_row = ref_geglu_row,
    .attention_tile = ref_attention_tile,
    .rope_head = ref_rope_head,
    .peak_f32 = ref_peak_f32,
};
