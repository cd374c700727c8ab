/*
 * avx512.c — the CPU driver's kernels for x86-64 with AVX-512 (F, BW, DQ, VL;
 * compiled with those flags, selected at run time only when the CPU and the
 * OS allow them), plus reduced-precision GEMM kernels compiled for their
 * own extensions and used only where the CPU has them:
 *
 *   fp32  12 x 16 tile: one zmm of B per k, 12 accumulators, the A value
 *         broadcast from memory into each FMA. Twice the rows of the AVX2
 *         tile, so that CPUs with two 512-bit FMA units have the 8+
 *         independent accumulators their latency needs; wider 12 x 32 and
 *         8 x 48 tiles share each broadcast among panels.
 *   bf16  AVX512_BF16 vdpbf16ps: 32 products of bf16 pairs per instruction
 *         into fp32 accumulators (2x the fp32 FMA rate on Zen 4, half of it
 *         on Sapphire Rapids). A is rounded to bf16 once per call; B is the
 *         weights' pair panel.
 *   int8  AVX512_VNNI vpdpbusd: 64 uint8 x int8 products per instruction
 *         into int32. Activations are quantized once per call per row and
 *         32 values (uint8 with an offset of 128, cancelled by starting each
 *         block's dot product at -128 x the weights' block sum; outliers
 *         kept in fp32), each block's int32 sum is scaled into an fp32
 *         accumulator: the Q8_0 x Q8_0 scheme of llama.cpp.
 *   AMX   AMX-BF16 tdpbf16ps on 32 x 32 output blocks, for bf16 weights and
 *         for int8 ones dequantized to bf16 panels (see the AMX section).
 *
 * The row kernels (LayerNorm, GEGLU, RoPE, the softmax pieces) run 16
 * lanes too; the softmax's exp is a cheaper one than the epilogue's (see
 * softmax_exp16).
 *
 * Built a second time over SIMDe (EMBER_AVX512_EMULATION, tests only: see
 * avx512_emulation.h) so that every kernel here is checked against the
 * scalar reference on a machine without AVX-512.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(EMBER_AVX512_EMULATION)
#include "avx512_emulation.h"
#define TARGET_BF16
#define TARGET_VNNI
#define KERNEL_TABLE ember_cpu_kernels_avx512_emulated
#ifndef EMBER_AVX512_EMULATION_TABLE
#define EMBER_AVX512_EMULATION_TABLE 1
#endif
#else
#include <immintrin.h>
#define TARGET_BF16 __attribute__((target("avx512bf16")))
#define TARGET_VNNI __attribute__((target("avx512vnni")))
#define KERNEL_TABLE ember_cpu_kernels_avx512
#endif

#include "core/dtype.h"
#include "drivers/cpu/kernels.h"
#include "drivers/driver.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define TILE_MR 12 /* rows per fp32 and bf16 tile */
#define Q8_MR 6    /* rows per int8 pass: 6 x 2 int32 + 6 x 2 fp32 accumulators */

/* ---- vector math for the fused epilogue ---- */

/* exp(x) for x in [-87.3, 88.7]; smaller inputs give 0. Same reduction and
 * polynomial as the AVX2 kernels; 2^n applied with vscalefps. */
static ALWAYS_INLINE __m512 exp16(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.33654f), hi = _mm512_set1_ps(88.72283f);
    __mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_mov_ps(keep, _mm512_scalef_ps(p, n));
}

/* exp(y) for the softmax, whose exponents y = x * scale - m are <= 0 (up
 * to rounding): 2^a with a = y log2(e), n = round(a), 2^(a - n) by a
 * degree-5 polynomial on [-1/2, 1/2] fitted for relative error (measured
 * 1.9e-7 in fp32 Horner form), scaled by vscalefps. 11 instructions with
 * the fmsub against exp16's 18: no upper clamp (a > 0 only by rounding)
 * and no zero mask (a clamped at -150 comes out 0 from vscalefps).
 * test_driver_ops checks it against double exp. */
static ALWAYS_INLINE __m512 softmax_exp16(__m512 y) {
    const __m512 a = _mm512_max_ps(_mm512_mul_ps(y, _mm512_set1_ps(1.44269504088896341f)),
                                   _mm512_set1_ps(-150.0f));
    const __m512 n = _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(a, n);
    __m512 p = _mm512_set1_ps(1.326660392805934e-3f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.671512059867382e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5507272481918335e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022242426872253e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931470036506653e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* Exact GELU with erf from Abramowitz & Stegun 7.1.26, as in avx2.c. */
static ALWAYS_INLINE __m512 gelu16(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
    __m512 a = _mm512_abs_ps(z);
    __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), a, one));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    p = _mm512_mul_ps(p, t);
    __m512 e = exp16(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), a), a));
    __m512 erf_abs = _mm512_fnmadd_ps(p, e, one);
    __mmask16 neg = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 erf = _mm512_mask_sub_ps(erf_abs, neg, _mm512_setzero_ps(), erf_abs);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(one, erf));
}

static inline uint32_t load_u32(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* ---- tile start and epilogue, shared by the three tiles ---- */

static ALWAYS_INLINE __mmask16 column_mask(int nr) {
    return nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1u);
}

static ALWAYS_INLINE void tile_start(const ember_gemm_tile *t, __m512 *acc, const int MR, __mmask16 m) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
        acc[i] = t->init ? _mm512_maskz_loadu_ps(m, t->init + i * t->ld_init) : _mm512_setzero_ps();
}

/* bias, activation, residual on the last K block; then the masked store */
static ALWAYS_INLINE void tile_finish(const ember_gemm_tile *t, __m512 *acc, const int MR, __mmask16 m) {
    int scalar_act = 0;
    if (t->last) {
        if (t->bias) {
            const __m512 b = _mm512_maskz_loadu_ps(m, t->bias);
#pragma GCC unroll 16
            for (int i = 0; i < MR; i++)
                acc[i] = _mm512_add_ps(acc[i], b);
        }
        if (t->act == EMBER_ACT_GELU) {
            for (int i = 0; i < MR; i++)
                acc[i] = gelu16(acc[i]);
        } else if (t->act != EMBER_ACT_NONE) {
            scalar_act = 1; /* rare activations: scalar, after the store */
        }
        if (t->late_res && !scalar_act) {
#pragma GCC unroll 16
            for (int i = 0; i < MR; i++)
                acc[i] = _mm512_add_ps(acc[i], _mm512_maskz_loadu_ps(m, t->late_res + i * t->ld_res));
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
        _mm512_mask_storeu_ps(t->c + i * t->ldc, m, acc[i]);
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

/* ---- fp32 tile ---- */

static ALWAYS_INLINE void f32_tile(const ember_gemm_tile *t, const int MR) {
    const __mmask16 m = column_mask(t->nr);
    __m512 acc[TILE_MR];
    tile_start(t, acc, MR, m);
    const float *a = t->a, *b = t->bp;
    const int64_t lda = t->lda, ldb = t->ldb ? t->ldb : EMBER_GEMM_NR, kc = t->kc;
    for (int64_t k = 0; k < kc; k++) {
        const __m512 bv = _mm512_loadu_ps(b + k * ldb);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++)
            acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i * lda + k]), bv, acc[i]);
    }
    tile_finish(t, acc, MR, m);
}

static void f32_tile_dispatch(const ember_gemm_tile *t) {
    switch (t->mr) {
    case 12: f32_tile(t, 12); break;
    case 11: f32_tile(t, 11); break;
    case 10: f32_tile(t, 10); break;
    case 9: f32_tile(t, 9); break;
    case 8: f32_tile(t, 8); break;
    case 7: f32_tile(t, 7); break;
    case 6: f32_tile(t, 6); break;
    case 5: f32_tile(t, 5); break;
    case 4: f32_tile(t, 4); break;
    case 3: f32_tile(t, 3); break;
    case 2: f32_tile(t, 2); break;
    default: f32_tile(t, 1); break;
    }
}

/* ---- bf16 tile (AVX512_BF16) ---- */

static inline __m512bh as_bf16x32(__m512i v) {
    __m512bh r;
    memcpy(&r, &v, sizeof r);
    return r;
}

/* ---- wide fp32 tiles: NP panels of B per k step ----
 *
 * The 12 x 16 tile issues 13 loads (12 broadcasts + B) per 12 FMAs, so on a
 * core with two FMA and two vector load ports the loads, not the FMAs, bound
 * it. Reading NP panels per k step shares each broadcast among NP FMAs:
 * 12 x 32 is 14 loads per 24 FMAs (24 accumulators + 2 B + broadcasts of the
 * 32 zmm), 8 x 48 is 11 per 24. Which is fastest depends on the core, so
 * the GEMM times them at load (ember_gemm_choose). */

static ALWAYS_INLINE ember_gemm_tile panel_view(const ember_gemm_tile *t, int q) {
    ember_gemm_tile v = *t;
    v.nr = t->nr - 16 * q;
    v.c = t->c + 16 * q;
    if (t->init)
        v.init = t->init + 16 * q;
    if (t->bias)
        v.bias = t->bias + 16 * q;
    if (t->late_res)
        v.late_res = t->late_res + 16 * q;
    return v;
}

static ALWAYS_INLINE void f32_wide(const ember_gemm_tile *t, const int MR, const int NP) {
    __m512 acc[3][TILE_MR];
    ember_gemm_tile view[3];
#pragma GCC unroll 3
    for (int q = 0; q < NP; q++) {
        view[q] = panel_view(t, q);
        if (view[q].nr > 0)
            tile_start(&view[q], acc[q], MR, column_mask(view[q].nr));
        else
            for (int i = 0; i < MR; i++)
                acc[q][i] = _mm512_setzero_ps();
    }
    const float *a = t->a, *b = t->bp;
    const int64_t lda = t->lda, ldb = t->ldb ? t->ldb : EMBER_GEMM_NR, ldp = t->ldp, kc = t->kc;
    for (int64_t k = 0; k < kc; k++) {
        __m512 bv[3];
#pragma GCC unroll 3
        for (int q = 0; q < NP; q++)
            bv[q] = _mm512_loadu_ps(b + q * ldp + k * ldb);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            const __m512 av = _mm512_set1_ps(a[i * lda + k]);
#pragma GCC unroll 3
            for (int q = 0; q < NP; q++)
                acc[q][i] = _mm512_fmadd_ps(av, bv[q], acc[q][i]);
        }
    }
#pragma GCC unroll 3
    for (int q = 0; q < NP; q++)
        if (view[q].nr > 0)
            tile_finish(&view[q], acc[q], MR, column_mask(view[q].nr));
}

#define WIDE_CASE(MR, NP) \
    case MR: f32_wide(t, MR, NP); break;

#if defined(EMBER_AVX512_EMULATION)
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-const-variable"
#endif

static void f32_12x32(const ember_gemm_tile *t) {
    switch (t->mr) {
        WIDE_CASE(12, 2) WIDE_CASE(11, 2) WIDE_CASE(10, 2) WIDE_CASE(9, 2) WIDE_CASE(8, 2)
        WIDE_CASE(7, 2) WIDE_CASE(6, 2) WIDE_CASE(5, 2) WIDE_CASE(4, 2) WIDE_CASE(3, 2)
        WIDE_CASE(2, 2)
    default: f32_wide(t, 1, 2); break;
    }
}

static void f32_8x48(const ember_gemm_tile *t) {
    switch (t->mr) {
        WIDE_CASE(8, 3) WIDE_CASE(7, 3) WIDE_CASE(6, 3) WIDE_CASE(5, 3) WIDE_CASE(4, 3)
        WIDE_CASE(3, 3) WIDE_CASE(2, 3)
    default: f32_wide(t, 1, 3); break;
    }
}

static const ember_gemm_variant wide_tiles[] = {
    {"12x32", 12, 2, f32_12x32},
    {"8x48", 8, 3, f32_8x48},
};

/* ---- register-only peak loops ---- */

/* 24 independent accumulators: enough to cover the FMA latency (4 cycles)
 * times two FMA ports with room to spare; no memory operand. */
static double peak_f32(int64_t iters) {
    __m512 acc[24];
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 24; i++)
        acc[i] = _mm512_set1_ps((float)i);
    for (int64_t n = 0; n < iters; n++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    }
    __m512 s = acc[0];
    for (int i = 1; i < 24; i++)
        s = _mm512_add_ps(s, acc[i]);
    float lanes[16];
    _mm512_storeu_ps(lanes, s);
    volatile float sink = lanes[0] + lanes[15];
    (void)sink;
    return (double)iters * 24 * 16 * 2;
}

TARGET_BF16 static double peak_bf16(int64_t iters) {
    __m512 acc[24];
    const __m512bh x = as_bf16x32(_mm512_set1_epi32(0x3f803f80)), y = as_bf16x32(_mm512_set1_epi32(0x33d633d6));
    for (int i = 0; i < 24; i++)
        acc[i] = _mm512_set1_ps((float)i);
    for (int64_t n = 0; n < iters; n++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++)
            acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    }
    __m512 s = acc[0];
    for (int i = 1; i < 24; i++)
        s = _mm512_add_ps(s, acc[i]);
    float lanes[16];
    _mm512_storeu_ps(lanes, s);
    volatile float sink = lanes[0] + lanes[15];
    (void)sink;
    return (double)iters * 24 * 32 * 2;
}

/* 16 accumulators, not 24: with 24, GCC 12 keeps copies of the
 * accumulators on the stack and moves each one through a temporary around
 * every vpdpbusd, which halved the measured rate on Zen 4 (225 against the
 * 469 GOP/s a core really does: one zmm vpdpbusd per cycle at 3.67 GHz,
 * timed with hand-written assembly), so `ember bench` showed int8 MFU above
 * 100%. 16 cover vpdpbusd's latency (5 cycles) on one port with room. */
TARGET_VNNI static double peak_q8(int64_t iters) {
    enum { ACC = 16 };
    __m512i acc[ACC];
    const __m512i x = _mm512_set1_epi32(0x01010101), y = _mm512_set1_epi32(0x01ff01ff);
    for (int i = 0; i < ACC; i++)
        acc[i] = _mm512_set1_epi32(i);
    for (int64_t n = 0; n < iters; n++) {
#pragma GCC unroll 16
        for (int i = 0; i < ACC; i++)
            acc[i] = _mm512_dpbusd_epi32(acc[i], x, y);
    }
    __m512i s = acc[0];
    for (int i = 1; i < ACC; i++)
        s = _mm512_add_epi32(s, acc[i]);
    int32_t lanes[16];
    _mm512_storeu_si512(lanes, s);
    volatile int32_t sink = lanes[0] + lanes[15];
    (void)sink;
    return (double)iters * ACC * 64 * 2;
}

TARGET_BF16 static ALWAYS_INLINE void bf16_tile(const ember_gemm_tile *t, const int MR) {
    const __mmask16 m = column_mask(t->nr);
    __m512 acc[TILE_MR];
    tile_start(t, acc, MR, m);
    const uint16_t *a = t->aq;
    const uint32_t *b = t->bq;
    const int64_t lda = t->lda, pairs = (t->kc + 1) / 2;
    for (int64_t p = 0; p < pairs; p++) {
        const __m512bh bv = as_bf16x32(_mm512_loadu_si512(b + p * EMBER_GEMM_NR));
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            __m512i av = _mm512_set1_epi32((int32_t)load_u32(a + i * lda + 2 * p));
            acc[i] = _mm512_dpbf16_ps(acc[i], as_bf16x32(av), bv);
        }
    }
    tile_finish(t, acc, MR, m);
}

TARGET_BF16 static void bf16_tile_dispatch(const ember_gemm_tile *t) {
    switch (t->mr) {
    case 12: bf16_tile(t, 12); break;
    case 11: bf16_tile(t, 11); break;
    case 10: bf16_tile(t, 10); break;
    case 9: bf16_tile(t, 9); break;
    case 8: bf16_tile(t, 8); break;
    case 7: bf16_tile(t, 7); break;
    case 6: bf16_tile(t, 6); break;
    case 5: bf16_tile(t, 5); break;
    case 4: bf16_tile(t, 4); break;
    case 3: bf16_tile(t, 3); break;
    case 2: bf16_tile(t, 2); break;
    default: bf16_tile(t, 1); break;
    }
}

/* 12 x 32 bf16 tile: two pair panels per step (t->ldp uint32 apart), each
 * broadcast pair shared by two vdpbf16ps, as the wide fp32 tiles. */
TARGET_BF16 static ALWAYS_INLINE void bf16_wide(const ember_gemm_tile *t, const int MR) {
    __m512 acc[2][TILE_MR];
    ember_gemm_tile view[2];
#pragma GCC unroll 2
    for (int q = 0; q < 2; q++) {
        view[q] = panel_view(t, q);
        if (view[q].nr > 0)
            tile_start(&view[q], acc[q], MR, column_mask(view[q].nr));
        else
            for (int i = 0; i < MR; i++)
                acc[q][i] = _mm512_setzero_ps();
    }
    const uint16_t *a = t->aq;
    const uint32_t *b = t->bq;
    const int64_t lda = t->lda, ldp = t->ldp, pairs = (t->kc + 1) / 2;
    for (int64_t p = 0; p < pairs; p++) {
        const __m512bh b0 = as_bf16x32(_mm512_loadu_si512(b + p * EMBER_GEMM_NR));
        const __m512bh b1 = as_bf16x32(_mm512_loadu_si512(b + ldp + p * EMBER_GEMM_NR));
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            const __m512bh av = as_bf16x32(_mm512_set1_epi32((int32_t)load_u32(a + i * lda + 2 * p)));
            acc[0][i] = _mm512_dpbf16_ps(acc[0][i], av, b0);
            acc[1][i] = _mm512_dpbf16_ps(acc[1][i], av, b1);
        }
    }
#pragma GCC unroll 2
    for (int q = 0; q < 2; q++)
        if (view[q].nr > 0)
            tile_finish(&view[q], acc[q], MR, column_mask(view[q].nr));
}

TARGET_BF16 static void bf16_wide_dispatch(const ember_gemm_tile *t) {
    switch (t->mr) {
    case 12: bf16_wide(t, 12); break;
    case 11: bf16_wide(t, 11); break;
    case 10: bf16_wide(t, 10); break;
    case 9: bf16_wide(t, 9); break;
    case 8: bf16_wide(t, 8); break;
    case 7: bf16_wide(t, 7); break;
    case 6: bf16_wide(t, 6); break;
    case 5: bf16_wide(t, 5); break;
    case 4: bf16_wide(t, 4); break;
    case 3: bf16_wide(t, 3); break;
    case 2: bf16_wide(t, 2); break;
    default: bf16_wide(t, 1); break;
    }
}

/* 16 floats rounded to bf16 to nearest even (the integer form of
 * vcvtneps2bf16, so it runs on any AVX-512F CPU; NaN inputs are not
 * expected here), the bits in the low half of each 32-bit lane. */
static ALWAYS_INLINE __m512i bf16_lanes(__m512 x) {
    const __m512i u = _mm512_castps_si512(x);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    return _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd)), 16);
}

static void avx512_pack_a_bf16(const float *a, int64_t lda, int mr, int64_t kc, uint16_t *dst,
                               int64_t ldd) {
    for (int i = 0; i < mr; i++) {
        const float *src = a + i * lda;
        uint16_t *out = dst + i * ldd;
        int64_t k = 0;
        for (; k + 16 <= kc; k += 16)
            _mm256_storeu_si256((void *)(out + k), _mm512_cvtepi32_epi16(bf16_lanes(_mm512_loadu_ps(src + k))));
        ember_ref_pack_a_bf16(src + k, lda, 1, kc - k, out + k, ldd);
    }
}

/* ---- int8 tile (AVX512_VNNI) ---- */

/* Column c (relative to the panel pointer, which sits at a multiple of 32)
 * of an int8 panel [k / 4][16][4] as 16 int8 values widened to floats: the
 * 64 bytes of its group of 4 k, byte c % 4 of each lane moved to the top and
 * shifted down with its sign. */
static ALWAYS_INLINE __m512 q8_column(const int8_t *panel, int64_t c) {
    const int64_t g = c >= 0 ? c / 4 : -((3 - c) / 4); /* floor(c / 4) */
    __m512i w = _mm512_loadu_si512(panel + g * 64);
    w = _mm512_sllv_epi32(w, _mm512_set1_epi32(24 - 8 * (int)(c - 4 * g)));
    return _mm512_cvtepi32_ps(_mm512_srai_epi32(w, 24));
}

/* MR rows x NP panels. Per block of 32 k, every (row, panel) pair has an
 * int32 dot product that starts at the weights' -128 x sum (so the uint8
 * offset of the activations cancels) and takes 8 vpdpbusd; it is then
 * scaled by the row's and the column's block scales into an fp32
 * accumulator. 6 x 2 holds 12 dot products + 12 accumulators + 2 B vectors
 * + 1 broadcast in the 32 zmm registers; each broadcast of 4 activation
 * bytes feeds two vpdpbusd. */
TARGET_VNNI static ALWAYS_INLINE void q8_tile(const ember_gemm_tile *t, const int MR, const int NP) {
    __m512 acc[2][Q8_MR];
    ember_gemm_tile view[2];
#pragma GCC unroll 2
    for (int q = 0; q < NP; q++) {
        view[q] = panel_view(t, q);
        if (view[q].nr > 0)
            tile_start(&view[q], acc[q], MR, column_mask(view[q].nr));
        else
            for (int i = 0; i < MR; i++)
                acc[q][i] = _mm512_setzero_ps();
    }
    const uint8_t *a = t->aq;
    const int8_t *b = t->bq;
    const int64_t lda = t->lda, ldp = t->ldp_q8, ldbs = t->ld_bs, blocks = (t->kc + 31) / 32;
    for (int64_t blk = 0; blk < blocks; blk++) {
        __m512i dot[2][Q8_MR];
#pragma GCC unroll 2
        for (int q = 0; q < NP; q++) {
            const __m512i start = _mm512_loadu_si512(t->b_offs + q * ldbs + blk * EMBER_GEMM_NR);
#pragma GCC unroll 8
            for (int i = 0; i < MR; i++)
                dot[q][i] = start;
        }
        const int8_t *bb = b + blk * 32 * EMBER_GEMM_NR;
        const uint8_t *ab = a + blk * 32;
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) { /* 4 k per step */
            __m512i bv[2];
#pragma GCC unroll 2
            for (int q = 0; q < NP; q++)
                bv[q] = _mm512_loadu_si512(bb + q * ldp + g * 4 * EMBER_GEMM_NR);
#pragma GCC unroll 8
            for (int i = 0; i < MR; i++) {
                const __m512i av = _mm512_set1_epi32((int32_t)load_u32(ab + i * lda + 4 * g));
#pragma GCC unroll 2
                for (int q = 0; q < NP; q++)
                    dot[q][i] = _mm512_dpbusd_epi32(dot[q][i], av, bv[q]);
            }
        }
#pragma GCC unroll 2
        for (int q = 0; q < NP; q++) {
            const __m512 w_scale = _mm512_loadu_ps(t->b_scale + q * ldbs + blk * EMBER_GEMM_NR);
#pragma GCC unroll 8
            for (int i = 0; i < MR; i++) {
                __m512 s = _mm512_mul_ps(w_scale, _mm512_set1_ps(t->a_scale[i * t->ld_a_scale + blk]));
                acc[q][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[q][i]), s, acc[q][i]);
            }
        }
    }
    /* the rows' outliers, in fp32 against the dequantized weights (rare:
     * a few rows of a batch, at most EMBER_Q8_OUTLIERS values each) */
    if (t->last && t->o_n)
        for (int i = 0; i < MR; i++)
            for (int e = 0; e < t->o_n[i]; e++) {
                const int64_t c = t->o_idx[i * EMBER_Q8_OUTLIERS + e] - t->k0;
                const int64_t cb = c >= 0 ? c / 32 : -((31 - c) / 32); /* floor(c / 32) */
                const __m512 v = _mm512_set1_ps(t->o_val[i * EMBER_Q8_OUTLIERS + e]);
#pragma GCC unroll 2
                for (int q = 0; q < NP; q++) {
                    __m512 w = _mm512_mul_ps(q8_column(b + q * ldp, c),
                                             _mm512_loadu_ps(t->b_scale + q * ldbs + cb * EMBER_GEMM_NR));
                    acc[q][i] = _mm512_fmadd_ps(v, w, acc[q][i]);
                }
            }
#pragma GCC unroll 2
    for (int q = 0; q < NP; q++)
        if (view[q].nr > 0)
            tile_finish(&view[q], acc[q], MR, column_mask(view[q].nr));
}

#define Q8_CASE(MR, NP) \
    case MR: q8_tile(&s, MR, NP); break;

/* The table's mr (12) rows in passes of at most Q8_MR; two panels when nr
 * exceeds 16. */
TARGET_VNNI static void q8_tile_dispatch(const ember_gemm_tile *t) {
    for (int r0 = 0; r0 < t->mr; r0 += Q8_MR) {
        ember_gemm_tile s = *t;
        s.mr = t->mr - r0 < Q8_MR ? t->mr - r0 : Q8_MR;
        s.aq = (const uint8_t *)t->aq + r0 * t->lda;
        s.a_scale = t->a_scale + r0 * t->ld_a_scale;
        s.c = t->c + r0 * t->ldc;
        if (t->init)
            s.init = t->init + r0 * t->ld_init;
        if (t->late_res)
            s.late_res = t->late_res + r0 * t->ld_res;
        if (t->o_n) {
            s.o_n = t->o_n + r0;
            s.o_idx = t->o_idx + r0 * EMBER_Q8_OUTLIERS;
            s.o_val = t->o_val + r0 * EMBER_Q8_OUTLIERS;
        }
        if (s.nr > 16) {
            switch (s.mr) {
                Q8_CASE(6, 2) Q8_CASE(5, 2) Q8_CASE(4, 2) Q8_CASE(3, 2) Q8_CASE(2, 2)
            default: q8_tile(&s, 1, 2); break;
            }
        } else {
            switch (s.mr) {
                Q8_CASE(6, 1) Q8_CASE(5, 1) Q8_CASE(4, 1) Q8_CASE(3, 1) Q8_CASE(2, 1)
            default: q8_tile(&s, 1, 1); break;
            }
        }
    }
}

static ALWAYS_INLINE __mmask16 mask_upto(int64_t n) {
    return n <= 0 ? (__mmask16)0 : n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

/* ember_ref_quant_a_q8 in vectors, bit for bit: the threshold's sum of
 * squares in the same 16 lanes and reduction order, the outliers picked by
 * the shared scalar routine (only for rows that have one), then per block of
 * 32: s = max|a| / 127, q = round(a * (127 / max|a|)) + 128. */
static void avx512_quant_a_q8(const float *a, int64_t lda, int rows, int64_t K, uint8_t *dst,
                              int64_t ldd, float *scales, int64_t lds, uint8_t *o_n, int32_t *o_idx,
                              float *o_val) {
    const __m512i offset = _mm512_set1_epi32(128);
    const __m512i qmin = _mm512_set1_epi32(-127), qmax = _mm512_set1_epi32(127);
    for (int i = 0; i < rows; i++) {
        const float *x = a + i * lda;
        __m512 ss = _mm512_setzero_ps(), mx = _mm512_setzero_ps();
        for (int64_t k = 0; k < K; k += 16) {
            const __m512 v = _mm512_maskz_loadu_ps(mask_upto(K - k), x + k);
            ss = _mm512_fmadd_ps(v, v, ss);
            mx = _mm512_max_ps(mx, _mm512_abs_ps(v));
        }
        /* lanes l + 8, l + 4, l + 2, l + 1, as the reference */
        __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(ss),
                                  _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(ss), 1)));
        __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
        __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
        const float thr2 = _mm_cvtss_f32(s1) * (EMBER_Q8_OUTLIER_T * EMBER_Q8_OUTLIER_T / (float)K);
        const float amax_row = _mm512_reduce_max_ps(mx);
        int32_t *idx = o_idx + (int64_t)i * EMBER_Q8_OUTLIERS;
        const int n = amax_row * amax_row > thr2
                          ? ember_q8_row_outliers(x, K, thr2, idx, o_val + (int64_t)i * EMBER_Q8_OUTLIERS)
                          : 0;
        o_n[i] = (uint8_t)n;
        int e = 0;
        for (int64_t k0 = 0; k0 < ldd; k0 += 32) {
            __m512 x0 = _mm512_maskz_loadu_ps(mask_upto(K - k0), x + k0);
            __m512 x1 = _mm512_maskz_loadu_ps(mask_upto(K - k0 - 16), x + k0 + 16);
            if (e < n && idx[e] < k0 + 32) { /* this block holds outliers: they count as 0 */
                uint32_t drop = 0;
                for (; e < n && idx[e] < k0 + 32; e++)
                    drop |= 1u << (idx[e] - k0);
                x0 = _mm512_maskz_mov_ps((__mmask16)~drop, x0);
                x1 = _mm512_maskz_mov_ps((__mmask16)~(drop >> 16), x1);
            }
            float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
            const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
            if (k0 < K)
                scales[i * lds + k0 / 32] = amax / 127.0f;
            const __m512 vinv = _mm512_set1_ps(inv);
            __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, vinv));
            __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, vinv));
            q0 = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q0, qmin), qmax), offset);
            q1 = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q1, qmin), qmax), offset);
            _mm_storeu_si128((void *)(dst + i * ldd + k0), _mm512_cvtepi32_epi8(q0));
            _mm_storeu_si128((void *)(dst + i * ldd + k0 + 16), _mm512_cvtepi32_epi8(q1));
        }
    }
}

/* ---- AMX (AMX-TILE, AMX-BF16) ----
 *
 * One tdpbf16ps multiplies a 16 x 32 bf16 tile of A by a 32 x 16 tile of B
 * (16 rows of 16 pairs: exactly 16 rows of the pair panels, contiguous) into
 * a 16 x 16 fp32 tile: 8192 multiply-adds per instruction, sixteen times the
 * fp32 FMA rate of AVX-512 on Sapphire Rapids. A block of 32 x 32 outputs
 * keeps its four C tiles in tmm4-7 for the whole of K, loading two A tiles
 * (tmm0-1) and two B tiles (tmm2-3) per 32 k. Left out of the emulated table
 * (SIMDe has no AMX): tested natively where the CPU has it. */
#if !defined(EMBER_AVX512_EMULATION)
#define TARGET_AMX __attribute__((target("amx-tile,amx-bf16,amx-int8,prfchw")))

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

/* Palette 1, tiles 0-7 of 16 rows x 64 bytes. A constant: GCC 12's
 * _tile_loadconfig tells the compiler it reads 8 bytes of the 64, so the
 * stores that filled a local copy were dropped as dead. */
static const amx_config amx_cfg = {
    .palette = 1,
    .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
    .rows = {16, 16, 16, 16, 16, 16, 16, 16},
};

/* GCC 12's _tile_loadd does not tell the compiler it reads memory: a
 * barrier before each load of something just written from C. */
#define AMX_MEMORY_BARRIER() __asm__ volatile("" ::: "memory")

TARGET_AMX static void avx512_amx_begin(void) { _tile_loadconfig(&amx_cfg); }

TARGET_AMX static void avx512_amx_end(void) { _tile_release(); }

/* The stored block (rows of `src`, stride lds) through the epilogue into C,
 * in pieces of 8 rows x 16 columns: piece i of amx_finish_pieces(t), so that
 * a deferred epilogue can be spread between the next block's products. */
static inline int amx_finish_pieces(const ember_gemm_tile *t) {
    return ((t->nr + 15) / 16) * ((t->mr + 7) / 8);
}

static void amx_finish_piece(const ember_gemm_tile *t, const float *src, int64_t lds, int piece) {
    const int row_pieces = (t->mr + 7) / 8;
    const int q = piece / row_pieces, r0 = piece % row_pieces * 8;
    const ember_gemm_tile v = panel_view(t, q);
    const __mmask16 m = column_mask(v.nr);
    const int n = t->mr - r0 < 8 ? t->mr - r0 : 8;
    ember_gemm_tile w = v;
    w.c = v.c + r0 * v.ldc;
    if (v.late_res)
        w.late_res = v.late_res + r0 * v.ld_res;
    __m512 acc[8];
    for (int i = 0; i < n; i++)
        acc[i] = _mm512_maskz_loadu_ps(m, src + (r0 + i) * lds + 16 * q);
    tile_finish(&w, acc, n, m);
}

static void amx_finish(const ember_gemm_tile *t, const float *src, int64_t lds) {
    for (int piece = 0, n = amx_finish_pieces(t); piece < n; piece++)
        amx_finish_piece(t, src, lds, piece);
}

/* A deferred block's epilogue (its tiles in its own scratch, stride 32). */
static void avx512_amx_finish(const ember_gemm_tile *t) { amx_finish(t, t->scratch, 32); }

TARGET_AMX static ALWAYS_INLINE int amx_bf16_block(const ember_gemm_tile *t, const int TWO_ROWS,
                                                   const int TWO_COLS) {
    /* a whole block without epilogue goes to C directly; a partial one
     * (rows past M, columns past N) or one with an epilogue through the
     * scratch (reading back from C what the tiles just stored there was
     * slower) */
    const int epilogue = t->last && (t->bias || t->act != EMBER_ACT_NONE || t->late_res);
    const int direct = t->mr == (TWO_ROWS ? 32 : 16) && t->nr == (TWO_COLS ? 32 : 16) && !epilogue;
    float *buf = t->scratch;
    float *c = direct ? t->c : buf;
    const int64_t ldc = direct ? t->ldc : 32;
    if (t->init) {
        const float *ip = t->init;
        int64_t ldi = t->ld_init;
        if (!direct) {
            /* init into the scratch: only the rows and columns that exist */
            memset(buf, 0, sizeof(float) * 32 * 32);
            for (int i = 0; i < t->mr; i++)
                memcpy(buf + i * 32, t->init + i * t->ld_init, sizeof(float) * (size_t)t->nr);
            ip = buf;
            ldi = 32;
        }
        AMX_MEMORY_BARRIER();
        _tile_loadd(4, ip, ldi * 4);
        if (TWO_COLS)
            _tile_loadd(5, ip + 16, ldi * 4);
        if (TWO_ROWS) {
            _tile_loadd(6, ip + 16 * ldi, ldi * 4);
            if (TWO_COLS)
                _tile_loadd(7, ip + 16 * ldi + 16, ldi * 4);
        }
    } else {
        _tile_zero(4);
        if (TWO_COLS)
            _tile_zero(5);
        if (TWO_ROWS) {
            _tile_zero(6);
            if (TWO_COLS)
                _tile_zero(7);
        }
    }
    const uint16_t *a = t->aq;
    const uint32_t *b = t->bq;
    const int64_t lda = t->lda, ldp = t->ldp;
    /* the pending block's epilogue, a few pieces after each k step's
     * products: the vector units work through it while the AMX unit runs
     * (issued after all of this block's products instead, it waited for
     * them in the reorder buffer) */
    const ember_gemm_tile *pend = t->pending;
    const int pieces = pend ? amx_finish_pieces(pend) : 0, steps = (int)(t->kc / 32);
    const int per_step = steps > 0 ? (pieces + steps - 1) / steps : pieces;
    int piece = 0;
    /* C's lines (two per row) fetched for writing, spread over the k
     * steps: the C of a product is megabytes (y of B's Wi: 4.7 MB), so
     * every tile store missed the cache, and perf put most of the kernel's
     * samples behind the four tilestored. With the hint below, linear
     * 0.74 -> 0.63 s per B short int8 run (2 threads, Sapphire Rapids). */
    int line = 0;
    const int lines = 2 * t->mr, pw_per_step = steps > 0 ? (lines + steps - 1) / steps : lines;
    AMX_MEMORY_BARRIER(); /* A and B may come from this thread's stores */
    for (int64_t k = 0; k < t->kc; k += 32) {
        _tile_loadd(0, a + k, lda * 2);
        /* B's tiles are each used by this block alone (the task walks a
         * band's panels for each block of rows), A's by every block of
         * the band: B loaded with the streaming hint (tileloaddt1), so it
         * does not push the A block out of L1 */
        _tile_stream_loadd(2, b + k / 2 * EMBER_GEMM_NR, 64);
        if (TWO_COLS)
            _tile_stream_loadd(3, b + ldp + k / 2 * EMBER_GEMM_NR, 64);
        _tile_dpbf16ps(4, 0, 2);
        if (TWO_COLS)
            _tile_dpbf16ps(5, 0, 3);
        if (TWO_ROWS) {
            _tile_loadd(1, a + 16 * lda + k, lda * 2);
            _tile_dpbf16ps(6, 1, 2);
            if (TWO_COLS)
                _tile_dpbf16ps(7, 1, 3);
        }
        for (int i = 0; i < per_step && piece < pieces; i++)
            amx_finish_piece(pend, pend->scratch, 32, piece++);
        for (int i = 0; i < pw_per_step && line < lines; i++, line++)
            __builtin_prefetch(t->c + (line >> 1) * t->ldc + (line & 1) * 16, 1, 3);
    }
    for (; piece < pieces; piece++)
        amx_finish_piece(pend, pend->scratch, 32, piece);
    AMX_MEMORY_BARRIER(); /* the stores below may overwrite what C code read */
    _tile_stored(4, c, ldc * 4);
    if (TWO_COLS)
        _tile_stored(5, c + 16, ldc * 4);
    if (TWO_ROWS) {
        _tile_stored(6, c + 16 * ldc, ldc * 4);
        if (TWO_COLS)
            _tile_stored(7, c + 16 * ldc + 16, ldc * 4);
    }
    if (direct)
        return 0;
    AMX_MEMORY_BARRIER();
    if (t->defer)
        return 1;
    amx_finish(t, c, ldc);
    return 0;
}

TARGET_AMX static int avx512_amx_bf16(const ember_gemm_tile *t) {
    if (t->mr > 16)
        return t->nr > 16 ? amx_bf16_block(t, 1, 1) : amx_bf16_block(t, 1, 0);
    return t->nr > 16 ? amx_bf16_block(t, 0, 1) : amx_bf16_block(t, 0, 0);
}

/* int8 panels to bf16 pair panels: per group of 4 k, the 64 bytes of 16
 * columns x 4 k give four vectors of 16 values (byte kk of each lane, with
 * its sign), times the column scales of their block, rounded to bf16 by
 * AVX512_BF16's vcvtne2ps2bf16 (every AMX CPU has it: to nearest even as
 * bf16_lanes, one instruction per two vectors instead of ten; it flushes
 * denormals, which a weight times its block's scale never is in practice)
 * and paired by one word permutation: (k, k + 1) and (k + 2, k + 3). Half
 * the instructions of the shift-and-add rounding: perf had the conversion
 * at 15% of a B short int8 pass. */
TARGET_BF16 static void avx512_q8_panels_bf16(
    const int8_t *q, int64_t ldp_q8, const float *scales, int64_t ld_bs, int64_t n_panels, int64_t kc,
    uint32_t *dst) {
    /* word i of the result: column i / 2 of the low (even i) or high half */
    const __m512i pairs = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                           22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int64_t p = 0; p < n_panels; p++) {
        const int8_t *src = q + p * ldp_q8;
        uint32_t *out = dst + p * (kc / 2) * EMBER_GEMM_NR;
        for (int64_t k = 0; k < kc; k += 4) {
            const __m512 s = _mm512_loadu_ps(scales + p * ld_bs + (k / 32) * EMBER_GEMM_NR);
            const __m512i w = _mm512_loadu_si512(src + k * EMBER_GEMM_NR);
            /* byte kk of each lane to the top, then down with its sign */
            const __m512i bytes[4] = {_mm512_slli_epi32(w, 24), _mm512_slli_epi32(w, 16),
                                      _mm512_slli_epi32(w, 8), w};
            __m512 v[4];
            for (int kk = 0; kk < 4; kk++)
                v[kk] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srai_epi32(bytes[kk], 24)), s);
            for (int h = 0; h < 2; h++) {
                /* low 16 words bf16(v[2h]), high 16 bf16(v[2h + 1]) */
                const __m512bh b = _mm512_cvtne2ps_pbh(v[2 * h + 1], v[2 * h]);
                __m512i bi;
                memcpy(&bi, &b, sizeof bi);
                _mm512_storeu_si512(out + (k / 2 + h) * EMBER_GEMM_NR, _mm512_permutexvar_epi16(pairs, bi));
            }
        }
    }
}

/* tdpbf16ps on tiles that stay in registers: 4 independent accumulators
 * over the same A and B (16 x 16 x 32 multiply-adds each). */
TARGET_AMX static double peak_amx_bf16(int64_t iters) {
    avx512_amx_begin();
    static const uint16_t zero[16 * 32];
    AMX_MEMORY_BARRIER();
    _tile_loadd(0, zero, 64);
    _tile_loadd(1, zero, 64);
    _tile_zero(4);
    _tile_zero(5);
    _tile_zero(6);
    _tile_zero(7);
    for (int64_t n = 0; n < iters; n++) {
        _tile_dpbf16ps(4, 0, 1);
        _tile_dpbf16ps(5, 0, 1);
        _tile_dpbf16ps(6, 0, 1);
        _tile_dpbf16ps(7, 0, 1);
    }
    avx512_amx_end();
    return (double)iters * 4 * 16 * 16 * 32 * 2;
}
#endif

/* ---- softmax pieces of the tiled attention, 16 lanes ----
 * (the AVX2 versions, 8 lanes, were a quarter of a bf16 pass on 512-token
 * inputs once the products ran on AMX: perf, model A long) */

static float hmax16(__m512 v) {
    float lanes[16], m = -INFINITY;
    _mm512_storeu_ps(lanes, v);
    for (int q = 0; q < 16; q++)
        m = lanes[q] > m ? lanes[q] : m;
    return m;
}

static float hsum16(__m512 v) {
    float lanes[16], s = 0.0f;
    _mm512_storeu_ps(lanes, v);
    for (int q = 0; q < 16; q++)
        s += lanes[q];
    return s;
}

static float avx512_row_max(const float *x, int32_t n) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    int32_t j = 0;
    for (; j + 16 <= n; j += 16)
        vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(x + j));
    float m = hmax16(vmax);
    for (; j < n; j++)
        m = x[j] > m ? x[j] : m;
    return m;
}

/* One vector of softmax weights: exp(x * scale - m) for 16 scores. */
static ALWAYS_INLINE __m512 softmax_p16(const float *x, __m512 vscale, __m512 vm) {
    return softmax_exp16(_mm512_fmsub_ps(_mm512_loadu_ps(x), vscale, vm));
}

static float avx512_row_exp(float *x, int32_t n, float scale, float m) {
    const __m512 vscale = _mm512_set1_ps(scale), vm = _mm512_set1_ps(m);
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int32_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m512 p0 = softmax_p16(x + j, vscale, vm);
        __m512 p1 = softmax_p16(x + j + 16, vscale, vm);
        _mm512_storeu_ps(x + j, p0);
        _mm512_storeu_ps(x + j + 16, p1);
        s0 = _mm512_add_ps(s0, p0);
        s1 = _mm512_add_ps(s1, p1);
    }
    for (; j + 16 <= n; j += 16) {
        __m512 p = softmax_p16(x + j, vscale, vm);
        _mm512_storeu_ps(x + j, p);
        s0 = _mm512_add_ps(s0, p);
    }
    float sum = hsum16(_mm512_add_ps(s0, s1));
    for (; j < n; j++) {
        x[j] = expf(x[j] * scale - m);
        sum += x[j];
    }
    return sum;
}

/* 16 floats to bf16, to nearest even: vcvtneps2bf16 where the CPU has
 * AVX512_BF16 (every CPU the bf16 attention runs on; it reads denormal
 * inputs as 0, which for softmax weights below 2^-126 is what they are
 * worth), the integer rounding of bf16_lanes over SIMDe, which lacks it. */
#if defined(EMBER_AVX512_EMULATION)
static ALWAYS_INLINE __m256i bf16x16(__m512 x) { return _mm512_cvtepi32_epi16(bf16_lanes(x)); }
#else
TARGET_BF16 static ALWAYS_INLINE __m256i bf16x16(__m512 x) { return (__m256i)_mm512_cvtneps_pbh(x); }
#endif

/* avx512_row_exp with the values rounded to bf16 on the way out instead of
 * stored: the bf16 attention's P, and the fp32 sum of the unrounded values,
 * in one pass over the scores. A function of its own, not row_exp with a
 * flag: it is compiled for AVX512_BF16 (vcvtneps2bf16), which row_exp must
 * not need. */
TARGET_BF16 static float avx512_row_exp_bf16(const float *x, int32_t n, float scale, float m,
                                             uint16_t *dst) {
    const __m512 vscale = _mm512_set1_ps(scale), vm = _mm512_set1_ps(m);
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int32_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m512 p0 = softmax_p16(x + j, vscale, vm);
        __m512 p1 = softmax_p16(x + j + 16, vscale, vm);
        _mm256_storeu_si256((void *)(dst + j), bf16x16(p0));
        _mm256_storeu_si256((void *)(dst + j + 16), bf16x16(p1));
        s0 = _mm512_add_ps(s0, p0);
        s1 = _mm512_add_ps(s1, p1);
    }
    /* the tail in one masked vector: lanes past n are neither read nor
     * written, and add 0 to the sum */
    for (; j < n; j += 16) {
        const __mmask16 live = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1u);
        __m512 p = softmax_exp16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(live, x + j), vscale, vm));
        p = _mm512_maskz_mov_ps(live, p);
        _mm256_mask_storeu_epi16(dst + j, live, bf16x16(p));
        s0 = _mm512_add_ps(s0, p);
    }
    return hsum16(_mm512_add_ps(s0, s1));
}

/* ---- row ops of the forward pass, 16 lanes ----
 * (the table had the AVX2 ones: perf on B short int8 put GeGLU, LayerNorm
 * and RoPE at about 10% of the pass once the products ran on AMX). Same
 * arithmetic as avx2.c; LayerNorm's sums are reduced over 16 lanes instead of
 * 8, so its results may differ from the AVX2 table's in the last bits. */

static void avx512_layer_norm_row(const float *x, const float *res, const float *gamma, const float *beta,
                                  float eps, int64_t n, float *out) {
    const int64_t n16 = n & ~(int64_t)15;
    int64_t i;
    __m512 vs = _mm512_setzero_ps();
    for (i = 0; i < n16; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        if (res)
            v = _mm512_add_ps(v, _mm512_loadu_ps(res + i));
        _mm512_storeu_ps(out + i, v);
        vs = _mm512_add_ps(vs, v);
    }
    float sum = hsum16(vs);
    for (; i < n; i++) {
        const float v = res ? x[i] + res[i] : x[i];
        out[i] = v;
        sum += v;
    }
    const float mean = sum / (float)n;
    const __m512 vm = _mm512_set1_ps(mean);
    __m512 vq = _mm512_setzero_ps();
    for (i = 0; i < n16; i += 16) {
        const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(out + i), vm);
        vq = _mm512_fmadd_ps(d, d, vq);
    }
    float sq = hsum16(vq);
    for (; i < n; i++)
        sq += (out[i] - mean) * (out[i] - mean);
    const float inv = 1.0f / sqrtf(sq / (float)n + eps);
    const __m512 vi = _mm512_set1_ps(inv);
    for (i = 0; i < n16; i += 16) {
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(out + i), vm), vi),
                                 _mm512_loadu_ps(gamma + i));
        if (beta)
            v = _mm512_add_ps(v, _mm512_loadu_ps(beta + i));
        _mm512_storeu_ps(out + i, v);
    }
    for (; i < n; i++) {
        const float v = (out[i] - mean) * inv * gamma[i];
        out[i] = beta ? v + beta[i] : v;
    }
}

static void avx512_geglu_row(const float *in, int64_t inter, float *out) {
    int64_t i = 0;
    for (; i + 16 <= inter; i += 16)
        _mm512_storeu_ps(out + i, _mm512_mul_ps(gelu16(_mm512_loadu_ps(in + i)), _mm512_loadu_ps(in + inter + i)));
    if (i < inter) { /* the tail under a mask: the same arithmetic as the rest */
        const __mmask16 m = column_mask((int)(inter - i));
        _mm512_mask_storeu_ps(out + i, m,
                              _mm512_mul_ps(gelu16(_mm512_maskz_loadu_ps(m, in + i)),
                                            _mm512_maskz_loadu_ps(m, in + inter + i)));
    }
}

static void avx512_rope_head(float *x, const float *cos, const float *sin, int32_t head_dim) {
    const int32_t half = head_dim / 2;
    for (int32_t i = 0; i < half; i += 16) {
        const __mmask16 m = column_mask(half - i);
        const __m512 a = _mm512_maskz_loadu_ps(m, x + i), b = _mm512_maskz_loadu_ps(m, x + half + i);
        const __m512 c = _mm512_maskz_loadu_ps(m, cos + i), s = _mm512_maskz_loadu_ps(m, sin + i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_fmsub_ps(a, c, _mm512_mul_ps(b, s)));
        _mm512_mask_storeu_ps(x + half + i, m, _mm512_fmadd_ps(b, c, _mm512_mul_ps(a, s)));
    }
}

/* ---- the fp32 attention's K^T panels (see kernels.h) ----
 * Per panel of 16 keys and 16 columns: the rows loaded, transposed in
 * registers (32-bit then 64-bit interleaves within 128-bit lanes, then two
 * rounds of 128-bit lane shuffles: 64 instructions for 256 values, against
 * a scalar load and store each), stored as 16 columns of 16 keys. perf had
 * the scalar loop at 3% of a 512-token fp32 pass (model A). */
static void avx512_pack_kt_f32(const float *k, int64_t ld, int32_t nk, int32_t d, float *dst) {
    for (int32_t p = 0; p * 16 < nk; p++) {
        const int32_t keys = nk - 16 * p < 16 ? nk - 16 * p : 16;
        for (int32_t c0 = 0; c0 < d; c0 += 16) {
            __m512 r[16], t[16], u[16];
            for (int jj = 0; jj < 16; jj++)
                r[jj] = jj < keys ? _mm512_loadu_ps(k + (int64_t)(16 * p + jj) * ld + c0) : _mm512_setzero_ps();
            /* per 128-bit lane L: t[2i] = (r[2i][4L], r[2i+1][4L], r[2i][4L+1], r[2i+1][4L+1]),
             * t[2i+1] the same for 4L+2, 4L+3 */
            for (int i = 0; i < 8; i++) {
                t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
                t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
            }
            /* u[4g + e]: lane L holds rows 4g..4g+3 of column 4L + e */
            for (int g = 0; g < 4; g++) {
                const __m512d t0 = _mm512_castps_pd(t[4 * g]), t1 = _mm512_castps_pd(t[4 * g + 1]);
                const __m512d t2 = _mm512_castps_pd(t[4 * g + 2]), t3 = _mm512_castps_pd(t[4 * g + 3]);
                u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
                u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
                u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
                u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
            }
            /* column 4L + e gathers lane L of u[e], u[4 + e], u[8 + e], u[12 + e] */
            float *out = dst + ((int64_t)p * d + c0) * 16;
            for (int e = 0; e < 4; e++) {
                const __m512 va = _mm512_shuffle_f32x4(u[e], u[4 + e], 0x88);  /* L0 L2 | L0 L2 */
                const __m512 vb = _mm512_shuffle_f32x4(u[e], u[4 + e], 0xdd);  /* L1 L3 | L1 L3 */
                const __m512 wa = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0x88);
                const __m512 wb = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0xdd);
                _mm512_storeu_ps(out + (0 + e) * 16, _mm512_shuffle_f32x4(va, wa, 0x88));
                _mm512_storeu_ps(out + (8 + e) * 16, _mm512_shuffle_f32x4(va, wa, 0xdd));
                _mm512_storeu_ps(out + (4 + e) * 16, _mm512_shuffle_f32x4(vb, wb, 0x88));
                _mm512_storeu_ps(out + (12 + e) * 16, _mm512_shuffle_f32x4(vb, wb, 0xdd));
            }
        }
    }
}

/* ---- the bf16 attention's operands (see kernels.h) ---- */

static void avx512_pack_kt_bf16(const float *k, int64_t ld, int32_t nk, int32_t d, uint32_t *dst,
                                uint32_t *tmp) {
    const int32_t half = (d + 31) / 32 * 16; /* pairs per key: dp / 2 */
    const __m512i rows = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(half));
    for (int32_t p = 0; p * 16 < nk; p++) {
        /* the panel's 16 keys as bf16 pairs, one row of `half` per key */
        for (int32_t jj = 0; jj < 16; jj++) {
            const int32_t j = p * 16 + jj;
            uint32_t *row = tmp + (int64_t)jj * half;
            int32_t i = 0;
            if (j < nk) {
                const float *src = k + (int64_t)j * ld;
                for (; 2 * i + 32 <= d; i += 16) {
                    const __m512i a = bf16_lanes(_mm512_loadu_ps(src + 2 * i));
                    const __m512i b = bf16_lanes(_mm512_loadu_ps(src + 2 * i + 16));
                    /* 32 bf16 values in order = 16 pairs */
                    _mm256_storeu_si256((void *)(row + i), _mm512_cvtepi32_epi16(a));
                    _mm256_storeu_si256((void *)(row + i + 8), _mm512_cvtepi32_epi16(b));
                }
            }
            for (; i < half; i++) {
                uint32_t lo = j < nk && 2 * i < d ? ember_f32_to_bf16(k[(int64_t)j * ld + 2 * i]) : 0;
                uint32_t hi = j < nk && 2 * i + 1 < d ? ember_f32_to_bf16(k[(int64_t)j * ld + 2 * i + 1]) : 0;
                row[i] = lo | hi << 16;
            }
        }
        /* transposed: pair i of the 16 keys in one vector */
        uint32_t *panel = dst + (int64_t)p * half * 16;
        for (int32_t i = 0; i < half; i++)
            _mm512_storeu_si512(panel + (int64_t)i * 16, _mm512_i32gather_epi32(rows, (const void *)(tmp + i), 4));
    }
}

static void avx512_pack_v_bf16(const float *v, int64_t ld, int32_t nk, int32_t d, uint32_t *dst,
                               int64_t ldp) {
    const int32_t pairs = (nk + 31) / 32 * 16;
    for (int32_t i = 0; i < pairs; i++) {
        const float *r0 = 2 * i < nk ? v + (int64_t)(2 * i) * ld : NULL;
        const float *r1 = 2 * i + 1 < nk ? v + (int64_t)(2 * i + 1) * ld : NULL;
        for (int32_t q = 0; q * 16 < d; q++) {
            const __m512i lo = r0 ? bf16_lanes(_mm512_loadu_ps(r0 + 16 * q)) : _mm512_setzero_si512();
            const __m512i hi = r1 ? bf16_lanes(_mm512_loadu_ps(r1 + 16 * q)) : _mm512_setzero_si512();
            _mm512_storeu_si512(dst + q * ldp + (int64_t)i * 16, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
    }
}

/* ---- attention: the shared tiled kernel over the fp32 tile ---- */

/* ---- attention of sequences of at most 32 tokens ----
 * The tiled kernel's bookkeeping (K^T packed by a scalar loop, the GEMM tile
 * called per 12 rows, the online softmax's per-row calls, memsets and the
 * final scaling pass) cost about five times the arithmetic on 16-token
 * inputs (A short: about 6,000 cycles per head). Here the whole sequence is
 * one key tile held in one or two vectors per query: K^T by gathers, scores
 * for four queries per pass over K^T, the softmax in registers (exact max,
 * no running rescale), then O = P V with one accumulator per query and V
 * read in place. Windows and causal masks are per-row key masks; MPNet's
 * relative-position bias joins the scaled scores. */
enum { SHORT_ATTN_MAX = 32 };

static void attention_short(const ember_attn_tile *t) {
    const int32_t d = t->head_dim, len = t->len, nq = t->q1 - t->q0, np = (len + 15) / 16;
    float *kt = t->scratch;                      /* [np][d][16]: K^T panels */
    float *pr = kt + (int64_t)np * d * 16;       /* [nq][32]: probabilities */
    const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32((int32_t)t->ld));
    /* the rows of V and Q come from L2 or L3, 16 lines apart: ask for all of
     * them before the gathers so that their misses overlap */
    for (int32_t j = 0; j < len; j++)
        for (int32_t c = 0; c < d; c += 16)
            _mm_prefetch((const char *)(t->v + (int64_t)j * t->ld + c), _MM_HINT_T0);
    for (int32_t i = 0; i < nq; i++)
        for (int32_t c = 0; c < d; c += 16)
            _mm_prefetch((const char *)(t->q + (int64_t)i * t->ld_q + c), _MM_HINT_T0);
    for (int32_t p = 0; p < np; p++) {
        const __mmask16 m = column_mask(len - 16 * p);
        const float *k0 = t->k + (int64_t)16 * p * t->ld;
        for (int32_t c = 0; c < d; c++)
            _mm512_storeu_ps(kt + ((int64_t)p * d + c) * 16,
                             _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, rows, k0 + c, 4));
    }
    /* scores, softmax: four queries at a time */
    for (int32_t i0 = 0; i0 < nq; i0 += 4) {
        const int32_t ni = nq - i0 < 4 ? nq - i0 : 4;
        __m512 acc[4][2];
        for (int32_t r = 0; r < 4; r++)
            acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        for (int32_t p = 0; p < np; p++)
            for (int32_t c = 0; c < d; c++) {
                const __m512 kv = _mm512_loadu_ps(kt + ((int64_t)p * d + c) * 16);
                for (int32_t r = 0; r < ni; r++)
                    acc[r][p] = _mm512_fmadd_ps(_mm512_set1_ps(t->q[(int64_t)(i0 + r) * t->ld_q + c]), kv,
                                                acc[r][p]);
            }
        for (int32_t r = 0; r < ni; r++) {
            const int32_t qi = t->q0 + i0 + r;
            int32_t j0 = 0, j1 = len; /* keys [j0, j1) */
            if (t->window > 0) {
                j0 = qi - t->window > 0 ? qi - t->window : 0;
                j1 = qi + t->window + 1 < len ? qi + t->window + 1 : len;
            }
            if (t->causal && qi + 1 < j1)
                j1 = qi + 1;
            const uint32_t want = (j1 >= 32 ? 0xffffffffu : (1u << j1) - 1u) & ~((1u << j0) - 1u);
            const __mmask16 mk[2] = {(__mmask16)(want & 0xffff), (__mmask16)(want >> 16)};
            const __m512 vs = _mm512_set1_ps(t->scale);
            __m512 sc[2], mx = _mm512_set1_ps(-INFINITY);
            for (int32_t p = 0; p < np; p++) {
                sc[p] = _mm512_mul_ps(acc[r][p], vs);
                if (t->rel) /* MPNet: + rel[j - i + center] after scaling; every key
                             * of the sequence is inside the table (span >= len) */
                    sc[p] = _mm512_add_ps(sc[p], _mm512_maskz_loadu_ps(column_mask(len - 16 * p),
                                                                       t->rel + 16 * p - qi + t->rel_center));
                mx = _mm512_mask_max_ps(mx, mk[p], mx, sc[p]);
            }
            const float m = j0 < j1 ? _mm512_reduce_max_ps(mx) : 0.0f;
            __m512 sum = _mm512_setzero_ps();
            for (int32_t p = 0; p < np; p++) {
                sc[p] = _mm512_maskz_mov_ps(mk[p], exp16(_mm512_sub_ps(sc[p], _mm512_set1_ps(m))));
                sum = _mm512_add_ps(sum, sc[p]);
            }
            const float total = hsum16(sum);
            const __m512 inv = _mm512_set1_ps(total > 0.0f ? 1.0f / total : 0.0f);
            for (int32_t p = 0; p < 2; p++) /* zeros past the keys: P V reads whole panels */
                _mm512_storeu_ps(pr + (int64_t)(i0 + r) * SHORT_ATTN_MAX + 16 * p,
                                 p < np ? _mm512_mul_ps(sc[p], inv) : _mm512_setzero_ps());
        }
    }
    /* O = P V: 16 columns at a time, up to 16 queries in registers */
    for (int32_t i0 = 0; i0 < nq; i0 += 16) {
        const int32_t ni = nq - i0 < 16 ? nq - i0 : 16;
        for (int32_t c0 = 0; c0 < d; c0 += 16) {
            __m512 o[16];
            for (int32_t r = 0; r < ni; r++)
                o[r] = _mm512_setzero_ps();
            for (int32_t j = 0; j < len; j++) {
                const __m512 v = _mm512_loadu_ps(t->v + (int64_t)j * t->ld + c0);
                for (int32_t r = 0; r < ni; r++)
                    o[r] = _mm512_fmadd_ps(_mm512_set1_ps(pr[(int64_t)(i0 + r) * SHORT_ATTN_MAX + j]), v, o[r]);
            }
            for (int32_t r = 0; r < ni; r++)
                _mm512_storeu_ps(t->out + (int64_t)(i0 + r) * t->ld_out + c0, o[r]);
        }
    }
}

static void avx512_attention_tile(const ember_attn_tile *t) {
    if (t->head_dim % 16 != 0)
        ember_cpu_kernels_ref.attention_tile(t);
    else if (t->products == EMBER_ATTN_FP32 && t->len <= SHORT_ATTN_MAX)
        attention_short(t);
    else
        ember_attention_tiled(&KERNEL_TABLE, t);
}

const ember_cpu_kernels KERNEL_TABLE = {
#if defined(EMBER_AVX512_EMULATION)
    .name = "avx512 bf16 vnni (emulated)",
#else
    .name = "avx512 bf16 vnni",
#endif
    .mr = TILE_MR,
    .gemm_tile = f32_tile_dispatch,
    .gemm_tile_bf16 = bf16_tile_dispatch,
#if defined(EMBER_AVX512_EMULATION)
    /* the wide tiles are left out of the emulated table: over SIMDe their
     * dozens of instantiations take minutes to compile, and CPUs with
     * AVX-512 test them natively (test_driver_ops, test_gemm_tiles) */
    .gemm_tile_bf16_wide = NULL,
#else
    .gemm_tile_bf16_wide = bf16_wide_dispatch,
#endif
    .pack_a_bf16 = avx512_pack_a_bf16,
    .gemm_tile_q8 = q8_tile_dispatch,
    .quant_a_q8 = avx512_quant_a_q8,
    .layer_norm_row = avx512_layer_norm_row,
    .bias_act_row = ember_avx2_bias_act_row,
    .geglu_row = avx512_geglu_row,
    .attention_tile = avx512_attention_tile,
    .row_max = avx512_row_max,
    .row_exp = avx512_row_exp,
    .row_exp_bf16 = avx512_row_exp_bf16,
    .pack_kt_f32 = avx512_pack_kt_f32,
    .rope_head = avx512_rope_head,
#if defined(EMBER_AVX512_EMULATION)
    .gemm_wide = NULL,
    .n_gemm_wide = 0,
#else
    .gemm_wide = wide_tiles,
    .n_gemm_wide = (int)(sizeof wide_tiles / sizeof wide_tiles[0]),
#endif
    .peak_f32 = peak_f32,
    .peak_bf16 = peak_bf16,
    .peak_q8 = peak_q8,
#if !defined(EMBER_AVX512_EMULATION)
    .amx_begin = avx512_amx_begin,
    .amx_end = avx512_amx_end,
    .amx_bf16 = avx512_amx_bf16,
    .amx_finish = avx512_amx_finish,
    .q8_panels_bf16 = avx512_q8_panels_bf16,
    .peak_amx_bf16 = peak_amx_bf16,
#endif
    .pack_kt_bf16 = avx512_pack_kt_bf16,
    .pack_v_bf16 = avx512_pack_v_bf16,
};
