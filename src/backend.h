/*
 * backend.h — the generic backend: one driver paired with one architecture,
 * plus everything around the forward pass (batching, pooling, Matryoshka
 * truncation, normalization). This is where ember_model and ember_ctx are
 * defined; api.c exposes them.
 */
#ifndef EMBER_BACKEND_H
#define EMBER_BACKEND_H

#include "core/arena.h"
#include "drivers/driver.h"
#include "drivers/profile.h"
#include "ember.h"
#include "io/model_config.h"
#include "io/st_config.h"
#include "io/tensor_store.h"
#include "models/arch.h"

struct ember_model {
    char *source;            /* as given to ember_model_load              */
    char *directory;         /* where the files were read                 */
    ember_hparams hp;
    ember_st_config st;
    const ember_arch *arch;
    ember_driver drv;
    ember_tensor_store *store; /* owns the safetensors files            */
    void *weights;           /* architecture-specific, driver memory      */
    ember_weight_set wset;   /* every weight loaded: what release frees   */
    /* sentence-transformers Dense modules after pooling (st.dense) */
    ember_weight dense_w[EMBER_ST_MAX_DENSE], dense_b[EMBER_ST_MAX_DENSE];
    ember_tensor_store *dense_store[EMBER_ST_MAX_DENSE]; /* own the tensor names */
    int32_t pooled_width;    /* widest row from pooling through the Denses */
    char modules[512];       /* the module chain, as ember info prints it  */
    int64_t n_params;
    ember_dt file_dtype;
    int32_t compute_dtype;   /* ember_dtype actually used                 */
    bool dtype_auto;         /* the caller left the dtype to the model    */
    int32_t max_tokens;
    int32_t dim;
    ember_tokenizer *tokenizer; /* NULL when the directory has none      */
};

/* A recorded pass: the ops of one forward + pooling + Dense chain for one
 * shape (tokens, sequences, longest sequence, rows kept), replayed by the
 * driver; `rows` is where the pooled vectors land. seen: times the shape
 * came by before it was recorded (shapes seen once are not recorded). */
#define EMBER_PASS_GRAPHS 32 /* passes up to ember_graph_max_tokens() tokens */
typedef struct ember_pass_graph {
    int64_t key[4];
    void *graph;
    ember_view rows;
    int32_t seen, failures;
} ember_pass_graph;

/* Host side of one pass: what pack_batch fills and the pooled rows come
 * back to. A context has two, used in turn, so pass k+1 is packed while
 * pass k's copies may still be in flight (a driver with download_async:
 * then they are the driver's host memory, page-locked on a GPU). */
typedef struct ember_staging {
    int32_t *ids, *pos, *start, *types; /* tokens_cap, tokens_cap, max_batch + 1, tokens_cap */
    float *pooled;                      /* max_batch x pooled_width                          */
    int pinned;                         /* 1: from the driver's host_alloc                   */
} ember_staging;

/* Tokenizer output of a block of texts (ember_embed_texts), reused from
 * call to call: ids and offsets in CSR form, the encoding and the
 * prompt + text buffer that produced them. */
typedef struct ember_text_block {
    ember_encoding *enc;
    int32_t *ids;
    int64_t ids_cap;
    int64_t *offsets;
    int64_t offsets_cap;
    char *prompt_buf;
    size_t prompt_buf_cap;
} ember_text_block;

struct ember_ctx {
    const ember_model *model;
    void *dctx;              /* driver context (threads, scratch)         */
    ember_arena arena;       /* driver memory                             */
    size_t arena_mark;       /* start of the per-batch part               */
    const int32_t *zeros;    /* driver memory, tokens_cap zeros           */
    const int32_t *d_unit;   /* driver memory, 0 .. max_batch: starts of
                                one-row sequences (pooling compact rows)  */
    int32_t max_batch;
    int64_t max_batch_tokens;
    int64_t tokens_cap;      /* largest forward pass in tokens            */
    /* host staging, sized at init */
    ember_staging stage[2];
    int32_t *h_unit;         /* host copy of d_unit                       */
    /* per-call scratch that grows with the number of inputs */
    int64_t *order;
    int64_t order_cap;
    /* text path: reused tokenizer outputs, one per block in flight */
    ember_text_block text[2];
    int full_last_layer;     /* 1: never skip work for CLS (EMBER_FULL_LAST_LAYER=1) */
    /* per-op timing (ember bench) */
    int profiling;
    ember_profiler profiler;
    ember_dt act_dtype;      /* the driver's activation dtype             */
    /* replayable passes (a driver with graph_begin): small passes by shape */
    ember_pass_graph graphs[EMBER_PASS_GRAPHS];
    int32_t next_graph;
};

/* Loads weights of the directory's model through the chosen driver (fills
 * model->drv, arch, store, weights, n_params, file_dtype). */
ember_status ember_backend_load(ember_model *m, const ember_model_params *p);
void ember_backend_release(ember_model *m);

ember_status ember_backend_ctx_init(const ember_model *m, const ember_ctx_params *p, ember_ctx **out);
void ember_backend_ctx_free(ember_ctx *ctx);

/* The core of ember_embed_tokens (arguments already checked for NULL).
 * Messages name an input by index_base + its index (the text path embeds
 * its inputs in blocks). */
ember_status ember_backend_embed(ember_ctx *ctx, const int32_t *ids, const int64_t *offsets,
                                 int64_t n, int64_t index_base, const ember_embed_options *o,
                                 float *out, int64_t out_len, ember_embed_stats *stats);

/* Checks o->dimensions and that out_len floats hold n vectors; *dims
 * receives the width of one vector. */
ember_status ember_backend_out_dims(const ember_ctx *ctx, const ember_embed_options *o, int64_t n,
                                    int64_t out_len, int32_t *dims);

/* Cross-encoder logits: n sequences (ids and token type ids in CSR form,
 * checked like ember_backend_embed's) through the model and its
 * classification head; writes n x hp.num_labels raw logits in input order. */
ember_status ember_backend_rerank(ember_ctx *ctx, const int32_t *ids, const int32_t *types,
                                  const int64_t *offsets, int64_t n, float *out,
                                  ember_embed_stats *stats);

/* Last hidden states of every token: (offsets[n] - offsets[0]) rows of
 * hidden_size floats in input order. */
ember_status ember_backend_embed_all(ember_ctx *ctx, const int32_t *ids, const int64_t *offsets,
                                     int64_t n, float *out, int64_t out_len,
                                     ember_embed_stats *stats);

/* Times every driver op of later calls (counters reset); for ember bench. */
void ember_ctx_set_profiling(ember_ctx *ctx, int on);
const ember_op_profile *ember_ctx_profile(const ember_ctx *ctx);

#endif
