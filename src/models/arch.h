/*
 * arch.h — the architecture interface: config parsing, a weight table and a
 * forward pass written against the driver interface only.
 *
 * An architecture is one file (src/models/NAME.c) that defines one
 * `ember_arch` and one line in registry.c (docs/architecture.md has the
 * checklist). It reads its hyper-parameters from config.json (parse_config,
 * with the helpers of io/model_config.h), declares its tensors (names,
 * shapes, dtypes are checked at load through ember_wloader, with a precise
 * error naming the tensor), says how much arena memory a forward pass over N
 * tokens needs, and computes the last hidden states of a packed batch.
 * Checkpoint name variants ("bert." and "model." prefixes) are resolved once
 * by the loader, never in forward.
 *
 * Weights: every ember_weight filled by the loader, and every block from
 * ember_wloader_alloc, is recorded in the model's weight set, so release is
 * generic and an architecture has no release function.
 */
#ifndef EMBER_MODELS_ARCH_H
#define EMBER_MODELS_ARCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "drivers/driver.h"
#include "io/model_config.h"
#include "io/tensor_store.h"

/* A packed batch in driver memory (the host copies are in `seqs`). */
typedef struct ember_batch {
    ember_seqs seqs;
    int64_t n_tokens;
    const int32_t *ids;       /* (tokens) token ids                              */
    const int32_t *positions; /* (tokens) position within its sequence + the
                                 architecture's position_offset               */
    const int32_t *zeros;     /* (tokens) zeros: BERT token type ids             */
    const int32_t *types;     /* (tokens) token type ids of sentence pairs, or
                                 NULL (then zeros)                             */
    /* Hint: only the first (CLS pooling) or last (last-token pooling) token
     * of each sequence is needed. An architecture may then skip the rest of
     * the last layer and return one row per sequence (setting *compact). */
    ember_rows only;
} ember_batch;

/* Everything a forward pass works with. */
typedef struct ember_fwd {
    const ember_hparams *hp;
    const void *weights;       /* what the architecture's load returned      */
    const ember_driver_ops *op;
    void *dctx;
    ember_arena *arena;        /* driver memory, reset before each pass      */
    ember_dt act;              /* the context's activation dtype             */
    const ember_batch *b;
} ember_fwd;

/* A (rows, cols) activation of the context's dtype from the arena;
 * EMBER_E_INTERNAL when the arena estimate was too small (a bug). */
ember_status ember_fwd_alloc(const ember_fwd *f, int64_t rows, int64_t cols, ember_view *out);
/* Arena bytes of a (rows, cols) activation, for arena_bytes (fp32 worst case). */
static inline size_t ember_act_bytes(int64_t rows, int64_t cols) {
    return ember_arena_need(sizeof(float) * (size_t)rows * (size_t)cols);
}

/* The weights of one model: what release frees. */
typedef struct ember_weight_set {
    ember_weight **weights;
    size_t n, cap;
    void **blocks;
    size_t n_blocks, cap_blocks;
} ember_weight_set;

void ember_weight_set_release(ember_weight_set *set, const ember_driver *drv);

/* Prepares weights through the driver with shape and dtype checks. */
typedef struct ember_wloader {
    const ember_tensor_store *store;
    const ember_driver *drv;
    const char *prefix;       /* "", "bert.", "model." ...             */
    ember_dt file_dtype;      /* dtype of the first matrix loaded      */
    bool have_file_dtype;
    int64_t n_params;         /* elements of every tensor loaded       */
    ember_weight_set *set;    /* where prepared weights are recorded   */
    bool stack_weights;       /* the driver copies every matrix at load
                                 (a device, or the CPU's packed mode), so
                                 ember_wload_stacked may fuse Q, K, V     */
} ember_wloader;

/* Zeroed memory owned by the model (freed with its weights); NULL on
 * exhaustion (the error is set). */
void *ember_wloader_alloc(ember_wloader *L, size_t bytes);
/* Loads tensor prefix + name, which must be F32, F16 or BF16 of shape
 * [d0] (d1 < 0) or [d0, d1]. When `optional` and absent, *out is zeroed and
 * EMBER_OK returned (out->data == NULL). `out` must stay where it is until
 * the model is released (it lives in ember_wloader_alloc memory). Errors:
 * EMBER_E_MODEL naming the tensor with the expected and found dtype/shape. */
ember_status ember_wload(ember_wloader *L, const char *name, ember_wkind kind, int64_t d0,
                         int64_t d1, bool optional, ember_weight *out);
/* Loads n tensors prefix + names[i], each [d0, d1] (or [d0] when d1 < 0)
 * and all of one dtype, stacked row-wise into one [n d0, d1] weight: Q, K
 * and V as one [3H, H] product. Only where L->stack_weights (the driver
 * copies the temporary host stack: a device, or the CPU driver packing its
 * weights; in zero-copy mode the CPU reads weights in place):
 * EMBER_E_UNSUPPORTED otherwise, or when the dtypes differ, and the caller
 * loads the tensors one by one. */
ember_status ember_wload_stacked(ember_wloader *L, const char *const *names, int n, int64_t d0,
                                 int64_t d1, ember_wkind kind, ember_weight *out);
/* printf-style name. */
ember_status ember_wloadf(ember_wloader *L, ember_wkind kind, int64_t d0, int64_t d1,
                          bool optional, ember_weight *out, const char *fmt, ...)
    EMBER_PRINTF(7, 8);
/* Reads tensor prefix + name of shape [d0, d1] (F32, F16 or BF16) into a new
 * fp32 host array the caller frees: for tables an architecture transforms at
 * load (MPNet's relative-position bias). */
ember_status ember_wread_f32(ember_wloader *L, const char *name, int64_t d0, int64_t d1,
                             float **out);
/* Uploads host data (copied) as a driver vector/table weight. */
ember_status ember_wload_host(ember_wloader *L, const float *data, int64_t rows, int64_t cols,
                              const char *name, ember_weight *out);
/* Releases one weight through the driver (an empty one is ignored). */
void ember_wrelease(const ember_driver *drv, ember_weight *w);
/* The weight if it was loaded, else NULL (optional biases). */
static inline const ember_weight *ember_wopt(const ember_weight *w) { return w->data || w->packed ? w : NULL; }

/* RoPE cos/sin table [rows, head_dim] for `theta`, computed as transformers
 * does in fp32 (inv_freq = 1 / theta^(2i/d), angle = fp32(pos * inv_freq)),
 * the trigonometry in double, rounded once. */
ember_status ember_wload_rope_table(ember_wloader *L, int32_t head_dim, int64_t rows, float theta,
                                    const char *name, ember_weight *out);

typedef struct ember_arch {
    const char *name;                /* "bert"                                   */
    const char *const *model_types;  /* config.json model_type values, NULL-ended */
    int32_t default_pooling;         /* when the directory has no modules.json  */
    bool default_normalize;
    const char *probe_tensor;        /* finds the checkpoint's name prefix      */
    uint32_t ops;                    /* driver ops used: bits 1 << ember_op_kind */
    /* Fills hp from config.json (hp->model_type, name_or_path and arch are
     * set): every field the architecture uses, and hp->max_tokens,
     * hp->position_offset. Errors name the file and key. */
    ember_status (*parse_config)(const json_t *root, const char *what, ember_hparams *hp);
    ember_status (*load)(const ember_hparams *hp, ember_wloader *L, void **weights);
    /* Arena bytes for a forward pass over `max_tokens` tokens (fp32). */
    size_t (*arena_bytes)(const ember_hparams *hp, int64_t max_tokens);
    /* Last hidden states (tokens, hidden), or (sequences, hidden) rows of
     * the token named by b->only with *compact = 1 when it honoured it. */
    ember_status (*forward)(const ember_fwd *f, ember_view *hidden, int *compact);
    /* Optional: the sequence-classification head (cross-encoders) on the
     * first-token rows `first` (sequences, hidden) fp32, writing
     * (sequences, hp->num_labels) fp32 logits into a view it allocates from
     * the arena. NULL when the architecture has none; only called when
     * hp->cls_head is set. arena_bytes must cover it. */
    ember_status (*head)(const ember_fwd *f, ember_view first, ember_view *logits);
} ember_arch;

#define EMBER_OP_BIT(k) (1u << (k))

/* Arena allocation of host-typed buffers (ids, offsets) that reports
 * exhaustion as an internal error. */
#define EMBER_ARENA_ALLOC(arena, ptr, count)                                                   \
    do {                                                                                       \
        (ptr) = ember_arena_alloc((arena), sizeof(*(ptr)) * (size_t)(count));                  \
        if (!(ptr))                                                                            \
            return ember_error(EMBER_E_INTERNAL, "arena exhausted at %s:%d", __FILE__, __LINE__); \
    } while (0)

/* ---- the registry (registry.c) ---- */

/* The architecture for a config.json model_type, or NULL. */
const ember_arch *ember_arch_find(const char *model_type);
/* Adds an architecture at run time (tests, plug-ins): EMBER_E_INVALID_ARGUMENT
 * when a model_type is already taken or the table is full. Not thread-safe
 * against concurrent loads: register before loading models. */
ember_status ember_arch_register(const ember_arch *arch);
/* "bert, modernbert, ..." for messages. */
const char *ember_arch_supported(void);

#endif
