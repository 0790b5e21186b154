/* Maps a whole regular file read-only, for the model-file readers (GGUF, safetensors). An empty
 * file maps to NULL with size 0 (a success: the reader then says what it expected). Errors are
 * "PATH: reason" in err. */
#ifndef SGLC_FORMATS_MAPPED_FILE_H
#define SGLC_FORMATS_MAPPED_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *data; /* NULL when size is 0 */
    size_t size;
} mapped_file;

bool mapped_file_open(mapped_file *m, const char *path, char *err, size_t err_len);
void mapped_file_close(mapped_file *m);

#endif
