/*
 * cmd_info.c — `ember info`: what a model is and how Ember will run it.
 */
#include <string.h>

#include "cli.h"

static void help(void) {
    printf("usage: ember info [-m MODEL] [--json] [-v]\n"
           "\n"
           "Describes MODEL: architecture, sizes, pooling and normalization (and where\n"
           "they come from), weight dtype, driver, kernels and CPU features in use.\n");
}

int cmd_info(int argc, char **argv) {
    cli_args a = {argc, argv, 0, NULL};
    const char *model = NULL;
    int json = 0, verbose = 0;
    for (a.i = 1; a.i < argc; a.i++) {
        if (cli_opt_value(&a, "--model", "-m"))
            model = a.value;
        else if (cli_opt_flag(&a, "--json", NULL))
            json = 1;
        else if (cli_opt_flag(&a, "--verbose", "-v"))
            verbose++;
        else if (cli_opt_flag(&a, "--help", "-h")) {
            help();
            return 0;
        } else
            cli_die(2, "info", "unknown option %s (see ember info --help)", argv[a.i]);
    }
    cli_setup_logging(verbose);
    const char *spec = cli_model_spec(model);
    ember_model *m = cli_load_model(spec, NULL, "info");
    ember_model_info i;
    memset(&i, 0, sizeof i);
    i.struct_size = sizeof i;
    ember_model_get_info(m, &i);
    const char *pool_src = i.pooling_from_files ? "sentence-transformers files"
                                                : "architecture default: no modules.json";
    if (json) {
        printf("{\"source\":");
        cli_json_string(stdout, i.source, strlen(i.source));
        printf(",\"directory\":");
        cli_json_string(stdout, i.directory, strlen(i.directory));
        printf(",\"architecture\":\"%s\",\"dimension\":%d,\"hidden_size\":%d,\"layers\":%d,"
               "\"heads\":%d,\"kv_heads\":%d,\"head_dim\":%d,\"intermediate_size\":%d,\"vocab_size\":%d,"
               "\"max_position_embeddings\":%d,\"max_tokens\":%d,\"pooling\":\"%s\","
               "\"pooling_from_files\":%s,\"normalize\":%s,\"lowercase\":%s,\"file_dtype\":\"%s\","
               "\"compute_dtype\":\"%s\",\"parameters\":%lld,\"shards\":%d,\"driver\":\"%s\","
               "\"kernels\":\"%s\",\"cpu_features\":\"%s\",\"tokenizer\":%s,\"modules\":\"%s\","
               "\"num_labels\":%d,\"prompts\":{",
               i.architecture, i.dim, i.hidden_size, i.n_layers, i.n_heads, i.n_kv_heads, i.head_dim,
               i.intermediate_size,
               i.vocab_size, i.max_position_embeddings, i.max_tokens, ember_pooling_name(i.pooling),
               i.pooling_from_files ? "true" : "false", i.normalize ? "true" : "false",
               i.lowercase_input ? "true" : "false", i.file_dtype, i.compute_dtype,
               (long long)i.n_parameters, i.n_shards, i.driver, i.kernels, i.cpu_features,
               i.has_tokenizer ? "true" : "false", i.modules ? i.modules : "", ember_model_num_labels(m));
        for (int32_t p = 0; p < i.n_prompts; p++) {
            const char *name = ember_model_prompt_name(m, p), *text = ember_model_prompt_text(m, p);
            if (p)
                putchar(',');
            cli_json_string(stdout, name, strlen(name));
            putchar(':');
            cli_json_string(stdout, text, strlen(text));
        }
        printf("}}\n");
    } else {
        printf("model          %s\n", i.source);
        printf("directory      %s\n", i.directory);
        printf("architecture   %s\n", i.architecture);
        printf("dimension      %d\n", i.dim);
        printf("layers         %d\n", i.n_layers);
        if (i.n_kv_heads != i.n_heads)
            printf("heads          %d over %d key/value heads (head dim %d)\n", i.n_heads, i.n_kv_heads,
                   i.head_dim);
        else
            printf("heads          %d (head dim %d)\n", i.n_heads, i.head_dim);
        printf("hidden size    %d, intermediate %d\n", i.hidden_size, i.intermediate_size);
        printf("vocabulary     %d\n", i.vocab_size);
        printf("max tokens     %d (position limit %d)\n", i.max_tokens, i.max_position_embeddings);
        printf("modules        %s\n", i.modules ? i.modules : "?");
        printf("pooling        %s (%s)\n", ember_pooling_name(i.pooling), pool_src);
        printf("normalize      %s (%s)\n", i.normalize ? "yes, L2" : "no", pool_src);
        printf("lowercase      %s\n", i.lowercase_input ? "yes (do_lower_case)" : "no");
        if (i.n_prompts) {
            printf("prompts       ");
            for (int32_t p = 0; p < i.n_prompts; p++)
                printf(" %s=\"%s\"", ember_model_prompt_name(m, p), ember_model_prompt_text(m, p));
            printf("\n");
        }
        printf("weights        %s, %.1fM parameters, %d safetensors file%s\n", i.file_dtype,
               (double)i.n_parameters / 1e6, i.n_shards, i.n_shards == 1 ? "" : "s");
        printf("compute        %s\n", i.compute_dtype);
        printf("driver         %s (%s)\n", i.driver, i.kernels);
        printf("cpu features   %s\n", i.cpu_features);
        printf("tokenizer      %s\n", i.has_tokenizer ? "yes" : "none (token ids only)");
        const int32_t labels = ember_model_num_labels(m);
        if (labels > 0)
            printf("reranker       %d label%s: a sequence-classification head (ember rerank)\n", labels,
                   labels == 1 ? "" : "s");
    }
    ember_model_free(m);
    return 0;
}
