/*
 * main.c — the `ember` command: embeddings from the command line.
 *
 *   ember embed [-m MODEL] [TEXT...]      texts (or token ids) to JSON Lines vectors
 *   ember rerank [-m MODEL] QUERY TEXT... texts scored against a query (cross-encoders)
 *   ember tokenize [-m MODEL] [TEXT...]   texts to ids, tokens and offsets
 *   ember info [-m MODEL]                 what a model is and how it will run
 *   ember serve / bench                   HTTP server, benchmarks
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "ember %s — sentence embeddings with BERT-family models\n"
            "\n"
            "usage: ember COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  embed      embed texts (arguments, --input FILE or stdin) to JSON Lines\n"
            "  rerank     score texts against a query with a cross-encoder (reranker)\n"
            "  tokenize   show how texts are tokenized (ids, tokens, offsets)\n"
            "  info       describe a model: architecture, sizes, pooling, kernels\n"
            "  bench      throughput on fixed workloads, checked against the reference path\n"
            "  serve      HTTP server with OpenAI and text-embeddings-inference routes\n"
            "\n"
            "MODEL (-m) is a local Hugging Face model directory or a hub id such as\n"
            "%s (the default; $EMBER_MODEL overrides it).\n"
            "Every command that loads a model takes --device cpu|cuda|cuda:N|auto\n"
            "(default auto: a usable GPU, else the CPU) and --dtype auto|f32|bf16|int8\n"
            "(default auto: fp32 arithmetic on a CPU, bf16 on a GPU; bf16 and int8\n"
            "weights, and on CPUs with AVX512_BF16/VNNI/AMX the products too, are\n"
            "opt-in: faster, within cosine 0.999 of fp32).\n"
            "Run `ember COMMAND --help` for the options of a command.\n",
            ember_version(), EMBER_DEFAULT_MODEL);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("ember %s\n", ember_version());
        return 0;
    }
    cli_command = cmd;
    /* --device and --dtype apply to every command that loads a model: taken
     * out here, read by cli_model_params */
    int out = 2;
    for (int i = 2; i < argc; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "--dtype") == 0 || strncmp(argv[i], "--dtype=", 8) == 0) {
            const char *d = argv[i][7] == '=' ? argv[i] + 8 : i + 1 < argc ? argv[++i] : NULL;
            if (!d || !cli_dtype_parse(d, &cli_dtype)) {
                fprintf(stderr, "ember %s: --dtype \"%s\": expected auto, f32, bf16 or int8\n", cmd,
                        d ? d : "");
                return 2;
            }
            continue;
        }
        if (strcmp(argv[i], "--device") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ember %s: --device needs a value (cpu, cuda, cuda:N, auto)\n", cmd);
                return 2;
            }
            v = argv[++i];
        } else if (strncmp(argv[i], "--device=", 9) == 0) {
            v = argv[i] + 9;
        } else {
            argv[out++] = argv[i];
            continue;
        }
        if (!cli_device_valid(v)) {
            fprintf(stderr, "ember %s: --device \"%s\": expected cpu, cpu-ref, cuda, cuda:N or auto\n",
                    cmd, v);
            return 2;
        }
        cli_device = v;
    }
    argc = out;
    argv[argc] = NULL;
    if (strcmp(cmd, "embed") == 0)
        return cmd_embed(argc - 1, argv + 1);
    if (strcmp(cmd, "info") == 0)
        return cmd_info(argc - 1, argv + 1);
    if (strcmp(cmd, "rerank") == 0)
        return cmd_rerank(argc - 1, argv + 1);
    if (strcmp(cmd, "tokenize") == 0)
        return cmd_tokenize(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0)
        return cmd_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    fprintf(stderr, "ember: unknown command \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
}
