/*
 * ember.h — public C API of Ember, a library that turns text into sentence
 * embeddings with BERT-family encoder models (BERT, ModernBERT) on the user's
 * own hardware.
 *
 * Shape of the API (in the spirit of SQLite and llama.cpp):
 *
 *   ember_model      immutable after load: config, weights (memory-mapped
 *                    safetensors), tokenizer. Share it freely between threads.
 *   ember_ctx        per-thread execution state: scratch arena, thread pool,
 *                    driver stream. One thread at a time per context.
 *   ember_tokenizer  immutable, thread-safe; owned by a model or loaded alone.
 *   ember_encoding   a reusable output buffer for one tokenization.
 *
 * Conventions
 *   - Every fallible call returns an ember_status: EMBER_OK (0) or a negative
 *     error. The precise reason (file, tensor, offset, expected vs found) is
 *     kept per thread and read with ember_last_error() until the next Ember
 *     call on the same thread.
 *   - Out-parameters come last. What the library allocates, the matching
 *     _free releases; every _free accepts NULL.
 *   - Parameter structs are filled by ember_*_default_params() and carry their
 *     own size in the first field so they can grow without breaking callers.
 *   - The library never exits, aborts or prints on bad input. Diagnostics go
 *     to the logging callback (silent by default).
 */
#ifndef EMBER_H
#define EMBER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the public functions. The library is built with hidden visibility
 * (-fvisibility=hidden), so only what carries EMBER_API is exported from
 * libember.so; everything else stays internal. */
#ifndef EMBER_API
#if defined(__GNUC__) || defined(__clang__)
#define EMBER_API __attribute__((visibility("default")))
#else
#define EMBER_API
#endif
#endif

#define EMBER_VERSION_MAJOR 0
#define EMBER_VERSION_MINOR 1
#define EMBER_VERSION_PATCH 0
#define EMBER_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------ */
/* Status codes and errors                                                    */
/* ------------------------------------------------------------------------ */

typedef enum ember_status {
    EMBER_OK = 0,
    EMBER_E_INVALID_ARGUMENT = -1, /* the caller passed something invalid      */
    EMBER_E_IO = -2,               /* a file could not be opened, read, mapped  */
    EMBER_E_FORMAT = -3,           /* a file or input is malformed              */
    EMBER_E_UNSUPPORTED = -4,      /* well-formed but not supported (model_type,
                                      dtype, pooling mode, tokenizer component) */
    EMBER_E_MODEL = -5,            /* weights disagree with the config (missing
                                      tensor, wrong shape or dtype)             */
    EMBER_E_NOMEM = -6,            /* out of memory                             */
    EMBER_E_TOO_LONG = -7,         /* input longer than the model accepts       */
    EMBER_E_NOT_FOUND = -8,        /* no such model, file or revision           */
    EMBER_E_NETWORK = -9,          /* network failure (hub download)            */
    EMBER_E_AUTH = -10,            /* hub refused: gated/private, token needed  */
    EMBER_E_INTERNAL = -11         /* a bug in Ember or a driver failure        */
} ember_status;

/* A fixed English description of a status ("malformed input", ...). Never
 * NULL; static storage. */
EMBER_API const char *ember_status_str(ember_status status);

/* The precise message of the last failed Ember call on the calling thread
 * (e.g. "model.safetensors: tensor 'encoder.layer.0.attention.self.query.weight':
 * expected F32[384,384], found F32[384,383]"). Returns "" when the last call
 * succeeded or none failed yet. The string is owned by the library and valid
 * until the next Ember call on the same thread. */
EMBER_API const char *ember_last_error(void);

/* Version string, e.g. "0.1.0". Static storage. */
EMBER_API const char *ember_version(void);

/* ------------------------------------------------------------------------ */
/* Logging                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum ember_log_level {
    EMBER_LOG_ERROR = 0,
    EMBER_LOG_WARN = 1,
    EMBER_LOG_INFO = 2,
    EMBER_LOG_DEBUG = 3
} ember_log_level;

/* A logging callback receives one complete line without the trailing newline.
 * It may be called from any thread that calls into Ember (and from worker
 * threads of the library); it must be thread-safe. `msg` is valid only during
 * the call. */
typedef void (*ember_log_fn)(ember_log_level level, const char *msg, void *user);

/* Installs the process-wide logging callback (NULL = silent, the default) and
 * the most verbose level passed to it. Not synchronised with concurrent
 * logging: set it before loading models. */
EMBER_API void ember_log_set(ember_log_fn fn, ember_log_level max_level, void *user);

/* ------------------------------------------------------------------------ */
/* Enumerations                                                               */
/* ------------------------------------------------------------------------ */

typedef enum ember_pooling {
    EMBER_POOLING_CLS = 0,           /* hidden state of the first token          */
    EMBER_POOLING_MEAN = 1,          /* mean over all real tokens                */
    EMBER_POOLING_MAX = 2,           /* element-wise max over real tokens        */
    EMBER_POOLING_MEAN_SQRT_LEN = 3, /* sum / sqrt(number of tokens)             */
    EMBER_POOLING_WEIGHTED_MEAN = 4, /* position-weighted mean (weights 1..n)    */
    EMBER_POOLING_LAST_TOKEN = 5     /* hidden state of the last real token      */
} ember_pooling;

/* Short lowercase name of a pooling mode ("cls", "mean", ...). Static. */
EMBER_API const char *ember_pooling_name(ember_pooling pooling);

/* Numeric precision used for the weights of the matrix multiplies. */
typedef enum ember_dtype {
    EMBER_DTYPE_AUTO = 0, /* fp32 compute (the reference precision)           */
    EMBER_DTYPE_F32 = 1,
    EMBER_DTYPE_BF16 = 2, /* bf16 weights, fp32 accumulation (opt-in)         */
    EMBER_DTYPE_INT8 = 3  /* int8 weights with block-wise scales (opt-in)     */
} ember_dtype;

typedef enum ember_truncation_side {
    EMBER_TRUNCATE_RIGHT = 0, /* keep the beginning of the text               */
    EMBER_TRUNCATE_LEFT = 1   /* keep the end of the text                     */
} ember_truncation_side;

/* ------------------------------------------------------------------------ */
/* Models                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct ember_model ember_model;
typedef struct ember_ctx ember_ctx;
typedef struct ember_tokenizer ember_tokenizer;
typedef struct ember_encoding ember_encoding;

/* Progress of a hub download: `file` being fetched, bytes done and total
 * (total < 0 when unknown). Called from the loading thread. */
typedef void (*ember_progress_fn)(const char *file, int64_t done, int64_t total, void *user);

typedef struct ember_model_params {
    uint32_t struct_size;       /* sizeof(ember_model_params)                   */
    const char *driver;         /* "cpu", or NULL/"auto" for the best available */
    ember_dtype dtype;          /* precision of the matrix weights              */
    int32_t pack_weights;       /* 1 (default): copy the matrices into the
                                   kernels' packed layout at load (fastest,
                                   above all for small batches); 0: use F32
                                   weights in place from the memory-mapped
                                   file (zero-copy: instant load, and processes
                                   mapping the same file share its pages)       */
    int32_t max_seq_length;     /* 0: from sentence_bert_config.json / config   */
    int32_t load_tokenizer;     /* 1 (default): load tokenizer.json if present  */
    int32_t allow_download;     /* 1 (default): fetch hub ids that are not in
                                   the local cache (HF_HUB_OFFLINE=1 forbids)    */
    const char *revision;       /* hub revision when the id has no "@rev"; NULL = "main" */
    ember_progress_fn progress; /* download progress, or NULL                   */
    void *progress_user;
} ember_model_params;

/* Defaults: driver auto, dtype auto (fp32), packed weights, tokenizer
 * loaded, downloads allowed. */
EMBER_API ember_model_params ember_model_default_params(void);

/* Loads a model from `path`: a local Hugging Face model directory (config.json,
 * model.safetensors or a sharded index, optional tokenizer and
 * sentence-transformers files), or a hub id "org/name[@revision]" resolved
 * through the Hugging Face cache (downloading what is missing unless offline).
 * `params` may be NULL for defaults. On success *out receives a model that the
 * caller frees with ember_model_free(). The safetensors files stay mapped
 * until then.
 * Returns EMBER_OK, or EMBER_E_INVALID_ARGUMENT, EMBER_E_IO, EMBER_E_FORMAT,
 * EMBER_E_UNSUPPORTED, EMBER_E_MODEL, EMBER_E_NOMEM, EMBER_E_NOT_FOUND,
 * EMBER_E_NETWORK, EMBER_E_AUTH (see ember_resolve_model); *out is NULL on
 * error. */
EMBER_API ember_status ember_model_load(const char *path, const ember_model_params *params,
                              ember_model **out);

/* Frees a model. Every context created from it must be freed first. NULL is
 * a no-op. */
EMBER_API void ember_model_free(ember_model *model);

/* Dimension of the embeddings the model produces. */
EMBER_API int32_t ember_model_dim(const ember_model *model);

/* Longest input (in tokens, special tokens included) the model embeds:
 * sentence-transformers' max_seq_length when given, else the position limit. */
EMBER_API int32_t ember_model_max_tokens(const ember_model *model);

/* Pooling mode and whether the output is L2-normalized by default. */
EMBER_API ember_pooling ember_model_pooling(const ember_model *model);
EMBER_API int32_t ember_model_normalize(const ember_model *model);

/* A description of a loaded model. Strings are owned by the model and live
 * as long as it. */
typedef struct ember_model_info {
    uint32_t struct_size;          /* sizeof(ember_model_info), set by caller  */
    const char *architecture;      /* "bert" or "modernbert"                   */
    const char *source;            /* path or hub id as given to load          */
    const char *directory;         /* local directory the files were read from */
    int32_t dim;                   /* embedding dimension                      */
    int32_t hidden_size;
    int32_t n_layers;
    int32_t n_heads;
    int32_t intermediate_size;
    int32_t vocab_size;
    int32_t max_position_embeddings;
    int32_t max_tokens;            /* see ember_model_max_tokens               */
    ember_pooling pooling;
    int32_t normalize;             /* 1 if embeddings are L2-normalized        */
    int32_t pooling_from_files;    /* 0: no sentence-transformers files, the
                                      architecture's documented default used   */
    const char *file_dtype;        /* dtype of the weights in the file(s)      */
    const char *compute_dtype;     /* dtype the matrix multiplies run in       */
    const char *driver;            /* "cpu", ...                               */
    const char *cpu_features;      /* e.g. "avx2 fma f16c"                     */
    const char *kernels;           /* the kernel table and matmul in use, e.g.
                                      "avx2, matmul: ember GEMM (weights packed
                                      at load)": Ember's own GEMM, no BLAS     */
    int64_t n_parameters;          /* parameters the forward pass uses         */
    int32_t has_tokenizer;         /* 1 if a tokenizer was loaded              */
    int32_t n_shards;              /* safetensors files mapped                 */
    int32_t lowercase_input;       /* sentence_bert_config do_lower_case       */
    int32_t n_prompts;             /* prompts in config_sentence_transformers  */
    const char *modules;           /* the sentence-transformers chain as run,
                                      e.g. "Transformer(bert) -> Pooling(cls)
                                      -> Dense(768->768, tanh) -> Normalize"
                                      (owned by the model)                     */
    int32_t n_kv_heads;            /* key/value heads (< n_heads: grouped-query) */
    int32_t head_dim;              /* per head; not always hidden / heads (Qwen3, Gemma 3) */
} ember_model_info;

/* Fills *info (whose struct_size the caller sets). Returns EMBER_OK or
 * EMBER_E_INVALID_ARGUMENT. */
EMBER_API ember_status ember_model_get_info(const ember_model *model, ember_model_info *info);

/* The prompts of config_sentence_transformers.json: name and text of prompt
 * `i` in [0, n_prompts). Returns NULL when out of range. Owned by the model. */
EMBER_API const char *ember_model_prompt_name(const ember_model *model, int32_t i);
EMBER_API const char *ember_model_prompt_text(const ember_model *model, int32_t i);
/* Text of the prompt called `name`, or NULL. Owned by the model. */
EMBER_API const char *ember_model_prompt(const ember_model *model, const char *name);
/* The default_prompt_name of config_sentence_transformers.json, or NULL. */
EMBER_API const char *ember_model_default_prompt_name(const ember_model *model);

/* ------------------------------------------------------------------------ */
/* Execution contexts                                                         */
/* ------------------------------------------------------------------------ */

typedef struct ember_ctx_params {
    uint32_t struct_size;     /* sizeof(ember_ctx_params)                       */
    int32_t n_threads;        /* worker threads; 0 = all online CPUs            */
    int32_t max_batch;        /* sequences per forward pass (default 32)        */
    int32_t max_batch_tokens; /* real tokens per forward pass (default 2048; a
                                 single longer sequence still runs alone)       */
} ember_ctx_params;

EMBER_API ember_ctx_params ember_ctx_default_params(void);

/* The context parameters that suit the device `model` runs on: those of
 * ember_ctx_default_params() on a CPU (32 sequences, 2,048 tokens per pass:
 * passes that stay in cache); on a GPU 512 sequences and 65,536 tokens per
 * pass (a GPU is only busy with tens of thousands of tokens at once; a
 * context whose arena does not fit in device memory halves the tokens per
 * pass, down to the model's max_tokens). NULL model: the defaults. */
EMBER_API ember_ctx_params ember_model_ctx_params(const ember_model *model);

/* Creates an execution context for `model` (which must outlive it). Reserves
 * the worst-case scratch memory once, so embedding calls do not allocate in
 * the hot path. A context is used by one thread at a time; create one per
 * thread to embed concurrently with the same model.
 * Returns EMBER_OK, EMBER_E_INVALID_ARGUMENT or EMBER_E_NOMEM. */
EMBER_API ember_status ember_ctx_init(const ember_model *model, const ember_ctx_params *params,
                            ember_ctx **out);

/* Frees a context and joins its threads. NULL is a no-op. */
EMBER_API void ember_ctx_free(ember_ctx *ctx);

/* Per-op profiling (what `ember bench` reports). While on, every driver op
 * the context runs is timed and its FLOPs counted; results are identical
 * with and without it, only slower by the timing calls. The ops are listed
 * by index, not by a public enum, because the set of driver ops changes
 * between versions: read ember_ctx_profile_count() entries and use their
 * names. */
typedef struct ember_op_stats {
    uint32_t struct_size; /* sizeof(ember_op_stats), set by the caller       */
    const char *name;     /* op name, e.g. "linear", "attention"; static     */
    double seconds;       /* wall time spent in the op since profiling began */
    double flops;         /* floating-point operations the op performed      */
    int64_t calls;        /* times the op ran                                */
} ember_op_stats;

/* Turns profiling on (on != 0) or off. Turning it on (again) resets the
 * counters to zero; turning it off keeps them readable. Not while an
 * embedding call runs on `ctx`.
 * Returns EMBER_OK or EMBER_E_INVALID_ARGUMENT (ctx NULL). */
EMBER_API ember_status ember_ctx_enable_profiling(ember_ctx *ctx, int32_t on);

/* Number of op entries ember_ctx_profile_get() reports (0 when ctx is
 * NULL). Constant for a given library build. */
EMBER_API int32_t ember_ctx_profile_count(const ember_ctx *ctx);

/* Fills *out (whose struct_size the caller sets) with the counters of op
 * `i` in [0, ember_ctx_profile_count()). Entries of ops that never ran have
 * calls == 0. Returns EMBER_OK, or EMBER_E_INVALID_ARGUMENT (NULL pointer,
 * bad struct_size, `i` out of range). */
EMBER_API ember_status ember_ctx_profile_get(const ember_ctx *ctx, int32_t i, ember_op_stats *out);

/* Options of one embedding call. */
typedef struct ember_embed_options {
    uint32_t struct_size;         /* sizeof(ember_embed_options)                */
    int32_t normalize;            /* -1: as the model says; 0: raw pooled; 1: L2 */
    int32_t dimensions;           /* 0: full; else Matryoshka: keep the first
                                     `dimensions` values, then (re)normalize if
                                     normalizing                                 */
    int32_t truncate;             /* texts: 1 (default) cut to max tokens;
                                     0: EMBER_E_TOO_LONG instead. Token ids are
                                     never cut: longer than max is an error.    */
    ember_truncation_side truncation_side;
    const char *prompt;           /* texts: prepended to every text, or NULL    */
} ember_embed_options;

EMBER_API ember_embed_options ember_embed_default_options(void);

/* What an embedding call did. */
typedef struct ember_embed_stats {
    int64_t n_tokens;          /* real tokens run through the model             */
    int64_t n_truncated;       /* texts cut to the length limit                 */
    int64_t n_invalid_utf8;    /* texts whose invalid UTF-8 was replaced        */
    int64_t n_forward_passes;  /* forward passes (batches) run                  */
} ember_embed_stats;

/* Embeds `n_seqs` token-id sequences given in CSR form: sequence i is
 * ids[offsets[i] .. offsets[i+1]), used exactly as given (no special tokens
 * added). Writes n_seqs rows of `dim` floats to `out` in input order, where
 * dim is opts->dimensions or ember_model_dim(). `out_len` is the capacity of
 * `out` in floats. `opts` and `stats` may be NULL.
 * Returns EMBER_OK; EMBER_E_INVALID_ARGUMENT (NULL pointers, decreasing
 * offsets, an id outside the vocabulary, an empty sequence, `out` too small);
 * EMBER_E_TOO_LONG (a sequence longer than ember_model_max_tokens);
 * EMBER_E_INTERNAL (driver failure). On error `out` content is unspecified. */
EMBER_API ember_status ember_embed_tokens(ember_ctx *ctx, const int32_t *ids, const int64_t *offsets,
                                int64_t n_seqs, const ember_embed_options *opts, float *out,
                                int64_t out_len, ember_embed_stats *stats);

/* Embeds `n` texts: texts[i] holds lens[i] bytes of UTF-8 (NUL allowed;
 * invalid sequences are replaced by U+FFFD and counted in stats). Each text is
 * lowercased when the model's sentence_bert_config says do_lower_case,
 * prefixed by opts->prompt, tokenized with special tokens and truncated to
 * ember_model_max_tokens (unless opts->truncate is 0). Output as for
 * ember_embed_tokens. On a GPU driver the texts are tokenized in blocks, the
 * next block on a helper thread while the current one runs
 * (EMBER_TOKENIZE_AHEAD=0|1 overrides: a block is sorted by length on its
 * own); an error names the failing text by its index in this call.
 * Returns the codes of ember_embed_tokens (EMBER_E_TOO_LONG for a text over
 * the limit with truncation off), and EMBER_E_UNSUPPORTED when the model has
 * no tokenizer. */
EMBER_API ember_status ember_embed_texts(ember_ctx *ctx, const char *const *texts, const size_t *lens,
                               int64_t n, const ember_embed_options *opts, float *out,
                               int64_t out_len, ember_embed_stats *stats);

/* L2-normalizes `n_rows` rows of `dim` floats in place (row-major), as the
 * embedding calls do when normalizing: each row is divided by its Euclidean
 * norm; an all-zero row stays zero. For callers that cut (Matryoshka) or
 * combine vectors themselves, e.g. from raw pooled output (normalize = 0).
 * Returns EMBER_OK, or EMBER_E_INVALID_ARGUMENT (rows NULL with n_rows > 0,
 * negative sizes). */
EMBER_API ember_status ember_l2_normalize(float *rows, int64_t n_rows, int32_t dim);

/* Per-token output (TEI's /embed_all): the last hidden state of every token
 * of `n_seqs` token-id sequences in CSR form (as ember_embed_tokens), before
 * pooling, normalization and any Dense module. Writes, for sequence i, rows
 * offsets[i] - offsets[0] .. offsets[i+1] - offsets[0] of
 * ember_model_info.hidden_size floats each into `out` (owned by the caller,
 * `out_len` floats of capacity: at least (offsets[n_seqs] - offsets[0]) x
 * hidden_size). `stats` may be NULL. Allocates a staging buffer per call.
 * Returns the codes of ember_embed_tokens, and EMBER_E_UNSUPPORTED when the
 * driver's activations are not fp32. */
EMBER_API ember_status ember_embed_tokens_all(ember_ctx *ctx, const int32_t *ids,
                                              const int64_t *offsets, int64_t n_seqs, float *out,
                                              int64_t out_len, ember_embed_stats *stats);

/* ------------------------------------------------------------------------ */
/* Rerankers (cross-encoders)                                                 */
/* ------------------------------------------------------------------------ */

/* Outputs of the model's sequence-classification head: > 0 for a
 * cross-encoder (config.json architectures BertForSequenceClassification,
 * XLMRobertaForSequenceClassification, RobertaForSequenceClassification,
 * CamembertForSequenceClassification, and the decoders' Qwen3-, Qwen2-,
 * Mistral- and LlamaForSequenceClassification), 0 for an embedding model or
 * NULL. */
EMBER_API int32_t ember_model_num_labels(const ember_model *model);

typedef struct ember_rerank_options {
    uint32_t struct_size; /* sizeof(ember_rerank_options)                       */
    int32_t raw_scores;   /* 0 (default): sigmoid of the logit when the model has
                             one label (sentence-transformers CrossEncoder's
                             default activation), logits as they are with more
                             labels; 1: raw logits always                     */
    int32_t truncate;     /* 1 (default): cut each pair longest-first to
                             ember_model_max_tokens; 0: EMBER_E_TOO_LONG       */
} ember_rerank_options;

EMBER_API ember_rerank_options ember_rerank_default_options(void);

/* Scores `n` texts against `query` with a cross-encoder. Each pair is
 * tokenized as Hugging Face tokenizers encodes tokenizer(query, text,
 * truncation="longest_first", max_length=ember_model_max_tokens()): the pair
 * template of tokenizer.json ([CLS] query [SEP] text [SEP] with token types
 * 0/1 for BERT, <s> query </s></s> text </s> for XLM-R; a decoder's head
 * reads the last token that is not pad_token_id, as transformers does, and
 * ignores token types). Texts are UTF-8
 * (invalid sequences replaced by U+FFFD); query and texts[i] hold
 * query_len and lens[i] bytes. Writes n x ember_model_num_labels() scores
 * to `scores` (owned by the caller, `scores_len` floats of capacity) in
 * input order: text i's scores at scores[i * num_labels]. Sorting is left
 * to the caller. `opts` and `stats` may be NULL. Allocates per call.
 * Returns EMBER_OK; EMBER_E_INVALID_ARGUMENT (NULL pointers, negative n,
 * `scores` too small); EMBER_E_UNSUPPORTED (not a cross-encoder, no
 * tokenizer or no pair template); EMBER_E_TOO_LONG (opts->truncate 0 and a
 * pair longer than the model accepts; the message names the text);
 * EMBER_E_NOMEM; EMBER_E_INTERNAL. */
EMBER_API ember_status ember_rerank(ember_ctx *ctx, const char *query, size_t query_len,
                                    const char *const *texts, const size_t *lens, int64_t n,
                                    const ember_rerank_options *opts, float *scores,
                                    int64_t scores_len, ember_embed_stats *stats);

/* ------------------------------------------------------------------------ */
/* Tokenizers                                                                 */
/* ------------------------------------------------------------------------ */

/* Loads a tokenizer alone from a directory (tokenizer.json, or vocab.txt +
 * tokenizer_config.json for BERT) or from a tokenizer.json file path. Also
 * reads sentence_bert_config.json (max_seq_length, do_lower_case) when next
 * to it. Free with ember_tokenizer_free().
 * Returns EMBER_OK, EMBER_E_IO, EMBER_E_NOT_FOUND, EMBER_E_FORMAT,
 * EMBER_E_UNSUPPORTED (a component Ember does not implement, named in the
 * message), EMBER_E_NOMEM. */
EMBER_API ember_status ember_tokenizer_load(const char *path, ember_tokenizer **out);
EMBER_API void ember_tokenizer_free(ember_tokenizer *tok);

/* The tokenizer of a model, or NULL when it has none. Owned by the model. */
EMBER_API const ember_tokenizer *ember_model_tokenizer(const ember_model *model);

/* Vocabulary size (largest id + 1) and token string of an id (NULL if none).
 * Strings are owned by the tokenizer. */
EMBER_API int32_t ember_tokenizer_vocab_size(const ember_tokenizer *tok);
EMBER_API const char *ember_tokenizer_id_to_token(const ember_tokenizer *tok, int32_t id);
/* Default truncation length: sentence-transformers' max_seq_length when known,
 * else the tokenizer's model_max_length, else 0 (none). */
EMBER_API int32_t ember_tokenizer_max_length(const ember_tokenizer *tok);

typedef struct ember_tokenize_options {
    uint32_t struct_size;          /* sizeof(ember_tokenize_options)            */
    int32_t add_special_tokens;    /* 1 (default): apply the post-processor     */
    int32_t max_length;            /* 0 (default): no truncation; > 0: cut to
                                      this many tokens, specials kept           */
    ember_truncation_side truncation_side;
    int32_t lowercase;             /* -1 (default): as sentence_bert_config
                                      do_lower_case; 0/1: force                 */
} ember_tokenize_options;

EMBER_API ember_tokenize_options ember_tokenize_default_options(void);

/* A reusable tokenization result; reusing one avoids allocation per call. */
EMBER_API ember_status ember_encoding_new(ember_encoding **out);
EMBER_API void ember_encoding_free(ember_encoding *enc);

/* Tokenizes `len` bytes of `text` into `enc` (previous content replaced).
 * Invalid UTF-8 is replaced with U+FFFD per maximal ill-formed subpart (as
 * Python's errors="replace") and reported by ember_encoding_flags(). `opts`
 * may be NULL. Thread-safe for distinct encodings.
 * Returns EMBER_OK, EMBER_E_INVALID_ARGUMENT, EMBER_E_NOMEM. */
EMBER_API ember_status ember_tokenize(const ember_tokenizer *tok, const char *text, size_t len,
                            const ember_tokenize_options *opts, ember_encoding *enc);

#define EMBER_ENCODING_TRUNCATED 1u      /* tokens were cut by max_length      */
#define EMBER_ENCODING_INVALID_UTF8 2u   /* invalid UTF-8 was replaced         */

/* Accessors; pointers stay valid until the next ember_tokenize on `enc` or
 * its free. Offsets are pairs [start, end) into the original text: in bytes,
 * or in code points (Python `tokenizers` convention). Special tokens added by
 * the post-processor have (0, 0). */
EMBER_API int64_t ember_encoding_length(const ember_encoding *enc);
EMBER_API const int32_t *ember_encoding_ids(const ember_encoding *enc);
EMBER_API const int64_t *ember_encoding_byte_offsets(const ember_encoding *enc);  /* 2*length */
EMBER_API const int64_t *ember_encoding_char_offsets(const ember_encoding *enc);  /* 2*length */
EMBER_API const uint8_t *ember_encoding_special_mask(const ember_encoding *enc);  /* length   */
EMBER_API const char *ember_encoding_token(const ember_encoding *enc, int64_t i); /* NUL-terminated */
EMBER_API uint32_t ember_encoding_flags(const ember_encoding *enc);
/* Tokens the text produced before truncation (specials included). Through
 * ember_model_tokenize*() with truncation, a text far longer than the limit
 * is tokenized only as far as the kept tokens need (bounded memory): then
 * this is a lower bound, still above the limit. */
EMBER_API int64_t ember_encoding_untruncated_length(const ember_encoding *enc);

/* Tokenizes one text exactly as ember_embed_texts() does before running the
 * model, so a caller can tokenize ahead (an HTTP thread, a queue that counts
 * tokens) and later embed the ids with ember_embed_tokens(): opts->prompt
 * prepended, lowercased when sentence_bert_config says do_lower_case,
 * special tokens added, cut to ember_model_max_tokens() on
 * opts->truncation_side when opts->truncate is 1. Invalid UTF-8 is replaced
 * with U+FFFD (ember_encoding_flags() reports it, and truncation). `opts` may
 * be NULL (defaults); its normalize and dimensions fields are ignored.
 * The result replaces the content of `enc`.
 * Returns EMBER_OK; EMBER_E_INVALID_ARGUMENT (NULL model or enc, text NULL
 * with len > 0, bad struct_size); EMBER_E_UNSUPPORTED (the model has no
 * tokenizer, or a non-empty prompt with a pooling config that excludes
 * prompt tokens, include_prompt: false); EMBER_E_TOO_LONG (opts->truncate is
 * 0 and the text has more tokens than the model accepts: `enc` then holds the
 * whole encoding, so ember_encoding_length() tells by how much);
 * EMBER_E_NOMEM. Thread-safe for distinct encodings. */
EMBER_API ember_status ember_model_tokenize(const ember_model *model, const char *text, size_t len,
                                            const ember_embed_options *opts, ember_encoding *enc);

/* Tokenizes `n` texts with ember_model_tokenize() into CSR form: on success
 * *out_ids receives the ids of all texts one after the other and
 * *out_offsets n + 1 offsets (text i is ids[offsets[i] .. offsets[i+1])),
 * both freed by the caller with ember_free(); the pair can be passed to
 * ember_embed_tokens() with the same options. `stats` (may be NULL) receives
 * n_tokens, n_truncated and n_invalid_utf8. On error both are NULL and the
 * message names the failing text.
 * Returns the codes of ember_model_tokenize(). */
EMBER_API ember_status ember_model_tokenize_texts(const ember_model *model, const char *const *texts,
                                                  const size_t *lens, int64_t n,
                                                  const ember_embed_options *opts, int32_t **out_ids,
                                                  int64_t **out_offsets, ember_embed_stats *stats);

/* ------------------------------------------------------------------------ */
/* Hugging Face hub                                                           */
/* ------------------------------------------------------------------------ */

/* Resolves `spec` (a local directory, or a hub id "org/name[@revision]") to a
 * local directory holding the model's files, following huggingface_hub's
 * cache layout and environment (HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE,
 * HF_TOKEN, HF_ENDPOINT), downloading missing files when `params` allows.
 * On success *out_dir receives a string the caller frees with ember_free().
 * `params` may be NULL (downloads allowed, revision "main").
 * Returns EMBER_OK; EMBER_E_INVALID_ARGUMENT (malformed id or revision, a
 * file instead of a directory); EMBER_E_NOT_FOUND (no such directory, model,
 * revision or file); EMBER_E_NETWORK (hub unreachable and nothing cached);
 * EMBER_E_AUTH (gated or private: set HF_TOKEN); EMBER_E_UNSUPPORTED (the
 * repository has no safetensors weights); EMBER_E_IO, EMBER_E_FORMAT (a
 * corrupt cache entry, named), EMBER_E_NOMEM. */
EMBER_API ember_status ember_resolve_model(const char *spec, const ember_model_params *params,
                                 char **out_dir);

/* Frees memory returned by Ember functions that say so. NULL is a no-op. */
EMBER_API void ember_free(void *p);

/* ------------------------------------------------------------------------ */
/* Machine                                                                    */
/* ------------------------------------------------------------------------ */

/* The CPU features Ember detected and uses, e.g. "avx2 fma f16c". Static. */
EMBER_API const char *ember_cpu_features(void);

/* Measures the fp32 arithmetic peak of this machine: `n_threads` threads
 * (0 = all online CPUs) each run a register-only loop of independent fused
 * multiply-adds on the widest vectors the "cpu" driver uses (AVX-512, AVX2,
 * NEON; scalar otherwise), no memory traffic; each thread's rate over its
 * own CPU time (so other processes' load does not count), summed, the best
 * of a few runs, in GFLOP/s (2 per multiply-add), written to *out_gflops. The denominator of
 * `ember bench`'s model FLOP utilisation in fp32. Takes about a tenth of a
 * second. Same as ember_cpu_peak_gflops_dtype(n_threads, EMBER_DTYPE_F32, ...).
 * Returns EMBER_OK, EMBER_E_INVALID_ARGUMENT (out NULL, n_threads outside
 * [0, 1024]), EMBER_E_NOMEM, EMBER_E_INTERNAL. */
EMBER_API ember_status ember_cpu_peak_gflops(int32_t n_threads, double *out_gflops);

/* The arithmetic peak for the precision `dtype` computes in, measured as
 * ember_cpu_peak_gflops does: EMBER_DTYPE_AUTO and F32, the fp32 FMA peak;
 * BF16, the AVX512_BF16 dot-product peak (vdpbf16ps, 2 operations per bf16
 * product); INT8, the AVX512_VNNI dot-product peak (vpdpbusd, in GOP/s).
 * Where the CPU (or the kernels Ember picks, see EMBER_CPU) has no such dot
 * product, BF16 and INT8 run on fp32 arithmetic and give the fp32 peak.
 * Returns the codes of ember_cpu_peak_gflops, and EMBER_E_INVALID_ARGUMENT
 * for an unknown dtype. */
EMBER_API ember_status ember_cpu_peak_gflops_dtype(int32_t n_threads, ember_dtype dtype,
                                                   double *out_gflops);

/* The nominal arithmetic peak, in GFLOP/s, of the device `model` runs on for
 * the matrix products it runs (a GPU driver: its tensor-core rate for the
 * model's compute dtype, from the compute capability, multiprocessor count
 * and maximum clock: TF32 for f32 unless EMBER_CUDA_TF32=0, then the fp32
 * FMA rate). A nominal figure, not a measurement: sustained clocks and
 * GeForce parts (half-rate fp32 accumulation) come in below it.
 * Returns EMBER_OK, EMBER_E_INVALID_ARGUMENT (NULL argument),
 * EMBER_E_UNSUPPORTED (the model's driver knows no peak: the CPU drivers;
 * measure one with ember_cpu_peak_gflops_dtype). */
EMBER_API ember_status ember_model_peak_gflops(const ember_model *model, double *out_gflops);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_H */
