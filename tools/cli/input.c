/*
 * input.c — reads what to embed or tokenize: positional texts, or a file /
 * stdin as plain lines, JSON Lines ({"text": ...}, so texts may hold
 * newlines and NUL), or lines of token ids. Input is consumed in chunks so
 * memory stays bounded on large files.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

bool cli_parse_input_format(const char *s, cli_input_format *out) {
    if (strcmp(s, "lines") == 0)
        *out = INPUT_LINES;
    else if (strcmp(s, "jsonl") == 0)
        *out = INPUT_JSONL;
    else if (strcmp(s, "ids") == 0)
        *out = INPUT_IDS;
    else
        return false;
    return true;
}

bool cli_input_open(cli_input *in, cli_input_format fmt, const char *path, char **args,
                    int n_args) {
    memset(in, 0, sizeof *in);
    in->format = fmt;
    if (n_args > 0) {
        in->args = args;
        in->n_args = n_args;
        return true;
    }
    if (!path || strcmp(path, "-") == 0) {
        in->f = stdin;
        return true;
    }
    in->f = fopen(path, "rb");
    if (!in->f) {
        fprintf(stderr, "ember: cannot open %s: %s\n", path, strerror(errno));
        return false;
    }
    in->own_file = true;
    return true;
}

static void clear_chunk(cli_input *in) {
    if (in->format != INPUT_IDS)
        for (int64_t i = 0; i < in->n; i++)
            free(in->texts[i]);
    in->n = 0;
    in->ids_len = 0;
}

static bool reserve_items(cli_input *in) {
    if (in->n + 1 < in->cap)
        return true;
    int64_t cap = in->cap ? in->cap * 2 : 256;
    char **t = realloc(in->texts, sizeof *t * (size_t)cap);
    if (t)
        in->texts = t;
    size_t *l = realloc(in->lens, sizeof *l * (size_t)cap);
    if (l)
        in->lens = l;
    int64_t *o = realloc(in->offsets, sizeof *o * (size_t)(cap + 1));
    if (o)
        in->offsets = o;
    if (!t || !l || !o)
        return false;
    in->cap = cap;
    return true;
}

static bool add_text(cli_input *in, const char *s, size_t len) {
    if (!reserve_items(in))
        return false;
    char *copy = malloc(len + 1);
    if (!copy)
        return false;
    memcpy(copy, s, len);
    copy[len] = '\0';
    in->texts[in->n] = copy;
    in->lens[in->n] = len;
    in->n++;
    return true;
}

/* One line of token ids -> CSR arrays. */
static bool add_ids(cli_input *in, const char *line, size_t len, const char *cmd) {
    if (!reserve_items(in))
        return false;
    if (in->n == 0)
        in->offsets[0] = 0;
    const char *p = line, *end = line + len;
    int64_t count = 0;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p >= end)
            break;
        char *stop;
        errno = 0;
        long long v = strtoll(p, &stop, 10);
        if (stop == p || errno || v < 0 || v > INT32_MAX ||
            (stop < end && *stop != ' ' && *stop != '\t' && *stop != ',')) {
            fprintf(stderr, "ember %s: line %lld: \"%.*s\" is not a token id (non-negative integer)\n",
                    cmd, (long long)in->line_no, (int)(stop > p ? stop - p + 1 : 1), p);
            return false;
        }
        if (in->ids_len == in->ids_cap) {
            int64_t cap = in->ids_cap ? in->ids_cap * 2 : 4096;
            int32_t *ids = realloc(in->ids, sizeof *ids * (size_t)cap);
            if (!ids)
                return false;
            in->ids = ids;
            in->ids_cap = cap;
        }
        in->ids[in->ids_len++] = (int32_t)v;
        count++;
        p = stop;
    }
    if (count == 0) {
        fprintf(stderr, "ember %s: line %lld: empty sequence of token ids (each line must hold one input)\n", cmd,
                (long long)in->line_no);
        return false;
    }
    in->n++;
    in->offsets[in->n] = in->ids_len;
    return true;
}

static bool add_jsonl(cli_input *in, const char *line, size_t len, const char *cmd) {
    size_t k = 0;
    while (k < len && (line[k] == ' ' || line[k] == '\t'))
        k++;
    if (k == len) {
        fprintf(stderr, "ember %s: line %lld: blank line (each line must hold one input)\n", cmd,
                (long long)in->line_no);
        return false;
    }
    json_error_t err;
    json_t *v = json_loadb(line, len, JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);
    if (!v) {
        fprintf(stderr, "ember %s: line %lld: invalid JSON: %s\n", cmd, (long long)in->line_no,
                err.text);
        return false;
    }
    json_t *t = json_is_object(v) ? json_object_get(v, "text") : v;
    bool ok = false;
    if (json_is_string(t))
        ok = add_text(in, json_string_value(t), json_string_length(t));
    else
        fprintf(stderr, "ember %s: line %lld: expected {\"text\": \"...\"} or a JSON string\n",
                cmd, (long long)in->line_no);
    json_decref(v);
    return ok;
}

int64_t cli_input_next(cli_input *in, int64_t max, const char *cmd) {
    clear_chunk(in);
    if (in->args) {
        while (in->next_arg < in->n_args && in->n < max) {
            const char *a = in->args[in->next_arg++];
            in->line_no = in->next_arg;
            bool ok = in->format == INPUT_IDS    ? add_ids(in, a, strlen(a), cmd)
                      : in->format == INPUT_JSONL ? add_jsonl(in, a, strlen(a), cmd)
                                                  : add_text(in, a, strlen(a));
            if (!ok)
                return -1;
        }
        return in->n;
    }
    while (in->n < max) {
        ssize_t got = getline(&in->line, &in->line_cap, in->f);
        if (got < 0)
            break;
        in->line_no++;
        size_t len = (size_t)got;
        if (len && in->line[len - 1] == '\n')
            len--;
        if (len && in->line[len - 1] == '\r')
            len--;
        /* every line is one input and one output row: a blank line in JSON
         * Lines or ids is an error naming it, never silently skipped (the
         * output index would no longer be the input line) */
        bool ok = in->format == INPUT_LINES   ? add_text(in, in->line, len)
                  : in->format == INPUT_JSONL ? add_jsonl(in, in->line, len, cmd)
                                              : add_ids(in, in->line, len, cmd);
        if (!ok)
            return -1;
    }
    if (ferror(in->f)) {
        fprintf(stderr, "ember %s: read error: %s\n", cmd, strerror(errno));
        return -1;
    }
    return in->n;
}

void cli_input_close(cli_input *in) {
    clear_chunk(in);
    free(in->texts);
    free(in->lens);
    free(in->offsets);
    free(in->ids);
    free(in->line);
    if (in->own_file && in->f)
        fclose(in->f);
    memset(in, 0, sizeof *in);
}
