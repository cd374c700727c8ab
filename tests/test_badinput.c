/*
 * test_badinput.c — malformed model directories must give a precise error
 * (the right status, a message naming the file/tensor/numbers), never a
 * crash. Each case builds a model directory in a temporary folder from the
 * bert-tiny-f32 fixture, breaks one thing, and loads it.
 *
 * Usage: test_badinput FIXTURES_DIR
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "test_util.h"

static const char *g_fixture; /* goldens/bert-tiny-f32 */
static char g_tmp[256];

static char *read_all(const char *path, size_t *len) {
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

static void write_all(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

static void put(const char *name, const void *data, size_t len) {
    char *p = test_path(g_tmp, name);
    write_all(p, data, len);
    free(p);
}

static void put_str(const char *name, const char *s) { put(name, s, strlen(s)); }

/* A fresh copy of the fixture's small files (not the weights). */
static void fresh_dir(void) {
    static int counter;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/ember_bad_%d_%d", (int)getpid(), counter++);
    mkdir(g_tmp, 0700);
    char sub[300];
    snprintf(sub, sizeof sub, "%s/1_Pooling", g_tmp);
    mkdir(sub, 0700);
    const char *files[] = {"config.json", "modules.json", "1_Pooling/config.json",
                           "sentence_bert_config.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t len;
        char *src = test_path(g_fixture, files[i]);
        char *data = read_all(src, &len);
        put(files[i], data, len);
        free(data);
        free(src);
    }
}

static void rm_dir(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", g_tmp);
}

/* Builds a safetensors file from a header string and a data size. */
static void put_safetensors(const char *name, const char *header, size_t data_len) {
    size_t hlen = strlen(header);
    size_t total = 8 + hlen + data_len;
    uint8_t *buf = calloc(1, total);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    put(name, buf, total);
    free(buf);
}

/* Copies the fixture's weights, optionally replacing its header. */
static void copy_weights(void) {
    size_t len;
    char *src = test_path(g_fixture, "model.safetensors");
    char *data = read_all(src, &len);
    put("model.safetensors", data, len);
    free(data);
    free(src);
}

static void expect_load(ember_status want, const char *needle1, const char *needle2,
                        const char *what) {
    ember_model *m = NULL;
    ember_status st = ember_model_load(g_tmp, NULL, &m);
    const char *msg = ember_last_error();
    CHECK(st == want, "%s: status %d (%s), wanted %d; message: %s", what, st, ember_status_str(st),
          want, msg);
    CHECK(m == NULL || want == EMBER_OK, "%s: model returned on error", what);
    if (needle1)
        CHECK(strstr(msg, needle1) != NULL, "%s: message lacks \"%s\": %s", what, needle1, msg);
    if (needle2)
        CHECK(strstr(msg, needle2) != NULL, "%s: message lacks \"%s\": %s", what, needle2, msg);
    ember_model_free(m);
}

/* ---- safetensors parser cases (through the full loader) ---- */

static void safetensors_cases(void) {
    size_t len;
    char *src = test_path(g_fixture, "model.safetensors");
    char *good = read_all(src, &len);
    free(src);

    fresh_dir();
    put("model.safetensors", good, 5);
    expect_load(EMBER_E_FORMAT, "too short", "model.safetensors", "file shorter than 8 bytes");
    rm_dir();

    fresh_dir();
    put("model.safetensors", good, len / 2);
    expect_load(EMBER_E_FORMAT, "end past the data region", NULL, "truncated file");
    rm_dir();

    fresh_dir();
    {
        uint8_t hdr[16] = {0};
        uint64_t big = 1u << 20;
        for (int i = 0; i < 8; i++)
            hdr[i] = (uint8_t)(big >> (8 * i));
        memcpy(hdr + 8, "{\"a\":1}", 7);
        put("model.safetensors", hdr, 15);
    }
    expect_load(EMBER_E_FORMAT, "runs past the end of the file", "1048576", "header length past end");
    rm_dir();

    fresh_dir();
    {
        uint8_t hdr[8];
        uint64_t huge = 200000000ull;
        for (int i = 0; i < 8; i++)
            hdr[i] = (uint8_t)(huge >> (8 * i));
        put("model.safetensors", hdr, 8);
    }
    expect_load(EMBER_E_FORMAT, "exceeds the limit", "200000000", "header size limit");
    rm_dir();

    fresh_dir();
    put_safetensors("model.safetensors", "{\"x\": {\"dtype\": \"F32\", ", 16);
    expect_load(EMBER_E_FORMAT, "invalid JSON", "model.safetensors", "invalid header JSON");
    rm_dir();

    fresh_dir();
    put_safetensors("model.safetensors", "[1, 2, 3]", 0);
    expect_load(EMBER_E_FORMAT, "JSON object", NULL, "header not an object");
    rm_dir();

    fresh_dir();
    put_safetensors("model.safetensors",
                    "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 16]}}", 8);
    expect_load(EMBER_E_FORMAT, "'w'", "end past the data region of 8 bytes", "offsets out of range");
    rm_dir();

    fresh_dir();
    put_safetensors("model.safetensors",
                    "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
                    " \"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 24]}}",
                    24);
    expect_load(EMBER_E_FORMAT, "overlap", "'b'", "overlapping tensors");
    rm_dir();

    fresh_dir();
    put_safetensors("model.safetensors",
                    "{\"w\": {\"dtype\": \"F32\", \"shape\": [3, 3], \"data_offsets\": [0, 32]}}", 32);
    expect_load(EMBER_E_FORMAT, "needs 36 bytes", "span 32", "shape x dtype != span");
    rm_dir();

    fresh_dir();
    put_safetensors("model.safetensors",
                    "{\"w\": {\"dtype\": \"F33\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4);
    expect_load(EMBER_E_FORMAT, "unknown dtype 'F33'", "'w'", "unknown dtype");
    rm_dir();

    fresh_dir();
    put_safetensors("model.safetensors",
                    "{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 16],"
                    " \"data_offsets\": [0, 4]}}",
                    4);
    expect_load(EMBER_E_FORMAT, "overflows", "'w'", "shape product overflow");
    rm_dir();

    fresh_dir();
    put_safetensors("model.safetensors",
                    "{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4);
    expect_load(EMBER_E_FORMAT, "shape[0]", "'w'", "negative dimension");
    rm_dir();

    fresh_dir();
    put_safetensors("model.safetensors",
                    "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", 4);
    expect_load(EMBER_E_FORMAT, "decrease", "'w'", "decreasing offsets");
    rm_dir();

    fresh_dir();
    put_safetensors("model.safetensors", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4);
    expect_load(EMBER_E_FORMAT, "data_offsets", "'w'", "missing data_offsets");
    rm_dir();

    /* a valid file that lacks the model's tensors */
    fresh_dir();
    put_safetensors("model.safetensors",
                    "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4);
    expect_load(EMBER_E_MODEL, "embeddings.word_embeddings.weight", NULL, "no model tensors");
    rm_dir();
    free(good);
}

/* Rewrites the fixture header: `edit` replaces the first occurrence of
 * `from` with `to` (same length keeps offsets valid). */
static void put_edited_weights(const char *from, const char *to) {
    size_t len;
    char *src = test_path(g_fixture, "model.safetensors");
    char *data = read_all(src, &len);
    free(src);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | (uint8_t)data[i];
    char *hit = NULL;
    for (char *p = data + 8; p + strlen(from) <= data + 8 + hlen; p++)
        if (memcmp(p, from, strlen(from)) == 0) {
            hit = p;
            break;
        }
    CHECK(hit != NULL, "fixture header lacks \"%s\"", from);
    if (hit && strlen(to) == strlen(from))
        memcpy(hit, to, strlen(to));
    put("model.safetensors", data, len);
    free(data);
}

static void model_cases(void) {
    /* a required tensor renamed away */
    fresh_dir();
    put_edited_weights("encoder.layer.1.output.dense.weight", "encoder.layer.1.output.dense.wXight");
    expect_load(EMBER_E_MODEL, "encoder.layer.1.output.dense.weight", "missing",
                "missing tensor");
    rm_dir();

    /* the config disagrees with the weights' shapes */
    fresh_dir();
    copy_weights();
    put_str("config.json", "{\"model_type\": \"bert\", \"hidden_size\": 64, \"num_hidden_layers\": 3,"
                           " \"num_attention_heads\": 4, \"intermediate_size\": 256,"
                           " \"vocab_size\": 1024, \"max_position_embeddings\": 512}");
    expect_load(EMBER_E_MODEL, "intermediate.dense.weight", "expected F32[256,64], found F32[128,64]",
                "wrong shape");
    rm_dir();

    /* a weight stored as an integer dtype (same byte size as F32) */
    fresh_dir();
    put_edited_weights("\"dtype\":\"F32\",\"shape\":[64]", "\"dtype\":\"I32\",\"shape\":[64]");
    expect_load(EMBER_E_MODEL, "found I32[64]", "F32, F16 or BF16", "unsupported dtype");
    rm_dir();

    fresh_dir();
    copy_weights();
    char *p = test_path(g_tmp, "config.json");
    unlink(p);
    free(p);
    expect_load(EMBER_E_NOT_FOUND, "config.json is missing", NULL, "missing config.json");
    rm_dir();

    fresh_dir();
    copy_weights();
    put_str("config.json", "{\"model_type\": \"bert\", \"hidden_size\": 64,");
    expect_load(EMBER_E_FORMAT, "config.json", "invalid JSON at line", "malformed config.json");
    rm_dir();

    fresh_dir();
    copy_weights();
    put_str("config.json", "{\"model_type\": \"gpt2\", \"hidden_size\": 64}");
    expect_load(EMBER_E_UNSUPPORTED, "model_type \"gpt2\"", NULL, "unknown model_type");
    rm_dir();

    /* custom modeling code under a known model_type (gte-Qwen2: Qwen2 made
     * bidirectional by its own code) */
    fresh_dir();
    copy_weights();
    put_str("config.json", "{\"model_type\": \"qwen2\", \"hidden_size\": 64, \"auto_map\": "
                           "{\"AutoModel\": \"Alibaba-NLP/gte-Qwen2-1.5B-instruct--modeling_qwen.Qwen2Model\"}}");
    expect_load(EMBER_E_UNSUPPORTED, "auto_map.AutoModel", "trust_remote_code", "custom modeling code");
    rm_dir();

    /* decoders: a layer_types window the config turned off; a one-key window */
    fresh_dir();
    copy_weights();
    put_str("config.json", "{\"model_type\": \"qwen2\", \"hidden_size\": 64, \"num_hidden_layers\": 2,"
                           " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"intermediate_size\": 96,"
                           " \"vocab_size\": 1024, \"use_sliding_window\": false,"
                           " \"layer_types\": [\"full_attention\", \"sliding_attention\"]}");
    expect_load(EMBER_E_FORMAT, "layer_types[1]", "sliding window is off", "qwen2 window off");
    rm_dir();

    fresh_dir();
    copy_weights();
    put_str("config.json", "{\"model_type\": \"mistral\", \"hidden_size\": 64, \"num_hidden_layers\": 2,"
                           " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"intermediate_size\": 96,"
                           " \"vocab_size\": 1024, \"sliding_window\": 1}");
    expect_load(EMBER_E_FORMAT, "'sliding_window' = 1 is outside", NULL, "mistral window of one key");
    rm_dir();

    fresh_dir();
    copy_weights();
    put_str("config.json", "{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_hidden_layers\": 2,"
                           " \"num_attention_heads\": 4, \"intermediate_size\": 96, \"vocab_size\": 1024,"
                           " \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}}");
    expect_load(EMBER_E_UNSUPPORTED, "rope_scaling is not supported", NULL, "llama3 rope scaling");
    rm_dir();

    fresh_dir();
    copy_weights();
    put_str("config.json", "{\"model_type\": \"bert\", \"hidden_size\": \"64\"}");
    expect_load(EMBER_E_FORMAT, "'hidden_size' must be an integer, found string", NULL,
                "wrong type in config");
    rm_dir();

    fresh_dir();
    copy_weights();
    put_str("config.json", "{\"model_type\": \"bert\", \"hidden_size\": 65, \"num_hidden_layers\": 3,"
                           " \"num_attention_heads\": 4, \"intermediate_size\": 128,"
                           " \"vocab_size\": 1024}");
    expect_load(EMBER_E_FORMAT, "not a multiple of num_attention_heads", NULL, "bad head count");
    rm_dir();

    fresh_dir();
    copy_weights();
    put_str("config.json", "{\"model_type\": \"bert\", \"hidden_size\": 64, \"num_hidden_layers\": -3,"
                           " \"num_attention_heads\": 4, \"intermediate_size\": 128,"
                           " \"vocab_size\": 1024}");
    expect_load(EMBER_E_FORMAT, "'num_hidden_layers' = -3 is outside", NULL, "negative layers");
    rm_dir();

    /* only PyTorch weights */
    fresh_dir();
    put_str("pytorch_model.bin", "not really a pickle");
    expect_load(EMBER_E_UNSUPPORTED, "pytorch_model.bin", "requires safetensors", "pytorch only");
    rm_dir();

    fresh_dir();
    expect_load(EMBER_E_NOT_FOUND, "no model.safetensors", NULL, "no weights at all");
    rm_dir();

    /* sentence-transformers files */
    fresh_dir();
    copy_weights();
    put_str("1_Pooling/config.json", "{\"pooling_mode_cls_token\": true, \"pooling_mode_mean_tokens\": true}");
    expect_load(EMBER_E_UNSUPPORTED, "several pooling modes", NULL, "two pooling modes");
    rm_dir();

    fresh_dir();
    copy_weights();
    put_str("1_Pooling/config.json", "{\"pooling_mode\": \"attention\"}");
    expect_load(EMBER_E_UNSUPPORTED, "pooling_mode \"attention\"", NULL, "unknown pooling mode");
    rm_dir();

    fresh_dir();
    copy_weights();
    /* Dense modules: each broken piece named */
    static const char *dense_modules =
        "[{\"idx\": 0, \"type\": \"sentence_transformers.models.Transformer\", \"path\": \"\"},"
        " {\"idx\": 1, \"type\": \"sentence_transformers.models.Pooling\", \"path\": \"1_Pooling\"},"
        " {\"idx\": 2, \"type\": \"sentence_transformers.models.Dense\", \"path\": \"2_Dense\"}]";
    put_str("modules.json", dense_modules);
    char dense_dir[320];
    snprintf(dense_dir, sizeof dense_dir, "%s/2_Dense", g_tmp);
    mkdir(dense_dir, 0700);
    expect_load(EMBER_E_NOT_FOUND, "2_Dense/config.json", "missing", "Dense without config");
    put_str("2_Dense/config.json", "{\"in_features\": 32, \"out_features\": 16}");
    expect_load(EMBER_E_MODEL, "in_features 32", NULL, "Dense in_features mismatch");
    put_str("2_Dense/config.json", "{\"in_features\": 64, \"out_features\": 16, "
                                   "\"activation_function\": \"torch.nn.modules.activation.Softsign\"}");
    expect_load(EMBER_E_UNSUPPORTED, "Softsign", NULL, "Dense activation");
    put_str("2_Dense/config.json", "{\"in_features\": 64, \"out_features\": -16}");
    expect_load(EMBER_E_FORMAT, "out of range", NULL, "Dense negative size");
    put_str("2_Dense/config.json", "{\"in_features\": 64, \"out_features\": 16}");
    put_str("2_Dense/pytorch_model.bin", "not read");
    expect_load(EMBER_E_UNSUPPORTED, "model.safetensors", "sentence-transformers", "Dense .bin only");
    rm_dir();

    fresh_dir();
    copy_weights();
    put_str("modules.json",
            "[{\"idx\": 0, \"type\": \"sentence_transformers.models.Transformer\", \"path\": \"\"},"
            " {\"idx\": 1, \"type\": \"sentence_transformers.models.Pooling\", \"path\": \"1_Pooling\"},"
            " {\"idx\": 2, \"type\": \"sentence_transformers.models.Normalize\", \"path\": \"2_Normalize\"},"
            " {\"idx\": 3, \"type\": \"sentence_transformers.models.Dense\", \"path\": \"3_Dense\"}]");
    expect_load(EMBER_E_UNSUPPORTED, "after Normalize", NULL, "module after Normalize");
    rm_dir();

    fresh_dir();
    copy_weights();
    put_str("1_Pooling/config.json", "{\"pooling_mode_cls_token\": true, \"word_embedding_dimension\": -5}");
    expect_load(EMBER_E_FORMAT, "word_embedding_dimension", NULL, "negative pooling dimension");
    rm_dir();

    fresh_dir();
    copy_weights();
    put_str("modules.json", "[{\"idx\": 1, \"type\": \"sentence_transformers.models.Pooling\", \"path\": \"../../etc\"}]");
    expect_load(EMBER_E_FORMAT, "leaves the model directory", NULL, "module path escape");
    rm_dir();

    fresh_dir();
    copy_weights();
    put_str("sentence_bert_config.json", "{\"max_seq_length\": 0}");
    expect_load(EMBER_E_FORMAT, "max_seq_length", "out of range", "bad max_seq_length");
    rm_dir();

    /* sharded checkpoints */
    fresh_dir();
    put_str("model.safetensors.index.json", "{\"weight_map\": {\"a\": \"../model.safetensors\"}}");
    expect_load(EMBER_E_FORMAT, "invalid shard name", NULL, "shard path escape");
    rm_dir();

    fresh_dir();
    put_safetensors("model-00001-of-00001.safetensors",
                    "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4);
    put_str("model.safetensors.index.json",
            "{\"weight_map\": {\"x\": \"model-00001-of-00001.safetensors\"}}");
    expect_load(EMBER_E_FORMAT, "'x' is not in shard", NULL, "index lies");
    rm_dir();

    /* the good directory loads (the harness itself works) */
    fresh_dir();
    copy_weights();
    expect_load(EMBER_OK, NULL, NULL, "unmodified copy");
    rm_dir();
}

/* Offset in the copied model.safetensors of element `index` of tensor `name`. */
static long tensor_offset(const char *name, long index) {
    char *p = test_path(g_tmp, "model.safetensors");
    ember_st_file *f = NULL;
    long off = -1;
    if (ember_st_open(p, &f) == EMBER_OK) {
        const ember_st_tensor *t = ember_st_find(f, name);
        if (t && t->dtype == EMBER_DT_F32)
            off = (long)t->file_offset + 4 * index;
        ember_st_close(f);
    }
    free(p);
    CHECK(off >= 0, "fixture lacks F32 tensor %s", name);
    return off;
}

static void poke_float(long off, float v) {
    char *p = test_path(g_tmp, "model.safetensors");
    FILE *f = fopen(p, "r+b");
    if (f && off >= 0) {
        fseek(f, off, SEEK_SET);
        fwrite(&v, sizeof v, 1, f);
    }
    if (f)
        fclose(f);
    free(p);
}

/* ---- reliability: files that are not what they claim, or that change ---- */

static void reliability_cases(void) {
    /* a FIFO as config.json: refused at once, not a load blocked forever
     * (the test would hang before the fix; ctest's timeout catches it) */
    fresh_dir();
    copy_weights();
    char *cfg = test_path(g_tmp, "config.json");
    unlink(cfg);
    CHECK(mkfifo(cfg, 0600) == 0, "mkfifo %s", cfg);
    free(cfg);
    expect_load(EMBER_E_IO, "config.json", "not a regular file", "FIFO config.json");
    rm_dir();

    /* a FIFO as the weights */
    fresh_dir();
    char *wp = test_path(g_tmp, "model.safetensors");
    CHECK(mkfifo(wp, 0600) == 0, "mkfifo %s", wp);
    free(wp);
    expect_load(EMBER_E_NOT_FOUND, "model.safetensors", NULL, "FIFO weights");
    rm_dir();

    /* type_vocab_size 0 with token-type embeddings in the file: refused,
     * naming both (they would be silently ignored) */
    fresh_dir();
    copy_weights();
    {
        size_t len;
        char *src = test_path(g_fixture, "config.json");
        char *data = read_all(src, &len);
        free(src);
        json_t *root = json_loads(data, 0, NULL);
        free(data);
        CHECK(root != NULL, "fixture config.json parses");
        json_object_set_new(root, "type_vocab_size", json_integer(0));
        char *txt = json_dumps(root, 0);
        put_str("config.json", txt);
        free(txt);
        json_decref(root);
    }
    expect_load(EMBER_E_MODEL, "type_vocab_size 0", "token_type_embeddings", "type_vocab_size 0");
    rm_dir();

    /* a NaN weight: refused at load (packed mode scans every value) */
    fresh_dir();
    copy_weights();
    poke_float(tensor_offset("embeddings.LayerNorm.weight", 3), NAN);
    expect_load(EMBER_E_MODEL, "embeddings.LayerNorm.weight", "NaN", "NaN weight");
    rm_dir();
    fresh_dir();
    copy_weights();
    poke_float(tensor_offset("encoder.layer.0.attention.self.query.weight", 7), INFINITY);
    expect_load(EMBER_E_MODEL, "encoder.layer.0.attention.self.query.weight", "infinite",
                "Inf weight");
    rm_dir();

    /* zero-copy does not scan the mapped weights: a NaN there reaches the
     * output, which is an error, never a vector of NaN (JSON null) */
    fresh_dir();
    copy_weights();
    poke_float(tensor_offset("embeddings.word_embeddings.weight", 1000L * 64 + 5), NAN);
    {
        ember_model_params mp = ember_model_default_params();
        mp.pack_weights = 0;
        ember_model *m = NULL;
        CHECK_OK(ember_model_load(g_tmp, &mp, &m));
        ember_ctx *ctx = NULL;
        if (m)
            CHECK_OK(ember_ctx_init(m, NULL, &ctx));
        if (ctx) {
            float out[64];
            int32_t ids[] = {101, 1000, 102};
            int64_t off[] = {0, 3};
            CHECK_STATUS(ember_embed_tokens(ctx, ids, off, 1, NULL, out, 64, NULL), EMBER_E_MODEL);
            CHECK(strstr(ember_last_error(), "NaN") != NULL, "message: %s", ember_last_error());
            int32_t ok_ids[] = {101, 1001, 102};
            CHECK_OK(ember_embed_tokens(ctx, ok_ids, off, 1, NULL, out, 64, NULL));
        }
        ember_ctx_free(ctx);
        ember_model_free(m);
    }
    rm_dir();

    /* the weights file truncated and rewritten under a loaded model (what
     * `cp new.safetensors model.safetensors` does): the default packed model
     * keeps working with the weights it loaded, no SIGBUS */
    fresh_dir();
    copy_weights();
    {
        ember_model *m = NULL;
        CHECK_OK(ember_model_load(g_tmp, NULL, &m));
        ember_ctx *ctx = NULL;
        if (m)
            CHECK_OK(ember_ctx_init(m, NULL, &ctx));
        if (ctx) {
            float before[64], after[64];
            int32_t ids[] = {101, 1000, 1001, 5, 102};
            int64_t off[] = {0, 5};
            CHECK_OK(ember_embed_tokens(ctx, ids, off, 1, NULL, before, 64, NULL));
            char *wp2 = test_path(g_tmp, "model.safetensors");
            FILE *f = fopen(wp2, "wb"); /* O_TRUNC: every page of the old size is gone */
            if (f) {
                fputs("not weights any more", f);
                fclose(f);
            }
            free(wp2);
            CHECK_OK(ember_embed_tokens(ctx, ids, off, 1, NULL, after, 64, NULL));
            CHECK(memcmp(before, after, sizeof before) == 0,
                  "embedding changed after the file was rewritten");
        }
        ember_ctx_free(ctx);
        ember_model_free(m);
    }
    rm_dir();
}

/* Token-id inputs that must be refused before any compute. */
static void input_cases(void) {
    ember_model *m = NULL;
    CHECK_OK(ember_model_load(g_fixture, NULL, &m));
    if (!m)
        return;
    ember_ctx *ctx = NULL;
    CHECK_OK(ember_ctx_init(m, NULL, &ctx));
    float out[64 * 4];
    int32_t ids[] = {101, 5, 6, 102};
    int64_t off_ok[] = {0, 4};
    CHECK_OK(ember_embed_tokens(ctx, ids, off_ok, 1, NULL, out, 64, NULL));
    int64_t off_empty[] = {0, 0};
    CHECK_STATUS(ember_embed_tokens(ctx, ids, off_empty, 1, NULL, out, 64, NULL),
                 EMBER_E_INVALID_ARGUMENT);
    int32_t bad_ids[] = {101, 5000, 102};
    int64_t off3[] = {0, 3};
    CHECK_STATUS(ember_embed_tokens(ctx, bad_ids, off3, 1, NULL, out, 64, NULL),
                 EMBER_E_INVALID_ARGUMENT);
    CHECK(strstr(ember_last_error(), "5000") != NULL, "message: %s", ember_last_error());
    int32_t neg_ids[] = {101, -1, 102};
    CHECK_STATUS(ember_embed_tokens(ctx, neg_ids, off3, 1, NULL, out, 64, NULL),
                 EMBER_E_INVALID_ARGUMENT);
    CHECK_STATUS(ember_embed_tokens(ctx, ids, off_ok, 1, NULL, out, 63, NULL),
                 EMBER_E_INVALID_ARGUMENT);
    int32_t *long_ids = calloc(600, sizeof(int32_t));
    int64_t off_long[] = {0, 600};
    CHECK_STATUS(ember_embed_tokens(ctx, long_ids, off_long, 1, NULL, out, 64, NULL),
                 EMBER_E_TOO_LONG);
    free(long_ids);
    ember_embed_options o = ember_embed_default_options();
    o.dimensions = 65;
    CHECK_STATUS(ember_embed_tokens(ctx, ids, off_ok, 1, &o, out, 65, NULL),
                 EMBER_E_INVALID_ARGUMENT);
    o.struct_size = 1000;
    CHECK_STATUS(ember_embed_tokens(ctx, ids, off_ok, 1, &o, out, 64, NULL),
                 EMBER_E_INVALID_ARGUMENT);
    CHECK_STATUS(ember_embed_tokens(NULL, ids, off_ok, 1, NULL, out, 64, NULL),
                 EMBER_E_INVALID_ARGUMENT);
    CHECK_OK(ember_embed_tokens(ctx, ids, off_ok, 0, NULL, out, 0, NULL));
    const char *text = "hello";
    size_t tlen = 5;
    CHECK_STATUS(ember_embed_texts(ctx, &text, &tlen, 1, NULL, out, 64, NULL), EMBER_E_UNSUPPORTED);
    ember_ctx_free(ctx);
    ember_model_free(m);
    CHECK_STATUS(ember_model_load("/nonexistent/dir", NULL, &m), EMBER_E_NOT_FOUND);
    CHECK_STATUS(ember_model_load(NULL, NULL, &m), EMBER_E_INVALID_ARGUMENT);
    CHECK_STATUS(ember_model_load(g_fixture, NULL, NULL), EMBER_E_INVALID_ARGUMENT);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE_MODEL_DIR\n", argv[0]);
        return 2;
    }
    g_fixture = argv[1];
    safetensors_cases();
    model_cases();
    reliability_cases();
    input_cases();
    return test_finish("test_badinput");
}
