/* What several subcommands share: opening the backend and model from --model-path,
 * --threads and --quantization, with one error line and exit status 2 on bad input. */
#ifndef SGLC_CLI_COMMON_H
#define SGLC_CLI_COMMON_H

#include <stdint.h>

#include "kernels/backend.h"
#include "model/model.h"

/* quantization: NULL, "none", or "w8a8_int8"; threads <= 0: all CPUs available.
 * Returns 0, or an exit status (2) after printing the reason. */
int cli_open_model(const char *command, const char *model_path, const char *quantization,
                   long threads, backend **be, model **m);
/* --kv-cache-dtype: auto (fp16, as the server's engine uses), fp32, fp16 or bf16; fp8 variants
 * are refused. Returns 0, or 2 after printing the reason. */
int cli_kv_dtype(const char *command, const char *name, dtype_t *out);
/* Parses "1,2,3" (spaces allowed) into a malloc'd array; returns -1 on a bad list. */
int cli_parse_ids(const char *text, int32_t **ids, int64_t *n);

#endif
