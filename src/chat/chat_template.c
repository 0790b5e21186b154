/* apply_chat_template's rules around the Jinja render: which variables the template sees and
 * how continue_final_message trims the prompt (transformers' render_jinja_template). */
#include "chat/chat_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja.h"
#include "chat/jinja_internal.h"

static void set_err(char *err, size_t err_len, const char *fmt, const char *arg) {
    if (err && err_len) snprintf(err, err_len, fmt, arg);
}

static size_t ws_prefix(const char *s, size_t n) {
    size_t i = 0, l;
    while (i < n && jpy_isspace_at(s, n, i, &l)) i += l;
    return i;
}

static size_t ws_suffix_start(const char *s, size_t n) {
    size_t end = n;
    while (end > 0) {
        size_t st = end - 1, l;
        while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
        if (!jpy_isspace_at(s, n, st, &l) || st + l != end) break;
        end = st;
    }
    return end;
}

/* transformers: find the final message's text (stripped) at its last occurrence in the
 * prompt and cut after it, keeping the message's own trailing whitespace when the template
 * kept it too. */
static chat_status continue_final(const json_t *messages, char *prompt, size_t *len, char *err,
                                  size_t err_len) {
    size_t n = json_array_size(messages);
    const json_t *last = n ? json_array_get(messages, n - 1) : NULL;
    const json_t *content = last ? json_object_get(last, "content") : NULL;
    const char *text = NULL;
    size_t tlen = 0;
    if (json_is_array(content)) {
        for (size_t i = json_array_size(content); i-- > 0;) {
            const json_t *t = json_object_get(json_array_get(content, i), "text");
            if (t) {
                text = json_string_value(t);
                tlen = json_string_length(t);
                break;
            }
        }
        if (!text) {
            set_err(err, err_len, "%s",
                    "continue_final_message is set but we could not find any text to continue in "
                    "the final message!");
            return CHAT_ERR_INPUT;
        }
    } else if (json_is_string(content)) {
        text = json_string_value(content);
        tlen = json_string_length(content);
    } else {
        set_err(err, err_len, "%s",
                "continue_final_message is set but the final message has no content");
        return CHAT_ERR_INPUT;
    }
    size_t a = ws_prefix(text, tlen), b = ws_suffix_start(text, tlen);
    if (b < a) b = a;
    const char *stripped = text + a;
    size_t slen = b - a;
    /* rindex of the stripped text */
    const char *hit = NULL;
    if (slen <= *len)
        for (size_t k = *len - slen + 1; k-- > 0;)
            if (!memcmp(prompt + k, stripped, slen)) {
                hit = prompt + k;
                break;
            }
    if (!hit) {
        set_err(err, err_len, "%s",
                "continue_final_message is set but the final message does not appear in the chat "
                "after applying the chat template! This can happen if the chat template deletes "
                "portions of the final message. Please verify the chat template and final message "
                "in your chat to ensure they are compatible.");
        return CHAT_ERR_INPUT;
    }
    size_t loc = (size_t)(hit - prompt);
    /* Python: rendered[loc:loc + len(msg.lstrip())] == msg holds only when msg has no leading
     * whitespace and the template copied it whole (trailing whitespace included) */
    size_t cut = (a == 0 && loc + tlen <= *len && !memcmp(prompt + loc, text, tlen)) ? loc + tlen
                                                                                     : loc + slen;
    prompt[cut] = 0;
    *len = cut;
    return CHAT_OK;
}

chat_status chat_template_render(const char *template_source, const chat_render_args *args,
                                 char **out, size_t *out_len, char *err, size_t err_len) {
    *out = NULL;
    if (out_len) *out_len = 0;
    if (!template_source || !args || !json_is_array(args->messages)) {
        set_err(err, err_len, "%s", "messages must be an array");
        return CHAT_ERR_INPUT;
    }
    if (args->continue_final_message && args->add_generation_prompt) {
        set_err(err, err_len, "%s",
                "continue_final_message and add_generation_prompt are not compatible. Use "
                "continue_final_message when you want the model to continue the final message, "
                "and add_generation_prompt when you want to add a header that will prompt it to "
                "start a new assistant message instead.");
        return CHAT_ERR_INPUT;
    }
    if (args->extra_kwargs && !json_is_object(args->extra_kwargs)) {
        set_err(err, err_len, "%s", "chat_template_kwargs must be an object");
        return CHAT_ERR_INPUT;
    }
    jinja_template *t;
    char perr[1024];
    jinja_status st = jinja_parse(template_source, strlen(template_source), &t, perr, sizeof perr);
    if (st != JINJA_OK) {
        set_err(err, err_len, "%s", perr);
        return st == JINJA_ERR_NOMEM ? CHAT_ERR_RENDER : CHAT_ERR_SYNTAX;
    }
    json_t *vars = json_object();
    /* transformers passes messages, tools, documents, add_generation_prompt, then the special
     * tokens, then the caller's kwargs (which override) */
    json_object_set(vars, "messages", (json_t *)args->messages);
    json_object_set_new(vars, "tools",
                        args->tools ? json_incref((json_t *)args->tools) : json_null());
    json_object_set_new(vars, "documents",
                        args->documents ? json_incref((json_t *)args->documents) : json_null());
    json_object_set_new(vars, "add_generation_prompt", json_boolean(args->add_generation_prompt));
    if (args->bos_token) json_object_set_new(vars, "bos_token", json_string(args->bos_token));
    if (args->eos_token) json_object_set_new(vars, "eos_token", json_string(args->eos_token));
    if (args->extra_kwargs) json_object_update(vars, (json_t *)args->extra_kwargs);
    size_t len = 0;
    char rerr[1024];
    st = jinja_render(t, vars, NULL, out, &len, rerr, sizeof rerr);
    json_decref(vars);
    jinja_free(t);
    if (st != JINJA_OK) {
        set_err(err, err_len, "%s", rerr);
        return st == JINJA_ERR_RAISED ? CHAT_ERR_RAISED : CHAT_ERR_RENDER;
    }
    if (args->continue_final_message) {
        chat_status cs = continue_final(args->messages, *out, &len, err, err_len);
        if (cs != CHAT_OK) {
            free(*out);
            *out = NULL;
            return cs;
        }
    }
    if (out_len) *out_len = len;
    return CHAT_OK;
}

chat_status chat_render(const char *template_source, const json_t *messages, const json_t *tools,
                        bool add_generation_prompt, const char *bos_token, const char *eos_token,
                        const json_t *extra_kwargs, char **out, char *err, size_t err_len) {
    chat_render_args a = {.messages = messages,
                          .tools = tools,
                          .add_generation_prompt = add_generation_prompt,
                          .bos_token = bos_token,
                          .eos_token = eos_token,
                          .extra_kwargs = extra_kwargs};
    return chat_template_render(template_source, &a, out, NULL, err, err_len);
}
