/* Jinja2's parser (jinja2/parser.py) for the statements and expressions chat templates use.
 * The precedence ladder follows jinja2 exactly (condexpr > or > and > not > compare > +,- >
 * ~ > *,/,//,% > ** > unary > postfix and filters), since "-x|abs" or "not a is b" must group
 * as Python's jinja2 groups them. */
#include <stdio.h>
#include <string.h>

#include "chat/jinja_internal.h"

typedef struct {
    jctx *c;
    const jtoks *ts;
    size_t i;
    int depth;
} parser;

static jnode *parse_expr(parser *p, bool with_condexpr);
static jnode *parse_tuple(parser *p, bool simplified, bool with_condexpr, const char *extra_end,
                          bool explicit_parens);
static jnode *parse_unary(parser *p, bool with_filter);
static jnode *parse_primary(parser *p);
static jnode *parse_postfix(parser *p, jnode *n);
static jnode *parse_filter_expr(parser *p, jnode *n);
static jnode *parse_body(parser *p, const char **end_tags, const char **found);

static const jtok *cur(parser *p) { return &p->ts->t[p->i]; }
static const jtok *peek(parser *p, size_t k) {
    size_t j = p->i + k;
    return j < p->ts->n ? &p->ts->t[j] : &p->ts->t[p->ts->n - 1];
}
static void adv(parser *p) {
    if (p->i + 1 < p->ts->n) p->i++;
}

static const char *tok_desc(const jtok *t, char *buf, size_t cap) {
    switch (t->k) {
    case TK_EOF: return "end of template";
    case TK_BLOCK_END: return "end of statement block";
    case TK_VAR_END: return "end of print statement";
    case TK_BLOCK_BEGIN: return "begin of statement block";
    case TK_VAR_BEGIN: return "begin of print statement";
    case TK_STRING: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    case TK_DATA: return "template data";
    default: snprintf(buf, cap, "'%.*s'", (int)(t->n > 40 ? 40 : t->n), t->s); return buf;
    }
}

static _Noreturn void fail_at(parser *p, const char *what) {
    char b[64];
    jfail(p->c, JINJA_ERR_SYNTAX, "line %d: %s, got %s", cur(p)->line, what,
          tok_desc(cur(p), b, sizeof b));
}

static bool is_op(const jtok *t, const char *op) {
    return t->k == TK_OP && t->n == strlen(op) && !memcmp(t->s, op, t->n);
}
static bool is_name(const jtok *t, const char *nm) {
    return t->k == TK_NAME && t->n == strlen(nm) && !memcmp(t->s, nm, t->n);
}
static void expect_op(parser *p, const char *op) {
    if (!is_op(cur(p), op)) {
        char m[64];
        snprintf(m, sizeof m, "expected '%s'", op);
        fail_at(p, m);
    }
    adv(p);
}
static const char *expect_name(parser *p) {
    if (cur(p)->k != TK_NAME) fail_at(p, "expected name");
    const char *s = jstrndup(p->c, cur(p)->s, cur(p)->n);
    adv(p);
    return s;
}
static void expect_block_end(parser *p) {
    if (cur(p)->k != TK_BLOCK_END) fail_at(p, "expected end of statement block");
    adv(p);
}

static jnode *mk(parser *p, jnode_kind k) {
    jnode *n = jarena_alloc(p->c, sizeof *n);
    n->k = k;
    n->line = cur(p)->line;
    return n;
}
static void add(parser *p, jnodes *l, jnode *n) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jnode **nv = jarena_alloc(p->c, cap * sizeof *nv);
        if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = n;
}

static void enter(parser *p) {
    if (++p->depth > 200) jfail(p->c, JINJA_ERR_SYNTAX, "line %d: nesting too deep", cur(p)->line);
}

/* ---- expressions ---- */
static void parse_call_args(parser *p, jnode *call) {
    expect_op(p, "(");
    bool first = true;
    while (!is_op(cur(p), ")")) {
        if (!first) {
            expect_op(p, ",");
            if (is_op(cur(p), ")")) break;
        }
        first = false;
        if (cur(p)->k == TK_NAME && is_op(peek(p, 1), "=")) {
            jnode *k = mk(p, N_CONST);
            k->val = jv_str(jstrndup(p->c, cur(p)->s, cur(p)->n), cur(p)->n);
            adv(p);
            adv(p);
            add(p, &call->kwnames, k);
            add(p, &call->kwvals, parse_expr(p, true));
        } else {
            if (call->kwnames.n)
                jfail(p->c, JINJA_ERR_SYNTAX,
                      "line %d: positional argument follows keyword argument", cur(p)->line);
            add(p, &call->items, parse_expr(p, true));
        }
    }
    adv(p);
}

static jnode *parse_subscript(parser *p, jnode *obj) {
    const jtok *t = cur(p);
    if (is_op(t, ".")) {
        adv(p);
        jnode *n = mk(p, N_GETATTR);
        n->a = obj;
        if (cur(p)->k == TK_NAME) {
            n->name = expect_name(p);
        } else if (cur(p)->k == TK_INT) {
            n->k = N_GETITEM;
            jnode *k = mk(p, N_CONST);
            k->val = jv_int(cur(p)->i);
            adv(p);
            n->b = k;
        } else {
            fail_at(p, "expected name or number");
        }
        return n;
    }
    /* "[" */
    adv(p);
    jnode *n = mk(p, N_GETITEM);
    n->a = obj;
    jnode *parts[3] = {0};
    int np = 0;
    bool slice = false;
    for (;;) {
        if (is_op(cur(p), ":")) {
            slice = true;
            if (np >= 2) fail_at(p, "invalid slice");
            np++;
            adv(p);
            continue;
        }
        if (is_op(cur(p), "]")) break;
        if (parts[np]) fail_at(p, "expected ']'");
        parts[np] = parse_expr(p, true);
    }
    adv(p);
    if (slice) {
        jnode *s = mk(p, N_SLICE);
        s->a = parts[0];
        s->b = parts[1];
        s->c = parts[2];
        n->b = s;
    } else {
        if (!parts[0]) fail_at(p, "expected subscript expression");
        n->b = parts[0];
    }
    return n;
}

static jnode *parse_postfix(parser *p, jnode *n) {
    for (;;) {
        if (is_op(cur(p), ".") || is_op(cur(p), "[")) {
            n = parse_subscript(p, n);
        } else if (is_op(cur(p), "(")) {
            jnode *call = mk(p, N_CALL);
            call->a = n;
            parse_call_args(p, call);
            n = call;
        } else {
            return n;
        }
    }
}

static const char *parse_dotted_name(parser *p) {
    const char *nm = expect_name(p);
    while (is_op(cur(p), ".")) {
        adv(p);
        const char *more = expect_name(p);
        size_t l1 = strlen(nm), l2 = strlen(more);
        char *j = jarena_alloc(p->c, l1 + l2 + 2);
        memcpy(j, nm, l1);
        j[l1] = '.';
        memcpy(j + l1 + 1, more, l2);
        nm = j;
    }
    return nm;
}

static jnode *parse_filter_expr(parser *p, jnode *n) {
    for (;;) {
        if (is_op(cur(p), "|")) {
            adv(p);
            jnode *f = mk(p, N_FILTER);
            f->a = n;
            f->name = parse_dotted_name(p);
            if (is_op(cur(p), "(")) parse_call_args(p, f);
            n = f;
        } else if (is_name(cur(p), "is")) {
            adv(p);
            jnode *t = mk(p, N_TEST);
            if (is_name(cur(p), "not")) {
                adv(p);
                t->negate = true;
            }
            t->a = n;
            t->name = parse_dotted_name(p);
            const jtok *c = cur(p);
            if (is_op(c, "(")) {
                parse_call_args(p, t);
            } else if ((c->k == TK_NAME || c->k == TK_STRING || c->k == TK_INT ||
                        c->k == TK_FLOAT || is_op(c, "[") || is_op(c, "{")) &&
                       !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
                if (is_name(c, "is")) fail_at(p, "You cannot chain multiple tests with is");
                add(p, &t->items, parse_postfix(p, parse_primary(p)));
            }
            n = t;
        } else if (is_op(cur(p), "(")) {
            jnode *call = mk(p, N_CALL);
            call->a = n;
            parse_call_args(p, call);
            n = call;
        } else {
            return n;
        }
    }
}

static jnode *parse_primary(parser *p) {
    const jtok *t = cur(p);
    jnode *n;
    enter(p);
    if (t->k == TK_NAME) {
        n = mk(p, N_CONST);
        if (is_name(t, "true") || is_name(t, "True"))
            n->val = jv_bool(true);
        else if (is_name(t, "false") || is_name(t, "False"))
            n->val = jv_bool(false);
        else if (is_name(t, "none") || is_name(t, "None"))
            n->val = jv_none();
        else {
            n->k = N_NAME;
            n->name = jstrndup(p->c, t->s, t->n);
        }
        adv(p);
    } else if (t->k == TK_STRING) {
        n = mk(p, N_CONST);
        jbuf b = {0};
        while (cur(p)->k == TK_STRING) { /* adjacent literals concatenate */
            jbuf_put(p->c, &b, cur(p)->s, cur(p)->n);
            adv(p);
        }
        n->val = jv_str(b.p ? b.p : "", b.n);
    } else if (t->k == TK_INT) {
        n = mk(p, N_CONST);
        n->val = jv_int(t->i);
        adv(p);
    } else if (t->k == TK_FLOAT) {
        n = mk(p, N_CONST);
        n->val = jv_float(t->f);
        adv(p);
    } else if (is_op(t, "(")) {
        adv(p);
        n = parse_tuple(p, false, true, NULL, true);
        expect_op(p, ")");
    } else if (is_op(t, "[")) {
        adv(p);
        n = mk(p, N_LIST);
        while (!is_op(cur(p), "]")) {
            if (n->items.n) {
                expect_op(p, ",");
                if (is_op(cur(p), "]")) break;
            }
            add(p, &n->items, parse_expr(p, true));
        }
        adv(p);
    } else if (is_op(t, "{")) {
        adv(p);
        n = mk(p, N_DICT);
        while (!is_op(cur(p), "}")) {
            if (n->items.n) {
                expect_op(p, ",");
                if (is_op(cur(p), "}")) break;
            }
            add(p, &n->items, parse_expr(p, true));
            expect_op(p, ":");
            add(p, &n->items, parse_expr(p, true));
        }
        adv(p);
    } else {
        char b[64];
        jfail(p->c, JINJA_ERR_SYNTAX, "line %d: unexpected %s", t->line, tok_desc(t, b, sizeof b));
    }
    p->depth--;
    return n;
}

static jnode *parse_unary(parser *p, bool with_filter) {
    jnode *n;
    enter(p);
    if (is_op(cur(p), "-") || is_op(cur(p), "+")) {
        n = mk(p, is_op(cur(p), "-") ? N_NEG : N_POS);
        adv(p);
        n->a = parse_unary(p, false);
    } else {
        n = parse_primary(p);
    }
    n = parse_postfix(p, n);
    if (with_filter) n = parse_filter_expr(p, n);
    p->depth--;
    return n;
}

static jnode *binop(parser *p, const char *op, jnode *a, jnode *b) {
    jnode *n = mk(p, N_BINOP);
    n->name = op;
    n->a = a;
    n->b = b;
    return n;
}

static jnode *parse_pow(parser *p) {
    jnode *l = parse_unary(p, true);
    while (is_op(cur(p), "**")) {
        adv(p);
        l = binop(p, "**", l, parse_unary(p, true));
    }
    return l;
}

static jnode *parse_math2(parser *p) {
    jnode *l = parse_pow(p);
    for (;;) {
        const char *op = is_op(cur(p), "*")    ? "*"
                         : is_op(cur(p), "/")  ? "/"
                         : is_op(cur(p), "//") ? "//"
                         : is_op(cur(p), "%")  ? "%"
                                               : NULL;
        if (!op) return l;
        adv(p);
        l = binop(p, op, l, parse_pow(p));
    }
}

static jnode *parse_concat(parser *p) {
    jnode *first = parse_math2(p);
    if (!is_op(cur(p), "~")) return first;
    jnode *n = mk(p, N_CONCAT);
    add(p, &n->items, first);
    while (is_op(cur(p), "~")) {
        adv(p);
        add(p, &n->items, parse_math2(p));
    }
    return n;
}

static jnode *parse_math1(parser *p) {
    jnode *l = parse_concat(p);
    for (;;) {
        const char *op = is_op(cur(p), "+") ? "+" : is_op(cur(p), "-") ? "-" : NULL;
        if (!op) return l;
        adv(p);
        l = binop(p, op, l, parse_concat(p));
    }
}

static jnode *parse_compare(parser *p) {
    jnode *first = parse_math1(p);
    jnode *n = NULL;
    const char *ops[64];
    size_t nops = 0;
    for (;;) {
        const jtok *t = cur(p);
        const char *op = NULL;
        static const char *cmp[] = {"==", "!=", "<", "<=", ">", ">="};
        for (int k = 0; k < 6; k++)
            if (is_op(t, cmp[k])) op = cmp[k];
        if (op)
            adv(p);
        else if (is_name(t, "in")) {
            op = "in";
            adv(p);
        } else if (is_name(t, "not") && is_name(peek(p, 1), "in")) {
            op = "notin";
            adv(p);
            adv(p);
        } else
            break;
        if (!n) {
            n = mk(p, N_COMPARE);
            add(p, &n->items, first);
        }
        if (nops == 64) fail_at(p, "too many comparisons");
        ops[nops++] = op;
        add(p, &n->items, parse_math1(p));
    }
    if (!n) return first;
    n->ops = jarena_alloc(p->c, nops * sizeof *n->ops);
    memcpy(n->ops, ops, nops * sizeof *ops);
    return n;
}

static jnode *parse_not(parser *p) {
    if (is_name(cur(p), "not")) {
        jnode *n = mk(p, N_NOT);
        adv(p);
        enter(p);
        n->a = parse_not(p);
        p->depth--;
        return n;
    }
    return parse_compare(p);
}

static jnode *parse_and(parser *p) {
    jnode *l = parse_not(p);
    while (is_name(cur(p), "and")) {
        adv(p);
        jnode *n = mk(p, N_AND);
        n->a = l;
        n->b = parse_not(p);
        l = n;
    }
    return l;
}

static jnode *parse_or(parser *p) {
    jnode *l = parse_and(p);
    while (is_name(cur(p), "or")) {
        adv(p);
        jnode *n = mk(p, N_OR);
        n->a = l;
        n->b = parse_and(p);
        l = n;
    }
    return l;
}

static jnode *parse_condexpr(parser *p) {
    jnode *e1 = parse_or(p);
    while (is_name(cur(p), "if")) {
        adv(p);
        jnode *n = mk(p, N_CONDEXPR);
        n->a = parse_or(p); /* test */
        n->b = e1;
        if (is_name(cur(p), "else")) {
            adv(p);
            enter(p);
            n->c = parse_condexpr(p);
            p->depth--;
        }
        e1 = n;
    }
    return e1;
}

static jnode *parse_expr(parser *p, bool with_condexpr) {
    enter(p);
    jnode *n = with_condexpr ? parse_condexpr(p) : parse_or(p);
    p->depth--;
    return n;
}

static bool tuple_end(parser *p, const char *extra_end) {
    const jtok *t = cur(p);
    if (t->k == TK_VAR_END || t->k == TK_BLOCK_END || t->k == TK_EOF || is_op(t, ")")) return true;
    return extra_end && is_name(t, extra_end);
}

static jnode *parse_tuple(parser *p, bool simplified, bool with_condexpr, const char *extra_end,
                          bool explicit_parens) {
    jnode *t = mk(p, N_TUPLE);
    bool is_tuple = false;
    for (;;) {
        if (t->items.n) expect_op(p, ",");
        if (tuple_end(p, extra_end)) break;
        add(p, &t->items, simplified ? parse_primary(p) : parse_expr(p, with_condexpr));
        if (is_op(cur(p), ","))
            is_tuple = true;
        else
            break;
    }
    if (!is_tuple) {
        if (t->items.n) return t->items.v[0];
        if (!explicit_parens) fail_at(p, "Expected an expression");
    }
    return t;
}

/* ---- statements ---- */
static jnode *parse_assign_target(parser *p, bool with_namespace, const char *extra_end) {
    if (with_namespace && cur(p)->k == TK_NAME && is_op(peek(p, 1), ".")) {
        jnode *n = mk(p, N_GETATTR);
        jnode *obj = mk(p, N_NAME);
        obj->name = expect_name(p);
        adv(p);
        n->a = obj;
        n->name = expect_name(p);
        return n;
    }
    jnode *t = parse_tuple(p, true, true, extra_end, false);
    if (t->k == N_TUPLE) {
        for (size_t i = 0; i < t->items.n; i++)
            if (t->items.v[i]->k != N_NAME) fail_at(p, "can't assign to this expression");
    } else if (t->k != N_NAME) {
        jfail(p->c, JINJA_ERR_SYNTAX, "line %d: can't assign to this expression", t->line);
    }
    return t;
}

static jnode *parse_if(parser *p) {
    jnode *n = mk(p, N_IF);
    n->a = parse_tuple(p, false, false, NULL, false);
    expect_block_end(p);
    static const char *ends[] = {"elif", "else", "endif", NULL};
    const char *found;
    n->b = parse_body(p, ends, &found);
    if (!strcmp(found, "elif")) {
        enter(p);
        n->c = parse_if(p);
        p->depth--;
        return n;
    }
    if (!strcmp(found, "else")) {
        expect_block_end(p);
        static const char *e2[] = {"endif", NULL};
        n->c = parse_body(p, e2, &found);
    }
    expect_block_end(p);
    return n;
}

static jnode *parse_for(parser *p) {
    jnode *n = mk(p, N_FOR);
    n->a = parse_assign_target(p, false, "in");
    if (!is_name(cur(p), "in")) fail_at(p, "expected 'in'");
    adv(p);
    n->b = parse_tuple(p, false, false, "recursive", false);
    if (is_name(cur(p), "if")) {
        adv(p);
        n->c = parse_expr(p, true);
    }
    if (is_name(cur(p), "recursive")) {
        adv(p);
        n->negate = true;
    }
    expect_block_end(p);
    static const char *ends[] = {"endfor", "else", NULL};
    const char *found;
    jnode *body = parse_body(p, ends, &found);
    if (!strcmp(found, "else")) {
        expect_block_end(p);
        static const char *e2[] = {"endfor", NULL};
        n->d = parse_body(p, e2, &found);
    }
    expect_block_end(p);
    add(p, &n->items, body);
    return n;
}

static void parse_filter_chain(parser *p, jnode *holder) {
    /* a chain of filters applied to a block's output: stored as N_FILTER nodes with a == NULL
     * at the innermost end */
    jnode *n = NULL;
    bool first = true;
    while (first || is_op(cur(p), "|")) {
        if (!first) adv(p);
        first = false;
        jnode *f = mk(p, N_FILTER);
        f->a = n;
        f->name = parse_dotted_name(p);
        if (is_op(cur(p), "(")) parse_call_args(p, f);
        n = f;
    }
    holder->d = n;
}

static jnode *parse_set(parser *p) {
    jnode *target = parse_assign_target(p, true, NULL);
    if (is_op(cur(p), "=")) {
        adv(p);
        jnode *n = mk(p, N_SET);
        n->a = target;
        n->b = parse_tuple(p, false, true, NULL, false);
        expect_block_end(p);
        return n;
    }
    jnode *n = mk(p, N_SETBLOCK);
    n->a = target;
    if (is_op(cur(p), "|")) {
        adv(p);
        parse_filter_chain(p, n);
    }
    expect_block_end(p);
    static const char *ends[] = {"endset", NULL};
    const char *found;
    n->b = parse_body(p, ends, &found);
    expect_block_end(p);
    return n;
}

static void parse_signature(parser *p, jnode *n) {
    /* params as N_NAME in items; defaults in kwvals aligned with kwnames (names) */
    expect_op(p, "(");
    while (!is_op(cur(p), ")")) {
        if (n->items.n) expect_op(p, ",");
        jnode *arg = mk(p, N_NAME);
        arg->name = expect_name(p);
        add(p, &n->items, arg);
        if (is_op(cur(p), "=")) {
            adv(p);
            jnode *k = mk(p, N_CONST);
            k->val = jv_cstr(arg->name);
            add(p, &n->kwnames, k);
            add(p, &n->kwvals, parse_expr(p, true));
        } else if (n->kwnames.n) {
            fail_at(p, "non-default argument follows default argument");
        }
    }
    adv(p);
}

static jnode *parse_macro(parser *p) {
    jnode *n = mk(p, N_MACRO);
    n->name = expect_name(p);
    parse_signature(p, n);
    expect_block_end(p);
    static const char *ends[] = {"endmacro", NULL};
    const char *found;
    n->a = parse_body(p, ends, &found);
    expect_block_end(p);
    return n;
}

static jnode *parse_call_block(parser *p) {
    jnode *n = mk(p, N_CALLBLOCK);
    jnode *params = mk(p, N_MACRO);
    params->name = "caller";
    if (is_op(cur(p), "(")) parse_signature(p, params);
    n->c = params;
    n->a = parse_expr(p, true);
    if (n->a->k != N_CALL) fail_at(p, "expected call");
    expect_block_end(p);
    static const char *ends[] = {"endcall", NULL};
    const char *found;
    n->b = parse_body(p, ends, &found);
    expect_block_end(p);
    return n;
}

static jnode *parse_statement(parser *p) {
    const jtok *t = cur(p);
    if (t->k != TK_NAME) fail_at(p, "tag name expected");
    jnode *n;
    if (is_name(t, "if")) {
        adv(p);
        return parse_if(p);
    }
    if (is_name(t, "for")) {
        adv(p);
        return parse_for(p);
    }
    if (is_name(t, "set")) {
        adv(p);
        return parse_set(p);
    }
    if (is_name(t, "macro")) {
        adv(p);
        return parse_macro(p);
    }
    if (is_name(t, "call")) {
        adv(p);
        return parse_call_block(p);
    }
    if (is_name(t, "break") || is_name(t, "continue")) {
        n = mk(p, is_name(t, "break") ? N_BREAK : N_CONTINUE);
        adv(p);
        expect_block_end(p);
        return n;
    }
    if (is_name(t, "print")) {
        adv(p);
        n = mk(p, N_OUTPUT);
        add(p, &n->items, parse_tuple(p, false, true, NULL, false));
        expect_block_end(p);
        return n;
    }
    if (is_name(t, "filter")) {
        adv(p);
        n = mk(p, N_FILTERBLOCK);
        parse_filter_chain(p, n);
        expect_block_end(p);
        static const char *ends[] = {"endfilter", NULL};
        const char *found;
        n->b = parse_body(p, ends, &found);
        expect_block_end(p);
        return n;
    }
    if (is_name(t, "with")) {
        adv(p);
        n = mk(p, N_WITH);
        while (cur(p)->k != TK_BLOCK_END) {
            if (n->kwnames.n) expect_op(p, ",");
            jnode *tg = parse_assign_target(p, false, NULL);
            expect_op(p, "=");
            add(p, &n->kwnames, tg);
            add(p, &n->kwvals, parse_expr(p, true));
        }
        expect_block_end(p);
        static const char *ends[] = {"endwith", NULL};
        const char *found;
        n->b = parse_body(p, ends, &found);
        expect_block_end(p);
        return n;
    }
    if (is_name(t, "generation")) { /* transformers' AssistantTracker: renders its body as is */
        adv(p);
        expect_block_end(p);
        static const char *ends[] = {"endgeneration", NULL};
        const char *found;
        n = parse_body(p, ends, &found);
        expect_block_end(p);
        return n;
    }
    jfail(p->c, JINJA_ERR_SYNTAX, "line %d: Encountered unknown tag '%.*s'.", t->line,
          (int)(t->n > 40 ? 40 : t->n), t->s);
}

/* Parses nodes until one of end_tags (NULL-terminated; NULL list: until end of template).
 * Leaves the parser after the end tag's name; *found names it. */
static jnode *parse_body(parser *p, const char **end_tags, const char **found) {
    jnode *body = mk(p, N_BODY);
    enter(p);
    for (;;) {
        const jtok *t = cur(p);
        if (t->k == TK_EOF) {
            if (end_tags) {
                jfail(p->c, JINJA_ERR_SYNTAX,
                      "line %d: Unexpected end of template. Jinja was looking for the following "
                      "tags: '%s'.",
                      t->line, end_tags[0]);
            }
            break;
        }
        if (t->k == TK_DATA) {
            jnode *d = mk(p, N_DATA);
            d->val = jv_str(t->s, t->n);
            add(p, &body->items, d);
            adv(p);
        } else if (t->k == TK_VAR_BEGIN) {
            adv(p);
            jnode *o = mk(p, N_OUTPUT);
            add(p, &o->items, parse_tuple(p, false, true, NULL, false));
            if (cur(p)->k != TK_VAR_END) fail_at(p, "expected end of print statement");
            adv(p);
            add(p, &body->items, o);
        } else if (t->k == TK_BLOCK_BEGIN) {
            adv(p);
            const jtok *nm = cur(p);
            if (end_tags && nm->k == TK_NAME)
                for (const char **e = end_tags; *e; e++)
                    if (is_name(nm, *e)) {
                        *found = *e;
                        adv(p);
                        p->depth--;
                        return body;
                    }
            if (nm->k == TK_NAME &&
                (is_name(nm, "endif") || is_name(nm, "endfor") || is_name(nm, "else") ||
                 is_name(nm, "elif") || is_name(nm, "endset") || is_name(nm, "endmacro") ||
                 is_name(nm, "endcall") || is_name(nm, "endfilter") || is_name(nm, "endwith") ||
                 is_name(nm, "endgeneration")))
                jfail(p->c, JINJA_ERR_SYNTAX, "line %d: Encountered unknown tag '%.*s'.", nm->line,
                      (int)nm->n, nm->s);
            add(p, &body->items, parse_statement(p));
        } else {
            fail_at(p, "unexpected token");
        }
    }
    p->depth--;
    return body;
}

jnode *jinja_parse_tokens(jctx *c, const jtoks *toks) {
    parser p = {.c = c, .ts = toks};
    const char *found = NULL;
    return parse_body(&p, NULL, &found);
}
