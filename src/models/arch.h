/*
 * arch.h — the architecture interface: a weight table plus a forward pass
 * written against the driver interface only.
 *
 * An architecture declares its tensors (names, shapes, dtypes are checked at
 * load through ember_wloader, with a precise error naming the tensor), says
 * how much arena memory a forward pass over N tokens needs, and computes the
 * last hidden states of a packed batch. Checkpoint name variants ("bert."
 * and "model." prefixes) are resolved once by the loader, never in forward.
 */
#ifndef EMBER_MODELS_ARCH_H
#define EMBER_MODELS_ARCH_H

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
    const int32_t *ids;       /* (tokens) token ids                    */
    const int32_t *positions; /* (tokens) position within its sequence */
    const int32_t *zeros;     /* (tokens) zeros: BERT token type ids   */
    /* Hint: only the first token of each sequence is needed (CLS pooling).
     * An architecture may then skip the rest of the last layer and return
     * one row per sequence (setting *compact). */
    int first_only;
} ember_batch;

/* Prepares weights through the driver with shape and dtype checks. */
typedef struct ember_wloader {
    const ember_tensor_store *store;
    const ember_driver *drv;
    const char *prefix;       /* "", "bert.", "model." ...             */
    ember_dt file_dtype;      /* dtype of the first matrix loaded      */
    bool have_file_dtype;
    int64_t n_params;         /* elements of every tensor loaded       */
} ember_wloader;

/* Loads tensor prefix + name, which must be F32, F16 or BF16 of shape
 * [d0] (d1 < 0) or [d0, d1]. When `optional` and absent, *out is zeroed and
 * EMBER_OK returned (out->data == NULL). Errors: EMBER_E_MODEL naming the
 * tensor with the expected and found dtype/shape. */
ember_status ember_wload(ember_wloader *L, const char *name, ember_wkind kind, int64_t d0,
                         int64_t d1, bool optional, ember_weight *out);
/* printf-style name. */
ember_status ember_wloadf(ember_wloader *L, ember_wkind kind, int64_t d0, int64_t d1,
                          bool optional, ember_weight *out, const char *fmt, ...)
    EMBER_PRINTF(7, 8);
/* Uploads host data (copied) as a driver vector/table weight. */
ember_status ember_wload_host(ember_wloader *L, const float *data, int64_t rows, int64_t cols,
                              const char *name, ember_weight *out);
void ember_wrelease(const ember_driver *drv, ember_weight *w);

typedef struct ember_arch {
    const char *name;
    ember_arch_id id;
    int32_t default_pooling;      /* when the directory has no modules.json */
    bool default_normalize;
    const char *probe_tensor;     /* finds the checkpoint's name prefix     */
    ember_status (*load)(const ember_hparams *hp, ember_wloader *L, void **weights);
    void (*release)(const ember_driver *drv, void *weights);
    /* Arena bytes for a forward pass over `max_tokens` tokens. */
    size_t (*arena_bytes)(const ember_hparams *hp, int64_t max_tokens);
    /* Last hidden states (tokens, hidden) in the arena, or (sequences,
     * hidden) first-token rows with *compact = 1 when it honoured
     * b->first_only. */
    ember_status (*forward)(const ember_hparams *hp, const void *weights, const ember_driver *drv,
                            void *dctx, ember_arena *arena, const ember_batch *b, float **hidden,
                            int *compact);
} ember_arch;

extern const ember_arch ember_arch_bert;
extern const ember_arch ember_arch_modernbert;

const ember_arch *ember_arch_for(ember_arch_id id);

/* Arena allocation that reports exhaustion as an internal error. */
#define EMBER_ARENA_ALLOC(arena, ptr, count)                                                   \
    do {                                                                                       \
        (ptr) = ember_arena_alloc((arena), sizeof(*(ptr)) * (size_t)(count));                  \
        if (!(ptr))                                                                            \
            return ember_error(EMBER_E_INTERNAL, "arena exhausted at %s:%d", __FILE__, __LINE__); \
    } while (0)

#endif
