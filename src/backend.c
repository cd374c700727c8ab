/*
 * backend.c — see backend.h.
 *
 * embed: inputs are sorted by length (ties by index, so runs are
 * deterministic), cut into forward passes of at most max_batch sequences and
 * max_batch_tokens real tokens (a longer single sequence runs alone), packed
 * without padding, run through the architecture, pooled by the driver, then
 * truncated (Matryoshka) and L2-normalized on the host and written back in
 * the caller's order. Nothing here allocates per batch.
 */
#include "backend.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fpenv.h"
#include "core/log.h"
#include "core/pooling.h"
#include "core/util.h"

static const char *k_prefixes[] = {"", "bert.", "model.", "roberta.", "encoder.", "distilbert.", "mpnet."};

/* The Dense modules' weights (N_Dense/model.safetensors: linear.weight
 * [out, in], linear.bias [out]), prepared by the same driver. */
static ember_status load_dense(ember_model *m, ember_wloader *L) {
    m->pooled_width = m->hp.hidden_size;
    for (int32_t i = 0; i < m->st.n_dense; i++) {
        const ember_st_dense *d = &m->st.dense[i];
        const int32_t in = i ? m->st.dense[i - 1].out_features : m->hp.hidden_size;
        if (d->in_features != in)
            return ember_error(EMBER_E_MODEL,
                               "%s: Dense in_features %d, but the module before it gives %d "
                               "features",
                               d->dir, d->in_features, in);
        ember_status st = ember_tensor_store_open(d->dir, &m->dense_store[i]);
        if (st == EMBER_E_UNSUPPORTED)
            return ember_error(EMBER_E_UNSUPPORTED,
                               "%s: the Dense module has no model.safetensors; re-save the model "
                               "with sentence-transformers >= 3 (SentenceTransformer(dir).save(dir), "
                               "which writes safetensors) to use it with Ember",
                               d->dir);
        EMBER_TRY(st);
        ember_wloader DL = *L;
        DL.store = m->dense_store[i];
        DL.prefix = "";
        st = ember_wload(&DL, "linear.weight", EMBER_W_MATRIX, d->out_features, d->in_features,
                         false, &m->dense_w[i]);
        if (st == EMBER_OK)
            st = ember_wload(&DL, "linear.bias", EMBER_W_VECTOR, d->out_features, -1, !d->bias,
                             &m->dense_b[i]);
        L->n_params = DL.n_params;
        EMBER_TRY(st);
        if (d->out_features > m->pooled_width)
            m->pooled_width = d->out_features;
    }
    return EMBER_OK;
}

ember_status ember_backend_load(ember_model *m, const ember_model_params *p) {
    m->arch = m->hp.arch;
    if (!m->arch)
        return ember_error(EMBER_E_UNSUPPORTED, "no architecture for model_type %s", m->hp.model_type);
    int32_t device = 0;
    /* EMBER_DRIVER ("cpu", "cuda", "cuda:1") stands in for a driver the
     * caller left to "auto": tools and scripts select a device without a
     * flag of their own */
    const char *drv_name = p->driver;
    if (!drv_name || !*drv_name || strcmp(drv_name, "auto") == 0) {
        const char *env = getenv("EMBER_DRIVER");
        if (env && *env)
            drv_name = env;
    }
    const ember_driver_ops *ops = ember_driver_find(drv_name, &device);
    if (!ops)
        return ember_error(EMBER_E_UNSUPPORTED, "driver \"%s\" is not available in this build",
                           drv_name ? drv_name : "auto");
    if (p->dtype < EMBER_DTYPE_AUTO || p->dtype > EMBER_DTYPE_INT8)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "dtype %d is not an ember_dtype", p->dtype);
    m->dtype_auto = p->dtype == EMBER_DTYPE_AUTO;
    m->drv.ops = ops;
    /* AUTO goes to the driver, which picks its precision (cpu: f32, a GPU
     * driver: bf16) and says which through act_dtype */
    ember_driver_config cfg = {.compute_dtype = p->dtype, .pack_weights = p->pack_weights,
                               .device = device};
    EMBER_TRY(ops->init(&cfg, &m->drv.impl));
    /* every op the architecture uses, before any weight is read */
    const ember_dt act = ops->act_dtype(m->drv.impl);
    m->compute_dtype = p->dtype != EMBER_DTYPE_AUTO ? p->dtype
                       : act == EMBER_DT_BF16       ? EMBER_DTYPE_BF16
                                                    : EMBER_DTYPE_F32;
    for (int k = 0; k < EMBER_OP_COUNT; k++)
        if (((m->arch->ops | m->hp.extra_ops) & EMBER_OP_BIT(k)) &&
            !ops->supports(m->drv.impl, (ember_op_kind)k, act))
            return ember_error(EMBER_E_UNSUPPORTED,
                               "driver \"%s\" cannot run %s: op '%s' on %s activations is missing",
                               ops->name, m->arch->name, ember_op_name((ember_op_kind)k),
                               ember_dt_name(act));
    EMBER_TRY(ember_tensor_store_open(m->directory, &m->store));

    const char *prefix = NULL;
    for (size_t i = 0; i < EMBER_ARRAY_LEN(k_prefixes) && !prefix; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s%s", k_prefixes[i], m->arch->probe_tensor);
        if (ember_tensor_store_find(m->store, name))
            prefix = k_prefixes[i];
    }
    if (!prefix)
        return ember_error(EMBER_E_MODEL,
                           "%s: tensor '%s' (with or without a 'bert.'/'model.' prefix) is missing: "
                           "is this a %s checkpoint?",
                           m->directory, m->arch->probe_tensor, m->arch->name);
    ember_wloader L = {.store = m->store, .drv = &m->drv, .prefix = prefix, .set = &m->wset,
                       .stack_weights = ops->is_device || p->pack_weights};
    EMBER_TRY(m->arch->load(&m->hp, &L, &m->weights));
    EMBER_TRY(load_dense(m, &L));
    m->n_params = L.n_params;
    m->file_dtype = L.have_file_dtype ? L.file_dtype : EMBER_DT_F32;
    ember_log(EMBER_LOG_INFO, "loaded %s: %lld parameters, weights %s, prefix \"%s\"",
              m->arch->name, (long long)m->n_params, ember_dt_name(m->file_dtype), prefix);
    return EMBER_OK;
}

void ember_backend_release(ember_model *m) {
    if (m->drv.ops)
        ember_weight_set_release(&m->wset, &m->drv);
    m->weights = NULL;
    /* weights that pointed into the mappings have released their
     * references; the store drops the last ones */
    ember_tensor_store_close(m->store);
    m->store = NULL;
    for (int i = 0; i < EMBER_ST_MAX_DENSE; i++) {
        ember_tensor_store_close(m->dense_store[i]);
        m->dense_store[i] = NULL;
    }
    if (m->drv.ops && m->drv.impl)
        m->drv.ops->release(m->drv.impl);
    m->drv.impl = NULL;
}

/* ---- contexts ---- */

static ember_status ctx_init_once(const ember_model *m, const ember_ctx_params *p,
                                   ember_ctx **out);

/* One pass of one short sequence: a GPU loads its kernels and plans its
 * matrix products on the first call, which should not be a user's. */
static ember_status warm_up(ember_ctx *c) {
    const int64_t n = c->model->max_tokens < 16 ? c->model->max_tokens : 16;
    int32_t ids[16] = {0};
    const int64_t offsets[2] = {0, n};
    float *out = ember_calloc((size_t)c->model->dim, sizeof(float), "warm-up");
    if (!out)
        return EMBER_E_NOMEM;
    ember_embed_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.normalize = -1;
    o.truncate = 1;
    ember_status st = ember_backend_embed(c, ids, offsets, 1, 0, &o, out, c->model->dim, NULL);
    free(out);
    return st;
}

ember_status ember_backend_ctx_init(const ember_model *m, const ember_ctx_params *p,
                                    ember_ctx **out) {
    ember_ctx_params q = *p;
    for (;;) {
        ember_status st = ctx_init_once(m, &q, out);
        /* a device whose memory cannot hold this pass: half the tokens */
        if (st == EMBER_E_NOMEM && m->drv.ops->is_device && q.max_batch_tokens > m->max_tokens &&
            q.max_batch_tokens > 2048) {
            q.max_batch_tokens /= 2;
            ember_log(EMBER_LOG_INFO, "context: device memory is short, %d tokens per pass",
                      q.max_batch_tokens);
            continue;
        }
        if (st != EMBER_OK || !m->drv.ops->is_device)
            return st;
        st = warm_up(*out);
        if (st != EMBER_OK) {
            ember_backend_ctx_free(*out);
            *out = NULL;
        }
        return st;
    }
}

/* Host memory of a pass's staging: the driver's (page-locked on a GPU, so
 * copies run without the host waiting) when it overlaps passes, else
 * ordinary. If the driver's runs out (page-locked memory is limited in some
 * containers), ordinary memory serves: copies from and to it are correct,
 * the runtime just waits for them. Zero-filled either way. */
static void staging_free(const ember_ctx *c, ember_staging *s) {
    const ember_driver *d = &c->model->drv;
    void *bufs[] = {s->ids, s->pos, s->types, s->start, s->pooled};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        if (s->pinned)
            d->ops->host_free(d->impl, bufs[i]);
        else
            free(bufs[i]);
    }
    memset(s, 0, sizeof *s);
}

static bool staging_init(const ember_ctx *c, ember_staging *s) {
    const ember_driver *d = &c->model->drv;
    const size_t tokens = sizeof(int32_t) * (size_t)c->tokens_cap,
                 starts = sizeof(int32_t) * ((size_t)c->max_batch + 1),
                 pooled = sizeof(float) * (size_t)c->max_batch * (size_t)c->model->pooled_width;
    for (int pinned = d->ops->host_alloc != NULL; pinned >= 0; pinned--) {
        void *(*alloc)(void *, size_t) = pinned ? d->ops->host_alloc : NULL;
#define STAGING_ALLOC(n) (alloc ? alloc(d->impl, (n)) : ember_calloc(1, (n), "staging"))
        s->pinned = pinned;
        s->ids = STAGING_ALLOC(tokens);
        s->pos = STAGING_ALLOC(tokens);
        s->types = STAGING_ALLOC(tokens);
        s->start = STAGING_ALLOC(starts);
        s->pooled = STAGING_ALLOC(pooled);
#undef STAGING_ALLOC
        if (s->ids && s->pos && s->types && s->start && s->pooled)
            return true;
        staging_free(c, s);
        if (pinned)
            ember_log(EMBER_LOG_DEBUG, "no page-locked staging: ordinary host memory instead");
    }
    return false;
}

static ember_status ctx_init_once(const ember_model *m, const ember_ctx_params *p,
                                  ember_ctx **out) {
    ember_ctx *c = ember_calloc(1, sizeof *c, "context");
    if (!c)
        return EMBER_E_NOMEM;
    c->model = m;
    c->max_batch = p->max_batch > 0 ? p->max_batch : 32;
    c->max_batch_tokens = p->max_batch_tokens > 0 ? p->max_batch_tokens : 2048;
    c->tokens_cap = EMBER_MAX(c->max_batch_tokens, (int64_t)m->max_tokens);
    int n_threads = p->n_threads > 0 ? p->n_threads : ember_cpu_count();

    /* arena: zeros + ids/positions/starts + unit starts + the architecture's
     * buffers + pooled */
    size_t ints = ember_arena_need(sizeof(int32_t) * (size_t)c->tokens_cap);
    size_t arena = ints * 4 + ember_arena_need(sizeof(int32_t) * (size_t)(c->max_batch + 1)) * 2 +
                   m->arch->arena_bytes(&m->hp, c->tokens_cap) +
                   ember_arena_need(sizeof(float) * (size_t)c->max_batch * (size_t)m->hp.hidden_size);
    for (int32_t i = 0; i < m->st.n_dense; i++) /* the Dense chain's outputs */
        arena += ember_arena_need(sizeof(float) * (size_t)c->max_batch *
                                  (size_t)m->st.dense[i].out_features);
    ember_ctx_limits lim = {.max_tokens = c->tokens_cap, .max_seqs = c->max_batch,
                            .max_seq_len = m->max_tokens, .n_heads = m->hp.n_heads,
                            .head_dim = m->hp.head_dim, .scratch_bytes = (int64_t)arena};
    void *base = NULL;
    ember_status st = m->drv.ops->ctx_init(m->drv.impl, n_threads, &lim, &c->dctx, &base);
    if (st != EMBER_OK) {
        free(c);
        return st;
    }
    c->arena.base = base;
    c->arena.size = arena;
    int32_t *zeros = ember_arena_alloc(&c->arena, sizeof(int32_t) * (size_t)c->tokens_cap);
    int32_t *unit = ember_arena_alloc(&c->arena, sizeof(int32_t) * (size_t)(c->max_batch + 1));
    c->h_unit = ember_calloc((size_t)c->max_batch + 1, sizeof(int32_t), "staging");
    bool staged = true;
    for (int i = 0; i < 2; i++)
        staged = staging_init(c, &c->stage[i]) && staged;
    if (!zeros || !unit || !c->h_unit || !staged) {
        ember_backend_ctx_free(c);
        return zeros && unit ? EMBER_E_NOMEM : ember_error(EMBER_E_INTERNAL, "arena too small");
    }
    for (int32_t i = 0; i <= c->max_batch; i++)
        c->h_unit[i] = i;
    /* stage[0].ids is all zeros right now: upload it as the token-type ids
     * (and wait: an upload from the driver's host memory may be in flight) */
    st = m->drv.ops->upload(c->dctx, zeros, c->stage[0].ids, sizeof(int32_t) * (size_t)c->tokens_cap);
    if (st == EMBER_OK)
        st = m->drv.ops->upload(c->dctx, unit, c->h_unit, sizeof(int32_t) * (size_t)(c->max_batch + 1));
    if (st == EMBER_OK)
        st = m->drv.ops->synchronize(c->dctx);
    if (st != EMBER_OK) {
        ember_backend_ctx_free(c);
        return st;
    }
    c->zeros = zeros;
    c->d_unit = unit;
    c->act_dtype = m->drv.ops->act_dtype(m->drv.impl);
    c->arena_mark = c->arena.used;
    const char *full = getenv("EMBER_FULL_LAST_LAYER");
    c->full_last_layer = full && full[0] == '1';
    *out = c;
    return EMBER_OK;
}

void ember_backend_ctx_free(ember_ctx *c) {
    if (!c)
        return;
    for (int i = 0; i < EMBER_PASS_GRAPHS; i++)
        if (c->graphs[i].graph)
            c->model->drv.ops->graph_free(c->dctx, c->graphs[i].graph);
    if (c->dctx)
        c->model->drv.ops->ctx_free(c->dctx);
    for (int i = 0; i < 2; i++)
        staging_free(c, &c->stage[i]);
    free(c->h_unit);
    free(c->order);
    for (int i = 0; i < 2; i++) {
        ember_encoding_free(c->text[i].enc);
        free(c->text[i].ids);
        free(c->text[i].offsets);
        free(c->text[i].prompt_buf);
    }
    free(c);
}

/* ---- embedding ---- */

static _Thread_local const int64_t *tls_sort_offsets;

static int cmp_by_length(const void *a, const void *b) {
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    int64_t li = tls_sort_offsets[i + 1] - tls_sort_offsets[i];
    int64_t lj = tls_sort_offsets[j + 1] - tls_sort_offsets[j];
    if (li != lj)
        return li < lj ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* Messages name a sequence by base + its index (the text path embeds its
 * inputs in blocks). */
static ember_status validate(const ember_ctx *c, const int32_t *ids, const int64_t *offsets,
                             int64_t n, int64_t base) {
    const ember_model *m = c->model;
    if (offsets[0] < 0)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "offsets[0] = %lld is negative",
                           (long long)offsets[0]);
    for (int64_t i = 0; i < n; i++) {
        int64_t len = offsets[i + 1] - offsets[i];
        if (len <= 0)
            return ember_error(EMBER_E_INVALID_ARGUMENT,
                               "sequence %lld is empty or its offsets decrease (%lld -> %lld)",
                               (long long)(base + i), (long long)offsets[i], (long long)offsets[i + 1]);
        if (len > m->max_tokens)
            return ember_error(EMBER_E_TOO_LONG,
                               "sequence %lld has %lld tokens; the model accepts at most %d",
                               (long long)(base + i), (long long)len, m->max_tokens);
        for (int64_t t = offsets[i]; t < offsets[i + 1]; t++) {
            if (ids[t] < 0 || ids[t] >= m->hp.vocab_size)
                return ember_error(EMBER_E_INVALID_ARGUMENT,
                                   "sequence %lld, token %lld: id %d is outside the vocabulary "
                                   "[0, %d)",
                                   (long long)(base + i), (long long)(t - offsets[i]), ids[t],
                                   m->hp.vocab_size);
        }
    }
    return EMBER_OK;
}

/* Packs sequences order[0 .. count) into staging `h`, resets the arena and
 * uploads ids, positions, sequence starts (and token types) into a batch.
 * The batch's host-side starts are h->start: h stays untouched until the
 * pass has been waited for. */
static ember_status pack_batch(ember_ctx *c, const ember_driver_ops *op, void *dctx,
                               ember_staging *h, const int32_t *ids, const int32_t *types,
                               const int64_t *offsets, const int64_t *order, int64_t count,
                               ember_batch *out) {
    const ember_model *m = c->model;
    int64_t T = 0;
    int32_t max_len = 0;
    h->start[0] = 0;
    for (int64_t s = 0; s < count; s++) {
        int64_t i = order[s], len = offsets[i + 1] - offsets[i];
        memcpy(h->ids + T, ids + offsets[i], sizeof(int32_t) * (size_t)len);
        if (types)
            memcpy(h->types + T, types + offsets[i], sizeof(int32_t) * (size_t)len);
        if (m->hp.positions_skip_pad) {
            /* RoBERTa: positions count the non-pad tokens; a pad token sits
             * at pad_token_id (create_position_ids_from_input_ids) */
            const int32_t *row = ids + offsets[i];
            int32_t count_np = 0;
            for (int64_t p = 0; p < len; p++)
                h->pos[T + p] = row[p] == m->hp.pad_token_id
                                      ? m->hp.pad_token_id
                                      : ++count_np + m->hp.pad_token_id;
        } else {
            for (int64_t p = 0; p < len; p++)
                h->pos[T + p] = (int32_t)p + m->hp.position_offset;
        }
        T += len;
        h->start[s + 1] = (int32_t)T;
        if (len > max_len)
            max_len = (int32_t)len;
    }
    c->arena.used = c->arena_mark;
    int32_t *d_ids, *d_pos, *d_start, *d_types = NULL;
    EMBER_ARENA_ALLOC(&c->arena, d_ids, T);
    EMBER_ARENA_ALLOC(&c->arena, d_pos, T);
    EMBER_ARENA_ALLOC(&c->arena, d_start, count + 1);
    EMBER_TRY(op->upload(dctx, d_ids, h->ids, sizeof(int32_t) * (size_t)T));
    EMBER_TRY(op->upload(dctx, d_pos, h->pos, sizeof(int32_t) * (size_t)T));
    EMBER_TRY(op->upload(dctx, d_start, h->start, sizeof(int32_t) * (size_t)(count + 1)));
    if (types) {
        EMBER_ARENA_ALLOC(&c->arena, d_types, T);
        EMBER_TRY(op->upload(dctx, d_types, h->types, sizeof(int32_t) * (size_t)T));
    }
    ember_batch b = {
        .seqs = {.n_seqs = (int32_t)count, .n_tokens = T, .max_len = max_len,
                 .start = h->start, .start_dev = d_start},
        .n_tokens = T, .ids = d_ids, .positions = d_pos, .zeros = c->zeros, .types = d_types,
    };
    *out = b;
    return EMBER_OK;
}

/* The architecture's forward, pooling and the Dense chain of one packed
 * batch: *rows receives the (count, width) fp32 vectors in driver memory. */
static ember_status forward_rows(ember_ctx *c, const ember_driver_ops *op, void *dctx,
                                 ember_batch *b, float *pooled, int64_t count, ember_view *out) {
    const ember_model *m = c->model;
    const int64_t H = m->hp.hidden_size;
    ember_fwd f = {.hp = &m->hp, .weights = m->weights, .op = op, .dctx = dctx,
                   .arena = &c->arena, .act = c->act_dtype, .b = b};
    ember_view hidden = ember_view_none();
    int compact = 0;
    EMBER_TRY(m->arch->forward(&f, &hidden, &compact));
    /* (count, H) pooled rows in driver memory, fp32 */
    ember_view rows = ember_view_of(pooled, EMBER_DT_F32, count, H, H);
    if (compact && hidden.dtype == EMBER_DT_F32 && hidden.ld == H) {
        /* one row per sequence: for CLS / last-token pooling these are the
         * pooled vectors */
        rows = hidden;
    } else if (compact) {
        /* reduced-precision (or strided) compact rows: the driver's pool
         * converts them, each row its own one-token sequence */
        ember_seqs unit = {.n_seqs = (int32_t)count, .n_tokens = count, .max_len = 1,
                           .start = c->h_unit, .start_dev = c->d_unit};
        EMBER_TRY(op->pool(dctx, hidden, &unit, EMBER_POOLING_CLS, rows));
    } else {
        EMBER_TRY(op->pool(dctx, hidden, &b->seqs, m->st.pooling, rows));
    }
    /* sentence-transformers Dense modules: rows = act(rows W^T + b) */
    for (int32_t i = 0; i < m->st.n_dense; i++) {
        const int64_t out_f = m->st.dense[i].out_features;
        float *next;
        EMBER_ARENA_ALLOC(&c->arena, next, count * out_f);
        ember_linear_args dl = {.x = rows, .w = &m->dense_w[i], .bias = ember_wopt(&m->dense_b[i]),
                                .act = (ember_act)m->st.dense[i].act,
                                .y = ember_view_of(next, EMBER_DT_F32, count, out_f, out_f)};
        EMBER_TRY(op->linear(dctx, &dl));
        rows = dl.y;
    }
    *out = rows;
    return EMBER_OK;
}

/* The pass through a recorded graph when the driver has them: a shape seen
 * before is recorded the second time and replayed from then on (a pass's
 * addresses in the arena follow from its shape alone). Large passes, which
 * launch overhead does not slow, and profiled ones run op by op. */
static ember_status forward_rows_graph(ember_ctx *c, const ember_driver_ops *op, void *dctx,
                                       ember_batch *b, float *pooled, int64_t count,
                                       ember_view *rows) {
    if (!op->graph_begin || c->profiling || b->n_tokens > ember_graph_max_tokens())
        return forward_rows(c, op, dctx, b, pooled, count, rows);
    const int64_t key[4] = {b->n_tokens, count, b->seqs.max_len, (int64_t)b->only};
    ember_pass_graph *g = NULL;
    for (int i = 0; i < EMBER_PASS_GRAPHS && !g; i++)
        if (c->graphs[i].seen && memcmp(c->graphs[i].key, key, sizeof key) == 0)
            g = &c->graphs[i];
    if (g && g->graph) {
        *rows = g->rows;
        return op->graph_launch(dctx, g->graph);
    }
    if (!g) { /* first sight: remember the shape (evicting round robin), run op by op */
        g = &c->graphs[c->next_graph];
        c->next_graph = (c->next_graph + 1) % EMBER_PASS_GRAPHS;
        if (g->graph)
            op->graph_free(dctx, g->graph);
        memset(g, 0, sizeof *g);
        memcpy(g->key, key, sizeof key);
        g->seen = 1;
        return forward_rows(c, op, dctx, b, pooled, count, rows);
    }
    if (g->failures >= 2) /* this shape does not record: op by op */
        return forward_rows(c, op, dctx, b, pooled, count, rows);
    const size_t arena_used = c->arena.used;
    void *graph = NULL;
    ember_status st = op->graph_begin(dctx);
    if (st == EMBER_OK) {
        st = forward_rows(c, op, dctx, b, pooled, count, rows);
        ember_status end = op->graph_end(dctx, st == EMBER_OK, &graph);
        if (st == EMBER_OK)
            st = end;
    }
    if (st == EMBER_OK && graph) {
        g->graph = graph;
        g->rows = *rows;
        return op->graph_launch(dctx, graph);
    }
    /* nothing ran while recording: run the pass op by op */
    ember_log(EMBER_LOG_DEBUG, "pass of %lld tokens: no graph (%s)", (long long)key[0],
              ember_last_error());
    ember_error_clear();
    g->failures++;
    c->arena.used = arena_used;
    return forward_rows(c, op, dctx, b, pooled, count, rows);
}

/* One pass queued but perhaps not yet run: which inputs, and where its
 * pooled rows land (stage[slot].pooled, `width` floats a row). */
typedef struct pass_ticket {
    const int64_t *order;
    int64_t count, width;
    int slot;
} pass_ticket;

/* Queues one forward pass over sorted inputs order[0 .. count) on staging
 * `slot`: pack and upload, forward, pooling, Dense chain, and the copy of
 * the pooled rows back to the host. With `overlap` (the driver has
 * download_async) this returns before the pass has run; finish_pass waits. */
static ember_status launch_pass(ember_ctx *c, const ember_driver_ops *op, void *dctx, int overlap,
                                const int32_t *ids, const int64_t *offsets, const int64_t *order,
                                int64_t count, int slot, pass_ticket *ticket) {
    const ember_model *m = c->model;
    ember_staging *h = &c->stage[slot];
    float *pooled;
    ember_batch b;
    EMBER_TRY(pack_batch(c, op, dctx, h, ids, NULL, offsets, order, count, &b));
    EMBER_ARENA_ALLOC(&c->arena, pooled, count * m->hp.hidden_size); /* fp32 whatever the activations */
    if (!c->full_last_layer)
        b.only = m->st.pooling == EMBER_POOLING_CLS          ? EMBER_ROWS_FIRST
                 : m->st.pooling == EMBER_POOLING_LAST_TOKEN ? EMBER_ROWS_LAST
                                                             : EMBER_ROWS_ALL;
    ember_view rows;
    EMBER_TRY(forward_rows_graph(c, op, dctx, &b, pooled, count, &rows));
    const int64_t width = rows.cols; /* = m->dim */
    const size_t bytes = sizeof(float) * (size_t)(count * width);
    if (overlap)
        EMBER_TRY(op->download_async(dctx, h->pooled, rows.data, bytes, slot));
    else
        EMBER_TRY(op->download(dctx, h->pooled, rows.data, bytes));
    *ticket = (pass_ticket){.order = order, .count = count, .width = width, .slot = slot};
    return EMBER_OK;
}

/* Waits for a launched pass and writes its vectors (the first `dims`
 * values, normalized if asked) to their inputs' rows of out. */
static ember_status finish_pass(ember_ctx *c, const ember_driver_ops *op, void *dctx, int overlap,
                                const pass_ticket *t, int32_t dims, int normalize, float *out) {
    if (overlap)
        EMBER_TRY(op->fence_wait(dctx, t->slot));
    const float *pooled = c->stage[t->slot].pooled;
    for (int64_t s = 0; s < t->count; s++) {
        float *dst = out + t->order[s] * dims;
        memcpy(dst, pooled + s * t->width, sizeof(float) * (size_t)dims);
        if (normalize)
            ember_l2_normalize_rows(dst, 1, dims);
    }
    return EMBER_OK;
}

/* After a failure with passes in flight: waits for them (their copies
 * write into the staging the next call reuses), keeping the first error. */
static void drain_after_error(const ember_driver_ops *op, void *dctx, ember_status first) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", ember_last_error());
    if (op->synchronize(dctx) != EMBER_OK)
        ember_error(first, "%s", msg);
}

/* The number of sorted inputs from `first` that make one forward pass. */
static int64_t next_batch(const ember_ctx *c, const int64_t *offsets, int64_t first, int64_t n,
                          int64_t *tokens) {
    int64_t count = 0;
    *tokens = 0;
    while (first + count < n && count < c->max_batch) {
        int64_t i = c->order[first + count], len = offsets[i + 1] - offsets[i];
        if (count > 0 && *tokens + len > c->max_batch_tokens)
            break;
        *tokens += len;
        count++;
    }
    return count;
}

/* Sorts inputs by length into c->order (see ember_backend_embed). */
static ember_status sort_inputs(ember_ctx *c, const int64_t *offsets, int64_t n) {
    if (c->order_cap < n) {
        int64_t *order = ember_realloc(c->order, sizeof(int64_t) * (size_t)n, "input order");
        if (!order)
            return EMBER_E_NOMEM;
        c->order = order;
        c->order_cap = n;
    }
    for (int64_t i = 0; i < n; i++)
        c->order[i] = i;
    tls_sort_offsets = offsets;
    qsort(c->order, (size_t)n, sizeof(int64_t), cmp_by_length);
    return EMBER_OK;
}

ember_status ember_backend_out_dims(const ember_ctx *c, const ember_embed_options *o, int64_t n,
                                   int64_t out_len, int32_t *dims) {
    const ember_model *m = c->model;
    *dims = o->dimensions > 0 ? o->dimensions : m->dim;
    if (o->dimensions < 0 || *dims > m->dim)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "dimensions = %d must be in [1, %d] (or 0)",
                           o->dimensions, m->dim);
    if (n < 0)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "n_seqs = %lld is negative", (long long)n);
    if (n > 0 && out_len / n < *dims)
        return ember_error(EMBER_E_INVALID_ARGUMENT,
                           "output holds %lld floats; %lld sequences x %d dimensions need %lld",
                           (long long)out_len, (long long)n, *dims, (long long)(n * *dims));
    return EMBER_OK;
}

ember_status ember_backend_embed(ember_ctx *c, const int32_t *ids, const int64_t *offsets,
                                 int64_t n, int64_t index_base, const ember_embed_options *o,
                                 float *out, int64_t out_len, ember_embed_stats *stats) {
    const ember_model *m = c->model;
    int32_t dims;
    EMBER_TRY(ember_backend_out_dims(c, o, n, out_len, &dims));
    int normalize = o->normalize < 0 ? m->st.normalize : o->normalize != 0;
    if (n == 0)
        return EMBER_OK;
    EMBER_TRY(validate(c, ids, offsets, n, index_base));

    EMBER_TRY(sort_inputs(c, offsets, n));

    /* with profiling on, every op goes through the timing wrapper (which
     * has no download_async: profiled passes run one after the other) */
    const ember_driver *drv = c->profiling ? &c->profiler.driver : &m->drv;
    void *dctx = c->profiling ? (void *)&c->profiler : c->dctx;
    const ember_driver_ops *op = drv->ops;
    const int overlap = op->download_async && op->fence_wait;

    /* Pass k+1 is packed, uploaded and queued before pass k's vectors are
     * read back, so a GPU runs pass k while the host prepares k+1: the two
     * staging slots take turns. On a synchronous driver (cpu) each pass has
     * run when launch_pass returns; the order of the work is the same. */
    uint32_t fpenv = ember_fpenv_enter();
    ember_status st = EMBER_OK;
    pass_ticket queued = {0};
    int have_queued = 0, slot = 0;
    for (int64_t first = 0; first < n && st == EMBER_OK;) {
        int64_t tokens, count = next_batch(c, offsets, first, n, &tokens);
        pass_ticket ticket;
        st = launch_pass(c, op, dctx, overlap, ids, offsets, c->order + first, count, slot, &ticket);
        if (st == EMBER_OK && have_queued)
            st = finish_pass(c, op, dctx, overlap, &queued, dims, normalize, out);
        if (st == EMBER_OK) {
            queued = ticket;
            have_queued = 1;
            slot ^= 1;
            if (stats) {
                stats->n_tokens += tokens;
                stats->n_forward_passes++;
            }
        }
        first += count;
    }
    if (st == EMBER_OK && have_queued)
        st = finish_pass(c, op, dctx, overlap, &queued, dims, normalize, out);
    if (st != EMBER_OK && overlap)
        drain_after_error(op, dctx, st);
    ember_fpenv_leave(fpenv);
    if (st != EMBER_OK)
        return st;
    /* A NaN or infinity is never an embedding: report it instead of handing
     * out a vector that serializes as null (weights that overflow float32,
     * or non-finite values a zero-copy load did not scan). */
    for (int64_t i = 0; i < n; i++)
        for (int32_t d = 0; d < dims; d++)
            if (!isfinite(out[i * dims + d]))
                return ember_error(EMBER_E_MODEL,
                                   "sequence %lld: dimension %d of its embedding is %s (not a "
                                   "finite number): the model's weights or activations overflow",
                                   (long long)(index_base + i), d, isnan(out[i * dims + d]) ? "NaN" : "infinite");
    return EMBER_OK;
}


static ember_status rerank_batch(ember_ctx *c, const int32_t *ids, const int32_t *types,
                                 const int64_t *offsets, const int64_t *order, int64_t count,
                                 float *out) {
    const ember_model *m = c->model;
    const ember_driver *drv = c->profiling ? &c->profiler.driver : &m->drv;
    void *dctx = c->profiling ? (void *)&c->profiler : c->dctx;
    const ember_driver_ops *op = drv->ops;
    const int64_t H = m->hp.hidden_size, NL = m->hp.num_labels;
    ember_batch b;
    EMBER_TRY(pack_batch(c, op, dctx, &c->stage[0], ids, types, offsets, order, count, &b));
    float *first;
    EMBER_ARENA_ALLOC(&c->arena, first, count * H);
    /* encoders' heads read the first token, decoders' the last */
    const bool last = m->hp.cls_head == EMBER_HEAD_SCORE;
    if (!c->full_last_layer)
        b.only = last ? EMBER_ROWS_LAST : EMBER_ROWS_FIRST;
    ember_fwd f = {.hp = &m->hp, .weights = m->weights, .op = op, .dctx = dctx,
                   .arena = &c->arena, .act = c->act_dtype, .b = &b};
    ember_view hidden = ember_view_none();
    int compact = 0;
    EMBER_TRY(m->arch->forward(&f, &hidden, &compact));
    ember_view rows = ember_view_of(first, EMBER_DT_F32, count, H, H);
    if (compact && hidden.dtype == EMBER_DT_F32 && hidden.ld == H)
        rows = hidden;
    else if (compact)
        return ember_error(EMBER_E_INTERNAL, "compact hidden states must be fp32 (%s given)",
                           ember_dt_name(hidden.dtype));
    else
        EMBER_TRY(op->pool(dctx, hidden, &b.seqs, last ? EMBER_POOLING_LAST_TOKEN : EMBER_POOLING_CLS, rows));
    ember_view logits = ember_view_none();
    EMBER_TRY(m->arch->head(&f, rows, &logits));
    if (logits.dtype != EMBER_DT_F32 || logits.rows != count || logits.cols != NL ||
        logits.ld != NL)
        return ember_error(EMBER_E_INTERNAL, "classification head returned a bad view");
    EMBER_TRY(op->download(dctx, c->stage[0].pooled, logits.data, sizeof(float) * (size_t)(count * NL)));
    for (int64_t s = 0; s < count; s++)
        memcpy(out + order[s] * NL, c->stage[0].pooled + s * NL, sizeof(float) * (size_t)NL);
    return EMBER_OK;
}

/* A decoder's head reads the last token that is not pad_token_id
 * (transformers' ForSequenceClassification). The model is causal, so that
 * token's state does not depend on the tokens after it: the trailing pad ids
 * are dropped (all but the first token of a sequence of pads, whose first
 * token transformers then reads). Copies into *tids, *ttypes, *toffs (NULL
 * when nothing is dropped: the caller's arrays serve). */
static ember_status drop_trailing_pads(const ember_model *m, const int32_t *ids, const int32_t *types,
                                       const int64_t *offsets, int64_t n, int32_t **tids,
                                       int32_t **ttypes, int64_t **toffs) {
    *tids = *ttypes = NULL;
    *toffs = NULL;
    const int32_t pad = m->hp.pad_token_id;
    if (m->hp.cls_head != EMBER_HEAD_SCORE || pad < 0)
        return EMBER_OK;
    int64_t i = 0;
    while (i < n && !(offsets[i + 1] - offsets[i] > 1 && ids[offsets[i + 1] - 1] == pad))
        i++;
    if (i == n)
        return EMBER_OK;
    const int64_t total = offsets[n] - offsets[0];
    *tids = ember_malloc(sizeof(int32_t) * (size_t)(total > 0 ? total : 1), "reranker ids");
    *ttypes = ember_malloc(sizeof(int32_t) * (size_t)(total > 0 ? total : 1), "reranker types");
    *toffs = ember_malloc(sizeof(int64_t) * (size_t)(n + 1), "reranker offsets");
    if (!*tids || !*ttypes || !*toffs)
        return EMBER_E_NOMEM;
    (*toffs)[0] = 0;
    for (int64_t s = 0; s < n; s++) {
        int64_t end = offsets[s + 1];
        while (end - offsets[s] > 1 && ids[end - 1] == pad)
            end--;
        const int64_t len = end - offsets[s], at = (*toffs)[s];
        memcpy(*tids + at, ids + offsets[s], sizeof(int32_t) * (size_t)len);
        memcpy(*ttypes + at, types + offsets[s], sizeof(int32_t) * (size_t)len);
        (*toffs)[s + 1] = at + len;
    }
    return EMBER_OK;
}

/* The rerank of checked (and, for decoder heads, trimmed) sequences. */
static ember_status rerank_all(ember_ctx *c, const int32_t *ids, const int32_t *types,
                               const int64_t *offsets, int64_t n, float *out, ember_embed_stats *stats);

ember_status ember_backend_rerank(ember_ctx *c, const int32_t *ids, const int32_t *types,
                                  const int64_t *offsets, int64_t n, float *out,
                                  ember_embed_stats *stats) {
    const ember_model *m = c->model;
    if (!m->hp.cls_head || !m->arch->head)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "%s is not a cross-encoder: config.json architectures names no "
                           "supported *ForSequenceClassification head",
                           m->directory ? m->directory : "the model");
    if (m->hp.num_labels > m->pooled_width)
        return ember_error(EMBER_E_UNSUPPORTED, "%d labels are more than Ember stages",
                           m->hp.num_labels);
    if (n <= 0)
        return n < 0 ? ember_error(EMBER_E_INVALID_ARGUMENT, "n = %lld is negative", (long long)n)
                     : EMBER_OK;
    EMBER_TRY(validate(c, ids, offsets, n, 0));
    int32_t *tids, *ttypes;
    int64_t *toffs;
    ember_status st = drop_trailing_pads(m, ids, types, offsets, n, &tids, &ttypes, &toffs);
    if (st == EMBER_OK)
        st = toffs ? rerank_all(c, tids, ttypes, toffs, n, out, stats)
                   : rerank_all(c, ids, types, offsets, n, out, stats);
    free(tids);
    free(ttypes);
    free(toffs);
    return st;
}

static ember_status rerank_all(ember_ctx *c, const int32_t *ids, const int32_t *types,
                               const int64_t *offsets, int64_t n, float *out, ember_embed_stats *stats) {
    const ember_model *m = c->model;
    /* decoders have no token types: the pair template's are ignored */
    const int32_t ntypes = m->hp.cls_head == EMBER_HEAD_SCORE ? INT32_MAX
                           : m->hp.type_vocab_size > 0        ? m->hp.type_vocab_size
                                                              : 1;
    for (int64_t t = offsets[0]; t < offsets[n]; t++)
        if (types[t] < 0 || types[t] >= ntypes)
            return ember_error(EMBER_E_INVALID_ARGUMENT,
                               "token %lld: type id %d is outside [0, %d)",
                               (long long)(t - offsets[0]), types[t], ntypes);
    EMBER_TRY(sort_inputs(c, offsets, n));
    uint32_t fpenv = ember_fpenv_enter();
    ember_status st = EMBER_OK;
    for (int64_t first = 0; first < n && st == EMBER_OK;) {
        int64_t tokens, count = next_batch(c, offsets, first, n, &tokens);
        st = rerank_batch(c, ids, types, offsets, c->order + first, count, out);
        if (stats && st == EMBER_OK) {
            stats->n_tokens += tokens;
            stats->n_forward_passes++;
        }
        first += count;
    }
    ember_fpenv_leave(fpenv);
    return st;
}

ember_status ember_backend_embed_all(ember_ctx *c, const int32_t *ids, const int64_t *offsets,
                                     int64_t n, float *out, int64_t out_len,
                                     ember_embed_stats *stats) {
    const ember_model *m = c->model;
    const int64_t H = m->hp.hidden_size;
    if (n < 0)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "n = %lld is negative", (long long)n);
    if (n == 0)
        return EMBER_OK;
    EMBER_TRY(validate(c, ids, offsets, n, 0));
    const int64_t total = offsets[n] - offsets[0];
    if (out_len / H < total)
        return ember_error(EMBER_E_INVALID_ARGUMENT,
                           "output holds %lld floats; %lld tokens x %lld need %lld",
                           (long long)out_len, (long long)total, (long long)H,
                           (long long)(total * H));
    EMBER_TRY(sort_inputs(c, offsets, n));
    float *host = ember_malloc(sizeof(float) * (size_t)c->tokens_cap * (size_t)H, "hidden states");
    if (!host)
        return EMBER_E_NOMEM;
    const ember_driver *drv = c->profiling ? &c->profiler.driver : &m->drv;
    void *dctx = c->profiling ? (void *)&c->profiler : c->dctx;
    const ember_driver_ops *op = drv->ops;
    uint32_t fpenv = ember_fpenv_enter();
    ember_status st = EMBER_OK;
    for (int64_t first = 0; first < n && st == EMBER_OK;) {
        int64_t tokens, count = next_batch(c, offsets, first, n, &tokens);
        const int64_t *order = c->order + first;
        ember_batch b;
        st = pack_batch(c, op, dctx, &c->stage[0], ids, NULL, offsets, order, count, &b);
        ember_fwd f = {.hp = &m->hp, .weights = m->weights, .op = op, .dctx = dctx,
                       .arena = &c->arena, .act = c->act_dtype, .b = &b};
        ember_view hidden = ember_view_none();
        int compact = 0;
        if (st == EMBER_OK)
            st = m->arch->forward(&f, &hidden, &compact);
        if (st == EMBER_OK && (compact || hidden.dtype != EMBER_DT_F32 || hidden.rows != b.n_tokens))
            st = ember_error(EMBER_E_UNSUPPORTED,
                             "per-token hidden states need fp32 activations (driver gives %s)",
                             ember_dt_name(hidden.dtype));
        for (int64_t r = 0; st == EMBER_OK && r < b.n_tokens; r++)
            st = op->download(dctx, host + r * H, (const char *)hidden.data + (size_t)(r * hidden.ld) * sizeof(float),
                              sizeof(float) * (size_t)H);
        if (st == EMBER_OK) {
            for (int64_t s = 0; s < count; s++) {
                int64_t i = order[s], len = offsets[i + 1] - offsets[i];
                memcpy(out + (offsets[i] - offsets[0]) * H, host + (int64_t)c->stage[0].start[s] * H,
                       sizeof(float) * (size_t)(len * H));
            }
            if (stats) {
                stats->n_tokens += tokens;
                stats->n_forward_passes++;
            }
        }
        first += count;
    }
    ember_fpenv_leave(fpenv);
    free(host);
    return st;
}

void ember_ctx_set_profiling(ember_ctx *c, int on) {
    c->profiling = on;
    ember_profiler_init(&c->profiler, &c->model->drv, c->dctx);
}

const ember_op_profile *ember_ctx_profile(const ember_ctx *c) { return &c->profiler.prof; }
