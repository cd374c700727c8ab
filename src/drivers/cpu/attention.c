/*
 * attention.c — tiled attention with an online softmax (flash-attention
 * style), written once for every instruction set over the hooks of a kernel
 * table: its GEMM micro-kernel for both products and its vector exp for the
 * softmax.
 *
 * For a block of up to QBLOCK queries, keys are visited in tiles of KBLOCK:
 * S = Q K^T with K^T packed in 16-key panels, then per query row the running
 * max m, sum l and the rescaling of the output accumulator O, then O += P V
 * reading V rows in place, 16 columns at a time. Memory is O(tile), never
 * O(len^2).
 *
 * With t->products EMBER_ATTN_BF16_AMX or _DOT (bf16 or int8 compute on a
 * CPU with AMX-BF16, or with AVX512_BF16) both products take bf16 operands
 * instead, on AMX tiles or on vdpbf16ps tiles: Q is rounded to bf16 once per
 * task, each key tile's K^T and V are packed into bf16 pair panels, and P is
 * rounded to bf16 after the softmax, which stays in fp32 (the precision of
 * transformers' own bf16 attention: bf16 operands, fp32 accumulation; the
 * softmax writes P in bf16 directly, row_exp_bf16). On
 * 512-token sequences of bge-small shapes attention was about 60% of a bf16
 * pass with fp32 products; see docs/performance.md.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/dtype.h"
#include "drivers/cpu/kernels.h"

/* The tile for the fp32 products from panel p of n_panels (16 columns of
 * B each): the wide variant in t->wide (the GEMM's load-time choice) while
 * whole ones fit, else the table's widest variant that fits (head_dim 32
 * has two panels: the 8 x 48 tile never fits there), else NULL for the
 * table's mr x 16 tile. Only where the driver passed t->wide. */
static const ember_gemm_variant *tile_for(const ember_cpu_kernels *k, const ember_attn_tile *t, int32_t p,
                                          int32_t n_panels) {
    if (!t->wide)
        return NULL;
    if (p + t->wide->panels <= n_panels)
        return t->wide;
    const ember_gemm_variant *best = NULL;
    for (int v = 0; k->gemm_wide && v < k->n_gemm_wide; v++)
        if (p + k->gemm_wide[v].panels <= n_panels && (!best || k->gemm_wide[v].panels > best->panels))
            best = &k->gemm_wide[v];
    return best;
}

static void gemm_rows(const ember_cpu_kernels *k, const ember_gemm_variant *wide, ember_gemm_tile *g,
                      int32_t rows, const float *a, float *c, int64_t c_step_rows) {
    void (*tile)(const ember_gemm_tile *) = wide ? wide->tile : k->gemm_tile;
    const int32_t mr = wide ? wide->mr : k->mr;
    for (int32_t i0 = 0; i0 < rows; i0 += mr) {
        g->mr = rows - i0 < mr ? rows - i0 : mr;
        g->a = a + (int64_t)i0 * g->lda;
        g->c = c + (int64_t)i0 * c_step_rows;
        if (g->init)
            g->init = g->c;
        tile(g);
    }
}

/* The keys [*ks, *ke) that some query of [q0, q1) may see. */
static void key_range(const ember_attn_tile *t, int32_t *ks, int32_t *ke) {
    *ks = 0;
    *ke = t->len;
    if (t->window > 0) {
        *ks = t->q0 - t->window > 0 ? t->q0 - t->window : 0;
        *ke = t->q1 + t->window < t->len ? t->q1 + t->window : t->len;
    }
    if (t->causal && *ke > t->q1)
        *ke = t->q1; /* the last query sees keys up to itself */
}

static void start_rows(float *o, float *mrow, float *lrow, int32_t nq, int32_t d) {
    for (int32_t i = 0; i < nq; i++) {
        mrow[i] = -INFINITY;
        lrow[i] = 0.0f;
    }
    memset(o, 0, sizeof(float) * (size_t)nq * (size_t)d);
}

/* P's row [j0, j1) in bf16 from the scores (see row_exp_bf16). */
static float row_exp_bf16(const ember_cpu_kernels *k, float *x, int32_t n, float scale, float m,
                          uint16_t *dst) {
    if (k->row_exp_bf16)
        return k->row_exp_bf16(x, n, scale, m, dst);
    const float sum = k->row_exp(x, n, scale, m);
    for (int32_t j = 0; j < n; j++)
        dst[j] = ember_f32_to_bf16(x[j]);
    return sum;
}

/* The online-softmax step of one key tile [kb, kb + nk): per query row of
 * S (stride KB) the new running max and sum, O rescaled, and P = exp(...)
 * with zeros outside the row's window: in place of S, or with p_bf16 in
 * bf16 rows of p_len values there (stride KB; zeros up to p_len), in the
 * same pass. */
static void softmax_tile(const ember_cpu_kernels *k, const ember_attn_tile *t, float *s, float *o,
                         float *mrow, float *lrow, int32_t nq, int32_t kb, int32_t nk, uint16_t *p_bf16,
                         int32_t p_len) {
    const int32_t d = t->head_dim, KB = EMBER_ATTN_KBLOCK;
    for (int32_t i = 0; i < nq; i++) {
        float *srow = s + (int64_t)i * KB;
        uint16_t *prow = p_bf16 ? p_bf16 + (int64_t)i * KB : NULL;
        int32_t qi = t->q0 + i, j0 = 0, j1 = nk;
        if (t->window > 0) {
            int32_t lo = qi - t->window - kb, hi = qi + t->window + 1 - kb;
            j0 = lo > 0 ? lo : 0;
            j1 = hi < nk ? hi : nk;
        }
        if (t->causal && qi + 1 - kb < j1)
            j1 = qi + 1 - kb;
        if (j0 >= j1) {
            if (prow)
                memset(prow, 0, sizeof(uint16_t) * (size_t)p_len);
            else
                memset(srow, 0, sizeof(float) * (size_t)nk);
            continue;
        }
        float row_scale = t->scale;
        if (t->rel) {
            /* relative-position bias joins the scaled scores; the
             * exponent then runs with scale 1 */
            const float *rel = t->rel + (kb - qi) + t->rel_center;
            for (int32_t j = j0; j < j1; j++)
                srow[j] = srow[j] * t->scale + rel[j];
            row_scale = 1.0f;
        }
        float bm = k->row_max(srow + j0, j1 - j0) * row_scale;
        float nm = bm > mrow[i] ? bm : mrow[i];
        float corr = mrow[i] == -INFINITY ? 0.0f : expf(mrow[i] - nm);
        if (corr != 1.0f) {
            float *orow = o + (int64_t)i * d;
            for (int32_t c = 0; c < d; c++)
                orow[c] *= corr;
        }
        float lsum;
        if (prow) {
            memset(prow, 0, sizeof(uint16_t) * (size_t)j0);
            lsum = row_exp_bf16(k, srow + j0, j1 - j0, row_scale, nm, prow + j0);
            memset(prow + j1, 0, sizeof(uint16_t) * (size_t)(p_len - j1));
        } else {
            memset(srow, 0, sizeof(float) * (size_t)j0);
            lsum = k->row_exp(srow + j0, j1 - j0, row_scale, nm);
            memset(srow + j1, 0, sizeof(float) * (size_t)(nk - j1));
        }
        lrow[i] = lrow[i] * corr + lsum;
        mrow[i] = nm;
    }
}

static void finish_rows(const ember_attn_tile *t, const float *o, const float *lrow, int32_t nq) {
    const int32_t d = t->head_dim;
    for (int32_t i = 0; i < nq; i++) {
        float *dst = t->out + (int64_t)i * t->ld_out;
        const float *orow = o + (int64_t)i * d;
        float inv = lrow[i] > 0.0f ? 1.0f / lrow[i] : 0.0f;
        for (int32_t c = 0; c < d; c++)
            dst[c] = orow[c] * inv;
    }
}

static void *align64(void *p) { return (void *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

/* C[nq x nc] = A[nq x kc] B (or C += A B when `accumulate`) with bf16
 * operands and fp32 accumulation: A = bf16 rows (stride lda), B = pair panels
 * of 16 columns, panel_stride uint32 apart. AMX blocks of 32 x 32
 * (t->products EMBER_ATTN_BF16_AMX: kc a multiple of 32, 32 rows of A
 * readable), or the table's AVX512_BF16 dot-product tiles of k->mr rows x 32
 * columns (x 16 for the last panel alone, so no tile reads a panel past
 * nc). */
static void bf16_products(const ember_cpu_kernels *k, int amx, int32_t nq, int32_t nc, int64_t kc,
                          const uint16_t *a, int64_t lda, const uint32_t *b, int64_t panel_stride,
                          float *c, int64_t ldc, int accumulate, float *amx_scratch) {
    const int32_t rows = amx ? 32 : k->mr;
    for (int32_t r0 = 0; r0 < nq; r0 += rows)
        for (int32_t c0 = 0; c0 < nc; c0 += 32) {
            float *dst = c + (int64_t)r0 * ldc + c0;
            ember_gemm_tile g = {.mr = nq - r0 < rows ? nq - r0 : rows, .nr = nc - c0 < 32 ? nc - c0 : 32,
                                 .kc = kc, .aq = a + (int64_t)r0 * lda, .lda = lda,
                                 .bq = b + (int64_t)(c0 / 16) * panel_stride, .ldp = panel_stride,
                                 .c = dst, .ldc = ldc, .init = accumulate ? dst : NULL, .ld_init = ldc,
                                 .scratch = amx_scratch};
            if (amx)
                k->amx_bf16(&g);
            else if (g.nr > 16 && k->gemm_tile_bf16_wide)
                k->gemm_tile_bf16_wide(&g);
            else
                for (int32_t p = 0; p * 16 < g.nr; p++) { /* one panel at a time */
                    ember_gemm_tile one = g;
                    one.nr = g.nr - 16 * p < 16 ? g.nr - 16 * p : 16;
                    one.bq = (const uint32_t *)g.bq + (int64_t)p * panel_stride;
                    one.c = dst + 16 * p;
                    one.init = accumulate ? one.c : NULL;
                    k->gemm_tile_bf16(&one);
                }
        }
}

/* Both products with bf16 operands (head_dim even; a multiple of 32 for
 * AMX): Q rounded to bf16 once per task, each key tile's K^T and V packed
 * into pair panels, P rounded to bf16 after the softmax, which stays in fp32
 * (the precision of transformers' own bf16 attention: bf16 operands, fp32
 * accumulation). */
static void attention_bf16(const ember_cpu_kernels *k, const ember_attn_tile *t) {
    const int amx = t->products == EMBER_ATTN_BF16_AMX;
    const int32_t d = t->head_dim, KB = EMBER_ATTN_KBLOCK, QB = EMBER_ATTN_QBLOCK;
    const int32_t dp = (d + 31) / 32 * 32; /* the packers' row length */
    /* the fp32 path's regions (its K^T tile unused here), then the bf16
     * operands; ember_attn_scratch_floats counts them all */
    float *s = t->scratch + (int64_t)d * KB;         /* QB x KB scores, then P */
    float *o = s + (int64_t)QB * KB;                 /* QB x d                 */
    float *mrow = o + (int64_t)QB * d;
    float *lrow = mrow + QB;
    uint16_t *qb = align64(lrow + QB);               /* QB x dp, bf16          */
    uint32_t *ktp = align64(qb + (int64_t)QB * dp);  /* KB/16 x [dp/2][16]     */
    uint32_t *vp = align64(ktp + (int64_t)KB * dp / 2); /* dp/16 x [KB/2][16]  */
    uint16_t *pb = align64(vp + (int64_t)dp * KB / 2); /* QB x KB, bf16        */
    float *amx_scratch = align64(pb + (int64_t)QB * KB); /* 32 x 32            */
    uint32_t *tmp = align64(amx_scratch + 32 * 32);  /* 16 x dp/2              */
    const int64_t kt_panel = (int64_t)dp / 2 * 16, v_panel = (int64_t)KB / 2 * 16;
    const int32_t nq = t->q1 - t->q0;
    int32_t ks, ke;
    key_range(t, &ks, &ke);
    start_rows(o, mrow, lrow, nq, d);
    /* Q's rows at the packers' stride dp (AMX has d a multiple of 32, so
     * dp = d there and no product reads past d); rows nq..31 of the last
     * 32-row AMX block are read but never stored */
    k->pack_a_bf16(t->q, t->ld_q, nq, d, qb, dp);

    if (amx)
        k->amx_begin();
    for (int32_t kb = ks; kb < ke; kb += KB) {
        const int32_t nk = ke - kb < KB ? ke - kb : KB;
        const int32_t nk32 = (nk + 31) / 32 * 32;
        /* S = Q K^T: [nq x d] x [d x nk] */
        k->pack_kt_bf16(t->k + (int64_t)kb * t->ld, t->ld, nk, d, ktp, tmp);
        bf16_products(k, amx, nq, nk, d, qb, dp, ktp, kt_panel, s, KB, 0, amx_scratch);
        /* P in bf16 straight from the softmax, zero past nk */
        softmax_tile(k, t, s, o, mrow, lrow, nq, kb, nk, pb, nk32);
        /* O += P V: [nq x nk32] x [nk32 x d], P and V zero past nk */
        k->pack_v_bf16(t->v + (int64_t)kb * t->ld, t->ld, nk, d, vp, v_panel);
        bf16_products(k, amx, nq, d, amx ? nk32 : (nk + 1) / 2 * 2, pb, KB, vp, v_panel, o, d, 1,
                      amx_scratch);
    }
    if (amx)
        k->amx_end();
    finish_rows(t, o, lrow, nq);
}

/* The fp32 K^T panels one value at a time (pack_kt_f32's layout, any d):
 * for tables without pack_kt_f32. */
static void pack_kt_scalar(const float *k, int64_t ld, int32_t nk, int32_t d, float *dst) {
    for (int32_t p = 0; p * 16 < nk; p++) {
        float *panel = dst + (int64_t)p * d * 16;
        for (int32_t jj = 0; jj < 16; jj++) {
            const int32_t j = p * 16 + jj;
            const float *krow = j < nk ? k + (int64_t)j * ld : NULL;
            for (int32_t c = 0; c < d; c++)
                panel[c * 16 + jj] = krow ? krow[c] : 0.0f;
        }
    }
}

void ember_attention_tiled(const ember_cpu_kernels *k, const ember_attn_tile *t) {
    if (t->products != EMBER_ATTN_FP32) {
        attention_bf16(k, t);
        return;
    }
    const int32_t d = t->head_dim, KB = EMBER_ATTN_KBLOCK;
    float *kt = t->scratch;                      /* KB/16 panels x d x 16 */
    float *s = kt + (int64_t)d * KB;             /* QBLOCK x KB           */
    float *o = s + EMBER_ATTN_QBLOCK * KB;       /* QBLOCK x d            */
    float *mrow = o + EMBER_ATTN_QBLOCK * d;     /* QBLOCK                */
    float *lrow = mrow + EMBER_ATTN_QBLOCK;      /* QBLOCK                */
    const int32_t nq = t->q1 - t->q0;
    int32_t ks, ke;
    key_range(t, &ks, &ke);
    start_rows(o, mrow, lrow, nq, d);

    for (int32_t kb = ks; kb < ke; kb += KB) {
        const int32_t nk = ke - kb < KB ? ke - kb : KB;
        const int32_t n_panels = (nk + 15) / 16;
        /* K^T panels: kt[(p * d + c) * 16 + jj] = K[kb + 16p + jj][c] */
        if (k->pack_kt_f32 && d % 16 == 0)
            k->pack_kt_f32(t->k + (int64_t)kb * t->ld, t->ld, nk, d, kt);
        else
            pack_kt_scalar(t->k + (int64_t)kb * t->ld, t->ld, nk, d, kt);
        /* S = Q K^T, panels of 16 keys (d x 16 each), several per tile */
        for (int32_t p = 0, np; p < n_panels; p += np) {
            const ember_gemm_variant *w = tile_for(k, t, p, n_panels);
            np = w ? w->panels : 1;
            ember_gemm_tile g = {.nr = 16 * np, .kc = d, .lda = t->ld_q, .bp = kt + (int64_t)p * d * 16,
                                 .ldb = 16, .ldp = (int64_t)d * 16, .ldc = KB};
            gemm_rows(k, w, &g, nq, t->q, s + p * 16, KB);
        }
        softmax_tile(k, t, s, o, mrow, lrow, nq, kb, nk, NULL, 0);
        /* O += P V, panels of 16 output columns, V read in place */
        for (int32_t c0 = 0, np; c0 < d; c0 += 16 * np) {
            const ember_gemm_variant *w = tile_for(k, t, c0 / 16, d / 16);
            np = w ? w->panels : 1;
            ember_gemm_tile pv = {.nr = 16 * np, .kc = nk, .lda = KB, .bp = t->v + (int64_t)kb * t->ld + c0,
                                  .ldb = t->ld, .ldp = 16, .ldc = d, .ld_init = d, .init = o};
            gemm_rows(k, w, &pv, nq, s, o + c0, d);
        }
    }
    finish_rows(t, o, lrow, nq);
}
