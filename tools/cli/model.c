/*
 * model.c — opening models for the CLI: which model (-m, $EMBER_MODEL, the
 * default), logging to stderr, and errors turned into advice.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

const char *cli_model_spec(const char *m) {
    if (m && *m)
        return m;
    const char *env = getenv("EMBER_MODEL");
    return env && *env ? env : EMBER_DEFAULT_MODEL;
}

void cli_log(ember_log_level level, const char *msg, void *user) {
    (void)user;
    static const char *names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "ember: %s: %s\n", names[level <= EMBER_LOG_DEBUG ? level : 0], msg);
}

void cli_setup_logging(int verbosity) {
    ember_log_level lvl = verbosity >= 2   ? EMBER_LOG_DEBUG
                          : verbosity == 1 ? EMBER_LOG_INFO
                                           : EMBER_LOG_WARN;
    ember_log_set(cli_log, lvl, NULL);
}

const char *cli_device;

bool cli_device_valid(const char *v) {
    if (!strcmp(v, "cpu") || !strcmp(v, "cpu-ref") || !strcmp(v, "cuda") || !strcmp(v, "auto"))
        return true;
    if (strncmp(v, "cuda:", 5) != 0 || !v[5])
        return false;
    for (const char *c = v + 5; *c; c++)
        if (*c < '0' || *c > '9' || c - v > 9)
            return false;
    return true;
}

ember_dtype cli_dtype = EMBER_DTYPE_AUTO;

bool cli_dtype_parse(const char *v, ember_dtype *out) {
    static const struct { const char *name; ember_dtype dtype; } names[] = {
        {"auto", EMBER_DTYPE_AUTO}, {"f32", EMBER_DTYPE_F32}, {"bf16", EMBER_DTYPE_BF16}, {"int8", EMBER_DTYPE_INT8}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(v, names[i].name) == 0) {
            *out = names[i].dtype;
            return true;
        }
    return false;
}

ember_model_params cli_model_params(void) {
    ember_model_params p = ember_model_default_params();
    if (cli_device)
        p.driver = cli_device;
    p.dtype = cli_dtype;
    p.progress = ember_cli_progress;
    const char *zc = getenv("EMBER_ZERO_COPY");
    if (zc && zc[0] == '1')
        p.pack_weights = 0;
    return p;
}

ember_model *cli_load_model(const char *spec, const ember_model_params *p, const char *cmd) {
    ember_model *m = NULL;
    ember_model_params defaults = cli_model_params();
    ember_status st = ember_model_load(spec, p ? p : &defaults, &m);
    if (st == EMBER_OK)
        return m;
    fprintf(stderr, "ember %s: cannot load model %s: %s\n", cmd, spec, ember_last_error());
    if (st == EMBER_E_NETWORK || st == EMBER_E_NOT_FOUND) {
        fprintf(stderr, "hint: use a local model directory (config.json, model.safetensors, "
                        "tokenizer.json): ember %s -m DIR ...\n",
                cmd);
    } else if (st == EMBER_E_AUTH) {
        fprintf(stderr, "hint: set HF_TOKEN to a Hugging Face access token that can read %s\n", spec);
    }
    exit(1);
}

void cli_fill_ctx_params(const ember_model *m, ember_ctx_params *cp) {
    const ember_ctx_params d = ember_model_ctx_params(m);
    if (cp->max_batch <= 0)
        cp->max_batch = d.max_batch;
    if (cp->max_batch_tokens <= 0)
        cp->max_batch_tokens = d.max_batch_tokens;
}
