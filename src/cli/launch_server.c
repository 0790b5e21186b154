/* `sglc launch_server` (SGLang's `python -m sglang.launch_server`): parses SGLang's flags,
 * refusing with status 2 any this build cannot honour, then runs the API server until
 * SIGTERM/SIGINT. */
#include <stdio.h>

#include "base/log.h"
#include "cli/cli.h"
#include "config/server_args.h"
#include "server/server.h"

int cli_launch_server(int argc, char **argv) {
    server_args a;
    char err[4096] = "";
    int rc = server_args_parse(argc, argv, &a, err, sizeof err);
    if (rc == 1) return 0; /* --help */
    if (rc != 0) {
        fprintf(stderr, "sglc launch_server: %s\n", err);
        return 2;
    }
    int level = log_parse_level(a.log_level);
    if (level >= 0) log_set_level((log_level)level);
    return server_run(&a);
}
