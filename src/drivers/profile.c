/*
 * profile.c — see profile.h. Only the ops an architecture calls during a
 * forward pass (and the transfers around it) are wrapped; lifecycle and
 * weight slots are not needed by a forward pass and stay NULL in the wrapper
 * table, except the queries that pass straight through.
 */
#include "profile.h"

#include <string.h>

#include "core/util.h"

const char *ember_op_name(ember_op_kind k) {
    static const char *names[EMBER_OP_COUNT] = {
        "gather", "select_rows", "layer_norm", "rms_norm", "linear",        "glu",
        "rope",   "attention",   "pool",       "transfer", "attn_rel_bias"};
    return (unsigned)k < EMBER_OP_COUNT ? names[k] : "?";
}

#define P(dctx) ((ember_profiler *)(dctx))
#define INNER P(dctx)->inner->ops
#define IDCTX P(dctx)->inner_dctx

static void op_start(ember_profiler *p, double *t0) {
    if (p->inner->ops->timer_start)
        p->inner->ops->timer_start(p->inner_dctx);
    else
        *t0 = ember_now();
}

static double op_seconds(ember_profiler *p, double t0) {
    if (p->inner->ops->timer_stop)
        return p->inner->ops->timer_stop(p->inner_dctx);
    if (p->inner->ops->synchronize)
        (void)p->inner->ops->synchronize(p->inner_dctx);
    return ember_now() - t0;
}

#define TIMED(kind, flop, call)                                   \
    do {                                                          \
        double t0_ = 0;                                           \
        op_start(P(dctx), &t0_);                                  \
        ember_status st_ = (call);                                \
        P(dctx)->prof.seconds[kind] += op_seconds(P(dctx), t0_);  \
        P(dctx)->prof.flops[kind] += (flop);                      \
        P(dctx)->prof.calls[kind]++;                              \
        return st_;                                               \
    } while (0)

static ember_status p_synchronize(void *dctx) { return INNER->synchronize(IDCTX); }
static ember_status p_upload(void *dctx, void *dst, const void *src, size_t n) {
    TIMED(EMBER_OP_TRANSFER, 0.0, INNER->upload(IDCTX, dst, src, n));
}
static ember_status p_download(void *dctx, void *dst, const void *src, size_t n) {
    TIMED(EMBER_OP_TRANSFER, 0.0, INNER->download(IDCTX, dst, src, n));
}
static ember_status p_gather(void *dctx, const ember_weight *t, const int32_t *idx, ember_view out,
                             int acc) {
    TIMED(EMBER_OP_GATHER, 0.0, INNER->gather(IDCTX, t, idx, out, acc));
}
static ember_status p_select_rows(void *dctx, ember_view in, const ember_seqs *s, ember_rows w,
                                  ember_view out) {
    TIMED(EMBER_OP_SELECT_ROWS, 0.0, INNER->select_rows(IDCTX, in, s, w, out));
}
static ember_status p_layer_norm(void *dctx, ember_view x, ember_view r, const ember_weight *g,
                                 const ember_weight *b, float eps, ember_view out) {
    TIMED(EMBER_OP_LAYER_NORM, 8.0 * (double)x.rows * (double)x.cols,
          INNER->layer_norm(IDCTX, x, r, g, b, eps, out));
}
static ember_status p_rms_norm(void *dctx, const ember_rms_args *a) {
    TIMED(EMBER_OP_RMS_NORM, 4.0 * (double)a->x.rows * (double)a->x.cols,
          INNER->rms_norm(IDCTX, a));
}
static ember_status p_linear(void *dctx, const ember_linear_args *a) {
    TIMED(EMBER_OP_LINEAR, 2.0 * (double)a->x.rows * (double)a->w->rows * (double)a->w->cols,
          INNER->linear(IDCTX, a));
}
static ember_status p_glu(void *dctx, ember_view in, ember_act act, ember_view out) {
    TIMED(EMBER_OP_GLU, 0.0, INNER->glu(IDCTX, in, act, out));
}
static ember_status p_rope(void *dctx, const ember_rope_args *a) {
    TIMED(EMBER_OP_ROPE, 0.0, INNER->rope(IDCTX, a));
}
static double attn_flops(const ember_attn_args *a) {
    double f = 0;
    for (int32_t s = 0; s < a->seqs->n_seqs; s++) {
        double len = a->seqs->start[s + 1] - a->seqs->start[s];
        double keys = a->window > 0 && 2.0 * a->window + 1 < len ? 2.0 * a->window + 1 : len;
        double queries = a->rows == EMBER_ROWS_ALL ? len : 1.0;
        if (a->causal)
            keys = (keys + 1) / 2;
        f += 4.0 * queries * keys * a->head_dim * a->n_heads;
    }
    return f;
}
static ember_status p_attention(void *dctx, const ember_attn_args *a) {
    TIMED(EMBER_OP_ATTENTION, attn_flops(a), INNER->attention(IDCTX, a));
}
static ember_status p_pool(void *dctx, ember_view h, const ember_seqs *s, int32_t mode,
                           ember_view out) {
    TIMED(EMBER_OP_POOL, 0.0, INNER->pool(IDCTX, h, s, mode, out));
}

static const ember_driver_ops k_profile_ops = {
    .name = "profile",
    .synchronize = p_synchronize,
    .upload = p_upload,
    .download = p_download,
    .gather = p_gather,
    .select_rows = p_select_rows,
    .layer_norm = p_layer_norm,
    .rms_norm = p_rms_norm,
    .linear = p_linear,
    .glu = p_glu,
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
