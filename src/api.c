/*
 * api.c — the public API of include/ember.h over the backend: argument
 * checks, model directory loading, model description, the text path
 * (prompt, tokenizer, truncation) in front of ember_embed_tokens, and the
 * small helpers the tools need (normalization, per-op profile).
 */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "core/cpu.h"
#include "core/log.h"
#include "core/pooling.h"
#include "core/util.h"
#include "ember.h"
#include "tokenizer/tokenizer.h"

/* ---- defaults ---- */

ember_model_params ember_model_default_params(void) {
    ember_model_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.dtype = EMBER_DTYPE_AUTO;
    p.pack_weights = 1;
    p.load_tokenizer = 1;
    p.allow_download = 1;
    return p;
}

ember_ctx_params ember_ctx_default_params(void) {
    ember_ctx_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.n_threads = 0;
    p.max_batch = 32;
    p.max_batch_tokens = 2048;
    return p;
}

ember_ctx_params ember_model_ctx_params(const ember_model *m) {
    ember_ctx_params p = ember_ctx_default_params();
    if (m && m->drv.ops && m->drv.ops->is_device) {
        p.max_batch = 512;
        p.max_batch_tokens = 65536;
    }
    return p;
}

ember_embed_options ember_embed_default_options(void) {
    ember_embed_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.normalize = -1;
    o.truncate = 1;
    o.truncation_side = EMBER_TRUNCATE_RIGHT;
    return o;
}

/* Copies a caller's params struct that may be older (smaller) than ours. */
#define COPY_PARAMS(dst, src, defaults)                                                          \
    do {                                                                                         \
        (dst) = (defaults);                                                                      \
        if (src) {                                                                               \
            if ((src)->struct_size < sizeof(uint32_t) || (src)->struct_size > sizeof(dst))       \
                return ember_error(EMBER_E_INVALID_ARGUMENT,                                     \
                                   "%s: struct_size %u is invalid (expected at most %zu)", #src, \
                                   (unsigned)(src)->struct_size, sizeof(dst));                  \
            memcpy(&(dst), (src), (src)->struct_size);                                           \
            (dst).struct_size = sizeof(dst);                                                     \
        }                                                                                        \
    } while (0)

const char *ember_pooling_name(ember_pooling pooling) {
    switch (pooling) {
    case EMBER_POOLING_CLS: return "cls";
    case EMBER_POOLING_MEAN: return "mean";
    case EMBER_POOLING_MAX: return "max";
    case EMBER_POOLING_MEAN_SQRT_LEN: return "mean_sqrt_len_tokens";
    case EMBER_POOLING_WEIGHTED_MEAN: return "weightedmean";
    case EMBER_POOLING_LAST_TOKEN: return "lasttoken";
    }
    return "unknown";
}

/* ---- models ---- */

/* "Transformer(bert) -> Pooling(cls) -> Dense(384->768, tanh) -> Normalize":
 * the chain the backend runs, for ember info. */
static void describe_modules(ember_model *m) {
    static const char *const acts[] = {"identity", "gelu", "gelu_tanh", "relu", "silu", "tanh"};
    const size_t cap = sizeof m->modules;
    size_t n = (size_t)snprintf(m->modules, cap, "Transformer(%s) -> Pooling(%s)", m->arch->name,
                                ember_pooling_name((ember_pooling)m->st.pooling));
    for (int32_t i = 0; i < m->st.n_dense && n < cap; i++) {
        const ember_st_dense *d = &m->st.dense[i];
        const int a = d->act >= 0 && d->act < (int)(sizeof acts / sizeof *acts) ? d->act : 0;
        n += (size_t)snprintf(m->modules + n, cap - n, " -> Dense(%d->%d%s, %s)", d->in_features,
                              d->out_features, d->bias ? "" : ", no bias", acts[a]);
    }
    if (m->st.normalize && n < cap)
        snprintf(m->modules + n, cap - n, " -> Normalize");
}

static ember_status load_model(ember_model *m, const char *path, const ember_model_params *p) {
    m->source = ember_strdup(path);
    if (!m->source)
        return EMBER_E_NOMEM;
    EMBER_TRY(ember_resolve_model(path, p, &m->directory));

    char *cfg = ember_path_join(m->directory, "config.json");
    if (!cfg)
        return EMBER_E_NOMEM;
    ember_status st = ember_hparams_load(cfg, &m->hp);
    if (st == EMBER_E_NOT_FOUND)
        st = ember_error(EMBER_E_NOT_FOUND, "%s: config.json is missing", m->directory);
    free(cfg);
    EMBER_TRY(st);

    const ember_arch *arch = m->hp.arch;
    EMBER_TRY(ember_st_config_load(m->directory, arch->default_pooling, arch->default_normalize,
                                   &m->st));
    m->dim = m->hp.hidden_size;
    if (m->st.word_embedding_dimension && m->st.word_embedding_dimension != m->dim)
        return ember_error(EMBER_E_MODEL,
                           "%s: the pooling config says word_embedding_dimension %d but the model's "
                           "hidden_size is %d",
                           m->directory, m->st.word_embedding_dimension, m->dim);
    if (m->st.n_dense > 0) /* the vectors are what the last Dense module gives */
        m->dim = m->st.dense[m->st.n_dense - 1].out_features;
    /* the architecture's limit (positions less its offset), then
     * sentence-transformers' max_seq_length, then the caller's */
    int32_t max_tokens = m->hp.max_tokens;
    if (m->st.max_seq_length > 0)
        max_tokens = EMBER_MIN(max_tokens, m->st.max_seq_length);
    if (p->max_seq_length > 0)
        max_tokens = EMBER_MIN(m->hp.max_tokens, p->max_seq_length);
    m->max_tokens = max_tokens;

    EMBER_TRY(ember_backend_load(m, p));
    describe_modules(m);

    if (p->load_tokenizer) {
        char *tj = ember_path_join(m->directory, "tokenizer.json");
        char *vt = ember_path_join(m->directory, "vocab.txt");
        bool have = (tj && ember_file_exists(tj)) || (vt && ember_file_exists(vt));
        free(tj);
        free(vt);
        if (have) {
            st = ember_tokenizer_load(m->directory, &m->tokenizer);
            if (st != EMBER_OK)
                return st;
            int32_t tv = ember_tokenizer_vocab_size(m->tokenizer);
            if (tv > m->hp.vocab_size)
                ember_log(EMBER_LOG_WARN,
                          "tokenizer has %d ids but the model's vocabulary is %d: texts producing "
                          "the extra ids will be rejected",
                          tv, m->hp.vocab_size);
        }
    }
    return EMBER_OK;
}

ember_status ember_model_load(const char *path, const ember_model_params *params,
                              ember_model **out) {
    ember_error_clear();
    if (!out)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_model_load: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_model_load: path is empty");
    ember_model_params p;
    COPY_PARAMS(p, params, ember_model_default_params());
    ember_model *m = ember_calloc(1, sizeof *m, "model");
    if (!m)
        return EMBER_E_NOMEM;
    ember_status st = load_model(m, path, &p);
    if (st != EMBER_OK) {
        ember_model_free(m);
        return st;
    }
    *out = m;
    return EMBER_OK;
}

void ember_model_free(ember_model *m) {
    if (!m)
        return;
    ember_tokenizer_free(m->tokenizer);
    ember_backend_release(m);
    ember_st_config_free(&m->st);
    free(m->source);
    free(m->directory);
    free(m);
}

int32_t ember_model_dim(const ember_model *m) { return m ? m->dim : 0; }
int32_t ember_model_max_tokens(const ember_model *m) { return m ? m->max_tokens : 0; }
ember_pooling ember_model_pooling(const ember_model *m) {
    return m ? (ember_pooling)m->st.pooling : EMBER_POOLING_CLS;
}
int32_t ember_model_normalize(const ember_model *m) { return m ? m->st.normalize : 0; }
const ember_tokenizer *ember_model_tokenizer(const ember_model *m) { return m ? m->tokenizer : NULL; }

static const char *dtype_name(int32_t d) {
    switch (d) {
    case EMBER_DTYPE_BF16: return "bf16";
    case EMBER_DTYPE_INT8: return "int8";
    default: return "f32";
    }
}

ember_status ember_model_get_info(const ember_model *m, ember_model_info *info) {
    ember_error_clear();
    if (!m || !info)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_model_get_info: NULL argument");
    if (info->struct_size < sizeof(uint32_t) || info->struct_size > sizeof *info)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_model_info: struct_size %u is invalid",
                           (unsigned)info->struct_size);
    ember_model_info i;
    memset(&i, 0, sizeof i);
    i.struct_size = info->struct_size;
    i.architecture = m->arch->name;
    i.source = m->source;
    i.directory = m->directory;
    i.dim = m->dim;
    i.hidden_size = m->hp.hidden_size;
    i.n_layers = m->hp.n_layers;
    i.n_heads = m->hp.n_heads;
    i.intermediate_size = m->hp.intermediate_size;
    i.vocab_size = m->hp.vocab_size;
    i.max_position_embeddings = m->hp.max_position_embeddings;
    i.max_tokens = m->max_tokens;
    i.pooling = (ember_pooling)m->st.pooling;
    i.normalize = m->st.normalize;
    i.pooling_from_files = m->st.from_files;
    i.file_dtype = ember_dt_name(m->file_dtype);
    i.compute_dtype = dtype_name(m->compute_dtype);
    if (m->dtype_auto && m->file_dtype == EMBER_DT_BF16 && strcmp(m->drv.ops->name, "cpu-ref") != 0)
        i.compute_dtype = "f32 (on the bf16 weights, kept bf16 in memory)";
    i.driver = m->drv.ops->name;
    i.cpu_features = ember_cpu_features();
    i.kernels = m->drv.ops->kernels(m->drv.impl);
    i.n_parameters = m->n_params;
    i.has_tokenizer = m->tokenizer != NULL;
    i.n_shards = m->store ? m->store->n_files : 0;
    i.lowercase_input = m->st.do_lower_case;
    i.n_prompts = m->st.n_prompts;
    i.modules = m->modules;
    i.n_kv_heads = m->hp.n_kv_heads;
    i.head_dim = m->hp.head_dim;
    memcpy(info, &i, info->struct_size);
    return EMBER_OK;
}

const char *ember_model_prompt_name(const ember_model *m, int32_t i) {
    return m && i >= 0 && i < m->st.n_prompts ? m->st.prompt_names[i] : NULL;
}

const char *ember_model_prompt_text(const ember_model *m, int32_t i) {
    return m && i >= 0 && i < m->st.n_prompts ? m->st.prompt_texts[i] : NULL;
}

const char *ember_model_prompt(const ember_model *m, const char *name) {
    for (int32_t i = 0; m && name && i < m->st.n_prompts; i++)
        if (strcmp(m->st.prompt_names[i], name) == 0)
            return m->st.prompt_texts[i];
    return NULL;
}

const char *ember_model_default_prompt_name(const ember_model *m) {
    return m ? m->st.default_prompt_name : NULL;
}

/* ---- contexts and embedding ---- */

ember_status ember_ctx_init(const ember_model *model, const ember_ctx_params *params,
                            ember_ctx **out) {
    ember_error_clear();
    if (!out)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_ctx_init: out is NULL");
    *out = NULL;
    if (!model)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_ctx_init: model is NULL");
    ember_ctx_params p;
    COPY_PARAMS(p, params, ember_ctx_default_params());
    if (p.n_threads < 0 || p.n_threads > 1024 || p.max_batch < 0 || p.max_batch > 65536 ||
        p.max_batch_tokens < 0 || p.max_batch_tokens > (1 << 24))
        return ember_error(EMBER_E_INVALID_ARGUMENT,
                           "ember_ctx_params out of range: n_threads %d, max_batch %d, "
                           "max_batch_tokens %d",
                           p.n_threads, p.max_batch, p.max_batch_tokens);
    return ember_backend_ctx_init(model, &p, out);
}

void ember_ctx_free(ember_ctx *ctx) { ember_backend_ctx_free(ctx); }

ember_status ember_embed_tokens(ember_ctx *ctx, const int32_t *ids, const int64_t *offsets,
                                int64_t n_seqs, const ember_embed_options *opts, float *out,
                                int64_t out_len, ember_embed_stats *stats) {
    ember_error_clear();
    if (!ctx || !offsets || (n_seqs > 0 && (!ids || !out)))
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_embed_tokens: NULL argument");
    ember_embed_options o;
    COPY_PARAMS(o, opts, ember_embed_default_options());
    if (stats)
        memset(stats, 0, sizeof *stats);
    return ember_backend_embed(ctx, ids, offsets, n_seqs, 0, &o, out, out_len, stats);
}

ember_status ember_embed_tokens_all(ember_ctx *ctx, const int32_t *ids, const int64_t *offsets,
                                    int64_t n_seqs, float *out, int64_t out_len,
                                    ember_embed_stats *stats) {
    ember_error_clear();
    if (!ctx || !offsets || (n_seqs > 0 && (!ids || !out)))
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_embed_tokens_all: NULL argument");
    if (stats)
        memset(stats, 0, sizeof *stats);
    return ember_backend_embed_all(ctx, ids, offsets, n_seqs, out, out_len, stats);
}

ember_status ember_model_peak_gflops(const ember_model *m, double *out) {
    if (!m || !out)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_model_peak_gflops: NULL argument");
    *out = 0;
    const double g = m->drv.ops->peak_gflops ? m->drv.ops->peak_gflops(m->drv.impl) : 0;
    if (!(g > 0))
        return ember_error(EMBER_E_UNSUPPORTED,
                           "the %s driver knows no nominal peak (measure one with "
                           "ember_cpu_peak_gflops_dtype)", m->drv.ops->name);
    *out = g;
    return EMBER_OK;
}

int32_t ember_model_num_labels(const ember_model *m) {
    return m && m->hp.cls_head ? m->hp.num_labels : 0;
}

ember_rerank_options ember_rerank_default_options(void) {
    ember_rerank_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.raw_scores = 0;
    o.truncate = 1;
    return o;
}

ember_status ember_rerank(ember_ctx *ctx, const char *query, size_t query_len,
                          const char *const *texts, const size_t *lens, int64_t n,
                          const ember_rerank_options *opts, float *scores, int64_t scores_len,
                          ember_embed_stats *stats) {
    ember_error_clear();
    if (!ctx || (!query && query_len > 0) || (n > 0 && (!texts || !lens || !scores)))
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_rerank: NULL argument");
    if (n < 0)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_rerank: n = %lld is negative",
                           (long long)n);
    ember_rerank_options o;
    COPY_PARAMS(o, opts, ember_rerank_default_options());
    const ember_model *m = ctx->model;
    const int32_t nl = ember_model_num_labels(m);
    if (!nl)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "%s is not a cross-encoder (config.json architectures names no "
                           "BertForSequenceClassification or XLMRobertaForSequenceClassification)",
                           m->directory);
    if (!m->tokenizer)
        return ember_error(EMBER_E_UNSUPPORTED, "%s: the model has no tokenizer (tokenizer.json)",
                           m->directory);
    if (n > 0 && scores_len / n < nl)
        return ember_error(EMBER_E_INVALID_ARGUMENT,
                           "scores hold %lld floats; %lld texts x %d labels need more",
                           (long long)scores_len, (long long)n, nl);
    ember_embed_stats local;
    memset(&local, 0, sizeof local);
    if (n == 0) {
        if (stats)
            *stats = local;
        return EMBER_OK;
    }
    if (!ctx->text[0].enc)
        EMBER_TRY(ember_encoding_new(&ctx->text[0].enc));
    ember_pair_buf pb;
    memset(&pb, 0, sizeof pb);
    int64_t *offsets = ember_malloc(sizeof(int64_t) * (size_t)(n + 1), "pair offsets");
    if (!offsets)
        return EMBER_E_NOMEM;
    offsets[0] = 0;
    ember_status st = EMBER_OK;
    for (int64_t i = 0; i < n && st == EMBER_OK; i++) {
        if (!texts[i] && lens[i] > 0) {
            st = ember_error(EMBER_E_INVALID_ARGUMENT, "text %lld is NULL", (long long)i);
            break;
        }
        int64_t full = 0;
        st = ember_tok_encode_pair(m->tokenizer, query, query_len, texts[i], lens[i],
                                   o.truncate ? m->max_tokens : 0, ctx->text[0].enc, &pb, &full);
        if (st == EMBER_OK && !o.truncate && full > m->max_tokens)
            st = ember_error(EMBER_E_TOO_LONG,
                             "text %lld: the pair has %lld tokens; the model accepts at most %d "
                             "(enable truncation to cut it)",
                             (long long)i, (long long)full, m->max_tokens);
        if (st == EMBER_OK && (ember_encoding_flags(ctx->text[0].enc) & EMBER_ENCODING_INVALID_UTF8))
            local.n_invalid_utf8++;
        if (st == EMBER_OK && full > pb.n - offsets[i])
            local.n_truncated++;
        offsets[i + 1] = pb.n;
    }
    if (st == EMBER_OK)
        st = ember_backend_rerank(ctx, pb.ids, pb.types, offsets, n, scores, &local);
    if (st == EMBER_OK && !o.raw_scores && nl == 1)
        for (int64_t i = 0; i < n; i++)
            scores[i] = 1.0f / (1.0f + expf(-scores[i]));
    ember_pair_buf_free(&pb);
    free(offsets);
    if (stats)
        *stats = local;
    return st;
}

/* Grows *buf to hold `need` elements of `size` bytes. */
static ember_status grow(void **buf, int64_t *cap, int64_t need, size_t size, const char *what) {
    if (*cap >= need)
        return EMBER_OK;
    int64_t ncap = *cap ? *cap : 256;
    while (ncap < need)
        ncap *= 2;
    void *p = ember_realloc(*buf, (size_t)ncap * size, what);
    if (!p)
        return EMBER_E_NOMEM;
    *buf = p;
    *cap = ncap;
    return EMBER_OK;
}

/* Bounded tokenization. A text far longer than the model accepts is not
 * tokenized whole (the tokenizer's working memory is tens of bytes per input
 * byte): a prefix is cut at a word
 * boundary, at CUT_BYTES_PER_TOKEN bytes per kept token to start with, and
 * tokenized without truncation. If it yields at least CUT_MARGIN tokens more
 * than are kept, whatever the cut changed (the word it cut, a whitespace
 * run) lies beyond the kept tokens, and the truncated encoding of the piece
 * is the truncated encoding of the whole text; otherwise the piece doubles.
 * Memory is proportional to the text actually needed, whatever its size.
 * Left truncation (rare) still tokenizes the whole text: its offsets would
 * need shifting into the caller's text. */
#define CUT_MARGIN 16
#define CUT_BYTES_PER_TOKEN 16

static bool cut_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Length of a prefix of at most `bound` bytes ending where a word starts. */
static size_t cut_prefix(const char *t, size_t bound) {
    for (size_t i = bound; i > bound / 2; i--)
        if (cut_ws(t[i - 1]) && !cut_ws(t[i]))
            return i;
    size_t i = bound; /* one huge word: a UTF-8 character boundary */
    while (i > 0 && ((unsigned char)t[i] & 0xC0) == 0x80)
        i--;
    return i;
}

static ember_status tokenize_bounded(const ember_model *m, const char *text, size_t len,
                                     const ember_tokenize_options *to, ember_encoding *enc) {
    if (to->max_length > 0 && to->truncation_side != EMBER_TRUNCATE_LEFT) {
        size_t need = (size_t)to->max_length + CUT_MARGIN;
        ember_tokenize_options whole = *to;
        whole.max_length = 0;
        for (size_t bound = need * CUT_BYTES_PER_TOKEN; bound < len && bound < SIZE_MAX / 4;
             bound *= 2) {
            size_t n = cut_prefix(text, bound);
            EMBER_TRY(ember_tokenize(m->tokenizer, text, n, &whole, enc));
            if ((size_t)ember_encoding_length(enc) >= need)
                return ember_tokenize(m->tokenizer, text, n, to, enc);
        }
    }
    return ember_tokenize(m->tokenizer, text, len, to, enc);
}

/* The text path shared by ember_model_tokenize, ember_model_tokenize_texts
 * and ember_embed_texts. `o` is a full-size copy of the caller's options;
 * `prompt_buf` a growable buffer for prompt + text. */
static ember_status encode_text(const ember_model *m, const char *text, size_t len,
                                const ember_embed_options *o, char **prompt_buf,
                                size_t *prompt_cap, ember_encoding *enc) {
    if (!text && len > 0)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "text is NULL with length %zu", len);
    if (!m->tokenizer && ember_tok_sentencepiece_only(m->directory))
        return ember_error(EMBER_E_UNSUPPORTED,
                           "%s: the model has a SentencePiece tokenizer (%s) but no "
                           "tokenizer.json, which Ember needs. " EMBER_TOK_SPM_HOWTO
                           " with DIR = \"%s\"; or embed token ids instead",
                           m->directory, ember_tok_sentencepiece_only(m->directory), m->directory);
    if (!m->tokenizer)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "%s: the model has no tokenizer (tokenizer.json or vocab.txt); embed "
                           "token ids instead",
                           m->directory);
    size_t plen = o->prompt ? strlen(o->prompt) : 0;
    if (plen && !m->st.include_prompt)
        return ember_error(EMBER_E_UNSUPPORTED,
                           "the pooling config excludes prompt tokens (include_prompt: false), "
                           "which Ember does not support with a prompt");
    if (plen) {
        if (len > SIZE_MAX / 2 - plen)
            return ember_error(EMBER_E_TOO_LONG, "text of %zu bytes is too large", len);
        int64_t cap = (int64_t)*prompt_cap;
        EMBER_TRY(grow((void **)prompt_buf, &cap, (int64_t)(plen + len + 1), 1, "prompt"));
        *prompt_cap = (size_t)cap;
        memcpy(*prompt_buf, o->prompt, plen);
        if (len)
            memcpy(*prompt_buf + plen, text, len);
        text = *prompt_buf;
        len += plen;
    }
    ember_tokenize_options to = ember_tokenize_default_options();
    to.add_special_tokens = 1;
    to.max_length = o->truncate ? m->max_tokens : 0;
    to.truncation_side = o->truncation_side;
    EMBER_TRY(tokenize_bounded(m, text ? text : "", len, &to, enc));
    int64_t k = ember_encoding_length(enc);
    if (!o->truncate && k > m->max_tokens)
        return ember_error(EMBER_E_TOO_LONG,
                           "%lld tokens; the model accepts at most %d (enable truncation to cut it)",
                           (long long)k, m->max_tokens);
    return EMBER_OK;
}

ember_status ember_model_tokenize(const ember_model *m, const char *text, size_t len,
                                  const ember_embed_options *opts, ember_encoding *enc) {
    ember_error_clear();
    if (!m || !enc)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_model_tokenize: NULL argument");
    ember_embed_options o;
    COPY_PARAMS(o, opts, ember_embed_default_options());
    char *buf = NULL;
    size_t cap = 0;
    ember_status st = encode_text(m, text, len, &o, &buf, &cap, enc);
    free(buf);
    return st;
}

/* Tokenizes n texts into block tb (its CSR ids and offsets, grown as
 * needed), counting into *stats. The error message is prefixed with the
 * index of the failing text, base + its index here. */
static ember_status encode_texts(const ember_model *m, const char *const *texts, const size_t *lens,
                                 int64_t n, int64_t base, const ember_embed_options *o,
                                 ember_text_block *tb, ember_embed_stats *stats) {
    EMBER_TRY(grow((void **)&tb->offsets, &tb->offsets_cap, n + 1, sizeof(int64_t), "token offsets"));
    int64_t total = 0;
    tb->offsets[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        ember_status st = encode_text(m, texts[i], lens[i], o, &tb->prompt_buf,
                                      &tb->prompt_buf_cap, tb->enc);
        if (st != EMBER_OK) {
            if (st == EMBER_E_NOMEM)
                return st;
            char msg[512];
            snprintf(msg, sizeof msg, "%s", ember_last_error());
            return ember_error(st, "text %lld: %s", (long long)(base + i), msg);
        }
        int64_t k = ember_encoding_length(tb->enc);
        uint32_t flags = ember_encoding_flags(tb->enc);
        if (flags & EMBER_ENCODING_TRUNCATED)
            stats->n_truncated++;
        if (flags & EMBER_ENCODING_INVALID_UTF8)
            stats->n_invalid_utf8++;
        EMBER_TRY(grow((void **)&tb->ids, &tb->ids_cap, total + k, sizeof(int32_t), "token ids"));
        memcpy(tb->ids + total, ember_encoding_ids(tb->enc), sizeof(int32_t) * (size_t)k);
        total += k;
        tb->offsets[i + 1] = total;
    }
    stats->n_tokens = total;
    return EMBER_OK;
}

ember_status ember_model_tokenize_texts(const ember_model *m, const char *const *texts,
                                        const size_t *lens, int64_t n,
                                        const ember_embed_options *opts, int32_t **out_ids,
                                        int64_t **out_offsets, ember_embed_stats *stats) {
    ember_error_clear();
    if (out_ids)
        *out_ids = NULL;
    if (out_offsets)
        *out_offsets = NULL;
    if (!m || !out_ids || !out_offsets || (n > 0 && (!texts || !lens)))
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_model_tokenize_texts: NULL argument");
    if (n < 0)
        return ember_error(EMBER_E_INVALID_ARGUMENT,
                           "ember_model_tokenize_texts: n = %lld is negative", (long long)n);
    ember_embed_options o;
    COPY_PARAMS(o, opts, ember_embed_default_options());
    ember_embed_stats local;
    memset(&local, 0, sizeof local);
    ember_text_block tb;
    memset(&tb, 0, sizeof tb);
    ember_status st = ember_encoding_new(&tb.enc);
    if (st == EMBER_OK)
        st = encode_texts(m, texts, lens, n, 0, &o, &tb, &local);
    /* an all-empty batch still hands out a pointer the caller can free */
    if (st == EMBER_OK && !tb.ids && !(tb.ids = ember_calloc(1, sizeof *tb.ids, "token ids")))
        st = EMBER_E_NOMEM;
    ember_encoding_free(tb.enc);
    free(tb.prompt_buf);
    if (st != EMBER_OK) {
        free(tb.ids);
        free(tb.offsets);
        return st;
    }
    *out_ids = tb.ids;
    *out_offsets = tb.offsets;
    if (stats)
        *stats = local;
    return EMBER_OK;
}

/* ---- ember_embed_texts: the texts in blocks, the next one tokenized ahead ---- */

/* On a driver that runs passes asynchronously (a GPU) the host is idle
 * while a pass runs, and one core tokenizes 6-10M tokens/s, the order of a
 * GPU's rate: so texts go in blocks, block k+1 tokenized on a helper thread
 * while block k runs. On the cpu driver the compute threads own the cores
 * and tokenizing is a fraction of a percent of the time: one block, as
 * before. EMBER_TOKENIZE_AHEAD=1 forces blocks, =0 turns them off. */
static bool tokenize_ahead(const ember_ctx *ctx) {
    const char *e = getenv("EMBER_TOKENIZE_AHEAD");
    if (e && (e[0] == '0' || e[0] == '1') && !e[1])
        return e[0] == '1';
    return ctx->model->drv.ops->download_async != NULL;
}

/* Bytes of text a block's first pass is sized for, per token of a pass. */
#define BLOCK_BYTES_PER_TOKEN 4
/* Blocks double from one pass's worth (the first is not overlapped) up to
 * this many passes' worth (sorting by length within larger blocks). */
#define BLOCK_MAX_PASSES 8

/* Tokenizing texts [first, first + n) into tb, on whichever thread runs it;
 * the outcome (status, message, counts) is carried back in the job. */
typedef struct text_job {
    const ember_model *m;
    const char *const *texts;
    const size_t *lens;
    int64_t first, n;
    const ember_embed_options *o;
    ember_text_block *tb;
    ember_embed_stats stats;
    ember_status st;
    char msg[1024];
} text_job;

static void text_job_run(text_job *j) {
    memset(&j->stats, 0, sizeof j->stats);
    j->st = encode_texts(j->m, j->texts + j->first, j->lens + j->first, j->n, j->first, j->o, j->tb,
                         &j->stats);
    if (j->st != EMBER_OK)
        snprintf(j->msg, sizeof j->msg, "%s", ember_last_error());
}

static void *text_job_thread(void *arg) {
    text_job_run(arg);
    return NULL;
}

/* End of the block starting at `first`: at most max_texts texts and
 * max_bytes bytes of text, at least one text. */
static int64_t block_end(const size_t *lens, int64_t first, int64_t n, int64_t max_texts,
                         size_t max_bytes) {
    size_t bytes = 0;
    int64_t k = first;
    while (k < n && k - first < max_texts && (k == first || lens[k] <= max_bytes - bytes)) {
        bytes = lens[k] < max_bytes - bytes ? bytes + lens[k] : max_bytes;
        k++;
    }
    return k;
}

ember_status ember_embed_texts(ember_ctx *ctx, const char *const *texts, const size_t *lens,
                               int64_t n, const ember_embed_options *opts, float *out,
                               int64_t out_len, ember_embed_stats *stats) {
    ember_error_clear();
    if (!ctx || (n > 0 && (!texts || !lens || !out)))
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_embed_texts: NULL argument");
    if (n < 0)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_embed_texts: n = %lld is negative",
                           (long long)n);
    ember_embed_options o;
    COPY_PARAMS(o, opts, ember_embed_default_options());
    int32_t dims;
    EMBER_TRY(ember_backend_out_dims(ctx, &o, n, out_len, &dims));
    ember_embed_stats local;
    memset(&local, 0, sizeof local);
    if (n == 0) { /* texts, lens and out may be NULL */
        if (stats)
            *stats = local;
        return EMBER_OK;
    }
    const bool ahead = tokenize_ahead(ctx);
    /* the first block is one pass's worth (it is not overlapped) */
    int64_t max_texts = ctx->max_batch;
    size_t max_bytes = (size_t)ctx->max_batch_tokens * BLOCK_BYTES_PER_TOKEN;
    for (int i = 0; i < (ahead ? 2 : 1); i++)
        if (!ctx->text[i].enc)
            EMBER_TRY(ember_encoding_new(&ctx->text[i].enc));

    text_job job[2] = {{.m = ctx->model, .texts = texts, .lens = lens, .o = &o, .tb = &ctx->text[0]}};
    job[1] = job[0];
    job[1].tb = &ctx->text[1];
    job[0].n = ahead ? block_end(lens, 0, n, max_texts, max_bytes) : n;
    text_job_run(&job[0]);
    ember_status st = job[0].st;
    for (int k = 0; st == EMBER_OK; k ^= 1) {
        text_job *cur = &job[k], *next = &job[k ^ 1];
        const int64_t end = cur->first + cur->n;
        const bool has_next = end < n;
        pthread_t helper;
        bool threaded = false;
        if (has_next) {
            if (max_texts < (int64_t)ctx->max_batch * BLOCK_MAX_PASSES) {
                max_texts *= 2;
                max_bytes *= 2;
            }
            next->first = end;
            next->n = block_end(lens, end, n, max_texts, max_bytes) - end;
            threaded = pthread_create(&helper, NULL, text_job_thread, next) == 0;
        }
        local.n_truncated += cur->stats.n_truncated;
        local.n_invalid_utf8 += cur->stats.n_invalid_utf8;
        /* the backend counts the tokens it runs and the passes */
        st = ember_backend_embed(ctx, cur->tb->ids, cur->tb->offsets, cur->n, cur->first, &o,
                                 out + cur->first * dims, out_len - cur->first * dims, &local);
        if (threaded)
            pthread_join(helper, NULL);
        else if (has_next && st == EMBER_OK)
            text_job_run(next);
        if (!has_next || st != EMBER_OK)
            break;
        if (next->st != EMBER_OK)
            st = ember_error(next->st, "%s", next->msg);
    }
    if (stats)
        *stats = local;
    return st;
}

/* ---- helpers for callers that post-process or profile ---- */

ember_status ember_l2_normalize(float *rows, int64_t n_rows, int32_t dim) {
    ember_error_clear();
    if (n_rows < 0 || dim < 0 || (n_rows > 0 && dim > 0 && !rows))
        return ember_error(EMBER_E_INVALID_ARGUMENT,
                           "ember_l2_normalize: rows %p, n_rows %lld, dim %d", (void *)rows,
                           (long long)n_rows, dim);
    if (n_rows > 0 && dim > 0)
        ember_l2_normalize_rows(rows, n_rows, dim);
    return EMBER_OK;
}

ember_status ember_ctx_enable_profiling(ember_ctx *ctx, int32_t on) {
    ember_error_clear();
    if (!ctx)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_ctx_enable_profiling: ctx is NULL");
    if (on)
        ember_ctx_set_profiling(ctx, 1); /* (re)starts the counters from zero */
    else
        ctx->profiling = 0; /* not the backend's reset: the counters stay readable */
    return EMBER_OK;
}

int32_t ember_ctx_profile_count(const ember_ctx *ctx) { return ctx ? (int32_t)EMBER_OP_TIMED_COUNT : 0; }

ember_status ember_ctx_profile_get(const ember_ctx *ctx, int32_t i, ember_op_stats *out) {
    ember_error_clear();
    if (!ctx || !out)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_ctx_profile_get: NULL argument");
    if (out->struct_size < sizeof(uint32_t) || out->struct_size > sizeof *out)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_op_stats: struct_size %u is invalid",
                           (unsigned)out->struct_size);
    if (i < 0 || i >= (int32_t)EMBER_OP_TIMED_COUNT)
        return ember_error(EMBER_E_INVALID_ARGUMENT,
                           "ember_ctx_profile_get: op %d is outside [0, %d)", i,
                           (int)EMBER_OP_TIMED_COUNT);
    const ember_op_profile *p = ember_ctx_profile(ctx);
    ember_op_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = out->struct_size;
    s.name = ember_op_name((ember_op_kind)i);
    s.seconds = p->seconds[i];
    s.flops = p->flops[i];
    s.calls = p->calls[i];
    memcpy(out, &s, out->struct_size);
    return EMBER_OK;
}
