/*
 * dtype.c — see dtype.h.
 */
#include "dtype.h"

#include <math.h>

static const struct {
    const char *name;
    size_t size;
} k_dtypes[EMBER_DT_COUNT] = {
    [EMBER_DT_F32] = {"F32", 4},    [EMBER_DT_F16] = {"F16", 2},
    [EMBER_DT_BF16] = {"BF16", 2},  [EMBER_DT_F64] = {"F64", 8},
    [EMBER_DT_I64] = {"I64", 8},    [EMBER_DT_I32] = {"I32", 4},
    [EMBER_DT_I16] = {"I16", 2},    [EMBER_DT_I8] = {"I8", 1},
    [EMBER_DT_U8] = {"U8", 1},      [EMBER_DT_U16] = {"U16", 2},
    [EMBER_DT_U32] = {"U32", 4},    [EMBER_DT_U64] = {"U64", 8},
    [EMBER_DT_BOOL] = {"BOOL", 1},  [EMBER_DT_F8_E4M3] = {"F8_E4M3", 1},
    [EMBER_DT_F8_E5M2] = {"F8_E5M2", 1},
};

size_t ember_dt_size(ember_dt dt) { return (unsigned)dt < EMBER_DT_COUNT ? k_dtypes[dt].size : 0; }

const char *ember_dt_name(ember_dt dt) {
    return (unsigned)dt < EMBER_DT_COUNT ? k_dtypes[dt].name : "?";
}

int ember_dt_parse(const char *name, ember_dt *out) {
    for (int i = 0; i < EMBER_DT_COUNT; i++) {
        if (strcmp(name, k_dtypes[i].name) == 0) {
            *out = (ember_dt)i;
            return 0;
        }
    }
    return -1;
}

float ember_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else {
            /* subnormal: value = man * 2^-24 */
            float f = (float)man * 0x1p-24f;
            memcpy(&u, &f, sizeof u);
            u |= sign;
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t ember_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    float a = fabsf(f);
    if (isnan(f))
        return (uint16_t)(sign | 0x7e00);
    if (a >= 65520.0f)
        return (uint16_t)(sign | 0x7c00);
    if (a < 0x1p-14f) /* subnormal or zero: round to a multiple of 2^-24 */
        return (uint16_t)(sign | (uint16_t)lrintf(a * 0x1p24f));
    memcpy(&u, &a, sizeof u);
    uint32_t exp = (u >> 23) - 112;
    uint32_t man = u & 0x7fffff;
    uint32_t h = (exp << 10) | (man >> 13);
    uint32_t rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}
