/*
 * test_arch_registry.c — the one-file rule for architectures, proven by a
 * test-only architecture defined in this file alone and registered at run
 * time: a model with model_type "ember-test-toy" then loads and embeds
 * through the public API, with no other file of Ember knowing about it.
 *
 * The toy is a one-layer pre-norm decoder block, so it exercises the ops
 * that decoders brought to the driver interface (RMSNorm with per-head q/k
 * norms, SwiGLU, grouped-query causal attention, RoPE, last-token rows):
 *   x = tok[id]
 *   h = RMSNorm(x) ; q, k, v = h Wq, h Wk, h Wv ; q, k = RMSNorm_head(q, k)
 *   q, k = RoPE(q, k) ; x = x + Attn_causal(q, k, v) Wo
 *   x = x + Wd(silu(RMSNorm(x) Wg) * (RMSNorm(x) Wu)) ; x = RMSNorm(x)
 * with last-token pooling. The expected vectors are computed here in double
 * precision, straight from the definition, independently of the drivers.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/json.h"
#include "models/arch.h"
#include "test_util.h"

/* ---- the architecture (what a src/models/NAME.c would hold) ---- */

typedef struct toy_weights {
    ember_weight tok, in_norm, wq, wk, wv, wo, q_norm, k_norm, post_norm, wg, wu, wd, final_norm;
    ember_weight rope;
} toy_weights;

static ember_status toy_parse_config(const json_t *root, const char *what, ember_hparams *hp) {
    EMBER_TRY(ember_cfg_common(root, what, hp, 64));
    EMBER_TRY(ember_cfg_int(root, what, "head_dim", 2, 512, false, 0, &hp->head_dim));
    EMBER_TRY(ember_cfg_int(root, what, "num_key_value_heads", 1, hp->n_heads, false, 0,
                            &hp->n_kv_heads));
    EMBER_TRY(ember_cfg_float(root, what, "rms_norm_eps", 0.0, 1.0, 1e-6, &hp->layer_norm_eps));
    EMBER_TRY(ember_cfg_float(root, what, "rope_theta", 1.0, 1e12, 10000.0, &hp->global_rope_theta));
    return EMBER_OK;
}

static ember_status toy_load(const ember_hparams *hp, ember_wloader *L, void **out) {
    toy_weights *w = ember_wloader_alloc(L, sizeof *w);
    if (!w)
        return EMBER_E_NOMEM;
    const int64_t H = hp->hidden_size, I = hp->intermediate_size, d = hp->head_dim;
    const int64_t nq = hp->n_heads * d, nkv = hp->n_kv_heads * d;
    EMBER_TRY(ember_wload(L, "tok.weight", EMBER_W_TABLE, hp->vocab_size, H, false, &w->tok));
    EMBER_TRY(ember_wload(L, "in_norm.weight", EMBER_W_VECTOR, H, -1, false, &w->in_norm));
    EMBER_TRY(ember_wload(L, "q.weight", EMBER_W_MATRIX, nq, H, false, &w->wq));
    EMBER_TRY(ember_wload(L, "k.weight", EMBER_W_MATRIX, nkv, H, false, &w->wk));
    EMBER_TRY(ember_wload(L, "v.weight", EMBER_W_MATRIX, nkv, H, false, &w->wv));
    EMBER_TRY(ember_wload(L, "o.weight", EMBER_W_MATRIX, H, nq, false, &w->wo));
    EMBER_TRY(ember_wload(L, "q_norm.weight", EMBER_W_VECTOR, d, -1, false, &w->q_norm));
    EMBER_TRY(ember_wload(L, "k_norm.weight", EMBER_W_VECTOR, d, -1, false, &w->k_norm));
    EMBER_TRY(ember_wload(L, "post_norm.weight", EMBER_W_VECTOR, H, -1, false, &w->post_norm));
    EMBER_TRY(ember_wload(L, "gate.weight", EMBER_W_MATRIX, I, H, false, &w->wg));
    EMBER_TRY(ember_wload(L, "up.weight", EMBER_W_MATRIX, I, H, false, &w->wu));
    EMBER_TRY(ember_wload(L, "down.weight", EMBER_W_MATRIX, H, I, false, &w->wd));
    EMBER_TRY(ember_wload(L, "final_norm.weight", EMBER_W_VECTOR, H, -1, false, &w->final_norm));
    EMBER_TRY(ember_wload_rope_table(L, (int32_t)d, hp->max_position_embeddings,
                                     hp->global_rope_theta, "rope", &w->rope));
    *out = w;
    return EMBER_OK;
}

static size_t toy_arena_bytes(const ember_hparams *hp, int64_t t) {
    const int64_t H = hp->hidden_size, I = hp->intermediate_size;
    const int64_t nq = hp->n_heads * hp->head_dim, nkv = hp->n_kv_heads * hp->head_dim;
    return ember_act_bytes(t, H) * 3 + ember_act_bytes(t, nq) * 2 + ember_act_bytes(t, nkv) * 2 +
           ember_act_bytes(t, 2 * I) + ember_act_bytes(t, I);
}

static ember_status toy_forward(const ember_fwd *f, ember_view *hidden, int *compact) {
    const ember_hparams *hp = f->hp;
    const toy_weights *w = f->weights;
    const ember_driver_ops *op = f->op;
    void *dctx = f->dctx;
    const ember_batch *b = f->b;
    const int64_t T = b->n_tokens, H = hp->hidden_size, I = hp->intermediate_size;
    const int64_t d = hp->head_dim, nq = hp->n_heads * d, nkv = hp->n_kv_heads * d;
    const float eps = hp->layer_norm_eps;
    ember_view x, h, q, k, v, ctx, gu, act;
    EMBER_TRY(ember_fwd_alloc(f, T, H, &x));      /* (T, H)   residual stream   */
    EMBER_TRY(ember_fwd_alloc(f, T, H, &h));      /* (T, H)   normed            */
    EMBER_TRY(ember_fwd_alloc(f, T, nq, &q));     /* (T, nq)                    */
    EMBER_TRY(ember_fwd_alloc(f, T, nkv, &k));    /* (T, nkv)                   */
    EMBER_TRY(ember_fwd_alloc(f, T, nkv, &v));    /* (T, nkv)                   */
    EMBER_TRY(ember_fwd_alloc(f, T, nq, &ctx));   /* (T, nq)    attention out   */
    EMBER_TRY(ember_fwd_alloc(f, T, 2 * I, &gu)); /* (T, 2I)  [gate | up]       */
    EMBER_TRY(ember_fwd_alloc(f, T, I, &act));    /* (T, I)                     */

    EMBER_TRY(op->gather(dctx, &w->tok, b->ids, x, 0));
    ember_rms_args n1 = {.x = x, .w = &w->in_norm, .eps = eps, .group = H, .out = h};
    EMBER_TRY(op->rms_norm(dctx, &n1));
    ember_linear_args lq = {.x = h, .w = &w->wq, .y = q}, lk = {.x = h, .w = &w->wk, .y = k},
                      lv = {.x = h, .w = &w->wv, .y = v};
    EMBER_TRY(op->linear(dctx, &lq));
    EMBER_TRY(op->linear(dctx, &lk));
    EMBER_TRY(op->linear(dctx, &lv));
    ember_rms_args nq_ = {.x = q, .w = &w->q_norm, .eps = eps, .group = d, .out = q};
    ember_rms_args nk_ = {.x = k, .w = &w->k_norm, .eps = eps, .group = d, .out = k};
    EMBER_TRY(op->rms_norm(dctx, &nq_));
    EMBER_TRY(op->rms_norm(dctx, &nk_));
    ember_rope_args rp = {.q = q, .k = k, .head_dim = (int32_t)d, .positions = b->positions,
                          .table = &w->rope};
    EMBER_TRY(op->rope(dctx, &rp));
    ember_attn_args at = {.q = q, .k = k, .v = v, .seqs = &b->seqs, .n_heads = hp->n_heads,
                          .n_kv_heads = hp->n_kv_heads, .head_dim = (int32_t)d,
                          .scale = 1.0f / sqrtf((float)d), .causal = 1, .out = ctx};
    EMBER_TRY(op->attention(dctx, &at));
    ember_linear_args lo = {.x = ctx, .w = &w->wo, .residual = x, .y = x};
    EMBER_TRY(op->linear(dctx, &lo));
    ember_rms_args n2 = {.x = x, .w = &w->post_norm, .eps = eps, .group = H, .out = h};
    EMBER_TRY(op->rms_norm(dctx, &n2));
    ember_linear_args lg = {.x = h, .w = &w->wg, .y = ember_view_cols(gu, 0, I)};
    ember_linear_args lu = {.x = h, .w = &w->wu, .y = ember_view_cols(gu, I, I)};
    EMBER_TRY(op->linear(dctx, &lg));
    EMBER_TRY(op->linear(dctx, &lu));
    EMBER_TRY(op->glu(dctx, gu, EMBER_ACT_SILU, act));
    ember_linear_args ld = {.x = act, .w = &w->wd, .residual = x, .y = x};
    EMBER_TRY(op->linear(dctx, &ld));
    ember_rms_args n3 = {.x = x, .w = &w->final_norm, .eps = eps, .group = H, .out = x};
    EMBER_TRY(op->rms_norm(dctx, &n3));
    if (b->only == EMBER_ROWS_LAST) {
        /* last-token pooling: hand back one row per sequence */
        ember_view last;
        EMBER_TRY(ember_fwd_alloc(f, b->seqs.n_seqs, H, &last));
        EMBER_TRY(op->select_rows(dctx, x, &b->seqs, EMBER_ROWS_LAST, last));
        *hidden = last;
        *compact = 1;
        return EMBER_OK;
    }
    *hidden = x;
    *compact = 0;
    return EMBER_OK;
}

static const char *const toy_model_types[] = {"ember-test-toy", NULL};

static const ember_arch toy_arch = {
    .name = "toy",
    .model_types = toy_model_types,
    .default_pooling = EMBER_POOLING_LAST_TOKEN,
    .default_normalize = true,
    .probe_tensor = "tok.weight",
    .ops = EMBER_OP_BIT(EMBER_OP_GATHER) | EMBER_OP_BIT(EMBER_OP_RMS_NORM) |
           EMBER_OP_BIT(EMBER_OP_LINEAR) | EMBER_OP_BIT(EMBER_OP_ROPE) |
           EMBER_OP_BIT(EMBER_OP_ATTENTION) | EMBER_OP_BIT(EMBER_OP_GLU) |
           EMBER_OP_BIT(EMBER_OP_SELECT_ROWS),
    .parse_config = toy_parse_config,
    .load = toy_load,
    .arena_bytes = toy_arena_bytes,
    .forward = toy_forward,
};

/* ---- a random model of the toy's shape on disk ---- */

enum { V = 50, H = 32, NH = 4, NKV = 2, D = 16, I = 48, MAXPOS = 64 };

typedef struct tensor {
    const char *name;
    int64_t rows, cols; /* cols 0: a vector */
    float *data;
} tensor;

static tensor g_t[] = {
    {"tok.weight", V, H, NULL},       {"in_norm.weight", H, 0, NULL},
    {"q.weight", NH * D, H, NULL},    {"k.weight", NKV * D, H, NULL},
    {"v.weight", NKV * D, H, NULL},   {"o.weight", H, NH * D, NULL},
    {"q_norm.weight", D, 0, NULL},    {"k_norm.weight", D, 0, NULL},
    {"post_norm.weight", H, 0, NULL}, {"gate.weight", I, H, NULL},
    {"up.weight", I, H, NULL},        {"down.weight", H, I, NULL},
    {"final_norm.weight", H, 0, NULL},
};
enum { N_T = sizeof g_t / sizeof g_t[0] };

static const float *T_(const char *name) {
    for (int i = 0; i < N_T; i++)
        if (strcmp(g_t[i].name, name) == 0)
            return g_t[i].data;
    return NULL;
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float frand(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static int write_model(const char *dir) {
    char path[512], header[4096];
    size_t off = 0, hl = 0;
    hl += (size_t)snprintf(header + hl, sizeof header - hl, "{");
    for (int i = 0; i < N_T; i++) {
        int64_t n = g_t[i].rows * (g_t[i].cols ? g_t[i].cols : 1);
        g_t[i].data = malloc(sizeof(float) * (size_t)n);
        for (int64_t j = 0; j < n; j++)
            g_t[i].data[j] = g_t[i].cols ? 0.3f * frand() : 1.0f + 0.2f * frand();
        char shape[64];
        if (g_t[i].cols)
            snprintf(shape, sizeof shape, "[%lld,%lld]", (long long)g_t[i].rows, (long long)g_t[i].cols);
        else
            snprintf(shape, sizeof shape, "[%lld]", (long long)g_t[i].rows);
        hl += (size_t)snprintf(header + hl, sizeof header - hl,
                               "%s\"%s\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                               i ? "," : "", g_t[i].name, shape, off, off + 4 * (size_t)n);
        off += 4 * (size_t)n;
    }
    hl += (size_t)snprintf(header + hl, sizeof header - hl, "}");
    while (hl % 8)
        header[hl++] = ' ';
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    uint64_t len = hl;
    fwrite(&len, 8, 1, fp);
    fwrite(header, 1, hl, fp);
    for (int i = 0; i < N_T; i++)
        fwrite(g_t[i].data, 4, (size_t)(g_t[i].rows * (g_t[i].cols ? g_t[i].cols : 1)), fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/config.json", dir);
    fp = fopen(path, "w");
    if (!fp)
        return -1;
    fprintf(fp,
            "{\"model_type\": \"ember-test-toy\", \"hidden_size\": %d, \"num_hidden_layers\": 1,"
            " \"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"head_dim\": %d,"
            " \"intermediate_size\": %d, \"vocab_size\": %d, \"max_position_embeddings\": %d,"
            " \"rms_norm_eps\": 1e-6, \"rope_theta\": 10000.0}\n",
            H, NH, NKV, D, I, V, MAXPOS);
    fclose(fp);
    return 0;
}

/* ---- the reference, in double, from the definition ---- */

static void rms(const double *x, int n, const float *w, double *out) {
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    double inv = 1.0 / sqrt(ss / n + 1e-6);
    for (int i = 0; i < n; i++)
        out[i] = x[i] * inv * w[i];
}

static void matvec(const float *W, int rows, int cols, const double *x, double *y) {
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int c = 0; c < cols; c++)
            s += (double)W[r * cols + c] * x[c];
        y[r] = s;
    }
}

/* Last-token vector (unnormalized) of one sequence. */
static void reference(const int32_t *ids, int len, double *out) {
    static double x[MAXPOS][H], h[H], q[MAXPOS][NH * D], k[MAXPOS][NKV * D], v[MAXPOS][NKV * D];
    for (int t = 0; t < len; t++) {
        for (int c = 0; c < H; c++)
            x[t][c] = T_("tok.weight")[ids[t] * H + c];
        rms(x[t], H, T_("in_norm.weight"), h);
        matvec(T_("q.weight"), NH * D, H, h, q[t]);
        matvec(T_("k.weight"), NKV * D, H, h, k[t]);
        matvec(T_("v.weight"), NKV * D, H, h, v[t]);
        for (int hd = 0; hd < NH; hd++)
            rms(q[t] + hd * D, D, T_("q_norm.weight"), q[t] + hd * D);
        for (int hd = 0; hd < NKV; hd++)
            rms(k[t] + hd * D, D, T_("k_norm.weight"), k[t] + hd * D);
        /* RoPE, rotate-half, fp32 angles as transformers */
        for (int i = 0; i < D / 2; i++) {
            float inv = 1.0f / powf(10000.0f, (float)(2 * i) / (float)D);
            double a = (double)((float)t * inv), cs = cos(a), sn = sin(a);
            for (int hd = 0; hd < NH + NKV; hd++) {
                double *p = hd < NH ? q[t] + hd * D : k[t] + (hd - NH) * D;
                double x0 = p[i], x1 = p[i + D / 2];
                p[i] = x0 * cs - x1 * sn;
                p[i + D / 2] = x1 * cs + x0 * sn;
            }
        }
    }
    int t = len - 1; /* only the last token's row is pooled */
    double ctx[NH * D] = {0}, o[H], g[I], u[I], a[I], dn[H];
    for (int hd = 0; hd < NH; hd++) {
        int kv = hd / (NH / NKV);
        double s[MAXPOS], m = -1e300, l = 0;
        for (int j = 0; j <= t; j++) {
            double dot = 0;
            for (int c = 0; c < D; c++)
                dot += q[t][hd * D + c] * k[j][kv * D + c];
            s[j] = dot / sqrt((double)D);
            m = fmax(m, s[j]);
        }
        for (int j = 0; j <= t; j++) {
            double p = exp(s[j] - m);
            l += p;
            for (int c = 0; c < D; c++)
                ctx[hd * D + c] += p * v[j][kv * D + c];
        }
        for (int c = 0; c < D; c++)
            ctx[hd * D + c] /= l;
    }
    matvec(T_("o.weight"), H, NH * D, ctx, o);
    for (int c = 0; c < H; c++)
        x[t][c] += o[c];
    rms(x[t], H, T_("post_norm.weight"), h);
    matvec(T_("gate.weight"), I, H, h, g);
    matvec(T_("up.weight"), I, H, h, u);
    for (int i = 0; i < I; i++)
        a[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
    matvec(T_("down.weight"), H, I, a, dn);
    for (int c = 0; c < H; c++)
        x[t][c] += dn[c];
    rms(x[t], H, T_("final_norm.weight"), out);
}

int main(void) {
    char dir[] = "/tmp/ember-toy-XXXXXX";
    if (!mkdtemp(dir) || write_model(dir) != 0) {
        fprintf(stderr, "cannot write the toy model\n");
        return 1;
    }
    ember_model *m = NULL;
    ember_model_params p = ember_model_default_params();
    p.load_tokenizer = 0;
    p.allow_download = 0;

    /* unknown before registration, with the supported list in the message */
    CHECK_STATUS(ember_model_load(dir, &p, &m), EMBER_E_UNSUPPORTED);
    CHECK(strstr(ember_last_error(), "ember-test-toy") && strstr(ember_last_error(), "bert"),
          "message: %s", ember_last_error());

    CHECK_OK(ember_arch_register(&toy_arch));
    CHECK_STATUS(ember_arch_register(&toy_arch), EMBER_E_INVALID_ARGUMENT); /* taken */
    CHECK(ember_arch_find("ember-test-toy") == &toy_arch, "registry lookup");
    CHECK(strstr(ember_arch_supported(), "ember-test-toy") != NULL, "supported list: %s",
          ember_arch_supported());

    /* three sequences of mixed lengths in one pass, with both drivers and
     * both pass layouts (compact last-token rows, and the full pooling) */
    const int32_t lens[3] = {1, 9, 23};
    int32_t ids[33];
    int64_t offsets[4] = {0};
    for (int s = 0, n = 0; s < 3; s++) {
        for (int j = 0; j < lens[s]; j++)
            ids[n++] = (int32_t)((s * 17 + j * 7 + 3) % V);
        offsets[s + 1] = offsets[s] + lens[s];
    }
    double want[3][H];
    for (int s = 0; s < 3; s++) {
        reference(ids + offsets[s], lens[s], want[s]);
        double nrm = 0;
        for (int c = 0; c < H; c++)
            nrm += want[s][c] * want[s][c];
        for (int c = 0; c < H; c++)
            want[s][c] /= sqrt(nrm);
    }
    const char *drivers[] = {"cpu", "cpu-ref"};
    for (int di = 0; di < 2; di++)
        for (int full = 0; full < 2; full++) {
            if (full)
                setenv("EMBER_FULL_LAST_LAYER", "1", 1);
            else
                unsetenv("EMBER_FULL_LAST_LAYER");
            p.driver = drivers[di];
            m = NULL;
            CHECK_OK(ember_model_load(dir, &p, &m));
            if (!m)
                continue;
            ember_model_info info;
            memset(&info, 0, sizeof info);
            info.struct_size = sizeof info;
            CHECK_OK(ember_model_get_info(m, &info));
            CHECK(info.architecture && strcmp(info.architecture, "toy") == 0, "architecture %s",
                  info.architecture ? info.architecture : "(null)");
            CHECK(ember_model_dim(m) == H, "dim %d", ember_model_dim(m));
            ember_ctx *ctx = NULL;
            ember_ctx_params cp = ember_ctx_default_params();
            cp.n_threads = 2;
            CHECK_OK(ember_ctx_init(m, &cp, &ctx));
            float out[3 * H];
            CHECK_OK(ember_embed_tokens(ctx, ids, offsets, 3, NULL, out, 3 * H, NULL));
            for (int s = 0; s < 3; s++) {
                double worst = 0;
                for (int c = 0; c < H; c++)
                    worst = fmax(worst, fabs(out[s * H + c] - want[s][c]));
                CHECK(worst < 1e-5, "driver %s full %d sequence %d: max abs diff %.3g",
                      drivers[di], full, s, worst);
            }
            /* batch invariance: each sequence alone gives the same vector */
            for (int s = 0; s < 3; s++) {
                float one[H];
                int64_t off1[2] = {0, lens[s]};
                CHECK_OK(ember_embed_tokens(ctx, ids + offsets[s], off1, 1, NULL, one, H, NULL));
                double worst = 0;
                for (int c = 0; c < H; c++)
                    worst = fmax(worst, fabs(one[c] - out[s * H + c]));
                CHECK(worst < 1e-6, "driver %s sequence %d alone vs packed: %.3g", drivers[di], s,
                      worst);
            }
            ember_ctx_free(ctx);
            ember_model_free(m);
        }
    unsetenv("EMBER_FULL_LAST_LAYER");
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    rmdir(dir);
    for (int i = 0; i < N_T; i++)
        free(g_t[i].data);
    return test_finish("test_arch_registry");
}
