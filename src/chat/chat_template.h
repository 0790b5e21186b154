/* Chat-template rendering as transformers' apply_chat_template does it: the template sees
 * messages, tools, documents, add_generation_prompt, bos_token, eos_token and any extra
 * kwargs (chat_template_kwargs); continue_final_message cuts the prompt right after the last
 * message's content. Built-in named templates (chatml, llama-2, llama-3, mistral,
 * deepseek-v3, qwen2, ...) stand in when a model carries none.
 *
 * Pure functions over their inputs, safe to call from any thread. The returned prompt is
 * malloc'd and owned by the caller. Errors: CHAT_ERR_RAISED means the template refused the
 * conversation with raise_exception(msg) and err holds exactly msg (an HTTP server sends it as
 * a 400); CHAT_ERR_SYNTAX means the template itself is broken (err: "line N: cause"). */
#ifndef SGLC_CHAT_CHAT_TEMPLATE_H
#define SGLC_CHAT_CHAT_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum {
    CHAT_OK = 0,
    CHAT_ERR_RAISED = 1, /* raise_exception(msg) in the template */
    CHAT_ERR_SYNTAX = 2, /* the template does not parse */
    CHAT_ERR_RENDER = 3, /* undefined value, type error, or a render limit */
    CHAT_ERR_INPUT = 4,  /* bad arguments (e.g. continue_final_message with no content) */
} chat_status;

typedef struct {
    const json_t *messages;  /* array of message objects (required) */
    const json_t *tools;     /* array or NULL (the template then sees tools = none) */
    const json_t *documents; /* array or NULL */
    bool add_generation_prompt;
    bool continue_final_message; /* exclusive with add_generation_prompt */
    const char *bos_token;       /* NULL: not defined for the template */
    const char *eos_token;
    const json_t *extra_kwargs; /* object or NULL: more template variables */
} chat_render_args;

/* Renders template_source (NUL-terminated). On CHAT_OK *out is the prompt (caller frees) and,
 * when out_len is not NULL, its length in bytes. */
chat_status chat_template_render(const char *template_source, const chat_render_args *args,
                                 char **out, size_t *out_len, char *err, size_t err_len);

/* The brief's flat form of chat_template_render (no documents, no continue_final_message). */
chat_status chat_render(const char *template_source, const json_t *messages, const json_t *tools,
                        bool add_generation_prompt, const char *bos_token, const char *eos_token,
                        const json_t *extra_kwargs, char **out, char *err, size_t err_len);

/* Jinja source of a built-in template by name, or NULL. */
const char *chat_template_builtin(const char *name);
/* NULL-terminated list of the built-in names. */
const char *const *chat_template_builtin_names(void);

#endif
