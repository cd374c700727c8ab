/*
 * cpu_driver.c — the CPU driver: weights used in place from the mapping,
 * ops split over a persistent thread pool, inner loops from the kernel table
 * chosen for this CPU (kernels.h).
 *
 * Matrix multiplies go to Ember's packed GEMM (gemm.h) over the table's
 * micro-kernels; everything else runs in the kernel table. Each op cuts
 * its work into tasks that the pool hands out; the calling thread works too.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/pooling.h"
#include "core/threadpool.h"
#include "core/util.h"
#include "drivers/cpu/gemm.h"
#include "drivers/cpu/kernels.h"
#include "drivers/driver.h"

typedef struct cpu_impl {
    const ember_cpu_kernels *k;
    ember_gemm gemm;
    char kernels_desc[192];
} cpu_impl;

typedef struct cpu_ctx {
    const cpu_impl *impl;
    ember_pool *pool;
    int n_threads;
    float *attn_scratch;   /* n_threads x attn_floats */
    float *gemm_scratch;   /* n_threads x ember_gemm_scratch_floats() */
    int64_t attn_floats;
    int64_t *task_prefix;  /* attention task prefix sums, max_seqs + 1 */
    int32_t max_seqs;
    void *arena;
    size_t arena_bytes;
} cpu_ctx;

#if defined(EMBER_HAVE_X86)
/* The AVX-512 table without the dot-product tiles this CPU lacks (Skylake-X
 * has neither, Ice Lake VNNI only, Zen 4 and Sapphire Rapids both). */
static ember_cpu_kernels g_avx512;
static char g_avx512_name[48];
static pthread_once_t g_avx512_once = PTHREAD_ONCE_INIT;
static void make_avx512_table(void) {
    const ember_cpu_caps *c = ember_cpu_caps_get();
    g_avx512 = ember_cpu_kernels_avx512;
    if (!c->avx512_bf16) {
        g_avx512.gemm_tile_bf16 = NULL;
        g_avx512.pack_a_bf16 = NULL;
    }
    if (!c->avx512_vnni) {
        g_avx512.gemm_tile_q8 = NULL;
        g_avx512.quant_a_q8 = NULL;
    }
    snprintf(g_avx512_name, sizeof g_avx512_name, "avx512%s%s", c->avx512_bf16 ? " bf16" : "",
             c->avx512_vnni ? " vnni" : "");
    g_avx512.name = g_avx512_name;
}
#endif

const ember_cpu_kernels *ember_cpu_kernels_forced;

const ember_cpu_kernels *ember_cpu_kernels_best(void) {
    if (ember_cpu_kernels_forced)
        return ember_cpu_kernels_forced;
#if defined(EMBER_HAVE_X86)
    const ember_cpu_caps *c = ember_cpu_caps_get();
    if (c->avx512f && c->avx512bw && c->avx512dq && c->avx512vl && c->fma) {
        pthread_once(&g_avx512_once, make_avx512_table);
        return &g_avx512;
    }
    if (c->avx2 && c->fma)
        return &ember_cpu_kernels_avx2;
#endif
#if defined(EMBER_HAVE_NEON)
    if (ember_cpu_caps_get()->neon)
        return &ember_cpu_kernels_neon;
#endif
    return &ember_cpu_kernels_ref;
}

/* ---- lifecycle ---- */

static ember_status cpu_init(const ember_driver_config *cfg, void **out) {
    cpu_impl *impl = ember_calloc(1, sizeof *impl, "cpu driver");
    if (!impl)
        return EMBER_E_NOMEM;
    impl->k = ember_cpu_kernels_best();
    ember_gemm_init(&impl->gemm, cfg->compute_dtype);
    impl->gemm.prepack = cfg->pack_weights;
    snprintf(impl->kernels_desc, sizeof impl->kernels_desc, "%s, matmul: %s", impl->k->name,
             ember_gemm_name(&impl->gemm, impl->k));
    *out = impl;
    return EMBER_OK;
}

/* "cpu-ref": the same driver on the portable scalar kernels (the ground
 * truth that ember bench checks the fast path against). */
static ember_status cpu_init_ref(const ember_driver_config *cfg, void **out) {
    EMBER_TRY(cpu_init(cfg, out));
    cpu_impl *impl = *out;
    impl->k = &ember_cpu_kernels_ref;
    snprintf(impl->kernels_desc, sizeof impl->kernels_desc, "%s, matmul: %s", impl->k->name,
             ember_gemm_name(&impl->gemm, impl->k));
    return EMBER_OK;
}

static void cpu_release(void *impl) { free(impl); }

static const char *cpu_kernels(void *impl) { return ((cpu_impl *)impl)->kernels_desc; }

static void cpu_ctx_free(void *p) {
    cpu_ctx *c = p;
    if (!c)
        return;
    ember_pool_free(c->pool);
    ember_aligned_free(c->attn_scratch);
    ember_aligned_free(c->gemm_scratch);
    free(c->task_prefix);
    ember_aligned_free(c->arena);
    free(c);
}

static ember_status cpu_ctx_init(void *impl, int n_threads, const ember_ctx_limits *lim,
                                 void **out, void **arena_base) {
    cpu_ctx *c = ember_calloc(1, sizeof *c, "cpu context");
    if (!c)
        return EMBER_E_NOMEM;
    c->impl = impl;
    c->n_threads = n_threads > 0 ? n_threads : 1;
    c->attn_floats = ember_attn_scratch_floats(lim->head_dim > 0 ? lim->head_dim : 64);
    c->max_seqs = lim->max_seqs > 0 ? lim->max_seqs : 1;
    c->arena_bytes = (size_t)lim->scratch_bytes;
    ember_status st = ember_pool_create(c->n_threads, &c->pool);
    if (st == EMBER_OK &&
        (!(c->attn_scratch = ember_aligned_alloc(sizeof(float) * (size_t)c->attn_floats *
                                                     (size_t)c->n_threads,
                                                 "attention scratch")) ||
         !(c->gemm_scratch = ember_aligned_alloc(sizeof(float) * ember_gemm_scratch_floats() *
                                                     (size_t)c->n_threads,
                                                 "matmul scratch")) ||
         !(c->task_prefix = ember_calloc((size_t)c->max_seqs + 1, sizeof(int64_t), "attention tasks")) ||
         !(c->arena = ember_aligned_alloc(c->arena_bytes, "activation arena"))))
        st = EMBER_E_NOMEM;
    if (st != EMBER_OK) {
        cpu_ctx_free(c);
        return st;
    }
    *out = c;
    *arena_base = c->arena;
    return EMBER_OK;
}

static int cpu_ctx_threads(void *dctx) { return ((cpu_ctx *)dctx)->n_threads; }

static ember_status cpu_copy(void *dctx, void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src)
        memcpy(dst, src, bytes);
    return EMBER_OK;
}

/* ---- weights ---- */

static ember_status cpu_weight_prepare(void *implp, const ember_st_tensor *t, ember_wkind kind,
                                       ember_weight *w) {
    cpu_impl *impl = implp;
    memset(w, 0, sizeof *w);
    w->kind = kind;
    w->name = t->name;
    w->rows = t->n_dims >= 2 ? t->shape[0] : 1;
    w->cols = t->n_dims >= 2 ? t->shape[1] : (t->n_dims == 1 ? t->shape[0] : 1);
    w->dtype = EMBER_DT_F32;
    size_t n = (size_t)t->n_elements;
    if (t->dtype == EMBER_DT_F32 && t->map && ((uintptr_t)t->data % sizeof(float)) == 0) {
        w->data = t->data; /* zero-copy: the weight holds the mapping alive */
        w->map = ember_mapping_retain(t->map);
        if (kind == EMBER_W_TABLE)
            ember_mapping_advise_random(w->map, t->data, (size_t)t->nbytes);
    } else {
        float *dst = ember_aligned_alloc(n * sizeof(float), t->name);
        if (!dst)
            return EMBER_E_NOMEM;
        const uint8_t *src = t->data;
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            switch (t->dtype) {
            case EMBER_DT_F32: memcpy(&dst[i], src + 4 * i, 4); break;
            case EMBER_DT_F16:
                memcpy(&h, src + 2 * i, 2);
                dst[i] = ember_f16_to_f32(h);
                break;
            case EMBER_DT_BF16:
                memcpy(&h, src + 2 * i, 2);
                dst[i] = ember_bf16_to_f32(h);
                break;
            default:
                ember_aligned_free(dst);
                return ember_error(EMBER_E_UNSUPPORTED, "tensor '%s': dtype %s is not supported",
                                   t->name, ember_dt_name(t->dtype));
            }
        }
        w->data = dst;
        w->owned = dst;
    }
    if (kind == EMBER_W_MATRIX) {
        EMBER_TRY(ember_gemm_prepare(&impl->gemm, w));
        if (w->packed) {
            /* only the packed panels are read from now on */
            ember_aligned_free(w->owned);
            w->owned = NULL;
            if (w->map)
                ember_mapping_drop_pages(w->map, t->data, (size_t)t->nbytes);
            w->data = NULL;
        }
    }
    return EMBER_OK;
}

static void cpu_weight_release(void *implp, ember_weight *w) {
    if (!w || (!w->data && !w->owned && !w->packed && !w->map))
        return;
    ember_gemm_release(w);
    ember_aligned_free(w->owned);
    ember_mapping_release(w->map);
    memset(w, 0, sizeof *w);
}

/* ---- row-parallel helper ---- */

typedef struct {
    int64_t rows, chunk;
    void (*fn)(void *arg, int64_t r0, int64_t r1, int thread);
    void *arg;
} rows_job;

static void rows_task(void *p, int64_t task, int thread) {
    rows_job *j = p;
    int64_t r0 = task * j->chunk, r1 = EMBER_MIN(j->rows, r0 + j->chunk);
    j->fn(j->arg, r0, r1, thread);
}

/* Splits [0, rows) into about 4 tasks per thread, at least `min_chunk` rows. */
static void parallel_rows(cpu_ctx *c, int64_t rows, int64_t min_chunk,
                          void (*fn)(void *, int64_t, int64_t, int), void *arg) {
    if (rows <= 0)
        return;
    int64_t chunk = (rows + 4 * c->n_threads - 1) / (4 * c->n_threads);
    if (chunk < min_chunk)
        chunk = min_chunk;
    rows_job j = {rows, chunk, fn, arg};
    ember_pool_run(c->pool, rows_task, &j, (rows + chunk - 1) / chunk);
}

/* ---- gather ---- */

typedef struct {
    const float *table;
    int64_t cols;
    const int32_t *idx;
    float *out;
    int accumulate;
} gather_job;

static void gather_rows(void *p, int64_t r0, int64_t r1, int thread) {
    gather_job *j = p;
    for (int64_t r = r0; r < r1; r++) {
        const float *src = j->table + (int64_t)j->idx[r] * j->cols;
        float *dst = j->out + r * j->cols;
        if (j->accumulate)
            for (int64_t c = 0; c < j->cols; c++)
                dst[c] += src[c];
        else
            memcpy(dst, src, sizeof(float) * (size_t)j->cols);
    }
}

static ember_status cpu_gather(void *dctx, const ember_weight *table, const int32_t *idx,
                               int64_t n, float *out, int accumulate) {
    gather_job j = {table->data, table->cols, idx, out, accumulate};
    parallel_rows(dctx, n, 64, gather_rows, &j);
    return EMBER_OK;
}

/* ---- layer norm ---- */

typedef struct {
    const ember_cpu_kernels *k;
    const float *x, *res, *gamma, *beta;
    float eps;
    int64_t cols;
    float *out;
} ln_job;

static void ln_rows(void *p, int64_t r0, int64_t r1, int thread) {
    ln_job *j = p;
    for (int64_t r = r0; r < r1; r++)
        j->k->layer_norm_row(j->x + r * j->cols, j->res ? j->res + r * j->cols : NULL, j->gamma,
                             j->beta, j->eps, j->cols, j->out + r * j->cols);
}

static ember_status cpu_layer_norm(void *dctx, const float *x, const float *residual,
                                   const ember_weight *gamma, const ember_weight *beta, float eps,
                                   int64_t rows, int64_t cols, float *out) {
    cpu_ctx *c = dctx;
    ln_job j = {c->impl->k, x, residual, gamma->data, beta ? beta->data : NULL, eps, cols, out};
    parallel_rows(c, rows, 16, ln_rows, &j);
    return EMBER_OK;
}

/* ---- linear ---- */

static ember_status cpu_linear(void *dctx, const ember_linear_args *a) {
    cpu_ctx *c = dctx;
    if (a->residual == a->y && a->act != EMBER_ACT_NONE)
        return ember_error(EMBER_E_INTERNAL, "linear: residual may alias y only without activation");
    return ember_gemm_linear(&c->impl->gemm, c->impl->k, c->pool, c->gemm_scratch, a);
}

/* ---- GeGLU ---- */

typedef struct {
    const ember_cpu_kernels *k;
    const float *in;
    int64_t inter;
    float *out;
} geglu_job;

static void geglu_rows(void *p, int64_t r0, int64_t r1, int thread) {
    geglu_job *j = p;
    for (int64_t r = r0; r < r1; r++)
        j->k->geglu_row(j->in + r * 2 * j->inter, j->inter, j->out + r * j->inter);
}

static ember_status cpu_geglu(void *dctx, const float *in, int64_t rows, int64_t inter,
                              float *out) {
    cpu_ctx *c = dctx;
    geglu_job j = {c->impl->k, in, inter, out};
    parallel_rows(c, rows, 8, geglu_rows, &j);
    return EMBER_OK;
}

/* ---- RoPE ---- */

typedef struct {
    const ember_cpu_kernels *k;
    const ember_rope_args *a;
} rope_job;

static void rope_rows(void *p, int64_t r0, int64_t r1, int thread) {
    rope_job *j = p;
    const ember_rope_args *a = j->a;
    const float *table = a->table->data;
    int32_t half = a->head_dim / 2;
    int64_t hidden = (int64_t)a->n_heads * a->head_dim;
    for (int64_t r = r0; r < r1; r++) {
        const float *cs = table + (int64_t)a->positions[r] * a->head_dim;
        float *row = a->qkv + r * a->ld_qkv;
        for (int32_t h = 0; h < a->n_heads; h++) {
            j->k->rope_head(row + h * a->head_dim, cs, cs + half, a->head_dim);          /* Q */
            j->k->rope_head(row + hidden + h * a->head_dim, cs, cs + half, a->head_dim); /* K */
        }
    }
}

static ember_status cpu_rope(void *dctx, const ember_rope_args *a) {
    cpu_ctx *c = dctx;
    rope_job j = {c->impl->k, a};
    parallel_rows(c, a->rows, 16, rope_rows, &j);
    return EMBER_OK;
}

/* ---- attention ---- */

typedef struct {
    cpu_ctx *c;
    const ember_attn_args *a;
} attn_job;

/* Task t -> (sequence, head, query block) through the prefix sums of the
 * number of (head, block) pairs per sequence. */
static void attn_task(void *p, int64_t task, int thread) {
    attn_job *j = p;
    const ember_attn_args *a = j->a;
    const ember_seqs *sq = a->seqs;
    const int64_t *prefix = j->c->task_prefix;
    int32_t lo = 0, hi = sq->n_seqs; /* find s with prefix[s] <= task < prefix[s+1] */
    while (hi - lo > 1) {
        int32_t mid = (lo + hi) / 2;
        if (prefix[mid] <= task)
            lo = mid;
        else
            hi = mid;
    }
    int32_t s = lo;
    int32_t len = sq->start[s + 1] - sq->start[s];
    const int32_t qb = a->window > 0 ? EMBER_ATTN_QBLOCK_LOCAL : EMBER_ATTN_QBLOCK;
    int32_t nblk = a->first_only ? 1 : (len + qb - 1) / qb;
    int64_t local = task - prefix[s];
    int32_t head = (int32_t)(local / nblk), blk = (int32_t)(local % nblk);
    int64_t hidden = (int64_t)a->n_heads * a->head_dim;
    const float *base = a->qkv + (int64_t)sq->start[s] * a->ld_qkv + (int64_t)head * a->head_dim;
    const float *q = a->first_only ? a->q + (int64_t)s * a->ld_q + (int64_t)head * a->head_dim : base;
    int64_t out_row = a->first_only ? s : sq->start[s];
    ember_attn_tile t = {
        .q = q,
        .ld_q = a->first_only ? a->ld_q : a->ld_qkv,
        .k = base + hidden,
        .v = base + 2 * hidden,
        .ld = a->ld_qkv,
        .out = a->out + out_row * a->ld_out + (int64_t)head * a->head_dim,
        .ld_out = a->ld_out,
        .len = len,
        .q0 = blk * qb,
        .q1 = a->first_only ? 1 : EMBER_MIN(len, (blk + 1) * qb),
        .head_dim = a->head_dim,
        .window = a->window,
        .scale = a->scale,
        .scratch = j->c->attn_scratch + (int64_t)thread * j->c->attn_floats,
    };
    j->c->impl->k->attention_tile(&t);
}

static ember_status cpu_attention(void *dctx, const ember_attn_args *a) {
    cpu_ctx *c = dctx;
    const ember_seqs *sq = a->seqs;
    if (sq->n_seqs > c->max_seqs)
        return ember_error(EMBER_E_INTERNAL, "attention: %d sequences exceed the context's %d",
                           sq->n_seqs, c->max_seqs);
    if (ember_attn_scratch_floats(a->head_dim) > c->attn_floats)
        return ember_error(EMBER_E_INTERNAL, "attention: head_dim %d exceeds the scratch",
                           a->head_dim);
    const int32_t qb = a->window > 0 ? EMBER_ATTN_QBLOCK_LOCAL : EMBER_ATTN_QBLOCK;
    c->task_prefix[0] = 0;
    for (int32_t s = 0; s < sq->n_seqs; s++) {
        int32_t len = sq->start[s + 1] - sq->start[s];
        int64_t blocks = a->first_only ? 1 : (len + qb - 1) / qb;
        c->task_prefix[s + 1] = c->task_prefix[s] + blocks * a->n_heads;
    }
    attn_job j = {c, a};
    ember_pool_run(c->pool, attn_task, &j, c->task_prefix[sq->n_seqs]);
    return EMBER_OK;
}

/* ---- pooling and normalization ---- */

typedef struct {
    const float *hidden;
    int64_t cols;
    const ember_seqs *seqs;
    int32_t mode;
    float *out;
} pool_job;



static void pool_seq(void *p, int64_t s, int thread) {
    pool_job *j = p;
    int64_t r0 = j->seqs->start[s], r1 = j->seqs->start[s + 1];
    ember_pool_sequence(j->hidden + r0 * j->cols, r1 - r0, j->cols, j->mode, j->out + s * j->cols);
}

static ember_status cpu_pool(void *dctx, const float *hidden, int64_t cols, const ember_seqs *seqs,
                             int32_t mode, float *out) {
    cpu_ctx *c = dctx;
    pool_job j = {hidden, cols, seqs, mode, out};
    ember_pool_run(c->pool, pool_seq, &j, seqs->n_seqs);
    return EMBER_OK;
}



static ember_status cpu_l2_normalize(void *dctx, float *x, int64_t rows, int64_t cols) {
    ember_l2_normalize_rows(x, rows, cols);
    return EMBER_OK;
}


#define CPU_OPS_COMMON                         \
    .release = cpu_release,                    \
    .kernels = cpu_kernels,                    \
    .ctx_init = cpu_ctx_init,                  \
    .ctx_free = cpu_ctx_free,                  \
    .ctx_threads = cpu_ctx_threads,            \
    .upload = cpu_copy,                        \
    .download = cpu_copy,                      \
    .weight_prepare = cpu_weight_prepare,      \
    .weight_release = cpu_weight_release,      \
    .gather = cpu_gather,                      \
    .layer_norm = cpu_layer_norm,              \
    .linear = cpu_linear,                      \
    .geglu = cpu_geglu,                        \
    .rope = cpu_rope,                          \
    .attention = cpu_attention,                \
    .pool = cpu_pool,                          \
    .l2_normalize = cpu_l2_normalize

const ember_driver_ops ember_cpu_ref_driver_ops = {.name = "cpu-ref", .init = cpu_init_ref, CPU_OPS_COMMON};
const ember_driver_ops ember_cpu_driver_ops = {.name = "cpu", .init = cpu_init, CPU_OPS_COMMON};
