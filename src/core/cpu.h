/*
 * cpu.h — CPU feature detection, done once, used to pick kernels.
 *
 * EMBER_CPU=scalar|avx2|avx512 in the environment caps the level used (a
 * debug switch: forces the portable reference kernels or a lower ISA;
 * avx512 leaves AMX out).
 */
#ifndef EMBER_CORE_CPU_H
#define EMBER_CORE_CPU_H

#include <stdbool.h>

typedef struct ember_cpu_caps {
    bool avx2, fma, f16c;
    bool avx512f, avx512bw, avx512vl, avx512dq, avx512_bf16, avx512_vnni, avx_vnni;
    /* AMX tiles with their bf16 / int8 dot products: the CPU has them, the
     * OS saves the tile state (XCR0) and granted this process its use
     * (Linux: arch_prctl(ARCH_REQ_XCOMP_PERM); refused = false). */
    bool amx_bf16, amx_int8;
    bool neon;
} ember_cpu_caps;

/* Detected features, capped by EMBER_CPU. Thread-safe, computed once. */
const ember_cpu_caps *ember_cpu_caps_get(void);

#endif
