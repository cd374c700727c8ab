/*
 * bert.c — classic BERT encoders (BertModel: bge, MiniLM, e5, gte-small...)
 * and the RoBERTa family that shares their layers (RobertaModel,
 * XLMRobertaModel, CamembertModel: all-roberta-large, multilingual-e5,
 * bge-m3, paraphrase-multilingual-mpnet), DistilBERT and MPNet
 * (all-mpnet-base-v2, multi-qa-mpnet): the same post-LayerNorm layers under
 * other tensor names. RoBERTa and MPNet positions start after the padding
 * index, so position p reads row p + padding_idx + 1 and the token limit is
 * max_position_embeddings - padding_idx - 1 (514 -> 512); MPNet also adds a
 * bucketed relative-position bias to every layer's attention scores.
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
#include <string.h>

#include "core/pooling.h"
#include "core/util.h"
#include "io/json.h"
#include "models/arch.h"

typedef struct bert_layer {
    ember_weight q, q_b, k, k_b, v, v_b;  /* attention.self.{query,key,value} */
    ember_weight qkv, qkv_b;              /* or the three stacked [3H, H] (GPU) */
    ember_weight o, o_b, ln1_g, ln1_b;    /* attention.output.{dense,LayerNorm} */
    ember_weight in, in_b;                /* intermediate.dense */
    ember_weight out, out_b, ln2_g, ln2_b; /* output.{dense,LayerNorm} */
} bert_layer;

typedef struct bert_weights {
    ember_weight word, pos, type, ln_g, ln_b;
    ember_weight rel; /* MPNet: [heads, 2 * max_tokens - 1] bias by distance */
    /* cross-encoder head: pooler.dense / classifier.dense [H, H] (+ tanh),
     * classifier / classifier.out_proj [labels, H] */
    ember_weight head_dense, head_dense_b, head_out, head_out_b;
    bert_layer *layers;
} bert_weights;

static bool is_mpnet(const ember_hparams *hp) { return strcmp(hp->model_type, "mpnet") == 0; }

static bool is_roberta(const char *model_type) {
    return strcmp(model_type, "roberta") == 0 || strcmp(model_type, "xlm-roberta") == 0 ||
           strcmp(model_type, "camembert") == 0;
}

/* DistilBertConfig spells the sizes its own way and fixes eps at 1e-12. */
static ember_status distilbert_parse_config(const json_t *root, const char *what,
                                            ember_hparams *hp) {
    EMBER_TRY(ember_cfg_int(root, what, "dim", 1, EMBER_CFG_MAX_HIDDEN, true, 768, &hp->hidden_size));
    EMBER_TRY(ember_cfg_int(root, what, "n_layers", 1, EMBER_MAX_LAYERS, true, 6, &hp->n_layers));
    EMBER_TRY(ember_cfg_int(root, what, "n_heads", 1, EMBER_CFG_MAX_HEADS, true, 12, &hp->n_heads));
    EMBER_TRY(ember_cfg_int(root, what, "hidden_dim", 1, EMBER_CFG_MAX_INTER, true, 3072,
                            &hp->intermediate_size));
    EMBER_TRY(ember_cfg_int(root, what, "vocab_size", 1, EMBER_CFG_MAX_VOCAB, true, 30522,
                            &hp->vocab_size));
    EMBER_TRY(ember_cfg_int(root, what, "max_position_embeddings", 1, EMBER_CFG_MAX_POS, true, 512,
                            &hp->max_position_embeddings));
    EMBER_TRY(ember_cfg_int(root, what, "pad_token_id", -1, EMBER_CFG_MAX_VOCAB, true, 0,
                            &hp->pad_token_id));
    if (hp->hidden_size % hp->n_heads != 0)
        return ember_error(EMBER_E_FORMAT, "%s: dim %d is not a multiple of n_heads %d", what,
                           hp->hidden_size, hp->n_heads);
    hp->head_dim = hp->hidden_size / hp->n_heads;
    hp->n_kv_heads = hp->n_heads;
    hp->max_tokens = hp->max_position_embeddings;
    hp->type_vocab_size = 0;
    hp->layer_norm_eps = 1e-12f;
    EMBER_TRY(ember_cfg_act(root, what, "activation", "gelu", &hp->hidden_act));
    bool sinusoidal = false;
    EMBER_TRY(ember_cfg_bool(root, what, "sinusoidal_pos_embds", false, &sinusoidal));
    (void)sinusoidal; /* the table is stored in the checkpoint either way */
    return EMBER_OK;
}

/* A ForSequenceClassification checkpoint (a cross-encoder / reranker): its
 * head from `architectures`, its outputs from id2label or num_labels
 * (transformers' default 2). */
static ember_status parse_head(const json_t *root, const char *what, ember_hparams *hp) {
    const json_t *archs = json_object_get(root, "architectures");
    if (!json_is_array(archs))
        return EMBER_OK;
    for (size_t i = 0; i < json_array_size(archs); i++) {
        const char *a = json_string_value(json_array_get(archs, i));
        if (!a)
            continue;
        if (!strcmp(a, "BertForSequenceClassification"))
            hp->cls_head = EMBER_HEAD_BERT;
        else if (!strcmp(a, "XLMRobertaForSequenceClassification") ||
                 !strcmp(a, "RobertaForSequenceClassification") ||
                 !strcmp(a, "CamembertForSequenceClassification"))
            hp->cls_head = EMBER_HEAD_ROBERTA;
    }
    return hp->cls_head ? ember_cfg_num_labels(root, what, &hp->num_labels) : EMBER_OK;
}

static ember_status bert_parse_config(const json_t *root, const char *what, ember_hparams *hp) {
    if (strcmp(hp->model_type, "distilbert") == 0)
        return distilbert_parse_config(root, what, hp);
    EMBER_TRY(parse_head(root, what, hp));
    const bool mpnet = is_mpnet(hp);
    const bool roberta = is_roberta(hp->model_type) || mpnet;
    EMBER_TRY(ember_cfg_common(root, what, hp, roberta ? 514 : 512));
    EMBER_TRY(ember_cfg_int(root, what, "type_vocab_size", 0, EMBER_CFG_MAX_VOCAB, true, 2,
                            &hp->type_vocab_size));
    EMBER_TRY(ember_cfg_int(root, what, "pad_token_id", roberta ? 0 : -1, EMBER_CFG_MAX_VOCAB, true,
                            roberta ? 1 : 0, &hp->pad_token_id));
    if (mpnet) {
        /* MPNetEmbeddings fixes padding_idx at 1 whatever pad_token_id says;
         * the bias always uses 32 buckets (compute_position_bias' default) */
        hp->pad_token_id = 1;
        hp->type_vocab_size = 0;
        EMBER_TRY(ember_cfg_int(root, what, "relative_attention_num_buckets", 32, 4096, true, 32,
                                &hp->rel_buckets));
        hp->extra_ops |= EMBER_OP_BIT(EMBER_OP_ATTN_REL_BIAS);
    }
    if (roberta) {
        /* RobertaEmbeddings: position ids = padding_idx + 1 + p */
        hp->position_offset = hp->pad_token_id + 1;
        hp->positions_skip_pad = true;
        hp->max_tokens = hp->max_position_embeddings - hp->position_offset;
        if (hp->max_tokens < 1)
            return ember_error(EMBER_E_FORMAT,
                               "%s: max_position_embeddings %d leaves no position after "
                               "pad_token_id %d (RoBERTa positions start at pad_token_id + 1)",
                               what, hp->max_position_embeddings, hp->pad_token_id);
    }
    EMBER_TRY(ember_cfg_float(root, what, "layer_norm_eps", 0.0, 1.0, 1e-12, &hp->layer_norm_eps));
    EMBER_TRY(ember_cfg_act(root, what, "hidden_act", "gelu", &hp->hidden_act));
    const char *pos = "absolute";
    ember_status st = ember_json_str(root, "position_embedding_type", what, &pos);
    if (st != EMBER_OK && st != EMBER_E_NOT_FOUND)
        return st;
    if (strcmp(pos, "absolute") != 0)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "%s: position_embedding_type \"%s\" is not supported (only \"absolute\")",
                           what, pos);
    return EMBER_OK;
}

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

/* Tensor names of one family: layer l's tensors are "<layer>.<l>.<part>"
 * plus ".weight"/".bias". */
typedef struct bert_names {
    const char *word, *pos, *type, *emb_ln;
    const char *layer;
    const char *q, *k, *v, *o, *ln1, *in, *out, *ln2;
} bert_names;

static const bert_names k_bert_names = {
    "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
    "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm", "encoder.layer",
    "attention.self.query", "attention.self.key", "attention.self.value",
    "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
    "output.dense", "output.LayerNorm",
};

/* DistilBertModel: the same post-LayerNorm layers under other names, no
 * token types, no pooler. */
static const bert_names k_distilbert_names = {
    "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight", NULL,
    "embeddings.LayerNorm", "transformer.layer",
    "attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
    "sa_layer_norm", "ffn.lin1", "ffn.lin2", "output_layer_norm",
};

/* MPNetModel: BERT's layout with the attention under attention.attn. */
static const bert_names k_mpnet_names = {
    "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight", NULL,
    "embeddings.LayerNorm", "encoder.layer",
    "attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o",
    "attention.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm",
};

static const bert_names *names_for(const ember_hparams *hp) {
    if (is_mpnet(hp))
        return &k_mpnet_names;
    return strcmp(hp->model_type, "distilbert") == 0 ? &k_distilbert_names : &k_bert_names;
}

/* MPNet's bucket of a relative position (key - query), as transformers'
 * MPNetEncoder.relative_position_bucket computes it with num_buckets 32 and
 * max_distance 128: 16 buckets per direction, exact below 8, logarithmic up
 * to 128. The logarithm runs in fp32 as torch's does, so the boundaries
 * fall where the reference's do. */
static int32_t mpnet_bucket(int32_t relative) {
    const int32_t half = 16, max_exact = 8;
    int32_t n = -relative, ret = 0;
    if (n < 0) {
        ret += half;
        n = -n;
    }
    if (n < max_exact)
        return ret + n;
    float v = logf((float)n / (float)max_exact) / (float)log(128.0 / max_exact) *
              (float)(half - max_exact);
    int32_t large = max_exact + (int32_t)v;
    return ret + (large < half - 1 ? large : half - 1);
}

/* The bias of every distance -(span-1) .. span-1 per head, from the
 * [buckets, heads] table of the checkpoint, so attention reads it directly. */
static ember_status load_mpnet_rel(const ember_hparams *hp, ember_wloader *L, ember_weight *out) {
    float *tab = NULL;
    EMBER_TRY(ember_wread_f32(L, "encoder.relative_attention_bias.weight", hp->rel_buckets,
                              hp->n_heads, &tab));
    const int64_t span = hp->max_tokens, width = 2 * span - 1;
    float *rel = ember_malloc(sizeof(float) * (size_t)(hp->n_heads * width), "mpnet bias");
    if (!rel) {
        free(tab);
        return EMBER_E_NOMEM;
    }
    for (int64_t d = -(span - 1); d <= span - 1; d++) {
        int32_t b = mpnet_bucket((int32_t)d);
        for (int32_t h = 0; h < hp->n_heads; h++)
            rel[h * width + d + span - 1] = tab[b * hp->n_heads + h];
    }
    ember_status st = ember_wload_host(L, rel, hp->n_heads, width, "relative position bias", out);
    free(rel);
    free(tab);
    return st;
}

/* "<layer>.<l>.<part>.weight" and ".bias" */
static ember_status load_lin(ember_wloader *L, const bert_names *n, const char *part, int32_t l,
                             int64_t out, int64_t in, ember_weight *w, ember_weight *b) {
    char base[160];
    snprintf(base, sizeof base, "%s.%d.%s", n->layer, l, part);
    EMBER_TRY(ember_wloadf(L, EMBER_W_MATRIX, out, in, false, w, "%s.weight", base));
    return ember_wloadf(L, EMBER_W_VECTOR, out, -1, false, b, "%s.bias", base);
}

static ember_status load_layer(const ember_hparams *hp, ember_wloader *L, int32_t l,
                               bert_layer *y) {
    const bert_names *n = names_for(hp);
    const int64_t h = hp->hidden_size, inter = hp->intermediate_size;
    char base[160];
    /* Q, K and V as one [3H, H] product (and bias) wherever the driver
     * copies its weights: one GEMM over three times the columns instead of
     * three (fewer passes through the thread pool, wider bands to share) */
    ember_status fused = EMBER_E_UNSUPPORTED;
    if (L->stack_weights) {
        char nw[3][160], nb[3][160];
        const char *parts[3] = {n->q, n->k, n->v};
        for (int i = 0; i < 3; i++) {
            snprintf(nw[i], sizeof nw[i], "%s.%d.%s.weight", n->layer, l, parts[i]);
            snprintf(nb[i], sizeof nb[i], "%s.%d.%s.bias", n->layer, l, parts[i]);
        }
        const char *w3[3] = {nw[0], nw[1], nw[2]}, *b3[3] = {nb[0], nb[1], nb[2]};
        fused = ember_wload_stacked(L, w3, 3, h, h, EMBER_W_MATRIX, &y->qkv);
        if (fused == EMBER_OK)
            fused = ember_wload_stacked(L, b3, 3, h, -1, EMBER_W_VECTOR, &y->qkv_b);
        if (fused != EMBER_OK && fused != EMBER_E_UNSUPPORTED)
            return fused;
        if (fused != EMBER_OK) {
            ember_wrelease(L->drv, &y->qkv);
            ember_error_clear();
        }
    }
    if (fused != EMBER_OK) {
        EMBER_TRY(load_lin(L, n, n->q, l, h, h, &y->q, &y->q_b));
        EMBER_TRY(load_lin(L, n, n->k, l, h, h, &y->k, &y->k_b));
        EMBER_TRY(load_lin(L, n, n->v, l, h, h, &y->v, &y->v_b));
    }
    EMBER_TRY(load_lin(L, n, n->o, l, h, h, &y->o, &y->o_b));
    snprintf(base, sizeof base, "%s.%d.%s", n->layer, l, n->ln1);
    EMBER_TRY(load_ln(L, base, h, &y->ln1_g, &y->ln1_b));
    EMBER_TRY(load_lin(L, n, n->in, l, inter, h, &y->in, &y->in_b));
    EMBER_TRY(load_lin(L, n, n->out, l, h, inter, &y->out, &y->out_b));
    snprintf(base, sizeof base, "%s.%d.%s", n->layer, l, n->ln2);
    return load_ln(L, base, h, &y->ln2_g, &y->ln2_b);
}

static ember_status bert_load(const ember_hparams *hp, ember_wloader *L, void **out) {
    *out = NULL;
    bert_weights *w = ember_wloader_alloc(L, sizeof *w);
    if (!w || !(w->layers = ember_wloader_alloc(L, sizeof *w->layers * (size_t)hp->n_layers)))
        return EMBER_E_NOMEM;
    const int64_t h = hp->hidden_size;
    const bert_names *n = names_for(hp);
    EMBER_TRY(ember_wload(L, n->word, EMBER_W_TABLE, hp->vocab_size, h, false, &w->word));
    EMBER_TRY(ember_wload(L, n->pos, EMBER_W_TABLE, hp->max_position_embeddings, h, false, &w->pos));
    if (hp->type_vocab_size > 0 && n->type)
        EMBER_TRY(ember_wload(L, n->type, EMBER_W_TABLE, hp->type_vocab_size, h, false, &w->type));
    if (hp->type_vocab_size == 0 && n->type) {
        /* transformers refuses this too: the weights would be silently unused */
        char full[256];
        snprintf(full, sizeof full, "%s%s", L->prefix, n->type);
        const ember_st_tensor *t = ember_tensor_store_find(L->store, full);
        if (t)
            return ember_error(EMBER_E_MODEL,
                               "config.json has type_vocab_size 0 but the weights hold '%s' "
                               "(%lld rows): the config contradicts the weights",
                               full, (long long)(t->n_dims > 0 ? t->shape[0] : 0));
    }
    EMBER_TRY(load_ln(L, n->emb_ln, h, &w->ln_g, &w->ln_b));
    if (is_mpnet(hp))
        EMBER_TRY(load_mpnet_rel(hp, L, &w->rel));
    for (int32_t l = 0; l < hp->n_layers; l++)
        EMBER_TRY(load_layer(hp, L, l, &w->layers[l]));
    if (hp->cls_head) {
        /* the pooler sits under the encoder's prefix ("bert.pooler"), the
         * classifier at the top level */
        ember_wloader top = *L;
        top.prefix = "";
        const int64_t nl = hp->num_labels;
        ember_status st;
        if (hp->cls_head == EMBER_HEAD_BERT) {
            st = ember_wload(L, "pooler.dense.weight", EMBER_W_MATRIX, h, h, false, &w->head_dense);
            if (st == EMBER_OK)
                st = ember_wload(L, "pooler.dense.bias", EMBER_W_VECTOR, h, -1, false,
                                 &w->head_dense_b);
            top.n_params = L->n_params;
            if (st == EMBER_OK)
                st = ember_wload(&top, "classifier.weight", EMBER_W_MATRIX, nl, h, false,
                                 &w->head_out);
            if (st == EMBER_OK)
                st = ember_wload(&top, "classifier.bias", EMBER_W_VECTOR, nl, -1, false,
                                 &w->head_out_b);
        } else {
            top.n_params = L->n_params;
            st = ember_wload(&top, "classifier.dense.weight", EMBER_W_MATRIX, h, h, false,
                             &w->head_dense);
            if (st == EMBER_OK)
                st = ember_wload(&top, "classifier.dense.bias", EMBER_W_VECTOR, h, -1, false,
                                 &w->head_dense_b);
            if (st == EMBER_OK)
                st = ember_wload(&top, "classifier.out_proj.weight", EMBER_W_MATRIX, nl, h, false,
                                 &w->head_out);
            if (st == EMBER_OK)
                st = ember_wload(&top, "classifier.out_proj.bias", EMBER_W_VECTOR, nl, -1, false,
                                 &w->head_out_b);
        }
        L->n_params = top.n_params;
        L->file_dtype = top.file_dtype;
        L->have_file_dtype = top.have_file_dtype;
        EMBER_TRY(st);
    }
    *out = w;
    return EMBER_OK;
}

/* logits = out(tanh(dense(first))): BertPooler + classifier, or
 * RobertaClassificationHead (dropouts are identities at inference). */
static ember_status bert_head(const ember_fwd *f, ember_view first, ember_view *logits) {
    const bert_weights *w = f->weights;
    const int64_t n = first.rows, H = f->hp->hidden_size;
    float *tmp, *out;
    EMBER_ARENA_ALLOC(f->arena, tmp, n * H);
    EMBER_ARENA_ALLOC(f->arena, out, n * f->hp->num_labels);
    ember_linear_args d = {.x = first, .w = &w->head_dense, .bias = &w->head_dense_b,
                           .act = EMBER_ACT_TANH,
                           .y = ember_view_of(tmp, EMBER_DT_F32, n, H, H)};
    EMBER_TRY(f->op->linear(f->dctx, &d));
    ember_linear_args o = {.x = d.y, .w = &w->head_out, .bias = &w->head_out_b,
                           .y = ember_view_of(out, EMBER_DT_F32, n, f->hp->num_labels,
                                              f->hp->num_labels)};
    EMBER_TRY(f->op->linear(f->dctx, &o));
    *logits = o.y;
    return EMBER_OK;
}

static size_t bert_arena_bytes(const ember_hparams *hp, int64_t t) {
    const int64_t h = hp->hidden_size, inter = hp->intermediate_size;
    return ember_act_bytes(t, h) * 3 +     /* x, attention context, h */
           ember_act_bytes(t, 3 * h) +     /* qkv                     */
           ember_act_bytes(t, inter) +     /* intermediate            */
           ember_act_bytes(t, h) * 4 +     /* first-token last layer  */
           (hp->cls_head ? ember_act_bytes(t, h) + ember_act_bytes(t, hp->num_labels) : 0);
}

/* qkv (T, 3H) = x Wq|Wk|Wv^T + b: one stacked product when the loader
 * made one, else three. */
static ember_status project_qkv(const ember_fwd *f, const bert_layer *y, ember_view x,
                                ember_view qkv) {
    const int64_t H = f->hp->hidden_size;
    if (ember_wopt(&y->qkv)) {
        ember_linear_args a = {.x = x, .w = &y->qkv, .bias = ember_wopt(&y->qkv_b), .y = qkv};
        return f->op->linear(f->dctx, &a);
    }
    const ember_weight *wq[3] = {&y->q, &y->k, &y->v}, *bq[3] = {&y->q_b, &y->k_b, &y->v_b};
    for (int i = 0; i < 3; i++) {
        ember_linear_args a = {.x = x, .w = wq[i], .bias = bq[i],
                               .y = ember_view_cols(qkv, i * H, H)};
        EMBER_TRY(f->op->linear(f->dctx, &a));
    }
    return EMBER_OK;
}

/* The last layer when only each sequence's first token is wanted (CLS
 * pooling): K and V still cover every token, but Q, attention output, the
 * FFN and both LayerNorms run on one row per sequence. For bge-small that
 * skips 10/12 of the last layer's matrix work. */
static ember_status last_layer_first_only(const ember_fwd *f, const bert_layer *y, ember_view x,
                                          ember_view qkv, ember_view inter, ember_view *hidden) {
    const ember_hparams *hp = f->hp;
    const ember_driver_ops *op = f->op;
    void *dctx = f->dctx;
    const ember_batch *b = f->b;
    const int64_t H = hp->hidden_size, I = hp->intermediate_size;
    const int64_t n = b->seqs.n_seqs;
    const float eps = hp->layer_norm_eps;
    ember_view xq, q, ctx, tmp;
    EMBER_TRY(ember_fwd_alloc(f, n, H, &xq));  /* (n, H) first-token rows of x */
    EMBER_TRY(ember_fwd_alloc(f, n, H, &q));   /* (n, H)                       */
    EMBER_TRY(ember_fwd_alloc(f, n, H, &ctx)); /* (n, H)                       */
    EMBER_TRY(ember_fwd_alloc(f, n, H, &tmp)); /* (n, H)                       */
    ember_view kv[2] = {ember_view_cols(qkv, H, H), ember_view_cols(qkv, 2 * H, H)};
    EMBER_TRY(op->select_rows(dctx, x, &b->seqs, EMBER_ROWS_FIRST, xq));
    if (ember_wopt(&y->qkv)) {
        /* stacked Q/K/V: one product over every row (Q of the other rows is
         * wasted, one product beats two), then the first rows' queries */
        EMBER_TRY(project_qkv(f, y, x, qkv));
        EMBER_TRY(op->select_rows(dctx, ember_view_cols(qkv, 0, H), &b->seqs, EMBER_ROWS_FIRST, q));
    } else {
        for (int i = 0; i < 2; i++) {
            ember_linear_args a = {.x = x, .w = i == 0 ? &y->k : &y->v,
                                   .bias = i == 0 ? &y->k_b : &y->v_b, .y = kv[i]};
            EMBER_TRY(op->linear(dctx, &a));
        }
        ember_linear_args aq = {.x = xq, .w = &y->q, .bias = &y->q_b, .y = q};
        EMBER_TRY(op->linear(dctx, &aq));
    }
    const bert_weights *w = f->weights;
    ember_attn_args at = {.q = q, .k = kv[0], .v = kv[1], .seqs = &b->seqs,
                          .n_heads = hp->n_heads, .n_kv_heads = hp->n_heads,
                          .head_dim = hp->head_dim, .scale = 1.0f / sqrtf((float)hp->head_dim),
                          .rows = EMBER_ROWS_FIRST, .rel_bias = ember_wopt(&w->rel),
                          .rel_span = hp->max_tokens, .out = ctx};
    EMBER_TRY(op->attention(dctx, &at));
    ember_linear_args ao = {.x = ctx, .w = &y->o, .bias = &y->o_b, .residual = xq, .y = tmp};
    EMBER_TRY(op->linear(dctx, &ao));
    EMBER_TRY(op->layer_norm(dctx, tmp, ember_view_none(), &y->ln1_g, &y->ln1_b, eps, xq));
    ember_view in_n = ember_view_rows(inter, 0, n);
    ember_linear_args fi = {.x = xq, .w = &y->in, .bias = &y->in_b, .act = hp->hidden_act,
                            .y = in_n};
    EMBER_TRY(op->linear(dctx, &fi));
    ember_linear_args fo = {.x = in_n, .w = &y->out, .bias = &y->out_b, .residual = xq, .y = tmp};
    EMBER_TRY(op->linear(dctx, &fo));
    EMBER_TRY(op->layer_norm(dctx, tmp, ember_view_none(), &y->ln2_g, &y->ln2_b, eps, xq));
    (void)I;
    *hidden = xq;
    return EMBER_OK;
}

static ember_status bert_forward(const ember_fwd *f, ember_view *hidden, int *compact) {
    const ember_hparams *hp = f->hp;
    const bert_weights *w = f->weights;
    const ember_driver_ops *op = f->op;
    void *dctx = f->dctx;
    const ember_batch *b = f->b;
    const int64_t T = b->n_tokens, H = hp->hidden_size, I = hp->intermediate_size;
    const float eps = hp->layer_norm_eps;
    const ember_view none = ember_view_none();
    ember_view x, qkv, ctx, tmp, inter;
    EMBER_TRY(ember_fwd_alloc(f, T, H, &x));       /* (T, H)  */
    EMBER_TRY(ember_fwd_alloc(f, T, 3 * H, &qkv)); /* (T, 3H) */
    EMBER_TRY(ember_fwd_alloc(f, T, H, &ctx));     /* (T, H)  */
    EMBER_TRY(ember_fwd_alloc(f, T, H, &tmp));     /* (T, H)  */
    EMBER_TRY(ember_fwd_alloc(f, T, I, &inter));   /* (T, I)  */
    const ember_view q = ember_view_cols(qkv, 0, H), k = ember_view_cols(qkv, H, H),
                     v = ember_view_cols(qkv, 2 * H, H);

    EMBER_TRY(op->gather(dctx, &w->word, b->ids, x, 0));
    EMBER_TRY(op->gather(dctx, &w->pos, b->positions, x, 1));
    if (w->type.data)
        EMBER_TRY(op->gather(dctx, &w->type, b->types ? b->types : b->zeros, x, 1));
    EMBER_TRY(op->layer_norm(dctx, x, none, &w->ln_g, &w->ln_b, eps, x));

    const float scale = 1.0f / sqrtf((float)hp->head_dim);
    *compact = 0;
    for (int32_t l = 0; l < hp->n_layers; l++) {
        const bert_layer *y = &w->layers[l];
        if (b->only == EMBER_ROWS_FIRST && l == hp->n_layers - 1) {
            *compact = 1;
            return last_layer_first_only(f, y, x, qkv, inter, hidden);
        }
        EMBER_TRY(project_qkv(f, y, x, qkv));
        ember_attn_args at = {.q = q, .k = k, .v = v, .seqs = &b->seqs, .n_heads = hp->n_heads,
                              .n_kv_heads = hp->n_heads, .head_dim = hp->head_dim,
                              .scale = scale, .rel_bias = ember_wopt(&w->rel),
                              .rel_span = hp->max_tokens, .out = ctx};
        EMBER_TRY(op->attention(dctx, &at));
        ember_linear_args ao = {.x = ctx, .w = &y->o, .bias = &y->o_b, .residual = x, .y = tmp};
        EMBER_TRY(op->linear(dctx, &ao));
        EMBER_TRY(op->layer_norm(dctx, tmp, none, &y->ln1_g, &y->ln1_b, eps, x));
        ember_linear_args fi = {.x = x, .w = &y->in, .bias = &y->in_b, .act = hp->hidden_act,
                                .y = inter};
        EMBER_TRY(op->linear(dctx, &fi));
        ember_linear_args fo = {.x = inter, .w = &y->out, .bias = &y->out_b, .residual = x,
                                .y = tmp};
        EMBER_TRY(op->linear(dctx, &fo));
        EMBER_TRY(op->layer_norm(dctx, tmp, none, &y->ln2_g, &y->ln2_b, eps, x));
    }
    *hidden = x;
    return EMBER_OK;
}

static const char *const bert_model_types[] = {"bert",      "roberta",    "xlm-roberta",
                                               "camembert", "distilbert", "mpnet", NULL};

const ember_arch ember_arch_bert = {
    .name = "bert",
    .model_types = bert_model_types,
    .default_pooling = EMBER_POOLING_CLS,
    .default_normalize = true,
    .probe_tensor = "embeddings.word_embeddings.weight", /* every family has it */
    .ops = EMBER_OP_BIT(EMBER_OP_GATHER) | EMBER_OP_BIT(EMBER_OP_SELECT_ROWS) |
           EMBER_OP_BIT(EMBER_OP_LAYER_NORM) | EMBER_OP_BIT(EMBER_OP_LINEAR) |
           EMBER_OP_BIT(EMBER_OP_ATTENTION),
    .parse_config = bert_parse_config,
    .load = bert_load,
    .arena_bytes = bert_arena_bytes,
    .forward = bert_forward,
    .head = bert_head,
};
