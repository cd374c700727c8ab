/*
 * bert.c — classic BERT encoders (BertModel: bge, MiniLM, e5, gte-small...).
 *
 * Post-LayerNorm transformer with learned absolute positions:
 *   x = LN(word[id] + pos[p] + type[0])
 *   per layer: a = Attn(x); x = LN(a Wo + bo + x); x = LN(act(x Wi + bi) Wo2 + bo2 + x)
 * Padding-free: every row of x is a real token; attention keeps to each
 * sequence's own rows. Q, K and V land side by side in one (tokens, 3H)
 * buffer so attention reads them with one stride.
 */
#include <math.h>
#include <stdlib.h>

#include "core/util.h"
#include "models/arch.h"

typedef struct bert_layer {
    ember_weight q, q_b, k, k_b, v, v_b;  /* attention.self.{query,key,value} */
    ember_weight o, o_b, ln1_g, ln1_b;    /* attention.output.{dense,LayerNorm} */
    ember_weight in, in_b;                /* intermediate.dense */
    ember_weight out, out_b, ln2_g, ln2_b; /* output.{dense,LayerNorm} */
} bert_layer;

typedef struct bert_weights {
    ember_weight word, pos, type, ln_g, ln_b;
    bert_layer *layers;
    int32_t n_layers;
} bert_weights;

/* LayerNorm parameters: ".weight"/".bias", or ".gamma"/".beta" in old
 * TensorFlow-converted checkpoints. */
static ember_status load_ln(ember_wloader *L, const char *base, int64_t h, ember_weight *g,
                            ember_weight *b) {
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, h, -1, true, g, "%s.weight", base));
    if (g->data) {
        EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, h, -1, false, b, "%s.bias", base));
        return EMBER_OK;
    }
    ember_status st = ember_wloadf(L, EMBER_W_VECTOR, h, -1, true, g, "%s.gamma", base);
    if (st == EMBER_OK && g->data)
        return ember_wloadf(L, EMBER_W_VECTOR, h, -1, false, b, "%s.beta", base);
    if (st != EMBER_OK)
        return st;
    /* neither spelling: report the canonical name */
    return ember_wloadf(L, EMBER_W_VECTOR, h, -1, false, g, "%s.weight", base);
}

static void bert_release(const ember_driver *drv, void *p) {
    bert_weights *w = p;
    if (!w)
        return;
    ember_weight *top[] = {&w->word, &w->pos, &w->type, &w->ln_g, &w->ln_b};
    for (size_t i = 0; i < EMBER_ARRAY_LEN(top); i++)
        ember_wrelease(drv, top[i]);
    for (int32_t l = 0; w->layers && l < w->n_layers; l++) {
        ember_weight *all = (ember_weight *)&w->layers[l];
        for (size_t i = 0; i < sizeof(bert_layer) / sizeof(ember_weight); i++)
            ember_wrelease(drv, &all[i]);
    }
    free(w->layers);
    free(w);
}

static ember_status load_layer(const ember_hparams *hp, ember_wloader *L, int32_t l,
                               bert_layer *y) {
    const int64_t h = hp->hidden_size, inter = hp->intermediate_size;
    char base[96];
    const char *lin[3] = {"query", "key", "value"};
    ember_weight *w[3] = {&y->q, &y->k, &y->v}, *b[3] = {&y->q_b, &y->k_b, &y->v_b};
    for (int i = 0; i < 3; i++) {
        EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, h, h, false, w[i],
                               "encoder.layer.%d.attention.self.%s.weight", l, lin[i]));
        EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, h, -1, false, b[i],
                               "encoder.layer.%d.attention.self.%s.bias", l, lin[i]));
    }
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, h, h, false, &y->o,
                           "encoder.layer.%d.attention.output.dense.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, h, -1, false, &y->o_b,
                           "encoder.layer.%d.attention.output.dense.bias", l));
    snprintf(base, sizeof base, "encoder.layer.%d.attention.output.LayerNorm", l);
    EMBER_TRY(load_ln(L, base, h, &y->ln1_g, &y->ln1_b));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, inter, h, false, &y->in,
                           "encoder.layer.%d.intermediate.dense.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, inter, -1, false, &y->in_b,
                           "encoder.layer.%d.intermediate.dense.bias", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, h, inter, false, &y->out,
                           "encoder.layer.%d.output.dense.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, h, -1, false, &y->out_b,
                           "encoder.layer.%d.output.dense.bias", l));
    snprintf(base, sizeof base, "encoder.layer.%d.output.LayerNorm", l);
    return load_ln(L, base, h, &y->ln2_g, &y->ln2_b);
}

static ember_status bert_load(const ember_hparams *hp, ember_wloader *L, void **out) {
    *out = NULL;
    bert_weights *w = ember_calloc(1, sizeof *w, "bert weights");
    if (!w)
        return EMBER_E_NOMEM;
    w->layers = ember_calloc((size_t)hp->n_layers, sizeof *w->layers, "bert layers");
    if (!w->layers) {
        free(w);
        return EMBER_E_NOMEM;
    }
    w->n_layers = hp->n_layers;
    const int64_t h = hp->hidden_size;
    ember_status st =
        ember_wload(L, "embeddings.word_embeddings.weight", EMBER_W_TABLE, hp->vocab_size, h, false,
                    &w->word);
    if (st == EMBER_OK)
        st = ember_wload(L, "embeddings.position_embeddings.weight", EMBER_W_TABLE,
                         hp->max_position_embeddings, h, false, &w->pos);
    if (st == EMBER_OK && hp->type_vocab_size > 0)
        st = ember_wload(L, "embeddings.token_type_embeddings.weight", EMBER_W_TABLE,
                         hp->type_vocab_size, h, false, &w->type);
    if (st == EMBER_OK)
        st = load_ln(L, "embeddings.LayerNorm", h, &w->ln_g, &w->ln_b);
    for (int32_t l = 0; st == EMBER_OK && l < hp->n_layers; l++)
        st = load_layer(hp, L, l, &w->layers[l]);
    if (st != EMBER_OK) {
        bert_release(L->drv, w);
        return st;
    }
    *out = w;
    return EMBER_OK;
}

static size_t bert_arena_bytes(const ember_hparams *hp, int64_t t) {
    const size_t h = (size_t)hp->hidden_size, inter = (size_t)hp->intermediate_size;
    size_t f = sizeof(float);
    return ember_arena_need(t * h * f) * 3 +      /* x, attention context, h */
           ember_arena_need(t * 3 * h * f) +      /* qkv                     */
           ember_arena_need(t * inter * f) +      /* intermediate            */
           ember_arena_need(t * h * f) * 4;       /* first-token last layer  */
}

/* The last layer when only each sequence's first token is wanted (CLS
 * pooling): K and V still cover every token, but Q, attention output, the
 * FFN and both LayerNorms run on one row per sequence. For bge-small that
 * skips 10/12 of the last layer's matrix work. */
static ember_status last_layer_first_only(const ember_hparams *hp, const bert_layer *y,
                                          const ember_driver *drv, void *dctx, ember_arena *arena,
                                          const ember_batch *b, float *x, float *qkv, float *inter,
                                          float **hidden) {
    const ember_driver_ops *op = drv->ops;
    const int64_t T = b->n_tokens, H = hp->hidden_size, I = hp->intermediate_size;
    const int64_t n = b->seqs.n_seqs;
    const float eps = hp->layer_norm_eps;
    float *xq, *q, *ctx, *tmp;
    EMBER_ARENA_ALLOC(arena, xq, n * H);  /* (n, H) first-token rows of x */
    EMBER_ARENA_ALLOC(arena, q, n * H);   /* (n, H)                       */
    EMBER_ARENA_ALLOC(arena, ctx, n * H); /* (n, H)                       */
    EMBER_ARENA_ALLOC(arena, tmp, n * H); /* (n, H)                       */
    for (int i = 1; i < 3; i++) {
        const ember_weight *w = i == 1 ? &y->k : &y->v, *bias = i == 1 ? &y->k_b : &y->v_b;
        ember_linear_args a = {.x = x, .ldx = H, .rows = T, .w = w, .bias = bias,
                               .y = qkv + i * H, .ldy = 3 * H};
        EMBER_TRY(op->linear(dctx, &a));
    }
    /* x viewed as a table: gather the row where each sequence starts */
    ember_weight xview = {.kind = EMBER_W_TABLE, .dtype = EMBER_DT_F32, .rows = T, .cols = H,
                          .data = x, .name = "hidden"};
    EMBER_TRY(op->gather(dctx, &xview, b->seqs.start_dev, n, xq, 0));
    ember_linear_args aq = {.x = xq, .ldx = H, .rows = n, .w = &y->q, .bias = &y->q_b, .y = q, .ldy = H};
    EMBER_TRY(op->linear(dctx, &aq));
    ember_attn_args at = {.qkv = qkv, .ld_qkv = 3 * H, .seqs = &b->seqs, .n_heads = hp->n_heads,
                          .head_dim = hp->head_dim, .scale = 1.0f / sqrtf((float)hp->head_dim),
                          .out = ctx, .ld_out = H, .first_only = 1, .q = q, .ld_q = H};
    EMBER_TRY(op->attention(dctx, &at));
    ember_linear_args ao = {.x = ctx, .ldx = H, .rows = n, .w = &y->o, .bias = &y->o_b,
                            .residual = xq, .ldr = H, .y = tmp, .ldy = H};
    EMBER_TRY(op->linear(dctx, &ao));
    EMBER_TRY(op->layer_norm(dctx, tmp, NULL, &y->ln1_g, &y->ln1_b, eps, n, H, xq));
    ember_linear_args fi = {.x = xq, .ldx = H, .rows = n, .w = &y->in, .bias = &y->in_b,
                            .act = hp->hidden_act, .y = inter, .ldy = I};
    EMBER_TRY(op->linear(dctx, &fi));
    ember_linear_args fo = {.x = inter, .ldx = I, .rows = n, .w = &y->out, .bias = &y->out_b,
                            .residual = xq, .ldr = H, .y = tmp, .ldy = H};
    EMBER_TRY(op->linear(dctx, &fo));
    EMBER_TRY(op->layer_norm(dctx, tmp, NULL, &y->ln2_g, &y->ln2_b, eps, n, H, xq));
    *hidden = xq;
    return EMBER_OK;
}

static ember_status bert_forward(const ember_hparams *hp, const void *wp, const ember_driver *drv,
                                 void *dctx, ember_arena *arena, const ember_batch *b,
                                 float **hidden, int *compact) {
    const bert_weights *w = wp;
    const ember_driver_ops *op = drv->ops;
    const int64_t T = b->n_tokens, H = hp->hidden_size, I = hp->intermediate_size;
    const float eps = hp->layer_norm_eps;
    float *x, *qkv, *ctx, *tmp, *inter;
    EMBER_ARENA_ALLOC(arena, x, T * H);     /* (T, H)  */
    EMBER_ARENA_ALLOC(arena, qkv, T * 3 * H); /* (T, 3H) */
    EMBER_ARENA_ALLOC(arena, ctx, T * H);   /* (T, H)  */
    EMBER_ARENA_ALLOC(arena, tmp, T * H);   /* (T, H)  */
    EMBER_ARENA_ALLOC(arena, inter, T * I); /* (T, I)  */

    EMBER_TRY(op->gather(dctx, &w->word, b->ids, T, x, 0));
    EMBER_TRY(op->gather(dctx, &w->pos, b->positions, T, x, 1));
    if (w->type.data)
        EMBER_TRY(op->gather(dctx, &w->type, b->zeros, T, x, 1));
    EMBER_TRY(op->layer_norm(dctx, x, NULL, &w->ln_g, &w->ln_b, eps, T, H, x));

    const float scale = 1.0f / sqrtf((float)hp->head_dim);
    *compact = 0;
    for (int32_t l = 0; l < hp->n_layers; l++) {
        const bert_layer *y = &w->layers[l];
        if (b->first_only && l == hp->n_layers - 1) {
            *compact = 1;
            return last_layer_first_only(hp, y, drv, dctx, arena, b, x, qkv, inter, hidden);
        }
        const ember_weight *wq[3] = {&y->q, &y->k, &y->v}, *bq[3] = {&y->q_b, &y->k_b, &y->v_b};
        for (int i = 0; i < 3; i++) {
            ember_linear_args a = {.x = x, .ldx = H, .rows = T, .w = wq[i], .bias = bq[i],
                                   .act = EMBER_ACT_NONE, .y = qkv + i * H, .ldy = 3 * H};
            EMBER_TRY(op->linear(dctx, &a));
        }
        ember_attn_args at = {.qkv = qkv, .ld_qkv = 3 * H, .seqs = &b->seqs,
                              .n_heads = hp->n_heads, .head_dim = hp->head_dim, .scale = scale,
                              .window = 0, .out = ctx, .ld_out = H};
        EMBER_TRY(op->attention(dctx, &at));
        ember_linear_args ao = {.x = ctx, .ldx = H, .rows = T, .w = &y->o, .bias = &y->o_b,
                                .residual = x, .ldr = H, .y = tmp, .ldy = H};
        EMBER_TRY(op->linear(dctx, &ao));
        EMBER_TRY(op->layer_norm(dctx, tmp, NULL, &y->ln1_g, &y->ln1_b, eps, T, H, x));
        ember_linear_args fi = {.x = x, .ldx = H, .rows = T, .w = &y->in, .bias = &y->in_b,
                                .act = hp->hidden_act, .y = inter, .ldy = I};
        EMBER_TRY(op->linear(dctx, &fi));
        ember_linear_args fo = {.x = inter, .ldx = I, .rows = T, .w = &y->out, .bias = &y->out_b,
                                .residual = x, .ldr = H, .y = tmp, .ldy = H};
        EMBER_TRY(op->linear(dctx, &fo));
        EMBER_TRY(op->layer_norm(dctx, tmp, NULL, &y->ln2_g, &y->ln2_b, eps, T, H, x));
    }
    *hidden = x;
    return EMBER_OK;
}

const ember_arch ember_arch_bert = {
    .name = "bert",
    .id = EMBER_ARCH_BERT,
    .default_pooling = EMBER_POOLING_CLS,
    .default_normalize = true,
    .probe_tensor = "embeddings.word_embeddings.weight",
    .load = bert_load,
    .release = bert_release,
    .arena_bytes = bert_arena_bytes,
    .forward = bert_forward,
};
