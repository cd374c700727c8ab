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
    int keep_bf16;         /* dtype auto: BF16 checkpoints stay BF16 in memory */
    int attn_products;     /* bf16/int8 compute: attention's products with bf16
                              operands, on AMX when the GEMM runs there, else on
                              AVX512_BF16 tiles (EMBER_ATTN_FP32 where the
                              table has neither, or with EMBER_ATTN_BF16=0)    */
    char kernels_desc[320];
} cpu_impl;

typedef struct cpu_ctx {
    const cpu_impl *impl;
    ember_pool *pool;
    int n_threads;
    float *attn_scratch;   /* n_threads x attn_floats */
    ember_gemm_ws gemm_ws; /* scratch: n_threads x ember_gemm_scratch_floats() */
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
        g_avx512.gemm_tile_bf16_wide = NULL;
        g_avx512.pack_a_bf16 = NULL;
        g_avx512.peak_bf16 = NULL;
        g_avx512.pack_kt_bf16 = NULL;
        g_avx512.pack_v_bf16 = NULL;
        g_avx512.row_exp_bf16 = NULL;
    }
    if (!c->avx512_vnni) {
        g_avx512.gemm_tile_q8 = NULL;
        g_avx512.quant_a_q8 = NULL;
        g_avx512.peak_q8 = NULL;
    }
    if (!c->amx_bf16) {
        g_avx512.amx_begin = NULL;
        g_avx512.amx_end = NULL;
        g_avx512.amx_bf16 = NULL;
        g_avx512.amx_finish = NULL;
        g_avx512.q8_panels_bf16 = NULL;
        g_avx512.peak_amx_bf16 = NULL;
    }
    snprintf(g_avx512_name, sizeof g_avx512_name, "avx512%s%s%s", c->avx512_bf16 ? " bf16" : "",
             c->avx512_vnni ? " vnni" : "", c->amx_bf16 ? " amx" : "");
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

/* The precision of attention's products for this driver's compute dtype:
 * bf16 operands for bf16 and int8 compute where the table can (AMX when the
 * GEMM chose AMX, else the AVX512_BF16 tiles), fp32 otherwise.
 * EMBER_ATTN_BF16=0 (or its older name EMBER_ATTN_AMX=0) keeps fp32. */
static int attention_products(const cpu_impl *impl) {
    const ember_cpu_kernels *k = impl->k;
    const char *off = getenv("EMBER_ATTN_BF16"), *old_off = getenv("EMBER_ATTN_AMX");
    if ((off && strcmp(off, "0") == 0) || (old_off && strcmp(old_off, "0") == 0))
        return EMBER_ATTN_FP32;
    if (impl->gemm.compute_dtype != EMBER_DTYPE_BF16 && impl->gemm.compute_dtype != EMBER_DTYPE_INT8)
        return EMBER_ATTN_FP32;
    if (!k->pack_a_bf16 || !k->pack_kt_bf16 || !k->pack_v_bf16)
        return EMBER_ATTN_FP32;
    if (impl->gemm.amx && k->amx_bf16)
        return EMBER_ATTN_BF16_AMX;
    return k->gemm_tile_bf16 ? EMBER_ATTN_BF16_DOT : EMBER_ATTN_FP32;
}

static ember_status cpu_init(const ember_driver_config *cfg, void **out) {
    if (cfg->device != 0)
        return ember_error(EMBER_E_INVALID_ARGUMENT,
                           "the cpu driver has no device %d (it runs on all of this machine's CPUs)",
                           cfg->device);
    cpu_impl *impl = ember_calloc(1, sizeof *impl, "cpu driver");
    if (!impl)
        return EMBER_E_NOMEM;
    impl->k = ember_cpu_kernels_best();
    /* auto: fp32 arithmetic on the stored values; BF16 checkpoints keep
     * their matrices and tables in BF16 (half the memory, no widening) */
    impl->keep_bf16 = cfg->compute_dtype == EMBER_DTYPE_AUTO;
    ember_gemm_init(&impl->gemm, cfg->compute_dtype == EMBER_DTYPE_AUTO ? EMBER_DTYPE_F32
                                                                      : cfg->compute_dtype);
    impl->gemm.prepack = cfg->pack_weights;
    ember_gemm_choose(&impl->gemm, impl->k); /* the fastest fp32 tile, timed once per process */
    impl->attn_products = attention_products(impl);
    snprintf(impl->kernels_desc, sizeof impl->kernels_desc, "%s, matmul: %s, fp32 tile %s", impl->k->name,
             ember_gemm_name(&impl->gemm, impl->k), ember_gemm_tile_name(&impl->gemm, impl->k));
    *out = impl;
    return EMBER_OK;
}

/* "cpu-ref": the same driver on the portable scalar kernels (the ground
 * truth that ember bench checks the fast path against). */
static ember_status cpu_init_ref(const ember_driver_config *cfg, void **out) {
    EMBER_TRY(cpu_init(cfg, out));
    cpu_impl *impl = *out;
    impl->k = &ember_cpu_kernels_ref;
    impl->gemm.wide = NULL;
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
    ember_aligned_free(c->gemm_ws.scratch);
    ember_gemm_ws_release(&c->gemm_ws);
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
         !(c->gemm_ws.scratch = ember_aligned_alloc(sizeof(float) * ember_gemm_scratch_floats() *
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

/* Every op, on fp32 activations only. */
static int cpu_supports(void *impl, ember_op_kind op, ember_dt dtype) {
    (void)impl;
    return op >= 0 && op < EMBER_OP_COUNT && dtype == EMBER_DT_F32;
}

static ember_dt cpu_act_dtype(void *impl) {
    (void)impl;
    return EMBER_DT_F32;
}

/* Ops run to completion on the calling thread's pool before returning. */
static ember_status cpu_synchronize(void *dctx) {
    (void)dctx;
    return EMBER_OK;
}

static ember_status cpu_copy(void *dctx, void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src)
        memcpy(dst, src, bytes);
    return EMBER_OK;
}

/* ---- weights ---- */

/* Copies out of the file mapping drop its pages every DROP_CHUNK bytes, not
 * after the whole tensor: a big table (EmbeddingGemma's: 805 MB of F32)
 * would otherwise be resident twice, file pages and copy, at the peak. */
#define DROP_CHUNK ((size_t)16 << 20)

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
    if (impl->keep_bf16 && kind == EMBER_W_TABLE && t->dtype == EMBER_DT_BF16) {
        /* a BF16 embedding table is gathered as BF16: in place from the
         * mapping in zero-copy mode, else from a private copy (see below) */
        w->dtype = EMBER_DT_BF16;
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, t->data + 2 * i, 2);
            if ((h & 0x7f80u) == 0x7f80u)
                return ember_error(EMBER_E_MODEL,
                                   "tensor '%s': element %zu is %s: weights must be finite numbers",
                                   t->name, i, (h & 0x7fu) ? "NaN" : "infinite");
        }
        if (!impl->gemm.prepack && t->map && ((uintptr_t)t->data % 2) == 0) {
            w->data = t->data;
            w->map = ember_mapping_retain(t->map);
            ember_mapping_advise_random(w->map, t->data, (size_t)t->nbytes);
            return EMBER_OK;
        }
        void *copy = ember_aligned_alloc((size_t)t->nbytes, t->name);
        if (!copy)
            return EMBER_E_NOMEM;
        for (size_t off = 0; off < (size_t)t->nbytes; off += DROP_CHUNK) {
            size_t len = (size_t)t->nbytes - off < DROP_CHUNK ? (size_t)t->nbytes - off : DROP_CHUNK;
            memcpy((uint8_t *)copy + off, t->data + off, len);
            if (t->map)
                ember_mapping_drop_pages(t->map, t->data + off, len);
        }
        if (t->map) /* the pages straddling two chunks */
            ember_mapping_drop_pages(t->map, t->data, (size_t)t->nbytes);
        w->data = copy;
        w->owned = copy;
        return EMBER_OK;
    }
    /* An F32 matrix that will be packed is packed straight from the file:
     * no private copy to fault in, fill and free (on a 150M-parameter model
     * that copy was a fifth of the load). The packed panels are private
     * memory, so the file may change after the load as before. */
    const ember_gemm *gp = &impl->gemm;
    if (kind == EMBER_W_MATRIX && t->dtype == EMBER_DT_F32 &&
        ((uintptr_t)t->data % sizeof(float)) == 0 &&
        (gp->prepack || gp->compute_dtype == EMBER_DTYPE_INT8 ||
         gp->compute_dtype == EMBER_DTYPE_BF16)) {
        size_t bad = n;
        w->data = t->data;
        ember_status st = ember_gemm_prepare_checked(gp, w, &bad);
        w->data = NULL;
        if (st == EMBER_OK && bad < n) {
            float v;
            memcpy(&v, t->data + 4 * bad, 4);
            ember_gemm_release(w);
            st = ember_error(EMBER_E_MODEL,
                             "tensor '%s': element %zu is %s: weights must be finite numbers",
                             t->name, bad, isnan(v) ? "NaN" : "infinite");
        } else if (st == EMBER_OK && !w->packed) {
            st = ember_error(EMBER_E_INTERNAL, "tensor '%s': the matrix was not packed", t->name);
        }
        if (t->map)
            ember_mapping_drop_pages(t->map, t->data, (size_t)t->nbytes);
        return st;
    }
    /* Only zero-copy mode (pack_weights = 0) reads weights from the file
     * mapping after the load; its contract is that the file stays as it is
     * (replace a model by rename, never in place). In the default packed
     * mode every tensor is copied into private memory, so truncating or
     * rewriting the file under a running process cannot fault it (SIGBUS):
     * MAP_PRIVATE does not protect against truncation. */
    if (!impl->gemm.prepack && t->dtype == EMBER_DT_F32 && t->map &&
        ((uintptr_t)t->data % sizeof(float)) == 0) {
        w->data = t->data; /* zero-copy: the weight holds the mapping alive */
        w->map = ember_mapping_retain(t->map);
        if (kind == EMBER_W_TABLE)
            ember_mapping_advise_random(w->map, t->data, (size_t)t->nbytes);
    } else {
        /* a matrix's copy is usually only the source of its packed panels
         * (freed below); in zero-copy mode with a non-F32 checkpoint it
         * stays, on small pages */
        if (t->dtype != EMBER_DT_F32 && t->dtype != EMBER_DT_F16 && t->dtype != EMBER_DT_BF16)
            return ember_error(EMBER_E_UNSUPPORTED, "tensor '%s': dtype %s is not supported",
                               t->name, ember_dt_name(t->dtype));
        float *dst = kind == EMBER_W_MATRIX ? ember_aligned_alloc_staging(n * sizeof(float), t->name)
                                            : ember_aligned_alloc(n * sizeof(float), t->name);
        if (!dst)
            return EMBER_E_NOMEM;
        /* chunk by chunk: copy (F32) or widen, check, and drop the chunk's
         * file pages while the next is read */
        const size_t esize = ember_dt_size(t->dtype), chunk = DROP_CHUNK / esize;
        for (size_t i0 = 0; i0 < n; i0 += chunk) {
            const size_t m = n - i0 < chunk ? n - i0 : chunk;
            const uint8_t *src = t->data + i0 * esize;
            float *d = dst + i0;
            if (t->dtype == EMBER_DT_F32) {
                memcpy(d, src, m * sizeof(float));
            } else {
                const int f16 = t->dtype == EMBER_DT_F16;
                for (size_t i = 0; i < m; i++) {
                    uint16_t h;
                    memcpy(&h, src + 2 * i, 2);
                    d[i] = f16 ? ember_f16_to_f32(h) : ember_bf16_to_f32(h);
                }
            }
            /* every value passes through here once: refusing NaN/Inf is free */
            const size_t bad = ember_first_nonfinite(d, m);
            if (bad < m) {
                ember_status st = ember_error(
                    EMBER_E_MODEL, "tensor '%s': element %zu is %s: weights must be finite numbers",
                    t->name, i0 + bad, isnan(d[bad]) ? "NaN" : "infinite");
                ember_aligned_free(dst);
                return st;
            }
            if (t->map)
                ember_mapping_drop_pages(t->map, src, m * esize);
        }
        if (t->map) /* the copy is used from now on: the file's pages may go */
            ember_mapping_drop_pages(t->map, t->data, (size_t)t->nbytes);
        w->data = dst;
        w->owned = dst;
    }
    if (kind == EMBER_W_MATRIX) {
        ember_gemm g = impl->gemm;
        if (impl->keep_bf16 && t->dtype == EMBER_DT_BF16 && g.prepack)
            g.compute_dtype = EMBER_DTYPE_BF16; /* bf16 panels, widened per call */
        EMBER_TRY(ember_gemm_prepare(&g, w));
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

/* ---- operand checks ----
 * Views come from architectures, so a mismatch is a bug there; it is
 * reported with the op's name rather than read out of bounds. */

static int view_ok(ember_view v, int64_t rows, int64_t cols) {
    return v.data && v.dtype == EMBER_DT_F32 && v.rows == rows && v.cols == cols && v.ld >= cols;
}

#define CHECK_VIEW(op, name, v, R, C)                                                           \
    do {                                                                                        \
        const ember_view v_ = (v);                                                              \
        const int64_t r_ = (R), c_ = (C);                                                       \
        if (!view_ok(v_, r_, c_))                                                               \
            return ember_error(EMBER_E_INTERNAL,                                                \
                               "%s: operand %s is %s %lldx%lld (ld %lld), expected F32 "        \
                               "%lldx%lld",                                                     \
                               op, name, v_.data ? ember_dt_name(v_.dtype) : "absent",          \
                               (long long)v_.rows, (long long)v_.cols, (long long)v_.ld,        \
                               (long long)r_, (long long)c_);                                   \
    } while (0)

static float *fp(ember_view v) { return (float *)v.data; }

/* ---- gather ---- */

typedef struct {
    const float *table;
    const uint16_t *table16; /* BF16 table, or NULL */
    int64_t cols;
    const int32_t *idx;
    float *out;
    int64_t ld_out;
    int accumulate;
    float scale; /* 1: rows copied as they are */
} gather_job;

static void gather_rows(void *p, int64_t r0, int64_t r1, int thread) {
    gather_job *j = p;
    if (j->table16) {
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *src = (const uint8_t *)(j->table16 + (int64_t)j->idx[r] * j->cols);
            float *dst = j->out + r * j->ld_out;
            for (int64_t c = 0; c < j->cols; c++) {
                uint16_t h;
                memcpy(&h, src + 2 * c, 2);
                dst[c] = (j->accumulate ? dst[c] : 0.0f) + ember_bf16_to_f32(h) * j->scale;
            }
        }
        return;
    }
    for (int64_t r = r0; r < r1; r++) {
        const float *src = j->table + (int64_t)j->idx[r] * j->cols;
        float *dst = j->out + r * j->ld_out;
        if (j->scale != 1.0f)
            for (int64_t c = 0; c < j->cols; c++)
                dst[c] = (j->accumulate ? dst[c] : 0.0f) + src[c] * j->scale;
        else if (j->accumulate)
            for (int64_t c = 0; c < j->cols; c++)
                dst[c] += src[c];
        else
            memcpy(dst, src, sizeof(float) * (size_t)j->cols);
    }
}

static ember_status cpu_gather(void *dctx, const ember_weight *table, const int32_t *idx,
                               ember_view out, int accumulate) {
    CHECK_VIEW("gather", "out", out, out.rows, table->cols);
    if (table->dtype != EMBER_DT_F32 && table->dtype != EMBER_DT_BF16)
        return ember_error(EMBER_E_INTERNAL, "gather: table '%s' is %s", table->name,
                           ember_dt_name(table->dtype));
    const int bf16 = table->dtype == EMBER_DT_BF16;
    gather_job j = {bf16 ? NULL : table->data, bf16 ? table->data : NULL, table->cols, idx,
                    fp(out), out.ld, accumulate, table->gather_scale != 0.0f ? table->gather_scale : 1.0f};
    parallel_rows(dctx, out.rows, 64, gather_rows, &j);
    return EMBER_OK;
}

/* ---- row selection ---- */

static ember_status cpu_select_rows(void *dctx, ember_view in, const ember_seqs *seqs,
                                    ember_rows which, ember_view out) {
    (void)dctx;
    CHECK_VIEW("select_rows", "in", in, seqs->n_tokens, in.cols);
    CHECK_VIEW("select_rows", "out", out, seqs->n_seqs, in.cols);
    if (which != EMBER_ROWS_FIRST && which != EMBER_ROWS_LAST)
        return ember_error(EMBER_E_INTERNAL, "select_rows: which = %d", (int)which);
    for (int32_t s = 0; s < seqs->n_seqs; s++) {
        int64_t r = which == EMBER_ROWS_FIRST ? seqs->start[s] : seqs->start[s + 1] - 1;
        memmove(fp(out) + s * out.ld, fp(in) + r * in.ld, sizeof(float) * (size_t)in.cols);
    }
    return EMBER_OK;
}

/* ---- layer norm ---- */

typedef struct {
    const ember_cpu_kernels *k;
    const float *x, *res, *gamma, *beta;
    int64_t ldx, ldr, ldo;
    float eps;
    int64_t cols;
    float *out;
} ln_job;

static void ln_rows(void *p, int64_t r0, int64_t r1, int thread) {
    ln_job *j = p;
    for (int64_t r = r0; r < r1; r++)
        j->k->layer_norm_row(j->x + r * j->ldx, j->res ? j->res + r * j->ldr : NULL, j->gamma,
                             j->beta, j->eps, j->cols, j->out + r * j->ldo);
}

static ember_status cpu_layer_norm(void *dctx, ember_view x, ember_view residual,
                                   const ember_weight *gamma, const ember_weight *beta, float eps,
                                   ember_view out) {
    cpu_ctx *c = dctx;
    CHECK_VIEW("layer_norm", "x", x, x.rows, x.cols);
    CHECK_VIEW("layer_norm", "out", out, x.rows, x.cols);
    if (residual.data)
        CHECK_VIEW("layer_norm", "residual", residual, x.rows, x.cols);
    if (gamma->rows * gamma->cols != x.cols || (beta && beta->rows * beta->cols != x.cols))
        return ember_error(EMBER_E_INTERNAL, "layer_norm: gamma/beta do not have %lld values",
                           (long long)x.cols);
    ln_job j = {c->impl->k, fp(x), fp(residual), gamma->data, beta ? beta->data : NULL,
                x.ld, residual.ld, out.ld, eps, x.cols, fp(out)};
    parallel_rows(c, x.rows, 16, ln_rows, &j);
    return EMBER_OK;
}

/* ---- RMS norm ---- */

typedef struct {
    const ember_rms_args *a;
} rms_job;

/* Accumulates in double: the mean of squares of a 4096-wide row is the one
 * reduction here whose rounding shows against the reference. */
static void rms_rows(void *p, int64_t r0, int64_t r1, int thread) {
    const ember_rms_args *a = ((rms_job *)p)->a;
    const float *w = a->w->data;
    const int64_t g = a->group;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = fp(a->x) + r * a->x.ld;
        float *y = fp(a->out) + r * a->out.ld;
        const float *res = a->residual.data ? fp(a->residual) + r * a->residual.ld : NULL;
        for (int64_t c0 = 0; c0 < a->x.cols; c0 += g) {
            double ss = 0.0;
            for (int64_t c = 0; c < g; c++)
                ss += (double)x[c0 + c] * (double)x[c0 + c];
            float inv = 1.0f / sqrtf((float)(ss / (double)g) + a->eps);
            if (res)
                for (int64_t c = 0; c < g; c++)
                    y[c0 + c] = res[c0 + c] + (x[c0 + c] * inv) * (w[c] + a->offset);
            else
                for (int64_t c = 0; c < g; c++)
                    y[c0 + c] = (x[c0 + c] * inv) * (w[c] + a->offset);
        }
    }
}

static ember_status cpu_rms_norm(void *dctx, const ember_rms_args *a) {
    CHECK_VIEW("rms_norm", "x", a->x, a->x.rows, a->x.cols);
    CHECK_VIEW("rms_norm", "out", a->out, a->x.rows, a->x.cols);
    if (a->residual.data)
        CHECK_VIEW("rms_norm", "residual", a->residual, a->x.rows, a->x.cols);
    if (a->group <= 0 || a->x.cols % a->group != 0 || a->w->rows * a->w->cols != a->group)
        return ember_error(EMBER_E_INTERNAL, "rms_norm: group %lld does not fit %lld columns",
                           (long long)a->group, (long long)a->x.cols);
    rms_job j = {a};
    parallel_rows(dctx, a->x.rows, 16, rms_rows, &j);
    return EMBER_OK;
}

/* ---- linear ---- */

static ember_status cpu_linear(void *dctx, const ember_linear_args *a) {
    cpu_ctx *c = dctx;
    const int64_t rows = a->x.rows, out_cols = a->w->rows;
    CHECK_VIEW("linear", "x", a->x, rows, a->w->cols);
    CHECK_VIEW("linear", "y", a->y, rows, out_cols);
    if (a->bias && a->bias->rows * a->bias->cols != out_cols)
        return ember_error(EMBER_E_INTERNAL, "linear: bias '%s' does not have %lld values",
                           a->bias->name ? a->bias->name : "?", (long long)out_cols);
    if (a->residual.data) {
        CHECK_VIEW("linear", "residual", a->residual, rows, out_cols);
        if (a->residual.data == a->y.data && a->act != EMBER_ACT_NONE)
            return ember_error(EMBER_E_INTERNAL,
                               "linear: residual may alias y only without activation");
    }
    ember_gemm_args g = {.x = fp(a->x), .ldx = a->x.ld, .rows = rows, .w = a->w, .bias = a->bias,
                         .act = a->act, .residual = fp(a->residual), .ldr = a->residual.ld,
                         .y = fp(a->y), .ldy = a->y.ld};
    return ember_gemm_linear(&c->impl->gemm, c->impl->k, c->pool, &c->gemm_ws, &g);
}

/* ---- gated linear units ---- */

typedef struct {
    const ember_cpu_kernels *k;
    ember_view in, out;
    ember_act act;
} glu_job;

static void glu_rows(void *p, int64_t r0, int64_t r1, int thread) {
    glu_job *j = p;
    const int64_t inter = j->out.cols;
    for (int64_t r = r0; r < r1; r++) {
        const float *in = fp(j->in) + r * j->in.ld;
        float *out = fp(j->out) + r * j->out.ld;
        if (j->act == EMBER_ACT_GELU) {
            j->k->geglu_row(in, inter, out); /* the vectorized GeGLU */
        } else {
            for (int64_t i = 0; i < inter; i++)
                out[i] = ember_ref_act(j->act, in[i]) * in[inter + i];
        }
    }
}

static ember_status cpu_glu(void *dctx, ember_view in, ember_act act, ember_view out) {
    cpu_ctx *c = dctx;
    CHECK_VIEW("glu", "in", in, out.rows, 2 * out.cols);
    CHECK_VIEW("glu", "out", out, in.rows, out.cols);
    if (act <= EMBER_ACT_NONE || act >= EMBER_ACT_COUNT)
        return ember_error(EMBER_E_INTERNAL, "glu: activation %d", (int)act);
    glu_job j = {c->impl->k, in, out, act};
    parallel_rows(c, in.rows, 8, glu_rows, &j);
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
    const int32_t d = a->head_dim, half = d / 2;
    const int64_t nq = a->q.cols / d, nk = a->k.data ? a->k.cols / d : 0;
    for (int64_t r = r0; r < r1; r++) {
        const float *cs = table + (int64_t)a->positions[r] * d;
        float *q = fp(a->q) + r * a->q.ld;
        for (int64_t h = 0; h < nq; h++)
            j->k->rope_head(q + h * d, cs, cs + half, d);
        float *k = nk ? fp(a->k) + r * a->k.ld : NULL;
        for (int64_t h = 0; h < nk; h++)
            j->k->rope_head(k + h * d, cs, cs + half, d);
    }
}

static ember_status cpu_rope(void *dctx, const ember_rope_args *a) {
    cpu_ctx *c = dctx;
    const int32_t d = a->head_dim;
    if (d <= 0 || d % 2 || a->table->cols != d || a->q.cols % d ||
        (a->k.data && a->k.cols % d))
        return ember_error(EMBER_E_INTERNAL, "rope: head_dim %d does not fit the operands", d);
    CHECK_VIEW("rope", "q", a->q, a->q.rows, a->q.cols);
    if (a->k.data)
        CHECK_VIEW("rope", "k", a->k, a->q.rows, a->k.cols);
    rope_job j = {c->impl->k, a};
    parallel_rows(c, a->q.rows, 16, rope_rows, &j);
    return EMBER_OK;
}

/* ---- attention ---- */

typedef struct {
    cpu_ctx *c;
    const ember_attn_args *a;
    int products; /* bf16 products for sequences of at least min_len tokens */
    int32_t min_len;
} attn_job;

/* Below these lengths the bf16 packing (and AMX's tile configuration) cost
 * more than the bf16 products save (measured on bge-small shapes,
 * docs/performance.md: AMX on a Xeon; the dot-product tiles on Zen 4 gain
 * 2-5% at 40-48 tokens, and up to 32 tokens the AVX-512 table's register
 * kernel is faster than either); the choice depends on the sequence alone,
 * so a vector never depends on its batch. */
#define EMBER_ATTN_AMX_MIN_LEN 64
#define EMBER_ATTN_DOT_MIN_LEN 33

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
    const int compact = a->rows != EMBER_ROWS_ALL;
    int32_t nblk = compact ? 1 : (len + qb - 1) / qb;
    int64_t local = task - prefix[s];
    int32_t head = (int32_t)(local / nblk), blk = (int32_t)(local % nblk);
    int32_t kv_head = head / (a->n_heads / a->n_kv_heads);
    const int64_t first = sq->start[s], d = a->head_dim;
    int32_t q0 = blk * qb, q1 = EMBER_MIN(len, (blk + 1) * qb);
    if (compact) {
        q0 = a->rows == EMBER_ROWS_FIRST ? 0 : len - 1;
        q1 = q0 + 1;
    }
    /* rows of q and out: the token's own row, or the sequence's row when compact */
    int64_t qrow = compact ? s : first + q0;
    ember_attn_tile t = {
        .q = fp(a->q) + qrow * a->q.ld + head * d,
        .ld_q = a->q.ld,
        .k = fp(a->k) + first * a->k.ld + kv_head * d,
        .v = fp(a->v) + first * a->v.ld + kv_head * d,
        .ld = a->k.ld,
        .out = fp(a->out) + qrow * a->out.ld + head * d,
        .ld_out = a->out.ld,
        .len = len,
        .q0 = q0,
        .q1 = q1,
        .head_dim = a->head_dim,
        .window = a->window,
        .causal = a->causal,
        .scale = a->scale,
        .rel = a->rel_bias ? (const float *)a->rel_bias->data + (int64_t)head * a->rel_bias->cols
                           : NULL,
        .rel_center = a->rel_span - 1,
        .products = len >= j->min_len ? j->products : EMBER_ATTN_FP32,
        .wide = j->c->impl->gemm.wide,
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
    if (a->n_heads <= 0 || a->n_kv_heads <= 0 || a->n_heads % a->n_kv_heads)
        return ember_error(EMBER_E_INTERNAL, "attention: %d heads over %d key/value heads",
                           a->n_heads, a->n_kv_heads);
    const int64_t q_rows = a->rows == EMBER_ROWS_ALL ? sq->n_tokens : sq->n_seqs;
    const int64_t hq = (int64_t)a->n_heads * a->head_dim, hkv = (int64_t)a->n_kv_heads * a->head_dim;
    CHECK_VIEW("attention", "q", a->q, q_rows, hq);
    CHECK_VIEW("attention", "k", a->k, sq->n_tokens, hkv);
    CHECK_VIEW("attention", "v", a->v, sq->n_tokens, hkv);
    CHECK_VIEW("attention", "out", a->out, q_rows, hq);
    if (a->k.ld != a->v.ld)
        return ember_error(EMBER_E_INTERNAL, "attention: k and v must share a row stride");
    if (a->rel_bias && (a->rel_span < sq->max_len || a->rel_bias->rows != a->n_heads ||
                        a->rel_bias->cols != 2 * (int64_t)a->rel_span - 1))
        return ember_error(EMBER_E_INTERNAL,
                           "attention: relative bias table %lldx%lld does not cover %d heads and "
                           "sequences of %d tokens (span %d)",
                           (long long)a->rel_bias->rows, (long long)a->rel_bias->cols, a->n_heads,
                           sq->max_len, a->rel_span);
    const int32_t qb = a->window > 0 ? EMBER_ATTN_QBLOCK_LOCAL : EMBER_ATTN_QBLOCK;
    c->task_prefix[0] = 0;
    for (int32_t s = 0; s < sq->n_seqs; s++) {
        int32_t len = sq->start[s + 1] - sq->start[s];
        int64_t blocks = a->rows != EMBER_ROWS_ALL ? 1 : (len + qb - 1) / qb;
        c->task_prefix[s + 1] = c->task_prefix[s] + blocks * a->n_heads;
    }
    /* AMX reads K in steps of 32, the dot-product tiles in pairs (and the
     * AVX-512 table takes head_dim in steps of 16) */
    int products = c->impl->attn_products;
    if (products == EMBER_ATTN_BF16_AMX && a->head_dim % 32 != 0)
        products = c->impl->k->gemm_tile_bf16 ? EMBER_ATTN_BF16_DOT : EMBER_ATTN_FP32;
    if (products == EMBER_ATTN_BF16_DOT && a->head_dim % 16 != 0)
        products = EMBER_ATTN_FP32;
    attn_job j = {c, a, products,
                  products == EMBER_ATTN_BF16_AMX ? EMBER_ATTN_AMX_MIN_LEN : EMBER_ATTN_DOT_MIN_LEN};
    ember_pool_run(c->pool, attn_task, &j, c->task_prefix[sq->n_seqs]);
    return EMBER_OK;
}

/* ---- pooling ---- */

typedef struct {
    ember_view hidden;
    const ember_seqs *seqs;
    int32_t mode;
    ember_view out;
} pool_job;

static void pool_seq(void *p, int64_t s, int thread) {
    pool_job *j = p;
    int64_t r0 = j->seqs->start[s], r1 = j->seqs->start[s + 1];
    ember_pool_sequence_strided(fp(j->hidden) + r0 * j->hidden.ld, r1 - r0, j->hidden.cols,
                                j->hidden.ld, j->mode, fp(j->out) + s * j->out.ld);
}

static ember_status cpu_pool(void *dctx, ember_view hidden, const ember_seqs *seqs, int32_t mode,
                             ember_view out) {
    cpu_ctx *c = dctx;
    CHECK_VIEW("pool", "hidden", hidden, seqs->n_tokens, hidden.cols);
    CHECK_VIEW("pool", "out", out, seqs->n_seqs, hidden.cols);
    pool_job j = {hidden, seqs, mode, out};
    ember_pool_run(c->pool, pool_seq, &j, seqs->n_seqs);
    return EMBER_OK;
}

#define CPU_OPS_COMMON                         \
    .release = cpu_release,                    \
    .kernels = cpu_kernels,                    \
    .supports = cpu_supports,                  \
    .act_dtype = cpu_act_dtype,                \
    .ctx_init = cpu_ctx_init,                  \
    .ctx_free = cpu_ctx_free,                  \
    .synchronize = cpu_synchronize,            \
    .upload = cpu_copy,                        \
    .download = cpu_copy,                      \
    .weight_prepare = cpu_weight_prepare,      \
    .weight_release = cpu_weight_release,      \
    .gather = cpu_gather,                      \
    .select_rows = cpu_select_rows,            \
    .layer_norm = cpu_layer_norm,              \
    .rms_norm = cpu_rms_norm,                  \
    .linear = cpu_linear,                      \
    .glu = cpu_glu,                            \
    .rope = cpu_rope,                          \
    .attention = cpu_attention,                \
    .pool = cpu_pool

const ember_driver_ops ember_cpu_ref_driver_ops = {.name = "cpu-ref", .init = cpu_init_ref, CPU_OPS_COMMON};
const ember_driver_ops ember_cpu_driver_ops = {.name = "cpu", .init = cpu_init, CPU_OPS_COMMON};
