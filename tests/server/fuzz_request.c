/*
 * fuzz_request.c — libFuzzer target for the server's request parser: any
 * bytes as the body of POST /v1/embeddings and of POST /embed, with the real
 * bge tokenizer of the e2e-bert fixture. Parsing must end in a job that
 * satisfies what the batcher relies on (ids in the vocabulary, 1..max tokens
 * per input, CSR offsets consistent) or in a 4xx error; every response body
 * written from it must be valid JSON.
 *
 * Inputs that start with "POST " are a whole HTTP request instead: the
 * header fields go through the server's framing check (srv_framing_*:
 * duplicate and conflicting Content-Length / Transfer-Encoding must be
 * refused exactly when ambiguous), and the body, de-chunked when
 * Transfer-Encoding is chunked (sizes in hex, bounded), goes to the parser.
 */
#include <ctype.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ember_model *g_model;
static srv_model g_sm;
static srv_config g_cfg;

static void init(void) {
    ember_model_params p = ember_model_default_params();
    p.allow_download = 0;
    if (ember_model_load(EMBER_SERVER_FUZZ_MODEL, &p, &g_model) != EMBER_OK)
        abort();
    g_sm.model = g_model;
    g_sm.tok = ember_model_tokenizer(g_model);
    g_sm.dim = ember_model_dim(g_model);
    g_sm.max_tokens = ember_model_max_tokens(g_model);
    g_sm.normalize = 1;
    g_sm.prompts_ok = true;
    g_sm.info.struct_size = sizeof g_sm.info;
    ember_model_get_info(g_model, &g_sm.info);
    g_sm.vocab = g_sm.info.vocab_size;
    g_cfg.served_name = "fuzz";
    g_cfg.max_client_batch = 64;
}

static void must_be_json(sbuf *b) {
    if (b->oom)
        abort();
    json_error_t e;
    json_t *v = json_loadb(b->data, b->len, JSON_ALLOW_NUL, &e);
    if (!v)
        abort();
    json_decref(v);
    sb_free(b);
}

static void parse_body(const uint8_t *data, size_t size);

/* An HTTP request: framing, optional chunked decoding, then the body. */
static void http_request(const uint8_t *data, size_t size) {
    const char *p = (const char *)data, *end = p + size;
    const char *nl = memchr(p, '\n', size);
    if (!nl)
        return;
    p = nl + 1;
    srv_framing fr = {0, false, false, NULL};
    char keys[16][64], vals[16][64];
    int n = 0, n_cl = 0;
    bool chunked = false, differ = false;
    char first_cl[64] = "";
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e)
            return;
        size_t len = (size_t)(e - p);
        if (len && p[len - 1] == '\r')
            len--;
        if (len == 0) {
            p = e + 1;
            break;
        }
        const char *colon = memchr(p, ':', len);
        if (colon && n < 16 && (size_t)(colon - p) < 64 && len - (size_t)(colon - p) < 64) {
            size_t kl = (size_t)(colon - p), vl = len - kl - 1;
            memcpy(keys[n], p, kl);
            keys[n][kl] = 0;
            const char *v = colon + 1;
            while (vl && *v == ' ')
                v++, vl--;
            memcpy(vals[n], v, vl);
            vals[n][vl] = 0;
            srv_framing_add(&fr, keys[n], vals[n]);
            if (strcasecmp(keys[n], "Content-Length") == 0) {
                if (n_cl++ == 0)
                    snprintf(first_cl, sizeof first_cl, "%s", vals[n]);
                else if (strcmp(first_cl, vals[n]) != 0)
                    differ = true;
            }
            if (strcasecmp(keys[n], "Transfer-Encoding") == 0 && strstr(vals[n], "chunked"))
                chunked = true;
            n++;
        }
        p = e + 1;
    }
    srv_error err;
    bool ok = srv_framing_ok(&fr, &err);
    /* the invariant: two different lengths, or a length with chunking, are
     * always refused with a 400 */
    if ((differ || (n_cl && chunked)) && ok)
        abort();
    if (!ok) {
        if (err.status != 400)
            abort();
        return;
    }
    if (!chunked) {
        parse_body((const uint8_t *)p, (size_t)(end - p));
        return;
    }
    char *body = malloc((size_t)(end - p) + 1);
    size_t blen = 0;
    while (p < end) { /* size in hex CRLF data CRLF ... 0 CRLF */
        /* the chunk size in hex, read within the input (strtoull would read
         * past its end: the fuzzer's data is not NUL-terminated) */
        const char *stop = p;
        unsigned long long k = 0;
        while (stop < end && isxdigit((unsigned char)*stop) && k <= (unsigned long long)(end - p)) {
            const int c = tolower((unsigned char)*stop++);
            k = k * 16 + (unsigned long long)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        if (stop == p || k == 0 || k > (unsigned long long)(end - p))
            break;
        const char *d = memchr(stop, '\n', (size_t)(end - stop));
        if (!d || (size_t)(end - d - 1) < k)
            break;
        memcpy(body + blen, d + 1, (size_t)k);
        blen += (size_t)k;
        p = d + 1 + k;
        while (p < end && (*p == '\r' || *p == '\n'))
            p++;
    }
    parse_body((const uint8_t *)body, blen);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_model)
        init();
    if (size >= 5 && memcmp(data, "POST ", 5) == 0) {
        http_request(data, size);
        return 0;
    }
    parse_body(data, size);
    return 0;
}

static void parse_body(const uint8_t *data, size_t size) {
    for (int api = API_OPENAI; api <= API_TEI; api++) {
        srv_embed_opts o;
        srv_job *job = NULL;
        srv_error err;
        sbuf b = {0};
        if (!srv_parse_embed(&g_sm, &g_cfg, (srv_api)api, (const char *)data, size, &o, &job, &err)) {
            if (err.status != 400 && err.status != 413 && err.status != 422)
                abort();
            srv_render_error((srv_api)api, &err, &b);
            must_be_json(&b);
            continue;
        }
        if (job->n < 1 || job->n > g_cfg.max_client_batch || job->offsets[0] != 0 ||
            job->offsets[job->n] != job->n_tokens || o.dims < 1 || o.dims > g_sm.dim)
            abort();
        for (int64_t i = 0; i < job->n; i++) {
            int64_t len = job->offsets[i + 1] - job->offsets[i];
            if (len < 1 || len > g_sm.max_tokens)
                abort();
        }
        for (int64_t t = 0; t < job->n_tokens; t++)
            if (job->ids[t] < 0 || job->ids[t] >= g_sm.vocab)
                abort();
        for (int64_t k = 0; k < job->n * g_sm.dim; k++)
            job->vecs[k] = (float)(k % 7) - 3.0f;
        if (!srv_render_embed(&g_sm, &g_cfg, &o, job, &b))
            abort();
        must_be_json(&b);
        srv_job_free(job);
        srv_opts_free(&o);
    }
}
