/*
 * fpenv.h — flush-to-zero for the duration of a computation.
 *
 * Subnormal floats (below 1.2e-38) are up to ~100x slower through the FMA
 * units on x86. They arise in a forward pass (GELU tails, tiny attention
 * weights times values) and, measured on a bge-small-shaped model, made the
 * whole embedding 2.7x slower. Their values are far below any tolerance that
 * matters for embeddings, so Ember computes with FTZ/DAZ set: permanently in
 * its own worker threads, and on the caller's thread only during a call
 * (the previous mode is restored, so a host application is not affected).
 */
#ifndef EMBER_CORE_FPENV_H
#define EMBER_CORE_FPENV_H

#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
static inline uint32_t ember_fpenv_enter(void) {
    uint32_t old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
    return old;
}
static inline void ember_fpenv_leave(uint32_t old) { _mm_setcsr(old); }
#elif defined(__aarch64__)
static inline uint32_t ember_fpenv_enter(void) {
    uint64_t old;
    __asm__ volatile("mrs %0, fpcr" : "=r"(old));
    __asm__ volatile("msr fpcr, %0" ::"r"(old | (1ull << 24)));
    return (uint32_t)old;
}
static inline void ember_fpenv_leave(uint32_t old) {
    uint64_t v = old;
    __asm__ volatile("msr fpcr, %0" ::"r"(v));
}
#else
static inline uint32_t ember_fpenv_enter(void) { return 0; }
static inline void ember_fpenv_leave(uint32_t old) { (void)old; }
#endif

#endif
