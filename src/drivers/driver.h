/*
 * driver.h — the hardware driver interface.
 *
 * A driver is a table of function pointers plus an opaque implementation
 * pointer (the shape of ggml-backend's interface or SQLite's VFS). It owns
 * memory (weights it prepared, per-context scratch) and implements the
 * primitives that architectures compose into a forward pass. Architectures
 * never touch hardware: they only call through this table, so BERT and
 * ModernBERT are each written once for every driver.
 *
 * Memory: every `float *` an op receives lives in driver memory (host memory
 * for the CPU driver, device memory for a GPU driver), carved out of the
 * per-context arena. Matrices are row-major with the row stride given.
 *
 * Optional slots (NULL = not provided, the backend falls back): `pool` and
 * `l2_normalize` (done on the host after download). Every other slot an
 * architecture uses is checked at load; a driver lacking it is reported as
 * unsupported with the op's name.
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
} ember_weight;

typedef enum ember_act {
    EMBER_ACT_NONE = 0,
    EMBER_ACT_GELU,      /* exact: x * 0.5 * (1 + erf(x / sqrt 2))            */
    EMBER_ACT_GELU_TANH, /* tanh approximation (gelu_new, gelu_pytorch_tanh)   */
    EMBER_ACT_RELU,
    EMBER_ACT_SILU
} ember_act;

/* Boundaries of the sequences of one forward pass, packed without padding:
 * sequence s holds tokens [start[s], start[s+1]). */
typedef struct ember_seqs {
    int32_t n_seqs;
    int64_t n_tokens;
    int32_t max_len;
    const int32_t *start;     /* host memory, n_seqs + 1                  */
    const int32_t *start_dev; /* driver memory copy                       */
} ember_seqs;

/* y[r, :] = act(x[r, :] W^T + bias) + residual[r, :] for r < rows. */
typedef struct ember_linear_args {
    const float *x;
    int64_t ldx;               /* row stride of x (>= w->cols)                  */
    int64_t rows;
    const ember_weight *w;     /* [out, in]                                      */
    const ember_weight *bias;  /* [out] or NULL                                  */
    ember_act act;             /* applied before the residual                    */
    const float *residual;     /* rows x out with stride ldr, or NULL; may be y  */
    int64_t ldr;
    float *y;
    int64_t ldy;
} ember_linear_args;

/* Scaled dot-product attention over packed sequences. Q, K and V are the
 * column blocks [0,H), [H,2H), [2H,3H) of `qkv` (stride ld_qkv); head h uses
 * columns h*head_dim .. (h+1)*head_dim of each block. Keys of a query at
 * position i are restricted to |i - j| <= window when window > 0.
 * first_only: only the query at position 0 of each sequence is computed; its
 * row is q[s * ld_q] (q != NULL) and the result goes to out[s * ld_out], one
 * row per sequence (CLS pooling needs nothing else from the last layer). */
typedef struct ember_attn_args {
    const float *qkv;
    int64_t ld_qkv;
    const ember_seqs *seqs;
    int32_t n_heads;
    int32_t head_dim;
    float scale;
    int32_t window;
    float *out;                /* (tokens, n_heads * head_dim)               */
    int64_t ld_out;
    int32_t first_only;
    const float *q;            /* first_only: (n_seqs, H) queries           */
    int64_t ld_q;
} ember_attn_args;

/* Rotary embedding ("rotate half": dimension d pairs with d + head_dim/2) of
 * the Q and K blocks of `qkv`, in place, at each token's position. `table`
 * row p holds cos(p * f_i) for i < head_dim/2, then sin(p * f_i): the
 * architecture computes it once at load for its theta. */
typedef struct ember_rope_args {
    float *qkv;
    int64_t ld_qkv;
    int64_t rows;
    int32_t n_heads;
    int32_t head_dim;
    const int32_t *positions;  /* driver memory, one per row                 */
    const ember_weight *table; /* [max_positions, head_dim]                  */
} ember_rope_args;

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
    int32_t compute_dtype; /* ember_dtype of the matrix weights              */
    int32_t pack_weights;  /* 1: repack matrices for the kernels at load;
                              0: use F32 matrices in place (zero-copy)     */
} ember_driver_config;

typedef struct ember_driver_ops {
    const char *name;

    /* Lifecycle. `impl` is per model (device handle, kernel choice); `dctx`
     * per context (threads or stream, kernel scratch). ctx_init also
     * reserves `lim->scratch_bytes` of driver memory for the arena. */
    ember_status (*init)(const ember_driver_config *cfg, void **impl);
    void (*release)(void *impl);
    const char *(*kernels)(void *impl); /* human-readable kernel set          */
    ember_status (*ctx_init)(void *impl, int n_threads, const ember_ctx_limits *lim,
                             void **dctx, void **arena_base);
    void (*ctx_free)(void *dctx);
    int (*ctx_threads)(void *dctx);

    /* Memory transfers between host and driver memory. */
    ember_status (*upload)(void *dctx, void *dst, const void *src, size_t bytes);
    ember_status (*download)(void *dctx, void *dst, const void *src, size_t bytes);

    /* Weights: convert/pack/upload a stored tensor once, at load. A tensor
     * with map == NULL is host memory the caller frees after the call: the
     * driver copies it. */
    ember_status (*weight_prepare)(void *impl, const ember_st_tensor *t, ember_wkind kind,
                                   ember_weight *out);
    void (*weight_release)(void *impl, ember_weight *w);

    /* Ops. */
    ember_status (*gather)(void *dctx, const ember_weight *table, const int32_t *idx, int64_t n,
                           float *out, int accumulate);
    ember_status (*layer_norm)(void *dctx, const float *x, const float *residual,
                               const ember_weight *gamma, const ember_weight *beta, float eps,
                               int64_t rows, int64_t cols, float *out);
    ember_status (*linear)(void *dctx, const ember_linear_args *a);
    ember_status (*geglu)(void *dctx, const float *in, int64_t rows, int64_t inter, float *out);
    ember_status (*rope)(void *dctx, const ember_rope_args *a);
    ember_status (*attention)(void *dctx, const ember_attn_args *a);
    /* out[s, :] = pool over the rows of sequence s of hidden (stride cols). */
    ember_status (*pool)(void *dctx, const float *hidden, int64_t cols, const ember_seqs *seqs,
                         int32_t pooling, float *out);
    ember_status (*l2_normalize)(void *dctx, float *x, int64_t rows, int64_t cols);
} ember_driver_ops;

typedef struct ember_driver {
    const ember_driver_ops *ops;
    void *impl;
} ember_driver;

/* Drivers compiled into this build. */
extern const ember_driver_ops ember_cpu_driver_ops;
extern const ember_driver_ops ember_cpu_ref_driver_ops; /* scalar kernels only */

/* Finds a driver by name ("cpu"; NULL or "auto" = best available). */
const ember_driver_ops *ember_driver_find(const char *name);

#endif
