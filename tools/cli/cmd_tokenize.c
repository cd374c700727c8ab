/*
 * cmd_tokenize.c — `ember tokenize`: how texts become tokens, as JSON Lines
 * {"ids": [...], "tokens": [...], "offsets": [[start, end], ...]} with
 * code-point offsets into each text. Needs only the tokenizer files.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help(void) {
    printf("usage: ember tokenize [-m MODEL] [options] [TEXT...]\n"
           "\n"
           "options:\n"
           "  -m, --model MODEL        model directory (only tokenizer files needed) or hub id\n"
           "  -i, --input FILE         read inputs from FILE ('-' = stdin)\n"
           "  -f, --input-format FMT   lines (default), jsonl, or ids (show the tokens of ids)\n"
           "  --no-special             do not add special tokens ([CLS], [SEP], ...)\n"
           "  --max-length N           truncate to N tokens (0 = none; default: the model's limit)\n"
           "  --byte-offsets           offsets in UTF-8 bytes instead of code points\n"
           "\n"
           "output: one JSON object per input; invalid UTF-8 in a token is written as one\n"
           "\\ufffd per maximal ill-formed subsequence (Python's errors=\"replace\").\n");
}

int cmd_tokenize(int argc, char **argv) {
    cli_args a = {argc, argv, 0, NULL};
    const char *model = NULL, *input = NULL;
    cli_input_format fmt = INPUT_LINES;
    int special = 1, byte_offsets = 0, verbose = 0;
    int64_t max_length = -1;
    char **texts = calloc((size_t)argc, sizeof(char *));
    int n_texts = 0;
    for (a.i = 1; a.i < argc; a.i++) {
        if (cli_opt_value(&a, "--model", "-m"))
            model = a.value;
        else if (cli_opt_value(&a, "--input", "-i"))
            input = a.value;
        else if (cli_opt_value(&a, "--input-format", "-f")) {
            if (!cli_parse_input_format(a.value, &fmt))
                cli_die(2, "tokenize", "--input-format must be lines, jsonl or ids, not \"%s\"", a.value);
        } else if (cli_opt_flag(&a, "--no-special", NULL))
            special = 0;
        else if (cli_opt_value(&a, "--max-length", NULL))
            max_length = cli_int("--max-length", a.value, 0, 1 << 24);
        else if (cli_opt_flag(&a, "--byte-offsets", NULL))
            byte_offsets = 1;
        else if (cli_opt_flag(&a, "--verbose", "-v"))
            verbose++;
        else if (cli_opt_flag(&a, "--help", "-h")) {
            help();
            free(texts);
            return 0;
        } else if (argv[a.i][0] == '-' && argv[a.i][1] != '\0')
            cli_die(2, "tokenize", "unknown option %s (see ember tokenize --help)", argv[a.i]);
        else
            texts[n_texts++] = argv[a.i];
    }
    cli_setup_logging(verbose);
    const char *spec = cli_model_spec(model);
    char *dir = NULL;
    ember_tokenizer *tok = NULL;
    ember_model_params mp = cli_model_params();
    if (ember_resolve_model(spec, &mp, &dir) != EMBER_OK ||
        ember_tokenizer_load(dir, &tok) != EMBER_OK)
        cli_die(1, "tokenize", "cannot load the tokenizer of %s: %s", spec, ember_last_error());
    ember_tokenize_options to = ember_tokenize_default_options();
    to.add_special_tokens = special;
    to.max_length = (int32_t)(max_length >= 0 ? max_length : ember_tokenizer_max_length(tok));
    ember_encoding *enc = NULL;
    if (ember_encoding_new(&enc) != EMBER_OK)
        cli_die(1, "tokenize", "%s", ember_last_error());
    cli_input in;
    if (!cli_input_open(&in, fmt, input, texts, n_texts))
        return 1;
    int rc = 0;
    int64_t truncated = 0;
    for (;;) {
        int64_t n = cli_input_next(&in, 1024, "tokenize");
        if (n <= 0) {
            rc = n < 0;
            break;
        }
        for (int64_t i = 0; i < n; i++) {
            if (fmt == INPUT_IDS) {
                printf("{\"ids\":[");
                for (int64_t t = in.offsets[i]; t < in.offsets[i + 1]; t++)
                    printf("%s%d", t > in.offsets[i] ? "," : "", in.ids[t]);
                printf("],\"tokens\":[");
                for (int64_t t = in.offsets[i]; t < in.offsets[i + 1]; t++) {
                    const char *s = ember_tokenizer_id_to_token(tok, in.ids[t]);
                    if (t > in.offsets[i])
                        putchar(',');
                    if (s)
                        cli_json_string(stdout, s, strlen(s));
                    else
                        printf("null");
                }
                printf("]}\n");
                continue;
            }
            if (ember_tokenize(tok, in.texts[i], in.lens[i], &to, enc) != EMBER_OK) {
                fprintf(stderr, "ember tokenize: %s\n", ember_last_error());
                rc = 1;
                break;
            }
            int64_t len = ember_encoding_length(enc);
            const int32_t *ids = ember_encoding_ids(enc);
            const int64_t *off = byte_offsets ? ember_encoding_byte_offsets(enc)
                                              : ember_encoding_char_offsets(enc);
            if (ember_encoding_flags(enc) & EMBER_ENCODING_TRUNCATED)
                truncated++;
            printf("{\"ids\":[");
            for (int64_t t = 0; t < len; t++)
                printf("%s%d", t ? "," : "", ids[t]);
            printf("],\"tokens\":[");
            for (int64_t t = 0; t < len; t++) {
                const char *s = ember_encoding_token(enc, t);
                if (t)
                    putchar(',');
                cli_json_string(stdout, s, strlen(s));
            }
            printf("],\"offsets\":[");
            for (int64_t t = 0; t < len; t++)
                printf("%s[%lld,%lld]", t ? "," : "", (long long)off[2 * t], (long long)off[2 * t + 1]);
            printf("]}\n");
        }
        if (rc)
            break;
    }
    if (truncated)
        fprintf(stderr, "ember tokenize: %lld inputs truncated to %d tokens\n", (long long)truncated,
                to.max_length);
    cli_input_close(&in);
    ember_encoding_free(enc);
    ember_tokenizer_free(tok);
    ember_free(dir);
    free(texts);
    return rc;
}
