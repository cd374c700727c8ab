/*
 * args.c — minimal option parsing for the ember subcommands.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char *cli_command = "";

void cli_die(int code, const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (!cmd || !*cmd) /* option helpers do not know the command: main.c set it */
        cmd = cli_command;
    if (cmd && *cmd)
        fprintf(stderr, "ember %s: ", cmd);
    else
        fputs("ember: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

static bool name_is(const char *arg, const char *name, size_t *eq) {
    if (!name)
        return false;
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return false;
    if (arg[n] == '\0') {
        *eq = 0;
        return true;
    }
    if (arg[n] == '=' && name[1] == '-') {
        *eq = n + 1;
        return true;
    }
    return false;
}

bool cli_opt_value(cli_args *a, const char *name, const char *alias) {
    const char *arg = a->argv[a->i];
    size_t eq = 0;
    if (!name_is(arg, name, &eq) && !name_is(arg, alias, &eq))
        return false;
    if (eq) {
        a->value = arg + eq;
        return true;
    }
    if (a->i + 1 >= a->argc)
        cli_die(2, "", "option %s needs a value", arg);
    a->value = a->argv[++a->i];
    return true;
}

bool cli_opt_flag(cli_args *a, const char *name, const char *alias) {
    const char *arg = a->argv[a->i];
    return strcmp(arg, name) == 0 || (alias && strcmp(arg, alias) == 0);
}

int64_t cli_int(const char *opt, const char *value, int64_t lo, int64_t hi) {
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end || v < lo || v > hi)
        cli_die(2, "", "%s: expected an integer in [%lld, %lld], got \"%s\"", opt, (long long)lo,
                (long long)hi, value);
    return v;
}
