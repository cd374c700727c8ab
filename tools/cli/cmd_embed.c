/*
 * cmd_embed.c — `ember embed`: texts or token ids in, JSON Lines out,
 * {"index": i, "embedding": [...]} in input order, or a NumPy .npy file
 * (float32, one row per input) for large jobs. Input is processed in chunks
 * so any amount streams through bounded memory.
 *
 * A chunk's rows are written by a writer thread while the next chunk is
 * read and embedded (two vector buffers, used in turn; one writer at a time,
 * so rows stay in input order): on a GPU, formatting JSON takes about as
 * long as computing the vectors.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CHUNK 4096 /* inputs per call: large enough for length-sorted batches */
#define FIRST_CHUNK 64 /* the first calls are small so output starts at once */

/* NumPy .npy v1.0 header for a little-endian float32 C-order [n, dim]
 * array, padded to 128 bytes so it can be rewritten in place once n is known
 * (the data is written as the host stores floats: little-endian on x86-64
 * and arm64, the platforms Ember runs on). */
static void write_npy_header(FILE *f, int64_t n, int32_t dim) {
    char dict[118];
    int len = snprintf(dict, sizeof dict,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %d), }",
                       (long long)n, dim);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(118, f); /* header length, little-endian u16 */
    fputc(0, f);
    fwrite(dict, 1, (size_t)len, f);
    for (int i = len; i < 117; i++)
        fputc(' ', f);
    fputc('\n', f);
}

static void help(void) {
    printf("usage: ember embed [-m MODEL] [options] [TEXT...]\n"
           "\n"
           "Embeds each TEXT, or each input of --input FILE / stdin, and writes one JSON\n"
           "line per input: {\"index\": i, \"embedding\": [...]}, in input order.\n"
           "\n"
           "options:\n"
           "  -m, --model MODEL        model directory or hub id (default: $EMBER_MODEL or %s)\n"
           "  -i, --input FILE         read inputs from FILE ('-' = stdin)\n"
           "  -f, --input-format FMT   lines (one text per line, default), jsonl ({\"text\": ...}\n"
           "                           per line), ids (token ids per line, used as given)\n"
           "  -o, --output FILE        write to FILE instead of stdout\n"
           "  --output-format F        jsonl (default) or npy (float32 array [n, dim]; needs --output)\n"
           "  --prompt TEXT            prepend TEXT to every text\n"
           "  --prompt-name NAME       prepend the model's prompt NAME (config_sentence_transformers)\n"
           "  --dimensions N           keep the first N dimensions (Matryoshka), re-normalized\n"
           "  --no-normalize           output the pooled vector without L2 normalization\n"
           "  --no-truncate            fail on texts longer than the model's limit instead of cutting\n"
           "  --batch-size N           sequences per forward pass (default 32; 512 on a GPU)\n"
           "  --max-batch-tokens N     tokens per forward pass (default 2048; 65536 on a GPU)\n"
           "  -t, --threads N          worker threads (default: all CPUs)\n"
           "  --device D, --dtype D   where and in what precision (see ember --help)\n"
           "  -v, --verbose            more messages on stderr\n",
           EMBER_DEFAULT_MODEL);
}

/* One chunk's rows on their way out. */
typedef struct chunk_writer {
    FILE *out;
    const float *vecs;
    int64_t base, n;
    int32_t dims;
    bool npy;
    bool failed; /* a write or flush failed */
    int error;   /* its errno */
    bool reported;
} chunk_writer;

static void *write_chunk(void *arg) {
    chunk_writer *w = arg;
    if (w->npy) {
        fwrite(w->vecs, sizeof(float), (size_t)(w->n * w->dims), w->out);
    } else {
        for (int64_t i = 0; i < w->n; i++) {
            fprintf(w->out, "{\"index\":%lld,\"embedding\":[", (long long)(w->base + i));
            for (int32_t d = 0; d < w->dims; d++) {
                if (d)
                    fputc(',', w->out);
                cli_json_float(w->out, w->vecs[i * w->dims + d]);
            }
            fputs("]}\n", w->out);
        }
    }
    /* every chunk is flushed: an interrupted job keeps every row computed */
    errno = 0;
    w->failed = fflush(w->out) != 0 || ferror(w->out);
    w->error = errno;
    return NULL;
}

/* The writer of the previous chunk, if one runs. */
typedef struct writer_slot {
    chunk_writer job;
    pthread_t thread;
    bool running;
} writer_slot;

/* Waits for the running writer; false (and a message) when its writing
 * failed. */
static bool writer_join(writer_slot *s) {
    if (s->running) {
        pthread_join(s->thread, NULL);
        s->running = false;
    }
    if (s->job.failed && !s->job.reported) {
        fprintf(stderr, "ember embed: write error: %s\n",
                s->job.error ? strerror(s->job.error) : "the output stream failed");
        s->job.reported = true;
    }
    return !s->job.failed;
}

/* Starts writing a chunk (on this thread when no thread can be started). */
static bool writer_start(writer_slot *s, chunk_writer job) {
    s->job = job;
    if (pthread_create(&s->thread, NULL, write_chunk, &s->job) == 0) {
        s->running = true;
        return true;
    }
    write_chunk(&s->job);
    return writer_join(s);
}

int cmd_embed(int argc, char **argv) {
    cli_args a = {argc, argv, 0, NULL};
    const char *model = NULL, *input = NULL, *output = NULL, *prompt = NULL, *prompt_name = NULL;
    cli_input_format fmt = INPUT_LINES;
    ember_ctx_params cp = ember_ctx_default_params();
    cp.max_batch = cp.max_batch_tokens = 0; /* unset: the device's choice, after the load */
    ember_embed_options eo = ember_embed_default_options();
    int verbose = 0, npy = 0;
    char **texts = calloc((size_t)argc, sizeof(char *));
    int n_texts = 0;
    for (a.i = 1; a.i < argc; a.i++) {
        if (cli_opt_value(&a, "--model", "-m"))
            model = a.value;
        else if (cli_opt_value(&a, "--input", "-i"))
            input = a.value;
        else if (cli_opt_value(&a, "--input-format", "-f")) {
            if (!cli_parse_input_format(a.value, &fmt))
                cli_die(2, "embed", "--input-format must be lines, jsonl or ids, not \"%s\"", a.value);
        } else if (cli_opt_value(&a, "--output", "-o"))
            output = a.value;
        else if (cli_opt_value(&a, "--output-format", NULL)) {
            if (strcmp(a.value, "npy") == 0)
                npy = 1;
            else if (strcmp(a.value, "jsonl") != 0)
                cli_die(2, "embed", "--output-format must be jsonl or npy, not \"%s\"", a.value);
        }
        else if (cli_opt_value(&a, "--prompt", NULL))
            prompt = a.value;
        else if (cli_opt_value(&a, "--prompt-name", NULL))
            prompt_name = a.value;
        else if (cli_opt_value(&a, "--dimensions", NULL))
            eo.dimensions = (int32_t)cli_int("--dimensions", a.value, 1, 1 << 20);
        else if (cli_opt_flag(&a, "--no-normalize", NULL))
            eo.normalize = 0;
        else if (cli_opt_flag(&a, "--no-truncate", NULL))
            eo.truncate = 0;
        else if (cli_opt_value(&a, "--batch-size", "-b"))
            cp.max_batch = (int32_t)cli_int("--batch-size", a.value, 1, 65536);
        else if (cli_opt_value(&a, "--max-batch-tokens", NULL))
            cp.max_batch_tokens = (int32_t)cli_int("--max-batch-tokens", a.value, 1, 1 << 24);
        else if (cli_opt_value(&a, "--threads", "-t"))
            cp.n_threads = (int32_t)cli_int("--threads", a.value, 1, 1024);
        else if (cli_opt_flag(&a, "--verbose", "-v"))
            verbose++;
        else if (cli_opt_flag(&a, "--help", "-h")) {
            help();
            free(texts);
            return 0;
        } else if (argv[a.i][0] == '-' && argv[a.i][1] != '\0')
            cli_die(2, "embed", "unknown option %s (see ember embed --help)", argv[a.i]);
        else
            texts[n_texts++] = argv[a.i];
    }
    if (n_texts && input)
        cli_die(2, "embed", "give texts as arguments or --input, not both");
    if (prompt && prompt_name)
        cli_die(2, "embed", "give --prompt or --prompt-name, not both");
    if (npy && (!output || strcmp(output, "-") == 0))
        cli_die(2, "embed", "--output-format npy needs --output FILE (the header is completed at the end)");
    if ((prompt || prompt_name) && fmt == INPUT_IDS)
        cli_die(2, "embed", "--prompt and --prompt-name apply to texts, not to --input-format ids");
    cli_setup_logging(verbose);

    const char *spec = cli_model_spec(model);
    ember_model *m = cli_load_model(spec, NULL, "embed");
    cli_fill_ctx_params(m, &cp);
    if (prompt_name) {
        prompt = ember_model_prompt(m, prompt_name);
        if (!prompt)
            cli_die(2, "embed", "the model has no prompt named \"%s\" (ember info lists them)",
                    prompt_name);
    }
    eo.prompt = prompt;
    if (fmt != INPUT_IDS && !ember_model_tokenizer(m))
        cli_die(1, "embed", "%s has no tokenizer (tokenizer.json or vocab.txt): use --input-format ids",
                spec);
    ember_ctx *ctx = NULL;
    if (ember_ctx_init(m, &cp, &ctx) != EMBER_OK)
        cli_die(1, "embed", "%s", ember_last_error());

    FILE *out = stdout;
    if (output && strcmp(output, "-") != 0 && !(out = fopen(output, npy ? "wb" : "w")))
        cli_die(1, "embed", "cannot write %s", output);
    cli_input in;
    if (!cli_input_open(&in, fmt, input, texts, n_texts))
        return 1;
    int32_t dims = eo.dimensions > 0 ? eo.dimensions : ember_model_dim(m);
    if (npy)
        write_npy_header(out, 0, dims); /* rewritten with the row count at the end */
    float *vecs[2] = {malloc(sizeof(float) * (size_t)CHUNK * (size_t)dims),
                      malloc(sizeof(float) * (size_t)CHUNK * (size_t)dims)};
    if (!vecs[0] || !vecs[1])
        cli_die(1, "embed", "out of memory for %d vectors of %d dimensions", CHUNK, dims);
    int64_t base = 0, truncated = 0, replaced = 0, tokens = 0;
    int rc = 0;
    writer_slot writer = {0};
    /* Output streams: each chunk is written and flushed as soon as it is
     * embedded (by the writer thread, while the next chunk is embedded into
     * the other buffer), so an interrupted job keeps every row already
     * computed. The chunk size doubles from FIRST_CHUNK to CHUNK (large
     * chunks sort by length better; small ones show progress early). */
    int64_t chunk = FIRST_CHUNK;
    for (int k = 0;; k ^= 1) {
        int64_t n = cli_input_next(&in, chunk, "embed");
        if (chunk < CHUNK)
            chunk *= 2;
        if (n < 0) {
            rc = 1;
            break;
        }
        if (n == 0)
            break;
        ember_embed_stats stats;
        ember_status st =
            fmt == INPUT_IDS
                ? ember_embed_tokens(ctx, in.ids, in.offsets, n, &eo, vecs[k], n * dims, &stats)
                : ember_embed_texts(ctx, (const char *const *)in.texts, in.lens, n, &eo, vecs[k],
                                    n * dims, &stats);
        if (st != EMBER_OK) {
            fprintf(stderr, "ember embed: inputs %lld..%lld: %s\n", (long long)base,
                    (long long)(base + n - 1), ember_last_error());
            rc = 1;
            break;
        }
        truncated += stats.n_truncated;
        replaced += stats.n_invalid_utf8;
        tokens += stats.n_tokens;
        /* the previous chunk's rows are out (and its buffer free) first */
        if (!writer_join(&writer) ||
            !writer_start(&writer, (chunk_writer){.out = out, .vecs = vecs[k], .base = base,
                                                  .n = n, .dims = dims, .npy = npy != 0})) {
            rc = 1;
            break;
        }
        base += n;
    }
    if (!writer_join(&writer))
        rc = 1;
    if (truncated)
        fprintf(stderr, "ember embed: %lld of %lld inputs were longer than %d tokens and truncated\n",
                (long long)truncated, (long long)base, ember_model_max_tokens(m));
    if (replaced)
        fprintf(stderr, "ember embed: %lld inputs had invalid UTF-8, replaced by U+FFFD\n",
                (long long)replaced);
    if (verbose)
        fprintf(stderr, "ember embed: %lld inputs, %lld tokens\n", (long long)base, (long long)tokens);
    if (npy && rc == 0) {
        fseek(out, 0, SEEK_SET);
        write_npy_header(out, base, dims);
    }
    if (fflush(out) != 0 || (out != stdout && fclose(out) != 0)) {
        fprintf(stderr, "ember embed: write error\n");
        rc = 1;
    }
    free(vecs[0]);
    free(vecs[1]);
    free(texts);
    cli_input_close(&in);
    ember_ctx_free(ctx);
    ember_model_free(m);
    return rc;
}
