/*
 * tei.c — the rest of text-embeddings-inference's API (router/src/http/
 * server.rs and types.rs): POST /rerank, /tokenize, /decode, /similarity,
 * /embed_all, and POST / for a reranker. Answered synchronously on the HTTP
 * thread with a context of their own (one at a time, under a mutex): the
 * merging batcher stays for /embed and /v1/embeddings.
 *
 * Errors have TEI's body {"error", "error_type"} and TEI's statuses:
 * malformed JSON 400 (axum's rejection), Validation 413, Tokenizer 422,
 * Backend 424 (e.g. /rerank on an embedding model), Empty 400.
 */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static ember_ctx *g_ctx;

typedef struct tei_err {
    int status;
    const char *type;
    char msg[300];
} tei_err;

static int fail(sbuf *out, int status, const char *type, const char *msg) {
    srv_error e;
    srv_error_set(&e, status, type, "%s", msg);
    srv_render_error(API_TEI, &e, out);
    return status;
}

static ember_ctx *get_ctx(const srv_model *sm, const srv_config *cfg) {
    if (!g_ctx) {
        ember_ctx_params p = ember_ctx_default_params();
        p.n_threads = cfg->threads;
        p.max_batch = cfg->max_batch_size;
        p.max_batch_tokens = cfg->max_batch_tokens;
        if (ember_ctx_init(sm->model, &p, &g_ctx) != EMBER_OK)
            g_ctx = NULL;
    }
    return g_ctx;
}

void srv_tei_shutdown(void) {
    pthread_mutex_lock(&g_mu);
    ember_ctx_free(g_ctx);
    g_ctx = NULL;
    pthread_mutex_unlock(&g_mu);
}

static int status_of(ember_status st, const char **type) {
    switch (st) {
    case EMBER_E_TOO_LONG:
    case EMBER_E_INVALID_ARGUMENT:
        *type = "Validation";
        return 413;
    case EMBER_E_UNSUPPORTED:
        *type = "Backend";
        return 424;
    default:
        *type = "Backend";
        return 424;
    }
}

static int lib_fail(sbuf *out, ember_status st) {
    const char *type;
    int status = status_of(st, &type);
    return fail(out, status, type, ember_last_error());
}

/* A string or a list of strings (not empty). */
static bool get_texts(json_t *x, const char ***texts, size_t **lens, size_t *n) {
    if (json_is_string(x)) {
        *n = 1;
    } else if (json_is_array(x) && json_array_size(x) > 0) {
        *n = json_array_size(x);
        for (size_t i = 0; i < *n; i++)
            if (!json_is_string(json_array_get(x, i)))
                return false;
    } else {
        return false;
    }
    *texts = calloc(*n, sizeof **texts);
    *lens = calloc(*n, sizeof **lens);
    if (!*texts || !*lens)
        return false;
    for (size_t i = 0; i < *n; i++) {
        json_t *s = json_is_string(x) ? x : json_array_get(x, i);
        (*texts)[i] = json_string_value(s);
        (*lens)[i] = json_string_length(s);
    }
    return true;
}

static bool opt_bool(json_t *root, const char *key, bool def) {
    json_t *x = json_object_get(root, key);
    return json_is_boolean(x) ? json_is_true(x) : def;
}

static const float *g_sort_scores;
static int by_score(const void *a, const void *b) {
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (g_sort_scores[i] != g_sort_scores[j])
        return g_sort_scores[i] > g_sort_scores[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* POST /rerank {query, texts, truncate, truncation_direction, raw_scores,
 * return_text} -> [{"index", "score", "text"?}] best first */
static int do_rerank(const srv_model *sm, const srv_config *cfg, json_t *root, sbuf *out) {
    if (!ember_model_num_labels(sm->model))
        return fail(out, 424, "Backend", "model is not a re-ranker model");
    json_t *q = json_object_get(root, "query"), *t = json_object_get(root, "texts");
    const char **texts = NULL;
    size_t *lens = NULL, n = 0;
    if (!json_is_string(q) || !json_is_array(t) || !get_texts(t, &texts, &lens, &n)) {
        free(texts);
        free(lens);
        if (json_is_array(t) && json_array_size(t) == 0)
            return fail(out, 400, "Empty", "`texts` cannot be empty");
        return fail(out, 422, "Validation",
                    "`query` must be a string and `texts` a non-empty list of strings");
    }
    if (n > (size_t)cfg->max_client_batch) {
        free(texts);
        free(lens);
        char m[160];
        snprintf(m, sizeof m, "batch size %zu > maximum allowed batch size %d", n,
                 cfg->max_client_batch);
        return fail(out, 413, "Validation", m);
    }
    ember_rerank_options o = ember_rerank_default_options();
    o.raw_scores = opt_bool(root, "raw_scores", false);
    o.truncate = opt_bool(root, "truncate", cfg->auto_truncate);
    const int32_t nl = ember_model_num_labels(sm->model);
    float *sc = calloc(n * (size_t)nl, sizeof *sc), *first = calloc(n, sizeof *first);
    size_t *order = calloc(n, sizeof *order);
    int status = 200;
    pthread_mutex_lock(&g_mu);
    ember_ctx *ctx = get_ctx(sm, cfg);
    ember_status st = !sc || !first || !order ? EMBER_E_NOMEM
                      : ctx ? ember_rerank(ctx, json_string_value(q), json_string_length(q), texts,
                                           lens, (int64_t)n, &o, sc, (int64_t)(n * (size_t)nl), NULL)
                            : EMBER_E_NOMEM;
    pthread_mutex_unlock(&g_mu);
    if (st != EMBER_OK) {
        status = lib_fail(out, st);
    } else {
        for (size_t i = 0; i < n; i++) {
            first[i] = sc[i * (size_t)nl];
            order[i] = i;
        }
        pthread_mutex_lock(&g_mu);
        g_sort_scores = first;
        qsort(order, n, sizeof *order, by_score);
        pthread_mutex_unlock(&g_mu);
        bool rt = opt_bool(root, "return_text", false);
        sb_puts(out, "[");
        for (size_t k = 0; k < n; k++) {
            size_t i = order[k];
            sb_printf(out, "%s{\"index\":%zu,", k ? "," : "", i);
            if (rt) {
                sb_puts(out, "\"text\":");
                sb_json_str(out, texts[i], lens[i]);
                sb_puts(out, ",");
            }
            sb_puts(out, "\"score\":");
            sb_json_float(out, first[i]);
            sb_puts(out, "}");
        }
        sb_puts(out, "]");
    }
    free(sc);
    free(first);
    free(order);
    free(texts);
    free(lens);
    return status;
}

/* POST /tokenize {inputs, add_special_tokens} -> [[{id, text, special,
 * start, stop}]] with byte offsets, specials with null offsets */
static int do_tokenize(const srv_model *sm, const srv_config *cfg, json_t *root, sbuf *out) {
    (void)cfg;
    if (!sm->tok)
        return fail(out, 422, "Tokenizer", "the model has no tokenizer");
    const char **texts = NULL;
    size_t *lens = NULL, n = 0;
    if (!get_texts(json_object_get(root, "inputs"), &texts, &lens, &n)) {
        free(texts);
        free(lens);
        return fail(out, 422, "Validation", "`inputs` must be a string or a list of strings");
    }
    ember_tokenize_options to = ember_tokenize_default_options();
    to.add_special_tokens = opt_bool(root, "add_special_tokens", true);
    ember_encoding *enc = NULL;
    int status = 200;
    if (ember_encoding_new(&enc) != EMBER_OK) {
        status = fail(out, 424, "Backend", "out of memory");
        n = 0;
    } else {
        sb_puts(out, "[");
    }
    for (size_t i = 0; i < n && status == 200; i++) {
        if (ember_tokenize(sm->tok, texts[i], lens[i], &to, enc) != EMBER_OK) {
            out->len = 0;
            status = fail(out, 422, "Tokenizer", ember_last_error());
            break;
        }
        const int32_t *ids = ember_encoding_ids(enc);
        const int64_t *off = ember_encoding_byte_offsets(enc);
        const uint8_t *sp = ember_encoding_special_mask(enc);
        sb_puts(out, i ? ",[" : "[");
        for (int64_t k = 0; k < ember_encoding_length(enc); k++) {
            sb_printf(out, "%s{\"id\":%d,\"text\":", k ? "," : "", ids[k]);
            if (sp[k]) {
                const char *tk = ember_encoding_token(enc, k);
                sb_json_str(out, tk, strlen(tk));
                sb_puts(out, ",\"special\":true,\"start\":null,\"stop\":null}");
            } else {
                size_t s = (size_t)off[2 * k], e = (size_t)off[2 * k + 1];
                sb_json_str(out, texts[i] + s, e - s);
                sb_printf(out, ",\"special\":false,\"start\":%zu,\"stop\":%zu}", s, e);
            }
        }
        sb_puts(out, "]");
    }
    if (status == 200)
        sb_puts(out, "]");
    ember_encoding_free(enc);
    free(texts);
    free(lens);
    return status;
}

/* ---- /decode: the decoder of tokenizer.json ---- */

typedef enum { DEC_NONE, DEC_WORDPIECE, DEC_METASPACE, DEC_BYTELEVEL, DEC_SPM_SEQ } dec_kind;
static dec_kind g_dec = DEC_NONE;
static bool g_dec_loaded;
static char g_dec_prefix[16] = "##";

static void load_decoder(const srv_model *sm) {
    if (g_dec_loaded)
        return;
    g_dec_loaded = true;
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", sm->info.directory);
    json_t *root = json_load_file(path, 0, NULL);
    json_t *d = json_object_get(root, "decoder");
    const char *type = json_string_value(json_object_get(d, "type"));
    if (type && !strcmp(type, "WordPiece")) {
        g_dec = DEC_WORDPIECE;
        const char *p = json_string_value(json_object_get(d, "prefix"));
        if (p && strlen(p) < sizeof g_dec_prefix)
            strcpy(g_dec_prefix, p);
    } else if (type && !strcmp(type, "Metaspace")) {
        g_dec = DEC_METASPACE;
    } else if (type && !strcmp(type, "ByteLevel")) {
        g_dec = DEC_BYTELEVEL;
    } else if (type && !strcmp(type, "Sequence")) {
        g_dec = DEC_SPM_SEQ; /* Replace ▁ -> " ", ByteFallback, Fuse, Strip (Llama-style) */
    }
    json_decref(root);
}

/* GPT-2's byte-to-unicode map, reversed: code point -> byte, or -1 */
static int bytelevel_byte(uint32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
        return (int)cp;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))
            continue;
        if (cp == (uint32_t)(256 + n))
            return b;
        n++;
    }
    return -1;
}

static void decode_one(const srv_model *sm, json_t *ids, bool skip_special, sbuf *text) {
    for (size_t k = 0; k < json_array_size(ids); k++) {
        int32_t id = (int32_t)json_integer_value(json_array_get(ids, k));
        const char *tok = ember_tokenizer_id_to_token(sm->tok, id);
        if (!tok)
            continue;
        size_t tl = strlen(tok);
        bool special = tl > 2 && ((tok[0] == '[' && tok[tl - 1] == ']') ||
                                  (tok[0] == '<' && tok[tl - 1] == '>'));
        if (special && skip_special)
            continue;
        switch (g_dec) {
        case DEC_WORDPIECE: {
            size_t pl = strlen(g_dec_prefix);
            if (!strncmp(tok, g_dec_prefix, pl))
                sb_puts(text, tok + pl);
            else {
                if (text->len)
                    sb_puts(text, " ");
                sb_puts(text, tok);
            }
            break;
        }
        case DEC_BYTELEVEL: {
            const unsigned char *p = (const unsigned char *)tok;
            while (*p) {
                uint32_t cp = *p;
                int len = 1;
                if (cp >= 0xC0 && p[1]) {
                    cp = ((cp & 0x1F) << 6) | (p[1] & 0x3F);
                    len = 2;
                }
                int b = bytelevel_byte(cp);
                char c = (char)(b < 0 ? '?' : b);
                sb_put(text, &c, 1);
                p += len;
            }
            break;
        }
        default: { /* Metaspace and SentencePiece sequences: ▁ is a space */
            const char *p = tok;
            while (*p) {
                if (!strncmp(p, "\xe2\x96\x81", 3)) {
                    sb_puts(text, " ");
                    p += 3;
                } else {
                    sb_put(text, p, 1);
                    p++;
                }
            }
        }
        }
    }
}

/* POST /decode {ids: [u32] | [[u32]], skip_special_tokens} -> [string] */
static int do_decode(const srv_model *sm, const srv_config *cfg, json_t *root, sbuf *out) {
    (void)cfg;
    if (!sm->tok)
        return fail(out, 422, "Tokenizer", "the model has no tokenizer");
    load_decoder(sm);
    if (g_dec == DEC_NONE)
        return fail(out, 422, "Tokenizer",
                    "the tokenizer has no decoder Ember implements (WordPiece, Metaspace, "
                    "ByteLevel)");
    json_t *ids = json_object_get(root, "ids");
    if (!json_is_array(ids) || json_array_size(ids) == 0)
        return fail(out, 422, "Validation", "`ids` must be a list of token ids or of lists");
    bool nested = json_is_array(json_array_get(ids, 0));
    size_t n = nested ? json_array_size(ids) : 1;
    for (size_t i = 0; i < n; i++) {
        json_t *row = nested ? json_array_get(ids, i) : ids;
        if (!json_is_array(row))
            return fail(out, 422, "Validation", "`ids` must be a list of token ids or of lists");
        for (size_t k = 0; k < json_array_size(row); k++) {
            json_t *v = json_array_get(row, k);
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) >= sm->vocab)
                return fail(out, 422, "Tokenizer", "token id outside the vocabulary");
        }
    }
    bool skip = opt_bool(root, "skip_special_tokens", true);
    sb_puts(out, "[");
    for (size_t i = 0; i < n; i++) {
        sbuf t = {0};
        decode_one(sm, nested ? json_array_get(ids, i) : ids, skip, &t);
        size_t len = 0;
        char *s = sb_take(&t, &len);
        const char *p = s ? s : "";
        if (g_dec != DEC_WORDPIECE && g_dec != DEC_BYTELEVEL && len && p[0] == ' ') {
            p++; /* Metaspace: the prepended space goes */
            len--;
        }
        if (i)
            sb_puts(out, ",");
        sb_json_str(out, p, len);
        free(s);
    }
    sb_puts(out, "]");
    return 200;
}

/* The texts of /similarity and /embed_all through the shared context. */
static ember_embed_options embed_opts(const srv_model *sm, const srv_config *cfg, json_t *root) {
    ember_embed_options o = ember_embed_default_options();
    o.truncate = opt_bool(root, "truncate", cfg->auto_truncate);
    const char *dir = json_string_value(json_object_get(root, "truncation_direction"));
    if (dir && (!strcmp(dir, "Left") || !strcmp(dir, "left")))
        o.truncation_side = EMBER_TRUNCATE_LEFT;
    const char *pn = json_string_value(json_object_get(root, "prompt_name"));
    o.prompt = pn ? ember_model_prompt(sm->model, pn) : sm->default_prompt;
    return o;
}

/* POST /similarity {inputs: {source_sentence, sentences}, ...} -> [f32] */
static int do_similarity(const srv_model *sm, const srv_config *cfg, json_t *root, sbuf *out) {
    if (ember_model_num_labels(sm->model))
        return fail(out, 424, "Backend", "model is not an embedding model");
    json_t *in = json_object_get(root, "inputs");
    json_t *src = json_object_get(in, "source_sentence"), *ss = json_object_get(in, "sentences");
    const char **texts = NULL;
    size_t *lens = NULL, n = 0;
    if (!json_is_string(src) || !json_is_array(ss) || json_array_size(ss) == 0)
        return fail(out, 422, "Validation",
                    "`inputs` must be {\"source_sentence\": string, \"sentences\": [string]}");
    json_t *all = json_array();
    json_array_append(all, src);
    json_array_extend(all, ss);
    if (!get_texts(all, &texts, &lens, &n)) {
        json_decref(all);
        free(texts);
        free(lens);
        return fail(out, 422, "Validation", "`sentences` must be strings");
    }
    ember_embed_options o = embed_opts(sm, cfg, root);
    o.normalize = 1;
    float *v = calloc(n * (size_t)sm->dim, sizeof *v);
    pthread_mutex_lock(&g_mu);
    ember_ctx *ctx = get_ctx(sm, cfg);
    ember_status st = v && ctx ? ember_embed_texts(ctx, texts, lens, (int64_t)n, &o, v,
                                                   (int64_t)(n * (size_t)sm->dim), NULL)
                               : EMBER_E_NOMEM;
    pthread_mutex_unlock(&g_mu);
    int status = 200;
    if (st != EMBER_OK) {
        status = lib_fail(out, st);
    } else {
        sb_puts(out, "[");
        for (size_t i = 1; i < n; i++) {
            double dot = 0;
            for (int32_t d = 0; d < sm->dim; d++)
                dot += (double)v[d] * v[i * (size_t)sm->dim + (size_t)d];
            if (i > 1)
                sb_puts(out, ",");
            sb_json_float(out, (float)dot);
        }
        sb_puts(out, "]");
    }
    free(v);
    free(texts);
    free(lens);
    json_decref(all);
    return status;
}

/* POST /embed_all {inputs, truncate, ...} -> [[[f32]]] one vector per token */
static int do_embed_all(const srv_model *sm, const srv_config *cfg, json_t *root, sbuf *out) {
    const char **texts = NULL;
    size_t *lens = NULL, n = 0;
    if (!get_texts(json_object_get(root, "inputs"), &texts, &lens, &n)) {
        free(texts);
        free(lens);
        return fail(out, 422, "Validation", "`inputs` must be a string or a list of strings");
    }
    ember_embed_options o = embed_opts(sm, cfg, root);
    int32_t *ids = NULL;
    int64_t *offs = NULL;
    int status = 200;
    ember_status st = ember_model_tokenize_texts(sm->model, texts, lens, (int64_t)n, &o, &ids,
                                                 &offs, NULL);
    float *h = NULL;
    const int32_t H = sm->info.hidden_size;
    if (st == EMBER_OK) {
        h = calloc((size_t)offs[n] * (size_t)H, sizeof *h);
        pthread_mutex_lock(&g_mu);
        ember_ctx *ctx = get_ctx(sm, cfg);
        st = h && ctx ? ember_embed_tokens_all(ctx, ids, offs, (int64_t)n, h,
                                               offs[n] * (int64_t)H, NULL)
                      : EMBER_E_NOMEM;
        pthread_mutex_unlock(&g_mu);
    }
    if (st != EMBER_OK) {
        status = st == EMBER_E_TOO_LONG ? fail(out, 413, "Validation", ember_last_error())
                                        : lib_fail(out, st);
    } else {
        sb_puts(out, "[");
        for (size_t i = 0; i < n; i++) {
            sb_puts(out, i ? ",[" : "[");
            for (int64_t t = offs[i]; t < offs[i + 1]; t++) {
                sb_puts(out, t > offs[i] ? ",[" : "[");
                for (int32_t d = 0; d < H; d++) {
                    if (d)
                        sb_puts(out, ",");
                    sb_json_float(out, h[t * H + d]);
                }
                sb_puts(out, "]");
            }
            sb_puts(out, "]");
        }
        sb_puts(out, "]");
    }
    free(h);
    ember_free(ids);
    ember_free(offs);
    free(texts);
    free(lens);
    return status;
}

int srv_tei_route(const char *url) {
    static const char *const k[] = {NULL, "/", "/rerank", "/tokenize", "/decode", "/similarity",
                                    "/embed_all"};
    for (int i = 1; i < (int)(sizeof k / sizeof k[0]); i++)
        if (!strcmp(url, k[i]))
            return i;
    return 0;
}

int srv_tei_handle(const srv_model *sm, const srv_config *cfg, int route, const char *body,
                   size_t len, sbuf *out) {
    json_error_t je;
    json_t *root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (route == SRV_TEI_ROOT && !ember_model_num_labels(sm->model)) {
        /* POST / on an embedding model: /similarity's body (what
         * InferenceClient.sentence_similarity sends), else /embed's */
        if (json_is_object(json_object_get(root, "inputs")))
            route = SRV_TEI_SIMILARITY;
        else {
            json_decref(root);
            return -1;
        }
    }
    if (!json_is_object(root)) {
        json_decref(root);
        char m[256];
        snprintf(m, sizeof m, "Failed to parse the request body as JSON: %s", je.text);
        return fail(out, 422, "Validation", m);
    }
    int status;
    switch (route) {
    case SRV_TEI_ROOT:
    case SRV_TEI_RERANK:
        status = do_rerank(sm, cfg, root, out);
        break;
    case SRV_TEI_TOKENIZE:
        status = do_tokenize(sm, cfg, root, out);
        break;
    case SRV_TEI_DECODE:
        status = do_decode(sm, cfg, root, out);
        break;
    case SRV_TEI_SIMILARITY:
        status = do_similarity(sm, cfg, root, out);
        break;
    default:
        status = do_embed_all(sm, cfg, root, out);
        break;
    }
    json_decref(root);
    return status;
}
