/* Turns what a user passes as --model-path into a path the loaders open: a .gguf file, a folder
 * (a Hugging Face folder with config.json, or one holding exactly one .gguf), or a Hugging Face
 * repo id "ORG/NAME" found in the local HF cache ($HF_HUB_CACHE, else $HF_HOME/hub, else
 * ~/.cache/huggingface/hub; models--ORG--NAME/snapshots/<refs/main>, else the only or newest
 * snapshot). Nothing is downloaded. Errors are one line; when nothing is found it lists every
 * place it looked. Thread-safe (reads the environment). */
#ifndef SGLC_FORMATS_MODEL_PATH_H
#define SGLC_FORMATS_MODEL_PATH_H

#include <stddef.h>

typedef enum {
    MODEL_SRC_NONE = 0,      /* error: see err */
    MODEL_SRC_GGUF = 1,      /* out is a .gguf file */
    MODEL_SRC_HF_FOLDER = 2, /* out is a folder with config.json (open with hf_folder_open) */
} model_src_kind;

/* Writes the resolved path into out; returns its kind, or MODEL_SRC_NONE with err set. */
model_src_kind model_path_resolve(const char *arg, char *out, size_t out_len, char *err,
                                  size_t err_len);

#endif
