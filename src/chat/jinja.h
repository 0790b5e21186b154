/* The Jinja2 subset that real chat templates use, rendering byte-identical output to Python's
 * jinja2 under Hugging Face transformers' settings: ImmutableSandboxedEnvironment with
 * trim_blocks, lstrip_blocks and the loopcontrols extension, HF's tojson filter and the globals
 * raise_exception(msg) and strftime_now(fmt).
 *
 * A parsed template is immutable and may be rendered by several threads at once; each render
 * owns its memory (one arena, freed before jinja_render returns). Errors never crash: a syntax
 * error names the line and the cause; a render error (undefined attribute, type error, a limit
 * reached) or a raise_exception() call ends the render with the message in err. */
#ifndef SGLC_CHAT_JINJA_H
#define SGLC_CHAT_JINJA_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    JINJA_OK = 0,
    JINJA_ERR_RAISED = 1, /* the template called raise_exception(msg): err holds exactly msg */
    JINJA_ERR_SYNTAX = 2, /* the template does not parse: err says "line N: cause" */
    JINJA_ERR_RENDER = 3, /* render failed (undefined, type error, limit): err says why */
    JINJA_ERR_NOMEM = 4,
} jinja_status;

/* Bounds that keep hostile templates from hanging or exhausting memory. */
typedef struct {
    size_t max_output;  /* bytes of rendered text */
    size_t max_memory;  /* bytes of working memory for one render */
    uint64_t max_steps; /* work: statements, loop iterations, elements, 64-byte scans */
    int max_depth;      /* nesting of macro calls */
} jinja_limits;

/* Limits generous enough for any real conversation (64 MiB output, 1 GiB memory). */
jinja_limits jinja_default_limits(void);

typedef struct jinja_template jinja_template;

/* Parses src (len bytes, UTF-8). On success *out owns the template (jinja_free). */
jinja_status jinja_parse(const char *src, size_t len, jinja_template **out, char *err,
                         size_t err_len);
void jinja_free(jinja_template *t);

/* Renders with the variables of the JSON object vars (may be NULL). On JINJA_OK *out is a
 * malloc'd NUL-terminated string (the caller frees it) of *out_len bytes (which may contain NUL
 * bytes when the data does). lim may be NULL for jinja_default_limits(). */
jinja_status jinja_render(const jinja_template *t, const json_t *vars, const jinja_limits *lim,
                          char **out, size_t *out_len, char *err, size_t err_len);

#endif
