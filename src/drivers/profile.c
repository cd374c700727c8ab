/*
 * profile.c — see profile.h. Only the ops an architecture calls during a
 * forward pass are wrapped; lifecycle and weight slots are not needed by a
 * forward pass and stay NULL in the wrapper table.
 */
#include "profile.h"

#include <string.h>

#include "core/util.h"

const char *ember_op_name(ember_op_kind k) {
    static const char *names[EMBER_OP_COUNT] = {"gather", "layer_norm", "linear", "geglu",
                                                "rope", "attention", "pool", "transfer"};
    return (unsigned)k < EMBER_OP_COUNT ? names[k] : "?";
}

#define P(dctx) ((ember_profiler *)(dctx))
#define TIMED(kind, flop, call)                                   \
    do {                                                          \
        double t0_ = ember_now();                                 \
        ember_status st_ = (call);                                \
        P(dctx)->prof.seconds[kind] += ember_now() - t0_;         \
        P(dctx)->prof.flops[kind] += (flop);                      \
        P(dctx)->prof.calls[kind]++;                              \
        return st_;                                               \
    } while (0)
#define INNER P(dctx)->inner->ops
#define IDCTX P(dctx)->inner_dctx

static ember_status p_upload(void *dctx, void *dst, const void *src, size_t n) {
    TIMED(EMBER_OP_TRANSFER, 0.0, INNER->upload(IDCTX, dst, src, n));
}
static ember_status p_download(void *dctx, void *dst, const void *src, size_t n) {
    TIMED(EMBER_OP_TRANSFER, 0.0, INNER->download(IDCTX, dst, src, n));
}
static ember_status p_gather(void *dctx, const ember_weight *t, const int32_t *idx, int64_t n,
                             float *out, int acc) {
    TIMED(EMBER_OP_GATHER, 0.0, INNER->gather(IDCTX, t, idx, n, out, acc));
}
static ember_status p_layer_norm(void *dctx, const float *x, const float *r, const ember_weight *g,
                                 const ember_weight *b, float eps, int64_t rows, int64_t cols,
                                 float *out) {
    TIMED(EMBER_OP_LAYER_NORM, 8.0 * (double)rows * (double)cols,
          INNER->layer_norm(IDCTX, x, r, g, b, eps, rows, cols, out));
}
static ember_status p_linear(void *dctx, const ember_linear_args *a) {
    TIMED(EMBER_OP_LINEAR, 2.0 * (double)a->rows * (double)a->w->rows * (double)a->w->cols,
          INNER->linear(IDCTX, a));
}
static ember_status p_geglu(void *dctx, const float *in, int64_t rows, int64_t inter, float *out) {
    TIMED(EMBER_OP_GEGLU, 0.0, INNER->geglu(IDCTX, in, rows, inter, out));
}
static ember_status p_rope(void *dctx, const ember_rope_args *a) {
    TIMED(EMBER_OP_ROPE, 0.0, INNER->rope(IDCTX, a));
}
static double attn_flops(const ember_attn_args *a) {
    double f = 0;
    for (int32_t s = 0; s < a->seqs->n_seqs; s++) {
        double len = a->seqs->start[s + 1] - a->seqs->start[s];
        double keys = a->window > 0 && 2.0 * a->window + 1 < len ? 2.0 * a->window + 1 : len;
        f += 4.0 * len * keys * a->head_dim * a->n_heads;
    }
    return f;
}
static ember_status p_attention(void *dctx, const ember_attn_args *a) {
    TIMED(EMBER_OP_ATTENTION, attn_flops(a), INNER->attention(IDCTX, a));
}
static ember_status p_pool(void *dctx, const float *h, int64_t cols, const ember_seqs *s,
                           int32_t mode, float *out) {
    TIMED(EMBER_OP_POOL, 0.0, INNER->pool(IDCTX, h, cols, s, mode, out));
}

static const ember_driver_ops k_profile_ops = {
    .name = "profile",
    .upload = p_upload,
    .download = p_download,
    .gather = p_gather,
    .layer_norm = p_layer_norm,
    .linear = p_linear,
    .geglu = p_geglu,
    .rope = p_rope,
    .attention = p_attention,
    .pool = p_pool,
};

void ember_profiler_init(ember_profiler *p, const ember_driver *inner, void *inner_dctx) {
    memset(p, 0, sizeof *p);
    p->driver.ops = &k_profile_ops;
    p->driver.impl = p;
    p->inner = inner;
    p->inner_dctx = inner_dctx;
}
