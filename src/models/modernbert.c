/*
 * modernbert.c — ModernBERT encoders (answerdotai/ModernBERT-base,
 * nomic-ai/modernbert-embed-base, Alibaba-NLP/gte-modernbert-base).
 *
 * Pre-LayerNorm transformer with rotary positions and alternating attention:
 *   x = LN(tok[id])
 *   per layer l: h = (l == 0 ? x : LN_attn(x)); qkv = h Wqkv; RoPE(q, k);
 *                x += Attn(qkv) Wo;  x += Wo2(gelu(a) * g) where [a | g] = LN_mlp(x) Wi
 *   x = LN_final(x)
 * Global layers (layer_global[l]) attend to the whole sequence with
 * global_rope_theta; the others only to keys with |i - j| <= local_attention/2
 * with local_rope_theta. Biases of attention, MLP and norms are optional.
 * Attention runs tiled with an online softmax (the driver's attention op), so
 * an 8192-token input never materialises 8192 x 8192 scores.
 */
#include <math.h>
#include <stdlib.h>

#include "core/util.h"
#include "models/arch.h"

typedef struct mb_layer mb_layer;
struct mb_layer {
    ember_weight attn_norm_g, attn_norm_b; /* absent on layer 0 */
    ember_weight wqkv, wqkv_b, wo, wo_b;
    ember_weight mlp_norm_g, mlp_norm_b;
    ember_weight wi, wi_b, wo2, wo2_b;
};

typedef struct mb_weights {
    ember_weight tok, norm_g, norm_b, final_g, final_b;
    ember_weight rope_global, rope_local; /* cos/sin tables [max_pos, head_dim] */
    mb_layer *layers;
    int32_t n_layers;
} mb_weights;

static void mb_release(const ember_driver *drv, void *p) {
    mb_weights *w = p;
    if (!w)
        return;
    ember_weight *top[] = {&w->tok, &w->norm_g, &w->norm_b, &w->final_g, &w->final_b,
                           &w->rope_global, &w->rope_local};
    for (size_t i = 0; i < EMBER_ARRAY_LEN(top); i++)
        ember_wrelease(drv, top[i]);
    for (int32_t l = 0; w->layers && l < w->n_layers; l++) {
        ember_weight *all = (ember_weight *)&w->layers[l];
        for (size_t i = 0; i < sizeof(mb_layer) / sizeof(ember_weight); i++)
            ember_wrelease(drv, &all[i]);
    }
    free(w->layers);
    free(w);
}

/* cos/sin of position x inverse frequency, computed as transformers does in
 * fp32 (inv_freq = 1 / theta^(2i/d); angle = fp32(pos * inv_freq)), with the
 * trigonometry in double and rounded once. */
static ember_status build_rope_table(ember_wloader *L, const ember_hparams *hp, float theta,
                                     const char *name, ember_weight *out) {
    const int32_t d = hp->head_dim, half = d / 2;
    const int64_t rows = hp->max_position_embeddings;
    float *table = ember_malloc(sizeof(float) * (size_t)rows * (size_t)d, "rope table");
    float *inv = ember_malloc(sizeof(float) * (size_t)half, "rope table");
    if (!table || !inv) {
        free(table);
        free(inv);
        return EMBER_E_NOMEM;
    }
    for (int32_t i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)d;
        inv[i] = 1.0f / powf(theta, e);
    }
    for (int64_t p = 0; p < rows; p++) {
        for (int32_t i = 0; i < half; i++) {
            float angle = (float)p * inv[i];
            table[p * d + i] = (float)cos((double)angle);
            table[p * d + half + i] = (float)sin((double)angle);
        }
    }
    ember_status st = ember_wload_host(L, table, rows, d, name, out);
    free(table);
    free(inv);
    return st;
}

static ember_status load_norm(ember_wloader *L, const ember_hparams *hp, const char *base,
                              ember_weight *g, ember_weight *b) {
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, hp->hidden_size, -1, false, g, "%s.weight", base));
    return ember_wloadf(L, EMBER_W_VECTOR, hp->hidden_size, -1, !hp->norm_bias, b, "%s.bias", base);
}

static ember_status load_layer(const ember_hparams *hp, ember_wloader *L, int32_t l, mb_layer *y) {
    const int64_t h = hp->hidden_size, inter = hp->intermediate_size;
    char base[64];
    if (l > 0) {
        snprintf(base, sizeof base, "layers.%d.attn_norm", l);
        EMBER_TRY(load_norm(L, hp, base, &y->attn_norm_g, &y->attn_norm_b));
    }
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, 3 * h, h, false, &y->wqkv, "layers.%d.attn.Wqkv.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, 3 * h, -1, !hp->attention_bias, &y->wqkv_b,
                           "layers.%d.attn.Wqkv.bias", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, h, h, false, &y->wo, "layers.%d.attn.Wo.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, h, -1, !hp->attention_bias, &y->wo_b,
                           "layers.%d.attn.Wo.bias", l));
    snprintf(base, sizeof base, "layers.%d.mlp_norm", l);
    EMBER_TRY(load_norm(L, hp, base, &y->mlp_norm_g, &y->mlp_norm_b));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, 2 * inter, h, false, &y->wi, "layers.%d.mlp.Wi.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, 2 * inter, -1, !hp->mlp_bias, &y->wi_b,
                           "layers.%d.mlp.Wi.bias", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, h, inter, false, &y->wo2, "layers.%d.mlp.Wo.weight", l));
    return ember_wloadf(L, EMBER_W_VECTOR, h, -1, !hp->mlp_bias, &y->wo2_b, "layers.%d.mlp.Wo.bias", l);
}

static ember_status mb_load(const ember_hparams *hp, ember_wloader *L, void **out) {
    *out = NULL;
    if (hp->hidden_act != EMBER_ACT_GELU)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "config.json: ModernBERT hidden_activation must be \"gelu\" (GeGLU)");
    mb_weights *w = ember_calloc(1, sizeof *w, "modernbert weights");
    if (!w)
        return EMBER_E_NOMEM;
    w->layers = ember_calloc((size_t)hp->n_layers, sizeof *w->layers, "modernbert layers");
    if (!w->layers) {
        free(w);
        return EMBER_E_NOMEM;
    }
    w->n_layers = hp->n_layers;
    ember_status st = ember_wload(L, "embeddings.tok_embeddings.weight", EMBER_W_TABLE,
                                  hp->vocab_size, hp->hidden_size, false, &w->tok);
    if (st == EMBER_OK)
        st = load_norm(L, hp, "embeddings.norm", &w->norm_g, &w->norm_b);
    for (int32_t l = 0; st == EMBER_OK && l < hp->n_layers; l++)
        st = load_layer(hp, L, l, &w->layers[l]);
    if (st == EMBER_OK)
        st = load_norm(L, hp, "final_norm", &w->final_g, &w->final_b);
    if (st == EMBER_OK)
        st = build_rope_table(L, hp, hp->global_rope_theta, "rope.global", &w->rope_global);
    if (st == EMBER_OK)
        st = build_rope_table(L, hp, hp->local_rope_theta, "rope.local", &w->rope_local);
    if (st != EMBER_OK) {
        mb_release(L->drv, w);
        return st;
    }
    *out = w;
    return EMBER_OK;
}

/* The MLP runs over at most MLP_CHUNK tokens at a time: its (tokens, 3I)
 * intermediates would otherwise dominate the memory of long inputs (113 MB
 * of 264 MB for one 8192-token input of ModernBERT-base). */
#define MLP_CHUNK 2048

static size_t mb_arena_bytes(const ember_hparams *hp, int64_t t) {
    const size_t h = (size_t)hp->hidden_size, inter = (size_t)hp->intermediate_size;
    const size_t c = (size_t)(t < MLP_CHUNK ? t : MLP_CHUNK);
    size_t f = sizeof(float);
    return ember_arena_need(t * h * f) * 3 +    /* x, attention context, normed */
           ember_arena_need(t * 3 * h * f) +    /* qkv                          */
           ember_arena_need(c * 2 * inter * f) + /* Wi output, one chunk        */
           ember_arena_need(c * inter * f) +    /* GeGLU output, one chunk      */
           ember_arena_need(t * 3 * h * f) +    /* first-token last layer: q    */
           ember_arena_need(t * h * f) * 3;     /* ... x, context, normed       */
}

static const ember_weight *opt(const ember_weight *w);

/* The MLP of rows [0, rows) of x (in place: x += Wo2(GeGLU(LN(x) Wi))), in
 * chunks of at most `chunk` rows. */
static ember_status mlp(const ember_hparams *hp, const struct mb_layer *y, const ember_driver_ops *op,
                        void *dctx, float *x, float *normed, float *gate, float *act, int64_t rows,
                        int64_t chunk) {
    const int64_t H = hp->hidden_size, I = hp->intermediate_size;
    EMBER_TRY(op->layer_norm(dctx, x, NULL, &y->mlp_norm_g, opt(&y->mlp_norm_b),
                             hp->layer_norm_eps, rows, H, normed));
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int64_t n = rows - r0 < chunk ? rows - r0 : chunk;
        ember_linear_args ai = {.x = normed + r0 * H, .ldx = H, .rows = n, .w = &y->wi,
                                .bias = opt(&y->wi_b), .y = gate, .ldy = 2 * I};
        EMBER_TRY(op->linear(dctx, &ai));
        EMBER_TRY(op->geglu(dctx, gate, n, I, act));
        ember_linear_args a2 = {.x = act, .ldx = I, .rows = n, .w = &y->wo2, .bias = opt(&y->wo2_b),
                                .residual = x + r0 * H, .ldr = H, .y = x + r0 * H, .ldy = H};
        EMBER_TRY(op->linear(dctx, &a2));
    }
    return EMBER_OK;
}

static const ember_weight *opt(const ember_weight *w) { return w->data ? w : NULL; }

static ember_status mb_forward(const ember_hparams *hp, const void *wp, const ember_driver *drv,
                               void *dctx, ember_arena *arena, const ember_batch *b,
                               float **hidden, int *compact) {
    const mb_weights *w = wp;
    const ember_driver_ops *op = drv->ops;
    const int64_t T = b->n_tokens, H = hp->hidden_size, I = hp->intermediate_size;
    const float eps = hp->layer_norm_eps;
    float *x, *qkv, *ctx, *normed, *gate, *act;
    EMBER_ARENA_ALLOC(arena, x, T * H);         /* (T, H)  residual stream */
    EMBER_ARENA_ALLOC(arena, qkv, T * 3 * H);   /* (T, 3H)                 */
    EMBER_ARENA_ALLOC(arena, ctx, T * H);       /* (T, H)  attention out   */
    EMBER_ARENA_ALLOC(arena, normed, T * H);    /* (T, H)  pre-norm input  */
    const int64_t C = T < MLP_CHUNK ? T : MLP_CHUNK;
    EMBER_ARENA_ALLOC(arena, gate, C * 2 * I);  /* (C, 2I) Wi output       */
    EMBER_ARENA_ALLOC(arena, act, C * I);       /* (C, I)  GeGLU output    */

    EMBER_TRY(op->gather(dctx, &w->tok, b->ids, T, x, 0));
    EMBER_TRY(op->layer_norm(dctx, x, NULL, &w->norm_g, opt(&w->norm_b), eps, T, H, x));

    const float scale = 1.0f / sqrtf((float)hp->head_dim);
    for (int32_t l = 0; l < hp->n_layers; l++) {
        const mb_layer *y = &w->layers[l];
        const bool global = hp->layer_global[l];
        const float *in = x;
        if (l > 0) {
            EMBER_TRY(op->layer_norm(dctx, x, NULL, &y->attn_norm_g, opt(&y->attn_norm_b), eps, T,
                                     H, normed));
            in = normed;
        }
        ember_linear_args aq = {.x = in, .ldx = H, .rows = T, .w = &y->wqkv, .bias = opt(&y->wqkv_b),
                                .y = qkv, .ldy = 3 * H};
        EMBER_TRY(op->linear(dctx, &aq));
        ember_rope_args rp = {.qkv = qkv, .ld_qkv = 3 * H, .rows = T, .n_heads = hp->n_heads,
                              .head_dim = hp->head_dim, .positions = b->positions,
                              .table = global ? &w->rope_global : &w->rope_local};
        EMBER_TRY(op->rope(dctx, &rp));
        if (b->first_only && l == hp->n_layers - 1) {
            /* CLS pooling: the rest of the last layer only for first tokens */
            const int64_t n = b->seqs.n_seqs;
            float *qf, *xf, *cf, *nf;
            EMBER_ARENA_ALLOC(arena, qf, n * 3 * H); /* (n, 3H) first-token rows of qkv */
            EMBER_ARENA_ALLOC(arena, xf, n * H);     /* (n, H)  first-token rows of x   */
            EMBER_ARENA_ALLOC(arena, cf, n * H);     /* (n, H)  attention output        */
            EMBER_ARENA_ALLOC(arena, nf, n * H);     /* (n, H)  normed                  */
            ember_weight qview = {.kind = EMBER_W_TABLE, .dtype = EMBER_DT_F32, .rows = T,
                                  .cols = 3 * H, .data = qkv, .name = "qkv"};
            ember_weight xview = {.kind = EMBER_W_TABLE, .dtype = EMBER_DT_F32, .rows = T,
                                  .cols = H, .data = x, .name = "hidden"};
            EMBER_TRY(op->gather(dctx, &qview, b->seqs.start_dev, n, qf, 0));
            EMBER_TRY(op->gather(dctx, &xview, b->seqs.start_dev, n, xf, 0));
            ember_attn_args af = {.qkv = qkv, .ld_qkv = 3 * H, .seqs = &b->seqs,
                                  .n_heads = hp->n_heads, .head_dim = hp->head_dim, .scale = scale,
                                  .window = global ? 0 : hp->local_attention / 2, .out = cf,
                                  .ld_out = H, .first_only = 1, .q = qf, .ld_q = 3 * H};
            EMBER_TRY(op->attention(dctx, &af));
            ember_linear_args ao = {.x = cf, .ldx = H, .rows = n, .w = &y->wo, .bias = opt(&y->wo_b),
                                    .residual = xf, .ldr = H, .y = xf, .ldy = H};
            EMBER_TRY(op->linear(dctx, &ao));
            EMBER_TRY(mlp(hp, y, op, dctx, xf, nf, gate, act, n, C));
            EMBER_TRY(op->layer_norm(dctx, xf, NULL, &w->final_g, opt(&w->final_b), eps, n, H, xf));
            *hidden = xf;
            *compact = 1;
            return EMBER_OK;
        }
        ember_attn_args at = {.qkv = qkv, .ld_qkv = 3 * H, .seqs = &b->seqs,
                              .n_heads = hp->n_heads, .head_dim = hp->head_dim, .scale = scale,
                              .window = global ? 0 : hp->local_attention / 2, .out = ctx,
                              .ld_out = H};
        EMBER_TRY(op->attention(dctx, &at));
        ember_linear_args ao = {.x = ctx, .ldx = H, .rows = T, .w = &y->wo, .bias = opt(&y->wo_b),
                                .residual = x, .ldr = H, .y = x, .ldy = H};
        EMBER_TRY(op->linear(dctx, &ao));
        EMBER_TRY(mlp(hp, y, op, dctx, x, normed, gate, act, T, C));
    }
    EMBER_TRY(op->layer_norm(dctx, x, NULL, &w->final_g, opt(&w->final_b), eps, T, H, x));
    *hidden = x;
    *compact = 0;
    return EMBER_OK;
}

const ember_arch ember_arch_modernbert = {
    .name = "modernbert",
    .id = EMBER_ARCH_MODERNBERT,
    .default_pooling = EMBER_POOLING_MEAN,
    .default_normalize = true,
    .probe_tensor = "embeddings.tok_embeddings.weight",
    .load = mb_load,
    .release = mb_release,
    .arena_bytes = mb_arena_bytes,
    .forward = mb_forward,
};
