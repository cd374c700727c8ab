/*
 * fuzz_request.c — libFuzzer target for the server's request parser: any
 * bytes as the body of POST /v1/embeddings and of POST /embed, with the real
 * bge tokenizer of the e2e-bert fixture. Parsing must end in a job that
 * satisfies what the batcher relies on (ids in the vocabulary, 1..max tokens
 * per input, CSR offsets consistent) or in a 4xx error; every response body
 * written from it must be valid JSON.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_model)
        init();
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
    return 0;
}
