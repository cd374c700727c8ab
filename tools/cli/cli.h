/*
 * cli.h — shared pieces of the `ember` command: option parsing, input
 * reading (lines, JSON Lines, token ids), JSON output, model opening.
 */
#ifndef EMBER_CLI_H
#define EMBER_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ember.h"

#define EMBER_DEFAULT_MODEL "BAAI/bge-small-en-v1.5"

/* ---- options ---- */

/* Walks argv: options (with their values) and positional arguments. */
typedef struct cli_args {
    int argc;
    char **argv;
    int i;
    const char *value; /* value of the option just matched */
} cli_args;

/* True when argv[i] is `name` (or `alias`) and consumes its value into
 * a->value (supports "--name=value"). Prints an error and exits 2 when the
 * value is missing. */
bool cli_opt_value(cli_args *a, const char *name, const char *alias);
/* True when argv[i] is the flag `name` (or `alias`). */
bool cli_opt_flag(cli_args *a, const char *name, const char *alias);
/* Parses an integer option value in [lo, hi] or exits 2 with a message. */
/* The subcommand being run (main.c), named by option errors. */
extern const char *cli_command;
/* --device of the command line (NULL: auto); see main.c */
extern const char *cli_device;
/* cpu, cpu-ref, cuda, cuda:N or auto */
bool cli_device_valid(const char *v);
/* --dtype of the command line (EMBER_DTYPE_AUTO when not given); see main.c */
extern ember_dtype cli_dtype;
/* auto, f32, bf16 or int8 into *out; false for anything else */
bool cli_dtype_parse(const char *v, ember_dtype *out);

int64_t cli_int(const char *opt, const char *value, int64_t lo, int64_t hi);
/* Prints "ember CMD: message" to stderr and exits with `code`. */
void cli_die(int code, const char *cmd, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));

/* ---- inputs ---- */

typedef enum { INPUT_LINES, INPUT_JSONL, INPUT_IDS } cli_input_format;

bool cli_parse_input_format(const char *s, cli_input_format *out);

/* Inputs come from positional arguments, or a file / stdin read in chunks. */
typedef struct cli_input {
    cli_input_format format;
    FILE *f;                 /* NULL when reading arguments                  */
    bool own_file;
    char **args;             /* positional texts                            */
    int n_args, next_arg;
    int64_t line_no;         /* for messages                                */
    char *line;
    size_t line_cap;
    /* the current chunk */
    int64_t n;               /* items in the chunk                          */
    char **texts;            /* text items (lines/jsonl/args)               */
    size_t *lens;
    int64_t cap;
    int32_t *ids;            /* ids items, CSR                              */
    int64_t *offsets;
    int64_t ids_len, ids_cap;
} cli_input;

/* Opens the input: texts from args when n_args > 0, else `path` (or stdin
 * when NULL or "-"). Returns false with a message on stderr. */
bool cli_input_open(cli_input *in, cli_input_format fmt, const char *path, char **args, int n_args);
/* Reads up to `max` items into the chunk. Returns the count (0 at the end)
 * or -1 after printing an error. */
int64_t cli_input_next(cli_input *in, int64_t max, const char *cmd);
void cli_input_close(cli_input *in);

/* ---- output ---- */

/* Writes `len` bytes as a JSON string (quoted, escaped; invalid UTF-8 as
 * \ufffd, see tools/common/json_writer.h). */
void cli_json_string(FILE *f, const char *s, size_t len);
/* Writes a float that reads back to the same value. */
void cli_json_float(FILE *f, float v);

/* ---- models ---- */

/* The model to use: -m value, else $EMBER_MODEL, else the default. */
const char *cli_model_spec(const char *m);
/* Model parameters of the CLI: defaults plus the download progress bar. */
ember_model_params cli_model_params(void);
/* Loads a model (p NULL: cli_model_params()) or prints the error (with hints) and exits 1. */
ember_model *cli_load_model(const char *spec, const ember_model_params *p, const char *cmd);
/* Pass sizes the user left unset (0) get the model's device's choice
 * (ember_model_ctx_params: 32 / 2,048 on a CPU, 512 / 65,536 on a GPU). */
void cli_fill_ctx_params(const ember_model *m, ember_ctx_params *cp);
/* stderr logger for the library. */
void cli_log(ember_log_level level, const char *msg, void *user);
void cli_setup_logging(int verbosity);

int cmd_rerank(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv); /* tools/server */

#endif
