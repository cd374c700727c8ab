/*
 * test_driver_conformance.c — every compiled-in driver, through its ops
 * table only (upload -> op -> download), against the "cpu-ref" driver on the
 * same inputs; and cpu-ref itself against a plain double-precision reference
 * written here, so that cpu-ref is not its own oracle.
 *
 * Shapes: model-sized (hidden 384, intermediate 1536, 12 heads x 32, three
 * packed sequences of 1, 77 and 200 tokens; Qwen3-0.6B's GQA: 16 query heads
 * over 8 key/value heads of 128) and awkward ones (hidden 72 and 40, head_dim
 * 24 and 8, lengths 1 and 13, row counts that are no multiple of any tile,
 * views with ld > cols at a column offset inside a wider buffer). Whole
 * buffers are compared, so a write outside a view is caught too.
 *
 * Tolerances, as max |a - b| / max |b| over the buffer:
 *   driver vs cpu-ref: 1e-4 (fp32 kernels that sum in another order), 0 for
 *   the copies (gather, select_rows, pool cls/max/lasttoken); 3e-2 when the
 *   driver's activations are bf16/fp16, and for the linear and attention
 *   ops of the cpu driver loaded with bf16 or int8 weights (its AVX512_BF16
 *   / VNNI dot products, or AMX tiles where the CPU has them; "noamx": the
 *   same with AMX turned off through EMBER_GEMM_TILE).
 *   cpu-ref vs double: 1e-4 for linear and attention, 1e-5 for the rest.
 * Also: supports() on act_dtype() for every op, wrong views refused with
 * EMBER_E_INTERNAL naming the op, ember_driver_find() on "cpu:1" and "nope".
 */
#include <math.h>
#include <stdint.h>

#include "core/dtype.h"
#include "drivers/driver.h"
#include "io/safetensors.h"
#include "test_util.h"

/* ---- random data ---- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float frand(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) & 0xffffff) / (float)0xffffff * 2.0f - 1.0f;
}
static float *rvec(size_t n, float scale) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        v[i] = frand() * scale;
    return v;
}
static float *fdup(const float *a, size_t n) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    memcpy(v, a, sizeof(float) * n);
    return v;
}

static double max_rel(const float *a, const float *b, size_t n) {
    double m = 0, scale = 1e-6;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs((double)b[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d != d) /* NaN */
            return INFINITY;
        m = fmax(m, d / scale);
    }
    return m;
}

static double act_d(int act, double x) {
    switch (act) {
    case EMBER_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case EMBER_ACT_GELU_TANH:
        return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    case EMBER_ACT_RELU: return x > 0 ? x : 0;
    case EMBER_ACT_SILU: return x / (1.0 + exp(-x));
    case EMBER_ACT_TANH: return tanh(x);
    default: return x;
    }
}
static const char *act_name(int act) {
    static const char *n[] = {"none", "gelu", "gelu_tanh", "relu", "silu", "tanh"};
    return act >= 0 && act < EMBER_ACT_COUNT ? n[act] : "?";
}

/* ---- driver instances ---- */

#define ARENA_BYTES ((size_t)48 << 20)
#define MAX_INST 16

typedef struct {
    const ember_driver_ops *ops;
    void *impl, *dctx;
    char *arena;
    size_t used;
    ember_dt act;
    int pack;
    int compute; /* ember_dtype of the matrix weights (EMBER_DTYPE_F32 but for the extra cpu instances) */
    char label[64];
} drv;

static drv g_inst[MAX_INST];
static int g_n_inst;
static int g_ref = -1; /* cpu-ref, packed */
static double g_diff[MAX_INST][EMBER_OP_COUNT];
static double g_tol[MAX_INST][EMBER_OP_COUNT];
static int g_ran[MAX_INST][EMBER_OP_COUNT];
static double g_ref_diff[EMBER_OP_COUNT];
static double g_ref_tol[EMBER_OP_COUNT];

static void *dalloc(drv *d, size_t bytes) {
    size_t at = (d->used + 255) & ~(size_t)255;
    if (at + bytes > ARENA_BYTES) {
        fprintf(stderr, "test arena too small (%zu + %zu bytes)\n", at, bytes);
        abort();
    }
    d->used = at + bytes;
    return d->arena + at;
}

/* A (rows, ld) matrix of dtype `dt` in driver memory, uploaded from host
 * floats; the view spans all ld columns (narrow it with ember_view_cols). */
static ember_view dmat_dt(drv *d, const float *host, int64_t rows, int64_t ld, ember_dt dt) {
    size_t n = (size_t)(rows * ld), es = ember_dt_size(dt);
    void *dev = dalloc(d, n * es);
    if (dt == EMBER_DT_F32) {
        CHECK_OK(d->ops->upload(d->dctx, dev, host, n * es));
    } else {
        uint16_t *h = malloc(n * 2 + 2);
        for (size_t i = 0; i < n; i++)
            h[i] = dt == EMBER_DT_BF16 ? ember_f32_to_bf16(host[i]) : ember_f32_to_f16(host[i]);
        CHECK_OK(d->ops->upload(d->dctx, dev, h, n * es));
        free(h);
    }
    return ember_view_of(dev, dt, rows, ld, ld);
}
static ember_view dmat(drv *d, const float *host, int64_t rows, int64_t ld) {
    return dmat_dt(d, host, rows, ld, d->act);
}
/* Downloads a view made by dmat (all ld columns) into host floats. */
static void dget(drv *d, ember_view v, float *host) {
    size_t n = (size_t)(v.rows * v.ld), es = ember_dt_size(v.dtype);
    if (v.dtype == EMBER_DT_F32) {
        CHECK_OK(d->ops->download(d->dctx, host, v.data, n * es));
    } else {
        uint16_t *h = malloc(n * 2 + 2);
        CHECK_OK(d->ops->download(d->dctx, h, v.data, n * es));
        for (size_t i = 0; i < n; i++)
            host[i] = v.dtype == EMBER_DT_BF16 ? ember_bf16_to_f32(h[i]) : ember_f16_to_f32(h[i]);
        free(h);
    }
}
static int32_t *dints(drv *d, const int32_t *host, size_t n) {
    int32_t *dev = dalloc(d, sizeof(int32_t) * (n ? n : 1));
    CHECK_OK(d->ops->upload(d->dctx, dev, host, sizeof(int32_t) * n));
    return dev;
}

/* Packed sequences from their lengths. */
typedef struct {
    int32_t n;
    int32_t start[9];
    int64_t T;
    int32_t max_len;
} seqdef;
static seqdef mkseqs(int n, const int32_t *lens) {
    seqdef s = {.n = n};
    for (int i = 0; i < n; i++) {
        s.start[i + 1] = s.start[i] + lens[i];
        s.max_len = lens[i] > s.max_len ? lens[i] : s.max_len;
    }
    s.T = s.start[n];
    return s;
}
static ember_seqs dseqs(drv *d, const seqdef *s) {
    ember_seqs q = {.n_seqs = s->n, .n_tokens = s->T, .max_len = s->max_len, .start = s->start};
    q.start_dev = dints(d, s->start, (size_t)s->n + 1);
    return q;
}

/* Prepares host floats as a weight: rows == 0 makes a 1-D tensor. */
static void wprep(drv *d, ember_wkind kind, const float *data, int64_t rows, int64_t cols,
                  const char *name, ember_weight *w) {
    ember_st_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.dtype = EMBER_DT_F32;
    t.n_dims = rows ? 2 : 1;
    t.shape[0] = rows ? rows : cols;
    t.shape[1] = cols;
    t.n_elements = (uint64_t)((rows ? rows : 1) * cols);
    t.nbytes = t.n_elements * sizeof(float);
    t.data = (const uint8_t *)data;
    memset(w, 0, sizeof *w);
    CHECK_OK(d->ops->weight_prepare(d->impl, &t, kind, w));
}
static void wfree(drv *d, ember_weight *w) { d->ops->weight_release(d->impl, w); }

/* ---- the harness ----
 * A case runs one op on one driver instance and leaves the downloaded
 * result (n floats) in `out`. */
typedef void (*run_fn)(drv *d, const void *cs, float *out);

static void check_case(ember_op_kind op, const char *what, run_fn fn, const void *cs,
                       const float *want, size_t n, double tol_double, double tol_drv,
                       int all_packings) {
    float *ref = calloc(n, sizeof(float)), *out = calloc(n, sizeof(float));
    drv *r = &g_inst[g_ref];
    r->used = 0;
    fn(r, cs, ref);
    double dd = max_rel(ref, want, n);
    CHECK(dd <= tol_double, "cpu-ref %s %s: rel diff vs double %.3g > %.3g", ember_op_name(op),
          what, dd, tol_double);
    g_ref_diff[op] = fmax(g_ref_diff[op], dd);
    g_ref_tol[op] = fmax(g_ref_tol[op], tol_double);
    for (int i = 0; i < g_n_inst; i++) {
        drv *d = &g_inst[i];
        if (i == g_ref || (!d->pack && !all_packings))
            continue;
        if (!d->ops->supports(d->impl, op, d->act)) /* declared missing: refused at load */
            continue;
        /* reduced-precision compute: the matmuls, and on AVX512_BF16 / AMX
         * CPUs the attention products too (bf16 operands), at the bf16
         * tolerance */
        const int reduced_op = op == EMBER_OP_LINEAR || op == EMBER_OP_ATTENTION || op == EMBER_OP_ATTN_REL_BIAS;
        double tol = d->act == EMBER_DT_F32 && (!reduced_op || d->compute == EMBER_DTYPE_F32)
                         ? tol_drv
                         : 3e-2;
        d->used = 0;
        memset(out, 0, n * sizeof(float));
        fn(d, cs, out);
        double df = max_rel(out, ref, n);
        CHECK(df <= tol, "%s %s %s: rel diff vs cpu-ref %.3g > %.3g", d->label, ember_op_name(op),
              what, df, tol);
        g_diff[i][op] = fmax(g_diff[i][op], df);
        g_tol[i][op] = fmax(g_tol[i][op], tol);
        g_ran[i][op] = 1;
    }
    free(ref);
    free(out);
}

/* ---- gather ---- */

typedef struct {
    int64_t V, dim, rows, ld, off;
    int acc;
    float scale; /* gather_scale (0: none) */
    const float *table, *init;
    const int32_t *idx;
} gather_case;

static void run_gather(drv *d, const void *p, float *out) {
    const gather_case *c = p;
    ember_weight t;
    wprep(d, EMBER_W_TABLE, c->table, c->V, c->dim, "table", &t);
    t.gather_scale = c->scale;
    ember_view o = dmat(d, c->init, c->rows, c->ld);
    int32_t *idx = dints(d, c->idx, (size_t)c->rows);
    CHECK_OK(d->ops->gather(d->dctx, &t, idx, ember_view_cols(o, c->off, c->dim), c->acc));
    dget(d, o, out);
    wfree(d, &t);
}

static void test_gather(int64_t V, int64_t dim, int64_t rows, int64_t ld, int64_t off, int acc,
                        float scale) {
    gather_case c = {V, dim, rows, ld, off, acc, scale, NULL, NULL, NULL};
    float *table = rvec((size_t)(V * dim), 1.0f), *init = rvec((size_t)(rows * ld), 1.0f);
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)rows);
    for (int64_t r = 0; r < rows; r++)
        idx[r] = r == 0 ? (int32_t)(V - 1) : (int32_t)((frand() + 1.0f) * 0.5f * (float)(V - 1));
    float *want = fdup(init, (size_t)(rows * ld));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < dim; k++) {
            float t = table[(int64_t)idx[r] * dim + k] * (scale != 0.0f ? scale : 1.0f);
            float *o = &want[r * ld + off + k];
            *o = acc ? (float)((double)*o + t) : t;
        }
    c.table = table;
    c.init = init;
    c.idx = idx;
    char what[96];
    snprintf(what, sizeof what, "V %lld dim %lld rows %lld ld %lld acc %d scale %g", (long long)V,
             (long long)dim, (long long)rows, (long long)ld, acc, (double)scale);
    check_case(EMBER_OP_GATHER, what, run_gather, &c, want, (size_t)(rows * ld), 0, 0, 0);
    free(table);
    free(init);
    free(idx);
    free(want);
}

/* ---- select_rows ---- */

typedef struct {
    seqdef s;
    int64_t cols, ld_in, off_in, ld_out, off_out;
    ember_rows which;
    const float *in, *init;
} select_case;

static void run_select(drv *d, const void *p, float *out) {
    const select_case *c = p;
    ember_seqs sq = dseqs(d, &c->s);
    ember_view in = dmat(d, c->in, c->s.T, c->ld_in);
    ember_view o = dmat(d, c->init, c->s.n, c->ld_out);
    CHECK_OK(d->ops->select_rows(d->dctx, ember_view_cols(in, c->off_in, c->cols), &sq, c->which,
                                 ember_view_cols(o, c->off_out, c->cols)));
    dget(d, o, out);
}

static void test_select(int n, const int32_t *lens, int64_t cols, int64_t ld_in, int64_t off_in,
                        int64_t ld_out, int64_t off_out, ember_rows which) {
    select_case c = {mkseqs(n, lens), cols, ld_in, off_in, ld_out, off_out, which, NULL, NULL};
    float *in = rvec((size_t)(c.s.T * ld_in), 1.0f), *init = rvec((size_t)(n * ld_out), 1.0f);
    float *want = fdup(init, (size_t)(n * ld_out));
    for (int s = 0; s < n; s++) {
        int64_t r = which == EMBER_ROWS_FIRST ? c.s.start[s] : c.s.start[s + 1] - 1;
        for (int64_t k = 0; k < cols; k++)
            want[s * ld_out + off_out + k] = in[r * ld_in + off_in + k];
    }
    c.in = in;
    c.init = init;
    char what[96];
    snprintf(what, sizeof what, "%s cols %lld seqs %d", which == EMBER_ROWS_FIRST ? "first" : "last",
             (long long)cols, n);
    check_case(EMBER_OP_SELECT_ROWS, what, run_select, &c, want, (size_t)(n * ld_out), 0, 0, 0);
    free(in);
    free(init);
    free(want);
}

/* ---- layer_norm ---- */

typedef struct {
    int64_t rows, cols, ld, off;
    int use_res, use_beta, alias;
    float eps;
    const float *x, *res, *init, *gamma, *beta;
} ln_case;

static void run_ln(drv *d, const void *p, float *out) {
    const ln_case *c = p;
    ember_weight g, b;
    wprep(d, EMBER_W_VECTOR, c->gamma, 0, c->cols, "gamma", &g);
    if (c->use_beta)
        wprep(d, EMBER_W_VECTOR, c->beta, 0, c->cols, "beta", &b);
    ember_view x = dmat(d, c->x, c->rows, c->ld);
    ember_view r = c->use_res ? ember_view_cols(dmat(d, c->res, c->rows, c->ld), c->off, c->cols)
                              : ember_view_none();
    ember_view o = c->alias ? x : dmat(d, c->init, c->rows, c->ld);
    CHECK_OK(d->ops->layer_norm(d->dctx, ember_view_cols(x, c->off, c->cols), r, &g,
                                c->use_beta ? &b : NULL, c->eps, ember_view_cols(o, c->off, c->cols)));
    dget(d, o, out);
    wfree(d, &g);
    if (c->use_beta)
        wfree(d, &b);
}

static void test_ln(int64_t rows, int64_t cols, int64_t ld, int64_t off, int use_res, int use_beta,
                    int alias, float eps) {
    ln_case c = {rows, cols, ld, off, use_res, use_beta, alias, eps, NULL, NULL, NULL, NULL, NULL};
    size_t n = (size_t)(rows * ld);
    float *x = rvec(n, 3.0f), *res = rvec(n, 1.0f), *init = rvec(n, 1.0f);
    float *gamma = rvec((size_t)cols, 1.0f), *beta = rvec((size_t)cols, 0.5f);
    for (int64_t k = 0; k < cols; k++)
        x[off + k] += 5.0f; /* a row with a large mean */
    float *want = fdup(alias == 1 ? x : init, n);
    for (int64_t r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (int64_t k = 0; k < cols; k++)
            mean += (double)x[r * ld + off + k] + (use_res ? res[r * ld + off + k] : 0.0);
        mean /= (double)cols;
        for (int64_t k = 0; k < cols; k++) {
            double v = (double)x[r * ld + off + k] + (use_res ? res[r * ld + off + k] : 0.0) - mean;
            var += v * v;
        }
        var /= (double)cols;
        for (int64_t k = 0; k < cols; k++) {
            double v = (double)x[r * ld + off + k] + (use_res ? res[r * ld + off + k] : 0.0);
            want[r * ld + off + k] =
                (float)((v - mean) / sqrt(var + eps) * gamma[k] + (use_beta ? beta[k] : 0.0));
        }
    }
    c.x = x;
    c.res = res;
    c.init = init;
    c.gamma = gamma;
    c.beta = beta;
    char what[96];
    snprintf(what, sizeof what, "%lldx%lld ld %lld res %d beta %d alias %d", (long long)rows,
             (long long)cols, (long long)ld, use_res, use_beta, alias);
    check_case(EMBER_OP_LAYER_NORM, what, run_ln, &c, want, n, 1e-5, 1e-4, 0);
    free(x);
    free(res);
    free(init);
    free(gamma);
    free(beta);
    free(want);
}

/* ---- rms_norm ---- */

typedef struct {
    int64_t rows, cols, ld, off, group;
    float offset, eps;
    int alias; /* 0: separate out, 1: out is x, 2: out is the residual (x += norm) */
    const float *x, *init, *w;
} rms_case;

static void run_rms(drv *d, const void *p, float *out) {
    const rms_case *c = p;
    ember_weight w;
    wprep(d, EMBER_W_VECTOR, c->w, 0, c->group, "rms.w", &w);
    ember_view x = dmat(d, c->x, c->rows, c->ld);
    ember_view o = c->alias == 1 ? x : dmat(d, c->init, c->rows, c->ld);
    ember_rms_args a = {.x = ember_view_cols(x, c->off, c->cols), .w = &w, .eps = c->eps,
                        .offset = c->offset, .group = c->group,
                        .residual = c->alias == 2 ? ember_view_cols(o, c->off, c->cols)
                                                  : ember_view_none(),
                        .out = ember_view_cols(o, c->off, c->cols)};
    CHECK_OK(d->ops->rms_norm(d->dctx, &a));
    dget(d, o, out);
    wfree(d, &w);
}

static void test_rms(int64_t rows, int64_t cols, int64_t ld, int64_t off, int64_t group,
                     float offset, int alias) {
    rms_case c = {rows, cols, ld, off, group, offset, 1e-6f, alias, NULL, NULL, NULL};
    size_t n = (size_t)(rows * ld);
    float *x = rvec(n, 3.0f), *init = rvec(n, 1.0f), *w = rvec((size_t)group, 1.0f);
    float *want = fdup(alias == 1 ? x : init, n);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g0 = 0; g0 < cols; g0 += group) {
            double ss = 0;
            for (int64_t k = 0; k < group; k++)
                ss += (double)x[r * ld + off + g0 + k] * x[r * ld + off + g0 + k];
            double inv = 1.0 / sqrt(ss / (double)group + c.eps);
            for (int64_t k = 0; k < group; k++)
                want[r * ld + off + g0 + k] =
                    (float)((alias == 2 ? (double)init[r * ld + off + g0 + k] : 0.0) +
                            x[r * ld + off + g0 + k] * inv * ((double)w[k] + offset));
        }
    c.x = x;
    c.init = init;
    c.w = w;
    char what[96];
    snprintf(what, sizeof what, "%lldx%lld ld %lld group %lld offset %g alias %d", (long long)rows,
             (long long)cols, (long long)ld, (long long)group, offset, alias);
    check_case(EMBER_OP_RMS_NORM, what, run_rms, &c, want, n, 1e-5, 1e-4, 0);
    free(x);
    free(init);
    free(w);
    free(want);
}

/* ---- linear ---- */

typedef struct {
    int64_t rows, in, out, ldx, offx, ldy, offy;
    int use_bias, act, res_mode; /* res_mode: 0 none, 1 separate, 2 y aliases it */
    const float *x, *w, *b, *res, *init;
} lin_case;

static void run_linear(drv *d, const void *p, float *out) {
    const lin_case *c = p;
    ember_weight w, b;
    wprep(d, EMBER_W_MATRIX, c->w, c->out, c->in, "linear.w", &w);
    if (c->use_bias)
        wprep(d, EMBER_W_VECTOR, c->b, 0, c->out, "linear.b", &b);
    ember_view x = dmat(d, c->x, c->rows, c->ldx);
    ember_view y = dmat(d, c->res_mode == 2 ? c->res : c->init, c->rows, c->ldy);
    ember_view r = ember_view_none();
    if (c->res_mode == 1)
        r = ember_view_cols(dmat(d, c->res, c->rows, c->ldy), c->offy, c->out);
    if (c->res_mode == 2)
        r = ember_view_cols(y, c->offy, c->out);
    ember_linear_args a = {.x = ember_view_cols(x, c->offx, c->in), .w = &w,
                           .bias = c->use_bias ? &b : NULL, .act = (ember_act)c->act,
                           .residual = r, .y = ember_view_cols(y, c->offy, c->out)};
    CHECK_OK(d->ops->linear(d->dctx, &a));
    dget(d, y, out);
    wfree(d, &w);
    if (c->use_bias)
        wfree(d, &b);
}

static void test_linear(int64_t rows, int64_t in, int64_t out, int64_t ldx, int64_t offx,
                        int64_t ldy, int64_t offy, int use_bias, int act, int res_mode) {
    lin_case c = {rows, in, out, ldx, offx, ldy, offy, use_bias, act, res_mode,
                  NULL, NULL, NULL, NULL, NULL};
    size_t ny = (size_t)(rows * ldy);
    float *x = rvec((size_t)(rows * ldx), 1.0f);
    float *w = rvec((size_t)(out * in), 2.0f / sqrtf((float)in));
    float *b = rvec((size_t)out, 0.5f), *res = rvec(ny, 1.0f), *init = rvec(ny, 1.0f);
    float *want = fdup(res_mode == 2 ? res : init, ny);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < out; j++) {
            double s = 0;
            for (int64_t k = 0; k < in; k++)
                s += (double)x[r * ldx + offx + k] * w[j * in + k];
            if (use_bias)
                s += b[j];
            s = act_d(act, s);
            if (res_mode)
                s += res[r * ldy + offy + j];
            want[r * ldy + offy + j] = (float)s;
        }
    c.x = x;
    c.w = w;
    c.b = b;
    c.res = res;
    c.init = init;
    char what[128];
    snprintf(what, sizeof what, "%lldx%lld -> %lld ld %lld/%lld bias %d act %s res %s",
             (long long)rows, (long long)in, (long long)out, (long long)ldx, (long long)ldy,
             use_bias, act_name(act), res_mode == 2 ? "aliases y" : res_mode ? "yes" : "no");
    check_case(EMBER_OP_LINEAR, what, run_linear, &c, want, ny, 1e-4, 1e-4, 1);
    free(x);
    free(w);
    free(b);
    free(res);
    free(init);
    free(want);
}

/* ---- glu ---- */

typedef struct {
    int64_t rows, inter, ld_in, off_in, ld_out, off_out;
    int act;
    const float *in, *init;
} glu_case;

static void run_glu(drv *d, const void *p, float *out) {
    const glu_case *c = p;
    ember_view in = dmat(d, c->in, c->rows, c->ld_in);
    ember_view o = dmat(d, c->init, c->rows, c->ld_out);
    CHECK_OK(d->ops->glu(d->dctx, ember_view_cols(in, c->off_in, 2 * c->inter), (ember_act)c->act,
                         ember_view_cols(o, c->off_out, c->inter)));
    dget(d, o, out);
}

static void test_glu(int64_t rows, int64_t inter, int64_t ld_in, int64_t off_in, int64_t ld_out,
                     int64_t off_out, int act) {
    glu_case c = {rows, inter, ld_in, off_in, ld_out, off_out, act, NULL, NULL};
    float *in = rvec((size_t)(rows * ld_in), 4.0f), *init = rvec((size_t)(rows * ld_out), 1.0f);
    float *want = fdup(init, (size_t)(rows * ld_out));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < inter; i++) {
            const float *row = in + r * ld_in + off_in;
            want[r * ld_out + off_out + i] = (float)(act_d(act, row[i]) * row[inter + i]);
        }
    c.in = in;
    c.init = init;
    char what[96];
    snprintf(what, sizeof what, "%lldx%lld act %s", (long long)rows, (long long)inter, act_name(act));
    check_case(EMBER_OP_GLU, what, run_glu, &c, want, (size_t)(rows * ld_out), 1e-5, 1e-4, 0);
    free(in);
    free(init);
    free(want);
}

/* ---- rope ---- */

typedef struct {
    seqdef s;
    int32_t d, nq, nk, max_pos;
    int64_t ld;
    int with_k;
    const float *buf, *table;
    const int32_t *pos;
} rope_case;

static void run_rope(drv *d, const void *p, float *out) {
    const rope_case *c = p;
    ember_weight t;
    wprep(d, EMBER_W_TABLE, c->table, c->max_pos, c->d, "rope.table", &t);
    ember_view b = dmat(d, c->buf, c->s.T, c->ld);
    int32_t *pos = dints(d, c->pos, (size_t)c->s.T);
    ember_rope_args a = {.q = ember_view_cols(b, 0, (int64_t)c->nq * c->d),
                         .k = c->with_k ? ember_view_cols(b, (int64_t)c->nq * c->d, (int64_t)c->nk * c->d)
                                        : ember_view_none(),
                         .head_dim = c->d, .positions = pos, .table = &t};
    CHECK_OK(d->ops->rope(d->dctx, &a));
    dget(d, b, out);
    wfree(d, &t);
}

static void test_rope(int n, const int32_t *lens, int32_t d, int32_t nq, int32_t nk, int32_t pos0,
                      int with_k) {
    rope_case c = {mkseqs(n, lens), d, nq, nk, 0, (int64_t)(nq + 2 * nk) * d + 3, with_k,
                   NULL, NULL, NULL};
    c.max_pos = pos0 + c.s.max_len;
    size_t nb = (size_t)(c.s.T * c.ld);
    float *buf = rvec(nb, 2.0f);
    float *table = malloc(sizeof(float) * (size_t)c.max_pos * (size_t)d);
    const int32_t half = d / 2;
    for (int32_t p = 0; p < c.max_pos; p++)
        for (int32_t i = 0; i < half; i++) {
            double f = (double)p * pow(10000.0, -2.0 * i / d);
            table[(int64_t)p * d + i] = (float)cos(f);
            table[(int64_t)p * d + half + i] = (float)sin(f);
        }
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)c.s.T);
    for (int s = 0; s < n; s++)
        for (int32_t t = c.s.start[s]; t < c.s.start[s + 1]; t++)
            pos[t] = pos0 + t - c.s.start[s];
    float *want = fdup(buf, nb);
    const int32_t heads = nq + (with_k ? nk : 0);
    for (int64_t t = 0; t < c.s.T; t++) {
        const float *cs = table + (int64_t)pos[t] * d;
        for (int32_t h = 0; h < heads; h++) {
            const float *x = buf + t * c.ld + (int64_t)h * d;
            float *y = want + t * c.ld + (int64_t)h * d;
            for (int32_t i = 0; i < half; i++) {
                y[i] = (float)((double)x[i] * cs[i] - (double)x[i + half] * cs[half + i]);
                y[i + half] = (float)((double)x[i + half] * cs[i] + (double)x[i] * cs[half + i]);
            }
        }
    }
    c.buf = buf;
    c.table = table;
    c.pos = pos;
    char what[96];
    snprintf(what, sizeof what, "T %lld head_dim %d q heads %d k heads %d pos +%d", (long long)c.s.T,
             d, nq, with_k ? nk : 0, pos0);
    check_case(EMBER_OP_ROPE, what, run_rope, &c, want, nb, 1e-5, 1e-4, 0);
    free(buf);
    free(table);
    free(pos);
    free(want);
}

/* ---- attention ---- */

typedef struct {
    seqdef s;
    int32_t nh, nkv, d, window, causal;
    ember_rows rows;
    int64_t ld_qkv, ld_q, ld_out, q_rows;
    const float *qkv, *qc, *init;
    const float *rel; /* NULL, or [nh, 2 * rel_span - 1] bias by distance (MPNet) */
    int32_t rel_span;
} attn_case;

/* test_attn adds a relative-position bias table when set */
static int g_attn_rel;

static void run_attn(drv *d, const void *p, float *out) {
    const attn_case *c = p;
    ember_seqs sq = dseqs(d, &c->s);
    const int64_t hq = (int64_t)c->nh * c->d, hkv = (int64_t)c->nkv * c->d;
    ember_view qkv = dmat(d, c->qkv, c->s.T, c->ld_qkv);
    ember_view q = c->rows == EMBER_ROWS_ALL ? ember_view_cols(qkv, 0, hq)
                                             : ember_view_cols(dmat(d, c->qc, c->q_rows, c->ld_q), 0, hq);
    ember_view o = dmat(d, c->init, c->q_rows, c->ld_out);
    ember_weight rel;
    if (c->rel)
        wprep(d, EMBER_W_TABLE, c->rel, c->nh, 2 * (int64_t)c->rel_span - 1, "attn.rel", &rel);
    ember_attn_args a = {.q = q, .k = ember_view_cols(qkv, hq, hkv),
                         .v = ember_view_cols(qkv, hq + hkv, hkv), .seqs = &sq, .n_heads = c->nh,
                         .n_kv_heads = c->nkv, .head_dim = c->d,
                         .scale = 1.0f / sqrtf((float)c->d), .window = c->window,
                         .causal = c->causal, .rows = c->rows,
                         .rel_bias = c->rel ? &rel : NULL, .rel_span = c->rel_span,
                         .out = ember_view_cols(o, 2, hq)};
    CHECK_OK(d->ops->attention(d->dctx, &a));
    dget(d, o, out);
    if (c->rel)
        wfree(d, &rel);
}

static void test_attn(int n, const int32_t *lens, int32_t nh, int32_t nkv, int32_t d,
                      int32_t window, int32_t causal, ember_rows rows) {
    attn_case c = {mkseqs(n, lens), nh, nkv, d, window, causal, rows, 0, 0, 0, 0, NULL, NULL, NULL,
                   NULL, 0};
    float *rel = NULL;
    if (g_attn_rel) {
        c.rel_span = c.s.max_len + 3;
        rel = rvec((size_t)nh * (size_t)(2 * c.rel_span - 1), 1.5f);
        c.rel = rel;
    }
    const int64_t hq = (int64_t)nh * d, hkv = (int64_t)nkv * d;
    c.ld_qkv = hq + 2 * hkv + 5;
    c.ld_q = hq + 7;
    c.ld_out = hq + 6; /* out at column 2 */
    c.q_rows = rows == EMBER_ROWS_ALL ? c.s.T : n;
    float *qkv = rvec((size_t)(c.s.T * c.ld_qkv), 2.0f);
    float *qc = rvec((size_t)(n * c.ld_q), 2.0f);
    float *init = rvec((size_t)(c.q_rows * c.ld_out), 1.0f);
    float *want = fdup(init, (size_t)(c.q_rows * c.ld_out));
    const double scale = 1.0f / sqrtf((float)d);
    double *sc = malloc(sizeof(double) * (size_t)c.s.max_len), *acc = malloc(sizeof(double) * (size_t)d);
    for (int s = 0; s < n; s++) {
        const int32_t len = c.s.start[s + 1] - c.s.start[s];
        const int64_t first = c.s.start[s];
        for (int32_t i = 0; i < len; i++) {
            int64_t qrow;
            const float *qbase;
            if (rows == EMBER_ROWS_ALL) {
                qrow = first + i;
                qbase = qkv + qrow * c.ld_qkv;
            } else {
                if (i != (rows == EMBER_ROWS_FIRST ? 0 : len - 1))
                    continue;
                qrow = s;
                qbase = qc + qrow * c.ld_q;
            }
            for (int32_t h = 0; h < nh; h++) {
                const int32_t kvh = h / (nh / nkv);
                const float *q = qbase + (int64_t)h * d;
                double m = -INFINITY, l = 0;
                for (int32_t j = 0; j < len; j++) {
                    if ((window > 0 && abs(i - j) > window) || (causal && j > i)) {
                        sc[j] = -INFINITY;
                        continue;
                    }
                    const float *k = qkv + (first + j) * c.ld_qkv + hq + (int64_t)kvh * d;
                    double dot = 0;
                    for (int32_t e = 0; e < d; e++)
                        dot += (double)q[e] * k[e];
                    sc[j] = dot * scale;
                    if (rel)
                        sc[j] += rel[(int64_t)h * (2 * c.rel_span - 1) + j - i + c.rel_span - 1];
                    m = fmax(m, sc[j]);
                }
                for (int32_t e = 0; e < d; e++)
                    acc[e] = 0;
                for (int32_t j = 0; j < len; j++) {
                    if (sc[j] == -INFINITY)
                        continue;
                    double pj = exp(sc[j] - m);
                    l += pj;
                    const float *v = qkv + (first + j) * c.ld_qkv + hq + hkv + (int64_t)kvh * d;
                    for (int32_t e = 0; e < d; e++)
                        acc[e] += pj * v[e];
                }
                for (int32_t e = 0; e < d; e++)
                    want[qrow * c.ld_out + 2 + (int64_t)h * d + e] = (float)(acc[e] / l);
            }
        }
    }
    free(sc);
    free(acc);
    c.qkv = qkv;
    c.qc = qc;
    c.init = init;
    char what[128];
    snprintf(what, sizeof what, "T %lld seqs %d heads %d/%d x %d window %d causal %d rows %s",
             (long long)c.s.T, n, nh, nkv, d, window, causal,
             rows == EMBER_ROWS_ALL ? "all" : rows == EMBER_ROWS_FIRST ? "first" : "last");
    check_case(rel ? EMBER_OP_ATTN_REL_BIAS : EMBER_OP_ATTENTION, what, run_attn, &c, want,
               (size_t)(c.q_rows * c.ld_out), 1e-4, 1e-4, 0);
    free(rel);
    free(qkv);
    free(qc);
    free(init);
    free(want);
}

/* ---- pool ---- */

typedef struct {
    seqdef s;
    int64_t cols, ld, off, ld_out;
    int32_t mode;
    const float *h, *init;
} pool_case;

static void run_pool(drv *d, const void *p, float *out) {
    const pool_case *c = p;
    ember_seqs sq = dseqs(d, &c->s);
    ember_view h = dmat(d, c->h, c->s.T, c->ld);
    ember_view o = dmat_dt(d, c->init, c->s.n, c->ld_out, EMBER_DT_F32); /* fp32 always */
    CHECK_OK(d->ops->pool(d->dctx, ember_view_cols(h, c->off, c->cols), &sq, c->mode,
                          ember_view_cols(o, 1, c->cols)));
    dget(d, o, out);
}

static void test_pool(int n, const int32_t *lens, int64_t cols, int64_t ld, int64_t off,
                      int32_t mode) {
    pool_case c = {mkseqs(n, lens), cols, ld, off, cols + 4, mode, NULL, NULL};
    float *h = rvec((size_t)(c.s.T * ld), 2.0f), *init = rvec((size_t)(n * c.ld_out), 1.0f);
    float *want = fdup(init, (size_t)(n * c.ld_out));
    for (int s = 0; s < n; s++) {
        const int64_t r0 = c.s.start[s], len = c.s.start[s + 1] - r0;
        for (int64_t k = 0; k < cols; k++) {
            double v = 0, wsum = 0;
            const float *col = h + r0 * ld + off + k;
            switch (mode) {
            case EMBER_POOLING_CLS: v = col[0]; break;
            case EMBER_POOLING_LAST_TOKEN: v = col[(len - 1) * ld]; break;
            case EMBER_POOLING_MAX:
                v = -INFINITY;
                for (int64_t r = 0; r < len; r++)
                    v = fmax(v, col[r * ld]);
                break;
            default:
                for (int64_t r = 0; r < len; r++) {
                    double wr = mode == EMBER_POOLING_WEIGHTED_MEAN ? (double)(r + 1) : 1.0;
                    v += wr * col[r * ld];
                    wsum += wr;
                }
                v /= mode == EMBER_POOLING_MEAN_SQRT_LEN ? sqrt((double)len) : wsum;
            }
            want[s * c.ld_out + 1 + k] = (float)v;
        }
    }
    c.h = h;
    c.init = init;
    const int exact = mode == EMBER_POOLING_CLS || mode == EMBER_POOLING_LAST_TOKEN ||
                      mode == EMBER_POOLING_MAX;
    char what[96];
    snprintf(what, sizeof what, "%s T %lld cols %lld", ember_pooling_name((ember_pooling)mode),
             (long long)c.s.T, (long long)cols);
    /* compared as fp32 whatever the activation dtype: the exact modes only
     * when activations are fp32 (the tolerance of check_case otherwise) */
    check_case(EMBER_OP_POOL, what, run_pool, &c, want, (size_t)(n * c.ld_out), exact ? 0 : 1e-6,
               exact ? 0 : 1e-5, 0);
    free(h);
    free(init);
    free(want);
}

/* ---- interface checks ---- */

static int msg_names(const char *op) {
    const char *m = ember_last_error();
    return m && strstr(m, op) != NULL;
}

#define CHECK_REFUSED(d, op, call)                                                           \
    do {                                                                                     \
        ember_status st_ = (call);                                                           \
        CHECK(st_ == EMBER_E_INTERNAL && msg_names(ember_op_name(op)),                      \
              "%s: %s returned %d, message \"%s\" (want EMBER_E_INTERNAL naming %s)",       \
              (d)->label, #call, st_, ember_last_error(), ember_op_name(op));               \
    } while (0)

/* Each op with an operand of a wrong dtype and one of a wrong shape. */
static void test_wrong_views(drv *d) {
    d->used = 0;
    const int32_t lens[2] = {3, 2};
    seqdef sd = mkseqs(2, lens);
    ember_seqs sq = dseqs(d, &sd);
    const int64_t C = 32;
    float *host = rvec((size_t)(C * C), 1.0f); /* the largest operand: a C x C matrix */
    ember_view m = dmat(d, host, 5, 2 * C);           /* 5 x 64 */
    ember_view x = ember_view_cols(m, 0, C);          /* 5 x 32 */
    ember_view o = ember_view_cols(dmat(d, host, 5, 2 * C), 0, C);
    ember_view bad = x;
    bad.dtype = EMBER_DT_I32;
    ember_weight vec, mat, tab;
    wprep(d, EMBER_W_VECTOR, host, 0, C, "vec", &vec);
    wprep(d, EMBER_W_MATRIX, host, C, C, "mat", &mat);
    wprep(d, EMBER_W_TABLE, host, 8, C, "tab", &tab);
    int32_t zeros[8] = {0};
    int32_t *idx = dints(d, zeros, 8);

    CHECK_REFUSED(d, EMBER_OP_GATHER, d->ops->gather(d->dctx, &tab, idx, bad, 0));
    CHECK_REFUSED(d, EMBER_OP_GATHER, d->ops->gather(d->dctx, &tab, idx, ember_view_cols(m, 0, C + 1), 0));

    CHECK_REFUSED(d, EMBER_OP_SELECT_ROWS, d->ops->select_rows(d->dctx, bad, &sq, EMBER_ROWS_FIRST, ember_view_rows(o, 0, 2)));
    CHECK_REFUSED(d, EMBER_OP_SELECT_ROWS, d->ops->select_rows(d->dctx, x, &sq, EMBER_ROWS_LAST, ember_view_rows(o, 0, 3)));

    CHECK_REFUSED(d, EMBER_OP_LAYER_NORM, d->ops->layer_norm(d->dctx, bad, ember_view_none(), &vec, NULL, 1e-5f, o));
    CHECK_REFUSED(d, EMBER_OP_LAYER_NORM, d->ops->layer_norm(d->dctx, x, ember_view_none(), &vec, NULL, 1e-5f, ember_view_rows(o, 0, 4)));
    CHECK_REFUSED(d, EMBER_OP_LAYER_NORM, d->ops->layer_norm(d->dctx, ember_view_cols(m, 0, 2 * C), ember_view_none(), &vec, NULL, 1e-5f, ember_view_cols(m, 0, 2 * C)));

    ember_rms_args ra = {.x = bad, .w = &vec, .eps = 1e-6f, .group = C, .out = o};
    CHECK_REFUSED(d, EMBER_OP_RMS_NORM, d->ops->rms_norm(d->dctx, &ra));
    ra.x = x;
    ra.group = 24; /* does not divide 32, and w has 32 values */
    CHECK_REFUSED(d, EMBER_OP_RMS_NORM, d->ops->rms_norm(d->dctx, &ra));

    ember_linear_args la = {.x = bad, .w = &mat, .y = o};
    CHECK_REFUSED(d, EMBER_OP_LINEAR, d->ops->linear(d->dctx, &la));
    la.x = x;
    la.y = ember_view_cols(m, 0, C - 1);
    CHECK_REFUSED(d, EMBER_OP_LINEAR, d->ops->linear(d->dctx, &la));
    la.y = o;
    la.bias = &tab; /* 8 x 32 is no vector of 32 */
    CHECK_REFUSED(d, EMBER_OP_LINEAR, d->ops->linear(d->dctx, &la));

    ember_view in2 = ember_view_cols(m, 0, 2 * C);
    in2.dtype = EMBER_DT_I32;
    CHECK_REFUSED(d, EMBER_OP_GLU, d->ops->glu(d->dctx, in2, EMBER_ACT_SILU, o));
    CHECK_REFUSED(d, EMBER_OP_GLU, d->ops->glu(d->dctx, ember_view_cols(m, 0, 2 * C), EMBER_ACT_SILU, ember_view_cols(o, 0, C - 2)));

    ember_rope_args pa = {.q = bad, .head_dim = 8, .positions = idx, .table = &tab};
    ember_weight tab8;
    wprep(d, EMBER_W_TABLE, host, 8, 8, "tab8", &tab8);
    pa.table = &tab8;
    CHECK_REFUSED(d, EMBER_OP_ROPE, d->ops->rope(d->dctx, &pa));
    pa.q = x;
    pa.k = ember_view_rows(ember_view_cols(m, C, 16), 0, 4);
    CHECK_REFUSED(d, EMBER_OP_ROPE, d->ops->rope(d->dctx, &pa));

    ember_attn_args aa = {.q = x, .k = ember_view_cols(m, 0, 16), .v = ember_view_cols(m, 16, 16),
                          .seqs = &sq, .n_heads = 2, .n_kv_heads = 1, .head_dim = 16,
                          .scale = 0.25f, .out = o};
    aa.k.dtype = EMBER_DT_I32;
    CHECK_REFUSED(d, EMBER_OP_ATTENTION, d->ops->attention(d->dctx, &aa));
    aa.k.dtype = d->act;
    aa.out = ember_view_rows(o, 0, 2);
    CHECK_REFUSED(d, EMBER_OP_ATTENTION, d->ops->attention(d->dctx, &aa));
    aa.out = o;
    aa.n_kv_heads = 3;
    CHECK_REFUSED(d, EMBER_OP_ATTENTION, d->ops->attention(d->dctx, &aa));

    ember_view po = ember_view_of(o.data, EMBER_DT_F32, 2, C, o.ld);
    CHECK_REFUSED(d, EMBER_OP_POOL, d->ops->pool(d->dctx, bad, &sq, EMBER_POOLING_MEAN, po));
    CHECK_REFUSED(d, EMBER_OP_POOL, d->ops->pool(d->dctx, x, &sq, EMBER_POOLING_MEAN, ember_view_cols(po, 0, C - 1)));

    wfree(d, &vec);
    wfree(d, &mat);
    wfree(d, &tab);
    wfree(d, &tab8);
    free(host);
}

static void test_find(void) {
    int32_t dev = -1;
    const ember_driver_ops *cpu = ember_driver_find("cpu:1", &dev);
    CHECK(cpu && strcmp(cpu->name, "cpu") == 0 && dev == 1, "find(\"cpu:1\"): %s, device %d",
          cpu ? cpu->name : "NULL", dev);
    if (cpu) {
        ember_driver_config cfg = {.compute_dtype = EMBER_DTYPE_F32, .pack_weights = 1, .device = dev};
        void *impl = NULL;
        ember_status st = cpu->init(&cfg, &impl);
        const char *msg = ember_last_error();
        CHECK(st != EMBER_OK && msg && *msg, "cpu init on device 1: status %d, message \"%s\"", st,
              msg ? msg : "");
        printf("cpu init on device 1: %s (%s)\n", ember_status_str(st), msg ? msg : "");
        if (st == EMBER_OK && impl)
            cpu->release(impl);
    }
    CHECK(ember_driver_find("nope", NULL) == NULL, "find(\"nope\") is not NULL");
    CHECK(ember_driver_find("nope:0", NULL) == NULL, "find(\"nope:0\") is not NULL");
    const ember_driver_ops *ref = ember_driver_find("cpu-ref", &dev);
    CHECK(ref == &ember_cpu_ref_driver_ops && dev == 0, "find(\"cpu-ref\")");
    /* auto: the first driver whose probe does not refuse (a GPU driver
     * without a device steps aside for the CPU) */
    const ember_driver_ops *first = NULL;
    for (int i = 0; i < ember_driver_count() && !first; i++)
        if (!ember_driver_at(i)->probe || ember_driver_at(i)->probe())
            first = ember_driver_at(i);
    CHECK(first && ember_driver_find(NULL, NULL) == first, "find(NULL) is not the first usable");
}

/* ---- main ---- */

static void add_instance(const ember_driver_ops *ops, int pack, int compute, const char *tile) {
    if (g_n_inst == MAX_INST)
        return;
    drv *d = &g_inst[g_n_inst];
    memset(d, 0, sizeof *d);
    d->ops = ops;
    d->pack = pack;
    d->compute = compute;
    snprintf(d->label, sizeof d->label, "%s%s%s%s%s", ops->name, pack ? "" : " (in place)",
             compute == EMBER_DTYPE_BF16 ? " bf16" : compute == EMBER_DTYPE_INT8 ? " int8" : "",
             tile ? " " : "", tile ? tile : "");
    ember_driver_config cfg = {.compute_dtype = compute, .pack_weights = pack, .device = 0};
    /* the GEMM reads its forced choices at init */
    if (tile)
        setenv("EMBER_GEMM_TILE", tile, 1);
    ember_status st = ops->init(&cfg, &d->impl);
    if (tile)
        unsetenv("EMBER_GEMM_TILE");
    if (st != EMBER_OK) {
        /* the CPU drivers always start; a GPU driver without a usable
         * device says why and is skipped */
        CHECK(strncmp(ops->name, "cpu", 3) != 0, "%s: init: %s", d->label, ember_last_error());
        printf("driver %-18s skipped: %s\n", d->label, ember_last_error());
        return;
    }
    d->act = ops->act_dtype(d->impl);
    for (int op = 0; op < EMBER_OP_COUNT; op++)
        CHECK(ops->supports(d->impl, (ember_op_kind)op, d->act), "%s does not support %s on %s",
              d->label, ember_op_name((ember_op_kind)op), ember_dt_name(d->act));
    CHECK(!ops->supports(d->impl, EMBER_OP_COUNT, d->act), "%s supports op %d", d->label,
          EMBER_OP_COUNT);
    ember_ctx_limits lim = {.max_tokens = 512, .max_seqs = 8, .max_seq_len = 256, .n_heads = 16,
                            .head_dim = 128, .scratch_bytes = (int64_t)ARENA_BYTES};
    void *arena = NULL;
    st = ops->ctx_init(d->impl, 2, &lim, &d->dctx, &arena);
    CHECK(st == EMBER_OK && arena, "%s: ctx_init: %s", d->label, ember_last_error());
    if (st != EMBER_OK) {
        ops->release(d->impl);
        return;
    }
    d->arena = arena;
    if (pack && strcmp(ops->name, "cpu-ref") == 0)
        g_ref = g_n_inst;
    printf("driver %-18s kernels: %s, activations %s\n", d->label,
           ops->kernels ? ops->kernels(d->impl) : "?", ember_dt_name(d->act));
    g_n_inst++;
}

int main(void) {
    /* the fp32 tolerance (1e-4) is for fp32 products: a GPU driver's TF32
     * tensor-core default (10-bit mantissas) is turned off here */
    setenv("EMBER_CUDA_TF32", "0", 1);
    test_find();
    for (int pack = 1; pack >= 0; pack--)
        for (int i = 0; i < ember_driver_count(); i++) {
            add_instance(ember_driver_at(i), pack, EMBER_DTYPE_F32, NULL);
            /* a GPU driver's bf16 activations run other kernels (tensor-core
             * attention): one more instance, at the bf16 tolerance */
            if (pack && strncmp(ember_driver_at(i)->name, "cpu", 3) != 0)
                add_instance(ember_driver_at(i), pack, EMBER_DTYPE_BF16, NULL);
        }
    /* the cpu driver's reduced-precision matmuls, with and without AMX */
    for (int dt = EMBER_DTYPE_BF16; dt <= EMBER_DTYPE_INT8; dt++) {
        add_instance(&ember_cpu_driver_ops, 1, dt, NULL);
        add_instance(&ember_cpu_driver_ops, 1, dt, "noamx");
    }
    CHECK(g_ref >= 0, "no cpu-ref driver");
    if (g_ref < 0)
        return test_finish("test_driver_conformance");

    /* model-sized: three packed sequences; odd: lengths 1 and 13 */
    const int32_t L3[3] = {1, 77, 200}, L2[2] = {1, 13}, LQ[3] = {5, 37, 19};
    const int64_t T3 = 278;

    test_gather(1000, 384, T3, 384, 0, 0, 0.0f);
    test_gather(1000, 384, T3, 384, 0, 1, 0.0f);
    test_gather(50, 72, 13, 80, 5, 0, 0.0f);
    test_gather(50, 40, 14, 47, 7, 1, 0.0f);
    test_gather(1000, 768, T3, 768, 0, 0, 27.7128129f); /* Gemma's sqrt(768) */
    test_gather(50, 40, 14, 47, 7, 1, 27.7128129f);

    for (int w = EMBER_ROWS_FIRST; w <= EMBER_ROWS_LAST; w++) {
        test_select(3, L3, 384, 384, 0, 384, 0, (ember_rows)w);
        test_select(2, L2, 72, 1152, 384, 80, 3, (ember_rows)w);
    }

    test_ln(T3, 384, 384, 0, 1, 1, 0, 1e-12f);
    test_ln(T3, 384, 384, 0, 0, 1, 1, 1e-12f);
    test_ln(13, 72, 80, 5, 1, 0, 0, 1e-5f);
    test_ln(1, 40, 47, 3, 0, 0, 1, 1e-5f);
    test_ln(14, 40, 40, 0, 1, 0, 1, 1e-5f);

    for (int off = 0; off <= 1; off++) {
        test_rms(T3, 384, 384, 0, 384, (float)off, 0);
        test_rms(T3, 384, 1152, 384, 32, (float)off, 1);     /* per-head k norm in QKV */
        test_rms(42, 2048, 4096, 0, 128, (float)off, 1);     /* Qwen3 q norm */
        test_rms(13, 72, 80, 5, 72, (float)off, 0);
        test_rms(13, 72, 80, 5, 24, (float)off, 1);
        test_rms(1, 40, 40, 0, 8, (float)off, 0);
        test_rms(T3, 384, 384, 0, 384, (float)off, 2);      /* Gemma: x += norm(branch) */
        test_rms(13, 72, 80, 5, 72, (float)off, 2);
    }

    test_linear(T3, 384, 1536, 384, 0, 1536, 0, 1, EMBER_ACT_GELU, 0);
    test_linear(T3, 1536, 384, 1536, 0, 384, 0, 1, EMBER_ACT_NONE, 1);
    test_linear(T3, 384, 384, 384, 0, 1152, 384, 0, EMBER_ACT_NONE, 2);
    for (int act = EMBER_ACT_NONE; act < EMBER_ACT_COUNT; act++) {
        test_linear(13, 72, 40, 80, 5, 47, 3, act & 1, act, 0);
        test_linear(1, 40, 72, 40, 0, 72, 0, 1, act, 1);
        test_linear(37, 72, 100, 150, 64, 100, 0, 0, act, act % 2);
    }
    test_linear(13, 72, 40, 80, 5, 47, 3, 1, EMBER_ACT_NONE, 2);
    test_linear(131, 40, 33, 40, 0, 33, 0, 0, EMBER_ACT_NONE, 2);

    const int glu_acts[3] = {EMBER_ACT_GELU, EMBER_ACT_GELU_TANH, EMBER_ACT_SILU};
    for (int a = 0; a < 3; a++) {
        test_glu(T3, 1536, 3072, 0, 1536, 0, glu_acts[a]);
        test_glu(13, 40, 90, 5, 47, 2, glu_acts[a]);
        test_glu(1, 72, 144, 0, 72, 0, glu_acts[a]);
    }

    test_rope(3, L3, 32, 12, 12, 0, 1);
    test_rope(3, LQ, 128, 16, 8, 3, 1);   /* Qwen3-0.6B: 16 q heads, 8 k heads */
    test_rope(2, L2, 24, 3, 1, 5, 1);
    test_rope(2, L2, 8, 5, 0, 0, 0);      /* q only */

    test_attn(3, L3, 12, 12, 32, 0, 0, EMBER_ROWS_ALL);
    test_attn(3, L3, 12, 12, 32, 16, 0, EMBER_ROWS_ALL);
    test_attn(3, L3, 12, 12, 32, 0, 1, EMBER_ROWS_ALL);
    test_attn(3, L3, 12, 12, 32, 16, 1, EMBER_ROWS_ALL);  /* window + causal */
    test_attn(3, L3, 12, 12, 32, 0, 0, EMBER_ROWS_FIRST);
    test_attn(3, L3, 12, 12, 32, 0, 0, EMBER_ROWS_LAST);
    test_attn(3, LQ, 16, 8, 128, 0, 1, EMBER_ROWS_ALL);   /* causal + GQA */
    test_attn(3, LQ, 16, 8, 128, 0, 1, EMBER_ROWS_LAST);
    test_attn(3, LQ, 16, 8, 128, 0, 0, EMBER_ROWS_ALL);
    test_attn(2, L2, 3, 1, 24, 0, 0, EMBER_ROWS_ALL);
    test_attn(2, L2, 3, 1, 24, 3, 0, EMBER_ROWS_ALL);
    test_attn(2, L2, 4, 2, 8, 0, 1, EMBER_ROWS_ALL);
    test_attn(2, L2, 4, 2, 8, 2, 1, EMBER_ROWS_ALL);
    test_attn(2, L2, 3, 1, 24, 0, 0, EMBER_ROWS_FIRST);
    test_attn(2, L2, 4, 2, 8, 0, 1, EMBER_ROWS_LAST);
    /* MPNet's relative-position bias: full, first-token and odd head_dim */
    g_attn_rel = 1;
    test_attn(3, LQ, 12, 12, 32, 0, 0, EMBER_ROWS_ALL);
    test_attn(3, LQ, 12, 12, 32, 0, 0, EMBER_ROWS_FIRST);
    test_attn(2, L2, 3, 3, 24, 0, 0, EMBER_ROWS_ALL);
    g_attn_rel = 0;

    for (int32_t mode = EMBER_POOLING_CLS; mode <= EMBER_POOLING_LAST_TOKEN; mode++) {
        test_pool(3, L3, 384, 384, 0, mode);
        test_pool(2, L2, 72, 1152, 384, mode);
    }

    for (int i = 0; i < g_n_inst; i++)
        if (g_inst[i].pack)
            test_wrong_views(&g_inst[i]);

    /* one line per driver x op */
    for (int i = 0; i < g_n_inst; i++)
        for (int op = 0; op < EMBER_OP_POOL + 1; op++) {
            if (i == g_ref)
                printf("%-18s %-12s max rel diff vs double  %.3g (tol %.0e)\n", g_inst[i].label,
                       ember_op_name((ember_op_kind)op), g_ref_diff[op], g_ref_tol[op]);
            else if (g_ran[i][op])
                printf("%-18s %-12s max rel diff vs cpu-ref %.3g (tol %.0e)\n", g_inst[i].label,
                       ember_op_name((ember_op_kind)op), g_diff[i][op], g_tol[i][op]);
        }

    for (int i = 0; i < g_n_inst; i++) {
        g_inst[i].ops->ctx_free(g_inst[i].dctx);
        g_inst[i].ops->release(g_inst[i].impl);
    }
    return test_finish("test_driver_conformance");
}
