/*
 * gemma3.c — Gemma 3 text decoders used as bidirectional encoders
 * (google/embeddinggemma-300m: Gemma3TextModel + mean pooling + Dense
 * 768 -> 3072 -> 768 + Normalize; the Dense chain is the backend's).
 *
 *   x = embed[id] * sqrt(hidden)            (the gather multiplies: table->gather_scale)
 *   per layer l: h = RMSNorm1p(x); q, k, v = h Wq, h Wk, h Wv
 *                q, k = RMSNorm1p per head; q, k = RoPE(theta_l)
 *                x += RMSNorm1p(Attn_l(q, k, v) Wo)          (post-attention norm)
 *                x += RMSNorm1p(Wdown(gelu_tanh(RMSNorm1p(x) Wgate) * (RMSNorm1p(x) Wup)))
 *   x = RMSNorm1p(x)
 * RMSNorm1p scales by (1 + w). Layers alternate between sliding and full
 * attention (layer_types); with use_bidirectional_attention, full layers see
 * every token and sliding layers the keys with |i - j| <= sliding_window / 2, with
 * their own RoPE base (rope_local_base_freq). Scores are scaled by
 * query_pre_attn_scalar^-1/2, not head_dim^-1/2.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "io/json.h"
#include "models/arch.h"

typedef struct gemma3_layer {
    ember_weight in_norm, wq, wk, wv, wo, q_norm, k_norm, post_attn_norm;
    ember_weight pre_ff_norm, wgate, wup, wdown, post_ff_norm;
} gemma3_layer;

typedef struct gemma3_weights {
    ember_weight embed, final_norm, rope_global, rope_local;
    gemma3_layer *layers;
} gemma3_weights;

static ember_status gemma3_parse_config(const json_t *root, const char *what, ember_hparams *hp) {
    EMBER_TRY(ember_cfg_common(root, what, hp, 2048));
    EMBER_TRY(ember_cfg_int(root, what, "num_key_value_heads", 1, hp->n_heads, true, hp->n_heads,
                            &hp->n_kv_heads));
    if (hp->n_heads % hp->n_kv_heads != 0)
        return ember_error(EMBER_E_FORMAT,
                           "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                           what, hp->n_heads, hp->n_kv_heads);
    EMBER_TRY(ember_cfg_int(root, what, "head_dim", 2, 1024, true, 256, &hp->head_dim));
    if (hp->head_dim % 2 != 0)
        return ember_error(EMBER_E_FORMAT, "%s: head_dim %d must be even for RoPE", what, hp->head_dim);
    EMBER_TRY(ember_cfg_float(root, what, "rms_norm_eps", 0.0, 1.0, 1e-6, &hp->layer_norm_eps));
    EMBER_TRY(ember_cfg_act(root, what, "hidden_activation", "gelu_pytorch_tanh", &hp->hidden_act));
    EMBER_TRY(ember_cfg_float(root, what, "query_pre_attn_scalar", 1e-6, 1e9, hp->head_dim,
                              &hp->attn_scale));
    hp->attn_scale = 1.0f / sqrtf(hp->attn_scale);
    bool bias = false, bidirectional = false;
    EMBER_TRY(ember_cfg_bool(root, what, "attention_bias", false, &bias));
    if (bias)
        return ember_error(EMBER_E_UNSUPPORTED, "%s: attention_bias = true is not supported for Gemma 3",
                           what);
    EMBER_TRY(ember_cfg_bool(root, what, "use_bidirectional_attention", false, &bidirectional));
    if (!bidirectional)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "%s: Gemma 3 is supported as a bidirectional encoder (EmbeddingGemma: "
                           "use_bidirectional_attention = true); causal Gemma 3 is not",
                           what);
    const json_t *softcap = json_object_get(root, "attn_logit_softcapping");
    if (softcap && !json_is_null(softcap))
        return ember_error(EMBER_E_UNSUPPORTED, "%s: attn_logit_softcapping is not supported", what);
    const json_t *scaling = json_object_get(root, "rope_scaling");
    if (scaling && !json_is_null(scaling))
        return ember_error(EMBER_E_UNSUPPORTED, "%s: rope_scaling is not supported", what);
    EMBER_TRY(ember_cfg_float(root, what, "rope_theta", 1.0, 1e12, 1000000.0, &hp->global_rope_theta));
    EMBER_TRY(ember_cfg_float(root, what, "rope_local_base_freq", 1.0, 1e12, 10000.0,
                              &hp->local_rope_theta));
    EMBER_TRY(ember_cfg_rope_theta(root, what, "full_attention", &hp->global_rope_theta));
    EMBER_TRY(ember_cfg_rope_theta(root, what, "sliding_attention", &hp->local_rope_theta));
    int32_t window = 0;
    EMBER_TRY(ember_cfg_int(root, what, "sliding_window", 2, EMBER_CFG_MAX_POS, true, 512, &window));
    /* Bidirectional Gemma 3 reads the stored window as a full width:
     * transformers converts it to sliding_window // 2 + 1 and keeps keys
     * with |i - j| < that, i.e. the driver's |i - j| <= sliding_window // 2
     * (EmbeddingGemma: 512 -> 256 tokens on each side). */
    hp->local_attention = window / 2;
    ember_status lt = ember_cfg_layer_types(root, what, hp);
    if (lt != EMBER_OK && lt != EMBER_E_NOT_FOUND)
        return lt;
    if (lt == EMBER_E_NOT_FOUND) {
        /* Gemma 3's default: every sixth layer is global */
        int32_t every = 6;
        EMBER_TRY(ember_cfg_int(root, what, "sliding_window_pattern", 1, EMBER_MAX_LAYERS, true, 6,
                                &every));
        for (int32_t l = 0; l < hp->n_layers; l++)
            hp->layer_global[l] = (l + 1) % every == 0;
    }
    return EMBER_OK;
}

static ember_status load_norm(ember_wloader *L, int64_t n, int32_t l, const char *part,
                              ember_weight *w) {
    return ember_wloadf(L, EMBER_W_VECTOR, n, -1, false, w, "layers.%d.%s.weight", l, part);
}

static ember_status load_layer(const ember_hparams *hp, ember_wloader *L, int32_t l,
                               gemma3_layer *y) {
    const int64_t H = hp->hidden_size, I = hp->intermediate_size, d = hp->head_dim;
    const int64_t nq = (int64_t)hp->n_heads * d, nkv = (int64_t)hp->n_kv_heads * d;
    EMBER_TRY(load_norm(L, H, l, "input_layernorm", &y->in_norm));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, nq, H, false, &y->wq, "layers.%d.self_attn.q_proj.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, nkv, H, false, &y->wk, "layers.%d.self_attn.k_proj.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, nkv, H, false, &y->wv, "layers.%d.self_attn.v_proj.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, H, nq, false, &y->wo, "layers.%d.self_attn.o_proj.weight", l));
    EMBER_TRY(load_norm(L, d, l, "self_attn.q_norm", &y->q_norm));
    EMBER_TRY(load_norm(L, d, l, "self_attn.k_norm", &y->k_norm));
    EMBER_TRY(load_norm(L, H, l, "post_attention_layernorm", &y->post_attn_norm));
    EMBER_TRY(load_norm(L, H, l, "pre_feedforward_layernorm", &y->pre_ff_norm));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, I, H, false, &y->wgate, "layers.%d.mlp.gate_proj.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, I, H, false, &y->wup, "layers.%d.mlp.up_proj.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, H, I, false, &y->wdown, "layers.%d.mlp.down_proj.weight", l));
    return load_norm(L, H, l, "post_feedforward_layernorm", &y->post_ff_norm);
}

/* The embedding table, gathered times sqrt(hidden): Gemma3TextScaledWordEmbedding
 * multiplies each gathered row by the fp32 scale, one product per element,
 * which the gather does (gather_scale). The table itself is loaded like any
 * other: scaling a copy of it at load held three copies of EmbeddingGemma's
 * 805 MB F32 table at once (file pages, the scaled copy, the driver's copy:
 * 2.5 GB of peak RSS for 1.2 GB of weights) and widened a BF16 one to F32. */
static ember_status load_scaled_embedding(const ember_hparams *hp, ember_wloader *L,
                                          ember_weight *out) {
    EMBER_TRY(ember_wload(L, "embed_tokens.weight", EMBER_W_TABLE, hp->vocab_size, hp->hidden_size,
                          false, out));
    out->gather_scale = sqrtf((float)hp->hidden_size);
    return EMBER_OK;
}

static ember_status gemma3_load(const ember_hparams *hp, ember_wloader *L, void **out) {
    *out = NULL;
    if (hp->hidden_act != EMBER_ACT_GELU_TANH && hp->hidden_act != EMBER_ACT_GELU)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "config.json: Gemma 3 hidden_activation must be gelu_pytorch_tanh");
    gemma3_weights *w = ember_wloader_alloc(L, sizeof *w);
    if (!w || !(w->layers = ember_wloader_alloc(L, sizeof *w->layers * (size_t)hp->n_layers)))
        return EMBER_E_NOMEM;
    EMBER_TRY(load_scaled_embedding(hp, L, &w->embed));
    for (int32_t l = 0; l < hp->n_layers; l++)
        EMBER_TRY(load_layer(hp, L, l, &w->layers[l]));
    EMBER_TRY(ember_wload(L, "norm.weight", EMBER_W_VECTOR, hp->hidden_size, -1, false, &w->final_norm));
    EMBER_TRY(ember_wload_rope_table(L, hp->head_dim, hp->max_position_embeddings,
                                     hp->global_rope_theta, "rope.global", &w->rope_global));
    EMBER_TRY(ember_wload_rope_table(L, hp->head_dim, hp->max_position_embeddings,
                                     hp->local_rope_theta, "rope.local", &w->rope_local));
    *out = w;
    return EMBER_OK;
}

#define MLP_CHUNK 2048

static size_t gemma3_arena_bytes(const ember_hparams *hp, int64_t t) {
    const int64_t H = hp->hidden_size, I = hp->intermediate_size;
    const int64_t nq = (int64_t)hp->n_heads * hp->head_dim, nkv = (int64_t)hp->n_kv_heads * hp->head_dim;
    const int64_t c = t < MLP_CHUNK ? t : MLP_CHUNK;
    return ember_act_bytes(t, H) * 3 +                         /* x, h, branch out */
           ember_act_bytes(t, nq) * 2 + ember_act_bytes(t, nkv) * 2 + /* q, ctx, k, v */
           ember_act_bytes(c, 2 * I) + ember_act_bytes(c, I);  /* MLP chunk        */
}

/* out = residual + x / rms(x) * (1 + w), residual optional */
static ember_status norm1p(const ember_fwd *f, ember_view x, const ember_weight *w, int64_t group,
                           ember_view residual, ember_view out) {
    ember_rms_args a = {.x = x, .w = w, .eps = f->hp->layer_norm_eps, .offset = 1.0f,
                        .group = group, .residual = residual, .out = out};
    return f->op->rms_norm(f->dctx, &a);
}

static ember_status gemma3_forward(const ember_fwd *f, ember_view *hidden, int *compact) {
    const ember_hparams *hp = f->hp;
    const gemma3_weights *w = f->weights;
    const ember_driver_ops *op = f->op;
    void *dctx = f->dctx;
    const ember_batch *b = f->b;
    const int64_t T = b->n_tokens, H = hp->hidden_size, I = hp->intermediate_size;
    const int64_t d = hp->head_dim, nq = (int64_t)hp->n_heads * d, nkv = (int64_t)hp->n_kv_heads * d;
    ember_view x, h, br, q, k, v, ctx, gu, act;
    EMBER_TRY(ember_fwd_alloc(f, T, H, &x));     /* (T, H)   residual stream   */
    EMBER_TRY(ember_fwd_alloc(f, T, H, &h));     /* (T, H)   normed            */
    EMBER_TRY(ember_fwd_alloc(f, T, H, &br));    /* (T, H)   a branch's output */
    EMBER_TRY(ember_fwd_alloc(f, T, nq, &q));    /* (T, nq)                    */
    EMBER_TRY(ember_fwd_alloc(f, T, nkv, &k));   /* (T, nkv)                   */
    EMBER_TRY(ember_fwd_alloc(f, T, nkv, &v));   /* (T, nkv)                   */
    EMBER_TRY(ember_fwd_alloc(f, T, nq, &ctx));  /* (T, nq)    attention out   */
    const int64_t C = T < MLP_CHUNK ? T : MLP_CHUNK;
    EMBER_TRY(ember_fwd_alloc(f, C, 2 * I, &gu)); /* (C, 2I) [gate | up]       */
    EMBER_TRY(ember_fwd_alloc(f, C, I, &act));    /* (C, I)                    */

    EMBER_TRY(op->gather(dctx, &w->embed, b->ids, x, 0));
    for (int32_t l = 0; l < hp->n_layers; l++) {
        const gemma3_layer *y = &w->layers[l];
        const bool global = hp->layer_global[l];
        EMBER_TRY(norm1p(f, x, &y->in_norm, H, ember_view_none(), h));
        ember_linear_args lq = {.x = h, .w = &y->wq, .y = q}, lk = {.x = h, .w = &y->wk, .y = k},
                          lv = {.x = h, .w = &y->wv, .y = v};
        EMBER_TRY(op->linear(dctx, &lq));
        EMBER_TRY(op->linear(dctx, &lk));
        EMBER_TRY(op->linear(dctx, &lv));
        EMBER_TRY(norm1p(f, q, &y->q_norm, d, ember_view_none(), q));
        EMBER_TRY(norm1p(f, k, &y->k_norm, d, ember_view_none(), k));
        ember_rope_args rp = {.q = q, .k = k, .head_dim = (int32_t)d, .positions = b->positions,
                              .table = global ? &w->rope_global : &w->rope_local};
        EMBER_TRY(op->rope(dctx, &rp));
        ember_attn_args at = {.q = q, .k = k, .v = v, .seqs = &b->seqs, .n_heads = hp->n_heads,
                              .n_kv_heads = hp->n_kv_heads, .head_dim = (int32_t)d,
                              .scale = hp->attn_scale, .window = global ? 0 : hp->local_attention,
                              .out = ctx};
        EMBER_TRY(op->attention(dctx, &at));
        ember_linear_args lo = {.x = ctx, .w = &y->wo, .y = br};
        EMBER_TRY(op->linear(dctx, &lo));
        EMBER_TRY(norm1p(f, br, &y->post_attn_norm, H, x, x)); /* x += norm(attention) */
        EMBER_TRY(norm1p(f, x, &y->pre_ff_norm, H, ember_view_none(), h));
        for (int64_t r0 = 0; r0 < T; r0 += C) {
            const int64_t m = T - r0 < C ? T - r0 : C;
            const ember_view hr = ember_view_rows(h, r0, m), brr = ember_view_rows(br, r0, m);
            const ember_view g = ember_view_rows(gu, 0, m), a = ember_view_rows(act, 0, m);
            ember_linear_args lg = {.x = hr, .w = &y->wgate, .y = ember_view_cols(g, 0, I)};
            ember_linear_args lu = {.x = hr, .w = &y->wup, .y = ember_view_cols(g, I, I)};
            EMBER_TRY(op->linear(dctx, &lg));
            EMBER_TRY(op->linear(dctx, &lu));
            EMBER_TRY(op->glu(dctx, g, (ember_act)hp->hidden_act, a));
            ember_linear_args ld = {.x = a, .w = &y->wdown, .y = brr};
            EMBER_TRY(op->linear(dctx, &ld));
        }
        EMBER_TRY(norm1p(f, br, &y->post_ff_norm, H, x, x)); /* x += norm(MLP) */
    }
    EMBER_TRY(norm1p(f, x, &w->final_norm, H, ember_view_none(), x));
    *hidden = x;
    *compact = 0;
    return EMBER_OK;
}

static const char *const gemma3_model_types[] = {"gemma3_text", NULL};

const ember_arch ember_arch_gemma3 = {
    .name = "gemma3",
    .model_types = gemma3_model_types,
    .default_pooling = EMBER_POOLING_MEAN,
    .default_normalize = true,
    .probe_tensor = "embed_tokens.weight",
    .ops = EMBER_OP_BIT(EMBER_OP_GATHER) | EMBER_OP_BIT(EMBER_OP_RMS_NORM) |
           EMBER_OP_BIT(EMBER_OP_LINEAR) | EMBER_OP_BIT(EMBER_OP_GLU) |
           EMBER_OP_BIT(EMBER_OP_ROPE) | EMBER_OP_BIT(EMBER_OP_ATTENTION),
    .parse_config = gemma3_parse_config,
    .load = gemma3_load,
    .arena_bytes = gemma3_arena_bytes,
    .forward = gemma3_forward,
};
