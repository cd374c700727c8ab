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
 */
#include <math.h>
#include <string.h>

#include "drivers/cpu/kernels.h"

static void gemm_rows(const ember_cpu_kernels *k, ember_gemm_tile *g, int32_t rows,
                      const float *a, float *c, int64_t c_step_rows) {
    for (int32_t i0 = 0; i0 < rows; i0 += k->mr) {
        g->mr = rows - i0 < k->mr ? rows - i0 : k->mr;
        g->a = a + (int64_t)i0 * g->lda;
        g->c = c + (int64_t)i0 * c_step_rows;
        if (g->init)
            g->init = g->c;
        k->gemm_tile(g);
    }
}

void ember_attention_tiled(const ember_cpu_kernels *k, const ember_attn_tile *t) {
    const int32_t d = t->head_dim, KB = EMBER_ATTN_KBLOCK;
    float *kt = t->scratch;                      /* KB/16 panels x d x 16 */
    float *s = kt + (int64_t)d * KB;             /* QBLOCK x KB           */
    float *o = s + EMBER_ATTN_QBLOCK * KB;       /* QBLOCK x d            */
    float *mrow = o + EMBER_ATTN_QBLOCK * d;     /* QBLOCK                */
    float *lrow = mrow + EMBER_ATTN_QBLOCK;      /* QBLOCK                */
    const int32_t nq = t->q1 - t->q0;

    int32_t ks = 0, ke = t->len;
    if (t->window > 0) {
        ks = t->q0 - t->window > 0 ? t->q0 - t->window : 0;
        ke = t->q1 + t->window < t->len ? t->q1 + t->window : t->len;
    }
    if (t->causal && ke > t->q1)
        ke = t->q1; /* the last query sees keys up to itself */
    for (int32_t i = 0; i < nq; i++) {
        mrow[i] = -INFINITY;
        lrow[i] = 0.0f;
    }
    memset(o, 0, sizeof(float) * (size_t)nq * (size_t)d);

    for (int32_t kb = ks; kb < ke; kb += KB) {
        const int32_t nk = ke - kb < KB ? ke - kb : KB;
        const int32_t n_panels = (nk + 15) / 16;
        /* K^T panels: kt[(p * d + c) * 16 + jj] = K[kb + 16p + jj][c] */
        for (int32_t p = 0; p < n_panels; p++) {
            float *panel = kt + (int64_t)p * d * 16;
            for (int32_t jj = 0; jj < 16; jj++) {
                int32_t j = p * 16 + jj;
                const float *krow = j < nk ? t->k + (int64_t)(kb + j) * t->ld : NULL;
                for (int32_t c = 0; c < d; c++)
                    panel[c * 16 + jj] = krow ? krow[c] : 0.0f;
            }
        }
        /* S = Q K^T, one 16-key panel at a time */
        for (int32_t p = 0; p < n_panels; p++) {
            ember_gemm_tile g = {.nr = 16, .kc = d, .lda = t->ld_q, .bp = kt + (int64_t)p * d * 16,
                                 .ldb = 16, .ldc = KB};
            gemm_rows(k, &g, nq, t->q, s + p * 16, KB);
        }
        /* softmax pieces per row; P replaces S, zero outside the window */
        for (int32_t i = 0; i < nq; i++) {
            float *srow = s + (int64_t)i * KB;
            int32_t qi = t->q0 + i, j0 = 0, j1 = nk;
            if (t->window > 0) {
                int32_t lo = qi - t->window - kb, hi = qi + t->window + 1 - kb;
                j0 = lo > 0 ? lo : 0;
                j1 = hi < nk ? hi : nk;
            }
            if (t->causal && qi + 1 - kb < j1)
                j1 = qi + 1 - kb;
            if (j0 >= j1) {
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
            memset(srow, 0, sizeof(float) * (size_t)j0);
            float lsum = k->row_exp(srow + j0, j1 - j0, row_scale, nm);
            memset(srow + j1, 0, sizeof(float) * (size_t)(nk - j1));
            lrow[i] = lrow[i] * corr + lsum;
            mrow[i] = nm;
        }
        /* O += P V, 16 output columns at a time, V read in place */
        for (int32_t c0 = 0; c0 < d; c0 += 16) {
            ember_gemm_tile pv = {.nr = 16, .kc = nk, .lda = KB, .bp = t->v + (int64_t)kb * t->ld + c0,
                                  .ldb = t->ld, .ldc = d, .ld_init = d, .init = o};
            gemm_rows(k, &pv, nq, s, o + c0, d);
        }
    }
    for (int32_t i = 0; i < nq; i++) {
        float *dst = t->out + (int64_t)i * t->ld_out;
        const float *orow = o + (int64_t)i * d;
        float inv = lrow[i] > 0.0f ? 1.0f / lrow[i] : 0.0f;
        for (int32_t c = 0; c < d; c++)
            dst[c] = orow[c] * inv;
    }
}
