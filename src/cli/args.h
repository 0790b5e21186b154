/* A tiny command-line reader shared by the subcommands: `--flag value`, `--flag=value` and
 * boolean `--flag`. Each subcommand lists its flags in a table, so an unknown flag is always
 * an error that names it (exit 2), never silently ignored. */
#ifndef SGLC_CLI_ARGS_H
#define SGLC_CLI_ARGS_H

#include <stdbool.h>

typedef enum { ARG_STR, ARG_INT, ARG_FLOAT, ARG_BOOL } arg_kind;

typedef struct {
    const char *name; /* "--model-path" */
    arg_kind kind;
    void *dest;       /* const char **, long *, double *, bool * */
    const char *help;
    bool seen;        /* set by args_parse */
} arg_spec;

/* Parses argv[1..argc) into the table; positional arguments are collected in order into
 * positional[] (at most max_positional). Returns 0, 1 when --help was printed, or 2 on error
 * (message printed to stderr, naming the command and the flag). */
int args_parse(const char *command, arg_spec *specs, int n_specs, int argc, char **argv,
               const char **positional, int max_positional, int *n_positional);
void args_usage(const char *command, const char *synopsis, const arg_spec *specs, int n_specs);
bool args_seen(const arg_spec *specs, int n_specs, const char *name);

#endif
