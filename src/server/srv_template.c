/* Which chat template the server renders: --chat-template (a built-in name or a file), else
 * the model's own (tokenizer.chat_template in a GGUF, chat_template in tokenizer_config.json
 * or chat_template.jinja in a HF folder), with the bos/eos token texts the template may use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "chat/chat_template.h"
#include "formats/gguf.h"
#include "formats/model_path.h"
#include "server/srv_internal.h"

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > (64u << 20)) break; /* a template is never this big */
            char *p = realloc(buf, cap);
            if (!p) break;
            buf = p;
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n < 4096) {
            fclose(f);
            buf[len] = 0;
            return buf;
        }
    }
    fclose(f);
    free(buf);
    return NULL;
}

static const char *token_text(const json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return json_string_value(json_object_get(v, "content"));
    return NULL;
}

static void from_folder(srv *s, const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_t *cfg = json_load_file(path, 0, NULL);
    const json_t *ct = json_object_get(cfg, "chat_template");
    if (json_is_string(ct)) s->chat_template = strdup(json_string_value(ct));
    size_t i;
    json_t *e;
    if (json_is_array(ct))
        json_array_foreach(ct, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            const char *src = json_string_value(json_object_get(e, "template"));
            if (name && src && !strcmp(name, "default") && !s->chat_template)
                s->chat_template = strdup(src);
        }
    if (!s->chat_template) {
        snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
        s->chat_template = read_all(path);
    }
    const char *b = token_text(json_object_get(cfg, "bos_token"));
    const char *t = token_text(json_object_get(cfg, "eos_token"));
    if (b && !s->bos_text) s->bos_text = strdup(b);
    if (t && !s->eos_text) s->eos_text = strdup(t);
    json_decref(cfg);
}

int srv_load_chat_template(srv *s, char *err, size_t err_len) {
    const char *name = s->args.chat_template;
    if (s->tok) {
        size_t len;
        const char *t;
        if (tok_bos(s->tok) >= 0 && (t = tok_text(s->tok, tok_bos(s->tok), &len)))
            s->bos_text = strndup(t, len);
        if (tok_eos(s->tok) >= 0 && (t = tok_text(s->tok, tok_eos(s->tok), &len)))
            s->eos_text = strndup(t, len);
    }
    if (name) {
        const char *builtin = chat_template_builtin(name);
        s->chat_template = builtin ? strdup(builtin) : read_all(name);
        if (!s->chat_template) {
            snprintf(err, err_len, "--chat-template %s: neither a built-in template name nor a "
                     "readable file", name);
            return -1;
        }
        log_info("chat template: %s", builtin ? name : "from file");
        return 0;
    }
    char path[4096], perr[512];
    model_src_kind kind = model_path_resolve(s->args.tokenizer_path ? s->args.tokenizer_path
                                                                    : s->args.model_path,
                                             path, sizeof path, perr, sizeof perr);
    if (kind == MODEL_SRC_GGUF) {
        gguf_file *g = gguf_open(path, perr, sizeof perr);
        if (g) s->chat_template = gguf_get_str(g, "tokenizer.chat_template");
        gguf_close(g);
    } else if (kind == MODEL_SRC_HF_FOLDER) {
        from_folder(s, path);
    }
    if (s->chat_template) log_info("chat template: the model's own");
    else log_warn("the model has no chat template: /v1/chat/completions will answer 400 "
                  "(use --chat-template)");
    return 0;
}
