/* The subcommands of `sglc`, one file each in src/cli/. Each takes the arguments after its own
 * name and returns the process exit status: 0 success, 1 failure at run time, 2 bad usage or
 * bad input (unknown flag, a flag this build cannot honour, a corrupt model file). */
#ifndef SGLC_CLI_CLI_H
#define SGLC_CLI_CLI_H

int cli_generate(int argc, char **argv);
int cli_bench_one_batch(int argc, char **argv);
int cli_bench_offline_throughput(int argc, char **argv);
int cli_check_system(int argc, char **argv);
int cli_tokenize(int argc, char **argv);
int cli_detokenize(int argc, char **argv);
int cli_apply_chat_template(int argc, char **argv);
int cli_launch_server(int argc, char **argv);
int cli_launch_lb(int argc, char **argv);
int cli_bench_serving(int argc, char **argv);

#endif
