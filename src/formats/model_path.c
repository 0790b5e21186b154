/* --model-path resolution (formats/model_path.h). The cache layout is huggingface_hub's:
 *   <hub>/models--ORG--NAME/refs/main           the commit hash that "main" points to
 *   <hub>/models--ORG--NAME/snapshots/<hash>/   the files (symlinks into blobs/)
 * and the cache root is found as huggingface_hub finds it, so a model that `huggingface-cli
 * download` fetched is found without saying where. */
#include "formats/model_path.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MP_PATH 4096

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static bool ends_with_gguf(const char *s) {
    size_t n = strlen(s);
    return n > 5 && !strcasecmp(s + n - 5, ".gguf");
}

static bool has_gguf_magic(const char *path) {
    FILE *fp = fopen(path, "rb");
    char m[4] = {0};
    bool ok = fp && fread(m, 1, 4, fp) == 4 && !memcmp(m, "GGUF", 4);
    if (fp) fclose(fp);
    return ok;
}

static void seterr(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || !err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static model_src_kind put_out(model_src_kind kind, const char *path, char *out, size_t out_len,
                              char *err, size_t err_len) {
    if ((size_t)snprintf(out, out_len, "%s", path) >= out_len) {
        seterr(err, err_len, "%s: path longer than %zu bytes", path, out_len);
        return MODEL_SRC_NONE;
    }
    return kind;
}

/* A folder: HF layout (config.json with weights) or exactly one .gguf. */
static model_src_kind resolve_dir(const char *dir, char *out, size_t out_len, char *err,
                                  size_t err_len) {
    char cfg[MP_PATH], st[MP_PATH], ix[MP_PATH], one[MP_PATH];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    snprintf(ix, sizeof ix, "%s/model.safetensors.index.json", dir);
    bool config = is_file(cfg), weights = is_file(st) || is_file(ix);
    if (config && weights) return put_out(MODEL_SRC_HF_FOLDER, dir, out, out_len, err, err_len);

    DIR *d = opendir(dir);
    if (!d) {
        seterr(err, err_len, "%s: cannot list the folder", dir);
        return MODEL_SRC_NONE;
    }
    int n_gguf = 0;
    char names[256] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!ends_with_gguf(e->d_name)) continue;
        char p[MP_PATH];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= sizeof p || !is_file(p))
            continue;
        if (n_gguf++ == 0) snprintf(one, sizeof one, "%s", p);
        size_t k = strlen(names);
        if (k < sizeof names - 1)
            snprintf(names + k, sizeof names - k, "%s%s", k ? ", " : "", e->d_name);
    }
    closedir(d);
    if (n_gguf == 1) return put_out(MODEL_SRC_GGUF, one, out, out_len, err, err_len);
    if (n_gguf > 1) {
        seterr(err, err_len, "%s: holds %d .gguf files (%s): pass the one to load", dir, n_gguf,
               names);
        return MODEL_SRC_NONE;
    }
    /* config.json without weights: let hf_folder_open name what is missing. */
    if (config) return put_out(MODEL_SRC_HF_FOLDER, dir, out, out_len, err, err_len);
    seterr(err, err_len, "%s: no config.json (Hugging Face folder) and no .gguf file", dir);
    return MODEL_SRC_NONE;
}

static bool valid_repo_part(const char *s, size_t n) {
    if (n == 0 || n > 96 || s[0] == '.' || s[0] == '-') return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok) return false;
    }
    return true;
}

/* "ORG/NAME" with HF's characters; the pieces go into org and name. */
static bool parse_repo_id(const char *arg, char *org, char *name) {
    const char *slash = strchr(arg, '/');
    if (!slash || strchr(slash + 1, '/')) return false;
    size_t a = (size_t)(slash - arg), b = strlen(slash + 1);
    if (!valid_repo_part(arg, a) || !valid_repo_part(slash + 1, b)) return false;
    memcpy(org, arg, a), org[a] = 0;
    memcpy(name, slash + 1, b), name[b] = 0;
    return true;
}

/* The hub cache root and which setting gave it. */
static bool hub_root(char *root, size_t len, const char **from) {
    const char *v;
    if ((v = getenv("HF_HUB_CACHE")) && *v) {
        *from = "$HF_HUB_CACHE";
        return (size_t)snprintf(root, len, "%s", v) < len;
    }
    if ((v = getenv("HF_HOME")) && *v) {
        *from = "$HF_HOME/hub";
        return (size_t)snprintf(root, len, "%s/hub", v) < len;
    }
    if ((v = getenv("XDG_CACHE_HOME")) && *v) {
        *from = "$XDG_CACHE_HOME/huggingface/hub";
        return (size_t)snprintf(root, len, "%s/huggingface/hub", v) < len;
    }
    if ((v = getenv("HOME")) && *v) {
        *from = "~/.cache/huggingface/hub";
        return (size_t)snprintf(root, len, "%s/.cache/huggingface/hub", v) < len;
    }
    return false;
}

static void append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t len, const char *fmt, ...) {
    size_t k = strlen(buf);
    if (k >= len - 1) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + k, len - k, fmt, ap);
    va_end(ap);
}

/* snapshots/<refs/main>, else the only or the newest snapshot; false when none. */
static bool pick_snapshot(const char *repo, char *snap, size_t len, char *looked,
                          size_t looked_len) {
    char ref[MP_PATH], hash[128] = "";
    if ((size_t)snprintf(ref, sizeof ref, "%s/refs/main", repo) >= sizeof ref) return false;
    FILE *fp = fopen(ref, "r");
    if (fp) {
        if (!fgets(hash, sizeof hash, fp)) hash[0] = 0;
        fclose(fp);
        hash[strcspn(hash, " \t\r\n")] = 0;
        bool ok = hash[0] != 0;
        for (const char *c = hash; *c; c++)
            if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')))
                ok = false;
        if (ok && (size_t)snprintf(snap, len, "%s/snapshots/%s", repo, hash) < len && is_dir(snap))
            return true;
        append(looked, looked_len, "; %s/snapshots/%s (from refs/main: not there)", repo, hash);
    } else {
        append(looked, looked_len, "; %s (missing)", ref);
    }
    char dirp[MP_PATH];
    if ((size_t)snprintf(dirp, sizeof dirp, "%s/snapshots", repo) >= sizeof dirp) return false;
    DIR *d = opendir(dirp);
    if (!d) {
        append(looked, looked_len, "; %s (missing)", dirp);
        return false;
    }
    struct dirent *e;
    struct timespec best = {0};
    bool found = false;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[MP_PATH];
        struct stat st;
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dirp, e->d_name) >= sizeof p ||
            stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        bool newer = st.st_mtim.tv_sec > best.tv_sec ||
                     (st.st_mtim.tv_sec == best.tv_sec && st.st_mtim.tv_nsec > best.tv_nsec);
        if (!found || newer) {
            best = st.st_mtim;
            found = (size_t)snprintf(snap, len, "%s", p) < len;
        }
    }
    closedir(d);
    if (!found) append(looked, looked_len, "; %s (no snapshot)", dirp);
    return found;
}

model_src_kind model_path_resolve(const char *arg, char *out, size_t out_len, char *err,
                                  size_t err_len) {
    if (err && err_len) err[0] = 0;
    if (!arg || !*arg) {
        seterr(err, err_len, "empty model path");
        return MODEL_SRC_NONE;
    }
    if (is_file(arg)) {
        if (ends_with_gguf(arg) || has_gguf_magic(arg))
            return put_out(MODEL_SRC_GGUF, arg, out, out_len, err, err_len);
        seterr(err, err_len,
               "%s: not a GGUF file (pass a .gguf file, a model folder or a Hugging Face repo "
               "id ORG/NAME)",
               arg);
        return MODEL_SRC_NONE;
    }
    if (is_dir(arg)) return resolve_dir(arg, out, out_len, err, err_len);

    char org[128], name[128];
    if (!parse_repo_id(arg, org, name)) {
        seterr(err, err_len, "%s: no such file or folder (and not a repo id ORG/NAME)", arg);
        return MODEL_SRC_NONE;
    }
    char looked[1536];
    snprintf(looked, sizeof looked, "%s (no such local file or folder)", arg);
    char root[MP_PATH], repo[MP_PATH], snap[MP_PATH];
    const char *from = "";
    if (!hub_root(root, sizeof root, &from)) {
        append(looked, sizeof looked,
               "; the Hugging Face cache (no HF_HUB_CACHE, HF_HOME or HOME)");
    } else {
        if ((size_t)snprintf(repo, sizeof repo, "%s/models--%s--%s", root, org, name) >=
            sizeof repo) {
            append(looked, sizeof looked, "; %s (path too long)", root);
        } else if (!is_dir(repo)) {
            append(looked, sizeof looked, "; %s (missing; cache root from %s)", repo, from);
        } else if (pick_snapshot(repo, snap, sizeof snap, looked, sizeof looked)) {
            return resolve_dir(snap, out, out_len, err, err_len);
        }
    }
    seterr(err, err_len, "model '%s' not found (nothing is downloaded); looked at: %s", arg,
           looked);
    return MODEL_SRC_NONE;
}
