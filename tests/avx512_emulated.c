/*
 * avx512_emulated.c — the AVX-512 kernel table compiled over SIMDe
 * (src/drivers/cpu/x86/avx512_emulation.h) as ember_cpu_kernels_avx512_emulated,
 * for tests on machines without AVX-512.
 */
#define EMBER_AVX512_EMULATION 1
#include "drivers/cpu/x86/avx512.c"
