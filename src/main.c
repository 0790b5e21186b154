/* sglc: subcommand dispatch only. `sglc launch_server ...` stands where SGLang users type
 * `python3 -m sglang.launch_server ...`; each subcommand lives in src/cli/. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} subcommand;

static const subcommand subcommands[] = {
    {"generate", cli_generate, "run a model on a prompt and print the continuation"},
    {"bench_one_batch", cli_bench_one_batch, "time prefill and decode of one static batch"},
    {"bench_offline_throughput", cli_bench_offline_throughput, "time a workload through the batching engine"},
    /* more subcommands: keep one line each, alphabetical after the two above */
    {"apply_chat_template", cli_apply_chat_template, "print the prompt a chat template makes of messages"},
    {"bench_serving", cli_bench_serving, "benchmark a running server over HTTP (SGLang's table)"},
    {"check_system", cli_check_system, "check host settings for serving (governor, NUMA, swap)"},
    {"detokenize", cli_detokenize, "print the text of a list of token ids"},
    {"launch_lb", cli_launch_lb, "load balancer in front of prefill and decode servers (PD)"},
    {"launch_server", cli_launch_server, "serve a model over HTTP (OpenAI and SGLang APIs)"},
    {"tokenize", cli_tokenize, "print the token ids of a text as JSON"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: sglc <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(out, "  %-22s %s\n", subcommands[i].name, subcommands[i].help);
    fprintf(out, "\n`sglc <command> --help` describes each command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (!strcmp(argv[1], subcommands[i].name)) return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "sglc: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
