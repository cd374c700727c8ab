/*
 * gemm.c — see gemm.h.
 *
 * y = act(x W^T + b) + residual with W the [N, K] weight as stored in the
 * safetensors file (zero-copy). Blocking, in the spirit of Goto/BLIS:
 *
 *   tasks   = bands of output columns (all rows; rows are split too only
 *             when columns cannot feed every thread); each task owns its tile.
 *   per task: for each K block (KC deep): pack the chunk's W^T panels
 *             (NR = 16 columns each, k-major) into the thread's scratch —
 *             unless the weight was packed once at load — then for each
 *             6-row micro-block of x: run the micro-kernel over every panel.
 *
 * The 6 x KC block of x stays in L1 while the packed panels (NC x KC floats)
 * come from L2. The epilogue (bias, activation, residual) runs inside the
 * micro-kernel on the last K block, while the tile is still in registers.
 *
 * Weight formats: fp32 panels (packed at load, or packed per call from the
 * mapping), bf16 pair panels (two consecutive k of a column in one 32-bit
 * lane, the operand layout of AVX512_BF16's vdpbf16ps), and int8 panels with
 * one fp32 scale per column and block of 32 k, four consecutive k of a column
 * together (the operand layout of AVX512_VNNI's vpdpbusd).
 *
 * Where the kernel table has a dot product for the format (gemm_tile_bf16,
 * gemm_tile_q8), the GEMM converts x once per call, before the bands start
 * (to bf16 rows, or to uint8 rows with a scale per row and 32 values and the
 * row's outliers kept in fp32: quant_a_q8), and every band and thread reads
 * that copy; the tiles then run on the packed weights directly. Converting
 * per band instead redid it N / nc times (4x for N = 384 on two threads,
 * 8x for 1536), a quarter of the int8 time. Where the table has AMX, bf16
 * and int8 weights run on AMX-BF16 tiles (amx_task) with x in bf16; int8
 * weights are dequantized per band into bf16 panels for them. Elsewhere
 * (AVX2, NEON, scalar) the weights are widened per call, once per band, into
 * the fp32 scratch panels that every row block then reuses (widening inside
 * the micro-kernel redid it for every 6 rows: 11% slower measured for bf16);
 * there int8 is weight-only: without VNNI an int8 dot product costs more
 * instructions than an fp32 FMA (vpmaddubsw + vpmaddwd + add, plus sign
 * handling, per 32 products against 4 FMAs), so quantizing activations would
 * not pay; the weights take a quarter of the memory and the arithmetic stays
 * fp32.
 */
#include "gemm.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#define NR EMBER_GEMM_NR

/* Pairs per bf16 panel: K padded with zeros to a multiple of 32, so that an
 * AMX tile (16 pairs) never reads past a panel. */
static inline int64_t bf16_kp(int64_t K) { return (K + 31) / 32 * 16; }
/* AMX: rows per block (two 16-row tiles); the thread's scratch starts with
 * two block buffers (one block's epilogue is deferred while the next one
 * runs, see amx_task). */
#define AMX_MR 32
#define AMX_CBUF_FLOATS (2 * AMX_MR * AMX_MR)

void ember_gemm_init(ember_gemm *g, int compute_dtype) {
    memset(g, 0, sizeof *g);
    g->compute_dtype = compute_dtype;
    g->prepack = 1;
    const char *bw = getenv("EMBER_GEMM_BF16_WIDE");
    g->no_bf16_wide = bw && strcmp(bw, "0") == 0;
    /* fp32 weights packed at load are read in place, not through the
     * thread's scratch, so their K blocks may be longer than KC: as long as
     * a band's panels (NC_MAX columns) fill at most half of L2, up to 1024.
     * Fewer blocks, fewer passes of C through the tiles: K blocks of 768
     * instead of 384 took B short f32's linear from 3.23 to 3.08 s (2-vCPU
     * Sapphire Rapids, 2 MB L2). Where the L2 size is unknown, KC. */
    long l2 = -1;
#if defined(_SC_LEVEL2_CACHE_SIZE)
    l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    int64_t kc = l2 > 0 ? (int64_t)l2 / 2 / (EMBER_GEMM_NC_MAX * (int64_t)sizeof(float)) / 32 * 32 : 0;
    g->kc_packed = EMBER_MAX((int64_t)EMBER_GEMM_KC, EMBER_MIN(kc, (int64_t)1024));
}

const char *ember_gemm_name(const ember_gemm *g, const ember_cpu_kernels *k) {
    const int amx = g->amx && k->amx_bf16;
    if (g->compute_dtype == EMBER_DTYPE_BF16)
        return amx ? "ember GEMM (bf16 weights and activations, AMX-BF16 tiles, fp32 accumulation)"
               : k->gemm_tile_bf16 ? "ember GEMM (bf16 weights and activations, AVX512-BF16 dot products, fp32 accumulation)"
                                   : "ember GEMM (bf16 weights packed at load, widened per call, fp32 arithmetic)";
    if (g->compute_dtype == EMBER_DTYPE_INT8)
        return amx ? "ember GEMM (int8 weights, 32-value blocks, dequantized per band to bf16; AMX-BF16 tiles, bf16 activations)"
               : k->gemm_tile_q8 ? "ember GEMM (int8 weights and activations, 32-value blocks, outliers in fp32, VNNI dot products)"
                                 : "ember GEMM (int8 weights, 32-value blocks, dequantized per call, fp32 arithmetic)";
    return g->prepack ? "ember GEMM (weights packed at load)" : "ember GEMM (zero-copy weights, packed per call)";
}

/* Panels of a [N, K] row-major matrix: dst[(p * kc + k) * NR + j] =
 * W[c0 + p*NR + j][k0 + k], zero beyond N. */
static void pack_panels(const float *w, int64_t K, int64_t N, int64_t c0, int64_t n_panels,
                        int64_t k0, int64_t kc, float *dst) {
    for (int64_t p = 0; p < n_panels; p++) {
        float *panel = dst + p * kc * NR;
        for (int j = 0; j < NR; j++) {
            int64_t col = c0 + p * NR + j;
            if (col >= N) {
                for (int64_t k = 0; k < kc; k++)
                    panel[k * NR + j] = 0.0f;
                continue;
            }
            const float *src = w + col * K + k0;
            for (int64_t k = 0; k < kc; k++)
                panel[k * NR + j] = src[k];
        }
    }
}

/* Packing a whole matrix at load, on up to PACK_THREADS threads (one per
 * CPU) when it is large: each thread fills a range of panels, so the
 * kernel's zeroing of their fresh pages on first touch, most of a load's
 * time, runs in parallel too. A thread that cannot be started packs on the
 * caller's. */
#define PACK_THREADS 8
#define PACK_MIN_BYTES ((size_t)1 << 20)

typedef struct pack_part {
    const float *w;
    int64_t K, N, p0, p1;
    float *dst;
    bool check;  /* scan the part's source rows for NaN/Inf first */
    size_t bad;  /* out: index of the first in w, or SIZE_MAX        */
} pack_part;

static void *pack_part_run(void *arg) {
    pack_part *p = arg;
    p->bad = SIZE_MAX;
    if (p->check) { /* rows p0 NR .. p1 NR of W are contiguous */
        const int64_t r0 = p->p0 * NR, r1 = p->p1 * NR < p->N ? p->p1 * NR : p->N;
        if (r1 > r0) {
            const size_t n = (size_t)((r1 - r0) * p->K);
            const size_t i = ember_first_nonfinite(p->w + r0 * p->K, n);
            if (i < n)
                p->bad = (size_t)(r0 * p->K) + i;
        }
    }
    pack_panels(p->w, p->K, p->N, p->p0 * NR, p->p1 - p->p0, 0, p->K, p->dst + p->p0 * p->K * NR);
    return NULL;
}

/* Returns the index of the first NaN/Inf of w when `check`, else SIZE_MAX. */
static size_t pack_panels_all(const float *w, int64_t K, int64_t N, int64_t n_panels, float *dst,
                              bool check) {
    int T = ember_cpu_count();
    if (T > PACK_THREADS)
        T = PACK_THREADS;
    if (T > n_panels)
        T = (int)n_panels;
    if (T < 1 || sizeof(float) * (size_t)(n_panels * K * NR) < PACK_MIN_BYTES)
        T = 1;
    pack_part parts[PACK_THREADS];
    pthread_t threads[PACK_THREADS];
    bool started[PACK_THREADS] = {false};
    for (int i = 0; i < T; i++)
        parts[i] = (pack_part){w, K, N, n_panels * i / T, n_panels * (i + 1) / T, dst, check, SIZE_MAX};
    for (int i = 1; i < T; i++)
        started[i] = pthread_create(&threads[i], NULL, pack_part_run, &parts[i]) == 0;
    pack_part_run(&parts[0]);
    size_t bad = parts[0].bad;
    for (int i = 1; i < T; i++) {
        if (started[i])
            pthread_join(threads[i], NULL);
        else
            pack_part_run(&parts[i]);
        if (parts[i].bad < bad)
            bad = parts[i].bad;
    }
    return bad;
}

/* bf16 pair panels: dst[(p * KP + kp) * 16 + j] = bf16(W[c][2kp]) |
 * bf16(W[c][2kp + 1]) << 16 for column c = p * 16 + j, KP = bf16_kp(K);
 * zero beyond N and K. */
static void pack_panels_bf16(const float *w, int64_t K, int64_t N, uint32_t *dst) {
    const int64_t n_panels = (N + NR - 1) / NR, kp_n = bf16_kp(K);
    for (int64_t p = 0; p < n_panels; p++)
        for (int64_t kp = 0; kp < kp_n; kp++) {
            uint32_t *lanes = dst + (p * kp_n + kp) * NR;
            for (int j = 0; j < NR; j++) {
                int64_t c = p * NR + j, k = 2 * kp;
                uint32_t lo = c < N && k < K ? ember_f32_to_bf16(w[c * K + k]) : 0;
                uint32_t hi = c < N && k + 1 < K ? ember_f32_to_bf16(w[c * K + k + 1]) : 0;
                lanes[j] = lo | (hi << 16);
            }
        }
}

/* Byte offset of W[p * 16 + j][k] in an int8 panel set with KQ (K rounded up
 * to 32) values per column: [panel][k / 4][16][k % 4]. */
static inline int64_t q8_index(int64_t p, int64_t KQ, int64_t k, int j) {
    return p * KQ * NR + (k / 4) * (4 * NR) + j * 4 + (k % 4);
}

/* int8 panels: q = round(W[c][k] / s), with s = max |W[c][block]| / 127
 * per column and block of 32 k (scales[(p * n_blocks + b) * 16 + j]), and
 * -128 x the sum of each block's q (offs: the start of the dot products
 * with the uint8 activations). K is padded with zeros to EMBER_Q8_KPAD. */
static ember_status pack_panels_int8(const float *w, int64_t K, int64_t N, ember_q8 *q8,
                                    const char *name) {
    const int64_t n_panels = (N + NR - 1) / NR, KQ = ember_q8_kpad(K), n_blocks = KQ / EMBER_Q8_BLOCK;
    q8->q = ember_aligned_alloc((size_t)(n_panels * KQ * NR), name);
    q8->scales = ember_aligned_alloc(sizeof(float) * (size_t)(n_panels * n_blocks * NR), name);
    q8->offs = ember_aligned_alloc(sizeof(int32_t) * (size_t)(n_panels * n_blocks * NR), name);
    if (!q8->q || !q8->scales || !q8->offs)
        return EMBER_E_NOMEM;
    for (int64_t p = 0; p < n_panels; p++)
        for (int j = 0; j < NR; j++) {
            int64_t col = p * NR + j;
            for (int64_t b = 0; b < n_blocks; b++) {
                int64_t k0 = b * EMBER_Q8_BLOCK, k1 = EMBER_MIN(K, k0 + EMBER_Q8_BLOCK);
                float amax = 0.0f;
                for (int64_t k = k0; col < N && k < k1; k++)
                    amax = EMBER_MAX(amax, w[col * K + k] < 0 ? -w[col * K + k] : w[col * K + k]);
                float s = amax > 0.0f ? amax / 127.0f : 1.0f;
                int32_t sum = 0;
                for (int64_t k = k0; k < k0 + EMBER_Q8_BLOCK; k++) {
                    long r = col < N && k < k1 ? lrintf(w[col * K + k] / s) : 0;
                    r = r > 127 ? 127 : r < -127 ? -127 : r;
                    q8->q[q8_index(p, KQ, k, j)] = (int8_t)r;
                    sum += (int32_t)r;
                }
                q8->scales[(p * n_blocks + b) * NR + j] = s;
                q8->offs[(p * n_blocks + b) * NR + j] = -128 * sum;
            }
        }
    return EMBER_OK;
}

/* fp32 panels for columns [c0, c0 + 16 n_panels) and k in [k0, k0 + kc) from
 * bf16 pair panels (k0 even). */
static void widen_panels_bf16(const uint32_t *packed, int64_t K, int64_t c0, int64_t n_panels,
                              int64_t k0, int64_t kc, float *dst) {
    const int64_t kp_n = bf16_kp(K);
    for (int64_t p = 0; p < n_panels; p++) {
        const uint32_t *src = packed + ((c0 / NR + p) * kp_n + k0 / 2) * NR;
        float *out = dst + p * kc * NR;
        for (int64_t k = 0; k < kc; k++)
            for (int j = 0; j < NR; j++) {
                uint32_t lane = src[(k / 2) * NR + j];
                uint32_t bits = k % 2 ? lane & 0xffff0000u : lane << 16;
                memcpy(&out[k * NR + j], &bits, sizeof bits);
            }
    }
}

/* fp32 panels for columns [c0, c0 + 16 n_panels) and k in [k0, k0 + kc) from
 * int8 panels (k0 is a multiple of the quantization block). */
static void dequant_panels(const ember_q8 *q8, int64_t K, int64_t c0, int64_t n_panels, int64_t k0,
                           int64_t kc, float *dst) {
    const int64_t KQ = ember_q8_kpad(K), n_blocks = KQ / EMBER_Q8_BLOCK;
    for (int64_t p = 0; p < n_panels; p++) {
        int64_t gp = c0 / NR + p;
        float *out = dst + p * kc * NR;
        for (int64_t k = 0; k < kc; k += 4) {
            /* 4 k of 16 columns: one 32-bit word per column, byte kk = k + kk
             * (shifts over contiguous words, so the loop vectorizes) */
            uint32_t words[NR];
            memcpy(words, q8->q + q8_index(gp, KQ, k0 + k, 0), sizeof words);
            const float *s = q8->scales + (gp * n_blocks + (k0 + k) / EMBER_Q8_BLOCK) * NR;
            for (int kk = 0; kk < 4 && k + kk < kc; kk++)
                for (int j = 0; j < NR; j++)
                    out[(k + kk) * NR + j] = (float)(int8_t)(uint8_t)(words[j] >> (8 * kk)) * s[j];
        }
    }
}

static ember_status gemm_prepare(const ember_gemm *g, ember_weight *w, size_t *bad);

ember_status ember_gemm_prepare(const ember_gemm *g, ember_weight *w) {
    return gemm_prepare(g, w, NULL);
}

ember_status ember_gemm_prepare_checked(const ember_gemm *g, ember_weight *w, size_t *bad) {
    const size_t n = (size_t)(w->rows * w->cols);
    *bad = n;
    if (g->compute_dtype == EMBER_DTYPE_INT8 || g->compute_dtype == EMBER_DTYPE_BF16 ||
        !g->prepack) { /* packs that do not go through pack_panels_all: scan here */
        *bad = ember_first_nonfinite(w->data, n);
        return gemm_prepare(g, w, NULL);
    }
    return gemm_prepare(g, w, bad);
}

/* bad: NULL, or receives the first NaN/Inf found while packing fp32 panels
 * (rows x cols when none) */
static ember_status gemm_prepare(const ember_gemm *g, ember_weight *w, size_t *bad) {
    if (g->compute_dtype == EMBER_DTYPE_INT8) {
        ember_q8 *q8 = ember_calloc(1, sizeof *q8, w->name);
        if (!q8)
            return EMBER_E_NOMEM;
        ember_status st = pack_panels_int8(w->data, w->cols, w->rows, q8, w->name);
        if (st != EMBER_OK) {
            ember_aligned_free(q8->q);
            ember_aligned_free(q8->scales);
            ember_aligned_free(q8->offs);
            free(q8);
            return st;
        }
        w->packed = q8;
        w->dtype = EMBER_DT_I8;
        return EMBER_OK;
    }
    if (g->compute_dtype == EMBER_DTYPE_BF16) {
        int64_t n_panels = (w->rows + NR - 1) / NR;
        uint32_t *packed = ember_aligned_alloc(sizeof(uint32_t) * (size_t)(n_panels * bf16_kp(w->cols) * NR), w->name);
        if (!packed)
            return EMBER_E_NOMEM;
        pack_panels_bf16(w->data, w->cols, w->rows, packed);
        w->packed = packed;
        w->dtype = EMBER_DT_BF16;
        return EMBER_OK;
    }
    if (!g->prepack)
        return EMBER_OK;
    int64_t n_panels = (w->rows + NR - 1) / NR;
    float *packed = ember_aligned_alloc(sizeof(float) * (size_t)(n_panels * w->cols * NR), w->name);
    if (!packed)
        return EMBER_E_NOMEM;
    const size_t first_bad = pack_panels_all(w->data, w->cols, w->rows, n_panels, packed, bad != NULL);
    if (bad)
        *bad = first_bad == SIZE_MAX ? (size_t)(w->rows * w->cols) : first_bad;
    w->packed = packed;
    return EMBER_OK;
}

void ember_gemm_release(ember_weight *w) {
    if (w->packed && w->dtype == EMBER_DT_I8) {
        ember_q8 *q8 = w->packed;
        ember_aligned_free(q8->q);
        ember_aligned_free(q8->scales);
        ember_aligned_free(q8->offs);
        free(q8);
    } else {
        ember_aligned_free(w->packed);
    }
    w->packed = NULL;
}

/* ---- the fp32 tile, chosen by measurement ---- */

const char *ember_gemm_tile_name(const ember_gemm *g, const ember_cpu_kernels *k) {
    static const char *narrow[] = {"1x16", "2x16", "3x16", "4x16", "5x16", "6x16", "7x16", "8x16",
                                   "9x16", "10x16", "11x16", "12x16", "13x16", "14x16", "15x16", "16x16"};
    if (g->wide)
        return g->wide->name;
    return k->mr >= 1 && k->mr <= 16 ? narrow[k->mr - 1] : "?";
}

static void cpu_model(char *out, size_t n) {
    snprintf(out, n, "unknown");
#if defined(__x86_64__) || defined(__i386__)
    unsigned int r[12];
    if ((unsigned int)__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
        for (unsigned int i = 0; i < 3; i++)
            __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        char brand[49];
        memcpy(brand, r, 48);
        brand[48] = 0;
        snprintf(out, n, "%s", brand);
    }
#endif
}

/* Seconds per flop of one tile over an L2-resident block: 24 rows of A
 * (K = 384) against 12 panels (192 columns), the shape of a BERT-base
 * band; the best of `reps` passes. wide NULL = the table's gemm_tile. */
static double time_tile(const ember_cpu_kernels *k, const ember_gemm_variant *wide, const float *a,
                        const float *b, float *c, int reps) {
    const int64_t M = 24, K = 384, P = 12;
    const int mr = wide ? wide->mr : k->mr, np = wide ? wide->panels : 1;
    double best = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = ember_now();
        for (int64_t r = 0; r < M; r += mr)
            for (int64_t p = 0; p + np <= P; p += np) {
                ember_gemm_tile t = {.mr = (int)EMBER_MIN((int64_t)mr, M - r), .nr = np * NR, .kc = K,
                                     .a = a + r * K, .lda = K, .bp = b + p * K * NR, .ldb = NR,
                                     .ldp = K * NR, .c = c + r * P * NR + p * NR, .ldc = P * NR,
                                     .last = 1};
                (wide ? wide->tile : k->gemm_tile)(&t);
            }
        double dt = ember_now() - t0;
        best = dt < best ? dt : best;
    }
    return best / (2.0 * (double)M * (double)(P * NR) * (double)K);
}

/* Seconds per flop of the AMX-BF16 block (amx 1) or of the AVX512_BF16
 * tile (amx 0) over the block of time_tile, in bf16: 24 rows (32 for AMX,
 * whose tiles take 16) against 12 pair panels, K = 384. */
static double time_bf16(const ember_cpu_kernels *k, int amx, const uint16_t *a, const uint32_t *b,
                        float *c, float *scratch, int reps) {
    const int64_t M = amx ? 32 : 24, K = 384, P = 12, KP = K / 2;
    double best = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = ember_now();
        if (amx)
            k->amx_begin();
        for (int64_t r = 0; r < M; r += amx ? 32 : k->mr)
            for (int64_t p = 0; p < P; p += 2) {
                ember_gemm_tile t = {.mr = (int)EMBER_MIN((int64_t)(amx ? 32 : k->mr), M - r), .nr = 2 * NR,
                                     .kc = K, .aq = a + r * K, .lda = K, .bq = b + p * KP * NR,
                                     .ldp = KP * NR, .c = c + r * P * NR + p * NR, .ldc = P * NR,
                                     .last = 1, .scratch = scratch};
                if (amx)
                    k->amx_bf16(&t);
                else
                    (k->gemm_tile_bf16_wide ? k->gemm_tile_bf16_wide : k->gemm_tile_bf16)(&t);
            }
        if (amx)
            k->amx_end();
        double dt = ember_now() - t0;
        best = dt < best ? dt : best;
    }
    return best / (2.0 * (double)M * (double)(P * NR) * (double)K);
}

/* Whether AMX-BF16 beats the AVX512_BF16 tile on this machine. */
static int choose_amx(const ember_cpu_kernels *k) {
    if (!k->amx_bf16 || !k->amx_begin)
        return 0;
    if (!k->gemm_tile_bf16)
        return 1;
    const int64_t M = 32, K = 384, P = 12;
    uint16_t *a = ember_aligned_alloc(sizeof(uint16_t) * (size_t)(M * K), "gemm tile choice");
    uint32_t *b = ember_aligned_alloc(sizeof(uint32_t) * (size_t)(P * NR * K / 2), "gemm tile choice");
    float *c = ember_aligned_alloc(sizeof(float) * (size_t)(M * P * NR + 32 * 32), "gemm tile choice");
    int amx = 0;
    if (a && b && c) {
        for (int64_t i = 0; i < M * K; i++)
            a[i] = ember_f32_to_bf16((float)(i % 7) * 0.125f);
        for (int64_t i = 0; i < P * NR * K / 2; i++)
            b[i] = 0x3e803e80u + (uint32_t)(i % 5);
        double best[2] = {1e30, 1e30};
        for (int round = 0; round < 4; round++)
            for (int v = 0; v < 2; v++) {
                double spf = time_bf16(k, v, a, b, c, c + M * P * NR, 4);
                best[v] = spf < best[v] ? spf : best[v];
            }
        amx = best[1] < best[0] / 1.03;
        ember_log(EMBER_LOG_DEBUG, "gemm: bf16 on %s (AMX %.1f GFLOP/s per thread, AVX512_BF16 %.1f)",
                  amx ? "AMX" : "AVX512_BF16", 1e-9 / best[1], 1e-9 / best[0]);
    }
    ember_aligned_free(a);
    ember_aligned_free(b);
    ember_aligned_free(c);
    return amx;
}

static pthread_mutex_t g_choice_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const ember_cpu_kernels *k;
    char model[64];
    int choice; /* -1 = gemm_tile, else the index in gemm_wide */
    int amx;
} g_choices[8];
static int g_n_choices;

void ember_gemm_choose(ember_gemm *g, const ember_cpu_kernels *k) {
    g->wide = NULL;
    g->amx = 0;
    /* forced choices: fp32 tile by name, AMX on or off */
    int force_tile = 0, force_amx = -1;
    const char *force = getenv("EMBER_GEMM_TILE");
    if (force && *force) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", force);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (strcmp(tok, "amx") == 0) {
                force_amx = 1;
                continue;
            }
            if (strcmp(tok, "noamx") == 0) {
                force_amx = 0;
                continue;
            }
            force_tile = 1; /* any other name: the table's own tile unless it names a wide one */
            for (int i = 0; i < k->n_gemm_wide; i++)
                if (k->gemm_wide && strcmp(tok, k->gemm_wide[i].name) == 0 && k->gemm_wide[i].mr <= k->mr)
                    g->wide = &k->gemm_wide[i];
        }
    }
    const int has_amx = k->amx_bf16 && k->amx_begin;
    if (force_amx >= 0)
        g->amx = force_amx && has_amx;
    if ((force_tile || !k->gemm_wide || k->n_gemm_wide <= 0) && (force_amx >= 0 || !has_amx))
        return;
    char model[64];
    cpu_model(model, sizeof model);
    pthread_mutex_lock(&g_choice_lock);
    for (int i = 0; i < g_n_choices; i++)
        if (g_choices[i].k == k && strcmp(g_choices[i].model, model) == 0) {
            if (!force_tile)
                g->wide = g_choices[i].choice >= 0 ? &k->gemm_wide[g_choices[i].choice] : NULL;
            if (force_amx < 0)
                g->amx = g_choices[i].amx;
            pthread_mutex_unlock(&g_choice_lock);
            return;
        }
    int choice = -1;
    const int64_t K = 384, P = 12, M = 24;
    float *a = ember_aligned_alloc(sizeof(float) * (size_t)(M * K), "gemm tile choice");
    float *b = ember_aligned_alloc(sizeof(float) * (size_t)(P * NR * K), "gemm tile choice");
    float *c = ember_aligned_alloc(sizeof(float) * (size_t)(M * P * NR), "gemm tile choice");
    if (a && b && c && k->gemm_wide && k->n_gemm_wide > 0) {
        for (int64_t i = 0; i < M * K; i++)
            a[i] = (float)(i % 7) * 0.125f;
        for (int64_t i = 0; i < P * NR * K; i++)
            b[i] = (float)(i % 5) * 0.25f;
        /* rounds alternate between the candidates, so a burst of load from
         * other processes hits them alike; each keeps its best pass */
        double best[9];
        const int n = 1 + (k->n_gemm_wide < 8 ? k->n_gemm_wide : 8);
        for (int v = 0; v < n; v++)
            best[v] = 1e30;
        for (int round = 0; round < 6; round++)
            for (int v = 0; v < n; v++) {
                const ember_gemm_variant *w = v ? &k->gemm_wide[v - 1] : NULL;
                if (w && w->mr > k->mr)
                    continue;
                double spf = time_tile(k, w, a, b, c, 4);
                best[v] = spf < best[v] ? spf : best[v];
            }
        /* a wide tile must win by 3%, so that noise keeps the plain one */
        double pick = best[0] / 1.03;
        for (int v = 1; v < n; v++)
            if (best[v] < pick) {
                pick = best[v];
                choice = v - 1;
            }
        ember_log(EMBER_LOG_DEBUG, "gemm: fp32 tile %s on %s (%.1f GFLOP/s per thread; %s %.1f)",
                  choice >= 0 ? k->gemm_wide[choice].name : "table's own", model,
                  1e-9 / (choice >= 0 ? best[choice + 1] : best[0]), "narrow", 1e-9 / best[0]);
    }
    ember_aligned_free(a);
    ember_aligned_free(b);
    ember_aligned_free(c);
    const int amx = choose_amx(k);
    if (g_n_choices < (int)(sizeof g_choices / sizeof g_choices[0])) {
        g_choices[g_n_choices].k = k;
        snprintf(g_choices[g_n_choices].model, sizeof g_choices[0].model, "%s", model);
        g_choices[g_n_choices].choice = choice;
        g_choices[g_n_choices].amx = amx;
        g_n_choices++;
    }
    pthread_mutex_unlock(&g_choice_lock);
    if (!force_tile)
        g->wide = choice >= 0 ? &k->gemm_wide[choice] : NULL;
    if (force_amx < 0)
        g->amx = amx;
}

/* Packed panels of a band (NC_MAX x KC floats); in the bf16 dot-product
 * path, the converted rows of x (at most MR_MAX x KC halves) instead. */
size_t ember_gemm_scratch_floats(void) {
    _Static_assert(EMBER_GEMM_MR_MAX * EMBER_GEMM_KC * 2 <= EMBER_GEMM_NC_MAX * EMBER_GEMM_KC * 4,
                   "the row conversions fit in the panel scratch");
    return (size_t)EMBER_GEMM_NC_MAX * EMBER_GEMM_KC;
}

void ember_gemm_ws_release(ember_gemm_ws *ws) {
    ember_aligned_free(ws->act);
    ws->act = NULL;
    ws->act_bytes = 0;
}

/* The activations of one int8 call, quantized once (quant_a_q8) and read by
 * every band and thread: rows of KQ bytes, their block scales, outliers. */
typedef struct {
    uint8_t *q;
    int64_t ldq;     /* KQ: K padded to EMBER_Q8_KPAD                     */
    float *scales;
    int64_t lds;     /* KQ / 32                                           */
    uint8_t *o_n;
    int32_t *o_idx;
    float *o_val;
} q8_act;

/* Carves q8_act for M rows of K out of ws->act, grown when too small. */
static ember_status q8_act_reserve(ember_gemm_ws *ws, int64_t M, int64_t K, q8_act *qa) {
    const int64_t KQ = ember_q8_kpad(K), nb = KQ / EMBER_Q8_BLOCK;
    const size_t q_bytes = (size_t)(M * KQ), s_bytes = sizeof(float) * (size_t)(M * nb);
    const size_t oi_bytes = sizeof(int32_t) * (size_t)(M * EMBER_Q8_OUTLIERS);
    const size_t ov_bytes = sizeof(float) * (size_t)(M * EMBER_Q8_OUTLIERS);
    /* each part on a 64-byte boundary */
    const size_t a = 64, q_end = (q_bytes + a - 1) / a * a, s_end = q_end + (s_bytes + a - 1) / a * a;
    const size_t oi_end = s_end + (oi_bytes + a - 1) / a * a, ov_end = oi_end + (ov_bytes + a - 1) / a * a;
    const size_t need = ov_end + (size_t)M;
    if (need > ws->act_bytes) {
        ember_aligned_free(ws->act);
        ws->act_bytes = 0;
        /* room for growth, so that a pass of slowly growing batches does not
         * reallocate on every call */
        size_t want = need + need / 4;
        ws->act = ember_aligned_alloc(want, "int8 activations");
        if (!ws->act)
            return EMBER_E_NOMEM;
        ws->act_bytes = want;
    }
    char *base = ws->act;
    qa->q = (uint8_t *)base;
    qa->ldq = KQ;
    qa->scales = (float *)(base + q_end);
    qa->lds = nb;
    qa->o_idx = (int32_t *)(base + s_end);
    qa->o_val = (float *)(base + oi_end);
    qa->o_n = (uint8_t *)(base + ov_end);
    return EMBER_OK;
}

typedef struct {
    const ember_cpu_kernels *k;
    const ember_gemm_args *a;
    const q8_act *qa;
} q8_quant_job;

/* The activations of one bf16 call (AVX512_BF16 tiles, AMX), converted
 * once: rows of KB = K rounded up to 32 (zeros after K), and zero rows up to
 * a multiple of AMX_MR (AMX loads whole 16-row tiles). */
typedef struct {
    uint16_t *a;
    int64_t lda; /* KB */
    int64_t rows;
} bf16_act;

static ember_status bf16_act_reserve(ember_gemm_ws *ws, int64_t M, int64_t K, bf16_act *ba) {
    ba->lda = (K + 31) / 32 * 32;
    ba->rows = (M + AMX_MR - 1) / AMX_MR * AMX_MR;
    const size_t need = sizeof(uint16_t) * (size_t)(ba->rows * ba->lda);
    if (need > ws->act_bytes) {
        ember_aligned_free(ws->act);
        ws->act_bytes = 0;
        size_t want = need + need / 4;
        ws->act = ember_aligned_alloc(want, "bf16 activations");
        if (!ws->act)
            return EMBER_E_NOMEM;
        ws->act_bytes = want;
    }
    ba->a = ws->act;
    return EMBER_OK;
}

typedef struct {
    const ember_cpu_kernels *k;
    const ember_gemm_args *a;
    const bf16_act *ba;
} bf16_conv_job;

static void bf16_conv_task(void *p, int64_t task, int thread) {
    (void)thread;
    const bf16_conv_job *j = p;
    const ember_gemm_args *a = j->a;
    const bf16_act *ba = j->ba;
    const int64_t K = a->w->cols, r0 = task * AMX_MR, r1 = EMBER_MIN(ba->rows, r0 + AMX_MR);
    void (*pack)(const float *, int64_t, int, int64_t, uint16_t *, int64_t) =
        j->k->pack_a_bf16 ? j->k->pack_a_bf16 : ember_ref_pack_a_bf16;
    const int64_t real = EMBER_MAX((int64_t)0, EMBER_MIN(a->rows, r1) - r0);
    if (real > 0)
        pack(a->x + r0 * a->ldx, a->ldx, (int)real, K, ba->a + r0 * ba->lda, ba->lda);
    const int64_t done = (K + 1) / 2 * 2; /* pack_a_bf16 writes K values, then a zero if K is odd */
    for (int64_t r = r0; r < r1; r++) {
        uint16_t *row = ba->a + r * ba->lda;
        if (r < a->rows)
            memset(row + done, 0, sizeof(uint16_t) * (size_t)(ba->lda - done));
        else
            memset(row, 0, sizeof(uint16_t) * (size_t)ba->lda);
    }
}

#define Q8_QUANT_ROWS 16

static void q8_quant_task(void *p, int64_t task, int thread) {
    (void)thread;
    const q8_quant_job *j = p;
    const ember_gemm_args *a = j->a;
    const q8_act *qa = j->qa;
    const int64_t r0 = task * Q8_QUANT_ROWS, r1 = EMBER_MIN(a->rows, r0 + Q8_QUANT_ROWS);
    j->k->quant_a_q8(a->x + r0 * a->ldx, a->ldx, (int)(r1 - r0), a->w->cols, qa->q + r0 * qa->ldq, qa->ldq,
                     qa->scales + r0 * qa->lds, qa->lds, qa->o_n + r0, qa->o_idx + r0 * EMBER_Q8_OUTLIERS,
                     qa->o_val + r0 * EMBER_Q8_OUTLIERS);
}

#if defined(EMBER_GEMM_PROFILE)
enum { PROF_STRIPS = 64, PROF_KINDS = 3 };
static double g_prof_ns[PROF_KINDS][PROF_STRIPS], g_prof_n[PROF_KINDS][PROF_STRIPS];

static double prof_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e9 * (double)ts.tv_sec + (double)ts.tv_nsec;
}

void ember_gemm_profile_reset(void) {
    memset(g_prof_ns, 0, sizeof g_prof_ns);
    memset(g_prof_n, 0, sizeof g_prof_n);
}

void ember_gemm_profile_print(FILE *out) {
    static const char *kind[PROF_KINDS] = {"first K block, first group", "first K block, other groups",
                                           "later K blocks"};
    for (int k = 0; k < PROF_KINDS; k++) {
        fprintf(out, "%-28s ns per k step by strip:", kind[k]);
        for (int s = 0; s < PROF_STRIPS; s += s < 4 ? 1 : 8)
            if (g_prof_n[k][s] > 0)
                fprintf(out, " s%d %.2f", s, g_prof_ns[k][s] / g_prof_n[k][s]);
        fprintf(out, "\n");
    }
}
#endif

typedef struct {
    const ember_cpu_kernels *k;
    const ember_gemm_args *a;
    float *scratch;          /* per thread: NC_MAX x KC floats              */
    int64_t nc;              /* output columns per task (multiple of 16)    */
    int64_t n_chunks, rows_per_task, kc_step;
    int residual_init;       /* residual is the starting value of y        */
    int bf16_compute;        /* bf16 dot products allowed (dtype bf16)     */
    const ember_gemm_variant *wide; /* fp32 wide tile, or NULL           */
    int bf16_wide;           /* bf16 dot products two panels at a time     */
    int64_t mr;              /* rows per micro-tile                         */
    const q8_act *qa;        /* int8 dot products: x quantized once         */
    const bf16_act *ba;      /* bf16 dot products (and AMX): x in bf16      */
} gemm_job;

static void gemm_task(void *p, int64_t task, int thread) {
    const gemm_job *j = p;
    const ember_cpu_kernels *kt = j->k;
    const ember_gemm_args *a = j->a;
    const int64_t N = a->w->rows, K = a->w->cols, MR = j->mr;
    const ember_gemm_variant *wide = j->wide;
    const int64_t c0 = (task % j->n_chunks) * j->nc;
    const int64_t r0 = (task / j->n_chunks) * j->rows_per_task;
    const int64_t r1 = EMBER_MIN(a->rows, r0 + j->rows_per_task);
    const int64_t nc = EMBER_MIN(j->nc, N - c0);
    const int64_t n_panels = (nc + NR - 1) / NR;
    const float *w = a->w->data;
    const int bf16 = a->w->dtype == EMBER_DT_BF16, int8 = a->w->dtype == EMBER_DT_I8;
    /* reduced precision on the ISA's own dot product, packed weights in place */
    /* bf16 dot products round the activations too: only when bf16 compute
     * was asked for; bf16 weights stored as the checkpoint has them (dtype
     * auto) are widened per call and multiplied in fp32, exactly */
    const int dot_bf16 = bf16 && kt->gemm_tile_bf16 && j->bf16_compute;
    const int dot_q8 = j->qa != NULL;
    const float *prepacked = bf16 || int8 ? NULL : a->w->packed;
    const uint32_t *packed16 = bf16 ? a->w->packed : NULL;
    const ember_q8 *q8 = int8 ? a->w->packed : NULL;
    const int64_t KQ = ember_q8_kpad(K), n_blocks = KQ / EMBER_Q8_BLOCK;
    const q8_act *qa = j->qa;
    float *scratch = j->scratch + (int64_t)thread * (int64_t)ember_gemm_scratch_floats();
    if (nc <= 0 || r0 >= r1)
        return;

    for (int64_t k0 = 0; k0 < K; k0 += j->kc_step) {
        const int64_t kc = EMBER_MIN(j->kc_step, K - k0);
        const int last = k0 + kc == K;
        const float *panels = NULL;
        int64_t panel_stride = kc * NR;
        if (dot_bf16 || dot_q8) {
            /* the dot products read the packed weights in place */
        } else if (packed16) {
            widen_panels_bf16(packed16, K, c0, n_panels, k0, kc, scratch);
            panels = scratch;
        } else if (prepacked) {
            panels = prepacked + (c0 / NR) * K * NR + k0 * NR;
            panel_stride = K * NR;
        } else if (int8) {
            dequant_panels(q8, K, c0, n_panels, k0, kc, scratch);
            panels = scratch;
        } else {
            pack_panels(w, K, N, c0, n_panels, k0, kc, scratch);
            panels = scratch;
        }
        for (int64_t r = r0; r < r1; r += MR) {
            ember_gemm_tile t = {
                .mr = (int)EMBER_MIN(MR, r1 - r),
                .kc = kc,
                .a = a->x + r * a->ldx + k0,
                .lda = a->ldx,
                .ldb = NR,
                .ldc = a->ldy,
                .last = last,
                .act = a->act,
            };
            void (*tile)(const ember_gemm_tile *) = kt->gemm_tile;
            if (dot_bf16) {
                t.aq = j->ba->a + r * j->ba->lda + k0;
                t.lda = j->ba->lda;
                tile = kt->gemm_tile_bf16;
            } else if (dot_q8) {
                t.aq = qa->q + r * qa->ldq + k0;
                t.lda = qa->ldq;
                t.a_scale = qa->scales + r * qa->lds + k0 / EMBER_Q8_BLOCK;
                t.ld_a_scale = qa->lds;
                t.k0 = k0;
                t.o_n = qa->o_n + r;
                t.o_idx = qa->o_idx + r * EMBER_Q8_OUTLIERS;
                t.o_val = qa->o_val + r * EMBER_Q8_OUTLIERS;
                tile = kt->gemm_tile_q8;
            }
            for (int64_t pi = 0, np = 1; pi < n_panels; pi += np) {
                int64_t c = c0 + pi * NR, gp = c / NR;
                /* the wide tile over its panels while they last, then 16 wide */
                np = wide && pi + wide->panels <= n_panels ? wide->panels : 1;
                if (dot_bf16)
                    np = j->bf16_wide && pi + 2 <= n_panels ? 2 : 1;
                if (dot_q8)
                    np = pi + 2 <= n_panels ? 2 : 1;
                t.nr = (int)EMBER_MIN(np * NR, N - c);
                if (dot_bf16) {
                    t.bq = packed16 + (gp * bf16_kp(K) + k0 / 2) * NR;
                    t.ldp = bf16_kp(K) * NR;
                    tile = np > 1 ? kt->gemm_tile_bf16_wide : kt->gemm_tile_bf16;
                } else if (dot_q8) {
                    t.bq = q8->q + gp * KQ * NR + k0 * NR;
                    t.ldp_q8 = KQ * NR;
                    t.b_scale = q8->scales + (gp * n_blocks + k0 / EMBER_Q8_BLOCK) * NR;
                    t.b_offs = q8->offs + (gp * n_blocks + k0 / EMBER_Q8_BLOCK) * NR;
                    t.ld_bs = n_blocks * NR;
                } else {
                    t.bp = panels + pi * panel_stride;
                    t.ldp = panel_stride;
                    tile = np > 1 ? wide->tile : kt->gemm_tile;
                }
                t.c = a->y + r * a->ldy + c;
                if (k0 > 0) {
                    t.init = t.c;
                    t.ld_init = a->ldy;
                } else if (j->residual_init) {
                    t.init = a->residual + r * a->ldr + c;
                    t.ld_init = a->ldr;
                } else {
                    t.init = NULL;
                }
                t.bias = a->bias ? (const float *)a->bias->data + c : NULL;
                t.late_res = (a->residual && !j->residual_init) ? a->residual + r * a->ldr + c : NULL;
                t.ld_res = a->ldr;
#if defined(EMBER_GEMM_PROFILE)
                if (thread == 0 && wide && np == wide->panels && !dot_bf16 && !dot_q8) {
                    const double t0 = prof_now_ns();
                    tile(&t);
                    const int s = (int)EMBER_MIN((int64_t)PROF_STRIPS - 1, (r - r0) / MR);
                    const int kind = k0 > 0 ? 2 : pi == 0 ? 0 : 1;
                    g_prof_ns[kind][s] += (prof_now_ns() - t0) / (double)kc;
                    g_prof_n[kind][s] += 1;
                    continue;
                }
#endif
                tile(&t);
            }
        }
    }
}

/* AMX: the same bands, blocks of 32 rows x 32 columns over each K block,
 * the C tiles continued from y between K blocks. bf16 weights are read in
 * place (the pair panels are the B tile layout); int8 weights are
 * dequantized to bf16 panels once per band and K block into the thread's
 * scratch, then multiplied with the bf16 activations: for an int8 model the
 * activations stay bf16 (more exact than their 8-bit quantization) and the
 * weights' quarter-size memory stays as it is. */
static void amx_task(void *p, int64_t task, int thread) {
    const gemm_job *j = p;
    const ember_cpu_kernels *kt = j->k;
    const ember_gemm_args *a = j->a;
    const int64_t N = a->w->rows, K = a->w->cols;
    const int64_t c0 = (task % j->n_chunks) * j->nc;
    const int64_t r0 = (task / j->n_chunks) * j->rows_per_task;
    const int64_t r1 = EMBER_MIN(a->rows, r0 + j->rows_per_task);
    const int64_t nc = EMBER_MIN(j->nc, N - c0);
    const int64_t n_panels = (nc + NR - 1) / NR;
    const int int8 = a->w->dtype == EMBER_DT_I8;
    const uint32_t *packed16 = int8 ? NULL : a->w->packed;
    const ember_q8 *q8 = int8 ? a->w->packed : NULL;
    const int64_t KQ = ember_q8_kpad(K), n_blocks = KQ / EMBER_Q8_BLOCK, KP = bf16_kp(K);
    const bf16_act *ba = j->ba;
    float *scratch = j->scratch + (int64_t)thread * (int64_t)ember_gemm_scratch_floats();
    float *cbuf[2] = {scratch, scratch + AMX_MR * AMX_MR}; /* 32 x 32 floats each */
    uint32_t *panels = (uint32_t *)(scratch + AMX_CBUF_FLOATS); /* int8: bf16 panels */
    /* a block's epilogue runs during the next block's products (the
     * kernel interleaves them); `pend` is the block waiting for it */
    ember_gemm_tile pend;
    int have_pend = 0, cur = 0;
    if (nc <= 0 || r0 >= r1)
        return;
    kt->amx_begin();
    for (int64_t k0 = 0; k0 < K; k0 += j->kc_step) {
        const int64_t kc = EMBER_MIN(j->kc_step, K - k0), kc32 = (kc + 31) / 32 * 32;
        const int last = k0 + kc == K;
        const uint32_t *bq;
        int64_t ldp;
        if (int8) {
            kt->q8_panels_bf16(q8->q + (c0 / NR) * KQ * NR + k0 * NR, KQ * NR,
                               q8->scales + ((c0 / NR) * n_blocks + k0 / EMBER_Q8_BLOCK) * NR, n_blocks * NR,
                               n_panels, kc32, panels);
            bq = panels;
            ldp = kc32 / 2 * NR;
        } else {
            bq = packed16 + ((c0 / NR) * KP + k0 / 2) * NR;
            ldp = KP * NR;
        }
        for (int64_t r = r0; r < r1; r += AMX_MR)
            for (int64_t pi = 0; pi < n_panels; pi += 2) {
                const int64_t c = c0 + pi * NR;
                ember_gemm_tile t = {
                    .mr = (int)EMBER_MIN((int64_t)AMX_MR, r1 - r),
                    .nr = (int)EMBER_MIN((pi + 2 <= n_panels ? 2 : 1) * NR, N - c),
                    .kc = kc32,
                    .aq = ba->a + r * ba->lda + k0,
                    .lda = ba->lda,
                    .bq = bq + pi * ldp,
                    .ldp = ldp,
                    .c = a->y + r * a->ldy + c,
                    .ldc = a->ldy,
                    .last = last,
                    .act = a->act,
                    .scratch = cbuf[cur],
                    .defer = 1,
                    .pending = have_pend ? &pend : NULL,
                };
                if (k0 > 0) {
                    t.init = t.c;
                    t.ld_init = a->ldy;
                } else if (j->residual_init) {
                    t.init = a->residual + r * a->ldr + c;
                    t.ld_init = a->ldr;
                }
                t.bias = a->bias ? (const float *)a->bias->data + c : NULL;
                t.late_res = (a->residual && !j->residual_init) ? a->residual + r * a->ldr + c : NULL;
                t.ld_res = a->ldr;
                have_pend = kt->amx_bf16(&t);
                if (have_pend) {
                    pend = t;
                    pend.pending = NULL;
                    cur ^= 1;
                }
            }
        if (have_pend) /* before the next K block reads C */
            kt->amx_finish(&pend);
        have_pend = 0;
    }
    kt->amx_end();
}

/* Work split. Each task owns a band of output columns for all rows, so the
 * weight panels of that band are packed once per call and reused by every
 * row; bands are sized so the pool gets an even number of them per thread
 * (2 threads: 4 bands of 96 columns for N = 384, 8 of 192 for N = 1536).
 * Only when the columns cannot give every thread two bands are the rows
 * split as well. */
ember_status ember_gemm_linear(const ember_gemm *g, const ember_cpu_kernels *k, ember_pool *pool,
                               ember_gemm_ws *ws, const ember_gemm_args *a) {
    const int64_t N = a->w->rows, K = a->w->cols, M = a->rows;
    if (M <= 0 || N <= 0)
        return EMBER_OK;
    const int64_t nth = ember_pool_size(pool);
    gemm_job j = {.k = k, .a = a, .scratch = ws->scratch};
    const int bf16_compute = g->compute_dtype == EMBER_DTYPE_BF16;
    const int dot_bf16 = a->w->dtype == EMBER_DT_BF16 && k->gemm_tile_bf16 && bf16_compute;
    /* AMX where the load-time choice took it, for bf16 and int8 weights
     * alike and whatever the number of rows: a row's result must not
     * depend on the rows batched with it (VNNI and AMX round the
     * activations differently). Even 16 rows of int8 lose only 10-20% to
     * VNNI for the dequantization (gemm_bench "one text"). */
    const int amx = g->amx && k->amx_bf16 &&
                    ((a->w->dtype == EMBER_DT_BF16 && bf16_compute) ||
                     (a->w->dtype == EMBER_DT_I8 && k->q8_panels_bf16 &&
                      bf16_kp(K) * NR <= (int64_t)ember_gemm_scratch_floats() - AMX_CBUF_FLOATS));
    /* int8 dot products: x is quantized once here, by row blocks over the
     * pool, for every band and thread to read (quantizing per band redid
     * it N / nc times); for bf16 it is rounded once the same way */
    q8_act qa;
    bf16_act ba;
    if (amx || dot_bf16) {
        EMBER_TRY(bf16_act_reserve(ws, M, K, &ba));
        bf16_conv_job cj = {.k = k, .a = a, .ba = &ba};
        ember_pool_run(pool, bf16_conv_task, &cj, ba.rows / AMX_MR);
        j.ba = &ba;
    } else if (a->w->dtype == EMBER_DT_I8 && k->gemm_tile_q8 && k->quant_a_q8) {
        EMBER_TRY(q8_act_reserve(ws, M, K, &qa));
        q8_quant_job qj = {.k = k, .a = a, .qa = &qa};
        ember_pool_run(pool, q8_quant_task, &qj, (M + Q8_QUANT_ROWS - 1) / Q8_QUANT_ROWS);
        j.qa = &qa;
    }
    /* the wide fp32 tile runs wherever the fp32 tile does (not on the bf16 /
     * int8 dot products); its rows never exceed the table's mr */
    const int dot = dot_bf16 || j.qa;
    j.wide = !dot && !amx && g->wide && g->wide->mr <= k->mr ? g->wide : NULL;
    j.mr = amx ? AMX_MR : j.wide ? j.wide->mr : k->mr;
    j.bf16_wide = a->w->dtype == EMBER_DT_BF16 && k->gemm_tile_bf16 && k->gemm_tile_bf16_wide &&
                  !g->no_bf16_wide && bf16_compute;
    const int64_t MR = j.mr;
    j.residual_init = a->residual && a->act == EMBER_ACT_NONE;
    j.bf16_compute = bf16_compute;
    /* K blocks of at most KC, balanced, multiples of 32 (the int8 block) */
    const int64_t KC = a->w->dtype == EMBER_DT_F32 && a->w->packed && !dot && !amx && g->kc_packed > 0
                         ? g->kc_packed
                         : EMBER_GEMM_KC;
    int64_t kblocks = (K + KC - 1) / KC;
    j.kc_step = ((K + kblocks - 1) / kblocks + 31) & ~(int64_t)31;
    if (j.kc_step > KC)
        j.kc_step = KC;
    int64_t max_panels = EMBER_GEMM_NC_MAX / NR;
    if (amx) {
        /* the C tiles stay in the tile registers for the whole of K (storing
         * and reloading them between K blocks cost more than the blocks
         * saved); int8 bands are as wide as their bf16 panels fit in the
         * thread's scratch */
        j.kc_step = K;
        if (a->w->dtype == EMBER_DT_I8) {
            int64_t fit = ((int64_t)ember_gemm_scratch_floats() - AMX_CBUF_FLOATS) / (bf16_kp(K) * NR);
            max_panels = EMBER_MAX((int64_t)1, EMBER_MIN(max_panels, fit));
        }
    }
    const int64_t panels = (N + NR - 1) / NR;
    int64_t chunks = EMBER_MAX(2 * nth, (panels + max_panels - 1) / max_panels);
    chunks = (chunks + nth - 1) / nth * nth;
    chunks = EMBER_MIN(chunks, panels);
    int64_t per = (panels + chunks - 1) / chunks;
    if (j.wide) { /* whole wide tiles per band where that costs no balance */
        int64_t per2 = (per + j.wide->panels - 1) / j.wide->panels * j.wide->panels;
        int64_t chunks2 = (panels + per2 - 1) / per2;
        if (chunks2 % nth == 0 || chunks2 >= 4 * nth)
            per = per2;
    }
    j.nc = per * NR;
    j.n_chunks = (N + j.nc - 1) / j.nc;
    int64_t m_chunks = 1;
    if (nth > 1 && j.n_chunks < 2 * nth) {
        m_chunks = (2 * nth + j.n_chunks - 1) / j.n_chunks;
        m_chunks = EMBER_MAX((int64_t)1, EMBER_MIN(m_chunks, M / (4 * MR)));
    }
    j.rows_per_task = (M + m_chunks - 1) / m_chunks;
    j.rows_per_task = (j.rows_per_task + MR - 1) / MR * MR;
    m_chunks = (M + j.rows_per_task - 1) / j.rows_per_task;
    ember_pool_run(pool, amx ? amx_task : gemm_task, &j, j.n_chunks * m_chunks);
    return EMBER_OK;
}
