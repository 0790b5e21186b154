/* `sglc apply_chat_template`: renders a chat template over a conversation and prints the prompt
 * byte for byte (no newline added), so the renderer can be checked against Python's jinja2 and
 * a model's template can be tried without starting a server. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chat/chat_template.h"
#include "cli/cli.h"
#include "formats/gguf.h"

static void usage(FILE *f) {
    fprintf(f, "usage: sglc apply_chat_template (--model-path P | --chat-template FILE|NAME)\n"
               "         --messages M.json [--tools T.json] [--add-generation-prompt]\n"
               "         [--continue-final-message] [--bos-token S] [--eos-token S]\n"
               "         [--chat-template-kwargs JSON]\n\n"
               "  --model-path P         a .gguf file (tokenizer.chat_template) or a model folder\n"
               "                         with tokenizer_config.json\n"
               "  --chat-template X      a Jinja file, or a built-in name:");
    for (const char *const *n = chat_template_builtin_names(); *n; n++) fprintf(f, " %s", *n);
    fprintf(f, "\n\nPrints the prompt; exit 1 when the template raises an exception (its message\n"
               "on stderr), 2 on bad usage, bad input or a template syntax error.\n");
}

static char *read_file(const char *path, char *err, size_t err_len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        if (n + 1 >= cap) {
            if (cap > ((size_t)1 << 30)) {
                snprintf(err, err_len, "%s: file too large", path);
                free(buf);
                fclose(f);
                return NULL;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    fclose(f);
    if (!buf) {
        snprintf(err, err_len, "%s: out of memory", path);
        return NULL;
    }
    buf[n] = 0;
    if (strlen(buf) != n) {
        snprintf(err, err_len, "%s: contains a NUL byte", path);
        free(buf);
        return NULL;
    }
    return buf;
}

static json_t *load_json(const char *path, const char *what, char *err, size_t err_len) {
    json_error_t je;
    json_t *j = json_load_file(path, JSON_ALLOW_NUL, &je);
    if (!j)
        snprintf(err, err_len, "%s %.1000s: line %d column %d: %s", what, path, je.line, je.column,
                 je.text);
    return j;
}

/* bos_token / eos_token in tokenizer_config.json: a string or an AddedToken object. */
static const char *token_text(const json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v) && json_is_string(json_object_get(v, "content")))
        return json_string_value(json_object_get(v, "content"));
    return NULL;
}

typedef struct {
    char *template_src;
    char *bos, *eos;
} model_template;

static int from_folder(const char *dir, model_template *mt, char *err, size_t err_len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_t *cfg = load_json(path, "tokenizer config", err, err_len);
    if (!cfg) return -1;
    const json_t *ct = json_object_get(cfg, "chat_template");
    const char *src = NULL;
    if (json_is_string(ct))
        src = json_string_value(ct);
    else if (json_is_array(ct)) {
        size_t i;
        json_t *e;
        json_array_foreach(ct, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            if (name && !strcmp(name, "default"))
                src = json_string_value(json_object_get(e, "template"));
        }
    }
    if (!src) {
        /* newer checkpoints keep the template beside the config */
        snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
        char e2[256];
        mt->template_src = read_file(path, e2, sizeof e2);
        if (!mt->template_src) {
            snprintf(err, err_len,
                     "%s/tokenizer_config.json: no chat_template (and no chat_template.jinja)",
                     dir);
            json_decref(cfg);
            return -1;
        }
    } else {
        mt->template_src = strdup(src);
    }
    const char *b = token_text(json_object_get(cfg, "bos_token"));
    const char *e = token_text(json_object_get(cfg, "eos_token"));
    mt->bos = b ? strdup(b) : NULL;
    mt->eos = e ? strdup(e) : NULL;
    json_decref(cfg);
    return 0;
}

static char *gguf_token(gguf_file *g, const char *id_key) {
    int64_t id;
    const gguf_kv *toks = gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (!gguf_get_i64(g, id_key, &id) || !toks || toks->type != GGUF_ARRAY ||
        toks->arr_type != GGUF_STRING || id < 0 || (uint64_t)id >= toks->arr_n)
        return NULL;
    const gguf_str *s = &toks->arr_strs[id];
    char *out = malloc(s->len + 1);
    if (!out) return NULL;
    memcpy(out, s->ptr, s->len);
    out[s->len] = 0;
    return out;
}

static int from_gguf(const char *path, model_template *mt, char *err, size_t err_len) {
    gguf_file *g = gguf_open(path, err, err_len);
    if (!g) return -1;
    mt->template_src = gguf_get_str(g, "tokenizer.chat_template");
    if (!mt->template_src) {
        snprintf(err, err_len, "%s: no tokenizer.chat_template", path);
        gguf_close(g);
        return -1;
    }
    mt->bos = gguf_token(g, "tokenizer.ggml.bos_token_id");
    mt->eos = gguf_token(g, "tokenizer.ggml.eos_token_id");
    gguf_close(g);
    return 0;
}

int cli_apply_chat_template(int argc, char **argv) {
    const char *model_path = NULL, *chat_template = NULL, *messages_path = NULL, *tools_path = NULL,
               *bos = NULL, *eos = NULL, *kwargs_text = NULL;
    bool add_gen = false, cont = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--add-generation-prompt"))
            add_gen = true;
        else if (!strcmp(a, "--continue-final-message"))
            cont = true;
        else if (!strcmp(a, "--model-path"))
            slot = &model_path;
        else if (!strcmp(a, "--chat-template"))
            slot = &chat_template;
        else if (!strcmp(a, "--messages"))
            slot = &messages_path;
        else if (!strcmp(a, "--tools"))
            slot = &tools_path;
        else if (!strcmp(a, "--bos-token"))
            slot = &bos;
        else if (!strcmp(a, "--eos-token"))
            slot = &eos;
        else if (!strcmp(a, "--chat-template-kwargs"))
            slot = &kwargs_text;
        else {
            fprintf(stderr, "apply_chat_template: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (slot) {
            if (i + 1 >= argc) {
                fprintf(stderr, "apply_chat_template: %s needs a value\n", a);
                return 2;
            }
            *slot = argv[++i];
        }
    }
    if (!messages_path || (!model_path && !chat_template)) {
        usage(stderr);
        return 2;
    }
    char err[2048] = "";
    int rc = 2;
    model_template mt = {0};
    json_t *messages = NULL, *tools = NULL, *kwargs = NULL;
    char *out = NULL;
    if (chat_template) {
        struct stat st;
        if (stat(chat_template, &st) == 0 && S_ISREG(st.st_mode)) {
            mt.template_src = read_file(chat_template, err, sizeof err);
            if (!mt.template_src) goto fail;
        } else if (chat_template_builtin(chat_template)) {
            mt.template_src = strdup(chat_template_builtin(chat_template));
        } else {
            snprintf(err, sizeof err, "--chat-template %s: no such file or built-in template",
                     chat_template);
            goto fail;
        }
    }
    if (model_path) {
        model_template m2 = {0};
        struct stat st;
        if (stat(model_path, &st) != 0) {
            snprintf(err, sizeof err, "%s: %s", model_path, strerror(errno));
            goto fail;
        }
        int r = S_ISDIR(st.st_mode) ? from_folder(model_path, &m2, err, sizeof err)
                                    : from_gguf(model_path, &m2, err, sizeof err);
        if (r != 0 && !mt.template_src) goto fail;
        if (!mt.template_src)
            mt.template_src = m2.template_src;
        else
            free(m2.template_src);
        mt.bos = m2.bos;
        mt.eos = m2.eos;
    }
    messages = load_json(messages_path, "messages", err, sizeof err);
    if (!messages) goto fail;
    if (!json_is_array(messages)) {
        snprintf(err, sizeof err, "messages %s: not a JSON array", messages_path);
        goto fail;
    }
    if (tools_path && !(tools = load_json(tools_path, "tools", err, sizeof err))) goto fail;
    if (kwargs_text) {
        json_error_t je;
        kwargs = json_loads(kwargs_text, JSON_ALLOW_NUL, &je);
        if (!json_is_object(kwargs)) {
            snprintf(err, sizeof err, "--chat-template-kwargs: not a JSON object (%s)",
                     kwargs ? "wrong type" : je.text);
            goto fail;
        }
    }
    chat_render_args args = {.messages = messages,
                             .tools = tools,
                             .add_generation_prompt = add_gen,
                             .continue_final_message = cont,
                             .bos_token = bos ? bos : mt.bos,
                             .eos_token = eos ? eos : mt.eos,
                             .extra_kwargs = kwargs};
    size_t len;
    chat_status cs = chat_template_render(mt.template_src, &args, &out, &len, err, sizeof err);
    if (cs == CHAT_OK) {
        fwrite(out, 1, len, stdout);
        fflush(stdout);
        rc = 0;
    } else {
        rc = (cs == CHAT_ERR_RAISED || cs == CHAT_ERR_RENDER) ? 1 : 2;
        if (cs == CHAT_ERR_RAISED)
            fprintf(stderr, "%s\n", err);
        else
            fprintf(stderr, "apply_chat_template: %s\n", err);
        err[0] = 0;
    }
fail:
    if (rc == 2 && err[0]) fprintf(stderr, "apply_chat_template: %s\n", err);
    free(out);
    free(mt.template_src);
    free(mt.bos);
    free(mt.eos);
    json_decref(messages);
    json_decref(tools);
    json_decref(kwargs);
    return rc;
}
