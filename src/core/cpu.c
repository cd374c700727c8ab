/*
 * cpu.c — cpuid/xgetbv based detection (x86-64), NEON assumed on arm64.
 * An ISA counts only when the OS saves its registers (XCR0), which is why a
 * virtual machine can report AVX-512 in cpuid yet not allow it.
 */
#include "cpu.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

static ember_cpu_caps g_caps;
static char g_names[256];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* Linux hands out the 8 KB AMX tile state only on request (since 5.16): a
 * process that executes a tile instruction without this permission dies of
 * SIGILL. The permission covers every thread of the process. Elsewhere, or
 * when refused, no AMX. */
static bool amx_permitted(void) {
#if defined(__linux__) && defined(SYS_arch_prctl)
    const long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return false;
#endif
}
#endif

static void detect(void) {
    ember_cpu_caps c;
    memset(&c, 0, sizeof c);
#if defined(__x86_64__)
    unsigned a, b, cx, d;
    if (__get_cpuid(1, &a, &b, &cx, &d)) {
        bool osxsave = (cx >> 27) & 1;
        bool avx = (cx >> 28) & 1;
        uint64_t xcr0 = osxsave ? xgetbv0() : 0;
        bool ymm_ok = avx && (xcr0 & 0x6) == 0x6;
        bool zmm_ok = ymm_ok && (xcr0 & 0xe0) == 0xe0;
        c.fma = ymm_ok && ((cx >> 12) & 1);
        c.f16c = ymm_ok && ((cx >> 29) & 1);
        if (__get_cpuid_count(7, 0, &a, &b, &cx, &d)) {
            c.avx2 = ymm_ok && ((b >> 5) & 1);
            c.avx512f = zmm_ok && ((b >> 16) & 1);
            c.avx512dq = zmm_ok && ((b >> 17) & 1);
            c.avx512bw = zmm_ok && ((b >> 30) & 1);
            c.avx512vl = zmm_ok && ((b >> 31) & 1);
            c.avx512_vnni = zmm_ok && ((cx >> 11) & 1);
            /* AMX-BF16 (edx bit 22), AMX-TILE (24), AMX-INT8 (25); the OS
             * must save XTILECFG and XTILEDATA (XCR0 bits 17, 18) */
            bool tile = c.avx512f && ((d >> 24) & 1) && (xcr0 & 0x60000) == 0x60000;
            c.amx_bf16 = tile && ((d >> 22) & 1);
            c.amx_int8 = tile && ((d >> 25) & 1);
        }
        if (__get_cpuid_count(7, 1, &a, &b, &cx, &d)) {
            c.avx512_bf16 = zmm_ok && ((a >> 5) & 1);
            c.avx_vnni = ymm_ok && ((a >> 4) & 1);
        }
    }
#elif defined(__aarch64__)
    c.neon = true;
#endif
    const char *cap = getenv("EMBER_CPU");
    if (cap && strcmp(cap, "scalar") == 0) {
        memset(&c, 0, sizeof c);
    } else if (cap && strcmp(cap, "avx2") == 0) {
        c.avx512f = c.avx512bw = c.avx512vl = c.avx512dq = false;
        c.avx512_bf16 = c.avx512_vnni = false;
        c.amx_bf16 = c.amx_int8 = false;
    } else if (cap && strcmp(cap, "avx512") == 0) {
        c.amx_bf16 = c.amx_int8 = false;
    }
#if defined(__x86_64__)
    if ((c.amx_bf16 || c.amx_int8) && !amx_permitted())
        c.amx_bf16 = c.amx_int8 = false;
#endif
    g_caps = c;
    struct { bool on; const char *name; } list[] = {
        {c.avx2, "avx2"}, {c.fma, "fma"}, {c.f16c, "f16c"}, {c.avx_vnni, "avx-vnni"},
        {c.avx512f, "avx512f"}, {c.avx512bw, "avx512bw"}, {c.avx512vl, "avx512vl"},
        {c.avx512_bf16, "avx512-bf16"}, {c.avx512_vnni, "avx512-vnni"}, {c.amx_bf16, "amx-bf16"},
        {c.amx_int8, "amx-int8"}, {c.neon, "neon"},
    };
    size_t len = 0;
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
        if (!list[i].on)
            continue;
        int n = snprintf(g_names + len, sizeof g_names - len, "%s%s", len ? " " : "", list[i].name);
        if (n > 0 && (size_t)n < sizeof g_names - len)
            len += (size_t)n;
    }
    if (len == 0)
        snprintf(g_names, sizeof g_names, "none (portable C)");
}

const ember_cpu_caps *ember_cpu_caps_get(void) {
    pthread_once(&g_once, detect);
    return &g_caps;
}

const char *ember_cpu_features(void) {
    pthread_once(&g_once, detect);
    return g_names;
}
