/*
 * dtype.h — element types of stored tensors (the safetensors set) and the
 * conversions the loader needs.
 */
#ifndef EMBER_CORE_DTYPE_H
#define EMBER_CORE_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum ember_dt {
    EMBER_DT_F32,
    EMBER_DT_F16,
    EMBER_DT_BF16,
    EMBER_DT_F64,
    EMBER_DT_I64,
    EMBER_DT_I32,
    EMBER_DT_I16,
    EMBER_DT_I8,
    EMBER_DT_U8,
    EMBER_DT_U16,
    EMBER_DT_U32,
    EMBER_DT_U64,
    EMBER_DT_BOOL,
    EMBER_DT_F8_E4M3,
    EMBER_DT_F8_E5M2,
    EMBER_DT_COUNT
} ember_dt;

/* Bytes per element. */
size_t ember_dt_size(ember_dt dt);
/* safetensors spelling ("F32", "BF16", ...). */
const char *ember_dt_name(ember_dt dt);
/* Parses a safetensors dtype name; returns 0 and sets *out, or -1. */
int ember_dt_parse(const char *name, ember_dt *out);

static inline float ember_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Round to nearest even; NaN stays NaN. */
static inline uint16_t ember_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* IEEE half to float, exact for every value (subnormals, inf, NaN). */
float ember_f16_to_f32(uint16_t h);
uint16_t ember_f32_to_f16(float f);

#endif
