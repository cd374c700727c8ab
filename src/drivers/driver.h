/*
 * driver.h — the hardware driver interface (version 2).
 *
 * A driver is a table of function pointers plus an opaque implementation
 * pointer (the shape of ggml-backend's interface or SQLite's VFS). It owns
 * memory (weights it prepared, per-context scratch) and implements the
 * primitives that architectures compose into a forward pass. Architectures
 * never touch hardware: they only call through this table, so each one is
 * written once for every driver.
 *
 * Activations are typed 2-D views (ember_view: pointer, dtype, rows, cols,
 * row stride) into driver memory carved out of the per-context arena. A
 * driver instance has one activation dtype (act_dtype), chosen at init from
 * the config: the CPU drivers keep fp32; a GPU driver may run bf16/fp16 and
 * keep pooled outputs in fp32.
 * Views passed to an op are checked by the driver (dtype it supports, shapes
 * that agree); a mismatch is EMBER_E_INTERNAL with the op's name, never a
 * crash.
 *
 * Required slots: every lifecycle, transfer, weight and op slot below except
 * those marked optional. `supports(op, dtype)` is asked at model load for
 * every op the architecture uses (ember_arch.ops), so a driver lacking one
 * is refused with the op's name before any weight is read.
 *
 * Ordering: ops on one context run in call order. A driver may run them
 * asynchronously (a GPU stream); `download` and `synchronize` wait for what
 * was queued before them.
 */
#ifndef EMBER_DRIVERS_DRIVER_H
#define EMBER_DRIVERS_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "io/safetensors.h"

/* What a prepared weight is used for decides its layout in driver memory. */
typedef enum ember_wkind {
    EMBER_W_MATRIX, /* linear weight [out, in]: multiplied as x W^T            */
    EMBER_W_TABLE,  /* embedding table [rows, dim]: gathered by row            */
    EMBER_W_VECTOR  /* bias, norm scale: fp32 in driver memory                 */
} ember_wkind;

/* A weight prepared by a driver. `data` may point into a safetensors mapping
 * (zero-copy); then `map` holds a reference on it, so the mapping lives as
 * long as the weight does. */
typedef struct ember_weight {
    ember_wkind kind;
    ember_dt dtype;         /* element type of `data` in driver memory        */
    int64_t rows, cols;     /* vectors: rows = 1                              */
    const void *data;
    void *owned;            /* storage the driver allocated, or NULL          */
    ember_mapping *map;     /* retained mapping when zero-copy, or NULL       */
    void *packed;           /* driver-specific fast layout, or NULL           */
    const char *name;       /* tensor name (for messages), static or owned by the model */
    float gather_scale;     /* tables: gathered rows are multiplied by this (0: by 1);
                               set by the architecture after the load (Gemma's sqrt(hidden)) */
} ember_weight;

/* An activation matrix in driver memory: rows x cols elements of `dtype`,
 * row r starting `ld` elements after row r - 1. A view with data == NULL is
 * "absent" (an optional operand). */
typedef struct ember_view {
    void *data;
    ember_dt dtype;
    int64_t rows, cols, ld;
} ember_view;

static inline ember_view ember_view_of(void *data, ember_dt dtype, int64_t rows, int64_t cols,
                                       int64_t ld) {
    ember_view v = {data, dtype, rows, cols, ld};
    return v;
}
static inline ember_view ember_view_none(void) {
    ember_view v = {NULL, EMBER_DT_F32, 0, 0, 0};
    return v;
}
/* Columns [c0, c0 + n) of every row (same stride). */
static inline ember_view ember_view_cols(ember_view v, int64_t c0, int64_t n) {
    ember_view r = v;
    r.data = (char *)v.data + (size_t)c0 * ember_dt_size(v.dtype);
    r.cols = n;
    return r;
}
/* Rows [r0, r0 + n). */
static inline ember_view ember_view_rows(ember_view v, int64_t r0, int64_t n) {
    ember_view r = v;
    r.data = (char *)v.data + (size_t)(r0 * v.ld) * ember_dt_size(v.dtype);
    r.rows = n;
    return r;
}

typedef enum ember_act {
    EMBER_ACT_NONE = 0,
    EMBER_ACT_GELU,      /* exact: x * 0.5 * (1 + erf(x / sqrt 2))            */
    EMBER_ACT_GELU_TANH, /* tanh approximation (gelu_new, gelu_pytorch_tanh)   */
    EMBER_ACT_RELU,
    EMBER_ACT_SILU,
    EMBER_ACT_TANH,
    EMBER_ACT_COUNT
} ember_act;

/* The driver ops, for supports(), the profiler and error messages. */
typedef enum ember_op_kind {
    EMBER_OP_GATHER,
    EMBER_OP_SELECT_ROWS,
    EMBER_OP_LAYER_NORM,
    EMBER_OP_RMS_NORM,
    EMBER_OP_LINEAR,
    EMBER_OP_GLU,
    EMBER_OP_ROPE,
    EMBER_OP_ATTENTION,
    EMBER_OP_POOL,
    EMBER_OP_TRANSFER,
    EMBER_OP_TIMED_COUNT, /* the kinds above are timed by the profiler */
    /* not an op of its own: attention with ember_attn_args.rel_bias, asked
     * of supports() by architectures that need it (MPNet) */
    EMBER_OP_ATTN_REL_BIAS = EMBER_OP_TIMED_COUNT,
    EMBER_OP_COUNT
} ember_op_kind;

const char *ember_op_name(ember_op_kind k);

/* Boundaries of the sequences of one forward pass, packed without padding:
 * sequence s holds tokens [start[s], start[s+1]). */
typedef struct ember_seqs {
    int32_t n_seqs;
    int64_t n_tokens;
    int32_t max_len;
    const int32_t *start;     /* host memory, n_seqs + 1                  */
    const int32_t *start_dev; /* driver memory copy                       */
} ember_seqs;

/* Which rows of each sequence an op produces. */
typedef enum ember_rows {
    EMBER_ROWS_ALL = 0, /* every token                                         */
    EMBER_ROWS_FIRST,   /* the first token of each sequence (CLS pooling)      */
    EMBER_ROWS_LAST     /* the last token of each sequence (last-token pooling) */
} ember_rows;

/* y = act(x W^T + bias) + residual. x: (rows, in), y and residual: (rows,
 * out). residual may be absent, or alias y when act is NONE. */
typedef struct ember_linear_args {
    ember_view x;
    const ember_weight *w;     /* [out, in]                                      */
    const ember_weight *bias;  /* [out] or NULL                                  */
    ember_act act;             /* applied before the residual                    */
    ember_view residual;
    ember_view y;
} ember_linear_args;

/* Scaled dot-product attention over packed sequences, grouped-query: query
 * head h reads key/value head h / (n_heads / n_kv_heads). q: (T, n_heads *
 * head_dim), k and v: (T, n_kv_heads * head_dim) with k.ld == v.ld (they are
 * usually column blocks of one fused QKV buffer). Keys of the query at
 * position i: |i - j| <= window when window > 0, and j <= i when causal.
 * rows = FIRST or LAST: only that query of each sequence is computed; q then
 * holds one row per sequence (n_seqs, n_heads * head_dim) and so does out.
 * rel_bias: optional relative-position bias added to the scaled scores,
 * score(i, j) = q_i . k_j * scale + rel_bias[h, j - i + rel_span - 1], a
 * table [n_heads, 2 * rel_span - 1] (MPNet's bucketed bias, expanded at load;
 * ALiBi fits too); sequences must be at most rel_span long. */
typedef struct ember_attn_args {
    ember_view q, k, v;
    const ember_seqs *seqs;
    int32_t n_heads;
    int32_t n_kv_heads;
    int32_t head_dim;
    float scale;
    int32_t window;
    int32_t causal;
    ember_rows rows;
    const ember_weight *rel_bias;
    int32_t rel_span;
    ember_view out;
} ember_attn_args;

/* Rotary embedding ("rotate half": dimension d pairs with d + head_dim/2),
 * in place, of q (rows, n_q_heads * head_dim) and, when present, k (rows,
 * n_kv_heads * head_dim), at each row's position. `table` row p holds
 * cos(p * f_i) for i < head_dim/2, then sin(p * f_i): the architecture
 * computes it once at load for its theta. */
typedef struct ember_rope_args {
    ember_view q, k;
    int32_t head_dim;
    const int32_t *positions;  /* driver memory, one per row                 */
    const ember_weight *table; /* [max_positions, head_dim]                  */
} ember_rope_args;

/* out = x / rms(x) * (w + offset) [+ residual] over groups of `group`
 * columns (group == cols: the usual RMSNorm; group == head_dim: per-head q/k
 * norms), with rms(x) = sqrt(mean(x^2) + eps). offset is 0 (Llama, Qwen) or
 * 1 (Gemma's (1 + w) scale). w has `group` elements. out may alias x, or the
 * residual (Gemma's x += norm(branch)). */
typedef struct ember_rms_args {
    ember_view x;
    const ember_weight *w;
    float eps;
    float offset;
    int64_t group;
    ember_view residual;
    ember_view out;
} ember_rms_args;

/* Sizes a context must be able to run; the driver reserves per-thread
 * scratch for its kernels from these. */
typedef struct ember_ctx_limits {
    int64_t max_tokens;      /* tokens per forward pass                     */
    int32_t max_seqs;        /* sequences per forward pass                  */
    int32_t max_seq_len;     /* longest single sequence                     */
    int32_t n_heads;
    int32_t head_dim;
    int64_t scratch_bytes;   /* arena the backend needs                     */
} ember_ctx_limits;

/* How a model wants its weights prepared. */
typedef struct ember_driver_config {
    int32_t compute_dtype; /* ember_dtype of the matrix weights; AUTO (0) lets
                              the driver choose (cpu: f32, cuda: bf16)      */
    int32_t pack_weights;  /* 1: repack matrices for the kernels at load;
                              0: use F32 matrices in place (zero-copy)     */
    int32_t device;        /* device index ("cuda:1" -> 1); 0 for the CPU */
} ember_driver_config;

typedef struct ember_driver_ops {
    const char *name;
    /* 1: a device with its own memory and a launch cost per op (a GPU). The
     * backend then warms each new context up with one small pass (the first
     * request is not the slow one), halves the tokens per pass when the
     * arena does not fit in device memory, and ember_model_ctx_params()
     * proposes device-sized passes. */
    int is_device;

    /* Optional: whether this machine can run the driver at all (a GPU
     * driver: is a device present and its kernel driver loadable). "auto"
     * skips a driver whose probe says 0; NULL means always. Cheap, no
     * allocation that outlives the call, callable before init. */
    int (*probe)(void);

    /* Lifecycle. `impl` is per model (device handle, kernel choice); `dctx`
     * per context (threads or stream, kernel scratch). ctx_init also
     * reserves `lim->scratch_bytes` of driver memory for the arena. */
    ember_status (*init)(const ember_driver_config *cfg, void **impl);
    void (*release)(void *impl);
    const char *(*kernels)(void *impl); /* human-readable kernel set          */
    /* Optional: the device's nominal arithmetic peak in GFLOP/s for the
     * matrix products this instance runs (a GPU: tensor-core rate from its
     * compute capability, multiprocessor count and clock). NULL or 0: none
     * known (the CPU drivers: callers measure ember_cpu_peak_gflops). */
    double (*peak_gflops)(void *impl);
    /* Whether `op` runs on activations of `dtype` (1) or not (0). */
    int (*supports)(void *impl, ember_op_kind op, ember_dt dtype);
    /* The dtype of the activations of this instance's contexts. */
    ember_dt (*act_dtype)(void *impl);
    ember_status (*ctx_init)(void *impl, int n_threads, const ember_ctx_limits *lim,
                             void **dctx, void **arena_base);
    void (*ctx_free)(void *dctx);
    /* Waits until every op queued on the context has finished. */
    ember_status (*synchronize)(void *dctx);
    /* Optional profiling hook: an asynchronous driver times its kernels
     * (events), not their launches. timer_start marks the start of an op;
     * timer_stop returns the seconds since, once the op has run. NULL: the
     * profiler synchronizes and reads the host clock. */
    void (*timer_start)(void *dctx);
    double (*timer_stop)(void *dctx);

    /* Optional: record the ops queued on dctx between graph_begin and
     * graph_end instead of running them (CUDA graphs), and replay them with
     * graph_launch: a small pass then costs one launch, not one per op.
     * graph_end(keep = 0) discards the recording (an op failed while
     * recording; nothing ran); with keep = 1 it returns the graph in *graph
     * or an error. A graph replays the same kernels on the same addresses:
     * the caller keys it by every shape the ops saw. */
    ember_status (*graph_begin)(void *dctx);
    ember_status (*graph_end)(void *dctx, int keep, void **graph);
    ember_status (*graph_launch)(void *dctx, void *graph);
    void (*graph_free)(void *dctx, void *graph);

    /* Memory transfers between host and driver memory. */
    ember_status (*upload)(void *dctx, void *dst, const void *src, size_t bytes);
    ember_status (*download)(void *dctx, void *dst, const void *src, size_t bytes);

    /* Optional: overlapped passes (a GPU). The backend packs, uploads and
     * queues pass k+1 while pass k runs, and reads pass k's vectors only
     * after fence_wait.
     * - host_alloc: host memory the device copies without staging (CUDA:
     *   page-locked), zero-filled; NULL when out of memory. An upload from it
     *   may still be in flight when `upload` returns: the caller leaves the
     *   source alone until a later fence_wait, download or synchronize.
     *   host_free(NULL) is a no-op; called after ctx_free of every context
     *   that used the memory.
     * - download_async: queues the copy (dst from host_alloc) and marks
     *   fence `slot` (0 or 1) behind it; returns without waiting.
     * - fence_wait: waits until everything queued up to the last
     *   download_async on `slot` has run, and reports any error among it.
     * A driver without them runs passes one after the other: `download`
     * waits, and the backend uses ordinary host memory. */
    void *(*host_alloc)(void *impl, size_t bytes);
    void (*host_free)(void *impl, void *p);
    ember_status (*download_async)(void *dctx, void *dst, const void *src, size_t bytes, int slot);
    ember_status (*fence_wait)(void *dctx, int slot);

    /* Weights: convert/pack/upload a stored tensor once, at load. A tensor
     * with map == NULL is host memory the caller frees after the call: the
     * driver copies it. */
    ember_status (*weight_prepare)(void *impl, const ember_st_tensor *t, ember_wkind kind,
                                   ember_weight *out);
    void (*weight_release)(void *impl, ember_weight *w);

    /* Ops. */
    /* out[r, :] (+)= table[idx[r], :] * s for r < out.rows (idx in driver memory), with
     * s = table->gather_scale, or 1 when that is 0: one fp32 product per element. */
    ember_status (*gather)(void *dctx, const ember_weight *table, const int32_t *idx,
                           ember_view out, int accumulate);
    /* out[s, :] = in[first or last row of sequence s, :]. */
    ember_status (*select_rows)(void *dctx, ember_view in, const ember_seqs *seqs,
                                ember_rows which, ember_view out);
    /* out = LayerNorm(x + residual) * gamma + beta; residual absent or not,
     * beta may be NULL; out may alias x. */
    ember_status (*layer_norm)(void *dctx, ember_view x, ember_view residual,
                               const ember_weight *gamma, const ember_weight *beta, float eps,
                               ember_view out);
    ember_status (*rms_norm)(void *dctx, const ember_rms_args *a);
    ember_status (*linear)(void *dctx, const ember_linear_args *a);
    /* out[r, i] = act(in[r, i]) * in[r, I + i] for i < I = out.cols
     * (GeGLU with GELU, SwiGLU with SiLU). in: (rows, 2I). */
    ember_status (*glu)(void *dctx, ember_view in, ember_act act, ember_view out);
    ember_status (*rope)(void *dctx, const ember_rope_args *a);
    ember_status (*attention)(void *dctx, const ember_attn_args *a);
    /* out[s, :] = pool (ember_pooling) over the rows of sequence s of hidden;
     * out is fp32 whatever the activation dtype. */
    ember_status (*pool)(void *dctx, ember_view hidden, const ember_seqs *seqs, int32_t pooling,
                         ember_view out);
} ember_driver_ops;

typedef struct ember_driver {
    const ember_driver_ops *ops;
    void *impl;
} ember_driver;

/* Drivers compiled into this build. */
extern const ember_driver_ops ember_cpu_driver_ops;
extern const ember_driver_ops ember_cpu_ref_driver_ops; /* scalar kernels only */
#if defined(EMBER_HAVE_CUDA)
extern const ember_driver_ops ember_cuda_driver_ops;    /* drivers/cuda/          */
#endif

/* Finds a driver by name: "cpu", "cpu-ref", a GPU driver's name optionally
 * followed by ":N" (device index into *device, which may be NULL); NULL or
 * "auto" = the first compiled-in driver whose probe() does not say no (a
 * GPU when one is usable, else cpu). NULL when there is none of that name. */
const ember_driver_ops *ember_driver_find(const char *name, int32_t *device);
/* The compiled-in drivers, for tests and `ember info`. */
int ember_driver_count(void);
const ember_driver_ops *ember_driver_at(int i);

/* The largest pass (tokens) the backend records as a graph on a driver
 * that has graphs: 2,048, or EMBER_GRAPH_MAX_TOKENS (0 - 1,048,576; 0: no
 * graphs), read once. Drivers report it in kernels(). */
int64_t ember_graph_max_tokens(void);

#endif
