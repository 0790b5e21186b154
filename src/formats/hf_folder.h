/* A Hugging Face model folder: config.json (required), generation_config.json (optional), and
 * the weights, either one model.safetensors or the shards that model.safetensors.index.json
 * lists in its weight_map. hf_folder_open opens every shard once and checks that each tensor
 * the index lists is in the shard it names; tensors are then found by their HF name across
 * shards. Errors are one line naming the file and the tensor or field.
 * Owns the parsed JSON and the open shards; all pointers it hands out stay valid until
 * hf_folder_close. Read-only after open: safe to share between threads. */
#ifndef SGLC_FORMATS_HF_FOLDER_H
#define SGLC_FORMATS_HF_FOLDER_H

#include <stddef.h>

#include <jansson.h>

#include "formats/safetensors.h"

typedef struct hf_folder hf_folder;

/* NULL on error, with the reason in err. */
hf_folder *hf_folder_open(const char *dir, char *err, size_t err_len);
void hf_folder_close(hf_folder *f);

const char *hf_folder_path(const hf_folder *f);          /* the folder, for tokenizer files */
json_t *hf_folder_config(const hf_folder *f);            /* config.json (borrowed) */
json_t *hf_folder_generation_config(const hf_folder *f); /* borrowed, NULL when absent */

size_t hf_folder_n_shards(const hf_folder *f);
const safetensors_file *hf_folder_shard(const hf_folder *f, size_t i);

/* Every tensor of every shard (each name once), shard by shard in file order. */
size_t hf_folder_n_tensors(const hf_folder *f);
const safetensors_tensor *hf_folder_tensor_at(const hf_folder *f, size_t i);
/* By HF name ("model.layers.0.self_attn.q_proj.weight"); NULL when absent. */
const safetensors_tensor *hf_folder_find(const hf_folder *f, const char *name);

#endif
