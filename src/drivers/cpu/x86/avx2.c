/*
 * avx2.c — the CPU driver's kernels for x86-64 with AVX2 + FMA (compiled with
 * -mavx2 -mfma -mf16c, selected at run time only when the CPU has them).
 *
 * Vector math: exp is a Cephes-style range reduction with a degree-6
 * polynomial (about 1 ulp), the softmax's a cheaper 2^x (softmax_exp8); the exact GELU uses the erf approximation of
 * Abramowitz & Stegun 7.1.26 (absolute error 1.5e-7), the same formula
 * PyTorch's vectorised CPU erf uses, so results track the reference closely.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "drivers/cpu/kernels.h"
#include "drivers/driver.h"

static inline float hsum8(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

/* exp(x) for x in [-87.3, 88.7]; smaller inputs give 0 (as softmax wants). */
static inline __m256 exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.33654f), hi = _mm256_set1_ps(88.72283f);
    __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 res = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(underflow, res);
}

/* exp(y) for the softmax, whose exponents y are <= 0 (up to rounding): the
 * AVX-512 table's softmax_exp16 without vscalefps. a = y log2(e) floored at
 * -127; adding 1.5 * 2^23 + 127 rounds it to n + 127 in the low mantissa
 * bits (to nearest; a tie may go either way, f stays in [-1/2, 1/2]), so a
 * shift by 23 makes 2^n, and n = -127 makes the float 0 (exponents below 2^-126.5
 * come out 0, as exp8 zeroes below 2^-126); 2^(a - n) by avx512.c's
 * degree-5 polynomial (relative error 1.9e-7). 13 instructions with the
 * fmsub against exp8's 21. test_driver_ops checks it against double exp. */
static inline __m256 softmax_exp8(__m256 y) {
    const __m256 shifter = _mm256_set1_ps(12582912.0f + 127.0f);
    const __m256 a = _mm256_max_ps(_mm256_mul_ps(y, _mm256_set1_ps(1.44269504088896341f)),
                                   _mm256_set1_ps(-127.0f));
    const __m256 biased = _mm256_add_ps(a, shifter);                 /* low bits: n + 127 */
    const __m256 f = _mm256_sub_ps(a, _mm256_sub_ps(biased, shifter)); /* a - n in [-1/2, 1/2] */
    __m256 p = _mm256_set1_ps(1.326660392805934e-3f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.671512059867382e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.5507272481918335e-2f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.4022242426872253e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931470036506653e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    const __m256i two_n = _mm256_slli_epi32(_mm256_castps_si256(biased), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(two_n));
}

/* erf(x), A&S 7.1.26 with the sign restored. */
static inline __m256 erf8(__m256 x) {
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    __m256 sign = _mm256_and_ps(x, sign_mask);
    __m256 a = _mm256_andnot_ps(sign_mask, x);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f),
                             _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), a, _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    __m256 e = exp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), a), a));
    __m256 y = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f));
    return _mm256_or_ps(y, sign);
}

static inline __m256 gelu8(__m256 x) {
    __m256 e = erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x),
                         _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

static inline float gelu1(float x) {
    float buf[8] = {x};
    _mm256_storeu_ps(buf, gelu8(_mm256_loadu_ps(buf)));
    return buf[0];
}

/* ---- GEMM micro-kernel: 6 x 16 tile, 12 accumulators ----
 *
 * Per k step: two loads of the packed B panel, six broadcasts of A, twelve
 * FMAs, the classic register blocking for 16 ymm registers. MR is a
 * compile-time constant in each instantiation so the row loops unroll.
 */

static inline __m256i nr_mask(int nr, int half) {
    int lo = nr - 8 * half;
    if (lo >= 8)
        return _mm256_set1_epi32(-1);
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(lo < 0 ? 0 : lo), idx);
}

/* Row i of the accumulators; a row beyond MR is dead code after inlining. */
#define GEMM_ROW_FMA(i)                                                  \
    if (MR > i) {                                                        \
        __m256 av = _mm256_broadcast_ss(a##i + k);                       \
        c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0);                      \
        c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1);                      \
    }

static inline __attribute__((always_inline)) void gemm_kernel(const ember_gemm_tile *t, const int MR) {
    const int full = t->nr == EMBER_GEMM_NR;
    const __m256i m0 = nr_mask(t->nr, 0), m1 = nr_mask(t->nr, 1);
    const int64_t kc = t->kc, lda = t->lda;
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
    __m256 acc[EMBER_GEMM_MR][2];
    if (t->init) {
        for (int i = 0; i < MR; i++) {
            const float *src = t->init + i * t->ld_init;
            acc[i][0] = full ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, m0);
            acc[i][1] = full ? _mm256_loadu_ps(src + 8) : _mm256_maskload_ps(src + 8, m1);
        }
        c00 = acc[0][0], c01 = acc[0][1];
        if (MR > 1) c10 = acc[1][0], c11 = acc[1][1];
        if (MR > 2) c20 = acc[2][0], c21 = acc[2][1];
        if (MR > 3) c30 = acc[3][0], c31 = acc[3][1];
        if (MR > 4) c40 = acc[4][0], c41 = acc[4][1];
        if (MR > 5) c50 = acc[5][0], c51 = acc[5][1];
    }
    const float *a0 = t->a, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda, *a4 = a3 + lda,
                *a5 = a4 + lda;
    const float *b = t->bp;
    const int64_t ldb = t->ldb ? t->ldb : EMBER_GEMM_NR;
    for (int64_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_loadu_ps(b + k * ldb), b1 = _mm256_loadu_ps(b + k * ldb + 8);
        GEMM_ROW_FMA(0)
        GEMM_ROW_FMA(1)
        GEMM_ROW_FMA(2)
        GEMM_ROW_FMA(3)
        GEMM_ROW_FMA(4)
        GEMM_ROW_FMA(5)
    }
    acc[0][0] = c00, acc[0][1] = c01, acc[1][0] = c10, acc[1][1] = c11;
    acc[2][0] = c20, acc[2][1] = c21, acc[3][0] = c30, acc[3][1] = c31;
    acc[4][0] = c40, acc[4][1] = c41, acc[5][0] = c50, acc[5][1] = c51;

    int scalar_act = 0;
    if (t->last) {
        if (t->bias) {
            __m256 bb0 = full ? _mm256_loadu_ps(t->bias) : _mm256_maskload_ps(t->bias, m0);
            __m256 bb1 = full ? _mm256_loadu_ps(t->bias + 8) : _mm256_maskload_ps(t->bias + 8, m1);
            for (int i = 0; i < MR; i++) {
                acc[i][0] = _mm256_add_ps(acc[i][0], bb0);
                acc[i][1] = _mm256_add_ps(acc[i][1], bb1);
            }
        }
        if (t->act == EMBER_ACT_GELU) {
            for (int i = 0; i < MR; i++) {
                acc[i][0] = gelu8(acc[i][0]);
                acc[i][1] = gelu8(acc[i][1]);
            }
        } else if (t->act != EMBER_ACT_NONE) {
            scalar_act = 1;
        }
        if (t->late_res && !scalar_act) {
            for (int i = 0; i < MR; i++) {
                const float *r = t->late_res + i * t->ld_res;
                acc[i][0] = _mm256_add_ps(acc[i][0], full ? _mm256_loadu_ps(r) : _mm256_maskload_ps(r, m0));
                acc[i][1] = _mm256_add_ps(acc[i][1], full ? _mm256_loadu_ps(r + 8) : _mm256_maskload_ps(r + 8, m1));
            }
        }
    }
    for (int i = 0; i < MR; i++) {
        float *dst = t->c + i * t->ldc;
        if (full) {
            _mm256_storeu_ps(dst, acc[i][0]);
            _mm256_storeu_ps(dst + 8, acc[i][1]);
        } else {
            _mm256_maskstore_ps(dst, m0, acc[i][0]);
            _mm256_maskstore_ps(dst + 8, m1, acc[i][1]);
        }
    }
    if (scalar_act) {
        for (int i = 0; i < MR; i++) {
            float *dst = t->c + i * t->ldc;
            for (int j = 0; j < t->nr; j++) {
                float v = ember_ref_act(t->act, dst[j]);
                dst[j] = t->late_res ? v + t->late_res[i * t->ld_res + j] : v;
            }
        }
    }
}

static void gemm_kernel_dispatch(const ember_gemm_tile *t) {
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

void ember_avx2_layer_norm_row(const float *x, const float *res, const float *gamma,
                                const float *beta, float eps, int64_t n, float *out) {
    int64_t n8 = n & ~(int64_t)7, i;
    __m256 vs = _mm256_setzero_ps();
    for (i = 0; i < n8; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (res)
            v = _mm256_add_ps(v, _mm256_loadu_ps(res + i));
        _mm256_storeu_ps(out + i, v);
        vs = _mm256_add_ps(vs, v);
    }
    float sum = hsum8(vs);
    for (; i < n; i++) {
        float v = res ? x[i] + res[i] : x[i];
        out[i] = v;
        sum += v;
    }
    float mean = sum / (float)n;
    __m256 vm = _mm256_set1_ps(mean), vq = _mm256_setzero_ps();
    for (i = 0; i < n8; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(out + i), vm);
        vq = _mm256_fmadd_ps(d, d, vq);
    }
    float sq = hsum8(vq);
    for (; i < n; i++)
        sq += (out[i] - mean) * (out[i] - mean);
    float inv = 1.0f / sqrtf(sq / (float)n + eps);
    __m256 vi = _mm256_set1_ps(inv);
    for (i = 0; i < n8; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(out + i), vm), vi),
                                 _mm256_loadu_ps(gamma + i));
        if (beta)
            v = _mm256_add_ps(v, _mm256_loadu_ps(beta + i));
        _mm256_storeu_ps(out + i, v);
    }
    for (; i < n; i++) {
        float v = (out[i] - mean) * inv * gamma[i];
        out[i] = beta ? v + beta[i] : v;
    }
}

void ember_avx2_bias_act_row(float *y, const float *bias, int act, const float *residual,
                              int64_t n) {
    if (act != EMBER_ACT_NONE && act != EMBER_ACT_GELU) {
        ember_cpu_kernels_ref.bias_act_row(y, bias, act, residual, n);
        return;
    }
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(y + i);
        if (bias)
            v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
        if (act == EMBER_ACT_GELU)
            v = gelu8(v);
        if (residual)
            v = _mm256_add_ps(v, _mm256_loadu_ps(residual + i));
        _mm256_storeu_ps(y + i, v);
    }
    for (; i < n; i++) {
        float v = bias ? y[i] + bias[i] : y[i];
        if (act == EMBER_ACT_GELU)
            v = gelu1(v);
        y[i] = residual ? v + residual[i] : v;
    }
}

void ember_avx2_geglu_row(const float *in, int64_t inter, float *out) {
    int64_t i = 0;
    for (; i + 8 <= inter; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(gelu8(_mm256_loadu_ps(in + i)),
                                                _mm256_loadu_ps(in + inter + i)));
    for (; i < inter; i++)
        out[i] = gelu1(in[i]) * in[inter + i];
}

void ember_avx2_rope_head(float *x, const float *cos, const float *sin, int32_t head_dim) {
    int32_t half = head_dim / 2, i = 0;
    for (; i + 8 <= half; i += 8) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + half + i);
        __m256 c = _mm256_loadu_ps(cos + i), s = _mm256_loadu_ps(sin + i);
        _mm256_storeu_ps(x + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
        _mm256_storeu_ps(x + half + i, _mm256_fmadd_ps(b, c, _mm256_mul_ps(a, s)));
    }
    for (; i < half; i++) {
        float a = x[i], b = x[i + half];
        x[i] = a * cos[i] - b * sin[i];
        x[i + half] = b * cos[i] + a * sin[i];
    }
}

/* ---- attention: the shared tiled kernel (attention.c) over these hooks ---- */

float ember_avx2_row_max(const float *x, int32_t n) {
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    int32_t j = 0;
    for (; j + 8 <= n; j += 8)
        vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + j));
    float tmp[8], m = -INFINITY;
    _mm256_storeu_ps(tmp, vmax);
    for (int q = 0; q < 8; q++)
        m = tmp[q] > m ? tmp[q] : m;
    for (; j < n; j++)
        m = x[j] > m ? x[j] : m;
    return m;
}

float ember_avx2_row_exp(float *x, int32_t n, float scale, float m) {
    const __m256 vscale = _mm256_set1_ps(scale), vm = _mm256_set1_ps(m);
    __m256 vsum = _mm256_setzero_ps();
    int32_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 p = softmax_exp8(_mm256_fmsub_ps(_mm256_loadu_ps(x + j), vscale, vm));
        _mm256_storeu_ps(x + j, p);
        vsum = _mm256_add_ps(vsum, p);
    }
    float sum = hsum8(vsum);
    for (; j < n; j++) {
        x[j] = expf(x[j] * scale - m);
        sum += x[j];
    }
    return sum;
}

/* The fp32 attention's K^T panels (see kernels.h): per panel of 16 keys and
 * 8 columns, two 8x8 transposes in registers (32-bit and 64-bit interleaves
 * within 128-bit lanes, then a lane exchange: 24 instructions per 64
 * values, against a scalar load and store each). */
static void avx2_pack_kt_f32(const float *k, int64_t ld, int32_t nk, int32_t d, float *dst) {
    for (int32_t p = 0; p * 16 < nk; p++)
        for (int32_t half = 0; half < 2; half++) {
            const int32_t first = 16 * p + 8 * half, keys = nk - first < 8 ? nk - first : 8;
            for (int32_t c0 = 0; c0 < d; c0 += 8) {
                __m256 r[8], t[8], u[8];
                for (int jj = 0; jj < 8; jj++)
                    r[jj] = jj < keys ? _mm256_loadu_ps(k + (int64_t)(first + jj) * ld + c0) : _mm256_setzero_ps();
                /* t[2i] = (r[2i][0], r[2i+1][0], r[2i][1], r[2i+1][1] | the same for 4, 5),
                 * t[2i+1] the same for columns 2, 3 | 6, 7 */
                for (int i = 0; i < 4; i++) {
                    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
                    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
                }
                /* u[4g + e]: rows 4g..4g+3 of column e | of column 4 + e */
                for (int g = 0; g < 2; g++) {
                    u[4 * g] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
                    u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xee);
                    u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
                    u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xee);
                }
                float *out = dst + ((int64_t)p * d + c0) * 16 + 8 * half;
                for (int e = 0; e < 4; e++) {
                    _mm256_storeu_ps(out + e * 16, _mm256_permute2f128_ps(u[e], u[4 + e], 0x20));
                    _mm256_storeu_ps(out + (4 + e) * 16, _mm256_permute2f128_ps(u[e], u[4 + e], 0x31));
                }
            }
        }
}

static void avx2_attention_tile(const ember_attn_tile *t) {
    if (t->head_dim % 16 != 0)
        ember_cpu_kernels_ref.attention_tile(t);
    else
        ember_attention_tiled(&ember_cpu_kernels_avx2, t);
}

/* Register-only FMA peak: 12 independent accumulators (FMA latency 4 x two
 * ports, with room), no memory operand. */
static double avx2_peak_f32(int64_t iters) {
    __m256 acc[12];
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++)
        acc[i] = _mm256_set1_ps((float)i);
    for (int64_t n = 0; n < iters; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], x, y);
    }
    __m256 s = acc[0];
    for (int i = 1; i < 12; i++)
        s = _mm256_add_ps(s, acc[i]);
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    volatile float sink = lanes[0] + lanes[7];
    (void)sink;
    return (double)iters * 12 * 8 * 2;
}

const ember_cpu_kernels ember_cpu_kernels_avx2 = {
    .name = "avx2",
    .mr = EMBER_GEMM_MR,
    .gemm_tile = gemm_kernel_dispatch,
    .layer_norm_row = ember_avx2_layer_norm_row,
    .bias_act_row = ember_avx2_bias_act_row,
    .geglu_row = ember_avx2_geglu_row,
    .attention_tile = avx2_attention_tile,
    .row_max = ember_avx2_row_max,
    .row_exp = ember_avx2_row_exp,
    .pack_kt_f32 = avx2_pack_kt_f32,
    .rope_head = ember_avx2_rope_head,
    .peak_f32 = avx2_peak_f32,
};
