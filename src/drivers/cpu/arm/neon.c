/*
 * neon.c — the CPU driver's kernels for 64-bit ARM (NEON is part of the
 * AArch64 baseline, so no run-time check is needed beyond the architecture).
 *
 * Same structure as x86/avx2.c with 4-lane vectors: a 6 x 16 GEMM
 * micro-kernel (24 accumulators of the 32 vector registers), vector exp and
 * the erf approximation of Abramowitz & Stegun 7.1.26 for the exact GELU,
 * LayerNorm, GeGLU and the softmax hooks of the shared tiled attention.
 * Tested against the scalar reference under qemu-aarch64
 * (cmake/aarch64-linux-gnu.cmake).
 */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "drivers/cpu/kernels.h"
#include "drivers/driver.h"

/* exp(x) for x in [-87.3, 88.7]; smaller inputs give 0. */
static inline float32x4_t exp4(float32x4_t x) {
    const float32x4_t lo = vdupq_n_f32(-87.33654f), hi = vdupq_n_f32(88.72283f);
    uint32x4_t underflow = vcltq_f32(x, lo);
    x = vminq_f32(vmaxq_f32(x, lo), hi);
    float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    float32x4_t r2 = vmulq_f32(r, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, r2);
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    float32x4_t res = vmulq_f32(p, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(res), underflow));
}

static inline float32x4_t erf4(float32x4_t x) {
    uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
    float32x4_t a = vabsq_f32(x);
    float32x4_t t = vdivq_f32(vdupq_n_f32(1.0f), vfmaq_f32(vdupq_n_f32(1.0f), a, vdupq_n_f32(0.3275911f)));
    float32x4_t p = vdupq_n_f32(1.061405429f);
    p = vfmaq_f32(vdupq_n_f32(-1.453152027f), p, t);
    p = vfmaq_f32(vdupq_n_f32(1.421413741f), p, t);
    p = vfmaq_f32(vdupq_n_f32(-0.284496736f), p, t);
    p = vfmaq_f32(vdupq_n_f32(0.254829592f), p, t);
    p = vmulq_f32(p, t);
    float32x4_t e = exp4(vnegq_f32(vmulq_f32(a, a)));
    float32x4_t y = vfmsq_f32(vdupq_n_f32(1.0f), p, e);
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(y), sign));
}

static inline float32x4_t gelu4(float32x4_t x) {
    float32x4_t e = erf4(vmulq_n_f32(x, 0.70710678118654752f));
    return vmulq_f32(vmulq_n_f32(x, 0.5f), vaddq_f32(vdupq_n_f32(1.0f), e));
}

static inline float gelu1(float x) {
    float buf[4] = {x};
    vst1q_f32(buf, gelu4(vld1q_f32(buf)));
    return buf[0];
}

/* ---- GEMM micro-kernel: 6 x 16 tile ---- */

static inline __attribute__((always_inline)) void gemm_kernel(const ember_gemm_tile *t, const int MR) {
    float32x4_t c[EMBER_GEMM_MR][4];
    const int full = t->nr == EMBER_GEMM_NR;
    for (int i = 0; i < MR; i++) {
        if (t->init && full) {
            for (int v = 0; v < 4; v++)
                c[i][v] = vld1q_f32(t->init + i * t->ld_init + 4 * v);
        } else if (t->init) {
            float tmp[EMBER_GEMM_NR] = {0};
            memcpy(tmp, t->init + i * t->ld_init, sizeof(float) * (size_t)t->nr);
            for (int v = 0; v < 4; v++)
                c[i][v] = vld1q_f32(tmp + 4 * v);
        } else {
            for (int v = 0; v < 4; v++)
                c[i][v] = vdupq_n_f32(0.0f);
        }
    }
    const int64_t ldb = t->ldb ? t->ldb : EMBER_GEMM_NR;
    const float *b = t->bp;
    for (int64_t k = 0; k < t->kc; k++, b += ldb) {
        const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8),
                          b3 = vld1q_f32(b + 12);
        for (int i = 0; i < MR; i++) {
            const float a = t->a[i * t->lda + k];
            c[i][0] = vfmaq_n_f32(c[i][0], b0, a);
            c[i][1] = vfmaq_n_f32(c[i][1], b1, a);
            c[i][2] = vfmaq_n_f32(c[i][2], b2, a);
            c[i][3] = vfmaq_n_f32(c[i][3], b3, a);
        }
    }
    float tile[EMBER_GEMM_MR][EMBER_GEMM_NR];
    for (int i = 0; i < MR; i++) {
        if (t->last && t->bias)
            for (int v = 0; v < 4; v++) {
                float bb[4] = {0, 0, 0, 0};
                for (int q = 0; q < 4 && 4 * v + q < t->nr; q++)
                    bb[q] = t->bias[4 * v + q];
                c[i][v] = vaddq_f32(c[i][v], vld1q_f32(bb));
            }
        if (t->last && t->act == EMBER_ACT_GELU)
            for (int v = 0; v < 4; v++)
                c[i][v] = gelu4(c[i][v]);
        for (int v = 0; v < 4; v++)
            vst1q_f32(tile[i] + 4 * v, c[i][v]);
        float *dst = t->c + i * t->ldc;
        for (int j = 0; j < t->nr; j++) {
            float v = tile[i][j];
            if (t->last) {
                if (t->act != EMBER_ACT_NONE && t->act != EMBER_ACT_GELU)
                    v = ember_ref_act(t->act, v);
                if (t->late_res)
                    v += t->late_res[i * t->ld_res + j];
            }
            dst[j] = v;
        }
    }
}

static void neon_gemm_tile(const ember_gemm_tile *t) {
    switch (t->mr) {
    case 6: gemm_kernel(t, 6); break;
    case 5: gemm_kernel(t, 5); break;
    case 4: gemm_kernel(t, 4); break;
    case 3: gemm_kernel(t, 3); break;
    case 2: gemm_kernel(t, 2); break;
    default: gemm_kernel(t, 1); break;
    }
}

/* ---- row kernels ---- */

static void neon_layer_norm_row(const float *x, const float *res, const float *gamma,
                                const float *beta, float eps, int64_t n, float *out) {
    int64_t i = 0;
    float32x4_t vs = vdupq_n_f32(0.0f);
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        if (res)
            v = vaddq_f32(v, vld1q_f32(res + i));
        vst1q_f32(out + i, v);
        vs = vaddq_f32(vs, v);
    }
    float sum = vaddvq_f32(vs);
    for (; i < n; i++) {
        out[i] = res ? x[i] + res[i] : x[i];
        sum += out[i];
    }
    const float mean = sum / (float)n;
    float32x4_t vm = vdupq_n_f32(mean), vq = vdupq_n_f32(0.0f);
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t dv = vsubq_f32(vld1q_f32(out + i), vm);
        vq = vfmaq_f32(vq, dv, dv);
    }
    float sq = vaddvq_f32(vq);
    for (; i < n; i++)
        sq += (out[i] - mean) * (out[i] - mean);
    const float inv = 1.0f / sqrtf(sq / (float)n + eps);
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t v = vmulq_f32(vmulq_n_f32(vsubq_f32(vld1q_f32(out + i), vm), inv),
                                  vld1q_f32(gamma + i));
        if (beta)
            v = vaddq_f32(v, vld1q_f32(beta + i));
        vst1q_f32(out + i, v);
    }
    for (; i < n; i++) {
        float v = (out[i] - mean) * inv * gamma[i];
        out[i] = beta ? v + beta[i] : v;
    }
}

static void neon_bias_act_row(float *y, const float *bias, int act, const float *residual,
                              int64_t n) {
    if (act != EMBER_ACT_NONE && act != EMBER_ACT_GELU) {
        ember_cpu_kernels_ref.bias_act_row(y, bias, act, residual, n);
        return;
    }
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(y + i);
        if (bias)
            v = vaddq_f32(v, vld1q_f32(bias + i));
        if (act == EMBER_ACT_GELU)
            v = gelu4(v);
        if (residual)
            v = vaddq_f32(v, vld1q_f32(residual + i));
        vst1q_f32(y + i, v);
    }
    for (; i < n; i++) {
        float v = bias ? y[i] + bias[i] : y[i];
        if (act == EMBER_ACT_GELU)
            v = gelu1(v);
        y[i] = residual ? v + residual[i] : v;
    }
}

static void neon_geglu_row(const float *in, int64_t inter, float *out) {
    int64_t i = 0;
    for (; i + 4 <= inter; i += 4)
        vst1q_f32(out + i, vmulq_f32(gelu4(vld1q_f32(in + i)), vld1q_f32(in + inter + i)));
    for (; i < inter; i++)
        out[i] = gelu1(in[i]) * in[inter + i];
}

/* ---- softmax hooks and attention ---- */

static float neon_row_max(const float *x, int32_t n) {
    float32x4_t vmax = vdupq_n_f32(-INFINITY);
    int32_t j = 0;
    for (; j + 4 <= n; j += 4)
        vmax = vmaxq_f32(vmax, vld1q_f32(x + j));
    float m = vmaxvq_f32(vmax);
    for (; j < n; j++)
        m = x[j] > m ? x[j] : m;
    return m;
}

static float neon_row_exp(float *x, int32_t n, float scale, float m) {
    const float32x4_t vm = vdupq_n_f32(m);
    float32x4_t vsum = vdupq_n_f32(0.0f);
    int32_t j = 0;
    for (; j + 4 <= n; j += 4) {
        float32x4_t p = exp4(vsubq_f32(vmulq_n_f32(vld1q_f32(x + j), scale), vm));
        vst1q_f32(x + j, p);
        vsum = vaddq_f32(vsum, p);
    }
    float sum = vaddvq_f32(vsum);
    for (; j < n; j++) {
        x[j] = expf(x[j] * scale - m);
        sum += x[j];
    }
    return sum;
}

static void neon_rope_head(float *x, const float *cos, const float *sin, int32_t head_dim) {
    int32_t half = head_dim / 2, i = 0;
    for (; i + 4 <= half; i += 4) {
        float32x4_t a = vld1q_f32(x + i), b = vld1q_f32(x + half + i);
        float32x4_t c = vld1q_f32(cos + i), s = vld1q_f32(sin + i);
        vst1q_f32(x + i, vfmsq_f32(vmulq_f32(a, c), b, s));
        vst1q_f32(x + half + i, vfmaq_f32(vmulq_f32(b, c), a, s));
    }
    for (; i < half; i++) {
        float a = x[i], b = x[i + half];
        x[i] = a * cos[i] - b * sin[i];
        x[i + half] = b * cos[i] + a * sin[i];
    }
}

static void neon_attention_tile(const ember_attn_tile *t) {
    if (t->head_dim % 16 != 0)
        ember_cpu_kernels_ref.attention_tile(t);
    else
        ember_attention_tiled(&ember_cpu_kernels_neon, t);
}

/* Register-only FMA peak: 24 independent accumulators, no memory operand. */
static double neon_peak_f32(int64_t iters) {
    float32x4_t acc[24];
    const float32x4_t x = vdupq_n_f32(0.999999f), y = vdupq_n_f32(1e-7f);
    for (int i = 0; i < 24; i++)
        acc[i] = vdupq_n_f32((float)i);
    for (int64_t n = 0; n < iters; n++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++)
            acc[i] = vfmaq_f32(y, acc[i], x);
    }
    float32x4_t s = acc[0];
    for (int i = 1; i < 24; i++)
        s = vaddq_f32(s, acc[i]);
    volatile float sink = vgetq_lane_f32(s, 0);
    (void)sink;
    return (double)iters * 24 * 4 * 2;
}

const ember_cpu_kernels ember_cpu_kernels_neon = {
    .name = "neon",
    .mr = EMBER_GEMM_MR,
    .gemm_tile = neon_gemm_tile,
    .layer_norm_row = neon_layer_norm_row,
    .bias_act_row = neon_bias_act_row,
    .geglu_row = neon_geglu_row,
    .attention_tile = neon_attention_tile,
    .row_max = neon_row_max,
    .row_exp = neon_row_exp,
    .rope_head = neon_rope_head,
    .peak_f32 = neon_peak_f32,
};
