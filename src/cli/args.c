/* Implementation of cli/args.h. */
#include "cli/args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void args_usage(const char *command, const char *synopsis, const arg_spec *specs, int n_specs) {
    printf("usage: sglc %s %s\n\noptions:\n", command, synopsis);
    for (int i = 0; i < n_specs; i++)
        printf("  %-28s %s\n", specs[i].name, specs[i].help ? specs[i].help : "");
}

bool args_seen(const arg_spec *specs, int n_specs, const char *name) {
    for (int i = 0; i < n_specs; i++)
        if (!strcmp(specs[i].name, name)) return specs[i].seen;
    return false;
}

static int store(const char *command, arg_spec *s, const char *value) {
    char *end;
    errno = 0;
    switch (s->kind) {
    case ARG_STR: *(const char **)s->dest = value; break;
    case ARG_INT: {
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end) {
            fprintf(stderr, "sglc %s: %s expects an integer, got '%s'\n", command, s->name, value);
            return 2;
        }
        *(long *)s->dest = v;
        break;
    }
    case ARG_FLOAT: {
        double v = strtod(value, &end);
        if (errno || end == value || *end) {
            fprintf(stderr, "sglc %s: %s expects a number, got '%s'\n", command, s->name, value);
            return 2;
        }
        *(double *)s->dest = v;
        break;
    }
    case ARG_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "1")) *(bool *)s->dest = true;
        else if (!strcmp(value, "false") || !strcmp(value, "0")) *(bool *)s->dest = false;
        else {
            fprintf(stderr, "sglc %s: %s expects true or false, got '%s'\n", command, s->name,
                    value);
            return 2;
        }
        break;
    }
    s->seen = true;
    return 0;
}

int args_parse(const char *command, arg_spec *specs, int n_specs, int argc, char **argv,
               const char **positional, int max_positional, int *n_positional) {
    *n_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return 1;
        if (strncmp(a, "--", 2) != 0 || !strcmp(a, "--")) {
            if (!strcmp(a, "--") && i + 1 < argc) a = argv[++i];
            if (*n_positional >= max_positional) {
                fprintf(stderr, "sglc %s: unexpected argument '%s'\n", command, a);
                return 2;
            }
            positional[(*n_positional)++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        arg_spec *s = NULL;
        for (int k = 0; k < n_specs; k++) {
            /* SGLang accepts both --flag-name and --flag_name */
            const char *n = specs[k].name;
            if (strlen(n) != len) continue;
            bool same = true;
            for (size_t c = 0; c < len && same; c++)
                same = n[c] == a[c] || (n[c] == '-' && a[c] == '_' && c > 1);
            if (same) {
                s = &specs[k];
                break;
            }
        }
        if (!s) {
            fprintf(stderr, "sglc %s: unknown option '%.*s' (see sglc %s --help)\n", command,
                    (int)len, a, command);
            return 2;
        }
        if (eq) {
            int rc = store(command, s, eq + 1);
            if (rc) return rc;
        } else if (s->kind == ARG_BOOL) {
            *(bool *)s->dest = true;
            s->seen = true;
        } else {
            if (i + 1 >= argc) {
                fprintf(stderr, "sglc %s: %s needs a value\n", command, s->name);
                return 2;
            }
            int rc = store(command, s, argv[++i]);
            if (rc) return rc;
        }
    }
    return 0;
}
