/*
 * api.c — the two embedding APIs: request bodies in, jobs out; finished jobs
 * in, JSON bodies out.
 *
 *   POST /v1/embeddings (OpenAI)  {"input", "model", "encoding_format",
 *                                  "dimensions", "user"}
 *   POST /embed (TEI)             {"inputs", "normalize", "truncate",
 *                                  "truncation_direction", "prompt_name",
 *                                  "dimensions"}
 *
 * Inputs are a string, a list of strings, a list of token ids (one input) or
 * a list whose items are strings or token-id lists. Texts are tokenized here,
 * on the HTTP thread, by ember_model_tokenize() (the tokenization of
 * ember_embed_texts(): prompt prepended, special tokens, truncation to the
 * model's limit), so a bad or too-long
 * input is answered before it takes a place in the queue, and the batcher
 * knows each job's token count. Token ids are used as given and never cut.
 *
 * JSON is parsed by jansson: invalid UTF-8 anywhere in the body, unpaired
 * surrogate escapes, duplicate keys and nesting deeper than 2048 levels are
 * rejected with 400 (RFC 8259 requires UTF-8; a service should not guess).
 * Escaped NUL characters are allowed inside strings and embedded as text.
 *
 * Status codes: 400 malformed or ill-typed requests; 413 more inputs than
 * --max-client-batch; too long inputs (with truncation off) 422 on /embed
 * and 400 on /v1/embeddings, as OpenAI does.
 */
#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"

void srv_error_set(srv_error *e, int status, const char *type, const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->oai_code = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

void srv_job_free(srv_job *job) {
    if (!job)
        return;
    free(job->ids);
    free(job->offsets);
    free(job->vecs);
    free(job);
}

void srv_opts_free(srv_embed_opts *o) {
    free(o->model_echo);
    o->model_echo = NULL;
}

/* ---- options ---- */

/* Reads an optional boolean; null counts as absent. */
static bool opt_bool(json_t *root, const char *key, int *v, srv_error *err) {
    json_t *x = json_object_get(root, key);
    if (!x || json_is_null(x))
        return true;
    if (!json_is_boolean(x)) {
        srv_error_set(err, 400, "Validation", "`%s` must be a boolean", key);
        return false;
    }
    *v = json_is_true(x);
    return true;
}

static bool opt_dimensions(const srv_model *sm, json_t *root, int32_t *dims, srv_error *err) {
    json_t *x = json_object_get(root, "dimensions");
    if (!x || json_is_null(x))
        return true;
    if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > sm->dim) {
        srv_error_set(err, 400, "Validation", "`dimensions` must be an integer in [1, %d]", sm->dim);
        return false;
    }
    *dims = (int32_t)json_integer_value(x);
    return true;
}

/* ---- inputs ---- */

typedef struct builder {
    srv_job *job;
    int64_t ids_cap;
    ember_encoding *enc;
} builder;

static bool push_ids(builder *bd, const int32_t *ids, int64_t k) {
    srv_job *j = bd->job;
    if (j->n_tokens + k > bd->ids_cap) {
        int64_t cap = bd->ids_cap ? bd->ids_cap : 256;
        while (cap < j->n_tokens + k)
            cap *= 2;
        int32_t *p = realloc(j->ids, sizeof(int32_t) * (size_t)cap);
        if (!p)
            return false;
        j->ids = p;
        bd->ids_cap = cap;
    }
    if (k)
        memcpy(j->ids + j->n_tokens, ids, sizeof(int32_t) * (size_t)k);
    j->n_tokens += k;
    return true;
}

static void too_long(srv_error *err, srv_api api, int64_t i, int64_t k, int32_t max) {
    if (api == API_OPENAI) {
        srv_error_set(err, 400, "Validation",
                      "input %lld has %lld tokens; this model's maximum context length is %d "
                      "tokens (the server truncates only with --auto-truncate)",
                      (long long)i, (long long)k, max);
        err->oai_code = "context_length_exceeded";
    } else {
        srv_error_set(err, 422, "Validation",
                      "input %lld has %lld tokens; the model accepts at most %d (send "
                      "\"truncate\": true to cut it)",
                      (long long)i, (long long)k, max);
    }
}

/* What applies to the text inputs of one request: the library's embedding
 * options (prompt, truncation), which ember_model_tokenize() applies exactly
 * as ember_embed_texts() would. */
typedef struct text_opts {
    ember_embed_options eo;
} text_opts;

static bool add_text(const srv_model *sm, srv_api api, builder *bd, const text_opts *t, int64_t i,
                     const char *s, size_t len, srv_embed_opts *o, srv_error *err) {
    ember_status st = ember_model_tokenize(sm->model, s, len, &t->eo, bd->enc);
    if (st == EMBER_E_TOO_LONG) {
        too_long(err, api, i, ember_encoding_length(bd->enc), sm->max_tokens);
        return false;
    }
    if (st == EMBER_E_NOMEM)
        goto oom;
    if (st == EMBER_E_UNSUPPORTED) { /* no tokenizer, or a prompt with include_prompt: false */
        srv_error_set(err, 400, "Validation", "input %lld: %s", (long long)i, ember_last_error());
        return false;
    }
    if (st != EMBER_OK) {
        srv_error_set(err, api == API_TEI ? 422 : 400, "Tokenizer", "input %lld: %s",
                      (long long)i, ember_last_error());
        return false;
    }
    if (ember_encoding_flags(bd->enc) & EMBER_ENCODING_TRUNCATED)
        o->n_truncated++;
    if (!push_ids(bd, ember_encoding_ids(bd->enc), ember_encoding_length(bd->enc)))
        goto oom;
    return true;
oom:
    srv_error_set(err, 500, "Backend", "out of memory");
    return false;
}

static bool add_ids(const srv_model *sm, srv_api api, builder *bd, int64_t i, json_t *arr,
                    srv_error *err) {
    size_t k = json_array_size(arr);
    if (k == 0) {
        srv_error_set(err, 400, "Empty", "input %lld is an empty list of token ids", (long long)i);
        return false;
    }
    if ((int64_t)k > sm->max_tokens) {
        too_long(err, api, i, (int64_t)k, sm->max_tokens);
        return false;
    }
    int32_t buf[256];
    size_t used = 0;
    for (size_t t = 0; t < k; t++) {
        json_t *x = json_array_get(arr, t);
        if (!json_is_integer(x)) {
            srv_error_set(err, 400, "Validation", "input %lld: token ids must be integers",
                          (long long)i);
            return false;
        }
        json_int_t v = json_integer_value(x);
        if (v < 0 || v >= sm->vocab) {
            srv_error_set(err, 400, "Validation",
                          "input %lld: token id %lld is outside the vocabulary [0, %d)",
                          (long long)i, (long long)v, sm->vocab);
            return false;
        }
        buf[used++] = (int32_t)v;
        if (used == 256 || t + 1 == k) {
            if (!push_ids(bd, buf, (int64_t)used)) {
                srv_error_set(err, 500, "Backend", "out of memory");
                return false;
            }
            used = 0;
        }
    }
    return true;
}

static bool is_id_list(json_t *x) {
    return json_is_array(x) && (json_array_size(x) == 0 || json_is_integer(json_array_get(x, 0)));
}

/* ---- the request ---- */

static bool parse_options(const srv_model *sm, const srv_config *cfg, srv_api api, json_t *root,
                          srv_embed_opts *o, text_opts *t, srv_error *err) {
    int normalize = api == API_TEI ? 1 : sm->normalize; /* TEI defaults to true */
    int truncate = cfg->auto_truncate;
    ember_truncation_side side = EMBER_TRUNCATE_RIGHT;
    const char *prompt = sm->default_prompt;
    o->dims = sm->dim;
    if (!opt_dimensions(sm, root, &o->dims, err))
        return false;
    if (api == API_TEI) {
        if (!opt_bool(root, "normalize", &normalize, err) ||
            !opt_bool(root, "truncate", &truncate, err))
            return false;
        json_t *d = json_object_get(root, "truncation_direction");
        if (d && !json_is_null(d)) {
            const char *v = json_is_string(d) ? json_string_value(d) : "";
            if (strcasecmp(v, "left") == 0)
                side = EMBER_TRUNCATE_LEFT;
            else if (strcasecmp(v, "right") != 0) {
                srv_error_set(err, 400, "Validation",
                              "`truncation_direction` must be \"Left\" or \"Right\"");
                return false;
            }
        }
    } else {
        json_t *f = json_object_get(root, "encoding_format");
        if (f && !json_is_null(f)) {
            const char *v = json_is_string(f) ? json_string_value(f) : "";
            if (strcmp(v, "base64") == 0)
                o->base64 = true;
            else if (strcmp(v, "float") != 0) {
                srv_error_set(err, 400, "Validation",
                              "`encoding_format` must be \"float\" or \"base64\"");
                return false;
            }
        }
        json_t *m = json_object_get(root, "model");
        if (m && !json_is_null(m)) {
            if (!json_is_string(m)) {
                srv_error_set(err, 400, "Validation", "`model` must be a string");
                return false;
            }
            o->model_echo = strndup(json_string_value(m), json_string_length(m));
            if (!o->model_echo) {
                srv_error_set(err, 500, "Backend", "out of memory");
                return false;
            }
        }
    }
    /* prompt_name: TEI field, accepted on /v1/embeddings too (extra_body) */
    json_t *p = json_object_get(root, "prompt_name");
    if (p && !json_is_null(p)) {
        if (!json_is_string(p)) {
            srv_error_set(err, 400, "Validation", "`prompt_name` must be a string");
            return false;
        }
        const char *name = json_string_value(p);
        prompt = ember_model_prompt(sm->model, name);
        if (!prompt) {
            srv_error_set(err, 400, "Validation",
                          "prompt_name \"%.100s\" is not one of the model's prompts "
                          "(config_sentence_transformers.json; GET /info lists them)",
                          name);
            return false;
        }
    }
    o->normalize = normalize;
    memset(t, 0, sizeof *t);
    t->eo = ember_embed_default_options();
    t->eo.prompt = prompt;
    t->eo.truncate = truncate;
    t->eo.truncation_side = side;
    return true;
}

static bool build_job(const srv_model *sm, srv_api api, json_t *input, const text_opts *t,
                      srv_embed_opts *o, srv_job *job, builder *bd, srv_error *err) {
    /* a flat list of integers is one tokenized input */
    bool single = json_is_string(input) || (is_id_list(input) && json_array_size(input) > 0);
    int64_t n = single ? 1 : (int64_t)json_array_size(input);
    job->offsets = malloc(sizeof(int64_t) * (size_t)(n + 1));
    if (!job->offsets) {
        srv_error_set(err, 500, "Backend", "out of memory");
        return false;
    }
    job->offsets[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        json_t *x = single ? input : json_array_get(input, (size_t)i);
        if (json_is_string(x)) {
            if (!sm->tok) {
                srv_error_set(err, 400, "Validation",
                              "the model has no tokenizer (tokenizer.json or vocab.txt): send "
                              "token ids");
                return false;
            }
            if (!bd->enc && ember_encoding_new(&bd->enc) != EMBER_OK) {
                srv_error_set(err, 500, "Backend", "out of memory");
                return false;
            }
            if (!add_text(sm, api, bd, t, i, json_string_value(x), json_string_length(x), o, err))
                return false;
        } else if (json_is_array(x)) {
            if (!add_ids(sm, api, bd, i, x, err))
                return false;
        } else {
            srv_error_set(err, 400, "Validation",
                          "input %lld must be a string or a list of token ids", (long long)i);
            return false;
        }
        job->offsets[i + 1] = job->n_tokens;
        job->n = i + 1;
    }
    return true;
}

bool srv_parse_embed(const srv_model *sm, const srv_config *cfg, srv_api api, const char *body,
                     size_t len, srv_embed_opts *o, srv_job **out, srv_error *err) {
    memset(o, 0, sizeof *o);
    o->api = api;
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        srv_error_set(err, 400, "Validation", "malformed JSON (line %d, column %d): %s", je.line,
                      je.column, je.text);
        return false;
    }
    srv_job *job = NULL;
    builder bd;
    memset(&bd, 0, sizeof bd);
    bool ok = false;
    const char *key = api == API_OPENAI ? "input" : "inputs";
    json_t *input = json_object_get(root, key);
    text_opts t;
    if (!json_is_object(root)) {
        srv_error_set(err, 400, "Validation", "the body must be a JSON object");
        goto done;
    }
    if (!input || json_is_null(input)) {
        srv_error_set(err, 400, "Validation", "missing field `%s`", key);
        goto done;
    }
    if (!json_is_string(input) && !json_is_array(input)) {
        srv_error_set(err, 400, "Validation",
                      "`%s` must be a string, a list of strings, a list of token ids or a list "
                      "of token-id lists",
                      key);
        goto done;
    }
    if (json_is_array(input) && json_array_size(input) == 0) {
        srv_error_set(err, 400, "Empty", "`%s` cannot be empty", key);
        goto done;
    }
    size_t n = json_is_string(input) || is_id_list(input) ? 1 : json_array_size(input);
    if (n > (size_t)cfg->max_client_batch) {
        srv_error_set(err, 413, "Validation", "batch size %zu > maximum allowed batch size %d", n,
                      cfg->max_client_batch);
        goto done;
    }
    if (!parse_options(sm, cfg, api, root, o, &t, err))
        goto done;
    job = calloc(1, sizeof *job);
    if (!job) {
        srv_error_set(err, 500, "Backend", "out of memory");
        goto done;
    }
    bd.job = job;
    if (!build_job(sm, api, input, &t, o, job, &bd, err))
        goto done;
    job->vecs = malloc(sizeof(float) * (size_t)(job->n * sm->dim));
    if (!job->vecs) {
        srv_error_set(err, 500, "Backend", "out of memory");
        goto done;
    }
    ok = true;
done:
    json_decref(root);
    ember_encoding_free(bd.enc);
    if (ok) {
        *out = job;
    } else {
        srv_job_free(job);
        srv_opts_free(o);
    }
    return ok;
}

/* ---- responses ---- */

bool srv_render_embed(const srv_model *sm, const srv_config *cfg, const srv_embed_opts *o,
                      const srv_job *job, sbuf *out) {
    const int32_t dims = o->dims;
    float *row = malloc(sizeof(float) * (size_t)dims);
    if (!row)
        return false;
    /* about 12 bytes per float as text, 5.4 as base64 */
    sb_reserve(out, (size_t)(job->n * (dims * (o->base64 ? 6 : 13) + 64)) + 256);
    if (o->api == API_OPENAI)
        sb_puts(out, "{\"object\":\"list\",\"data\":[");
    else
        sb_puts(out, "[");
    for (int64_t i = 0; i < job->n; i++) {
        /* the same cut and normalization ember_embed_* apply, on the raw vector */
        memcpy(row, job->vecs + i * sm->dim, sizeof(float) * (size_t)dims);
        if (o->normalize)
            ember_l2_normalize(row, 1, dims);
        if (i)
            sb_puts(out, ",");
        if (o->api == API_OPENAI)
            sb_printf(out, "{\"object\":\"embedding\",\"index\":%lld,\"embedding\":", (long long)i);
        if (o->base64) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            for (int32_t d = 0; d < dims; d++) { /* the format is little-endian float32 */
                uint32_t u;
                memcpy(&u, &row[d], 4);
                u = __builtin_bswap32(u);
                memcpy(&row[d], &u, 4);
            }
#endif
            sb_puts(out, "\"");
            sb_base64(out, row, sizeof(float) * (size_t)dims);
            sb_puts(out, "\"");
        } else {
            sb_puts(out, "[");
            for (int32_t d = 0; d < dims; d++) {
                if (d)
                    sb_put(out, ",", 1);
                sb_json_float(out, row[d]);
            }
            sb_puts(out, "]");
        }
        if (o->api == API_OPENAI)
            sb_puts(out, "}");
    }
    free(row);
    if (o->api == API_OPENAI) {
        const char *model = o->model_echo ? o->model_echo : cfg->served_name;
        sb_puts(out, "],\"model\":");
        sb_json_str(out, model, strlen(model));
        sb_printf(out, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}",
                  (long long)job->n_tokens, (long long)job->n_tokens);
    } else {
        sb_puts(out, "]");
    }
    return !out->oom;
}

static const char *oai_type(int status) {
    if (status >= 500)
        return "server_error";
    if (status == 401)
        return "authentication_error";
    return "invalid_request_error";
}

void srv_render_error(srv_api api, const srv_error *e, sbuf *out) {
    size_t n = strlen(e->message);
    if (api == API_OPENAI) {
        sb_puts(out, "{\"error\":{\"message\":");
        sb_json_str(out, e->message, n);
        sb_printf(out, ",\"type\":\"%s\",\"param\":null,\"code\":", oai_type(e->status));
        if (e->oai_code)
            sb_printf(out, "\"%s\"}}", e->oai_code);
        else
            sb_puts(out, "null}}");
    } else {
        sb_puts(out, "{\"error\":");
        sb_json_str(out, e->message, n);
        sb_printf(out, ",\"error_type\":\"%s\"}", e->type ? e->type : "Validation");
    }
}

/* TEI names dtypes as torch does */
static const char *dtype_name(const char *d) {
    if (strcmp(d, "f32") == 0)
        return "float32";
    if (strcmp(d, "f16") == 0)
        return "float16";
    if (strcmp(d, "bf16") == 0)
        return "bfloat16";
    return d;
}

void srv_render_info(const srv_model *sm, const srv_config *cfg, sbuf *o) {
    const ember_model_info *i = &sm->info;
    /* TEI's /info fields first, then Ember's own */
    sb_puts(o, "{\"model_id\":");
    sb_json_str(o, cfg->served_name, strlen(cfg->served_name));
    const int32_t nl = ember_model_num_labels(sm->model);
    sb_printf(o, ",\"model_sha\":null,\"model_dtype\":\"%s\",\"model_type\":",
              dtype_name(i->compute_dtype));
    if (nl > 0) { /* TEI's ClassifierModel: {"reranker": {"id2label", "label2id"}} */
        sb_puts(o, "{\"reranker\":{\"id2label\":{");
        for (int32_t l = 0; l < nl; l++)
            sb_printf(o, "%s\"%d\":\"LABEL_%d\"", l ? "," : "", l, l);
        sb_puts(o, "},\"label2id\":{");
        for (int32_t l = 0; l < nl; l++)
            sb_printf(o, "%s\"LABEL_%d\":%d", l ? "," : "", l, l);
        sb_puts(o, "}}}");
    } else {
        sb_printf(o, "{\"embedding\":{\"pooling\":\"%s\"}}", ember_pooling_name(i->pooling));
    }
    sb_printf(o,
              ",\"max_concurrent_requests\":%d,\"max_input_length\":%d,"
              "\"max_batch_tokens\":%d,\"max_batch_requests\":%d,\"max_client_batch_size\":%d,"
              "\"auto_truncate\":%s,\"tokenization_workers\":%d,\"version\":\"%s\",\"sha\":null,"
              "\"docker_label\":null",
              cfg->max_concurrent, sm->max_tokens, cfg->max_batch_tokens, cfg->max_batch_size, cfg->max_client_batch,
              cfg->auto_truncate ? "true" : "false", cfg->http_threads, ember_version());
    sb_puts(o, ",\"model_path\":");
    sb_json_str(o, i->source, strlen(i->source));
    sb_printf(o,
              ",\"architecture\":\"%s\",\"dimension\":%d,\"normalize\":%s,\"pooling\":\"%s\","
              "\"vocab_size\":%d,\"has_tokenizer\":%s,\"driver\":\"%s\",\"kernels\":\"%s\","
              "\"workers\":%d,\"threads_per_worker\":%d,\"prompts\":{",
              i->architecture, sm->dim, sm->normalize ? "true" : "false",
              ember_pooling_name(i->pooling), sm->vocab, sm->tok ? "true" : "false", i->driver,
              i->kernels, cfg->workers, cfg->threads);
    for (int32_t p = 0; p < i->n_prompts; p++) {
        const char *name = ember_model_prompt_name(sm->model, p);
        const char *text = ember_model_prompt_text(sm->model, p);
        if (p)
            sb_puts(o, ",");
        sb_json_str(o, name, strlen(name));
        sb_puts(o, ":");
        sb_json_str(o, text, strlen(text));
    }
    sb_puts(o, "},\"default_prompt_name\":");
    if (cfg->default_prompt)
        sb_json_str(o, cfg->default_prompt, strlen(cfg->default_prompt));
    else
        sb_puts(o, "null");
    sb_puts(o, "}");
}

void srv_render_models(const srv_config *cfg, double created, sbuf *o) {
    sb_puts(o, "{\"object\":\"list\",\"data\":[{\"id\":");
    sb_json_str(o, cfg->served_name, strlen(cfg->served_name));
    sb_printf(o, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"ember\"}]}",
              (long long)created);
}

void srv_framing_add(srv_framing *f, const char *key, const char *value) {
    if (!key)
        return;
    if (!value)
        value = "";
    if (strcasecmp(key, "Content-Length") == 0) {
        if (f->n_length++ == 0)
            f->first = value;
        else if (strcmp(f->first, value) != 0)
            f->lengths_differ = true;
        if (strchr(value, ',')) /* "5, 6" is two lengths in one field */
            f->lengths_differ = true;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        f->has_te = true;
    }
}

bool srv_framing_ok(const srv_framing *f, srv_error *err) {
    if (f->n_length && f->has_te) {
        srv_error_set(err, 400, "Validation",
                      "both Content-Length and Transfer-Encoding: the body length is ambiguous");
        return false;
    }
    if (f->lengths_differ) {
        srv_error_set(err, 400, "Validation",
                      "several different Content-Length headers: the body length is ambiguous");
        return false;
    }
    return true;
}
