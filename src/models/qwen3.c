/*
 * qwen3.c — Qwen3 decoders as embedding models (Qwen/Qwen3-Embedding-0.6B,
 * -4B, -8B: Qwen3Model + last-token pooling + L2 normalize).
 *
 * Pre-RMSNorm decoder with grouped-query causal attention:
 *   x = embed[id]
 *   per layer: h = RMSNorm(x); q, k, v = h Wq, h Wk, h Wv  (+ biases, and on Wo, if attention_bias)
 *              q, k = RMSNorm per head (q_norm, k_norm); q, k = RoPE(q, k, rope_theta)
 *              x += Attn_causal(q, k, v) Wo                  (n_kv_heads < n_heads: GQA)
 *              x += Wdown(silu(RMSNorm(x) Wgate) * (RMSNorm(x) Wup))
 *   x = RMSNorm(x)
 * head_dim comes from the config (128 for every Qwen3 size, not hidden /
 * heads). With last-token pooling only the last token of each sequence
 * matters after the last layer's keys and values, so that layer's attention
 * output, projection and MLP run on one row per sequence. Packed without
 * padding, "last" is each sequence's own last token (HF pads on the left to
 * get the same). Long inputs: attention is tiled (bounded memory) and the
 * MLP runs over chunks of tokens.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "io/json.h"
#include "models/arch.h"

typedef struct qwen3_layer {
    ember_weight in_norm, wq, wq_b, wk, wk_b, wv, wv_b, wo, wo_b, q_norm, k_norm;
    ember_weight post_norm, wgate, wup, wdown;
} qwen3_layer;

typedef struct qwen3_weights {
    ember_weight embed, final_norm, rope;
    qwen3_layer *layers;
} qwen3_weights;

static ember_status qwen3_parse_config(const json_t *root, const char *what, ember_hparams *hp) {
    EMBER_TRY(ember_cfg_common(root, what, hp, 32768));
    EMBER_TRY(ember_cfg_int(root, what, "num_key_value_heads", 1, hp->n_heads, true, hp->n_heads,
                            &hp->n_kv_heads));
    if (hp->n_heads % hp->n_kv_heads != 0)
        return ember_error(EMBER_E_FORMAT,
                           "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                           what, hp->n_heads, hp->n_kv_heads);
    /* head_dim may be absent or null: hidden / heads */
    const json_t *hd = json_object_get(root, "head_dim");
    if (hd && !json_is_null(hd))
        EMBER_TRY(ember_cfg_int(root, what, "head_dim", 2, 1024, false, 0, &hp->head_dim));
    if (hp->head_dim % 2 != 0)
        return ember_error(EMBER_E_FORMAT, "%s: head_dim %d must be even for RoPE", what,
                           hp->head_dim);
    EMBER_TRY(ember_cfg_float(root, what, "rms_norm_eps", 0.0, 1.0, 1e-6, &hp->layer_norm_eps));
    EMBER_TRY(ember_cfg_act(root, what, "hidden_act", "silu", &hp->hidden_act));
    EMBER_TRY(ember_cfg_bool(root, what, "attention_bias", false, &hp->attention_bias));
    EMBER_TRY(ember_cfg_float(root, what, "rope_theta", 1.0, 1e12, 1000000.0,
                              &hp->global_rope_theta));
    EMBER_TRY(ember_cfg_rope_theta(root, what, NULL, &hp->global_rope_theta));
    const json_t *scaling = json_object_get(root, "rope_scaling");
    if (scaling && !json_is_null(scaling))
        return ember_error(EMBER_E_UNSUPPORTED,
                           "%s: rope_scaling is not supported (only plain RoPE with rope_theta)",
                           what);
    bool sliding = false;
    EMBER_TRY(ember_cfg_bool(root, what, "use_sliding_window", false, &sliding));
    if (sliding)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "%s: use_sliding_window = true is not supported (Qwen3 embedding models "
                           "use full attention)",
                           what);
    return EMBER_OK;
}

static ember_status load_layer(const ember_hparams *hp, ember_wloader *L, int32_t l,
                               qwen3_layer *y) {
    const int64_t H = hp->hidden_size, I = hp->intermediate_size, d = hp->head_dim;
    const int64_t nq = (int64_t)hp->n_heads * d, nkv = (int64_t)hp->n_kv_heads * d;
    const bool bias = hp->attention_bias;
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, H, -1, false, &y->in_norm,
                           "layers.%d.input_layernorm.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, nq, H, false, &y->wq, "layers.%d.self_attn.q_proj.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, nq, -1, !bias, &y->wq_b, "layers.%d.self_attn.q_proj.bias", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, nkv, H, false, &y->wk, "layers.%d.self_attn.k_proj.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, nkv, -1, !bias, &y->wk_b, "layers.%d.self_attn.k_proj.bias", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, nkv, H, false, &y->wv, "layers.%d.self_attn.v_proj.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, nkv, -1, !bias, &y->wv_b, "layers.%d.self_attn.v_proj.bias", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, H, nq, false, &y->wo, "layers.%d.self_attn.o_proj.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, H, -1, !bias, &y->wo_b, "layers.%d.self_attn.o_proj.bias", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, d, -1, false, &y->q_norm, "layers.%d.self_attn.q_norm.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, d, -1, false, &y->k_norm, "layers.%d.self_attn.k_norm.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, H, -1, false, &y->post_norm,
                           "layers.%d.post_attention_layernorm.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, I, H, false, &y->wgate, "layers.%d.mlp.gate_proj.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, I, H, false, &y->wup, "layers.%d.mlp.up_proj.weight", l));
    return ember_wloadf(L, EMBER_W_MATRIX, H, I, false, &y->wdown, "layers.%d.mlp.down_proj.weight", l);
}

static ember_status qwen3_load(const ember_hparams *hp, ember_wloader *L, void **out) {
    *out = NULL;
    if (hp->hidden_act != EMBER_ACT_SILU)
        return ember_error(EMBER_E_UNSUPPORTED, "config.json: Qwen3 hidden_act must be \"silu\"");
    qwen3_weights *w = ember_wloader_alloc(L, sizeof *w);
    if (!w || !(w->layers = ember_wloader_alloc(L, sizeof *w->layers * (size_t)hp->n_layers)))
        return EMBER_E_NOMEM;
    EMBER_TRY(ember_wload(L, "embed_tokens.weight", EMBER_W_TABLE, hp->vocab_size, hp->hidden_size,
                          false, &w->embed));
    for (int32_t l = 0; l < hp->n_layers; l++)
        EMBER_TRY(load_layer(hp, L, l, &w->layers[l]));
    EMBER_TRY(ember_wload(L, "norm.weight", EMBER_W_VECTOR, hp->hidden_size, -1, false,
                          &w->final_norm));
    EMBER_TRY(ember_wload_rope_table(L, hp->head_dim, hp->max_position_embeddings,
                                     hp->global_rope_theta, "rope", &w->rope));
    *out = w;
    return EMBER_OK;
}

/* The MLP's (tokens, 3I) intermediates would dominate long inputs: it runs
 * over at most MLP_CHUNK tokens at a time. */
#define MLP_CHUNK 2048

static size_t qwen3_arena_bytes(const ember_hparams *hp, int64_t t) {
    const int64_t H = hp->hidden_size, I = hp->intermediate_size;
    const int64_t nq = (int64_t)hp->n_heads * hp->head_dim, nkv = (int64_t)hp->n_kv_heads * hp->head_dim;
    const int64_t c = t < MLP_CHUNK ? t : MLP_CHUNK;
    return ember_act_bytes(t, H) * 2 +                          /* x, h           */
           ember_act_bytes(t, nq) * 2 +                         /* q, attention   */
           ember_act_bytes(t, nkv) * 2 +                        /* k, v           */
           ember_act_bytes(c, 2 * I) + ember_act_bytes(c, I) +  /* MLP chunk      */
           ember_act_bytes(t, nq) * 2 + ember_act_bytes(t, H) * 2; /* last-token rows */
}

/* x += Wdown(silu(RMSNorm(x) Wgate) * (RMSNorm(x) Wup)) over the rows of x,
 * in chunks of gu.rows rows; h is scratch of x's shape. */
static ember_status mlp(const ember_fwd *f, const qwen3_layer *y, ember_view x, ember_view h,
                        ember_view gu, ember_view act) {
    const ember_driver_ops *op = f->op;
    void *dctx = f->dctx;
    const int64_t I = f->hp->intermediate_size, rows = x.rows, chunk = gu.rows;
    ember_rms_args n = {.x = x, .w = &y->post_norm, .eps = f->hp->layer_norm_eps,
                        .group = x.cols, .out = h};
    EMBER_TRY(op->rms_norm(dctx, &n));
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int64_t m = rows - r0 < chunk ? rows - r0 : chunk;
        const ember_view hr = ember_view_rows(h, r0, m), xr = ember_view_rows(x, r0, m);
        const ember_view g = ember_view_rows(gu, 0, m), a = ember_view_rows(act, 0, m);
        ember_linear_args lg = {.x = hr, .w = &y->wgate, .y = ember_view_cols(g, 0, I)};
        ember_linear_args lu = {.x = hr, .w = &y->wup, .y = ember_view_cols(g, I, I)};
        EMBER_TRY(op->linear(dctx, &lg));
        EMBER_TRY(op->linear(dctx, &lu));
        EMBER_TRY(op->glu(dctx, g, EMBER_ACT_SILU, a));
        ember_linear_args ld = {.x = a, .w = &y->wdown, .residual = xr, .y = xr};
        EMBER_TRY(op->linear(dctx, &ld));
    }
    return EMBER_OK;
}

static ember_status qwen3_forward(const ember_fwd *f, ember_view *hidden, int *compact) {
    const ember_hparams *hp = f->hp;
    const qwen3_weights *w = f->weights;
    const ember_driver_ops *op = f->op;
    void *dctx = f->dctx;
    const ember_batch *b = f->b;
    const int64_t T = b->n_tokens, H = hp->hidden_size, I = hp->intermediate_size;
    const int64_t d = hp->head_dim, nq = (int64_t)hp->n_heads * d, nkv = (int64_t)hp->n_kv_heads * d;
    const float eps = hp->layer_norm_eps;
    ember_view x, h, q, k, v, ctx, gu, act;
    EMBER_TRY(ember_fwd_alloc(f, T, H, &x));     /* (T, H)    residual stream */
    EMBER_TRY(ember_fwd_alloc(f, T, H, &h));     /* (T, H)    normed          */
    EMBER_TRY(ember_fwd_alloc(f, T, nq, &q));    /* (T, nq)                   */
    EMBER_TRY(ember_fwd_alloc(f, T, nkv, &k));   /* (T, nkv)                  */
    EMBER_TRY(ember_fwd_alloc(f, T, nkv, &v));   /* (T, nkv)                  */
    EMBER_TRY(ember_fwd_alloc(f, T, nq, &ctx));  /* (T, nq)   attention out   */
    const int64_t C = T < MLP_CHUNK ? T : MLP_CHUNK;
    EMBER_TRY(ember_fwd_alloc(f, C, 2 * I, &gu)); /* (C, 2I) [gate | up]      */
    EMBER_TRY(ember_fwd_alloc(f, C, I, &act));    /* (C, I)                   */

    EMBER_TRY(op->gather(dctx, &w->embed, b->ids, x, 0));
    const float scale = 1.0f / sqrtf((float)d);
    const bool last_only = b->only == EMBER_ROWS_LAST;
    for (int32_t l = 0; l < hp->n_layers; l++) {
        const qwen3_layer *y = &w->layers[l];
        ember_rms_args n1 = {.x = x, .w = &y->in_norm, .eps = eps, .group = H, .out = h};
        EMBER_TRY(op->rms_norm(dctx, &n1));
        ember_linear_args lq = {.x = h, .w = &y->wq, .bias = ember_wopt(&y->wq_b), .y = q};
        ember_linear_args lk = {.x = h, .w = &y->wk, .bias = ember_wopt(&y->wk_b), .y = k};
        ember_linear_args lv = {.x = h, .w = &y->wv, .bias = ember_wopt(&y->wv_b), .y = v};
        EMBER_TRY(op->linear(dctx, &lq));
        EMBER_TRY(op->linear(dctx, &lk));
        EMBER_TRY(op->linear(dctx, &lv));
        ember_rms_args nq_ = {.x = q, .w = &y->q_norm, .eps = eps, .group = d, .out = q};
        ember_rms_args nk_ = {.x = k, .w = &y->k_norm, .eps = eps, .group = d, .out = k};
        EMBER_TRY(op->rms_norm(dctx, &nq_));
        EMBER_TRY(op->rms_norm(dctx, &nk_));
        ember_rope_args rp = {.q = q, .k = k, .head_dim = (int32_t)d, .positions = b->positions,
                              .table = &w->rope};
        EMBER_TRY(op->rope(dctx, &rp));
        ember_attn_args at = {.q = q, .k = k, .v = v, .seqs = &b->seqs, .n_heads = hp->n_heads,
                              .n_kv_heads = hp->n_kv_heads, .head_dim = (int32_t)d,
                              .scale = scale, .causal = 1, .out = ctx};
        if (last_only && l == hp->n_layers - 1) {
            /* last-token pooling: the rest of the layer on one row per sequence */
            const int64_t n = b->seqs.n_seqs;
            ember_view ql, cl, xl, hl;
            EMBER_TRY(ember_fwd_alloc(f, n, nq, &ql)); /* (n, nq) last queries    */
            EMBER_TRY(ember_fwd_alloc(f, n, nq, &cl)); /* (n, nq) their attention */
            EMBER_TRY(ember_fwd_alloc(f, n, H, &xl));  /* (n, H)  last rows of x  */
            EMBER_TRY(ember_fwd_alloc(f, n, H, &hl));  /* (n, H)  normed          */
            EMBER_TRY(op->select_rows(dctx, q, &b->seqs, EMBER_ROWS_LAST, ql));
            EMBER_TRY(op->select_rows(dctx, x, &b->seqs, EMBER_ROWS_LAST, xl));
            at.q = ql;
            at.out = cl;
            at.rows = EMBER_ROWS_LAST;
            EMBER_TRY(op->attention(dctx, &at));
            ember_linear_args lo = {.x = cl, .w = &y->wo, .bias = ember_wopt(&y->wo_b), .residual = xl,
                                    .y = xl};
            EMBER_TRY(op->linear(dctx, &lo));
            EMBER_TRY(mlp(f, y, xl, hl, gu, act));
            ember_rms_args nf = {.x = xl, .w = &w->final_norm, .eps = eps, .group = H, .out = xl};
            EMBER_TRY(op->rms_norm(dctx, &nf));
            *hidden = xl;
            *compact = 1;
            return EMBER_OK;
        }
        EMBER_TRY(op->attention(dctx, &at));
        ember_linear_args lo = {.x = ctx, .w = &y->wo, .bias = ember_wopt(&y->wo_b), .residual = x,
                                .y = x};
        EMBER_TRY(op->linear(dctx, &lo));
        EMBER_TRY(mlp(f, y, x, h, gu, act));
    }
    ember_rms_args nf = {.x = x, .w = &w->final_norm, .eps = eps, .group = H, .out = x};
    EMBER_TRY(op->rms_norm(dctx, &nf));
    *hidden = x;
    *compact = 0;
    return EMBER_OK;
}

static const char *const qwen3_model_types[] = {"qwen3", NULL};

const ember_arch ember_arch_qwen3 = {
    .name = "qwen3",
    .model_types = qwen3_model_types,
    .default_pooling = EMBER_POOLING_LAST_TOKEN,
    .default_normalize = true,
    .probe_tensor = "embed_tokens.weight",
    .ops = EMBER_OP_BIT(EMBER_OP_GATHER) | EMBER_OP_BIT(EMBER_OP_SELECT_ROWS) |
           EMBER_OP_BIT(EMBER_OP_RMS_NORM) | EMBER_OP_BIT(EMBER_OP_LINEAR) |
           EMBER_OP_BIT(EMBER_OP_GLU) | EMBER_OP_BIT(EMBER_OP_ROPE) |
           EMBER_OP_BIT(EMBER_OP_ATTENTION),
    .parse_config = qwen3_parse_config,
    .load = qwen3_load,
    .arena_bytes = qwen3_arena_bytes,
    .forward = qwen3_forward,
};
