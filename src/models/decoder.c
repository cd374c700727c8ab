/*
 * decoder.c — Llama-family decoders as embedding models, four model_types
 * that differ only in a few switches:
 *   qwen3    Qwen/Qwen3-Embedding-0.6B/4B/8B: per-head q/k RMSNorms,
 *            biases on q, k, v and o when attention_bias
 *   qwen2    KaLM-Embedding, jina-code-embeddings: biases on q, k, v (never o)
 *   mistral  intfloat/e5-mistral-7b-instruct, Salesforce/SFR-Embedding-Mistral,
 *            Linq-Embed-Mistral, BAAI/bge-en-icl: no biases, a causal sliding
 *            window (sliding_window keys, 4096 when the key is absent)
 *   llama    biases on q, k, v and o when attention_bias, on the MLP when
 *            mlp_bias
 * Each is checked against its transformers class (Qwen3Model, Qwen2Model,
 * MistralModel, LlamaModel) by the goldens of scripts/make_goldens.py.
 *
 * Pre-RMSNorm decoder with grouped-query causal attention:
 *   x = embed[id]
 *   per layer: h = RMSNorm(x); q, k, v = h Wq, h Wk, h Wv        (+ biases)
 *              q, k = RMSNorm per head (qwen3); q, k = RoPE(q, k, rope_theta)
 *              x += Attn_causal(q, k, v) Wo   (GQA; keys i - W < j <= i on
 *                                              sliding-window layers)
 *              x += Wdown(silu(RMSNorm(x) Wgate) * (RMSNorm(x) Wup))
 *   x = RMSNorm(x)
 * head_dim comes from the config where it has one (128 for every Qwen3 size,
 * not hidden / heads). With last-token pooling only the last token of each
 * sequence matters after the last layer's keys and values, so that layer's
 * attention output, projection and MLP run on one row per sequence. Packed
 * without padding, "last" is each sequence's own last token (HF pads on the
 * left to get the same). Long inputs: attention is tiled (bounded memory)
 * and the MLP runs over chunks of tokens.
 *
 * Rerankers: FAMILYForSequenceClassification checkpoints (Qwen3-Reranker
 * converted to a score head) add `score` [labels, hidden], read at the last
 * token that is not pad_token_id (the backend drops trailing pad ids, which
 * a causal model's earlier states do not see).
 *
 * A config.json whose auto_map names its own modeling code for AutoModel
 * (gte-Qwen2-*-instruct: Qwen2 with bidirectional attention) is refused:
 * sentence-transformers runs that code with trust_remote_code=True, and the
 * transformers class Ember follows would give other vectors.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "io/json.h"
#include "models/arch.h"

typedef struct decoder_layer {
    ember_weight in_norm, wq, wq_b, wk, wk_b, wv, wv_b, wo, wo_b, q_norm, k_norm;
    ember_weight post_norm, wgate, wgate_b, wup, wup_b, wdown, wdown_b;
} decoder_layer;

typedef struct decoder_weights {
    ember_weight embed, final_norm, rope;
    ember_weight score; /* [num_labels, hidden]: *ForSequenceClassification */
    decoder_layer *layers;
} decoder_weights;

/* What tells the four model_types apart; the defaults are those of the
 * transformers config classes, for keys a config.json leaves out. */
typedef struct decoder_variant {
    const char *family;       /* messages, and FAMILYForSequenceClassification */
    int32_t default_kv_heads; /* absent num_key_value_heads (0: num_attention_heads) */
    int32_t default_max_pos;
    int32_t default_head_dim; /* absent head_dim (0: hidden / heads; null is
                                 hidden / heads for every type)                */
    bool qk_norm;
    enum { BIAS_FLAGGED, BIAS_QKV, BIAS_NONE } bias;
    bool mlp_bias;            /* mlp_bias is read (Llama)                      */
    enum { WINDOW_NONE, WINDOW_QWEN, WINDOW_MISTRAL } window;
} decoder_variant;

static const decoder_variant k_qwen3 = {"Qwen3", 32, 32768, 128, true, BIAS_FLAGGED, false, WINDOW_QWEN};
static const decoder_variant k_qwen2 = {"Qwen2", 32, 32768, 0, false, BIAS_QKV, false, WINDOW_QWEN};
static const decoder_variant k_mistral = {"Mistral", 8, 4096 * 32, 0, false, BIAS_NONE, false, WINDOW_MISTRAL};
static const decoder_variant k_llama = {"Llama", 0, 2048, 0, false, BIAS_FLAGGED, true, WINDOW_NONE};

/* Sliding-window layers. transformers keeps keys with i - W < j <= i: the
 * driver's causal window W - 1 (|i - j| <= W - 1). Qwen: only with
 * use_sliding_window, on the layers layer_types marks (else those from
 * max_window_layers on); Mistral: every layer unless sliding_window is
 * null. */
static ember_status parse_window(const json_t *root, const char *what, const decoder_variant *v,
                                 ember_hparams *hp) {
    for (int32_t l = 0; l < hp->n_layers; l++)
        hp->layer_global[l] = 1;
    hp->local_attention = 0;
    bool on = v->window == WINDOW_MISTRAL;
    if (v->window == WINDOW_QWEN)
        EMBER_TRY(ember_cfg_bool(root, what, "use_sliding_window", false, &on));
    const json_t *sw = json_object_get(root, "sliding_window");
    if (v->window == WINDOW_NONE || (sw && json_is_null(sw)) || !on) {
        if (v->window == WINDOW_QWEN) {
            /* layer_types may not ask for windows the config turned off */
            ember_status lt = ember_cfg_layer_types(root, what, hp);
            if (lt != EMBER_OK && lt != EMBER_E_NOT_FOUND)
                return lt;
            for (int32_t l = 0; l < hp->n_layers; l++)
                if (!hp->layer_global[l])
                    return ember_error(EMBER_E_FORMAT,
                                       "%s: layer_types[%d] is \"sliding_attention\" but the "
                                       "sliding window is off (use_sliding_window false or "
                                       "sliding_window null)",
                                       what, l);
        }
        return EMBER_OK;
    }
    int32_t window = 0;
    EMBER_TRY(ember_cfg_int(root, what, "sliding_window", 2, EMBER_CFG_MAX_POS, true, 4096, &window));
    hp->local_attention = window - 1;
    if (v->window == WINDOW_MISTRAL) {
        for (int32_t l = 0; l < hp->n_layers; l++)
            hp->layer_global[l] = 0;
        return EMBER_OK;
    }
    ember_status lt = ember_cfg_layer_types(root, what, hp);
    if (lt != EMBER_E_NOT_FOUND)
        return lt;
    int32_t first = 28;
    EMBER_TRY(ember_cfg_int(root, what, "max_window_layers", 0, EMBER_MAX_LAYERS, true, 28, &first));
    for (int32_t l = 0; l < hp->n_layers; l++)
        hp->layer_global[l] = l < first;
    return EMBER_OK;
}

/* FAMILYForSequenceClassification (rerankers converted to a score head:
 * Qwen3-Reranker's *-seq-cls checkpoints): `score` on the last token that is
 * not pad_token_id, as transformers' GenericForSequenceClassification reads
 * it (the last token when there is no pad_token_id). */
static ember_status parse_head(const json_t *root, const char *what, const decoder_variant *v,
                               ember_hparams *hp) {
    char name[64];
    snprintf(name, sizeof name, "%sForSequenceClassification", v->family);
    const json_t *archs = json_object_get(root, "architectures");
    size_t i;
    const json_t *a;
    json_array_foreach(archs, i, a) {
        if (json_is_string(a) && strcmp(json_string_value(a), name) == 0)
            hp->cls_head = EMBER_HEAD_SCORE;
    }
    hp->pad_token_id = -1;
    if (!hp->cls_head)
        return EMBER_OK;
    const json_t *pad = json_object_get(root, "pad_token_id");
    if (pad && !json_is_null(pad))
        EMBER_TRY(ember_cfg_int(root, what, "pad_token_id", 0, hp->vocab_size - 1, false, 0,
                                &hp->pad_token_id));
    return ember_cfg_num_labels(root, what, &hp->num_labels);
}

static ember_status parse_decoder(const json_t *root, const char *what, const decoder_variant *v,
                                  ember_hparams *hp) {
    EMBER_TRY(ember_cfg_common(root, what, hp, v->default_max_pos));
    const int32_t def_kv = v->default_kv_heads ? v->default_kv_heads : hp->n_heads;
    const json_t *kv = json_object_get(root, "num_key_value_heads");
    if (kv && json_is_null(kv))
        hp->n_kv_heads = hp->n_heads;
    else
        EMBER_TRY(ember_cfg_int(root, what, "num_key_value_heads", 1, hp->n_heads, true, def_kv,
                                &hp->n_kv_heads));
    if (hp->n_heads % hp->n_kv_heads != 0)
        return ember_error(EMBER_E_FORMAT,
                           "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                           what, hp->n_heads, hp->n_kv_heads);
    /* head_dim: the config's, else the class default; null: hidden / heads */
    const json_t *hd = json_object_get(root, "head_dim");
    if (!hd && v->default_head_dim)
        hp->head_dim = v->default_head_dim;
    else if (hd && !json_is_null(hd))
        EMBER_TRY(ember_cfg_int(root, what, "head_dim", 2, 1024, false, 0, &hp->head_dim));
    if (hp->head_dim % 2 != 0)
        return ember_error(EMBER_E_FORMAT, "%s: head_dim %d must be even for RoPE", what,
                           hp->head_dim);
    EMBER_TRY(ember_cfg_float(root, what, "rms_norm_eps", 0.0, 1.0, 1e-6, &hp->layer_norm_eps));
    EMBER_TRY(ember_cfg_act(root, what, "hidden_act", "silu", &hp->hidden_act));
    if (hp->hidden_act != EMBER_ACT_SILU)
        return ember_error(EMBER_E_UNSUPPORTED, "%s: %s hidden_act must be \"silu\"", what, v->family);
    hp->qk_norm = v->qk_norm;
    if (v->bias == BIAS_FLAGGED) {
        EMBER_TRY(ember_cfg_bool(root, what, "attention_bias", false, &hp->attention_bias));
        hp->out_bias = hp->attention_bias;
    } else {
        hp->attention_bias = v->bias == BIAS_QKV;
        hp->out_bias = false;
    }
    hp->mlp_bias = false;
    if (v->mlp_bias)
        EMBER_TRY(ember_cfg_bool(root, what, "mlp_bias", false, &hp->mlp_bias));
    EMBER_TRY(ember_cfg_float(root, what, "rope_theta", 1.0, 1e12, 10000.0, &hp->global_rope_theta));
    EMBER_TRY(ember_cfg_rope_theta(root, what, NULL, &hp->global_rope_theta));
    const json_t *scaling = json_object_get(root, "rope_scaling");
    if (scaling && !json_is_null(scaling))
        return ember_error(EMBER_E_UNSUPPORTED,
                           "%s: rope_scaling is not supported (only plain RoPE with rope_theta)",
                           what);
    EMBER_TRY(parse_window(root, what, v, hp));
    return parse_head(root, what, v, hp);
}

static ember_status load_layer(const ember_hparams *hp, ember_wloader *L, int32_t l,
                               decoder_layer *y) {
    const int64_t H = hp->hidden_size, I = hp->intermediate_size, d = hp->head_dim;
    const int64_t nq = (int64_t)hp->n_heads * d, nkv = (int64_t)hp->n_kv_heads * d;
    const bool bias = hp->attention_bias, mlp_bias = hp->mlp_bias;
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, H, -1, false, &y->in_norm,
                           "layers.%d.input_layernorm.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, nq, H, false, &y->wq, "layers.%d.self_attn.q_proj.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, nq, -1, !bias, &y->wq_b, "layers.%d.self_attn.q_proj.bias", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, nkv, H, false, &y->wk, "layers.%d.self_attn.k_proj.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, nkv, -1, !bias, &y->wk_b, "layers.%d.self_attn.k_proj.bias", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, nkv, H, false, &y->wv, "layers.%d.self_attn.v_proj.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, nkv, -1, !bias, &y->wv_b, "layers.%d.self_attn.v_proj.bias", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, H, nq, false, &y->wo, "layers.%d.self_attn.o_proj.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, H, -1, !hp->out_bias, &y->wo_b, "layers.%d.self_attn.o_proj.bias", l));
    if (hp->qk_norm) {
        EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, d, -1, false, &y->q_norm, "layers.%d.self_attn.q_norm.weight", l));
        EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, d, -1, false, &y->k_norm, "layers.%d.self_attn.k_norm.weight", l));
    }
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, H, -1, false, &y->post_norm,
                           "layers.%d.post_attention_layernorm.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, I, H, false, &y->wgate, "layers.%d.mlp.gate_proj.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, I, -1, !mlp_bias, &y->wgate_b, "layers.%d.mlp.gate_proj.bias", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, I, H, false, &y->wup, "layers.%d.mlp.up_proj.weight", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_VECTOR, I, -1, !mlp_bias, &y->wup_b, "layers.%d.mlp.up_proj.bias", l));
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, H, I, false, &y->wdown, "layers.%d.mlp.down_proj.weight", l));
    return ember_wloadf(L, EMBER_W_VECTOR, H, -1, !mlp_bias, &y->wdown_b, "layers.%d.mlp.down_proj.bias", l);
}

static ember_status decoder_load(const ember_hparams *hp, ember_wloader *L, void **out) {
    *out = NULL;
    decoder_weights *w = ember_wloader_alloc(L, sizeof *w);
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
    if (hp->cls_head) {
        /* the head sits at the top level, beside the "model." prefix */
        ember_wloader top = *L;
        top.prefix = "";
        EMBER_TRY(ember_wload(&top, "score.weight", EMBER_W_MATRIX, hp->num_labels, hp->hidden_size, false,
                              &w->score));
        L->n_params = top.n_params;
    }
    *out = w;
    return EMBER_OK;
}

/* logits (sequences, num_labels) = score(last rows), no bias. */
static ember_status decoder_head(const ember_fwd *f, ember_view last, ember_view *logits) {
    const decoder_weights *w = f->weights;
    const int64_t n = last.rows, nl = f->hp->num_labels;
    float *out;
    EMBER_ARENA_ALLOC(f->arena, out, n * nl);
    ember_linear_args s = {.x = last, .w = &w->score, .y = ember_view_of(out, EMBER_DT_F32, n, nl, nl)};
    EMBER_TRY(f->op->linear(f->dctx, &s));
    *logits = s.y;
    return EMBER_OK;
}

/* The MLP's (tokens, 3I) intermediates would dominate long inputs: it runs
 * over at most MLP_CHUNK tokens at a time. */
#define MLP_CHUNK 2048

static size_t decoder_arena_bytes(const ember_hparams *hp, int64_t t) {
    const int64_t H = hp->hidden_size, I = hp->intermediate_size;
    const int64_t nq = (int64_t)hp->n_heads * hp->head_dim, nkv = (int64_t)hp->n_kv_heads * hp->head_dim;
    const int64_t c = t < MLP_CHUNK ? t : MLP_CHUNK;
    return ember_act_bytes(t, H) * 2 +                          /* x, h           */
           ember_act_bytes(t, nq) * 2 +                         /* q, attention   */
           ember_act_bytes(t, nkv) * 2 +                        /* k, v           */
           ember_act_bytes(c, 2 * I) + ember_act_bytes(c, I) +  /* MLP chunk      */
           ember_act_bytes(t, nq) * 2 + ember_act_bytes(t, H) * 2 + /* last-token rows */
           (hp->cls_head ? ember_act_bytes(t, hp->num_labels) : 0); /* score     */
}

/* x += Wdown(silu(RMSNorm(x) Wgate) * (RMSNorm(x) Wup)) over the rows of x,
 * in chunks of gu.rows rows; h is scratch of x's shape. */
static ember_status mlp(const ember_fwd *f, const decoder_layer *y, ember_view x, ember_view h,
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
        ember_linear_args lg = {.x = hr, .w = &y->wgate, .bias = ember_wopt(&y->wgate_b),
                                .y = ember_view_cols(g, 0, I)};
        ember_linear_args lu = {.x = hr, .w = &y->wup, .bias = ember_wopt(&y->wup_b),
                                .y = ember_view_cols(g, I, I)};
        EMBER_TRY(op->linear(dctx, &lg));
        EMBER_TRY(op->linear(dctx, &lu));
        EMBER_TRY(op->glu(dctx, g, EMBER_ACT_SILU, a));
        ember_linear_args ld = {.x = a, .w = &y->wdown, .bias = ember_wopt(&y->wdown_b), .residual = xr,
                                .y = xr};
        EMBER_TRY(op->linear(dctx, &ld));
    }
    return EMBER_OK;
}

/* The driver's window for layer l: none on full layers, and none when no
 * sequence of the batch is longer than the window (the same keys, and the
 * driver's unwindowed tiles are the faster ones). */
static int32_t window_of(const ember_hparams *hp, int32_t l, const ember_seqs *seqs) {
    const int32_t w = hp->layer_global[l] ? 0 : hp->local_attention;
    return w > 0 && seqs->max_len - 1 > w ? w : 0;
}

static ember_status decoder_forward(const ember_fwd *f, ember_view *hidden, int *compact) {
    const ember_hparams *hp = f->hp;
    const decoder_weights *w = f->weights;
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
        const decoder_layer *y = &w->layers[l];
        ember_rms_args n1 = {.x = x, .w = &y->in_norm, .eps = eps, .group = H, .out = h};
        EMBER_TRY(op->rms_norm(dctx, &n1));
        ember_linear_args lq = {.x = h, .w = &y->wq, .bias = ember_wopt(&y->wq_b), .y = q};
        ember_linear_args lk = {.x = h, .w = &y->wk, .bias = ember_wopt(&y->wk_b), .y = k};
        ember_linear_args lv = {.x = h, .w = &y->wv, .bias = ember_wopt(&y->wv_b), .y = v};
        EMBER_TRY(op->linear(dctx, &lq));
        EMBER_TRY(op->linear(dctx, &lk));
        EMBER_TRY(op->linear(dctx, &lv));
        if (hp->qk_norm) {
            ember_rms_args nq_ = {.x = q, .w = &y->q_norm, .eps = eps, .group = d, .out = q};
            ember_rms_args nk_ = {.x = k, .w = &y->k_norm, .eps = eps, .group = d, .out = k};
            EMBER_TRY(op->rms_norm(dctx, &nq_));
            EMBER_TRY(op->rms_norm(dctx, &nk_));
        }
        ember_rope_args rp = {.q = q, .k = k, .head_dim = (int32_t)d, .positions = b->positions,
                              .table = &w->rope};
        EMBER_TRY(op->rope(dctx, &rp));
        ember_attn_args at = {.q = q, .k = k, .v = v, .seqs = &b->seqs, .n_heads = hp->n_heads,
                              .n_kv_heads = hp->n_kv_heads, .head_dim = (int32_t)d,
                              .scale = scale, .window = window_of(hp, l, &b->seqs), .causal = 1,
                              .out = ctx};
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

/* One model_type: its config parser (the variant's) and the shared pass. */
#define DECODER_ARCH(NAME, TYPE)                                                            \
    static ember_status NAME##_parse_config(const json_t *root, const char *what,            \
                                            ember_hparams *hp) {                             \
        return parse_decoder(root, what, &k_##NAME, hp);                                     \
    }                                                                                         \
    static const char *const NAME##_model_types[] = {TYPE, NULL};                            \
    const ember_arch ember_arch_##NAME = {                                                    \
        .name = TYPE,                                                                         \
        .model_types = NAME##_model_types,                                                    \
        .default_pooling = EMBER_POOLING_LAST_TOKEN,                                          \
        .default_normalize = true,                                                            \
        .probe_tensor = "embed_tokens.weight",                                                \
        .ops = EMBER_OP_BIT(EMBER_OP_GATHER) | EMBER_OP_BIT(EMBER_OP_SELECT_ROWS) |           \
               EMBER_OP_BIT(EMBER_OP_RMS_NORM) | EMBER_OP_BIT(EMBER_OP_LINEAR) |              \
               EMBER_OP_BIT(EMBER_OP_GLU) | EMBER_OP_BIT(EMBER_OP_ROPE) |                     \
               EMBER_OP_BIT(EMBER_OP_ATTENTION),                                              \
        .parse_config = NAME##_parse_config,                                                  \
        .load = decoder_load,                                                                 \
        .arena_bytes = decoder_arena_bytes,                                                   \
        .forward = decoder_forward,                                                           \
        .head = decoder_head,                                                                 \
    }

DECODER_ARCH(qwen3, "qwen3");
DECODER_ARCH(qwen2, "qwen2");
DECODER_ARCH(mistral, "mistral");
DECODER_ARCH(llama, "llama");
