/* Hugging Face model folders (formats/hf_folder.h), laid out as transformers saves them. Like
 * transformers, a single model.safetensors wins over an index; shards are opened in name order
 * so that tensor order does not depend on the order of the index's JSON. */
#include "formats/hf_folder.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/name_index.h"

struct hf_folder {
    char *path;
    json_t *config;
    json_t *gen_config;
    size_t n_shards;
    safetensors_file **shards;
    size_t n_tensors;
    const safetensors_tensor **tensors;
    name_index index;
};

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Loads a JSON object from dir/name; NULL with err set when missing (if required) or bad. */
static json_t *load_json(const char *dir, const char *name, bool required, bool *bad, char *err,
                         size_t err_len) {
    char path[4096];
    *bad = false;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        snprintf(err, err_len, "%s: path too long", dir);
        *bad = true;
        return NULL;
    }
    if (!is_file(path)) {
        if (required) {
            snprintf(err, err_len, "%s: %s", path, errno == ENOENT ? "missing" : strerror(errno));
            *bad = true;
        }
        return NULL;
    }
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        snprintf(err, err_len, "%s: %s (line %d, column %d)", path, je.text, je.line, je.column);
        *bad = true;
        return NULL;
    }
    if (!json_is_object(j)) {
        snprintf(err, err_len, "%s: not a JSON object", path);
        json_decref(j);
        *bad = true;
        return NULL;
    }
    return j;
}

static bool open_shard(hf_folder *f, const char *file, char *err, size_t err_len) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", f->path, file) >= sizeof path) {
        snprintf(err, err_len, "%s: path too long", f->path);
        return false;
    }
    safetensors_file *s = safetensors_open(path, err, err_len);
    if (!s) return false;
    f->shards[f->n_shards++] = s;
    return true;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Opens the shards that the index names, then checks every listed tensor is where it says. */
static bool open_sharded(hf_folder *f, const char *index_path, char *err, size_t err_len) {
    json_error_t je;
    json_t *ix = json_load_file(index_path, JSON_REJECT_DUPLICATES, &je);
    if (!ix) {
        snprintf(err, err_len, "%s: %s (line %d, column %d)", index_path, je.text, je.line,
                 je.column);
        return false;
    }
    bool ok = false;
    const char **names = NULL;
    json_t *map = json_object_get(ix, "weight_map");
    if (!json_is_object(map) || json_object_size(map) == 0) {
        snprintf(err, err_len, "%s: weight_map is missing, empty or not an object", index_path);
        goto out;
    }
    /* The distinct shard file names, sorted. */
    size_t n = 0;
    names = malloc(json_object_size(map) * sizeof *names);
    if (!names) {
        snprintf(err, err_len, "%s: out of memory", index_path);
        goto out;
    }
    const char *tensor;
    json_t *v;
    json_object_foreach(map, tensor, v) {
        const char *file = json_string_value(v);
        if (!file || !*file || strchr(file, '/') || !strcmp(file, ".") || !strcmp(file, "..")) {
            snprintf(err, err_len, "%s: weight_map: tensor '%.96s': shard is not a file name",
                     index_path, tensor);
            goto out;
        }
        names[n++] = file;
    }
    qsort(names, n, sizeof *names, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (!u || strcmp(names[u - 1], names[i])) names[u++] = names[i];
    f->shards = calloc(u, sizeof *f->shards);
    if (!f->shards) {
        snprintf(err, err_len, "%s: out of memory", index_path);
        goto out;
    }
    for (size_t i = 0; i < u; i++) {
        if (!open_shard(f, names[i], err, err_len)) {
            /* Say which index sent us there when the shard itself is missing. */
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", f->path, names[i]);
            if (!is_file(path))
                snprintf(err, err_len, "%s: shard '%s' listed in weight_map is missing", index_path,
                         names[i]);
            goto out;
        }
    }
    json_object_foreach(map, tensor, v) {
        const char *file = json_string_value(v);
        const char **hit = bsearch(&file, names, u, sizeof *names, cmp_str);
        const safetensors_file *s = f->shards[hit - names];
        if (!safetensors_find(s, tensor)) {
            snprintf(err, err_len, "%s: tensor '%.96s' listed in weight_map is not in shard '%s'",
                     index_path, tensor, file);
            goto out;
        }
    }
    ok = true;
out:
    free(names);
    json_decref(ix);
    return ok;
}

static bool index_tensors(hf_folder *f, char *err, size_t err_len) {
    size_t total = 0;
    for (size_t i = 0; i < f->n_shards; i++) total += safetensors_n_tensors(f->shards[i]);
    f->tensors = calloc(total ? total : 1, sizeof *f->tensors);
    if (!f->tensors || !name_index_init(&f->index, total)) {
        snprintf(err, err_len, "%s: out of memory", f->path);
        return false;
    }
    for (size_t i = 0; i < f->n_shards; i++) {
        const safetensors_file *s = f->shards[i];
        for (size_t k = 0; k < safetensors_n_tensors(s); k++) {
            const safetensors_tensor *t = safetensors_tensor_at(s, k);
            if (!name_index_add(&f->index, t->name, strlen(t->name), f->n_tensors, NULL)) {
                size_t j = 0;
                while (j < i && !safetensors_find(f->shards[j], t->name)) j++;
                snprintf(err, err_len, "%s: tensor '%.96s' is in two shards: %s and %s", f->path,
                         t->name, safetensors_path(f->shards[j]), safetensors_path(s));
                return false;
            }
            f->tensors[f->n_tensors++] = t;
        }
    }
    return true;
}

hf_folder *hf_folder_open(const char *dir, char *err, size_t err_len) {
    char dummy[8];
    if (!err || !err_len) err = dummy, err_len = sizeof dummy;
    err[0] = 0;
    hf_folder *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(dir))) {
        snprintf(err, err_len, "%s: out of memory", dir);
        free(f);
        return NULL;
    }
    /* "dir/" and "dir" are the same folder; keep messages free of "//". */
    for (size_t n = strlen(f->path); n > 1 && f->path[n - 1] == '/'; n--) f->path[n - 1] = 0;
    bool bad;
    f->config = load_json(f->path, "config.json", true, &bad, err, err_len);
    if (!f->config) goto fail;
    f->gen_config = load_json(f->path, "generation_config.json", false, &bad, err, err_len);
    if (bad) goto fail;

    char single[4096], index[4096];
    snprintf(single, sizeof single, "%s/model.safetensors", f->path);
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", f->path);
    if (is_file(single)) {
        f->shards = calloc(1, sizeof *f->shards);
        if (!f->shards || !open_shard(f, "model.safetensors", err, err_len)) goto fail;
    } else if (is_file(index)) {
        if (!open_sharded(f, index, err, err_len)) goto fail;
    } else {
        snprintf(err, err_len, "%s: no model.safetensors or model.safetensors.index.json", f->path);
        goto fail;
    }
    if (!index_tensors(f, err, err_len)) goto fail;
    return f;
fail:
    hf_folder_close(f);
    return NULL;
}

void hf_folder_close(hf_folder *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_shards; i++) safetensors_close(f->shards[i]);
    free(f->shards);
    free(f->tensors);
    name_index_free(&f->index);
    json_decref(f->config);
    json_decref(f->gen_config);
    free(f->path);
    free(f);
}

const char *hf_folder_path(const hf_folder *f) { return f->path; }
json_t *hf_folder_config(const hf_folder *f) { return f->config; }
json_t *hf_folder_generation_config(const hf_folder *f) { return f->gen_config; }
size_t hf_folder_n_shards(const hf_folder *f) { return f->n_shards; }

const safetensors_file *hf_folder_shard(const hf_folder *f, size_t i) {
    return i < f->n_shards ? f->shards[i] : NULL;
}

size_t hf_folder_n_tensors(const hf_folder *f) { return f->n_tensors; }

const safetensors_tensor *hf_folder_tensor_at(const hf_folder *f, size_t i) {
    return i < f->n_tensors ? f->tensors[i] : NULL;
}

const safetensors_tensor *hf_folder_find(const hf_folder *f, const char *name) {
    size_t i;
    if (!name_index_find(&f->index, name, strlen(name), &i)) return NULL;
    return f->tensors[i];
}
