/*
 * make_model.c — writes a complete model directory with random weights of a
 * real model's shapes, for benchmarks, load tests and the real-shape goldens
 * (speed does not depend on the trained values). Presets follow
 * bench/workloads/README.md:
 *
 *   A   BAAI/bge-small-en-v1.5 shapes: BERT 384 / 12 layers / 12 heads, CLS
 *   B   nomic-ai/modernbert-embed-base shapes: ModernBERT 768 / 22 / 12, mean
 *   Q   Qwen/Qwen3-Embedding-0.6B shapes: Qwen3 1024 / 28 layers / 16 heads
 *       over 8 key/value heads of 128, SwiGLU 3072, vocab 151669, last token;
 *       BF16 as the real checkpoint ships
 *   G   google/embeddinggemma-300m shapes: Gemma 3 768 / 24 layers / 3 heads
 *       over 1 key/value head of 256, GeGLU 1152, vocab 262144, sliding
 *       window 512 on five layers of six, mean pooling, Dense 768 -> 3072 ->
 *       768; F32 as the real checkpoint ships
 *   Q2, G2  the same at real width with 2 layers (G2: one sliding, one full)
 *
 * Usage: make_model PRESET OUT_DIR [TOKENIZER_DIR] [--dtype F32|F16|BF16]
 * TOKENIZER_DIR's tokenizer files (tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json, vocab.txt) are copied when given.
 *
 * The output is byte-identical from run to run and machine to machine (one
 * fixed-seed integer generator, values in tensor order, IEEE arithmetic with
 * no contraction): tests/fixtures/goldens/realshape-* store only the
 * expected vectors and the SHA-256 of the files this program writes, and
 * their tests write the model again into the build tree.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dtype.h"

/* the values must be the same floats everywhere: no fused multiply-adds
 * (gcc does not contract under -std=c17; clang would, on arm64, without
 * this pragma, which gcc does not know) */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

typedef struct {
    char name[128];
    int n_dims;
    int64_t shape[2];
    int init; /* 0: normal(0, 0.02), 1: ~ones (norm scale), 2: ~zeros (bias, Gemma's (1 + w) norms) */
} tensor_spec;

static tensor_spec g_t[1024];
static int g_n;
static uint64_t g_rng = 42;

static void add(const char *name, int64_t d0, int64_t d1, int init) {
    tensor_spec *t = &g_t[g_n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = d1 > 0 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->init = init;
}

static float gauss(void) {
    double u = 0;
    for (int i = 0; i < 4; i++) {
        g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
        u += (double)(g_rng >> 11) / 9007199254740992.0;
    }
    return (float)((u - 2.0) * 1.7320508); /* ~N(0,1) */
}

static void bert_tensors(void) {
    const int h = 384, inter = 1536, layers = 12;
    add("embeddings.word_embeddings.weight", 30522, h, 0);
    add("embeddings.position_embeddings.weight", 512, h, 0);
    add("embeddings.token_type_embeddings.weight", 2, h, 0);
    add("embeddings.LayerNorm.weight", h, 0, 1);
    add("embeddings.LayerNorm.bias", h, 0, 2);
    for (int l = 0; l < layers; l++) {
        char n[128];
        const char *qkv[] = {"query", "key", "value"};
        for (int i = 0; i < 3; i++) {
            snprintf(n, sizeof n, "encoder.layer.%d.attention.self.%s.weight", l, qkv[i]);
            add(n, h, h, 0);
            snprintf(n, sizeof n, "encoder.layer.%d.attention.self.%s.bias", l, qkv[i]);
            add(n, h, 0, 2);
        }
        snprintf(n, sizeof n, "encoder.layer.%d.attention.output.dense.weight", l); add(n, h, h, 0);
        snprintf(n, sizeof n, "encoder.layer.%d.attention.output.dense.bias", l); add(n, h, 0, 2);
        snprintf(n, sizeof n, "encoder.layer.%d.attention.output.LayerNorm.weight", l); add(n, h, 0, 1);
        snprintf(n, sizeof n, "encoder.layer.%d.attention.output.LayerNorm.bias", l); add(n, h, 0, 2);
        snprintf(n, sizeof n, "encoder.layer.%d.intermediate.dense.weight", l); add(n, inter, h, 0);
        snprintf(n, sizeof n, "encoder.layer.%d.intermediate.dense.bias", l); add(n, inter, 0, 2);
        snprintf(n, sizeof n, "encoder.layer.%d.output.dense.weight", l); add(n, h, inter, 0);
        snprintf(n, sizeof n, "encoder.layer.%d.output.dense.bias", l); add(n, h, 0, 2);
        snprintf(n, sizeof n, "encoder.layer.%d.output.LayerNorm.weight", l); add(n, h, 0, 1);
        snprintf(n, sizeof n, "encoder.layer.%d.output.LayerNorm.bias", l); add(n, h, 0, 2);
    }
}

/* XLM-RoBERTa-base (multilingual-e5-base, paraphrase-multilingual-mpnet)
 * and MPNet-base (all-mpnet-base-v2) shapes: hidden 768, 12 layers, FFN
 * 3072; XLM-R with its 250,002-row vocabulary and 514 positions, MPNet with
 * BERT's layout under attention.attn and the relative-position table. */
static void base_tensors(int mpnet) {
    const int h = 768, inter = 3072, layers = 12;
    add("embeddings.word_embeddings.weight", mpnet ? 30527 : 250002, h, 0);
    add("embeddings.position_embeddings.weight", 514, h, 0);
    if (!mpnet)
        add("embeddings.token_type_embeddings.weight", 1, h, 0);
    add("embeddings.LayerNorm.weight", h, 0, 1);
    add("embeddings.LayerNorm.bias", h, 0, 2);
    if (mpnet)
        add("encoder.relative_attention_bias.weight", 32, 12, 0);
    const char *att[4] = {"attention.self.query", "attention.self.key", "attention.self.value",
                          "attention.output.dense"};
    const char *att_mp[4] = {"attention.attn.q", "attention.attn.k", "attention.attn.v",
                             "attention.attn.o"};
    for (int l = 0; l < layers; l++) {
        char n[128];
        for (int i = 0; i < 4; i++) {
            snprintf(n, sizeof n, "encoder.layer.%d.%s.weight", l, mpnet ? att_mp[i] : att[i]);
            add(n, h, h, 0);
            snprintf(n, sizeof n, "encoder.layer.%d.%s.bias", l, mpnet ? att_mp[i] : att[i]);
            add(n, h, 0, 2);
        }
        const char *ln1 = mpnet ? "attention.LayerNorm" : "attention.output.LayerNorm";
        snprintf(n, sizeof n, "encoder.layer.%d.%s.weight", l, ln1); add(n, h, 0, 1);
        snprintf(n, sizeof n, "encoder.layer.%d.%s.bias", l, ln1); add(n, h, 0, 2);
        snprintf(n, sizeof n, "encoder.layer.%d.intermediate.dense.weight", l); add(n, inter, h, 0);
        snprintf(n, sizeof n, "encoder.layer.%d.intermediate.dense.bias", l); add(n, inter, 0, 2);
        snprintf(n, sizeof n, "encoder.layer.%d.output.dense.weight", l); add(n, h, inter, 0);
        snprintf(n, sizeof n, "encoder.layer.%d.output.dense.bias", l); add(n, h, 0, 2);
        snprintf(n, sizeof n, "encoder.layer.%d.output.LayerNorm.weight", l); add(n, h, 0, 1);
        snprintf(n, sizeof n, "encoder.layer.%d.output.LayerNorm.bias", l); add(n, h, 0, 2);
    }
}

static void modernbert_tensors(void) {
    const int h = 768, inter = 1152, layers = 22;
    add("embeddings.tok_embeddings.weight", 50368, h, 0);
    add("embeddings.norm.weight", h, 0, 1);
    for (int l = 0; l < layers; l++) {
        char n[128];
        if (l > 0) {
            snprintf(n, sizeof n, "layers.%d.attn_norm.weight", l);
            add(n, h, 0, 1);
        }
        snprintf(n, sizeof n, "layers.%d.attn.Wqkv.weight", l); add(n, 3 * h, h, 0);
        snprintf(n, sizeof n, "layers.%d.attn.Wo.weight", l); add(n, h, h, 0);
        snprintf(n, sizeof n, "layers.%d.mlp_norm.weight", l); add(n, h, 0, 1);
        snprintf(n, sizeof n, "layers.%d.mlp.Wi.weight", l); add(n, 2 * inter, h, 0);
        snprintf(n, sizeof n, "layers.%d.mlp.Wo.weight", l); add(n, h, inter, 0);
    }
    add("final_norm.weight", h, 0, 1);
}

static void qwen3_tensors(int layers) {
    const int h = 1024, inter = 3072, nq = 16 * 128, nkv = 8 * 128;
    add("embed_tokens.weight", 151669, h, 0);
    for (int l = 0; l < layers; l++) {
        char n[128];
        snprintf(n, sizeof n, "layers.%d.input_layernorm.weight", l); add(n, h, 0, 1);
        snprintf(n, sizeof n, "layers.%d.self_attn.q_proj.weight", l); add(n, nq, h, 0);
        snprintf(n, sizeof n, "layers.%d.self_attn.k_proj.weight", l); add(n, nkv, h, 0);
        snprintf(n, sizeof n, "layers.%d.self_attn.v_proj.weight", l); add(n, nkv, h, 0);
        snprintf(n, sizeof n, "layers.%d.self_attn.o_proj.weight", l); add(n, h, nq, 0);
        snprintf(n, sizeof n, "layers.%d.self_attn.q_norm.weight", l); add(n, 128, 0, 1);
        snprintf(n, sizeof n, "layers.%d.self_attn.k_norm.weight", l); add(n, 128, 0, 1);
        snprintf(n, sizeof n, "layers.%d.post_attention_layernorm.weight", l); add(n, h, 0, 1);
        snprintf(n, sizeof n, "layers.%d.mlp.gate_proj.weight", l); add(n, inter, h, 0);
        snprintf(n, sizeof n, "layers.%d.mlp.up_proj.weight", l); add(n, inter, h, 0);
        snprintf(n, sizeof n, "layers.%d.mlp.down_proj.weight", l); add(n, h, inter, 0);
    }
    add("norm.weight", h, 0, 1);
}

/* Gemma's RMSNorms scale by (1 + w): their weights are drawn near 0, as
 * trained checkpoints store them, not near 1 (which would double every norm) */
static void gemma3_tensors(int layers) {
    const int h = 768, inter = 1152, nq = 3 * 256, nkv = 1 * 256;
    add("embed_tokens.weight", 262144, h, 0);
    for (int l = 0; l < layers; l++) {
        char n[128];
        snprintf(n, sizeof n, "layers.%d.input_layernorm.weight", l); add(n, h, 0, 2);
        snprintf(n, sizeof n, "layers.%d.self_attn.q_proj.weight", l); add(n, nq, h, 0);
        snprintf(n, sizeof n, "layers.%d.self_attn.k_proj.weight", l); add(n, nkv, h, 0);
        snprintf(n, sizeof n, "layers.%d.self_attn.v_proj.weight", l); add(n, nkv, h, 0);
        snprintf(n, sizeof n, "layers.%d.self_attn.o_proj.weight", l); add(n, h, nq, 0);
        snprintf(n, sizeof n, "layers.%d.self_attn.q_norm.weight", l); add(n, 256, 0, 2);
        snprintf(n, sizeof n, "layers.%d.self_attn.k_norm.weight", l); add(n, 256, 0, 2);
        snprintf(n, sizeof n, "layers.%d.post_attention_layernorm.weight", l); add(n, h, 0, 2);
        snprintf(n, sizeof n, "layers.%d.pre_feedforward_layernorm.weight", l); add(n, h, 0, 2);
        snprintf(n, sizeof n, "layers.%d.mlp.gate_proj.weight", l); add(n, inter, h, 0);
        snprintf(n, sizeof n, "layers.%d.mlp.up_proj.weight", l); add(n, inter, h, 0);
        snprintf(n, sizeof n, "layers.%d.mlp.down_proj.weight", l); add(n, h, inter, 0);
        snprintf(n, sizeof n, "layers.%d.post_feedforward_layernorm.weight", l); add(n, h, 0, 2);
    }
    add("norm.weight", h, 0, 2);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static void copy_file(const char *src_dir, const char *dst_dir, const char *name) {
    char src[1024], dst[1024];
    snprintf(src, sizeof src, "%s/%s", src_dir, name);
    snprintf(dst, sizeof dst, "%s/%s", dst_dir, name);
    FILE *in = fopen(src, "rb");
    if (!in)
        return;
    FILE *out = fopen(dst, "wb");
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
}

/* Writes g_t[0 .. g_n) as one safetensors file of dtype dt, values drawn in
 * tensor order from the generator; returns the bytes of tensor data. */
static uint64_t write_safetensors(const char *path, ember_dt dt) {
    size_t esize = ember_dt_size(dt), cap = 1 << 20, len = 0;
    char *hdr = malloc(cap);
    uint64_t off = 0;
    len += (size_t)snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < g_n; i++) {
        uint64_t n = (uint64_t)g_t[i].shape[0] * (uint64_t)(g_t[i].n_dims == 2 ? g_t[i].shape[1] : 1);
        if (g_t[i].n_dims == 2)
            len += (size_t)snprintf(hdr + len, cap - len,
                                    ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%llu,%llu]}",
                                    g_t[i].name, ember_dt_name(dt), (long long)g_t[i].shape[0],
                                    (long long)g_t[i].shape[1], (unsigned long long)off,
                                    (unsigned long long)(off + n * esize));
        else
            len += (size_t)snprintf(hdr + len, cap - len,
                                    ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%llu,%llu]}",
                                    g_t[i].name, ember_dt_name(dt), (long long)g_t[i].shape[0],
                                    (unsigned long long)off, (unsigned long long)(off + n * esize));
        off += n * esize;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while ((len + 8) % 8)
        hdr[len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    uint64_t hl = len;
    for (int i = 0; i < 8; i++)
        fputc((int)((hl >> (8 * i)) & 0xff), f);
    fwrite(hdr, 1, len, f);
    free(hdr);
    /* values go out through a 1 MiB buffer: one fwrite per value made the
     * 1.2 GB Q model take 19 s */
    enum { BUF = 1 << 20 };
    unsigned char *buf = malloc(BUF);
    size_t used = 0;
    for (int i = 0; i < g_n; i++) {
        uint64_t n = (uint64_t)g_t[i].shape[0] * (uint64_t)(g_t[i].n_dims == 2 ? g_t[i].shape[1] : 1);
        for (uint64_t k = 0; k < n; k++) {
            float v = g_t[i].init == 1 ? 1.0f + 0.02f * gauss() : g_t[i].init == 2 ? 0.01f * gauss() : 0.02f * gauss();
            if (used + 4 > BUF) {
                fwrite(buf, 1, used, f);
                used = 0;
            }
            if (dt == EMBER_DT_F32) {
                memcpy(buf + used, &v, 4); /* little-endian hosts only, as safetensors */
                used += 4;
            } else {
                uint16_t h = dt == EMBER_DT_BF16 ? ember_f32_to_bf16(v) : ember_f32_to_f16(v);
                memcpy(buf + used, &h, 2);
                used += 2;
            }
        }
    }
    fwrite(buf, 1, used, f);
    free(buf);
    if (fclose(f) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    return off;
}

/* sentence-transformers Dense module DIR/NAME: linear.weight [out, in], no
 * bias, identity activation (EmbeddingGemma's 2_Dense and 3_Dense) */
static uint64_t write_dense(const char *dir, const char *name, int in, int out, ember_dt dt) {
    char sub[1024], text[512];
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    mkdir(sub, 0755);
    snprintf(text, sizeof text,
             "{\"in_features\":%d,\"out_features\":%d,\"bias\":false,"
             "\"activation_function\":\"torch.nn.modules.linear.Identity\"}\n", in, out);
    write_text(sub, "config.json", text);
    g_n = 0;
    add("linear.weight", out, in, 0);
    char path[1100];
    snprintf(path, sizeof path, "%s/model.safetensors", sub);
    return write_safetensors(path, dt);
}

static const char *torch_dtype(ember_dt dt) {
    return dt == EMBER_DT_BF16 ? "bfloat16" : dt == EMBER_DT_F16 ? "float16" : "float32";
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s A|B|Q|Q2|G|G2|X|M OUT_DIR [TOKENIZER_DIR] [--dtype F32|F16|BF16]\n",
                argv[0]);
        return 2;
    }
    const char *preset = argv[1];
    const int is_b = strcmp(preset, "B") == 0;
    const int is_q = strcmp(preset, "Q") == 0 || strcmp(preset, "Q2") == 0;
    const int is_g = strcmp(preset, "G") == 0 || strcmp(preset, "G2") == 0;
    const int is_x = strcmp(preset, "X") == 0, is_m = strcmp(preset, "M") == 0;
    if (!is_b && !is_q && !is_g && !is_x && !is_m && strcmp(preset, "A") != 0) {
        fprintf(stderr, "unknown preset %s (A, B, Q, Q2, G, G2, X, M)\n", preset);
        return 2;
    }
    const int layers = preset[1] == '2' ? 2 : is_q ? 28 : 24;
    const char *out = argv[2], *tok = NULL;
    /* the dtype the real checkpoint ships in, unless --dtype says otherwise */
    ember_dt dt = is_q ? EMBER_DT_BF16 : EMBER_DT_F32;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--dtype") == 0 && i + 1 < argc) {
            if (ember_dt_parse(argv[++i], &dt) != 0 ||
                (dt != EMBER_DT_F32 && dt != EMBER_DT_F16 && dt != EMBER_DT_BF16)) {
                fprintf(stderr, "--dtype must be F32, F16 or BF16\n");
                return 2;
            }
        } else {
            tok = argv[i];
        }
    }
    mkdir(out, 0755);
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/1_Pooling", out);
    mkdir(sub, 0755);
    if (is_q)
        qwen3_tensors(layers);
    else if (is_g)
        gemma3_tensors(layers);
    else if (is_b)
        modernbert_tensors();
    else if (is_x || is_m)
        base_tensors(is_m);
    else
        bert_tensors();
    char path[1100];
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    uint64_t bytes = write_safetensors(path, dt);
    const int n_tensors = g_n;

    char cfg[4096];
    if (is_q) {
        snprintf(cfg, sizeof cfg,
                 "{\"architectures\":[\"Qwen3Model\"],\"model_type\":\"qwen3\",\"hidden_size\":1024,"
                 "\"num_hidden_layers\":%d,\"num_attention_heads\":16,\"num_key_value_heads\":8,"
                 "\"head_dim\":128,\"intermediate_size\":3072,\"vocab_size\":151669,"
                 "\"max_position_embeddings\":32768,\"rms_norm_eps\":1e-06,\"rope_theta\":1000000,"
                 "\"rope_scaling\":null,\"hidden_act\":\"silu\",\"attention_bias\":false,"
                 "\"attention_dropout\":0.0,\"use_sliding_window\":false,\"sliding_window\":null,"
                 "\"max_window_layers\":%d,\"bos_token_id\":151643,\"eos_token_id\":151643,"
                 "\"initializer_range\":0.02,\"use_cache\":true,\"tie_word_embeddings\":true,"
                 "\"torch_dtype\":\"%s\",\"_name_or_path\":\"random-qwen3-embedding-0.6b-shapes\"}\n",
                 layers, layers, torch_dtype(dt));
        write_text(out, "config.json", cfg);
        write_text(out, "1_Pooling/config.json",
                   "{\"word_embedding_dimension\":1024,\"pooling_mode_cls_token\":false,"
                   "\"pooling_mode_mean_tokens\":false,\"pooling_mode_max_tokens\":false,"
                   "\"pooling_mode_mean_sqrt_len_tokens\":false,\"pooling_mode_weightedmean_tokens\":false,"
                   "\"pooling_mode_lasttoken\":true,\"include_prompt\":true}\n");
        write_text(out, "sentence_bert_config.json", "{\"max_seq_length\":32768,\"do_lower_case\":false}\n");
        write_text(out, "config_sentence_transformers.json",
                   "{\"prompts\":{\"query\":\"Instruct: Given a web search query, retrieve relevant "
                   "passages that answer the query\\nQuery:\",\"document\":\"\"},\"default_prompt_name\":null,"
                   "\"similarity_fn_name\":\"cosine\"}\n");
    } else if (is_g) {
        /* every sixth layer full, the others sliding: EmbeddingGemma's
         * layer_types; the 2-layer variant keeps one of each */
        char types[1024] = "";
        size_t tl = 0;
        for (int l = 0; l < layers; l++)
            tl += (size_t)snprintf(types + tl, sizeof types - tl, "%s\"%s\"", l ? "," : "",
                                   (layers == 2 ? l == 1 : (l + 1) % 6 == 0) ? "full_attention"
                                                                             : "sliding_attention");
        snprintf(cfg, sizeof cfg,
                 "{\"architectures\":[\"Gemma3TextModel\"],\"model_type\":\"gemma3_text\","
                 "\"_sliding_window_pattern\":6,\"attention_bias\":false,\"attention_dropout\":0.0,"
                 "\"attn_logit_softcapping\":null,\"bos_token_id\":2,\"eos_token_id\":1,\"pad_token_id\":0,"
                 "\"final_logit_softcapping\":null,\"head_dim\":256,\"hidden_activation\":\"gelu_pytorch_tanh\","
                 "\"hidden_size\":768,\"initializer_range\":0.02,\"intermediate_size\":1152,"
                 "\"layer_types\":[%s],\"max_position_embeddings\":2048,\"num_attention_heads\":3,"
                 "\"num_hidden_layers\":%d,\"num_key_value_heads\":1,\"query_pre_attn_scalar\":256,"
                 "\"rms_norm_eps\":1e-06,\"rope_local_base_freq\":10000.0,\"rope_scaling\":null,"
                 "\"rope_theta\":1000000.0,\"sliding_window\":512,\"use_bidirectional_attention\":true,"
                 "\"use_cache\":true,\"vocab_size\":262144,\"dtype\":\"%s\","
                 "\"_name_or_path\":\"random-embeddinggemma-300m-shapes\"}\n",
                 types, layers, torch_dtype(dt));
        write_text(out, "config.json", cfg);
        write_text(out, "1_Pooling/config.json",
                   "{\"word_embedding_dimension\":768,\"pooling_mode_cls_token\":false,"
                   "\"pooling_mode_mean_tokens\":true,\"pooling_mode_max_tokens\":false,"
                   "\"pooling_mode_mean_sqrt_len_tokens\":false,\"pooling_mode_weightedmean_tokens\":false,"
                   "\"pooling_mode_lasttoken\":false,\"include_prompt\":true}\n");
        write_text(out, "sentence_bert_config.json", "{\"max_seq_length\":2048,\"do_lower_case\":false}\n");
        write_text(out, "config_sentence_transformers.json",
                   "{\"prompts\":{\"query\":\"task: search result | query: \","
                   "\"document\":\"title: none | text: \",\"Classification\":\"task: classification | query: \","
                   "\"STS\":\"task: sentence similarity | query: \"},\"default_prompt_name\":null,"
                   "\"similarity_fn_name\":\"cosine\"}\n");
        bytes += write_dense(out, "2_Dense", 768, 3072, dt);
        bytes += write_dense(out, "3_Dense", 3072, 768, dt);
    } else if (is_b) {
        write_text(out, "config.json",
                   "{\"architectures\":[\"ModernBertModel\"],\"model_type\":\"modernbert\",\"hidden_size\":768,"
                   "\"num_hidden_layers\":22,\"num_attention_heads\":12,\"intermediate_size\":1152,"
                   "\"vocab_size\":50368,\"max_position_embeddings\":8192,\"norm_eps\":1e-05,"
                   "\"norm_bias\":false,\"attention_bias\":false,\"mlp_bias\":false,"
                   "\"hidden_activation\":\"gelu\",\"global_attn_every_n_layers\":3,"
                   "\"global_rope_theta\":160000.0,\"local_rope_theta\":10000.0,\"local_attention\":128,"
                   "\"pad_token_id\":50283,\"_name_or_path\":\"random-modernbert-embed-base-shapes\"}\n");
        write_text(out, "1_Pooling/config.json",
                   "{\"word_embedding_dimension\":768,\"pooling_mode_mean_tokens\":true}\n");
        write_text(out, "sentence_bert_config.json", "{\"max_seq_length\":8192,\"do_lower_case\":false}\n");
        write_text(out, "config_sentence_transformers.json",
                   "{\"prompts\":{\"query\":\"search_query: \",\"document\":\"search_document: \"},"
                   "\"default_prompt_name\":null}\n");
    } else if (is_x) {
        write_text(out, "config.json",
                   "{\"architectures\":[\"XLMRobertaModel\"],\"model_type\":\"xlm-roberta\","
                   "\"hidden_size\":768,\"num_hidden_layers\":12,\"num_attention_heads\":12,"
                   "\"intermediate_size\":3072,\"vocab_size\":250002,\"max_position_embeddings\":514,"
                   "\"type_vocab_size\":1,\"layer_norm_eps\":1e-05,\"hidden_act\":\"gelu\","
                   "\"pad_token_id\":1,\"bos_token_id\":0,\"eos_token_id\":2,"
                   "\"position_embedding_type\":\"absolute\","
                   "\"_name_or_path\":\"random-multilingual-e5-base-shapes\"}\n");
        write_text(out, "1_Pooling/config.json",
                   "{\"word_embedding_dimension\":768,\"pooling_mode_mean_tokens\":true}\n");
        write_text(out, "sentence_bert_config.json", "{\"max_seq_length\":512,\"do_lower_case\":false}\n");
    } else if (is_m) {
        write_text(out, "config.json",
                   "{\"architectures\":[\"MPNetModel\"],\"model_type\":\"mpnet\",\"hidden_size\":768,"
                   "\"num_hidden_layers\":12,\"num_attention_heads\":12,\"intermediate_size\":3072,"
                   "\"vocab_size\":30527,\"max_position_embeddings\":514,\"layer_norm_eps\":1e-05,"
                   "\"hidden_act\":\"gelu\",\"pad_token_id\":1,\"bos_token_id\":0,\"eos_token_id\":2,"
                   "\"relative_attention_num_buckets\":32,"
                   "\"_name_or_path\":\"random-all-mpnet-base-v2-shapes\"}\n");
        write_text(out, "1_Pooling/config.json",
                   "{\"word_embedding_dimension\":768,\"pooling_mode_mean_tokens\":true}\n");
        write_text(out, "sentence_bert_config.json", "{\"max_seq_length\":512,\"do_lower_case\":false}\n");
    } else {
        write_text(out, "config.json",
                   "{\"architectures\":[\"BertModel\"],\"model_type\":\"bert\",\"hidden_size\":384,"
                   "\"num_hidden_layers\":12,\"num_attention_heads\":12,\"intermediate_size\":1536,"
                   "\"vocab_size\":30522,\"max_position_embeddings\":512,\"type_vocab_size\":2,"
                   "\"layer_norm_eps\":1e-12,\"hidden_act\":\"gelu\",\"pad_token_id\":0,"
                   "\"_name_or_path\":\"random-bge-small-en-v1.5-shapes\"}\n");
        write_text(out, "1_Pooling/config.json",
                   "{\"word_embedding_dimension\":384,\"pooling_mode_cls_token\":true}\n");
        write_text(out, "sentence_bert_config.json", "{\"max_seq_length\":512,\"do_lower_case\":false}\n");
    }
    if (is_g)
        write_text(out, "modules.json",
                   "[{\"idx\":0,\"name\":\"0\",\"path\":\"\",\"type\":\"sentence_transformers.models.Transformer\"},"
                   "{\"idx\":1,\"name\":\"1\",\"path\":\"1_Pooling\",\"type\":\"sentence_transformers.models.Pooling\"},"
                   "{\"idx\":2,\"name\":\"2\",\"path\":\"2_Dense\",\"type\":\"sentence_transformers.models.Dense\"},"
                   "{\"idx\":3,\"name\":\"3\",\"path\":\"3_Dense\",\"type\":\"sentence_transformers.models.Dense\"},"
                   "{\"idx\":4,\"name\":\"4\",\"path\":\"4_Normalize\",\"type\":\"sentence_transformers.models.Normalize\"}]\n");
    else
        write_text(out, "modules.json",
                   "[{\"idx\":0,\"name\":\"0\",\"path\":\"\",\"type\":\"sentence_transformers.models.Transformer\"},"
                   "{\"idx\":1,\"name\":\"1\",\"path\":\"1_Pooling\",\"type\":\"sentence_transformers.models.Pooling\"},"
                   "{\"idx\":2,\"name\":\"2\",\"path\":\"2_Normalize\",\"type\":\"sentence_transformers.models.Normalize\"}]\n");
    if (tok) {
        const char *files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                               "vocab.txt"};
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
            copy_file(tok, out, files[i]);
    }
    printf("wrote %s: %d tensors, %.1f MB of %s weights\n", out, n_tensors, (double)bytes / 1e6,
           ember_dt_name(dt));
    return 0;
}
