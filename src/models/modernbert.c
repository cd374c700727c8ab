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
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "io/json.h"
#include "models/arch.h"

typedef struct mb_layer {
    ember_weight attn_norm_g, attn_norm_b; /* absent on layer 0 */
    ember_weight wqkv, wqkv_b, wo, wo_b;
    ember_weight mlp_norm_g, mlp_norm_b;
    ember_weight wi, wi_b, wo2, wo2_b;
} mb_layer;

typedef struct mb_weights {
    ember_weight tok, norm_g, norm_b, final_g, final_b;
    ember_weight rope_global, rope_local; /* cos/sin tables [max_pos, head_dim] */
    mb_layer *layers;
} mb_weights;

/* Both the original ModernBERT keys (global_attn_every_n_layers,
 * global_rope_theta, local_rope_theta, local_attention) and the spellings of
 * newer transformers versions (layer_types, rope_parameters, sliding_window)
 * are accepted. */
static ember_status mb_parse_config(const json_t *root, const char *what, ember_hparams *hp) {
    EMBER_TRY(ember_cfg_common(root, what, hp, 8192));
    hp->type_vocab_size = 0;
    EMBER_TRY(ember_cfg_int(root, what, "pad_token_id", -1, EMBER_CFG_MAX_VOCAB, true, 50283,
                            &hp->pad_token_id));
    EMBER_TRY(ember_cfg_float(root, what, "norm_eps", 0.0, 1.0, 1e-5, &hp->layer_norm_eps));
    EMBER_TRY(ember_cfg_act(root, what, "hidden_activation", "gelu", &hp->hidden_act));
    EMBER_TRY(ember_cfg_bool(root, what, "attention_bias", false, &hp->attention_bias));
    EMBER_TRY(ember_cfg_bool(root, what, "mlp_bias", false, &hp->mlp_bias));
    EMBER_TRY(ember_cfg_bool(root, what, "norm_bias", false, &hp->norm_bias));
    if (hp->head_dim % 2 != 0)
        return ember_error(EMBER_E_FORMAT, "%s: head dimension %d must be even for RoPE", what,
                           hp->head_dim);

    /* window: local_attention (full width) or newer sliding_window (half) */
    int32_t half = 0;
    if (json_object_get(root, "local_attention")) {
        EMBER_TRY(ember_cfg_int(root, what, "local_attention", 2, EMBER_CFG_MAX_POS, true, 128,
                                &hp->local_attention));
    } else if (json_object_get(root, "sliding_window")) {
        EMBER_TRY(ember_cfg_int(root, what, "sliding_window", 1, EMBER_CFG_MAX_POS, true, 64, &half));
        hp->local_attention = 2 * half;
    } else {
        hp->local_attention = 128;
    }

    EMBER_TRY(ember_cfg_int(root, what, "global_attn_every_n_layers", 1, EMBER_MAX_LAYERS, true, 3,
                            &hp->global_attn_every_n_layers));
    EMBER_TRY(ember_cfg_float(root, what, "global_rope_theta", 1.0, 1e12, 160000.0,
                              &hp->global_rope_theta));
    /* HF: a null local_rope_theta falls back to the global one */
    EMBER_TRY(ember_cfg_float(root, what, "local_rope_theta", 1.0, 1e12, hp->global_rope_theta,
                              &hp->local_rope_theta));
    if (!json_object_get(root, "local_rope_theta") && !json_object_get(root, "rope_parameters"))
        hp->local_rope_theta = 10000.0f;
    EMBER_TRY(ember_cfg_rope_theta(root, what, "full_attention", &hp->global_rope_theta));
    EMBER_TRY(ember_cfg_rope_theta(root, what, "sliding_attention", &hp->local_rope_theta));

    ember_status lt = ember_cfg_layer_types(root, what, hp);
    if (lt != EMBER_OK && lt != EMBER_E_NOT_FOUND)
        return lt;
    if (lt == EMBER_E_NOT_FOUND) {
        for (int32_t l = 0; l < hp->n_layers; l++)
            hp->layer_global[l] = (l % hp->global_attn_every_n_layers) == 0;
    }
    return EMBER_OK;
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
    mb_weights *w = ember_wloader_alloc(L, sizeof *w);
    if (!w || !(w->layers = ember_wloader_alloc(L, sizeof *w->layers * (size_t)hp->n_layers)))
        return EMBER_E_NOMEM;
    EMBER_TRY(ember_wload(L, "embeddings.tok_embeddings.weight", EMBER_W_TABLE, hp->vocab_size,
                          hp->hidden_size, false, &w->tok));
    EMBER_TRY(load_norm(L, hp, "embeddings.norm", &w->norm_g, &w->norm_b));
    for (int32_t l = 0; l < hp->n_layers; l++)
        EMBER_TRY(load_layer(hp, L, l, &w->layers[l]));
    EMBER_TRY(load_norm(L, hp, "final_norm", &w->final_g, &w->final_b));
    EMBER_TRY(ember_wload_rope_table(L, hp->head_dim, hp->max_position_embeddings,
                                     hp->global_rope_theta, "rope.global", &w->rope_global));
    EMBER_TRY(ember_wload_rope_table(L, hp->head_dim, hp->max_position_embeddings,
                                     hp->local_rope_theta, "rope.local", &w->rope_local));
    *out = w;
    return EMBER_OK;
}

/* The MLP runs over at most MLP_CHUNK tokens at a time: its (tokens, 3I)
 * intermediates would otherwise dominate the memory of long inputs (113 MB
 * of 264 MB for one 8192-token input of ModernBERT-base). */
#define MLP_CHUNK 2048

static size_t mb_arena_bytes(const ember_hparams *hp, int64_t t) {
    const int64_t h = hp->hidden_size, inter = hp->intermediate_size;
    const int64_t c = t < MLP_CHUNK ? t : MLP_CHUNK;
    return ember_act_bytes(t, h) * 3 +     /* x, attention context, normed */
           ember_act_bytes(t, 3 * h) +     /* qkv                          */
           ember_act_bytes(c, 2 * inter) + /* Wi output, one chunk         */
           ember_act_bytes(c, inter) +     /* GeGLU output, one chunk      */
           ember_act_bytes(t, 3 * h) +     /* first-token last layer: q    */
           ember_act_bytes(t, h) * 3;      /* ... x, context, normed       */
}

/* The MLP of the rows of x (in place: x += Wo2(GeGLU(LN(x) Wi))), in chunks
 * of at most gate.rows rows. */
static ember_status mlp(const ember_fwd *f, const mb_layer *y, ember_view x, ember_view normed,
                        ember_view gate, ember_view act) {
    const ember_hparams *hp = f->hp;
    const ember_driver_ops *op = f->op;
    void *dctx = f->dctx;
    const int64_t rows = x.rows, chunk = gate.rows;
    EMBER_TRY(op->layer_norm(dctx, x, ember_view_none(), &y->mlp_norm_g, ember_wopt(&y->mlp_norm_b),
                             hp->layer_norm_eps, normed));
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int64_t n = rows - r0 < chunk ? rows - r0 : chunk;
        const ember_view g = ember_view_rows(gate, 0, n), a = ember_view_rows(act, 0, n);
        const ember_view xr = ember_view_rows(x, r0, n);
        ember_linear_args ai = {.x = ember_view_rows(normed, r0, n), .w = &y->wi,
                                .bias = ember_wopt(&y->wi_b), .y = g};
        EMBER_TRY(op->linear(dctx, &ai));
        EMBER_TRY(op->glu(dctx, g, EMBER_ACT_GELU, a));
        ember_linear_args a2 = {.x = a, .w = &y->wo2, .bias = ember_wopt(&y->wo2_b),
                                .residual = xr, .y = xr};
        EMBER_TRY(op->linear(dctx, &a2));
    }
    return EMBER_OK;
}

/* The rest of the last layer for first tokens only (CLS pooling): attention
 * of each sequence's first query, then the MLP and the final norm on one row
 * per sequence. */
static ember_status last_layer_first_only(const ember_fwd *f, const mb_layer *y, ember_view x,
                                          ember_view qkv, ember_view gate, ember_view act,
                                          bool global, ember_view *hidden) {
    const ember_hparams *hp = f->hp;
    const mb_weights *w = f->weights;
    const ember_driver_ops *op = f->op;
    void *dctx = f->dctx;
    const ember_batch *b = f->b;
    const int64_t n = b->seqs.n_seqs, H = hp->hidden_size;
    ember_view qf, xf, cf, nf;
    EMBER_TRY(ember_fwd_alloc(f, n, 3 * H, &qf)); /* (n, 3H) first-token rows of qkv */
    EMBER_TRY(ember_fwd_alloc(f, n, H, &xf));     /* (n, H)  first-token rows of x   */
    EMBER_TRY(ember_fwd_alloc(f, n, H, &cf));     /* (n, H)  attention output        */
    EMBER_TRY(ember_fwd_alloc(f, n, H, &nf));     /* (n, H)  normed                  */
    EMBER_TRY(op->select_rows(dctx, qkv, &b->seqs, EMBER_ROWS_FIRST, qf));
    EMBER_TRY(op->select_rows(dctx, x, &b->seqs, EMBER_ROWS_FIRST, xf));
    ember_attn_args af = {.q = ember_view_cols(qf, 0, H), .k = ember_view_cols(qkv, H, H),
                          .v = ember_view_cols(qkv, 2 * H, H), .seqs = &b->seqs,
                          .n_heads = hp->n_heads, .n_kv_heads = hp->n_heads,
                          .head_dim = hp->head_dim, .scale = 1.0f / sqrtf((float)hp->head_dim),
                          .window = global ? 0 : hp->local_attention / 2,
                          .rows = EMBER_ROWS_FIRST, .out = cf};
    EMBER_TRY(op->attention(dctx, &af));
    ember_linear_args ao = {.x = cf, .w = &y->wo, .bias = ember_wopt(&y->wo_b), .residual = xf,
                            .y = xf};
    EMBER_TRY(op->linear(dctx, &ao));
    EMBER_TRY(mlp(f, y, xf, nf, gate, act));
    EMBER_TRY(op->layer_norm(dctx, xf, ember_view_none(), &w->final_g, ember_wopt(&w->final_b),
                             hp->layer_norm_eps, xf));
    *hidden = xf;
    return EMBER_OK;
}

static ember_status mb_forward(const ember_fwd *f, ember_view *hidden, int *compact) {
    const ember_hparams *hp = f->hp;
    const mb_weights *w = f->weights;
    const ember_driver_ops *op = f->op;
    void *dctx = f->dctx;
    const ember_batch *b = f->b;
    const int64_t T = b->n_tokens, H = hp->hidden_size, I = hp->intermediate_size;
    const float eps = hp->layer_norm_eps;
    const ember_view none = ember_view_none();
    ember_view x, qkv, ctx, normed, gate, act;
    EMBER_TRY(ember_fwd_alloc(f, T, H, &x));       /* (T, H)  residual stream */
    EMBER_TRY(ember_fwd_alloc(f, T, 3 * H, &qkv)); /* (T, 3H)                 */
    EMBER_TRY(ember_fwd_alloc(f, T, H, &ctx));     /* (T, H)  attention out   */
    EMBER_TRY(ember_fwd_alloc(f, T, H, &normed));  /* (T, H)  pre-norm input  */
    const int64_t C = T < MLP_CHUNK ? T : MLP_CHUNK;
    EMBER_TRY(ember_fwd_alloc(f, C, 2 * I, &gate)); /* (C, 2I) Wi output      */
    EMBER_TRY(ember_fwd_alloc(f, C, I, &act));      /* (C, I)  GeGLU output   */
    const ember_view q = ember_view_cols(qkv, 0, H), k = ember_view_cols(qkv, H, H),
                     v = ember_view_cols(qkv, 2 * H, H);

    EMBER_TRY(op->gather(dctx, &w->tok, b->ids, x, 0));
    EMBER_TRY(op->layer_norm(dctx, x, none, &w->norm_g, ember_wopt(&w->norm_b), eps, x));

    const float scale = 1.0f / sqrtf((float)hp->head_dim);
    for (int32_t l = 0; l < hp->n_layers; l++) {
        const mb_layer *y = &w->layers[l];
        const bool global = hp->layer_global[l];
        ember_view in = x;
        if (l > 0) {
            EMBER_TRY(op->layer_norm(dctx, x, none, &y->attn_norm_g, ember_wopt(&y->attn_norm_b),
                                     eps, normed));
            in = normed;
        }
        ember_linear_args aq = {.x = in, .w = &y->wqkv, .bias = ember_wopt(&y->wqkv_b), .y = qkv};
        EMBER_TRY(op->linear(dctx, &aq));
        ember_rope_args rp = {.q = q, .k = k, .head_dim = hp->head_dim, .positions = b->positions,
                              .table = global ? &w->rope_global : &w->rope_local};
        EMBER_TRY(op->rope(dctx, &rp));
        if (b->only == EMBER_ROWS_FIRST && l == hp->n_layers - 1) {
            *compact = 1;
            return last_layer_first_only(f, y, x, qkv, gate, act, global, hidden);
        }
        ember_attn_args at = {.q = q, .k = k, .v = v, .seqs = &b->seqs, .n_heads = hp->n_heads,
                              .n_kv_heads = hp->n_heads, .head_dim = hp->head_dim,
                              .scale = scale, .window = global ? 0 : hp->local_attention / 2,
                              .out = ctx};
        EMBER_TRY(op->attention(dctx, &at));
        ember_linear_args ao = {.x = ctx, .w = &y->wo, .bias = ember_wopt(&y->wo_b), .residual = x,
                                .y = x};
        EMBER_TRY(op->linear(dctx, &ao));
        EMBER_TRY(mlp(f, y, x, normed, gate, act));
    }
    EMBER_TRY(op->layer_norm(dctx, x, none, &w->final_g, ember_wopt(&w->final_b), eps, x));
    *hidden = x;
    *compact = 0;
    return EMBER_OK;
}

static const char *const mb_model_types[] = {"modernbert", NULL};

const ember_arch ember_arch_modernbert = {
    .name = "modernbert",
    .model_types = mb_model_types,
    .default_pooling = EMBER_POOLING_MEAN,
    .default_normalize = true,
    .probe_tensor = "embeddings.tok_embeddings.weight",
    .ops = EMBER_OP_BIT(EMBER_OP_GATHER) | EMBER_OP_BIT(EMBER_OP_SELECT_ROWS) |
           EMBER_OP_BIT(EMBER_OP_LAYER_NORM) | EMBER_OP_BIT(EMBER_OP_LINEAR) |
           EMBER_OP_BIT(EMBER_OP_GLU) | EMBER_OP_BIT(EMBER_OP_ROPE) |
           EMBER_OP_BIT(EMBER_OP_ATTENTION),
    .parse_config = mb_parse_config,
    .load = mb_load,
    .arena_bytes = mb_arena_bytes,
    .forward = mb_forward,
};
