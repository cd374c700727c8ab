/*
 * serve.c — `ember serve`: options, start-up and graceful shutdown of the
 * HTTP embedding server (see server.h for the parts and docs/server.md for
 * the routes).
 *
 * Start-up loads the model once (shared by every worker), checks that
 * prompts can be used with it, creates and warms the workers' contexts, then
 * listens; "listening on http://HOST:PORT" on stderr means ready (with
 * --port 0 it tells the port chosen).
 *
 * Shutdown (SIGTERM or SIGINT; signals are blocked in every thread and taken
 * here with sigwait, so no handler runs in a library thread): /ready turns
 * 503 at once; after --drain-delay (time for a load balancer to notice) new
 * connections are refused and new requests on open connections get 503 with
 * Connection: close; requests already received are answered. After
 * --shutdown-timeout (or a second signal) jobs still queued are failed with
 * 503. Then everything is freed and the process exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "server.h"

static void help(void) {
    printf(
        "usage: ember serve [-m MODEL] [options]\n"
        "\n"
        "HTTP server for embeddings: OpenAI POST /v1/embeddings, text-embeddings-inference\n"
        "POST /embed, GET /health, /ready, /info, /metrics (Prometheus), /v1/models.\n"
        "Concurrent requests are merged into shared forward passes. See docs/server.md.\n"
        "\n"
        "options:\n"
        "  -m, --model MODEL          model directory or hub id (default: $EMBER_MODEL or %s)\n"
        "  --host ADDR                address to listen on (default 127.0.0.1; 0.0.0.0 or :: for all)\n"
        "  --port N                   port (default 8080; 0: any free port, printed at start)\n"
        "  --api-key KEY              require Authorization: Bearer KEY on the API routes\n"
        "                             (default $EMBER_API_KEY; health, ready, metrics stay open)\n"
        "  --served-model-name NAME   model name in responses, /info, /v1/models (default: MODEL)\n"
        "  --default-prompt-name NAME prompt applied when a request names none\n"
        "  --auto-truncate            cut inputs longer than the model's limit instead of failing\n"
        "                             (default of /embed's \"truncate\"; /v1/embeddings always)\n"
        "\n"
        "batching and limits:\n"
        "  --max-batch-tokens N       tokens per forward pass; concurrent requests are merged up to\n"
        "                             this (default 2048 on a CPU, 65536 on a GPU)\n"
        "  --max-batch-size N         sequences per forward pass (default 32; 512 on a GPU)\n"
        "  --max-client-batch N       inputs per request, more is 413 (default 32)\n"
        "  --max-concurrent N         embedding requests admitted at once (reading, queued or\n"
        "                             running); more is 503 at once (default 512)\n"
        "  --max-body-bytes N         request body limit, more is 413 (default 2000000)\n"
        "  --max-pending-bytes N      request bodies buffered in all, more is 503 (default 256 MiB)\n"
        "  --max-connections N        open connections (default 1024)\n"
        "  --idle-timeout S           close a connection silent for S seconds (default 30)\n"
        "  --request-timeout S        close a connection whose body takes longer (default 30)\n"
        "\n"
        "threads:\n"
        "  --workers N                model workers, each with its own context (default 1)\n"
        "  -t, --threads N            compute threads per worker (default: CPUs / workers)\n"
        "  --http-threads N           HTTP threads: parse, tokenize, write JSON (default 2)\n"
        "\n"
        "shutdown (SIGTERM, SIGINT):\n"
        "  --drain-delay S            keep serving S seconds with /ready at 503 (default 0)\n"
        "  --shutdown-timeout S       then wait at most S seconds for requests (default 30)\n"
        "\n"
        "logging (stderr):\n"
        "  --log-format FMT           text (default) or json: one line per request\n"
        "  --log-probes               also log successful /health, /ready, /metrics\n"
        "  -q, --quiet                no per-request lines\n"
        "  --device D, --dtype D      where and in what precision (see ember --help)\n"
        "  -v, --verbose              library and HTTP-level messages\n",
        EMBER_DEFAULT_MODEL);
}

static srv_config default_config(void) {
    srv_config c;
    memset(&c, 0, sizeof c);
    c.host = "127.0.0.1";
    c.port = 8080;
    c.max_batch_tokens = 0; /* 0: the device's choice once the model is loaded */
    c.max_batch_size = 0;
    c.max_client_batch = 32;
    c.max_concurrent = 512;
    c.workers = 1;
    c.http_threads = 2;
    c.max_connections = 1024;
    c.max_body_bytes = 2000000;
    c.max_pending_bytes = 256ll << 20;
    c.idle_timeout_s = 30;
    c.request_timeout_s = 30;
    c.shutdown_timeout_s = 30;
    c.log_format = LOG_TEXT;
    return c;
}

static void parse_options(int argc, char **argv, srv_config *c, const char **model) {
    cli_args a = {argc, argv, 0, NULL};
    for (a.i = 1; a.i < argc; a.i++) {
        if (cli_opt_value(&a, "--model", "-m"))
            *model = a.value;
        else if (cli_opt_value(&a, "--host", NULL))
            c->host = a.value;
        else if (cli_opt_value(&a, "--port", "-p"))
            c->port = (int)cli_int("--port", a.value, 0, 65535);
        else if (cli_opt_value(&a, "--api-key", NULL))
            c->api_key = a.value;
        else if (cli_opt_value(&a, "--served-model-name", NULL))
            c->served_name = a.value;
        else if (cli_opt_value(&a, "--default-prompt-name", NULL))
            c->default_prompt = a.value;
        else if (cli_opt_flag(&a, "--auto-truncate", NULL))
            c->auto_truncate = true;
        else if (cli_opt_value(&a, "--max-batch-tokens", NULL))
            c->max_batch_tokens = (int32_t)cli_int("--max-batch-tokens", a.value, 16, 1 << 24);
        else if (cli_opt_value(&a, "--max-batch-size", NULL))
            c->max_batch_size = (int32_t)cli_int("--max-batch-size", a.value, 1, 65536);
        else if (cli_opt_value(&a, "--max-client-batch", "--max-client-batch-size"))
            c->max_client_batch = (int32_t)cli_int("--max-client-batch", a.value, 1, 1 << 20);
        else if (cli_opt_value(&a, "--max-concurrent", "--max-concurrent-requests"))
            c->max_concurrent = (int32_t)cli_int("--max-concurrent", a.value, 1, 1 << 20);
        else if (cli_opt_value(&a, "--max-body-bytes", "--payload-limit"))
            c->max_body_bytes = cli_int("--max-body-bytes", a.value, 16, 1ll << 32);
        else if (cli_opt_value(&a, "--max-pending-bytes", NULL))
            c->max_pending_bytes = cli_int("--max-pending-bytes", a.value, 16, 1ll << 40);
        else if (cli_opt_value(&a, "--max-connections", NULL))
            c->max_connections = (int32_t)cli_int("--max-connections", a.value, 1, 1 << 20);
        else if (cli_opt_value(&a, "--idle-timeout", NULL))
            c->idle_timeout_s = (int32_t)cli_int("--idle-timeout", a.value, 1, 86400);
        else if (cli_opt_value(&a, "--request-timeout", NULL))
            c->request_timeout_s = (int32_t)cli_int("--request-timeout", a.value, 1, 86400);
        else if (cli_opt_value(&a, "--workers", NULL))
            c->workers = (int32_t)cli_int("--workers", a.value, 1, 256);
        else if (cli_opt_value(&a, "--threads", "-t"))
            c->threads = (int32_t)cli_int("--threads", a.value, 1, 1024);
        else if (cli_opt_value(&a, "--http-threads", NULL))
            c->http_threads = (int32_t)cli_int("--http-threads", a.value, 1, 256);
        else if (cli_opt_value(&a, "--drain-delay", NULL))
            c->drain_delay_s = (int32_t)cli_int("--drain-delay", a.value, 0, 3600);
        else if (cli_opt_value(&a, "--shutdown-timeout", NULL))
            c->shutdown_timeout_s = (int32_t)cli_int("--shutdown-timeout", a.value, 0, 3600);
        else if (cli_opt_value(&a, "--log-format", NULL)) {
            if (strcmp(a.value, "text") == 0)
                c->log_format = LOG_TEXT;
            else if (strcmp(a.value, "json") == 0)
                c->log_format = LOG_JSON;
            else
                cli_die(2, "serve", "--log-format must be text or json, not \"%s\"", a.value);
        } else if (cli_opt_flag(&a, "--log-probes", NULL))
            c->log_probes = true;
        else if (cli_opt_flag(&a, "--quiet", "-q"))
            c->quiet = true;
        else if (cli_opt_flag(&a, "--verbose", "-v"))
            c->verbose++;
        else if (cli_opt_flag(&a, "--help", "-h")) {
            help();
            exit(0);
        } else
            cli_die(2, "serve", "unknown option %s (see ember serve --help)", argv[a.i]);
    }
    if (!c->api_key) {
        const char *env = getenv("EMBER_API_KEY");
        if (env && *env)
            c->api_key = env;
    }
    if (c->api_key && !*c->api_key)
        cli_die(2, "serve", "--api-key must not be empty");
}

/* Enough descriptors for --max-connections (the soft limit is often 1024). */
static void raise_fd_limit(srv_config *c) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)c->max_connections + 128;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want) {
        int32_t n = rl.rlim_cur > 256 ? (int32_t)(rl.rlim_cur - 128) : 128;
        fprintf(stderr, "ember serve: file descriptor limit %llu: --max-connections lowered to %d\n",
                (unsigned long long)rl.rlim_cur, n);
        c->max_connections = n;
    }
}

static long cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

/* Whether ember_embed_texts accepts a prompt with this model: it refuses
 * (EMBER_E_UNSUPPORTED) when the pooling excludes prompt tokens, and the
 * server tokenizes prompts itself, so it asks once here. */
/* Whether the library accepts a prompt for this model (it refuses when the
 * pooling config excludes prompt tokens): asked once, at startup, so a
 * --default-prompt-name that can never work stops the server at once. */
static bool prompts_supported(const ember_model *m) {
    ember_encoding *enc = NULL;
    if (ember_encoding_new(&enc) != EMBER_OK)
        return false;
    ember_embed_options eo = ember_embed_default_options();
    eo.prompt = "x: ";
    ember_status st = ember_model_tokenize(m, "x", 1, &eo, enc);
    ember_encoding_free(enc);
    return st != EMBER_E_UNSUPPORTED;
}

/* Waits up to `seconds` for SIGTERM/SIGINT; returns the signal or 0. */
static int wait_signal(const sigset_t *set, double seconds) {
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

static void drain(srv_state *st, const sigset_t *set, int sig) {
    const srv_config *cfg = st->cfg;
    fprintf(stderr, "ember serve: %s: draining (%lld requests open)\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", (long long)atomic_load(&st->open_requests));
    atomic_store(&st->draining, 1);
    bool hurry = cfg->drain_delay_s > 0 && wait_signal(set, cfg->drain_delay_s) != 0;
    atomic_store(&st->stopping, 1);
    srv_http_quiesce(st->http);
    double deadline = srv_now() + cfg->shutdown_timeout_s;
    while (!hurry && atomic_load(&st->open_requests) > 0 && srv_now() < deadline)
        hurry = wait_signal(set, 0.01) != 0;
    if (atomic_load(&st->open_requests) > 0) {
        atomic_store(&st->refuse_jobs, 1);
        int n = srv_batcher_cancel_waiting(st->batcher);
        fprintf(stderr, "ember serve: shutdown timeout: %d queued requests answered 503, %lld "
                        "requests still open are closed\n",
                n, (long long)atomic_load(&st->open_requests));
        while (atomic_load(&st->jobs_active) > 0) /* the pass in progress ends soon */
            wait_signal(set, 0.01);
    }
    srv_http_stop(st->http);
    st->http = NULL;
}

int cmd_serve(int argc, char **argv) {
    srv_config cfg = default_config();
    const char *model_arg = NULL;
    parse_options(argc, argv, &cfg, &model_arg);

    /* before any thread exists, so every thread inherits the mask */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stderr, NULL, _IOLBF, 0);

    cli_setup_logging(cfg.verbose);
    raise_fd_limit(&cfg);
    const char *spec = cli_model_spec(model_arg);
    if (!cfg.served_name)
        cfg.served_name = spec;
    if (cfg.threads == 0)
        cfg.threads = (int32_t)(cpu_count() / cfg.workers > 0 ? cpu_count() / cfg.workers : 1);

    ember_model *model = cli_load_model(spec, NULL, "serve");
    const ember_ctx_params device_cp = ember_model_ctx_params(model);
    if (!cfg.max_batch_tokens)
        cfg.max_batch_tokens = device_cp.max_batch_tokens;
    if (!cfg.max_batch_size)
        cfg.max_batch_size = device_cp.max_batch;
    srv_model sm;
    memset(&sm, 0, sizeof sm);
    sm.model = model;
    sm.tok = ember_model_tokenizer(model);
    sm.dim = ember_model_dim(model);
    sm.max_tokens = ember_model_max_tokens(model);
    sm.normalize = ember_model_normalize(model) != 0;
    sm.info.struct_size = sizeof sm.info;
    ember_model_get_info(model, &sm.info);
    sm.vocab = sm.info.vocab_size;
    sm.prompts_ok = sm.tok && sm.info.n_prompts > 0 ? prompts_supported(model) : true;
    if (cfg.default_prompt) {
        sm.default_prompt = ember_model_prompt(model, cfg.default_prompt);
        if (!sm.default_prompt)
            cli_die(2, "serve", "the model has no prompt named \"%s\" (ember info lists them)",
                    cfg.default_prompt);
        if (!sm.prompts_ok)
            cli_die(2, "serve", "this model's pooling excludes prompt tokens: no default prompt");
    }

    srv_metrics metrics;
    srv_metrics_init(&metrics);
    srv_state st;
    memset(&st, 0, sizeof st);
    st.cfg = &cfg;
    st.sm = &sm;
    st.metrics = &metrics;
    atomic_store(&st.healthy, 1);
    st.batcher = srv_batcher_start(model, &cfg, &metrics, srv_http_job_done, &st);
    if (!st.batcher) {
        ember_model_free(model);
        return 1;
    }
    int port = 0;
    st.http = srv_http_start(&st, &port);
    if (!st.http) {
        srv_batcher_stop(st.batcher);
        srv_metrics_free(&metrics);
        ember_model_free(model);
        return 1;
    }
    const char *host = cfg.host;
    bool v6 = strchr(host, ':') != NULL;
    fprintf(stderr,
            "ember serve: %s (%s, dimension %d, max %d tokens, %s pooling); %d worker%s x %d "
            "threads; listening on http://%s%s%s:%d\n",
            cfg.served_name, sm.info.architecture, sm.dim, sm.max_tokens,
            ember_pooling_name(sm.info.pooling), cfg.workers, cfg.workers > 1 ? "s" : "",
            cfg.threads, v6 ? "[" : "", host, v6 ? "]" : "", port);

    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    drain(&st, &set, sig);
    srv_batcher_stop(st.batcher);
    srv_tei_shutdown();
    srv_metrics_free(&metrics);
    ember_model_free(model);
    fprintf(stderr, "ember serve: stopped\n");
    return 0;
}
