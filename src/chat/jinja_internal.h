/* What the pieces of the Jinja interpreter share: the arena every parse and render allocates
 * from, the runtime values (Python's object model, reduced to what templates touch), the
 * tokens and the syntax tree. Errors inside the interpreter longjmp to the entry point
 * (jinja_parse / jinja_render); since every allocation lives in an arena, nothing leaks. */
#ifndef SGLC_CHAT_JINJA_INTERNAL_H
#define SGLC_CHAT_JINJA_INTERNAL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "chat/jinja.h"

/* ---- arena and error context ---- */
typedef struct jarena_block jarena_block;
typedef struct {
    jarena_block *head;
    size_t used, cap; /* bytes handed out, and the bound on them */
} jarena;

typedef struct jctx {
    jarena *arena;
    uint64_t steps, max_steps; /* work done in a render, and its bound (0 while parsing) */
    jmp_buf jb;
    jinja_status status;
    char err[1024];
} jctx;

void *jarena_alloc(jctx *c, size_t n); /* zeroed; fails the context when over the cap */
void jarena_free_all(jarena *a);
_Noreturn void jfail(jctx *c, jinja_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
char *jstrndup(jctx *c, const char *s, size_t n);
/* Counts `units` of render work against max_steps and fails the render past it. A unit is a
 * statement, a loop iteration, an element visited by a filter, comparison or repetition, or 64
 * bytes scanned by a string operation, so work that allocates nothing (comparing, searching,
 * repeating empty values) is bounded as surely as work the arena bounds. */
void jctx_work(jctx *c, uint64_t units);
#define JWORK_BYTES(n) (1 + (uint64_t)(n) / 64)

/* True when c is one of set's characters; never for NUL (strchr finds the terminator), which
 * templates may contain. */
static inline bool jchar_in(char c, const char *set) { return c && strchr(set, c) != NULL; }

/* ---- growable byte buffer (arena backed) ---- */
typedef struct {
    char *p;
    size_t n, cap, limit; /* limit 0: unbounded (still bounded by the arena) */
} jbuf;
void jbuf_put(jctx *c, jbuf *b, const char *s, size_t n);
void jbuf_puts(jctx *c, jbuf *b, const char *s);
void jbuf_putc(jctx *c, jbuf *b, char ch);
void jbuf_printf(jctx *c, jbuf *b, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- values ---- */
typedef enum {
    JV_UNDEF,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST, /* list or tuple */
    JV_DICT,
    JV_NS,   /* namespace(): the one mutable object */
    JV_FUNC, /* macro, global function, bound method, loop.cycle, caller */
    JV_LOOP,
} jv_kind;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jfunc jfunc;
typedef struct jloop jloop;

typedef struct {
    jv_kind k;
    bool safe; /* JV_STR: a markupsafe Markup (|safe, |escape): "+" escapes the other side */
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *s;
            size_t n;
        } s;
        jlist *list;
        jdict *dict;
        jfunc *fn;
        jloop *loop;
        const char *undef_why; /* JV_UNDEF: the hint an error names */
    } u;
} jv;

struct jlist {
    jv *v;
    size_t n, cap;
    bool tuple;
    bool gen;      /* a Python generator (map, select, ...): always true, no len, no JSON */
    bool consumed; /* a generator iterates once */
};
struct jdict { /* insertion-ordered; linear lookup (template dicts are small) */
    jv *keys, *vals;
    size_t n, cap;
};
struct jloop {
    jlist *items;
    size_t i;
    int depth;
    jv changed_last;
    bool changed_set;
};

jv jv_undef(const char *why);
jv jv_none(void);
jv jv_bool(bool b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(const char *s, size_t n);
jv jv_cstr(const char *s);
jv jv_strdup(jctx *c, const char *s, size_t n);
jv jv_newlist(jctx *c, size_t cap, bool tuple);
jv jv_newdict(jctx *c);
void jlist_push(jctx *c, jlist *l, jv v);
void jdict_set(jctx *c, jdict *d, jv key, jv val);
bool jdict_get(const jdict *d, jv key, jv *out);
bool jdict_gets(const jdict *d, const char *key, jv *out);

bool jv_truthy(jv v);
bool jv_equal(jctx *c, jv a, jv b);
int jv_compare(jctx *c, jv a, jv b); /* <0, 0, >0; fails on unorderable types */
const char *jv_typename(jv v);
bool jv_is_number(jv v);
double jv_num(jv v);
/* str(v) as Python prints it (undefined -> "") appended to b; repr(v) likewise. */
void jv_str_to(jctx *c, jbuf *b, jv v);
void jv_repr_to(jctx *c, jbuf *b, jv v);
jv jv_to_str(jctx *c, jv v); /* a JV_STR holding str(v) */
void jv_float_repr(char *out, size_t cap, double f);
/* HF's tojson: json.dumps(v, ensure_ascii, indent, separators, sort_keys). indent < 0: none;
 * indent_str overrides indent when non-NULL. */
void jv_tojson_to(jctx *c, jbuf *b, jv v, bool ensure_ascii, int indent, const char *indent_str,
                  const char *item_sep, const char *key_sep, bool sort_keys, int level);
jv jv_from_json(jctx *c, const void *json); /* const json_t * */
/* Iteration as Python's iter(): list items, dict keys, string characters, undefined empty. */
jlist *jv_iterate(jctx *c, jv v);
jv jv_generator(jv list);         /* marks a fresh list as a generator */
jv jv_html_escape(jctx *c, jv v); /* markupsafe.escape: a Markup stays as it is */
size_t jutf8_len(const char *s, size_t n);
/* byte offset of character index ci (0..len) in s */
size_t jutf8_offset(const char *s, size_t n, size_t ci);
bool jpy_isspace_at(const char *s, size_t n, size_t pos, size_t *clen);

/* ---- tokens ---- */
typedef enum {
    TK_EOF,
    TK_DATA,
    TK_VAR_BEGIN,
    TK_VAR_END,
    TK_BLOCK_BEGIN,
    TK_BLOCK_END,
    TK_NAME,
    TK_STRING,
    TK_INT,
    TK_FLOAT,
    TK_OP,
} jtok_kind;

typedef struct {
    jtok_kind k;
    int line;
    const char *s; /* DATA, NAME, STRING (decoded), OP: text */
    size_t n;
    int64_t i;
    double f;
} jtok;

typedef struct {
    jtok *t;
    size_t n, cap;
} jtoks;

void jinja_lex(jctx *c, const char *src, size_t len, jtoks *out);

/* ---- syntax tree ---- */
typedef enum {
    /* expressions */
    N_CONST,
    N_NAME,
    N_LIST,
    N_TUPLE,
    N_DICT,
    N_GETATTR,
    N_GETITEM,
    N_SLICE,
    N_CALL,
    N_FILTER,
    N_TEST,
    N_NOT,
    N_NEG,
    N_POS,
    N_BINOP,
    N_AND,
    N_OR,
    N_CONCAT,
    N_COMPARE,
    N_CONDEXPR,
    /* statements */
    N_BODY,
    N_DATA,
    N_OUTPUT,
    N_IF,
    N_FOR,
    N_SET,
    N_SETBLOCK,
    N_MACRO,
    N_CALLBLOCK,
    N_FILTERBLOCK,
    N_WITH,
    N_BREAK,
    N_CONTINUE,
} jnode_kind;

typedef struct jnode jnode;
typedef struct {
    jnode **v;
    size_t n, cap;
} jnodes;

struct jnode {
    jnode_kind k;
    int line;
    const char *name;     /* NAME, GETATTR attr, FILTER/TEST name, BINOP/COMPARE ops, MACRO */
    jv val;               /* CONST */
    jnode *a, *b, *c, *d; /* operands; IF: test, body, else; FOR: target, iter, test, else */
    jnodes items;         /* LIST/TUPLE/DICT (k,v pairs), CALL positional args, BODY, CONCAT */
    jnodes kwnames;       /* CALL/FILTER/TEST keyword args: N_CONST names... */
    jnodes kwvals;
    const char **ops; /* COMPARE: one op per items[1..] */
    bool negate;      /* TEST: is not; FOR: recursive */
};

jnode *jinja_parse_tokens(jctx *c, const jtoks *toks);

/* ---- evaluation (jinja_eval.c) and builtins (jinja_builtins.c) ---- */
typedef struct jframe jframe;
typedef struct jrender jrender;

typedef struct {
    jv *pos;
    size_t npos;
    const char **kwn;
    jv *kwv;
    size_t nkw;
} jargs;

typedef jv (*jbuiltin_fn)(jrender *r, jv self, const jargs *a);

struct jfunc {
    const char *name;
    jbuiltin_fn builtin; /* globals and bound methods */
    jv self;             /* bound method receiver */
    const jnode *macro;  /* N_MACRO */
    jframe *closure;
    const jnode *caller_body; /* caller() of a call block */
    const jnode *caller_params;
};

struct jrender {
    jctx *c;
    jinja_limits lim;
    int depth;
    jframe *root;
};

void jr_step(jrender *r);
jv jr_call(jrender *r, jv fn, const jargs *a);
/* Argument helpers: the i-th positional or the named keyword, else dflt. */
jv jarg(const jargs *a, size_t i, const char *name, jv dflt);
bool jarg_has(const jargs *a, size_t i, const char *name);

bool jinja_filter(jrender *r, const char *name, jv v, const jargs *a, jv *out);
bool jinja_test(jrender *r, const char *name, jv v, const jargs *a, bool *out);
/* x.name as jinja2's sandboxed getattr: a bound method, a key, or undefined. */
jv jinja_getattr(jrender *r, jv obj, const char *name);
jv jinja_getitem(jrender *r, jv obj, jv key);
jv jinja_global(jrender *r, const char *name); /* JV_UNDEF when there is none */
jv jinja_str_format(jrender *r, jv fmt, const jargs *a);
jv jinja_printf(jrender *r, jv fmt, const jargs *a); /* "..." % args */
/* Calls Python str method `name` on s; false when str has no such method. */
bool jinja_str_method(jrender *r, const char *name, jv s, const jargs *a, jv *out);
jv jstr_upper(jrender *r, jv s);
jv jstr_lower(jrender *r, jv s);
jv jstr_capitalize(jrender *r, jv s);
/* Python's strip(chars): which: 1 left, 2 right, 3 both. chars NONE/UNDEF: whitespace. */
jv jstr_strip(jrender *r, jv s, jv chars, int which);
jv jstr_replace(jrender *r, jv s, jv old, jv neu, int64_t count);

#endif
