/*
 * kernels.h — the CPU driver's inner kernels, one table per instruction set.
 *
 * The scalar table (ref.c) is portable C and the ground truth of the
 * driver-op tests; ISA tables (x86/avx2.c, ...) are compiled with their own
 * flags and chosen once from the detected CPU features. Each kernel works on
 * a slice of the data (rows, one attention tile): splitting work over threads
 * is the driver's job, not the kernel's.
 */
#ifndef EMBER_DRIVERS_CPU_KERNELS_H
#define EMBER_DRIVERS_CPU_KERNELS_H

#include <stdint.h>

/* The precision of the attention's two products (ember_attn_tile.products). */
enum { EMBER_ATTN_FP32 = 0, EMBER_ATTN_BF16_DOT = 1, EMBER_ATTN_BF16_AMX = 2 };

/* One attention task: the queries at positions [q0, q1) of one head of one
 * sequence of length `len`. q and out point at the row of query q0 (so a
 * compact first- or last-token query needs no row of the others); k and v at
 * the sequence's first key, each at this head's columns. */
typedef struct ember_attn_tile {
    const float *q, *k, *v;
    int64_t ld_q;           /* row stride of q                                */
    int64_t ld;             /* row stride of k/v                              */
    float *out;
    int64_t ld_out;
    int32_t len;            /* sequence length                                */
    int32_t q0, q1;         /* query positions of this task                   */
    int32_t head_dim;
    int32_t window;         /* 0: all keys; else |i - j| <= window            */
    int32_t causal;         /* 1: keys j <= i only                            */
    float scale;
    const float *rel;       /* NULL, or this head's bias by distance: score(i, j)
                               += rel[j - i + rel_center] after scaling       */
    int32_t rel_center;
    int32_t products;       /* EMBER_ATTN_FP32, or both products with bf16
                               operands (q, k, p and v rounded to bf16, fp32
                               accumulation and softmax): _BF16_DOT on the
                               table's AVX512_BF16 tiles (needs
                               gemm_tile_bf16, pack_a_bf16, pack_kt_bf16,
                               pack_v_bf16; head_dim a multiple of 16),
                               _BF16_AMX on AMX-BF16 tiles (needs amx_bf16
                               too; head_dim a multiple of 32). Set by the
                               driver only for bf16/int8 compute.          */
    const struct ember_gemm_variant *wide; /* NULL, or a wide fp32 tile of the
                               same table for the fp32 products (the GEMM's
                               load-time choice)                             */
    float *scratch;         /* per-thread, ember_attn_scratch_floats() floats */
} ember_attn_tile;

/* Query rows per attention task and keys per tile of the online softmax.
 * Global attention uses blocks of QBLOCK queries so that packing K^T is
 * amortised over many queries; sliding-window attention uses QBLOCK_LOCAL,
 * since a block sees its queries' window plus its own width in keys. */
#define EMBER_ATTN_QBLOCK 128
#define EMBER_ATTN_QBLOCK_LOCAL 32
#define EMBER_ATTN_KBLOCK 128

static inline int64_t ember_attn_scratch_floats(int32_t head_dim) {
    /* K^T tile + score tile + output accumulator + running max/sum, then
     * the bf16 operands of the bf16 paths (q, K^T and V pair panels, P, each
     * 2 values per float, head_dim rounded up to 32) and the AMX block's
     * 32 x 32 scratch; every piece 64-byte aligned */
    const int64_t dp = ((int64_t)head_dim + 31) / 32 * 32;
    return (int64_t)head_dim * EMBER_ATTN_KBLOCK + (int64_t)EMBER_ATTN_QBLOCK * EMBER_ATTN_KBLOCK +
           (int64_t)EMBER_ATTN_QBLOCK * head_dim + 2 * EMBER_ATTN_QBLOCK + 64 +
           (EMBER_ATTN_QBLOCK * dp + 2 * dp * EMBER_ATTN_KBLOCK + EMBER_ATTN_QBLOCK * EMBER_ATTN_KBLOCK) / 2 +
           32 * 32 + 16 * dp + 6 * 16;
}

/* GEMM micro-kernel: C[mr x nr] (row stride ldc) = init + A[mr x kc] B, where
 * A is row-major (stride lda) and B holds EMBER_GEMM_NR columns with row
 * stride ldb: a packed panel (ldb = NR) or rows of a row-major matrix. All 16
 * columns of B must be readable (panels are zero-padded) even when nr < 16;
 * only C is masked to nr columns. mr is at most the table's `mr`. `init` is
 * NULL (start from zero) or the tile to start from (C itself to continue a K
 * split, or the residual), with stride ld_init. When `last`, the epilogue
 * runs on the tile before it is stored: + bias[j], activation, + late_res
 * (stride ld_res).
 *
 * Reduced-precision tiles (gemm_tile_bf16, gemm_tile_q8) take the same
 * fields for C and the epilogue, but read A and B through `aq` and `bq`:
 *   bf16: aq = rows of bf16 values (uint16, stride lda, kc rounded up to even
 *         with a zero), bq = a pair panel: uint32 [kc / 2][16], lane j of
 *         pair p = W[j][2p] | W[j][2p + 1] << 16 (bf16 bits).
 *   int8: aq = rows of activations quantized per block of 32 k as uint8 with
 *         an offset of 128 (stride lda bytes; see quant_a_q8), a_scale[i *
 *         ld_a_scale + b] their scales; bq = an int8 panel: [kc / 4][16][4]
 *         (4 consecutive k of a column together), b_scale and b_offs =
 *         [block][16] scales of the weights and -128 x their sums. nr <= 32:
 *         a second panel, if any, starts ldp bytes after bq, its scales and
 *         offsets ld_bs values after b_scale and b_offs. The tile starts
 *         from init (or zero) and adds each block's int32 dot product times
 *         both scales. On the last K block it also adds each row's outliers
 *         (o_n[i] values o_val[i * EMBER_Q8_OUTLIERS + e] at columns o_idx[...],
 *         kept out of the quantized row) times the dequantized weights; k0 is
 *         the K offset of this block (aq, bq, a_scale, b_scale, b_offs all
 *         point at it), so an outlier at column c reads the panel at c - k0. */
#define EMBER_GEMM_MR 6      /* rows per micro-tile of the scalar and AVX2 tables */
#define EMBER_GEMM_MR_MAX 16 /* the most any table uses                          */
#define EMBER_GEMM_NR 16

/* int8: 32 values of K per fp32 scale (weights per column, activations per
 * row); K of the panels and of the quantized rows padded to a multiple of
 * KPAD (one AMX tile row; 16 VNNI steps of 4). */
#define EMBER_Q8_BLOCK 32
#define EMBER_Q8_KPAD 64
/* Activation outliers: values with |x| > EMBER_Q8_OUTLIER_T x rms(row) are
 * kept in fp32 out of the quantized row, at most EMBER_Q8_OUTLIERS per row
 * (the largest). One such value (the attention sinks' [CLS]/[SEP] rows of
 * BERT models have a few at 15-40 rms) would otherwise set its block's scale
 * and leave the other 31 values of the block a handful of levels. */
#define EMBER_Q8_OUTLIERS 8
#define EMBER_Q8_OUTLIER_T 6.0f

typedef struct ember_gemm_tile {
    int mr, nr;
    int64_t kc;
    const float *a;
    int64_t lda;
    const float *bp;
    int64_t ldb;      /* row stride of B; 0 = EMBER_GEMM_NR (a packed panel) */
    int64_t ldp;      /* wide tiles: floats from one panel of B to the next;
                         nr then counts all their columns (<= 16 panels)   */
    float *c;
    int64_t ldc;
    const float *init;
    int64_t ld_init;
    int last;
    const float *bias;
    int act;
    const float *late_res;
    int64_t ld_res;
    /* reduced precision (see above) */
    const void *aq;
    const void *bq;
    const float *a_scale;
    int64_t ld_a_scale;
    const float *b_scale;
    const int32_t *b_offs;
    int64_t ldp_q8;   /* int8: bytes from one panel to the next            */
    int64_t ld_bs;    /* int8: scales/offsets from one panel to the next    */
    int64_t k0;       /* int8: K offset of this block (outlier columns)     */
    const uint8_t *o_n;
    const int32_t *o_idx;
    const float *o_val;
    float *scratch;   /* amx_bf16: 32 x 32 floats                          */
    int defer;        /* amx_bf16: a block that needs its epilogue leaves it
                         in `scratch` for a later call (returns 1)         */
    const struct ember_gemm_tile *pending; /* amx_bf16: such a deferred
                         block (its own scratch), finished here between this
                         block's tile products; NULL: none                 */
} ember_gemm_tile;

/* One fp32 GEMM micro-tile shape of a kernel table. */
typedef struct ember_gemm_variant {
    const char *name; /* "12x32" */
    int mr;           /* rows of A per tile (<= EMBER_GEMM_MR_MAX)         */
    int panels;       /* 16-column panels of B per tile                    */
    void (*tile)(const ember_gemm_tile *t);
} ember_gemm_variant;

typedef struct ember_cpu_kernels {
    const char *name;
    int mr; /* rows per GEMM micro-tile */
    /* One GEMM micro-tile (see ember_gemm_tile). */
    void (*gemm_tile)(const ember_gemm_tile *t);
    /* Reduced-precision tiles and the conversion of A they read; NULL where
     * the ISA has no such dot product (the GEMM then widens the weights to
     * fp32 and runs gemm_tile). */
    void (*gemm_tile_bf16)(const ember_gemm_tile *t);
    /* The same over two pair panels (t->ldp uint32 apart, nr <= 32); NULL
     * where absent. */
    void (*gemm_tile_bf16_wide)(const ember_gemm_tile *t);
    /* dst[i * ldd + k] = bf16(a[i * lda + k]) for k < kc, then a zero if kc
     * is odd; round to nearest even. */
    void (*pack_a_bf16)(const float *a, int64_t lda, int mr, int64_t kc, uint16_t *dst, int64_t ldd);
    void (*gemm_tile_q8)(const ember_gemm_tile *t);
    /* Quantizes rows of K values once per linear layer: first each row's
     * outliers (|a| > EMBER_Q8_OUTLIER_T x rms, at most EMBER_Q8_OUTLIERS,
     * the largest) go to o_n[i], o_idx/o_val[i * EMBER_Q8_OUTLIERS + e] in
     * column order and count as 0 below; then per block of 32: s = max|a| /
     * 127, dst = round(a / s) + 128 (padded with 128 to ldd, a multiple of
     * EMBER_Q8_KPAD), scales[i * lds + block] = s (0 for all-zero blocks). */
    void (*quant_a_q8)(const float *a, int64_t lda, int rows, int64_t K, uint8_t *dst, int64_t ldd,
                       float *scales, int64_t lds, uint8_t *o_n, int32_t *o_idx, float *o_val);
    /* out = LayerNorm(x + res) * gamma + beta over n values; res, beta may be
     * NULL; out may alias x. */
    void (*layer_norm_row)(const float *x, const float *res, const float *gamma,
                           const float *beta, float eps, int64_t n, float *out);
    /* y = act(y + bias) (+ residual) over n values; bias/residual may be NULL. */
    void (*bias_act_row)(float *y, const float *bias, int act, const float *residual, int64_t n);
    /* out[i] = gelu(in[i]) * in[inter + i] for i < inter (exact GELU). */
    void (*geglu_row)(const float *in, int64_t inter, float *out);
    void (*attention_tile)(const ember_attn_tile *t);
    /* Softmax helpers of the tiled attention: the max of x[0..n), and
     * x[j] = exp(x[j] * scale - m) in place returning their sum. */
    float (*row_max)(const float *x, int32_t n);
    float (*row_exp)(float *x, int32_t n, float scale, float m);
    /* row_exp's values rounded to bf16 as pack_a_bf16 rounds them, written
     * to dst[0..n) (x unchanged), returning the sum of the fp32 values; the
     * bf16 attention's softmax and P in one pass over the scores. NULL:
     * row_exp, then the scalar rounding. */
    float (*row_exp_bf16)(const float *x, int32_t n, float scale, float m, uint16_t *dst);
    /* The fp32 attention's K^T panels: dst[(p * d + c) * 16 + jj] =
     * k[(16 p + jj) * ld + c] for the ceil(nk / 16) panels of 16 keys, 0
     * for keys past nk; d a multiple of 16. NULL: a scalar loop. */
    void (*pack_kt_f32)(const float *k, int64_t ld, int32_t nk, int32_t d, float *dst);
    /* Rotate-half RoPE on one head vector of head_dim values. */
    void (*rope_head)(float *x, const float *cos, const float *sin, int32_t head_dim);
    /* Wider fp32 GEMM tiles (NULL-terminated by n_gemm_wide): each consumes
     * `panels` consecutive 16-column panels of B (see ember_gemm_tile.ldp)
     * and `mr` rows of A; the GEMM times them at load against gemm_tile and
     * keeps the fastest (ember_gemm_choose). */
    const ember_gemm_variant *gemm_wide;
    int n_gemm_wide;
    /* Register-only peak loops, the machine's arithmetic peak for `ember
     * bench`: `iters` rounds of independent multiply-adds on registers (no
     * memory traffic); return the operations executed (2 per multiply-add).
     * peak_bf16 / peak_q8: the AVX512_BF16 / VNNI dot products, NULL where
     * absent. */
    double (*peak_f32)(int64_t iters);
    double (*peak_bf16)(int64_t iters);
    double (*peak_q8)(int64_t iters);
    /* AMX (NULL where the CPU or OS lacks it). amx_begin configures the
     * calling thread's tiles (8 tiles of 16 rows x 64 bytes), amx_end
     * releases them; amx_bf16 runs between the two.
     * amx_bf16: C[mr x nr] (+)= A B for mr <= 32, nr <= 32 with AMX-BF16
     * (tdpbf16ps, fp32 accumulation in the tiles): aq = bf16 rows (stride
     * lda elements; 32 rows readable, K zero-padded to a multiple of 32),
     * bq = a pair panel [kc / 2][16] (the bf16 tile's layout; a second one
     * ldp uint32 further when nr > 16), kc a multiple of 32; C, init and the
     * epilogue as gemm_tile. `scratch`: 32 x 32 floats of the thread's own,
     * for partial tiles and epilogues. Returns 1 when, with `defer`, the
     * block's epilogue was left in `scratch` (then pass the tile as
     * `pending` to the next call, or to amx_finish, before touching that
     * scratch or reading C), else 0. The deferred epilogue runs on the
     * vector units while the next block's products keep the AMX unit
     * busy; run back to back the two only added up.
     * amx_finish: the deferred epilogue of t, alone (the last block).
     * q8_panels_bf16: n_panels int8 panels (stride ldp_q8 bytes, scales
     * stride ld_bs, see gemm_tile_q8) over kc values (a multiple of 32) of
     * K, dequantized and rounded to bf16 pair panels [p][kc / 2][16]. */
    void (*amx_begin)(void);
    void (*amx_end)(void);
    int (*amx_bf16)(const ember_gemm_tile *t);
    void (*amx_finish)(const ember_gemm_tile *t);
    void (*q8_panels_bf16)(const int8_t *q, int64_t ldp_q8, const float *scales, int64_t ld_bs,
                           int64_t n_panels, int64_t kc, uint32_t *dst);
    double (*peak_amx_bf16)(int64_t iters);
    /* The attention's bf16 operands (NULL without AVX512_BF16), with dp = d
     * rounded up to 32 and values rounded to bf16 as pack_a_bf16 does:
     * pack_kt_bf16: keys [0, nk) of K (rows of d values, stride ld) as pair
     *   panels over d: panel p (16 keys) at dst + p * dp / 2 * 16, lane j of
     *   pair i = K[16p + j][2i] | K[16p + j][2i + 1] << 16, zero past nk and
     *   d up to the panel's end; tmp: 16 * dp / 2 uint32 of scratch.
     * pack_v_bf16: rows [0, nk) of V as pair panels over keys: panel q (16
     *   columns) at dst + q * ldp, lane c of pair i = V[2i][16q + c] |
     *   V[2i + 1][16q + c] << 16, zero past nk up to nk rounded up to 32;
     *   d a multiple of 16. */
    void (*pack_kt_bf16)(const float *k, int64_t ld, int32_t nk, int32_t d, uint32_t *dst, uint32_t *tmp);
    void (*pack_v_bf16)(const float *v, int64_t ld, int32_t nk, int32_t d, uint32_t *dst, int64_t ldp);
} ember_cpu_kernels;


/* Scalar models of the reduced-precision activation conversions, shared by
 * the reference and the tests: the exact values the ISA kernels produce. */
void ember_ref_pack_a_bf16(const float *a, int64_t lda, int mr, int64_t kc, uint16_t *dst, int64_t ldd);
void ember_ref_quant_a_q8(const float *a, int64_t lda, int rows, int64_t K, uint8_t *dst, int64_t ldd,
                          float *scales, int64_t lds, uint8_t *o_n, int32_t *o_idx, float *o_val);
/* The outlier threshold of one row: T^2 x mean(a^2), the sum of squares
 * taken with fused multiply-adds in 16 lanes (lane l: k = l mod 16, in
 * order) reduced pairwise
 * (l + 8, l + 4, l + 2, l + 1): the order of the AVX-512 kernel, so both
 * give the same bits. */
float ember_ref_q8_threshold2(const float *a, int64_t K);
/* Picks row a's outliers (a[k]^2 > thr2), the EMBER_Q8_OUTLIERS largest in
 * |a| (ties: the lower k) in column order; returns their count. Shared by
 * every quant_a_q8. */
int ember_q8_row_outliers(const float *a, int64_t K, float thr2, int32_t *idx, float *val);

extern const ember_cpu_kernels ember_cpu_kernels_ref;
#if defined(EMBER_HAVE_X86)
extern const ember_cpu_kernels ember_cpu_kernels_avx2;
/* AVX-512F/BW/DQ/VL; its bf16 and int8 tiles need AVX512_BF16 and
 * AVX512_VNNI, so ember_cpu_kernels_best() hands out a copy without the ones
 * the CPU lacks. */
extern const ember_cpu_kernels ember_cpu_kernels_avx512;
/* The AVX2 table's row kernels, shared by the AVX-512 table (they are
 * bound by memory, not by vector width). */
void ember_avx2_layer_norm_row(const float *x, const float *res, const float *gamma,
                               const float *beta, float eps, int64_t n, float *out);
void ember_avx2_bias_act_row(float *y, const float *bias, int act, const float *residual, int64_t n);
void ember_avx2_geglu_row(const float *in, int64_t inter, float *out);
float ember_avx2_row_max(const float *x, int32_t n);
float ember_avx2_row_exp(float *x, int32_t n, float scale, float m);
void ember_avx2_rope_head(float *x, const float *cos, const float *sin, int32_t head_dim);
#endif
#if defined(EMBER_AVX512_EMULATION_TABLE)
/* The AVX-512 table built over SIMDe's portable intrinsics (tests only). */
extern const ember_cpu_kernels ember_cpu_kernels_avx512_emulated;
#endif
#if defined(EMBER_HAVE_NEON)
extern const ember_cpu_kernels ember_cpu_kernels_neon;
#endif

/* Tiled attention (attention.c) over the gemm_tile, row_max and row_exp of
 * table `k`; head_dim must be a multiple of 16. */
void ember_attention_tiled(const ember_cpu_kernels *k, const ember_attn_tile *t);

/* The best table for this CPU (honours EMBER_CPU). */
const ember_cpu_kernels *ember_cpu_kernels_best(void);
/* Tests only: when set before a driver is created, ember_cpu_kernels_best()
 * returns this table (the AVX-512 kernels under emulation, say). */
extern const ember_cpu_kernels *ember_cpu_kernels_forced;

/* Activation codes shared with driver.h's ember_act. */
float ember_ref_act(int act, float x);

#endif
