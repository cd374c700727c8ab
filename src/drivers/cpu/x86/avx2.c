/*
 * avx2.c — the CPU driver's kernels for x86-64 with AVX2 + FMA (compiled with
 * -mavx2 -mfma -mf16c, selected at run time only when the CPU has them).
 *
 * Vector math: exp is a Cephes-style range reduction with a degree-6
 * polynomial (about 1 ulp); the exact GELU uses the erf approximation of
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

static void avx2_layer_norm_row(const float *x, const float *res, const float *gamma,
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

static void avx2_bias_act_row(float *y, const float *bias, int act, const float *residual,
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

static void avx2_geglu_row(const float *in, int64_t inter, float *out) {
    int64_t i = 0;
    for (; i + 8 <= inter; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(gelu8(_mm256_loadu_ps(in + i)),
                                                _mm256_loadu_ps(in + inter + i)));
    for (; i < inter; i++)
        out[i] = gelu1(in[i]) * in[inter + i];
}

static void avx2_rope_head(float *x, const float *cos, const float *sin, int32_t head_dim) {
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

/* ---- attention: online softmax over key tiles (flash-attention style) ----
 *
 * For a block of up to QBLOCK queries, keys are visited in tiles of KBLOCK.
 * Both products run on the GEMM micro-kernel: S = Q K^T with K^T packed in
 * 16-key panels, and O += P V reading V rows in place (16 columns at a time).
 * Between them each query row gets its running max m, sum l and the
 * rescaling of O. Memory is O(tile), never O(len^2). Head dimensions that are
 * not a multiple of 16 use the reference kernel.
 */
static void avx2_attention_tile(const ember_attn_tile *t) {
    const int32_t d = t->head_dim;
    if (d % 16 != 0) {
        ember_cpu_kernels_ref.attention_tile(t);
        return;
    }
    const int32_t KB = EMBER_ATTN_KBLOCK;
    float *kt = t->scratch;                          /* KB/16 panels x d x 16 */
    float *s = kt + (int64_t)d * KB;                 /* QBLOCK x KB           */
    float *o = s + EMBER_ATTN_QBLOCK * KB;           /* QBLOCK x d            */
    float *mrow = o + EMBER_ATTN_QBLOCK * d;         /* QBLOCK                */
    float *lrow = mrow + EMBER_ATTN_QBLOCK;          /* QBLOCK                */
    const int32_t nq = t->q1 - t->q0;

    int32_t ks = 0, ke = t->len;
    if (t->window > 0) {
        ks = t->q0 - t->window > 0 ? t->q0 - t->window : 0;
        ke = t->q1 + t->window < t->len ? t->q1 + t->window : t->len;
    }
    for (int32_t i = 0; i < nq; i++) {
        mrow[i] = -INFINITY;
        lrow[i] = 0.0f;
    }
    memset(o, 0, sizeof(float) * (size_t)nq * (size_t)d);

    for (int32_t kb = ks; kb < ke; kb += KB) {
        const int32_t nk = ke - kb < KB ? ke - kb : KB;
        const int32_t n_panels = (nk + 15) / 16;
        /* K^T panels: kt[(p * d + c) * 16 + jj] = K[kb + 16p + jj][c] */
        for (int32_t p = 0; p < n_panels; p++) {
            float *panel = kt + (int64_t)p * d * 16;
            for (int32_t jj = 0; jj < 16; jj++) {
                int32_t j = p * 16 + jj;
                if (j < nk) {
                    const float *krow = t->k + (int64_t)(kb + j) * t->ld;
                    for (int32_t c = 0; c < d; c++)
                        panel[c * 16 + jj] = krow[c];
                } else {
                    for (int32_t c = 0; c < d; c++)
                        panel[c * 16 + jj] = 0.0f;
                }
            }
        }
        /* S = Q K^T */
        ember_gemm_tile g = {.kc = d, .lda = t->ld_q, .ldb = 16, .ldc = KB};
        for (int32_t i0 = 0; i0 < nq; i0 += EMBER_GEMM_MR) {
            g.mr = nq - i0 < EMBER_GEMM_MR ? nq - i0 : EMBER_GEMM_MR;
            g.a = t->q + (int64_t)(t->q0 + i0) * t->ld_q;
            for (int32_t p = 0; p < n_panels; p++) {
                g.nr = 16;
                g.bp = kt + (int64_t)p * d * 16;
                g.c = s + (int64_t)i0 * KB + p * 16;
                gemm_kernel_dispatch(&g);
            }
        }
        /* softmax pieces per row; P replaces S, zero outside the window */
        for (int32_t i = 0; i < nq; i++) {
            float *srow = s + (int64_t)i * KB;
            int32_t qi = t->q0 + i, j0 = 0, j1 = nk;
            if (t->window > 0) {
                int32_t lo = qi - t->window - kb, hi = qi + t->window + 1 - kb;
                j0 = lo > 0 ? lo : 0;
                j1 = hi < nk ? hi : nk;
            }
            float *orow = o + (int64_t)i * d;
            if (j0 >= j1) {
                memset(srow, 0, sizeof(float) * (size_t)nk);
                continue;
            }
            const __m256 vscale = _mm256_set1_ps(t->scale);
            __m256 vmax = _mm256_set1_ps(-INFINITY);
            int32_t j = j0;
            for (; j + 8 <= j1; j += 8)
                vmax = _mm256_max_ps(vmax, _mm256_mul_ps(_mm256_loadu_ps(srow + j), vscale));
            float bm = -INFINITY;
            {
                float tmp[8];
                _mm256_storeu_ps(tmp, vmax);
                for (int q = 0; q < 8; q++)
                    bm = tmp[q] > bm ? tmp[q] : bm;
            }
            for (; j < j1; j++)
                bm = srow[j] * t->scale > bm ? srow[j] * t->scale : bm;
            float nm = bm > mrow[i] ? bm : mrow[i];
            float corr = mrow[i] == -INFINITY ? 0.0f : expf(mrow[i] - nm);
            if (corr != 1.0f) {
                __m256 vc = _mm256_set1_ps(corr);
                for (int32_t c = 0; c < d; c += 8)
                    _mm256_storeu_ps(orow + c, _mm256_mul_ps(_mm256_loadu_ps(orow + c), vc));
            }
            for (j = 0; j < j0; j++)
                srow[j] = 0.0f;
            __m256 vnm = _mm256_set1_ps(nm), vsum = _mm256_setzero_ps();
            for (j = j0; j + 8 <= j1; j += 8) {
                __m256 p = exp8(_mm256_fmsub_ps(_mm256_loadu_ps(srow + j), vscale, vnm));
                _mm256_storeu_ps(srow + j, p);
                vsum = _mm256_add_ps(vsum, p);
            }
            float lsum = hsum8(vsum);
            for (; j < j1; j++) {
                srow[j] = expf(srow[j] * t->scale - nm);
                lsum += srow[j];
            }
            for (j = j1; j < nk; j++)
                srow[j] = 0.0f;
            lrow[i] = lrow[i] * corr + lsum;
            mrow[i] = nm;
        }
        /* O += P V, 16 output columns at a time, V read in place */
        ember_gemm_tile pv = {.nr = 16, .kc = nk, .lda = KB, .ldb = t->ld, .ldc = d, .ld_init = d};
        for (int32_t c0 = 0; c0 < d; c0 += 16) {
            pv.bp = t->v + (int64_t)kb * t->ld + c0;
            for (int32_t i0 = 0; i0 < nq; i0 += EMBER_GEMM_MR) {
                pv.mr = nq - i0 < EMBER_GEMM_MR ? nq - i0 : EMBER_GEMM_MR;
                pv.a = s + (int64_t)i0 * KB;
                pv.c = o + (int64_t)i0 * d + c0;
                pv.init = pv.c;
                gemm_kernel_dispatch(&pv);
            }
        }
    }
    for (int32_t i = 0; i < nq; i++) {
        float *dst = t->out + (int64_t)(t->q0 + i) * t->ld_out;
        const float *orow = o + (int64_t)i * d;
        __m256 inv = _mm256_set1_ps(lrow[i] > 0.0f ? 1.0f / lrow[i] : 0.0f);
        for (int32_t c = 0; c < d; c += 8)
            _mm256_storeu_ps(dst + c, _mm256_mul_ps(_mm256_loadu_ps(orow + c), inv));
    }
}

const ember_cpu_kernels ember_cpu_kernels_avx2 = {
    .name = "avx2",
    .gemm_tile = gemm_kernel_dispatch,
    .layer_norm_row = avx2_layer_norm_row,
    .bias_act_row = avx2_bias_act_row,
    .geglu_row = avx2_geglu_row,
    .attention_tile = avx2_attention_tile,
    .rope_head = avx2_rope_head,
};
