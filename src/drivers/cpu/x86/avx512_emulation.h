/*
 * avx512_emulation.h — the AVX-512 intrinsics of avx512.c on a CPU without
 * AVX-512, for the tests only: SIMDe (Debian's libsimde-dev) provides the
 * portable implementations under the native names, and this header adds the
 * few that SIMDe 0.7.4 lacks, written plainly lane by lane.
 *
 * Why: the build machine has AVX2 only, yet the AVX-512 kernels (fp32,
 * AVX512_BF16 dot products, AVX512_VNNI int8 dot products) must be checked
 * against the scalar reference before they run on a CPU that has them. The
 * same source file is compiled twice: natively into the library, and over
 * this header into the test programs (as ember_cpu_kernels_avx512_emulated).
 */
#ifndef EMBER_DRIVERS_CPU_X86_AVX512_EMULATION_H
#define EMBER_DRIVERS_CPU_X86_AVX512_EMULATION_H

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <math.h>
#include <simde/x86/avx512.h>
#include <stdint.h>
#include <string.h>

#define EMBER_EMU_LANES(type, name, v) \
    type name[16];                     \
    memcpy(name, &(v), 64)

static inline __m512 ember_emu_maskz_loadu_ps(__mmask16 m, const void *p) {
    float out[16];
    const float *src = p;
    for (int i = 0; i < 16; i++)
        out[i] = (m >> i) & 1 ? src[i] : 0.0f; /* masked-off lanes are not read */
    return _mm512_loadu_ps(out);
}

static inline void ember_emu_mask_storeu_ps(void *p, __mmask16 m, __m512 v) {
    EMBER_EMU_LANES(float, x, v);
    float *dst = p;
    for (int i = 0; i < 16; i++)
        if ((m >> i) & 1)
            dst[i] = x[i];
}

static inline __m512i ember_emu_cvtps_epi32(__m512 v) {
    EMBER_EMU_LANES(float, x, v);
    int32_t out[16];
    for (int i = 0; i < 16; i++)
        out[i] = (int32_t)nearbyintf(x[i]); /* current rounding mode, as the instruction */
    return _mm512_loadu_si512(out);
}

static inline __m512 ember_emu_cvtepi32_ps(__m512i v) {
    EMBER_EMU_LANES(int32_t, x, v);
    float out[16];
    for (int i = 0; i < 16; i++)
        out[i] = (float)x[i];
    return _mm512_loadu_ps(out);
}

static inline __m128i ember_emu_cvtepi32_epi8(__m512i v) {
    EMBER_EMU_LANES(int32_t, x, v);
    int8_t out[16];
    for (int i = 0; i < 16; i++)
        out[i] = (int8_t)(uint8_t)((uint32_t)x[i] & 0xffu); /* truncation, as vpmovdb */
    return _mm_loadu_si128((const void *)out);
}

static inline __m256i ember_emu_cvtepi32_epi16(__m512i v) {
    EMBER_EMU_LANES(int32_t, x, v);
    int16_t out[16];
    for (int i = 0; i < 16; i++)
        out[i] = (int16_t)(uint16_t)((uint32_t)x[i] & 0xffffu); /* truncation, as vpmovdw */
    return _mm256_loadu_si256((const void *)out);
}

static inline float ember_emu_reduce_max_ps(__m512 v) {
    EMBER_EMU_LANES(float, x, v);
    float m = x[0];
    for (int i = 1; i < 16; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static inline __m512i ember_emu_srai_epi32(__m512i v, unsigned int n) {
    EMBER_EMU_LANES(int32_t, x, v);
    int32_t out[16];
    for (int i = 0; i < 16; i++) /* arithmetic: the sign fills in */
        out[i] = n > 31 ? (x[i] < 0 ? -1 : 0) : (int32_t)(x[i] >> n);
    return _mm512_loadu_si512(out);
}

static inline __m512 ember_emu_mask_i32gather_ps(__m512 src, __mmask16 m, __m512i idx, const void *base,
                                                 int scale) {
    EMBER_EMU_LANES(float, out, src);
    EMBER_EMU_LANES(int32_t, at, idx);
    for (int i = 0; i < 16; i++) /* masked-off lanes keep src and are not read */
        if ((m >> i) & 1)
            memcpy(&out[i], (const char *)base + (int64_t)at[i] * scale, sizeof(float));
    return _mm512_loadu_ps(out);
}

static inline __m512i ember_emu_i32gather_epi32(__m512i idx, const void *base, int scale) {
    EMBER_EMU_LANES(int32_t, at, idx);
    int32_t out[16];
    for (int i = 0; i < 16; i++)
        memcpy(&out[i], (const char *)base + (int64_t)at[i] * scale, sizeof(int32_t));
    return _mm512_loadu_si512(out);
}

static inline void ember_emu_mask_storeu_epi16(void *p, __mmask16 m, __m256i v) {
    uint16_t x[16];
    memcpy(x, &v, sizeof x);
    uint16_t *dst = p;
    for (int i = 0; i < 16; i++) /* masked-off lanes are not written */
        if ((m >> i) & 1)
            dst[i] = x[i];
}

static inline __m512 ember_emu_shuffle_f32x4(__m512 a, __m512 b, int imm) {
    EMBER_EMU_LANES(float, x, a);
    EMBER_EMU_LANES(float, y, b);
    float out[16]; /* 128-bit lanes 0-1 from a, 2-3 from b, two bits of imm each */
    for (int l = 0; l < 4; l++)
        memcpy(out + 4 * l, (l < 2 ? x : y) + 4 * ((imm >> (2 * l)) & 3), 4 * sizeof(float));
    return _mm512_loadu_ps(out);
}

#define _mm512_maskz_loadu_ps ember_emu_maskz_loadu_ps
#undef _mm512_shuffle_f32x4 /* a macro in GCC's header without optimization */
#define _mm512_shuffle_f32x4 ember_emu_shuffle_f32x4
#define _mm256_mask_storeu_epi16 ember_emu_mask_storeu_epi16
#undef _mm512_i32gather_epi32 /* clang's header makes it a macro */
#define _mm512_i32gather_epi32 ember_emu_i32gather_epi32
#undef _mm512_mask_i32gather_ps /* clang's header makes it a macro */
#define _mm512_mask_i32gather_ps ember_emu_mask_i32gather_ps
#define _mm512_srai_epi32 ember_emu_srai_epi32
#define _mm512_mask_storeu_ps ember_emu_mask_storeu_ps
#define _mm512_cvtps_epi32 ember_emu_cvtps_epi32
#define _mm512_cvtepi32_ps ember_emu_cvtepi32_ps
#define _mm512_cvtepi32_epi8 ember_emu_cvtepi32_epi8
#define _mm512_cvtepi32_epi16 ember_emu_cvtepi32_epi16
#define _mm512_reduce_max_ps ember_emu_reduce_max_ps

#endif
